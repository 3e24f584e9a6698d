/*
** ggml's tensor formats decoded to f32. Internal to copse.
**
** This is how copse reads every weight a GGUF file can give it: the f32
** reference path expands tensors with it, and the int8 tier decodes a row
** with it before quantizing the row to its own blocks (q8.h). The block
** formats (Q4_0 ... Q6_K, IQ4_NL, IQ4_XS) are llama.cpp's; decoding follows
** its order of float operations, so the values are the ones llama.cpp
** computes with. Formats that need lookup grids (IQ1, IQ2, IQ3) or ternary
** packing (TQ1_0, TQ2_0) are refused by name.
*/
#ifndef COPSE_DEQUANT_H
#define COPSE_DEQUANT_H

#include <stdint.h>
#include "f16.h"

/* 1 when values of this ggml type (enum ggml_type) can be decoded. */
int dequant_supported(uint32_t type);

/* "F32, F16, BF16, Q8_0, ..." : the decodable types, for error messages. */
const char *dequant_type_list(void);

/*
** Elements [first, first + n) of data, an array of `type` laid out as in a
** GGUF file, into out[n]. first and n are whole blocks of the type
** (ggml_type_block); the type is one dequant_supported accepts.
*/
void dequant(uint32_t type, const void *data, uint64_t first, uint64_t n, float *out);

/*
** The types whose every block of 32 values is an fp16 scale times 32
** integers that fit int8 (Q8_0, Q4_0, Q5_0, IQ4_NL), and IQ4_XS, whose
** blocks are that but for the scale: 1 for those. dequant_int8 gives
** blocks [first, first + n) (as above) as the scales' fp16 bits d[i] and
** q[32 i + j], such that f16(d[i]) * q in f32 is the value dequant gives
** (the product is exact: 11 + 8 significant bits). IQ4_XS's scale is its
** super-block's fp16 d times a 6-bit integer, up to 17 significant bits:
** d[i] is that rounded to fp16 (nearest even), so its values are within
** 2^-11 of dequant's, relatively (2^-25 absolutely for a scale below
** fp16's normal range), where requantizing them to int8 moved them up to
** 1/254 of the block's largest; an fp16 overflow gives an infinite d[i].
*/
int dequant_int8_supported(uint32_t type);
void dequant_int8(uint32_t type, const void *data, uint64_t first, uint64_t n, uint16_t *d,
                  int8_t *q);

/*
** Of those, the ones whose integers are codes (Q4_0, IQ4_NL, IQ4_XS: 4
** bits; Q5_0: 5): dequant_code_bits gives 4 or 5 for those, 0 for others.
** A code u stands for dequant_code_value(levels, u): the level of its low
** 4 bits (dequant_code_levels: Q4_0's u - 8, the IQ4 codebook, Q5_0's
** u - 16) plus 16 for a fifth bit. dequant_codes gives blocks [first,
** first + n) (as above) as the scales' fp16 bits d[i] and codes u[32 i + j].
*/
int dequant_code_bits(uint32_t type);
void dequant_code_levels(uint32_t type, int8_t levels[16]);
void dequant_codes(uint32_t type, const void *data, uint64_t first, uint64_t n, uint16_t *d,
                   uint8_t *u);

static inline int8_t dequant_code_value(const int8_t levels[16], uint8_t u)
{
    return (int8_t)(levels[u & 0xF] + 16 * (u >> 4));
}

/*
** The scale dw and minimum mw of a block of 32 values dw * u - mw, each an
** f32 factor times an fp16 one: the product is exact in f32 (11 + 11
** significant bits at most), so the factors are a compact form of the
** values, not an approximation. The f32 factors ds and ms are the same
** for every 8 blocks (256 values) of a row: Q4_K's d and dmin.
*/
typedef struct nibble_scale {
    float    ds, ms;
    uint16_t dh, mh;     /* fp16 */
} nibble_scale;

static inline float nibble_dw(nibble_scale s) { return s.ds * copse_f16_to_f32(s.dh); }
static inline float nibble_mw(nibble_scale s) { return s.ms * copse_f16_to_f32(s.mh); }

/*
** The types whose every block of 32 values is dw * u - mw with u a 4-bit
** quant (Q4_0, Q4_1, Q4_K) or a 5-bit one (Q5_0, Q5_1, Q5_K):
** dequant_nibble_bits gives 4 or 5 for those, 0 for others. dequant_nibbles
** gives blocks [first, first + n) of 32 (first and n in whole blocks of
** the type, as above, counted in values) as sc[i] and u[32 i + j], such
** that nibble_dw(sc[i]) * u - nibble_mw(sc[i]) in f32 is the value dequant
** gives (+0 where Q4_0 and Q5_0 give -0). A row that starts a block of the
** type starts a run of 8 blocks with one ds and ms.
*/
int dequant_nibble_bits(uint32_t type);
void dequant_nibbles(uint32_t type, const void *data, uint64_t first, uint64_t n,
                     nibble_scale *sc, uint8_t *u);

/*
** The types whose every 16 values are dw (u - o): Q6_K (u a 6-bit quant,
** o = 32, dw its block of 256's fp16 d times the 16's int8 factor) and
** Q3_K (u a 3-bit one, o = 4, dw d times a 6-bit factor less 32):
** dequant_half_bits gives 6 or 3 for those, 0 for others. dequant_halves
** gives blocks [first, first + n) of 32 (whole blocks of 256, as above)
** as sc[i] and u[32 i + j], the scale of the first 16 values
** nibble_dw(sc[i]), that of the last 16 nibble_mw(sc[i]) (both exact: 11
** + 8 significant bits at most), so that scale * (float)(u - o) in f32 is
** the value dequant gives.
*/
int dequant_half_bits(uint32_t type);
void dequant_halves(uint32_t type, const void *data, uint64_t first, uint64_t n, nibble_scale *sc,
                    uint8_t *u);

/*
** Q2_K: every 16 values are dw u - mw, u a 2-bit quant, dw and mw its
** block of 256's fp16 d and dmin times the 16's factor byte's low and
** high nibble. dequant_q2_k gives blocks [first, first + n) of 32 (whole
** blocks of 256, as above) as sc[i] and u[32 i + j], such that
** q2_dw(sc[i], h) * u - q2_mw(sc[i], h) in f32, h the half of the block,
** is the value dequant gives (both products exact: 11 + 4 significant
** bits).
*/
typedef struct q2_scale {
    float   d, dmin;
    uint8_t f[2];        /* the halves' factor bytes */
} q2_scale;

static inline float q2_dw(q2_scale s, int h) { return s.d * (float)(s.f[h] & 15); }
static inline float q2_mw(q2_scale s, int h) { return s.dmin * (float)(s.f[h] >> 4); }

void dequant_q2_k(const void *data, uint64_t first, uint64_t n, q2_scale *sc, uint8_t *u);

#endif
