/*
 * examples/exchange/main.c - cqrs-exchange: a matching engine on cqrs.
 *
 *   cqrs-exchange demo  [--dir D] [--fresh] [--duration S] [--durability M]
 *                       [--instruments N] [--accounts N] [--name ENGINE]
 *                       [--shared] [--quiet] [--rate N]
 *   cqrs-exchange serve [--dir D] [--fresh] [--durability M] [--instruments N]
 *                       [--accounts N] [--name ENGINE] [--shared]
 *
 * demo: starts the `exchange` engine in D (default ./data-exchange; an
 * existing one is recovered and continued, --fresh starts over), funds the
 * accounts, then runs the order flow of flow.h (makers quoting and
 * cancelling, takers crossing) from a load thread: flat out for the first
 * half of the duration (throughput; the probe's latency is queueing behind
 * that load), then paced at --rate N orders/s (default a tenth of what full
 * load sustained: the latency at a load the engine keeps up with), while
 *   - a probe thread submits one command at a time: an IOC order timed
 *     until top_of_book shows it, a deposit timed until positions shows it
 *     and handed to the reader process for its read-your-writes check;
 *   - a market-data reader process (`md-reader` mode) reads the top 10
 *     levels per side of every book and prints the tops once a second;
 *   - a Python reader (examples/exchange/depth.py, when the bindings are
 *     built) prints the depth of instrument 1;
 * then prints a summary table. serve: the engine alone for other
 * processes (gateway clients, cqrs, the bindings) until SIGINT/SIGTERM.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/exchange/demo.h"

volatile sig_atomic_t xdemo_got_signal;

static void on_signal(int sig)
{
	xdemo_got_signal = sig;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cqrs-exchange demo  [--dir D] [--fresh] [--duration S] [--durability none|batch|interval]\n"
		"                           [--instruments N] [--accounts N] [--name ENGINE] [--shared] [--quiet]\n"
		"                           [--rate N]\n"
		"       cqrs-exchange serve [--dir D] [--fresh] [--durability M] [--instruments N]\n"
		"                           [--accounts N] [--name ENGINE] [--shared]\n"
		"--shared: projections run on the command thread (CQRS_THREADING_SHARED)\n"
		"--rate N: orders/s of the paced second half (default: a tenth of full load's)\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, 0, 'd' },      { "fresh", no_argument, 0, 'f' },
		{ "duration", required_argument, 0, 't' }, { "durability", required_argument, 0, 'm' },
		{ "instruments", required_argument, 0, 'i' }, { "accounts", required_argument, 0, 'a' },
		{ "name", required_argument, 0, 'n' },     { "quiet", no_argument, 0, 'q' },
		{ "shared", no_argument, 0, 's' },         { "help", no_argument, 0, 'h' },
		{ "rate", required_argument, 0, 'r' },
		{ 0, 0, 0, 0 }
	};
	xoptions o = { .dir = "./data-exchange", .name = "exchange", .duration = 10,
		       .durability = CQRS_DURABILITY_BATCH, .instruments = 4, .accounts = 200,
		       .argv0 = argv[0] };
	const char *mode;
	int ch;

	if (argc == 8 && !strcmp(argv[1], "md-reader"))
		return xdemo_reader_main(argv[2], atoi(argv[3]), atoi(argv[4]), (uint32_t)atoi(argv[5]),
					 strtoull(argv[6], NULL, 10), atoi(argv[7]));
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
			o.durability = xdemo_parse_durability(optarg);
			if (o.durability < 0) {
				usage();
				return 2;
			}
			break;
		case 'i': o.instruments = (uint32_t)atoi(optarg); break;
		case 'a': o.accounts = (uint32_t)atoi(optarg); break;
		case 'n': o.name = optarg; break;
		case 'q': o.quiet = 1; break;
		case 's': o.threading = CQRS_THREADING_SHARED; break;
		case 'r': o.rate = strtoull(optarg, NULL, 10); break;
		default: usage(); return 2;
		}
	}
	if (o.duration <= 0 || o.instruments < 1 || o.instruments > EXCH_MAX_INSTRUMENTS ||
	    o.accounts < 2 || o.accounts > (1u << 20)) {
		usage();
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!strcmp(mode, "demo"))
		return xdemo_run(&o);
	if (!strcmp(mode, "serve"))
		return xdemo_serve(&o);
	usage();
	return 2;
}
