/*
 * core/clock.h - clocks used across cqrs: monotonic nanoseconds for latency
 * and timeouts, wall-clock nanoseconds for event timestamps. Both are vDSO
 * calls (no syscall) on Linux.
 */
#ifndef CQRS_CORE_CLOCK_H
#define CQRS_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t cqrs__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int64_t cqrs__wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
