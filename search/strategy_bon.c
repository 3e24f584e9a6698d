/*
** Best-of-N: n independent solutions sampled in parallel from one prompt
** (one batch per token for all of them). Whether the best-scored, the most
** frequent or the highest-weighted answer wins is the final pick's
** business (pick.c); all three sample the same way.
*/
#include "search.h"

int strat_best_of_n(s_engine *e, int n, int *leaves, int *n_leaves)
{
    s_branch *br, **pb;
    int rc = eng_roots(e, n, n, &br, &pb);
    if (!rc)
        rc = eng_run(e, pb, n);
    for (int i = 0; i < n && !rc; i++)
        leaves[i] = br[i].node;
    *n_leaves = rc ? 0 : n;
    eng_roots_free(br, pb, n);
    return rc;
}
