/*
 * tools/cmd_rm.c - `cqrs rm ENGINE`: removes the shared-memory segments
 * (control, views) that a stopped or dead engine left behind; refuses while
 * the engine runs.
 */
#include <stdio.h>

#include "tools/commands.h"
#include "cqrs.h"

int cqrs_cmd_rm(int argc, char **argv)
{
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: cqrs rm ENGINE\n");
		return 2;
	}
	rc = cqrs_engine_remove_segments(argv[1]);
	if (rc < 0)
		return tool_fail(argv[1], rc);
	printf("removed %d segment(s) of engine %s\n", rc, argv[1]);
	return 0;
}
