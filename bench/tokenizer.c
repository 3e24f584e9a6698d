/*
** bench-tokenizer: how long loading a vocabulary takes and how fast text
** is tokenized and detokenized, per vocabulary.
**
**   bench-tokenizer [-f TEXT] [VOCAB.gguf ...]
**
** Without arguments it uses every vocabulary in $COPSE_SHARED/vocab (by
** default ../shared/vocab) and the GSM8K test set as the text. Load time is
** the best of several loads of the already-open file, in CPU and wall
** time: the machine is shared, so compare ratios within one run.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gguf.h"
#include "tokenizer.h"

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = buf ? (size_t)n : 0;
    return buf;
}

static void bench_one(const char *path, const char *text, size_t len)
{
    enum { LOADS = 5, RUNS = 3 };
    copse_error err;
    gguf_file *g;
    copse_tokenizer *t = NULL;
    if (gguf_open(path, &g, &err)) {
        printf("| %s | %s |\n", path, err.msg);
        return;
    }
    double load_cpu = 1e9, load_wall = 1e9;
    for (int i = 0; i < LOADS; i++) {
        tokenizer_free(t);
        double c0 = seconds(CLOCK_PROCESS_CPUTIME_ID), w0 = seconds(CLOCK_MONOTONIC);
        if (tokenizer_load(g, &t, &err)) {
            printf("| %s | %s |\n", path, err.msg);
            gguf_close(g);
            return;
        }
        double c = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0, w = seconds(CLOCK_MONOTONIC) - w0;
        load_cpu = c < load_cpu ? c : load_cpu;
        load_wall = w < load_wall ? w : load_wall;
    }
    int cap = (int)len + 16, n = 0, m = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    char *back = malloc(2 * len + 16);
    double enc = 1e9, dec = 1e9;
    for (int r = 0; r < RUNS && ids && back; r++) {
        double t0 = seconds(CLOCK_MONOTONIC);
        n = tokenizer_encode(t, text, len, 0, ids, cap);
        double t1 = seconds(CLOCK_MONOTONIC);
        m = n >= 0 ? tokenizer_decode(t, ids, n, 0, back, 2 * (int)len + 16) : -1;
        double t2 = seconds(CLOCK_MONOTONIC);
        enc = t1 - t0 < enc ? t1 - t0 : enc;
        dec = t2 - t1 < dec ? t2 - t1 : dec;
    }
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    printf("| %-32s | %6d | %7.1f | %7.1f | %8d | %7.2f | %7.1f |\n", name, tokenizer_n_vocab(t),
           load_cpu * 1e3, load_wall * 1e3, n, len / enc / 1e6, m >= 0 ? m / dec / 1e6 : 0.0);
    free(ids);
    free(back);
    tokenizer_free(t);
    gguf_close(g);
}

int main(int argc, char **argv)
{
    const char *shared = getenv("COPSE_SHARED") ? getenv("COPSE_SHARED") : "../shared";
    char text_path[1024], dir[1024];
    snprintf(text_path, sizeof text_path, "%s/data/math/gsm8k_test.jsonl", shared);
    snprintf(dir, sizeof dir, "%s/vocab", shared);
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "-f")) {
        snprintf(text_path, sizeof text_path, "%s", argv[2]);
        first = 3;
    }
    size_t len;
    char *text = read_all(text_path, &len);
    if (!text) {
        fprintf(stderr, "bench-tokenizer: cannot read %s\n", text_path);
        return 1;
    }
    printf("text: %s (%zu bytes)\n\n", text_path, len);
    printf("| vocabulary | tokens | load ms (cpu) | load ms (wall) | text tokens |"
           " encode MB/s | decode MB/s |\n|---|---|---|---|---|---|---|\n");
    if (first < argc) {
        for (int i = first; i < argc; i++)
            bench_one(argv[i], text, len);
    } else {
        DIR *d = opendir(dir);
        if (!d) {
            fprintf(stderr, "bench-tokenizer: no vocabularies given and no %s\n", dir);
            free(text);
            return 1;
        }
        for (struct dirent *de; (de = readdir(d)) != NULL; ) {
            size_t n = strlen(de->d_name);
            char path[2048];
            if (n < 5 || strcmp(de->d_name + n - 5, ".gguf"))
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            bench_one(path, text, len);
        }
        closedir(d);
    }
    free(text);
    return 0;
}
