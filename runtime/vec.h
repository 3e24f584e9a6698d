/*
** The forward pass's f32 elementwise kernels, one table per ISA like the
** int8 and attention ones: vec.c holds the scalar specification and the
** choice, vec_avx2.c the AVX2 + FMA versions (other summation orders and
** their own e^x, so results differ from the scalar ones in the last bits).
** Internal to copse.
*/
#ifndef COPSE_VEC_H
#define COPSE_VEC_H

#include <stddef.h>

typedef struct vec_kernels {
    const char *name;
    /* out[i] = x[i] * w[i] / sqrt(mean of x² + eps), for n values */
    void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps);
    /* out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g); out may be gate */
    void (*swiglu)(float *out, const float *gate, const float *up, size_t n);
} vec_kernels;

extern const vec_kernels vec_scalar;
#if defined(__x86_64__)
extern const vec_kernels vec_avx2;
extern const vec_kernels vec_avx512;   /* needs AVX-512 F and DQ */
#endif

/* The kernels for the int8 tier in force, as for attention (attention.h):
** avx512 with avx512vnni, avx2 with the other x86 SIMD tiers, scalar
** when COPSE_ISA=scalar. */
const vec_kernels *vec_kernels_default(void);

#endif
