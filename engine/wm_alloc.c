/*
 * engine/wm_alloc.c - see wm_alloc.h.
 *
 * Huge pages: the write model is a few large hash tables and many small
 * aggregates, read at random by the command thread; with 4 KiB pages
 * nearly every probe of a large table is also a TLB miss. The arena's
 * extent hooks are jemalloc's own, except that every extent it maps is
 * marked MADV_HUGEPAGE (2 MiB-aligned interior only), so transparent huge
 * pages back it where the kernel allows them ("madvise" or "always";
 * "never" leaves it as before).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

#include <jemalloc/jemalloc.h>

#include "wm_alloc.h"

static unsigned arena_index;
static int arena_ok;
/* One explicit tcache per thread that uses the write model (the command
 * thread, recovery's helper): allocations stay lock-free and in this
 * arena. A thread's tcache is destroyed (its cached objects flushed back
 * to the arena) when the thread exits: engines restarted in one process
 * start new threads, and jemalloc has a few thousand tcache ids in all.
 * The destructor lives in this library: it must stay loaded while threads
 * that used the write model are alive (the key is never deleted). */
static _Thread_local unsigned tcache_index;
static _Thread_local int tcache_state; /* 0 unknown, 1 ok, -1 unavailable */
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static pthread_key_t tcache_key; /* value: tcache index + 1, for the destructor */
static int tcache_key_ok;

/* Before 5.3, jemalloc calls a custom alloc hook during arenas.create
 * with no arena yet, and its default alloc crashes on that: plain arena
 * there. */
#define HUGE_HOOKS (JEMALLOC_VERSION_MAJOR > 5 || (JEMALLOC_VERSION_MAJOR == 5 && JEMALLOC_VERSION_MINOR >= 3))

#if HUGE_HOOKS
#define HUGE_PAGE ((uintptr_t)2 << 20)

static extent_hooks_t *default_hooks; /* jemalloc's, read from arena 0 */
static extent_hooks_t huge_hooks;     /* the same, with huge_alloc */

static void *huge_alloc(extent_hooks_t *h, void *addr, size_t size, size_t align, bool *zero,
			bool *commit, unsigned arena)
{
	void *p = default_hooks->alloc(default_hooks, addr, size, align, zero, commit, arena);
	uintptr_t lo, hi;

	(void)h;
	if (p) {
		lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
		hi = ((uintptr_t)p + size) & ~(HUGE_PAGE - 1);
		if (hi > lo)
			(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* a hint: may fail */
	}
	return p;
}
#endif

/* Freed pages stay with the arena (never purged back to the kernel): the
 * command thread's next allocations reuse them instead of faulting in
 * fresh pages, which a VM may have to zero first - on the 2-core VM that
 * zeroing was 70% of a slow replay's helper thread. The write model's
 * memory stays at its peak, as a trading system's would anyway. */
static void keep_pages(unsigned arena)
{
	char name[64];
	ssize_t never = -1;

	snprintf(name, sizeof name, "arena.%u.dirty_decay_ms", arena);
	(void)mallctl(name, NULL, NULL, &never, sizeof never);
	snprintf(name, sizeof name, "arena.%u.muzzy_decay_ms", arena);
	(void)mallctl(name, NULL, NULL, &never, sizeof never);
}

/* The thread-exit destructor of tcache_key (runs on the exiting thread). */
static void tcache_destroy(void *v)
{
	unsigned index = (unsigned)((uintptr_t)v - 1);

	tcache_state = -1; /* a later free on this thread goes without one */
	(void)mallctl("tcache.destroy", NULL, NULL, &index, sizeof index);
}

static void arena_create(void)
{
	size_t sz = sizeof arena_index;

#if HUGE_HOOKS
	size_t hsz = sizeof default_hooks;
	extent_hooks_t *hooks = &huge_hooks;

	if (mallctl("arena.0.extent_hooks", &default_hooks, &hsz, NULL, 0) == 0 && default_hooks) {
		huge_hooks = *default_hooks;
		huge_hooks.alloc = huge_alloc;
		arena_ok = mallctl("arenas.create", &arena_index, &sz, &hooks, sizeof hooks) == 0;
	}
#endif
	if (!arena_ok) /* no hooks: a plain arena */
		arena_ok = mallctl("arenas.create", &arena_index, &sz, NULL, 0) == 0;
	if (arena_ok)
		keep_pages(arena_index);
	tcache_key_ok = pthread_key_create(&tcache_key, tcache_destroy) == 0;
}

static int flags(void)
{
	pthread_once(&arena_once, arena_create);
	if (!arena_ok)
		return 0;
	if (tcache_state == 0) {
		size_t sz = sizeof tcache_index;

		/* Without a destructor the tcache would outlive the thread:
		 * use none instead. */
		tcache_state = tcache_key_ok &&
			       mallctl("tcache.create", &tcache_index, &sz, NULL, 0) == 0 ? 1 : -1;
		if (tcache_state > 0 &&
		    pthread_setspecific(tcache_key, (void *)((uintptr_t)tcache_index + 1)) != 0) {
			tcache_destroy((void *)((uintptr_t)tcache_index + 1));
			tcache_state = -1;
		}
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
