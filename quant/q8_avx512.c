/*
** The avx512vnni tier: vpdpbusd on zmm. One 64-byte line of a weight group
** (4 k of 16 rows, stored as w + 128) against a broadcast of 4 activation
** bytes gives the 16 rows' partial sums; the sum starts at nsum = -128*sum(x)
** to cancel the offset. A tile keeps T tokens x G groups of int32 block
** sums and f32 results in registers, so each weight load serves T tokens
** and each broadcast G groups.
*/
#include <immintrin.h>
#include "q8_simd.h"

#define TM 4   /* GEMM tile: tokens */
#define GM 3   /*            groups (48 rows) */
#define GV 4   /* GEMV tile: groups (64 rows in flight while streaming) */
#define PT 4   /* panel step: tokens */
#define PG 4   /*             groups */
#define PF 8   /*             blocks prefetched ahead */

_Static_assert(PT <= TM && PG <= GV, "a panel step's sums fit a tile's arrays");

/* Store the 16 rows of group g for one token, fewer past n_rows. */
INLINE void store_rows(const q8_weights *W, float *y, int g, __m512 v)
{
    __mmask16 m = (__mmask16)((1u << group_rows(W, g)) - 1);
    _mm512_mask_storeu_ps(y + (size_t)g * Q8_GROUP, m, v);
}

/* The exact int32 sums of block b of T tokens x G groups: s[t][g] holds
** the 16 rows' sums. wq[g] points at the block's quants of group g0 + g.
** With pf set, also prefetch each line pf blocks ahead. */
INLINE void block_sums(const q8_weights *W, const q8_act *A, int t0, const int T,
                       const uint8_t *const *wq, const int G, int b, int pf, __m512i s[TM][GV])
{
    const int nb = W->nb, K = W->K;
    const int8_t *x = A->q + (size_t)t0 * K + b * Q8_BLOCK;
    UNROLL
    for (int t = 0; t < T; t++) {
        __m512i c = _mm512_set1_epi32(A->nsum[(size_t)(t0 + t) * nb + b]);
        UNROLL
        for (int g = 0; g < G; g++)
            s[t][g] = c;
    }
    UNROLL
    for (int j = 0; j < Q8_BLOCK / 4; j++) {
        __m512i w[GV];
        UNROLL
        for (int g = 0; g < G; g++) {
            w[g] = _mm512_load_si512(wq[g] + j * 64);
            if (pf)
                _mm_prefetch((const char *)(wq[g] + j * 64 + (size_t)pf * Q8_GROUP_QBYTES),
                             _MM_HINT_T0);
        }
        UNROLL
        for (int t = 0; t < T; t++) {
            __m512i xb = _mm512_set1_epi32(load4(x + (size_t)t * K + 4 * j));
            UNROLL
            for (int g = 0; g < G; g++)
                s[t][g] = _mm512_dpbusd_epi32(s[t][g], w[g], xb);
        }
    }
}

INLINE void store_raw(const q8_weights *W, int t0, const int T, int g0, const int G, int b,
                      __m512i s[TM][GV], int32_t *raw)
{
    UNROLL
    for (int t = 0; t < T; t++)
        UNROLL
        for (int g = 0; g < G; g++)
            _mm512_storeu_si512(raw + (((size_t)(t0 + t) * W->n_groups + g0 + g) * W->nb + b)
                                * Q8_GROUP, s[t][g]);
}

/* The scales of block b of groups g0.. as f32, 16 rows each. */
INLINE void block_scales(const q8_weights *W, int g0, const int G, int b, __m512 dw[GV])
{
    UNROLL
    for (int g = 0; g < G; g++)
        dw[g] = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(q8_group_scales(W, g0 + g)
                                                                    + b * Q8_GROUP)));
}

INLINE void tile(const q8_weights *W, const q8_act *A, int t0, const int T, int g0,
                 const int G, float *y, int32_t *raw)
{
    const int nb = W->nb;
    __m512 acc[TM][GV];
    UNROLL
    for (int t = 0; t < T; t++)
        UNROLL
        for (int g = 0; g < G; g++)
            acc[t][g] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *wq[GV];
        __m512i s[TM][GV];
        __m512 dw[GV];
        UNROLL
        for (int g = 0; g < G; g++)
            wq[g] = q8_group_quants(W, g0 + g) + (size_t)b * Q8_GROUP_QBYTES;
        block_sums(W, A, t0, T, wq, G, b, 0, s);
        if (raw) {
            store_raw(W, t0, T, g0, G, b, s, raw);
            continue;
        }
        block_scales(W, g0, G, b, dw);
        UNROLL
        for (int t = 0; t < T; t++) {
            __m512 dx = _mm512_set1_ps(A->d[(size_t)(t0 + t) * nb + b]);
            UNROLL
            for (int g = 0; g < G; g++)
                acc[t][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t][g]),
                                            _mm512_mul_ps(dw[g], dx), acc[t][g]);
        }
    }
    if (!raw)
        UNROLL
        for (int t = 0; t < T; t++)
            UNROLL
            for (int g = 0; g < G; g++)
                store_rows(W, y + (size_t)(t0 + t) * W->n_rows, g0 + g, acc[t][g]);
}

/* Block b of T tokens x G groups (the panel path, q8_rect.inc): the sums
** as in tile, then acc[t][g] += sum * scale in memory, so PT x PG sums
** fill the registers. The lead step of a block (its first tokens)
** prefetches the panel's weights and scales PF blocks ahead: the hardware
** prefetchers lose the 2 x PG streams at every 4 KiB page, and reading
** them as they are needed left the step waiting on memory half the time. */
INLINE void step(const q8_weights *W, const q8_act *A, int t0, const int T, int g0,
                 const int G, int b, int lead, float *acc, int32_t *raw)
{
    const uint8_t *wq[GV];
    __m512i s[TM][GV];
    __m512 dw[GV];
    UNROLL
    for (int g = 0; g < G; g++) {
        wq[g] = q8_group_quants(W, g0 + g) + (size_t)b * Q8_GROUP_QBYTES;
        if (lead)
            _mm_prefetch((const char *)(q8_group_scales(W, g0 + g) + (b + PF) * Q8_GROUP),
                         _MM_HINT_T0);
    }
    block_sums(W, A, t0, T, wq, G, b, lead ? PF : 0, s);
    if (raw) {
        store_raw(W, t0, T, g0, G, b, s, raw);
        return;
    }
    block_scales(W, g0, G, b, dw);
    UNROLL
    for (int t = 0; t < T; t++) {
        __m512 dx = _mm512_set1_ps(A->d[(size_t)(t0 + t) * W->nb + b]);
        UNROLL
        for (int g = 0; g < G; g++) {
            float *a = acc + ((size_t)t * G + g) * Q8_GROUP;
            _mm512_store_ps(a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t][g]),
                                               _mm512_mul_ps(dw[g], dx), _mm512_load_ps(a)));
        }
    }
}

#include "q8_rect.inc"

const q8_kernels q8_tier_avx512vnni = { "avx512vnni", 0x80, q8_quantize_avx2, rect };
