/*
** AVX-512 elementwise kernels (specification: vec.c). Sixteen values per
** step, the tail under a mask.
*/
#include <math.h>
#include "vec.h"
#include "simd_avx512.h"

/* The first n values of 16 from i on: all of them, or a tail. */
static inline __mmask16 lanes(size_t i, size_t n)
{
    return n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
}

/* rmsnorm, after x += dx when dx is given (in the loop that reads x). */
static void norm(float *out, float *x, const float *dx, const float *w, int n, float eps)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    size_t i = 0, len = (size_t)n;
    for (; i + 32 <= len; i += 32) {
        __m512 u = _mm512_loadu_ps(x + i), v = _mm512_loadu_ps(x + i + 16);
        if (dx) {
            u = _mm512_add_ps(u, _mm512_loadu_ps(dx + i));
            v = _mm512_add_ps(v, _mm512_loadu_ps(dx + i + 16));
            _mm512_storeu_ps(x + i, u);
            _mm512_storeu_ps(x + i + 16, v);
        }
        a0 = _mm512_fmadd_ps(u, u, a0);
        a1 = _mm512_fmadd_ps(v, v, a1);
    }
    for (; i < len; i += 16) {
        __mmask16 k = lanes(i, len);
        __m512 u = _mm512_maskz_loadu_ps(k, x + i);
        if (dx) {
            u = _mm512_add_ps(u, _mm512_maskz_loadu_ps(k, dx + i));
            _mm512_mask_storeu_ps(x + i, k, u);
        }
        a0 = _mm512_fmadd_ps(u, u, a0);
    }
    float ss = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    __m512 s = _mm512_set1_ps(1.0f / sqrtf(ss / (float)n + eps));
    for (i = 0; i < len; i += 16) {
        __mmask16 k = lanes(i, len);
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), s), _mm512_maskz_loadu_ps(k, w + i));
        _mm512_mask_storeu_ps(out + i, k, y);
    }
}

/* silu(g) = g * sigmoid(g), or gelu(g) = g * sigmoid(z) (vec.h), with e =
** e^-|z| <= 1 so nothing overflows: sigmoid(z) = 1 / (1 + e) for z >= 0,
** e / (1 + e) below. */
static inline __m512 act(__m512 g, const int gelu)
{
    __m512 z = g;
    if (gelu)
        z = _mm512_mul_ps(_mm512_mul_ps(g, _mm512_set1_ps(VEC_GELU_C)),
                          _mm512_fmadd_ps(_mm512_mul_ps(g, g), _mm512_set1_ps(VEC_GELU_K), _mm512_set1_ps(1.0f)));
    __m512 e = exp_neg16(_mm512_or_ps(z, _mm512_set1_ps(-0.0f)));
    __m512 r = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    __mmask16 below = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mul_ps(g, _mm512_mask_mul_ps(r, below, e, r));
}

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    norm(out, (float *)x, NULL, w, n, eps);   /* no dx: x is only read */
}

static void add_rmsnorm(float *out, float *x, const float *dx, const float *w, int n, float eps)
{
    norm(out, x, dx, w, n, eps);
}

/*
** A decode step's SwiGLU reads its rows from the gate and up product's
** output, which the product's weights have pushed out to L3 by then: the
** loads waited there (most of the kernel's time in a profile of a qwen05
** B=16 step) while the arithmetic idled. So each step requests the lines
** AHEAD values on, two vectors at a time so that the two exponentials
** overlap. Past the end of a row it requests what follows the row in
** memory, which the next row's pass reads (stacked gate | up products).
** A run of AHEAD values or fewer is in cache (a product has just written
** it, forward.c): requests past it would only fetch lines that another
** core may be writing, so they stay on the lines it reads.
*/
#define AHEAD 512

static inline void glu(float *out, const float *gate, const float *up, size_t n, const int gelu)
{
    size_t i = 0, ahead = n > AHEAD ? AHEAD : 0;
    for (; i + 32 <= n; i += 32) {
        vec_prefetch(gate + i, ahead), vec_prefetch(gate + i + 16, ahead);
        vec_prefetch(up + i, ahead), vec_prefetch(up + i + 16, ahead);
        __m512 a = _mm512_mul_ps(act(_mm512_loadu_ps(gate + i), gelu), _mm512_loadu_ps(up + i));
        __m512 b = _mm512_mul_ps(act(_mm512_loadu_ps(gate + i + 16), gelu), _mm512_loadu_ps(up + i + 16));
        _mm512_storeu_ps(out + i, a);   /* after both loads: out may be gate */
        _mm512_storeu_ps(out + i + 16, b);
    }
    for (; i < n; i += 16) {
        __mmask16 k = lanes(i, n);
        _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(act(_mm512_maskz_loadu_ps(k, gate + i), gelu),
                                                        _mm512_maskz_loadu_ps(k, up + i)));
    }
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
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = lanes(i, n);
        _mm512_mask_storeu_ps(x + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, x + i),
                                                      _mm512_maskz_loadu_ps(k, b + i)));
    }
}

/* A NaN's compare is false, so it gets 0 as the exponents below the floor. */
static void exp_scaled(float *out, const float *x, size_t n, float shift, float scale)
{
    const __m512 s = _mm512_set1_ps(shift), c = _mm512_set1_ps(scale), lo = _mm512_set1_ps(VEC_EXP_FLOOR);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = lanes(i, n);
        __m512 z = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s), c);
        k = _mm512_mask_cmp_ps_mask(k, z, lo, _CMP_GE_OQ);
        _mm512_mask_storeu_ps(out + i, lanes(i, n), _mm512_maskz_mov_ps(k, exp_neg16(z)));
    }
}

/* A head's 32 pairs or fewer: AVX2's rope is as fast. */
const vec_kernels vec_avx512 = { "avx512", rmsnorm, swiglu, geglu, add_rmsnorm, add, vec_rope_avx2, exp_scaled };
