/*
** tools/gguf-pack: a CPAK file (train/export.py's format) becomes a GGUF with
** every key and tensor intact; damaged CPAK files are refused with a message
** and exit status 1, and write no GGUF.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "gguf.h"

typedef struct buf {
    unsigned char d[4096];
    size_t n;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    ck_assert_uint_le(b->n + n, sizeof b->d);
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }   /* tests run little-endian */
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }

static void put_str(buf *b, const char *s)
{
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

/* Offsets where the tensor records start and the F16 tensor's byte count. */
static size_t at_tensors, at_nbytes;

/* A CPAK with one key of each kind and an F32 and an F16 tensor. */
static buf sample_cpak(void)
{
    buf b = { .n = 0 };
    float f = 0.5f, w[6] = { 1, -2, 3.25f, 0, 5, -6.5f };
    int32_t ints[3] = { 1, -2, 3 };
    uint16_t h[2] = { 0x3c00, 0xc000 };            /* 1.0, -2.0 */
    put(&b, "CPAK", 4);
    put_u32(&b, 1);
    put_u32(&b, 6);
    put_u32(&b, 2);
    put_str(&b, "general.architecture"); put_u32(&b, GGUF_TYPE_STRING); put_str(&b, "llama");
    put_str(&b, "llama.block_count"); put_u32(&b, GGUF_TYPE_UINT32); put_u32(&b, 6);
    put_str(&b, "llama.rope.freq_base"); put_u32(&b, GGUF_TYPE_FLOAT32); put(&b, &f, 4);
    put_str(&b, "tokenizer.ggml.add_bos_token"); put_u32(&b, GGUF_TYPE_BOOL); put(&b, "\1", 1);
    put_str(&b, "tokenizer.ggml.token_type"); put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_INT32); put_u32(&b, 3); put(&b, ints, sizeof ints);
    put_str(&b, "tokenizer.ggml.merges"); put_u32(&b, GGUF_TYPE_ARRAY);
    put_u32(&b, GGUF_TYPE_STRING); put_u32(&b, 2); put_str(&b, "\xc4\xa0 a"); put_str(&b, "b c");
    at_tensors = b.n;
    put_str(&b, "blk.0.attn_q.weight"); put_u32(&b, GGML_TYPE_F32); put_u32(&b, 2);
    put_u64(&b, 3); put_u64(&b, 2); put_u64(&b, sizeof w); put(&b, w, sizeof w);
    put_str(&b, "output_norm.weight"); put_u32(&b, GGML_TYPE_F16); put_u32(&b, 1); put_u64(&b, 2);
    at_nbytes = b.n;
    put_u64(&b, sizeof h); put(&b, h, sizeof h);
    return b;
}

static const char *pack_bin(const char *test)
{
    const char *bin = tu_path(tu_build_dir(), "bin/gguf-pack");
    if (access(bin, X_OK)) {
        tu_skip(test, "gguf-pack is not built");
        return NULL;
    }
    return bin;
}

/* Write n bytes of b to a CPAK file, run gguf-pack on it; its exit status,
** its messages in out, the GGUF path in gguf. */
static int run_pack(const char *bin, const buf *b, size_t n, char *out, size_t cap, char *gguf)
{
    char in[512], cmd[1600];
    snprintf(in, sizeof in, "%s/test-gguf-pack-%d.cpak", tu_build_dir(), (int)getpid());
    snprintf(gguf, 512, "%s/test-gguf-pack-%d.gguf", tu_build_dir(), (int)getpid());
    FILE *f = fopen(in, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b->d, 1, n, f), n);
    fclose(f);
    unlink(gguf);
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", bin, in, gguf);
    int rc = tu_run(cmd, out, cap);
    unlink(in);
    return rc;
}

START_TEST(packs_everything)
{
    const char *bin = pack_bin("packs_everything");
    if (!bin)
        return;
    buf b = sample_cpak();
    char out[1024], gguf[512];
    ck_assert_msg(run_pack(bin, &b, b.n, out, sizeof out, gguf) == 0, "%s", out);
    gguf_file *g;
    copse_error e;
    ck_assert_msg(gguf_open(gguf, &g, &e) == COPSE_OK, "%s", e.msg);
    gguf_str s;
    uint32_t u;
    float f;
    int flag;
    const gguf_array *a;
    ck_assert_int_eq(gguf_get_str(g, "general.architecture", &s, NULL), COPSE_OK);
    ck_assert(s.len == 5 && !memcmp(s.ptr, "llama", 5));
    ck_assert_int_eq(gguf_get_u32(g, "llama.block_count", &u, NULL), COPSE_OK);
    ck_assert_uint_eq(u, 6);
    ck_assert_int_eq(gguf_get_f32(g, "llama.rope.freq_base", &f, NULL), COPSE_OK);
    ck_assert(f == 0.5f);
    ck_assert_int_eq(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &flag, NULL), COPSE_OK);
    ck_assert_int_eq(flag, 1);
    ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &a, NULL), COPSE_OK);
    ck_assert(a->n == 3 && gguf_arr_num(a, 0) == 1 && gguf_arr_num(a, 1) == -2 && gguf_arr_num(a, 2) == 3);
    ck_assert_int_eq(gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &a, NULL), COPSE_OK);
    ck_assert(a->n == 2 && a->strs[0].len == 4 && !memcmp(a->strs[0].ptr, "\xc4\xa0 a", 4));
    ck_assert(a->strs[1].len == 3 && !memcmp(a->strs[1].ptr, "b c", 3));

    const gguf_tensor *t = gguf_find_tensor(g, "blk.0.attn_q.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert(t->type == GGML_TYPE_F32 && t->n_dims == 2 && t->ne[0] == 3 && t->ne[1] == 2);
    const float *w = t->data;
    ck_assert(w[0] == 1 && w[2] == 3.25f && w[5] == -6.5f);
    t = gguf_find_tensor(g, "output_norm.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert(t->type == GGML_TYPE_F16 && t->n_dims == 1 && t->ne[0] == 2);
    const uint16_t *h = t->data;
    ck_assert(h[0] == 0x3c00 && h[1] == 0xc000);
    ck_assert_uint_eq(g->n_tensors, 2);
    ck_assert_uint_eq(g->n_kv, 6);
    gguf_close(g);
    unlink(gguf);
}
END_TEST

/* Refused with exit status 1, a message naming what is wrong, and no GGUF. */
static void refused(const char *bin, const buf *b, size_t n, const char *what)
{
    char out[1024], gguf[512];
    ck_assert_int_eq(run_pack(bin, b, n, out, sizeof out, gguf), 1);
    ck_assert_msg(strstr(out, "gguf-pack: ") && strstr(out, what), "expected '%s', got: %s", what, out);
    ck_assert_int_ne(access(gguf, F_OK), 0);
}

START_TEST(refuses_damage)
{
    const char *bin = pack_bin("refuses_damage");
    if (!bin)
        return;
    buf b = sample_cpak();
    size_t cuts[] = { 0, 3, 10, 20, at_tensors - 1, at_tensors + 5, b.n - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        refused(bin, &b, cuts[i], "file ends inside a record");

    buf bad = b;
    memcpy(bad.d, "GGUF", 4);
    refused(bin, &bad, bad.n, "not a CPAK file");

    bad = b;
    bad.d[at_nbytes] = 6;                            /* 6 bytes for 2 f16 values */
    refused(bin, &bad, bad.n, "byte count does not match");

    bad = b;
    put(&bad, "x", 1);
    refused(bin, &bad, bad.n, "trailing bytes");

    bad = b;
    bad.d[at_tensors + 4 + strlen("blk.0.attn_q.weight")] = 2;   /* Q4_0: 18 bytes a block, not f32's */
    refused(bin, &bad, bad.n, "does not match its type");
}
END_TEST

Suite *copse_suite_gguf_pack(void)
{
    Suite *s = suite_create("gguf_pack");
    TCase *tc = tcase_create("pack");
    tcase_add_test(tc, packs_everything);
    tcase_add_test(tc, refuses_damage);
    suite_add_tcase(s, tc);
    return s;
}
