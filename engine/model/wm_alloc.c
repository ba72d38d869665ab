/*
 * engine/model/wm_alloc.c - see wm_alloc.h.
 *
 * Huge pages: the write model is a few large hash tables and many small
 * aggregates, read at random by the command thread; with 4 KiB pages
 * nearly every probe of a large table is also a TLB miss. The arena's
 * extent hooks are jemalloc's own, except that every extent it maps is
 * marked MADV_HUGEPAGE (2 MiB-aligned interior only), so transparent huge
 * pages back it where the kernel allows them ("madvise" or "always";
 * "never" leaves it as before).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

#include <jemalloc/jemalloc.h>

#include "engine/model/wm_alloc.h"

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

/* The prefaulter (cqrs__wm_prefault): a thread that faults in the extents
 * the arena maps, 2 MiB at a time from the low end (jemalloc carves
 * allocations from an extent's low addresses first), so that the command
 * thread finds its next aggregates' pages present instead of zeroing each
 * 2 MiB page on first touch: 2-9 ms on the 2-core VM, whose host backs
 * memory lazily, and every command queued behind the fault waits it out.
 * The hook only queues the range (jemalloc maps few, large extents and
 * carves the rest from what it retains: five in a benchmark run, 832 MiB
 * in all). cqrs__wm_prefault faults in what is queued on the calling
 * thread (an engine's start, with cqrs_config.pretouch, after the write
 * model is rebuilt: 1-3 s for those 832 MiB on the VM) and starts the
 * thread for what comes later. That is ahead of use only where the thread
 * gets there first: a table that grows while the engine runs is touched
 * at once, at random, by the command thread. A full queue drops a range
 * (its pages fault in on use, as before). The cost is memory: everything
 * the arena maps becomes resident, the unused end of its last extent too.
 * The thread inherits the CPU affinity of the engine's starting thread. */
#define PREFAULT_QUEUE 64
static pthread_mutex_t pf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pf_cond = PTHREAD_COND_INITIALIZER; /* a range queued */
static pthread_cond_t pf_idle = PTHREAD_COND_INITIALIZER; /* the thread is done with one */
static struct { uintptr_t lo, hi; } pf_queue[PREFAULT_QUEUE];
static unsigned pf_head, pf_tail; /* under pf_lock, as the two below */
static int pf_busy;               /* the thread is faulting in a range */
static int pf_started;            /* the thread runs (in this process) */

/* Takes the oldest queued range; with wait, sleeps until there is one.
 * Called with pf_lock held. */
static int prefault_take(uintptr_t *lo, uintptr_t *hi, int wait)
{
	while (wait && pf_head == pf_tail)
		pthread_cond_wait(&pf_cond, &pf_lock);
	if (pf_head == pf_tail)
		return 0;
	*lo = pf_queue[pf_head % PREFAULT_QUEUE].lo;
	*hi = pf_queue[pf_head % PREFAULT_QUEUE].hi;
	pf_head++;
	return 1;
}

/* Faults in [lo, hi) 2 MiB at a time. MADV_POPULATE_WRITE faults pages in
 * as a write would, without writing: pages present (jemalloc may have
 * handed them out and the command thread be writing them) keep their
 * contents. A range unmapped meanwhile fails harmlessly (jemalloc retains
 * what it maps). Returns 0 or the first error (EINVAL before Linux 5.14). */
static int prefault_range(uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t p = lo; p < hi; p += HUGE_PAGE)
		if (madvise((void *)p, hi - p < HUGE_PAGE ? hi - p : HUGE_PAGE, MADV_POPULATE_WRITE))
			return errno;
	return 0;
}

static void *prefault_main(void *arg)
{
	uintptr_t lo, hi;

	(void)arg;
	pthread_setname_np(pthread_self(), "cqrs-prefault");
	pthread_mutex_lock(&pf_lock);
	while (prefault_take(&lo, &hi, 1)) {
		pf_busy = 1;
		pthread_mutex_unlock(&pf_lock);
		(void)prefault_range(lo, hi); /* the start reported whether it works */
		pthread_mutex_lock(&pf_lock);
		pf_busy = 0;
		pthread_cond_broadcast(&pf_idle);
	}
	pthread_mutex_unlock(&pf_lock);
	return NULL;
}

/* A forked child has none of the parent's threads: it starts its own
 * (and gets a fresh lock, in case the parent's was held at the fork). */
static void prefault_atfork_child(void)
{
	pthread_mutex_init(&pf_lock, NULL);
	pthread_cond_init(&pf_cond, NULL);
	pthread_cond_init(&pf_idle, NULL);
	pf_head = pf_tail = 0;
	pf_busy = pf_started = 0;
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

	(void)pthread_atfork(NULL, NULL, prefault_atfork_child);
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

int cqrs__wm_prefault(void)
{
#if HUGE_HOOKS
	uintptr_t lo, hi;
	int err = 0, start;

	/* What is mapped already, now: on this thread, and what the thread
	 * is in the middle of. */
	pthread_mutex_lock(&pf_lock);
	while (prefault_take(&lo, &hi, 0)) {
		pthread_mutex_unlock(&pf_lock);
		if (!err)
			err = prefault_range(lo, hi);
		pthread_mutex_lock(&pf_lock);
	}
	while (pf_busy)
		pthread_cond_wait(&pf_idle, &pf_lock);
	start = !pf_started && !err;
	pf_started |= start;
	pthread_mutex_unlock(&pf_lock);
	if (start) { /* what is mapped later: the thread */
		pthread_t t;
		pthread_attr_t a;

		if (pthread_attr_init(&a) == 0) {
			pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
			if (pthread_create(&t, &a, prefault_main, NULL))
				err = EAGAIN;
			pthread_attr_destroy(&a);
		}
		if (err) {
			pthread_mutex_lock(&pf_lock);
			pf_started = 0;
			pthread_mutex_unlock(&pf_lock);
		}
	}
	return -err;
#else
	return -ENOTSUP;
#endif
}

int cqrs__wm_arena(void)
{
	flags();
	return arena_ok ? (int)arena_index : -1;
}

void *cqrs__wm_calloc(size_t size)
{
	return mallocx(size ? size : 1, flags() | MALLOCX_ZERO);
}

void cqrs__wm_free(void *p, size_t size)
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
