/*
** Beam search over steps, as search-and-learn runs it: n beams of width m.
** Every round each live beam samples one step; beams that ended (EOG, or
** cut by max_steps, max_tokens or the budget) become candidates; of the
** others the n/m best by select_score are kept (marked in the tree) and
** each is continued by m copies, so n beams go on. The search ends when no
** beam goes on or n candidates are in. With k > 0 (lookahead search) a
** step's select_score comes from a greedy rollout of k more steps.
*/
#include <stdlib.h>
#include "search.h"
#include "error.h"

/* Keep the branches idx[0..n_kept) of br and make n children of them,
** round-robin: the kept branch itself is its first child, forks the rest. */
static int refill(s_engine *e, s_branch *br, s_branch *next, const int *kept, int n_kept, int n)
{
    int rc = COPSE_OK;
    for (int j = n_kept; j < n && !rc; j++)
        rc = eng_fork(e, &br[kept[j % n_kept]], &next[j]);
    for (int j = 0; j < n_kept; j++)
        eng_move(&next[j], &br[kept[j]]);
    return rc;
}

int strat_beam(s_engine *e, int n, int m, int k, int *leaves, int *n_leaves)
{
    s_branch *br = NULL, **pb = NULL, *next = calloc((size_t)n, sizeof *next);
    int *idx = malloc((size_t)n * sizeof *idx), keep = n / m, nl = 0;
    int rc = next && idx ? eng_roots(e, n, n, &br, &pb)
           : copse_fail(e->err, COPSE_E_NOMEM, "copse_solve: out of memory for %d beams", n);
    while (!rc && !(rc = eng_step(e, pb, n, 0))) {
        int nu = 0;
        for (int i = 0; i < n; i++)
            if (e->nodes[br[i].node].end)
                leaves[nl++] = br[i].node;
            else
                pb[nu++] = &br[i];
        if (k && nu && (rc = lookahead(e, pb, nu, k)))
            break;
        if (!nu || nl >= n)
            break;
        for (int j = 0; j < nu; j++)
            idx[j] = pb[j]->node;
        eng_sort_by_score(e, idx, nu);
        int n_kept = nu < keep ? nu : keep;
        /* from the kept nodes back to their branches */
        for (int j = 0; j < n_kept; j++) {
            e->nodes[idx[j]].kept = 1;
            for (int i = 0; i < n; i++)
                if (br[i].node == idx[j])
                    idx[j] = i;
        }
        rc = refill(e, br, next, idx, n_kept, n);
        for (int i = 0; i < n; i++) {
            eng_drop(&br[i]);
            eng_move(&br[i], &next[i]);
            pb[i] = &br[i];
        }
    }
    *n_leaves = rc ? 0 : nl;
    eng_roots_free(br, pb, n);
    eng_roots_free(next, NULL, n);
    free(idx);
    return rc;
}
