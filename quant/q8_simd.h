/* Small helpers shared by the SIMD tier files. Internal to copse. */
#ifndef COPSE_Q8_SIMD_H
#define COPSE_Q8_SIMD_H

#include <string.h>
#include "q8.h"

/* Tiles are written with loops over T and G; forcing them inline lets
** each call site's constant T and G unroll them into registers. */
#define INLINE static inline __attribute__((always_inline))

/* Before each loop over tokens, groups or registers of a tile: fully
** unrolled, its arrays become registers. */
#define UNROLL _Pragma("GCC unroll 8")

/* Four activation bytes, for a broadcast. */
INLINE int32_t load4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Rows of group g that exist (16 except in the last group). */
INLINE int group_rows(const q8_weights *W, int g)
{
    int rows = W->n_rows - g * Q8_GROUP;
    return rows < Q8_GROUP ? rows : Q8_GROUP;
}

/* Weights the panel path requests ahead of use: the lines [at, to). */
typedef struct q8_ahead {
    const char *at, *to;
} q8_ahead;

/* Request the share of a block of the n left: spread out, the requests
** keep memory busy without a burst that overflows the miss queues. */
INLINE void ahead_block(q8_ahead *a, int n)
{
    if (!a || a->at >= a->to)
        return;
    size_t lines = ((size_t)(a->to - a->at) + 63) / 64;
    for (lines = (lines + (size_t)n - 1) / (size_t)n; lines > 0; lines--, a->at += 64)
        __builtin_prefetch(a->at, 0, 3);
}

#endif
