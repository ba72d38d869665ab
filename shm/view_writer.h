/*
 * shm/view_writer.h - the engine side of a view: one writer (the projector
 * that owns the view) creating, filling and retiring view segments. The
 * format and the protocols are in view_format.h; readers use the public
 * API in include/cqrs_view.h.
 *
 * Contract: single writer. Every function here is called by one thread at a
 * time (the owning projector); no internal locking. Rows change only inside
 * a batch: cqrs__vw_begin ... cqrs__vw_end(applied_seq). A failed operation
 * (CQRS_EFULL, CQRS_ENOTFOUND, -EINVAL) changes nothing and leaves the batch
 * open. A writer that finds its own segment inconsistent is poisoned: every
 * later call returns CQRS_EPOISONED.
 *
 * Lifecycle:
 *   cqrs__vw_create(ctl, "orders", &cfg, &w)   segment for the next generation
 *   cqrs__vw_begin / upsert / update / delete / cqrs__vw_end(w, seq) ...
 *   cqrs__vw_publish(w)                        the directory points at it
 *   ... a rebuild: cqrs__vw_create again (generation + 1), fill, publish it,
 *       then cqrs__vw_retire(old) (readers move), cqrs__vw_close(old)
 *   shutdown: cqrs__vw_mark_clean(w), cqrs__vw_close(w) (segment stays; a
 *       restarted engine may cqrs__vw_adopt it), or cqrs__vw_retire + close.
 */
#ifndef CQRS_SHM_VIEW_WRITER_H
#define CQRS_SHM_VIEW_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "shm/control.h"
#include "shm/view_format.h"
#include "cqrs_schema.h"

typedef struct cqrs_vw cqrs_vw;

typedef struct cqrs_vw_config {
	const cqrs_schema *schema;  /* row schema (copied) */
	const char *key_field;      /* unique key: an integer, str or bytes field <= 64 bytes */
	const char *secondary[CQRS_VIEW_MAX_SECONDARY]; /* non-unique indexes (NULL-terminated or nsecondary) */
	uint32_t nsecondary;        /* 0: count the non-NULL entries */
	const char *ordered[CQRS_ORD_MAX_FIELDS + 1]; /* the ordered index's fields, in
				       order (NULL-terminated; none: no ordered index) */
	uint64_t capacity;          /* rows; CQRS_EFULL beyond */
	unsigned mode;              /* 0: 0640 */
	uint64_t generation;        /* 0: the directory's generation + 1 */
	int pretouch;               /* map every row's page now (create, adopt),
				       not a window ahead of use */
	uint64_t origin;            /* the journal the writer applies (stored in the
				       segment's live line; cqrs__vw_peek) */
} cqrs_vw_config;

/* Edits a private copy of a row; return 0 to write it back, anything else
 * to leave the row unchanged (the value is returned by cqrs__vw_update). */
typedef int (*cqrs_vw_update_fn)(void *arg, void *row, size_t row_size);

/* Creates the segment of a new generation of view (not yet in the
 * directory: see cqrs__vw_publish). Reserves the view's directory slot on
 * first use. A stale segment of this engine under the same name is
 * removed. 0, -EINVAL, -EEXIST, CQRS_EFULL (directory), -errno. */
int cqrs__vw_create(cqrs_ctl *ctl, const char *view, const cqrs_vw_config *cfg, cqrs_vw **out);

/* Takes over a cleanly shut down segment left by a dead engine (same user,
 * same schema, key and indexes as cfg, capacity at least cfg's: a view
 * that grew keeps its size; cqrs__vw_capacity says it). The caller then
 * publishes it.
 * CQRS_ECORRUPT when it was not shut down cleanly (rebuild instead),
 * -EEXIST when its owner lives, CQRS_EFORMAT on a schema or index change. */
/* The applied_seq and origin a view generation's segment holds, clean or
 * not (opened read-only and validated): a witness of how far the journal
 * named by origin once went. Returns 0, -errno (no such segment),
 * CQRS_EFORMAT / CQRS_ECORRUPT (not a valid view segment). */
int cqrs__vw_peek(const char *engine, const char *view, uint64_t generation, uint64_t *applied,
		  uint64_t *origin);

int cqrs__vw_adopt(cqrs_ctl *ctl, const char *view, uint64_t generation, const cqrs_vw_config *cfg,
		  cqrs_vw **out);

/* Points the control directory's entry at this generation. */
int cqrs__vw_publish(cqrs_vw *w);

int cqrs__vw_begin(cqrs_vw *w);

/* Inserts or overwrites the row with row's key (a whole row of row_size
 * bytes). Secondary indexes follow changed fields. O(1) expected; a rare
 * insert pays an O(capacity) index rebuild (amortized O(1)). */
int cqrs__vw_upsert(cqrs_vw *w, const void *row);

/* Read-modify-write of one row under its seqlock (fn edits a copy; the key
 * must not change: -EINVAL). 0, CQRS_ENOTFOUND, or fn's non-zero value. */
int cqrs__vw_update(cqrs_vw *w, const void *key, size_t keylen, cqrs_vw_update_fn fn, void *arg);

/* Writes len bytes at offset into one row (field writes). */
int cqrs__vw_patch(cqrs_vw *w, const void *key, size_t keylen, size_t offset, const void *src,
		  size_t len);

/* Removes a row. 0 or CQRS_ENOTFOUND. */
int cqrs__vw_delete(cqrs_vw *w, const void *key, size_t keylen);
/* Upserts every live row of from (same schema; its writer is this
 * thread) into to, inside to's open batch: a view grown into a larger
 * generation without the journal. O(from's high-water mark). */
int cqrs__vw_copy_rows(cqrs_vw *from, cqrs_vw *to);

/* Ends the batch: the view sequence goes even, applied_seq (>= the last
 * one) is published with release order, waiters are woken if any wait. */
int cqrs__vw_end(cqrs_vw *w, uint64_t applied_seq);

/* The writer's own read (no seqlock needed). 0 or CQRS_ENOTFOUND. */
int cqrs__vw_get(cqrs_vw *w, const void *key, size_t keylen, void *row_out);

int cqrs__vw_mark_clean(cqrs_vw *w); /* outside a batch */
int cqrs__vw_mark_dirty(cqrs_vw *w);
int cqrs__vw_is_clean(const cqrs_vw *w);

/* Sets RETIRED (readers move to the directory's generation) and unlinks the
 * segment's name; the mapping stays until cqrs__vw_close. */
int cqrs__vw_retire(cqrs_vw *w);

/* Unmaps and frees (the segment stays unless retired). */
void cqrs__vw_close(cqrs_vw *w);

uint64_t cqrs__vw_rows(const cqrs_vw *w);
uint64_t cqrs__vw_applied_seq(const cqrs_vw *w);
uint64_t cqrs__vw_generation(const cqrs_vw *w);
uint64_t cqrs__vw_capacity(const cqrs_vw *w);
const char *cqrs__vw_segment_name(const cqrs_vw *w);

/* The view's ordered index (its nodes NULL when there is none), for
 * tests that check the tree (cqrs__ow_check). */
const struct cqrs_ow *cqrs__vw_ordered(const cqrs_vw *w);
uint64_t cqrs__vw_rebuilds(const cqrs_vw *w); /* primary index rebuilds so far */

/* For view checkpoints (engine/checkpoint_*.c): the writer's own mapping
 * of its segment (the whole segment, size bytes) and its primary index
 * epoch. The caller reads it only between batches, or write-protects it. */
int cqrs__vw_mapping(cqrs_vw *w, uint8_t **base, size_t *size, uint32_t *epoch);

/* After a checkpoint's bytes were copied into a just created (unpublished)
 * segment through cqrs__vw_mapping: takes epoch as the primary index's,
 * forgets that the version words are its own, and checks the ordered
 * index and the row counts as cqrs__vw_adopt does. 0 or CQRS_ECORRUPT. */
int cqrs__vw_restored(cqrs_vw *w, uint32_t epoch);

/* Test hook: makes the row's seqlock odd and leaves it so, as a writer
 * killed mid-update would. The view is unusable for that row afterwards. */
int cqrs__vw_test_leave_odd(cqrs_vw *w, const void *key, size_t keylen);

#endif
