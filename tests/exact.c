#include <stdarg.h>
#include <stdio.h>
#include "exact.h"

void exact_check(exact_stats *st, const char *who, int ok, const char *fmt, ...)
{
    if (ok) {
        st->passed++;
        return;
    }
    if (st->failed++ < 20) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s FAIL: ", who);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}
