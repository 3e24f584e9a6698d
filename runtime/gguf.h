/*
** GGUF files: the reader (gguf.c) and the writer (gguf_write.c) share these
** definitions. Internal to copse.
**
** The reader maps the file and validates everything before handing it out:
** after gguf_open succeeds, every string, array and tensor range it exposes
** lies inside the mapping, and tensor data pointers are aligned as the file
** says. Strings point into the mapping and are NOT NUL-terminated (use the
** length); keys and tensor names are copied and are NUL-terminated.
*/
#ifndef COPSE_GGUF_H
#define COPSE_GGUF_H

#include <stdint.h>
#include <stddef.h>
#include "copse.h"

#define GGUF_MAGIC             0x46554747u   /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ALIGNMENT     (1u << 20)   /* larger general.alignment is refused */
#define GGUF_MAX_DIMS          4
#define GGUF_MAX_ARRAY_DEPTH   8    /* arrays nested deeper are rejected */

/* Metadata value types, as numbered in the file. */
enum gguf_type {
    GGUF_TYPE_UINT8   = 0,
    GGUF_TYPE_INT8    = 1,
    GGUF_TYPE_UINT16  = 2,
    GGUF_TYPE_INT16   = 3,
    GGUF_TYPE_UINT32  = 4,
    GGUF_TYPE_INT32   = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL    = 7,
    GGUF_TYPE_STRING  = 8,
    GGUF_TYPE_ARRAY   = 9,
    GGUF_TYPE_UINT64  = 10,
    GGUF_TYPE_INT64   = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

/* Tensor element types (ggml numbering). Those copse decodes are listed by
** dequant.h; every type ggml names has its size known, so any file's
** tensors are checked and errors can say what a file has. */
enum ggml_type {
    GGML_TYPE_F32  = 0,
    GGML_TYPE_F16  = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_IQ4_XS = 23,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_COUNT = 40
};

#define QK8_0 32   /* Q8_0 block: fp16 scale + 32 int8 = 34 bytes */

/* "F32", "Q4_K", ... or "type 77" for numbers ggml does not name. The
** returned pointer is to static storage for known types; unknown ones use
** buf (at least 16 bytes). */
const char *ggml_type_name(uint32_t type, char *buf);

/* Elements per block of a type ggml names (1 for F32 and the like, 32 for
** Q8_0, 256 for Q4_K); 0 for numbers ggml does not name. */
uint32_t ggml_type_block(uint32_t type);

/* Bytes of n elements of a type ggml names; 0 when n is not whole blocks,
** the size overflows, or the type is unknown. */
uint64_t ggml_type_nbytes(uint32_t type, uint64_t n);

/* Bytes of one fixed-size metadata value in the file; 0 for STRING, ARRAY
** and unknown types. */
uint32_t gguf_value_size(uint32_t type);

typedef struct gguf_str {
    uint64_t    len;
    const char *ptr;     /* into the mapping; not NUL-terminated */
} gguf_str;

typedef struct gguf_value gguf_value;

typedef struct gguf_array {
    uint32_t          type;  /* element type */
    uint64_t          n;
    const void       *data;  /* fixed-size elements: raw little-endian, in the mapping */
    const gguf_str   *strs;  /* STRING elements (allocated) */
    const gguf_value *vals;  /* ARRAY elements: nested arrays (allocated) */
} gguf_array;

struct gguf_value {
    uint32_t type;           /* enum gguf_type */
    union {
        uint64_t   u;        /* UINT8..UINT64, BOOL */
        int64_t    i;        /* INT8..INT64 */
        double     f;        /* FLOAT32, FLOAT64 */
        gguf_str   s;        /* STRING */
        gguf_array arr;      /* ARRAY */
    } v;
};

typedef struct gguf_kv {
    char      *key;          /* NUL-terminated copy */
    gguf_value val;
} gguf_kv;

typedef struct gguf_tensor {
    char       *name;        /* NUL-terminated copy */
    uint32_t    n_dims;
    uint64_t    ne[GGUF_MAX_DIMS];  /* ne[0] is the contiguous (row) length; unused dims are 1 */
    uint32_t    type;        /* enum ggml_type */
    uint64_t    offset;      /* relative to the data section */
    uint64_t    nelements;
    uint64_t    nbytes;      /* 0 when the type is not one copse reads */
    const void *data;        /* into the mapping; NULL when nbytes is 0 */
} gguf_tensor;

typedef struct gguf_file {
    uint32_t     version;    /* 2 or 3 */
    uint64_t     n_kv;
    gguf_kv     *kv;
    uint64_t     n_tensors;
    gguf_tensor *tensors;
    uint32_t     alignment;
    uint64_t     data_offset;   /* file offset of the data section */
    const uint8_t *base;        /* the mapping (or buffer) */
    uint64_t     size;
    int          mapped;        /* base came from mmap (else borrowed) */
    char        *path;          /* for messages; "<memory>" for buffers */
} gguf_file;

/*
** Validation covers: magic, version (2 or 3, little-endian only), every
** count, length and dimension against the bytes the file has left, unknown
** value types, bools other than 0/1, nested array depth, duplicate keys and
** tensor names, general.alignment (a power of two, at most 1 MiB: a mapping
** is only page-aligned, and an absurd value would make copies of the file
** huge), tensor n_dims 1..4,
** dimensions >= 1 with an element count that fits int64, ne[0] a multiple
** of the type's block size, offsets aligned, tensor data inside the file and
** not overlapping. The byte size of a tensor type ggml does not name cannot
** be known: such tensors pass here with nbytes 0 and data NULL (only their
** first byte is checked to lie in the file); the model loader rejects them.
** Errors name the key or tensor and the byte offset.
*/

/* Map and validate a GGUF file. The mapping stays valid until gguf_close
** (a file truncated by someone else meanwhile would fault, as with any
** mmap). */
int gguf_open(const char *path, gguf_file **out, copse_error *err);

/* Validate a GGUF image held in memory (fuzzing, tests). buf must outlive
** the result and is not freed by gguf_close. Tensor data is aligned
** relative to buf, so in memory only as far as buf itself is. */
int gguf_open_buffer(const void *buf, uint64_t size, gguf_file **out, copse_error *err);

void gguf_close(gguf_file *g);

/* Metadata lookup: the value for key, or NULL. */
const gguf_value *gguf_get(const gguf_file *g, const char *key);

/*
** Typed getters. They return COPSE_OK and set *out when the key exists
** and converts exactly (any integer type to u32/i32/u64 if in range, F32 or
** F64 to float, a STRING to str); COPSE_E_ARG (with err, which may be NULL)
** if the key is missing; COPSE_E_FORMAT if it has the wrong type or range.
*/
int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out, copse_error *err);
int gguf_get_i32(const gguf_file *g, const char *key, int32_t *out, copse_error *err);
int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out, copse_error *err);
int gguf_get_f32(const gguf_file *g, const char *key, float *out, copse_error *err);
int gguf_get_bool(const gguf_file *g, const char *key, int *out, copse_error *err);
int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out, copse_error *err);
/* An ARRAY whose elements have type elem_type (GGUF_TYPE_COUNT = any). */
int gguf_get_arr(const gguf_file *g, const char *key, uint32_t elem_type,
                 const gguf_array **out, copse_error *err);

/* Element i of a fixed-size numeric array, converted; 0 if the type is not
** numeric. Caller checks i < arr->n. */
double gguf_arr_num(const gguf_array *arr, uint64_t i);

/* Tensor lookup by name, or NULL. */
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* ------------------------------------------------------------------ writer */

typedef struct gguf_writer gguf_writer;

/* version 3 unless a test asks for 2. NULL when out of memory. */
gguf_writer *gguf_writer_new(uint32_t version);
void         gguf_writer_free(gguf_writer *w);

/* Metadata, written in the order added. Strings are copied. A failed add
** (bad argument, out of memory) is remembered and makes the write fail,
** so a file never silently lacks a key. */
int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_add_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_add_bool(gguf_writer *w, const char *key, int v);
int gguf_writer_add_str(gguf_writer *w, const char *key, const char *v);
/* An array of n fixed-size elements of type elem_type, raw little-endian. */
int gguf_writer_add_arr(gguf_writer *w, const char *key, uint32_t elem_type,
                        const void *data, uint64_t n);
int gguf_writer_add_arr_str(gguf_writer *w, const char *key,
                            const char *const *strs, uint64_t n);
/* Any value as the reader returns it, nested arrays included: for copying
** metadata from one file to another and for tests of every type. */
int gguf_writer_add_val(gguf_writer *w, const char *key, const gguf_value *v);

/*
** A tensor of type F32, F16, BF16 or Q8_0 with dims ne[0..n_dims-1]; data
** holds ggml_type_nbytes(type, nelements) bytes and is copied.
*/
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                           uint32_t n_dims, const uint64_t *ne, const void *data);

/* Write the file (alignment from general.alignment if added, else 32)
** through PATH.tmp and a rename, so a failed write leaves no partial file. */
int gguf_writer_write(gguf_writer *w, const char *path, copse_error *err);

/* The same image in memory: *buf is malloc'd, the caller frees it. */
int gguf_writer_build(gguf_writer *w, uint8_t **buf, uint64_t *size, copse_error *err);

#endif /* COPSE_GGUF_H */
