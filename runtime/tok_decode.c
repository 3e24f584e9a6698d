/*
** Decoding: each token's text back to the bytes it stands for. Byte
** tokens give their byte, SentencePiece's U+2581 gives a space, GPT-2's
** printable characters give their bytes; special tokens give their text.
*/
#include <limits.h>
#include <string.h>
#include "tok_impl.h"
#include "unicode.h"

/* Output that is written while it fits and counted beyond. */
typedef struct sink {
    char  *buf;
    size_t cap, n;
    int    drop_space;  /* drop the next byte if it is a space */
} sink;

static void put(sink *s, const char *p, size_t n)
{
    if (n && s->drop_space) {
        s->drop_space = 0;
        if (*p == ' ') {
            p++;
            n--;
        }
    }
    if (s->n < s->cap) {
        size_t m = s->cap - s->n < n ? s->cap - s->n : n;
        memcpy(s->buf + s->n, p, m);
    }
    s->n += n;
}

/* The byte of a "<0xXX>" token, or -1. */
static int byte_value(gguf_str text)
{
    static const char hex[] = "0123456789ABCDEF";
    if (text.len != 6 || memcmp(text.ptr, "<0x", 3) || text.ptr[5] != '>')
        return -1;
    const char *hi = memchr(hex, text.ptr[3], 16), *lo = memchr(hex, text.ptr[4], 16);
    return hi && lo ? (int)((hi - hex) * 16 + (lo - hex)) : -1;
}

/* A normal token's text: U+2581 -> space (SPM), GPT-2 characters -> bytes
** (BPE; a character that spells no byte is copied as it is). */
static void put_text(const copse_tokenizer *t, gguf_str text, sink *s)
{
    const uint8_t *p = (const uint8_t *)text.ptr;
    size_t n = (size_t)text.len;
    for (size_t i = 0; i < n; ) {
        uint32_t cp;
        int len = uc_decode(p + i, n - i, &cp);
        int b = t->spm ? (cp == 0x2581 ? ' ' : -1) : uc_cp_to_byte(cp);
        if (b >= 0) {
            char c = (char)b;
            put(s, &c, 1);
        } else {
            put(s, (const char *)p + i, (size_t)len);
        }
        i += (size_t)len;
    }
}

static void put_token(const copse_tokenizer *t, int32_t id, sink *s)
{
    gguf_str text = t->tok[id];
    int b = t->type[id] == TT_BYTE ? byte_value(text) : -1;
    if (b >= 0) {
        char c = (char)b;
        put(s, &c, 1);
    } else if (tok_type_special(t->type[id]) || t->type[id] == TT_BYTE) {
        put(s, text.ptr, (size_t)text.len);
    } else {
        put_text(t, text, s);
    }
}

/* NUL-terminate when there is room and return the length (or a negative
** status when it does not fit an int). */
static int finish(sink *s)
{
    if (s->n < s->cap)
        s->buf[s->n] = '\0';
    return s->n > INT_MAX ? -COPSE_E_ARG : (int)s->n;
}

int tokenizer_piece(const copse_tokenizer *t, int32_t token, char *buf, int cap)
{
    if (!t || token < 0 || token >= t->n_vocab || cap < 0 || (!buf && cap > 0))
        return -COPSE_E_ARG;
    sink s = { buf, (size_t)cap, 0, 0 };
    put_token(t, token, &s);
    return finish(&s);
}

/*
** With COPSE_TOK_ADD_SPECIAL, what tokenizer_encode added with that flag is
** taken away again: a leading BOS, a trailing EOS (when the vocabulary adds
** them), and SentencePiece's space in front of the text and of the text
** after each special token.
*/
int tokenizer_decode(const copse_tokenizer *t, const int32_t *tokens, int n,
                     unsigned flags, char *buf, int cap)
{
    if (!t || n < 0 || (!tokens && n > 0) || cap < 0 || (!buf && cap > 0) ||
        (flags & ~(COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL)))
        return -COPSE_E_ARG;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= t->n_vocab)
            return -COPSE_E_ARG;
    int undo = (flags & COPSE_TOK_ADD_SPECIAL) != 0;
    int lo = 0, hi = n;
    if (undo && t->add_bos && hi > lo && tokens[lo] == t->bos)
        lo++;
    if (undo && t->add_eos && hi > lo && tokens[hi - 1] == t->eos)
        hi--;
    sink s = { buf, (size_t)cap, 0, 0 };
    int strip = undo && t->space_prefix;
    for (int i = lo; i < hi; i++) {
        int type = t->type[tokens[i]];
        if (tok_type_special(type)) {
            if (type == TT_USER_DEFINED || (flags & COPSE_TOK_PARSE_SPECIAL))
                put_token(t, tokens[i], &s);
            strip = undo && t->space_prefix;
            continue;
        }
        s.drop_space = strip;
        put_token(t, tokens[i], &s);
        s.drop_space = strip = 0;
    }
    return finish(&s);
}
