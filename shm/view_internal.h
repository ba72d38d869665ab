/*
 * shm/view_internal.h - reader entry points for tests and the fuzz target
 * (not part of the public API).
 */
#ifndef CQRS_SHM_VIEW_INTERNAL_H
#define CQRS_SHM_VIEW_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cqrs_view.h"

/* Attaches a reader handle to an in-memory image of a view segment (8-byte
 * aligned, len bytes) after full validation. The image has no owner: a
 * seqlock that stays odd gives CQRS_EWRITERDEAD after a short spin. The
 * image must outlive the handle; cqrs_view_close releases only the handle. */
int cqrs__view_attach_image(const void *img, size_t len, cqrs_view **out);

/* How many times plain finds on this handle met a reused slot and
 * restarted their chain walk (view_format.h): for tests. */
uint64_t cqrs__view_chain_restarts(const cqrs_view *v);

/* Calls fn(arg) in every chain walk of this handle (plain and snapshot
 * finds) right after it loads the head and before it reads the row the
 * head names, so a test can run the writer in that window. NULL removes
 * it. For tests only; costs one predictable branch per walk. */
void cqrs__view_set_head_hook(cqrs_view *v, void (*fn)(void *arg), void *arg);

/* ---- for the ordered index reader (shm/ordered_reader.c) ---- */

/* The one check every call makes (a generation move), then the current
 * mapping's base and validated parameters, and whether it is an image
 * (no writer: a node that keeps changing is damage, not churn). 0 or
 * CQRS_ESTALE. */
struct cqrs_vparams;
int cqrs__view_ord_enter(cqrs_view *v, const uint8_t **base, const struct cqrs_vparams **p,
			 int *image);

/* Copies row r (< capacity) under its seqlock into dst (the view's row
 * size, rounded up to 8), with its flags. 0, CQRS_EWRITERDEAD, -EAGAIN. */
int cqrs__view_row_copy(cqrs_view *v, uint64_t r, void *dst, uint32_t *flags);

/* The handle's snapshot buffer, grown to at least bytes. NULL: no memory.
 * Earlier pointers into it are invalid after a call that grows it. */
uint8_t *cqrs__view_snap_buf(cqrs_view *v, size_t bytes);

/* The handle's row scratch buffer (one row, rounded up to 8). */
uint8_t *cqrs__view_row_buf(cqrs_view *v);

#endif
