/*
 * tools/cmd_snapshot.c - `cqrs snapshot`: ask a running engine for a
 * write-model snapshot and wait for it (ENGINE), list a data folder's
 * snapshots (ls DIR), check them (verify DIR).
 *
 * The request goes through the engine's control segment: the counters
 * region's snap_requests word, which this process bumps (the segment is
 * mapped writable for that one word: the caller needs write permission on
 * it, as the engine's owner has), and which the command thread compares
 * with snap_served between batches. The answer is snap_served reaching
 * the value written, then snap_seq.
 *
 * verify checks each file's format, every checksum, and that its seq is
 * the one its name gives: what can be checked without the application's
 * code. That a snapshot equals the model a replay of the journal builds
 * (catching a nondeterministic decide or evolve) needs decide and evolve:
 * the engine's cqrs_engine_verify_snapshot, which an application exposes
 * in its own binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cqrs.h"
#include "cqrs_counters.h"
#include "engine/snapshot.h"
#include "shm/control.h"
#include "shm/segment.h"
#include "tools/commands.h"

static const tool_cmd_help help = {
	"snapshot",
	"usage: cqrs snapshot ENGINE [--timeout SECONDS]\n"
	"       cqrs snapshot ls DIR\n"
	"       cqrs snapshot verify DIR\n"
	"\n"
	"ENGINE: asks the running engine for a snapshot of its write model and waits\n"
	"until the file is in place; prints its seq. ls: the snapshots in the data\n"
	"folder DIR (newest first: seq, size, age, valid). verify: checks each one's\n"
	"format and checksums; exit 1 when any is invalid. (Comparing a snapshot with\n"
	"the model a replay builds needs the application's code: see\n"
	"cqrs_engine_verify_snapshot.)\n",
};

static int list(const char *dir, int verify_only)
{
	struct cqrs__snapshot_info *info;
	size_t n, shown;
	int bad = 0, rc;
	struct timespec now;

	if ((rc = tool_check_data_dir(dir)))
		return rc;
	info = calloc(256, sizeof *info);
	if (!info)
		return tool_fail(dir, -ENOMEM);
	rc = cqrs__snapshot_list(dir, info, 256, &n);
	if (rc) {
		free(info);
		return tool_fail(dir, rc);
	}
	clock_gettime(CLOCK_REALTIME, &now);
	shown = n < 256 ? n : 256;
	if (!verify_only)
		printf("%-20s %14s %10s  %s\n", "SEQ", "BYTES", "AGE", "STATE");
	for (size_t i = 0; i < shown; i++) {
		double age = ((double)now.tv_sec * 1e9 + (double)now.tv_nsec -
			      (double)info[i].mtime_ns) / 1e9;
		bad += !info[i].valid;
		if (verify_only)
			printf("%s: %s%s%s\n", info[i].path, info[i].valid ? "ok" : "INVALID: ",
			       info[i].valid ? "" : info[i].why, "");
		else
			printf("%-20llu %14llu %9.0fs  %s%s\n", (unsigned long long)info[i].seq,
			       (unsigned long long)info[i].bytes, age, info[i].valid ? "valid" : "invalid: ",
			       info[i].valid ? "" : info[i].why);
	}
	printf("%zu snapshot(s)%s", n, bad ? "" : "\n");
	if (bad)
		printf(", %d invalid\n", bad);
	free(info);
	return bad && verify_only ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

/* The engine's counters, mapped writable. */
static int map_counters(const char *engine, cqrs_counters **out, void **base, size_t *len)
{
	char name[CQRS_SEG_NAME_MAX];
	cqrs_ctl_params p;
	struct stat st;
	cqrs_ctl *ctl;
	void *m;
	int fd, rc;

	rc = cqrs__ctl_open(engine, &ctl); /* names, owner trust, validation */
	if (rc)
		return rc;
	cqrs__ctl_close(ctl);
	if ((rc = cqrs__seg_name_ctl(name, sizeof name, engine)))
		return rc;
	fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	rc = m == MAP_FAILED ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	rc = cqrs__ctl_check(m, (size_t)st.st_size, &p);
	if (!rc && p.counters_size < sizeof(cqrs_counters))
		rc = -EPROTO;
	if (rc) {
		munmap(m, (size_t)st.st_size);
		return rc;
	}
	*out = (cqrs_counters *)(void *)((char *)m + p.counters_off);
	*base = m;
	*len = (size_t)st.st_size;
	return 0;
}

static int request(const char *engine, uint64_t timeout_ms)
{
	cqrs_counters *c = NULL;
	void *base = NULL;
	size_t len = 0;
	uint64_t want, failed, waited = 0;
	int rc = map_counters(engine, &c, &base, &len);

	if (rc)
		return tool_fail(engine, rc);
	/* acquire: pairs with the engine's release store of the magic */
	if (atomic_load_explicit((_Atomic uint64_t *)&c->magic, memory_order_acquire) !=
		    CQRS_COUNTERS_MAGIC ||
	    c->size < sizeof *c) {
		munmap(base, len);
		fprintf(stderr, "cqrs: %s: the engine's counters have no snapshot words (an older "
			"engine?)\n", engine);
		return TOOL_EXIT_FAIL;
	}
	/* seq_cst RMW: one request more, whoever else asks at once; the
	 * engine reads it with a relaxed load between batches. */
	failed = atomic_load_explicit((_Atomic uint64_t *)&c->snap_failed, memory_order_relaxed);
	want = atomic_fetch_add((_Atomic uint64_t *)&c->snap_requests, 1) + 1;
	/* acquire: pairs with the engine's release store of snap_served, after
	 * snap_seq and snap_failed */
	while (atomic_load_explicit((_Atomic uint64_t *)&c->snap_served, memory_order_acquire) < want) {
		if (timeout_ms && waited >= timeout_ms) {
			munmap(base, len);
			fprintf(stderr, "cqrs: %s: no snapshot within %.1f s\n", engine,
				(double)timeout_ms / 1000);
			return TOOL_EXIT_FAIL;
		}
		usleep(2000);
		waited += 2;
	}
	if (atomic_load_explicit((_Atomic uint64_t *)&c->snap_failed, memory_order_relaxed) != failed) {
		munmap(base, len);
		fprintf(stderr, "cqrs: %s: the snapshot failed (the engine's log says why)\n", engine);
		return TOOL_EXIT_FAIL;
	}
	if (atomic_load_explicit((_Atomic uint64_t *)&c->snap_seq, memory_order_relaxed) == 0) {
		munmap(base, len);
		fprintf(stderr, "cqrs: %s: the engine takes no snapshots (no store or snapshot "
			"callbacks registered) or has nothing to snapshot yet\n", engine);
		return TOOL_EXIT_FAIL;
	}
	printf("snapshot at seq %llu (%llu bytes, fork %llu us)\n",
	       (unsigned long long)atomic_load_explicit((_Atomic uint64_t *)&c->snap_seq,
							 memory_order_relaxed),
	       (unsigned long long)atomic_load_explicit((_Atomic uint64_t *)&c->snap_bytes,
							 memory_order_relaxed),
	       (unsigned long long)atomic_load_explicit((_Atomic uint64_t *)&c->snap_fork_us,
							 memory_order_relaxed));
	munmap(base, len);
	return TOOL_EXIT_OK;
}

int cqrs_cmd_snapshot(int argc, char **argv)
{
	uint64_t timeout_ms = 60000;
	const tool_opt opts[] = {
		{ "--timeout", TOOL_OPT_SECONDS, &timeout_ms, 0, 86400000, NULL },
		{ NULL, 0, NULL, 0, 0, NULL },
	};
	char *pos[2];
	int npos, rc = tool_args(&help, argc, argv, opts, 1, 2, pos, &npos);

	if (rc != TOOL_ARGS_OK)
		return rc;
	if (npos == 2 && strcmp(pos[0], "ls") == 0)
		return list(pos[1], 0);
	if (npos == 2 && strcmp(pos[0], "verify") == 0)
		return list(pos[1], 1);
	if (npos == 2)
		return tool_usage_error(&help, "unknown subcommand '%s'", pos[0]);
	return request(pos[0], timeout_ms);
}
