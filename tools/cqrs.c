/*
 * tools/cqrs.c - the `cqrs` command-line tool: dispatches to subcommands
 * (journal, view, ls, stat, ...), each in its own tools/cmd_*.c file.
 */
#include <stdio.h>
#include <string.h>

#include "cqrs_common.h"
#include "tools/commands.h"

static const cqrs_tool_cmd commands[] = {
	{ "journal", "journal verify|stat DIR | journal dump DIR [--from SEQ] [--limit N] [--json]", cqrs_cmd_journal },
	{ "ls", "ls [ENGINE]             engines in /dev/shm, their views, rows, applied_seq", cqrs_cmd_ls },
	{ "view", "view get ENGINE VIEW KEY | view find ENGINE VIEW FIELD VALUE [--snapshot] [--json] | view dump ENGINE VIEW [--json]", cqrs_cmd_view },
	{ "stat", "stat ENGINE [--watch]    an engine's counters (refreshing like top)", cqrs_cmd_stat },
	{ "deadletters", "deadletters ENGINE | deadletters --dir DATA_DIR   events projections refused", cqrs_cmd_deadletters },
	{ "rm", "rm ENGINE                segments left by a stopped or dead engine", cqrs_cmd_rm },
	{ "submit", "submit ENGINE COMMAND field=value... [--aggregate ID] [--expect-version V] [--client-seq N] | submit ENGINE --list", cqrs_cmd_submit },
	{ NULL, NULL, NULL }
};

int tool_fail(const char *what, int rc)
{
	const char *detail = cqrs_last_error();

	if (detail && detail[0])
		fprintf(stderr, "cqrs: %s: %s (%s)\n", what, cqrs_strerror(rc), detail);
	else
		fprintf(stderr, "cqrs: %s: %s\n", what, cqrs_strerror(rc));
	return 1;
}

static int usage(FILE *out)
{
	fprintf(out, "usage: cqrs COMMAND [ARGS...]\n\ncommands:\n");
	for (const cqrs_tool_cmd *c = commands; c->name; c++)
		fprintf(out, "  %s\n", c->usage);
	return out == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
		return usage(stdout);
	for (const cqrs_tool_cmd *c = commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "cqrs: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
