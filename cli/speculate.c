/*
** Generation after a prompt: plain, or speculative (copse run --draft).
**
** Speculative decoding: a draft model of the same vocabulary proposes k
** tokens, one at a time, each drawn from its distribution q (the sampler's
** truncations and temperature applied, as copse_sample_probs gives them);
** the target decodes its last chosen token and the k proposals as one
** batch, so its weights are read once for the k + 1 rows where a token at
** a time would read them k + 1 times (a single sequence's step is bound
** by memory bandwidth). Row by row, with its own distribution p, it keeps
** a proposal x with probability min(1, p(x) / q(x)); at the first it
** refuses, it draws from max(0, p - q) instead, and after k kept ones it
** draws from p: each token is then distributed as p, as without a draft
** (Leviathan et al. 2023, Chen et al. 2023). Both sequences are rolled
** back to what was kept. Greedy, p and q give one token probability 1:
** a proposal is kept when the target would choose it, and a batch row's
** logits are those of the same row decoded alone (int8 kernels: q8.h,
** attention.h), so greedy decoding chooses exactly the tokens plain
** greedy decoding does. Plain generation is the same loop with no
** proposals.
*/
#include <stdlib.h>
#include <string.h>
#include "cli.h"

/* The draft can propose tokens only if both models spell every token
** alike: the same ids, the same text, the same ends. */
static int same_vocab(const char *cmd, const copse_model *t, const copse_model *d, const char *path)
{
    int n = copse_n_vocab(t);
    if (copse_n_vocab(d) != n)
        return cli_error(cmd, "the draft model %s has a vocabulary of %d tokens, the target %d: "
                         "a draft needs the target's vocabulary", path, copse_n_vocab(d), n);
    if (copse_token_bos(d) != copse_token_bos(t) || copse_token_eos(d) != copse_token_eos(t))
        return cli_error(cmd, "the draft model %s has other BOS or EOS tokens than the target: "
                         "a draft needs the target's vocabulary", path);
    for (int i = 0; i < n; i++) {
        char a[256], b[256];
        int la = copse_token_piece(t, i, a, sizeof a), lb = copse_token_piece(d, i, b, sizeof b);
        if (la != lb || memcmp(a, b, (size_t)(la < (int)sizeof a ? la : (int)sizeof a))
            || copse_token_is_eog(t, i) != copse_token_is_eog(d, i))
            return cli_error(cmd, "token %d of the draft model %s is not the target's: "
                             "a draft needs the target's vocabulary", i, path);
    }
    return 0;
}

int cli_draft_open(const char *cmd, const cli_model_opts *o, const char *path, const copse_model *target,
                   int n_ctx, const copse_sampler_params *sp, cli_draft *d)
{
    cli_model_opts dop = *o;
    dop.model = path;
    dop.n_ctx = n_ctx;   /* as long as the target's: it follows the target's sequence */
    if (cli_open_model(cmd, &dop, 0, &d->model, &d->ctx) || same_vocab(cmd, target, d->model, path))
        return 1;
    /* the draft's draws must not repeat the target's: a stream of its own */
    copse_sampler_params dsp = *sp;
    dsp.seed = ~sp->seed;
    size_t n = (size_t)copse_n_vocab(target);
    d->seq = copse_seq_new(d->ctx);
    d->smp = copse_sampler_new(&dsp);
    d->q = malloc((size_t)d->k * n * sizeof *d->q);
    d->p = malloc(n * sizeof *d->p);
    d->rest = malloc(n * sizeof *d->rest);
    if (!d->seq || !d->smp || !d->q || !d->p || !d->rest)
        return cli_error(cmd, "out of memory");
    return 0;
}

void cli_draft_close(cli_draft *d)
{
    free(d->q);
    free(d->p);
    free(d->rest);
    copse_sampler_free(d->smp);
    copse_seq_free(d->seq);
    copse_ctx_free(d->ctx);
    copse_model_free(d->model);
}

/* What a generation writes to and stops on. */
typedef struct gen_out {
    const copse_model *m;
    int32_t *tok;
    int      n, max;
    int     *hit_eog;
    cli_utf8_out *so;
} gen_out;

/* Add token t and stream its text; whether generation goes on after it
** (not after an end-of-generation token or the last one asked for). */
static int take(gen_out *g, int32_t t)
{
    g->tok[g->n++] = t;
    if (copse_token_is_eog(g->m, t))
        return !(*g->hit_eog = 1);
    char piece[256];
    int pl = copse_token_piece(g->m, t, piece, sizeof piece);
    if (g->so && pl > 0)
        cli_utf8_put(g->so, piece, pl < (int)sizeof piece ? pl : (int)sizeof piece - 1);
    return g->n < g->max;
}

/*
** Up to k proposals after the tokens so far (the draft's sequence holds
** the prompt, of base tokens, and some of g's tokens: it reads the rest),
** into prop[1..], each drawn from its distribution, kept in d->q; stops
** early after an end-of-generation token, since the target would stop
** there. Returns the count, or -1 after printing the error.
*/
static int propose(const char *cmd, cli_draft *d, const gen_out *g, int base, int32_t *prop, int k)
{
    copse_error err;
    int have = copse_seq_len(d->seq) - base;
    if (copse_decode_tokens(d->ctx, d->seq, g->tok + have, g->n - have, 0, &err))
        return cli_error(cmd, "the draft model: %s", err.msg), -1;
    const float *logits = copse_get_logits(d->ctx, g->n - have - 1);
    int n = copse_n_vocab(d->model);
    for (int i = 1;; i++) {
        float *q = d->q + (size_t)(i - 1) * (size_t)n;
        copse_sample_probs(d->smp, logits, n, q);
        prop[i] = copse_sample_from(d->smp, q, n);
        if (i == k || copse_token_is_eog(d->model, prop[i]))
            return i;
        if (copse_decode_tokens(d->ctx, d->seq, &prop[i], 1, 0, &err))
            return cli_error(cmd, "the draft model: %s", err.msg), -1;
        logits = copse_get_logits(d->ctx, 0);
    }
}

/* The target's token where its logits are these and the draft proposed x
** from q: x with probability min(1, p(x) / q(x)), else a draw from
** max(0, p - q) (or from p, should rounding leave nothing there). */
static int32_t verify(cli_draft *d, copse_sampler *smp, const float *logits, int n, int32_t x, const float *q)
{
    float *p = d->p;
    copse_sample_probs(smp, logits, n, p);
    float keep[2] = { p[x] < q[x] ? p[x] / q[x] : 1 };
    keep[1] = 1 - keep[0];
    if (copse_sample_from(smp, keep, 2) == 0)
        return x;
    for (int i = 0; i < n; i++)
        d->rest[i] = p[i] > q[i] ? p[i] - q[i] : 0;
    int32_t t = copse_sample_from(smp, d->rest, n);
    return t >= 0 ? t : copse_sample_from(smp, p, n);
}

int cli_generate(const char *cmd, copse_ctx *ctx, copse_seq *seq, copse_sampler *smp, const copse_model *m,
                 const float *logits, int n_predict, cli_draft *d, int32_t *gen, int *hit_eog, cli_utf8_out *so)
{
    gen_out g = { .m = m, .tok = gen, .max = n_predict, .hit_eog = hit_eog, .so = so };
    int n_ctx = copse_ctx_n_ctx(ctx), base = copse_seq_len(seq);
    *hit_eog = 0;
    int n = copse_n_vocab(m);
    if (n_predict <= 0 || base >= n_ctx || !take(&g, copse_sample(smp, logits, n)))
        return g.n;
    for (;;) {
        /* the sequence holds every token but the last (len < n_ctx); a
        ** round decodes the last and k proposals, no more than the context
        ** holds, and samples up to k + 1 tokens, no more than are asked for */
        int len = copse_seq_len(seq), k = d ? d->k : 0;
        k = k < n_predict - g.n - 1 ? k : n_predict - g.n - 1;
        k = k < n_ctx - len - 1 ? k : n_ctx - len - 1;
        int32_t batch[CLI_DRAFT_MAX + 1] = { gen[g.n - 1] };
        if (k && (k = propose(cmd, d, &g, base, batch, k)) < 0)
            return -1;
        copse_error err;
        if (copse_decode_tokens(ctx, seq, batch, k + 1, 1, &err))
            return cli_error(cmd, "%s", err.msg), -1;
        /* row a: the target's token after the last one and a proposals */
        int a = 0, go = 1;
        while (go && len + 1 + a < n_ctx) {
            const float *row = copse_get_logits(ctx, a);
            int32_t t = a < k ? verify(d, smp, row, n, batch[a + 1], d->q + (size_t)a * (size_t)n)
                              : copse_sample(smp, row, n);
            go = take(&g, t);
            if (a == k || t != batch[a + 1])
                break;
            a++;
        }
        /* both keep what plain generation would have decoded: every token
        ** but the last, or all of them when the context is full */
        int full = go && len + 1 + a >= n_ctx, keep = base + g.n - !full;
        copse_seq_truncate(seq, keep);
        if (d) {
            if (copse_seq_len(d->seq) > keep)
                copse_seq_truncate(d->seq, keep);
            d->drafted += k;
            d->accepted += a;
            d->passes++;
        }
        if (!go || full)
            return g.n;
    }
}
