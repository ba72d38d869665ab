/*
 * ringbuf/wait.c - the wait strategies (see wait.h).
 */
#include <errno.h>
#include <sched.h>

#include "ringbuf/wait.h"

enum {
	YIELD_SPINS = 8,   /* pause-spins before yielding (YIELD): threads outnumber
			    * cores, so the thread we wait for may need our core */
	BLOCK_SPINS = 256, /* pause-spins before yielding (BLOCK) */
	YIELD_CHECKS = 16, /* yields before sleeping (BLOCK) */
	CLOCK_EVERY = 1024 /* spins between two reads of the clock */
};

int cqrs__ring_wait(cqrs_ring_wait kind, uint64_t timeout_ns, uint64_t max_sleep_ns,
		    _Atomic uint32_t *seq, _Atomic uint32_t *waiters, bool (*ready)(void *), void *arg)
{
	const unsigned SPIN_CHECKS = kind == CQRS_WAIT_YIELD ? YIELD_SPINS : BLOCK_SPINS;
	uint64_t deadline, now;
	unsigned n;

	if (ready(arg))
		return 0;
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	deadline = cqrs__deadline_after(timeout_ns);

	for (n = 1;; n++) {
		if (kind == CQRS_WAIT_SPIN || n < SPIN_CHECKS)
			cqrs__cpu_relax();
		else if (kind == CQRS_WAIT_YIELD || n < SPIN_CHECKS + YIELD_CHECKS)
			sched_yield();
		else {
			uint64_t sleep_ns;
			/* acquire: read seq before announcing ourselves, so a wake that
			 * happens after our ready() check changes it and the futex
			 * wait returns at once. */
			uint32_t seen = atomic_load_explicit(seq, memory_order_acquire);

			/* seq_cst: pairs with the waker's seq_cst load of waiters. */
			atomic_fetch_add_explicit(waiters, 1, memory_order_seq_cst);
			if (ready(arg)) {
				/* relaxed: only a count; nothing is published by it. */
				atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
				return 0;
			}
			now = cqrs__mono_ns();
			if (now >= deadline) {
				atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
				return -ETIMEDOUT;
			}
			sleep_ns = deadline - now;
			if (sleep_ns > max_sleep_ns)
				sleep_ns = max_sleep_ns;
			(void)cqrs__futex_wait(seq, seen, sleep_ns);
			/* relaxed: as above. */
			atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
			if (ready(arg))
				return 0;
			continue;
		}
		if (ready(arg))
			return 0;
		if (kind == CQRS_WAIT_SPIN || n < SPIN_CHECKS ? n % CLOCK_EVERY == 0 : true) {
			if (deadline != UINT64_MAX && cqrs__mono_ns() >= deadline)
				return ready(arg) ? 0 : -ETIMEDOUT;
		}
	}
}
