/*
** Diverse verifier tree search: n/m subtrees grown independently from the
** prompt. Each round every live subtree samples m candidate steps from its
** current leaf and goes on with the best scored (marked kept); a subtree
** ends when that step ends its path, and its path is one candidate. All
** subtrees' candidates are sampled in one batch per token.
*/
#include <stdlib.h>
#include "search.h"
#include "error.h"

/* One round: m candidates for each live subtree, stepped together; each
** subtree keeps its best. */
static int round_of(s_engine *e, s_branch *sub, int *live, int g, int m, s_branch *cand,
                    s_branch **pc, int *idx, int *leaves, int *nl)
{
    int nc = 0, rc = COPSE_OK;
    for (int s = 0; s < g && !rc; s++) {
        if (!live[s])
            continue;
        for (int j = 1; j < m && !rc; j++)
            rc = eng_fork(e, &sub[s], &cand[nc + j]);
        eng_move(&cand[nc], &sub[s]);
        for (int j = 0; j < m; j++)
            pc[nc + j] = &cand[nc + j];
        nc += m;
    }
    if (rc || (rc = eng_step(e, pc, nc, 0)))
        return rc;
    for (int s = 0, c = 0; s < g; s++) {
        if (!live[s])
            continue;
        for (int j = 0; j < m; j++)
            idx[j] = pc[c + j]->node;
        eng_sort_by_score(e, idx, m);
        for (int j = 0; j < m; j++)
            if (pc[c + j]->node == idx[0])
                eng_move(&sub[s], pc[c + j]);
            else
                eng_drop(pc[c + j]);
        e->nodes[idx[0]].kept = 1;
        if (e->nodes[idx[0]].end) {
            leaves[(*nl)++] = idx[0];
            eng_drop(&sub[s]);
            live[s] = 0;
        }
        c += m;
    }
    return COPSE_OK;
}

int strat_dvts(s_engine *e, int n, int m, int *leaves, int *n_leaves)
{
    int g = n / m, nl = 0, rc, any = 1;
    s_branch *sub = NULL, **psub = NULL, *cand = calloc((size_t)n, sizeof *cand);
    s_branch **pc = malloc((size_t)n * sizeof *pc);
    int *idx = malloc((size_t)m * sizeof *idx), *live = malloc((size_t)g * sizeof *live);
    rc = cand && pc && idx && live ? eng_roots(e, g, 1, &sub, &psub)
       : copse_fail(e->err, COPSE_E_NOMEM, "copse_solve: out of memory for %d subtrees", g);
    for (int s = 0; s < g && !rc; s++)
        live[s] = 1;
    while (!rc && any) {
        rc = round_of(e, sub, live, g, m, cand, pc, idx, leaves, &nl);
        any = 0;
        for (int s = 0; s < g && !rc; s++)
            any |= live[s];
    }
    *n_leaves = rc ? 0 : nl;
    eng_roots_free(sub, psub, g);
    eng_roots_free(cand, pc, n);
    free(idx);
    free(live);
    return rc;
}
