/*
** The loaded model, shared by the forward pass, the tokenizer's public
** wrappers and (later) the quantized and batched paths. Internal to copse.
*/
#ifndef COPSE_MODEL_H
#define COPSE_MODEL_H

#include "copse.h"
#include "gguf.h"
#include "tokenizer.h"

/* How RoPE pairs the dimensions it rotates. llama GGUF files store Q and K
** permuted so that adjacent values form a pair; qwen2 keeps the Hugging
** Face layout, where dimension i pairs with i + n_rot/2. */
typedef enum rope_pairing {
    ROPE_ADJACENT,      /* (2i, 2i+1)       ggml "normal" mode */
    ROPE_HALVES         /* (i, i + n_rot/2) ggml "neox" mode   */
} rope_pairing;

/* A weight matrix of n_out rows of n_in values, row-major, so y = W x.
** The matmul in forward.c is the only code that reads it. */
typedef struct model_matrix {
    int          n_in, n_out;
    const float *f32;
} model_matrix;

typedef struct model_layer {
    const float *attn_norm;             /* [n_embd] */
    model_matrix wq, wk, wv, wo;
    const float *bq, *bk, *bv;          /* q/k/v biases, NULL when absent */
    const float *ffn_norm;              /* [n_embd] */
    model_matrix w_gate, w_up, w_down;  /* SwiGLU: down(silu(gate x) * up x) */
} model_layer;

struct copse_model {
    copse_model_info info;
    gguf_file       *gguf;
    copse_tokenizer *tok;

    rope_pairing     rope;
    const double    *rope_inv_freq;     /* [n_rot/2] angle per position of each pair */

    const float     *tok_embd;          /* [n_vocab][n_embd] */
    const float     *output_norm;       /* [n_embd] */
    model_matrix     output;            /* n_embd -> n_vocab (token_embd when tied) */
    model_layer     *layers;            /* [n_layer] */

    void           **owned;             /* buffers to free: dequantized tensors, ... */
    int              n_owned, cap_owned;
    char            *arch, *name;
};

/* The model's tokenizer (never NULL for a loaded model). */
const copse_tokenizer *model_tokenizer(const copse_model *m);

/* The GGUF file the model was loaded from. */
const gguf_file *model_gguf(const copse_model *m);

#endif
