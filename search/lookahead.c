/*
** Lookahead: judge a candidate step by where it leads. Each branch rolls
** out k more steps greedily (all branches in one batch per token, as any
** step), the path score at the rollout's end becomes the candidate's
** select_score, and the branch is truncated back to the candidate, policy
** and verifier alike. The rollout's steps stay in the tree, marked, and
** their tokens are counted in the budget as lookahead tokens.
*/
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "search.h"
#include "error.h"

int lookahead(s_engine *e, s_branch *const *br, int n, int k)
{
    size_t nv = (size_t)e->n_vocab;
    float *saved = malloc((size_t)n * nv * sizeof *saved);
    int *cand = malloc((size_t)n * sizeof *cand);
    s_branch **live = malloc((size_t)n * sizeof *live);
    int rc = saved && cand && live ? COPSE_OK
           : copse_fail(e->err, COPSE_E_NOMEM, "copse_solve: out of memory for %d rollouts", n);
    for (int i = 0; i < n && !rc; i++) {
        cand[i] = br[i]->node;
        memcpy(saved + i * nv, br[i]->logits, nv * sizeof *saved);
    }
    e->rollout = 1;
    for (int step = 0; step < k && !rc; step++) {
        int nl = 0;
        for (int i = 0; i < n; i++)
            if (!e->nodes[br[i]->node].end)
                live[nl++] = br[i];
        if (!nl)
            break;
        rc = eng_step(e, live, nl, 1);
    }
    e->rollout = 0;
    for (int i = 0; i < n && !rc; i++) {
        float s = e->nodes[br[i]->node].path_score;
        if (!isnan(s))
            e->nodes[cand[i]].select_score = s;
        rc = eng_rollback(e, br[i], cand[i], saved + i * nv);
    }
    free(saved);
    free(cand);
    free(live);
    return rc;
}
