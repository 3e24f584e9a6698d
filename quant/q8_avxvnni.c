/*
** The avxvnni tier: vpdpbusd on ymm (VEX encoding), weights stored as
** w + 128 and the offset cancelled by starting each block at nsum.
*/
#include <immintrin.h>
#include "q8_simd.h"

#define TM 4   /* GEMM tile: tokens */
#define GM 1   /*            groups */
#define GV 2   /* GEMV tile: groups */
#define PT 4   /* panel span: tokens */
#define PG 1   /*            groups */
#define PB 16  /*            blocks (the weights every token reuses from L1) */

INLINE __m256i ymm_init(int32_t nsum) { return _mm256_set1_epi32(nsum); }
INLINE __m256i ymm_prep(__m256i w) { return w; }

INLINE __m256i ymm_dot(__m256i s, __m256i w, __m256i unused, __m256i x)
{
    (void)unused;
    return _mm256_dpbusd_avx_epi32(s, w, x);
}

INLINE __m256i ymm_dot4(__m256i s, __m256i u, __m256i x)
{
    return _mm256_dpbusd_avx_epi32(s, u, x);
}

#include "q8_ymm.inc"

const q8_kernels q8_tier_avxvnni = { "avxvnni", 0x80, q8_quantize_avx2, rect, rect4,
                                        rect5, rect6, rect3, rect2, rect4c, rect5c };
