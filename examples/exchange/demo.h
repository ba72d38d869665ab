/*
 * examples/exchange/demo.h - what the files of cqrs-exchange share: the
 * options (main.c), the engine setup (setup.c), the demo (demo.c: load,
 * probe, summary), the market-data reader process (reader.c) and serve
 * (serve.c).
 */
#ifndef CQRS_EXAMPLES_EXCHANGE_DEMO_H
#define CQRS_EXAMPLES_EXCHANGE_DEMO_H

#include <signal.h>
#include <stdint.h>

#include "examples/exchange/flow.h"

typedef struct xoptions {
	const char *dir;
	const char *name;
	const char *argv0;
	int fresh;
	int quiet;
	int durability;
	int threading;
	double duration;
	uint32_t instruments;
	uint32_t accounts;  /* the flow's; the probe's is accounts + 1 */
	uint64_t rate;      /* orders/s of the paced half (0: a tenth of full load's) */
} xoptions;

extern volatile sig_atomic_t xdemo_got_signal;

/* What the reader process sends back when the demo closes its pipe. */
typedef struct xreader_result {
	uint64_t depth_reads;   /* top 10 levels a side, one instrument */
	uint64_t levels_read;
	uint64_t ryw_ok, ryw_fail;
	uint64_t crossed;       /* a top of book with bid >= ask */
	uint64_t errors;
	double secs;
} xreader_result;

/* setup.c */
int xdemo_parse_durability(const char *s);
const char *xdemo_durability_name(int d);
/* Opens and starts the exchange engine (o->fresh: its segments and files
 * removed first) with m as its model. 0 or the error, printed. */
int xdemo_open_engine(const xoptions *o, exch_market *m, cqrs_engine **out);

/* reader.c: `cqrs-exchange md-reader ENGINE IN OUT NINSTRUMENTS PROBE_ACCOUNT` */
int xdemo_reader_main(const char *engine, int in_fd, int out_fd, uint32_t ninstruments,
		      uint64_t probe_account, int quiet);

int xdemo_run(const xoptions *o);
int xdemo_serve(const xoptions *o);

#endif
