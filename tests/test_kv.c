/*
** The paged KV cache: sequences that share their past (fork, truncate,
** free), batches of branches, the pool's invariants and memory, a full
** pool, and the attention kernels.
**
** Reference: one sequence decoded from scratch with the same tokens and
** weights in a context with f32 keys and values. A logit may differ from
** it by a tolerance times the largest |logit| of its position (at least 1):
**   f32 KV  1e-5  the only difference is the order of f32 sums (about 1e-6),
**                 with f32 weights or int8 ones (whose activations are
**                 quantized row by row, whatever else is in the batch);
**   f16 KV  3e-3  rounding keys and values to half costs up to 9e-4 on the
**                 tiny models against their float64 goldens;
**   int8    5e-2  with int8 weights (f16 or f32 KV): attention sums a row's
**                 blocks in an order that depends on the batch (which rows
**                 share which blocks, how threads split them); a 1e-7
**                 difference that moves an activation across a rounding
**                 boundary of the next int8 quantization grows through the
**                 layers to 1-2% of the scale on these random models
**                 (tests/test_int8.c bounds int8 against f32 at 10%).
** The equivalence tests run in three modes: f32 weights and KV (tight: the
** KV cache's own correctness), int8 weights with f32 KV, int8 weights with
** f16 KV (the default).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "testutil.h"
#include "attn_exact.h"
#include "copse.h"
#include "model.h"
#include "attention.h"
#include "context.h"
#include "q8.h"
#include "f16.h"

#define MODELS  "tests/data/models"
#define TOL_F32 1e-5
#define TOL_F16 3e-3
#define TOL_INT8 5e-2
#define N_TOK   48
#define MAX_TOK 160

typedef struct mode { int weights_f32, kv_f16; double tol; const char *name; } mode;

static const mode modes[] = {
    { 1, 0, TOL_F32, "f32 weights, f32 KV" },
    { 0, 0, TOL_INT8, "int8 weights, f32 KV" },
    { 0, 1, TOL_INT8, "int8 weights, f16 KV" },
};
#define N_MODES (int)(sizeof modes / sizeof modes[0])

static copse_model *load_as(const char *name, int weights_f32)
{
    char path[256];
    copse_model *m;
    copse_error e;
    copse_model_params p = copse_model_default_params();
    p.weights_f32 = weights_f32;
    snprintf(path, sizeof path, MODELS "/%s.gguf", name);
    ck_assert_msg(copse_model_load(path, &p, &m, &e) == COPSE_OK, "%s: %s", path, e.msg);
    return m;
}

static copse_model *load(const char *name)
{
    return load_as(name, 0);
}

/*
** A context of 512 positions; kv_tokens 0 for the default pool. One
** thread unless a test says otherwise: these models are too small for
** threads to pay, and idle OpenMP threads spin (test_model and
** attention_walk_matches_naive cover the threaded paths).
*/
static copse_ctx *new_ctx_threads(copse_model *m, int f16, int kv_tokens, int threads)
{
    copse_ctx_params p = copse_ctx_default_params();
    copse_ctx *c;
    copse_error e;
    p.n_ctx = 512;
    p.n_threads = threads;
    p.kv_f32 = !f16;
    p.kv_tokens = kv_tokens;
    ck_assert_msg(copse_ctx_new(m, &p, &c, &e) == COPSE_OK, "%s", e.msg);
    return c;
}

static copse_ctx *new_ctx(copse_model *m, int f16, int kv_tokens)
{
    return new_ctx_threads(m, f16, kv_tokens, 1);
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

static void assert_close(const float *got, const float *want, int n, double tolerance, const char *what, int pos)
{
    ck_assert_msg(got != NULL, "%s: no logits at %d", what, pos);
    double scale = 1, worst = 0;
    int at = 0;
    for (int j = 0; j < n; j++)
        scale = fmax(scale, fabs(want[j]));
    for (int j = 0; j < n; j++)
        if (fabs(got[j] - want[j]) > worst)
            worst = fabs(got[j] - want[j]), at = j;
    ck_assert_msg(worst <= tolerance * scale, "%s, position %d: logit %d is %.7g, expected %.7g (scale %.3g)",
                  what, pos, at, got[at], want[at], scale);
}

/* Logits of n tokens decoded from scratch into a new sequence of ref, copied. */
static float *scratch_logits(copse_ctx *ref, const int32_t *tok, int n, int nv)
{
    copse_seq *s = copse_seq_new(ref);
    float *out = malloc(sizeof(float) * (size_t)n * nv);
    ck_assert_ptr_nonnull(out);
    decode_ok(ref, s, tok, n);
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * nv, copse_get_logits(ref, i), sizeof(float) * (size_t)nv);
    copse_seq_free(s);
    return out;
}

/* got (logits of the position n - 1) against the scratch decode of tok[0..n). */
static void assert_like_scratch(copse_ctx *ref, const float *got, const int32_t *tok, int n, int nv,
                                double tolerance, const char *what)
{
    float *want = scratch_logits(ref, tok, n, nv);
    assert_close(got, want + (size_t)(n - 1) * nv, nv, tolerance, what, n - 1);
    free(want);
}

static void assert_pool_ok(copse_ctx *c)
{
    char why[256];
    ck_assert_msg(kv_check(ctx_kv_pool(c), why, sizeof why) == COPSE_OK, "%s", why);
}

/* ---------------------------------------------------- fork and truncate */

/* Fork points at block boundaries and inside blocks: all of them with
** the tight f32 mode, a few with the int8 ones. */
static const struct fork_case { int P, mode; } fork_cases[] = {
    { 0, 0 }, { 1, 0 }, { 15, 0 }, { 16, 0 }, { 17, 0 }, { 33, 0 },
    { 16, 1 }, { 17, 1 }, { 16, 2 }, { 17, 2 }, { 33, 2 },
};
#define N_FORK_CASES (int)(sizeof fork_cases / sizeof fork_cases[0])

/*
** Decode P tokens, fork, then the parent goes on with other tokens while
** the child goes on with the reference's: each must match its own
** from-scratch decode, so neither wrote into what the other reads.
** Loop index: a fork case, then the same with tiny-gemma3 (local layers).
*/
START_TEST(fork_then_extend_equals_scratch)
{
    int P = fork_cases[_i % N_FORK_CASES].P;
    const mode *md = &modes[fork_cases[_i % N_FORK_CASES].mode];
    copse_model *m = load_as(_i < N_FORK_CASES ? "tiny-qwen2" : "tiny-gemma3", md->weights_f32);
    copse_ctx *c = new_ctx(m, md->kv_f16, 0), *ref = new_ctx(m, 0, 0);
    int nv = copse_n_vocab(m);
    int32_t tok[N_TOK], alt[N_TOK];
    two_streams(tok, alt, P, nv);
    float *want = scratch_logits(ref, tok, N_TOK, nv), *want_alt = scratch_logits(ref, alt, N_TOK, nv);

    copse_seq *parent = copse_seq_new(c);
    if (P)
        decode_ok(c, parent, tok, P);
    copse_seq *child = copse_seq_fork(parent);
    ck_assert_ptr_nonnull(child);
    ck_assert_int_eq(copse_seq_len(child), P);
    /* one token at a time, alternating, so the two grow side by side */
    for (int i = P; i < N_TOK; i++) {
        decode_ok(c, parent, alt + i, 1);
        assert_close(copse_get_logits(c, 0), want_alt + (size_t)i * nv, nv, md->tol, md->name, i);
        decode_ok(c, child, tok + i, 1);
        assert_close(copse_get_logits(c, 0), want + (size_t)i * nv, nv, md->tol, md->name, i);
        assert_pool_ok(c);
    }
    free(want);
    free(want_alt);
    copse_ctx_free(c);
    copse_ctx_free(ref);
    copse_model_free(m);
}
END_TEST

/* Truncating to P and decoding other tokens equals the other tokens from
** scratch, also when a fork still holds what was cut. */
START_TEST(truncate_then_extend_equals_scratch)
{
    int P = fork_cases[_i].P;
    const mode *md = &modes[fork_cases[_i].mode];
    copse_model *m = load_as("tiny-llama-gqa-untied", md->weights_f32);
    copse_ctx *c = new_ctx(m, md->kv_f16, 0), *ref = new_ctx(m, 0, 0);
    int nv = copse_n_vocab(m);
    int32_t tok[N_TOK], alt[N_TOK];
    two_streams(tok, alt, P, nv);
    float *want = scratch_logits(ref, tok, N_TOK, nv), *want_alt = scratch_logits(ref, alt, N_TOK, nv);

    copse_seq *s = copse_seq_new(c);
    decode_ok(c, s, tok, N_TOK - 1);
    copse_seq *keep = copse_seq_fork(s);
    ck_assert_int_eq(copse_seq_truncate(s, N_TOK), COPSE_E_ARG);
    ck_assert_int_eq(copse_seq_truncate(s, -1), COPSE_E_ARG);
    ck_assert_int_eq(copse_seq_truncate(NULL, 0), COPSE_E_ARG);
    ck_assert_int_eq(copse_seq_len(s), N_TOK - 1);
    ck_assert_int_eq(copse_seq_truncate(s, P), COPSE_OK);
    ck_assert_int_eq(copse_seq_len(s), P);
    assert_pool_ok(c);
    decode_ok(c, s, alt + P, N_TOK - P);
    for (int i = P; i < N_TOK; i++)
        assert_close(copse_get_logits(c, i - P), want_alt + (size_t)i * nv, nv, md->tol, md->name, i);
    decode_ok(c, keep, tok + N_TOK - 1, 1);
    assert_close(copse_get_logits(c, 0), want + (size_t)(N_TOK - 1) * nv, nv, md->tol, md->name, N_TOK - 1);
    assert_pool_ok(c);
    free(want);
    free(want_alt);
    copse_ctx_free(c);
    copse_ctx_free(ref);
    copse_model_free(m);
}
END_TEST

/*
** The hidden state is the output norm's result: on a tied model on the
** f32 path the logits are the token embeddings times it. Entries may ask
** for either or both.
*/
START_TEST(hidden_state_gives_the_logits)
{
    copse_model *m = load_as("tiny-llama", 1);
    copse_ctx *c = new_ctx(m, 1, 0);
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
        assert_close(logits, copse_get_logits(c, i), nv, TOL_F32, "embeddings · hidden", i);
    }
    ck_assert_ptr_null(copse_get_hidden(c, 8));
    ck_assert_ptr_null(copse_get_hidden(c, -1));
    free(logits);
    copse_ctx_free(c);
    copse_model_free(m);
}
END_TEST

/* ------------------------------------------------------------- batches */

#define N_BRANCH 6

/* A live sequence and the tokens it holds. */
typedef struct shadow {
    copse_seq *s;
    int32_t    tok[MAX_TOK];
    int        len;
} shadow;

static void fork_shadow(shadow *dst, const shadow *src)
{
    *dst = *src;
    dst->s = copse_seq_fork(src->s);
    ck_assert_ptr_nonnull(dst->s);
}

static void truncate_shadow(shadow *sh, int n)
{
    ck_assert_int_eq(copse_seq_truncate(sh->s, n), COPSE_OK);
    sh->len = n;
}

/*
** Branches forked from one prompt at different points, and a new
** sequence's prompt chunk, decoded together in one batch per step (one
** branch taking several tokens at once now and then): every entry equals
** its sequence decoded alone. Loop index: mode, then the same with
** tiny-gemma3, whose local layers' windows (11 positions) start inside
** blocks, skip the prompt's first blocks and end spans, and with
** tiny-olmo2, whose whole-row Q and K norms come before attention.
*/
START_TEST(batch_of_branches_equals_alone)
{
    static const char *const models[] = { "tiny-qwen2", "tiny-gemma3", "tiny-olmo2" };
    const mode *md = &modes[_i % N_MODES];
    copse_model *m = load_as(models[_i / N_MODES], md->weights_f32);
    copse_ctx *c = new_ctx_threads(m, md->kv_f16, 0, 2), *ref = new_ctx(m, 0, 0);
    int nv = copse_n_vocab(m);
    shadow br[N_BRANCH + 1];
    br[0].s = copse_seq_new(c);
    br[0].len = 37;
    tokens(br[0].tok, 37, nv, 0);
    decode_ok(c, br[0].s, br[0].tok, 37);
    for (int i = 1; i < N_BRANCH; i++)
        fork_shadow(&br[i], &br[0]);
    truncate_shadow(&br[3], 16);
    truncate_shadow(&br[4], 21);
    fork_shadow(&br[5], &br[4]);
    br[N_BRANCH].s = copse_seq_new(c);
    br[N_BRANCH].len = 0;

    for (int step = 0; step < 12; step++) {
        copse_seq *seq[32];
        int32_t tok[32];
        int who[32], n = 0;
        for (int i = 0; i <= N_BRANCH; i++) {
            int k = i == N_BRANCH ? (step == 0 ? 9 : 1) : i == 2 && step % 5 == 1 ? 3 : 1;
            for (int j = 0; j < k; j++) {
                shadow *sh = &br[i];
                sh->tok[sh->len] = (int32_t)((step * 131 + i * 17 + j * 7 + 3) % nv);
                seq[n] = sh->s, tok[n] = sh->tok[sh->len++], who[n++] = i;
            }
        }
        copse_batch b = { n, seq, tok, NULL };
        uint8_t want[32];
        memset(want, COPSE_WANT_LOGITS, sizeof want);
        b.want = want;
        copse_error e;
        ck_assert_msg(copse_decode(c, &b, &e) == COPSE_OK, "%s", e.msg);
        /* entry k is its sequence's position len - (entries of it after k) - 1 */
        for (int k = 0; k < n; k++) {
            int later = 0;
            for (int j = k + 1; j < n; j++)
                later += who[j] == who[k];
            assert_like_scratch(ref, copse_get_logits(c, k), br[who[k]].tok, br[who[k]].len - later, nv,
                                md->tol, md->name);
        }
        assert_pool_ok(c);
    }
    for (int i = 0; i <= N_BRANCH; i++)
        ck_assert_int_eq(copse_seq_len(br[i].s), br[i].len);
    copse_ctx_free(c);
    copse_ctx_free(ref);
    copse_model_free(m);
}
END_TEST

/*
** A crowd of searches (search/crowd.c) merges their batches, so a row's
** outputs must not depend on the rows beside it: a prompt decoded alone,
** then in one batch after another sequence's prompt rows (which moves
** where the two threads' shares of the attention begin), then on one
** thread, gives the same logits to the bit. Loop index: a model.
*/
START_TEST(rows_do_not_depend_on_their_batch)
{
    static const char *const models[] = { "tiny-qwen2", "tiny-gemma3" };
    copse_model *m = load(models[_i]);
    int nv = copse_n_vocab(m);
    enum { P = 45, OTHER = 29 };
    int32_t tok[P + OTHER], *other = tok + P;
    tokens(tok, P, nv, 3);
    tokens(other, OTHER, nv, 4);
    float *alone = malloc(sizeof(float) * (size_t)P * nv);
    ck_assert_ptr_nonnull(alone);
    for (int run = 0; run < 3; run++) {
        copse_ctx *c = new_ctx_threads(m, 1, 0, run == 2 ? 1 : 2);
        copse_seq *a = copse_seq_new(c), *x = copse_seq_new(c), *seq[P + OTHER];
        uint8_t want[P + OTHER];
        int n = 0;
        if (run == 1) {
            decode_ok(c, x, other, 7);
            for (int i = 7; i < OTHER; i++)
                seq[n] = x, want[n++] = COPSE_WANT_LOGITS;
        }
        int at = n;
        for (int i = 0; i < P; i++)
            seq[n] = a, want[n++] = COPSE_WANT_LOGITS;
        int32_t btok[P + OTHER];
        memcpy(btok, other + 7, (size_t)at * sizeof *btok);
        memcpy(btok + at, tok, P * sizeof *btok);
        copse_batch b = { n, seq, btok, want };
        copse_error e;
        ck_assert_msg(copse_decode(c, &b, &e) == COPSE_OK, "%s", e.msg);
        for (int i = 0; i < P; i++) {
            const float *l = copse_get_logits(c, at + i);
            if (run == 0)
                memcpy(alone + (size_t)i * nv, l, sizeof(float) * (size_t)nv);
            else
                ck_assert_msg(!memcmp(l, alone + (size_t)i * nv, sizeof(float) * (size_t)nv),
                              "%s, run %d: position %d differs from alone", models[_i], run, i);
        }
        copse_ctx_free(c);
    }
    free(alone);
    copse_model_free(m);
}
END_TEST

/* -------------------------------------------------- the pool's invariants */

#define PROP_SEQS 12

typedef struct prop {
    copse_ctx *c, *ref;
    int        nv, n;
    shadow     sh[PROP_SEQS];
    uint64_t   rng;
    int        n_full, n_checked;
    kv_account acct[2];   /* with limits: new sequences go under one or the other */
} prop;

static unsigned rnd(prop *p, unsigned n)
{
    p->rng = p->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(p->rng >> 33) % n;
}

static void remove_seq(prop *p, int i)
{
    copse_seq_free(p->sh[i].s);
    p->sh[i] = p->sh[--p->n];
}

/* Extend k random sequences by a few tokens each, in one batch; every
** tenth time compare one entry's logits with the scratch decode. */
static void extend(prop *p)
{
    copse_seq *seq[64];
    int32_t tok[64];
    int len0[PROP_SEQS], n = 0, k = 1 + (int)rnd(p, 3);
    for (int i = 0; i < p->n; i++)
        len0[i] = p->sh[i].len;
    for (int j = 0; j < k; j++) {
        int i = (int)rnd(p, (unsigned)p->n), add = 1 + (int)rnd(p, 20);
        shadow *sh = &p->sh[i];
        for (int t = 0; t < add && sh->len < MAX_TOK; t++) {
            sh->tok[sh->len] = (int32_t)rnd(p, (unsigned)p->nv);
            seq[n] = sh->s, tok[n++] = sh->tok[sh->len++];
        }
    }
    if (n == 0)
        return;
    copse_kv_stats before;
    copse_kv_stats_get(p->c, &before);
    int used0 = p->acct[0].used, used1 = p->acct[1].used;
    copse_batch b = { n, seq, tok, NULL };
    copse_error e;
    int rc = copse_decode(p->c, &b, &e);
    if (rc == COPSE_E_KV_FULL) {
        /* nothing moved: lengths and blocks as before */
        copse_kv_stats after;
        copse_kv_stats_get(p->c, &after);
        ck_assert_int_eq(after.blocks_used, before.blocks_used);
        ck_assert_int_eq(p->acct[0].used, used0);
        ck_assert_int_eq(p->acct[1].used, used1);
        for (int i = 0; i < p->n; i++) {
            p->sh[i].len = len0[i];
            ck_assert_int_eq(copse_seq_len(p->sh[i].s), len0[i]);
        }
        p->n_full++;
        return;
    }
    ck_assert_msg(rc == COPSE_OK, "%s", e.msg);
    if (rnd(p, 10) == 0) {
        const shadow *sh = NULL;
        for (int i = 0; i < p->n && !sh; i++)
            if (p->sh[i].s == seq[n - 1])
                sh = &p->sh[i];
        assert_like_scratch(p->ref, copse_get_logits(p->c, n - 1), sh->tok, sh->len, p->nv, TOL_F16, "property");
        p->n_checked++;
    }
}

/* The stats agree with the shadows and with the pool. */
static void check_stats(prop *p)
{
    copse_kv_stats st;
    copse_kv_stats_get(p->c, &st);
    int64_t logical = 0;
    for (int i = 0; i < p->n; i++)
        logical += p->sh[i].len;
    ck_assert_int_eq(st.tokens_logical, logical);
    ck_assert_int_le(st.tokens_stored, (int64_t)st.blocks_used * st.block_tokens);
    ck_assert_int_ge(st.tokens_stored, st.blocks_used);   /* a block holds at least one position */
    ck_assert_uint_eq(st.bytes_used, st.bytes_total / (uint64_t)st.blocks_total * (uint64_t)st.blocks_used);
    ck_assert_int_ge(st.peak_blocks_used, st.blocks_used);
    assert_pool_ok(p->c);
}

/*
** Thousands of random operations on a pool of 40 blocks (so it fills up
** now and then): new, fork, extend (several sequences in one batch),
** truncate, free. After each the invariants hold (kv_check: counts match
** the tables, free list exact, nothing written into a shared block) and
** the stats add up; after freeing everything no block is in use.
** Loop index 1: each sequence under one of two accounts (a crowd's
** searches), whose limits of 18 and 26 blocks fill before the pool or
** after it; each account's count stays exact (kv_check) and a batch past
** either limit changes nothing.
*/
START_TEST(random_operations_keep_the_invariants)
{
    copse_model *m = load_as("tiny-qwen2", 1);
    prop p = { .c = new_ctx(m, 1, 40 * KV_BLOCK), .ref = new_ctx(m, 0, 0), .nv = copse_n_vocab(m), .rng = 42 + _i,
               .acct = { { .limit = 18 }, { .limit = 26 } } };
    for (int op = 0; op < 3000; op++) {
        unsigned what = rnd(&p, 100);
        if (p.n == 0 || (what < 8 && p.n < PROP_SEQS)) {
            p.sh[p.n].s = _i ? ctx_seq_new(p.c, &p.acct[rnd(&p, 2)]) : copse_seq_new(p.c);
            p.sh[p.n++].len = 0;
        } else if (what < 25 && p.n < PROP_SEQS) {
            fork_shadow(&p.sh[p.n], &p.sh[rnd(&p, (unsigned)p.n)]);
            p.n++;
        } else if (what < 70) {
            extend(&p);
        } else if (what < 88) {
            shadow *sh = &p.sh[rnd(&p, (unsigned)p.n)];
            truncate_shadow(sh, (int)rnd(&p, (unsigned)sh->len + 1));
        } else {
            remove_seq(&p, (int)rnd(&p, (unsigned)p.n));
        }
        check_stats(&p);
    }
    ck_assert_int_gt(p.n_full, 10);       /* the pool did fill up */
    ck_assert_int_gt(p.n_checked, 50);
    while (p.n)
        remove_seq(&p, 0);
    copse_kv_stats st;
    copse_kv_stats_get(p.c, &st);
    ck_assert_int_eq(st.blocks_used, 0);
    ck_assert_int_eq(st.tokens_stored, 0);
    ck_assert_int_le(st.peak_blocks_used, 40);
    ck_assert_int_ge(st.peak_blocks_used, 36);
    for (int a = 0; a < 2; a++) {
        ck_assert_int_eq(p.acct[a].used, 0);
        ck_assert_int_eq(p.acct[a].need, 0);
        if (_i)
            ck_assert_int_eq(p.acct[a].peak, p.acct[a].limit);   /* each filled up */
    }
    assert_pool_ok(p.c);
    copse_ctx_free(p.c);
    copse_ctx_free(p.ref);
    copse_model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- memory */

#define TREE_B 16
#define TREE_GEN 64

/* Decode TREE_GEN tokens on each of TREE_B branches, one batch per step. */
static void grow_branches(copse_ctx *c, copse_seq **br, int nv)
{
    for (int t = 0; t < TREE_GEN; t++) {
        int32_t tok[TREE_B];
        for (int i = 0; i < TREE_B; i++)
            tok[i] = (int32_t)((t * 31 + i * 7) % nv);
        copse_batch b = { TREE_B, br, tok, NULL };
        copse_error e;
        ck_assert_msg(copse_decode(c, &b, &e) == COPSE_OK, "%s", e.msg);
    }
}

/*
** 16 branches of a shared prompt with 64 tokens each hold at most the
** prompt + 16 x 64 positions of KV plus one partly filled block per
** branch: for a 256-token prompt (block aligned) exactly that, for 250
** the branches' copies of the prompt's last block on top.
*/
START_TEST(branches_store_their_prompt_once)
{
    int prompt = _i ? 250 : 256;
    copse_model *m = load("tiny-llama");
    copse_ctx *c = new_ctx(m, 1, 0);
    int nv = copse_n_vocab(m);
    int32_t tok[256];
    tokens(tok, prompt, nv, 3);
    copse_seq *root = copse_seq_new(c), *br[TREE_B];
    decode_ok(c, root, tok, prompt);
    for (int i = 0; i < TREE_B; i++)
        br[i] = copse_seq_fork(root);
    copse_seq_free(root);
    grow_branches(c, br, nv);

    copse_kv_stats st;
    copse_kv_stats_get(c, &st);
    int64_t bound = prompt + TREE_B * TREE_GEN;
    if (prompt % KV_BLOCK == 0)
        ck_assert_int_eq(st.tokens_stored, bound);
    ck_assert_int_le(st.tokens_stored, bound + TREE_B * (prompt % KV_BLOCK));
    ck_assert_int_le((int64_t)st.blocks_used * KV_BLOCK, bound + TREE_B * KV_BLOCK);
    ck_assert_int_eq(st.blocks_used, prompt / KV_BLOCK + TREE_B * ((prompt % KV_BLOCK + TREE_GEN + KV_BLOCK - 1) / KV_BLOCK));
    ck_assert_int_eq(st.tokens_logical, (int64_t)TREE_B * (prompt + TREE_GEN));
    ck_assert_uint_eq(st.bytes_used, (uint64_t)st.blocks_used * kv_block_bytes(&m->info, 1));
    assert_pool_ok(c);
    copse_ctx_free(c);
    copse_model_free(m);
}
END_TEST

/* ------------------------------------------------------------- pool full */

/*
** A pool with room for 6 blocks: two branches of a 40-token prompt (3
** blocks, the last shared) grow until a batch does not fit: the decode
** fails with COPSE_E_KV_FULL, changes nothing, and every branch still
** decodes correctly; freeing one lets the other go on.
*/
START_TEST(full_pool_fails_cleanly)
{
    copse_model *m = load_as("tiny-qwen2", 1);
    copse_ctx *c = new_ctx(m, 1, 6 * KV_BLOCK), *ref = new_ctx(m, 0, 0);
    int nv = copse_n_vocab(m);
    shadow a, b;
    a.s = copse_seq_new(c);
    a.len = 40;
    tokens(a.tok, 40, nv, 5);
    decode_ok(c, a.s, a.tok, 40);
    fork_shadow(&b, &a);

    /* one copy of the shared block (the second writer keeps it): 4 blocks;
    ** a's 24 more positions take the last 2 */
    copse_seq *both[2] = { a.s, b.s };
    int32_t next[2] = { 11, 12 };
    copse_batch batch = { 2, both, next, NULL };
    copse_error e;
    ck_assert_msg(copse_decode(c, &batch, &e) == COPSE_OK, "%s", e.msg);
    a.tok[a.len++] = 11, b.tok[b.len++] = 12;
    int32_t more[24];
    tokens(more, 24, nv, 6);
    decode_ok(c, a.s, more, 24);
    memcpy(a.tok + a.len, more, 24 * sizeof *more);
    a.len += 24;

    copse_kv_stats st;
    copse_kv_stats_get(c, &st);
    ck_assert_int_eq(st.blocks_used, 6);
    /* b needs a fourth block: none left */
    int rc = copse_decode_tokens(c, b.s, more, 8, 1, &e);
    ck_assert_int_eq(rc, COPSE_E_KV_FULL);
    ck_assert_int_eq(e.code, COPSE_E_KV_FULL);
    ck_assert_msg(strstr(e.msg, "KV pool is full") != NULL, "%s", e.msg);
    ck_assert_int_eq(copse_seq_len(a.s), a.len);
    ck_assert_int_eq(copse_seq_len(b.s), b.len);
    assert_pool_ok(c);

    /* both still decode what fits in their own blocks */
    for (shadow *sh = &a; sh; sh = sh == &a ? &b : NULL) {
        sh->tok[sh->len] = 99;
        decode_ok(c, sh->s, sh->tok + sh->len++, 1);
        assert_like_scratch(ref, copse_get_logits(c, 0), sh->tok, sh->len, nv, TOL_F16, "after KV full");
    }
    copse_seq_free(a.s);
    decode_ok(c, b.s, more, 8);
    memcpy(b.tok + b.len, more, 8 * sizeof *more);
    b.len += 8;
    assert_like_scratch(ref, copse_get_logits(c, 7), b.tok, b.len, nv, TOL_F16, "after a free");
    assert_pool_ok(c);
    copse_ctx_free(c);
    copse_ctx_free(ref);
    copse_model_free(m);
}
END_TEST

/* Pool sizing: kv_bytes wins over kv_tokens; too small or negative is an error. */
START_TEST(pool_sizes_and_errors)
{
    copse_model *m = load("tiny-llama");
    size_t block = kv_block_bytes(&m->info, 1);
    copse_ctx_params p = copse_ctx_default_params();
    copse_ctx *c;
    copse_error e;
    copse_kv_stats st;
    p.kv_bytes = 10 * block + block / 2;
    p.kv_tokens = 1000;
    ck_assert_int_eq(copse_ctx_new(m, &p, &c, &e), COPSE_OK);
    copse_kv_stats_get(c, &st);
    ck_assert_int_eq(st.blocks_total, 10);
    ck_assert_int_eq(st.block_tokens, KV_BLOCK);
    ck_assert_uint_eq(st.bytes_total, 10 * block);
    ck_assert_int_eq(st.blocks_used, 0);
    copse_ctx_free(c);
    /* what copse info reports a position holds: K and V of every layer in f16 (twice in f32) */
    copse_model_info in;
    copse_model_get_info(m, &in);
    ck_assert_uint_eq(in.kv_bytes_per_token, 2 * (uint64_t)in.n_layer * in.n_head_kv * in.head_dim * 2);
    ck_assert_uint_eq(st.bytes_total, 10 * KV_BLOCK * in.kv_bytes_per_token);
    /* threads: one by default for weights under 16 MiB (tiny-llama's), else every core */
    ck_assert_int_eq(ctx_default_threads(((uint64_t)16 << 20) - 1, 8), 1);
    ck_assert_int_eq(ctx_default_threads((uint64_t)16 << 20, 8), 8);
    ck_assert_int_eq(ctx_default_threads((uint64_t)1 << 33, 2), 2);
    ck_assert_int_eq(ctx_default_threads((uint64_t)1 << 33, 0), 1);
    ck_assert_uint_lt(in.weight_bytes, (uint64_t)16 << 20);
    p.kv_bytes = 0;
    ck_assert_int_eq(copse_ctx_new(m, &p, &c, &e), COPSE_OK);
    ck_assert_int_eq(copse_ctx_n_threads(c), 1);
    copse_ctx_free(c);
    p.n_threads = 3;
    ck_assert_int_eq(copse_ctx_new(m, &p, &c, &e), COPSE_OK);
    ck_assert_int_eq(copse_ctx_n_threads(c), 3);
    copse_ctx_free(c);
    ck_assert_int_eq(copse_ctx_n_threads(NULL), 0);
    p.n_threads = 0;

    p.kv_bytes = 0;
    p.kv_f32 = 1;
    ck_assert_int_eq(copse_ctx_new(m, &p, &c, &e), COPSE_OK);
    copse_kv_stats_get(c, &st);
    ck_assert_int_eq(st.blocks_total, (1000 + KV_BLOCK - 1) / KV_BLOCK);
    ck_assert_uint_eq(st.bytes_total, (uint64_t)st.blocks_total * kv_block_bytes(&m->info, 0));
    ck_assert_uint_eq(st.bytes_total, (uint64_t)st.blocks_total * KV_BLOCK * 2 * in.kv_bytes_per_token);
    copse_ctx_free(c);

    p.kv_bytes = block - 1;
    ck_assert_int_eq(copse_ctx_new(m, &p, &c, &e), COPSE_E_ARG);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(e.msg, "less than one KV block") != NULL, "%s", e.msg);
    p.kv_bytes = 0;
    p.kv_tokens = -1;
    ck_assert_int_eq(copse_ctx_new(m, &p, &c, &e), COPSE_E_ARG);
    copse_kv_stats_get(NULL, &st);
    ck_assert_int_eq(st.blocks_total, 0);
    ck_assert_ptr_null(copse_seq_fork(NULL));
    copse_model_free(m);
}
END_TEST

/* ------------------------------------------------------------- attention */

/* Kernel sets for the tests below that need none in particular. */
static const attn_kernels *any_kernels[] = {
    &attn_scalar,
#if defined(__x86_64__)
    &attn_avx2, &attn_avx512,
#endif
};

/* Whether this CPU has what kernels k need. */
static int runs_here(const attn_kernels *k)
{
#if defined(__x86_64__)
    if (k == &attn_avx2)
        return q8_tier_supported(&q8_tier_avx2);
    if (k == &attn_avx512)
        return q8_tier_supported(&q8_tier_avx512vnni);
#endif
    return k != NULL;
}

/* attnx_check_split for each kernel set. Loop index: the kernel set, then
** f32 or f16 keys and values. */
START_TEST(folds_split_anywhere_agree)
{
    const attn_kernels *k = any_kernels[_i / 2];
    if (!runs_here(k)) {
        tu_skip("folds_split_anywhere_agree", "this CPU lacks the instructions");
        return;
    }
    exact_stats st = {0};
    attnx_check_split(k, _i % 2, &st);
    tu_exact_clean(_i % 2 ? "attention split, f16" : "attention split, f32", k->name, &st);
}
END_TEST

#if defined(__x86_64__)
/* The SIMD kernel sets, the int8 tier that implies each, and the head
** sizes they take a multiple of. */
static const struct simd { const attn_kernels *k; const q8_kernels *tier; int hd_step; } simds[] = {
    { &attn_avx2, &q8_tier_avx2, 8 },
    { &attn_avx512, &q8_tier_avx512vnni, 16 },
};

/* attnx_check_kernels for each SIMD kernel set this CPU runs. */
START_TEST(simd_kernels_equal_scalar)
{
    const struct simd *sd = &simds[_i];
    if (!q8_tier_supported(sd->tier)) {
        tu_skip("simd_kernels_equal_scalar", "this CPU lacks the instructions");
        return;
    }
    exact_stats st = {0};
    attnx_check_kernels(sd->k, sd->hd_step, &st);
    tu_exact_clean("attention against scalar", sd->k->name, &st);
}
END_TEST
#endif

/* Shapes of the walk test: GQA ratios 2, 1, 3 and 7 (the smol and qwen05
** ones), head sizes for the scalar, AVX2 and AVX-512 kernels. */
static const struct walk_shape { int n_head, n_head_kv, head_dim; } walk_shapes[] = {
    { 4, 2, 8 }, { 2, 2, 16 }, { 9, 3, 16 }, { 14, 2, 16 }, { 9, 3, 64 },
};
#define N_WALK_SHAPES ((int)(sizeof walk_shapes / sizeof walk_shapes[0]))
#define WALK_SEQS 36
#define WALK_POS  48
#define WALK_BLOCKS 64

/* Keys and values of random sequences stored through kv_store, and the
** same values (as stored: rounded to half in an f16 pool) kept for the
** naive attention below. */
typedef struct walk {
    copse_model_info hp;
    kv_pool  pool;
    copse_seq seq[WALK_SEQS];
    int      kv_dim;
    float   *kv;             /* [seq][layer][pos][k | v] */
} walk;

static float *walk_kv(walk *w, int i, int il, int pos)
{
    return w->kv + (((size_t)i * 2 + il) * WALK_POS + pos) * 2 * w->kv_dim;
}

/* A walk of the given shape with empty sequences, f16 or f32. */
static walk *walk_new(const struct walk_shape *sh, int f16)
{
    walk *w = calloc(1, sizeof *w);
    w->hp = (copse_model_info){ .n_layer = 2, .n_head = sh->n_head, .n_head_kv = sh->n_head_kv,
                                .head_dim = sh->head_dim };
    w->kv_dim = sh->n_head_kv * sh->head_dim;
    w->kv = malloc((size_t)WALK_SEQS * 2 * WALK_POS * 2 * w->kv_dim * sizeof *w->kv);
    ck_assert_int_eq(kv_pool_init(&w->pool, &w->hp, WALK_BLOCKS, f16), COPSE_OK);
    for (int i = 0; i < WALK_SEQS; i++)
        kv_seq_link(&w->pool, &w->seq[i]);
    return w;
}

/* Free a walk, checking that its pool was sound and gets every block back. */
static void walk_free(walk *w)
{
    char why[256];
    ck_assert_msg(kv_check(&w->pool, why, sizeof why) == COPSE_OK, "%s", why);
    for (int i = 0; i < WALK_SEQS; i++)
        kv_seq_unlink(&w->seq[i]);
    ck_assert_int_eq(w->pool.n_free, WALK_BLOCKS);
    kv_pool_free(&w->pool);
    free(w->kv);
    free(w);
}

static void walk_append(walk *w, int i, int n, uint64_t *rng)
{
    copse_seq *s = &w->seq[i], *one[1] = { s };
    int need;
    kv_account *over;
    s->n_new = n;
    ck_assert_int_eq(kv_reserve(&w->pool, one, 1, &need, &over), COPSE_OK);
    ck_assert_ptr_null(over);
    ck_assert_int_le(need, w->pool.n_free);
    kv_prepare(s);
    for (int pos = s->len; pos < s->len + n; pos++)
        for (int il = 0; il < 2; il++) {
            float *kv = walk_kv(w, i, il, pos);
            attnx_fill(kv, 2 * (size_t)w->kv_dim, rng);
            kv_store(s, il, pos, kv, kv + w->kv_dim);
            for (int d = 0; w->pool.f16 && d < 2 * w->kv_dim; d++)
                kv[d] = copse_f16_to_f32(copse_f32_to_f16(kv[d]));
        }
    s->len += n;
    s->n_new = 0;
}

/* Row r's attention in double, naively, against out. */
static void check_row(const walk *w, const fwd_row *row, const float *q, const float *out, int nt)
{
    const copse_model_info *hp = &w->hp;
    int i = (int)(row->seq - w->seq), hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    for (int h = 0; h < hp->n_head; h++) {
        const float *qh = q + h * hd;
        double sc[WALK_POS], mx = -INFINITY, sum = 0;
        for (int t = 0; t <= row->pos; t++) {
            const float *k = walk_kv((walk *)w, i, 1, t) + (h / group) * hd;
            sc[t] = 0;
            for (int d = 0; d < hd; d++)
                sc[t] += (double)qh[d] * k[d];
            sc[t] /= sqrt((double)hd);
            mx = fmax(mx, sc[t]);
        }
        for (int t = 0; t <= row->pos; t++)
            sum += sc[t] = exp(sc[t] - mx);
        for (int d = 0; d < hd; d++) {
            double y = 0;
            for (int t = 0; t <= row->pos; t++)
                y += sc[t] / sum * walk_kv((walk *)w, i, 1, t)[w->kv_dim + (h / group) * hd + d];
            ck_assert_msg(fabs(out[h * hd + d] - y) < 1e-5 * (1 + fabs(y)),
                          "%d/%d heads, hd %d, %d threads, pos %d head %d: %g vs %g", hp->n_head, hp->n_head_kv,
                          hd, nt, row->pos, h, out[h * hd + d], y);
        }
    }
}

/* attn_layer's hooks as a test sees them: produce copies a row's
** queries of a group from src to made, prepare from made (or src, with
** no produce) to q, one head_dim of NaN between groups (attention finds
** NaN where it reads too early or in the wrong place), done counts each
** output value handed on and whether it was final then, and the lengths
** of the runs. Each (row, head) and value is touched by one thread at a
** time, as attn_run promises. */
typedef struct hooks {
    const copse_model_info *hp;
    const float *src;
    float *made, *q, *out;
    int *produced, *prepared, *done, *final;   /* [row][kv head] twice, [row][value] twice */
    int unit, span, bad_run;        /* done_unit; a group's values; a run of neither length */
} hooks;

/* Where row r's group of KV head h is in src and made, and in q. */
static size_t src_at(const hooks *k, int r, int h)
{
    return ((size_t)r * k->hp->n_head_kv + h) * k->span;
}

static size_t q_at(const hooks *k, int r, int h)
{
    return ((size_t)r * k->hp->n_head_kv + h) * (k->span + k->hp->head_dim);
}

static void hook_produce(void *ctx, int h, int r0, int r1)
{
    hooks *k = ctx;
    for (int r = r0; r < r1; r++) {
        memcpy(k->made + src_at(k, r, h), k->src + src_at(k, r, h), k->span * sizeof *k->made);
        k->produced[r * k->hp->n_head_kv + h]++;
    }
}

static void hook_prepare(void *ctx, int r, int h)
{
    hooks *k = ctx;
    memcpy(k->q + q_at(k, r, h), (k->made ? k->made : k->src) + src_at(k, r, h), k->span * sizeof *k->q);
    k->prepared[r * k->hp->n_head_kv + h]++;
}

static void hook_done(void *ctx, int r, int d0, int n)
{
    hooks *k = ctx;
    int qd = k->hp->n_head * k->hp->head_dim, grouped = k->unit && k->span % k->unit == 0;
    if (n != (grouped ? k->span : qd) || d0 % n || d0 < 0 || d0 + n > qd) {
        k->bad_run = 1;
        return;
    }
    for (int d = d0; d < d0 + n; d++) {
        k->done[r * qd + d]++;
        k->final[r * qd + d] = !isnan(k->out[r * qd + d]);
    }
}

/* attn_run of a built plan with the hooks (produce too if asked),
** handing on runs of unit values: every row and head produced and
** readied once before it is read, every output value done once when
** final, in runs of a group where a group is whole units, else of whole
** rows; the output right. */
static void run_hooked(const walk *w, const attn_plan *a, const fwd_row *rows, int n, const float *q, int nt,
                       int unit, int produce)
{
    const copse_model_info *hp = &w->hp;
    size_t qd = (size_t)hp->n_head * hp->head_dim, hd = (size_t)hp->head_dim;
    size_t wide = qd + hp->n_head_kv * hd;   /* a row of q: each group followed by a gap */
    hooks k = { hp, q, produce ? malloc(n * qd * sizeof(float)) : NULL, malloc(n * wide * sizeof(float)),
                malloc(n * qd * sizeof(float)), calloc((size_t)n * hp->n_head_kv, sizeof(int)),
                calloc((size_t)n * hp->n_head_kv, sizeof(int)), calloc(n * qd, sizeof(int)),
                calloc(n * qd, sizeof(int)), unit, hp->n_head / hp->n_head_kv * hp->head_dim, 0 };
    for (size_t i = 0; i < n * wide; i++)
        k.q[i] = NAN;
    for (size_t i = 0; i < n * qd; i++)
        k.out[i] = produce ? k.made[i] = NAN : NAN;
    attn_run(a, &(attn_layer){ .il = 1, .q = k.q, .q_stride = wide, .q_head = k.span + hd, .out = k.out,
                                .produce = produce ? hook_produce : NULL, .prepare = hook_prepare,
                                .done = hook_done, .done_unit = unit, .ctx = &k });
    ck_assert_msg(!k.bad_run, "unit %d: a run of values done is neither a group (%d) nor a row", unit, k.span);
    for (int r = 0; r < n; r++) {
        for (int h = 0; h < hp->n_head_kv; h++) {
            ck_assert_int_eq(k.prepared[r * hp->n_head_kv + h], 1);
            ck_assert_int_eq(k.produced[r * hp->n_head_kv + h], produce);
        }
        for (size_t d = 0; d < qd; d++) {
            ck_assert_msg(k.done[r * qd + d] == 1, "unit %d, row %d, value %zu done %d times", unit, r, d,
                          k.done[r * qd + d]);
            ck_assert_msg(k.final[r * qd + d], "unit %d, row %d, value %zu done before it was final", unit, r, d);
        }
        check_row(w, &rows[r], q + r * qd, k.out + r * qd, nt);
    }
    free(k.made);
    free(k.q);
    free(k.out);
    free(k.produced);
    free(k.prepared);
    free(k.done);
    free(k.final);
}

/* run_hooked with done in runs of a group (its values a multiple of
** head_dim), of whole rows (no unit), and of whole rows again (a unit
** that no group fills exactly); the first also with produce. */
static void run_hooked_units(const walk *w, const attn_plan *a, const fwd_row *rows, int n, const float *q, int nt)
{
    int span = w->hp.n_head / w->hp.n_head_kv * w->hp.head_dim;
    run_hooked(w, a, rows, n, q, nt, w->hp.head_dim, 0);
    run_hooked(w, a, rows, n, q, nt, w->hp.head_dim, 1);
    run_hooked(w, a, rows, n, q, nt, 0, 0);
    run_hooked(w, a, rows, n, q, nt, span + 1, 0);
}

/*
** The plan and the threaded walk against a naive softmax in double:
** branches sharing blocks (a prompt block read by more queries than one
** fold takes), rows of one sequence at several positions, partial
** blocks, 1 to 3 threads with no threshold (heads cut between parts and
** merged, or folded by one part alone); attn_layer's hooks on that batch
** and on one of a row per branch (readied in a pass of their own, and
** inside the parts). Loop index: a shape of
** walk_shapes, with f32 then f16 keys and values.
*/
/* Each task's reach is the most positions of its last block that any of
** its rows reads (what attn_ahead_task asks for of its last V run). */
static void check_reach(const attn_plan *a)
{
    for (int k = 0; k < a->n_task; k++) {
        const attn_task *t = &a->task[k];
        int most = 0;
        for (int i = t->first; i < t->first + t->count; i++)
            most = a->item[i].limit > most ? a->item[i].limit : most;
        ck_assert_int_eq(t->reach, most);
        ck_assert_int_ge(t->reach, 1);
    }
}

START_TEST(attention_walk_matches_naive)
{
    const struct walk_shape *sh = &walk_shapes[_i % N_WALK_SHAPES];
    walk *w = walk_new(sh, _i >= N_WALK_SHAPES);
    uint64_t rng = 99;
    walk_append(w, 0, 37, &rng);
    for (int i = 1; i < WALK_SEQS; i++) {
        ck_assert_int_eq(kv_share(&w->seq[i], &w->seq[0]), COPSE_OK);
        for (int il = 0; il < 2; il++)
            memcpy(walk_kv(w, i, il, 0), walk_kv(w, 0, il, 0), WALK_POS * 2 * w->kv_dim * sizeof *w->kv);
    }
    kv_truncate(&w->seq[WALK_SEQS - 2], 16);
    kv_truncate(&w->seq[WALK_SEQS - 1], 5);
    /* the batch: 3 rows of seq 0, one of each other branch, 20 of the last */
    fwd_row rows[3 + WALK_SEQS - 2 + 20];
    int n = 0;
    for (int i = 0; i < WALK_SEQS; i++) {
        int len = w->seq[i].len, add = i == 0 ? 3 : i == WALK_SEQS - 1 ? 20 : 1;
        walk_append(w, i, add, &rng);
        for (int j = 0; j < add; j++)
            rows[n++] = (fwd_row){ &w->seq[i], len + j, 0, 0 };
    }
    fwd_row own[WALK_SEQS];   /* each branch's last position: no row reads another's */
    for (int i = 0; i < WALK_SEQS; i++)
        own[i] = (fwd_row){ &w->seq[i], w->seq[i].len - 1, 0, 0 };
    size_t qd = (size_t)sh->n_head * sh->head_dim;
    float *q = malloc(n * qd * sizeof *q), *out = malloc(n * qd * sizeof *out);
    attnx_fill(q, n * qd, &rng);
    for (int nt = 1; nt <= 3; nt++) {
        attn_plan a;
        ck_assert_int_eq(attn_init(&a, &w->hp, &w->pool, nt, 0), COPSE_OK);
        a.parallel_work = 0;
        ck_assert_int_eq(attn_reserve(&a, n, attn_items(rows, n) + attn_items(own, WALK_SEQS)), COPSE_OK);
        attn_build(&a, rows, n);
        check_reach(&a);
        ck_assert_int_lt(a.n_task, (int)attn_items(rows, n));   /* shared blocks were grouped */
        ck_assert_int_gt(a.task[0].count * (sh->n_head / sh->n_head_kv), a.chunk);   /* several folds */
        for (size_t k = 0; k < n * qd; k++)
            out[k] = NAN;   /* what the last thread count wrote must not pass for this one's */
        attn_run(&a, &(attn_layer){ .il = 1, .q = q, .q_stride = qd, .q_head = qd / sh->n_head_kv, .out = out });
        for (int r = 0; r < n; r++)
            check_row(w, &rows[r], q + r * qd, out + r * qd, nt);
        ck_assert(!a.apart);   /* rows of one sequence read each other's positions */
        run_hooked_units(w, &a, rows, n, q, nt);
        attn_build(&a, own, WALK_SEQS);
        check_reach(&a);
        ck_assert(a.apart);
        run_hooked_units(w, &a, own, WALK_SEQS, q, nt);
        attn_free(&a);
    }
    free(q);
    free(out);
    walk_free(w);
}
END_TEST

/*
** Branches' attention (no row reads another's position: the cut between
** parts moves with the threads' speed) is bit for bit the same wherever
** the cut falls: at every row of every head (inside a head whose shared
** blocks both parts read, and at its edges) and inside rows, against one
** part alone; the parts' shares stay a partition after the runs learn
** from them. Loop index: a shape of walk_shapes, with f32 then f16 keys
** and values.
*/
START_TEST(attention_cut_does_not_matter)
{
    const struct walk_shape *sh = &walk_shapes[_i % N_WALK_SHAPES];
    walk *w = walk_new(sh, _i >= N_WALK_SHAPES);
    uint64_t rng = 5;
    walk_append(w, 0, 37, &rng);   /* two blocks shared whole, runs too short for every tile to take them alike */
    fwd_row rows[WALK_SEQS];
    for (int i = 0; i < WALK_SEQS; i++) {
        if (i)
            ck_assert_int_eq(kv_share(&w->seq[i], &w->seq[0]), COPSE_OK);
        walk_append(w, i, 1 + i % 3, &rng);
        rows[i] = (fwd_row){ &w->seq[i], w->seq[i].len - 1, 0, 0 };
    }
    size_t qd = (size_t)sh->n_head * sh->head_dim;
    float *q = malloc(WALK_SEQS * qd * sizeof *q), *out[2];
    out[0] = malloc(WALK_SEQS * qd * sizeof(float));
    out[1] = malloc(WALK_SEQS * qd * sizeof(float));
    attnx_fill(q, WALK_SEQS * qd, &rng);
    attn_plan a[2];
    for (int x = 0; x < 2; x++) {
        ck_assert_int_eq(attn_init(&a[x], &w->hp, &w->pool, 1 + x, 0), COPSE_OK);
        a[x].parallel_work = 0;
        ck_assert_int_eq(attn_reserve(&a[x], WALK_SEQS, attn_items(rows, WALK_SEQS)), COPSE_OK);
        attn_build(&a[x], rows, WALK_SEQS);
    }
    ck_assert(a[1].apart && a[1].parts == 2);
    attn_layer L = { .il = 1, .q = q, .q_stride = qd, .q_head = qd / sh->n_head_kv, .out = out[0] };
    attn_run(&a[0], &L);
    L.out = out[1];
    int64_t per_head = a[1].row_cum[WALK_SEQS], line = per_head * sh->n_head_kv;
    for (int h = 0; h < sh->n_head_kv; h++)
        for (int r = 0; r <= WALK_SEQS; r++)
            for (int inside = 0; inside < 2; inside++) {
                int64_t at = per_head * h + a[1].row_cum[r] + inside;
                if (at > line)
                    continue;
                for (size_t k = 0; k < WALK_SEQS * qd; k++)
                    out[1][k] = NAN;
                a[1].share[0] = (double)at / (double)line;
                a[1].share[1] = 1 - a[1].share[0];
                attn_run(&a[1], &L);
                ck_assert_msg(!memcmp(out[0], out[1], WALK_SEQS * qd * sizeof(float)),
                              "%d/%d heads, hd %d: cut at head %d row %d (+%d) changes the result", sh->n_head,
                              sh->n_head_kv, sh->head_dim, h, r, inside);
                double sum = a[1].share[0] + a[1].share[1];
                ck_assert_msg(fabs(sum - 1) < 1e-12 && a[1].share[0] >= 0 && a[1].share[1] >= 0, "shares %g %g",
                              a[1].share[0], a[1].share[1]);
            }
    for (int x = 0; x < 2; x++)
        attn_free(&a[x]);
    free(q);
    free(out[0]);
    free(out[1]);
    walk_free(w);
}
END_TEST

/* The lines the fold kernels ask for ahead: every line of the task's K
** runs, block by block, then of its V runs, each once, then none; of the
** last V run only the lines of the positions read (a last block read in
** full, in part, and one position of it). */
START_TEST(ahead_hands_out_each_line_once)
{
    copse_model_info hp = { .n_layer = 2, .n_head = 4, .n_head_kv = 2, .head_dim = 48 };
    kv_pool pool;
    ck_assert_int_eq(kv_pool_init(&pool, &hp, 12, _i), COPSE_OK);
    size_t lines = (pool.head_bytes + 63) / 64, row = (size_t)hp.head_dim * pool.elt;
    ck_assert_uint_gt(lines, 1);
    const int reach[] = { KV_BLOCK, 5, 1 };
    for (int x = 0; x < 3; x++) {
        attn_task t = { .n_blocks = 3, .block = { 7, 2, 10 }, .reach = reach[x] };
        attn_ahead c;
        attn_ahead_task(&c, &pool, &t, 1, 1);
        for (int r = 0; r < 2 * t.n_blocks; r++) {
            int b = t.block[r % t.n_blocks];
            const char *run = r < t.n_blocks ? kv_key_block(&pool, b, 1, 1) : kv_value_block(&pool, b, 1, 1);
            size_t n = r < 2 * t.n_blocks - 1 ? lines : (reach[x] * row + 63) / 64;
            for (size_t j = 0; j < n; j++)
                ck_assert_ptr_eq(attn_ahead_line(&c), run + 64 * j);
        }
        for (int j = 0; j < 3; j++)
            ck_assert_ptr_null(attn_ahead_line(&c));
        attn_ahead_request(&c);   /* done: nothing, and no step past the end */
        attn_ahead_request(NULL);
        ck_assert_int_eq(c.at, c.n_run);
    }
    kv_pool_free(&pool);
}
END_TEST

Suite *copse_suite_kv(void)
{
    Suite *s = suite_create("kv");
    TCase *tc = tcase_create("sharing");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, fork_then_extend_equals_scratch, 0, 2 * N_FORK_CASES);
    tcase_add_loop_test(tc, truncate_then_extend_equals_scratch, 0, N_FORK_CASES);
    tcase_add_test(tc, hidden_state_gives_the_logits);
    tcase_add_loop_test(tc, batch_of_branches_equals_alone, 0, 3 * N_MODES);
    tcase_add_loop_test(tc, rows_do_not_depend_on_their_batch, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("pool");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, random_operations_keep_the_invariants, 0, 2);
    tcase_add_loop_test(tc, branches_store_their_prompt_once, 0, 2);
    tcase_add_test(tc, full_pool_fails_cleanly);
    tcase_add_test(tc, pool_sizes_and_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("attention");
#if defined(__x86_64__)
    tcase_add_loop_test(tc, simd_kernels_equal_scalar, 0, (int)(sizeof simds / sizeof simds[0]));
#endif
    tcase_add_loop_test(tc, attention_walk_matches_naive, 0, 2 * N_WALK_SHAPES);
    tcase_add_loop_test(tc, ahead_hands_out_each_line_once, 0, 2);
    tcase_add_loop_test(tc, attention_cut_does_not_matter, 0, 2 * N_WALK_SHAPES);
    tcase_add_loop_test(tc, folds_split_anywhere_agree, 0, 2 * (int)(sizeof any_kernels / sizeof any_kernels[0]));
    suite_add_tcase(s, tc);
    return s;
}
