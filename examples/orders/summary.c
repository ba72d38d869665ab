/*
 * examples/orders/summary.c - what the demo prints: the live progress line
 * (every 250 ms on stderr) and the summary table at the end (stdout).
 */
#include <inttypes.h>
#include <stdio.h>

#include "examples/orders/demo.h"

uint64_t demo_min_applied(const cqrs_counters *c)
{
	uint64_t m = UINT64_MAX;
	for (uint32_t i = 0; i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++)
		if (CTR(c->proj[i].applied_seq) < m)
			m = CTR(c->proj[i].applied_seq);
	return m == UINT64_MAX ? 0 : m;
}

void demo_print_progress(const load *l, double secs, uint64_t events, uint64_t lag, int tty)
{
	uint64_t submitted = atomic_load(&l->submitted);

	fprintf(stderr, "%s[%5.1fs] commands %9" PRIu64 " (%7.0f/s)  events %9" PRIu64
		"  probe p50 %6.1f us  lag %6" PRIu64 " ev%s",
		tty ? "\r" : "", secs, submitted, secs > 0 ? (double)submitted / secs : 0.0, events,
		(double)cqrs__hist_quantile(&l->visible, 0.5) / 1e3, lag, tty ? "" : "\n");
}

void demo_print_summary(const load *l, const cqrs_counters *c, const reader_result *rr, double secs,
			uint64_t bytes0, uint64_t syncs0, uint64_t max_lag)
{
	uint64_t submitted = atomic_load(&l->submitted);
	uint64_t mb = CTR(c->journal_bytes) - bytes0;

	printf("\n%-34s %s\n", "metric", "value");
	printf("%-34s %.0f\n", "commands/s (load thread)", (double)submitted / secs);
	printf("%-34s %" PRIu64 " accepted, %" PRIu64 " rejected\n", "commands",
	       atomic_load(&l->accepted), atomic_load(&l->rejected));
	printf("%-34s %.1f / %.1f / %.1f us (%" PRIu64 " probes)\n",
	       "command-to-visible p50/p99/p99.9", (double)cqrs__hist_quantile(&l->visible, 0.5) / 1e3,
	       (double)cqrs__hist_quantile(&l->visible, 0.99) / 1e3,
	       (double)cqrs__hist_quantile(&l->visible, 0.999) / 1e3, atomic_load(&l->probes));
	printf("%-34s %.0f (%" PRIu64 " rows seen, %" PRIu64 " errors)\n",
	       "reader queries/s (other process)", (double)rr->queries / secs, rr->rows, rr->errors);
	printf("%-34s %" PRIu64 " ok, %" PRIu64 " failed\n", "read-your-writes checks", rr->ryw_ok,
	       rr->ryw_fail);
	printf("%-34s %.1f\n", "journal MB/s", (double)mb / secs / 1e6);
	printf("%-34s %" PRIu64 "\n", "fdatasyncs", CTR(c->fdatasyncs) - syncs0);
	printf("%-34s %" PRIu64 " events max (sampled every 250 ms)\n", "projection lag", max_lag);
}
