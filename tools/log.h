/*
 * tools/log.h - log lines of the long-running `cqrs` subcommands (cqrs
 * metrics) on stderr, as text ("2026-12-04T20:01:02.123456Z info message")
 * or, with --log-format json, as JSON lines: one object per line,
 * {"time":"2026-12-04T20:01:02.123456Z","level":"info","message":"..."}.
 * The same shape as the engine's log callback levels (enum
 * cqrs_log_level); safe from any thread (one locked write per line).
 */
#ifndef CQRS_TOOLS_LOG_H
#define CQRS_TOOLS_LOG_H

/* Chooses the format: "text" or "json". 0, or -1 for another name. */
int tool_log_set_format(const char *name);

/* Writes one line at level (enum cqrs_log_level). */
void tool_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
