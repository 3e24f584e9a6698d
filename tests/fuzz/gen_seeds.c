/*
** Seeds for the GGUF fuzzer, all made by our writer:
**   gen_seeds OUTDIR [SHARED]
** writes the sample file in several versions and alignments, a header-only
** file, and given the shared data directory each vocab file's metadata
** with every array cut to a few elements (small valid seeds with real keys).
*/
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include "gguf.h"
#include "sample.h"

static int save(const char *dir, const char *name, gguf_writer *w)
{
    char path[4096];
    copse_error e;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = w ? gguf_writer_write(w, path, &e) : COPSE_E_NOMEM;
    if (rc)
        fprintf(stderr, "gen_seeds: %s: %s\n", name, w ? e.msg : "out of memory");
    gguf_writer_free(w);
    return rc;
}

/* The metadata of a vocab file, arrays cut to 8 elements, no tensors. */
static int shrink_vocab(const char *dir, const char *path)
{
    gguf_file *g;
    copse_error e;
    if (gguf_open(path, &g, &e)) {
        fprintf(stderr, "gen_seeds: %s\n", e.msg);
        return 1;
    }
    gguf_writer *w = gguf_writer_new(g->version);
    for (uint64_t i = 0; w && i < g->n_kv; i++) {
        gguf_value v = g->kv[i].val;
        if (v.type == GGUF_TYPE_ARRAY && v.v.arr.n > 8)
            v.v.arr.n = 8;
        gguf_writer_add_val(w, g->kv[i].key, &v);
    }
    const char *base = strrchr(path, '/');
    char name[256];
    snprintf(name, sizeof name, "shrunk-%s", base ? base + 1 : path);
    gguf_close(g);
    return save(dir, name, w);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gen_seeds OUTDIR [SHARED]\n");
        return 2;
    }
    const char *dir = argv[1];
    int rc = save(dir, "sample-v3.gguf", sample_writer(3, 0));
    rc |= save(dir, "sample-v2-a64.gguf", sample_writer(2, 64));
    rc |= save(dir, "sample-v3-a32.gguf", sample_writer(3, 32));
    rc |= save(dir, "empty.gguf", gguf_writer_new(3));
    if (argc > 2) {
        char pat[4096];
        glob_t gl;
        snprintf(pat, sizeof pat, "%s/vocab/*.gguf", argv[2]);
        if (glob(pat, 0, NULL, &gl) == 0) {
            for (size_t i = 0; i < gl.gl_pathc; i++)
                rc |= shrink_vocab(dir, gl.gl_pathv[i]);
            globfree(&gl);
        }
    }
    return rc ? 1 : 0;
}
