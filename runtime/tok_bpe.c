/*
** Byte-level BPE (tokenizer.ggml.model "gpt2"): the pre-tokenizer splits
** text into words; each word starts as one symbol per byte (spelled as
** GPT-2's printable characters) and the pair with the lowest rank in
** tokenizer.ggml.merges merges first (leftmost on ties).
*/
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "tok_impl.h"
#include "unicode.h"

static uint32_t pair_hash(int32_t a, int32_t b)
{
    uint64_t h = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32);
}

/* The merge of a and b, or the empty slot where it belongs. */
static tok_merge *merge_slot(const copse_tokenizer *t, int32_t a, int32_t b)
{
    for (uint32_t h = pair_hash(a, b) & t->merge_mask;; h = (h + 1) & t->merge_mask) {
        tok_merge *m = &t->merge[h];
        if (m->a < 0 || (m->a == a && m->b == b))
            return m;
    }
}

static int bpe_can_merge(const void *ctx, const tok_sym *sym, int a, int b,
                         double *key, int32_t *result)
{
    const tok_merge *m = merge_slot(ctx, sym[a].id, sym[b].id);
    if (m->a < 0)
        return 0;
    *key = m->rank;
    *result = m->result;
    return 1;
}

/* llama3's ignore_merges: a word that is a token as a whole is kept. */
static int whole_word(const copse_tokenizer *t, tok_scratch *s, const char *w, int n, tok_out *o)
{
    if (tok_scratch_text(s, (size_t)n * 2)) {
        o->err = -COPSE_E_NOMEM;
        return 1;
    }
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)uc_encode(uc_byte_to_cp((uint8_t)w[i]), (uint8_t *)s->text + len);
    int32_t id = tok_lookup(t, s->text, len);
    if (!tok_is_text(t, id))
        return 0;
    tok_emit(o, id);
    return 1;
}

static void bpe_word(const copse_tokenizer *t, tok_scratch *s, const char *w, int n, tok_out *o)
{
    if (t->ignore_merges && whole_word(t, s, w, n, o))
        return;
    if (tok_scratch_sym(s, n)) {
        o->err = -COPSE_E_NOMEM;
        return;
    }
    for (int i = 0; i < n; i++)
        s->sym[i] = (tok_sym){ t->byte_sym[(uint8_t)w[i]], i, 1, i - 1, i + 1 < n ? i + 1 : -1 };
    tok_merge_word(t, s, n, bpe_can_merge, t, w, o);
}

void bpe_encode(const copse_tokenizer *t, tok_scratch *s, const char *text, int len, tok_out *o)
{
    const int *bounds;
    int n = pretok_split(t->pre, text, len, &s->pre, &bounds);
    if (n < 0)
        o->err = -COPSE_E_NOMEM;
    for (int w = 0; w < n && !o->err; w++)
        bpe_word(t, s, text + bounds[w], bounds[w + 1] - bounds[w], o);
}

/* ------------------------------------------------------------- loading */

/* A merge "A B" split into its parts, with the hashes of A, B and AB. */
typedef struct merge_text {
    const char *a, *b;
    size_t      la, lb;
    uint32_t    ha, hb, hab;
} merge_text;

static int split_merge(gguf_str m, merge_text *mt)
{
    const char *sp = m.len > 1 ? memchr(m.ptr + 1, ' ', (size_t)m.len - 1) : NULL;
    if (!sp || sp + 1 == m.ptr + m.len)
        return -1;
    mt->a = m.ptr;
    mt->la = (size_t)(sp - m.ptr);
    mt->b = sp + 1;
    mt->lb = (size_t)m.len - mt->la - 1;
    mt->ha = tok_hash(mt->a, mt->la, NULL, 0);
    mt->hb = tok_hash(mt->b, mt->lb, NULL, 0);
    mt->hab = tok_hash(mt->a, mt->la, mt->b, mt->lb);
    return 0;
}

/* (A, B) -> (rank, AB) over symbol ids; strings that are no token become
** extra symbols so every merge keeps its rank. */
static int add_merge(copse_tokenizer *t, const merge_text *m, int32_t rank)
{
    int32_t a = tok_intern(t, m->a, m->la, NULL, 0, m->ha);
    int32_t b = tok_intern(t, m->b, m->lb, NULL, 0, m->hb);
    int32_t r = tok_intern(t, m->a, m->la, m->b, m->lb, m->hab);
    if (a < 0 || b < 0 || r < 0)
        return COPSE_E_NOMEM;
    tok_merge *slot = merge_slot(t, a, b);
    if (slot->a < 0)    /* a repeated pair keeps its first rank */
        *slot = (tok_merge){ a, b, rank, r };
    return COPSE_OK;
}

static int nomem(const gguf_file *g, copse_error *err)
{
    return copse_fail(err, COPSE_E_NOMEM, "%s: out of memory loading the BPE merges", g->path);
}

/* Merges go in batches whose table slots are prefetched first: the
** lookups land at random, and overlapping their cache misses makes loading
** a large vocabulary markedly faster. */
#define MERGE_BATCH 16

static int add_merges(copse_tokenizer *t, const gguf_file *g, const gguf_array *arr,
                      copse_error *err)
{
    merge_text mt[MERGE_BATCH];
    for (uint64_t i0 = 0; i0 < arr->n; i0 += MERGE_BATCH) {
        int n = arr->n - i0 < MERGE_BATCH ? (int)(arr->n - i0) : MERGE_BATCH;
        for (int k = 0; k < n; k++) {
            if (split_merge(arr->strs[i0 + k], &mt[k]))
                return copse_fail(err, COPSE_E_FORMAT, "%s: merge %llu is not two symbols "
                                  "separated by a space", g->path, (unsigned long long)(i0 + k));
            tok_prefetch(t, mt[k].ha, 0);
            tok_prefetch(t, mt[k].hb, 0);
            tok_prefetch(t, mt[k].hab, 0);
        }
        for (int stage = 1; stage <= 2; stage++)
            for (int k = 0; k < n; k++) {
                tok_prefetch(t, mt[k].ha, stage);
                tok_prefetch(t, mt[k].hb, stage);
                tok_prefetch(t, mt[k].hab, stage);
            }
        for (int k = 0; k < n; k++)
            if (add_merge(t, &mt[k], (int32_t)(i0 + k)))
                return nomem(g, err);
    }
    return COPSE_OK;
}

int bpe_load_merges(copse_tokenizer *t, const gguf_file *g, copse_error *err)
{
    const gguf_array *arr;
    if (!gguf_get(g, "tokenizer.ggml.merges"))
        return copse_fail(err, COPSE_E_FORMAT, "%s: BPE vocabulary without tokenizer.ggml.merges",
                          g->path);
    int rc = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &arr, err);
    if (rc)
        return rc;
    if (arr->n > INT32_MAX / 4)
        return copse_fail(err, COPSE_E_FORMAT, "%s: %llu merges", g->path,
                          (unsigned long long)arr->n);
    for (int b = 0; b < 256; b++) {
        char s[4];
        size_t len = (size_t)uc_encode(uc_byte_to_cp((uint8_t)b), (uint8_t *)s);
        if ((t->byte_sym[b] = tok_intern(t, s, len, NULL, 0, tok_hash(s, len, NULL, 0))) < 0)
            return nomem(g, err);
    }
    uint32_t cap = 16;
    while (cap < arr->n + arr->n / 2)   /* at most 2/3 full */
        cap *= 2;
    t->merge = malloc((size_t)cap * sizeof *t->merge);
    if (!t->merge)
        return nomem(g, err);
    memset(t->merge, 0xff, (size_t)cap * sizeof *t->merge);
    t->merge_mask = cap - 1;
    return add_merges(t, g, arr, err);
}
