/*
** AVX-512 attention kernels (specification: the scalar ones in
** attention.c). A block's 16 positions are one zmm vector; head_dim must
** be a multiple of 16. Keys and values are read where the cache holds
** them, halves widened in registers. Chosen when the int8 kernels run the
** avx512vnni tier (which needs AVX-512 F, BW, DQ, VL).
*/
#include <immintrin.h>
#include <math.h>
#include "attention.h"
#include "simd_avx512.h"

_Static_assert(KV_BLOCK == 16, "a block's scores are one zmm vector");
_Static_assert(ATTN_TILE == 8, "tiles of eight queries");

#define ROW (ATTN_SPAN * KV_BLOCK)   /* floats of one query's scores in f->s */

/* The micro-kernels take their tile shape and element type as parameters
** that must be constants where they are used, so their loops unroll into
** registers and the element test folds away. */
#define ALWAYS_INLINE __attribute__((always_inline))

/* 16 values of a K or V block from element i, as floats. */
static inline ALWAYS_INLINE __m512 load16(const void *block, size_t i, const int f16)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)block + i)));
    return _mm512_loadu_ps((const float *)block + i);
}

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
** Scores of nq (8 or 4) queries against blocks b and b + 1 of the run
** (b + 1 may be past the last one needed: then its scores are neither
** computed nor stored): s[k * ROW + 0..32) = q_k . K[t]. 2 nq chains;
** each broadcast of a query value serves both blocks.
*/
static inline ALWAYS_INLINE void scores_x2(const attn_fold *f, int i, int b, int nb, float *s, const int nq,
                                           const int f16)
{
    const float *q[8];
    __m512 a[8], c[8];
    const void *k0 = f->k[b], *k1 = b + 1 < nb ? f->k[b + 1] : NULL;
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++) {
        q[k] = query(f, i, k);
        a[k] = c[k] = _mm512_setzero_ps();
    }
    if (k1) {
        for (int d = 0; d < f->hd; d++) {
            __m512 x = load16(k0, (size_t)d * KV_BLOCK, f16), y = load16(k1, (size_t)d * KV_BLOCK, f16);
#pragma GCC unroll 8
            for (int k = 0; k < nq; k++) {
                __m512 w = _mm512_set1_ps(q[k][d]);
                a[k] = _mm512_fmadd_ps(w, x, a[k]);
                c[k] = _mm512_fmadd_ps(w, y, c[k]);
            }
        }
    } else {
        for (int d = 0; d < f->hd; d++) {
            __m512 x = load16(k0, (size_t)d * KV_BLOCK, f16);
#pragma GCC unroll 8
            for (int k = 0; k < nq; k++)
                a[k] = _mm512_fmadd_ps(_mm512_set1_ps(q[k][d]), x, a[k]);
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++) {
        _mm512_storeu_ps(s + k * ROW, a[k]);
        if (k1)
            _mm512_storeu_ps(s + k * ROW + KV_BLOCK, c[k]);
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
    float top_s = _mm512_reduce_max_ps(most), mx = top_s > *m ? top_s : *m;
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

/*
** o_k = o_k c_k + sum over t < top of p_k[t] V[t] for the tq queries of
** the tile at i, dimensions [d, d + 16 nv). Each V row is loaded (and
** widened) once for the tile; tq nv chains, kept in registers since every
** loop over them unrolls.
*/
static inline ALWAYS_INLINE void weigh(const attn_fold *f, int i, const float *p, const float *c, int d, int top,
                                       const int tq, const int nv, const int f16)
{
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int k = 0; k < tq; k++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            acc[k][j] = _mm512_setzero_ps();
    for (int b = 0; b * KV_BLOCK < top; b++) {
        int n = top - b * KV_BLOCK < KV_BLOCK ? top - b * KV_BLOCK : KV_BLOCK;
        const float *pb = p + b * KV_BLOCK;
        for (int t = 0; t < n; t++) {
            __m512 x[4];
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++)
                x[j] = load16(f->v[b], (size_t)t * f->hd + d + 16 * j, f16);
#pragma GCC unroll 8
            for (int k = 0; k < tq; k++) {
                __m512 w = _mm512_set1_ps(pb[k * ROW + t]);
#pragma GCC unroll 4
                for (int j = 0; j < nv; j++)
                    acc[k][j] = _mm512_fmadd_ps(w, x[j], acc[k][j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < tq; k++) {
        if (i + k >= f->nq)
            break;
        float *o = f->o + (size_t)f->state[i + k] * f->hd + d;
        __m512 ck = _mm512_set1_ps(c[k]);
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            _mm512_storeu_ps(o + 16 * j, _mm512_fmadd_ps(_mm512_loadu_ps(o + 16 * j), ck, acc[k][j]));
    }
}

/*
** Tiles of eight queries for the scores, then each row's softmax, then
** tiles of four for the weighted values (sixteen accumulators). Rows of a
** tile past nq repeat the last query; their results are not stored.
*/
static inline ALWAYS_INLINE void fold_as(const attn_fold *f, const int f16)
{
    for (int i = 0; i < f->nq; i += 8) {
        int top = reach(f, i, 8);
        float *s = f->s;
        int nb = (top + KV_BLOCK - 1) / KV_BLOCK;
        for (int b = 0; b < nb; b += 2) {
            if (f->nq - i <= 4)   /* a GQA group of up to four alone in a task */
                scores_x2(f, i, b, nb, s + b * KV_BLOCK, 4, f16);
            else
                scores_x2(f, i, b, nb, s + b * KV_BLOCK, 8, f16);
        }
        for (int h = i; h < i + 8 && h < f->nq; h += 4) {
            float c[4];
            int top4 = reach(f, h, 4);
            for (int k = 0; k < 4; k++)
                c[k] = h + k < f->nq ? softmax_row(f, h + k, s + (size_t)(h - i + k) * ROW, top4) : 0;
            const float *p = s + (size_t)(h - i) * ROW;
            int d = 0;
            for (; d + 64 <= f->hd; d += 64)
                weigh(f, h, p, c, d, top4, 4, 4, f16);
            for (; d < f->hd; d += 16)   /* head sizes that are not a multiple of 64 */
                weigh(f, h, p, c, d, top4, 4, 1, f16);
        }
    }
}

static void fold_avx512(const attn_fold *f)
{
    if (f->f16)
        fold_as(f, 1);
    else
        fold_as(f, 0);
}

static void narrow_avx512(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

const attn_kernels attn_avx512 = { "avx512", fold_avx512, narrow_avx512 };
