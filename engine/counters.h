/*
 * engine/counters.h - how engine threads update their counters in the
 * control segment (layout: include/cqrs_counters.h). Each counter has one
 * writer thread: a relaxed load and store (a plain mov on x86), no locked
 * instruction; readers in other processes load them relaxed.
 */
#ifndef CQRS_ENGINE_COUNTERS_H
#define CQRS_ENGINE_COUNTERS_H

#include <stdatomic.h>

#include "cqrs_counters.h"
#include "core/hist.h"

/* relaxed: a statistic with a single writer; orders nothing else. */
#define CTR_SET(c, field, v)                                                          \
	atomic_store_explicit((_Atomic __typeof__((c)->field) *)&(c)->field,          \
			      (__typeof__((c)->field))(v), memory_order_relaxed)
#define CTR_GET(c, field) \
	atomic_load_explicit((_Atomic __typeof__((c)->field) *)&(c)->field, memory_order_relaxed)
#define CTR_ADD(c, field, n) CTR_SET(c, field, CTR_GET(c, field) + (n))

_Static_assert(sizeof(cqrs_hist) == sizeof(((cqrs_counters *)0)->ack_latency),
	       "counters histogram matches core/hist.h");

static inline cqrs_hist *ctr_hist(uint64_t *buckets)
{
	return (cqrs_hist *)(void *)buckets;
}

#endif
