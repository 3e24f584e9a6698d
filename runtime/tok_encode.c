/*
** Encoding: special tokens are cut out of the text first (longest match
** at each position), then each stretch of plain text goes to the
** SentencePiece or BPE merger. Also the output counter and the per-call
** scratch buffers the mergers use.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "tok_impl.h"

void tok_emit(tok_out *o, int32_t id)
{
    if (o->n < o->cap)
        o->ids[o->n] = id;
    o->n++;
}

/* SentencePiece defines <unk> for what it cannot spell. Byte-level BPE
** files often name their end-of-text token as unknown, which must not
** appear in the middle of a text, so there a byte with no token fails. */
void tok_emit_byte(const copse_tokenizer *t, uint8_t b, tok_out *o)
{
    int32_t id = t->byte_tok[b] >= 0 ? t->byte_tok[b] : t->spm ? t->unk : -1;
    if (id < 0)
        o->err = -COPSE_E_UNSUPPORTED;   /* the vocabulary cannot spell this byte */
    else
        tok_emit(o, id);
}

/* ------------------------------------------------------------- scratch */

int tok_scratch_text(tok_scratch *s, size_t n)
{
    if (n <= s->text_cap)
        return 0;
    char *p = realloc(s->text, n);
    if (!p)
        return -1;
    s->text = p;
    s->text_cap = n;
    return 0;
}

int tok_scratch_sym(tok_scratch *s, int n)
{
    if (n <= s->sym_cap)
        return 0;
    tok_sym *p = realloc(s->sym, (size_t)n * sizeof *p);
    if (!p)
        return -1;
    s->sym = p;
    s->sym_cap = n;
    return 0;
}

static void scratch_free(tok_scratch *s)
{
    pretok_free(&s->pre);
    free(s->text);
    free(s->sym);
    free(s->heap.e);
}

/* ------------------------------------------------------------ encoding */

/* The longest special token at s (n > 0 bytes) that flags allow: control
** and unknown tokens only when parsing special tokens, user-defined ones
** always, as the vocabulary defines them as indivisible text. Returns its
** length, or 0. */
static size_t match_special(const copse_tokenizer *t, const char *s, size_t n,
                            unsigned flags, int32_t *id)
{
    uint8_t c = (uint8_t)s[0];
    for (uint32_t k = t->special_at[c]; k < t->special_at[c + 1]; k++) {
        int32_t cand = t->special[k];
        if (!(flags & COPSE_TOK_PARSE_SPECIAL) && t->type[cand] != TT_USER_DEFINED)
            continue;
        size_t len = (size_t)t->tok[cand].len;
        if (len <= n && !memcmp(s, t->tok[cand].ptr, len)) {
            *id = cand;
            return len;
        }
    }
    return 0;
}

/* Every stretch of plain text starts the text or follows a special token;
** SentencePiece puts a space in front of each. */
static void encode_text(const copse_tokenizer *t, tok_scratch *s, const char *text, size_t len,
                        tok_out *o)
{
    if (o->err)
        return;
    if (t->spm)
        spm_encode(t, s, text, (int)len, t->space_prefix, o);
    else
        bpe_encode(t, s, text, (int)len, o);
}

/* Longer texts could overflow the int counts (SentencePiece may spend up
** to three byte tokens on one input byte). */
#define MAX_TEXT ((size_t)INT_MAX / 8)

int tokenizer_encode(const copse_tokenizer *t, const char *text, size_t len,
                     unsigned flags, int32_t *out, int cap)
{
    if (!t || (!text && len) || cap < 0 || (!out && cap > 0) || len > MAX_TEXT ||
        (flags & ~(COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL)))
        return -COPSE_E_ARG;
    tok_out o = { out, cap, 0, 0 };
    tok_scratch s;
    memset(&s, 0, sizeof s);
    if ((flags & COPSE_TOK_ADD_SPECIAL) && t->add_bos)
        tok_emit(&o, t->bos);
    size_t plain = 0;   /* start of the text not yet encoded */
    for (size_t i = 0; i < len; ) {
        int32_t id;
        size_t n = match_special(t, text + i, len - i, flags, &id);
        if (!n) {
            i++;
            continue;
        }
        if (plain < i)
            encode_text(t, &s, text + plain, i - plain, &o);
        tok_emit(&o, id);
        i += n;
        plain = i;
    }
    if (plain < len)
        encode_text(t, &s, text + plain, len - plain, &o);
    if ((flags & COPSE_TOK_ADD_SPECIAL) && t->add_eos)
        tok_emit(&o, t->eos);
    scratch_free(&s);
    return o.err ? o.err : o.n;
}
