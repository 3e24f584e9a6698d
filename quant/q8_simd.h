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

/* The offset of offset codes of bits (Q8_OFFSET): Q4_0's 8, Q5_0's 16. */
#define OFFSET_OF(bits) (q8_quant_bits(bits) == 5 ? 16 : 8)

/* -offset * sum(x) of a block from its nsum = -128 * sum(x): a shift, exact
** on a multiple of 128 (an arithmetic one, as GCC and Clang shift a
** negative int). */
INLINE int32_t offset_sum(int32_t nsum, const int bits)
{
    return nsum >> (OFFSET_OF(bits) == 16 ? 3 : 4);
}

/* Sums per block of weights of bits: 6-, 3- and 2-bit weights' two halves
** (q8.h), else one. */
#define PARTS(bits) (q8_halves(bits) ? 2 : 1)

/* 6-, 3- and 2-bit weights: what the sum of half h of a block, of u x[k]
** with u unsigned, starts from: -offset (32, 4, 0) * the half's sum of x,
** from the block's nsum = -128 * sum(x) and hsum, the first half's sum
** (an arithmetic shift, exact on a multiple of 128). */
INLINE int32_t half_init(int32_t nsum, int32_t hsum, int h, const int bits)
{
    const int o = q8_half_offset(bits);
    if (!o)
        return 0;
    return h ? (nsum >> (o == 32 ? 2 : 5)) + o * hsum : -o * hsum;
}

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

/* Groups in a panel that starts with left groups to go, at most pg a
** panel: pg + 1 go as two halves (a panel of one group reuses each
** activation broadcast only once). */
INLINE int panel_groups(int left, int pg)
{
    return left < pg ? left : left == pg + 1 ? (pg + 2) / 2 : pg;
}

/*
** The panel path's cursor: it requests the weights of a run of groups in
** the order the panels read them, panel by panel: the panel's scales,
** then block by block the quants of each of its groups, 512 bytes at a
** time (256 for 4-bit weights, 320 for 5-bit) (finer steps through this walk, by lines or 128 or 256 bytes,
** cost 5-25% of a product in branches). Walking memory in order, as it
** once did, it requested a panel's first group long before use and its
** last one late whenever a panel is larger than the distance ahead (K of
** 1536 and more: 1.25-1.4x slower there). at and to count bytes in
** reading order; the next chunk is of group g + gi of the panel
** [g, g + G), block b (-1: the scales). Past end (the rect's last group)
** it assumes panels of pg groups.
*/
typedef struct q8_ahead {
    const q8_weights *W;
    size_t at, to;
    int g, G, gi, b, end, pg;
} q8_ahead;

/* Request the next chunk: a group's scales or its quants of one block
** (bits as W's, a constant: the requests unroll). */
INLINE void ahead_chunk(q8_ahead *a, const int bits)
{
    const size_t qbytes = q8_qbytes(bits);
    const q8_weights *W = a->W;
    if (a->b < 0) {
        const char *p = (const char *)q8_group_scales(W, a->g + a->gi);
        for (size_t off = 0; off < W->scale_bytes; off += 64)
            __builtin_prefetch(p + off, 0, 3);
        a->at += W->scale_bytes;
    } else {
        const uint8_t *p = q8_group_quants(W, a->g + a->gi) + (size_t)a->b * qbytes;
        UNROLL
        for (size_t off = 0; off < qbytes; off += 64)
            __builtin_prefetch(p + off, 0, 3);
        a->at += qbytes;
    }
    if (++a->gi < a->G)
        return;
    a->gi = 0;
    if (++a->b < W->nb)
        return;
    a->b = -1;
    a->g += a->G;
    a->G = panel_groups((a->g < a->end ? a->end : W->n_groups) - a->g, a->pg);
}

/* How far ahead one token of the kinds with two factors requests its
** quants: read in place with the factors beside them, they streamed at
** 0.75-0.85x the bytes a second of int8 weights on the hardware
** prefetchers alone (one token through olmo2-1b's matrices, 2 threads;
** 1.1-1.3x with the requests). Coded weights ran slower with them. */
#define ONE_TOKEN_AHEAD 2048

/* One token's requests for block b of each of G groups (wq[g] at its
** quants) of weights of bits: the quants ONE_TOKEN_AHEAD bytes on. */
INLINE void ahead_one_token(const uint8_t *const *wq, const int G, const int bits)
{
    if (q8_int8_scaled(bits))
        return;
    UNROLL
    for (int g = 0; g < G; g++)
        UNROLL
        for (size_t off = 0; off < q8_qbytes(bits); off += 64)
            __builtin_prefetch(wq[g] + ONE_TOKEN_AHEAD + off, 0, 3);
}

/* Request the share of a block of the n left: spread out, the requests
** keep memory busy without a burst that overflows the miss queues. */
INLINE void ahead_block(q8_ahead *a, int n, const int bits)
{
    const size_t qbytes = q8_qbytes(bits);
    if (!a || a->at >= a->to)
        return;
    size_t chunks = (a->to - a->at + qbytes - 1) / qbytes;
    for (chunks = (chunks + (size_t)n - 1) / (size_t)n; chunks > 0 && a->G > 0; chunks--)
        ahead_chunk(a, bits);
}

#endif
