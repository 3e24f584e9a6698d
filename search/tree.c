/* The search tree: paths, their texts and scores, ordering by score. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "error.h"

float eng_path_score(const s_engine *e, int node)
{
    int agg = e->p.agg, n = 0, attempt = e->nodes[node].attempt;
    double acc = agg == COPSE_AGG_MIN ? INFINITY : agg == COPSE_AGG_PROD ? 1 : 0, last = NAN;
    for (int i = node; i >= 0 && e->nodes[i].attempt == attempt; i = e->nodes[i].parent) {
        double s = e->nodes[i].score;
        if (isnan(s))
            continue;
        if (!n++)
            last = s;
        acc = agg == COPSE_AGG_MIN ? fmin(acc, s) : agg == COPSE_AGG_PROD ? acc * s : acc + s;
    }
    if (!n)
        return NAN;
    return (float)(agg == COPSE_AGG_LAST ? last : agg == COPSE_AGG_MEAN ? acc / n : acc);
}

/* The nodes of b's path from the first step to node, in order; malloc'd. */
int *eng_path(const s_engine *e, int node, int *n)
{
    int depth = 0;
    for (int i = node; i >= 0; i = e->nodes[i].parent)
        depth++;
    int *p = malloc((size_t)(depth ? depth : 1) * sizeof *p);
    if (p)
        for (int i = node, j = depth; i >= 0; i = e->nodes[i].parent)
            p[--j] = i;
    *n = depth;
    return p;
}

char *eng_attempt_text(const s_engine *e, int node, size_t *len, int *n_steps)
{
    int n = 0, attempt = e->nodes[node].attempt;
    size_t total = strlen(e->prefix);
    int first = node;
    for (int i = node; i >= 0 && e->nodes[i].attempt == attempt; i = e->nodes[i].parent) {
        total += e->nodes[i].len;
        first = i;
        n++;
    }
    char *t = malloc(total + 1);
    if (!t)
        return NULL;
    size_t at = total;
    t[at] = '\0';
    for (int i = node; ; i = e->nodes[i].parent) {
        at -= e->nodes[i].len;
        memcpy(t + at, e->nodes[i].text, e->nodes[i].len);
        if (i == first)
            break;
    }
    memcpy(t, e->prefix, at);
    *len = total;
    *n_steps = n;
    return t;
}

void eng_sort_by_score(const s_engine *e, int *idx, int n)
{
    for (int i = 1; i < n; i++) {
        int x = idx[i], j = i;
        float sx = e->nodes[x].select_score;
        while (j > 0) {
            float sy = e->nodes[idx[j - 1]].select_score;
            if (!(isnan(sy) ? !isnan(sx) : sx > sy))
                break;
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = x;
    }
}

void nodes_free(s_node *nodes, int n)
{
    for (int i = 0; i < n; i++) {
        free(nodes[i].pre);
        free(nodes[i].tok);
        free(nodes[i].vtok);
        free(nodes[i].text);
    }
    free(nodes);
}
