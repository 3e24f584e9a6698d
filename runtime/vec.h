/*
** The forward pass's f32 elementwise kernels, one table per ISA like the
** int8 and attention ones: vec.c holds the scalar specification and the
** choice, vec_avx2.c the AVX2 + FMA versions (vec_avx512.c and
** vec_neon.c likewise; other summation orders and
** their own e^x, so results differ from the scalar ones in the last bits).
** Internal to copse.
*/
#ifndef COPSE_VEC_H
#define COPSE_VEC_H

#include <stddef.h>
#include <stdint.h>

typedef struct vec_kernels {
    const char *name;
    /* out[i] = x[i] * w[i] / sqrt(mean of x² + eps), for n values; out may be x */
    void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps);
    /* out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g); out may be gate */
    void (*swiglu)(float *out, const float *gate, const float *up, size_t n);
    /* out[i] = gelu(gate[i]) * up[i] with GELU's tanh form, g/2 (1 + tanh(sqrt(2/pi)
    ** (g + 0.044715 g^3))), computed as g / (1 + e^-z), z = 2 sqrt(2/pi) g (1 +
    ** 0.044715 g^2) (the same function); out may be gate */
    void (*geglu)(float *out, const float *gate, const float *up, size_t n);
    /* x[i] += dx[i], then out = rmsnorm(x) as above, bit for bit: a
    ** residual add and the next norm in one pass; out may be dx */
    void (*add_rmsnorm)(float *out, float *x, const float *dx, const float *w, int n, float eps);
    /* x[i] += b[i] */
    void (*add)(float *x, const float *b, size_t n);
    /* Rotate half pairs of x, pair i by the angle of cosine cs[i] and sine
    ** cs[half + i]: a' = a cos - b sin, b' = a sin + b cos, with (a, b) =
    ** (x[2i], x[2i + 1]) when adjacent, else (x[i], x[half + i]). Every
    ** table gives the scalar results bit for bit. */
    void (*rope)(float *x, const float *cs, int half, int adjacent);
    /* out[i] = e^((x[i] - shift) * scale), for x[i] <= shift and scale > 0:
    ** a softmax's terms (the sampler's, over a vocabulary); 0 where the
    ** exponent is below VEC_EXP_FLOOR or not a number. */
    void (*exp_scaled)(float *out, const float *x, size_t n, float shift, float scale);
} vec_kernels;

/* Request the cache line of x + ahead (values) into L1, for the SIMD
** kernels that read rows a product has pushed out to L3. An address
** beyond an allocation does not fault; the integer arithmetic keeps it
** defined. */
static inline void vec_prefetch(const float *x, size_t ahead)
{
    __builtin_prefetch((const void *)((uintptr_t)x + ahead * sizeof *x), 0, 3);
}

/* The scalar rope from pair i on: the SIMD kernels' tails. */
void vec_rope_from(float *x, const float *cs, int half, int adjacent, int i);

/* GELU's z over g (vec_kernels' geglu): 2 sqrt(2/pi), and the cube's weight. */
#define VEC_GELU_C 1.5957691216057308f
#define VEC_GELU_K 0.044715f

/* The least exponent exp_scaled gives a term for: the SIMD e^x stop there
** (e^-87 is about 1.6e-38, near the least normal float). */
#define VEC_EXP_FLOOR -87.0f

/* The scalar exp_scaled from value i on: the SIMD kernels' tails. */
void vec_exp_from(float *out, const float *x, size_t n, float shift, float scale, size_t i);

/* The scalar swiglu (gelu 0) or geglu (1) from value i on: the SIMD
** kernels' tails. */
void vec_glu_from(float *out, const float *gate, const float *up, size_t n, int gelu, size_t i);

extern const vec_kernels vec_scalar;
#if defined(__x86_64__)
extern const vec_kernels vec_avx2;
extern const vec_kernels vec_avx512;   /* needs AVX-512 F and DQ */
void vec_rope_avx2(float *x, const float *cs, int half, int adjacent);   /* vec_avx2's */
#elif defined(__aarch64__)
extern const vec_kernels vec_neon;
#endif

/* The kernels for the int8 tier in force, as for attention (attention.h):
** avx512 with avx512vnni, avx2 with the other x86 SIMD tiers, neon with
** the NEON tiers, scalar when COPSE_ISA=scalar. */
const vec_kernels *vec_kernels_default(void);

#endif
