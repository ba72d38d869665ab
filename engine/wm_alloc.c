/*
 * engine/wm_alloc.c - see wm_alloc.h.
 */
#include <pthread.h>
#include <string.h>

#include <jemalloc/jemalloc.h>

#include "wm_alloc.h"

static unsigned arena_index;
static int arena_ok;
/* One explicit tcache per thread that uses the write model (in practice
 * the command thread): allocations stay lock-free and in this arena. */
static _Thread_local unsigned tcache_index;
static _Thread_local int tcache_state; /* 0 unknown, 1 ok, -1 unavailable */
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_create(void)
{
	size_t sz = sizeof arena_index;
	arena_ok = mallctl("arenas.create", &arena_index, &sz, NULL, 0) == 0;
}

static int flags(void)
{
	pthread_once(&arena_once, arena_create);
	if (!arena_ok)
		return 0;
	if (tcache_state == 0) {
		size_t sz = sizeof tcache_index;
		tcache_state = mallctl("tcache.create", &tcache_index, &sz, NULL, 0) == 0 ? 1 : -1;
	}
	return MALLOCX_ARENA(arena_index) |
	       (tcache_state > 0 ? MALLOCX_TCACHE(tcache_index) : MALLOCX_TCACHE_NONE);
}

int cqrs_wm_arena(void)
{
	flags();
	return arena_ok ? (int)arena_index : -1;
}

void *cqrs_wm_calloc(size_t size)
{
	return mallocx(size ? size : 1, flags() | MALLOCX_ZERO);
}

void cqrs_wm_free(void *p, size_t size)
{
	(void)size;
	if (p)
		dallocx(p, flags());
}

static void *ck_alloc(size_t n)
{
	return mallocx(n ? n : 1, flags());
}

static void *ck_realloc(void *p, size_t old, size_t n, bool defer)
{
	(void)old; (void)defer;
	return p ? rallocx(p, n ? n : 1, flags()) : ck_alloc(n);
}

static void ck_free(void *p, size_t n, bool defer)
{
	(void)n; (void)defer;
	if (p)
		dallocx(p, flags());
}

struct ck_malloc cqrs_wm_ck_malloc = { ck_alloc, ck_realloc, ck_free };
