/*
** Test-time search: each strategy on tiny seeded random models, checked by
** its structure (random models write random text, so the result's tree,
** scores and budget are what can be asserted exactly), the verifier's
** incremental scores against scoring from scratch, votes, budgets, bad
** input, and the copse solve command.
**
** Models are made by tools/mkmodel into the build directory on first use:
** a policy (tiny-llama), a value-head PRM with the same vocabulary, and a
** two-class PRM of another shape and vocabulary.
*/
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "testutil.h"
#include "copse.h"
#include "search.h"
#include "model.h"
#include "answer.h"

#define QUESTION "Tom has 3 apples and buys 4 more. How many apples does he have?"

/* ------------------------------------------------------------- fixtures */

/* NAME.gguf in the build directory, made by mkmodel with args if absent. */
static const char *model_file(const char *name, const char *args)
{
    static char path[8][512];
    static int next;
    char *p = path[next++ & 7], cmd[1536];
    snprintf(p, sizeof path[0], "%s/test-search/%s.gguf", tu_build_dir(), name);
    struct stat st;
    if (stat(p, &st) == 0)
        return p;
    snprintf(cmd, sizeof cmd, "mkdir -p %s/test-search && %s/bin/mkmodel %s -o %s.tmp && mv %s.tmp %s",
             tu_build_dir(), tu_build_dir(), args, p, p, p);
    ck_assert_msg(system(cmd) == 0, "mkmodel failed: %s", cmd);
    return p;
}

static const char *policy_file(void) { return model_file("policy", "--preset tiny-llama"); }
/* the policy's vocabulary, so the verifier reads the policy's token ids */
static const char *value_file(void)
{
    char args[600];
    snprintf(args, sizeof args, "--preset tiny-llama --head value --seed 2 --vocab %s", policy_file());
    return model_file("prm-value", args);
}
static const char *two_class_file(void)
{
    return model_file("prm-two-class", "--preset tiny-qwen2 --type q8_0 --head two-class --seed 3");
}

static copse_model *load(const char *path)
{
    copse_model *m;
    copse_error err;
    ck_assert_msg(copse_model_load(path, NULL, &m, &err) == COPSE_OK, "%s", err.msg);
    return m;
}

static copse_verifier *verifier(copse_model *m, int kind)
{
    copse_verifier *v;
    copse_error err;
    copse_verifier_params vp = copse_verifier_default_params();
    vp.kind = kind;
    if (kind == COPSE_PRM_LABELS) {
        vp.good = "a";
        vp.bad = "b";
    }
    ck_assert_msg(copse_verifier_new(m, &vp, &v, &err) == COPSE_OK, "%s", err.msg);
    return v;
}

/* The policy and the value-head verifier most tests search with. */
typedef struct fx {
    copse_model    *pm, *vm;
    copse_verifier *v;
} fx;

static fx fx_open(void)
{
    fx f = { load(policy_file()), load(value_file()), NULL };
    f.v = verifier(f.vm, COPSE_PRM_VALUE);
    return f;
}

static void fx_close(fx *f)
{
    copse_verifier_free(f->v);
    copse_model_free(f->vm);
    copse_model_free(f->pm);
}

/* Small searches: short steps, few of them, one thread. */
static copse_solve_params params(int strategy, int n, int m)
{
    copse_solve_params p = copse_solve_default_params();
    p.strategy = strategy;
    p.n = n;
    p.m = m;
    p.max_steps = 3;
    p.max_step_tokens = 5;
    p.max_tokens = 64;
    p.n_ctx = 256;
    p.n_threads = 1;
    p.sampler.seed = 7;
    return p;
}

static copse_result *solve(copse_model *pm, copse_verifier *v, const copse_solve_params *p,
                           copse_result_info *info)
{
    copse_result *r;
    copse_error err;
    ck_assert_msg(copse_solve(pm, v, QUESTION, p, &r, &err) == COPSE_OK, "%s", err.msg);
    copse_result_get_info(r, info);
    return r;
}

static copse_step step(const copse_result *r, int i)
{
    copse_step s;
    ck_assert_int_eq(copse_result_step(r, i, &s), COPSE_OK);
    return s;
}

static copse_candidate candidate(const copse_result *r, int i)
{
    copse_candidate c;
    ck_assert_int_eq(copse_result_candidate(r, i, &c), COPSE_OK);
    return c;
}

static int ends_with_eog(const copse_model *m, const copse_step *s)
{
    return s->n_tokens && copse_token_is_eog(m, s->tokens[s->n_tokens - 1]);
}

/* ------------------------------------------------------------- checks */

/*
** What every result must satisfy: each sampled token belongs to one step,
** the verifier encoded its prompt and each step once (the count of
** distinct tokens in its tree), and every token the policy sampled was
** decoded once, except EOG.
*/
static void check_budget(const copse_model *pm, const copse_result *r, const copse_result_info *in,
                         int same_vocab)
{
    const copse_budget *b = &in->budget;
    int64_t tokens = 0, vtokens = 0, eog = 0, rollout = 0, rollout_v = 0, probe = 0;
    for (int i = 0; i < in->n_steps; i++) {
        copse_step s = step(r, i);
        int e = ends_with_eog(pm, &s);
        tokens += s.n_tokens;
        vtokens += s.n_verifier_tokens;
        eog += e;
        rollout += s.rollout ? s.n_tokens : 0;
        rollout_v += s.rollout ? s.n_verifier_tokens : 0;
        probe += s.probe ? s.n_tokens : 0;
        ck_assert_int_lt(s.parent, i);
        if (same_vocab && !s.end)
            ck_assert_int_eq(s.n_verifier_tokens, s.n_tokens);
        if (same_vocab && s.end == 1)
            ck_assert_int_eq(s.n_verifier_tokens, s.n_tokens - 1);
    }
    ck_assert_int_eq(b->policy_tokens, tokens);
    ck_assert_int_eq(b->lookahead_tokens, rollout);
    ck_assert_int_eq(b->lookahead_verifier_tokens, rollout_v);
    ck_assert_int_eq(b->probe_tokens, probe);
    ck_assert_int_eq(b->policy_rows, b->prompt_tokens + tokens - eog);
    if (b->verifier_prompt_tokens)
        ck_assert_int_eq(b->verifier_tokens, b->verifier_prompt_tokens + vtokens);
    ck_assert_int_eq(b->generations, in->n_candidates);
    ck_assert(b->wall_s > 0);
    ck_assert(b->kv_peak_bytes > 0);
    copse_model_info mi;
    copse_model_get_info(pm, &mi);
    ck_assert(b->flops >= 2.0 * (double)mi.n_params * (double)b->policy_rows);
}

/* The steps of candidate c's attempt, first to last; returns how many. */
static int path(const copse_result *r, int last, int *out, int cap)
{
    int n = 0, attempt = step(r, last).attempt;
    for (int i = last; i >= 0 && step(r, i).attempt == attempt; i = step(r, i).parent)
        n++;
    ck_assert_int_le(n, cap);
    for (int i = last, j = n; j > 0; i = step(r, i).parent)
        out[--j] = i;
    return n;
}

/* Tokenize into a fresh array. */
static int tokens_of(const copse_model *m, const char *text, size_t len, unsigned flags, int32_t **out)
{
    int n = copse_tokenize(m, text, len, flags, NULL, 0);
    ck_assert_int_ge(n, 0);
    *out = malloc(((size_t)n + 1) * sizeof **out);
    ck_assert_int_eq(copse_tokenize(m, text, len, flags, *out, n), n);
    return n;
}

/* The verifier's tokens for a step, derived from its text as the verifier
** is documented to see it. */
static int step_vtokens(const copse_verifier *v, const copse_step *s, const char *sep, int same_vocab,
                        int32_t **out)
{
    if (!*v->tag && same_vocab) {
        *out = malloc(((size_t)s->n_tokens + 1) * sizeof **out);
        memcpy(*out, s->tokens, (size_t)s->n_tokens * sizeof **out);
        return s->n_verifier_tokens;   /* the step's ids less an EOG, checked in check_budget */
    }
    if (!*v->tag)
        return tokens_of(v->model, s->text, strlen(s->text), 0, out);
    size_t len = strlen(s->text), ls = strlen(sep);
    if (len >= ls && !strcmp(s->text + len - ls, sep))
        len -= ls;
    const char *join = s->round ? (v->join ? v->join : sep) : "";
    int32_t *a, *b, *c;
    int na = tokens_of(v->model, join, strlen(join), COPSE_TOK_PARSE_SPECIAL, &a);
    int nb = tokens_of(v->model, s->text, len, 0, &b);
    int nc = tokens_of(v->model, v->tag, strlen(v->tag), COPSE_TOK_PARSE_SPECIAL, &c);
    *out = malloc(((size_t)(na + nb + nc) + 1) * sizeof **out);
    memcpy(*out, a, (size_t)na * sizeof *a);
    memcpy(*out + na, b, (size_t)nb * sizeof *b);
    memcpy(*out + na + nb, c, (size_t)nc * sizeof *c);
    free(a);
    free(b);
    free(c);
    return na + nb + nc;
}

/*
** Score every candidate's path again from scratch, one sequence per path
** and nothing shared, and compare with the step scores the search reported
** (which came from forked, incrementally extended, rolled back sequences).
** Attention folds a shared prompt and a branch's own blocks as separate
** runs, one sequence's blocks as longer ones, so the two differ in float
** rounding; int8 activations can turn that into a step of one quantum in
** a later product. Seen: 2.7e-4 on a score; a wrong or misplaced token
** moves a score by far more.
*/
static void check_scores_from_scratch(const copse_verifier *v, const copse_result *r,
                                      const copse_result_info *in, const char *sep, int same_vocab)
{
    copse_ctx_params cp = copse_ctx_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 1;
    copse_ctx *ctx;
    copse_error err;
    ck_assert_int_eq(copse_ctx_new(v->model, &cp, &ctx, &err), COPSE_OK);
    char *text;
    ck_assert_int_eq(chat_render(v->fmt, NULL, QUESTION, NULL, &text, &err), COPSE_OK);
    int32_t *prompt;
    int n_prompt = tokens_of(v->model, text, strlen(text), COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL, &prompt);
    free(text);
    float *scratch = malloc((size_t)v->n_embd * sizeof *scratch);
    int checked = 0;
    for (int c = 0; c < in->n_candidates; c++) {
        int steps[64], n = path(r, candidate(r, c).last_step, steps, 64);
        copse_seq *seq = copse_seq_new(ctx);
        ck_assert_int_eq(copse_decode_tokens(ctx, seq, prompt, n_prompt, 0, &err), COPSE_OK);
        for (int j = 0; j < n; j++) {
            copse_step s = step(r, steps[j]);
            if (!s.n_verifier_tokens)
                continue;
            int32_t *vt;
            int nv = step_vtokens(v, &s, sep, same_vocab, &vt);
            ck_assert_int_eq(nv, s.n_verifier_tokens);
            copse_seq **seqs = malloc((size_t)nv * sizeof *seqs);
            uint8_t *want = calloc((size_t)nv, 1);
            for (int t = 0; t < nv; t++)
                seqs[t] = seq;
            want[nv - 1] = (uint8_t)verifier_want(v);
            copse_batch b = { nv, seqs, vt, want };
            ck_assert_int_eq(copse_decode(ctx, &b, &err), COPSE_OK);
            float fresh = verifier_score(v, ctx, nv - 1, scratch);
            ck_assert_msg(fabsf(fresh - s.score) < 1e-3f, "step %d: searched %.6f, from scratch %.6f",
                          steps[j], s.score, fresh);
            checked++;
            free(seqs);
            free(want);
            free(vt);
        }
        copse_seq_free(seq);
    }
    ck_assert_int_gt(checked, 0);
    free(scratch);
    free(prompt);
    copse_ctx_free(ctx);
}

/* The checks every search with the fixture passes; then clean up. */
static void finish(fx *f, copse_result *r, const copse_result_info *in)
{
    check_budget(f->pm, r, in, 1);
    check_scores_from_scratch(f->v, r, in, "\n\n", 1);
    copse_result_free(r);
    fx_close(f);
}

/* ------------------------------------------------------------- verifiers */

START_TEST(verifier_kinds_and_errors)
{
    copse_model *pm = load(policy_file()), *vm = load(value_file()), *tm = load(two_class_file());
    copse_verifier *v;
    copse_error err;
    copse_verifier_params vp = copse_verifier_default_params();

    ck_assert_int_eq(copse_verifier_new(pm, &vp, &v, &err), COPSE_E_FORMAT);
    ck_assert_ptr_null(v);
    ck_assert_ptr_nonnull(strstr(err.msg, "no PRM head"));
    vp.kind = COPSE_PRM_VALUE;
    ck_assert_int_eq(copse_verifier_new(pm, &vp, &v, &err), COPSE_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'cls.weight' is missing"));
    vp.kind = COPSE_PRM_TWO_CLASS;   /* a value head's cls.weight is [n_embd, 1] */
    ck_assert_int_eq(copse_verifier_new(vm, &vp, &v, &err), COPSE_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "shape"));
    vp.kind = COPSE_PRM_LABELS;
    vp.good = "a good token";
    ck_assert_int_eq(copse_verifier_new(pm, &vp, &v, &err), COPSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "not one"));
    vp.kind = 9;
    ck_assert_int_eq(copse_verifier_new(pm, &vp, &v, &err), COPSE_E_ARG);

    v = verifier(vm, COPSE_PRM_AUTO);
    ck_assert_int_eq(copse_verifier_kind(v), COPSE_PRM_VALUE);
    copse_verifier_free(v);
    v = verifier(tm, COPSE_PRM_AUTO);
    ck_assert_int_eq(copse_verifier_kind(v), COPSE_PRM_TWO_CLASS);
    ck_assert_str_eq(v->tag, "<extra_0>");
    copse_verifier_free(v);
    ck_assert_int_eq(copse_verifier_load("/nonexistent/prm.gguf", NULL, &v, &err), COPSE_E_IO);
    ck_assert_int_eq(copse_verifier_load(value_file(), NULL, &v, &err), COPSE_OK);
    copse_verifier_free(v);
    copse_model_free(pm);
    copse_model_free(vm);
    copse_model_free(tm);
}
END_TEST

/* ------------------------------------------------------------- bad input */

static void expect_error(copse_model *pm, copse_verifier *v, const copse_solve_params *p, int code,
                         const char *part)
{
    copse_result *r = (copse_result *)1;
    copse_error err;
    ck_assert_int_eq(copse_solve(pm, v, QUESTION, p, &r, &err), code);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err.msg, part) != NULL, "'%s' lacks '%s'", err.msg, part);
}

START_TEST(solve_bad_input)
{
    fx f = fx_open();
    copse_model *pm = f.pm;
    copse_verifier *v = f.v;
    copse_solve_params p = params(COPSE_BEAM, 2, 4);
    expect_error(pm, v, &p, COPSE_E_ARG, "n >= m, but n is 2 and m 4");
    p = params(COPSE_DVTS, 6, 4);
    expect_error(pm, v, &p, COPSE_E_ARG, "multiple of m, but n is 6 and m 4");
    p = params(42, 4, 2);
    expect_error(pm, v, &p, COPSE_E_ARG, "unknown strategy 42");
    p = params(COPSE_BEAM, 4, 2);
    expect_error(pm, NULL, &p, COPSE_E_ARG, "beam needs a verifier");
    p = params(COPSE_WEIGHTED, 4, 2);
    expect_error(pm, NULL, &p, COPSE_E_ARG, "weighted needs a verifier");
    p = params(COPSE_LOOKAHEAD, 4, 2);
    p.k = 0;
    expect_error(pm, v, &p, COPSE_E_ARG, "k from 1");
    p = params(COPSE_MAJORITY, 0, 1);
    expect_error(pm, v, &p, COPSE_E_ARG, "n is 0");
    p = params(COPSE_MAJORITY, 2, 1);
    p.agg = 17;
    expect_error(pm, v, &p, COPSE_E_ARG, "agg");
    p = params(COPSE_MAJORITY, 2, 1);
    p.step_sep = "";
    expect_error(pm, v, &p, COPSE_E_ARG, "separator is empty");
    p = params(COPSE_BEAM, 8, 2);
    p.kv_bytes = 48 << 10;   /* the prompts fit, eight branches' steps do not */
    expect_error(pm, v, &p, COPSE_E_KV_FULL, "policy's KV memory is too small for this search (raise kv_bytes");
    p = params(COPSE_AUTO, 4, 1);
    p.table = "/nonexistent/table.txt";
    expect_error(pm, v, &p, COPSE_E_IO, "table.txt");
    copse_result *r;
    copse_error err;
    ck_assert_int_eq(copse_solve(pm, v, NULL, &p, &r, &err), COPSE_E_ARG);
    ck_assert_int_eq(copse_solve(pm, v, " \n\t", &p, &r, &err), COPSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "the question is empty"));
    ck_assert_ptr_null(r);
    ck_assert_int_eq(copse_solve(NULL, v, QUESTION, &p, &r, &err), COPSE_E_ARG);
    ck_assert_int_eq(copse_strategy_by_name("beam"), COPSE_BEAM);
    ck_assert_int_eq(copse_strategy_by_name("bean"), -1);
    ck_assert_str_eq(copse_strategy_name(COPSE_DVTS), "dvts");
    ck_assert_ptr_null(copse_strategy_name(COPSE_N_STRATEGIES));
    fx_close(&f);
}
END_TEST

/* ------------------------------------------------------------- best-of-N */

START_TEST(best_of_n_structure_and_budget)
{
    fx f = fx_open();
    copse_model *pm = f.pm;
    copse_verifier *v = f.v;
    copse_solve_params p = params(COPSE_BEST_OF_N, 6, 1);
    copse_result_info in;
    copse_result *r = solve(pm, v, &p, &in);
    ck_assert_int_eq(in.n_candidates, 6);
    ck_assert_int_eq(in.pick, COPSE_PICK_BEST);
    int best = 0;
    for (int c = 0; c < 6; c++) {
        copse_candidate cd = candidate(r, c);
        copse_step last = step(r, cd.last_step);
        ck_assert(last.end != 0);
        ck_assert_int_le(cd.n_steps, p.max_steps);
        ck_assert_int_eq(cd.finished, last.end == 1);
        ck_assert(cd.score == last.path_score);
        ck_assert(cd.vote == cd.score);
        if (cd.score > candidate(r, best).score)
            best = c;
        int steps[8], n = path(r, cd.last_step, steps, 8);
        ck_assert_int_eq(n, cd.n_steps);
        ck_assert_int_eq(step(r, steps[0]).parent, -1);
        for (int j = 0; j < n; j++) {
            copse_step s = step(r, steps[j]);
            ck_assert_int_eq(s.round, j);
            ck_assert_int_le(s.n_tokens, p.max_step_tokens);
            /* aggregation "last": the latest scored step's score */
            if (!isnan(s.score))
                ck_assert(s.path_score == s.score);
        }
    }
    ck_assert_int_eq(in.chosen, best);
    check_budget(pm, r, &in, 1);
    check_scores_from_scratch(v, r, &in, "\n\n", 1);
    copse_result_free(r);

    /* the same seed gives the same search */
    copse_result_info in2;
    copse_result *r2 = solve(pm, v, &p, &in2);
    ck_assert_int_eq(in2.n_steps, in.n_steps);
    ck_assert_int_eq(in2.budget.policy_tokens, in.budget.policy_tokens);
    copse_result_free(r2);
    fx_close(&f);
}
END_TEST

/* Votes on answers: a prefix makes every one-token solution an answer. */
START_TEST(weighted_and_majority_votes)
{
    fx f = fx_open();
    copse_model *pm = f.pm;
    copse_verifier *v = f.v;
    for (int strategy = COPSE_MAJORITY; strategy <= COPSE_WEIGHTED; strategy++) {
        copse_solve_params p = params(strategy, 12, 1);
        p.prefix = "The answer is ";
        p.max_steps = 1;
        p.max_step_tokens = 1;
        p.sampler.top_k = 3;
        copse_result_info in;
        copse_result *r = solve(pm, v, &p, &in);
        int shared = 0;
        double top = -1;
        for (int i = 0; i < in.n_candidates; i++) {
            copse_candidate a = candidate(r, i);
            double count = 0, sum = 0;
            for (int j = 0; j < in.n_candidates; j++) {
                copse_candidate b = candidate(r, j);
                if (answer_equal(a.answer, b.answer)) {
                    count++;
                    sum += b.score;
                }
            }
            shared |= count > 1;
            ck_assert_msg(fabs(a.vote - (strategy == COPSE_MAJORITY ? count : sum)) < 1e-6,
                          "candidate %d '%s': vote %g, count %g, sum %g", i, a.answer, a.vote, count, sum);
            top = fmax(top, a.vote);
        }
        ck_assert_msg(shared, "no two candidates share an answer: the test shows nothing");
        copse_candidate w = candidate(r, in.chosen);
        ck_assert(w.vote == top);
        ck_assert_str_eq(in.answer, w.answer);
        for (int i = 0; i < in.n_candidates; i++)   /* the best-scored of the winning answer */
            if (answer_equal(candidate(r, i).answer, w.answer))
                ck_assert(candidate(r, i).score <= w.score);
        check_budget(pm, r, &in, 1);
        copse_result_free(r);
    }
    fx_close(&f);
}
END_TEST

START_TEST(pick_rules)
{
    const char *keys[] = { "4", "5", "", "5", "4", NULL };
    const float scores[] = { 0.9f, 0.2f, 0.99f, 0.3f, NAN, 0.1f };
    double votes[6];
    /* best: the top score, whatever its answer */
    ck_assert_int_eq(pick_winner(keys, scores, 6, COPSE_PICK_BEST, votes), 2);
    /* majority: 4 and 5 have two each; 4's scores sum higher (NaN is 0) */
    ck_assert_int_eq(pick_winner(keys, scores, 6, COPSE_PICK_MAJORITY, votes), 0);
    ck_assert(votes[0] == 2 && votes[1] == 2 && votes[2] == 0 && votes[5] == 0);
    /* weighted: 4 sums 0.9, 5 sums 0.5 */
    ck_assert_int_eq(pick_winner(keys, scores, 6, COPSE_PICK_WEIGHTED, votes), 0);
    ck_assert(fabs(votes[1] - 0.5) < 1e-6 && fabs(votes[4] - 0.9) < 1e-6);
    const float s2[] = { 0.1f, 0.2f, 0.99f, 0.9f, 0.1f, 0.1f };
    ck_assert_int_eq(pick_winner(keys, s2, 6, COPSE_PICK_WEIGHTED, votes), 3);
    /* no answers at all: the best score */
    const char *none[] = { "", "", NULL };
    ck_assert_int_eq(pick_winner(none, s2, 3, COPSE_PICK_MAJORITY, votes), 2);
    ck_assert_int_eq(pick_winner(none, s2, 0, COPSE_PICK_MAJORITY, votes), -1);
}
END_TEST

/* ------------------------------------------------------------- adaptive */

/* Whether the vote of candidates [0, k) is settled for adaptive with budget
** n: the two largest counts of one answer (by answer_equal; none for no
** answer), then its rule, written from the definition. */
static int settled(const copse_result *r, int k, int n, double confidence)
{
    int lead = 0, second = 0;
    for (int i = 0; i < k; i++) {
        copse_candidate a = candidate(r, i);
        int count = 0, first = 1;
        for (int j = 0; j < k && a.answer[0]; j++) {
            int same = answer_equal(a.answer, candidate(r, j).answer);
            count += same;
            first &= !(same && j < i);
        }
        if (!first || !count)
            continue;
        second = count > lead ? lead : count > second ? count : second;
        lead = count > lead ? count : lead;
    }
    /* P(Beta(lead + 1, second + 1) > 1/2), by the binomial sum */
    double p = 0;
    for (int j = 0; j <= lead; j++) {
        double c = 1;
        for (int t = 0; t < j; t++)
            c = c * (lead + second + 1 - t) / (t + 1);
        p += c / pow(2, lead + second + 1);
    }
    return lead - second > n - k || (lead > 0 && p >= confidence);
}

START_TEST(adaptive_stops_when_the_vote_is_settled)
{
    /* lead 4 of 4: 1 - 2^-5; 3 to 1: 26/32; a tie: one half */
    ck_assert(fabs(vote_settled_prob(4, 0) - 31.0 / 32) < 1e-12);
    ck_assert(fabs(vote_settled_prob(3, 1) - 26.0 / 32) < 1e-12);
    ck_assert(fabs(vote_settled_prob(1, 0) - 0.75) < 1e-12);
    ck_assert(fabs(vote_settled_prob(10, 10) - 0.5) < 1e-12);
    ck_assert(fabs(vote_settled_prob(0, 0) - 0.5) < 1e-12);
    ck_assert(vote_settled_prob(2000, 0) == 1);

    fx f = fx_open();
    /* 0.93 and 0.8 just below 15/16 (3 to 0, 5 to 1) and 13/16 (3 to 1) */
    const double conf[] = { 0.95, 0.93, 0.8, 1 };
    int early = 0, late = 0;
    for (int c = 0; c < 4; c++)
        for (int seed = 1; seed <= 4; seed++) {
            copse_solve_params p = params(COPSE_ADAPTIVE, 24, 3);
            p.prefix = "The answer is ";
            p.max_steps = 1;
            p.max_step_tokens = 1;
            p.sampler.top_k = 3;
            p.sampler.seed = (uint64_t)seed;
            p.confidence = conf[c];
            copse_result_info in;
            copse_result *r = solve(f.pm, f.v, &p, &in);
            int k = in.n_candidates;
            /* whole waves; it stops at the first settled one, or at n */
            ck_assert_int_eq(k % 3, 0);
            ck_assert(k == 24 || settled(r, k, 24, conf[c]));
            for (int w = 3; w < k; w += 3)
                ck_assert_msg(!settled(r, w, 24, conf[c]), "seed %d: settled after %d, went on to %d", seed, w, k);
            early += k < 24;
            late += k > 3;
            /* the majority of what it drew */
            copse_candidate w = candidate(r, in.chosen);
            for (int i = 0; i < k; i++)
                ck_assert(candidate(r, i).vote <= w.vote);
            ck_assert_int_eq(in.pick, COPSE_PICK_MAJORITY);
            check_budget(f.pm, r, &in, 1);
            copse_result_free(r);
        }
    ck_assert_msg(early && late, "stopped early %d times, after a wave %d times: the test shows nothing",
                  early, late);

    /* one wave of n is majority's search: the same candidates */
    copse_solve_params pa = params(COPSE_ADAPTIVE, 6, 6), pm = params(COPSE_MAJORITY, 6, 1);
    copse_result_info ia, im;
    copse_result *ra = solve(f.pm, f.v, &pa, &ia), *rm = solve(f.pm, f.v, &pm, &im);
    ck_assert_int_eq(ia.n_candidates, 6);
    ck_assert_int_eq(im.n_candidates, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(candidate(ra, i).text, candidate(rm, i).text);
    ck_assert_int_eq(ia.chosen, im.chosen);
    copse_result_free(ra);
    copse_result_free(rm);

    /* a confidence outside [0.5, 1] is refused */
    const double bad[] = { 0.49, 1.01, NAN, 0 };
    for (int i = 0; i < 4; i++) {
        copse_result *r = NULL;
        copse_error err;
        pa.confidence = bad[i];
        ck_assert_int_eq(copse_solve(f.pm, f.v, QUESTION, &pa, &r, &err), COPSE_E_ARG);
        ck_assert_str_eq(err.msg, "copse_solve: adaptive needs a confidence from 0.5 to 1");
        ck_assert_ptr_null(r);
    }
    ck_assert_int_eq(copse_strategy_by_name("adaptive"), COPSE_ADAPTIVE);
    ck_assert_str_eq(copse_strategy_name(COPSE_ADAPTIVE), "adaptive");
    fx_close(&f);
}
END_TEST

/* ------------------------------------------------------------- beam */

START_TEST(beam_keeps_top_n_over_m)
{
    fx f = fx_open();
    copse_model *pm = f.pm;
    copse_verifier *v = f.v;
    const int n = 8, m = 2;
    copse_solve_params p = params(COPSE_BEAM, n, m);
    p.max_steps = 4;
    copse_result_info in;
    copse_result *r = solve(pm, v, &p, &in);
    int rounds = 0;
    for (int round = 0; round < p.max_steps; round++) {
        int live = 0, kept = 0, alive = 0;
        float worst_kept = INFINITY, best_dropped = -INFINITY;
        for (int i = 0; i < in.n_steps; i++) {
            copse_step s = step(r, i);
            if (s.round != round)
                continue;
            live++;
            if (s.end) {
                ck_assert(!s.kept);   /* ended paths are candidates, not beams */
                continue;
            }
            alive++;
            if (s.kept) {
                kept++;
                worst_kept = fminf(worst_kept, s.select_score);
            } else
                best_dropped = fmaxf(best_dropped, s.select_score);
        }
        if (!live)
            break;
        rounds++;
        ck_assert_int_eq(live, n);   /* n beams every round */
        if (alive && kept)
            ck_assert_int_eq(kept, alive < n / m ? alive : n / m);
        ck_assert_msg(worst_kept >= best_dropped, "round %d keeps %.4f but drops %.4f", round,
                      worst_kept, best_dropped);
        /* the next round's steps grow from the kept ones, m each */
        for (int i = 0; i < in.n_steps; i++) {
            copse_step s = step(r, i);
            if (s.round != round || !s.kept)
                continue;
            int children = 0;
            for (int j = 0; j < in.n_steps; j++)
                children += step(r, j).parent == i;
            ck_assert_int_eq(children, kept == n / m ? m : children);
        }
        for (int i = 0; i < in.n_steps; i++) {
            copse_step s = step(r, i);
            if (s.round == round + 1)
                ck_assert(step(r, s.parent).kept);
        }
    }
    ck_assert_int_ge(rounds, 2);
    finish(&f, r, &in);
}
END_TEST

/* ------------------------------------------------------------- DVTS */

START_TEST(dvts_subtrees_never_share)
{
    fx f = fx_open();
    copse_model *pm = f.pm;
    copse_verifier *v = f.v;
    const int n = 8, m = 2, g = n / m;
    copse_solve_params p = params(COPSE_DVTS, n, m);
    copse_result_info in;
    copse_result *r = solve(pm, v, &p, &in);
    ck_assert_int_eq(in.n_candidates, g);
    int seen[4] = { 0 };
    for (int c = 0; c < g; c++) {
        copse_step last = step(r, candidate(r, c).last_step);
        ck_assert(last.kept && last.end);
        ck_assert(!seen[last.group]);
        seen[last.group] = 1;
    }
    for (int i = 0; i < in.n_steps; i++) {
        copse_step s = step(r, i);
        ck_assert_int_lt(s.group, g);
        if (s.parent >= 0) {
            copse_step par = step(r, s.parent);
            ck_assert_int_eq(s.group, par.group);
            ck_assert(par.kept);
        }
        /* m candidates per subtree per round, the best one kept */
        int same = 0, kept = 0;
        float best = -INFINITY;
        for (int j = 0; j < in.n_steps; j++) {
            copse_step t = step(r, j);
            if (t.group == s.group && t.round == s.round) {
                same++;
                kept += t.kept;
                best = fmaxf(best, t.select_score);
            }
        }
        ck_assert_int_eq(same, m);
        ck_assert_int_eq(kept, 1);
        if (s.kept && !isnan(s.select_score))
            ck_assert(s.select_score == best);
    }
    finish(&f, r, &in);
}
END_TEST

/* ------------------------------------------------------------- lookahead */

START_TEST(lookahead_rolls_back)
{
    fx f = fx_open();
    copse_model *pm = f.pm;
    copse_verifier *v = f.v;
    copse_solve_params p = params(COPSE_LOOKAHEAD, 4, 2);
    p.k = 2;
    p.max_steps = 4;
    p.sampler.temp = 0;   /* greedy: a step after a rollback must equal the rollout's first */
    copse_result_info in;
    copse_result *r = solve(pm, v, &p, &in);
    int rollouts = 0, compared = 0;
    for (int i = 0; i < in.n_steps; i++) {
        copse_step s = step(r, i);
        if (s.rollout) {
            rollouts++;
            continue;
        }
        /* the rollout below s: its deepest step's path score is s's select score */
        int first = -1, deepest = -1;
        for (int j = i + 1; j < in.n_steps; j++) {
            copse_step t = step(r, j);
            if (t.rollout && (t.parent == i || (deepest >= 0 && t.parent == deepest))) {
                if (first < 0)
                    first = j;
                deepest = j;
            }
        }
        if (deepest >= 0 && !isnan(step(r, deepest).path_score))
            ck_assert(s.select_score == step(r, deepest).path_score);
        if (first < 0 || !s.kept)
            continue;
        for (int j = 0; j < in.n_steps; j++) {
            copse_step c = step(r, j), fs = step(r, first);
            if (c.parent != i || c.rollout)
                continue;
            ck_assert_int_eq(c.n_tokens, fs.n_tokens);
            ck_assert(!memcmp(c.tokens, fs.tokens, (size_t)c.n_tokens * sizeof *c.tokens));
            compared++;
        }
    }
    ck_assert_int_gt(rollouts, 0);
    ck_assert_int_gt(compared, 0);
    finish(&f, r, &in);
}
END_TEST

/* ------------------------------------------------------------- revisions */

START_TEST(revisions_see_previous_attempts)
{
    copse_model *pm = load(policy_file());
    copse_solve_params p = params(COPSE_REVISE, 3, 3);
    p.sampler.temp = 0;
    p.revise_prompt = "\nAgain:\n";
    copse_result_info in;
    copse_result *r = solve(pm, NULL, &p, &in);
    ck_assert_int_eq(in.n_candidates, 3);
    ck_assert_int_eq(in.pick, COPSE_PICK_MAJORITY);
    for (int a = 0; a < 3; a++)
        ck_assert_int_eq(step(r, candidate(r, a).last_step).attempt, a);
    /* each attempt follows the previous one's last step */
    for (int i = 0; i < in.n_steps; i++) {
        copse_step s = step(r, i);
        if (s.attempt && s.round == 0)
            ck_assert_int_eq(s.parent, candidate(r, s.attempt - 1).last_step);
    }
    check_budget(pm, r, &in, 0);

    /* greedy from prompt + attempt 0 + "\nAgain:\n" gives attempt 1 */
    chat_format f;
    copse_error err;
    char *text;
    ck_assert_int_eq(chat_format_for_gguf(model_gguf(pm), NULL, &f, &err), COPSE_OK);
    ck_assert_int_eq(chat_render(f, NULL, QUESTION, NULL, &text, &err), COPSE_OK);
    int32_t *prompt, *again, ctx_tok[512], want_tok[512];
    int n = tokens_of(pm, text, strlen(text), COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL, &prompt);
    int n_again = tokens_of(pm, p.revise_prompt, strlen(p.revise_prompt), COPSE_TOK_PARSE_SPECIAL, &again);
    memcpy(ctx_tok, prompt, (size_t)n * sizeof *prompt);
    int steps[64], ns, n_want = 0;
    ns = path(r, candidate(r, 0).last_step, steps, 64);
    for (int j = 0; j < ns; j++) {
        copse_step s = step(r, steps[j]);
        int k = s.n_tokens - ends_with_eog(pm, &s);
        memcpy(ctx_tok + n, s.tokens, (size_t)k * sizeof *ctx_tok);
        n += k;
    }
    memcpy(ctx_tok + n, again, (size_t)n_again * sizeof *again);
    n += n_again;
    ns = path(r, candidate(r, 1).last_step, steps, 64);
    for (int j = 0; j < ns; j++) {
        copse_step s = step(r, steps[j]);
        memcpy(want_tok + n_want, s.tokens, (size_t)s.n_tokens * sizeof *want_tok);
        n_want += s.n_tokens;
    }
    copse_ctx_params cp = copse_ctx_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 1;
    copse_ctx *ctx;
    ck_assert_int_eq(copse_ctx_new(pm, &cp, &ctx, &err), COPSE_OK);
    copse_seq *seq = copse_seq_new(ctx);
    copse_sampler_params sp = copse_sampler_default_params();
    sp.temp = 0;
    copse_sampler *greedy = copse_sampler_new(&sp);
    ck_assert_int_eq(copse_decode_tokens(ctx, seq, ctx_tok, n, 0, &err), COPSE_OK);
    for (int j = 0; j < n_want; j++) {
        int32_t t = copse_sample(greedy, copse_get_logits(ctx, j ? 0 : n - 1), copse_n_vocab(pm));
        ck_assert_int_eq(t, want_tok[j]);
        if (j + 1 < n_want)
            ck_assert_int_eq(copse_decode_tokens(ctx, seq, &t, 1, 0, &err), COPSE_OK);
    }
    ck_assert_int_gt(n_want, 0);
    copse_sampler_free(greedy);
    copse_seq_free(seq);
    copse_ctx_free(ctx);
    free(prompt);
    free(again);
    free(text);
    copse_result_free(r);
    copse_model_free(pm);
}
END_TEST

/* ------------------------------------------------------------- budgets */

START_TEST(token_budget_stops_exactly)
{
    fx f = fx_open();
    copse_model *pm = f.pm;
    copse_verifier *v = f.v;
    int strategies[] = { COPSE_BEAM, COPSE_DVTS, COPSE_REVISE, COPSE_WEIGHTED, COPSE_ADAPTIVE };
    for (int i = 0; i < 5; i++) {   /* adaptive: waves left when the budget runs out */
        copse_solve_params p = params(strategies[i], strategies[i] == COPSE_ADAPTIVE ? 8 : 4, 2);
        p.budget_tokens = 23;
        copse_result_info in;
        copse_result *r = solve(pm, v, &p, &in);
        ck_assert(in.budget.stopped);
        ck_assert_int_eq(in.budget.policy_tokens, 23);
        ck_assert_int_gt(in.n_candidates, 0);
        for (int c = 0; strategies[i] == COPSE_ADAPTIVE && c < in.n_candidates; c++)
            ck_assert_int_gt(step(r, candidate(r, c).last_step).n_tokens, 0);   /* no wave after the end */
        check_budget(pm, r, &in, 1);
        copse_result_free(r);
    }
    fx_close(&f);
}
END_TEST

START_TEST(deadline_stops_after_one_batch)
{
    fx f = fx_open();
    copse_solve_params p = params(COPSE_WEIGHTED, 3, 1);
    p.deadline = 1e-9;   /* over before the first batch: each branch keeps the token it had sampled */
    copse_result_info in;
    copse_result *r = solve(f.pm, f.v, &p, &in);
    ck_assert(in.budget.stopped);
    ck_assert_int_eq(in.budget.policy_tokens, 3);
    ck_assert_int_eq(in.n_candidates, 3);
    for (int c = 0; c < 3; c++)
        ck_assert_int_eq(step(r, candidate(r, c).last_step).end, 2);
    finish(&f, r, &in);
}
END_TEST

/* The naive baseline grows the same tree (same seeds, same steps) at the
** cost of re-encoding every prefix. */
START_TEST(naive_baseline_same_search)
{
    fx f = fx_open();
    const int strategies[] = { COPSE_BEAM, COPSE_LOOKAHEAD, COPSE_DVTS, COPSE_REVISE };
    for (int k = 0; k < 4; k++) {
        copse_solve_params p = params(strategies[k], 4, 2);
        p.revise_prompt = "\nAgain:\n";
        copse_result *a, *b;
        copse_error err;
        ck_assert_msg(solve_run(f.pm, f.v, QUESTION, &p, 0, NULL, &a, &err) == COPSE_OK, "%s", err.msg);
        ck_assert_msg(solve_run(f.pm, f.v, QUESTION, &p, 1, NULL, &b, &err) == COPSE_OK, "%s", err.msg);
        copse_result_info ia, ib;
        copse_result_get_info(a, &ia);
        copse_result_get_info(b, &ib);
        ck_assert_int_eq(ia.n_steps, ib.n_steps);
        for (int i = 0; i < ia.n_steps; i++) {
            ck_assert_str_eq(step(a, i).text, step(b, i).text);
            ck_assert(fabsf(step(a, i).score - step(b, i).score) < 1e-4f);
        }
        ck_assert_int_eq(ia.budget.policy_tokens, ib.budget.policy_tokens);
        ck_assert_int_gt(ib.budget.prompt_tokens, ia.budget.prompt_tokens);
        ck_assert_int_gt(ib.budget.verifier_tokens, ia.budget.verifier_tokens);
        copse_result_free(a);
        copse_result_free(b);
    }
    fx_close(&f);
}
END_TEST

/* ------------------------------------------------------------------ crowds */

/* The searches of the crowd test: every strategy, two threads for some,
** one whose KV limit (kv_bytes) is too small for it, and first three
** prompts long enough (about 170 tokens) that two of them pass the rows
** one forward pass takes (FWD_MAX_ROWS), as do the verifier's encodings
** of two searches' 32 steps at a time. */
#define LONG_Q "Tom has 3 apples and buys 4 more. Tom has 3 apples and buys 4 more. " \
               "Tom has 3 apples and buys 4 more. Tom has 3 apples and buys 4 more. How many?"
static const struct crowd_case {
    const char *question;
    int strategy, n, m, threads;
    uint64_t kv_bytes;
    int gemma;   /* tiny-gemma3 and a value head of its own: its attention rounds by the rows a pass takes */
} crowd_cases[] = {
    { "x" LONG_Q, COPSE_WEIGHTED, 32, 1, 1, 0, 1 },
    { "Ann has 2 pens. " LONG_Q, COPSE_BEST_OF_N, 32, 1, 1, 0, 1 },
    { "Bo has 5 cups. " LONG_Q, COPSE_BEAM, 4, 2, 1, 0, 0 },
    { QUESTION, COPSE_BEAM, 4, 2, 1, 0, 0 },
    { "What is 2 + 2?", COPSE_WEIGHTED, 4, 1, 1, 0, 0 },
    { "What is 9 - 3?", COPSE_REVISE, 4, 2, 2, 0, 0 },
    { "What is 5 * 2?", COPSE_DVTS, 4, 2, 1, 0, 0 },
    { "Sam reads 6 pages a day. How many in 3 days?", COPSE_LOOKAHEAD, 4, 2, 2, 0, 0 },
    { QUESTION, COPSE_BEAM, 8, 4, 1, 6 * 8192, 0 },   /* 6 blocks of tiny-llama */
    { "What is 7 + 1?", COPSE_MAJORITY, 1, 1, 1, 0, 0 },
    { "What is 8 - 5?", COPSE_BEST_OF_N, 6, 1, 2, 0, 0 },
    { "What is 6 + 3?", COPSE_ADAPTIVE, 8, 2, 1, 0, 0 },
};
#define N_CROWD (int)(sizeof crowd_cases / sizeof crowd_cases[0])

typedef struct crowd_state {
    fx            *f;
    copse_model   *gemma;
    copse_verifier *gemma_v;
    copse_result  *res[N_CROWD];
    copse_error    err[N_CROWD];
    int            rc[N_CROWD], started, fail_at;
} crowd_state;

static copse_solve_params crowd_params(int i)
{
    const struct crowd_case *c = &crowd_cases[i];
    copse_solve_params p = params(c->strategy, c->n, c->m);
    p.n_threads = c->threads;
    p.kv_bytes = c->kv_bytes;
    p.sampler.seed = 100 + (uint64_t)i;
    p.revise_prompt = "\nAgain:\n";
    return p;
}

static int crowd_job(copse_crowd *crowd, int i, void *user)
{
    crowd_state *st = user;
    copse_solve_params p = crowd_params(i);
    st->started++;
    const struct crowd_case *c = &crowd_cases[i];
    st->rc[i] = copse_crowd_solve(crowd, c->gemma ? st->gemma : st->f->pm, c->gemma ? st->gemma_v : st->f->v,
                                  c->question, &p, &st->res[i], &st->err[i]);
    return i == st->fail_at ? 42 : 0;
}

/* A thread of its own asking a crowd to solve: not one of its jobs. */
typedef struct stray {
    copse_crowd *crowd;
    fx          *f;
    int          rc;
} stray;

static void *stray_main(void *arg)
{
    stray *st = arg;
    copse_solve_params p = params(COPSE_MAJORITY, 1, 1);
    copse_result *r = NULL;
    copse_error err;
    st->rc = copse_crowd_solve(st->crowd, st->f->pm, NULL, QUESTION, &p, &r, &err);
    copse_result_free(r);
    return NULL;
}

static int stray_job(copse_crowd *crowd, int i, void *user)
{
    stray *st = user;
    pthread_t t;
    st[i].crowd = crowd;
    ck_assert_int_eq(pthread_create(&t, NULL, stray_main, &st[i]), 0);
    pthread_join(t, NULL);
    return 0;
}

/* a and b are the same search, bit for bit, but for the wall time. */
static void assert_same_result(const copse_result *a, const copse_result *b, int i)
{
    copse_result_info ia, ib;
    copse_result_get_info(a, &ia);
    copse_result_get_info(b, &ib);
    ck_assert_str_eq(ia.answer, ib.answer);
    ck_assert_int_eq(ia.chosen, ib.chosen);
    ck_assert_int_eq(ia.n_candidates, ib.n_candidates);
    ck_assert_msg(ia.n_steps == ib.n_steps && ia.n_steps > 0, "case %d: %d steps, %d", i, ia.n_steps, ib.n_steps);
    for (int k = 0; k < ia.n_steps; k++) {
        copse_step x = step(a, k), y = step(b, k);
        ck_assert_int_eq(x.n_tokens, y.n_tokens);
        ck_assert_msg(!memcmp(x.tokens, y.tokens, (size_t)x.n_tokens * sizeof *x.tokens), "case %d step %d", i, k);
        ck_assert_msg(memcmp(&x.score, &y.score, sizeof x.score) == 0, "case %d step %d: score %g, alone %g",
                      i, k, (double)y.score, (double)x.score);
        ck_assert_int_eq(x.kept, y.kept);
    }
    for (int k = 0; k < ia.n_candidates; k++)
        ck_assert_str_eq(candidate(a, k).text, candidate(b, k).text);
    copse_budget ba = ia.budget, bb = ib.budget;
    ba.wall_s = bb.wall_s = 0;
    ck_assert_msg(!memcmp(&ba, &bb, sizeof ba), "case %d: budgets differ (KV peak %llu, alone %llu)", i,
                  (unsigned long long)bb.kv_peak_bytes, (unsigned long long)ba.kv_peak_bytes);
}

/*
** A crowd's searches give what each gives alone, step for step and score
** for score, budgets and KV peaks included, 3 of them going at once (so
** batches merge searches at different points: prompts, steps, verifier
** encodings), and 1 at a time: the same on their kernels whatever rows
** share a batch. The search whose KV limit is too small fails as it
** does alone, the others going on. A job's nonzero return stops the
** jobs after it from starting and comes back from copse_crowd_run.
*/
START_TEST(crowd_searches_equal_alone)
{
    fx f = fx_open();
    char args[1024];
    copse_model *gemma = load(model_file("policy-gemma3", "--preset tiny-gemma3"));
    snprintf(args, sizeof args, "--preset tiny-gemma3 --head value --seed 5 --vocab %s",
             model_file("policy-gemma3", "--preset tiny-gemma3"));
    copse_model *gemma_vm = load(model_file("prm-gemma3", args));
    copse_verifier *gemma_v = verifier(gemma_vm, COPSE_PRM_VALUE);
    copse_result *alone[N_CROWD];
    copse_error aerr[N_CROWD];
    int arc[N_CROWD];
    for (int i = 0; i < N_CROWD; i++) {
        const struct crowd_case *c = &crowd_cases[i];
        copse_solve_params p = crowd_params(i);
        arc[i] = copse_solve(c->gemma ? gemma : f.pm, c->gemma ? gemma_v : f.v, c->question, &p, &alone[i], &aerr[i]);
    }
    ck_assert_int_eq(arc[8], COPSE_E_KV_FULL);
    for (int parallel = 3; parallel >= 1; parallel -= 2) {
        crowd_state st = { .f = &f, .gemma = gemma, .gemma_v = gemma_v, .fail_at = -1 };
        copse_error err;
        ck_assert_int_eq(copse_crowd_run(N_CROWD, parallel, crowd_job, &st, &err), 0);
        ck_assert_int_eq(st.started, N_CROWD);
        for (int i = 0; i < N_CROWD; i++) {
            ck_assert_int_eq(st.rc[i], arc[i]);
            if (arc[i])
                ck_assert_str_eq(st.err[i].msg, aerr[i].msg);
            else
                assert_same_result(alone[i], st.res[i], i);
            copse_result_free(st.res[i]);
        }
    }
    crowd_state st = { .f = &f, .gemma = gemma, .gemma_v = gemma_v, .fail_at = 1 };
    copse_error err;
    ck_assert_int_eq(copse_crowd_run(N_CROWD, 2, crowd_job, &st, &err), 42);
    ck_assert_int_eq(err.code, COPSE_OK);
    ck_assert_int_eq(st.started, 2);   /* jobs 0 and 1 only */
    for (int i = 0; i < st.started; i++)
        copse_result_free(st.res[i]);
    stray strays[2] = { { .f = &f }, { .f = &f } };   /* a crowd of one, then of two */
    for (int parallel = 1; parallel <= 2; parallel++) {
        ck_assert_int_eq(copse_crowd_run(parallel, parallel, stray_job, strays, &err), 0);
        for (int i = 0; i < parallel; i++)
            ck_assert_int_eq(strays[i].rc, COPSE_E_ARG);
    }
    ck_assert_int_eq(copse_crowd_run(4, 0, crowd_job, &st, &err), COPSE_E_ARG);
    ck_assert_int_eq(copse_crowd_run(4, 2, NULL, &st, &err), COPSE_E_ARG);
    ck_assert_int_eq(copse_crowd_run(0, 2, crowd_job, &st, &err), COPSE_OK);
    for (int i = 0; i < N_CROWD; i++)
        copse_result_free(alone[i]);
    copse_verifier_free(gemma_v);
    copse_model_free(gemma_vm);
    copse_model_free(gemma);
    fx_close(&f);
}
END_TEST

/* ------------------------------------------------------------- other heads */

START_TEST(two_class_and_label_verifiers)
{
    copse_model *pm = load(policy_file()), *tm = load(two_class_file());
    copse_verifier *kinds[2] = { verifier(tm, COPSE_PRM_TWO_CLASS), verifier(pm, COPSE_PRM_LABELS) };
    for (int k = 0; k < 2; k++) {
        copse_solve_params p = params(COPSE_BEAM, 4, 2);
        copse_result_info in;
        copse_result *r = solve(pm, kinds[k], &p, &in);
        for (int i = 0; i < in.n_steps; i++) {
            copse_step s = step(r, i);
            ck_assert(isnan(s.score) ? s.n_verifier_tokens == 0 : s.score > 0 && s.score < 1);
        }
        check_budget(pm, r, &in, 0);
        check_scores_from_scratch(kinds[k], r, &in, "\n\n", 0);
        copse_result_free(r);
        copse_verifier_free(kinds[k]);
    }
    copse_model_free(tm);
    copse_model_free(pm);
}
END_TEST

/* ------------------------------------------------------------- auto */

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/test-search/%s", tu_build_dir(), name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

START_TEST(auto_follows_the_table)
{
    fx f = fx_open();
    copse_model *pm = f.pm;
    copse_verifier *v = f.v;
    const char *table = write_file("table.txt",
        "copse-tune 1\n# a test table\nprobes 3\nedges 0.5\n\n"
        "row 0 4 weighted 1 1 weighted\nrow 0 10 dvts 2 1 best 0.5\n"
        "row 1 4 majority 1 1 majority\nrow 1 10 beam 2 1 weighted\n");
    copse_solve_params p = params(COPSE_AUTO, 11, 1);
    p.table = table;
    copse_result_info in;
    copse_result *r = solve(pm, v, &p, &in);
    double sum = 0;
    int probes = 0;
    for (int i = 0; i < in.n_steps; i++) {
        copse_step s = step(r, i);
        if (s.probe && s.end) {
            probes++;
            sum += isnan(s.path_score) ? 0 : s.path_score;
        }
        if (s.probe && s.parent >= 0)
            ck_assert(step(r, s.parent).probe);
    }
    ck_assert_int_eq(probes, 3);
    ck_assert(fabs(in.difficulty - (1 - sum / 3)) < 1e-6);
    ck_assert_int_eq(in.bin, in.difficulty >= 0.5);
    ck_assert_int_eq(in.strategy, in.bin ? COPSE_BEAM : COPSE_DVTS);
    ck_assert_int_eq(in.n, 8);   /* 11 - 3 probes, a multiple of m = 2 */
    ck_assert_int_eq(in.m, 2);
    ck_assert_int_eq(in.pick, in.bin ? COPSE_PICK_WEIGHTED : COPSE_PICK_BEST);
    check_budget(pm, r, &in, 1);
    ck_assert_int_gt(in.budget.probe_tokens, 0);
    copse_result_free(r);

    /* no verifier, the built-in table: agreement of the probes' answers
    ** (random text has none, so the hardest bin), then majority */
    p = params(COPSE_AUTO, 6, 1);
    r = solve(pm, NULL, &p, &in);
    ck_assert(in.difficulty == 1);
    ck_assert_int_eq(in.bin, 1);
    ck_assert_int_eq(in.strategy, COPSE_MAJORITY);
    ck_assert_int_eq(in.n, 4);
    check_budget(pm, r, &in, 0);
    copse_result_free(r);

    /* bad tables say where */
    const char *bad[][2] = {
        { "copse-tune 2\nprobes 1\nrow 0 4 weighted 1 1 weighted\n", ":1: not a copse tuning table" },
        { "copse-tune 1\nprobes 1\nrow 0 4 bogus 1 1 weighted\n", ":3: unknown strategy" },
        { "copse-tune 1\nprobes 1\nedges 0.5 0.2\n", ":3: edges must be ascending" },
        { "copse-tune 1\nprobes 1\nrow 3 4 weighted 1 1 weighted\n", "past the last bin" },
        { "copse-tune 1\nprobes 1\n", "needs" },
    };
    for (int i = 0; i < 5; i++) {
        p.table = write_file("bad.txt", bad[i][0]);
        expect_error(pm, v, &p, COPSE_E_FORMAT, bad[i][1]);
    }
    fx_close(&f);
}
END_TEST

static void count_progress(void *user, int done, int total)
{
    int *last = user;
    ck_assert_int_gt(done, last[0]);
    ck_assert_int_le(done, total);
    last[0] = done;
    last[1] = total;
}

/* The auto table copse_tune writes: every bin, every budget, a setting
** that fits the budget's generations after the probes; the same file
** whether the items are searched one at a time or three side by side,
** progress counting up to every run. */
START_TEST(tune_writes_a_table_auto_reads)
{
    fx f = fx_open();
    copse_tune_item items[] = {
        { QUESTION, "7" }, { "What is 2 + 2?", "4" }, { "What is 9 - 3?", "6" }, { "What is 5 * 2?", "10" },
    };
    const int budgets[] = { 3, 6 };
    copse_tune_params tp = copse_tune_default_params();
    tp.base = params(COPSE_MAJORITY, 1, 1);
    tp.budgets = budgets;
    tp.n_budgets = 2;
    tp.probes = 2;
    tp.n_bins = 2;
    char path[512];
    snprintf(path, sizeof path, "%s/test-search/tuned.txt", tu_build_dir());
    copse_error err;
    int calls[2] = { 0, 0 };
    tp.parallel = 1;
    ck_assert_msg(copse_tune(f.pm, f.v, items, 4, &tp, path, &err) == COPSE_OK, "%s", err.msg);
    char *alone = tu_read_file(path, NULL);
    ck_assert_ptr_nonnull(alone);
    tp.parallel = 3;
    tp.progress = count_progress;
    tp.user = calls;
    ck_assert_msg(copse_tune(f.pm, f.v, items, 4, &tp, path, &err) == COPSE_OK, "%s", err.msg);
    char *crowd = tu_read_file(path, NULL);
    ck_assert_ptr_nonnull(crowd);
    ck_assert_str_eq(crowd, alone);
    ck_assert_int_eq(calls[0], calls[1]);
    ck_assert_int_eq(calls[1], 4 * (1 + 10 * 2));   /* the probes, then 10 settings at 2 budgets */
    free(alone);
    free(crowd);
    tune_table t;
    ck_assert_msg(table_load(path, &t, &err) == COPSE_OK, "%s", err.msg);
    ck_assert_int_eq(t.probes, 2);
    ck_assert_int_eq(t.n_rows, t.n_bins * 2);
    for (int i = 0; i < t.n_rows; i++) {
        const tune_row *r = &t.rows[i];
        int g = r->budget - t.probes, n = strategy_fit(r->strategy, r->m, g);
        ck_assert_int_le(n, g);
        ck_assert(r->accuracy >= 0 && r->accuracy <= 1);
        ck_assert_ptr_eq(table_lookup(&t, r->bin, r->budget), r);
    }
    copse_solve_params p = params(COPSE_AUTO, 6, 1);
    p.table = path;
    copse_result_info in;
    copse_result *r = solve(f.pm, f.v, &p, &in);
    const tune_row *row = table_lookup(&t, in.bin, 6);
    ck_assert_int_eq(in.strategy, row->strategy);
    ck_assert_int_eq(in.n, strategy_fit(row->strategy, row->m, 4));
    table_free(&t);
    tp.progress = NULL;
    items[2].question = LONG_Q LONG_Q;   /* longer than the context: its probe fails, and so does tuning */
    ck_assert_int_eq(copse_tune(f.pm, f.v, items, 4, &tp, path, &err), COPSE_E_CTX_FULL);
    ck_assert_msg(strstr(err.msg, "the prompt has") && strstr(err.msg, "the context holds 256"), "%s", err.msg);
    items[0].answer = NULL;
    ck_assert_int_eq(copse_tune(f.pm, f.v, items, 4, &tp, path, &err), COPSE_E_ARG);
    finish(&f, r, &in);
}
END_TEST

/* ------------------------------------------------------------- command */

START_TEST(solve_command)
{
    static char out[1 << 20];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/bin/copse solve -m %s --prm %s --strategy beam --n 4 --m 2 --max-steps 2 "
             "--max-step-tokens 4 --ctx 256 -t 1 --json '" QUESTION "'", tu_build_dir(), policy_file(),
             value_file());
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"strategy\":\"beam\""));
    ck_assert_ptr_nonnull(strstr(out, "\"budget\":{\"generations\":"));
    snprintf(cmd, sizeof cmd, "%s/bin/copse solve -m %s --strategy majority --n 2 --max-steps 2 "
             "--max-step-tokens 4 --ctx 256 -t 1 --budget 30t '" QUESTION "'", tu_build_dir(), policy_file());
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "answer: "));
    ck_assert_ptr_nonnull(strstr(out, "candidates (2):"));
    /* the PRM as its own policy (one model loaded), the question on stdin */
    snprintf(cmd, sizeof cmd, "echo '" QUESTION "' | %s/bin/copse solve -m %s --prm %s --strategy weighted "
             "--n 2 --max-steps 2 --max-step-tokens 4 --ctx 256 -t 1 --json", tu_build_dir(), value_file(),
             value_file());
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"strategy\":\"weighted\""));
    ck_assert_ptr_nonnull(strstr(out, "\"verifier_prompt_tokens\":"));
    ck_assert_ptr_null(strstr(out, "\"verifier_tokens\":0,"));
    const char *data = write_file("val.jsonl", "{\"question\": \"What is 2+2?\", \"answer\": 4}\n"
                                              "{\"answer\": \"8\", \"question\": \"What is 3+\\u0035?\"}\n");
    snprintf(cmd, sizeof cmd, "%s/bin/copse tune -q -m %s --data %s -o %s/test-search/cli-table.txt --budgets 3 "
             "--probes 1 --bins 1 --max-steps 2 --max-step-tokens 4 --ctx 256 -t 1 2>&1", tu_build_dir(),
             policy_file(), data, tu_build_dir());
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "%s/test-search/cli-table.txt", tu_build_dir());
    char *table = tu_read_file(cmd, NULL);
    ck_assert_ptr_nonnull(table);
    ck_assert_ptr_nonnull(strstr(table, "probes 1\nedges\n"));
    ck_assert_ptr_nonnull(strstr(table, "\nrow 0 3 "));
    free(table);
    data = write_file("bad.jsonl", "{\"question\": \"What?\"}\n");
    snprintf(cmd, sizeof cmd, "%s/bin/copse tune -m %s --data %s -o /dev/null 2>&1", tu_build_dir(),
             policy_file(), data);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "bad.jsonl:1: no \"question\" or no \"answer\""));
    snprintf(cmd, sizeof cmd, "%s/bin/copse solve -m %s --strategy bean 'q' 2>&1", tu_build_dir(), policy_file());
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown --strategy 'bean'"));
    snprintf(cmd, sizeof cmd, "%s/bin/copse solve -m %s --strategy dvts --n 6 --m 4 'q' 2>&1", tu_build_dir(),
             policy_file());
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "dvts needs n to be a multiple of m"));
    snprintf(cmd, sizeof cmd, "%s/bin/copse solve -m %s --strategy adaptive --confidence 0.3 'q' 2>&1",
             tu_build_dir(), policy_file());
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--confidence"));
    /* adaptive in JSON: its name, the generations it drew */
    snprintf(cmd, sizeof cmd, "%s/bin/copse solve -m %s --strategy adaptive --n 8 --m 2 --max-steps 1 "
             "--max-step-tokens 1 --top-k 3 --prefix 'The answer is ' --ctx 256 -t 1 --json '" QUESTION "'",
             tu_build_dir(), policy_file());
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"strategy\":\"adaptive\""));
    ck_assert_ptr_nonnull(strstr(out, "\"pick\":\"majority\""));
}
END_TEST

Suite *copse_suite_search(void)
{
    Suite *s = suite_create("search");
    TCase *tc = tcase_create("search");
    tcase_add_test(tc, verifier_kinds_and_errors);
    tcase_add_test(tc, solve_bad_input);
    tcase_add_test(tc, best_of_n_structure_and_budget);
    tcase_add_test(tc, weighted_and_majority_votes);
    tcase_add_test(tc, pick_rules);
    tcase_add_test(tc, adaptive_stops_when_the_vote_is_settled);
    tcase_add_test(tc, beam_keeps_top_n_over_m);
    tcase_add_test(tc, dvts_subtrees_never_share);
    tcase_add_test(tc, lookahead_rolls_back);
    tcase_add_test(tc, revisions_see_previous_attempts);
    tcase_add_test(tc, token_budget_stops_exactly);
    tcase_add_test(tc, deadline_stops_after_one_batch);
    tcase_add_test(tc, naive_baseline_same_search);
    tcase_add_test(tc, crowd_searches_equal_alone);
    tcase_add_test(tc, two_class_and_label_verifiers);
    tcase_add_test(tc, auto_follows_the_table);
    tcase_add_test(tc, tune_writes_a_table_auto_reads);
    tcase_add_test(tc, solve_command);
    suite_add_tcase(s, tc);
    return s;
}
