/*
 * shm/ordered_reader.c - the public ordered-index reads of include/
 * cqrs_view.h (range, count, first, last, seek) over the skip list of
 * shm/ordered_format.h, whose reader protocol this file follows: every
 * node is read through a versioned link and validated before and after
 * the copy; a version that moved restarts the walk from the head just past
 * the last row delivered.
 *
 * Nothing read from the segment is trusted: links are range-checked
 * before use, heights against the level count, positions must strictly
 * increase along a walk (decrease backwards), and each walk has a step
 * budget, so a corrupt or hostile segment gives CQRS_ECORRUPT.
 *
 * Hot path: no syscalls, locks or allocation (a snapshot's buffer aside);
 * a restart under churn spins, then yields after RESTART_YIELD of them.
 */
#include <sched.h>
#include <string.h>

#include "core/errors.h"
#include "cqrs_view.h"
#include "shm/ordered_format.h"
#include "shm/view_format.h"
#include "shm/view_internal.h"

#define RESTART 1               /* internal: a node changed under the walk */
#define RESTART_YIELD 64u       /* restarts before each one yields */
#define RESTART_MAX 100000u     /* restarts in one call before -EAGAIN */
#define RESTART_MAX_IMAGE 16u   /* ... in an image, which nobody writes */
#define SNAP_TRIES 100000u      /* snapshot attempts before -EAGAIN */

typedef struct owalk {
	cqrs_view *v;
	const uint8_t *nodes, *rows;
	const cqrs_vparams *p;
	cqrs_ord_geom g;
	uint64_t cap;              /* node cap is the head */
	uint64_t budget;           /* steps left in this attempt */
	unsigned restart_max;
	/* the query */
	uint8_t lo[CQRS_ORD_KEY_MAX], hi[CQRS_ORD_KEY_MAX];
	int has_lo, has_hi, hi_incl, desc, count_only, snapshot;
	uint64_t limit;
	cqrs_view_row_fn fn;
	void *arg;
	/* progress: the last position delivered (or counted) */
	int started;
	uint8_t last_key[CQRS_ORD_KEY_MAX];
	uint64_t last_row;
	uint64_t n;                /* rows delivered or counted */
	int stopped;               /* fn asked to stop */
} owalk;

static const cqrs_onode *node_at(const owalk *w, uint64_t n)
{
	return (const cqrs_onode *)(const void *)(w->nodes + n * w->g.node_size);
}

static const _Atomic uint64_t *word_at(const owalk *w, uint64_t n, uint32_t off)
{
	return (const _Atomic uint64_t *)(const void *)(w->nodes + n * w->g.node_size + off);
}

/* (ka, ra) < (kb, rb) */
static int before(const owalk *w, const uint8_t *ka, uint64_t ra, const uint8_t *kb, uint64_t rb)
{
	int c = memcmp(ka, kb, w->g.klen);

	return c < 0 || (c == 0 && ra < rb);
}

/* A link's node: 0 and *n, or CQRS_ECORRUPT (out of range). */
static int link_node(const owalk *w, uint64_t link, uint64_t *n)
{
	uint64_t m = (link & 0xffffffffu) - 1;

	if ((link & 0xffffffffu) == 0 || m > w->cap)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: link to node %llu of %llu",
				  (unsigned long long)m, (unsigned long long)w->cap);
	*n = m;
	return 0;
}

/* Copies the key and height of the node a link names, validated against
 * the link's version. 0, RESTART, CQRS_ECORRUPT. */
static int read_key(owalk *w, uint64_t link, uint64_t *n, uint8_t *key, uint32_t *height)
{
	const cqrs_onode *nd;
	uint32_t s = (uint32_t)(link >> 32), h;
	int rc = link_node(w, link, n);

	if (rc)
		return rc;
	if (*n == w->cap || w->budget-- == 0)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: walk past its budget or into the head");
	nd = node_at(w, *n);
	/* acquire: pairs with the writer's release store of the even version */
	if (atomic_load_explicit(&nd->seq, memory_order_acquire) != s)
		return RESTART;
	h = atomic_load_explicit(&nd->height, memory_order_relaxed); /* checked below */
	cqrs__words_load(key, (const uint8_t *)nd + 8, w->g.klen);
	/* acquire: orders the copy before the re-check; pairs with the
	 * writer's release fence after its odd store */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&nd->seq, memory_order_relaxed) != s) /* after the fence */
		return RESTART;
	if (h < 1 || h > w->g.levels)
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: node %llu height %u",
				  (unsigned long long)*n, h);
	*height = h;
	return 0;
}

/* Loads the link at off in node n, validated against version s. */
static int read_link(owalk *w, uint64_t n, uint32_t s, uint32_t off, uint64_t *out)
{
	const cqrs_onode *nd = node_at(w, n);

	/* acquire: pairs with the writer's release store of the even version */
	if (atomic_load_explicit(&nd->seq, memory_order_acquire) != s)
		return RESTART;
	/* acquire: pairs with the writer's release store of the link: the node
	 * it names is complete */
	*out = atomic_load_explicit(word_at(w, n, off), memory_order_acquire);
	/* acquire: orders the link's load before the re-check */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&nd->seq, memory_order_relaxed) == s ? 0 : RESTART; /* after the fence */
}

/* The last node before (tk, trow): *x_link (the head's link when none),
 * its key and height. */
static int search(owalk *w, const uint8_t *tk, uint64_t trow, uint64_t *x_link, uint8_t *xkey)
{
	uint64_t x = w->cap, link;
	/* relaxed: the head is never reinitialised; its version only names it */
	uint32_t xs = atomic_load_explicit(&node_at(w, w->cap)->seq, memory_order_relaxed), xh = w->g.levels;
	int rc;

	for (uint32_t l = w->g.levels; l-- > 0;) {
		for (;;) {
			uint8_t k[CQRS_ORD_KEY_MAX];
			uint64_t n;
			uint32_t h;

			if (l >= xh)
				return cqrs__fail(CQRS_ECORRUPT, "ordered index: level above a node's height");
			rc = read_link(w, x, xs, w->g.next_off + 8 * l, &link);
			if (rc || !link)
				break;
			rc = read_key(w, link, &n, k, &h);
			if (rc)
				return rc;
			if (h <= l)
				return cqrs__fail(CQRS_ECORRUPT, "ordered index: node %llu on level %u of %u",
						  (unsigned long long)n, l, h);
			if (x != w->cap && !before(w, xkey, x, k, n))
				return cqrs__fail(CQRS_ECORRUPT, "ordered index: out of order at node %llu",
						  (unsigned long long)n);
			if (!before(w, k, n, tk, trow))
				break;
			x = n;
			xs = (uint32_t)(link >> 32);
			xh = h;
			memcpy(xkey, k, w->g.klen);
		}
		if (rc)
			return rc;
	}
	*x_link = cqrs__ord_link(xs, x);
	return 0;
}

/* Starts the cache misses of the node after n in the walk's direction and
 * of its row, so they overlap with the copy of n's row. A hint only: the
 * link is loaded without validation and only range-checked (a prefetch
 * never faults, and nothing is read through it here). */
static inline void prefetch_after(const owalk *w, uint64_t n, uint32_t off)
{
	/* relaxed: a hint; the walk validates the link when it follows it */
	uint64_t l = atomic_load_explicit(word_at(w, n, off), memory_order_relaxed);
	uint64_t m = (l & 0xffffffffu) - 1;

	if (m < w->cap) {
		__builtin_prefetch(node_at(w, m));
		__builtin_prefetch(w->rows + m * w->p->slot_size);
		__builtin_prefetch(w->rows + m * w->p->slot_size + 64);
	}
}

/* Node n (key k) is a candidate: copy its row, deliver it when it is live
 * and still has this key. */
static int take(owalk *w, uint64_t n, const uint8_t *k)
{
	uint32_t rs = w->p->row_size, flags;
	uint8_t *dst, ek[CQRS_ORD_KEY_MAX];
	int rc;

	if (w->count_only) {
		w->n++;
		goto done;
	}
	dst = w->snapshot ? cqrs__view_snap_buf(w->v, (size_t)(w->n + 1) * ((rs + 7) & ~7u))
			  : cqrs__view_row_buf(w->v);
	if (!dst)
		return -ENOMEM;
	if (w->snapshot)
		dst += (size_t)w->n * ((rs + 7) & ~7u);
	rc = cqrs__view_row_copy(w->v, n, dst, &flags);
	if (rc)
		return rc;
	cqrs__ord_encode_row(w->p->ord, w->p->nord, dst, ek);
	if (!(flags & VROW_LIVE) || memcmp(ek, k, w->g.klen) != 0)
		return 0; /* moved on since: not at this place any more */
	w->n++;
	if (!w->snapshot && w->fn(w->arg, dst, rs))
		w->stopped = 1;
done:
	memcpy(w->last_key, k, w->g.klen);
	w->last_row = n;
	w->started = 1;
	return 0;
}

static int full(const owalk *w)
{
	return w->stopped || (w->limit && w->n >= w->limit);
}

/* One attempt from the head: 0 (done), RESTART, or an error. */
static int attempt(owalk *w)
{
	uint8_t tk[CQRS_ORD_KEY_MAX], k[CQRS_ORD_KEY_MAX];
	uint64_t trow, link = 0, n;
	uint32_t h;
	int rc;

	w->budget = (w->cap + 2) * (w->g.levels + 2);
	if (w->started) {
		memcpy(tk, w->last_key, w->g.klen);
		trow = w->desc ? w->last_row : w->last_row + 1;
	} else if (!w->desc) {
		memcpy(tk, w->lo, w->g.klen);
		trow = 0;
	} else if (w->has_hi) {
		memcpy(tk, w->hi, w->g.klen);
		trow = w->hi_incl ? UINT64_MAX : 0;
	} else {
		memset(tk, 0xff, w->g.klen);
		trow = UINT64_MAX;
	}
	rc = search(w, tk, trow, &link, k);
	if (rc)
		return rc;
	if (!w->desc) {
		for (;;) {
			uint8_t nk[CQRS_ORD_KEY_MAX];
			uint64_t cur = (link & 0xffffffffu) - 1, nl;

			rc = read_link(w, cur, (uint32_t)(link >> 32), w->g.next_off, &nl);
			if (rc || !nl)
				return rc;
			rc = read_key(w, nl, &n, nk, &h);
			if (rc)
				return rc;
			if (cur != w->cap && !before(w, k, cur, nk, n))
				return cqrs__fail(CQRS_ECORRUPT, "ordered index: out of order at node %llu",
						  (unsigned long long)n);
			if (w->has_hi && memcmp(nk, w->hi, w->g.klen) >= 0)
				return 0;
			if (!w->count_only && w->limit != 1)
				prefetch_after(w, n, w->g.next_off);
			rc = take(w, n, nk);
			if (rc || full(w))
				return rc;
			link = nl;
			memcpy(k, nk, w->g.klen);
		}
	}
	for (;;) {
		uint64_t cur = (link & 0xffffffffu) - 1, pl;

		if (cur == w->cap || (w->has_lo && memcmp(k, w->lo, w->g.klen) < 0))
			return 0;
		if (!w->count_only && w->limit != 1)
			prefetch_after(w, cur, w->g.prev_off);
		rc = take(w, cur, k);
		if (rc || full(w))
			return rc;
		rc = read_link(w, cur, (uint32_t)(link >> 32), w->g.prev_off, &pl);
		if (rc)
			return rc;
		rc = link_node(w, pl, &n);
		if (rc)
			return rc;
		if (n == w->cap)
			return 0;
		{
			uint8_t pk[CQRS_ORD_KEY_MAX];

			rc = read_key(w, pl, &n, pk, &h);
			if (rc)
				return rc;
			if (!before(w, pk, n, k, cur))
				return cqrs__fail(CQRS_ECORRUPT, "ordered index: out of order at node %llu",
						  (unsigned long long)n);
			memcpy(k, pk, w->g.klen);
		}
		link = pl;
	}
}

static int walk(owalk *w)
{
	for (unsigned r = 0;; r++) {
		int rc = attempt(w);

		if (rc != RESTART)
			return rc;
		if (r >= w->restart_max)
			return cqrs__fail(-EAGAIN, "ordered index: %u restarts under churn", r);
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
		 * view sequence: the batch's rows and links are visible */
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
	memset(out, 0, w->g.klen);
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

	memset(w, 0, sizeof *w);
	if (!v || (flags & ~(CQRS_RANGE_SNAPSHOT | CQRS_RANGE_DESC)))
		return -EINVAL;
	rc = cqrs__view_ord_enter(v, &base, &w->p, &image);
	if (rc)
		return rc;
	w->restart_max = image ? RESTART_MAX_IMAGE : RESTART_MAX;
	if (!w->p->nord || !index_ok(v, w->p, index))
		return CQRS_ENOTFOUND;
	w->v = v;
	w->nodes = base + w->p->ord_off;
	w->rows = base + w->p->rows_off;
	w->cap = w->p->capacity;
	cqrs__ord_geom(&w->g, w->p->ord_klen, w->p->ord_levels);
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
	int rc = w->snapshot ? snapshot_walk(w) : walk(w);

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
