/*
** The auto strategy's tuning table, a small text file that copse_tune
** writes and people can edit:
**
**   copse-tune 1
**   probes 2                    samples that estimate a question's difficulty
**   edges 0.2 0.4 0.6 0.8       difficulty bins: [0, 0.2), [0.2, 0.4), ...
**   # bin budget strategy m k pick accuracy
**   row 0 16 weighted 1 1 weighted 0.82
**
** A row says what to run for a bin when the budget is that many
** generations (the probes included; n is what is left, fitted to m). Blank
** lines and lines starting with # are ignored; the accuracy is optional.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "search.h"
#include "error.h"

#define MAX_EDGES 63
#define MAX_WORDS (MAX_EDGES + 1)   /* the longest line: "edges" and its numbers */

/* Difficulty bins by what Snell et al. found: on easy questions a verifier
** picks well among independent samples; on hard ones searching over steps
** pays at small budgets. copse tune replaces this with measurements. */
static const char builtin_verifier[] =
    "copse-tune 1\n"
    "probes 2\n"
    "edges 0.2 0.4 0.6 0.8\n"
    "row 0 4 weighted 1 1 weighted\n"  "row 0 16 weighted 1 1 weighted\n" "row 0 64 weighted 1 1 weighted\n"
    "row 1 4 weighted 1 1 weighted\n"  "row 1 16 weighted 1 1 weighted\n" "row 1 64 weighted 1 1 weighted\n"
    "row 2 4 beam 2 1 weighted\n"      "row 2 16 beam 4 1 weighted\n"     "row 2 64 weighted 1 1 weighted\n"
    "row 3 4 beam 2 1 weighted\n"      "row 3 16 beam 4 1 weighted\n"     "row 3 64 beam 4 1 weighted\n"
    "row 4 4 beam 2 1 weighted\n"      "row 4 16 beam 4 1 weighted\n"     "row 4 64 beam 4 1 weighted\n";

static const char builtin_plain[] =
    "copse-tune 1\n"
    "probes 2\n"
    "edges 0.5\n"
    "row 0 1 majority 1 1 majority\n"
    "row 1 1 majority 1 1 majority\n";

void table_free(tune_table *t)
{
    free(t->edges);
    free(t->rows);
    memset(t, 0, sizeof *t);
}

static int number(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int integer(const char *s, int lo, int hi, int *out)
{
    double v;
    if (number(s, lo, hi, &v) || v != (int)v)
        return -1;
    *out = (int)v;
    return 0;
}

/* "row BIN BUDGET STRATEGY M K PICK [ACCURACY]" split into w[1..] */
static const char *parse_row(char **w, int n, tune_row *r)
{
    if (n != 7 && n != 8)
        return "a row has bin, budget, strategy, m, k, pick and an optional accuracy";
    r->accuracy = -1;
    if (integer(w[1], 0, MAX_EDGES, &r->bin) || integer(w[2], 1, 65536, &r->budget))
        return "bad bin or budget";
    r->strategy = copse_strategy_by_name(w[3]);
    if (r->strategy < 0 || r->strategy == COPSE_AUTO)
        return "unknown strategy";
    if (integer(w[4], 1, 65536, &r->m) || integer(w[5], 1, 64, &r->k))
        return "bad m or k";
    if ((r->pick = copse_pick_by_name(w[6])) < 0)
        return "unknown pick";
    if (n == 8 && number(w[7], 0, 1, &r->accuracy))
        return "bad accuracy";
    return NULL;
}

static const char *parse_line(tune_table *t, char **w, int n, int *header)
{
    double v;
    if (!*header) {
        *header = 1;
        return n == 2 && !strcmp(w[0], "copse-tune") && !strcmp(w[1], "1")
               ? NULL : "not a copse tuning table (the first line must be 'copse-tune 1')";
    }
    if (!strcmp(w[0], "probes"))
        return n == 2 && !integer(w[1], 1, 4096, &t->probes) ? NULL : "probes takes a number from 1 to 4096";
    if (!strcmp(w[0], "edges")) {
        if (n - 1 > MAX_EDGES || t->edges)
            return "too many edges, or edges twice";
        if (!(t->edges = malloc((size_t)(n > 1 ? n - 1 : 1) * sizeof *t->edges)))
            return "out of memory";
        for (int i = 1; i < n; i++)
            if (number(w[i], 0, 1, &v) || (i > 1 && v <= t->edges[i - 2]))
                return "edges must be ascending numbers in [0, 1]";
            else
                t->edges[i - 1] = v;
        t->n_bins = n;
        return NULL;
    }
    if (strcmp(w[0], "row"))
        return "unknown line (probes, edges, row)";
    tune_row r;
    const char *bad = parse_row(w, n, &r);
    if (bad)
        return bad;
    tune_row *rows = realloc(t->rows, (size_t)(t->n_rows + 1) * sizeof *rows);
    if (!rows)
        return "out of memory";
    t->rows = rows;
    t->rows[t->n_rows++] = r;
    return NULL;
}

/* Parse text (NUL-terminated, modified in place); name is for messages. */
static int parse(char *text, const char *name, tune_table *t, copse_error *err)
{
    int header = 0, ln = 0;
    const char *bad = NULL;
    memset(t, 0, sizeof *t);
    t->n_bins = 1;
    for (char *line = text, *next; line && !bad; line = next) {
        char *w[MAX_WORDS + 1], *ws = NULL;   /* one more, to notice a line too long */
        int n = 0;
        if ((next = strchr(line, '\n')))
            *next++ = '\0';
        ln++;
        for (char *tok = strtok_r(line, " \t\r", &ws); tok && n <= MAX_WORDS; tok = strtok_r(NULL, " \t\r", &ws))
            w[n++] = tok;
        if (n && w[0][0] != '#')
            bad = n > MAX_WORDS ? "too many fields" : parse_line(t, w, n, &header);
    }
    for (int i = 0; i < t->n_rows && !bad; i++)
        if (t->rows[i].bin >= t->n_bins)
            bad = "a row's bin is past the last bin the edges make";
    if (!bad && (!header || !t->probes || !t->n_rows))
        bad = "the table needs a 'copse-tune 1' line, probes and rows";
    if (bad) {
        table_free(t);
        return copse_fail(err, COPSE_E_FORMAT, "%s:%d: %s", name, ln, bad);
    }
    return COPSE_OK;
}

int table_load(const char *path, tune_table *t, copse_error *err)
{
    FILE *f = fopen(path, "rb");
    memset(t, 0, sizeof *t);
    if (!f)
        return copse_fail(err, COPSE_E_IO, "%s: cannot open the tuning table: %s", path, strerror(errno));
    char *text = malloc(1 << 20);
    size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    int too_big = text && n == (1 << 20) - 1, rc;
    fclose(f);
    if (!text || too_big)
        rc = copse_fail(err, too_big ? COPSE_E_FORMAT : COPSE_E_NOMEM, "%s: %s", path,
                        too_big ? "the tuning table is over 1 MiB" : "out of memory");
    else {
        text[n] = '\0';
        rc = parse(text, path, t, err);
    }
    free(text);
    return rc;
}

int table_builtin(tune_table *t, int have_verifier, copse_error *err)
{
    char *text = strdup(have_verifier ? builtin_verifier : builtin_plain);
    int rc = text ? parse(text, "built-in table", t, err)
                  : copse_fail(err, COPSE_E_NOMEM, "copse_solve: out of memory");
    free(text);
    return rc;
}

/* v in the fewest digits (6 at least) that read back as v: close edges
** stay apart, and 0.2 stays 0.2. */
static void put_exact(FILE *f, double v)
{
    char s[32];
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(s, sizeof s, "%.*g", digits, v);
        if (strtod(s, NULL) == v)
            break;
    }
    fprintf(f, " %s", s);
}

int table_save(const tune_table *t, const char *path, copse_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return copse_fail(err, COPSE_E_IO, "%s: cannot write the tuning table: %s", path, strerror(errno));
    fprintf(f, "copse-tune 1\nprobes %d\nedges", t->probes);
    for (int i = 0; i < t->n_bins - 1; i++)
        put_exact(f, t->edges[i]);
    fprintf(f, "\n# bin budget strategy m k pick accuracy\n");
    for (int i = 0; i < t->n_rows; i++) {
        const tune_row *r = &t->rows[i];
        fprintf(f, "row %d %d %s %d %d %s", r->bin, r->budget, copse_strategy_name(r->strategy), r->m, r->k,
                copse_pick_name(r->pick));
        if (r->accuracy >= 0)
            fprintf(f, " %.4f", r->accuracy);
        fputc('\n', f);
    }
    if (fclose(f))
        return copse_fail(err, COPSE_E_IO, "%s: cannot write the tuning table: %s", path, strerror(errno));
    return COPSE_OK;
}

const tune_row *table_lookup(const tune_table *t, int bin, int budget)
{
    const tune_row *below = NULL, *least = NULL;
    for (int i = 0; i < t->n_rows; i++) {
        const tune_row *r = &t->rows[i];
        if (r->bin != bin)
            continue;
        if (r->budget <= budget && (!below || r->budget > below->budget))
            below = r;
        if (!least || r->budget < least->budget)
            least = r;
    }
    return below ? below : least;
}

int table_bin(const tune_table *t, double d)
{
    int b = 0;
    while (b < t->n_bins - 1 && d >= t->edges[b])
        b++;
    return b;
}
