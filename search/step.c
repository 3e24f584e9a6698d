/*
** Growing branches by one step each (eng_step).
**
** Every branch samples its next token; all the tokens that need a forward
** pass go into one copse_decode call; repeat until every branch has ended
** its step (on the separator, at max_step_tokens, or when its path ends).
** The token that ends a step is decoded in the same batch as the others,
** so the branch holds the logits its children will sample from. Then the
** new steps go to the verifier in one batch: each branch's verifier
** sequence grows by its step only, and the score is read at its end.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "error.h"

enum { GEN, STEP_END, DONE };    /* s_branch.state during eng_step */

static int new_node(s_engine *e, const s_branch *b)
{
    if (e->n_nodes == e->cap_nodes) {
        int cap = e->cap_nodes ? 2 * e->cap_nodes : 64;
        s_node *n = realloc(e->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return -eng_nomem(e, "a step");
        e->nodes = n;
        e->cap_nodes = cap;
    }
    s_node *nd = &e->nodes[e->n_nodes];
    memset(nd, 0, sizeof *nd);
    const s_node *par = b->node >= 0 ? &e->nodes[b->node] : NULL;
    int same = par && par->attempt == b->attempt;
    nd->parent = b->node;
    nd->group = b->group;
    nd->attempt = b->attempt;
    nd->round = same ? par->round + 1 : 0;
    nd->n_path_tok = same ? par->n_path_tok : 0;
    nd->score = nd->path_score = nd->select_score = NAN;
    nd->rollout = (uint8_t)e->rollout;
    nd->probe = (uint8_t)e->probe;
    if (!(nd->text = calloc(1, 1)))
        return -eng_nomem(e, "a step");
    nd->cap_text = 1;
    if (b->revised) {
        if (!(nd->pre = malloc((size_t)e->n_revise * sizeof *nd->pre))) {
            free(nd->text);
            return -eng_nomem(e, "a step");
        }
        memcpy(nd->pre, e->revise, (size_t)e->n_revise * sizeof *nd->pre);
        nd->n_pre = e->n_revise;
    }
    return e->n_nodes++;
}

static int grow_bytes(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return COPSE_OK;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return COPSE_E_NOMEM;
    *p = q;
    *cap = c;
    return COPSE_OK;
}

/* Add token t to nd: its id, and its text unless it ends generation. */
static int node_add(s_engine *e, s_node *nd, int32_t t, int eog)
{
    size_t cap = (size_t)nd->cap_tok;
    if (grow_bytes((void **)&nd->tok, &cap, (size_t)nd->n_tok + 1, sizeof *nd->tok))
        return eng_nomem(e, "a step");
    nd->cap_tok = (int)cap;
    nd->tok[nd->n_tok++] = t;
    if (eog)
        return COPSE_OK;
    char buf[64];
    int n = copse_token_piece(e->pm, t, buf, sizeof buf);
    if (n < 0)
        n = 0;
    if (grow_bytes((void **)&nd->text, &nd->cap_text, nd->len + (size_t)n + 1, 1))
        return eng_nomem(e, "a step");
    if (n < (int)sizeof buf)
        memcpy(nd->text + nd->len, buf, (size_t)n);
    else
        copse_token_piece(e->pm, t, nd->text + nd->len, n + 1);
    nd->len += (size_t)n;
    nd->text[nd->len] = '\0';
    return COPSE_OK;
}

/* The separator lies in the text added since the last old_len bytes. */
static int has_sep(const s_engine *e, const s_node *nd, size_t old_len)
{
    size_t from = old_len >= e->sep_len ? old_len - e->sep_len + 1 : 0;
    return nd->len - from >= e->sep_len && memmem(nd->text + from, nd->len - from, e->sep, e->sep_len) != NULL;
}

/* Branch i took token t: record it and, unless its path ended, queue the
** token for decoding in r. */
static int accept(s_engine *e, s_branch *b, int i, int32_t t, s_rows *r)
{
    s_node *nd = &e->nodes[b->node];
    int eog = copse_token_is_eog(e->pm, t);
    size_t old = nd->len;
    if (node_add(e, nd, t, eog))
        return e->err->code;
    e->b.policy_tokens++;
    e->b.lookahead_tokens += e->rollout;
    e->b.probe_tokens += e->probe;
    if (e->p.budget_tokens && e->b.policy_tokens >= e->p.budget_tokens)
        e->b.stopped = 1;
    if (eog) {
        nd->end = END_EOG;
        b->state = DONE;
        return COPSE_OK;
    }
    nd->n_path_tok++;
    if (copse_seq_len(b->ps) >= e->n_ctx) {
        nd->end = END_CUT;     /* no room to decode it */
        b->state = DONE;
        return COPSE_OK;
    }
    if (nd->n_path_tok >= e->p.max_tokens || e->b.stopped)
        nd->end = END_CUT;
    if (nd->end || has_sep(e, nd, old) || nd->n_tok >= e->p.max_step_tokens)
        b->state = STEP_END;
    return rows_push(r, b->ps, t, COPSE_WANT_LOGITS, i) ? eng_nomem(e, "a batch") : COPSE_OK;
}

/* Branch b samples its next token from logits, unless the budget ran out:
** then its path is cut here. */
static int sample(s_engine *e, s_branch *b, int i, const float *logits, copse_sampler *smp, s_rows *r)
{
    if (!e->b.stopped)
        return accept(e, b, i, copse_sample(smp, logits, e->n_vocab), r);
    e->nodes[b->node].end = END_CUT;
    if (logits != b->logits)
        memcpy(b->logits, logits, (size_t)e->n_vocab * sizeof(float));
    b->state = DONE;
    return COPSE_OK;
}

/* Sample every branch's step, one batch per token. */
static int generate(s_engine *e, s_branch *const *br, int n, int greedy)
{
    copse_sampler *smp = greedy ? e->greedy : e->smp;
    s_rows *cur = &e->rows[0], *next = &e->rows[1];
    int rc = COPSE_OK;
    next->n = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = sample(e, br[i], i, br[i]->logits, smp, next);
    while (!rc && next->n) {
        s_rows *t = cur;
        cur = next;
        next = t;
        next->n = 0;
        if ((rc = eng_decode(e, e->pc, cur)))
            break;
        if (e->p.deadline > 0 && eng_now() - e->t0 >= e->p.deadline)
            e->b.stopped = 1;
        for (int j = 0; j < cur->n && !rc; j++) {
            s_branch *b = br[cur->br[j]];
            const float *logits = eng_logits(e, j);
            if (b->state == STEP_END) {
                memcpy(b->logits, logits, (size_t)e->n_vocab * sizeof(float));
                b->state = DONE;
            } else
                rc = sample(e, b, cur->br[j], logits, smp, next);
        }
    }
    return rc;
}

/* The verifier's tokens for step nd: the policy's own ids, or its text
** (without the separator, between join and tag when there is a tag). */
static int verifier_tokens(s_engine *e, s_node *nd)
{
    const copse_verifier *v = e->v;
    int n_text = nd->n_tok - (nd->end == END_EOG);
    if (e->same_vocab) {
        if (!n_text)
            return COPSE_OK;
        if (!(nd->vtok = malloc((size_t)n_text * sizeof *nd->vtok)))
            return eng_nomem(e, "verifier tokens");
        memcpy(nd->vtok, nd->tok, (size_t)n_text * sizeof *nd->vtok);
        nd->n_vtok = n_text;
        return COPSE_OK;
    }
    size_t len = nd->len;
    if (*v->tag && len >= e->sep_len && !memcmp(nd->text + len - e->sep_len, e->sep, e->sep_len))
        len -= e->sep_len;
    const char *join = !*v->tag || nd->round == 0 ? "" : v->join ? v->join : e->sep;
    size_t lj = strlen(join), lt = strlen(v->tag);
    /* three pieces tokenized on their own: join and tag may hold control tokens */
    const char *piece[3] = { join, nd->text, v->tag };
    size_t plen[3] = { lj, len, lt };
    unsigned flags[3] = { COPSE_TOK_PARSE_SPECIAL, 0, COPSE_TOK_PARSE_SPECIAL };
    int total = 0, need[3];
    for (int k = 0; k < 3; k++) {
        need[k] = plen[k] ? copse_tokenize(v->model, piece[k], plen[k], flags[k], NULL, 0) : 0;
        if (need[k] < 0)
            return copse_fail(e->err, -need[k], "copse_solve: the verifier cannot tokenize step '%.40s'",
                              nd->text);
        total += need[k];
    }
    if (total && !(nd->vtok = malloc((size_t)total * sizeof *nd->vtok)))
        return eng_nomem(e, "verifier tokens");
    for (int k = 0; k < 3; k++)
        if (need[k])
            nd->n_vtok += copse_tokenize(v->model, piece[k], plen[k], flags[k], nd->vtok + nd->n_vtok, need[k]);
    return COPSE_OK;
}

/* Score the branches' new steps in one verifier batch. */
static int score(s_engine *e, s_branch *const *br, int n)
{
    s_rows *r = &e->rows[0];
    int rc = COPSE_OK;
    r->n = 0;
    for (int i = 0; i < n && !rc; i++) {
        s_node *nd = &e->nodes[br[i]->node];
        if ((rc = verifier_tokens(e, nd)) || !nd->n_vtok)
            continue;
        if (copse_seq_len(br[i]->vs) + nd->n_vtok > e->vn_ctx) {
            nd->n_vtok = 0;
            nd->end = END_CUT;
            continue;
        }
        for (int j = 0; j < nd->n_vtok && !rc; j++)
            rc = rows_push(r, br[i]->vs, nd->vtok[j], j == nd->n_vtok - 1 ? verifier_want(e->v) : 0, i);
        if (rc)
            return eng_nomem(e, "a batch");
        e->b.lookahead_verifier_tokens += e->rollout ? nd->n_vtok : 0;
    }
    if (rc || !r->n || (rc = eng_decode(e, e->vc, r)))
        return rc;
    for (int j = 0; j < r->n; j++)
        if (r->want[j])
            e->nodes[br[r->br[j]]->node].score = verifier_score(e->v, e->vc, e->row0 + j, e->scratch);
    return COPSE_OK;
}

int eng_step(s_engine *e, s_branch *const *br, int n, int greedy)
{
    int rc = e->naive && n ? eng_rebuild(e, br, n) : COPSE_OK;
    for (int i = 0; i < n && !rc; i++) {
        int node = new_node(e, br[i]);
        if (node < 0)
            return -node;
        br[i]->node = node;
        br[i]->revised = 0;
        br[i]->state = GEN;
    }
    if (rc || (rc = generate(e, br, n, greedy)) || (e->v && (rc = score(e, br, n))))
        return rc;
    for (int i = 0; i < n; i++) {
        s_node *nd = &e->nodes[br[i]->node];
        nd->pos = copse_seq_len(br[i]->ps);
        nd->vpos = copse_seq_len(br[i]->vs);
        nd->path_score = nd->select_score = eng_path_score(e, br[i]->node);
        if (nd->end == END_NONE && (nd->round + 1 >= e->p.max_steps || e->b.stopped))
            nd->end = END_CUT;
        br[i]->state = 0;
    }
    return COPSE_OK;
}

int eng_run(s_engine *e, s_branch *const *br, int n)
{
    s_branch **live = malloc((size_t)(n ? n : 1) * sizeof *live);
    if (!live)
        return eng_nomem(e, "branches");
    int rc = COPSE_OK;
    for (;;) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (br[i]->node < 0 || e->nodes[br[i]->node].end == END_NONE)
                live[k++] = br[i];
        if (!k || (rc = eng_step(e, live, k, 0)))
            break;
    }
    free(live);
    return rc;
}
