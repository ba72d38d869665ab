/*
 * engine/proj_stall.c - a projection that ran out of room: when a full
 * view must grow and the new generation cannot be made (/dev/shm full:
 * -ENOSPC, no memory: -ENOMEM), the projection stalls instead of
 * dead-lettering what follows.
 *
 * The same when a view cannot be made at all at start: the engine starts,
 * the projection stalled without that view (readers find no such view
 * yet), and the view is made, then filled from the journal, once there is
 * room.
 *
 * Stalled, it is a state, visible in the counters (`cqrs stat`: the
 * reason, the seq it waits to apply, failed attempts) and logged once:
 *   - its views stay at the seq before the event that needs the room
 *     (readers keep reading them; cqrs_view_wait past it keeps waiting);
 *   - the events that follow are not applied and not dead-lettered (each
 *     would fail the same way);
 *   - every attempt to grow again waits twice as long as the one before
 *     (STALL_FIRST_NS up to STALL_MAX_NS), on the projection's own thread
 *     (its projector, or the command thread in SHARED threading), between
 *     batches, so the other projections and the commands go on;
 *   - once growing works, the projection catches up from the journal to
 *     the last seq its thread has been handed, and follows again;
 *   - stop does not wait for it; its views are marked clean at their
 *     applied seq, so the next start replays only what they lack.
 * A failure other than a shortage, while retrying, ends the stall: the
 * event then takes the dead-letter path it would have taken without it.
 */
#include <errno.h>

#include "core/clock.h"
#include "core/errors.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/projector.h"

#define STALL_FIRST_NS UINT64_C(50000000)  /* first retry after 50 ms */
#define STALL_MAX_NS UINT64_C(5000000000)  /* then doubling, at most every 5 s */

/* Views not made at start for want of room. */
static bool missing_views(const cqrs_proj *p)
{
	for (uint32_t i = 0; i < p->def.nviews; i++)
		if (!p->views[i]->w)
			return true;
	return false;
}

bool cqrs__proj_shortage(int code)
{
	return code == -ENOSPC || code == -ENOMEM || code == -EDQUOT;
}

static void publish_state(cqrs_engine *e, cqrs_proj *p)
{
	int stalled = atomic_load_explicit(&p->stalled, memory_order_relaxed); /* owner */

	CTR_SET(e->ctr, proj[p->index].stall_code, stalled ? p->stall_code : 0);
	CTR_SET(e->ctr, proj[p->index].stall_retries, p->stall_retries);
	CTR_SET(e->ctr, proj[p->index].stalled_at, stalled ? p->stalled_at : 0);
}

void cqrs__proj_stall(cqrs_engine *e, cqrs_proj *p, uint64_t seq, int code)
{
	p->stall_code = code;
	p->stalled_at = seq;
	p->stall_retries = 0;
	p->stall_backoff_ns = STALL_FIRST_NS;
	p->stall_retry_ns = cqrs__mono_ns() + p->stall_backoff_ns;
	/* relaxed: read by this thread, by stop's check on this thread (or the
	 * command thread after this one's last batch), and by statistics. */
	atomic_store_explicit(&p->stalled, 1, memory_order_relaxed);
	publish_state(e, p);
	cqrs__log(e, CQRS_LOG_ERROR,
		  "projection %s: no room for its views at seq %llu (%s: %s): stalled at seq %llu, "
		  "retrying with backoff; nothing is dead-lettered",
		  p->def.name, (unsigned long long)seq, cqrs_strerror(code), cqrs_last_error(),
		  (unsigned long long)(seq - 1));
}

uint32_t cqrs__proj_stall_retry(cqrs_engine *e, cqrs_proj *p, uint64_t upto)
{
	uint64_t now, applied;
	int rc;

	/* relaxed: this thread is the only writer of stalled. */
	if (!atomic_load_explicit(&p->stalled, memory_order_relaxed))
		return 0;
	now = cqrs__mono_ns();
	if (now < p->stall_retry_ns)
		return 0;
	applied = atomic_load_explicit(&p->applied_seq, memory_order_relaxed);
	rc = missing_views(p) ? cqrs__proj_create_missing(e, p) : cqrs__proj_rebuild(e, p, applied, 1);
	if (rc) {
		if (cqrs__proj_shortage(rc)) {
			p->stall_code = rc;
			p->stall_retries++;
			p->stall_backoff_ns = p->stall_backoff_ns * 2 > STALL_MAX_NS
						      ? STALL_MAX_NS : p->stall_backoff_ns * 2;
			p->stall_retry_ns = now + p->stall_backoff_ns;
			publish_state(e, p);
			/* one line for the 1st, 2nd, 4th, 8th... failed attempt */
			if (!(p->stall_retries & (p->stall_retries - 1)))
				cqrs__log(e, CQRS_LOG_WARN,
					  "projection %s: still no room to grow (%s), %u attempts; next in %llu ms",
					  p->def.name, cqrs_strerror(rc), p->stall_retries,
					  (unsigned long long)(p->stall_backoff_ns / 1000000));
			return 0;
		}
	}
	/* relaxed: as in cqrs__proj_stall. */
	atomic_store_explicit(&p->stalled, 0, memory_order_relaxed);
	publish_state(e, p);
	if (!rc)
		cqrs__log(e, CQRS_LOG_INFO,
			  "projection %s: room to grow after %u failed attempts: resuming at seq %llu",
			  p->def.name, p->stall_retries, (unsigned long long)p->stalled_at);
	/* Everything this thread was handed meanwhile, from the journal. When
	 * growing failed for another reason, the replay meets the full view
	 * again and the event takes the dead-letter path it would have taken
	 * without the stall. */
	if (upto > applied && (rc = cqrs__proj_replay(e, &p, 1, applied, upto)))
		cqrs__log(e, CQRS_LOG_ERROR, "projection %s: catching up from the journal failed: %s",
			  p->def.name, cqrs_strerror(rc));
	return 1;
}
