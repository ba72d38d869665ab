/*
 * examples/orders/summary.c - what the demo prints: a progress line every
 * second (stderr: the rates of that second, the phase it was in), the
 * shared memory its views hold once it stopped, and the summary at the end
 * (stdout: a table, or one JSON document with --json). Each latency figure
 * says under which load it was measured: full load (the load thread flat
 * out, so a probe's command waits behind whatever is queued) or paced (a
 * fixed rate the engine keeps up with).
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/checkpoint.h"
#include "examples/orders/demo.h"

static const char *phase_name[PHASES] = { "full load", "paced" };

uint64_t demo_min_applied(const cqrs_counters *c)
{
	uint64_t m = UINT64_MAX;
	for (uint32_t i = 0; i < c->nproj && i < CQRS_COUNTERS_MAX_PROJ; i++)
		if (CTR(c->proj[i].applied_seq) < m)
			m = CTR(c->proj[i].applied_seq);
	return m == UINT64_MAX ? 0 : m;
}

void demo_print_progress(const load *l, double secs, double dt, uint64_t commands,
			 uint64_t events, uint64_t lag)
{
	int ph = atomic_load(&l->phase);

	if (dt <= 0)
		return;
	fprintf(stderr, "[%5.1fs] %-9s commands %9.0f/s  events %9.0f/s  probe p50 %8.1f us  "
		"p99 %8.1f us  lag %6" PRIu64 " ev\n", secs, phase_name[ph], (double)commands / dt,
		(double)events / dt, (double)cqrs__hist_quantile(&l->visible[ph], 0.5) / 1e3,
		(double)cqrs__hist_quantile(&l->visible[ph], 0.99) / 1e3, lag);
}

void demo_shm_usage(const char *name, shm_usage *u)
{
	char prefix[96];
	DIR *d = opendir("/dev/shm");
	struct dirent *de;

	memset(u, 0, sizeof *u);
	snprintf(prefix, sizeof prefix, "cqrs.%s.", name);
	snprintf(u->glob, sizeof u->glob, "/dev/shm/%s*", prefix);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;
		if (strncmp(de->d_name, prefix, strlen(prefix)) ||
		    fstatat(dirfd(d), de->d_name, &st, 0) || !S_ISREG(st.st_mode))
			continue;
		u->segments++;
		u->bytes += (uint64_t)st.st_size;
		u->resident += (uint64_t)st.st_blocks * 512u;
	}
	closedir(d);
}

void demo_checkpoints(const char *dir, ckpt_seen *out, unsigned *n)
{
	static struct cqrs__checkpoint_info info[64];
	size_t k;

	*n = 0;
	if (cqrs__checkpoint_list(dir, info, 64, &k))
		return;
	for (size_t i = 0; i < k && i < 64; i++) {
		int known = 0;
		for (unsigned j = 0; j < *n; j++)
			known |= !strcmp(out[j].view, info[i].view);
		if (known || !info[i].valid || *n == DEMO_MAX_CKPT)
			continue; /* newest first: the first valid one of a view */
		snprintf(out[*n].view, sizeof out[*n].view, "%.31s", info[i].view);
		out[*n].seq = info[i].seq;
		(*n)++;
	}
}

static double q_us(const cqrs_hist *h, double q)
{
	return (double)cqrs__hist_quantile(h, q) / 1e3;
}

static double rate_of(const phase_result *p)
{
	return p->secs > 0 ? (double)p->commands / p->secs : 0;
}

static void print_json(const options *o, const summary *s)
{
	const load *l = s->l;

	printf("{\"engine\": \"%s\", \"dir\": \"%s\", \"durability\": \"%s\", \"seconds\": %.3f,\n",
	       o->name, o->dir, demo_durability_name(o->durability), s->secs);
	for (int p = 0; p < PHASES; p++)
		printf(" \"%s\": {\"seconds\": %.3f, \"commands\": %" PRIu64 ", \"commands_per_s\": %.0f, "
		       "\"target_commands_per_s\": %" PRIu64 ",\n  \"command_to_visible_us\": "
		       "{\"p50\": %.1f, \"p99\": %.1f, \"p999\": %.1f, \"probes\": %" PRIu64 "}},\n",
		       p == PHASE_FULL ? "full_load" : "paced_load", s->ph[p].secs, s->ph[p].commands,
		       rate_of(&s->ph[p]), s->ph[p].rate, q_us(&l->visible[p], 0.5),
		       q_us(&l->visible[p], 0.99), q_us(&l->visible[p], 0.999),
		       atomic_load(&l->probes[p]));
	printf(" \"accepted\": %" PRIu64 ", \"rejected\": %" PRIu64 ",\n", atomic_load(&l->accepted),
	       atomic_load(&l->rejected));
	printf(" \"reader\": {\"queries_per_s\": %.0f, \"rows\": %" PRIu64 ", \"errors\": %" PRIu64
	       ", \"read_your_writes_ok\": %" PRIu64 ", \"read_your_writes_failed\": %" PRIu64 "},\n",
	       s->secs > 0 ? (double)s->rr->queries / s->secs : 0, s->rr->rows, s->rr->errors,
	       s->rr->ryw_ok, s->rr->ryw_fail);
	printf(" \"journal_mb_per_s\": %.1f, \"fdatasyncs\": %" PRIu64 ", \"max_projection_lag_events\": %"
	       PRIu64 ",\n", s->secs > 0 ? (double)s->journal_bytes / s->secs / 1e6 : 0, s->fdatasyncs,
	       s->max_lag);
	printf(" \"restart\": {\"snapshot_seq\": %" PRIu64 ", \"events_replayed\": %" PRIu64
	       ", \"ms\": %.1f},\n", s->restart_snap_seq, s->restart_replayed, s->restart_ms);
	printf(" \"snapshots\": {\"taken\": %" PRIu64 ", \"newest_seq\": %" PRIu64 ", \"bytes\": %" PRIu64
	       ", \"fork_us\": %" PRIu64 ", \"fork_max_us\": %" PRIu64 "},\n", s->snaps_taken,
	       s->snap_seq, s->snap_bytes, s->fork_us, s->fork_max_us);
	printf(" \"views\": {\"glob\": \"%s\", \"segments\": %u, \"bytes\": %" PRIu64
	       ", \"resident_bytes\": %" PRIu64 "},\n \"checkpoints\": {", s->shm.glob, s->shm.segments,
	       s->shm.bytes, s->shm.resident);
	for (unsigned i = 0; i < s->nckpt; i++)
		printf("%s\"%s\": %" PRIu64, i ? ", " : "", s->ckpt[i].view, s->ckpt[i].seq);
	printf("}}\n");
}

void demo_print_summary(const options *o, const summary *s)
{
	const load *l = s->l;
	char label[64];

	if (o->json) {
		print_json(o, s);
		return;
	}
	printf("\n%-44s %s\n", "metric", "value");
	printf("%-44s %.0f (%.1f s)\n", "full load: commands/s (load thread flat out)",
	       rate_of(&s->ph[PHASE_FULL]), s->ph[PHASE_FULL].secs);
	printf("%-44s %.1f / %.1f / %.1f us (%" PRIu64 " probes; queued behind the load)\n",
	       "full load: command-to-visible p50/p99/p99.9", q_us(&l->visible[PHASE_FULL], 0.5),
	       q_us(&l->visible[PHASE_FULL], 0.99), q_us(&l->visible[PHASE_FULL], 0.999),
	       atomic_load(&l->probes[PHASE_FULL]));
	snprintf(label, sizeof label, "paced at %" PRIu64 "/s: commands/s", s->ph[PHASE_PACED].rate);
	printf("%-44s %.0f (%.1f s)\n", label, rate_of(&s->ph[PHASE_PACED]), s->ph[PHASE_PACED].secs);
	printf("%-44s %.1f / %.1f / %.1f us (%" PRIu64 " probes)\n",
	       "paced: command-to-visible p50/p99/p99.9", q_us(&l->visible[PHASE_PACED], 0.5),
	       q_us(&l->visible[PHASE_PACED], 0.99), q_us(&l->visible[PHASE_PACED], 0.999),
	       atomic_load(&l->probes[PHASE_PACED]));
	printf("%-44s %" PRIu64 " accepted, %" PRIu64 " rejected\n", "commands",
	       atomic_load(&l->accepted), atomic_load(&l->rejected));
	printf("%-44s %.0f (%" PRIu64 " rows seen, %" PRIu64 " errors)\n",
	       "reader queries/s (other process)", s->secs > 0 ? (double)s->rr->queries / s->secs : 0,
	       s->rr->rows, s->rr->errors);
	printf("%-44s %" PRIu64 " ok, %" PRIu64 " failed\n", "read-your-writes checks", s->rr->ryw_ok,
	       s->rr->ryw_fail);
	printf("%-44s %.1f\n", "journal MB/s", s->secs > 0 ? (double)s->journal_bytes / s->secs / 1e6 : 0);
	printf("%-44s %" PRIu64 "\n", "fdatasyncs", s->fdatasyncs);
	printf("%-44s %" PRIu64 " events max (sampled every 250 ms)\n", "projection lag", s->max_lag);
	if (s->restart_snap_seq)
		printf("%-44s %.1f ms: snapshot at seq %" PRIu64 ", then %" PRIu64 " events replayed\n",
		       "restart", s->restart_ms, s->restart_snap_seq, s->restart_replayed);
	else
		printf("%-44s %.1f ms: %" PRIu64 " events replayed (no snapshot)\n", "restart",
		       s->restart_ms, s->restart_replayed);
	printf("%-44s %" PRIu64 " (newest at seq %" PRIu64 ", %.1f MiB; fork stall last %" PRIu64
	       " us, max %" PRIu64 " us)\n", "snapshots taken (run and stop)", s->snaps_taken,
	       s->snap_seq, (double)s->snap_bytes / 1048576.0, s->fork_us, s->fork_max_us);
	printf("%-44s", "view checkpoints (seq)");
	for (unsigned i = 0; i < s->nckpt; i++)
		printf("%s %s %" PRIu64, i ? "," : "", s->ckpt[i].view, s->ckpt[i].seq);
	printf("%s\n", s->nckpt ? "" : " none");
	printf("\nThe views stay for readers after the demo: %s, %u segment(s), %.1f MiB "
	       "(%.1f MiB of memory held).\nRead them with `cqrs view dump %s order_summaries`; "
	       "free them with `cqrs rm %s`.\n", s->shm.glob, s->shm.segments,
	       (double)s->shm.bytes / 1048576.0, (double)s->shm.resident / 1048576.0, o->name, o->name);
}
