/*
 * tools/out.h - how the `cqrs` tool talks to its user: error messages
 * (the library's detail without its internal "function:line: " prefixes)
 * and JSON strings for the --json outputs.
 */
#ifndef CQRS_TOOLS_OUT_H
#define CQRS_TOOLS_OUT_H

#include <stdio.h>

/* Prints "cqrs: <what>: <strerror(rc)> (<detail>)" to stderr, the detail
 * being cqrs_last_error() as tool_detail() cleans it (left out when empty
 * or when it only repeats strerror). Returns TOOL_EXIT_FAIL. */
int tool_fail(const char *what, int rc);

/* 0 when dir is an engine's data directory (it has journal/ or
 * deadletters.log); else prints why and returns TOOL_EXIT_FAIL. */
int tool_check_data_dir(const char *dir);

/* cqrs_last_error() with every "identifier:line: " prefix removed (the
 * library records where an error arose; users need only what and why).
 * Returns a per-process static buffer, valid until the next call. */
const char *tool_detail(void);

/* Removes every "identifier:digits: " prefix from s, in place. */
void tool_strip_where(char *s);

/* Writes s as a JSON string (quotes, escapes; bytes >= 0x80 as they are,
 * control characters as \u00XX). */
void tool_json_str(FILE *f, const char *s);

#endif
