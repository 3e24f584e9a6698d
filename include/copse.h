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
    /*
    ** Run the f32 reference path: every matrix expanded to f32 and
    ** multiplied with BLAS (4x the memory of Q8_0, several times slower).
    ** By default (0) matrices are packed as int8 in blocks of 32 with one
    ** scale each: Q8_0 tensors with their own scales and values (each
    ** weight the file's exactly), every other type decoded and quantized at
    ** load (F32, F16 and BF16; other types fail with COPSE_E_UNSUPPORTED
    ** naming the tensor), except
    ** Q4_0, IQ4_NL, IQ4_XS and Q5_0 tensors, which keep their 4- or 5-bit
    ** codes for int8 levels under their fp16 scales (0.56 or 0.69 bytes a
    ** weight; IQ4_XS's scales, a 6-bit integer times an fp16 factor in the
    ** file, rounded to fp16: within 2^-11 of its values), and Q4_1, Q4_K,
    ** Q5_1 and Q5_K ones, which keep their 4- or 5-bit quants with a scale
    ** and a minimum per 32 (0.66 or 0.78), and Q6_K and Q3_K ones, which
    ** keep their 6- or 3-bit quants with a scale per 16 (0.91 or 0.66), and
    ** Q2_K ones, which keep their 2-bit quants with a scale and a minimum
    ** per 16 (0.33), each weight the file's value exactly; activations are
    ** quantized to int8
    ** blocks before each product.
    ** The int8 kernels are the fastest this CPU supports, or the tier the
    ** COPSE_ISA environment variable names (scalar, avx2, avxvnni,
    ** avx512vnni, neon, neon-dotprod): loading fails with COPSE_E_ARG for an
    ** unknown name and COPSE_E_UNSUPPORTED for one this CPU lacks.
    */
    int weights_f32;
    /* Pack the 2- to 6-bit tensors as int8 too (1.2 to 3.2 times their
    ** memory; Q4_0, IQ4_NL, IQ4_XS and Q5_0 with the values of their
    ** codes, the others rounded to int8 blocks): to compare. */
    int weights_8bit;
} copse_model_params;

/* Defaults: everything loaded, int8 matrices. */
copse_model_params copse_model_default_params(void);

/*
** Open a GGUF model file. The file is memory-mapped: F32 tensors are used
** in place, matrices are packed once into int8 memory of the model's own
** (or, with weights_f32, expanded to f32 unless they are F32 already). On
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
    const char *arch;        /* "llama", "qwen2", "qwen3", "phi3", "smollm3", "gemma", "gemma2",
                                "gemma3", "granite", "olmo2" */
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
    int   n_local_layers;    /* layers that attend to the last sliding_window positions
                                only (Gemma 2 and 3's local layers), else 0 */
    int   sliding_window;
    float attn_scale;        /* of the scores: 1/sqrt(head_dim) unless the model sets another */
    float attn_softcap;      /* > 0: scores s become cap tanh(s / cap) (Gemma 2), else 0 */
    float final_softcap;     /* the same for the logits */
    float embd_scale;        /* multipliers of the token embedding (Gemma, Granite), */
    float residual_scale;    /* of each sublayer's output before it is added back (Granite) */
    float logit_scale;       /* and of the logits (Granite's 1 / logit_scale); else 1 */
    const char *isa;         /* int8 kernel tier in use, as COPSE_ISA spells it;
                                NULL on the f32 path and for a vocab-only model */
    int64_t n_params;
    uint64_t file_bytes;
    uint64_t weight_bytes;   /* the matrices in memory as loaded: int8, or f32 on the
                                reference path (0 for a vocab-only model) */
    uint64_t kv_bytes_per_token; /* keys and values of one position, every layer, in f16
                                (twice that in f32): what each token of a branch holds in
                                the KV cache, unless another branch shares it */
    int n_matrices;          /* the products a token goes through (stacked ones count once) */
    int n_matrices_4bit;     /* of which keep the file's 4-bit quants or codes (int8 path) */
    int n_matrices_5bit;     /* and the file's 5-bit ones */
    int n_matrices_6bit;     /* and the file's 6-bit ones (Q6_K) */
    int n_matrices_3bit;     /* and the file's 3-bit ones (Q3_K) */
    int n_matrices_2bit;     /* and the file's 2-bit ones (Q2_K) */
    const char *tensor_types; /* the file's tensors counted by type, most first:
                                 "Q5_0 132, F32 121, Q8_0 13" */
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

/*
** A message put to the model as its chat format asks: the system message
** (NULL or "" for none), the user's, then the opening of the assistant's
** turn, where generation goes on. The format is the one template_name
** names (copse-math, chatml, llama3, llama2, phi3, gemma, granite,
** mistral, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7,
** mistral-v7-tekken, or an alias: plain, qwen, llama-3, llama-2, phi-3,
** gemma3, granite3, mistral-v0) or, when
** it is NULL, the one the file's tokenizer.chat_template is written for;
** copse's own models and files with neither key take copse-math's
** "Question: ... Answer:" (copse solve chooses the same way). Writes at
** most cap bytes to buf, NUL-terminated when it fits, and returns the
** length, which may exceed cap, as copse_detokenize does; or a negative
** copse_status with err filled: -COPSE_E_ARG for an unknown name or a
** NULL argument, -COPSE_E_UNSUPPORTED for a chat_template of no family
** copse knows (name one), -COPSE_E_FORMAT for a key that is not a
** string. Tokenize the text with COPSE_TOK_PARSE_SPECIAL (and
** COPSE_TOK_ADD_SPECIAL: it holds no BOS), so that its markers become
** their control tokens; marker text inside a message becomes one too.
*/
int copse_chat_prompt(const copse_model *model, const char *template_name, const char *system,
                      const char *user, char *buf, int cap, copse_error *err);

/*
** The same for a conversation (copse run --interactive): turns[0..n_turns)
** are the user's messages and the assistant's replies in turn, the first
** and the last the user's (n_turns odd), each reply closed as the format
** closes the assistant's turn (ChatML's <|im_end|>, Mistral's EOS, ...)
** before the next message. copse_chat_prompt is this with one turn.
** -COPSE_E_ARG also for an even or nonpositive count or a NULL message.
*/
int copse_chat_conversation(const copse_model *model, const char *template_name, const char *system,
                            const char *const *turns, int n_turns, char *buf, int cap,
                            copse_error *err);

/*
** The name of the format copse_chat_prompt puts model's messages in when
** no template is named, as template_name spells it ("chatml",
** "mistral-v3", ...; "copse-math" for copse's own models and files with
** no chat template). NULL, with err filled as copse_chat_prompt fills it,
** when the file's tokenizer.chat_template is of no family copse knows or
** its keys are not strings.
*/
const char *copse_chat_format(const copse_model *model, copse_error *err);

/* ----------------------------------------------------- contexts, sequences */

typedef struct copse_ctx copse_ctx;
typedef struct copse_seq copse_seq;

typedef struct copse_ctx_params {
    int n_ctx;           /* positions one sequence may hold; 0 = the model's
                         ** trained length (a larger value is allowed) */
    int n_threads;       /* 0 = all cores, or one for a model whose weights take
                         ** under 16 MiB (see copse_ctx_n_threads) */
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

/* The threads its forward passes run on: n_threads, or by default every
** core, but one for a model whose weights take under 16 MiB in memory.
** Such a model's passes are tens of microseconds, which handing work
** between threads costs more than it saves: the bundled 2.6M-parameter
** policy generates about twice as fast on one thread as on two. */
int  copse_ctx_n_threads(const copse_ctx *ctx);

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
    float    temp;       /* 0 = greedy (so is any too small to divide 1 by, or NaN) */
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
** sequence of choices, on the same kernels (without top-k the softmax
** takes e^x from the SIMD tier in force, as the forward pass does). A NaN
** logit counts as -infinity (chosen only when every logit is NaN or
** -infinity); a +infinity one is chosen, the first of them. */
int32_t copse_sample(copse_sampler *s, const float *logits, int n);

/*
** The distribution copse_sample draws from for these logits, after its
** truncations and temperature: probs[i] (n floats) is token i's
** probability, zero for a token it never returns, the rest summing to 1
** (within rounding). Greedy settings (and a logit of +-infinity, as
** copse_sample treats them) give probability 1 to the token copse_sample
** returns. Draws nothing: the random state does not move. What
** speculative sampling compares (copse run --draft). COPSE_E_ARG for a
** NULL argument or n <= 0.
*/
int copse_sample_probs(copse_sampler *s, const float *logits, int n, float *probs);

/* Draw a token from n weights, token i with probability weights[i] over
** their sum (a negative or NaN weight counts as zero), with the sampler's
** random state (one number drawn). -1 when no weight is positive, the sum
** is infinite or n <= 0. */
int32_t copse_sample_from(copse_sampler *s, const float *weights, int n);

/* ------------------------------------------------------------------ search */
/*
** Test-time compute: answer a question by sampling many solutions and
** searching among them, with a process reward model (PRM, "verifier")
** scoring every reasoning step. A solution is a list of steps, each ending
** with the step separator (the policy's copse.step_separator, else "\n\n").
** All branches of one question grow as one tree: they share their past in
** the KV cache (copse_seq_fork), and every decoding step is one batch over
** all live branches. The verifier keeps a tree of its own, forked in step
** with the policy's, so it encodes each step once, never a prefix again.
**
** Strategies (after Snell et al. 2024 and huggingface/search-and-learn):
**   best-of-n   n full solutions; the one the verifier scores highest
**   majority    n full solutions; the most frequent final answer (no
**               verifier needed)
**   weighted    n full solutions; the answer whose solutions' scores sum
**               highest
**   beam        n beams of width m: sample n first steps, keep the n/m best,
**               give each m continuations of one step, repeat until the
**               solutions end or max_steps; pick among them as pick says
**   lookahead   beam search whose candidates are scored after a greedy
**               rollout of k more steps (then rolled back)
**   dvts        n/m independent subtrees; each samples m next steps and goes
**               on with its best one; one solution per subtree
**   revise      n/m chains of m attempts, each attempt written after the
**               previous ones in its context; pick over all attempts
**   auto        estimate the question's difficulty from a few samples, then
**               run what the tuning table says is best for that difficulty
**               and budget (copse_tune writes tables)
*/

typedef struct copse_verifier copse_verifier;

/* How a verifier reads a step's score, in [0, 1]. */
typedef enum copse_prm_kind {
    COPSE_PRM_AUTO = 0,   /* two-class when cls.output.weight exists, else
                             value when cls.weight does, else an error */
    COPSE_PRM_VALUE,      /* value head: sigmoid(cls.weight . h + cls.bias) of
                             the final hidden state h at the step's last token
                             (or at the tag's last token when a tag is set) */
    COPSE_PRM_TWO_CLASS,  /* softmax(cls.output.weight relu(cls.weight h +
                             cls.bias) + cls.output.bias)[1] at the step tag */
    COPSE_PRM_LABELS      /* a causal LM's p(good) / (p(good) + p(bad)) as the
                             next token after the step tag */
} copse_prm_kind;

/*
** What the verifier is shown: the question in its chat format, then for
** each step either (no tag) the policy's text exactly, separator included,
** or (a tag) the step's text without its separator followed by the tag,
** with join in front of every step but the first. Strings are copied.
*/
typedef struct copse_verifier_params {
    int         kind;          /* a copse_prm_kind */
    const char *step_tag;      /* NULL: "" (value), "<extra_0>" (two-class), " ки" (labels) */
    const char *step_join;     /* NULL: "" (two-class), "\n" (labels), the separator (value) */
    const char *good, *bad;    /* label tokens, one token each; NULL: "+" and "-" */
    const char *template_name; /* chat format, as copse_chat_prompt names them;
                                  NULL: recognized from the file */
} copse_verifier_params;

copse_verifier_params copse_verifier_default_params(void);

/*
** A verifier over a loaded model, which it borrows (the model must outlive
** it; it may be the policy itself). Fails with COPSE_E_FORMAT naming the
** file and tensor when the head the kind needs is missing or misshapen,
** COPSE_E_UNSUPPORTED for a head tensor of a type the model loader cannot
** decode (copse_model_params), COPSE_E_ARG for a label that is not exactly one token.
*/
int copse_verifier_new(copse_model *model, const copse_verifier_params *params,
                       copse_verifier **out, copse_error *err);

/* Load a PRM file and make a verifier that owns the model. */
int copse_verifier_load(const char *path, const copse_verifier_params *params,
                        copse_verifier **out, copse_error *err);

/* The kind in force (never COPSE_PRM_AUTO). */
int  copse_verifier_kind(const copse_verifier *v);
void copse_verifier_free(copse_verifier *v);

typedef enum copse_strategy {
    COPSE_BEST_OF_N = 0, COPSE_MAJORITY, COPSE_WEIGHTED, COPSE_BEAM,
    COPSE_LOOKAHEAD, COPSE_DVTS, COPSE_REVISE, COPSE_AUTO, COPSE_ADAPTIVE,
    COPSE_N_STRATEGIES
} copse_strategy;

/* How a path's step scores become its score. */
typedef enum copse_agg { COPSE_AGG_LAST = 0, COPSE_AGG_MIN, COPSE_AGG_PROD, COPSE_AGG_MEAN } copse_agg;

/* How the final answer is picked among candidate solutions: the best
** scored, the most frequent answer, or the answer with the highest sum of
** scores. Solutions without an answer never win a vote. */
typedef enum copse_pick { COPSE_PICK_BEST = 0, COPSE_PICK_MAJORITY, COPSE_PICK_WEIGHTED } copse_pick;

/* Names as the command line spells them ("best-of-n", "majority",
** "weighted", "beam", "lookahead", "dvts", "revise", "auto", "adaptive";
** "last", "min",
** "prod", "mean"; "best", "majority", "weighted"), and back (-1 if
** unknown). */
const char *copse_strategy_name(int strategy);
int         copse_strategy_by_name(const char *name);
const char *copse_agg_name(int agg);
int         copse_agg_by_name(const char *name);
const char *copse_pick_name(int pick);
int         copse_pick_by_name(const char *name);

typedef struct copse_solve_params {
    int   strategy;        /* a copse_strategy */
    int   n;               /* solutions, beams or attempts in all (budget in generations;
                              auto: its probes come out of it) */
    int   m;               /* beam width, DVTS candidates per step, revisions per chain */
    int   k;               /* lookahead: greedy steps rolled out */
    int   agg;             /* a copse_agg: path score from step scores */
    int   pick;            /* a copse_pick: final choice of beam, lookahead, dvts, revise */
    int   max_steps;       /* steps per solution (and rounds of beam search) */
    int   max_step_tokens; /* tokens per step */
    int   max_tokens;      /* tokens per solution */
    copse_sampler_params sampler;
    const char *step_sep;  /* NULL: the policy's copse.step_separator, else "\n\n" */
    const char *template_name; /* policy's chat format; NULL: from the file */
    const char *system;    /* system message, NULL for none */
    const char *prefix;    /* text every solution starts with, NULL for none */
    const char *revise_prompt; /* written between attempts; NULL: "\n\n" and the prompt again */
    int64_t budget_tokens; /* stop growing once the policy sampled this many; 0 = no limit */
    double  deadline;      /* seconds of wall time; 0 = none */
    const char *table;     /* auto: tuning table file; NULL: the built-in one */
    int   n_threads;       /* 0 = all cores */
    int   n_ctx;           /* positions per sequence; 0 = the policy's context length */
    uint64_t kv_bytes;     /* KV pool of each context; 0 = room for n full-length solutions */
    int   kv_f32;          /* keys and values in f32 (default f16) */
    double confidence;     /* adaptive: stop sampling once the leading answer is the more
                              likely of the two leading ones with this posterior probability
                              (from 0.5 to 1; 1: only once no solution left could overtake it) */
} copse_solve_params;

/* Defaults: majority, n = 4, m = 4, k = 1, agg last, pick weighted,
** max_steps 32, max_step_tokens 256, max_tokens 1024, the sampler's
** defaults, no budget limits, confidence 0.95. */
copse_solve_params copse_solve_default_params(void);

/* What a run spent. */
typedef struct copse_budget {
    int64_t generations;      /* candidate solutions produced */
    int64_t policy_tokens;    /* tokens the policy sampled (EOG included) */
    int64_t prompt_tokens;    /* prompt tokens the policy encoded (re-encodings counted) */
    int64_t policy_rows;      /* positions the policy decoded, prompts included */
    int64_t verifier_tokens;  /* tokens the verifier encoded, prompt included */
    int64_t verifier_prompt_tokens;
    int64_t lookahead_tokens; /* of policy_tokens, those of discarded rollouts */
    int64_t lookahead_verifier_tokens;
    int64_t probe_tokens;     /* of policy_tokens, auto's difficulty probes */
    double  flops;            /* estimate: 2 x params per decoded position + attention */
    uint64_t kv_peak_bytes;   /* peak KV memory, policy and verifier together */
    double  wall_s;
    int     stopped;          /* 1 when budget_tokens or the deadline cut the search */
} copse_budget;

/* One step of the search tree. Steps are numbered in the order they were
** begun; a step's parent comes before it. */
typedef struct copse_step {
    int   parent;          /* previous step of its path, -1 for a first step */
    int   round;           /* search round (depth of beam search) */
    int   group;           /* DVTS subtree or revision chain, else 0 */
    int   attempt;         /* revision attempt, else 0 */
    const char *text;      /* what the policy wrote (EOG not included) */
    const int32_t *tokens; /* the policy's tokens, EOG included */
    int   n_tokens;        /* tokens sampled for it */
    int   n_verifier_tokens; /* tokens the verifier encoded for it */
    float score;           /* the verifier's score; NaN when not scored */
    float path_score;      /* agg of the attempt's scores up to here */
    float select_score;    /* what selection compared (lookahead: after rollout) */
    int   kept;            /* selection let it go on (beam, lookahead, dvts) */
    int   end;             /* 0: its path goes on; 1: ended by EOG; 2: cut by a cap or budget */
    int   rollout;         /* a discarded lookahead step */
    int   probe;           /* one of auto's difficulty probes */
} copse_step;

/* A finished (or cut) solution the final pick chose among. */
typedef struct copse_candidate {
    int   last_step;       /* its last step; follow parents for its path */
    int   n_steps;         /* steps of its attempt */
    const char *text;      /* prefix and the attempt's steps */
    const char *answer;    /* final answer as written, "" when none */
    float score;           /* path score (NaN without a verifier) */
    double vote;           /* what the pick compared: score, count of its
                              answer, or sum of its answer's scores */
    int   finished;        /* ended with EOG (else cut) */
} copse_candidate;

typedef struct copse_result copse_result;

typedef struct copse_result_info {
    int   strategy, n, m, k, pick; /* what ran (auto: what the table chose) */
    double difficulty;     /* auto: estimated difficulty in [0, 1]; else -1 */
    int   bin;             /* auto: its difficulty bin; else -1 */
    const char *answer;    /* the chosen answer, "" when no candidate has one */
    int   chosen;          /* index of the chosen candidate, -1 when none */
    int   n_candidates, n_steps;
    copse_budget budget;
} copse_result_info;

/*
** Solve a question. verifier may be NULL for majority and revise (which
** then picks by majority); the other strategies need one. Errors:
** COPSE_E_ARG naming the parameter (an empty question, n < m, n not a
** multiple of m, an unknown strategy, a strategy that needs a verifier
** without one, ...),
** COPSE_E_KV_FULL when kv_bytes is too small for the search, and those of
** loading a table or decoding. On success *out holds the result, which the
** caller frees with copse_result_free.
*/
int copse_solve(copse_model *policy, copse_verifier *verifier, const char *question,
                const copse_solve_params *params, copse_result **out, copse_error *err);

/*
** A crowd: many searches side by side, their decodes merged. copse_crowd_run
** calls job(crowd, i, user) for i from 0 to n_jobs - 1, up to parallel of
** them going at once, each on a thread of its own but only one running at
** a time: a job runs until one of its copse_crowd_solve calls needs the
** model, then the next job runs; once every job waits, what they all wait
** for goes through the model as one batch per model (its weights read once
** for all of them), and the jobs go on in turn. When a job returns, the
** next one starts in its place. So a job needs no locks of its own, and
** it may do anything between its searches (grade, print, solve again).
**
** Each copse_crowd_solve gives the result copse_solve gives alone (with
** int8 and 4-bit weights; f32 products may round differently in a
** larger batch). It keeps the KV limit it would have alone (kv_bytes, or
** room for its solutions) within the shared pool; only the wall time and
** the deadline are shared. copse_crowd_run returns when every job has
** returned: 0, or the first nonzero value a job returned (no job starts
** after that), or COPSE_E_ARG / COPSE_E_NOMEM of its own (err says).
** The crowd keeps a context per model it has seen until it returns, so
** models and verifiers given to copse_crowd_solve must outlive
** copse_crowd_run. Crowds do not nest; copse_crowd_solve with a crowd,
** outside its jobs, is COPSE_E_ARG.
*/
typedef struct copse_crowd copse_crowd;
int copse_crowd_run(int n_jobs, int parallel, int (*job)(copse_crowd *crowd, int i, void *user), void *user,
                    copse_error *err);
/* copse_solve as one of the crowd's searches (from inside its job);
** crowd NULL is copse_solve itself. */
int copse_crowd_solve(copse_crowd *crowd, copse_model *policy, copse_verifier *verifier, const char *question,
                      const copse_solve_params *params, copse_result **out, copse_error *err);

void copse_result_get_info(const copse_result *r, copse_result_info *info);
/* Step or candidate i; COPSE_E_ARG when out of range. Strings live as long
** as the result. */
int  copse_result_step(const copse_result *r, int i, copse_step *out);
int  copse_result_candidate(const copse_result *r, int i, copse_candidate *out);
void copse_result_free(copse_result *r);

/* One validation question and its reference answer. */
typedef struct copse_tune_item {
    const char *question, *answer;
} copse_tune_item;

typedef struct copse_tune_params {
    copse_solve_params base;   /* sampler, caps, threads, ... of every run */
    const int *budgets;        /* generation budgets to tune for */
    int   n_budgets;
    int   probes;              /* samples that estimate difficulty (counted in the budget) */
    int   n_bins;              /* difficulty bins, equally populated on the items */
    void (*progress)(void *user, int done, int total);  /* may be NULL; called by the crowd's
                                                           job threads, one at a time */
    void *user;
    int   parallel;            /* items searched side by side (a crowd); each result is its own */
} copse_tune_params;

/* Defaults: budgets 4, 16, 64; 2 probes; 5 bins; 4 items at once. */
copse_tune_params copse_tune_default_params(void);

/*
** Build a tuning table for auto: estimate every item's difficulty, bin the
** items, run each strategy setting that fits each budget on every item, and
** write to path, for every bin and budget, the setting that answered the
** most items correctly (the fewest tokens breaking ties). verifier may be
** NULL (then only majority and revise are tried).
*/
int copse_tune(copse_model *policy, copse_verifier *verifier, const copse_tune_item *items,
               int n_items, const copse_tune_params *params, const char *path, copse_error *err);

#ifdef __cplusplus
}
#endif
#endif /* COPSE_H */
