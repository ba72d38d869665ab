/*
 * tools/prom.c - the Prometheus text format of an engine's counters
 * (tools/prom.h).
 *
 * Names carry their unit (_seconds, _bytes) and counters end in _total;
 * per-projection series carry a projection label. The two latency
 * histograms are the engine's log-linear buckets (include/cqrs_counters.h:
 * 16 per power of two) folded to one bucket per power of two: bucket
 * le = (2^k - 1) ns counts exactly the values below 2^k ns, because every
 * power of two is an edge of the engine's buckets (so `le` is exact, not
 * rounded). The engine keeps counts only, no sum: _sum is estimated from
 * each bucket's midpoint (within 1/32 of the true sum), and says so in its
 * HELP text.
 *
 * Cost: one pass over 2 x 1024 histogram words and the projection table
 * per scrape, in the scraping process; nothing in the engine.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tools/prom.h"

/* le edges 2^k ns for k in [HIST_K_MIN, HIST_K_MAX]: 256 ns to 34 s. */
#define HIST_K_MIN 8
#define HIST_K_MAX 35

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void label_value(FILE *f, const char *s, size_t max)
{
	for (size_t i = 0; i < max && s[i]; i++) {
		char c = s[i];
		if (c == '\\' || c == '"')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else
			fputc(c, f);
	}
}

static void metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	head(f, name, type, help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

/* Bucket b's values as a double range midpoint (ns); exact for b < 16. */
static double bucket_mid(unsigned b)
{
	double lo = (double)cqrs_counters_bucket_low(b), width;

	if (b < 16)
		return lo;
	width = ldexp(1.0, (int)(b / 16 + 3) - 4); /* 2^(m-4): the bucket's width */
	return lo + (width - 1) / 2;
}

static void histogram(FILE *f, const char *name, const char *help, const uint64_t *src)
{
	uint64_t h[CQRS_COUNTERS_HIST], cum = 0, total = 0;
	unsigned b = 0;
	double sum = 0;

	/* One copy so that every line comes from the same counts. */
	memcpy(h, src, sizeof h);
	for (unsigned i = 0; i < CQRS_COUNTERS_HIST; i++) {
		total += h[i];
		if (h[i])
			sum += (double)h[i] * bucket_mid(i);
	}
	fprintf(f, "# HELP %s %s (_sum estimated from bucket midpoints)\n# TYPE %s histogram\n",
		name, help, name);
	for (unsigned k = HIST_K_MIN; k <= HIST_K_MAX; k++) {
		/* the first bucket at or above 2^k: 2^k is bucket 16 * (k - 3)'s low */
		unsigned edge = 16 * (k - 3);
		for (; b < edge; b++)
			cum += h[b];
		fprintf(f, "%s_bucket{le=\"%.9g\"} %llu\n", name, (double)((UINT64_C(1) << k) - 1) / 1e9,
			(unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)total);
	fprintf(f, "%s_sum %.9g\n", name, sum / 1e9);
	fprintf(f, "%s_count %llu\n", name, (unsigned long long)total);
}

static const char *durability_name(uint32_t d)
{
	return d == 0 ? "none" : d == 1 ? "batch" : d == 2 ? "interval" : "unknown";
}

/* One gauge or counter per projection, labelled by its name. */
#define PROJ_SERIES(mname, type, help, expr)                                            \
	do {                                                                            \
		head(f, mname, type, help);                                             \
		for (uint32_t i = 0; i < np; i++) {                                     \
			const cqrs_counters_proj *p = &c->proj[i];                      \
			fprintf(f, "%s{projection=\"", mname);                          \
			label_value(f, p->name, sizeof p->name);                        \
			fprintf(f, "\"} %llu\n", (unsigned long long)(expr));           \
		}                                                                       \
	} while (0)

void tool_prom_write(FILE *f, const char *engine, const cqrs_counters *c, const cqrs_ctl_info *ci)
{
	int up = c && ci && ci->owner_alive && ci->state == CQRS_ENGINE_RUNNING && !ci->retired;
	uint32_t np;
	uint64_t target;

	metric(f, "cqrs_engine_up", "gauge",
	       "1 while the engine runs (state running, process alive), else 0", (uint64_t)up);
	if (!c || !ci)
		return;
	head(f, "cqrs_engine_info", "gauge", "The engine's identity and modes (value 1)");
	fputs("cqrs_engine_info{engine=\"", f);
	label_value(f, engine, CQRS_NAME_MAX);
	fprintf(f, "\",state=\"%s\",durability=\"%s\",threading=\"%s\"} 1\n",
		ci->state == CQRS_ENGINE_STOPPED ? "stopped"
		: !ci->owner_alive ? "dead"
		: ci->state == CQRS_ENGINE_STARTING ? "starting"
		: ci->state == CQRS_ENGINE_RUNNING ? "running" : "unknown",
		durability_name(c->durability), c->threading == 1 ? "shared" : "dedicated");
	head(f, "cqrs_engine_start_time_seconds", "gauge", "Wall clock time the engine started, in seconds since the epoch");
	fprintf(f, "cqrs_engine_start_time_seconds %.6f\n", (double)c->start_ns / 1e9);

	metric(f, "cqrs_commands_total", "counter", "Commands decided, every outcome", c->commands);
	head(f, "cqrs_command_outcomes_total", "counter", "Commands decided, by outcome");
	fprintf(f, "cqrs_command_outcomes_total{outcome=\"accepted\"} %llu\n", (unsigned long long)c->accepted);
	fprintf(f, "cqrs_command_outcomes_total{outcome=\"rejected\"} %llu\n", (unsigned long long)c->rejected);
	fprintf(f, "cqrs_command_outcomes_total{outcome=\"conflict\"} %llu\n", (unsigned long long)c->conflicts);
	fprintf(f, "cqrs_command_outcomes_total{outcome=\"duplicate\"} %llu\n", (unsigned long long)c->duplicates);
	fprintf(f, "cqrs_command_outcomes_total{outcome=\"journal_refused\"} %llu\n",
		(unsigned long long)c->journal_refused);
	metric(f, "cqrs_events_total", "counter", "Events journaled", c->events);
	metric(f, "cqrs_journal_batches_total", "counter", "Journal batches made durable", c->batches);
	metric(f, "cqrs_journal_written_bytes_total", "counter", "Bytes written to the journal", c->journal_bytes);
	metric(f, "cqrs_journal_fdatasyncs_total", "counter", "fdatasync calls on the journal", c->fdatasyncs);
	metric(f, "cqrs_journal_failed", "gauge",
	       "1 when a journal error stopped the engine (cqrs stat names it), else 0", c->poison != 0);
	metric(f, "cqrs_durable_seq", "gauge", "Last journal seq known durable", c->durable_seq);
	metric(f, "cqrs_published_seq", "gauge", "Last seq published to the projections", c->published_seq);
	metric(f, "cqrs_ring_used_bytes", "gauge", "Broadcast ring bytes not yet consumed by every projector", c->ring_used);
	metric(f, "cqrs_ring_size_bytes", "gauge", "Broadcast ring size (0: projections on the command thread)", c->ring_size);
	metric(f, "cqrs_replayed_events", "gauge", "Events replayed from the journal at the last start", c->replayed);
	head(f, "cqrs_replay_duration_seconds", "gauge", "Time the last start spent replaying the journal");
	fprintf(f, "cqrs_replay_duration_seconds %.9g\n", (double)c->replay_ns / 1e9);
	metric(f, "cqrs_journal_disk_bytes", "gauge", "Journal segment bytes on disk (retention's last run)",
	       c->ret_journal_bytes);
	metric(f, "cqrs_journal_pinned_bytes", "gauge",
	       "Sealed journal segment bytes a snapshot, checkpoint or the minimum retention keeps",
	       c->ret_pinned_bytes);
	metric(f, "cqrs_journal_first_seq", "gauge", "The journal's first seq (above 1 once retention collected)",
	       c->ret_first_seq);
	metric(f, "cqrs_journal_collected_segments_total", "counter", "Journal segments retention collected",
	       c->ret_collected_segments);
	metric(f, "cqrs_journal_collected_bytes_total", "counter", "Journal bytes retention collected",
	       c->ret_collected_bytes);
	histogram(f, "cqrs_command_ack_latency_seconds", "Command submitted to its answer", c->ack_latency);
	histogram(f, "cqrs_journal_batch_latency_seconds", "Journal batch flushed to durable", c->batch_latency);

	metric(f, "cqrs_gateway_clients", "gauge", "Gateway clients connected now", c->gw_clients);
	metric(f, "cqrs_gateway_connections_total", "counter", "Gateway connections accepted", c->gw_connects);
	metric(f, "cqrs_gateway_disconnections_total", "counter", "Gateway connections ended and freed", c->gw_disconnects);
	head(f, "cqrs_gateway_refused_total", "counter", "Gateway connections refused, by reason");
	fprintf(f, "cqrs_gateway_refused_total{reason=\"credentials\"} %llu\n", (unsigned long long)c->gw_refused);
	fprintf(f, "cqrs_gateway_refused_total{reason=\"limit\"} %llu\n", (unsigned long long)c->gw_limited);
	metric(f, "cqrs_gateway_kicked_total", "counter", "Clients dropped for breaking the socket protocol", c->gw_kicked);
	metric(f, "cqrs_gateway_requests_total", "counter", "Requests taken from gateway clients' rings", c->gw_requests);
	metric(f, "cqrs_gateway_malformed_total", "counter", "Gateway requests answered malformed", c->gw_malformed);
	metric(f, "cqrs_gateway_dropped_total", "counter", "Clients dropped for breaking their own rings", c->gw_drops);
	metric(f, "cqrs_gateway_reply_overflows_total", "counter", "Answers parked because a reply ring was full", c->gw_overflows);

	np = c->nproj < CQRS_COUNTERS_MAX_PROJ ? c->nproj : CQRS_COUNTERS_MAX_PROJ;
	target = c->durable_seq > c->published_seq ? c->durable_seq : c->published_seq;
	PROJ_SERIES("cqrs_projection_applied_seq", "gauge", "Last seq the projection applied", p->applied_seq);
	PROJ_SERIES("cqrs_projection_lag_seqs", "gauge",
		    "Seqs durable or published that the projection has not applied yet",
		    target > p->applied_seq ? target - p->applied_seq : 0);
	PROJ_SERIES("cqrs_projection_events_total", "counter", "Events the projection applied", p->events);
	PROJ_SERIES("cqrs_projection_batches_total", "counter", "Batches the projection applied", p->batches);
	PROJ_SERIES("cqrs_projection_dead_letters_total", "counter", "Events the projection refused", p->dead_letters);
	PROJ_SERIES("cqrs_projection_rebuilds_total", "counter", "Rebuilds since the engine started", p->rebuilds);
	PROJ_SERIES("cqrs_projection_halted", "gauge", "1 when a dead letter halted the projection", p->halted != 0);
	PROJ_SERIES("cqrs_projection_stalled", "gauge",
		    "1 while a view of the projection cannot grow (no room; retried with backoff)",
		    p->stall_code != 0);
	PROJ_SERIES("cqrs_projection_thread", "gauge", "Projector thread the projection runs on", p->thread);
}
