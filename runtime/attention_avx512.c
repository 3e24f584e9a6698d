/*
** AVX-512 attention kernels (specification: the scalar ones in
** attention.c). A block's 16 positions are one zmm vector; head_dim must
** be a multiple of 16. Chosen when the int8 kernels run the avx512vnni
** tier (which needs AVX-512 F, BW, DQ, VL).
*/
#include <immintrin.h>
#include <math.h>
#include "attention.h"
#include "simd_avx512.h"

_Static_assert(KV_BLOCK == 16, "a block's scores are one zmm vector");

#define ROW (ATTN_SPAN * KV_BLOCK)   /* floats of one query's scores in f->s */

/* The micro-kernels take their tile width as a parameter that must be a
** constant where they are used, so their loops unroll into registers. */
#define ALWAYS_INLINE __attribute__((always_inline))

/* Positions the queries [i, i + n) read, at most. */
static inline int reach(const attn_fold *f, int i, int n)
{
    int top = 0;
    for (int k = i; k < i + n && k < f->nq; k++)
        top = f->n_pos[k] > top ? f->n_pos[k] : top;
    return top;
}

/* Query i + k of a tile, the last one repeated past nq. */
static inline const float *query(const attn_fold *f, int i, int k)
{
    return f->q[i + k < f->nq ? i + k : f->nq - 1];
}

/*
** Scores of nq (8 or 4, a constant once inlined) queries against two
** consecutive blocks (the second may be one past the last: then kt1 is
** NULL and its scores are not stored): s[k * ROW + 0..32) = q_k . K[t].
** 2 nq chains; each broadcast of a query value serves both blocks, so
** loads stay below the FMAs. The loops over k unroll, keeping the chains
** in registers.
*/
static inline ALWAYS_INLINE void scores_x2(const attn_fold *f, int i, const float *kt0, const float *kt1, float *s, const int nq)
{
    const float *q[8];
    __m512 a[8], b[8];
    const float *k1 = kt1 ? kt1 : kt0;
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++) {
        q[k] = query(f, i, k);
        a[k] = b[k] = _mm512_setzero_ps();
    }
    for (int d = 0; d < f->hd; d++) {
        __m512 x = _mm512_loadu_ps(kt0 + d * KV_BLOCK), y = _mm512_loadu_ps(k1 + d * KV_BLOCK);
#pragma GCC unroll 8
        for (int k = 0; k < nq; k++) {
            __m512 w = _mm512_set1_ps(q[k][d]);
            a[k] = _mm512_fmadd_ps(w, x, a[k]);
            b[k] = _mm512_fmadd_ps(w, y, b[k]);
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++) {
        _mm512_storeu_ps(s + k * ROW, a[k]);
        if (kt1)
            _mm512_storeu_ps(s + k * ROW + KV_BLOCK, b[k]);
    }
}

/* Query i's scores to weights in place, 0 from n_pos to top (rounded up
** to a block); folds their sum into l and returns c = e^(m - m'). */
static inline float softmax_row(const attn_fold *f, int i, float *s, int top)
{
    int nb = (top + KV_BLOCK - 1) / KV_BLOCK, n = f->n_pos[i];
    __m512 x[ATTN_SPAN], most = _mm512_set1_ps(-INFINITY), sc = _mm512_set1_ps(f->scale);
    __mmask16 keep[ATTN_SPAN];
    for (int b = 0; b < nb; b++) {
        int left = n - b * KV_BLOCK;
        keep[b] = left >= KV_BLOCK ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
        x[b] = _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), keep[b], _mm512_loadu_ps(s + b * KV_BLOCK), sc);
        most = _mm512_max_ps(most, x[b]);
    }
    float *m = f->m + f->state[i], *l = f->l + f->state[i];
    float mx = fmaxf(*m, _mm512_reduce_max_ps(most));
    float c = _mm512_cvtss_f32(exp_neg16(_mm512_set1_ps(*m - mx)));
    __m512 mxv = _mm512_set1_ps(mx), sum = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 e = _mm512_maskz_mov_ps(keep[b], exp_neg16(_mm512_sub_ps(x[b], mxv)));
        sum = _mm512_add_ps(sum, e);
        _mm512_storeu_ps(s + b * KV_BLOCK, e);
    }
    *l = *l * c + _mm512_reduce_add_ps(sum);
    *m = mx;
    return c;
}

typedef struct tile4 { __m512 v[4][4]; } tile4;

/*
** For the four queries of a tile, acc[k] = sum over t < top of p_k[t]
** (row t of V at dimension d: nv vectors of 16). Each V row is loaded
** once for the four; 4 nv chains. nv is a constant once inlined, so the
** loops unroll into registers (the result comes back by value: an array
** of vectors passed by pointer would stay in memory).
*/
static inline ALWAYS_INLINE tile4 mul4(const attn_fold *f, const float *p, int d, int top, const int nv)
{
    __m512 acc[4][4];
    const float *v = f->v + d;
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            acc[k][j] = _mm512_setzero_ps();
    for (int t = 0; t < top; t++, v += f->hd) {
        __m512 x[4];
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            x[j] = _mm512_loadu_ps(v + 16 * j);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m512 w = _mm512_set1_ps(p[k * ROW + t]);
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++)
                acc[k][j] = _mm512_fmadd_ps(w, x[j], acc[k][j]);
        }
    }
    tile4 r;
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            r.v[k][j] = acc[k][j];
    return r;
}

/* o_k = o_k c_k + sum over t < top of p_k[t] V[t] for the four queries of
** the tile at i, dimensions [d, d + 16 nv). */
static inline ALWAYS_INLINE void weigh(const attn_fold *f, int i, const float *p, const float *c, int d, int top, const int nv)
{
    tile4 t = mul4(f, p, d, top, nv);
    for (int k = 0; k < 4 && i + k < f->nq; k++) {
        float *o = f->o + (size_t)f->state[i + k] * f->hd + d;
        __m512 ck = _mm512_set1_ps(c[k]);
        for (int j = 0; j < nv; j++)
            _mm512_storeu_ps(o + 16 * j, _mm512_fmadd_ps(_mm512_loadu_ps(o + 16 * j), ck, t.v[k][j]));
    }
}

/*
** Tiles of eight queries for the scores, then each row's softmax, then
** tiles of four for the weighted values (sixteen accumulators). Rows of a
** tile past nq repeat the last query; their results are not stored.
*/
static void fold_avx512(const attn_fold *f)
{
    for (int i = 0; i < f->nq; i += 8) {
        int top = reach(f, i, 8);
        float *s = f->s + (size_t)i * ROW;
        int nb = (top + KV_BLOCK - 1) / KV_BLOCK;
        for (int b = 0; b < nb; b += 2) {
            const float *kt0 = f->kt + (size_t)b * f->hd * KV_BLOCK;
            const float *kt1 = b + 1 < nb ? kt0 + (size_t)f->hd * KV_BLOCK : NULL;
            if (f->nq - i <= 4)   /* a GQA group of up to four alone in a task */
                scores_x2(f, i, kt0, kt1, s + b * KV_BLOCK, 4);
            else
                scores_x2(f, i, kt0, kt1, s + b * KV_BLOCK, 8);
        }
        for (int h = i; h < i + 8 && h < f->nq; h += 4) {
            float c[4];
            int top4 = reach(f, h, 4);
            for (int k = 0; k < 4; k++)
                c[k] = h + k < f->nq ? softmax_row(f, h + k, s + (size_t)(h - i + k) * ROW, top4) : 0;
            const float *p = s + (size_t)(h - i) * ROW;
            int d = 0;
            for (; d + 64 <= f->hd; d += 64)
                weigh(f, h, p, c, d, top4, 4);
            for (; d < f->hd; d += 16)   /* head sizes that are not a multiple of 64 */
                weigh(f, h, p, c, d, top4, 1);
        }
    }
}

static void widen_avx512(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
}

static void narrow_avx512(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

const attn_kernels attn_avx512 = { "avx512", fold_avx512, widen_avx512, narrow_avx512 };
