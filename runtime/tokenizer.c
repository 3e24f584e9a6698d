/*
** Loading a tokenizer from GGUF metadata: the token list and its types and
** scores, the text -> symbol hash table, special token ids and flags, the
** special tokens matched before tokenizing, and the end-of-generation set.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "tok_impl.h"
#include "unicode.h"

/* ------------------------------------------------------- symbol table */

uint32_t tok_hash(const char *a, size_t la, const char *b, size_t lb)
{
    uint32_t h = 2166136261u;   /* FNV-1a over a then b */
    for (size_t i = 0; i < la; i++)
        h = (h ^ (uint8_t)a[i]) * 16777619u;
    for (size_t i = 0; i < lb; i++)
        h = (h ^ (uint8_t)b[i]) * 16777619u;
    return h ^ (h >> 15);
}

static void sym_text(const copse_tokenizer *t, int32_t id, const char **p, size_t *n)
{
    if (id < t->n_vocab) {
        *p = t->tok[id].ptr;
        *n = (size_t)t->tok[id].len;
    } else {
        const uint32_t *e = &t->extra[2 * (id - t->n_vocab)];
        *p = t->arena + e[0];
        *n = e[1];
    }
}

/* The slot holding the text a + b, or the empty slot where it belongs. */
static tok_slot *find_slot(const copse_tokenizer *t, const char *a, size_t la,
                           const char *b, size_t lb, uint32_t hash)
{
    for (uint32_t h = hash & t->slot_mask;; h = (h + 1) & t->slot_mask) {
        tok_slot *s = &t->slot[h];
        if (s->id < 0)
            return s;
        if (s->hash != hash)
            continue;
        const char *p;
        size_t n;
        sym_text(t, s->id, &p, &n);
        if (n == la + lb && !memcmp(p, a, la) && (!lb || !memcmp(p + la, b, lb)))
            return s;
    }
}

int32_t tok_lookup(const copse_tokenizer *t, const char *text, size_t len)
{
    return find_slot(t, text, len, NULL, 0, tok_hash(text, len, NULL, 0))->id;
}

void tok_prefetch(const copse_tokenizer *t, uint32_t hash, int stage)
{
    const tok_slot *s = &t->slot[hash & t->slot_mask];
    if (stage == 0) {
        __builtin_prefetch(s);
        return;
    }
    if (s->id < 0 || s->hash != hash || s->id >= t->n_vocab)
        return;     /* not worth a search: the lookup will do it */
    if (stage == 1)
        __builtin_prefetch(&t->tok[s->id]);
    else
        __builtin_prefetch(t->tok[s->id].ptr);
}

static int table_alloc(copse_tokenizer *t, uint32_t cap)
{
    t->slot = malloc((size_t)cap * sizeof *t->slot);
    if (!t->slot)
        return -1;
    memset(t->slot, 0xff, (size_t)cap * sizeof *t->slot);
    t->slot_mask = cap - 1;
    return 0;
}

/* Fill the table to at most 2/3 so probes stay short. */
static uint32_t table_size(uint64_t n)
{
    uint32_t cap = 1024;
    while (cap < n + n / 2)
        cap *= 2;
    return cap;
}

static int table_reserve(copse_tokenizer *t, int32_t n_sym)
{
    uint32_t cap = t->slot_mask + 1;
    if (table_size((uint64_t)n_sym) <= cap)
        return 0;
    tok_slot *old = t->slot;
    if (table_alloc(t, 2 * cap)) {
        t->slot = old;
        return -1;
    }
    for (uint32_t i = 0; i < cap; i++) {
        if (old[i].id < 0)
            continue;
        uint32_t h = old[i].hash & t->slot_mask;
        while (t->slot[h].id >= 0)
            h = (h + 1) & t->slot_mask;
        t->slot[h] = old[i];
    }
    free(old);
    return 0;
}

int32_t tok_intern(copse_tokenizer *t, const char *a, size_t la, const char *b, size_t lb,
                   uint32_t hash)
{
    tok_slot *s = find_slot(t, a, la, b, lb, hash);
    if (s->id >= 0)
        return s->id;
    size_t len = la + lb;
    if (len > UINT32_MAX - t->arena_len || t->n_sym == INT32_MAX || table_reserve(t, t->n_sym + 1))
        return -1;
    uint32_t k = (uint32_t)(t->n_sym - t->n_vocab);
    if (k == t->extra_cap) {
        uint32_t cap = k ? 2 * k : 64;
        uint32_t *e = realloc(t->extra, (size_t)cap * 2 * sizeof *e);
        if (!e)
            return -1;
        t->extra = e;
        t->extra_cap = cap;
    }
    if (t->arena_len + len > t->arena_cap) {
        size_t cap = 2 * ((size_t)t->arena_len + len) + 256;
        char *p = cap > UINT32_MAX ? NULL : realloc(t->arena, cap);
        if (!p)
            return -1;
        t->arena = p;
        t->arena_cap = (uint32_t)cap;
    }
    memcpy(t->arena + t->arena_len, a, la);
    if (lb)
        memcpy(t->arena + t->arena_len + la, b, lb);
    t->extra[2 * k] = t->arena_len;
    t->extra[2 * k + 1] = (uint32_t)len;
    t->arena_len += (uint32_t)len;
    int32_t id = t->n_sym++;
    /* the table may have grown: find the slot again */
    *find_slot(t, a, la, b, lb, hash) = (tok_slot){ hash, id };
    return id;
}

/* ------------------------------------------------------------ loading */

static int nomem(copse_error *err, const gguf_file *g)
{
    return copse_fail(err, COPSE_E_NOMEM, "%s: out of memory loading the tokenizer", g->path);
}

static int str_is(gguf_str s, const char *lit)
{
    return s.len == strlen(lit) && !memcmp(s.ptr, lit, s.len);
}

static int load_kind(copse_tokenizer *t, const gguf_file *g, copse_error *err)
{
    gguf_str model, pre;
    if (!gguf_get(g, "tokenizer.ggml.model"))
        return copse_fail(err, COPSE_E_FORMAT, "%s: no tokenizer (tokenizer.ggml.model is missing)",
                          g->path);
    int rc = gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc)
        return rc;
    if (str_is(model, "llama"))
        t->spm = 1;
    else if (!str_is(model, "gpt2"))
        return copse_fail(err, COPSE_E_UNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' is not "
                          "supported (copse reads 'llama' and 'gpt2')", g->path,
                          (int)(model.len > 64 ? 64 : model.len), model.ptr);
    if (t->spm)
        return COPSE_OK;
    /* Files from before tokenizer.ggml.pre existed meant llama.cpp's default. */
    t->pre = pretok_default();
    if (!gguf_get(g, "tokenizer.ggml.pre"))
        return COPSE_OK;
    rc = gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
    if (rc)
        return rc;
    t->pre = pretok_find(pre.ptr, (size_t)pre.len);
    if (!t->pre)
        return copse_fail(err, COPSE_E_UNSUPPORTED, "%s: pre-tokenizer '%.*s' "
                          "(tokenizer.ggml.pre) is not supported; copse knows %s", g->path,
                          (int)(pre.len > 64 ? 64 : pre.len), pre.ptr, pretok_names());
    return COPSE_OK;
}

/* An optional array of at least n numbers. */
static int opt_numbers(const gguf_file *g, const char *key, uint32_t t1, uint32_t t2,
                       uint64_t n, const gguf_array **out, copse_error *err)
{
    *out = NULL;
    if (!gguf_get(g, key))
        return COPSE_OK;
    const gguf_array *a;
    int rc = gguf_get_arr(g, key, GGUF_TYPE_COUNT, &a, err);
    if (rc)
        return rc;
    if (a->type != t1 && a->type != t2)
        return copse_fail(err, COPSE_E_FORMAT, "%s: %s has elements of type %u, not numbers",
                          g->path, key, (unsigned)a->type);
    if (a->n < n)
        return copse_fail(err, COPSE_E_FORMAT, "%s: %s has %llu entries for %llu tokens",
                          g->path, key, (unsigned long long)a->n, (unsigned long long)n);
    *out = a;
    return COPSE_OK;
}

static int load_tokens(copse_tokenizer *t, const gguf_file *g, copse_error *err)
{
    const gguf_array *toks, *types, *scores;
    if (!gguf_get(g, "tokenizer.ggml.tokens"))
        return copse_fail(err, COPSE_E_FORMAT, "%s: no token list (tokenizer.ggml.tokens)", g->path);
    int rc = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, err);
    if (rc)
        return rc;
    if (toks->n == 0 || toks->n > INT32_MAX / 4)
        return copse_fail(err, COPSE_E_FORMAT, "%s: tokenizer.ggml.tokens has %llu tokens",
                          g->path, (unsigned long long)toks->n);
    int32_t n = (int32_t)toks->n;
    t->n_vocab = t->n_sym = n;
    t->tok = toks->strs;

    rc = opt_numbers(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, GGUF_TYPE_UINT32,
                     toks->n, &types, err);
    if (!rc)
        rc = opt_numbers(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, GGUF_TYPE_INT32,
                         toks->n, &scores, err);
    if (rc)
        return rc;
    t->type = malloc((size_t)n);
    t->score = t->spm ? malloc((size_t)n * sizeof *t->score) : NULL;
    if (!t->type || (t->spm && !t->score) || table_alloc(t, table_size((uint64_t)n + 256)))
        return nomem(err, g);
    for (int32_t i = 0; i < n; i++) {
        double ty = types ? gguf_arr_num(types, (uint64_t)i) : TT_NORMAL;
        t->type[i] = (uint8_t)(ty >= TT_UNDEFINED && ty <= TT_BYTE ? ty : TT_UNDEFINED);
        if (t->spm) {
            t->score[i] = scores ? (float)gguf_arr_num(scores, (uint64_t)i) : 0.0f;
            if (t->score[i] != t->score[i])     /* would scramble the merge order */
                return copse_fail(err, COPSE_E_FORMAT, "%s: token %d has a NaN score",
                                  g->path, (int)i);
        }
        if (t->tok[i].len == 0)
            continue;       /* nothing can spell an empty token */
        uint32_t h = tok_hash(t->tok[i].ptr, (size_t)t->tok[i].len, NULL, 0);
        tok_slot *s = find_slot(t, t->tok[i].ptr, (size_t)t->tok[i].len, NULL, 0, h);
        if (s->id >= 0)
            return copse_fail(err, COPSE_E_FORMAT, "%s: token %d has the same text as token %d",
                              g->path, (int)i, (int)s->id);
        *s = (tok_slot){ h, i };
    }
    return COPSE_OK;
}

/* An optional token id; absent or negative is -1 (none). */
static int opt_id(const copse_tokenizer *t, const gguf_file *g, const char *key,
                  int lenient, int32_t *id, copse_error *err)
{
    *id = -1;
    if (!gguf_get(g, key))
        return COPSE_OK;
    int32_t v;
    int rc = gguf_get_i32(g, key, &v, err);
    if (rc || v < 0)
        return rc;
    if (v < t->n_vocab)
        *id = v;
    else if (!lenient)
        return copse_fail(err, COPSE_E_FORMAT, "%s: %s = %d is outside the vocabulary of %d tokens",
                          g->path, key, (int)v, (int)t->n_vocab);
    return COPSE_OK;
}

/* An optional flag: *flag keeps its default when absent. A flag that asks
** for a token the file lacks is an error. */
static int opt_add(const gguf_file *g, const char *key, int32_t id, const char *id_key,
                   int *flag, copse_error *err)
{
    if (!gguf_get(g, key)) {
        *flag = *flag && id >= 0;
        return COPSE_OK;
    }
    int rc = gguf_get_bool(g, key, flag, err);
    if (!rc && *flag && id < 0)
        rc = copse_fail(err, COPSE_E_FORMAT, "%s: %s is set but %s is missing", g->path, key, id_key);
    return rc;
}

static int load_special_ids(copse_tokenizer *t, const gguf_file *g, copse_error *err)
{
    static const struct { const char *key; size_t off; int lenient; } ids[] = {
        { "tokenizer.ggml.bos_token_id",     offsetof(copse_tokenizer, bos), 0 },
        { "tokenizer.ggml.eos_token_id",     offsetof(copse_tokenizer, eos), 0 },
        { "tokenizer.ggml.unknown_token_id", offsetof(copse_tokenizer, unk), 0 },
        { "tokenizer.ggml.eot_token_id",     offsetof(copse_tokenizer, eot), 0 },
        { "tokenizer.ggml.eom_token_id",     offsetof(copse_tokenizer, eom), 0 },
        /* some converters write the vocabulary size here; padding is never added */
        { "tokenizer.ggml.padding_token_id", offsetof(copse_tokenizer, pad), 1 },
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int rc = opt_id(t, g, ids[i].key, ids[i].lenient,
                        (int32_t *)(void *)((char *)t + ids[i].off), err);
        if (rc)
            return rc;
    }
    t->add_bos = t->spm || pretok_add_bos(t->pre);
    t->add_eos = 0;
    int rc = opt_add(g, "tokenizer.ggml.add_bos_token", t->bos, "tokenizer.ggml.bos_token_id",
                     &t->add_bos, err);
    if (!rc)
        rc = opt_add(g, "tokenizer.ggml.add_eos_token", t->eos, "tokenizer.ggml.eos_token_id",
                     &t->add_eos, err);
    if (rc)
        return rc;
    t->space_prefix = t->spm;
    if (t->spm && gguf_get(g, "tokenizer.ggml.add_space_prefix"))
        rc = gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &t->space_prefix, err);
    t->ignore_merges = !t->spm && pretok_ignore_merges(t->pre);
    return rc;
}

/* The token standing for one byte: SentencePiece's <0xXX>, else a token
** that is just that byte; for BPE the byte's GPT-2 character. Only one
** that decodes to the byte: DeepSeek-Coder adds the characters of bytes
** UTF-8 never uses (ÿ, þ, ...) back as user-defined tokens, which stand
** for those characters, not for the bytes. */
static void find_byte_tokens(copse_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char s[8], piece[8];
        int32_t id;
        if (t->spm) {
            snprintf(s, sizeof s, "<0x%02X>", b);
            id = tok_lookup(t, s, 6);
            if (id < 0) {
                s[0] = (char)b;
                id = tok_lookup(t, s, 1);
            }
        } else {
            id = tok_lookup(t, s, (size_t)uc_encode(uc_byte_to_cp((uint8_t)b), (uint8_t *)s));
        }
        int ok = id >= 0 && id < t->n_vocab && tokenizer_piece(t, id, piece, sizeof piece) == 1 &&
                 (uint8_t)piece[0] == b;
        t->byte_tok[b] = ok ? id : -1;
    }
}

typedef struct special_key { uint8_t first; uint32_t len; int32_t id; } special_key;

static int special_cmp(const void *pa, const void *pb)
{
    const special_key *a = pa, *b = pb;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Special tokens grouped by first byte, longest first, so the text at a
** position is matched by its longest special token. */
static int build_special(copse_tokenizer *t, const gguf_file *g, copse_error *err)
{
    int n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        n += tok_type_special(t->type[i]) && t->tok[i].len > 0;
    special_key *keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
    t->special = malloc((size_t)(n ? n : 1) * sizeof *t->special);
    if (!keys || !t->special) {
        free(keys);
        return nomem(err, g);
    }
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (tok_type_special(t->type[i]) && t->tok[i].len > 0)
            keys[n++] = (special_key){ (uint8_t)t->tok[i].ptr[0], (uint32_t)t->tok[i].len, i };
    qsort(keys, (size_t)n, sizeof *keys, special_cmp);
    memset(t->special_at, 0, sizeof t->special_at);
    for (int i = 0; i < n; i++) {
        t->special[i] = keys[i].id;
        t->special_at[keys[i].first + 1]++;
    }
    for (int c = 0; c < 256; c++)
        t->special_at[c + 1] += t->special_at[c];
    free(keys);
    return COPSE_OK;
}

static void add_eog(copse_tokenizer *t, int32_t id)
{
    if (id < 0 || tokenizer_is_eog(t, id))
        return;
    t->eog[t->n_eog++] = id;
}

/*
** What ends generation: EOS, EOT, EOM and the end-of-turn tokens chat
** models use, found by their text since files rarely list them. Those
** found by text become control tokens, as llama.cpp makes them: some
** files mark one user-defined (Phi-3's </s>), and a user's text must
** not end a sequence by spelling it.
*/
static int build_eog(copse_tokenizer *t, const gguf_file *g, copse_error *err)
{
    static const char *const texts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>",
        "<|eom_id|>", "<EOT>", "<|end_of_text|>",
        ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"),  /* DeepSeek */
    };
    enum { N_TEXTS = sizeof texts / sizeof texts[0] };
    t->eog = malloc((3 + N_TEXTS) * sizeof *t->eog);
    if (!t->eog)
        return nomem(err, g);
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    add_eog(t, t->eom);
    for (int i = 0; i < N_TEXTS; i++) {
        int32_t id = tok_lookup(t, texts[i], strlen(texts[i]));
        if (id < 0 || id >= t->n_vocab)
            continue;
        add_eog(t, id);
        t->type[id] = TT_CONTROL;
    }
    return COPSE_OK;
}

static int load(copse_tokenizer *t, const gguf_file *g, copse_error *err)
{
    int rc = load_kind(t, g, err);
    if (!rc)
        rc = load_tokens(t, g, err);
    if (!rc)
        rc = load_special_ids(t, g, err);
    if (!rc)   /* it settles token types, which what follows indexes */
        rc = build_eog(t, g, err);
    if (!rc && !t->spm)
        rc = bpe_load_merges(t, g, err);
    if (!rc && t->spm && spm_load(t))
        rc = nomem(err, g);
    if (!rc) {
        find_byte_tokens(t);
        rc = build_special(t, g, err);
    }
    return rc;
}

int tokenizer_load(const gguf_file *g, copse_tokenizer **out, copse_error *err)
{
    if (!g || !out)
        return copse_fail(err, COPSE_E_ARG, "tokenizer_load: NULL argument");
    *out = NULL;
    copse_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return nomem(err, g);
    int rc = load(t, g, err);
    if (rc) {
        tokenizer_free(t);
        return rc;
    }
    *out = t;
    return COPSE_OK;
}

void tokenizer_free(copse_tokenizer *t)
{
    if (!t)
        return;
    free(t->type);
    free(t->score);
    free(t->extra);
    free(t->arena);
    free(t->slot);
    free(t->merge);
    free(t->glue);
    free(t->special);
    free(t->eog);
    free(t);
}

/* ------------------------------------------------------------ queries */

int tokenizer_n_vocab(const copse_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t tokenizer_bos(const copse_tokenizer *t) { return t ? t->bos : -1; }
int32_t tokenizer_eos(const copse_tokenizer *t) { return t ? t->eos : -1; }

int tokenizer_is_eog(const copse_tokenizer *t, int32_t token)
{
    for (int i = 0; t && i < t->n_eog; i++)
        if (t->eog[i] == token)
            return 1;
    return 0;
}

int32_t tokenizer_find(const copse_tokenizer *t, const char *text, size_t len)
{
    if (!t || (!text && len) || len == 0)
        return -1;
    int32_t id = tok_lookup(t, text, len);
    return id < t->n_vocab ? id : -1;
}

int tok_is_text(const copse_tokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->n_vocab)
        return 0;
    int ty = t->type[id];
    return !tok_type_special(ty) && ty != TT_BYTE;
}
