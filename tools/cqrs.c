/*
 * tools/cqrs.c - the `cqrs` command-line tool: dispatches to subcommands
 * (journal, view, ls, stat, ...), each in its own tools/cmd_*.c file;
 * answers --help, --version and `help COMMAND`. The manual is cqrs(1)
 * (man/cqrs.1).
 */
#include <stdio.h>
#include <string.h>

#include "cqrs_common.h"
#include "tools/commands.h"

static const cqrs_tool_cmd commands[] = {
	{ "ls", "engines in /dev/shm, their state and views", cqrs_cmd_ls },
	{ "stat", "an engine's counters, projections and latency (--watch)", cqrs_cmd_stat },
	{ "view", "read a view: get KEY, find FIELD VALUE, dump", cqrs_cmd_view },
	{ "submit", "send a command through the engine's gateway", cqrs_cmd_submit },
	{ "journal", "check, print or repair a journal: verify, dump, stat, repair", cqrs_cmd_journal },
	{ "snapshot", "write-model snapshots: take one (ENGINE), ls DIR, verify DIR", cqrs_cmd_snapshot },
	{ "deadletters", "the events projections refused", cqrs_cmd_deadletters },
	{ "metrics", "serve metrics (Prometheus) and an HTTP/JSON gateway", cqrs_cmd_metrics },
	{ "checkpoint", "checkpoint an engine's views now; ls DIR lists checkpoints", cqrs_cmd_checkpoint },
	{ "rm", "remove the segments of a stopped or dead engine", cqrs_cmd_rm },
	{ NULL, NULL, NULL }
};

static int usage(FILE *out)
{
	fprintf(out, "usage: cqrs COMMAND [ARGS...]\n"
		     "       cqrs COMMAND --help | cqrs help COMMAND\n"
		     "       cqrs --version\n\ncommands:\n");
	for (const cqrs_tool_cmd *c = commands; c->name; c++)
		fprintf(out, "  %-12s %s\n", c->name, c->summary);
	fprintf(out, "\nexit status:\n"
		     "  0  success (the engine accepted the command)\n"
		     "  1  the operation failed, or the engine said no (rejected, conflict,\n"
		     "     duplicate, not found)\n"
		     "  2  usage: an unknown option, a missing or malformed argument; nothing done\n"
		     "  3  journal verify: a torn tail (the next start cuts it)\n"
		     "  4  journal verify, dump, stat: the journal is corrupt\n"
		     "\nSee cqrs(1).\n");
	return out == stderr ? TOOL_EXIT_USAGE : TOOL_EXIT_OK;
}

static const cqrs_tool_cmd *find(const char *name)
{
	for (const cqrs_tool_cmd *c = commands; c->name; c++)
		if (!strcmp(name, c->name))
			return c;
	return NULL;
}

int main(int argc, char **argv)
{
	const cqrs_tool_cmd *c;

	if (argc < 2)
		return usage(stderr);
	if (tool_is_help(argv[1]))
		return argc == 2 ? usage(stdout) : usage(stderr);
	if (!strcmp(argv[1], "--version")) {
		if (argc != 2)
			return usage(stderr);
		printf("cqrs %s\n", CQRS_VERSION_STRING);
		return TOOL_EXIT_OK;
	}
	if (!strcmp(argv[1], "help")) {
		char *help[] = { NULL, "--help", NULL };
		if (argc == 2)
			return usage(stdout);
		if (argc != 3 || !(c = find(argv[2]))) {
			fprintf(stderr, "cqrs help: %s\n", argc == 3 ? "no such command" : "one command");
			return usage(stderr);
		}
		help[0] = argv[2];
		return c->run(2, help);
	}
	c = find(argv[1]);
	if (c)
		return c->run(argc - 1, argv + 1);
	fprintf(stderr, "cqrs: unknown %s '%s'\n", argv[1][0] == '-' ? "option" : "command", argv[1]);
	return usage(stderr);
}
