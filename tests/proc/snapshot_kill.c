/*
 * tests/proc/snapshot_kill.c - kill -9 of an engine while it writes
 * write-model snapshots, many times: no partial snapshot is ever visible,
 * every restart comes up (loading a snapshot, or replaying), and the model
 * a restart restores equals the one a full replay of the journal builds.
 *
 * Each cycle forks an engine (the bank domain with its store registered,
 * a snapshot every 150 events, 2 kept) that deposits into 20000 accounts
 * as fast as it can, reporting each acknowledged deposit through a pipe,
 * and kills it (SIGKILL) after a random 50..400 ms: the kills land while
 * a forked writer is serializing, fsyncing, waiting for the journal or
 * renaming. After each kill every snap-*.cqsnap file must verify
 * (cqrs__snapshot_list). At the end the parent starts the engine (from
 * the newest snapshot), records every balance, stops without a snapshot,
 * removes the snapshots, starts again (full replay) and compares; the
 * balances sum to the journal's events, at least every acknowledged one.
 * Usage: snapshot_kill [cycles]   (default 20)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cqrs_counters.h"
#include "engine/snapshot.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define ACCOUNTS 20000u
#define CLIENT 91

static char name[64], dir[256], snapdir[300];

static int fail(const char *fmt, const char *detail)
{
	fprintf(stderr, "FAIL: %s%s%s\n", fmt, detail ? ": " : "", detail ? detail : "");
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 1;
}

static void hook(cqrs_config *cfg)
{
	cfg->snapshot_every_events = 150;
	cfg->snapshot_keep = 2;
	cfg->snapshot_on_stop = 0;
}

/* Deposits until killed, reporting each acknowledged client seq. */
static void child(int fd, uint64_t cseq)
{
	bank_model m;
	cqrs_engine *e;

	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 1024, CQRS_ON_ERROR_SKIP, &m, &e)) {
		fprintf(stderr, "child: start failed: %s\n", cqrs_last_error());
		_exit(3);
	}
	for (;; cseq++) {
		uint64_t seq;
		int rc = bank_do(e, BANK_DEPOSIT, cseq % ACCOUNTS, 1, CLIENT, cseq, &seq);
		if (rc == 0 && write(fd, &cseq, sizeof cseq) != (ssize_t)sizeof cseq)
			_exit(4);
	}
}

static int all_valid(char *why, size_t cap)
{
	struct cqrs__snapshot_info info[16];
	size_t n;

	if (cqrs__snapshot_list(dir, info, 16, &n))
		return 0;
	for (size_t i = 0; i < n && i < 16; i++)
		if (!info[i].valid) {
			snprintf(why, cap, "%s: %s", info[i].path, info[i].why);
			return 0;
		}
	return 1;
}

static int64_t *balances(bank_model *m)
{
	int64_t *b = calloc(ACCOUNTS, sizeof *b);

	for (uint64_t a = 0; b && a < ACCOUNTS; a++) {
		const int64_t *v = cqrs_store_get(m->accounts, &a);
		b[a] = v ? *v : 0;
	}
	return b;
}

int main(int argc, char **argv)
{
	int cycles = argc > 1 ? atoi(argv[1]) : 20;
	uint64_t next_cseq = 1, acked = 0, loads = 0, total = 0, events;
	bank_model m;
	cqrs_engine *e;
	int64_t *from_snap, *from_replay;
	char why[512];

	tu_unique_name(name, sizeof name, "snapkill");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-snapkill"))
		return fail("mkdtemp", NULL);
	snprintf(snapdir, sizeof snapdir, "%s/snapshots", dir);
	bank_snapshots = 1;
	bank_config_hook = hook;
	srand((unsigned)getpid());
	for (int c = 0; c < cycles; c++) {
		int fds[2], status;
		pid_t pid;
		uint64_t cs;
		struct timespec ts = { 0, (50 + rand() % 350) * 1000000L };

		if (pipe(fds))
			return fail("pipe", NULL);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			child(fds[1], next_cseq);
		}
		close(fds[1]);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		while (read(fds[0], &cs, sizeof cs) == (ssize_t)sizeof cs) {
			acked++;
			if (cs >= next_cseq)
				next_cseq = cs + 1;
		}
		close(fds[0]);
		waitpid(pid, &status, 0);
		if (WIFEXITED(status))
			return fail("the engine exited on its own", NULL);
		/* the writer dies with the engine (PR_SET_PDEATHSIG): give it a moment */
		usleep(20000);
		if (!all_valid(why, sizeof why))
			return fail("a visible snapshot does not verify", why);
		next_cseq += 1000; /* past anything the killed engine may have decided */
	}
	/* the restart: from the newest snapshot */
	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 1024, CQRS_ON_ERROR_SKIP, &m, &e))
		return fail("restart", cqrs_last_error());
	loads = cqrs_engine_counters(e)->snap_loaded_seq;
	events = cqrs_engine_durable_seq(e);
	from_snap = balances(&m);
	bank_stop(e, &m);
	tu_rmrf(snapdir);
	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 1024, CQRS_ON_ERROR_SKIP, &m, &e))
		return fail("full replay", cqrs_last_error());
	from_replay = balances(&m);
	bank_stop(e, &m);
	if (!from_snap || !from_replay)
		return fail("out of memory", NULL);
	for (uint64_t a = 0; a < ACCOUNTS; a++) {
		if (from_snap[a] != from_replay[a]) {
			snprintf(why, sizeof why, "account %llu: %lld from the snapshot, %lld replayed",
				 (unsigned long long)a, (long long)from_snap[a], (long long)from_replay[a]);
			return fail("the restored model differs from a full replay", why);
		}
		total += (uint64_t)from_snap[a];
	}
	if (total != events || total < acked) {
		snprintf(why, sizeof why, "balances sum to %llu, journal holds %llu, %llu acknowledged",
			 (unsigned long long)total, (unsigned long long)events, (unsigned long long)acked);
		return fail("deposits lost or doubled", why);
	}
	if (!loads)
		return fail("the last restart loaded no snapshot", NULL);
	printf("snapshot_kill: %d cycles, %llu acknowledged deposits, %llu events; restart loaded the "
	       "snapshot at seq %llu and equals a full replay\n", cycles, (unsigned long long)acked,
	       (unsigned long long)events, (unsigned long long)loads);
	free(from_snap);
	free(from_replay);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 0;
}
