/*
 * tools/cmd_submit.c - `cqrs submit ENGINE COMMAND field=value ...`: encodes
 * one command through the engine's command schema (cqrs_record_set_text;
 * fields not named stay zero), submits it through the command gateway and
 * prints the answer:
 *
 *   accepted seq=N            exit 0
 *   rejected: REASON          exit 1 (also conflict, duplicate, malformed)
 *
 * Options: --aggregate ID, --expect-version V (sets CQRS_CMD_EXPECT_VERSION),
 * --client-seq N, --timeout-ms MS (default 10000), --list (the engine's
 * commands and their fields).
 *
 * Values are parsed as cqrs_record_set_text does: integers in decimal only
 * ("0x1", "+1", " 1" are refused, not read as 1), out-of-range numbers
 * refused with the field's bounds, option values decimal too. A str value
 * cannot hold a NUL here (argv strings end at it). A refused value exits 1
 * with the reason on stderr and submits nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "cqrs_client.h"

/* An option's value: decimal digits only, as field values (no sign, no
 * spaces, no 0x hex or octal), at most 2^64 - 1. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || s[strspn(s, "0123456789")])
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno ? -1 : 0;
}

static void list_commands(cqrs_client *c)
{
	for (int i = 0; i < cqrs_client_command_count(c); i++) {
		const cqrs_schema *s;
		uint32_t type;

		cqrs_client_command_at(c, i, &type, &s);
		printf("%-24s type %3u, %4u bytes:", s->name, type, s->size);
		for (uint32_t f = 0; f < s->nfields; f++)
			printf(" %s:%s", s->fields[f].name, cqrs_ftype_name(s->fields[f].type));
		printf("\n");
	}
}

static const char *outcome(int status)
{
	switch (status) {
	case CQRS_EREJECTED: return "rejected";
	case CQRS_ECONFLICT: return "conflict";
	case CQRS_EDUPLICATE: return "duplicate";
	case CQRS_EFORMAT: return "malformed";
	default: return "failed";
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: cqrs submit ENGINE COMMAND [field=value...] [--aggregate ID]\n"
			"                   [--expect-version V] [--client-seq N] [--timeout-ms MS]\n"
			"       cqrs submit ENGINE --list\n");
	return 2;
}

int cqrs_cmd_submit(int argc, char **argv)
{
	cqrs_submit_opts opts = { 0 };
	uint64_t timeout_ms = 10000, v;
	const cqrs_schema *s;
	cqrs_client *c;
	cqrs_result r;
	const char *cmd = NULL;
	unsigned char *rec;
	uint32_t type;
	int rc, i;

	if (argc < 3)
		return usage();
	rc = cqrs_client_connect(argv[1], &c);
	if (rc)
		return tool_fail(argv[1], rc);
	if (!strcmp(argv[2], "--list")) {
		list_commands(c);
		cqrs_client_close(c);
		return 0;
	}
	cmd = argv[2];
	rc = cqrs_client_command_type(c, cmd, &type, &s);
	if (rc) {
		fprintf(stderr, "cqrs: engine %s has no command %s (try --list)\n", argv[1], cmd);
		cqrs_client_close(c);
		return 1;
	}
	rec = calloc(1, s->size ? s->size : 1);
	if (!rec) {
		cqrs_client_close(c);
		return tool_fail("submit", -ENOMEM);
	}
	for (i = 3; i < argc; i++) {
		const char *a = argv[i], *eq;
		char field[CQRS_NAME_MAX];

		if (!strncmp(a, "--", 2)) {
			if (i + 1 >= argc || parse_u64(argv[i + 1], &v)) {
				rc = usage();
				goto out;
			}
			if (!strcmp(a, "--aggregate"))
				opts.aggregate_id = v;
			else if (!strcmp(a, "--expect-version")) {
				opts.expected_version = v;
				opts.flags |= CQRS_CMD_EXPECT_VERSION;
			} else if (!strcmp(a, "--client-seq"))
				opts.client_seq = v;
			else if (!strcmp(a, "--timeout-ms"))
				timeout_ms = v;
			else {
				rc = usage();
				goto out;
			}
			i++;
			continue;
		}
		eq = strchr(a, '=');
		if (!eq || eq == a || (size_t)(eq - a) >= sizeof field) {
			fprintf(stderr, "cqrs: expected field=value, got '%s'\n", a);
			rc = 2;
			goto out;
		}
		memcpy(field, a, (size_t)(eq - a));
		field[eq - a] = 0;
		rc = cqrs_record_set_text(s, rec, field, eq + 1);
		if (rc) {
			fprintf(stderr, "cqrs: %s.%s = '%s': %s\n", cmd, field, eq + 1,
				rc == CQRS_ENOTFOUND ? "no such field" : cqrs_last_error());
			rc = 1;
			goto out;
		}
	}
	rc = cqrs_client_submit(c, type, rec, s->size, &opts, &r,
				timeout_ms > UINT64_MAX / 1000000 ? UINT64_MAX : timeout_ms * 1000000);
	if (rc == 0) {
		printf("accepted seq=%llu\n", (unsigned long long)r.seq);
	} else if (rc == CQRS_EREJECTED || rc == CQRS_ECONFLICT || rc == CQRS_EDUPLICATE ||
		   rc == CQRS_EFORMAT) {
		printf("%s: %s", outcome(rc), r.reason[0] ? r.reason : cqrs_strerror(rc));
		if (rc == CQRS_EDUPLICATE)
			printf(" (seq=%llu)", (unsigned long long)r.seq);
		printf("\n");
		rc = 1;
	} else {
		rc = tool_fail("submit", rc);
	}
out:
	free(rec);
	cqrs_client_close(c);
	return rc;
}
