/*
 * engine/publish.c - handing each durable journal batch to the
 * projections (command thread, from the journal's on_durable callback).
 *
 * DEDICATED threading: the batch's records are copied into the broadcast
 * ring as ONE ring record (type RING_BATCH) whose payload is the batch's
 * journal records exactly as on disk (cqrs_jrec + payload, 8-byte
 * aligned): one claim, one memcpy, one release store per batch; the claim
 * blocks while the slowest projector is a ring behind. The projector
 * threads apply it (engine/projector_thread.c).
 *
 * SHARED threading: no ring; the command thread applies the batch to every
 * projector itself, straight from the journal's bytes.
 *
 * Either way published_seq then moves to the batch's last seq.
 */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/errors.h"
#include "cqrs_ring.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/projector.h"
#include "engine/publish.h"

#define RING_BATCH 1u

static void published(cqrs_engine *e, uint64_t last_seq)
{
	/* relaxed: published_seq is written by this thread only. */
	CQRS_ASSERT(last_seq > atomic_load_explicit(&e->published_seq, memory_order_relaxed));
	/* release: pairs with the projectors' acquire in their stop check. */
	atomic_store_explicit(&e->published_seq, last_seq, memory_order_release);
	CTR_SET(e->ctr, published_seq, last_seq);
}

static void ring_batch(cqrs_engine *e, const void *records, size_t bytes, uint64_t last_seq)
{
	projector *ts = e->projectors;
	void *dst;
	int rc;

	CQRS_ASSERT(bytes <= e->cfg.max_batch_bytes); /* one journal batch: fits the ring (open) */
	if (e->nprojs) {
		rc = cqrs_bcast_claim(e->bcast, RING_BATCH, (uint32_t)bytes, CQRS_WAIT_BLOCK,
				      CQRS_RING_FOREVER, &dst);
		if (rc == 0) {
			memcpy(dst, records, bytes);
			cqrs_bcast_publish(e->bcast);
		} else {
			cqrs__log(e, CQRS_LOG_ERROR, "publish of seq %llu failed: %s",
				  (unsigned long long)last_seq, cqrs_strerror(rc));
		}
	}
	published(e, last_seq);
	if (ts) {
		uint64_t tail = cqrs_bcast_tail(e->bcast), low = tail;
		for (uint32_t i = 0; i < e->nprojectors; i++) {
			/* relaxed: statistics only. */
			uint64_t pos = atomic_load_explicit(&ts[i].ring_pos, memory_order_relaxed);
			if (pos < low)
				low = pos;
		}
		CTR_SET(e->ctr, ring_used, tail - low);
	}
}

static void ring_done(cqrs_engine *e)
{
	if (e->bcast)
		cqrs_bcast_publish(e->bcast); /* wakes consumers sleeping in the ring */
}

static void apply_batch(cqrs_engine *e, const void *records, size_t bytes, uint64_t last_seq)
{
	projector *ts = e->projectors;

	if (ts) /* NULL once stopped: the views are closed */
		for (uint32_t i = 0; i < e->cfg.projector_threads; i++)
			cqrs__projector_apply_batch(&ts[i], records, bytes);
	published(e, last_seq);
}

static void apply_done(cqrs_engine *e)
{
	(void)e; /* nothing sleeps on this engine's batches */
}

static const cqrs_publish_ops ring_ops = { ring_batch, ring_done };
static const cqrs_publish_ops apply_ops = { apply_batch, apply_done };

int cqrs__publish_open(cqrs_engine *e)
{
	size_t size;
	void *mem;
	int rc;

	if (e->cfg.threading == CQRS_THREADING_SHARED) {
		e->publish = &apply_ops;
		return 0;
	}
	e->publish = &ring_ops;
	size = cqrs_bcast_footprint(e->cfg.ring_bytes, CQRS_MAX_PROJECTORS);
	if (!size || e->cfg.max_batch_bytes + 64 > e->cfg.ring_bytes / 2)
		return cqrs__fail(-EINVAL, "ring_bytes must exceed twice max_batch_bytes");
	if (posix_memalign(&mem, 64, size))
		return -ENOMEM;
	rc = cqrs_bcast_init(mem, size, e->cfg.ring_bytes, CQRS_MAX_PROJECTORS, &e->bcast);
	if (rc) {
		free(mem);
		return rc;
	}
	e->bcast_mem = mem;
	return 0;
}

void cqrs__publish_close(cqrs_engine *e)
{
	if (!e->bcast)
		return;
	cqrs_bcast_close(e->bcast);
	free(e->bcast_mem);
	e->bcast = NULL;
	e->bcast_mem = NULL;
}
