/*
** The forward pass (forward.c) and what it needs from the context that
** calls it (context.c): where each sequence keeps its keys and values.
** Internal to copse.
*/
#ifndef COPSE_FORWARD_H
#define COPSE_FORWARD_H

#include "model.h"

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
** The KV cache as the forward pass sees it: the key or value vector
** (n_head_kv * head_dim floats) of layer il at position pos of a sequence.
** The caller has made room for every position a batch writes, and a row
** reads only positions up to its own.
*/
float *kv_key(copse_seq *s, int il, int pos);
float *kv_value(copse_seq *s, int il, int pos);

typedef struct fwd_state fwd_state;

/* Scratch for running m with attention spans up to n_ctx positions on
** n_threads threads. NULL when out of memory. */
fwd_state *fwd_new(const copse_model *m, int n_ctx, int n_threads);
void       fwd_free(fwd_state *f);

/* Make room for batches of n rows (n <= FWD_MAX_ROWS); COPSE_E_NOMEM if
** that fails, and the state stays usable for what it held before. */
int fwd_reserve(fwd_state *f, int n);

/*
** Run n reserved rows through the model: store each row's keys and values
** at its position, then write the logits (n_vocab floats each) of the rows
** that want them, in row order, to logits, and the final normed hidden
** states (n_embd floats each) of the rows that want those to hidden. Rows
** of one sequence come in position order and may attend to each other.
** Cannot fail.
*/
void fwd_run(fwd_state *f, const fwd_row *rows, int n, float *logits, float *hidden);

#endif
