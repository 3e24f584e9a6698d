/*
** AVX2 + FMA + F16C attention kernels (specification: the scalar ones in
** attention.c). head_dim must be a multiple of 8; KV_BLOCK is 16, two
** vectors of positions.
*/
#include <immintrin.h>
#include <math.h>
#include "attention.h"
#include "simd_avx2.h"

_Static_assert(KV_BLOCK == 16, "the kernels hold a block's scores in two vectors");

/*
** Scores of two queries (q, r) against the block's 16 positions: s for q,
** u for r, positions 0-7 in [0] and 8-15 in [1]. Each K row is loaded
** once for both; even and odd dimensions go to separate chains, eight in
** all, enough to keep both FMA units busy.
*/
static inline void scores2(const float *q, const float *r, int hd, const float *kt, __m256 s[2], __m256 u[2])
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
    for (int d = 0; d < hd; d += 2, kt += 2 * KV_BLOCK) {
        __m256 k0 = _mm256_loadu_ps(kt), k1 = _mm256_loadu_ps(kt + 8);
        __m256 k2 = _mm256_loadu_ps(kt + KV_BLOCK), k3 = _mm256_loadu_ps(kt + KV_BLOCK + 8);
        __m256 x = _mm256_broadcast_ss(q + d), y = _mm256_broadcast_ss(q + d + 1);
        __m256 z = _mm256_broadcast_ss(r + d), w = _mm256_broadcast_ss(r + d + 1);
        a0 = _mm256_fmadd_ps(x, k0, a0);
        a1 = _mm256_fmadd_ps(x, k1, a1);
        b0 = _mm256_fmadd_ps(y, k2, b0);
        b1 = _mm256_fmadd_ps(y, k3, b1);
        c0 = _mm256_fmadd_ps(z, k0, c0);
        c1 = _mm256_fmadd_ps(z, k1, c1);
        e0 = _mm256_fmadd_ps(w, k2, e0);
        e1 = _mm256_fmadd_ps(w, k3, e1);
    }
    s[0] = _mm256_add_ps(a0, b0);
    s[1] = _mm256_add_ps(a1, b1);
    u[0] = _mm256_add_ps(c0, e0);
    u[1] = _mm256_add_ps(c1, e1);
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

/* Fold one query's scores s (unscaled; [block][half]) of n_pos positions
** into its running softmax. */
static inline void fold_one(__m256 s[][2], int n_pos, int hd, const float *v, float scale,
                            float *m, float *l, float *o)
{
    const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), sc = _mm256_set1_ps(scale);
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY), lim = _mm256_set1_ps((float)n_pos);
    int nv = 2 * ((n_pos + KV_BLOCK - 1) / KV_BLOCK);   /* vectors of 8 scores */
    __m256 *x = &s[0][0], keep[2 * ATTN_SPAN], top = minus_inf;
    for (int i = 0; i < nv; i++) {
        keep[i] = _mm256_cmp_ps(_mm256_add_ps(iota, _mm256_set1_ps(8.0f * i)), lim, _CMP_LT_OQ);
        x[i] = _mm256_blendv_ps(minus_inf, _mm256_mul_ps(x[i], sc), keep[i]);
        top = _mm256_max_ps(top, x[i]);
    }
    float mx = fmaxf(*m, hmax(top)), c = expf(*m - mx), p[ATTN_SPAN * KV_BLOCK];
    __m256 mxv = _mm256_set1_ps(mx), sum = _mm256_setzero_ps();
    for (int i = 0; i < nv; i++) {
        __m256 e = _mm256_and_ps(exp_neg(_mm256_sub_ps(x[i], mxv)), keep[i]);
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(p + 8 * i, e);
    }
    *l = *l * c + hsum(sum);
    int d = 0;
    for (; d + 64 <= hd; d += 64)
        weigh64(o + d, c, p, v + d, hd, n_pos);
    for (; d < hd; d += 8)
        weigh8(o + d, c, p, v + d, hd, n_pos);
    *m = mx;
}

static void fold_avx2(const float *q, int nq, int hd, const float *kt, const float *v,
                      int n_pos, float scale, float *m, float *l, float *o)
{
    int nb = (n_pos + KV_BLOCK - 1) / KV_BLOCK;
    for (int i = 0; i < nq; i += 2) {
        /* an odd last query is paired with itself */
        const float *r = i + 1 < nq ? q + (size_t)(i + 1) * hd : q + (size_t)i * hd;
        __m256 s[ATTN_SPAN][2], u[ATTN_SPAN][2];
        for (int b = 0; b < nb; b++)
            scores2(q + (size_t)i * hd, r, hd, kt + (size_t)b * hd * KV_BLOCK, s[b], u[b]);
        fold_one(s, n_pos, hd, v, scale, m + i, l + i, o + (size_t)i * hd);
        if (i + 1 < nq)
            fold_one(u, n_pos, hd, v, scale, m + i + 1, l + i + 1, o + (size_t)(i + 1) * hd);
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
