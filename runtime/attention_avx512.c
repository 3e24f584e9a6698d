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
    for (int k = i; k < i + n; k++)
        top = f->n_pos[k] > top ? f->n_pos[k] : top;
    return top;
}

/*
** Scores of the nq queries from i (a constant once inlined, like nb)
** against the nb blocks from b of the run: s[k * ROW + 16 j ...] = q_k .
** K[t] for block b + j. nq nb chains; each K row is loaded (and widened)
** once for the nq queries, each broadcast of a query value serves the nb
** blocks.
*/
static inline ALWAYS_INLINE void scores(const attn_fold *f, int i, int b, float *s, const int nq, const int nb,
                                        const int f16)
{
    const float *q[8];
    __m512 a[8][4];
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++) {
        q[k] = f->q[i + k];
#pragma GCC unroll 4
        for (int j = 0; j < nb; j++)
            a[k][j] = _mm512_setzero_ps();
    }
    for (int d = 0; d < f->hd; d++) {
        __m512 x[4];
#pragma GCC unroll 4
        for (int j = 0; j < nb; j++)
            x[j] = load16(f->k[b + j], (size_t)d * KV_BLOCK, f16);
#pragma GCC unroll 8
        for (int k = 0; k < nq; k++) {
            __m512 w = _mm512_set1_ps(q[k][d]);
#pragma GCC unroll 4
            for (int j = 0; j < nb; j++)
                a[k][j] = _mm512_fmadd_ps(w, x[j], a[k][j]);
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++)
#pragma GCC unroll 4
        for (int j = 0; j < nb; j++)
            _mm512_storeu_ps(s + k * ROW + j * KV_BLOCK, a[k][j]);
}

/* Query i's scores to weights in place, 0 from n_pos to top (rounded up
** to a block); folds their sum into l and returns c = e^(m - m'). */
static inline ALWAYS_INLINE float softmax_row(const attn_fold *f, int i, float *s, int top)
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
** o_k = o_k c_k + sum over t < top of p_k[t] V[t] for the nq queries
** from i, dimensions [d, d + 16 nv). Each V row is loaded (and widened)
** once for the nq; nq nv chains, kept in registers since every loop over
** them unrolls.
*/
static inline ALWAYS_INLINE void weigh(const attn_fold *f, int i, const float *p, const float *c, int d, int top,
                                       const int nq, const int nv, const int f16)
{
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++)
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
#pragma GCC unroll 4
            for (int k = 0; k < nq; k++) {
                __m512 w = _mm512_set1_ps(pb[k * ROW + t]);
#pragma GCC unroll 4
                for (int j = 0; j < nv; j++)
                    acc[k][j] = _mm512_fmadd_ps(w, x[j], acc[k][j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        float *o = f->o + (size_t)f->state[i + k] * f->hd + d;
        __m512 ck = _mm512_set1_ps(c[k]);
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            _mm512_storeu_ps(o + 16 * j, _mm512_fmadd_ps(_mm512_loadu_ps(o + 16 * j), ck, acc[k][j]));
    }
}

/* The weighted values of the nq (up to 4) queries from i, whose weights
** are at p (0 from each one's n_pos up to top) and factors at c. */
static inline ALWAYS_INLINE void weigh_all(const attn_fold *f, int i, const float *p, const float *c, int top,
                                           const int nq, const int f16)
{
    int d = 0;
    for (; d + 64 <= f->hd; d += 64)
        weigh(f, i, p, c, d, top, nq, 4, f16);
    for (; d < f->hd; d += 16)   /* head sizes that are not a multiple of 64 */
        weigh(f, i, p, c, d, top, nq, 1, f16);
}

/*
** A tile of nq (1 to 8, a constant) queries from i: their scores, four
** blocks at a time when there are at most four queries (two when more),
** then each row's softmax, then the weighted values four queries at a
** time. Exact widths: no query is computed that is not used.
*/
static inline ALWAYS_INLINE void tile(const attn_fold *f, int i, const int nq, const int f16)
{
    float *s = f->s, c[8];
    int top = reach(f, i, nq), nb = (top + KV_BLOCK - 1) / KV_BLOCK, b = 0;
    int top4[2] = { reach(f, i, nq < 4 ? nq : 4), nq > 4 ? reach(f, i + 4, nq - 4) : 0 };
    for (; nq <= 4 && b + 4 <= nb; b += 4)
        scores(f, i, b, s + b * KV_BLOCK, nq, 4, f16);
    for (; b + 2 <= nb; b += 2)
        scores(f, i, b, s + b * KV_BLOCK, nq, 2, f16);
    if (b < nb)
        scores(f, i, b, s + b * KV_BLOCK, nq, 1, f16);
    for (int k = 0; k < nq; k++)   /* weights as far as the four-query tile of the row reads */
        c[k] = softmax_row(f, i + k, s + (size_t)k * ROW, top4[k / 4]);
    if (nq > 4) {
        weigh_all(f, i, s, c, top4[0], 4, f16);
        weigh_all(f, i + 4, s + 4 * ROW, c + 4, top4[1], nq - 4, f16);
    } else {
        weigh_all(f, i, s, c, top4[0], nq, f16);
    }
}

static inline ALWAYS_INLINE void fold_as(const attn_fold *f, const int f16)
{
    for (int i = 0; i < f->nq; i += 8)
        switch (f->nq - i) {
        case 1: tile(f, i, 1, f16); break;
        case 2: tile(f, i, 2, f16); break;
        case 3: tile(f, i, 3, f16); break;
        case 4: tile(f, i, 4, f16); break;
        case 5: tile(f, i, 5, f16); break;
        case 6: tile(f, i, 6, f16); break;
        case 7: tile(f, i, 7, f16); break;
        default: tile(f, i, 8, f16); break;
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
