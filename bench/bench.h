/*
** What the benchmark programs share (header only: each bench/NAME.c is a
** program of its own).
*/
#ifndef COPSE_BENCH_H
#define COPSE_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A plain streaming read of 1 GiB, far past the caches, on n threads, in
** GB/s (best of at least 3 passes and about min_seconds): what a decode
** step could reach on this machine during this run. 0 when out of memory. */
static inline double bench_read_gbps(int threads, double min_seconds)
{
    size_t n = (size_t)1 << 27;
    uint64_t *buf = malloc(n * sizeof *buf);
    if (!buf)
        return 0;
    memset(buf, 1, n * sizeof *buf);
    double best = 1e30, start = bench_now();
    for (int r = 0; r < 3 || bench_now() - start < min_seconds; r++) {
        double t0 = bench_now();
        uint64_t sum = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : sum) schedule(static)
        for (size_t i = 0; i < n; i++)
            sum += buf[i];
        double t = bench_now() - t0;
        best = t < best && sum ? t : best;
    }
    free(buf);
    return (double)(n * sizeof *buf) / best / 1e9;
}

/* --weights W as the copse command takes it: auto (the default), int8 or
** f32, into copse_model_params' weights_f32 and weights_8bit; -1 for
** another value. */
static inline int bench_weights(const char *v, int *f32, int *eight)
{
    *f32 = !strcmp(v, "f32");
    *eight = !strcmp(v, "int8");
    return *f32 || *eight || !strcmp(v, "auto") ? 0 : -1;
}

/* An option of bench_parse: a flag (set to 1), a string, a whole number
** in [lo, hi], or a comma-separated list of them (up to cap). */
typedef struct bench_opt {
    const char  *name;
    int         *flag;
    const char **str;
    int         *num, lo, hi;
    int         *list, *n_list, cap;
} bench_opt;

/* A whole number in [lo, hi] into *out; -1 if s is not one. */
static inline int bench_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* argv by opts (ended by a NULL name): 0, or -1 for an unknown option, a
** missing value or a bad one. */
static inline int bench_parse(int argc, char **argv, const bench_opt *opts)
{
    for (int i = 1; i < argc; i++) {
        const bench_opt *o = opts;
        while (o->name && strcmp(o->name, argv[i]))
            o++;
        if (!o->name || (!o->flag && i + 1 == argc))
            return -1;
        const char *v = o->flag ? NULL : argv[++i];
        if (o->flag)
            *o->flag = 1;
        else if (o->str)
            *o->str = v;
        else if (o->num && bench_int(v, o->lo, o->hi, o->num))
            return -1;
        else if (o->list) {
            char buf[256], *save = NULL;
            snprintf(buf, sizeof buf, "%s", v);
            *o->n_list = 0;
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (*o->n_list == o->cap || bench_int(t, o->lo, o->hi, &o->list[(*o->n_list)++]))
                    return -1;
            if (!*o->n_list)
                return -1;
        }
    }
    return 0;
}

#endif
