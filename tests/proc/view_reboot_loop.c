/*
 * tests/proc/view_reboot_loop.c - a reboot, many times: the engine under
 * load takes view checkpoints (every 150 seqs), is SIGKILLed at a random
 * moment, and every /dev/shm segment of the engine is removed before the
 * restart, as a reboot empties /dev/shm. Each cycle a child process runs
 * the bank engine (batch durability, the threading mode alternating) and
 * submits deposits tagged with a client id and client seq, reporting every
 * acknowledged (client seq, seq) through a pipe; the parent kills it,
 * removes the segments, restarts the engine itself (no checkpoint at its
 * stop, so the next cycle's restore needs the tail) and checks:
 *   - the views came back from a checkpoint plus the journal's tail (once
 *     a checkpoint exists), not from a rebuild (`cqrs stat` counts both);
 *   - no acknowledged command is lost, none is applied twice (the journal
 *     holds each acknowledged client seq once, at the acknowledged seq);
 *   - the view equals a full rebuild: balances and op counts recomputed
 *     from the journal match every row the restarted engine serves.
 * Usage: view_reboot_loop [cycles]   (default 8; 3 under sanitizers;
 * `make soak` runs more)
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "engine/journal/journal.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define ACCOUNTS 64
#define CLIENT 777
#define MAX_CSEQ (1u << 22)

static char name[64], dir[256], jdir[300];
static int child_config; /* 1: the child's engine (checkpoints on the way), 0: the parent's */

static int fail(const char *what)
{
	fprintf(stderr, "FAIL: %s\n", what);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 1;
}

static void hook(cqrs_config *cfg)
{
	cfg->checkpoint_every_events = child_config ? 150 : 0;
	cfg->checkpoint_on_stop = 0;
	cfg->checkpoint_keep = 2;
}

/* The child: submit forever, report acks. Killed by the parent. */
static void child(int fd, uint64_t first_cseq)
{
	bank_model m;
	cqrs_engine *e;
	enum { B = 32 };
	bank_deposit d[B];
	cqrs_command c[B];
	cqrs_ticket t[B];
	uint64_t cseq = first_cseq;

	child_config = 1;
	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e))
		_exit(3);
	for (;;) {
		int n;
		for (int i = 0; i < B; i++) {
			uint64_t cs = cseq++;
			d[i] = (bank_deposit){ 1 + cs % ACCOUNTS, (int64_t)(1 + cs % 7) };
			c[i] = (cqrs_command){ .type = BANK_DEPOSIT, .size = sizeof d[i], .data = &d[i],
					       .aggregate_id = d[i].account, .client_id = CLIENT,
					       .client_seq = cs };
		}
		n = cqrs_submit_batch(e, c, t, B);
		if (n < 0) {
			sched_yield();
			continue;
		}
		for (int i = 0; i < n; i++) {
			int rc = cqrs_ticket_wait(&t[i], UINT64_MAX);
			uint64_t msg[2] = { c[i].client_seq, cqrs_ticket_seq(&t[i]) };
			if (rc != 0)
				continue;
			if (write(fd, msg, sizeof msg) != sizeof msg)
				_exit(4);
		}
		usleep(200); /* a few thousand commands a second: several checkpoints a cycle */
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	int cycles = argc > 1 ? atoi(argv[1]) : (getenv("CQRS_SAN") ? 3 : 8);
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	uint64_t next_cseq = 1, total_acked = 0, durable = 0;
	static uint64_t acked[MAX_CSEQ], seen_at[MAX_CSEQ];
	int restores = 0, rebuilds = 0;

	tu_unique_name(name, sizeof name, "rbt");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-reboot"))
		return 1;
	snprintf(jdir, sizeof jdir, "%s/journal", dir);
	bank_config_hook = hook;
	printf("reboot loop: %d cycles, seed %u\n", cycles, seed);
	for (int cycle = 1; cycle <= cycles; cycle++) {
		int p[2], status;
		pid_t pid;
		uint64_t msg[2];
		long engine_ms = 250 + rand_r(&seed) % 350;

		if (pipe(p))
			return fail("pipe");
		bank_threading = cycle % 2 ? CQRS_THREADING_SHARED : CQRS_THREADING_DEDICATED;
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			child(p[1], next_cseq);
		}
		close(p[1]);
		sleep_ms(engine_ms);
		kill(pid, SIGKILL);
		while (read(p[0], msg, sizeof msg) == sizeof msg) {
			if (msg[0] >= MAX_CSEQ)
				return fail("client seq out of range");
			if (acked[msg[0]] && acked[msg[0]] != msg[1])
				return fail("a client seq was acknowledged at two different seqs");
			if (!acked[msg[0]])
				total_acked++;
			acked[msg[0]] = msg[1];
		}
		close(p[0]);
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status))
			return fail("child did not die by the signal");

		/* The reboot: /dev/shm loses every segment of the engine. */
		if (cqrs_engine_remove_segments(name) < 0)
			return fail("removing the engine's segments");

		bank_model m;
		cqrs_engine *e;
		const cqrs_counters *c;
		child_config = 0;
		bank_threading = cycle % 2 ? CQRS_THREADING_DEDICATED : CQRS_THREADING_SHARED;
		if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e)) {
			fprintf(stderr, "restart: %s\n", cqrs_last_error());
			return fail("restart after the reboot");
		}
		c = cqrs_engine_counters(e);
		durable = cqrs_engine_durable_seq(e);
		uint64_t restored = __atomic_load_n(&c->ckpt_restored, __ATOMIC_RELAXED);
		uint64_t rebuilt = __atomic_load_n(&c->proj[0].rebuilds, __ATOMIC_RELAXED);
		uint64_t from = __atomic_load_n(&c->ckpt_seq[0], __ATOMIC_RELAXED);
		if (restored + rebuilt != (durable > 0))
			return fail("the views were neither restored nor rebuilt (or both)");
		if (restored && (from == 0 || from > durable))
			return fail("restored from a checkpoint seq outside the journal");
		restores += (int)restored;
		rebuilds += (int)rebuilt;

		/* Walk the journal: gapless, each client seq once. */
		int64_t balance[ACCOUNTS + 1] = { 0 };
		uint64_t ops[ACCOUNTS + 1] = { 0 }, expect = 1, max_cseq = 0;
		cqrs_journal_iter *it;
		const cqrs_jrec *r;
		memset(seen_at, 0, sizeof seen_at);
		if (cqrs__journal_iter_open(&it, jdir, 1))
			return fail("journal iterator");
		while (cqrs__journal_iter_next(it, &r) == 1) {
			const bank_deposited *ev = cqrs__jrec_payload(r);
			if (r->seq != expect++ || r->seq > durable)
				return fail("journal has a gap");
			if (r->client_seq >= MAX_CSEQ || seen_at[r->client_seq])
				return fail("a command was applied twice");
			seen_at[r->client_seq] = r->seq;
			if (r->client_seq > max_cseq)
				max_cseq = r->client_seq;
			if (ev->account == 0 || ev->account > ACCOUNTS)
				return fail("bad event");
			balance[ev->account] += ev->amount;
			ops[ev->account]++;
		}
		cqrs__journal_iter_close(it);
		if (expect - 1 != durable)
			return fail("journal end differs from the engine's durable seq");
		for (uint64_t cs = 1; cs <= max_cseq + 64 && cs < MAX_CSEQ; cs++)
			if (acked[cs] && seen_at[cs] != acked[cs]) {
				fprintf(stderr, "client seq %llu acknowledged at %llu, journal has %llu\n",
					(unsigned long long)cs, (unsigned long long)acked[cs],
					(unsigned long long)seen_at[cs]);
				return fail("an acknowledged command was lost");
			}

		/* The restored view equals a full rebuild from the journal. */
		cqrs_view *v;
		if (cqrs_view_open(name, "balances", &v) || cqrs_view_wait(v, durable, 30000000000ull))
			return fail("view after restart");
		uint64_t rows = 0;
		for (uint64_t a = 1; a <= ACCOUNTS; a++) {
			bank_row row;
			int rc = cqrs_view_get(v, &a, 8, &row, sizeof row);
			rows += ops[a] != 0;
			if (ops[a] == 0 ? rc != CQRS_ENOTFOUND
					: (rc || row.balance != balance[a] || row.ops != ops[a])) {
				fprintf(stderr, "account %llu: view %lld/%llu, journal %lld/%llu (rc %d)\n",
					(unsigned long long)a, (long long)row.balance,
					(unsigned long long)row.ops, (long long)balance[a],
					(unsigned long long)ops[a], rc);
				return fail("view differs from a rebuild");
			}
		}
		if (cqrs_view_rows(v) != rows)
			return fail("view has rows a rebuild does not");
		cqrs_view_close(v);
		bank_stop(e, &m);
		next_cseq = max_cseq + 1;
		printf("cycle %2d: killed after %3ld ms, shm removed; %llu events, %s%llu; %llu acks so "
		       "far, all present once\n", cycle, engine_ms, (unsigned long long)durable,
		       restored ? "restored from the checkpoint at seq " : "rebuilt from seq 1 to ",
		       (unsigned long long)(restored ? from : durable), (unsigned long long)total_acked);
	}
	printf("reboot loop passed: %d cycles, %d restored from checkpoints, %d rebuilt, %llu events, "
	       "%llu acknowledged commands, none lost or doubled\n", cycles, restores, rebuilds,
	       (unsigned long long)durable, (unsigned long long)total_acked);
	if (cycles >= 3 && restores == 0)
		return fail("no cycle restored from a checkpoint");
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 0;
}
