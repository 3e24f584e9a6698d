/*
** AVX2 + FMA + F16C attention kernels (specification: the scalar ones in
** attention.c). head_dim must be a multiple of 8; KV_BLOCK is 16, two
** vectors of positions.
*/
#include <immintrin.h>
#include <math.h>
#include "attention.h"

_Static_assert(KV_BLOCK == 16, "the kernels hold a block's scores in two vectors");

/* e^x for x <= 0, within 2 ulp of expf; below -87 gives about 1e-38, not 0. */
static inline __m256 exp_neg(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = x - n ln 2, with ln 2 split so n * hi is exact */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline float hmax(__m256 x)
{
    __m128 y = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    y = _mm_max_ps(y, _mm_movehl_ps(y, y));
    return _mm_cvtss_f32(_mm_max_ss(y, _mm_movehdup_ps(y)));
}

static inline float hsum(__m256 x)
{
    __m128 y = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    y = _mm_add_ps(y, _mm_movehl_ps(y, y));
    return _mm_cvtss_f32(_mm_add_ss(y, _mm_movehdup_ps(y)));
}

/* scores of one query against the block's 16 positions, two chains each */
static inline void scores(const float *q, int hd, const float *kt, __m256 *s0, __m256 *s1)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    for (int d = 0; d < hd; d += 2) {
        __m256 x = _mm256_broadcast_ss(q + d), y = _mm256_broadcast_ss(q + d + 1);
        a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(kt + d * KV_BLOCK), a0);
        a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(kt + d * KV_BLOCK + 8), a1);
        b0 = _mm256_fmadd_ps(y, _mm256_loadu_ps(kt + (d + 1) * KV_BLOCK), b0);
        b1 = _mm256_fmadd_ps(y, _mm256_loadu_ps(kt + (d + 1) * KV_BLOCK + 8), b1);
    }
    *s0 = _mm256_add_ps(a0, b0);
    *s1 = _mm256_add_ps(a1, b1);
}

/* o[0..64) = o * c + sum over t < limit of p[t] v[t]: eight chains */
static inline void weigh64(float *o, float c, const float *p, const float *v, int hd, int limit)
{
    __m256 cv = _mm256_set1_ps(c);
    __m256 o0 = _mm256_mul_ps(_mm256_loadu_ps(o), cv), o1 = _mm256_mul_ps(_mm256_loadu_ps(o + 8), cv);
    __m256 o2 = _mm256_mul_ps(_mm256_loadu_ps(o + 16), cv), o3 = _mm256_mul_ps(_mm256_loadu_ps(o + 24), cv);
    __m256 o4 = _mm256_mul_ps(_mm256_loadu_ps(o + 32), cv), o5 = _mm256_mul_ps(_mm256_loadu_ps(o + 40), cv);
    __m256 o6 = _mm256_mul_ps(_mm256_loadu_ps(o + 48), cv), o7 = _mm256_mul_ps(_mm256_loadu_ps(o + 56), cv);
    for (int t = 0; t < limit; t++, v += hd) {
        __m256 w = _mm256_broadcast_ss(p + t);
        o0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v), o0);
        o1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8), o1);
        o2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 16), o2);
        o3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 24), o3);
        o4 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 32), o4);
        o5 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 40), o5);
        o6 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 48), o6);
        o7 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 56), o7);
    }
    _mm256_storeu_ps(o, o0);
    _mm256_storeu_ps(o + 8, o1);
    _mm256_storeu_ps(o + 16, o2);
    _mm256_storeu_ps(o + 24, o3);
    _mm256_storeu_ps(o + 32, o4);
    _mm256_storeu_ps(o + 40, o5);
    _mm256_storeu_ps(o + 48, o6);
    _mm256_storeu_ps(o + 56, o7);
}

/* the same for 8 values */
static inline void weigh8(float *o, float c, const float *p, const float *v, int hd, int limit)
{
    __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(o), _mm256_set1_ps(c));
    for (int t = 0; t < limit; t++, v += hd)
        acc = _mm256_fmadd_ps(_mm256_broadcast_ss(p + t), _mm256_loadu_ps(v), acc);
    _mm256_storeu_ps(o, acc);
}

static void fold_avx2(const float *q, int nq, int hd, const float *kt, const float *v,
                      int limit, float scale, float *m, float *l, float *o)
{
    const __m256 iota0 = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 iota1 = _mm256_add_ps(iota0, _mm256_set1_ps(8));
    __m256 lim = _mm256_set1_ps((float)limit), minus_inf = _mm256_set1_ps(-INFINITY);
    __m256 keep0 = _mm256_cmp_ps(iota0, lim, _CMP_LT_OQ), keep1 = _mm256_cmp_ps(iota1, lim, _CMP_LT_OQ);
    __m256 sc = _mm256_set1_ps(scale);
    for (int i = 0; i < nq; i++, q += hd, o += hd) {
        __m256 s0, s1;
        scores(q, hd, kt, &s0, &s1);
        s0 = _mm256_blendv_ps(minus_inf, _mm256_mul_ps(s0, sc), keep0);
        s1 = _mm256_blendv_ps(minus_inf, _mm256_mul_ps(s1, sc), keep1);
        float mx = fmaxf(m[i], hmax(_mm256_max_ps(s0, s1)));
        __m256 mxv = _mm256_set1_ps(mx);
        __m256 p0 = _mm256_and_ps(exp_neg(_mm256_sub_ps(s0, mxv)), keep0);
        __m256 p1 = _mm256_and_ps(exp_neg(_mm256_sub_ps(s1, mxv)), keep1);
        float p[KV_BLOCK], c = expf(m[i] - mx);
        _mm256_storeu_ps(p, p0);
        _mm256_storeu_ps(p + 8, p1);
        l[i] = l[i] * c + hsum(_mm256_add_ps(p0, p1));
        int d = 0;
        for (; d + 64 <= hd; d += 64)
            weigh64(o + d, c, p, v + d, hd, limit);
        for (; d < hd; d += 8)
            weigh8(o + d, c, p, v + d, hd, limit);
        m[i] = mx;
    }
}

static void widen_avx2(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
}

const attn_kernels attn_avx2 = { "avx2", fold_avx2, widen_avx2 };
