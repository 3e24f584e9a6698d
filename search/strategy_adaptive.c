/*
** Adaptive majority vote (adaptive consistency): whole solutions are
** sampled in waves of m, and sampling stops once the vote is settled: when
** the leading answer could no longer be overtaken by the solutions left in
** the budget of n, or when, between the two leading answers, the posterior
** probability that the leader is the more likely one reaches the
** confidence asked for. Easy questions, whose samples agree at once, then
** cost a wave or two instead of n; hard ones still get all n.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "error.h"

double vote_settled_prob(int lead, int second)
{
    /* The leader's share of the two, under a uniform prior, is Beta(lead + 1,
    ** second + 1); P(share > 1/2) = P(Binomial(n, 1/2) <= lead) with n =
    ** lead + second + 1, that is 1 - P(Binomial(n, 1/2) <= second): the
    ** shorter sum, its terms in logarithms so that no 2^-n underflows first. */
    int n = lead + second + 1;
    double tail = 0, log_c = 0;   /* log C(n, i) */
    for (int i = 0; i <= second; i++) {
        tail += exp(log_c - n * log(2.0));
        log_c += log((double)(n - i) / (i + 1));
    }
    return tail < 1 ? 1 - tail : 0;
}

/* The counts of the two most frequent answers among keys[0..n) (solutions
** without an answer count for none). */
static void top_two(char *const *keys, int n, int *first, int *second)
{
    *first = *second = 0;
    for (int i = 0; i < n; i++) {
        int count = 0, seen = 0;
        for (int j = 0; j < n && keys[i][0]; j++) {
            count += !strcmp(keys[i], keys[j]);
            seen |= j < i && !strcmp(keys[i], keys[j]);
        }
        if (seen || !count)
            continue;
        if (count > *first) {
            *second = *first;
            *first = count;
        } else if (count > *second) {
            *second = count;
        }
    }
}

int strat_adaptive(s_engine *e, int n, int m, double confidence, int *leaves, int *n_leaves)
{
    char **keys = calloc((size_t)n, sizeof *keys);
    int done = 0, rc = keys ? COPSE_OK : copse_fail(e->err, COPSE_E_NOMEM, "copse_solve: out of memory");
    while (!rc && done < n) {
        int w = 0, lead, second;
        rc = strat_best_of_n(e, m, leaves + done, &w);
        for (int i = done; i < done + w && !rc; i++)
            if (leaf_keys(e, leaves + i, 1, keys + i))
                rc = copse_fail(e->err, COPSE_E_NOMEM, "copse_solve: out of memory");
        done += w;
        if (rc || eng_stopped(e))
            break;
        top_two(keys, done, &lead, &second);
        if (lead - second > n - done || (lead && vote_settled_prob(lead, second) >= confidence))
            break;
    }
    *n_leaves = rc ? 0 : done;
    for (int i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
    return rc;
}
