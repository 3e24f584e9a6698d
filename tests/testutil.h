/* Helpers shared by the unit tests. */
#ifndef COPSE_TESTUTIL_H
#define COPSE_TESTUTIL_H

#include <stddef.h>
#include <check.h>
#include "exact.h"

/* ../shared beside the checkout (or $COPSE_SHARED), or NULL when absent:
** tests that need it print why they skip and pass. */
const char *tu_shared_dir(void);

/* The build directory holding generated test data ($COPSE_BUILD or build). */
const char *tu_build_dir(void);

/* "<dir>/<rel>" in a static rotating buffer (a few calls may be live). */
const char *tu_path(const char *dir, const char *rel);

/* Print a one-line skip notice for the running test. */
void tu_skip(const char *test, const char *why);

/* Print the counts of who's checks of what and fail the test unless they
** compared something and every comparison held (the first failures are
** on stderr). */
void tu_exact_clean(const char *who, const char *what, const exact_stats *st);

/* Read a whole file into a malloc'd buffer (NUL-terminated); NULL if absent. */
char *tu_read_file(const char *path, size_t *len);

/* Run a shell command; its stdout (and whatever the command redirects
** there) goes to out, NUL-terminated, and its exit status is returned
** (-1 if it did not exit normally). */
int tu_run(const char *cmd, char *out, size_t cap);

/* The built copse command, or NULL (with a SKIP line for test) if absent. */
const char *tu_copse_bin(const char *test);

#endif
