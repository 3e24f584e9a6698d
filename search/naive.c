/*
** The naive baseline, as search-and-learn runs it: before each step, every
** branch's prompt and path are encoded from scratch, by the policy and by
** the verifier, in fresh sequences (still one batch per side). Only
** bench-search and the tests use it, to measure what sharing saves.
*/
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "error.h"

/* The tokens a node put in the policy's sequence. */
static int push_policy_tokens(s_rows *r, const s_engine *e, const s_node *nd, copse_seq *s, int br)
{
    int n = nd->n_tok - (nd->end == END_EOG);
    for (int j = 0; j < nd->n_pre; j++)
        if (rows_push(r, s, nd->pre[j], 0, br))
            return COPSE_E_NOMEM;
    for (int j = 0; j < n; j++)
        if (rows_push(r, s, nd->tok[j], 0, br))
            return COPSE_E_NOMEM;
    return COPSE_OK;
}

int eng_rebuild(s_engine *e, s_branch *const *br, int n)
{
    s_rows *r = &e->rows[0];
    int rc = COPSE_OK;
    for (int side = 0; side < 1 + (e->v != NULL) && !rc; side++) {
        r->n = 0;
        for (int i = 0; i < n && !rc; i++) {
            copse_seq **s = side ? &br[i]->vs : &br[i]->ps;
            copse_seq_free(*s);
            if (!(*s = eng_seq_new(e, side)))
                return eng_nomem(e, "a sequence");
            int len, start = r->n, *path = eng_path(e, br[i]->node, &len);
            if (!path)
                return eng_nomem(e, "a path");
            const int32_t *pr = side ? e->vprompt : e->prompt;
            for (int j = 0; j < (side ? e->n_vprompt : e->n_prompt) && !rc; j++)
                rc = rows_push(r, *s, pr[j], 0, i);
            for (int j = 0; j < len && !rc; j++) {
                const s_node *nd = &e->nodes[path[j]];
                if (!side)
                    rc = push_policy_tokens(r, e, nd, *s, i);
                else if (nd->attempt == br[i]->attempt && !br[i]->revised)
                    for (int t = 0; t < nd->n_vtok && !rc; t++)
                        rc = rows_push(r, *s, nd->vtok[t], 0, i);
            }
            for (int j = 0; j < (!side && br[i]->revised ? e->n_revise : 0) && !rc; j++)
                rc = rows_push(r, *s, e->revise[j], 0, i);
            free(path);
            if (rc)
                return eng_nomem(e, "a batch");
            r->want[r->n - 1] = side ? 0 : COPSE_WANT_LOGITS;
            if (!side)
                e->b.prompt_tokens += r->n - start;
        }
        if ((rc = eng_decode(e, side ? e->vc : e->pc, r)))
            return rc;
        for (int i = 0; !side && i < r->n; i++)
            if (r->want[i])
                memcpy(br[r->br[i]]->logits, eng_logits(e, i), (size_t)e->n_vocab * sizeof(float));
    }
    return rc;
}
