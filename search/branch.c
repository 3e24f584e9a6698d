/*
** Branches: forking a branch forks its policy and verifier sequences and
** copies its next-token logits; rolling back truncates both sequences to
** a step of the path; a new revision attempt writes the revision prompt
** into the policy sequence and starts the verifier over from its prompt.
** In the naive baseline branches hold no sequences between steps.
*/
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "error.h"

int eng_root(s_engine *e, s_branch *b, int group)
{
    memset(b, 0, sizeof *b);
    b->node = -1;
    b->group = group;
    b->logits = malloc((size_t)e->n_vocab * sizeof(float));
    if (b->logits)
        memcpy(b->logits, e->root_logits, (size_t)e->n_vocab * sizeof(float));
    if (b->logits && !e->naive) {
        b->ps = copse_seq_fork(e->root_p);
        b->vs = e->v ? copse_seq_fork(e->root_v) : NULL;
    }
    if (!b->logits || (!e->naive && (!b->ps || (e->v && !b->vs)))) {
        eng_drop(b);
        return eng_nomem(e, "a branch");
    }
    return COPSE_OK;
}

int eng_roots(s_engine *e, int n, int per_group, s_branch **br, s_branch ***pb)
{
    *br = calloc((size_t)n, sizeof **br);
    *pb = malloc((size_t)n * sizeof **pb);
    if (!*br || !*pb) {
        free(*br);
        free(*pb);
        *br = NULL;
        *pb = NULL;
        return eng_nomem(e, "branches");
    }
    int rc = COPSE_OK;
    for (int i = 0; i < n; i++) {
        (*pb)[i] = &(*br)[i];
        (*br)[i].node = -1;
        rc = rc ? rc : eng_root(e, &(*br)[i], i / per_group);
    }
    return rc;
}

void eng_roots_free(s_branch *br, s_branch **pb, int n)
{
    for (int i = 0; br && i < n; i++)
        eng_drop(&br[i]);
    free(br);
    free(pb);
}

int eng_fork(s_engine *e, const s_branch *src, s_branch *dst)
{
    *dst = *src;
    dst->ps = src->ps ? copse_seq_fork(src->ps) : NULL;
    dst->vs = src->vs ? copse_seq_fork(src->vs) : NULL;
    dst->logits = malloc((size_t)e->n_vocab * sizeof(float));
    if (dst->logits)
        memcpy(dst->logits, src->logits, (size_t)e->n_vocab * sizeof(float));
    if (!dst->logits || (src->ps && !dst->ps) || (src->vs && !dst->vs)) {
        eng_drop(dst);
        return eng_nomem(e, "a branch");
    }
    return COPSE_OK;
}

void eng_drop(s_branch *b)
{
    copse_seq_free(b->ps);
    copse_seq_free(b->vs);
    free(b->logits);
    memset(b, 0, sizeof *b);
    b->node = -1;
}

void eng_move(s_branch *dst, s_branch *src)
{
    *dst = *src;
    src->ps = src->vs = NULL;
    src->logits = NULL;
}

int eng_rollback(s_engine *e, s_branch *b, int node, const float *logits)
{
    const s_node *nd = &e->nodes[node];
    int rc = COPSE_OK;
    if (!e->naive) {
        rc = copse_seq_truncate(b->ps, nd->pos);
        if (!rc && b->vs)
            rc = copse_seq_truncate(b->vs, nd->vpos);
    }
    if (rc)
        return copse_fail(e->err, rc, "copse_solve: cannot roll a branch back to %d tokens", nd->pos);
    memcpy(b->logits, logits, (size_t)e->n_vocab * sizeof(float));
    b->node = node;
    return COPSE_OK;
}

int eng_next_attempt(s_engine *e, s_branch *const *br, int n)
{
    s_rows *r = &e->rows[0];
    r->n = 0;
    for (int i = 0; i < n; i++) {
        br[i]->state = copse_seq_len(br[i]->ps) + e->n_revise >= e->n_ctx;
        if (br[i]->state)
            continue;
        for (int j = 0; j < e->n_revise && !e->naive; j++)
            if (rows_push(r, br[i]->ps, e->revise[j], j == e->n_revise - 1 ? COPSE_WANT_LOGITS : 0, i))
                return eng_nomem(e, "a batch");
        if (e->v && !e->naive) {
            copse_seq_free(br[i]->vs);
            if (!(br[i]->vs = copse_seq_fork(e->root_v)))
                return eng_nomem(e, "a sequence");
        }
        br[i]->attempt++;
        br[i]->revised = 1;
    }
    int rc = r->n ? eng_decode(e, e->pc, r) : COPSE_OK;
    e->b.prompt_tokens += r->n;
    for (int j = 0; !rc && j < r->n; j++)
        if (r->want[j])
            memcpy(br[r->br[j]]->logits, eng_logits(e, j), (size_t)e->n_vocab * sizeof(float));
    return rc;
}
