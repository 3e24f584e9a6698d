/*
** A sample GGUF file with every metadata type, nested arrays and one
** tensor of each type copse reads: the round-trip test compares against
** it, the hostile-input tests mutate it, and the fuzzer's seeds start
** from it.
*/
#ifndef COPSE_GGUF_SAMPLE_H
#define COPSE_GGUF_SAMPLE_H

#include <stdint.h>
#include "gguf.h"

typedef struct sample_kv {
    const char *key;
    gguf_value  val;
} sample_kv;

#define S_ARR(t, a) {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = (t), \
    .n = sizeof(a) / sizeof((a)[0]), .data = (a)}}

static const uint8_t  sample_u8[]   = {0, 1, 255};
static const int8_t   sample_i8[]   = {-128, 0, 127};
static const uint16_t sample_u16[]  = {0, 65535, 7};
static const int16_t  sample_i16[]  = {-32768, 32767};
static const uint32_t sample_u32[]  = {0, 4294967295u, 12345};
static const int32_t  sample_i32[]  = {INT32_MIN, -1, INT32_MAX};
static const float    sample_f32[]  = {1.5f, -0.0f, 3.25e38f, 1e-40f};
static const uint8_t  sample_bool[] = {1, 0, 1, 1};
static const uint64_t sample_u64[]  = {UINT64_MAX, 0};
static const int64_t  sample_i64[]  = {INT64_MIN, INT64_MAX, -7};
static const double   sample_f64[]  = {0.1, -1e300, 5e-324};

static const gguf_str sample_strs[] = {{0, ""}, {1, "a"}, {11, "\xe2\x96\x81tok\0en\n"}};
static const gguf_str sample_strs2[] = {{2, "xy"}};
static const int32_t  sample_row0[] = {1, 2, 3};
static const uint8_t  sample_seven[] = {7};
static const gguf_value sample_rows[] = {
    S_ARR(GGUF_TYPE_INT32, sample_row0),
    {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = GGUF_TYPE_INT32, .n = 0}},
};
static const gguf_value sample_strrows[] = {
    {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = GGUF_TYPE_STRING, .n = 3, .strs = sample_strs}},
    {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = GGUF_TYPE_STRING, .n = 1, .strs = sample_strs2}},
};
static const gguf_value sample_deep2[] = {S_ARR(GGUF_TYPE_UINT8, sample_seven)};
static const gguf_value sample_deep1[] = {
    {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = GGUF_TYPE_ARRAY, .n = 1, .vals = sample_deep2}},
};

static const sample_kv sample_kvs[] = {
    {"s.u8",   {.type = GGUF_TYPE_UINT8,   .v.u = 200}},
    {"s.i8",   {.type = GGUF_TYPE_INT8,    .v.i = -100}},
    {"s.u16",  {.type = GGUF_TYPE_UINT16,  .v.u = 60000}},
    {"s.i16",  {.type = GGUF_TYPE_INT16,   .v.i = -30000}},
    {"s.u32",  {.type = GGUF_TYPE_UINT32,  .v.u = 4000000000u}},
    {"s.i32",  {.type = GGUF_TYPE_INT32,   .v.i = -2000000000}},
    {"s.f32",  {.type = GGUF_TYPE_FLOAT32, .v.f = 0.25}},
    {"s.bool", {.type = GGUF_TYPE_BOOL,    .v.u = 1}},
    {"s.str",  {.type = GGUF_TYPE_STRING,  .v.s = {8, "h\xc3\xa9llo\0x"}}},
    {"s.u64",  {.type = GGUF_TYPE_UINT64,  .v.u = UINT64_MAX - 1}},
    {"s.i64",  {.type = GGUF_TYPE_INT64,   .v.i = INT64_MIN + 1}},
    {"s.f64",  {.type = GGUF_TYPE_FLOAT64, .v.f = -1e300}},
    {"s.empty", {.type = GGUF_TYPE_STRING, .v.s = {0, ""}}},
    {"a.u8",   S_ARR(GGUF_TYPE_UINT8, sample_u8)},
    {"a.i8",   S_ARR(GGUF_TYPE_INT8, sample_i8)},
    {"a.u16",  S_ARR(GGUF_TYPE_UINT16, sample_u16)},
    {"a.i16",  S_ARR(GGUF_TYPE_INT16, sample_i16)},
    {"a.u32",  S_ARR(GGUF_TYPE_UINT32, sample_u32)},
    {"a.i32",  S_ARR(GGUF_TYPE_INT32, sample_i32)},
    {"a.f32",  S_ARR(GGUF_TYPE_FLOAT32, sample_f32)},
    {"a.bool", S_ARR(GGUF_TYPE_BOOL, sample_bool)},
    {"a.u64",  S_ARR(GGUF_TYPE_UINT64, sample_u64)},
    {"a.i64",  S_ARR(GGUF_TYPE_INT64, sample_i64)},
    {"a.f64",  S_ARR(GGUF_TYPE_FLOAT64, sample_f64)},
    {"a.str",  {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = GGUF_TYPE_STRING, .n = 3, .strs = sample_strs}}},
    {"a.empty", {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = GGUF_TYPE_UINT32, .n = 0}}},
    {"n.i32",  {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = GGUF_TYPE_ARRAY, .n = 2, .vals = sample_rows}}},
    {"n.str",  {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = GGUF_TYPE_ARRAY, .n = 2, .vals = sample_strrows}}},
    {"n.deep", {.type = GGUF_TYPE_ARRAY, .v.arr = {.type = GGUF_TYPE_ARRAY, .n = 1, .vals = sample_deep1}}},
    {"dup.a",  {.type = GGUF_TYPE_UINT32,  .v.u = 1}},
    {"dup.b",  {.type = GGUF_TYPE_UINT32,  .v.u = 2}},
};
#define SAMPLE_N_KV (sizeof sample_kvs / sizeof sample_kvs[0])

typedef struct sample_tensor {
    const char *name;
    uint32_t    type, n_dims;
    uint64_t    ne[GGUF_MAX_DIMS];
} sample_tensor;

static const sample_tensor sample_tensors[] = {
    {"t.f32",  GGML_TYPE_F32,  2, {3, 5}},
    {"t.f16",  GGML_TYPE_F16,  1, {7}},
    {"t.bf16", GGML_TYPE_BF16, 3, {4, 2, 3}},
    {"t.q8",   GGML_TYPE_Q8_0, 2, {64, 2}},
    {"t.4d",   GGML_TYPE_F32,  4, {2, 1, 3, 2}},
};
#define SAMPLE_N_TENSORS (sizeof sample_tensors / sizeof sample_tensors[0])

/* Tensor i's bytes: a pattern that differs per tensor and per byte. */
static inline void sample_tensor_data(uint64_t i, uint8_t *p, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++)
        p[k] = (uint8_t)(k * 7 + i * 31 + 1);
}

static inline uint64_t sample_tensor_nelements(const sample_tensor *t)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        n *= t->ne[d];
    return n;
}

/* The sample file; alignment 0 leaves general.alignment out. NULL when a
** call fails (it cannot with this data unless memory runs out). */
static inline gguf_writer *sample_writer(uint32_t version, uint32_t alignment)
{
    gguf_writer *w = gguf_writer_new(version);
    int rc = w ? COPSE_OK : COPSE_E_NOMEM;
    if (!rc && alignment)
        rc = gguf_writer_add_u32(w, "general.alignment", alignment);
    for (size_t i = 0; !rc && i < SAMPLE_N_KV; i++)
        rc = gguf_writer_add_val(w, sample_kvs[i].key, &sample_kvs[i].val);
    for (size_t i = 0; !rc && i < SAMPLE_N_TENSORS; i++) {
        const sample_tensor *t = &sample_tensors[i];
        uint64_t nbytes = ggml_type_nbytes(t->type, sample_tensor_nelements(t));
        uint8_t buf[512];
        if (nbytes > sizeof buf)
            rc = COPSE_E_ARG;
        if (!rc) {
            sample_tensor_data(i, buf, nbytes);
            rc = gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, buf);
        }
    }
    if (rc) {
        gguf_writer_free(w);
        return NULL;
    }
    return w;
}

/* The sample as an image in memory (malloc'd), or NULL. */
static inline uint8_t *sample_image(uint32_t version, uint32_t alignment, uint64_t *size)
{
    gguf_writer *w = sample_writer(version, alignment);
    uint8_t *img = NULL;
    if (w && gguf_writer_build(w, &img, size, NULL) != COPSE_OK)
        img = NULL;
    gguf_writer_free(w);
    return img;
}

#endif
