/*
** The attention kernels against the scalar specification (attention.c)
** and against e^x in double precision (attn_exact.h).
*/
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "attn_exact.h"
#include "f16.h"

void attnx_fill(float *x, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((*rng >> 40) / (double)(1 << 24) * 4 - 2);
    }
}

/* One fold of queries [i0, i1) of nq reading positions [from[i],
** n_pos[i]) by the kernels k, from the given start states; keys and
** values as floats, or halves if f16 (kt16, v16), n_blocks blocks one
** after the other; scores under a soft cap when cap > 0. */
static void run_fold(const attn_kernels *k, int i0, int i1, int nq, int hd, int n_blocks, const float *q,
                     const int *from, const int *n_pos, const float *kt, const float *v, const uint16_t *kt16, const uint16_t *v16,
                     int f16, float cap, float *m, float *l, float *o)
{
    static float s[ATTN_TILE * ATTN_SPAN * KV_BLOCK];
    const float *qs[ATTN_CHUNK];
    int state[ATTN_CHUNK];
    for (int i = i0; i < i1; i++) {
        qs[i - i0] = q + (size_t)i * hd;
        state[i - i0] = nq - 1 - i;   /* states in another order than the queries */
    }
    attn_fold f = { .nq = i1 - i0, .hd = hd, .n_blocks = n_blocks, .f16 = f16, .q = qs, .from = from + i0, .n_pos = n_pos + i0,
                    .first = i0, .total = nq, .state = state, .scale = 0.125f, .softcap = cap, .m = m, .l = l, .o = o, .s = s };
    for (int b = 0; b < n_blocks; b++) {
        size_t at = (size_t)b * hd * KV_BLOCK;
        f.k[b] = f16 ? (const void *)(kt16 + at) : (const void *)(kt + at);
        f.v[b] = f16 ? (const void *)(v16 + at) : (const void *)(v + at);
    }
    k->fold(&f);
}

/* -------------------------------------------------- against the scalar */

static void check_folds(const attn_kernels *k, int hd_step, int f16, exact_stats *st)
{
    static const int hds[] = { 8, 16, 24, 48, 64, 128, 144 };
    enum { KV_N = ATTN_SPAN * 144 * KV_BLOCK };
    static float q[11 * 144], kt[KV_N], v[KV_N];
    static uint16_t kt16[KV_N], v16[KV_N];
    static float m[2][11], l[2][11], o[2][11 * 144];
    uint64_t rng = 7;
    for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++) {
        int hd = hds[h];
        if (hd % hd_step)
            continue;
        for (int nq = 1; nq <= 11; nq++)
            for (int n_blocks = 1; n_blocks <= ATTN_SPAN; n_blocks++)
                for (int last = 1; last <= KV_BLOCK; last += 5) {
                    int n_pos[11], from[11], reach = 0;
                    float cap = last % 2 ? 0.6f : 0;   /* a soft cap (Gemma 2) on every other shape */
                    for (int i = 0; i < nq; i++) {
                        n_pos[i] = (n_blocks - 1) * KV_BLOCK + (i % 3 == 0 ? last : 1 + (last * 7 + i) % KV_BLOCK);
                        reach = n_pos[i] > reach ? n_pos[i] : reach;
                        /* a sliding window's start in the first block for some */
                        int room = n_pos[i] < KV_BLOCK ? n_pos[i] : KV_BLOCK;
                        from[i] = i % 4 == 1 ? (last + 3 * i) % room : 0;
                    }
                    attnx_fill(q, (size_t)nq * hd, &rng);
                    attnx_fill(kt, KV_N, &rng);
                    attnx_fill(v, KV_N, &rng);
                    if (reach % KV_BLOCK) {   /* the first position nobody reads, in the last block */
                        kt[(size_t)(reach / KV_BLOCK) * hd * KV_BLOCK + (hd - 1) * KV_BLOCK + reach % KV_BLOCK] = NAN;
                        v[(size_t)reach * hd] = NAN;
                    }
                    for (int i = 0; i < KV_N; i++)
                        kt16[i] = copse_f32_to_f16(kt[i]), v16[i] = copse_f32_to_f16(v[i]);
                    for (int c = 0; c < 2; c++)
                        for (int i = 0; i < nq; i++) {
                            m[c][i] = i % 2 ? -INFINITY : 1.5f, l[c][i] = i % 2 ? 0 : 2.0f;
                            for (int d = 0; d < hd; d++)
                                o[c][i * hd + d] = i % 2 ? 0 : 0.25f;
                        }
                    run_fold(&attn_scalar, 0, nq, nq, hd, n_blocks, q, from, n_pos, kt, v, kt16, v16, f16, cap, m[0], l[0],
                             o[0]);
                    run_fold(k, 0, nq, nq, hd, n_blocks, q, from, n_pos, kt, v, kt16, v16, f16, cap, m[1], l[1], o[1]);
                    for (int i = 0; i < nq; i++) {
                        exact_check(st, k->name, fabsf(m[1][i] - m[0][i]) <= 1e-5f * (1 + fabsf(m[0][i])),
                                    "hd %d nq %d blocks %d f16 %d: m %g vs %g", hd, nq, n_blocks, f16, m[1][i],
                                    m[0][i]);
                        exact_check(st, k->name, fabsf(l[1][i] - l[0][i]) <= 1e-5f * l[0][i],
                                    "hd %d nq %d blocks %d f16 %d: l %g vs %g", hd, nq, n_blocks, f16, l[1][i],
                                    l[0][i]);
                    }
                    int bad = -1;
                    for (int i = 0; i < nq * hd && bad < 0; i++)
                        if (!(fabsf(o[1][i] - o[0][i]) <= 1e-5f * (1 + fabsf(o[0][i]))))
                            bad = i;
                    exact_check(st, k->name, bad < 0, "hd %d nq %d blocks %d f16 %d: o[%d] %g vs %g", hd, nq,
                                n_blocks, f16, bad, bad < 0 ? 0 : o[1][bad], bad < 0 ? 0 : o[0][bad]);
                }
    }
}

/* Narrowing rounds like the scalar code: every half, the midpoints
** between neighbours (ties), overflow and random values. */
static void check_narrow(const attn_kernels *k, exact_stats *st)
{
    static float a[65536], x[3 * 65536];
    static uint16_t h1[3 * 65536], h2[3 * 65536];
    uint64_t rng = 5;
    for (int i = 0; i < 65536; i++)
        a[i] = copse_f16_to_f32((uint16_t)i);
    for (int i = 0; i < 65536; i++) {
        x[i] = a[i];
        x[65536 + i] = i < 65535 ? (a[i] + a[i + 1]) / 2 : 1e6f;
    }
    attnx_fill(x + 2 * 65536, 65536, &rng);
    for (int i = 2 * 65536; i < 3 * 65536; i++)
        x[i] *= (float)(i % 7) * 3e4f;
    attn_scalar.narrow(h1, x, 3 * 65536);
    k->narrow(h2, x, 3 * 65536 - 3);   /* and a tail */
    memcpy(h2 + 3 * 65536 - 3, h1 + 3 * 65536 - 3, 3 * sizeof *h2);
    int bad = -1;
    for (int i = 0; i < 3 * 65536 && bad < 0; i++)
        if (!(h1[i] == h2[i] || (isnan(x[i]) && (h1[i] & 0x7c00) == 0x7c00 && (h2[i] & 0x7c00) == 0x7c00
                                 && (h1[i] & 0x3ff) && (h2[i] & 0x3ff))))
            bad = i;
    exact_check(st, k->name, bad < 0, "narrow %.9g: half %04x vs %04x", bad < 0 ? 0 : x[bad],
                bad < 0 ? 0 : h1[bad], bad < 0 ? 0 : h2[bad]);
    /* the tail alone, each length below a vector */
    for (int n = 1; n < 16; n++) {
        k->narrow(h2, x + 65536, (size_t)n);
        exact_check(st, k->name, !memcmp(h2, h1 + 65536, (size_t)n * sizeof *h2), "narrow of %d values", n);
    }
}

void attnx_check_kernels(const attn_kernels *k, int hd_step, exact_stats *st)
{
    check_folds(k, hd_step, 0, st);
    check_folds(k, hd_step, 1, st);
    check_narrow(k, st);
}

/* ------------------------------------------------------- split anywhere */

void attnx_check_split(const attn_kernels *k, int f16, exact_stats *st)
{
    enum { NQ = 19, HD = 32, KV_N = ATTN_SPAN * HD * KV_BLOCK };
    static float q[NQ * HD], kt[KV_N], v[KV_N];
    static uint16_t kt16[KV_N], v16[KV_N];
    static float m[2][NQ], l[2][NQ], o[2][NQ * HD];
    uint64_t rng = 11;
    attnx_fill(q, NQ * HD, &rng);
    attnx_fill(kt, KV_N, &rng);
    attnx_fill(v, KV_N, &rng);
    for (int i = 0; i < KV_N; i++)
        kt16[i] = copse_f32_to_f16(kt[i]), v16[i] = copse_f32_to_f16(v[i]);
    for (int nq = 1; nq <= NQ; nq++)
        for (int n_blocks = 1; n_blocks <= ATTN_SPAN; n_blocks++) {
            int n_pos[NQ], from[NQ];
            float cap = n_blocks % 3 == 0 ? 0.8f : 0;
            for (int i = 0; i < nq; i++) {
                n_pos[i] = (n_blocks - 1) * KV_BLOCK + 1 + (i * 5 + n_blocks) % KV_BLOCK;
                from[i] = i % 3 == 2 ? (i + n_blocks) % (n_pos[i] < KV_BLOCK ? n_pos[i] : KV_BLOCK) : 0;
            }
            for (int cut = 0; cut <= nq; cut++) {
                for (int x = 0; x < 2; x++)
                    for (int i = 0; i < nq; i++) {
                        m[x][i] = i % 2 ? -INFINITY : 0.5f, l[x][i] = i % 2 ? 0 : 1.5f;
                        for (int d = 0; d < HD; d++)
                            o[x][i * HD + d] = i % 2 ? 0 : 0.125f;
                    }
                run_fold(k, 0, nq, nq, HD, n_blocks, q, from, n_pos, kt, v, kt16, v16, f16, cap, m[0], l[0], o[0]);
                if (cut > 0)
                    run_fold(k, 0, cut, nq, HD, n_blocks, q, from, n_pos, kt, v, kt16, v16, f16, cap, m[1], l[1], o[1]);
                if (cut < nq)
                    run_fold(k, cut, nq, nq, HD, n_blocks, q, from, n_pos, kt, v, kt16, v16, f16, cap, m[1], l[1], o[1]);
                exact_check(st, k->name,
                            !memcmp(m[0], m[1], nq * sizeof(float)) && !memcmp(l[0], l[1], nq * sizeof(float))
                                && !memcmp(o[0], o[1], (size_t)nq * HD * sizeof(float)),
                            "f16 %d: %d queries, %d blocks, split at %d: not the whole fold's bits", f16, nq,
                            n_blocks, cut);
            }
        }
}

/* ------------------------------------------------------------ e^x */

/*
** The fold: query i has q = (8 x_i, 0, ...) and the keys of its two
** positions are (0, 1, ...) and (1, 0, ...), so with scale 1/8 its scaled
** scores are 0 and x_i, both exact; the values are 0 and 1. From an
** empty state the weights are 1 and e^(x_i): o_i = e^(x_i) in every
** dimension and l_i = 1 + e^(x_i). (check_folds' random scores never
** reach the far tail, and its tolerance, 1e-5, would not see a weight a
** few ulp off.)
*/
enum { W_HD = 16, W_NQ = 40 };

/* Bound on a weight's error in ulp (the SIMD exponentials are within
** 1.27 of e^x over every float in [-86, 0]; expf within 1). */
#define MAX_ULP 1.5

/* x_i for fold number n: a grid of W_NQ * N_FOLDS values from 0 to -100,
** then the far tail. */
#define N_FOLDS 50
static float x_of(int n, int i)
{
    static const float tail[] = { -86.0f, -86.5f, -87.0f, -87.5f, -88.0f, -103.0f, -150.0f, -1e4f, -1e30f };
    int j = n * W_NQ + i;
    return j < (int)(sizeof tail / sizeof tail[0]) ? tail[j] : -100.0f * (float)j / (W_NQ * N_FOLDS);
}

void attnx_check_weights(const attn_kernels *k, exact_stats *st)
{
    float q[W_NQ][W_HD], kt[W_HD * KV_BLOCK] = { 0 }, v[W_HD * KV_BLOCK] = { 0 };
    float s[ATTN_TILE * ATTN_SPAN * KV_BLOCK], m[W_NQ], l[W_NQ], o[W_NQ * W_HD];
    const float *qs[W_NQ];
    int n_pos[W_NQ], from[W_NQ] = { 0 }, state[W_NQ];
    kt[0 * KV_BLOCK + 1] = 1;   /* key 0 = (0, 1, ...), key 1 = (1, 0, ...): transposed, d by position */
    kt[1 * KV_BLOCK + 0] = 1;
    for (int d = 0; d < W_HD; d++)
        v[1 * W_HD + d] = 1;
    for (int n = 0; n < N_FOLDS; n++) {
        memset(q, 0, sizeof q);
        for (int i = 0; i < W_NQ; i++) {
            q[i][0] = 8 * x_of(n, i);
            qs[i] = q[i];
            n_pos[i] = 2;
            state[i] = i;
            m[i] = -INFINITY;
            l[i] = 0;
        }
        memset(o, 0, sizeof o);
        attn_fold f = { .nq = W_NQ, .hd = W_HD, .n_blocks = 1, .f16 = 0, .q = qs, .from = from, .n_pos = n_pos, .state = state,
                        .k = { kt }, .v = { v }, .scale = 0.125f, .m = m, .l = l, .o = o, .s = s };
        k->fold(&f);
        for (int i = 0; i < W_NQ; i++) {
            float x = x_of(n, i);
            double e = exp((double)x);
            exact_check(st, k->name, m[i] == 0, "x %g: m %g", x, m[i]);
            for (int d = 0; d < W_HD; d++) {
                float w = o[i * W_HD + d];
                if (x >= -86.0f)
                    exact_check(st, k->name, fabs(w - e) <= MAX_ULP * (nextafterf((float)e, INFINITY) - (float)e),
                                "e^%.9g is %.9g, not %.9g", x, w, e);
                else   /* past -86 the SIMD kernels give up to 4e-38, no longer e^x */
                    exact_check(st, k->name, w >= 0 && w <= 1e-37f, "e^%g is %g", x, w);
            }
            exact_check(st, k->name, fabsf(l[i] - (float)(1 + e)) <= 2e-7f * (float)(1 + e), "x %g: l %.9g", x,
                        l[i]);
        }
    }
}
