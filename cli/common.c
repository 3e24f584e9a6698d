/* Helpers shared by the copse subcommands. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <time.h>
#include "cli.h"

static int verror(const char *cmd, int status, const char *fmt, va_list ap)
{
    fprintf(stderr, "copse %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (status == 2)
        fprintf(stderr, "try 'copse %s --help'\n", cmd);
    return status;
}

int cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(cmd, 1, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(cmd, 2, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi)
        return cli_usage_error(cmd, "%s takes a whole number from %ld to %ld, not '%s'",
                               opt, lo, hi, s ? s : "");
    *out = v;
    return 0;
}

int cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v) || v < lo || v > hi)
        return cli_usage_error(cmd, "%s takes a number from %g to %g, not '%s'",
                               opt, lo, hi, s ? s : "");
    *out = v;
    return 0;
}

int cli_parse_int_list(const char *cmd, const char *opt, const char *s, long lo, long hi, int max,
                       int ascending, int *out, int *n_out)
{
    *n_out = 0;
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || errno || v < lo || v > hi || (*end && !end[1]))
            return cli_usage_error(cmd, "%s takes whole numbers from %ld to %ld, comma-separated, not '%s'",
                                   opt, lo, hi, s);
        if (*n_out == max)
            return cli_usage_error(cmd, "%s takes at most %d numbers", opt, max);
        if (ascending && *n_out && v <= out[*n_out - 1])
            return cli_usage_error(cmd, "%s takes its numbers in ascending order, not '%s'", opt, s);
        out[(*n_out)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return *n_out ? 0 : cli_usage_error(cmd, "%s needs at least one number", opt);
}

int cli_parse_bytes(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
    int shift = 0;
    if (v && !errno && *end) {
        const char *units = "KMG", *u = strchr(units, toupper((unsigned char)*end));
        shift = u && end[1] == '\0' ? 10 * (int)(u - units + 1) : -1;
    }
    if (!v || errno || shift < 0 || v > (1ULL << 40) >> shift)
        return cli_usage_error(cmd, "%s takes a byte count, digits optionally followed by K, M or G "
                               "(KiB, MiB, GiB), at most 1024G; not '%s'", opt, s);
    *out = (uint64_t)v << shift;
    return 0;
}

static char *read_stream(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    if (!buf || ferror(f)) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *cli_read_stdin(size_t *len) { return read_stream(stdin, len); }

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = read_stream(f, len);
    fclose(f);
    return buf;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_weights_opt(const char *cmd, const char *v, cli_model_opts *o)
{
    if (strcmp(v, "f32") && strcmp(v, "int8") && strcmp(v, "auto"))
        return cli_usage_error(cmd, "--weights takes auto, int8 or f32, not '%s'", v);
    o->weights_f32 = !strcmp(v, "f32");
    o->weights_8bit = !strcmp(v, "int8");
    return 0;
}

int cli_model_opt(const char *cmd, int argc, char **argv, int *i, cli_model_opts *o)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--kv-f32"))
        return o->kv_f32 = 1;
    int is_m = !strcmp(a, "-m") || !strcmp(a, "--model");
    int is_t = !strcmp(a, "-t") || !strcmp(a, "--threads");
    int is_c = !strcmp(a, "--ctx") || !strcmp(a, "-c");
    int is_w = !strcmp(a, "--weights");
    int is_kv = !strcmp(a, "--kv-mem");
    if (!is_m && !is_t && !is_c && !is_w && !is_kv)
        return 0;
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (is_m)
        o->model = v;
    else if (is_t && cli_parse_int(cmd, a, v, 0, 1024, &o->threads))
        return -1;
    else if (is_c && cli_parse_int(cmd, a, v, 0, 1 << 24, &o->n_ctx))
        return -1;
    else if (is_kv && cli_parse_bytes(cmd, a, v, &o->kv_bytes))
        return -1;
    else if (is_w && cli_weights_opt(cmd, v, o))
        return -1;
    return 1;
}

int cli_open_model(const char *cmd, const cli_model_opts *o, int vocab_only,
                   copse_model **model, copse_ctx **ctx)
{
    copse_error err;
    *model = NULL;
    if (ctx)
        *ctx = NULL;
    if (!o->model)
        return cli_usage_error(cmd, "no model given (-m FILE.gguf)");
    copse_model_params mp = copse_model_default_params();
    mp.vocab_only = vocab_only;
    mp.weights_f32 = o->weights_f32;
    mp.weights_8bit = o->weights_8bit;
    if (copse_model_load(o->model, &mp, model, &err))
        return cli_error(cmd, "%s", err.msg);
    if (!ctx)
        return 0;
    if (cli_new_ctx(cmd, o, 0, *model, ctx)) {
        copse_model_free(*model);
        *model = NULL;
        return 1;
    }
    return 0;
}

int cli_new_ctx(const char *cmd, const cli_model_opts *o, int kv_tokens, copse_model *model, copse_ctx **ctx)
{
    copse_error err;
    copse_ctx_params cp = copse_ctx_default_params();
    cp.n_threads = (int)o->threads;
    cp.n_ctx = (int)o->n_ctx;
    cp.kv_bytes = o->kv_bytes;
    cp.kv_tokens = kv_tokens;
    cp.kv_f32 = o->kv_f32;
    if (copse_ctx_new(model, &cp, ctx, &err))
        return cli_error(cmd, "%s", err.msg);
    return 0;
}

int cli_tokenize(const char *cmd, const copse_model *m, const char *text, size_t len,
                 unsigned flags, int32_t **out)
{
    int n = copse_tokenize(m, text, len, flags, NULL, 0);
    int32_t *t = n >= 0 ? malloc(((size_t)n + 1) * sizeof *t) : NULL;
    if (!t || copse_tokenize(m, text, len, flags, t, n) != n) {
        free(t);
        cli_error(cmd, "cannot tokenize the text (%s)", n < 0 ? copse_status_str(-n) : "out of memory");
        return -1;
    }
    *out = t;
    return n;
}

/* Length of the UTF-8 sequence a lead byte starts (1 for stray bytes). */
static int utf8_len(unsigned char c)
{
    return c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : 1;
}

void cli_utf8_put(cli_utf8_out *o, const char *s, int len)
{
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o->n && (c & 0xc0) != 0x80)
            cli_utf8_flush(o); /* a new character: the pending one was broken */
        o->pend[o->n++] = (char)c;
        if (o->n == utf8_len((unsigned char)o->pend[0])) {
            fwrite(o->pend, 1, (size_t)o->n, o->f);
            o->n = 0;
        }
    }
    fflush(o->f);
}

void cli_utf8_flush(cli_utf8_out *o)
{
    if (o->n)
        fputs("\xef\xbf\xbd", o->f); /* U+FFFD for an incomplete character */
    o->n = 0;
    fflush(o->f);
}
