/*
 * tests/unit/test_retention.c - journal retention: the plan against a
 * brute-force reference on random segments, pins and policies (every
 * segment a restart needs is kept, the active one always, only a prefix
 * goes); collection on real journals: the manifest records the collected
 * prefix, the journal reopens, appends and reads from its new first seq,
 * and a reader asking for seq 1 learns where it starts; a crash between
 * the manifest and the files (leftovers skipped, finished by the next
 * collection); a first segment deleted by hand is still a loss; archive
 * and hook actions; collection beside a running writer, whose later
 * manifests keep the prefix; the offline run refuses while a writer holds
 * the journal; the engine's housekeeping thread, woken by segment rolls,
 * plans, asks the replication hook and collects nothing while no snapshot
 * exists; a start on a journal collected with no snapshot to load
 * refuses, naming the missing seqs. CQRS_RET_ITERS scales the model-based test (`make soak`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "engine/journal/retention.h"
#include "tests/lib/bank.h"
#include "tests/unit/test_journal_util.h"

static char g_dir[256];

static int setup(void **state)
{
	(void)state;
	cqrs__jfault_disarm();
	return tu_mkdtemp(g_dir, sizeof g_dir, "cqrs_retention");
}

static int teardown(void **state)
{
	(void)state;
	tu_rmrf(g_dir);
	return 0;
}

/* ---- the plan, model-based ------------------------------------------------------- */

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* Whether segment k may go by the rules alone (brute force, no prefix). */
static int may_go(const cqrs__ret_seg *s, size_t n, size_t k, const cqrs__ret_pins *p,
		  const cqrs__ret_policy *pol)
{
	uint64_t newer_bytes = 0;
	uint32_t newer = 0;

	if (s[k].leftover)
		return 1;
	if (s[k].active || pol->action == CQRS__RET_KEEP)
		return 0;
	/* Every seq in it must lie below what each consumer needs. */
	for (uint64_t q = s[k].first_seq; q <= s[k].last_seq; q++) {
		if (!p->snapshot_valid || q > p->snapshot_seq)
			return 0;
		if (p->views_unknown)
			return 0;
		for (uint32_t v = 0; v < p->nviews; v++)
			if (!p->views[v].valid || q > p->views[v].seq)
				return 0;
		if (p->replication && q > p->replicated_seq)
			return 0;
	}
	for (size_t m = k + 1; m < n; m++)
		if (!s[m].active && !s[m].leftover) {
			newer++;
			newer_bytes += s[m].bytes;
		}
	if (newer < pol->min_segments)
		return 0;
	if (pol->min_bytes && newer_bytes < pol->min_bytes)
		return 0;
	if (pol->min_age_s && pol->now_ns - s[k].mtime_ns < (int64_t)pol->min_age_s * 1000000000)
		return 0;
	return 1;
}

static void test_plan_model(void **state)
{
	const char *e = getenv("CQRS_RET_ITERS");
	int iters = e && atoi(e) > 0 ? atoi(e) : 20000;

	(void)state;
	for (int it = 0; it < iters; it++) {
		size_t n = 1 + rnd_below(12), left = rnd_below(3) == 0 ? rnd_below(n) : 0;
		cqrs__ret_seg segs[16];
		cqrs__ret_pins *pins = calloc(1, sizeof *pins);
		cqrs__ret_policy pol = { .now_ns = 1000ll * 1000000000 };
		cqrs__ret_summary sum;
		uint64_t seq = 1 + rnd_below(5), top;
		size_t p = 0;

		assert_non_null(pins);
		memset(segs, 0, sizeof segs);
		for (size_t k = 0; k < n; k++) {
			segs[k].first_seq = seq;
			seq += 1 + rnd_below(20);
			segs[k].last_seq = k + 1 < n ? seq - 1 : UINT64_MAX;
			segs[k].bytes = 100 + rnd_below(1000);
			segs[k].mtime_ns = (int64_t)(990 + rnd_below(10)) * 1000000000;
			segs[k].leftover = k < left;
			segs[k].active = k + 1 == n;
		}
		top = seq + 5;
		pins->snapshot_valid = rnd_below(4) != 0;
		pins->snapshot_seq = rnd_below(top);
		pins->nviews = (uint32_t)rnd_below(4);
		for (uint32_t v = 0; v < pins->nviews; v++) {
			snprintf(pins->views[v].view, sizeof pins->views[v].view, "v%u", v);
			pins->views[v].valid = rnd_below(5) != 0;
			pins->views[v].seq = rnd_below(top);
		}
		pins->views_unknown = rnd_below(20) == 0;
		pins->replication = rnd_below(3) == 0;
		pins->replicated_seq = rnd_below(8) == 0 ? UINT64_MAX : rnd_below(top);
		pol.min_segments = (uint32_t)rnd_below(4);
		pol.min_bytes = rnd_below(3) == 0 ? rnd_below(3000) : 0;
		pol.min_age_s = rnd_below(3) == 0 ? rnd_below(12) : 0;
		pol.action = rnd_below(10) == 0 ? CQRS__RET_KEEP : CQRS__RET_DELETE;

		cqrs__retention_plan(segs, n, pins, &pol, &sum);
		/* The reference: the longest prefix of segments that may go
		 * (leftovers always do, and only lie at the start). */
		while (p < n && may_go(segs, n, p, pins, &pol))
			p++;
		for (size_t k = 0; k < n; k++) {
			int collected = segs[k].action != CQRS__RET_KEEP;
			if (collected != (k < p))
				fail_msg("iteration %d: segment %zu (%llu..%llu) %s, reference %s (pins '%s')",
					 it, k, (unsigned long long)segs[k].first_seq,
					 (unsigned long long)segs[k].last_seq,
					 collected ? "collected" : "kept", k < p ? "collects" : "keeps",
					 segs[k].pins);
			/* A kept segment says why; the active one is kept. */
			if (!collected)
				assert_true(segs[k].pins[0] != 0);
			if (segs[k].active)
				assert_false(collected);
			/* Nothing a restart still reads goes. */
			if (collected && !segs[k].leftover)
				assert_true(segs[k].last_seq < sum.need_seq);
		}
		assert_int_equal(sum.collect, p);
		assert_int_equal(sum.new_first_seq, segs[p < n ? p : n - 1].first_seq);
		free(pins);
	}
}

/* ---- collection on real journals -------------------------------------------------- */

/* A journal of about `events` events in 16 KiB segments (so there are
 * many), closed. Returns the last seq. */
static uint64_t make_journal(const char *dir, int events)
{
	cqrs_journal_config c;
	cqrs_journal *j;

	jt_config(&c, dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 16u << 10;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(jt_append(j, events, 3, 4, NULL), 0);
	assert_int_equal(jt_sync(j), 0);
	uint64_t last = cqrs__journal_next_seq(j) - 1;
	assert_int_equal(cqrs__journal_close(j), 0);
	return last;
}

static int count_segments(const char *dir)
{
	uint64_t *segs = NULL;
	int fd = open(dir, O_RDONLY | O_DIRECTORY), n;

	assert_true(fd >= 0);
	n = cqrs__jseg_list(fd, &segs);
	free(segs);
	close(fd);
	return n;
}

/* Reads dir from seq 0: the records must run from `first` to `last`
 * without a gap, with their content. */
static void check_reads(const char *dir, uint64_t first, uint64_t last)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	uint64_t expect = first;
	int rc;

	assert_int_equal(cqrs__journal_iter_open(&it, dir, 0), 0);
	assert_int_equal(cqrs__journal_iter_start(it), first);
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1) {
		assert_int_equal(r->seq, expect);
		assert_true(jt_payload_ok(r));
		expect++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(expect, last + 1);
	cqrs__journal_iter_close(it);
}

static void pins_snapshot(cqrs__ret_pins *p, uint64_t seq)
{
	memset(p, 0, sizeof *p);
	p->snapshot_valid = true;
	p->snapshot_seq = seq;
}

static void test_collect_reopen(void **state)
{
	cqrs__ret_policy pol = { .min_segments = 1, .action = CQRS__RET_DELETE };
	cqrs__ret_pins *pins = malloc(sizeof *pins);
	cqrs__ret_summary sum;
	cqrs__ret_seg *segs;
	cqrs_journal_config c;
	cqrs_journal_extent x;
	cqrs_journal *j;
	uint64_t last = make_journal(g_dir, 3000), first;
	int before = count_segments(g_dir);
	size_t n;

	(void)state;
	assert_true(before >= 8);
	/* No snapshot: nothing goes. */
	memset(pins, 0, sizeof *pins);
	assert_int_equal(cqrs__retention_run_offline(g_dir, pins, &pol, false, &segs, &n, &sum), 0);
	assert_int_equal(sum.collected, 0);
	assert_int_equal(count_segments(g_dir), before);
	assert_true(strstr(segs[0].pins, "no valid snapshot") != NULL);
	free(segs);
	/* A snapshot in the middle: the segments wholly below it go. */
	pins_snapshot(pins, last / 2);
	assert_int_equal(cqrs__retention_run_offline(g_dir, pins, &pol, true, &segs, &n, &sum), 0);
	assert_true(sum.collect > 0);
	assert_int_equal(count_segments(g_dir), before); /* dry run */
	free(segs);
	assert_int_equal(cqrs__retention_run_offline(g_dir, pins, &pol, false, &segs, &n, &sum), 0);
	free(segs);
	first = sum.new_first_seq;
	assert_true(sum.collected > 0 && first > 1 && first <= last / 2 + 1);
	assert_int_equal(count_segments(g_dir), before - (int)sum.collected);
	assert_int_equal(cqrs__journal_extent(g_dir, &x), 0);
	assert_int_equal(x.first_seq, first);
	check_reads(g_dir, first, last);
	{
		/* Asking for a collected seq is an error, not the seqs after it;
		 * from the first seq on it reads. */
		cqrs_journal_iter *it;
		assert_int_equal(cqrs__journal_iter_open(&it, g_dir, 1), CQRS_ENOTFOUND);
		assert_non_null(strstr(cqrs_last_error(), "collected by retention"));
		assert_int_equal(cqrs__journal_iter_open(&it, g_dir, first - 1), CQRS_ENOTFOUND);
		assert_int_equal(cqrs__journal_iter_open(&it, g_dir, first), 0);
		cqrs__journal_iter_close(it);
	}
	/* The writer opens it, appends, rolls (its manifests keep the
	 * prefix), closes; it opens again. */
	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 16u << 10;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(cqrs__journal_next_seq(j), last + 1);
	assert_int_equal(jt_append(j, 500, 3, 4, NULL), 0);
	assert_int_equal(jt_sync(j), 0);
	last = cqrs__journal_next_seq(j) - 1;
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_int_equal(cqrs__journal_extent(g_dir, &x), 0);
	assert_int_equal(x.first_seq, first);
	check_reads(g_dir, first, last);
	/* Repair finds nothing to do on a collected journal. */
	{
		cqrs_journal_repair r;
		assert_int_equal(cqrs__journal_repair(g_dir, &r), 0);
		assert_string_equal(r.problem, "");
		assert_int_equal(r.segments_moved, 0);
	}
	check_reads(g_dir, first, last);
	free(pins);
}

static void test_crash_between_manifest_and_files(void **state)
{
	cqrs__ret_policy pol = { .action = CQRS__RET_DELETE };
	cqrs__ret_pins *pins = malloc(sizeof *pins);
	cqrs__ret_summary sum;
	cqrs__ret_seg *segs;
	cqrs_journal_config c;
	cqrs_journal *j;
	char keep[300], a[900], b[900];
	uint64_t last = make_journal(g_dir, 2000), first;
	size_t n;

	(void)state;
	/* Keep hard links of the first two segments, collect, put them back:
	 * what a crash after the manifest and before the unlinks leaves. */
	snprintf(keep, sizeof keep, "%s/keep", g_dir);
	assert_int_equal(mkdir(keep, 0755), 0);
	for (int i = 0; i < 2; i++) {
		assert_true(jt_segment(g_dir, i, a, sizeof a) > 0);
		snprintf(b, sizeof b, "%s/%s", keep, strrchr(a, '/') + 1);
		assert_int_equal(link(a, b), 0);
	}
	pins_snapshot(pins, last - 1);
	assert_int_equal(cqrs__retention_run_offline(g_dir, pins, &pol, false, &segs, &n, &sum), 0);
	free(segs);
	first = sum.new_first_seq;
	assert_true(sum.collected >= 2);
	for (int i = 0; i < 2; i++) {
		DIR *d = opendir(keep);
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.') {
				snprintf(a, sizeof a, "%s/%s", keep, de->d_name);
				snprintf(b, sizeof b, "%s/%s", g_dir, de->d_name);
				(void)rename(a, b);
			}
		closedir(d);
	}
	/* The leftovers are not the journal's: readers, verify and the writer
	 * start at the manifest's first seq. */
	check_reads(g_dir, first, last);
	{
		cqrs_journal_extent x;
		assert_int_equal(cqrs__journal_extent(g_dir, &x), 0);
		assert_int_equal(x.first_seq, first);
	}
	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 16u << 10;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(cqrs__journal_close(j), 0);
	/* The next collection finishes them. */
	assert_int_equal(cqrs__retention_scan(g_dir, &segs, NULL) >= 2, 1);
	assert_true(segs[0].leftover && segs[1].leftover);
	free(segs);
	assert_int_equal(cqrs__retention_run_offline(g_dir, pins, &pol, false, &segs, &n, &sum), 0);
	assert_true(sum.collected >= 2);
	assert_false(segs[0].leftover && segs[0].action == CQRS__RET_KEEP);
	free(segs);
	assert_int_equal(cqrs__retention_scan(g_dir, &segs, NULL) >= 1, 1);
	assert_false(segs[0].leftover);
	assert_int_equal(segs[0].first_seq, first);
	free(segs);
	check_reads(g_dir, first, last);
	rmdir(keep);
	free(pins);
}

static void test_first_segment_lost_is_loss(void **state)
{
	cqrs_journal_config c;
	cqrs_journal_iter *it;
	cqrs_journal *j;
	cqrs_journal_extent x;
	char a[300];

	(void)state;
	make_journal(g_dir, 2000);
	/* Deleted by hand, never collected: the manifest says the journal
	 * starts at seq 1. */
	assert_true(jt_segment(g_dir, 0, a, sizeof a) > 0);
	assert_int_equal(unlink(a), 0);
	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 16u << 10;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), CQRS_ECORRUPT);
	assert_non_null(strstr(cqrs_last_error(), "is missing"));
	assert_int_equal(cqrs__journal_extent(g_dir, &x), CQRS_ECORRUPT);
	assert_int_equal(cqrs__journal_iter_open(&it, g_dir, 1), CQRS_ECORRUPT);
}

static int hook_calls;
static char hook_copy_dir[300];

static int hook_copy(void *arg, const char *path, uint64_t first, uint64_t last)
{
	char to[700];

	(void)arg;
	assert_true(first <= last);
	snprintf(to, sizeof to, "%s/%s", hook_copy_dir, strrchr(path, '/') + 1);
	hook_calls++;
	return link(path, to) == 0 ? 0 : -errno;
}

static void test_archive_and_hook(void **state)
{
	cqrs__ret_policy pol = { .action = CQRS__RET_ARCHIVE };
	cqrs__ret_pins *pins = malloc(sizeof *pins);
	cqrs__ret_summary sum;
	cqrs__ret_seg *segs;
	char jdir[300], arch[300];
	uint64_t last;
	size_t n;

	(void)state;
	snprintf(jdir, sizeof jdir, "%s/journal", g_dir);
	snprintf(arch, sizeof arch, "%s/archive", g_dir);
	last = make_journal(jdir, 2000);
	pins_snapshot(pins, last / 3);
	pol.archive_dir = arch;
	assert_int_equal(cqrs__retention_run_offline(jdir, pins, &pol, false, &segs, &n, &sum), 0);
	free(segs);
	assert_true(sum.collected > 0);
	assert_int_equal(count_segments(arch), (int)sum.collected);
	check_reads(jdir, sum.new_first_seq, last);
	/* The hook: it gets each file, which goes once it returns 0. */
	snprintf(hook_copy_dir, sizeof hook_copy_dir, "%s/hooked", g_dir);
	assert_int_equal(mkdir(hook_copy_dir, 0755), 0);
	pol.action = CQRS__RET_HOOK;
	pol.hook = hook_copy;
	pins_snapshot(pins, 2 * last / 3);
	hook_calls = 0;
	assert_int_equal(cqrs__retention_run_offline(jdir, pins, &pol, false, &segs, &n, &sum), 0);
	free(segs);
	assert_true(sum.collected > 0);
	assert_int_equal(hook_calls, (int)sum.collected);
	assert_int_equal(count_segments(hook_copy_dir), (int)sum.collected);
	check_reads(jdir, sum.new_first_seq, last);
	free(pins);
}

static void test_collect_beside_writer(void **state)
{
	cqrs__ret_policy pol = { .action = CQRS__RET_DELETE };
	cqrs__ret_pins *pins = malloc(sizeof *pins);
	cqrs__ret_summary sum;
	cqrs__ret_seg *segs;
	cqrs_journal_config c;
	cqrs_journal_extent x;
	cqrs_journal *j;
	uint64_t mid, last, first;
	int n;
	size_t m;

	(void)state;
	jt_config(&c, g_dir, CQRS_DURABILITY_INTERVAL);
	c.segment_size = 16u << 10;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(jt_append(j, 2000, 3, 4, NULL), 0);
	assert_int_equal(jt_sync(j), 0);
	mid = cqrs__journal_next_seq(j) - 1;
	/* The offline run is refused: the writer holds the journal. */
	pins_snapshot(pins, mid);
	assert_int_equal(cqrs__retention_run_offline(g_dir, pins, &pol, false, &segs, &m, &sum),
			 -EBUSY);
	free(segs);
	/* The running writer's collection (what the housekeeping thread does). */
	n = cqrs__retention_scan(g_dir, &segs, NULL);
	assert_true(n > 4);
	cqrs__retention_plan(segs, (size_t)n, pins, &pol, &sum);
	assert_int_equal(cqrs__retention_collect(g_dir, j, segs, (size_t)n, &pol, &sum), 0);
	free(segs);
	first = sum.new_first_seq;
	assert_true(sum.collected > 0 && first > 1);
	/* Rolls and the interval thread rewrite the manifest: the prefix
	 * stays collected. */
	assert_int_equal(jt_append(j, 2000, 3, 4, NULL), 0);
	assert_int_equal(jt_sync(j), 0);
	usleep(1100 * 1000);
	assert_int_equal(cqrs__journal_extent(g_dir, &x), 0);
	assert_int_equal(x.first_seq, first);
	last = cqrs__journal_next_seq(j) - 1;
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(cqrs__journal_close(j), 0);
	check_reads(g_dir, first, last);
	free(pins);
}

/* ---- the engine's housekeeping thread ------------------------------------------------ */

static _Atomic int watermark_calls;

static uint64_t watermark(void *arg)
{
	(void)arg;
	watermark_calls++;
	return UINT64_MAX;
}

static void retention_config(cqrs_config *cfg)
{
	cfg->segment_bytes = 64 << 10;
	cfg->retention_mode = CQRS_RETENTION_DELETE;
	cfg->retention_min_segments = 0;
	cfg->replication_watermark = watermark;
}

#define CTR(expr) __atomic_load_n(&(expr), __ATOMIC_RELAXED)

/* Collects jdir offline as a snapshot at seq would let it (DELETE, no
 * other pin) and asserts that something went. */
static void collect_behind_snapshot(const char *jdir, uint64_t seq)
{
	cqrs__ret_policy pol = { .action = CQRS__RET_DELETE };
	cqrs__ret_pins *pins = calloc(1, sizeof *pins);
	cqrs__ret_summary sum;
	cqrs__ret_seg *segs;
	size_t n;

	assert_non_null(pins);
	pins->snapshot_valid = true;
	pins->snapshot_seq = seq;
	assert_int_equal(cqrs__retention_run_offline(jdir, pins, &pol, false, &segs, &n, &sum), 0);
	free(segs);
	free(pins);
	assert_true(sum.collected > 0);
}

static void test_engine_housekeeping(void **state)
{
	char name[64];
	bank_model m;
	cqrs_engine *e;
	const cqrs_counters *c;
	uint64_t seq = 0;
	int before, rc;

	(void)state;
	tu_unique_name(name, sizeof name, "tret");
	bank_config_hook = retention_config;
	rc = bank_start(name, g_dir, CQRS_DURABILITY_NONE, 1024, CQRS_ON_ERROR_SKIP, &m, &e);
	bank_config_hook = NULL;
	if (rc)
		fail_msg("bank_start: %s (%s)", cqrs_strerror(rc), cqrs_last_error());
	for (int i = 0; i < 3000; i++)
		assert_int_equal(bank_do(e, BANK_DEPOSIT, 1 + (uint64_t)i % 50, 1, 0, 0, &seq), 0);
	c = cqrs_engine_counters(e);
	/* One run at start, one per roll (they may merge): wait for a few. */
	for (int i = 0; i < 500 && CTR(c->ret_runs) < 2; i++)
		usleep(10000);
	assert_true(CTR(c->ret_runs) >= 2);
	assert_true(watermark_calls >= 2);
	/* No snapshot: a restart replays from seq 1, nothing goes. */
	if (CTR(c->ret_need_seq) != 1)
		fail_msg("need %llu error %lld runs %llu bytes %llu first %llu", (unsigned long long)CTR(c->ret_need_seq), (long long)CTR(c->ret_error), (unsigned long long)CTR(c->ret_runs), (unsigned long long)CTR(c->ret_journal_bytes), (unsigned long long)CTR(c->ret_first_seq));
	assert_true(CTR(c->ret_collected_segments) == 0);
	assert_true(CTR(c->ret_journal_bytes) > 0);
	assert_true(CTR(c->ret_first_seq) == 1);
	bank_stop(e, &m);
	{
		char jdir[300];
		snprintf(jdir, sizeof jdir, "%s/journal", g_dir);
		before = count_segments(jdir);
		assert_true(before >= 4);
		/* Collected behind its back (as if a snapshot had pinned seq
		 * 1000), with no snapshot to load: the start refuses, naming
		 * the seqs that are gone, instead of replaying from the middle. */
		collect_behind_snapshot(jdir, 1000);
		rc = bank_start(name, g_dir, CQRS_DURABILITY_NONE, 1024, CQRS_ON_ERROR_SKIP, &m, &e);
		/* The iterator's refusal, or the snapshot code's own check:
		 * either names what is gone. */
		assert_true(rc == CQRS_ENOTFOUND || rc == CQRS_ECORRUPT);
		assert_true(strstr(cqrs_last_error(), "collected by retention") ||
			    strstr(cqrs_last_error(), "no valid snapshot covers"));
	}
	cqrs_engine_remove_segments(name);
}

/* Empties DIR/SUB of files (the snapshots or a view's checkpoints). */
static void empty_dir(const char *sub)
{
	char path[600];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof path, "%s/%s", g_dir, sub);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_type == DT_REG) {
			char f[900];
			snprintf(f, sizeof f, "%s/%s", path, de->d_name);
			unlink(f);
		}
	closedir(d);
}

static void lifecycle_config(cqrs_config *cfg)
{
	cfg->segment_bytes = 64 << 10;
	cfg->retention_mode = CQRS_RETENTION_DELETE;
	cfg->retention_min_segments = 0;
	cfg->snapshot_every_events = 0; /* at stop only */
}

/* A restart that needs what retention collected is refused, naming it:
 * the write model without a valid snapshot, and a view (its segment gone
 * as after a reboot) without a usable checkpoint. With both in place the
 * same journal starts and the views equal the model. */
static void test_restart_needs_collected(void **state)
{
	char name[64], jdir[300];
	bank_model m;
	cqrs_engine *e;
	uint64_t seq = 0;
	int rc;

	(void)state;
	tu_unique_name(name, sizeof name, "tretneed");
	snprintf(jdir, sizeof jdir, "%s/journal", g_dir);
	bank_snapshots = 1;
	bank_config_hook = lifecycle_config;
	assert_int_equal(bank_start(name, g_dir, CQRS_DURABILITY_NONE, 1024, CQRS_ON_ERROR_SKIP, &m, &e),
			 0);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(bank_do(e, BANK_DEPOSIT, 1 + (uint64_t)i % 50, 1, 0, 0, &seq), 0);
	bank_stop(e, &m); /* a snapshot and the view's checkpoint at seq 3000 */
	/* the stop's pins allow collecting every sealed segment */
	collect_behind_snapshot(jdir, seq);
	/* the views' segments gone (a reboot), the checkpoints there: starts */
	cqrs_engine_remove_segments(name);
	rc = bank_start(name, g_dir, CQRS_DURABILITY_NONE, 1024, CQRS_ON_ERROR_SKIP, &m, &e);
	if (rc)
		fail_msg("start from the snapshot and checkpoint: %s", cqrs_last_error());
	{
		cqrs_view *v;
		bank_row row;
		assert_int_equal(cqrs_view_open(name, "balances", &v), 0);
		assert_int_equal(cqrs_view_wait(v, seq, 5000000000ull), 0);
		for (uint64_t a = 1; a <= 50; a++) {
			assert_int_equal(cqrs_view_get(v, &a, sizeof a, &row, sizeof row), 0);
			assert_int_equal(row.balance, 60); /* 3000 deposits of 1 over 50 accounts */
			int64_t *bal = cqrs_store_get(m.accounts, &a);
			assert_non_null(bal);
			assert_int_equal(*bal, 60);
		}
		cqrs_view_close(v);
	}
	bank_stop(e, &m);

	/* no checkpoint and no segment: the view's rebuild needs seqs 1.. */
	cqrs_engine_remove_segments(name);
	empty_dir("checkpoints/balances");
	rc = bank_start(name, g_dir, CQRS_DURABILITY_NONE, 1024, CQRS_ON_ERROR_SKIP, &m, &e);
	assert_int_not_equal(rc, 0);
	if (!strstr(cqrs_last_error(), "view balances: no usable checkpoint"))
		fail_msg("unexpected refusal: %s", cqrs_last_error());

	/* no snapshot: the write model's replay needs seqs 1.. */
	empty_dir("snapshots");
	rc = bank_start(name, g_dir, CQRS_DURABILITY_NONE, 1024, CQRS_ON_ERROR_SKIP, &m, &e);
	assert_int_not_equal(rc, 0);
	if (!strstr(cqrs_last_error(), "no valid snapshot covers"))
		fail_msg("unexpected refusal: %s", cqrs_last_error());
	bank_config_hook = NULL;
	bank_snapshots = 0;
	cqrs_engine_remove_segments(name);
}

/* A view that fills up after retention collected the journal's start
 * grows by copying its rows (no replay from seq 1): every row is there,
 * nothing is dead-lettered. */
static void test_growth_after_collection(void **state)
{
	char name[64], jdir[300];
	bank_model m;
	cqrs_engine *e;
	uint64_t seq = 0;
	cqrs_view *v;
	bank_row row;

	(void)state;
	tu_unique_name(name, sizeof name, "tretgrow");
	snprintf(jdir, sizeof jdir, "%s/journal", g_dir);
	bank_snapshots = 1;
	bank_config_hook = lifecycle_config;
	assert_int_equal(bank_start(name, g_dir, CQRS_DURABILITY_NONE, 64, CQRS_ON_ERROR_SKIP, &m, &e), 0);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(bank_do(e, BANK_DEPOSIT, 1 + (uint64_t)i % 30, 1, 0, 0, &seq), 0);
	bank_stop(e, &m);
	collect_behind_snapshot(jdir, seq);
	assert_int_equal(bank_start(name, g_dir, CQRS_DURABILITY_NONE, 64, CQRS_ON_ERROR_SKIP, &m, &e), 0);
	for (uint64_t a = 31; a <= 300; a++) /* 270 new rows: the view grows twice or more */
		assert_int_equal(bank_do(e, BANK_DEPOSIT, a, 5, 0, 0, &seq), 0);
	assert_int_equal(cqrs_view_open(name, "balances", &v), 0);
	assert_int_equal(cqrs_view_wait(v, seq, 5000000000ull), 0);
	for (uint64_t a = 1; a <= 300; a++) {
		assert_int_equal(cqrs_view_get(v, &a, sizeof a, &row, sizeof row), 0);
		assert_int_equal(row.balance, a <= 30 ? 100 : 5);
	}
	cqrs_view_close(v);
	assert_int_equal(__atomic_load_n(&cqrs_engine_counters(e)->proj[0].dead_letters, __ATOMIC_RELAXED), 0);
	bank_stop(e, &m);
	bank_config_hook = NULL;
	bank_snapshots = 0;
	cqrs_engine_remove_segments(name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_model),
		cmocka_unit_test_setup_teardown(test_collect_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_between_manifest_and_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_segment_lost_is_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_and_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collect_beside_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_housekeeping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_needs_collected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_growth_after_collection, setup, teardown),
	};
	if (getenv("CQRS_TEST_FILTER"))
		cmocka_set_test_filter(getenv("CQRS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
