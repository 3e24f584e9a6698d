/*
** bench-model: whole-model speed as llama-bench measures it, on GGUF files
** (for the figures, smol and qwen05 shapes in Q8_0 from mkmodel):
**   pp   one batch of N random tokens into an empty sequence (prompt)
**   tg   N tokens decoded one at a time into an empty sequence (generation)
** in tokens/s at each thread count. Generation must stream every matrix
** byte once per token, so its ceiling is the read bandwidth measured in
** this run divided by those bytes; the table gives the fraction of that
** ceiling reached.
**
** When LLAMA_BENCH names a llama-bench binary it runs on the same file,
** one repetition (-t N -p PP -n TG -r 1 -o json) after each of copse's,
** and the table gives the copse / llama.cpp ratios. Other programs on a
** shared machine slow whichever side they happen to overlap, so both
** sides report their best repetition (the JSON has the medians too), and
** only ratios from one run compare.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "copse.h"
#include "model.h"
#include "bench.h"

#define MAX_THREADS 8
#define MAX_REPS    64

typedef struct options {
    int json, pp, tg, reps;
    int weights_f32[2], weights_8bit[2];   /* --weights, then --vs-weights */
    const char *vs;                         /* --vs-weights W, or NULL */
    int threads[MAX_THREADS], n_threads;
    const char *llama;
} options;

/* tokens/s of each repetition: copse pp, tg, llama.cpp's, then copse's
** with --vs-weights */
enum { PP, TG, LLAMA_PP, LLAMA_TG, VS_PP, VS_TG, N_SERIES };

typedef struct result {
    const char *file;
    char kernels[40];          /* the tier, "+4bit" where matrices keep 4 bits */
    int threads;
    double best[N_SERIES], median[N_SERIES];   /* 0 when not run */
    double matrix_bytes;         /* streamed per generated token */
    double read_gbps;            /* this run, these threads */
} result;

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench-model: %s: %s\n", what, msg);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Best and median of n samples (sorts them). */
static void summarize(double *v, int n, double *best, double *median)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *best = v[n - 1];
    *median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------- copse runs */

/* tokens/s decoding tok[0..n) into a fresh sequence, in one batch or one
** token at a time. */
static double decode_speed(copse_ctx *ctx, const int32_t *tok, int n, int one_by_one)
{
    copse_error err;
    copse_seq *s = copse_seq_new(ctx);
    if (!s)
        die("decode", "out of memory");
    double t0 = bench_now();
    for (int i = 0; i < n; i += one_by_one ? 1 : n)
        if (copse_decode_tokens(ctx, s, tok + i, one_by_one ? 1 : n, 0, &err))
            die("decode", err.msg);
    double t = bench_now() - t0;
    copse_seq_free(s);
    return n / t;
}

/* -------------------------------------------------------- the llama peer */

/* The first "samples_ts" (else "avg_ts") value after p. */
static double llama_speed(const char *p)
{
    const char *s = strstr(p, "\"samples_ts\"");
    if (s && (s = strchr(s, '[')))
        return strtod(s + 1, NULL);
    s = strstr(p, "\"avg_ts\"");
    return s ? strtod(s + 9, NULL) : 0;
}

/* One repetition of llama-bench on file: pp and tg tokens/s into v. */
static void run_llama(const char *file, const options *o, int threads, double *v_pp, double *v_tg)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -t %d -p %d -n %d -r 1 -o json 2>/dev/null",
             o->llama, file, threads, o->pp, o->tg);
    FILE *f = popen(cmd, "r");
    if (!f)
        die("LLAMA_BENCH", "cannot run it");
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    while (out && (len += fread(out + len, 1, cap - len - 1, f)) == cap - 1) {
        char *bigger = realloc(out, cap *= 2);
        if (!bigger)
            free(out);
        out = bigger;
    }
    int status = pclose(f);
    if (!out)
        die("LLAMA_BENCH", "out of memory");
    out[len] = '\0';
    if (status != 0)
        fprintf(stderr, "bench-model: %s exited with status %d on %s\n", o->llama, status, file);
    /* one object per test: "n_prompt": P, "n_gen": G, ... samples */
    *v_pp = *v_tg = 0;
    for (const char *p = out; (p = strstr(p, "\"n_prompt\"")); p++) {
        long np = strtol(strchr(p, ':') + 1, NULL, 10);
        const char *g = strstr(p, "\"n_gen\"");
        long ng = g ? strtol(strchr(g, ':') + 1, NULL, 10) : -1;
        if (np == o->pp && ng == 0)
            *v_pp = llama_speed(p);
        else if (np == 0 && ng == o->tg)
            *v_tg = llama_speed(p);
    }
    free(out);
}

/* ------------------------------------------------------------ one case */

/* o->reps repetitions on one model and thread count, copse (m[0], and
** m[1] when given: the same file under --vs-weights) and the peer taking
** turns, after one unmeasured copse pass each (page faults, threads). */
static void run_case(const char *file, copse_model *const m[2], const options *o, result *r)
{
    copse_model_info info;
    copse_model_get_info(m[0], &info);
    copse_ctx_params cp = copse_ctx_default_params();
    int n = o->pp > o->tg ? o->pp : o->tg;
    cp.n_threads = r->threads;
    cp.n_ctx = n;
    copse_ctx *ctx[2] = { NULL, NULL };
    copse_error err;
    for (int i = 0; i < 2; i++)
        if (m[i] && copse_ctx_new(m[i], &cp, &ctx[i], &err))
            die(file, err.msg);
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    if (!tok)
        die(file, "out of memory");
    uint64_t s = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % (uint64_t)info.n_vocab);
    }
    double v[N_SERIES][MAX_REPS] = { { 0 } };
    for (int i = 0; i < 2 && ctx[i]; i++)
        decode_speed(ctx[i], tok, n, 0);
    for (int rep = 0; rep < o->reps; rep++) {
        for (int i = 0; i < 2 && ctx[i]; i++) {
            v[i ? VS_PP : PP][rep] = o->pp ? decode_speed(ctx[i], tok, o->pp, 0) : 0;
            v[i ? VS_TG : TG][rep] = o->tg ? decode_speed(ctx[i], tok, o->tg, 1) : 0;
        }
        if (o->llama)
            run_llama(file, o, r->threads, &v[LLAMA_PP][rep], &v[LLAMA_TG][rep]);
    }
    for (int k = 0; k < N_SERIES; k++)
        summarize(v[k], o->reps, &r->best[k], &r->median[k]);
    free(tok);
    copse_ctx_free(ctx[0]);
    copse_ctx_free(ctx[1]);
}

/* ------------------------------------------------------------------ output */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static double ceiling_fraction(const result *r)
{
    return r->read_gbps > 0 ? r->best[TG] * r->matrix_bytes / (r->read_gbps * 1e9) : 0;
}

static void print_ratio(double a, double b)
{
    if (b > 0)
        printf(" %.2f |", a / b);
    else
        printf(" - |");
}

/* copse's best, and the peer's with the ratio when it ran. */
static void print_pair(const result *r, int k, int peer)
{
    printf(" %.1f |", r->best[k]);
    if (peer) {
        printf(" %.1f |", r->best[k + LLAMA_PP]);
        print_ratio(r->best[k], r->best[k + LLAMA_PP]);
    }
}

static void print_markdown(const result *res, int n, const options *o)
{
    int peer = o->llama != NULL;
    printf("Best of %d repetitions%s%s; generation's GB/s are the matrix bytes it streams, against "
           "a plain read measured in this run.\n\n", o->reps, peer ? ", copse and llama.cpp in turn" : "",
           o->vs ? ", each copse configuration in turn" : "");
    printf("| model | kernels | threads | pp%d tok/s |%s tg%d tok/s |%s tg GB/s | of read bw |",
           o->pp, peer ? " llama.cpp | ratio |" : "", o->tg, peer ? " llama.cpp | ratio |" : "");
    if (o->vs)
        printf(" pp%d %s | ratio | tg%d %s | ratio |", o->pp, o->vs, o->tg, o->vs);
    printf("\n|---|---|---|---|%s---|%s---|---|%s\n", peer ? "---|---|" : "", peer ? "---|---|" : "",
           o->vs ? "---|---|---|---|" : "");
    for (int i = 0; i < n; i++) {
        const result *r = &res[i];
        printf("| %s | %s | %d |", base_name(r->file), r->kernels, r->threads);
        print_pair(r, PP, peer);
        print_pair(r, TG, peer);
        printf(" %.1f | %.0f%% of %.1f |", r->best[TG] * r->matrix_bytes / 1e9,
               100 * ceiling_fraction(r), r->read_gbps);
        for (int k = VS_PP; o->vs && k <= VS_TG; k++) {
            printf(" %.1f |", r->best[k]);
            print_ratio(r->best[k - VS_PP], r->best[k]);
        }
        printf("\n");
    }
}

static void print_json(const result *res, int n, const options *o)
{
    printf("{\"pp\": %d, \"tg\": %d, \"reps\": %d, \"results\": [\n", o->pp, o->tg, o->reps);
    for (int i = 0; i < n; i++) {
        const result *r = &res[i];
        static const char *const name[N_SERIES] = { "pp", "tg", "llama_pp", "llama_tg", "vs_pp", "vs_tg" };
        printf("  {\"model\": \"%s\", \"kernels\": \"%s\", \"threads\": %d, \"matrix_bytes\": %.0f, "
               "\"read_gbps\": %.4g, \"tg_fraction_of_read_bw\": %.3f", base_name(r->file), r->kernels,
               r->threads, r->matrix_bytes, r->read_gbps, ceiling_fraction(r));
        for (int k = 0; k < N_SERIES; k++)
            if ((k != LLAMA_PP && k != LLAMA_TG) || o->llama)
                if ((k != VS_PP && k != VS_TG) || o->vs)
                    printf(", \"%s_tok_s\": %.4g, \"%s_tok_s_median\": %.4g", name[k], r->best[k],
                           name[k], r->median[k]);
        printf("}%s\n", i + 1 < n ? "," : "");
    }
    printf("]}\n");
}

/* -------------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench-model [options] MODEL.gguf...\n"
            "Prompt processing and generation tokens/s of whole models (see the source).\n"
            "  --threads LIST  comma-separated thread counts (default 1,2)\n"
            "  --pp N          prompt tokens (default 512; 0 skips)\n"
            "  --tg N          generated tokens (default 128; 0 skips)\n"
            "  --reps N        measured runs of each, the best reported (default 5)\n"
            "  --weights W     auto (default: int8, 2- to 6-bit matrices as in the file), int8\n"
            "                  (those as int8 too) or f32\n"
            "  --vs-weights W  also run copse with weights W, taking turns, with the ratios\n"
            "  --json          JSON instead of a markdown table\n"
            "LLAMA_BENCH=path/to/llama-bench runs llama.cpp on the same files.\n"
            "COPSE_ISA forces copse's int8 kernel tier.\n");
}

static int parse_threads(const char *s, options *o)
{
    o->n_threads = 0;
    for (char *end; *s && o->n_threads < MAX_THREADS; s = *end ? end + 1 : end) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1024 || (*end && *end != ','))
            return -1;
        o->threads[o->n_threads++] = (int)v;
    }
    return o->n_threads ? 0 : -1;
}

static int parse_count(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Returns the index of the first file argument, or -1. */
static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){ .pp = 512, .tg = 128, .reps = 5, .threads = { 1, 2 }, .n_threads = 2 };
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        } else if (!v) {
            return -1;
        } else if (!strcmp(a, "--threads")) {
            bad = parse_threads(v, o);
        } else if (!strcmp(a, "--pp")) {
            bad = parse_count(v, 0, 4096, &o->pp);
        } else if (!strcmp(a, "--tg")) {
            bad = parse_count(v, 0, 4096, &o->tg);
        } else if (!strcmp(a, "--reps")) {
            bad = parse_count(v, 1, MAX_REPS, &o->reps);
        } else if (!strcmp(a, "--weights")) {
            bad = bench_weights(v, &o->weights_f32[0], &o->weights_8bit[0]);
        } else if (!strcmp(a, "--vs-weights")) {
            bad = bench_weights(v, &o->weights_f32[1], &o->weights_8bit[1]);
            o->vs = v;
        } else {
            return -1;
        }
        if (bad)
            return -1;
        i++;
    }
    o->llama = getenv("LLAMA_BENCH");
    if (o->llama && !*o->llama)
        o->llama = NULL;
    return i < argc && (o->pp || o->tg) ? i : -1;
}

int main(int argc, char **argv)
{
    options o;
    int first = parse_args(argc, argv, &o);
    if (first < 0) {
        usage(stderr);
        return 2;
    }
    double gbps[MAX_THREADS];
    for (int t = 0; t < o.n_threads; t++)
        gbps[t] = bench_read_gbps(o.threads[t], 1.0);
    int n = 0;
    result *res = calloc((size_t)(argc - first) * o.n_threads, sizeof *res);
    if (!res)
        die("bench-model", "out of memory");
    for (int fi = first; fi < argc; fi++) {
        copse_model *m[2] = { NULL, NULL };
        for (int i = 0; i < (o.vs ? 2 : 1); i++) {
            copse_model_params mp = copse_model_default_params();
            mp.weights_f32 = o.weights_f32[i];
            mp.weights_8bit = o.weights_8bit[i];
            copse_error err;
            if (copse_model_load(argv[fi], &mp, &m[i], &err))
                die(argv[fi], err.msg);
        }
        copse_model_info info;
        copse_model_get_info(m[0], &info);
        for (int t = 0; t < o.n_threads; t++) {
            result *r = &res[n++];
            r->file = argv[fi];
            snprintf(r->kernels, sizeof r->kernels, "%s%s%s%s%s%s", info.isa ? info.isa : "f32",
                     info.n_matrices_2bit ? "+2bit" : "",
                     info.n_matrices_3bit ? "+3bit" : "", info.n_matrices_4bit ? "+4bit" : "",
                     info.n_matrices_5bit ? "+5bit" : "", info.n_matrices_6bit ? "+6bit" : "");
            r->threads = o.threads[t];
            r->matrix_bytes = (double)model_matrix_bytes(m[0]);
            r->read_gbps = gbps[t];
            fprintf(stderr, "bench-model: %s, %d threads...\n", base_name(argv[fi]), r->threads);
            run_case(argv[fi], m, &o, r);
        }
        copse_model_free(m[0]);
        copse_model_free(m[1]);
    }
    if (o.json)
        print_json(res, n, &o);
    else
        print_markdown(res, n, &o);
    free(res);
    return 0;
}
