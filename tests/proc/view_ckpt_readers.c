/*
 * tests/proc/view_ckpt_readers.c - readers in other processes while the
 * engine checkpoints its views under load. The bank engine (deposits of 1
 * to 40000 accounts, so every row always has balance == ops) takes a
 * checkpoint every 3000 seqs of a view spread over many chunks; two reader
 * processes read random rows throughout and check each one (no torn row:
 * balance == ops, the key is the row's), and watch the view's applied seq:
 * the longest time it stood still while commands kept coming is reported
 * and must stay far below a second (a checkpoint never stops the projector
 * for longer than a batch; the figure is printed with and without
 * checkpoints for comparison, both on this loaded machine). Exits 77 when
 * fork is not allowed.
 * Usage: view_ckpt_readers [seconds]   (default 1.5 per phase)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define ACCOUNTS 40000u
#define READERS 2

static char name[64], dir[256];
static uint64_t every;

static void hook(cqrs_config *cfg)
{
	cfg->checkpoint_every_events = every;
	cfg->checkpoint_on_stop = 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct report {
	uint64_t reads, torn, max_gap_ns;
} report;

/* Reads until its stdin closes; writes one report. */
static void reader(int go, int out, unsigned seed)
{
	report r = { 0 };
	cqrs_view *v = NULL;
	uint64_t last_seq = 0, last_change = 0;
	char c;

	if (read(go, &c, 1) != 1) /* the engine is up */
		_exit(2);
	if (cqrs_view_open(name, "balances", &v))
		_exit(3);
	last_change = now_ns();
	for (;;) {
		struct timeval tv = { 0, 0 };
		fd_set fds;
		uint64_t a = 1 + rand_r(&seed) % ACCOUNTS, s, t;
		bank_row row;
		int rc = cqrs_view_get(v, &a, 8, &row, sizeof row);

		if (rc == 0) {
			r.reads++;
			if (row.account != a || row.balance != (int64_t)row.ops)
				r.torn++;
		}
		s = cqrs_view_applied_seq(v);
		t = now_ns();
		if (s != last_seq) {
			if (last_seq && t - last_change > r.max_gap_ns)
				r.max_gap_ns = t - last_change;
			last_seq = s;
			last_change = t;
		}
		FD_ZERO(&fds);
		FD_SET(go, &fds);
		if (r.reads % 256 == 0 && select(go + 1, &fds, NULL, NULL, &tv) > 0)
			break; /* the parent closed the pipe: the phase is over */
	}
	cqrs_view_close(v);
	if (write(out, &r, sizeof r) != sizeof r)
		_exit(4);
	_exit(0);
}

/* One phase: readers forked, engine started, load for `secs`, reports. */
static int phase(uint64_t ckpt_every, double secs, report *sum, uint64_t *taken, uint64_t *stall)
{
	int go[READERS][2], out[2];
	pid_t kids[READERS];
	bank_model m;
	cqrs_engine *e;
	uint64_t end, acct = 0;

	every = ckpt_every;
	if (pipe(out))
		return -1;
	for (int k = 0; k < READERS; k++) {
		if (pipe(go[k]))
			return -1;
		kids[k] = fork();
		if (kids[k] < 0)
			return 77;
		if (kids[k] == 0) {
			close(go[k][1]);
			close(out[0]);
			reader(go[k][0], out[1], (unsigned)getpid());
		}
		close(go[k][0]);
	}
	close(out[1]);
	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 1u << 16, CQRS_ON_ERROR_SKIP, &m, &e)) {
		fprintf(stderr, "start: %s\n", cqrs_last_error());
		return -1;
	}
	/* every account gets a row before the readers start */
	for (uint64_t a = 1; a <= ACCOUNTS; a += 64) {
		bank_deposit d[64];
		cqrs_command c[64];
		cqrs_ticket t[64];
		int n = 0;
		for (uint64_t b = a; b < a + 64 && b <= ACCOUNTS; b++, n++) {
			d[n] = (bank_deposit){ b, 1 };
			c[n] = (cqrs_command){ .type = BANK_DEPOSIT, .size = sizeof d[n], .data = &d[n],
					       .aggregate_id = b };
		}
		n = cqrs_submit_batch(e, c, t, n);
		for (int i = 0; i < n; i++)
			cqrs_ticket_wait(&t[i], UINT64_MAX);
	}
	for (int k = 0; k < READERS; k++)
		if (write(go[k][1], "g", 1) != 1)
			return -1;
	end = now_ns() + (uint64_t)(secs * 1e9);
	while (now_ns() < end) {
		bank_deposit d[64];
		cqrs_command c[64];
		cqrs_ticket t[64];
		int n;
		for (int i = 0; i < 64; i++, acct++) {
			uint64_t b = 1 + (acct * 7919) % ACCOUNTS;
			d[i] = (bank_deposit){ b, 1 };
			c[i] = (cqrs_command){ .type = BANK_DEPOSIT, .size = sizeof d[i], .data = &d[i],
					       .aggregate_id = b };
		}
		n = cqrs_submit_batch(e, c, t, 64);
		for (int i = 0; i < n; i++)
			cqrs_ticket_wait(&t[i], UINT64_MAX);
	}
	for (int k = 0; k < READERS; k++)
		close(go[k][1]);
	memset(sum, 0, sizeof *sum);
	for (int k = 0; k < READERS; k++) {
		report r;
		int st;
		if (read(out[0], &r, sizeof r) != sizeof r)
			return -1;
		sum->reads += r.reads;
		sum->torn += r.torn;
		if (r.max_gap_ns > sum->max_gap_ns)
			sum->max_gap_ns = r.max_gap_ns;
		waitpid(kids[k], &st, 0);
	}
	close(out[0]);
	*taken = __atomic_load_n(&cqrs_engine_counters(e)->ckpt_taken, __ATOMIC_RELAXED);
	*stall = __atomic_load_n(&cqrs_engine_counters(e)->ckpt_stall_max_ns, __ATOMIC_RELAXED);
	bank_stop(e, &m);
	cqrs_engine_remove_segments(name);
	return 0;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.5;
	report with, without;
	uint64_t taken, stall, t0, s0;
	int rc;

	tu_unique_name(name, sizeof name, "ckr");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-ckr"))
		return 1;
	bank_config_hook = hook;
	rc = phase(0, secs, &without, &t0, &s0);
	if (!rc)
		rc = phase(3000, secs, &with, &taken, &stall);
	tu_rmrf(dir);
	if (rc == 77) {
		printf("view_ckpt_readers: fork not allowed: skipped\n");
		return 77;
	}
	if (rc) {
		fprintf(stderr, "FAIL: a phase did not run\n");
		return 1;
	}
	printf("without checkpoints: %llu reads, %llu torn, longest applied-seq standstill %.2f ms\n",
	       (unsigned long long)without.reads, (unsigned long long)without.torn,
	       (double)without.max_gap_ns / 1e6);
	printf("with %llu checkpoints: %llu reads, %llu torn, longest applied-seq standstill %.2f ms "
	       "(engine's longest projector wait %.1f us)\n", (unsigned long long)taken,
	       (unsigned long long)with.reads, (unsigned long long)with.torn,
	       (double)with.max_gap_ns / 1e6, (double)stall / 1e3);
	if (without.torn || with.torn) {
		fprintf(stderr, "FAIL: a reader saw a torn row\n");
		return 1;
	}
	if (!with.reads || taken < 2) {
		fprintf(stderr, "FAIL: no reads, or fewer than two checkpoints\n");
		return 1;
	}
	if (with.max_gap_ns > 750000000ull) {
		fprintf(stderr, "FAIL: the view stood still for %.0f ms during checkpoints\n",
			(double)with.max_gap_ns / 1e6);
		return 1;
	}
	printf("view_ckpt_readers: ok\n");
	return 0;
}
