/*
** copse perplexity: the same measure as llama.cpp's perplexity tool, so the
** numbers compare across runtimes and quantizations. The text is cut into
** non-overlapping windows of --ctx tokens; each window starts with BOS (when
** the model uses one) and only its second half is scored, so every scored
** token has at least ctx/2 tokens of context.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *CMD = "perplexity";

static void help(void)
{
    printf("usage: copse perplexity -m MODEL.gguf -f TEXT.txt [options]\n\n"
           "Perplexity of a text: windows of --ctx tokens, the second half of each scored.\n\n"
           CLI_MODEL_OPTS_HELP
           "  -f, --file FILE    the text (needs at least 2 x ctx tokens)\n"
           "  --chunks N         score at most N windows (default: all)\n"
           "  --json             print the result as one JSON object\n"
           "  -h, --help         this help\n"
           "\n--ctx defaults to 512 here, not the model's length.\n");
}

/* -log softmax(logits)[target], computed stably in double. */
static double nll(const float *logits, int n, int32_t target)
{
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > mx)
            mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - mx);
    return log(sum) - ((double)logits[target] - mx);
}

int cmd_perplexity(int argc, char **argv)
{
    cli_model_opts mo = { .n_ctx = 512 };
    const char *file = NULL;
    long max_chunks = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_model_opt(CMD, argc, argv, &i, &mo);
        if (r < 0)
            return 2;
        if (r)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (i + 1 >= argc)
            return cli_usage_error(CMD, "unknown option or missing value: %s", a);
        if (!strcmp(a, "-f") || !strcmp(a, "--file"))
            file = argv[++i];
        else if (!strcmp(a, "--chunks")) {
            if (cli_parse_int(CMD, a, argv[++i], 1, 1 << 24, &max_chunks))
                return 2;
        } else
            return cli_usage_error(CMD, "unknown option: %s", a);
    }
    if (!file)
        return cli_usage_error(CMD, "no text given (-f FILE)");
    if (mo.n_ctx < 8)
        return cli_usage_error(CMD, "--ctx must be at least 8 here");

    size_t len;
    char *text = cli_read_file(file, &len);
    if (!text)
        return cli_error(CMD, "cannot read %s", file);
    copse_model *model;
    copse_ctx *ctx;
    if (cli_open_model(CMD, &mo, 0, &model, &ctx)) {
        free(text);
        return 1;
    }
    int rc = 1;
    int32_t *tok = NULL;
    uint8_t *want = NULL;
    copse_seq **sv = NULL;
    int n_ctx = (int)mo.n_ctx, n_vocab = copse_n_vocab(model);
    int n_tok = cli_tokenize(CMD, model, text, len, 0, &tok);
    if (n_tok < 0)
        goto done;
    if (copse_ctx_n_ctx(ctx) < n_ctx) {
        cli_error(CMD, "--ctx %d is more than the context holds (%d)", n_ctx, copse_ctx_n_ctx(ctx));
        goto done;
    }
    if (n_tok < 2 * n_ctx) {
        cli_error(CMD, "the text has %d tokens; at least 2 x ctx = %d are needed", n_tok, 2 * n_ctx);
        goto done;
    }
    int n_chunks = n_tok / n_ctx;
    if (max_chunks && n_chunks > max_chunks)
        n_chunks = (int)max_chunks;
    int32_t bos = copse_token_bos(model);
    int add_bos = copse_tokenize(model, "", 0, COPSE_TOK_ADD_SPECIAL, NULL, 0) > 0 && bos >= 0;
    int first = n_ctx / 2;
    want = malloc((size_t)n_ctx);
    sv = malloc((size_t)n_ctx * sizeof *sv);
    if (!want || !sv) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    for (int j = 0; j < n_ctx; j++)
        want[j] = j >= first && j < n_ctx - 1;

    double sum = 0, sum2 = 0, t0 = cli_now();
    long count = 0;
    copse_model_info info;
    copse_model_get_info(model, &info);
    if (!json)
        fprintf(stderr, "perplexity: %d tokens, %d windows of %d, scoring %d tokens each (kernels: %s)\n",
                n_tok, n_chunks, n_ctx, n_ctx - 1 - first, info.isa ? info.isa : "f32");
    for (int c = 0; c < n_chunks; c++) {
        int32_t *w = tok + (size_t)c * n_ctx;
        int32_t saved = w[0];
        if (add_bos)
            w[0] = bos;
        copse_seq *seq = copse_seq_new(ctx);
        if (!seq) {
            cli_error(CMD, "out of memory");
            goto done;
        }
        for (int j = 0; j < n_ctx; j++)
            sv[j] = seq;
        copse_batch b = { .n = n_ctx, .seq = sv, .token = w, .want = want };
        copse_error err;
        int drc = copse_decode(ctx, &b, &err);
        w[0] = saved;
        if (drc) {
            copse_seq_free(seq);
            cli_error(CMD, "%s", err.msg);
            goto done;
        }
        for (int j = first; j < n_ctx - 1; j++) {
            double v = nll(copse_get_logits(ctx, j), n_vocab, w[j + 1]);
            sum += v;
            sum2 += v * v;
            count++;
        }
        copse_seq_free(seq);
        if (!json) {
            double el = cli_now() - t0;
            fprintf(stderr, "[%d/%d] ppl %.4f  (%.1f s/window, %.0f s left)\n", c + 1, n_chunks,
                    exp(sum / count), el / (c + 1), el / (c + 1) * (n_chunks - c - 1));
        }
    }
    double mean = sum / count, var = sum2 / count - mean * mean;
    double ppl = exp(mean), err_ppl = ppl * sqrt(var > 0 ? var / (count - 1) : 0);
    if (json)
        printf("{\"ppl\":%.6f,\"ppl_stderr\":%.6f,\"tokens_scored\":%ld,\"windows\":%d,\"ctx\":%d,\"seconds\":%.3f}\n",
               ppl, err_ppl, count, n_chunks, n_ctx, cli_now() - t0);
    else
        printf("Final estimate: PPL = %.4f +/- %.4f  (%ld tokens scored)\n", ppl, err_ppl, count);
    rc = 0;
done:
    free(sv);
    free(want);
    free(tok);
    free(text);
    copse_ctx_free(ctx);
    copse_model_free(model);
    return rc;
}
