/*
 * tests/proc/test_engine_killloop.c - the engine under load is SIGKILLed
 * at random moments, many times. Each cycle a child process runs the bank
 * engine (batch durability) and submits deposits tagged with a client id
 * and client seq, reporting every acknowledged (client seq, seq) through a
 * pipe; the parent kills it after a random delay, restarts the engine
 * itself and checks:
 *   - no acknowledged command is lost: the journal holds each acknowledged
 *     client seq at the acknowledged seq;
 *   - none is applied twice: every client seq appears at most once in the
 *     journal (the child also resends a few acknowledged ones);
 *   - the view equals a fresh rebuild: balances and op counts recomputed
 *     from the journal match the rows the restarted engine serves.
 * Cycles alternate the threading mode (the child of an odd cycle applies
 * on its command thread, CQRS_THREADING_SHARED; the restart uses the
 * other mode), so views written either way survive a kill and are
 * adopted by the other.
 * Usage: test_engine_killloop [cycles]   (default 12; 4 under sanitizers)
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

#include "cqrs_view.h"
#include "engine/journal/journal.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define ACCOUNTS 64
#define CLIENT 4242
#define MAX_CSEQ (1u << 22)

static char name[64], dir[256], jdir[300];

static int fail(const char *what)
{
	fprintf(stderr, "FAIL: %s\n", what);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 1;
}

/* The child: submit forever, report acks. Killed by the parent. */
static void child(int fd, uint64_t first_cseq)
{
	bank_model m;
	cqrs_engine *e;
	enum { B = 64 };
	bank_deposit d[B];
	cqrs_command c[B];
	cqrs_ticket t[B];
	uint64_t cseq = first_cseq;

	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e))
		_exit(3);
	for (;;) {
		int n;
		for (int i = 0; i < B; i++) {
			/* every 16th command resends an older client seq */
			uint64_t cs = (i % 16 == 15 && cseq > first_cseq + 20) ? cseq - 20 : cseq++;
			d[i] = (bank_deposit){ 1 + cs % ACCOUNTS, (int64_t)(1 + cs % 7) };
			c[i] = (cqrs_command){ .type = BANK_DEPOSIT, .size = sizeof d[i], .data = &d[i],
					       .client_id = CLIENT, .client_seq = cs };
		}
		n = cqrs_submit_batch(e, c, t, B);
		if (n < 0) {
			sched_yield();
			continue;
		}
		for (int i = 0; i < n; i++) {
			int rc = cqrs_ticket_wait(&t[i], UINT64_MAX);
			uint64_t msg[2] = { c[i].client_seq, cqrs_ticket_seq(&t[i]) };
			if (rc != 0 && rc != CQRS_EDUPLICATE)
				continue;
			if (write(fd, msg, sizeof msg) != sizeof msg)
				_exit(4);
		}
	}
}

static uint64_t *acked; /* client seq -> acknowledged seq (0: none) */

int main(int argc, char **argv)
{
	int cycles = argc > 1 ? atoi(argv[1]) : (getenv("CQRS_SAN") ? 4 : 12);
	uint64_t next_cseq = 1, total_acked = 0, total_events = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	tu_unique_name(name, sizeof name, "kill");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-kill"))
		return 1;
	snprintf(jdir, sizeof jdir, "%s/journal", dir);
	acked = calloc(MAX_CSEQ, sizeof *acked);
	if (!acked)
		return 1;
	printf("kill loop: %d cycles, seed %u\n", cycles, seed);
	for (int cycle = 1; cycle <= cycles; cycle++) {
		int p[2], status;
		pid_t pid;
		uint64_t msg[2];
		struct timespec delay;

		if (pipe(p))
			return fail("pipe");
		bank_threading = cycle % 2 ? CQRS_THREADING_SHARED : CQRS_THREADING_DEDICATED;
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			child(p[1], next_cseq);
		}
		close(p[1]);
		delay.tv_sec = 0;
		delay.tv_nsec = (long)(50 + rand_r(&seed) % 250) * 1000000L;
		nanosleep(&delay, NULL);
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

		/* Restart (recovers the journal, rebuilds dirty views). */
		bank_model m;
		cqrs_engine *e;
		bank_threading = cycle % 2 ? CQRS_THREADING_DEDICATED : CQRS_THREADING_SHARED;
		if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e)) {
			fprintf(stderr, "restart: %s\n", cqrs_last_error());
			return fail("restart after SIGKILL");
		}
		uint64_t durable = cqrs_engine_durable_seq(e);

		/* Walk the journal: ordered gapless, each client seq once. */
		static uint64_t seen_at[MAX_CSEQ];
		int64_t balance[ACCOUNTS + 1] = { 0 };
		uint64_t ops[ACCOUNTS + 1] = { 0 }, expect = 1, max_cseq = 0;
		cqrs_journal_iter *it;
		const cqrs_jrec *r;
		memset(seen_at, 0, sizeof seen_at);
		if (cqrs__journal_iter_open(&it, jdir, 1))
			return fail("journal iterator");
		while (cqrs__journal_iter_next(it, &r) == 1) {
			const bank_deposited *ev = cqrs__jrec_payload(r);
			if (r->seq != expect++)
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
		for (uint64_t cs = 1; cs < MAX_CSEQ && cs <= max_cseq + 64; cs++)
			if (acked[cs] && seen_at[cs] != acked[cs]) {
				fprintf(stderr, "client seq %llu acknowledged at %llu, journal has %llu\n",
					(unsigned long long)cs, (unsigned long long)acked[cs],
					(unsigned long long)seen_at[cs]);
				return fail("an acknowledged command was lost");
			}

		/* The view equals a fresh rebuild from the journal. */
		cqrs_view *v;
		if (cqrs_view_open(name, "balances", &v) || cqrs_view_wait(v, durable, 30000000000ull))
			return fail("view after restart");
		for (uint64_t a = 1; a <= ACCOUNTS; a++) {
			bank_row row;
			int rc = cqrs_view_get(v, &a, 8, &row, sizeof row);
			if (ops[a] == 0 ? rc != CQRS_ENOTFOUND
					: (rc || row.balance != balance[a] || row.ops != ops[a])) {
				fprintf(stderr, "account %llu: view %lld/%llu, journal %lld/%llu (rc %d)\n",
					(unsigned long long)a, (long long)row.balance,
					(unsigned long long)row.ops, (long long)balance[a],
					(unsigned long long)ops[a], rc);
				return fail("view differs from a rebuild");
			}
		}
		cqrs_view_close(v);
		bank_stop(e, &m);
		total_events = durable;
		next_cseq = max_cseq + 1;
		printf("cycle %2d: killed after %3ld ms; %llu events in the journal, %llu acks so far, all present\n",
		       cycle, delay.tv_nsec / 1000000, (unsigned long long)durable,
		       (unsigned long long)total_acked);
	}
	printf("kill loop passed: %d cycles, %llu acknowledged commands, %llu events, none lost or doubled\n",
	       cycles, (unsigned long long)total_acked, (unsigned long long)total_events);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	free(acked);
	return 0;
}
