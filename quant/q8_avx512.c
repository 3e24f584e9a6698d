/*
** The avx512vnni tier: vpdpbusd on zmm. One 64-byte line of a weight group
** (4 k of 16 rows, stored as w + 128) against a broadcast of 4 activation
** bytes gives the 16 rows' partial sums; the sum starts at nsum = -128*sum(x)
** to cancel the offset. A tile keeps T tokens x G groups of int32 block
** sums and f32 results in registers, so each weight load serves T tokens
** and each broadcast G groups. 4-bit weights: a line's low nibbles are 4 k
** of the 16 rows and its high nibbles the next 4, unsigned as vpdpbusd
** wants them, with no offset to cancel. Coded ones: each nibble looked up
** (vpshufb) as its level + 128, then as 8-bit weights; offset codes (Q4_0,
** Q5_0) read in place for one token unsigned as they are, their sums
** starting from -offset * sum(x): no lookup (one token 1.15-1.25x), but a
** broadcast from a register per token and block (several tokens 0.97x).
** 6- and 3-bit weights: unsigned as they are, each half's sum from -32
** (-4) * the half's sum(x). 2-bit weights: each line of a half's quants
** four lines of bytes, by shifts and a mask.
*/
#include <immintrin.h>
#include "q8_simd.h"

#define OFFSET_TOKENS 1

#define TM 4   /* GEMM tile: tokens */
#define GM 3   /*            groups (48 rows) */
#define GV 4   /* GEMV tile: groups (64 rows in flight while streaming) */
#define PT 4   /* panel span: tokens */
#define PG 3   /*            groups (48 rows) */
#define PB 8   /*            blocks (the weights every token reuses from L1) */

_Static_assert(PT <= TM && PG <= GV, "a panel span's sums fit a tile's arrays");

/* Store the 16 rows of group g for one token, fewer past n_rows. */
INLINE void store_rows(const q8_weights *W, float *y, int g, __m512 v)
{
    __mmask16 m = (__mmask16)((1u << group_rows(W, g)) - 1);
    _mm512_mask_storeu_ps(y + (size_t)g * Q8_GROUP, m, v);
}

/* Block b of tokens t0..: its quants, scales and offset sums, token t at
** q + t * K, d[t * nb], nsum[t * nb]. Kept in locals and stepped block
** by block, the addresses cost one add each, not a multiply per use. */
typedef struct xblock {
    const int8_t *q;
    const float *d;
    const int32_t *nsum, *hsum;
    const float *sx;
    size_t K, nb;
} xblock;

INLINE xblock xblock_at(const q8_act *A, int t0, int b)
{
    size_t K = (size_t)A->K, nb = (size_t)A->nb, row = (size_t)t0 * nb + (size_t)b;
    return (xblock){ A->q + (size_t)t0 * K + (size_t)b * Q8_BLOCK, A->d + row, A->nsum + row,
                     A->hsum + row, A->sx + row, K, nb };
}

INLINE void xblock_next(xblock *x)
{
    x->q += Q8_BLOCK;
    x->d++;
    x->nsum++;
    x->hsum++;
    x->sx++;
}

/* Coded weights' levels + 128 (the tier's wbias) in each 128-bit lane. */
typedef __m512i q8_lut;

INLINE q8_lut lut_of(const q8_weights *W, const int bits)
{
    if (!(bits & Q8_CODED))
        return _mm512_setzero_si512();
    __m128i l = _mm_loadu_si128((const __m128i *)W->levels);
    return _mm512_broadcast_i32x4(_mm_xor_si128(l, _mm_set1_epi8((char)W->wbias)));
}

/* Line j of a block of 4-, 5- or 6-bit quants at q (q8.h) as the bytes
** line j of an 8-bit block holds: its nibbles (coded: their entries in
** lut); for 5 bits 16 more where bit j of the fifth-bit line's byte is
** set; for 6 bits its pair of top bits, shifted to bits 4 and 5 (a 16-bit
** shift moves bits across bytes only outside them) and ORed in: a fifth
** and sixth bit line as the fifth bits are took twice the time. */
INLINE __m512i quant_line(const uint8_t *q, int j, const int bits, q8_lut lut)
{
    if (bits == 2)
        return _mm512_and_si512(_mm512_srli_epi16(_mm512_load_si512(q + j / 4 * 64), 2 * (j % 4)),
                                _mm512_set1_epi8(0x03));
    __m512i v = _mm512_load_si512(q + j / 2 * 64);
    __m512i w = _mm512_and_si512(j % 2 ? _mm512_srli_epi16(v, 4) : v, _mm512_set1_epi8(0x0F));
    if ((bits & Q8_CODED) && !(bits & Q8_OFFSET))
        w = _mm512_shuffle_epi8(lut, w);
    if (q8_quant_bits(bits) == 5)
        w = _mm512_mask_add_epi8(w, _mm512_test_epi8_mask(_mm512_load_si512(q + Q4_GROUP_QBYTES),
                                                          _mm512_set1_epi8((char)(1 << j))),
                                 w, _mm512_set1_epi8(0x10));
    if (q8_quant_bits(bits) == 6) {
        __m512i h = _mm512_load_si512(q + Q4_GROUP_QBYTES + j / 4 * 64);
        int m = j % 4;
        h = m < 2 ? _mm512_slli_epi16(h, 4 - 2 * m) : m == 3 ? _mm512_srli_epi16(h, 2) : h;
        w = _mm512_ternarylogic_epi32(w, h, _mm512_set1_epi8(0x30), 0xF8);   /* w | (h & 0x30) */
    }
    return w;
}

/* The exact int32 sums of part p of a block (PARTS) of T tokens x G
** groups: s[t][g] holds the 16 rows' sums. wq[g] points at the block's
** quants of group g0 + g, a byte each (nibbles 0), or as W's bits lay
** them out (nibbles: those bits). */
INLINE void block_sums(const xblock *x, const int T, const uint8_t *const *wq, const int G,
                       __m512i s[TM][GV], const int bits, const int nibbles, q8_lut lut, const int p)
{
    const int lines = Q8_BLOCK / 4 / PARTS(bits);
    UNROLL
    for (int t = 0; t < T; t++) {
        int32_t ns = x->nsum[t * x->nb];
        __m512i c = bits & Q8_OFFSET ? _mm512_set1_epi32(offset_sum(ns, bits))
                  : PARTS(bits) == 2 ? _mm512_set1_epi32(half_init(ns, x->hsum[t * x->nb], p, bits))
                  : q8_int8_scaled(bits) ? _mm512_set1_epi32(ns) : _mm512_setzero_si512();
        UNROLL
        for (int g = 0; g < G; g++)
            s[t][g] = c;
    }
    UNROLL
    for (int j = p * lines; j < (p + 1) * lines; j++) {
        __m512i w[GV];
        UNROLL
        for (int g = 0; g < G; g++) {
            w[g] = nibbles ? quant_line(wq[g], j, nibbles, lut) : _mm512_load_si512(wq[g] + j * 64);
        }
        UNROLL
        for (int t = 0; t < T; t++) {
            __m512i xb = _mm512_set1_epi32(load4(x->q + t * x->K + 4 * j));
            UNROLL
            for (int g = 0; g < G; g++)
                s[t][g] = _mm512_dpbusd_epi32(s[t][g], w[g], xb);
        }
    }
}

/* The sums of part p of the blocks' parts (PARTS: raw's nb is nb parts). */
INLINE void store_raw(const q8_weights *W, int t0, const int T, int g0, const int G, int p,
                      __m512i s[TM][GV], int32_t *raw)
{
    const size_t np = (size_t)W->nb * PARTS(W->bits);
    UNROLL
    for (int t = 0; t < T; t++)
        UNROLL
        for (int g = 0; g < G; g++)
            _mm512_storeu_si512(raw + (((size_t)(t0 + t) * W->n_groups + g0 + g) * np + p)
                                * Q8_GROUP, s[t][g]);
}

/* Factor k of a block's scales (4, 5 bits: 0 its scales, 1 its
** minimums; 6, 3 bits: its halves'; 2 bits: 2h its half h's scales, 2h + 1
** its minimums): from sc, as unpack_scales writes them, when ss is NULL,
** else the product of the factors at h (fp16; 2 bits: a nibble of the
** half's factor bytes) and the f32 ones at ss (q8.h). */
INLINE __m512 block_factor(const uint8_t *h, const float *ss, int k, const int bits)
{
    if (!ss)
        return _mm512_load_ps((const float *)h + 16 * k);
    if (bits == 2) {
        __m512i f = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)h + k / 2));
        f = k % 2 ? _mm512_srli_epi32(f, 4) : _mm512_and_si512(f, _mm512_set1_epi32(15));
        return _mm512_mul_ps(_mm512_load_ps(ss + 16 * (k % 2)), _mm512_cvtepi32_ps(f));
    }
    return _mm512_mul_ps(_mm512_load_ps(ss + 16 * k),
                         _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)h + k)));
}

/* Part p of a block (PARTS) of T tokens x G groups into the f32 sums f:
** wq[g] and ws[g] at the block's quants and scales of group g0 + g (ss[g]
** its f32 factors, or ss NULL: block_factor), the tokens' activations at
** x; or its int32 sums into raw as part np. */
INLINE void span_part(const q8_weights *W, const xblock *x, int t0, const int T, int g0,
                      const int G, const uint8_t *const *wq, const uint8_t *const *ws,
                      const float *const *ss, __m512 f[TM][GV], int32_t *raw, int np,
                      const int bits, const int nibbles, q8_lut lut, const int p)
{
    __m512i s[TM][GV];
    block_sums(x, T, wq, G, s, bits, nibbles, lut, p);
    if (raw) {
        store_raw(W, t0, T, g0, G, np, s, raw);
        return;
    }
    const int k = bits == 2 ? 2 * p : p;   /* the scales' factor; the minimums' is next */
    UNROLL
    for (int g = 0; g < G; g++) {
        __m512 dw = q8_int8_scaled(bits) ? _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)ws[g]))
                                         : block_factor(ws[g], ss ? ss[g] : NULL, k, bits);
        __m512 mw = q8_has_min(bits) ? block_factor(ws[g], ss ? ss[g] : NULL, k + 1, bits) : dw;
        UNROLL
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)t * x->nb;
            f[t][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t][g]),
                                      _mm512_mul_ps(dw, _mm512_set1_ps(x->d[i])), f[t][g]);
            if (q8_has_min(bits))
                f[t][g] = _mm512_fnmadd_ps(mw, _mm512_set1_ps(q8_min_sx(x->d[i], x->sx[i], x->nsum[i],
                                                                        x->hsum[i], p, bits)), f[t][g]);
        }
    }
}

/*
** Blocks [b0, b1) of T tokens x G groups, the f32 sums in registers: from
** zero at block 0, else from acc (row stride G * 16); into y after the
** last block, else back to acc. With raw set, the int32 block sums go
** there instead.
*/
INLINE void span(const q8_weights *W, const q8_act *A, int t0, const int T, int g0,
                 const int G, int b0, int b1, q8_ahead *ahead, float *acc, float *y,
                 int32_t *raw, const int bits, const uint8_t *wbuf, const float *sc)
{
    const size_t qstep = bits == 8 || wbuf ? Q8_GROUP_QBYTES : q8_qbytes(bits);
    const int factors = !q8_int8_scaled(bits) && !sc;   /* two factors, from W */
    const size_t sstep = q8_int8_scaled(bits) ? Q8_GROUP * 2
                       : sc ? (size_t)q8_scale_floats(bits) * sizeof(float) : q8_factor_bytes(bits);
    const q8_lut lut = lut_of(W, bits);
    const uint8_t *wq[GV], *ws[GV];
    const float *ss[GV];
    __m512 f[TM][GV];
    xblock x = xblock_at(A, t0, b0);
    UNROLL
    for (int g = 0; g < G; g++) {
        wq[g] = wbuf ? wbuf + (size_t)g * (b1 - b0) * qstep
                     : q8_group_quants(W, g0 + g) + (size_t)b0 * qstep;
        ws[g] = q8_int8_scaled(bits) ? W->data + (size_t)(g0 + g) * W->group_bytes + (size_t)b0 * sstep
              : sc ? (const uint8_t *)(sc + (size_t)g * (b1 - b0) * (size_t)q8_scale_floats(bits))
              : bits == 2 ? q2_group_factors(W, g0 + g, b0)
                          : (const uint8_t *)q4_group_halves(W, g0 + g, b0);
    }
    UNROLL
    for (int t = 0; t < T; t++)
        UNROLL
        for (int g = 0; g < G; g++)
            f[t][g] = b0 ? _mm512_load_ps(acc + ((size_t)t * G + g) * Q8_GROUP)
                         : _mm512_setzero_ps();
    const int nibbles = bits != 8 && !wbuf ? bits : 0;
    for (int b = b0; b < b1; b++) {
        ahead_block(ahead, b1 - b, bits);
        if (T == 1 && !wbuf)
            ahead_one_token(wq, G, bits);
        UNROLL
        for (int g = 0; g < G && factors; g++)
            ss[g] = q4_group_supers(W, g0 + g, b);
        span_part(W, &x, t0, T, g0, G, wq, ws, factors ? ss : NULL, f, raw, b * PARTS(bits), bits,
                  nibbles, lut, 0);
        if (PARTS(bits) == 2)
            span_part(W, &x, t0, T, g0, G, wq, ws, factors ? ss : NULL, f, raw, b * 2 + 1, bits,
                      nibbles, lut, 1);
        UNROLL
        for (int g = 0; g < G; g++) {
            wq[g] += qstep;
            ws[g] += sstep;
        }
        xblock_next(&x);
    }
    if (raw)
        return;
    UNROLL
    for (int t = 0; t < T; t++)
        UNROLL
        for (int g = 0; g < G; g++) {
            if (acc && b1 < W->nb)
                _mm512_store_ps(acc + ((size_t)t * G + g) * Q8_GROUP, f[t][g]);
            else
                store_rows(W, y + (size_t)(t0 + t) * W->n_rows, g0 + g, f[t][g]);
        }
}

/* Block b of group g of 4-bit weights: its 16 scales, then its 16
** minimums (2 bits: so for each half), each the product of its two
** factors. */
INLINE void unpack_scales(const q8_weights *W, int g, int b, float *dst, const int bits)
{
    const uint8_t *h = bits == 2 ? q2_group_factors(W, g, b) : (const uint8_t *)q4_group_halves(W, g, b);
    const float *s = q4_group_supers(W, g, b);
    for (int k = 0; k < q8_scale_floats(bits) / Q8_GROUP; k++)
        _mm512_store_ps(dst + 16 * k, block_factor(h, s, k, bits));
}

/* A block of 2- to 6-bit quants or codes at src as an 8-bit
** block's bytes at dst. */
INLINE void unpack_block(const uint8_t *restrict src, uint8_t *restrict dst, const int bits,
                         q8_lut lut)
{
    UNROLL
    for (int j = 0; j < Q8_BLOCK / 4; j++)
        _mm512_store_si512(dst + 64 * j, quant_line(src, j, bits, lut));
}

#include "q8_rect.inc"

/* q = x * id to nearest even, clamped (a NaN to -127: max with the
** constant second returns it), a block in two vectors; *half gets the
** first half's sum(q), *nsum -128 * sum(q). */
static void block_quantize(const float *x, float id, int8_t *q, int32_t *nsum, int32_t *half)
{
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f), vid = _mm512_set1_ps(id);
    __m512i v[2];
    for (int h = 0; h < 2; h++) {
        v[h] = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(
                   _mm512_mul_ps(_mm512_loadu_ps(x + 16 * h), vid), lo), hi));
        _mm_storeu_si128((__m128i *)(q + 16 * h), _mm512_cvtepi32_epi8(v[h]));
    }
    *half = _mm512_reduce_add_epi32(v[0]);
    *nsum = -128 * (*half + _mm512_reduce_add_epi32(v[1]));
}

/* The largest of v's lanes (none a NaN), in every lane. */
INLINE __m512 lanes_max(__m512 v)
{
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_max_ps(v, _mm512_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_max_ps(v, _mm512_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
}

/* Same arithmetic as q8_quantize_ref, 16 blocks' scales divided at once.
** Rows of a few thousand values (qwen2's 4864-wide SwiGLU output) made
** the AVX2 version a visible part of a decode step. The maxima go into
** their lanes in registers: stored one by one and read back as a vector,
** they stalled the division: a row of one block (what the fused passes
** quantize at a time) took 2.7 times as long. */
static void quantize(const float *x, int K, int8_t *q, float *d, int32_t *nsum, int32_t *hsum)
{
    const int nb = K / Q8_BLOCK;
    for (int b0 = 0; b0 < nb; b0 += 16) {
        int n = nb - b0 < 16 ? nb - b0 : 16;
        _Alignas(64) float amax[16], id[16];
        __m512 mv = _mm512_setzero_ps();
        for (int i = 0; i < n; i++) {
            const float *xb = x + (size_t)(b0 + i) * Q8_BLOCK;
            /* max(|x|, m) returns m for a NaN */
            __m512 m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xb)), _mm512_setzero_ps());
            m = lanes_max(_mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xb + 16)), m));
            mv = _mm512_mask_mov_ps(mv, (__mmask16)(1u << i), m);
        }
        __m512 dv = _mm512_div_ps(mv, _mm512_set1_ps(127.0f));
        __mmask16 nz = _mm512_cmp_ps_mask(dv, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_store_ps(id, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), dv));
        _mm512_store_ps(amax, dv);
        for (int i = 0; i < n; i++) {
            size_t b = (size_t)b0 + i;
            d[b] = amax[i];
            block_quantize(x + b * Q8_BLOCK, id[i], q + b * Q8_BLOCK, nsum + b, hsum + b);
        }
    }
}

const q8_kernels q8_tier_avx512vnni = { "avx512vnni", 0x80, quantize, rect, rect4, rect5, rect6, rect3,
                                           rect2, rect4c, rect5c };
