/*
 * engine/replication/replicator.c - the replicator thread: the durable
 * journal, batch by batch, into a NATS JetStream stream; replicated_seq;
 * tickets that wait for it (CQRS_ACK_REPLICATED).
 *
 * A thread of the engine, not a process beside it: tickets of
 * CQRS_ACK_REPLICATED complete on the command thread, which needs the
 * replicated seq at memory speed, and the counters live in the engine's
 * control segment. It never touches the command thread's path: it reads
 * the journal files (engine/replication/follow.h), not the broadcast ring,
 * so a NATS outage holds back only replicated_seq, never the producer.
 *
 * Messages (stream CQRS_<engine>, engine/replication/nats_link.h):
 *   cqrs.<engine>.journal  payload: journal records exactly as on disk
 *                          (cqrs_jrec header + payload, 8-byte aligned,
 *                          each with its XXH3 checksum), seqs first..last,
 *                          whole command groups, one segment, at most
 *                          batch_bytes. Headers: Nats-Msg-Id
 *                          "<engine>:<first>" (a resend is dropped by the
 *                          stream's duplicate window), Cqrs-First,
 *                          Cqrs-Last, Cqrs-Engine.
 *   cqrs.<engine>.schema   payload: a journal segment's header (format:
 *                          engine/journal/format.c) with the schema of
 *                          every event type, so a remote reader decodes
 *                          events without the application's headers;
 *                          Cqrs-First = the segment's first seq. Published
 *                          before the first journal message read from a
 *                          segment whose schemas differ from the last
 *                          published, and once after every resync (its
 *                          id names the schemas' hash: the stream drops
 *                          a resend within its duplicate window).
 *
 * The loop: connect (retrying with backoff while the servers are away);
 * resync: read the stream's last sequence and its last journal message's
 * Cqrs-Last back (the position), refusing a stream ahead of the journal;
 * then publish, one message at a time, each expecting the stream's last
 * sequence to be the one before (so nothing lands out of order or after
 * a message this thread did not see), records up to durable_seq; sleep on
 * a futex word the command thread bumps per durable batch. Any failed
 * publish (timeout, leader election, wrong last sequence, duplicate)
 * leads back to resync: the stream says what it holds, the journal has
 * the rest.
 *
 * Cost on the command thread per durable batch (cqrs__repl_on_durable): a
 * relaxed load and store (a statistic), a seq_cst increment and load, and
 * a futex wake only while the replicator sleeps; in CQRS_ACK_REPLICATED
 * one acquire load per step, and a clock read while tickets wait.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/futex.h"
#include "engine/command.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/replication/follow.h"
#include "engine/replication/nats_link.h"
#include "engine/replication/replication.h"

#define WAIT_MS 2000                          /* publish and API requests */
#define SLEEP_NS UINT64_C(50000000)           /* one sleep for durable records */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define PAYLOAD_SLACK 4096                    /* the server's max payload less headers */
#define DRAIN_DEFAULT_MS 5000

struct cqrs_repl {
	cqrs_engine *e;
	pthread_t thread;
	bool started;
	bool acks;                        /* CQRS_ACK_REPLICATED */
	_Atomic int stop;
	_Atomic int failed;               /* replication stopped (state FAILED) */
	/* Written by the replicator, read by the command thread and by
	 * cqrs__replication_watermark. */
	_Atomic uint64_t replicated_seq;
	/* The command thread's: bumped per durable batch (the futex word). */
	_Atomic uint32_t bell;
	_Atomic uint32_t sleepers;
	_Atomic uint64_t durable_bytes;   /* journaled since start (command thread) */
	uint64_t start_seq;               /* first seq journaled this run */
	/* Command thread only. */
	uint64_t released;                /* frontier last released */
	/* Replicator thread only. */
	uint64_t run_bytes;               /* replicated bytes of seqs >= start_seq */
	uint64_t schema_published;        /* hash of the last published schemas (0: none) */
	nats_link link;
	repl_follow f;
	bool synced;
	uint64_t failing;                 /* failures since the last success */
};

/* ---- hooks for the command thread ------------------------------------------------- */

uint64_t cqrs__repl_ack_frontier(cqrs_engine *e, uint64_t durable)
{
	uint64_t r;

	if (!e->repl || !e->repl->acks)
		return durable;
	/* acquire: pairs with the replicator's release store; orders nothing
	 * the command thread reads after, but keeps the value fresh. */
	r = atomic_load_explicit(&e->repl->replicated_seq, memory_order_acquire);
	return r < durable ? r : durable;
}

void cqrs__repl_on_durable(cqrs_engine *e, uint64_t last, size_t bytes)
{
	struct cqrs_repl *r = e->repl;

	(void)last;
	/* relaxed: a statistic, single writer (this thread). */
	atomic_store_explicit(&r->durable_bytes,
			      atomic_load_explicit(&r->durable_bytes, memory_order_relaxed) + bytes,
			      memory_order_relaxed);
	/* seq_cst (with the sleeper's seq_cst increment and re-check of
	 * durable_seq): either it sees the new durable_seq or we see it
	 * sleeping. */
	atomic_fetch_add_explicit(&r->bell, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&r->sleepers, memory_order_seq_cst))
		cqrs__futex_wake(&r->bell);
}

uint32_t cqrs__repl_command_step(cqrs_engine *e)
{
	struct cqrs_repl *r = e->repl;
	uint64_t frontier, timeout_ns;
	uint32_t n = 0;

	if (!r || !r->acks || e->ack_head == e->ack_tail)
		return 0;
	/* relaxed: durable_seq is written by this thread only. */
	frontier = cqrs__repl_ack_frontier(e, atomic_load_explicit(&e->durable_seq,
								   memory_order_relaxed));
	if (frontier != r->released) {
		uint64_t before = e->ack_head;
		cqrs__acks_release(e, frontier);
		r->released = frontier;
		n += (uint32_t)(e->ack_head - before);
	}
	/* acquire: pairs with the replicator's release store of failed. */
	if (atomic_load_explicit(&r->failed, memory_order_acquire) && e->ack_head != e->ack_tail) {
		uint32_t k = cqrs__acks_expire(e, UINT64_MAX, -EIO, "durable locally; replication "
					       "stopped (the stream and the journal disagree: see the log)");
		CTR_ADD(e->ctr, repl_timeouts, k);
		return n + k;
	}
	timeout_ns = (uint64_t)e->cfg.replication_timeout_ms * 1000000;
	if (timeout_ns && e->ack_head != e->ack_tail) {
		uint64_t now = cqrs__mono_ns();
		if (now > timeout_ns) {
			char why[96];
			uint32_t k;
			snprintf(why, sizeof why, "durable locally, not acknowledged by the stream in %u ms",
				 e->cfg.replication_timeout_ms);
			k = cqrs__acks_expire(e, now - timeout_ns, -ETIMEDOUT, why);
			if (k)
				CTR_ADD(e->ctr, repl_timeouts, k);
			n += k;
		}
	}
	return n;
}

bool cqrs__repl_ready(cqrs_engine *e)
{
	struct cqrs_repl *r = e->repl;

	if (!r || !r->acks || e->ack_head == e->ack_tail)
		return false;
	/* acquire: pairs with the replicator's release stores. */
	return atomic_load_explicit(&r->replicated_seq, memory_order_acquire) != r->released ||
	       atomic_load_explicit(&r->failed, memory_order_acquire);
}

void cqrs__repl_drain(cqrs_engine *e)
{
	struct cqrs_repl *r = e->repl;
	uint32_t ms = e->cfg.replication_timeout_ms ? e->cfg.replication_timeout_ms : DRAIN_DEFAULT_MS;
	uint64_t end = cqrs__mono_ns() + (uint64_t)ms * 1000000;
	struct timespec ts = { 0, 1000000 };

	if (!r || !r->acks)
		return;
	while (e->ack_head != e->ack_tail && cqrs__mono_ns() < end) {
		cqrs__repl_command_step(e);
		if (e->ack_head != e->ack_tail)
			nanosleep(&ts, NULL);
	}
	if (e->ack_head != e->ack_tail) {
		uint32_t k = cqrs__acks_expire(e, UINT64_MAX, -ETIMEDOUT,
					       "durable locally; the engine stopped before the stream "
					       "acknowledged it");
		CTR_ADD(e->ctr, repl_timeouts, k);
	}
}

uint64_t cqrs__replication_watermark(const cqrs_engine *e)
{
	if (!e->repl)
		return UINT64_MAX;
	/* acquire: pairs with the replicator's release store. */
	return atomic_load_explicit(&e->repl->replicated_seq, memory_order_acquire);
}

/* ---- the replicator thread --------------------------------------------------------- */

static bool stopping(struct cqrs_repl *r)
{
	/* acquire: pairs with cqrs__repl_stop's release store. */
	return atomic_load_explicit(&r->stop, memory_order_acquire) != 0;
}

static void sleep_ms(struct cqrs_repl *r, uint32_t ms)
{
	while (ms && !stopping(r)) {
		uint32_t step = ms < 20 ? ms : 20;
		struct timespec ts = { 0, (long)step * 1000000 };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void set_state(struct cqrs_repl *r, enum cqrs_repl_state st)
{
	CTR_SET(r->e->ctr, repl_state, st);
	if (st == CQRS_REPL_FAILED) {
		/* release: pairs with the command thread's acquire (its step
		 * fails the tickets that wait for the stream). */
		atomic_store_explicit(&r->failed, 1, memory_order_release);
		if (r->acks)
			cqrs__command_kick(r->e);
	}
}

static void replicated(struct cqrs_repl *r, uint64_t seq)
{
	cqrs_engine *e = r->e;

	/* release: pairs with the command thread's acquire loads (frontier,
	 * ready) and with cqrs__replication_watermark. */
	atomic_store_explicit(&r->replicated_seq, seq, memory_order_release);
	CTR_SET(e->ctr, replicated_seq, seq);
	if (r->acks)
		cqrs__command_kick(e);
}

static uint64_t durable_now(cqrs_engine *e)
{
	/* acquire: pairs with on_durable's release store: the records up to it
	 * are written (and, for the mode, synced) before we read them. */
	return atomic_load_explicit(&e->durable_seq, memory_order_acquire);
}

/* Waits until durable_seq passes seq or SLEEP_NS passes. */
static void wait_durable(struct cqrs_repl *r, uint64_t seq)
{
	uint32_t seen = atomic_load_explicit(&r->bell, memory_order_seq_cst);

	/* seq_cst: pairs with on_durable's bump-then-check (see there). */
	atomic_fetch_add_explicit(&r->sleepers, 1, memory_order_seq_cst);
	if (durable_now(r->e) <= seq && !stopping(r))
		cqrs__futex_wait(&r->bell, seen, SLEEP_NS);
	atomic_fetch_sub_explicit(&r->sleepers, 1, memory_order_seq_cst);
}

/* Counts a failure; logs the first of a run of them (the run ends with
 * the next message the stream acknowledges, logged too). */
static void count_error(struct cqrs_repl *r, const char *what)
{
	CTR_ADD(r->e->ctr, repl_errors, 1);
	if (!r->failing++)
		cqrs__log(r->e, CQRS_LOG_WARN, "replication: %s: %s (retrying)", what, r->link.err);
}

/* Reads the stream's position back and puts the follower after it.
 * 0; -EAGAIN (retry later); CQRS_ECORRUPT (stop: the stream and the
 * journal disagree). */
static int resync(struct cqrs_repl *r)
{
	cqrs_engine *e = r->e;
	link_position pos;
	uint64_t durable;
	int rc;

	set_state(r, CQRS_REPL_SYNCING);
	CTR_ADD(e->ctr, repl_resyncs, 1);
	rc = cqrs__link_connect(&r->link);
	if (!rc)
		rc = cqrs__link_position(&r->link, &pos);
	if (rc) {
		count_error(r, "resync");
		return -EAGAIN;
	}
	durable = durable_now(e);
	if (pos.journal_last > durable) {
		cqrs__log(e, CQRS_LOG_ERROR, "replication: stream %s holds seq %" PRIu64 ", past this "
			  "journal's durable seq %" PRIu64 " (this journal lost its tail in a "
			  "crash of the host, or another journal wrote the stream): not replicating", r->link.stream, pos.journal_last, durable);
		return CQRS_ECORRUPT;
	}
	/* The next seq: durable or not yet written, its predecessors are. */
	rc = cqrs__follow_seek(&r->f, pos.journal_last + 1);
	if (rc) {
		cqrs__log(e, CQRS_LOG_ERROR, "replication: stream %s ends at seq %" PRIu64 " and the "
			  "journal cannot be read from seq %" PRIu64 ": %s; not replicating",
			  r->link.stream, pos.journal_last, pos.journal_last + 1, cqrs_last_error());
		return CQRS_ECORRUPT;
	}
	CTR_SET(e->ctr, repl_stream_seq, pos.stream_last);
	r->schema_published = 0; /* once after every resync */
	r->synced = true;
	replicated(r, pos.journal_last);
	set_state(r, CQRS_REPL_STREAMING);
	return 0;
}

/* Publishes the current segment's header when its schemas differ from
 * the last published. 0 or -EIO. */
static int publish_schemas(struct cqrs_repl *r)
{
	const jseg_map *m = &r->f.m;
	uint64_t h = 1469598103934665603ull;
	char id[80];
	int rc;

	for (size_t i = JSEG_FIXED; i < m->h.header_size; i++) /* FNV-1a over the schemas */
		h = (h ^ m->img[i]) * 1099511628211ull;
	if (h == r->schema_published)
		return 0;
	snprintf(id, sizeof id, "%s:schema:%" PRIu64 ":%016" PRIx64, r->link.engine, m->h.first_seq, h);
	rc = cqrs__link_publish(&r->link, r->link.schema_subj, id, m->h.first_seq, m->h.first_seq,
				m->img, m->h.header_size);
	if (rc < 0)
		return rc;
	/* A duplicate (rc 1): the stream holds this header already (the id
	 * names its content). */
	r->schema_published = h;
	return 0;
}

/* Gathers the next message: records from the follower up to durable,
 * whole command groups, at most max bytes. 1 with [*data, *len) and
 * first..last; 0 when nothing is durable yet; an error. */
static int gather(struct cqrs_repl *r, uint64_t durable, size_t max, const void **data,
		  size_t *len, uint64_t *first, uint64_t *last)
{
	repl_follow *f = &r->f;
	size_t start_off, group_off;
	uint64_t start_next, group_next;
	const cqrs_jrec *rec;
	int rc = cqrs__follow_next(f, durable, &rec);

	if (rc == 2) /* the next record starts the next segment: enter it */
		rc = cqrs__follow_next(f, durable, &rec);
	if (rc == 2)
		return cqrs__fail(CQRS_ECORRUPT, "replication: segment %s holds no record %" PRIu64,
				  f->m.name, f->next);
	if (rc != 1)
		return rc;
	start_off = group_off = f->off - cqrs__jrec_span(rec);
	start_next = group_next = rec->seq;
	for (;;) {
		if (rec->flags & CQRS_JREC_CMD_END) {
			group_off = f->off;
			group_next = f->next;
		}
		rc = cqrs__follow_next(f, durable, &rec);
		if (rc < 0)
			return rc;
		if (rc != 1)
			break;
		/* Over the limit: end at the last whole group (a single group
		 * over it goes alone, within the server's max payload). */
		if (f->off - start_off > max && group_next != start_next)
			break;
	}
	/* Only whole groups (durable always ends one). */
	if (f->off != group_off) {
		f->off = group_off;
		f->next = group_next;
		f->roll = false;
	}
	if (group_next == start_next)
		return 0;
	*data = f->m.img + start_off;
	*len = group_off - start_off;
	*first = start_next;
	*last = group_next - 1;
	return 1;
}

static void *repl_main(void *arg)
{
	struct cqrs_repl *r = arg;
	cqrs_engine *e = r->e;
	uint32_t backoff = BACKOFF_MIN_MS;
	size_t max = e->cfg.replication_batch_bytes;

	while (!stopping(r)) {
		const void *data = NULL;
		size_t len = 0;
		uint64_t first = 0, last = 0, t0, durable;
		char id[64];
		int rc;

		if (!r->synced) {
			rc = resync(r);
			if (rc == CQRS_ECORRUPT) {
				set_state(r, CQRS_REPL_FAILED);
				break;
			}
			if (rc) {
				set_state(r, r->link.nc ? CQRS_REPL_SYNCING : CQRS_REPL_CONNECTING);
				sleep_ms(r, backoff);
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			backoff = BACKOFF_MIN_MS;
			if (!e->cfg.replication_batch_bytes) {
				int64_t mp = cqrs__link_max_payload(&r->link);
				max = mp > 2 * PAYLOAD_SLACK ? (size_t)mp - PAYLOAD_SLACK : PAYLOAD_SLACK;
			}
		}
		durable = durable_now(e);
		if (r->f.next > durable) {
			wait_durable(r, r->f.next - 1);
			continue;
		}
		rc = gather(r, durable, max, &data, &len, &first, &last);
		if (rc < 0) {
			cqrs__log(e, CQRS_LOG_ERROR, "replication: reading the journal: %s; not replicating",
				  cqrs_last_error());
			set_state(r, CQRS_REPL_FAILED);
			break;
		}
		if (rc == 0) {
			wait_durable(r, r->f.next - 1);
			continue;
		}
		if (cqrs__follow_entered(&r->f) || !r->schema_published) {
			rc = publish_schemas(r);
			if (rc) {
				if (rc < 0)
					count_error(r, "publishing the schemas");
				r->synced = false;
				continue;
			}
		}
		snprintf(id, sizeof id, "%s:%" PRIu64, r->link.engine, first);
		t0 = cqrs__mono_ns();
		rc = cqrs__link_publish(&r->link, r->link.subj, id, first, last, data, len);
		if (rc) {
			if (rc < 0)
				count_error(r, "publish");
			r->synced = false; /* the stream says what it holds */
			continue;
		}
		cqrs__hist_record(ctr_hist(e->ctr->repl_latency), cqrs__mono_ns() - t0);
		CTR_ADD(e->ctr, repl_messages, 1);
		CTR_ADD(e->ctr, repl_bytes, len);
		CTR_SET(e->ctr, repl_stream_seq, r->link.stream_last);
		if (first >= r->start_seq)
			r->run_bytes += len;
		else if (last >= r->start_seq)
			r->run_bytes += len / 2; /* straddles the start: an estimate */
		{
			/* relaxed: a statistic. */
			uint64_t db = atomic_load_explicit(&r->durable_bytes, memory_order_relaxed);
			CTR_SET(e->ctr, repl_lag_bytes, db > r->run_bytes ? db - r->run_bytes : 0);
		}
		replicated(r, last);
		if (r->failing) {
			cqrs__log(e, CQRS_LOG_INFO, "replication: streaming again at seq %" PRIu64
				  " after %" PRIu64 " failed attempts", last, r->failing);
			r->failing = 0;
		}
	}
	return NULL;
}

/* ---- start / stop ---------------------------------------------------------------- */

int cqrs__repl_start(cqrs_engine *e, uint64_t start_seq)
{
	struct cqrs_repl *r;
	int rc;

	if (!e->cfg.replication_urls || !e->cfg.replication_urls[0]) {
		CTR_SET(e->ctr, repl_state, CQRS_REPL_OFF);
		return 0;
	}
	r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->e = e;
	r->acks = e->cfg.ack_level == CQRS_ACK_REPLICATED;
	r->start_seq = start_seq;
	r->released = start_seq - 1;
	atomic_store_explicit(&r->replicated_seq, 0, memory_order_relaxed); /* before the thread */
	rc = cqrs__link_init(&r->link, e->name, e->cfg.replication_urls, e->cfg.replication_replicas,
			     WAIT_MS);
	if (rc) {
		free(r);
		return cqrs__fail(-EINVAL, "replication_urls: %s", rc == -ENOMEM ? "out of memory"
				  : "no URL, or more than 16");
	}
	rc = cqrs__follow_open(&r->f, e->journal_dir, e->name);
	if (rc) {
		cqrs__link_close(&r->link);
		free(r->link.url_buf);
		free(r);
		return rc;
	}
	e->repl = r;
	CTR_SET(e->ctr, repl_state, CQRS_REPL_CONNECTING);
	rc = pthread_create(&r->thread, NULL, repl_main, r);
	if (rc) {
		cqrs__repl_stop(e);
		return -rc;
	}
	r->started = true;
	pthread_setname_np(r->thread, "cqrs-replicator");
	return 0;
}

void cqrs__repl_stop(cqrs_engine *e)
{
	struct cqrs_repl *r = e->repl;

	if (!r)
		return;
	/* release: pairs with the thread's acquire in stopping(). */
	atomic_store_explicit(&r->stop, 1, memory_order_release);
	cqrs__futex_wake(&r->bell);
	if (r->started)
		pthread_join(r->thread, NULL);
	cqrs__follow_close(&r->f);
	cqrs__link_close(&r->link);
	free(r->link.url_buf);
	e->repl = NULL;
	free(r);
}
