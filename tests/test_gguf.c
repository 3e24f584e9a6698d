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
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_Q4_K, 256), 0);
    ck_assert_uint_eq(ggml_type_nbytes(GGML_TYPE_F32, 1ull << 62), 0);
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
    suite_add_tcase(s, tc);
    return s;
}
