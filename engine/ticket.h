/*
 * engine/ticket.h - the layout behind the public cqrs_ticket and its
 * completion protocol.
 *
 * state: PENDING (0) -> WAITING (1, a thread sleeps on it) -> DONE (2).
 * The completer fills status/seq/reason, then exchanges DONE in with
 * release order and calls futex wake only if it replaced WAITING. A waiter
 * CASes PENDING -> WAITING and sleeps while the word is WAITING. Tickets are
 * process-private: private futexes would do, shared ones cost the same.
 */
#ifndef CQRS_ENGINE_TICKET_H
#define CQRS_ENGINE_TICKET_H

#include <stdatomic.h>
#include <stdint.h>

#include "cqrs.h"

enum { TICKET_PENDING = 0, TICKET_WAITING = 1, TICKET_DONE = 2 };

typedef struct ticket_impl {
	_Atomic uint32_t state;
	int32_t status;
	uint64_t seq;
	/* Set for tickets the engine owns (gateway requests): called on the
	 * command thread instead of waking a waiter. NULL for cqrs_submit's. */
	void (*on_done)(struct ticket_impl *t);
	void *cookie;
	char reason[96];
} ticket_impl;

_Static_assert(sizeof(ticket_impl) <= sizeof(cqrs_ticket), "ticket layout exceeds cqrs_ticket");

static inline ticket_impl *ticket_of(cqrs_ticket *t) { return (ticket_impl *)(void *)t; }

/* Resets a caller's ticket to PENDING before it is queued (no on_done). */
void cqrs__ticket_arm(cqrs_ticket *t);

/* Completes a ticket whose status/seq/reason are already filled in. */
void cqrs__ticket_release(ticket_impl *t);

/* Fills in and completes a ticket (command thread): reason may be NULL. */
void cqrs__ticket_complete(ticket_impl *t, int status, uint64_t seq, const char *reason);

#endif
