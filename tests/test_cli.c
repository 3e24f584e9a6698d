/*
** The copse command's run and perplexity, driven as a user would, checked
** against the same computation done through the library; and the reader of
** the question sets eval and tune take.
*/
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "copse.h"
#include "../cli/jsonl.h"
#include "../cli/cli.h"

#define MODEL "tests/data/models/tiny-llama.gguf"

/* snprintf into the array buf, failing the test where the text would not
** fit: a cut-off command would test something else. */
#define PRINT(buf, ...) ck_assert_int_lt(snprintf(buf, sizeof buf, __VA_ARGS__), (int)sizeof buf)

static copse_model *load(copse_ctx **ctx)
{
    copse_error e;
    copse_model *m;
    ck_assert_msg(copse_model_load(MODEL, NULL, &m, &e) == COPSE_OK, "%s", e.msg);
    copse_ctx_params p = copse_ctx_default_params();
    p.n_threads = 1;
    ck_assert_msg(copse_ctx_new(m, &p, ctx, &e) == COPSE_OK, "%s", e.msg);
    return m;
}

/* Greedy generation through the library, as copse run does it, from the
** prompt tokenized with flags. */
static int greedy(const char *prompt, unsigned flags, int n_predict, int32_t *gen)
{
    copse_ctx *ctx;
    copse_model *m = load(&ctx);
    int32_t tok[256];
    int n = copse_tokenize(m, prompt, strlen(prompt), flags, tok, 256);
    ck_assert(n > 0 && n < 256);
    copse_seq *s = copse_seq_new(ctx);
    copse_error e;
    ck_assert_int_eq(copse_decode_tokens(ctx, s, tok, n, 0, &e), COPSE_OK);
    const float *l = copse_get_logits(ctx, n - 1);
    int k = 0;
    while (k < n_predict) {
        int32_t best = 0;
        for (int i = 1; i < copse_n_vocab(m); i++)
            if (l[i] > l[best])
                best = i;
        gen[k++] = best;
        if (copse_token_is_eog(m, best) || k == n_predict)
            break;
        ck_assert_int_eq(copse_decode_tokens(ctx, s, &best, 1, 0, &e), COPSE_OK);
        l = copse_get_logits(ctx, 0);
    }
    copse_ctx_free(ctx);
    copse_model_free(m);
    return k;
}

/* The text of n greedy tokens, the end-of-generation one left out, as
** copse run prints it; returns its length. */
static int greedy_text(const int32_t *gen, int n, char *text, int cap)
{
    copse_model *m;
    copse_error e;
    ck_assert_int_eq(copse_model_load(MODEL, NULL, &m, &e), COPSE_OK);
    int len = copse_detokenize(m, gen, n - copse_token_is_eog(m, gen[n - 1]), 0, text, cap);
    ck_assert(len >= 0 && len < cap);
    copse_model_free(m);
    return len;
}

/* Decode the JSON string literal at p (as cli_json_str writes them) into
** out; returns its length. */
static int json_unescape(const char *p, char *out, int cap)
{
    ck_assert(*p == '"');
    int n = 0;
    for (p++; *p != '"'; p++) {
        ck_assert(*p && n < cap - 1);
        if (*p != '\\') {
            out[n++] = *p;
            continue;
        }
        switch (*++p) {
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': out[n++] = (char)strtol((char[]){ p[1], p[2], p[3], p[4], 0 }, NULL, 16); p += 4; break;
        default: out[n++] = *p; break; /* \" and \\ */
        }
    }
    out[n] = '\0';
    return n;
}

/* The value of "key": in a flat JSON object, as text. */
static const char *json_field(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    ck_assert_msg(p != NULL, "no %s in %s", key, json);
    return p + strlen(pat);
}

/* Split out (NUL-terminated in place) into at most max lines; the count. */
static int split_lines(char *out, char **line, int max)
{
    int n = 0;
    for (char *p = out, *nl; n < max && *p; p = nl + 1) {
        line[n++] = p;
        if (!(nl = strchr(p, '\n')))
            break;
        *nl = '\0';
    }
    return n;
}

/* copse info names the chat format the file's template is written for
** (here a Mistral v7 template, written for the test), or says that it is
** of no family copse knows (JSON: null); either way the model is described. */
START_TEST(info_chat_format)
{
    const char *copse = tu_copse_bin("info_chat_format");
    if (!copse)
        return;
    static const char *const tmpl[2] = {
        "{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{{ '[INST] ' + message['content'] + '[/INST]' }}",
        "{{ '<|User|>' + message['content'] }}",
    };
    for (int k = 0; k < 2; k++) {
        char path[512], cmd[2048], out[8192];
        PRINT(path, "%s/cli-chat-%d.gguf", tu_build_dir(), k);
        PRINT(cmd, "'%s/bin/mkmodel' --preset tiny-llama --type f32 --chat-template \"%s\" -o '%s' 2>&1",
              tu_build_dir(), tmpl[k], path);
        ck_assert_msg(tu_run(cmd, out, sizeof out) == 0, "mkmodel: %s", out);
        PRINT(cmd, "'%s' info -m '%s' 2>&1", copse, path);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        ck_assert_msg(strstr(out, k ? "tokenizer.chat_template (\"{{ '<|User|>' + message['content'] }}...\") is of "
                                      "no family copse knows; name one (copse-math, chatml,"
                                    : "\nchat        mistral-v7\n"), "%s", out);
        PRINT(cmd, "'%s' info -m '%s' --json 2>&1", copse, path);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        ck_assert_msg(strstr(out, k ? "\"chat_format\": null," : "\"chat_format\": \"mistral-v7\","), "%s", out);
    }
}
END_TEST

/* The conversation turns[0..n) rendered by copse_chat_conversation in the
** format name, with the system message system, into chat (cap bytes), and
** its tokens into tok (256); the count of tokens. */
static int conversation_tokens(const char *name, const char *system, const char *const *turns, int n,
                               char *chat, int cap, int32_t *tok)
{
    copse_model *m;
    copse_error e;
    ck_assert_int_eq(copse_model_load(MODEL, NULL, &m, &e), COPSE_OK);
    int cn = copse_chat_conversation(m, name, system, turns, n, chat, cap, &e);
    ck_assert_msg(cn > 8 && cn < cap, "%d: %s", cn, e.msg);
    int nt = copse_tokenize(m, chat, (size_t)cn, COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL, tok, 256);
    ck_assert(nt > 0 && nt < 256);
    copse_model_free(m);
    return nt;
}

/*
** One --interactive turn, as its JSON line gives it, against the library:
** the reply is the greedy one (n_predict tokens at most) for the
** conversation turns[0..n), decoded from scratch, its text into reply; the
** turn reads all but the tokens the sequence held (held[0..*n_held)) up to
** the first that differs (the last always read, for its logits), and
** leaves it holding the conversation and every sampled token but the last,
** which held and *n_held become.
*/
static void check_turn(const char *line, const char *name, const char *system, const char *const *turns, int n,
                       int n_predict, int32_t *held, int *n_held, char *reply, int cap)
{
    char chat[2048], text[4096];
    int32_t tok[256], gen[16];
    int nt = conversation_tokens(name, system, turns, n, chat, sizeof chat, tok);
    ck_assert(n_predict <= 16);
    int g = greedy(chat, COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL, n_predict, gen);
    int p = 0;
    while (p < *n_held && p < nt - 1 && held[p] == tok[p])
        p++;
    ck_assert_int_eq(atoi(json_field(line, "reused_tokens")), p);
    ck_assert_int_eq(atoi(json_field(line, "prompt_tokens")), nt - p);
    memcpy(held, tok, (size_t)nt * sizeof *tok);
    memcpy(held + nt, gen, (size_t)(g - 1) * sizeof *gen);
    *n_held = nt + g - 1;
    ck_assert_int_eq(atoi(json_field(line, "context_tokens")), *n_held);
    int len = greedy_text(gen, g, reply, cap);
    /* as JSON writes it (the random model's bytes need not be UTF-8) */
    FILE *f = fmemopen(text, sizeof text, "w");
    cli_json_str(f, reply, (size_t)len);
    fclose(f);
    const char *got = json_field(line, "text");
    ck_assert_msg(!strncmp(got, text, strlen(text)) && got[strlen(text)] == ',',
                  "%s: %s, the library %s", turns[n - 1], got, text);
    ck_assert_int_eq(atoi(json_field(line, "generated_tokens")), g);
}

/* --interactive: each reply is the library's greedy one for the whole
** conversation so far, rendered by copse_chat_conversation (the earlier
** replies as the command gave them), though the command reads only what
** each turn adds; as JSON Lines and as streamed text. */
START_TEST(run_interactive)
{
    const char *copse = tu_copse_bin("run_interactive");
    if (!copse)
        return;
    /* Llama 2's reply follows a space the model did not write: the reply's tokens are read again */
    static const char *const opts[3] = { "-i", "--template chatml -i", "--template llama2 -i" };
    static const char *const names[3] = { NULL, "chatml", "llama2" };
    for (int k = 0; k < 3; k++) {
        char cmd[2048], out[8192], *line[4], want[2][1024];
        PRINT(cmd, "printf 'hi\\n\\nok\\n' | '%s' run -m " MODEL " %s -n 4 --temp 0 -t 1 --json",
              copse, opts[k]);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        ck_assert_int_eq(split_lines(out, line, 4), 2);   /* the blank line is no message */
        const char *turns[3] = { "hi", want[0], "ok" };
        int32_t held[256];   /* the tokens the sequence holds */
        int n_held = 0;
        for (int t = 0; t < 2; t++) {
            check_turn(line[t], names[k], NULL, turns, 2 * t + 1, 4, held, &n_held, want[t], sizeof want[t]);
            ck_assert_int_eq(atoi(json_field(line[t], "dropped_turns")), 0);
        }
        /* the second turn reads on from the first: its prompt at least is kept */
        ck_assert_int_ge(atoi(json_field(line[1], "reused_tokens")), atoi(json_field(line[0], "prompt_tokens")));
        char shown[2][1024];   /* the replies as the JSON shows them: stray bytes as U+FFFD, as streamed */
        for (int t = 0; t < 2; t++)
            json_unescape(json_field(line[t], "text"), shown[t], sizeof shown[t]);
        PRINT(cmd, "printf 'hi\\nok\\n' | '%s' run -m " MODEL " %s -n 4 --temp 0 -t 1 2>/dev/null",
              copse, opts[k]);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        char both[2100];
        PRINT(both, "%s\n%s\n", shown[0], shown[1]);
        ck_assert_str_eq(out, both);
    }
    char cmd[2048], out[4096];
    PRINT(cmd, "'%s' run -m " MODEL " -i --lines 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--interactive reads its messages from stdin"), "%s", out);
    /* a message the context cannot hold: said, exit 1 */
    PRINT(cmd, "printf 'tell me all about the numbers\\n' | '%s' run -m " MODEL " -i -n 6 --temp 0 -t 1 --ctx 24 "
          "2>&1 >/dev/null", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "the context holds 24 (raise --ctx)"), "%s", out);
}
END_TEST

/*
** --interactive past the context: a turn whose conversation would leave
** the reply less than -n tokens (or half the context) first drops the
** oldest exchanges, as few as make the room, the system message kept; the
** reply is then the library's greedy one for what is kept, and the turn
** reads all but the tokens the sequence holds up to the first that
** differs. A message too long even alone still ends the run.
*/
START_TEST(run_interactive_drops_turns)
{
    const char *copse = tu_copse_bin("run_interactive_drops_turns");
    if (!copse)
        return;
    enum { CTX = 64, N = 4, ROOM = N < CTX / 2 ? N : CTX / 2, TURNS = 5 };
    static const char *const user[TURNS] = { "hi", "ok", "so", "why", "yes" };
    char opts[256], cmd[2048], out[8192], *line[TURNS + 1], want[TURNS][1024], chat[2048];
    PRINT(opts, "-m " MODEL " --system 'be kind' -i -n %d --temp 0 -t 1 --ctx %d", N, CTX);
    /* -p gives the first message, stdin the rest */
    PRINT(cmd, "printf 'ok\\nso\\nwhy\\nyes\\n' | '%s' run %s -p hi --json", copse, opts);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_int_eq(split_lines(out, line, TURNS + 1), TURNS);
    const char *turns[2 * TURNS];
    int32_t held[256], tok[256];
    int n_held = 0, first = 0, first_drop = 0;   /* the first turn's drop */
    for (int t = 0; t < TURNS; t++) {
        turns[2 * t] = user[t];
        int d = atoi(json_field(line[t], "dropped_turns"));
        ck_assert_msg(d >= 0 && d % 2 == 0 && first + d < 2 * t + 1, "turn %d dropped %d", t, d);
        first += d;
        first_drop = first_drop ? first_drop : d;
        /* what is kept leaves the room; with the exchange dropped last it would not */
        int n = 2 * t + 1 - first;
        ck_assert_int_le(conversation_tokens(NULL, "be kind", turns + first, n, chat, sizeof chat, tok) + ROOM, CTX);
        if (d)
            ck_assert_int_gt(conversation_tokens(NULL, "be kind", turns + first - 2, n + 2, chat, sizeof chat, tok)
                             + ROOM, CTX);
        check_turn(line[t], NULL, "be kind", turns + first, n, N, held, &n_held, want[t], sizeof want[t]);
        turns[2 * t + 1] = want[t];
    }
    ck_assert_msg(first_drop > 0, "nothing dropped: %s", out);
    /* as text: a line on stderr among the turns' */
    PRINT(cmd, "printf 'ok\\nso\\nwhy\\nyes\\n' | '%s' run %s -p hi 2>&1 >/dev/null", copse, opts);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    char said[128];
    PRINT(said, "]\n[dropped the %d oldest messages to fit the context of %d tokens]\n[", first_drop, CTX);
    ck_assert_msg(strstr(out, said), "%s", out);
    /* a later message too long even alone: the first turn's reply, then the lengths */
    PRINT(cmd, "printf 'hi\\ntell me all about the numbers, the primes and the squares\\n' | '%s' run %s 2>&1",
          copse, opts);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    PRINT(said, "; the context holds %d (raise --ctx)", CTX);
    ck_assert_msg(strstr(out, "new tokens (0 kept)") && strstr(out, said), "%s", out);
}
END_TEST

START_TEST(run_greedy_json)
{
    const char *copse = tu_copse_bin("run_greedy_json");
    if (!copse)
        return;
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' run -m " MODEL " -p 'hello world' -n 12 --temp 0 -t 1 --json", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);

    int32_t gen[12];
    int n = greedy("hello world", COPSE_TOK_ADD_SPECIAL, 12, gen);
    char text[1024];
    int len = greedy_text(gen, n, text, sizeof text);
    /* the text field holds exactly the greedy continuation */
    char got[1200];
    int got_len = json_unescape(json_field(out, "text"), got, sizeof got);
    ck_assert_int_eq(got_len, len);
    ck_assert_msg(!memcmp(got, text, (size_t)len), "copse run gave '%s', the library '%s'", got, text);
    ck_assert_int_eq(atoi(json_field(out, "generated_tokens")), n);
}
END_TEST

/* --chat: the prompt the command decodes is the library's chat prompt,
** tokenized with its markers special; the reply is printed alone (the
** tiny model has no chat template: copse-math's format, or the one named). */
START_TEST(run_chat)
{
    const char *copse = tu_copse_bin("run_chat");
    if (!copse)
        return;
    static const char *const names[2] = { NULL, "chatml" };
    for (int k = 0; k < 2; k++) {
        copse_model *m;
        copse_error e;
        char chat[256], cmd[2048], out[8192], text[1024];
        ck_assert_int_eq(copse_model_load(MODEL, NULL, &m, &e), COPSE_OK);
        int cn = copse_chat_prompt(m, names[k], "Be brief.", "hi there", chat, sizeof chat, &e);
        copse_model_free(m);
        ck_assert_msg(cn > 8 && cn < (int)sizeof chat, "%d: %s", cn, e.msg);
        int32_t gen[12];
        int n = greedy(chat, COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL, 12, gen);
        int len = greedy_text(gen, n, text, sizeof text);

        const char *opts = k ? "--template chatml --system 'Be brief.' -n 12 --temp 0 -t 1"
                             : "--chat --system 'Be brief.' -n 12 --temp 0 -t 1";
        PRINT(cmd, "'%s' run -m " MODEL " %s -p 'hi there' --json", copse, opts);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        char got[1200], lines[8192];
        ck_assert_int_eq(json_unescape(json_field(out, "text"), got, sizeof got), len);
        ck_assert_msg(!memcmp(got, text, (size_t)len), "copse run --chat gave '%s', the library '%s'", got, text);
        ck_assert_int_eq(json_unescape(json_field(out, "prompt"), got, sizeof got), 8);
        ck_assert_str_eq(got, "hi there");
        ck_assert_int_eq(atoi(json_field(out, "generated_tokens")), n);
        /* --lines: each line a user's message, its JSON the lone run's */
        PRINT(cmd, "printf 'hi there\\nhi there\\n' | '%s' run -m " MODEL " %s --lines --json 2>/dev/null", copse,
              opts);
        ck_assert_int_eq(tu_run(cmd, lines, sizeof lines), 0);
        char *t = strstr(out, ",\"load_s\""), *line[3];
        ck_assert_ptr_nonnull(t);
        strcpy(t, "}");
        ck_assert_int_eq(split_lines(lines, line, 3), 2);
        ck_assert_str_eq(line[0], out);
        ck_assert_str_eq(line[1], out);

        PRINT(cmd, "'%s' run -m " MODEL " %s -p 'hi there' 2>/dev/null", copse, opts);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        ck_assert_int_eq((int)strlen(out), len + 1);
        ck_assert_msg(!memcmp(out, text, (size_t)len) && out[len] == '\n', "streamed '%s', the library '%s'",
                      out, text);
        PRINT(cmd, "printf 'hi there\\n' | '%s' run -m " MODEL " %s --lines 2>/dev/null", copse, opts);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        ck_assert_msg((int)strlen(out) == len + 2 && !memcmp(out, text, (size_t)len) && !strcmp(out + len, "\n\n"),
                      "--lines printed '%s', the library '%s'", out, text);
    }
    char cmd[2048], out[4096];
    PRINT(cmd, "'%s' run -m " MODEL " --template alpaca -p hi 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "unknown chat template 'alpaca'"), "%s", out);
}
END_TEST

/* copse info: the file's tensor types counted, in text and JSON, and the
** memory the weights take (every matrix 256 wide as int8 blocks of 32:
** 32 + 2 bytes a block). */
START_TEST(info_describes_model)
{
    const char *copse = tu_copse_bin("info_describes_model");
    if (!copse)
        return;
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' info -m tests/data/models/tiny-llama-blocks.gguf 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "tensors     F32 5, Q4_0 2, Q4_1 2, Q5_0 2, Q5_1 2, Q2_K 2, Q3_K 1, Q4_K 1, Q5_K 1, "
                              "Q6_K 1, IQ4_NL 1, IQ4_XS 1\nchat        copse-math\n")
                  && strstr(out, "llama \"copse-random-tiny-llama\"")
                  && strstr(out, ", of the 15 matrices 2 2-bit, 1 3-bit, 6 4-bit, 5 5-bit and 1 6-bit as in the file: 0.5 MiB")
                  /* K and V, 2 layers, 128 wide (2 heads of 64), 2 bytes: 1 KiB a position, 64 KiB for 64 */
                  && strstr(out, "\nkv cache    1.0 KiB a position in f16, 2.0 in f32; 0.1 MiB for the trained "
                                 "context of 64\n"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' info -m tests/data/models/tiny-llama-blocks.gguf --json 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    /* q 256x256, k, v 128x256 each, o 256x256, gate, up, down 256x256, per layer; output 320x256;
    ** blocks of 34 bytes, except the 4-bit output (Q4_1), layer 0's gate (Q4_K) and layer 1's
    ** o (Q4_1): blocks of 16 bytes of nibbles and 4 of fp16 factors, 8 bytes of f32 factors
    ** per 8 blocks; the 5-bit k and up of layer 0 (Q5_1, Q5_K) and up of layer 1 (Q5_1): 4
    ** bytes more a block, of fifth bits; the coded v, k and q of layer 1 (Q4_0, IQ4_XS, IQ4_NL): 16
    ** bytes of codes and an fp16 scale a block; the coded q of layer 0 and gate of layer
    ** 1 (Q5_0): 4 bytes more a block; the 6-bit down of layer 0 (Q6_K): 24 bytes of
    ** quants and 4 of fp16 factors a block, 8 of f32 factors per 8 blocks; the 3-bit o
    ** of layer 0 (Q3_K): 16 bytes of quants, laid out as 4-bit ones; and the 2-bit v of
    ** layer 0 and down of layer 1 (Q2_K): 8 bytes of quants and 2 factor bytes a block,
    ** 8 of f32 factors per 8 blocks */
    long rows = 2 * (256 + 128 + 128 + 256 + 3 * 256) + 320, rows4 = 320 + 256 + 256 + 256;
    long rows5 = 128 + 256 + 256, rows4c = 128 + 128 + 256, rows5c = 256 + 256, rows6 = 256;
    long rows2 = 128 + 256;
    long bytes = (rows - rows4 - rows5 - rows4c - rows5c - rows6 - rows2) * (256 / 32) * 34
               + rows4 * ((256 / 32) * 20 + 8) + rows5 * ((256 / 32) * 24 + 8)
               + rows4c * (256 / 32) * 18 + rows5c * (256 / 32) * 22 + rows6 * ((256 / 32) * 28 + 8)
               + rows2 * ((256 / 32) * 10 + 8);
    char want[200];
    snprintf(want, sizeof want, "\"matrices\": 15, \"matrices_2bit\": 2, \"matrices_3bit\": 1, "
             "\"matrices_4bit\": 6, \"matrices_5bit\": 5, \"matrices_6bit\": 1, \"weight_bytes\": %ld,",
             bytes);
    ck_assert_msg(strstr(out, "\"tensor_types\": {\"F32\": 5, \"Q4_0\": 2,") && strstr(out, want) &&
                  strstr(out, "}, \"chat_format\": \"copse-math\", \"weights\"") &&
                  strstr(out, "\"n_head_kv\": 2,") && strstr(out, "\"weights\": \"int8\"") &&
                  strstr(out, "\"n_local_layers\": 0, \"sliding_window\": 0,") &&
                  strstr(out, "\"kv_bytes_per_token\": 1024,"), "%s (want %s)", out, want);
    /* --weights int8: every matrix in blocks of 34 */
    snprintf(cmd, sizeof cmd, "'%s' info -m tests/data/models/tiny-llama-blocks.gguf --weights int8 --json 2>&1",
             copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    snprintf(want, sizeof want, "\"matrices\": 15, \"matrices_2bit\": 0, \"matrices_3bit\": 0, "
             "\"matrices_4bit\": 0, \"matrices_5bit\": 0, \"matrices_6bit\": 0, \"weight_bytes\": %ld,",
             rows * (256 / 32) * 34);
    ck_assert_msg(strstr(out, want), "%s (want %s)", out, want);
    /* Gemma 3's local layers: 5 of 6 by the default pattern */
    snprintf(cmd, sizeof cmd, "'%s' info -m tests/data/models/tiny-gemma3.gguf 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "window      5 of the 6 layers attend to the last 11 positions only\n"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' info -m tests/data/models/tiny-gemma3.gguf --json 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\"n_local_layers\": 5, \"sliding_window\": 11,"), "%s", out);
    /* Granite's constants, Gemma 2's caps (and its embedding scale, sqrt(64)) */
    snprintf(cmd, sizeof cmd, "'%s' info -m tests/data/models/tiny-granite.gguf 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "scales      embedding x12, sublayer outputs x0.22, scores x0.75, logits x0.125\n") &&
                  !strstr(out, "soft caps"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' info -m tests/data/models/tiny-gemma2.gguf --json 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\"attn_softcap\": 1.5, \"final_softcap\": 6, \"embd_scale\": 8, "
                              "\"residual_scale\": 1, \"logit_scale\": 1,"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' info 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "'%s' info -m " MODEL " --weights f16 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--weights takes auto, int8 or f32"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' info -m /nonexistent.gguf 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
}
END_TEST

START_TEST(run_errors)
{
    const char *copse = tu_copse_bin("run_errors");
    if (!copse)
        return;
    char cmd[8192], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' run -m " MODEL " -p hi --top-p 2 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--top-p"));
    snprintf(cmd, sizeof cmd, "'%s' run -m " MODEL " -p hi --frobnicate 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "'%s' run -m /nonexistent.gguf -p hi 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "/nonexistent.gguf"));
    snprintf(cmd, sizeof cmd, "'%s' run -m tests/data/models/README.md -p hi 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "GGUF"));
    /* the tiny model's context is 64 positions */
    char prompt[4000] = "";
    for (int i = 0; i < 100; i++)
        strcat(prompt, "word ");
    snprintf(cmd, sizeof cmd, "'%s' run -m " MODEL " -p '%s' 2>&1", copse, prompt);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "context holds 64"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' run --help", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "--min-p"));
}
END_TEST

/* --kv-mem and --kv-f32 reach the context: the tiny model's KV block of
** 16 positions is 8 KiB in f16, 16 KiB in f32. */
START_TEST(run_kv_options)
{
    const char *copse = tu_copse_bin("run_kv_options");
    if (!copse)
        return;
    char cmd[2048], out[4096], want[4096];
    const char *run = "run -m " MODEL " -p 'word word word word' -n 30 --temp 0 -t 1 --json";
    snprintf(cmd, sizeof cmd, "'%s' %s", copse, run);
    ck_assert_int_eq(tu_run(cmd, want, sizeof want), 0);
    snprintf(cmd, sizeof cmd, "'%s' %s --kv-mem 1M", copse, run);   /* room to spare: same text */
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    char got_text[1024], want_text[1024];
    json_unescape(json_field(out, "text"), got_text, sizeof got_text);
    json_unescape(json_field(want, "text"), want_text, sizeof want_text);
    ck_assert_str_eq(got_text, want_text);
    /* 19 prompt tokens and 30 more need 4 blocks */
    static const struct { const char *opts, *msg; } full[] = {
        { "--kv-mem 16K", "0 of 2 are free" },
        { "--kv-mem 16k --kv-f32", "1 of 1 are free" },
        { "--kv-mem 32768 --kv-f32", "0 of 2 are free" },
    };
    for (size_t i = 0; i < sizeof full / sizeof *full; i++) {
        snprintf(cmd, sizeof cmd, "'%s' %s %s 2>&1", copse, run, full[i].opts);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
        ck_assert_msg(strstr(out, "KV pool is full") && strstr(out, full[i].msg), "%s: %s", full[i].opts, out);
    }
}
END_TEST

static int count(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
        n++;
    return n;
}

/* Every command that makes contexts takes --kv-mem and --kv-f32 alike and
** lists them once in its help. Each one's first decode needs 2 blocks: an
** f16 block is 8 KiB, an f32 one 16 KiB. */
START_TEST(kv_options_every_command)
{
    const char *copse = tu_copse_bin("kv_options_every_command");
    if (!copse)
        return;
    char data[1024], table[1024], cmds[5][1024], cmd[2048], out[4096];
    PRINT(data, "%s/test_cli_kv.jsonl", tu_build_dir());
    PRINT(table, "%s/test_cli_kv.table", tu_build_dir());
    FILE *f = fopen(data, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"question\":\"1+1?\",\"answer\":\"2\",\"level\":1}\n", f);
    fclose(f);
    const char *search = "-m " MODEL " -t 1 --prm " MODEL " --prm-kind labels --n 2 --max-tokens 40";
    PRINT(cmds[0], "run -m " MODEL " -t 1 -p 'word word word word'");
    PRINT(cmds[1], "perplexity -m " MODEL " -t 1 -f tests/data/math-problems.txt --ctx 32 --chunks 1");
    PRINT(cmds[2], "solve %s '1+1?'", search);
    PRINT(cmds[3], "tune %s -q --data '%s' -o '%s' --budgets 2", search, data, table);
    PRINT(cmds[4], "eval %s -q --data '%s' --budgets 2 --run-budgets 2 --runs none", search, data);
    static const struct { const char *opts, *msg; } fail[] = {
        { "--kv-mem 1K", "less than one KV block (8192 bytes" },
        { "--kv-mem 12K --kv-f32", "less than one KV block (16384 bytes" },
        { "--kv-mem 8K", "KV pool is full: the batch needs 2 more blocks of 16 positions, 1 of 1 are free" },
        { "--kv-mem 16K --kv-f32", "KV pool is full: the batch needs 2 more blocks of 16 positions, 1 of 1 are free" },
    };
    static const char *const bad[] = { "12X", "0", "-1", "2T", "1025G", "16KB", "K", "" };
    for (int c = 0; c < 5; c++) {
        for (size_t i = 0; i < sizeof fail / sizeof *fail; i++) {
            PRINT(cmd, "'%s' %s %s 2>&1", copse, cmds[c], fail[i].opts);
            ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
            ck_assert_msg(strstr(out, fail[i].msg), "%s %s: %s", cmds[c], fail[i].opts, out);
        }
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            PRINT(cmd, "'%s' %s --kv-mem '%s' 2>&1", copse, cmds[c], bad[i]);
            ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
            ck_assert_msg(strstr(out, "--kv-mem takes a byte count"), "%s --kv-mem '%s': %s", cmds[c], bad[i], out);
        }
        PRINT(cmd, "'%s' %.*s --help", copse, (int)strcspn(cmds[c], " "), cmds[c]);
        char help[16384];
        ck_assert_int_eq(tu_run(cmd, help, sizeof help), 0);
        ck_assert_msg(count(help, "--kv-mem BYTES") == 1 && count(help, "--kv-mem") == 1 &&
                      count(help, "--kv-f32") == 1, "%s", cmd);
    }
    /* with room, the same perplexity as without the options */
    char want[4096];
    PRINT(cmd, "'%s' %s --json", copse, cmds[1]);
    ck_assert_int_eq(tu_run(cmd, want, sizeof want), 0);
    PRINT(cmd, "'%s' %s --json --kv-mem 16K", copse, cmds[1]);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_double_eq(atof(json_field(out, "ppl")), atof(json_field(want, "ppl")));
    unlink(data);
    unlink(table);
}
END_TEST

/* llama.cpp's definition, recomputed through the library: windows of ctx
** tokens, BOS first when the model adds one, the second half scored. */
static double reference_ppl(const char *text, int n_ctx, int *scored)
{
    copse_ctx *ctx;
    copse_model *m = load(&ctx);
    int n = copse_tokenize(m, text, strlen(text), 0, NULL, 0);
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    ck_assert_int_eq(copse_tokenize(m, text, strlen(text), 0, tok, n), n);
    int add_bos = copse_tokenize(m, "", 0, COPSE_TOK_ADD_SPECIAL, NULL, 0) > 0;
    double nll = 0;
    *scored = 0;
    for (int c = 0; c < n / n_ctx; c++) {
        int32_t w[64];
        memcpy(w, tok + c * n_ctx, (size_t)n_ctx * sizeof *w);
        if (add_bos)
            w[0] = copse_token_bos(m);
        copse_seq *s = copse_seq_new(ctx);
        copse_error e;
        ck_assert_int_eq(copse_decode_tokens(ctx, s, w, n_ctx, 1, &e), COPSE_OK);
        for (int j = n_ctx / 2; j < n_ctx - 1; j++) {
            const float *l = copse_get_logits(ctx, j);
            double mx = l[0], z = 0;
            for (int i = 1; i < copse_n_vocab(m); i++)
                mx = fmax(mx, l[i]);
            for (int i = 0; i < copse_n_vocab(m); i++)
                z += exp(l[i] - mx);
            nll += log(z) + mx - l[w[j + 1]];
            ++*scored;
        }
        copse_seq_free(s);
    }
    free(tok);
    copse_ctx_free(ctx);
    copse_model_free(m);
    return exp(nll / *scored);
}

/* The question sets of copse eval and tune: the file's UTF-8 comes through
** byte for byte beside the escapes (its bytes were once read as Latin-1
** code points: mojibake, written past the buffer on long lines), and a
** file cut short is an error. */
START_TEST(question_set_reader)
{
    char path[512], question[1024] = "", line[2048];
    for (int i = 0; i < 60; i++)
        strcat(question, "\xcf\x80\xe6\x95\xb0");          /* π数: more bytes than the line's rest */
    PRINT(path, "%s/test_cli_utf8.jsonl", tu_build_dir());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    PRINT(line, "{\"question\": \"%s\", \"answer\": \"\xe2\x88\x9a" "2\"}\n"
                "{\"question\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\", \"answer\": 3, \"level\": 2}\n",
          question);
    fputs(line, f);
    fclose(f);
    int n;
    cli_item *items = cli_items_read("test", path, &n);
    ck_assert_ptr_nonnull(items);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(items[0].question, question);
    ck_assert_str_eq(items[0].answer, "\xe2\x88\x9a" "2");   /* √2 */
    ck_assert_str_eq(items[1].question, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"");
    ck_assert_str_eq(items[1].answer, "3");
    ck_assert_int_eq(items[1].level, 2);
    ck_assert_int_eq(items[1].line, 2);
    cli_items_free(items, n);

    /* a file that ends inside an object is refused (the reader once
    ** stepped past the end there; fuzz_files, whose buffer is exactly the
    ** file, caught it: cli_read_file's spare room hides it here) */
    static const char *const cut[] = { "{\"question\"", "{\"question\": \"Q\", \"x\": [1",
                                       "{\"question\": \"Q\", \"x\": {\"a\"" };
    int saved = dup(2), null = open("/dev/null", O_WRONLY);   /* the reader's messages */
    ck_assert(saved >= 0 && null >= 0);
    for (int i = 0; i < 3; i++) {
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(cut[i], f);
        fclose(f);
        dup2(null, 2);
        items = cli_items_read("test", path, &n);
        dup2(saved, 2);
        ck_assert_msg(items == NULL && n == 0, "%s", cut[i]);
    }
    close(null);
    close(saved);
    unlink(path);
}
END_TEST

START_TEST(perplexity_matches_definition)
{
    const char *copse = tu_copse_bin("perplexity_matches_definition");
    if (!copse)
        return;
    char path[1024], cmd[2048], out[4096];
    snprintf(path, sizeof path, "%s/test_cli_ppl.txt", tu_build_dir());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    const char *text = "the quick brown fox jumps over the lazy dog and runs far away. ";
    for (int i = 0; i < 12; i++)
        fputs(text, f);
    fclose(f);
    char *all = tu_read_file(path, NULL);
    int scored;
    double want = reference_ppl(all, 32, &scored);
    free(all);

    snprintf(cmd, sizeof cmd, "'%s' perplexity -m " MODEL " -f '%s' --ctx 32 -t 1 --json", copse, path);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    double got = atof(json_field(out, "ppl"));
    ck_assert_msg(fabs(got - want) <= 1e-4 * want, "copse perplexity %f, reference %f", got, want);
    ck_assert_int_eq(atoi(json_field(out, "tokens_scored")), scored);

    /* a text shorter than two windows */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("hello world", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' perplexity -m " MODEL " -f '%s' --ctx 32 2>&1", copse, path);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "at least 2 x ctx = 64"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' perplexity -m " MODEL " 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    unlink(path);
}
END_TEST

/* Cut a JSON object where key begins: a solve's at its wall time (all
** that a seed fixes), a run's at its timings. */
static void cut_at(char *json, const char *key)
{
    char *w = strstr(json, key);
    ck_assert_ptr_nonnull(w);
    *w = '\0';
}

/* solve --lines: each question's JSON line is what solving it alone
** prints, with the default 8 questions at once and with two (so that a
** finished question's place goes to the next mid-run); an empty line is
** skipped; a question too long for the context gets an error line and
** the next one is still answered (exit status 1); the text form names
** each question; from a pipe each question is answered before the next
** arrives; a question on the command line, or --parallel without
** --lines, is a usage error. */
START_TEST(solve_lines)
{
    const char *copse = tu_copse_bin("solve_lines");
    if (!copse)
        return;
    static const char *const qs[] = { "1+1?", "", "LONG", "2+2?", "3 * 4?", "1+1?", "5-2?" };
    enum { NQ = sizeof qs / sizeof *qs };
    char data[1024], cmd[4096], out[65536], alone[NQ][16384];
    PRINT(data, "%s/test_cli_lines.txt", tu_build_dir());
    FILE *f = fopen(data, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < NQ; i++) {
        if (!strcmp(qs[i], "LONG"))
            for (int k = 0; k < 40; k++)
                fputs("word ", f);
        else
            fputs(qs[i], f);
        fputc('\n', f);
    }
    fclose(f);
    const char *opts = "-m " MODEL " -t 1 --prm " MODEL " --prm-kind labels --n 2 --max-tokens 20 --ctx 32";
    for (int q = 0; q < NQ; q++) {
        if (!*qs[q] || !strcmp(qs[q], "LONG"))
            continue;
        PRINT(cmd, "'%s' solve %s --json '%s'", copse, opts, qs[q]);
        ck_assert_int_eq(tu_run(cmd, alone[q], sizeof alone[q]), 0);
        cut_at(alone[q], "\"wall_s\"");
    }
    for (int par = 0; par < 2; par++) {
        PRINT(cmd, "'%s' solve %s --json --lines %s -f '%s' 2>/dev/null", copse, opts, par ? "--parallel 2" : "",
              data);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
        char *line[NQ + 1] = { 0 };
        ck_assert_int_eq(split_lines(out, line, NQ + 1), NQ - 1);
        for (int q = 0, l = 0; q < NQ; q++) {
            if (!*qs[q])
                continue;
            if (!strcmp(qs[q], "LONG")) {
                ck_assert_msg(strstr(line[l], "{\"question\":\"word word") == line[l] && strstr(line[l], "\"error\":\"")
                              && strstr(line[l], "context"), "%s", line[l]);
            } else {
                cut_at(line[l], "\"wall_s\"");
                ck_assert_str_eq(line[l], alone[q]);
            }
            l++;
        }
    }

    PRINT(cmd, "printf '2+2?\\n' | '%s' solve %s --lines", copse, opts);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "question: 2+2?\nanswer: ") == out, "%s", out);
    /* from a pipe, an answer comes before the next question does: a client
    ** that waits for it before writing more gets it */
    PRINT(cmd, "d='%s'; rm -f \"$d/pipe.out\" \"$d/pipe.ok\"; { echo '2+2?'; for i in $(seq 200); do "
          "grep -q '^answer:' \"$d/pipe.out\" 2>/dev/null && touch \"$d/pipe.ok\" && break; sleep 0.05; done; "
          "echo '3 * 4?'; } | '%s' solve %s --lines > \"$d/pipe.out\" && test -f \"$d/pipe.ok\" && "
          "grep -c '^answer:' \"$d/pipe.out\"", tu_build_dir(), copse, opts);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "2\n");
    PRINT(cmd, "'%s' solve %s --lines '1+1?' 2>&1", copse, opts);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--lines reads its questions from -f FILE or stdin"), "%s", out);
    PRINT(cmd, "'%s' solve %s --parallel 2 '1+1?' 2>&1", copse, opts);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--parallel goes with --lines"), "%s", out);
}
END_TEST

/* run --lines with two prompts going at once, so that a finished one's
** place goes to the next line mid-run, in a KV pool that holds no more
** than the two (a finished prompt's blocks must come back before the next
** line's prefill): each JSON line is the lone run's
** JSON without its timings (sampled, the default settings); the empty
** line is skipped and the prompt too long for the context gets an error
** line in its place (exit status 1); the text form prints each prompt and
** its text; -p with --lines is a usage error. */
START_TEST(run_lines)
{
    const char *copse = tu_copse_bin("run_lines");
    if (!copse)
        return;
    static const char *const ps[] = { "word word", "one two three", "word word", "", "LONG", "a b c", "word word", "x" };
    enum { NP = sizeof ps / sizeof *ps };
    char data[1024], cmd[4096], out[65536], alone[NP][4096];
    PRINT(data, "%s/test_cli_run_lines.txt", tu_build_dir());
    FILE *f = fopen(data, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < NP; i++) {
        if (!strcmp(ps[i], "LONG"))
            for (int k = 0; k < 40; k++)
                fputs("word ", f);
        else
            fputs(ps[i], f);
        fputc('\n', f);
    }
    fclose(f);
    const char *opts = "-m " MODEL " -t 1 -n 12 --ctx 48";
    for (int i = 0; i < NP; i++) {
        if (!*ps[i] || !strcmp(ps[i], "LONG"))
            continue;
        PRINT(cmd, "'%s' run %s --json -p '%s'", copse, opts, ps[i]);
        ck_assert_int_eq(tu_run(cmd, alone[i], sizeof alone[i]), 0);
        char *t = strstr(alone[i], ",\"load_s\"");
        ck_assert_ptr_nonnull(t);
        strcpy(t, "}");
    }
    PRINT(cmd, "'%s' run %s --json --lines --parallel 2 -f '%s' 2>/dev/null", copse, opts, data);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 1);
    char *line[8];
    ck_assert_int_eq(split_lines(out, line, 8), NP - 1);
    for (int i = 0, l = 0; i < NP; i++) {
        if (!*ps[i])
            continue;
        if (!strcmp(ps[i], "LONG"))
            ck_assert_msg(strstr(line[l], "{\"prompt\":\"word word word") == line[l] &&
                          strstr(line[l], "tokens; the context holds 48 (raise --ctx)\"}"), "%s", line[l]);
        else
            ck_assert_str_eq(line[l], alone[i]);
        l++;
    }
    PRINT(cmd, "printf 'a b\\n' | '%s' run %s --lines 2>/dev/null", copse, opts);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "a b") == out && strstr(out, "\n\n"), "%s", out);
    PRINT(cmd, "'%s' run %s --lines -p 'a b' 2>&1", copse, opts);
    ck_assert_int_eq(tu_run(cmd, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "--lines reads its prompts from -f FILE or stdin"), "%s", out);
}
END_TEST

/* run --draft: speculative greedy decoding gives exactly the plain run's
** text and counts (its JSON up to the timings, and its stream), K of 1, 3
** and 8: the target drafting for itself keeps every proposal; the smaller
** math policy drafting for the larger one has some refused. Each target
** pass is followed by the proposals kept and one token of its own (one
** fewer at an end of text kept, or after the pass that fills the
** context): runs that stop at the end of text, at -n and at a full
** context. */
START_TEST(run_draft)
{
    const char *copse = tu_copse_bin("run_draft");
    if (!copse)
        return;
    static const char q[] = "A potter makes 2 cups every week for 8 weeks. The shop opens at 9 in the morning. 6 cups "
                            "are sold. Then 7 of them are given away. Last year there were 5 workers. Then 1 of them "
                            "is given away. The potter keeps 1 cup and sells the rest. A helper adds 477 more cups. "
                            "Each tray weighs 2 pounds. 216 more cups are bought from a neighbour. How many cups are "
                            "there now?";
    static const struct { const char *target, *draft, *opts, *stop; int same; const char *prompt; } cases[] = {
        { "models/math-policy-large-f16.gguf", "models/math-policy-large-f16.gguf", "--chat -n 200", "eog", 1, q },
        { "models/math-policy-large-f16.gguf", "models/math-policy-f16.gguf", "--chat -n 200", "eog", 0, q },
        { "models/math-policy-large-f16.gguf", "models/math-policy-large-f16.gguf", "--chat -n 200 --ctx 150",
          "context", 1, q },
        { MODEL, MODEL, "-n 40", "length", 1, "the quick brown fox jumps" },
    };
    static const int ks[] = { 1, 3, 8 };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char cmd[4096], plain[8192], out[8192], text[8192], stop[32];
        const char *base = "-t 1 --temp 0", *p = cases[c].prompt;
        PRINT(cmd, "'%s' run -m %s %s %s -p '%s' --json", copse, cases[c].target, cases[c].opts, base, p);
        ck_assert_int_eq(tu_run(cmd, plain, sizeof plain), 0);
        cut_at(plain, ",\"load_s\"");
        PRINT(stop, "\"stop\":\"%s\"", cases[c].stop);
        ck_assert_msg(strstr(plain, stop), "%s", plain);
        int n_gen = atoi(json_field(plain, "generated_tokens"));
        long long refused = 0;
        for (int i = 0; i < 3; i++) {
            PRINT(cmd, "'%s' run -m %s %s %s -p '%s' --json --draft %s --draft-n %d", copse, cases[c].target,
                  cases[c].opts, base, p, cases[c].draft, ks[i]);
            ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
            long long drafted = atoll(json_field(out, "draft_tokens")), kept = atoll(json_field(out, "draft_accepted"));
            long long passes = atoll(json_field(out, "target_passes"));
            ck_assert_msg(!cases[c].same || kept == drafted, "case %zu, K %d: %lld of %lld kept", c, ks[i], kept,
                          drafted);
            refused += drafted - kept;
            ck_assert_msg(kept > 0 && drafted <= ks[i] * passes, "case %zu, K %d: %lld of %lld kept in %lld passes",
                          c, ks[i], kept, drafted, passes);
            ck_assert_msg(passes + kept == n_gen - 1 || passes + kept == n_gen, "case %zu, K %d: %lld passes, "
                          "%lld kept, %d tokens", c, ks[i], passes, kept, n_gen);
            cut_at(out, ",\"load_s\"");
            ck_assert_str_eq(out, plain);
        }
        ck_assert_msg(cases[c].same ? refused == 0 : refused > 0, "case %zu: %lld refused", c, refused);
        /* streamed: the same text, the counts on stderr */
        PRINT(cmd, "'%s' run -m %s %s %s -p '%s' 2>/dev/null", copse, cases[c].target, cases[c].opts, base, p);
        ck_assert_int_eq(tu_run(cmd, text, sizeof text), 0);
        PRINT(cmd, "'%s' run -m %s %s %s -p '%s' --draft %s 2>&1 >/dev/null", copse, cases[c].target,
              cases[c].opts, base, p, cases[c].draft);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        ck_assert_msg(strstr(out, " proposed, ") && strstr(out, " target passes\n"), "%s", out);
        PRINT(cmd, "'%s' run -m %s %s %s -p '%s' --draft %s 2>/dev/null", copse, cases[c].target,
              cases[c].opts, base, p, cases[c].draft);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        ck_assert_str_eq(out, text);
    }
}
END_TEST

/* run --draft's refusals: a draft of another vocabulary (its size, its
** special tokens), a file that is no model, --draft-n out of range or
** alone, --draft with --lines or -i; a KV pool too small fails as plain
** runs fail. */
START_TEST(run_draft_errors)
{
    const char *copse = tu_copse_bin("run_draft_errors");
    if (!copse)
        return;
    static const struct { const char *opts, *msg; int rc; } cases[] = {
        { "--draft models/math-policy-f16.gguf", "the draft model models/math-policy-f16.gguf has a vocabulary of "
          "1024 tokens, the target 320: a draft needs the target's vocabulary", 1 },
        { "--draft tests/data/models/tiny-qwen2.gguf", "the draft model tests/data/models/tiny-qwen2.gguf has other "
          "BOS or EOS tokens than the target", 1 },
        { "--draft tests/data/nothing.gguf", "tests/data/nothing.gguf", 1 },
        { "--draft " MODEL " --draft-n 0", "--draft-n takes a whole number from 1 to 32, not '0'", 2 },
        { "--draft " MODEL " --draft-n 33", "--draft-n takes a whole number from 1 to 32, not '33'", 2 },
        { "--draft-n 2", "--draft-n goes with --draft", 2 },
        { "--draft " MODEL " --lines -f /dev/null", "--draft goes with one prompt, not --lines or --interactive", 2 },
        { "--draft " MODEL " -i", "--draft goes with one prompt, not --lines or --interactive", 2 },
        { "--draft " MODEL " --kv-mem 16K -n 40 --draft-n 8", "the KV pool is full", 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cmd[2048], out[4096];
        PRINT(cmd, "'%s' run -m " MODEL " -t 1 --temp 0 %s %s 2>&1 >/dev/null", copse,
              strstr(cases[i].opts, "--lines") ? "" : "-p 'word word word word'", cases[i].opts);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), cases[i].rc);
        ck_assert_msg(strstr(out, cases[i].msg), "%s: %s", cases[i].opts, out);
    }
}
END_TEST


/* Every token's distribution under p (a sampler's), after the first tokens
** of path (n of them, the prompt's sequence seq followed by them): the
** distributions of the next depth tokens, each weighted by its path's
** probability w, are added to want[0..depth); paths through an end of
** text go no further. */
static void next_tokens(copse_ctx *ctx, const copse_model *m, copse_sampler *p, copse_seq *seq, const float *logits,
                        double w, int depth, double *want)
{
    int n = copse_n_vocab(m);
    float *probs = malloc((size_t)n * sizeof *probs);
    ck_assert_int_eq(copse_sample_probs(p, logits, n, probs), COPSE_OK);
    for (int32_t t = 0; t < n; t++) {
        if (!(probs[t] > 0))
            continue;
        want[t] += w * probs[t];
        if (depth == 1 || copse_token_is_eog(m, t))
            continue;
        copse_seq *s = copse_seq_fork(seq);
        copse_error e;
        ck_assert_int_eq(copse_decode_tokens(ctx, s, &t, 1, 0, &e), COPSE_OK);
        next_tokens(ctx, m, p, s, copse_get_logits(ctx, 0), w * probs[t], depth - 1, want + n);
        copse_seq_free(s);
    }
    free(probs);
}

/* Speculative sampling keeps the target's distribution: over many seeds,
** the second and third tokens of a generation (the first two a round's
** proposals decide; the first token comes from the prompt's logits) are
** drawn as the target alone draws them, computed exactly from
** copse_sample_probs along every path, within the sampling noise (total
** variation below half the sum of each token's standard deviation, plus
** 0.02). The draft is the target sampling at a lower temperature: its
** proposals, often kept but not always, follow another distribution, as a
** smaller model's would, and one the test tells from the target's. */
START_TEST(draft_sampling_keeps_distribution)
{
    enum { TRIALS = 3000 };
    copse_ctx *ctx;
    copse_model *m = load(&ctx);
    int n = copse_n_vocab(m);
    int32_t prompt[16], gen[3];
    int np = copse_tokenize(m, "hello", 5, COPSE_TOK_ADD_SPECIAL, prompt, 16);
    copse_seq *seq = copse_seq_new(ctx);
    copse_error e;
    ck_assert_int_eq(copse_decode_tokens(ctx, seq, prompt, np, 0, &e), COPSE_OK);
    float *first = malloc((size_t)n * sizeof *first);
    memcpy(first, copse_get_logits(ctx, np - 1), (size_t)n * sizeof *first);
    copse_sampler_params sp = { .temp = 1.5f, .top_k = 8, .top_p = 1, .min_p = 0 };
    copse_sampler *p = copse_sampler_new(&sp);
    double *want = calloc(3 * (size_t)n, sizeof *want), *got = calloc(3 * (size_t)n, sizeof *got);
    next_tokens(ctx, m, p, seq, first, 1, 3, want);
    copse_sampler_free(p);

    cli_model_opts o = { .threads = 1 };
    cli_draft d = { .k = 3 };
    ck_assert_int_eq(cli_draft_open("test", &o, MODEL, m, copse_ctx_n_ctx(ctx), &sp, &d), 0);
    ck_assert_int_eq(copse_decode_tokens(d.ctx, d.seq, prompt, np, 0, &e), COPSE_OK);
    for (int i = 0; i < TRIALS; i++) {
        copse_sampler_params tsp = sp, dsp = sp;   /* seeds as copse run --seed i gives them */
        tsp.seed = (uint64_t)i;
        dsp.seed = ~tsp.seed;
        dsp.temp = 0.6f;
        copse_sampler *smp = copse_sampler_new(&tsp);
        copse_sampler_free(d.smp);
        d.smp = copse_sampler_new(&dsp);
        int eog, k = cli_generate("test", ctx, seq, smp, m, first, 3, &d, gen, &eog, NULL);
        for (int j = 0; j < k; j++)
            got[(size_t)j * (size_t)n + (size_t)gen[j]]++;
        copse_sampler_free(smp);
        ck_assert_int_eq(copse_seq_truncate(seq, np), COPSE_OK);
        ck_assert_int_eq(copse_seq_truncate(d.seq, np), COPSE_OK);
    }
    ck_assert_msg(d.accepted > 0 && d.accepted < d.drafted, "%lld of %lld kept", d.accepted, d.drafted);
    for (int j = 1; j < 3; j++) {
        double tw = 0, tg = 0, tv = 0, bound = 0.02;
        for (int t = 0; t < n; t++) {
            tw += want[j * n + t];
            tg += got[j * n + t];
        }
        for (int t = 0; t < n; t++) {
            double w = want[j * n + t] / tw;
            tv += fabs(got[j * n + t] / tg - w) / 2;
            bound += sqrt(w * (1 - w) / tg) / 2;
        }
        ck_assert_msg(tv < bound, "token %d: total variation %g from the target's, bound %g", j + 1, tv, bound);
    }
    cli_draft_close(&d);
    free(first);
    free(want);
    free(got);
    copse_ctx_free(ctx);
    copse_model_free(m);
}
END_TEST

/* run --draft, sampling (the default settings): the target drafting for
** itself keeps every proposal; another model of the vocabulary has some
** refused; a seed gives the same run again. */
START_TEST(run_draft_sampled)
{
    const char *copse = tu_copse_bin("run_draft_sampled");
    if (!copse)
        return;
    static const char *const drafts[2] = { MODEL, "tests/data/models/tiny-llama-gqa-untied.gguf" };
    for (int i = 0; i < 2; i++) {
        char cmd[2048], out[8192], again[8192];
        PRINT(cmd, "'%s' run -m " MODEL " -t 1 -p 'the quick brown fox' -n 30 --seed 3 --json --draft %s --draft-n 3",
              copse, drafts[i]);
        ck_assert_int_eq(tu_run(cmd, out, sizeof out), 0);
        ck_assert_int_eq(tu_run(cmd, again, sizeof again), 0);
        long long drafted = atoll(json_field(out, "draft_tokens")), kept = atoll(json_field(out, "draft_accepted"));
        ck_assert_msg(drafted > 0 && (i ? kept < drafted : kept == drafted), "%s: %lld of %lld kept", drafts[i], kept,
                      drafted);
        cut_at(out, ",\"load_s\"");
        cut_at(again, ",\"load_s\"");
        ck_assert_str_eq(out, again);
    }
}
END_TEST

Suite *copse_suite_cli(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("run");
    tcase_add_test(tc, run_greedy_json);
    tcase_add_test(tc, run_errors);
    tcase_add_test(tc, run_chat);
    tcase_add_test(tc, run_interactive);
    tcase_add_test(tc, run_interactive_drops_turns);
    tcase_add_test(tc, info_chat_format);
    tcase_add_test(tc, info_describes_model);
    tcase_add_test(tc, run_kv_options);
    tcase_add_test(tc, kv_options_every_command);
    tcase_add_test(tc, perplexity_matches_definition);
    tcase_add_test(tc, question_set_reader);
    tcase_add_test(tc, solve_lines);
    tcase_add_test(tc, run_lines);
    tcase_add_test(tc, run_draft);
    tcase_add_test(tc, run_draft_errors);
    tcase_add_test(tc, run_draft_sampled);
    tcase_add_test(tc, draft_sampling_keeps_distribution);
    suite_add_tcase(s, tc);
    return s;
}
