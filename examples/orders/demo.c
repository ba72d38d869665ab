/*
 * examples/orders/demo.c - `cqrs-orders demo`: starts the orders engine
 * (an existing one is recovered and continued), registers customers,
 * starts the reader process, the load and probe threads, and runs two
 * phases of half the duration each: full load (the load thread flat out:
 * throughput), then paced load (--rate commands/s, by default a tenth of
 * what full load sustained: the probes' command-to-visible latency at a
 * load the engine keeps up with, not queueing behind a saturating one).
 * One progress line a second (that second's rates), then everything stops
 * and the summary (table or --json) says each phase's figures, labelled,
 * and where the views stay and how much shared memory they hold. Exits 1
 * when the reader saw an error or a read-your-writes failure.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "examples/orders/demo.h"

/* Sleeps until `until` (monotonic ns) or a signal. */
static void sleep_until(uint64_t until)
{
	uint64_t now = cqrs__mono_ns();

	if (now < until) {
		struct timespec ts = { (time_t)((until - now) / 1000000000u),
				       (long)((until - now) % 1000000000u) };
		nanosleep(&ts, NULL);
	}
}

int demo_run(const options *o)
{
	orders_model m;
	cqrs_engine *e = NULL;
	static load l;
	pthread_t load_thread, probe_thread;
	int to_reader = -1, from_reader = -1, rc;
	pid_t reader;
	const cqrs_counters *c;
	uint64_t t0, t_end, t_half, bytes0, syncs0, next_print, last_t, last_cmds, last_seq;
	uint64_t phase_t0, phase_cmds0;
	reader_result rr = { 0 };
	summary sum = { .l = &l, .rr = &rr };
	FILE *hdr = o->json ? stderr : stdout;

	if (demo_open_engine(o, &m, &e))
		return 1;
	c = cqrs_engine_counters(e);
	sum.restart_snap_seq = CTR(c->snap_loaded_seq);
	sum.restart_replayed = CTR(c->replayed);
	sum.restart_ms = (double)(CTR(c->snap_load_ns) + CTR(c->replay_ns)) / 1e6;
	memset(&l, 0, sizeof l);
	l.e = e;
	l.o = o;
	/* Continue above whatever a previous run left (ids are never reused). */
	l.ids.first_customer = 1 + cqrs_store_count(m.customers);
	l.ids.customers = o->customers;
	l.ids.next_order = 1 + cqrs_store_count(m.orders);
	if (!o->json || !o->quiet)
		fprintf(hdr, "cqrs-orders demo: engine '%s' in %s, durability %s%s, %.0f s "
			"(half full load, half paced); %" PRIu64 " events recovered (%" PRIu64
			" from a snapshot, %" PRIu64 " replayed)\n", o->name, o->dir,
			demo_durability_name(o->durability),
			o->threading == CQRS_THREADING_SHARED ? ", shared threading" : "", o->duration,
			sum.restart_snap_seq + CTR(c->replayed), sum.restart_snap_seq, CTR(c->replayed));
	fflush(hdr); /* before the progress lines on stderr */
	if (demo_register_customers(e, &l.ids)) {
		fprintf(stderr, "cqrs-orders: registering customers failed\n");
		cqrs_engine_close(e);
		return 1;
	}
	reader = demo_spawn_reader(o, &l.ids, &to_reader, &from_reader);
	l.probe_fd = to_reader;
	signal(SIGPIPE, SIG_IGN);
	last_seq = cqrs_engine_durable_seq(e);
	bytes0 = CTR(c->journal_bytes);
	syncs0 = CTR(c->fdatasyncs);
	t0 = phase_t0 = last_t = cqrs__mono_ns();
	t_end = t0 + (uint64_t)(o->duration * 1e9);
	t_half = t0 + (t_end - t0) / 2;
	next_print = t0 + 1000000000u;
	last_cmds = phase_cmds0 = 0;
	pthread_create(&load_thread, NULL, demo_load_main, &l);
	pthread_create(&probe_thread, NULL, demo_probe_main, &l);
	for (uint64_t now = cqrs__mono_ns(); now < t_end && !demo_got_signal; now = cqrs__mono_ns()) {
		uint64_t d, lag, applied, tick = now + 250000000u;

		sleep_until(tick < t_end ? tick : t_end);
		now = cqrs__mono_ns();
		applied = demo_min_applied(c); /* before durable: applied <= durable then */
		d = cqrs_engine_durable_seq(e);
		lag = d > applied ? d - applied : 0;
		if (lag > sum.max_lag)
			sum.max_lag = lag;
		/* a line ends at the phase change too: each line is one phase's */
		if (now >= next_print || now >= t_end ||
		    (atomic_load(&l.phase) == PHASE_FULL && now >= t_half)) {
			uint64_t cmds = atomic_load(&l.submitted);
			if (!o->quiet)
				demo_print_progress(&l, (double)(now - t0) / 1e9,
						    (double)(now - last_t) / 1e9, cmds - last_cmds,
						    d - last_seq, lag);
			last_t = now;
			last_cmds = cmds;
			last_seq = d;
			if (now >= next_print)
				next_print += 1000000000u;
		}
		if (atomic_load(&l.phase) == PHASE_FULL && now >= t_half) {
			/* full load ends: pace the rest well under what it sustained */
			uint64_t cmds = atomic_load(&l.submitted);
			double secs = (double)(now - phase_t0) / 1e9;
			uint64_t full = secs > 0 ? (uint64_t)((double)(cmds - phase_cmds0) / secs) : 0;

			sum.ph[PHASE_FULL] = (phase_result){ secs, cmds - phase_cmds0, 0 };
			atomic_store(&l.rate, o->rate ? o->rate : full / 10 > 1000 ? full / 10 : 1000);
			atomic_store(&l.phase, PHASE_PACED);
			phase_t0 = now;
			phase_cmds0 = cmds;
		}
	}
	atomic_store(&l.stop, 1);
	pthread_join(load_thread, NULL);
	pthread_join(probe_thread, NULL);
	{
		uint64_t now = cqrs__mono_ns(), cmds = atomic_load(&l.submitted);
		int ph = atomic_load(&l.phase), status = 0;

		sum.ph[ph] = (phase_result){ (double)(now - phase_t0) / 1e9, cmds - phase_cmds0,
					     ph == PHASE_PACED ? atomic_load(&l.rate) : 0 };
		sum.secs = (double)(now - t0) / 1e9;
		close(to_reader);
		if (reader > 0) {
			if (read(from_reader, &rr, sizeof rr) != (ssize_t)sizeof rr)
				memset(&rr, 0, sizeof rr);
			waitpid(reader, &status, 0);
		}
		close(from_reader);
		rc = (rr.ryw_fail == 0 && rr.errors == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			     ? 0 : 1;
	}
	/* every ticket was waited for: what the run journaled is counted (the
	 * counters go with the engine's stop) */
	sum.journal_bytes = CTR(c->journal_bytes) - bytes0;
	sum.fdatasyncs = CTR(c->fdatasyncs) - syncs0;
	if (cqrs_engine_stop(e))
		rc = 1;
	c = cqrs_engine_counters(e); /* the figures as the stop left them */
	sum.snaps_taken = CTR(c->snap_taken);
	sum.snap_seq = CTR(c->snap_seq);
	sum.snap_bytes = CTR(c->snap_bytes);
	sum.fork_us = CTR(c->snap_fork_us);
	sum.fork_max_us = CTR(c->snap_fork_max_us);
	cqrs_engine_close(e);
	orders_model_free(&m);
	demo_shm_usage(o->name, &sum.shm);
	demo_checkpoints(o->dir, sum.ckpt, &sum.nckpt);
	demo_print_summary(o, &sum);
	if (rc)
		fprintf(stderr, "cqrs-orders: demo FAILED (reader errors or read-your-writes failures)\n");
	return rc;
}
