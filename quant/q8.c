/*
** int8 weights and activations: choosing a tier, packing, and running the
** per-ISA kernels on OpenMP threads. The layouts are described in q8.h.
*/
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "q8.h"
#include "dequant.h"
#include "error.h"
#include "pool.h"

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

/* ------------------------------------------------------------------ tiers */

/* Feature bits a tier needs; the running CPU's are cpu_features(). */
enum {
    NEED_AVX2 = 1, NEED_AVXVNNI = 2, NEED_AVX512VNNI = 4,
    NEED_NEON = 8, NEED_DOTPROD = 16
};

#if defined(__x86_64__)
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* The instruction sets usable here: the CPU must have them and the OS must
** save the registers they use (XCR0), or a context switch corrupts them. */
static unsigned cpu_features(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    int osxsave = c >> 27 & 1, avx = c >> 28 & 1, fma = c >> 12 & 1, f16c = c >> 29 & 1;
    if (!osxsave || !avx || !fma || !f16c || __get_cpuid_max(0, NULL) < 7)
        return 0;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6)                  /* XMM and YMM state */
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned max_sub = a, b7 = b, c7 = c, f = 0;
    if (!(b7 >> 5 & 1))                       /* AVX2 */
        return 0;
    f |= NEED_AVX2;
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        if (a >> 4 & 1)                       /* AVX-VNNI */
            f |= NEED_AVXVNNI;
    }
    int zmm_state = (xcr0 & 0xe6) == 0xe6;    /* opmask, ZMM_Hi256, Hi16_ZMM */
    int avx512 = (b7 >> 16 & 1) && (b7 >> 17 & 1) && (b7 >> 30 & 1) && (b7 >> 31 & 1)
                 && (c7 >> 11 & 1);           /* F, DQ, BW, VL, VNNI */
    if (zmm_state && avx512)
        f |= NEED_AVX512VNNI;
    return f;
}
#elif defined(__aarch64__)
static unsigned cpu_features(void)
{
    unsigned long hw = getauxval(AT_HWCAP);
    unsigned f = 0;
    if (hw & HWCAP_ASIMD)
        f |= NEED_NEON;
    if ((hw & HWCAP_ASIMD) && (hw & HWCAP_ASIMDDP))
        f |= NEED_DOTPROD;
    return f;
}
#else
static unsigned cpu_features(void) { return 0; }
#endif

static const q8_kernels *const all_tiers[] = {
#if defined(__x86_64__)
    &q8_tier_avx512vnni, &q8_tier_avxvnni, &q8_tier_avx2,
#elif defined(__aarch64__)
    &q8_tier_neondot, &q8_tier_neon,
#endif
    &q8_tier_scalar
};
static const unsigned tier_needs[] = {
#if defined(__x86_64__)
    NEED_AVX512VNNI, NEED_AVXVNNI, NEED_AVX2,
#elif defined(__aarch64__)
    NEED_DOTPROD, NEED_NEON,
#endif
    0
};
#define N_TIERS ((int)(sizeof all_tiers / sizeof all_tiers[0]))

/* Every name COPSE_ISA accepts on some architecture. */
static const char *const known_names[] = {
    "scalar", "avx2", "avxvnni", "avx512vnni", "neon", "neon-dotprod"
};

const q8_kernels *const *q8_tiers(int *n)
{
    *n = N_TIERS;
    return all_tiers;
}

int q8_tier_supported(const q8_kernels *k)
{
    unsigned have = cpu_features();
    for (int i = 0; i < N_TIERS; i++)
        if (all_tiers[i] == k)
            return (tier_needs[i] & have) == tier_needs[i];
    return 0;
}

int q8_tier_by_name(const char *name, const q8_kernels **out, copse_error *err)
{
    *out = NULL;
    for (int i = 0; i < N_TIERS; i++) {
        if (strcmp(all_tiers[i]->name, name) != 0)
            continue;
        if (!q8_tier_supported(all_tiers[i]))
            return copse_fail(err, COPSE_E_UNSUPPORTED,
                              "kernel tier '%s': this CPU (or OS) does not support it", name);
        *out = all_tiers[i];
        return COPSE_OK;
    }
    for (size_t i = 0; i < sizeof known_names / sizeof known_names[0]; i++)
        if (strcmp(known_names[i], name) == 0)
            return copse_fail(err, COPSE_E_UNSUPPORTED,
                              "kernel tier '%s' is not built for this architecture", name);
    return copse_fail(err, COPSE_E_ARG,
                      "unknown kernel tier '%s' (scalar, avx2, avxvnni, avx512vnni, neon, "
                      "neon-dotprod)", name);
}

int q8_tier_default(const q8_kernels **out, copse_error *err)
{
    const char *forced = getenv("COPSE_ISA");
    if (forced && *forced) {
        int rc = q8_tier_by_name(forced, out, err);
        if (rc && err) {
            char msg[sizeof err->msg];
            memcpy(msg, err->msg, sizeof msg);
            copse_fail(err, rc, "COPSE_ISA: %s", msg);
        }
        return rc;
    }
    int i = 0;
    while (!q8_tier_supported(all_tiers[i]))   /* scalar, last, needs nothing */
        i++;
    *out = all_tiers[i];
    return COPSE_OK;
}

/* ----------------------------------------------------------------- memory */

/*
** 64-byte aligned, size rounded up to 64. Big buffers get 2 MiB alignment
** and transparent huge pages: a GEMV streams them, and with 4 KiB pages
** the hardware prefetcher would stop at every page boundary. They are
** mapped here, not taken from malloc: once a program frees a big block,
** glibc raises its mmap threshold and serves the next ones from pages its
** heap has already faulted in as 4 KiB pages, where the advice comes too
** late (a 9 MB stacking buffer the loader freed per layer once left
** qwen05's down matrices, from layer 2 on, on 4 KiB pages).
*/
#define HUGE_PAGE ((size_t)2 << 20)

/* Bytes q8_alloc(size) maps: whole pages; 0 for a buffer from malloc. */
static size_t q8_mapped(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return size < 2 * HUGE_PAGE ? 0 : (size + page - 1) / page * page;
}

static void *q8_alloc(size_t size)
{
    size_t map = q8_mapped(size);
    if (!map)
        return aligned_alloc(64, (size + 63) & ~(size_t)63);
    uint8_t *p = mmap(NULL, map + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t lead = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
    if (lead)
        munmap(p, lead);
    munmap(p + lead + map, HUGE_PAGE - lead);
#ifdef MADV_HUGEPAGE
    madvise(p + lead, map & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);   /* advice only: failure is harmless */
#endif
    return p + lead;
}

/* Free what q8_alloc(size) returned. */
static void q8_free(void *p, size_t size)
{
    size_t map = q8_mapped(size);
    if (!map)
        free(p);
    else if (p)
        munmap(p, map);
}

/* ---------------------------------------------------------------- weights */

static int check_shape(int n_rows, int K, const char *name, copse_error *err)
{
    if (n_rows < 1 || K < Q8_BLOCK)
        return copse_fail(err, COPSE_E_ARG, "tensor '%s': bad shape %d x %d", name, n_rows, K);
    if (K % Q8_BLOCK)
        return copse_fail(err, COPSE_E_UNSUPPORTED,
                          "tensor '%s': row length %d is not a multiple of %d", name, K, Q8_BLOCK);
    return COPSE_OK;
}

/* Allocate W for tier k (pack_tensor clears each group as it packs it). */
static int weights_new(const q8_kernels *k, int bits, int n_rows, int K, const char *name,
                       q8_weights **out, copse_error *err)
{
    *out = NULL;
    int rc = check_shape(n_rows, K, name, err);
    if (rc)
        return rc;
    q8_weights *W = calloc(1, sizeof *W);
    if (!W)
        return copse_fail(err, COPSE_E_NOMEM, "tensor '%s': out of memory", name);
    W->tier = k;
    W->bits = bits;
    W->wbias = q8_int8_scaled(bits) ? k->wbias : 0;
    W->n_rows = n_rows;
    W->K = K;
    W->nb = K / Q8_BLOCK;
    W->n_groups = (n_rows + Q8_GROUP - 1) / Q8_GROUP;
    size_t qbytes = q8_qbytes(bits);
    W->scale_bytes = q8_int8_scaled(bits) ? ((size_t)W->nb * Q8_GROUP * 2 + 63) & ~(size_t)63
                               : ((size_t)W->nb * q8_factor_bytes(bits)
                                  + (size_t)(W->nb + Q4_SUPER - 1) / Q4_SUPER * Q4_GROUP_SUPBYTES + 63)
                                 & ~(size_t)63;
    W->group_bytes = W->scale_bytes + (size_t)W->nb * qbytes;
    W->data = q8_alloc((size_t)W->n_groups * W->group_bytes);
    if (!W->data) {
        free(W);
        return copse_fail(err, COPSE_E_NOMEM, "tensor '%s': out of memory for %d x %d %d-bit "
                          "weights", name, n_rows, K, q8_quant_bits(bits));
    }
    *out = W;
    return COPSE_OK;
}

/* Group g as it is before any row is stored: scales 0, quants 0 (8 bits:
** wbias), so padding rows and bytes hold those. */
static void group_clear(q8_weights *W, int g)
{
    uint8_t *p = W->data + (size_t)g * W->group_bytes;
    memset(p, 0, W->scale_bytes);
    memset(p + W->scale_bytes, W->bits == 8 ? W->wbias : 0, (size_t)W->nb * q8_qbytes(W->bits));
}

/* Store the fp16 scale of block b of row n of 8-bit or coded weights. */
static void put_scale(q8_weights *W, int n, int b, uint16_t d)
{
    ((uint16_t *)q8_group_scales(W, n / Q8_GROUP))[b * Q8_GROUP + n % Q8_GROUP] = d;
}

/* Store block b of row n: its fp16 scale and 32 values. */
static void put_block(q8_weights *W, int n, int b, uint16_t d, const int8_t *q)
{
    put_scale(W, n, b, d);
    uint8_t *dst = (uint8_t *)q8_group_quants(W, n / Q8_GROUP) + (size_t)b * Q8_GROUP_QBYTES
                   + n % Q8_GROUP * 4;
    uint32_t flip = W->wbias * 0x01010101u;
    for (int j = 0; j < Q8_BLOCK / 4; j++) {
        uint32_t v;
        memcpy(&v, q + 4 * j, 4);
        v ^= flip;
        memcpy(dst + j * Q8_GROUP * 4, &v, 4);
    }
}

/* Store the 32 quants (or codes) of block b of row n of 4-, 5-, 6-, 3- or
** 2-bit weights, four at a time: quant 4j + i is byte i of word j. */
static void put_quants4(q8_weights *W, int n, int b, const uint8_t *u)
{
    int bits = q8_quant_bits(W->bits);
    uint8_t *dst = (uint8_t *)q8_group_quants(W, n / Q8_GROUP) + (size_t)b * q8_qbytes(W->bits)
                   + n % Q8_GROUP * 4;
    uint32_t w[Q8_BLOCK / 4], high[2] = { 0, 0 };
    memcpy(w, u, sizeof w);
    if (bits == 2) {
        for (int H = 0; H < 2; H++) {
            uint32_t v = 0;
            for (int m = 0; m < 4; m++)
                v |= (w[4 * H + m] & 0x03030303u) << (2 * m);
            memcpy(dst + H * Q8_GROUP * 4, &v, 4);
        }
        return;
    }
    for (int l = 0; l < 4; l++) {
        uint32_t v = (w[2 * l] & 0x0F0F0F0Fu) | (w[2 * l + 1] & 0x0F0F0F0Fu) << 4;
        memcpy(dst + l * Q8_GROUP * 4, &v, 4);
    }
    for (int j = 0; j < Q8_BLOCK / 4 && bits == 5; j++)
        high[0] |= (w[j] >> 4 & 0x01010101u) << j;
    for (int j = 0; j < Q8_BLOCK / 4 && bits == 6; j++)
        high[j / 4] |= (w[j] >> 4 & 0x03030303u) << (j % 4 * 2);
    for (int L = 0; L < bits - 4; L++)
        memcpy(dst + Q4_GROUP_QBYTES + L * 64, &high[L], 4);
}

/* Store block b of row n of 4-, 5-, 6- or 3-bit weights: the factors of its
** scale and minimum, or of its halves' scales (the f32 ones once per
** Q4_SUPER blocks), and its 32 quants. */
static void put_block4(q8_weights *W, int n, int b, nibble_scale s, const uint8_t *u)
{
    int g = n / Q8_GROUP, r = n % Q8_GROUP;
    uint16_t *h = (uint16_t *)q4_group_halves(W, g, b);
    h[r] = s.dh;
    h[Q8_GROUP + r] = s.mh;
    float *f = (float *)q4_group_supers(W, g, b);
    f[r] = s.ds;
    f[Q8_GROUP + r] = s.ms;
    put_quants4(W, n, b, u);
}

/* Store block b of row n of 2-bit weights: its halves' factor bytes, d and
** dmin (once per Q4_SUPER blocks), and its 32 quants. */
static void put_block2(q8_weights *W, int n, int b, q2_scale s, const uint8_t *u)
{
    int g = n / Q8_GROUP, r = n % Q8_GROUP;
    uint8_t *f = (uint8_t *)q2_group_factors(W, g, b);
    f[r] = s.f[0];
    f[Q8_GROUP + r] = s.f[1];
    float *sup = (float *)q4_group_supers(W, g, b);
    sup[r] = s.d;
    sup[Q8_GROUP + r] = s.dmin;
    put_quants4(W, n, b, u);
}

void q8_weights_free(q8_weights *W)
{
    if (W) {
        q8_free(W->data, (size_t)W->n_groups * W->group_bytes);
        free(W);
    }
}

size_t q8_weights_bytes(const q8_weights *W)
{
    return (size_t)W->n_groups * W->group_bytes;
}


/* v (|v| <= 127) to the nearest integer, ties to even, inline: adding
** 1.5 * 2^23 leaves no bits for a fraction, so the rounding of that sum
** (to nearest even, the default mode) is the rounding of v. */
static float round_even(float v)
{
    const float magic = 12582912.0f;
    float t = v + magic;   /* the assignment rounds even with excess precision */
    return t - magic;
}

/* Quantize one block of 32: d = amax/127 in fp16, q = x/d rounded. */
static int quantize_block(const float *x, uint16_t *d16, int8_t *q)
{
    float amax = 0.0f;
    *d16 = 0;
    for (int k = 0; k < Q8_BLOCK; k++) {
        if (!isfinite(x[k]))
            return -1 - k;
        amax = fabsf(x[k]) > amax ? fabsf(x[k]) : amax;
    }
    *d16 = copse_f32_to_f16(amax / 127.0f);
    float d = copse_f16_to_f32(*d16);
    if (isinf(d))
        return Q8_BLOCK;
    for (int k = 0; k < Q8_BLOCK; k++) {
        float v = d != 0.0f ? x[k] / d : 0.0f;   /* a rounded-down d may give 127.0x */
        v = v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v;
        q[k] = (int8_t)round_even(v);
    }
    return 0;
}

/*
** Packing a tensor goes row by row (pack_row_fn): row n of W from the
** tensor of type at src, with the thread's scratch; 0, or nonzero for a
** value it cannot pack (what the code means is the packer's: its message
** says), with the block in *block.
*/
typedef int pack_row_fn(q8_weights *W, uint32_t type, const void *src, int n, void *scratch,
                        int *block);

typedef struct pack_bad { int row, block, what; } pack_bad;

/*
** W of bits for tier k, every row packed by fn. Loading a model is mostly
** this, so threads share the rows, whole groups of Q8_GROUP each (no two
** threads write one group). When a row cannot be packed, the first such
** row (whichever thread finds it) goes to *bad and *out stays NULL; the
** caller says why.
*/
static int pack_tensor(const q8_kernels *k, int bits, uint32_t type, const void *src, int n_rows,
                       int K, const char *name, pack_row_fn *fn, size_t scratch_bytes,
                       q8_weights **out, pack_bad *bad, copse_error *err)
{
    q8_weights *W;
    *out = NULL;
    *bad = (pack_bad){ n_rows, 0, 0 };
    int rc = weights_new(k, bits, n_rows, K, name, &W, err), nomem = 0;
    if (rc)
        return rc;
    #pragma omp parallel
    {
        void *scratch = malloc(scratch_bytes);
        #pragma omp for schedule(static, Q8_GROUP)
        for (int n = 0; n < n_rows; n++) {
            int block = 0, what;
            if (n % Q8_GROUP == 0)   /* by the thread that packs it: the first touch of its pages */
                group_clear(W, n / Q8_GROUP);
            if (!scratch) {
                #pragma omp atomic write
                nomem = 1;
            } else if ((what = fn(W, type, src, n, scratch, &block)) != 0) {
                #pragma omp critical(q8_first_bad)
                if (n < bad->row)
                    *bad = (pack_bad){ n, block, what };
            }
        }
        free(scratch);
    }
    if (nomem || bad->row < n_rows) {
        q8_weights_free(W);
        return nomem ? copse_fail(err, COPSE_E_NOMEM, "tensor '%s': out of memory", name)
                     : COPSE_OK;
    }
    *out = W;
    return COPSE_OK;
}

/* Any type dequant.h decodes, quantized to int8 blocks (quantize_block's
** codes); scratch: a row of f32. */
static int requantize_row(q8_weights *W, uint32_t type, const void *src, int n, void *scratch,
                          int *block)
{
    float *row = scratch;
    dequant(type, src, (uint64_t)n * W->K, (uint64_t)W->K, row);
    for (int b = 0; b < W->nb; b++) {
        uint16_t d;
        int8_t q[Q8_BLOCK];
        int bad = quantize_block(row + b * Q8_BLOCK, &d, q);
        if (bad) {
            *block = b;
            return bad;
        }
        put_block(W, n, b, d, q);
    }
    return 0;
}

static int from_rows(const q8_kernels *k, uint32_t type, const void *src, int n_rows, int K,
                     const char *name, q8_weights **out, copse_error *err)
{
    pack_bad bad;
    int rc = pack_tensor(k, 8, type, src, n_rows, K, name, requantize_row,
                         (size_t)K * sizeof(float), out, &bad, err);
    if (rc || bad.row == n_rows)
        return rc;
    if (bad.what == Q8_BLOCK)
        return copse_fail(err, COPSE_E_FORMAT, "tensor '%s': row %d, block %d: values too large for "
                          "an fp16 scale", name, bad.row, bad.block);
    return copse_fail(err, COPSE_E_FORMAT, "tensor '%s': row %d, column %d is not finite", name,
                      bad.row, bad.block * Q8_BLOCK - 1 - bad.what);
}

int q8_weights_from_f32(const q8_kernels *k, const float *src, int n_rows, int K,
                        const char *name, q8_weights **out, copse_error *err)
{
    return from_rows(k, GGML_TYPE_F32, src, n_rows, K, name, out, err);
}

/* The 4-, 5-, 6- and 3-bit types' blocks as they are (1 for a non-finite
** scale or minimum); scratch: a row's scales, then its quants. */
static int nibble_row(q8_weights *W, uint32_t type, const void *src, int n, void *scratch,
                      int *block)
{
    nibble_scale *sc = scratch;
    uint8_t *u = (uint8_t *)(sc + W->nb);
    if (q8_halves(W->bits))
        dequant_halves(type, src, (uint64_t)n * W->K, (uint64_t)W->K, sc, u);
    else
        dequant_nibbles(type, src, (uint64_t)n * W->K, (uint64_t)W->K, sc, u);
    for (int b = 0; b < W->nb; b++) {
        if (!isfinite(nibble_dw(sc[b])) || !isfinite(nibble_mw(sc[b]))) {
            *block = b;
            return 1;
        }
        put_block4(W, n, b, sc[b], u + b * Q8_BLOCK);
    }
    return 0;
}

/* Q2_K's blocks as they are (1 for a non-finite d or dmin); scratch: a
** row's scales, then its quants. */
static int q2_row(q8_weights *W, uint32_t type, const void *src, int n, void *scratch, int *block)
{
    (void)type;
    q2_scale *sc = scratch;
    uint8_t *u = (uint8_t *)(sc + W->nb);
    dequant_q2_k(src, (uint64_t)n * W->K, (uint64_t)W->K, sc, u);
    for (int b = 0; b < W->nb; b++) {
        if (!isfinite(sc[b].d) || !isfinite(sc[b].dmin)) {
            *block = b;
            return 1;
        }
        put_block2(W, n, b, sc[b], u + b * Q8_BLOCK);
    }
    return 0;
}

static int from_nibbles(const q8_kernels *k, uint32_t type, const void *src, int n_rows, int K,
                        const char *name, q8_weights **out, copse_error *err)
{
    pack_bad bad;
    int q2 = type == GGML_TYPE_Q2_K;
    int bits = q2 ? 2 : dequant_half_bits(type) ? dequant_half_bits(type) : dequant_nibble_bits(type);
    int rc = pack_tensor(k, bits, type, src, n_rows, K, name, q2 ? q2_row : nibble_row,
                         (size_t)K / Q8_BLOCK * (q2 ? sizeof(q2_scale) : sizeof(nibble_scale)) + (size_t)K,
                         out, &bad, err);
    if (rc || bad.row == n_rows)
        return rc;
    return copse_fail(err, COPSE_E_FORMAT, "tensor '%s': row %d has a non-finite scale or minimum",
                      name, bad.row);
}

/* Blocks that are an fp16 scale times int8 values (dequant_int8) as they
** are, each weight exactly the file's: coded weights keep the codes, the
** others the values (1 for a non-finite scale); scratch: a row's scales,
** then its codes or values. */
static int int8_row(q8_weights *W, uint32_t type, const void *src, int n, void *scratch,
                    int *block)
{
    uint16_t *d = scratch;
    uint8_t *q = (uint8_t *)(d + W->nb);
    int coded = W->bits & Q8_CODED;
    if (coded)
        dequant_codes(type, src, (uint64_t)n * W->K, (uint64_t)W->K, d, q);
    else
        dequant_int8(type, src, (uint64_t)n * W->K, (uint64_t)W->K, d, (int8_t *)q);
    for (int b = 0; b < W->nb; b++) {
        if ((d[b] & 0x7c00) == 0x7c00) {
            *block = b;
            return 1;
        }
        if (coded) {
            put_scale(W, n, b, d[b]);
            put_quants4(W, n, b, q + b * Q8_BLOCK);
        } else {
            put_block(W, n, b, d[b], (const int8_t *)q + b * Q8_BLOCK);
        }
    }
    return 0;
}

/* With codes, the coded types keep them, else they become int8 values. */
static int from_int8_blocks(const q8_kernels *k, uint32_t type, const void *src, int n_rows, int K,
                            int codes, const char *name, q8_weights **out, copse_error *err)
{
    pack_bad bad;
    int rc = pack_tensor(k, codes ? Q8_CODED | dequant_code_bits(type) : 8, type, src, n_rows, K,
                         name, int8_row,
                         (size_t)K / Q8_BLOCK * sizeof(uint16_t) + (size_t)K, out, &bad, err);
    if (!rc && *out && codes)
        dequant_code_levels(type, (*out)->levels);
    if (rc || bad.row == n_rows)
        return rc;
    return copse_fail(err, COPSE_E_FORMAT, "tensor '%s': row %d, block %d has a scale that is not "
                      "a finite fp16 value", name, bad.row, bad.block);
}

int q8_weights_from_q8_0(const q8_kernels *k, const void *blocks, int n_rows, int K,
                         const char *name, q8_weights **out, copse_error *err)
{
    return from_int8_blocks(k, GGML_TYPE_Q8_0, blocks, n_rows, K, 0, name, out, err);
}

int q8_weights_from_tensor(const q8_kernels *k, const gguf_tensor *t, int keep_bits,
                           q8_weights **out, copse_error *err)
{
    *out = NULL;
    for (uint32_t i = 2; i < t->n_dims; i++)
        if (t->ne[i] != 1)
            return copse_fail(err, COPSE_E_UNSUPPORTED, "tensor '%s': %u dimensions, "
                              "int8 weights need a matrix", t->name, t->n_dims);
    if (t->ne[0] > INT_MAX || t->ne[1] > INT_MAX)
        return copse_fail(err, COPSE_E_UNSUPPORTED, "tensor '%s': too large", t->name);
    int K = (int)t->ne[0], n_rows = (int)t->ne[1];

    if (dequant_int8_supported(t->type) && t->data)
        return from_int8_blocks(k, t->type, t->data, n_rows, K, keep_bits && dequant_code_bits(t->type),
                                t->name, out, err);
    if (keep_bits && (dequant_nibble_bits(t->type) || dequant_half_bits(t->type)
                      || t->type == GGML_TYPE_Q2_K) && t->data)
        return from_nibbles(k, t->type, t->data, n_rows, K, t->name, out, err);
    if (dequant_supported(t->type) && t->data)
        return from_rows(k, t->type, t->data, n_rows, K, t->name, out, err);
    char buf[16];
    return copse_fail(err, COPSE_E_UNSUPPORTED, "tensor '%s': type %s cannot be used as "
                      "int8 weights", t->name, ggml_type_name(t->type, buf));
}

void q8_weights_row(const q8_weights *W, int r, float *out)
{
    for (int b = 0; W->bits == 2 && b < W->nb; b++)
        for (int k = b * Q8_BLOCK; k < (b + 1) * Q8_BLOCK; k++)
            out[k] = q8_half_scale(W, r, b, k % Q8_BLOCK / 16) * (float)q4_weight(W, r, k)
                   - q8_half_min(W, r, b, k % Q8_BLOCK / 16);
    for (int b = 0; q8_halves(W->bits) && W->bits != 2 && b < W->nb; b++)
        for (int k = b * Q8_BLOCK; k < (b + 1) * Q8_BLOCK; k++)
            out[k] = q8_half_scale(W, r, b, k % Q8_BLOCK / 16) * (float)q8_half_weight(W, r, k);
    for (int b = 0; (W->bits == 4 || W->bits == 5) && b < W->nb; b++) {
        float dw = q4_weight_scale(W, r, b), mw = q4_weight_min(W, r, b);
        for (int k = b * Q8_BLOCK; k < (b + 1) * Q8_BLOCK; k++)
            out[k] = dw * (float)q4_weight(W, r, k) - mw;
    }
    for (int b = 0; q8_int8_scaled(W->bits) && b < W->nb; b++) {
        float d = q8_weight_scale(W, r, b);
        for (int k = b * Q8_BLOCK; k < (b + 1) * Q8_BLOCK; k++)
            out[k] = d * (float)(W->bits == 8 ? q8_weight(W, r, k) : q8_code_weight(W, r, k));
    }
}

/* ------------------------------------------------------------ activations */

void q8_act_free(q8_act *a)
{
    if (a) {
        q8_free(a->mem, a->cap);
        memset(a, 0, sizeof *a);
    }
}

int q8_act_shape(q8_act *a, int M, int K, copse_error *err)
{
    if (M < 1 || K < Q8_BLOCK || K % Q8_BLOCK)
        return copse_fail(err, COPSE_E_ARG, "q8 activations: bad shape %d x %d", M, K);
    int nb = K / Q8_BLOCK;
    size_t qbytes = ((size_t)M * K + 63) & ~(size_t)63;
    size_t need = qbytes + (size_t)M * nb * (2 * sizeof(float) + 2 * sizeof(int32_t));
    if (need > a->cap) {
        void *mem = q8_alloc(need);
        if (!mem)
            return copse_fail(err, COPSE_E_NOMEM, "q8 activations: out of memory for %d x %d",
                              M, K);
        q8_free(a->mem, a->cap);
        a->mem = mem;
        a->cap = need;
    }
    a->M = M;
    a->K = K;
    a->nb = nb;
    a->q = a->mem;
    a->d = (float *)((char *)a->mem + qbytes);
    a->nsum = (int32_t *)(a->d + (size_t)M * nb);
    a->sx = (float *)(a->nsum + (size_t)M * nb);
    a->hsum = (int32_t *)(a->sx + (size_t)M * nb);
    return COPSE_OK;
}

void q8_act_quantize_part(const q8_kernels *k, q8_act *a, int t, int k0, int n, const float *x)
{
    size_t b0 = (size_t)t * a->nb + (size_t)k0 / Q8_BLOCK;
    int8_t *q = a->q + (size_t)t * a->K + k0;
    k->quantize(x, n, q, a->d + b0, a->nsum + b0, a->hsum + b0);
    for (size_t b = b0; b < b0 + (size_t)n / Q8_BLOCK; b++)
        a->sx[b] = a->d[b] * (float)(a->nsum[b] / -128);
}

void q8_act_quantize_row(const q8_kernels *k, q8_act *a, int t, const float *x)
{
    q8_act_quantize_part(k, a, t, 0, a->K, x);
}

typedef struct quantize_job {
    const q8_kernels *k;
    const float *x;
    q8_act *a;
} quantize_job;

static void quantize_row(void *ctx, int t)
{
    const quantize_job *j = ctx;
    q8_act_quantize_row(j->k, j->a, t, j->x + (size_t)t * j->a->K);
}

int q8_act_quantize(const q8_kernels *k, const float *x, int M, int K, q8_act *a,
                    int n_threads, copse_error *err)
{
    if (n_threads < 1)
        return copse_fail(err, COPSE_E_ARG, "q8 activations: %d threads", n_threads);
    int rc = q8_act_shape(a, M, K, err);
    if (rc)
        return rc;
    quantize_job job = { k, x, a };
    pool_for(n_threads, M, quantize_row, &job);
    return COPSE_OK;
}

/* ---------------------------------------------------------------- matmul */

/* Work items: up to TOKEN_CHUNK tokens against a run of row groups. The
** tokens' activations stay in L2 while the weight rows stream past once. */
#define TOKEN_CHUNK 64

/* Tokens [t0, t1) of groups [g0, g1) into y, then what the caller does
** with them (q8_matmul_then). */
static void part(const q8_weights *W, const q8_act *a, int t0, int t1, int g0, int g1, float *y,
                 const q8_then *then)
{
    q8_rect(W, a, t0, t1, g0, g1, y, NULL);
    if (then) {
        int n1 = g1 * Q8_GROUP;
        then->fn(then->ctx, t0, t1, g0 * Q8_GROUP, n1 < W->n_rows ? n1 : W->n_rows);
    }
}

/* Threads take items as they finish the previous one, so a thread the OS
** preempts (a laptop runs other programs) delays only its own item, not a
** fixed half of the work. About 8 items per thread, with runs as long as
** that allows (wide tiles); runs of more than 12 groups are multiples of
** 12, which every tier's tiles divide, and all are whole units of then's. */
typedef struct matmul_job {
    const q8_weights *W;
    const q8_act *a;
    float *y;
    const q8_then *then;
    int per, n_chunks;
} matmul_job;

/* With a then, an item goes 12 of its units at a time (which every
** tier's tiles divide): then reads what it finds in L2, not a prompt's
** whole item (64 tokens of 144 groups are 590 KB), and is not called so
** often that its per-call cost shows (3 units at a time: smol prefill
** 1.02x, 2/5 pairs lower; 12: 0.99x, 4/5). */
static void matmul_item(void *ctx, int i)
{
    const matmul_job *j = ctx;
    int ng = j->W->n_groups, M = j->a->M;
    int g0 = i / j->n_chunks * j->per, t0 = i % j->n_chunks * TOKEN_CHUNK;
    int g1 = g0 + j->per < ng ? g0 + j->per : ng, step = j->then ? 12 * j->then->unit / Q8_GROUP : g1 - g0;
    for (int g = g0; g < g1; g += step)
        part(j->W, j->a, t0, t0 + TOKEN_CHUNK < M ? t0 + TOKEN_CHUNK : M, g, g + step < g1 ? g + step : g1,
             j->y, j->then);
}

/*
** A decode step's few tokens: a product of about 1 to 100 us, too short
** for the split above, whose items of a group or two restart the panel
** path's prefetching and pair its groups badly. Instead each thread
** walks a lane, one contiguous run of panels, from its front, taking
** half of what is left at a time, so its prefetching streams on from one
** claim into the next; a thread whose lane is empty, or that comes late,
** takes halves from the back of the others'. A claim is at most
** CLAIM_BYTES of weights: a preempted thread holds up only that much.
** Lanes go in units of then's runs where the caller has a then, one
** token too: then writes its output's scales a few to a cache line, and
** one token's items, handed to the threads in turn, had both threads
** writing the same lines at every item (qwen05 B=1 step 1.05-1.12x base;
** in lanes they meet only where a claim ends, 0.97x).
*/
#define LANE_TOKENS 32
#define LANE_UNIT 3                     /* groups: every tier's tiles divide it */
#define MAX_LANES 64
#define CLAIM_BYTES ((size_t)1 << 20)

typedef struct lane {
    _Alignas(64) _Atomic uint64_t left;   /* units [front, back): front << 32 | back */
} lane;

typedef struct lanes_job {
    const q8_weights *W;
    const q8_act *a;
    float *y;
    const q8_then *then;
    int unit, n_lanes;                    /* groups per unit, lanes */
    uint32_t most;                        /* units per claim */
    lane *lanes;
} lanes_job;

/* Take units [*u0, *u1) from the front or back of l; 0 when it is empty. */
static int claim(lane *l, int back, uint32_t most, int *u0, int *u1)
{
    uint64_t s = atomic_load(&l->left);
    for (;;) {
        uint32_t f = (uint32_t)(s >> 32), b = (uint32_t)s, n = (b - f + 1) / 2;
        if (f >= b)
            return 0;
        n = n < most ? n : most;
        uint64_t next = back ? (uint64_t)f << 32 | (b - n) : (uint64_t)(f + n) << 32 | b;
        if (atomic_compare_exchange_weak(&l->left, &s, next)) {
            *u0 = (int)(back ? b - n : f);
            *u1 = *u0 + (int)n;
            return 1;
        }
    }
}

/* Items [0, n) walk lane i, then steal; items [n, 2n) only steal, so a
** thread that joins the job late (asleep, preempted) still helps. */
static void lane_item(void *ctx, int i)
{
    const lanes_job *j = ctx;
    int ng = j->W->n_groups, n = j->n_lanes;
    for (int k = 0; k < n; k++)
        for (int u0, u1; claim(&j->lanes[(i + k) % n], k > 0 || i >= n, j->most, &u0, &u1);)
            part(j->W, j->a, 0, j->a->M, u0 * j->unit, u1 * j->unit < ng ? u1 * j->unit : ng,
                 j->y, j->then);
}

static void run_lanes(const q8_weights *W, const q8_act *a, float *y, int n_threads,
                      const q8_then *then)
{
    lane lanes[MAX_LANES];
    int unit = then ? then->unit / Q8_GROUP : LANE_UNIT, units = (W->n_groups + unit - 1) / unit;
    int n = n_threads < MAX_LANES ? n_threads : MAX_LANES;
    n = n < units ? n : units;
    size_t most = CLAIM_BYTES / ((size_t)unit * W->group_bytes);
    for (int i = 0; i < n; i++)
        atomic_init(&lanes[i].left, (uint64_t)((long)units * i / n) << 32
                                    | (uint64_t)((long)units * (i + 1) / n));
    lanes_job job = { W, a, y, then, unit, n, most > 1 ? (uint32_t)most : 1, lanes };
    pool_for(n_threads, 2 * n, lane_item, &job);
}

static void run(const q8_weights *W, const q8_act *a, float *y, int n_threads, const q8_then *then)
{
    if (a->M <= LANE_TOKENS && (a->M > 1 || then)) {
        run_lanes(W, a, y, n_threads, then);
        return;
    }
    int ng = W->n_groups, n_chunks = (a->M + TOKEN_CHUNK - 1) / TOKEN_CHUNK;
    long per = (long)ng * n_chunks / (8L * n_threads), unit = then ? then->unit / Q8_GROUP : 1;
    per = per < 1 ? 1 : per > ng ? ng : per > 12 ? per / 12 * 12 : per;
    per = (per + unit - 1) / unit * unit;
    matmul_job job = { W, a, y, then, (int)per, n_chunks };
    pool_for(n_threads, (int)((ng + per - 1) / per) * n_chunks, matmul_item, &job);
}

int q8_matmul_then(const q8_weights *W, const q8_act *a, float *y, int n_threads,
                   const q8_then *then, copse_error *err)
{
    if (a->K != W->K || a->M < 1 || n_threads < 1)
        return copse_fail(err, COPSE_E_ARG, "q8_matmul: %d x %d activations against %d x %d "
                          "weights on %d threads", a->M, a->K, W->n_rows, W->K, n_threads);
    if (then && (then->unit < Q8_GROUP || then->unit % Q8_GROUP || !then->fn))
        return copse_fail(err, COPSE_E_ARG, "q8_matmul: runs of %d rows (a positive multiple "
                          "of %d, with a function)", then->unit, Q8_GROUP);
    run(W, a, y, n_threads, then);
    return COPSE_OK;
}

int q8_matmul_act(const q8_weights *W, const q8_act *a, float *y, int n_threads,
                  copse_error *err)
{
    return q8_matmul_then(W, a, y, n_threads, NULL, err);
}

/* q8_matmul's activations, one buffer per calling thread, kept for the
** thread's life: a fresh one per call would fault its pages in each time. */
static _Thread_local q8_act scratch;

int q8_matmul(const q8_weights *W, const float *x, int M, float *y, int n_threads,
              copse_error *err)
{
    int rc = q8_act_quantize(W->tier, x, M, W->K, &scratch, n_threads, err);
    return rc ? rc : q8_matmul_act(W, &scratch, y, n_threads, err);
}
