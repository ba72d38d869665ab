/*
 * examples/exchange/demo.c - `cqrs-exchange demo`: funding, the load
 * thread (flow.h's order flow in pipelined batches: flat out for the first
 * half of the run, then paced at --rate orders/s), the probe thread (one
 * command at a time, timed until the views show it, per half), the reader
 * processes (reader.c in C, depth.py in Python) and the summary.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hist.h"
#include "cqrs_view.h"
#include "examples/exchange/demo.h"

#define BATCH 1024
#define DEPTH 4 /* batches in flight */

typedef struct xload {
	cqrs_engine *e;
	const xoptions *o;
	exch_flow flow;
	_Atomic int stop;
	_Atomic uint64_t submitted, accepted, rejected;
	_Atomic int phase;        /* 0 flat out, 1 paced (set by the main thread) */
	_Atomic uint64_t rate;    /* orders/s of the paced half (set before phase) */
	uint64_t phase_submitted; /* submitted when the paced half began */
	/* the probe, per half */
	cqrs_hist to_top[2];     /* IOC order -> top_of_book shows its batch */
	cqrs_hist to_balance[2]; /* deposit -> positions shows it */
	uint64_t probe_cash;
	int probe_fd;
	uint64_t probes;
} xload;

typedef struct xbatch {
	exch_cmd data[BATCH];
	cqrs_command cmds[BATCH];
	cqrs_ticket tickets[BATCH];
	uint32_t n;
} xbatch;

static int submit_all(cqrs_engine *e, cqrs_command *cmds, cqrs_ticket *t, uint32_t n)
{
	for (uint32_t done = 0; done < n;) {
		int rc = cqrs_submit_batch(e, cmds + done, t + done, n - done);
		if (rc == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (rc < 0)
			return rc;
		done += (uint32_t)rc;
	}
	return 0;
}

static void to_command(const exch_cmd *c, cqrs_command *out)
{
	*out = (cqrs_command){ .type = c->type, .size = c->size, .data = &c->u };
}

/* Deposits for the flow's accounts and the probe's (only on a fresh
 * market: a continued one keeps its balances). */
static int fund(cqrs_engine *e, const exch_flow *f, uint64_t probe_account)
{
	static xbatch b;
	uint32_t i = 0;

	for (;;) {
		b.n = 0;
		while (b.n < BATCH && exch_flow_funding(f, i, &b.data[b.n])) {
			to_command(&b.data[b.n], &b.cmds[b.n]);
			b.n++;
			i++;
		}
		if (b.n == 0)
			break;
		if (submit_all(e, b.cmds, b.tickets, b.n))
			return -1;
		for (uint32_t k = 0; k < b.n; k++)
			if (cqrs_ticket_wait(&b.tickets[k], UINT64_MAX))
				return -1;
	}
	{
		deposit d = { .account = probe_account, .amount = 1000000, .asset = 0 };
		cqrs_command c = { .type = CMD_DEPOSIT, .size = sizeof d, .data = &d };
		cqrs_ticket t;
		if (submit_all(e, &c, &t, 1) || cqrs_ticket_wait(&t, UINT64_MAX))
			return -1;
	}
	return 0;
}

static void reap(xload *l, xbatch *b)
{
	for (uint32_t i = 0; i < b->n; i++) {
		if (cqrs_ticket_wait(&b->tickets[i], UINT64_MAX) == 0)
			atomic_fetch_add_explicit(&l->accepted, 1, memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&l->rejected, 1, memory_order_relaxed);
	}
	b->n = 0;
}

/* How many orders the load thread sends now: a batch flat out; paced,
 * what keeps to l->rate since the paced half began (steps of about a
 * millisecond's worth), sleeping while none may. 0: stop. */
static uint32_t next_count(xload *l, uint64_t *t0, uint64_t *sent)
{
	while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
		if (!atomic_load_explicit(&l->phase, memory_order_acquire)) /* pairs with main's release: rate */
			return BATCH;
		uint64_t rate = atomic_load_explicit(&l->rate, memory_order_relaxed);
		uint64_t step = rate / 1000 ? rate / 1000 : 1;
		if (*t0 == 0)
			*t0 = cqrs__mono_ns();
		uint64_t allowed = (uint64_t)((double)rate * (double)(cqrs__mono_ns() - *t0) / 1e9);
		if (allowed > *sent) {
			uint64_t n = allowed - *sent;
			n = n > step ? step : n;
			n = n > BATCH ? BATCH : n;
			*sent += n;
			return (uint32_t)n;
		}
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void *load_main(void *arg)
{
	xload *l = arg;
	xbatch *b = calloc(DEPTH, sizeof *b);
	uint64_t i = 0, t0 = 0, sent = 0;
	uint32_t n;

	if (!b)
		return NULL;
	while ((n = next_count(l, &t0, &sent)) > 0) {
		xbatch *cur = &b[i % DEPTH];
		reap(l, cur); /* the batch DEPTH ago */
		for (uint32_t k = 0; k < n; k++) {
			exch_flow_next(&l->flow, &cur->data[k]);
			to_command(&cur->data[k], &cur->cmds[k]);
		}
		cur->n = n;
		if (submit_all(l->e, cur->cmds, cur->tickets, cur->n)) {
			cur->n = 0;
			break;
		}
		atomic_fetch_add_explicit(&l->submitted, n, memory_order_relaxed);
		i++;
	}
	for (uint32_t k = 0; k < DEPTH; k++)
		reap(l, &b[k]);
	free(b);
	return NULL;
}

static int submit_one(xload *l, uint32_t type, const void *data, uint32_t size, uint64_t *seq)
{
	cqrs_command c = { .type = type, .size = size, .data = data };
	cqrs_ticket t;
	int rc = submit_all(l->e, &c, &t, 1);

	if (rc)
		return rc;
	rc = cqrs_ticket_wait(&t, UINT64_MAX);
	*seq = cqrs_ticket_seq(&t);
	return rc;
}

/* One probe every millisecond: an IOC buy from the probe account (it
 * trades or expires, both move top_of_book's seq), timed from submit until
 * top_of_book applied its seq; a deposit of 1, timed until positions shows
 * it, then handed to the reader process. */
static void *probe_main(void *arg)
{
	xload *l = arg;
	uint64_t probe_account = l->o->accounts + 1, coid = (uint64_t)time(NULL) << 24;
	cqrs_view *tob = NULL, *pos = NULL;

	if (cqrs_view_open(l->o->name, "top_of_book", &tob) || cqrs_view_open(l->o->name, "positions", &pos)) {
		fprintf(stderr, "probe: cannot open the views: %s\n", cqrs_last_error());
		goto out;
	}
	while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
		place_order p = { .account = probe_account, .client_order_id = ++coid, .qty = 1,
				  .price = FLOW_MID / 2, .instrument = 1, .side = EXCH_BUY,
				  .type = EXCH_LIMIT, .tif = EXCH_IOC };
		deposit d = { .account = probe_account, .amount = 1, .asset = 0 };
		uint64_t seq, t0 = cqrs__mono_ns(), msg[2];
		int ph = atomic_load_explicit(&l->phase, memory_order_relaxed);

		if (submit_one(l, CMD_PLACE_ORDER, &p, sizeof p, &seq) == 0 && seq &&
		    cqrs_view_wait(tob, seq, 5000000000ull) == 0)
			cqrs__hist_record(&l->to_top[ph], cqrs__mono_ns() - t0);
		t0 = cqrs__mono_ns();
		if (submit_one(l, CMD_DEPOSIT, &d, sizeof d, &seq) == 0) {
			if (cqrs_view_wait(pos, seq, 5000000000ull) == 0)
				cqrs__hist_record(&l->to_balance[ph], cqrs__mono_ns() - t0);
			l->probe_cash++;
			msg[0] = seq;
			msg[1] = l->probe_cash;
			if (l->probe_fd >= 0 && write(l->probe_fd, msg, sizeof msg) != (ssize_t)sizeof msg)
				l->probe_fd = -1;
			l->probes++;
		}
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
out:
	cqrs_view_close(tob);
	cqrs_view_close(pos);
	return NULL;
}

/* The reader process: this binary in md-reader mode. */
static pid_t spawn_reader(const xoptions *o, int *to_reader, int *from_reader)
{
	int in[2], out[2];
	pid_t pid;

	if (pipe(in) || pipe(out))
		return -1;
	pid = fork();
	if (pid == 0) {
		char a3[16], a4[16], a5[16], a6[32], a7[4];
		close(in[1]);
		close(out[0]);
		snprintf(a3, sizeof a3, "%d", in[0]);
		snprintf(a4, sizeof a4, "%d", out[1]);
		snprintf(a5, sizeof a5, "%u", o->instruments);
		snprintf(a6, sizeof a6, "%u", o->accounts + 1);
		snprintf(a7, sizeof a7, "%d", o->quiet);
		execl("/proc/self/exe", "cqrs-exchange", "md-reader", o->name, a3, a4, a5, a6, a7, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	*to_reader = in[1];
	*from_reader = out[0];
	return pid;
}

/* The Python reader, when the bindings were built beside this binary
 * (build/python) and the script is in the tree. -1 when not. */
static pid_t spawn_python(const xoptions *o)
{
	char exe[PATH_MAX], dir[PATH_MAX], py[PATH_MAX + 16], script[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	pid_t pid;

	if (n <= 0)
		return -1;
	exe[n] = 0;
	snprintf(dir, sizeof dir, "%s", dirname(exe));
	snprintf(py, sizeof py, "%s/python", dir);
	snprintf(script, sizeof script, "%s/../examples/exchange/depth.py", dir);
	if (access(py, R_OK) || access(script, R_OK)) {
		printf("cqrs-exchange: no Python reader (needs %s and %s)\n", py, script);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		char secs[32];
		snprintf(secs, sizeof secs, "%.1f", o->duration);
		setenv("PYTHONPATH", py, 1);
		execlp("python3", "python3", script, o->name, secs, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static double q_us(const cqrs_hist *h, double q)
{
	return (double)cqrs__hist_quantile(h, q) / 1e3;
}

int xdemo_run(const xoptions *o)
{
	static exch_market m;
	static xload l;
	cqrs_engine *e;
	pthread_t load_t, probe_t;
	int to_reader = -1, from_reader = -1, status;
	pid_t reader, py;
	xreader_result rr = { 0 };
	uint64_t t0, t1, t_half = 0, orders0, trades = 0, live, full_rate = 0;

	if (xdemo_open_engine(o, &m, &e))
		return 1;
	l.e = e;
	l.o = o;
	l.probe_fd = -1;
	exch_flow_init(&l.flow, 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL), o->instruments, o->accounts,
		       (uint64_t)time(NULL) << 28);
	/* the model before any command: start's recovery is done */
	if (m.accounts[1].asset[0].total == 0 && fund(e, &l.flow, o->accounts + 1)) {
		fprintf(stderr, "cqrs-exchange: funding failed\n");
		cqrs_engine_close(e);
		return 1;
	}
	orders0 = m.next_order_id;
	printf("cqrs-exchange: %u instruments, %u accounts, durability %s, %.1f s of load\n",
	       o->instruments, o->accounts, xdemo_durability_name(o->durability), o->duration);
	fflush(stdout);
	reader = spawn_reader(o, &to_reader, &from_reader);
	l.probe_fd = to_reader;
	py = spawn_python(o);
	t0 = cqrs__mono_ns();
	pthread_create(&load_t, NULL, load_main, &l);
	pthread_create(&probe_t, NULL, probe_main, &l);
	while (!xdemo_got_signal && cqrs__mono_ns() - t0 < (uint64_t)(o->duration * 1e9)) {
		struct timespec ts = { 0, 50000000 };
		nanosleep(&ts, NULL);
		if (!t_half && cqrs__mono_ns() - t0 >= (uint64_t)(o->duration * 0.5e9)) {
			t_half = cqrs__mono_ns();
			l.phase_submitted = atomic_load(&l.submitted);
			full_rate = (uint64_t)((double)l.phase_submitted * 1e9 / (double)(t_half - t0));
			atomic_store_explicit(&l.rate, o->rate ? o->rate : full_rate / 10 + 1, memory_order_relaxed);
			atomic_store_explicit(&l.phase, 1, memory_order_release); /* the rate before the phase */
		}
	}
	atomic_store(&l.stop, 1);
	pthread_join(load_t, NULL);
	pthread_join(probe_t, NULL);
	t1 = cqrs__mono_ns();
	if (to_reader >= 0)
		close(to_reader);
	if (reader > 0) {
		if (read(from_reader, &rr, sizeof rr) != (ssize_t)sizeof rr)
			rr.errors++;
		waitpid(reader, &status, 0);
	}
	if (py > 0)
		waitpid(py, &status, 0);
	cqrs_engine_stop(e);
	for (uint32_t i = 1; i <= o->instruments; i++)
		trades += m.books[i].trades;
	live = m.live;
	{
		double secs = (double)(t1 - t0) / 1e9;
		uint64_t sub = atomic_load(&l.submitted), acc = atomic_load(&l.accepted),
			 rej = atomic_load(&l.rejected);
		printf("\n== cqrs-exchange summary (%.1f s, durability %s) ==\n", secs,
		       xdemo_durability_name(o->durability));
		uint64_t paced = sub - l.phase_submitted;
		double half2 = t_half ? (double)(t1 - t_half) / 1e9 : 0;
		printf("%-40s %14" PRIu64 "  (%.0f/s)\n", "commands (load thread)", sub, (double)sub / secs);
		printf("%-40s %14" PRIu64 "\n", "  accepted", acc);
		printf("%-40s %14" PRIu64 "  (cancels of filled quotes, market orders without liquidity)\n",
		       "  rejected", rej);
		printf("%-40s %14" PRIu64 "\n", "orders accepted (whole run)", m.next_order_id - orders0);
		printf("%-40s %14" PRIu64 "\n", "trades (all runs over this journal)", trades);
		printf("%-40s %14" PRIu64 "\n", "resting orders now", live);
		printf("full load: commands/s (load thread flat out) %10" PRIu64 "\n", full_rate);
		printf("full load: order -> top_of_book p50/p99/p99.9 %.1f / %.1f / %.1f us (queued behind the load)\n",
		       q_us(&l.to_top[0], 0.5), q_us(&l.to_top[0], 0.99), q_us(&l.to_top[0], 0.999));
		printf("full load: deposit -> positions p50/p99/p99.9 %.1f / %.1f / %.1f us\n",
		       q_us(&l.to_balance[0], 0.5), q_us(&l.to_balance[0], 0.99), q_us(&l.to_balance[0], 0.999));
		printf("paced at %" PRIu64 "/s: commands/s %.0f\n", atomic_load(&l.rate),
		       half2 > 0 ? (double)paced / half2 : 0.0);
		printf("paced: order -> top_of_book p50/p99/p99.9 %.1f / %.1f / %.1f us\n",
		       q_us(&l.to_top[1], 0.5), q_us(&l.to_top[1], 0.99), q_us(&l.to_top[1], 0.999));
		printf("paced: deposit -> positions p50/p99/p99.9 %.1f / %.1f / %.1f us\n",
		       q_us(&l.to_balance[1], 0.5), q_us(&l.to_balance[1], 0.99), q_us(&l.to_balance[1], 0.999));
		printf("%-40s %14.0f  (top 10 levels a side, other process)\n", "depth reads/s (paced)",
		       rr.secs > 0 ? (double)rr.depth_reads / rr.secs : 0.0);
		printf("%-40s %14" PRIu64 " ok, %" PRIu64 " failed\n", "read-your-writes (reader process)",
		       rr.ryw_ok, rr.ryw_fail);
		printf("%-40s %14" PRIu64 "\n", "crossed tops seen by the reader", rr.crossed);
		printf("%-40s %14" PRIu64 "\n", "reader errors", rr.errors);
		printf("views: book_levels top_of_book orders trades positions stay in /dev/shm "
		       "(cqrs view range %s book_levels ...; cqrs rm %s)\n", o->name, o->name);
	}
	cqrs_engine_close(e);
	exch_market_free(&m);
	return rr.ryw_fail || rr.errors || rr.crossed ? 1 : 0;
}
