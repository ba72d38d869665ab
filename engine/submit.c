/*
 * engine/submit.c - cqrs_submit*: any thread -> the command thread, through
 * an MPSC byte ring (ringbuf/mpsc) in the engine's heap.
 *
 * Each submitting thread gets its own producer handle the first time it
 * submits to an engine, cached in thread-local storage keyed by the
 * engine's unique id (not its address, which a later engine may reuse).
 * The engine keeps every handle it gave out and closes them all at close,
 * so a cached handle is never touched after its engine is gone: the cache
 * compares ids only. A submission is one ring record: a sub_hdr and the
 * command's bytes, claimed, written and committed in place (one CAS, one
 * release store). A batch submit claims each record but rings the command
 * thread's doorbell once. The command thread drains the ring in its step
 * (engine/command_thread.c).
 */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/errors.h"
#include "cqrs_ring.h"
#include "engine/command.h"
#include "engine/doorbell.h"
#include "engine/engine_internal.h"
#include "engine/submit.h"
#include "engine/ticket.h"

#define SUB_TYPE 1u
#define TLS_SLOTS 4

struct submit_queue {
	cqrs_mpsc *ring;
	void *mem;
	pthread_mutex_t lock; /* guards the producer list (cold: first submit per thread) */
	cqrs_mpsc_producer **producers;
	uint32_t nproducers, cap;
};
typedef struct submit_queue submit_queue;

static _Atomic uint64_t next_engine_uid = 1;

static _Thread_local struct {
	uint64_t uid;
	cqrs_mpsc_producer *p;
} tls_prod[TLS_SLOTS];

int cqrs__submit_init(cqrs_engine *e)
{
	submit_queue *q = calloc(1, sizeof *q);
	size_t size;
	int rc;

	if (!q)
		return -ENOMEM;
	size = cqrs_mpsc_footprint(e->cfg.submit_queue_bytes, CQRS_MPSC_MAX_PRODUCERS);
	if (!size || posix_memalign(&q->mem, 64, size)) {
		free(q);
		return cqrs__fail(-ENOMEM, "submission ring of %u bytes", e->cfg.submit_queue_bytes);
	}
	/* In-process producers never die alone: no claim timeout. */
	rc = cqrs_mpsc_init(q->mem, size, e->cfg.submit_queue_bytes, CQRS_MPSC_MAX_PRODUCERS,
			    CQRS_RING_FOREVER, &q->ring);
	if (rc) {
		free(q->mem);
		free(q);
		return rc;
	}
	pthread_mutex_init(&q->lock, NULL);
	if (!e->bell)
		e->bell = &e->own_bell;
	/* relaxed: a unique number; nothing is published through it. */
	e->uid = atomic_fetch_add_explicit(&next_engine_uid, 1, memory_order_relaxed);
	e->sub = q;
	return 0;
}

void cqrs__submit_free(cqrs_engine *e)
{
	submit_queue *q = e->sub;

	if (!q)
		return;
	for (uint32_t i = 0; i < q->nproducers; i++)
		cqrs_mpsc_producer_close(q->producers[i]);
	free(q->producers);
	cqrs_mpsc_close(q->ring);
	free(q->mem);
	pthread_mutex_destroy(&q->lock);
	free(q);
	e->sub = NULL;
}

static cqrs_mpsc_producer *producer_for(cqrs_engine *e)
{
	submit_queue *q = e->sub;
	cqrs_mpsc_producer *p;
	int slot = -1;

	for (int i = 0; i < TLS_SLOTS; i++) {
		if (tls_prod[i].uid == e->uid)
			return tls_prod[i].p;
		if (slot < 0 && tls_prod[i].uid == 0)
			slot = i;
	}
	pthread_mutex_lock(&q->lock);
	if (q->nproducers == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 16;
		cqrs_mpsc_producer **np = realloc(q->producers, cap * sizeof *np);
		if (!np) {
			pthread_mutex_unlock(&q->lock);
			return NULL;
		}
		q->producers = np;
		q->cap = cap;
	}
	if (cqrs_mpsc_producer_open(q->ring, &p)) {
		pthread_mutex_unlock(&q->lock);
		return NULL;
	}
	q->producers[q->nproducers++] = p;
	pthread_mutex_unlock(&q->lock);
	if (slot < 0)
		slot = (int)(e->uid % TLS_SLOTS); /* evict: the old handle stays owned by its engine */
	tls_prod[slot].uid = e->uid;
	tls_prod[slot].p = p;
	return p;
}

static int check_command(const cqrs_engine *e, const cqrs_command *c)
{
	const cqrs_schema *s;

	if (!c || c->type == 0 || c->type >= CQRS_MAX_TYPES || !(s = e->cmds[c->type].schema))
		return -EINVAL;
	if (c->size != s->size || !c->data)
		return -EINVAL;
	return 0;
}

static int enqueue(cqrs_mpsc_producer *p, const cqrs_command *c, cqrs_ticket *t)
{
	sub_hdr *h;
	void *d;
	int rc;

	rc = cqrs_mpsc_try_claim(p, SUB_TYPE, (uint32_t)sizeof(sub_hdr) + c->size, &d);
	if (rc)
		return rc;
	cqrs__ticket_arm(t);
	h = d;
	*h = (sub_hdr){ .ticket = ticket_of(t), .type = c->type, .size = c->size,
			.aggregate_id = c->aggregate_id, .expected_version = c->expected_version,
			.client_id = c->client_id, .client_seq = c->client_seq, .flags = c->flags,
			.submit_ns = cqrs__mono_ns() };
	memcpy(h + 1, c->data, c->size);
	return cqrs_mpsc_commit(p, (uint32_t)sizeof(sub_hdr) + c->size);
}

/* After commits (each a seq_cst RMW): wake the command thread if it sleeps. */
static void ring_bell(cqrs_engine *e)
{
	cqrs__bell_ring(e->bell);
}

static int admit(cqrs_engine *e)
{
	/* relaxed: status words; the ring's release/acquire orders the data. */
	int poison = atomic_load_explicit(&e->poison, memory_order_relaxed);

	if (poison)
		return poison;
	if (atomic_load_explicit(&e->state, memory_order_relaxed) != ENGINE_RUNNING)
		return CQRS_ESTOPPED;
	if (e->cfg.node_of) /* a view node follows its writer's stream */
		return -EPERM;
	return 0;
}

static int submit_one(cqrs_engine *e, cqrs_mpsc_producer *p, const cqrs_command *c,
		      cqrs_ticket *t)
{
	int rc = check_command(e, c);

	return rc ? rc : enqueue(p, c, t);
}

int cqrs_submit(cqrs_engine *e, const cqrs_command *cmd, cqrs_ticket *t)
{
	cqrs_mpsc_producer *p;
	int rc = admit(e);

	if (rc)
		return rc;
	p = producer_for(e);
	if (!p)
		return -ENOMEM;
	rc = submit_one(e, p, cmd, t);
	if (rc == 0)
		ring_bell(e);
	return rc;
}

int cqrs_submit_batch(cqrs_engine *e, const cqrs_command *cmds, cqrs_ticket *tickets, uint32_t n)
{
	cqrs_mpsc_producer *p;
	uint32_t i;
	int rc = admit(e);

	if (rc)
		return rc;
	p = producer_for(e);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		rc = submit_one(e, p, &cmds[i], &tickets[i]);
		if (rc)
			break;
	}
	if (i > 0)
		ring_bell(e); /* once per batch */
	return i > 0 ? (int)i : rc;
}

static int on_submission(void *arg, uint32_t type, const void *data, uint32_t len)
{
	cqrs_engine *e = arg;
	const sub_hdr *h = data;

	if (type != SUB_TYPE || len < sizeof *h || len - sizeof *h != h->size)
		return 0; /* cannot happen in-process; never trust lengths anyway */
	cqrs__process_command(e, h, h + 1);
	return cqrs__acks_full(e); /* stop the drain when no ack slot is left */
}

uint32_t cqrs__submit_drain(cqrs_engine *e, uint32_t max)
{
	submit_queue *q = e->sub;
	int n = cqrs_mpsc_poll(q->ring, on_submission, e, max);

	return n > 0 ? (uint32_t)n : 0;
}

bool cqrs__submit_ready(cqrs_engine *e)
{
	return cqrs_mpsc_ready(e->sub->ring);
}
