/*
** Tokenizer tests: the pre-tokenizers' word splitting, small SentencePiece
** and BPE vocabularies built here with exact expected ids, load errors,
** and every test vector of ../shared/vocab (llama.cpp's), with round trips.
*/
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include "gguf.h"
#include "pretok.h"
#include "tokenizer.h"
#include "unicode.h"

#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------- pre-tokenizers */

/* The words of text under pre-tokenizer name, joined by '|'. */
static const char *split(const char *name, const char *text)
{
    static char out[1024];
    pretok_buf buf = {0};
    const int *b;
    const pretok *p = pretok_find(name, strlen(name));
    ck_assert_msg(p != NULL, "no pre-tokenizer %s", name);
    int n = pretok_split(p, text, (int)strlen(text), &buf, &b);
    ck_assert_int_ge(n, 0);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (i)
            out[k++] = '|';
        memcpy(out + k, text + b[i], (size_t)(b[i + 1] - b[i]));
        k += (size_t)(b[i + 1] - b[i]);
    }
    out[k] = '\0';
    ck_assert_int_eq(b[0], 0);
    ck_assert_int_eq(b[n], (int)strlen(text));
    pretok_free(&buf);
    return out;
}

#define SPLITS(name, text, want) ck_assert_str_eq(split(name, text), want)

START_TEST(pretok_gpt2)
{
    SPLITS("gpt-2", "Hello world", "Hello| world");
    SPLITS("gpt-2", "  Hello", " | Hello");
    SPLITS("gpt-2", "I've 123 !!", "I|'ve| 123| !!");
    SPLITS("gpt-2", "I'VE", "I|'|VE");              /* contractions are case-sensitive */
    SPLITS("gpt-2", "a\n\nb", "a|\n|\n|b");
    SPLITS("gpt-2", "hello   ", "hello|   ");        /* trailing whitespace stays whole */
    SPLITS("gpt-2", "a \tb", "a| |\t|b");
    SPLITS("gpt-2", "a\xff b", "a|\xff| b");         /* a stray byte is a symbol */
    SPLITS("gpt-2", "\xc3\x84pfel 4\xc2\xbd", "\xc3\x84pfel| 4\xc2\xbd");  /* ½ is a number */
    /* a CJK Extension H letter (Unicode 15.0) ends a word, not a symbol run */
    SPLITS("gpt-2", "x\xf0\xb1\x8d\x90's", "x\xf0\xb1\x8d\x90|'s");
    SPLITS("mpt", "x  y", "x| | y");
    SPLITS("gpt-2", "", "");
}
END_TEST

START_TEST(pretok_llama3_qwen2_gpt4o)
{
    SPLITS("llama3", "Hello123456 world's", "Hello|123|456| world|'s");
    SPLITS("llama3", "WE'RE", "WE|'RE");              /* here they ignore case */
    SPLITS("llama3", "\n\n  x", "\n\n| | x");
    SPLITS("llama3", "!!!\n\nabc", "!!!\n\n|abc");
    SPLITS("llama3", "(hi)", "(hi|)");
    SPLITS("llama3", "a \n b", "a| \n| b");
    SPLITS("llama-bpe", "12345", "123|45");
    SPLITS("qwen2", "abc 12345", "abc| |1|2|3|4|5");
    SPLITS("qwen2", "  \t x", "  \t| x");
    /* gpt-4o: a word is letters but a-z, then letters but A-Z; its lead may
    ** be punctuation; a contraction in either case ends it */
    SPLITS("gpt-4o", "helloWorld HELLOworld", "hello|World| HELLOworld");
    SPLITS("gpt-4o", "(hello I'M", "(hello| I'M");
    SPLITS("gpt-4o", "\xc3\x89\xc3\x89" "a ABC's", "\xc3\x89\xc3\x89" "a| ABC's");   /* ÉÉa: É is in both classes */
    SPLITS("gpt-4o", "\xc3\xa9" "AB x", "\xc3\xa9|AB| x");   /* éAB: B+ backs up to the é */
    SPLITS("gpt-4o", "abc 12345", "abc| |123|45");
    SPLITS("gpt-4o", "a/\n\nb", "a|/\n\n|b");
}
END_TEST

START_TEST(pretok_staged)
{
    SPLITS("starcoder", "a 12 b", "a| |1|2| b");
    SPLITS("refact", "x1", "x|1");
    SPLITS("falcon", "Hi, you 12345!", "Hi|,| you| |123|45|!");
    SPLITS("falcon", "a~~b", "a|~~|b");
    SPLITS("default", "a+b=3456", "a|+|b|=|345|6");
    SPLITS("deepseek-coder", "int x = 10;\nreturn", "int| x| = |1|0|;|\n|return");
    SPLITS("deepseek-coder", "\xe4\xb8\x96\xe7\x95\x8c!", "\xe4\xb8\x96\xe7\x95\x8c|!");
    SPLITS("deepseek-llm", "Hello  \xe4\xb8\x96\xe7\x95\x8c 42\n",
           "Hello|  |\xe4\xb8\x96\xe7\x95\x8c| |42|\n");
    SPLITS("deepseek-llm", "ab  ", "ab|  ");
    ck_assert_ptr_null(pretok_find("no-such-pre", 11));
}
END_TEST

START_TEST(unicode_basics)
{
    ck_assert_int_eq(uc_category('a'), UC_L);
    ck_assert_int_eq(uc_category(0x4e16), UC_L);     /* 世 */
    ck_assert_int_eq(uc_category(0xbd), UC_N);       /* ½ */
    ck_assert_int_eq(uc_category(0x301), UC_M);
    ck_assert_int_eq(uc_category(0x2014), UC_P);     /* — */
    ck_assert_int_eq(uc_category(0x1f600), UC_S);    /* 😀 */
    ck_assert_int_eq(uc_category(0x0378), UC_CN);
    /* Unicode 15.1, as llama.cpp's tables: CJK Extension H (15.0) and I
    ** (15.1) are letters, Garay (16.0) is not assigned yet. */
    ck_assert_int_eq(uc_category(0x31350), UC_L);
    ck_assert_int_eq(uc_category(0x2ebf0), UC_L);
    ck_assert_int_eq(uc_category(0x10d50), UC_CN);
    ck_assert(uc_is_space(0x3000) && uc_is_space('\n') && !uc_is_space(0x200b));
    for (int b = 0; b < 256; b++)
        ck_assert_int_eq(uc_cp_to_byte(uc_byte_to_cp((uint8_t)b)), b);
    ck_assert_uint_eq(uc_byte_to_cp(' '), 0x120);    /* Ġ */
    ck_assert_int_eq(uc_cp_to_byte(0x144), -1);
    uint32_t cp;
    ck_assert_int_eq(uc_decode((const uint8_t *)"\xe2\x96\x81", 3, &cp), 3);
    ck_assert_uint_eq(cp, 0x2581);
    ck_assert_int_eq(uc_decode((const uint8_t *)"\xe2\x96", 2, &cp), 1);      /* truncated */
    ck_assert_uint_eq(cp, 0xfffd);
    ck_assert_int_eq(uc_decode((const uint8_t *)"\xc0\x80", 2, &cp), 1);      /* overlong */
    ck_assert_int_eq(uc_decode((const uint8_t *)"\xed\xa0\x80", 3, &cp), 1);  /* surrogate */
}
END_TEST

/* ------------------------------------------------- vocabularies built here */

typedef struct vocab {
    uint8_t         *img;
    gguf_file       *g;
    copse_tokenizer *t;
} vocab;

/* Build w's image (freeing w) and load its tokenizer; returns the status
** with the message in e. */
static int vocab_open(gguf_writer *w, vocab *v, copse_error *e)
{
    uint64_t size;
    memset(v, 0, sizeof *v);
    ck_assert_int_eq(gguf_writer_build(w, &v->img, &size, e), COPSE_OK);
    gguf_writer_free(w);
    ck_assert_int_eq(gguf_open_buffer(v->img, size, &v->g, e), COPSE_OK);
    return tokenizer_load(v->g, &v->t, e);
}

static void vocab_close(vocab *v)
{
    tokenizer_free(v->t);
    gguf_close(v->g);
    free(v->img);
}

static void add_tokens(gguf_writer *w, const char *const *toks, const int32_t *types, int n)
{
    ck_assert_int_eq(gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n), 0);
    ck_assert_int_eq(gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types,
                                         (uint64_t)n), 0);
}

static void fmt_ids(char *s, size_t cap, const int32_t *ids, int n)
{
    size_t k = 0;
    s[0] = '\0';
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(s + k, cap - k, " %d", (int)ids[i]);
}

static void assert_ids(const copse_tokenizer *t, const char *text, unsigned flags,
                       const int32_t *want, int n_want)
{
    int32_t got[256];
    char g[512], w[512];
    int n = tokenizer_encode(t, text, strlen(text), flags, got, N_OF(got));
    ck_assert_int_ge(n, 0);
    fmt_ids(g, sizeof g, got, n < N_OF(got) ? n : N_OF(got));
    fmt_ids(w, sizeof w, want, n_want);
    ck_assert_msg(n == n_want && !memcmp(got, want, (size_t)n * sizeof *got),
                  "'%s' (flags %u): want [%s ] got [%s ]", text, flags, w, g);
}

#define IDS(...) (const int32_t[]){ __VA_ARGS__ }, N_OF(((const int32_t[]){ __VA_ARGS__ }))
#define ASSERT_IDS(t, text, flags, ...) assert_ids(t, text, flags, IDS(__VA_ARGS__))

/* Decode into a static buffer, checking the returned length. */
static const char *decode(const copse_tokenizer *t, const int32_t *ids, int n, unsigned flags)
{
    static char buf[4096];
    int len = tokenizer_decode(t, ids, n, flags, buf, sizeof buf);
    ck_assert_int_ge(len, 0);
    ck_assert_int_lt(len, (int)sizeof buf);
    ck_assert_uint_eq(strlen(buf), (size_t)len);
    return buf;
}

#define DECODES(t, flags, want, ...) \
    ck_assert_str_eq(decode(t, IDS(__VA_ARGS__), flags), want)

enum { ADD = COPSE_TOK_ADD_SPECIAL, PARSE = COPSE_TOK_PARSE_SPECIAL };

/*
** SentencePiece: <unk> <s> </s>, 256 byte tokens (ids 3..258), then
**   259 ▁  260 a  261 b  262 c  263 ab  264 ▁a  265 bc  266 ▁ab  267 <ud>  268 ca  269 c▁
** with scores making "bc" beat "ab" (and "ca", equal to it) beat "▁a".
*/
enum { S_SP = 259, S_A, S_B, S_C, S_AB, S_SPA, S_BC, S_SPAB, S_UD, S_CA, S_CSP };
#define BYTE_ID(b) (3 + (b))

static gguf_writer *spm_writer(int add_eos)
{
    static char bytes[256][8];
    static const struct { const char *s; float score; int type; } rest[] = {
        { "\xe2\x96\x81", -1.0f, 1 }, { "a", -2.0f, 1 }, { "b", -2.0f, 1 }, { "c", -2.0f, 1 },
        { "ab", -0.5f, 1 }, { "\xe2\x96\x81" "a", -0.7f, 1 }, { "bc", -0.3f, 1 },
        { "\xe2\x96\x81" "ab", -0.2f, 1 }, { "<ud>", 0.0f, 4 }, { "ca", -0.5f, 1 },
        { "c\xe2\x96\x81", -0.1f, 1 },
    };
    enum { N = 3 + 256 + N_OF(rest) };
    const char *toks[N] = { "<unk>", "<s>", "</s>" };
    int32_t types[N] = { 2, 3, 3 };
    float scores[N] = { 0 };
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[3 + b] = bytes[b];
        types[3 + b] = 6;
    }
    for (int i = 0; i < N_OF(rest); i++) {
        toks[259 + i] = rest[i].s;
        types[259 + i] = rest[i].type;
        scores[259 + i] = rest[i].score;
    }
    gguf_writer *w = gguf_writer_new(3);
    gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    add_tokens(w, toks, types, N);
    gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, N);
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    if (add_eos)
        gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", 1);
    return w;
}

START_TEST(spm_merges_by_score)
{
    vocab v;
    copse_error e;
    ck_assert_int_eq(vocab_open(spm_writer(0), &v, &e), COPSE_OK);
    const copse_tokenizer *t = v.t;
    ck_assert_int_eq(tokenizer_n_vocab(t), 270);
    ASSERT_IDS(t, "ab", 0, S_SPAB);                  /* ▁ a b -> ▁ ab -> ▁ab */
    ASSERT_IDS(t, "abc", 0, S_SPA, S_BC);            /* bc first, then ▁a */
    ASSERT_IDS(t, "xabc", 0, S_SP, BYTE_ID('x'), S_A, S_BC);    /* bc, not ab */
    ASSERT_IDS(t, "cab", 0, S_SP, S_CA, S_B);        /* equal scores: leftmost first */
    ASSERT_IDS(t, "c d", 0, S_SP, S_CSP, BYTE_ID('d'));   /* merges cross a space */
    ASSERT_IDS(t, "a d", 0, S_SPA, S_SP, BYTE_ID('d'));
    ASSERT_IDS(t, "ab", ADD, 1, S_SPAB);             /* BOS by default, no EOS */
    ASSERT_IDS(t, " c", 0, S_SP, S_SP, S_C);         /* the prefix space comes on top */
    ASSERT_IDS(t, "\xc3\xa9", 0, S_SP, BYTE_ID(0xc3), BYTE_ID(0xa9));   /* byte fallback */
    ASSERT_IDS(t, "<s>", 0, S_SP, BYTE_ID('<'), BYTE_ID('s'), BYTE_ID('>'));
    ASSERT_IDS(t, "a<s>b", PARSE, S_SPA, 1, S_SP, S_B);
    ASSERT_IDS(t, "a<ud>b", 0, S_SPA, S_UD, S_SP, S_B);    /* user-defined: always */
    ASSERT_IDS(t, "", ADD, 1);
    ck_assert_int_eq(tokenizer_encode(t, "", 0, 0, NULL, 0), 0);
    vocab_close(&v);

    ck_assert_int_eq(vocab_open(spm_writer(1), &v, &e), COPSE_OK);
    ASSERT_IDS(v.t, "abc", ADD, 1, S_SPA, S_BC, 2);
    vocab_close(&v);
}
END_TEST

START_TEST(spm_decode)
{
    vocab v;
    copse_error e;
    ck_assert_int_eq(vocab_open(spm_writer(1), &v, &e), COPSE_OK);
    const copse_tokenizer *t = v.t;
    DECODES(t, 0, " ab", S_SPAB);
    DECODES(t, ADD, "ab", S_SPAB);                   /* the prefix space goes */
    DECODES(t, ADD, "ab", 1, S_SPAB, 2);
    DECODES(t, 0, " ab", 1, S_SPAB, 2);              /* control tokens dropped */
    DECODES(t, PARSE, "<s> ab</s>", 1, S_SPAB, 2);
    DECODES(t, 0, " \xc3\xa9", S_SP, BYTE_ID(0xc3), BYTE_ID(0xa9));
    DECODES(t, ADD | PARSE, "a<s>b", 1, S_SPA, 1, S_SP, S_B, 2);
    DECODES(t, ADD, "a<ud>b", S_SPA, S_UD, S_SP, S_B);
    DECODES(t, ADD, "ab c", S_SPAB, S_SP, S_C);      /* only the first space goes */

    char buf[8];
    ck_assert_int_eq(tokenizer_piece(t, BYTE_ID('A'), buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "A");
    ck_assert_int_eq(tokenizer_piece(t, 1, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "<s>");
    ck_assert_int_eq(tokenizer_piece(t, S_SPAB, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, " ab");
    ck_assert_int_eq(tokenizer_piece(t, 270, buf, sizeof buf), -COPSE_E_ARG);

    /* Round trips, with flags or with the prefix space accounted for. */
    static const char *texts[] = { "abc", "  ab  c", "\xc3\xa9t\xc3\xa9\n", "x<s>y", "" };
    for (int i = 0; i < N_OF(texts); i++) {
        int32_t ids[64];
        char want[64];
        int n = tokenizer_encode(t, texts[i], strlen(texts[i]), ADD, ids, N_OF(ids));
        ck_assert_str_eq(decode(t, ids, n, ADD), texts[i]);
        n = tokenizer_encode(t, texts[i], strlen(texts[i]), 0, ids, N_OF(ids));
        snprintf(want, sizeof want, "%s%s", *texts[i] ? " " : "", texts[i]);
        ck_assert_str_eq(decode(t, ids, n, 0), want);
    }
    ck_assert(tokenizer_is_eog(t, 2) && !tokenizer_is_eog(t, 1));
    ck_assert_int_eq(tokenizer_bos(t), 1);
    ck_assert_int_eq(tokenizer_eos(t), 2);
    ck_assert_int_eq(tokenizer_find(t, "<ud>", 4), S_UD);
    ck_assert_int_eq(tokenizer_find(t, "<0x41>", 6), BYTE_ID('A'));
    ck_assert_int_eq(tokenizer_find(t, "zz", 2), -1);
    vocab_close(&v);
}
END_TEST

/*
** Byte-level BPE: the 256 byte characters as ids 0..255, then
**   256 he  257 ll  258 hell  259 hello  260 Ġw  261 or  262 Ġwor
**   263 <|endoftext|> (control)  264 <think> (user-defined)  265 aa  266 xyz  267 abc
**   268 el
** The merge "x y" makes "xy", which is no token; "e l" ranks after "h e".
*/
enum { B_HE = 256, B_LL, B_HELL, B_HELLO, B_GW, B_OR, B_GWOR, B_EOT, B_THINK, B_AA, B_XYZ, B_ABC,
       B_EL };

static gguf_writer *bpe_writer(const char *pre)
{
    static char bytes[256][4];
    static const char *rest[] = {
        "he", "ll", "hell", "hello", "\xc4\xa0w", "or", "\xc4\xa0wor",
        "<|endoftext|>", "<think>", "aa", "xyz", "abc", "el",
    };
    static const char *merges[] = {
        "h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "o r", "\xc4\xa0w or",
        "a a", "x y", "xy z", "e l",
    };
    enum { N = 256 + N_OF(rest) };
    const char *toks[N];
    int32_t types[N];
    for (int b = 0; b < 256; b++) {
        bytes[b][uc_encode(uc_byte_to_cp((uint8_t)b), (uint8_t *)bytes[b])] = '\0';
        toks[b] = bytes[b];
        types[b] = 1;
    }
    for (int i = 0; i < N_OF(rest); i++) {
        toks[256 + i] = rest[i];
        types[256 + i] = 256 + i == B_EOT ? 3 : 256 + i == B_THINK ? 4 : 1;
    }
    gguf_writer *w = gguf_writer_new(3);
    gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre)
        gguf_writer_add_str(w, "tokenizer.ggml.pre", pre);
    add_tokens(w, toks, types, N);
    gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", merges, N_OF(merges));
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", B_EOT);
    return w;
}

START_TEST(bpe_merges_by_rank)
{
    vocab v;
    copse_error e;
    ck_assert_int_eq(vocab_open(bpe_writer("gpt-2"), &v, &e), COPSE_OK);
    const copse_tokenizer *t = v.t;
    ASSERT_IDS(t, "hello world", 0, B_HELLO, B_GWOR, 'l', 'd');
    ASSERT_IDS(t, "hello world", ADD, B_HELLO, B_GWOR, 'l', 'd');  /* BPE adds no BOS by default */
    ASSERT_IDS(t, "hel", 0, B_HE, 'l');              /* lower rank first */
    ASSERT_IDS(t, "el", 0, B_EL);
    ASSERT_IDS(t, "aaa", 0, B_AA, 'a');              /* equal ranks: leftmost first */
    ASSERT_IDS(t, "xyz", 0, B_XYZ);                  /* through "xy", which is no token */
    ASSERT_IDS(t, "xy", 0, 'x', 'y');                /* ... and so falls back to bytes */
    ASSERT_IDS(t, "abc", 0, 'a', 'b', 'c');
    ASSERT_IDS(t, "\n", 0, '\n');                     /* the token of byte character Ċ */
    ASSERT_IDS(t, "<think>hello", 0, B_THINK, B_HELLO);
    ASSERT_IDS(t, "<|endoftext|>", PARSE, B_EOT);
    ASSERT_IDS(t, "<|endoftext|>", 0, '<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>');
    DECODES(t, 0, "hello world", B_HELLO, B_GWOR, 'l', 'd');
    DECODES(t, 0, "hello", B_HELLO, B_EOT);
    DECODES(t, PARSE, "hello<|endoftext|>", B_HELLO, B_EOT);
    DECODES(t, 0, "<think>", B_THINK);
    ck_assert(tokenizer_is_eog(t, B_EOT));

    /* Any bytes survive the round trip, malformed UTF-8 included. */
    static const char *texts[] = { "\xff\x00 \xc3\xa9", "  tabs\t\tand\r\nlines\n\n", "h\xe4\xb8" };
    for (int i = 0; i < N_OF(texts); i++) {
        size_t len = i == 0 ? 5 : strlen(texts[i]);
        int32_t ids[64];
        char buf[64];
        int n = tokenizer_encode(t, texts[i], len, 0, ids, N_OF(ids));
        ck_assert_int_eq(tokenizer_decode(t, ids, n, 0, buf, sizeof buf), (int)len);
        ck_assert(!memcmp(buf, texts[i], len));
    }
    vocab_close(&v);

    /* llama3 keeps a word that is a token whole (ignore_merges). */
    ck_assert_int_eq(vocab_open(bpe_writer("llama3"), &v, &e), COPSE_OK);
    ASSERT_IDS(v.t, "abc", 0, B_ABC);
    ASSERT_IDS(v.t, "hello world", 0, B_HELLO, B_GWOR, 'l', 'd');
    vocab_close(&v);

    /* No tokenizer.ggml.pre: llama.cpp's default pattern. */
    ck_assert_int_eq(vocab_open(bpe_writer(NULL), &v, &e), COPSE_OK);
    ASSERT_IDS(v.t, "hello world", 0, B_HELLO, B_GWOR, 'l', 'd');
    vocab_close(&v);
}
END_TEST

START_TEST(buffers_and_arguments)
{
    vocab v;
    copse_error e;
    ck_assert_int_eq(vocab_open(bpe_writer("gpt-2"), &v, &e), COPSE_OK);
    const copse_tokenizer *t = v.t;
    int32_t ids[2] = { -7, -7 };
    ck_assert_int_eq(tokenizer_encode(t, "hello world", 11, 0, ids, 1), 4);  /* cut short */
    ck_assert_int_eq(ids[0], B_HELLO);
    ck_assert_int_eq(ids[1], -7);
    ck_assert_int_eq(tokenizer_encode(t, "hello world", 11, 0, NULL, 0), 4);
    ck_assert_int_eq(tokenizer_encode(t, NULL, 3, 0, ids, 2), -COPSE_E_ARG);
    ck_assert_int_eq(tokenizer_encode(t, "a", 1, 0, ids, -1), -COPSE_E_ARG);
    ck_assert_int_eq(tokenizer_encode(t, "a", 1, 4, ids, 2), -COPSE_E_ARG);
    ck_assert_int_eq(tokenizer_encode(NULL, "a", 1, 0, ids, 2), -COPSE_E_ARG);

    const int32_t toks[] = { B_HELLO, B_GWOR };
    char buf[4] = "zzz";
    ck_assert_int_eq(tokenizer_decode(t, toks, 2, 0, buf, 3), 9);   /* "hello wor" */
    ck_assert(!memcmp(buf, "hel", 3));
    ck_assert_int_eq(tokenizer_decode(t, toks, 2, 0, NULL, 0), 9);
    const int32_t bad[] = { B_HELLO, 269 };
    ck_assert_int_eq(tokenizer_decode(t, bad, 2, 0, buf, 4), -COPSE_E_ARG);
    ck_assert_int_eq(tokenizer_decode(t, toks, -1, 0, buf, 4), -COPSE_E_ARG);
    ck_assert_int_eq(tokenizer_piece(t, -1, buf, 4), -COPSE_E_ARG);
    ck_assert_int_eq(tokenizer_piece(t, ' ', buf, 4), 1);
    ck_assert_str_eq(buf, " ");
    vocab_close(&v);
}
END_TEST

/* ------------------------------------------------------ copse tokenize */

START_TEST(cli_tokenize)
{
    char vocab_path[1024], cmd[4096], out[1024];
    const char *copse = tu_copse_bin("cli_tokenize");
    if (!copse)
        return;
    snprintf(vocab_path, sizeof vocab_path, "%s/test_tokenizer_bpe.gguf", tu_build_dir());
    copse_error e;
    gguf_writer *w = bpe_writer("gpt-2");
    gguf_writer_add_str(w, "general.architecture", "gpt2");
    ck_assert_int_eq(gguf_writer_write(w, vocab_path, &e), COPSE_OK);
    gguf_writer_free(w);

    snprintf(cmd, sizeof cmd, "'%s' tokenize -m '%s' --ids 'hello world' 2>&1", copse, vocab_path);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "259 262 108 100\n");
    snprintf(cmd, sizeof cmd, "printf 'hel\\n\\001' | '%s' tokenize -m '%s' 2>&1", copse, vocab_path);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "256\t'he'\n108\t'l'\n10\t'\\n'\n1\t'\\x01'\n");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --parse-special -m '%s' --ids '<|endoftext|>' 2>&1",
             copse, vocab_path);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "263\n");
    snprintf(cmd, sizeof cmd, "printf 'hel\\n\\001\\377' | '%s' tokenize -m '%s' --no-bos --json 2>&1",
             copse, vocab_path);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "{\"n_tokens\": 5, \"ids\": [256, 108, 10, 1, 255], "
                          "\"pieces\": [\"he\", \"l\", \"\\n\", \"\\u0001\", \"\xef\xbf\xbd\"]}\n");

    snprintf(cmd, sizeof cmd, "'%s' tokenize -m '%s.none' hi 2>&1", copse, vocab_path);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, ".none") && strchr(out, '\n') == out + strlen(out) - 1,
                  "want one line naming the file: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize -m '%s' --bogus hi 2>&1", copse, vocab_path);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "'%s' tokenize hi 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --help", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "--parse-special"));
    unlink(vocab_path);
}
END_TEST

/* ------------------------------------------------------------ load errors */

static gguf_writer *minimal(const char *model, const char *const *toks, int n)
{
    gguf_writer *w = gguf_writer_new(3);
    if (model)
        gguf_writer_add_str(w, "tokenizer.ggml.model", model);
    if (toks)
        gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    return w;
}

/* Loading w fails with code and a message containing what. */
static void assert_load_fails(gguf_writer *w, int code, const char *what)
{
    vocab v;
    copse_error e;
    ck_assert_int_eq(vocab_open(w, &v, &e), code);
    ck_assert_msg(strstr(e.msg, what) != NULL, "message '%s' lacks '%s'", e.msg, what);
    ck_assert_ptr_null(v.t);
    vocab_close(&v);
}

START_TEST(load_errors)
{
    static const char *ab[] = { "a", "b", "ab" };
    static const char *dup[] = { "a", "b", "a" };
    static const char *bad_merge[] = { "ab" };
    gguf_writer *w;

    assert_load_fails(minimal(NULL, ab, 3), COPSE_E_FORMAT, "tokenizer.ggml.model");
    assert_load_fails(minimal("bert", ab, 3), COPSE_E_UNSUPPORTED, "'bert'");
    assert_load_fails(minimal("llama", NULL, 0), COPSE_E_FORMAT, "tokenizer.ggml.tokens");
    assert_load_fails(minimal("llama", dup, 3), COPSE_E_FORMAT, "token 2");
    assert_load_fails(minimal("gpt2", ab, 3), COPSE_E_FORMAT, "merges");

    w = minimal("gpt2", ab, 3);
    gguf_writer_add_str(w, "tokenizer.ggml.pre", "klingon");
    assert_load_fails(w, COPSE_E_UNSUPPORTED, "'klingon'");

    w = minimal("gpt2", ab, 3);
    gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", bad_merge, 1);
    assert_load_fails(w, COPSE_E_FORMAT, "merge 0");

    w = minimal("llama", ab, 3);
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 3);
    assert_load_fails(w, COPSE_E_FORMAT, "eos_token_id = 3");

    w = minimal("llama", ab, 3);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
    assert_load_fails(w, COPSE_E_FORMAT, "bos_token_id");

    w = minimal("llama", ab, 3);      /* a negative id means none */
    gguf_writer_add_i32(w, "tokenizer.ggml.bos_token_id", -1);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
    assert_load_fails(w, COPSE_E_FORMAT, "bos_token_id is missing");

    int32_t types[2] = { 1, 1 };
    w = minimal("llama", ab, 3);
    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 2);
    assert_load_fails(w, COPSE_E_FORMAT, "token_type");

    w = minimal("llama", ab, 3);
    gguf_writer_add_str(w, "tokenizer.ggml.scores", "high");
    assert_load_fails(w, COPSE_E_FORMAT, "scores");

    float nan_scores[3] = { 0, __builtin_nanf(""), 0 };
    w = minimal("llama", ab, 3);
    gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, nan_scores, 3);
    assert_load_fails(w, COPSE_E_FORMAT, "token 1 has a NaN score");

    /* A padding id past the vocabulary is ignored, as converters write it so. */
    vocab v;
    copse_error e;
    w = minimal("llama", ab, 3);
    gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id", 3);
    ck_assert_int_eq(vocab_open(w, &v, &e), COPSE_OK);
    /* Without byte tokens or <unk>, a character no token covers cannot be encoded. */
    int32_t ids[8];
    ck_assert_int_eq(tokenizer_encode(v.t, "ab", 2, 0, ids, 8), -COPSE_E_UNSUPPORTED);
    vocab_close(&v);
}
END_TEST

/* What no token spells: SentencePiece's <unk>, but never a BPE file's
** "unknown" token, which is usually its end-of-text. */
START_TEST(unspellable_bytes)
{
    static const char *spm[] = { "<unk>", "\xe2\x96\x81", "a" };
    static const char *bpe[] = { "<|endoftext|>", "a", "b", "ab" };
    static const char *merges[] = { "a b" };
    int32_t types[4] = { 2, 1, 1, 1 };
    vocab v;
    copse_error e;
    gguf_writer *w = minimal("llama", spm, 3);
    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 3);
    gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    ck_assert_int_eq(vocab_open(w, &v, &e), COPSE_OK);
    ASSERT_IDS(v.t, "a\xc3\xa9", 0, 1, 2, 0, 0);
    vocab_close(&v);

    types[0] = 3;
    w = minimal("gpt2", bpe, 4);
    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 4);
    gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    ck_assert_int_eq(vocab_open(w, &v, &e), COPSE_OK);
    ASSERT_IDS(v.t, "ab", 0, 3);
    int32_t ids[8];
    ck_assert_int_eq(tokenizer_encode(v.t, "abc", 3, 0, ids, 8), -COPSE_E_UNSUPPORTED);
    vocab_close(&v);

    /* DeepSeek-Coder's user-defined "ÿ" stands for that character, not
    ** for the byte 0xff, whose GPT-2 character it shares */
    static const char *ds[] = { "<|endoftext|>", "a", "\xc3\xbf" };
    int32_t ds_types[3] = { 3, 1, 4 };
    w = minimal("gpt2", ds, 3);
    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, ds_types, 3);
    gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    ck_assert_int_eq(vocab_open(w, &v, &e), COPSE_OK);
    ASSERT_IDS(v.t, "a\xc3\xbf", 0, 1, 2);
    DECODES(v.t, 0, "a\xc3\xbf", 1, 2);
    ck_assert_int_eq(tokenizer_encode(v.t, "a\xff", 2, 0, ids, 8), -COPSE_E_UNSUPPORTED);
    vocab_close(&v);
}
END_TEST

/* A token that ends generation is control even where the file says
** user-defined: plain text never spells it, so a user cannot end a
** sequence by typing it. */
START_TEST(eog_text_is_control)
{
    static const char *toks[] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "<", "/", "s", ">" };
    int32_t types[9] = { 2, 3, 4, 1, 1, 1, 1, 1, 1 };
    vocab v;
    copse_error e;
    gguf_writer *w = minimal("llama", toks, 9);
    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 9);
    ck_assert_int_eq(vocab_open(w, &v, &e), COPSE_OK);
    ck_assert(tokenizer_is_eog(v.t, 2));
    ASSERT_IDS(v.t, "a</s>", 0, 3, 4, 5, 6, 7, 8);
    ASSERT_IDS(v.t, "a</s>", COPSE_TOK_PARSE_SPECIAL, 3, 4, 2);
    DECODES(v.t, 0, " a", 3, 4, 2);
    vocab_close(&v);
}
END_TEST

/* ------------------------------------------------- llama.cpp's test vectors */

/* Token ids of one .out line; returns the count. */
static int parse_ids(const char *line, int32_t *ids, int cap)
{
    int n = 0;
    char *end;
    for (const char *p = line; *p && *p != '\n'; p = end) {
        long v = strtol(p, &end, 10);
        ck_assert_msg(end != p, "bad .out line '%.40s'", line);
        ck_assert_int_lt(n, cap);
        ids[n++] = (int32_t)v;
    }
    return n;
}

typedef struct vec_result {
    int  pass, total, round_trips;
    char first_failure[768];
} vec_result;

static void note_failure(vec_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_failure(vec_result *r, const char *fmt, ...)
{
    if (r->first_failure[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->first_failure, sizeof r->first_failure, fmt, ap);
    va_end(ap);
}

/* One case: its ids must match, and decoding must give the text back
** (SentencePiece puts a space in front, which COPSE_TOK_ADD_SPECIAL removes). */
static void check_case(const copse_tokenizer *t, int spm, const char *text, size_t len,
                       const char *want_line, int k, vec_result *r)
{
    enum { CAP = 4096 };
    static int32_t want[CAP], got[CAP];
    static char back[4 * CAP];
    int n_want = parse_ids(want_line, want, CAP);
    int n = tokenizer_encode(t, text, len, 0, got, CAP);
    r->total++;
    if (n == n_want && !memcmp(got, want, (size_t)n * sizeof *got)) {
        r->pass++;
    } else {
        char w[256], g[256];
        fmt_ids(w, sizeof w, want, n_want);
        fmt_ids(g, sizeof g, got, n < 0 ? 0 : n > CAP ? CAP : n);
        note_failure(r, "case %d '%.*s': expected [%.200s ] got [%.200s ]", k,
                     (int)(len > 40 ? 40 : len), text, w, g);
        return;
    }
    int m = tokenizer_decode(t, got, n, spm ? COPSE_TOK_ADD_SPECIAL : 0, back, sizeof back);
    int m0 = tokenizer_decode(t, got, n, 0, back + 2 * CAP, 2 * CAP);
    int spaced = !spm || len == 0 || (m0 == (int)len + 1 && back[2 * CAP] == ' ');
    if (m == (int)len && !memcmp(back, text, len) && spaced)
        r->round_trips++;
    else
        note_failure(r, "case %d '%.*s' decodes to '%.*s'", k, (int)(len > 40 ? 40 : len), text,
                     m < 0 ? 0 : m > 40 ? 40 : m, back);
}

/* All cases of name.inp / name.out; the .inp cases each end with SEP. */
static vec_result run_vectors(const char *dir, const char *name)
{
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    vec_result r;
    memset(&r, 0, sizeof r);
    char rel[512];
    copse_error e;
    gguf_file *g;
    copse_tokenizer *t;
    ck_assert_int_eq(gguf_open(tu_path(dir, name), &g, &e), COPSE_OK);
    int rc = tokenizer_load(g, &t, &e);
    ck_assert_msg(rc == COPSE_OK, "%s: %s", name, e.msg);
    gguf_str model;
    ck_assert_int_eq(gguf_get_str(g, "tokenizer.ggml.model", &model, &e), COPSE_OK);
    snprintf(rel, sizeof rel, "%s.inp", name);
    char *inp = tu_read_file(tu_path(dir, rel), NULL);
    snprintf(rel, sizeof rel, "%s.out", name);
    char *out = tu_read_file(tu_path(dir, rel), NULL);
    ck_assert_msg(inp && out, "%s: unreadable test vectors", name);
    const char *line = out;
    for (char *c = inp, *end; (end = strstr(c, SEP)) != NULL; c = end + strlen(SEP)) {
        ck_assert_msg(*line, "%s: fewer .out lines than cases", name);
        check_case(t, model.len == 5, c, (size_t)(end - c), line, r.total + 1, &r);
        line = strchr(line, '\n');
        line = line ? line + 1 : "";
    }
    free(inp);
    free(out);
    tokenizer_free(t);
    gguf_close(g);
    return r;
}

START_TEST(shared_vocab_vectors)
{
    const char *shared = tu_shared_dir();
    if (!shared) {
        tu_skip("shared_vocab_vectors", "../shared is absent");
        return;
    }
    char dir[1024];     /* tu_path's buffers get reused */
    snprintf(dir, sizeof dir, "%s/vocab", shared);
    DIR *d = opendir(dir);
    if (!d) {
        tu_skip("shared_vocab_vectors", "../shared/vocab is absent");
        return;
    }
    int files = 0, failed = 0;
    char report[4096] = "";
    size_t k = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL; ) {
        size_t n = strlen(de->d_name);
        if (n < 9 || strcmp(de->d_name + n - 9, ".gguf.inp"))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 4), de->d_name);
        vec_result r = run_vectors(dir, name);
        files++;
        int ok = r.pass == r.total && r.round_trips == r.total && r.total > 0;
        failed += !ok;
        if (!ok && k < sizeof report)
            k += (size_t)snprintf(report + k, sizeof report - k, "\n  %s: %d/%d match, %d/%d round"
                                  " trips; first failure: %s", name, r.pass, r.total,
                                  r.round_trips, r.total, r.first_failure);
    }
    closedir(d);
    ck_assert_msg(files > 0, "no *.gguf.inp in %s", dir);
    ck_assert_msg(!failed, "%d of %d vocabularies fail:%s", failed, files, report);
}
END_TEST

Suite *copse_suite_tokenizer(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, pretok_gpt2);
    tcase_add_test(tc, pretok_llama3_qwen2_gpt4o);
    tcase_add_test(tc, pretok_staged);
    tcase_add_test(tc, unicode_basics);
    tcase_add_test(tc, spm_merges_by_score);
    tcase_add_test(tc, spm_decode);
    tcase_add_test(tc, bpe_merges_by_rank);
    tcase_add_test(tc, buffers_and_arguments);
    tcase_add_test(tc, cli_tokenize);
    tcase_add_test(tc, load_errors);
    tcase_add_test(tc, unspellable_bytes);
    tcase_add_test(tc, eog_text_is_control);
    tcase_add_test(tc, shared_vocab_vectors);
    suite_add_tcase(s, tc);
    return s;
}
