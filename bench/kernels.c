/*
** bench-kernels: int8 kernel throughput per ISA tier on the matrix shapes
** of the smol and qwen05 models (olmo2-1b's for the K types, whose rows are
** whole blocks of 256), against the development machine's measured
** peaks (../shared/PEERS.md) and against this one's, measured in the same
** run, as a markdown table or JSON.
**
** Cases, per model and thread count:
**   gemv hot      one token against one FFN matrix, repeated (cache-resident)
**   decode        one token through every matrix of the model, as a decode
**                 step streams them (random weights of the real sizes); GB/s
**                 against the DRAM bandwidth ceiling
**   step M        M tokens through every matrix: one decode step of M
**                 branches (--batch), weights streamed once for all of them
**   step hot M    M tokens against one FFN matrix, repeated (cache-resident:
**                 the arithmetic of a step without the memory traffic)
**   gemm          512 tokens against one matrix (prompt processing)
**   prefill layer 512 tokens through the 7 matrices of one layer
** Times are the best of several runs: the machine is shared, so compare
** ratios measured in one run rather than absolute numbers across runs.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "q8.h"
#include "pool.h"
#include "bench.h"

/* PEERS.md, "This machine's limits" (GOPS, GB/s), [threads - 1]. */
typedef struct tier_peak { const char *tier; double gops[2]; } tier_peak;
static const tier_peak peaks[] = {
    { "avx2",       { 236, 472 } },
    { "avxvnni",    { 518, 1033 } },
    { "avx512vnni", { 940, 1877 } },
};
static const double dram_gbps[2] = { 16, 30 };
static double read_now[2];   /* bench_read_gbps() at 1 and 2 threads, this run */

typedef struct model_shape {
    const char *name;
    int dim, ffn, kv, vocab, layers;
} model_shape;

static const model_shape models[] = {
    { "smol",   576, 1536, 192, 49152,  30 },
    { "qwen05", 896, 4864, 128, 151936, 24 },
    { "olmo2-1b", 2048, 8192, 2048, 100352, 16 },
};

enum { MAT_Q, MAT_K, MAT_V, MAT_O, MAT_GATE, MAT_UP, MAT_DOWN, N_LAYER_MATS };
static const char *const mat_name[] = { "attn_q", "attn_k", "attn_v", "attn_o",
                                        "ffn_gate", "ffn_up", "ffn_down" };

static void mat_shape(const model_shape *m, int which, int *n, int *k)
{
    static const int rows_is[] = { 0, 1, 1, 0, 2, 2, 0 };   /* dim, kv, ffn */
    int rows[] = { m->dim, m->kv, m->ffn };
    *n = rows[rows_is[which]];
    *k = which == MAT_DOWN ? m->ffn : m->dim;
}

/* ------------------------------------------------------------------ setup */

static uint64_t rng = 88172645463325252u;

static uint64_t rnd64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The weight types --type takes, as files name them, with where a block
** holds its fp16 scale (d) and minimum's scale (m, -1: none). */
typedef struct weight_type { const char *name; uint32_t type; int d, m; } weight_type;
static const weight_type weight_types[] = {
    { "q8_0", GGML_TYPE_Q8_0, 0, -1 },     { "q4_0", GGML_TYPE_Q4_0, 0, -1 },
    { "q4_1", GGML_TYPE_Q4_1, 0, 2 },      { "q5_0", GGML_TYPE_Q5_0, 0, -1 },
    { "q5_1", GGML_TYPE_Q5_1, 0, 2 },      { "iq4_nl", GGML_TYPE_IQ4_NL, 0, -1 },
    { "q4_k", GGML_TYPE_Q4_K, 0, 2 },      { "q5_k", GGML_TYPE_Q5_K, 0, 2 },
    { "q6_k", GGML_TYPE_Q6_K, 208, -1 },   { "q3_k", GGML_TYPE_Q3_K, 108, -1 },
    { "q2_k", GGML_TYPE_Q2_K, 80, 82 },
};

/* The models --models takes by default: those of the K types' blocks of
** 256 for them, else the small ones. */
static const char *default_models(const weight_type *w)
{
    return ggml_type_block(w->type) == 256 ? "olmo2-1b" : "smol,qwen05";
}

/* Random blocks of type w packed for tier k as a file's are (2- to 6-bit
** types keeping their bits). */
static q8_weights *random_weights(const q8_kernels *k, int n, int K, const weight_type *w)
{
    uint64_t per = ggml_type_block(w->type);
    size_t size = ggml_type_nbytes(w->type, per), nblk = (size_t)n * K / per, bytes = nblk * size;
    uint8_t *blocks = malloc(bytes + 8);
    q8_weights *W = NULL;
    copse_error err;
    if (!blocks) {
        fprintf(stderr, "bench-kernels: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t v = rnd64();
        memcpy(blocks + i, &v, 8);
    }
    for (size_t b = 0; b < nblk; b++)   /* scales (and minimums): small, finite */
        for (int f = 0; f <= (w->m >= 0); f++) {
            uint8_t *p = blocks + b * size + (f ? w->m : w->d);
            uint16_t d = copse_f32_to_f16(1e-3f * (float)(1 + p[0] % 16));
            p[0] = (uint8_t)d;
            p[1] = (uint8_t)(d >> 8);
        }
    gguf_tensor t = { .name = "bench", .type = w->type,
                      .n_dims = 2, .ne = { K, n, 1, 1 }, .data = blocks };
    if (q8_weights_from_tensor(k, &t, 1, &W, &err)) {
        fprintf(stderr, "bench-kernels: %s\n", err.msg);
        exit(1);
    }
    free(blocks);
    return W;
}

static float *random_floats(size_t n)
{
    float *x = malloc(n * sizeof *x);
    if (!x) {
        fprintf(stderr, "bench-kernels: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(int64_t)(rnd64() >> 40) / (float)(1 << 23) - 1.0f;
    return x;
}

/* --------------------------------------------------- this machine's peak */

/*
** A tier's int8 peak as this run measures it: its multiply-add
** instruction in independent chains (enough to cover the latency on every
** port that runs it), registers only, on each thread. PEERS.md's figures
** are another machine's: the same kernel on a machine with half the
** vector throughput shows half the fraction of those, while its share of
** this machine's peak says how far its arithmetic is from what the
** hardware here can do. AVX2 has no int8 dot product: its peak is the
** vpmaddubsw, vpmaddwd, vpaddd chain its kernels use.
*/
typedef struct peak_loop {
    const char *tier;
    void (*run)(long n);   /* n iterations */
    int macs;              /* multiply-adds per iteration */
} peak_loop;

#if defined(__x86_64__)
#define X12(a, b) a "0" b a "1" b a "2" b a "3" b a "4" b a "5" b \
                  a "6" b a "7" b a "8" b a "9" b a "10" b a "11" b
#define CLOBBER12 "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
                  "xmm8", "xmm9", "xmm10", "xmm11"

static void loop_avx512vnni(long n)
{
    for (long i = 0; i < n; i++)
        __asm__ volatile(X12("vpdpbusd %%zmm12, %%zmm13, %%zmm", "\n\t") ::: CLOBBER12, "xmm12", "xmm13");
}

static void loop_avxvnni(long n)
{
    for (long i = 0; i < n; i++)
        __asm__ volatile(X12("%{vex%} vpdpbusd %%ymm12, %%ymm13, %%ymm", "\n\t") ::: CLOBBER12, "xmm12", "xmm13");
}

#define MADD(t, acc) "vpmaddubsw %%ymm12, %%ymm13, %%ymm" t "\n\t" \
                     "vpmaddwd %%ymm14, %%ymm" t ", %%ymm" t "\n\t"   \
                     "vpaddd %%ymm" t ", %%ymm" acc ", %%ymm" acc "\n\t"

static void loop_avx2(long n)   /* 12 products of 32 multiply-adds, into 4 sums */
{
    for (long i = 0; i < n; i++)
        __asm__ volatile(MADD("4", "0") MADD("5", "1") MADD("6", "2") MADD("7", "3")
                         MADD("8", "0") MADD("9", "1") MADD("10", "2") MADD("11", "3")
                         MADD("4", "0") MADD("5", "1") MADD("6", "2") MADD("7", "3")
                         ::: CLOBBER12, "xmm12", "xmm13", "xmm14");
}
#undef MADD

static const peak_loop peak_loops[] = {
    { "avx2", loop_avx2, 12 * 32 },
    { "avxvnni", loop_avxvnni, 12 * 32 },
    { "avx512vnni", loop_avx512vnni, 12 * 64 },
};
#else
static const peak_loop peak_loops[] = { { "", NULL, 0 } };   /* no tier is called "": none measured */
#endif

static double peak_now[sizeof peak_loops / sizeof *peak_loops][2];   /* GOPS, 1 and 2 threads */

/* GOPS of loop on n threads (each runs it), best of at least 3 runs and
** about min_seconds in all. */
static double measure_peak(const peak_loop *l, int threads, double min_seconds)
{
    long n = 1 << 16;
    double best = 1e30, start = bench_now();
    for (int r = 0; r < 3 || bench_now() - start < min_seconds; r++) {
        double t0 = bench_now();
#pragma omp parallel num_threads(threads)
        l->run(n);
        double t = bench_now() - t0;
        if (t < 0.02) {   /* too short to time: longer, and this one does not count */
            n *= 4;
            r--;
            continue;
        }
        best = t < best ? t : best;
    }
    return 2.0 * l->macs * (double)n * threads / best / 1e9;
}

static void measure_peaks(const q8_kernels *k, const int *threads, int n_threads, double min_seconds)
{
    for (size_t i = 0; i < sizeof peak_loops / sizeof *peak_loops; i++)
        if (!strcmp(peak_loops[i].tier, k->name))
            for (int t = 0; t < n_threads; t++)
                if (threads[t] <= 2 && !peak_now[i][threads[t] - 1])
                    peak_now[i][threads[t] - 1] = measure_peak(&peak_loops[i], threads[t], min_seconds);
}

/* --------------------------------------------------------------- running */

/* What one timed run does: n_mats products of M tokens. */
typedef struct job {
    q8_weights **W;
    int n_mats, M, threads;
    const float *x;
    float *y;
} job;

static void run_mats(void *ctx)
{
    const job *j = ctx;
    copse_error err;
    for (int i = 0; i < j->n_mats; i++)
        if (q8_matmul(j->W[i], j->x, j->M, j->y, j->threads, &err)) {
            fprintf(stderr, "bench-kernels: %s\n", err.msg);
            exit(1);
        }
}

/* On one team for all the products, as the forward pass runs them. */
static void run_job(const job *j)
{
    pool_team(j->threads, run_mats, (void *)j);
}

/* Best time of at least 3 runs and about min_seconds in all. */
static double best_time(const job *j, double min_seconds)
{
    run_job(j);   /* warm up: page faults, thread start */
    double best = 1e30, start = bench_now();
    for (int n = 0; n < 3 || bench_now() - start < min_seconds; n++) {
        double t0 = bench_now();
        run_job(j);
        double t = bench_now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

typedef struct result {
    const char *model, *tier;
    char what[64];
    int threads, M, N, K;    /* N, K of one matrix (0 for a set) */
    double seconds, ops, bytes;
} result;

static result *results;
static int n_results, cap_results;

static result *add_result(const char *model, const q8_kernels *k, int threads, const char *what)
{
    if (n_results == cap_results) {
        cap_results = cap_results ? 2 * cap_results : 64;
        results = realloc(results, (size_t)cap_results * sizeof *results);
        if (!results) {
            fprintf(stderr, "bench-kernels: out of memory\n");
            exit(1);
        }
    }
    result *r = &results[n_results++];
    memset(r, 0, sizeof *r);
    r->model = model;
    r->tier = k->name;
    r->threads = threads;
    snprintf(r->what, sizeof r->what, "%s", what);
    return r;
}

/* Time M tokens through the matrices W[0..n) and record it. */
static void measure(const char *model, const q8_kernels *k, int threads, const char *what,
                    q8_weights **W, int n, int M, double min_seconds)
{
    int maxk = 0, maxn = 0;
    double ops = 0, bytes = 0;
    for (int i = 0; i < n; i++) {
        maxk = W[i]->K > maxk ? W[i]->K : maxk;
        maxn = W[i]->n_rows > maxn ? W[i]->n_rows : maxn;
        ops += 2.0 * M * W[i]->n_rows * W[i]->K;
        bytes += (double)q8_weights_bytes(W[i]);
    }
    float *x = random_floats((size_t)M * maxk), *y = malloc((size_t)M * maxn * sizeof *y);
    job j = { W, n, M, threads, x, y };
    result *r = add_result(model, k, threads, what);
    r->seconds = best_time(&j, min_seconds);
    r->M = M;
    r->N = n == 1 ? W[0]->n_rows : 0;
    r->K = n == 1 ? W[0]->K : 0;
    r->ops = ops;
    r->bytes = bytes;
    free(x);
    free(y);
}

/* Time the activation quantizer on rows of K values (one thread: each
** row is a call of its own) and record it: bytes are the rows' floats. */
#define QUANTIZE_ROWS 64

static void measure_quantize(const char *model, const q8_kernels *k, int K, double min_seconds)
{
    float *x = random_floats((size_t)QUANTIZE_ROWS * K), *d = malloc((size_t)K / Q8_BLOCK * sizeof *d);
    int8_t *q = malloc((size_t)QUANTIZE_ROWS * K);
    int32_t *ns = malloc((size_t)K / Q8_BLOCK * sizeof *ns), *hs = malloc((size_t)K / Q8_BLOCK * sizeof *hs);
    if (!d || !q || !ns || !hs) {
        fprintf(stderr, "bench-kernels: out of memory\n");
        exit(1);
    }
    int reps = 1 + (1 << 16) / K;   /* about 4 M values a timing */
    double best = 1e30, start = bench_now();
    for (int n = 0; n < 4 || bench_now() - start < min_seconds; n++) {
        double t0 = bench_now();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < QUANTIZE_ROWS; i++)
                k->quantize(x + (size_t)i * K, K, q + (size_t)i * K, d, ns, hs);
        double t = (bench_now() - t0) / reps;
        best = n && t < best ? t : best;   /* the first warms up */
    }
    char what[64];
    snprintf(what, sizeof what, "quantize K=%d", K);
    result *res = add_result(model, k, 1, what);
    res->seconds = best;
    res->M = QUANTIZE_ROWS;
    res->K = K;
    res->bytes = (double)QUANTIZE_ROWS * K * sizeof *x;
    free(x);
    free(d);
    free(q);
    free(ns);
    free(hs);
}

#define MAX_BATCH 8

typedef struct options {
    int json, quick, threads[2], n_threads, type;   /* type: an index of weight_types */
    int batch[MAX_BATCH], n_batch;   /* M of the step cases */
    const char *tiers, *models, *cases;
} options;

static int listed(const char *list, const char *name)
{
    if (!list)
        return 1;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

static void bench_model(const model_shape *m, const q8_kernels *k, const options *o)
{
    double secs = o->quick ? 0.05 : 0.3;
    int n_all = m->layers * N_LAYER_MATS + 1;
    q8_weights **all = malloc((size_t)n_all * sizeof *all);
    for (int l = 0; l < m->layers; l++)
        for (int i = 0; i < N_LAYER_MATS; i++) {
            int n, K;
            mat_shape(m, i, &n, &K);
            all[l * N_LAYER_MATS + i] = random_weights(k, n, K, &weight_types[o->type]);
        }
    all[n_all - 1] = random_weights(k, m->vocab, m->dim, &weight_types[o->type]);   /* output */
    int gemm_tokens = strcmp(k->name, "scalar") == 0 ? 16 : 512;

    for (int ti = 0; ti < o->n_threads; ti++) {
        int th = o->threads[ti];
        char what[64];
        for (int i = MAT_UP; i <= MAT_DOWN && listed(o->cases, "hot"); i++) {
            snprintf(what, sizeof what, "gemv hot %s", mat_name[i]);
            measure(m->name, k, th, what, &all[i], 1, 1, secs);
        }
        if (listed(o->cases, "decode"))
            measure(m->name, k, th, "decode (all matrices)", all, n_all, 1, secs);
        for (int i = 0; i < o->n_batch && listed(o->cases, "stephot"); i++) {
            snprintf(what, sizeof what, "step hot M=%d %s", o->batch[i], mat_name[MAT_UP]);
            measure(m->name, k, th, what, &all[MAT_UP], 1, o->batch[i], secs);
        }
        for (int i = 0; i < o->n_batch && listed(o->cases, "step"); i++) {
            snprintf(what, sizeof what, "step M=%d (all matrices)", o->batch[i]);
            measure(m->name, k, th, what, all, n_all, o->batch[i], secs);
        }
        for (int i = MAT_Q; i <= MAT_DOWN && listed(o->cases, "gemm"); i++) {
            if (i == MAT_V || i == MAT_O || i == MAT_GATE)
                continue;   /* same shapes as attn_k, attn_q, ffn_up */
            snprintf(what, sizeof what, "gemm %s", mat_name[i]);
            measure(m->name, k, th, what, &all[i], 1, gemm_tokens, secs);
        }
        if (listed(o->cases, "prefill"))
            measure(m->name, k, th, "prefill layer", all, N_LAYER_MATS, gemm_tokens, secs);
        /* a whole row of each width, and one block: what the fused passes
        ** quantize at a time (forward.c) */
        for (int i = 0; i < 3 && th == o->threads[0] && listed(o->cases, "quantize"); i++)
            measure_quantize(m->name, k, (int[]){ Q8_BLOCK, m->dim, m->ffn }[i], secs);
    }
    for (int i = 0; i < n_all; i++)
        q8_weights_free(all[i]);
    free(all);
}

/* ----------------------------------------------------------------- output */

static double peak_gops(const char *tier, int threads)
{
    for (size_t i = 0; i < sizeof peaks / sizeof *peaks; i++)
        if (strcmp(peaks[i].tier, tier) == 0 && threads >= 1 && threads <= 2)
            return peaks[i].gops[threads - 1];
    return 0;
}

static int is_decode(const result *r) { return strncmp(r->what, "decode", 6) == 0; }
static int is_quantize(const result *r) { return strncmp(r->what, "quantize", 8) == 0; }

/* The fraction of the ceiling that bounds this case: DRAM bandwidth for
** decode, int8 compute otherwise; 0 when unknown. */
static double fraction(const result *r)
{
    if (is_quantize(r))
        return 0;
    if (is_decode(r))
        return r->threads <= 2 ? r->bytes / r->seconds / 1e9 / dram_gbps[r->threads - 1] : 0;
    double p = peak_gops(r->tier, r->threads);
    return p > 0 ? r->ops / r->seconds / 1e9 / p : 0;
}

/* This run's peak of the tier's instruction on so many threads; 0 when
** not measured. */
static double peak_gops_now(const char *tier, int threads)
{
    for (size_t i = 0; i < sizeof peak_loops / sizeof *peak_loops; i++)
        if (!strcmp(peak_loops[i].tier, tier) && threads >= 1 && threads <= 2)
            return peak_now[i][threads - 1];
    return 0;
}

/* fraction's, against the ceiling measured in this run: the plain read for
** decode, the tier's instruction otherwise; 0 when not measured. */
static double fraction_now(const result *r)
{
    if (r->threads > 2 || is_quantize(r))
        return 0;
    if (is_decode(r))
        return read_now[r->threads - 1] > 0 ? r->bytes / r->seconds / 1e9 / read_now[r->threads - 1] : 0;
    double p = peak_gops_now(r->tier, r->threads);
    return p > 0 ? r->ops / r->seconds / 1e9 / p : 0;
}

static void print_json(const char *type)
{
    printf("{\n  \"weight_type\": \"%s\",\n  \"read_gbps_this_run\": [%.4g, %.4g],\n  \"peak_gops_this_run\": {",
           type, read_now[0], read_now[1]);
    for (size_t i = 0, n = 0; i < sizeof peak_loops / sizeof *peak_loops; i++)
        if (peak_now[i][0] > 0 || peak_now[i][1] > 0)
            printf("%s\"%s\": [%.4g, %.4g]", n++ ? ", " : "", peak_loops[i].tier, peak_now[i][0], peak_now[i][1]);
    printf("},\n  \"peaks\": {\"dram_gbps\": [%g, %g]", dram_gbps[0], dram_gbps[1]);
    for (size_t i = 0; i < sizeof peaks / sizeof *peaks; i++)
        printf(", \"%s_gops\": [%g, %g]", peaks[i].tier, peaks[i].gops[0], peaks[i].gops[1]);
    printf("},\n  \"results\": [\n");
    for (int i = 0; i < n_results; i++) {
        const result *r = &results[i];
        printf("    {\"model\": \"%s\", \"case\": \"%s\", \"tier\": \"%s\", \"threads\": %d, "
               "\"M\": %d, \"N\": %d, \"K\": %d, \"seconds\": %.6g, \"gops\": %.4g, "
               "\"gbps\": %.4g, \"tokens_per_s\": %.4g, \"fraction_of_ceiling\": %.3f, "
               "\"fraction_of_ceiling_this_run\": %.3f}%s\n",
               r->model, r->what, r->tier, r->threads, r->M, r->N, r->K, r->seconds,
               r->ops / r->seconds / 1e9, r->bytes / r->seconds / 1e9, r->M / r->seconds,
               fraction(r), fraction_now(r), i + 1 < n_results ? "," : "");
    }
    printf("  ]\n}\n");
}

/* A figure at 1/2 threads, "-" for a thread count not run. */
static void print_per_thread(const double v[2], int decimals)
{
    for (int t = 0; t < 2; t++) {
        if (t)
            putchar('/');
        if (v[t] > 0)
            printf("%.*f", decimals, v[t]);
        else
            putchar('-');
    }
}

/* One row per case and thread count, one column per tier. */
static void print_markdown(const char *type)
{
    const char *tiers[8];
    int nt = 0;
    for (int i = 0; i < n_results; i++) {
        int seen = 0;
        for (int t = 0; t < nt; t++)
            seen |= strcmp(tiers[t], results[i].tier) == 0;
        if (!seen && nt < 8)
            tiers[nt++] = results[i].tier;
    }
    printf("int8 kernels, %s weights: GOPS (decode: GB/s of weights; quantize: GB/s of the rows' "
           "floats,\n%d rows), in brackets the fraction of the ceiling\nof PEERS.md's machine / of this one, measured in this run: the int8 peak "
           "of the tier\n(PEERS.md; here its multiply-add instruction alone, GOPS at 1/2 threads:",
           type, QUANTIZE_ROWS);
    int n_peaks = 0;
    for (size_t i = 0; i < sizeof peak_loops / sizeof *peak_loops; i++)
        if (peak_now[i][0] > 0 || peak_now[i][1] > 0) {
            printf(" %s ", peak_loops[i].tier);
            print_per_thread(peak_now[i], 0);
            n_peaks++;
        }
    if (!n_peaks)   /* measured only with a compute case, and not for Arm tiers */
        printf(" not measured");
    printf(");\nfor decode the DRAM bandwidth (PEERS.md: %g/%g GB/s", dram_gbps[0], dram_gbps[1]);
    if (read_now[0] > 0 || read_now[1] > 0) {   /* measured only with the decode case */
        printf("; here a plain 1 GiB read, ");
        print_per_thread(read_now, 1);
        printf(" GB/s");
    }
    printf(").\n\n| model | case | M x N x K | threads |");
    for (int t = 0; t < nt; t++)
        printf(" %s |", tiers[t]);
    printf("\n|---|---|---|---|");
    for (int t = 0; t < nt; t++)
        printf("---|");
    printf("\n");
    for (int i = 0; i < n_results; i++) {
        const result *r = &results[i];
        int first = 1;
        for (int j = 0; j < i; j++)   /* a row per distinct (model, case, threads) */
            if (!strcmp(results[j].model, r->model) && !strcmp(results[j].what, r->what)
                && results[j].threads == r->threads)
                first = 0;
        if (!first)
            continue;
        char shape[48];
        if (is_quantize(r))
            snprintf(shape, sizeof shape, "%d rows of %d", r->M, r->K);
        else if (r->N)
            snprintf(shape, sizeof shape, "%d x %d x %d", r->M, r->N, r->K);
        else
            snprintf(shape, sizeof shape, "%d x (set)", r->M);
        printf("| %s | %s | %s | %d |", r->model, r->what, shape, r->threads);
        for (int t = 0; t < nt; t++) {
            const result *c = NULL;
            for (int j = i; j < n_results; j++)
                if (!strcmp(results[j].model, r->model) && !strcmp(results[j].what, r->what)
                    && results[j].threads == r->threads && !strcmp(results[j].tier, tiers[t]))
                    c = &results[j];
            if (!c) {
                printf(" - |");
                continue;
            }
            double v = is_decode(c) || is_quantize(c) ? c->bytes / c->seconds / 1e9 : c->ops / c->seconds / 1e9;
            double f = fraction(c);
            if (fraction_now(c) > 0)
                printf(" %.1f (%.0f%% / %.0f%%) |", v, 100 * f, 100 * fraction_now(c));
            else if (f > 0)
                printf(" %.1f (%.0f%%) |", v, 100 * f);
            else
                printf(" %.1f |", v);
        }
        printf("\n");
    }
}

/* ------------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench-kernels [--json] [--quick] [--type T] [--tiers LIST] [--models LIST] "
            "[--threads LIST]\n"
            "int8 kernel throughput per ISA tier on the smol and qwen05 matrix shapes\n"
            "(olmo2-1b's for the K types).\n"
            "  --json          JSON instead of a markdown table\n"
            "  --quick         shorter runs (noisier)\n"
            "  --type T        weights: random blocks of q8_0 (default), q4_0, q4_1, q5_0,\n"
            "                  q5_1, iq4_nl, q4_k, q5_k, q6_k, q3_k or q2_k, packed as a\n"
            "                  file's are (2 to 6 bits kept)\n"
            "  --tiers LIST    comma-separated tiers (default: every supported one but scalar,\n"
            "                  whose gemm cases run 16 tokens instead of 512)\n"
            "  --models LIST   smol, qwen05, olmo2-1b (default smol,qwen05; olmo2-1b for\n"
            "                  the K types, whose rows must be whole blocks of 256)\n"
            "  --threads LIST  1,2 (default; 1 or 2 values)\n"
            "  --cases LIST    hot,decode,stephot,step,gemm,prefill,quantize (default all;\n"
            "                  quantize: the activation quantizer, one thread)\n"
            "  --batch LIST    token counts of the step cases, comma-separated, each\n"
            "                  2..256 (default 16; 0 for none)\n");
}

/* "0" or a list of 2..256; the count, or -1 when malformed. */
static int parse_batch(const char *s, int *out)
{
    if (!strcmp(s, "0"))
        return 0;
    int n = 0;
    for (char *end; *s; s = *end ? end + 1 : end) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 2 || v > 256 || (*end && *end != ',') || n == MAX_BATCH)
            return -1;
        out[n++] = (int)v;
    }
    return n;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->batch[0] = 16;
    o->n_batch = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--quick")) {
            o->quick = 1;
        } else if (!strcmp(a, "--type") && i + 1 < argc) {
            const char *t = argv[++i];
            o->type = 0;
            while (strcmp(t, weight_types[o->type].name))
                if (++o->type == (int)(sizeof weight_types / sizeof *weight_types))
                    return -1;
        } else if (!strcmp(a, "--tiers") && i + 1 < argc) {
            o->tiers = argv[++i];
        } else if (!strcmp(a, "--cases") && i + 1 < argc) {
            o->cases = argv[++i];
        } else if (!strcmp(a, "--models") && i + 1 < argc) {
            o->models = argv[++i];
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            if ((o->n_batch = parse_batch(argv[++i], o->batch)) < 0)
                return -1;
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            int n = sscanf(argv[++i], "%d,%d", &o->threads[0], &o->threads[1]);
            if (n < 1 || o->threads[0] < 1 || (n == 2 && o->threads[1] < 1))
                return -1;
            o->n_threads = n;
        } else {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < o.n_threads && listed(o.cases, "decode"); i++)
        if (o.threads[i] <= 2)
            read_now[o.threads[i] - 1] = bench_read_gbps(o.threads[i], o.quick ? 0.2 : 1.0);
    int n, any = 0;
    const q8_kernels *const *tiers = q8_tiers(&n);
    const weight_type *wt = &weight_types[o.type];
    const char *wanted_models = o.models ? o.models : default_models(wt);
    for (size_t mi = 0; mi < sizeof models / sizeof *models; mi++) {
        if (!listed(wanted_models, models[mi].name))
            continue;
        uint64_t per = ggml_type_block(wt->type);
        if (models[mi].dim % per || models[mi].ffn % per) {
            fprintf(stderr, "bench-kernels: %s's rows (%d, %d wide) are not whole blocks of %s (%d)\n",
                    models[mi].name, models[mi].dim, models[mi].ffn, wt->name, (int)per);
            return 2;
        }
        for (int i = 0; i < n; i++) {
            const q8_kernels *k = tiers[i];
            int wanted = o.tiers ? listed(o.tiers, k->name) : strcmp(k->name, "scalar") != 0;
            if (!wanted)
                continue;
            if (!q8_tier_supported(k)) {
                fprintf(stderr, "bench-kernels: tier %s: not supported here, skipped\n", k->name);
                continue;
            }
            if (listed(o.cases, "hot") || listed(o.cases, "stephot") || listed(o.cases, "step")
                || listed(o.cases, "gemm") || listed(o.cases, "prefill"))
                measure_peaks(k, o.threads, o.n_threads, o.quick ? 0.1 : 0.5);
            fprintf(stderr, "bench-kernels: %s on %s...\n", models[mi].name, k->name);
            bench_model(&models[mi], k, &o);
            any = 1;
        }
    }
    if (!any) {
        fprintf(stderr, "bench-kernels: nothing to run\n");
        return 1;
    }
    if (o.json)
        print_json(weight_types[o.type].name);
    else
        print_markdown(weight_types[o.type].name);
    free(results);
    return 0;
}
