/*
** The final pick among candidate solutions: by score, by the most frequent
** answer, or by the answer with the highest sum of scores. Answers are
** compared by their normalized keys (answer.h), so "0.5" and "\frac12" are
** one answer. A solution without an answer never wins a vote; when none
** has one, the best-scored solution is chosen (the first on ties).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "search.h"

static double score_or(float s, double dflt)
{
    return isnan(s) ? dflt : s;
}

static int has_key(const char *const *keys, int i)
{
    return keys[i] && keys[i][0];
}

/* The best-scored candidate among those whose key equals key (any when key
** is NULL); the first on ties. */
static int best_scored(const char *const *keys, const float *scores, int n, const char *key)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if ((!key || (has_key(keys, i) && !strcmp(keys[i], key))) &&
            (best < 0 || score_or(scores[i], -INFINITY) > score_or(scores[best], -INFINITY)))
            best = i;
    return best;
}

int pick_winner(const char *const *keys, const float *scores, int n, int pick, double *votes)
{
    if (pick == COPSE_PICK_BEST) {
        for (int i = 0; i < n; i++)
            votes[i] = scores[i];
        return best_scored(keys, scores, n, NULL);
    }
    /* per candidate: how many share its answer and the sum of their scores */
    int lead = -1;
    double lead_count = 0, lead_sum = 0;
    for (int i = 0; i < n; i++) {
        double count = 0, sum = 0;
        for (int j = 0; j < n && has_key(keys, i); j++)
            if (has_key(keys, j) && !strcmp(keys[i], keys[j])) {
                count++;
                sum += score_or(scores[j], 0);
            }
        votes[i] = pick == COPSE_PICK_MAJORITY ? count : sum;
        double first = pick == COPSE_PICK_MAJORITY ? count : sum;
        double second = pick == COPSE_PICK_MAJORITY ? sum : count;
        double lf = pick == COPSE_PICK_MAJORITY ? lead_count : lead_sum;
        double ls = pick == COPSE_PICK_MAJORITY ? lead_sum : lead_count;
        if (count > 0 && (lead < 0 || first > lf || (first == lf && second > ls))) {
            lead = i;
            lead_count = count;
            lead_sum = sum;
        }
    }
    return best_scored(keys, scores, n, lead >= 0 ? keys[lead] : NULL);
}
