/*
** The scalar elementwise kernels (the specification, and what CPUs
** without AVX2 run) and the choice of a table.
*/
#include <math.h>
#include "vec.h"
#include "q8.h"

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    float ss = 0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void add(float *x, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += b[i];
}

static void add_rmsnorm(float *out, float *x, const float *dx, const float *w, int n, float eps)
{
    add(x, dx, (size_t)n);
    rmsnorm(out, x, w, n, eps);
}

void vec_rope_from(float *x, const float *cs, int half, int adjacent, int i)
{
    for (; i < half; i++) {
        float *a = adjacent ? x + 2 * i : x + i, *b = adjacent ? a + 1 : a + half;
        float c = cs[i], s = cs[half + i], x0 = *a, x1 = *b;
        *a = x0 * c - x1 * s;
        *b = x0 * s + x1 * c;
    }
}

static void rope(float *x, const float *cs, int half, int adjacent)
{
    vec_rope_from(x, cs, half, adjacent, 0);
}

void vec_glu_from(float *out, const float *gate, const float *up, size_t n, int gelu, size_t i)
{
    for (; i < n; i++) {
        float g = gate[i], z = gelu ? VEC_GELU_C * g * (1.0f + VEC_GELU_K * g * g) : g;
        out[i] = g / (1.0f + expf(-z)) * up[i];
    }
}

static void swiglu(float *out, const float *gate, const float *up, size_t n)
{
    vec_glu_from(out, gate, up, n, 0, 0);
}

static void geglu(float *out, const float *gate, const float *up, size_t n)
{
    vec_glu_from(out, gate, up, n, 1, 0);
}

void vec_exp_from(float *out, const float *x, size_t n, float shift, float scale, size_t i)
{
    for (; i < n; i++) {
        float z = (x[i] - shift) * scale;
        out[i] = z >= VEC_EXP_FLOOR ? expf(z) : 0.0f;
    }
}

static void exp_scaled(float *out, const float *x, size_t n, float shift, float scale)
{
    vec_exp_from(out, x, n, shift, scale, 0);
}

const vec_kernels vec_scalar = { "scalar", rmsnorm, swiglu, geglu, add_rmsnorm, add, rope, exp_scaled };

/* The same rule as the attention kernels: the int8 tier says whether the
** scalar code is forced (COPSE_ISA=scalar) or AVX-512 runs, the CPU
** whether AVX2 does; on aarch64 the NEON tiers bring the NEON kernels. */
const vec_kernels *vec_kernels_default(void)
{
    const q8_kernels *tier;
    if (q8_tier_default(&tier, NULL) || tier == &q8_tier_scalar)
        return &vec_scalar;
#if defined(__x86_64__)
    if (tier == &q8_tier_avx512vnni)
        return &vec_avx512;
    if (q8_tier_supported(&q8_tier_avx2))
        return &vec_avx2;
    return &vec_scalar;
#elif defined(__aarch64__)
    return &vec_neon;   /* a NEON tier */
#else
    return &vec_scalar;
#endif
}
