/*
** What the benchmark programs share (header only: each bench/NAME.c is a
** program of its own).
*/
#ifndef COPSE_BENCH_H
#define COPSE_BENCH_H

#include <stdint.h>
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

#endif
