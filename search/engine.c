/*
** The search engine's setup (see search.h): contexts, prompts and their
** root sequences, the batch rows every decode goes through, and the
** budget they count.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "search.h"
#include "model.h"
#include "context.h"
#include "error.h"

double eng_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int eng_nomem(s_engine *e, const char *what)
{
    return copse_fail(e->err, COPSE_E_NOMEM, "copse_solve: out of memory for %s", what);
}

/* --------------------------------------------------------------- rows */

int rows_push(s_rows *r, copse_seq *seq, int32_t tok, uint8_t want, int br)
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        copse_seq **s = realloc(r->seq, (size_t)cap * sizeof *s);
        if (s)
            r->seq = s;
        int32_t *t = realloc(r->tok, (size_t)cap * sizeof *t);
        if (t)
            r->tok = t;
        uint8_t *w = realloc(r->want, (size_t)cap);
        if (w)
            r->want = w;
        int *b = realloc(r->br, (size_t)cap * sizeof *b);
        if (b)
            r->br = b;
        if (!s || !t || !w || !b)
            return COPSE_E_NOMEM;
        r->cap = cap;
    }
    r->seq[r->n] = seq;
    r->tok[r->n] = tok;
    r->want[r->n] = want;
    r->br[r->n++] = br;
    return COPSE_OK;
}

void rows_free(s_rows *r)
{
    free(r->seq);
    free(r->tok);
    free(r->want);
    free(r->br);
}

/*
** Decode r in ctx, counting what it costs: 2 x params per position plus
** attention over every earlier position (4 x layers x heads x head size
** each, for the scores and the weighted sum). A sequence's entries are
** consecutive in every batch the engine makes.
*/
int eng_decode(s_engine *e, copse_ctx *ctx, const s_rows *r)
{
    copse_model_info mi;
    copse_model_get_info(ctx == e->pc ? e->pm : e->v->model, &mi);
    double positions = 0;
    for (int i = 0, off = 0; i < r->n; i++) {
        off = i > 0 && r->seq[i] == r->seq[i - 1] ? off + 1 : 0;
        positions += copse_seq_len(r->seq[i]) + off + 1;
    }
    copse_batch b = { r->n, r->seq, r->tok, r->want };
    int rc = e->crowd ? crowd_decode(e->crowd, ctx, ctx == e->pc ? e->n_ctx : e->vn_ctx, &b, &e->row0, e->err)
                      : copse_decode(ctx, &b, e->err);
    if (rc == COPSE_E_KV_FULL) {
        char msg[sizeof e->err->msg];
        snprintf(msg, sizeof msg, "%s", e->err->msg);
        return copse_fail(e->err, rc, "copse_solve: the %s's KV memory is too small for this search "
                          "(raise kv_bytes, --kv-mem): %s", ctx == e->pc ? "policy" : "verifier", msg);
    }
    if (rc)
        return rc;
    e->b.flops += 2.0 * (double)mi.n_params * r->n
                + 4.0 * mi.n_layer * mi.n_head * mi.head_dim * positions;
    if (ctx == e->pc)
        e->b.policy_rows += r->n;
    else
        e->b.verifier_tokens += r->n;
    return COPSE_OK;
}

const float *eng_logits(const s_engine *e, int j)
{
    return copse_get_logits(e->pc, e->row0 + j);
}

copse_seq *eng_seq_new(s_engine *e, int side)
{
    return ctx_seq_new(side ? e->vc : e->pc, e->crowd ? &e->acct[side] : NULL);
}

/* Decode n tokens into the root sequence seq of ctx. */
static int prefill(s_engine *e, copse_ctx *ctx, copse_seq *seq, const int32_t *tok, int n)
{
    s_rows *r = &e->rows[0];
    r->n = 0;
    for (int i = 0; i < n; i++)
        if (rows_push(r, seq, tok[i], i == n - 1 ? COPSE_WANT_LOGITS : 0, 0))
            return eng_nomem(e, "the prompt");
    return eng_decode(e, ctx, r);
}

/* ------------------------------------------------------------ prompts */

/* Tokenize text into a new array; *n its length. */
static int tokenize(s_engine *e, const copse_model *m, const char *text, unsigned flags,
                    int32_t **out, int *n)
{
    size_t len = strlen(text);
    int need = copse_tokenize(m, text, len, flags, NULL, 0);
    *out = NULL;
    *n = 0;
    if (need < 0)
        return copse_fail(e->err, -need, "copse_solve: cannot tokenize '%.40s'", text);
    if (!(*out = malloc(((size_t)need + 1) * sizeof **out)))
        return eng_nomem(e, "tokens");
    *n = copse_tokenize(m, text, len, flags, *out, need);
    return COPSE_OK;
}

static int set_separator(s_engine *e)
{
    const char *s = e->p.step_sep;
    size_t len = s ? strlen(s) : 0;
    gguf_str g;
    if (!s && !gguf_get_str(model_gguf(e->pm), "copse.step_separator", &g, NULL) && g.len) {
        s = g.ptr;
        len = g.len;
    }
    if (!s) {
        s = "\n\n";
        len = 2;
    }
    if (!len)
        return copse_fail(e->err, COPSE_E_ARG, "copse_solve: the step separator is empty");
    if (!(e->sep = malloc(len + 1)))
        return eng_nomem(e, "the separator");
    memcpy(e->sep, s, len);
    e->sep[len] = '\0';
    e->sep_len = len;
    return COPSE_OK;
}

/* The prompt, and what goes between revision attempts: by default a blank
** line and the prompt again (without BOS). */
static int policy_prompts(s_engine *e, const char *question)
{
    chat_format f;
    char *text = NULL, *again = NULL;
    int rc = chat_format_for_gguf(model_gguf(e->pm), e->p.template_name, &f, e->err);
    if (!rc)
        rc = chat_render(f, e->p.system, question, e->p.prefix, &text, e->err);
    if (!rc)
        rc = tokenize(e, e->pm, text, COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL,
                      &e->prompt, &e->n_prompt);
    if (!rc && !e->p.revise_prompt && !(again = malloc(strlen(text) + 3)))
        rc = eng_nomem(e, "the revision prompt");
    if (!rc)
        rc = tokenize(e, e->pm, e->p.revise_prompt ? e->p.revise_prompt : strcat(strcpy(again, "\n\n"), text),
                      COPSE_TOK_PARSE_SPECIAL, &e->revise, &e->n_revise);
    free(text);
    free(again);
    if (!rc && e->n_prompt == 0)
        rc = copse_fail(e->err, COPSE_E_ARG, "copse_solve: the prompt is empty");
    return rc;
}

/* Verifier and policy read the same ids when their vocabularies agree. */
static int same_vocab(const copse_model *a, const copse_model *b)
{
    if (a == b)
        return 1;
    int n = copse_n_vocab(a);
    if (n != copse_n_vocab(b))
        return 0;
    char pa[256], pb[256];
    for (int32_t t = 0; t < n; t++) {
        int la = copse_token_piece(a, t, pa, sizeof pa), lb = copse_token_piece(b, t, pb, sizeof pb);
        if (la != lb || la < 0 || la > (int)sizeof pa || memcmp(pa, pb, (size_t)la))
            return 0;
    }
    return 1;
}

/* A context for m whose pool holds max_live branches of per positions
** each and the root (blocks never used cost address space only); in a
** crowd, the shared one, with that pool as the side's account. */
static int make_ctx(s_engine *e, copse_model *m, int n_ctx, int per, int max_live, int side, copse_ctx **out)
{
    copse_ctx_params cp = copse_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = e->p.n_threads;
    cp.kv_bytes = e->p.kv_bytes;
    cp.kv_f32 = e->p.kv_f32;
    int64_t tokens = (int64_t)(max_live + 1) * per;
    cp.kv_tokens = tokens > INT_MAX ? INT_MAX : (int)tokens;
    if (!e->crowd)
        return copse_ctx_new(m, &cp, out, e->err);
    int rc = ctx_pool_blocks(m, &cp, &e->acct[side].limit, e->err);
    return rc ? rc : crowd_ctx(e->crowd, m, side, &cp, e->acct[side].limit, out, e->err);
}

static int open_verifier(s_engine *e, const char *question, int max_live)
{
    copse_verifier *v = e->v;
    char *text = NULL;
    int32_t *extra;
    int n_tag = 0, n_join = 0, rc = chat_render(v->fmt, e->p.system, question, e->p.prefix, &text, e->err);
    if (!rc)
        rc = tokenize(e, v->model, text, COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL,
                      &e->vprompt, &e->n_vprompt);
    free(text);
    if (!rc && !(rc = tokenize(e, v->model, v->tag, COPSE_TOK_PARSE_SPECIAL, &extra, &n_tag)))
        free(extra);
    if (!rc && v->join && !(rc = tokenize(e, v->model, v->join, COPSE_TOK_PARSE_SPECIAL, &extra, &n_join)))
        free(extra);
    if (rc)
        return rc;
    if (e->n_vprompt == 0)
        return copse_fail(e->err, COPSE_E_ARG, "copse_solve: the verifier's prompt is empty");
    /* an attempt in the verifier's tokens can be longer than in the policy's */
    int64_t vn = (int64_t)e->n_vprompt + 2 * (int64_t)(e->n_ctx < e->p.max_tokens ? e->n_ctx : e->p.max_tokens) +
                 (int64_t)e->p.max_steps * (n_tag + n_join + (int)e->sep_len) + 1;
    e->vn_ctx = vn > INT_MAX / 4 ? INT_MAX / 4 : (int)vn;
    e->same_vocab = same_vocab(e->pm, v->model) && !*v->tag;
    if (!(e->scratch = malloc((size_t)v->n_embd * sizeof *e->scratch)))
        return eng_nomem(e, "the verifier");
    if ((rc = make_ctx(e, v->model, e->vn_ctx, e->vn_ctx, max_live, 1, &e->vc)))
        return rc;
    if (!(e->root_v = eng_seq_new(e, 1)))
        return eng_nomem(e, "a sequence");
    rc = prefill(e, e->vc, e->root_v, e->vprompt, e->n_vprompt);
    e->b.verifier_prompt_tokens = e->n_vprompt;
    return rc;
}

int eng_open(s_engine *e, copse_model *policy, copse_verifier *v, const char *question,
             const copse_solve_params *p, int max_live, int attempts, copse_crowd *crowd, copse_error *err)
{
    memset(e, 0, sizeof *e);
    e->crowd = crowd;
    e->pm = policy;
    e->v = v;
    e->p = *p;
    e->err = err;
    e->t0 = eng_now();
    e->n_vocab = copse_n_vocab(policy);
    e->n_ctx = p->n_ctx ? p->n_ctx : policy->info.n_ctx_train;
    copse_sampler_params gp = p->sampler;
    gp.temp = 0;
    int rc;
    if ((rc = set_separator(e)) || (rc = policy_prompts(e, question)))
        return rc;
    if (!(e->prefix = strdup(p->prefix ? p->prefix : "")))
        return eng_nomem(e, "the prefix");
    if (e->n_prompt >= e->n_ctx)
        return copse_fail(err, COPSE_E_CTX_FULL, "copse_solve: the prompt has %d tokens; the context "
                          "holds %d", e->n_prompt, e->n_ctx);
    if (!(e->smp = copse_sampler_new(&p->sampler)) || !(e->greedy = copse_sampler_new(&gp)) ||
        !(e->root_logits = malloc((size_t)e->n_vocab * sizeof(float))))
        return eng_nomem(e, "the sampler");
    int64_t per = attempts ? e->n_prompt + (int64_t)attempts * (p->max_tokens + e->n_revise) + 1 : e->n_ctx;
    if ((rc = make_ctx(e, policy, e->n_ctx, per < e->n_ctx ? (int)per : e->n_ctx, max_live, 0, &e->pc)))
        return rc;
    if (!(e->root_p = eng_seq_new(e, 0)))
        return eng_nomem(e, "a sequence");
    if ((rc = prefill(e, e->pc, e->root_p, e->prompt, e->n_prompt)))
        return rc;
    e->b.prompt_tokens = e->n_prompt;
    memcpy(e->root_logits, eng_logits(e, e->n_prompt - 1), (size_t)e->n_vocab * sizeof(float));
    return v ? open_verifier(e, question, max_live) : COPSE_OK;
}

/* The most blocks a side held (its account's, in a crowd), in bytes. */
static uint64_t kv_peak(const s_engine *e, int side)
{
    const copse_ctx *ctx = side ? e->vc : e->pc;
    copse_kv_stats st;
    if (!ctx)
        return 0;
    copse_kv_stats_get(ctx, &st);
    uint64_t peak = e->crowd ? (uint64_t)e->acct[side].peak : (uint64_t)st.peak_blocks_used;
    return st.blocks_total ? peak * (st.bytes_total / (uint64_t)st.blocks_total) : 0;
}

void eng_budget(s_engine *e)
{
    e->b.wall_s = eng_now() - e->t0;
    e->b.kv_peak_bytes = kv_peak(e, 0) + kv_peak(e, 1);
}

void eng_close(s_engine *e)
{
    copse_seq_free(e->root_p);
    copse_seq_free(e->root_v);
    if (e->crowd) {   /* whatever the search left, before its accounts go */
        if (e->pc)
            ctx_free_account(e->pc, &e->acct[0]);
        if (e->vc)
            ctx_free_account(e->vc, &e->acct[1]);
    } else {
        copse_ctx_free(e->pc);
        copse_ctx_free(e->vc);
    }
    copse_sampler_free(e->smp);
    copse_sampler_free(e->greedy);
    nodes_free(e->nodes, e->n_nodes);
    rows_free(&e->rows[0]);
    rows_free(&e->rows[1]);
    free(e->sep);
    free(e->prompt);
    free(e->vprompt);
    free(e->revise);
    free(e->prefix);
    free(e->root_logits);
    free(e->scratch);
    memset(e, 0, sizeof *e);
}

int eng_stopped(const s_engine *e)
{
    return e->b.stopped;
}

