/*
** Loading a model: the architecture and hyper-parameters from the GGUF
** metadata, the tokenizer, then every tensor the forward pass needs,
** checked for presence, shape and type.
**
** Matrices are packed as int8 for the kernel tier (q8.h): Q8_0 ones bit
** for bit, the others decoded (dequant.h) and quantized, so a Q4_K file
** takes about twice its size in memory. A matrix whose rows are not whole
** blocks of 32 stays f32 (no real model has one). On the reference path
** (weights_f32) F32 tensors are used in place in the mapping and the rest
** are expanded once to f32 copies the model owns. Norms and biases are
** always f32. The token embedding is read from the mapping one row per
** token, whatever its type, so it costs no memory of its own; when the
** output projection is tied to it, that projection is packed like any
** other matrix.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "dequant.h"
#include "kv.h"
#include "model.h"
#include "error.h"

/* What differs between the supported architectures. */
typedef struct arch_desc {
    const char  *name;
    rope_pairing rope;
    int          qkv_bias;
    int          qk_norm;   /* each query and key head RMS-normed before rope */
    int          fused;     /* attn_qkv may hold Q, K, V; ffn_up holds gate then up */
    int          nope_step; /* every this many layers, the last uses no rope (0: none) */
    int          gemma;     /* 1: Gemma: embedding scaled by sqrt(n_embd), GELU; 2: Gemma 2 and
                               3 too: each sublayer's output RMS-normed before the residual add,
                               local layers, score and logit soft caps (read_gemma) */
    int          granite;   /* scales of the embedding, residuals, scores and logits (read_granite) */
    int          olmo;      /* OLMo 2: no norms before the sublayers, their outputs normed after;
                               Q and K each RMS-normed over all heads at once; local layers */
} arch_desc;

static const arch_desc archs[] = {
    { "llama",   ROPE_ADJACENT, 0, 0, 0, 0, 0, 0, 0 },
    { "qwen2",   ROPE_HALVES,   1, 0, 0, 0, 0, 0, 0 },
    { "qwen3",   ROPE_HALVES,   0, 1, 0, 0, 0, 0, 0 },
    { "phi3",    ROPE_HALVES,   0, 0, 1, 0, 0, 0, 0 },
    { "smollm3", ROPE_ADJACENT, 0, 0, 0, 4, 0, 0, 0 },   /* layers 4, 8, ... attend without positions */
    { "gemma",   ROPE_HALVES,   0, 0, 0, 0, 1, 0, 0 },
    { "gemma2",  ROPE_HALVES,   0, 0, 0, 0, 2, 0, 0 },
    { "gemma3",  ROPE_HALVES,   0, 1, 0, 0, 2, 0, 0 },
    { "granite", ROPE_ADJACENT, 0, 0, 0, 0, 0, 1, 0 },
    { "olmo2",   ROPE_HALVES,   0, 0, 0, 0, 0, 0, 1 },
};

/* Every dimension read from a file must lie in [1, MAX_DIM]: far above any
** real model, low enough that products of two fit comfortably in 64 bits
** and single dimensions in int. */
#define MAX_DIM (1 << 24)

#define N_LAYER_MATRICES 9   /* the model_matrix fields of model_layer */

typedef struct loader {
    copse_model     *m;
    const arch_desc *arch;
    copse_error     *err;
    int              swa_step;     /* of every this many layers all but the last are local, */
    const gguf_array *swa_layers;  /* unless this says which are (bools, one a layer) */
    float            rope_base_swa;
    int              swa_scaled;   /* the local layers' angles take the linear scaling too */
    uint8_t         *used;         /* [n_tensors] whether the model reads each tensor */
    int              weights_8bit; /* copse_model_params.weights_8bit */
    uint8_t         *stack_buf;    /* stacked(): parts copied together, kept for the next */
    size_t           stack_cap;
} loader;

static const char *path_of(const loader *L) { return L->m->gguf->path; }

/* ---------------------------------------------------------------- metadata */

static void arch_key(const loader *L, const char *suffix, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%s", L->arch->name, suffix);
}

static int missing(loader *L, const char *key)
{
    return copse_fail(L->err, COPSE_E_FORMAT, "%s: missing metadata key '%s'", path_of(L), key);
}

/* A dimension: required when def < 0, else def when absent. */
static int read_dim(loader *L, const char *suffix, int def, int *out)
{
    char key[128];
    uint32_t v;
    arch_key(L, suffix, key, sizeof key);
    int rc = gguf_get_u32(L->m->gguf, key, &v, L->err);
    if (rc == COPSE_E_ARG) {
        if (def < 0)
            return missing(L, key);
        *out = def;
        return COPSE_OK;
    }
    if (rc)
        return rc;
    if (v < 1 || v > MAX_DIM)
        return copse_fail(L->err, COPSE_E_FORMAT, "%s: metadata '%s' is %u, outside [1, %d]",
                          path_of(L), key, v, MAX_DIM);
    *out = (int)v;
    return COPSE_OK;
}

/* A positive finite float: required when def is NAN, else def when absent. */
static int read_real(loader *L, const char *suffix, float def, float *out)
{
    char key[128];
    arch_key(L, suffix, key, sizeof key);
    int rc = gguf_get_f32(L->m->gguf, key, out, L->err);
    if (rc == COPSE_E_ARG) {
        if (isnan(def))
            return missing(L, key);
        *out = def;
        return COPSE_OK;
    }
    if (rc)
        return rc;
    if (!(*out > 0) || !isfinite(*out))
        return copse_fail(L->err, COPSE_E_FORMAT, "%s: metadata '%s' is %g, not a positive number",
                          path_of(L), key, (double)*out);
    return COPSE_OK;
}

/* A copy of an optional string key, "" when absent. */
static int read_str(loader *L, const char *key, char **out)
{
    gguf_str s = { 0, "" };
    int rc = gguf_get_str(L->m->gguf, key, &s, L->err);
    if (rc && rc != COPSE_E_ARG)
        return rc;
    *out = strndup(s.ptr, (size_t)s.len);
    if (!*out)
        return copse_fail(L->err, COPSE_E_NOMEM, "out of memory");
    return COPSE_OK;
}

static int read_arch(loader *L)
{
    copse_model *m = L->m;
    int rc = read_str(L, "general.architecture", &m->arch);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(m->arch, archs[i].name))
            L->arch = &archs[i];
    if (!L->arch)
        return copse_fail(L->err, COPSE_E_UNSUPPORTED, "%s: unknown architecture '%s' (copse runs llama, qwen2, qwen3, phi3, smollm3, gemma, gemma2, gemma3, granite, "
                          "olmo2)",
                          path_of(L), m->arch);
    m->rope = L->arch->rope;
    return COPSE_OK;
}

/* Mixture-of-experts and rope scaling other than linear change the maths:
** refuse them rather than run them wrongly. Returns the linear factor. */
static int read_unsupported(loader *L, float *rope_scale)
{
    char key[128];
    uint32_t n_expert = 0;
    arch_key(L, "expert_count", key, sizeof key);
    if (gguf_get_u32(L->m->gguf, key, &n_expert, NULL) == COPSE_OK && n_expert > 0)
        return copse_fail(L->err, COPSE_E_UNSUPPORTED, "%s: mixture-of-experts models (%s = %u) are not supported",
                          path_of(L), key, n_expert);
    gguf_str type = { 0, "" };
    arch_key(L, "rope.scaling.type", key, sizeof key);
    gguf_get_str(L->m->gguf, key, &type, NULL);
    *rope_scale = 1;
    if (type.len == 0 || (type.len == 4 && !memcmp(type.ptr, "none", 4)))
        return COPSE_OK;
    if (type.len == 6 && !memcmp(type.ptr, "linear", 6))
        return read_real(L, "rope.scaling.factor", NAN, rope_scale);
    return copse_fail(L->err, COPSE_E_UNSUPPORTED, "%s: rope scaling '%.*s' is not supported",
                      path_of(L), (int)type.len, type.ptr);
}

static int read_hparams(loader *L, float *rope_scale)
{
    copse_model_info *hp = &L->m->info;
    int rc, key_len, val_len;
    if ((rc = read_dim(L, "context_length", -1, &hp->n_ctx_train)) ||
        (rc = read_dim(L, "embedding_length", -1, &hp->n_embd)) ||
        (rc = read_dim(L, "block_count", -1, &hp->n_layer)) ||
        (rc = read_dim(L, "feed_forward_length", -1, &hp->n_ff)) ||
        (rc = read_dim(L, "attention.head_count", -1, &hp->n_head)) ||
        (rc = read_dim(L, "attention.head_count_kv", hp->n_head, &hp->n_head_kv)) ||
        (rc = read_dim(L, "attention.key_length", hp->n_embd / hp->n_head, &key_len)) ||
        (rc = read_dim(L, "attention.value_length", key_len, &val_len)) ||
        (rc = read_dim(L, "rope.dimension_count", key_len, &hp->n_rot)) ||
        (rc = read_real(L, "rope.freq_base", 10000.0f, &hp->rope_base)) ||
        (rc = read_real(L, "attention.layer_norm_rms_epsilon", NAN, &hp->rms_eps)) ||
        (rc = read_unsupported(L, rope_scale)))
        return rc;
    hp->head_dim = key_len;
    L->m->attn_scale = 1.0f / sqrtf((float)key_len);
    const char *bad = NULL;
    if (key_len == 0)
        bad = "head_count exceeds embedding_length";
    else if (val_len != key_len)
        bad = "key and value head sizes differ";
    else if (hp->n_head % hp->n_head_kv)
        bad = "head_count is not a multiple of head_count_kv";
    else if (hp->n_rot > key_len || hp->n_rot % 2)
        bad = "rope dimension count is odd or exceeds the head size";
    else if ((int64_t)hp->n_head * key_len > MAX_DIM)
        bad = "attention is too wide";
    if (bad)
        return copse_fail(L->err, COPSE_E_FORMAT, "%s: %s (n_embd %d, n_head %d, n_head_kv %d, head size %d/%d, n_rot %d)",
                          path_of(L), bad, hp->n_embd, hp->n_head, hp->n_head_kv, key_len, val_len, hp->n_rot);
    /* each layer is several tensors: a count no file could hold is refused
    ** before the layers' tables are allocated (a few bytes could otherwise
    ** ask for gigabytes) */
    if ((uint64_t)hp->n_layer > L->m->gguf->n_tensors)
        return copse_fail(L->err, COPSE_E_FORMAT, "%s: block_count %d, but the file has only %llu tensors",
                          path_of(L), hp->n_layer, (unsigned long long)L->m->gguf->n_tensors);
    return COPSE_OK;
}

/* An optional float key: def when absent, else a number >= 0. */
static int read_cap(loader *L, const char *suffix, float def, float *out)
{
    char key[128];
    arch_key(L, suffix, key, sizeof key);
    int rc = gguf_get_f32(L->m->gguf, key, out, L->err);
    if (rc == COPSE_E_ARG) {
        *out = def;
        return COPSE_OK;
    }
    if (rc)
        return rc;
    if (!(*out >= 0) || !isfinite(*out))
        return copse_fail(L->err, COPSE_E_FORMAT, "%s: metadata '%s' is %g, not a number >= 0",
                          path_of(L), key, (double)*out);
    return COPSE_OK;
}

/* How an architecture's local layers are chosen and rotated when its file
** gives no more: the window (0: none), the pattern's step, the base of
** their angles (0: the global one) and whether the key
** rope.freq_base_swa may change it, and whether the linear scaling
** applies to them too. */
typedef struct window_defaults {
    uint32_t window;
    int      step;
    float    base;
    int      base_key, scaled;
} window_defaults;

/*
** Local layers, as llama.cpp reads them: a window from
** attention.sliding_window (0: every layer global), of every
** attention.sliding_window_pattern layers all but the last local, or a
** pattern given as one bool a layer.
*/
static int read_window(loader *L, const window_defaults *d)
{
    copse_model *m = L->m;
    copse_model_info *hp = &m->info;
    char key[128];
    uint32_t window = d->window;
    int rc;
    arch_key(L, "attention.sliding_window", key, sizeof key);
    if ((rc = gguf_get_u32(m->gguf, key, &window, L->err)) && rc != COPSE_E_ARG)
        return rc;
    m->swa_window = window > MAX_DIM ? MAX_DIM : (int)window;
    if (!window)
        return COPSE_OK;
    arch_key(L, "attention.sliding_window_pattern", key, sizeof key);
    const gguf_value *v = gguf_get(m->gguf, key);
    if (v && v->type == GGUF_TYPE_ARRAY) {
        if ((rc = gguf_get_arr(m->gguf, key, GGUF_TYPE_BOOL, &L->swa_layers, L->err)))
            return rc;
        if (L->swa_layers->n != (uint64_t)hp->n_layer)
            return copse_fail(L->err, COPSE_E_FORMAT, "%s: '%s' has %llu values for %d layers", path_of(L),
                              key, (unsigned long long)L->swa_layers->n, hp->n_layer);
    } else if ((rc = read_dim(L, "attention.sliding_window_pattern", d->step, &L->swa_step))) {
        return rc;
    }
    L->swa_scaled = d->scaled;
    L->rope_base_swa = d->base ? d->base : hp->rope_base;
    return d->base_key ? read_real(L, "rope.freq_base_swa", L->rope_base_swa, &L->rope_base_swa) : COPSE_OK;
}

/*
** The Gemma family, as llama.cpp runs it. All scale the embedding by
** sqrt(n_embd) and gate with GELU. Gemma 2 and 3 have local layers
** (read_window): Gemma 2's window is 4096 when the file gives none, every
** other layer local, rotating with the global angles; Gemma 3 has none
** unless the file says so, five local layers of every six, rotating
** with base 10000 unscaled. Either may set rope.freq_base_swa. Gemma 2
** caps the scores and the logits, s -> cap tanh(s / cap), with
** attn_logit_softcapping and final_logit_softcapping (50 and 30 when
** absent); Gemma 3 only the logits, and only where the key says so.
** Scores are scaled by 1/sqrt(head size), but 1/sqrt(n_embd / n_head) in
** the 27B models (46 and 62 layers), as llama.cpp and Google's code do.
*/
static int read_gemma(loader *L)
{
    static const window_defaults gemma2 = { 4096, 2, 0, 1, 1 }, gemma3 = { 0, 6, 10000, 1, 0 };
    copse_model *m = L->m;
    copse_model_info *hp = &m->info;
    int v3 = !strcmp(L->arch->name, "gemma3"), rc;
    m->embd_scale = sqrtf((float)hp->n_embd);
    m->gelu = 1;
    if (L->arch->gemma < 2)
        return COPSE_OK;
    if (hp->n_layer == (v3 ? 62 : 46))
        m->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    if ((rc = read_cap(L, "final_logit_softcapping", v3 ? 0 : 30, &m->final_softcap)) ||
        (!v3 && (rc = read_cap(L, "attn_logit_softcapping", 50, &m->attn_softcap))))
        return rc;
    return read_window(L, v3 ? &gemma3 : &gemma2);
}

/* OLMo 2's local layers (OLMo 3 has some): none unless the file gives a
** window; three of every four; the global base, unscaled, whatever
** rope.freq_base_swa says (llama.cpp's graph rotates them so). */
static int read_olmo(loader *L)
{
    static const window_defaults olmo = { 0, 4, 0, 0, 0 };
    return read_window(L, &olmo);
}

/*
** IBM Granite (dense): llama's layout with four scales, as llama.cpp
** reads them. The embedding is multiplied by embedding_scale, each
** sublayer's output by residual_scale before it is added back, the
** scores by attention.scale instead of 1/sqrt(head size) (absent or 0:
** the usual ones), and the logits divided by logit_scale (required).
** The multimodal deepstack mapping is refused (and biases on the output
** and FFN products, which some derived models carry, as every tensor
** copse does not read: check_all_read).
*/
static int read_granite(loader *L)
{
    copse_model *m = L->m;
    char key[128];
    float embd, residual, attn, logit;
    int rc;
    if ((rc = read_cap(L, "embedding_scale", 0, &embd)) || (rc = read_cap(L, "residual_scale", 0, &residual)) ||
        (rc = read_cap(L, "attention.scale", 0, &attn)) || (rc = read_real(L, "logit_scale", NAN, &logit)))
        return rc;
    m->embd_scale = embd ? embd : 1;
    m->residual_scale = residual ? residual : 1;
    m->attn_scale = attn ? attn : m->attn_scale;
    m->logit_scale = 1 / logit;
    arch_key(L, "deepstack_mapping", key, sizeof key);
    if (gguf_get(m->gguf, key))
        return copse_fail(L->err, COPSE_E_UNSUPPORTED, "%s: '%s' (multimodal input) is not supported", path_of(L),
                          key);
    return COPSE_OK;
}

/* Whether layer il is local (read_window). */
static int is_local(const loader *L, int il)
{
    if (!L->m->swa_window)
        return 0;
    if (L->swa_layers)
        return gguf_arr_num(L->swa_layers, (uint64_t)il) != 0;
    return il % L->swa_step < L->swa_step - 1;
}

/* ----------------------------------------------------------------- tensors */

static void *own(loader *L, void *p)
{
    copse_model *m = L->m;
    if (!p)
        return NULL;
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 16;
        void **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) {
            free(p);
            return NULL;
        }
        m->owned = o;
        m->cap_owned = cap;
    }
    return m->owned[m->n_owned++] = p;
}

/*
** Buffers for expanded weights, on 2 MiB pages where the kernel offers
** them on request (transparent huge pages in "madvise" mode): one page
** fault per 2 MiB instead of per 4 KiB makes loading several times faster,
** and streaming the weights through the matmuls misses the TLB less.
*/
static void *alloc_weights(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    void *p;
    if (bytes < huge)
        return malloc(bytes);
    if (posix_memalign(&p, huge, bytes))
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

/* Expanding every weight of a large model takes seconds on one core. */
static void dequantize(const gguf_tensor *t, float *out)
{
    const int64_t chunk = 1 << 16;   /* whole blocks of every type */
    int64_t n = (int64_t)t->nelements;
    #pragma omp parallel for
    for (int64_t i = 0; i < n; i += chunk)
        dequant(t->type, t->data, (uint64_t)i, (uint64_t)(n - i < chunk ? n - i : chunk), out + i);
}

/*
** Tensor name with shape [ne0] (ne1 == 0) or [ne0, ne1], of a type copse
** reads. An absent tensor is an error when required, else *out is NULL.
*/
static int find(loader *L, const char *name, int ne0, int ne1, int required, const gguf_tensor **out)
{
    const gguf_tensor *t = gguf_find_tensor(L->m->gguf, name);
    *out = NULL;
    if (t)
        L->used[t - L->m->gguf->tensors] = 1;
    if (!t)
        return required ? copse_fail(L->err, COPSE_E_FORMAT, "%s: missing tensor '%s'", path_of(L), name)
                        : COPSE_OK;
    uint64_t want1 = ne1 ? (uint64_t)ne1 : 1;
    if (t->ne[0] != (uint64_t)ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1) {
        char want[64];
        if (ne1)
            snprintf(want, sizeof want, "[%d, %d]", ne0, ne1);
        else
            snprintf(want, sizeof want, "[%d]", ne0);
        return copse_fail(L->err, COPSE_E_FORMAT,
                          "%s: tensor '%s' has shape [%llu, %llu, %llu, %llu], expected %s",
                          path_of(L), name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                          (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], want);
    }
    if (!dequant_supported(t->type) || !t->data) {
        char buf[16];
        return copse_fail(L->err, COPSE_E_UNSUPPORTED, "%s: tensor '%s' has type %s; copse reads %s",
                          path_of(L), name, ggml_type_name(t->type, buf), dequant_type_list());
    }
    *out = t;
    return COPSE_OK;
}

/* t's values in f32: in place for F32, else a copy the model owns. */
static int expand(loader *L, const gguf_tensor *t, const float **out)
{
    if (t->type == GGML_TYPE_F32) {
        *out = t->data;
        return COPSE_OK;
    }
    float *f = own(L, alloc_weights(t->nelements * sizeof *f));
    if (!f)
        return copse_fail(L->err, COPSE_E_NOMEM, "%s: no memory to expand tensor '%s' (%llu values)",
                          path_of(L), t->name, (unsigned long long)t->nelements);
    dequantize(t, f);
    *out = f;
    return COPSE_OK;
}

/* The f32 values of a tensor as find() gives it (NULL when absent). */
static int tensor(loader *L, const char *name, int ne0, int ne1, int required, const float **out)
{
    const gguf_tensor *t;
    int rc = find(L, name, ne0, ne1, required, &t);
    *out = NULL;
    return rc || !t ? rc : expand(L, t, out);
}

/* A matrix as the path in force reads it: int8, or f32 (see the top). */
static int load_matrix(loader *L, const gguf_tensor *t, model_matrix *w)
{
    w->n_in = (int)t->ne[0];
    w->n_out = (int)t->ne[1];
    if (!L->m->tier || w->n_in % Q8_BLOCK)
        return expand(L, t, &w->f32);
    int rc = q8_weights_from_tensor(L->m->tier, t, !L->weights_8bit, &w->q8, L->err);
    if (rc) {
        char msg[sizeof L->err->msg];
        memcpy(msg, L->err->msg, sizeof msg);
        return copse_fail(L->err, rc, "%s: %s", path_of(L), msg);
    }
    return COPSE_OK;
}

static int matrix(loader *L, const char *name, int n_in, int n_out, model_matrix *w)
{
    const gguf_tensor *t;
    int rc = find(L, name, n_in, n_out, 1, &t);
    return rc ? rc : load_matrix(L, t, w);
}

/* Matrices of one input as one stacked int8 matrix (model.h) when they
** are int8 of one type, else each on its own. Each part is cut into
** pieces runs of equal rows, and the stack holds every part's first run,
** then every part's second, and so on. With one piece, parts that follow
** each other in the file are packed from the mapping; otherwise they are
** first copied together into a buffer that every layer reuses: a new one
** per stack made the kernel fault in and zero its pages each time, which
** on a virtual machine was a third of a 1B model's loading. */
static int stacked(loader *L, const gguf_tensor *const *part, int count, int pieces, const char *name,
                   model_matrix *stack, model_matrix *const *each)
{
    int one = L->m->tier && part[0]->ne[0] % Q8_BLOCK == 0, adjacent = pieces == 1;
    uint64_t rows = 0, bytes = 0;
    for (int i = 0; i < count; i++) {
        one &= part[i]->type == part[0]->type && part[i]->ne[1] % pieces == 0;
        adjacent &= i == 0 || (const uint8_t *)part[i]->data == (const uint8_t *)part[0]->data + bytes;
        rows += part[i]->ne[1];
        bytes += part[i]->nbytes;
    }
    int rc = COPSE_OK;
    if (!one) {
        for (int i = 0; i < count && !rc; i++)
            rc = load_matrix(L, part[i], each[i]);
        return rc;
    }
    if (!adjacent && bytes > L->stack_cap) {
        free(L->stack_buf);
        L->stack_cap = 0;
        if (!(L->stack_buf = malloc(bytes)))
            return copse_fail(L->err, COPSE_E_NOMEM, "%s: no memory to stack '%s' (%llu bytes)",
                              path_of(L), name, (unsigned long long)bytes);
        L->stack_cap = bytes;
    }
    uint8_t *buf = adjacent ? NULL : L->stack_buf;
    gguf_tensor all = *part[0];
    all.name = (char *)name;
    all.ne[1] = rows;
    all.nelements = rows * all.ne[0];
    all.nbytes = bytes;
    all.data = adjacent ? part[0]->data : buf;
    size_t off = 0;
    for (int k = 0; buf && k < pieces; k++)
        for (int i = 0; i < count; i++) {
            size_t run = part[i]->nbytes / pieces;   /* rows are whole bytes in every type loaded */
            memcpy(buf + off, (const uint8_t *)part[i]->data + k * run, run);
            off += run;
        }
    return load_matrix(L, &all, stack);
}

/* Rows [first, first + n) of a matrix: a view into the mapping, for the
** matrices some files fuse (phi3's Q, K and V; its gate and up). */
static gguf_tensor rows_of(const gguf_tensor *t, uint64_t first, uint64_t n)
{
    gguf_tensor v = *t;
    uint64_t row = t->nbytes / t->ne[1];
    v.ne[1] = n;
    v.nelements = n * t->ne[0];
    v.nbytes = n * row;
    v.data = (const uint8_t *)t->data + first * row;
    return v;
}

static const char *blk(char *buf, int il, const char *what)
{
    snprintf(buf, 64, "blk.%d.%s", il, what);
    return buf;
}

static int load_layer(loader *L, int il, model_layer *y)
{
    const copse_model_info *hp = &L->m->info;
    int d = hp->n_embd, q = hp->n_head * hp->head_dim, kv = hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
    int bias = L->arch->qkv_bias, qk_norm = L->arch->qk_norm, olmo = L->arch->olmo, hd = hp->head_dim;
    int post = L->arch->gemma > 1 || olmo;
    char b[64];
    const gguf_tensor *tq, *tk, *tv, *tg, *tu, *fused = NULL;
    gguf_tensor part[3];
    int rc;
    if (L->arch->fused && (rc = find(L, blk(b, il, "attn_qkv.weight"), d, q + 2 * kv, 0, &fused)))
        return rc;
    if (fused) {
        part[0] = rows_of(fused, 0, (uint64_t)q);
        part[1] = rows_of(fused, (uint64_t)q, (uint64_t)kv);
        part[2] = rows_of(fused, (uint64_t)(q + kv), (uint64_t)kv);
        tq = &part[0], tk = &part[1], tv = &part[2];
    } else if ((rc = find(L, blk(b, il, "attn_q.weight"), d, q, 1, &tq)) ||
               (rc = find(L, blk(b, il, "attn_k.weight"), d, kv, 1, &tk)) ||
               (rc = find(L, blk(b, il, "attn_v.weight"), d, kv, 1, &tv))) {
        return rc;
    }
    if ((!olmo && (rc = tensor(L, blk(b, il, "attn_norm.weight"), d, 0, 1, &y->attn_norm))) ||
        (rc = matrix(L, blk(b, il, "attn_output.weight"), q, d, &y->wo)) ||
        (rc = tensor(L, blk(b, il, "attn_q.bias"), q, 0, bias, &y->bq)) ||
        (rc = tensor(L, blk(b, il, "attn_k.bias"), kv, 0, bias, &y->bk)) ||
        (rc = tensor(L, blk(b, il, "attn_v.bias"), kv, 0, bias, &y->bv)) ||
        ((qk_norm || olmo) && (rc = tensor(L, blk(b, il, "attn_q_norm.weight"), olmo ? q : hd, 0, 1, &y->q_norm))) ||
        ((qk_norm || olmo) && (rc = tensor(L, blk(b, il, "attn_k_norm.weight"), olmo ? kv : hd, 0, 1, &y->k_norm))) ||
        (post && (rc = tensor(L, blk(b, il, "post_attention_norm.weight"), d, 0, 1, &y->post_attn_norm))) ||
        (!olmo && (rc = tensor(L, blk(b, il, "ffn_norm.weight"), d, 0, 1, &y->ffn_norm))) ||
        (post && (rc = tensor(L, blk(b, il, "post_ffw_norm.weight"), d, 0, 1, &y->post_ffn_norm))) ||
        (rc = matrix(L, blk(b, il, "ffn_down.weight"), ff, d, &y->w_down)))
        return rc;
    gguf_tensor gate_up[2];
    if (L->arch->fused) {
        if ((rc = find(L, blk(b, il, "ffn_up.weight"), d, 2 * ff, 1, &tu)))
            return rc;
        gate_up[0] = rows_of(tu, 0, (uint64_t)ff);
        gate_up[1] = rows_of(tu, (uint64_t)ff, (uint64_t)ff);
        tg = &gate_up[0], tu = &gate_up[1];
    } else if ((rc = find(L, blk(b, il, "ffn_gate.weight"), d, ff, 1, &tg)) ||
               (rc = find(L, blk(b, il, "ffn_up.weight"), d, ff, 1, &tu))) {
        return rc;
    }
    if ((rc = stacked(L, (const gguf_tensor *[]){ tq, tk, tv }, 3, hp->n_head_kv, blk(b, il, "attn_qkv"), &y->wqkv,
                      (model_matrix *[]){ &y->wq, &y->wk, &y->wv })))
        return rc;
    y->no_rope = L->arch->nope_step && (il + 1) % L->arch->nope_step == 0;
    y->local = is_local(L, il);
    y->qk_norm_wide = olmo;
    y->gate_up_run = ff % Q8_BLOCK ? ff : Q8_BLOCK;
    return stacked(L, (const gguf_tensor *[]){ tg, tu }, 2, ff / y->gate_up_run, blk(b, il, "ffn_gate_up"),
                   &y->w_gate_up, (model_matrix *[]){ &y->w_gate, &y->w_up });
}

/* The angle per position of each of half rotated pairs: base^(-2i/n_rot)
** divided by the linear scaling factor and by factors[i] when given. A
** factor that is not a positive number would make every angle of its pair
** infinite or negative: refused. */
static int rope_table(loader *L, float base, float scale, const float *factors, const char *name,
                      const double **out)
{
    const copse_model_info *hp = &L->m->info;
    int half = hp->n_rot / 2;
    double *f = own(L, malloc((size_t)half * sizeof *f));
    if (!f)
        return copse_fail(L->err, COPSE_E_NOMEM, "out of memory");
    for (int i = 0; i < half; i++) {
        if (factors && !(factors[i] > 0 && isfinite(factors[i])))
            return copse_fail(L->err, COPSE_E_FORMAT, "%s: %s[%d] is %g, not a positive number",
                              path_of(L), name, i, (double)factors[i]);
        f[i] = pow((double)base, -2.0 * i / hp->n_rot) / scale / (factors ? factors[i] : 1.0);
    }
    *out = f;
    return COPSE_OK;
}

/*
** RoPE's angles. Llama 3.1 and later ship a long-context correction as
** rope_freqs.weight, per-pair divisors of the angles. Phi-3's LongRoPE
** ships two sets, rope_factors_short.weight for contexts up to
** rope.scaling.original_context_length and rope_factors_long.weight for
** longer ones, and scales cos and sin by rope.scaling.attn_factor; which
** set a context uses is fixed by its length (model_rope_freqs), as in
** llama.cpp, so the keys cached stay consistent. Gemma 3's local layers
** have angles of their own (read_gemma).
*/
static int load_rope(loader *L, float scale)
{
    copse_model *m = L->m;
    int half = m->info.n_rot / 2, rc;
    const float *freqs, *f_long, *f_short, base = m->info.rope_base;
    if (m->swa_window && (rc = rope_table(L, L->rope_base_swa, L->swa_scaled ? scale : 1, NULL, "",
                                          &m->rope_inv_freq_swa)))
        return rc;
    if ((rc = tensor(L, "rope_freqs.weight", half, 0, 0, &freqs)) ||
        (rc = tensor(L, "rope_factors_long.weight", half, 0, 0, &f_long)) ||
        (rc = tensor(L, "rope_factors_short.weight", half, 0, f_long != NULL, &f_short)) ||
        (rc = read_real(L, "rope.scaling.attn_factor", 1.0f, &m->rope_mscale)) ||
        (rc = read_dim(L, "rope.scaling.original_context_length", m->info.n_ctx_train, &m->rope_ctx_orig)) ||
        (rc = rope_table(L, base, scale, freqs ? freqs : f_short, freqs ? "rope_freqs.weight" : "rope_factors_short.weight",
                         &m->rope_inv_freq)))
        return rc;
    return f_long && !freqs ? rope_table(L, base, scale, f_long, "rope_factors_long.weight", &m->rope_inv_freq_long)
                            : COPSE_OK;
}

static int load_tensors(loader *L)
{
    copse_model *m = L->m;
    copse_model_info *hp = &m->info;
    const gguf_tensor *out;
    int rc;
    if ((rc = find(L, "token_embd.weight", hp->n_embd, hp->n_vocab, 1, &m->embd_tensor)) ||
        (rc = tensor(L, "output_norm.weight", hp->n_embd, 0, 1, &m->output_norm)) ||
        (rc = find(L, "output.weight", hp->n_embd, hp->n_vocab, 0, &out)))
        return rc;
    hp->tied_output = out == NULL;
    if ((rc = load_matrix(L, out ? out : m->embd_tensor, &m->output)))
        return rc;
    if (hp->tied_output)
        m->tok_embd = m->output.f32;
    m->layers = own(L, calloc((size_t)hp->n_layer, sizeof *m->layers));
    if (!m->layers)
        return copse_fail(L->err, COPSE_E_NOMEM, "out of memory");
    for (int il = 0; il < hp->n_layer; il++) {
        if ((rc = load_layer(L, il, &m->layers[il])))
            return rc;
        hp->n_local_layers += m->layers[il].local;
    }
    hp->sliding_window = hp->n_local_layers ? m->swa_window : 0;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++)
        hp->n_params += (int64_t)m->gguf->tensors[i].nelements;
    return COPSE_OK;
}

/*
** Every tensor of the file must be one the model reads: a bias, a norm or
** a matrix of a variant copse does not know would otherwise be ignored
** and the results silently wrong (llama.cpp refuses such files too). A
** verifier's head (cls.*) is read by the verifier, later.
*/
static int check_all_read(loader *L)
{
    const gguf_file *g = L->m->gguf;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!L->used[i] && strncmp(g->tensors[i].name, "cls.", 4))
            return copse_fail(L->err, COPSE_E_UNSUPPORTED, "%s: tensor '%s' is not part of the %s layout copse "
                              "runs; it would be ignored, so the file is refused", path_of(L), g->tensors[i].name,
                              L->arch->name);
    return COPSE_OK;
}

/* "Q5_0 132, F32 121, ...": the file's tensors by type, most first. */
static int count_types(loader *L)
{
    const gguf_file *g = L->m->gguf;
    uint64_t count[GGML_TYPE_COUNT + 1] = { 0 };   /* the last: numbers ggml does not name */
    for (uint64_t i = 0; i < g->n_tensors; i++)
        count[g->tensors[i].type < GGML_TYPE_COUNT ? g->tensors[i].type : GGML_TYPE_COUNT]++;
    char *s = own(L, malloc(GGML_TYPE_COUNT * 32));
    if (!s)
        return copse_fail(L->err, COPSE_E_NOMEM, "out of memory");
    size_t len = 0;
    s[0] = '\0';
    for (;;) {
        uint32_t best = 0;
        for (uint32_t t = 1; t <= GGML_TYPE_COUNT; t++)
            best = count[t] > count[best] ? t : best;
        if (!count[best])
            break;
        char buf[16];
        const char *name = best < GGML_TYPE_COUNT ? ggml_type_name(best, buf) : "unknown";
        len += (size_t)snprintf(s + len, 32, "%s%s %llu", len ? ", " : "", name,
                                (unsigned long long)count[best]);
        count[best] = 0;
    }
    L->m->info.tensor_types = s;
    return COPSE_OK;
}

/* ------------------------------------------------------------------ public */

copse_model_params copse_model_default_params(void)
{
    copse_model_params p = { .vocab_only = 0, .weights_f32 = 0, .weights_8bit = 0 };
    return p;
}

static int load(loader *L, const char *path, int vocab_only, int weights_f32)
{
    copse_model *m = L->m;
    float rope_scale = 1;
    int rc;
    if ((rc = gguf_open(path, &m->gguf, L->err)))
        return rc;
    m->info.file_bytes = m->gguf->size;
    if ((rc = read_str(L, "general.name", &m->name)))
        return rc;
    if (vocab_only) {
        /* any architecture: only the tokenizer is wanted */
        if ((rc = read_str(L, "general.architecture", &m->arch)))
            return rc;
    } else if ((rc = read_arch(L)) || (rc = read_hparams(L, &rope_scale))
               || (L->arch->gemma && (rc = read_gemma(L))) || (L->arch->granite && (rc = read_granite(L)))
               || (L->arch->olmo && (rc = read_olmo(L)))) {
        return rc;
    }
    if ((rc = tokenizer_load(m->gguf, &m->tok, L->err)) || (rc = count_types(L)))
        return rc;
    m->info.n_vocab = tokenizer_n_vocab(m->tok);
    if (vocab_only)
        return COPSE_OK;
    if (!weights_f32 && (rc = q8_tier_default(&m->tier, L->err)))
        return rc;
    if (!(L->used = calloc(m->gguf->n_tensors ? m->gguf->n_tensors : 1, 1)))
        return copse_fail(L->err, COPSE_E_NOMEM, "out of memory");
    if ((rc = load_rope(L, rope_scale)) || (rc = load_tensors(L)))
        return rc;
    return check_all_read(L);
}

/* Every matrix of a loaded model in turn: i from 0 while it returns one. */
static model_matrix *nth_matrix(const copse_model *m, int i)
{
    if (i == 0)
        return (model_matrix *)&m->output;
    if (!m->layers || --i >= N_LAYER_MATRICES * m->info.n_layer)
        return NULL;
    model_layer *y = &m->layers[i / N_LAYER_MATRICES];
    model_matrix *all[N_LAYER_MATRICES] = { &y->wq, &y->wk, &y->wv, &y->wo, &y->wqkv,
                                            &y->w_gate, &y->w_up, &y->w_down, &y->w_gate_up };
    return all[i % N_LAYER_MATRICES];
}

int copse_model_load(const char *path, const copse_model_params *params,
                     copse_model **out, copse_error *err)
{
    copse_error local;
    if (!err)
        err = &local;
    copse_error_clear(err);
    if (!out)
        return copse_fail(err, COPSE_E_ARG, "copse_model_load: out is NULL");
    *out = NULL;
    if (!path)
        return copse_fail(err, COPSE_E_ARG, "copse_model_load: path is NULL");
    copse_model_params def = copse_model_default_params();
    if (!params)
        params = &def;
    copse_model *m = calloc(1, sizeof *m);
    if (!m)
        return copse_fail(err, COPSE_E_NOMEM, "out of memory");
    m->embd_scale = m->residual_scale = m->logit_scale = 1;
    loader L = { .m = m, .err = err, .weights_8bit = params->weights_8bit };
    int rc = load(&L, path, params->vocab_only, params->weights_f32);
    free(L.used);
    free(L.stack_buf);
    if (rc) {
        copse_model_free(m);
        return rc;
    }
    m->info.arch = m->arch;
    m->info.name = m->name;
    m->info.isa = m->tier ? m->tier->name : NULL;
    m->info.weight_bytes = model_matrix_bytes(m);
    m->info.kv_bytes_per_token = kv_block_bytes(&m->info, 1) / KV_BLOCK;
    model_matrix *w;
    for (int i = 0; (w = nth_matrix(m, i)); i++) {
        m->info.n_matrices += w->n_out > 0;
        m->info.n_matrices_4bit += w->q8 && q8_quant_bits(w->q8->bits) == 4;
        m->info.n_matrices_5bit += w->q8 && q8_quant_bits(w->q8->bits) == 5;
        m->info.n_matrices_6bit += w->q8 && q8_quant_bits(w->q8->bits) == 6;
        m->info.n_matrices_3bit += w->q8 && q8_quant_bits(w->q8->bits) == 3;
        m->info.n_matrices_2bit += w->q8 && q8_quant_bits(w->q8->bits) == 2;
    }
    m->info.attn_scale = m->attn_scale;
    m->info.attn_softcap = m->attn_softcap;
    m->info.final_softcap = m->final_softcap;
    m->info.embd_scale = m->embd_scale;
    m->info.residual_scale = m->residual_scale;
    m->info.logit_scale = m->logit_scale;
    *out = m;
    return COPSE_OK;
}

void copse_model_free(copse_model *m)
{
    if (!m)
        return;
    model_matrix *w;
    for (int i = 0; (w = nth_matrix(m, i)); i++)
        q8_weights_free(w->q8);
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    tokenizer_free(m->tok);
    gguf_close(m->gguf);
    free(m->arch);
    free(m->name);
    free(m);
}

void copse_model_get_info(const copse_model *m, copse_model_info *info)
{
    if (m && info)
        *info = m->info;
}

const copse_tokenizer *model_tokenizer(const copse_model *m) { return m->tok; }

const double *model_rope_freqs(const copse_model *m, int n_ctx)
{
    return m->rope_inv_freq_long && n_ctx > m->rope_ctx_orig ? m->rope_inv_freq_long : m->rope_inv_freq;
}

const gguf_file *model_gguf(const copse_model *m) { return m->gguf; }

void model_embed(const copse_model *m, int32_t token, float *out)
{
    uint64_t d = (uint64_t)m->info.n_embd;
    dequant(m->embd_tensor->type, m->embd_tensor->data, (uint64_t)token * d, d, out);
}

uint64_t model_matrix_bytes(const copse_model *m)
{
    uint64_t sum = 0;
    model_matrix *w;
    for (int i = 0; (w = nth_matrix(m, i)); i++)
        sum += w->q8 ? q8_weights_bytes(w->q8) : (uint64_t)w->n_in * w->n_out * sizeof(float);
    return sum;
}
