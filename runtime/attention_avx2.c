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

/*
** The micro-kernel of both products: for the nq (up to four) rows b[k] of
** a tile, acc[k] += sum over j < n of b[k][j] * (row j of a block: nv
** vectors of 8 from element i + j * stride). Scores take a = K (rows of
** 16 positions, nv 2) and b = the queries; weighted values take a = V (16
** or 8 dimensions) and b = the weights. Each row is loaded once for the
** nq; nq nv chains, times W = WAYS(nn nv) sums over every W'th j (added
** at the end) where a whole tile of nn rows has fewer than 8, too few to
** hide the FMA's latency (at most 15 registers). Row j goes to sum j % W
** whatever n is, so a row's rounding depends neither on how many rows of
** the tile a fold holds nor on how far the others read. nq, nn, nv and
** f16 are constants once inlined, so the loops unroll into registers.
** Each step asks for one of ahead's lines.
*/
typedef struct tile4 { __m256 v[4][2]; } tile4;

#define WAYS(n) ((n) >= 8 ? 1 : (n) >= 4 ? 2 : 4)

static inline ALWAYS_INLINE tile4 mul4(tile4 t, const void *a, size_t i, size_t stride, int n,
                                       const float *const b[4], attn_ahead *ahead, const int nq, const int nn,
                                       const int nv, const int f16)
{
    const int W = WAYS(nn * nv);
    __m256 acc[4][4][2];
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        acc[0][k][0] = t.v[k][0], acc[0][k][1] = t.v[k][1];
#pragma GCC unroll 4
        for (int w = 1; w < W; w++)
            acc[w][k][0] = acc[w][k][1] = _mm256_setzero_ps();
    }
    int j = 0;
    for (; j + W <= n; j += W) {
        attn_ahead_request(ahead);
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
    }
#pragma GCC unroll 4
    for (int w = 0; w < W - 1; w++) {   /* a block's last positions, fewer than W */
        if (j + w >= n)
            break;
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

/* Scores of nq queries of a tile of nn against one block: s[k][0..16) =
** q_k . K[t]. */
static inline ALWAYS_INLINE void scores4(const float *const q[4], int hd, const void *kt, float *s,
                                         attn_ahead *ahead, const int nq, const int nn, const int f16)
{
    tile4 t = mul4(zero4(), kt, 0, KV_BLOCK, hd, q, ahead, nq, nn, 2, f16);
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        _mm256_storeu_ps(s + k * ROW, t.v[k][0]);
        _mm256_storeu_ps(s + k * ROW + 8, t.v[k][1]);
    }
}

/* The max or sum over its lanes of each of v[0..4): v[k]'s in lane
** LANE(k). A tree that halves the vectors' widths while it pairs them,
** 11 operations for the four, not four reductions one after the other. */
static inline ALWAYS_INLINE __m256 across4(const __m256 *v, const int max)
{
#define COMBINE(a, b) (max ? _mm256_max_ps(a, b) : _mm256_add_ps(a, b))
    __m256 w[2];
    for (int p = 0; p < 2; p++)
        w[p] = COMBINE(_mm256_permute2f128_ps(v[2 * p], v[2 * p + 1], 0x20),
                       _mm256_permute2f128_ps(v[2 * p], v[2 * p + 1], 0x31));
    __m256 u = COMBINE(_mm256_shuffle_ps(w[0], w[1], _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm256_shuffle_ps(w[0], w[1], _MM_SHUFFLE(3, 2, 3, 2)));
    return COMBINE(u, _mm256_shuffle_ps(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
#undef COMBINE
}

/* The lane of row k in across4's result. */
#define LANE(k) (4 * ((k) % 2) + 2 * ((k) / 2))

/*
** The tile's scores to weights in place: row k of s (query i + k) becomes
** e^(scale s - m') in [from, n_pos), 0 elsewhere up to top (rounded up to a
** block: what its tile computed); m' = max(m, scale s), l = l c + the
** weights' sum, and c[k] = e^(m - m') rescales what o held. The rows go
** side by side (nq is a constant), so their reductions and exponentials
** overlap. max(s) scale is the largest scaled score exactly (rounding is
** monotonic), and scale s - m' is one rounding, not the scalar code's
** two.
*/
static inline ALWAYS_INLINE void softmax(const attn_fold *f, int i, float *s, int top, float *c, const int nq)
{
    const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), sc = _mm256_set1_ps(f->scale);
    int nv = 2 * ((top + KV_BLOCK - 1) / KV_BLOCK);
    __m256 v[4], lim[4], low[4];
    float r[8], arg[8] = { 0 }, mx[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_set1_ps(-INFINITY);
        lim[k] = _mm256_set1_ps(k < nq ? (float)f->n_pos[i + k] : 0);
        low[k] = _mm256_set1_ps(k < nq ? (float)f->from[i + k] : 0);
    }
    for (int j = 0; j < nv; j++) {
        __m256 at = _mm256_add_ps(iota, _mm256_set1_ps(8.0f * j));
#pragma GCC unroll 4
        for (int k = 0; k < nq; k++) {
            __m256 keep = _mm256_and_ps(_mm256_cmp_ps(at, lim[k], _CMP_LT_OQ), _mm256_cmp_ps(at, low[k], _CMP_GE_OQ));
            v[k] = _mm256_blendv_ps(v[k], _mm256_max_ps(v[k], _mm256_loadu_ps(s + k * ROW + 8 * j)), keep);
        }
    }
    _mm256_storeu_ps(r, across4(v, 1));
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        float m = f->m[f->state[i + k]], top_s = r[LANE(k)] * f->scale;
        mx[k] = top_s > m ? top_s : m;
        arg[k] = m - mx[k];
        f->m[f->state[i + k]] = mx[k];
    }
    _mm256_storeu_ps(c, exp_neg(_mm256_loadu_ps(arg)));
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
        v[k] = _mm256_setzero_ps();
    for (int j = 0; j < nv; j++) {
        __m256 at = _mm256_add_ps(iota, _mm256_set1_ps(8.0f * j));
#pragma GCC unroll 4
        for (int k = 0; k < nq; k++) {
            float *p = s + k * ROW + 8 * j;
            __m256 x = _mm256_fmsub_ps(_mm256_loadu_ps(p), sc, _mm256_set1_ps(mx[k]));
            __m256 keep = _mm256_and_ps(_mm256_cmp_ps(at, lim[k], _CMP_LT_OQ), _mm256_cmp_ps(at, low[k], _CMP_GE_OQ));
            __m256 e = _mm256_and_ps(exp_neg(x), keep);
            v[k] = _mm256_add_ps(v[k], e);
            _mm256_storeu_ps(p, e);
        }
    }
    _mm256_storeu_ps(r, across4(v, 0));
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        float *l = f->l + f->state[i + k];
        *l = *l * c[k] + r[LANE(k)];
    }
}

/* o_k = o_k c_k + t_k, for dimensions [d, d + 8 nv) of the nq queries
** at i. */
static inline ALWAYS_INLINE void rescale_add(const attn_fold *f, int i, const float *c, int d, tile4 t,
                                             const int nq, const int nv)
{
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        float *o = f->o + (size_t)f->state[i + k] * f->hd + d;
        __m256 ck = _mm256_set1_ps(c[k]);
        for (int j = 0; j < nv; j++)
            _mm256_storeu_ps(o + 8 * j, _mm256_fmadd_ps(_mm256_loadu_ps(o + 8 * j), ck, t.v[k][j]));
    }
}

static void cap_scores(const attn_fold *f, float *s, int nq, int n)
{
    __m256 in = _mm256_set1_ps(f->scale / f->softcap), out = _mm256_set1_ps(f->softcap / f->scale);
    for (int k = 0; k < nq; k++)
        for (float *p = s + k * ROW; p < s + k * ROW + n; p += 8)
            _mm256_storeu_ps(p, _mm256_mul_ps(tanh_ps(_mm256_mul_ps(_mm256_loadu_ps(p), in)), out));
}

#define VEC 8
#include "attention_tile4.inc"

static void narrow_avx2(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

const attn_kernels attn_avx2 = { "avx2", fold, narrow_avx2 };
