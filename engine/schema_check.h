/*
 * engine/schema_check.h - reading old records as the registered layout:
 * the comparison of two layouts of one record type, the plan that converts
 * one into the other, and the replay side's per-segment table (the journal
 * segment's embedded event schemas against the registered ones).
 *
 * The comparison (cqrs__schema_compare) is pure: two descriptors in, a
 * verdict and the first difference in words out. Whatever stores an
 * event's (or a row's) layout beside the data calls it against the
 * registered one: the journal's segment headers here (engine/replay.c,
 * engine/proj_rebuild.c, engine/proj_deadletter.c); write-model snapshots
 * and view checkpoints are meant to do the same with the descriptors they
 * store, taking SAME as "load as is" and anything else as "do not load
 * (rebuild from the journal, which converts)".
 *
 * Verdicts, in order (SBE's rule first):
 *   SAME       every field has the same name, type, offset and size (the
 *              record names may differ): the bytes are read in place;
 *   APPENDED   the registered layout keeps every old field (name, type,
 *              offset, size, position) and adds fields after them: old
 *              fields copied, new ones get the declared default (or zero);
 *   BY_NAME    fields moved or renamed, added or dropped, but every
 *              registered field the old layout names has the same type and
 *              size there: fields copied by name, the rest defaulted;
 *              allowed only for a type registered with
 *              CQRS_EVENT_MAP_BY_NAME (cqrs_register_event_options);
 *   DIFFERENT  anything else (a field changed type or size).
 * An upcaster registered for the type (cqrs_register_upcaster) converts
 * every layout that is not SAME, starting from the record the automatic
 * rules give (defaults, then fields with the same name, type and size).
 *
 * The replay table (cqrs_schema_check) is built per journal segment, when
 * the iterator enters it (cqrs__journal_iter_on_segment): for each
 * registered event type, same_size[type] is its record size when the
 * segment's layout is SAME, else UINT32_MAX. Per event the hot path is one
 * load and one compare (cqrs__schema_check_event, inline); converted
 * records go into one scratch buffer per replay, no allocation per event.
 * A type whose old layout cannot be read is refused when a record of it
 * is met (CQRS_EFORMAT naming the type, the segment and the first field
 * that differs), so an old layout nothing in the journal uses blocks
 * nothing.
 */
#ifndef CQRS_ENGINE_SCHEMA_CHECK_H
#define CQRS_ENGINE_SCHEMA_CHECK_H

#include <stdint.h>

#include "cqrs.h"
#include "cqrs_schema.h"
#include "engine/engine_internal.h"
#include "engine/journal/journal.h"

/* ---- the comparison -------------------------------------------------------- */

typedef enum cqrs_schema_match {
	CQRS_SCHEMA_SAME = 0,
	CQRS_SCHEMA_APPENDED = 1,
	CQRS_SCHEMA_BY_NAME = 2,
	CQRS_SCHEMA_DIFFERENT = 3,
} cqrs_schema_match;

typedef struct cqrs_schema_diff {
	cqrs_schema_match match;
	int field;      /* the first field (by position) that differs, or -1 (SAME) */
	char why[256];  /* that difference in words ("" when SAME) */
} cqrs_schema_diff;

/* Compares the layout `old` (stored beside the data) with `cur` (the
 * registered one), both valid descriptors. O(nfields^2), no allocation. */
void cqrs__schema_compare(const cqrs_schema *old, const cqrs_schema *cur, cqrs_schema_diff *out);

/* How to build a record of `cur` from one of `old`: copy runs of bytes
 * for the fields that have the same name, type and size in both. */
typedef struct cqrs_schema_conv {
	uint32_t from_size, to_size;
	uint32_t nops;
	struct {
		uint32_t from, to, len;
	} op[CQRS_SCHEMA_MAX_FIELDS];
} cqrs_schema_conv;

void cqrs__schema_conv_plan(const cqrs_schema *old, const cqrs_schema *cur, cqrs_schema_conv *out);

/* to (to_size bytes) = defaults (or zeros when NULL), then the plan's
 * copies from `from` (from_size bytes). */
void cqrs__schema_conv_run(const cqrs_schema_conv *c, const void *from, void *to,
			   const void *defaults);

/* ---- the replay table ------------------------------------------------------- */

typedef struct sc_type sc_type; /* schema_check.c: one type's slow-path state */

typedef struct cqrs_schema_check {
	/* Hot: the registered record size of each type whose layout in the
	 * current segment is SAME; UINT32_MAX otherwise (a record of it takes
	 * the slow path). */
	uint32_t same_size[CQRS_MAX_TYPES];
	cqrs_engine *e;
	char segment[40];             /* the current segment's file name */
	sc_type *types;               /* CQRS_MAX_TYPES of them */
	uint8_t *scratch;             /* the converted record (largest registered size) */
} cqrs_schema_check;

/* A table for replays of e's journal, attached to iterator it: computed
 * for the segment it is in now and again each time it enters another
 * (the iterator's hook points at it: close it before the iterator moves
 * again or closes). Returns 0, -ENOMEM, or the error the current segment
 * gives. Cold: a few KiB plus a scratch record, once per replay. */
int cqrs__schema_check_open(cqrs_engine *e, cqrs_journal_iter *it, cqrs_schema_check **out);

void cqrs__schema_check_close(cqrs_schema_check *c);

/* Slow path of cqrs__schema_check_event. */
int cqrs__schema_check_convert(cqrs_schema_check *c, const cqrs_jrec *r, cqrs_event *ev);

/* The record r as evolve and apply must see it: *ev with its payload in
 * place when the segment's layout of r's type is the registered one, else
 * converted into the table's scratch (valid until the next call). Returns
 * 0, or CQRS_EFORMAT (an unregistered type, a record whose size is not
 * its layout's, a layout that cannot be read, an upcaster's refusal) with
 * cqrs_last_error() naming seq, type, segment and the first difference. */
static inline int cqrs__schema_check_event(cqrs_schema_check *c, const cqrs_jrec *r,
					   cqrs_event *ev)
{
	uint32_t type = r->type, size = r->size; /* before the stores to *ev, which may alias r */
	int same = type < CQRS_MAX_TYPES && c->same_size[type] == size;

	*ev = (cqrs_event){ .seq = r->seq, .timestamp_ns = r->timestamp_ns,
			    .aggregate_id = r->aggregate_id,
			    .aggregate_version = r->aggregate_version, .type = type,
			    .size = size, .data = cqrs__jrec_payload(r) };
	if (__builtin_expect(same, 1))
		return 0;
	return cqrs__schema_check_convert(c, r, ev);
}

#endif
