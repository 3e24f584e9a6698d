/* Filling a copse_error. Internal to copse. */
#ifndef COPSE_ERROR_H
#define COPSE_ERROR_H

#include "copse.h"

/* Set err (which may be NULL) to code and a printf-formatted message and
** return code, so callers can write: return copse_fail(err, ..., ...); */
int copse_fail(copse_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clear err (which may be NULL) to COPSE_OK with an empty message. */
void copse_error_clear(copse_error *err);

#endif
