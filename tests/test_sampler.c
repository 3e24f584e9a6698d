#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "copse.h"

static copse_sampler *make(float temp, int top_k, float top_p, float min_p, uint64_t seed)
{
    copse_sampler_params p = { .temp = temp, .top_k = top_k, .top_p = top_p, .min_p = min_p, .seed = seed };
    copse_sampler *s = copse_sampler_new(&p);
    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(greedy_is_argmax)
{
    float l[6] = { 0.5f, 3.0f, -1.0f, 3.0f, 2.9f, 0.0f };
    copse_sampler *s = make(0, 0, 1, 0, 1);
    ck_assert_int_eq(copse_sample(s, l, 6), 1); /* ties go to the lower id */
    copse_sampler_free(s);
    s = make(1.0f, 1, 1, 0, 1); /* top-k 1 is greedy too */
    ck_assert_int_eq(copse_sample(s, l, 6), 1);
    copse_sampler_free(s);
    s = make(1e-45f, 0, 1, 0, 1); /* and a temperature whose inverse is infinite */
    ck_assert_int_eq(copse_sample(s, l, 6), 1);
    copse_sampler_free(s);
}
END_TEST

START_TEST(same_seed_same_choices)
{
    enum { N = 1000 };
    float *l = malloc(N * sizeof *l);
    for (int i = 0; i < N; i++)
        l[i] = (float)((i * 7919) % 101) / 10.0f;
    copse_sampler *a = make(1.0f, 0, 0.9f, 0, 42), *b = make(1.0f, 0, 0.9f, 0, 42), *c = make(1.0f, 0, 0.9f, 0, 43);
    int differ = 0;
    for (int t = 0; t < 200; t++) {
        int32_t x = copse_sample(a, l, N), y = copse_sample(b, l, N), z = copse_sample(c, l, N);
        ck_assert_int_eq(x, y);
        differ += x != z;
    }
    ck_assert_int_gt(differ, 100); /* another seed gives another stream */
    copse_sampler_free(a);
    copse_sampler_free(b);
    copse_sampler_free(c);
    free(l);
}
END_TEST

/* Frequencies over many draws follow softmax(logits / T); each within five
** standard deviations of its expectation; and copse_sample_probs gives
** the expectation. */
static void check_distribution(copse_sampler *s, const float *l, int n, const double *expect)
{
    enum { DRAWS = 200000 };
    int count[16] = { 0 };
    float probs[16];
    ck_assert_int_eq(copse_sample_probs(s, l, n, probs), COPSE_OK);
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(probs[i] - expect[i]) <= 1e-6, "token %d: %g, expected %g", i, probs[i], expect[i]);
    for (int t = 0; t < DRAWS; t++) {
        int32_t id = copse_sample(s, l, n);
        ck_assert(id >= 0 && id < n);
        count[id]++;
    }
    for (int i = 0; i < n; i++) {
        double mean = expect[i] * DRAWS, sd = sqrt(DRAWS * expect[i] * (1 - expect[i]));
        if (expect[i] == 0)
            ck_assert_int_eq(count[i], 0);
        else
            ck_assert_msg(fabs(count[i] - mean) <= 5 * sd + 1, "token %d: %d draws, expected %.0f", i, count[i], mean);
    }
}

static void softmax_subset(const float *l, int n, const int *keep, double temp, double *out)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += out[i] = keep[i] ? exp(l[i] / temp) : 0;
    for (int i = 0; i < n; i++)
        out[i] /= sum;
}

START_TEST(temperature_distribution)
{
    float l[5] = { 1.0f, 2.0f, 0.0f, 1.5f, -1.0f };
    int all[5] = { 1, 1, 1, 1, 1 };
    double e[5];
    copse_sampler *s = make(0.7f, 0, 1.0f, 0, 7);
    softmax_subset(l, 5, all, 0.7, e);
    check_distribution(s, l, 5, e);
    copse_sampler_free(s);
}
END_TEST

START_TEST(truncations)
{
    /* p at T=1 of {2, 1.5, 1, 0, -1}: .455 .276 .167 .062 .023 (rounded) */
    float l[5] = { 1.0f, 2.0f, 0.0f, 1.5f, -1.0f };
    double e[5];
    int k2[5] = { 1, 1, 0, 1, 0 };      /* top-k 3: ids 1, 3, 0 */
    copse_sampler *s = make(1.3f, 3, 1.0f, 0, 9);
    softmax_subset(l, 5, k2, 1.3, e);
    check_distribution(s, l, 5, e);
    copse_sampler_free(s);

    int p8[5] = { 0, 1, 0, 1, 0 };      /* top-p .7: .455 + .276 reach it */
    s = make(1.0f, 0, 0.7f, 0, 9);
    softmax_subset(l, 5, p8, 1.0, e);
    check_distribution(s, l, 5, e);
    copse_sampler_free(s);

    int mp[5] = { 1, 1, 0, 1, 0 };      /* min-p .3: p >= .3 * .455 = .137 */
    s = make(2.0f, 0, 1.0f, 0.3f, 9);
    softmax_subset(l, 5, mp, 2.0, e);
    check_distribution(s, l, 5, e);
    copse_sampler_free(s);
}
END_TEST

/* On a large vocabulary the nucleus may lie beyond the first sorted chunk;
** every token of the nucleus must still be reachable and none outside:
** 4,000 draws from its 2,500 tokens reach about 2,000 of them. */
START_TEST(wide_nucleus)
{
    enum { N = 5000 };
    float *l = malloc(N * sizeof *l);
    for (int i = 0; i < N; i++)
        l[i] = (float)(i % 2) * 0.001f; /* nearly flat: nucleus .5 holds ~2500 tokens */
    copse_sampler *s = make(1.0f, 0, 0.5f, 0, 3);
    int odd = 0, distinct = 0;
    char seen[N] = { 0 };
    for (int t = 0; t < 4000; t++) {
        int32_t id = copse_sample(s, l, N);
        ck_assert(id >= 0 && id < N);
        odd += id & 1; /* the larger (odd) logits come first in the nucleus */
        distinct += !seen[id]++;
    }
    ck_assert_int_eq(odd, 4000);
    ck_assert_int_gt(distinct, 1800);
    copse_sampler_free(s);
    free(l);
}
END_TEST

/* The reference order of the test below: logit descending (NaN last),
** then id ascending. */
typedef struct ranked { float v; int id; } ranked;

static int ranked_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    float u = x->v == x->v ? x->v : -INFINITY, w = y->v == y->v ? y->v : -INFINITY;
    return u != w ? (u < w ? 1 : -1) : (x->id > y->id) - (x->id < y->id);
}

/* top-k on a vocabulary of 50,000 (the sampler gathers candidates above a
** rising threshold): the tokens drawn are exactly the k first of the
** reference order, and at temperature 100 all of them are drawn. With
** distinct logits; with 30 of 10 and 300 of 9 among them, so that ties
** straddle the k-th place; NaNs throughout. Then stairs: the first ids
** hold 20 logits of 100, 10 of 60 and 10 of 40, the last ones 20 of 50,
** which must displace the 40s (the threshold the first ids set is 40).
** Greedy takes the first of the reference order. */
START_TEST(top_k_large_vocabulary)
{
    enum { N = 50000, K = 40, DRAWS = 20000 };
    float *l = malloc(N * sizeof *l);
    ranked *ref = malloc(N * sizeof *ref);
    int *want = malloc(N * sizeof *want), *seen = malloc(N * sizeof *seen);
    for (int set = 0; set < 3; set++) {
        uint64_t x = 12345;
        for (int i = 0; i < N; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            l[i] = i % 97 == 5 ? NAN : (float)(x >> 40) / (float)(1 << 24) * 8.5f;   /* [0, 8.5) */
        }
        for (int i = 0; set == 1 && i < 330; i++)   /* distinct ids: 7919 * 13 is prime to N */
            l[(uint64_t)(i + 1) * 7919u * 13u % N] = i < 30 ? 10.0f : 9.0f;
        for (int i = 0; set == 2 && i < 40; i++) {
            l[i] = i < 20 ? 100.0f : i < 30 ? 60.0f : 40.0f;
            l[N - 1 - i] = i < 20 ? 50.0f : 0.0f;
        }
        for (int i = 0; i < N; i++)
            ref[i] = (ranked){ l[i], i };
        qsort(ref, N, sizeof *ref, ranked_desc);
        memset(want, 0, N * sizeof *want);
        memset(seen, 0, N * sizeof *seen);
        for (int i = 0; i < K; i++)
            want[ref[i].id] = 1;
        ck_assert(set != 1 || (ref[K - 1].v == 9.0f && ref[K].v == 9.0f));
        copse_sampler *s = make(100.0f, K, 1.0f, 0, 11);
        int outside = 0, drawn = 0;
        for (int t = 0; t < DRAWS; t++) {
            int32_t id = copse_sample(s, l, N);
            ck_assert(id >= 0 && id < N);
            outside += !want[id];
            drawn += want[id] && !seen[id]++;
        }
        ck_assert_msg(outside == 0 && drawn == K, "set %d: %d draws outside the top %d, %d of them drawn",
                      set, outside, K, drawn);
        copse_sampler_free(s);
        s = make(0.0f, 0, 1.0f, 0, 11);
        ck_assert_int_eq(copse_sample(s, l, N), ref[0].id);
        copse_sampler_free(s);
    }
    free(l);
    free(ref);
    free(want);
    free(seen);
}
END_TEST

/*
** Without top-k on a vocabulary of 5,003 (not a multiple of the sampler's
** runs and blocks): 3 tokens of 5 (one of them the last id), 20 of 3, the
** rest below 0, NaN at every 101st and -inf at every 211th. For
** temperature alone, min-p alone and top-p alone (whose nucleus holds two
** of the 5s: the lower ids), the draws fall on the tokens a sort in
** double allows, never elsewhere, and each group's share
** is within five standard deviations of its softmax at the temperature.
** The groups: the 5s, the 3s, the rest. Then one +inf logit, which every
** setting chooses.
*/
START_TEST(no_top_k_large_vocabulary)
{
    enum { N = 5003, DRAWS = 40000 };
    float *l = malloc(N * sizeof *l);
    ranked *ref = malloc(N * sizeof *ref);
    int *allowed = malloc(N * sizeof *allowed);
    uint64_t x = 99;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        l[i] = i % 101 == 7 ? NAN : i % 211 == 3 ? -INFINITY : -6.0f * (float)(x >> 40) / (float)(1 << 24);
    }
    l[17] = l[2600] = l[N - 1] = 5.0f;
    for (int i = 0; i < 20; i++)
        l[100 + 37 * i] = 3.0f;
    for (int i = 0; i < N; i++)
        ref[i] = (ranked){ l[i], i };
    qsort(ref, N, sizeof *ref, ranked_desc);
    static const struct { float temp, top_p, min_p; } ps[] = { { 0.9f, 1, 0 }, { 0.9f, 1, 0.1f }, { 1.3f, 0.15f, 0 } };
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        /* the allowed prefix of the reference order, judged at temperature 1 */
        double total = 0, mass = 0;
        for (int i = 0; i < N; i++)
            total += l[i] == l[i] ? exp((double)l[i] - 5) : 0;
        int keep = 0, finite = 0;
        for (int i = 0; i < N; i++)
            finite += isfinite(l[i]);
        while (keep < N && ref[keep].v > -INFINITY && (ps[k].top_p >= 1 || mass < ps[k].top_p) &&
               (double)ref[keep].v >= 5 + log((double)ps[k].min_p))
            mass += exp((double)ref[keep++].v - 5) / total;
        memset(allowed, 0, N * sizeof *allowed);
        double want[3] = { 0 }, sum = 0;
        for (int i = 0; i < keep; i++) {
            int id = ref[i].id;
            allowed[id] = 1;
            double t = exp(((double)l[id] - 5) / ps[k].temp);
            want[l[id] == 5.0f ? 0 : l[id] == 3.0f ? 1 : 2] += t;
            sum += t;
        }
        ck_assert_int_eq(keep, k == 0 ? finite : k == 1 ? 23 : 2);
        copse_sampler *s = make(ps[k].temp, 0, ps[k].top_p, ps[k].min_p, 21);
        int got[3] = { 0 }, outside = 0, last = 0;
        for (int t = 0; t < DRAWS; t++) {
            int32_t id = copse_sample(s, l, N);
            ck_assert(id >= 0 && id < N);
            outside += !allowed[id];
            last += id == N - 1;
            got[l[id] == 5.0f ? 0 : l[id] == 3.0f ? 1 : 2]++;
        }
        ck_assert_msg(outside == 0, "setting %zu: %d draws outside the allowed tokens", k, outside);
        ck_assert(allowed[N - 1] ? last > 0 : last == 0);
        for (int g = 0; g < 3; g++) {
            double p = want[g] / sum, mean = p * DRAWS, sd = sqrt(DRAWS * p * (1 - p));
            ck_assert_msg(fabs(got[g] - mean) <= 5 * sd + 1, "setting %zu, group %d: %d draws, expected %.0f", k, g,
                          got[g], mean);
        }
        copse_sampler_free(s);
    }
    l[3000] = INFINITY;
    static const struct { float temp, top_p, min_p; int top_k; } inf[] = {
        { 0.9f, 1, 0, 0 }, { 0.9f, 1, 0.1f, 0 }, { 1.3f, 0.15f, 0, 0 }, { 0.8f, 0.95f, 0.05f, 40 }, { 0, 1, 0, 0 },
    };
    for (size_t k = 0; k < sizeof inf / sizeof *inf; k++) {
        copse_sampler *s = make(inf[k].temp, inf[k].top_k, inf[k].top_p, inf[k].min_p, 4);
        for (int t = 0; t < 50; t++)
            ck_assert_int_eq(copse_sample(s, l, N), 3000);
        copse_sampler_free(s);
    }
    free(l);
    free(ref);
    free(allowed);
}
END_TEST

/* A broken model's NaN logits: never chosen while a number is there, and
** no truncation walks off its candidates (the quickselect once did, on an
** order NaN made inconsistent). */
START_TEST(nan_logits)
{
    enum { N = 1000 };
    float *l = malloc(N * sizeof *l);
    for (int i = 0; i < N; i++)
        l[i] = i % 7 == 0 ? NAN : (float)(i % 13);
    l[0] = NAN;   /* greedy starts its search here */
    static const struct { float temp, top_p, min_p; int top_k; } ps[] = {
        { 0, 1, 0, 0 }, { 0.8f, 1, 0, 40 }, { 0.8f, 0.9f, 0, 0 }, { 1, 1, 0.05f, 0 }, { 1, 1, 0, 0 },
    };
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        copse_sampler *s = make(ps[k].temp, ps[k].top_k, ps[k].top_p, ps[k].min_p, 5);
        for (int t = 0; t < 200; t++) {
            int32_t id = copse_sample(s, l, N);
            ck_assert_msg(id > 0 && id < N && id % 7 != 0, "setting %zu chose %d", k, id);
        }
        copse_sampler_free(s);
    }
    for (int i = 0; i < N; i++)
        l[i] = NAN;
    copse_sampler *s = make(0.8f, 40, 0.9f, 0, 5);
    int32_t id = copse_sample(s, l, N);
    ck_assert(id >= 0 && id < N);
    copse_sampler_free(s);
    free(l);
}
END_TEST

/* copse_sample_probs against copse_sample on a vocabulary of 1009 random
** logits, every setting copse_sample knows: the probabilities sum to 1,
** every draw has a positive one and the draws' frequencies follow them
** (their total variation from them within 0.01 of the bound on its
** expectation that 10,000 fair draws give, half the sum of each token's
** standard deviation over the draws); greedy settings and an
** infinite logit give copse_sample's token probability 1. Drawing them
** with copse_sample_from follows them too. */
START_TEST(probs_are_what_sample_draws)
{
    enum { N = 1009, DRAWS = 10000 };
    float *l = malloc(N * sizeof *l), *p = malloc(N * sizeof *p);
    int *count = malloc(N * sizeof *count), *from = malloc(N * sizeof *from);
    uint64_t x = 7;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        l[i] = i % 97 == 5 ? NAN : -8.0f * (float)(x >> 40) / (float)(1 << 24);
    }
    for (int i = 0; i < 30; i++)
        l[11 + 31 * i] = 1.0f + 0.1f * (float)i;
    static const struct { float temp, top_p, min_p; int top_k; } ps[] = {
        { 0.8f, 0.95f, 0.05f, 40 }, { 1.0f, 1, 0, 0 }, { 0.7f, 0.9f, 0, 0 }, { 1.2f, 1, 0.02f, 0 },
        { 1.0f, 1, 0, 25 }, { 0.5f, 0.5f, 0, 100 }, { 0, 1, 0, 0 }, { 1.0f, 1, 0, 1 },
    };
    for (size_t k = 0; k <= sizeof ps / sizeof *ps; k++) {
        int inf = k == sizeof ps / sizeof *ps;   /* last: the first setting with an infinite logit */
        size_t q = inf ? 0 : k;
        if (inf)
            l[800] = INFINITY;
        copse_sampler *s = make(ps[q].temp, ps[q].top_k, ps[q].top_p, ps[q].min_p, 11);
        ck_assert_int_eq(copse_sample_probs(s, l, N, p), COPSE_OK);
        double sum = 0;
        for (int i = 0; i < N; i++) {
            ck_assert(p[i] >= 0);
            sum += p[i];
        }
        ck_assert_msg(fabs(sum - 1) < 1e-5, "setting %zu: sum %g", k, sum);
        memset(count, 0, N * sizeof *count);
        memset(from, 0, N * sizeof *from);
        for (int t = 0; t < DRAWS; t++) {
            int32_t id = copse_sample(s, l, N), f = copse_sample_from(s, p, N);
            ck_assert_msg(id >= 0 && id < N && p[id] > 0, "setting %zu drew %d", k, id);
            ck_assert(f >= 0 && f < N && p[f] > 0);
            count[id]++;
            from[f]++;
        }
        double tv = 0, tv_from = 0, bound = 0.01;
        for (int i = 0; i < N; i++) {
            tv += fabs(count[i] / (double)DRAWS - p[i]) / 2;
            tv_from += fabs(from[i] / (double)DRAWS - p[i]) / 2;
            bound += sqrt(p[i] * (1 - p[i]) / DRAWS) / 2;
        }
        ck_assert_msg(tv < bound && tv_from < bound, "setting %zu: total variation %g, drawn from them %g, bound %g",
                      k, tv, tv_from, bound);
        if (ps[q].temp == 0 || ps[q].top_k == 1 || inf) {
            int32_t id = copse_sample(s, l, N);
            ck_assert_msg(p[id] == 1.0f, "setting %zu: %d has %g", k, id, p[id]);
        }
        copse_sampler_free(s);
    }
    copse_sampler *s = make(1.0f, 0, 1, 0, 3);
    ck_assert_int_eq(copse_sample_probs(s, l, 0, p), COPSE_E_ARG);
    ck_assert_int_eq(copse_sample_probs(s, NULL, N, p), COPSE_E_ARG);
    copse_sampler_free(s);
    free(l);
    free(p);
    free(count);
    free(from);
}
END_TEST

/* copse_sample_from: frequencies follow the weights, which need not sum
** to 1; negative and NaN weights are none; no positive weight gives -1. */
START_TEST(sample_from_weights)
{
    float w[6] = { 0, 1, 3, -2, NAN, 4 };
    double e[6] = { 0, 1 / 8.0, 3 / 8.0, 0, 0, 4 / 8.0 };
    int count[6] = { 0 };
    enum { DRAWS = 80000 };
    copse_sampler *s = make(1.0f, 0, 1, 0, 5);
    for (int t = 0; t < DRAWS; t++) {
        int32_t id = copse_sample_from(s, w, 6);
        ck_assert(id >= 0 && id < 6);
        count[id]++;
    }
    for (int i = 0; i < 6; i++) {
        double mean = e[i] * DRAWS, sd = sqrt(DRAWS * e[i] * (1 - e[i]));
        ck_assert_msg(fabs(count[i] - mean) <= 5 * sd, "token %d: %d draws, expected %.0f", i, count[i], mean);
    }
    float none[3] = { 0, -1, NAN }, huge[2] = { INFINITY, 1 };
    ck_assert_int_eq(copse_sample_from(s, none, 3), -1);
    ck_assert_int_eq(copse_sample_from(s, huge, 2), -1);
    ck_assert_int_eq(copse_sample_from(s, w, 0), -1);
    copse_sampler_free(s);
}
END_TEST

Suite *copse_suite_sampler(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, greedy_is_argmax);
    tcase_add_test(tc, same_seed_same_choices);
    tcase_add_test(tc, temperature_distribution);
    tcase_add_test(tc, truncations);
    tcase_add_test(tc, wide_nucleus);
    tcase_add_test(tc, top_k_large_vocabulary);
    tcase_add_test(tc, no_top_k_large_vocabulary);
    tcase_add_test(tc, nan_logits);
    tcase_add_test(tc, probs_are_what_sample_draws);
    tcase_add_test(tc, sample_from_weights);
    suite_add_tcase(s, tc);
    return s;
}
