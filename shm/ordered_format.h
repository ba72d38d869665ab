/*
 * shm/ordered_format.h - the ordered index of a view: a B+tree of 4 KiB
 * nodes in a fixed node pool inside the view segment, written by the
 * view's single writer and read by any number of processes without locks
 * or registration.
 *
 * WHAT IT INDEXES
 *   A view may declare one ordered index over 1..CQRS_ORD_MAX_FIELDS of
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
 *   Duplicates are allowed: entries are ordered by their position (key,
 *   row number), which is unique. A position is stored as the key padded
 *   to 8 bytes (K) then the row number (u64): P = K + 8 bytes.
 *   All zero bytes is the lowest position and (0xff key, UINT64_MAX) the
 *   highest: the first leaf's low and the last leaf's high.
 *
 * LAYOUT (region at cqrs_vparams.ord_off, 64-byte aligned)
 *   ord_nodes nodes of CQRS_ORD_NODE_SIZE bytes, then the owner array
 *   (u32 per row slot: the leaf that holds the row's entry, writer only).
 *   Node 0 is the meta node:
 *     0   u32 ver = 0    4 u32 kind = CQRS_ORD_META
 *     8   u32 format     CQRS_ORD_FORMAT     12 u32 node size
 *     16  u32 nodes      ord_nodes           20 u32 root (acquire/release)
 *     24  u32 depth, 28 u32 hwm, 32 u32 free head (writer only)
 *   Every other node (a tree node, or free):
 *     0   u32 ver        the node's version (seqlock): odd while the
 *                        writer changes it, +2 per change
 *     4   u32 kind       CQRS_ORD_LEAF, CQRS_ORD_INNER or CQRS_ORD_FREE
 *     8   u32 count      entries
 *     12  u32 level      0 for leaves, a parent is its children's + 1
 *     16  u32 next       leaves: the next leaf + 1 (0: none)
 *     20  u32 prev       leaves: the previous leaf + 1
 *     24  u32 free_next  (writer only)
 *     64  low  (P)       the node's range [low, high): every entry has a
 *     64+P high (P)      position in it, and a leaf holds every entry of
 *                        the tree in it
 *     64+2P pos[max]     the entries' positions, sorted, contiguous (a
 *                        binary search touches max * P bytes, a few
 *                        cache lines fetched together)
 *     then  pay[max]     each entry's payload, same order:
 *       leaf:  the row's bytes (padded to 8) when the view is covering
 *              (row_size <= CQRS_ORD_COVER_MAX), so a range read copies
 *              rows straight out of the leaves; nothing otherwise
 *       inner: u64 child; child i holds [pos_i, pos_i+1) (the last one
 *              up to the node's high); pos_0 equals the node's low and
 *              is not compared
 *   Every non-root node holds at least half its maximum (B+tree merge or
 *   redistribution on underflow), so ord_nodes = 1 + leaves + inner
 *   levels, from the capacity, plus spare for one split path, bounds the
 *   pool; nodes are taken from the high-water mark or the free list.
 *
 * WRITER (single, no CAS, no allocation; shm/ordered_writer.c)
 *   Every change to a node is made under its version:
 *       ver = s + 1 relaxed; fence(release); words stored (relaxed);
 *       ver = s + 2 release
 *   Insert: descend by position, put the entry into the leaf. A full node
 *   splits: the new right node is complete (even version) first, then the
 *   left one shrinks (its high and next name the right one), then the old
 *   next leaf's prev, then the parent gets the separator (which may split
 *   it; a root split publishes the new root with a release store).
 *   Remove: take the entry out of its leaf; a node under half full merges
 *   with a sibling of the same parent (when both fit one node) or takes
 *   entries from it, the receiving node published first; the parent loses
 *   or updates the separator; a root with one child hands the root to it.
 *   A merged-away node is marked FREE (under its version) before reuse.
 *   An update that keeps the key rewrites the row bytes in its leaf entry
 *   (covering views) under the leaf's version; one that moves the key is a
 *   remove and an insert.
 *   Cost: O(log n) node visits per insert, delete or key move (a binary
 *   search in each, 3 levels for a million rows), plus copying the leaf
 *   into a private image and storing its entries from the changed one on;
 *   a split or merge touches 3-4 nodes; an update that keeps the key
 *   finds its leaf through the owner array and rewrites one row.
 *
 * READER (shm/ordered_reader.c)
 *   A node is read optimistically: ver (acquire, must be even), the
 *   header and what is needed (a binary search, one child, or a run of
 *   entries), fence(acquire), ver again (must be unchanged); else restart.
 *   Correctness rests on the leaves alone: a leaf read at one version,
 *   whose [low, high) holds the cursor, holds exactly the tree's entries in
 *   that range at that moment, whatever the inner nodes said (they only
 *   guide the descent). A walk ascending keeps a cursor (the next position
 *   it needs): it delivers the leaf's entries from the cursor, sets the
 *   cursor to the leaf's high and follows next; a leaf whose range does
 *   not hold the cursor is passed to the right (cursor >= high: a split
 *   not yet in the parent) or makes the walk descend again (cursor < low).
 *   Descending, the same with entries below the cursor, low and prev. So
 *   every row in the range for the whole call is delivered exactly once,
 *   in order; a restart searches again from the root from just past the
 *   last row delivered.
 *   Rows: a covering leaf's entry is the row, copied under the leaf's
 *   version: untorn and in place. Otherwise the reader copies row n under
 *   the row's seqlock and delivers it only when LIVE and its fields encode
 *   to the entry's key.
 *   Snapshot (CQRS_RANGE_SNAPSHOT): the whole walk runs between two even
 *   reads of view_seq, as CQRS_FIND_SNAPSHOT does, buffered, retried.
 *   Validation: the meta node's kind, format, node size and count against
 *   the parameters; the root and every child and leaf link range-checked
 *   before use; kind, level (one less per step down) and count checked
 *   at the version they were read at; entries delivered strictly increase
 *   (decrease) and stay under the capacity in number; every walk has a step
 *   budget. A corrupt or hostile segment gives CQRS_ECORRUPT (a version
 *   that never settles -EAGAIN), never an out-of-bounds read or a hang.
 *   Versions are 32 bits: a reader would have to stall across 2^31 changes
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

#define CQRS_ORD_KEY_MAX 64u
#define CQRS_ORD_NODE_SIZE 4096u
#define CQRS_ORD_COVER_MAX 256u   /* rows up to this size (padded) live in the leaves */
#define CQRS_ORD_MAX_DEPTH 16u
#define CQRS_ORD_FORMAT 2u        /* 1 was the skip list */
#define CQRS_ORD_META 0x4154454du  /* "META" */
#define CQRS_ORD_LEAF 0x4641454cu  /* "LEAF" */
#define CQRS_ORD_INNER 0x524e4e49u /* "INNR" */
#define CQRS_ORD_FREE 0x45455246u  /* "FREE" */
#define CQRS_ORD_HDR 64u
_Static_assert(CQRS_ORD_KEY_MAX <= CQRS_VIEW_KEY_MAX, "encoded keys fit a key buffer");

/* A tree node's header (the first 64 bytes of a node). */
typedef struct cqrs_onode {
	_Atomic uint32_t ver;
	_Atomic uint32_t kind;
	uint32_t count;      /* bytes 8..31 are read and written as words */
	uint32_t level;
	uint32_t next;
	uint32_t prev;
	uint32_t free_next;
	uint32_t reserved;
	uint8_t pad[32];
} cqrs_onode;

typedef struct cqrs_ometa {
	_Atomic uint32_t ver;
	_Atomic uint32_t kind;
	_Atomic uint32_t format;
	_Atomic uint32_t node_size;
	_Atomic uint32_t nodes;
	_Atomic uint32_t root;
	_Atomic uint32_t depth;
	_Atomic uint32_t hwm;
	_Atomic uint32_t free_head;
} cqrs_ometa;

_Static_assert(sizeof(cqrs_onode) == CQRS_ORD_HDR, "node header");

/* Sizes inside a node, derived from the parameters. */
typedef struct cqrs_ord_geom {
	uint32_t klen, kw;        /* key bytes, padded to 8 */
	uint32_t psz;             /* a position: kw + 8 */
	uint32_t cover;           /* row bytes in a leaf entry (0: not covering) */
	uint32_t lesz, iesz;      /* leaf and inner entry sizes */
	uint32_t ents;            /* entries' offset in a node: header + fences */
	uint32_t lmax, imax;      /* entries per leaf and per inner node */
	uint32_t lpay, ipay;      /* offsets of the payload arrays (rows, children) */
	uint32_t node_size;
} cqrs_ord_geom;

static inline void cqrs__ord_geom(cqrs_ord_geom *g, uint32_t klen, uint32_t row_size)
{
	uint32_t r8 = (row_size + 7) & ~7u;

	g->klen = klen;
	g->kw = (klen + 7) & ~7u;
	g->psz = g->kw + 8;
	g->cover = r8 <= CQRS_ORD_COVER_MAX ? r8 : 0;
	g->lesz = g->psz + g->cover;
	g->iesz = g->psz + 8;
	g->ents = CQRS_ORD_HDR + 2 * g->psz;
	g->node_size = CQRS_ORD_NODE_SIZE;
	g->lmax = (g->node_size - g->ents) / g->lesz;
	g->imax = (g->node_size - g->ents) / g->iesz;
	g->lpay = g->ents + g->lmax * g->psz;
	g->ipay = g->ents + g->imax * g->psz;
}

/* Nodes the pool needs for capacity rows (every non-root node at least
 * half full), the meta node and one split path of spares included. */
static inline uint64_t cqrs__ord_pool(const cqrs_ord_geom *g, uint64_t capacity)
{
	uint64_t x = capacity / (g->lmax / 2) + 2, total = 1 + x;

	for (uint32_t d = 1; d < CQRS_ORD_MAX_DEPTH && x > 1; d++) {
		x = x / (g->imax / 2) + 1;
		total += x;
	}
	return total + CQRS_ORD_MAX_DEPTH + 2;
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

/* Compares the kw-byte keys (padded to 8 with zeros) a and b as memcmp
 * would, a word at a time. */
static inline int cqrs__ord_key_cmp(const uint8_t *a, const uint8_t *b, uint32_t kw)
{
	for (uint32_t i = 0; i < kw; i += 8) {
		uint64_t x, y;

		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
	}
	return 0;
}

/* Compares positions a and b (kw key bytes, then a u64 row number). */
static inline int cqrs__ord_pos_cmp(const uint8_t *a, const uint8_t *b, uint32_t kw)
{
	uint64_t ra, rb;
	int c = cqrs__ord_key_cmp(a, b, kw);

	if (c)
		return c;
	memcpy(&ra, a + kw, 8);
	memcpy(&rb, b + kw, 8);
	return ra < rb ? -1 : ra > rb;
}

#endif
