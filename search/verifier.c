/*
** Verifiers: process reward models that score one reasoning step.
**
** The heads are small tensors next to an ordinary model in the same GGUF
** (the loader ignores tensors it does not know); they are read here once,
** expanded to f32. A value or two-class head reads the final hidden state
** of the position that scores the step; a label verifier reads the logits
** there. Where that position is and what the verifier is shown is the
** engine's business (engine.c); this file only turns one position's output
** into a number in [0, 1].
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "model.h"
#include "error.h"
#include "dequant.h"

copse_verifier_params copse_verifier_default_params(void)
{
    copse_verifier_params p = { .kind = COPSE_PRM_AUTO };
    return p;
}

/*
** Read head tensor name of shape [ne0, ne1] (ne1 1 for a vector, which may
** also be stored as [ne0]) into a new f32 array. Absent: *out NULL, and an
** error only when required.
*/
static int head_tensor(const copse_model *m, const char *name, int ne0, int ne1, int required,
                       float **out, copse_error *err)
{
    const gguf_file *g = model_gguf(m);
    const gguf_tensor *t = gguf_find_tensor(g, name);
    *out = NULL;
    if (!t)
        return required ? copse_fail(err, COPSE_E_FORMAT, "%s: no PRM head: tensor '%s' is missing",
                                     g->path, name)
                        : COPSE_OK;
    if (t->ne[0] != (uint64_t)ne0 || t->ne[1] != (uint64_t)ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return copse_fail(err, COPSE_E_FORMAT, "%s: PRM tensor '%s' has shape [%llu, %llu, %llu, %llu], "
                          "expected [%d, %d]", g->path, name, (unsigned long long)t->ne[0],
                          (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                          (unsigned long long)t->ne[3], ne0, ne1);
    if (!t->data || !dequant_supported(t->type)) {
        char buf[16];
        return copse_fail(err, COPSE_E_UNSUPPORTED, "%s: PRM tensor '%s' has type %s; copse reads %s",
                          g->path, name, ggml_type_name(t->type, buf), dequant_type_list());
    }
    float *f = malloc(t->nelements * sizeof *f);
    if (!f)
        return copse_fail(err, COPSE_E_NOMEM, "%s: no memory for PRM tensor '%s'", g->path, name);
    dequant(t->type, t->data, 0, t->nelements, f);
    *out = f;
    return COPSE_OK;
}

/* A bias that may be absent: zeros then. */
static int head_bias(const copse_model *m, const char *name, int n, float **out, copse_error *err)
{
    int rc = head_tensor(m, name, n, 1, 0, out, err);
    if (!rc && !*out && !(*out = calloc((size_t)n, sizeof **out)))
        rc = copse_fail(err, COPSE_E_NOMEM, "no memory for PRM bias '%s'", name);
    return rc;
}

static int load_head(copse_verifier *v, copse_error *err)
{
    int d = v->n_embd, rc;
    if (v->kind == COPSE_PRM_VALUE)
        return (rc = head_tensor(v->model, "cls.weight", d, 1, 1, &v->w, err)) ? rc
               : head_bias(v->model, "cls.bias", 1, &v->b, err);
    (void)((rc = head_tensor(v->model, "cls.weight", d, d, 1, &v->w, err))
        || (rc = head_bias(v->model, "cls.bias", d, &v->b, err))
        || (rc = head_tensor(v->model, "cls.output.weight", d, 2, 1, &v->w2, err))
        || (rc = head_bias(v->model, "cls.output.bias", 2, &v->b2, err)));
    return rc;
}

/* The one token text stands for, or an error naming what. */
static int one_token(const copse_model *m, const char *what, const char *text, int32_t *out,
                     copse_error *err)
{
    int32_t t[2];
    int n = copse_tokenize(m, text, strlen(text), COPSE_TOK_PARSE_SPECIAL, t, 2);
    if (n != 1)
        return copse_fail(err, COPSE_E_ARG, "verifier: the %s label '%s' is %d tokens, not one",
                          what, text, n);
    *out = t[0];
    return COPSE_OK;
}

static int resolve_kind(const copse_model *m, int kind, int *out, copse_error *err)
{
    const gguf_file *g = model_gguf(m);
    if (kind < COPSE_PRM_AUTO || kind > COPSE_PRM_LABELS)
        return copse_fail(err, COPSE_E_ARG, "verifier: unknown kind %d", kind);
    if (kind == COPSE_PRM_AUTO && gguf_find_tensor(g, "cls.output.weight"))
        kind = COPSE_PRM_TWO_CLASS;
    else if (kind == COPSE_PRM_AUTO && gguf_find_tensor(g, "cls.weight"))
        kind = COPSE_PRM_VALUE;
    else if (kind == COPSE_PRM_AUTO)
        return copse_fail(err, COPSE_E_FORMAT, "%s: no PRM head (cls.weight); for a causal LM that "
                          "labels steps with tokens use the labels kind", g->path);
    *out = kind;
    return COPSE_OK;
}

int copse_verifier_new(copse_model *model, const copse_verifier_params *params,
                       copse_verifier **out, copse_error *err)
{
    copse_error_clear(err);
    if (!out)
        return copse_fail(err, COPSE_E_ARG, "copse_verifier_new: out is NULL");
    *out = NULL;
    if (!model)
        return copse_fail(err, COPSE_E_ARG, "copse_verifier_new: model is NULL");
    copse_verifier_params p = params ? *params : copse_verifier_default_params();
    int kind = COPSE_PRM_AUTO, rc = resolve_kind(model, p.kind, &kind, err);
    if (rc)
        return rc;
    copse_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return copse_fail(err, COPSE_E_NOMEM, "copse_verifier_new: out of memory");
    v->model = model;
    v->kind = kind;
    v->n_embd = model->info.n_embd;
    static const char *const tags[] = { "", "", "<extra_0>", " \xd0\xba\xd0\xb8" /* " ки" */ };
    static const char *const joins[] = { NULL, NULL, "", "\n" };
    const char *join = p.step_join ? p.step_join : joins[kind];
    v->tag = strdup(p.step_tag ? p.step_tag : tags[kind]);
    v->join = join ? strdup(join) : NULL;
    if (!v->tag || (join && !v->join))
        rc = copse_fail(err, COPSE_E_NOMEM, "copse_verifier_new: out of memory");
    if (!rc && kind == COPSE_PRM_LABELS)
        (void)((rc = one_token(model, "good", p.good ? p.good : "+", &v->good, err))
            || (rc = one_token(model, "bad", p.bad ? p.bad : "-", &v->bad, err)));
    else if (!rc)
        rc = load_head(v, err);
    if (!rc)
        rc = chat_format_for_gguf(model_gguf(model), p.template_name, &v->fmt, err);
    if (rc) {
        copse_verifier_free(v);
        return rc;
    }
    *out = v;
    return COPSE_OK;
}

int copse_verifier_load(const char *path, const copse_verifier_params *params,
                        copse_verifier **out, copse_error *err)
{
    copse_model *m;
    if (out)
        *out = NULL;
    int rc = copse_model_load(path, NULL, &m, err);
    if (rc)
        return rc;
    if ((rc = copse_verifier_new(m, params, out, err))) {
        copse_model_free(m);
        return rc;
    }
    (*out)->owns_model = 1;
    return COPSE_OK;
}

int copse_verifier_kind(const copse_verifier *v)
{
    return v ? v->kind : COPSE_PRM_AUTO;
}

void copse_verifier_free(copse_verifier *v)
{
    if (!v)
        return;
    free(v->w);
    free(v->b);
    free(v->w2);
    free(v->b2);
    free(v->tag);
    free(v->join);
    if (v->owns_model)
        copse_model_free(v->model);
    free(v);
}

/* ----------------------------------------------------------------- scoring */

unsigned verifier_want(const copse_verifier *v)
{
    return v->kind == COPSE_PRM_LABELS ? COPSE_WANT_LOGITS : COPSE_WANT_HIDDEN;
}

static float dot(const float *a, const float *b, int n)
{
    float s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

float verifier_score(const copse_verifier *v, const copse_ctx *ctx, int i, float *scratch)
{
    if (v->kind == COPSE_PRM_LABELS) {
        const float *l = copse_get_logits(ctx, i);
        return l ? sigmoid(l[v->good] - l[v->bad]) : NAN;
    }
    const float *h = copse_get_hidden(ctx, i);
    if (!h)
        return NAN;
    int d = v->n_embd;
    if (v->kind == COPSE_PRM_VALUE)
        return sigmoid(dot(v->w, h, d) + v->b[0]);
    for (int r = 0; r < d; r++) {
        float y = dot(v->w + (size_t)r * d, h, d) + v->b[r];
        scratch[r] = y > 0 ? y : 0;
    }
    /* softmax over two classes is a sigmoid of their difference */
    return sigmoid(dot(v->w2 + d, scratch, d) + v->b2[1] - dot(v->w2, scratch, d) - v->b2[0]);
}
