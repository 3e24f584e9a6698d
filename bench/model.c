/*
** bench-model: whole-model speed as llama-bench measures it, on GGUF files
** (for the figures, smol and qwen05 shapes in Q8_0 from mkmodel):
**   pp   one batch of N random tokens into an empty sequence (prompt)
**   tg   N tokens decoded one at a time into an empty sequence (generation)
** tokens/s, the median of --reps runs after a warm-up, at each thread count.
** Generation must stream every matrix byte once per token, so its ceiling
** is the read bandwidth measured in this run divided by those bytes; the
** table gives the fraction of that ceiling reached.
**
** When LLAMA_BENCH names a llama-bench binary it runs on the same file
** right after copse (-t N -p PP -n TG -r REPS -o json), and the table gives
** copse / llama.cpp ratios (medians of its samples too). The machine may be
** shared: compare ratios from one run, not absolute figures across runs.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "copse.h"
#include "model.h"
#include "bench.h"

#define MAX_THREADS 8

typedef struct options {
    int json, pp, tg, reps, weights_f32;
    int threads[MAX_THREADS], n_threads;
    const char *llama;
} options;

typedef struct result {
    const char *file;
    const char *kernels;
    int threads;
    double pp, tg;               /* median tokens/s */
    double llama_pp, llama_tg;   /* 0 when not run */
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

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------- copse runs */

/* Seconds to decode tok[0..n) into a fresh sequence, in one batch or one
** token at a time. */
static double timed_decode(copse_ctx *ctx, const int32_t *tok, int n, int one_by_one)
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
    return t;
}

/* Median tokens/s of reps runs after one unmeasured. */
static double tokens_per_s(copse_ctx *ctx, const int32_t *tok, int n, int one_by_one, int reps)
{
    double v[64];
    timed_decode(ctx, tok, n, one_by_one);
    for (int r = 0; r < reps; r++)
        v[r] = n / timed_decode(ctx, tok, n, one_by_one);
    return median(v, reps);
}

static void run_copse(const char *file, const copse_model *m, const options *o, result *r)
{
    copse_model_info info;
    copse_model_get_info(m, &info);
    copse_ctx_params cp = copse_ctx_default_params();
    cp.n_threads = r->threads;
    cp.n_ctx = o->pp > o->tg ? o->pp : o->tg;
    copse_ctx *ctx;
    copse_error err;
    if (copse_ctx_new((copse_model *)m, &cp, &ctx, &err))
        die(file, err.msg);
    int n = o->pp > o->tg ? o->pp : o->tg;
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    if (!tok)
        die(file, "out of memory");
    uint64_t s = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % (uint64_t)info.n_vocab);
    }
    r->pp = o->pp ? tokens_per_s(ctx, tok, o->pp, 0, o->reps) : 0;
    r->tg = o->tg ? tokens_per_s(ctx, tok, o->tg, 1, o->reps) : 0;
    free(tok);
    copse_ctx_free(ctx);
}

/* -------------------------------------------------------- the llama peer */

/* The median of the "samples_ts" array that follows p, else "avg_ts". */
static double llama_speed(const char *p)
{
    const char *s = strstr(p, "\"samples_ts\"");
    const char *next = strstr(p + 1, "\"n_prompt\"");
    double v[64];
    int n = 0;
    if (s && (!next || s < next) && (s = strchr(s, '['))) {
        for (s++; n < 64; s++) {
            char *end;
            v[n] = strtod(s, &end);
            if (end == s)
                break;
            n++;
            s = end + strspn(end, " \n");
            if (*s != ',')
                break;
        }
    }
    if (n)
        return median(v, n);
    s = strstr(p, "\"avg_ts\"");
    return s ? strtod(s + 9, NULL) : 0;
}

static void run_llama(const char *file, const options *o, result *r)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -t %d -p %d -n %d -r %d -o json 2>/dev/null",
             o->llama, file, r->threads, o->pp, o->tg, o->reps);
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
    for (const char *p = out; (p = strstr(p, "\"n_prompt\"")); p++) {
        long np = strtol(strchr(p, ':') + 1, NULL, 10);
        const char *g = strstr(p, "\"n_gen\"");
        long ng = g ? strtol(strchr(g, ':') + 1, NULL, 10) : -1;
        if (np == o->pp && ng == 0)
            r->llama_pp = llama_speed(p);
        else if (np == 0 && ng == o->tg)
            r->llama_tg = llama_speed(p);
    }
    free(out);
}

/* ------------------------------------------------------------------ output */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static double ceiling_fraction(const result *r)
{
    return r->read_gbps > 0 ? r->tg * r->matrix_bytes / (r->read_gbps * 1e9) : 0;
}

static void print_ratio(double a, double b)
{
    if (b > 0)
        printf(" %.2f |", a / b);
    else
        printf(" - |");
}

static void print_markdown(const result *res, int n, const options *o)
{
    int peer = o->llama != NULL;
    printf("| model | kernels | threads | pp%d tok/s |%s tg%d tok/s |%s tg GB/s | of read bw |\n",
           o->pp, peer ? " llama.cpp | ratio |" : "", o->tg, peer ? " llama.cpp | ratio |" : "");
    printf("|---|---|---|---|%s---|%s---|---|\n", peer ? "---|---|" : "", peer ? "---|---|" : "");
    for (int i = 0; i < n; i++) {
        const result *r = &res[i];
        printf("| %s | %s | %d | %.1f |", base_name(r->file), r->kernels, r->threads, r->pp);
        if (peer) {
            printf(" %.1f |", r->llama_pp);
            print_ratio(r->pp, r->llama_pp);
        }
        printf(" %.1f |", r->tg);
        if (peer) {
            printf(" %.1f |", r->llama_tg);
            print_ratio(r->tg, r->llama_tg);
        }
        printf(" %.1f | %.0f%% of %.1f |\n", r->tg * r->matrix_bytes / 1e9, 100 * ceiling_fraction(r),
               r->read_gbps);
    }
}

static void print_json(const result *res, int n, const options *o)
{
    printf("{\"pp\": %d, \"tg\": %d, \"reps\": %d, \"results\": [\n", o->pp, o->tg, o->reps);
    for (int i = 0; i < n; i++) {
        const result *r = &res[i];
        printf("  {\"model\": \"%s\", \"kernels\": \"%s\", \"threads\": %d, \"pp_tok_s\": %.4g, "
               "\"tg_tok_s\": %.4g, \"matrix_bytes\": %.0f, \"read_gbps\": %.4g, "
               "\"tg_fraction_of_read_bw\": %.3f",
               base_name(r->file), r->kernels, r->threads, r->pp, r->tg, r->matrix_bytes,
               r->read_gbps, ceiling_fraction(r));
        if (o->llama)
            printf(", \"llama_pp_tok_s\": %.4g, \"llama_tg_tok_s\": %.4g", r->llama_pp, r->llama_tg);
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
            "  --reps N        measured runs of each, median reported (default 5)\n"
            "  --weights W     int8 (default) or f32\n"
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
            bad = parse_count(v, 1, 64, &o->reps);
        } else if (!strcmp(a, "--weights") && (!strcmp(v, "f32") || !strcmp(v, "int8"))) {
            o->weights_f32 = !strcmp(v, "f32");
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
        copse_model_params mp = copse_model_default_params();
        mp.weights_f32 = o.weights_f32;
        copse_model *m;
        copse_error err;
        if (copse_model_load(argv[fi], &mp, &m, &err))
            die(argv[fi], err.msg);
        copse_model_info info;
        copse_model_get_info(m, &info);
        for (int t = 0; t < o.n_threads; t++) {
            result *r = &res[n++];
            r->file = argv[fi];
            r->kernels = info.isa ? info.isa : "f32";
            r->threads = o.threads[t];
            r->matrix_bytes = (double)model_matrix_bytes(m);
            r->read_gbps = gbps[t];
            fprintf(stderr, "bench-model: %s, %d threads...\n", base_name(argv[fi]), r->threads);
            run_copse(argv[fi], m, &o, r);
            if (o.llama)
                run_llama(argv[fi], &o, r);
        }
        copse_model_free(m);
    }
    if (o.json)
        print_json(res, n, &o);
    else
        print_markdown(res, n, &o);
    free(res);
    return 0;
}
