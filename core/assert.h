/*
 * core/assert.h - CQRS_ASSERT: internal invariants, checked in test,
 * asan and tsan builds (compiled with -DCQRS_DEBUG) and compiled out of
 * release builds.
 *
 * An assertion states something the code itself guarantees (an ack queue
 * never holds more than its capacity, one batch fills at a time, a seqlock
 * is odd only inside a write). It is never applied to bytes read from
 * shared memory or disk, which another process or a crash may have
 * damaged: those are validated and answered with an error code. A failed
 * assertion is a bug in this library, so it reports where and aborts.
 * In release builds the condition is not evaluated (it must have no side
 * effects) but stays visible to the compiler, so it keeps compiling.
 */
#ifndef CQRS_CORE_ASSERT_H
#define CQRS_CORE_ASSERT_H

#ifdef CQRS_DEBUG
void cqrs__assert_fail(const char *cond, const char *file, int line, const char *func)
	__attribute__((noreturn, cold));
#define CQRS_ASSERT(cond) \
	((cond) ? (void)0 : cqrs__assert_fail(#cond, __FILE__, __LINE__, __func__))
#else
#define CQRS_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

#endif
