/*
** libFuzzer target: any bytes as the two text files a user hands copse
** besides models, held to what their readers promise:
**   - a question set (cli/jsonl.c, copse eval and tune): either items,
**     at least one, each with a question that is not empty and an answer,
**     on increasing lines; or NULL after exactly one error message;
**   - a tuning table (search/table.c, copse solve --table): either a
**     table whose rows name bins it has and whose edges ascend, which
**     table_save writes and table_load reads back the same; or a format
**     error with a message.
** The first byte picks the reader. jsonl.c's two helpers from common.c are
** given here, reading the input and counting messages instead of
** printing them. Build and run: make fuzz-files.
*/
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "cli.h"
#include "jsonl.h"
#include "search.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static const uint8_t *input;
static size_t input_len;
static int n_errors;

char *cli_read_file(const char *path, size_t *len)
{
    char *s = malloc(input_len + 1);
    CHECK(s);
    memcpy(s, input, input_len);
    s[input_len] = '\0';
    *len = input_len;
    return s;
}

int cli_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    CHECK(n > 0);
    n_errors++;
    return 1;
}

static void question_set(void)
{
    int n = -1;
    n_errors = 0;
    cli_item *items = cli_items_read("fuzz", "set.jsonl", &n);
    if (!items) {
        CHECK(n == 0 && n_errors == 1);
        return;
    }
    CHECK(n >= 1 && n_errors == 0);
    for (int i = 0; i < n; i++) {
        CHECK(items[i].question && items[i].question[0] && items[i].answer);
        CHECK(items[i].line >= 1 && (i == 0 || items[i].line > items[i - 1].line));
    }
    cli_items_free(items, n);
}

/* A memfd holding len bytes of p, by a path fopen takes. */
static int as_file(const void *p, size_t len, char *path, size_t cap)
{
    int fd = memfd_create("table", 0);
    CHECK(fd >= 0);
    for (size_t at = 0; at < len;) {
        ssize_t w = write(fd, (const char *)p + at, len - at);
        CHECK(w > 0);
        at += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

static void same_tables(const tune_table *a, const tune_table *b)
{
    CHECK(a->probes == b->probes && a->n_bins == b->n_bins && a->n_rows == b->n_rows);
    for (int i = 0; i < a->n_bins - 1; i++)
        CHECK(a->edges[i] == b->edges[i]);
    for (int i = 0; i < a->n_rows; i++) {
        const tune_row *x = &a->rows[i], *y = &b->rows[i];
        CHECK(x->bin == y->bin && x->budget == y->budget && x->strategy == y->strategy &&
              x->m == y->m && x->k == y->k && x->pick == y->pick);
        /* saved to 4 decimals */
        CHECK((x->accuracy < 0) == (y->accuracy < 0) &&
              (x->accuracy < 0 || (x->accuracy - y->accuracy < 6e-5 && y->accuracy - x->accuracy < 6e-5)));
    }
}

static void tuning_table(void)
{
    char path[64], back_path[64];
    int fd = as_file(input, input_len, path, sizeof path);
    tune_table t, back;
    copse_error err;
    int rc = table_load(path, &t, &err);
    close(fd);
    if (rc) {
        CHECK(rc == COPSE_E_FORMAT && err.code == rc && err.msg[0]);
        return;
    }
    CHECK(t.probes >= 1 && t.n_bins >= 1 && t.n_rows >= 1);
    for (int i = 1; i < t.n_bins - 1; i++)
        CHECK(t.edges[i - 1] < t.edges[i]);
    for (int i = 0; i < t.n_rows; i++) {
        const tune_row *r = &t.rows[i];
        CHECK(r->bin >= 0 && r->bin < t.n_bins && r->budget >= 1);
        const tune_row *l = table_lookup(&t, r->bin, r->budget);
        CHECK(l && l->bin == r->bin && l->budget == r->budget);
    }
    CHECK(table_bin(&t, 0) >= 0 && table_bin(&t, 1) < t.n_bins);

    fd = memfd_create("saved", 0);
    CHECK(fd >= 0);
    snprintf(back_path, sizeof back_path, "/proc/self/fd/%d", fd);
    CHECK(table_save(&t, back_path, &err) == COPSE_OK);
    CHECK(table_load(back_path, &back, &err) == COPSE_OK);
    close(fd);
    same_tables(&t, &back);
    table_free(&t);
    table_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    input = data + 1;
    input_len = size - 1;
    if (data[0] & 1)
        tuning_table();
    else
        question_set();
    return 0;
}
