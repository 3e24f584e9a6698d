/*
** SentencePiece (tokenizer.ggml.model "llama"): spaces become U+2581, the
** text starts as one symbol per character, and adjacent symbols whose
** concatenation is a token merge, highest token score first (leftmost on
** ties). Characters no token covers fall back to byte tokens <0xXX>.
*/
#include <stdlib.h>
#include <string.h>
#include "tok_impl.h"
#include "unicode.h"

#define SPACE_MARK     "\xe2\x96\x81"   /* U+2581 LOWER ONE EIGHTH BLOCK */
#define SPACE_MARK_LEN 3

typedef struct spm_ctx {
    const copse_tokenizer *t;
    const char            *text;
} spm_ctx;

static int spm_can_merge(const void *ctx, const tok_sym *sym, int a, int b,
                         double *key, int32_t *result)
{
    const spm_ctx *c = ctx;
    int32_t id = tok_lookup(c->t, c->text + sym[a].start, (size_t)(sym[a].len + sym[b].len));
    if (!tok_is_text(c->t, id))
        return 0;
    *key = -(double)c->t->score[id];
    *result = id;
    return 1;
}

/* text with each space spelled as U+2581, after one more if prefix_space;
** returns its length, or -1 when out of memory. */
static int escape_spaces(tok_scratch *s, const char *text, int len, int prefix_space)
{
    if (tok_scratch_text(s, (size_t)len * SPACE_MARK_LEN + SPACE_MARK_LEN))
        return -1;
    char *out = s->text;
    int n = 0;
    if (prefix_space) {
        memcpy(out, SPACE_MARK, SPACE_MARK_LEN);
        n = SPACE_MARK_LEN;
    }
    for (int i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(out + n, SPACE_MARK, SPACE_MARK_LEN);
            n += SPACE_MARK_LEN;
        } else {
            out[n++] = text[i];
        }
    }
    return n;
}

/*
** llama.cpp merges over the whole text at once, with a heap as large as
** the text. But a symbol only ever grows across two characters that some
** token has side by side, so cutting the text where no token could join
** it gives the same tokens with small heaps: before each U+2581 whose
** preceding character never stands before a U+2581 inside a token.
*/
static int joins_mark(const copse_tokenizer *t, uint32_t cp)
{
    int lo = 0, hi = t->n_glue - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->glue[mid] == cp)
            return 1;
        if (t->glue[mid] < cp)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int spm_load(copse_tokenizer *t)
{
    int cap = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!tok_is_text(t, id))
            continue;
        const uint8_t *p = (const uint8_t *)t->tok[id].ptr;
        size_t n = (size_t)t->tok[id].len;
        uint32_t prev = 0, cp;
        for (size_t i = 0; i < n; prev = cp) {
            i += (size_t)uc_decode(p + i, n - i, &cp);
            if (cp != 0x2581 || i == SPACE_MARK_LEN)
                continue;
            if (t->n_glue == cap) {
                cap = cap ? 2 * cap : 16;
                uint32_t *g = realloc(t->glue, (size_t)cap * sizeof *g);
                if (!g)
                    return -1;
                t->glue = g;
            }
            t->glue[t->n_glue++] = prev;
        }
    }
    if (t->n_glue)
        qsort(t->glue, (size_t)t->n_glue, sizeof *t->glue, cmp_u32);
    int k = 0;
    for (int i = 0; i < t->n_glue; i++)
        if (!k || t->glue[k - 1] != t->glue[i])
            t->glue[k++] = t->glue[i];
    t->n_glue = k;
    return 0;
}

/* The end of the word starting at w of text (n bytes). */
static int word_end(const copse_tokenizer *t, const char *text, int n, int w)
{
    uint32_t prev = 0, cp;
    for (int i = w; i < n; prev = cp) {
        int l = uc_decode((const uint8_t *)text + i, (size_t)(n - i), &cp);
        if (i > w && cp == 0x2581 && !joins_mark(t, prev))
            return i;
        i += l;
    }
    return n;
}

/* One symbol per character of text (n bytes); returns their count. */
static int char_symbols(const copse_tokenizer *t, tok_sym *sym, const char *text, int n)
{
    int k = 0;
    for (int i = 0; i < n; k++) {
        uint32_t cp;
        int l = uc_decode((const uint8_t *)text + i, (size_t)(n - i), &cp);
        sym[k] = (tok_sym){ tok_lookup(t, text + i, (size_t)l), i, l, k - 1, k + 1 };
        i += l;
    }
    if (k > 0)
        sym[k - 1].next = -1;
    return k;
}

void spm_encode(const copse_tokenizer *t, tok_scratch *s, const char *text, int len,
                int prefix_space, tok_out *o)
{
    int n = escape_spaces(s, text, len, prefix_space);
    if (n < 0 || tok_scratch_sym(s, n)) {
        o->err = -COPSE_E_NOMEM;
        return;
    }
    for (int w = 0, end; w < n && !o->err; w = end) {
        end = word_end(t, s->text, n, w);
        spm_ctx ctx = { t, s->text + w };
        int k = char_symbols(t, s->sym, ctx.text, end - w);
        tok_merge_word(t, s, k, spm_can_merge, &ctx, ctx.text, o);
    }
}
