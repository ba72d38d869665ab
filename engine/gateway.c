/*
 * engine/gateway.c - the command gateway's engine side: other processes
 * submit commands through client slots in the gateway segment (layout and
 * protocol: client/gateway_format.h; the hooks: engine/gateway.h).
 *
 * Everything here runs on the command thread, except open (before it
 * starts) and close (after it ended). No locks.
 *
 * Open
 *   Creates "/cqrs.<engine>.gw" (a dead predecessor's is marked RETIRED,
 *   STOPPED and unlinked first), lays out every slot's request ring (an
 *   MPSC ring whose consumer handle we create here and keep: its sizes and
 *   cursor live in our memory, so nothing a client writes into the ring
 *   header can move them) and reply ring, seals the segment, then publishes
 *   the directory in the control segment's gateway region (magic last) and
 *   points e->bell at the segment's doorbell so that clients can wake the
 *   sleeping command thread. CQRS_GATEWAY_SLOTS (1..1024, default 64) in the
 *   environment sets the slot count.
 *
 * Poll (every turn of the command loop)
 *   1. connect_seq moved: scan the slots' state words (connects, closes).
 *      reap_seq moved (a client found no free slot): check every occupied
 *      slot's owner (/proc start time), at most once per 20 ms. Every
 *      10 ms anyway, the liveness of one occupied slot's owner: a client
 *      that died is noticed within 10 ms x occupied slots.
 *   2. For each active slot: write parked answers (overflow) to its reply
 *      ring while there is room, then take up to min(quota - in flight,
 *      free tickets, max - taken) requests from its request ring. Each
 *      request is copied and checked (engine/gateway_check.c) before
 *      anything looks at it; a bad one is answered CQRS_EFORMAT at once; a
 *      good one goes through cqrs__process_command with a ticket from the
 *      pool whose on_done writes the answer when it is durable.
 *   A request ring the consumer finds impossible (CQRS_ECORRUPT: its tail
 *   was overwritten) or a reply ring whose head is impossible drops the
 *   client: state DROPPED, its answers in flight are discarded (new epoch),
 *   and the slot is reset once the client closes or dies.
 *
 * Tickets
 *   A pool of nslots x CQRS_GW_QUOTA gw_tickets, so a slot at its quota
 *   never starves the others; a ticket is taken per request and returned
 *   once its answer is in the reply ring (or discarded because its slot
 *   changed epoch). on_done runs on the command thread (ticket.h).
 *
 * Caveats
 *   - The segment is writable by the group (0660 by default): membership is
 *     the trust boundary. Nothing in the segment can make the engine read or
 *     write outside it or block, but a process with write access can
 *     disturb other clients' slots or the doorbell (the command thread then
 *     falls back to its 10 ms sleeps).
 *   - Resetting a slot lays its request ring out again (cqrs_mpsc_init:
 *     O(ring size), zeroed, handle built from our arguments), only once
 *     its owner closed or died; a client that keeps writing after it said
 *     CLOSED can only garble its successor's requests (answered CQRS_EFORMAT
 *     or skipped), never the engine's handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "client/gateway_format.h"
#include "cqrs_ring.h"
#include "engine/command.h"
#include "engine/doorbell.h"
#include "engine/engine_internal.h"
#include "core/errors.h"
#include "core/futex.h"
#include "engine/gateway.h"
#include "engine/gateway_check.h"
#include "engine/ticket.h"
#include "ringbuf/wait.h"
#include "shm/control.h"
#include "shm/segment.h"
#include "engine/submit.h"

#define NONE UINT32_MAX
#define LIVENESS_EVERY_NS UINT64_C(10000000)
#define REAP_EVERY_NS UINT64_C(20000000)

_Static_assert(offsetof(cqrs_gw_lines, bell_waiters) == offsetof(cqrs_gw_lines, bell_seq) +
		       offsetof(cqrs_bell, waiters) &&
		       sizeof(cqrs_bell) == 8,
	       "the segment's doorbell has cqrs_bell's layout");

/* relaxed: a statistic with one writer (the command thread). */
#define GW_ADD(g, field)                                                                       \
	atomic_store_explicit(&(g)->lines->field,                                              \
			      atomic_load_explicit(&(g)->lines->field, memory_order_relaxed) + 1, \
			      memory_order_relaxed)

typedef struct gw_ticket {
	ticket_impl t; /* first: on_done gets &t */
	uint64_t request_id;
	uint64_t epoch;
	uint32_t slot;
	uint32_t next; /* free list or the slot's overflow list */
} gw_ticket;

enum { PS_FREE = 0, PS_ACTIVE = 1, PS_DROPPED = 2, PS_BROKEN = 3 };

typedef struct gw_slot {
	cqrs_gw_slot *s;      /* shared */
	cqrs_gw_reply *reply; /* shared */
	void *req_mem;        /* shared */
	cqrs_mpsc *req;       /* our consumer handle */
	uint64_t epoch;
	uint64_t client_id;
	uint64_t reply_tail;  /* ours; the shared tail is a copy */
	uint32_t state;       /* PS_* */
	uint32_t outstanding; /* taken, answer not yet in the reply ring */
	uint32_t ovf_head, ovf_tail;
	uint32_t active_pos;
} gw_slot;

typedef struct gateway {
	cqrs_engine *e;
	cqrs_seg seg;
	cqrs__gw_params p;
	cqrs_gw_lines *lines;
	gw_slot *slots;
	uint32_t *active;
	uint32_t nactive;
	uint32_t rr;
	gw_ticket *pool;
	uint32_t pool_size, free_head, nfree;
	cqrs_gw_cmdtab tab;
	uint8_t *cmdbuf;
	size_t cmdbuf_cap;
	uint64_t connect_seen, reap_seen;
	uint64_t next_live_ns, next_reap_ns;
	uint32_t live_cursor;
	int reap_pending;
	int stopping;
	uint64_t generation, nconnects;
} gateway;

typedef struct poll_ctx {
	gateway *g;
	gw_slot *sp;
	uint32_t idx;
} poll_ctx;

/* splitmix64's finalizer: a bijection, so distinct inputs stay distinct. */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* ---- ticket pool -------------------------------------------------------- */

static gw_ticket *pool_get(gateway *g)
{
	gw_ticket *t;

	if (g->free_head == NONE)
		return NULL;
	t = &g->pool[g->free_head];
	g->free_head = t->next;
	g->nfree--;
	return t;
}

static void pool_put(gateway *g, gw_ticket *t)
{
	t->next = g->free_head;
	g->free_head = (uint32_t)(t - g->pool);
	g->nfree++;
}

/* ---- slots -------------------------------------------------------------- */

static void active_add(gateway *g, uint32_t i)
{
	g->slots[i].active_pos = g->nactive;
	g->active[g->nactive++] = i;
}

static void active_remove(gateway *g, uint32_t i)
{
	uint32_t pos = g->slots[i].active_pos, last;

	if (pos == NONE)
		return;
	last = g->active[--g->nactive];
	g->active[pos] = last;
	g->slots[last].active_pos = pos;
	g->slots[i].active_pos = NONE;
}

/* Wakes a client sleeping on its reply ring so that it re-checks the state. */
static void wake_client(gw_slot *sp)
{
	/* release: a woken client that reads the new seq sees what we stored
	 * before (state words); pairs with its acquire load of seq. */
	atomic_fetch_add_explicit(&sp->reply->seq, 1, memory_order_release);
	cqrs__futex_wake(&sp->reply->seq);
}

static void free_overflow(gateway *g, gw_slot *sp)
{
	while (sp->ovf_head != NONE) {
		gw_ticket *t = &g->pool[sp->ovf_head];
		sp->ovf_head = t->next;
		pool_put(g, t);
	}
	sp->ovf_tail = NONE;
}

/* A new epoch: answers in flight for the old one are discarded in on_done. */
static void new_epoch(gw_slot *sp)
{
	sp->epoch++;
	/* relaxed: informational for the client; published with the state CAS. */
	atomic_store_explicit(&sp->s->epoch, sp->epoch, memory_order_relaxed);
}

/* Lays out slot i's request ring and reply cursors afresh and frees the
 * slot (owner 0, release). The previous owner is dead or has closed. */
static void reset_slot(gateway *g, uint32_t i, int dead)
{
	gw_slot *sp = &g->slots[i];
	int rc;

	if (sp->state == PS_ACTIVE)
		active_remove(g, i);
	new_epoch(sp);
	free_overflow(g, sp);
	sp->outstanding = 0;
	sp->client_id = 0;
	/* relaxed: published by the owner release below. */
	atomic_store_explicit(&sp->s->client_id, 0, memory_order_relaxed);
	cqrs_mpsc_close(sp->req);
	sp->req = NULL;
	/* init zeroes the whole ring (positions restart at 0: no header of an
	 * earlier use may pass for one) and builds our handle from its
	 * arguments, not from the shared header. */
	rc = cqrs_mpsc_init(sp->req_mem, (size_t)g->p.req_size, g->p.req_capacity,
			    CQRS_GW_REQ_PRODUCERS, g->p.claim_timeout_ns, &sp->req);
	if (rc) {
		/* Out of memory for a handle: the slot stays taken (owner kept). */
		sp->state = PS_BROKEN;
		cqrs__log(g->e, CQRS_LOG_ERROR, "gateway: slot %u unusable: %s", i, cqrs_strerror(rc));
		return;
	}
	(void)cqrs_mpsc_ready(sp->req); /* latch the consumer on the fresh head */
	/* relaxed: all published by the owner release below. */
	atomic_store_explicit(&sp->reply->tail, sp->reply_tail, memory_order_relaxed);
	atomic_store_explicit(&sp->reply->head, sp->reply_tail, memory_order_relaxed);
	atomic_store_explicit(&sp->reply->backlog, 0, memory_order_relaxed);
	atomic_store_explicit(&sp->reply->waiters, 0, memory_order_relaxed);
	atomic_store_explicit(&sp->s->state, CQRS_GW_FREE, memory_order_relaxed);
	sp->state = PS_FREE;
	/* release: the fresh rings and state before the slot looks free; pairs
	 * with the connecting client's acquire CAS of the owner. */
	atomic_store_explicit(&sp->s->owner, 0, memory_order_release);
	if (dead)
		GW_ADD(g, reclaims);
	else
		GW_ADD(g, disconnects);
}

/* Drops an active client that broke its rings. Never resets the slot here:
 * we may be inside a poll of its request ring. */
static void drop_slot(gateway *g, uint32_t i)
{
	gw_slot *sp = &g->slots[i];
	uint32_t exp = CQRS_GW_ACTIVE;

	if (sp->state != PS_ACTIVE)
		return;
	active_remove(g, i);
	sp->state = PS_DROPPED;
	new_epoch(sp);
	free_overflow(g, sp);
	sp->outstanding = 0;
	/* release: the new epoch before the state; pairs with the client's
	 * acquire load of the state. A client that already closed keeps CLOSED
	 * (the next scan resets the slot). */
	atomic_compare_exchange_strong_explicit(&sp->s->state, &exp, CQRS_GW_DROPPED,
						memory_order_release, memory_order_relaxed);
	wake_client(sp);
	GW_ADD(g, drops);
	/* relaxed: our own counter. Logged at 1, 2, 4, 8...: a hostile client
	 * must not flood the log. */
	uint64_t n = atomic_load_explicit(&g->lines->drops, memory_order_relaxed);
	if ((n & (n - 1)) == 0)
		cqrs__log(g->e, CQRS_LOG_WARN, "gateway: dropped the client in slot %u (broken ring; "
			  "%llu drops so far)", i, (unsigned long long)n);
}

static void accept_slot(gateway *g, uint32_t i)
{
	gw_slot *sp = &g->slots[i];
	uint32_t exp = CQRS_GW_CONNECTING;
	/* acquire: pairs with the client's acquire-release CAS of the owner. */
	uint64_t owner = atomic_load_explicit(&sp->s->owner, memory_order_acquire);

	if (owner == 0)
		return; /* not claimed: ignore a stray state word */
	g->nconnects++;
	sp->client_id = mix64(g->generation + g->nconnects * UINT64_C(0x9e3779b97f4a7c15)) |
			UINT64_C(1) << 63;
	new_epoch(sp);
	sp->outstanding = 0;
	/* relaxed: published by the state CAS below. */
	atomic_store_explicit(&sp->s->client_id, sp->client_id, memory_order_relaxed);
	/* release: client id and epoch before ACTIVE; pairs with the client's
	 * acquire load of the state. */
	if (!atomic_compare_exchange_strong_explicit(&sp->s->state, &exp, CQRS_GW_ACTIVE,
						     memory_order_release, memory_order_relaxed))
		return; /* changed its mind (CLOSED): the liveness pass resets it */
	sp->state = PS_ACTIVE;
	active_add(g, i);
	GW_ADD(g, connects);
}

/* Looks at slot i's shared words: a connect, a close, a dead owner.
 * Returns 1 if the slot is occupied. Cold (may read /proc). */
static int check_slot(gateway *g, uint32_t i, int liveness)
{
	gw_slot *sp = &g->slots[i];
	/* acquire: pairs with the client's release CAS of its state (and the
	 * owner claim before it). */
	uint32_t st = atomic_load_explicit(&sp->s->state, memory_order_acquire);
	uint64_t owner = atomic_load_explicit(&sp->s->owner, memory_order_acquire);

	if (owner == 0 || sp->state == PS_BROKEN)
		return 0;
	if (sp->state == PS_FREE && st == CQRS_GW_CONNECTING)
		accept_slot(g, i);
	else if ((sp->state == PS_ACTIVE || sp->state == PS_DROPPED) && st == CQRS_GW_CLOSED) {
		reset_slot(g, i, 0);
		return 1;
	}
	if (liveness && !cqrs__seg_owner_alive(owner))
		reset_slot(g, i, 1);
	return 1;
}

/* One occupied slot's owner per call, round robin. */
static void liveness_step(gateway *g)
{
	for (uint32_t k = 0; k < g->p.nslots; k++) {
		uint32_t i = g->live_cursor++ % g->p.nslots;
		if (check_slot(g, i, 1))
			return;
	}
}

/* ---- answers ------------------------------------------------------------- */

/* Writes t's answer into sp's reply ring. 0, -EAGAIN (full), CQRS_ECORRUPT
 * (the client's head is impossible). O(1). */
static int reply_put(gateway *g, gw_slot *sp, const gw_ticket *t)
{
	cqrs_gw_reply *r = sp->reply;
	/* seq_cst: pairs with the client's seq_cst store of head (backlog
	 * protocol); as acquire, its reads of entries we overwrite are over. */
	uint64_t head = atomic_load_explicit(&r->head, memory_order_seq_cst);
	uint64_t used = sp->reply_tail - head;
	cqrs_gw_entry *en;

	if (used > g->p.reply_entries)
		return CQRS_ECORRUPT;
	if (used == g->p.reply_entries)
		return -EAGAIN;
	en = cqrs__gw_entry(r, &g->p, sp->reply_tail);
	en->request_id = t->request_id;
	en->seq = t->t.seq;
	en->status = t->t.status;
	en->reserved = 0;
	memcpy(en->reason, t->t.reason, sizeof en->reason);
	en->reason[sizeof en->reason - 1] = 0;
	sp->reply_tail++;
	/* seq_cst RMW: release publishes the entry (pairs with the client's
	 * acquire load of tail); seq_cst pairs with the client's waiters
	 * increment (futex protocol, ringbuf/wait.h). */
	atomic_exchange_explicit(&r->tail, sp->reply_tail, memory_order_seq_cst);
	cqrs__ring_wake(&r->seq, &r->waiters);
	return 0;
}

/* Writes parked answers while they fit. */
static void flush_overflow(gateway *g, uint32_t i)
{
	gw_slot *sp = &g->slots[i];

	while (sp->ovf_head != NONE) {
		gw_ticket *t = &g->pool[sp->ovf_head];
		int rc = reply_put(g, sp, t);
		if (rc == -EAGAIN)
			return;
		if (rc) {
			drop_slot(g, i);
			return;
		}
		sp->ovf_head = t->next;
		sp->outstanding--;
		pool_put(g, t);
	}
	sp->ovf_tail = NONE;
	/* relaxed: a hint for the client; a stale 1 costs one extra bell. */
	atomic_store_explicit(&sp->reply->backlog, 0, memory_order_relaxed);
}

/* on_done of every gateway ticket (command thread). */
static void gw_on_done(ticket_impl *ti)
{
	gw_ticket *t = (gw_ticket *)(void *)ti;
	gateway *g = ti->cookie;
	gw_slot *sp = &g->slots[t->slot];
	int rc;

	if (t->epoch != sp->epoch || sp->state != PS_ACTIVE) {
		pool_put(g, t); /* the client left or was dropped */
		return;
	}
	if (sp->ovf_head == NONE) {
		rc = reply_put(g, sp, t);
		if (rc == 0) {
			sp->outstanding--;
			pool_put(g, t);
			return;
		}
		if (rc != -EAGAIN) {
			pool_put(g, t);
			drop_slot(g, t->slot);
			return;
		}
	}
	/* Park it, in order behind the others. */
	t->next = NONE;
	if (sp->ovf_head == NONE) {
		sp->ovf_head = sp->ovf_tail = (uint32_t)(t - g->pool);
		GW_ADD(g, overflows);
		/* seq_cst: pairs with the client's seq_cst head store then backlog
		 * load: either it sees the flag and rings, or we see its room. */
		atomic_store_explicit(&sp->reply->backlog, 1, memory_order_seq_cst);
		flush_overflow(g, t->slot);
	} else {
		g->pool[sp->ovf_tail].next = (uint32_t)(t - g->pool);
		sp->ovf_tail = (uint32_t)(t - g->pool);
	}
}

/* ---- requests ------------------------------------------------------------ */

static int on_request(void *arg, uint32_t type, const void *data, uint32_t len)
{
	poll_ctx *c = arg;
	gateway *g = c->g;
	gw_slot *sp = c->sp;
	char why[CQRS_GW_REASON];
	cqrs__gw_req req;
	gw_ticket *t;
	sub_hdr h;
	int rc;

	if (sp->state != PS_ACTIVE || !(t = pool_get(g)))
		return 1; /* dropped meanwhile (the record is lost with the client) */
	t->slot = c->idx;
	t->epoch = sp->epoch;
	t->t.on_done = gw_on_done;
	t->t.cookie = g;
	t->t.status = 0;
	t->t.seq = 0;
	t->t.reason[0] = 0;
	sp->outstanding++;
	GW_ADD(g, requests);
	/* relaxed: per-slot statistic, one writer. */
	atomic_store_explicit(&sp->s->requests,
			      atomic_load_explicit(&sp->s->requests, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	rc = cqrs__gw_check_request(&g->tab, type, data, len, &req, g->cmdbuf, g->cmdbuf_cap, why);
	t->request_id = req.request_id;
	if (rc) {
		GW_ADD(g, malformed);
		/* relaxed: per-slot statistic, one writer. */
		atomic_store_explicit(&sp->s->malformed,
				      atomic_load_explicit(&sp->s->malformed, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		cqrs__ticket_complete(&t->t, CQRS_EFORMAT, 0, why);
		return 0;
	}
	h = (sub_hdr){ .ticket = &t->t, .type = req.type, .size = req.size,
		       .aggregate_id = req.aggregate_id, .expected_version = req.expected_version,
		       .client_id = sp->client_id, .client_seq = req.client_seq, .flags = req.flags,
		       .submit_ns = cqrs__mono_ns() };
	cqrs__process_command(g->e, &h, g->cmdbuf);
	return cqrs__acks_full(g->e);
}

uint32_t cqrs__gateway_poll(struct cqrs_engine *e, uint32_t max)
{
	gateway *g = e->gateway;
	uint64_t v, now;
	uint32_t n = 0, cnt;

	/* acquire: pairs with cqrs_engine_stop's release CAS of the state. */
	if (!g->stopping && atomic_load_explicit(&e->state, memory_order_acquire) >= ENGINE_STOPPING) {
		/* From now on no request is taken; those taken are still answered. */
		g->stopping = 1;
		/* release: pairs with the clients' acquire load of the state. */
		atomic_store_explicit(&g->lines->state, CQRS_GW_STOPPING, memory_order_release);
	}
	/* acquire: pairs with the clients' seq_cst bump after their state CAS. */
	v = atomic_load_explicit(&g->lines->connect_seq, memory_order_acquire);
	if (v != g->connect_seen) {
		g->connect_seen = v;
		for (uint32_t i = 0; i < g->p.nslots; i++)
			check_slot(g, i, 0);
	}
	/* acquire: as above, for reap requests. */
	v = atomic_load_explicit(&g->lines->reap_seq, memory_order_acquire);
	if (v != g->reap_seen) {
		g->reap_seen = v;
		g->reap_pending = 1;
	}
	now = cqrs__mono_ns();
	/* A full reap reads /proc for every occupied slot: at most one per
	 * REAP_EVERY_NS, however often clients ask. */
	if (g->reap_pending && now >= g->next_reap_ns) {
		g->reap_pending = 0;
		g->next_reap_ns = now + REAP_EVERY_NS;
		for (uint32_t i = 0; i < g->p.nslots; i++)
			check_slot(g, i, 1);
	}
	if (now >= g->next_live_ns) {
		g->next_live_ns = now + LIVENESS_EVERY_NS;
		liveness_step(g);
	}
	cnt = g->nactive;
	for (uint32_t k = 0; k < cnt && n < max; k++) {
		uint32_t pos = (g->rr + k) % cnt, i, room;
		gw_slot *sp;
		poll_ctx c;
		int rc;

		if (pos >= g->nactive)
			continue; /* the list shrank under us: next turn */
		i = g->active[pos];
		sp = &g->slots[i];
		if (sp->ovf_head != NONE)
			flush_overflow(g, i);
		if (sp->state != PS_ACTIVE || g->stopping)
			continue;
		room = g->p.quota - sp->outstanding;
		if (room > g->nfree)
			room = g->nfree;
		if (room > max - n)
			room = max - n;
		if (room == 0)
			continue;
		c = (poll_ctx){ g, sp, i };
		rc = cqrs_mpsc_poll(sp->req, on_request, &c, room);
		if (rc < 0)
			drop_slot(g, i);
		else
			n += (uint32_t)rc;
		if (cqrs__acks_full(e))
			break;
	}
	g->rr++;
	return n;
}

int cqrs__gateway_ready(struct cqrs_engine *e)
{
	gateway *g = e->gateway;

	/* seq_cst: the command thread's re-check before it sleeps on the bell;
	 * pairs with the clients' seq_cst bumps (ringbuf/wait.h). */
	if (atomic_load_explicit(&g->lines->connect_seq, memory_order_seq_cst) != g->connect_seen ||
	    atomic_load_explicit(&g->lines->reap_seq, memory_order_seq_cst) != g->reap_seen)
		return 1;
	for (uint32_t k = 0; k < g->nactive; k++) {
		gw_slot *sp = &g->slots[g->active[k]];
		if (sp->ovf_head != NONE &&
		    /* seq_cst: pairs with the client's head store (backlog protocol). */
		    sp->reply_tail - atomic_load_explicit(&sp->reply->head, memory_order_seq_cst) <
			    g->p.reply_entries)
			return 1;
		if (!g->stopping && sp->outstanding < g->p.quota && g->nfree && cqrs_mpsc_ready(sp->req))
			return 1;
	}
	return 0;
}

/* ---- open / close -------------------------------------------------------- */

/* A dead engine's gateway segment: mark it retired and stopped so that
 * clients still mapping it give up, then unlink it. */
static int retire_stale(const char *name)
{
	cqrs_seg old;

	if (cqrs__seg_open(&old, name, CQRS_GW_SEG_KIND, 1) == 0) {
		/* release: pairs with the clients' acquire loads of flags/state. */
		atomic_fetch_or_explicit(&cqrs__seg_live_line(&old)->flags, CQRS_SEG_RETIRED,
					 memory_order_release);
		/* release: pairs with the clients' acquire load of the state. */
		atomic_store_explicit(&cqrs__gw_lines(old.base)->state, CQRS_GW_STOPPED,
				      memory_order_release);
		cqrs__seg_close(&old);
	}
	return cqrs__seg_remove_stale(name);
}

static uint32_t slots_from_env(void)
{
	const char *s = getenv("CQRS_GATEWAY_SLOTS");
	long v = s && *s ? strtol(s, NULL, 10) : 0;

	return v >= 1 && v <= (long)CQRS_GW_MAX_SLOTS ? (uint32_t)v : CQRS_GW_DEFAULT_SLOTS;
}

static void gateway_free(gateway *g)
{
	if (!g)
		return;
	if (g->slots)
		for (uint32_t i = 0; i < g->p.nslots; i++)
			cqrs_mpsc_close(g->slots[i].req);
	free(g->slots);
	free(g->active);
	free(g->pool);
	free(g->cmdbuf);
	free(g);
}

static int publish_dir(gateway *g, cqrs_engine *e)
{
	cqrs_ctl *ctl = e->ctl;
	uint64_t size;
	cqrs_gw_dir *d = cqrs__ctl_region(ctl, CQRS_CTL_GATEWAY, &size);
	uint32_t n = 0;

	if (!d || size < sizeof *d)
		return cqrs__fail(-EINVAL, "control segment gateway region too small");
	memset((uint8_t *)d + sizeof d->magic, 0, sizeof *d - sizeof d->magic);
	d->version = CQRS_GW_VERSION;
	d->dir_size = sizeof *d;
	d->generation = g->generation;
	d->seg_size = g->seg.size;
	memcpy(d->seg_name, g->seg.name, sizeof d->seg_name);
	d->nslots = g->p.nslots;
	/* The control's command schemas are in ascending type id order. */
	for (uint32_t t = 1; t < CQRS_GW_MAX_TYPES; t++)
		if (e->cmds[t].schema) {
			d->cmd_type[n] = t;
			d->cmd_size[n] = e->cmds[t].schema->size;
			n++;
		}
	d->ncmds = n;
	if (n != cqrs__ctl_command_count(ctl))
		return cqrs__fail(-EINVAL, "gateway: %u command types but %u schemas published", n,
				 cqrs__ctl_command_count(ctl));
	/* release: the directory before its magic; pairs with the clients'
	 * acquire load of the magic. */
	atomic_store_explicit(&d->magic, CQRS_GW_DIR_MAGIC, memory_order_release);
	return 0;
}

int cqrs__gateway_open(struct cqrs_engine *e)
{
	char name[CQRS_SEG_NAME_MAX];
	unsigned mode = e->cfg.shm_mode ? e->cfg.shm_mode : CQRS_SEG_DEFAULT_MODE;
	uint64_t maxcmd = 8, need;
	gateway *g;
	int rc;

	e->gateway = NULL;
	rc = cqrs__gw_seg_name(name, sizeof name, e->name);
	if (rc)
		return rc;
	g = calloc(1, sizeof *g);
	if (!g)
		return -ENOMEM;
	g->e = e;
	for (uint32_t t = 1; t < CQRS_GW_MAX_TYPES; t++)
		if (e->cmds[t].schema) {
			g->tab.size[t] = e->cmds[t].schema->size;
			if (g->tab.size[t] > maxcmd)
				maxcmd = g->tab.size[t];
		}
	g->p.nslots = slots_from_env();
	g->p.reply_entries = CQRS_GW_REPLY_ENTRIES;
	g->p.req_capacity = CQRS_GW_REQ_MIN_CAPACITY;
	need = 4 * (CQRS_MPSC_REC_HDR + sizeof(cqrs__gw_req) + maxcmd);
	while (g->p.req_capacity < need && g->p.req_capacity < CQRS_MPSC_MAX_CAPACITY)
		g->p.req_capacity <<= 1;
	g->p.claim_timeout_ns = CQRS_GW_CLAIM_TIMEOUT_NS;
	if (cqrs__gw_layout(&g->p)) {
		free(g);
		return cqrs__fail(-EINVAL, "gateway layout out of range");
	}
	g->cmdbuf_cap = maxcmd;
	g->cmdbuf = malloc(maxcmd);
	g->slots = calloc(g->p.nslots, sizeof *g->slots);
	g->active = calloc(g->p.nslots, sizeof *g->active);
	g->pool_size = g->p.nslots * g->p.quota;
	g->pool = calloc(g->pool_size, sizeof *g->pool);
	if (!g->cmdbuf || !g->slots || !g->active || !g->pool) {
		gateway_free(g);
		return -ENOMEM;
	}
	g->free_head = NONE;
	for (uint32_t k = g->pool_size; k-- > 0;)
		pool_put(g, &g->pool[k]);

	/* readers of the views may write here: same rule as the waiter board */
	rc = cqrs__seg_create(&g->seg, name, g->p.total_size, mode | ((mode & 0444) >> 1));
	if (rc == CQRS_ESTALE) {
		cqrs__log(e, CQRS_LOG_INFO, "engine %s: replacing the gateway of a dead engine", e->name);
		rc = retire_stale(name);
		if (rc == 0 || rc == -ENOENT)
			rc = cqrs__seg_create(&g->seg, name, g->p.total_size, mode | ((mode & 0444) >> 1));
	}
	if (rc) {
		gateway_free(g);
		return rc;
	}
	g->generation = mix64((uint64_t)cqrs__wall_ns() ^ (uint64_t)getpid() << 40) | 1;
	cqrs__seg_init_header(&g->seg, CQRS_GW_SEG_KIND, e->name, NULL, g->generation);
	memcpy(g->seg.base + CQRS_GW_PARAMS_OFF, &g->p, sizeof g->p);
	g->lines = cqrs__gw_lines(g->seg.base);
	/* relaxed: published by the seal's release of the magic. */
	atomic_store_explicit(&g->lines->state, CQRS_GW_RUNNING, memory_order_relaxed);
	for (uint32_t i = 0; i < g->p.nslots; i++) {
		gw_slot *sp = &g->slots[i];
		sp->s = cqrs__gw_slot(g->seg.base, &g->p, i);
		sp->req_mem = cqrs__gw_req_mem(sp->s, &g->p);
		sp->reply = cqrs__gw_reply(sp->s, &g->p);
		sp->ovf_head = sp->ovf_tail = NONE;
		sp->active_pos = NONE;
		rc = cqrs_mpsc_init(sp->req_mem, (size_t)g->p.req_size, g->p.req_capacity,
				    CQRS_GW_REQ_PRODUCERS, g->p.claim_timeout_ns, &sp->req);
		if (rc)
			break;
		(void)cqrs_mpsc_ready(sp->req); /* latch the consumer on head 0 */
	}
	if (!rc) {
		cqrs__seg_seal(&g->seg);
		rc = publish_dir(g, e);
	}
	if (rc) {
		cqrs__seg_unlink(g->seg.name);
		cqrs__seg_close(&g->seg);
		gateway_free(g);
		return rc;
	}
	e->bell = (cqrs_bell *)(void *)&g->lines->bell_seq;
	e->gateway = g;
	return 0;
}

void cqrs__gateway_close(struct cqrs_engine *e)
{
	gateway *g = e->gateway;

	if (!g)
		return;
	/* release: every answer written before is visible to a client that sees
	 * STOPPED (pairs with its acquire load). */
	atomic_store_explicit(&g->lines->state, CQRS_GW_STOPPED, memory_order_release);
	/* release: as above, for clients that check the live line. */
	atomic_fetch_or_explicit(&cqrs__seg_live_line(&g->seg)->flags, CQRS_SEG_RETIRED,
				 memory_order_release);
	for (uint32_t i = 0; i < g->p.nslots; i++)
		/* relaxed: only decides whom to wake. */
		if (atomic_load_explicit(&g->slots[i].s->owner, memory_order_relaxed))
			wake_client(&g->slots[i]);
	e->bell = &e->own_bell;
	e->gateway = NULL;
	cqrs__seg_unlink(g->seg.name);
	cqrs__seg_close(&g->seg);
	gateway_free(g);
}
