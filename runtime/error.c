#include <stdarg.h>
#include <stdio.h>
#include "error.h"

const char *copse_status_str(int code)
{
    switch (code) {
    case COPSE_OK:            return "ok";
    case COPSE_E_ARG:         return "bad argument";
    case COPSE_E_IO:          return "i/o error";
    case COPSE_E_FORMAT:      return "format error";
    case COPSE_E_UNSUPPORTED: return "unsupported";
    case COPSE_E_NOMEM:       return "out of memory";
    case COPSE_E_CTX_FULL:    return "context full";
    case COPSE_E_KV_FULL:     return "kv cache full";
    default:                  return "unknown error";
    }
}

int copse_fail(copse_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void copse_error_clear(copse_error *err)
{
    if (err) {
        err->code = COPSE_OK;
        err->msg[0] = '\0';
    }
}
