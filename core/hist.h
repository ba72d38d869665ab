/*
 * core/hist.h - a fixed-size log-linear latency histogram (HdrHistogram
 * style, 1/16 relative precision, 0 .. 2^64 ns). Position-independent and
 * flat, so it can live in a shared-memory counters region: a single writer
 * records with relaxed atomic adds (readers in other processes may see a
 * percentile that is off by the handful of samples in flight, never a torn
 * count).
 *
 * Bucket of v: v < 16 -> v; else with m = floor(log2 v):
 *   (m - 3) * 16 + ((v >> (m - 4)) & 15)
 */
#ifndef CQRS_CORE_HIST_H
#define CQRS_CORE_HIST_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "cqrs_counters.h"

#define CQRS_HIST_BUCKETS 1024

typedef struct cqrs_hist {
	_Atomic uint64_t count[CQRS_HIST_BUCKETS];
} cqrs_hist;

static inline unsigned cqrs__hist_bucket(uint64_t v)
{
	unsigned m;

	if (v < 16)
		return (unsigned)v;
	m = 63u - (unsigned)__builtin_clzll(v);
	return (m - 3) * 16 + (unsigned)((v >> (m - 4)) & 15);
}

/* Smallest value that falls in bucket b (the counters' readers use the
 * same function from the public header). */
static inline uint64_t cqrs__hist_bucket_low(unsigned b)
{
	return cqrs_counters_bucket_low(b);
}

/* Single writer: relaxed is enough; nothing else is ordered by a count. */
static inline void cqrs__hist_record(cqrs_hist *h, uint64_t v)
{
	_Atomic uint64_t *c = &h->count[cqrs__hist_bucket(v)];
	/* relaxed load+store, not fetch_add: one writer, and no locked op. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Multi-writer variant (threads sharing one histogram). */
static inline void cqrs__hist_record_mt(cqrs_hist *h, uint64_t v)
{
	/* relaxed RMW: counts only, orders nothing else. */
	atomic_fetch_add_explicit(&h->count[cqrs__hist_bucket(v)], 1, memory_order_relaxed);
}

static inline void cqrs__hist_reset(cqrs_hist *h)
{
	for (unsigned i = 0; i < CQRS_HIST_BUCKETS; i++)
		atomic_store_explicit(&h->count[i], 0, memory_order_relaxed); /* counts only */
}

static inline uint64_t cqrs__hist_total(const cqrs_hist *h)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < CQRS_HIST_BUCKETS; i++)
		n += atomic_load_explicit(&h->count[i], memory_order_relaxed); /* counts only */
	return n;
}

/* Value at quantile q (0..1): the midpoint of the bucket holding it; 0 if
 * empty. */
static inline uint64_t cqrs__hist_quantile(const cqrs_hist *h, double q)
{
	uint64_t total = cqrs__hist_total(h), seen = 0, rank;

	if (total == 0)
		return 0;
	rank = (uint64_t)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	for (unsigned i = 0; i < CQRS_HIST_BUCKETS; i++) {
		seen += atomic_load_explicit(&h->count[i], memory_order_relaxed); /* counts only */
		if (seen > rank) {
			uint64_t lo = cqrs__hist_bucket_low(i);
			uint64_t hi = i + 1 < CQRS_HIST_BUCKETS ? cqrs__hist_bucket_low(i + 1) : lo;
			return lo + (hi - lo) / 2;
		}
	}
	return 0;
}

#endif
