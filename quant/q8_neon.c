/*
** The neon tier, for Armv8.0 without the dot product instructions:
** vmull_s8 forms 8 products of 16 bits (|w*x| <= 128*127 fits) and
** vpadalq_s16 adds neighbouring pairs into int32, so a block ends with
** two half-sums per row that vpaddq_s32 joins. Also the activation
** quantizer of both Arm tiers.
*/
#include <arm_neon.h>
#include "q8_simd.h"

/* v[2i] and v[2i+1]: rows 4i, 4i+1 and rows 4i+2, 4i+3, two lanes per row */
typedef struct blk_acc { int32x4_t v[8]; } blk_acc;

INLINE void acc_step(blk_acc *a, const int8x16_t w[4], int8x16_t x)
{
    for (int i = 0; i < 4; i++) {
        a->v[2 * i] = vpadalq_s16(a->v[2 * i], vmull_s8(vget_low_s8(w[i]), vget_low_s8(x)));
        a->v[2 * i + 1] = vpadalq_s16(a->v[2 * i + 1], vmull_high_s8(w[i], x));
    }
}

INLINE void acc_rows(const blk_acc *a, int32x4_t out[4])
{
    for (int i = 0; i < 4; i++)
        out[i] = vpaddq_s32(a->v[2 * i], a->v[2 * i + 1]);
}

#include "q8_neon.inc"

const q8_kernels q8_tier_neon = { "neon", 0, q8_quantize_neon, rect, rect4, rect5, rect6, rect3, rect2,
                                     rect4c, rect5c };

/* Same arithmetic as q8_quantize_ref: the maxnm/minnm forms return the
** number for a NaN, and vcvtnq rounds to nearest even. */
void q8_quantize_neon(const float *x, int K, int8_t *q, float *d, int32_t *nsum, int32_t *hsum)
{
    const float32x4_t lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
    for (int b = 0; b < K / Q8_BLOCK; b++, x += Q8_BLOCK, q += Q8_BLOCK) {
        float32x4_t v[8], amax = vdupq_n_f32(0.0f);
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(x + 4 * i);
            amax = vmaxnmq_f32(vabsq_f32(v[i]), amax);
        }
        float db = vmaxnmvq_f32(amax) / 127.0f;
        float id = db != 0.0f ? 1.0f / db : 0.0f;
        int32x4_t iv[8], sum[2] = { vdupq_n_s32(0), vdupq_n_s32(0) };
        for (int i = 0; i < 8; i++) {
            iv[i] = vcvtnq_s32_f32(vminnmq_f32(vmaxnmq_f32(vmulq_n_f32(v[i], id), lo), hi));
            sum[i / 4] = vaddq_s32(sum[i / 4], iv[i]);
        }
        for (int h = 0; h < 2; h++) {
            int16x8_t a = vcombine_s16(vmovn_s32(iv[4 * h]), vmovn_s32(iv[4 * h + 1]));
            int16x8_t c = vcombine_s16(vmovn_s32(iv[4 * h + 2]), vmovn_s32(iv[4 * h + 3]));
            vst1q_s8(q + 16 * h, vcombine_s8(vmovn_s16(a), vmovn_s16(c)));
        }
        d[b] = db;
        hsum[b] = vaddvq_s32(sum[0]);
        nsum[b] = -128 * (hsum[b] + vaddvq_s32(sum[1]));
    }
}
