/*
** Contexts and sequences, and decoding batches through the forward pass.
**
** Every sequence of a context keeps its keys and values in the context's
** paged KV pool (kv.h): a fork shares its parent's blocks, and a batch of
** many branches runs as one forward pass whose attention reads each
** shared block once for all the rows that need it (attention.h).
**
** copse_decode checks the whole batch and reserves all memory it needs,
** KV blocks included, before touching any sequence, so a call that fails
** changes nothing.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "attention.h"
#include "context.h"
#include "error.h"

/* The least a default pool holds: a few branches of a short context fit
** (unused blocks cost address space only). */
#define KV_DEFAULT_TOKENS 4096
/* Weights under this run on one thread by default (copse_ctx_n_threads). */
#define SMALL_MODEL_BYTES ((uint64_t)16 << 20)

struct copse_ctx {
    copse_model *model;
    int          n_ctx, n_threads;
    fwd_state   *fwd;
    kv_pool      pool;
    attn_plan    plan;
    attn_plan    local;       /* the local layers' (a sliding window), where the model has any */
    fwd_row     *rows;        /* the batch being decoded */
    copse_seq  **distinct;    /* its sequences, each once */
    int         *out;         /* logits slot of each entry, or -1 */
    int         *hout;        /* hidden-state slot of each entry, or -1 */
    int          n_entries, cap_rows, cap_distinct, cap_out, cap_hout;
    float       *logits;      /* [cap_logits][n_vocab] */
    float       *hidden;      /* [cap_hidden][n_embd] */
    int          cap_logits, cap_hidden;
};

/* --------------------------------------------------------------- sequences */

copse_seq *ctx_seq_new(copse_ctx *ctx, kv_account *a)
{
    if (!ctx)
        return NULL;
    copse_seq *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ctx = ctx;
    s->acct = a;
    kv_seq_link(&ctx->pool, s);
    return s;
}

void ctx_free_account(copse_ctx *ctx, const kv_account *a)
{
    for (copse_seq *s = ctx->pool.seqs, *next; s; s = next) {
        next = s->next;
        if (s->acct == a)
            copse_seq_free(s);
    }
}

copse_seq *copse_seq_new(copse_ctx *ctx)
{
    return ctx_seq_new(ctx, NULL);
}

void copse_seq_free(copse_seq *s)
{
    if (!s)
        return;
    kv_seq_unlink(s);
    free(s);
}

int copse_seq_len(const copse_seq *s)
{
    return s ? s->len : 0;
}

copse_seq *copse_seq_fork(copse_seq *s)
{
    copse_seq *t = s ? copse_seq_new(s->ctx) : NULL;
    if (t && kv_share(t, s)) {
        copse_seq_free(t);
        return NULL;
    }
    return t;
}

int copse_seq_truncate(copse_seq *s, int n)
{
    if (!s || n < 0 || n > s->len)
        return COPSE_E_ARG;
    kv_truncate(s, n);
    return COPSE_OK;
}

kv_pool *ctx_kv_pool(copse_ctx *c)
{
    return &c->pool;
}

void copse_kv_stats_get(const copse_ctx *c, copse_kv_stats *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (c)
        kv_stats(&c->pool, st);
}

/* ---------------------------------------------------------------- contexts */

copse_ctx_params copse_ctx_default_params(void)
{
    copse_ctx_params p = { .n_ctx = 0, .n_threads = 0 };
    return p;
}

/* The number of blocks of the pool the parameters ask for. */
static int pool_blocks(const copse_model_info *hp, const copse_ctx_params *p, int n_ctx, int *out,
                       copse_error *err)
{
    size_t block = kv_block_bytes(hp, !p->kv_f32);
    uint64_t tokens = p->kv_tokens ? p->kv_tokens : n_ctx > KV_DEFAULT_TOKENS ? n_ctx : KV_DEFAULT_TOKENS;
    uint64_t n = p->kv_bytes ? p->kv_bytes / block : (tokens + KV_BLOCK - 1) / KV_BLOCK;
    if (n == 0)
        return copse_fail(err, COPSE_E_ARG, "copse_ctx_new: kv_bytes %llu is less than one KV block "
                          "(%zu bytes, %d positions)", (unsigned long long)p->kv_bytes, block, KV_BLOCK);
    if (n > INT_MAX / 2)
        return copse_fail(err, COPSE_E_ARG, "copse_ctx_new: a KV pool of %llu blocks is too large",
                          (unsigned long long)n);
    *out = (int)n;
    return COPSE_OK;
}

int ctx_pool_blocks(const copse_model *model, const copse_ctx_params *p, int *n_blocks, copse_error *err)
{
    return pool_blocks(&model->info, p, p->n_ctx ? p->n_ctx : model->info.n_ctx_train, n_blocks, err);
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
        return copse_fail(err, COPSE_E_ARG, "copse_ctx_new: n_ctx %d, n_threads %d and kv_tokens %d must not "
                          "be negative", p.n_ctx, p.n_threads, p.kv_tokens);
    int n_ctx = p.n_ctx ? p.n_ctx : model->info.n_ctx_train;
    int n_threads = p.n_threads ? p.n_threads : ctx_default_threads(model->info.weight_bytes, omp_get_num_procs());
    int n_blocks = 0, rc = pool_blocks(&model->info, &p, n_ctx, &n_blocks, err);
    if (rc)
        return rc;
    copse_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return copse_fail(err, COPSE_E_NOMEM, "copse_ctx_new: out of memory");
    c->model = model;
    c->n_ctx = n_ctx;
    c->n_threads = n_threads;
    int window = model->swa_window;
    if (!(c->fwd = fwd_new(model, n_threads, n_ctx)) || kv_pool_init(&c->pool, &model->info, n_blocks, !p.kv_f32)
        || attn_init(&c->plan, &model->info, &c->pool, n_threads, 0)
        || (window && attn_init(&c->local, &model->info, &c->pool, n_threads, window))) {
        copse_ctx_free(c);
        return copse_fail(err, COPSE_E_NOMEM, "copse_ctx_new: no memory for a KV pool of %d blocks "
                          "(%zu bytes each) and %d threads' scratch", n_blocks,
                          kv_block_bytes(&model->info, !p.kv_f32), n_threads);
    }
    c->plan.scale = c->local.scale = model->attn_scale;
    c->plan.softcap = c->local.softcap = model->attn_softcap;
    *out = c;
    return COPSE_OK;
}

/* Frees the sequences still open too. */
void copse_ctx_free(copse_ctx *c)
{
    if (!c)
        return;
    while (c->pool.seqs)
        copse_seq_free(c->pool.seqs);
    kv_pool_free(&c->pool);
    attn_free(&c->plan);
    attn_free(&c->local);
    fwd_free(c->fwd);
    free(c->rows);
    free(c->distinct);
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

int ctx_default_threads(uint64_t weight_bytes, int n_procs)
{
    return weight_bytes < SMALL_MODEL_BYTES || n_procs < 1 ? 1 : n_procs;
}

int copse_ctx_n_threads(const copse_ctx *c)
{
    return c ? c->n_threads : 0;
}

/* ------------------------------------------------------------------ decode */

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

static unsigned wants(const copse_batch *b, int i)
{
    return b->want ? b->want[i] & (COPSE_WANT_LOGITS | COPSE_WANT_HIDDEN)
                   : i == b->n - 1 ? COPSE_WANT_LOGITS : 0;
}

/*
** Validate the batch and lay it out: a row per entry at its position
** (sequences grow in batch order), the distinct sequences and how much
** each grows (n_new), room for the outputs. The last decode's outputs
** stay readable.
*/
static int lay_out(copse_ctx *c, const copse_batch *b, int n_ctx, int *n_distinct, copse_error *err)
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
    if (grow((void **)&c->rows, &c->cap_rows, b->n, sizeof *c->rows)
        || grow((void **)&c->distinct, &c->cap_distinct, b->n, sizeof *c->distinct)
        || grow((void **)&c->out, &c->cap_out, b->n, sizeof *c->out)
        || grow((void **)&c->hout, &c->cap_hout, b->n, sizeof *c->hout))
        return copse_fail(err, COPSE_E_NOMEM, "copse_decode: out of memory for a batch of %d", b->n);
    int n_out = 0, n_hidden = 0;
    *n_distinct = 0;
    for (int i = 0; i < b->n; i++) {
        copse_seq *s = b->seq[i];
        if (s->n_new == 0)
            c->distinct[(*n_distinct)++] = s;
        if (s->n_new >= n_ctx - s->len)
            return copse_fail(err, COPSE_E_CTX_FULL, "copse_decode: entry %d would put a sequence of %d tokens "
                              "past the context length %d", i, s->len, n_ctx);
        c->rows[i] = (fwd_row){ s, s->len + s->n_new++, b->token[i], wants(b, i) };
        n_out += (c->rows[i].want & COPSE_WANT_LOGITS) != 0;
        n_hidden += (c->rows[i].want & COPSE_WANT_HIDDEN) != 0;
    }
    if (grow((void **)&c->logits, &c->cap_logits, n_out, (size_t)n_vocab * sizeof(float))
        || grow((void **)&c->hidden, &c->cap_hidden, n_hidden, (size_t)c->model->info.n_embd * sizeof(float)))
        return copse_fail(err, COPSE_E_NOMEM, "copse_decode: out of memory for the outputs of %d entries", b->n);
    return COPSE_OK;
}

static int kv_full(copse_error *err, int need, int n_free, int n_blocks)
{
    return copse_fail(err, COPSE_E_KV_FULL, "copse_decode: the KV pool is full: the batch needs %d more "
                      "blocks of %d positions, %d of %d are free", need, KV_BLOCK, n_free, n_blocks);
}

/* Room in the tables of the batch's sequences, and blocks for every
** position it writes: under each sequence's account, and (pool) in the
** pool. */
static int reserve_blocks(copse_ctx *c, int n, int n_distinct, int pool, copse_error *err)
{
    kv_account *over;
    int need;
    if (kv_reserve(&c->pool, c->distinct, n_distinct, &need, &over))
        return copse_fail(err, COPSE_E_NOMEM, "copse_decode: out of memory for a batch of %d", n);
    if (over) {
        int rc = kv_full(err, over->need, over->limit - over->used, over->limit);
        kv_account_clear(over);
        return rc;
    }
    return pool && need > c->pool.n_free ? kv_full(err, need, c->pool.n_free, c->pool.n_blocks) : COPSE_OK;
}

int ctx_decode_check(copse_ctx *c, const copse_batch *b, int n_ctx, copse_error *err)
{
    int n_distinct = 0, rc = lay_out(c, b, n_ctx, &n_distinct, err);
    if (!rc)
        rc = reserve_blocks(c, b->n, n_distinct, 0, err);
    for (int i = 0; b && b->seq && i < b->n; i++)
        if (b->seq[i])
            b->seq[i]->n_new = 0;
    return rc;
}

/* Scratch for the forward passes the batch is split into, and KV blocks
** for every position it writes. */
static int reserve(copse_ctx *c, int n, int n_distinct, copse_error *err)
{
    int64_t items = 0;
    for (int i = 0; i < n; i += FWD_MAX_ROWS) {
        int64_t k = attn_items(c->rows + i, n - i < FWD_MAX_ROWS ? n - i : FWD_MAX_ROWS);
        items = k > items ? k : items;
    }
    int rows = n < FWD_MAX_ROWS ? n : FWD_MAX_ROWS;
    if (fwd_reserve(c->fwd, rows) || attn_reserve(&c->plan, rows, items)
        || (c->model->swa_window && attn_reserve(&c->local, rows, items)))
        return copse_fail(err, COPSE_E_NOMEM, "copse_decode: out of memory for a batch of %d", n);
    return reserve_blocks(c, n, n_distinct, 1, err);
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
    int n_distinct = 0, rc;   /* set by lay_out; gcc for aarch64 cannot see it is */
    if ((rc = lay_out(c, b, c->n_ctx, &n_distinct, err)) || (rc = reserve(c, b->n, n_distinct, err)))
        return rc;
    for (int i = 0; i < n_distinct; i++)
        kv_prepare(c->distinct[i]);
    int n_out = 0, n_hidden = 0;
    for (int i = 0; i < b->n; i++) {
        c->out[i] = c->rows[i].want & COPSE_WANT_LOGITS ? n_out++ : -1;
        c->hout[i] = c->rows[i].want & COPSE_WANT_HIDDEN ? n_hidden++ : -1;
    }
    c->n_entries = b->n;

    size_t n_vocab = (size_t)c->model->info.n_vocab, n_embd = (size_t)c->model->info.n_embd;
    for (int i = 0; i < b->n; i += FWD_MAX_ROWS) {
        int n = b->n - i < FWD_MAX_ROWS ? b->n - i : FWD_MAX_ROWS;
        attn_build(&c->plan, c->rows + i, n);
        if (c->model->swa_window)
            attn_build(&c->local, c->rows + i, n);
        fwd_run(c->fwd, c->rows + i, n, &c->plan, c->model->swa_window ? &c->local : NULL,
                first_slot(c->logits, c->out, i, n, n_vocab),
                first_slot(c->hidden, c->hout, i, n, n_embd));
    }
    for (int i = 0; i < n_distinct; i++) {
        c->distinct[i]->len += c->distinct[i]->n_new;
        c->distinct[i]->n_new = 0;
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
