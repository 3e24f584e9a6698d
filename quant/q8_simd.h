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

#endif
