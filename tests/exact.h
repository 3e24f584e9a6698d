/*
** Counting the comparisons of the kernel checks that run both in the Check
** suites and, cross-built, under qemu (tests/q8_exact.h,
** tests/attn_exact.h). No Check dependency.
*/
#ifndef COPSE_EXACT_H
#define COPSE_EXACT_H

typedef struct exact_stats {
    int passed, failed;      /* individual comparisons */
} exact_stats;

/* Count one comparison of the checks named who; print the first
** failures. */
void exact_check(exact_stats *st, const char *who, int ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
