/*
 * shm/view_format.h - the byte layout of a view segment and the protocols
 * by which one writer (the projector that owns the view) and any number of
 * reader processes share it without locks.
 *
 * LAYOUT
 *   A view segment "/cqrs.<engine>.v.<view>.<generation>" is the common
 *   header (shm/segment.h) followed by:
 *
 *   off        size              what
 *   128        cqrs_vparams      immutable: capacity, row size, slot size,
 *                                key and secondary fields, region offsets
 *   1024       live line         owner word, flags (RETIRED, CLEAN), epoch
 *                                (which primary index is active)
 *   1088       applied line      applied_seq (u64), wake (u32 futex word)
 *   1152       vseq line         view_seq: odd while a batch modifies rows
 *   1216       stats line        rows, hwm, free_head, used, tombs, stamp
 *                                (writer bookkeeping; readers show rows)
 *   2048       schema            the row schema blob (core/schema_blob.c)
 *   index[0]   8 * 2^pri_log2    primary hash index, copy 0
 *   index[1]   8 * 2^pri_log2    primary hash index, copy 1 (see REBUILD)
 *   heads[i]   4 * 2^sec_log2    secondary index i: chain heads (row + 1)
 *   ord        4 KiB * ord_nodes the ordered index, when declared: a
 *              + 4 * cap         B+tree (layout and protocol in
 *                                shm/ordered_format.h), page aligned
 *   rows       slot * capacity   row slots
 *
 *   Every region is 64-byte aligned and the whole layout is a function of
 *   (capacity, row size, number of secondary indexes, schema blob length,
 *   the ordered index's field sizes):
 *   readers recompute it and refuse any header that differs.
 *
 *   A row slot (64-byte multiple, so a row never shares a line with its
 *   neighbours' seqlocks):
 *     0   u32 seq        the row's seqlock version: odd while written
 *     4   u32 flags      VROW_LIVE
 *     8   u32 free_next  writer only: next free row + 1
 *     12  u32 reserved
 *     16  per secondary index i, 16 bytes: u64 stamp, u32 next, u32 prev
 *     16 + 16*nsec: the row, row_size bytes, padded to 8
 *
 *   Primary index bucket (u64): 0 empty, 1 tombstone, else
 *   (tag << 32) | (row + 2) with tag the high 32 bits of the key's XXH3-64.
 *   Keys are a row field (any integer type, str or bytes up to 64 bytes);
 *   the key is that field's bytes, str/bytes zero padded to the field size.
 *
 * THE ROW SEQLOCK (as Linux's seqlock.h)
 *   Writer, for every change to a row slot (data, flags, stamps):
 *       s = seq                       (only the writer stores it)
 *       seq = s + 1      relaxed      odd: readers will retry
 *       fence(release)                orders the odd store before the data
 *       data stores      relaxed      word by word (shm/wordcopy.h)
 *       seq = s + 2      release      orders the data before the even store
 *   Reader (row_read in shm/view_reader.c):
 *       for (;;) {
 *           s1 = seq     acquire      pairs with the writer's even store
 *           if (s1 odd) { spin; after a while check the owner; continue; }
 *           copy data    relaxed      may be torn: it is not trusted yet
 *           fence(acquire)            orders the copy before the re-check;
 *                                     pairs with the writer's release fence
 *           s2 = seq     relaxed
 *           if (s1 == s2) break;      the copy is one whole version
 *       }
 *   A reader that sees seq odd for long looks at the owner word: a dead
 *   owner gives CQRS_EWRITERDEAD (the row stays as the crash left it); a
 *   live one that stays odd for seconds gives -EAGAIN. Never a torn row.
 *
 * PRIMARY INDEX: OPEN ADDRESSING, TOMBSTONES, DOUBLE BUFFER
 *   Linear probing from h & mask. Lookup stops at an empty bucket; a
 *   tombstone is skipped. A hit is only a candidate: the reader copies the
 *   row under its seqlock and accepts it when the copy is LIVE and its key
 *   field equals the key. So a reader can follow a stale bucket safely: a
 *   row always carries its own key.
 *   Deletes write a tombstone, never move entries (backward shift could move
 *   an entry behind a concurrent reader). A run of tombstones that ends in
 *   an empty bucket is turned back to empty: a probe that would have crossed
 *   them ends there anyway, and for a live key K every bucket between K's
 *   home and K's bucket stays non-empty, so no reader can lose K.
 *   Insertion reuses the first tombstone on the probe path (after checking
 *   the key is absent up to the first empty bucket).
 * REBUILD
 *   Buckets >= 2 * capacity, so live entries never exceed half; when live +
 *   tombstones would pass 3/4, the writer rebuilds: it fills the inactive
 *   copy (index[(epoch + 1) & 1]) from the live rows, then stores epoch + 1
 *   with release. Readers load epoch (acquire) first and probe that copy.
 *   A hit is validated by the row itself; a miss is only believed when the
 *   epoch is unchanged afterwards (else the reader retries), because the
 *   copy it probed may be cleared by a later rebuild. Before clearing a copy
 *   the writer issues a release fence, so a reader that sees a cleared
 *   bucket also sees the epoch that made it inactive. Readers never wait for
 *   a rebuild; it costs 8 bytes per bucket twice.
 *
 * SECONDARY INDEXES: STAMPED CHAINS
 *   Index i hashes the field's value to one of 2^sec_log2 heads; each head
 *   roots a doubly linked chain through the rows' link[i] (next for readers,
 *   prev for the writer's O(1) unlink). Rows enter a chain at its head with
 *   a fresh stamp from the view's counter, so along next the stamps strictly
 *   decrease. A row leaving a chain (delete, or its field changed) keeps its
 *   next and stamp until the slot is reused, and reuse always takes a new,
 *   larger stamp.
 *   Claim: from any row R (linked, or unlinked but not reused), following
 *   next reaches every row linked in that chain with a stamp below R's.
 *   (True when R is linked; when R is unlinked its next was its successor,
 *   no row can enter between them, and by induction its successor's chain
 *   holds the rest.) So a reader walks the chain copying each row under its
 *   seqlock, and only needs the stamps to keep decreasing; it delivers the
 *   rows that are LIVE with a matching field (other keys share heads). If a
 *   stamp does not decrease, the slot was reused under the reader: it
 *   restarts from the head and skips every stamp >= the last one it
 *   visited, so no row is delivered twice and none that stayed in the chain
 *   is missed. A walk is at most capacity steps (stamps decrease).
 *   The head check: the first row after a head load has no stamp before it
 *   to compare with, and the slot the head named may have been reused, or
 *   its row moved to another chain, between the head load and the row
 *   copy; its next then leads through that other chain and the walk would
 *   miss this one whole. So the reader accepts that first copy only when
 *   its field hashes to this head (a copy whose field hashes here is linked
 *   here, unlinked from here and not reused, or prepared for this head with
 *   next = the head of that moment: the claim holds from it); otherwise it
 *   restarts as for a reused slot.
 *   Writer order: a new row is complete (seq even) before the head points
 *   to it (release); an unlink stores prev.next (or the head) with release.
 *
 * SNAPSHOTS: THE VIEW SEQUENCE
 *   view_seq is a seqlock over the whole view at batch granularity: the
 *   writer makes it odd (relaxed store + release fence) before the first
 *   modification in a batch and even (release) at the end of the batch. A
 *   snapshot query waits for an even value (acquire), runs, then re-checks
 *   after an acquire fence; a changed value means it retries. Results are
 *   buffered and handed out only after the re-check, so the caller sees one
 *   batch-consistent state. Rows written outside batches are not allowed.
 *
 * APPLIED_SEQ AND WAITING
 *   At the end of a batch the writer stores applied_seq, then increments
 *   wake (both seq_cst), then calls futex_wake(wake) (every batch: readers
 *   map the segment read-only and have nowhere to announce themselves). A
 *   waiter loads wake, checks applied_seq (seq_cst), then futex_waits on
 *   wake with the value it loaded (core/futex.h: no lost wakeups).
 *
 * GENERATIONS
 *   A rebuilt or resized view is a new segment with generation + 1. The
 *   engine fills it, points the control directory at it, then sets RETIRED
 *   in the old one and unlinks its name. Readers check RETIRED (one load on
 *   a line they read anyway) and move by themselves; a reader that cannot
 *   move yet keeps reading the retired copy.
 */
#ifndef CQRS_SHM_VIEW_FORMAT_H
#define CQRS_SHM_VIEW_FORMAT_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "cqrs_schema.h"
#include "shm/segment.h"
#include "shm/wordcopy.h"

#define CQRS_VIEW_KEY_MAX 64u
#define CQRS_ORD_MAX_FIELDS 4u
#define CQRS_VIEW_MAX_ROWS (UINT64_C(1) << 31)

#define VROW_LIVE 1u
#define VROW_HDR 16u
#define VROW_LINK 16u

#define VB_EMPTY UINT64_C(0)
#define VB_TOMB UINT64_C(1)

/* One indexed field. */
typedef struct cqrs_vfield {
	uint32_t field;  /* index in the schema */
	uint32_t offset;
	uint32_t size;
	uint32_t type;
} cqrs_vfield;

/* Immutable parameters at offset 128 of a view segment. */
typedef struct cqrs_vparams {
	uint64_t capacity;
	uint32_t row_size;
	uint32_t slot_size;
	uint32_t data_off;
	uint32_t nsec;
	uint32_t pri_log2;
	uint32_t sec_log2;
	uint32_t schema_len;
	uint32_t reserved0;     /* 0 (the waiter slot is the directory slot) */
	uint64_t schema_hash;
	uint64_t schema_off;
	uint64_t index_off[2];
	uint64_t heads_off[CQRS_VIEW_MAX_SECONDARY];
	uint64_t rows_off;
	cqrs_vfield key;
	cqrs_vfield sec[CQRS_VIEW_MAX_SECONDARY];
	/* the ordered index (shm/ordered_format.h); all 0 when there is none */
	uint32_t nord;          /* fields, 0..CQRS_ORD_MAX_FIELDS */
	uint32_t ord_klen;      /* encoded key bytes: the fields' sizes summed */
	uint32_t ord_nodes;     /* B+tree nodes in the pool, the meta node included */
	uint32_t ord_node_size;
	uint64_t ord_off;       /* the node pool, then the owner array */
	cqrs_vfield ord[CQRS_ORD_MAX_FIELDS];
} cqrs_vparams;

typedef struct cqrs_vapplied {
	_Atomic uint64_t applied_seq;
	_Atomic uint32_t wake;
	uint8_t pad[52];
} cqrs_vapplied;

typedef struct cqrs_vseq {
	_Atomic uint64_t view_seq;
	uint8_t pad[56];
} cqrs_vseq;

typedef struct cqrs_vstats {
	_Atomic uint64_t rows;      /* live rows */
	_Atomic uint64_t hwm;       /* slots [0, hwm) have been used */
	_Atomic uint64_t free_head; /* first free row + 1 */
	_Atomic uint64_t used;      /* live + tombstone buckets in the active index */
	_Atomic uint64_t tombs;     /* tombstones in the active index */
	_Atomic uint64_t stamp;     /* last secondary stamp handed out */
	_Atomic uint64_t rebuilds;
	uint8_t pad[8];
} cqrs_vstats;

typedef struct cqrs_vlink {
	_Atomic uint64_t stamp;
	_Atomic uint32_t next; /* row + 1; 0 ends the chain */
	_Atomic uint32_t prev; /* row + 1; 0: this row is the head (writer only) */
} cqrs_vlink;

typedef struct cqrs_vrow {
	_Atomic uint32_t seq;
	_Atomic uint32_t flags;
	_Atomic uint32_t free_next;
	uint32_t reserved;
	cqrs_vlink link[];
} cqrs_vrow;

#define CQRS_VPARAMS_OFF 128u
#define CQRS_VAPPLIED_OFF 1088u
#define CQRS_VSEQ_OFF 1152u
#define CQRS_VSTATS_OFF 1216u

_Static_assert(sizeof(cqrs_vparams) <= CQRS_SEG_IMM_SIZE - CQRS_VPARAMS_OFF - 8, "params fit");
_Static_assert(sizeof(cqrs_vapplied) == 64 && sizeof(cqrs_vseq) == 64 && sizeof(cqrs_vstats) == 64,
	       "one cache line each");
_Static_assert(CQRS_VSTATS_OFF + 64 <= CQRS_SEG_REGION_OFF, "lines fit before the regions");
_Static_assert(sizeof(cqrs_vrow) == VROW_HDR && sizeof(cqrs_vlink) == VROW_LINK, "slot header");

/* Fills the layout part of p (slot size, offsets, log2 sizes) from
 * capacity, row_size, nsec and schema_len. 0 or -EINVAL. *total gets the
 * segment size. */
int cqrs__vparams_layout(cqrs_vparams *p, uint64_t *total);

/* Checks that field f of schema s may be an index key. */
int cqrs__vfield_ok(const cqrs_schema *s, const char *name, cqrs_vfield *out);

/* Validates a view image: common header, parameters against the canonical
 * layout, schema blob (decoded into *schema), key and secondary fields
 * against the schema. Reads nothing outside [base, base+len). */
int cqrs__view_check(const void *base, size_t len, cqrs_vparams *p, cqrs_schema *schema,
		    void *imm_out);

/* Checks that field name of schema s may be part of an ordered key
 * (integers, bool, ts, f64, str, bytes). */
int cqrs__vfield_ord_ok(const cqrs_schema *s, const char *name, cqrs_vfield *out);

/* Hash of a (padded) key. */
uint64_t cqrs__vkey_hash(const void *key, size_t len);

/* The key argument of an API call as the field's bytes: scalars must have
 * the field's size; str and bytes may be shorter and are zero padded into
 * buf (CQRS_VIEW_KEY_MAX bytes). NULL when it cannot be. */
static inline const uint8_t *cqrs__vkey_arg(const cqrs_vfield *f, const void *key, size_t keylen,
					   uint8_t *buf)
{
	if (!key)
		return NULL;
	if (keylen == f->size)
		return key;
	if ((f->type == CQRS_FT_STR || f->type == CQRS_FT_BYTES) && keylen < f->size) {
		memcpy(buf, key, keylen);
		memset(buf + keylen, 0, f->size - keylen);
		return buf;
	}
	return NULL;
}

static inline cqrs_vrow *cqrs__vrow_at(uint8_t *rows, uint32_t slot_size, uint64_t r)
{
	return (cqrs_vrow *)(void *)(rows + r * slot_size);
}

#endif
