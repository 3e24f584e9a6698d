/* copse tune: build the auto strategy's table from a validation set. */
#include <stdlib.h>
#include <string.h>
#include "search_opts.h"

static const char *CMD = "tune";

static void help(void)
{
    printf("usage: copse tune -m POLICY.gguf [--prm PRM.gguf] --data FILE.jsonl -o TABLE [options]\n\n"
           "Estimate each validation question's difficulty as --strategy auto does, split the\n"
           "questions into equally large difficulty bins, run every strategy setting at every\n"
           "budget on them and write, per bin and budget, the setting that answered the most\n"
           "correctly. copse solve --strategy auto --table TABLE then follows it.\n\n"
           "  --data FILE         one JSON object per line with \"question\" and \"answer\"\n"
           "                      (a string or a number)\n"
           "  -o FILE             the table to write\n"
           "  --budgets LIST      generation budgets, comma-separated (default 4,16,64)\n"
           "  --probes N          samples that estimate difficulty (default 2)\n"
           "  --bins N            difficulty bins (default 5)\n"
           "  --limit N           use the first N questions only\n"
           "  -q, --quiet         no progress on stderr\n"
           "  -h, --help          this help\n\n"
           "and the options of copse solve that shape a search (sampling, caps, verifier):\n"
           CLI_SEARCH_OPTS_HELP);
}

typedef struct tune_opts {
    cli_search_opts s;
    const char *data, *out;
    int budgets[16], n_budgets;
    long probes, bins, limit;
    int quiet;
} tune_opts;

static int parse_budgets(const char *v, tune_opts *o)
{
    char buf[256], *save = NULL;
    long n;
    if (strlen(v) >= sizeof buf)
        return cli_usage_error(CMD, "--budgets is too long");
    strcpy(buf, v);
    o->n_budgets = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_budgets == 16)
            return cli_usage_error(CMD, "--budgets takes at most 16 budgets");
        if (cli_parse_int(CMD, "--budgets", t, 1, 65536, &n))
            return 2;
        o->budgets[o->n_budgets++] = (int)n;
    }
    return o->n_budgets ? 0 : cli_usage_error(CMD, "--budgets needs at least one budget");
}

static int more(void *state, int argc, char **argv, int *i)
{
    tune_opts *o = state;
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
        o->quiet = 1;
        return 1;
    }
    if (!v)
        return 0;
    ++*i;
    if (!strcmp(a, "--data"))
        o->data = v;
    else if (!strcmp(a, "-o"))
        o->out = v;
    else if (!strcmp(a, "--budgets"))
        return parse_budgets(v, o) ? 2 : 1;
    else if (!strcmp(a, "--probes"))
        return cli_parse_int(CMD, a, v, 1, 4096, &o->probes) ? 2 : 1;
    else if (!strcmp(a, "--bins"))
        return cli_parse_int(CMD, a, v, 1, 64, &o->bins) ? 2 : 1;
    else if (!strcmp(a, "--limit"))
        return cli_parse_int(CMD, a, v, 1, 1 << 24, &o->limit) ? 2 : 1;
    else
        return 0;
    return 1;
}

static int parse(int argc, char **argv, tune_opts *o)
{
    int rc = cli_search_parse(CMD, argc, argv, &o->s, help, more, o);
    if (!rc && (!o->data || !o->out))
        return cli_usage_error(CMD, "give the questions (--data FILE.jsonl) and the table to write (-o FILE)");
    return rc;
}

/* ------------------------------------------------------------------ JSONL */

static int hex4(const char *s, unsigned *out)
{
    *out = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        *out = *out << 4 | (unsigned)d;
    }
    return 0;
}

/* The JSON string literal at s (after its opening quote), decoded into a
** new string; NULL if malformed. \u escapes outside the BMP's plain range
** (surrogates) become U+FFFD. */
static char *json_string(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    for (; out && *s && *s != '"'; s++) {
        unsigned u;
        if (*s != '\\') {
            *o++ = *s;
            continue;
        }
        switch (*++s) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case '"': case '\\': case '/': *o++ = *s; break;
        case 'u':
            if (hex4(s + 1, &u))
                goto bad;
            s += 4;
            if (u >= 0xd800 && u < 0xe000)
                u = 0xfffd;
            if (u < 0x80)
                *o++ = (char)u;
            else if (u < 0x800) {
                *o++ = (char)(0xc0 | u >> 6);
                *o++ = (char)(0x80 | (u & 0x3f));
            } else {
                *o++ = (char)(0xe0 | u >> 12);
                *o++ = (char)(0x80 | (u >> 6 & 0x3f));
                *o++ = (char)(0x80 | (u & 0x3f));
            }
            break;
        default:
            goto bad;
        }
    }
    if (out && *s == '"') {
        *o = '\0';
        return out;
    }
bad:
    free(out);
    return NULL;
}

/* The value of top-level key in a one-line JSON object: a string decoded,
** or a number's text; NULL when absent or malformed. Keys are found by
** their quoted name followed by a colon. */
static char *json_field(const char *line, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = strchr(line, '"'); p; p = strchr(p + 1, '"')) {
        if (strncmp(p + 1, key, kl) || p[1 + kl] != '"')
            continue;
        const char *v = p + 2 + kl;
        v += strspn(v, " \t");
        if (*v++ != ':')
            continue;
        v += strspn(v, " \t");
        if (*v == '"')
            return json_string(v + 1);
        size_t n = strspn(v, "-+0123456789.eE");
        char *num = n ? malloc(n + 1) : NULL;
        if (num) {
            memcpy(num, v, n);
            num[n] = '\0';
        }
        return num;
    }
    return NULL;
}

/* Items from the JSONL file, each line's question and answer. */
static copse_tune_item *read_items(const tune_opts *o, int *n)
{
    size_t len;
    char *text = cli_read_file(o->data, &len), *save = NULL;
    copse_tune_item *items = NULL;
    *n = 0;
    if (!text) {
        cli_error(CMD, "cannot read %s", o->data);
        return NULL;
    }
    int ln = 0;
    for (char *line = strtok_r(text, "\n", &save); line && (!o->limit || *n < o->limit);
         line = strtok_r(NULL, "\n", &save)) {
        ln++;
        if (!line[strspn(line, " \t\r")])
            continue;
        copse_tune_item *grown = realloc(items, (size_t)(*n + 1) * sizeof *items);
        char *q = json_field(line, "question"), *a = json_field(line, "answer");
        if (!grown || !q || !a) {
            cli_error(CMD, "%s:%d: %s", o->data, ln, grown ? "no \"question\" or \"answer\"" : "out of memory");
            free(q);
            free(a);
            free(grown ? grown : items);
            items = NULL;
            break;
        }
        items = grown;
        items[(*n)++] = (copse_tune_item){ q, a };
    }
    free(text);
    if (items && !*n)
        cli_error(CMD, "%s has no questions", o->data);
    return items;
}

static void free_items(copse_tune_item *items, int n)
{
    for (int i = 0; items && i < n; i++) {
        free((char *)items[i].question);
        free((char *)items[i].answer);
    }
    free(items);
}

static void progress(void *user, int done, int total)
{
    (void)user;
    fprintf(stderr, "\rcopse tune: %d/%d runs", done, total);
    if (done == total)
        fputc('\n', stderr);
}

int cmd_tune(int argc, char **argv)
{
    tune_opts o = { .probes = 0 };
    cli_search_opts_init(&o.s);
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    copse_model *model = NULL;
    copse_verifier *v = NULL;
    int n = 0;
    copse_tune_item *items = read_items(&o, &n);
    if (!items || !n)
        return 1;
    if ((rc = cli_search_open(CMD, &o.s, &model, &v))) {
        free_items(items, n);
        return rc;
    }
    copse_tune_params tp = copse_tune_default_params();
    tp.base = o.s.sp;
    if (o.n_budgets) {
        tp.budgets = o.budgets;
        tp.n_budgets = o.n_budgets;
    }
    tp.probes = o.probes ? (int)o.probes : tp.probes;
    tp.n_bins = o.bins ? (int)o.bins : tp.n_bins;
    tp.progress = o.quiet ? NULL : progress;
    copse_error err;
    rc = copse_tune(model, v, items, n, &tp, o.out, &err);
    if (rc)
        cli_error(CMD, "%s", err.msg);
    else if (!o.quiet)
        fprintf(stderr, "copse tune: wrote %s from %d questions\n", o.out, n);
    free_items(items, n);
    cli_search_close(&o.s, model, v);
    return rc ? 1 : 0;
}
