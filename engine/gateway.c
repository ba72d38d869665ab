/*
 * engine/gateway.c - the command gateway's engine side as the command
 * thread runs it: take requests from each live connection's request ring,
 * answer them into that connection's reply ring (layout and protocol:
 * client/gateway_format.h; the hooks: engine/gateway.h). Connections are
 * accepted, checked and torn down by the gateway thread
 * (engine/gateway_accept.c); the two meet in engine/gateway_internal.h.
 *
 * Poll (every turn of the command loop)
 *   1. `changes` moved: scan the slots (cold, O(max clients)): adopt READY
 *      ones, retire LIVE ones whose socket hung up.
 *   2. For each live connection: write its parked answers (overflow) while
 *      its reply ring has room, then take up to min(free tickets, max -
 *      taken) requests from its request ring. Each request is copied and
 *      checked (engine/gateway_check.c) before anything looks at it; a bad
 *      one is answered CQRS_EFORMAT at once; a good one goes through
 *      cqrs__process_command with one of the connection's tickets, whose
 *      on_done writes the answer once it is durable.
 *   A request ring the consumer finds broken (CQRS_ECORRUPT, or records it
 *   had to skip as corrupt) or a reply ring whose head is impossible drops
 *   the client: its connection memory says DROPPED, the gateway thread
 *   closes its socket, and nothing it wrote went anywhere but its own
 *   rings. Counter gw_drops; a log line at the 1st, 2nd, 4th, 8th... drop.
 *
 * Tickets
 *   Each connection has its own CQRS_GW_QUOTA tickets (allocated with the
 *   connection), so one at its quota never starves another; a ticket is
 *   taken per request and returned once its answer is in the reply ring
 *   (or discarded: the connection is retiring). on_done runs on the
 *   command thread (ticket.h). A retiring slot is handed back only when
 *   all its tickets are back.
 *
 * Hot path cost: per request, one MPSC record read, a copy and check, one
 * reply entry written; a futex_wake only when the client sleeps. No
 * syscall otherwise, no allocation, no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/futex.h"
#include "cqrs_ring.h"
#include "engine/command.h"
#include "engine/counters.h"
#include "engine/doorbell.h"
#include "engine/engine_internal.h"
#include "engine/gateway.h"
#include "engine/gateway_internal.h"
#include "engine/ticket.h"
#include "ringbuf/wait.h"
#include "shm/control.h"

_Static_assert(offsetof(cqrs_gw_info, bell_waiters) == offsetof(cqrs_gw_info, bell_seq) +
		       offsetof(cqrs_bell, waiters) &&
		       sizeof(cqrs_bell) == 8,
	       "the engine page's doorbell has cqrs_bell's layout");

/* ---- tickets ------------------------------------------------------------- */

static gw_ticket *ticket_get(gw_conn *c)
{
	gw_ticket *t;

	if (c->free_head == GW_NONE)
		return NULL;
	t = &c->tickets[c->free_head];
	c->free_head = t->next;
	c->nfree--;
	return t;
}

static void ticket_put(gw_conn *c, gw_ticket *t)
{
	t->next = c->free_head;
	c->free_head = (uint32_t)(t - c->tickets);
	c->nfree++;
}

/* ---- slots --------------------------------------------------------------- */

static void active_add(gateway *g, gw_conn *c)
{
	c->active_pos = g->nactive;
	g->active[g->nactive++] = c->index;
}

static void active_remove(gateway *g, gw_conn *c)
{
	uint32_t pos = c->active_pos, last;

	if (pos == GW_NONE)
		return;
	last = g->active[--g->nactive];
	g->active[pos] = last;
	g->conns[last].active_pos = pos;
	c->active_pos = GW_NONE;
}

/* Wakes a client sleeping on its reply ring so that it re-checks states. */
static void wake_client(gw_conn *c)
{
	/* release: a woken client that reads the new seq sees what we stored
	 * before (states); pairs with its acquire load of seq. */
	atomic_fetch_add_explicit(&c->reply->seq, 1, memory_order_release);
	cqrs__futex_wake(&c->reply->seq);
}

static void free_overflow(gw_conn *c)
{
	while (c->ovf_head != GW_NONE) {
		gw_ticket *t = &c->tickets[c->ovf_head];
		c->ovf_head = t->next;
		ticket_put(c, t);
	}
	c->ovf_tail = GW_NONE;
}

/* RETIRING with every ticket back: the slot goes back to the gateway
 * thread at the end of this poll (finish), not now: we may be inside a
 * poll of its request ring, which touches its memory until it returns. */
static void maybe_done(gateway *g, gw_conn *c)
{
	/* relaxed: only this thread writes st while the slot is ours. */
	if (atomic_load_explicit(&c->st, memory_order_relaxed) != GS_RETIRING ||
	    c->nfree != CQRS_GW_QUOTA || c->finishing)
		return;
	c->finishing = 1;
	g->finishing[g->nfinishing++] = c->index;
}

/* Hands finished slots to the gateway thread (one eventfd write). */
static void finish(gateway *g)
{
	if (g->nfinishing == 0)
		return;
	for (uint32_t k = 0; k < g->nfinishing; k++) {
		gw_conn *c = &g->conns[g->finishing[k]];
		c->finishing = 0;
		/* release: our last use of the slot's memory and tickets before
		 * the gateway thread frees them; pairs with its acquire load. */
		atomic_store_explicit(&c->st, GS_DONE, memory_order_release);
	}
	g->nfinishing = 0;
	cqrs__gw_notify(g);
}

static void retire(gateway *g, gw_conn *c)
{
	active_remove(g, c);
	free_overflow(c);
	/* relaxed: this thread owns the slot until DONE. */
	atomic_store_explicit(&c->st, GS_RETIRING, memory_order_relaxed);
	maybe_done(g, c);
}

/* Drops a live client that broke its rings. */
static void drop_conn(gateway *g, gw_conn *c, const char *why)
{
	uint64_t n;

	/* relaxed: only this thread changes a LIVE slot's state. */
	if (atomic_load_explicit(&c->st, memory_order_relaxed) != GS_LIVE)
		return;
	/* release: pairs with the client's acquire load of its state. */
	atomic_store_explicit(&c->hdr->state, CQRS_GW_DROPPED, memory_order_release);
	wake_client(c);
	retire(g, c);
	CTR_ADD(g->e->ctr, gw_drops, 1);
	n = CTR_GET(g->e->ctr, gw_drops);
	/* A hostile client must not flood the log: the 1st, 2nd, 4th, ... */
	if ((n & (n - 1)) == 0)
		cqrs__log(g->e, CQRS_LOG_WARN, "gateway: dropped client %llu (pid %d, uid %u): %s "
			  "(%llu drops so far)", (unsigned long long)c->client_id, (int)c->pid,
			  (unsigned)c->uid, why, (unsigned long long)n);
}

/* Cold: connects and hangups the gateway thread announced. */
static void scan(gateway *g)
{
	for (uint32_t i = 0; i < g->max_clients; i++) {
		gw_conn *c = &g->conns[i];
		/* acquire: pairs with the gateway thread's release of READY (the
		 * slot's fields written before). */
		uint32_t st = atomic_load_explicit(&c->st, memory_order_acquire);

		if (st == GS_READY) {
			/* relaxed: the slot is ours from here on. */
			atomic_store_explicit(&c->st, GS_LIVE, memory_order_relaxed);
			c->active_pos = GW_NONE;
			active_add(g, c);
			st = GS_LIVE;
		}
		/* acquire: pairs with the gateway thread's release of hup. */
		if (st == GS_LIVE && atomic_load_explicit(&c->hup, memory_order_acquire))
			retire(g, c);
	}
}

/* ---- answers ------------------------------------------------------------- */

/* Writes t's answer into c's reply ring. 0, -EAGAIN (full), CQRS_ECORRUPT
 * (the client's head is impossible). O(1). */
static int reply_put(gw_conn *c, const gw_ticket *t)
{
	cqrs_gw_reply *r = c->reply;
	uint32_t entries = CQRS_GW_REPLY_ENTRIES;
	/* seq_cst: pairs with the client's seq_cst exchange of head (backlog
	 * protocol); as acquire, its reads of entries we overwrite are over. */
	uint64_t head = atomic_load_explicit(&r->head, memory_order_seq_cst);
	uint64_t used = c->reply_tail - head;
	cqrs_gw_entry *en;

	if (used > entries)
		return CQRS_ECORRUPT;
	if (used == entries)
		return -EAGAIN;
	en = cqrs__gw_entry(r, entries, c->reply_tail);
	en->request_id = t->request_id;
	en->seq = t->t.seq;
	en->status = t->t.status;
	en->reserved = 0;
	memcpy(en->reason, t->t.reason, sizeof en->reason);
	en->reason[sizeof en->reason - 1] = 0;
	c->reply_tail++;
	/* seq_cst RMW: release publishes the entry (pairs with the client's
	 * acquire load of tail); seq_cst pairs with the client's waiters
	 * increment (futex protocol, ringbuf/wait.h). */
	atomic_exchange_explicit(&r->tail, c->reply_tail, memory_order_seq_cst);
	cqrs__ring_wake(&r->seq, &r->waiters);
	return 0;
}

/* Writes parked answers while they fit. */
static void flush_overflow(gateway *g, gw_conn *c)
{
	while (c->ovf_head != GW_NONE) {
		gw_ticket *t = &c->tickets[c->ovf_head];
		int rc = reply_put(c, t);
		if (rc == -EAGAIN)
			return;
		if (rc) {
			drop_conn(g, c, "impossible reply ring head");
			return;
		}
		c->ovf_head = t->next;
		ticket_put(c, t);
	}
	c->ovf_tail = GW_NONE;
	/* relaxed: a hint for the client; a stale 1 costs one extra bell. */
	atomic_store_explicit(&c->reply->backlog, 0, memory_order_relaxed);
}

/* on_done of every gateway ticket (command thread). */
static void gw_on_done(ticket_impl *ti)
{
	gw_ticket *t = (gw_ticket *)(void *)ti;
	gateway *g = ti->cookie;
	gw_conn *c = t->conn;
	uint32_t ti_idx = (uint32_t)(t - c->tickets);
	int rc;

	/* relaxed: only this thread writes st while the slot is ours. */
	if (atomic_load_explicit(&c->st, memory_order_relaxed) != GS_LIVE) {
		ticket_put(c, t); /* the client left or was dropped */
		maybe_done(g, c);
		return;
	}
	if (c->ovf_head == GW_NONE) {
		rc = reply_put(c, t);
		if (rc == 0) {
			ticket_put(c, t);
			return;
		}
		if (rc != -EAGAIN) {
			ticket_put(c, t);
			drop_conn(g, c, "impossible reply ring head");
			return;
		}
	}
	/* Park it, in order behind the others. */
	t->next = GW_NONE;
	if (c->ovf_head == GW_NONE) {
		c->ovf_head = c->ovf_tail = ti_idx;
		CTR_ADD(g->e->ctr, gw_overflows, 1);
		/* seq_cst: pairs with the client's seq_cst head exchange then
		 * backlog load: either it sees the flag and rings, or we see its
		 * room. */
		atomic_store_explicit(&c->reply->backlog, 1, memory_order_seq_cst);
		flush_overflow(g, c);
	} else {
		c->tickets[c->ovf_tail].next = ti_idx;
		c->ovf_tail = ti_idx;
	}
}

/* ---- requests ------------------------------------------------------------ */

typedef struct poll_ctx {
	gateway *g;
	gw_conn *c;
} poll_ctx;

static int on_request(void *arg, uint32_t type, const void *data, uint32_t len)
{
	poll_ctx *pc = arg;
	gateway *g = pc->g;
	gw_conn *c = pc->c;
	char why[CQRS_GW_REASON];
	cqrs__gw_req req;
	gw_ticket *t;
	sub_hdr h;
	int rc;

	/* relaxed: ours. */
	if (atomic_load_explicit(&c->st, memory_order_relaxed) != GS_LIVE || !(t = ticket_get(c)))
		return 1; /* dropped meanwhile (the record is lost with the client) */
	t->conn = c;
	t->t.on_done = gw_on_done;
	t->t.cookie = g;
	t->t.status = 0;
	t->t.seq = 0;
	t->t.reason[0] = 0;
	CTR_ADD(g->e->ctr, gw_requests, 1);
	rc = cqrs__gw_check_request(&g->tab, type, data, len, &req, g->cmdbuf, g->cmdbuf_cap, why);
	t->request_id = req.request_id;
	if (rc) {
		uint64_t n;

		CTR_ADD(g->e->ctr, gw_malformed, 1);
		n = CTR_GET(g->e->ctr, gw_malformed);
		if ((n & (n - 1)) == 0)
			cqrs__log(g->e, CQRS_LOG_WARN, "gateway: client %llu (pid %d, uid %u): %s "
				  "(%llu malformed requests so far)", (unsigned long long)c->client_id,
				  (int)c->pid, (unsigned)c->uid, why, (unsigned long long)n);
		cqrs__ticket_complete(&t->t, CQRS_EFORMAT, 0, why);
		return 0;
	}
	h = (sub_hdr){ .ticket = &t->t, .type = req.type, .size = req.size,
		       .aggregate_id = req.aggregate_id, .expected_version = req.expected_version,
		       .client_id = c->client_id, .client_seq = req.client_seq, .flags = req.flags,
		       .submit_ns = cqrs__mono_ns() };
	cqrs__process_command(g->e, &h, g->cmdbuf);
	return cqrs__acks_full(g->e);
}

/* Takes up to room requests from c. Returns how many. */
static uint32_t take(gateway *g, gw_conn *c, uint32_t room)
{
	poll_ctx pc = { g, c };
	cqrs_mpsc_stats st;
	int rc = cqrs_mpsc_poll(c->req, on_request, &pc, room);

	if (rc < 0) {
		drop_conn(g, c, "request ring broken (impossible tail)");
		return 0;
	}
	/* The corrupt count lives in the ring header, which the client can
	 * write: a forged value can only get this very client dropped. */
	cqrs_mpsc_stats_get(c->req, &st);
	if (st.corrupt != c->corrupt_seen) {
		c->corrupt_seen = st.corrupt;
		drop_conn(g, c, "request ring holds corrupt records");
	}
	return (uint32_t)rc;
}

uint32_t cqrs__gateway_poll(struct cqrs_engine *e, uint32_t max)
{
	gateway *g = e->gateway;
	uint32_t n = 0, cnt;
	uint64_t v;

	/* acquire: pairs with cqrs_engine_stop's release CAS of the state. */
	if (!g->stopping && atomic_load_explicit(&e->state, memory_order_acquire) >= ENGINE_STOPPING) {
		/* From now on no request is taken; those taken are still answered. */
		g->stopping = 1;
		/* release: pairs with the clients' acquire load of the state. */
		atomic_store_explicit(&g->info->state, CQRS_GW_STOPPING, memory_order_release);
	}
	/* acquire: pairs with the gateway thread's seq_cst bump after it
	 * published a slot change. */
	v = atomic_load_explicit(&g->changes, memory_order_acquire);
	if (v != g->changes_seen) {
		g->changes_seen = v;
		scan(g);
	}
	cnt = g->nactive;
	for (uint32_t k = 0; k < cnt && n < max; k++) {
		uint32_t pos = (g->rr + k) % cnt, room;
		gw_conn *c;

		if (pos >= g->nactive)
			continue; /* the list shrank under us: next turn */
		c = &g->conns[g->active[pos]];
		if (c->ovf_head != GW_NONE)
			flush_overflow(g, c);
		/* relaxed: ours. */
		if (atomic_load_explicit(&c->st, memory_order_relaxed) != GS_LIVE || g->stopping)
			continue;
		room = c->nfree < max - n ? c->nfree : max - n;
		if (room == 0)
			continue;
		n += take(g, c, room);
		if (cqrs__acks_full(e))
			break;
	}
	g->rr++;
	finish(g);
	return n;
}

int cqrs__gateway_ready(struct cqrs_engine *e)
{
	gateway *g = e->gateway;

	/* seq_cst: the command thread's re-check before it sleeps on the bell;
	 * pairs with the gateway thread's seq_cst bump (ringbuf/wait.h). */
	if (atomic_load_explicit(&g->changes, memory_order_seq_cst) != g->changes_seen ||
	    g->nfinishing)
		return 1;
	for (uint32_t k = 0; k < g->nactive; k++) {
		gw_conn *c = &g->conns[g->active[k]];
		if (c->ovf_head != GW_NONE &&
		    /* seq_cst: pairs with the client's head exchange (backlog protocol). */
		    c->reply_tail - atomic_load_explicit(&c->reply->head, memory_order_seq_cst) <
			    CQRS_GW_REPLY_ENTRIES)
			return 1;
		if (!g->stopping && c->nfree && cqrs_mpsc_ready(c->req))
			return 1;
	}
	return 0;
}

/* ---- open / close -------------------------------------------------------- */

static uint32_t env_u32(const char *name, uint32_t def, uint32_t lo, uint32_t hi)
{
	const char *s = getenv(name);
	long v = s && *s ? strtol(s, NULL, 10) : 0;

	return v >= (long)lo && v <= (long)hi ? (uint32_t)v : def;
}

static void gateway_free(gateway *g)
{
	if (!g)
		return;
	free(g->conns);
	free(g->active);
	free(g->finishing);
	free(g->cmdbuf);
	free(g->uids);
	free(g->gids);
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
	d->engine_pid = (uint32_t)getpid();
	memcpy(d->sock_name, g->sock_name, sizeof d->sock_name);
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

static int credentials_from_config(gateway *g, const cqrs_config *cfg)
{
	uint32_t nu = cfg->gateway_uids ? cfg->gateway_nuids : 0;
	uint32_t ng = cfg->gateway_gids ? cfg->gateway_ngids : 0;

	/* Neither list given: the engine's own uid and group. */
	if (nu == 0 && ng == 0) {
		g->uids = malloc(sizeof *g->uids);
		g->gids = malloc(sizeof *g->gids);
		if (!g->uids || !g->gids)
			return -ENOMEM;
		g->uids[0] = geteuid();
		g->gids[0] = getegid();
		g->nuids = g->ngids = 1;
		return 0;
	}
	g->uids = calloc(nu ? nu : 1, sizeof *g->uids);
	g->gids = calloc(ng ? ng : 1, sizeof *g->gids);
	if (!g->uids || !g->gids)
		return -ENOMEM;
	for (uint32_t i = 0; i < nu; i++)
		g->uids[i] = (uid_t)cfg->gateway_uids[i];
	for (uint32_t i = 0; i < ng; i++)
		g->gids[i] = (gid_t)cfg->gateway_gids[i];
	g->nuids = nu;
	g->ngids = ng;
	return 0;
}

int cqrs__gateway_open(struct cqrs_engine *e)
{
	uint64_t maxcmd = 8, need;
	gateway *g;
	int rc;

	e->gateway = NULL;
	g = calloc(1, sizeof *g);
	if (!g)
		return -ENOMEM;
	g->e = e;
	g->info_fd = g->lfd = g->evfd = -1;
	for (uint32_t t = 1; t < CQRS_GW_MAX_TYPES; t++)
		if (e->cmds[t].schema) {
			g->tab.size[t] = e->cmds[t].schema->size;
			if (g->tab.size[t] > maxcmd)
				maxcmd = g->tab.size[t];
		}
	g->max_clients = e->cfg.gateway_max_clients
				 ? e->cfg.gateway_max_clients
				 : env_u32("CQRS_GATEWAY_CLIENTS", CQRS_GW_DEFAULT_CLIENTS, 1,
					   CQRS_GW_MAX_CLIENTS);
	if (g->max_clients > CQRS_GW_MAX_CLIENTS)
		g->max_clients = CQRS_GW_MAX_CLIENTS;
	g->per_uid = e->cfg.gateway_max_per_uid
			     ? e->cfg.gateway_max_per_uid
			     : env_u32("CQRS_GATEWAY_PER_UID", CQRS_GW_DEFAULT_PER_UID, 1,
				       CQRS_GW_MAX_CLIENTS);
	if (g->per_uid > g->max_clients)
		g->per_uid = g->max_clients;
	g->layout.reply_entries = CQRS_GW_REPLY_ENTRIES;
	g->layout.req_capacity = CQRS_GW_REQ_MIN_CAPACITY;
	need = 4 * (CQRS_MPSC_REC_HDR + sizeof(cqrs__gw_req) + maxcmd);
	while (g->layout.req_capacity < need && g->layout.req_capacity < CQRS_MPSC_MAX_CAPACITY)
		g->layout.req_capacity <<= 1;
	if (cqrs__gw_layout(&g->layout)) {
		free(g);
		return cqrs__fail(-EINVAL, "gateway layout out of range");
	}
	g->layout.magic = CQRS_GW_HELLO_MAGIC;
	g->layout.version = CQRS_GW_VERSION;
	g->cmdbuf_cap = maxcmd;
	g->cmdbuf = malloc(maxcmd);
	g->conns = calloc(g->max_clients, sizeof *g->conns);
	g->active = calloc(g->max_clients, sizeof *g->active);
	g->finishing = calloc(g->max_clients, sizeof *g->finishing);
	rc = g->cmdbuf && g->conns && g->active && g->finishing ? credentials_from_config(g, &e->cfg)
							     : -ENOMEM;
	if (rc) {
		gateway_free(g);
		return rc;
	}
	for (uint32_t i = 0; i < g->max_clients; i++) {
		g->conns[i].index = i;
		g->conns[i].fd = -1;
		g->conns[i].active_pos = GW_NONE;
		g->conns[i].pfd_pos = GW_NONE;
	}
	rc = cqrs__gw_accept_start(g); /* names the socket, sets the generation */
	if (rc) {
		gateway_free(g);
		return rc;
	}
	rc = publish_dir(g, e);
	if (rc) {
		cqrs__gw_accept_stop(g);
		gateway_free(g);
		return rc;
	}
	/* The command thread sleeps on the engine page's doorbell: clients can
	 * read whether it sleeps, only the engine can write it. */
	e->bell = (cqrs_bell *)(void *)&g->info->bell_seq;
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
	atomic_store_explicit(&g->info->state, CQRS_GW_STOPPED, memory_order_release);
	for (uint32_t i = 0; i < g->max_clients; i++) {
		/* acquire: pairs with the gateway thread's release of READY. */
		uint32_t st = atomic_load_explicit(&g->conns[i].st, memory_order_acquire);
		if (st != GS_FREE && st != GS_DONE)
			wake_client(&g->conns[i]);
	}
	e->bell = &e->own_bell;
	e->gateway = NULL;
	cqrs__gw_accept_stop(g);
	gateway_free(g);
}
