/*
** Sequences that share their past: fork, truncate, hidden states.
**
** Reference: one sequence decoded from scratch with the same tokens, in
** one batch. Tolerance: a logit may differ from the reference by TOL times
** the largest |logit| of its position (at least 1); with f32 KV the only
** differences are f32 sums taken in another order (about 1e-6).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "testutil.h"
#include "copse.h"
#include "model.h"

#define MODELS "tests/data/models"
#define TOL    1e-5
#define N_TOK  48

static copse_model *load(const char *name)
{
    char path[256];
    copse_model *m;
    copse_error e;
    snprintf(path, sizeof path, MODELS "/%s.gguf", name);
    ck_assert_msg(copse_model_load(path, NULL, &m, &e) == COPSE_OK, "%s: %s", path, e.msg);
    return m;
}

static copse_ctx *new_ctx(copse_model *m)
{
    copse_ctx_params p = copse_ctx_default_params();
    copse_ctx *c;
    copse_error e;
    p.n_ctx = 256;
    p.n_threads = 2;
    ck_assert_msg(copse_ctx_new(m, &p, &c, &e) == COPSE_OK, "%s", e.msg);
    return c;
}

/* A deterministic token stream; salt picks a different one. */
static void tokens(int32_t *tok, int n, int n_vocab, int salt)
{
    for (int i = 0; i < n; i++)
        tok[i] = (int32_t)(((i + 1) * 7919 + salt * 104729) % n_vocab);
}

/* Two N_TOK-token streams that agree on their first P tokens only. */
static void two_streams(int32_t *tok, int32_t *alt, int P, int n_vocab)
{
    tokens(tok, N_TOK, n_vocab, 0);
    memcpy(alt, tok, N_TOK * sizeof *tok);
    tokens(alt + P, N_TOK - P, n_vocab, 1);
}

static void decode_ok(copse_ctx *c, copse_seq *s, const int32_t *tok, int n)
{
    copse_error e;
    ck_assert_msg(copse_decode_tokens(c, s, tok, n, 1, &e) == COPSE_OK, "%s", e.msg);
}

static void assert_close(const float *got, const float *want, int n, const char *what, int pos)
{
    ck_assert_msg(got != NULL, "%s: no logits at %d", what, pos);
    double scale = 1, worst = 0;
    int at = 0;
    for (int j = 0; j < n; j++)
        scale = fmax(scale, fabs(want[j]));
    for (int j = 0; j < n; j++)
        if (fabs(got[j] - want[j]) > worst)
            worst = fabs(got[j] - want[j]), at = j;
    ck_assert_msg(worst <= TOL * scale, "%s, position %d: logit %d is %.7g, expected %.7g (scale %.3g)",
                  what, pos, at, got[at], want[at], scale);
}

/* Logits of n tokens decoded from scratch into a new sequence, copied. */
static float *scratch_logits(copse_ctx *c, const int32_t *tok, int n, int nv)
{
    copse_seq *s = copse_seq_new(c);
    float *out = malloc(sizeof(float) * (size_t)n * nv);
    ck_assert_ptr_nonnull(out);
    decode_ok(c, s, tok, n);
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * nv, copse_get_logits(c, i), sizeof(float) * (size_t)nv);
    copse_seq_free(s);
    return out;
}

/* The logits of the last decode (entries 0..n-1) against ref rows from..from+n-1. */
static void assert_rows(copse_ctx *c, const float *ref, int nv, int from, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        assert_close(copse_get_logits(c, i), ref + (size_t)(from + i) * nv, nv, what, from + i);
}

/* Fork points at block boundaries and inside blocks. */
static const int fork_at[] = { 0, 1, 15, 16, 17, 31, 32, 33, 47 };
#define N_FORK_AT (int)(sizeof fork_at / sizeof fork_at[0])

/*
** Decode P tokens, fork, then the parent goes on with other tokens while
** the child goes on with the reference's: each must match its own
** from-scratch decode, so neither wrote into what the other reads.
*/
START_TEST(fork_then_extend_equals_scratch)
{
    int P = fork_at[_i];
    copse_model *m = load("tiny-qwen2");
    copse_ctx *c = new_ctx(m);
    int nv = copse_n_vocab(m);
    int32_t tok[N_TOK], alt[N_TOK];
    two_streams(tok, alt, P, nv);
    float *ref = scratch_logits(c, tok, N_TOK, nv), *ref_alt = scratch_logits(c, alt, N_TOK, nv);

    copse_seq *parent = copse_seq_new(c);
    if (P)
        decode_ok(c, parent, tok, P);
    copse_seq *child = copse_seq_fork(parent);
    ck_assert_ptr_nonnull(child);
    ck_assert_int_eq(copse_seq_len(child), P);
    /* one token at a time, alternating, so the two grow side by side */
    for (int i = P; i < N_TOK; i++) {
        decode_ok(c, parent, alt + i, 1);
        assert_rows(c, ref_alt, nv, i, 1, "parent");
        decode_ok(c, child, tok + i, 1);
        assert_rows(c, ref, nv, i, 1, "child");
    }
    free(ref);
    free(ref_alt);
    copse_ctx_free(c);
    copse_model_free(m);
}
END_TEST

/* Truncating to P and decoding other tokens equals the other tokens from scratch. */
START_TEST(truncate_then_extend_equals_scratch)
{
    int P = fork_at[_i];
    copse_model *m = load("tiny-llama-gqa-untied");
    copse_ctx *c = new_ctx(m);
    int nv = copse_n_vocab(m);
    int32_t tok[N_TOK], alt[N_TOK];
    two_streams(tok, alt, P, nv);
    float *ref_alt = scratch_logits(c, alt, N_TOK, nv);

    copse_seq *s = copse_seq_new(c);
    decode_ok(c, s, tok, N_TOK);
    ck_assert_int_eq(copse_seq_truncate(s, N_TOK + 1), COPSE_E_ARG);
    ck_assert_int_eq(copse_seq_truncate(s, -1), COPSE_E_ARG);
    ck_assert_int_eq(copse_seq_len(s), N_TOK);
    ck_assert_int_eq(copse_seq_truncate(s, P), COPSE_OK);
    ck_assert_int_eq(copse_seq_len(s), P);
    decode_ok(c, s, alt + P, N_TOK - P);
    assert_rows(c, ref_alt, nv, P, N_TOK - P, "after truncate");
    free(ref_alt);
    copse_ctx_free(c);
    copse_model_free(m);
}
END_TEST

/*
** The hidden state is the output norm's result: on a tied f32 model the
** logits are the token embeddings times it. Entries may ask for either
** or both.
*/
START_TEST(hidden_state_gives_the_logits)
{
    copse_model *m = load("tiny-llama");
    copse_ctx *c = new_ctx(m);
    int nv = copse_n_vocab(m), d = m->info.n_embd;
    ck_assert(m->info.tied_output);
    int32_t tok[8];
    tokens(tok, 8, nv, 0);
    copse_seq *s = copse_seq_new(c), *seq[8];
    uint8_t want[8];
    for (int i = 0; i < 8; i++)
        seq[i] = s, want[i] = (uint8_t)(i % 4);   /* none, logits, hidden, both */
    copse_batch b = { 8, seq, tok, want };
    copse_error e;
    ck_assert_msg(copse_decode(c, &b, &e) == COPSE_OK, "%s", e.msg);
    float *logits = malloc(sizeof(float) * (size_t)nv);
    for (int i = 0; i < 8; i++) {
        const float *h = copse_get_hidden(c, i);
        ck_assert((h != NULL) == ((want[i] & COPSE_WANT_HIDDEN) != 0));
        ck_assert((copse_get_logits(c, i) != NULL) == ((want[i] & COPSE_WANT_LOGITS) != 0));
        if (!h || !copse_get_logits(c, i))
            continue;
        for (int j = 0; j < nv; j++) {
            double sum = 0;
            for (int k = 0; k < d; k++)
                sum += (double)m->tok_embd[(size_t)j * d + k] * h[k];
            logits[j] = (float)sum;
        }
        assert_close(logits, copse_get_logits(c, i), nv, "embeddings · hidden", i);
    }
    ck_assert_ptr_null(copse_get_hidden(c, 8));
    free(logits);
    copse_ctx_free(c);
    copse_model_free(m);
}
END_TEST

Suite *copse_suite_kv(void)
{
    Suite *s = suite_create("kv");
    TCase *tc = tcase_create("sharing");
    tcase_add_loop_test(tc, fork_then_extend_equals_scratch, 0, N_FORK_AT);
    tcase_add_loop_test(tc, truncate_then_extend_equals_scratch, 0, N_FORK_AT);
    tcase_add_test(tc, hidden_state_gives_the_logits);
    suite_add_tcase(s, tc);
    return s;
}
