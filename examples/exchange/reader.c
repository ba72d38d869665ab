/*
 * examples/exchange/reader.c - the demo's market-data reader, a process of
 * its own (this binary, `cqrs-exchange md-reader ...`): it reads the top 10
 * levels of each side of every book from book_levels (one range read a
 * side through the ordered index, snapshot-consistent; a round every
 * 100 us), checks each
 * top_of_book it sees is not crossed, prints every instrument's top of
 * book once a second, and checks read-your-writes for every probe deposit
 * the demo tells it about (cqrs_view_wait(seq), then the probe account's
 * cash in positions must be at least what the demo expects). It writes its
 * counts back when the demo closes the pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cqrs_view.h"
#include "examples/exchange/demo.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_level(void *arg, const void *row, size_t size)
{
	(void)row;
	(void)size;
	(*(uint64_t *)arg)++;
	return 0;
}

int xdemo_reader_main(const char *engine, int in_fd, int out_fd, uint32_t ninstruments,
		      uint64_t probe_account, int quiet)
{
	xreader_result res = { 0 };
	cqrs_view *levels = NULL, *tob = NULL, *pos = NULL;
	double t0 = now_s(), last_print = t0;

	if (cqrs_view_open(engine, "book_levels", &levels) || cqrs_view_open(engine, "top_of_book", &tob) ||
	    cqrs_view_open(engine, "positions", &pos)) {
		fprintf(stderr, "md-reader: cannot open the views: %s\n", cqrs_last_error());
		res.errors++;
		if (write(out_fd, &res, sizeof res) < 0)
			return 1;
		return 1;
	}
	fcntl(in_fd, F_SETFL, O_NONBLOCK);
	for (;;) {
		uint64_t msg[2];
		ssize_t n;

		for (uint32_t i = 1; i <= ninstruments; i++) {
			for (uint32_t s = 0; s < 2; s++) {
				uint32_t lo[2] = { i, s }, hi[2] = { i, s + 1 };
				int rc = cqrs_view_range(levels, NULL, lo, sizeof lo, hi, sizeof hi,
							 (s == EXCH_BUY ? CQRS_RANGE_DESC : 0) | CQRS_RANGE_SNAPSHOT,
							 10, count_level, &res.levels_read);
				if (rc < 0 && rc != -EAGAIN)
					res.errors++;
			}
			res.depth_reads++;
		}
		for (uint32_t i = 1; i <= ninstruments; i++) {
			top_of_book t;
			uint64_t key = i;
			if (cqrs_view_get(tob, &key, 8, &t, sizeof t) == 0 && t.bid && t.ask && t.bid >= t.ask)
				res.crossed++;
		}
		while ((n = read(in_fd, msg, sizeof msg)) == (ssize_t)sizeof msg) {
			position p;
			uint64_t key = POSITION_KEY(probe_account, 0);
			if (cqrs_view_wait(pos, msg[0], 5000000000ull) == 0 &&
			    cqrs_view_get(pos, &key, 8, &p, sizeof p) == 0 && p.qty >= (int64_t)msg[1])
				res.ryw_ok++;
			else
				res.ryw_fail++;
		}
		if (n == 0)
			break; /* the demo closed the pipe */
		{
			/* a round every 100 us: the engine keeps the cores (the
			 * bench measures reads flat out) */
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
		}
		if (n < 0 && errno != EAGAIN) {
			res.errors++;
			break;
		}
		if (!quiet && now_s() - last_print >= 1.0) {
			last_print = now_s();
			for (uint32_t i = 1; i <= ninstruments; i++) {
				top_of_book t;
				uint64_t key = i;
				if (cqrs_view_get(tob, &key, 8, &t, sizeof t))
					continue;
				printf("[md-reader] instrument %u: bid %6" PRIu64 " x %-6" PRIu64 " ask %6" PRIu64
				       " x %-6" PRIu64 " last %6" PRIu64 " (%" PRIu64 " trades, seq %" PRIu64 ")\n",
				       i, t.bid, t.bid_qty, t.ask, t.ask_qty, t.last_price, t.trades, t.seq);
			}
			fflush(stdout);
		}
	}
	res.secs = now_s() - t0;
	cqrs_view_close(levels);
	cqrs_view_close(tob);
	cqrs_view_close(pos);
	return write(out_fd, &res, sizeof res) == (ssize_t)sizeof res ? 0 : 1;
}
