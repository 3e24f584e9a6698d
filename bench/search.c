/*
** bench-search: what sharing the tree saves a search. One question; for
** each N, beam search (width m) and weighted best-of-N run twice with the
** same seeds:
**   copse   as copse_solve runs them: branches forked from one prompt, the
**           verifier's sequences forked in step, each step encoded once
**   naive   the same search as search-and-learn runs it: before every step
**           each candidate's prompt and path are encoded from scratch, by
**           the policy and by the verifier (still batched)
** Reported per run: wall seconds, tokens the policy sampled, positions the
** policy decoded (prompts included), tokens the verifier encoded, FLOPs
** (copse's estimate), and the speedup naive / copse. Random models write
** random text, so steps run to --max-step-tokens and paths to --max-steps:
** the work is fixed by those, whatever the model.
** The machine may be shared and noisy: compare ratios from one run.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "copse.h"
#include "search.h"

#define MAX_N 16

typedef struct opts {
    const char *policy, *prm, *question;
    int json, threads, reps, n[MAX_N], n_n, m, max_steps, step_tokens;
} opts;

typedef struct side {
    double wall_s, flops;
    int64_t sampled, decoded, verified;
} side;

typedef struct row {
    const char *strategy;
    int n;
    side copse, naive;
} row;

static void die(const char *what, const copse_error *e)
{
    fprintf(stderr, "bench-search: %s: %s\n", what, e ? e->msg : "bad arguments");
    exit(1);
}

/* One search; its wall time is the best of o->reps runs (the rest is the
** same every run: same seeds). */
static side run(copse_model *pm, copse_verifier *v, const opts *o, int strategy, int n, int naive)
{
    side best = { 0 };
    copse_solve_params p = copse_solve_default_params();
    p.strategy = strategy;
    p.n = n;
    p.m = o->m < n ? o->m : n;
    p.max_steps = o->max_steps;
    p.max_step_tokens = o->step_tokens;
    p.n_threads = o->threads;
    p.sampler.seed = 1;
    for (int rep = 0; rep < o->reps; rep++) {
        copse_result *r;
        copse_error err;
        if (solve_run(pm, v, o->question, &p, naive, NULL, &r, &err))
            die("solve", &err);
        copse_result_info in;
        copse_result_get_info(r, &in);
        side s = { in.budget.wall_s, in.budget.flops, in.budget.policy_tokens, in.budget.policy_rows,
                   in.budget.verifier_tokens };
        if (!rep || s.wall_s < best.wall_s)
            best = s;
        copse_result_free(r);
    }
    return best;
}

static void print_markdown(const row *rows, int n, const opts *o)
{
    printf("bench-search: %s with %s, m %d, %d steps of %d tokens, %d threads, best of %d\n\n", o->policy,
           o->prm, o->m, o->max_steps, o->step_tokens, o->threads, o->reps);
    printf("| strategy | N | copse s | naive s | speedup | sampled | policy positions copse / naive "
           "| verifier tokens copse / naive | GFLOP copse / naive |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        printf("| %s | %d | %.3f | %.3f | %.2fx | %lld | %lld / %lld | %lld / %lld | %.2f / %.2f |\n",
               r->strategy, r->n, r->copse.wall_s, r->naive.wall_s, r->naive.wall_s / r->copse.wall_s,
               (long long)r->copse.sampled, (long long)r->copse.decoded, (long long)r->naive.decoded,
               (long long)r->copse.verified, (long long)r->naive.verified, r->copse.flops / 1e9,
               r->naive.flops / 1e9);
    }
}

static void print_side(const char *name, const side *s)
{
    printf("\"%s\":{\"wall_s\":%.4f,\"sampled\":%lld,\"policy_positions\":%lld,\"verifier_tokens\":%lld,"
           "\"flops\":%.6g}", name, s->wall_s, (long long)s->sampled, (long long)s->decoded,
           (long long)s->verified, s->flops);
}

static void print_json(const row *rows, int n, const opts *o)
{
    printf("{\"policy\":\"%s\",\"prm\":\"%s\",\"m\":%d,\"max_steps\":%d,\"max_step_tokens\":%d,\"threads\":%d,"
           "\"runs\":[", o->policy, o->prm, o->m, o->max_steps, o->step_tokens, o->threads);
    for (int i = 0; i < n; i++) {
        printf("%s{\"strategy\":\"%s\",\"n\":%d,", i ? "," : "", rows[i].strategy, rows[i].n);
        print_side("copse", &rows[i].copse);
        putchar(',');
        print_side("naive", &rows[i].naive);
        printf(",\"speedup\":%.3f}", rows[i].naive.wall_s / rows[i].copse.wall_s);
    }
    printf("]}\n");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-search [--json] [-t N] [--reps R] [--n LIST] [--m M] [--max-steps S] [--step-tokens T]\n"
            "                    [--question Q] -m POLICY.gguf --prm PRM.gguf\n"
            "  --n LIST         N values, comma-separated (default 4,16,64)\n"
            "  --m M            beam width (default 4)\n"
            "  --max-steps S    steps per solution (default 6)\n"
            "  --step-tokens T  tokens per step at most (default 16)\n"
            "  -t N             threads (default 1: on a busy machine more can be slower)\n"
            "  --reps R         best wall time of R runs (default 3)\n"
            "  --json           JSON instead of a markdown table\n");
    exit(2);
}

static void parse(int argc, char **argv, opts *o)
{
    const bench_opt opt[] = {
        { "--json", .flag = &o->json }, { "-m", .str = &o->policy }, { "--prm", .str = &o->prm },
        { "--question", .str = &o->question }, { "-t", .num = &o->threads, .lo = 1, .hi = 256 },
        { "--reps", .num = &o->reps, .lo = 1, .hi = 100 }, { "--m", .num = &o->m, .lo = 1, .hi = 64 },
        { "--max-steps", .num = &o->max_steps, .lo = 1, .hi = 256 },
        { "--step-tokens", .num = &o->step_tokens, .lo = 1, .hi = 4096 },
        { "--n", .list = o->n, .n_list = &o->n_n, .cap = MAX_N, .lo = 1, .hi = 4096 },
        { NULL },
    };
    if (bench_parse(argc, argv, opt) || !o->policy || !o->prm)
        usage();
}

int main(int argc, char **argv)
{
    opts o = { .question = "Rosa has 24 apples. Rosa has 3 times as many apples as Eva. Nora has 9 more "
                           "apples than Eva. How many more apples does Nora have than Eva?",
               .threads = 1, .reps = 3, .n = { 4, 16, 64 }, .n_n = 3, .m = 4, .max_steps = 6, .step_tokens = 16 };
    parse(argc, argv, &o);
    copse_model *pm;
    copse_verifier *v;
    copse_error err;
    if (copse_model_load(o.policy, NULL, &pm, &err))
        die(o.policy, &err);
    if (copse_verifier_load(o.prm, NULL, &v, &err))
        die(o.prm, &err);
    row rows[2 * MAX_N];
    int n = 0;
    for (int i = 0; i < o.n_n; i++) {
        static const int strategies[] = { COPSE_BEAM, COPSE_WEIGHTED };
        for (int s = 0; s < 2; s++) {
            if (strategies[s] == COPSE_BEAM && o.n[i] % (o.m < o.n[i] ? o.m : o.n[i]))
                continue;
            row *r = &rows[n++];
            r->strategy = copse_strategy_name(strategies[s]);
            r->n = o.n[i];
            r->copse = run(pm, v, &o, strategies[s], o.n[i], 0);
            r->naive = run(pm, v, &o, strategies[s], o.n[i], 1);
            fprintf(stderr, "bench-search: %s N=%d: %.3f s, naive %.3f s\n", r->strategy, r->n,
                    r->copse.wall_s, r->naive.wall_s);
        }
    }
    if (o.json)
        print_json(rows, n, &o);
    else
        print_markdown(rows, n, &o);
    copse_verifier_free(v);
    copse_model_free(pm);
    return 0;
}
