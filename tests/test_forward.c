/*
** The forward pass's fused steps against their plain order, on the
** committed tiny models: the row passes that quantize a product's input
** as they write it give the logits of the separate quantization job, bit
** for bit, whatever the thread count.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "copse.h"
#include "forward.h"

#define MODELS   "tests/data/models"
#define PROMPT   20   /* rows: enough for the row passes to run in parallel */
#define BRANCHES 16
#define STEPS    3
#define N_ROWS   (PROMPT + STEPS * BRANCHES)

static const char *const tiny[] = {
    "tiny-llama", "tiny-llama-gqa-untied", "tiny-qwen2", "tiny-llama-wide", "tiny-qwen2-rot",
};
#define N_TINY (int)(sizeof tiny / sizeof tiny[0])

/* Keep the logits of the last decode's first n entries at out. */
static float *keep(const copse_ctx *c, int n, int nv, float *out)
{
    for (int i = 0; i < n; i++, out += nv) {
        const float *l = copse_get_logits(c, i);
        ck_assert_ptr_nonnull(l);
        memcpy(out, l, sizeof(float) * (size_t)nv);
    }
    return out;
}

/*
** Every logit of a small tree (N_ROWS rows): a prompt decoded in one
** batch, then BRANCHES branches forked from it decoding STEPS steps
** together. The int8 path with f16 KV, as copse runs by default.
*/
static float *tree_logits(copse_model *m, int n_threads)
{
    int nv = copse_n_vocab(m);
    copse_ctx_params cp = copse_ctx_default_params();
    cp.n_ctx = PROMPT + STEPS;
    cp.n_threads = n_threads;
    copse_ctx *c;
    copse_error e;
    ck_assert_msg(copse_ctx_new(m, &cp, &c, &e) == COPSE_OK, "%s", e.msg);
    float *out = malloc(sizeof(float) * N_ROWS * (size_t)nv), *at = out;
    ck_assert_ptr_nonnull(out);
    int32_t tok[PROMPT];
    for (int i = 0; i < PROMPT; i++)
        tok[i] = (int32_t)((i * 37 + 11) % nv);
    copse_seq *root = copse_seq_new(c), *br[BRANCHES];
    ck_assert_msg(copse_decode_tokens(c, root, tok, PROMPT, 1, &e) == COPSE_OK, "%s", e.msg);
    at = keep(c, PROMPT, nv, at);
    for (int b = 0; b < BRANCHES; b++)
        ck_assert_ptr_nonnull(br[b] = copse_seq_fork(root));
    uint8_t want[BRANCHES];
    memset(want, COPSE_WANT_LOGITS, sizeof want);
    for (int s = 0; s < STEPS; s++) {
        for (int b = 0; b < BRANCHES; b++)
            tok[b] = (int32_t)((s * 101 + b * 13 + 5) % nv);
        copse_batch batch = { BRANCHES, br, tok, want };
        ck_assert_msg(copse_decode(c, &batch, &e) == COPSE_OK, "%s", e.msg);
        at = keep(c, BRANCHES, nv, at);
    }
    for (int b = 0; b < BRANCHES; b++)
        copse_seq_free(br[b]);
    copse_seq_free(root);
    copse_ctx_free(c);
    return out;
}

START_TEST(quantize_in_rows_is_exact)
{
    copse_model *m;
    copse_error e;
    char path[256];
    snprintf(path, sizeof path, MODELS "/%s.gguf", tiny[_i]);
    ck_assert_msg(copse_model_load(path, NULL, &m, &e) == COPSE_OK, "%s: %s", path, e.msg);
    size_t n = N_ROWS * (size_t)copse_n_vocab(m);
    fwd_quantize_in_rows = 0;
    float *plain = tree_logits(m, 1);
    fwd_quantize_in_rows = 1;
    for (int threads = 1; threads <= 2; threads++) {
        float *fused = tree_logits(m, threads);
        for (size_t i = 0; i < n; i++)
            if (memcmp(&fused[i], &plain[i], sizeof *fused))
                ck_abort_msg("%s, %d threads: logit %zu (row %zu) is %.9g fused, %.9g plain", tiny[_i],
                             threads, i, i / (size_t)copse_n_vocab(m), fused[i], plain[i]);
        free(fused);
    }
    free(plain);
    copse_model_free(m);
}
END_TEST

Suite *copse_suite_forward(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("fused");
    tcase_add_loop_test(tc, quantize_in_rows_is_exact, 0, N_TINY);
    suite_add_tcase(s, tc);
    return s;
}
