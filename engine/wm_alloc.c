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

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* The prefaulter (cqrs_wm_prefault): a thread that faults in the extents
 * the arena maps, 2 MiB at a time from the low end (jemalloc carves
 * allocations from an extent's low addresses first), so that the command
 * thread finds its next aggregates' pages present instead of zeroing each
 * 2 MiB page on first touch: 2-9 ms on the 2-core VM, whose host backs
 * memory lazily, and every command queued behind the fault waits it out.
 * The hook only queues the range (jemalloc maps few, large extents and
 * carves the rest from what it retains: five in a benchmark run, 832 MiB
 * in all). cqrs_wm_prefault faults in what is queued on the calling
 * thread (an engine's start, with cqrs_config.pretouch: 1-3 s for those
 * 832 MiB on the VM) and starts the thread for what comes later. A full
 * queue drops a range (its pages fault in on use, as before). */
#define PREFAULT_QUEUE 64
static pthread_mutex_t pf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pf_cond = PTHREAD_COND_INITIALIZER;
static struct { uintptr_t lo, hi; } pf_queue[PREFAULT_QUEUE];
static unsigned pf_head, pf_tail; /* under pf_lock */
static pthread_once_t pf_once = PTHREAD_ONCE_INIT;

/* Takes the oldest queued range; with wait, sleeps until there is one. */
static int prefault_take(uintptr_t *lo, uintptr_t *hi, int wait)
{
	int got;

	pthread_mutex_lock(&pf_lock);
	while (wait && pf_head == pf_tail)
		pthread_cond_wait(&pf_cond, &pf_lock);
	got = pf_head != pf_tail;
	if (got) {
		*lo = pf_queue[pf_head % PREFAULT_QUEUE].lo;
		*hi = pf_queue[pf_head % PREFAULT_QUEUE].hi;
		pf_head++;
	}
	pthread_mutex_unlock(&pf_lock);
	return got;
}

/* Pages already present are left as they are; a range unmapped meanwhile
 * fails harmlessly (jemalloc retains what it maps). */
static void prefault_range(uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t p = lo; p < hi; p += HUGE_PAGE)
		if (madvise((void *)p, hi - p < HUGE_PAGE ? hi - p : HUGE_PAGE, MADV_POPULATE_WRITE))
			break; /* before Linux 5.14, or gone */
}

static void *prefault_main(void *arg)
{
	uintptr_t lo, hi;

	(void)arg;
	while (prefault_take(&lo, &hi, 1))
		prefault_range(lo, hi);
	return NULL;
}

static void prefault_start(void)
{
	pthread_t t;
	pthread_attr_t a;

	if (pthread_attr_init(&a))
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, prefault_main, NULL) == 0)
		pthread_setname_np(t, "cqrs-prefault");
	pthread_attr_destroy(&a);
}

static void prefault_queue(uintptr_t lo, uintptr_t hi)
{
	pthread_mutex_lock(&pf_lock);
	if (pf_tail - pf_head < PREFAULT_QUEUE) {
		pf_queue[pf_tail % PREFAULT_QUEUE].lo = lo;
		pf_queue[pf_tail % PREFAULT_QUEUE].hi = hi;
		pf_tail++;
		pthread_cond_signal(&pf_cond);
	}
	pthread_mutex_unlock(&pf_lock);
}

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
		prefault_queue((uintptr_t)p, (uintptr_t)p + size);
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

void cqrs_wm_prefault(void)
{
#if HUGE_HOOKS
	uintptr_t lo, hi;

	while (prefault_take(&lo, &hi, 0)) /* what is mapped already: now */
		prefault_range(lo, hi);
	pthread_once(&pf_once, prefault_start); /* what is mapped later */
#endif
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
