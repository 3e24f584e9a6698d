/* copse run: generate text from a prompt, streaming it, then report timing. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *CMD = "run";

static void help(void)
{
    printf("usage: copse run -m MODEL.gguf -p PROMPT [options]\n\n"
           "Generate text after PROMPT, streaming it to stdout; timing goes to stderr.\n\n"
           CLI_MODEL_OPTS_HELP
           "  -p, --prompt TEXT  the prompt (or -f FILE, or stdin when neither is given)\n"
           "  -f, --file FILE    read the prompt from FILE\n"
           "  -n, --n-predict N  tokens to generate (default 128; stops early at end of text)\n"
           "  --temp T           temperature, 0 = greedy (default 0.8)\n"
           "  --top-k K          keep the K most likely tokens, 0 = off (default 40)\n"
           "  --top-p P          keep the smallest set with probability P, 1 = off (default 0.95)\n"
           "  --min-p P          drop tokens below P x the best one's probability (default 0.05)\n"
           "  --seed S           random seed (default 0)\n"
           "  --no-bos           do not add the BOS token the model asks for\n"
           "  --json             print one JSON object (text, tokens, timings) instead of streaming\n"
           "  -h, --help         this help\n");
}

typedef struct run_opts {
    cli_model_opts m;
    const char *prompt, *file;
    long n_predict;
    copse_sampler_params sp;
    int no_bos, json;
} run_opts;

static int parse(int argc, char **argv, run_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_model_opt(CMD, argc, argv, &i, &o->m);
        if (r)
            { if (r < 0) return 2; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return -1; }
        if (!strcmp(a, "--no-bos")) { o->no_bos = 1; continue; }
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (i + 1 >= argc)
            return cli_usage_error(CMD, "unknown option or missing value: %s", a);
        const char *v = argv[++i];
        double d;
        long n;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->file = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (cli_parse_int(CMD, a, v, 0, 1 << 24, &o->n_predict)) return 2;
        } else if (!strcmp(a, "--temp")) {
            if (cli_parse_float(CMD, a, v, 0, 100, &d)) return 2;
            o->sp.temp = (float)d;
        } else if (!strcmp(a, "--top-k")) {
            if (cli_parse_int(CMD, a, v, 0, 1 << 24, &n)) return 2;
            o->sp.top_k = (int)n;
        } else if (!strcmp(a, "--top-p")) {
            if (cli_parse_float(CMD, a, v, 0, 1, &d)) return 2;
            o->sp.top_p = (float)d;
        } else if (!strcmp(a, "--min-p")) {
            if (cli_parse_float(CMD, a, v, 0, 1, &d)) return 2;
            o->sp.min_p = (float)d;
        } else if (!strcmp(a, "--seed")) {
            if (cli_parse_int(CMD, a, v, 0, 0x7fffffffL, &n)) return 2;
            o->sp.seed = (uint64_t)n;
        } else
            return cli_usage_error(CMD, "unknown option: %s", a);
    }
    if (o->prompt && o->file)
        return cli_usage_error(CMD, "give the prompt with -p or -f, not both");
    return 0;
}

static char *read_prompt(const run_opts *o, size_t *len)
{
    if (o->prompt) {
        *len = strlen(o->prompt);
        return strdup(o->prompt);
    }
    char *t = o->file ? cli_read_file(o->file, len) : cli_read_stdin(len);
    if (!t)
        cli_error(CMD, "cannot read the prompt from %s", o->file ? o->file : "stdin");
    return t;
}

/* Decode the prompt in chunks so scratch memory stays bounded; returns the
** last token's logits, or NULL after printing the error. */
static const float *prefill(copse_ctx *ctx, copse_seq *seq, const int32_t *t, int n)
{
    enum { CHUNK = 512 };
    copse_error err;
    int k = 0;
    for (int i = 0; i < n; i += k) {
        k = n - i < CHUNK ? n - i : CHUNK;
        if (copse_decode_tokens(ctx, seq, t + i, k, 0, &err)) {
            cli_error(CMD, "%s", err.msg);
            return NULL;
        }
    }
    return copse_get_logits(ctx, k - 1);
}

int cmd_run(int argc, char **argv)
{
    run_opts o = { .n_predict = 128, .sp = copse_sampler_default_params() };
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;

    double t0 = cli_now();
    copse_model *model;
    copse_ctx *ctx;
    if (cli_open_model(CMD, &o.m, 0, &model, &ctx))
        return 1;
    double t_load = cli_now() - t0;

    size_t len;
    char *text = read_prompt(&o, &len);
    int32_t *prompt = NULL, *gen = NULL;
    copse_seq *seq = NULL;
    copse_sampler *smp = NULL;
    char *out = NULL;
    size_t out_len = 0;
    rc = 1;
    int n_prompt = text ? cli_tokenize(CMD, model, text, len,
                                       o.no_bos ? 0 : COPSE_TOK_ADD_SPECIAL, &prompt) : -1;
    if (n_prompt < 0)
        goto done;
    if (n_prompt == 0) {
        cli_error(CMD, "the prompt is empty and the model adds no BOS token");
        goto done;
    }
    int n_ctx = copse_ctx_n_ctx(ctx);
    if (n_prompt >= n_ctx) {
        cli_error(CMD, "the prompt has %d tokens; the context holds %d (raise --ctx)", n_prompt, n_ctx);
        goto done;
    }
    seq = copse_seq_new(ctx);
    smp = copse_sampler_new(&o.sp);
    gen = malloc(((size_t)o.n_predict + 1) * sizeof *gen);
    if (!seq || !smp || !gen) {
        cli_error(CMD, "out of memory");
        goto done;
    }

    double t1 = cli_now();
    const float *logits = prefill(ctx, seq, prompt, n_prompt);
    if (!logits)
        goto done;
    double t_prompt = cli_now() - t1;

    cli_utf8_out so = { .f = stdout };
    if (!o.json)
        cli_utf8_put(&so, text, (int)len);
    int n_gen = 0, hit_eog = 0;
    char piece[256];
    t1 = cli_now();
    while (n_gen < o.n_predict && copse_seq_len(seq) < n_ctx) {
        int32_t tok = copse_sample(smp, logits, copse_n_vocab(model));
        gen[n_gen++] = tok;
        if (copse_token_is_eog(model, tok)) {
            hit_eog = 1;
            break;
        }
        int pl = copse_token_piece(model, tok, piece, sizeof piece);
        if (!o.json && pl > 0)
            cli_utf8_put(&so, piece, pl < (int)sizeof piece ? pl : (int)sizeof piece - 1);
        if (n_gen == o.n_predict)
            break; /* the last token needs no forward pass */
        copse_error err;
        if (copse_decode_tokens(ctx, seq, &tok, 1, 0, &err)) {
            cli_error(CMD, "%s", err.msg);
            goto done;
        }
        logits = copse_get_logits(ctx, 0);
    }
    double t_gen = cli_now() - t1;
    /* the forward passes made: every sampled token but the last */
    int n_eval = n_gen > 0 ? n_gen - 1 : 0;
    copse_model_info info;
    copse_model_get_info(model, &info);
    const char *kernels = info.isa ? info.isa : "f32";

    if (o.json) {
        int need = copse_detokenize(model, gen, n_gen - hit_eog, 0, NULL, 0);
        out = malloc((size_t)need + 1);
        if (!out) {
            cli_error(CMD, "out of memory");
            goto done;
        }
        out_len = (size_t)copse_detokenize(model, gen, n_gen - hit_eog, 0, out, need + 1);
        printf("{\"prompt\":");
        cli_json_str(stdout, text, len);
        printf(",\"text\":");
        cli_json_str(stdout, out, out_len);
        printf(",\"prompt_tokens\":%d,\"generated_tokens\":%d,\"stop\":\"%s\","
               "\"load_s\":%.3f,\"prompt_s\":%.3f,\"gen_s\":%.3f,"
               "\"prompt_tok_per_s\":%.2f,\"gen_tok_per_s\":%.2f,\"kernels\":\"%s\"}\n",
               n_prompt, n_gen, hit_eog ? "eog" : n_gen == o.n_predict ? "length" : "context",
               t_load, t_prompt, t_gen, n_prompt / (t_prompt > 0 ? t_prompt : 1e-9),
               n_eval / (t_gen > 0 ? t_gen : 1e-9), kernels);
    } else {
        cli_utf8_flush(&so);
        putchar('\n');
        fprintf(stderr, "\nload: %.2f s | prompt: %d tokens, %.1f tokens/s | generation: %d tokens, "
                "%.1f tokens/s | kernels: %s\n", t_load, n_prompt,
                n_prompt / (t_prompt > 0 ? t_prompt : 1e-9), n_gen,
                n_eval / (t_gen > 0 ? t_gen : 1e-9), kernels);
    }
    rc = 0;
done:
    free(out);
    free(gen);
    free(prompt);
    free(text);
    copse_sampler_free(smp);
    copse_seq_free(seq);
    copse_ctx_free(ctx);
    copse_model_free(model);
    return rc;
}
