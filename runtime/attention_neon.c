/*
** NEON attention kernels for aarch64 (specification: the scalar ones in
** attention.c). The AVX2 kernels' design on vectors of 4: a block's 16
** positions are four vectors, head_dim must be a multiple of 4. Keys and
** values are read where the cache holds them, halves widened in registers
** (Armv8.0 has the conversions). Chosen with the NEON int8 tiers.
*/
#include <arm_neon.h>
#include <math.h>
#include "attention.h"
#include "simd_neon.h"

_Static_assert(KV_BLOCK == 16, "the kernels hold a block's scores in four vectors");
_Static_assert(ATTN_TILE >= 4, "tiles of four queries");

#define ROW (ATTN_SPAN * KV_BLOCK)   /* floats of one query's scores in f->s */

/* The micro-kernels take their tile width and element type as parameters
** that must be constants where they are used, so their loops unroll into
** registers and the element test folds away. */
#define ALWAYS_INLINE __attribute__((always_inline))

/* 4 values of a K or V block from element i, as floats. */
static inline ALWAYS_INLINE float32x4_t load4(const void *block, size_t i, const int f16)
{
    if (f16)
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)block + i)));
    return vld1q_f32((const float *)block + i);
}

/*
** The micro-kernel of both products: for the nq (up to four) rows b[k] of
** a tile, acc[k] += sum over j < n of b[k][j] * (row j of a block: nv
** vectors of 4 from element i + j * stride). Scores take a = K (rows of
** 16 positions, nv 4) and b = the queries; weighted values take a = V (16
** or 4 dimensions) and b = the weights. Each row is loaded once for the
** nq; nq nv chains, times W = WAYS(nn nv) sums over every W'th j (added
** at the end) where a whole tile of nn rows has fewer than 8, too few to
** hide the FMA's latency. Row j goes to sum j % W whatever n is, so a
** row's rounding depends neither on how many rows of the tile a fold
** holds nor on how far the others read. Each step asks for one of ahead's
** lines.
*/
typedef struct tile4 { float32x4_t v[4][4]; } tile4;

#define WAYS(n) ((n) >= 8 ? 1 : (n) >= 4 ? 2 : 4)

static inline ALWAYS_INLINE void step(float32x4_t acc[4][4][4], int w, const void *a, size_t at,
                                      const float *const b[4], int j, const int nq, const int nv, const int f16)
{
    float32x4_t x[4];
#pragma GCC unroll 4
    for (int u = 0; u < nv; u++)
        x[u] = load4(a, at + 4 * (size_t)u, f16);
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        float c = b[k][j];
#pragma GCC unroll 4
        for (int u = 0; u < nv; u++)
            acc[w][k][u] = vfmaq_n_f32(acc[w][k][u], x[u], c);
    }
}

static inline ALWAYS_INLINE tile4 mul4(tile4 t, const void *a, size_t i, size_t stride, int n,
                                       const float *const b[4], attn_ahead *ahead, const int nq, const int nn,
                                       const int nv, const int f16)
{
    const int W = WAYS(nn * nv);
    float32x4_t acc[4][4][4];
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++)
#pragma GCC unroll 4
        for (int u = 0; u < nv; u++) {
            acc[0][k][u] = t.v[k][u];
#pragma GCC unroll 4
            for (int w = 1; w < W; w++)
                acc[w][k][u] = vdupq_n_f32(0);
        }
    int j = 0;
    for (; j + W <= n; j += W) {
        attn_ahead_request(ahead);
#pragma GCC unroll 4
        for (int w = 0; w < W; w++)
            step(acc, w, a, i + (size_t)(j + w) * stride, b, j + w, nq, nv, f16);
    }
#pragma GCC unroll 4
    for (int w = 0; w < W - 1; w++) {   /* a block's last positions, fewer than W */
        if (j + w >= n)
            break;
        step(acc, w, a, i + (size_t)(j + w) * stride, b, j + w, nq, nv, f16);
    }
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++)
#pragma GCC unroll 4
        for (int u = 0; u < nv; u++) {
#pragma GCC unroll 4
            for (int w = 1; w < W; w++)
                acc[0][k][u] = vaddq_f32(acc[0][k][u], acc[w][k][u]);
            t.v[k][u] = acc[0][k][u];
        }
    return t;
}

static inline tile4 zero4(void)
{
    tile4 t;
    for (int k = 0; k < 4; k++)
        for (int u = 0; u < 4; u++)
            t.v[k][u] = vdupq_n_f32(0);
    return t;
}

/* Scores of nq queries of a tile of nn against one block: s[k][0..16) =
** q_k . K[t]. */
static inline ALWAYS_INLINE void scores4(const float *const q[4], int hd, const void *kt, float *s,
                                         attn_ahead *ahead, const int nq, const int nn, const int f16)
{
    tile4 t = mul4(zero4(), kt, 0, KV_BLOCK, hd, q, ahead, nq, nn, 4, f16);
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++)
            vst1q_f32(s + k * ROW + 4 * u, t.v[k][u]);
}

/*
** The tile's scores to weights in place: row k of s (query i + k) becomes
** e^(scale s - m') in [from, n_pos), 0 elsewhere up to top (rounded up to a
** block: what its tile computed); m' = max(m, scale s), l = l c + the
** weights' sum, and c[k] = e^(m - m') rescales what o held. max(s) scale
** is the largest scaled score exactly (rounding is monotonic), and scale s
** - m' is one rounding, not the scalar code's two.
*/
static inline ALWAYS_INLINE void softmax(const attn_fold *f, int i, float *s, int top, float *c, const int nq)
{
    const float32x4_t iota = { 0, 1, 2, 3 };
    int nv = 4 * ((top + KV_BLOCK - 1) / KV_BLOCK);
    float32x4_t v[4], lim[4], low[4];
    float arg[4] = { 0 }, mx[4];
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        v[k] = vdupq_n_f32(-INFINITY);
        lim[k] = vdupq_n_f32((float)f->n_pos[i + k]);
        low[k] = vdupq_n_f32((float)f->from[i + k]);
    }
    for (int j = 0; j < nv; j++) {
        float32x4_t at = vaddq_f32(iota, vdupq_n_f32(4.0f * j));
#pragma GCC unroll 4
        for (int k = 0; k < nq; k++)
            v[k] = vbslq_f32(vandq_u32(vcltq_f32(at, lim[k]), vcgeq_f32(at, low[k])),
                             vmaxq_f32(v[k], vld1q_f32(s + k * ROW + 4 * j)), v[k]);
    }
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        float m = f->m[f->state[i + k]], top_s = vmaxvq_f32(v[k]) * f->scale;
        mx[k] = top_s > m ? top_s : m;
        arg[k] = m - mx[k];
        f->m[f->state[i + k]] = mx[k];
    }
    vst1q_f32(c, exp_neg(vld1q_f32(arg)));
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++)
        v[k] = vdupq_n_f32(0);
    for (int j = 0; j < nv; j++) {
        float32x4_t at = vaddq_f32(iota, vdupq_n_f32(4.0f * j));
#pragma GCC unroll 4
        for (int k = 0; k < nq; k++) {
            float *p = s + k * ROW + 4 * j;
            /* scale s - m' in one rounding: -(m' - s scale) */
            float32x4_t x = vnegq_f32(vfmsq_n_f32(vdupq_n_f32(mx[k]), vld1q_f32(p), f->scale));
            uint32x4_t keep = vandq_u32(vcltq_f32(at, lim[k]), vcgeq_f32(at, low[k]));
            float32x4_t e = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(exp_neg(x)), keep));
            v[k] = vaddq_f32(v[k], e);
            vst1q_f32(p, e);
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        float *l = f->l + f->state[i + k];
        *l = *l * c[k] + vaddvq_f32(v[k]);
    }
}

/* o_k = o_k c_k + t_k, for dimensions [d, d + 4 nv) of the nq queries
** at i. */
static inline ALWAYS_INLINE void rescale_add(const attn_fold *f, int i, const float *c, int d, tile4 t,
                                             const int nq, const int nv)
{
#pragma GCC unroll 4
    for (int k = 0; k < nq; k++) {
        float *o = f->o + (size_t)f->state[i + k] * f->hd + d;
#pragma GCC unroll 4
        for (int u = 0; u < nv; u++)
            vst1q_f32(o + 4 * u, vfmaq_n_f32(t.v[k][u], vld1q_f32(o + 4 * u), c[k]));
    }
}

static void cap_scores(const attn_fold *f, float *s, int nq, int n)
{
    float in = f->scale / f->softcap, out = f->softcap / f->scale;
    for (int k = 0; k < nq; k++)
        for (float *p = s + k * ROW; p < s + k * ROW + n; p += 4)
            vst1q_f32(p, vmulq_n_f32(tanh4(vmulq_n_f32(vld1q_f32(p), in)), out));
}

#define VEC 4
#include "attention_tile4.inc"

static void narrow_neon(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++)
        dst[i] = vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(src[i]))), 0);
}

const attn_kernels attn_neon = { "neon", fold, narrow_neon };
