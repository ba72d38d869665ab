/*
 * tools/cmd_submit.c - `cqrs submit ENGINE COMMAND field=value ...`: encodes
 * one command through the engine's command schema (cqrs_record_set_text;
 * fields not named stay zero), submits it through the command gateway and
 * prints the answer:
 *
 *   accepted seq=N            exit 0
 *   rejected: REASON          exit 1 (also conflict, duplicate, malformed)
 *   a bad command line        exit 2, nothing sent
 *
 * Options: --aggregate ID, --expect-version V (sets CQRS_CMD_EXPECT_VERSION),
 * --client-seq N, --client-id ID (a stable client id: a number 1 .. 2^63-1
 * or a name, hashed by cqrs_client_id_from_name; needs --client-seq; the
 * same ID and seq again answer "duplicate" with the original seq, across
 * reconnects and engine restarts), --timeout-ms MS (default 10000), --list
 * (the engine's commands and their fields).
 *
 * Values are parsed as cqrs_record_set_text does: integers in decimal only
 * ("0x1", "+1", " 1" are refused, not read as 1), out-of-range numbers
 * refused with the field's bounds, option values decimal too (tools/args.h).
 * A str value cannot hold a NUL here (argv strings end at it). A field or
 * value the command's schema refuses exits 1 with the reason on stderr and
 * submits nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "cqrs_client.h"

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

static const tool_cmd_help submit_help = {
	"submit",
	"usage: cqrs submit ENGINE COMMAND [field=value...] [--aggregate ID]\n"
	"                   [--expect-version V] [--client-id ID --client-seq N]\n"
	"                   [--timeout-ms MS]\n"
	"       cqrs submit ENGINE --list\n"
	"\n"
	"Encodes COMMAND through the engine's command schema (fields not named are\n"
	"zero), submits it through the engine's gateway and prints the answer:\n"
	"\"accepted seq=N\" (exit 0), or \"rejected: REASON\" (also conflict,\n"
	"duplicate, malformed; exit 1). Values are parsed as the field's type:\n"
	"integers in decimal only, refused when out of the field's range.\n"
	"  --list              the engine's commands and their fields\n"
	"  --aggregate ID      the aggregate --expect-version checks. The domain forms\n"
	"                      aggregate ids: in cqrs-orders a customer's is its\n"
	"                      customer_id and an order's is order_id + 2^62\n"
	"                      (order 9001: 4611686018427396905)\n"
	"  --expect-version V  refuse (conflict) unless the aggregate is at version V\n"
	"  --client-seq N      the command's client sequence number (dedup)\n"
	"  --client-id ID      connect with a stable client id (a number in\n"
	"                      1..2^63-1, or a name): resending the same ID and\n"
	"                      --client-seq N answers \"duplicate\" with the original\n"
	"                      seq, across reconnects and engine restarts; needs\n"
	"                      --client-seq\n"
	"  --timeout-ms MS     how long to wait for the answer (default 10000)\n"
};

int cqrs_cmd_submit(int argc, char **argv)
{
	cqrs_submit_opts opts = { 0 };
	cqrs_client_opts copts = { .size = sizeof copts };
	const char *client_id = NULL;
	uint64_t timeout_ms = 10000;
	const cqrs_schema *s;
	cqrs_client *c;
	cqrs_result r;
	const char *cmd = NULL, *engine;
	unsigned char *rec;
	uint32_t type;
	char **pos;
	int rc, i, n, list = 0, expect = 0;
	const tool_opt topts[] = {
		{ "--list", TOOL_OPT_FLAG, &list, 0, 0, NULL },
		{ "--aggregate", TOOL_OPT_U64, &opts.aggregate_id, 0, 0, NULL },
		{ "--expect-version", TOOL_OPT_U64, &opts.expected_version, 0, 0, &expect },
		{ "--client-seq", TOOL_OPT_U64, &opts.client_seq, 0, 0, NULL },
		{ "--client-id", TOOL_OPT_STR, &client_id, 0, 0, NULL },
		{ "--timeout-ms", TOOL_OPT_U64, &timeout_ms, 0, 0, NULL },
		{ NULL }
	};

	pos = calloc((size_t)argc + 1, sizeof *pos);
	if (!pos)
		return tool_fail("submit", -ENOMEM);
	rc = tool_args(&submit_help, argc, argv, topts, 1, argc, pos, &n);
	if (rc == TOOL_ARGS_OK && list && n != 1)
		rc = tool_usage_error(&submit_help, "--list takes only ENGINE");
	if (rc == TOOL_ARGS_OK && !list && n < 2)
		rc = tool_usage_error(&submit_help, "missing COMMAND (or --list)");
	for (i = 2; rc == TOOL_ARGS_OK && i < n; i++) {
		const char *eq = strchr(pos[i], '=');
		if (!eq || eq == pos[i] || (size_t)(eq - pos[i]) >= CQRS_NAME_MAX)
			rc = tool_usage_error(&submit_help, "expected field=value, got '%s'", pos[i]);
	}
	if (rc == TOOL_ARGS_OK && client_id) {
		/* a number when it is all digits, else a name */
		char *end = NULL;
		unsigned long long v;

		errno = 0;
		v = client_id[0] >= '0' && client_id[0] <= '9' ? strtoull(client_id, &end, 10) : 0;
		if (end && *end == 0) {
			if (errno || v == 0 || v >> 63)
				rc = tool_usage_error(&submit_help, "--client-id %s: a number must be in "
						      "1..9223372036854775807", client_id);
			copts.client_id = v;
		} else {
			copts.client_name = client_id;
		}
		if (rc == TOOL_ARGS_OK && !list && opts.client_seq == 0)
			rc = tool_usage_error(&submit_help, "--client-id needs --client-seq N");
	}
	if (rc != TOOL_ARGS_OK) {
		free(pos);
		return rc;
	}
	if (expect)
		opts.flags |= CQRS_CMD_EXPECT_VERSION;
	engine = pos[0];
	rc = cqrs_client_connect_opts(engine, &copts, &c);
	if (rc) {
		free(pos);
		return tool_fail(engine, rc);
	}
	if (list) {
		list_commands(c);
		cqrs_client_close(c);
		free(pos);
		return TOOL_EXIT_OK;
	}
	cmd = pos[1];
	rc = cqrs_client_command_type(c, cmd, &type, &s);
	if (rc) {
		fprintf(stderr, "cqrs: engine %s has no command %s (try --list)\n", engine, cmd);
		cqrs_client_close(c);
		free(pos);
		return TOOL_EXIT_FAIL;
	}
	rec = calloc(1, s->size ? s->size : 1);
	if (!rec) {
		cqrs_client_close(c);
		free(pos);
		return tool_fail("submit", -ENOMEM);
	}
	for (i = 2; i < n; i++) {
		const char *a = pos[i], *eq = strchr(a, '=');
		char field[CQRS_NAME_MAX];

		memcpy(field, a, (size_t)(eq - a));
		field[eq - a] = 0;
		rc = cqrs_record_set_text(s, rec, field, eq + 1);
		if (rc) {
			fprintf(stderr, "cqrs: %s.%s = '%s': %s\n", cmd, field, eq + 1,
				rc == CQRS_ENOTFOUND ? "no such field" : tool_detail());
			rc = TOOL_EXIT_FAIL;
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
		rc = TOOL_EXIT_FAIL;
	} else {
		rc = tool_fail("submit", rc);
	}
out:
	free(rec);
	free(pos);
	cqrs_client_close(c);
	return rc;
}
