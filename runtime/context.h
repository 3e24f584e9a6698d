/*
** What the search's crowds (search/crowd.c) need of a context beyond the
** public API: several searches decoding through one shared context, each
** under a KV account of its own (kv.h). Internal to copse.
*/
#ifndef COPSE_CONTEXT_H
#define COPSE_CONTEXT_H

#include "kv.h"

/* The blocks of the pool copse_ctx_new would make for model and params
** (an account's limit). COPSE_E_ARG as copse_ctx_new fails. */
/* The threads a context of a model with weight_bytes runs on by default,
** on a machine of n_procs cores. */
int ctx_default_threads(uint64_t weight_bytes, int n_procs);

int ctx_pool_blocks(const copse_model *model, const copse_ctx_params *params, int *n_blocks, copse_error *err);

/* copse_seq_new, with the sequence (and its forks) under account a. */
copse_seq *ctx_seq_new(copse_ctx *ctx, kv_account *a);

/* Free every sequence of ctx under account a. */
void ctx_free_account(copse_ctx *ctx, const kv_account *a);

/*
** Whether copse_decode would take the batch, as far as its own sequences
** decide, had the context n_ctx positions: the same errors for the
** entries (COPSE_E_ARG), the context length (COPSE_E_CTX_FULL) and the
** sequences' accounts (COPSE_E_KV_FULL, the message a pool of the
** account's limit gives). The free blocks of the pool are not checked.
** Changes no sequence; the last decode's outputs stay readable.
*/
int ctx_decode_check(copse_ctx *ctx, const copse_batch *batch, int n_ctx, copse_error *err);

#endif
