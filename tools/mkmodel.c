/*
** mkmodel: write a GGUF model of any llama / qwen2 / qwen3 / phi3 / smollm3 / gemma / gemma2 /
** gemma3 / granite / olmo2 shape with seeded random weights, for tests and benchmarks. The same
** arguments give the same bytes.
**
** The tokenizer inside is either a synthetic byte-level BPE vocabulary of
** exactly n_vocab tokens (the 256 bytes, a few control tokens, then merges
** of existing tokens) or the tokenizer of a vocab-only GGUF (--vocab),
** padded with [PADn] tokens up to n_vocab.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gguf.h"
#include "f16.h"
#include "dequant.h"

typedef struct shape {
    const char *preset, *arch;
    int   n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int   head_dim;      /* 0: n_embd / n_head */
    int   n_rot;         /* 0: head_dim */
    int   n_ctx;
    float rope_base, eps;
    int   tied, bias;
    int   rope_freqs;    /* write a rope_freqs.weight of random factors */
    float rope_scale;    /* > 0: linear rope scaling by this factor */
    int   rope_factors;  /* LongRoPE (phi3): random short and long factors, an attn_factor,
                            an original context of n_ctx / 2 */
    int   window;        /* > 0: attention.sliding_window (gemma2/gemma3/olmo2's local layers) */
    float rope_base_swa; /* the local layers' rope base: gemma3's (unscaled; 0: 1e4), gemma2's
                            (0: key not written, so the global base) */
    float attn_softcap;  /* gemma2: > 0 writes attn_logit_softcapping */
    float final_softcap; /* gemma2, gemma3: > 0 writes final_logit_softcapping */
    /* granite: each > 0 writes its key: embedding_scale (the embeddings' factor),
       residual_scale (each sublayer's output's, before it is added back), attention.scale (the
       scores', for 1/sqrt(head_dim)) and logit_scale (the logits' divisor) */
    float embd_scale, residual_scale, attn_scale, logit_scale;
} shape;

/* Columns: preset, arch, n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim, n_rot,
** n_ctx, rope_base, eps, tied, bias, rope_freqs, rope_scale, rope_factors, window, rope_base_swa,
** attn_softcap, final_softcap, embd_scale, residual_scale, attn_scale, logit_scale. */
static const shape presets[] = {
    /* SmolLM2-135M, Qwen2.5-0.5B, Qwen3-0.6B, Gemma-2-2B, Gemma-3-1B, Granite-3.1-2B and
       OLMo-2-0425-1B shapes */
    { "smol",    "llama", 49152,  576, 30,  9, 3, 1536, 0, 0,  8192, 1e5f, 1e-5f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "qwen05",  "qwen2", 151936, 896, 24, 14, 2, 4864, 0, 0, 32768, 1e6f, 1e-6f, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "qwen3-06", "qwen3", 151936, 1024, 28, 16, 8, 3072, 128, 0, 40960, 1e6f, 1e-6f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "gemma2-2b", "gemma2", 256000, 2304, 26, 8, 4, 9216, 256, 0, 8192, 1e4f, 1e-6f, 1, 0, 0, 0, 0, 4096, 0, 50, 30, 0, 0, 0, 0 },
    { "gemma3-1b", "gemma3", 262144, 1152, 26, 4, 1, 6912, 256, 0, 32768, 1e6f, 1e-6f, 1, 0, 0, 0, 0, 512, 1e4f, 0, 0, 0, 0, 0, 0 },
    { "granite-2b", "granite", 49155, 2048, 40, 32, 8, 8192, 0, 0, 131072, 5e6f, 1e-5f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0.22f, 0.015625f, 8 },
    { "olmo2-1b", "olmo2", 100352, 2048, 16, 16, 16, 8192, 0, 0, 4096, 5e5f, 1e-6f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* tiny models for the tests: vocab 320 = 256 bytes + 3 control + 61 merges */
    { "tiny-llama",            "llama", 320, 64, 2, 4, 4, 96, 0,  0, 64, 1e4f, 1e-5f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-llama-gqa-untied", "llama", 320, 64, 2, 4, 2, 96, 0,  0, 64, 1e4f, 1e-5f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-qwen2",            "qwen2", 320, 64, 2, 4, 2, 96, 0,  0, 64, 1e6f, 1e-6f, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* head size 24, not n_embd / n_head; per-pair rope factors (Llama 3.1 style) */
    { "tiny-llama-wide",       "llama", 320, 64, 2, 4, 1, 96, 24, 0, 64, 1e4f, 1e-5f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* per-head q/k norms, head size 24 with n_embd / n_head 16, as Qwen3's 128 with 64 */
    { "tiny-qwen3",            "qwen3", 320, 64, 2, 4, 2, 96, 24, 0, 64, 1e6f, 1e-6f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* Q, K and V in one matrix, gate and up in another */
    { "tiny-phi3",             "phi3",  320, 64, 2, 4, 2, 96, 0,  0, 64, 1e4f, 1e-5f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* LongRoPE over 8 of 16 dimensions, as Phi-4-mini rotates 96 of 128 */
    { "tiny-phi3-long",        "phi3",  320, 64, 2, 4, 2, 96, 0,  8, 64, 1e4f, 1e-5f, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* 4 layers: the fourth attends without rope */
    { "tiny-smollm3",          "smollm3", 320, 64, 4, 4, 2, 96, 0, 0, 64, 1e4f, 1e-5f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* Gemma 1: embeddings x sqrt(n_embd), GELU gating, rope over halves, always tied; head size 32 */
    { "tiny-gemma",            "gemma", 320, 64, 2, 4, 2, 96, 32, 0, 64, 1e4f, 1e-6f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    /* Gemma 2: layers 0 and 2 local (a window of 11), 1 and 3 global, one rope base; norms after
       attention and FFN; scores and logits softcapped, the caps small enough to bite */
    { "tiny-gemma2",           "gemma2", 320, 64, 4, 4, 2, 96, 32, 0, 64, 1e4f, 1e-6f, 1, 0, 0, 0, 0, 11, 0, 1.5f, 6, 0, 0, 0, 0 },
    /* 6 layers, the sixth global (rope base 1e6, linear scaling x2), the others local (a window
       of 11, base 1e4, unscaled); head size 32, so Q is 128 wide against a width of 64 */
    { "tiny-gemma3",           "gemma3", 320, 64, 6, 4, 1, 96, 32, 0, 64, 1e6f, 1e-6f, 1, 0, 0, 2, 0, 11, 1e4f, 0, 0, 0, 0, 0, 0 },
    /* Granite 3: llama's layout with Granite's embedding, residual and logit scales (12, 0.22,
       8); the scores scaled by 0.75, not 1/sqrt(16) (Granite's own 1/128 or 1/64 would flatten
       the random scores and hide rope); separate output */
    { "tiny-granite",          "granite", 320, 64, 2, 4, 2, 96, 0, 0, 64, 1e4f, 1e-6f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0.22f, 0.75f, 8 },
    /* OLMo 2 with OLMo 3's window: no pre-norms, q and k each RMS-normed over the whole row,
       norms after attention and FFN; layers 0-2 local (a window of 11, the global base
       unscaled), layer 3 global (linear scaling x2); separate output */
    { "tiny-olmo2",            "olmo2", 320, 64, 4, 4, 2, 96, 0, 0, 64, 5e5f, 1e-6f, 0, 0, 0, 2, 0, 11, 0, 0, 0, 0, 0, 0, 0 },
    /* rope over 8 of 16 dimensions (llama.cpp refuses this shape), linear scaling */
    { "tiny-qwen2-rot",        "qwen2", 320, 64, 2, 4, 2, 96, 0,  8, 64, 1e4f, 1e-6f, 1, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
};
#define N_PRESETS (int)(sizeof presets / sizeof presets[0])

/* ------------------------------------------------------------------ random */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in (0, 1) */
static double uniform(uint64_t *s)
{
    return ((double)(splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double normal(uint64_t *s)
{
    double u = uniform(s), v = uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Each tensor's stream depends only on the seed and its name, so adding or
** reordering tensors leaves the others unchanged. */
static uint64_t tensor_stream(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    uint64_t s = seed ^ h;
    splitmix64(&s);
    return s;
}

/* ----------------------------------------------------------------- tensors */

#define MAX_TYPES 16

typedef struct maker {
    gguf_writer   *w;
    const uint32_t *types;    /* the matrices take these in turn; vectors stay F32 */
    int            n_types, next;
    uint64_t       seed;
} maker;

static void put16(uint8_t *p, uint16_t h)
{
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static void quantize_q8_0(const float *x, uint64_t n, uint8_t *out)
{
    for (uint64_t b = 0; b < n / QK8_0; b++, x += QK8_0, out += 2 + QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        put16(out, copse_f32_to_f16(d));
        for (int j = 0; j < QK8_0; j++)
            out[2 + j] = (uint8_t)(int8_t)lrintf(x[j] * id);
    }
}

/* n f32 values converted to type, in a new buffer. */
static void *convert(const float *x, uint64_t n, uint32_t type)
{
    uint8_t *out = malloc(ggml_type_nbytes(type, n));
    if (!out)
        return NULL;
    switch (type) {
    case GGML_TYPE_F32:
        memcpy(out, x, n * sizeof *x);
        break;
    case GGML_TYPE_F16:
        for (uint64_t i = 0; i < n; i++)
            put16(out + 2 * i, copse_f32_to_f16(x[i]));
        break;
    case GGML_TYPE_BF16:
        for (uint64_t i = 0; i < n; i++)
            put16(out + 2 * i, copse_f32_to_bf16(x[i]));
        break;
    case GGML_TYPE_Q8_0:
        quantize_q8_0(x, n, out);
        break;
    }
    return out;
}

/*
** The block formats get random blocks, every bit drawn, so that loading
** them exercises all of each format. Their f16 scale fields are then set:
** a scale of 1, and where the format has a minimum, the one that centres
** the values; then both are scaled so the tensor has the wanted spread.
*/
typedef struct block_scales {
    uint32_t type;
    struct { int off; float v; } f[2];   /* v == 0: no such field */
} block_scales;

static const block_scales block_formats[] = {
    { GGML_TYPE_Q4_0, { { 0, 1 } } },    { GGML_TYPE_Q4_1, { { 0, 1 }, { 2, -7.5f } } },
    { GGML_TYPE_Q5_0, { { 0, 1 } } },    { GGML_TYPE_Q5_1, { { 0, 1 }, { 2, -15.5f } } },
    { GGML_TYPE_Q2_K, { { 80, 1 }, { 82, 1.5f } } }, { GGML_TYPE_Q3_K, { { 108, 1 } } },
    { GGML_TYPE_Q4_K, { { 0, 1 }, { 2, 7.5f } } },   { GGML_TYPE_Q5_K, { { 0, 1 }, { 2, 15.5f } } },
    { GGML_TYPE_Q6_K, { { 208, 1 } } },  { GGML_TYPE_IQ4_NL, { { 0, 1 } } },
    { GGML_TYPE_IQ4_XS, { { 0, 1 } } },
};

static const block_scales *block_format(uint32_t type)
{
    for (size_t i = 0; i < sizeof block_formats / sizeof block_formats[0]; i++)
        if (block_formats[i].type == type)
            return &block_formats[i];
    return NULL;
}

static void set_scales(uint8_t *blocks, uint64_t n_blocks, uint64_t size, const block_scales *bs, float factor)
{
    for (uint64_t b = 0; b < n_blocks; b++)
        for (int i = 0; i < 2 && bs->f[i].v != 0; i++)
            put16(blocks + b * size + bs->f[i].off, copse_f32_to_f16(bs->f[i].v * factor));
}

static void *random_blocks(uint64_t *s, uint64_t n, const block_scales *bs, double std)
{
    uint64_t blck = ggml_type_block(bs->type), size = ggml_type_nbytes(bs->type, blck), nb = n / blck;
    uint8_t *out = malloc(nb * size);
    float *x = malloc(n * sizeof *x);
    if (!out || !x) {
        free(out);
        free(x);
        return NULL;
    }
    for (uint64_t i = 0; i < nb * size; i++)
        out[i] = (uint8_t)splitmix64(s);
    set_scales(out, nb, size, bs, 1);
    dequant(bs->type, out, 0, n, x);
    double sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += (double)x[i] * x[i];
    set_scales(out, nb, size, bs, sum > 0 ? (float)(std / sqrt(sum / (double)n)) : 1);
    free(x);
    return out;
}

/* How a tensor's values are drawn: mean + std * normal, or uniform in [lo, hi]. */
typedef struct init {
    double mean, std, lo, hi;
} init;

static int add_tensor(maker *mk, const char *name, int ne0, int ne1, init in)
{
    uint64_t ne[2] = { (uint64_t)ne0, (uint64_t)(ne1 ? ne1 : 1) };
    uint64_t n = ne[0] * ne[1];
    uint64_t s = tensor_stream(mk->seed, name);
    uint32_t type = ne1 ? mk->types[mk->next++ % mk->n_types] : GGML_TYPE_F32;
    const block_scales *bs = block_format(type);
    if (bs) {
        void *data = random_blocks(&s, n, bs, in.std);
        int rc = data ? gguf_writer_add_tensor(mk->w, name, type, 2, ne, data) : -1;
        free(data);
        return rc;
    }
    float *x = malloc(n * sizeof *x);
    if (!x)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        x[i] = (float)(in.hi > in.lo ? in.lo + (in.hi - in.lo) * uniform(&s) : in.mean + in.std * normal(&s));
    void *data = convert(x, n, type);
    int rc = data ? gguf_writer_add_tensor(mk->w, name, type, ne1 ? 2 : 1, ne, data) : -1;
    free(data);
    free(x);
    return rc;
}

/* Weights scaled by 1/sqrt(fan_in) keep each projection's output near unit
** size; embeddings at 2/sqrt(n_embd) give logits of a few units. */
static init gaussian(double std) { return (init){ 0, std, 0, 0 }; }
static init near_one(void) { return (init){ 1, 0.1, 0, 0 }; }

static int add_matrix(maker *mk, const char *name, int n_in, int n_out)
{
    return add_tensor(mk, name, n_in, n_out, gaussian(1 / sqrt(n_in)));
}

static const char *blk(char *buf, int il, const char *what)
{
    snprintf(buf, 64, "blk.%d.%s", il, what);
    return buf;
}

static int add_weights(maker *mk, const shape *sh)
{
    int d = sh->n_embd, hd = sh->head_dim, q = sh->n_head * hd, kv = sh->n_head_kv * hd, ff = sh->n_ff;
    int rc = add_tensor(mk, "token_embd.weight", d, sh->n_vocab, gaussian(2 / sqrt(d)))
          || add_tensor(mk, "output_norm.weight", d, 0, near_one());
    if (!sh->tied)
        rc = rc || add_tensor(mk, "output.weight", d, sh->n_vocab, gaussian(2 / sqrt(d)));
    if (sh->rope_freqs)
        rc = rc || add_tensor(mk, "rope_freqs.weight", sh->n_rot / 2, 0, (init){ 0, 0, 1, 4 });
    if (sh->rope_factors)
        rc = rc || add_tensor(mk, "rope_factors_long.weight", sh->n_rot / 2, 0, (init){ 0, 0, 1, 8 })
                || add_tensor(mk, "rope_factors_short.weight", sh->n_rot / 2, 0, (init){ 0, 0, 1, 2 });
    int fused = !strcmp(sh->arch, "phi3");   /* attn_qkv, and ffn_up holding gate then up */
    int olmo2 = !strcmp(sh->arch, "olmo2");   /* no norms before attention and ffn */
    /* q/k norms: one a head (qwen3, gemma3), or olmo2's over the whole of Q and of K */
    int qk_norm = !strcmp(sh->arch, "qwen3") || !strcmp(sh->arch, "gemma3") || olmo2;
    int q_norm = olmo2 ? q : hd, k_norm = olmo2 ? kv : hd;
    int post_norm = !strcmp(sh->arch, "gemma2") || !strcmp(sh->arch, "gemma3") || olmo2;   /* after attention and ffn */
    for (int il = 0; il < sh->n_layer && !rc; il++) {
        char b[64];
        if (!olmo2)
            rc = add_tensor(mk, blk(b, il, "attn_norm.weight"), d, 0, near_one());
        if (fused)
            rc = rc || add_matrix(mk, blk(b, il, "attn_qkv.weight"), d, q + 2 * kv);
        else
            rc = rc || add_matrix(mk, blk(b, il, "attn_q.weight"), d, q)
                    || add_matrix(mk, blk(b, il, "attn_k.weight"), d, kv)
                    || add_matrix(mk, blk(b, il, "attn_v.weight"), d, kv);
        rc = rc || add_matrix(mk, blk(b, il, "attn_output.weight"), q, d);
        if (qk_norm)
            rc = rc || add_tensor(mk, blk(b, il, "attn_q_norm.weight"), q_norm, 0, near_one())
                    || add_tensor(mk, blk(b, il, "attn_k_norm.weight"), k_norm, 0, near_one());
        if (post_norm)
            rc = rc || add_tensor(mk, blk(b, il, "post_attention_norm.weight"), d, 0, near_one());
        if (sh->bias)
            rc = rc || add_tensor(mk, blk(b, il, "attn_q.bias"), q, 0, gaussian(0.5))
                    || add_tensor(mk, blk(b, il, "attn_k.bias"), kv, 0, gaussian(0.5))
                    || add_tensor(mk, blk(b, il, "attn_v.bias"), kv, 0, gaussian(0.5));
        if (!olmo2)
            rc = rc || add_tensor(mk, blk(b, il, "ffn_norm.weight"), d, 0, near_one());
        if (fused)
            rc = rc || add_matrix(mk, blk(b, il, "ffn_up.weight"), d, 2 * ff);
        else
            rc = rc || add_matrix(mk, blk(b, il, "ffn_gate.weight"), d, ff)
                    || add_matrix(mk, blk(b, il, "ffn_up.weight"), d, ff);
        rc = rc || add_matrix(mk, blk(b, il, "ffn_down.weight"), ff, d);
        if (post_norm)
            rc = rc || add_tensor(mk, blk(b, il, "post_ffw_norm.weight"), d, 0, near_one());
    }
    return rc;
}

/* A verifier head (search/verifier.c): a value head, cls.weight [n_embd, 1]
** and cls.bias [1]; or a two-class head, cls.weight [n_embd, n_embd] with
** cls.bias, then cls.output.weight [n_embd, 2] with cls.output.bias. */
enum { HEAD_NONE, HEAD_VALUE, HEAD_TWO_CLASS };

static int add_head(maker *mk, const shape *sh, int head)
{
    int d = sh->n_embd;
    if (head == HEAD_VALUE)
        return add_matrix(mk, "cls.weight", d, 1) || add_tensor(mk, "cls.bias", 1, 0, gaussian(0.5));
    if (head == HEAD_TWO_CLASS)
        return add_matrix(mk, "cls.weight", d, d) || add_tensor(mk, "cls.bias", d, 0, gaussian(0.5))
            || add_matrix(mk, "cls.output.weight", d, 2) || add_tensor(mk, "cls.output.bias", 2, 0, gaussian(0.5));
    return 0;
}

/* ---------------------------------------------------- synthetic tokenizer */

/* GPT-2's byte-level encoding: printable bytes stand for themselves, the
** others map in order to U+0100 and up. Returns the UTF-8 length. */
static int byte_to_utf8(int b, char *out)
{
    static int map[256];
    if (!map['!']) {
        int n = 0;
        for (int c = 0; c < 256; c++)
            map[c] = (c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || c >= 0xae ? c : 256 + n++;
    }
    int u = map[b];
    if (u < 0x80) {
        out[0] = (char)u;
        return 1;
    }
    out[0] = (char)(0xc0 | (u >> 6));
    out[1] = (char)(0x80 | (u & 0x3f));
    return 2;
}

/* A set of strings (open addressing, never shrinks) so merges stay unique. */
typedef struct strset {
    const char **slot;
    size_t       mask;
} strset;

static size_t hash(const char *s)
{
    size_t h = 5381;
    while (*s)
        h = h * 33 + (uint8_t)*s++;
    return h;
}

/* Insert s; 0 if it was already there. */
static int strset_add(strset *set, const char *s)
{
    size_t i = hash(s) & set->mask;
    for (; set->slot[i]; i = (i + 1) & set->mask)
        if (!strcmp(set->slot[i], s))
            return 0;
    set->slot[i] = s;
    return 1;
}

typedef struct vocab {
    char   **tok;
    char   **merge;
    int32_t *type;
    int      n, n_merge;
} vocab;

static void vocab_free(vocab *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->tok[i]);
    for (int i = 0; i < v->n_merge; i++)
        free(v->merge[i]);
    free(v->tok);
    free(v->merge);
    free(v->type);
}

enum { TOK_NORMAL = 1, TOK_CONTROL = 3, TOK_UNUSED = 5 };
static const char *const control[] = { "<|endoftext|>", "<|im_start|>", "<|im_end|>" };
#define N_CONTROL 3
#define MAX_MERGED 16   /* bytes of UTF-8 in a merged token */

/* Add token t (taking it) with its type and merge rule m (taken, or NULL);
** 0 if t is already a token, -1 when out of memory. */
static int add_token(vocab *v, strset *set, char *t, int type, char *m)
{
    if (!t || !strset_add(set, t)) {
        free(t);
        free(m);
        return t ? 0 : -1;
    }
    v->tok[v->n] = t;
    v->type[v->n++] = type;
    if (m)
        v->merge[v->n_merge++] = m;
    return 1;
}

/* "a b" or "ab" */
static char *join(const char *a, const char *sep, const char *b)
{
    char *s = malloc(strlen(a) + strlen(sep) + strlen(b) + 1);
    if (s)
        sprintf(s, "%s%s%s", a, sep, b);
    return s;
}

/*
** n tokens: bytes, control tokens, then merges. Merged tokens grow words
** from letters and the space marker, so ordinary text tokenizes into a
** mix of merged and byte tokens.
*/
static int synthetic_vocab(vocab *v, int n, uint64_t seed)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    strset set = { calloc(cap, sizeof(char *)), cap - 1 };
    v->tok = calloc((size_t)n, sizeof *v->tok);
    v->merge = calloc((size_t)n, sizeof *v->merge);
    v->type = calloc((size_t)n, sizeof *v->type);
    int rc = set.slot && v->tok && v->merge && v->type ? 0 : -1;
    for (int b = 0; b < 256 && !rc; b++) {
        char u[3] = { 0 };
        byte_to_utf8(b, u);
        rc = add_token(v, &set, strdup(u), TOK_NORMAL, NULL) < 0;
    }
    for (int i = 0; i < N_CONTROL && !rc; i++)
        rc = add_token(v, &set, strdup(control[i]), TOK_CONTROL, NULL) < 0;
    const int first = 256 + N_CONTROL;
    uint64_t s = seed;
    while (v->n < n && !rc) {
        /* left: a letter, the space or a merged token; right: mostly a letter */
        int merged = v->n - first;
        int r = (int)(splitmix64(&s) % (uint64_t)(27 + merged));
        int a = r < 26 ? 'a' + r : r == 26 ? ' ' : first + r - 27;
        int b = merged && splitmix64(&s) % 4 == 0 ? first + (int)(splitmix64(&s) % (uint64_t)merged)
                                                  : 'a' + (int)(splitmix64(&s) % 26);
        const char *ta = v->tok[a], *tb = v->tok[b];
        if (strlen(ta) + strlen(tb) > MAX_MERGED || !strncmp(tb, v->tok[' '], strlen(v->tok[' '])))
            continue;   /* too long, or a space inside a word */
        rc = add_token(v, &set, join(ta, "", tb), TOK_NORMAL, join(ta, " ", tb)) < 0;
    }
    free(set.slot);
    return rc;
}

/* pre: the pre-tokenizer's name, NULL for the architecture's usual one */
static int add_synthetic_tokenizer(gguf_writer *w, const shape *sh, uint64_t seed, const char *pre)
{
    vocab v = { 0 };
    int rc = synthetic_vocab(&v, sh->n_vocab, seed), qwen = !strncmp(sh->arch, "qwen", 4);
    if (!pre)
        pre = qwen ? "qwen2" : "gpt-2";
    if (!rc)
        rc = gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2")
          || gguf_writer_add_str(w, "tokenizer.ggml.pre", pre)
          || gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, (uint64_t)v.n)
          || gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v.type, (uint64_t)v.n)
          || gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merge, (uint64_t)v.n_merge)
          || gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 256)
          || gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", qwen ? 258 : 256)
          || gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 0);
    vocab_free(&v);
    return rc;
}

/* ------------------------------------------------ tokenizer from a file */

/* The token list, padded with [PADn] up to n entries. */
static int pad_tokens(gguf_writer *w, const char *key, const gguf_array *a, uint64_t n)
{
    char **s = calloc(n, sizeof *s);
    int rc = s ? 0 : -1;
    for (uint64_t i = 0; i < n && !rc; i++) {
        if (i < a->n)
            s[i] = strndup(a->strs[i].ptr, (size_t)a->strs[i].len);
        else if ((s[i] = malloc(32)))
            snprintf(s[i], 32, "[PAD%llu]", (unsigned long long)i);
        rc = s[i] ? 0 : -1;
    }
    if (!rc)
        rc = gguf_writer_add_arr_str(w, key, (const char *const *)s, n);
    for (uint64_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
    return rc;
}

/* A per-token array of 4-byte numbers (types, scores), padded with the
** bytes of pad up to n entries. */
static int pad_numbers(gguf_writer *w, const char *key, const gguf_array *a, uint64_t n, const void *pad)
{
    if (gguf_value_size(a->type) != 4)
        return -1;
    uint8_t *d = malloc(n * 4);
    if (!d)
        return -1;
    memcpy(d, a->data, a->n * 4);
    for (uint64_t i = a->n; i < n; i++)
        memcpy(d + 4 * i, pad, 4);
    int rc = gguf_writer_add_arr(w, key, a->type, d, n);
    free(d);
    return rc;
}

/* Copy one tokenizer key; the per-token arrays grow to n_vocab entries. */
static int copy_value(gguf_writer *w, const char *key, const gguf_value *v, uint64_t n_vocab)
{
    static const int32_t unused = TOK_UNUSED;
    static const float low_score = -1000.0f;
    const gguf_array *a = &v->v.arr;
    if (v->type != GGUF_TYPE_ARRAY || a->n >= n_vocab)
        return gguf_writer_add_val(w, key, v);
    if (!strcmp(key, "tokenizer.ggml.tokens") && a->type == GGUF_TYPE_STRING)
        return pad_tokens(w, key, a, n_vocab);
    if (!strcmp(key, "tokenizer.ggml.token_type") && a->type == GGUF_TYPE_INT32)
        return pad_numbers(w, key, a, n_vocab, &unused);
    if (!strcmp(key, "tokenizer.ggml.scores") && a->type == GGUF_TYPE_FLOAT32)
        return pad_numbers(w, key, a, n_vocab, &low_score);
    return gguf_writer_add_val(w, key, v);
}

/* Tokens in a GGUF's vocabulary, or -1 after saying why it has none. */
static int vocab_file_tokens(const char *path)
{
    gguf_file *g;
    copse_error err;
    const gguf_array *toks;
    if (gguf_open(path, &g, &err)) {
        fprintf(stderr, "mkmodel: %s\n", err.msg);
        return -1;
    }
    int n = -1;
    if (gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, &err))
        fprintf(stderr, "mkmodel: %s: %s\n", path, err.msg);
    else if (toks->n > (1u << 24))
        fprintf(stderr, "mkmodel: %s: %llu tokens is too many\n", path, (unsigned long long)toks->n);
    else
        n = (int)toks->n;
    gguf_close(g);
    return n;
}

/* Every tokenizer.* key of a file vocab_file_tokens accepted (but its chat
** template when the model is given another). */
static int add_file_tokenizer(gguf_writer *w, const char *path, int n_vocab, int own_template)
{
    gguf_file *g;
    if (gguf_open(path, &g, NULL))
        return -1;
    int rc = 0;
    for (uint64_t i = 0; i < g->n_kv && !rc; i++)
        if (!strncmp(g->kv[i].key, "tokenizer.", 10)
            && !(own_template && !strcmp(g->kv[i].key, "tokenizer.chat_template")))
            rc = copy_value(w, g->kv[i].key, &g->kv[i].val, (uint64_t)n_vocab);
    gguf_close(g);
    return rc;
}

/* ---------------------------------------------------------------- metadata */

static int add_hparams(gguf_writer *w, const shape *sh, uint32_t file_type)
{
    char k[128], name[96];
    const char *a = sh->arch;
    int gemma = !strncmp(a, "gemma", 5), gemma3 = !strcmp(a, "gemma3");
    snprintf(name, sizeof name, "copse-random-%s", sh->preset ? sh->preset : a);
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", a, suffix), k)
    int rc = gguf_writer_add_str(w, "general.architecture", a)
          || gguf_writer_add_str(w, "general.name", name)
          || gguf_writer_add_u32(w, "general.file_type", file_type)
          || gguf_writer_add_u32(w, KEY("vocab_size"), (uint32_t)sh->n_vocab)
          || gguf_writer_add_u32(w, KEY("context_length"), (uint32_t)sh->n_ctx)
          || gguf_writer_add_u32(w, KEY("embedding_length"), (uint32_t)sh->n_embd)
          || gguf_writer_add_u32(w, KEY("block_count"), (uint32_t)sh->n_layer)
          || gguf_writer_add_u32(w, KEY("feed_forward_length"), (uint32_t)sh->n_ff)
          || gguf_writer_add_u32(w, KEY("attention.head_count"), (uint32_t)sh->n_head)
          || gguf_writer_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)sh->n_head_kv)
          || gguf_writer_add_f32(w, KEY("rope.freq_base"), sh->rope_base)
          || gguf_writer_add_u32(w, KEY("rope.dimension_count"), (uint32_t)sh->n_rot)
          || gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), sh->eps);
    if (sh->head_dim * sh->n_head != sh->n_embd || gemma)
        rc = rc || gguf_writer_add_u32(w, KEY("attention.key_length"), (uint32_t)sh->head_dim)
                || gguf_writer_add_u32(w, KEY("attention.value_length"), (uint32_t)sh->head_dim);
    if (sh->rope_scale > 0)
        rc = rc || gguf_writer_add_str(w, KEY("rope.scaling.type"), "linear")
                || gguf_writer_add_f32(w, KEY("rope.scaling.factor"), sh->rope_scale);
    if (sh->rope_factors)   /* Phi-3's attn_factor for a context twice the original */
        rc = rc || gguf_writer_add_u32(w, KEY("rope.scaling.original_context_length"), (uint32_t)(sh->n_ctx / 2))
                || gguf_writer_add_f32(w, KEY("rope.scaling.attn_factor"),
                                       (float)sqrt(1 + log(2.0) / log(sh->n_ctx / 2.0)));
    if (sh->window > 0)
        rc = rc || gguf_writer_add_u32(w, KEY("attention.sliding_window"), (uint32_t)sh->window);
    /* gemma3: llama.cpp's default is 1e4 too, but real files write it; gemma2's files don't */
    if (gemma3 || sh->rope_base_swa > 0)
        rc = rc || gguf_writer_add_f32(w, KEY("rope.freq_base_swa"), sh->rope_base_swa);
    /* gemma2's and gemma3's caps, granite's scales: each written only when positive */
    const struct { const char *key; float v; } opt[] = {
        { "attn_logit_softcapping", sh->attn_softcap }, { "final_logit_softcapping", sh->final_softcap },
        { "embedding_scale", sh->embd_scale },          { "residual_scale", sh->residual_scale },
        { "attention.scale", sh->attn_scale },          { "logit_scale", sh->logit_scale },
    };
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
        if (opt[i].v > 0)
            rc = rc || gguf_writer_add_f32(w, KEY(opt[i].key), opt[i].v);
#undef KEY
    return rc;
}

/* -------------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: mkmodel [--preset NAME] [OPTIONS] -o FILE.gguf\n"
        "Write a GGUF model with seeded random weights.\n\n"
        "  --preset NAME      start from a preset shape (below); options override it\n"
        "  --arch A           llama, qwen2, qwen3, phi3, smollm3, gemma, gemma2, gemma3,\n"
        "                     granite or olmo2\n"
        "  --n-vocab N --n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N\n"
        "  --head-dim N       head size (default n_embd / n_head)\n"
        "  --n-rot N          dimensions rope rotates (default the head size)\n"
        "  --n-ctx N          context length\n"
        "  --rope-base F --eps F\n"
        "  --rope-scale F     linear rope scaling factor (default none; gemma3, olmo2: their\n"
        "                     global layers only)\n"
        "  --window N         attention.sliding_window, 0 for none (gemma3: all but every\n"
        "                     sixth layer attend to the last N positions; gemma2: the even\n"
        "                     layers, and 0 leaves the key out, which means 4096; olmo2:\n"
        "                     three layers of every four, rotating with the global base)\n"
        "  --rope-base-swa F  the sliding-window layers' rope base (gemma3: default 1e4;\n"
        "                     gemma2: default none written, so the global base)\n"
        "  --attn-softcap F   gemma2: attn_logit_softcapping, 0 to leave the key out\n"
        "                     (llama.cpp then caps at 50)\n"
        "  --final-softcap F  gemma2, gemma3: final_logit_softcapping, 0 to leave it out\n"
        "                     (gemma2 is then capped at 30, gemma3 not at all)\n"
        "  --embd-scale F --residual-scale F --attn-scale F --logit-scale F\n"
        "                     granite: embedding_scale, residual_scale, attention.scale\n"
        "                     and logit_scale (the granite presets give all four); 0 leaves\n"
        "                     the key out: a factor of 1, 1/sqrt(head size) for the scores,\n"
        "                     and no logit_scale is a file llama.cpp refuses\n"
        "  --rope-freqs 0|1   write rope_freqs.weight with random factors\n"
        "  --rope-factors 0|1 LongRoPE: random short and long factors (phi3), an original\n"
        "                     context of n_ctx / 2 and its attn_factor\n"
        "  --tied 0|1         output projection shared with token_embd (gemma, gemma2: always;\n"
        "                     olmo2: never)\n"
        "  --bias 0|1         q/k/v biases (qwen2 has them)\n"
        "  --type T[,T...]    the matrices' type (default f32): f32, f16, bf16, q8_0, or\n"
        "                     random blocks of q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k,\n"
        "                     q5_k, q6_k, iq4_nl, iq4_xs; with a list, the matrices\n"
        "                     take its types in turn, in file order\n"
        "  --seed N           default 1\n"
        "  --vocab FILE       copy the tokenizer of a (vocab-only) GGUF, padded to n_vocab\n"
        "  --pre NAME         the synthetic vocabulary's pre-tokenizer (default gpt-2, or\n"
        "                     qwen2 for the qwen architectures)\n"
        "  --chat-template T  write T as tokenizer.chat_template (instead of --vocab's)\n"
        "  --head H           none, value or two-class: add a random verifier (PRM) head\n"
        "  -o FILE            output path\n\npresets:");
    for (int i = 0; i < N_PRESETS; i++)
        fprintf(f, " %s", presets[i].preset);
    fprintf(f, "\n");
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "mkmodel: %s takes a whole number from %ld to %ld\n", opt, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_float(const char *opt, const char *s, float *out)
{
    char *end;
    float v = s ? strtof(s, &end) : 0;
    if (!s || !*s || *end || !(v > 0) || !isfinite(v)) {
        fprintf(stderr, "mkmodel: %s takes a positive number\n", opt);
        return -1;
    }
    *out = v;
    return 0;
}

/* A softcap or a granite scale: a positive number, or 0 for none (the key left out). */
static int parse_cap(const char *opt, const char *s, float *out)
{
    if (s && !strcmp(s, "0")) {
        *out = 0;
        return 0;
    }
    return parse_float(opt, s, out);
}

typedef struct options {
    shape       sh;
    uint32_t    types[MAX_TYPES], file_type;
    int         n_types;
    uint64_t    seed;
    const char *vocab, *out, *pre, *chat_template;
    int         vocab_given, head;
} options;

/* The integer options and where each goes. */
static int *int_option(options *o, const char *name)
{
    static const char *const names[] = {
        "--n-vocab", "--n-embd", "--n-layer", "--n-head", "--n-head-kv", "--n-ff",
        "--head-dim", "--n-rot", "--n-ctx", "--tied", "--bias", "--rope-freqs", "--rope-factors",
        "--window",
    };
    int *const dest[] = {
        &o->sh.n_vocab, &o->sh.n_embd, &o->sh.n_layer, &o->sh.n_head, &o->sh.n_head_kv, &o->sh.n_ff,
        &o->sh.head_dim, &o->sh.n_rot, &o->sh.n_ctx, &o->sh.tied, &o->sh.bias, &o->sh.rope_freqs,
        &o->sh.rope_factors, &o->sh.window,
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i]))
            return dest[i];
    return NULL;
}

/* The options parse_cap reads and where each goes. */
static float *cap_option(options *o, const char *name)
{
    static const char *const names[] = {
        "--attn-softcap", "--final-softcap", "--embd-scale", "--residual-scale", "--attn-scale",
        "--logit-scale",
    };
    float *const dest[] = {
        &o->sh.attn_softcap, &o->sh.final_softcap, &o->sh.embd_scale, &o->sh.residual_scale,
        &o->sh.attn_scale, &o->sh.logit_scale,
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i]))
            return dest[i];
    return NULL;
}

/* A type or a comma-separated list; the file type is the first one's. */
static int parse_type(const char *s, options *o)
{
    static const struct { const char *name; uint32_t type, file_type; } types[] = {
        { "f32", GGML_TYPE_F32, 0 },       { "f16", GGML_TYPE_F16, 1 },
        { "q8_0", GGML_TYPE_Q8_0, 7 },     { "bf16", GGML_TYPE_BF16, 32 },
        { "q4_0", GGML_TYPE_Q4_0, 2 },     { "q4_1", GGML_TYPE_Q4_1, 3 },
        { "q5_0", GGML_TYPE_Q5_0, 8 },     { "q5_1", GGML_TYPE_Q5_1, 9 },
        { "q2_k", GGML_TYPE_Q2_K, 10 },    { "q3_k", GGML_TYPE_Q3_K, 12 },
        { "q4_k", GGML_TYPE_Q4_K, 15 },    { "q5_k", GGML_TYPE_Q5_K, 17 },
        { "q6_k", GGML_TYPE_Q6_K, 18 },    { "iq4_nl", GGML_TYPE_IQ4_NL, 25 },
        { "iq4_xs", GGML_TYPE_IQ4_XS, 30 },
    };
    o->n_types = 0;
    for (const char *p = s; p && o->n_types < MAX_TYPES;) {
        size_t len = strcspn(p, ","), i = 0;
        while (i < sizeof types / sizeof types[0] &&
               (strlen(types[i].name) != len || strncmp(p, types[i].name, len)))
            i++;
        if (i == sizeof types / sizeof types[0])
            break;
        if (!o->n_types)
            o->file_type = types[i].file_type;
        o->types[o->n_types++] = types[i].type;
        if (!p[len])
            return 0;
        p += len + 1;
    }
    fprintf(stderr, "mkmodel: --type takes up to %d of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1,\n"
            "q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl and iq4_xs, separated by commas\n", MAX_TYPES);
    return -1;
}

static int parse_args(int argc, char **argv, options *o)
{
    /* the preset first, wherever it is, so other options override it */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--preset")) {
            int j = 0;
            while (j < N_PRESETS && strcmp(argv[i + 1], presets[j].preset))
                j++;
            if (j == N_PRESETS) {
                fprintf(stderr, "mkmodel: unknown preset '%s'\n", argv[i + 1]);
                return -1;
            }
            o->sh = presets[j];
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        int *dest = int_option(o, a);
        float *cap;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "mkmodel: %s needs a value (or is unknown)\n", a);
            return -1;
        }
        i++;
        if (dest) {
            if (parse_long(a, v, 0, 1 << 24, &n))
                return -1;
            *dest = (int)n;
            o->vocab_given |= !strcmp(a, "--n-vocab");
        } else if (!strcmp(a, "--preset")) {
            continue;
        } else if (!strcmp(a, "--arch")) {
            static const char *const archs[] = { "llama", "qwen2", "qwen3", "phi3", "smollm3",
                                                 "gemma", "gemma2", "gemma3", "granite", "olmo2" };
            size_t k = 0, n_archs = sizeof archs / sizeof archs[0];
            while (k < n_archs && strcmp(v, archs[k]))
                k++;
            if (k == n_archs) {
                fprintf(stderr, "mkmodel: --arch takes llama, qwen2, qwen3, phi3, smollm3, gemma, gemma2, gemma3, granite or olmo2\n");
                return -1;
            }
            o->sh.arch = archs[k];
        } else if (!strcmp(a, "--rope-base")) {
            if (parse_float(a, v, &o->sh.rope_base))
                return -1;
        } else if (!strcmp(a, "--eps")) {
            if (parse_float(a, v, &o->sh.eps))
                return -1;
        } else if (!strcmp(a, "--rope-scale")) {
            if (parse_float(a, v, &o->sh.rope_scale))
                return -1;
        } else if (!strcmp(a, "--rope-base-swa")) {
            if (parse_float(a, v, &o->sh.rope_base_swa))
                return -1;
        } else if ((cap = cap_option(o, a))) {
            if (parse_cap(a, v, cap))
                return -1;
        } else if (!strcmp(a, "--type")) {
            if (parse_type(v, o))
                return -1;
        } else if (!strcmp(a, "--seed")) {
            if (parse_long(a, v, 0, 0x7fffffffL, &n))
                return -1;
            o->seed = (uint64_t)n;
        } else if (!strcmp(a, "--vocab")) {
            o->vocab = v;
        } else if (!strcmp(a, "--pre")) {
            o->pre = v;
        } else if (!strcmp(a, "--chat-template")) {
            o->chat_template = v;
        } else if (!strcmp(a, "--head")) {
            static const char *const heads[] = { "none", "value", "two-class" };
            o->head = -1;
            for (int h = 0; h < 3; h++)
                if (!strcmp(v, heads[h]))
                    o->head = h;
            if (o->head < 0) {
                fprintf(stderr, "mkmodel: --head takes none, value or two-class\n");
                return -1;
            }
        } else if (!strcmp(a, "-o")) {
            o->out = v;
        } else {
            fprintf(stderr, "mkmodel: unknown option '%s'\n", a);
            return -1;
        }
    }
    return 0;
}

/* Fill in defaults and refuse shapes llama.cpp and copse would reject. */
static int check_shape(options *o)
{
    shape *sh = &o->sh;
    if (!sh->head_dim && sh->n_head)
        sh->head_dim = sh->n_embd / sh->n_head;
    if (!sh->n_rot)
        sh->n_rot = sh->head_dim;
    if (!sh->n_head_kv)
        sh->n_head_kv = sh->n_head;
    int gemma2 = !strcmp(sh->arch, "gemma2"), gemma3 = !strcmp(sh->arch, "gemma3");
    int olmo2 = !strcmp(sh->arch, "olmo2");
    if (!sh->rope_base_swa && gemma3)
        sh->rope_base_swa = 1e4f;
    const char *bad = NULL;
    if (!o->out)
        bad = "no output file (-o)";
    else if (!sh->n_embd || !sh->n_layer || !sh->n_head || !sh->n_ff || !sh->n_ctx || !sh->head_dim)
        bad = "the shape is incomplete: give a preset or every --n-* option";
    else if (sh->n_head % sh->n_head_kv)
        bad = "n_head must be a multiple of n_head_kv";
    else if (sh->n_rot % 2 || sh->n_rot > sh->head_dim)
        bad = "n_rot must be even and at most the head size";
    else if (sh->n_vocab < 256 + N_CONTROL && !o->vocab)
        bad = "the synthetic vocabulary needs n_vocab >= 259";
    else if (!sh->tied && (!strcmp(sh->arch, "gemma") || gemma2))
        bad = "gemma and gemma2 always project with token_embd (llama.cpp refuses an output.weight)";
    else if (sh->tied && olmo2)
        bad = "olmo2 always has an output.weight (llama.cpp requires one): give --tied 0";
    else if (olmo2 && (sh->head_dim * sh->n_head != sh->n_embd || sh->n_rot != sh->head_dim))
        bad = "olmo2's head size is n_embd / n_head, all of it rotated (as llama.cpp requires)";
    else if (sh->attn_softcap > 0 && !gemma2)
        bad = "--attn-softcap is gemma2's";
    else if (sh->final_softcap > 0 && !gemma2 && !gemma3)
        bad = "--final-softcap is gemma2's and gemma3's";
    else if (sh->rope_base_swa > 0 && !gemma2 && !gemma3)
        bad = "--rope-base-swa is gemma2's and gemma3's";
    else if ((sh->embd_scale > 0 || sh->residual_scale > 0 || sh->attn_scale > 0 || sh->logit_scale > 0) &&
             strcmp(sh->arch, "granite"))
        bad = "--embd-scale, --residual-scale, --attn-scale and --logit-scale are granite's";
    if (bad) {
        fprintf(stderr, "mkmodel: %s\n", bad);
        return -1;
    }
    for (int i = 0; i < o->n_types; i++) {
        uint32_t blck = ggml_type_block(o->types[i]);
        if (sh->n_embd % blck || sh->n_ff % blck || (sh->n_head * sh->head_dim) % blck) {
            char buf[16];
            fprintf(stderr, "mkmodel: %s needs n_embd, n_ff and n_head * head_dim to be multiples of %u\n",
                    ggml_type_name(o->types[i], buf), blck);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o = { .sh = { .arch = "llama", .rope_base = 1e4f, .eps = 1e-5f, .tied = 1 },
                  .types = { GGML_TYPE_F32 }, .n_types = 1, .seed = 1 };
    if (parse_args(argc, argv, &o))
        return 2;
    if (o.vocab) {
        int n = vocab_file_tokens(o.vocab);
        if (n < 0)
            return 1;
        if (!o.vocab_given && !o.sh.preset)
            o.sh.n_vocab = n;
        if (n > o.sh.n_vocab) {
            fprintf(stderr, "mkmodel: %s has %d tokens, more than n_vocab %d (set --n-vocab)\n",
                    o.vocab, n, o.sh.n_vocab);
            return 2;
        }
    }
    if (check_shape(&o))
        return 2;
    gguf_writer *w = gguf_writer_new(3);
    maker mk = { .w = w, .types = o.types, .n_types = o.n_types, .seed = o.seed };
    copse_error err;
    int rc = !w || add_hparams(w, &o.sh, o.file_type)
          || (o.vocab ? add_file_tokenizer(w, o.vocab, o.sh.n_vocab, o.chat_template != NULL)
                      : add_synthetic_tokenizer(w, &o.sh, o.seed, o.pre))
          || (o.chat_template && gguf_writer_add_str(w, "tokenizer.chat_template", o.chat_template))
          || add_weights(&mk, &o.sh) || add_head(&mk, &o.sh, o.head);
    if (rc)
        fprintf(stderr, "mkmodel: out of memory building %s\n", o.out);
    else if ((rc = gguf_writer_write(w, o.out, &err)))
        fprintf(stderr, "mkmodel: %s\n", err.msg);
    gguf_writer_free(w);
    return rc ? 1 : 0;
}
