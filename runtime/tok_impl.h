/*
** The tokenizer's parts, shared by tokenizer.c (loading, the symbol table),
** tok_encode.c (special tokens, the encode driver), tok_merge.c (the merge
** loop), tok_spm.c and tok_bpe.c (the two algorithms) and tok_decode.c.
** Internal.
*/
#ifndef COPSE_TOK_IMPL_H
#define COPSE_TOK_IMPL_H

#include <stdint.h>
#include "tokenizer.h"
#include "pretok.h"

/* tokenizer.ggml.token_type values */
enum tok_type {
    TT_UNDEFINED    = 0,
    TT_NORMAL       = 1,
    TT_UNKNOWN      = 2,
    TT_CONTROL      = 3,
    TT_USER_DEFINED = 4,
    TT_UNUSED       = 5,
    TT_BYTE         = 6
};

/* Types whose tokens are matched whole in text rather than merged:
** control, unknown and user-defined. */
static inline int tok_type_special(int type)
{
    return type == TT_CONTROL || type == TT_UNKNOWN || type == TT_USER_DEFINED;
}

/* A BPE merge: symbols a and b, adjacent, become result. */
typedef struct tok_merge {
    int32_t a, b;       /* a < 0 marks an empty slot */
    int32_t rank;
    int32_t result;
} tok_merge;

/* A slot of the text -> symbol table; the hash saves comparing texts. */
typedef struct tok_slot {
    uint32_t hash;
    int32_t  id;        /* -1: empty */
} tok_slot;

/*
** Symbols are what merges work on: the vocabulary's tokens (ids below
** n_vocab) and, for BPE files whose merges name strings that are no token,
** those strings (kept in arena) so such merges still apply in order.
*/
struct copse_tokenizer {
    int            spm;          /* SentencePiece ("llama"), else byte-level BPE */
    const pretok  *pre;          /* BPE only */
    int32_t        n_vocab;
    const gguf_str *tok;         /* [n_vocab] token texts, in the GGUF mapping */
    uint8_t       *type;         /* [n_vocab] enum tok_type */
    float         *score;        /* [n_vocab] SPM merge priority */

    int32_t        n_sym;        /* n_vocab + extra symbols */
    uint32_t      *extra;        /* [n_sym - n_vocab] (offset, length) pairs in arena */
    char          *arena;
    uint32_t       arena_len, arena_cap, extra_cap;

    tok_slot      *slot;         /* text -> symbol id hash table */
    uint32_t       slot_mask;

    tok_merge     *merge;        /* (a, b) -> merge hash table */
    uint32_t       merge_mask;

    int32_t        byte_sym[256];  /* BPE: symbol of each byte's character */
    int32_t        byte_tok[256];  /* token that spells a byte alone, or -1 */

    int32_t        bos, eos, unk, eot, eom, pad;   /* -1: none */
    int            add_bos, add_eos;
    int            space_prefix;   /* SPM: prepend a space to each stretch of text */
    int            ignore_merges;

    uint32_t      *glue;           /* SPM: sorted characters some token has before a U+2581 */
    int            n_glue;

    int32_t       *special;        /* control/unknown/user-defined ids by first byte, longest first */
    uint32_t       special_at[257];/* special[special_at[c] .. special_at[c+1]) start with byte c */
    int32_t       *eog;
    int            n_eog;
};

/* Token ids go to the caller's buffer while they fit and are counted
** beyond it; err turns negative (a copse_status) if encoding failed. */
typedef struct tok_out {
    int32_t *ids;
    int      cap;
    int      n;
    int      err;
} tok_out;

void tok_emit(tok_out *o, int32_t id);

/* A min-heap of candidate merges, ordered by key then left position. */
typedef struct tok_pair {
    double  key;
    int32_t left, right;
    int32_t len;        /* their combined length: if it changed, so did they */
    int32_t result;     /* symbol id of the merged text */
} tok_pair;

typedef struct tok_heap {
    tok_pair *e;
    int       n, cap;
} tok_heap;

/* One symbol of a word being merged: a byte range of it, in a list. */
typedef struct tok_sym {
    int32_t id;         /* symbol id, or -1 when the text is no symbol */
    int32_t start, len; /* len 0: merged away */
    int32_t prev, next;
} tok_sym;

/* Buffers one encode call reuses across its words. */
typedef struct tok_scratch {
    pretok_buf pre;
    char      *text;
    size_t     text_cap;
    tok_sym   *sym;
    int        sym_cap;
    tok_heap   heap;
} tok_scratch;

/* Room for n bytes of text / n symbols; -1 when out of memory. */
int tok_scratch_text(tok_scratch *s, size_t n);
int tok_scratch_sym(tok_scratch *s, int n);

/* The symbol spelled by text, or -1. */
int32_t tok_lookup(const copse_tokenizer *t, const char *text, size_t len);
/* Whether the mergers may make this token of plain text: not control,
** unknown or byte, nor user-defined (cut out of the text before merging,
** by its text as written, which in byte-level BPE is not its bytes). */
int tok_is_text(const copse_tokenizer *t, int32_t id);
/* Emit the token spelling byte b alone, else (SentencePiece) the unknown
** token; fails the output when there is neither. */
void tok_emit_byte(const copse_tokenizer *t, uint8_t b, tok_out *o);

/*
** The merge loop both algorithms share. The n symbols in s->sym (a list in
** order, symbol 0 first) are merged, best candidate first, while can_merge
** finds candidates: it returns nonzero and sets key (lower merges first)
** and result when sym[a] and sym[b] may merge. Then every symbol that is a
** token is emitted, the others byte by byte from text.
*/
typedef int (*tok_can_merge)(const void *ctx, const tok_sym *sym, int a, int b,
                             double *key, int32_t *result);
void tok_merge_word(const copse_tokenizer *t, tok_scratch *s, int n, tok_can_merge can_merge,
                    const void *ctx, const char *text, tok_out *o);

/* Encode a stretch of text with no special tokens in it. */
void spm_encode(const copse_tokenizer *t, tok_scratch *s, const char *text, int len,
                int prefix_space, tok_out *o);
void bpe_encode(const copse_tokenizer *t, tok_scratch *s, const char *text, int len,
                tok_out *o);

/* Find where SentencePiece text may be cut into words (t->glue); -1 when
** out of memory. */
int spm_load(copse_tokenizer *t);
/* Load tokenizer.ggml.merges into t (BPE). */
int bpe_load_merges(copse_tokenizer *t, const gguf_file *g, copse_error *err);

/* The table's hash of the string a + b (b may be NULL when lb is 0). */
uint32_t tok_hash(const char *a, size_t la, const char *b, size_t lb);
/* Warm the cache for a lookup of hash to come, in stages run in order
** (each after the previous one's loads had time to arrive): 0 its table
** slot, 1 that slot's token entry, 2 the token's text. */
void tok_prefetch(const copse_tokenizer *t, uint32_t hash, int stage);
/* The symbol id of the string a + b with the given hash, made a new symbol
** if it is none yet (BPE merges); -1 when out of memory. */
int32_t tok_intern(copse_tokenizer *t, const char *a, size_t la, const char *b, size_t lb,
                   uint32_t hash);

#endif
