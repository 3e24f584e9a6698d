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

/* Store the 16 rows of group g for one token, fewer past n_rows. */
INLINE void store_rows(const q8_weights *W, float *y, int g, __m512 v)
{
    __mmask16 m = (__mmask16)((1u << group_rows(W, g)) - 1);
    _mm512_mask_storeu_ps(y + (size_t)g * Q8_GROUP, m, v);
}

INLINE void tile(const q8_weights *W, const q8_act *A, int t0, const int T, int g0,
                 const int G, float *y, int32_t *raw)
{
    const int nb = W->nb, K = W->K;
    const uint8_t *wq[GV];
    const uint16_t *ws[GV];
    __m512 acc[TM][GV];
    UNROLL
    for (int g = 0; g < G; g++) {
        wq[g] = q8_group_quants(W, g0 + g);
        ws[g] = q8_group_scales(W, g0 + g);
        UNROLL
        for (int t = 0; t < T; t++)
            acc[t][g] = _mm512_setzero_ps();
    }
    for (int b = 0; b < nb; b++) {
        __m512i s[TM][GV];
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
            for (int g = 0; g < G; g++)
                w[g] = _mm512_load_si512(wq[g] + (size_t)b * Q8_GROUP_QBYTES + j * 64);
            UNROLL
            for (int t = 0; t < T; t++) {
                __m512i xb = _mm512_set1_epi32(load4(x + (size_t)t * K + 4 * j));
                UNROLL
                for (int g = 0; g < G; g++)
                    s[t][g] = _mm512_dpbusd_epi32(s[t][g], w[g], xb);
            }
        }
        if (raw) {
            UNROLL
            for (int t = 0; t < T; t++)
                UNROLL
                for (int g = 0; g < G; g++)
                    _mm512_storeu_si512(raw + (((size_t)(t0 + t) * W->n_groups + g0 + g) * nb + b)
                                        * Q8_GROUP, s[t][g]);
            continue;
        }
        __m512 dw[GV];
        UNROLL
        for (int g = 0; g < G; g++)
            dw[g] = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(ws[g] + b * Q8_GROUP)));
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

#include "q8_rect.inc"

const q8_kernels q8_tier_avx512vnni = { "avx512vnni", 0x80, q8_quantize_avx2, rect };
