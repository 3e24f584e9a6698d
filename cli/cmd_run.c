/* copse run: generate text from a prompt, streaming it, then report timing. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
           "  --chat             put the prompt to the model as the user's message in its chat\n"
           "                     format (from the file's chat template; copse-math's\n"
           "                     \"Question: ... Answer:\" for copse's models and files without one)\n"
           "                     and print the assistant's reply alone\n"
           "  --template NAME    --chat in this format: copse-math, chatml, llama3, llama2, phi3,\n"
           "                     gemma, granite, mistral, mistral-v1, mistral-v3,\n"
           "                     mistral-v3-tekken, mistral-v7, mistral-v7-tekken, deepseek3,\n"
           "                     deepseek2, deepseek, zephyr, falcon3, vicuna, vicuna-orca\n"
           "                     or openchat\n"
           "  --system TEXT      --chat with this system message\n"
           "  --json             print one JSON object (text, tokens, timings) instead of streaming\n"
           "  --lines            one prompt per line (of FILE or stdin), generated together: each\n"
           "                     step one batch over the prompts still going, each text the one\n"
           "                     its prompt gives alone; printed in order, JSON Lines with --json\n"
           "  --parallel N       --lines: prompts going at once (default 16)\n"
           "  -i, --interactive  a conversation: each line of stdin (after -p, if given) a\n"
           "                     user's message, each reply streamed as --chat streams it; the\n"
           "                     model reads only what the conversation adds; one JSON object a\n"
           "                     turn with --json. Where the conversation would leave the reply\n"
           "                     less than -n tokens (or half the context, if less), its oldest\n"
           "                     exchanges are dropped until it does; --system stays\n"
           "  --draft FILE       speculative decoding: FILE, a model of the same vocabulary,\n"
           "                     proposes tokens the model checks several at a forward pass;\n"
           "                     each token distributed as without it (greedy: the same text)\n"
           "  --draft-n K        tokens the draft proposes at a time, 1 to 32 (default 4)\n"
           "  -h, --help         this help\n");
}

typedef struct run_opts {
    cli_model_opts m;
    const char *prompt, *file;
    long n_predict;
    copse_sampler_params sp;
    int no_bos, json, lines, chat, interactive;
    const char *template_name, *system;
    long parallel;
    const char *draft;
    long draft_n;
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
        if (!strcmp(a, "--lines")) { o->lines = 1; continue; }
        if (!strcmp(a, "--chat")) { o->chat = 1; continue; }
        if (!strcmp(a, "-i") || !strcmp(a, "--interactive")) { o->interactive = o->chat = 1; continue; }
        if (i + 1 >= argc)
            return cli_usage_error(CMD, "unknown option or missing value: %s", a);
        const char *v = argv[++i];
        double d;
        long n;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->file = v;
        else if (!strcmp(a, "--template")) { o->template_name = v; o->chat = 1; }
        else if (!strcmp(a, "--system")) { o->system = v; o->chat = 1; }
        else if (!strcmp(a, "--draft")) o->draft = v;
        else if (!strcmp(a, "--draft-n")) {
            if (cli_parse_int(CMD, a, v, 1, CLI_DRAFT_MAX, &o->draft_n)) return 2;
        }
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
        } else if (!strcmp(a, "--parallel")) {
            if (cli_parse_int(CMD, a, v, 1, 256, &o->parallel)) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (cli_parse_int(CMD, a, v, 0, 0x7fffffffL, &n)) return 2;
            o->sp.seed = (uint64_t)n;
        } else
            return cli_usage_error(CMD, "unknown option: %s", a);
    }
    if (o->prompt && o->file)
        return cli_usage_error(CMD, "give the prompt with -p or -f, not both");
    if (o->prompt && o->lines)
        return cli_usage_error(CMD, "--lines reads its prompts from -f FILE or stdin, not -p");
    if (o->interactive && (o->lines || o->file))
        return cli_usage_error(CMD, "--interactive reads its messages from stdin, not --lines or -f");
    if (o->draft_n && !o->draft)
        return cli_usage_error(CMD, "--draft-n goes with --draft");
    if (o->draft && (o->lines || o->interactive))
        return cli_usage_error(CMD, "--draft goes with one prompt, not --lines or --interactive");
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

/* --chat: whether the model's chat format is known (the format, not the
** prompt, can fail: checked once, before any prompt). */
static int check_chat(const run_opts *o, const copse_model *m)
{
    copse_error err;
    if (o->chat && copse_chat_prompt(m, o->template_name, o->system, "", NULL, 0, &err) < 0)
        return cli_error(CMD, "%s", err.msg);
    return 0;
}

/* The tokens of a prompt (len bytes of text): as it is, or with --chat as
** the user's message in the model's chat format, whose markers become
** their control tokens. -1 after printing the error. */
static int prompt_tokens(const run_opts *o, const copse_model *m, const char *text, size_t len,
                         int32_t **out)
{
    unsigned flags = o->no_bos ? 0 : COPSE_TOK_ADD_SPECIAL;
    if (!o->chat)
        return cli_tokenize(CMD, m, text, len, flags, out);
    if (memchr(text, '\0', len)) {
        cli_error(CMD, "--chat: the prompt holds a NUL byte");
        return -1;
    }
    int n = copse_chat_prompt(m, o->template_name, o->system, text, NULL, 0, NULL);
    char *chat = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!chat || copse_chat_prompt(m, o->template_name, o->system, text, chat, n + 1, NULL) != n) {
        free(chat);
        cli_error(CMD, "--chat: out of memory");
        return -1;
    }
    n = cli_tokenize(CMD, m, chat, (size_t)n, flags | COPSE_TOK_PARSE_SPECIAL, out);
    free(chat);
    return n;
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

/* Plain generation (cli_generate without a draft). */
static int generate(copse_ctx *ctx, copse_seq *seq, copse_sampler *smp, const copse_model *m,
                    const float *logits, int n_predict, int32_t *gen, int *hit_eog, cli_utf8_out *so)
{
    return cli_generate(CMD, ctx, seq, smp, m, logits, n_predict, NULL, gen, hit_eog, so);
}

/* The text of gen[0..n) (malloc'd), its length in *len; NULL after
** printing the error. */
static char *gen_text(const copse_model *m, const int32_t *gen, int n, size_t *len)
{
    int need = copse_detokenize(m, gen, n, 0, NULL, 0);
    char *out = need >= 0 ? malloc((size_t)need + 1) : NULL;
    if (!out)
        return cli_error(CMD, "out of memory"), NULL;
    *len = (size_t)copse_detokenize(m, gen, n, 0, out, need + 1);
    return out;
}

/* The kernels the model runs on, as the timing line names them. */
static const char *kernels_name(const copse_model *m)
{
    copse_model_info info;
    copse_model_get_info(m, &info);
    return info.isa ? info.isa : "f32";
}

/* ------------------------------------------------------------- --lines */

/* One prompt of --lines, from its prefill to its stop. */
typedef struct job {
    const char *text;        /* the line */
    int32_t    *prompt;
    int         n_prompt;
    copse_seq  *seq;
    copse_sampler *smp;
    int32_t    *gen;
    int         n_gen;
    int         pending;     /* gen[n_gen - 1] awaits its forward pass */
    const char *stop;        /* eog, length, context, error; NULL while going */
    char        why[160];    /* the error's message */
} job;

/* A job whose logits are these samples its next token as a lone run does
** (and as copse run without --lines): a token per forward pass until the
** end of text, n_predict tokens or a full context. A job that stops gives
** its KV blocks back at once: the next line may need them before the
** lines ahead of this one are done and it is printed. */
static void job_step(job *j, const run_opts *o, const copse_model *m, int n_ctx, const float *logits)
{
    if (!(j->n_gen < o->n_predict && copse_seq_len(j->seq) < n_ctx)) {
        j->stop = j->n_gen == o->n_predict ? "length" : "context";
    } else {
        int32_t tok = copse_sample(j->smp, logits, copse_n_vocab(m));
        j->gen[j->n_gen++] = tok;
        j->stop = copse_token_is_eog(m, tok) ? "eog" : j->n_gen == o->n_predict ? "length" : NULL;
        j->pending = !j->stop;
    }
    if (j->stop) {
        copse_seq_free(j->seq);
        j->seq = NULL;
    }
}

static void job_print(const job *j, const run_opts *o, const copse_model *m)
{
    int n = j->n_gen - (j->stop && !strcmp(j->stop, "eog"));
    int need = j->prompt ? copse_detokenize(m, j->gen, n, 0, NULL, 0) : 0;
    char *out = need >= 0 ? malloc((size_t)need + 1) : NULL;
    size_t len = out ? (size_t)copse_detokenize(m, j->gen, n, 0, out, need + 1) : 0;
    if (o->json) {
        printf("{\"prompt\":");
        cli_json_str(stdout, j->text, strlen(j->text));
        if (strcmp(j->stop, "error")) {
            printf(",\"text\":");
            cli_json_str(stdout, out ? out : "", len);
            printf(",\"prompt_tokens\":%d,\"generated_tokens\":%d,\"stop\":\"%s\"}\n", j->n_prompt, j->n_gen,
                   j->stop);
        } else {
            printf(",\"error\":");
            cli_json_str(stdout, j->why, strlen(j->why));
            printf("}\n");
        }
    } else if (strcmp(j->stop, "error")) {
        printf("%s%.*s\n\n", o->chat ? "" : j->text, (int)len, out ? out : "");
    }
    free(out);
}

static void job_free(job *j)
{
    free(j->prompt);
    free(j->gen);
    copse_seq_free(j->seq);
    copse_sampler_free(j->smp);
}

/* Start job j: prefill alone (as a lone run does) and sample its first
** token; 1 for an error that ends the whole run. A prompt the context
** cannot hold, or that could not be tokenized, is that line's error only. */
static int job_start(job *j, const run_opts *o, copse_model *m, copse_ctx *ctx, int n_ctx, int line)
{
    if (j->stop)   /* its tokens could not be had: said so already */
        return 0;
    if (j->n_prompt == 0 || j->n_prompt >= n_ctx) {
        if (j->n_prompt)
            snprintf(j->why, sizeof j->why, "the prompt has %d tokens; the context holds %d (raise --ctx)",
                     j->n_prompt, n_ctx);
        else
            snprintf(j->why, sizeof j->why, "the prompt is empty and the model adds no BOS token");
        cli_error(CMD, "line %d: %s", line, j->why);
        j->stop = "error";
        return 0;
    }
    j->seq = copse_seq_new(ctx);
    j->smp = copse_sampler_new(&o->sp);
    j->gen = malloc(((size_t)o->n_predict + 1) * sizeof *j->gen);
    if (!j->seq || !j->smp || !j->gen)
        return cli_error(CMD, "out of memory");
    const float *logits = prefill(ctx, j->seq, j->prompt, j->n_prompt);
    if (!logits)
        return 1;
    job_step(j, o, m, n_ctx, logits);
    return 0;
}

/*
** Every line a prompt, up to --parallel of them going at once. Each
** prompt is prefilled alone; then each step decodes the next token of
** every prompt going in one batch, so the weights are read once for all
** of them; a finished prompt's place goes to the next line. A row's
** products and attention do not depend on the rows beside it (int8
** kernels: q8.h; attention.h), and each prompt has its own sampler with
** the same seed, so each text is the one its prompt gives alone. Results
** are printed in the order of the lines, each as soon as those before it
** are.
*/

/* A job per nonempty line of input (len bytes, cut into lines in place);
** NULL after an error (printed). */
static job *read_jobs(char *input, size_t len, int *n_jobs)
{
    int n = 0, cap = 0;
    job *jobs = NULL;
    for (char *p = input, *end; p < input + len; p = end + 1) {
        end = memchr(p, '\n', (size_t)(input + len - p));
        end = end ? end : input + len;
        *end = '\0';
        if (end > p && end[-1] == '\r')
            end[-1] = '\0';
        if (!*p)
            continue;
        if (n == cap) {
            job *nj = realloc(jobs, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *nj);
            if (!nj) {
                free(jobs);
                cli_error(CMD, "out of memory");
                return NULL;
            }
            jobs = nj;
        }
        jobs[n++] = (job){ .text = p };
    }
    *n_jobs = n;
    return jobs ? jobs : calloc(1, sizeof *jobs);
}

static int run_lines(const run_opts *o)
{
    size_t len;
    char *input = o->file ? cli_read_file(o->file, &len) : cli_read_stdin(&len);
    if (!input)
        return cli_error(CMD, "cannot read the prompts from %s", o->file ? o->file : "stdin");
    int n = 0, rc = 1, next = 0, printed = 0;
    job *jobs = read_jobs(input, len, &n);
    if (!jobs)
        goto out;
    double t0 = cli_now();
    copse_model *model = NULL;
    copse_ctx *ctx = NULL;
    copse_seq **bseq = NULL;
    int32_t *btok = NULL;
    int *bjob = NULL;
    if (cli_open_model(CMD, &o->m, 0, &model, NULL))
        goto out;
    if (check_chat(o, model))
        goto done;
    /* the KV room: as many of the longest sequences as go at once, each
    ** with a block of slack (the context's length is the one
    ** copse_ctx_new will give) */
    copse_model_info info;
    copse_model_get_info(model, &info);
    long long n_ctx0 = o->m.n_ctx ? o->m.n_ctx : info.n_ctx_train, most = 0;
    for (int i = 0; i < n; i++) {
        job *j = &jobs[i];
        j->n_prompt = prompt_tokens(o, model, j->text, strlen(j->text), &j->prompt);
        j->stop = j->n_prompt < 0 ? "error" : NULL;
        snprintf(j->why, sizeof j->why, "%s", j->stop ? "the text cannot be tokenized" : "");
        j->n_prompt = j->n_prompt < 0 ? 0 : j->n_prompt;
        if (j->n_prompt < n_ctx0)
            most = j->n_prompt + o->n_predict > most ? j->n_prompt + o->n_predict : most;
    }
    int par = (int)(o->parallel ? o->parallel : 16);
    par = par < n ? par : n;
    long long room = (long long)par * ((most < n_ctx0 ? most : n_ctx0) + 16);
    if (cli_new_ctx(CMD, &o->m, room < (1 << 30) ? (int)room : 1 << 30, model, &ctx))
        goto done;
    double t_load = cli_now() - t0;
    int n_ctx = copse_ctx_n_ctx(ctx);
    bseq = malloc((size_t)(par ? par : 1) * sizeof *bseq);
    btok = malloc((size_t)(par ? par : 1) * sizeof *btok);
    bjob = malloc((size_t)(par ? par : 1) * sizeof *bjob);
    if (!bseq || !btok || !bjob) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    long long prompt_tokens = 0, gen_tokens = 0;
    double t_prompt = 0, t_gen = 0;
    for (;;) {
        /* fill the free places, in the order of the lines */
        int going = 0;
        for (int i = printed; i < next; i++)
            going += jobs[i].pending;
        while (going < par && next < n) {
            double t = cli_now();
            job *j = &jobs[next];
            if (job_start(j, o, model, ctx, n_ctx, next + 1))
                goto done;
            t_prompt += cli_now() - t;
            prompt_tokens += j->stop && !strcmp(j->stop, "error") ? 0 : j->n_prompt;
            going += j->pending;
            next++;
        }
        for (; printed < next && jobs[printed].stop; printed++) {
            job_print(&jobs[printed], o, model);
            job_free(&jobs[printed]);
        }
        fflush(stdout);
        if (!going)
            break;
        copse_batch b = { .n = 0, .seq = bseq, .token = btok, .want = NULL };
        uint8_t want[256];
        for (int i = printed; i < next; i++)
            if (jobs[i].pending) {
                bseq[b.n] = jobs[i].seq;
                btok[b.n] = jobs[i].gen[jobs[i].n_gen - 1];
                want[b.n] = COPSE_WANT_LOGITS;
                bjob[b.n++] = i;
            }
        b.want = want;
        double t = cli_now();
        copse_error err;
        if (copse_decode(ctx, &b, &err)) {
            cli_error(CMD, "%s", err.msg);
            goto done;
        }
        for (int e = 0; e < b.n; e++) {
            job *j = &jobs[bjob[e]];
            j->pending = 0;
            job_step(j, o, model, n_ctx, copse_get_logits(ctx, e));
        }
        t_gen += cli_now() - t;
        gen_tokens += b.n;
    }
    /* as a lone run counts: every token sampled, a rate over the forward
    ** passes made (all tokens but each line's first) */
    long long sampled = 0;
    rc = 0;
    for (int i = 0; i < n; i++) {
        sampled += jobs[i].n_gen;
        rc |= jobs[i].stop && !strcmp(jobs[i].stop, "error");
    }
    fprintf(stderr, "load: %.2f s | prompts: %d lines, %lld tokens, %.1f tokens/s | generation: %lld tokens, "
            "%.1f tokens/s over all lines | kernels: %s\n", t_load, n, prompt_tokens,
            prompt_tokens / (t_prompt > 0 ? t_prompt : 1e-9), sampled, gen_tokens / (t_gen > 0 ? t_gen : 1e-9),
            kernels_name(model));
done:
    for (int i = printed; i < n; i++)
        job_free(&jobs[i]);
    free(bseq);
    free(btok);
    free(bjob);
    copse_ctx_free(ctx);
    copse_model_free(model);
out:
    free(jobs);
    free(input);
    return rc;
}

/* ------------------------------------------------------- --interactive */

/* The messages so far (the user's and the assistant's in turn) and the
** tokens the sequence holds. */
typedef struct convo {
    char   **turns;
    int      n_turns;
    int32_t *held;
    int      n_held;
} convo;

/* The conversation rendered whole and tokenized into *tok (malloc'd); the
** count, or -1 after printing the error. */
static int convo_tokens(const convo *c, const run_opts *o, const copse_model *m, int32_t **tok)
{
    copse_error err;
    const char *const *turns = (const char *const *)c->turns;
    int n = copse_chat_conversation(m, o->template_name, o->system, turns, c->n_turns, NULL, 0, &err);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (n < 0 || !text) {
        free(text);
        return cli_error(CMD, "%s", n < 0 ? err.msg : "out of memory"), -1;
    }
    copse_chat_conversation(m, o->template_name, o->system, turns, c->n_turns, text, n + 1, NULL);
    int nt = cli_tokenize(CMD, m, text, (size_t)n, (o->no_bos ? 0 : COPSE_TOK_ADD_SPECIAL)
                          | COPSE_TOK_PARSE_SPECIAL, tok);
    free(text);
    return nt;
}

/* Forget the oldest exchange (the user's message and the reply): the
** system message is no turn, so it stays. */
static void convo_drop(convo *c)
{
    free(c->turns[0]);
    free(c->turns[1]);
    c->n_turns -= 2;
    memmove(c->turns, c->turns + 2, (size_t)c->n_turns * sizeof *c->turns);
}

/*
** Put the conversation (ending with the user's message) to the model.
** While the rendered conversation leaves less than the reply's room (-n
** tokens, at most half the context: a large -n must not cost the whole
** history) and an older exchange is left, the oldest goes, so that a long
** conversation goes on in a small context; *dropped counts the messages
** gone. Then keep the tokens the sequence already holds up to the first
** that differs (a reply's text may tokenize otherwise than it was
** sampled; after a drop, little more than the system message is kept)
** and decode the rest. Returns the last token's logits, with the counts
** reused and new in *reused, *fresh; NULL after printing the error.
*/
static const float *convo_feed(convo *c, const run_opts *o, const copse_model *m, copse_ctx *ctx,
                               copse_seq *seq, int *reused, int *fresh, int *dropped)
{
    int n_ctx = copse_ctx_n_ctx(ctx), p = 0;
    int room = o->n_predict < n_ctx / 2 ? (int)o->n_predict : n_ctx / 2;
    room = room > 1 ? room : 1;   /* -n 0 too: a conversation is shortened before it is refused */
    int32_t *tok;
    int nt;
    *dropped = 0;
    while ((nt = convo_tokens(c, o, m, &tok)) >= 0 && nt + room > n_ctx && c->n_turns > 1) {
        free(tok);
        convo_drop(c);
        *dropped += 2;
    }
    if (nt < 0)
        return NULL;
    const float *logits = NULL;
    if (nt >= n_ctx) {
        cli_error(CMD, "the conversation has %d tokens; the context holds %d (raise --ctx)", nt, n_ctx);
        goto out;
    }
    while (p < c->n_held && p < nt - 1 && c->held[p] == tok[p])
        p++;
    if (copse_seq_truncate(seq, p)) {
        cli_error(CMD, "cannot roll the conversation back to %d tokens", p);
        goto out;
    }
    if ((logits = prefill(ctx, seq, tok + p, nt - p))) {
        memcpy(c->held + p, tok + p, (size_t)(nt - p) * sizeof *tok);
        c->n_held = nt;
        *reused = p;
        *fresh = nt - p;
    }
out:
    free(tok);
    return logits;
}

/* The next user's message: -p's first, then each nonempty line of stdin
** (a "> " prompt on stderr when stdin is a terminal); NULL at the end. */
static char *next_message(const run_opts *o, int turn)
{
    if (turn == 0 && o->prompt)
        return strdup(o->prompt);
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (isatty(STDIN_FILENO))
            fputs("> ", stderr);
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            free(line);
            return NULL;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n > 0 && !memchr(line, '\0', (size_t)n))
            return line;
        if (n > 0)
            cli_error(CMD, "a message with a NUL byte: left out");
    }
}

static int run_interactive(const run_opts *o)
{
    copse_model *model;
    copse_ctx *ctx;
    if (cli_open_model(CMD, &o->m, 0, &model, &ctx))
        return 1;
    int n_ctx = copse_ctx_n_ctx(ctx), rc = 1;
    convo c = { 0 };
    copse_seq *seq = copse_seq_new(ctx);
    copse_sampler *smp = copse_sampler_new(&o->sp);
    int32_t *gen = malloc(((size_t)o->n_predict + 1) * sizeof *gen);
    c.held = malloc((size_t)n_ctx * sizeof *c.held);
    if (!seq || !smp || !gen || !c.held) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    if (check_chat(o, model))
        goto done;
    for (char *msg; (msg = next_message(o, c.n_turns / 2)) != NULL;) {
        char **t = realloc(c.turns, ((size_t)c.n_turns + 2) * sizeof *t);
        if (!t) {
            free(msg);
            cli_error(CMD, "out of memory");
            goto done;
        }
        c.turns = t;
        c.turns[c.n_turns++] = msg;
        int reused, fresh, dropped, hit_eog;
        double t0 = cli_now();
        const float *logits = convo_feed(&c, o, model, ctx, seq, &reused, &fresh, &dropped);
        if (!logits)
            goto done;
        double t1 = cli_now();
        if (dropped && !o->json)
            fprintf(stderr, "[dropped the %d oldest messages to fit the context of %d tokens]\n", dropped, n_ctx);
        cli_utf8_out so = { .f = stdout };
        int before = copse_seq_len(seq);
        int n_gen = generate(ctx, seq, smp, model, logits, (int)o->n_predict, gen, &hit_eog,
                             o->json ? NULL : &so);
        if (n_gen < 0)
            goto done;
        double t2 = cli_now();
        /* the sequence holds the sampled tokens that went through a forward pass */
        memcpy(c.held + c.n_held, gen, (size_t)(copse_seq_len(seq) - before) * sizeof *gen);
        c.n_held = copse_seq_len(seq);
        size_t len;
        char *reply = gen_text(model, gen, n_gen - hit_eog, &len);
        if (!reply)
            goto done;
        c.turns[c.n_turns++] = reply;
        const char *stop = hit_eog ? "eog" : n_gen == o->n_predict ? "length" : "context";
        if (o->json) {
            printf("{\"user\":");
            cli_json_str(stdout, msg, strlen(msg));
            printf(",\"text\":");
            cli_json_str(stdout, reply, len);
            printf(",\"prompt_tokens\":%d,\"reused_tokens\":%d,\"generated_tokens\":%d,\"stop\":\"%s\","
                   "\"context_tokens\":%d,\"dropped_turns\":%d,\"prompt_s\":%.3f,\"gen_s\":%.3f}\n", fresh, reused,
                   n_gen, stop, copse_seq_len(seq), dropped, t1 - t0, t2 - t1);
        } else {
            cli_utf8_flush(&so);
            putchar('\n');
            fprintf(stderr, "[%d new tokens (%d kept), %.1f tokens/s | %d generated, %.1f tokens/s%s]\n",
                    fresh, reused, fresh / (t1 > t0 ? t1 - t0 : 1e-9), n_gen,
                    (n_gen > 0 ? n_gen - 1 : 0) / (t2 > t1 ? t2 - t1 : 1e-9),
                    hit_eog ? "" : n_gen == o->n_predict ? ", cut at -n" : ", the context is full");
        }
        fflush(stdout);
    }
    rc = 0;
done:
    for (int i = 0; i < c.n_turns; i++)
        free(c.turns[i]);
    free(c.turns);
    free(c.held);
    free(gen);
    copse_sampler_free(smp);
    copse_seq_free(seq);
    copse_ctx_free(ctx);
    copse_model_free(model);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    run_opts o = { .n_predict = 128, .sp = copse_sampler_default_params() };
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (o.lines)
        return run_lines(&o);
    if (o.interactive)
        return run_interactive(&o);

    double t0 = cli_now();
    copse_model *model;
    copse_ctx *ctx;
    if (cli_open_model(CMD, &o.m, 0, &model, &ctx))
        return 1;
    cli_draft draft = { .k = o.draft_n ? (int)o.draft_n : 4 };
    int no_draft = o.draft && cli_draft_open(CMD, &o.m, o.draft, model, copse_ctx_n_ctx(ctx), &o.sp, &draft);
    double t_load = cli_now() - t0;

    size_t len;
    char *text = read_prompt(&o, &len);
    int32_t *prompt = NULL, *gen = NULL;
    copse_seq *seq = NULL;
    copse_sampler *smp = NULL;
    char *out = NULL;
    size_t out_len = 0;
    rc = 1;
    int n_prompt = text && !no_draft && !check_chat(&o, model) ? prompt_tokens(&o, model, text, len, &prompt) : -1;
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
    if (!logits || (o.draft && !prefill(draft.ctx, draft.seq, prompt, n_prompt)))
        goto done;
    double t_prompt = cli_now() - t1;

    cli_utf8_out so = { .f = stdout };
    if (!o.json && !o.chat)
        cli_utf8_put(&so, text, (int)len);
    int hit_eog;
    t1 = cli_now();
    int n_gen = cli_generate(CMD, ctx, seq, smp, model, logits, (int)o.n_predict, o.draft ? &draft : NULL, gen,
                             &hit_eog, o.json ? NULL : &so);
    if (n_gen < 0)
        goto done;
    double t_gen = cli_now() - t1;
    /* the forward passes made: every sampled token but the last */
    int n_eval = n_gen > 0 ? n_gen - 1 : 0;
    const char *kernels = kernels_name(model);

    if (o.json) {
        if (!(out = gen_text(model, gen, n_gen - hit_eog, &out_len)))
            goto done;
        printf("{\"prompt\":");
        cli_json_str(stdout, text, len);
        printf(",\"text\":");
        cli_json_str(stdout, out, out_len);
        printf(",\"prompt_tokens\":%d,\"generated_tokens\":%d,\"stop\":\"%s\","
               "\"load_s\":%.3f,\"prompt_s\":%.3f,\"gen_s\":%.3f,"
               "\"prompt_tok_per_s\":%.2f,\"gen_tok_per_s\":%.2f,\"kernels\":\"%s\"",
               n_prompt, n_gen, hit_eog ? "eog" : n_gen == o.n_predict ? "length" : "context",
               t_load, t_prompt, t_gen, n_prompt / (t_prompt > 0 ? t_prompt : 1e-9),
               n_eval / (t_gen > 0 ? t_gen : 1e-9), kernels);
        if (o.draft)
            printf(",\"draft_tokens\":%lld,\"draft_accepted\":%lld,\"target_passes\":%lld",
                   draft.drafted, draft.accepted, draft.passes);
        printf("}\n");
    } else {
        cli_utf8_flush(&so);
        putchar('\n');
        fprintf(stderr, "\nload: %.2f s | prompt: %d tokens, %.1f tokens/s | generation: %d tokens, "
                "%.1f tokens/s | kernels: %s", t_load, n_prompt,
                n_prompt / (t_prompt > 0 ? t_prompt : 1e-9), n_gen,
                n_eval / (t_gen > 0 ? t_gen : 1e-9), kernels);
        if (o.draft)
            fprintf(stderr, " | draft: %lld proposed, %lld accepted (%.1f%%), %lld target passes",
                    draft.drafted, draft.accepted, 100.0 * (double)draft.accepted
                    / (double)(draft.drafted ? draft.drafted : 1), draft.passes);
        fputc('\n', stderr);
    }
    rc = 0;
done:
    free(out);
    free(gen);
    free(prompt);
    free(text);
    copse_sampler_free(smp);
    copse_seq_free(seq);
    cli_draft_close(&draft);
    copse_ctx_free(ctx);
    copse_model_free(model);
    return rc;
}
