/*
** libFuzzer target: any bytes as a model file through copse_model_load,
** past the GGUF reader that fuzz_gguf.c covers: the metadata a model
** needs, its tensors' names, shapes and types, the tokenizer, and a
** verifier head. A rejected file must come with a message. A loaded one
** is used the way a caller would: tokenize and detokenize, render a chat
** in the format its template names, decode a few
** tokens in a small context, read every logit and sample from them, make
** a verifier. ASan and UBSan catch what goes wrong. Build and run:
** make fuzz-model.
*/
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "copse.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static void failed(int rc, const copse_error *e)
{
    CHECK(rc != COPSE_OK && e->code == rc && e->msg[0]);
}

static void tokens(const copse_model *m)
{
    static const char text[] = "Hi <s> 12+3=15.\n\xff\xfe ok";
    int32_t tok[64];
    char buf[256];
    int n = copse_tokenize(m, text, sizeof text - 1, COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL,
                           tok, 64);
    if (n < 0 || n > 64)
        return;
    int len = copse_detokenize(m, tok, n, COPSE_TOK_ADD_SPECIAL, buf, sizeof buf);
    CHECK(len < 0 || len >= (int)sizeof buf || buf[len] == '\0');
    for (int i = 0; i < n; i++)
        copse_token_piece(m, tok[i], buf, sizeof buf);
}

static void decode(copse_model *m, const copse_model_info *info)
{
    copse_ctx_params cp = copse_ctx_default_params();
    cp.n_ctx = 32;
    cp.n_threads = 1;
    cp.kv_tokens = 64;
    copse_ctx *c;
    copse_error e;
    int rc = copse_ctx_new(m, &cp, &c, &e);
    if (rc) {
        failed(rc, &e);
        return;
    }
    copse_seq *s = copse_seq_new(c);
    int32_t t[3] = { 0, info->n_vocab - 1, info->n_vocab / 2 };
    rc = s ? copse_decode_tokens(c, s, t, 3, 1, &e) : COPSE_E_NOMEM;
    if (rc == COPSE_OK) {
        volatile float sum = 0;
        /* top-k's selection, which a NaN logit once broke; and without
        ** top-k, temperature alone and top-p with min-p, whose terms a
        ** broken model's NaN and infinite logits reach */
        static const struct { int top_k; float top_p, min_p; } ps[] = { { 2, 0.95f, 0.05f }, { 0, 1, 0 },
                                                                        { 0, 0.9f, 0.05f } };
        for (int i = 0; i < 3; i++) {
            copse_sampler_params sp = copse_sampler_default_params();
            sp.top_k = ps[i].top_k;
            sp.top_p = ps[i].top_p;
            sp.min_p = ps[i].min_p;
            copse_sampler *sm = copse_sampler_new(&sp);
            CHECK(sm);
            const float *l = copse_get_logits(c, i);
            CHECK(l);
            for (int k = 0; k < info->n_vocab; k++)
                sum += l[k];
            int32_t id = copse_sample(sm, l, info->n_vocab);
            CHECK(id >= 0 && id < info->n_vocab);
            copse_sampler_free(sm);
        }
    } else if (s) {
        failed(rc, &e);
    }
    copse_seq_free(s);
    copse_ctx_free(c);
}

/* The chat format the file's template names, and a conversation in it:
** the length the same whatever the buffer, and NUL-terminated. */
static void chat(const copse_model *m)
{
    static const char *const turns[3] = { "What is 2+3?", "5", "And 4+4?" };
    char buf[512];
    copse_error e;
    if (!copse_chat_format(m, &e)) {
        CHECK(e.msg[0]);
        return;
    }
    int n = copse_chat_conversation(m, NULL, "Be brief.", turns, 3, buf, sizeof buf, &e);
    CHECK(n > 0 && n < (int)sizeof buf && buf[n] == '\0');
    CHECK(copse_chat_conversation(m, NULL, "Be brief.", turns, 3, NULL, 0, &e) == n);
}

static void verifier(copse_model *m)
{
    copse_verifier_params vp = copse_verifier_default_params();
    copse_verifier *v;
    copse_error e;
    int rc = copse_verifier_new(m, &vp, &v, &e);
    if (rc)
        failed(rc, &e);
    else
        copse_verifier_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("model", 0);
    CHECK(fd >= 0);
    for (size_t at = 0; at < size;) {
        ssize_t w = write(fd, data + at, size - at);
        CHECK(w > 0);
        at += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    copse_model_params mp = copse_model_default_params();
    copse_model *m;
    copse_error e;
    int rc = copse_model_load(path, &mp, &m, &e);
    if (rc) {
        CHECK(!m);
        failed(rc, &e);
    } else {
        copse_model_info info;
        copse_model_get_info(m, &info);
        tokens(m);
        chat(m);
        if (info.n_layer > 0)
            decode(m, &info);
        verifier(m);
        copse_model_free(m);
    }
    close(fd);
    return 0;
}
