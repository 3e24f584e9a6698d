/*
** NEON elementwise kernels for aarch64 (specification: vec.c), as
** vec_avx2.c on vectors of 4. Four values per step, the tail done by the
** scalar rule.
*/
#include <arm_neon.h>
#include <math.h>
#include "vec.h"
#include "simd_neon.h"

/* rmsnorm, after x += dx when dx is given (in the loop that reads x). */
static void norm(float *out, float *x, const float *dx, const float *w, int n, float eps)
{
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t u = vld1q_f32(x + i), v = vld1q_f32(x + i + 4);
        if (dx) {
            u = vaddq_f32(u, vld1q_f32(dx + i));
            v = vaddq_f32(v, vld1q_f32(dx + i + 4));
            vst1q_f32(x + i, u);
            vst1q_f32(x + i + 4, v);
        }
        a0 = vfmaq_f32(a0, u, u);
        a1 = vfmaq_f32(a1, v, v);
    }
    float ss = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) {
        if (dx)
            x[i] += dx[i];
        ss += x[i] * x[i];
    }
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (i = 0; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

/* silu(g) = g * sigmoid(g), or gelu(g) = g * sigmoid(z) (vec.h), with e =
** e^-|z| <= 1 so nothing overflows: sigmoid(z) = 1 / (1 + e) for z >= 0,
** e / (1 + e) below. */
static inline float32x4_t act(float32x4_t g, const int gelu)
{
    float32x4_t z = g;
    if (gelu)
        z = vmulq_f32(vmulq_n_f32(g, VEC_GELU_C), vfmaq_n_f32(vdupq_n_f32(1.0f), vmulq_f32(g, g), VEC_GELU_K));
    float32x4_t e = exp_neg(vnegq_f32(vabsq_f32(z)));
    float32x4_t r = vdivq_f32(vdupq_n_f32(1.0f), vaddq_f32(vdupq_n_f32(1.0f), e));
    return vmulq_f32(g, vbslq_f32(vcltzq_f32(z), vmulq_f32(e, r), r));
}

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    norm(out, (float *)x, NULL, w, n, eps);   /* no dx: x is only read */
}

static void add_rmsnorm(float *out, float *x, const float *dx, const float *w, int n, float eps)
{
    norm(out, x, dx, w, n, eps);
}

/* As vec_avx2.c's: rows a product has pushed out of L1, requested AHEAD
** values on, a line (four vectors) per step. */
#define AHEAD 512

static inline void glu(float *out, const float *gate, const float *up, size_t n, const int gelu)
{
    size_t i = 0, ahead = n > AHEAD ? AHEAD : 0;
    for (; i + 16 <= n; i += 16) {
        vec_prefetch(gate + i, ahead), vec_prefetch(up + i, ahead);
        float32x4_t r[4];
        for (int j = 0; j < 4; j++)
            r[j] = vmulq_f32(act(vld1q_f32(gate + i + 4 * j), gelu), vld1q_f32(up + i + 4 * j));
        for (int j = 0; j < 4; j++)   /* after every load: out may be gate */
            vst1q_f32(out + i + 4 * j, r[j]);
    }
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(act(vld1q_f32(gate + i), gelu), vld1q_f32(up + i)));
    vec_glu_from(out, gate, up, n, gelu, i);
}

static void swiglu(float *out, const float *gate, const float *up, size_t n)
{
    glu(out, gate, up, n, 0);
}

static void geglu(float *out, const float *gate, const float *up, size_t n)
{
    glu(out, gate, up, n, 1);
}

static void add(float *x, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vaddq_f32(vld1q_f32(x + i), vld1q_f32(b + i)));
    for (; i < n; i++)
        x[i] += b[i];
}

/* Products and sums rounded one by one as in the scalar rule (no FMA), so
** the results are its own. Adjacent pairs are split and rejoined by the
** structure loads and stores. */
static void rope(float *x, const float *cs, int half, int adjacent)
{
    const float *c = cs, *s = cs + half;
    int i = 0;
    for (; i + 4 <= half; i += 4) {
        float *pa = adjacent ? x + 2 * i : x + i, *pb = x + half + i;
        float32x4x2_t ab = adjacent ? vld2q_f32(pa) : (float32x4x2_t){ { vld1q_f32(pa), vld1q_f32(pb) } };
        float32x4_t cv = vld1q_f32(c + i), sv = vld1q_f32(s + i), a = ab.val[0], b = ab.val[1];
        ab.val[0] = vsubq_f32(vmulq_f32(a, cv), vmulq_f32(b, sv));
        ab.val[1] = vaddq_f32(vmulq_f32(a, sv), vmulq_f32(b, cv));
        if (adjacent) {
            vst2q_f32(pa, ab);
        } else {
            vst1q_f32(pa, ab.val[0]);
            vst1q_f32(pb, ab.val[1]);
        }
    }
    vec_rope_from(x, cs, half, adjacent, i);
}

/* A NaN's compare is false, so it gets 0 as the exponents below the floor. */
static void exp_scaled(float *out, const float *x, size_t n, float shift, float scale)
{
    const float32x4_t lo = vdupq_n_f32(VEC_EXP_FLOOR);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t z = vmulq_n_f32(vsubq_f32(vld1q_f32(x + i), vdupq_n_f32(shift)), scale);
        uint32x4_t keep = vcgeq_f32(z, lo);
        vst1q_f32(out + i, vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(exp_neg(z)), keep)));
    }
    vec_exp_from(out, x, n, shift, scale, i);
}

const vec_kernels vec_neon = { "neon", rmsnorm, swiglu, geglu, add_rmsnorm, add, rope, exp_scaled };
