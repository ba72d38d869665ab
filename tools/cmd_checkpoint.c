/*
 * tools/cmd_checkpoint.c - `cqrs checkpoint ENGINE [VIEW]`: asks a running
 * engine for a checkpoint of its views (or of the projection that owns
 * VIEW) and waits until it is on disk; `cqrs checkpoint ls DIR`: every
 * checkpoint file under a data directory, verified.
 *
 * The request is a file in the engine's data directory (named in its
 * counters): DATA/checkpoints/.request or DATA/checkpoints/VIEW/.request.
 * The control segment is read-only to every process but the engine, so a
 * request is made by whoever may write the data directory, as the
 * engine's files are; the engine's checkpoint thread takes it within a
 * fraction of a second (engine/checkpoint_write.c). Progress is read from
 * the counters: the number of checkpoints taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/commands.h"
#include "cqrs.h"
#include "cqrs_counters.h"
#include "engine/checkpoint.h"
#include "shm/control.h"

static const tool_cmd_help ckpt_help = {
	"checkpoint",
	"usage: cqrs checkpoint ENGINE [VIEW] [--timeout SECONDS]\n"
	"       cqrs checkpoint ls DIR\n"
	"\n"
	"Asks the running engine ENGINE to checkpoint its views now (with VIEW: the\n"
	"projection that owns VIEW) into DATA/checkpoints/<view>/ckpt-<seq>.cqckpt,\n"
	"and waits until the checkpoint is on disk; prints its seq. A start whose\n"
	"views are missing (a reboot) or dirty (a kill -9) loads the newest valid\n"
	"checkpoint and replays only the journal after it.\n"
	"  --timeout SECONDS  how long to wait (default 60); exit 1 past it\n"
	"`ls DIR` lists every checkpoint under the data directory DIR, newest first\n"
	"per view, each verified (checksums, sizes): seq, bytes, valid or why not.\n"
};

static int ls(const char *dir)
{
	static struct cqrs__checkpoint_info info[1024];
	size_t n;
	int rc = tool_check_data_dir(dir);

	if (rc)
		return rc;
	rc = cqrs__checkpoint_list(dir, info, sizeof info / sizeof info[0], &n);
	if (rc)
		return tool_fail(dir, rc);
	printf("%-24s %20s %14s  %s\n", "view", "seq", "bytes", "state");
	for (size_t i = 0; i < n && i < sizeof info / sizeof info[0]; i++)
		printf("%-24s %20llu %14llu  %s\n", info[i].view, (unsigned long long)info[i].seq,
		       (unsigned long long)info[i].bytes, info[i].valid ? "valid" : info[i].why);
	if (n == 0)
		printf("(no checkpoint folders under %s/checkpoints)\n", dir);
	return TOOL_EXIT_OK;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* relaxed: counters with one writer each, orders nothing (as cqrs stat) */
#define LOAD(field) atomic_load_explicit((const _Atomic uint64_t *)&(field), memory_order_relaxed)

/* The engine took the request (the file is gone) and every projection's
 * newest checkpoint is at its applied seq: nothing new to write (an idle
 * engine answers a request so). */
static int up_to_date(const cqrs_counters *c, const char *request)
{
	if (access(request, F_OK) == 0)
		return 0;
	for (uint32_t i = 0; i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++)
		if (LOAD(c->ckpt_seq[i]) < LOAD(c->proj[i].applied_seq))
			return 0;
	return 1;
}

int cqrs_cmd_checkpoint(int argc, char **argv)
{
	char *pos[2], path[4096];
	uint64_t timeout_ms = 60000, size, taken, failed, start;
	const cqrs_counters *c;
	cqrs_ctl *ctl;
	int npos, rc, fd;
	const tool_opt opts[] = { { "--timeout", TOOL_OPT_SECONDS, &timeout_ms, 100, 86400000, NULL },
				  { NULL } };

	if ((rc = tool_args(&ckpt_help, argc, argv, opts, 1, 2, pos, &npos)) != TOOL_ARGS_OK)
		return rc;
	if (!strcmp(pos[0], "ls")) {
		if (npos != 2)
			return tool_usage_error(&ckpt_help, "ls needs the data directory");
		return ls(pos[1]);
	}
	rc = cqrs__ctl_open(pos[0], &ctl);
	if (rc)
		return tool_fail(pos[0], rc);
	c = cqrs__ctl_region(ctl, CQRS_CTL_COUNTERS, &size);
	/* acquire: pairs with the engine's release store of the magic */
	if (!c || size < sizeof *c ||
	    atomic_load_explicit((const _Atomic uint64_t *)&c->magic, memory_order_acquire) !=
		    CQRS_COUNTERS_MAGIC ||
	    c->version != CQRS_COUNTERS_VERSION || c->size != sizeof *c || !c->data_dir[0]) {
		cqrs__ctl_close(ctl);
		fprintf(stderr, "cqrs checkpoint: %s: no counters (engine starting, or another version)\n",
			pos[0]);
		return TOOL_EXIT_FAIL;
	}
	if (!c->ckpt_mode) {
		cqrs__ctl_close(ctl);
		fprintf(stderr, "cqrs checkpoint: %s has checkpoints off (checkpoint_copy -1)\n", pos[0]);
		return TOOL_EXIT_FAIL;
	}
	taken = LOAD(c->ckpt_taken);
	failed = LOAD(c->ckpt_failed);
	if (npos == 2)
		snprintf(path, sizeof path, "%.255s/checkpoints/%.31s/" CQRS_CKPT_REQUEST, c->data_dir,
			 pos[1]);
	else
		snprintf(path, sizeof path, "%.255s/checkpoints/" CQRS_CKPT_REQUEST, c->data_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = -errno;
		cqrs__ctl_close(ctl);
		fprintf(stderr, "cqrs checkpoint: %s: %s%s\n", path, strerror(-rc),
			rc == -ENOENT && npos == 2 ? " (no such view?)" : "");
		return TOOL_EXIT_FAIL;
	}
	close(fd);
	start = mono_ms();
	while (LOAD(c->ckpt_taken) == taken && LOAD(c->ckpt_failed) == failed && !up_to_date(c, path)) {
		if (mono_ms() - start > timeout_ms) {
			cqrs__ctl_close(ctl);
			fprintf(stderr, "cqrs checkpoint: %s: no checkpoint within %.1f s\n", pos[0],
				(double)timeout_ms / 1e3);
			return TOOL_EXIT_FAIL;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
	}
	if (LOAD(c->ckpt_failed) != failed) {
		cqrs__ctl_close(ctl);
		fprintf(stderr, "cqrs checkpoint: %s: the checkpoint failed (the engine's log says why)\n",
			pos[0]);
		return TOOL_EXIT_FAIL;
	}
	for (uint32_t i = 0; i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++)
		printf("%-24.31s checkpoint at seq %llu\n", c->proj[i].name,
		       (unsigned long long)LOAD(c->ckpt_seq[i]));
	cqrs__ctl_close(ctl);
	return TOOL_EXIT_OK;
}
