/*
 * examples/orders/main.c - cqrs-orders: the reference demo.
 *
 *   cqrs-orders demo  [--dir D] [--fresh] [--duration S] [--durability M]
 *                     [--customers N] [--name ENGINE] [--shared] [--quiet]
 *   cqrs-orders serve [--dir D] [--fresh] [--durability M] [--name ENGINE] [--shared]
 *
 * --shared: CQRS_THREADING_SHARED (projections applied on the command
 * thread; for hosts with fewer cores than threads).
 *
 * demo: starts the `orders` engine in D (default ./data; an existing one is
 * recovered and continued, --fresh starts over), registers customers, then
 * generates load (create, ship, complete, cancel) from a load thread while
 *   - a probe thread submits one CreateOrder at a time and waits until the
 *     order is visible in the order_summaries view: command-to-visible
 *     latency;
 *   - a separate reader process (this binary, `reader` mode) queries "active
 *     orders of customer C" (one secondary-index lookup in active_orders;
 *     a row there that is not active counts as an error) for random C, and
 *     checks read-your-writes for every probe order it is told about:
 *     cqrs_view_wait(seq) then the row must be there;
 * shows a one-line live progress display and ends with a summary table.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "core/hist.h"
#include "examples/orders/orders.h"

/* What the engine and its views are sized for up front (see open_engine). */
#define DEMO_ORDERS (UINT64_C(1) << 22)
#define DEMO_CUSTOMERS (UINT64_C(1) << 16)

typedef struct options {
	const char *dir;
	const char *name;
	int fresh;
	double duration;
	int durability;
	uint64_t customers;
	int quiet;
	int threading; /* enum cqrs_threading_mode */
} options;

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void log_cb(void *arg, int level, const char *msg)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	const options *o = arg;

	if (level <= CQRS_LOG_WARN || !o->quiet)
		fprintf(stderr, "[%s] %s\n", names[level & 3], msg);
}

static int parse_durability(const char *s)
{
	if (!strcmp(s, "none")) return CQRS_DURABILITY_NONE;
	if (!strcmp(s, "batch")) return CQRS_DURABILITY_BATCH;
	if (!strcmp(s, "interval")) return CQRS_DURABILITY_INTERVAL;
	return -1;
}

static const char *durability_name(int d)
{
	return d == CQRS_DURABILITY_NONE ? "none" : d == CQRS_DURABILITY_BATCH ? "batch" : "interval";
}

/* rm -rf of the engine's files in dir (journal, dead letters): --fresh. */
static int remove_data(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof cmd, "rm -rf -- '%s/journal' '%s/deadletters.log'", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int open_engine(const options *o, orders_model *m, cqrs_engine **out)
{
	cqrs_config cfg;
	int rc;

	if (o->fresh) {
		rc = cqrs_engine_remove_segments(o->name);
		if (rc < 0) {
			fprintf(stderr, "cqrs-orders: %s\n", cqrs_last_error());
			return rc;
		}
		remove_data(o->dir);
	}
	/* about 10 s of load on this 2-core box (2.1M orders at 580k commands/s
	 * came within a few thousand of 2^21) fits the write model and the views
	 * without growing them (faster runs, or many runs over one data
	 * directory, grow them); the load keeps at most 64k orders open, plus
	 * the probe's */
	rc = orders_model_init(m, DEMO_ORDERS);
	if (rc)
		return rc;
	cqrs_config_init(&cfg);
	cfg.name = o->name;
	cfg.data_dir = o->dir;
	cfg.durability = o->durability;
	cfg.projector_threads = 2;
	cfg.threading = o->threading;
	cfg.aggregates_hint = DEMO_ORDERS; /* a power of two: slots are rounded up to one */
	cfg.log = log_cb;
	cfg.log_arg = (void *)o;
	rc = cqrs_engine_open(&cfg, m, out);
	if (rc == 0)
		rc = orders_register(*out, DEMO_ORDERS, 1u << 18, DEMO_CUSTOMERS);
	if (rc == 0)
		rc = cqrs_engine_start(*out);
	if (rc) {
		fprintf(stderr, "cqrs-orders: cannot start engine %s in %s: %s (%s)\n", o->name, o->dir,
			cqrs_strerror(rc), cqrs_last_error());
		if (*out)
			cqrs_engine_close(*out);
		*out = NULL;
		orders_model_free(m);
	}
	return rc;
}

/* ---- load ------------------------------------------------------------------------- */

/* Where the demo continues after a restart: ids above every existing one. */
typedef struct id_space {
	uint64_t next_order;
	uint64_t customers;
	uint64_t first_customer;
} id_space;

typedef struct load {
	cqrs_engine *e;
	const options *o;
	id_space ids;
	_Atomic int stop;
	_Atomic uint64_t submitted, accepted, rejected;
	/* probe */
	cqrs_hist visible;
	int probe_fd; /* pipe to the reader process */
	_Atomic uint64_t probes;
} load;

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: cheap, good enough for picking work */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

#define BATCH 1024
#define DEPTH 4 /* batches in flight: the next is decided while one is synced */

/* Orders the load thread keeps moving through their lifecycle. */
typedef struct live_order {
	uint64_t id;
	uint32_t status;
} live_order;

typedef struct load_batch {
	union {
		create_order create;
		ship_order ref;
	} data[BATCH];
	cqrs_command cmds[BATCH];
	cqrs_ticket tickets[BATCH];
	uint32_t n;
} load_batch;

typedef struct load_state {
	live_order *orders;
	uint32_t norders, cap;
	uint64_t seed;
} load_state;

/* Fills b with a mix: 40% new orders, the rest moves a live order on
 * (ship, then complete; sometimes cancel). The live set is bounded: when
 * it is full, the command moves an order on instead of creating one, so
 * every order the load creates is eventually finished. */
static void fill_batch(load *l, load_state *st, load_batch *b)
{
	for (uint32_t n = 0; n < BATCH; n++) {
		uint64_t r = rng_next(&st->seed);
		cqrs_command *c = &b->cmds[n];

		if (st->norders < 1000 || (r % 100 < 40 && st->norders < st->cap)) {
			create_order *co = &b->data[n].create;
			memset(co, 0, sizeof *co);
			co->order_id = l->ids.next_order++;
			co->customer_id = l->ids.first_customer + (r >> 8) % l->ids.customers;
			co->item_count = 1 + (uint32_t)(r % 7);
			co->total = (int64_t)(100 + (r >> 20) % 100000);
			snprintf(co->shipping_address, sizeof co->shipping_address, "%u Main St",
				 (unsigned)(r % 9999));
			*c = (cqrs_command){ .type = CMD_CREATE_ORDER, .size = sizeof *co, .data = co };
			st->orders[st->norders++] = (live_order){ co->order_id, ORDER_CREATED };
		} else {
			uint32_t i = (uint32_t)((r >> 16) % st->norders);
			live_order *lo = &st->orders[i];
			uint32_t type = lo->status == ORDER_SHIPPED ? CMD_COMPLETE_ORDER
				      : r % 100 < 85 ? CMD_SHIP_ORDER : CMD_CANCEL_ORDER;
			b->data[n].ref.order_id = lo->id;
			*c = (cqrs_command){ .type = type, .size = sizeof(ship_order), .data = &b->data[n].ref };
			if (type == CMD_SHIP_ORDER)
				lo->status = ORDER_SHIPPED;
			else /* finished: drop it from the live set */
				st->orders[i] = st->orders[--st->norders];
		}
	}
	b->n = BATCH;
}

static int submit_batch(load *l, load_batch *b)
{
	for (uint32_t done = 0; done < b->n;) {
		int rc = cqrs_submit_batch(l->e, b->cmds + done, b->tickets + done, b->n - done);
		if (rc == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (rc < 0) {
			b->n = done;
			return rc;
		}
		done += (uint32_t)rc;
	}
	return 0;
}

static void reap_batch(load *l, load_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++) {
		if (cqrs_ticket_wait(&b->tickets[i], UINT64_MAX) == 0)
			atomic_fetch_add_explicit(&l->accepted, 1, memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&l->rejected, 1, memory_order_relaxed);
	}
	b->n = 0;
}

static void *load_main(void *arg)
{
	load *l = arg;
	load_batch *batches = calloc(DEPTH, sizeof *batches);
	load_state st = { .cap = 1 << 16,
			  .seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)cqrs__mono_ns() };

	st.orders = calloc(st.cap, sizeof *st.orders);
	if (!batches || !st.orders) {
		free(batches);
		free(st.orders);
		return NULL;
	}
	for (uint64_t k = 0; !atomic_load_explicit(&l->stop, memory_order_relaxed); k++) {
		load_batch *b = &batches[k % DEPTH];

		reap_batch(l, b); /* the batch DEPTH submissions ago */
		fill_batch(l, &st, b);
		if (submit_batch(l, b))
			atomic_store(&l->stop, 1);
		atomic_fetch_add_explicit(&l->submitted, b->n, memory_order_relaxed);
	}
	for (int k = 0; k < DEPTH; k++)
		reap_batch(l, &batches[k]);
	free(batches);
	free(st.orders);
	return NULL;
}

/* One CreateOrder at a time, then wait until the view shows it. */
static void *probe_main(void *arg)
{
	load *l = arg;
	cqrs_view *v = NULL;
	uint64_t order_id = (UINT64_C(1) << 61);
	int rc;

	if (cqrs_view_open(l->o->name, "order_summaries", &v)) {
		fprintf(stderr, "probe: cannot open order_summaries: %s\n", cqrs_last_error());
		return NULL;
	}
	/* Probe ids live in their own range, above the load's. */
	order_id += l->ids.next_order;
	while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
		create_order co = { .order_id = order_id++, .customer_id = l->ids.first_customer,
				    .item_count = 1, .total = 999 };
		cqrs_command c = { .type = CMD_CREATE_ORDER, .size = sizeof co, .data = &co };
		cqrs_ticket t;
		uint64_t t0 = cqrs__mono_ns(), seq;
		struct timespec pause = { 0, 200000 };

		strcpy(co.shipping_address, "probe");
		rc = cqrs_submit(l->e, &c, &t);
		if (rc == -EAGAIN)
			continue;
		if (rc || cqrs_ticket_wait(&t, UINT64_MAX) != 0)
			break;
		seq = cqrs_ticket_seq(&t);
		if (cqrs_view_wait(v, seq, 5000000000ull) == 0) {
			cqrs__hist_record_mt(&l->visible, cqrs__mono_ns() - t0);
			atomic_fetch_add_explicit(&l->probes, 1, memory_order_relaxed);
		}
		if (l->probe_fd >= 0) {
			uint64_t msg[2] = { seq, co.order_id };
			if (write(l->probe_fd, msg, sizeof msg) != (ssize_t)sizeof msg)
				l->probe_fd = -1;
		}
		nanosleep(&pause, NULL);
	}
	cqrs_view_close(v);
	return NULL;
}

/* ---- the reader process ----------------------------------------------------------- */

typedef struct reader_result {
	uint64_t queries;
	uint64_t rows;
	uint64_t active;
	uint64_t ryw_ok;
	uint64_t ryw_fail;
	uint64_t errors;
} reader_result;

static int count_active(void *arg, const void *row, size_t size)
{
	const order_summary *o = row;
	reader_result *r = arg;
	(void)size;

	r->rows++;
	if (o->status == ORDER_CREATED || o->status == ORDER_SHIPPED)
		r->active++;
	else
		r->errors++; /* active_orders holds open orders only */
	return 0;
}

static int reader_main(const char *engine, int in_fd, int out_fd, uint64_t first, uint64_t customers)
{
	reader_result res = { 0 };
	uint64_t seed = 12345 ^ (uint64_t)getpid();
	cqrs_view *v, *active;
	order_summary row;

	if (cqrs_view_open(engine, "order_summaries", &v)) {
		fprintf(stderr, "reader: cannot open order_summaries: %s\n", cqrs_last_error());
		return 1;
	}
	if (cqrs_view_open(engine, "active_orders", &active)) {
		fprintf(stderr, "reader: cannot open active_orders: %s\n", cqrs_last_error());
		cqrs_view_close(v);
		return 1;
	}
	fcntl(in_fd, F_SETFL, O_NONBLOCK);
	for (;;) {
		uint64_t msg[2];
		ssize_t n;

		for (int i = 0; i < 256; i++) {
			uint64_t c = first + rng_next(&seed) % customers;
			int rc = cqrs_view_find(active, "customer_id", &c, sizeof c, count_active, &res, 0);
			if (rc < 0)
				res.errors++;
			res.queries++;
		}
		while ((n = read(in_fd, msg, sizeof msg)) == (ssize_t)sizeof msg) {
			/* Read-your-writes: once applied_seq reaches the command's seq,
			 * the row must be there. */
			if (cqrs_view_wait(v, msg[0], 5000000000ull) == 0 &&
			    cqrs_view_get(v, &msg[1], 8, &row, sizeof row) == 0 && row.order_id == msg[1])
				res.ryw_ok++;
			else
				res.ryw_fail++;
		}
		if (n == 0)
			break; /* the demo closed the pipe: done */
	}
	cqrs_view_close(active);
	cqrs_view_close(v);
	return write(out_fd, &res, sizeof res) == (ssize_t)sizeof res ? 0 : 1;
}

static pid_t spawn_reader(const options *o, const id_space *ids, int *to_reader, int *from_reader)
{
	int a[2], b[2];
	pid_t pid;

	if (pipe(a) || pipe(b))
		return -1;
	pid = fork();
	if (pid == 0) {
		char in[16], out[16], first[32], count[32];
		close(a[1]);
		close(b[0]);
		snprintf(in, sizeof in, "%d", a[0]);
		snprintf(out, sizeof out, "%d", b[1]);
		snprintf(first, sizeof first, "%" PRIu64, ids->first_customer);
		snprintf(count, sizeof count, "%" PRIu64, ids->customers);
		execl("/proc/self/exe", "cqrs-orders", "reader", o->name, in, out, first, count, (char *)NULL);
		_exit(127);
	}
	close(a[0]);
	close(b[1]);
	*to_reader = a[1];
	*from_reader = b[0];
	return pid;
}

/* ---- demo ----------------------------------------------------------------------- */

static int register_customers(cqrs_engine *e, id_space *ids)
{
	enum { N = 256 };
	register_customer rc_data[N];
	cqrs_command cmds[N];
	cqrs_ticket t[N];
	uint64_t id = ids->first_customer, end = id + ids->customers;

	while (id < end) {
		uint32_t n = 0;
		for (; n < N && id < end; n++, id++) {
			memset(&rc_data[n], 0, sizeof rc_data[n]);
			rc_data[n].customer_id = id;
			snprintf(rc_data[n].name, sizeof rc_data[n].name, "customer-%" PRIu64, id);
			cmds[n] = (cqrs_command){ .type = CMD_REGISTER_CUSTOMER, .size = sizeof rc_data[n],
						  .data = &rc_data[n] };
		}
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
		for (uint32_t i = 0; i < n; i++)
			cqrs_ticket_wait(&t[i], UINT64_MAX);
	}
	return 0;
}

/* Counters are written by engine threads: read them relaxed. */
#define CTR(expr) __atomic_load_n(&(expr), __ATOMIC_RELAXED)

static uint64_t min_applied(const cqrs_counters *c)
{
	uint64_t m = UINT64_MAX;
	for (uint32_t i = 0; i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++)
		if (CTR(c->proj[i].applied_seq) < m)
			m = CTR(c->proj[i].applied_seq);
	return m == UINT64_MAX ? 0 : m;
}

static int run_demo(const options *o)
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

	if (open_engine(o, &m, &e))
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
	       " events recovered\n", o->name, o->dir, durability_name(o->durability),
	       o->threading == CQRS_THREADING_SHARED ? ", shared threading" : "", o->duration,
	       CTR(c->replayed));
	fflush(stdout); /* before the progress lines on stderr */
	if (register_customers(e, &l.ids)) {
		fprintf(stderr, "cqrs-orders: registering customers failed\n");
		cqrs_engine_close(e);
		return 1;
	}
	reader = spawn_reader(o, &l.ids, &to_reader, &from_reader);
	l.probe_fd = to_reader;
	signal(SIGPIPE, SIG_IGN);
	seq0 = cqrs_engine_durable_seq(e);
	bytes0 = CTR(c->journal_bytes);
	syncs0 = CTR(c->fdatasyncs);
	t0 = cqrs__mono_ns();
	t_end = t0 + (uint64_t)(o->duration * 1e9);
	pthread_create(&load_thread, NULL, load_main, &l);
	pthread_create(&probe_thread, NULL, probe_main, &l);
	for (uint64_t now = cqrs__mono_ns(); now < t_end && !got_signal; now = cqrs__mono_ns()) {
		struct timespec tick = { 0, 250000000 };
		uint64_t d, lag, applied;
		double secs = (double)(now - t0) / 1e9;

		nanosleep(&tick, NULL);
		applied = min_applied(c); /* before durable: applied <= durable then */
		d = cqrs_engine_durable_seq(e);
		lag = d > applied ? d - applied : 0;
		if (lag > max_lag)
			max_lag = lag;
		if (!o->quiet)
			fprintf(stderr, "%s[%5.1fs] commands %9" PRIu64 " (%7.0f/s)  events %9" PRIu64
				"  probe p50 %6.1f us  lag %6" PRIu64 " ev%s",
				isatty_err ? "\r" : "", secs, atomic_load(&l.submitted),
				secs > 0 ? (double)atomic_load(&l.submitted) / secs : 0.0, d - seq0,
				(double)cqrs__hist_quantile(&l.visible, 0.5) / 1e3, lag,
				isatty_err ? "" : "\n");
	}
	atomic_store(&l.stop, 1);
	pthread_join(load_thread, NULL);
	pthread_join(probe_thread, NULL);
	if (!o->quiet && isatty_err)
		fputc('\n', stderr);
	{
		uint64_t t1 = cqrs__mono_ns();
		double secs = (double)(t1 - t0) / 1e9;
		uint64_t submitted = atomic_load(&l.submitted);
		uint64_t mb = CTR(c->journal_bytes) - bytes0;
		int status = 0;

		close(to_reader);
		if (reader > 0) {
			if (read(from_reader, &rr, sizeof rr) != (ssize_t)sizeof rr)
				memset(&rr, 0, sizeof rr);
			waitpid(reader, &status, 0);
		}
		close(from_reader);
		printf("\n%-34s %s\n", "metric", "value");
		printf("%-34s %.0f\n", "commands/s (load thread)", (double)submitted / secs);
		printf("%-34s %" PRIu64 " accepted, %" PRIu64 " rejected\n", "commands",
		       atomic_load(&l.accepted), atomic_load(&l.rejected));
		printf("%-34s %.1f / %.1f / %.1f us (%" PRIu64 " probes)\n",
		       "command-to-visible p50/p99/p99.9", (double)cqrs__hist_quantile(&l.visible, 0.5) / 1e3,
		       (double)cqrs__hist_quantile(&l.visible, 0.99) / 1e3,
		       (double)cqrs__hist_quantile(&l.visible, 0.999) / 1e3, atomic_load(&l.probes));
		printf("%-34s %.0f (%" PRIu64 " rows seen, %" PRIu64 " errors)\n",
		       "reader queries/s (other process)", (double)rr.queries / secs, rr.rows, rr.errors);
		printf("%-34s %" PRIu64 " ok, %" PRIu64 " failed\n", "read-your-writes checks",
		       rr.ryw_ok, rr.ryw_fail);
		printf("%-34s %.1f\n", "journal MB/s", (double)mb / secs / 1e6);
		printf("%-34s %" PRIu64 "\n", "fdatasyncs", CTR(c->fdatasyncs) - syncs0);
		printf("%-34s %" PRIu64 " events max (sampled every 250 ms)\n", "projection lag", max_lag);
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

static int run_serve(const options *o)
{
	orders_model m;
	cqrs_engine *e = NULL;
	sigset_t set;
	int sig, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* engine threads inherit the mask */
	if (open_engine(o, &m, &e))
		return 1;
	printf("cqrs-orders: engine '%s' serving from %s (durability %s); SIGINT/SIGTERM stops\n",
	       o->name, o->dir, durability_name(o->durability));
	fflush(stdout);
	sigwait(&set, &sig);
	rc = cqrs_engine_stop(e);
	cqrs_engine_close(e);
	orders_model_free(&m);
	printf("cqrs-orders: stopped cleanly on signal %d\n", sig);
	return rc ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cqrs-orders demo  [--dir D] [--fresh] [--duration S] [--durability none|batch|interval]\n"
		"                         [--customers N] [--name ENGINE] [--shared] [--quiet]\n"
		"       cqrs-orders serve [--dir D] [--fresh] [--durability M] [--name ENGINE] [--shared]\n"
		"--shared: projections run on the command thread (CQRS_THREADING_SHARED)\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, 0, 'd' },      { "fresh", no_argument, 0, 'f' },
		{ "duration", required_argument, 0, 't' }, { "durability", required_argument, 0, 'm' },
		{ "customers", required_argument, 0, 'c' }, { "name", required_argument, 0, 'n' },
		{ "quiet", no_argument, 0, 'q' },          { "help", no_argument, 0, 'h' },
		{ "shared", no_argument, 0, 's' },
		{ 0, 0, 0, 0 }
	};
	options o = { .dir = "./data", .name = "orders", .duration = 10, .customers = 10000,
		      .durability = CQRS_DURABILITY_BATCH };
	const char *mode;
	int ch;

	if (argc >= 2 && !strcmp(argv[1], "reader") && argc == 7)
		return reader_main(argv[2], atoi(argv[3]), atoi(argv[4]), strtoull(argv[5], NULL, 10),
				   strtoull(argv[6], NULL, 10));
	if (argc < 2 || argv[1][0] == '-') {
		usage();
		return 2;
	}
	mode = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': o.dir = optarg; break;
		case 'f': o.fresh = 1; break;
		case 't': o.duration = atof(optarg); break;
		case 'm':
			o.durability = parse_durability(optarg);
			if (o.durability < 0) {
				usage();
				return 2;
			}
			break;
		case 'c': o.customers = strtoull(optarg, NULL, 10); break;
		case 'n': o.name = optarg; break;
		case 'q': o.quiet = 1; break;
		case 's': o.threading = CQRS_THREADING_SHARED; break;
		default: usage(); return 2;
		}
	}
	if (o.customers == 0 || o.duration <= 0) {
		usage();
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!strcmp(mode, "demo"))
		return run_demo(&o);
	if (!strcmp(mode, "serve"))
		return run_serve(&o);
	usage();
	return 2;
}
