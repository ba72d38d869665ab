/*
 * core/errors.h - internal helpers for recording the per-thread last error
 * (Aeron-style error context: function, line and a formatted message).
 * Use only on cold paths; hot paths just return a code.
 */
#ifndef CQRS_CORE_ERROR_H
#define CQRS_CORE_ERROR_H

#include "cqrs_common.h"

/* Records "func:line: message" for cqrs_last_error() and returns code, so
 * callers can write: return cqrs__fail(-EINVAL, "bad name '%s'", name); */
int cqrs__set_error(int code, const char *func, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Records text as it is (a message another thread recorded, carried over)
 * and returns code. */
int cqrs__set_error_text(int code, const char *text);

/* Formats a message for a log callback (cold paths; no-op when log is NULL). */
#include <stdarg.h>
void cqrs__vlog(cqrs_log_fn log, void *arg, int level, const char *fmt, va_list ap);

#define cqrs__fail(code, ...) cqrs__set_error((code), __func__, __LINE__, __VA_ARGS__)

#endif
