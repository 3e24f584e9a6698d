/*
** GGUF reader: map a file, validate all of it, index keys and tensors.
**
** Every count, length, dimension and offset the file claims is checked
** against the bytes it has left before anything is allocated or read, so
** a hostile file never reads outside the image and costs memory only in
** proportion to its own size. Parsing goes through a cursor whose reads
** are bounds-checked and sticky: after the first error every read returns
** zero and the error (with its byte offset) is kept.
*/
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "error.h"
#include "gguf.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader decodes little-endian values with memcpy"
#endif

/* ------------------------------------------------------------ ggml types */

typedef struct type_info {
    const char *name;
    uint32_t    blck;   /* elements per block */
    uint32_t    size;   /* bytes per block */
} type_info;

/* Every type ggml has named, so files with any of them get their sizes
** checked and errors can name the type. */
static const type_info ggml_types[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32]  = {"F32", 1, 4},     [GGML_TYPE_F16]  = {"F16", 1, 2},
    [GGML_TYPE_Q4_0] = {"Q4_0", 32, 18},  [GGML_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [GGML_TYPE_Q5_0] = {"Q5_0", 32, 22},  [GGML_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [GGML_TYPE_Q8_0] = {"Q8_0", 32, 34},  [GGML_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [GGML_TYPE_Q2_K] = {"Q2_K", 256, 84}, [GGML_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [GGML_TYPE_Q4_K] = {"Q4_K", 256, 144}, [GGML_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [GGML_TYPE_Q6_K] = {"Q6_K", 256, 210}, [GGML_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [16] = {"IQ2_XXS", 256, 66}, [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [GGML_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18}, [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82}, [GGML_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [24] = {"I8", 1, 1},  [25] = {"I16", 1, 2}, [26] = {"I32", 1, 4},
    [27] = {"I64", 1, 8}, [28] = {"F64", 1, 8}, [29] = {"IQ1_M", 256, 56},
    [GGML_TYPE_BF16] = {"BF16", 1, 2},
    [34] = {"TQ1_0", 256, 54}, [35] = {"TQ2_0", 256, 66}, [39] = {"MXFP4", 32, 17},
};

static const type_info *type_info_of(uint32_t type)
{
    return type < GGML_TYPE_COUNT && ggml_types[type].name ? &ggml_types[type] : NULL;
}

const char *ggml_type_name(uint32_t type, char *buf)
{
    const type_info *t = type_info_of(type);
    if (t)
        return t->name;
    snprintf(buf, 16, "type %" PRIu32, type);
    return buf;
}

/* Bytes of n elements; 0 when n is not whole blocks or the size overflows. */
static uint64_t type_extent(const type_info *t, uint64_t n)
{
    if (n % t->blck)
        return 0;
    uint64_t blocks = n / t->blck;
    return blocks > UINT64_MAX / t->size ? 0 : blocks * t->size;
}

uint32_t ggml_type_block(uint32_t type)
{
    const type_info *t = type_info_of(type);
    return t ? t->blck : 0;
}

uint64_t ggml_type_nbytes(uint32_t type, uint64_t n)
{
    const type_info *t = type_info_of(type);
    return t ? type_extent(t, n) : 0;
}

/* -------------------------------------------------------- metadata values */

static const char *const value_type_names[GGUF_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};

static const uint8_t value_size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

uint32_t gguf_value_size(uint32_t type)
{
    return type < GGUF_TYPE_COUNT ? value_size[type] : 0;
}

static int is_unsigned(uint32_t t)
{
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 ||
           t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_UINT64;
}

static int is_signed(uint32_t t)
{
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 ||
           t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

static int is_fixed(uint32_t t)
{
    return t < GGUF_TYPE_COUNT && value_size[t] != 0;
}

static void decode_scalar(uint32_t type, const uint8_t *p, gguf_value *out)
{
    uint64_t u = 0;
    memcpy(&u, p, value_size[type]);
    out->type = type;
    switch (type) {
    case GGUF_TYPE_INT8:  out->v.i = (int8_t)u;  break;
    case GGUF_TYPE_INT16: out->v.i = (int16_t)u; break;
    case GGUF_TYPE_INT32: out->v.i = (int32_t)u; break;
    case GGUF_TYPE_INT64: out->v.i = (int64_t)u; break;
    case GGUF_TYPE_FLOAT32: {
        float f;
        uint32_t b = (uint32_t)u;
        memcpy(&f, &b, 4);
        out->v.f = f;
        break;
    }
    case GGUF_TYPE_FLOAT64: memcpy(&out->v.f, &u, 8); break;
    default:              out->v.u = u;          break;
    }
}

/* Whether v is an integer within [lo, hi]. */
static int int_in_range(const gguf_value *v, int64_t lo, uint64_t hi)
{
    if (is_unsigned(v->type))
        return v->v.u <= hi;
    return is_signed(v->type) && v->v.i >= lo && (v->v.i < 0 || (uint64_t)v->v.i <= hi);
}

/* ------------------------------------------------------------ the reader */

typedef struct alloc_node {
    struct alloc_node *next;
    max_align_t        mem[];
} alloc_node;

/* Open addressing over item indices (stored + 1, 0 = empty), at most half
** full. Items are gguf_kv or gguf_tensor: both start with their name. */
typedef struct name_index {
    uint64_t *slot;
    uint64_t  mask;
} name_index;

typedef struct reader {
    gguf_file   f;          /* first, so a gguf_file * is a reader * */
    alloc_node *allocs;     /* everything parsed, freed together */
    name_index  keys, tensors;
} reader;

typedef struct cursor {
    reader      *r;
    uint64_t     pos;
    int          rc;        /* first error, sticky */
    copse_error *err;
    char         where[112];   /* "header", "key 'x'", "tensor 'y'" */
} cursor;

static int fail_at(cursor *c, int code, uint64_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(cursor *c, int code, uint64_t at, const char *fmt, ...)
{
    if (c->rc)
        return c->rc;
    char detail[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    c->rc = code;
    return copse_fail(c->err, code, "%.160s: %s: %s (at byte %" PRIu64 ")",
                      c->r->f.path, c->where, detail, at);
}

static uint64_t left(const cursor *c)
{
    return c->r->f.size - c->pos;
}

/* The next n bytes, or NULL once anything has failed. */
static const uint8_t *take(cursor *c, uint64_t n, const char *what)
{
    if (c->rc)
        return NULL;
    if (n > left(c)) {
        fail_at(c, COPSE_E_FORMAT, c->pos, "truncated: %s needs %" PRIu64
                " bytes, %" PRIu64 " left", what, n, left(c));
        return NULL;
    }
    const uint8_t *p = c->r->f.base + c->pos;
    c->pos += n;
    return p;
}

/* An n-byte little-endian unsigned integer (n <= 8). */
static uint64_t rd_uint(cursor *c, unsigned n, const char *what)
{
    const uint8_t *p = take(c, n, what);
    uint64_t v = 0;
    if (p)
        memcpy(&v, p, n);
    return v;
}

static uint32_t rd_u32(cursor *c, const char *what) { return (uint32_t)rd_uint(c, 4, what); }
static uint64_t rd_u64(cursor *c, const char *what) { return rd_uint(c, 8, what); }

static gguf_str rd_str(cursor *c, const char *what)
{
    gguf_str s;
    s.len = rd_u64(c, what);
    s.ptr = (const char *)take(c, s.len, what);
    if (!s.ptr)
        s.len = 0;
    return s;
}

/* A value or element type, which must be one GGUF defines. */
static uint32_t rd_type(cursor *c, const char *what)
{
    uint32_t t = rd_u32(c, what);
    if (!c->rc && t >= GGUF_TYPE_COUNT)
        fail_at(c, COPSE_E_FORMAT, c->pos - 4, "unknown %s %" PRIu32, what, t);
    return t;
}

/* n zeroed items of size bytes, owned by the file; NULL for n == 0. */
static void *alloc_items(cursor *c, uint64_t n, size_t size)
{
    if (c->rc || n == 0)
        return NULL;
    if (n > (SIZE_MAX - sizeof(alloc_node)) / size) {
        fail_at(c, COPSE_E_NOMEM, c->pos, "%" PRIu64 " items do not fit in memory", n);
        return NULL;
    }
    alloc_node *a = calloc(1, sizeof *a + n * size);
    if (!a) {
        fail_at(c, COPSE_E_NOMEM, c->pos, "out of memory for %" PRIu64 " bytes", n * size);
        return NULL;
    }
    a->next = c->r->allocs;
    c->r->allocs = a;
    return a->mem;
}

/* ------------------------------------------------------------ name index */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3u;
    return h;
}

static const char *item_name(const void *items, size_t stride, uint64_t i)
{
    return *(char *const *)((const char *)items + i * stride);
}

static void index_init(cursor *c, name_index *ix, uint64_t n)
{
    uint64_t cap = 16;
    while (cap / 2 < n)
        cap <<= 1;
    ix->slot = alloc_items(c, cap, sizeof *ix->slot);
    ix->mask = cap - 1;
}

/* The slot holding the item called name, or the empty slot it would take. */
static uint64_t *index_slot(const name_index *ix, const void *items, size_t stride,
                            const char *name)
{
    for (uint64_t h = hash_name(name) & ix->mask;; h = (h + 1) & ix->mask) {
        uint64_t s = ix->slot[h];
        if (!s || !strcmp(item_name(items, stride, s - 1), name))
            return &ix->slot[h];
    }
}

/* A key or tensor name, copied NUL-terminated. */
static char *rd_name(cursor *c, const char *what)
{
    uint64_t at = c->pos;
    gguf_str s = rd_str(c, what);
    if (c->rc)
        return NULL;
    if (s.len == 0) {
        fail_at(c, COPSE_E_FORMAT, at, "empty %s name", what);
        return NULL;
    }
    if (memchr(s.ptr, 0, s.len)) {
        fail_at(c, COPSE_E_FORMAT, at, "%s name contains a NUL byte", what);
        return NULL;
    }
    char *name = alloc_items(c, s.len + 1, 1);
    if (name)
        memcpy(name, s.ptr, s.len);
    return name;
}

/* Read the name of item i (a key or tensor, whose first member is its name)
** and index it; it names where later errors are. */
static int rd_item_name(cursor *c, name_index *ix, void *items, size_t stride,
                        uint64_t i, const char *what)
{
    snprintf(c->where, sizeof c->where, "%s #%" PRIu64, what, i);
    char *name = rd_name(c, what);
    if (c->rc)
        return c->rc;
    *(char **)((char *)items + i * stride) = name;
    snprintf(c->where, sizeof c->where, "%s '%.80s'", what, name);
    uint64_t *slot = index_slot(ix, items, stride, name);
    if (*slot)
        return fail_at(c, COPSE_E_FORMAT, c->pos, "duplicate %s name (also %s #%" PRIu64 ")",
                       what, what, *slot - 1);
    *slot = i + 1;
    return COPSE_OK;
}

/* -------------------------------------------------------------- metadata */

/* Elements of an array take at least this many bytes each in the file. */
static uint64_t min_elem_bytes(uint32_t type)
{
    return type == GGUF_TYPE_STRING ? 8 : type == GGUF_TYPE_ARRAY ? 12 : value_size[type];
}

static void check_bools(cursor *c, const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1) {
            fail_at(c, COPSE_E_FORMAT, (uint64_t)(p + i - c->r->f.base),
                    "bool %" PRIu64 " is %u, not 0 or 1", i, p[i]);
            return;
        }
}

static void read_array(cursor *c, unsigned depth, gguf_array *a)
{
    if (depth >= GGUF_MAX_ARRAY_DEPTH) {
        fail_at(c, COPSE_E_FORMAT, c->pos, "arrays nested deeper than %d",
                GGUF_MAX_ARRAY_DEPTH);
        return;
    }
    a->type = rd_type(c, "array element type");
    uint64_t at = c->pos;
    a->n = rd_u64(c, "array length");
    if (c->rc)
        return;
    if (a->n > left(c) / min_elem_bytes(a->type)) {
        fail_at(c, COPSE_E_FORMAT, at, "array of %" PRIu64 " %s cannot fit in the %"
                PRIu64 " bytes left", a->n, value_type_names[a->type], left(c));
        return;
    }
    if (is_fixed(a->type)) {
        a->data = take(c, a->n * value_size[a->type], "array");
        if (a->type == GGUF_TYPE_BOOL)
            check_bools(c, a->data, a->n);
    } else if (a->type == GGUF_TYPE_STRING) {
        gguf_str *s = alloc_items(c, a->n, sizeof *s);
        for (uint64_t i = 0; i < a->n && !c->rc; i++)
            s[i] = rd_str(c, "array string");
        a->strs = s;
    } else {
        gguf_value *v = alloc_items(c, a->n, sizeof *v);
        for (uint64_t i = 0; i < a->n && !c->rc; i++) {
            v[i].type = GGUF_TYPE_ARRAY;
            read_array(c, depth + 1, &v[i].v.arr);
        }
        a->vals = v;
    }
}

static void read_value(cursor *c, uint32_t type, gguf_value *out)
{
    out->type = type;
    if (type == GGUF_TYPE_STRING) {
        out->v.s = rd_str(c, "string");
    } else if (type == GGUF_TYPE_ARRAY) {
        read_array(c, 0, &out->v.arr);
    } else {
        const uint8_t *p = take(c, value_size[type], value_type_names[type]);
        if (!p)
            return;
        decode_scalar(type, p, out);
        if (type == GGUF_TYPE_BOOL)
            check_bools(c, p, 1);
    }
}

static void set_alignment(cursor *c, const gguf_value *v, uint64_t at)
{
    if (!int_in_range(v, 0, UINT32_MAX)) {
        fail_at(c, COPSE_E_FORMAT, at, "must be an integer that fits UINT32");
        return;
    }
    uint32_t a = (uint32_t)v->v.u;
    if (a == 0 || (a & (a - 1)))
        fail_at(c, COPSE_E_FORMAT, at, "alignment %" PRIu32 " is not a power of two", a);
    else if (a > GGUF_MAX_ALIGNMENT)
        fail_at(c, COPSE_E_UNSUPPORTED, at, "alignment %" PRIu32 " is larger than %u",
                a, GGUF_MAX_ALIGNMENT);
    else
        c->r->f.alignment = a;
}

static void read_kv(cursor *c, uint64_t i)
{
    gguf_kv *kv = &c->r->f.kv[i];
    if (rd_item_name(c, &c->r->keys, c->r->f.kv, sizeof *kv, i, "key"))
        return;
    uint32_t type = rd_type(c, "value type");
    uint64_t at = c->pos;
    if (c->rc)
        return;
    read_value(c, type, &kv->val);
    if (!c->rc && !strcmp(kv->key, "general.alignment"))
        set_alignment(c, &kv->val, at);
}

/* --------------------------------------------------------------- tensors */

static void read_dims(cursor *c, gguf_tensor *t)
{
    uint64_t at = c->pos;
    t->n_dims = rd_u32(c, "n_dims");
    if (!c->rc && (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)) {
        fail_at(c, COPSE_E_FORMAT, at, "n_dims %" PRIu32 " is not between 1 and %d",
                t->n_dims, GGUF_MAX_DIMS);
        return;
    }
    t->nelements = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS && !c->rc; d++) {
        at = c->pos;
        uint64_t ne = d < t->n_dims ? rd_u64(c, "dimension") : 1;
        if (c->rc)
            return;
        if (ne == 0)
            fail_at(c, COPSE_E_FORMAT, at, "ne[%" PRIu32 "] is 0", d);
        else if (ne > INT64_MAX / t->nelements)
            fail_at(c, COPSE_E_FORMAT, at, "ne[%" PRIu32 "] = %" PRIu64
                    ": the element count overflows", d, ne);
        t->ne[d] = ne;
        t->nelements *= ne;
    }
}

static void read_tensor_info(cursor *c, uint64_t i)
{
    gguf_file *f = &c->r->f;
    gguf_tensor *t = &f->tensors[i];
    if (rd_item_name(c, &c->r->tensors, f->tensors, sizeof *t, i, "tensor"))
        return;
    read_dims(c, t);
    uint64_t at = c->pos;
    t->type = rd_u32(c, "tensor type");
    t->offset = rd_u64(c, "tensor data offset");
    if (c->rc)
        return;
    const type_info *ti = type_info_of(t->type);
    if (ti && t->ne[0] % ti->blck)
        fail_at(c, COPSE_E_FORMAT, at, "ne[0] = %" PRIu64 " is not a multiple of the %s"
                " block size %" PRIu32, t->ne[0], ti->name, ti->blck);
    else if (t->offset % f->alignment)
        fail_at(c, COPSE_E_FORMAT, at + 4, "data offset %" PRIu64 " is not a multiple"
                " of the alignment %" PRIu32, t->offset, f->alignment);
}

/* Bytes the tensor's data covers: its size, or 1 (a lower bound) when the
** type is not one ggml names; 0 when the size overflows. */
static uint64_t tensor_extent(const gguf_tensor *t)
{
    const type_info *ti = type_info_of(t->type);
    return ti ? type_extent(ti, t->nelements) : 1;
}

static void place_tensor(cursor *c, gguf_tensor *t)
{
    gguf_file *f = &c->r->f;
    uint64_t avail = f->data_offset < f->size ? f->size - f->data_offset : 0;
    uint64_t len = tensor_extent(t);
    snprintf(c->where, sizeof c->where, "tensor '%.80s'", t->name);
    if (len == 0)
        fail_at(c, COPSE_E_FORMAT, f->data_offset, "the byte size of %" PRIu64
                " elements overflows", t->nelements);
    else if (t->offset > avail || len > avail - t->offset)
        fail_at(c, COPSE_E_FORMAT, f->data_offset, "truncated: data (%" PRIu64
                " bytes at data offset %" PRIu64 ") runs past the end of the file"
                " (data section holds %" PRIu64 " bytes)", len, t->offset, avail);
    if (c->rc)
        return;
    t->nbytes = ggml_type_nbytes(t->type, t->nelements);
    t->data = t->nbytes ? f->base + f->data_offset + t->offset : NULL;
}

typedef struct span {
    uint64_t start, end, i;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;   /* ties in file order, so messages are stable */
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Tensors sharing bytes would alias silently: refuse them. */
static void check_overlaps(cursor *c)
{
    gguf_file *f = &c->r->f;
    if (f->n_tensors < 2)
        return;
    span *s = malloc(f->n_tensors * sizeof *s);
    if (!s) {
        fail_at(c, COPSE_E_NOMEM, f->data_offset, "out of memory checking tensor overlap");
        return;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        s[i] = (span){f->tensors[i].offset, f->tensors[i].offset + tensor_extent(&f->tensors[i]), i};
    qsort(s, f->n_tensors, sizeof *s, span_cmp);
    uint64_t last = 0;   /* the span reaching furthest so far */
    for (uint64_t k = 1; k < f->n_tensors && !c->rc; k++) {
        if (s[k].start < s[last].end) {
            const gguf_tensor *t = &f->tensors[s[k].i];
            snprintf(c->where, sizeof c->where, "tensor '%.80s'", t->name);
            fail_at(c, COPSE_E_FORMAT, f->data_offset + t->offset, "data overlaps"
                    " tensor '%.80s' (data offsets %" PRIu64 "..%" PRIu64 ")",
                    f->tensors[s[last].i].name, s[last].start, s[last].end);
        }
        if (s[k].end > s[last].end)
            last = k;
    }
    free(s);
}

/* ---------------------------------------------------------------- header */

enum {
    MIN_KV_BYTES     = 8 + 1 + 4 + 1,          /* key length, key, type, UINT8 */
    MIN_TENSOR_BYTES = 8 + 1 + 4 + 8 + 4 + 8,  /* name, n_dims, ne[0], type, offset */
};

static void read_header(cursor *c)
{
    gguf_file *f = &c->r->f;
    snprintf(c->where, sizeof c->where, "header");
    uint32_t magic = rd_u32(c, "magic");
    if (!c->rc && magic != GGUF_MAGIC) {
        const uint8_t *m = f->base;
        fail_at(c, COPSE_E_FORMAT, 0, "not a GGUF file (starts %02x %02x %02x %02x)",
                m[0], m[1], m[2], m[3]);
        return;
    }
    f->version = rd_u32(c, "version");
    uint32_t swapped = __builtin_bswap32(f->version);
    if (c->rc)
        return;
    if (swapped == 2 || swapped == 3)
        fail_at(c, COPSE_E_UNSUPPORTED, 4, "big-endian GGUF files are not supported");
    else if (f->version < 2 || f->version > 3)
        fail_at(c, COPSE_E_UNSUPPORTED, 4, "GGUF version %" PRIu32 " is not supported"
                " (only 2 and 3)", f->version);
    f->n_tensors = rd_u64(c, "tensor count");
    f->n_kv = rd_u64(c, "metadata count");
    if (c->rc)
        return;
    /* Bound both counts by what the rest of the file could hold before
    ** allocating for them. */
    if (f->n_kv > left(c) / MIN_KV_BYTES)
        fail_at(c, COPSE_E_FORMAT, 16, "metadata count %" PRIu64 " cannot fit in the %"
                PRIu64 " bytes left", f->n_kv, left(c));
    else if (f->n_tensors > left(c) / MIN_TENSOR_BYTES ||
             f->n_kv * MIN_KV_BYTES + f->n_tensors * MIN_TENSOR_BYTES > left(c))
        fail_at(c, COPSE_E_FORMAT, 8, "tensor count %" PRIu64 " cannot fit in the %"
                PRIu64 " bytes left", f->n_tensors, left(c));
}

static int parse(cursor *c)
{
    reader *r = c->r;
    gguf_file *f = &r->f;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    read_header(c);
    if (c->rc)
        return c->rc;

    f->kv = alloc_items(c, f->n_kv, sizeof *f->kv);
    index_init(c, &r->keys, f->n_kv);
    for (uint64_t i = 0; i < f->n_kv && !c->rc; i++)
        read_kv(c, i);

    f->tensors = alloc_items(c, f->n_tensors, sizeof *f->tensors);
    index_init(c, &r->tensors, f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors && !c->rc; i++)
        read_tensor_info(c, i);
    if (c->rc)
        return c->rc;

    /* c->pos <= size, far below 2^64 - alignment */
    f->data_offset = (c->pos + f->alignment - 1) / f->alignment * f->alignment;
    for (uint64_t i = 0; i < f->n_tensors && !c->rc; i++)
        place_tensor(c, &f->tensors[i]);
    check_overlaps(c);
    return c->rc;
}

static int open_image(const void *base, uint64_t size, int mapped, const char *path,
                      gguf_file **out, copse_error *err)
{
    *out = NULL;
    reader *r = calloc(1, sizeof *r);
    char *p = strdup(path);
    if (!r || !p) {
        free(r);
        free(p);
        if (mapped)
            munmap((void *)base, size);
        return copse_fail(err, COPSE_E_NOMEM, "%s: out of memory", path);
    }
    r->f.base = base;
    r->f.size = size;
    r->f.mapped = mapped;
    r->f.path = p;
    cursor c = {.r = r, .err = err};
    if (parse(&c)) {
        gguf_close(&r->f);
        return c.rc;
    }
    copse_error_clear(err);
    *out = &r->f;
    return COPSE_OK;
}

int gguf_open_buffer(const void *buf, uint64_t size, gguf_file **out, copse_error *err)
{
    return open_image(buf, size, 0, "<memory>", out, err);
}

int gguf_open(const char *path, gguf_file **out, copse_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return copse_fail(err, COPSE_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = COPSE_OK;
    if (fstat(fd, &st) != 0)
        rc = copse_fail(err, COPSE_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = copse_fail(err, COPSE_E_IO, "%s: is a directory, not a GGUF file", path);
    else if (!S_ISREG(st.st_mode))
        rc = copse_fail(err, COPSE_E_IO, "%s: not a regular file", path);
    else if (st.st_size == 0)
        rc = copse_fail(err, COPSE_E_FORMAT, "%s: empty file, not GGUF", path);
    else if ((uint64_t)st.st_size > SIZE_MAX)
        rc = copse_fail(err, COPSE_E_IO, "%s: too large to map", path);
    void *m = MAP_FAILED;
    if (rc == COPSE_OK) {
        m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            rc = copse_fail(err, COPSE_E_IO, "%s: cannot map: %s", path, strerror(errno));
    }
    close(fd);
    return rc ? rc : open_image(m, (uint64_t)st.st_size, 1, path, out, err);
}

void gguf_close(gguf_file *g)
{
    if (!g)
        return;
    reader *r = (reader *)g;
    while (r->allocs) {
        alloc_node *next = r->allocs->next;
        free(r->allocs);
        r->allocs = next;
    }
    if (g->mapped)
        munmap((void *)g->base, g->size);
    free(g->path);
    free(r);
}

/* --------------------------------------------------------------- lookups */

const gguf_value *gguf_get(const gguf_file *g, const char *key)
{
    if (!g || !key)
        return NULL;
    const reader *r = (const reader *)g;
    uint64_t s = *index_slot(&r->keys, g->kv, sizeof *g->kv, key);
    return s ? &g->kv[s - 1].val : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name)
{
    if (!g || !name)
        return NULL;
    const reader *r = (const reader *)g;
    uint64_t s = *index_slot(&r->tensors, g->tensors, sizeof *g->tensors, name);
    return s ? &g->tensors[s - 1] : NULL;
}

/* The value of key, or an error: COPSE_E_ARG if missing, COPSE_E_FORMAT if
** want rejects its type. */
static int get_typed(const gguf_file *g, const char *key, int (*want)(uint32_t),
                     const char *want_name, const gguf_value **out, copse_error *err)
{
    const gguf_value *v = gguf_get(g, key);
    if (!v)
        return copse_fail(err, COPSE_E_ARG, "%s: missing key '%s'", g ? g->path : "gguf", key);
    if (!want(v->type))
        return copse_fail(err, COPSE_E_FORMAT, "%s: key '%s' is %s, expected %s",
                          g->path, key, value_type_names[v->type], want_name);
    *out = v;
    return COPSE_OK;
}

static int is_int(uint32_t t)    { return is_unsigned(t) || is_signed(t); }
static int is_float(uint32_t t)  { return t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64; }
static int is_bool(uint32_t t)   { return t == GGUF_TYPE_BOOL; }
static int is_string(uint32_t t) { return t == GGUF_TYPE_STRING; }
static int is_array(uint32_t t)  { return t == GGUF_TYPE_ARRAY; }

/* An integer value within [lo, hi], as 64 bits the caller narrows. */
static int get_int(const gguf_file *g, const char *key, int64_t lo, uint64_t hi,
                   const char *want_name, uint64_t *out, copse_error *err)
{
    const gguf_value *v;
    int rc = get_typed(g, key, is_int, "an integer", &v, err);
    if (rc)
        return rc;
    if (!int_in_range(v, lo, hi)) {
        if (is_signed(v->type))
            return copse_fail(err, COPSE_E_FORMAT, "%s: key '%s' = %" PRId64
                              " is out of range for %s", g->path, key, v->v.i, want_name);
        return copse_fail(err, COPSE_E_FORMAT, "%s: key '%s' = %" PRIu64
                          " is out of range for %s", g->path, key, v->v.u, want_name);
    }
    *out = v->v.u;
    return COPSE_OK;
}

int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out, copse_error *err)
{
    uint64_t v;
    int rc = get_int(g, key, 0, UINT32_MAX, "UINT32", &v, err);
    if (!rc)
        *out = (uint32_t)v;
    return rc;
}

int gguf_get_i32(const gguf_file *g, const char *key, int32_t *out, copse_error *err)
{
    uint64_t v;
    int rc = get_int(g, key, INT32_MIN, INT32_MAX, "INT32", &v, err);
    if (!rc)
        *out = (int32_t)(int64_t)v;
    return rc;
}

int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out, copse_error *err)
{
    return get_int(g, key, 0, UINT64_MAX, "UINT64", out, err);
}

int gguf_get_f32(const gguf_file *g, const char *key, float *out, copse_error *err)
{
    const gguf_value *v;
    int rc = get_typed(g, key, is_float, "a float", &v, err);
    if (rc)
        return rc;
    if (isfinite(v->v.f) && fabs(v->v.f) > FLT_MAX)
        return copse_fail(err, COPSE_E_FORMAT, "%s: key '%s' = %g is out of range for"
                          " FLOAT32", g->path, key, v->v.f);
    *out = (float)v->v.f;
    return COPSE_OK;
}

int gguf_get_bool(const gguf_file *g, const char *key, int *out, copse_error *err)
{
    const gguf_value *v;
    int rc = get_typed(g, key, is_bool, "BOOL", &v, err);
    if (!rc)
        *out = (int)v->v.u;
    return rc;
}

int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out, copse_error *err)
{
    const gguf_value *v;
    int rc = get_typed(g, key, is_string, "STRING", &v, err);
    if (!rc)
        *out = v->v.s;
    return rc;
}

int gguf_get_arr(const gguf_file *g, const char *key, uint32_t elem_type,
                 const gguf_array **out, copse_error *err)
{
    const gguf_value *v;
    int rc = get_typed(g, key, is_array, "ARRAY", &v, err);
    if (rc)
        return rc;
    if (elem_type != GGUF_TYPE_COUNT && v->v.arr.type != elem_type)
        return copse_fail(err, COPSE_E_FORMAT, "%s: key '%s' is an array of %s, expected %s",
                          g->path, key, value_type_names[v->v.arr.type],
                          elem_type < GGUF_TYPE_COUNT ? value_type_names[elem_type] : "?");
    *out = &v->v.arr;
    return COPSE_OK;
}

double gguf_arr_num(const gguf_array *arr, uint64_t i)
{
    if (!is_fixed(arr->type))
        return 0;
    gguf_value v;
    decode_scalar(arr->type, (const uint8_t *)arr->data + i * value_size[arr->type], &v);
    if (is_signed(v.type))
        return (double)v.v.i;
    return is_float(v.type) ? v.v.f : (double)v.v.u;
}
