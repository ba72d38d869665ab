/*
 * tools/cmd_stat.c - `cqrs stat ENGINE [--json] [--watch [--interval S]
 * [--count N]]`: an engine's state and counters, read from the counters
 * region of its control segment (layout: include/cqrs_counters.h).
 *
 * States: the engine's is the control segment's state word (starting,
 * running, stopped), "dead" when its process is gone without stopping.
 * A projection is "halted" (a dead letter stopped it), "stalled" (a view
 * could not grow: no room in /dev/shm or memory; the reason and the seq it
 * waits at are shown, and the engine retries by itself), "catching up" while
 * its applied seq is below the engine's last durable or published seq
 * (views rebuilt at start replaying the journal, a rebuild, or a backlog),
 * with progress applied/target and, when watching, its rate and an ETA;
 * "running" when caught up.
 *
 * --watch repeats every --interval seconds (default 1) with rates since
 * the previous sample: on a terminal it redraws in place like top; when
 * stdout is not a terminal it prints plain blocks, one after another,
 * separated by a blank line (no control codes). --json prints one JSON
 * document (with --watch: one per sample, one per line).
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

static const tool_cmd_help stat_help = {
	"stat",
	"usage: cqrs stat ENGINE [--json] [--watch [--interval SECONDS] [--count N]]\n"
	"\n"
	"An engine's state and counters: commands and their outcomes, events,\n"
	"journal batches and bytes, durable and published seq, ring use,\n"
	"command-to-ack latency, and per projection its applied seq, lag, events,\n"
	"rebuilds since the engine started, dead letters and state: running,\n"
	"catching up (applied/target seq, with rate and ETA when watching) or\n"
	"halted; then the views' checkpoints: how they are copied (uffd: the\n"
	"projector waits only for pages it writes before they are copied;\n"
	"stop-copy: copied at a batch boundary), how many were taken, the longest\n"
	"projector wait, and per projection the newest one's seq and age. The\n"
	"engine's state is starting, running, stopped, or dead (its\n"
	"process is gone; the counters are as it left them).\n"
	"  --json              one JSON document\n"
	"  --watch             repeat, with rates per second since the last sample;\n"
	"                      redraws in place on a terminal, plain blocks otherwise\n"
	"  --interval SECONDS  time between samples, e.g. 2 or 0.5 (0.1 to 3600;\n"
	"                      default 1); needs --watch\n"
	"  --count N           stop after N samples; needs --watch\n"
	"--watch ends when the engine stops or dies (after showing that state).\n"
};

typedef struct sample {
	cqrs_counters c;
	cqrs_ctl_info ci;
	uint64_t mono_ns;
} sample;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

static const char *repl_state_name(uint64_t st)
{
	return st == CQRS_REPL_CONNECTING ? "connecting" : st == CQRS_REPL_SYNCING ? "syncing"
	       : st == CQRS_REPL_STREAMING ? "streaming" : st == CQRS_REPL_FAILED ? "FAILED" : "off";
}

static const char *engine_state(const cqrs_ctl_info *ci)
{
	if (ci->state == CQRS_ENGINE_STOPPED)
		return "stopped";
	if (!ci->owner_alive)
		return "dead";
	return ci->state == CQRS_ENGINE_STARTING ? "starting"
	       : ci->state == CQRS_ENGINE_RUNNING ? "running" : "?";
}

/* The seq a projection can reach now: everything durable or published. */
static uint64_t target_seq(const cqrs_counters *c)
{
	return c->durable_seq > c->published_seq ? c->durable_seq : c->published_seq;
}

static const char *proj_state(const sample *s, const cqrs_counters_proj *p)
{
	if (p->halted)
		return "halted";
	if (p->stall_code)
		return "stalled";
	if (s->ci.state == CQRS_ENGINE_STOPPED || !s->ci.owner_alive)
		return engine_state(&s->ci);
	return p->applied_seq < target_seq(&s->c) ? "catching up" : engine_state(&s->ci);
}

/* Per-second rate of a counter between prev and s (-1: no previous sample). */
static double rate(const sample *s, const sample *prev, uint64_t now, uint64_t before)
{
	double dt;

	if (!prev || s->mono_ns <= prev->mono_ns)
		return -1;
	dt = (double)(s->mono_ns - prev->mono_ns) / 1e9;
	return now >= before ? (double)(now - before) / dt : 0;
}

#define COUNTERS(X)                                                                          \
	X(commands) X(accepted) X(rejected) X(conflicts) X(duplicates) X(journal_refused)   \
	X(events) X(batches) \
	X(journal_bytes) X(fdatasyncs)

static const char *ckpt_mode_name(uint32_t mode)
{
	return mode == 1 ? "uffd" : mode == 2 ? "stop-copy" : "off";
}

/* Seconds since a checkpoint's wall clock time (-1: none). */
static double ckpt_age_s(int64_t t)
{
	struct timespec ts;

	if (!t)
		return -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((double)ts.tv_sec * 1e9 + (double)ts.tv_nsec - (double)t) / 1e9;
}

/* The views' checkpoints: how they are copied and, per projection, the
 * seq and age of the newest one. */
static void show_checkpoints(const cqrs_counters *c)
{
	printf("\n%-22s %s", "checkpoints", ckpt_mode_name(c->ckpt_mode));
	if (c->ckpt_mode == 1)
		printf(" (userfaultfd write-protect; %llu stores waited for a copy)",
		       (unsigned long long)c->ckpt_faults);
	else if (c->ckpt_mode == 2)
		printf(" (copied at the batch boundary)");
	printf(", %llu taken, %llu failed, longest projector wait %.1f us, %llu restored at start\n",
	       (unsigned long long)c->ckpt_taken, (unsigned long long)c->ckpt_failed,
	       (double)c->ckpt_stall_max_ns / 1e3, (unsigned long long)c->ckpt_restored);
	for (uint32_t i = 0; c->ckpt_mode && i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++) {
		double age = ckpt_age_s(c->ckpt_time_ns[i]);
		if (!c->ckpt_seq[i])
			printf("  %-20.31s none yet\n", c->proj[i].name);
		else if (age < 0)
			printf("  %-20.31s seq %llu\n", c->proj[i].name, (unsigned long long)c->ckpt_seq[i]);
		else
			printf("  %-20.31s seq %llu (%.0f s ago)\n", c->proj[i].name,
			       (unsigned long long)c->ckpt_seq[i], age);
	}
}

static void show_text(const char *engine, const sample *s, const sample *prev)
{
	const cqrs_counters *c = &s->c;
	int catching = 0;

	for (uint32_t i = 0; i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++)
		catching |= !strcmp(proj_state(s, &c->proj[i]), "catching up");
	printf("engine %s  state %s%s  pid %u  durability %s  threading %s  data %s\n", engine,
	       engine_state(&s->ci), catching ? ", catching up" : "", s->ci.owner_pid,
	       mode_name(c->durability), c->threading == CQRS_THREADING_SHARED ? "shared" : "dedicated",
	       c->data_dir);
	printf("%-22s %14s %14s\n", "counter", "total", "per second");
#define ROW(label, f)                                                                    \
	do {                                                                             \
		double r_ = rate(s, prev, c->f, prev ? prev->c.f : 0);                    \
		printf("%-22s %14llu ", label, (unsigned long long)c->f);                 \
		if (r_ < 0)                                                              \
			printf("%14s\n", "-");                                           \
		else                                                                     \
			printf("%14.0f\n", r_);                                          \
	} while (0)
	ROW("commands", commands);
	ROW("  accepted", accepted);
	ROW("  rejected", rejected);
	ROW("  conflicts", conflicts);
	ROW("  duplicates", duplicates);
	ROW("  journal refused", journal_refused);
	ROW("events", events);
	ROW("batches", batches);
	ROW("journal bytes", journal_bytes);
	ROW("fdatasyncs", fdatasyncs);
#undef ROW
	printf("%-22s %14llu\n", "durable seq", (unsigned long long)c->durable_seq);
	printf("%-22s %14llu\n", "published seq", (unsigned long long)c->published_seq);
	printf("%-22s %14llu now, %llu accepted, %llu refused, %llu over limits, %llu dropped\n",
	       "gateway clients", (unsigned long long)c->gw_clients,
	       (unsigned long long)c->gw_connects, (unsigned long long)c->gw_refused,
	       (unsigned long long)c->gw_limited,
	       (unsigned long long)(c->gw_drops + c->gw_kicked));
	printf("%-22s %14llu  (%llu malformed)\n", "gateway requests",
	       (unsigned long long)c->gw_requests, (unsigned long long)c->gw_malformed);
	if (c->ring_size)
		printf("%-22s %14llu of %llu\n", "ring bytes in use", (unsigned long long)c->ring_used,
		       (unsigned long long)c->ring_size);
	else
		printf("%-22s %14s\n", "ring bytes in use", "none (projections on the command thread)");
	if (!c->ret_runs) {
		printf("%-22s %14s\n", "journal retention", "no run yet (or retention_mode off)");
	} else {
		printf("%-22s %14llu bytes, %llu pinned, from seq %llu (restart needs %llu..)\n",
		       "journal on disk", (unsigned long long)c->ret_journal_bytes,
		       (unsigned long long)c->ret_pinned_bytes, (unsigned long long)c->ret_first_seq,
		       (unsigned long long)c->ret_need_seq);
		printf("%-22s %14llu segments, %llu bytes, %llu runs%s%s\n", "journal collected",
		       (unsigned long long)c->ret_collected_segments,
		       (unsigned long long)c->ret_collected_bytes, (unsigned long long)c->ret_runs,
		       c->ret_error ? ", last failed: " : "",
		       c->ret_error ? cqrs_strerror((int)c->ret_error) : "");
	}
	printf("%-22s %14llu events in %.1f ms\n", "replayed at start", (unsigned long long)c->replayed,
	       (double)c->replay_ns / 1e6);
	if (c->snap_seq || c->snap_taken || c->snap_failed) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		printf("%-22s %14llu  %.0f s ago, %llu bytes; %llu taken, %llu failed since start "
		       "(loaded at start: %llu); fork stall %llu us, max %llu us\n", "snapshot seq",
		       (unsigned long long)c->snap_seq,
		       ((double)now.tv_sec * 1e9 + (double)now.tv_nsec - (double)c->snap_wall_ns) / 1e9,
		       (unsigned long long)c->snap_bytes, (unsigned long long)c->snap_taken,
		       (unsigned long long)c->snap_failed, (unsigned long long)c->snap_loaded_seq,
		       (unsigned long long)c->snap_fork_us, (unsigned long long)c->snap_fork_max_us);
	} else {
		printf("%-22s %14s\n", "snapshot seq", "none");
	}
	printf("%-22s p50 %.1f us  p99 %.1f us  p99.9 %.1f us\n", "command-to-ack",
	       quantile(c->ack_latency, 0.5) / 1e3, quantile(c->ack_latency, 0.99) / 1e3,
	       quantile(c->ack_latency, 0.999) / 1e3);
	if (c->repl_state != CQRS_REPL_OFF) {
		printf("%-22s %14llu  %s, lag %llu events / %llu bytes, %llu messages, %llu errors, "
		       "%llu resyncs, %llu timeouts\n", "replicated seq",
		       (unsigned long long)c->replicated_seq, repl_state_name(c->repl_state),
		       (unsigned long long)(c->durable_seq > c->replicated_seq ?
					    c->durable_seq - c->replicated_seq : 0),
		       (unsigned long long)c->repl_lag_bytes, (unsigned long long)c->repl_messages,
		       (unsigned long long)c->repl_errors, (unsigned long long)c->repl_resyncs,
		       (unsigned long long)c->repl_timeouts);
		printf("%-22s p50 %.1f us  p99 %.1f us  p99.9 %.1f us\n", "publish-to-stream-ack",
		       quantile(c->repl_latency, 0.5) / 1e3, quantile(c->repl_latency, 0.99) / 1e3,
		       quantile(c->repl_latency, 0.999) / 1e3);
	}
	if (c->poison)
		printf("%-22s %s\n", "JOURNAL FAILED", cqrs_strerror((int)c->poison));
	printf("\n%-24s %6s %14s %10s %12s %10s %8s %8s  %s\n", "projection", "thread", "applied_seq",
	       "lag", "events", "events/s", "rebuilds", "dead", "state");
	for (uint32_t i = 0; i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++) {
		const cqrs_counters_proj *p = &c->proj[i];
		const char *st = proj_state(s, p);
		uint64_t target = target_seq(c), lag = target > p->applied_seq ? target - p->applied_seq : 0;
		double r = rate(s, prev, p->applied_seq, prev ? prev->c.proj[i].applied_seq : 0);
		char rs[32];

		if (r < 0)
			snprintf(rs, sizeof rs, "-");
		else
			snprintf(rs, sizeof rs, "%.0f", r);
		printf("%-24.31s %6u %14llu %10llu %12llu %10s %8llu %8llu  %s", p->name, p->thread,
		       (unsigned long long)p->applied_seq, (unsigned long long)lag,
		       (unsigned long long)p->events, rs, (unsigned long long)p->rebuilds,
		       (unsigned long long)p->dead_letters, st);
		if (p->stall_code)
			printf(" (%s growing a view) at seq %llu, %u failed retries, retrying with backoff",
			       cqrs_strerror(p->stall_code), (unsigned long long)p->stalled_at,
			       p->stall_retries);
		if (!strcmp(st, "catching up")) {
			printf(" %llu/%llu (%.1f%%)", (unsigned long long)p->applied_seq,
			       (unsigned long long)target, target ? 100.0 * (double)p->applied_seq / (double)target : 0);
			if (r > 0)
				printf(", ETA %.0f s", (double)lag / r);
		}
		putchar('\n');
	}
	show_checkpoints(c);
}

static void show_json(const char *engine, const sample *s, const sample *prev)
{
	const cqrs_counters *c = &s->c;
	int catching = 0, first = 1;

	for (uint32_t i = 0; i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++)
		catching |= !strcmp(proj_state(s, &c->proj[i]), "catching up");
	printf("{\"engine\":");
	tool_json_str(stdout, engine);
	printf(",\"state\":\"%s\",\"catching_up\":%s,\"pid\":%u,\"alive\":%s,\"durability\":\"%s\","
	       "\"threading\":\"%s\",\"data_dir\":",
	       engine_state(&s->ci), catching ? "true" : "false", s->ci.owner_pid,
	       s->ci.owner_alive ? "true" : "false", mode_name(c->durability),
	       c->threading == CQRS_THREADING_SHARED ? "shared" : "dedicated");
	tool_json_str(stdout, c->data_dir);
	printf(",\"start_unix_ns\":%lld,\"counters\":{", (long long)c->start_ns);
#define FIELD(f)                                                          \
	printf("%s\"" #f "\":%llu", first ? "" : ",", (unsigned long long)c->f); \
	first = 0;
	COUNTERS(FIELD)
	FIELD(durable_seq)
	FIELD(published_seq)
	FIELD(ring_used)
	FIELD(ring_size)
	FIELD(replayed)
	FIELD(replay_ns)
	FIELD(gw_connects)
	FIELD(gw_disconnects)
	FIELD(gw_refused)
	FIELD(gw_limited)
	FIELD(gw_clients)
	FIELD(gw_kicked)
	FIELD(gw_requests)
	FIELD(gw_malformed)
	FIELD(gw_drops)
	FIELD(gw_overflows)
	FIELD(snap_seq)
	FIELD(snap_wall_ns)
	FIELD(snap_bytes)
	FIELD(snap_taken)
	FIELD(snap_failed)
	FIELD(snap_fork_us)
	FIELD(snap_fork_max_us)
	FIELD(snap_loaded_seq)
	FIELD(snap_load_ns)
	FIELD(repl_state)
	FIELD(replicated_seq)
	FIELD(repl_messages)
	FIELD(repl_bytes)
	FIELD(repl_errors)
	FIELD(repl_resyncs)
	FIELD(repl_stream_seq)
	FIELD(repl_lag_bytes)
	FIELD(repl_timeouts)
	FIELD(ret_journal_bytes)
	FIELD(ret_pinned_bytes)
	FIELD(ret_first_seq)
	FIELD(ret_need_seq)
	FIELD(ret_collected_segments)
	FIELD(ret_collected_bytes)
	FIELD(ret_runs)
#undef FIELD
	printf("},\"rates_per_s\":");
	if (prev && s->mono_ns > prev->mono_ns) {
		first = 1;
		printf("{");
#define RATE(f)                                                                   \
	printf("%s\"" #f "\":%.1f", first ? "" : ",", rate(s, prev, c->f, prev->c.f)); \
	first = 0;
		COUNTERS(RATE)
#undef RATE
		printf("}");
	} else {
		printf("null");
	}
	printf(",\"ack_latency_ns\":{\"p50\":%llu,\"p99\":%llu,\"p999\":%llu}",
	       (unsigned long long)quantile(c->ack_latency, 0.5),
	       (unsigned long long)quantile(c->ack_latency, 0.99),
	       (unsigned long long)quantile(c->ack_latency, 0.999));
	printf(",\"batch_latency_ns\":{\"p50\":%llu,\"p99\":%llu,\"p999\":%llu}",
	       (unsigned long long)quantile(c->batch_latency, 0.5),
	       (unsigned long long)quantile(c->batch_latency, 0.99),
	       (unsigned long long)quantile(c->batch_latency, 0.999));
	printf(",\"repl_latency_ns\":{\"p50\":%llu,\"p99\":%llu,\"p999\":%llu}",
	       (unsigned long long)quantile(c->repl_latency, 0.5),
	       (unsigned long long)quantile(c->repl_latency, 0.99),
	       (unsigned long long)quantile(c->repl_latency, 0.999));
	printf(",\"journal_error\":");
	if (c->poison)
		tool_json_str(stdout, cqrs_strerror((int)c->poison));
	else
		printf("null");
	printf(",\"projections\":[");
	for (uint32_t i = 0; i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++) {
		const cqrs_counters_proj *p = &c->proj[i];
		uint64_t target = target_seq(c), lag = target > p->applied_seq ? target - p->applied_seq : 0;
		double r = rate(s, prev, p->applied_seq, prev ? prev->c.proj[i].applied_seq : 0);
		char name[CQRS_NAME_MAX];

		snprintf(name, sizeof name, "%.*s", (int)sizeof p->name - 1, p->name);
		printf("%s{\"name\":", i ? "," : "");
		tool_json_str(stdout, name);
		printf(",\"thread\":%u,\"state\":\"%s\",\"applied_seq\":%llu,\"target_seq\":%llu,"
		       "\"lag\":%llu,\"events\":%llu,\"rebuilds\":%llu,\"dead_letters\":%llu,"
		       "\"halted\":%s,\"stall_code\":%d,\"stalled_at\":%llu,\"stall_retries\":%u",
		       p->thread, proj_state(s, p), (unsigned long long)p->applied_seq,
		       (unsigned long long)target, (unsigned long long)lag, (unsigned long long)p->events,
		       (unsigned long long)p->rebuilds, (unsigned long long)p->dead_letters,
		       p->halted ? "true" : "false", p->stall_code, (unsigned long long)p->stalled_at,
		       p->stall_retries);
		if (r >= 0)
			printf(",\"applied_per_s\":%.1f,\"eta_s\":", r);
		else
			printf(",\"applied_per_s\":null,\"eta_s\":");
		if (lag && r > 0)
			printf("%.1f", (double)lag / r);
		else
			printf("%s", lag ? "null" : "0");
		printf(",\"checkpoint_seq\":%llu,\"checkpoint_age_s\":", (unsigned long long)c->ckpt_seq[i]);
		if (ckpt_age_s(c->ckpt_time_ns[i]) >= 0)
			printf("%.1f}", ckpt_age_s(c->ckpt_time_ns[i]));
		else
			printf("null}");
	}
	printf("],\"checkpoints\":{\"mode\":\"%s\",\"taken\":%llu,\"failed\":%llu,"
	       "\"stall_max_ns\":%llu,\"faults\":%llu,\"restored\":%llu}}\n",
	       ckpt_mode_name(c->ckpt_mode), (unsigned long long)c->ckpt_taken,
	       (unsigned long long)c->ckpt_failed, (unsigned long long)c->ckpt_stall_max_ns,
	       (unsigned long long)c->ckpt_faults, (unsigned long long)c->ckpt_restored);
}

int cqrs_cmd_stat(int argc, char **argv)
{
	static sample cur, prev;
	const cqrs_counters *c;
	cqrs_ctl *ctl;
	uint64_t size, interval_ms = 1000, count = 0, n_shown = 0;
	int rc, watch = 0, json = 0, have_prev = 0, interval_given = 0, count_given = 0, npos;
	int tty = isatty(STDOUT_FILENO);
	char *pos[1];
	const tool_opt opts[] = {
		{ "--watch", TOOL_OPT_FLAG, &watch, 0, 0, NULL },
		{ "--json", TOOL_OPT_FLAG, &json, 0, 0, NULL },
		{ "--interval", TOOL_OPT_SECONDS, &interval_ms, 100, 3600 * 1000, &interval_given },
		{ "--count", TOOL_OPT_U64, &count, 1, 0, &count_given },
		{ NULL }
	};

	if ((rc = tool_args(&stat_help, argc, argv, opts, 1, 1, pos, &npos)) != TOOL_ARGS_OK)
		return rc;
	if (!watch && (interval_given || count_given))
		return tool_usage_error(&stat_help, "%s needs --watch",
					interval_given ? "--interval" : "--count");
	rc = cqrs__ctl_open(pos[0], &ctl);
	if (rc)
		return tool_fail(pos[0], rc);
	c = cqrs__ctl_region(ctl, CQRS_CTL_COUNTERS, &size);
	/* acquire: pairs with the engine's release store of the magic, after
	 * it filled the identity fields. */
	if (!c || size < sizeof *c ||
	    atomic_load_explicit((const _Atomic uint64_t *)&c->magic, memory_order_acquire) != CQRS_COUNTERS_MAGIC ||
	    c->version != CQRS_COUNTERS_VERSION || c->size != sizeof *c) {
		cqrs__ctl_close(ctl);
		fprintf(stderr, "cqrs: %s: no counters (engine starting, or another version)\n", pos[0]);
		return TOOL_EXIT_FAIL;
	}
	for (;;) {
		/* A private copy: the engine keeps writing while we print. */
		cqrs__ctl_info_get(ctl, &cur.ci);
		memcpy(&cur.c, c, sizeof cur.c);
		cur.mono_ns = mono_ns();
		if (watch && tty && !json)
			printf("\033[H\033[2J");
		else if (n_shown && !json)
			putchar('\n');
		if (json)
			show_json(pos[0], &cur, have_prev ? &prev : NULL);
		else
			show_text(pos[0], &cur, have_prev ? &prev : NULL);
		fflush(stdout);
		n_shown++;
		if (!watch || (count && n_shown >= count) || cur.ci.state == CQRS_ENGINE_STOPPED ||
		    !cur.ci.owner_alive)
			break;
		prev = cur;
		have_prev = 1;
		nanosleep(&(struct timespec){ .tv_sec = (time_t)(interval_ms / 1000),
					      .tv_nsec = (long)(interval_ms % 1000) * 1000000 },
			  NULL);
	}
	cqrs__ctl_close(ctl);
	return TOOL_EXIT_OK;
}
