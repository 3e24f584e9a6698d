/*
** SentencePiece (tokenizer.ggml.model "llama"): spaces become U+2581, the
** text starts as one symbol per character, and adjacent symbols whose
** concatenation is a token merge, highest token score first (leftmost on
** ties). Characters no token covers fall back to byte tokens <0xXX>.
*/
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

void spm_encode(const copse_tokenizer *t, tok_scratch *s, const char *text, int len,
                int prefix_space, tok_out *o)
{
    int n = escape_spaces(s, text, len, prefix_space);
    if (n < 0 || tok_scratch_sym(s, n)) {
        o->err = -COPSE_E_NOMEM;
        return;
    }
    const uint8_t *u = (const uint8_t *)s->text;
    int k = 0;
    for (int i = 0; i < n; k++) {
        uint32_t cp;
        int l = uc_decode(u + i, (size_t)(n - i), &cp);
        s->sym[k] = (tok_sym){ tok_lookup(t, s->text + i, (size_t)l), i, l, k - 1, k + 1 };
        i += l;
    }
    if (k > 0)
        s->sym[k - 1].next = -1;
    spm_ctx ctx = { t, s->text };
    tok_merge_word(t, s, k, spm_can_merge, &ctx, s->text, o);
}
