/*
** bench-crowd: what answering many questions side by side saves. Q
** questions, each searched with N generations, first one after another
** (copse_solve each: the weights read once per step of one question),
** then as a crowd of P at a time (copse_crowd_run: the steps of P
** questions in one batch). Reported per N and P: wall seconds, questions
** and sampled tokens per second, the speed-up over one at a time, and how
** many crowd results equal their lone runs (all of them, or the crowd is
** wrong). Random models write random text, so every solution runs to
** --max-tokens: the work is fixed, whatever the model.
** The machine may be shared and noisy: each figure is the best of --reps
** rounds, the two ways taking turns within a round.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "copse.h"

#define MAX_LIST 16
#define MAX_Q    256

typedef struct opts {
    const char *policy, *prm;
    int json, threads, reps, questions, max_tokens, strategy;
    int n[MAX_LIST], n_n, par[MAX_LIST], n_par;
} opts;

typedef struct row {
    int n, parallel, same;
    double wall_s, alone_s;
    int64_t tokens;
} row;

typedef struct job_set {
    const opts        *o;
    copse_model       *pm;
    copse_verifier    *v;
    copse_solve_params p;
    char             (*q)[96];
    copse_result      *res[MAX_Q];
} job_set;

static void die(const char *what, const copse_error *e)
{
    fprintf(stderr, "bench-crowd: %s: %s\n", what, e ? e->msg : "bad arguments");
    exit(1);
}

static int job(copse_crowd *crowd, int i, void *user)
{
    job_set *js = user;
    copse_error err;
    if (copse_crowd_solve(crowd, js->pm, js->v, js->q[i], &js->p, &js->res[i], &err))
        die("solve", &err);
    return 0;
}

/* Whether two results of the same question and seed are the same search. */
static int same(const copse_result *a, const copse_result *b)
{
    copse_result_info ia, ib;
    copse_result_get_info(a, &ia);
    copse_result_get_info(b, &ib);
    if (strcmp(ia.answer, ib.answer) || ia.n_steps != ib.n_steps || ia.budget.policy_tokens != ib.budget.policy_tokens)
        return 0;
    for (int k = 0; k < ia.n_steps; k++) {
        copse_step x, y;
        copse_result_step(a, k, &x);
        copse_result_step(b, k, &y);
        if (x.n_tokens != y.n_tokens || memcmp(x.tokens, y.tokens, (size_t)x.n_tokens * sizeof *x.tokens) ||
            memcmp(&x.score, &y.score, sizeof x.score))
            return 0;
    }
    return 1;
}

static void free_all(copse_result **r, int n)
{
    for (int i = 0; i < n; i++) {
        copse_result_free(r[i]);
        r[i] = NULL;
    }
}

/* One N: the lone runs, then each P, best of reps rounds. */
static void measure(job_set *js, int n, row *rows)
{
    const opts *o = js->o;
    copse_result *alone[MAX_Q];
    js->p.n = n;
    js->p.m = n;
    for (int k = 0; k < o->n_par; k++)
        rows[k] = (row){ .n = n, .parallel = o->par[k], .same = -1 };
    double alone_s = 0;
    for (int rep = 0; rep < o->reps; rep++) {
        double t0 = bench_now();
        for (int i = 0; i < o->questions; i++) {
            copse_error err;
            if (rep)
                copse_result_free(alone[i]);
            if (copse_solve(js->pm, js->v, js->q[i], &js->p, &alone[i], &err))
                die("solve", &err);
        }
        double t = bench_now() - t0;
        alone_s = !rep || t < alone_s ? t : alone_s;
        for (int k = 0; k < o->n_par; k++) {
            copse_error err;
            fprintf(stderr, "bench-crowd: N=%d P=%d (%d/%d)\n", n, o->par[k], rep + 1, o->reps);
            t0 = bench_now();
            if (copse_crowd_run(o->questions, o->par[k], job, js, &err))
                die("crowd", &err);
            t = bench_now() - t0;
            row *r = &rows[k];
            r->wall_s = !rep || t < r->wall_s ? t : r->wall_s;
            r->same = r->tokens = 0;
            for (int i = 0; i < o->questions; i++) {
                copse_result_info in;
                copse_result_get_info(js->res[i], &in);
                r->tokens += in.budget.policy_tokens;
                r->same += same(alone[i], js->res[i]);
            }
            free_all(js->res, o->questions);
        }
    }
    for (int k = 0; k < o->n_par; k++)
        rows[k].alone_s = alone_s;
    free_all(alone, o->questions);
}

static void print_markdown(FILE *f, const row *rows, int n, const opts *o)
{
    fprintf(f, "bench-crowd: %s%s%s, %s, %d questions, %d tokens per solution, %d threads, best of %d\n\n",
           o->policy, o->prm ? " with " : "", o->prm ? o->prm : "", copse_strategy_name(o->strategy),
           o->questions, o->max_tokens, o->threads, o->reps);
    fprintf(f, "| N | parallel | wall s | one at a time s | speed-up | questions/s | sampled tok/s | same as alone |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        fprintf(f, "| %d | %d | %.3f | %.3f | %.2fx | %.2f | %.1f | %d/%d |\n", r->n, r->parallel, r->wall_s,
               r->alone_s, r->alone_s / r->wall_s, o->questions / r->wall_s, (double)r->tokens / r->wall_s,
               r->same, o->questions);
    }
}

static void print_json(const row *rows, int n, const opts *o)
{
    printf("{\"policy\":\"%s\",\"prm\":\"%s\",\"strategy\":\"%s\",\"questions\":%d,\"max_tokens\":%d,"
           "\"threads\":%d,\"runs\":[", o->policy, o->prm ? o->prm : "", copse_strategy_name(o->strategy),
           o->questions, o->max_tokens, o->threads);
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        printf("%s{\"n\":%d,\"parallel\":%d,\"wall_s\":%.4f,\"alone_s\":%.4f,\"speedup\":%.3f,"
               "\"sampled_tokens\":%lld,\"same_as_alone\":%d}", i ? "," : "", r->n, r->parallel, r->wall_s,
               r->alone_s, r->alone_s / r->wall_s, (long long)r->tokens, r->same);
    }
    printf("]}\n");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-crowd [--json] [-t N] [--reps R] [--questions Q] [--n LIST] [--parallel LIST]\n"
            "                   [--max-tokens T] -m POLICY.gguf [--prm PRM.gguf]\n"
            "  --questions Q    questions (default 16, at most 256)\n"
            "  --n LIST         generations per question (default 1,4): majority, or weighted\n"
            "                   best-of-N with --prm\n"
            "  --parallel LIST  questions at once (default 1,4,16)\n"
            "  --max-tokens T   tokens per solution (default 48)\n"
            "  -t N             threads (default 2)\n"
            "  --reps R         best of R rounds (default 2)\n"
            "  --json           JSON on stdout, the markdown table on stderr\n");
    exit(2);
}

static void parse(int argc, char **argv, opts *o)
{
    const bench_opt opt[] = {
        { "--json", .flag = &o->json }, { "-m", .str = &o->policy }, { "--prm", .str = &o->prm },
        { "-t", .num = &o->threads, .lo = 1, .hi = 256 }, { "--reps", .num = &o->reps, .lo = 1, .hi = 100 },
        { "--questions", .num = &o->questions, .lo = 1, .hi = MAX_Q },
        { "--max-tokens", .num = &o->max_tokens, .lo = 1, .hi = 4096 },
        { "--n", .list = o->n, .n_list = &o->n_n, .cap = MAX_LIST, .lo = 1, .hi = 1024 },
        { "--parallel", .list = o->par, .n_list = &o->n_par, .cap = MAX_LIST, .lo = 1, .hi = MAX_Q },
        { NULL },
    };
    if (bench_parse(argc, argv, opt) || !o->policy)
        usage();
}

int main(int argc, char **argv)
{
    opts o = { .threads = 2, .reps = 2, .questions = 16, .max_tokens = 48, .n = { 1, 4 }, .n_n = 2,
               .par = { 1, 4, 16 }, .n_par = 3 };
    parse(argc, argv, &o);
    job_set js = { .o = &o };
    copse_error err;
    if (copse_model_load(o.policy, NULL, &js.pm, &err))
        die(o.policy, &err);
    if (o.prm && copse_verifier_load(o.prm, NULL, &js.v, &err))
        die(o.prm, &err);
    o.strategy = js.v ? COPSE_WEIGHTED : COPSE_MAJORITY;
    static char q[MAX_Q][96];
    for (int i = 0; i < o.questions; i++)
        snprintf(q[i], sizeof q[i], "Ana has %d shells and finds %d more. How many shells does she have now?",
                 3 + i * 7 % 40, 2 + i * 5 % 30);
    js.q = q;
    js.p = copse_solve_default_params();
    js.p.strategy = o.strategy;
    js.p.max_tokens = o.max_tokens;
    js.p.max_step_tokens = o.max_tokens;
    js.p.n_threads = o.threads;
    js.p.sampler.seed = 1;
    row rows[MAX_LIST * MAX_LIST];
    for (int i = 0; i < o.n_n; i++)
        measure(&js, o.n[i], rows + i * o.n_par);
    if (o.json)
        print_json(rows, o.n_n * o.n_par, &o);
    print_markdown(o.json ? stderr : stdout, rows, o.n_n * o.n_par, &o);
    copse_verifier_free(js.v);
    copse_model_free(js.pm);
    return 0;
}
