/*
 * tools/out.c - the `cqrs` tool's error printer and JSON string writer
 * (contracts: tools/out.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cqrs_common.h"
#include "tools/args.h"
#include "tools/out.h"

void tool_strip_where(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		/* at a word start: identifier ':' digits ':' ' ' */
		if ((r == s || r[-1] == ' ') && (isalpha((unsigned char)*r) || *r == '_')) {
			char *p = r;
			while (isalnum((unsigned char)*p) || *p == '_')
				p++;
			if (p[0] == ':' && isdigit((unsigned char)p[1])) {
				char *q = p + 1;
				while (isdigit((unsigned char)*q))
					q++;
				if (q[0] == ':' && q[1] == ' ') {
					r = q + 2;
					continue;
				}
			}
		}
		*w++ = *r++;
	}
	*w = 0;
}

const char *tool_detail(void)
{
	static char buf[512];

	snprintf(buf, sizeof buf, "%s", cqrs_last_error());
	tool_strip_where(buf);
	return buf;
}

int tool_fail(const char *what, int rc)
{
	const char *detail = tool_detail(), *name = cqrs_strerror(rc);

	if (detail[0] && strcmp(detail, name))
		fprintf(stderr, "cqrs: %s: %s (%s)\n", what, name, detail);
	else
		fprintf(stderr, "cqrs: %s: %s\n", what, name);
	return TOOL_EXIT_FAIL;
}

void tool_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* 0 when dir is an engine's data directory (it has journal/ or
 * deadletters.log); else prints why and returns TOOL_EXIT_FAIL. */
int tool_check_data_dir(const char *dir)
{
	char path[4096];
	struct stat st;

	if (stat(dir, &st))
		return tool_fail(dir, -errno);
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cqrs: %s: not a directory\n", dir);
		return TOOL_EXIT_FAIL;
	}
	snprintf(path, sizeof path, "%s/journal", dir);
	if (!stat(path, &st) && S_ISDIR(st.st_mode))
		return 0;
	snprintf(path, sizeof path, "%s/deadletters.log", dir);
	if (!stat(path, &st))
		return 0;
	fprintf(stderr, "cqrs: %s: not an engine's data directory (no journal/ or deadletters.log in "
			"it); give the directory the engine was started with\n", dir);
	return TOOL_EXIT_FAIL;
}
