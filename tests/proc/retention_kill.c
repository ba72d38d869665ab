/*
 * tests/proc/retention_kill.c - journal retention under kill -9: a child
 * appends events in random command groups, lands "snapshots" and "view
 * checkpoints" (files holding a durable seq, written tmp + fsync + rename,
 * as the real ones are) and collects the journal against them, at random;
 * the parent kills it at a random moment (often in the middle of a
 * collection or a roll), then restarts: the writer must open (recovery),
 * the journal must still hold every seq after the oldest pin a restart
 * would use, and the state a restart builds (the pinned state, computed
 * from a reference copy of the whole journal, plus the journal's tail
 * after it) must equal one full replay of the reference copy. The
 * reference is a folder of hard links to every segment the writer
 * created, made before any collection could take it, so it holds the
 * same bytes (recovery's cuts included) and survives the collections.
 * Usage: retention_kill [CYCLES] (default 25; `make soak` runs more).
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "engine/journal/retention.h"
#include "tests/unit/test_journal_util.h"

static char g_root[256], g_dir[300], g_ref[300];

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond)) {                                  \
			fprintf(stderr, __VA_ARGS__);           \
			fprintf(stderr, "\n");                  \
			return 1;                               \
		}                                               \
	} while (0)

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Links every segment of the journal not yet in the reference. */
static void link_new_segments(void)
{
	int fd = open(g_dir, O_RDONLY | O_DIRECTORY);
	uint64_t *segs = NULL;
	int n = fd >= 0 ? cqrs__jseg_list(fd, &segs) : 0;

	for (int i = 0; i < n; i++) {
		char name[32], a[400], b[400];

		cqrs__jseg_name(name, sizeof name, segs[i]);
		snprintf(a, sizeof a, "%s/%s", g_dir, name);
		snprintf(b, sizeof b, "%s/%s", g_ref, name);
		if (access(b, F_OK) != 0)
			(void)link(a, b);
	}
	free(segs);
	if (fd >= 0)
		close(fd);
}

/* A pin file (seq as text), landed atomically: tmp, fsync, rename. */
static void write_pin(const char *name, uint64_t seq)
{
	char tmp[400], path[400], buf[32];
	int fd, len = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)seq);

	snprintf(tmp, sizeof tmp, "%s/.tmp-%s", g_root, name);
	snprintf(path, sizeof path, "%s/%s", g_root, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	if (write(fd, buf, (size_t)len) == len && fsync(fd) == 0)
		(void)rename(tmp, path);
	close(fd);
}

static uint64_t read_pin(const char *name, int *have)
{
	char path[400], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", g_root, name);
	f = fopen(path, "r");
	*have = f != NULL;
	if (!f)
		return 0;
	if (!fgets(buf, sizeof buf, f))
		buf[0] = 0;
	fclose(f);
	return strtoull(buf, NULL, 10);
}

static void child(uint64_t seed)
{
	cqrs__ret_policy pol = { .action = CQRS__RET_DELETE };
	cqrs__ret_pins pins;
	cqrs_journal_config c;
	cqrs_journal *j;
	int have_s, have_c;

	rnd_state = seed;
	link_new_segments();
	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 16u << 10;
	if (cqrs__journal_open(&j, &c, NULL) != 0)
		_exit(3);
	link_new_segments();
	for (int round = 0; round < 200; round++) {
		uint64_t durable;

		if (jt_append(j, 20 + (int)(rnd() % 200), 4, 3, NULL) != 0 || jt_sync(j) != 0)
			_exit(4);
		link_new_segments(); /* before any collection could take them */
		durable = cqrs__journal_durable_seq(j);
		/* Pins only move forward (a newer snapshot or checkpoint). */
		if (rnd() % 3 == 0) {
			uint64_t old = read_pin("snapshot", &have_s), seq = durable - rnd() % (durable / 2 + 1);
			write_pin("snapshot", seq > old ? seq : old);
		}
		if (rnd() % 3 == 0) {
			uint64_t old = read_pin("checkpoint", &have_c), seq = durable - rnd() % (durable / 2 + 1);
			write_pin("checkpoint", seq > old ? seq : old);
		}
		if (rnd() % 2 == 0) {
			cqrs__ret_seg *segs;
			cqrs__ret_summary sum;
			int n;

			memset(&pins, 0, sizeof pins);
			pins.snapshot_seq = read_pin("snapshot", &have_s);
			pins.snapshot_valid = have_s;
			pins.nviews = 1;
			snprintf(pins.views[0].view, sizeof pins.views[0].view, "v");
			pins.views[0].seq = read_pin("checkpoint", &have_c);
			pins.views[0].valid = have_c;
			pol.min_segments = (uint32_t)(rnd() % 3);
			n = cqrs__retention_scan(g_dir, &segs, NULL);
			if (n > 0) {
				cqrs__retention_plan(segs, (size_t)n, &pins, &pol, &sum);
				(void)cqrs__retention_collect(g_dir, j, segs, (size_t)n, &pol, &sum);
			}
			free(segs);
		}
	}
	cqrs__journal_close(j);
	_exit(0);
}

/* The model: a fold of the records in seq order. */
static uint64_t fold(uint64_t h, const cqrs_jrec *r)
{
	return (h ^ r->checksum) * 0x100000001b3ull + r->seq;
}

/* Folds dir's records [from, to] into *h; returns the last seq folded
 * (from - 1 when none) or -1 on an error or a gap. */
static int64_t fold_range(const char *dir, uint64_t from, uint64_t to, uint64_t *h)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	uint64_t expect = from;
	int rc;

	if (from > to)
		return (int64_t)from - 1;
	if (cqrs__journal_iter_open(&it, dir, from) != 0)
		return -1;
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1 && r->seq <= to) {
		if (r->seq != expect) {
			cqrs__journal_iter_close(it);
			return -1;
		}
		*h = fold(*h, r);
		expect++;
	}
	cqrs__journal_iter_close(it);
	return rc < 0 ? -1 : (int64_t)expect - 1;
}

static int check_restart(int cycle)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	uint64_t s, ck, pin, next, full = 0, restored = 0;
	int have_s, have_c;
	int64_t end;

	/* The restart: recovery opens the journal. */
	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 16u << 10;
	CHECK(cqrs__journal_open(&j, &c, NULL) == 0, "cycle %d: the journal does not open: %s", cycle,
	      cqrs_last_error());
	next = cqrs__journal_next_seq(j);
	CHECK(cqrs__journal_close(j) == 0, "cycle %d: close", cycle);
	link_new_segments();
	s = read_pin("snapshot", &have_s);
	ck = read_pin("checkpoint", &have_c);
	pin = have_s && have_c ? (s < ck ? s : ck) : 0;
	/* A full replay of the reference. */
	end = fold_range(g_ref, 1, next - 1, &full);
	CHECK(end == (int64_t)next - 1, "cycle %d: the reference ends at %lld, the journal at %llu",
	      cycle, (long long)end, (unsigned long long)(next - 1));
	/* The restart's: the pinned state (from the reference), then the
	 * journal's tail after the pin, which retention must have kept. */
	CHECK(fold_range(g_ref, 1, pin, &restored) == (int64_t)pin, "cycle %d: reference to %llu",
	      cycle, (unsigned long long)pin);
	end = fold_range(g_dir, pin + 1, next - 1, &restored);
	CHECK(end == (int64_t)next - 1, "cycle %d: the journal lost seqs a restart needs: pins %llu "
	      "(snapshot %s%llu, checkpoint %s%llu), read to %lld of %llu: %s", cycle,
	      (unsigned long long)pin, have_s ? "" : "none ", (unsigned long long)s,
	      have_c ? "" : "none ", (unsigned long long)ck, (long long)end,
	      (unsigned long long)(next - 1), cqrs_last_error());
	CHECK(restored == full, "cycle %d: the restart's state differs from a full replay", cycle);
	return 0;
}

int main(int argc, char **argv)
{
	int cycles = argc > 1 ? atoi(argv[1]) : 25, collected_any = 0;

	rnd_state = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
	if (tu_mkdtemp(g_root, sizeof g_root, "cqrs_retkill") != 0)
		return 1;
	snprintf(g_dir, sizeof g_dir, "%s/journal", g_root);
	snprintf(g_ref, sizeof g_ref, "%s/reference", g_root);
	if (mkdir(g_dir, 0755) != 0 || mkdir(g_ref, 0755) != 0)
		return 1;
	printf("seed %llu\n", (unsigned long long)rnd_state);
	for (int cy = 0; cy < cycles; cy++) {
		uint64_t seed = rnd();
		pid_t pid = fork();
		int st, rc;

		if (pid == 0)
			child(seed);
		usleep((useconds_t)(1000 + rnd() % 60000));
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
			fprintf(stderr, "cycle %d: the child failed (%d)\n", cy, WEXITSTATUS(st));
			tu_rmrf(g_root);
			return 1;
		}
		rc = check_restart(cy);
		if (rc) {
			fprintf(stderr, "kept for inspection: %s\n", g_root);
			return rc;
		}
		{
			uint64_t *segs = NULL;
			int fd = open(g_dir, O_RDONLY | O_DIRECTORY);
			int n = cqrs__jseg_list(fd, &segs);
			collected_any |= n > 0 && segs[0] > 1;
			free(segs);
			close(fd);
		}
	}
	printf("%d cycles, %s\n", cycles, collected_any ? "segments collected" : "nothing collected");
	tu_rmrf(g_root);
	return collected_any || cycles < 5 ? 0 : 1;
}
