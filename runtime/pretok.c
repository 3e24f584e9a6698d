/*
** Pre-tokenizers, one per family of tokenizer.ggml.pre names. A stage is a
** matcher: given a position in a word it returns the length of the
** pattern's match starting there, or 0. The driver scans each word left to
** right like a regex search, keeping both the matches and the stretches
** between them as words for the next stage.
**
** The patterns, as the original tokenizers spell them:
**   gpt2     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
**   llama3   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
**            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
**   qwen2    llama3 with \p{N} for \p{N}{1,3}
** and the multi-stage ones listed with their tables below.
*/
#include <stdlib.h>
#include <string.h>
#include "pretok.h"
#include "unicode.h"

#define CL_SPACE 8   /* class bit beside the enum uc_cat in the low 3 bits */

/* The word being split: code points and classes, and its bounds. */
typedef struct span {
    const uint32_t *cp;
    const uint8_t  *cl;
    int begin, end;
} span;

typedef int (*matcher)(const span *s, int i);

#define MAX_STAGES 6

struct pretok {
    const char *names;          /* space-separated tokenizer.ggml.pre values */
    matcher     stage[MAX_STAGES];
    int         ignore_merges;
    int         add_bos;
};

/* ------------------------------------------------------------ classes */

static uint32_t cp_at(const span *s, int i) { return i < s->end ? s->cp[i] : UINT32_MAX; }
static int has_cat(const span *s, int i, int cat) { return i < s->end && (s->cl[i] & 7) == cat; }

static int is_L(const span *s, int i) { return has_cat(s, i, UC_L); }
static int is_N(const span *s, int i) { return has_cat(s, i, UC_N); }
static int is_P(const span *s, int i) { return has_cat(s, i, UC_P); }
static int is_space(const span *s, int i) { return i < s->end && (s->cl[i] & CL_SPACE); }

/* [^\s\p{L}\p{N}] */
static int is_other(const span *s, int i)
{
    return i < s->end && !is_space(s, i) && !is_L(s, i) && !is_N(s, i);
}

static int is_newline(const span *s, int i)
{
    uint32_t c = cp_at(s, i);
    return c == '\r' || c == '\n';
}

static int is_ascii_digit(const span *s, int i)
{
    uint32_t c = cp_at(s, i);
    return c >= '0' && c <= '9';
}

/* \p{P} plus the ASCII symbols falcon's and the default pattern add. */
static int is_punct_plus(const span *s, int i, const char *extra)
{
    uint32_t c = cp_at(s, i);
    return has_cat(s, i, UC_P) || (c < 0x80 && c && strchr(extra, (int)c));
}
static int is_falcon_punct(const span *s, int i) { return is_punct_plus(s, i, "$+<=>^~|`"); }
static int is_default_punct(const span *s, int i) { return is_punct_plus(s, i, "$+<=>^~|"); }

typedef struct cp_range { uint32_t lo, hi; } cp_range;

static int in_ranges(uint32_t c, const cp_range *r, int n)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid].lo)
            hi = mid - 1;
        else if (c > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/*
** Classes spelled as code point ranges. llama.cpp matches them after
** turning every non-ASCII whitespace character into U+000B, so whitespace
** never belongs to them; the vocabularies' test vectors follow that.
*/
static int in_class(const span *s, int i, const cp_range *r, int n)
{
    return i < s->end && !is_space(s, i) && in_ranges(s->cp[i], r, n);
}

/* [一-龥ࠀ-一가-퟿] of the deepseek patterns */
static const cp_range cjk[] = { { 0x0800, 0x9fa5 }, { 0xac00, 0xd7ff } };
static int is_cjk(const span *s, int i) { return in_class(s, i, cjk, 2); }

/* deepseek-llm's letter class: the cased letters (Lu, Ll, Lt) of an older
** Unicode, as the pattern lists them. */
static const cp_range ds_letters[] = {
    {0x41, 0x5a}, {0x61, 0x7a}, {0xb5, 0xb5}, {0xc0, 0xd6}, {0xd8, 0xf6}, {0xf8, 0x1ba},
    {0x1bc, 0x1bf}, {0x1c4, 0x293}, {0x295, 0x2af}, {0x370, 0x373}, {0x376, 0x377},
    {0x37b, 0x37d}, {0x37f, 0x37f}, {0x386, 0x386}, {0x388, 0x38a}, {0x38c, 0x38c},
    {0x38e, 0x3a1}, {0x3a3, 0x3f5}, {0x3f7, 0x481}, {0x48a, 0x52f}, {0x531, 0x556},
    {0x10a0, 0x10c5}, {0x13a0, 0x13f5}, {0x13f8, 0x13fd}, {0x1c90, 0x1cba}, {0x1cbd, 0x1cbf},
    {0x1d00, 0x1d2b}, {0x1d6b, 0x1d77}, {0x1d79, 0x1d9a}, {0x1e00, 0x1f15}, {0x1f18, 0x1f1d},
    {0x1f20, 0x1f45}, {0x1f48, 0x1f4d}, {0x1f50, 0x1f57}, {0x1f59, 0x1f59}, {0x1f5b, 0x1f5b},
    {0x1f5d, 0x1f5d}, {0x1f5f, 0x1f7d}, {0x1f80, 0x1fb4}, {0x1fb6, 0x1fbc}, {0x1fbe, 0x1fbe},
    {0x1fc2, 0x1fc4}, {0x1fc6, 0x1fcc}, {0x1fd0, 0x1fd3}, {0x1fd6, 0x1fdb}, {0x1fe0, 0x1fec},
    {0x1ff2, 0x1ff4}, {0x1ff6, 0x1ffc}, {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210a, 0x2113},
    {0x2115, 0x2115}, {0x2119, 0x211d}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128},
    {0x212a, 0x212d}, {0x212f, 0x2134}, {0x2139, 0x2139}, {0x213c, 0x213f}, {0x2145, 0x2149},
    {0x214e, 0x214e}, {0x2183, 0x2184}, {0x2c00, 0x2c7b}, {0x2c7e, 0x2ce4}, {0x2ceb, 0x2cee},
    {0x2cf2, 0x2cf3}, {0xa640, 0xa66d}, {0xa680, 0xa69b}, {0xa722, 0xa76f}, {0xa771, 0xa787},
    {0xa78b, 0xa78e}, {0xab70, 0xabbf}, {0xfb00, 0xfb06}, {0xfb13, 0xfb17}, {0xff21, 0xff3a},
    {0xff41, 0xff5a}, {0x10400, 0x1044f}, {0x104b0, 0x104d3}, {0x104d8, 0x104fb},
    {0x10c80, 0x10cb2}, {0x10cc0, 0x10cf2}, {0x118a0, 0x118df}, {0x1e900, 0x1e943},
};
static int is_ds_letter(const span *s, int i)
{
    return in_class(s, i, ds_letters, (int)(sizeof ds_letters / sizeof ds_letters[0]));
}

/* deepseek-llm's [!-/:-~！-／：-～‘-‟　-。] (it does include the ASCII letters) */
static const cp_range ds_punct[] = {
    { 0x21, 0x2f }, { 0x3a, 0x7e }, { 0x2018, 0x201f }, { 0x3000, 0x3002 },
    { 0xff01, 0xff0f }, { 0xff1a, 0xff5e },
};
static int is_ds_punct(const span *s, int i) { return in_class(s, i, ds_punct, 6); }

/* The end of the run of characters of a class starting at i. */
static int run(const span *s, int i, int (*in)(const span *, int))
{
    while (in(s, i))
        i++;
    return i;
}

/* ----------------------------------------------------------- matchers */

/* 's 't 're 've 'm 'll 'd, the letters in either case when fold is set */
static int contraction(const span *s, int i, int fold)
{
    if (cp_at(s, i) != '\'')
        return 0;
    uint32_t a = cp_at(s, i + 1), b = cp_at(s, i + 2);
    if (fold) {
        a |= (a >= 'A' && a <= 'Z') ? 0x20 : 0;
        b |= (b >= 'A' && b <= 'Z') ? 0x20 : 0;
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* \s+(?!\S)|\s+ : whitespace, leaving its last character to the word that
** follows unless the whitespace ends the word. */
static int space_run(const span *s, int i)
{
    int k = run(s, i, is_space);
    if (k - i > 1 && k < s->end)
        return k - i - 1;
    return k - i;
}

static int m_gpt2(const span *s, int i)
{
    int n = contraction(s, i, 0);
    if (n)
        return n;
    int j = i + (cp_at(s, i) == ' ');
    if (is_L(s, j))
        return run(s, j, is_L) - i;
    if (is_N(s, j))
        return run(s, j, is_N) - i;
    if (is_other(s, j))
        return run(s, j, is_other) - i;
    n = space_run(s, i);
    return n ? n : 1;
}

/* What llama3's and gpt-4o's patterns try after their words:
**   \p{N}{1,max_digits} | ?[^\s\p{L}\p{N}]+T* | \s*[\r\n]+ | \s+(?!\S) | \s+
** T being line breaks (and gpt-4o's '/'). */
static int numbers_symbols_spaces(const span *s, int i, int max_digits, int (*tail)(const span *, int))
{
    if (is_N(s, i)) {
        int k = i;
        while (is_N(s, k) && k - i < max_digits)
            k++;
        return k - i;
    }
    int j = i + (cp_at(s, i) == ' ');
    if (is_other(s, j))
        return run(s, run(s, j, is_other), tail) - i;
    /* \s*[\r\n]+ : whitespace through its last line break */
    int nl = 0;
    for (int k = i; is_space(s, k); k++)
        if (is_newline(s, k))
            nl = k + 1;
    if (nl)
        return nl - i;
    int n = space_run(s, i);
    return n ? n : 1;
}

static int llama3_like(const span *s, int i, int max_digits)
{
    int n = contraction(s, i, 1);
    if (n)
        return n;
    if (!is_newline(s, i) && !is_N(s, i) && (is_L(s, i) || is_L(s, i + 1)))
        return run(s, i + 1, is_L) - i;
    return numbers_symbols_spaces(s, i, max_digits, is_newline);
}

static int m_llama3(const span *s, int i) { return llama3_like(s, i, 3); }
static int m_qwen2(const span *s, int i)  { return llama3_like(s, i, 1); }

/*
** gpt-4o (o200k) in the form llama.cpp runs it, where a word is letters
** other than a-z, then letters other than A-Z, each run with an optional
** lead character that is none of \r, \n, a letter or a number:
**   [^\r\n\p{L}\p{N}]?A*B+C? | [^\r\n\p{L}\p{N}]?A+B*C? | \p{N}{1,3}
**   | ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
** with A the letters but a-z, B the letters but A-Z, C a contraction in
** either case. Letters beyond ASCII are in both A and B.
*/
static int is_not_lower(const span *s, int i) { return is_L(s, i) && !(cp_at(s, i) >= 'a' && cp_at(s, i) <= 'z'); }
static int is_not_upper(const span *s, int i) { return is_L(s, i) && !(cp_at(s, i) >= 'A' && cp_at(s, i) <= 'Z'); }
static int is_slash_newline(const span *s, int i) { return is_newline(s, i) || cp_at(s, i) == '/'; }

static int m_gpt4o(const span *s, int i)
{
    int j = i + (i < s->end && !is_newline(s, i) && !is_L(s, i) && !is_N(s, i));
    /* A* then B+: B+ from where A's run ends, else (backtracking) from the
    ** last B inside that run; failing both, A+ with an empty B* */
    int a = run(s, j, is_not_lower), end = 0;
    if (is_not_upper(s, a))
        end = run(s, a, is_not_upper);
    for (int k = a - 1; !end && k >= j; k--)
        if (is_not_upper(s, k))
            end = k + 1;
    if (!end && a > j)
        end = a;
    return end ? end + contraction(s, end, 1) - i : numbers_symbols_spaces(s, i, 3, is_slash_newline);
}

/* \s?X+ for a class X */
static int space_then(const span *s, int i, int (*in)(const span *, int))
{
    int j = i + (is_space(s, i) && in(s, i + 1));
    return in(s, j) ? run(s, j, in) - i : 0;
}

static int m_newline(const span *s, int i)        { return is_newline(s, i); }
static int m_digit(const span *s, int i)          { return is_N(s, i); }
static int m_digits(const span *s, int i)         { return run(s, i, is_N) - i; }
static int m_cjk(const span *s, int i)            { return run(s, i, is_cjk) - i; }
static int m_falcon_punct(const span *s, int i)   { return run(s, i, is_falcon_punct) - i; }
static int m_default_punct(const span *s, int i)  { return run(s, i, is_default_punct) - i; }
static int m_space_letters(const span *s, int i)  { return space_then(s, i, is_L); }
static int m_space_ds_letters(const span *s, int i) { return space_then(s, i, is_ds_letter); }
static int m_space_ds_punct(const span *s, int i) { return space_then(s, i, is_ds_punct); }
static int m_space_punct(const span *s, int i)    { return space_then(s, i, is_P); }

/* [0-9][0-9][0-9] */
static int m_three_digits(const span *s, int i)
{
    return is_ascii_digit(s, i) && is_ascii_digit(s, i + 1) && is_ascii_digit(s, i + 2) ? 3 : 0;
}

/* \s+$ : only whitespace that ends the word. Inside a run that does not
** reach the end nothing can match, so only the run's start looks. */
static int m_trailing_space(const span *s, int i)
{
    if (!is_space(s, i) || (i > s->begin && is_space(s, i - 1)))
        return 0;
    int k = run(s, i, is_space);
    return k == s->end ? k - i : 0;
}

/* ------------------------------------------------------------- table */

static const pretok pretoks[] = {
    { "default", { m_default_punct, m_gpt2, m_digits, m_three_digits }, 0, 0 },
    { "gpt-2 mpt phi-2 olmo jais jina-es jina-de jina-v2-es jina-v2-de",
      { m_gpt2 }, 0, 0 },
    { "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral", { m_llama3 }, 1, 1 },
    { "dbrx smaug-bpe", { m_llama3 }, 0, 0 },
    { "qwen2 deepseek-r1-qwen stablelm2 megrez", { m_qwen2 }, 0, 0 },
    { "gpt-4o llama4", { m_gpt4o }, 0, 0 },
    { "starcoder refact command-r smollm codeshell exaone minerva-7b",
      { m_digit, m_gpt2 }, 0, 0 },
    { "falcon", { m_falcon_punct, m_gpt2, m_three_digits }, 0, 0 },
    { "deepseek-coder", { m_newline, m_space_letters, m_space_punct, m_cjk, m_digit }, 0, 0 },
    { "deepseek-llm", { m_newline, m_space_ds_letters, m_space_ds_punct, m_trailing_space,
                        m_cjk, m_digits }, 0, 0 },
};
#define N_PRETOKS (int)(sizeof pretoks / sizeof pretoks[0])

static int names_contain(const char *names, const char *name, size_t len)
{
    for (const char *p = names; *p; ) {
        size_t n = strcspn(p, " ");
        if (n == len && !memcmp(p, name, len))
            return 1;
        p += n + (p[n] == ' ');
    }
    return 0;
}

const pretok *pretok_find(const char *name, size_t len)
{
    for (int i = 0; i < N_PRETOKS; i++)
        if (names_contain(pretoks[i].names, name, len))
            return &pretoks[i];
    return NULL;
}

const pretok *pretok_default(void) { return &pretoks[0]; }
int pretok_ignore_merges(const pretok *p) { return p->ignore_merges; }
int pretok_add_bos(const pretok *p) { return p->add_bos; }

const char *pretok_names(void)
{
    return "default, gpt-2, mpt, phi-2, olmo, jais, jina-*, llama3, llama-v3, llama-bpe, "
           "falcon3, falcon-h1, pixtral, dbrx, smaug-bpe, qwen2, deepseek-r1-qwen, stablelm2, "
           "megrez, gpt-4o, llama4, starcoder, refact, command-r, smollm, codeshell, exaone, minerva-7b, "
           "falcon, deepseek-coder, deepseek-llm";
}

/* ------------------------------------------------------------ driver */

static int reserve(pretok_buf *b, int n)
{
    if (n <= b->cap)
        return 0;
    int cap = n > 2 * b->cap ? n : 2 * b->cap;
    uint32_t *cp = realloc(b->cp, (size_t)cap * sizeof *cp);
    if (cp)
        b->cp = cp;
    uint8_t *cl = realloc(b->cl, (size_t)cap);
    if (cl)
        b->cl = cl;
    int *off = realloc(b->off, ((size_t)cap + 1) * sizeof *off);
    if (off)
        b->off = off;
    int *c0 = realloc(b->cut[0], ((size_t)cap + 1) * sizeof *c0);
    if (c0)
        b->cut[0] = c0;
    int *c1 = realloc(b->cut[1], ((size_t)cap + 1) * sizeof *c1);
    if (c1)
        b->cut[1] = c1;
    if (!cp || !cl || !off || !c0 || !c1)
        return -1;
    b->cap = cap;
    return 0;
}

/* Decode text into code points and classes; returns their count. */
static int classify(const char *text, int len, pretok_buf *b)
{
    const uint8_t *s = (const uint8_t *)text;
    int n = 0;
    for (int i = 0; i < len; n++) {
        uint32_t c;
        b->off[n] = i;
        i += uc_decode(s + i, (size_t)(len - i), &c);
        b->cp[n] = c;
        b->cl[n] = (uint8_t)(uc_category(c) | (uc_is_space(c) ? CL_SPACE : 0));
    }
    b->off[n] = len;
    return n;
}

/* Split each word in[w] .. in[w+1] (w < n_in) by matcher m into out;
** returns the number of words written. Both lists start at in[0]. */
static int split_stage(matcher m, span *s, const int *in, int n_in, int *out)
{
    int n = 0;
    out[0] = in[0];
    for (int w = 0; w < n_in; w++) {
        s->begin = in[w];
        s->end = in[w + 1];
        int gap = s->begin;
        for (int i = s->begin; i < s->end; ) {
            int len = m(s, i);
            if (!len) {
                i++;
                continue;
            }
            if (gap < i)
                out[++n] = i;
            i += len;
            out[++n] = i;
            gap = i;
        }
        if (gap < s->end)
            out[++n] = s->end;
    }
    return n;
}

int pretok_split(const pretok *p, const char *text, int len, pretok_buf *buf,
                 const int **bounds)
{
    if (reserve(buf, len + 1))
        return -1;
    int n_cp = classify(text, len, buf);
    span s = { buf->cp, buf->cl, 0, n_cp };
    int *in = buf->cut[0], *out = buf->cut[1];
    in[0] = 0;
    in[1] = n_cp;
    int n = n_cp > 0;
    for (int k = 0; k < MAX_STAGES && p->stage[k] && n; k++) {
        n = split_stage(p->stage[k], &s, in, n, out);
        int *t = in;
        in = out;
        out = t;
    }
    for (int i = 0; i <= n; i++)
        in[i] = buf->off[in[i]];
    *bounds = in;
    return n;
}

void pretok_free(pretok_buf *buf)
{
    free(buf->cp);
    free(buf->cl);
    free(buf->off);
    free(buf->cut[0]);
    free(buf->cut[1]);
    memset(buf, 0, sizeof *buf);
}
