#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"

const char *tu_shared_dir(void)
{
    const char *d = getenv("COPSE_SHARED");
    struct stat st;
    if (!d || !*d)
        d = COPSE_SHARED_DEFAULT;
    return stat(d, &st) == 0 && S_ISDIR(st.st_mode) ? d : NULL;
}

const char *tu_build_dir(void)
{
    const char *d = getenv("COPSE_BUILD");
    return d && *d ? d : COPSE_BUILD_DIR;
}

const char *tu_path(const char *dir, const char *rel)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    return b;
}

void tu_skip(const char *test, const char *why)
{
    fprintf(stderr, "SKIP %s: %s\n", test, why);
}

void tu_exact_clean(const char *who, const char *what, const exact_stats *st)
{
    printf("  %s %s: %d passed, %d failed\n", who, what, st->passed, st->failed);
    ck_assert_int_eq(st->failed, 0);
    ck_assert_int_gt(st->passed, 0);
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

int tu_run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *tu_copse_bin(const char *test)
{
    static char bin[1024];
    snprintf(bin, sizeof bin, "%s/bin/copse", tu_build_dir());
    if (access(bin, X_OK)) {
        tu_skip(test, "the copse command is not built");
        return NULL;
    }
    return bin;
}
