/*
 * tests/unit/test_snapshot.c - write-model snapshots (engine/snapshot.h):
 * a roundtrip (stores, versions, dedup windows and a save/load callback
 * restored, only the journal's tail replayed); a damaged newest snapshot
 * (a flipped byte, a cut file) falls back to the older one, then to a full
 * replay; another engine's snapshot, a changed store layout and a changed
 * set of schemas are refused (full replay, same model); the every-N
 * trigger; a snapshot taken while commands flow restores the model a full
 * replay builds; cqrs__snapshot_list. Each test has its own engine name
 * and data folder and removes both.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cqrs.h"
#include "cqrs_counters.h"
#include "engine/snapshot.h"
#include "tests/lib/testutil.h"

#define CTR(expr) __atomic_load_n(&(expr), __ATOMIC_RELAXED)

#if defined(__SANITIZE_THREAD__)
/* Snapshots fork(): jemalloc's fork handler holds every one of its locks
 * at once, more than the 64 ThreadSanitizer's deadlock detector tracks per
 * thread (it aborts with a CHECK). Data races are still reported. */
const char *__tsan_default_options(void);
__attribute__((visibility("default"))) const char *__tsan_default_options(void)
{
	return "detect_deadlocks=0";
}
#endif

/* ---- the domain: tallies per key, and a count outside any store ------------- */

#define ADD_FIELDS(F) F(u64, key) F(i64, n)
CQRS_RECORD_DECLARE(t_add, ADD_FIELDS)
CQRS_RECORD_DEFINE(t_add, "Add", ADD_FIELDS)
#define ADDED_FIELDS(F) F(u64, key) F(i64, n) F(i64, total)
CQRS_RECORD_DECLARE(t_added, ADDED_FIELDS)
CQRS_RECORD_DEFINE(t_added, "Added", ADDED_FIELDS)
CQRS_RECORD_DECLARE(t_other, ADD_FIELDS)
CQRS_RECORD_DEFINE(t_other, "Other", ADD_FIELDS)

typedef struct model {
	cqrs_store *tallies; /* key -> i64 total (value_size 8, or 16 for the layout test) */
	uint64_t events;     /* saved by the callbacks */
} model;

static int decide_add(cqrs_ctx *ctx, const void *cmd, void *mp)
{
	const t_add *c = cmd;
	model *m = mp;
	const int64_t *t = cqrs_store_get(m->tallies, &c->key);
	t_added ev = { c->key, c->n, (t ? *t : 0) + c->n };

	return cqrs_emit(ctx, 1, c->key, &ev);
}

/* 1: evolve adds one more than the event says (a nondeterministic evolve,
 * as a code change or a clock read in evolve would be). */
static int evolve_skew;

static void evolve_added(void *mp, const cqrs_event *ev)
{
	model *m = mp;
	const t_added *a = ev->data;
	int64_t *t = cqrs_store_upsert(m->tallies, &a->key, NULL);

	if (t)
		*t = a->total + evolve_skew;
	m->events++;
}

static int save_cb(const void *mp, cqrs_snapshot_io *w, void *arg)
{
	const model *m = mp;
	(void)arg;
	return cqrs_snapshot_write(w, &m->events, sizeof m->events);
}

static int load_cb(void *mp, cqrs_snapshot_io *r, void *arg)
{
	model *m = mp;
	(void)arg;
	if (cqrs_snapshot_remaining(r) != sizeof m->events)
		return CQRS_EFORMAT;
	return cqrs_snapshot_read(r, &m->events, sizeof m->events);
}

typedef struct fixture {
	char name[64];
	char dir[256];
	char snapdir[300];
	model m;
	cqrs_engine *e;
	/* knobs of the next start */
	uint32_t value_size;
	int extra_event;
	int no_callbacks;
	uint64_t every;
	uint64_t every_bytes;
	uint32_t keep;
	int on_stop;
	const char *engine_name; /* NULL: name */
} fixture;

static int setup(void **state)
{
	static fixture f;
	memset(&f, 0, sizeof f);
	tu_unique_name(f.name, sizeof f.name, "tsnap");
	if (tu_mkdtemp(f.dir, sizeof f.dir, "cqrs-snap"))
		return -1;
	snprintf(f.snapdir, sizeof f.snapdir, "%s/snapshots", f.dir);
	f.value_size = 8;
	f.keep = 3;
	*state = &f;
	return 0;
}

static void stop(fixture *f)
{
	if (f->e)
		cqrs_engine_close(f->e);
	f->e = NULL;
	cqrs_store_destroy(f->m.tallies);
	f->m.tallies = NULL;
	f->m.events = 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	stop(f);
	cqrs_engine_remove_segments(f->name);
	tu_rmrf(f->dir);
	return 0;
}

static void logger(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level <= CQRS_LOG_WARN)
		fprintf(stderr, "  [engine] %s\n", msg);
}

/* Opens and registers; start: also starts. */
static int try_open(fixture *f, int start)
{
	cqrs_config cfg;
	int rc;

	rc = cqrs_store_create(8, f->value_size, 1024, &f->m.tallies);
	if (rc)
		return rc;
	cqrs_config_init(&cfg);
	cfg.name = f->engine_name ? f->engine_name : f->name;
	cfg.data_dir = f->dir;
	cfg.segment_bytes = 1u << 20;
	cfg.ring_bytes = 1u << 22;
	cfg.snapshot_every_events = f->every;
	cfg.snapshot_every_bytes = f->every_bytes;
	cfg.snapshot_keep = f->keep;
	cfg.snapshot_on_stop = f->on_stop;
	cfg.log = logger;
	rc = cqrs_engine_open(&cfg, &f->m, &f->e);
	if (!rc) rc = cqrs_register_command(f->e, 1, t_add_schema(), decide_add);
	if (!rc) rc = cqrs_register_event(f->e, 1, t_added_schema(), evolve_added);
	if (!rc && f->extra_event) rc = cqrs_register_event(f->e, 2, t_other_schema(), NULL);
	if (!rc) rc = cqrs_engine_register_store(f->e, "tallies", f->m.tallies);
	if (!rc && !f->no_callbacks)
		rc = cqrs_engine_register_snapshot(f->e, "events", 1, save_cb, load_cb, NULL);
	if (!rc && start) rc = cqrs_engine_start(f->e);
	if (rc)
		stop(f);
	return rc;
}

static int try_start(fixture *f)
{
	return try_open(f, 1);
}

static void start(fixture *f)
{
	int rc = try_start(f);
	if (rc)
		fail_msg("start: %s (%s)", cqrs_strerror(rc), cqrs_last_error());
}

static int add(fixture *f, uint64_t key, int64_t n, uint64_t client, uint64_t cseq, uint64_t *seq)
{
	t_add c = { key, n };
	cqrs_command cmd = { .type = 1, .size = sizeof c, .data = &c, .aggregate_id = key,
			     .client_id = client, .client_seq = cseq };
	cqrs_ticket t;
	int rc = cqrs_submit(f->e, &cmd, &t);

	if (rc)
		return rc;
	rc = cqrs_ticket_wait(&t, UINT64_MAX);
	if (seq)
		*seq = cqrs_ticket_seq(&t);
	return rc;
}

static void adds(fixture *f, uint64_t from, uint64_t n)
{
	for (uint64_t i = from; i < from + n; i++)
		assert_int_equal(add(f, i % 37, (int64_t)i, 7, i + 1, NULL), 0);
}

/* The model after adds(f, 0, n) (key i % 37 gets i). */
static void check_model(fixture *f, uint64_t n)
{
	int64_t want[37] = { 0 };

	for (uint64_t i = 0; i < n; i++)
		want[i % 37] += (int64_t)i;
	for (uint64_t k = 0; k < 37; k++) {
		const int64_t *t = cqrs_store_get(f->m.tallies, &k);
		if (k >= n) { /* never added to */
			assert_null(t);
			continue;
		}
		assert_non_null(t);
		assert_int_equal(*t, want[k]);
	}
	assert_int_equal(f->m.events, n);
}

static const cqrs_counters *ctr(fixture *f)
{
	return cqrs_engine_counters(f->e);
}

static void flip_byte(const char *path, long off)
{
	int fd = open(path, O_RDWR);
	unsigned char b;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void snap_path(fixture *f, uint64_t seq, char *buf, size_t cap)
{
	cqrs__snapshot_name(buf, cap, f->snapdir, seq);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
	fixture *f = *state;
	uint64_t s, dup_seq, orig_seq;

	start(f);
	adds(f, 0, 1000);
	assert_int_equal(add(f, 3, 0, 9, 1, &orig_seq), 0); /* client 9, cseq 1 */
	assert_int_equal(cqrs_engine_snapshot(f->e, &s), 0);
	assert_int_equal(s, 1001);
	/* nothing new: the same snapshot answers */
	assert_int_equal(cqrs_engine_snapshot(f->e, &s), 0);
	assert_int_equal(s, 1001);
	assert_int_equal(CTR(ctr(f)->snap_taken), 1);
	assert_int_equal(CTR(ctr(f)->snap_seq), 1001);
	adds(f, 1000, 500);
	stop(f); /* snapshot_on_stop 0 */

	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), 1001);
	assert_int_equal(CTR(ctr(f)->replayed), 500);
	f->m.events -= 1; /* the client 9 command */
	check_model(f, 1500);
	f->m.events += 1;
	/* the dedup window came back: the retry gets the original's seq */
	assert_int_equal(add(f, 3, 0, 9, 1, &dup_seq), CQRS_EDUPLICATE);
	assert_int_equal(dup_seq, orig_seq);
	/* and the version map: key 3's version is where it was */
	{
		t_add c = { 3, 1 };
		cqrs_command cmd = { .type = 1, .size = sizeof c, .data = &c, .aggregate_id = 3,
				     .expected_version = (1500 / 37) + 1 + 1 + 1 - 1,
				     .flags = CQRS_CMD_EXPECT_VERSION };
		cqrs_ticket t;
		uint64_t v = 0;
		for (uint64_t i = 0; i < 1500; i++)
			v += i % 37 == 3;
		cmd.expected_version = v + 1; /* + the client 9 command */
		assert_int_equal(cqrs_submit(f->e, &cmd, &t), 0);
		assert_int_equal(cqrs_ticket_wait(&t, UINT64_MAX), 0);
	}
}

static void test_fallback(void **state)
{
	fixture *f = *state;
	uint64_t s1, s2, s3;
	char p[3400];

	start(f);
	adds(f, 0, 300);
	assert_int_equal(cqrs_engine_snapshot(f->e, &s1), 0);
	adds(f, 300, 300);
	assert_int_equal(cqrs_engine_snapshot(f->e, &s2), 0);
	adds(f, 600, 300);
	assert_int_equal(cqrs_engine_snapshot(f->e, &s3), 0);
	adds(f, 900, 100);
	stop(f);
	assert_true(s1 == 300 && s2 == 600 && s3 == 900);

	/* a flipped byte in the newest: the next older one */
	snap_path(f, s3, p, sizeof p);
	flip_byte(p, 5000);
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), s2);
	check_model(f, 1000);
	stop(f);
	/* cut: the oldest */
	snap_path(f, s2, p, sizeof p);
	assert_int_equal(truncate(p, 4000), 0);
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), s1);
	check_model(f, 1000);
	stop(f);
	/* a damaged header: the full replay */
	snap_path(f, s1, p, sizeof p);
	flip_byte(p, 60);
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), 0);
	assert_int_equal(CTR(ctr(f)->replayed), 1000);
	check_model(f, 1000);

	/* the list says which is which */
	{
		struct cqrs__snapshot_info info[8];
		size_t n;
		assert_int_equal(cqrs__snapshot_list(f->dir, info, 8, &n), 0);
		assert_int_equal(n, 3);
		assert_true(info[0].seq == s3 && !info[0].valid && info[0].why[0]);
		assert_true(info[1].seq == s2 && !info[1].valid);
		assert_true(info[2].seq == s1 && !info[2].valid);
	}
}

static void test_refused(void **state)
{
	fixture *f = *state;
	uint64_t s;

	f->on_stop = 1;
	start(f);
	adds(f, 0, 500);
	stop(f); /* the stop's snapshot */
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), 500);
	assert_int_equal(CTR(ctr(f)->replayed), 0);
	check_model(f, 500);
	assert_int_equal(cqrs_engine_snapshot(f->e, &s), 0);
	assert_int_equal(s, 500);
	f->on_stop = 0;
	stop(f);

	/* a changed store layout */
	f->value_size = 16;
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), 0);
	check_model(f, 500);
	stop(f);
	f->value_size = 8;
	/* a new event type, registered after the snapshot: nothing of it is in
	 * the history, the snapshot still holds (a release that adds an event
	 * must not need the journal from seq 1, which retention may have
	 * collected) */
	f->extra_event = 1;
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), 500);
	check_model(f, 500);
	stop(f);
	f->extra_event = 0;
	/* without the callbacks the snapshot holds */
	f->no_callbacks = 1;
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), 0);
	stop(f);
	f->no_callbacks = 0;
	/* and as it was, it loads */
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), 500);
	check_model(f, 500);
	stop(f);
}

static void test_foreign_engine(void **state)
{
	fixture *f = *state;
	fixture g;
	char from[3400], to[3400], cmd[7000];

	/* engine g, elsewhere, with other values at the same seqs */
	memset(&g, 0, sizeof g);
	tu_unique_name(g.name, sizeof g.name, "tsnapg");
	assert_int_equal(tu_mkdtemp(g.dir, sizeof g.dir, "cqrs-snapg"), 0);
	snprintf(g.snapdir, sizeof g.snapdir, "%s/snapshots", g.dir);
	g.value_size = 8;
	g.keep = 3;
	g.on_stop = 1;
	start(&g);
	adds(&g, 1000, 200);
	stop(&g);
	f->on_stop = 1;
	start(f);
	adds(f, 0, 200);
	stop(f);
	/* g's snapshot in f's folder, under f's name for seq 200 */
	snap_path(&g, 200, from, sizeof from);
	snap_path(f, 200, to, sizeof to);
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
	f->on_stop = 0;
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), 0);
	check_model(f, 200);
	stop(f);
	cqrs_engine_remove_segments(g.name);
	tu_rmrf(g.dir);
}

static void test_every_and_keep(void **state)
{
	fixture *f = *state;
	size_t n;
	uint64_t seqs[8];

	f->every = 100;
	f->keep = 2;
	start(f);
	for (int round = 0; round < 5; round++) {
		adds(f, (uint64_t)round * 150, 150);
		/* the writer runs beside; wait for its file */
		for (int i = 0; i < 2000 && CTR(ctr(f)->snap_taken) < (uint64_t)round + 1; i++)
			usleep(1000);
	}
	assert_true(CTR(ctr(f)->snap_taken) >= 3);
	assert_true(CTR(ctr(f)->snap_fork_max_us) > 0);
	stop(f);
	assert_int_equal(cqrs__snapshot_seqs(f->snapdir, seqs, 8, &n), 0);
	assert_int_equal(n, 2);
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), seqs[0]);
	check_model(f, 750);
}

static void test_every_bytes(void **state)
{
	fixture *f = *state;

	f->every_bytes = 32 << 10;
	start(f);
	for (int round = 0; round < 3; round++) {
		adds(f, (uint64_t)round * 400, 400); /* > 32 KiB of journal each */
		for (int i = 0; i < 2000 && CTR(ctr(f)->snap_taken) < (uint64_t)round + 1; i++)
			usleep(1000);
	}
	assert_true(CTR(ctr(f)->snap_taken) >= 2);
	assert_true(CTR(ctr(f)->snap_seq) >= 800);
}

typedef struct flow {
	fixture *f;
	_Atomic int stop;
	uint64_t done;
} flow;

static void *submitter(void *arg)
{
	flow *fl = arg;

	while (!atomic_load_explicit(&fl->stop, memory_order_relaxed)) { /* a flag */
		assert_int_equal(add(fl->f, fl->done % 37, (int64_t)fl->done, 7, fl->done + 1, NULL), 0);
		__atomic_store_n(&fl->done, fl->done + 1, __ATOMIC_RELAXED); /* read by the test */
	}
	return NULL;
}

static void test_while_flowing(void **state)
{
	fixture *f = *state;
	flow fl = { .f = f };
	pthread_t th;
	uint64_t s, last = 0;
	int64_t after[37];
	uint64_t events;

	start(f);
	assert_int_equal(pthread_create(&th, NULL, submitter, &fl), 0);
	for (int i = 0; i < 5; i++) {
		uint64_t seen = __atomic_load_n(&fl.done, __ATOMIC_RELAXED);
		/* commands flow between two snapshots, however slow the host */
		while (__atomic_load_n(&fl.done, __ATOMIC_RELAXED) < seen + 50)
			usleep(1000);
		assert_int_equal(cqrs_engine_snapshot(f->e, &s), 0);
		assert_true(s >= last);
		last = s;
	}
	atomic_store_explicit(&fl.stop, 1, memory_order_relaxed); /* a flag */
	pthread_join(th, NULL);
	stop(f);
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), last);
	check_model(f, fl.done);
	for (uint64_t k = 0; k < 37; k++)
		after[k] = *(const int64_t *)cqrs_store_get(f->m.tallies, &k); /* done >= 250 */
	events = f->m.events;
	stop(f);
	/* the same model from a full replay */
	tu_rmrf(f->snapdir);
	start(f);
	assert_int_equal(CTR(ctr(f)->snap_loaded_seq), 0);
	assert_int_equal(f->m.events, events);
	for (uint64_t k = 0; k < 37; k++)
		assert_int_equal(*(const int64_t *)cqrs_store_get(f->m.tallies, &k), after[k]);
}

static void test_verify(void **state)
{
	fixture *f = *state;
	uint64_t s, v;

	start(f);
	adds(f, 0, 400);
	assert_int_equal(cqrs_engine_snapshot(f->e, &s), 0);
	stop(f);
	/* the same code: the replay equals the snapshot */
	assert_int_equal(try_open(f, 0), 0);
	assert_int_equal(cqrs_engine_verify_snapshot(f->e, 0, &v), 0);
	assert_int_equal(v, s);
	assert_int_equal(cqrs_engine_start(f->e), -EINVAL); /* its stores are filled */
	stop(f);
	/* an evolve that computes something else now */
	evolve_skew = 1;
	assert_int_equal(try_open(f, 0), 0);
	assert_int_equal(cqrs_engine_verify_snapshot(f->e, s, &v), CQRS_ECORRUPT);
	assert_non_null(strstr(cqrs_last_error(), "store tallies: the aggregate with key"));
	evolve_skew = 0;
	stop(f);
	/* no snapshot at that seq */
	assert_int_equal(try_open(f, 0), 0);
	assert_true(cqrs_engine_verify_snapshot(f->e, s + 1, &v) < 0);
	stop(f);
}

static void test_api_errors(void **state)
{
	fixture *f = *state;
	uint64_t s;

	start(f);
	assert_int_equal(cqrs_engine_register_store(f->e, "late", f->m.tallies), -EINVAL);
	stop(f);
	/* an engine without stores or callbacks takes none */
	{
		cqrs_config cfg;
		cqrs_engine *e;
		cqrs_config_init(&cfg);
		cfg.name = f->name;
		cfg.data_dir = f->dir;
		assert_int_equal(cqrs_engine_open(&cfg, &f->m, &e), 0);
		assert_int_equal(cqrs_register_command(e, 1, t_add_schema(), decide_add), 0);
		assert_int_equal(cqrs_register_event(e, 1, t_added_schema(), evolve_added), 0);
		assert_int_equal(cqrs_engine_start(e), 0);
		assert_int_equal(cqrs_engine_snapshot(e, &s), -EINVAL);
		cqrs_engine_close(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_and_keep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_while_flowing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
