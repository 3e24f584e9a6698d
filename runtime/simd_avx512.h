/*
** AVX-512 helpers shared by the *_avx512.c kernel files (which alone are
** compiled with those instructions). Internal to copse.
*/
#ifndef COPSE_SIMD_AVX512_H
#define COPSE_SIMD_AVX512_H

#include <immintrin.h>

/* e^x for x <= 0, within 2 ulp of expf; below -87 gives about 1e-38, not 0
** (the same polynomial as simd_avx2.h's exp_neg). The scaling by 2^n is
** one vscalefps instead of building 2^n in the exponent bits (a convert,
** an add, a shift and a multiply): the same values for every x <= 0
** (checked over all of them), fewer instructions on a SwiGLU's path. */
static inline __m512 exp_neg16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* tanh(x) as (1 - e) / (1 + e), e = e^-2|x|, with x's sign: within about
** 1e-7 of it (exp_neg16's error, absolutely). */
static inline __m512 tanh16(__m512 x)
{
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = exp_neg16(_mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(-2.0f)));
    __m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), _mm512_and_si512(_mm512_castps_si512(x),
                                                                                      _mm512_set1_epi32(INT32_MIN))));
}

#endif
