/*
** copse_tune: build the auto strategy's table from questions with known
** answers. Every item's difficulty is estimated as auto will estimate it
** (the same probes); the bins split the items into equal parts; then each
** strategy setting runs every item at every budget (what is left of it
** after the probes) and each bin gets, per budget, the setting that
** answered most of its items (the fewest policy tokens breaking ties).
*/
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "answer.h"
#include "error.h"

static const int default_budgets[] = { 4, 16, 64 };

copse_tune_params copse_tune_default_params(void)
{
    copse_tune_params p = { .base = copse_solve_default_params(), .budgets = default_budgets,
                            .n_budgets = 3, .probes = 2, .n_bins = 5, .parallel = 4 };
    return p;
}

/* What tuning tries: strategy, m, k, pick. */
typedef struct setting {
    int strategy, m, k, pick;
} setting;

/* adaptive answers as majority would with fewer samples where they agree:
** the ties on accuracy it wins on tokens are the bins it saves compute in */
static const setting with_verifier[] = {
    { COPSE_BEST_OF_N, 1, 1, COPSE_PICK_BEST }, { COPSE_MAJORITY, 1, 1, COPSE_PICK_MAJORITY },
    { COPSE_WEIGHTED, 1, 1, COPSE_PICK_WEIGHTED }, { COPSE_BEAM, 2, 1, COPSE_PICK_WEIGHTED },
    { COPSE_BEAM, 4, 1, COPSE_PICK_WEIGHTED }, { COPSE_DVTS, 2, 1, COPSE_PICK_WEIGHTED },
    { COPSE_DVTS, 4, 1, COPSE_PICK_WEIGHTED }, { COPSE_LOOKAHEAD, 2, 1, COPSE_PICK_WEIGHTED },
    { COPSE_REVISE, 2, 1, COPSE_PICK_WEIGHTED }, { COPSE_ADAPTIVE, 2, 1, COPSE_PICK_MAJORITY },
};
static const setting without_verifier[] = {
    { COPSE_MAJORITY, 1, 1, COPSE_PICK_MAJORITY }, { COPSE_REVISE, 2, 1, COPSE_PICK_MAJORITY },
    { COPSE_ADAPTIVE, 2, 1, COPSE_PICK_MAJORITY },
};

static int check(const copse_tune_item *items, int n_items, const copse_tune_params *p, const char *path,
                 copse_error *err)
{
    const char *bad = !items || n_items < 1 ? "no items"
        : !path ? "no output path"
        : !p->budgets || p->n_budgets < 1 ? "no budgets"
        : p->probes < 1 || p->probes > 4096 ? "probes must be from 1 to 4096"
        : p->n_bins < 1 || p->n_bins > 64 ? "n_bins must be from 1 to 64"
        : NULL;
    for (int i = 0; !bad && i < p->n_budgets; i++)
        if (p->budgets[i] < 1 || p->budgets[i] > 65536)
            bad = "budgets must be from 1 to 65536";
    for (int i = 0; !bad && i < n_items; i++)
        if (!items[i].question || !items[i].answer)
            bad = "an item lacks its question or answer";
    return bad ? copse_fail(err, COPSE_E_ARG, "copse_tune: %s", bad) : COPSE_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Edges halfway between sorted difficulties, at the change of value
** nearest each border of equally populated bins (difficulties take few
** distinct values, so a border often falls among equal ones); borders
** that find no change of their own merge bins. */
static int make_edges(const double *d, int n, int n_bins, tune_table *t)
{
    double *s = malloc((size_t)n * sizeof *s);
    if (!s || !(t->edges = malloc((size_t)(n_bins > 1 ? n_bins - 1 : 1) * sizeof *t->edges))) {
        free(s);
        return COPSE_E_NOMEM;
    }
    memcpy(s, d, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    t->n_bins = 1;
    for (int b = 1; b < n_bins; b++) {
        int k = (int)((int64_t)b * n / n_bins), at = -1;
        for (int off = 0; off < n && at < 0; off++)
            at = k + off < n && k + off >= 1 && s[k + off - 1] < s[k + off] ? k + off
               : k - off >= 1 && k - off < n && s[k - off - 1] < s[k - off] ? k - off : -1;
        if (at < 0)
            continue;
        double edge = (s[at - 1] + s[at]) / 2;
        if (t->n_bins == 1 || edge > t->edges[t->n_bins - 2])
            t->edges[t->n_bins++ - 1] = edge;
    }
    free(s);
    return COPSE_OK;
}

/* For each bin at budget: the best of the settings tried. */
static int add_rows(tune_table *t, int budget, const int *count, const int *best_correct,
                    const int *best_setting, const setting *set)
{
    tune_row *rows = realloc(t->rows, (size_t)(t->n_rows + t->n_bins) * sizeof *rows);
    if (!rows)
        return COPSE_E_NOMEM;
    t->rows = rows;
    for (int b = 0; b < t->n_bins; b++) {
        if (best_setting[b] < 0)
            continue;
        setting s = set[best_setting[b]];
        t->rows[t->n_rows++] = (tune_row){ b, budget, s.strategy, s.m, s.k, s.pick,
                                           count[b] ? (double)best_correct[b] / count[b] : -1 };
    }
    return COPSE_OK;
}

typedef struct tuning {
    copse_model *pm;
    copse_verifier *v;
    const copse_tune_item *items;
    int n_items;
    const copse_tune_params *p;
    int *bin, *count;
    int done, total;
    /* what the items' crowd runs: their difficulty (d), or a setting (sp) */
    double *d;
    copse_solve_params sp;
    int *correct;
    double *tokens;
    int rc;                       /* the first item's failure, whose message is in err */
    copse_error *err;
} tuning;

/* Item i's end in a crowd job: progress, and its failure kept if the first. */
static int item_done(tuning *tu, int rc, const copse_error *e)
{
    if (rc && !tu->rc) {
        tu->rc = rc;
        *tu->err = *e;
    }
    if (tu->p->progress)
        tu->p->progress(tu->p->user, ++tu->done, tu->total);
    return rc;
}

/* Item i's difficulty, estimated as auto does it. */
static int probe_job(copse_crowd *crowd, int i, void *user)
{
    tuning *tu = user;
    s_engine e;
    copse_error err;
    int rc = eng_open(&e, tu->pm, tu->v, tu->items[i].question, &tu->p->base, tu->p->probes, 1, crowd, &err);
    if (!rc)
        rc = estimate_difficulty(&e, tu->p->probes, &tu->d[i]);
    eng_close(&e);
    return item_done(tu, rc, &err);
}

/* Item i under the setting: a right answer and its policy tokens, counted for its bin. */
static int setting_job(copse_crowd *crowd, int i, void *user)
{
    tuning *tu = user;
    copse_result *r;
    copse_error err;
    int rc = copse_crowd_solve(crowd, tu->pm, tu->v, tu->items[i].question, &tu->sp, &r, &err);
    if (!rc) {
        copse_result_info info;
        copse_result_get_info(r, &info);
        tu->correct[tu->bin[i]] += answer_equal(info.answer, tu->items[i].answer);
        tu->tokens[tu->bin[i]] += (double)info.budget.policy_tokens;
        copse_result_free(r);
    }
    return item_done(tu, rc, &err);
}

/* job on every item, p->parallel of them side by side (a crowd). */
static int run_items(tuning *tu, int (*job)(copse_crowd *, int, void *))
{
    copse_error err;
    tu->rc = COPSE_OK;
    int rc = copse_crowd_run(tu->n_items, tu->p->parallel > 0 ? tu->p->parallel : 1, job, tu, &err);
    if (rc && !tu->rc)   /* the crowd's own failure */
        *tu->err = err;
    return rc;
}

static int tune_budget(tuning *tu, tune_table *t, int budget, copse_error *err)
{
    const setting *set = tu->v ? with_verifier : without_verifier;
    int n_set = tu->v ? (int)(sizeof with_verifier / sizeof *set) : (int)(sizeof without_verifier / sizeof *set);
    int g = budget - tu->p->probes > 1 ? budget - tu->p->probes : 1, nb = t->n_bins, rc = COPSE_OK;
    int *correct = calloc((size_t)nb, sizeof *correct), *best = calloc((size_t)nb, sizeof *best);
    int *best_set = malloc((size_t)nb * sizeof *best_set);
    double *tokens = calloc((size_t)nb, sizeof *tokens), *best_tokens = calloc((size_t)nb, sizeof *tokens);
    if (!correct || !best || !best_set || !tokens || !best_tokens)
        rc = copse_fail(err, COPSE_E_NOMEM, "copse_tune: out of memory");
    for (int b = 0; !rc && b < nb; b++)
        best_set[b] = -1;
    for (int s = 0; s < n_set && !rc; s++) {
        int n = strategy_fit(set[s].strategy, set[s].m, g);
        if (n > g && strategy_uses_m(set[s].strategy)) {   /* does not fit the budget */
            tu->done += tu->n_items;
            if (tu->p->progress)
                tu->p->progress(tu->p->user, tu->done, tu->total);
            continue;
        }
        memset(correct, 0, (size_t)nb * sizeof *correct);
        memset(tokens, 0, (size_t)nb * sizeof *tokens);
        tu->sp = tu->p->base;
        tu->sp.strategy = set[s].strategy;
        tu->sp.n = n;
        tu->sp.m = set[s].m;
        tu->sp.k = set[s].k;
        tu->sp.pick = set[s].pick;
        tu->correct = correct;
        tu->tokens = tokens;
        rc = run_items(tu, setting_job);
        for (int b = 0; b < nb && !rc; b++)
            if (best_set[b] < 0 || correct[b] > best[b] || (correct[b] == best[b] && tokens[b] < best_tokens[b])) {
                best_set[b] = s;
                best[b] = correct[b];
                best_tokens[b] = tokens[b];
            }
    }
    if (!rc && add_rows(t, budget, tu->count, best, best_set, set))
        rc = copse_fail(err, COPSE_E_NOMEM, "copse_tune: out of memory");
    free(correct);
    free(best);
    free(best_set);
    free(tokens);
    free(best_tokens);
    return rc;
}

int copse_tune(copse_model *policy, copse_verifier *verifier, const copse_tune_item *items,
               int n_items, const copse_tune_params *params, const char *path, copse_error *err)
{
    copse_error local;
    if (!err)
        err = &local;
    copse_error_clear(err);
    copse_tune_params p = params ? *params : copse_tune_default_params();
    int rc = check(items, n_items, &p, path, err);
    if (rc)
        return rc;
    if (!policy)
        return copse_fail(err, COPSE_E_ARG, "copse_tune: the policy is NULL");
    tune_table t = { .probes = p.probes };
    double *d = malloc((size_t)n_items * sizeof *d);
    tuning tu = { policy, verifier, items, n_items, &p, malloc((size_t)n_items * sizeof(int)),
                  calloc((size_t)p.n_bins, sizeof(int)), 0, 0, .d = d, .err = err };
    int n_set = verifier ? (int)(sizeof with_verifier / sizeof *with_verifier)
                         : (int)(sizeof without_verifier / sizeof *without_verifier);
    tu.total = n_items * (1 + n_set * p.n_budgets);
    if (!d || !tu.bin || !tu.count)
        rc = copse_fail(err, COPSE_E_NOMEM, "copse_tune: out of memory");
    if (!rc)
        rc = run_items(&tu, probe_job);
    if (!rc && make_edges(d, n_items, p.n_bins, &t))
        rc = copse_fail(err, COPSE_E_NOMEM, "copse_tune: out of memory");
    for (int i = 0; i < n_items && !rc; i++)
        tu.count[tu.bin[i] = table_bin(&t, d[i])]++;
    for (int b = 0; b < p.n_budgets && !rc; b++)
        rc = tune_budget(&tu, &t, p.budgets[b], err);
    if (!rc)
        rc = table_save(&t, path, err);
    table_free(&t);
    free(d);
    free(tu.bin);
    free(tu.count);
    return rc;
}
