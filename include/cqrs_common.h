/*
 * cqrs_common.h - error codes, last-error reporting and export macros shared
 * by every cqrs library (the engine's libcqrs and the reader/client-side
 * libcqrs_client).
 *
 * Conventions
 *   Every function that can fail returns int: 0 (or a non-negative count) on
 *   success, -errno for system errors (-EINVAL, -ENOSPC, -EAGAIN, ...) and a
 *   CQRS_E* code from the reserved range below for domain outcomes.
 *   cqrs_strerror() names any of them.
 *
 *   Cold paths (open, recovery, mapping, setup) also leave a human-readable
 *   message with function and line in a per-thread buffer, read with
 *   cqrs_last_error(). Hot paths (ring claim/publish, view get) only return a
 *   code; they never format messages.
 *
 * Caveats
 *   - The library never prints and never calls exit()/abort() on bad input.
 *   - cqrs_last_error() is only meaningful right after a call returned an
 *     error; successful calls do not clear it.
 */
#ifndef CQRS_COMMON_H
#define CQRS_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CQRS_API __attribute__((visibility("default")))
#else
#define CQRS_API
#endif

/* The library's version: major changes break the API or an on-disk or
 * shared-memory format, minor adds to them, patch fixes. The same numbers
 * as the pkg-config files' Version. */
#define CQRS_VERSION_MAJOR 0
#define CQRS_VERSION_MINOR 1
#define CQRS_VERSION_PATCH 0
#define CQRS_VERSION_STRING "0.1.0"

/* Project error codes: a reserved range far below every errno value. */
enum cqrs_error {
	CQRS_EBASE = -10000,
	CQRS_EREJECTED = -10001,  /* the command was rejected by its decide handler */
	CQRS_ECONFLICT = -10002,  /* expected aggregate version did not match */
	CQRS_EDUPLICATE = -10003, /* (client id, client seq) already seen */
	CQRS_ECORRUPT = -10004,   /* data failed a checksum or an invariant */
	CQRS_EFORMAT = -10005,    /* not our format, another version, or malformed */
	CQRS_EFULL = -10006,      /* a fixed-capacity structure is full */
	CQRS_ENOTFOUND = -10007,  /* no such key, view, engine or field */
	CQRS_EWRITERDEAD = -10008,/* a writer died mid-update (seqlock stuck odd) */
	CQRS_ESTALE = -10009,     /* a segment left behind by a dead engine */
	CQRS_EPOISONED = -10010,  /* an earlier failure may have lost data; object unusable */
	CQRS_ESTOPPED = -10011,   /* the engine is stopped or stopping */
	CQRS_ETYPE = -10012,      /* a value does not fit the field's type */
	CQRS_ELAST = -10013
};

/* Log levels and the log callback through which the engine (never the
 * library on its own) reports notable events: io_uring fallback, recovery
 * progress, a truncated torn tail, a journal failure. */
enum cqrs_log_level { CQRS_LOG_ERROR = 0, CQRS_LOG_WARN = 1, CQRS_LOG_INFO = 2, CQRS_LOG_DEBUG = 3 };
typedef void (*cqrs_log_fn)(void *arg, int level, const char *msg);

/* Names any return code: 0, -errno, or a CQRS_E* code. Never NULL; the
 * string is static. */
CQRS_API const char *cqrs_strerror(int code);

/* The symbolic name of a return code: "OK", "CQRS_EREJECTED", "ENOENT"...,
 * or "EUNKNOWN". Static string; for bindings that map codes to exceptions. */
CQRS_API const char *cqrs_errname(int code);

/* The calling thread's last detailed error message ("func:line: text"), or
 * "" if none was recorded. Valid until the thread's next failing call. */
CQRS_API const char *cqrs_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* CQRS_COMMON_H */
