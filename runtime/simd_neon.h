/*
** NEON helpers shared by the per-ISA kernel files (*_neon.c). Internal to
** copse.
*/
#ifndef COPSE_SIMD_NEON_H
#define COPSE_SIMD_NEON_H

#include <arm_neon.h>

/* e^x for x <= 0 (the AVX2 kernels' polynomial): e^x = 2^n e^r with
** |r| <= ln 2 / 2, ln 2 split so that n times its first part is exact;
** below -87 the result is e^-87. */
static inline float32x4_t exp_neg(float32x4_t x)
{
    x = vmaxq_f32(x, vdupq_n_f32(-87.0f));
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), vmulq_f32(p, r), r);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

/* tanh(x) as (1 - e) / (1 + e), e = e^-2|x|, with x's sign: within about
** 1e-7 of it (exp_neg's error, absolutely). */
static inline float32x4_t tanh4(float32x4_t x)
{
    float32x4_t one = vdupq_n_f32(1.0f), e = exp_neg(vmulq_n_f32(vabsq_f32(x), -2.0f));
    float32x4_t t = vdivq_f32(vsubq_f32(one, e), vaddq_f32(one, e));
    return vbslq_f32(vdupq_n_u32(0x80000000u), x, t);
}

#endif
