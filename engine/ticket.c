/*
 * engine/ticket.c - ticket completion and waiting (see ticket.h).
 */
#include <string.h>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/futex.h"
#include "engine/ticket.h"

void cqrs__ticket_arm(cqrs_ticket *t)
{
	ticket_impl *ti = ticket_of(t);

	ti->status = 0;
	ti->seq = 0;
	ti->reason[0] = 0;
	ti->on_done = NULL;
	ti->cookie = NULL;
	/* relaxed: the ticket is handed to the command thread by the queue's
	 * release publish, which orders this store before the hand-off. */
	atomic_store_explicit(&ti->state, TICKET_PENDING, memory_order_relaxed);
}

void cqrs__ticket_release(ticket_impl *t)
{
	if (t->on_done) {
		t->on_done(t);
		return;
	}
	/* release: status/seq/reason written before are visible to whoever
	 * acquires DONE (cqrs_ticket_done / cqrs_ticket_wait). */
	if (atomic_exchange_explicit(&t->state, TICKET_DONE, memory_order_acq_rel) == TICKET_WAITING)
		cqrs__futex_wake(&t->state);
}

void cqrs__ticket_complete(ticket_impl *t, int status, uint64_t seq, const char *reason)
{
	t->status = status;
	t->seq = seq;
	if (reason) {
		strncpy(t->reason, reason, sizeof t->reason - 1);
		t->reason[sizeof t->reason - 1] = 0;
	} else {
		t->reason[0] = 0;
	}
	cqrs__ticket_release(t);
}

int cqrs_ticket_done(const cqrs_ticket *t)
{
	/* acquire: pairs with the release exchange in cqrs__ticket_complete. */
	return atomic_load_explicit(&((const ticket_impl *)(const void *)t)->state,
				    memory_order_acquire) == TICKET_DONE;
}

int cqrs_ticket_wait(cqrs_ticket *t, uint64_t timeout_ns)
{
	ticket_impl *ti = ticket_of(t);
	uint64_t now = cqrs__mono_ns();
	uint64_t deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
	cqrs_backoff b = cqrs__backoff_make(CQRS_BACKOFF_SPINS, CQRS_BACKOFF_YIELDS, deadline);
	uint32_t s;

	/* Spin and yield first (core/backoff.h): acks usually arrive within
	 * microseconds, and a yield leaves the core to the thread that
	 * answers. */
	while (cqrs__backoff_step(&b))
		if (cqrs_ticket_done(t))
			return ti->status;
	for (;;) {
		uint32_t expected = TICKET_PENDING;

		/* acquire on success/failure: pairs with the completer's release
		 * exchange when we observe DONE. */
		if (!atomic_compare_exchange_strong_explicit(&ti->state, &expected, TICKET_WAITING,
							     memory_order_acquire, memory_order_acquire) &&
		    expected == TICKET_DONE)
			return ti->status;
		now = cqrs__mono_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		cqrs__futex_wait(&ti->state, TICKET_WAITING,
				deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
		/* acquire: pairs with the completer's release exchange. */
		s = atomic_load_explicit(&ti->state, memory_order_acquire);
		if (s == TICKET_DONE)
			return ti->status;
	}
}

int cqrs_ticket_status(const cqrs_ticket *t)
{
	const ticket_impl *ti = (const ticket_impl *)(const void *)t;
	return cqrs_ticket_done(t) ? ti->status : -EINPROGRESS;
}

uint64_t cqrs_ticket_seq(const cqrs_ticket *t)
{
	return cqrs_ticket_done(t) ? ((const ticket_impl *)(const void *)t)->seq : 0;
}

const char *cqrs_ticket_reason(const cqrs_ticket *t)
{
	return cqrs_ticket_done(t) ? ((const ticket_impl *)(const void *)t)->reason : "";
}
