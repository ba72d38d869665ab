/*
 * shm/ordered_reader.c - the public ordered-index reads of include/
 * cqrs_view.h (range, count, first, last, seek) over the B+tree of
 * shm/ordered_format.h, whose reader protocol this file follows: every
 * node is read optimistically under its version (checked before and after
 * the copy); a leaf is trusted only for the range its fences name; a
 * version that moved restarts the walk from the root just past the last
 * row delivered.
 *
 * Nothing read from the segment is trusted: the meta node is checked
 * against the parameters, the root, children and leaf links are
 * range-checked before use, kinds, levels and counts are checked at the
 * version they were read at, delivered positions must strictly increase
 * (decrease backwards) and each walk has a step budget, so a corrupt or
 * hostile segment gives CQRS_ECORRUPT.
 *
 * Hot path: no syscalls, locks or allocation (a snapshot's buffer aside):
 * a seek is one descent (per level: the node's position array prefetched
 * whole, then a branch-free binary search loading key words in place) and
 * a copy of the entries it returns; a scan copies runs of entries (rows
 * too, when the leaves carry them) leaf by leaf, the next leaf prefetched
 * while this one is copied. A restart under churn spins, then yields
 * after RESTART_YIELD of them.
 */
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include "core/errors.h"
#include "cqrs_view.h"
#include "shm/ordered_format.h"
#include "shm/view_format.h"
#include "shm/view_internal.h"

#define RESTART 1               /* internal: a node changed under the walk */
#define DONE 2                  /* internal: the walk has all it wants */
#define RESTART_YIELD 64u       /* restarts before each one yields */
#define RESTART_MAX 100000u     /* restarts in one call before -EAGAIN */
#define RESTART_MAX_IMAGE 16u   /* ... in an image, which nobody writes */
#define SNAP_TRIES 100000u      /* snapshot attempts before -EAGAIN */

#define PMAX (CQRS_ORD_KEY_MAX + 8)

typedef struct owalk {
	cqrs_view *v;
	const uint8_t *nodes, *rows;
	const cqrs_vparams *p;
	cqrs_ord_geom g;
	uint32_t nnodes;
	uint64_t cap;
	uint64_t budget;           /* node reads left in this attempt */
	unsigned restart_max;
	int image;
	/* the query (bounds below) */
	int has_lo, has_hi, hi_incl, desc, count_only, snapshot;
	int fast;                  /* rows from covering leaves straight to fn (deliver_run) */
	uint64_t limit;
	cqrs_view_row_fn fn;
	void *arg;
	/* progress */
	int started;               /* last holds the position last delivered (or counted) */
	uint64_t n;                /* rows delivered or counted */
	int stopped;               /* fn asked to stop */
	/* from here on not zeroed per call */
	uint8_t lo[CQRS_ORD_KEY_MAX], hi[CQRS_ORD_KEY_MAX]; /* encoded, zero padded to kw */
	uint8_t last[PMAX];
	_Alignas(64) uint8_t pos[CQRS_ORD_NODE_SIZE];  /* a run of positions */
	_Alignas(64) uint8_t run_rows[CQRS_ORD_NODE_SIZE]; /* and of rows (covering) */
} owalk;

/* One leaf as read at one version. */
typedef struct oleaf {
	uint32_t cnt, a, b;        /* entries; the run [a, b) copied to pos, rows */
	uint32_t next, prev;       /* + 1 */
	uint8_t low[PMAX], high[PMAX];
} oleaf;

static const uint8_t *nd(const owalk *w, uint32_t n)
{
	return w->nodes + (uint64_t)n * w->g.node_size;
}

static const cqrs_onode *hd(const owalk *w, uint32_t n)
{
	return (const cqrs_onode *)(const void *)nd(w, n);
}

static uint32_t rd32(const uint8_t *p, uint32_t off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* dst = src, n bytes (a multiple of 8: positions, padded keys), inline. */
static inline void pcopy(uint8_t *dst, const uint8_t *src, uint32_t n)
{
	for (uint32_t i = 0; i < n; i += 8) {
		uint64_t x;

		memcpy(&x, src + i, 8);
		memcpy(dst + i, &x, 8);
	}
}

static int cmp(const owalk *w, const uint8_t *a, const uint8_t *b)
{
	return cqrs__ord_pos_cmp(a, b, w->g.kw);
}

/* The even version of node n, or RESTART while the writer is in it. */
static int ver_begin(owalk *w, uint32_t n, uint32_t *s)
{
	if (n == 0 || n >= w->nnodes)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: link to node %u of %u", n, w->nnodes);
	if (w->budget-- == 0)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: walk past its budget");
	/* acquire: pairs with the writer's release store of the even version:
	 * the node's words as of that change */
	*s = atomic_load_explicit(&hd(w, n)->ver, memory_order_acquire);
	return (*s & 1) ? RESTART : 0;
}

/* Whether node n still has version s after the copies before. */
static int ver_same(const owalk *w, uint32_t n, uint32_t s)
{
	/* acquire: orders the copies before the re-check; pairs with the
	 * writer's release fence after its odd store */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&hd(w, n)->ver, memory_order_relaxed) == s; /* after the fence */
}

/* A position to search for as host-order words: the key's big-endian
 * words byte-swapped, so that integer comparison is memcmp order, then
 * the row number. */
typedef struct otarget {
	uint64_t w[CQRS_ORD_KEY_MAX / 8];
	uint64_t row;
	uint32_t nw;
} otarget;

static void target_of(const owalk *w, const uint8_t *pos, otarget *t)
{
	t->nw = w->g.kw / 8;
	for (uint32_t i = 0; i < t->nw; i++) {
		memcpy(&t->w[i], pos + 8 * i, 8);
		t->w[i] = __builtin_bswap64(t->w[i]);
	}
	memcpy(&t->row, pos + w->g.kw, 8);
}

/* Whether the position at p (shared) is before t (le: or equal). No
 * branch on the data: a binary search's probes do not mispredict. */
static inline __attribute__((always_inline)) uint64_t pos_before(const uint8_t *p, const otarget *t,
								  int le, uint32_t nw)
{
	const _Atomic uint64_t *q = (const _Atomic uint64_t *)(const void *)p;
	uint64_t lt = 0, eq = 1, r;

	for (uint32_t i = 0; i < nw; i++) {
		/* relaxed: the node's version check after the search orders it */
		uint64_t a = __builtin_bswap64(atomic_load_explicit(&q[i], memory_order_relaxed));

		lt |= eq & (a < t->w[i]);
		eq &= a == t->w[i];
	}
	r = atomic_load_explicit(&q[nw], memory_order_relaxed); /* as above */
	return lt | (eq & (le ? r <= t->row : r < t->row));
}

/* The search below for keys of nw words (a constant where inlined). */
static inline __attribute__((always_inline)) uint32_t search_nw(const uint8_t *base, uint32_t psz,
								 uint32_t cnt, const otarget *t, int le,
								 uint32_t nw)
{
	uint32_t at = 0, len = cnt;

	while (len > 1) {
		uint32_t half = len / 2;

		at += (uint32_t)pos_before(base + (size_t)(at + half) * psz, t, le, nw) * half;
		len -= half;
	}
	return at + (uint32_t)pos_before(base + (size_t)at * psz, t, le, nw);
}

/* The first of node n's cnt positions after t (le) or at or after it
 * (!le): a branch-free binary search over the contiguous positions,
 * unrolled for keys of one to three words. */
static uint32_t search(const owalk *w, uint32_t n, uint32_t cnt, const otarget *t, int le)
{
	const uint8_t *base = nd(w, n) + w->g.ents;

	if (!cnt)
		return 0;
	switch (t->nw) {
	case 1:
		return search_nw(base, 16, cnt, t, le, 1);
	case 2:
		return search_nw(base, 24, cnt, t, le, 2);
	case 3:
		return search_nw(base, 32, cnt, t, le, 3);
	default:
		return search_nw(base, w->g.psz, cnt, t, le, t->nw);
	}
}

/* Starts the cache misses of a node's header and position array (what
 * its binary search reads: max positions), all at once rather than one
 * probe after the other. A hint only. */
static inline void prefetch_pos(const owalk *w, uint32_t n, uint32_t max)
{
	const uint8_t *p = nd(w, n);

	for (size_t off = 0; off < w->g.ents + (size_t)max * w->g.psz; off += 64)
		__builtin_prefetch(p + off);
}

/* Starts the cache misses of a whole leaf that carries rows: its
 * positions first, then its rows, so the row a seek finds arrives with
 * (not after) the binary search. A hint only. */
static inline void prefetch_leaf(const owalk *w, uint32_t n)
{
	const uint8_t *p = nd(w, n);

	for (size_t off = 0; off < w->g.node_size; off += 64)
		__builtin_prefetch(p + off);
}

/* The leaf for target, from the root. 0, RESTART or CQRS_ECORRUPT. */
static int descend(owalk *w, const uint8_t *target, uint32_t *leaf)
{
	const cqrs_ometa *m = (const cqrs_ometa *)(const void *)w->nodes;
	/* acquire: pairs with the writer's release store of root: the root
	 * node is complete */
	uint32_t n = atomic_load_explicit(&m->root, memory_order_acquire), up = 0;
	otarget t;

	target_of(w, target, &t);

	for (uint32_t d = 0; d < CQRS_ORD_MAX_DEPTH; d++) {
		uint8_t h[8];
		uint32_t s, kind, cnt, lvl, i;
		uint64_t child;
		int rc = ver_begin(w, n, &s);

		if (rc)
			return rc;
		kind = atomic_load_explicit(&hd(w, n)->kind, memory_order_relaxed); /* the version orders it */
		cqrs__words_load(h, nd(w, n) + 8, 8);
		cnt = rd32(h, 0);
		lvl = rd32(h, 4);
		if (kind == CQRS_ORD_LEAF) {
			if (!ver_same(w, n, s))
				return RESTART;
			if (d && up != 1)
				return RESTART; /* reused since the parent named it */
			*leaf = n;
			return 0;
		}
		if (kind != CQRS_ORD_INNER || cnt < 1 || cnt > w->g.imax || (d && lvl + 1 != up) || lvl == 0) {
			if (!ver_same(w, n, s))
				return RESTART;
			return d && (kind == CQRS_ORD_FREE || kind == CQRS_ORD_LEAF) ? RESTART
				: cqrs__fail(CQRS_ECORRUPT, "ordered index: node %u kind %#x count %u level %u",
					     n, kind, cnt, lvl);
		}
		/* the child holding the target: the last entry at or before it */
		i = search(w, n, cnt, &t, 1);
		i = i ? i - 1 : 0;
		cqrs__words_load(&child, nd(w, n) + w->g.ipay + (size_t)i * 8, 8);
		if (!ver_same(w, n, s))
			return RESTART;
		if (child == 0 || child >= w->nnodes)
			return cqrs__fail(CQRS_ECORRUPT, "ordered index: child %llu of node %u",
					  (unsigned long long)child, n);
		if (lvl == 1 && w->g.cover && !w->count_only)
			prefetch_leaf(w, (uint32_t)child);
		else
			prefetch_pos(w, (uint32_t)child, lvl == 1 ? w->g.lmax : w->g.imax);
		up = lvl;
		n = (uint32_t)child;
	}
	return cqrs__fail(CQRS_ECORRUPT, "ordered index: deeper than %u", CQRS_ORD_MAX_DEPTH);
}

/* Starts the cache misses of the rows of a run about to be copied and,
 * when the walk will need more than this leaf has, of the leaf it goes to
 * next (link + 1, not yet validated: only range-checked, and a prefetch
 * reads nothing). Hints only. */
static inline void prefetch_run(const owalk *w, uint32_t n, uint32_t link, uint32_t a, uint32_t run,
				uint64_t need)
{
	if (w->g.cover && !w->count_only) {
		const uint8_t *r = nd(w, n) + w->g.lpay + (size_t)a * w->g.cover;

		for (size_t off = 0; off < (size_t)run * w->g.cover; off += 64)
			__builtin_prefetch(r + off);
	}
	if (need > run && link && link < w->nnodes) {
		const uint8_t *next = nd(w, link - 1);
		size_t more = need - run < w->g.lmax ? (size_t)(need - run) : w->g.lmax;

		prefetch_pos(w, link - 1, w->g.lmax);
		if (w->g.cover && !w->count_only) {
			/* ascending: its first rows; descending: its last ones
			 * (which ones depends on its count: all of them) */
			const uint8_t *r = next + w->g.lpay;
			size_t span = (w->desc ? w->g.lmax : more) * w->g.cover;

			for (size_t off = 0; off < span; off += 64)
				__builtin_prefetch(r + off);
		}
	}
}

/* Reads leaf n at one version: its header and fences, and the run of at
 * most need entries from cur on (ascending) or below cur (descending)
 * into w->pos and w->run_rows (rows only when they are needed). */
static int leaf_read(owalk *w, uint32_t n, const uint8_t *cur, uint64_t need, oleaf *L)
{
	uint8_t h[CQRS_ORD_HDR + 2 * PMAX];
	otarget t;
	uint32_t s, kind, cnt, i, run;
	int rc = ver_begin(w, n, &s);

	if (rc)
		return rc;
	kind = atomic_load_explicit(&hd(w, n)->kind, memory_order_relaxed); /* the version orders it */
	cqrs__words_load(h + 8, nd(w, n) + 8, w->g.ents - 8);
	cnt = rd32(h, 8);
	if (kind != CQRS_ORD_LEAF || cnt > w->g.lmax) {
		if (!ver_same(w, n, s) || kind == CQRS_ORD_FREE || kind == CQRS_ORD_INNER)
			return RESTART; /* reused since it was named */
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: leaf %u kind %#x count %u", n, kind, cnt);
	}
	target_of(w, cur, &t);
	i = search(w, n, cnt, &t, 0);
	if (!w->desc) {
		run = cnt - i < need ? cnt - i : (uint32_t)need;
		L->a = i;
		L->b = i + run;
	} else {
		run = i < need ? i : (uint32_t)need;
		L->a = i - run;
		L->b = i;
	}
	prefetch_run(w, n, rd32(h, w->desc ? 20 : 16), L->a, run, need);
	cqrs__words_load(w->pos, nd(w, n) + w->g.ents + (size_t)L->a * w->g.psz, (size_t)run * w->g.psz);
	if (w->g.cover && !w->count_only)
		cqrs__words_load(w->run_rows, nd(w, n) + w->g.lpay + (size_t)L->a * w->g.cover,
				 (size_t)run * w->g.cover);
	if (!ver_same(w, n, s))
		return RESTART;
	if (rd32(h, 12) != 0)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: leaf %u at level %u", n, rd32(h, 12));
	L->cnt = cnt;
	L->next = rd32(h, 16);
	L->prev = rd32(h, 20);
	pcopy(L->low, h + CQRS_ORD_HDR, w->g.psz);
	pcopy(L->high, h + CQRS_ORD_HDR + w->g.psz, w->g.psz);
	return 0;
}

/* Entry e (a position, maybe its row) is in the range: deliver it. A
 * leaf that carries rows hands over its copy (rowp); otherwise row n is copied
 * under its seqlock and delivered when it is live and still has the key. */
static int take(owalk *w, const uint8_t *e, const uint8_t *rowp)
{
	uint32_t rs = w->p->row_size, flags;
	uint64_t r = rd64(e + w->g.kw);
	uint8_t *dst, ek[CQRS_ORD_KEY_MAX];
	int rc;

	if (r >= w->cap || w->n >= w->cap)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: row %llu (%llu delivered)",
				  (unsigned long long)r, (unsigned long long)w->n);
	if (w->started && (w->desc ? cmp(w, e, w->last) >= 0 : cmp(w, e, w->last) <= 0))
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: out of order at row %llu",
				  (unsigned long long)r);
	if (w->count_only) {
		w->n++;
		goto done;
	}
	if (w->g.cover && !w->snapshot) {
		w->n++;
		if (w->fn(w->arg, rowp, rs))
			w->stopped = 1;
		goto done;
	}
	dst = w->snapshot ? cqrs__view_snap_buf(w->v, (size_t)(w->n + 1) * ((rs + 7) & ~7u))
			  : cqrs__view_row_buf(w->v);
	if (!dst)
		return -ENOMEM;
	if (w->snapshot)
		dst += (size_t)w->n * ((rs + 7) & ~7u);
	if (w->g.cover) {
		memcpy(dst, rowp, rs);
	} else {
		rc = cqrs__view_row_copy(w->v, r, dst, &flags);
		if (rc)
			return rc;
		cqrs__ord_encode_row(w->p->ord, w->p->nord, dst, ek);
		if (!(flags & VROW_LIVE) || memcmp(ek, e, w->g.klen) != 0)
			return 0; /* moved on since: not at this place any more */
	}
	w->n++;
	if (!w->snapshot && w->fn(w->arg, dst, rs))
		w->stopped = 1;
done:
	pcopy(w->last, e, w->g.psz);
	w->started = 1;
	return 0;
}

static int full(const owalk *w)
{
	return w->stopped || (w->limit && w->n >= w->limit);
}

static uint64_t need(const owalk *w)
{
	return !w->count_only && w->limit ? w->limit - w->n : UINT64_MAX;
}

/* take() for a whole run of a leaf that carries rows, outside a
 * snapshot: the same checks (bound, row number, count, strict order,
 * each entry against the one before it) without a call or a copy of the
 * position per row; the last position is kept once at the end. 0 (the
 * run delivered), DONE (a bound, the limit or fn stopped the walk), or
 * CQRS_ECORRUPT. */
static int deliver_run(owalk *w, uint32_t cnt)
{
	const uint32_t psz = w->g.psz, kw = w->g.kw, cover = w->g.cover, rs = w->p->row_size;
	const uint8_t *prev = w->started ? w->last : NULL;
	int rc = 0;

	for (uint32_t j = 0; j < cnt; j++) {
		uint32_t k = w->desc ? cnt - 1 - j : j;
		const uint8_t *e = w->pos + (size_t)k * psz;
		uint64_t r = rd64(e + kw);

		if (w->desc ? w->has_lo && cqrs__ord_key_cmp(e, w->lo, kw) < 0
			    : w->has_hi && cqrs__ord_key_cmp(e, w->hi, kw) >= 0) {
			rc = DONE;
			break;
		}
		if (r >= w->cap || w->n >= w->cap ||
		    (prev && (w->desc ? cmp(w, e, prev) >= 0 : cmp(w, e, prev) <= 0))) {
			rc = cqrs__fail(CQRS_ECORRUPT, "ordered index: row %llu out of order or range",
					(unsigned long long)r);
			break;
		}
		prev = e;
		w->n++;
		if (w->fn(w->arg, w->run_rows + (size_t)k * cover, rs))
			w->stopped = 1;
		if (full(w)) {
			rc = DONE;
			break;
		}
	}
	if (prev && prev != w->last) {
		pcopy(w->last, prev, psz);
		w->started = 1;
	}
	return rc;
}

/* One attempt from the root: 0 (done), RESTART, or an error. */
static int attempt(owalk *w)
{
	uint8_t cur[PMAX];
	uint32_t n = 0;
	oleaf L;
	int rc;

	w->budget = (uint64_t)w->nnodes * 2 + 64;
	memset(cur, 0, sizeof cur);
	if (w->started) {
		uint64_t r = rd64(w->last + w->g.kw) + !w->desc;

		pcopy(cur, w->last, w->g.kw);
		memcpy(cur + w->g.kw, &r, 8);
	} else if (!w->desc) {
		if (w->has_lo)
			pcopy(cur, w->lo, w->g.kw);
	} else if (w->has_hi) {
		uint64_t r = w->hi_incl ? UINT64_MAX : 0;

		pcopy(cur, w->hi, w->g.kw);
		memcpy(cur + w->g.kw, &r, 8);
	} else {
		memset(cur, 0xff, w->g.psz);
	}
	rc = descend(w, cur, &n);
	if (rc)
		return rc;
	for (;;) {
		rc = leaf_read(w, n, cur, need(w), &L);
		if (rc)
			return rc;
		if (!w->desc) {
			if (cmp(w, cur, L.low) < 0)
				return RESTART; /* not this leaf's range any more */
			if (cmp(w, cur, L.high) >= 0) {
				if (!L.next)
					return RESTART;
				n = L.next - 1; /* split, not yet in the parent: to the right */
				continue;
			}
			if (w->fast) {
				rc = deliver_run(w, L.b - L.a);
				if (rc)
					return rc == DONE ? 0 : rc;
			} else {
				for (uint32_t k = 0; k < L.b - L.a; k++) {
					const uint8_t *e = w->pos + (size_t)k * w->g.psz;

					if (w->has_hi && cqrs__ord_key_cmp(e, w->hi, w->g.kw) >= 0)
						return 0;
					rc = take(w, e, w->run_rows + (size_t)k * w->g.cover);
					if (rc || full(w))
						return rc;
				}
			}
			if (L.b < L.cnt) { /* entries were passed over: the rest of this leaf */
				const uint8_t *e = w->pos + (size_t)(L.b - 1 - L.a) * w->g.psz;
				uint64_t r = rd64(e + w->g.kw) + 1;

				pcopy(cur, e, w->g.kw);
				memcpy(cur + w->g.kw, &r, 8);
				continue;
			}
			if (!L.next)
				return 0;
			pcopy(cur, L.high, w->g.psz);
			n = L.next - 1;
			continue;
		}
		if (cmp(w, cur, L.high) > 0)
			return RESTART;
		if (cmp(w, cur, L.low) <= 0) {
			if (!L.prev)
				return 0; /* nothing below the first leaf's low */
			n = L.prev - 1;
			continue;
		}
		if (w->fast) {
			rc = deliver_run(w, L.b - L.a);
			if (rc)
				return rc == DONE ? 0 : rc;
		} else {
			for (uint32_t k = L.b - L.a; k-- > 0;) {
				const uint8_t *e = w->pos + (size_t)k * w->g.psz;

				if (w->has_lo && cqrs__ord_key_cmp(e, w->lo, w->g.kw) < 0)
					return 0;
				rc = take(w, e, w->run_rows + (size_t)k * w->g.cover);
				if (rc || full(w))
					return rc;
			}
		}
		if (L.a > 0) {
			pcopy(cur, w->pos, w->g.psz);
			continue;
		}
		if (!L.prev)
			return 0;
		pcopy(cur, L.low, w->g.psz);
		n = L.prev - 1;
	}
}

static int walk(owalk *w)
{
	for (unsigned r = 0;; r++) {
		int rc = attempt(w);

		if (rc != RESTART)
			return rc;
		if (r >= w->restart_max)
			return w->image ? cqrs__fail(CQRS_ECORRUPT, "ordered index: image never consistent")
					: cqrs__fail(-EAGAIN, "ordered index: %u restarts under churn", r);
		if (r % RESTART_YIELD == RESTART_YIELD - 1)
			sched_yield();
		else
			cqrs__cpu_relax();
	}
}

static int snapshot_walk(owalk *w)
{
	const cqrs_vseq *vs = (const cqrs_vseq *)(const void *)((const uint8_t *)w->nodes - w->p->ord_off +
								 CQRS_VSEQ_OFF);

	for (unsigned t = 0; t < (w->restart_max == RESTART_MAX ? SNAP_TRIES : w->restart_max); t++) {
		/* acquire: pairs with cqrs__vw_end's release store of the even
		 * view sequence: the batch's rows and nodes are visible */
		uint64_t s1 = atomic_load_explicit(&vs->view_seq, memory_order_acquire);

		if (!(s1 & 1)) {
			int rc;

			w->started = 0;
			w->n = 0;
			rc = walk(w);
			if (rc)
				return rc;
			/* acquire: orders the walk's loads before the re-check;
			 * pairs with the writer's release fence after its odd store */
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&vs->view_seq, memory_order_relaxed) == s1) /* after the fence */
				return 0;
		}
		if (t % RESTART_YIELD == RESTART_YIELD - 1)
			sched_yield();
		else
			cqrs__cpu_relax();
	}
	return cqrs__fail(-EAGAIN, "ordered index: snapshot starved by the writer");
}

/* A key argument (the fields' native values, maybe a prefix) encoded into
 * out (klen bytes, missing bytes zero). 0 or -EINVAL. */
static int encode_arg(const owalk *w, const uint8_t *raw, size_t len, uint8_t *out)
{
	memset(out, 0, w->g.kw);
	for (uint32_t i = 0; i < w->p->nord && len; i++) {
		const cqrs_vfield *f = &w->p->ord[i];

		if (len >= f->size) {
			cqrs__ord_encode_field(f->type, f->size, raw, out);
			raw += f->size;
			len -= f->size;
		} else if (f->type == CQRS_FT_STR || f->type == CQRS_FT_BYTES) {
			memcpy(out, raw, len);
			len = 0;
		} else {
			return -EINVAL;
		}
		out += f->size;
	}
	return len ? -EINVAL : 0;
}

/* Whether index names the view's ordered index. */
static int index_ok(const cqrs_view *v, const cqrs_vparams *p, const char *index)
{
	const cqrs_schema *s = cqrs_view_schema((cqrs_view *)v);
	size_t at = 0;

	if (!index)
		return 1;
	for (uint32_t i = 0; i < p->nord; i++) {
		const char *name = s->fields[p->ord[i].field].name;
		size_t len = strnlen(name, CQRS_NAME_MAX);

		if (strncmp(index + at, name, len) != 0)
			return 0;
		at += len;
		if (index[at] == '\0')
			return i == 0 || i + 1 == p->nord;
		if (index[at] != ',')
			return 0;
		at++;
	}
	return 0;
}

static int setup(owalk *w, cqrs_view *v, const char *index, const void *lo, size_t lo_len,
		 const void *hi, size_t hi_len, unsigned flags)
{
	const uint8_t *base;
	int rc, image;

	memset(w, 0, offsetof(owalk, lo)); /* not the buffers: 8 KiB per call */
	if (!v || (flags & ~(CQRS_RANGE_SNAPSHOT | CQRS_RANGE_DESC)))
		return -EINVAL;
	rc = cqrs__view_ord_enter(v, &base, &w->p, &image);
	if (rc)
		return rc;
	w->restart_max = image ? RESTART_MAX_IMAGE : RESTART_MAX;
	if (!w->p->nord || !index_ok(v, w->p, index))
		return CQRS_ENOTFOUND;
	w->v = v;
	w->image = image;
	w->nodes = base + w->p->ord_off;
	w->rows = base + w->p->rows_off;
	w->cap = w->p->capacity;
	w->nnodes = w->p->ord_nodes;
	cqrs__ord_geom(&w->g, w->p->ord_klen, w->p->row_size);
	{
		const cqrs_ometa *m = (const cqrs_ometa *)(const void *)w->nodes;

		/* acquire: pairs with the writer's release store of kind after
		 * the meta words; relaxed below: written once, before kind */
		if (atomic_load_explicit(&m->kind, memory_order_acquire) != CQRS_ORD_META)
			return cqrs__fail(CQRS_ECORRUPT, "ordered index: no meta node");
		if (atomic_load_explicit(&m->format, memory_order_relaxed) != CQRS_ORD_FORMAT)
			return cqrs__fail(CQRS_EFORMAT, "ordered index format %u, this library reads %u",
					  atomic_load_explicit(&m->format, memory_order_relaxed), CQRS_ORD_FORMAT);
		if (atomic_load_explicit(&m->node_size, memory_order_relaxed) != w->g.node_size ||
		    atomic_load_explicit(&m->nodes, memory_order_relaxed) != w->nnodes)
			return cqrs__fail(CQRS_ECORRUPT, "ordered index: meta node disagrees with the view");
	}
	w->desc = !!(flags & CQRS_RANGE_DESC);
	w->snapshot = !!(flags & CQRS_RANGE_SNAPSHOT);
	w->has_lo = lo != NULL;
	w->has_hi = hi != NULL;
	if ((lo && encode_arg(w, lo, lo_len, w->lo)) || (hi && encode_arg(w, hi, hi_len, w->hi)))
		return -EINVAL;
	return 0;
}

static int run(owalk *w)
{
	int rc;

	w->fast = w->g.cover && !w->snapshot && !w->count_only;
	rc = w->snapshot ? snapshot_walk(w) : walk(w);
	if (rc)
		return rc;
	if (w->snapshot && !w->count_only) {
		size_t stride = (w->p->row_size + 7) & ~(size_t)7;
		const uint8_t *buf = cqrs__view_snap_buf(w->v, 0);

		for (uint64_t i = 0; i < w->n; i++)
			if (w->fn(w->arg, buf + i * stride, w->p->row_size))
				return (int)(i + 1);
	}
	return 0;
}

int cqrs_view_range(cqrs_view *v, const char *index, const void *lo, size_t lo_len, const void *hi,
		    size_t hi_len, unsigned flags, uint64_t limit, cqrs_view_row_fn fn, void *arg)
{
	owalk w;
	int rc;

	if (!fn)
		return -EINVAL;
	rc = setup(&w, v, index, lo, lo_len, hi, hi_len, flags);
	if (rc)
		return rc;
	w.limit = limit;
	w.fn = fn;
	w.arg = arg;
	rc = run(&w);
	if (rc)
		return rc;
	return w.n > INT32_MAX ? INT32_MAX : (int)w.n;
}

int cqrs_view_range_count(cqrs_view *v, const char *index, const void *lo, size_t lo_len,
			  const void *hi, size_t hi_len, unsigned flags, uint64_t *count)
{
	owalk w;
	int rc;

	if (!count)
		return -EINVAL;
	rc = setup(&w, v, index, lo, lo_len, hi, hi_len, flags);
	if (rc)
		return rc;
	w.count_only = 1;
	rc = run(&w);
	*count = rc ? 0 : w.n;
	return rc;
}

struct one {
	void *out;
	int got;
};

static int copy_one(void *arg, const void *row, size_t row_size)
{
	struct one *o = arg;

	memcpy(o->out, row, row_size);
	o->got = 1;
	return 1;
}

/* One row: the first from lo up, or (DESC) the last from hi down, hi
 * inclusive when incl. */
static int one_row(cqrs_view *v, const char *index, const void *lo, size_t lo_len, const void *hi,
		   size_t hi_len, int incl, unsigned flags, void *row_out, size_t row_size)
{
	struct one o = { row_out, 0 };
	owalk w;
	int rc;

	if (!v || !row_out)
		return -EINVAL;
	if (row_size < cqrs_view_schema(v)->size)
		return -ENOSPC;
	rc = setup(&w, v, index, lo, lo_len, hi, hi_len, flags);
	if (rc)
		return rc;
	w.hi_incl = incl;
	w.limit = 1;
	w.fn = copy_one;
	w.arg = &o;
	rc = run(&w);
	if (rc < 0)
		return rc;
	return o.got ? 0 : CQRS_ENOTFOUND;
}

int cqrs_view_first(cqrs_view *v, const char *index, void *row_out, size_t row_size)
{
	return one_row(v, index, NULL, 0, NULL, 0, 0, 0, row_out, row_size);
}

int cqrs_view_last(cqrs_view *v, const char *index, void *row_out, size_t row_size)
{
	return one_row(v, index, NULL, 0, NULL, 0, 0, CQRS_RANGE_DESC, row_out, row_size);
}

int cqrs_view_seek(cqrs_view *v, const char *index, const void *key, size_t keylen, unsigned flags,
		   void *row_out, size_t row_size)
{
	if (!key || (flags & ~(CQRS_RANGE_DESC | CQRS_RANGE_SNAPSHOT)))
		return -EINVAL;
	if (!(flags & CQRS_RANGE_DESC))
		return one_row(v, index, key, keylen, NULL, 0, 0, flags, row_out, row_size);
	return one_row(v, index, NULL, 0, key, keylen, 1, flags, row_out, row_size);
}

int cqrs_view_ordered(cqrs_view *v, const char **fields, size_t cap)
{
	const uint8_t *base;
	const cqrs_vparams *p;
	const cqrs_schema *s;
	int rc, image;

	if (!v || (cap && !fields))
		return -EINVAL;
	rc = cqrs__view_ord_enter(v, &base, &p, &image);
	if (rc)
		return rc;
	s = cqrs_view_schema(v);
	for (uint32_t i = 0; i < p->nord && i < cap; i++)
		fields[i] = s->fields[p->ord[i].field].name;
	return (int)p->nord;
}
