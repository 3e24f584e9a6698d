/* copse eval: accuracy against test-time compute, strategies x budgets x difficulty. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "search_opts.h"
#include "jsonl.h"
#include "eval.h"

static const char *CMD = "eval";

#define MAX_BUDGETS 16
#define MAX_RUNS 16

static void help(void)
{
    printf("usage: copse eval -m POLICY.gguf --prm PRM.gguf [--data FILE.jsonl] [options]\n\n"
           "Run test-time compute strategies at several budgets over a question set and report\n"
           "accuracy, tokens, FLOPs and wall time, overall, per level and per difficulty bin.\n\n"
           "Majority, best-of-N and weighted best-of-N come from one draw of D samples per\n"
           "question (D the largest budget): a smaller budget N is scored by the picks of random\n"
           "N-subsets of the draw, averaged (as Snell et al. do); their FLOPs and wall time are\n"
           "the draw's, prorated by the positions the subset decoded. Beam search, DVTS,\n"
           "revisions and auto run once per budget. Difficulty bins are quantiles of the draw's\n"
           "pass rate (oracle) and of the verifier's mean final score (predicted), bin 1 the\n"
           "easiest. With --tune-data, the same grid runs on that split first and picks, per\n"
           "bin and budget, the best setting: optimal-prm (predicted bins, a tuning table that\n"
           "copse solve --strategy auto can follow) and optimal-oracle.\n\n"
           "  --data FILE         questions: JSON Lines with \"question\", \"answer\" and \"level\"\n"
           "                      (default train/data/test.jsonl)\n"
           "  --tune-data FILE    the split to tune compute-optimal on (e.g. validation.jsonl)\n"
           "  --per-level K       the first K questions of each level of --data (default all)\n"
           "  --tune-per-level K  the same for --tune-data\n"
           "  --budgets LIST      generation budgets, ascending (default 1,2,4,8,16,32,64)\n"
           "  --run-budgets LIST  the budgets the searches run at, among --budgets (default\n"
           "                      4,16,64: powers of the beam width, as in the paper)\n"
           "  --runs LIST         searches run per budget, STRATEGY:M for beam, lookahead, dvts,\n"
           "                      revise, adaptive, or auto (needs a table); 'none' for none\n"
           "                      (default beam:4,dvts:4,revise:4)\n"
           "  --revise-model FILE the revision model revise runs with (default the policy)\n"
           "  --large FILE        a larger policy, run greedily for comparison\n"
           "  --reps R            random subsets per budget below D (default 64)\n"
           "  --bins N            difficulty bins (default 5)\n"
           "  --probes N          probes of the tuning table written (default 2)\n"
           "  --table-out FILE    write the tuning table (needs --tune-data)\n"
           "  --table FILE        without --tune-data: optimal-prm follows this table\n"
           "  --csv FILE          the summary rows (accuracy and mean costs per group)\n"
           "  --jsonl FILE        one row per question, setting and budget\n"
           "  --parallel N        questions searched at once, their decodes in one batch\n"
           "                      (default 4); each still gets the result it gets alone, but\n"
           "                      their wall times overlap (use 1 to time questions alone)\n"
           "  -q, --quiet         no progress on stderr\n"
           "  -h, --help          this help\n\n"
           "and the options of copse solve that shape a search (sampling, caps, verifier,\n"
           "threads); --seed S makes question at line L sample with seed S + L:\n"
           CLI_SEARCH_OPTS_HELP
           "\nexample: copse eval -m models/math-policy-f16.gguf --prm models/math-prm-f16.gguf -t 2 \\\n"
           "           --tune-data train/data/validation.jsonl --per-level 20 --csv eval/results.csv\n");
}

typedef struct eval_opts {
    cli_search_opts s;
    const char *data, *tune_data, *revise_model, *large_model, *csv, *jsonl, *table_out;
    long per_level, tune_per_level, reps, bins, probes, parallel;
    int budgets[MAX_BUDGETS], n_budgets;
    int run_budgets[MAX_BUDGETS], n_run_budgets;
    eval_setting runs[MAX_RUNS];
    int n_runs, quiet;
} eval_opts;

/* ------------------------------------------------------------- options */

static int parse_run(const char *spec, size_t len, eval_setting *s)
{
    char name[32];
    const char *colon = memchr(spec, ':', len);
    size_t nl = colon ? (size_t)(colon - spec) : len;
    if (nl >= sizeof name)
        return -1;
    memcpy(name, spec, nl);
    name[nl] = '\0';
    *s = (eval_setting){ EVAL_RUN, copse_strategy_by_name(name), 4, COPSE_PICK_WEIGHTED };
    if (!strategy_uses_m(s->strategy) && s->strategy != COPSE_AUTO)
        return -1;
    if (colon) {
        char *end;
        long m = strtol(colon + 1, &end, 10);
        if (end != spec + len || m < 1 || m > 1024 || s->strategy == COPSE_AUTO)
            return -1;
        s->m = (int)m;
    }
    return 0;
}

static int parse_runs(const char *v, eval_opts *o)
{
    o->n_runs = 0;
    if (!strcmp(v, "none"))
        return 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        if (o->n_runs == MAX_RUNS)
            return cli_usage_error(CMD, "--runs takes at most %d searches", MAX_RUNS);
        if (!len || parse_run(p, len, &o->runs[o->n_runs++]))
            return cli_usage_error(CMD, "--runs takes beam:M, lookahead:M, dvts:M, revise:M or auto, "
                                   "comma-separated, not '%.*s'", (int)len, p);
        p += len + (p[len] == ',');
    }
    return 0;
}

static int more(void *state, int argc, char **argv, int *i)
{
    eval_opts *o = state;
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    static const char *const str_names[] = { "--data", "--tune-data", "--revise-model", "--large", "--csv",
                                             "--jsonl", "--table-out" };
    const char **str_dest[] = { &o->data, &o->tune_data, &o->revise_model, &o->large_model, &o->csv,
                                &o->jsonl, &o->table_out };
    static const struct { const char *name; long lo, hi; } int_opts[] = {
        { "--per-level", 1, 1 << 24 }, { "--tune-per-level", 1, 1 << 24 }, { "--reps", 1, 1 << 20 },
        { "--bins", 1, 64 }, { "--probes", 1, 4096 }, { "--parallel", 1, 256 },
    };
    long *int_dest[] = { &o->per_level, &o->tune_per_level, &o->reps, &o->bins, &o->probes, &o->parallel };
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
        return o->quiet = 1;
    if (!v)
        return 0;
    for (size_t k = 0; k < sizeof str_names / sizeof *str_names; k++)
        if (!strcmp(a, str_names[k]))
            return *str_dest[k] = argv[++*i], 1;
    for (size_t k = 0; k < sizeof int_opts / sizeof *int_opts; k++)
        if (!strcmp(a, int_opts[k].name))
            return cli_parse_int(CMD, a, argv[++*i], int_opts[k].lo, int_opts[k].hi, int_dest[k]) ? 2 : 1;
    if (!strcmp(a, "--budgets"))
        return cli_parse_int_list(CMD, a, argv[++*i], 1, 1024, MAX_BUDGETS, 1, o->budgets,
                                  &o->n_budgets) ? 2 : 1;
    if (!strcmp(a, "--run-budgets"))
        return cli_parse_int_list(CMD, a, argv[++*i], 1, 1024, MAX_BUDGETS, 1, o->run_budgets,
                                  &o->n_run_budgets) ? 2 : 1;
    if (!strcmp(a, "--runs"))
        return parse_runs(argv[++*i], o) ? 2 : 1;
    return 0;
}

static int parse(int argc, char **argv, eval_opts *o)
{
    int rc = cli_search_parse(CMD, argc, argv, &o->s, help, more, o);
    if (rc)
        return rc;
    if (!o->s.prm)
        return cli_usage_error(CMD, "give the verifier (--prm PRM.gguf): best-of-N, beam search and DVTS need it");
    for (int i = 0, j = 0; i < o->n_run_budgets; i++) {
        while (j < o->n_budgets && o->budgets[j] < o->run_budgets[i])
            j++;
        if (j == o->n_budgets || o->budgets[j] != o->run_budgets[i])
            return cli_usage_error(CMD, "--run-budgets must be among --budgets; %d is not", o->run_budgets[i]);
    }
    if (o->table_out && !o->tune_data)
        return cli_usage_error(CMD, "--table-out writes what --tune-data tunes; give both");
    int needs_table = 0;
    for (int i = 0; i < o->n_runs; i++)
        needs_table |= o->runs[i].strategy == COPSE_AUTO;
    if (needs_table && !o->s.sp.table && !o->table_out)
        return cli_usage_error(CMD, "--runs auto needs a table: --table FILE, or --tune-data with --table-out");
    return 0;
}

/* ------------------------------------------------------------- a split */

typedef struct split {
    const char *name, *path;
    int         tuning;          /* the split compute-optimal is tuned on */
    cli_item   *items;
    int         n_items;
    int        *order;           /* items run, in the order they start */
    int         n, done;
    double     *pass, *pred;     /* oracle pass rate, predicted difficulty */
    int        *oracle_bin, *prm_bin;
    eval_cell  *cells;           /* [n][n_set][n_budget] */
} split;

typedef struct runner {
    copse_model        *policy, *revise, *large;
    copse_verifier     *v;
    copse_solve_params  base;
    const eval_opts    *o;
    eval_setting        set[MAX_RUNS + 7];
    int                 n_set;
    int                 draw_n;          /* the largest budget */
    double              t0;
    int                 done, total;     /* questions, both splits */
    const char         *auto_table;
    copse_crowd        *crowd;           /* the questions' searches go side by side */
    split              *sp;              /* the split being run */
} runner;

static eval_cell *cell(const runner *r, const split *sp, int q, int s, int b)
{
    return &sp->cells[((size_t)q * r->n_set + s) * r->o->n_budgets + b];
}

/* The first per_level questions of each level, taken in turns (level 1,
** 2, ..., 1, 2, ...) so that progress and partial results are balanced. */
static int select_items(split *sp, long per_level)
{
    int max_level = 0;
    for (int i = 0; i < sp->n_items; i++)
        max_level = sp->items[i].level > max_level ? sp->items[i].level : max_level;
    int *taken = calloc((size_t)max_level + 1, sizeof *taken), *next = calloc((size_t)max_level + 1, sizeof *next);
    if (!taken || !next || !(sp->order = malloc((size_t)sp->n_items * sizeof *sp->order))) {
        free(taken);
        free(next);
        return cli_error(CMD, "out of memory");
    }
    for (int progress = 1; progress;) {
        progress = 0;
        for (int l = 0; l <= max_level; l++) {
            while (next[l] < sp->n_items && sp->items[next[l]].level != l)
                next[l]++;
            if (next[l] == sp->n_items || (per_level && taken[l] == per_level))
                continue;
            sp->order[sp->n++] = next[l]++;
            taken[l]++;
            progress = 1;
        }
    }
    free(taken);
    free(next);
    return 0;
}

static int open_split(split *sp, const char *name, const char *path, long per_level, const runner *r)
{
    memset(sp, 0, sizeof *sp);
    sp->name = name;
    sp->path = path;
    sp->tuning = !strcmp(name, "validation");
    if (!(sp->items = cli_items_read(CMD, path, &sp->n_items)) || select_items(sp, per_level))
        return 1;
    size_t nc = (size_t)sp->n * r->n_set * r->o->n_budgets;
    sp->pass = malloc((size_t)sp->n * sizeof *sp->pass);
    sp->pred = malloc((size_t)sp->n * sizeof *sp->pred);
    sp->oracle_bin = malloc((size_t)sp->n * sizeof(int));
    sp->prm_bin = malloc((size_t)sp->n * sizeof(int));
    sp->cells = malloc(nc * sizeof *sp->cells);
    if (!sp->pass || !sp->pred || !sp->oracle_bin || !sp->prm_bin || !sp->cells)
        return cli_error(CMD, "out of memory");
    for (size_t i = 0; i < nc; i++)
        sp->cells[i] = (eval_cell){ .correct = NAN };
    return 0;
}

static void close_split(split *sp)
{
    cli_items_free(sp->items, sp->n_items);
    free(sp->order);
    free(sp->pass);
    free(sp->pred);
    free(sp->oracle_bin);
    free(sp->prm_bin);
    free(sp->cells);
}

/* ------------------------------------------------------------- running */

static int solve(const runner *r, copse_model *m, copse_verifier *v, const cli_item *it,
                 const copse_solve_params *p, copse_result **res)
{
    copse_error err;
    const split *sp = r->sp;
    if (copse_crowd_solve(r->crowd, m, v, it->question, p, res, &err))
        return cli_error(CMD, "%s:%d: %s", sp->path, it->line, err.msg);
    return 0;
}

/* The draw and the three settings scored from it; the question's pass
** rate and predicted difficulty. */
static int run_draw(const runner *r, split *sp, int q, const copse_solve_params *p)
{
    const cli_item *it = &sp->items[sp->order[q]];
    copse_solve_params dp = *p;
    copse_result *res;
    eval_draw d;
    dp.strategy = COPSE_WEIGHTED;
    dp.n = r->draw_n;
    if (solve(r, r->policy, r->v, it, &dp, &res))
        return 1;
    int rc = eval_draw_from_result(res, it->answer, &d);
    copse_result_free(res);
    if (rc)
        return cli_error(CMD, "out of memory");
    sp->pass[q] = eval_pass_rate(&d);
    sp->pred[q] = eval_predicted_difficulty(&d);
    for (int s = 0; s < r->n_set && !rc; s++)
        for (int b = 0; b < r->o->n_budgets && !rc && r->set[s].source == EVAL_DRAW; b++)
            rc = eval_subsample(&d, r->o->budgets[b], r->set[s].pick, (int)r->o->reps,
                                p->sampler.seed * 0x9e3779b97f4a7c15ull + (uint64_t)b, cell(r, sp, q, s, b));
    eval_draw_free(&d);
    return rc ? cli_error(CMD, "out of memory") : 0;
}

static int run_one(const runner *r, const cli_item *it, copse_model *m, copse_verifier *v,
                   const copse_solve_params *p, int n, eval_cell *c)
{
    copse_result *res;
    if (solve(r, m, v, it, p, &res))
        return 1;
    eval_cell_from_result(res, it->answer, n, c);
    copse_result_free(res);
    return 0;
}

static int is_run_budget(const eval_opts *o, int n)
{
    for (int i = 0; i < o->n_run_budgets; i++)
        if (o->run_budgets[i] == n)
            return 1;
    return 0;
}

/* A search setting at every run budget. */
static int run_setting(const runner *r, split *sp, int q, int s, const copse_solve_params *p)
{
    const eval_setting *st = &r->set[s];
    const cli_item *it = &sp->items[sp->order[q]];
    copse_solve_params rp = *p;
    rp.strategy = st->strategy;
    rp.pick = st->pick;
    rp.table = r->auto_table;
    for (int b = 0; b < r->o->n_budgets; b++) {
        if (!is_run_budget(r->o, r->o->budgets[b]))
            continue;
        rp.n = r->o->budgets[b];
        rp.m = eval_setting_m(st, rp.n);
        copse_model *m = st->strategy == COPSE_REVISE && r->revise ? r->revise : r->policy;
        if (run_one(r, it, m, r->v, &rp, rp.n, cell(r, sp, q, s, b)))
            return 1;
    }
    return 0;
}

static int run_greedy(const runner *r, split *sp, int q, int s, const copse_solve_params *p)
{
    copse_solve_params gp = *p;
    gp.strategy = COPSE_MAJORITY;
    gp.n = 1;
    gp.sampler.temp = 0;
    copse_model *m = r->set[s].source == EVAL_GREEDY_LARGE ? r->large : r->policy;
    return run_one(r, &sp->items[sp->order[q]], m, NULL, &gp, 1, cell(r, sp, q, s, 0));
}

/* A question is done: how many of its split are (side by side, they end
** in any order), which it was, and the time left at the pace so far. */
static void progress(runner *r, split *sp, int q, double took)
{
    const cli_item *it = &sp->items[sp->order[q]];
    double el = cli_now() - r->t0, eta = ++r->done < r->total ? el / r->done * (r->total - r->done) : 0;
    if (!r->o->quiet)
        fprintf(stderr, "copse eval: %s %d/%d (line %d, level %d) %.1f s; elapsed %dm%02ds, ETA %dm%02ds\n",
                sp->name, ++sp->done, sp->n, it->line, it->level, took, (int)el / 60, (int)el % 60,
                (int)eta / 60, (int)eta % 60);
}

/* Everything question q of the split runs: a job of the split's crowd. */
static int run_question(copse_crowd *crowd, int q, void *user)
{
    runner *r = user;
    split *sp = r->sp;
    double t = cli_now();
    copse_solve_params p = r->base;
    p.sampler.seed = r->base.sampler.seed + (uint64_t)sp->items[sp->order[q]].line;
    r->crowd = crowd;
    if (run_draw(r, sp, q, &p))
        return 1;
    for (int s = 0; s < r->n_set; s++) {
        int src = r->set[s].source;
        /* auto follows the table the tuning split is about to make */
        if (src == EVAL_RUN && r->set[s].strategy == COPSE_AUTO && sp->tuning)
            continue;
        if ((src == EVAL_RUN && run_setting(r, sp, q, s, &p)) ||
            ((src == EVAL_GREEDY || src == EVAL_GREEDY_LARGE) && run_greedy(r, sp, q, s, &p)))
            return 1;
    }
    progress(r, sp, q, cli_now() - t);
    return 0;
}

static int run_split(runner *r, split *sp)
{
    copse_error err;
    r->sp = sp;
    int rc = copse_crowd_run(sp->n, (int)(r->o->parallel ? r->o->parallel : 4), run_question, r, &err);
    if (rc)
        return err.code ? cli_error(CMD, "%s", err.msg) : 1;   /* else the job's error, reported */
    int bins = r->o->bins < sp->n ? (int)r->o->bins : sp->n;
    double *hard = malloc((size_t)sp->n * sizeof *hard);
    if (!hard)
        return cli_error(CMD, "out of memory");
    for (int q = 0; q < sp->n; q++)
        hard[q] = 1 - sp->pass[q];
    rc = eval_rank_bins(hard, sp->pred, sp->n, bins, sp->oracle_bin) ||
         eval_rank_bins(sp->pred, NULL, sp->n, bins, sp->prm_bin);
    free(hard);
    return rc ? cli_error(CMD, "out of memory") : 0;
}

/* ------------------------------------------------------ compute-optimal */

typedef struct tuned {
    tune_table table;            /* optimal-prm */
    int       *oracle;           /* [bins][n_budget] setting chosen per oracle bin, or NULL */
    int        bins, have_table;
} tuned;

static int find_set(const runner *r, int source)
{
    for (int s = 0; s < r->n_set; s++)
        if (r->set[s].source == source)
            return s;
    return -1;
}

/* Choose on the tuning split: per oracle bin, and per predicted bin as a
** table (saved when asked). */
static int tune(const runner *r, const split *sp, tuned *tu)
{
    int nb = r->o->n_budgets, bins = r->o->bins < sp->n ? (int)r->o->bins : sp->n;
    uint8_t eligible[MAX_RUNS + 7];
    int *choice = malloc((size_t)bins * nb * sizeof *choice);
    double *acc = malloc((size_t)bins * nb * sizeof *acc), edges[64];
    tu->oracle = malloc((size_t)bins * nb * sizeof *tu->oracle);
    tu->bins = bins;
    if (!choice || !acc || !tu->oracle) {
        free(choice);
        free(acc);
        return cli_error(CMD, "out of memory");
    }
    for (int s = 0; s < r->n_set; s++)
        eligible[s] = r->set[s].source == EVAL_DRAW || (r->set[s].source == EVAL_RUN && r->set[s].strategy != COPSE_AUTO);
    eval_choose(sp->cells, sp->n, r->n_set, nb, eligible, sp->oracle_bin, bins, tu->oracle, acc);
    eval_choose(sp->cells, sp->n, r->n_set, nb, eligible, sp->prm_bin, bins, choice, acc);
    int rc = 0;
    copse_error err;
    if (eval_edges(sp->pred, sp->prm_bin, sp->n, bins, edges) < 0)
        rc = cli_error(CMD, "%s: predicted difficulties tie across a bin border; use fewer --bins", r->o->tune_data);
    else if (eval_table_make((int)r->o->probes, edges, bins, r->o->budgets, nb, r->set, choice, acc, &tu->table))
        rc = cli_error(CMD, "out of memory");
    else if ((tu->have_table = 1) && r->o->table_out && table_save(&tu->table, r->o->table_out, &err))
        rc = cli_error(CMD, "%s", err.msg);
    free(choice);
    free(acc);
    return rc;
}

/* optimal-prm and optimal-oracle on the test split: each question gets
** the cells of the setting its bin chose. */
static void apply_optimal(const runner *r, split *sp, const tuned *tu)
{
    int s_prm = find_set(r, EVAL_OPTIMAL_PRM), s_or = find_set(r, EVAL_OPTIMAL_ORACLE), nb = r->o->n_budgets;
    int bins = r->o->bins < sp->n ? (int)r->o->bins : sp->n, gaps = 0;
    /* oracle bins mean the same on both splits only when there are as many */
    int oracle = tu->oracle && bins == tu->bins;
    for (int q = 0; q < sp->n; q++)
        for (int b = 0; b < nb; b++) {
            int s = tu->have_table ? eval_table_setting(&tu->table, sp->pred[q], r->o->budgets[b], r->set, r->n_set)
                                   : -1;
            gaps += tu->have_table && s < 0;
            if (s >= 0)
                *cell(r, sp, q, s_prm, b) = *cell(r, sp, q, s, b);
            if (oracle && (s = tu->oracle[sp->oracle_bin[q] * nb + b]) >= 0)
                *cell(r, sp, q, s_or, b) = *cell(r, sp, q, s, b);
        }
    if (gaps)
        fprintf(stderr, "copse eval: the table names settings this run did not run; optimal-prm misses %d "
                "cells\n", gaps);
    if (tu->oracle && !oracle)
        fprintf(stderr, "copse eval: the splits have different bin counts; no optimal-oracle\n");
}

/* -------------------------------------------------------------- output */

static void write_jsonl(FILE *f, const runner *r, const split *sp)
{
    for (int q = 0; q < sp->n; q++) {
        const cli_item *it = &sp->items[sp->order[q]];
        for (int s = 0; s < r->n_set; s++)
            for (int b = 0; b < r->o->n_budgets; b++) {
                const eval_cell *c = cell(r, sp, q, s, b);
                if (isnan(c->correct))
                    continue;
                fprintf(f, "{\"split\":\"%s\",\"line\":%d,\"level\":%d,\"pass_rate\":%.4f,\"predicted_difficulty\":%.4f,"
                        "\"oracle_bin\":%d,\"prm_bin\":%d,\"strategy\":\"%s\",\"m\":%d,\"n\":%d,\"correct\":%.4f,"
                        "\"generations\":%.2f,\"policy_tokens\":%.1f,\"prompt_tokens\":%.1f,\"verifier_tokens\":%.1f,"
                        "\"flops\":%.4g,\"wall_s\":%.4f}\n",
                        sp->name, it->line, it->level, sp->pass[q], sp->pred[q], sp->oracle_bin[q] + 1,
                        sp->prm_bin[q] + 1, eval_setting_name(&r->set[s]), eval_setting_m(&r->set[s], c->n), c->n,
                        c->correct, c->generations, c->policy_tokens, c->prompt_tokens, c->verifier_tokens, c->flops,
                        c->wall_s);
            }
    }
}

/* Which questions a CSV row covers. */
enum { G_ALL, G_LEVEL, G_ORACLE, G_PRM };
static const char *const group_names[] = { "all", "level", "oracle_bin", "prm_bin" };

static int in_group(const split *sp, int q, int g, int v)
{
    return g == G_ALL || (g == G_LEVEL ? sp->items[sp->order[q]].level : g == G_ORACLE ? sp->oracle_bin[q] + 1
                                                                                        : sp->prm_bin[q] + 1) == v;
}

/* Mean of the run cells of setting s at budget b over a group; false when
** it has none. */
static int group_mean(const runner *r, const split *sp, int g, int v, int s, int b, eval_cell *m, int *count)
{
    memset(m, 0, sizeof *m);
    *count = 0;
    for (int q = 0; q < sp->n; q++) {
        const eval_cell *c = cell(r, sp, q, s, b);
        if (!in_group(sp, q, g, v) || isnan(c->correct))
            continue;
        m->correct += c->correct;
        m->generations += c->generations;
        m->policy_tokens += c->policy_tokens;
        m->prompt_tokens += c->prompt_tokens;
        m->verifier_tokens += c->verifier_tokens;
        m->flops += c->flops;
        m->wall_s += c->wall_s;
        m->n = c->n;
        (*count)++;
    }
    double k = *count ? 1.0 / *count : 0;
    *m = (eval_cell){ m->correct * k, m->generations * k, m->policy_tokens * k, m->prompt_tokens * k,
                      m->verifier_tokens * k, m->flops * k, m->wall_s * k, m->n };
    return *count > 0;
}

static const char *source_name(int src)
{
    return src == EVAL_DRAW ? "subsampled" : src == EVAL_RUN ? "run" : src == EVAL_GREEDY || src == EVAL_GREEDY_LARGE
           ? "greedy" : "selected";
}

static void write_csv_rows(FILE *f, const runner *r, const split *sp)
{
    int max_level = 0, bins = r->o->bins < sp->n ? (int)r->o->bins : sp->n;
    for (int i = 0; i < sp->n; i++)
        max_level = sp->items[sp->order[i]].level > max_level ? sp->items[sp->order[i]].level : max_level;
    for (int g = G_ALL; g <= G_PRM; g++)
        for (int v = g == G_ALL ? 0 : 1; v <= (g == G_ALL ? 0 : g == G_LEVEL ? max_level : bins); v++)
            for (int s = 0; s < r->n_set; s++)
                for (int b = 0; b < r->o->n_budgets; b++) {
                    eval_cell m;
                    int count;
                    if (!group_mean(r, sp, g, v, s, b, &m, &count))
                        continue;
                    fprintf(f, "%s,%s,%d,%s,%d,%d,%s,%d,%.4f,%.2f,%.1f,%.1f,%.1f,%.4g,%.4f\n", sp->name, group_names[g],
                            v, eval_setting_name(&r->set[s]), eval_setting_m(&r->set[s], m.n), m.n,
                            source_name(r->set[s].source), count, m.correct, m.generations, m.policy_tokens,
                            m.prompt_tokens, m.verifier_tokens, m.flops, m.wall_s);
                }
}

static int write_outputs(const runner *r, const split *const *splits, int n_splits)
{
    const char *paths[2] = { r->o->csv, r->o->jsonl };
    for (int k = 0; k < 2; k++) {
        FILE *f = paths[k] ? fopen(paths[k], "w") : NULL;
        if (paths[k] && !f)
            return cli_error(CMD, "cannot write %s", paths[k]);
        if (!f)
            continue;
        if (!k)
            fputs("split,group,bin,strategy,m,n,source,questions,accuracy,generations,policy_tokens,"
                  "prompt_tokens,verifier_tokens,flops,wall_s\n", f);
        for (int i = 0; i < n_splits; i++)
            (k ? write_jsonl : write_csv_rows)(f, r, splits[i]);
        if (fclose(f))
            return cli_error(CMD, "cannot write %s", paths[k]);
    }
    return 0;
}

/* Overall accuracy of every setting at every budget, on stdout. */
static void print_summary(const runner *r, const split *sp)
{
    printf("%s: %d questions, accuracy (%%) by generation budget\n%-16s", sp->name, sp->n, "strategy");
    for (int b = 0; b < r->o->n_budgets; b++)
        printf(" %6d", r->o->budgets[b]);
    putchar('\n');
    for (int s = 0; s < r->n_set; s++) {
        int count;
        eval_cell m;
        char name[32];
        if (r->set[s].source == EVAL_RUN && strategy_uses_m(r->set[s].strategy))
            snprintf(name, sizeof name, "%s:%d", eval_setting_name(&r->set[s]), r->set[s].m);
        else
            snprintf(name, sizeof name, "%s", eval_setting_name(&r->set[s]));
        printf("%-16s", name);
        for (int b = 0; b < r->o->n_budgets; b++)
            if (group_mean(r, sp, G_ALL, 0, s, b, &m, &count))
                printf(" %6.1f", 100 * m.correct);
            else
                printf(" %6s", "-");
        putchar('\n');
    }
}

/* ---------------------------------------------------------------- main */

static int open_extra(const eval_opts *o, const char *path, copse_model **m)
{
    cli_model_opts mo = o->s.m;
    mo.model = path;
    return path ? cli_open_model(CMD, &mo, 0, m, NULL) : 0;
}

static void make_settings(runner *r, const eval_opts *o, int tuning)
{
    static const int draw[][2] = { { COPSE_MAJORITY, COPSE_PICK_MAJORITY }, { COPSE_BEST_OF_N, COPSE_PICK_BEST },
                                   { COPSE_WEIGHTED, COPSE_PICK_WEIGHTED } };
    for (int i = 0; i < 3; i++)
        r->set[r->n_set++] = (eval_setting){ EVAL_DRAW, draw[i][0], 1, draw[i][1] };
    for (int i = 0; i < o->n_runs; i++)
        r->set[r->n_set++] = o->runs[i];
    r->set[r->n_set++] = (eval_setting){ EVAL_GREEDY, COPSE_MAJORITY, 1, COPSE_PICK_MAJORITY };
    if (o->large_model)
        r->set[r->n_set++] = (eval_setting){ EVAL_GREEDY_LARGE, COPSE_MAJORITY, 1, COPSE_PICK_MAJORITY };
    if (tuning || o->s.sp.table)
        r->set[r->n_set++] = (eval_setting){ EVAL_OPTIMAL_PRM, COPSE_AUTO, 1, COPSE_PICK_WEIGHTED };
    if (tuning)
        r->set[r->n_set++] = (eval_setting){ EVAL_OPTIMAL_ORACLE, COPSE_AUTO, 1, COPSE_PICK_WEIGHTED };
}

static int evaluate(runner *r, const eval_opts *o, split *val, split *test, tuned *tu)
{
    copse_error err;
    int have_val = o->tune_data != NULL;
    if (open_split(test, "test", o->data, o->per_level, r) ||
        (have_val && open_split(val, "validation", o->tune_data, o->tune_per_level, r)))
        return 1;
    r->total = test->n + (have_val ? val->n : 0);
    r->t0 = cli_now();
    if (have_val && (run_split(r, val) || tune(r, val, tu)))
        return 1;
    if (!have_val && o->s.sp.table) {
        if (table_load(o->s.sp.table, &tu->table, &err))
            return cli_error(CMD, "%s", err.msg);
        tu->have_table = 1;
    }
    if (run_split(r, test))
        return 1;
    apply_optimal(r, test, tu);
    const split *splits[2] = { test, val };
    if (write_outputs(r, splits, have_val ? 2 : 1))
        return 1;
    print_summary(r, test);
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o = { .data = "train/data/test.jsonl", .reps = 64, .bins = 5, .probes = 2,
                    .budgets = { 1, 2, 4, 8, 16, 32, 64 }, .n_budgets = 7,
                    .run_budgets = { 4, 16, 64 }, .n_run_budgets = 3, .n_runs = 3,
                    .runs = { { EVAL_RUN, COPSE_BEAM, 4, COPSE_PICK_WEIGHTED }, { EVAL_RUN, COPSE_DVTS, 4, COPSE_PICK_WEIGHTED },
                              { EVAL_RUN, COPSE_REVISE, 4, COPSE_PICK_WEIGHTED } } };
    cli_search_opts_init(&o.s);
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    runner r = { .o = &o, .draw_n = o.budgets[o.n_budgets - 1] };
    split val = { 0 }, test = { 0 };
    tuned tu = { 0 };
    if ((rc = cli_search_open(CMD, &o.s, &r.policy, &r.v)))
        return rc;
    r.base = o.s.sp;
    r.auto_table = o.table_out ? o.table_out : o.s.sp.table;
    make_settings(&r, &o, o.tune_data != NULL);
    rc = open_extra(&o, o.revise_model, &r.revise) || open_extra(&o, o.large_model, &r.large) ||
         evaluate(&r, &o, &val, &test, &tu) ? 1 : 0;
    close_split(&val);
    close_split(&test);
    if (tu.have_table)
        table_free(&tu.table);
    free(tu.oracle);
    copse_model_free(r.revise);
    copse_model_free(r.large);
    cli_search_close(&o.s, r.policy, r.v);
    return rc;
}
