/*
** Sampling: greedy, or top-k → top-p → min-p → temperature → a seeded draw.
**
** The truncations judge tokens by their probability at temperature 1 and
** the temperature only reshapes what survives (the order llama.cpp uses),
** so changing the temperature never changes which tokens are allowed.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "copse.h"

typedef struct cand {
    float   logit;
    int32_t id;
} cand;

struct copse_sampler {
    copse_sampler_params p;
    uint64_t rng[4];      /* xoshiro256** state */
    cand    *c;           /* scratch, grown to the vocabulary size */
    int      cap;
};

copse_sampler_params copse_sampler_default_params(void)
{
    copse_sampler_params p = { .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .seed = 0 };
    return p;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_unit(uint64_t s[4]) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

copse_sampler *copse_sampler_new(const copse_sampler_params *params)
{
    copse_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = params ? *params : copse_sampler_default_params();
    uint64_t seed = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&seed);
    return s;
}

void copse_sampler_free(copse_sampler *s)
{
    if (s) {
        free(s->c);
        free(s);
    }
}

/* A NaN logit (a broken model's) ranks below every number: the candidates
** need an order that is total, and such a token is never worth choosing. */
static float rank(float logit) { return logit == logit ? logit : -INFINITY; }

/* The scans below go in runs of RUN logits, fixed so that the compiler
** vectorizes them whole (at -O2 it leaves loops that need a remainder). */
#define RUN 16

/* Whether one of the RUN logits from l is above v (above set) or equal
** to it. */
static int run_has(const float *l, float v, int above)
{
    int any = 0;
    for (int j = 0; j < RUN; j++)
        any |= above ? l[j] > v : l[j] == v;
    return any;
}

/* The first token of the largest rank. Two passes, so that no step waits
** on the one before: tracking the index made each compare wait for the
** load its previous one chose (5 ns a token, 0.9 ms on 150k tokens). */
static int32_t argmax(const float *logits, int n)
{
    float mr[RUN], m = -INFINITY;
    for (int j = 0; j < RUN; j++)
        mr[j] = -INFINITY;
    int i = 0;
    for (; i + RUN <= n; i += RUN)
        for (int j = 0; j < RUN; j++)   /* a NaN compares false */
            mr[j] = logits[i + j] > mr[j] ? logits[i + j] : mr[j];
    for (; i < n; i++)
        m = logits[i] > m ? logits[i] : m;
    for (int j = 0; j < RUN; j++)
        m = mr[j] > m ? mr[j] : m;
    if (m == -INFINITY)   /* every rank is -inf */
        return 0;
    for (i = 0; i + RUN <= n && !run_has(logits + i, m, 0); i += RUN)
        ;
    while (logits[i] != m)
        i++;
    return i;
}

static int by_logit_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Move the k largest of n candidates (k < n) to the front, in no order. */
static void select_front(cand *c, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        cand pivot = c[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (by_logit_desc(&c[i], &pivot) < 0) i++;
            while (by_logit_desc(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                cand t = c[i]; c[i] = c[j]; c[j] = t;
                i++; j--;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

/* Move the k largest of n candidates to the front, sorted. */
static void partial_sort(cand *c, int n, int k)
{
    if (k < n)
        select_front(c, n, k);
    qsort(c, (size_t)(k < n ? k : n), sizeof *c, by_logit_desc);
}

/* The k largest candidates to c[0..k) (k < m), and the smallest logit
** among them. */
static float keep_best(cand *c, int m, int k)
{
    select_front(c, m, k);
    float least = c[0].logit;
    for (int i = 1; i < k; i++)
        least = c[i].logit < least ? c[i].logit : least;
    return least;
}

/*
** The k largest logits (0 < k < n) as c[0..k), sorted. One pass keeps only
** the logits above the k-th largest so far, so it mostly compares and
** moves on: the top 40 of a 150k vocabulary took 1 ms as a quickselect
** over all of them, and a search samples each branch at every step. The first lim
** logits are all taken; whenever lim have gathered, the best k stay and
** the threshold rises to the k-th. lim is small, so that the threshold
** rises fast. A later logit equal to the threshold ranks after it (a
** higher id), and a NaN compares false.
*/
static void top_k(cand *c, const float *logits, int n, int k)
{
    int lim = 2 * k + 32, m = 0;
    if (lim >= n) {
        for (int i = 0; i < n; i++)
            c[i] = (cand){ rank(logits[i]), i };
        partial_sort(c, n, k);
        return;
    }
    for (; m < lim; m++)
        c[m] = (cand){ rank(logits[m]), m };
    float thr = keep_best(c, m, k);
    m = k;
    for (int i0 = lim; i0 < n; i0 += RUN) {
        int i1 = n - i0 < RUN ? n : i0 + RUN;
        if (i1 - i0 == RUN && !run_has(logits + i0, thr, 1))   /* most runs */
            continue;
        for (int i = i0; i < i1; i++) {
            if (!(logits[i] > thr))
                continue;
            c[m++] = (cand){ logits[i], i };
            if (m == lim) {
                thr = keep_best(c, m, k);
                m = k;
            }
        }
    }
    partial_sort(c, m, k);
}

/*
** Keep the smallest sorted prefix whose probability mass reaches top_p.
** Sorting all of a 150k vocabulary per token is wasteful, so try the best
** 256 first: if they already hold the mass, the answer is among them.
*/
static int nucleus(cand *c, int n, int sorted, float top_p, double total)
{
    int k = sorted;
    for (;;) {
        double mass = 0;
        for (int i = 0; i < k; i++) {
            mass += exp((double)c[i].logit - c[0].logit) / total;
            if (mass >= top_p)
                return i + 1;
        }
        if (k == n)
            return n;
        k = k * 4 < n ? k * 4 : n;
        partial_sort(c, n, k);
    }
}

int32_t copse_sample(copse_sampler *s, const float *logits, int n)
{
    if (n <= 0)
        return -1;
    if (s->p.temp <= 0 || s->p.top_k == 1)
        return argmax(logits, n);
    if (s->cap < n) {
        cand *nc = realloc(s->c, (size_t)n * sizeof *nc);
        if (!nc)
            return argmax(logits, n); /* no scratch: degrade to greedy, never fail */
        s->c = nc;
        s->cap = n;
    }
    cand *c = s->c;

    /* c[0..m) are the candidates still allowed, c[0..sorted) in order. */
    int m = n, sorted;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        m = sorted = s->p.top_k;
        top_k(c, logits, n, m);
    } else {
        for (int i = 0; i < n; i++)
            c[i] = (cand){ rank(logits[i]), i };
        sorted = n < 256 ? n : 256;
        partial_sort(c, n, sorted);
    }

    if (s->p.top_p < 1.0f) {
        double total = 0; /* softmax normaliser at temperature 1 */
        for (int i = 0; i < m; i++)
            total += exp((double)c[i].logit - c[0].logit);
        m = nucleus(c, m, sorted, s->p.top_p, total);
        sorted = sorted < m ? sorted : m;
    }
    if (s->p.min_p > 0) {
        /* p_i >= min_p * p_max, i.e. logit_i >= logit_max + log(min_p) */
        double floor_logit = c[0].logit + log((double)s->p.min_p);
        int keep = 1;
        while (keep < m) {
            if (keep == sorted) {
                sorted = sorted * 4 < m ? sorted * 4 : m;
                partial_sort(c, m, sorted);
            }
            if (c[keep].logit < floor_logit)
                break;
            keep++;
        }
        m = keep;
    }

    double inv_t = 1.0 / s->p.temp, sum = 0;
    for (int i = 0; i < m; i++)
        sum += exp(((double)c[i].logit - c[0].logit) * inv_t);
    double r = next_unit(s->rng) * sum;
    for (int i = 0; i < m; i++) {
        r -= exp(((double)c[i].logit - c[0].logit) * inv_t);
        if (r < 0)
            return c[i].id;
    }
    return c[m - 1].id;
}
