/*
 * engine/model/wm_alloc.h - the write model's allocator: a dedicated jemalloc
 * arena (created once per process, on first use) so aggregates and the
 * write model's hash tables stay together, away from the I/O buffers and
 * the rest of the heap, and can be inspected through jemalloc's arena stats.
 */
#ifndef CQRS_ENGINE_WM_ALLOC_H
#define CQRS_ENGINE_WM_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include <ck_malloc.h>

/* Zeroed allocation from the write-model arena; NULL on failure. */
void *cqrs__wm_calloc(size_t size);
void cqrs__wm_free(void *p, size_t size);

/* ck_malloc adaptor over the arena, for ck_ht tables of the write model. */
extern struct ck_malloc cqrs_wm_ck_malloc;

/* Largest entry count a write-model table is sized for up front (stores,
 * the version map): ck_ht counts its slots in 32 bits. */
#define CQRS_WM_MAX_ENTRIES (UINT64_C(1) << 30)

/* Slots for a write-model ck_ht that holds entries before it grows: ck_ht
 * keeps its load factor at or below 0.5 (it doubles when entries * 2 >
 * slots) and rounds slots up to a power of two. */
static inline uint64_t cqrs__ck_ht_slots(uint64_t entries)
{
	return entries < 32 ? 64 : entries * 2;
}

/* Faults in the memory the arena has mapped so far, on the calling thread
 * (waiting for a range the prefault thread is in the middle of), and
 * starts (once per process) that thread, which faults in what the arena
 * maps later (wm_alloc.c has why). cqrs_config.pretouch asks for it at an
 * engine's start. 0, or -errno: -EINVAL where the kernel lacks
 * MADV_POPULATE_WRITE (before 5.14), -ENOTSUP without the arena's hooks. */
int cqrs__wm_prefault(void);

/* Arena index (for stats); -1 if the arena could not be created and the
 * default arena is in use. */
int cqrs__wm_arena(void);

#endif
