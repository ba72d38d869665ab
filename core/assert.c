/*
 * core/assert.c - where a failed CQRS_ASSERT ends (test, asan and tsan
 * builds only): it names the invariant and its place, then aborts so the
 * sanitizer or the core dump shows the stack.
 */
#include "core/assert.h"

#ifdef CQRS_DEBUG
#include <stdio.h>
#include <stdlib.h>

void cqrs__assert_fail(const char *cond, const char *file, int line, const char *func)
{
	fprintf(stderr, "cqrs: internal invariant failed: %s (%s:%d, %s)\n", cond, file, line, func);
	abort();
}
#else
typedef int cqrs__assert_unused; /* ISO C wants a translation unit to declare something */
#endif
