/*
 * tools/cmd_stat.c - `cqrs stat ENGINE [--watch]`: an engine's counters,
 * read from the counters region of its control segment (layout:
 * include/cqrs_counters.h); --watch redraws them in place every second,
 * like top, with rates since the previous screen.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/commands.h"
#include "cqrs.h" /* enum cqrs_threading_mode */
#include "cqrs_counters.h"
#include "shm/control.h"

static uint64_t quantile(const uint64_t *h, double q)
{
	uint64_t total = 0, seen = 0, rank;

	for (unsigned i = 0; i < CQRS_COUNTERS_HIST; i++)
		total += h[i];
	if (!total)
		return 0;
	rank = (uint64_t)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	for (unsigned i = 0; i < CQRS_COUNTERS_HIST; i++) {
		seen += h[i];
		if (seen > rank)
			return cqrs_counters_bucket_low(i);
	}
	return 0;
}

static const char *mode_name(uint32_t d)
{
	return d == 0 ? "none" : d == 1 ? "batch" : d == 2 ? "interval" : "?";
}

static void show(const char *engine, const cqrs_counters *c, const cqrs_counters *prev, double dt)
{
	/* A private copy: the engine keeps writing while we print. */
	static cqrs_counters s;
	memcpy(&s, c, sizeof s);
#define RATE(f) (prev && dt > 0 ? (double)(s.f - prev->f) / dt : 0.0)
	printf("engine %s  durability %s  threading %s  data %s\n", engine, mode_name(s.durability),
	       s.threading == CQRS_THREADING_SHARED ? "shared" : "dedicated", s.data_dir);
	printf("%-22s %14s %14s\n", "counter", "total", "per second");
	printf("%-22s %14llu %14.0f\n", "commands", (unsigned long long)s.commands, RATE(commands));
	printf("%-22s %14llu %14.0f\n", "  accepted", (unsigned long long)s.accepted, RATE(accepted));
	printf("%-22s %14llu %14.0f\n", "  rejected", (unsigned long long)s.rejected, RATE(rejected));
	printf("%-22s %14llu %14.0f\n", "  conflicts", (unsigned long long)s.conflicts, RATE(conflicts));
	printf("%-22s %14llu %14.0f\n", "  duplicates", (unsigned long long)s.duplicates, RATE(duplicates));
	printf("%-22s %14llu %14.0f\n", "events", (unsigned long long)s.events, RATE(events));
	printf("%-22s %14llu %14.0f\n", "batches", (unsigned long long)s.batches, RATE(batches));
	printf("%-22s %14llu %14.0f\n", "journal bytes", (unsigned long long)s.journal_bytes, RATE(journal_bytes));
	printf("%-22s %14llu %14.0f\n", "fdatasyncs", (unsigned long long)s.fdatasyncs, RATE(fdatasyncs));
	printf("%-22s %14llu\n", "durable seq", (unsigned long long)s.durable_seq);
	printf("%-22s %14llu\n", "published seq", (unsigned long long)s.published_seq);
	printf("%-22s %14llu now, %llu accepted, %llu refused, %llu over limits, %llu dropped\n",
	       "gateway clients", (unsigned long long)s.gw_clients, (unsigned long long)s.gw_connects,
	       (unsigned long long)s.gw_refused, (unsigned long long)s.gw_limited,
	       (unsigned long long)s.gw_drops);
	printf("%-22s %14llu %14.0f  (%llu malformed)\n", "gateway requests",
	       (unsigned long long)s.gw_requests, RATE(gw_requests), (unsigned long long)s.gw_malformed);
	if (s.ring_size)
		printf("%-22s %14llu of %llu\n", "ring bytes in use", (unsigned long long)s.ring_used,
		       (unsigned long long)s.ring_size);
	else
		printf("%-22s %14s\n", "ring bytes in use", "none (projections on the command thread)");
	printf("%-22s %14llu events in %.1f ms\n", "replayed at start", (unsigned long long)s.replayed,
	       (double)s.replay_ns / 1e6);
	printf("%-22s p50 %.1f us  p99 %.1f us  p99.9 %.1f us\n", "command-to-ack",
	       quantile(s.ack_latency, 0.5) / 1e3, quantile(s.ack_latency, 0.99) / 1e3,
	       quantile(s.ack_latency, 0.999) / 1e3);
	if (s.poison)
		printf("%-22s %s\n", "JOURNAL FAILED", cqrs_strerror((int)s.poison));
	printf("\n%-24s %6s %14s %10s %12s %8s %8s %s\n", "projection", "thread", "applied_seq", "lag",
	       "events", "rebuilds", "dead", "state");
	for (uint32_t i = 0; i < s.nproj && i < CQRS_COUNTERS_MAX_PROJ; i++) {
		const cqrs_counters_proj *p = &s.proj[i];
		printf("%-24.31s %6u %14llu %10llu %12llu %8llu %8llu %s\n", p->name, p->thread,
		       (unsigned long long)p->applied_seq,
		       (unsigned long long)(s.durable_seq > p->applied_seq ? s.durable_seq - p->applied_seq : 0),
		       (unsigned long long)p->events, (unsigned long long)p->rebuilds,
		       (unsigned long long)p->dead_letters, p->halted ? "HALTED" : "running");
	}
#undef RATE
}

int cqrs_cmd_stat(int argc, char **argv)
{
	static cqrs_counters prev;
	const cqrs_counters *c;
	cqrs_ctl *ctl;
	uint64_t size;
	int watch = argc > 2 && !strcmp(argv[2], "--watch"), rc, have_prev = 0;

	if (argc < 2 || (argc > 2 && !watch)) {
		fprintf(stderr, "usage: cqrs stat ENGINE [--watch]\n");
		return 2;
	}
	rc = cqrs__ctl_open(argv[1], &ctl);
	if (rc)
		return tool_fail(argv[1], rc);
	c = cqrs__ctl_region(ctl, CQRS_CTL_COUNTERS, &size);
	/* acquire: pairs with the engine's release store of the magic, after
	 * it filled the identity fields. */
	if (!c || size < sizeof *c ||
	    atomic_load_explicit((const _Atomic uint64_t *)&c->magic, memory_order_acquire) != CQRS_COUNTERS_MAGIC ||
	    c->version != CQRS_COUNTERS_VERSION || c->size != sizeof *c) {
		cqrs__ctl_close(ctl);
		fprintf(stderr, "cqrs: %s: no counters (engine starting, or another version)\n", argv[1]);
		return 1;
	}
	for (;;) {
		if (watch)
			printf("\033[H\033[2J");
		show(argv[1], c, have_prev ? &prev : NULL, 1.0);
		fflush(stdout);
		if (!watch)
			break;
		memcpy(&prev, c, sizeof prev);
		have_prev = 1;
		sleep(1);
	}
	cqrs__ctl_close(ctl);
	return 0;
}
