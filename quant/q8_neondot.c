/*
** The neon-dotprod tier (Armv8.2 dot product): vdotq_s32 adds four
** signed 4-byte dot products, one per row, so a block's 16 row sums come
** out in four registers with no reduction.
*/
#include <arm_neon.h>
#include "q8_simd.h"

typedef struct blk_acc { int32x4_t v[4]; } blk_acc;

INLINE void acc_step(blk_acc *a, const int8x16_t w[4], int8x16_t x)
{
    for (int i = 0; i < 4; i++)
        a->v[i] = vdotq_s32(a->v[i], w[i], x);
}

INLINE void acc_rows(const blk_acc *a, int32x4_t out[4])
{
    for (int i = 0; i < 4; i++)
        out[i] = a->v[i];
}

#include "q8_neon.inc"

const q8_kernels q8_tier_neondot = { "neon-dotprod", 0, q8_quantize_neon, rect, rect4,
                                        rect5, rect6, rect3, rect2, rect4c, rect5c };
