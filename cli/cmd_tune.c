/* copse tune: build the auto strategy's table from a validation set. */
#include <stdlib.h>
#include <string.h>
#include "jsonl.h"
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
           "  --parallel N        questions searched at once, their decodes in one batch\n"
           "                      (default 4); the table is the same for any N\n"
           "  -q, --quiet         no progress on stderr\n"
           "  -h, --help          this help\n\n"
           "and the options of copse solve that shape a search (sampling, caps, verifier):\n"
           CLI_SEARCH_OPTS_HELP);
}

typedef struct tune_opts {
    cli_search_opts s;
    const char *data, *out;
    int budgets[16], n_budgets;
    long probes, bins, limit, parallel;
    int quiet;
} tune_opts;

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
        return cli_parse_int_list(CMD, a, v, 1, 65536, 16, 0, o->budgets, &o->n_budgets) ? 2 : 1;
    else if (!strcmp(a, "--probes"))
        return cli_parse_int(CMD, a, v, 1, 4096, &o->probes) ? 2 : 1;
    else if (!strcmp(a, "--bins"))
        return cli_parse_int(CMD, a, v, 1, 64, &o->bins) ? 2 : 1;
    else if (!strcmp(a, "--limit"))
        return cli_parse_int(CMD, a, v, 1, 1 << 24, &o->limit) ? 2 : 1;
    else if (!strcmp(a, "--parallel"))
        return cli_parse_int(CMD, a, v, 1, 256, &o->parallel) ? 2 : 1;
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

/* The first --limit questions of the JSONL file, as copse_tune takes them;
** *src (n_src items) keeps the strings they point into. */
static copse_tune_item *read_items(const tune_opts *o, cli_item **src, int *n_src, int *n)
{
    *src = cli_items_read(CMD, o->data, n_src);
    if (!*src)
        return NULL;
    *n = o->limit && *n_src > o->limit ? (int)o->limit : *n_src;
    copse_tune_item *items = malloc((size_t)*n * sizeof *items);
    if (!items) {
        cli_error(CMD, "out of memory for %d questions", *n);
        return NULL;
    }
    for (int i = 0; i < *n; i++)
        items[i] = (copse_tune_item){ (*src)[i].question, (*src)[i].answer };
    return items;
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
    int n = 0, n_read = 0;
    cli_item *src = NULL;
    copse_tune_item *items = read_items(&o, &src, &n_read, &n);
    if (!items || (rc = cli_search_open(CMD, &o.s, &model, &v))) {
        free(items);
        cli_items_free(src, n_read);
        return rc ? rc : 1;
    }
    copse_tune_params tp = copse_tune_default_params();
    tp.base = o.s.sp;
    if (o.n_budgets) {
        tp.budgets = o.budgets;
        tp.n_budgets = o.n_budgets;
    }
    tp.probes = o.probes ? (int)o.probes : tp.probes;
    tp.n_bins = o.bins ? (int)o.bins : tp.n_bins;
    tp.parallel = o.parallel ? (int)o.parallel : tp.parallel;
    tp.progress = o.quiet ? NULL : progress;
    copse_error err;
    rc = copse_tune(model, v, items, n, &tp, o.out, &err);
    if (rc)
        cli_error(CMD, "%s", err.msg);
    else if (!o.quiet)
        fprintf(stderr, "copse tune: wrote %s from %d questions\n", o.out, n);
    free(items);
    cli_items_free(src, n_read);
    cli_search_close(&o.s, model, v);
    return rc ? 1 : 0;
}
