/*
** copse_solve: check the parameters, run the strategy in an engine and make
** the result; names of strategies, aggregations and picks; what each
** strategy needs.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "error.h"

static const char *const strategy_names[] = {
    "best-of-n", "majority", "weighted", "beam", "lookahead", "dvts", "revise", "auto", "adaptive"
};
static const char *const agg_names[] = { "last", "min", "prod", "mean" };
static const char *const pick_names[] = { "best", "majority", "weighted" };
#define COUNT(a) (int)(sizeof a / sizeof a[0])

static int index_of(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

const char *copse_strategy_name(int s) { return s >= 0 && s < COUNT(strategy_names) ? strategy_names[s] : NULL; }
int copse_strategy_by_name(const char *name) { return index_of(strategy_names, COUNT(strategy_names), name); }
const char *copse_agg_name(int a) { return a >= 0 && a < COUNT(agg_names) ? agg_names[a] : NULL; }
int copse_agg_by_name(const char *name) { return index_of(agg_names, COUNT(agg_names), name); }
const char *copse_pick_name(int p) { return p >= 0 && p < COUNT(pick_names) ? pick_names[p] : NULL; }
int copse_pick_by_name(const char *name) { return index_of(pick_names, COUNT(pick_names), name); }

copse_solve_params copse_solve_default_params(void)
{
    copse_solve_params p = {
        .strategy = COPSE_MAJORITY, .n = 4, .m = 4, .k = 1,
        .agg = COPSE_AGG_LAST, .pick = COPSE_PICK_WEIGHTED,
        .max_steps = 32, .max_step_tokens = 256, .max_tokens = 1024,
        .sampler = copse_sampler_default_params(), .confidence = 0.95,
    };
    return p;
}

int strategy_needs_verifier(int s)
{
    return s == COPSE_BEST_OF_N || s == COPSE_WEIGHTED || s == COPSE_BEAM ||
           s == COPSE_LOOKAHEAD || s == COPSE_DVTS;
}

int strategy_uses_m(int s)
{
    return s == COPSE_BEAM || s == COPSE_LOOKAHEAD || s == COPSE_DVTS || s == COPSE_REVISE ||
           s == COPSE_ADAPTIVE;
}

int strategy_cap(int strategy, int n)
{
    /* the beam round that completes the n-th candidate may complete n - 1 more */
    return strategy == COPSE_BEAM || strategy == COPSE_LOOKAHEAD ? 2 * n : n;
}

int strategy_pick(int strategy, int pick, int have_verifier)
{
    switch (strategy) {
    case COPSE_BEST_OF_N: return COPSE_PICK_BEST;
    case COPSE_MAJORITY:
    case COPSE_ADAPTIVE:  return COPSE_PICK_MAJORITY;
    case COPSE_WEIGHTED:  return COPSE_PICK_WEIGHTED;
    default:              return have_verifier ? pick : COPSE_PICK_MAJORITY;
    }
}

int strategy_fit(int strategy, int m, int g)
{
    if (!strategy_uses_m(strategy))
        return g > 1 ? g : 1;
    return g > m ? g / m * m : m;
}

#define MAX_N 65536

int strategy_check(int s, int n, int m, int k, int have_verifier, copse_error *err)
{
    const char *name = copse_strategy_name(s);
    if (!name)
        return copse_fail(err, COPSE_E_ARG, "copse_solve: unknown strategy %d", s);
    if (n < 1 || n > MAX_N)
        return copse_fail(err, COPSE_E_ARG, "copse_solve: n is %d; it must be from 1 to %d", n, MAX_N);
    if (strategy_uses_m(s) && m < 1)
        return copse_fail(err, COPSE_E_ARG, "copse_solve: %s needs m >= 1, not %d", name, m);
    if (strategy_uses_m(s) && n < m)
        return copse_fail(err, COPSE_E_ARG, "copse_solve: %s needs n >= m, but n is %d and m %d", name, n, m);
    if (strategy_uses_m(s) && n % m)
        return copse_fail(err, COPSE_E_ARG, "copse_solve: %s needs n to be a multiple of m, but n is %d "
                          "and m %d", name, n, m);
    if (s == COPSE_LOOKAHEAD && (k < 1 || k > 64))
        return copse_fail(err, COPSE_E_ARG, "copse_solve: lookahead needs k from 1 to 64, not %d", k);
    if (strategy_needs_verifier(s) && !have_verifier)
        return copse_fail(err, COPSE_E_ARG, "copse_solve: strategy %s needs a verifier (a PRM)", name);
    return COPSE_OK;
}

static int check_params(const copse_solve_params *p, const copse_verifier *v, copse_error *err)
{
    int rc = p->strategy != COPSE_AUTO ? strategy_check(p->strategy, p->n, p->m, p->k, v != NULL, err)
           : p->n < 1 || p->n > MAX_N ? copse_fail(err, COPSE_E_ARG, "copse_solve: n is %d; it must be "
                                                   "from 1 to %d", p->n, MAX_N)
           : COPSE_OK;
    if (rc)
        return rc;
    const char *bad = !copse_agg_name(p->agg) ? "agg is unknown"
        : !copse_pick_name(p->pick) ? "pick is unknown"
        : p->max_steps < 1 || p->max_step_tokens < 1 || p->max_tokens < 1 ? "max_steps, max_step_tokens and max_tokens must be positive"
        : !(p->sampler.temp >= 0) || !isfinite(p->sampler.temp) ? "the temperature must be a number >= 0"
        : p->budget_tokens < 0 || !(p->deadline >= 0) || !isfinite(p->deadline) ? "budget_tokens and deadline must not be negative"
        : p->n_threads < 0 || p->n_ctx < 0 ? "n_threads and n_ctx must not be negative"
        : p->strategy == COPSE_ADAPTIVE && !(p->confidence >= 0.5 && p->confidence <= 1)
            ? "adaptive needs a confidence from 0.5 to 1"
        : NULL;
    return bad ? copse_fail(err, COPSE_E_ARG, "copse_solve: %s", bad) : COPSE_OK;
}

static int run(s_engine *e, int strategy, int n, int m, int k, int *leaves, int *nl)
{
    switch (strategy) {
    case COPSE_ADAPTIVE:  return strat_adaptive(e, n, m, e->p.confidence, leaves, nl);
    case COPSE_BEAM:      return strat_beam(e, n, m, 0, leaves, nl);
    case COPSE_LOOKAHEAD: return strat_beam(e, n, m, k, leaves, nl);
    case COPSE_DVTS:      return strat_dvts(e, n, m, leaves, nl);
    case COPSE_REVISE:    return strat_revise(e, n, m, leaves, nl);
    default:              return strat_best_of_n(e, n, leaves, nl);
    }
}

/* auto: estimate the difficulty and choose from the table what to run. */
static int choose(s_engine *e, const tune_table *t, copse_result_info *info)
{
    int rc = estimate_difficulty(e, t->probes, &info->difficulty);
    if (rc)
        return rc;
    info->bin = table_bin(t, info->difficulty);
    const tune_row *row = table_lookup(t, info->bin, e->p.n);
    int s = row ? row->strategy : COPSE_MAJORITY;
    if (strategy_needs_verifier(s) && !e->v)
        s = COPSE_MAJORITY;
    info->strategy = s;
    info->m = row ? row->m : 1;
    info->k = row ? row->k : 1;
    info->pick = row ? row->pick : COPSE_PICK_MAJORITY;
    info->n = strategy_fit(s, info->m, e->p.n - t->probes);
    return COPSE_OK;
}

int copse_solve(copse_model *policy, copse_verifier *verifier, const char *question,
                const copse_solve_params *params, copse_result **out, copse_error *err)
{
    return solve_run(policy, verifier, question, params, 0, NULL, out, err);
}

int copse_crowd_solve(copse_crowd *crowd, copse_model *policy, copse_verifier *verifier, const char *question,
                      const copse_solve_params *params, copse_result **out, copse_error *err)
{
    return solve_run(policy, verifier, question, params, 0, crowd, out, err);
}

int solve_run(copse_model *policy, copse_verifier *verifier, const char *question,
              const copse_solve_params *params, int naive, copse_crowd *crowd, copse_result **out,
              copse_error *err)
{
    copse_error local;
    if (!err)
        err = &local;
    copse_error_clear(err);
    if (!out)
        return copse_fail(err, COPSE_E_ARG, "copse_solve: out is NULL");
    *out = NULL;
    if (!policy || !question)
        return copse_fail(err, COPSE_E_ARG, "copse_solve: %s is NULL", policy ? "the question" : "the policy");
    if (crowd && !crowd_member(crowd))
        return copse_fail(err, COPSE_E_ARG, "copse_crowd_solve: called outside the crowd's jobs");
    if (!question[strspn(question, " \t\r\n")])   /* the model would answer a question of its own */
        return copse_fail(err, COPSE_E_ARG, "copse_solve: the question is empty");
    copse_solve_params p = params ? *params : copse_solve_default_params();
    int rc = check_params(&p, verifier, err);
    if (rc)
        return rc;
    copse_result_info info = { .strategy = p.strategy, .n = p.n, .m = p.m, .k = p.k,
                               .difficulty = -1, .bin = -1, .chosen = -1, .answer = "" };
    tune_table t = { 0 };
    int is_auto = p.strategy == COPSE_AUTO, max_live = p.n;
    if (is_auto && (rc = p.table ? table_load(p.table, &t, err) : table_builtin(&t, verifier != NULL, err)))
        return rc;
    if (is_auto && t.probes > max_live)
        max_live = t.probes;
    s_engine e;
    int *leaves = NULL, nl = 0;
    rc = eng_open(&e, policy, verifier, question, &p, max_live,
                  is_auto ? 0 : p.strategy == COPSE_REVISE ? p.m : 1, crowd, err);
    e.naive = naive;
    if (!rc && is_auto)
        rc = choose(&e, &t, &info);
    if (!rc && !(leaves = malloc((size_t)strategy_cap(info.strategy, info.n) * sizeof *leaves)))
        rc = copse_fail(err, COPSE_E_NOMEM, "copse_solve: out of memory");
    info.pick = strategy_pick(info.strategy, is_auto ? info.pick : p.pick, verifier != NULL);
    if (!rc)
        rc = run(&e, info.strategy, info.n, info.m, info.k, leaves, &nl);
    if (!rc)
        rc = result_make(&e, leaves, nl, &info, out);
    free(leaves);
    eng_close(&e);
    table_free(&t);
    return rc;
}
