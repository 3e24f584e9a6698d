/*
** The search engine behind copse_solve. Internal to copse.
**
** A search is a tree of steps (s_node). Live leaves are branches
** (s_branch): a policy sequence, a verifier sequence and the policy's
** next-token logits at the end of the branch's last step. Strategies
** (strategy_*.c) only decide which branches to fork, grow and drop; the
** engine (engine.c) grows any set of branches by one step each, decoding
** all of them in one batch per token, then scores the new steps with the
** verifier in one more batch. Forking a branch forks both sequences, so the
** verifier's tree mirrors the policy's and a step is encoded once for all
** the paths that share it.
**
** Budget: every token decoded goes through eng_decode, which counts rows,
** positions (for the attention FLOPs) and, per side, what kind of tokens
** they were.
*/
#ifndef COPSE_SEARCH_H
#define COPSE_SEARCH_H

#include "copse.h"
#include "kv.h"
#include "template.h"

/* ---------------------------------------------------------------- verifier */

struct copse_verifier {
    copse_model *model;
    int          owns_model;
    int          kind;           /* never COPSE_PRM_AUTO */
    int          n_embd;
    float       *w, *b;          /* value: [n_embd], [1]; two-class: [n_embd][n_embd], [n_embd] */
    float       *w2, *b2;        /* two-class: [2][n_embd], [2] */
    int32_t      good, bad;      /* label tokens */
    char        *tag, *join;     /* join NULL: the policy's step separator */
    chat_format  fmt;
};

/* The copse_batch.want bit the score position needs. */
unsigned verifier_want(const copse_verifier *v);

/* The score of the entry i of the verifier context's last decode, which
** asked for verifier_want(v); scratch holds n_embd floats. */
float verifier_score(const copse_verifier *v, const copse_ctx *ctx, int i, float *scratch);

/* ------------------------------------------------------------------- tree */

enum { END_NONE = 0, END_EOG = 1, END_CUT = 2 };

typedef struct s_node {
    int      parent;          /* -1 for a first step */
    int      round;           /* steps before it in its attempt */
    int      group, attempt;
    int32_t *pre;             /* tokens decoded before its own (a revision prompt) */
    int      n_pre;
    int32_t *tok;             /* tokens sampled, EOG included */
    int      n_tok, cap_tok;
    int32_t *vtok;            /* tokens the verifier encoded for it */
    int      n_vtok;
    char    *text;            /* NUL-terminated text of tok (EOG excluded) */
    size_t   len, cap_text;
    float    score, path_score, select_score;
    int      pos, vpos;       /* policy / verifier sequence lengths after it */
    int      n_path_tok;      /* tokens of its attempt up to here */
    uint8_t  end, kept, rollout, probe;
} s_node;

typedef struct s_branch {
    int        node;          /* its last step, -1 before the first */
    copse_seq *ps, *vs;       /* policy, verifier (NULL without one) */
    float     *logits;        /* policy's next-token logits after node */
    int        group, attempt;
    int        revised;       /* the revision prompt went in after node */
    int        state;         /* engine's, during eng_step */
} s_branch;

/* Batch entries being gathered: entry i goes to branch br[i]. */
typedef struct s_rows {
    copse_seq **seq;
    int32_t    *tok;
    uint8_t    *want;
    int        *br;
    int         n, cap;
} s_rows;

/* ----------------------------------------------------------------- engine */

typedef struct s_engine {
    copse_model        *pm;
    copse_verifier     *v;
    copse_solve_params  p;           /* with defaults resolved */
    copse_ctx          *pc, *vc;
    copse_sampler      *smp, *greedy;
    int                 n_vocab, n_ctx, vn_ctx;
    char               *sep;         /* step separator */
    size_t              sep_len;
    int32_t            *prompt, *vprompt, *revise;
    int                 n_prompt, n_vprompt, n_revise;
    char               *prefix;      /* text every attempt starts with */
    copse_seq          *root_p, *root_v;
    float              *root_logits;
    int                 same_vocab;  /* verifier reads the policy's token ids */
    int                 naive;       /* re-encode every prefix each step (bench baseline) */
    int                 rollout, probe; /* flags for the nodes being made */
    s_node             *nodes;
    int                 n_nodes, cap_nodes;
    copse_budget        b;
    double              t0;
    float              *scratch;     /* n_embd */
    s_rows              rows[2];     /* being decoded, being gathered */
    copse_error        *err;
    copse_crowd        *crowd;       /* NULL: alone, with contexts of its own */
    kv_account          acct[2];     /* in a crowd: what the policy's, the verifier's sequences hold */
    int                 row0;        /* its first entry in the last decode (a crowd's merged batch) */
} s_engine;

/* Monotonic seconds. */
double eng_now(void);

/* Fail with COPSE_E_NOMEM, saying for what. */
int  eng_nomem(s_engine *e, const char *what);
/* Add an entry to r; COPSE_E_NOMEM. */
int  rows_push(s_rows *r, copse_seq *seq, int32_t tok, uint8_t want, int br);
void rows_free(s_rows *r);
/* Decode r in ctx (the policy's or the verifier's), counting its cost. A
** sequence's entries must be consecutive. Entry j's outputs are then
** entry e->row0 + j's of ctx. */
int  eng_decode(s_engine *e, copse_ctx *ctx, const s_rows *r);
/* The policy's logits of entry j of the last decode. */
const float *eng_logits(const s_engine *e, int j);
/* A new sequence of the policy (side 0) or the verifier (1). */
copse_seq *eng_seq_new(s_engine *e, int side);
/* Naive baseline: give each branch fresh sequences holding its prompt and
** path, decoded from scratch (naive.c). */
int  eng_rebuild(s_engine *e, s_branch *const *br, int n);
/* The nodes from the first step to node, in order, malloc'd; *n of them. */
int *eng_path(const s_engine *e, int node, int *n);

/* Set up contexts (crowd's, if not NULL), prompts and roots for question; p must be validated.
** The KV pools are sized for max_live branches at once, each holding
** attempts solutions (0: as many as the context takes). On failure
** eng_close still cleans up. */
int  eng_open(s_engine *e, copse_model *policy, copse_verifier *v, const char *question,
              const copse_solve_params *p, int max_live, int attempts, copse_crowd *crowd, copse_error *err);

/* crowd.c: the context a crowd's searches share for m as their policy
** (side 0) or verifier (1) under p (made with a pool for the crowd, at
** least limit blocks, the first time); a job's
** decode of b, as in a context of n_ctx positions, merged with the other
** jobs' (*row0: where its entries went). */
int  crowd_ctx(copse_crowd *c, copse_model *m, int side, const copse_ctx_params *p, int limit, copse_ctx **out,
               copse_error *err);
int  crowd_decode(copse_crowd *c, copse_ctx *ctx, int n_ctx, const copse_batch *b, int *row0, copse_error *err);
/* Whether the calling thread runs one of c's jobs (crowd_decode's callers must). */
int  crowd_member(copse_crowd *c);
/* Fill in the budget's wall time and KV peak. */
void eng_budget(s_engine *e);
/* Free everything (the nodes too unless a result took them). */
void eng_close(s_engine *e);
void nodes_free(s_node *nodes, int n);

/* A branch at the root (no steps yet), in group and attempt 0. */
int  eng_root(s_engine *e, s_branch *b, int group);
/* n of them (in group i / per_group), and an array pointing at each. */
int  eng_roots(s_engine *e, int n, int per_group, s_branch **br, s_branch ***pb);
/* Drop n branches and free both arrays. */
void eng_roots_free(s_branch *br, s_branch **pb, int n);
/* dst shares everything src holds. */
int  eng_fork(s_engine *e, const s_branch *src, s_branch *dst);
void eng_drop(s_branch *b);
/* dst takes over src's sequences and logits; src is left empty. */
void eng_move(s_branch *dst, s_branch *src);

/*
** Grow each of the n branches by one step (sampled greedily when greedy):
** a new node, child of the branch's node, then scored. Afterwards each
** branch's node is its new step; its end says whether the path ended
** (EOG; or cut by max_tokens, max_steps, the context or the budget).
*/
int  eng_step(s_engine *e, s_branch *const *br, int n, int greedy);

/* Step every branch until all paths end (or the budget does); the branches
** keep their last nodes. */
int  eng_run(s_engine *e, s_branch *const *br, int n);

/* Roll branch b back to the end of node, one of its path's nodes, whose
** next-token logits are given. */
int  eng_rollback(s_engine *e, s_branch *b, int node, const float *logits);

/* Start the next revision attempt of each branch that has room for it:
** the revision prompt goes into its policy sequence, its verifier starts
** over at the root. Those without room are left as they were, with state
** nonzero. */
int  eng_next_attempt(s_engine *e, s_branch *const *br, int n);

/* Nonzero once the token budget or the deadline ran out. */
int  eng_stopped(const s_engine *e);

/* The text of node's attempt: the prefix, then its steps; malloc'd. */
char *eng_attempt_text(const s_engine *e, int node, size_t *len, int *n_steps);

/* Path score of node (and select_score) from its attempt's step scores. */
float eng_path_score(const s_engine *e, int node);

/* Sort idx[0..n) by the nodes' select_score, best first (NaN last; equal
** scores keep their order). */
void eng_sort_by_score(const s_engine *e, int *idx, int n);

/* ------------------------------------------------------------- strategies */

/* Each fills leaves (room for strategy_cap(strategy, n)) with the candidate
** solutions' last nodes. */
int strategy_cap(int strategy, int n);
int strat_best_of_n(s_engine *e, int n, int *leaves, int *n_leaves);
int strat_beam(s_engine *e, int n, int m, int k, int *leaves, int *n_leaves);
int strat_dvts(s_engine *e, int n, int m, int *leaves, int *n_leaves);
int strat_revise(s_engine *e, int n, int m, int *leaves, int *n_leaves);
/* Waves of m whole solutions until n, or until the vote is settled
** (strategy_adaptive.c). */
int strat_adaptive(s_engine *e, int n, int m, double confidence, int *leaves, int *n_leaves);
/* The posterior probability that the answer with lead votes is more likely
** than the one with second (uniform prior on their shares). */
double vote_settled_prob(int lead, int second);

/* Roll each of the n branches out k greedy steps, set its node's
** select_score to the rollout's path score, and roll it back. */
int lookahead(s_engine *e, s_branch *const *br, int n, int k);

/* Strategy properties (solve.c). */
int strategy_needs_verifier(int strategy);
int strategy_uses_m(int strategy);
/* COPSE_OK when strategy can run n, m, k (with a verifier or not), else
** an error naming what is wrong. */
int strategy_check(int strategy, int n, int m, int k, int have_verifier, copse_error *err);
/* The final pick a strategy makes. */
int strategy_pick(int strategy, int pick, int have_verifier);
/* The n a strategy with width m gets out of g generations: g rounded down
** to a multiple of m, at least m (or 1). */
int strategy_fit(int strategy, int m, int g);

/* copse_solve (in crowd, if not NULL), or with naive set the same search
** without sharing: every branch re-encodes its whole prefix before each
** step (the baseline of bench-search). */
int solve_run(copse_model *policy, copse_verifier *verifier, const char *question,
              const copse_solve_params *params, int naive, copse_crowd *crowd, copse_result **out,
              copse_error *err);

/* ------------------------------------------------------- final pick, result */

/* The result of a finished search over the candidate leaves. Takes over
** e->nodes. */
int result_make(s_engine *e, const int *leaves, int n, const copse_result_info *info,
                copse_result **out);

/* The normalized answer keys of the leaves' attempts ("" for none),
** malloc'd; COPSE_E_NOMEM. */
int leaf_keys(const s_engine *e, const int *leaves, int n, char **keys);

/* Votes (per pick) for the n candidates with answer keys (NULL or "" for
** none) and scores; returns the winner, or -1 when n is 0. */
int pick_winner(const char *const *keys, const float *scores, int n, int pick, double *votes);

/* ------------------------------------------------------------ auto, tuning */

/* One choice of the tuning table: what to run for a difficulty bin at a
** budget (the n follows from the budget: strategy_fit). */
typedef struct tune_row {
    int    bin, budget, strategy, m, k, pick;
    double accuracy;         /* on the tuning items of the bin; -1 if unknown */
} tune_row;

typedef struct tune_table {
    int       probes, n_bins;
    double   *edges;         /* [n_bins - 1], ascending */
    tune_row *rows;
    int       n_rows;
} tune_table;

int  table_load(const char *path, tune_table *t, copse_error *err);
int  table_save(const tune_table *t, const char *path, copse_error *err);
int  table_builtin(tune_table *t, int have_verifier, copse_error *err);
void table_free(tune_table *t);
/* The row for bin at budget (the largest budget not above it, else the
** smallest), or NULL. */
const tune_row *table_lookup(const tune_table *t, int bin, int budget);
/* The bin of a difficulty: how many edges are at or below it. */
int  table_bin(const tune_table *t, double difficulty);

/* Difficulty in [0, 1] from probes full samples (their cost counted):
** 1 - mean final score with a verifier, 1 - share of the commonest answer
** without. */
int  estimate_difficulty(s_engine *e, int probes, double *difficulty);

#endif
