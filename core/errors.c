/*
 * core/errors.c - cqrs_strerror() and the per-thread last-error buffer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/errors.h"

static _Thread_local char last_error[512];

const char *cqrs_strerror(int code)
{
	switch (code) {
	case 0: return "success";
	case CQRS_EREJECTED: return "command rejected";
	case CQRS_ECONFLICT: return "version conflict";
	case CQRS_EDUPLICATE: return "duplicate command";
	case CQRS_ECORRUPT: return "data corrupted";
	case CQRS_EFORMAT: return "bad or foreign format";
	case CQRS_EFULL: return "structure full";
	case CQRS_ENOTFOUND: return "not found";
	case CQRS_EWRITERDEAD: return "writer died mid-update";
	case CQRS_ESTALE: return "stale segment of a dead engine";
	case CQRS_EPOISONED: return "object poisoned by an earlier failure";
	case CQRS_ESTOPPED: return "engine stopped";
	case CQRS_ETYPE: return "value does not fit the field type";
	default: break;
	}
	if (code < 0 && code > CQRS_EBASE) {
		/* strerrordesc_np is thread-safe and returns static text. */
		const char *s = strerrordesc_np(-code);
		if (s)
			return s;
	}
	return "unknown error";
}

const char *cqrs_errname(int code)
{
	switch (code) {
	case 0: return "OK";
	case CQRS_EREJECTED: return "CQRS_EREJECTED";
	case CQRS_ECONFLICT: return "CQRS_ECONFLICT";
	case CQRS_EDUPLICATE: return "CQRS_EDUPLICATE";
	case CQRS_ECORRUPT: return "CQRS_ECORRUPT";
	case CQRS_EFORMAT: return "CQRS_EFORMAT";
	case CQRS_EFULL: return "CQRS_EFULL";
	case CQRS_ENOTFOUND: return "CQRS_ENOTFOUND";
	case CQRS_EWRITERDEAD: return "CQRS_EWRITERDEAD";
	case CQRS_ESTALE: return "CQRS_ESTALE";
	case CQRS_EPOISONED: return "CQRS_EPOISONED";
	case CQRS_ESTOPPED: return "CQRS_ESTOPPED";
	case CQRS_ETYPE: return "CQRS_ETYPE";
	default: break;
	}
	if (code < 0 && code > CQRS_EBASE) {
		const char *n = strerrorname_np(-code);
		if (n)
			return n;
	}
	return "EUNKNOWN";
}

void cqrs__vlog(cqrs_log_fn log, void *arg, int level, const char *fmt, va_list ap)
{
	char msg[512];

	if (!log)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	log(arg, level, msg);
}

const char *cqrs_last_error(void)
{
	return last_error;
}

int cqrs__set_error_text(int code, const char *text)
{
	snprintf(last_error, sizeof last_error, "%s", text);
	return code;
}

int cqrs__set_error(int code, const char *func, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(last_error, sizeof last_error, "%s:%d: ", func, line);

	if (n < 0 || (size_t)n >= sizeof last_error)
		return code;
	va_start(ap, fmt);
	vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}
