/*
** Tokenizers built from GGUF metadata (tokenizer.ggml.*): SentencePiece
** ("llama") and byte-level BPE ("gpt2") with the pre-tokenizer named by
** tokenizer.ggml.pre. Internal to copse; the public copse_tokenize and
** friends in copse.h call these through the model.
*/
#ifndef COPSE_TOKENIZER_H
#define COPSE_TOKENIZER_H

#include <stdint.h>
#include <stddef.h>
#include "gguf.h"

typedef struct copse_tokenizer copse_tokenizer;

/* Build a tokenizer from g's metadata. The tokenizer may point into g's
** mapping, so g must outlive it. */
int  tokenizer_load(const gguf_file *g, copse_tokenizer **out, copse_error *err);
void tokenizer_free(copse_tokenizer *t);

/* Same contracts as copse_tokenize / copse_detokenize / copse_token_piece. */
int tokenizer_encode(const copse_tokenizer *t, const char *text, size_t len,
                     unsigned flags, int32_t *out, int cap);
int tokenizer_decode(const copse_tokenizer *t, const int32_t *tokens, int n,
                     unsigned flags, char *buf, int cap);
int tokenizer_piece(const copse_tokenizer *t, int32_t token, char *buf, int cap);

int     tokenizer_n_vocab(const copse_tokenizer *t);
int32_t tokenizer_bos(const copse_tokenizer *t);
int32_t tokenizer_eos(const copse_tokenizer *t);
int     tokenizer_is_eog(const copse_tokenizer *t, int32_t token);
/* The id of a token's exact text, or -1 (for chat templates, verifiers). */
int32_t tokenizer_find(const copse_tokenizer *t, const char *text, size_t len);

#endif
