/*
** The result of copse_solve: the search tree (the engine's nodes, taken
** over), the candidate solutions with their answers and votes, the chosen
** one and the budget.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "answer.h"
#include "error.h"

typedef struct cand {
    char  *text, *answer, *key;
    int    node, n_steps;
} cand;

struct copse_result {
    copse_result_info info;
    s_node           *nodes;
    copse_candidate  *cands;
    cand             *mem;
};

/* The answer of s (len bytes) as written, or "" when it has none. */
static char *answer_of(const char *s, size_t len)
{
    char *a = malloc(len + 1);
    int n = a ? answer_extract(s, len, a, len + 1) : -2;
    if (n == -1)
        a[0] = '\0';
    if (n < -1) {
        free(a);
        return NULL;
    }
    return a;
}

static char *key_of(const char *answer)
{
    size_t len = strlen(answer), cap = 2 * len + 16;
    char *k = malloc(cap);
    int n = k ? answer_normalize(answer, len, k, cap) : -1;
    if (n >= (int)cap) {
        char *b = realloc(k, (size_t)n + 1);
        n = b ? answer_normalize(answer, len, b, (size_t)n + 1) : -1;
        k = b ? b : k;
    }
    if (n < 0) {
        free(k);
        return NULL;
    }
    return k;
}

/* Text, answer and key of leaf's attempt; 0 or COPSE_E_NOMEM. */
static int cand_fill(const s_engine *e, int leaf, cand *c)
{
    size_t len;
    c->node = leaf;
    c->text = eng_attempt_text(e, leaf, &len, &c->n_steps);
    c->answer = c->text ? answer_of(c->text, len) : NULL;
    c->key = c->answer ? key_of(c->answer) : NULL;
    return c->key ? COPSE_OK : COPSE_E_NOMEM;
}

static void cand_free(cand *c)
{
    free(c->text);
    free(c->answer);
    free(c->key);
}

int leaf_keys(const s_engine *e, const int *leaves, int n, char **keys)
{
    int rc = COPSE_OK;
    for (int i = 0; i < n; i++) {
        cand c = { 0 };
        rc = rc ? rc : cand_fill(e, leaves[i], &c);
        keys[i] = rc ? NULL : c.key;
        c.key = NULL;
        cand_free(&c);
    }
    return rc;
}

void copse_result_free(copse_result *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->info.n_candidates; i++)
        cand_free(&r->mem[i]);
    nodes_free(r->nodes, r->info.n_steps);
    free(r->cands);
    free(r->mem);
    free(r);
}

int result_make(s_engine *e, const int *leaves, int n, const copse_result_info *info,
                copse_result **out)
{
    copse_result *r = calloc(1, sizeof *r);
    const char **keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
    float *scores = calloc((size_t)(n ? n : 1), sizeof *scores);
    double *votes = malloc((size_t)(n ? n : 1) * sizeof *votes);
    int rc = r && keys && scores && votes ? COPSE_OK : COPSE_E_NOMEM;
    if (!rc && (!(r->cands = calloc((size_t)(n ? n : 1), sizeof *r->cands)) ||
                !(r->mem = calloc((size_t)(n ? n : 1), sizeof *r->mem))))
        rc = COPSE_E_NOMEM;
    for (int i = 0; i < n && !rc; i++) {
        r->info.n_candidates = i + 1;
        rc = cand_fill(e, leaves[i], &r->mem[i]);
        keys[i] = r->mem[i].key;
        scores[i] = e->nodes[leaves[i]].path_score;
    }
    if (!rc) {
        r->info = *info;
        r->info.n_candidates = n;
        r->info.chosen = pick_winner(keys, scores, n, info->pick, votes);
        r->info.answer = r->info.chosen >= 0 ? r->mem[r->info.chosen].answer : "";
        for (int i = 0; i < n; i++) {
            const s_node *nd = &e->nodes[leaves[i]];
            r->cands[i] = (copse_candidate){ leaves[i], r->mem[i].n_steps, r->mem[i].text, r->mem[i].answer,
                                             nd->path_score, votes[i], nd->end == END_EOG };
        }
        e->b.generations = n;
        eng_budget(e);
        r->info.budget = e->b;
        r->info.n_steps = e->n_nodes;
        r->nodes = e->nodes;
        e->nodes = NULL;
        e->n_nodes = e->cap_nodes = 0;
    }
    free(keys);
    free(scores);
    free(votes);
    if (rc) {
        copse_result_free(r);
        return copse_fail(e->err, rc, "copse_solve: out of memory for the result");
    }
    *out = r;
    return COPSE_OK;
}

void copse_result_get_info(const copse_result *r, copse_result_info *info)
{
    if (r && info)
        *info = r->info;
    else if (info)
        memset(info, 0, sizeof *info);
}

int copse_result_step(const copse_result *r, int i, copse_step *out)
{
    if (!r || !out || i < 0 || i >= r->info.n_steps)
        return COPSE_E_ARG;
    const s_node *nd = &r->nodes[i];
    *out = (copse_step){ nd->parent, nd->round, nd->group, nd->attempt, nd->text, nd->tok, nd->n_tok, nd->n_vtok,
                         nd->score, nd->path_score, nd->select_score, nd->kept, nd->end, nd->rollout,
                         nd->probe };
    return COPSE_OK;
}

int copse_result_candidate(const copse_result *r, int i, copse_candidate *out)
{
    if (!r || !out || i < 0 || i >= r->info.n_candidates)
        return COPSE_E_ARG;
    *out = r->cands[i];
    return COPSE_OK;
}
