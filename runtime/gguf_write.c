/*
** GGUF writer: metadata is serialized as it is added; tensors are kept
** until the image is built, because their offsets depend on the alignment,
** which general.alignment may set at any time. The whole image is built
** in memory, then written to PATH.tmp and renamed over PATH.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "gguf.h"

typedef struct wbuf {
    uint8_t *p;
    size_t   len, cap;
    int      oom;
} wbuf;

typedef struct wtensor {
    char    *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint8_t *data;
    uint64_t nbytes;
} wtensor;

struct gguf_writer {
    uint32_t version, alignment;
    uint64_t n_kv;
    wbuf     kv;          /* the serialized key-value pairs */
    wtensor *t;
    uint64_t n_t, cap_t;
    int      rc;          /* first failed add, sticky */
    char     why[160];
};

static void put(wbuf *b, const void *p, uint64_t n)
{
    if (b->oom || n == 0)
        return;
    if (n > SIZE_MAX - b->len) {
        b->oom = 1;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (p)
        memcpy(b->p + b->len, p, n);
    else
        memset(b->p + b->len, 0, n);
    b->len += n;
}

static void put_u32(wbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(wbuf *b, uint64_t v) { put(b, &v, 8); }

static void put_str(wbuf *b, const char *s, uint64_t len)
{
    put_u64(b, len);
    put(b, s, len);
}

static void pad_to(wbuf *b, uint32_t alignment)
{
    put(b, NULL, (alignment - b->len % alignment) % alignment);
}

/* Remember the first failure; later adds and the write report it. */
static int fail(gguf_writer *w, int code, const char *key, const char *why)
{
    if (!w->rc) {
        w->rc = code;
        snprintf(w->why, sizeof w->why, "'%.80s': %s", key ? key : "(null)", why);
    }
    return w->rc;
}

gguf_writer *gguf_writer_new(uint32_t version)
{
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) {
        w->version = version;
        w->alignment = GGUF_DEFAULT_ALIGNMENT;
    }
    return w;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (uint64_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w->kv.p);
    free(w);
}

/* ---------------------------------------------------------------- values */

/* The file bytes of a fixed-size scalar, or NULL if v does not fit its type
** (a value silently truncated would be a wrong file). */
static const char *encode_scalar(const gguf_value *v, uint8_t out[8])
{
    unsigned bits = 8 * gguf_value_size(v->type);
    uint64_t u = v->v.u;
    switch (v->type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32:
        if (u >> bits)
            return "value out of range for its type";
        break;
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: {
        int64_t lim = (int64_t)1 << (bits - 1);
        if (v->v.i < -lim || v->v.i >= lim)
            return "value out of range for its type";
        break;
    }
    case GGUF_TYPE_BOOL:
        if (u > 1)
            return "bool is not 0 or 1";
        break;
    case GGUF_TYPE_FLOAT32: {
        float f = (float)v->v.f;
        uint32_t b;
        memcpy(&b, &f, 4);
        u = b;
        break;
    }
    case GGUF_TYPE_FLOAT64:
        memcpy(&u, &v->v.f, 8);
        break;
    default:
        break;
    }
    memcpy(out, &u, 8);   /* little-endian: the low bytes come first */
    return NULL;
}

static const char *put_array(wbuf *b, const gguf_array *a, unsigned depth);

/* The payload of v (its type is written by the caller); NULL or why not. */
static const char *put_value(wbuf *b, const gguf_value *v, unsigned depth)
{
    if (v->type >= GGUF_TYPE_COUNT)
        return "unknown value type";
    if (v->type == GGUF_TYPE_STRING) {
        if (v->v.s.len && !v->v.s.ptr)
            return "string without bytes";
        put_str(b, v->v.s.ptr, v->v.s.len);
        return NULL;
    }
    if (v->type == GGUF_TYPE_ARRAY)
        return put_array(b, &v->v.arr, depth);
    uint8_t bytes[8];
    const char *why = encode_scalar(v, bytes);
    if (!why)
        put(b, bytes, gguf_value_size(v->type));
    return why;
}

static const char *put_array(wbuf *b, const gguf_array *a, unsigned depth)
{
    if (depth >= GGUF_MAX_ARRAY_DEPTH)
        return "arrays nested too deep";
    if (a->type >= GGUF_TYPE_COUNT)
        return "unknown array element type";
    put_u32(b, a->type);
    put_u64(b, a->n);
    uint64_t size = gguf_value_size(a->type);
    if (size) {
        if (a->n > UINT64_MAX / size || (a->n && !a->data))
            return "bad array data";
        for (uint64_t i = 0; a->type == GGUF_TYPE_BOOL && i < a->n; i++)
            if (((const uint8_t *)a->data)[i] > 1)
                return "bool is not 0 or 1";
        put(b, a->data, a->n * size);
        return NULL;
    }
    if (a->n && !(a->type == GGUF_TYPE_STRING ? (const void *)a->strs : (const void *)a->vals))
        return "array without elements";
    for (uint64_t i = 0; i < a->n; i++) {
        const char *why;
        if (a->type == GGUF_TYPE_STRING) {
            gguf_value s = {.type = GGUF_TYPE_STRING, .v.s = a->strs[i]};
            why = put_value(b, &s, depth);
        } else if (a->vals[i].type != GGUF_TYPE_ARRAY) {
            why = "nested element is not an array";
        } else {
            why = put_array(b, &a->vals[i].v.arr, depth + 1);
        }
        if (why)
            return why;
    }
    return NULL;
}

int gguf_writer_add_val(gguf_writer *w, const char *key, const gguf_value *v)
{
    if (w->rc)
        return w->rc;
    if (!key || !*key || !v)
        return fail(w, COPSE_E_ARG, key, "empty key or no value");
    if (!strcmp(key, "general.alignment")) {
        /* readers (llama.cpp too) expect exactly a UINT32 power of two */
        if (v->type != GGUF_TYPE_UINT32 || !v->v.u || (v->v.u & (v->v.u - 1)) ||
            v->v.u > GGUF_MAX_ALIGNMENT)
            return fail(w, COPSE_E_ARG, key, "must be a UINT32 power of two up to 1 MiB");
        w->alignment = (uint32_t)v->v.u;
    }
    size_t mark = w->kv.len;
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, v->type);
    const char *why = put_value(&w->kv, v, 0);
    if (w->kv.oom)
        return fail(w, COPSE_E_NOMEM, key, "out of memory");
    if (why) {
        w->kv.len = mark;
        return fail(w, COPSE_E_ARG, key, why);
    }
    w->n_kv++;
    return COPSE_OK;
}

static int add_scalar(gguf_writer *w, const char *key, uint32_t type, gguf_value v)
{
    v.type = type;
    return gguf_writer_add_val(w, key, &v);
}

int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v)
{
    return add_scalar(w, key, GGUF_TYPE_UINT32, (gguf_value){.v.u = v});
}

int gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v)
{
    return add_scalar(w, key, GGUF_TYPE_INT32, (gguf_value){.v.i = v});
}

int gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v)
{
    return add_scalar(w, key, GGUF_TYPE_UINT64, (gguf_value){.v.u = v});
}

int gguf_writer_add_f32(gguf_writer *w, const char *key, float v)
{
    return add_scalar(w, key, GGUF_TYPE_FLOAT32, (gguf_value){.v.f = v});
}

int gguf_writer_add_bool(gguf_writer *w, const char *key, int v)
{
    return add_scalar(w, key, GGUF_TYPE_BOOL, (gguf_value){.v.u = v != 0});
}

int gguf_writer_add_str(gguf_writer *w, const char *key, const char *v)
{
    if (!v)
        return fail(w, COPSE_E_ARG, key, "NULL string");
    return add_scalar(w, key, GGUF_TYPE_STRING, (gguf_value){.v.s = {strlen(v), v}});
}

int gguf_writer_add_arr(gguf_writer *w, const char *key, uint32_t elem_type,
                        const void *data, uint64_t n)
{
    if (!gguf_value_size(elem_type))
        return fail(w, COPSE_E_ARG, key, "not a fixed-size element type");
    gguf_array a = {.type = elem_type, .n = n, .data = data};
    return add_scalar(w, key, GGUF_TYPE_ARRAY, (gguf_value){.v.arr = a});
}

int gguf_writer_add_arr_str(gguf_writer *w, const char *key,
                            const char *const *strs, uint64_t n)
{
    if (w->rc)
        return w->rc;
    gguf_str *s = n ? calloc(n, sizeof *s) : NULL;
    if (n && !s)
        return fail(w, COPSE_E_NOMEM, key, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        s[i] = (gguf_str){strs[i] ? strlen(strs[i]) : 0, strs[i]};
    gguf_array a = {.type = GGUF_TYPE_STRING, .n = n, .strs = s};
    int rc = add_scalar(w, key, GGUF_TYPE_ARRAY, (gguf_value){.v.arr = a});
    free(s);
    return rc;
}

/* --------------------------------------------------------------- tensors */

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                           uint32_t n_dims, const uint64_t *ne, const void *data)
{
    if (w->rc)
        return w->rc;
    if (!name || !*name || !ne || !data || n_dims == 0 || n_dims > GGUF_MAX_DIMS)
        return fail(w, COPSE_E_ARG, name, "bad tensor name, dims or data");
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > INT64_MAX / n)
            return fail(w, COPSE_E_ARG, name, "zero or overflowing dimension");
        n *= ne[d];
    }
    uint64_t nbytes = ggml_type_nbytes(type, n);
    if (!nbytes || ne[0] % ggml_type_block(type))
        return fail(w, COPSE_E_ARG, name, "unknown type, or ne[0] not whole blocks");
    if (w->n_t == w->cap_t) {
        uint64_t cap = w->cap_t ? 2 * w->cap_t : 16;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t)
            return fail(w, COPSE_E_NOMEM, name, "out of memory");
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    *t = (wtensor){.name = strdup(name), .type = type, .n_dims = n_dims, .nbytes = nbytes};
    t->data = nbytes <= SIZE_MAX ? malloc(nbytes) : NULL;
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return fail(w, COPSE_E_NOMEM, name, "out of memory");
    }
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    memcpy(t->data, data, nbytes);
    w->n_t++;
    return COPSE_OK;
}

/* ----------------------------------------------------------------- image */

int gguf_writer_build(gguf_writer *w, uint8_t **buf, uint64_t *size, copse_error *err)
{
    *buf = NULL;
    *size = 0;
    if (w->rc)
        return copse_fail(err, w->rc, "gguf writer: an add failed earlier: %s", w->why);
    wbuf b = {0};
    put_u32(&b, GGUF_MAGIC);
    put_u32(&b, w->version);
    put_u64(&b, w->n_t);
    put_u64(&b, w->n_kv);
    put(&b, w->kv.p, w->kv.len);
    uint64_t offset = 0;
    for (uint64_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(&b, t->name, strlen(t->name));
        put_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(&b, t->ne[d]);
        put_u32(&b, t->type);
        put_u64(&b, offset);
        offset += (t->nbytes + w->alignment - 1) / w->alignment * w->alignment;
    }
    pad_to(&b, w->alignment);
    for (uint64_t i = 0; i < w->n_t; i++) {
        put(&b, w->t[i].data, w->t[i].nbytes);
        pad_to(&b, w->alignment);
    }
    if (b.oom) {
        free(b.p);
        return copse_fail(err, COPSE_E_NOMEM, "gguf writer: out of memory building the image");
    }
    *buf = b.p;
    *size = b.len;
    copse_error_clear(err);
    return COPSE_OK;
}

int gguf_writer_write(gguf_writer *w, const char *path, copse_error *err)
{
    uint8_t *img;
    uint64_t n;
    int rc = gguf_writer_build(w, &img, &n, err);
    if (rc)
        return rc;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(img);
        return copse_fail(err, COPSE_E_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(img, 1, n, f) == n;
    if (f && fclose(f) != 0)
        ok = 0;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok) {
        rc = copse_fail(err, COPSE_E_IO, "%s: cannot write: %s", f ? path : tmp, strerror(errno));
        remove(tmp);
    }
    free(tmp);
    free(img);
    return rc;
}
