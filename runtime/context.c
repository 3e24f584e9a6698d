/*
** Contexts and sequences, and decoding batches through the forward pass.
**
** Each sequence keeps its own f32 keys and values, one buffer per layer
** for each, grown on demand (doubling, at most n_ctx positions), so short
** sequences cost little whatever the context length. The paged KV pool
** shared between branches will replace this behind kv_key / kv_value.
**
** copse_decode checks the whole batch and reserves all memory it needs
** before touching any sequence, so a call that fails changes nothing.
*/
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "forward.h"
#include "error.h"

struct copse_seq {
    copse_ctx *ctx;
    copse_seq *prev, *next;   /* the context's live sequences */
    int        len;           /* positions decoded */
    int        cap;           /* positions the buffers hold */
    float    **kv;            /* [2 * n_layer]: keys of layer il at 2il, values at 2il + 1 */
    int        n_new;         /* entries of the batch being decoded */
};

struct copse_ctx {
    copse_model *model;
    int          n_ctx, kv_dim;
    fwd_state   *fwd;
    copse_seq   *seqs;
    fwd_row     *rows;        /* the batch being decoded */
    int         *out;         /* logits slot of each entry, or -1 */
    int         *hout;        /* hidden-state slot of each entry, or -1 */
    int          n_entries, cap_rows, cap_out, cap_hout;
    float       *logits;      /* [cap_logits][n_vocab] */
    float       *hidden;      /* [cap_hidden][n_embd] */
    int          cap_logits, cap_hidden;
};

/* --------------------------------------------------------------- sequences */

float *kv_key(copse_seq *s, int il, int pos)
{
    return s->kv[2 * il] + (size_t)pos * s->ctx->kv_dim;
}

float *kv_value(copse_seq *s, int il, int pos)
{
    return s->kv[2 * il + 1] + (size_t)pos * s->ctx->kv_dim;
}

/* Room for n positions. On failure some buffers may have grown, which is
** harmless: cap only moves once all have. */
static int kv_reserve(copse_seq *s, int n)
{
    if (n <= s->cap)
        return COPSE_OK;
    copse_ctx *c = s->ctx;
    int cap = s->cap == 0 ? 16 : s->cap > c->n_ctx / 2 ? c->n_ctx : 2 * s->cap;
    if (cap < n)
        cap = n;
    if (cap > c->n_ctx)
        cap = c->n_ctx;
    for (int i = 0; i < 2 * c->model->info.n_layer; i++) {
        float *p = realloc(s->kv[i], (size_t)cap * c->kv_dim * sizeof *p);
        if (!p)
            return COPSE_E_NOMEM;
        s->kv[i] = p;
    }
    s->cap = cap;
    return COPSE_OK;
}

copse_seq *copse_seq_new(copse_ctx *ctx)
{
    if (!ctx)
        return NULL;
    copse_seq *s = calloc(1, sizeof *s);
    if (!s || !(s->kv = calloc(2 * (size_t)ctx->model->info.n_layer, sizeof *s->kv))) {
        free(s);
        return NULL;
    }
    s->ctx = ctx;
    s->next = ctx->seqs;
    if (ctx->seqs)
        ctx->seqs->prev = s;
    ctx->seqs = s;
    return s;
}

void copse_seq_free(copse_seq *s)
{
    if (!s)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        s->ctx->seqs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    for (int i = 0; i < 2 * s->ctx->model->info.n_layer; i++)
        free(s->kv[i]);
    free(s->kv);
    free(s);
}

int copse_seq_len(const copse_seq *s)
{
    return s ? s->len : 0;
}

copse_seq *copse_seq_fork(copse_seq *s)
{
    if (!s)
        return NULL;
    copse_seq *t = copse_seq_new(s->ctx);
    if (!t)
        return NULL;
    if (kv_reserve(t, s->len)) {
        copse_seq_free(t);
        return NULL;
    }
    for (int i = 0; i < 2 * s->ctx->model->info.n_layer && s->len; i++)
        memcpy(t->kv[i], s->kv[i], (size_t)s->len * s->ctx->kv_dim * sizeof(float));
    t->len = s->len;
    return t;
}

int copse_seq_truncate(copse_seq *s, int n)
{
    if (!s || n < 0 || n > s->len)
        return COPSE_E_ARG;
    s->len = n;
    return COPSE_OK;
}

void copse_kv_stats_get(const copse_ctx *c, copse_kv_stats *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!c)
        return;
    uint64_t per_token = 2 * (uint64_t)c->model->info.n_layer * c->kv_dim * sizeof(float);
    st->block_tokens = 1;
    for (const copse_seq *s = c->seqs; s; s = s->next) {
        st->blocks_used += s->cap;
        st->tokens_logical += s->len;
    }
    st->tokens_stored = st->tokens_logical;
    st->blocks_total = st->blocks_used;
    st->bytes_used = st->bytes_total = (uint64_t)st->blocks_used * per_token;
    st->peak_blocks_used = st->blocks_used;
}

/* ---------------------------------------------------------------- contexts */

copse_ctx_params copse_ctx_default_params(void)
{
    copse_ctx_params p = { .n_ctx = 0, .n_threads = 0 };
    return p;
}

int copse_ctx_new(copse_model *model, const copse_ctx_params *params,
                  copse_ctx **out, copse_error *err)
{
    copse_error_clear(err);
    if (!out)
        return copse_fail(err, COPSE_E_ARG, "copse_ctx_new: out is NULL");
    *out = NULL;
    if (!model)
        return copse_fail(err, COPSE_E_ARG, "copse_ctx_new: model is NULL");
    if (model->info.n_layer == 0)
        return copse_fail(err, COPSE_E_ARG, "copse_ctx_new: the model was loaded vocab-only");
    copse_ctx_params p = params ? *params : copse_ctx_default_params();
    if (p.n_ctx < 0 || p.n_threads < 0 || p.kv_tokens < 0)
        return copse_fail(err, COPSE_E_ARG, "copse_ctx_new: n_ctx %d, n_threads %d and kv_tokens %d must not be negative",
                          p.n_ctx, p.n_threads, p.kv_tokens);
    int n_ctx = p.n_ctx ? p.n_ctx : model->info.n_ctx_train;
    int n_threads = p.n_threads ? p.n_threads : omp_get_num_procs();
    copse_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->fwd = fwd_new(model, n_ctx, n_threads))) {
        free(c);
        return copse_fail(err, COPSE_E_NOMEM, "copse_ctx_new: no memory for %d threads × %d positions of scratch",
                          n_threads, n_ctx);
    }
    c->model = model;
    c->n_ctx = n_ctx;
    c->kv_dim = model->info.n_head_kv * model->info.head_dim;
    *out = c;
    return COPSE_OK;
}

/* Frees the sequences still open too. */
void copse_ctx_free(copse_ctx *c)
{
    if (!c)
        return;
    while (c->seqs)
        copse_seq_free(c->seqs);
    fwd_free(c->fwd);
    free(c->rows);
    free(c->out);
    free(c->hout);
    free(c->logits);
    free(c->hidden);
    free(c);
}

int copse_ctx_n_ctx(const copse_ctx *c)
{
    return c ? c->n_ctx : 0;
}

/* ------------------------------------------------------------------ decode */

static int check_batch(copse_ctx *c, const copse_batch *b, copse_error *err)
{
    if (!b || b->n <= 0 || !b->seq || !b->token)
        return copse_fail(err, COPSE_E_ARG, "copse_decode: empty or incomplete batch");
    int n_vocab = c->model->info.n_vocab;
    for (int i = 0; i < b->n; i++) {
        if (!b->seq[i] || b->seq[i]->ctx != c)
            return copse_fail(err, COPSE_E_ARG, "copse_decode: entry %d has no sequence of this context", i);
        if (b->token[i] < 0 || b->token[i] >= n_vocab)
            return copse_fail(err, COPSE_E_ARG, "copse_decode: entry %d has token %d, outside the vocabulary [0, %d)",
                              i, (int)b->token[i], n_vocab);
        b->seq[i]->n_new = 0;
    }
    for (int i = 0; i < b->n; i++) {
        copse_seq *s = b->seq[i];
        if (++s->n_new > c->n_ctx - s->len)
            return copse_fail(err, COPSE_E_CTX_FULL, "copse_decode: entry %d would put a sequence of %d tokens "
                              "past the context length %d", i, s->len, c->n_ctx);
    }
    return COPSE_OK;
}

static int grow(void **p, int *cap, int n, size_t size)
{
    if (n <= *cap)
        return COPSE_OK;
    void *q = realloc(*p, (size_t)n * size);
    if (!q)
        return COPSE_E_NOMEM;
    *p = q;
    *cap = n;
    return COPSE_OK;
}

/* All the memory the batch needs, before anything changes. */
static int reserve(copse_ctx *c, const copse_batch *b, int n_out, int n_hidden, copse_error *err)
{
    int rc = COPSE_OK;
    for (int i = 0; i < b->n && !rc; i++)
        rc = kv_reserve(b->seq[i], b->seq[i]->len + b->seq[i]->n_new);
    if (!rc)
        rc = grow((void **)&c->rows, &c->cap_rows, b->n, sizeof *c->rows);
    if (!rc)
        rc = grow((void **)&c->out, &c->cap_out, b->n, sizeof *c->out);
    if (!rc)
        rc = grow((void **)&c->hout, &c->cap_hout, b->n, sizeof *c->hout);
    if (!rc)
        rc = grow((void **)&c->logits, &c->cap_logits, n_out, (size_t)c->model->info.n_vocab * sizeof(float));
    if (!rc)
        rc = grow((void **)&c->hidden, &c->cap_hidden, n_hidden, (size_t)c->model->info.n_embd * sizeof(float));
    if (!rc)
        rc = fwd_reserve(c->fwd, b->n < FWD_MAX_ROWS ? b->n : FWD_MAX_ROWS);
    return rc ? copse_fail(err, rc, "copse_decode: out of memory for a batch of %d", b->n) : COPSE_OK;
}

static unsigned wants(const copse_batch *b, int i)
{
    return b->want ? b->want[i] & (COPSE_WANT_LOGITS | COPSE_WANT_HIDDEN)
                   : i == b->n - 1 ? COPSE_WANT_LOGITS : 0;
}

/* Where the outputs of rows [i, i + n) go: the first slot they fill in
** buf (of width floats each), or NULL if they fill none. */
static float *first_slot(float *buf, const int *slot, int i, int n, size_t width)
{
    for (int j = i; j < i + n; j++)
        if (slot[j] >= 0)
            return buf + (size_t)slot[j] * width;
    return NULL;
}

int copse_decode(copse_ctx *c, const copse_batch *b, copse_error *err)
{
    copse_error_clear(err);
    if (!c)
        return copse_fail(err, COPSE_E_ARG, "copse_decode: ctx is NULL");
    int n_out = 0, n_hidden = 0, rc;
    if ((rc = check_batch(c, b, err)))
        return rc;
    for (int i = 0; i < b->n; i++) {
        n_out += (wants(b, i) & COPSE_WANT_LOGITS) != 0;
        n_hidden += (wants(b, i) & COPSE_WANT_HIDDEN) != 0;
    }
    if ((rc = reserve(c, b, n_out, n_hidden, err)))
        return rc;

    /* positions follow each sequence's length in batch order */
    for (int i = 0; i < b->n; i++)
        b->seq[i]->n_new = 0;
    n_out = n_hidden = 0;
    for (int i = 0; i < b->n; i++) {
        copse_seq *s = b->seq[i];
        c->rows[i] = (fwd_row){ s, s->len + s->n_new++, b->token[i], wants(b, i) };
        c->out[i] = c->rows[i].want & COPSE_WANT_LOGITS ? n_out++ : -1;
        c->hout[i] = c->rows[i].want & COPSE_WANT_HIDDEN ? n_hidden++ : -1;
    }
    c->n_entries = b->n;

    size_t n_vocab = (size_t)c->model->info.n_vocab, n_embd = (size_t)c->model->info.n_embd;
    for (int i = 0; i < b->n; i += FWD_MAX_ROWS) {
        int n = b->n - i < FWD_MAX_ROWS ? b->n - i : FWD_MAX_ROWS;
        fwd_run(c->fwd, c->rows + i, n, first_slot(c->logits, c->out, i, n, n_vocab),
                first_slot(c->hidden, c->hout, i, n, n_embd));
    }
    for (int i = 0; i < b->n; i++) {
        b->seq[i]->len += b->seq[i]->n_new;
        b->seq[i]->n_new = 0;
    }
    return COPSE_OK;
}

int copse_decode_tokens(copse_ctx *c, copse_seq *s, const int32_t *tokens,
                        int n, int all_logits, copse_error *err)
{
    if (n <= 0 || !tokens)
        return copse_fail(err, COPSE_E_ARG, "copse_decode_tokens: no tokens");
    copse_seq **seqs = malloc((size_t)n * sizeof *seqs);
    uint8_t *want = malloc((size_t)n);
    if (!seqs || !want) {
        free(seqs);
        free(want);
        return copse_fail(err, COPSE_E_NOMEM, "copse_decode_tokens: out of memory for %d tokens", n);
    }
    for (int i = 0; i < n; i++) {
        seqs[i] = s;
        want[i] = all_logits || i == n - 1;
    }
    copse_batch b = { n, seqs, tokens, want };
    int rc = copse_decode(c, &b, err);
    free(seqs);
    free(want);
    return rc;
}

const float *copse_get_logits(const copse_ctx *c, int i)
{
    if (!c || i < 0 || i >= c->n_entries || c->out[i] < 0)
        return NULL;
    return c->logits + (size_t)c->out[i] * c->model->info.n_vocab;
}

const float *copse_get_hidden(const copse_ctx *c, int i)
{
    if (!c || i < 0 || i >= c->n_entries || c->hout[i] < 0)
        return NULL;
    return c->hidden + (size_t)c->hout[i] * c->model->info.n_embd;
}
