/*
** The forward pass's fused steps against their plain order, on the
** committed tiny models: the row passes that quantize a product's input
** as they write it, and the gate and up product that computes SwiGLU and
** quantizes it as it goes, give the logits of the separate row pass and
** quantization job, bit for bit, whatever the thread count. The stacked
** gate and up rows alternate as model.h says. And the elementwise kernels
** the passes fuse (vec.h) against the plain ones, bit for bit where vec.h
** says so.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "testutil.h"
#include "vec_exact.h"
#include "copse.h"
#include "forward.h"
#include "vec.h"
#include "q8.h"

#define MODELS   "tests/data/models"
#define PROMPT   40   /* rows: the row passes run in parallel, the products in chunks */
#define BRANCHES 16
#define STEPS    3
#define SOLO     2    /* steps of one branch alone: one-token products */
#define N_ROWS   (PROMPT + STEPS * BRANCHES + SOLO)

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
** together, then the first one SOLO steps alone. The int8 path with f16
** KV, as copse runs by default.
*/
static float *tree_logits(copse_model *m, int n_threads)
{
    int nv = copse_n_vocab(m);
    copse_ctx_params cp = copse_ctx_default_params();
    cp.n_ctx = PROMPT + STEPS + SOLO;
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
    for (int s = 0; s < SOLO; s++) {
        tok[0] = (int32_t)((s * 59 + 3) % nv);
        copse_batch batch = { 1, br, tok, want };
        ck_assert_msg(copse_decode(c, &batch, &e) == COPSE_OK, "%s", e.msg);
        at = keep(c, 1, nv, at);
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

/* ------------------------------------------------------------------ layout */

/* Whether row q (quantized) holds row x's values: within a little over
** half a step of x's blocks' quantization. */
static int holds(const float *q, const float *x, int n)
{
    for (int b = 0; b < n; b += Q8_BLOCK) {
        float amax = 0;
        for (int i = b; i < b + Q8_BLOCK; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        for (int i = b; i < b + Q8_BLOCK; i++)
            if (fabsf(q[i] - x[i]) > 0.6f * amax / 127)
                return 0;
    }
    return 1;
}

/* Each row of the stacked gate and up matrix holds the f32 path's gate or
** up row that model.h's runs put there, and not the row of the other. */
START_TEST(gate_up_rows_alternate_in_runs)
{
    char path[256];
    snprintf(path, sizeof path, MODELS "/%s.gguf", tiny[_i]);
    copse_model_params p = copse_model_default_params();
    copse_model *m, *ref;
    copse_error e;
    ck_assert_msg(copse_model_load(path, &p, &m, &e) == COPSE_OK, "%s: %s", path, e.msg);
    p.weights_f32 = 1;
    ck_assert_msg(copse_model_load(path, &p, &ref, &e) == COPSE_OK, "%s: %s", path, e.msg);
    int K = m->info.n_embd, run = Q8_BLOCK;
    float *row = malloc(sizeof(float) * (size_t)K);
    for (int il = 0; il < m->info.n_layer; il++) {
        const model_layer *y = &m->layers[il], *r = &ref->layers[il];
        ck_assert_ptr_nonnull(y->w_gate_up.q8);
        ck_assert_int_eq(y->gate_up_run, run);
        for (int n = 0; n < 2 * m->info.n_ff; n++) {
            int c = n / (2 * run) * run + n % run, up = n % (2 * run) >= run;
            const float *want = (up ? r->w_up.f32 : r->w_gate.f32) + (size_t)c * K;
            const float *other = (up ? r->w_gate.f32 : r->w_up.f32) + (size_t)c * K;
            q8_weights_row(y->w_gate_up.q8, n, row);
            ck_assert_msg(holds(row, want, K) && !holds(row, other, K), "%s, layer %d: row %d is "
                          "not %s's feature %d", tiny[_i], il, n, up ? "up" : "gate", c);
        }
    }
    free(row);
    copse_model_free(m);
    copse_model_free(ref);
}
END_TEST

/* ---------------------------------------------------------------- kernels */

/* The default table, and on x86 each SIMD one the CPU runs. */
static const vec_kernels *table(int i)
{
#if defined(__x86_64__)
    const vec_kernels *k[] = { &vec_avx2, &vec_avx512 };
    const q8_kernels *needs[] = { &q8_tier_avx2, &q8_tier_avx512vnni };
    if (i < 2)
        return q8_tier_supported(needs[i]) ? k[i] : NULL;
#endif
    return i == 2 ? vec_kernels_default() : NULL;
}

/* vecx_check_plain for each table. */
START_TEST(kernels_match_plain)
{
    const vec_kernels *k = table(_i);
    if (!k) {
        tu_skip("kernels_match_plain", "this CPU lacks the table's instructions");
        return;
    }
    exact_stats st = {0};
    vecx_check_plain(k, &st);
    tu_exact_clean("elementwise, bit for bit", k->name, &st);
}
END_TEST

Suite *copse_suite_forward(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("fused");
    tcase_add_loop_test(tc, quantize_in_rows_is_exact, 0, N_TINY);
    tcase_add_loop_test(tc, gate_up_rows_alternate_in_runs, 0, N_TINY);
    tcase_add_loop_test(tc, kernels_match_plain, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}
