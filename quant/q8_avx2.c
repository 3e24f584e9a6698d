/*
** The avx2 tier: vpmaddubsw multiplies unsigned by signed bytes, so each
** product w*x is formed as |w| * (x with w's sign) (vpsignb), then
** vpmaddwd sums the pairs into int32. Activations never hold -128, so a
** pair is at most 2*128*127 and the 16-bit step cannot saturate; weights
** may be -128 (|w| = 128 read as unsigned). Also the activation quantizer
** of every x86 tier.
*/
#include <immintrin.h>
#include "q8_simd.h"

#define TM 4   /* GEMM tile: tokens */
#define GM 1   /*            groups */
#define GV 2   /* GEMV tile: groups */

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

#include "q8_ymm.inc"

const q8_kernels q8_tier_avx2 = { "avx2", 0, q8_quantize_avx2, rect };

static float hmax(__m256 v)
{
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

static int32_t hsum(__m256i v)
{
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1)));
}

/* Same arithmetic as q8_quantize_ref: max/min with the constant second
** return it for a NaN, and cvtps rounds to nearest even. */
void q8_quantize_avx2(const float *x, int K, int8_t *q, float *d, int32_t *nsum)
{
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    for (int b = 0; b < K / Q8_BLOCK; b++, x += Q8_BLOCK, q += Q8_BLOCK) {
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + 8 * i);
            amax = _mm256_max_ps(_mm256_and_ps(v[i], abs_mask), amax);
        }
        float db = hmax(amax) / 127.0f;
        __m256 id = _mm256_set1_ps(db != 0.0f ? 1.0f / db : 0.0f);
        __m256i iv[4];
        for (int i = 0; i < 4; i++)
            iv[i] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[i], id), lo), hi));
        int32_t sum = hsum(_mm256_add_epi32(_mm256_add_epi32(iv[0], iv[1]),
                                            _mm256_add_epi32(iv[2], iv[3])));
        /* the packs interleave 128-bit lanes; the permute restores order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]),
                                       _mm256_packs_epi32(iv[2], iv[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)q, p);
        d[b] = db;
        nsum[b] = -128 * sum;
    }
}
