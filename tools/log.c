/*
 * tools/log.c - text or JSON log lines on stderr (tools/log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cqrs_common.h"
#include "tools/log.h"
#include "tools/out.h"

static int log_json;

int tool_log_set_format(const char *name)
{
	if (!strcmp(name, "text"))
		log_json = 0;
	else if (!strcmp(name, "json"))
		log_json = 1;
	else
		return -1;
	return 0;
}

void tool_log(int level, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char msg[1024], when[80];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
	flockfile(stderr);
	if (log_json) {
		fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"message\":", when, names[level & 3]);
		tool_json_str(stderr, msg);
		fputs("}\n", stderr);
	} else {
		fprintf(stderr, "%s %s %s\n", when, names[level & 3], msg);
	}
	funlockfile(stderr);
}
