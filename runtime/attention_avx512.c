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

/* Interleaved sums over d that a pass of n chains (a whole tile's
** queries x nb blocks) keeps: at least 8 chains hide the FMA's latency.
** hd, a multiple of 16, divides by each. */
#define WAYS(n) ((n) >= 8 ? 1 : (n) >= 4 ? 2 : 4)

/*
** Scores of the nq queries from i (a constant once inlined, like nb and
** W) against the nb blocks from b of the run: s[k * ROW + 16 j ...] =
** q_k . K[t] for block b + j, unscaled. Each K row is loaded (and
** widened) once for the nq queries, each broadcast of a query value
** serves the nb blocks; nq nb chains, times W sums over every W'th d
** added at the end.
*/
static inline ALWAYS_INLINE void scores(const attn_fold *f, int i, int b, float *s, const int nq, const int nb,
                                        const int W, const int f16)
{
    const float *q[8];
    __m512 a[4][8][ATTN_SPAN];
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++)
        q[k] = f->q[i + k];
#pragma GCC unroll 4
    for (int w = 0; w < W; w++)
#pragma GCC unroll 8
        for (int k = 0; k < nq; k++)
#pragma GCC unroll 8
            for (int j = 0; j < nb; j++)
                a[w][k][j] = _mm512_setzero_ps();
    for (int d = 0; d < f->hd; d += W) {
        attn_ahead_request(f->ahead);
#pragma GCC unroll 4
        for (int w = 0; w < W; w++) {
            __m512 x[ATTN_SPAN];
#pragma GCC unroll 8
            for (int j = 0; j < nb; j++)
                x[j] = load16(f->k[b + j], (size_t)(d + w) * KV_BLOCK, f16);
#pragma GCC unroll 8
            for (int k = 0; k < nq; k++) {
                __m512 y = _mm512_set1_ps(q[k][d + w]);
#pragma GCC unroll 8
                for (int j = 0; j < nb; j++)
                    a[w][k][j] = _mm512_fmadd_ps(y, x[j], a[w][k][j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++)
#pragma GCC unroll 8
        for (int j = 0; j < nb; j++) {
#pragma GCC unroll 4
            for (int w = 1; w < W; w++)
                a[0][k][j] = _mm512_add_ps(a[0][k][j], a[w][k][j]);
            _mm512_storeu_ps(s + k * ROW + j * KV_BLOCK, a[0][k][j]);
        }
}

/* Blocks one pass of scores takes for a tile of nq queries: as many as
** make 24 chains (with their K rows and a broadcast still in registers),
** so that the K rows are read fewest times and a few queries' short runs
** still have chains enough to hide the FMA's latency. */
#define GROUP(nq) (24 / (nq) < ATTN_SPAN ? 24 / (nq) : ATTN_SPAN)

/* scores with w sums (at most WAYS(nq nb): a part of a tile has no more
** registers' worth of chains than the tile). */
static inline ALWAYS_INLINE void scores_ways(const attn_fold *f, int i, int b, float *s, const int nq, const int nb,
                                             int w, const int f16)
{
    if (w == 1 || WAYS(nq * nb) == 1)
        scores(f, i, b, s, nq, nb, 1, f16);
    else if (w == 2 || WAYS(nq * nb) == 2)
        scores(f, i, b, s, nq, nb, 2, f16);
    else
        scores(f, i, b, s, nq, nb, 4, f16);
}

/* Scores of the nq queries from i against the run's nb blocks, in the
** passes and sums of their whole tile of nn: a query's rounding does not
** depend on how much of the tile a fold holds. */
static inline ALWAYS_INLINE void scores_all(const attn_fold *f, int i, float *s, int nb, const int nq, int nn,
                                            const int f16)
{
    for (int b = 0; b < nb;) {
        int n = nb - b < GROUP(nn) ? nb - b : GROUP(nn), w = WAYS(nn * n);
        switch (n) {
#define PASS(c) case c: if (c <= GROUP(nq)) scores_ways(f, i, b, s + b * KV_BLOCK, nq, c, w, f16); break;
        PASS(1) PASS(2) PASS(3) PASS(4) PASS(5) PASS(6) PASS(7) PASS(8)
#undef PASS
        }
        b += n;
    }
}

/*
** The weights e^x (x <= 0) in the lanes of keep, 0 in the others. Two
** FMA-pipe operations fewer than exp_neg16 (they compete with the
** products for those pipes) and as close to e^x: a polynomial one order
** lower, fitted for relative error on |r| <= ln 2 / 2, and 2^n added to
** the exponent's bits, which x >= -86 keeps normal. Over every float in
** [-86, 0] both are within 1.27 ulp of e^x. Below -86 gives 4e-38, not
** 0: next to the largest weight, 1, no sum can tell.
*/
static inline __m512 weights(__m512 x, __mmask16 keep)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-86.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.381461275741458e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.368710055947304e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166838899254799e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666652113199234e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999999403953552e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23);
    return _mm512_castsi512_ps(_mm512_maskz_add_epi32(keep, _mm512_castps_si512(p), e));
}

/* The positions of block b that a query reading [from, n) keeps. */
static inline __mmask16 keep(int from, int n, int b)
{
    int left = n - b * KV_BLOCK, skip = from - b * KV_BLOCK;
    __mmask16 below = left >= KV_BLOCK ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
    return skip <= 0 ? below : skip >= KV_BLOCK ? 0 : (__mmask16)(below & ~((1u << skip) - 1));
}

/* The max or sum over its lanes of each of v[0..8): v[k]'s in lane
** LANE(k). A tree that halves the vectors' widths while it pairs them,
** 23 operations for the eight, not eight reductions of 8 one after the
** other. */
static inline ALWAYS_INLINE __m512 across8(const __m512 *v, const int max)
{
#define COMBINE(a, b) (max ? _mm512_max_ps(a, b) : _mm512_add_ps(a, b))
    __m512 w[4], u[2];
    for (int p = 0; p < 4; p++)
        w[p] = COMBINE(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int p = 0; p < 2; p++)
        u[p] = COMBINE(_mm512_shuffle_f32x4(w[2 * p], w[2 * p + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(w[2 * p], w[2 * p + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 z = COMBINE(_mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2)));
    return COMBINE(z, _mm512_shuffle_ps(z, z, _MM_SHUFFLE(2, 3, 0, 1)));
#undef COMBINE
}

/* The lane of row k in across8's result. */
#define LANE(k) (4 * ((k) % 4) + 2 * ((k) / 4))

/*
** The tile's scores to weights in place: row k of s (query i + k) becomes
** e^(scale s - m') from its from to its n_pos, 0 elsewhere up to the end of the nb
** blocks; m' = max(m, scale s), l = l c + the weights' sum, and c[k] =
** e^(m - m') rescales what o held. The rows go side by side (nq is a
** constant), so their reductions and exponentials overlap. max(s) scale
** is the largest scaled score exactly (rounding is monotonic), and
** scale s - m' is one rounding, not the scalar code's two.
*/
static inline ALWAYS_INLINE void softmax(const attn_fold *f, int i, float *s, int nb, float *c, const int nq)
{
    __m512 v[8], sc = _mm512_set1_ps(f->scale);
    float r[16], arg[16] = { 0 }, mx[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
        v[k] = _mm512_set1_ps(-INFINITY);
    for (int b = 0; b < nb; b++)
#pragma GCC unroll 8
        for (int k = 0; k < nq; k++)
            v[k] = _mm512_mask_max_ps(v[k], keep(f->from[i + k], f->n_pos[i + k], b), v[k], _mm512_loadu_ps(s + k * ROW + b * KV_BLOCK));
    _mm512_storeu_ps(r, across8(v, 1));
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++) {
        float m = f->m[f->state[i + k]], top = r[LANE(k)] * f->scale;
        mx[k] = top > m ? top : m;
        arg[k] = m - mx[k];
        f->m[f->state[i + k]] = mx[k];
    }
    _mm512_storeu_ps(c, exp_neg16(_mm512_loadu_ps(arg)));
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
        v[k] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++)
#pragma GCC unroll 8
        for (int k = 0; k < nq; k++) {
            float *p = s + k * ROW + b * KV_BLOCK;
            __m512 x = _mm512_fmsub_ps(_mm512_loadu_ps(p), sc, _mm512_set1_ps(mx[k]));
            __m512 e = weights(x, keep(f->from[i + k], f->n_pos[i + k], b));
            v[k] = _mm512_add_ps(v[k], e);
            _mm512_storeu_ps(p, e);
        }
    _mm512_storeu_ps(r, across8(v, 0));
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++) {
        float *l = f->l + f->state[i + k];
        *l = *l * c[k] + r[LANE(k)];
    }
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
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            acc[k][j] = _mm512_setzero_ps();
    for (int b = 0; b * KV_BLOCK < top; b++) {
        int n = top - b * KV_BLOCK < KV_BLOCK ? top - b * KV_BLOCK : KV_BLOCK;
        const float *pb = p + b * KV_BLOCK;
        for (int t = 0; t < n; t++) {
            __m512 x[4];
            attn_ahead_request(f->ahead);
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++)
                x[j] = load16(f->v[b], (size_t)t * f->hd + d + 16 * j, f16);
#pragma GCC unroll 8
            for (int k = 0; k < nq; k++) {
                __m512 w = _mm512_set1_ps(pb[k * ROW + t]);
#pragma GCC unroll 4
                for (int j = 0; j < nv; j++)
                    acc[k][j] = _mm512_fmadd_ps(w, x[j], acc[k][j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < nq; k++) {
        float *o = f->o + (size_t)f->state[i + k] * f->hd + d;
        __m512 ck = _mm512_set1_ps(c[k]);
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            _mm512_storeu_ps(o + 16 * j, _mm512_fmadd_ps(_mm512_loadu_ps(o + 16 * j), ck, acc[k][j]));
    }
}

/* The weighted values of the nq queries from i (up to 4, or a whole tile
** of 8), whose weights are at p (0 from each one's n_pos up to top) and
** factors at c, in strips of WIDTH(nq) vectors: a whole tile in strips of
** two, so that it makes one pass over V, not two (a shared prompt's V rows
** come from L2 half as often; a value's sum is the same either way). */
#define WIDTH(nq) ((nq) == 8 ? 2 : 4)
static inline ALWAYS_INLINE void weigh_all(const attn_fold *f, int i, const float *p, const float *c, int top,
                                           const int nq, const int f16)
{
    int d = 0;
    for (; d + 16 * WIDTH(nq) <= f->hd; d += 16 * WIDTH(nq))
        weigh(f, i, p, c, d, top, nq, WIDTH(nq), f16);
    for (; d < f->hd; d += 16)   /* head sizes that are not a multiple of the strip */
        weigh(f, i, p, c, d, top, nq, 1, f16);
}

/* The nq rows of a tile's n scores (whole vectors) under the soft cap
** (attn_capped). */
static void cap_scores(const attn_fold *f, float *s, int nq, int n)
{
    __m512 in = _mm512_set1_ps(f->scale / f->softcap), out = _mm512_set1_ps(f->softcap / f->scale);
    for (int k = 0; k < nq; k++)
        for (float *p = s + k * ROW; p < s + k * ROW + n; p += 16)
            _mm512_storeu_ps(p, _mm512_mul_ps(tanh16(_mm512_mul_ps(_mm512_loadu_ps(p), in)), out));
}

/*
** nq (1 to 8, a constant) queries from i of a tile of nn: their scores
** (passes of GROUP(nn) blocks), the rows' softmax, then the weighted
** values (weigh_all). Exact widths: no query is computed that is not
** used.
*/
static inline ALWAYS_INLINE void tile(const attn_fold *f, int i, int nn, const int nq, const int f16)
{
    float *s = f->s, c[16];
    int top = attn_reach(f, i, nq), nb = (top + KV_BLOCK - 1) / KV_BLOCK;
    scores_all(f, i, s, nb, nq, nn, f16);
    if (f->softcap)
        cap_scores(f, s, nq, nb * KV_BLOCK);
    softmax(f, i, s, nb, c, nq);
    if (nq == 8 || nq <= 4) {
        weigh_all(f, i, s, c, top, nq, f16);
    } else {   /* a part of a tile: two groups, the second of 1 to 3 (faster than strips of two) */
        weigh_all(f, i, s, c, attn_reach(f, i, 4), 4, f16);
        weigh_all(f, i + 4, s + 4 * ROW, c + 4, attn_reach(f, i + 4, nq - 4), nq - 4, f16);
    }
}

/* A function per tile shape, each with registers of its own: inlined
** into one fold, the inner loops' pointers were spilled. */
#define TILES(f16) \
    static void tile1_##f16(const attn_fold *f, int i, int nn) { tile(f, i, nn, 1, f16); } \
    static void tile2_##f16(const attn_fold *f, int i, int nn) { tile(f, i, nn, 2, f16); } \
    static void tile3_##f16(const attn_fold *f, int i, int nn) { tile(f, i, nn, 3, f16); } \
    static void tile4_##f16(const attn_fold *f, int i, int nn) { tile(f, i, nn, 4, f16); } \
    static void tile5_##f16(const attn_fold *f, int i, int nn) { tile(f, i, nn, 5, f16); } \
    static void tile6_##f16(const attn_fold *f, int i, int nn) { tile(f, i, nn, 6, f16); } \
    static void tile7_##f16(const attn_fold *f, int i, int nn) { tile(f, i, nn, 7, f16); } \
    static void tile8_##f16(const attn_fold *f, int i, int nn) { tile(f, i, nn, 8, f16); }
TILES(0)
TILES(1)

static void (*const tiles[2][8])(const attn_fold *, int, int) = {
    { tile1_0, tile2_0, tile3_0, tile4_0, tile5_0, tile6_0, tile7_0, tile8_0 },
    { tile1_1, tile2_1, tile3_1, tile4_1, tile5_1, tile6_1, tile7_1, tile8_1 },
};

/* Tiles of eight of the task's queries counted from its first, the
** fold's share of each (attention.h). */
static void fold_avx512(const attn_fold *f)
{
    int total = f->total > f->first + f->nq ? f->total : f->first + f->nq;
    for (int at = f->first - f->first % 8; at < f->first + f->nq; at += 8) {
        int i0 = at > f->first ? at : f->first, i1 = at + 8 < f->first + f->nq ? at + 8 : f->first + f->nq;
        tiles[f->f16][i1 - i0 - 1](f, i0 - f->first, total - at < 8 ? total - at : 8);
    }
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
