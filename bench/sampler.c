/*
** bench-sampler: microseconds per copse_sample on vocabularies of the
** sizes real models have (Llama 2's 32,000, SmolLM's 49,152, Llama 3's
** 128,256, Qwen2's 151,936), with logits shaped like a model's: a
** Gaussian mass and a few hundred tokens well above it. A search samples
** every branch at every step on one thread, so this is time the step
** waits on. Settings: copse's defaults (temperature 0.8, top-k 40, top-p
** 0.95, min-p 0.05); without top-k, top-p 0.95 alone (the whole
** vocabulary's normalizer), min-p 0.05 alone and temperature alone (every
** token allowed, vLLM's default); and greedy.
**
** Usage: bench-sampler [--json] [--reps N]
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "copse.h"

static const int vocabs[] = { 32000, 49152, 128256, 151936 };
enum { N_VOCAB = sizeof vocabs / sizeof *vocabs };

typedef struct setting { const char *name; float temp, top_p, min_p; int top_k; } setting;
static const setting settings[] = {
    { "defaults", 0.8f, 0.95f, 0.05f, 40 },
    { "top-p 0.95", 0.8f, 0.95f, 0.0f, 0 },
    { "min-p 0.05", 0.8f, 1.0f, 0.05f, 0 },
    { "temperature", 0.8f, 1.0f, 0.0f, 0 },
    { "greedy", 0.0f, 1.0f, 0.0f, 0 },
};
enum { N_SET = sizeof settings / sizeof *settings };

static uint64_t rng = 0x2545f4914f6cdd1du;

static double uniform(void)   /* (0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) * 0x1.0p-53;
}

/* A model's logits: N(0, 2) for the mass, 300 tokens 8 to 16 above it. */
static void make_logits(float *l, int n)
{
    for (int i = 0; i < n; i++)
        l[i] = (float)(2.0 * sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform()));
    for (int i = 0; i < 300; i++)
        l[(int)(uniform() * n)] += (float)(8.0 + 8.0 * uniform());
}

/* Best of reps runs of enough draws to take about 20 ms, in microseconds. */
static double time_sample(const setting *st, const float *l, int n, int reps)
{
    copse_sampler_params p = copse_sampler_default_params();
    p.temp = st->temp;
    p.top_k = st->top_k;
    p.top_p = st->top_p;
    p.min_p = st->min_p;
    copse_sampler *s = copse_sampler_new(&p);
    if (!s)
        return -1;
    double best = 1e30;
    int draws = 1;
    volatile int32_t sink = 0;
    for (double t0 = bench_now(); bench_now() - t0 < 0.02; draws *= 2)
        for (int i = 0; i < draws; i++)
            sink += copse_sample(s, l, n);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        for (int i = 0; i < draws; i++)
            sink += copse_sample(s, l, n);
        double us = (bench_now() - t0) / draws * 1e6;
        best = us < best ? us : best;
    }
    copse_sampler_free(s);
    return best;
}

int main(int argc, char **argv)
{
    int json = 0, reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-sampler [--json] [--reps N]\n"
                            "Microseconds per copse_sample on vocabularies of 32,000 to 151,936\n"
                            "tokens (see the source).\n"
                            "  --json    JSON instead of a markdown table\n"
                            "  --reps N  measured runs of each, the best reported (default 5)\n");
            return strcmp(argv[i], "--help") && strcmp(argv[i], "-h") ? 2 : 0;
        }
    }
    double us[N_VOCAB][N_SET];
    for (int v = 0; v < N_VOCAB; v++) {
        float *l = malloc((size_t)vocabs[v] * sizeof *l);
        if (!l) {
            fprintf(stderr, "bench-sampler: out of memory\n");
            return 1;
        }
        make_logits(l, vocabs[v]);
        for (int s = 0; s < N_SET; s++)
            us[v][s] = time_sample(&settings[s], l, vocabs[v], reps);
        free(l);
    }
    if (json) {
        printf("{\"reps\": %d, \"results\": [", reps);
        for (int v = 0; v < N_VOCAB; v++)
            for (int s = 0; s < N_SET; s++)
                printf("%s{\"vocab\": %d, \"setting\": \"%s\", \"us_per_sample\": %.2f}",
                       v || s ? ", " : "", vocabs[v], settings[s].name, us[v][s]);
        printf("]}\n");
        return 0;
    }
    printf("Microseconds per sample, best of %d runs, one thread.\n\n| vocab |", reps);
    for (int s = 0; s < N_SET; s++)
        printf(" %s |", settings[s].name);
    printf("\n|---|");
    for (int s = 0; s < N_SET; s++)
        printf("---|");
    printf("\n");
    for (int v = 0; v < N_VOCAB; v++) {
        printf("| %d |", vocabs[v]);
        for (int s = 0; s < N_SET; s++)
            printf(" %.1f |", us[v][s]);
        printf("\n");
    }
    return 0;
}
