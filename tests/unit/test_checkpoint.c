/*
 * tests/unit/test_checkpoint.c - view checkpoints (engine/checkpoint.h) in
 * one process, on the bank domain: a checkpoint and the journal's tail
 * restore the views after their segments were removed (a reboot); a
 * corrupt newest checkpoint falls back to the older one, then to a full
 * rebuild; a changed row schema rebuilds; a checkpoint taken while
 * commands keep coming equals, row by row, the state at its seq; the list
 * journal retention reads (every view folder, newest first, keep-N); a
 * checkpoint slowed down while the view takes stores and grows into a new
 * generation still holds the state at its seq. The
 * suite runs in four configurations: userfaultfd write-protect or copy at
 * the boundary, each with projector threads and in SHARED threading. Each
 * test uses its own engine name and data folder and removes both.
 */
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "engine/checkpoint.h"
#include "shm/view_internal.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define CTR(expr) __atomic_load_n(&(expr), __ATOMIC_RELAXED)
#define ACCOUNTS 64u
#define GROW_ACCOUNTS 3000u
#define MAX_OPS 200000u

typedef struct fixture {
	char name[64];
	char dir[256];
	bank_model m;
	cqrs_engine *e;
	/* every accepted deposit: its seq, account and amount */
	uint64_t seq[MAX_OPS], acct[MAX_OPS];
	int64_t amount[MAX_OPS];
	uint64_t nops;
} fixture;

static uint64_t accounts = ACCOUNTS; /* the accounts check_view compares */
static uint64_t capacity = 256; /* the balances view's registered capacity */
static int copy_mode;          /* cqrs_config.checkpoint_copy of this group */
static uint64_t every_events;  /* cqrs_config.checkpoint_every_events */
static int on_stop;

static void hook(cqrs_config *cfg)
{
	cfg->checkpoint_copy = copy_mode;
	cfg->checkpoint_every_events = every_events;
	cfg->checkpoint_on_stop = on_stop;
	cfg->checkpoint_keep = 2;
}

static int setup(void **state)
{
	static fixture f;
	memset(&f, 0, sizeof f);
	tu_unique_name(f.name, sizeof f.name, "tckp");
	if (tu_mkdtemp(f.dir, sizeof f.dir, "cqrs-ckpt"))
		return -1;
	every_events = 0;
	on_stop = 0;
	accounts = ACCOUNTS;
	capacity = 256;
	atomic_store(&cqrs__ckpt_test_chunk_delay_us, 0);
	bank_config_hook = hook;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (f->e)
		bank_stop(f->e, &f->m);
	f->e = NULL;
	cqrs_engine_remove_segments(f->name);
	tu_rmrf(f->dir);
	bank_config_hook = NULL;
	atomic_store(&cqrs__ckpt_test_chunk_delay_us, 0);
	return 0;
}

static void start(fixture *f)
{
	int rc = bank_start(f->name, f->dir, CQRS_DURABILITY_BATCH, capacity, CQRS_ON_ERROR_SKIP, &f->m,
			    &f->e);
	if (rc)
		fail_msg("bank_start: %s (%s)", cqrs_strerror(rc), cqrs_last_error());
}

static void stop(fixture *f)
{
	bank_stop(f->e, &f->m);
	f->e = NULL;
}

/* A reboot: every shared-memory segment of the engine is gone. */
static void reboot(fixture *f)
{
	stop(f);
	assert_true(cqrs_engine_remove_segments(f->name) >= 0);
}

static void deposit(fixture *f, uint64_t account, int64_t amount)
{
	uint64_t seq;
	assert_int_equal(bank_do(f->e, BANK_DEPOSIT, account, amount, 0, 0, &seq), 0);
	assert_true(f->nops < MAX_OPS);
	f->seq[f->nops] = seq;
	f->acct[f->nops] = account;
	f->amount[f->nops] = amount;
	f->nops++;
}

static void deposits(fixture *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		deposit(f, 1 + (f->nops * 7) % ACCOUNTS, (int64_t)(1 + f->nops % 13));
}

/* The bank row of account after every deposit up to seq (0: none). */
static int expected(const fixture *f, uint64_t account, uint64_t upto, bank_row *row)
{
	memset(row, 0, sizeof *row);
	for (uint64_t i = 0; i < f->nops; i++) {
		if (f->acct[i] != account || f->seq[i] > upto)
			continue;
		row->account = account;
		row->balance += f->amount[i];
		row->ops++;
		if (f->seq[i] > row->last_seq)
			row->last_seq = f->seq[i];
	}
	return row->ops != 0;
}

/* Every row of v equals the state after seq; no other rows. */
static void check_view(const fixture *f, cqrs_view *v, uint64_t upto)
{
	uint64_t rows = 0;

	for (uint64_t a = 1; a <= accounts; a++) {
		bank_row want, got;
		int has = expected(f, a, upto, &want);
		int rc = cqrs_view_get(v, &a, 8, &got, sizeof got);
		if (!has) {
			assert_int_equal(rc, CQRS_ENOTFOUND);
			continue;
		}
		assert_int_equal(rc, 0);
		rows++;
		if (memcmp(&want, &got, sizeof want))
			fail_msg("account %llu at seq %llu: balance %lld ops %llu last %llu, expected "
				 "%lld %llu %llu", (unsigned long long)a, (unsigned long long)upto,
				 (long long)got.balance, (unsigned long long)got.ops,
				 (unsigned long long)got.last_seq, (long long)want.balance,
				 (unsigned long long)want.ops, (unsigned long long)want.last_seq);
	}
	assert_int_equal(cqrs_view_rows(v), rows);
}

static uint64_t last_seq(const fixture *f)
{
	return f->nops ? f->seq[f->nops - 1] : 0;
}

static void check_live(fixture *f)
{
	cqrs_view *v;
	assert_int_equal(cqrs_view_open(f->name, "balances", &v), 0);
	assert_int_equal(cqrs_view_wait(v, last_seq(f), 5000000000ull), 0);
	check_view(f, v, last_seq(f));
	cqrs_view_close(v);
}

/* Requests a checkpoint and waits until it is on disk; returns its seq. */
static uint64_t checkpoint(fixture *f)
{
	const cqrs_counters *c = cqrs_engine_counters(f->e);
	uint64_t taken = CTR(c->ckpt_taken);
	cqrs_view *v;

	/* the views have applied everything acknowledged first */
	assert_int_equal(cqrs_view_open(f->name, "balances", &v), 0);
	assert_int_equal(cqrs_view_wait(v, last_seq(f), 5000000000ull), 0);
	cqrs_view_close(v);
	assert_int_equal(cqrs_engine_checkpoint(f->e, "balances"), 0);
	for (int i = 0; i < 30000 && CTR(c->ckpt_taken) == taken; i++)
		usleep(1000);
	assert_int_equal(CTR(c->ckpt_taken), taken + 1);
	return CTR(c->ckpt_seq[0]);
}

static void ckpt_file(const fixture *f, uint64_t seq, char *path, size_t cap)
{
	assert_int_equal(cqrs__checkpoint_path(path, cap, f->dir, "balances", seq, 0), 0);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_restore_replays_tail(void **state)
{
	fixture *f = *state;
	const cqrs_counters *c;
	uint64_t s;
	char path[4096];
	struct stat st;

	start(f);
	deposits(f, 300);
	s = checkpoint(f);
	assert_int_equal(s, last_seq(f));
	ckpt_file(f, s, path, sizeof path);
	assert_int_equal(stat(path, &st), 0);
	deposits(f, 200); /* the tail */
	reboot(f);
	start(f);
	c = cqrs_engine_counters(f->e);
	assert_int_equal(CTR(c->ckpt_restored), 1);
	assert_int_equal(CTR(c->proj[0].rebuilds), 0);
	assert_int_equal(CTR(c->replayed), last_seq(f)); /* the write model: no snapshot here */
	check_live(f);
	/* and it goes on from there */
	deposits(f, 50);
	check_live(f);
	/* a restored generation is an ordinary one: a clean stop resumes it */
	stop(f);
	start(f);
	assert_int_equal(CTR(cqrs_engine_counters(f->e)->ckpt_restored), 0);
	check_live(f);
}

static void corrupt(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void test_corrupt_falls_back(void **state)
{
	fixture *f = *state;
	const cqrs_counters *c;
	uint64_t s1, s2;
	char p1[4096], p2[4096];
	struct cqrs__checkpoint_info info[8];
	size_t n;

	start(f);
	deposits(f, 100);
	s1 = checkpoint(f);
	deposits(f, 100);
	s2 = checkpoint(f);
	assert_true(s2 > s1);
	deposits(f, 20);
	ckpt_file(f, s1, p1, sizeof p1);
	ckpt_file(f, s2, p2, sizeof p2);
	corrupt(p2, CQRS_CKPT_HDR_SIZE + 5000); /* a body byte: the chunk checksum catches it */
	assert_int_equal(cqrs__checkpoint_list(f->dir, info, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(info[0].seq, s2);
	assert_int_equal(info[0].valid, 0);
	assert_non_null(strstr(info[0].why, "checksum"));
	assert_int_equal(info[1].seq, s1);
	assert_int_equal(info[1].valid, 1);
	reboot(f);
	start(f);
	c = cqrs_engine_counters(f->e);
	assert_int_equal(CTR(c->ckpt_restored), 1);
	assert_int_equal(CTR(c->ckpt_seq[0]), s1);
	assert_int_equal(CTR(c->proj[0].rebuilds), 0);
	check_live(f);
	/* both bad: a rebuild from seq 1 (the journal has it) */
	corrupt(p1, 20); /* the header */
	reboot(f);
	start(f);
	c = cqrs_engine_counters(f->e);
	assert_int_equal(CTR(c->ckpt_restored), 0);
	assert_int_equal(CTR(c->proj[0].rebuilds), 1);
	check_live(f);
}

/* Rewrites the header's schema hash (and its checksum), as a checkpoint
 * of an older row layout would read. */
static void change_schema_hash(const char *path)
{
	uint8_t block[CQRS_CKPT_HDR_SIZE];
	cqrs_ckpt_hdr h;
	uint64_t sum;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, block, sizeof block, 0), (ssize_t)sizeof block);
	memcpy(&h, block, sizeof h);
	h.schema_hash ^= 1;
	memcpy(block, &h, sizeof h);
	sum = XXH3_64bits(block, CQRS_CKPT_HDR_SUM_OFF);
	memcpy(block + CQRS_CKPT_HDR_SUM_OFF, &sum, 8);
	assert_int_equal(pwrite(fd, block, sizeof block, 0), (ssize_t)sizeof block);
	close(fd);
}

static void test_schema_change_rebuilds(void **state)
{
	fixture *f = *state;
	const cqrs_counters *c;
	char path[4096];
	cqrs_ckpt_hdr h;
	char why[160];
	uint64_t s;

	start(f);
	deposits(f, 100);
	s = checkpoint(f);
	deposits(f, 10);
	ckpt_file(f, s, path, sizeof path);
	change_schema_hash(path);
	assert_int_equal(cqrs__checkpoint_verify(path, &h, why, sizeof why), 0); /* intact file */
	reboot(f);
	start(f);
	c = cqrs_engine_counters(f->e);
	assert_int_equal(CTR(c->ckpt_restored), 0);
	assert_int_equal(CTR(c->proj[0].rebuilds), 1);
	check_live(f);
}

/* A release that adds an event type keeps the checkpoints: nothing of
 * the new type is in their rows. */
static void test_new_event_type_restores(void **state)
{
	fixture *f = *state;
	const cqrs_counters *c;

	bank_register_withdrawn = 0;
	start(f);
	deposits(f, 100);
	(void)checkpoint(f);
	deposits(f, 10);
	reboot(f);
	bank_register_withdrawn = 1; /* the Withdrawn event, new */
	start(f);
	c = cqrs_engine_counters(f->e);
	assert_int_equal(CTR(c->ckpt_restored), 1);
	assert_int_equal(CTR(c->proj[0].rebuilds), 0);
	check_live(f);
}

typedef struct churn {
	fixture *f;
	_Atomic int stop;
} churn;

static void *churn_main(void *arg)
{
	churn *ch = arg;
	while (!atomic_load(&ch->stop) && ch->f->nops < MAX_OPS - 1)
		deposits(ch->f, 1);
	return NULL;
}

/* Loads the checkpoint file at seq as an image and compares it with the
 * state after seq, row by row. */
static void check_file(const fixture *f, uint64_t seq)
{
	char path[4096], why[160];
	cqrs_ckpt_hdr h;
	cqrs_view *v;
	void *img;
	int fd;

	ckpt_file(f, seq, path, sizeof path);
	assert_int_equal(cqrs__checkpoint_verify(path, &h, why, sizeof why), 0);
	assert_int_equal(h.applied_seq, seq);
	assert_int_equal(posix_memalign(&img, 4096, h.seg_bytes), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, img, h.seg_bytes, CQRS_CKPT_HDR_SIZE), (ssize_t)h.seg_bytes);
	close(fd);
	assert_int_equal(cqrs__view_attach_image(img, h.seg_bytes, &v), 0);
	assert_int_equal(cqrs_view_applied_seq(v), seq);
	check_view(f, v, seq);
	cqrs_view_close(v);
	free(img);
}

static void test_checkpoint_under_churn(void **state)
{
	fixture *f = *state;
	const cqrs_counters *c;
	churn ch = { .f = f };
	pthread_t t;
	uint64_t seqs[3];

	start(f);
	c = cqrs_engine_counters(f->e);
	deposits(f, 50);
	assert_int_equal(pthread_create(&t, NULL, churn_main, &ch), 0);
	for (int k = 0; k < 3; k++) {
		uint64_t taken = CTR(c->ckpt_taken);
		usleep(20000);
		/* a request finds the views moved since the last checkpoint (one
		 * at the same seq is answered by the checkpoint there is) */
		for (int i = 0; i < 30000 && CTR(c->proj[0].applied_seq) <= CTR(c->ckpt_seq[0]); i++)
			usleep(1000);
		assert_int_equal(cqrs_engine_checkpoint(f->e, NULL), 0);
		for (int i = 0; i < 30000 && CTR(c->ckpt_taken) == taken; i++)
			usleep(1000);
		if (CTR(c->ckpt_taken) != taken + 1)
			fail_msg("checkpoint %d not taken in 30 s: taken %llu failed %llu", k,
				 (unsigned long long)CTR(c->ckpt_taken),
				 (unsigned long long)CTR(c->ckpt_failed));
		seqs[k] = CTR(c->ckpt_seq[0]);
	}
	atomic_store(&ch.stop, 1);
	pthread_join(t, NULL);
	print_message("checkpoints at seqs %llu %llu %llu under churn (mode %u, stall max %llu us)\n",
		      (unsigned long long)seqs[0], (unsigned long long)seqs[1],
		      (unsigned long long)seqs[2], (unsigned)CTR(c->ckpt_mode),
		      (unsigned long long)CTR(c->ckpt_stall_max_ns) / 1000);
	assert_int_equal(CTR(c->ckpt_mode), copy_mode == 1 ? 2u : CTR(c->ckpt_mode));
	/* the two newest are kept (checkpoint_keep 2) */
	check_file(f, seqs[1]);
	check_file(f, seqs[2]);
	check_live(f);
	reboot(f);
	start(f);
	check_live(f);
}

/* A checkpoint slowed down (the test hook) while the projector keeps
 * storing into its views and one of them grows into a new generation
 * (capacity doubled: the old generation's writable mapping goes) before
 * the checkpoint is written: the file still holds the state at its seq,
 * row by row, and a reboot restores it plus the tail. */
static void test_checkpoint_during_growth(void **state)
{
	fixture *f = *state;
	const cqrs_counters *c;
	uint64_t taken, seq, gen0;
	cqrs_view *v;

	capacity = 2048;
	accounts = GROW_ACCOUNTS;
	start(f);
	c = cqrs_engine_counters(f->e);
	for (uint64_t a = 1; a <= 1000; a++)
		deposit(f, a, 5);
	assert_int_equal(cqrs_view_open(f->name, "balances", &v), 0);
	assert_int_equal(cqrs_view_wait(v, last_seq(f), 5000000000ull), 0);
	gen0 = cqrs_view_generation(v);
	cqrs_view_close(v);
	taken = CTR(c->ckpt_taken);
	atomic_store(&cqrs__ckpt_test_chunk_delay_us, 30000);
	assert_int_equal(cqrs_engine_checkpoint(f->e, "balances"), 0);
	usleep(10000); /* the checkpoint has started: its first chunk waits */
	for (uint64_t a = 1; a <= GROW_ACCOUNTS; a++) /* updates, then new rows past the capacity */
		deposit(f, a, 1);
	for (int i = 0; i < 20000 && CTR(c->ckpt_taken) == taken; i++)
		usleep(1000);
	assert_int_equal(CTR(c->ckpt_taken), taken + 1);
	atomic_store(&cqrs__ckpt_test_chunk_delay_us, 0);
	seq = CTR(c->ckpt_seq[0]);
	assert_true(seq >= 1000 && seq < last_seq(f));
	assert_true(CTR(c->proj[0].rebuilds) >= 1); /* it grew meanwhile */
	if (CTR(c->ckpt_mode) == 1)
		assert_true(CTR(c->ckpt_faults) > 0); /* stores waited for their chunks */
	print_message("checkpoint at seq %llu of generation %llu while the view grew; %llu faults\n",
		      (unsigned long long)seq, (unsigned long long)gen0,
		      (unsigned long long)CTR(c->ckpt_faults));
	check_file(f, seq);
	check_live(f);
	reboot(f);
	start(f);
	assert_int_equal(CTR(cqrs_engine_counters(f->e)->ckpt_restored), 1);
	check_live(f);
}

static void test_every_events_and_list(void **state)
{
	fixture *f = *state;
	struct cqrs__checkpoint_info info[8];
	size_t n;

	every_events = 100;
	on_stop = 1;
	start(f);
	/* the folder is there from the start: an empty one pins the journal */
	assert_int_equal(cqrs__checkpoint_list(f->dir, info, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(info[0].view, "balances");
	assert_int_equal(info[0].seq, 0);
	assert_int_equal(info[0].valid, 0);
	/* rounds of 110 seqs, each waited for: one checkpoint each (a due
	 * checkpoint that finds another in flight is tried at a later batch) */
	for (uint64_t round = 1; round <= 4; round++) {
		deposits(f, 110);
		for (int i = 0; i < 20000 && CTR(cqrs_engine_counters(f->e)->ckpt_taken) < round; i++)
			usleep(1000);
		assert_int_equal(CTR(cqrs_engine_counters(f->e)->ckpt_taken), round);
	}
	check_live(f);
	stop(f); /* and one at the stop, at the last seq */
	assert_int_equal(cqrs__checkpoint_list(f->dir, info, 8, &n), 0);
	assert_int_equal(n, 2); /* checkpoint_keep */
	assert_int_equal(info[0].seq, last_seq(f));
	assert_int_equal(info[0].valid, 1);
	assert_true(info[1].seq < info[0].seq);
	assert_int_equal(info[1].valid, 1);
	assert_true(info[0].bytes > CQRS_CKPT_HDR_SIZE);
	assert_int_equal(cqrs_engine_remove_segments(f->name) >= 0, 1);
	start(f);
	assert_int_equal(CTR(cqrs_engine_counters(f->e)->ckpt_restored), 1);
	assert_int_equal(CTR(cqrs_engine_counters(f->e)->replayed), last_seq(f));
	check_live(f);
}

static int group(int mode, int threading)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_restore_replays_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_event_type_restores, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_change_rebuilds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_under_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_events_and_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_during_growth, setup, teardown),
	};
	char name[64];

	copy_mode = mode;
	bank_threading = threading;
	snprintf(name, sizeof name, "%s, %s threading", mode ? "copy at the boundary" : "uffd or copy",
		 threading == CQRS_THREADING_SHARED ? "shared" : "dedicated");
	return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}

int main(void)
{
	int failed = group(0, CQRS_THREADING_DEDICATED);
	failed += group(1, CQRS_THREADING_DEDICATED);
	failed += group(0, CQRS_THREADING_SHARED);
	failed += group(1, CQRS_THREADING_SHARED);
	return failed ? 1 : 0;
}
