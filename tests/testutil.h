/* Helpers shared by the unit tests. */
#ifndef COPSE_TESTUTIL_H
#define COPSE_TESTUTIL_H

#include <check.h>

/* ../shared beside the checkout (or $COPSE_SHARED), or NULL when absent:
** tests that need it print why they skip and pass. */
const char *tu_shared_dir(void);

/* The build directory holding generated test data ($COPSE_BUILD or build). */
const char *tu_build_dir(void);

/* "<dir>/<rel>" in a static rotating buffer (a few calls may be live). */
const char *tu_path(const char *dir, const char *rel);

/* Print a one-line skip notice for the running test. */
void tu_skip(const char *test, const char *why);

/* Read a whole file into a malloc'd buffer (NUL-terminated); NULL if absent. */
char *tu_read_file(const char *path, size_t *len);

#endif
