/*
 * tools/cmd_rm.c - `cqrs rm ENGINE`: removes the shared-memory segments
 * (control, views) that a stopped or dead engine left behind; refuses while
 * the engine runs.
 */
#include <stdio.h>

#include "tools/commands.h"
#include "cqrs.h"

static const tool_cmd_help rm_help = {
	"rm",
	"usage: cqrs rm ENGINE\n"
	"\n"
	"Removes the shared-memory segments (/dev/shm/cqrs.ENGINE.*) that a stopped\n"
	"or dead engine left behind. Refuses (exit 1) while the engine runs.\n"
};

int cqrs_cmd_rm(int argc, char **argv)
{
	char *pos[1];
	int n, rc;

	if ((rc = tool_args(&rm_help, argc, argv, NULL, 1, 1, pos, &n)) != TOOL_ARGS_OK)
		return rc;
	rc = cqrs_engine_remove_segments(pos[0]);
	if (rc < 0)
		return tool_fail(pos[0], rc);
	printf("removed %d segment(s) of engine %s\n", rc, pos[0]);
	return TOOL_EXIT_OK;
}
