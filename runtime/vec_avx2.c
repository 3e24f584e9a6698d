/*
** AVX2 + FMA elementwise kernels (specification: vec.c). Eight values per
** step, the tail done by the scalar rule.
*/
#include <math.h>
#include "vec.h"
#include "simd_avx2.h"

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_ps(u, u, a0);
        a1 = _mm256_fmadd_ps(v, v, a1);
    }
    float ss = hsum(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    __m256 s = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s),
                                                _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

/* silu(g) = g * sigmoid(g), with e = e^-|g| <= 1 so nothing overflows:
** sigmoid(g) = 1 / (1 + e) for g >= 0, e / (1 + e) below. */
static inline __m256 silu(__m256 g)
{
    __m256 neg_abs = _mm256_or_ps(g, _mm256_set1_ps(-0.0f));
    __m256 e = exp_neg(neg_abs);
    __m256 r = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    __m256 below = _mm256_cmp_ps(g, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_mul_ps(g, _mm256_blendv_ps(r, _mm256_mul_ps(e, r), below));
}

static void swiglu(float *out, const float *gate, const float *up, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(silu(_mm256_loadu_ps(gate + i)),
                                                _mm256_loadu_ps(up + i)));
    for (; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

const vec_kernels vec_avx2 = { "avx2", rmsnorm, swiglu };
