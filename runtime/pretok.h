/*
** Pre-tokenizers of byte-level BPE vocabularies: before merging, text is
** split into words by a pattern named in tokenizer.ggml.pre. The patterns
** are regular expressions over Unicode categories in the original
** tokenizers; each is implemented here by hand, stage by stage, the way
** llama.cpp applies them (each stage splits every word of the previous
** one into its matches and the stretches between them). Internal to copse.
*/
#ifndef COPSE_PRETOK_H
#define COPSE_PRETOK_H

#include <stdint.h>
#include <stddef.h>

typedef struct pretok pretok;

/* The pre-tokenizer for a tokenizer.ggml.pre name, or NULL if unknown. */
const pretok *pretok_find(const char *name, size_t len);
/* The one used when a file names none ("default"). */
const pretok *pretok_default(void);

/* Whether the vocabulary wants a whole word that is itself a token kept
** as is, without merging (llama3's ignore_merges). */
int pretok_ignore_merges(const pretok *p);
/* Whether BOS is added by default (llama3), absent add_bos_token. */
int pretok_add_bos(const pretok *p);
/* The names pretok_find accepts, for error messages. */
const char *pretok_names(void);

/* Reusable buffers for pretok_split. Zero-initialize; free with pretok_free. */
typedef struct pretok_buf {
    uint32_t *cp;       /* code points of the text */
    uint8_t  *cl;       /* their class bits */
    int      *off;      /* byte offset of each code point, plus the end */
    int      *cut[2];   /* word boundaries (code point indices) */
    int       cap;
} pretok_buf;

/*
** Split text (len bytes, any bytes: malformed UTF-8 is kept byte by byte)
** into words. On success returns the number of words n and sets *bounds
** to n + 1 byte offsets: word i is text[bounds[i] .. bounds[i+1]). The
** offsets live in buf until the next call. Returns -1 when out of memory.
*/
int  pretok_split(const pretok *p, const char *text, int len, pretok_buf *buf,
                  const int **bounds);
void pretok_free(pretok_buf *buf);

#endif
