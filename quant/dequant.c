/*
** ggml's tensor formats decoded to f32 (see dequant.h).
**
** One decoder per format, each over whole blocks, written as the block's
** layout reads: scales first, then the quants they multiply. Where ggml
** computes a sub-block's scale once (d * sc) and then scale * q - min,
** so does copse: the order of float operations fixes the rounding, and
** the decoded values must be the ones the file's writer meant.
** -ffp-contract=off (Makefile) keeps the compiler from fusing them.
*/
#include <string.h>
#include "dequant.h"
#include "f16.h"
#include "gguf.h"

static float f16_at(const uint8_t *p) { return copse_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef void decode_fn(const uint8_t *src, uint64_t n_blocks, float *y);

/* ------------------------------------------------------------ plain types */

static void decode_f32(const uint8_t *src, uint64_t n, float *y)
{
    memcpy(y, src, n * sizeof *y);
}

static void decode_f16(const uint8_t *src, uint64_t n, float *y)
{
    for (uint64_t i = 0; i < n; i++)
        y[i] = f16_at(src + 2 * i);
}

static void decode_bf16(const uint8_t *src, uint64_t n, float *y)
{
    for (uint64_t i = 0; i < n; i++)
        y[i] = copse_bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
}

/* ------------------------------------------------- blocks of 32, one scale */

/* Q8_0: f16 d, 32 int8. */
static void decode_q8_0(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 34, y += 32) {
        float d = f16_at(b);
        for (int j = 0; j < 32; j++)
            y[j] = (float)(int8_t)b[2 + j] * d;
    }
}

/*
** The 4- and 5-bit formats of 32: element j < 16 is the low nibble of
** byte j, element j + 16 its high nibble; a fifth bit, where there is one,
** is bit j (resp. j + 16) of a little-endian u32. Signed ones (_0) are
** offset by half their range; _1 ones add a per-block minimum m.
*/
static void nibbles_01(const uint8_t *qs, uint32_t qh, uint8_t *u)
{
    for (int j = 0; j < 16; j++) {
        u[j] = (uint8_t)((qs[j] & 0xF) | ((qh >> j) << 4 & 0x10));
        u[j + 16] = (uint8_t)((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
    }
}

static void decode_nibbles(const uint8_t *qs, uint32_t qh, int offset, float d, float m, int has_m,
                           float *y)
{
    uint8_t u[32];
    nibbles_01(qs, qh, u);
    for (int j = 0; j < 32; j++)
        y[j] = has_m ? (float)(u[j] - offset) * d + m : (float)(u[j] - offset) * d;
}

/* Q4_0: f16 d, 16 bytes of nibbles; x = (q - 8) d. */
static void decode_q4_0(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 18, y += 32)
        decode_nibbles(b + 2, 0, 8, f16_at(b), 0, 0, y);
}

/* Q4_1: f16 d, f16 m, nibbles; x = q d + m. */
static void decode_q4_1(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 20, y += 32)
        decode_nibbles(b + 4, 0, 0, f16_at(b), f16_at(b + 2), 1, y);
}

/* Q5_0: f16 d, u32 fifth bits, nibbles; x = (q - 16) d. */
static void decode_q5_0(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 22, y += 32)
        decode_nibbles(b + 6, le32(b + 2), 16, f16_at(b), 0, 0, y);
}

/* Q5_1: f16 d, f16 m, u32 fifth bits, nibbles; x = q d + m. */
static void decode_q5_1(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 24, y += 32)
        decode_nibbles(b + 8, le32(b + 4), 0, f16_at(b), f16_at(b + 2), 1, y);
}

/* The IQ4 codebook: a 4-bit index picks a non-uniform level. */
static const int8_t iq4_levels[16] = { -127, -104, -83, -65, -49, -35, -22, -10,
                                       1, 13, 25, 38, 53, 69, 89, 113 };

static void decode_iq4(const uint8_t *qs, float d, float *y)
{
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)iq4_levels[qs[j] & 0xF];
        y[j + 16] = d * (float)iq4_levels[qs[j] >> 4];
    }
}

/* IQ4_NL: f16 d, 16 bytes of codebook indices. */
static void decode_iq4_nl(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 18, y += 32)
        decode_iq4(b + 2, f16_at(b), y);
}

/* ------------------------------------------ super-blocks of 256 ("K" types) */

/*
** Q4_K and Q5_K keep eight 6-bit scales and eight 6-bit minimums in 12
** bytes: for sub-block j < 4 the low 6 bits of bytes j and j + 4; for
** j >= 4 a nibble of byte j + 4 with the top 2 bits of byte j - 4 (scale)
** or of byte j (minimum) above it.
*/
static void scale_min_k4(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q4_K and Q5_K: f16 d, f16 dmin, 12 bytes of scales, (Q5_K: 32 bytes of
** fifth bits,) 128 bytes of nibbles. Each 64 elements are two sub-blocks,
** the low then the high nibbles of 32 bytes; x = d sc q - dmin m. */
static void decode_k45(const uint8_t *b, int fifth, float *y)
{
    float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + (fifth ? 48 : 16);
    for (int j = 0; j < 8; j += 2, ql += 32) {
        int sc, m;
        scale_min_k4(scales, j, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(scales, j + 1, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) {
            int hi1 = fifth && qh[l] >> j & 1, hi2 = fifth && qh[l] >> (j + 1) & 1;
            y[l] = d1 * (float)((ql[l] & 0xF) + 16 * hi1) - m1;
            y[l + 32] = d2 * (float)((ql[l] >> 4) + 16 * hi2) - m2;
        }
        y += 64;
    }
}

static void decode_q4_k(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 144, y += 256)
        decode_k45(b, 0, y);
}

static void decode_q5_k(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 176, y += 256)
        decode_k45(b, 1, y);
}

/*
** Q2_K and Q3_K: 2-bit quants, four to a byte. Each 128 elements take 32
** bytes: bits 2s..2s+1 of those bytes are elements 32s.. 32s+31, in two
** sub-blocks of 16 with a scale each.
**
** Q2_K: 16 bytes of scales (low nibble scale, high nibble minimum), 64 of
** quants, f16 d, f16 dmin; x = d sc q - dmin m.
*/
static void decode_q2_k(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 84) {
        const uint8_t *scales = b, *q = b + 16;
        float d = f16_at(b + 80), dmin = f16_at(b + 82);
        for (int half = 0, is = 0; half < 2; half++, q += 32)
            for (int shift = 0; shift < 8; shift += 2)
                for (int part = 0; part < 2; part++, is++, y += 16) {
                    float dl = d * (float)(scales[is] & 0xF), ml = dmin * (float)(scales[is] >> 4);
                    for (int l = 0; l < 16; l++)
                        y[l] = dl * (float)(q[16 * part + l] >> shift & 3) - ml;
                }
    }
}

/*
** Q3_K: 32 bytes of high bits, 64 of 2-bit quants, 12 of scales, f16 d.
** The third bit of element 32s + l (per 128) is bit s of hmask[l]; when it
** is clear the quant is 4 lower: x = d (sc - 32) (q - 4 [bit clear]).
** Sixteen 6-bit scales: the low nibble of byte j (j < 8) or the high one
** of byte j - 8, under bits 2(j / 4).. of byte 8 + j % 4.
*/
static int scale_k3(const uint8_t *s, int j)
{
    int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    int hi = s[8 + j % 4] >> (2 * (j / 4)) & 3;
    return (lo | hi << 4) - 32;
}

/* The quants u = q + 4 [bit set] of a Q3_K block of 256 at b into
** u[256], element j's scale scale_k3(j / 16): x = d (sc - 32) (u - 4). */
static void q3_k_quants(const uint8_t *b, uint8_t *u)
{
    const uint8_t *hmask = b, *q = b + 32;
    for (int half = 0, bit = 0; half < 2; half++, q += 32)
        for (int shift = 0; shift < 8; shift += 2, bit++)
            for (int k = 0; k < 32; k++)
                *u++ = (uint8_t)((q[k] >> shift & 3) | (hmask[k] >> bit & 1) << 2);
}

static void decode_q3_k(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 110, y += 256) {
        float d = f16_at(b + 108);
        uint8_t u[256];
        q3_k_quants(b, u);
        for (int j = 0; j < 256; j++)
            y[j] = d * (float)scale_k3(b + 96, j / 16) * (float)(u[j] - 4);
    }
}

/*
** Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales,
** f16 d. Per 128 elements: element l + 32 i (l < 32, i < 4) has its low
** nibble in ql[l + 32 (i & 1)] (high nibble when i >= 2), its top bits at
** bits 2i of qh[l], and scale (l / 16) + 2i; x = d sc (q - 32). The
** quants of a block of 256 at b into u[256]:
*/
static void q6_k_quants(const uint8_t *b, uint8_t *u)
{
    const uint8_t *ql = b, *qh = b + 128;
    for (int half = 0; half < 2; half++, ql += 64, qh += 32)
        for (int i = 0; i < 4; i++, u += 32)
            for (int l = 0; l < 32; l++)
                u[l] = (uint8_t)((ql[l + 32 * (i & 1)] >> (4 * (i >> 1)) & 0xF)
                                 | (qh[l] >> (2 * i) & 3) << 4);
}

/* element j has scale j / 16 */
static void decode_q6_k(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 210, y += 256) {
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = f16_at(b + 208);
        uint8_t u[256];
        q6_k_quants(b, u);
        for (int j = 0; j < 256; j++)
            y[j] = d * (float)sc[j / 16] * (float)(u[j] - 32);
    }
}

/* IQ4_XS: f16 d, u16 of scales' high bits, 4 bytes of their low nibbles,
** 128 bytes of codebook indices; sub-block j of 32 has scale
** d (ls - 32), ls 6 bits: iq4_xs_scale. */
static float iq4_xs_scale(const uint8_t *b, int j)
{
    unsigned hi = (unsigned)(b[2] | b[3] << 8);
    int ls = (b[4 + j / 2] >> (4 * (j % 2)) & 0xF) | (int)(hi >> (2 * j) & 3) << 4;
    return f16_at(b) * (float)(ls - 32);
}

static void decode_iq4_xs(const uint8_t *b, uint64_t n, float *y)
{
    for (; n--; b += 136)
        for (int j = 0; j < 8; j++, y += 32)
            decode_iq4(b + 8 + 16 * j, iq4_xs_scale(b, j), y);
}

/* ------------------------------------------------------------------ table */

static decode_fn *const decoders[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = decode_f32,       [GGML_TYPE_F16] = decode_f16,
    [GGML_TYPE_BF16] = decode_bf16,     [GGML_TYPE_Q8_0] = decode_q8_0,
    [GGML_TYPE_Q4_0] = decode_q4_0,     [GGML_TYPE_Q4_1] = decode_q4_1,
    [GGML_TYPE_Q5_0] = decode_q5_0,     [GGML_TYPE_Q5_1] = decode_q5_1,
    [GGML_TYPE_Q2_K] = decode_q2_k,     [GGML_TYPE_Q3_K] = decode_q3_k,
    [GGML_TYPE_Q4_K] = decode_q4_k,     [GGML_TYPE_Q5_K] = decode_q5_k,
    [GGML_TYPE_Q6_K] = decode_q6_k,     [GGML_TYPE_IQ4_NL] = decode_iq4_nl,
    [GGML_TYPE_IQ4_XS] = decode_iq4_xs,
};

int dequant_supported(uint32_t type)
{
    return type < GGML_TYPE_COUNT && decoders[type];
}

const char *dequant_type_list(void)
{
    return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS";
}

void dequant(uint32_t type, const void *data, uint64_t first, uint64_t n, float *out)
{
    uint64_t blck = ggml_type_block(type);
    decoders[type]((const uint8_t *)data + ggml_type_nbytes(type, first), n / blck, out);
}

/* ------------------------------------------- fp16 scale times int8, undecoded */

int dequant_int8_supported(uint32_t type)
{
    return type == GGML_TYPE_Q8_0 || dequant_code_bits(type);
}

int dequant_code_bits(uint32_t type)
{
    return type == GGML_TYPE_Q4_0 || type == GGML_TYPE_IQ4_NL || type == GGML_TYPE_IQ4_XS ? 4
         : type == GGML_TYPE_Q5_0                                                     ? 5
                                                                                      : 0;
}

void dequant_code_levels(uint32_t type, int8_t levels[16])
{
    for (int i = 0; i < 16; i++)
        levels[i] = type == GGML_TYPE_IQ4_NL || type == GGML_TYPE_IQ4_XS
                        ? iq4_levels[i]
                        : (int8_t)(i - (type == GGML_TYPE_Q5_0 ? 16 : 8));
}

void dequant_codes(uint32_t type, const void *data, uint64_t first, uint64_t n, uint16_t *d,
                   uint8_t *u)
{
    const uint8_t *b = (const uint8_t *)data + ggml_type_nbytes(type, first);
    if (type == GGML_TYPE_IQ4_XS) {   /* a super-block's sub-blocks as IQ4_NL blocks */
        for (uint64_t i = 0; i < n / 32; i++, u += 32) {
            const uint8_t *sb = b + i / 8 * 136;
            d[i] = copse_f32_to_f16(iq4_xs_scale(sb, (int)(i % 8)));
            nibbles_01(sb + 8 + 16 * (i % 8), 0, u);
        }
        return;
    }
    uint64_t size = ggml_type_nbytes(type, 32);
    int q5 = type == GGML_TYPE_Q5_0;
    for (uint64_t i = 0; i < n / 32; i++, b += size, u += 32) {   /* as decode_nibbles, decode_iq4 */
        d[i] = (uint16_t)(b[0] | b[1] << 8);
        nibbles_01(b + (q5 ? 6 : 2), q5 ? le32(b + 2) : 0, u);
    }
}

void dequant_int8(uint32_t type, const void *data, uint64_t first, uint64_t n, uint16_t *d,
                  int8_t *q)
{
    if (type == GGML_TYPE_Q8_0) {
        const uint8_t *b = (const uint8_t *)data + ggml_type_nbytes(type, first);
        for (uint64_t i = 0; i < n / 32; i++, b += 34, q += 32) {
            d[i] = (uint16_t)(b[0] | b[1] << 8);
            memcpy(q, b + 2, 32);
        }
        return;
    }
    int8_t levels[16];
    dequant_code_levels(type, levels);
    dequant_codes(type, data, first, n, d, (uint8_t *)q);
    for (uint64_t j = 0; j < n; j++)
        q[j] = dequant_code_value(levels, (uint8_t)q[j]);
}

/* ------------------------------------------------- 4 and 5 bits, undecoded */

/*
** Q4_0's (u - 8) d is d u - 8 d exactly: d u and 8 d are exact (d has 11
** significant bits, u 4), and so is their difference; Q5_0's (u - 16) d
** likewise (u 5 bits). The _1 types' u d + m is u d - (-m). The K types'
** d1 u - m1 is already that form, d1 = d * sc with sc a 6-bit integer
** (exact in fp16).
*/
int dequant_nibble_bits(uint32_t type)
{
    switch (type) {
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q4_K: return 4;
    case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_Q5_K: return 5;
    default: return 0;
    }
}

void dequant_nibbles(uint32_t type, const void *data, uint64_t first, uint64_t n,
                     nibble_scale *sc, uint8_t *u)
{
    const uint8_t *b = (const uint8_t *)data + ggml_type_nbytes(type, first);
    uint64_t size = ggml_type_nbytes(type, ggml_type_block(type));
    if (type != GGML_TYPE_Q4_K && type != GGML_TYPE_Q5_K) {
        int has_m = type == GGML_TYPE_Q4_1 || type == GGML_TYPE_Q5_1, fifth = dequant_nibble_bits(type) == 5;
        for (uint64_t i = 0; i < n / 32; i++, b += size, u += 32) {
            uint16_t d = (uint16_t)(b[0] | b[1] << 8);
            sc[i] = has_m ? (nibble_scale){ 1.0f, -1.0f, d, (uint16_t)(b[2] | b[3] << 8) }
                          : (nibble_scale){ 1.0f, fifth ? 16.0f : 8.0f, d, d };
            const uint8_t *q = b + 2 + 2 * has_m;
            nibbles_01(q + 4 * fifth, fifth ? le32(q) : 0, u);
        }
        return;
    }
    int fifth = type == GGML_TYPE_Q5_K;
    for (uint64_t i = 0; i < n / 32; b += size) {   /* as decode_k45 */
        float d = f16_at(b), dmin = f16_at(b + 2);
        const uint8_t *qh = b + 16, *ql = b + (fifth ? 48 : 16);
        for (int j = 0; j < 8; j++, i++, u += 32) {
            int s, m;
            scale_min_k4(b + 4, j, &s, &m);
            sc[i] = (nibble_scale){ d, dmin, copse_f32_to_f16((float)s), copse_f32_to_f16((float)m) };
            const uint8_t *q = ql + 32 * (j / 2);
            int shift = 4 * (j % 2);
            for (int l = 0; l < 32; l++)
                u[l] = (uint8_t)((q[l] >> shift & 0xF) | (qh[l] >> j & fifth) << 4);
        }
    }
}

int dequant_half_bits(uint32_t type)
{
    return type == GGML_TYPE_Q6_K ? 6 : type == GGML_TYPE_Q3_K ? 3 : 0;
}

void dequant_halves(uint32_t type, const void *data, uint64_t first, uint64_t n, nibble_scale *sc,
                    uint8_t *u)
{
    int six = type == GGML_TYPE_Q6_K, size = six ? 210 : 110;
    const uint8_t *b = (const uint8_t *)data + ggml_type_nbytes(type, first);
    for (uint64_t i = 0; i < n / 32; b += size) {   /* as decode_q6_k, decode_q3_k */
        float d = f16_at(b + (six ? 208 : 108));
        if (six)
            q6_k_quants(b, u);
        else
            q3_k_quants(b, u);
        for (int j = 0; j < 16; j += 2, i++, u += 32) {
            int f0 = six ? ((const int8_t *)b)[192 + j] : scale_k3(b + 96, j);
            int f1 = six ? ((const int8_t *)b)[193 + j] : scale_k3(b + 96, j + 1);
            sc[i] = (nibble_scale){ d, d, copse_f32_to_f16((float)f0), copse_f32_to_f16((float)f1) };
        }
    }
}

void dequant_q2_k(const void *data, uint64_t first, uint64_t n, q2_scale *sc, uint8_t *u)
{
    const uint8_t *b = (const uint8_t *)data + ggml_type_nbytes(GGML_TYPE_Q2_K, first);
    for (uint64_t i = 0; i < n / 32; b += 84) {   /* as decode_q2_k */
        float d = f16_at(b + 80), dmin = f16_at(b + 82);
        for (int j = 0; j < 8; j++, i++, u += 32) {
            sc[i] = (q2_scale){ d, dmin, { b[2 * j], b[2 * j + 1] } };
            const uint8_t *q = b + 16 + 32 * (j / 4);
            for (int l = 0; l < 32; l++)
                u[l] = q[l] >> (2 * (j % 4)) & 3;
        }
    }
}
