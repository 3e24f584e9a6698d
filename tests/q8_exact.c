/*
** The kernel tiers against a computation written from the definitions in
** q8.h, reading the unpacked source data (not the packed layout).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "q8_exact.h"
#include "dequant.h"

/* ------------------------------------------------------------------- data */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15u);   /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static float unit(void) { return (float)rnd() / 2147483648.0f - 1.0f; }   /* [-1, 1) */

enum { W_RANDOM, W_EXTREME, W_MIN, W_ZERO, W_NPAT };
static const char *const wpat_name[] = { "random", "extremes", "all lowest", "zero" };

/* Weights as GGUF blocks of type Q8_0, one of dequant_nibbles's 4- and
** 5-bit types, Q6_K, Q3_K or Q2_K, and the same values unpacked: q8 as
** int8 q with fp16 scales d, Q6_K and Q3_K as q = u - 32 or u - 4 with the
** scales dw of each block's first 16 values and mw of its last 16
** (dequant_halves), Q2_K as quants q (0..3) with dw * q - mw for each
** half (dequant_q2_k), the others as quants q (0..15 or 0..31) with
** dw * q - mw, from dequant_nibbles. */
typedef struct src_w {
    int N, K;
    uint32_t type;
    int8_t *q;          /* [N][K] */
    uint16_t *d;        /* [N][K/32] fp16 (Q8_0) */
    float *dw, *mw;     /* [N][K/32] (4-bit; Q6_K, Q3_K: the halves' scales; Q2_K: [N][K/32][2]) */
    uint8_t *blocks;    /* as in a file */
} src_w;

static void put_f16(uint8_t *p, float v)
{
    uint16_t h = copse_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* Sums per block: Q6_K's, Q3_K's and Q2_K's two halves, else one. */
static int type_parts(uint32_t type) { return dequant_half_bits(type) || type == GGML_TYPE_Q2_K ? 2 : 1; }

/* What Q6_K's, Q3_K's and Q2_K's quants are stored above their values. */
static int type_offset(uint32_t type)
{
    return dequant_half_bits(type) == 6 ? 32 : type == GGML_TYPE_Q3_K ? 4 : 0;
}

/* Where a block of the type keeps its fp16 d (the first of d, dmin). */
static int type_d_at(uint32_t type)
{
    return type == GGML_TYPE_Q6_K ? 208 : type == GGML_TYPE_Q3_K ? 108 : type == GGML_TYPE_Q2_K ? 80 : 0;
}

/* Random 2- to 6-bit blocks: quants by pattern (extremes 0 or the
** largest, lowest 0), scales and minimums of either sign. */
static void src_w_make4(src_w *s, int pat)
{
    size_t n = (size_t)s->N * s->K, bytes = (size_t)ggml_type_nbytes(s->type, n);
    uint64_t per = ggml_type_block(s->type), bsize = ggml_type_nbytes(s->type, per);
    s->blocks = malloc(bytes);
    for (size_t i = 0; i < bytes; i++)
        s->blocks[i] = pat == W_RANDOM ? (uint8_t)rnd() : pat == W_EXTREME ? (rnd() & 1 ? 0xFF : 0)
                                                                         : 0;
    for (size_t b = 0; b < n / per; b++) {
        uint8_t *blk = s->blocks + b * bsize;
        int k_type = s->type == GGML_TYPE_Q4_K || s->type == GGML_TYPE_Q5_K;
        put_f16(blk + type_d_at(s->type), unit() * 0.05f);
        if (k_type || s->type == GGML_TYPE_Q4_1 || s->type == GGML_TYPE_Q5_1)
            put_f16(blk + 2, unit() * 0.5f);
        if (s->type == GGML_TYPE_Q2_K)
            put_f16(blk + 82, unit() * 0.05f);
        for (int j = 4; k_type && j < 16; j++)
            blk[j] = (uint8_t)rnd();
    }
    int nb = s->K / Q8_BLOCK;
    if (dequant_code_bits(s->type)) {   /* coded: int8 levels under fp16 scales */
        s->d = malloc((size_t)s->N * nb * 2);
        dequant_int8(s->type, s->blocks, 0, n, s->d, s->q);
        return;
    }
    uint8_t *u = malloc(n);
    s->dw = malloc((size_t)s->N * nb * 2 * sizeof *s->dw);
    s->mw = malloc((size_t)s->N * nb * 2 * sizeof *s->mw);
    if (s->type == GGML_TYPE_Q2_K) {
        q2_scale *q2 = malloc((size_t)s->N * nb * sizeof *q2);
        dequant_q2_k(s->blocks, 0, n, q2, u);
        for (size_t i = 0; i < (size_t)s->N * nb * 2; i++) {
            s->dw[i] = q2_dw(q2[i / 2], (int)(i % 2));
            s->mw[i] = q2_mw(q2[i / 2], (int)(i % 2));
        }
        for (size_t i = 0; i < n; i++)
            s->q[i] = (int8_t)u[i];
        free(q2);
        free(u);
        return;
    }
    nibble_scale *sc = malloc((size_t)s->N * nb * sizeof *sc);
    int halves = type_parts(s->type) == 2;
    if (halves)
        dequant_halves(s->type, s->blocks, 0, n, sc, u);
    else
        dequant_nibbles(s->type, s->blocks, 0, n, sc, u);
    for (size_t i = 0; i < (size_t)s->N * nb; i++) {
        s->dw[i] = nibble_dw(sc[i]);
        s->mw[i] = nibble_mw(sc[i]);
    }
    free(sc);
    for (size_t i = 0; i < n; i++)
        s->q[i] = (int8_t)(u[i] - halves * type_offset(s->type));
    free(u);
}

static void src_w_make(src_w *s, int N, int K, int pat, uint32_t type)
{
    int nb = K / Q8_BLOCK;
    *s = (src_w){ .N = N, .K = K, .type = type };
    s->q = malloc((size_t)N * K);
    if (type != GGML_TYPE_Q8_0) {
        src_w_make4(s, pat);
        return;
    }
    s->d = malloc((size_t)N * nb * 2);
    s->blocks = malloc((size_t)N * nb * 34);
    for (size_t i = 0; i < (size_t)N * K; i++)
        s->q[i] = pat == W_RANDOM ? (int8_t)rnd() : pat == W_EXTREME ? (rnd() & 1 ? 127 : -128)
                : pat == W_MIN ? -128 : 0;
    for (size_t i = 0; i < (size_t)N * nb; i++) {
        s->d[i] = copse_f32_to_f16(unit() * 0.05f);   /* either sign, like a file may hold */
        uint8_t *blk = s->blocks + i * 34;
        blk[0] = (uint8_t)s->d[i];
        blk[1] = (uint8_t)(s->d[i] >> 8);
        memcpy(blk + 2, s->q + i * Q8_BLOCK, Q8_BLOCK);
    }
}

/* The packed weights of s for tier k, as the loader makes them. */
static int src_w_pack(const q8_kernels *k, const src_w *s, q8_weights **W, copse_error *err)
{
    gguf_tensor t = { .name = "test", .type = s->type, .n_dims = 2, .ne = { s->K, s->N, 1, 1 },
                      .data = s->blocks };
    return q8_weights_from_tensor(k, &t, 1, W, err);
}

static void src_w_free(src_w *s)
{
    free(s->q);
    free(s->d);
    free(s->dw);
    free(s->mw);
    free(s->blocks);
}

enum { X_RANDOM, X_INTS, X_ZERO, X_SPECIAL, X_NPAT };
static const char *const xpat_name[] = { "random", "+-127 ints", "zero", "special" };

/* Activations. X_INTS blocks contain a +-127, so d = 1 and q = x exactly,
** every other block all extremes; X_SPECIAL has ties, signed zeros,
** subnormals, infinities and NaNs. */
static void make_x(float *x, int M, int K, int pat)
{
    for (int i = 0; i < M * K; i += Q8_BLOCK) {
        float *blk = x + i;
        float scale = powf(10.0f, 6.0f * (unit() + 1.0f) / 2.0f - 3.0f);
        for (int k = 0; k < Q8_BLOCK; k++) {
            switch (pat) {
            case X_RANDOM: blk[k] = unit() * scale; break;
            case X_INTS:   blk[k] = (i / Q8_BLOCK) % 2 ? (rnd() & 1 ? 127.0f : -127.0f)
                                                       : (float)((int)(rnd() % 255) - 127); break;
            case X_ZERO:   blk[k] = 0.0f; break;
            default:       blk[k] = (float)((int)(rnd() % 255) - 127) + 0.5f; break;
            }
        }
        if (pat == X_INTS)
            blk[rnd() % Q8_BLOCK] = rnd() & 1 ? 127.0f : -127.0f;
        if (pat == X_SPECIAL) {
            static const float odd[] = { -0.0f, 1e-40f, -1e-45f, 126.5f, -125.5f, 3.4e38f };
            blk[rnd() % Q8_BLOCK] = odd[(i / Q8_BLOCK) % 6];
            if ((i / Q8_BLOCK) % 7 == 3)
                blk[rnd() % Q8_BLOCK] = NAN;
            if ((i / Q8_BLOCK) % 7 == 5)
                blk[rnd() % Q8_BLOCK] = -INFINITY;
        }
    }
}

/* --------------------------------------------------------- the reference */

static int parts(const src_w *w) { return type_parts(w->type); }

/* The sum of part p of block b of row n against xq (n >= N: padding, whose
** quants are 0). */
static int32_t ref_sum(const src_w *w, int n, int b, int p, const int8_t *xq)
{
    int32_t s = 0, len = Q8_BLOCK / parts(w), pad = 0;
    if (n >= w->N && dequant_code_bits(w->type)) {   /* code 0, whose level may not be 0 */
        int8_t levels[16];
        dequant_code_levels(w->type, levels);
        pad = levels[0];
    }
    for (int k = b * Q8_BLOCK + p * len; k < b * Q8_BLOCK + (p + 1) * len; k++)
        s += (n < w->N ? w->q[(size_t)n * w->K + k] : parts(w) == 2 ? -type_offset(w->type) : pad) * xq[k];
    return s;
}

static float ref_out(const src_w *w, int n, const q8_act *a, int t)
{
    float acc = 0.0f;
    for (int b = 0; b < a->nb; b++) {
        size_t i = (size_t)n * a->nb + b;
        const int8_t *xq = a->q + (size_t)t * a->K;
        float dx = a->d[(size_t)t * a->nb + b];
        if (w->type == GGML_TYPE_Q2_K) {   /* each half as a 4-bit block */
            for (int p = 0; p < 2; p++) {
                int32_t xsum = 0;
                for (int k = b * Q8_BLOCK + 16 * p; k < b * Q8_BLOCK + 16 * (p + 1); k++)
                    xsum += xq[k];
                acc = fmaf((float)ref_sum(w, n, b, p, xq), w->dw[2 * i + p] * dx, acc);
                acc = fmaf(-w->mw[2 * i + p], dx * (float)xsum, acc);
            }
            continue;
        }
        if (parts(w) == 2) {
            acc = fmaf((float)ref_sum(w, n, b, 0, xq), w->dw[i] * dx, acc);
            acc = fmaf((float)ref_sum(w, n, b, 1, xq), w->mw[i] * dx, acc);
            continue;
        }
        int32_t s = ref_sum(w, n, b, 0, xq);
        if (w->d) {
            acc = fmaf((float)s, copse_f16_to_f32(w->d[i]) * dx, acc);
            continue;
        }
        int32_t xsum = 0;
        for (int k = b * Q8_BLOCK; k < (b + 1) * Q8_BLOCK; k++)
            xsum += xq[k];
        acc = fmaf((float)s, w->dw[i] * dx, acc);
        acc = fmaf(-w->mw[i], (float)xsum * dx, acc);
    }
    return acc;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ------------------------------------------------------------- the checks */

static void check_quantize(const q8_kernels *k, int K, int pat, exact_stats *st)
{
    int nb = K / Q8_BLOCK;
    float *x = malloc((size_t)K * sizeof *x), d[2][64];
    int8_t *q[2] = { malloc((size_t)K), malloc((size_t)K) };
    int32_t ns[2][64], hs[2][64];
    make_x(x, 1, K, pat);
    q8_quantize_ref(x, K, q[0], d[0], ns[0], hs[0]);
    k->quantize(x, K, q[1], d[1], ns[1], hs[1]);
    for (int b = 0; b < nb; b++) {
        int32_t sum = 0, half = 0;
        for (int i = b * Q8_BLOCK; i < (b + 1) * Q8_BLOCK; i++) {
            exact_check(st, "q8", q[0][i] == q[1][i] && q[0][i] != -128, "%s quantize K=%d %s: q[%d] %d vs "
                  "scalar %d", k->name, K, xpat_name[pat], i, q[1][i], q[0][i]);
            sum += q[0][i];
            half += i < b * Q8_BLOCK + Q8_BLOCK / 2 ? q[0][i] : 0;
        }
        exact_check(st, "q8", same_bits(d[0][b], d[1][b]) && ns[0][b] == ns[1][b] && ns[0][b] == -128 * sum
              && hs[0][b] == hs[1][b] && hs[0][b] == half,
              "%s quantize K=%d %s block %d: d %a nsum %d hsum %d vs scalar %a %d %d (sums %d %d)", k->name,
              K, xpat_name[pat], b, d[1][b], ns[1][b], hs[1][b], d[0][b], ns[0][b], hs[0][b], sum, half);
        if (pat == X_INTS) /* the exact case must really be exact */
            for (int i = b * Q8_BLOCK; i < (b + 1) * Q8_BLOCK; i++)
                exact_check(st, "q8", d[0][b] == 1.0f && q[0][i] == (int8_t)x[i],
                      "quantize of integers %g -> %d (d %g)", x[i], q[0][i], d[0][b]);
    }
    free(x);
    free(q[0]);
    free(q[1]);
}

/* Known answers: ties go to even, a NaN to -127 (and is not the maximum),
** a zero block has scale 0. */
static void check_quantize_known(const q8_kernels *k, exact_stats *st)
{
    float x[3 * Q8_BLOCK] = { 127, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f, NAN, 126.5f };
    static const int8_t want[] = { 127, 2, -4, 0, 0, 2, -127, 126 };
    x[2 * Q8_BLOCK] = -254;      /* d = 2: 3 -> 1.5 -> 2, 5 -> 2.5 -> 2 */
    x[2 * Q8_BLOCK + 1] = 3;
    x[2 * Q8_BLOCK + 2] = 5;
    int8_t q[3 * Q8_BLOCK];
    float d[3];
    int32_t ns[3], hs[3];
    k->quantize(x, 3 * Q8_BLOCK, q, d, ns, hs);
    int ok = d[0] == 1.0f && ns[0] == -128 * 126 && d[1] == 0.0f && ns[1] == 0
          && d[2] == 2.0f && q[64] == -127 && q[65] == 2 && q[66] == 2 && ns[2] == -128 * -123
          && hs[0] == 126 && hs[1] == 0 && hs[2] == -123;
    for (int i = 0; i < Q8_BLOCK; i++)
        ok &= q[i] == (i < 8 ? want[i] : 0) && q[Q8_BLOCK + i] == 0;
    exact_check(st, "q8", ok, "%s: quantize known answers: d %g %g %g, nsum %d %d %d, q %d %d %d %d %d %d %d "
          "%d", k->name, d[0], d[1], d[2], ns[0], ns[1], ns[2], q[0], q[1], q[2], q[3], q[4], q[5],
          q[6], q[7]);
}

/* One shape and pattern: raw sums and results of tier k's kernel over the
** whole rectangle (every tile shape and tail) against the reference, and
** q8_matmul_act on 1 to 3 threads (the work split) against the kernel. */
static void check_gemm(const q8_kernels *k, int M, int N, int K, int wp, int xp, uint32_t type,
                       exact_stats *st)
{
    src_w w;
    char buf[16];
    const char *tname = ggml_type_name(type, buf);
    src_w_make(&w, N, K, wp, type);
    float *x = malloc((size_t)M * K * sizeof *x);
    make_x(x, M, K, xp);
    q8_weights *W = NULL;
    q8_act a = {0};
    copse_error err;
    int rc = src_w_pack(k, &w, &W, &err);
    if (!rc)
        rc = q8_act_quantize(k, x, M, K, &a, 1, &err);
    exact_check(st, "q8", rc == COPSE_OK, "%s %s: setup failed: %s", k->name, tname, rc ? err.msg : "");
    if (rc)
        goto out;
    int np = K / Q8_BLOCK * parts(&w), ng = W->n_groups, bad = 0;   /* raw: every part of a block */
    size_t nraw = (size_t)M * ng * np * Q8_GROUP;
    int32_t *raw = malloc(nraw * sizeof *raw);
    float *y[4];
    for (int i = 0; i < 4; i++)
        y[i] = malloc((size_t)M * N * sizeof *y[i]);
    q8_rect(W, &a, 0, M, 0, ng, NULL, raw);
    for (int t = 0; t < M; t++)
        for (int g = 0; g < ng; g++)
            for (int p = 0; p < np; p++)
                for (int r = 0; r < Q8_GROUP; r++) {
                    int n = g * Q8_GROUP + r;
                    int32_t want = ref_sum(&w, n, p / parts(&w), p % parts(&w), a.q + (size_t)t * K);
                    int32_t got = raw[(((size_t)t * ng + g) * np + p) * Q8_GROUP + r];
                    if (got != want && bad++ == 0)
                        exact_check(st, "q8", 0, "%s %s %dx%dx%d w %s x %s: int32 sum t%d row %d part %d: %d, "
                              "want %d", k->name, tname, M, N, K, wpat_name[wp], xpat_name[xp], t, n, p,
                              got, want);
                }
    exact_check(st, "q8", bad == 0, "%s %s %dx%dx%d: %d wrong int32 block sums", k->name, tname, M, N, K, bad);

    q8_rect(W, &a, 0, M, 0, ng, y[0], NULL);
    bad = 0;
    for (int t = 0; t < M; t++)
        for (int n = 0; n < N; n++) {
            float want = ref_out(&w, n, &a, t), got = y[0][(size_t)t * N + n];
            if (!same_bits(got, want) && bad++ == 0)
                exact_check(st, "q8", 0, "%s %s %dx%dx%d w %s x %s: y[%d][%d] = %.9g, want %.9g", k->name, tname, M, N,
                      K, wpat_name[wp], xpat_name[xp], t, n, got, want);
        }
    exact_check(st, "q8", bad == 0, "%s %s %dx%dx%d: %d results differ from the reference", k->name, tname, M, N, K, bad);
    for (int th = 1; th <= 3; th++) {
        rc = q8_matmul_act(W, &a, y[th], th, &err);
        exact_check(st, "q8", rc == COPSE_OK && memcmp(y[0], y[th], (size_t)M * N * sizeof *y[0]) == 0,
              "%s %s %dx%dx%d: q8_matmul_act on %d threads differs", k->name, tname, M, N, K, th);
    }
    free(raw);
    for (int i = 0; i < 4; i++)
        free(y[i]);
out:
    q8_act_free(&a);
    q8_weights_free(W);
    free(x);
    src_w_free(&w);
}

void q8x_check_tier(const q8_kernels *k, exact_stats *st)
{
    check_quantize_known(k, st);
    for (int K = Q8_BLOCK; K <= 20 * Q8_BLOCK; K += Q8_BLOCK)
        for (int p = 0; p < X_NPAT; p++)
            check_quantize(k, K, p, st);

    /* Each shape with 8-bit weights, 4-bit ones and 5-bit ones (in turn
    ** with a scale and minimum, _1, or coded, Q4_0, IQ4_NL and Q5_0; the K
    ** types' rows are multiples of 256, below, Q4_K, Q5_K, Q6_K and Q3_K). */
    static const uint32_t four[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_IQ4_NL, GGML_TYPE_Q4_1 };
    static const uint32_t five[] = { GGML_TYPE_Q5_1, GGML_TYPE_Q5_0 };
    int turn = 0;
#define GEMM(M, N, K, wp, xp)                                                  \
    do {                                                                     \
        check_gemm(k, M, N, K, wp, xp, GGML_TYPE_Q8_0, st);                  \
        check_gemm(k, M, N, K, wp, xp, four[turn % 4], st);                  \
        check_gemm(k, M, N, K, wp, xp, five[turn++ % 2], st);                \
    } while (0)
#define GEMM_K(M, N, K, wp, xp)                                                \
    do {                                                                     \
        check_gemm(k, M, N, K, wp, xp, GGML_TYPE_Q4_K, st);                  \
        check_gemm(k, M, N, K, wp, xp, GGML_TYPE_Q5_K, st);                  \
        check_gemm(k, M, N, K, wp, xp, GGML_TYPE_Q6_K, st);                  \
        check_gemm(k, M, N, K, wp, xp, GGML_TYPE_Q3_K, st);                  \
        check_gemm(k, M, N, K, wp, xp, GGML_TYPE_Q2_K, st);                  \
    } while (0)

    /* every tail of tokens (tiles of up to 4, the panel path's steps up
    ** to its 32 tokens, chunks of 64) and of rows (groups of 16, tiles and
    ** panels of up to 4 groups) */
    static const int Ks[] = { 32, 64, 96, 160, 416 };
    static const int Ns[] = { 1, 7, 16, 17, 33, 50, 64, 65, 100 };
    static const int Ms[] = { 1, 2, 3, 4, 5, 6, 7, 9, 13, 16, 31, 32, 33 };
    for (size_t i = 0; i < sizeof Ks / sizeof *Ks; i++)
        for (size_t j = 0; j < sizeof Ns / sizeof *Ns; j++)
            for (size_t m = 0; m < sizeof Ms / sizeof *Ms; m++)
                GEMM(Ms[m], Ns[j], Ks[i], W_RANDOM, X_RANDOM);
    /* the panel path's stretches of 8 blocks and its prefetch 16 blocks
    ** ahead: K of 17 and 25 blocks */
    static const int Mp[] = { 2, 5, 16, 32 };
    for (size_t m = 0; m < sizeof Mp / sizeof *Mp; m++) {
        GEMM(Mp[m], 50, 17 * Q8_BLOCK, W_RANDOM, X_RANDOM);
        GEMM(Mp[m], 65, 25 * Q8_BLOCK, W_RANDOM, X_RANDOM);
        GEMM_K(Mp[m], 40, 768, W_RANDOM, X_RANDOM);
    }
    /* a decode step's lanes of 3 groups (the last one short) on 1 to 3
    ** threads, and claims capped at 1 MiB of weights (5 units at K of 128
    ** blocks; 4-bit weights take 9) */
    static const int Ml[] = { 2, 15, 16, 17, 31, 32, 33 };
    for (size_t m = 0; m < sizeof Ml / sizeof *Ml; m++)
        GEMM(Ml[m], 16 * 35 - 3, 2 * Q8_BLOCK, W_RANDOM, X_RANDOM);
    GEMM(16, 16 * 67 - 9, 128 * Q8_BLOCK, W_RANDOM, X_RANDOM);
    GEMM_K(16, 16 * 67 - 9, 128 * Q8_BLOCK, W_RANDOM, X_RANDOM);
    /* 4-, 5- and 6-bit weights: one token over 40 blocks (their scales
    ** read from the packing), and panels of up to 32 tokens at a time */
    static const int M4[] = { 1, 6, 67 };
    for (size_t m = 0; m < sizeof M4 / sizeof *M4; m++)
        GEMM_K(M4[m], 40, 40 * Q8_BLOCK, W_RANDOM, X_RANDOM);
    /* the work split: token chunks, runs of groups (12 at a time here) */
    GEMM(70, 40, 64, W_RANDOM, X_RANDOM);
    GEMM(131, 3, 32, W_RANDOM, X_RANDOM);
    GEMM(2, 1600 - 5, 32, W_RANDOM, X_RANDOM);
    for (int wp = 0; wp < W_NPAT; wp++)
        for (int xp = 0; xp < X_NPAT; xp++) {
            GEMM(1, 65, 416, wp, xp);
            GEMM(5, 17, 32, wp, xp);
            GEMM(9, 100, 96, wp, xp);
            for (int M = 1; M <= 9; M += 4)
                GEMM_K(M, 33, 256, wp, xp);
        }
#undef GEMM_K
#undef GEMM
}

static int same_packing(const q8_weights *a, const q8_weights *b)
{
    return a && b && a->n_rows == b->n_rows && a->K == b->K && a->bits == b->bits
        && memcmp(a->data, b->data, q8_weights_bytes(a)) == 0;
}

/* Whether W's rows are want[n_rows][K] exactly (as == compares them). */
static int same_values(const q8_weights *W, const float *want)
{
    float *row = malloc((size_t)W->K * sizeof *row);
    int same = row != NULL;
    for (int n = 0; n < W->n_rows && same; n++) {
        q8_weights_row(W, n, row);
        for (int j = 0; j < W->K; j++)
            same &= row[j] == want[(size_t)n * W->K + j];
    }
    free(row);
    return same;
}

/* ------------------------------------------------------------ f32 bound */

/*
** 4-, 5- and 6-bit weights hold the file's values exactly, so only the activations
** are rounded: |y' - y| <= sum_k |w| dx/2, plus f32 rounding of the two
** terms per block, each at most 2^-22 of its size (dx (|dw isum| + |mw
** xsum|)), summed over blocks: 2^-18 covers that with room.
*/
/* How far a weight of value v may move when its block's scale is
** rounded to fp16 (dequant.h): IQ4_XS's, by up to 2^-11 relatively, or
** 2^-25 absolutely for a subnormal scale, times a level of at most 127. */
static double scale_rounding(uint32_t type, double v)
{
    return type == GGML_TYPE_IQ4_XS ? fabs(v) * ldexp(1, -11) + 127 * ldexp(1, -25) : 0;
}

static void check_f32_bound4(const q8_kernels *k, uint32_t type, exact_stats *st)
{
    const int M = 7, N = 37, K = 512;
    src_w w;
    src_w_make(&w, N, K, W_RANDOM, type);
    float *x = malloc((size_t)M * K * sizeof *x), *y = malloc((size_t)M * N * sizeof *y);
    float *row = malloc((size_t)K * sizeof *row);
    make_x(x, M, K, X_RANDOM);
    q8_weights *W = NULL;
    copse_error err;
    int rc = src_w_pack(k, &w, &W, &err);
    if (!rc)
        rc = q8_matmul(W, x, M, y, 2, &err);
    exact_check(st, "q8", rc == COPSE_OK, "%s: type %u: %s", k->name, type, rc ? err.msg : "");
    double worst = 0;
    for (int n = 0; n < N && !rc; n++) {
        dequant(type, w.blocks, (uint64_t)n * K, K, row);
        for (int t = 0; t < M; t++) {
            double exact = 0, bound = 0, mag = 0;
            for (int i = 0; i < K; i++) {
                const float *xb = x + (size_t)t * K + i - i % Q8_BLOCK;
                float amax = 0;
                for (int j = 0; j < Q8_BLOCK; j++)
                    amax = fmaxf(amax, fabsf(xb[j]));
                double dx = amax / 127.0f, xi = x[(size_t)t * K + i];
                size_t bi = (size_t)n * (K / Q8_BLOCK) + i / Q8_BLOCK;
                exact += xi * row[i];
                bound += fabs(row[i]) * dx / 2 + fabs(xi) * scale_rounding(type, row[i]);
                size_t hi = 2 * bi + i % Q8_BLOCK / 16;   /* Q2_K's half */
                mag += dx * 127 * (w.d ? fabs(copse_f16_to_f32(w.d[bi])) * 127
                                   : type == GGML_TYPE_Q2_K ? fabs(w.dw[hi]) * 3 + fabs(w.mw[hi])
                                   : parts(&w) == 2 ? fabs(i % Q8_BLOCK < 16 ? w.dw[bi] : w.mw[bi])
                                                      * type_offset(type)
                                   : fabs(w.dw[bi]) * ((1 << dequant_nibble_bits(type)) - 1) + fabs(w.mw[bi]));
            }
            bound += mag * ldexp(1, -18);
            double e = fabs(y[(size_t)t * N + n] - exact);
            worst = fmax(worst, e / bound);
            exact_check(st, "q8", e <= bound, "%s type %u: y[%d][%d] = %.9g, f32 %.9g, error %.3g > "
                        "bound %.3g", k->name, type, t, n, y[(size_t)t * N + n], exact, e, bound);
        }
    }
    exact_check(st, "q8", rc || worst > 0.01, "%s type %u: errors at most %.3g of the bound: bound "
                "too loose", k->name, type, worst);
    q8_weights_free(W);
    src_w_free(&w);
    free(x);
    free(y);
    free(row);
}


/*
** With w' and x' the dequantized values, |w - w'| <= dw/2 and
** |x - x'| <= dx/2 per element (round to nearest; a clamp at 127 only
** happens within fp16 rounding of 127 and costs less). So
**   |y' - y| <= sum_k |x| dw/2 + |w| dx/2 + dw dx/4  +  2^-18 sum_k |x w'|
** the last term covering f32 rounding of the scales and the block sums.
*/
void q8x_check_f32_bound(const q8_kernels *k, exact_stats *st)
{
    const int M = 7, N = 37, K = 256;
    float *w = malloc((size_t)N * K * sizeof *w), *x = malloc((size_t)M * K * sizeof *x);
    float *y = malloc((size_t)M * N * sizeof *y), *row = malloc((size_t)K * sizeof *row);
    for (int i = 0; i < N * K; i++)
        w[i] = unit() * 0.05f * (1 + i % 3);
    make_x(x, M, K, X_RANDOM);
    q8_weights *W = NULL;
    copse_error err;
    int rc = q8_weights_from_f32(k, w, N, K, "w", &W, &err);
    if (!rc)
        rc = q8_matmul(W, x, M, y, 2, &err);
    exact_check(st, "q8", rc == COPSE_OK, "%s: f32 weights: %s", k->name, rc ? err.msg : "");
    double worst = 0;
    for (int n = 0; n < N && !rc; n++) {
        q8_weights_row(W, n, row);
        for (int i = 0; i < K; i++) {
            float dw = q8_weight_scale(W, n, i / Q8_BLOCK);
            exact_check(st, "q8", fabsf(row[i] - w[(size_t)n * K + i]) <= dw / 2,
                  "%s: w[%d][%d] = %g dequantizes to %g (step %g)", k->name, n, i,
                  w[(size_t)n * K + i], row[i], dw);
        }
        for (int t = 0; t < M; t++) {
            double exact = 0, bound = 0, mag = 0;
            for (int i = 0; i < K; i++) {
                double xi = x[(size_t)t * K + i], wi = w[(size_t)n * K + i];
                float amax = 0;   /* the activation scale, as the kernels compute it */
                for (int b = i - i % Q8_BLOCK; b < i - i % Q8_BLOCK + Q8_BLOCK; b++)
                    amax = fmaxf(amax, fabsf(x[(size_t)t * K + b]));
                double dx = amax / 127.0f, dw = q8_weight_scale(W, n, i / Q8_BLOCK);
                exact += xi * wi;
                bound += fabs(xi) * dw / 2 + fabs(wi) * dx / 2 + dw * dx / 4;
                mag += fabs(xi * row[i]);
            }
            bound += mag * ldexp(1, -18);
            double e = fabs(y[(size_t)t * N + n] - exact);
            worst = fmax(worst, e / bound);
            exact_check(st, "q8", e <= bound, "%s: y[%d][%d] = %.9g, f32 %.9g, error %.3g > bound %.3g",
                  k->name, t, n, y[(size_t)t * N + n], exact, e, bound);
        }
    }
    /* a bound far above the errors would pass anything: it must be met tightly somewhere */
    exact_check(st, "q8", rc || worst > 0.01, "%s: errors at most %.3g of the bound: bound too loose",
          k->name, worst);
    check_f32_bound4(k, GGML_TYPE_Q4_K, st);
    check_f32_bound4(k, GGML_TYPE_Q4_1, st);
    check_f32_bound4(k, GGML_TYPE_Q5_K, st);
    check_f32_bound4(k, GGML_TYPE_Q5_0, st);
    check_f32_bound4(k, GGML_TYPE_IQ4_NL, st);
    check_f32_bound4(k, GGML_TYPE_IQ4_XS, st);
    check_f32_bound4(k, GGML_TYPE_Q6_K, st);
    check_f32_bound4(k, GGML_TYPE_Q3_K, st);
    check_f32_bound4(k, GGML_TYPE_Q2_K, st);
    q8_weights_free(W);
    free(w);
    free(x);
    free(y);
    free(row);
}

/* ----------------------------------------------------------------- errors */

void q8x_check_errors(exact_stats *st)
{
    const q8_kernels *k = &q8_tier_scalar, *got;
    copse_error err;
    q8_weights dummy, *W = &dummy;   /* must come back NULL on failure */
    float x[64] = {0};
    uint8_t blocks[2 * 34] = {0};

    exact_check(st, "q8", q8_weights_from_f32(k, x, 1, 48, "t", &W, &err) == COPSE_E_UNSUPPORTED && !W,
          "K = 48 accepted");
    exact_check(st, "q8", q8_weights_from_f32(k, x, 0, 32, "t", &W, &err) == COPSE_E_ARG, "0 rows accepted");
    x[5] = NAN;
    exact_check(st, "q8", q8_weights_from_f32(k, x, 2, 32, "t", &W, &err) == COPSE_E_FORMAT
          && strstr(err.msg, "row 0, column 5"), "NaN weight: %s", err.msg);
    x[5] = 1e30f;
    exact_check(st, "q8", q8_weights_from_f32(k, x, 2, 32, "t", &W, &err) == COPSE_E_FORMAT
          && strstr(err.msg, "row 0, block 0: values too large"), "weight beyond an fp16 scale: %s", err.msg);
    /* rows are quantized by several threads: the first bad row is named */
    float *many = calloc(100 * 64, sizeof *many);
    if (many) {
        many[70 * 64 + 3] = INFINITY;
        many[40 * 64 + 33] = NAN;
        exact_check(st, "q8", q8_weights_from_f32(k, many, 100, 64, "t", &W, &err) == COPSE_E_FORMAT
              && strstr(err.msg, "row 40, column 33 is not finite"), "NaN in rows 40 and 70: %s", err.msg);
        free(many);
    }
    blocks[34] = 0x00;
    blocks[35] = 0x7c;   /* +inf scale in row 1 */
    exact_check(st, "q8", q8_weights_from_q8_0(k, blocks, 2, 32, "t", &W, &err) == COPSE_E_FORMAT
          && strstr(err.msg, "row 1, block 0"), "inf scale: %s", err.msg);

    x[5] = 1.0f;
    q8_act a = {0};
    int rc = q8_weights_from_f32(k, x, 1, 64, "t", &W, &err);
    exact_check(st, "q8", rc == COPSE_OK, "1 x 64 weights: %s", err.msg);
    exact_check(st, "q8", q8_act_quantize(k, x, 1, 32, &a, 1, &err) == COPSE_OK, "act: %s", err.msg);
    exact_check(st, "q8", !rc && q8_matmul_act(W, &a, x, 1, &err) == COPSE_E_ARG, "K mismatch accepted");
    exact_check(st, "q8", q8_act_quantize(k, x, 0, 32, &a, 1, &err) == COPSE_E_ARG, "M = 0 accepted");
    q8_act_free(&a);
    q8_weights_free(W);

    exact_check(st, "q8", q8_tier_by_name("sse9", &got, &err) == COPSE_E_ARG && !got, "unknown tier");
#if defined(__x86_64__)
    const char *foreign = "neon";
#else
    const char *foreign = "avx2";
#endif
    exact_check(st, "q8", q8_tier_by_name(foreign, &got, &err) == COPSE_E_UNSUPPORTED, "foreign tier");
    exact_check(st, "q8", q8_tier_by_name("scalar", &got, &err) == COPSE_OK && got == k, "scalar tier");
}

/* ---------------------------------------------------------------- tensors */


/* 2- to 6-bit tensors: each weight is the value dequant gives (IQ4_XS:
** within its scale's rounding, and the value of its fp16 scale times its
** level exactly); without keep_bits, the coded types pack as int8 with the
** same values and the others as their decoded f32 values would; a
** non-finite scale or minimum is refused with the row, and so is an
** IQ4_XS scale past fp16's range. */
static void check_tensors4(const q8_kernels *k, exact_stats *st)
{
    static const uint32_t types[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q4_K,
                                      GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q5_K,
                                      GGML_TYPE_IQ4_NL, GGML_TYPE_IQ4_XS, GGML_TYPE_Q6_K,
                                      GGML_TYPE_Q3_K, GGML_TYPE_Q2_K };
    enum { N = 21, K = 512 };
    float *row = malloc(K * sizeof *row), *got = malloc(K * sizeof *got);
    float *all = malloc((size_t)N * K * sizeof *all);
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        for (int wp = 0; wp < W_NPAT; wp++) {
            src_w w;
            src_w_make(&w, N, K, wp, types[i]);
            q8_weights *W = NULL, *W8 = NULL, *want = NULL;
            copse_error err;
            gguf_tensor t = { .name = "blk.0.ffn_up.weight", .type = types[i], .n_dims = 2,
                              .ne = { K, N, 1, 1 }, .data = w.blocks };
            int rc = q8_weights_from_tensor(k, &t, 1, &W, &err), coded = dequant_code_bits(types[i]);
            int bits = coded ? coded : dequant_half_bits(types[i]) ? dequant_half_bits(types[i])
                     : types[i] == GGML_TYPE_Q2_K ? 2 : dequant_nibble_bits(types[i]);
            /* 2 groups: per block 16 rows of nibbles (5, 6 bits: and their fifth and sixth bits) and
               fp16 factor pairs (2 bits: 2-bit quants and factor bytes), per 8 blocks f32 pairs;
               coded: fp16 scales */
            exact_check(st, "q8", rc == COPSE_OK && W->bits == (bits | (coded ? Q8_CODED : 0))
                        && q8_weights_bytes(W) == (size_t)2 * (K / 32 * 16 * (bits == 2 ? 8 + 2
                                                                 : 16 + 4 * (bits > 4) * (bits - 4) + 2 + 2 * !coded)
                                                       + !coded * K / 256 * 16 * 8),
                        "%s: %d-bit tensor type %u: %s", k->name, bits, types[i], rc ? err.msg : "");
            int bad = 0, rounded = 0;
            for (int n = 0; n < N && !rc; n++) {
                dequant(types[i], w.blocks, (uint64_t)n * K, K, row);
                q8_weights_row(W, n, got);
                memcpy(all + (size_t)n * K, got, K * sizeof *got);
                for (int j = 0; j < K; j++) {   /* equal: Q4_0's d (8 - 8) is -0 where d < 0 */
                    bad += !(fabs(row[j] - got[j]) <= scale_rounding(types[i], row[j]));
                    rounded += row[j] != got[j];
                    if (coded)
                        bad += got[j] != copse_f16_to_f32(w.d[n * K / 32 + j / 32]) * w.q[n * K + j];
                }
            }
            /* the bound is not so loose that it hides a scale left unrounded or rounded twice */
            exact_check(st, "q8", (types[i] == GGML_TYPE_IQ4_XS) == (rounded > 0) || wp != W_RANDOM,
                        "%s: type %u: %d values rounded", k->name, types[i], rounded);
            exact_check(st, "q8", bad == 0, "%s: type %u, weights %s: %d values differ from dequant",
                        k->name, types[i], wpat_name[wp], bad);
            rc = q8_weights_from_tensor(k, &t, 0, &W8, &err);
            if (!rc && !coded)
                rc = q8_weights_from_f32(k, all, N, K, "f", &want, &err);
            exact_check(st, "q8", rc == COPSE_OK && W8->bits == 8
                        && (want ? same_packing(W8, want) : same_values(W8, all)),
                        "%s: type %u without keep_bits packs differently (%s)", k->name, types[i],
                        rc ? err.msg : "");
            q8_weights_free(W);
            q8_weights_free(W8);
            q8_weights_free(want);
            if (wp == W_RANDOM) {
                size_t row_bytes = (size_t)ggml_type_nbytes(types[i], K);
                int d_at = types[i] == GGML_TYPE_Q4_1 || types[i] == GGML_TYPE_Q5_1 ? 2
                         : types[i] == GGML_TYPE_Q2_K ? 82 : type_d_at(types[i]);   /* the minimum's, if any */
                w.blocks[17 * row_bytes + d_at + 1] = 0x7c;   /* inf */
                exact_check(st, "q8", q8_weights_from_tensor(k, &t, 1, &W, &err) == COPSE_E_FORMAT
                            && !W && strstr(err.msg, coded ? "row 17, block 0 has a scale that is not a finite"
                                                           : "row 17 has a non-finite scale or minimum"),
                            "%s: type %u with an infinite scale: %s", k->name, types[i], err.msg);
                if (types[i] == GGML_TYPE_IQ4_XS) {   /* 65504 * (0 - 32): finite, not in fp16 */
                    memcpy(w.blocks + 17 * row_bytes, (const uint8_t[]){ 0xff, 0x7b, 0, 0, 0 }, 5);
                    exact_check(st, "q8", q8_weights_from_tensor(k, &t, 1, &W, &err) == COPSE_E_FORMAT
                                && !W && strstr(err.msg, "row 17, block 0 has a scale that is not"),
                                "%s: IQ4_XS scale past fp16: %s", k->name, err.msg);
                }
            }
            src_w_free(&w);
        }
    free(row);
    free(got);
    free(all);
}

/* Q5_0 tensors as int8 (--weights int8) and IQ4_NL ones pack as int8
** blocks with their own scales: each weight is the value dequant gives,
** random blocks and extremes; an infinite scale is refused with its row
** and block. */
static void check_tensors_int8(const q8_kernels *k, exact_stats *st)
{
    static const uint32_t types[] = { GGML_TYPE_Q5_0, GGML_TYPE_IQ4_NL };
    enum { N = 21, K = 96 };
    float *all = malloc((size_t)N * K * sizeof *all);
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        size_t bsize = (size_t)ggml_type_nbytes(types[i], 32), bytes = (size_t)N * K / 32 * bsize;
        uint8_t *blocks = malloc(bytes);
        for (size_t j = 0; j < bytes; j++)
            blocks[j] = j < bytes / 2 ? (uint8_t)rnd() : (rnd() & 1 ? 0xFF : 0);   /* then extremes */
        for (size_t b = 0; b < bytes / bsize; b++)
            put_f16(blocks + b * bsize, unit() * 0.05f);
        dequant(types[i], blocks, 0, (uint64_t)N * K, all);
        gguf_tensor t = { .name = "blk.0.ffn_up.weight", .type = types[i], .n_dims = 2,
                          .ne = { K, N, 1, 1 }, .data = blocks };
        q8_weights *W = NULL;
        copse_error err;
        int rc = q8_weights_from_tensor(k, &t, 0, &W, &err);
        exact_check(st, "q8", rc == COPSE_OK && W->bits == 8 && same_values(W, all),
                    "%s: type %u does not keep its values (%s)", k->name, types[i], rc ? err.msg : "");
        q8_weights_free(W);
        blocks[(5 * K / 32 + 2) * bsize + 1] = 0x7c;   /* row 5, block 2: inf */
        exact_check(st, "q8", q8_weights_from_tensor(k, &t, 0, &W, &err) == COPSE_E_FORMAT && !W
                    && strstr(err.msg, "row 5, block 2 has a scale that is not a finite fp16 value"),
                    "%s: type %u with an infinite scale: %s", k->name, types[i], err.msg);
        free(blocks);
    }
    free(all);
}

void q8x_check_tensors(const q8_kernels *k, exact_stats *st)
{
    enum { N = 19, K = 96 };
    float f[N * K];
    uint16_t h[N * K], bf[N * K];
    for (int i = 0; i < N * K; i++) {   /* 7 significant bits: exact in both halves */
        f[i] = (float)((int)(rnd() % 255) - 127) / 16.0f;
        h[i] = copse_f32_to_f16(f[i]);
        bf[i] = copse_f32_to_bf16(f[i]);
    }
    src_w w;
    src_w_make(&w, N, K, W_RANDOM, GGML_TYPE_Q8_0);
    gguf_tensor t = { .name = "blk.0.ffn_up.weight", .n_dims = 2, .ne = { K, N, 1, 1 } };
    const struct { uint32_t type; const void *data; } cases[] = {
        { GGML_TYPE_F32, f }, { GGML_TYPE_F16, h }, { GGML_TYPE_BF16, bf },
        { GGML_TYPE_Q8_0, w.blocks },
    };
    q8_weights *want = NULL, *got;
    copse_error err;
    exact_check(st, "q8", q8_weights_from_f32(k, f, N, K, "f", &want, &err) == COPSE_OK, "from_f32: %s", err.msg);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        t.type = cases[i].type;
        t.data = cases[i].data;
        int rc = q8_weights_from_tensor(k, &t, 1, &got, &err);
        q8_weights *ref = want;
        if (t.type == GGML_TYPE_Q8_0)
            q8_weights_from_q8_0(k, w.blocks, N, K, "q", &ref, &err);
        exact_check(st, "q8", rc == COPSE_OK && same_packing(got, ref) && got->tier == k,
              "%s: tensor of type %u packs differently (%s)", k->name, t.type, rc ? err.msg : "");
        if (ref != want)
            q8_weights_free(ref);
        q8_weights_free(got);
    }
    t.type = GGML_TYPE_Q8_1;   /* an activation format: no file's weights */
    exact_check(st, "q8", q8_weights_from_tensor(k, &t, 1, &got, &err) == COPSE_E_UNSUPPORTED && !got
          && strstr(err.msg, "blk.0.ffn_up.weight") && strstr(err.msg, "Q8_1"),
          "Q8_1 tensor: %s", err.msg);
    t.type = GGML_TYPE_F32;
    t.n_dims = 3;
    t.ne[2] = 2;
    exact_check(st, "q8", q8_weights_from_tensor(k, &t, 1, &got, &err) == COPSE_E_UNSUPPORTED && !got,
          "3-D tensor accepted");
    q8_weights_free(want);
    src_w_free(&w);
    check_tensors4(k, st);
    check_tensors_int8(k, st);
}
