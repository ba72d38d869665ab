/*
 * tests/proc/retention_engine_kill.c - the engine with snapshots, view
 * checkpoints and journal retention all on, killed with kill -9 at random
 * (or stopped cleanly), sometimes with its /dev/shm segments removed as a
 * reboot would: every restart must start (from a snapshot and checkpoints
 * plus the journal's tail), and its write model and its view must equal
 * one full replay of the whole history. The history is kept in a
 * reference folder: retention runs in HOOK mode, and the hook hard-links
 * each segment there before the engine removes it; the segments still in
 * the journal are linked before each check (tests/lib/journal_ref.h).
 * Usage: retention_engine_kill [CYCLES] (default 12; `make soak` runs more).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>

#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "tests/lib/bank.h"
#include "tests/lib/journal_ref.h"
#include "tests/unit/test_journal_util.h"

#define ACCOUNTS 64u
/* Counters have one writer each and are read relaxed. */
#define CTR_COLLECTED(e) \
	__atomic_load_n(&cqrs_engine_counters(e)->ret_collected_segments, __ATOMIC_RELAXED)

static char g_root[256], g_jdir[300], g_ref[300], g_name[64];

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void lifecycle_config(cqrs_config *cfg)
{
	cfg->segment_bytes = 64u << 10;
	cfg->snapshot_every_events = 400;
	cfg->snapshot_keep = 2;
	cfg->checkpoint_every_events = 300;
	cfg->checkpoint_keep = 2;
	cfg->retention_mode = CQRS_RETENTION_HOOK;
	cfg->retention_hook = journal_ref_hook;
	cfg->retention_min_segments = 0;
}

static int start(bank_model *m, cqrs_engine **e)
{
	int rc;

	bank_snapshots = 1;
	bank_config_hook = lifecycle_config;
	rc = bank_start(g_name, g_root, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, m, e);
	bank_config_hook = NULL;
	return rc;
}

static void child(uint64_t seed)
{
	bank_model m;
	cqrs_engine *e;
	uint64_t seq;

	rnd_state = seed;
	if (start(&m, &e) != 0) {
		fprintf(stderr, "child start: %s\n", cqrs_last_error());
		_exit(3);
	}
	for (int i = 0; i < 200000; i++) {
		if (bank_do(e, BANK_DEPOSIT, rnd() % ACCOUNTS, 1 + (int64_t)(rnd() % 9), 0, 0, &seq))
			_exit(4);
		if (rnd() % 20000 == 0) /* sometimes a clean stop */
			break;
	}
	bank_stop(e, &m);
	_exit(0);
}

typedef struct ref_state {
	int64_t balance[ACCOUNTS];
	uint64_t ops[ACCOUNTS];
	uint64_t last_seq[ACCOUNTS];
} ref_state;

/* A full replay of the reference, seqs 1..upto. */
static int replay_ref(uint64_t upto, ref_state *s)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	uint64_t expect = 1;
	int rc;

	memset(s, 0, sizeof *s);
	if (upto == 0)
		return 0;
	if (cqrs__journal_iter_open(&it, g_ref, 1) != 0)
		return -1;
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1 && r->seq <= upto) {
		const bank_deposited *ev = cqrs__jrec_payload(r);
		if (r->seq != expect++ || ev->account >= ACCOUNTS) {
			cqrs__journal_iter_close(it);
			return -1;
		}
		s->balance[ev->account] = ev->balance;
		s->ops[ev->account]++;
		s->last_seq[ev->account] = r->seq;
	}
	cqrs__journal_iter_close(it);
	return rc < 0 || expect != upto + 1 ? -1 : 0;
}

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond)) {                                  \
			fprintf(stderr, __VA_ARGS__);           \
			fprintf(stderr, "\n");                  \
			return 1;                               \
		}                                               \
	} while (0)

static int check_restart(int cycle, int *collected)
{
	static ref_state want;
	bank_model m;
	cqrs_engine *e;
	cqrs_view *v;
	uint64_t durable;
	int rc = start(&m, &e);

	/* A snapshot's forked writer of the killed engine may still hold
	 * the journal's lock for a moment. */
	for (int i = 0; i < 200 && rc == -EBUSY; i++) {
		usleep(50000);
		rc = start(&m, &e);
	}
	CHECK(rc == 0, "cycle %d: the restart failed: %s", cycle, cqrs_last_error());
	journal_ref_link_journal();
	durable = cqrs_engine_durable_seq(e);
	CHECK(replay_ref(durable, &want) == 0, "cycle %d: the reference does not replay to %llu: %s",
	      cycle, (unsigned long long)durable, cqrs_last_error());
	for (uint64_t a = 0; a < ACCOUNTS; a++) {
		const int64_t *b = cqrs_store_get(m.accounts, &a);
		CHECK((b ? *b : 0) == want.balance[a], "cycle %d: account %llu: model %lld, a full "
		      "replay %lld", cycle, (unsigned long long)a, (long long)(b ? *b : 0),
		      (long long)want.balance[a]);
	}
	CHECK(cqrs_view_open(g_name, "balances", &v) == 0, "cycle %d: view: %s", cycle,
	      cqrs_last_error());
	CHECK(cqrs_view_wait(v, durable, 20000000000ull) == 0, "cycle %d: the view does not reach %llu",
	      cycle, (unsigned long long)durable);
	for (uint64_t a = 0; a < ACCOUNTS; a++) {
		bank_row row;
		memset(&row, 0, sizeof row);
		rc = cqrs_view_get(v, &a, 8, &row, sizeof row);
		CHECK((rc == 0 ? row.ops : 0) == want.ops[a] &&
		      (rc == 0 ? row.balance : 0) == want.balance[a] &&
		      (rc == 0 ? row.last_seq : 0) == want.last_seq[a],
		      "cycle %d: account %llu: view ops %llu balance %lld seq %llu, a full replay "
		      "%llu %lld %llu", cycle, (unsigned long long)a, (unsigned long long)row.ops,
		      (long long)row.balance, (unsigned long long)row.last_seq,
		      (unsigned long long)want.ops[a], (long long)want.balance[a],
		      (unsigned long long)want.last_seq[a]);
	}
	cqrs_view_close(v);
	*collected += (int)CTR_COLLECTED(e);
	bank_stop(e, &m);
	return 0;
}

int main(int argc, char **argv)
{
	int cycles = argc > 1 ? atoi(argv[1]) : 12, collected = 0, rc = 0;

	rnd_state = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
	tu_unique_name(g_name, sizeof g_name, "tretk");
	if (tu_mkdtemp(g_root, sizeof g_root, "cqrs_retengine") != 0)
		return 1;
	snprintf(g_jdir, sizeof g_jdir, "%s/journal", g_root);
	snprintf(g_ref, sizeof g_ref, "%s/reference", g_root);
	if (journal_ref_init(g_jdir, g_ref) != 0)
		return 1;
	printf("seed %llu\n", (unsigned long long)rnd_state);
	for (int cy = 0; cy < cycles && rc == 0; cy++) {
		uint64_t seed = rnd();
		pid_t pid = fork();
		int st;

		if (pid == 0)
			child(seed);
		usleep((useconds_t)(50000 + rnd() % 400000));
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
			fprintf(stderr, "cycle %d: the child failed (%d)\n", cy, WEXITSTATUS(st));
			rc = 1;
			break;
		}
		if (rnd() % 3 == 0)
			cqrs_engine_remove_segments(g_name); /* a reboot empties /dev/shm */
		rc = check_restart(cy, &collected);
	}
	cqrs_engine_remove_segments(g_name);
	if (rc) {
		fprintf(stderr, "kept for inspection: %s\n", g_root);
		return rc;
	}
	{
		uint64_t *segs = NULL;
		int fd = open(g_jdir, O_RDONLY | O_DIRECTORY), n = cqrs__jseg_list(fd, &segs);
		printf("%d cycles, %d segment(s) collected by the checking restarts, the journal now "
		       "from seq %llu\n", cycles, collected,
		       (unsigned long long)(n > 0 ? segs[0] : 0));
		free(segs);
		close(fd);
	}
	tu_rmrf(g_root);
	return 0;
}
