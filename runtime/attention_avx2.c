/*
** AVX2 + FMA + F16C attention kernels (specification: the scalar ones in
** attention.c). head_dim must be a multiple of 8; KV_BLOCK is 16, two
** vectors of positions. Keys and values are read where the cache holds
** them, halves widened in registers.
*/
#include <immintrin.h>
#include <math.h>
#include "attention.h"
#include "simd_avx2.h"

_Static_assert(KV_BLOCK == 16, "the kernels hold a block's scores in two vectors");
_Static_assert(ATTN_TILE >= 4, "tiles of four queries");

#define ROW (ATTN_SPAN * KV_BLOCK)   /* floats of one query's scores in f->s */

/* The micro-kernels take their tile width and element type as parameters
** that must be constants where they are used, so their loops unroll into
** registers and the element test folds away. */
#define ALWAYS_INLINE __attribute__((always_inline))

/* 8 values of a K or V block from element i, as floats. */
static inline ALWAYS_INLINE __m256 load8(const void *block, size_t i, const int f16)
{
    if (f16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)block + i)));
    return _mm256_loadu_ps((const float *)block + i);
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
** The micro-kernel of both products: for the nq (up to four) rows b[k] of
** a tile, acc[k] += sum over j < n of b[k][j] * (row j of a block: nv
** vectors of 8 from element i + j * stride). Scores take a = K (rows of
** 16 positions, nv 2) and b = the queries; weighted values take a = V (16
** or 8 dimensions) and b = the weights. Each row is loaded once for the
** nq; nq nv chains, times WAYS(nq nv) sums over every WAYS'th j (added at
** the end) where they are fewer than 8, too few to hide the FMA's latency
** (at most 15 registers). nq, nv and f16 are constants once inlined, so
** the loops unroll into registers.
*/
typedef struct tile4 { __m256 v[4][2]; } tile4;

#define WAYS(n) ((n) >= 8 ? 1 : (n) >= 4 ? 2 : 4)

static inline ALWAYS_INLINE tile4 mul4(tile4 t, const void *a, size_t i, size_t stride, int n,
                                       const float *const b[4], const int nq, const int nv, const int f16)
{
    const int W = WAYS(nq * nv);
    __m256 acc[4][4][2];
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        acc[0][k][0] = t.v[k][0], acc[0][k][1] = t.v[k][1];
#pragma GCC unroll 4
        for (int w = 1; w < W; w++)
            acc[w][k][0] = acc[w][k][1] = _mm256_setzero_ps();
    }
    int j = 0;
    for (; j + W <= n; j += W)
#pragma GCC unroll 4
        for (int w = 0; w < W; w++) {
            size_t at = i + (size_t)(j + w) * stride;
            __m256 x = load8(a, at, f16), y = nv == 2 ? load8(a, at + 8, f16) : x;
#pragma GCC unroll 4
            for (int k = 0; k < nq; k++) {
                __m256 c = _mm256_broadcast_ss(b[k] + j + w);
                acc[w][k][0] = _mm256_fmadd_ps(c, x, acc[w][k][0]);
                if (nv == 2)
                    acc[w][k][1] = _mm256_fmadd_ps(c, y, acc[w][k][1]);
            }
        }
    for (; j < n; j++) {   /* a block's last positions, fewer than W */
        size_t at = i + (size_t)j * stride;
        __m256 x = load8(a, at, f16), y = nv == 2 ? load8(a, at + 8, f16) : x;
#pragma GCC unroll 4
        for (int k = 0; k < nq; k++) {
            __m256 c = _mm256_broadcast_ss(b[k] + j);
            acc[0][k][0] = _mm256_fmadd_ps(c, x, acc[0][k][0]);
            if (nv == 2)
                acc[0][k][1] = _mm256_fmadd_ps(c, y, acc[0][k][1]);
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
#pragma GCC unroll 4
        for (int w = 1; w < W; w++) {
            acc[0][k][0] = _mm256_add_ps(acc[0][k][0], acc[w][k][0]);
            acc[0][k][1] = _mm256_add_ps(acc[0][k][1], acc[w][k][1]);
        }
        t.v[k][0] = acc[0][k][0], t.v[k][1] = acc[0][k][1];
    }
    return t;
}

static inline tile4 zero4(void)
{
    tile4 t;
    for (int k = 0; k < 4; k++)
        t.v[k][0] = t.v[k][1] = _mm256_setzero_ps();
    return t;
}

/* Scores of nq queries against one block: s[k][0..16) = q_k . K[t]. */
static inline ALWAYS_INLINE void scores4(const float *const q[4], int hd, const void *kt, float *s, const int nq,
                                         const int f16)
{
    tile4 t = mul4(zero4(), kt, 0, KV_BLOCK, hd, q, nq, 2, f16);
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        _mm256_storeu_ps(s + k * ROW, t.v[k][0]);
        _mm256_storeu_ps(s + k * ROW + 8, t.v[k][1]);
    }
}

/*
** Turn query i's scores into weights e^(s - m') in place, 0 from n_pos up
** to top (rounded up to a block: what its tile computed), fold their sum
** into l, and return the factor c = e^(m - m') that rescales what o held.
*/
static inline ALWAYS_INLINE float softmax_row(const attn_fold *f, int i, float *s, int top)
{
    const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), sc = _mm256_set1_ps(f->scale);
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY), lim = _mm256_set1_ps((float)f->n_pos[i]);
    int nv = 2 * ((top + KV_BLOCK - 1) / KV_BLOCK);
    __m256 x[2 * ATTN_SPAN], keep[2 * ATTN_SPAN], most = minus_inf;
    for (int j = 0; j < nv; j++) {
        keep[j] = _mm256_cmp_ps(_mm256_add_ps(iota, _mm256_set1_ps(8.0f * j)), lim, _CMP_LT_OQ);
        x[j] = _mm256_blendv_ps(minus_inf, _mm256_mul_ps(_mm256_loadu_ps(s + 8 * j), sc), keep[j]);
        most = _mm256_max_ps(most, x[j]);
    }
    float *m = f->m + f->state[i], *l = f->l + f->state[i];
    float top_s = hmax(most), mx = top_s > *m ? top_s : *m, c = expf(*m - mx);
    __m256 mxv = _mm256_set1_ps(mx), sum = _mm256_setzero_ps();
    for (int j = 0; j < nv; j++) {
        __m256 e = _mm256_and_ps(exp_neg(_mm256_sub_ps(x[j], mxv)), keep[j]);
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(s + 8 * j, e);
    }
    *l = *l * c + hsum(sum);
    *m = mx;
    return c;
}

/* o_k = o_k c_k + sum over t < top of p_k[t] V[t], for dimensions
** [d, d + 8 nv) of the nq queries of the tile at i. */
static inline ALWAYS_INLINE void weigh(const attn_fold *f, int i, const float *p, const float *c, int d, int top,
                                       const int nq, const int nv, const int f16)
{
    tile4 t = zero4();
    for (int b = 0; b * KV_BLOCK < top; b++) {
        const float *const w[4] = { p + b * KV_BLOCK, p + ROW + b * KV_BLOCK, p + 2 * ROW + b * KV_BLOCK,
                                    p + 3 * ROW + b * KV_BLOCK };
        int n = top - b * KV_BLOCK < KV_BLOCK ? top - b * KV_BLOCK : KV_BLOCK;
        t = mul4(t, f->v[b], (size_t)d, (size_t)f->hd, n, w, nq, nv, f16);
    }
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        float *o = f->o + (size_t)f->state[i + k] * f->hd + d;
        __m256 ck = _mm256_set1_ps(c[k]);
        for (int j = 0; j < nv; j++)
            _mm256_storeu_ps(o + 8 * j, _mm256_fmadd_ps(_mm256_loadu_ps(o + 8 * j), ck, t.v[k][j]));
    }
}

/*
** A tile of nq (1 to 4, a constant) queries from i, GEMM-like: their
** scores against every block (each K row loaded once for the tile), then
** each row's softmax, then the weighted values (each V row loaded once
** for the tile). Exact widths: no query is computed that is not used.
*/
static inline ALWAYS_INLINE void tile(const attn_fold *f, int i, const int nq, const int f16)
{
    int hd = f->hd, top = reach(f, i, nq), d = 0;
    const float *q[4];
    float *s = f->s, c[4];
    for (int k = 0; k < nq; k++)
        q[k] = f->q[i + k];
    for (int b = 0; b * KV_BLOCK < top; b++)
        scores4(q, hd, f->k[b], s + b * KV_BLOCK, nq, f16);
    for (int k = 0; k < nq; k++)
        c[k] = softmax_row(f, i + k, s + k * ROW, top);
    for (; d + 16 <= hd; d += 16)
        weigh(f, i, s, c, d, top, nq, 2, f16);
    if (d < hd)   /* a head size of 8 mod 16 */
        weigh(f, i, s, c, d, top, nq, 1, f16);
}

static inline ALWAYS_INLINE void fold_as(const attn_fold *f, const int f16)
{
    for (int i = 0; i < f->nq; i += 4)
        switch (f->nq - i) {
        case 1: tile(f, i, 1, f16); break;
        case 2: tile(f, i, 2, f16); break;
        case 3: tile(f, i, 3, f16); break;
        default: tile(f, i, 4, f16); break;
        }
}

static void fold_avx2(const attn_fold *f)
{
    if (f->f16)
        fold_as(f, 1);
    else
        fold_as(f, 0);
}

static void narrow_avx2(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

const attn_kernels attn_avx2 = { "avx2", fold_avx2, narrow_avx2 };
