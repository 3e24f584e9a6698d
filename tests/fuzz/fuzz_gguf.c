/*
** libFuzzer target: any bytes through gguf_open_buffer. An accepted image
** is walked completely (walk.h) and copied through the writer, whose image
** must read back with the same keys and tensor bytes; a rejected one must
** come with a message. Build and run: make fuzz (see README).
*/
#include <stdlib.h>
#include <string.h>
#include "gguf.h"

#define WALK_CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)
#include "walk.h"

/* Rewrite g with the writer and check the copy reads back the same. */
static void rewrite(const gguf_file *g)
{
    gguf_writer *w = gguf_writer_new(g->version);
    uint64_t n_t = 0;
    int rc = w ? COPSE_OK : COPSE_E_NOMEM;
    for (uint64_t i = 0; !rc && i < g->n_kv; i++)
        rc = gguf_writer_add_val(w, g->kv[i].key, &g->kv[i].val);
    for (uint64_t i = 0; !rc && i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (t->data) {
            rc = gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
            n_t++;
        }
    }
    uint8_t *img = NULL;
    uint64_t size;
    /* the writer takes general.alignment only as UINT32, the reader any integer */
    if (!rc && gguf_writer_build(w, &img, &size, NULL) == COPSE_OK) {
        gguf_file *h;
        copse_error e;
        WALK_CHECK(gguf_open_buffer(img, size, &h, &e) == COPSE_OK);
        WALK_CHECK(h->n_kv == g->n_kv && h->n_tensors == n_t);
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const gguf_tensor *a = &g->tensors[i], *b = gguf_find_tensor(h, a->name);
            WALK_CHECK(!a->data || (b && b->nbytes == a->nbytes &&
                                    !memcmp(a->data, b->data, a->nbytes)));
        }
        gguf_close(h);
    } else {
        WALK_CHECK(rc == COPSE_E_ARG || rc == COPSE_E_NOMEM || rc == COPSE_OK);
    }
    free(img);
    gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *g;
    copse_error e;
    int rc = gguf_open_buffer(data, size, &g, &e);
    if (rc != COPSE_OK) {
        WALK_CHECK(!g && e.code == rc && e.msg[0]);
        return 0;
    }
    volatile uint64_t h = gguf_walk(g);
    (void)h;
    rewrite(g);
    gguf_close(g);
    return 0;
}
