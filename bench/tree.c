/*
** bench-tree: branches that share a prompt, the workload of tree search.
**
** Per model and branch count B: decode a prompt of P tokens, fork B
** branches from it, then G steps, each one batch of one token per branch
** (logits for every branch, tokens fixed in advance: no sampling, as
** llama-batched-bench does it). Reported:
**   shared    that, as copse runs it: prefill tokens/s, aggregate
**             generation tokens/s, end-to-end seconds, KV bytes in use
**   unshared  the same with nothing shared in the KV cache: every branch
**             prefills the prompt itself; generation still one batch per
**             step
**   alone     every branch on its own, one after the other (prefill, then
**             G single-token steps): B times one measured branch
**   llama.cpp llama-batched-bench -npp P -ntg G -npl LIST -pps -kvu -fa off
**             on the same file, when LLAMA_BATCHED_BENCH names the binary
** Each figure is the best of --reps repetitions, the configurations
** taking turns (llama.cpp's included). The machine may be shared and
** noisy: compare ratios from one run.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "copse.h"
#include "bench.h"

#define MAX_B 64

typedef struct opts {
    int  json, threads, prompt, gen, reps, n_b, b[MAX_B];
    int  shared_only;   /* skip the unshared and alone baselines (for profiling) */
    int  weights_f32, weights_8bit;   /* --weights */
    const char *models[8];
    int  n_models;
} opts;

typedef struct run {
    int    prefill_tokens;
    double prefill_s, gen_s;     /* end to end: their sum */
    double gen_cpu_s;            /* CPU time of the generation, all threads */
    uint64_t kv_bytes;
} run;

typedef struct peer {
    int    ok;
    double pp_tps, gen_tps, total_s;
} peer;

typedef struct result {
    int  b;
    run  shared, unshared, alone;
    peer llama;
} result;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static double cpu_now(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* what may be NULL when the message already names the subject (a path) */
static void die(const char *what, const copse_error *e)
{
    fprintf(stderr, "bench-tree: %s%s%s\n", what ? what : "", what ? ": " : "",
            e ? e->msg : "out of memory");
    exit(1);
}

/* ---------------------------------------------------------------- copse */

typedef struct bench {
    const opts  *o;
    copse_model *m;
    copse_ctx   *c;
    int          n_vocab;
    int32_t     *prompt;
} bench;

static int32_t token_of(const bench *k, int step, int branch)
{
    return (int32_t)(((uint64_t)step * 2654435761u + (uint64_t)branch * 40503u + 17) % (uint64_t)k->n_vocab);
}

static void prefill(bench *k, copse_seq *s)
{
    copse_error e;
    if (copse_decode_tokens(k->c, s, k->prompt, k->o->prompt, 0, &e))
        die("prefill", &e);
}

/* G steps of one batch over the n branches. */
static void generate(bench *k, copse_seq **br, int n)
{
    int32_t tok[MAX_B];
    uint8_t want[MAX_B];
    memset(want, COPSE_WANT_LOGITS, sizeof want);
    for (int step = 0; step < k->o->gen; step++) {
        for (int i = 0; i < n; i++)
            tok[i] = token_of(k, step, i);
        copse_batch b = { n, br, tok, want };
        copse_error e;
        if (copse_decode(k->c, &b, &e))
            die("generation step", &e);
    }
}

static uint64_t kv_bytes(const bench *k)
{
    copse_kv_stats st;
    copse_kv_stats_get(k->c, &st);
    return st.bytes_used;
}

static void free_all(copse_seq **br, int n)
{
    for (int i = 0; i < n; i++)
        copse_seq_free(br[i]);
}

static run shared(bench *k, int n)
{
    copse_seq *br[MAX_B], *root = copse_seq_new(k->c);
    run r = { .prefill_tokens = k->o->prompt };
    double t0 = now();
    prefill(k, root);
    r.prefill_s = now() - t0;
    t0 = now();
    for (int i = 0; i < n; i++)
        if (!(br[i] = copse_seq_fork(root)))
            die("fork", NULL);
    copse_seq_free(root);
    double c0 = cpu_now();
    generate(k, br, n);
    r.gen_cpu_s = cpu_now() - c0;
    r.gen_s = now() - t0;
    r.kv_bytes = kv_bytes(k);
    free_all(br, n);
    return r;
}

static run unshared(bench *k, int n)
{
    copse_seq *br[MAX_B];
    run r = { .prefill_tokens = n * k->o->prompt };
    double t0 = now();
    for (int i = 0; i < n; i++) {
        br[i] = copse_seq_new(k->c);
        prefill(k, br[i]);
    }
    r.prefill_s = now() - t0;
    t0 = now();
    generate(k, br, n);
    r.gen_s = now() - t0;
    r.kv_bytes = kv_bytes(k);
    free_all(br, n);
    return r;
}

/* One branch alone; the caller scales it by B. */
static run alone(bench *k)
{
    copse_seq *s = copse_seq_new(k->c);
    run r = { .prefill_tokens = k->o->prompt };
    double t0 = now();
    prefill(k, s);
    r.prefill_s = now() - t0;
    t0 = now();
    generate(k, &s, 1);
    r.gen_s = now() - t0;
    r.kv_bytes = kv_bytes(k);
    copse_seq_free(s);
    return r;
}

/* Fold a repetition into the best so far (an empty best takes it whole). */
static void keep_best(run *best, run r)
{
    if (!best->prefill_tokens) {
        *best = r;
        return;
    }
    best->prefill_s = r.prefill_s < best->prefill_s ? r.prefill_s : best->prefill_s;
    best->gen_s = r.gen_s < best->gen_s ? r.gen_s : best->gen_s;
    best->gen_cpu_s = r.gen_cpu_s < best->gen_cpu_s ? r.gen_cpu_s : best->gen_cpu_s;
}

/* ------------------------------------------------------------ llama.cpp */

/* Rows of llama-batched-bench's table: | PP | TG | B | N_KV | T_PP s |
** S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |. */
static void run_llama(const opts *o, const char *model, result *res, int n)
{
    const char *bin = getenv("LLAMA_BATCHED_BENCH");
    if (!bin || !*bin)
        return;
    char cmd[4096], list[512] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "", res[i].b);
    int max_b = 0;
    for (int i = 0; i < n; i++)
        max_b = res[i].b > max_b ? res[i].b : max_b;
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -npp %d -ntg %d -npl %s -pps -kvu -fa off -t %d -c %d 2>/dev/null",
             bin, model, o->prompt, o->gen, list, o->threads, o->prompt + max_b * o->gen + 256);
    fprintf(stderr, "bench-tree: %s\n", cmd);
    FILE *f = popen(cmd, "r");
    if (!f) {
        fprintf(stderr, "bench-tree: cannot run %s\n", bin);
        return;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        int pp, tg, b, nkv;
        double t_pp, s_pp, t_tg, s_tg, t, s;
        if (sscanf(line, " | %d | %d | %d | %d | %lf | %lf | %lf | %lf | %lf | %lf", &pp, &tg, &b, &nkv,
                   &t_pp, &s_pp, &t_tg, &s_tg, &t, &s) != 10)
            continue;
        for (int i = 0; i < n; i++)
            if (res[i].b == b) {   /* the best of the repetitions */
                peer *p = &res[i].llama;
                p->pp_tps = p->ok && p->pp_tps > s_pp ? p->pp_tps : s_pp;
                p->gen_tps = p->ok && p->gen_tps > s_tg ? p->gen_tps : s_tg;
                p->total_s = p->ok && p->total_s < t ? p->total_s : t;
                p->ok = 1;
            }
    }
    if (pclose(f) != 0)
        fprintf(stderr, "bench-tree: %s failed\n", bin);
}

/* --------------------------------------------------------------- output */

static double gen_tps(const opts *o, const run *r, int b)
{
    return (double)b * o->gen / r->gen_s;
}

static double total(const run *r)
{
    return r->prefill_s + r->gen_s;
}

static double mib(uint64_t bytes)
{
    return (double)bytes / (1 << 20);
}

static double prefill_tps(const run *r)
{
    return r->prefill_tokens / r->prefill_s;
}

static void print_table(FILE *out, const opts *o, const char *model, const result *res, int n)
{
    const result *one = NULL;
    for (int i = 0; i < n; i++)
        one = res[i].b == 1 ? &res[i] : one;
    fprintf(out, "\n### %s — prompt %d, %d tokens per branch, %d threads\n\n", model, o->prompt, o->gen, o->threads);
    fprintf(out, "| B | prefill tok/s | gen tok/s | end-to-end s | KV MiB | unshared: gen tok/s | e2e s | KV MiB "
           "| alone e2e s | llama.cpp gen tok/s | e2e s | gen ÷ llama.cpp | gen ÷ B=1 | e2e speed-up vs unshared "
           "| vs alone |\n");
    fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const result *r = &res[i];
        char lg[32] = "–", lt[32] = "–", lr[32] = "–", r1[32] = "–";
        if (one)
            snprintf(r1, sizeof r1, "%.2f×", gen_tps(o, &r->shared, r->b) / gen_tps(o, &one->shared, 1));
        if (r->llama.ok) {
            snprintf(lg, sizeof lg, "%.1f", r->llama.gen_tps);
            snprintf(lt, sizeof lt, "%.2f", r->llama.total_s);
            snprintf(lr, sizeof lr, "%.2f×", gen_tps(o, &r->shared, r->b) / r->llama.gen_tps);
        }
        fprintf(out, "| %d | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f | %.1f | %.2f | %s | %s | %s | %s | %.2f× | %.2f× |\n",
               r->b, prefill_tps(&r->shared), gen_tps(o, &r->shared, r->b), total(&r->shared),
               mib(r->shared.kv_bytes), gen_tps(o, &r->unshared, r->b), total(&r->unshared),
               mib(r->unshared.kv_bytes), total(&r->alone), lg, lt, lr, r1,
               total(&r->unshared) / total(&r->shared), total(&r->alone) / total(&r->shared));
    }
}

static void print_run_json(const char *name, const opts *o, const run *r, int b, int last)
{
    printf("        \"%s\": {\"prefill_s\": %.4f, \"prefill_tps\": %.2f, \"gen_s\": %.4f, \"gen_tps\": %.2f, "
           "\"e2e_s\": %.4f, \"kv_bytes\": %llu}%s\n", name, r->prefill_s,
           prefill_tps(r), r->gen_s, gen_tps(o, r, b),
           total(r), (unsigned long long)r->kv_bytes, last ? "" : ",");
}

static void print_json(const opts *o, const char *model, const result *res, int n, int last_model)
{
    printf("    {\"model\": \"%s\", \"runs\": [\n", model);
    for (int i = 0; i < n; i++) {
        const result *r = &res[i];
        printf("      {\"branches\": %d,\n", r->b);
        print_run_json("shared", o, &r->shared, r->b, 0);
        print_run_json("unshared", o, &r->unshared, r->b, 0);
        print_run_json("alone", o, &r->alone, r->b, !r->llama.ok);
        if (r->llama.ok)
            printf("        \"llama_cpp\": {\"prefill_tps\": %.2f, \"gen_tps\": %.2f, \"e2e_s\": %.4f}\n",
                   r->llama.pp_tps, r->llama.gen_tps, r->llama.total_s);
        printf("      }%s\n", i + 1 < n ? "," : "");
    }
    printf("    ]}%s\n", last_model ? "" : ",");
}

/* With --shared-only: a line per branch count, the best step time and
** the best CPU time per step (all threads: on a busy machine, less
** noisy than the wall time). */
static void print_steps(const opts *o, const char *model, const result *res, int n)
{
    for (int i = 0; i < n; i++)
        printf("%s B=%d: %.3f ms per generation step, %.3f ms CPU, prefill %.1f ms\n", model, res[i].b,
               1e3 * res[i].shared.gen_s / o->gen, 1e3 * res[i].shared.gen_cpu_s / o->gen,
               1e3 * res[i].shared.prefill_s);
}

/* ----------------------------------------------------------------- main */

static void bench_model(const opts *o, const char *path, result *res)
{
    bench k = { .o = o };
    copse_error e;
    copse_model_params mp = copse_model_default_params();
    mp.weights_f32 = o->weights_f32;
    mp.weights_8bit = o->weights_8bit;
    if (copse_model_load(path, &mp, &k.m, &e))
        die(NULL, &e);
    k.n_vocab = copse_n_vocab(k.m);
    int max_b = 0;
    for (int i = 0; i < o->n_b; i++)
        max_b = o->b[i] > max_b ? o->b[i] : max_b;
    copse_ctx_params p = copse_ctx_default_params();
    p.n_threads = o->threads;
    p.n_ctx = o->prompt + o->gen;
    p.kv_tokens = max_b * (o->prompt + o->gen + 32);
    if (copse_ctx_new(k.m, &p, &k.c, &e))
        die("context", &e);
    k.prompt = malloc(sizeof *k.prompt * (size_t)o->prompt);
    if (!k.prompt)
        die("prompt", NULL);
    for (int i = 0; i < o->prompt; i++)
        k.prompt[i] = token_of(&k, -1 - i, 0);

    /* the configurations take turns, so a burst of load elsewhere hits
    ** all of them; each keeps its best time */
    run one = { 0 };
    for (int rep = 0; rep < o->reps; rep++) {
        if (!o->shared_only)
            keep_best(&one, alone(&k));
        for (int i = 0; i < o->n_b; i++) {
            int b = o->b[i];
            fprintf(stderr, "bench-tree: %s B=%d (%d/%d)\n", path, b, rep + 1, o->reps);
            res[i].b = b;
            keep_best(&res[i].shared, shared(&k, b));
            if (!o->shared_only)
                keep_best(&res[i].unshared, unshared(&k, b));
        }
        run_llama(o, path, res, o->n_b);
    }
    for (int i = 0; i < o->n_b; i++)
        res[i].alone = (run){ .prefill_tokens = one.prefill_tokens * res[i].b, .prefill_s = one.prefill_s * res[i].b,
                              .gen_s = one.gen_s * res[i].b, .kv_bytes = one.kv_bytes };
    free(k.prompt);
    copse_ctx_free(k.c);
    copse_model_free(k.m);
}

static int parse_list(const char *s, int *out, int cap)
{
    int n = 0;
    for (char *end; *s && n < cap; s = *end ? end + 1 : end) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > MAX_B || (*end && *end != ','))
            return 0;
        out[n++] = (int)v;
    }
    return n;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-tree [--json] [-t N] [--branches LIST] [--prompt P] [--gen G] [--reps R] MODEL.gguf...\n"
            "  -t N            threads (default 2)\n"
            "  --branches LIST branch counts, comma-separated, each 1..%d (default 1,4,8,16,32)\n"
            "  --prompt P      shared prompt tokens (default 256)\n"
            "  --gen G         tokens generated per branch (default 64)\n"
            "  --reps R        repetitions, taking turns; each figure is the best (default 2)\n"
            "  --weights W     auto (default: int8, 2- to 6-bit matrices as in the file), int8 or f32\n"
            "  --json          JSON on stdout, the markdown tables on stderr\n"
            "  --shared-only   run only the shared configuration (to profile it): its step times, no table\n"
            "LLAMA_BATCHED_BENCH=path/to/llama-batched-bench adds llama.cpp on the same files.\n", MAX_B);
    exit(2);
}

int main(int argc, char **argv)
{
    opts o = { .threads = 2, .prompt = 256, .gen = 64, .reps = 2 };
    o.n_b = parse_list("1,4,8,16,32", o.b, MAX_B);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--json"))
            o.json = 1;
        else if (!strcmp(a, "--shared-only"))
            o.shared_only = 1;
        else if (!strcmp(a, "-t") && more)
            o.threads = atoi(argv[++i]);
        else if (!strcmp(a, "--prompt") && more)
            o.prompt = atoi(argv[++i]);
        else if (!strcmp(a, "--gen") && more)
            o.gen = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && more)
            o.reps = atoi(argv[++i]);
        else if (!strcmp(a, "--weights") && more) {
            if (bench_weights(argv[++i], &o.weights_f32, &o.weights_8bit))
                usage();
        }
        else if (!strcmp(a, "--branches") && more) {
            if (!(o.n_b = parse_list(argv[++i], o.b, MAX_B)))
                usage();
        } else if (a[0] != '-' && o.n_models < 8)
            o.models[o.n_models++] = a;
        else
            usage();
    }
    if (!o.n_models || o.threads < 1 || o.prompt < 1 || o.gen < 1 || o.reps < 1)
        usage();
    if (o.json)
        printf("{\"threads\": %d, \"prompt\": %d, \"gen\": %d, \"models\": [\n", o.threads, o.prompt, o.gen);
    for (int i = 0; i < o.n_models; i++) {
        result res[MAX_B];
        memset(res, 0, sizeof res);
        bench_model(&o, o.models[i], res);
        if (o.shared_only) {
            print_steps(&o, o.models[i], res, o.n_b);
            continue;
        }
        if (o.json)
            print_json(&o, o.models[i], res, o.n_b, i + 1 == o.n_models);
        print_table(o.json ? stderr : stdout, &o, o.models[i], res, o.n_b);
    }
    if (o.json)
        printf("]}\n");
    return 0;
}
