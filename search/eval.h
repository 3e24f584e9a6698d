/*
** The accuracy-versus-compute study behind `copse eval`. Internal to copse.
**
** A plan is a list of settings (a strategy, its width m and final pick)
** run at a list of budgets (generations) on every question. Three settings
** never run on their own: majority, best-of-N and weighted best-of-N are
** computed from one draw of D samples per question (D the largest budget),
** a budget N < D by the picks of random N-subsets of the draw, averaged
** (Snell et al. estimate their best-of-N curves the same way). Beam search,
** DVTS, revisions and auto run once per budget; greedy runs once.
**
** Every (question, setting, budget) ends in a cell: whether the answer was
** right (a fraction for subsampled picks) and what it cost. Difficulty bins
** (quantiles of the draw's pass rate, the oracle, and of the verifier's
** mean final score, the prediction) group questions; compute-optimal picks,
** per bin and budget, the setting that did best on another split.
*/
#ifndef COPSE_EVAL_H
#define COPSE_EVAL_H

#include <stdint.h>
#include "copse.h"
#include "search.h"

/* What one question cost and earned under one setting at one budget.
** correct is NaN for a cell that was not run. Costs are per question. */
typedef struct eval_cell {
    double correct;
    double generations, policy_tokens, prompt_tokens, verifier_tokens, flops, wall_s;
    int    n;                 /* the budget it ran at (greedy: 1) */
} eval_cell;

/* Where a setting's cells come from. */
enum { EVAL_DRAW = 0, EVAL_RUN, EVAL_GREEDY, EVAL_GREEDY_LARGE, EVAL_OPTIMAL_PRM, EVAL_OPTIMAL_ORACLE };

typedef struct eval_setting {
    int source;               /* EVAL_* */
    int strategy, m, pick;    /* the copse_solve parameters it stands for */
} eval_setting;

/* Name of a setting as CSV rows and tables spell it ("weighted", "beam",
** "greedy-large", "optimal-prm", ...). */
const char *eval_setting_name(const eval_setting *s);

/* The width a setting runs with at budget n: m, or n when n is smaller
** (beam search of 2 beams has width 2 at most); 1 for a strategy without
** one. */
int eval_setting_m(const eval_setting *s, int n);

/* One sample of a draw: its normalized answer key ("" for none), the
** verifier's path score, whether it is right, and its own tokens. */
typedef struct eval_sample {
    char  *key;
    float  score;
    int    correct;
    double policy_tokens, verifier_tokens;
} eval_sample;

/* A draw of n samples and what it cost in all. */
typedef struct eval_draw {
    eval_sample *s;
    int    n;
    double prompt_tokens, verifier_prompt_tokens, flops, wall_s;
} eval_draw;

/* The draw a best-of-n (or weighted, majority) result holds, graded
** against the reference answer ref. COPSE_E_NOMEM. */
int  eval_draw_from_result(const copse_result *r, const char *ref, eval_draw *d);
void eval_draw_free(eval_draw *d);

/* Fraction of the draw's samples that are right (the oracle pass rate). */
double eval_pass_rate(const eval_draw *d);
/* One minus the mean final score (an unscored sample counts 0): the
** difficulty the verifier predicts, as auto estimates it from its probes. */
double eval_predicted_difficulty(const eval_draw *d);

/*
** The cell of pick (a copse_pick) over n samples of the draw: with n equal
** to the draw's size the draw itself, else the mean over reps random
** n-subsets (drawn without replacement, seeded by seed). Tokens are the
** subset's own plus the prompts; FLOPs and wall time are the draw's,
** prorated by the positions decoded (prompts counted once, as the shared
** tree decodes them). COPSE_E_ARG for n outside 1..d->n or reps < 1,
** COPSE_E_NOMEM.
*/
int eval_subsample(const eval_draw *d, int n, int pick, int reps, uint64_t seed, eval_cell *out);

/* The cell of a finished run graded against ref. */
void eval_cell_from_result(const copse_result *r, const char *ref, int n, eval_cell *out);

/*
** Equally populated bins by rank: the n questions sorted by difficulty
** (ties by tie, then by index), bin[i] = rank * n_bins / n. Bin 0 is the
** easiest. tie may be NULL. COPSE_E_NOMEM.
*/
int eval_rank_bins(const double *difficulty, const double *tie, int n, int n_bins, int *bin);

/*
** Compute-optimal choice. cells[(q * n_set + s) * n_budget + b] for n_q
** questions; bin[q] in [0, n_bins). For every bin and budget b, choice
** [bin * n_budget + b] is the eligible setting (eligible[s] nonzero, cells
** run) with the highest mean correct over the bin's questions, the fewest
** policy tokens breaking ties, and acc[...] that mean; -1 and NaN for a bin
** without questions.
*/
void eval_choose(const eval_cell *cells, int n_q, int n_set, int n_budget, const uint8_t *eligible,
                 const int *bin, int n_bins, int *choice, double *acc);

/*
** Edges between the bins of sorted-by-bin difficulties, for a tuning
** table: halfway between the largest difficulty of a bin and the smallest
** of the next. Returns how many edges (n_bins - 1), or -1 when two bins
** touch (equal difficulties on both sides), which a table cannot express.
*/
int eval_edges(const double *difficulty, const int *bin, int n, int n_bins, double *edges);

/* A tuning table (table.c) for auto: probes, the n_bins - 1 edges and for
** every bin and budget the chosen setting; table_save writes it and
** table_free frees it. COPSE_E_NOMEM. */
int eval_table_make(int probes, const double *edges, int n_bins, const int *budgets, int n_budget,
                    const eval_setting *set, const int *choice, const double *acc, tune_table *t);

/* Which of the n_set settings a tuning table (table_load) names for a
** question of this difficulty at budget: an index into set, or -1 when the
** table has no row there or names a setting that is not in set. */
int eval_table_setting(const tune_table *t, double difficulty, int budget, const eval_setting *set, int n_set);

#endif
