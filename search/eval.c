/*
** The accuracy-versus-compute study (eval.h): grading results, best-of-N
** curves by subsampling one draw, difficulty bins, the compute-optimal
** choice and its tuning table.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eval.h"
#include "answer.h"
#include "error.h"

const char *eval_setting_name(const eval_setting *s)
{
    switch (s->source) {
    case EVAL_GREEDY:         return "greedy";
    case EVAL_GREEDY_LARGE:   return "greedy-large";
    case EVAL_OPTIMAL_PRM:    return "optimal-prm";
    case EVAL_OPTIMAL_ORACLE: return "optimal-oracle";
    default:                  return copse_strategy_name(s->strategy);
    }
}

int eval_setting_m(const eval_setting *s, int n)
{
    return !strategy_uses_m(s->strategy) ? 1 : s->m < n ? s->m : n;
}

/* ------------------------------------------------------------- the draw */

static char *key_of(const char *answer)
{
    size_t len = strlen(answer);
    int need = answer_normalize(answer, len, NULL, 0);
    char *k = need >= 0 ? malloc((size_t)need + 1) : NULL;
    if (k && answer_normalize(answer, len, k, (size_t)need + 1) != need) {
        free(k);
        k = NULL;
    }
    return k;
}

/* A candidate's own tokens: its steps back to the first (a best-of-n
** tree shares nothing but the prompt). */
static void path_tokens(const copse_result *r, int step, double *policy, double *verifier)
{
    copse_step s;
    *policy = *verifier = 0;
    for (; step >= 0 && !copse_result_step(r, step, &s); step = s.parent) {
        *policy += s.n_tokens;
        *verifier += s.n_verifier_tokens;
    }
}

int eval_draw_from_result(const copse_result *r, const char *ref, eval_draw *d)
{
    copse_result_info in;
    copse_result_get_info(r, &in);
    memset(d, 0, sizeof *d);
    if (!(d->s = calloc((size_t)(in.n_candidates ? in.n_candidates : 1), sizeof *d->s)))
        return COPSE_E_NOMEM;
    d->prompt_tokens = (double)in.budget.prompt_tokens;
    d->verifier_prompt_tokens = (double)in.budget.verifier_prompt_tokens;
    d->flops = in.budget.flops;
    d->wall_s = in.budget.wall_s;
    for (int i = 0; i < in.n_candidates; i++) {
        copse_candidate c;
        eval_sample *s = &d->s[i];
        copse_result_candidate(r, i, &c);
        d->n = i + 1;
        if (!(s->key = key_of(c.answer))) {
            eval_draw_free(d);
            return COPSE_E_NOMEM;
        }
        s->score = c.score;
        s->correct = answer_equal(c.answer, ref);
        path_tokens(r, c.last_step, &s->policy_tokens, &s->verifier_tokens);
    }
    return COPSE_OK;
}

void eval_draw_free(eval_draw *d)
{
    for (int i = 0; d->s && i < d->n; i++)
        free(d->s[i].key);
    free(d->s);
    memset(d, 0, sizeof *d);
}

double eval_pass_rate(const eval_draw *d)
{
    double right = 0;
    for (int i = 0; i < d->n; i++)
        right += d->s[i].correct;
    return d->n ? right / d->n : 0;
}

double eval_predicted_difficulty(const eval_draw *d)
{
    double sum = 0;
    for (int i = 0; i < d->n; i++)
        sum += isnan(d->s[i].score) ? 0 : d->s[i].score;
    return d->n ? 1 - sum / d->n : 1;
}

/* ---------------------------------------------------------- subsampling */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Move a uniformly random n-subset of idx[0..total) to its front. */
static void choose_subset(int *idx, int total, int n, uint64_t *rng)
{
    for (int i = 0; i < n; i++) {
        int j = i + (int)(splitmix(rng) % (uint64_t)(total - i)), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

int eval_subsample(const eval_draw *d, int n, int pick, int reps, uint64_t seed, eval_cell *out)
{
    if (n < 1 || n > d->n || reps < 1 || !copse_pick_name(pick))
        return COPSE_E_ARG;
    if (n == d->n)
        reps = 1;
    int *idx = malloc((size_t)d->n * sizeof *idx);
    const char **keys = malloc((size_t)n * sizeof *keys);
    float *scores = malloc((size_t)n * sizeof *scores);
    double *votes = malloc((size_t)n * sizeof *votes);
    int rc = idx && keys && scores && votes ? COPSE_OK : COPSE_E_NOMEM;
    double right = 0, tokens = 0, vtokens = 0;
    for (int i = 0; i < d->n && !rc; i++)
        idx[i] = i;
    for (int r = 0; r < reps && !rc; r++) {
        choose_subset(idx, d->n, n, &seed);
        for (int i = 0; i < n; i++) {
            const eval_sample *s = &d->s[idx[i]];
            keys[i] = s->key;
            scores[i] = s->score;
            tokens += s->policy_tokens;
            vtokens += s->verifier_tokens;
        }
        int w = pick_winner(keys, scores, n, pick, votes);
        right += w >= 0 && d->s[idx[w]].correct;
    }
    if (!rc) {
        double all = d->prompt_tokens + d->verifier_prompt_tokens;
        for (int i = 0; i < d->n; i++)
            all += d->s[i].policy_tokens + d->s[i].verifier_tokens;
        tokens /= reps;
        vtokens /= reps;
        double share = all > 0 ? (d->prompt_tokens + d->verifier_prompt_tokens + tokens + vtokens) / all : 1;
        *out = (eval_cell){ right / reps, n, tokens, d->prompt_tokens, vtokens + d->verifier_prompt_tokens,
                            d->flops * share, d->wall_s * share, n };
    }
    free(idx);
    free(keys);
    free(scores);
    free(votes);
    return rc;
}

void eval_cell_from_result(const copse_result *r, const char *ref, int n, eval_cell *out)
{
    copse_result_info in;
    copse_result_get_info(r, &in);
    const copse_budget *b = &in.budget;
    *out = (eval_cell){ answer_equal(in.answer, ref), (double)b->generations, (double)b->policy_tokens,
                        (double)b->prompt_tokens, (double)b->verifier_tokens, b->flops, b->wall_s, n };
}

/* ------------------------------------------------------------------ bins */

typedef struct ranked {
    double d, tie;
    int i;
} ranked;

static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    return a->d != b->d ? (a->d < b->d ? -1 : 1) : a->tie != b->tie ? (a->tie < b->tie ? -1 : 1) : a->i - b->i;
}

int eval_rank_bins(const double *difficulty, const double *tie, int n, int n_bins, int *bin)
{
    ranked *r = malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!r)
        return COPSE_E_NOMEM;
    for (int i = 0; i < n; i++)
        r[i] = (ranked){ difficulty[i], tie ? tie[i] : 0, i };
    qsort(r, (size_t)n, sizeof *r, cmp_ranked);
    for (int k = 0; k < n; k++)
        bin[r[k].i] = (int)((int64_t)k * n_bins / n);
    free(r);
    return COPSE_OK;
}

int eval_edges(const double *difficulty, const int *bin, int n, int n_bins, double *edges)
{
    for (int b = 0; b + 1 < n_bins; b++) {
        double hi = -INFINITY, lo = INFINITY;
        for (int i = 0; i < n; i++) {
            if (bin[i] == b)
                hi = fmax(hi, difficulty[i]);
            if (bin[i] == b + 1)
                lo = fmin(lo, difficulty[i]);
        }
        if (!(lo > hi) || (b > 0 && !((lo + hi) / 2 > edges[b - 1])))
            return -1;
        edges[b] = (lo + hi) / 2;
    }
    return n_bins - 1;
}

/* ------------------------------------------------------ compute-optimal */

void eval_choose(const eval_cell *cells, int n_q, int n_set, int n_budget, const uint8_t *eligible,
                 const int *bin, int n_bins, int *choice, double *acc)
{
    for (int k = 0; k < n_bins * n_budget; k++) {
        int b = k / n_budget, j = k % n_budget;
        double best = NAN, best_tok = 0;
        choice[k] = -1;
        for (int s = 0; s < n_set; s++) {
            double right = 0, tok = 0;
            int count = 0, ran = eligible[s];
            for (int q = 0; q < n_q && ran; q++) {
                const eval_cell *c = &cells[((size_t)q * n_set + s) * n_budget + j];
                if (bin[q] != b)
                    continue;
                ran = !isnan(c->correct);
                right += c->correct;
                tok += c->policy_tokens;
                count++;
            }
            if (!ran || !count)
                continue;
            if (choice[k] < 0 || right / count > best || (right / count == best && tok / count < best_tok)) {
                choice[k] = s;
                best = right / count;
                best_tok = tok / count;
            }
        }
        acc[k] = best;
    }
}

int eval_table_make(int probes, const double *edges, int n_bins, const int *budgets, int n_budget,
                    const eval_setting *set, const int *choice, const double *acc, tune_table *t)
{
    memset(t, 0, sizeof *t);
    t->probes = probes;
    t->n_bins = n_bins;
    t->edges = malloc((size_t)(n_bins > 1 ? n_bins - 1 : 1) * sizeof *t->edges);
    t->rows = malloc((size_t)n_bins * n_budget * sizeof *t->rows);
    if (!t->edges || !t->rows) {
        table_free(t);
        return COPSE_E_NOMEM;
    }
    memcpy(t->edges, edges, (size_t)(n_bins - 1) * sizeof *edges);
    for (int k = 0; k < n_bins * n_budget; k++) {
        if (choice[k] < 0)
            continue;
        const eval_setting *s = &set[choice[k]];
        int n = budgets[k % n_budget];
        t->rows[t->n_rows++] = (tune_row){ k / n_budget, n, s->strategy, eval_setting_m(s, n), 1, s->pick,
                                           isnan(acc[k]) ? -1 : acc[k] };
    }
    return COPSE_OK;
}

int eval_table_setting(const tune_table *t, double difficulty, int budget, const eval_setting *set, int n_set)
{
    const tune_row *r = table_lookup(t, table_bin(t, difficulty), budget);
    for (int s = 0; r && s < n_set; s++)
        if ((set[s].source == EVAL_DRAW || set[s].source == EVAL_RUN) && set[s].strategy == r->strategy &&
            set[s].pick == r->pick && eval_setting_m(&set[s], r->budget) == r->m)
            return s;
    return -1;
}
