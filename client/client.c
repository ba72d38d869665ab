/*
 * client/client.c - the gateway client (include/cqrs_client.h): connect to
 * an engine through its control segment, claim a slot in its gateway
 * segment, send requests into the slot's request ring and read answers
 * from its reply ring (protocol: client/gateway_format.h).
 *
 * One thread at a time per client: the request ring is used as SPSC (our
 * producer handle) and the reply ring is ours to consume. Results that
 * arrive while cqrs_client_submit waits for its own answer are kept in a
 * local FIFO (the stash) and handed out by poll/wait first.
 *
 * Waiting: spin on the reply ring's tail a little, then yield the CPU for
 * a while (answers usually come within microseconds; see core/backoff.h),
 * then sleep on its futex (ringbuf/wait.h) in slices of at most 50 ms;
 * between slices, and every 100 ms of polling that finds nothing, the
 * engine's liveness (its owner word's /proc start time) is checked, so a
 * dead engine is noticed without any message from it. Cheaper signs are
 * checked every time: the gateway state (STOPPED), the live line
 * (RETIRED), our slot's state and epoch (DROPPED, reset).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "client/client_internal.h"
#include "client/gateway_format.h"
#include "cqrs_client.h"
#include "core/errors.h"
#include "ringbuf/wait.h"
#include "core/schema_internal.h"
#include "shm/control.h"
#include "shm/segment.h"

#define NONE UINT32_MAX
#define CONNECT_TIMEOUT_NS UINT64_C(5000000000)
#define FULL_WAIT_NS UINT64_C(1000000000) /* for a dead client's slot to be reaped */
#define ALIVE_EVERY_NS UINT64_C(100000000)
#define SLEEP_SLICE_NS UINT64_C(50000000)
/* reply_wait passes the time before it sleeps on the futex as
 * core/backoff.h says; CQRS_CLIENT_SPIN / CQRS_CLIENT_YIELD override its
 * counts (dedicated cores: spin). */

static int env_count(const char *name, int def)
{
	const char *e = getenv(name);
	long v = e && *e ? strtol(e, NULL, 10) : def;

	return v < 0 ? 0 : v > 10000000 ? 10000000 : (int)v;
}

struct cqrs_client {
	char engine[CQRS_NAME_MAX];
	cqrs_seg seg;
	cqrs__gw_params p;
	cqrs_gw_lines *lines;
	cqrs_gw_slot *slot;
	cqrs_gw_reply *reply;
	cqrs_mpsc *req;
	cqrs_mpsc_producer *prod;
	uint32_t slot_idx;
	int claimed;              /* we own slot's owner word */
	int dead;                 /* sticky CQRS_ESTOPPED */
	uint64_t client_id, epoch, generation, engine_owner;
	uint64_t head;            /* reply entries consumed */
	uint64_t next_id;         /* last request id handed out */
	uint32_t pending;         /* sent, result not yet handed to the caller */
	uint64_t next_alive_ns;
	int spins, yields;        /* reply_wait's budget before sleeping */
	cqrs_result *stash;       /* FIFO of results taken early */
	uint32_t stash_head, stash_n, stash_cap;
	uint32_t ncmds;
	uint32_t types[CQRS_GW_MAX_TYPES];
	cqrs_schema *schemas;     /* ncmds of them */
	const cqrs_schema *by_type[CQRS_GW_MAX_TYPES];
};

static void nap_ns(long ns)
{
	struct timespec ts = { 0, ns };
	nanosleep(&ts, NULL);
}

static void ring_bell(cqrs_client *c)
{
	cqrs__ring_wake(&c->lines->bell_seq, &c->lines->bell_waiters);
}

/* ---- liveness ------------------------------------------------------------ */

/* 0 while the engine serves us, else CQRS_ESTOPPED (sticky). thorough adds
 * the /proc check of the engine's owner word, at most every 100 ms. */
static int gone(cqrs_client *c, int thorough)
{
	uint64_t now;

	if (c->dead)
		return c->dead;
	/* acquire: pairs with the engine's release store of STOPPED (answers
	 * written before it are visible). */
	if (atomic_load_explicit(&c->lines->state, memory_order_acquire) == CQRS_GW_STOPPED ||
	    /* acquire: pairs with the release that retired the segment. */
	    (atomic_load_explicit(&cqrs__seg_live_line(&c->seg)->flags, memory_order_acquire) &
	     CQRS_SEG_RETIRED) ||
	    /* acquire: pairs with the engine's release CAS (dropped) or reset. */
	    atomic_load_explicit(&c->slot->state, memory_order_acquire) != CQRS_GW_ACTIVE ||
	    /* relaxed: written before the state it is checked after. */
	    atomic_load_explicit(&c->slot->epoch, memory_order_relaxed) != c->epoch)
		return c->dead = CQRS_ESTOPPED;
	if (thorough) {
		now = cqrs__mono_ns();
		if (now >= c->next_alive_ns) {
			c->next_alive_ns = now + ALIVE_EVERY_NS;
			if (!cqrs__seg_owner_alive(c->engine_owner))
				return c->dead = CQRS_ESTOPPED;
		}
	}
	return 0;
}

/* ---- results ------------------------------------------------------------- */

/* Takes the next answer from the reply ring: 1, 0 (none), CQRS_ESTOPPED
 * (impossible cursors: the engine is not the one we know). */
static int reply_take(cqrs_client *c, cqrs_result *res)
{
	/* acquire: pairs with the engine's seq_cst exchange of tail (the entry
	 * is written before). */
	uint64_t tail = atomic_load_explicit(&c->reply->tail, memory_order_acquire);
	const cqrs_gw_entry *en;

	if (tail == c->head)
		return 0;
	if (tail - c->head > c->p.reply_entries)
		return c->dead = CQRS_ESTOPPED;
	en = cqrs__gw_entry(c->reply, &c->p, c->head);
	res->request_id = en->request_id;
	res->seq = en->seq;
	res->status = en->status;
	res->reserved = 0;
	memcpy(res->reason, en->reason, sizeof res->reason);
	res->reason[sizeof res->reason - 1] = 0;
	c->head++;
	/* seq_cst RMW: release ends our reads of the entry (pairs with the
	 * engine's load of head); seq_cst orders it before the backlog load
	 * (pairs with the engine's seq_cst backlog store). */
	atomic_exchange_explicit(&c->reply->head, c->head, memory_order_seq_cst);
	/* seq_cst: see above. */
	if (atomic_load_explicit(&c->reply->backlog, memory_order_seq_cst))
		ring_bell(c); /* answers are parked: we made room */
	return 1;
}

static int stash_push(cqrs_client *c, const cqrs_result *r)
{
	if (c->stash_n == c->stash_cap) {
		uint32_t cap = c->stash_cap ? c->stash_cap * 2 : 64;
		cqrs_result *n = malloc((size_t)cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		for (uint32_t k = 0; k < c->stash_n; k++)
			n[k] = c->stash[(c->stash_head + k) % c->stash_cap];
		free(c->stash);
		c->stash = n;
		c->stash_cap = cap;
		c->stash_head = 0;
	}
	c->stash[(c->stash_head + c->stash_n) % c->stash_cap] = *r;
	c->stash_n++;
	return 0;
}

static int stash_pop(cqrs_client *c, cqrs_result *r)
{
	if (c->stash_n == 0)
		return 0;
	*r = c->stash[c->stash_head];
	c->stash_head = (c->stash_head + 1) % c->stash_cap;
	c->stash_n--;
	return 1;
}

static int deliver(cqrs_client *c, cqrs_result *res, const cqrs_result *r)
{
	if (res)
		*res = *r;
	if (c->pending)
		c->pending--;
	return 1;
}

static int tail_moved(cqrs_client *c)
{
	/* acquire: pairs with the engine's exchange of tail. */
	return atomic_load_explicit(&c->reply->tail, memory_order_acquire) != c->head;
}

static bool reply_ready(void *arg)
{
	cqrs_client *c = arg;

	/* seq_cst: the re-check of the futex protocol; pairs with the engine's
	 * seq_cst exchange of tail. */
	return atomic_load_explicit(&c->reply->tail, memory_order_seq_cst) != c->head ||
	       gone(c, 0) != 0;
}

/* Waits until an answer is in the reply ring, the engine is gone, or the
 * deadline: 0, -ETIMEDOUT, CQRS_ESTOPPED. */
static int reply_wait(cqrs_client *c, uint64_t deadline)
{
	cqrs_backoff b = cqrs__backoff_make(c->spins, c->yields, deadline);

	while (cqrs__backoff_step(&b)) {
		if (tail_moved(c))
			return 0;
		if (b.n % 64 == 0 && gone(c, 0))
			return c->dead;
	}
	for (;;) {
		uint64_t left;

		if (tail_moved(c))
			return 0;
		if (gone(c, 1))
			return c->dead;
		left = cqrs__remaining(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		if (left > SLEEP_SLICE_NS)
			left = SLEEP_SLICE_NS;
		(void)cqrs__ring_wait(CQRS_WAIT_BLOCK, left, left, &c->reply->seq, &c->reply->waiters,
				      reply_ready, c);
	}
}

/* ---- connect ------------------------------------------------------------- */

static int load_commands(cqrs_client *c, cqrs_ctl *ctl, const cqrs_gw_dir *d)
{
	c->ncmds = d->ncmds;
	c->schemas = calloc(d->ncmds ? d->ncmds : 1, sizeof *c->schemas);
	if (!c->schemas)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->ncmds; i++) {
		uint32_t t = d->cmd_type[i];
		int rc = cqrs__ctl_command_schema(ctl, i, &c->schemas[i]);
		if (rc)
			return rc;
		if (t == 0 || t >= CQRS_GW_MAX_TYPES || c->by_type[t] ||
		    (i > 0 && t <= d->cmd_type[i - 1]) || c->schemas[i].size != d->cmd_size[i])
			return cqrs__fail(CQRS_EFORMAT, "gateway directory: command %u (type %u) does not "
					 "match its schema", i, t);
		c->types[i] = t;
		c->by_type[t] = &c->schemas[i];
	}
	return 0;
}

/* Reads and checks the gateway directory of a running engine. */
static int read_dir(cqrs_client *c, cqrs_ctl *ctl, cqrs_gw_dir *d)
{
	uint64_t size, deadline = cqrs__mono_ns() + CONNECT_TIMEOUT_NS;
	const cqrs_gw_dir *sd;
	char want[CQRS_SEG_NAME_MAX];
	cqrs_ctl_info info;

	for (;;) {
		cqrs__ctl_info_get(ctl, &info);
		if (info.retired || !info.owner_alive || info.state == CQRS_ENGINE_STOPPED)
			return cqrs__fail(CQRS_ESTOPPED, "engine %s is not running", c->engine);
		if (info.state == CQRS_ENGINE_RUNNING)
			break;
		if (cqrs__mono_ns() >= deadline)
			return cqrs__fail(CQRS_ESTOPPED, "engine %s did not finish starting", c->engine);
		nap_ns(1000000);
	}
	sd = cqrs__ctl_region(ctl, CQRS_CTL_GATEWAY, &size);
	if (!sd || size < sizeof *sd)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: gateway region too small", c->engine);
	/* acquire: pairs with the engine's release store of the magic. */
	if (atomic_load_explicit(&sd->magic, memory_order_acquire) != CQRS_GW_DIR_MAGIC)
		return cqrs__fail(CQRS_ENOTFOUND, "engine %s has no command gateway", c->engine);
	memcpy((uint8_t *)d + sizeof d->magic, (const uint8_t *)sd + sizeof sd->magic,
	       sizeof *d - sizeof d->magic);
	if (d->version != CQRS_GW_VERSION || d->dir_size != sizeof *d)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: gateway format %u (size %u), this library "
				 "speaks %u", c->engine, d->version, d->dir_size, CQRS_GW_VERSION);
	cqrs__gw_seg_name(want, sizeof want, c->engine);
	if (d->nslots == 0 || d->nslots > CQRS_GW_MAX_SLOTS || d->ncmds > CQRS_GW_MAX_TYPES - 1 ||
	    d->ncmds != cqrs__ctl_command_count(ctl) ||
	    strncmp(d->seg_name, want, sizeof d->seg_name) != 0)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: inconsistent gateway directory", c->engine);
	return load_commands(c, ctl, d);
}

static int open_segment(cqrs_client *c, const cqrs_gw_dir *d)
{
	const cqrs_seg_hdr *h;
	int rc = cqrs__seg_open(&c->seg, d->seg_name, CQRS_GW_SEG_KIND, 1);

	if (rc == -ENOENT)
		return cqrs__fail(CQRS_ESTOPPED, "engine %s: gateway segment gone (restarting?)", c->engine);
	if (rc)
		return rc;
	h = cqrs__seg_header(&c->seg);
	memcpy(&c->p, c->seg.imm + CQRS_GW_PARAMS_OFF, sizeof c->p);
	if (strncmp(h->engine, c->engine, sizeof h->engine) != 0)
		return cqrs__fail(CQRS_EFORMAT, "%s names another engine", d->seg_name);
	if (h->generation != d->generation)
		return cqrs__fail(CQRS_ESTOPPED, "engine %s restarted while we connected", c->engine);
	rc = cqrs__gw_params_check(&c->p, c->seg.size);
	if (rc)
		return rc;
	if (c->p.nslots != d->nslots)
		return cqrs__fail(CQRS_EFORMAT, "%s: slot count differs from its directory", d->seg_name);
	c->generation = h->generation;
	c->lines = cqrs__gw_lines(c->seg.base);
	/* acquire: pairs with the seal; the owner word is the engine's. */
	c->engine_owner = atomic_load_explicit(&cqrs__seg_live_line(&c->seg)->owner,
					       memory_order_acquire);
	return 0;
}

/* Gives the slot back: FREE if the engine never saw us, else CLOSED. */
static void release_slot(cqrs_client *c)
{
	uint32_t st;

	if (!c->claimed)
		return;
	if (c->prod) {
		cqrs_mpsc_producer_close(c->prod);
		c->prod = NULL;
	}
	/* acquire: pairs with the engine's release CAS of the state. */
	st = atomic_load_explicit(&c->slot->state, memory_order_acquire);
	for (;;) {
		if (st == CQRS_GW_FREE) {
			/* release: nothing of ours was used; pairs with the next
			 * claimer's acquire CAS. */
			atomic_store_explicit(&c->slot->owner, 0, memory_order_release);
			break;
		}
		/* release: our last use of the rings before CLOSED; pairs with the
		 * engine's acquire load of the state. */
		if (atomic_compare_exchange_weak_explicit(&c->slot->state, &st, CQRS_GW_CLOSED,
							  memory_order_release, memory_order_acquire)) {
			/* seq_cst RMW: wakes the engine's scan (futex protocol). */
			atomic_fetch_add_explicit(&c->lines->connect_seq, 1, memory_order_seq_cst);
			ring_bell(c);
			break;
		}
	}
	c->claimed = 0;
}

/* Claims one free slot (owner 0 -> us). 0, CQRS_EFULL. */
static int claim_slot(cqrs_client *c)
{
	uint64_t me = cqrs__seg_self_owner();

	for (uint32_t i = 0; i < c->p.nslots; i++) {
		cqrs_gw_slot *s = cqrs__gw_slot(c->seg.base, &c->p, i);
		uint64_t exp = 0;

		/* relaxed: a cheap look before the CAS. */
		if (atomic_load_explicit(&s->owner, memory_order_relaxed) != 0)
			continue;
		/* acq_rel: acquire pairs with the engine's release of owner 0 after
		 * the reset (fresh rings); release publishes our claim. */
		if (!atomic_compare_exchange_strong_explicit(&s->owner, &exp, me, memory_order_acq_rel,
							     memory_order_relaxed))
			continue;
		/* relaxed: ordered by the acquire CAS above. */
		if (atomic_load_explicit(&s->state, memory_order_relaxed) != CQRS_GW_FREE) {
			/* release: hand back what we should not have taken. */
			atomic_store_explicit(&s->owner, 0, memory_order_release);
			continue;
		}
		c->slot = s;
		c->slot_idx = i;
		c->claimed = 1;
		return 0;
	}
	return CQRS_EFULL;
}

static int attach_slot(cqrs_client *c)
{
	uint64_t head, tail;
	int rc;

	c->reply = cqrs__gw_reply(c->slot, &c->p);
	rc = cqrs_mpsc_attach(cqrs__gw_req_mem(c->slot, &c->p), (size_t)c->p.req_size, &c->req);
	if (!rc)
		rc = cqrs_mpsc_producer_open(c->req, &c->prod);
	if (rc)
		return rc;
	/* acquire: pair with the engine's reset (published by the owner word
	 * we acquired). */
	head = atomic_load_explicit(&c->reply->head, memory_order_acquire);
	tail = atomic_load_explicit(&c->reply->tail, memory_order_acquire);
	if (head != tail)
		return cqrs__fail(CQRS_EFORMAT, "gateway slot %u: reply ring not reset", c->slot_idx);
	c->head = head;
	return 0;
}

/* CONNECTING, then wait for the engine's ACTIVE. */
static int handshake(cqrs_client *c)
{
	uint64_t deadline = cqrs__mono_ns() + CONNECT_TIMEOUT_NS;
	uint32_t exp = CQRS_GW_FREE, st;

	/* release: our ring attachment before the engine looks; pairs with its
	 * acquire load of the state. */
	if (!atomic_compare_exchange_strong_explicit(&c->slot->state, &exp, CQRS_GW_CONNECTING,
						     memory_order_release, memory_order_relaxed))
		return cqrs__fail(CQRS_ESTOPPED, "gateway slot %u changed under us", c->slot_idx);
	/* seq_cst RMW: the engine's re-check reads it (futex protocol), then the bell. */
	atomic_fetch_add_explicit(&c->lines->connect_seq, 1, memory_order_seq_cst);
	ring_bell(c);
	for (unsigned n = 0;; n++) {
		/* acquire: pairs with the engine's release CAS to ACTIVE (client id
		 * and epoch stored before). */
		st = atomic_load_explicit(&c->slot->state, memory_order_acquire);
		if (st == CQRS_GW_ACTIVE)
			break;
		if (st != CQRS_GW_CONNECTING)
			return cqrs__fail(CQRS_ESTOPPED, "gateway slot %u refused", c->slot_idx);
		/* acquire: pairs with the engine's STOPPING/STOPPED stores. */
		if (atomic_load_explicit(&c->lines->state, memory_order_acquire) != CQRS_GW_RUNNING)
			return cqrs__fail(CQRS_ESTOPPED, "engine %s is stopping", c->engine);
		if (n < 1000) {
			cqrs__cpu_relax();
			continue;
		}
		if (cqrs__mono_ns() >= deadline)
			return cqrs__fail(-ETIMEDOUT, "engine %s did not accept the connection", c->engine);
		if (n % 256 == 0 && !cqrs__seg_owner_alive(c->engine_owner))
			return cqrs__fail(CQRS_ESTOPPED, "engine %s died", c->engine);
		nap_ns(20000);
	}
	/* relaxed: ordered by the acquire load of ACTIVE. */
	c->client_id = atomic_load_explicit(&c->slot->client_id, memory_order_relaxed);
	c->epoch = atomic_load_explicit(&c->slot->epoch, memory_order_relaxed);
	return 0;
}

int cqrs_client_connect(const char *engine, cqrs_client **out)
{
	cqrs_client *c;
	cqrs_ctl *ctl = NULL;
	cqrs_gw_dir d;
	uint64_t deadline;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!engine || !cqrs__name_valid(engine, CQRS_NAME_MAX))
		return cqrs__fail(-EINVAL, "bad engine name");
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	strcpy(c->engine, engine);
	c->spins = env_count("CQRS_CLIENT_SPIN", CQRS_BACKOFF_SPINS);
	c->yields = env_count("CQRS_CLIENT_YIELD", CQRS_BACKOFF_YIELDS);
	rc = cqrs__ctl_open(engine, &ctl);
	if (rc == -ENOENT)
		rc = cqrs__fail(CQRS_ENOTFOUND, "no engine named %s", engine);
	if (!rc)
		rc = read_dir(c, ctl, &d);
	cqrs__ctl_close(ctl);
	if (!rc)
		rc = open_segment(c, &d);
	/* acquire: pairs with the engine's release of STOPPING/STOPPED. */
	if (!rc && atomic_load_explicit(&c->lines->state, memory_order_acquire) != CQRS_GW_RUNNING)
		rc = cqrs__fail(CQRS_ESTOPPED, "engine %s is stopping", engine);
	deadline = cqrs__mono_ns() + FULL_WAIT_NS;
	while (!rc) {
		rc = claim_slot(c);
		if (rc != CQRS_EFULL)
			break;
		if (cqrs__mono_ns() >= deadline) {
			rc = cqrs__fail(CQRS_EFULL, "engine %s: all %u gateway slots are taken", engine,
				       c->p.nslots);
			break;
		}
		/* seq_cst RMW: asks the engine to look for dead owners now. */
		atomic_fetch_add_explicit(&c->lines->reap_seq, 1, memory_order_seq_cst);
		ring_bell(c);
		nap_ns(2000000);
		rc = 0;
	}
	if (!rc)
		rc = attach_slot(c);
	if (!rc)
		rc = handshake(c);
	if (rc) {
		cqrs_client_close(c);
		return rc;
	}
	c->next_alive_ns = cqrs__mono_ns() + ALIVE_EVERY_NS;
	*out = c;
	return 0;
}

void cqrs_client_close(cqrs_client *c)
{
	if (!c)
		return;
	if (c->seg.base)
		release_slot(c);
	cqrs_mpsc_producer_close(c->prod);
	cqrs_mpsc_close(c->req);
	cqrs__seg_close(&c->seg);
	free(c->schemas);
	free(c->stash);
	free(c);
}

/* ---- commands ------------------------------------------------------------ */

int cqrs_client_command_count(cqrs_client *c)
{
	return c ? (int)c->ncmds : -EINVAL;
}

int cqrs_client_command_at(cqrs_client *c, int i, uint32_t *type, const cqrs_schema **schema)
{
	if (!c || i < 0 || (uint32_t)i >= c->ncmds)
		return CQRS_ENOTFOUND;
	if (type)
		*type = c->types[i];
	if (schema)
		*schema = &c->schemas[i];
	return 0;
}

int cqrs_client_command_type(cqrs_client *c, const char *name, uint32_t *type,
			     const cqrs_schema **schema)
{
	if (!c || !name)
		return -EINVAL;
	for (uint32_t i = 0; i < c->ncmds; i++)
		if (strncmp(c->schemas[i].name, name, CQRS_NAME_MAX) == 0)
			return cqrs_client_command_at(c, (int)i, type, schema);
	return CQRS_ENOTFOUND;
}

const char *cqrs_client_engine(cqrs_client *c)
{
	return c ? c->engine : "";
}

uint64_t cqrs_client_id(cqrs_client *c)
{
	return c && !c->dead ? c->client_id : 0;
}

uint32_t cqrs_client_pending(cqrs_client *c)
{
	return c ? c->pending : 0;
}

/* ---- requests ------------------------------------------------------------ */

int cqrs_client_send(cqrs_client *c, uint32_t type, const void *cmd, size_t len,
		     const cqrs_submit_opts *opts, uint64_t *request_id)
{
	static const cqrs_submit_opts none = { 0 };
	const cqrs_schema *s;
	cqrs__gw_req *h;
	uint32_t rlen;
	void *d;
	int rc, tries = 0;

	if (!c || (len && !cmd))
		return -EINVAL;
	if (c->dead)
		return c->dead;
	if (!opts)
		opts = &none;
	if (type >= CQRS_GW_MAX_TYPES || !(s = c->by_type[type]) || len != s->size ||
	    (opts->flags & ~CQRS_GW_KNOWN_FLAGS) || opts->reserved || opts->aggregate_id == UINT64_MAX)
		return -EINVAL;
	/* acquire: pairs with the engine's release of STOPPING. */
	if (atomic_load_explicit(&c->lines->state, memory_order_acquire) != CQRS_GW_RUNNING ||
	    gone(c, 0))
		return CQRS_ESTOPPED;
	rlen = (uint32_t)(sizeof *h + len);
	do {
		rc = cqrs_mpsc_try_claim(c->prod, CQRS_GW_REC_REQUEST, rlen, &d);
		if (rc == 0) {
			h = d;
			*h = (cqrs__gw_req){ .request_id = c->next_id + 1,
					    .aggregate_id = opts->aggregate_id,
					    .expected_version = opts->expected_version,
					    .client_seq = opts->client_seq ? opts->client_seq
									   : c->next_id + 1,
					    .type = type, .size = (uint32_t)len, .flags = opts->flags };
			if (len)
				memcpy(h + 1, cmd, len);
			rc = cqrs_mpsc_commit(c->prod, rlen);
		}
	} while (rc == CQRS_ESTALE && ++tries < 3); /* we stalled past the claim timeout */
	if (rc)
		return rc;
	c->next_id++;
	c->pending++;
	ring_bell(c);
	if (request_id)
		*request_id = c->next_id;
	return 0;
}

int cqrs_client_poll(cqrs_client *c, cqrs_result *res)
{
	cqrs_result r;
	int rc;

	if (!c)
		return -EINVAL;
	if (stash_pop(c, &r))
		return deliver(c, res, &r);
	rc = reply_take(c, &r);
	if (rc)
		return rc > 0 ? deliver(c, res, &r) : rc;
	rc = gone(c, 1);
	if (rc) {
		/* answers published before the engine went are still ours */
		if (reply_take(c, &r) > 0)
			return deliver(c, res, &r);
		return rc;
	}
	return 0;
}

int cqrs_client_wait(cqrs_client *c, cqrs_result *res, uint64_t timeout_ns)
{
	uint64_t deadline = cqrs__deadline_after(timeout_ns);
	int rc;

	if (!c)
		return -EINVAL;
	for (;;) {
		rc = cqrs_client_poll(c, res);
		if (rc)
			return rc;
		if (c->pending == 0)
			return -EAGAIN;
		rc = reply_wait(c, deadline);
		if (rc && !tail_moved(c))
			return rc;
	}
}

static int fail_result(cqrs_result *res, int rc, uint64_t id)
{
	if (res) {
		memset(res, 0, sizeof *res);
		res->status = rc;
		res->request_id = id;
	}
	return rc;
}

int cqrs_client_submit(cqrs_client *c, uint32_t type, const void *cmd, size_t len,
		       const cqrs_submit_opts *opts, cqrs_result *res, uint64_t timeout_ns)
{
	uint64_t deadline = cqrs__deadline_after(timeout_ns), id = 0;
	cqrs_result r;
	int rc;

	if (!c)
		return fail_result(res, -EINVAL, 0);
	for (;;) {
		rc = cqrs_client_send(c, type, cmd, len, opts, &id);
		if (rc != -EAGAIN)
			break;
		/* Ring full: make room by taking answers (kept for poll). */
		rc = reply_take(c, &r);
		if (rc > 0) {
			rc = stash_push(c, &r);
			if (rc)
				return fail_result(res, rc, 0);
			continue;
		}
		if (rc < 0)
			return fail_result(res, rc, 0);
		rc = reply_wait(c, deadline);
		if (rc && !tail_moved(c))
			return fail_result(res, rc, 0);
	}
	if (rc)
		return fail_result(res, rc, 0);
	for (;;) {
		rc = reply_take(c, &r);
		if (rc > 0) {
			if (r.request_id == id) {
				deliver(c, res, &r);
				return r.status;
			}
			rc = stash_push(c, &r);
			if (rc)
				return fail_result(res, rc, id);
			continue;
		}
		if (rc < 0)
			return fail_result(res, rc, id);
		rc = reply_wait(c, deadline);
		if (rc && !tail_moved(c))
			return fail_result(res, rc, id); /* -ETIMEDOUT: still pending */
	}
}

/* ---- white box ------------------------------------------------------------ */

int cqrs__client_parts_get(cqrs_client *c, cqrs__client_parts *out)
{
	if (!c || !c->claimed || !c->seg.base)
		return -EINVAL;
	out->base = c->seg.base;
	out->size = c->seg.size;
	out->p = &c->p;
	out->lines = c->lines;
	out->slot_index = c->slot_idx;
	out->slot = c->slot;
	out->req_mem = cqrs__gw_req_mem(c->slot, &c->p);
	out->reply = c->reply;
	out->req = c->req;
	out->producer = c->prod;
	return 0;
}
