/*
 * shm/view_writer.c - the single writer of a view segment: rows, the
 * primary index, secondary chains, batches. The format, the seqlock and the
 * index protocols are described in view_format.h; every store below follows
 * them.
 *
 * One file for the writer side of one structure (past 800 lines): the row,
 * primary-index and chain updates of a batch share the writer's private
 * state and static helpers (row_begin/row_end, chain_push, find), and each
 * must follow the protocol of the others (a row complete before a bucket or
 * head names it).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/assert.h"
#include "core/errors.h"
#include "core/futex.h"
#include "core/schema_internal.h"
#include "shm/ordered_writer.h"
#include "shm/view_format.h"
#include "shm/view_writer.h"

struct cqrs_vw {
	cqrs_seg seg;
	cqrs_ctl *ctl;
	cqrs_vparams p;
	cqrs_schema schema;
	char engine[CQRS_NAME_MAX], view[CQRS_NAME_MAX];
	uint32_t slot;
	uint8_t *rows;
	_Atomic uint64_t *index[2];
	_Atomic uint32_t *heads[CQRS_VIEW_MAX_SECONDARY];
	cqrs_seg_live *live;
	cqrs_vapplied *ap;
	cqrs_vseq *vs;
	cqrs_vstats *st;
	uint64_t pmask, smask;
	uint64_t prefaulted; /* rows [0, prefaulted) are mapped (row_alloc) */
	int in_batch, vseq_odd, poisoned;
	/* CQRS_ASSERT bookkeeping of the seqlocks (one store per row write):
	 * row_open while a row's version is odd (row_begin..row_end);
	 * own_seqs when every version word in the segment was stored by this
	 * writer (it created the segment), so their parity is its own state
	 * and is asserted too; an adopted segment's words came from another
	 * process and are never asserted on. */
	int row_open, own_seqs;
	uint8_t *scratch;
	cqrs_ow ord; /* the ordered index (shm/ordered_writer.c); nodes NULL if none */
};

/* Relaxed loads and stores of the writer's own bookkeeping words: only this
 * thread stores them; readers only display them. */
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define SET(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

static cqrs_vrow *row_at(cqrs_vw *w, uint64_t r)
{
	return cqrs__vrow_at(w->rows, w->p.slot_size, r);
}

static uint8_t *row_data(cqrs_vw *w, uint64_t r)
{
	return w->rows + r * w->p.slot_size + w->p.data_off;
}

static _Atomic uint64_t *active(cqrs_vw *w)
{
	return w->index[GET(w->live->epoch) & 1];
}

static int poison(cqrs_vw *w, const char *what)
{
	w->poisoned = 1;
	return cqrs__fail(CQRS_ECORRUPT, "view %s: %s; writer poisoned", w->view, what);
}

#define CHECK(w)                                                                         \
	do {                                                                             \
		if (!(w))                                                                \
			return -EINVAL;                                                  \
		if ((w)->poisoned)                                                       \
			return CQRS_EPOISONED;                                           \
	} while (0)

static uint64_t sec_bucket(cqrs_vw *w, uint32_t i, const uint8_t *data)
{
	return XXH3_64bits(data + w->p.sec[i].offset, w->p.sec[i].size) & w->smask;
}

/* ---- seqlocks ------------------------------------------------------------- */

/* A row's version is even before a write begins, odd inside, even after;
 * one row at a time, inside the view's odd section of a batch. */
static uint32_t row_begin(cqrs_vw *w, cqrs_vrow *rw)
{
	uint32_t s = atomic_load_explicit(&rw->seq, memory_order_relaxed); /* single writer */

	CQRS_ASSERT(w->in_batch && w->vseq_odd && !w->row_open);
	CQRS_ASSERT(!w->own_seqs || (s & 1) == 0);
	w->row_open = 1;
	atomic_store_explicit(&rw->seq, s + 1, memory_order_relaxed); /* odd: readers retry */
	/* release: orders the odd version before the row stores that follow;
	 * pairs with the reader's acquire fence before its re-check */
	atomic_thread_fence(memory_order_release);
	return s;
}

static void row_end(cqrs_vw *w, cqrs_vrow *rw, uint32_t s)
{
	CQRS_ASSERT(w->row_open);
	/* relaxed: the writer's own word (single writer): still what row_begin stored */
	CQRS_ASSERT(!w->own_seqs || atomic_load_explicit(&rw->seq, memory_order_relaxed) == s + 1);
	w->row_open = 0;
	/* release: orders the row stores before the even version; pairs with
	 * the reader's acquire load of the version */
	atomic_store_explicit(&rw->seq, s + 2, memory_order_release);
}

/* First modification of a batch: the view sequence goes odd. */
static void touch(cqrs_vw *w)
{
	CQRS_ASSERT(w->in_batch);
	if (w->vseq_odd)
		return;
	CQRS_ASSERT(!w->own_seqs || (GET(w->vs->view_seq) & 1) == 0);
	SET(w->vs->view_seq, GET(w->vs->view_seq) + 1);
	/* release: orders the odd view sequence before the batch's row and index
	 * stores; pairs with the snapshot reader's acquire fence before its
	 * re-check */
	atomic_thread_fence(memory_order_release);
	w->vseq_odd = 1;
}

/* ---- primary index ---------------------------------------------------------- */

/* Looks k (hash h) up in the active index. 1: found at *pos, row *row.
 * 0: absent; *ins is the bucket an insert uses (first tombstone on the path,
 * else the empty bucket that ended it; UINT64_MAX if neither), *ins_tomb
 * tells which. O(probe length). */
static int find(cqrs_vw *w, const uint8_t *k, uint64_t h, uint64_t *pos, uint32_t *row,
		uint64_t *ins, int *ins_tomb)
{
	_Atomic uint64_t *idx = active(w);
	uint32_t tag = (uint32_t)(h >> 32);
	uint64_t i = h & w->pmask, tomb = UINT64_MAX;

	for (uint64_t n = 0; n <= w->pmask; n++, i = (i + 1) & w->pmask) {
		uint64_t e = GET(idx[i]);
		if (e == VB_EMPTY) {
			*ins = tomb != UINT64_MAX ? tomb : i;
			*ins_tomb = tomb != UINT64_MAX;
			return 0;
		}
		if (e == VB_TOMB) {
			if (tomb == UINT64_MAX)
				tomb = i;
			continue;
		}
		uint32_t r = (uint32_t)e - 2;
		if ((uint32_t)(e >> 32) == tag && r < w->p.capacity &&
		    memcmp(row_data(w, r) + w->p.key.offset, k, w->p.key.size) == 0) {
			*pos = i;
			*row = r;
			return 1;
		}
	}
	*ins = tomb;
	*ins_tomb = 1;
	return 0;
}

/* Fills the inactive index copy from the live rows and switches to it.
 * O(capacity); runs when tombstones crowd the active copy. */
static void rebuild(cqrs_vw *w)
{
	uint32_t ep = GET(w->live->epoch);
	_Atomic uint64_t *spare = w->index[(ep + 1) & 1];
	uint64_t hwm = GET(w->st->hwm), n = 0;

	/* release: orders the store of the epoch that retired this copy before
	 * the clearing stores; pairs with the reader's acquire bucket load, so a
	 * reader that sees a cleared bucket sees that epoch on its re-check */
	atomic_thread_fence(memory_order_release);
	cqrs__words_zero(spare, w->pmask + 1);
	for (uint64_t r = 0; r < hwm; r++) {
		const uint8_t *d;
		uint64_t h, i;

		if (!(GET(row_at(w, r)->flags) & VROW_LIVE))
			continue;
		d = row_data(w, r);
		h = XXH3_64bits(d + w->p.key.offset, w->p.key.size);
		for (i = h & w->pmask; GET(spare[i]) != VB_EMPTY; i = (i + 1) & w->pmask)
			;
		SET(spare[i], (h >> 32) << 32 | (r + 2)); /* published by the epoch's release */
		n++;
	}
	/* release: the rebuilt copy before readers select it; pairs with the
	 * reader's acquire load of the epoch */
	atomic_store_explicit(&w->live->epoch, ep + 1, memory_order_release);
	SET(w->st->used, n);
	SET(w->st->tombs, 0);
	SET(w->st->rebuilds, GET(w->st->rebuilds) + 1);
}

/* Turns the run of tombstones that ends at pos back to empty when the
 * bucket after pos is empty (safe for readers: view_format.h). */
static void tomb_cleanup(cqrs_vw *w, _Atomic uint64_t *idx, uint64_t pos)
{
	if (GET(idx[(pos + 1) & w->pmask]) != VB_EMPTY)
		return;
	for (uint64_t i = pos; GET(idx[i]) == VB_TOMB; i = (i - 1) & w->pmask) {
		SET(idx[i], VB_EMPTY); /* a reader stopping here finds what it would have */
		SET(w->st->tombs, GET(w->st->tombs) - 1);
		SET(w->st->used, GET(w->st->used) - 1);
	}
}

/* ---- secondary chains ------------------------------------------------------- */

/* Inside the row's odd section: gives row r a fresh stamp in index i and
 * points it at the current head of bucket b. */
static void chain_prepare(cqrs_vw *w, uint32_t i, uint64_t r, uint64_t b)
{
	cqrs_vlink *lk = &row_at(w, r)->link[i];
	uint64_t stamp = GET(w->st->stamp) + 1;

	SET(w->st->stamp, stamp);
	SET(lk->stamp, stamp);
	SET(lk->next, GET(w->heads[i][b]));
	SET(lk->prev, 0);
}

/* After the row's even version: makes row r the head of bucket b. */
static void chain_push(cqrs_vw *w, uint32_t i, uint64_t r, uint64_t b)
{
	uint32_t old = GET(w->heads[i][b]);

	if (old > w->p.capacity) { /* an adopted segment may carry anything */
		poison(w, "secondary chain head out of range");
		return;
	}
	if (old)
		SET(row_at(w, old - 1)->link[i].prev, (uint32_t)(r + 1)); /* writer only */
	/* release: the complete row (even version, stamp, next) before the head
	 * names it; pairs with the reader's acquire load of the head */
	atomic_store_explicit(&w->heads[i][b], (uint32_t)(r + 1), memory_order_release);
}

/* Takes row r out of index i's chain of bucket b; r keeps its next and
 * stamp for readers standing on it. */
static int chain_unlink(cqrs_vw *w, uint32_t i, uint64_t r, uint64_t b)
{
	cqrs_vlink *lk = &row_at(w, r)->link[i];
	uint32_t nx = GET(lk->next), pv = GET(lk->prev);

	if (nx > w->p.capacity || pv > w->p.capacity)
		return poison(w, "secondary link out of range");
	if (pv) {
		/* release: readers that take the new next see that row's version
		 * as of now; pairs with the reader's acquire load of next */
		atomic_store_explicit(&row_at(w, pv - 1)->link[i].next, nx, memory_order_release);
	} else {
		if (GET(w->heads[i][b]) != r + 1)
			return poison(w, "secondary chain head mismatch");
		/* release: as above, for the head; pairs with the reader's acquire */
		atomic_store_explicit(&w->heads[i][b], nx, memory_order_release);
	}
	if (nx)
		SET(row_at(w, nx - 1)->link[i].prev, pv); /* writer only */
	return 0;
}

/* ---- rows ------------------------------------------------------------------- */

/* New rows are taken in order from the high-water mark: their pages are
 * mapped a window ahead, one madvise per window instead of a page fault
 * (and the kernel's fault-around) per page on the projector's hot path -
 * a third of its time in the throughput bench. Only what is used gets
 * mapped: a view sized for growth costs nothing until it grows. */
#define PREFAULT_WINDOW (UINT64_C(4) << 20)

static void prefault_rows(cqrs_vw *w, uint64_t from)
{
	uint64_t rows = PREFAULT_WINDOW / w->p.slot_size + 1;

	if (rows > w->p.capacity - from)
		rows = w->p.capacity - from;
	cqrs__seg_prefault(&w->seg, w->p.rows_off + from * w->p.slot_size, rows * w->p.slot_size);
	w->prefaulted = from + rows;
}

/* cqrs_vw_config.pretouch: every row's page mapped now, none on the hot path. */
static void pretouch_rows(cqrs_vw *w)
{
	cqrs__seg_prefault(&w->seg, w->p.rows_off, w->p.capacity * w->p.slot_size);
	w->prefaulted = w->p.capacity;
}

static int64_t row_alloc(cqrs_vw *w)
{
	uint64_t fh = GET(w->st->free_head), hwm;

	if (fh) {
		if (fh > w->p.capacity)
			return poison(w, "free list out of range");
		SET(w->st->free_head, GET(row_at(w, fh - 1)->free_next));
		return (int64_t)(fh - 1);
	}
	hwm = GET(w->st->hwm);
	if (hwm >= w->p.capacity)
		return poison(w, "no free slot below capacity");
	if (hwm >= w->prefaulted)
		prefault_rows(w, hwm);
	/* release: a scanning reader that sees the new bound sees the slot's
	 * initial state; pairs with its acquire load of hwm */
	atomic_store_explicit(&w->st->hwm, hwm + 1, memory_order_release);
	return (int64_t)hwm;
}

/* Writes row content into existing slot r, moving it between secondary
 * chains whose field changed. b: the new row's secondary buckets when the
 * caller has them (upsert), else NULL. */
static int overwrite(cqrs_vw *w, uint64_t r, const uint8_t *row, const uint64_t *b)
{
	cqrs_vrow *rw = row_at(w, r);
	uint8_t *old = row_data(w, r);
	uint64_t ob[CQRS_VIEW_MAX_SECONDARY], nb[CQRS_VIEW_MAX_SECONDARY];
	int changed[CQRS_VIEW_MAX_SECONDARY];
	uint32_t s;
	int rc = 0, moved = w->ord.nodes ? cqrs__ow_moved(&w->ord, r, row) : 0;

	for (uint32_t i = 0; i < w->p.nsec; i++) {
		const cqrs_vfield *f = &w->p.sec[i];
		changed[i] = memcmp(old + f->offset, row + f->offset, f->size) != 0;
		if (changed[i]) {
			ob[i] = sec_bucket(w, i, old);
			nb[i] = b ? b[i] : sec_bucket(w, i, row);
		}
	}
	touch(w);
	s = row_begin(w, rw);
	for (uint32_t i = 0; i < w->p.nsec && !rc; i++)
		if (changed[i])
			rc = chain_unlink(w, i, r, ob[i]);
	cqrs__words_store(old, row, w->p.row_size);
	for (uint32_t i = 0; i < w->p.nsec; i++)
		if (changed[i])
			chain_prepare(w, i, r, nb[i]);
	row_end(w, rw, s);
	for (uint32_t i = 0; i < w->p.nsec; i++)
		if (changed[i])
			chain_push(w, i, r, nb[i]);
	/* A key that moved: out of its old place, in at the new one; a key
	 * that stayed: the row's bytes in its leaf entry follow (covering). */
	if (!rc && w->ord.nodes &&
	    (moved < 0 ||
	     (moved ? cqrs__ow_remove(&w->ord, r) || cqrs__ow_insert(&w->ord, r, row)
		    : cqrs__ow_update(&w->ord, r, row))))
		return poison(w, "ordered index inconsistent");
	return rc ? rc : w->poisoned ? CQRS_ECORRUPT : 0;
}

/* b: the row's secondary buckets (upsert computed them to prefetch). */
static int insert(cqrs_vw *w, const uint8_t *row, const uint8_t *k, uint64_t h, uint64_t ins,
		  int ins_tomb, const uint64_t *b)
{
	uint64_t used = GET(w->st->used), pos;
	uint32_t s, dummy;
	int64_t r;
	cqrs_vrow *rw;

	if (GET(w->st->rows) >= w->p.capacity)
		return CQRS_EFULL;
	if (!ins_tomb && used + 1 > (w->pmask + 1) / 4 * 3) {
		rebuild(w);
		if (find(w, k, h, &pos, &dummy, &ins, &ins_tomb))
			return poison(w, "key appeared in rebuild");
	}
	if (ins == UINT64_MAX)
		return poison(w, "primary index has no free bucket");
	/* The heads are in cache by now (prefetched in upsert): fetch the rows
	 * they name, whose prev chain_push sets, while this row is written. */
	for (uint32_t i = 0; i < w->p.nsec; i++) {
		uint32_t old = GET(w->heads[i][b[i]]);
		if (old && old <= w->p.capacity)
			__builtin_prefetch(&row_at(w, old - 1)->link[i], 1);
	}
	r = row_alloc(w);
	if (r < 0)
		return (int)r;
	touch(w);
	rw = row_at(w, (uint64_t)r);
	s = row_begin(w, rw);
	cqrs__words_store(row_data(w, (uint64_t)r), row, w->p.row_size);
	for (uint32_t i = 0; i < w->p.nsec; i++)
		chain_prepare(w, i, (uint64_t)r, b[i]);
	SET(rw->flags, VROW_LIVE);
	row_end(w, rw, s);
	for (uint32_t i = 0; i < w->p.nsec; i++)
		chain_push(w, i, (uint64_t)r, b[i]);
	if (w->poisoned)
		return CQRS_ECORRUPT;
	/* release: the complete row before the bucket names it; pairs with the
	 * reader's acquire bucket load */
	atomic_store_explicit(&active(w)[ins], (h >> 32) << 32 | ((uint64_t)r + 2),
			      memory_order_release);
	if (w->ord.nodes && cqrs__ow_insert(&w->ord, (uint64_t)r, row))
		return poison(w, "ordered index inconsistent");
	if (ins_tomb)
		SET(w->st->tombs, GET(w->st->tombs) - 1);
	else
		SET(w->st->used, GET(w->st->used) + 1);
	SET(w->st->rows, GET(w->st->rows) + 1);
	return 0;
}

int cqrs__vw_upsert(cqrs_vw *w, const void *row)
{
	const uint8_t *k;
	uint64_t h, pos, ins, b[CQRS_VIEW_MAX_SECONDARY];
	uint32_t r;
	int ins_tomb;

	CHECK(w);
	if (!row)
		return -EINVAL;
	if (!w->in_batch)
		return cqrs__fail(-EINVAL, "view %s: rows change only inside a batch", w->view);
	k = (const uint8_t *)row + w->p.key.offset;
	h = XXH3_64bits(k, w->p.key.size);
	/* The chain heads an insert links into are cache misses of their own
	 * (a head per distinct value, spread over 4 * capacity bytes): start
	 * them now, to overlap with the primary index probe. */
	for (uint32_t i = 0; i < w->p.nsec; i++) {
		b[i] = sec_bucket(w, i, row);
		__builtin_prefetch(&w->heads[i][b[i]], 1);
	}
	if (find(w, k, h, &pos, &r, &ins, &ins_tomb))
		return overwrite(w, r, row, b);
	return insert(w, row, k, h, ins, ins_tomb, b);
}

static int lookup(cqrs_vw *w, const void *key, size_t keylen, uint64_t *pos, uint32_t *r)
{
	uint8_t kb[CQRS_VIEW_KEY_MAX];
	const uint8_t *k = cqrs__vkey_arg(&w->p.key, key, keylen, kb);
	uint64_t ins;
	int ins_tomb;

	if (!k)
		return -EINVAL;
	return find(w, k, XXH3_64bits(k, w->p.key.size), pos, r, &ins, &ins_tomb) ? 0
										    : CQRS_ENOTFOUND;
}

int cqrs__vw_update(cqrs_vw *w, const void *key, size_t keylen, cqrs_vw_update_fn fn, void *arg)
{
	const cqrs_vfield *kf;
	uint64_t pos;
	uint32_t r;
	int rc;

	CHECK(w);
	if (!fn)
		return -EINVAL;
	if (!w->in_batch)
		return cqrs__fail(-EINVAL, "view %s: rows change only inside a batch", w->view);
	rc = lookup(w, key, keylen, &pos, &r);
	if (rc)
		return rc;
	/* The writer reads its own rows without the seqlock: nobody else writes. */
	memcpy(w->scratch, row_data(w, r), w->p.row_size);
	rc = fn(arg, w->scratch, w->p.row_size);
	if (rc)
		return rc;
	kf = &w->p.key;
	if (memcmp(w->scratch + kf->offset, row_data(w, r) + kf->offset, kf->size) != 0)
		return cqrs__fail(-EINVAL, "view %s: an update may not change the key", w->view);
	return overwrite(w, r, w->scratch, NULL);
}

int cqrs__vw_patch(cqrs_vw *w, const void *key, size_t keylen, size_t offset, const void *src,
		  size_t len)
{
	const cqrs_vfield *kf;
	uint64_t pos;
	uint32_t r;
	int rc;

	CHECK(w);
	if (!src || offset > w->p.row_size || len > w->p.row_size - offset)
		return -EINVAL;
	if (!w->in_batch)
		return cqrs__fail(-EINVAL, "view %s: rows change only inside a batch", w->view);
	kf = &w->p.key;
	if (offset < kf->offset + kf->size && kf->offset < offset + len)
		return cqrs__fail(-EINVAL, "view %s: a patch may not change the key", w->view);
	rc = lookup(w, key, keylen, &pos, &r);
	if (rc)
		return rc;
	memcpy(w->scratch, row_data(w, r), w->p.row_size);
	memcpy(w->scratch + offset, src, len);
	return overwrite(w, r, w->scratch, NULL);
}

int cqrs__vw_delete(cqrs_vw *w, const void *key, size_t keylen)
{
	_Atomic uint64_t *idx;
	cqrs_vrow *rw;
	uint64_t pos;
	uint32_t r, s;
	int rc;

	CHECK(w);
	if (!w->in_batch)
		return cqrs__fail(-EINVAL, "view %s: rows change only inside a batch", w->view);
	rc = lookup(w, key, keylen, &pos, &r);
	if (rc)
		return rc;
	touch(w);
	idx = active(w);
	SET(idx[pos], VB_TOMB); /* readers skip it; the row's flags decide anyway */
	SET(w->st->tombs, GET(w->st->tombs) + 1);
	tomb_cleanup(w, idx, pos);
	rw = row_at(w, r);
	s = row_begin(w, rw);
	SET(rw->flags, 0);
	row_end(w, rw, s);
	for (uint32_t i = 0; i < w->p.nsec && !rc; i++)
		rc = chain_unlink(w, i, r, sec_bucket(w, i, row_data(w, r)));
	if (!rc && w->ord.nodes && cqrs__ow_remove(&w->ord, r))
		rc = poison(w, "ordered index inconsistent");
	SET(rw->free_next, (uint32_t)GET(w->st->free_head));
	SET(w->st->free_head, (uint64_t)r + 1);
	SET(w->st->rows, GET(w->st->rows) - 1);
	return rc;
}

int cqrs__vw_get(cqrs_vw *w, const void *key, size_t keylen, void *row_out)
{
	uint64_t pos;
	uint32_t r;
	int rc;

	CHECK(w);
	if (!row_out)
		return -EINVAL;
	rc = lookup(w, key, keylen, &pos, &r);
	if (!rc)
		memcpy(row_out, row_data(w, r), w->p.row_size);
	return rc;
}

/* ---- batches ------------------------------------------------------------------ */

int cqrs__vw_begin(cqrs_vw *w)
{
	CHECK(w);
	if (w->in_batch)
		return cqrs__fail(-EINVAL, "view %s: batch already open", w->view);
	w->in_batch = 1;
	if (GET(w->live->flags) & CQRS_SEG_CLEAN)
		/* release: a crash from here on finds the view dirty */
		atomic_fetch_and_explicit(&w->live->flags, ~CQRS_SEG_CLEAN, memory_order_release);
	return 0;
}

int cqrs__vw_end(cqrs_vw *w, uint64_t applied_seq)
{
	uint64_t prev;

	CHECK(w);
	if (!w->in_batch)
		return cqrs__fail(-EINVAL, "view %s: no batch open", w->view);
	CQRS_ASSERT(!w->row_open); /* every row even again before the batch ends */
	w->in_batch = 0;
	if (w->vseq_odd) {
		CQRS_ASSERT(!w->own_seqs || (GET(w->vs->view_seq) & 1) == 1);
		/* release: the batch's stores before the even view sequence; pairs
		 * with the snapshot reader's acquire load */
		atomic_store_explicit(&w->vs->view_seq, GET(w->vs->view_seq) + 1,
				      memory_order_release);
		w->vseq_odd = 0;
	}
	prev = GET(w->ap->applied_seq);
	if (applied_seq < prev)
		return cqrs__fail(-EINVAL, "view %s: applied_seq %llu < %llu", w->view,
				 (unsigned long long)applied_seq, (unsigned long long)prev);
	if (applied_seq == prev)
		return 0;
	/* seq_cst (both stores): the waker half of the futex protocol
	 * (core/futex.h); pairs with the waiter's load of wake and seq_cst
	 * re-check of applied_seq. applied_seq before wake, so a waiter that
	 * saw the new wake sees it. Readers map the view read-only and cannot
	 * announce themselves, so every batch wakes the word: one futex_wake
	 * per batch and view, a syscall even with nobody waiting. */
	atomic_store_explicit(&w->ap->applied_seq, applied_seq, memory_order_seq_cst);
	atomic_fetch_add_explicit(&w->ap->wake, 1, memory_order_seq_cst); /* as above */
	cqrs__futex_wake(&w->ap->wake);
	return 0;
}

int cqrs__vw_mark_clean(cqrs_vw *w)
{
	CHECK(w);
	if (w->in_batch)
		return cqrs__fail(-EINVAL, "view %s: mark clean inside a batch", w->view);
	/* release: every row store before the flag that says they are complete */
	atomic_fetch_or_explicit(&w->live->flags, CQRS_SEG_CLEAN, memory_order_release);
	return 0;
}

int cqrs__vw_mark_dirty(cqrs_vw *w)
{
	CHECK(w);
	/* relaxed: only this process and a later adopter (after our exit) read it */
	atomic_fetch_and_explicit(&w->live->flags, ~CQRS_SEG_CLEAN, memory_order_relaxed);
	return 0;
}

int cqrs__vw_is_clean(const cqrs_vw *w)
{
	return !!(GET(w->live->flags) & CQRS_SEG_CLEAN);
}

int cqrs__vw_retire(cqrs_vw *w)
{
	if (!w)
		return -EINVAL;
	/* release: a reader that sees RETIRED finds the directory already
	 * updated (cqrs__vw_publish of the successor came first) */
	atomic_fetch_or_explicit(&w->live->flags, CQRS_SEG_RETIRED, memory_order_release);
	return cqrs__seg_unlink(w->seg.name);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void wire(cqrs_vw *w)
{
	uint8_t *b = w->seg.base;

	w->rows = b + w->p.rows_off;
	w->index[0] = (_Atomic uint64_t *)(void *)(b + w->p.index_off[0]);
	w->index[1] = (_Atomic uint64_t *)(void *)(b + w->p.index_off[1]);
	for (uint32_t i = 0; i < w->p.nsec; i++)
		w->heads[i] = (_Atomic uint32_t *)(void *)(b + w->p.heads_off[i]);
	w->live = cqrs__seg_live_line(&w->seg);
	w->ap = (cqrs_vapplied *)(void *)(b + CQRS_VAPPLIED_OFF);
	w->vs = (cqrs_vseq *)(void *)(b + CQRS_VSEQ_OFF);
	w->st = (cqrs_vstats *)(void *)(b + CQRS_VSTATS_OFF);
	w->pmask = (UINT64_C(1) << w->p.pri_log2) - 1;
	w->smask = w->p.nsec ? (UINT64_C(1) << w->p.sec_log2) - 1 : 0;
	cqrs__ow_wire(&w->ord, b, &w->p);
}

/* Fills p's key and index fields from cfg. */
static int config_fields(const cqrs_vw_config *cfg, cqrs_vparams *p)
{
	uint32_t n = cfg->nsecondary;
	int rc = cqrs__vfield_ok(cfg->schema, cfg->key_field, &p->key);

	if (rc)
		return rc;
	if (n == 0)
		while (n < CQRS_VIEW_MAX_SECONDARY && cfg->secondary[n])
			n++;
	if (n > CQRS_VIEW_MAX_SECONDARY)
		return cqrs__fail(-EINVAL, "at most %u secondary indexes", CQRS_VIEW_MAX_SECONDARY);
	p->nsec = n;
	for (uint32_t i = 0; i < n; i++) {
		rc = cqrs__vfield_ok(cfg->schema, cfg->secondary[i], &p->sec[i]);
		if (rc)
			return rc;
		for (uint32_t j = 0; j < i; j++)
			if (p->sec[j].field == p->sec[i].field)
				return cqrs__fail(-EINVAL, "field %s indexed twice", cfg->secondary[i]);
	}
	for (n = 0; n < CQRS_ORD_MAX_FIELDS && cfg->ordered[n]; n++) {
		rc = cqrs__vfield_ord_ok(cfg->schema, cfg->ordered[n], &p->ord[n]);
		if (rc)
			return rc;
	}
	if (n == CQRS_ORD_MAX_FIELDS && cfg->ordered[n])
		return cqrs__fail(-EINVAL, "an ordered index has at most %u fields", CQRS_ORD_MAX_FIELDS);
	p->nord = n;
	return 0;
}

static cqrs_vw *vw_alloc(cqrs_ctl *ctl, const char *view, const cqrs_schema *s)
{
	cqrs_vw *w = calloc(1, sizeof *w);

	if (!w)
		return NULL;
	w->scratch = malloc(cqrs__align_up(s->size, 8));
	if (!w->scratch) {
		free(w);
		return NULL;
	}
	w->ctl = ctl;
	strcpy(w->engine, ctl->engine);
	strcpy(w->view, view);
	return w;
}

static int dir_slot(cqrs_ctl *ctl, const char *view, uint32_t *slot, uint64_t *gen)
{
	cqrs_ctl_view e;

	if (cqrs__ctl_find_view(ctl, view, &e, slot) == 0) {
		*gen = e.generation;
		return 0;
	}
	memset(&e, 0, sizeof e);
	strcpy(e.name, view);
	*gen = 0;
	return cqrs__ctl_add_view(ctl, &e, slot);
}

int cqrs__vw_create(cqrs_ctl *ctl, const char *view, const cqrs_vw_config *cfg, cqrs_vw **out)
{
	char name[CQRS_SEG_NAME_MAX];
	cqrs_vparams p;
	uint64_t total, gen;
	uint32_t slot;
	cqrs_vw *w;
	int rc;

	*out = NULL;
	if (!ctl || !ctl->writer || !cfg || !cfg->schema)
		return cqrs__fail(-EINVAL, "view create: NULL or read-only argument");
	if (!view || !cqrs__name_valid(view, CQRS_NAME_MAX))
		return cqrs__fail(-EINVAL, "bad view name");
	rc = cqrs_schema_validate(cfg->schema);
	if (rc)
		return rc;
	memset(&p, 0, sizeof p);
	rc = config_fields(cfg, &p);
	if (rc)
		return rc;
	p.capacity = cfg->capacity;
	p.row_size = cfg->schema->size;
	p.schema_len = (uint32_t)cqrs_schema_blob_size(cfg->schema);
	p.schema_hash = cqrs_schema_hash(cfg->schema);
	if (cqrs__vparams_layout(&p, &total))
		return cqrs__fail(-EINVAL, "view %s: capacity %llu or row size %u out of range", view,
				 (unsigned long long)cfg->capacity, p.row_size);
	rc = dir_slot(ctl, view, &slot, &gen);
	if (rc)
		return rc;
	if (cfg->generation && cfg->generation <= gen)
		return cqrs__fail(-EINVAL, "view %s: generation %llu is not above %llu", view,
				 (unsigned long long)cfg->generation, (unsigned long long)gen);
	gen = cfg->generation ? cfg->generation : gen + 1;
	rc = cqrs__seg_name_view(name, sizeof name, ctl->engine, view, gen);
	if (rc)
		return rc;
	w = vw_alloc(ctl, view, cfg->schema);
	if (!w)
		return -ENOMEM;
	rc = cqrs__seg_create(&w->seg, name, total, cfg->mode);
	if (rc == CQRS_ESTALE) { /* our engine's name, left by a dead run */
		rc = cqrs__seg_remove_stale(name);
		if (!rc)
			rc = cqrs__seg_create(&w->seg, name, total, cfg->mode);
	}
	if (rc) {
		cqrs__vw_close(w);
		return rc;
	}
	cqrs__seg_init_header(&w->seg, CQRS_SEG_VIEW, ctl->engine, view, gen);
	/* relaxed: the segment is not linked to its name yet (seal). */
	atomic_store_explicit(&cqrs__seg_live_line(&w->seg)->origin, cfg->origin, memory_order_relaxed);
	memcpy(w->seg.base + CQRS_VPARAMS_OFF, &p, sizeof p);
	cqrs_schema_encode(cfg->schema, w->seg.base + p.schema_off, p.schema_len);
	cqrs__seg_seal(&w->seg);
	w->p = p;
	w->schema = *cfg->schema;
	w->slot = slot;
	w->own_seqs = 1; /* a zeroed segment: every version word is even and ours */
	wire(w);
	/* The active index and the chain heads take random stores from the
	 * first row on: map them now (rows follow in windows, row_alloc). */
	cqrs__seg_prefault(&w->seg, p.index_off[0], UINT64_C(8) << p.pri_log2);
	for (uint32_t i = 0; i < p.nsec; i++)
		cqrs__seg_prefault(&w->seg, p.heads_off[i], UINT64_C(4) << p.sec_log2);
	if (cfg->pretouch)
		pretouch_rows(w);
	*out = w;
	return 0;
}

int cqrs__vw_peek(const char *engine, const char *view, uint64_t generation, uint64_t *applied,
		  uint64_t *origin)
{
	char name[CQRS_SEG_NAME_MAX];
	cqrs_seg seg;
	cqrs_vparams p;
	cqrs_schema schema;
	int rc = cqrs__seg_name_view(name, sizeof name, engine, view, generation);

	if (rc)
		return rc;
	rc = cqrs__seg_open(&seg, name, CQRS_SEG_VIEW, 0);
	if (rc)
		return rc;
	/* Validated before the applied line is read (the size covers it). */
	rc = cqrs__view_check(seg.base, seg.size, &p, &schema, seg.imm);
	if (!rc) {
		cqrs_vapplied *ap =
			(cqrs_vapplied *)(void *)((uint8_t *)seg.base + CQRS_VAPPLIED_OFF);
		/* acquire: pairs with the writer's release store at a batch end. */
		*applied = atomic_load_explicit(&ap->applied_seq, memory_order_acquire);
		/* relaxed: written before the segment was published. */
		*origin = atomic_load_explicit(&cqrs__seg_live_line(&seg)->origin, memory_order_relaxed);
	}
	cqrs__seg_close(&seg);
	return rc;
}

int cqrs__vw_adopt(cqrs_ctl *ctl, const char *view, uint64_t generation, const cqrs_vw_config *cfg,
		  cqrs_vw **out)
{
	char name[CQRS_SEG_NAME_MAX];
	cqrs_vparams want;
	uint64_t owner, gen;
	uint32_t flags;
	cqrs_vw *w;
	int rc;

	*out = NULL;
	if (!ctl || !ctl->writer || !cfg || !cfg->schema)
		return -EINVAL;
	rc = cqrs__seg_name_view(name, sizeof name, ctl->engine, view, generation);
	if (rc)
		return rc;
	memset(&want, 0, sizeof want);
	rc = cqrs_schema_validate(cfg->schema);
	if (!rc)
		rc = config_fields(cfg, &want);
	if (rc)
		return rc;
	w = vw_alloc(ctl, view, cfg->schema);
	if (!w)
		return -ENOMEM;
	rc = cqrs__seg_open(&w->seg, name, CQRS_SEG_VIEW, 1);
	if (!rc)
		rc = cqrs__view_check(w->seg.base, w->seg.size, &w->p, &w->schema, w->seg.imm);
	if (rc)
		goto fail;
	/* A larger capacity is the same view grown (CQRS_EFULL doubles it):
	 * adopt it as it is. A smaller one cannot hold what is asked. */
	if (w->p.schema_hash != cqrs_schema_hash(cfg->schema) || w->p.capacity < cfg->capacity ||
	    memcmp(&w->p.key, &want.key, sizeof want.key) != 0 || w->p.nsec != want.nsec ||
	    memcmp(w->p.sec, want.sec, sizeof want.sec) != 0 || w->p.nord != want.nord ||
	    memcmp(w->p.ord, want.ord, sizeof want.ord) != 0) {
		rc = cqrs__fail(CQRS_EFORMAT, "%s: schema or indexes differ, or capacity below %llu", name,
			       (unsigned long long)cfg->capacity);
		goto fail;
	}
	if (w->seg.uid != geteuid()) {
		rc = cqrs__fail(-EACCES, "%s belongs to uid %u", name, (unsigned)w->seg.uid);
		goto fail;
	}
	w->live = cqrs__seg_live_line(&w->seg);
	owner = atomic_load_explicit(&w->live->owner, memory_order_acquire); /* pairs with the owner's store */
	if (owner != cqrs__seg_self_owner() && cqrs__seg_owner_alive(owner)) {
		rc = cqrs__fail(-EEXIST, "%s: owner pid %u is alive", name, cqrs__seg_owner_pid(owner));
		goto fail;
	}
	flags = atomic_load_explicit(&w->live->flags, memory_order_acquire); /* pairs with mark_clean */
	if (!(flags & CQRS_SEG_CLEAN) || (flags & CQRS_SEG_RETIRED)) {
		rc = cqrs__fail(CQRS_ECORRUPT, "%s was not shut down cleanly: rebuild it", name);
		goto fail;
	}
	rc = dir_slot(ctl, view, &w->slot, &gen);
	if (rc)
		goto fail;
	/* release: ownership before any later store of ours */
	atomic_store_explicit(&w->live->owner, cqrs__seg_self_owner(), memory_order_release);
	wire(w);
	{
		uint64_t n;
		/* links read from a segment another process wrote: checked once */
		if (cqrs__ow_check(&w->ord, &n) || (w->ord.nodes && n != GET(w->st->rows))) {
			rc = cqrs__fail(CQRS_ECORRUPT, "%s: ordered index inconsistent: rebuild it", name);
			goto fail;
		}
	}
	if (cfg->pretouch)
		pretouch_rows(w);
	*out = w;
	return 0;
fail:
	cqrs__vw_close(w);
	return rc;
}

int cqrs__vw_publish(cqrs_vw *w)
{
	CHECK(w);
	return cqrs__ctl_set_generation(w->ctl, w->slot, cqrs__seg_header(&w->seg)->generation,
				       w->p.schema_hash, w->p.capacity, w->p.row_size);
}

void cqrs__vw_close(cqrs_vw *w)
{
	if (!w)
		return;
	cqrs__seg_close(&w->seg);
	free(w->scratch);
	free(w);
}

uint64_t cqrs__vw_rows(const cqrs_vw *w)
{
	return GET(w->st->rows);
}

uint64_t cqrs__vw_applied_seq(const cqrs_vw *w)
{
	return GET(w->ap->applied_seq);
}

uint64_t cqrs__vw_generation(const cqrs_vw *w)
{
	return cqrs__seg_header(&w->seg)->generation;
}

uint64_t cqrs__vw_capacity(const cqrs_vw *w)
{
	return w->p.capacity;
}

const char *cqrs__vw_segment_name(const cqrs_vw *w)
{
	return w->seg.name;
}

const struct cqrs_ow *cqrs__vw_ordered(const cqrs_vw *w)
{
	return &w->ord;
}

uint64_t cqrs__vw_rebuilds(const cqrs_vw *w)
{
	return GET(w->st->rebuilds);
}

int cqrs__vw_mapping(cqrs_vw *w, uint8_t **base, size_t *size, uint32_t *epoch)
{
	CHECK(w);
	*base = w->seg.base;
	*size = w->seg.size;
	*epoch = GET(w->live->epoch);
	return 0;
}

int cqrs__vw_restored(cqrs_vw *w, uint32_t epoch)
{
	uint64_t n;

	CHECK(w);
	/* relaxed: the segment is not published yet (cqrs__vw_publish follows) */
	SET(w->live->epoch, epoch);
	w->own_seqs = 0; /* the version words came from a file */
	if (GET(w->st->rows) > w->p.capacity || GET(w->st->hwm) > w->p.capacity ||
	    GET(w->st->free_head) > w->p.capacity ||
	    /* relaxed: not published yet, only this thread has stored it */
	    (atomic_load_explicit(&w->vs->view_seq, memory_order_relaxed) & 1) ||
	    cqrs__ow_check(&w->ord, &n) || (w->ord.nodes && n != GET(w->st->rows)))
		return poison(w, "restored segment inconsistent");
	return 0;
}

int cqrs__vw_test_leave_odd(cqrs_vw *w, const void *key, size_t keylen)
{
	uint64_t pos;
	uint32_t r;
	int rc;

	CHECK(w);
	rc = lookup(w, key, keylen, &pos, &r);
	if (rc)
		return rc;
	touch(w);
	(void)row_begin(w, row_at(w, r)); /* and never row_end: a writer killed here */
	/* The segment now holds what a dead writer leaves: the asserts stop
	 * vouching for its versions, and the open row is nobody's. */
	w->own_seqs = 0;
	w->row_open = 0;
	return 0;
}

int cqrs__vw_copy_rows(cqrs_vw *from, cqrs_vw *to)
{
	uint64_t hwm;
	int rc = 0;

	CHECK(from);
	CHECK(to);
	if (from->p.row_size != to->p.row_size || from->p.schema_hash != to->p.schema_hash)
		return cqrs__fail(-EINVAL, "view %s: copying rows between different schemas", to->view);
	hwm = GET(from->st->hwm);
	for (uint64_t r = 0; r < hwm && rc == 0; r++)
		if (GET(row_at(from, r)->flags) & VROW_LIVE) /* this thread's own rows */
			rc = cqrs__vw_upsert(to, row_data(from, r));
	return rc;
}
