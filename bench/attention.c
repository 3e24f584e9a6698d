/*
** bench-attention: one decode step's attention for B branches of a shared
** prompt, against the same branches each holding its own copy of the
** prompt (what a cache without sharing does), per layer, with the
** smol and qwen05 head shapes and f16 keys and values.
**
** The branches have a prompt of P positions and G of their own; each row
** is a branch's next token. Shared: the plan finds the prompt's blocks
** held by all B branches and reads each once for B x group queries.
** Unshared: B x (P + G) positions, every block read for one row.
** Reported: CPU microseconds per layer (process CPU time, all threads,
** best of several runs: robust on a shared machine, where wall time is
** not), K/V bytes the step reads, and the ratio. Random keys, values and
** queries: the cost does not depend on them.
**
** --shape and --batch run one shape or batch size of the table only.
** With --cold every run starts from caches that hold none of the K/V (a
** buffer larger than the last-level cache is read in between, not
** timed): in a forward pass the weights streamed between two layers'
** attention evict them. The queries, output and running softmaxes are
** read again after that, as a forward pass has them at hand.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "attention.h"

typedef struct shape { const char *name; int n_head, n_head_kv, head_dim; } shape;

static const shape shapes[] = {
    { "smol", 9, 3, 64 },
    { "qwen05", 14, 2, 64 },
};

static uint64_t rng = 0x9e3779b97f4a7c15u;

static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        x[i] = (float)((rng >> 40) / (double)(1 << 24) - 0.5);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Append n random positions to s (one layer). */
static void append(kv_pool *pool, copse_seq *s, int n, float *kv, int kv_dim)
{
    int need;
    kv_account *over;
    s->n_new = n;
    if (kv_reserve(pool, &s, 1, &need, &over) || need > pool->n_free) {
        fprintf(stderr, "bench-attention: out of memory\n");
        exit(1);
    }
    kv_prepare(s);
    for (int pos = s->len; pos < s->len + n; pos++) {
        fill(kv, 2 * (size_t)kv_dim);
        kv_store(s, 0, pos, kv, kv + kv_dim);
    }
    s->len += n;
    s->n_new = 0;
}

#define EVICT_BYTES (256u << 20)

static unsigned char *evict_buf;   /* with --cold: read between runs */

static volatile unsigned char sink;

/* Read n bytes from p, a line at a time. */
static unsigned char touch(const void *p, size_t n)
{
    unsigned char x = 0;
    for (size_t i = 0; i < n; i += 64)
        x ^= ((const unsigned char *)p)[i];
    return x;
}

/* With --cold, caches as a forward pass leaves them: none of the K/V,
** but the queries (the product before attention has just written them),
** the output and the running softmaxes (every layer's attention uses
** them) read again. */
static void evict(const attn_plan *a, const float *q, const float *out, int n)
{
    if (!evict_buf)
        return;
    size_t qd = (size_t)n * a->n_head * a->head_dim;
    sink = touch(evict_buf, EVICT_BYTES) ^ touch(q, qd * sizeof *q) ^ touch(out, qd * sizeof *out)
           ^ touch(a->acc, ((size_t)n * a->n_head * (a->head_dim + 2)) * sizeof *a->acc);
}

/* Best CPU time of one attn_run over the rows, in microseconds. */
static double time_step(const copse_model_info *hp, kv_pool *pool, const fwd_row *rows, int n, int threads,
                        const float *q, float *out)
{
    attn_plan a;
    if (attn_init(&a, hp, pool, threads, 0) || attn_reserve(&a, n, attn_items(rows, n))) {
        fprintf(stderr, "bench-attention: out of memory\n");
        exit(1);
    }
    attn_build(&a, rows, n);
    attn_layer L = { .il = 0, .q = q, .q_stride = (size_t)hp->n_head * hp->head_dim,
                     .q_head = (size_t)hp->n_head / hp->n_head_kv * hp->head_dim, .out = out };
    /* cold: the best of many single runs (each needs its own eviction) */
    int reps = evict_buf ? 40 : 7, iters = evict_buf ? 1 : 20;
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        evict(&a, q, out, n);
        double t0 = now();
        for (int i = 0; i < iters; i++)
            attn_run(&a, &L);
        double t = (now() - t0) / iters;
        best = t < best ? t : best;
    }
    attn_free(&a);
    return best * 1e6;
}

/* Rows: the next token of each of the b branches; shared or not. */
static double bench(const shape *sh, int b, int P, int G, int threads, int share, uint64_t *kv_read)
{
    copse_model_info hp = { .n_layer = 1, .n_head = sh->n_head, .n_head_kv = sh->n_head_kv,
                            .head_dim = sh->head_dim };
    int kv_dim = sh->n_head_kv * sh->head_dim, blocks = (b + 1) * ((P + G) / KV_BLOCK + 3);
    kv_pool pool;
    copse_seq *seq = calloc((size_t)b + 1, sizeof *seq);
    float *kv = malloc(2 * sizeof(float) * (size_t)kv_dim);
    float *q = malloc(sizeof(float) * (size_t)b * sh->n_head * sh->head_dim);
    float *out = malloc(sizeof(float) * (size_t)b * sh->n_head * sh->head_dim);
    fwd_row *rows = malloc(sizeof *rows * (size_t)b);
    if (!seq || !kv || !q || !out || !rows || kv_pool_init(&pool, &hp, blocks, 1)) {
        fprintf(stderr, "bench-attention: out of memory\n");
        exit(1);
    }
    kv_seq_link(&pool, &seq[b]);
    append(&pool, &seq[b], P, kv, kv_dim);
    for (int i = 0; i < b; i++) {
        kv_seq_link(&pool, &seq[i]);
        if (share)
            kv_share(&seq[i], &seq[b]);
        else
            append(&pool, &seq[i], P, kv, kv_dim);
        append(&pool, &seq[i], G + 1, kv, kv_dim);
        rows[i] = (fwd_row){ &seq[i], P + G, 0, 0 };
    }
    kv_truncate(&seq[b], share ? P : 0);
    fill(q, (size_t)b * sh->n_head * sh->head_dim);
    double us = time_step(&hp, &pool, rows, b, threads, q, out);
    *kv_read = (uint64_t)(pool.n_blocks - pool.n_free) * pool.block_bytes;
    for (int i = 0; i <= b; i++)
        kv_seq_unlink(&seq[i]);
    kv_pool_free(&pool);
    free(seq);
    free(kv);
    free(q);
    free(out);
    free(rows);
    return us;
}

int main(int argc, char **argv)
{
    int P = 256, G = 64, threads = 2, cold = 0, only_b = 0;
    const char *only_shape = NULL;
    static const int bs[] = { 1, 4, 8, 16, 32 };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cold"))
            cold = 1;
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc)
            only_shape = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            only_b = atoi(argv[++i]);
        else if ((threads = atoi(argv[i])) < 1) {
            fprintf(stderr, "usage: bench-attention [THREADS] [--cold] [--shape smol|qwen05] [--batch B]\n");
            return 2;
        }
    }
    if (cold) {
        if (!(evict_buf = malloc(EVICT_BYTES))) {
            fprintf(stderr, "bench-attention: out of memory\n");
            return 1;
        }
        memset(evict_buf, 1, EVICT_BYTES);   /* pages of their own, not the shared zero page */
    }
    printf("attention per layer, one decode step of B branches: prompt %d + %d own positions each, "
           "f16 K/V, %d threads, %s kernels, %s caches\n\n", P, G, threads, attn_kernels_default()->name,
           cold ? "cold" : "warm");
    printf("| shape | B | shared CPU µs | K/V read KiB | unshared CPU µs | K/V read KiB | unshared ÷ shared |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) {
            uint64_t rs, ru;
            if ((only_shape && strcmp(only_shape, shapes[s].name)) || (only_b && only_b != bs[i]))
                continue;
            double us = bench(&shapes[s], bs[i], P, G, threads, 1, &rs);
            double uu = bench(&shapes[s], bs[i], P, G, threads, 0, &ru);
            printf("| %s | %d | %.1f | %.0f | %.1f | %.0f | %.2f× |\n", shapes[s].name, bs[i], us,
                   rs / 1024.0, uu, ru / 1024.0, uu / us);
        }
    free(evict_buf);
    return 0;
}
