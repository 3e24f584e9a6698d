/*
** Sampling: greedy, or top-k → top-p → min-p → temperature → a seeded draw.
**
** The truncations judge tokens by their probability at temperature 1 and
** the temperature only reshapes what survives (the order llama.cpp uses),
** so changing the temperature never changes which tokens are allowed.
** The draw walks the allowed tokens from the most likely down, or, when
** no truncation is set, the whole vocabulary in id order.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "copse.h"
#include "vec.h"

typedef struct cand {
    float   logit;
    int32_t id;
} cand;

struct copse_sampler {
    copse_sampler_params p;
    uint64_t rng[4];      /* xoshiro256** state */
    const vec_kernels *vec;   /* softmax terms over a whole vocabulary */
    cand    *c;           /* scratch, grown to the vocabulary size */
    float   *e;           /* likewise: the terms */
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
    s->vec = vec_kernels_default();
    uint64_t seed = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&seed);
    return s;
}

void copse_sampler_free(copse_sampler *s)
{
    if (s) {
        free(s->c);
        free(s->e);
        free(s);
    }
}

/* A NaN logit (a broken model's) ranks below every number: the candidates
** need an order that is total, and such a token is never worth choosing. */
static float rank(float logit) { return logit == logit ? logit : -INFINITY; }

/* The scans below go in runs of RUN logits, four vectors of four floats
** (the compiler's vectors: SSE or NEON registers). The passes that carry
** values from run to run (a maximum, a sum) keep four of them in
** registers; as a loop over an array of RUN, the array stayed in memory
** and each step waited on the store before. */
#define RUN 16

typedef float f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));

static f4 load4(const float *x)
{
    f4 v;
    memcpy(&v, x, sizeof v);
    return v;
}

/* m, or x where x is above it (a NaN compares false). */
static f4 max4(f4 m, const float *x)
{
    f4 v = load4(x);
    i4 above = v > m;
    return (f4)((above & (i4)v) | (~above & (i4)m));
}

/* Whether one of the RUN logits from l is above v (above set) or equal
** to it. */
static int run_has(const float *l, float v, int above)
{
    f4 t = { v, v, v, v }, a = load4(l), b = load4(l + 4), c = load4(l + 8), d = load4(l + 12);
    i4 any = above ? (a > t) | (b > t) | (c > t) | (d > t) : (a == t) | (b == t) | (c == t) | (d == t);
    return (any[0] | any[1]) | (any[2] | any[3]);
}

/* The largest rank. */
static float max_rank(const float *logits, int n)
{
    f4 a = { -INFINITY, -INFINITY, -INFINITY, -INFINITY }, b = a, c = a, d = a;
    int i = 0;
    for (; i + RUN <= n; i += RUN) {
        a = max4(a, logits + i);
        b = max4(b, logits + i + 4);
        c = max4(c, logits + i + 8);
        d = max4(d, logits + i + 12);
    }
    float m = -INFINITY;
    for (; i < n; i++)
        m = logits[i] > m ? logits[i] : m;
    for (int j = 0; j < 4; j++) {
        float v[4] = { a[j], b[j], c[j], d[j] };
        for (int q = 0; q < 4; q++)
            m = v[q] > m ? v[q] : m;
    }
    return m;
}

/* The first token of the largest rank. Two passes, so that no step waits
** on the one before: tracking the index made each compare wait for the
** load its previous one chose (5 ns a token, 0.9 ms on 150k tokens). */
static int32_t argmax(const float *logits, int n)
{
    float m = max_rank(logits, n);
    if (m == -INFINITY)   /* every rank is -inf */
        return 0;
    int i = 0;
    for (; i + RUN <= n && !run_has(logits + i, m, 0); i += RUN)
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
** The k largest logits (0 < k <= n) as c[0..k), sorted. One pass keeps only
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
** The length of the smallest prefix of the sorted c[0..m) whose probability
** reaches top_p, total being the softmax normalizer relative to top, the
** largest logit; 0 when all m fall short.
*/
static int nucleus(const cand *c, int m, float top_p, double total, double top)
{
    double mass = 0;
    for (int i = 0; i < m; i++) {
        mass += exp((double)c[i].logit - top) / total;
        if (mass >= top_p)
            return i + 1;
    }
    return 0;
}

/* Terms are summed in blocks of BLOCK, in 16 lanes of floats, and the
** blocks' sums in double. */
#define BLOCK 256

/* The sum of the len terms of a block (len < BLOCK only at the end). */
static float block_sum(const float *e, int len)
{
    float t = 0;
    if (len < BLOCK) {
        for (int j = 0; j < len; j++)
            t += e[j];
        return t;
    }
    f4 a = { 0 }, b = a, c = a, d = a;
    for (int j = 0; j < BLOCK; j += RUN) {
        a += load4(e + j);
        b += load4(e + j + 4);
        c += load4(e + j + 8);
        d += load4(e + j + 12);
    }
    a = (a + b) + (c + d);
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* s->e[0..n) = e^((logit - top) * scale), and their sum. */
static double terms(copse_sampler *s, const float *logits, int n, float top, float scale)
{
    s->vec->exp_scaled(s->e, logits, (size_t)n, top, scale);
    double sum = 0;
    for (int i = 0; i < n; i += BLOCK)
        sum += block_sum(s->e + i, n - i < BLOCK ? n - i : BLOCK);
    return sum;
}

/*
** No truncation: every token may be drawn, so nothing is sorted. The terms
** at the temperature are computed once over the vocabulary (150k tokens
** took 1.7 ms in double exp, one by one) and walked in id order, a block
** at a time.
*/
static int32_t draw_any(copse_sampler *s, const float *logits, int n, float top)
{
    double r = next_unit(s->rng) * terms(s, logits, n, top, 1.0f / s->p.temp);
    const float *e = s->e;
    for (int i = 0; i < n; i += BLOCK) {
        int len = n - i < BLOCK ? n - i : BLOCK;
        float t = block_sum(e + i, len);
        if (r >= t) {
            r -= t;
            continue;
        }
        int last = i;   /* the block holds the draw: r < t, so it has a term */
        for (int j = i; j < i + len; j++) {
            last = e[j] > 0 ? j : last;
            r -= e[j];
            if (r < 0)
                return j;
        }
        return last;   /* the block's sum rounded above its walk */
    }
    int j = n - 1;   /* the total rounded above the blocks' sum: the last term */
    while (j > 0 && !(e[j] > 0))
        j--;
    return j;
}

/*
** Top-p or min-p without top-k, on c[0..m) sorted, returning m. The
** candidates come from top_k's pass, the best 256 and then four times as
** many until the nucleus or the min-p floor lies within them: the nucleus
** of a model's logits is usually small, and a full sort of 150k was most
** of a sample's 1.8 ms. Min-p alone keeps the tokens above its floor.
*/
static int wide(copse_sampler *s, const float *logits, int n, float top, double floor)
{
    cand *c = s->c;
    if (s->p.top_p >= 1.0f) {
        /* logit >= floor as floats: above the float below floor's */
        float lo = nextafterf((float)floor, -INFINITY);
        int m = 0;
        for (int i0 = 0; i0 < n; i0 += RUN) {
            int i1 = n - i0 < RUN ? n : i0 + RUN;
            if (i1 - i0 == RUN && !run_has(logits + i0, lo, 1))
                continue;
            for (int i = i0; i < i1; i++)
                if (logits[i] > lo)
                    c[m++] = (cand){ logits[i], i };
        }
        qsort(c, (size_t)m, sizeof *c, by_logit_desc);
        return m;
    }
    double total = terms(s, logits, n, top, 1.0f);
    for (int k = 256;; k *= 4) {
        k = k < n ? k : n;
        top_k(c, logits, n, k);
        int m = nucleus(c, k, s->p.top_p, total, top);
        if (m || k == n || c[k - 1].logit < floor)
            return m ? m : k;
    }
}

/* Candidate i's softmax term at the temperature, relative to the first's. */
static double cand_term(const copse_sampler *s, int i)
{
    return exp(((double)s->c[i].logit - s->c[0].logit) * (1.0 / s->p.temp));
}

static double cand_sum(const copse_sampler *s, int m)
{
    double sum = 0;
    for (int i = 0; i < m; i++)
        sum += cand_term(s, i);
    return sum;
}

/* What copse_sample draws from: a token chosen outright (tok >= 0:
** greedy, or an infinite logit), or every token by its softmax term at
** the temperature (m = 0; top is the largest logit), or the m allowed
** candidates s->c[0..m), sorted, by theirs. */
typedef struct allowed {
    int32_t tok;
    int     m;
    float   top;
} allowed;

static allowed filter(copse_sampler *s, const float *logits, int n)
{
    if (!(s->p.temp > 0 && 1.0f / s->p.temp < INFINITY) || s->p.top_k == 1)
        return (allowed){ argmax(logits, n), 0, 0 };   /* temperature 0, or too small to divide by */
    if (s->cap < n) {
        cand *nc = realloc(s->c, (size_t)n * sizeof *nc);
        if (nc)
            s->c = nc;
        float *ne = nc ? realloc(s->e, (size_t)n * sizeof *ne) : NULL;
        if (!ne)
            return (allowed){ argmax(logits, n), 0, 0 }; /* no scratch: degrade to greedy, never fail */
        s->e = ne;
        s->cap = n;
    }
    cand *c = s->c;

    /* c[0..m) are the candidates still allowed, sorted. */
    int m;
    double floor = -INFINITY;   /* min-p: p >= min_p * p_max, i.e. logit >= top + log(min_p) */
    if (s->p.top_k > 0 && s->p.top_k < n) {
        m = s->p.top_k;
        top_k(c, logits, n, m);
        if (c[0].logit == INFINITY || c[0].logit == -INFINITY)   /* no softmax: the first of them */
            return (allowed){ c[0].id, 0, 0 };
        if (s->p.min_p > 0)
            floor = c[0].logit + log((double)s->p.min_p);
        if (s->p.top_p < 1.0f) {
            double total = 0; /* softmax normaliser at temperature 1 */
            for (int i = 0; i < m; i++)
                total += exp((double)c[i].logit - c[0].logit);
            int p = nucleus(c, m, s->p.top_p, total, c[0].logit);
            m = p ? p : m;
        }
    } else {
        float top = max_rank(logits, n);
        if (top == INFINITY || top == -INFINITY)   /* no softmax: the first of them */
            return (allowed){ argmax(logits, n), 0, 0 };
        if (s->p.top_p >= 1.0f && s->p.min_p <= 0)
            return (allowed){ -1, 0, top };
        if (s->p.min_p > 0)
            floor = top + log((double)s->p.min_p);
        m = wide(s, logits, n, top, floor);
    }
    int keep = 1;
    while (keep < m && c[keep].logit >= floor)
        keep++;
    return (allowed){ -1, keep, 0 };
}

int32_t copse_sample(copse_sampler *s, const float *logits, int n)
{
    if (n <= 0)
        return -1;
    allowed a = filter(s, logits, n);
    if (a.tok >= 0)
        return a.tok;
    if (!a.m)
        return draw_any(s, logits, n, a.top);
    double r = next_unit(s->rng) * cand_sum(s, a.m);
    for (int i = 0; i < a.m; i++) {
        r -= cand_term(s, i);
        if (r < 0)
            return s->c[i].id;
    }
    return s->c[a.m - 1].id;
}

int copse_sample_probs(copse_sampler *s, const float *logits, int n, float *probs)
{
    if (!s || !logits || !probs || n <= 0)
        return COPSE_E_ARG;
    allowed a = filter(s, logits, n);
    memset(probs, 0, (size_t)n * sizeof *probs);
    if (a.tok >= 0) {
        probs[a.tok] = 1;
    } else if (!a.m) {
        double sum = terms(s, logits, n, a.top, 1.0f / s->p.temp);
        for (int i = 0; i < n; i++)
            probs[i] = (float)(s->e[i] / sum);
    } else {
        double sum = cand_sum(s, a.m);
        for (int i = 0; i < a.m; i++)
            probs[s->c[i].id] = (float)(cand_term(s, i) / sum);
    }
    return COPSE_OK;
}

int32_t copse_sample_from(copse_sampler *s, const float *weights, int n)
{
    if (!s || !weights || n <= 0)
        return -1;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += weights[i] > 0 ? weights[i] : 0;   /* a NaN is no weight */
    if (!(sum > 0 && sum < INFINITY))
        return -1;
    double r = next_unit(s->rng) * sum;
    int last = 0;
    for (int i = 0; i < n; i++) {
        if (!(weights[i] > 0))
            continue;
        last = i;
        r -= weights[i];
        if (r < 0)
            return i;
    }
    return last;   /* the sum rounded above the walk */
}
