/*
** copse tokenize: how a model's tokenizer cuts a text, one token per line
** as ID<TAB>'piece', or only the ids. Loads just the vocabulary, so a
** vocab-only GGUF file is enough.
*/
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *CMD = "tokenize";

static void help(void)
{
    printf("usage: copse tokenize -m MODEL.gguf [options] [TEXT]\n\n"
           "Print the tokens of TEXT, or of standard input taken exactly as it is\n"
           "(a final newline included).\n\n"
           "  -m, --model FILE   GGUF model or vocabulary file (required)\n"
           "  --ids              print only the ids, space-separated on one line\n"
           "  --json             one JSON object: n_tokens, ids and pieces (a byte\n"
           "                     that is not whole UTF-8 shows as U+FFFD)\n"
           "  --no-bos           add no BOS/EOS (by default they are added as the\n"
           "                     model's metadata says)\n"
           "  --parse-special    text such as <|im_start|> becomes its special token\n"
           "  -h, --help         this help\n");
}

/* A piece in quotes: whole characters as they are, the rest escaped, so
** every byte shows and each token stays on one line. */
static void print_piece(const char *piece, int n)
{
    const unsigned char *p = (const unsigned char *)piece;
    putchar('\'');
    for (int i = 0; i < n; ) {
        int len = (int)cli_utf8_char(p + i, (size_t)(n - i));
        if (len > 1) {
            fwrite(p + i, 1, (size_t)len, stdout);
            i += len;
            continue;
        }
        unsigned char c = p[i++];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\' || c == '\'')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('\'');
}

enum output { OUT_LINES, OUT_IDS, OUT_JSON };

/* The piece of token id in *buf, grown as needed; its length, or -1. */
static int piece_of(const copse_model *model, int32_t id, char **buf, int *cap)
{
    int len = copse_token_piece(model, id, *buf, *cap);
    if (len >= *cap) {
        char *p = malloc((size_t)len + 1);
        if (!p)
            return -1;
        free(*buf);
        *buf = p;
        *cap = len + 1;
        len = copse_token_piece(model, id, *buf, *cap);
    }
    return len < 0 || len >= *cap ? -1 : len;
}

static int print_tokens(const copse_model *model, const int32_t *tok, int n, enum output out)
{
    char *piece = NULL;
    int cap = 0, rc = 0;
    if (out == OUT_JSON) {
        printf("{\"n_tokens\": %d, \"ids\": [", n);
        for (int i = 0; i < n; i++)
            printf(i ? ", %d" : "%d", (int)tok[i]);
        printf("], \"pieces\": [");
    }
    for (int i = 0; i < n && !rc; i++) {
        if (out == OUT_IDS) {
            printf(i ? " %d" : "%d", (int)tok[i]);
            continue;
        }
        int len = piece_of(model, tok[i], &piece, &cap);
        if (len < 0) {
            rc = cli_error(CMD, "cannot show token %d", (int)tok[i]);
        } else if (out == OUT_JSON) {
            fputs(i ? ", " : "", stdout);
            cli_json_str(stdout, piece, (size_t)len);
        } else {
            printf("%d\t", (int)tok[i]);
            print_piece(piece, len);
            putchar('\n');
        }
    }
    if (out == OUT_IDS)
        putchar('\n');
    else if (out == OUT_JSON && !rc)
        printf("]}\n");
    free(piece);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    cli_model_opts mo = {0};
    unsigned flags = COPSE_TOK_ADD_SPECIAL;
    enum output out = OUT_LINES;
    int options = 1;
    const char *text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            help();
            return 0;
        }
        if (options && (!strcmp(a, "-m") || !strcmp(a, "--model"))) {
            if (i + 1 >= argc)
                return cli_usage_error(CMD, "%s needs a value", a);
            mo.model = argv[++i];
        } else if (options && !strcmp(a, "--ids")) {
            out = OUT_IDS;
        } else if (options && !strcmp(a, "--json")) {
            out = OUT_JSON;
        } else if (options && !strcmp(a, "--no-bos")) {
            flags &= ~COPSE_TOK_ADD_SPECIAL;
        } else if (options && !strcmp(a, "--parse-special")) {
            flags |= COPSE_TOK_PARSE_SPECIAL;
        } else if (options && !strcmp(a, "--")) {
            options = 0;
        } else if (options && a[0] == '-' && a[1]) {
            return cli_usage_error(CMD, "unknown option: %s", a);
        } else if (text) {
            return cli_usage_error(CMD, "one TEXT only (quote it): '%s'", a);
        } else {
            text = a;
        }
    }
    if (!mo.model)
        return cli_usage_error(CMD, "no model given (-m MODEL.gguf)");

    size_t len = text ? strlen(text) : 0;
    char *input = text ? NULL : cli_read_stdin(&len);
    if (!text && !input)
        return cli_error(CMD, "cannot read standard input");
    copse_model *model;
    int rc = cli_open_model(CMD, &mo, 1, &model, NULL);
    if (!rc) {
        int32_t *tok;
        int n = cli_tokenize(CMD, model, text ? text : input, len, flags, &tok);
        rc = n < 0 ? 1 : print_tokens(model, tok, n, out);
        if (n >= 0)
            free(tok);
        copse_model_free(model);
    }
    free(input);
    return rc;
}
