/*
** The auto strategy's difficulty estimate: a few full samples, drawn like
** best-of-N and counted in the budget (their steps stay in the tree,
** marked as probes). With a verifier the difficulty is one minus their mean
** final score (an unscored sample counts as 0); without, one minus the
** share of the commonest answer (no answer, no agreement). solve.c maps it
** to a bin and the bin to what the table says.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "error.h"

int estimate_difficulty(s_engine *e, int probes, double *difficulty)
{
    int *leaves = malloc((size_t)probes * sizeof *leaves), nl = 0;
    char **keys = calloc((size_t)probes, sizeof *keys);
    int rc = leaves && keys ? COPSE_OK : copse_fail(e->err, COPSE_E_NOMEM, "copse_solve: out of memory");
    e->probe = 1;
    if (!rc)
        rc = strat_best_of_n(e, probes, leaves, &nl);
    e->probe = 0;
    if (!rc && !e->v && (rc = leaf_keys(e, leaves, nl, keys)))
        rc = copse_fail(e->err, rc, "copse_solve: out of memory");
    double agree = 0;
    for (int i = 0; i < nl && !rc; i++) {
        double s = e->nodes[leaves[i]].path_score, same = 0;
        for (int j = 0; !e->v && keys[i][0] && j < nl; j++)
            same += !strcmp(keys[i], keys[j]);
        agree = e->v ? agree + (isnan(s) ? 0 : s) / nl : fmax(agree, same / nl);
    }
    *difficulty = 1 - agree;
    for (int i = 0; keys && i < probes; i++)
        free(keys[i]);
    free(keys);
    free(leaves);
    return rc;
}
