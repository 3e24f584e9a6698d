/*
** The f32 model path against golden logits from tools/reference.py (an
** independent numpy implementation) and, for the bundled math policy, from
** PyTorch (train/golden.py); decoding equivalences, and errors.
**
** Tolerances: a logit may differ from the golden by 5e-5 times the largest
** |logit| of its position (at least 1); f32 accumulation in different
** orders stays near 1e-6 of it. Two copse runs that only split the work
** differently (batch vs one at a time, mixed sequences) must agree within
** 1e-5 of it.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include "testutil.h"
#include "copse.h"
#include "gguf.h"

#define MODELS     "tests/data/models"
#define GOLDEN_TOL 5e-5
#define SAME_TOL   1e-5

/* Each NAME.gguf with its NAME.logits */
static const char *const goldens[] = {
    MODELS "/tiny-llama",             /* F32, tied, 4 heads = 4 kv heads */
    MODELS "/tiny-llama-gqa-untied",  /* F16, output.weight, 2 kv heads */
    MODELS "/tiny-qwen2",             /* Q8_0, q/k/v biases, neox rope, 2 kv heads */
    MODELS "/tiny-llama-wide",        /* BF16, head size 24 != n_embd / n_head, rope_freqs, 1 kv head */
    MODELS "/tiny-qwen2-rot",         /* F32, rope over 8 of 16 dims, linear rope scaling */
    MODELS "/tiny-qwen3",             /* per-head q/k norms, head size 24 != n_embd / n_head, no biases */
    MODELS "/tiny-phi3",              /* Q, K, V in one matrix and gate, up in another, 2 kv heads */
    MODELS "/tiny-smollm3",           /* layer 4 of 4 without rope (NoPE) */
    MODELS "/tiny-phi3-long",         /* LongRoPE's long factors and attn_factor, rope over 8 of 16 */
    MODELS "/tiny-gemma3",            /* local layers (window 11 of 40 positions), post norms, GELU */
    MODELS "/tiny-gemma",             /* embedding times sqrt(n_embd), GELU */
    MODELS "/tiny-gemma2",            /* even layers local, soft caps on scores and logits */
    MODELS "/tiny-granite",           /* embedding, residual, score and logit scales */
    MODELS "/tiny-olmo2",             /* no pre-norms, whole-row q/k norms, post norms, local layers */
    MODELS "/tiny-llama-blocks",      /* every block format (Q4_0 ... IQ4_XS), one per matrix in turn */
    MODELS "/tiny-qwen2-q4k",         /* Q4_K: q/k/v and gate/up stacked in a super-block format */
    "models/math-policy-f16",         /* the bundled policy, trained: golden from PyTorch (float64) */
    "models/math-policy-large-f16",   /* the larger policy, 8 layers, 10 heads / 2 kv heads: likewise */
};
#define N_GOLDENS (int)(sizeof goldens / sizeof goldens[0])

typedef struct golden {
    int      n, n_vocab;
    int32_t *tok;
    float   *logits;     /* [n][n_vocab] */
    char    *buf;
} golden;

static golden read_golden(const char *name)
{
    char path[256];
    size_t len;
    uint32_t h[3];
    snprintf(path, sizeof path, "%s.logits", name);
    golden g = { 0 };
    g.buf = tu_read_file(path, &len);
    ck_assert_msg(g.buf && len >= 16 && !memcmp(g.buf, "CPLG", 4), "%s: missing or not a golden file", path);
    memcpy(h, g.buf + 4, sizeof h);
    g.n = (int)h[1];
    g.n_vocab = (int)h[2];
    ck_assert_uint_eq(h[0], 1);
    ck_assert_uint_eq(len, 16 + 4 * (size_t)g.n + 4 * (size_t)g.n * g.n_vocab);
    g.tok = (int32_t *)(g.buf + 16);
    g.logits = (float *)(g.buf + 16 + 4 * (size_t)g.n);
    return g;
}

static copse_model *load(const char *name)
{
    char path[256];
    copse_model *m;
    copse_error e;
    copse_model_params mp = copse_model_default_params();
    mp.weights_f32 = 1;   /* the reference path; test_int8 checks int8 against it */
    snprintf(path, sizeof path, "%s.gguf", name);
    int rc = copse_model_load(path, &mp, &m, &e);
    ck_assert_msg(rc == COPSE_OK, "%s: %s", path, e.msg);
    return m;
}

static copse_ctx *new_ctx(copse_model *m, int n_ctx)
{
    copse_ctx_params p = copse_ctx_default_params();
    copse_ctx *c;
    copse_error e;
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    p.kv_f32 = 1;   /* the goldens' tolerance leaves no room for f16 keys and values */
    ck_assert_msg(copse_ctx_new(m, &p, &c, &e) == COPSE_OK, "%s", e.msg);
    return c;
}

static void decode_ok(copse_ctx *c, copse_seq *s, const int32_t *tok, int n, int all)
{
    copse_error e;
    ck_assert_msg(copse_decode_tokens(c, s, tok, n, all, &e) == COPSE_OK, "%s", e.msg);
}

/* Assert got is within tol of want, scaled by want's largest |value|. */
static void assert_close(const float *got, const float *want, int n, double tol, const char *what, int pos)
{
    ck_assert_msg(got != NULL, "%s: no logits at %d", what, pos);
    double scale = 1, worst = 0;
    int at = 0;
    for (int j = 0; j < n; j++)
        scale = fmax(scale, fabs(want[j]));
    for (int j = 0; j < n; j++)
        if (fabs(got[j] - want[j]) > worst) {
            worst = fabs(got[j] - want[j]);
            at = j;
        }
    ck_assert_msg(worst <= tol * scale, "%s, position %d: logit %d is %.7g, expected %.7g (scale %.3g)",
                  what, pos, at, got[at], want[at], scale);
}

/* Logits of all n tokens decoded one batch into a fresh sequence, copied. */
static float *batch_logits(copse_ctx *c, const int32_t *tok, int n, int n_vocab)
{
    copse_seq *s = copse_seq_new(c);
    float *out = malloc(sizeof(float) * (size_t)n * n_vocab);
    ck_assert_ptr_nonnull(out);
    decode_ok(c, s, tok, n, 1);
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * n_vocab, copse_get_logits(c, i), sizeof(float) * (size_t)n_vocab);
    copse_seq_free(s);
    return out;
}

/* --------------------------------------------------------------- goldens */

START_TEST(matches_reference)
{
    const char *name = goldens[_i];
    golden g = read_golden(name);
    copse_model *m = load(name);
    ck_assert_int_eq(copse_n_vocab(m), g.n_vocab);
    copse_ctx *c = new_ctx(m, 0);
    float *got = batch_logits(c, g.tok, g.n, g.n_vocab);
    for (int i = 0; i < g.n; i++)
        assert_close(got + (size_t)i * g.n_vocab, g.logits + (size_t)i * g.n_vocab, g.n_vocab,
                     GOLDEN_TOL, name, i);
    free(got);
    copse_ctx_free(c);
    copse_model_free(m);
    free(g.buf);
}
END_TEST

/* LongRoPE's short factors: a context no longer than the original one
** (32 positions of tiny-phi3-long's 64) against reference.py --n-ctx 32. */
START_TEST(longrope_short_context)
{
    golden g = read_golden(MODELS "/tiny-phi3-long.short");
    copse_model *m = load(MODELS "/tiny-phi3-long");
    copse_ctx *c = new_ctx(m, 32);
    float *got = batch_logits(c, g.tok, g.n, g.n_vocab);
    for (int i = 0; i < g.n; i++)
        assert_close(got + (size_t)i * g.n_vocab, g.logits + (size_t)i * g.n_vocab, g.n_vocab,
                     GOLDEN_TOL, "tiny-phi3-long, 32 positions", i);
    free(got);
    copse_ctx_free(c);
    copse_model_free(m);
    free(g.buf);
}
END_TEST

/* A LongRoPE factor of 0 would make its pair's angles infinite: refused,
** naming the tensor and the pair. */
START_TEST(longrope_bad_factor)
{
    const char *src = MODELS "/tiny-phi3-long.gguf";
    gguf_file *g;
    copse_error e;
    ck_assert_int_eq(gguf_open(src, &g, &e), COPSE_OK);
    const gguf_tensor *t = gguf_find_tensor(g, "rope_factors_long.weight");
    ck_assert_ptr_nonnull(t);
    size_t at = (size_t)((const uint8_t *)t->data - g->base) + 2 * sizeof(float), len;
    gguf_close(g);
    char *buf = tu_read_file(src, &len), path[64];
    ck_assert_ptr_nonnull(buf);
    memset(buf + at, 0, sizeof(float));
    snprintf(path, sizeof path, "/tmp/copse-test-longrope-%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
    copse_model *m;
    ck_assert_int_eq(copse_model_load(path, NULL, &m, &e), COPSE_E_FORMAT);
    ck_assert_msg(strstr(e.msg, "rope_factors_long.weight[2] is 0, not a positive number"), "%s", e.msg);
    unlink(path);
}
END_TEST

/* A tiny model's file changed: key (NULL: none) added as an f32 or an
** array of n values of type, drop (NULL: none) left out, and an F32
** tensor extra (NULL: none) of 64 zeros added. */
typedef struct edit {
    const char *key;
    uint32_t    type;
    const void *data;
    uint64_t    n;
    const char *drop, *extra;
} edit;

/* The edited model loaded on the f32 path (NULL and *rc on failure); its
** file's image in *image, for the caller to free. */
static copse_model *load_edited(const char *name, const edit *ed, copse_error *e, int *rc, uint8_t **image)
{
    static const float zeros[64];
    char path[256];
    gguf_file *g;
    snprintf(path, sizeof path, MODELS "/%s.gguf", name);
    ck_assert_int_eq(gguf_open(path, &g, e), COPSE_OK);
    gguf_writer *w = gguf_writer_new(3);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!ed->drop || strcmp(g->kv[i].key, ed->drop))
            ck_assert_int_eq(gguf_writer_add_val(w, g->kv[i].key, &g->kv[i].val), COPSE_OK);
    if (ed->key && ed->type == GGUF_TYPE_FLOAT32)
        ck_assert_int_eq(gguf_writer_add_f32(w, ed->key, *(const float *)ed->data), COPSE_OK);
    else if (ed->key)
        ck_assert_int_eq(gguf_writer_add_arr(w, ed->key, ed->type, ed->data, ed->n), COPSE_OK);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        ck_assert_int_eq(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data), COPSE_OK);
    }
    if (ed->extra)
        ck_assert_int_eq(gguf_writer_add_tensor(w, ed->extra, GGML_TYPE_F32, 1, (uint64_t[]){ 64 }, zeros), COPSE_OK);
    uint64_t size;
    ck_assert_int_eq(gguf_writer_build(w, image, &size, e), COPSE_OK);
    gguf_writer_free(w);
    gguf_close(g);
    snprintf(path, sizeof path, "/tmp/copse-test-edit-%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(*image, 1, size, f), size);
    fclose(f);
    copse_model *m = NULL;
    copse_model_params mp = copse_model_default_params();
    mp.weights_f32 = 1;
    *rc = copse_model_load(path, &mp, &m, e);
    unlink(path);
    return m;
}

/* tiny-gemma3 with one key added. */
static copse_model *gemma_with(const char *key, uint32_t type, const void *data, uint64_t n, copse_error *e,
                               int *rc, uint8_t **image)
{
    edit ed = { key, type, data, n, NULL, NULL };
    return load_edited("tiny-gemma3", &ed, e, rc, image);
}

/*
** A tensor copse does not read would be ignored and the results silently
** wrong: refused, named (a llama file with Gemma's post norms, Granite
** with biases). Granite without its logit scale is refused too.
*/
START_TEST(unread_tensors_refused)
{
    static const struct { const char *model; edit ed; int rc; const char *want; } cases[] = {
        { "tiny-llama", { .extra = "blk.1.post_ffw_norm.weight" }, COPSE_E_UNSUPPORTED,
          "tensor 'blk.1.post_ffw_norm.weight' is not part of the llama layout copse runs; it would be ignored, so "
          "the file is refused" },
        { "tiny-granite", { .extra = "blk.1.attn_output.bias" }, COPSE_E_UNSUPPORTED,
          "tensor 'blk.1.attn_output.bias' is not part of the granite layout copse runs" },
        { "tiny-granite", { .extra = "blk.0.ffn_down.bias" }, COPSE_E_UNSUPPORTED,
          "tensor 'blk.0.ffn_down.bias' is not part of the granite layout copse runs" },
        { "tiny-granite", { .drop = "granite.logit_scale" }, COPSE_E_FORMAT,
          "missing metadata key 'granite.logit_scale'" },
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        copse_error e;
        uint8_t *image;
        int rc;
        ck_assert_ptr_null(load_edited(cases[i].model, &cases[i].ed, &e, &rc, &image));
        free(image);
        ck_assert_int_eq(rc, cases[i].rc);
        ck_assert_msg(strstr(e.msg, cases[i].want), "%s", e.msg);
    }
}
END_TEST

/*
** Gemma 3's local layers as one bool a layer: the default pattern spelt
** out gives the same logits, another pattern others; a pattern of the
** wrong length is refused. A final soft cap applies to the logits; a
** negative one is refused.
*/
START_TEST(gemma_local_layers_by_pattern)
{
    static const uint8_t same[6] = { 1, 1, 1, 1, 1, 0 }, other[6] = { 1, 0, 1, 1, 0, 1 };
    golden g = read_golden(MODELS "/tiny-gemma3");
    copse_error e;
    uint8_t *image;
    int rc;
    for (int k = 0; k < 2; k++) {
        copse_model *m = gemma_with("gemma3.attention.sliding_window_pattern", GGUF_TYPE_BOOL, k ? other : same,
                                    6, &e, &rc, &image);
        ck_assert_msg(rc == COPSE_OK, "%s", e.msg);
        copse_model_info in;
        copse_model_get_info(m, &in);
        ck_assert_int_eq(in.n_local_layers, k ? 4 : 5);
        copse_ctx *c = new_ctx(m, 0);
        float *got = batch_logits(c, g.tok, g.n, g.n_vocab), worst = 0;
        for (size_t i = 0; i < (size_t)g.n * g.n_vocab; i++)
            worst = fmaxf(worst, fabsf(got[i] - g.logits[i]));
        if (k)
            ck_assert_msg(worst > 0.1f, "pattern 101101 gives the default's logits (%g apart)", (double)worst);
        else
            ck_assert_msg(worst < 1e-3f, "pattern 111110 is %g from the default's logits", (double)worst);
        free(got);
        copse_ctx_free(c);
        copse_model_free(m);
        free(image);
    }
    ck_assert_ptr_null(gemma_with("gemma3.attention.sliding_window_pattern", GGUF_TYPE_BOOL, same, 5, &e, &rc,
                                  &image));
    free(image);
    ck_assert_int_eq(rc, COPSE_E_FORMAT);
    ck_assert_msg(strstr(e.msg, "'gemma3.attention.sliding_window_pattern' has 5 values for 6 layers"), "%s", e.msg);
    /* a final soft cap, as some Gemma 3 files declare: logits l -> cap tanh(l / cap) */
    float cap = 5;
    copse_model *m = gemma_with("gemma3.final_logit_softcapping", GGUF_TYPE_FLOAT32, &cap, 1, &e, &rc, &image);
    ck_assert_msg(rc == COPSE_OK, "%s", e.msg);
    copse_ctx *c = new_ctx(m, 0);
    float *got = batch_logits(c, g.tok, g.n, g.n_vocab);
    for (size_t i = 0; i < (size_t)g.n * g.n_vocab; i++)
        ck_assert_msg(fabsf(got[i] - cap * tanhf(g.logits[i] / cap)) < 1e-3f, "logit %zu: %g, golden %g capped %g", i,
                      (double)got[i], (double)g.logits[i], (double)(cap * tanhf(g.logits[i] / cap)));
    free(got);
    copse_ctx_free(c);
    copse_model_free(m);
    free(image);
    cap = -1;
    ck_assert_ptr_null(gemma_with("gemma3.final_logit_softcapping", GGUF_TYPE_FLOAT32, &cap, 1, &e, &rc, &image));
    free(image);
    ck_assert_int_eq(rc, COPSE_E_FORMAT);
    ck_assert_msg(strstr(e.msg, "metadata 'gemma3.final_logit_softcapping' is -1, not a number >= 0"), "%s", e.msg);
    free(g.buf);
}
END_TEST

/* Token by token, and in uneven pieces, give the batch's logits. */
START_TEST(one_at_a_time_equals_batch)
{
    const char *name = goldens[_i];
    golden g = read_golden(name);
    copse_model *m = load(name);
    copse_ctx *c = new_ctx(m, 0);
    float *batch = batch_logits(c, g.tok, g.n, g.n_vocab);
    copse_seq *one = copse_seq_new(c), *pieces = copse_seq_new(c);
    for (int i = 0; i < g.n; i++) {
        decode_ok(c, one, g.tok + i, 1, 0);
        assert_close(copse_get_logits(c, 0), batch + (size_t)i * g.n_vocab, g.n_vocab, SAME_TOL, "one at a time", i);
    }
    for (int i = 0, k = 3; i < g.n; i += k, k += 2) {
        int n = g.n - i < k ? g.n - i : k;
        decode_ok(c, pieces, g.tok + i, n, 1);
        for (int j = 0; j < n; j++)
            assert_close(copse_get_logits(c, j), batch + (size_t)(i + j) * g.n_vocab, g.n_vocab,
                         SAME_TOL, "in pieces", i + j);
    }
    ck_assert_int_eq(copse_seq_len(one), g.n);
    ck_assert_int_eq(copse_seq_len(pieces), g.n);
    free(batch);
    copse_ctx_free(c);   /* frees the open sequences too */
    copse_model_free(m);
    free(g.buf);
}
END_TEST

/* Two sequences interleaved in one batch, one with a history already,
** equal each decoded alone; entries without COPSE_WANT_LOGITS have none. */
START_TEST(mixed_sequences_equal_alone)
{
    golden g = read_golden(MODELS "/tiny-qwen2");
    copse_model *m = load(MODELS "/tiny-qwen2");
    copse_ctx *c = new_ctx(m, 0);
    const int na = 12, nb = 8, hist = 4;
    const int32_t *ta = g.tok, *tb = g.tok + 5;
    float *alone_a = batch_logits(c, ta, na, g.n_vocab);
    float *alone_b = batch_logits(c, tb, hist + nb, g.n_vocab);

    copse_seq *a = copse_seq_new(c), *b = copse_seq_new(c);
    decode_ok(c, b, tb, hist, 0);
    copse_seq *seq[20];
    int32_t tok[20];
    uint8_t want[20];
    const float *alone[20];   /* the logits each entry should have */
    int n = 0;
    for (int i = 0; i < na || i < nb; i++) {
        if (i < na) {
            seq[n] = a, tok[n] = ta[i], want[n] = 1;
            alone[n++] = alone_a + (size_t)i * g.n_vocab;
        }
        if (i < nb) {
            seq[n] = b, tok[n] = tb[hist + i], want[n] = i % 2;
            alone[n++] = alone_b + (size_t)(hist + i) * g.n_vocab;
        }
    }
    copse_batch batch = { n, seq, tok, want };
    copse_error e;
    ck_assert_msg(copse_decode(c, &batch, &e) == COPSE_OK, "%s", e.msg);
    for (int i = 0; i < n; i++) {
        if (want[i])
            assert_close(copse_get_logits(c, i), alone[i], g.n_vocab, SAME_TOL, "mixed batch", i);
        else
            ck_assert_ptr_null(copse_get_logits(c, i));
    }
    ck_assert_ptr_null(copse_get_logits(c, n));
    ck_assert_ptr_null(copse_get_logits(c, -1));
    ck_assert_int_eq(copse_seq_len(a), na);
    ck_assert_int_eq(copse_seq_len(b), hist + nb);
    free(alone_a);
    free(alone_b);
    copse_ctx_free(c);
    copse_model_free(m);
    free(g.buf);
}
END_TEST

/* A batch longer than one forward pass takes is split without changing
** the result; only the last entry has logits when want is NULL. */
START_TEST(long_batch_split)
{
    copse_model *m = load(MODELS "/tiny-llama");
    copse_ctx *c = new_ctx(m, 600);
    int n = 530, nv = copse_n_vocab(m);
    int32_t *tok = malloc(sizeof *tok * (size_t)n);
    for (int i = 0; i < n; i++)
        tok[i] = (int32_t)((i * 7919) % nv);
    float *whole = batch_logits(c, tok, n, nv);
    copse_seq *s = copse_seq_new(c);
    decode_ok(c, s, tok, 200, 0);
    copse_seq *seq[330];
    for (int i = 0; i < n - 200; i++)
        seq[i] = s;
    copse_batch b = { n - 200, seq, tok + 200, NULL };
    copse_error e;
    ck_assert_msg(copse_decode(c, &b, &e) == COPSE_OK, "%s", e.msg);
    ck_assert_ptr_null(copse_get_logits(c, 0));
    assert_close(copse_get_logits(c, n - 201), whole + (size_t)(n - 1) * nv, nv, SAME_TOL, "split", n - 1);
    free(whole);
    free(tok);
    copse_ctx_free(c);
    copse_model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- errors */

/* A failed decode leaves the sequence and the last logits as they were:
** decoding on afterwards still matches the golden. */
START_TEST(ctx_full_and_bad_token_change_nothing)
{
    golden g = read_golden(MODELS "/tiny-llama");
    copse_model *m = load(MODELS "/tiny-llama");
    copse_ctx *c = new_ctx(m, 8);
    ck_assert_int_eq(copse_ctx_n_ctx(c), 8);
    copse_seq *s = copse_seq_new(c), *other = copse_seq_new(c);
    copse_error e;
    ck_assert_int_eq(copse_decode_tokens(c, s, g.tok, 9, 1, &e), COPSE_E_CTX_FULL);
    ck_assert_int_eq(e.code, COPSE_E_CTX_FULL);
    ck_assert_ptr_nonnull(strstr(e.msg, "context length 8"));
    ck_assert_int_eq(copse_seq_len(s), 0);

    decode_ok(c, s, g.tok, 5, 0);
    ck_assert_int_eq(copse_decode_tokens(c, s, g.tok + 5, 4, 1, &e), COPSE_E_CTX_FULL);
    ck_assert_int_eq(copse_seq_len(s), 5);

    /* in a mixed batch the sequence that fits does not move either */
    copse_seq *seq[4] = { other, s, s, s };
    int32_t tok[4] = { g.tok[0], g.tok[5], g.tok[6], g.tok[7] };
    copse_batch b = { 4, seq, tok, NULL };
    tok[3] = g.n_vocab;
    ck_assert_int_eq(copse_decode(c, &b, &e), COPSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(e.msg, "outside the vocabulary"));
    tok[3] = -1;
    ck_assert_int_eq(copse_decode(c, &b, &e), COPSE_E_ARG);
    ck_assert_int_eq(copse_seq_len(s), 5);
    ck_assert_int_eq(copse_seq_len(other), 0);
    /* the last successful decode's logits survive the failed ones */
    assert_close(copse_get_logits(c, 4), g.logits + (size_t)4 * g.n_vocab, g.n_vocab, GOLDEN_TOL, "kept", 4);

    tok[3] = g.tok[7];
    ck_assert_int_eq(copse_decode(c, &b, &e), COPSE_OK);
    assert_close(copse_get_logits(c, 3), g.logits + (size_t)7 * g.n_vocab, g.n_vocab, GOLDEN_TOL, "after errors", 7);
    ck_assert_int_eq(copse_seq_len(s), 8);
    ck_assert_int_eq(copse_decode_tokens(c, s, g.tok, 1, 0, &e), COPSE_E_CTX_FULL);

    copse_batch empty = { 0, seq, tok, NULL };
    ck_assert_int_eq(copse_decode(c, &empty, &e), COPSE_E_ARG);
    copse_ctx_free(c);
    copse_model_free(m);
    free(g.buf);
}
END_TEST

START_TEST(info_and_vocab_only)
{
    copse_model *m = load(MODELS "/tiny-llama-wide");
    copse_model_info in;
    copse_model_get_info(m, &in);
    ck_assert_str_eq(in.arch, "llama");
    ck_assert_str_eq(in.name, "copse-random-tiny-llama-wide");
    ck_assert_int_eq(in.n_vocab, 320);
    ck_assert_int_eq(in.n_embd, 64);
    ck_assert_int_eq(in.n_layer, 2);
    ck_assert_int_eq(in.n_head, 4);
    ck_assert_int_eq(in.n_head_kv, 1);
    ck_assert_int_eq(in.head_dim, 24);
    ck_assert_int_eq(in.n_rot, 24);
    ck_assert_int_eq(in.n_ff, 96);
    ck_assert_int_eq(in.n_ctx_train, 64);
    ck_assert_int_eq(in.tied_output, 0);
    /* embeddings and output 2*320*64, rope factors 12, norms 64 + 2*2*64,
    ** per layer q 64*96 + k,v 2*64*24 + o 96*64 + ffn 3*64*96 */
    ck_assert_int_eq(in.n_params, 2 * 320 * 64 + 12 + 64 + 2 * (2 * 64 + 2 * 64 * 96 + 2 * 64 * 24 + 3 * 64 * 96));
    ck_assert_str_eq(in.tensor_types, "BF16 16, F32 6");   /* 2 + 7 per layer matrices; 5 norms, rope factors */
    /* the reference path's matrices in f32: output, then per layer q, k, v, o and the ffn */
    ck_assert_uint_eq(in.weight_bytes, 4 * (320 * 64 + 2 * (64 * 96 + 2 * 64 * 24 + 96 * 64 + 3 * 64 * 96)));
    copse_model_free(m);

    copse_model_params p = copse_model_default_params();
    p.vocab_only = 1;
    copse_error e;
    ck_assert_int_eq(copse_model_load(MODELS "/tiny-qwen2.gguf", &p, &m, &e), COPSE_OK);
    copse_model_get_info(m, &in);
    ck_assert_str_eq(in.arch, "qwen2");
    ck_assert_int_eq(in.n_layer, 0);
    ck_assert_int_eq(in.n_vocab, 320);
    copse_ctx *c = (copse_ctx *)&e;
    ck_assert_int_eq(copse_ctx_new(m, NULL, &c, &e), COPSE_E_ARG);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(e.msg, "vocab-only"));
    copse_model_free(m);
}
END_TEST

/* Bad files are made by patching a copy of a good one in a few bytes. */
typedef struct patch {
    const char *find;      /* bytes to look for (first occurrence) */
    size_t      find_len;
    long        at;        /* offset from the end of the match */
    const char *put;       /* bytes to write there */
    size_t      put_len;
} patch;

static char tmpdir[64];

static const char *patched(const char *name, patch p)
{
    static char path[128];
    size_t len;
    char *buf = tu_read_file(MODELS "/tiny-llama.gguf", &len);
    ck_assert_ptr_nonnull(buf);
    char *hit = memmem(buf, len, p.find, p.find_len);
    ck_assert_msg(hit != NULL, "%s: pattern not found", name);
    memcpy(hit + p.find_len + p.at, p.put, p.put_len);
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
    return path;
}

static void expect_load_error(const char *path, int code, const char *substr)
{
    copse_model *m = (copse_model *)path;
    copse_error e;
    int rc = copse_model_load(path, NULL, &m, &e);
    ck_assert_msg(rc == code, "%s: got %d (%s), expected %d", path, rc, e.msg, code);
    ck_assert_int_eq(e.code, code);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(e.msg, substr) != NULL, "%s: message '%s' lacks '%s'", path, e.msg, substr);
}

#define S(lit) lit, sizeof lit - 1

START_TEST(load_errors)
{
    strcpy(tmpdir, "/tmp/copse-test-model-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    const uint32_t q8_1 = 9;   /* a type ggml names but no weight file uses */
    const uint64_t half = 32;
    /* the architecture value: its 8-byte length 5, then the text */
    expect_load_error(patched("arch", (patch){ S("\5\0\0\0\0\0\0\0llama"), -1, S("x") }),
                      COPSE_E_UNSUPPORTED, "unknown architecture 'llamx'");
    expect_load_error(patched("key", (patch){ S("llama.block_count"), -1, S("x") }),
                      COPSE_E_FORMAT, "missing metadata key 'llama.block_count'");
    /* after the key: its value's type (4 bytes), then the value */
    const uint32_t many = 1000000;
    expect_load_error(patched("layers", (patch){ S("llama.block_count"), 4, (const char *)&many, 4 }),
                      COPSE_E_FORMAT, "block_count 1000000, but the file has only");
    expect_load_error(patched("missing", (patch){ S("blk.1.ffn_up.weight"), -1, S("x") }),
                      COPSE_E_FORMAT, "missing tensor 'blk.1.ffn_up.weight'");
    /* after a 2-D tensor's name: n_dims (4 bytes), ne[0], ne[1] (8 each), type (4) */
    expect_load_error(patched("type", (patch){ S("blk.1.ffn_up.weight"), 20, (const char *)&q8_1, 4 }),
                      COPSE_E_UNSUPPORTED, "tensor 'blk.1.ffn_up.weight' has type Q8_1; copse reads F32, F16");
    expect_load_error(patched("shape", (patch){ S("blk.0.attn_k.weight"), 12, (const char *)&half, 8 }),
                      COPSE_E_FORMAT, "tensor 'blk.0.attn_k.weight' has shape [64, 32, 1, 1], expected [64, 64]");
    expect_load_error(patched("magic", (patch){ S("GGUF"), -4, S("GGUG") }), COPSE_E_FORMAT, "not a GGUF file");
    char missing[128];
    snprintf(missing, sizeof missing, "%s/absent.gguf", tmpdir);
    expect_load_error(missing, COPSE_E_IO, "absent.gguf");
    static const char *const made[] = { "arch", "key", "layers", "missing", "type", "shape", "magic" };
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s.gguf", tmpdir, made[i]);
        unlink(p);
    }
    rmdir(tmpdir);
}
END_TEST

/* The committed models are what tools/mkmodel writes from the commands in
** tests/data/models/README.md: same arguments, same bytes. */
static const char *const made_models[][2] = {
    { "tiny-qwen2", "--preset tiny-qwen2 --type q8_0" },
    { "tiny-llama-blocks", "--preset tiny-llama --n-embd 256 --n-ff 256 --n-head 4 --n-head-kv 2 --tied 0 "
                           "--type q4_0,q4_1,q5_0,q5_1,q2_k,q3_k,q4_k,q5_k,q6_k,iq4_nl,iq4_xs" },
};

START_TEST(mkmodel_reproduces_committed_model)
{
    char out[128], cmd[512], want[128];
    snprintf(out, sizeof out, "/tmp/copse-test-mkmodel-%d.gguf", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s/bin/mkmodel %s -o %s", tu_build_dir(), made_models[_i][1], out);
    snprintf(want, sizeof want, MODELS "/%s.gguf", made_models[_i][0]);
    ck_assert_int_eq(system(cmd), 0);
    size_t n1, n2;
    char *a = tu_read_file(out, &n1), *b = tu_read_file(want, &n2);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(a, b, n1) == 0, "%s differs from what mkmodel writes", want);
    unlink(out);
    free(a);
    free(b);
}
END_TEST

/* --type: a list of known names, each whose blocks divide the shape's rows. */
START_TEST(mkmodel_refuses_bad_types)
{
    static const char *const cases[][2] = {
        { "--preset tiny-llama --type q4_k", "Q4_K needs n_embd, n_ff and n_head * head_dim to be multiples of 256" },
        { "--preset tiny-llama --type q4_0,", "--type takes up to 16 of" },
        { "--preset tiny-llama --type q4_0,,q8_0", "--type takes up to 16 of" },
        { "--preset tiny-llama --type iq2_xxs", "--type takes up to 16 of" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[512], out[1024];
        snprintf(cmd, sizeof cmd, "%s/bin/mkmodel %s -o /tmp/copse-test-mkmodel-bad-%d.gguf 2>&1",
                 tu_build_dir(), cases[i][0], (int)getpid());
        ck_assert_msg(tu_run(cmd, out, sizeof out) == 2 && strstr(out, cases[i][1]),
                      "mkmodel %s: %s", cases[i][0], out);
    }
}
END_TEST

Suite *copse_suite_model(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("forward");
    tcase_add_loop_test(tc, matches_reference, 0, N_GOLDENS);
    tcase_add_loop_test(tc, one_at_a_time_equals_batch, 0, N_GOLDENS);
    tcase_add_test(tc, longrope_short_context);
    tcase_add_test(tc, longrope_bad_factor);
    tcase_add_test(tc, gemma_local_layers_by_pattern);
    tcase_add_test(tc, unread_tensors_refused);
    tcase_add_test(tc, mixed_sequences_equal_alone);
    tcase_add_test(tc, long_batch_split);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, ctx_full_and_bad_token_change_nothing);
    tcase_add_test(tc, info_and_vocab_only);
    tcase_add_test(tc, load_errors);
    tcase_add_loop_test(tc, mkmodel_reproduces_committed_model, 0, (int)(sizeof made_models / sizeof made_models[0]));
    tcase_add_test(tc, mkmodel_refuses_bad_types);
    suite_add_tcase(s, tc);
    return s;
}
