/*
 * engine/lifecycle.c - start (recover, open views, start threads), stop
 * (drain, flush, mark views clean) and close.
 *
 * Start order matters:
 *   1. journal open (recovers the tail or refuses corruption)
 *   2. write model: the newest valid snapshot (engine/snapshot.h), then the
 *      journal's replay after it (evolve, versions, dedup window)
 *   3. control segment (a dead engine's stale one is replaced), counters
 *   4. views: adopt clean ones (resume at their applied_seq), else load the
 *      newest valid checkpoint into a new generation (resume at its seq:
 *      engine/checkpoint.h), else create empty ones (rebuilt from seq 1);
 *      every other generation of them is retired and removed (readers move);
 *      the checkpoint thread starts before them
 *   5. broadcast ring + one consumer per projector, added at the tail before
 *      anything is published: ring seqs start at the journal's next seq
 *   6. projector threads (replay the journal gap, then follow the ring),
 *      the replicator thread when replication is configured
 *   7. housekeeping thread (journal retention), command thread; control
 *      state RUNNING
 * SHARED threading skips 5, and 6 replays the journal gap on the starting
 * thread: the command thread applies every batch from there on.
 * Stop is the reverse: the command thread drains submissions, flushes and
 * waits until everything is durable and published; projectors apply
 * everything published; views are marked clean; the journal is closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include <xxhash.h>

#include "core/clock.h"
#include "core/errors.h"
#include "engine/checkpoint.h"
#include "engine/command.h"
#include "engine/command_thread.h"
#include "engine/counters.h"
#include "engine/deadletter.h"
#include "engine/engine_internal.h"
#include "engine/gateway.h"
#include "engine/generations.h"
#include "engine/housekeeping.h"
#include "engine/journal/journal.h"
#include "engine/model/dedup.h"
#include "engine/model/versions.h"
#include "engine/model/wm_alloc.h"
#include "engine/projector.h"
#include "engine/publish.h"
#include "engine/replay.h"
#include "engine/snapshot.h"
#include "engine/replication/replication.h"
#include "engine/submit.h"
#include "shm/control.h"

static int open_journal(cqrs_engine *e, cqrs_journal_recovery *rec)
{
	cqrs_journal_config jc = {
		.dir = e->journal_dir,
		.engine = e->name,
		.segment_size = e->cfg.segment_bytes,
		.durability = (enum cqrs_durability_mode)e->cfg.durability,
		.interval_ms = e->cfg.interval_ms,
		.schemas = e->event_schemas,
		.nschemas = CQRS_MAX_TYPES,
		.log = e->cfg.log,
		.log_arg = e->cfg.log_arg,
		.on_durable = cqrs__on_durable,
		.durable_arg = e,
		.batch_bytes = e->cfg.max_batch_bytes,
		.inline_write_max = e->cfg.inline_write_bytes,
		.on_roll = cqrs__housekeeping_on_roll,
		.roll_arg = e,
	};
	int rc = cqrs__journal_open(&e->journal, &jc, rec);

	if (rc == 0 && rec->torn_bytes)
		cqrs__log(e, CQRS_LOG_WARN, "journal: cut a torn tail of %llu bytes from seq %llu (kept in %s)",
			  (unsigned long long)rec->torn_bytes, (unsigned long long)rec->torn_from_seq,
			  rec->torn_file);
	return rc;
}

/* Which journal this is, for the views written from it: its real path
 * hashed (never 0, which a view from before origins holds). */
static uint64_t journal_origin(const char *dir)
{
	char real[PATH_MAX];
	const char *p = realpath(dir, real) ? real : dir;
	uint64_t h = XXH3_64bits(p, strlen(p));

	return h ? h : 1;
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

/* ---- start / stop / close --------------------------------------------------------- */

static int start(cqrs_engine *e)
{
	cqrs_journal_recovery rec;
	cqrs_replay_stats rs;
	uint64_t cap, snap_seq;
	int rc;

	e->command_owner = pthread_self(); /* until the command thread starts */
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
	e->journal_origin = journal_origin(e->journal_dir);
	rc = cqrs__snapshot_restore(e, rec.next_seq, &snap_seq);
	if (!rc)
		rc = cqrs__replay_write_model(e, snap_seq + 1, rec.next_seq, &rs);
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
	cqrs__snapshot_counters_init(e);
	CTR_SET(e->ctr, durable_seq, rec.next_seq - 1);
	rc = cqrs__checkpoint_dirs(e);
	if (!rc)
		rc = cqrs__checkpoint_open(e); /* before the views: restore reads checkpoints */
	if (rc)
		return rc;
	for (uint32_t k = 0; k < e->nprojs; k++) {
		uint64_t resume;
		rc = cqrs__proj_open_views(e, e->projs[k], rec.next_seq - 1, &resume);
		if (rc)
			return rc;
		atomic_store_explicit(&e->projs[k]->applied_seq, resume, memory_order_relaxed); /* pre-thread */
		CTR_SET(e->ctr, proj[k].applied_seq, resume);
	}
	(void)cqrs__generations_retire_old(e); /* before any seq is handed out */
	rc = cqrs__publish_open(e); /* the broadcast ring, in DEDICATED threading */
	if (!rc && !e->cfg.node_of) /* a view node takes no commands */
		rc = cqrs__gateway_open(e); /* points e->bell into its engine page */
	if (!rc)
		rc = cqrs__submit_init(e);
	if (rc)
		return rc;
	rc = cqrs__projectors_start(e, rec.next_seq);
	if (!rc) /* without waiting for the network: the replicator, or a node's receiver */
		rc = e->cfg.node_of ? cqrs__node_start(e, rec.next_seq)
				    : cqrs__repl_start(e, rec.next_seq);
	if (!rc)
		rc = cqrs__housekeeping_start(e); /* journal retention */
	if (rc)
		return rc;
	/* release: everything set up above is visible to submitters that see
	 * RUNNING (they load state before touching the queue). */
	atomic_store_explicit(&e->state, ENGINE_RUNNING, memory_order_release);
	rc = cqrs__command_thread_start(e);
	if (rc) {
		atomic_store_explicit(&e->state, ENGINE_STOPPING, memory_order_release);
		return rc;
	}
	cqrs__ctl_set_state(e->ctl, CQRS_ENGINE_RUNNING);
	cqrs__ctl_publish(e->ctl);
	cqrs__log(e, CQRS_LOG_INFO, "engine %s: running at seq %llu", e->name,
		  (unsigned long long)(rec.next_seq - 1));
	return 0;
}

static void teardown(cqrs_engine *e, int clean)
{
	cqrs__command_thread_join(e);
	/* Nothing rolls a segment any more; and before the replicator goes,
	 * so that no collection runs without its watermark. */
	cqrs__housekeeping_stop(e);
	cqrs__repl_stop(e);
	cqrs__node_stop(e);
	/* Without a command thread the projectors still need to be told. */
	atomic_store_explicit(&e->command_done, 1, memory_order_release); /* pairs with projectors */
	cqrs__publish_done(e);
	cqrs__projectors_join(e, clean && !atomic_load_explicit(&e->poison, memory_order_relaxed));
	if (e->journal) {
		int rc = cqrs__journal_close(e->journal);
		if (rc)
			cqrs__log(e, CQRS_LOG_ERROR, "journal close: %s", cqrs_strerror(rc));
		e->journal = NULL;
	}
	cqrs__gateway_close(e);
	cqrs__submit_free(e);
	cqrs__publish_close(e);
	if (e->ctl) {
		/* the last figures stay readable through cqrs_engine_counters
		 * (the stop's snapshot, the run's totals) */
		memcpy(&e->private_ctr, e->ctr, sizeof e->private_ctr);
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
	cqrs__snapshot_free(e);
	cqrs__housekeeping_free(e);
	cqrs__wm_free(e->ctx, sizeof *e->ctx);
	free(e->acks);
	pthread_mutex_destroy(&e->dl_lock);
	free(e);
}

const struct cqrs_counters *cqrs_engine_counters(const cqrs_engine *e)
{
	return e->ctr ? e->ctr : &e->private_ctr;
}
