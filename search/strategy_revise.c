/*
** Sequential revisions: n/m chains of m attempts each. An attempt is a
** whole solution; when it ends, the revision prompt (by default a blank
** line and the prompt again) goes into the chain's policy sequence and the
** next attempt is written after it, with every earlier attempt of the chain
** in its context. The verifier judges each attempt on its own, from the
** question. Chains run side by side, a step of every live chain per batch,
** whatever attempt each is in; every attempt is a candidate.
*/
#include <stdlib.h>
#include "search.h"
#include "error.h"

int strat_revise(s_engine *e, int n, int m, int *leaves, int *n_leaves)
{
    int g = n / m, nl = 0, rc;
    s_branch *br = NULL, **pb = NULL;
    s_branch **live = malloc((size_t)g * sizeof *live), **ended = malloc((size_t)g * sizeof *ended);
    rc = live && ended ? eng_roots(e, g, 1, &br, &pb)
       : copse_fail(e->err, COPSE_E_NOMEM, "copse_solve: out of memory for %d chains", g);
    int n_live = rc ? 0 : g;
    for (int i = 0; i < n_live; i++)
        live[i] = pb[i];
    while (!rc && n_live && !(rc = eng_step(e, live, n_live, 0))) {
        int k = 0, ne = 0;
        for (int i = 0; i < n_live; i++) {
            const s_node *nd = &e->nodes[live[i]->node];
            if (!nd->end)
                live[k++] = live[i];
            else {
                leaves[nl++] = live[i]->node;
                if (live[i]->attempt + 1 < m && !eng_stopped(e))
                    ended[ne++] = live[i];
            }
        }
        if ((rc = eng_next_attempt(e, ended, ne)))
            break;
        for (int i = 0; i < ne; i++)
            if (!ended[i]->state)
                live[k++] = ended[i];
        n_live = k;
    }
    *n_leaves = rc ? 0 : nl;
    eng_roots_free(br, pb, g);
    free(live);
    free(ended);
    return rc;
}
