/* The copse command: one file per subcommand, sharing these helpers. */
#ifndef COPSE_CLI_H
#define COPSE_CLI_H

#include <stdio.h>
#include "copse.h"

/* Each subcommand: returns the process exit status (0 ok, 1 failure,
** 2 usage error). */
typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

/* Print "copse NAME: message" to stderr and return 1 (or 2 for usage). */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a whole decimal integer / float argument of option opt within
** [lo, hi]; on failure print why and return nonzero. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

/* Read all of stdin into a malloc'd NUL-terminated buffer; NULL on failure. */
char *cli_read_stdin(size_t *len);
/* Read a whole file likewise; NULL (errno set) on failure. */
char *cli_read_file(const char *path, size_t *len);

/* Seconds from a monotonic clock. */
double cli_now(void);

#endif
