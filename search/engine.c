/*
** The search engine: contexts and prompts, branches, and growing any set of
** branches by one step in shared batches (see search.h).
**
** eng_step samples every branch's next token, then decodes all the tokens
** that need a forward pass in one copse_decode call, and repeats until
** every branch has ended its step. A branch ends its step on the separator,
** at max_step_tokens, or when its path ends. The token that ends a step is
** decoded in the same batch as the others, so the branch holds the logits
** its children will sample from. Then the new steps go to the verifier in
** one batch: each branch's verifier sequence grows by its step only.
*/
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "search.h"
#include "model.h"
#include "error.h"

enum { GEN, STEP_END, DONE };    /* s_branch.state during eng_step */

double eng_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int nomem(s_engine *e, const char *what)
{
    return copse_fail(e->err, COPSE_E_NOMEM, "copse_solve: out of memory for %s", what);
}

/* --------------------------------------------------------------- rows */

static int rows_push(s_rows *r, copse_seq *seq, int32_t tok, uint8_t want, int br)
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        copse_seq **s = realloc(r->seq, (size_t)cap * sizeof *s);
        if (s)
            r->seq = s;
        int32_t *t = realloc(r->tok, (size_t)cap * sizeof *t);
        if (t)
            r->tok = t;
        uint8_t *w = realloc(r->want, (size_t)cap);
        if (w)
            r->want = w;
        int *b = realloc(r->br, (size_t)cap * sizeof *b);
        if (b)
            r->br = b;
        if (!s || !t || !w || !b)
            return COPSE_E_NOMEM;
        r->cap = cap;
    }
    r->seq[r->n] = seq;
    r->tok[r->n] = tok;
    r->want[r->n] = want;
    r->br[r->n++] = br;
    return COPSE_OK;
}

static void rows_free(s_rows *r)
{
    free(r->seq);
    free(r->tok);
    free(r->want);
    free(r->br);
}

/*
** Decode r in ctx, counting what it costs: 2 x params per position plus
** attention over every earlier position (4 x layers x heads x head size
** each, for the scores and the weighted sum). A sequence's entries are
** consecutive in every batch the engine makes.
*/
static int eng_decode(s_engine *e, copse_ctx *ctx, const s_rows *r)
{
    copse_model_info mi;
    copse_model_get_info(ctx == e->pc ? e->pm : e->v->model, &mi);
    double positions = 0;
    for (int i = 0, off = 0; i < r->n; i++) {
        off = i > 0 && r->seq[i] == r->seq[i - 1] ? off + 1 : 0;
        positions += copse_seq_len(r->seq[i]) + off + 1;
    }
    copse_batch b = { r->n, r->seq, r->tok, r->want };
    int rc = copse_decode(ctx, &b, e->err);
    if (rc)
        return rc;
    e->b.flops += 2.0 * (double)mi.n_params * r->n
                + 4.0 * mi.n_layer * mi.n_head * mi.head_dim * positions;
    if (ctx == e->pc)
        e->b.policy_rows += r->n;
    else
        e->b.verifier_tokens += r->n;
    return COPSE_OK;
}

/* Decode n tokens into the root sequence seq of ctx. */
static int prefill(s_engine *e, copse_ctx *ctx, copse_seq *seq, const int32_t *tok, int n)
{
    s_rows *r = &e->rows[0];
    r->n = 0;
    for (int i = 0; i < n; i++)
        if (rows_push(r, seq, tok[i], i == n - 1 ? COPSE_WANT_LOGITS : 0, 0))
            return nomem(e, "the prompt");
    return eng_decode(e, ctx, r);
}

/* ------------------------------------------------------------ prompts */

/* Tokenize text into a new array; *n its length. */
static int tokenize(s_engine *e, const copse_model *m, const char *text, unsigned flags,
                    int32_t **out, int *n)
{
    size_t len = strlen(text);
    int need = copse_tokenize(m, text, len, flags, NULL, 0);
    *out = NULL;
    *n = 0;
    if (need < 0)
        return copse_fail(e->err, -need, "copse_solve: cannot tokenize '%.40s'", text);
    if (!(*out = malloc(((size_t)need + 1) * sizeof **out)))
        return nomem(e, "tokens");
    *n = copse_tokenize(m, text, len, flags, *out, need);
    return COPSE_OK;
}

static int set_separator(s_engine *e)
{
    const char *s = e->p.step_sep;
    size_t len = s ? strlen(s) : 0;
    gguf_str g;
    if (!s && !gguf_get_str(model_gguf(e->pm), "copse.step_separator", &g, NULL) && g.len) {
        s = g.ptr;
        len = g.len;
    }
    if (!s) {
        s = "\n\n";
        len = 2;
    }
    if (!len)
        return copse_fail(e->err, COPSE_E_ARG, "copse_solve: the step separator is empty");
    if (!(e->sep = malloc(len + 1)))
        return nomem(e, "the separator");
    memcpy(e->sep, s, len);
    e->sep[len] = '\0';
    e->sep_len = len;
    return COPSE_OK;
}

/* The prompt, and what goes between revision attempts: by default a blank
** line and the prompt again (without BOS). */
static int policy_prompts(s_engine *e, const char *question)
{
    chat_format f;
    char *text = NULL, *again = NULL;
    int rc = chat_format_for_gguf(model_gguf(e->pm), e->p.template_name, &f, e->err);
    if (!rc)
        rc = chat_render(f, e->p.system, question, e->p.prefix, &text, e->err);
    if (!rc)
        rc = tokenize(e, e->pm, text, COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL,
                      &e->prompt, &e->n_prompt);
    if (!rc && !e->p.revise_prompt && !(again = malloc(strlen(text) + 3)))
        rc = nomem(e, "the revision prompt");
    if (!rc)
        rc = tokenize(e, e->pm, e->p.revise_prompt ? e->p.revise_prompt : strcat(strcpy(again, "\n\n"), text),
                      COPSE_TOK_PARSE_SPECIAL, &e->revise, &e->n_revise);
    free(text);
    free(again);
    if (!rc && e->n_prompt == 0)
        rc = copse_fail(e->err, COPSE_E_ARG, "copse_solve: the prompt is empty");
    return rc;
}

/* Verifier and policy read the same ids when their vocabularies agree. */
static int same_vocab(const copse_model *a, const copse_model *b)
{
    if (a == b)
        return 1;
    int n = copse_n_vocab(a);
    if (n != copse_n_vocab(b))
        return 0;
    char pa[256], pb[256];
    for (int32_t t = 0; t < n; t++) {
        int la = copse_token_piece(a, t, pa, sizeof pa), lb = copse_token_piece(b, t, pb, sizeof pb);
        if (la != lb || la < 0 || la > (int)sizeof pa || memcmp(pa, pb, (size_t)la))
            return 0;
    }
    return 1;
}

static int make_ctx(s_engine *e, copse_model *m, int n_ctx, int max_live, copse_ctx **out)
{
    copse_ctx_params cp = copse_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = e->p.n_threads;
    cp.kv_bytes = e->p.kv_bytes;
    int64_t tokens = (int64_t)(max_live + 1) * n_ctx;
    cp.kv_tokens = tokens > INT_MAX ? INT_MAX : (int)tokens;
    return copse_ctx_new(m, &cp, out, e->err);
}

static int open_verifier(s_engine *e, const char *question, int max_live)
{
    copse_verifier *v = e->v;
    char *text = NULL;
    int32_t *extra;
    int n_tag = 0, n_join = 0, rc = chat_render(v->fmt, e->p.system, question, e->p.prefix, &text, e->err);
    if (!rc)
        rc = tokenize(e, v->model, text, COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL,
                      &e->vprompt, &e->n_vprompt);
    free(text);
    if (!rc && !(rc = tokenize(e, v->model, v->tag, COPSE_TOK_PARSE_SPECIAL, &extra, &n_tag)))
        free(extra);
    if (!rc && v->join && !(rc = tokenize(e, v->model, v->join, COPSE_TOK_PARSE_SPECIAL, &extra, &n_join)))
        free(extra);
    if (rc)
        return rc;
    if (e->n_vprompt == 0)
        return copse_fail(e->err, COPSE_E_ARG, "copse_solve: the verifier's prompt is empty");
    /* an attempt in the verifier's tokens can be longer than in the policy's */
    int64_t vn = (int64_t)e->n_vprompt + 2 * (int64_t)e->n_ctx +
                 (int64_t)e->p.max_steps * (n_tag + n_join + (int)e->sep_len) + 1;
    e->vn_ctx = vn > INT_MAX / 4 ? INT_MAX / 4 : (int)vn;
    e->same_vocab = same_vocab(e->pm, v->model) && !*v->tag;
    if (!(e->scratch = malloc((size_t)v->n_embd * sizeof *e->scratch)))
        return nomem(e, "the verifier");
    if ((rc = make_ctx(e, v->model, e->vn_ctx, max_live, &e->vc)))
        return rc;
    if (!(e->root_v = copse_seq_new(e->vc)))
        return nomem(e, "a sequence");
    rc = prefill(e, e->vc, e->root_v, e->vprompt, e->n_vprompt);
    e->b.verifier_prompt_tokens = e->n_vprompt;
    return rc;
}

int eng_open(s_engine *e, copse_model *policy, copse_verifier *v, const char *question,
             const copse_solve_params *p, int max_live, copse_error *err)
{
    memset(e, 0, sizeof *e);
    e->pm = policy;
    e->v = v;
    e->p = *p;
    e->err = err;
    e->t0 = eng_now();
    e->n_vocab = copse_n_vocab(policy);
    e->n_ctx = p->n_ctx ? p->n_ctx : policy->info.n_ctx_train;
    copse_sampler_params gp = p->sampler;
    gp.temp = 0;
    int rc;
    if ((rc = set_separator(e)) || (rc = policy_prompts(e, question)))
        return rc;
    if (!(e->prefix = strdup(p->prefix ? p->prefix : "")))
        return nomem(e, "the prefix");
    if (e->n_prompt >= e->n_ctx)
        return copse_fail(err, COPSE_E_CTX_FULL, "copse_solve: the prompt has %d tokens; the context "
                          "holds %d", e->n_prompt, e->n_ctx);
    if (!(e->smp = copse_sampler_new(&p->sampler)) || !(e->greedy = copse_sampler_new(&gp)) ||
        !(e->root_logits = malloc((size_t)e->n_vocab * sizeof(float))))
        return nomem(e, "the sampler");
    if ((rc = make_ctx(e, policy, e->n_ctx, max_live, &e->pc)))
        return rc;
    if (!(e->root_p = copse_seq_new(e->pc)))
        return nomem(e, "a sequence");
    if ((rc = prefill(e, e->pc, e->root_p, e->prompt, e->n_prompt)))
        return rc;
    e->b.prompt_tokens = e->n_prompt;
    memcpy(e->root_logits, copse_get_logits(e->pc, e->n_prompt - 1), (size_t)e->n_vocab * sizeof(float));
    return v ? open_verifier(e, question, max_live) : COPSE_OK;
}

static uint64_t kv_peak(const copse_ctx *ctx)
{
    copse_kv_stats st;
    if (!ctx)
        return 0;
    copse_kv_stats_get(ctx, &st);
    return st.blocks_total ? (uint64_t)st.peak_blocks_used * (st.bytes_total / (uint64_t)st.blocks_total) : 0;
}

void eng_budget(s_engine *e)
{
    e->b.wall_s = eng_now() - e->t0;
    e->b.kv_peak_bytes = kv_peak(e->pc) + kv_peak(e->vc);
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

void eng_close(s_engine *e)
{
    copse_seq_free(e->root_p);
    copse_seq_free(e->root_v);
    copse_ctx_free(e->pc);
    copse_ctx_free(e->vc);
    copse_sampler_free(e->smp);
    copse_sampler_free(e->greedy);
    nodes_free(e->nodes, e->n_nodes);
    rows_free(&e->rows[0]);
    rows_free(&e->rows[1]);
    free(e->sep);
    free(e->prompt);
    free(e->vprompt);
    free(e->revise);
    free(e->prefix);
    free(e->root_logits);
    free(e->scratch);
    memset(e, 0, sizeof *e);
}

int eng_stopped(const s_engine *e)
{
    return e->b.stopped;
}

/* ---------------------------------------------------------- branches */

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
        return nomem(e, "a branch");
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
        return nomem(e, "branches");
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
        return nomem(e, "a branch");
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

/* -------------------------------------------------------------- nodes */

static int new_node(s_engine *e, const s_branch *b)
{
    if (e->n_nodes == e->cap_nodes) {
        int cap = e->cap_nodes ? 2 * e->cap_nodes : 64;
        s_node *n = realloc(e->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return -nomem(e, "a step");
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
        return -nomem(e, "a step");
    nd->cap_text = 1;
    if (b->revised) {
        if (!(nd->pre = malloc((size_t)e->n_revise * sizeof *nd->pre))) {
            free(nd->text);
            return -nomem(e, "a step");
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
        return nomem(e, "a step");
    nd->cap_tok = (int)cap;
    nd->tok[nd->n_tok++] = t;
    if (eog)
        return COPSE_OK;
    char buf[64];
    int n = copse_token_piece(e->pm, t, buf, sizeof buf);
    if (n < 0)
        n = 0;
    if (grow_bytes((void **)&nd->text, &nd->cap_text, nd->len + (size_t)n + 1, 1))
        return nomem(e, "a step");
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

/* ----------------------------------------------------------- stepping */

/* The nodes of b's path from the first step to node, in order; malloc'd. */
static int *path_of(const s_engine *e, int node, int *n)
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

/*
** The naive baseline, as search-and-learn runs it: before each step, every
** branch's prompt and path are encoded from scratch, by the policy and by
** the verifier, in fresh sequences (still one batch per side).
*/
static int rebuild(s_engine *e, s_branch *const *br, int n)
{
    s_rows *r = &e->rows[0];
    int rc = COPSE_OK;
    for (int side = 0; side < 1 + (e->v != NULL) && !rc; side++) {
        r->n = 0;
        for (int i = 0; i < n && !rc; i++) {
            copse_seq **s = side ? &br[i]->vs : &br[i]->ps;
            copse_seq_free(*s);
            if (!(*s = copse_seq_new(side ? e->vc : e->pc)))
                return nomem(e, "a sequence");
            int len, start = r->n, *path = path_of(e, br[i]->node, &len);
            if (!path)
                return nomem(e, "a path");
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
                return nomem(e, "a batch");
            r->want[r->n - 1] = side ? 0 : COPSE_WANT_LOGITS;
            if (!side)
                e->b.prompt_tokens += r->n - start;
        }
        if ((rc = eng_decode(e, side ? e->vc : e->pc, r)))
            return rc;
        for (int i = 0; !side && i < r->n; i++)
            if (r->want[i])
                memcpy(br[r->br[i]]->logits, copse_get_logits(e->pc, i), (size_t)e->n_vocab * sizeof(float));
    }
    return rc;
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
    return rows_push(r, b->ps, t, COPSE_WANT_LOGITS, i) ? nomem(e, "a batch") : COPSE_OK;
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
            const float *logits = copse_get_logits(e->pc, j);
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
            return nomem(e, "verifier tokens");
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
        return nomem(e, "verifier tokens");
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
            return nomem(e, "a batch");
        e->b.lookahead_verifier_tokens += e->rollout ? nd->n_vtok : 0;
    }
    if (rc || !r->n || (rc = eng_decode(e, e->vc, r)))
        return rc;
    for (int j = 0; j < r->n; j++)
        if (r->want[j])
            e->nodes[br[r->br[j]]->node].score = verifier_score(e->v, e->vc, j, e->scratch);
    return COPSE_OK;
}

int eng_step(s_engine *e, s_branch *const *br, int n, int greedy)
{
    int rc = e->naive && n ? rebuild(e, br, n) : COPSE_OK;
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
        return nomem(e, "branches");
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
                return nomem(e, "a batch");
        if (e->v && !e->naive) {
            copse_seq_free(br[i]->vs);
            if (!(br[i]->vs = copse_seq_fork(e->root_v)))
                return nomem(e, "a sequence");
        }
        br[i]->attempt++;
        br[i]->revised = 1;
    }
    int rc = r->n ? eng_decode(e, e->pc, r) : COPSE_OK;
    e->b.prompt_tokens += r->n;
    for (int j = 0; !rc && j < r->n; j++)
        if (r->want[j])
            memcpy(br[r->br[j]]->logits, copse_get_logits(e->pc, j), (size_t)e->n_vocab * sizeof(float));
    return rc;
}

/* ------------------------------------------------------------ helpers */

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
