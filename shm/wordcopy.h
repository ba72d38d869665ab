/*
 * shm/wordcopy.h - copies between private memory and shared memory that
 * another process writes (or reads) concurrently under a seqlock.
 *
 * A seqlock reader races with the writer by design: it may copy a half
 * written row, and throws the copy away when the version moved. In C11 such
 * a race is only defined when both sides use atomics, so the shared side is
 * accessed as 8-byte words with relaxed atomic loads and stores (plain movs
 * on x86-64 and arm64; ThreadSanitizer sees them as atomics). Ordering comes
 * from the seqlock's own fences, never from these copies. Shared addresses
 * must be 8-byte aligned (every region and row slot is); the private side
 * may have any alignment. The tail of a length that is not a multiple of 8
 * is copied from (or merged into) one whole word, which the slot layouts
 * always provide (rows are padded to 8 bytes).
 */
#ifndef CQRS_SHM_WORDCOPY_H
#define CQRS_SHM_WORDCOPY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/backoff.h" /* cqrs__cpu_relax */

/* ThreadSanitizer does not model standalone fences, and GCC says so with
 * -Wtsan at each atomic_thread_fence. Every access those fences order is an
 * atomic itself, so TSan has no data race to miss; the fences stay as they
 * are (they are what orders the protocol on real hardware). */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif

_Static_assert(sizeof(_Atomic uint64_t) == 8, "_Atomic uint64_t has the plain layout");

/* shared -> private, len bytes */
static inline void cqrs__words_load(void *dst, const void *shared, size_t len)
{
	const _Atomic uint64_t *s = shared;
	unsigned char *d = dst;
	size_t i, n = len / 8;

	for (i = 0; i < n; i++) {
		uint64_t w = atomic_load_explicit(&s[i], memory_order_relaxed); /* ordered by the seqlock */
		memcpy(d + 8 * i, &w, 8);
	}
	if (len % 8) {
		uint64_t w = atomic_load_explicit(&s[n], memory_order_relaxed); /* ordered by the seqlock */
		memcpy(d + 8 * n, &w, len % 8);
	}
}

/* private -> shared, len bytes (the tail word's extra bytes are zeroed) */
static inline void cqrs__words_store(void *shared, const void *src, size_t len)
{
	_Atomic uint64_t *d = shared;
	const unsigned char *s = src;
	size_t i, n = len / 8;

	for (i = 0; i < n; i++) {
		uint64_t w;
		memcpy(&w, s + 8 * i, 8);
		atomic_store_explicit(&d[i], w, memory_order_relaxed); /* ordered by the seqlock */
	}
	if (len % 8) {
		uint64_t w = 0;
		memcpy(&w, s + 8 * n, len % 8);
		atomic_store_explicit(&d[n], w, memory_order_relaxed); /* ordered by the seqlock */
	}
}

/* shared words = 0 */
static inline void cqrs__words_zero(void *shared, size_t nwords)
{
	_Atomic uint64_t *d = shared;

	for (size_t i = 0; i < nwords; i++)
		atomic_store_explicit(&d[i], 0, memory_order_relaxed); /* ordered by the caller's fence */
}

#endif
