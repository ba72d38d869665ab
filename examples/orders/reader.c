/*
 * examples/orders/reader.c - the demo's reader process (this binary,
 * `cqrs-orders reader ...`): it queries "active orders of customer C" (one
 * secondary-index lookup in active_orders; a row there that is not active
 * counts as an error) for random C, checks read-your-writes for every probe
 * order the demo sends it (cqrs_view_wait(seq), then the row must be
 * there), and writes its counts back when the demo closes the pipe.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "cqrs_view.h"
#include "examples/orders/demo.h"

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

int demo_reader_main(const char *engine, int in_fd, int out_fd, uint64_t first, uint64_t customers)
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

pid_t demo_spawn_reader(const options *o, const id_space *ids, int *to_reader, int *from_reader)
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
