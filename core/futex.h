/*
 * core/futex.h - thin wrappers over futex(2) on 32-bit words that may live
 * in shared memory (so never FUTEX_PRIVATE_FLAG): wait strategies of the
 * rings and cqrs_view_wait() block here across processes.
 *
 * The protocol every user follows (lost-wakeup free):
 *   waiter: announce itself (increment a waiters word, seq_cst), re-check
 *           the condition, then cqrs__futex_wait(word, value_seen).
 *   waker:  publish the new value (release), then, only if the waiters word
 *           is non-zero (seq_cst load), cqrs__futex_wake(word).
 * The seq_cst pair (waiter's increment, waker's load) makes it impossible
 * for the waker to miss a waiter that missed the new value.
 */
#ifndef CQRS_CORE_FUTEX_H
#define CQRS_CORE_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleeps while *word == expected, at most timeout_ns (UINT64_MAX: forever).
 * Returns 0 when woken (or the value already differed), -ETIMEDOUT, or
 * -EINTR. Spurious wakeups are possible: callers loop on their condition. */
static inline int cqrs__futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;
	long rc;

	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tp = &ts;
	}
	rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, tp, NULL, 0);
	if (rc == 0 || errno == EAGAIN)
		return 0;
	return -errno;
}

/* Wakes every waiter on word. */
static inline void cqrs__futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

#endif
