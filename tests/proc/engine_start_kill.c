/*
 * tests/proc/engine_start_kill.c - the engine is SIGKILLed at random points
 * of its start, many times; every next start must come up, with nothing
 * acknowledged lost.
 *
 * Each run forks an engine (the bank domain, batch durability) and kills
 * it after a random delay between 0 and 1.2 times a measured start, so the
 * kills land in journal recovery, write-model replay, the creation of the
 * control segment, the views and the gateway, the rebuild and just after.
 * A child that comes up keeps depositing (client id and seq, each
 * acknowledged one reported through a pipe) until it is killed. Then a
 * second engine is started, which must come up (it refused, before, with
 * "exists and is not a cqrs segment" after a kill in the middle of
 * creating a segment), deposit once and exit without stopping (what a
 * crash leaves), or every third run stop cleanly (so the next start adopts
 * its views instead of rebuilding).
 * At the end the parent starts the engine once more and checks:
 *   - every acknowledged client seq is in the journal at its seq, once;
 *   - the view equals the journal (balances and op counts);
 *   - /dev/shm holds this engine's control segment and one view segment,
 *     nothing else (no old generation, no unfinished creation).
 * Usage: engine_start_kill [runs]   (default 50; 10 under sanitizers)
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cqrs_view.h"
#include "core/clock.h"
#include "engine/journal/journal.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define ACCOUNTS 16
#define CLIENT 77
#define MAX_CSEQ (1u << 20)
#define UP UINT64_MAX

static char name[64], dir[256], jdir[300];
static uint64_t *acked; /* client seq -> acknowledged seq */

static int fail(const char *what)
{
	fprintf(stderr, "FAIL: %s\n", what);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 1;
}

/* Starts, says UP, then deposits (at most `most` times; -1: until killed),
 * reporting {client seq, seq} for each acknowledged one. clean: stop
 * before exiting; else exit as a crash would, stopping nothing. */
static void child(int fd, uint64_t cseq, int most, int clean)
{
	bank_model m;
	cqrs_engine *e;
	uint64_t msg[2] = { UP, 0 };

	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 64, CQRS_ON_ERROR_SKIP, &m, &e)) {
		fprintf(stderr, "child start: %s\n", cqrs_last_error());
		_exit(3);
	}
	if (write(fd, msg, sizeof msg) != sizeof msg)
		_exit(4);
	for (int i = 0; most < 0 || i < most; i++, cseq++) {
		uint64_t seq;
		int rc = bank_do(e, BANK_DEPOSIT, 1 + cseq % ACCOUNTS, 1, CLIENT, cseq, &seq);
		if (rc && rc != CQRS_EDUPLICATE)
			continue;
		msg[0] = cseq;
		msg[1] = seq;
		if (write(fd, msg, sizeof msg) != sizeof msg)
			_exit(4);
	}
	if (clean)
		bank_stop(e, &m);
	_exit(0);
}

/* Runs one child; kills it after delay_ns (UINT64_MAX: lets it finish).
 * Returns whether it came up, -1 on a protocol error; *next_cseq moves
 * past what it used; *start_ns gets how long its start took. */
static int run_child(uint64_t delay_ns, int most, int clean, uint64_t *next_cseq,
		     uint64_t *start_ns, int *status)
{
	int p[2], up = 0;
	uint64_t msg[2], t0 = cqrs__mono_ns();
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		child(p[1], *next_cseq, most, clean);
	}
	close(p[1]);
	if (delay_ns != UINT64_MAX) {
		struct timespec d = { (time_t)(delay_ns / 1000000000u), (long)(delay_ns % 1000000000u) };
		nanosleep(&d, NULL);
		kill(pid, SIGKILL);
	}
	while (read(p[0], msg, sizeof msg) == sizeof msg) {
		if (msg[0] == UP) {
			up = 1;
			if (start_ns)
				*start_ns = cqrs__mono_ns() - t0;
			continue;
		}
		if (msg[0] >= MAX_CSEQ || (acked[msg[0]] && acked[msg[0]] != msg[1]))
			return -1;
		acked[msg[0]] = msg[1];
		if (msg[0] >= *next_cseq)
			*next_cseq = msg[0] + 1;
	}
	close(p[0]);
	waitpid(pid, status, 0);
	*next_cseq += 64; /* whatever it may have submitted unreported */
	return up;
}

static int check_final(void)
{
	static uint64_t seen_at[MAX_CSEQ];
	int64_t balance[ACCOUNTS + 1] = { 0 };
	uint64_t ops[ACCOUNTS + 1] = { 0 }, expect = 1, durable, nacked = 0;
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	bank_model m;
	cqrs_engine *e;
	cqrs_view *v;
	char prefix[96];
	struct dirent *de;
	DIR *d;
	size_t n;
	int segs = 0, views = 0;

	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 64, CQRS_ON_ERROR_SKIP, &m, &e)) {
		fprintf(stderr, "final start: %s\n", cqrs_last_error());
		return fail("final start");
	}
	durable = cqrs_engine_durable_seq(e);
	if (cqrs__journal_iter_open(&it, jdir, 1))
		return fail("journal iterator");
	while (cqrs__journal_iter_next(it, &r) == 1) {
		const bank_deposited *ev = cqrs__jrec_payload(r);
		if (r->seq != expect++)
			return fail("journal has a gap");
		if (r->client_seq >= MAX_CSEQ || seen_at[r->client_seq])
			return fail("a command was applied twice");
		seen_at[r->client_seq] = r->seq;
		balance[ev->account] += ev->amount;
		ops[ev->account]++;
	}
	cqrs__journal_iter_close(it);
	for (uint64_t cs = 0; cs < MAX_CSEQ; cs++)
		if (acked[cs]) {
			nacked++;
			if (seen_at[cs] != acked[cs])
				return fail("an acknowledged command was lost");
		}
	if (cqrs_view_open(name, "balances", &v) || cqrs_view_wait(v, durable, 30000000000ull))
		return fail("view after the last start");
	for (uint64_t a = 1; a <= ACCOUNTS; a++) {
		bank_row row;
		int rc = cqrs_view_get(v, &a, 8, &row, sizeof row);
		if (ops[a] == 0 ? rc != CQRS_ENOTFOUND
				: (rc || row.balance != balance[a] || row.ops != ops[a]))
			return fail("view differs from the journal");
	}
	cqrs_view_close(v);
	d = opendir("/dev/shm");
	n = (size_t)snprintf(prefix, sizeof prefix, "cqrs.%s.", name);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, prefix, n))
			continue;
		segs++;
		views += !strncmp(de->d_name + n, "v.", 2);
		if (strchr(de->d_name, '~')) {
			fprintf(stderr, "left: %s\n", de->d_name);
			return fail("an unfinished creation is left in /dev/shm");
		}
	}
	if (d)
		closedir(d);
	if (views != 1) {
		fprintf(stderr, "%d view segments, %d in all\n", views, segs);
		return fail("more than one generation of the view is left");
	}
	bank_stop(e, &m);
	printf("final start: %llu events, %llu acknowledged commands all present, %d segments\n",
	       (unsigned long long)durable, (unsigned long long)nacked, segs);
	return 0;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : (getenv("CQRS_SAN") ? 10 : 50);
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	uint64_t next_cseq = 1, start_ns = 0;
	int status, early = 0, late = 0;

	tu_unique_name(name, sizeof name, "sk");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-startkill"))
		return 1;
	snprintf(jdir, sizeof jdir, "%s/journal", dir);
	acked = calloc(MAX_CSEQ, sizeof *acked);
	if (!acked)
		return 1;
	/* some history first, and how long a start takes */
	if (run_child(UINT64_MAX, 200, 1, &next_cseq, &start_ns, &status) != 1)
		return fail("first start");
	if (run_child(UINT64_MAX, 1, 1, &next_cseq, &start_ns, &status) != 1)
		return fail("second start");
	printf("start takes %.2f ms; %d runs, seed %u\n", start_ns / 1e6, runs, seed);
	for (int run = 1; run <= runs; run++) {
		uint64_t delay = (uint64_t)((double)rand_r(&seed) / RAND_MAX * 1.2 * (double)start_ns);
		int up = run_child(delay, -1, 0, &next_cseq, NULL, &status);

		if (up < 0)
			return fail("protocol error (an acknowledgement changed its seq)");
		if (!WIFSIGNALED(status)) {
			fprintf(stderr, "run %d: the engine exited with %d before the kill\n", run,
				WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			return fail("a start after a killed start failed");
		}
		up ? late++ : early++;
		/* the next start must come up, whatever the kill interrupted; it
		 * deposits once and then exits without stopping (as a crash
		 * leaves things), or every third run stops cleanly */
		up = run_child(UINT64_MAX, 1, run % 3 == 0, &next_cseq, NULL, &status);
		if (up != 1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "run %d: the start after a kill at %.2f ms failed\n", run, delay / 1e6);
			return fail("a start after a killed start failed");
		}
	}
	printf("%d kills during start (%d before it was up, %d after)\n", runs, early, late);
	if (check_final())
		return 1;
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	free(acked);
	printf("engine_start_kill passed\n");
	return 0;
}
