/*
 * shm/ordered_writer.c - the single writer of a view's ordered index: the
 * B+tree of shm/ordered_format.h, whose change protocol (every node store
 * under the node's version; a new node complete before anything names it)
 * every function below follows. Called by the view writer inside a batch,
 * after the row itself is complete (an inserted row) or marked deleted.
 *
 * The writer edits a private image of a node (o->img) and stores the
 * changed words back under the node's version, so readers never see a
 * half-moved entry array. It reads its own nodes with plain loads (no
 * other process stores to them).
 *
 * Hot-path cost: one descent (a binary search per level, ~3 levels for a
 * million rows) per insert, remove or key move, plus copying the node's
 * entries from the changed one on; an update that keeps the key finds its
 * entry through the owner array (a scan of one leaf) and rewrites the row
 * bytes when the leaves carry rows. No allocation: nodes come from the
 * pool's high-water mark or its free list.
 */
#include <stddef.h>
#include <string.h>

#include "core/errors.h"
#include "shm/ordered_writer.h"
#include "shm/wordcopy.h"

/* Relaxed loads and stores of words only this thread stores. */
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define SET(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

#define OFF_COUNT 8u
#define OFF_LEVEL 12u
#define OFF_NEXT 16u
#define OFF_PREV 20u
#define OFF_FREE 24u

static uint8_t *nd(const cqrs_ow *o, uint32_t n)
{
	return o->nodes + (uint64_t)n * o->g.node_size;
}

static cqrs_onode *hd(const cqrs_ow *o, uint32_t n)
{
	return (cqrs_onode *)(void *)nd(o, n);
}

static cqrs_ometa *meta(const cqrs_ow *o)
{
	return (cqrs_ometa *)(void *)o->nodes;
}

static uint32_t rd32(const uint8_t *p, uint32_t off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return v;
}

static void wr32(uint8_t *p, uint32_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t esz(const cqrs_ow *o, uint32_t kind)
{
	return kind == CQRS_ORD_LEAF ? o->g.lesz : o->g.iesz;
}

static uint32_t emax(const cqrs_ow *o, uint32_t kind)
{
	return kind == CQRS_ORD_LEAF ? o->g.lmax : o->g.imax;
}

/* Entry i of a node (or image) p with entry size e. */
static uint8_t *ent(const cqrs_ow *o, const uint8_t *p, uint32_t e, uint32_t i)
{
	return (uint8_t *)p + o->g.ents + (size_t)i * e;
}

static uint8_t *low_of(const uint8_t *p)
{
	return (uint8_t *)p + CQRS_ORD_HDR;
}

static uint8_t *high_of(const cqrs_ow *o, const uint8_t *p)
{
	return (uint8_t *)p + CQRS_ORD_HDR + o->g.psz;
}

static uint32_t child_of(const cqrs_ow *o, const uint8_t *e)
{
	return (uint32_t)rd64(e + o->g.psz);
}

static uint64_t row_of(const cqrs_ow *o, const uint8_t *e)
{
	return rd64(e + o->g.kw);
}

static int cmp(const cqrs_ow *o, const uint8_t *a, const uint8_t *b)
{
	return cqrs__ord_pos_cmp(a, b, o->g.kw);
}

/* Starts a change of node n: its version odd. Returns the even version. */
static uint32_t begin(cqrs_ow *o, uint32_t n)
{
	cqrs_onode *h = hd(o, n);
	uint32_t s = GET(h->ver) & ~1u;

	SET(h->ver, s + 1);
	/* release: orders the odd version before the node's stores; pairs
	 * with the reader's acquire fence before its re-check */
	atomic_thread_fence(memory_order_release);
	return s;
}

static void end(cqrs_ow *o, uint32_t n, uint32_t s)
{
	/* release: the node's stores before its even version; pairs with the
	 * reader's acquire load of the version */
	atomic_store_explicit(&hd(o, n)->ver, s + 2, memory_order_release);
}

/* Node n's position i and payload i (shared memory). */
static uint8_t *spos(const cqrs_ow *o, uint32_t n, uint32_t i)
{
	return nd(o, n) + o->g.ents + (size_t)i * o->g.psz;
}

static uint8_t *spay(const cqrs_ow *o, uint32_t n, uint32_t kind, uint32_t i)
{
	return kind == CQRS_ORD_LEAF ? nd(o, n) + o->g.lpay + (size_t)i * o->g.cover
				     : nd(o, n) + o->g.ipay + (size_t)i * 8;
}

/* Stores image img (entries side by side) as node n (kind; header,
 * fences and entries [from, to), split into the node's position and
 * payload arrays) under n's version. */
static void publish(cqrs_ow *o, uint32_t n, const uint8_t *img, uint32_t kind, uint32_t from,
		    uint32_t to)
{
	uint32_t s = begin(o, n), E = esz(o, kind), pay = E - o->g.psz;

	SET(hd(o, n)->kind, kind);
	cqrs__words_store(nd(o, n) + 8, img + 8, o->g.ents - 8);
	for (uint32_t i = from; i < to; i++) {
		const uint8_t *e = ent(o, img, E, i);

		cqrs__words_store(spos(o, n, i), e, o->g.psz);
		if (pay)
			cqrs__words_store(spay(o, n, kind, i), e + o->g.psz, pay);
	}
	end(o, n, s);
}

/* Sets one header word (u32 at off) of node n under its version. */
static void hdr_set(cqrs_ow *o, uint32_t n, uint32_t off, uint32_t v)
{
	uint8_t w[8];
	uint32_t s = begin(o, n), at = off & ~7u;

	memcpy(w, nd(o, n) + at, 8);
	wr32(w, off - at, v);
	cqrs__words_store(nd(o, n) + at, w, 8);
	end(o, n, s);
}

/* A copy of node n's header, fences and entries (side by side) into img. */
static uint32_t load(const cqrs_ow *o, uint32_t n, uint8_t *img)
{
	const uint8_t *p = nd(o, n);
	uint32_t kind = GET(hd(o, n)->kind), cnt = rd32(p, OFF_COUNT), E = esz(o, kind);
	uint32_t pay = E - o->g.psz;

	memcpy(img, p, o->g.ents);
	for (uint32_t i = 0; i < cnt && i < emax(o, kind); i++) {
		memcpy(ent(o, img, E, i), spos(o, n, i), o->g.psz);
		if (pay)
			memcpy(ent(o, img, E, i) + o->g.psz, spay(o, n, kind, i), pay);
	}
	return cnt;
}

static uint32_t alloc(cqrs_ow *o)
{
	cqrs_ometa *m = meta(o);
	uint32_t f = GET(m->free_head), h;

	if (f && f < o->nnodes) {
		SET(m->free_head, rd32(nd(o, f - 1), OFF_FREE));
		return f - 1;
	}
	h = GET(m->hwm);
	if (h >= o->nnodes)
		return 0;
	SET(m->hwm, h + 1);
	return h;
}

/* Marks node n FREE (readers that still reach it restart) and pools it. */
static void release(cqrs_ow *o, uint32_t n)
{
	uint32_t s = begin(o, n);
	uint8_t w[8];

	SET(hd(o, n)->kind, CQRS_ORD_FREE);
	memset(w, 0, 8);
	wr32(w, 0, GET(meta(o)->free_head));
	cqrs__words_store(nd(o, n) + OFF_FREE, w, 8);
	end(o, n, s);
	SET(meta(o)->free_head, n + 1);
}

void cqrs__ow_wire(cqrs_ow *o, uint8_t *base, const cqrs_vparams *p)
{
	cqrs_ometa *m;

	memset(o, 0, offsetof(cqrs_ow, img));
	if (!p->nord)
		return;
	o->nodes = base + p->ord_off;
	cqrs__ord_geom(&o->g, p->ord_klen, p->row_size);
	o->nnodes = p->ord_nodes;
	o->owner = (_Atomic uint32_t *)(void *)(o->nodes + (uint64_t)o->nnodes * o->g.node_size);
	o->capacity = p->capacity;
	o->row_size = p->row_size;
	o->nord = p->nord;
	memcpy(o->ord, p->ord, sizeof o->ord);
	m = meta(o);
	if (GET(m->kind) != 0)
		return; /* adopted: cqrs__ow_check looks at it */
	/* a zeroed region: the meta node and an empty root leaf [lowest, highest) */
	SET(m->format, CQRS_ORD_FORMAT);
	SET(m->node_size, o->g.node_size);
	SET(m->nodes, o->nnodes);
	SET(m->depth, 0);
	SET(m->hwm, 2);
	SET(m->free_head, 0);
	memset(o->img[0], 0, o->g.ents);
	memset(high_of(o, o->img[0]), 0xff, o->g.psz);
	publish(o, 1, o->img[0], CQRS_ORD_LEAF, 0, 0);
	/* release: the root leaf complete before a reader takes the root;
	 * pairs with the reader's acquire load of root */
	atomic_store_explicit(&m->root, 1, memory_order_release);
	/* release: the meta words before the kind that says they are there;
	 * pairs with the reader's acquire load of kind */
	atomic_store_explicit(&m->kind, CQRS_ORD_META, memory_order_release);
}

void cqrs__ow_key(const cqrs_ow *o, const uint8_t *row, uint8_t *key)
{
	cqrs__ord_encode_row(o->ord, o->nord, row, key);
}

/* First of node n's cnt positions at or after pos. */
static uint32_t lower_bound(const cqrs_ow *o, uint32_t n, uint32_t cnt, const uint8_t *pos)
{
	uint32_t lo = 0, hi = cnt;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (cmp(o, spos(o, n, mid), pos) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The path from the root to the leaf for pos: path[0..d], at[] the child
 * taken in each inner node and the lower bound in the leaf. d, or -1 when
 * the tree is not what the writer left. */
static int descend(const cqrs_ow *o, const uint8_t *pos, uint32_t *path, uint32_t *at)
{
	uint32_t n = GET(meta(o)->root);

	for (int d = 0; d < (int)CQRS_ORD_MAX_DEPTH; d++) {
		const uint8_t *p;
		uint32_t kind, cnt, i;

		if (n == 0 || n >= o->nnodes)
			return -1;
		p = nd(o, n);
		kind = GET(hd(o, n)->kind);
		cnt = rd32(p, OFF_COUNT);
		path[d] = n;
		if (kind == CQRS_ORD_LEAF) {
			if (cnt > o->g.lmax)
				return -1;
			at[d] = lower_bound(o, n, cnt, pos);
			return d;
		}
		if (kind != CQRS_ORD_INNER || cnt < 1 || cnt > o->g.imax)
			return -1;
		i = lower_bound(o, n, cnt, pos);
		/* the child holding pos: the last entry at or before it */
		if (i == cnt || cmp(o, spos(o, n, i), pos) > 0)
			i = i ? i - 1 : 0;
		at[d] = i;
		n = (uint32_t)rd64(spay(o, n, CQRS_ORD_INNER, i));
	}
	return -1;
}

/* Puts entry e into path[d] (a leaf at its lower bound, an inner node
 * after the child taken), splitting up the path as needed. */
static int put(cqrs_ow *o, uint32_t *path, uint32_t *at, int d, const uint8_t *e)
{
	uint32_t n = path[d], kind = GET(hd(o, n)->kind), E = esz(o, kind), max = emax(o, kind);
	uint32_t i = kind == CQRS_ORD_LEAF ? at[d] : at[d] + 1, cnt, mid, r, lvl;
	uint8_t *img = o->img[0], *rimg = o->img[1], sep[CQRS_ORD_KEY_MAX + 16];

	cnt = load(o, n, img);
	memmove(ent(o, img, E, i + 1), ent(o, img, E, i), (size_t)(cnt - i) * E);
	memcpy(ent(o, img, E, i), e, E);
	wr32(img, OFF_COUNT, ++cnt);
	if (cnt <= max) {
		publish(o, n, img, kind, i, cnt);
		if (kind == CQRS_ORD_LEAF)
			SET(o->owner[row_of(o, e)], n);
		return 0;
	}
	/* split: [0, mid) stays, [mid, cnt) goes to a new right node r */
	r = alloc(o);
	if (!r)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: node pool exhausted");
	mid = cnt / 2;
	lvl = rd32(img, OFF_LEVEL);
	memset(rimg, 0, o->g.ents);
	wr32(rimg, OFF_COUNT, cnt - mid);
	wr32(rimg, OFF_LEVEL, lvl);
	memcpy(ent(o, rimg, E, 0), ent(o, img, E, mid), (size_t)(cnt - mid) * E);
	memcpy(low_of(rimg), ent(o, img, E, mid), o->g.psz);
	memcpy(high_of(o, rimg), high_of(o, img), o->g.psz);
	if (kind == CQRS_ORD_LEAF) {
		wr32(rimg, OFF_NEXT, rd32(img, OFF_NEXT));
		wr32(rimg, OFF_PREV, n + 1);
	}
	publish(o, r, rimg, kind, 0, cnt - mid);
	wr32(img, OFF_COUNT, mid);
	memcpy(high_of(o, img), low_of(rimg), o->g.psz);
	if (kind == CQRS_ORD_LEAF)
		wr32(img, OFF_NEXT, r + 1);
	publish(o, n, img, kind, i < mid ? i : mid, mid);
	if (kind == CQRS_ORD_LEAF) {
		uint32_t nx = rd32(rimg, OFF_NEXT);

		if (nx && nx <= o->nnodes)
			hdr_set(o, nx - 1, OFF_PREV, r + 1);
		for (uint32_t k = 0; k < cnt - mid; k++)
			SET(o->owner[row_of(o, ent(o, rimg, E, k))], r);
		if (i < mid)
			SET(o->owner[row_of(o, e)], n);
	}
	memcpy(sep, low_of(rimg), o->g.psz);
	memset(sep + o->g.psz, 0, 8);
	wr32(sep, o->g.psz, r);
	if (d > 0)
		return put(o, path, at, d - 1, sep);
	/* the root split: a new root over n and r */
	{
		uint32_t nr = alloc(o);

		if (!nr)
			return cqrs__fail(CQRS_ECORRUPT, "ordered index: node pool exhausted");
		memset(img, 0, o->g.ents + 2 * o->g.iesz);
		wr32(img, OFF_COUNT, 2);
		wr32(img, OFF_LEVEL, lvl + 1);
		memset(high_of(o, img), 0xff, o->g.psz);
		wr32(ent(o, img, o->g.iesz, 0), o->g.psz, n);
		memcpy(ent(o, img, o->g.iesz, 1), sep, o->g.iesz);
		publish(o, nr, img, CQRS_ORD_INNER, 0, 2);
		/* release: the complete root before readers descend from it;
		 * pairs with the reader's acquire load of root */
		atomic_store_explicit(&meta(o)->root, nr, memory_order_release);
		SET(meta(o)->depth, GET(meta(o)->depth) + 1);
	}
	return 0;
}

int cqrs__ow_insert(cqrs_ow *o, uint64_t r, const uint8_t *row)
{
	uint8_t e[CQRS_ORD_KEY_MAX + 8 + CQRS_ORD_COVER_MAX];
	uint32_t path[CQRS_ORD_MAX_DEPTH], at[CQRS_ORD_MAX_DEPTH];
	int d;

	if (r >= o->capacity)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: row %llu", (unsigned long long)r);
	memset(e, 0, o->g.lesz);
	cqrs__ow_key(o, row, e);
	memcpy(e + o->g.kw, &r, 8);
	if (o->g.cover)
		memcpy(e + o->g.psz, row, o->row_size);
	d = descend(o, e, path, at);
	if (d < 0)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: tree damaged");
	return put(o, path, at, d, e);
}

/* Node n's entry i for row r: 0, or CQRS_ECORRUPT. */
static int find_row(const cqrs_ow *o, uint64_t r, uint32_t *leaf, uint32_t *i)
{
	uint32_t n = r < o->capacity ? GET(o->owner[r]) : 0, cnt;
	const uint8_t *p;

	if (n == 0 || n >= o->nnodes || GET(hd(o, n)->kind) != CQRS_ORD_LEAF)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: row %llu has no leaf", (unsigned long long)r);
	p = nd(o, n);
	cnt = rd32(p, OFF_COUNT);
	for (uint32_t k = 0; k < cnt && k < o->g.lmax; k++)
		if (row_of(o, spos(o, n, k)) == r) {
			*leaf = n;
			*i = k;
			return 0;
		}
	return cqrs__fail(CQRS_ECORRUPT, "ordered index: row %llu not in its leaf", (unsigned long long)r);
}

/* Takes entry at[d] (a leaf's entry, or an inner node's child) out of
 * path[d], merging or redistributing up the path on underflow. */
static int del(cqrs_ow *o, uint32_t *path, uint32_t *at, int d)
{
	uint32_t n = path[d], kind = GET(hd(o, n)->kind), E = esz(o, kind), max = emax(o, kind);
	uint32_t i = at[d], cnt, p, j, pc, left, right, lc, rc, rj;
	uint8_t *img = o->img[0], *oimg = o->img[1], *limg, *rimg;

	cnt = load(o, n, img);
	if (i >= cnt)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: entry %u of %u", i, cnt);
	memmove(ent(o, img, E, i), ent(o, img, E, i + 1), (size_t)(cnt - i - 1) * E);
	wr32(img, OFF_COUNT, --cnt);
	if (d == 0 && kind == CQRS_ORD_INNER && cnt == 1) {
		/* the root keeps one child: that child is the root */
		uint32_t c = child_of(o, ent(o, img, E, 0));

		/* release: pairs with the reader's acquire load of root (the
		 * child is complete: it has been in the tree) */
		atomic_store_explicit(&meta(o)->root, c, memory_order_release);
		SET(meta(o)->depth, GET(meta(o)->depth) - 1);
		release(o, n);
		return 0;
	}
	if (d == 0 || cnt >= max / 2) {
		publish(o, n, img, kind, i, cnt);
		return 0;
	}
	/* underflow: merge with or take from a sibling under the same parent */
	p = path[d - 1];
	j = at[d - 1];
	pc = rd32(nd(o, p), OFF_COUNT);
	if (pc < 2 || j >= pc)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: parent %u of node %u", p, n);
	if (j + 1 < pc) {
		left = n;
		right = (uint32_t)rd64(spay(o, p, CQRS_ORD_INNER, j + 1));
		rj = j + 1;
	} else {
		left = (uint32_t)rd64(spay(o, p, CQRS_ORD_INNER, j - 1));
		right = n;
		rj = j;
	}
	if (left == 0 || right == 0 || left >= o->nnodes || right >= o->nnodes ||
	    GET(hd(o, left)->kind) != kind || GET(hd(o, right)->kind) != kind)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: siblings of node %u", n);
	if (left == n) {
		limg = img;
		rimg = oimg;
		rc = load(o, right, rimg);
		lc = cnt;
	} else {
		limg = oimg;
		rimg = img;
		lc = load(o, left, limg);
		rc = cnt;
	}
	if (lc > max || rc > max)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: node counts");
	if (lc + rc <= max) {
		/* merge right into left */
		int err;

		memcpy(ent(o, limg, E, lc), ent(o, rimg, E, 0), (size_t)rc * E);
		wr32(limg, OFF_COUNT, lc + rc);
		memcpy(high_of(o, limg), high_of(o, rimg), o->g.psz);
		if (kind == CQRS_ORD_LEAF)
			wr32(limg, OFF_NEXT, rd32(rimg, OFF_NEXT));
		publish(o, left, limg, kind, 0, lc + rc);
		if (kind == CQRS_ORD_LEAF) {
			uint32_t nx = rd32(rimg, OFF_NEXT);

			if (nx && nx <= o->nnodes)
				hdr_set(o, nx - 1, OFF_PREV, left + 1);
			for (uint32_t k = 0; k < rc; k++)
				SET(o->owner[row_of(o, ent(o, rimg, E, k))], left);
		}
		at[d - 1] = rj;
		err = del(o, path, at, d - 1);
		release(o, right);
		return err;
	}
	/* redistribute: half each, the node that gains published first */
	{
		uint8_t *t = o->tmp;
		uint32_t tot = lc + rc, k = tot / 2, s;

		memcpy(t, ent(o, limg, E, 0), (size_t)lc * E);
		memcpy(t + (size_t)lc * E, ent(o, rimg, E, 0), (size_t)rc * E);
		memcpy(ent(o, limg, E, 0), t, (size_t)k * E);
		memcpy(ent(o, rimg, E, 0), t + (size_t)k * E, (size_t)(tot - k) * E);
		wr32(limg, OFF_COUNT, k);
		wr32(rimg, OFF_COUNT, tot - k);
		memcpy(high_of(o, limg), ent(o, rimg, E, 0), o->g.psz);
		memcpy(low_of(rimg), ent(o, rimg, E, 0), o->g.psz);
		if (k > lc) {
			publish(o, left, limg, kind, 0, k);
			publish(o, right, rimg, kind, 0, tot - k);
		} else {
			publish(o, right, rimg, kind, 0, tot - k);
			publish(o, left, limg, kind, 0, k);
		}
		if (kind == CQRS_ORD_LEAF) {
			for (uint32_t q = 0; q < k; q++)
				SET(o->owner[row_of(o, ent(o, limg, E, q))], left);
			for (uint32_t q = 0; q < tot - k; q++)
				SET(o->owner[row_of(o, ent(o, rimg, E, q))], right);
		}
		/* the parent's separator for right */
		s = begin(o, p);
		cqrs__words_store(spos(o, p, rj), low_of(rimg), o->g.psz);
		end(o, p, s);
	}
	return 0;
}

int cqrs__ow_remove(cqrs_ow *o, uint64_t r)
{
	uint32_t path[CQRS_ORD_MAX_DEPTH], at[CQRS_ORD_MAX_DEPTH], leaf, i;
	uint8_t pos[CQRS_ORD_KEY_MAX + 8];
	int d, rc = find_row(o, r, &leaf, &i);

	if (rc)
		return rc;
	memcpy(pos, spos(o, leaf, i), o->g.psz);
	d = descend(o, pos, path, at);
	if (d < 0 || path[d] != leaf || at[d] != i)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: row %llu not where its key says",
				  (unsigned long long)r);
	SET(o->owner[r], 0);
	return del(o, path, at, d);
}

int cqrs__ow_update(cqrs_ow *o, uint64_t r, const uint8_t *row)
{
	uint32_t leaf, i, s;
	int rc;

	if (!o->g.cover)
		return 0;
	rc = find_row(o, r, &leaf, &i);
	if (rc)
		return rc;
	s = begin(o, leaf);
	cqrs__words_store(spay(o, leaf, CQRS_ORD_LEAF, i), row, o->row_size);
	end(o, leaf, s);
	return 0;
}

int cqrs__ow_moved(const cqrs_ow *o, uint64_t r, const uint8_t *row)
{
	uint8_t k[CQRS_ORD_KEY_MAX];
	uint32_t leaf, i;
	int rc = find_row(o, r, &leaf, &i);

	if (rc)
		return rc;
	memset(k, 0, sizeof k);
	cqrs__ow_key(o, row, k);
	return memcmp(k, spos(o, leaf, i), o->g.kw) != 0;
}

typedef struct ochk {
	uint64_t entries, visits;
	uint32_t last_leaf; /* + 1 */
	uint32_t depth;
} ochk;

static int check_node(const cqrs_ow *o, ochk *c, uint32_t n, uint32_t d, const uint8_t *low,
		      const uint8_t *high, int root)
{
	const uint8_t *p;
	uint32_t kind, cnt, lvl;

	if (n == 0 || n >= o->nnodes || d >= CQRS_ORD_MAX_DEPTH || ++c->visits > o->nnodes)
		return CQRS_ECORRUPT;
	p = nd(o, n);
	kind = GET(hd(o, n)->kind);
	cnt = rd32(p, OFF_COUNT);
	lvl = rd32(p, OFF_LEVEL);
	if ((kind != CQRS_ORD_LEAF && kind != CQRS_ORD_INNER) || (GET(hd(o, n)->ver) & 1))
		return CQRS_ECORRUPT;
	if (cnt > emax(o, kind) || (!root && cnt < emax(o, kind) / 2) ||
	    (kind == CQRS_ORD_INNER && cnt < 2) || lvl != c->depth - d)
		return CQRS_ECORRUPT;
	if (memcmp(low_of(p), low, o->g.psz) || memcmp(high_of(o, p), high, o->g.psz))
		return CQRS_ECORRUPT;
	for (uint32_t i = 0; i < cnt; i++) {
		const uint8_t *e = spos(o, n, i);

		if (cmp(o, e, low) < 0 || cmp(o, e, high) >= 0 || (i && cmp(o, spos(o, n, i - 1), e) >= 0))
			return CQRS_ECORRUPT;
	}
	if (kind == CQRS_ORD_LEAF) {
		if (lvl != 0 || rd32(p, OFF_PREV) != c->last_leaf)
			return CQRS_ECORRUPT;
		if (c->last_leaf && rd32(nd(o, c->last_leaf - 1), OFF_NEXT) != n + 1)
			return CQRS_ECORRUPT;
		for (uint32_t i = 0; i < cnt; i++) {
			uint64_t r = row_of(o, spos(o, n, i));

			if (r >= o->capacity || GET(o->owner[r]) != n)
				return CQRS_ECORRUPT;
		}
		c->last_leaf = n + 1;
		c->entries += cnt;
		return 0;
	}
	if (cmp(o, spos(o, n, 0), low) != 0)
		return CQRS_ECORRUPT;
	for (uint32_t i = 0; i < cnt; i++) {
		const uint8_t *e = spos(o, n, i);
		uint64_t child = rd64(spay(o, n, kind, i));
		int rc = child >= o->nnodes ? CQRS_ECORRUPT
			 : check_node(o, c, (uint32_t)child, d + 1, i ? e : low,
				      i + 1 < cnt ? spos(o, n, i + 1) : high, 0);

		if (rc)
			return rc;
	}
	return 0;
}

int cqrs__ow_check(const cqrs_ow *o, uint64_t *count)
{
	uint8_t low[CQRS_ORD_KEY_MAX + 8], high[CQRS_ORD_KEY_MAX + 8];
	const cqrs_ometa *m;
	ochk c = { 0, 0, 0, 0 };
	int rc;

	*count = 0;
	if (!o->nodes)
		return 0;
	m = meta(o);
	if (GET(m->kind) != CQRS_ORD_META || GET(m->format) != CQRS_ORD_FORMAT ||
	    GET(m->node_size) != o->g.node_size || GET(m->nodes) != o->nnodes ||
	    GET(m->hwm) > o->nnodes || GET(m->depth) >= CQRS_ORD_MAX_DEPTH)
		return CQRS_ECORRUPT;
	c.depth = GET(m->depth);
	memset(low, 0, o->g.psz);
	memset(high, 0xff, o->g.psz);
	rc = check_node(o, &c, GET(m->root), 0, low, high, 1);
	if (rc)
		return rc;
	if (c.last_leaf == 0 || rd32(nd(o, c.last_leaf - 1), OFF_NEXT) != 0)
		return CQRS_ECORRUPT;
	*count = c.entries;
	return 0;
}
