/*
 * tools/commands.h - the `cqrs` tool's subcommands. Each lives in its own
 * tools/cmd_<name>.c and is listed in the table in tools/cqrs.c. A command
 * gets argv starting at its own name and returns the process exit status
 * (enum tool_exit); it parses its arguments with tool_args() and reports
 * failures with tool_fail().
 */
#ifndef CQRS_TOOLS_COMMANDS_H
#define CQRS_TOOLS_COMMANDS_H

#include "tools/args.h"
#include "tools/out.h"

typedef struct cqrs_tool_cmd {
	const char *name;
	const char *summary; /* one line for `cqrs --help` */
	int (*run)(int argc, char **argv);
} cqrs_tool_cmd;

int cqrs_cmd_journal(int argc, char **argv); /* tools/cmd_journal.c */
int cqrs_cmd_ls(int argc, char **argv);      /* tools/cmd_ls.c */
int cqrs_cmd_view(int argc, char **argv);    /* tools/cmd_view.c */
int cqrs_cmd_stat(int argc, char **argv);    /* tools/cmd_stat.c */
int cqrs_cmd_deadletters(int argc, char **argv); /* tools/cmd_deadletters.c */
int cqrs_cmd_rm(int argc, char **argv);      /* tools/cmd_rm.c */
int cqrs_cmd_submit(int argc, char **argv);  /* tools/cmd_submit.c */
int cqrs_cmd_metrics(int argc, char **argv); /* tools/cmd_metrics.c */
int cqrs_cmd_snapshot(int argc, char **argv); /* tools/cmd_snapshot.c */
int cqrs_cmd_checkpoint(int argc, char **argv); /* tools/cmd_checkpoint.c */

#endif
