/*
** AVX2 + FMA elementwise kernels (specification: vec.c). Eight values per
** step, the tail done by the scalar rule.
*/
#include <math.h>
#include "vec.h"
#include "simd_avx2.h"

/* rmsnorm, after x += dx when dx is given (in the loop that reads x). */
static void norm(float *out, float *x, const float *dx, const float *w, int n, float eps)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
        if (dx) {
            u = _mm256_add_ps(u, _mm256_loadu_ps(dx + i));
            v = _mm256_add_ps(v, _mm256_loadu_ps(dx + i + 8));
            _mm256_storeu_ps(x + i, u);
            _mm256_storeu_ps(x + i + 8, v);
        }
        a0 = _mm256_fmadd_ps(u, u, a0);
        a1 = _mm256_fmadd_ps(v, v, a1);
    }
    float ss = hsum(_mm256_add_ps(a0, a1));
    for (; i < n; i++) {
        if (dx)
            x[i] += dx[i];
        ss += x[i] * x[i];
    }
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    __m256 s = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s),
                                                _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

/* silu(g) = g * sigmoid(g), or gelu(g) = g * sigmoid(z) (vec.h), with e =
** e^-|z| <= 1 so nothing overflows: sigmoid(z) = 1 / (1 + e) for z >= 0,
** e / (1 + e) below. */
static inline __m256 act(__m256 g, const int gelu)
{
    __m256 z = g;
    if (gelu)
        z = _mm256_mul_ps(_mm256_mul_ps(g, _mm256_set1_ps(VEC_GELU_C)),
                          _mm256_fmadd_ps(_mm256_mul_ps(g, g), _mm256_set1_ps(VEC_GELU_K), _mm256_set1_ps(1.0f)));
    __m256 neg_abs = _mm256_or_ps(z, _mm256_set1_ps(-0.0f));
    __m256 e = exp_neg(neg_abs);
    __m256 r = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    __m256 below = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_mul_ps(g, _mm256_blendv_ps(r, _mm256_mul_ps(e, r), below));
}

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    norm(out, (float *)x, NULL, w, n, eps);   /* no dx: x is only read */
}

static void add_rmsnorm(float *out, float *x, const float *dx, const float *w, int n, float eps)
{
    norm(out, x, dx, w, n, eps);
}

/* As vec_avx512.c's: the rows come from L3, so request them AHEAD values
** on, a line (two vectors) per step; a run that short is in cache. */
#define AHEAD 512

static inline void glu(float *out, const float *gate, const float *up, size_t n, const int gelu)
{
    size_t i = 0, ahead = n > AHEAD ? AHEAD : 0;
    for (; i + 16 <= n; i += 16) {
        vec_prefetch(gate + i, ahead), vec_prefetch(up + i, ahead);
        __m256 a = _mm256_mul_ps(act(_mm256_loadu_ps(gate + i), gelu), _mm256_loadu_ps(up + i));
        __m256 b = _mm256_mul_ps(act(_mm256_loadu_ps(gate + i + 8), gelu), _mm256_loadu_ps(up + i + 8));
        _mm256_storeu_ps(out + i, a);   /* after both loads: out may be gate */
        _mm256_storeu_ps(out + i + 8, b);
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(act(_mm256_loadu_ps(gate + i), gelu),
                                                _mm256_loadu_ps(up + i)));
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
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++)
        x[i] += b[i];
}

/*
** Products and sums rounded one by one as in the scalar rule (no FMA), so
** the results are its own. Adjacent pairs: with c and s repeated for both
** values of a pair and the pair's values swapped, a' = a c + -(b s) and
** b' = b c + a s.
*/
void vec_rope_avx2(float *x, const float *cs, int half, int adjacent)
{
    const float *c = cs, *s = cs + half;
    int i = 0;
    if (adjacent) {
        const __m256i twice = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
        const __m256 neg_a = _mm256_setr_ps(-0.0f, 0, -0.0f, 0, -0.0f, 0, -0.0f, 0);
        for (; i + 4 <= half; i += 4) {
            __m256 v = _mm256_loadu_ps(x + 2 * i);
            __m256 cc = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(c + i)), twice);
            __m256 ss = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(s + i)), twice);
            __m256 t = _mm256_xor_ps(_mm256_mul_ps(_mm256_permute_ps(v, 0xb1), ss), neg_a);
            _mm256_storeu_ps(x + 2 * i, _mm256_add_ps(_mm256_mul_ps(v, cc), t));
        }
    } else {
        for (; i + 8 <= half; i += 8) {
            __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + half + i);
            __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
            _mm256_storeu_ps(x + i, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(b, sv)));
            _mm256_storeu_ps(x + half + i, _mm256_add_ps(_mm256_mul_ps(a, sv), _mm256_mul_ps(b, cv)));
        }
    }
    vec_rope_from(x, cs, half, adjacent, i);
}

/* A NaN's compare is false, so it gets 0 as the exponents below the floor. */
static void exp_scaled(float *out, const float *x, size_t n, float shift, float scale)
{
    const __m256 s = _mm256_set1_ps(shift), c = _mm256_set1_ps(scale), lo = _mm256_set1_ps(VEC_EXP_FLOOR);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 z = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), s), c);
        _mm256_storeu_ps(out + i, _mm256_and_ps(exp_neg(z), _mm256_cmp_ps(z, lo, _CMP_GE_OQ)));
    }
    vec_exp_from(out, x, n, shift, scale, i);
}

const vec_kernels vec_avx2 = { "avx2", rmsnorm, swiglu, geglu, add_rmsnorm, add, vec_rope_avx2, exp_scaled };
