/*
 * ringbuf/wait.h - the wait strategies shared by the rings (internal).
 *
 * A blocking ring call loops on a readiness check; how it passes the time
 * between checks is the strategy: CQRS_WAIT_SPIN pauses the CPU,
 * CQRS_WAIT_YIELD spins a little then yields, CQRS_WAIT_BLOCK spins, yields
 * a little, then sleeps on a futex word in the ring header following
 * core/futex.h's protocol:
 *
 *   waiter: seen = seq (acquire); waiters += 1 (seq_cst); if ready(): done;
 *           futex_wait(seq, seen); waiters -= 1
 *   waker:  publish the cursor with a seq_cst RMW, then if waiters (seq_cst
 *           load) != 0: seq += 1, futex_wake(seq)
 *
 * ready() must read the cursor with seq_cst loads: the pair (waiter's
 * waiters increment, waker's waiters load) against (waker's cursor RMW,
 * waiter's cursor load) is a store-buffering pattern, and only seq_cst on
 * all four forbids both sides missing each other.
 */
#ifndef CQRS_RINGBUF_WAIT_H
#define CQRS_RINGBUF_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/backoff.h"
#include "core/clock.h"
#include "cqrs_ring.h"
#include "core/futex.h"

/* The waker's half: call right after publishing a cursor with a seq_cst
 * RMW. A syscall only when someone sleeps. */
static inline void cqrs__ring_wake(_Atomic uint32_t *seq, _Atomic uint32_t *waiters)
{
	/* seq_cst: pairs with the waiter's seq_cst increment of waiters (see above). */
	if (atomic_load_explicit(waiters, memory_order_seq_cst) != 0) {
		/* release: a waiter that reads the new seq also sees the cursor. */
		atomic_fetch_add_explicit(seq, 1, memory_order_release);
		cqrs__futex_wake(seq);
	}
}

/* Absolute monotonic deadline timeout_ns from now (UINT64_MAX: none). */
static inline uint64_t cqrs__deadline_after(uint64_t timeout_ns)
{
	uint64_t now;

	if (timeout_ns == CQRS_RING_FOREVER)
		return UINT64_MAX;
	now = cqrs__mono_ns();
	return timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
}

/* Nanoseconds left until deadline (CQRS_RING_FOREVER for none). */
static inline uint64_t cqrs__remaining(uint64_t deadline)
{
	uint64_t now;

	if (deadline == UINT64_MAX)
		return CQRS_RING_FOREVER;
	now = cqrs__mono_ns();
	return now >= deadline ? 0 : deadline - now;
}

/* Waits until ready(arg) returns true, at most timeout_ns
 * (CQRS_RING_FOREVER: no limit); a futex sleep lasts at most max_sleep_ns
 * so that ready() can also watch a clock. Returns 0 or -ETIMEDOUT. */
int cqrs__ring_wait(cqrs_ring_wait kind, uint64_t timeout_ns, uint64_t max_sleep_ns,
		    _Atomic uint32_t *seq, _Atomic uint32_t *waiters, bool (*ready)(void *), void *arg);

#endif
