/*
 * examples/orders/demo.c - `cqrs-orders demo`: starts the orders engine
 * (an existing one is recovered and continued), registers customers,
 * starts the reader process, the load and probe threads, shows the live
 * progress line for the run's duration, then stops everything and prints
 * the summary. Exits 1 when the reader saw an error or a read-your-writes
 * failure.
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

int demo_run(const options *o)
{
	orders_model m;
	cqrs_engine *e = NULL;
	static load l;
	pthread_t load_thread, probe_thread;
	int to_reader = -1, from_reader = -1, rc, isatty_err = isatty(2);
	pid_t reader;
	const cqrs_counters *c;
	uint64_t t0, t_end, seq0, bytes0, syncs0, max_lag = 0;
	reader_result rr = { 0 };

	if (demo_open_engine(o, &m, &e))
		return 1;
	c = cqrs_engine_counters(e);
	memset(&l, 0, sizeof l);
	l.e = e;
	l.o = o;
	/* Continue above whatever a previous run left (ids are never reused). */
	l.ids.first_customer = 1 + cqrs_store_count(m.customers);
	l.ids.customers = o->customers;
	l.ids.next_order = 1 + cqrs_store_count(m.orders);
	printf("cqrs-orders demo: engine '%s' in %s, durability %s%s, %.0f s; %" PRIu64
	       " events recovered\n", o->name, o->dir, demo_durability_name(o->durability),
	       o->threading == CQRS_THREADING_SHARED ? ", shared threading" : "", o->duration,
	       CTR(c->replayed));
	fflush(stdout); /* before the progress lines on stderr */
	if (demo_register_customers(e, &l.ids)) {
		fprintf(stderr, "cqrs-orders: registering customers failed\n");
		cqrs_engine_close(e);
		return 1;
	}
	reader = demo_spawn_reader(o, &l.ids, &to_reader, &from_reader);
	l.probe_fd = to_reader;
	signal(SIGPIPE, SIG_IGN);
	seq0 = cqrs_engine_durable_seq(e);
	bytes0 = CTR(c->journal_bytes);
	syncs0 = CTR(c->fdatasyncs);
	t0 = cqrs__mono_ns();
	t_end = t0 + (uint64_t)(o->duration * 1e9);
	pthread_create(&load_thread, NULL, demo_load_main, &l);
	pthread_create(&probe_thread, NULL, demo_probe_main, &l);
	for (uint64_t now = cqrs__mono_ns(); now < t_end && !demo_got_signal; now = cqrs__mono_ns()) {
		struct timespec tick = { 0, 250000000 };
		uint64_t d, lag, applied;
		double secs = (double)(now - t0) / 1e9;

		nanosleep(&tick, NULL);
		applied = demo_min_applied(c); /* before durable: applied <= durable then */
		d = cqrs_engine_durable_seq(e);
		lag = d > applied ? d - applied : 0;
		if (lag > max_lag)
			max_lag = lag;
		if (!o->quiet)
			demo_print_progress(&l, secs, d - seq0, lag, isatty_err);
	}
	atomic_store(&l.stop, 1);
	pthread_join(load_thread, NULL);
	pthread_join(probe_thread, NULL);
	if (!o->quiet && isatty_err)
		fputc('\n', stderr);
	{
		double secs = (double)(cqrs__mono_ns() - t0) / 1e9;
		int status = 0;

		close(to_reader);
		if (reader > 0) {
			if (read(from_reader, &rr, sizeof rr) != (ssize_t)sizeof rr)
				memset(&rr, 0, sizeof rr);
			waitpid(reader, &status, 0);
		}
		close(from_reader);
		demo_print_summary(&l, c, &rr, secs, bytes0, syncs0, max_lag);
		rc = (rr.ryw_fail == 0 && rr.errors == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			     ? 0 : 1;
	}
	if (cqrs_engine_stop(e))
		rc = 1;
	cqrs_engine_close(e);
	orders_model_free(&m);
	if (rc)
		fprintf(stderr, "cqrs-orders: demo FAILED (reader errors or read-your-writes failures)\n");
	return rc;
}
