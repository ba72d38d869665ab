/*
 * examples/orders/main.c - cqrs-orders: the reference demo.
 *
 *   cqrs-orders demo  [--dir D] [--fresh] [--duration S] [--durability M]
 *                     [--customers N] [--name ENGINE] [--shared] [--quiet]
 *                     [--rate N] [--json]
 *   cqrs-orders serve [--dir D] [--fresh] [--durability M] [--name ENGINE] [--shared]
 *
 * --shared: CQRS_THREADING_SHARED (projections applied on the command
 * thread; for hosts with fewer cores than threads). --log-format json (both
 * modes): the engine's log lines as JSON lines, {"time","level","message"}.
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
 * in two phases of half the duration each: full load (throughput), then
 * paced at --rate N commands/s (default a tenth of full load's: latency at
 * a load the engine sustains); shows one progress line a second and ends
 * with a summary table (--json: one JSON document) that labels each
 * figure with its phase and says where the views stay.
 *
 * This file parses the arguments and runs the mode; demo.h lists the other
 * files, one per job (setup, load, reader, summary, demo, serve).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/orders/demo.h"

volatile sig_atomic_t demo_got_signal;

static void on_signal(int sig)
{
	demo_got_signal = sig;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cqrs-orders demo  [--dir D] [--fresh] [--duration S] [--durability none|batch|interval]\n"
		"                         [--customers N] [--name ENGINE] [--shared] [--quiet]\n"
		"                         [--rate N] [--json]\n"
		"       cqrs-orders serve [--dir D] [--fresh] [--durability M] [--name ENGINE] [--shared]\n"
		"       cqrs-orders snapshot verify DIR [--name ENGINE]: the newest snapshot equals\n"
		"                         the model a replay of the journal builds\n"
		"--shared: projections run on the command thread (CQRS_THREADING_SHARED)\n"
		"--log-format text|json: the engine's log lines on stderr as text or JSON lines\n"
		"--rate N: commands/s of the paced half (default: a tenth of full load's)\n"
		"--json: the summary as one JSON document on stdout\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, 0, 'd' },      { "fresh", no_argument, 0, 'f' },
		{ "duration", required_argument, 0, 't' }, { "durability", required_argument, 0, 'm' },
		{ "customers", required_argument, 0, 'c' }, { "name", required_argument, 0, 'n' },
		{ "quiet", no_argument, 0, 'q' },          { "help", no_argument, 0, 'h' },
		{ "shared", no_argument, 0, 's' },        { "log-format", required_argument, 0, 'l' },
		{ "rate", required_argument, 0, 'r' },    { "json", no_argument, 0, 'j' },
		{ 0, 0, 0, 0 }
	};
	options o = { .dir = "./data", .name = "orders", .duration = 10, .customers = 10000,
		      .durability = CQRS_DURABILITY_BATCH };
	const char *mode;
	int ch;

	if (argc >= 2 && !strcmp(argv[1], "reader") && argc == 7)
		return demo_reader_main(argv[2], atoi(argv[3]), atoi(argv[4]), strtoull(argv[5], NULL, 10),
				   strtoull(argv[6], NULL, 10));
	if (argc < 2 || argv[1][0] == '-') {
		usage();
		return 2;
	}
	mode = argv[1];
	optind = 2;
	if (!strcmp(mode, "snapshot")) {
		if (argc < 4 || strcmp(argv[2], "verify")) {
			usage();
			return 2;
		}
		o.dir = argv[3];
		optind = 4;
	}
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': o.dir = optarg; break;
		case 'f': o.fresh = 1; break;
		case 't': o.duration = atof(optarg); break;
		case 'm':
			o.durability = demo_parse_durability(optarg);
			if (o.durability < 0) {
				usage();
				return 2;
			}
			break;
		case 'c': o.customers = strtoull(optarg, NULL, 10); break;
		case 'n': o.name = optarg; break;
		case 'q': o.quiet = 1; break;
		case 's': o.threading = CQRS_THREADING_SHARED; break;
		case 'l':
			if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
				usage();
				return 2;
			}
			o.log_json = !strcmp(optarg, "json");
			break;
		case 'r': o.rate = strtoull(optarg, NULL, 10); break;
		case 'j': o.json = 1; break;
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
		return demo_run(&o);
	if (!strcmp(mode, "serve"))
		return demo_serve(&o);
	if (!strcmp(mode, "snapshot"))
		return demo_snapshot_verify(&o);
	usage();
	return 2;
}
