/*
** Touch everything an opened gguf_file exposes (every key through the
** lookups and typed getters, every string byte, array element and tensor
** byte) and check the promises gguf.h makes about it. Shared by the fuzz
** harness and the corpus test: the includer defines WALK_CHECK(cond) to
** report a broken promise. Under ASan any read outside the image faults.
*/
#ifndef COPSE_GGUF_WALK_H
#define COPSE_GGUF_WALK_H

#include <string.h>
#include "gguf.h"

static inline uint64_t walk_bytes(const void *p, uint64_t n)
{
    uint64_t h = n;
    for (uint64_t i = 0; i < n; i++)
        h = h * 31 + ((const uint8_t *)p)[i];
    return h;
}

static inline uint64_t walk_array(const gguf_array *a)
{
    uint64_t h = a->n;
    for (uint64_t i = 0; i < a->n; i++) {
        if (a->type == GGUF_TYPE_STRING) {
            h += walk_bytes(a->strs[i].ptr, a->strs[i].len);
        } else if (a->type == GGUF_TYPE_ARRAY) {
            WALK_CHECK(a->vals[i].type == GGUF_TYPE_ARRAY);
            h += walk_array(&a->vals[i].v.arr);
        } else {
            double d = gguf_arr_num(a, i);
            uint64_t bits;
            memcpy(&bits, &d, 8);
            h = h * 31 + bits;
        }
    }
    return h;
}

/* Each typed getter succeeds exactly when the value has a matching type. */
static inline uint64_t walk_getters(const gguf_file *g, const gguf_kv *kv)
{
    copse_error e;
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f;
    int b;
    gguf_str s;
    const gguf_array *arr;
    uint32_t t = kv->val.type;
    int is_float = t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64;
    int is_int = !is_float && t != GGUF_TYPE_BOOL && t != GGUF_TYPE_STRING &&
                 t != GGUF_TYPE_ARRAY;
    uint64_t h = 0;
    if (gguf_get_u32(g, kv->key, &u32, &e) == COPSE_OK)
        h += u32;
    if (gguf_get_i32(g, kv->key, &i32, &e) == COPSE_OK)
        h += (uint32_t)i32;
    if (gguf_get_u64(g, kv->key, &u64, &e) == COPSE_OK)
        h += u64;
    else
        WALK_CHECK(!is_int || e.code == COPSE_E_FORMAT);
    WALK_CHECK((gguf_get_f32(g, kv->key, &f, &e) == COPSE_OK) == is_float ||
               e.code == COPSE_E_FORMAT);
    WALK_CHECK((gguf_get_bool(g, kv->key, &b, &e) == COPSE_OK) == (t == GGUF_TYPE_BOOL));
    WALK_CHECK((gguf_get_str(g, kv->key, &s, &e) == COPSE_OK) == (t == GGUF_TYPE_STRING));
    WALK_CHECK((gguf_get_arr(g, kv->key, GGUF_TYPE_COUNT, &arr, &e) == COPSE_OK) ==
               (t == GGUF_TYPE_ARRAY));
    return h;
}

static inline uint64_t gguf_walk(const gguf_file *g)
{
    uint64_t h = g->version;
    WALK_CHECK(g->alignment && !(g->alignment & (g->alignment - 1)));
    WALK_CHECK(g->data_offset % g->alignment == 0);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        WALK_CHECK(gguf_get(g, kv->key) == &kv->val);
        h += walk_bytes(kv->key, strlen(kv->key)) + walk_getters(g, kv);
        if (kv->val.type == GGUF_TYPE_STRING)
            h += walk_bytes(kv->val.v.s.ptr, kv->val.v.s.len);
        else if (kv->val.type == GGUF_TYPE_ARRAY)
            h += walk_array(&kv->val.v.arr);
        else
            h += kv->val.v.u;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        WALK_CHECK(gguf_find_tensor(g, t->name) == t);
        WALK_CHECK(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
        uint64_t n = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            n *= t->ne[d];
        WALK_CHECK(n == t->nelements && t->offset % g->alignment == 0);
        WALK_CHECK(t->nbytes == ggml_type_nbytes(t->type, t->nelements));
        WALK_CHECK((t->data != NULL) == (t->nbytes != 0));
        if (t->data) {
            WALK_CHECK((const uint8_t *)t->data == g->base + g->data_offset + t->offset);
            WALK_CHECK(g->data_offset + t->offset + t->nbytes <= g->size);
            h += walk_bytes(t->data, t->nbytes);
        }
    }
    return h;
}

#endif
