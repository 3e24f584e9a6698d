/*
** gguf-pack: turn a CPAK file (written by train/export.py) into a GGUF file
** with copse's own writer, so the bundled models are written by the same
** code the project tests.
**
**   gguf-pack IN.cpak OUT.gguf
**
** CPAK, all integers little-endian; str = u32 length + bytes:
**   "CPAK" u32 version (1) u32 n_kv u32 n_tensors
**   n_kv times:      str key, u32 gguf type, value (UINT32/INT32/FLOAT32: 4
**                    bytes; BOOL: 1 byte; STRING: str; ARRAY: u32 element
**                    type, u32 n, the elements)
**   n_tensors times: str name, u32 ggml type, u32 n_dims, u64 ne[n_dims],
**                    u64 n_bytes, the data
** Tensor data is already in its final type (the exporter converts), so the
** packer only checks sizes and hands everything to gguf_writer.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gguf.h"

typedef struct reader {
    const unsigned char *p;
    size_t n, off;
    const char *path;
    int failed;
} reader;

static void fail(reader *r, const char *what)
{
    if (!r->failed)
        fprintf(stderr, "gguf-pack: %s: at byte %zu: %s\n", r->path, r->off, what);
    r->failed = 1;
}

/* The next n bytes, or NULL (and a message) past the end. */
static const unsigned char *take(reader *r, size_t n)
{
    if (r->failed || n > r->n - r->off) {
        fail(r, "file ends inside a record");
        return NULL;
    }
    const unsigned char *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t take_le(reader *r, int bytes)
{
    const unsigned char *p = take(r, (size_t)bytes);
    uint64_t v = 0;
    for (int i = bytes - 1; p && i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t take_u32(reader *r) { return (uint32_t)take_le(r, 4); }

/* A str as a new NUL-terminated string (NULL on error). */
static char *take_str(reader *r)
{
    uint32_t len = take_u32(r);
    const unsigned char *p = take(r, len);
    if (!p)
        return NULL;
    if (memchr(p, 0, len)) {
        fail(r, "string holds a NUL byte");
        return NULL;
    }
    char *s = malloc((size_t)len + 1);
    if (!s) {
        fail(r, "out of memory");
        return NULL;
    }
    memcpy(s, p, len);
    s[len] = 0;
    return s;
}

static int fixed_size(uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_BOOL: return 1;
    default: return 0;
    }
}

static int add_str_array(reader *r, gguf_writer *w, const char *key, uint32_t n)
{
    char **strs = calloc(n ? n : 1, sizeof *strs);
    uint32_t got = 0;
    if (!strs)
        fail(r, "out of memory");
    while (strs && got < n && (strs[got] = take_str(r)))
        got++;
    if (!r->failed && gguf_writer_add_arr_str(w, key, (const char *const *)strs, n))
        fail(r, "cannot add a string array (out of memory?)");
    for (uint32_t i = 0; i < got; i++)
        free(strs[i]);
    free(strs);
    return r->failed;
}

static int add_array(reader *r, gguf_writer *w, const char *key)
{
    uint32_t elem = take_u32(r), n = take_u32(r);
    if (r->failed)
        return 1;
    if (elem == GGUF_TYPE_STRING)
        return add_str_array(r, w, key, n);
    int size = fixed_size(elem);
    if (!size) {
        fail(r, "array of an unsupported element type");
        return 1;
    }
    const unsigned char *data = take(r, (size_t)n * (size_t)size);
    if (data && gguf_writer_add_arr(w, key, elem, data, n))
        fail(r, "cannot add an array (out of memory?)");
    return r->failed;
}

static int add_kv(reader *r, gguf_writer *w)
{
    char *key = take_str(r);
    uint32_t type = take_u32(r);
    int rc = 0;
    if (r->failed) {
        free(key);
        return 1;
    }
    switch (type) {
    case GGUF_TYPE_UINT32: rc = gguf_writer_add_u32(w, key, take_u32(r)); break;
    case GGUF_TYPE_INT32:  rc = gguf_writer_add_i32(w, key, (int32_t)take_u32(r)); break;
    case GGUF_TYPE_FLOAT32: {
        uint32_t bits = take_u32(r);
        float f;
        memcpy(&f, &bits, sizeof f);
        rc = gguf_writer_add_f32(w, key, f);
        break;
    }
    case GGUF_TYPE_BOOL:   rc = gguf_writer_add_bool(w, key, take_le(r, 1) != 0); break;
    case GGUF_TYPE_STRING: {
        char *s = take_str(r);
        rc = s && gguf_writer_add_str(w, key, s);
        free(s);
        break;
    }
    case GGUF_TYPE_ARRAY:  add_array(r, w, key); break;
    default:               fail(r, "metadata value of an unsupported type");
    }
    if (rc)
        fail(r, "cannot add a metadata value (out of memory?)");
    free(key);
    return r->failed;
}

static int add_tensor(reader *r, gguf_writer *w)
{
    char *name = take_str(r);
    uint32_t type = take_u32(r), n_dims = take_u32(r);
    uint64_t ne[GGUF_MAX_DIMS], n = 1;
    if (!r->failed && (n_dims < 1 || n_dims > GGUF_MAX_DIMS))
        fail(r, "tensor has 0 or more than 4 dimensions");
    for (uint32_t i = 0; !r->failed && i < n_dims; i++) {
        ne[i] = take_le(r, 8);
        if (ne[i] == 0 || ne[i] > ((uint64_t)1 << 40) / n)
            fail(r, "tensor dimension is 0 or the tensor is absurdly large");
        else
            n *= ne[i];
    }
    uint64_t nbytes = take_le(r, 8);
    if (!r->failed && (ggml_type_nbytes(type, n) == 0 || ggml_type_nbytes(type, n) != nbytes))
        fail(r, "tensor byte count does not match its type and shape");
    const unsigned char *data = r->failed ? NULL : take(r, (size_t)nbytes);
    if (data && gguf_writer_add_tensor(w, name, type, n_dims, ne, data))
        fail(r, "cannot add the tensor (duplicate name or out of memory?)");
    free(name);
    return r->failed;
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long len;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)len + 1)) && fread(buf, 1, (size_t)len, f) == (size_t)len) {
        *size = (size_t)len;
    } else {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

static int pack(reader *r, gguf_writer *w)
{
    const unsigned char *magic = take(r, 4);
    if (magic && memcmp(magic, "CPAK", 4))
        fail(r, "not a CPAK file");
    if (!r->failed && take_u32(r) != 1)
        fail(r, "unsupported CPAK version");
    uint32_t n_kv = take_u32(r), n_tensors = take_u32(r);
    for (uint32_t i = 0; !r->failed && i < n_kv; i++)
        add_kv(r, w);
    for (uint32_t i = 0; !r->failed && i < n_tensors; i++)
        add_tensor(r, w);
    if (!r->failed && r->off != r->n)
        fail(r, "trailing bytes after the last tensor");
    return r->failed;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gguf-pack IN.cpak OUT.gguf\n");
        return 2;
    }
    reader r = { .path = argv[1] };
    unsigned char *buf = read_file(argv[1], &r.n);
    if (!buf) {
        fprintf(stderr, "gguf-pack: cannot read %s\n", argv[1]);
        return 1;
    }
    r.p = buf;
    gguf_writer *w = gguf_writer_new(3);
    copse_error err = { 0, "" };
    int rc = 1;
    if (!w)
        fprintf(stderr, "gguf-pack: out of memory\n");
    else if (!pack(&r, w)) {
        rc = gguf_writer_write(w, argv[2], &err) != 0;
        if (rc)
            fprintf(stderr, "gguf-pack: %s\n", err.msg);
    }
    gguf_writer_free(w);
    free(buf);
    return rc;
}
