/*
** The avx2 tier: vpmaddubsw multiplies unsigned by signed bytes, so each
** product w*x is formed as |w| * (x with w's sign) (vpsignb), then
** vpmaddwd sums the pairs into int32. Activations never hold -128, so a
** pair is at most 2*128*127 and the 16-bit step cannot saturate; weights
** may be -128 (|w| = 128 read as unsigned). Also the activation quantizer
** of the avxvnni tier (avx512vnni has its own).
*/
#include <immintrin.h>
#include "q8_simd.h"

#define TM 4   /* GEMM tile: tokens */
#define GM 1   /*            groups */
#define GV 2   /* GEMV tile: groups */
#define PT 4   /* panel span: tokens */
#define PG 1   /*            groups */
#define PB 16  /*            blocks (the weights every token reuses from L1) */

INLINE __m256i ymm_init(int32_t nsum) { (void)nsum; return _mm256_setzero_si256(); }
INLINE __m256i ymm_prep(__m256i w) { return _mm256_abs_epi8(w); }

INLINE __m256i ymm_dot(__m256i s, __m256i w, __m256i wabs, __m256i x)
{
    __m256i pairs = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(x, w));
    s = _mm256_add_epi32(s, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
    /* keep one running sum: left free, GCC regroups the 8 steps of a block
    ** into a tree whose partial sums spill (25% slower) */
    __asm__("" : "+x"(s));
    return s;
}

/* 4-bit quants are unsigned already: no sign to move onto x */
INLINE __m256i ymm_dot4(__m256i s, __m256i u, __m256i x)
{
    s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1)));
    __asm__("" : "+x"(s));
    return s;
}

#include "q8_ymm.inc"

const q8_kernels q8_tier_avx2 = { "avx2", 0, q8_quantize_avx2, rect, rect4, rect5, rect6, rect3, rect2,
                                     rect4c, rect5c };

/* The block's largest |x|, in every lane. */
static __m256 block_amax(const float *x)
{
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps();
    for (int v = 0; v < 4; v++)   /* max(|x|, m) returns m for a NaN */
        m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + 8 * v), abs_mask), m);
    m = _mm256_max_ps(m, _mm256_permute2f128_ps(m, m, 1));
    m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
}

/* The sum of v's eight lanes. */
static int32_t lanes_sum(__m256i v)
{
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1)));
}

/* q = x * id to nearest even, clamped (a NaN to -127: max with the
** constant second returns it); *half gets the first half's sum(q), *nsum
** -128 * sum(q). */
static void block_quantize(const float *x, float id, int8_t *q, int32_t *nsum, int32_t *half)
{
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    __m256 vid = _mm256_set1_ps(id);
    __m256i iv[4];
    for (int v = 0; v < 4; v++)
        iv[v] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(
                    _mm256_mul_ps(_mm256_loadu_ps(x + 8 * v), vid), lo), hi));
    /* the packs interleave 128-bit lanes; the permute restores order */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]),
                                   _mm256_packs_epi32(iv[2], iv[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p);
    *half = lanes_sum(_mm256_add_epi32(iv[0], iv[1]));
    *nsum = -128 * (*half + lanes_sum(_mm256_add_epi32(iv[2], iv[3])));
}

/* Same arithmetic as q8_quantize_ref. The scales of 8 blocks are divided
** at once: two scalar divisions per block keep the divider busy. The
** maxima go into their lanes in registers (stored one by one and read
** back as a vector, they stall the division). */
void q8_quantize_avx2(const float *x, int K, int8_t *q, float *d, int32_t *nsum, int32_t *hsum)
{
    const int nb = K / Q8_BLOCK;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int b0 = 0; b0 < nb; b0 += 8) {
        int n = nb - b0 < 8 ? nb - b0 : 8;
        float amax[8], id[8];
        __m256 mv = _mm256_setzero_ps();
        for (int i = 0; i < n; i++)
            mv = _mm256_blendv_ps(mv, block_amax(x + (size_t)(b0 + i) * Q8_BLOCK),
                                  _mm256_castsi256_ps(_mm256_cmpeq_epi32(lane, _mm256_set1_epi32(i))));
        __m256 dv = _mm256_div_ps(mv, _mm256_set1_ps(127.0f));
        __m256 zero = _mm256_cmp_ps(dv, _mm256_setzero_ps(), _CMP_EQ_OQ);
        _mm256_storeu_ps(id, _mm256_andnot_ps(zero, _mm256_div_ps(_mm256_set1_ps(1.0f), dv)));
        _mm256_storeu_ps(amax, dv);
        for (int i = 0; i < n; i++) {
            size_t b = (size_t)b0 + i;
            d[b] = amax[i];
            block_quantize(x + b * Q8_BLOCK, id[i], q + b * Q8_BLOCK, nsum + b, hsum + b);
        }
    }
}
