/*
** GGUF reader and writer: round trips of every metadata type and tensor
** type copse reads, the shared llama.cpp vocab files, hostile images made
** by mutating a good one, and the fuzz corpus in tests/data/gguf.
*/
#include <dirent.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "gguf.h"

#define WALK_CHECK(cond) ck_assert(cond)
#include "fuzz/walk.h"
#include "fuzz/sample.h"

/* ------------------------------------------------------------ round trip */

/* Build w's image (freeing w) and open it; the caller frees *img. */
static gguf_file *open_built(gguf_writer *w, uint8_t **img)
{
    uint64_t size;
    copse_error e;
    gguf_file *g;
    ck_assert_int_eq(gguf_writer_build(w, img, &size, &e), COPSE_OK);
    gguf_writer_free(w);
    int rc = gguf_open_buffer(*img, size, &g, &e);
    ck_assert_msg(rc == COPSE_OK, "%s", e.msg);
    return g;
}

static void assert_value_eq(const gguf_value *want, const gguf_value *got, const char *key)
{
    ck_assert_msg(got->type == want->type, "%s: type %u, want %u", key, got->type, want->type);
    if (want->type == GGUF_TYPE_STRING) {
        ck_assert_uint_eq(got->v.s.len, want->v.s.len);
        ck_assert(memcmp(got->v.s.ptr, want->v.s.ptr, want->v.s.len) == 0);
    } else if (want->type == GGUF_TYPE_ARRAY) {
        const gguf_array *a = &want->v.arr, *b = &got->v.arr;
        ck_assert_msg(b->type == a->type && b->n == a->n, "%s: array %u x %llu", key,
                      b->type, (unsigned long long)b->n);
        for (uint64_t i = 0; i < a->n; i++) {
            if (a->type == GGUF_TYPE_STRING) {
                gguf_value x = {.type = GGUF_TYPE_STRING, .v.s = a->strs[i]};
                gguf_value y = {.type = GGUF_TYPE_STRING, .v.s = b->strs[i]};
                assert_value_eq(&x, &y, key);
            } else if (a->type == GGUF_TYPE_ARRAY) {
                assert_value_eq(&a->vals[i], &b->vals[i], key);
            }
        }
        if (gguf_value_size(a->type))
            ck_assert(a->n == 0 || memcmp(a->data, b->data, a->n * gguf_value_size(a->type)) == 0);
    } else if (want->type == GGUF_TYPE_FLOAT32 || want->type == GGUF_TYPE_FLOAT64) {
        ck_assert_msg(memcmp(&got->v.f, &want->v.f, sizeof(double)) == 0, "%s: %g", key, got->v.f);
    } else {
        ck_assert_msg(got->v.u == want->v.u, "%s: %llu", key, (unsigned long long)got->v.u);
    }
}

static void assert_sample(const gguf_file *g, uint32_t version, uint32_t alignment)
{
    ck_assert_uint_eq(g->version, version);
    ck_assert_uint_eq(g->alignment, alignment ? alignment : GGUF_DEFAULT_ALIGNMENT);
    ck_assert_uint_eq(g->n_kv, SAMPLE_N_KV + (alignment != 0));
    for (size_t i = 0; i < SAMPLE_N_KV; i++) {
        const gguf_value *v = gguf_get(g, sample_kvs[i].key);
        ck_assert_msg(v != NULL, "missing %s", sample_kvs[i].key);
        assert_value_eq(&sample_kvs[i].val, v, sample_kvs[i].key);
    }
    ck_assert_ptr_null(gguf_get(g, "s.u"));
    ck_assert_uint_eq(g->n_tensors, SAMPLE_N_TENSORS);
    ck_assert_uint_eq(g->data_offset % g->alignment, 0);
    for (size_t i = 0; i < SAMPLE_N_TENSORS; i++) {
        const sample_tensor *want = &sample_tensors[i];
        const gguf_tensor *t = gguf_find_tensor(g, want->name);
        ck_assert_ptr_eq(t, &g->tensors[i]);
        ck_assert_uint_eq(t->n_dims, want->n_dims);
        ck_assert_uint_eq(t->type, want->type);
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
            ck_assert_uint_eq(t->ne[d], d < want->n_dims ? want->ne[d] : 1);
        ck_assert_uint_eq(t->nelements, sample_tensor_nelements(want));
        ck_assert_uint_eq(t->nbytes, ggml_type_nbytes(want->type, t->nelements));
        ck_assert_uint_eq(((const uint8_t *)t->data - g->base) % g->alignment, 0);
        uint8_t buf[512];
        sample_tensor_data(i, buf, t->nbytes);
        ck_assert(memcmp(t->data, buf, t->nbytes) == 0);
    }
    ck_assert_ptr_null(gguf_find_tensor(g, "t.f3"));
    gguf_walk(g);
}

static const uint32_t rt_version[] = {3, 2, 3};
static const uint32_t rt_alignment[] = {0, 64, 4096};

START_TEST(round_trip_buffer)
{
    uint64_t size;
    uint8_t *img = sample_image(rt_version[_i], rt_alignment[_i], &size);
    ck_assert_ptr_nonnull(img);
    gguf_file *g;
    copse_error e;
    int rc = gguf_open_buffer(img, size, &g, &e);
    ck_assert_msg(rc == COPSE_OK, "%s", e.msg);
    ck_assert_str_eq(e.msg, "");
    assert_sample(g, rt_version[_i], rt_alignment[_i]);
    /* the image ends with the last tensor's padding */
    const gguf_tensor *last = &g->tensors[g->n_tensors - 1];
    ck_assert_uint_eq(size % g->alignment, 0);
    ck_assert_uint_lt(g->data_offset + last->offset + last->nbytes, size + 1);
    ck_assert_uint_gt(g->data_offset + last->offset + last->nbytes + g->alignment, size);
    gguf_close(g);
    free(img);
}
END_TEST

START_TEST(round_trip_file)
{
    const char *path = tu_path(tu_build_dir(), "test_gguf_rt.gguf");
    gguf_writer *w = sample_writer(3, 0);
    ck_assert_ptr_nonnull(w);
    copse_error e;
    ck_assert_int_eq(gguf_writer_write(w, path, &e), COPSE_OK);
    uint8_t *img;
    uint64_t size;
    ck_assert_int_eq(gguf_writer_build(w, &img, &size, &e), COPSE_OK);
    gguf_writer_free(w);

    size_t len;
    char *bytes = tu_read_file(path, &len);
    ck_assert_ptr_nonnull(bytes);
    ck_assert_uint_eq(len, size);
    ck_assert(memcmp(bytes, img, size) == 0);
    ck_assert_int_ne(access(tu_path(tu_build_dir(), "test_gguf_rt.gguf.tmp"), F_OK), 0);

    gguf_file *g;
    int rc = gguf_open(path, &g, &e);
    ck_assert_msg(rc == COPSE_OK, "%s", e.msg);
    ck_assert(g->mapped);
    ck_assert_str_eq(g->path, path);
    assert_sample(g, 3, 0);
    gguf_close(g);
    free(bytes);
    free(img);
    unlink(path);
}
END_TEST

START_TEST(writer_rejects_bad_input)
{
    gguf_writer *w = gguf_writer_new(3);
    uint64_t ne[2] = {48, 2};
    uint8_t data[4 * 34] = {0};
    copse_error e;
    /* ne[0] not whole Q8_0 blocks */
    ck_assert_int_eq(gguf_writer_add_tensor(w, "q", GGML_TYPE_Q8_0, 2, ne, data), COPSE_E_ARG);
    /* the failure sticks: later adds and the write report it */
    ck_assert_int_eq(gguf_writer_add_u32(w, "x", 1), COPSE_E_ARG);
    uint8_t *img;
    uint64_t size;
    ck_assert_int_eq(gguf_writer_build(w, &img, &size, &e), COPSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(e.msg, "'q'"));
    ck_assert_int_eq(gguf_writer_write(w, tu_path(tu_build_dir(), "test_gguf_bad.gguf"), &e),
                     COPSE_E_ARG);
    ck_assert_int_ne(access(tu_path(tu_build_dir(), "test_gguf_bad.gguf"), F_OK), 0);
    gguf_writer_free(w);

    struct { uint32_t type; uint64_t u; } bad[] = {
        {GGUF_TYPE_UINT8, 256}, {GGUF_TYPE_BOOL, 2}, {GGUF_TYPE_UINT32, 1ull << 32}, {99, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        w = gguf_writer_new(3);
        gguf_value v = {.type = bad[i].type, .v.u = bad[i].u};
        ck_assert_int_eq(gguf_writer_add_val(w, "k", &v), COPSE_E_ARG);
        gguf_writer_free(w);
    }
    w = gguf_writer_new(3);
    gguf_value v = {.type = GGUF_TYPE_INT8, .v.i = -129};
    ck_assert_int_eq(gguf_writer_add_val(w, "k", &v), COPSE_E_ARG);
    gguf_writer_free(w);
    w = gguf_writer_new(3);
    ck_assert_int_eq(gguf_writer_add_u32(w, "general.alignment", 48), COPSE_E_ARG);
    gguf_writer_free(w);
    w = gguf_writer_new(3);
    ck_assert_int_eq(gguf_writer_add_u32(w, "general.alignment", 1u << 21), COPSE_E_ARG);
    gguf_writer_free(w);
}
END_TEST

/* Vocab files have ~150k-element arrays and models hundreds of tensors:
** lookups go through an index, and every name must resolve. */
START_TEST(many_tensors_and_tokens)
{
    enum { NT = 3000, NTOK = 150000 };
    gguf_writer *w = gguf_writer_new(3);
    static char names[NT][24];
    float x = 1;
    uint64_t ne = 1;
    for (int i = 0; i < NT; i++) {
        snprintf(names[i], sizeof names[i], "blk.%d.w", i);
        ck_assert_int_eq(gguf_writer_add_tensor(w, names[i], GGML_TYPE_F32, 1, &ne, &x), COPSE_OK);
    }
    char (*tok)[16] = malloc(NTOK * sizeof *tok);
    const char **toks = malloc(NTOK * sizeof *toks);
    for (int i = 0; i < NTOK; i++) {
        snprintf(tok[i], sizeof tok[i], "t%d", i);
        toks[i] = tok[i];
    }
    ck_assert_int_eq(gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NTOK), COPSE_OK);
    uint8_t *img;
    gguf_file *g = open_built(w, &img);
    copse_error e;
    for (int i = 0; i < NT; i++) {
        const gguf_tensor *t = gguf_find_tensor(g, names[i]);
        ck_assert_ptr_eq(t, &g->tensors[i]);
        ck_assert_uint_eq(t->offset, (uint64_t)i * GGUF_DEFAULT_ALIGNMENT);
    }
    const gguf_array *a;
    ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &a, &e), COPSE_OK);
    ck_assert_uint_eq(a->n, NTOK);
    ck_assert(a->strs[NTOK - 1].len == 7 && !memcmp(a->strs[NTOK - 1].ptr, "t149999", 7));
    gguf_close(g);
    free(img);
    free(tok);
    free(toks);
}
END_TEST

START_TEST(typed_getters)
{
    gguf_writer *w = gguf_writer_new(3);
    gguf_value f64 = {.type = GGUF_TYPE_FLOAT64, .v.f = 1e39};
    gguf_value neg = {.type = GGUF_TYPE_INT8, .v.i = -5};
    gguf_value big = {.type = GGUF_TYPE_UINT64, .v.u = 1ull << 32};
    gguf_writer_add_u32(w, "u32", 7);
    gguf_writer_add_i32(w, "i32", -7);
    gguf_writer_add_u64(w, "u64", 1ull << 40);
    gguf_writer_add_f32(w, "f32", 0.5f);
    gguf_writer_add_bool(w, "bool", 5);
    gguf_writer_add_str(w, "str", "hi");
    gguf_writer_add_val(w, "f64", &f64);
    gguf_writer_add_val(w, "neg", &neg);
    gguf_writer_add_val(w, "big", &big);
    uint32_t u3[] = {1, 2, 3};
    ck_assert_int_eq(gguf_writer_add_arr(w, "arr", GGUF_TYPE_UINT32, u3, 3), COPSE_OK);
    uint8_t *img;
    gguf_file *g = open_built(w, &img);
    copse_error e;

    uint32_t u;
    int32_t i;
    uint64_t u64;
    float f;
    int b;
    gguf_str s;
    const gguf_array *a;
    ck_assert_int_eq(gguf_get_u32(g, "u32", &u, &e), COPSE_OK);
    ck_assert_uint_eq(u, 7);
    ck_assert_int_eq(gguf_get_i32(g, "u32", &i, &e), COPSE_OK);
    ck_assert_int_eq(i, 7);
    ck_assert_int_eq(gguf_get_i32(g, "i32", &i, &e), COPSE_OK);
    ck_assert_int_eq(i, -7);
    ck_assert_int_eq(gguf_get_i32(g, "neg", &i, &e), COPSE_OK);
    ck_assert_int_eq(i, -5);
    ck_assert_int_eq(gguf_get_u32(g, "i32", &u, &e), COPSE_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "'i32' = -7 is out of range"));
    ck_assert_int_eq(gguf_get_u64(g, "neg", &u64, &e), COPSE_E_FORMAT);
    ck_assert_int_eq(gguf_get_u32(g, "big", &u, &e), COPSE_E_FORMAT);
    ck_assert_int_eq(gguf_get_i32(g, "big", &i, &e), COPSE_E_FORMAT);
    ck_assert_int_eq(gguf_get_u64(g, "u64", &u64, &e), COPSE_OK);
    ck_assert_uint_eq(u64, 1ull << 40);
    ck_assert_int_eq(gguf_get_f32(g, "f32", &f, &e), COPSE_OK);
    ck_assert_float_eq(f, 0.5f);
    ck_assert_int_eq(gguf_get_f32(g, "f64", &f, &e), COPSE_E_FORMAT);
    ck_assert_int_eq(gguf_get_f32(g, "u32", &f, &e), COPSE_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "'u32' is UINT32, expected a float"));
    ck_assert_int_eq(gguf_get_bool(g, "bool", &b, &e), COPSE_OK);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(gguf_get_bool(g, "u32", &b, &e), COPSE_E_FORMAT);
    ck_assert_int_eq(gguf_get_str(g, "str", &s, &e), COPSE_OK);
    ck_assert(s.len == 2 && !memcmp(s.ptr, "hi", 2));
    ck_assert_int_eq(gguf_get_str(g, "nope", &s, &e), COPSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(e.msg, "missing key 'nope'"));
    ck_assert_int_eq(gguf_get_u32(g, "nope", &u, NULL), COPSE_E_ARG);
    ck_assert_int_eq(gguf_get_arr(g, "arr", GGUF_TYPE_UINT32, &a, &e), COPSE_OK);
    ck_assert_uint_eq(a->n, 3);
    ck_assert(gguf_arr_num(a, 2) == 3.0);
    ck_assert_int_eq(gguf_get_arr(g, "arr", GGUF_TYPE_INT32, &a, &e), COPSE_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "array of UINT32, expected INT32"));
    ck_assert_int_eq(gguf_get_arr(g, "str", GGUF_TYPE_COUNT, &a, &e), COPSE_E_FORMAT);
    gguf_close(g);
    free(img);
}
END_TEST

START_TEST(type_names_and_sizes)
{
    char buf[16];
    ck_assert_str_eq(ggml_type_name(GGML_TYPE_Q8_0, buf), "Q8_0");
    ck_assert_str_eq(ggml_type_name(GGML_TYPE_Q4_K, buf), "Q4_K");
    ck_assert_str_eq(ggml_type_name(GGML_TYPE_BF16, buf), "BF16");
    ck_assert_str_eq(ggml_type_name(77, buf), "type 77");
    ck_assert_str_eq(ggml_type_name(31, buf), "type 31");
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_F32, 10), 40);
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_F16, 10), 20);
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_BF16, 3), 6);
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_Q8_0, 64), 68);
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_Q8_0, 40), 0);
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_Q4_K, 512), 288);
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_Q4_K, 32), 0);
    ck_assert_uint_eq(ggml_type_nbytes(31, 32), 0);
    ck_assert_uint_eq(ggml_type_block(GGML_TYPE_Q6_K), 256);
    ck_assert_uint_eq(ggml_type_block(31), 0);
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_F32, 1ull << 62), 0);
}
END_TEST

/* -------------------------------------------------------- hostile images */

/* Open an exact-size copy of img[0..size) so ASan sees any read past it. */
static int open_copy(const uint8_t *img, uint64_t size, copse_error *e, int walk)
{
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, img, size);
    gguf_file *g;
    int rc = gguf_open_buffer(copy, size, &g, e);
    if (rc == COPSE_OK) {
        if (walk)
            gguf_walk(g);
        gguf_close(g);
    } else {
        ck_assert_ptr_null(g);
        ck_assert_int_eq(e->code, rc);
    }
    free(copy);
    return rc;
}

/* Offset just past the length-prefixed string s, which must occur once. */
static uint64_t anchor_end(const uint8_t *img, uint64_t size, const char *s)
{
    uint64_t len = strlen(s);
    uint8_t pat[72];
    ck_assert_uint_le(len, 64);
    memcpy(pat, &len, 8);
    memcpy(pat + 8, s, len);
    const uint8_t *p = memmem(img, size, pat, 8 + len);
    ck_assert_msg(p != NULL, "anchor %s not found", s);
    ck_assert_ptr_null(memmem(p + 1, size - (uint64_t)(p + 1 - img), pat, 8 + len));
    return (uint64_t)(p - img) + 8 + len;
}

typedef struct mutation {
    const char *anchor;   /* a key or tensor name; NULL: the start of the file */
    int64_t     delta;    /* where to write, from the end of the anchor */
    int         width;    /* bytes of value to write there (little-endian) */
    uint64_t    value;
    int         code;
    const char *msg;      /* expected in the error message */
} mutation;

/* The sample's keys: general.alignment is #0, then s.* #1-13, a.* #14-26,
** n.* #27-29, dup.a #30, dup.b #31. Its tensors' data offsets: t.f32 0,
** t.f16 64, t.bf16 96, t.q8 160, t.4d 320. After a key's name come its type
** (+0) and value (+4; an array's element type +4, length +8, data +16);
** after a tensor's name come n_dims (+0), ne[d] (+4+8d), type and offset. */
#define LEN_OF(s) s, -(int64_t)(sizeof(s) - 1 + 8)
static const mutation mutations[] = {
    {NULL, 0, 4, 0x46554748, COPSE_E_FORMAT, "header: not a GGUF file (starts 48 47 55 46)"},
    {NULL, 4, 4, 1, COPSE_E_UNSUPPORTED, "GGUF version 1 is not supported"},
    {NULL, 4, 4, 0, COPSE_E_UNSUPPORTED, "GGUF version 0 is not supported"},
    {NULL, 4, 4, 4, COPSE_E_UNSUPPORTED, "GGUF version 4 is not supported"},
    {NULL, 4, 4, 0x03000000, COPSE_E_UNSUPPORTED, "big-endian"},
    {NULL, 8, 8, UINT64_MAX, COPSE_E_FORMAT, "tensor count 18446744073709551615 cannot fit"},
    {NULL, 8, 8, 1000, COPSE_E_FORMAT, "header: tensor count 1000 cannot fit"},
    {NULL, 8, 8, 6, COPSE_E_FORMAT, "tensor #5"},
    {NULL, 16, 8, UINT64_MAX, COPSE_E_FORMAT, "metadata count 18446744073709551615 cannot fit"},
    {NULL, 16, 8, 1ull << 40, COPSE_E_FORMAT, "metadata count 1099511627776 cannot fit"},
    {LEN_OF("s.u8"), 8, UINT64_MAX, COPSE_E_FORMAT, "key #1: truncated: key needs 18446744073709551615"},
    {LEN_OF("s.u8"), 8, 0, COPSE_E_FORMAT, "key #1: empty key name"},
    {"s.u8", -1, 1, 0, COPSE_E_FORMAT, "key #1: key name contains a NUL byte"},
    {"dup.b", -1, 1, 'a', COPSE_E_FORMAT, "key 'dup.a': duplicate key name (also key #30)"},
    {"s.u32", 0, 4, 13, COPSE_E_FORMAT, "key 's.u32': unknown value type 13"},
    {"s.u32", 0, 4, UINT32_MAX, COPSE_E_FORMAT, "unknown value type 4294967295"},
    {"s.bool", 4, 1, 2, COPSE_E_FORMAT, "key 's.bool': bool 0 is 2, not 0 or 1"},
    {"a.bool", 17, 1, 7, COPSE_E_FORMAT, "key 'a.bool': bool 1 is 7, not 0 or 1"},
    {"s.str", 4, 8, 1ull << 40, COPSE_E_FORMAT, "key 's.str': truncated: string needs 1099511627776"},
    {"s.str", 4, 8, UINT64_MAX, COPSE_E_FORMAT, "key 's.str': truncated"},
    {"a.u16", 8, 8, 1ull << 62, COPSE_E_FORMAT, "key 'a.u16': array of 4611686018427387904 UINT16 cannot fit"},
    {"a.u64", 8, 8, UINT64_MAX / 8 + 2, COPSE_E_FORMAT, "key 'a.u64': array of 2305843009213693953"},
    {"a.str", 8, 8, 1ull << 40, COPSE_E_FORMAT, "key 'a.str': array of 1099511627776 STRING cannot fit"},
    {"a.str", 16, 8, 1ull << 40, COPSE_E_FORMAT, "key 'a.str': truncated: array string"},
    {"a.f32", 4, 4, 77, COPSE_E_FORMAT, "key 'a.f32': unknown array element type 77"},
    {"n.i32", 8, 8, UINT64_MAX, COPSE_E_FORMAT, "key 'n.i32': array of 18446744073709551615 ARRAY"},
    {"n.i32", 16, 4, 99, COPSE_E_FORMAT, "key 'n.i32': unknown array element type 99"},
    {"n.i32", 20, 8, 1ull << 50, COPSE_E_FORMAT, "key 'n.i32': array of 1125899906842624 INT32"},
    {"general.alignment", 4, 4, 0, COPSE_E_FORMAT, "key 'general.alignment': alignment 0 is not a power of two"},
    {"general.alignment", 4, 4, 48, COPSE_E_FORMAT, "alignment 48 is not a power of two"},
    {"general.alignment", 4, 4, 1u << 21, COPSE_E_UNSUPPORTED, "alignment 2097152 is larger than 1048576"},
    {"general.alignment", 0, 4, GGUF_TYPE_FLOAT32, COPSE_E_FORMAT, "'general.alignment': must be an integer"},
    {"general.alignment", 0, 4, GGUF_TYPE_INT32, COPSE_OK, NULL},
    {"general.alignment", 4, 4, 64, COPSE_E_FORMAT, "tensor 't.bf16': data offset 96 is not a multiple of the alignment 64"},
    {LEN_OF("t.f32"), 8, 1ull << 40, COPSE_E_FORMAT, "tensor #0: truncated: tensor needs 1099511627776"},
    {LEN_OF("t.f32"), 8, 0, COPSE_E_FORMAT, "tensor #0: empty tensor name"},
    {"t.4d", -2, 2, 'q' | '8' << 8, COPSE_E_FORMAT, "tensor 't.q8': duplicate tensor name (also tensor #3)"},
    {"t.f32", 0, 4, 0, COPSE_E_FORMAT, "tensor 't.f32': n_dims 0 is not between 1 and 4"},
    {"t.f32", 0, 4, 5, COPSE_E_FORMAT, "n_dims 5 is not between 1 and 4"},
    {"t.f32", 4, 8, 0, COPSE_E_FORMAT, "tensor 't.f32': ne[0] is 0"},
    {"t.f32", 12, 8, 1ull << 62, COPSE_E_FORMAT, "ne[1] = 4611686018427387904: the element count overflows"},
    {"t.f32", 12, 8, UINT64_MAX, COPSE_E_FORMAT, "ne[1] = 18446744073709551615: the element count overflows"},
    {"t.4d", 28, 8, 1ull << 61, COPSE_E_FORMAT, "ne[3] = 2305843009213693952: the element count overflows"},
    {"t.f32", 12, 8, 1ull << 61, COPSE_E_FORMAT, "tensor 't.f32': the byte size of 6917529027641081856 elements overflows"},
    {"t.f32", 12, 8, 1ull << 40, COPSE_E_FORMAT, "tensor 't.f32': truncated: data (13194139533312 bytes"},
    {"t.q8", 4, 8, 48, COPSE_E_FORMAT, "tensor 't.q8': ne[0] = 48 is not a multiple of the Q8_0 block size 32"},
    {"t.f16", 12, 4, GGML_TYPE_Q4_K, COPSE_E_FORMAT, "ne[0] = 7 is not a multiple of the Q4_K block size 256"},
    {"t.f16", 12, 4, 77, COPSE_OK, NULL},
    {"t.f16", 12, 4, UINT32_MAX, COPSE_OK, NULL},
    {"t.q8", 20, 4, GGML_TYPE_Q4_0, COPSE_OK, NULL},
    {"t.q8", 20, 4, GGML_TYPE_F32, COPSE_E_FORMAT, "tensor 't.q8': truncated: data (512 bytes at data offset 160)"},
    {"t.f16", 16, 8, 68, COPSE_E_FORMAT, "tensor 't.f16': data offset 68 is not a multiple of the alignment 32"},
    {"t.f16", 16, 8, 0, COPSE_E_FORMAT, "tensor 't.f16': data overlaps tensor 't.f32' (data offsets 0..60)"},
    {"t.4d", 40, 8, 96, COPSE_E_FORMAT, "tensor 't.4d': data overlaps tensor 't.bf16'"},
    {"t.f16", 16, 8, 1ull << 62, COPSE_E_FORMAT, "tensor 't.f16': truncated: data (14 bytes at data offset 4611686018427387904)"},
    {"t.f16", 16, 8, UINT64_MAX - 31, COPSE_E_FORMAT, "tensor 't.f16': truncated"},
    {"t.4d", 40, 8, 4096, COPSE_E_FORMAT, "truncated: data (48 bytes at data offset 4096)"},
};

START_TEST(hostile_mutations)
{
    uint64_t size;
    uint8_t *base = sample_image(3, 32, &size);
    ck_assert_ptr_nonnull(base);
    uint8_t *img = malloc(size);
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++) {
        const mutation *m = &mutations[i];
        memcpy(img, base, size);
        uint64_t at = (m->anchor ? anchor_end(base, size, m->anchor) : 0) + (uint64_t)m->delta;
        ck_assert_uint_le(at + (uint64_t)m->width, size);
        memcpy(img + at, &m->value, (size_t)m->width);
        copse_error e;
        int rc = open_copy(img, size, &e, 1);
        ck_assert_msg(rc == m->code, "case %zu: code %d, want %d: %s", i, rc, m->code, e.msg);
        if (m->msg)
            ck_assert_msg(strstr(e.msg, m->msg) && strstr(e.msg, "<memory>: "),
                          "case %zu: '%s' lacks '%s'", i, e.msg, m->msg);
    }
    free(img);
    free(base);
}
END_TEST

/* Every cut before the end of the last tensor's data is an error naming
** the truncation; from there on the file is whole. */
START_TEST(hostile_truncation)
{
    uint64_t size;
    uint8_t *img = sample_image(3, 0, &size);
    gguf_file *g;
    copse_error e;
    ck_assert_int_eq(gguf_open_buffer(img, size, &g, &e), COPSE_OK);
    const gguf_tensor *last = &g->tensors[g->n_tensors - 1];
    uint64_t end = g->data_offset + last->offset + last->nbytes;
    gguf_close(g);
    for (uint64_t n = 0; n < size; n++) {
        int rc = open_copy(img, n, &e, 0);
        if (n >= end) {
            ck_assert_msg(rc == COPSE_OK, "cut at %llu: %s", (unsigned long long)n, e.msg);
            continue;
        }
        ck_assert_msg(rc == COPSE_E_FORMAT, "cut at %llu: %d", (unsigned long long)n, rc);
        ck_assert_msg(strstr(e.msg, "truncated") || strstr(e.msg, "cannot fit"),
                      "cut at %llu: %s", (unsigned long long)n, e.msg);
    }
    free(img);
}
END_TEST

START_TEST(unknown_tensor_type_passes)
{
    uint64_t size;
    uint8_t *img = sample_image(3, 0, &size);
    uint32_t type = 77;
    memcpy(img + anchor_end(img, size, "t.f16") + 12, &type, 4);
    gguf_file *g;
    copse_error e;
    ck_assert_int_eq(gguf_open_buffer(img, size, &g, &e), COPSE_OK);
    const gguf_tensor *t = gguf_find_tensor(g, "t.f16");
    ck_assert_uint_eq(t->type, 77);
    ck_assert_uint_eq(t->nbytes, 0);
    ck_assert_ptr_null(t->data);
    ck_assert_uint_eq(t->nelements, 7);
    gguf_close(g);
    free(img);
}
END_TEST

/* A key holding `depth` arrays nested in each other, innermost empty. */
static uint64_t nested_image(uint8_t *buf, int depth)
{
    uint8_t *p = buf;
#define PUT(v, n) do { uint64_t v_ = (v); memcpy(p, &v_, n); p += n; } while (0)
    PUT(GGUF_MAGIC, 4);
    PUT(3, 4);
    PUT(0, 8);
    PUT(1, 8);
    PUT(4, 8);
    memcpy(p, "deep", 4);
    p += 4;
    PUT(GGUF_TYPE_ARRAY, 4);
    for (int d = 1; d < depth; d++) {
        PUT(GGUF_TYPE_ARRAY, 4);
        PUT(1, 8);
    }
    PUT(GGUF_TYPE_UINT8, 4);
    PUT(0, 8);
#undef PUT
    return (uint64_t)(p - buf);
}

START_TEST(nesting_depth_bound)
{
    uint8_t buf[512];
    copse_error e;
    uint64_t n = nested_image(buf, GGUF_MAX_ARRAY_DEPTH);
    ck_assert_int_eq(open_copy(buf, n, &e, 1), COPSE_OK);
    n = nested_image(buf, GGUF_MAX_ARRAY_DEPTH + 1);
    ck_assert_int_eq(open_copy(buf, n, &e, 1), COPSE_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "key 'deep': arrays nested deeper than 8"));
}
END_TEST

START_TEST(open_missing_dir_empty)
{
    gguf_file *g = (gguf_file *)1;
    copse_error e;
    const char *dir = tu_build_dir();
    ck_assert_int_eq(gguf_open(tu_path(dir, "no-such.gguf"), &g, &e), COPSE_E_IO);
    ck_assert_ptr_null(g);
    ck_assert_ptr_nonnull(strstr(e.msg, "no-such.gguf: cannot open: No such file"));
    ck_assert_int_eq(gguf_open(dir, &g, &e), COPSE_E_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "is a directory"));
    const char *empty = tu_path(dir, "test_gguf_empty.gguf");
    FILE *f = fopen(empty, "wb");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(gguf_open(empty, &g, &e), COPSE_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "test_gguf_empty.gguf: empty file"));
    unlink(empty);
    ck_assert_int_eq(gguf_open_buffer("GGUF\2", 5, &g, &e), COPSE_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "truncated: version needs 4 bytes, 1 left"));
}
END_TEST

/* The fuzzer's minimized corpus and crash regressions (tests/data/gguf,
** relative to the checkout, where make runs the tests): none may crash or
** break a promise of gguf.h, and each crash-* input must be rejected. */
START_TEST(fuzz_corpus)
{
    DIR *d = opendir("tests/data/gguf");
    if (!d) {
        tu_skip("fuzz_corpus", "no tests/data/gguf here (run from the checkout)");
        return;
    }
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        const char *path = tu_path("tests/data/gguf", de->d_name);
        size_t len;
        char *buf = tu_read_file(path, &len);
        ck_assert_msg(buf != NULL, "%s", path);
        copse_error e;
        int rc = open_copy((const uint8_t *)buf, len, &e, 1);
        if (!strncmp(de->d_name, "crash-", 6))
            ck_assert_msg(rc != COPSE_OK, "%s was accepted", path);
        free(buf);
        n++;
    }
    closedir(d);
    ck_assert_int_ge(n, 10);
}
END_TEST

/* ----------------------------------------------------- shared vocab files */

START_TEST(shared_vocab_files)
{
    const char *shared = tu_shared_dir();
    if (!shared) {
        tu_skip("shared_vocab_files", "no ../shared");
        return;
    }
    glob_t gl;
    ck_assert_int_eq(glob(tu_path(shared, "vocab/*.gguf"), 0, NULL, &gl), 0);
    ck_assert_uint_ge(gl.gl_pathc, 9);
    for (size_t i = 0; i < gl.gl_pathc; i++) {
        const char *path = gl.gl_pathv[i];
        gguf_file *g;
        copse_error e;
        int rc = gguf_open(path, &g, &e);
        ck_assert_msg(rc == COPSE_OK, "%s", e.msg);
        gguf_str model;
        const gguf_array *toks;
        ck_assert_int_eq(gguf_get_str(g, "tokenizer.ggml.model", &model, &e), COPSE_OK);
        ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, &e),
                         COPSE_OK);
        ck_assert_uint_gt(toks->n, 30000);
        if (strstr(path, "llama-spm")) {
            ck_assert_uint_eq(toks->n, 32000);
            ck_assert(model.len == 5 && !memcmp(model.ptr, "llama", 5));
            ck_assert(toks->strs[1].len == 3 && !memcmp(toks->strs[1].ptr, "<s>", 3));
        }
        if (strstr(path, "gpt-2"))
            ck_assert(model.len == 4 && !memcmp(model.ptr, "gpt2", 4));

        /* copying every key through the writer reproduces the header */
        gguf_writer *w = gguf_writer_new(g->version);
        for (uint64_t k = 0; k < g->n_kv; k++)
            ck_assert_int_eq(gguf_writer_add_val(w, g->kv[k].key, &g->kv[k].val), COPSE_OK);
        uint8_t *img;
        uint64_t size;
        ck_assert_int_eq(gguf_writer_build(w, &img, &size, &e), COPSE_OK);
        ck_assert_uint_ge(size, g->data_offset < g->size ? g->data_offset : g->size);
        ck_assert_msg(memcmp(img, g->base, g->size < size ? g->size : size) == 0, "%s", path);
        free(img);
        gguf_writer_free(w);
        gguf_close(g);
    }
    globfree(&gl);
}
END_TEST

Suite *copse_suite_gguf(void)
{
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, round_trip_buffer, 0, 3);
    tcase_add_test(tc, round_trip_file);
    tcase_add_test(tc, writer_rejects_bad_input);
    tcase_add_test(tc, many_tensors_and_tokens);
    tcase_add_test(tc, typed_getters);
    tcase_add_test(tc, type_names_and_sizes);
    tcase_add_test(tc, shared_vocab_files);
    tcase_add_test(tc, hostile_mutations);
    tcase_add_test(tc, hostile_truncation);
    tcase_add_test(tc, unknown_tensor_type_passes);
    tcase_add_test(tc, nesting_depth_bound);
    tcase_add_test(tc, open_missing_dir_empty);
    tcase_add_test(tc, fuzz_corpus);
    suite_add_tcase(s, tc);
    return s;
}
