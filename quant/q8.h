/*
** int8 matrix products: weights and activations quantized in blocks of 32
** with one scale per block, int8 x int8 products summed exactly in int32
** per block, then scaled to f32. Internal to copse.
**
** The forward pass calls, per weight matrix W [n_rows x K] (GGUF's ne[1]
** x ne[0], i.e. y = W x for every token):
**
**     q8_weights_from_tensor(tier, tensor, &W, err)      once, at load
**     q8_matmul(W, x, M, y, n_threads, err)              y[M][n_rows] = x[M][K] W^T
**
** or, to quantize one input once for several matrices (Q/K/V, gate/up):
**
**     q8_act_quantize(W->tier, x, M, K, &act, n_threads, err)
**     q8_matmul_act(Wq, &act, yq, n_threads, err), then Wk, Wv likewise
**
** Kernel tiers: one function table per ISA (scalar, avx2, avxvnni,
** avx512vnni, neon, neon-dotprod), chosen by q8_tier_default() from the
** CPU and the COPSE_ISA environment variable; its name is tier->name (what
** `copse run` prints). Weights are packed for the tier that will run them
** (the byte encoding differs, below); activations are the same for every
** tier. Packing copies: the GGUF mapping is not used afterwards. Packed
** weights are read-only, so any number of threads may share them.
**
** --- Activations (q8_act), per token t and block b of 32 values:
**     d[t][b]    = amax / 127 (f32), amax = max |x| over the block
**     q[t][32b+k]= nearest-even(x * (1/d)) clamped to [-127, 127] (0 when d is 0)
**     nsum[t][b] = -128 * sum_k q[t][32b+k]
** Every tier produces exactly these values (the scalar code is the
** specification). q never holds -128: the AVX2 sign trick relies on it.
** nsum is the correction for tiers that store weights offset by 128.
**
** --- Weights (q8_weights): rows padded to a multiple of 16 with zeros and
** cut into groups of 16 rows. Group g (rows 16g..16g+15) occupies
** group_bytes at data + g*group_bytes, 64-byte aligned:
**     uint16_t d[nb][16]          fp16 scale of row 16g+r, block b
**     (zero padding up to scale_bytes, a multiple of 64)
**     uint8_t  q[nb][8][16][4]    q[b][j][r][i] = w(16g+r, 32b+4j+i) ^ wbias
** so one 64-byte line holds 4 consecutive k of all 16 rows: a 4-byte
** broadcast of the activation against it gives 16 row sums at once
** (vpdpbusd, vdotq_s32) with no horizontal reduction. wbias is 0x80 for
** the VNNI tiers, whose instruction wants the weights unsigned (w + 128;
** nsum removes the offset), else 0. Q8_0 blocks keep their fp16 scale and
** int8 values bit for bit, and so do Q5_0, IQ4_NL and Q4_0 blocks as the
** int8 values they stand for (dequant_int8; IQ4_XS's with their scales
** rounded to fp16).
**
** --- Results: out(t, n) = sum over b, in order, of
**     acc = fma((float)isum(t,n,b), dw(n,b) * d[t][b], acc)   from acc = 0
** with isum the exact int32 block sum. Every tier rounds the same way, so
** all tiers give bit-identical outputs, for any thread count.
**
** --- 4-bit weights (bits = 4): the tensors whose every block of 32 is a
** scale times a 4-bit quant minus a minimum (Q4_0, Q4_1, Q4_K: dequant.h)
** keep their nibbles: 0.66 bytes a weight, not 1.06, each weight exactly
** the file's. Group g holds
**     uint16_t h[nb][2][16]       fp16 factors of dw(16g+r, b), then of mw: 64 bytes a block
**     float    s[ns][2][16]       f32 factors of dw, then of mw, for blocks 8j..8j+7
**                                 (ns = nb / 8 rounded up): 128 bytes each
**     uint8_t  q[nb][4][16][4]    q[b][L][r][i] = u(16g+r, 32b+8L+i)
**                                               | u(16g+r, 32b+8L+4+i) << 4
** with w(n, k) = dw u - mw, u in [0, 15], dw = s[b/8][0][r] * h[b][0][r]
** and mw = s[b/8][1][r] * h[b][1][r], products exact in f32
** (nibble_scale, dequant.h: Q4_K's d times its 6-bit factor): one 64-byte
** line holds 8 k of all 16 rows, its low nibbles the first 4 k, its high
** nibbles the next.
** The block sum is isum = sum_k u x[k] (no offset) and
**     acc = fma((float)isum, dw * d[t][b], acc)
**     acc = fma(-mw, sx[t][b], acc)
** with sx = d * (float)(sum_k x[k]) (q8_act, computed with the quants).
**
** --- 5-bit weights (bits = 5): Q5_0, Q5_1 and Q5_K, the same with u in
** [0, 31] (0.78 bytes a weight): each block's four lines of low nibbles
** are followed by one line of fifth bits,
**     uint8_t  h5[16][4]          bit j of h5[r][i] = u(16g+r, 32b+4j+i) >> 4
** so byte p of that line holds the fifth bits of byte p of the eight
** lines an 8-bit block has. The kernels unpack them to a byte each (a
** panel's stretch at a time into L1, one token's in registers) and go on
** as for 4-bit weights; the q4_ accessors below read both widths.
**
** --- Coded weights (bits = Q8_CODED | 4 or 5): the types whose quants
** are codes for int8 levels under an fp16 scale (Q4_0, IQ4_NL, IQ4_XS:
** 4 bits; Q5_0: 5; dequant.h) keep their codes, laid out as the 4- and
** 5-bit quants above, under the 8-bit layout's fp16 scales d[nb][16]: 0.56 and
** 0.69 bytes a weight. levels[16] holds the level of each low nibble; a
** fifth bit adds 16 (dequant_code_value). The kernels look each line of
** codes up as the bytes an 8-bit block would hold there (level ^ wbias)
** and go on exactly as for 8-bit weights: the same sums and rounding,
** with no minimum.
**
** --- 6-bit weights (bits = 6): Q6_K, whose every 16 weights are
** dw (u - 32), u in [0, 63], keep their quants: 0.91 bytes a weight, not
** 1.06, each weight exactly the file's. A block of 32 is two halves (k
** 0-15 and 16-31) with a scale each, held as the 4-bit layout holds a
** scale and a minimum: h[b][0] and s[b / 8][0] are the first half's
** factors, h[b][1] and s[b / 8][1] the second's (Q6_K's d, f32, times
** its int8 factor, fp16). Each block's four lines of low nibbles (as 4-bit
** weights) are followed by two lines of their top two bits, four lines'
** pairs a byte:
**     uint8_t  h6[2][16][4]       bits 2m, 2m+1 of h6[L][r][i] = u(16g+r, 32b+16L+4m+i) >> 4
** so the pair of line j sits at the same bits of each byte: one 16-bit
** shift takes it to bits 4 and 5 and an OR joins it to its nibble (no
** mask registers, one mask constant). Lines 0-3 of a block are its first
** half, 4-7 its second. Each half has its own exact sum,
** isum_h = sum over the half of (u - 32) x[k], which the kernels form as
** sum u x[k] from -32 * (the half's sum of x), from hsum and nsum
** (q8_act), and
**     acc = fma((float)isum_0, dw_0 * d[t][b], acc)
**     acc = fma((float)isum_1, dw_1 * d[t][b], acc)
** The raw sums of a block are its two halves' (raw's nb is 2 nb).
**
** --- 3-bit weights (bits = 3): Q3_K, whose every 16 weights are
** dw (u - 4), u in [0, 7], laid out as 6-bit weights without the top-bit
** lines (each u a nibble): 0.66 bytes a weight, not 1.06, each weight
** exactly the file's (Q3_K's d times its 6-bit factor less 32). The same
** arithmetic with -4 for -32:
**     isum_h = sum over the half of (u - 4) x[k]
**
** --- 2-bit weights (bits = 2): Q2_K, whose every 16 weights are
** dw u - mw, u in [0, 3], dw and mw the 16's 4-bit factors of its block
** of 256's d and dmin (dequant.h), keep their quants and factor bytes:
** 0.33 bytes a weight, not 1.06, each weight exactly the file's. Group g
** holds
**     uint8_t  f[nb][2][16]       the factor byte of half h of row 16g+r, block b:
**                                 dw's factor in its low nibble, mw's in its high one
**     float    s[ns][2][16]       d, then dmin, of the rows, for blocks 8j..8j+7
**     (zero padding up to scale_bytes, a multiple of 64)
**     uint8_t  q[nb][2][16][4]    bits 2m, 2m+1 of q[b][H][r][i] = u(16g+r, 32b+16H+4m+i)
** so one 64-byte line holds a half of all 16 rows: a shift by 2m and a
** mask give line 4H+m of an 8-bit block. The halves have their own sums,
** isum_h = sum over the half of u x[k] (raw: the halves'), and each is a
** 4-bit block's arithmetic with its own factors,
**     acc = fma((float)isum_h, dw_h * d[t][b], acc)
**     acc = fma(-mw_h, d[t][b] * (float)xs_h, acc)       h = 0, then 1
** with dw_h = s[b/8][0][r] * (f & 15), mw_h = s[b/8][1][r] * (f >> 4)
** (both exact: 11 + 4 significant bits) and xs_h the half's sum of the
** activation quants: hsum, then sum - hsum (q8_act).
*/
#ifndef COPSE_Q8_H
#define COPSE_Q8_H

#include <stddef.h>
#include <stdint.h>
#include "copse.h"
#include "gguf.h"
#include "f16.h"
#include "dequant.h"

#define Q8_BLOCK 32          /* values per block (QK8_0) */
#define Q8_GROUP 16          /* rows per packed group */
#define Q8_GROUP_QBYTES (Q8_GROUP * Q8_BLOCK)   /* quant bytes per group and block */
#define Q4_GROUP_QBYTES (Q8_GROUP_QBYTES / 2)  /* the same for 4- (and 3-) bit weights */
#define Q2_GROUP_QBYTES (Q8_GROUP_QBYTES / 4)  /* and 2-bit ones */
#define Q2_GROUP_FBYTES (2 * Q8_GROUP)         /* 2-bit: factor bytes per group and block */
#define Q5_GROUP_QBYTES (Q4_GROUP_QBYTES + 64) /* and 5-bit ones: the nibbles, then the fifth bits */
#define Q6_GROUP_QBYTES (Q4_GROUP_QBYTES + 128) /* and 6-bit ones: the nibbles, then the top bits */
#define Q4_GROUP_HBYTES (2 * Q8_GROUP * 2)     /* 4-bit: fp16 factor bytes per group and block */
#define Q4_SUPER 8                             /* 4-bit: blocks that share the f32 factors */
#define Q4_GROUP_SUPBYTES (2 * Q8_GROUP * 4)   /* 4-bit: f32 factor bytes per group and Q4_SUPER */
#define Q8_CODED 16                            /* bits of coded weights: Q8_CODED | 4 or 5 */
#define Q8_OFFSET 32                           /* kernels' kind: coded, computed as u - offset */

/* Weights of bits that are scaled as 8-bit ones: an fp16 scale, no minimum. */
static inline int q8_int8_scaled(int bits) { return bits == 8 || bits & Q8_CODED; }

/* The bits a quant or code of weights of bits takes: 8, 6, 5, 4 or 3. */
static inline int q8_quant_bits(int bits) { return bits & 15; }

/* Weights whose blocks have two halves with a scale each (6 and 3 bits),
** and the offset their quants are stored with (u - offset is the value). */
static inline int q8_halves(int bits) { return bits == 6 || bits == 3 || bits == 2; }
static inline int q8_half_offset(int bits) { return bits == 6 ? 32 : bits == 3 ? 4 : 0; }

/* Weights with a minimum (4, 5 bits: a block's; 2 bits: each half's). */
static inline int q8_has_min(int bits) { return bits == 4 || bits == 5 || bits == 2; }

/* Bytes of a group's block's fp16 factors (2 bits: factor bytes), and
** floats of its scales as the panels unpack them: the scales, then the
** minimums (4, 5 bits), the halves' scales (6, 3), or per half its scales
** and minimums (2). */
static inline size_t q8_factor_bytes(int bits) { return bits == 2 ? Q2_GROUP_FBYTES : Q4_GROUP_HBYTES; }
static inline int q8_scale_floats(int bits) { return (bits == 2 ? 4 : 2) * Q8_GROUP; }

/* The activation term a minimum multiplies, for part p of a block whose
** d, sx, nsum and hsum (q8_act) are given: 4-, 5-bit weights' sx, 2-bit
** ones' d * (float)(the half's sum of x). */
static inline float q8_min_sx(float d, float sx, int32_t nsum, int32_t hsum, int p, int bits)
{
    return bits == 2 ? d * (float)(p ? nsum / -128 - hsum : hsum) : sx;
}

typedef struct q8_kernels q8_kernels;

typedef struct q8_weights {
    const q8_kernels *tier;  /* the tier this packing is for */
    int      n_rows, K;      /* logical shape */
    int      nb;             /* blocks per row: K / 32 */
    int      n_groups;       /* ceil(n_rows / 16) */
    int      bits;           /* 8; 4 or 5 for quants with a scale and minimum; 6 or 3; or coded */
    uint8_t  wbias;          /* tier->wbias, copied (8 bits and coded only) */
    int8_t   levels[16];     /* coded: the level of each low nibble */
    size_t   scale_bytes;    /* bytes of a group's scale part */
    size_t   group_bytes;
    uint8_t *data;           /* n_groups * group_bytes, 64-byte aligned */
} q8_weights;

typedef struct q8_act {
    int      M, K, nb;
    int8_t  *q;              /* [M][K] */
    float   *d;              /* [M][nb] */
    int32_t *nsum;           /* [M][nb] */
    float   *sx;             /* [M][nb] d * (float)(nsum / -128): for 4-bit weights */
    int32_t *hsum;           /* [M][nb] sum_k q[t][32b+k] over k < 16: for 6-, 3-bit weights */
    size_t   cap;            /* bytes held in mem */
    void    *mem;
} q8_act;

/*
** One ISA tier. rect computes the tokens [t0, t1) against the row groups
** [g0, g1) of W: when raw is NULL it writes the results y[t][n] (row
** stride W->n_rows, rows past n_rows not written); otherwise it writes the
** exact int32 block sums raw[((t*n_groups + g)*nb + b)*16 + r] instead
** (padding rows included), which the tests compare between tiers. rect4,
** rect5, rect6, rect3 and rect2 do the same for 4-, 5-, 6-, 3- and 2-bit weights,
** rect4c and rect5c for coded ones.
*/
typedef void q8_rect_fn(const q8_weights *W, const q8_act *A, int t0, int t1,
                        int g0, int g1, float *y, int32_t *raw);

struct q8_kernels {
    const char *name;        /* as COPSE_ISA spells it */
    uint8_t     wbias;
    /* a row of K as q8_act holds it: q, d, nsum and hsum per block */
    void (*quantize)(const float *x, int K, int8_t *q, float *d, int32_t *nsum, int32_t *hsum);
    q8_rect_fn *rect, *rect4, *rect5, *rect6, *rect3, *rect2, *rect4c, *rect5c;
};

/* W's tier's entry for W's bits. */
static inline void q8_rect(const q8_weights *W, const q8_act *A, int t0, int t1, int g0, int g1,
                           float *y, int32_t *raw)
{
    const q8_kernels *k = W->tier;
    (W->bits == 4 ? k->rect4 : W->bits == 5 ? k->rect5 : W->bits == 6 ? k->rect6
     : W->bits == 3 ? k->rect3 : W->bits == 2 ? k->rect2 : W->bits == (Q8_CODED | 4) ? k->rect4c
     : W->bits == (Q8_CODED | 5) ? k->rect5c : k->rect)(W, A, t0, t1, g0, g1, y, raw);
}

/* Quant bytes per group and block of weights of bits. */
static inline size_t q8_qbytes(int bits)
{
    bits = q8_quant_bits(bits);
    return bits == 8 ? Q8_GROUP_QBYTES : bits == 2 ? Q2_GROUP_QBYTES : bits <= 4 ? Q4_GROUP_QBYTES
         : bits == 5 ? Q5_GROUP_QBYTES : Q6_GROUP_QBYTES;
}

/* ------------------------------------------------------------------ tiers */

/* The tier to use: COPSE_ISA if set (COPSE_E_ARG for an unknown name,
** COPSE_E_UNSUPPORTED when this CPU or OS lacks it), else the fastest one
** this CPU supports. */
int q8_tier_default(const q8_kernels **out, copse_error *err);

/* A tier by name, if this build has it and the CPU supports it. */
int q8_tier_by_name(const char *name, const q8_kernels **out, copse_error *err);

/* Every tier compiled into this build, fastest first, and whether the
** running CPU supports it. n receives the count. */
const q8_kernels *const *q8_tiers(int *n);
int q8_tier_supported(const q8_kernels *k);

/* The tiers themselves (those this architecture builds). */
extern const q8_kernels q8_tier_scalar;
#if defined(__x86_64__)
extern const q8_kernels q8_tier_avx2, q8_tier_avxvnni, q8_tier_avx512vnni;
void q8_quantize_avx2(const float *x, int K, int8_t *q, float *d, int32_t *nsum, int32_t *hsum);
#elif defined(__aarch64__)
extern const q8_kernels q8_tier_neon, q8_tier_neondot;
void q8_quantize_neon(const float *x, int K, int8_t *q, float *d, int32_t *nsum, int32_t *hsum);
#endif

/* The specification kernels (q8_scalar.c). */
void q8_quantize_ref(const float *x, int K, int8_t *q, float *d, int32_t *nsum, int32_t *hsum);

/* ---------------------------------------------------------------- weights */

/*
** Pack weights for tier k. n_rows >= 1, K a positive multiple of 32; name
** is for messages. Q8_0 data is n_rows*K/32 blocks of 34 bytes (fp16 scale,
** 32 int8), copied bit for bit; a non-finite scale is a format error.
** F32 rows are quantized symmetrically: d = amax/127 rounded to fp16,
** q = nearest-even(x/d) clamped to [-127, 127]; non-finite values and
** scales beyond fp16 are format errors.
*/
int q8_weights_from_q8_0(const q8_kernels *k, const void *blocks, int n_rows, int K,
                         const char *name, q8_weights **out, copse_error *err);
int q8_weights_from_f32(const q8_kernels *k, const float *src, int n_rows, int K,
                        const char *name, q8_weights **out, copse_error *err);

/* A 2-D GGUF tensor (ne[0] = K): the types dequant_int8() reads (Q8_0,
** Q4_0, Q5_0, IQ4_NL, IQ4_XS) with their own scales and values, exactly
** (IQ4_XS: its scales rounded to fp16); any other type dequant.h decodes
** as its f32 values would be. With keep_bits, the coded types (Q4_0, Q5_0,
** IQ4_NL, IQ4_XS) keep their codes, the other types dequant_nibbles()
** reads (Q4_1, Q4_K, Q5_1, Q5_K) become 4- or 5-bit weights and Q6_K and
** Q3_K 6- and 3-bit ones and Q2_K 2-bit ones, each weight exactly the file's. A scale or minimum that is not finite (or, as fp16,
** would not be) is a format error. */
int q8_weights_from_tensor(const q8_kernels *k, const gguf_tensor *t, int keep_bits,
                           q8_weights **out, copse_error *err);

void q8_weights_free(q8_weights *W);

/* Bytes the packed weights occupy (what a GEMV streams). */
size_t q8_weights_bytes(const q8_weights *W);

/* Dequantize row r (0 <= r < n_rows) into out[K] (4, 5 bits: dw u - mw;
** 6, 3: dw_h (u - offset); 2: dw_h u - mw_h), e.g.
** for an embedding lookup from a tied output matrix. */
void q8_weights_row(const q8_weights *W, int r, float *out);

static inline const uint16_t *q8_group_scales(const q8_weights *W, int g)
{
    return (const uint16_t *)(W->data + (size_t)g * W->group_bytes);
}

static inline const uint8_t *q8_group_quants(const q8_weights *W, int g)
{
    return W->data + (size_t)g * W->group_bytes + W->scale_bytes;
}

/* Weight (n, k) as a signed value, and the scale of row n, block b. */
static inline int q8_weight(const q8_weights *W, int n, int k)
{
    const uint8_t *q = q8_group_quants(W, n / Q8_GROUP);
    int b = k / Q8_BLOCK, j = (k % Q8_BLOCK) / 4, r = n % Q8_GROUP;
    return (int8_t)(q[(size_t)b * Q8_GROUP_QBYTES + (j * Q8_GROUP + r) * 4 + k % 4] ^ W->wbias);
}

static inline float q8_weight_scale(const q8_weights *W, int n, int b)
{
    return copse_f16_to_f32(q8_group_scales(W, n / Q8_GROUP)[b * Q8_GROUP + n % Q8_GROUP]);
}

/* 4-, 5-, 6-, 3- and 2-bit weights: quant u of (n, k) (coded ones: its code), and
** the scale dw and minimum mw of row n, block b (4, 5 bits). */
static inline int q4_weight(const q8_weights *W, int n, int k)
{
    const uint8_t *q = q8_group_quants(W, n / Q8_GROUP) + (size_t)(k / Q8_BLOCK) * q8_qbytes(W->bits);
    int j = k % Q8_BLOCK, r = n % Q8_GROUP, bits = q8_quant_bits(W->bits);
    if (bits == 2)
        return q[(j / 16 * Q8_GROUP + r) * 4 + j % 4] >> (j % 16 / 4 * 2) & 3;
    uint8_t v = q[(j / 8 * Q8_GROUP + r) * 4 + j % 4];
    int u = j % 8 < 4 ? v & 0xF : v >> 4;
    if (bits == 5)
        u |= (q[Q4_GROUP_QBYTES + r * 4 + j % 4] >> (j / 4) & 1) << 4;
    if (bits == 6)
        u |= (q[Q4_GROUP_QBYTES + j / 16 * 64 + r * 4 + j % 4] >> (j / 4 % 4 * 2) & 3) << 4;
    return u;
}

/* Coded weights whose levels are the codes less a constant (Q4_0's 8,
** Q5_0's 16): that constant; 0 for a codebook (IQ4_NL, IQ4_XS). */
static inline int q8_code_offset(const q8_weights *W)
{
    for (int i = 1; i < 16; i++)
        if (W->levels[i] != W->levels[0] + i)
            return 0;
    return -W->levels[0];
}

/* Coded weights: weight (n, k) as a signed value (its scale is
** q8_weight_scale's). */
static inline int q8_code_weight(const q8_weights *W, int n, int k)
{
    return dequant_code_value(W->levels, (uint8_t)q4_weight(W, n, k));
}

/* 4-, 5-, 6- and 3-bit weights, group g, block b: the fp16 factors h[b]
** (2 bits: the factor bytes f[b], q2_group_factors) and the f32 ones
** s[b / 8] (layout above). */
static inline const uint16_t *q4_group_halves(const q8_weights *W, int g, int b)
{
    return (const uint16_t *)(W->data + (size_t)g * W->group_bytes) + (size_t)b * 2 * Q8_GROUP;
}

static inline const uint8_t *q2_group_factors(const q8_weights *W, int g, int b)
{
    return W->data + (size_t)g * W->group_bytes + (size_t)b * Q2_GROUP_FBYTES;
}

static inline const float *q4_group_supers(const q8_weights *W, int g, int b)
{
    return (const float *)(W->data + (size_t)g * W->group_bytes
                           + (size_t)W->nb * q8_factor_bytes(W->bits)) + (size_t)b / Q4_SUPER * 2 * Q8_GROUP;
}

static inline float q4_weight_scale(const q8_weights *W, int n, int b)
{
    int g = n / Q8_GROUP, r = n % Q8_GROUP;
    return q4_group_supers(W, g, b)[r] * copse_f16_to_f32(q4_group_halves(W, g, b)[r]);
}

static inline float q4_weight_min(const q8_weights *W, int n, int b)
{
    int g = n / Q8_GROUP, r = Q8_GROUP + n % Q8_GROUP;
    return q4_group_supers(W, g, b)[r] * copse_f16_to_f32(q4_group_halves(W, g, b)[r]);
}

/* 6-, 3- and 2-bit weights: the scale of half h of row n, block b (2 bits:
** and its minimum), and weight (n, k) as the signed value u - offset it
** multiplies. */
static inline float q8_half_scale(const q8_weights *W, int n, int b, int h)
{
    int g = n / Q8_GROUP, r = n % Q8_GROUP;
    if (W->bits == 2)
        return q4_group_supers(W, g, b)[r] * (float)(q2_group_factors(W, g, b)[h * Q8_GROUP + r] & 15);
    return h ? q4_weight_min(W, n, b) : q4_weight_scale(W, n, b);
}

static inline float q8_half_min(const q8_weights *W, int n, int b, int h)
{
    int g = n / Q8_GROUP, r = n % Q8_GROUP;
    return q4_group_supers(W, g, b)[Q8_GROUP + r] * (float)(q2_group_factors(W, g, b)[h * Q8_GROUP + r] >> 4);
}

static inline int q8_half_weight(const q8_weights *W, int n, int k)
{
    return q4_weight(W, n, k) - q8_half_offset(W->bits);
}

/* ------------------------------------------------------------ activations */


/* Quantize x[M][K] into a (buffers grow as needed; zero-initialize a
** before first use). K a positive multiple of 32. */
int q8_act_quantize(const q8_kernels *k, const float *x, int M, int K, q8_act *a,
                    int n_threads, copse_error *err);
void q8_act_free(q8_act *a);

/* The same in two steps, so that a loop which computes rows can quantize
** each as it finishes it: q8_act_shape makes a hold M rows of K (as
** above; the contents are undefined), then q8_act_quantize_row fills row
** t from x[K]. Rows may be filled in any order, on any threads. */
int q8_act_shape(q8_act *a, int M, int K, copse_error *err);
void q8_act_quantize_row(const q8_kernels *k, q8_act *a, int t, const float *x);

/* Values [k0, k0 + n) of row t from x[n], whole blocks: what quantizing
** the whole row gives them. */
void q8_act_quantize_part(const q8_kernels *k, q8_act *a, int t, int k0, int n, const float *x);

/* ---------------------------------------------------------------- matmul */

/* y[M][n_rows] = products of quantized a against W, on n_threads threads.
** The result does not depend on n_threads. */
int q8_matmul_act(const q8_weights *W, const q8_act *a, float *y, int n_threads,
                  copse_error *err);

/*
** The same, finishing the job as it goes: once the product has written
** tokens [t0, t1) of rows [n0, n1) of y, the thread that wrote them calls
** then->fn(then->ctx, t0, t1, n0, n1), on any thread, several at once.
** Rows come in runs of then->unit (a positive multiple of 16; the last
** run may end at n_rows), so fn may use a run as soon as it has it (the
** forward pass computes SwiGLU from a run's gate and up rows and
** quantizes it for the next product). Each token and row is in exactly
** one call, after its value is final.
*/
typedef struct q8_then {
    int   unit;
    void (*fn)(void *ctx, int t0, int t1, int n0, int n1);
    void *ctx;
} q8_then;

int q8_matmul_then(const q8_weights *W, const q8_act *a, float *y, int n_threads,
                   const q8_then *then, copse_error *err);

/* Quantize x[M][W->K] and multiply: the one call the forward pass needs.
** The quantized activations go to a buffer of the calling thread that
** grows to the largest M*K seen and lives as long as the thread. */
int q8_matmul(const q8_weights *W, const float *x, int M, float *y, int n_threads,
              copse_error *err);

#endif
