/*
** copse — a CPU inference runtime for test-time compute.
**
** This is the whole public interface. Every function that can fail returns
** a copse_status (COPSE_OK is zero) and, where it takes a copse_error, fills
** it with a one-line message saying what went wrong and where. The library
** never exits or aborts the process.
**
** Objects:
**   copse_model    weights, hyper-parameters and tokenizer of one GGUF file
**   copse_ctx      what running a model needs: KV memory, scratch, threads
**   copse_seq      one sequence (branch) of tokens decoded in a context
**   copse_sampler  turns logits into a token
*/
#ifndef COPSE_H
#define COPSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COPSE_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors */

typedef enum copse_status {
    COPSE_OK = 0,
    COPSE_E_ARG,         /* an argument is out of range or inconsistent      */
    COPSE_E_IO,          /* a file cannot be opened, read, mapped or written */
    COPSE_E_FORMAT,      /* a file is malformed (bad magic, truncated, ...)  */
    COPSE_E_UNSUPPORTED, /* well-formed but not supported (arch, type, ...)  */
    COPSE_E_NOMEM,       /* an allocation failed                             */
    COPSE_E_CTX_FULL,    /* a sequence would grow past the context length    */
    COPSE_E_KV_FULL      /* the KV pool has no free block left               */
} copse_status;

/* Filled by functions that can fail; msg is empty on success. */
typedef struct copse_error {
    int  code;           /* a copse_status */
    char msg[512];
} copse_error;

/* A short constant name for a status code, e.g. "format error". */
const char *copse_status_str(int code);

/* ------------------------------------------------------------------ models */

typedef struct copse_model copse_model;

typedef struct copse_model_params {
    int vocab_only;      /* load metadata and tokenizer only, no tensors */
} copse_model_params;

/* Defaults: everything loaded. */
copse_model_params copse_model_default_params(void);

/*
** Open a GGUF model file. Tensor data is memory-mapped, not copied. On
** failure *out is NULL and err says why (missing file, not GGUF, unknown
** architecture, unsupported tensor type naming the tensor, ...).
*/
int copse_model_load(const char *path, const copse_model_params *params,
                     copse_model **out, copse_error *err);

/* Release a model. Contexts made from it must be freed first. NULL is fine. */
void copse_model_free(copse_model *model);

/* Hyper-parameters and facts about a loaded model; strings live as long as
** the model. */
typedef struct copse_model_info {
    const char *arch;        /* "llama", "qwen2" */
    const char *name;        /* general.name, or "" */
    int   n_vocab;
    int   n_embd;
    int   n_layer;           /* 0 for a vocab-only model */
    int   n_head;
    int   n_head_kv;
    int   n_ff;
    int   n_ctx_train;       /* context length from metadata */
    int   head_dim;
    int   n_rot;             /* rope dimension count */
    float rope_base;
    float rms_eps;
    int   tied_output;       /* output projection shares token_embd */
    int64_t n_params;
    uint64_t file_bytes;
} copse_model_info;

void copse_model_get_info(const copse_model *model, copse_model_info *info);

/* --------------------------------------------------------------- tokenizer */

#define COPSE_TOK_ADD_SPECIAL   1u  /* add BOS/EOS as the model's metadata says */
#define COPSE_TOK_PARSE_SPECIAL 2u  /* text like "<|im_start|>" becomes its token */

/*
** Tokenize text (len bytes, any bytes: malformed UTF-8 is kept byte by
** byte). Writes at most cap ids to tokens and returns how many the text
** needs: a return value greater than cap means the output was cut short
** and should be retried with a larger buffer. Control tokens' text is
** plain text unless flags has COPSE_TOK_PARSE_SPECIAL; the vocabulary's
** user-defined tokens (such as Qwen3's <think>) are always matched, the
** longest first. Returns a negative copse_status on bad arguments (or a
** text over 256 MiB), -COPSE_E_UNSUPPORTED if the vocabulary cannot spell
** some byte of the text.
*/
int copse_tokenize(const copse_model *model, const char *text, size_t len,
                   unsigned flags, int32_t *tokens, int cap);

/*
** Detokenize: write the bytes n tokens stand for to buf (at most cap bytes,
** NUL-terminated when it fits) and return their length, which may exceed
** cap as with copse_tokenize; a negative copse_status for bad arguments or
** a token outside the vocabulary. Control tokens are dropped, or rendered
** as their text with COPSE_TOK_PARSE_SPECIAL. COPSE_TOK_ADD_SPECIAL undoes
** what copse_tokenize adds with that flag: a leading BOS and a trailing EOS
** the model adds, and the space a SentencePiece vocabulary puts in front of
** the text and of text following a special token. So detokenizing
** copse_tokenize(x, flags) with the same flags gives x back exactly when
** the vocabulary can spell every byte of x (byte-level BPE, or
** SentencePiece with byte tokens), except that without
** COPSE_TOK_ADD_SPECIAL SentencePiece's spaces stay (" " + x when x has no
** special tokens), and SentencePiece reads U+2581 in x as a space.
*/
int copse_detokenize(const copse_model *model, const int32_t *tokens, int n,
                     unsigned flags, char *buf, int cap);

/* The piece one token decodes to on its own (bytes, not necessarily valid
** UTF-8 alone; special tokens give their text); same return convention as
** copse_detokenize. */
int copse_token_piece(const copse_model *model, int32_t token, char *buf, int cap);

int     copse_n_vocab(const copse_model *model);
int32_t copse_token_bos(const copse_model *model);   /* -1 if none */
int32_t copse_token_eos(const copse_model *model);   /* -1 if none */
/* Nonzero when a token ends generation (EOS, EOT, <|im_end|>, ...). */
int     copse_token_is_eog(const copse_model *model, int32_t token);

/* ----------------------------------------------------- contexts, sequences */

typedef struct copse_ctx copse_ctx;
typedef struct copse_seq copse_seq;

typedef struct copse_ctx_params {
    int n_ctx;           /* positions one sequence may hold; 0 = the model's
                         ** trained length (a larger value is allowed) */
    int n_threads;       /* 0 = all cores */
    /* KV memory, one pool of blocks of 16 positions shared by every
    ** sequence of the context: kv_bytes if nonzero, else room for
    ** kv_tokens positions, else for n_ctx positions (at least 4096).
    ** Blocks never used cost address space only. A sequence of n tokens
    ** holds ceil(n / 16) blocks, shared with its forks. */
    uint64_t kv_bytes;
    int      kv_tokens;
    int      kv_f32;     /* store K and V as f32 (default f16) */
} copse_ctx_params;

copse_ctx_params copse_ctx_default_params(void);

int  copse_ctx_new(copse_model *model, const copse_ctx_params *params,
                   copse_ctx **out, copse_error *err);
/* Free a context and every sequence still open in it. NULL is fine. */
void copse_ctx_free(copse_ctx *ctx);

/* The context length actually in force. */
int  copse_ctx_n_ctx(const copse_ctx *ctx);

/* A new empty sequence, or NULL when out of memory. */
copse_seq *copse_seq_new(copse_ctx *ctx);
/* Free a sequence and the KV memory only it holds. NULL is fine. */
void copse_seq_free(copse_seq *seq);
/* Tokens decoded into the sequence so far (its next position). */
int  copse_seq_len(const copse_seq *seq);

/*
** A new sequence that shares everything seq holds: its KV blocks are
** reference-counted, not copied, so forking takes no KV memory. Either
** may then grow on its own; a block both hold is copied only when one of
** them writes into it (the partly filled last block, at most once per
** branch). NULL when seq is NULL or out of memory.
*/
copse_seq *copse_seq_fork(copse_seq *seq);

/* Roll a sequence back to its first n tokens (0 <= n <= length), releasing
** the blocks it no longer needs; COPSE_E_ARG for n out of range. */
int copse_seq_truncate(copse_seq *seq, int n);

/* Memory of the KV pool. Tokens are positions of one sequence in one layer
** stack; "logical" counts them as if no block were shared, "stored" counts
** each used block once, with as many positions as its fullest holder has
** in it. */
typedef struct copse_kv_stats {
    int      block_tokens;      /* positions per block */
    int      blocks_total;
    int      blocks_used;
    uint64_t bytes_total;
    uint64_t bytes_used;
    int64_t  tokens_stored;     /* positions held in used blocks */
    int64_t  tokens_logical;    /* sum of every live sequence's length */
    int64_t  peak_blocks_used;
} copse_kv_stats;

void copse_kv_stats_get(const copse_ctx *ctx, copse_kv_stats *stats);

/* What a batch entry asks to get back (bits of copse_batch.want). */
#define COPSE_WANT_LOGITS 1u   /* copse_get_logits */
#define COPSE_WANT_HIDDEN 2u   /* copse_get_hidden: the final normed hidden state */

/*
** A batch: n entries, each appending one token to one sequence at that
** sequence's next position. Entries of one sequence must appear in order;
** several sequences may be mixed. want may be NULL, meaning logits for the
** last entry only; otherwise want[i] is a set of COPSE_WANT_* bits.
*/
typedef struct copse_batch {
    int              n;
    copse_seq *const *seq;
    const int32_t    *token;
    const uint8_t    *want;
} copse_batch;

/*
** Run the model over a batch. On success every sequence has grown by its
** entries and copse_get_logits returns the logits of the entries that asked
** for them. On failure no sequence changes: COPSE_E_CTX_FULL when a
** sequence would pass n_ctx, COPSE_E_KV_FULL when the pool lacks the blocks
** the batch needs (free some sequences and retry), COPSE_E_ARG for a token
** outside the vocabulary.
*/
int copse_decode(copse_ctx *ctx, const copse_batch *batch, copse_error *err);

/* Convenience: decode n tokens into one sequence; logits of all of them
** (all_logits) or of the last one only. */
int copse_decode_tokens(copse_ctx *ctx, copse_seq *seq, const int32_t *tokens,
                        int n, int all_logits, copse_error *err);

/* Logits (n_vocab floats) of batch entry i from the last decode, or NULL if
** that entry did not ask for them. Valid until the next decode. */
const float *copse_get_logits(const copse_ctx *ctx, int i);

/* The final hidden state (n_embd floats, after the output norm) of batch
** entry i, or NULL if it did not ask for it (verifier heads read it). */
const float *copse_get_hidden(const copse_ctx *ctx, int i);

/* ----------------------------------------------------------------- sampler */

typedef struct copse_sampler copse_sampler;

typedef struct copse_sampler_params {
    float    temp;       /* 0 = greedy */
    int      top_k;      /* 0 = off */
    float    top_p;      /* 1 = off */
    float    min_p;      /* 0 = off */
    uint64_t seed;
} copse_sampler_params;

copse_sampler_params copse_sampler_default_params(void);

/* NULL when out of memory. */
copse_sampler *copse_sampler_new(const copse_sampler_params *params);
void           copse_sampler_free(copse_sampler *s);

/* Choose a token from n logits. The same seed and logits give the same
** sequence of choices. */
int32_t copse_sample(copse_sampler *s, const float *logits, int n);

#ifdef __cplusplus
}
#endif
#endif /* COPSE_H */
