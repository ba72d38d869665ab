/*
 * core/backoff.h - how a thread waiting for another passes the time before
 * it sleeps: a few pause-spins, then sched_yield()s, then the caller's
 * futex. One policy for every answer a caller waits on (tickets,
 * cqrs_view_wait, gateway replies).
 *
 * Why yield rather than spin: where threads outnumber cores, the thread we
 * wait for (the command thread, a projector, io_uring's worker) may need
 * our core. A pause-spinning waiter keeps it until the scheduler preempts
 * it, which on a busy 2-core machine is hundreds of microseconds, and the
 * answer arrives only then (measured: command-to-visible p50 60-180 us
 * with a 28 us pause-spin, 8-11 us with this policy). Where cores are free,
 * a yield returns at once (about 0.25 us) and the waiter still sees the
 * answer within a microsecond; it sleeps on the futex only after
 * CQRS_BACKOFF_YIELDS yields (at least ~100 us, at most
 * CQRS_BACKOFF_YIELD_NS or the caller's deadline), so a wait that ends
 * soon costs no wake-up.
 */
#ifndef CQRS_CORE_BACKOFF_H
#define CQRS_CORE_BACKOFF_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"

#define CQRS_BACKOFF_SPINS 64          /* pause-spins first (about 1-10 us) */
#define CQRS_BACKOFF_YIELDS 500        /* then at most this many sched_yield()s */
#define CQRS_BACKOFF_YIELD_NS 500000u  /* ... for at most this long (a yield
					* lasts as long as the threads it lets
					* run) */

static inline void cqrs__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

typedef struct {
	uint32_t n, spins, yields;
	uint64_t deadline; /* the caller's, monotonic ns (UINT64_MAX: none) */
	uint64_t until;    /* yields stop here; set at the first yield */
} cqrs_backoff;

static inline cqrs_backoff cqrs__backoff_make(uint32_t spins, uint32_t yields, uint64_t deadline)
{
	return (cqrs_backoff){ 0, spins, yields, deadline, 0 };
}

/* Passes one step of the wait. False once the spins and yields are used
 * up, or the yields' time or the caller's deadline has passed: the caller
 * sleeps now (and keeps getting false after). */
static inline bool cqrs__backoff_step(cqrs_backoff *b)
{
	if (b->n < b->spins) {
		cqrs__cpu_relax();
	} else if (b->n - b->spins < b->yields) {
		uint64_t now = cqrs__mono_ns();

		if (!b->until)
			b->until = now + CQRS_BACKOFF_YIELD_NS < b->deadline ? now + CQRS_BACKOFF_YIELD_NS
									   : b->deadline;
		if (now >= b->until) {
			b->n = b->spins + b->yields;
			return false;
		}
		sched_yield();
	} else {
		return false;
	}
	b->n++;
	return true;
}

#endif
