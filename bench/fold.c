/*
** bench-fold: the attention kernels' fold (attention.h) alone, on one
** thread, with warm f16 keys and values: the tasks of a decode step of
** the smol (9 heads, 3 KV heads) and qwen05 (14, 2) shapes, head size 64.
** What the walk around it costs (plan, prefetch, the pool) is
** bench-attention's.
**
** Shapes (queries x positions): a shared prompt's run of 8 blocks for 16
** branches' GQA groups (48 or 56 queries, the chunk one fold takes), a
** branch's own blocks (one group, 65 positions), and short runs of a
** freshly forked branch (1 to 2 blocks). Reported per kernel set this CPU
** runs: microseconds per fold (best of several runs) and the products'
** multiply-adds per nanosecond (both products, 2 hd per query and
** position read).
**
** Usage: bench-fold [NQ BLOCKS LAST]: one shape of NQ queries reading
** BLOCKS blocks, LAST positions of the last.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attention.h"
#include "bench.h"
#include "f16.h"

enum { HD = 64, MAX_Q = 64 };

typedef struct shape { const char *name; int nq, blocks, last; } shape;

static const shape shapes[] = {
    { "smol prompt run", 48, 8, 16 },
    { "qwen05 prompt run", 56, 8, 16 },
    { "smol own", 3, 5, 1 },
    { "qwen05 own", 7, 5, 1 },
    { "smol fork, 1 block", 3, 1, 5 },
    { "smol fork, 2 blocks", 3, 2, 5 },
    { "qwen05 fork, 1 block", 7, 1, 5 },
};

static uint16_t kt[ATTN_SPAN][HD * KV_BLOCK], v[ATTN_SPAN][HD * KV_BLOCK];
static float q[MAX_Q][HD], o[MAX_Q * HD], m[MAX_Q], l[MAX_Q], s[ATTN_TILE * ATTN_SPAN * KV_BLOCK];
static const float *qs[MAX_Q];
static int from[MAX_Q], n_pos[MAX_Q], state[MAX_Q];

static uint64_t rng = 0x9e3779b97f4a7c15u;

static float rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24) - 0.5);
}

/* Best microseconds of one fold of the shape by kernels k. */
static double time_fold(const attn_kernels *k, const shape *sh)
{
    attn_fold f = { .nq = sh->nq, .hd = HD, .n_blocks = sh->blocks, .f16 = 1, .q = qs, .from = from, .n_pos = n_pos,
                    .state = state, .scale = 0.125f, .m = m, .l = l, .o = o, .s = s };
    for (int b = 0; b < sh->blocks; b++)
        f.k[b] = kt[b], f.v[b] = v[b];
    for (int i = 0; i < sh->nq; i++)
        n_pos[i] = (sh->blocks - 1) * KV_BLOCK + sh->last;
    int iters = (int)(2e6 / ((double)sh->nq * n_pos[0] * HD)) + 1;
    double best = 1e30;
    for (int rep = 0; rep < 7; rep++) {
        for (int i = 0; i < sh->nq; i++)
            m[i] = -INFINITY, l[i] = 0;
        memset(o, 0, sizeof o);
        double t0 = bench_now();
        for (int it = 0; it < iters; it++)
            k->fold(&f);
        double t = (bench_now() - t0) / iters;
        best = t < best ? t : best;
    }
    return best * 1e6;
}

static void row(const attn_kernels *const *ks, int n, const shape *sh)
{
    printf("| %s | %d | %d |", sh->name, sh->nq, (sh->blocks - 1) * KV_BLOCK + sh->last);
    for (int i = 0; i < n; i++) {
        double us = time_fold(ks[i], sh), macs = 2.0 * sh->nq * ((sh->blocks - 1) * KV_BLOCK + sh->last) * HD;
        printf(" %.3f | %.1f |", us, macs / us / 1e3);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    const attn_kernels *ks[3];
    int n = 0;
    ks[n++] = &attn_scalar;
#if defined(__x86_64__)
    const attn_kernels *def = attn_kernels_default();
    if (def == &attn_avx2 || def == &attn_avx512)
        ks[n++] = &attn_avx2;
    if (def == &attn_avx512)
        ks[n++] = &attn_avx512;
#elif defined(__aarch64__)
    ks[n++] = &attn_neon;
#endif
    for (int b = 0; b < ATTN_SPAN; b++)
        for (int i = 0; i < HD * KV_BLOCK; i++)
            kt[b][i] = copse_f32_to_f16(rnd()), v[b][i] = copse_f32_to_f16(rnd());
    for (int i = 0; i < MAX_Q; i++) {
        for (int d = 0; d < HD; d++)
            q[i][d] = rnd();
        qs[i] = q[i];
        state[i] = i;
    }
    shape one = { "given", 0, 0, 0 };
    if (argc == 4) {
        one.nq = atoi(argv[1]), one.blocks = atoi(argv[2]), one.last = atoi(argv[3]);
        if (one.nq < 1 || one.nq > MAX_Q || one.blocks < 1 || one.blocks > ATTN_SPAN || one.last < 1
            || one.last > KV_BLOCK) {
            fprintf(stderr, "bench-fold: NQ 1..%d, BLOCKS 1..%d, LAST 1..%d\n", MAX_Q, ATTN_SPAN, KV_BLOCK);
            return 2;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench-fold [NQ BLOCKS LAST]\n");
        return 2;
    }
    printf("one fold, head size %d, f16 K/V (warm), 1 thread: µs per fold, multiply-adds per ns\n\n", HD);
    printf("| shape | queries | positions |");
    for (int i = 0; i < n; i++)
        printf(" %s µs | MAC/ns |", ks[i]->name);
    printf("\n|---|---|---|");
    for (int i = 0; i < n; i++)
        printf("---|---|");
    printf("\n");
    if (argc == 4)
        row(ks, n, &one);
    else
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            row(ks, n, &shapes[i]);
    return 0;
}
