/*
 * tools/cmd_rm.c - `cqrs rm ENGINE`: removes the shared-memory segments
 * (control, views) that a stopped or dead engine left behind; refuses while
 * the engine runs. `cqrs rm --orphans ENGINE` removes only the segments
 * that nothing uses (tools/segments.h), also beside a running engine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tools/commands.h"
#include "tools/segments.h"
#include "cqrs.h"
#include "shm/segment.h"

static const tool_cmd_help rm_help = {
	"rm",
	"usage: cqrs rm [--orphans] ENGINE\n"
	"\n"
	"Removes the shared-memory segments (/dev/shm/cqrs.ENGINE.*) that a stopped\n"
	"or dead engine left behind. Refuses (exit 1) while the engine runs.\n"
	"  --orphans  removes only the segments `cqrs ls ENGINE` marks orphaned\n"
	"             (view generations no engine uses or will adopt, private names\n"
	"             of dead creators), never a running engine's current ones nor\n"
	"             another user's; prints each name and size. Exit 1 when one\n"
	"             could not be removed.\n"
};

static int rm_orphans(const char *engine)
{
	tool_seg *v;
	uint64_t bytes = 0;
	int n = tool_segments(engine, &v), removed = 0, status = TOOL_EXIT_OK;

	if (n < 0)
		return tool_fail("ls /dev/shm", n);
	for (int i = 0; i < n; i++) {
		char path[sizeof v[i].name + 1];
		int rc;

		if (!v[i].orphaned)
			continue;
		if (v[i].uid != geteuid()) {
			fprintf(stderr, "cqrs rm: %s: owned by uid %u, not removed\n", v[i].name,
				(unsigned)v[i].uid);
			status = TOOL_EXIT_FAIL;
			continue;
		}
		snprintf(path, sizeof path, "/%s", v[i].name);
		rc = cqrs__seg_retire_unlink(path);
		if (rc && rc != -ENOENT) {
			fprintf(stderr, "cqrs rm: %s: %s\n", v[i].name, cqrs_strerror(rc));
			status = TOOL_EXIT_FAIL;
			continue;
		}
		printf("removed %s (%llu bytes)\n", v[i].name, (unsigned long long)v[i].size);
		removed++;
		bytes += v[i].size;
	}
	free(v);
	printf("removed %d orphaned segment(s) of engine %s (%llu bytes)\n", removed, engine,
	       (unsigned long long)bytes);
	return status;
}

int cqrs_cmd_rm(int argc, char **argv)
{
	char *pos[1];
	int n, rc, orphans = 0;
	const tool_opt opts[] = { { "--orphans", TOOL_OPT_FLAG, &orphans, 0, 0, NULL }, { NULL } };

	if ((rc = tool_args(&rm_help, argc, argv, opts, 1, 1, pos, &n)) != TOOL_ARGS_OK)
		return rc;
	if (orphans)
		return rm_orphans(pos[0]);
	rc = cqrs_engine_remove_segments(pos[0]);
	if (rc < 0)
		return tool_fail(pos[0], rc);
	printf("removed %d segment(s) of engine %s\n", rc, pos[0]);
	return TOOL_EXIT_OK;
}
