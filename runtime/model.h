/*
** The loaded model, shared by the forward pass, the tokenizer's public
** wrappers and (later) the quantized and batched paths. Internal to copse.
*/
#ifndef COPSE_MODEL_H
#define COPSE_MODEL_H

#include "copse.h"
#include "gguf.h"
#include "tokenizer.h"
#include "q8.h"

/* How RoPE pairs the dimensions it rotates. llama GGUF files store Q and K
** permuted so that adjacent values form a pair; qwen2 keeps the Hugging
** Face layout, where dimension i pairs with i + n_rot/2. */
typedef enum rope_pairing {
    ROPE_ADJACENT,      /* (2i, 2i+1)       ggml "normal" mode */
    ROPE_HALVES         /* (i, i + n_rot/2) ggml "neox" mode   */
} rope_pairing;

/* A weight matrix of n_out rows of n_in values, so y = W x: f32 row-major
** on the reference path, packed int8 (q8.h) otherwise. The matmul in
** forward.c is the only code that reads it. */
typedef struct model_matrix {
    int          n_in, n_out;
    const float *f32;       /* the reference path, else NULL */
    q8_weights  *q8;        /* the int8 path, else NULL */
} model_matrix;

/* On the int8 path Q, K and V are stacked into wqkv, gate and up into
** w_gate_up (their rows in that order), and the separate ones are empty
** (n_out 0): one product per input instead of three or two. wqkv's rows
** go KV head by KV head: the query rows of head h's group, then its key
** rows, then its value rows, so that the thread which attends with a
** head can compute just that head's part of the product. w_gate_up's rows
** alternate in runs of gate_up_run: gate's first run, up's first run,
** gate's second, ... With runs of Q8_BLOCK (when n_ff allows), a run of
** the product's output holds the gate and up of one block of the down
** product's input: the product computes SwiGLU and quantizes it as it
** goes (forward.c). */
typedef struct model_layer {
    const float *attn_norm;             /* [n_embd]; NULL where the sublayers read x itself
                                           (olmo2), and ffn_norm likewise */
    model_matrix wq, wk, wv, wo;
    model_matrix wqkv;
    const float *bq, *bk, *bv;          /* q/k/v biases, NULL when absent */
    const float *q_norm, *k_norm;       /* [head_dim] RMS norm weights of each query and key
                                           head before rope (qwen3), NULL when absent; */
    int          qk_norm_wide;          /* or of all of a row's Q, all of its K, at once (olmo2:
                                           [n_head * head_dim], [n_head_kv * head_dim]) */
    const float *post_attn_norm;        /* [n_embd] RMS norm of attention's output before the
                                           residual add (Gemma 2 and 3), else NULL */
    const float *ffn_norm;              /* [n_embd] */
    const float *post_ffn_norm;         /* [n_embd] the same for the FFN's output */
    model_matrix w_gate, w_up, w_down;  /* SwiGLU: down(silu(gate x) * up x); GELU for Gemma */
    model_matrix w_gate_up;
    int          gate_up_run;           /* rows; n_ff when gate and up are side by side */
    int          no_rope;               /* queries and keys unrotated (smollm3's NoPE layers) */
    int          local;                 /* attends to the last swa_window positions only, with
                                           the rope_inv_freq_swa angles (Gemma 2 and 3's local
                                           layers) */
} model_layer;

struct copse_model {
    copse_model_info info;
    gguf_file       *gguf;
    copse_tokenizer *tok;

    rope_pairing     rope;
    const double    *rope_inv_freq;     /* [n_rot/2] angle per position of each pair */
    const double    *rope_inv_freq_long; /* LongRoPE's for contexts longer than rope_ctx_orig,
                                           else NULL (model_rope_freqs chooses) */
    int              rope_ctx_orig;
    float            rope_mscale;       /* cos and sin are scaled by it (LongRoPE), else 1 */
    const double    *rope_inv_freq_swa; /* the local layers' angles (their own base, no
                                           scaling), NULL when no layer is local */
    int              swa_window;        /* positions a local layer attends to (0: none is) */
    float            attn_scale;        /* of the scores: 1/sqrt(head_dim) but for Gemma 2 and 3 27B */
    float            attn_softcap;      /* > 0: scores s become cap tanh(s / cap) (Gemma 2) */
    float            final_softcap;     /* > 0: the same for the logits (Gemma 2, some Gemma 3) */
    float            embd_scale;        /* the token embedding's: sqrt(n_embd) for Gemma, else 1 */
    float            residual_scale;    /* of each sublayer's output before it is added back (Granite) */
    float            logit_scale;       /* of the logits (Granite's 1 / logit_scale), else 1 */
    int              gelu;              /* the FFN gates with GELU (tanh form), not SiLU */

    const q8_kernels *tier;             /* int8 kernels; NULL on the reference path */
    const gguf_tensor *embd_tensor;     /* token_embd, [n_vocab][n_embd], read a row at a time */
    const float     *tok_embd;          /* the same in f32 on the reference path, else NULL */
    const float     *output_norm;       /* [n_embd] */
    model_matrix     output;            /* n_embd -> n_vocab (token_embd when tied) */
    model_layer     *layers;            /* [n_layer] */

    void           **owned;             /* buffers to free: dequantized tensors, ... */
    int              n_owned, cap_owned;
    char            *arch, *name;
};

/* The angles per position of the rotated pairs for a context of n_ctx
** positions. */
const double *model_rope_freqs(const copse_model *m, int n_ctx);

/* The model's tokenizer (never NULL for a loaded model). */
const copse_tokenizer *model_tokenizer(const copse_model *m);

/* The GGUF file the model was loaded from. */
const gguf_file *model_gguf(const copse_model *m);

/* The f32 embedding of a token (0 <= token < n_vocab) into out[n_embd]. */
void model_embed(const copse_model *m, int32_t token, float *out);

/* Bytes of the matrices as the kernels read them: what one decode step
** streams. */
uint64_t model_matrix_bytes(const copse_model *m);

#endif
