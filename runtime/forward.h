/*
** The forward pass (forward.c) and what it needs from the context that
** calls it (context.c): the paged KV cache (kv.h) and attention over it
** (attention.h). Internal to copse.
*/
#ifndef COPSE_FORWARD_H
#define COPSE_FORWARD_H

#include "model.h"
#include "kv.h"

/* The most rows one fwd_run takes; copse_decode splits larger batches so
** scratch memory stays bounded whatever the prompt length. */
#define FWD_MAX_ROWS 256

/* One row of a batch: token at position pos of sequence seq. */
typedef struct fwd_row {
    copse_seq *seq;
    int        pos;
    int32_t    token;
    unsigned   want;      /* COPSE_WANT_* bits */
} fwd_row;

/*
** The KV cache as the forward pass sees it. Before fwd_run the caller has
** given every position the batch writes a block that its sequence alone
** holds, and planned the batch's attention. Per layer, the forward pass
** stores each row's key and value with kv_store_head (kv.h), and attn_run
** writes out[r] (n_head * head_dim floats) = the attention of row r's
** queries q[r] (roped, n_head * head_dim) over positions 0..pos of its
** sequence, its own and earlier rows' included.
**
** What attn_run reads and calls for layer il: query g of KV head h's
** group of row r at q + r * q_stride + h * q_head + g * head_dim, its
** output to out + r * n_head * head_dim. prepare(ctx, r, h), if set,
** readies row r for KV head h: puts its queries of that head's group in
** final form in place (bias, rope) and stores its key and value of head h
** in the cache. attn_run calls it once for each row and head before
** anything reads them: inside the part that folds them when no two rows
** of the batch share a sequence (a decode step of branches: no pass of
** its own), else in a pass before the folds. produce(ctx, h, r0, r1), if
** set, first computes what prepare readies, for KV head h of rows [r0,
** r1): once for each row and head, before prepare. Where
** attn_in_parts(plan), it runs inside the part that folds those rows, so
** no core reads what another wrote (else all of it before anything
** else, on the calling thread: set it only where attn_in_parts holds).
** done(ctx, r, d0, n), if set, is called once values [d0, d0 + n) of row
** r's output are final, on the thread that finished them: each value
** once, in runs of a KV head's group of query heads where a group is
** whole units of done_unit values (a later step that works in blocks of
** that many: 0 for no such unit), else of whole rows.
*/
typedef struct attn_plan attn_plan;
typedef struct attn_layer {
    int          il;
    const float *q;
    size_t       q_stride, q_head;
    float       *out;
    void       (*produce)(void *ctx, int h, int r0, int r1);
    void       (*prepare)(void *ctx, int r, int h);
    void       (*done)(void *ctx, int r, int d0, int n);
    int          done_unit;
    void        *ctx;
} attn_layer;
void attn_run(const attn_plan *a, const attn_layer *L);

/* Whether attn_run readies rows inside the parts, on more than one. */
int attn_in_parts(const attn_plan *a);

typedef struct fwd_state fwd_state;

/* Scratch for running m on n_threads threads in a context of n_ctx
** positions (which fixes LongRoPE's angles). NULL when out of memory. */
fwd_state *fwd_new(const copse_model *m, int n_threads, int n_ctx);
void       fwd_free(fwd_state *f);

/* Make room for batches of n rows (n <= FWD_MAX_ROWS); COPSE_E_NOMEM if
** that fails, and the state stays usable for what it held before. */
int fwd_reserve(fwd_state *f, int n);

/*
** Run n reserved rows, planned in plan (local: in a plan with the model's
** sliding window, for its local layers; NULL if it has none), through
** the model: store each
** row's keys and values at its position, then write the logits (n_vocab
** floats each) of the rows that want them, in row order, to logits, and
** the final normed hidden states (n_embd floats each) of the rows that
** want those to hidden. Rows of one sequence come in position order and
** may attend to each other. Cannot fail.
*/
void fwd_run(fwd_state *f, const fwd_row *rows, int n, const attn_plan *plan, const attn_plan *local,
             float *logits, float *hidden);

/* On the int8 path the row passes quantize the products' inputs as they
** write them, and the gate and up product computes SwiGLU and quantizes
** it (1, the default); 0 leaves SwiGLU to a row pass and quantizing to the
** products, the plain order the fused one is tested against: the same
** values, bit for bit. */
extern int fwd_quantize_in_rows;

#endif
