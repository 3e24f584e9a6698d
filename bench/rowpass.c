/*
** bench-rowpass: what a decode step's elementwise row passes cost, apart
** from the products around them: the SwiGLU kernel and the activation
** quantizer on one row, a B=16 SwiGLU pass as the forward pass runs it
** (rows read from a product's output that both threads wrote, split
** like forward.c's row loops, each row quantized as it is written), and
** one pool_for of the team on its own (the barrier every pass pays).
**
**     bench-rowpass [--ff N] [--rows B] [--threads T] [--evict MiB] [--reps R]
**
** Between the product's writes and the pass, --evict MiB of other data
** (8 by default, 0 for none) are read, as the product's weights are:
** the pass then finds its input where a forward pass does.
** Wall time per call, best of R rounds (the minimum is what the code
** costs; a busy machine only adds). Random inputs: the cost does not
** depend on them.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "pool.h"
#include "q8.h"
#include "vec.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        x[i] = (float)((rng >> 40) / (double)(1 << 24) - 0.5) * 8;
    }
}

/* The serial work before each empty job: none, what a pass's caller does
** between loops, and longer than a waiting thread spins (it sleeps). */
static const double gaps_us[] = { 0, 5, 100 };
#define N_GAPS 3
#define JOBS 100

typedef struct setup {
    int ff, rows, threads, reps, per;
    const vec_kernels *vec;
    const q8_kernels *tier;
    float *wide, *out;   /* [rows][2 ff] gate | up, and [rows][ff] */
    const float *weights;   /* what a product streams: evicts its output from L2 */
    size_t n_weights;
    q8_act act;
    double best_pass, best_write, best_empty[N_GAPS];
} setup;

/* A product's output: each item writes one column range of every row,
** as the int8 products' lanes do. */
static void write_item(void *ctx, int i)
{
    setup *s = ctx;
    size_t w = 2 * (size_t)s->ff, span = w / 16, c0 = i * span;
    for (int r = 0; r < s->rows; r++)
        for (size_t c = c0; c < c0 + span; c++)
            s->wide[r * w + c] = (float)(c % 13) * 0.25f - 1.5f;
}

/* The product's weight reads, a 16th of them. */
static void stream_item(void *ctx, int i)
{
    setup *s = ctx;
    size_t span = s->n_weights / 16;
    const float *w = s->weights + i * span;
    float sum = 0;
    for (size_t k = 0; k < span; k += 16)
        sum += w[k];
    if (sum == 1)   /* never (the buffer is zeros): keeps the reads */
        s->out[0] = sum;
}

static void swiglu_item(void *ctx, int i)
{
    setup *s = ctx;
    for (int r = i * s->per; r < (i + 1) * s->per && r < s->rows; r++) {
        float *o = s->out + (size_t)r * s->ff;
        const float *g = s->wide + (size_t)r * 2 * s->ff;
        s->vec->swiglu(o, g, g + s->ff, (size_t)s->ff);
        q8_act_quantize_row(s->tier, &s->act, r, o);
    }
}

static void nothing(void *ctx, int i)
{
    (void)ctx, (void)i;
}

static void spin_us(double us)
{
    for (double t = bench_now(); bench_now() - t < us * 1e-6;)
        ;
}

/* Inside one team: the product's writes, then the pass, timed; then
** empty jobs after the serial work of each gap. */
static void team_body(void *ctx)
{
    setup *s = ctx;
    int items = (s->rows + s->per - 1) / s->per;
    for (int rep = 0; rep < s->reps; rep++) {
        double t0 = bench_now();
        pool_for(s->threads, 16, write_item, s);
        double write = bench_now() - t0;
        if (s->n_weights)
            pool_for(s->threads, 16, stream_item, s);
        double t1 = bench_now();
        pool_for(s->threads, items, swiglu_item, s);
        double t2 = bench_now();
        s->best_write = write < s->best_write ? write : s->best_write;
        s->best_pass = t2 - t1 < s->best_pass ? t2 - t1 : s->best_pass;
    }
    for (int rep = 0; rep < s->reps; rep++)
        for (int g = 0; g < N_GAPS; g++) {
            double t0 = bench_now(), work = 0;
            for (int j = 0; j < JOBS; j++) {
                double w0 = bench_now();
                spin_us(gaps_us[g]);
                work += bench_now() - w0;
                pool_for(s->threads, items, nothing, s);
            }
            double t = (bench_now() - t0 - work) / JOBS;
            s->best_empty[g] = t < s->best_empty[g] ? t : s->best_empty[g];
        }
}

/* ns per value of f on one row in cache, best of reps x 200 calls. */
static double row_ns(setup *s, int what)
{
    float *g = s->wide, *u = s->wide + s->ff, *o = s->out;
    double best = 1e30;
    for (int rep = 0; rep < s->reps; rep++) {
        double t0 = bench_now();
        for (int k = 0; k < 200; k++) {
            if (what != 1)
                s->vec->swiglu(o, g, u, (size_t)s->ff);
            if (what != 0)
                q8_act_quantize_row(s->tier, &s->act, 0, o);
        }
        double t = (bench_now() - t0) / 200;
        best = t < best ? t : best;
    }
    return best * 1e9 / s->ff;
}

int main(int argc, char **argv)
{
    setup s = { .ff = 4864, .rows = 16, .threads = 2, .reps = 50, .n_weights = 8 << 18 };
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--ff") && v >= 32 && v % 32 == 0)
            s.ff = v;
        else if (!strcmp(argv[i], "--rows") && v >= 1)
            s.rows = v;
        else if (!strcmp(argv[i], "--threads") && v >= 1)
            s.threads = v;
        else if (!strcmp(argv[i], "--evict") && v >= 0)
            s.n_weights = (size_t)v << 18;
        else if (!strcmp(argv[i], "--reps") && v >= 1)
            s.reps = v;
        else {
            fprintf(stderr, "usage: bench-rowpass [--ff N (x32)] [--rows B] [--threads T] [--evict MiB] [--reps R]\n");
            return 2;
        }
    }
    if (q8_tier_default(&s.tier, NULL) || q8_act_shape(&s.act, s.rows, s.ff, NULL)) {
        fprintf(stderr, "bench-rowpass: no int8 tier or out of memory\n");
        return 1;
    }
    s.vec = vec_kernels_default();
    s.wide = malloc(sizeof(float) * 2 * s.ff * s.rows);
    s.out = malloc(sizeof(float) * s.ff * s.rows);
    s.weights = calloc(s.n_weights + 16, sizeof(float));
    if (!s.wide || !s.out || !s.weights)
        return 1;
    fill(s.wide, 2 * (size_t)s.ff * s.rows);
    printf("bench-rowpass: ff %d, %d rows, %d threads, vec %s, int8 %s, best of %d\n", s.ff,
           s.rows, s.threads, s.vec->name, s.tier->name, s.reps);
    printf("one row in cache: swiglu %.3f ns/value, quantize %.3f, both %.3f\n", row_ns(&s, 0),
           row_ns(&s, 1), row_ns(&s, 2));
    s.per = s.rows / (4 * s.threads) > 1 ? s.rows / (4 * s.threads) : 1;
    s.best_pass = s.best_write = 1e30;
    for (int g = 0; g < N_GAPS; g++)
        s.best_empty[g] = 1e30;
    pool_team(s.threads, team_body, &s);
    printf("pass of %d rows after a product's writes: %.2f us (%.3f ns/value); the writes %.2f us\n",
           s.rows, s.best_pass * 1e6, s.best_pass * 1e9 / ((double)s.rows * s.ff),
           s.best_write * 1e6);
    printf("empty pool_for of %d items:", (s.rows + s.per - 1) / s.per);
    for (int g = 0; g < N_GAPS; g++)
        printf(" %.3f us after %g us of work%s", s.best_empty[g] * 1e6, gaps_us[g], g + 1 < N_GAPS ? "," : "\n");
    q8_act_free(&s.act);
    free(s.wide);
    free(s.out);
    free((void *)s.weights);
    return 0;
}
