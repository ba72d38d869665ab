/*
 * tools/args.c - the `cqrs` tool's option tables: parses a subcommand's
 * command line, refuses unknown options, repeated options, malformed or
 * out-of-range values and wrong positional counts (rules: tools/args.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/args.h"

int tool_is_help(const char *s)
{
	return !strcmp(s, "-h") || !strcmp(s, "--help");
}

int tool_help(const tool_cmd_help *h)
{
	fputs(h->help, stdout);
	return TOOL_EXIT_OK;
}

int tool_usage_error(const tool_cmd_help *h, const char *fmt, ...)
{
	const char *end;
	va_list ap;

	fprintf(stderr, "cqrs %s: ", h->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	/* the synopsis: the help text up to its first blank line */
	end = strstr(h->help, "\n\n");
	fprintf(stderr, "%.*s\n", end ? (int)(end - h->help) : (int)strlen(h->help) - 1, h->help);
	fprintf(stderr, "Run 'cqrs %.*s --help' for more.\n", (int)strcspn(h->cmd, " "), h->cmd);
	return TOOL_EXIT_USAGE;
}

int tool_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *why,
		   unsigned why_cap)
{
	unsigned long long v;
	char *end;

	if (!max)
		max = UINT64_MAX;
	if (!*s || s[strspn(s, "0123456789")]) {
		snprintf(why, why_cap, "'%s' is not a decimal number", s);
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || v < min || v > max) {
		snprintf(why, why_cap, "'%s' is out of range (%llu..%llu)", s, (unsigned long long)min,
			 (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

/* "2", "0.25", "10.": seconds to milliseconds (fractions below 1 ms are
 * refused rather than rounded to 0). */
static int parse_seconds(const char *s, uint64_t min, uint64_t max, uint64_t *ms, char *why,
			 unsigned why_cap)
{
	size_t whole = strspn(s, "0123456789"), frac = 0;
	uint64_t v = 0;

	if (!max)
		max = UINT64_MAX;
	if (s[whole] == '.')
		frac = strspn(s + whole + 1, "0123456789");
	if (!whole && !frac)
		goto bad;
	if (s[whole] && (s[whole] != '.' || s[whole + 1 + frac]))
		goto bad;
	for (size_t i = 0; i < whole; i++) {
		if (v > (UINT64_MAX / 1000 - 9) / 10)
			goto range;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	v *= 1000;
	for (size_t i = 0; i < frac; i++) {
		if (s[whole + 1 + i] == '0')
			continue;
		if (i >= 3) {
			snprintf(why, why_cap, "'%s' is finer than a millisecond", s);
			return -1;
		}
		v += (uint64_t)(s[whole + 1 + i] - '0') * (i == 0 ? 100 : i == 1 ? 10 : 1);
	}
	if (v < min || v > max)
		goto range;
	*ms = v;
	return 0;
bad:
	snprintf(why, why_cap, "'%s' is not a number of seconds (e.g. 2 or 0.5)", s);
	return -1;
range:
	snprintf(why, why_cap, "'%s' is out of range (%llu.%03llu..%llu.%03llu seconds)", s,
		 (unsigned long long)(min / 1000), (unsigned long long)(min % 1000),
		 (unsigned long long)(max / 1000), (unsigned long long)(max % 1000));
	return -1;
}

/* A word that is a positional, not an option: "-", or "-" then a digit. */
static int is_positional(const char *a)
{
	return a[0] != '-' || !a[1] || (a[1] >= '0' && a[1] <= '9');
}

int tool_args(const tool_cmd_help *h, int argc, char **argv, const tool_opt *opts, int min_pos,
	      int max_pos, char **pos, int *npos)
{
	unsigned char seen[32] = { 0 };
	int n = 0, only_pos = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		const tool_opt *o = NULL;
		size_t len;
		char why[160];
		int k = 0;

		if (only_pos || is_positional(a)) {
			if (n >= max_pos)
				return tool_usage_error(h, "unexpected argument '%s'", a);
			pos[n++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		if (tool_is_help(a))
			return tool_help(h);
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		for (; opts && opts[k].name; k++)
			if (strlen(opts[k].name) == len && !strncmp(opts[k].name, a, len)) {
				o = &opts[k];
				break;
			}
		if (!o)
			return tool_usage_error(h, "unknown option '%.*s'", (int)len, a);
		if (k < (int)sizeof seen && seen[k]++)
			return tool_usage_error(h, "%s given twice", o->name);
		if (o->given)
			*o->given = 1;
		if (o->kind == TOOL_OPT_FLAG) {
			if (eq)
				return tool_usage_error(h, "%s takes no value", o->name);
			*(int *)o->value = 1;
			continue;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return tool_usage_error(h, "%s needs a value", o->name);
		switch (o->kind) {
		case TOOL_OPT_STR:
			*(const char **)o->value = val;
			break;
		case TOOL_OPT_U64:
			if (tool_parse_u64(val, o->min, o->max, o->value, why, sizeof why))
				return tool_usage_error(h, "%s: %s", o->name, why);
			break;
		case TOOL_OPT_SECONDS:
			if (parse_seconds(val, o->min, o->max, o->value, why, sizeof why))
				return tool_usage_error(h, "%s: %s", o->name, why);
			break;
		default:
			break;
		}
	}
	if (n < min_pos)
		return tool_usage_error(h, "%s", n ? "too few arguments" : "missing arguments");
	*npos = n;
	return TOOL_ARGS_OK;
}
