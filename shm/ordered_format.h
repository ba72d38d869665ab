/*
 * shm/ordered_format.h - the ordered index of a view: a skip list in a
 * fixed node pool inside the view segment, written by the view's single
 * writer and read by any number of processes without locks or
 * registration.
 *
 * WHAT IT INDEXES
 *   A view may declare one ordered index over 1..CQRS_VIEW_MAX_ORDERED of
 *   its row fields (e.g. instrument, side, price). Every live row is in it
 *   exactly once. Its key is the fields' values encoded as order-preserving
 *   bytes, concatenated, compared with memcmp (one comparison for every
 *   type and composite):
 *     unsigned integers, bool, ts   big-endian
 *     signed integers               big-endian with the sign bit flipped
 *     f64                           IEEE bits; negative: all bits flipped,
 *                                   else the sign bit flipped; big-endian
 *                                   (-0.0 sorts before +0.0, NaNs at the ends)
 *     str, bytes                    the field's bytes (zero padded)
 *   Duplicates are allowed: entries are ordered by (key, row number), which
 *   is unique, so every position in the list has one exact name.
 *
 * LAYOUT (region at cqrs_vparams.ord_off, 64-byte aligned)
 *   capacity + 1 nodes of ord_node_size bytes (a multiple of 64). Node r
 *   (r < capacity) belongs to row slot r; node `capacity` is the head, whose
 *   tower has every level and no key.
 *     0    u32 seq       the node's version: odd while the writer
 *                        (re)initialises it, +2 per initialisation: a
 *                        node freed and reused always has a new version
 *     4    u32 height    levels 1..ord_levels the node is linked on
 *     8    key           ord_klen bytes padded to 8
 *     8+K  next[levels]  u64 links, level 0 first
 *     ...  prev          u64 link, level 0 backwards
 *   A link is (seq << 32) | (node + 1): the node it names and the version
 *   it had when the link was stored; 0 ends the list. prev of the first
 *   node names the head.
 *   ord_levels = clamp(ceil(log4(capacity)) + 1, 2, 16); node heights are
 *   drawn with p = 1/4 from the writer's private PRNG, so a search visits
 *   O(log n) nodes.
 *
 * WRITER (single, no CAS, no allocation; shm/ordered_writer.c)
 *   Insert node r at (k, r): find the predecessors on every level; then
 *       seq = s + 1 relaxed; fence(release)
 *       height, key, next[l] = pred[l].next[l], prev = pred[0]  (relaxed)
 *       seq = s + 2 release        the node is complete before any link names it
 *       succ.prev = link(r)        release
 *       pred[l].next[l] = link(r)  release, from level 0 up
 *   Remove node r: pred[l].next[l] = r.next[l] (release, from the top level
 *   down), then succ.prev = r.prev (release). The node keeps its key and
 *   links, unchanged, until the row slot is used again.
 *   A row whose key changes is removed and inserted again (new version).
 *   Cost: O(log n) expected per insert, delete or key move; an update that
 *   keeps the key costs one encode and one memcmp.
 *
 * READER (shm/ordered_reader.c)
 *   Reading a node through a link (n, s): load seq (acquire) and require
 *   s; copy what is needed (key, one link); fence(acquire); load seq again
 *   and require s. A version that differs means the node was reused (or is
 *   being initialised) since the link was stored: the reader restarts.
 *   Claim (as for the secondary chains of view_format.h): from a node N
 *   read at version s, linked or removed but not reused, following next[0]
 *   reaches every node that stayed linked with a position after N's. True
 *   when N is linked; a removed node's links were its successors when it
 *   was removed, nothing enters between them afterwards that the reader
 *   could miss except nodes inserted after the removal (not required), and
 *   its successor is either linked or removed-not-reused (else the version
 *   check fails), so by induction. The same holds backwards along prev and
 *   for the search down the levels. So every row that was in the range for
 *   the whole call is delivered exactly once, in order.
 *   Restart: the reader remembers the position (key, row) of the last row
 *   it delivered and searches again from the head for the next position
 *   strictly after (ascending) or before (descending) it; nothing is
 *   delivered twice. Restarts per call are bounded (then -EAGAIN).
 *   Rows: the reader copies row n under the row's seqlock and delivers it
 *   only when the copy is LIVE and its fields encode to the node's key
 *   (the row may have moved on since); so every row is untorn and in place.
 *   Snapshot (CQRS_RANGE_SNAPSHOT): the whole walk runs between two even
 *   reads of view_seq, as CQRS_FIND_SNAPSHOT does, buffered, retried.
 *   Validation: every link is range-checked (node <= capacity) before it is
 *   followed, heights are checked against ord_levels, positions must
 *   strictly increase along a walk (decrease backwards) and every walk is
 *   bounded by a step budget, so a corrupt or hostile segment gives
 *   CQRS_ECORRUPT, never an out-of-bounds read or an endless loop.
 *   Versions are 32 bits: a reader would have to stall across 2^31 reuses
 *   of one node between its two loads to be fooled (as Linux's seqcount).
 */
#ifndef CQRS_SHM_ORDERED_FORMAT_H
#define CQRS_SHM_ORDERED_FORMAT_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "cqrs_common.h"
#include "cqrs_schema.h"
#include "shm/view_format.h"

#define CQRS_ORD_MAX_LEVELS 16u
#define CQRS_ORD_KEY_MAX 64u
_Static_assert(CQRS_ORD_KEY_MAX <= CQRS_VIEW_KEY_MAX, "encoded keys fit a key buffer");

typedef struct cqrs_onode {
	_Atomic uint32_t seq;
	_Atomic uint32_t height;
	/* key words, then next[levels], then prev (offsets in cqrs_ord_geom) */
} cqrs_onode;

/* Offsets inside a node, derived from the parameters. */
typedef struct cqrs_ord_geom {
	uint32_t klen, kwords, levels, node_size;
	uint32_t next_off, prev_off;
} cqrs_ord_geom;

static inline void cqrs__ord_geom(cqrs_ord_geom *g, uint32_t klen, uint32_t levels)
{
	g->klen = klen;
	g->kwords = (klen + 7) / 8;
	g->levels = levels;
	g->next_off = 8 + 8 * g->kwords;
	g->prev_off = g->next_off + 8 * levels;
	g->node_size = (g->prev_off + 8 + 63) & ~63u;
}

static inline uint64_t cqrs__ord_link(uint32_t seq, uint64_t node)
{
	return (uint64_t)seq << 32 | (node + 1);
}

/* Order-preserving encoding of one field value (size bytes, native order)
 * into out (size bytes). */
static inline void cqrs__ord_encode_field(uint32_t type, uint32_t size, const uint8_t *in,
					  uint8_t *out)
{
	uint64_t v = 0;

	if (type == CQRS_FT_STR || type == CQRS_FT_BYTES) {
		memcpy(out, in, size);
		return;
	}
	memcpy(&v, in, size); /* little-endian hosts (the project's targets) */
	if (type == CQRS_FT_I8 || type == CQRS_FT_I16 || type == CQRS_FT_I32 || type == CQRS_FT_I64)
		v ^= UINT64_C(1) << (8 * size - 1);
	else if (type == CQRS_FT_F64)
		v = (v >> 63) ? ~v : v ^ (UINT64_C(1) << 63);
	if (size == 8) { /* the common case: one byte swap */
		v = __builtin_bswap64(v);
		memcpy(out, &v, 8);
		return;
	}
	for (uint32_t i = 0; i < size; i++)
		out[i] = (uint8_t)(v >> (8 * (size - 1 - i)));
}

/* The encoded key of a row: the n fields f encoded and concatenated. */
static inline void cqrs__ord_encode_row(const cqrs_vfield *f, uint32_t n, const uint8_t *row,
					uint8_t *key)
{
	for (uint32_t i = 0; i < n; i++) {
		cqrs__ord_encode_field(f[i].type, f[i].size, row + f[i].offset, key);
		key += f[i].size;
	}
}

#endif
