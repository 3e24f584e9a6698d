/*
** IEEE half and bfloat16 conversions, scalar. Internal to copse.
** Round-to-nearest-even on the way down, exact on the way up, so a value
** written by copse and read back is the value an f16 file holds.
*/
#ifndef COPSE_F16_H
#define COPSE_F16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t copse_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float copse_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float copse_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f)                       /* inf / nan */
        return copse_bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {                        /* zero / subnormal: man * 2^-24 */
        float f = (float)man * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    return copse_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t copse_f32_to_f16(float f)
{
    uint32_t x = copse_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)                 /* inf / nan (keep nan quiet) */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u)                 /* rounds past 65504: inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) {                /* below 2^-14: subnormal or zero */
        /* adding 0.5 makes the FPU round the mantissa to nearest even */
        float r = copse_bits_f32(ax) + 0.5f;
        return (uint16_t)(sign | (copse_f32_bits(r) - 0x3f000000u));
    }
    uint32_t odd = (ax >> 13) & 1;
    ax += 0xc8000fffu + odd;               /* rebias exponent and round */
    return (uint16_t)(sign | (ax >> 13));
}

static inline float copse_bf16_to_f32(uint16_t h)
{
    return copse_bits_f32((uint32_t)h << 16);
}

static inline uint16_t copse_f32_to_bf16(float f)
{
    uint32_t x = copse_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)   /* nan: keep it a quiet nan */
        return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

#endif
