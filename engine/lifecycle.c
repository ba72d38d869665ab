/*
 * engine/lifecycle.c - start (recover, open views, start threads), the
 * command thread's loop, stop (drain, flush, mark views clean) and close.
 *
 * Start order matters:
 *   1. journal open (recovers the tail or refuses corruption)
 *   2. write model replay (evolve, versions, dedup window)
 *   3. control segment (a dead engine's stale one is replaced), counters
 *   4. views: adopt clean ones (resume at their applied_seq), create the rest;
 *      every other generation of them is retired and removed (readers move)
 *   5. broadcast ring + one consumer per projector, added at the tail before
 *      anything is published: ring seqs start at the journal's next seq
 *   6. projector threads (replay the journal gap, then follow the ring)
 *   7. command thread; control state RUNNING
 * SHARED threading skips 5, and 6 replays the journal gap on the starting
 * thread: the command thread applies every batch from there on.
 * Stop is the reverse: the command thread drains submissions, flushes and
 * waits until everything is durable and published; projectors apply
 * everything published; views are marked clean; the journal is closed.
 */
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "engine/counters.h"
#include "cqrs_ring.h"
#include "engine/engine_internal.h"
#include "engine/generations.h"
#include "core/errors.h"
#include "engine/projector.h"
#include "engine/replay.h"
#include "core/schema_internal.h"
#include "shm/control.h"
#include "engine/submit.h"
#include "engine/model/wm_alloc.h"

static int open_journal(cqrs_engine *e, cqrs_journal_recovery *rec)
{
	static const int modes[] = { [CQRS_DURABILITY_NONE] = CQRS_DURABLE_NONE,
				     [CQRS_DURABILITY_BATCH] = CQRS_DURABLE_BATCH,
				     [CQRS_DURABILITY_INTERVAL] = CQRS_DURABLE_INTERVAL };
	cqrs_journal_config jc = {
		.dir = e->journal_dir,
		.engine = e->name,
		.segment_size = e->cfg.segment_bytes,
		.durability = (cqrs_durability)modes[e->cfg.durability],
		.interval_ms = e->cfg.interval_ms,
		.schemas = e->event_schemas,
		.nschemas = CQRS_MAX_TYPES,
		.log = e->cfg.log,
		.log_arg = e->cfg.log_arg,
		.on_durable = cqrs__on_durable,
		.durable_arg = e,
		.batch_bytes = e->cfg.max_batch_bytes,
		.inline_write_max = e->cfg.inline_write_bytes,
	};
	int rc = cqrs__journal_open(&e->journal, &jc, rec);

	if (rc == 0 && rec->torn_bytes)
		cqrs__log(e, CQRS_LOG_WARN, "journal: cut a torn tail of %llu bytes from seq %llu (kept in %s)",
			  (unsigned long long)rec->torn_bytes, (unsigned long long)rec->torn_from_seq,
			  rec->torn_file);
	return rc;
}

static int open_control(cqrs_engine *e)
{
	cqrs_ctl_config cc = { .mode = e->cfg.shm_mode };
	cqrs_ctl *ctl;
	uint64_t size;
	int rc = cqrs__ctl_create(e->name, &cc, &ctl);

	if (rc == CQRS_ESTALE) {
		cqrs__log(e, CQRS_LOG_INFO, "engine %s: replacing the control segment of a dead engine",
			  e->name);
		rc = cqrs__ctl_remove_stale(e->name);
		if (rc == 0)
			rc = cqrs__ctl_create(e->name, &cc, &ctl);
	}
	if (rc)
		return rc;
	e->ctl = ctl;
	e->ctr = cqrs__ctl_region(ctl, CQRS_CTL_COUNTERS, &size);
	if (!e->ctr || size < sizeof(cqrs_counters))
		return cqrs__fail(-EINVAL, "control segment counters region too small");
	for (uint32_t t = 1; t < CQRS_MAX_TYPES; t++)
		if (e->cmds[t].schema && (rc = cqrs__ctl_add_command_schema(ctl, e->cmds[t].schema)))
			return rc;
	return 0;
}

static void init_counters(cqrs_engine *e, const cqrs_replay_stats *rs)
{
	cqrs_counters *c = e->ctr;

	c->version = CQRS_COUNTERS_VERSION;
	c->size = sizeof *c;
	c->nproj = e->nprojs;
	c->durability = (uint32_t)e->cfg.durability;
	c->start_ns = cqrs__wall_ns();
	c->threading = (uint32_t)e->cfg.threading;
	c->ring_size = e->cfg.threading == CQRS_THREADING_SHARED ? 0 : e->cfg.ring_bytes;
	c->replayed = rs->events;
	c->replay_ns = rs->ns;
	for (uint32_t k = 0; k < e->nprojs; k++) {
		snprintf(c->proj[k].name, sizeof c->proj[k].name, "%s", e->projs[k]->def.name);
		c->proj[k].thread = e->projs[k]->def.thread;
	}
	{
		size_t n = strnlen(e->data_dir, sizeof c->data_dir - 1); /* informational copy */
		memcpy(c->data_dir, e->data_dir, n);
		c->data_dir[n] = 0;
	}
	/* release: the identity above is complete before readers see the
	 * magic (they check it with acquire first). */
	atomic_store_explicit((_Atomic uint64_t *)&c->magic, CQRS_COUNTERS_MAGIC, memory_order_release);
}

static int open_ring(cqrs_engine *e)
{
	size_t size = cqrs_bcast_footprint(e->cfg.ring_bytes, CQRS_MAX_PROJECTORS);
	void *mem;
	int rc;

	if (!size || e->cfg.max_batch_bytes + 64 > e->cfg.ring_bytes / 2)
		return cqrs__fail(-EINVAL, "ring_bytes must exceed twice max_batch_bytes");
	if (posix_memalign(&mem, 64, size))
		return -ENOMEM;
	rc = cqrs_bcast_init(mem, size, e->cfg.ring_bytes, CQRS_MAX_PROJECTORS,
			     (cqrs_bcast **)&e->bcast);
	if (rc) {
		free(mem);
		return rc;
	}
	e->bcast_mem = mem;
	return 0;
}

static uint32_t journal_inflight(cqrs_engine *e)
{
	cqrs_journal_stats st;

	cqrs__journal_stats_get(e->journal, &st);
	CTR_SET(e->ctr, batches, st.batches);
	CTR_SET(e->ctr, journal_bytes, st.bytes);
	CTR_SET(e->ctr, fdatasyncs, st.fsyncs);
	return st.inflight;
}

/* ---- the command thread ---------------------------------------------------------- */

static void *command_main(void *arg)
{
	cqrs_engine *e = arg;
	uint32_t max = e->cfg.max_batch_commands;
	const uint64_t yield_ns = (uint64_t)e->cfg.idle_yield_us * 1000;
	uint64_t idle_since = 0; /* when the loop last found nothing to decide */
	bool gateway_first = false; /* which source a batch drains first */

	for (;;) {
		/* acquire: pairs with cqrs_engine_stop's release store. */
		int stopping = atomic_load_explicit(&e->state, memory_order_acquire) >= ENGINE_STOPPING;
		uint32_t n = 0;
		int rc;

		cqrs__command_reset_ctx(e);
		/* In-process submissions and gateway clients take turns at
		 * filling a batch first, so a backlog on one side (a pipelining
		 * in-process submitter keeps thousands queued) cannot leave the
		 * other nothing, batch after batch. */
		gateway_first = e->gateway && !gateway_first;
		if (gateway_first && !cqrs__acks_full(e))
			n = cqrs__gateway_poll(e, max);
		if (n < max && !cqrs__acks_full(e))
			n += cqrs__submit_drain(e, max - n);
		if (e->gateway && !gateway_first && n < max && !cqrs__acks_full(e))
			n += cqrs__gateway_poll(e, max - n);
		if (n)
			cqrs__journal_flush(e->journal);
		rc = cqrs__journal_poll(e->journal);
		if (rc < 0)
			cqrs__poison(e, rc);
		if (e->cfg.threading == CQRS_THREADING_SHARED)
			cqrs__projectors_poll_shared(e); /* rebuild, dead-letter retry */
		if (n) {
			idle_since = 0;
			continue;
		}
		/* relaxed: poison is written by this thread. A poisoned journal
		 * never reports its batches in flight: do not wait for them. */
		if (!atomic_load_explicit(&e->poison, memory_order_relaxed) && journal_inflight(e)) {
			/* Batches are being written: for idle_yield_us keep deciding
			 * what arrives meanwhile (the loop above drains and polls both
			 * without a syscall), yielding between looks; only then block
			 * on the journal's completions. */
			if (yield_ns) {
				uint64_t now = cqrs__mono_ns();

				if (!idle_since)
					idle_since = now;
				if (now - idle_since < yield_ns) {
					sched_yield();
					continue;
				}
			}
			rc = cqrs__journal_wait(e->journal, 200000);
			if (rc < 0)
				cqrs__poison(e, rc);
			continue;
		}
		if (stopping)
			break;
		cqrs__submit_wait(e, 10000000);
	}
	/* Drained: every submission before the stop is answered (durable). */
	cqrs__journal_flush(e->journal);
	while (!atomic_load_explicit(&e->poison, memory_order_relaxed) && journal_inflight(e) &&
	       cqrs__journal_wait(e->journal, 100000000) >= 0)
		;
	/* release: pairs with the projectors' acquire in their stop check. */
	atomic_store_explicit(&e->command_done, 1, memory_order_release);
	if (e->bcast) /* DEDICATED threading */
		cqrs_bcast_publish(e->bcast); /* wake consumers sleeping in the ring */
	return NULL;
}

/* ---- start / stop / close --------------------------------------------------------- */

static int start(cqrs_engine *e)
{
	cqrs_journal_recovery rec;
	cqrs_replay_stats rs;
	uint64_t cap;
	int rc;

	rc = cqrs__versions_create(e->cfg.aggregates_hint, &e->versions);
	if (!rc)
		rc = cqrs__dedup_create(e->cfg.dedup_window, &e->dedup);
	if (rc)
		return rc;
	e->ctx = cqrs__wm_calloc(sizeof *e->ctx);
	cap = 1;
	while (cap < (uint64_t)e->cfg.max_batch_commands * 8)
		cap <<= 1;
	e->acks = calloc(cap, sizeof *e->acks);
	e->ack_cap = cap;
	if (!e->ctx || !e->acks)
		return -ENOMEM;
	e->ctx->e = e;
	rc = open_journal(e, &rec);
	if (rc)
		return rc;
	rc = cqrs__replay_write_model(e, rec.next_seq, &rs);
	if (rc)
		return rc;
	if (e->cfg.pretouch) {
		/* The write model is built: its memory, before deciding. */
		rc = cqrs__wm_prefault();
		if (rc)
			cqrs__log(e, CQRS_LOG_WARN, "pretouch: the write model's memory faults in on use (%s)",
				  strerror(-rc));
	}
	e->last_assigned = rec.next_seq - 1;
	atomic_store_explicit(&e->durable_seq, rec.next_seq - 1, memory_order_relaxed); /* pre-thread */
	atomic_store_explicit(&e->published_seq, rec.next_seq - 1, memory_order_relaxed);
	rc = cqrs__dl_open(e->data_dir, &e->dead_letters);
	if (rc)
		return rc;
	rc = open_control(e);
	if (rc)
		return rc;
	init_counters(e, &rs);
	CTR_SET(e->ctr, durable_seq, rec.next_seq - 1);
	for (uint32_t k = 0; k < e->nprojs; k++) {
		uint64_t resume;
		rc = cqrs__proj_open_views(e, e->projs[k], rec.next_seq - 1, &resume);
		if (rc)
			return rc;
		atomic_store_explicit(&e->projs[k]->applied_seq, resume, memory_order_relaxed); /* pre-thread */
		CTR_SET(e->ctr, proj[k].applied_seq, resume);
	}
	(void)cqrs__generations_retire_old(e); /* before any seq is handed out */
	/* SHARED threading applies on the command thread: no ring. */
	rc = e->cfg.threading == CQRS_THREADING_SHARED ? 0 : open_ring(e);
	if (!rc)
		rc = cqrs__gateway_open(e); /* may point e->bell into its segment */
	if (!rc)
		rc = cqrs__submit_init(e);
	if (rc)
		return rc;
	rc = cqrs__projectors_start(e, rec.next_seq);
	if (rc)
		return rc;
	/* release: everything set up above is visible to submitters that see
	 * RUNNING (they load state before touching the queue). */
	atomic_store_explicit(&e->state, ENGINE_RUNNING, memory_order_release);
	rc = pthread_create(&e->command_thread, NULL, command_main, e);
	if (rc) {
		atomic_store_explicit(&e->state, ENGINE_STOPPING, memory_order_release);
		return -rc;
	}
	e->command_started = 1;
	pthread_setname_np(e->command_thread, "cqrs-command"); /* for top -H, perf */
	cqrs__ctl_set_state(e->ctl, CQRS_ENGINE_RUNNING);
	cqrs__ctl_publish(e->ctl);
	cqrs__log(e, CQRS_LOG_INFO, "engine %s: running at seq %llu", e->name,
		  (unsigned long long)(rec.next_seq - 1));
	return 0;
}

static void teardown(cqrs_engine *e, int clean)
{
	if (e->command_started) {
		pthread_join(e->command_thread, NULL);
		e->command_started = 0;
	}
	/* Without a command thread the projectors still need to be told. */
	atomic_store_explicit(&e->command_done, 1, memory_order_release); /* pairs with projectors */
	if (e->bcast)
		cqrs_bcast_publish(e->bcast);
	cqrs__projectors_join(e, clean && !atomic_load_explicit(&e->poison, memory_order_relaxed));
	if (e->journal) {
		int rc = cqrs__journal_close(e->journal);
		if (rc)
			cqrs__log(e, CQRS_LOG_ERROR, "journal close: %s", cqrs_strerror(rc));
		e->journal = NULL;
	}
	cqrs__gateway_close(e);
	cqrs__submit_free(e);
	if (e->bcast) {
		cqrs_bcast_close(e->bcast);
		free(e->bcast_mem);
		e->bcast = NULL;
	}
	if (e->ctl) {
		cqrs__ctl_destroy(e->ctl);
		e->ctl = NULL;
		e->ctr = &e->private_ctr;
	}
	cqrs__dl_close(e->dead_letters);
	e->dead_letters = NULL;
	atomic_store_explicit(&e->state, ENGINE_STOPPED, memory_order_release); /* status word */
}

int cqrs_engine_start(cqrs_engine *e)
{
	int rc;

	if (atomic_load_explicit(&e->state, memory_order_relaxed) != ENGINE_OPEN)
		return cqrs__fail(-EINVAL, "engine already started");
	e->ctr = &e->private_ctr;
	rc = start(e);
	if (rc) {
		char why[512];
		snprintf(why, sizeof why, "%s", cqrs_last_error());
		atomic_store_explicit(&e->state, ENGINE_STOPPING, memory_order_release);
		teardown(e, 0);
		return cqrs__fail(rc, "engine %s: start failed: %s", e->name, why);
	}
	return 0;
}

int cqrs_engine_stop(cqrs_engine *e)
{
	int expected = ENGINE_RUNNING;

	/* release: pairs with the command thread's acquire of state. */
	if (!atomic_compare_exchange_strong_explicit(&e->state, &expected, ENGINE_STOPPING,
						     memory_order_acq_rel, memory_order_acquire))
		return expected == ENGINE_STOPPED ? 0 : cqrs__fail(-EINVAL, "engine not running");
	teardown(e, 1);
	return atomic_load_explicit(&e->poison, memory_order_relaxed);
}

void cqrs_engine_close(cqrs_engine *e)
{
	if (!e)
		return;
	if (atomic_load_explicit(&e->state, memory_order_relaxed) == ENGINE_RUNNING)
		cqrs_engine_stop(e);
	cqrs__projections_free(e);
	cqrs__dedup_destroy(e->dedup);
	cqrs__versions_destroy(e->versions);
	cqrs__wm_free(e->ctx, sizeof *e->ctx);
	free(e->acks);
	pthread_mutex_destroy(&e->dl_lock);
	free(e);
}

const struct cqrs_counters *cqrs_engine_counters(const cqrs_engine *e)
{
	return e->ctr ? e->ctr : &e->private_ctr;
}

int cqrs_engine_remove_segments(const char *engine)
{
	char prefix[64];
	cqrs_ctl *ctl;
	DIR *d;
	struct dirent *ent;
	size_t n;
	int removed = 0;

	if (!engine || !cqrs__name_valid(engine, CQRS_NAME_MAX))
		return -EINVAL;
	if (cqrs__ctl_open(engine, &ctl) == 0) {
		cqrs_ctl_info info;
		int alive = cqrs__ctl_info_get(ctl, &info) == 0 && info.owner_alive && !info.retired;
		cqrs__ctl_close(ctl);
		if (alive)
			return cqrs__fail(-EBUSY, "engine %s is running", engine);
	}
	if (cqrs__ctl_remove_stale(engine) == 0)
		removed++;
	d = opendir("/dev/shm");
	if (!d)
		return removed;
	n = (size_t)snprintf(prefix, sizeof prefix, "cqrs.%s.", engine);
	while ((ent = readdir(d))) {
		char name[300];
		if (strncmp(ent->d_name, prefix, n))
			continue;
		snprintf(name, sizeof name, "/%s", ent->d_name);
		if (cqrs__seg_retire_unlink(name) == 0) /* readers mapping it move on */
			removed++;
	}
	closedir(d);
	return removed;
}
