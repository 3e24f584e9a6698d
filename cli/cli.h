/* The copse command: one file per subcommand, sharing these helpers. */
#ifndef COPSE_CLI_H
#define COPSE_CLI_H

#include <stdio.h>
#include "copse.h"

/* Each subcommand: returns the process exit status (0 ok, 1 failure,
** 2 usage error). */
typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

/* Print "copse NAME: message" to stderr and return 1 (or 2 for usage). */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a whole decimal integer / float argument of option opt within
** [lo, hi]; on failure print why and return nonzero. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);
/* Parse a comma-separated list of whole numbers in [lo, hi] into out (at
** most max of them, strictly ascending when ascending is set), their count
** in *n_out; likewise. */
int cli_parse_int_list(const char *cmd, const char *opt, const char *s, long lo, long hi, int max,
                       int ascending, int *out, int *n_out);
/* Parse a byte count: digits, optionally followed by K, M or G (binary
** multiples), from 1 byte to 1 TiB; likewise. */
int cli_parse_bytes(const char *cmd, const char *opt, const char *s, uint64_t *out);

/* Read all of stdin into a malloc'd NUL-terminated buffer; NULL on failure. */
char *cli_read_stdin(size_t *len);
/* Read a whole file likewise; NULL (errno set) on failure. */
char *cli_read_file(const char *path, size_t *len);

/* Seconds from a monotonic clock. */
double cli_now(void);

/* Write s (len bytes) as a JSON string literal; bytes that are not valid
** UTF-8 become U+FFFD. */
void cli_json_str(FILE *f, const char *s, size_t len);
/* Bytes of the well-formed UTF-8 character at s (n > 0 bytes left), or 0. */
size_t cli_utf8_char(const unsigned char *s, size_t n);

/* Options shared by the commands that load a model and run it in
** contexts of their own or copse_solve's. */
typedef struct cli_model_opts {
    const char *model;      /* -m */
    long        threads;    /* -t, 0 = all cores */
    long        n_ctx;      /* --ctx, 0 = model's */
    int         weights_f32; /* --weights f32 */
    int         weights_8bit; /* --weights int8 */
    uint64_t    kv_bytes;   /* --kv-mem, 0 = the library's default */
    int         kv_f32;     /* --kv-f32 */
} cli_model_opts;

/* --weights V into o; prints a usage error and returns nonzero for a bad V. */
int cli_weights_opt(const char *cmd, const char *v, cli_model_opts *o);

/* If argv[*i] is one of the shared model options, consume it (and its
** value) and return 1; return -1 after printing a usage error; else 0. */
int cli_model_opt(const char *cmd, int argc, char **argv, int *i, cli_model_opts *o);

/* Load o->model and make a context with o's settings; prints the error and
** returns nonzero on failure. vocab_only skips tensors (ctx may then be
** NULL). */
int cli_open_model(const char *cmd, const cli_model_opts *o, int vocab_only,
                   copse_model **model, copse_ctx **ctx);

/* A context for model with o's settings, room for kv_tokens positions
** unless o gives --kv-mem (0: the library's default); prints the error
** and returns nonzero on failure. */
int cli_new_ctx(const char *cmd, const cli_model_opts *o, int kv_tokens, copse_model *model, copse_ctx **ctx);

/* The help lines for the shared model options. */
#define CLI_MODEL_OPTS_HELP \
    "  -m, --model FILE   GGUF model file (required)\n" \
    "  -t, --threads N    threads (default: all cores; one for weights under 16 MiB)\n" \
    "  --ctx N            context length (default: the model's)\n" \
    "  --weights W        auto (default: int8, and Q4_0/Q4_1/Q4_K/IQ4_NL/IQ4_XS\n" \
    "                     matrices keep their 4 bits, Q5_0/Q5_1/Q5_K ones their 5,\n" \
    "                     Q6_K ones their 6, Q3_K ones their 3, Q2_K ones their 2;\n" \
    "                     kernels from COPSE_ISA or the CPU),\n" \
    "                     int8 (those too as int8: more memory, faster products where\n" \
    "                     arithmetic bounds them) or f32 (reference)\n" \
    "  --kv-mem BYTES     KV cache memory of each context; K, M, G suffixes (e.g. 64M;\n" \
    "                     default: room for every sequence the command runs at full length)\n" \
    "  --kv-f32           keep keys and values in f32 (default f16, half the memory)\n"

/* Tokenize into a malloc'd array; returns the count, or -1 after printing
** an error. */
int cli_tokenize(const char *cmd, const copse_model *m, const char *text, size_t len,
                 unsigned flags, int32_t **out);

/* Streams token pieces to a FILE as valid UTF-8, holding back a partial
** multi-byte character until its last byte arrives. */
typedef struct cli_utf8_out {
    FILE *f;
    char  pend[8];
    int   n;
} cli_utf8_out;
void cli_utf8_put(cli_utf8_out *o, const char *s, int len);
void cli_utf8_flush(cli_utf8_out *o);

/* Speculative decoding (copse run --draft, cli/speculate.c): a draft
** model of the target's vocabulary, its own context and sequence, which
** follows the target's; what it proposed and the target kept. */
#define CLI_DRAFT_MAX 32
typedef struct cli_draft {
    copse_model   *model;
    copse_ctx     *ctx;
    copse_seq     *seq;
    copse_sampler *smp;        /* the target's settings, a seed of its own */
    int            k;          /* tokens proposed a round, 1 to CLI_DRAFT_MAX */
    float         *q;          /* k rows of n_vocab: the proposals' distributions */
    float         *p, *rest;   /* n_vocab each: the target's, and what it has beyond q */
    long long      drafted, accepted, passes;   /* passes: the target's forward passes */
} cli_draft;

/* Load the draft model at path with o's settings (its context n_ctx
** long, as the target's) into d, whose k is set, to sample with sp's
** settings; refuse one whose vocabulary is not target's. Prints the error
** and returns nonzero on failure; cli_draft_close frees what was made
** either way. */
int  cli_draft_open(const char *cmd, const cli_model_opts *o, const char *path, const copse_model *target,
                    int n_ctx, const copse_sampler_params *sp, cli_draft *d);
void cli_draft_close(cli_draft *d);

/*
** Sample after logits until an end-of-generation token (not decoded;
** *hit_eog set), n_predict tokens or a full context, into gen: every
** token but the last goes through a forward pass into seq; each one's
** text streams to so when it is set. With a draft d (whose sequence holds
** the prompt seq holds), the target checks d->k proposals a forward pass;
** each token is distributed as without one, and greedy, it is the one
** chosen without one. Returns the count, or -1 after printing the error.
*/
int cli_generate(const char *cmd, copse_ctx *ctx, copse_seq *seq, copse_sampler *smp, const copse_model *m,
                 const float *logits, int n_predict, cli_draft *d, int32_t *gen, int *hit_eog,
                 cli_utf8_out *so);

#endif
