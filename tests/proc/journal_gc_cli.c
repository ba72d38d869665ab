/*
 * tests/proc/journal_gc_cli.c - the CLI on a journal whose prefix
 * retention collected: `cqrs journal verify|dump|stat|repair` accept it
 * (it starts at the manifest's first seq), while a first segment deleted
 * by hand is still reported as missing; `cqrs journal gc --dry-run` lists
 * each segment with what pins it (no snapshot here: everything), `cqrs
 * journal gc` refuses while a writer holds the journal, and collects
 * nothing without a snapshot. Runs $BUILD/cqrs (BUILD defaults to build);
 * skips (77) if it is not built.
 */
#include <sys/wait.h>

#include "engine/journal/retention.h"
#include "tests/unit/test_journal_util.h"

static char g_cqrs[512];

static int run(const char *args, char *out, size_t cap)
{
	char cmd[2048];
	size_t n = 0;
	FILE *f;
	int st;

	snprintf(cmd, sizeof cmd, "%s journal %s 2>&1", g_cqrs, args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (n + 1 < cap && fgets(out + n, (int)(cap - n), f))
		n += strlen(out + n);
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond)) {                                  \
			fprintf(stderr, __VA_ARGS__);           \
			fprintf(stderr, "\n");                  \
			tu_rmrf(root);                          \
			return 1;                               \
		}                                               \
	} while (0)

int main(void)
{
	const char *b = getenv("BUILD");
	char root[256], dir[300], args[1024], want[128], seg[600];
	static char out[1 << 20];
	cqrs__ret_policy pol = { .action = CQRS__RET_DELETE };
	cqrs__ret_pins pins;
	cqrs__ret_summary sum;
	cqrs__ret_seg *segs;
	cqrs_journal_config c;
	cqrs_journal *j;
	uint64_t first;
	size_t n;
	int rc;

	snprintf(g_cqrs, sizeof g_cqrs, "%s/cqrs", b && *b ? b : "build");
	if (access(g_cqrs, X_OK) != 0) {
		printf("skip: %s not built\n", g_cqrs);
		return 77;
	}
	if (tu_mkdtemp(root, sizeof root, "cqrs_jgc") != 0)
		return 1;
	snprintf(dir, sizeof dir, "%s/journal", root);
	jt_config(&c, dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 16u << 10;
	CHECK(cqrs__journal_open(&j, &c, NULL) == 0, "open: %s", cqrs_last_error());
	CHECK(jt_append(j, 1500, 3, 1, NULL) == 0, "append");
	CHECK(jt_sync(j) == 0, "sync");

	/* A writer holds it: gc refuses, the dry run works. */
	snprintf(args, sizeof args, "gc %s", root);
	rc = run(args, out, sizeof out);
	CHECK(rc == 1 && strstr(out, "in use by a writer"), "gc beside a writer: rc %d: %s", rc, out);
	snprintf(args, sizeof args, "gc %s --dry-run", root);
	rc = run(args, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "00000000000000000001.seg  seqs 1..") &&
	      strstr(out, "keep: minimum 2 segments") &&
	      strstr(out, "no valid snapshot (restart replays from seq 1)") &&
	      strstr(out, "keep: active segment") && strstr(out, "would collect 0 segment(s)"),
	      "gc --dry-run: rc %d: %s", rc, out);
	CHECK(cqrs__journal_close(j) == 0, "close");

	/* Stopped, no snapshot: nothing goes. */
	snprintf(args, sizeof args, "gc %s", root);
	rc = run(args, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "collected 0 segment(s)"), "gc without snapshot: rc %d: %s", rc,
	      out);

	/* Collect a prefix through the library (as with a snapshot at 700). */
	memset(&pins, 0, sizeof pins);
	pins.snapshot_valid = true;
	pins.snapshot_seq = 700;
	CHECK(cqrs__retention_run_offline(dir, &pins, &pol, false, &segs, &n, &sum) == 0, "collect: %s",
	      cqrs_last_error());
	free(segs);
	first = sum.new_first_seq;
	CHECK(sum.collected > 0 && first > 1 && first <= 701, "collected %u, first %llu",
	      sum.collected, (unsigned long long)first);

	snprintf(args, sizeof args, "verify %s", dir);
	rc = run(args, out, sizeof out);
	snprintf(want, sizeof want, "seqs %llu..1500", (unsigned long long)first);
	CHECK(rc == 0 && strstr(out, want), "verify collected: rc %d: %s", rc, out);
	snprintf(args, sizeof args, "dump %s --limit 1", dir);
	rc = run(args, out, sizeof out);
	snprintf(want, sizeof want, "%llu Ev", (unsigned long long)first);
	CHECK(rc == 0 && !strncmp(out, want, strlen(want)), "dump collected: rc %d: %s", rc, out);
	snprintf(args, sizeof args, "dump %s --from 1000 --limit 1", dir);
	rc = run(args, out, sizeof out);
	CHECK(rc == 0 && !strncmp(out, "1000 Ev", 7), "dump --from: rc %d: %s", rc, out);
	snprintf(args, sizeof args, "dump %s --from 1 --limit 1", dir);
	rc = run(args, out, sizeof out);
	CHECK(rc == 1 && strstr(out, "collected by retention"), "dump --from 1: rc %d: %s", rc, out);
	snprintf(args, sizeof args, "stat %s", dir);
	rc = run(args, out, sizeof out);
	snprintf(want, sizeof want, "manifest: journal from seq %llu", (unsigned long long)first);
	CHECK(rc == 0 && strstr(out, want) && strstr(out, "retention (pins from") &&
	      strstr(out, "pin: no valid snapshot"), "stat collected: rc %d: %s", rc, out);
	snprintf(args, sizeof args, "repair %s", dir);
	rc = run(args, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "nothing to repair"), "repair collected: rc %d: %s", rc, out);

	/* The first segment left, deleted by hand: a loss, named. */
	CHECK(jt_segment(dir, 0, seg, sizeof seg) > 0, "segment");
	CHECK(unlink(seg) == 0, "unlink");
	snprintf(args, sizeof args, "verify %s", dir);
	rc = run(args, out, sizeof out);
	CHECK(rc == 4 && strstr(out, "is missing"), "verify lost first: rc %d: %s", rc, out);
	snprintf(args, sizeof args, "gc %s", root);
	rc = run(args, out, sizeof out);
	CHECK(rc == 4 && strstr(out, "is missing"), "gc on a damaged journal: rc %d: %s", rc, out);
	tu_rmrf(root);
	return 0;
}
