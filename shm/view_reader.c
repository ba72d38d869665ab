/*
 * shm/view_reader.c - the public reader API (include/cqrs_view.h) over the
 * view format of view_format.h. The hot paths (get, find, scan, applied_seq)
 * make no syscalls, take no locks and allocate nothing, except a snapshot
 * query's buffer growing, and the cold slow paths for a stuck writer and a
 * generation move.
 *
 * Nothing read from the segment is trusted beyond its validated header:
 * row numbers from buckets, heads and links are range-checked before use,
 * probe loops are bounded by the index size and chain walks by capacity
 * (stamps strictly decrease), so a corrupt or hostile segment gives
 * CQRS_ECORRUPT, never an out-of-bounds read or an endless loop.
 *
 * Longer than most files (about 1000 lines): the hot paths, their
 * resumable forms for iterators (scan_from, find_from) and the cold paths
 * they branch to (stalls, generation moves, waiting) share the handle's
 * private layout, which stays in this one file.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/clock.h"
#include "shm/control.h"
#include "cqrs_view.h"
#include "core/errors.h"
#include "core/futex.h"
#include "core/schema_internal.h"
#include "shm/view_format.h"
#include "shm/view_internal.h"

#define SPIN_ROW 4096u                /* seqlock retries before the slow path */
#define SPIN_IMAGE 16u                /* ... for an image (no owner to ask) */
#define STALL_CHECK_NS 1000000u       /* owner liveness checks at most this often */
#define STALL_GIVEUP_NS 2000000000u   /* a live writer holding a row this long: -EAGAIN */
#define EPOCH_TRIES 64                /* index switches a get rides out */
#define CHAIN_RESTARTS 256            /* slot reuses a find rides out */
#define MOVE_EVERY_NS 1000000u        /* generation move attempts at most this often */
#define MOVE_TRIES 3                  /* ... in a row, off an orphaned generation */
#define OPEN_TRIES 5                  /* opens that find the generation just replaced */
#define WAIT_SLICE_NS 100000000u      /* ... sleeps at most this long between checks */
#define RETRY 2                       /* walk: a snapshot saw a change */

/* One mapped generation; replaced as a whole when the handle moves. Hot
 * fields first. */
struct vmap {
	const uint8_t *rows;
	const _Atomic uint64_t *index[2];
	const _Atomic uint32_t *heads[CQRS_VIEW_MAX_SECONDARY];
	const cqrs_seg_live *live;
	const cqrs_vapplied *ap;
	const cqrs_vseq *vs;
	const cqrs_vstats *st;
	uint64_t pmask, smask, capacity;
	uint32_t slot_size, data_off, row_size, nsec;
	cqrs_vfield key;
	cqrs_vfield sec[CQRS_VIEW_MAX_SECONDARY];
	uint64_t generation;
	cqrs_vparams p;
	cqrs_seg seg;
	cqrs_schema schema;
};

struct cqrs_view {
	struct vmap m;
	unsigned spin;
	int image;
	cqrs_ctl *ctl;
	uint32_t slot;
	uint8_t *rowbuf;
	size_t rowbuf_cap;
	uint8_t *snap;
	size_t snap_cap;
	uint64_t next_move_ns;
	uint64_t chain_restarts; /* statistic: slot reuses met by plain finds */
	void (*head_hook)(void *); /* tests: runs after each chain head load */
	void *head_hook_arg;
	char engine[CQRS_NAME_MAX], name[CQRS_NAME_MAX];
};

/* ---- mapping ------------------------------------------------------------------ */

static void map_wire(struct vmap *m)
{
	const uint8_t *b = m->seg.base;
	const cqrs_vparams *p = &m->p;

	m->rows = b + p->rows_off;
	m->index[0] = (const _Atomic uint64_t *)(const void *)(b + p->index_off[0]);
	m->index[1] = (const _Atomic uint64_t *)(const void *)(b + p->index_off[1]);
	for (uint32_t i = 0; i < CQRS_VIEW_MAX_SECONDARY; i++)
		m->heads[i] = i < p->nsec ? (const _Atomic uint32_t *)(const void *)(b + p->heads_off[i])
					  : NULL;
	m->live = (const cqrs_seg_live *)(const void *)(b + CQRS_SEG_LIVE_OFF);
	m->ap = (const cqrs_vapplied *)(const void *)(b + CQRS_VAPPLIED_OFF);
	m->vs = (const cqrs_vseq *)(const void *)(b + CQRS_VSEQ_OFF);
	m->st = (const cqrs_vstats *)(const void *)(b + CQRS_VSTATS_OFF);
	m->pmask = (UINT64_C(1) << p->pri_log2) - 1;
	m->smask = p->nsec ? (UINT64_C(1) << p->sec_log2) - 1 : 0;
	m->capacity = p->capacity;
	m->slot_size = p->slot_size;
	m->data_off = p->data_off;
	m->row_size = p->row_size;
	m->nsec = p->nsec;
	m->key = p->key;
	memcpy(m->sec, p->sec, sizeof m->sec);
	m->generation = cqrs__seg_header(&m->seg)->generation;
}

static int map_open(struct vmap *m, const char *engine, const char *view, uint64_t gen, uid_t uid)
{
	char name[CQRS_SEG_NAME_MAX];
	const cqrs_seg_hdr *h;
	int rc = cqrs__seg_name_view(name, sizeof name, engine, view, gen);

	memset(m, 0, sizeof *m);
	if (!rc)
		rc = cqrs__seg_open(&m->seg, name, CQRS_SEG_VIEW, 0);
	if (rc)
		return rc;
	rc = cqrs__view_check(m->seg.base, m->seg.size, &m->p, &m->schema, m->seg.imm);
	h = cqrs__seg_header(&m->seg);
	if (!rc && (strncmp(h->engine, engine, CQRS_NAME_MAX) || strncmp(h->object, view, CQRS_NAME_MAX) ||
		    h->generation != gen))
		rc = cqrs__fail(CQRS_ECORRUPT, "%s: header names another view", name);
	if (!rc && m->seg.uid != uid)
		rc = cqrs__fail(-EACCES, "%s belongs to uid %u, the engine to uid %u", name,
			       (unsigned)m->seg.uid, (unsigned)uid);
	if (rc) {
		cqrs__seg_close(&m->seg);
		return rc;
	}
	map_wire(m);
	return 0;
}

static int bufs_fit(cqrs_view *v, uint32_t row_size)
{
	size_t need = cqrs__align_up(row_size, 8);

	if (v->rowbuf_cap >= need)
		return 0;
	uint8_t *p = realloc(v->rowbuf, need);
	if (!p)
		return -ENOMEM;
	v->rowbuf = p;
	v->rowbuf_cap = need;
	return 0;
}

/* ---- stalls -------------------------------------------------------------------- */

struct stall {
	uint64_t t0, next_check;
	unsigned fails;
};

static int owner_alive(const cqrs_view *v)
{
	if (v->image)
		return 0;
	/* relaxed: a hint; a stale owner only delays the verdict by one check */
	return cqrs__seg_owner_alive(atomic_load_explicit(&v->m.live->owner, memory_order_relaxed));
}

static __attribute__((noinline, cold)) int stall_slow(cqrs_view *v, struct stall *s)
{
	uint64_t now = cqrs__mono_ns();

	if (!s->t0) {
		s->t0 = now;
		s->next_check = now;
	}
	if (now >= s->next_check) {
		if (!owner_alive(v))
			return CQRS_EWRITERDEAD;
		s->next_check = now + STALL_CHECK_NS;
	}
	if (now - s->t0 > STALL_GIVEUP_NS)
		return -EAGAIN;
	sched_yield();
	return 0;
}

/* A seqlock was odd or moved: spin, then yield and ask whether the owner
 * lives. 0: try again. */
static inline int stall(cqrs_view *v, struct stall *s)
{
	if (++s->fails < v->spin) {
		cqrs__cpu_relax();
		return 0;
	}
	return stall_slow(v, s);
}

/* ---- rows ---------------------------------------------------------------------- */

/* Copies row r's data into dst under its seqlock (the loop of
 * view_format.h), with its flags and, for sec >= 0, that index's stamp and
 * next. */
static inline int row_read(cqrs_view *v, uint64_t r, void *dst, int sec, uint32_t *flags,
			   uint64_t *stamp, uint32_t *next)
{
	cqrs_vrow *rw = cqrs__vrow_at((uint8_t *)v->m.rows, v->m.slot_size, r);
	struct stall s = { 0, 0, 0 };
	int rc;

	for (;;) {
		/* acquire: pairs with the writer's release store of the even version */
		uint32_t s1 = atomic_load_explicit(&rw->seq, memory_order_acquire);

		if (!(s1 & 1)) {
			*flags = atomic_load_explicit(&rw->flags, memory_order_relaxed); /* seqlock */
			if (sec >= 0) {
				*stamp = atomic_load_explicit(&rw->link[sec].stamp,
							      memory_order_relaxed); /* seqlock */
				*next = atomic_load_explicit(&rw->link[sec].next,
							     memory_order_relaxed); /* fence below */
			}
			cqrs__words_load(dst, (const uint8_t *)rw + v->m.data_off, v->m.row_size);
			/* acquire: orders the copy's loads before the re-check (and the
			 * next row's loads after next); pairs with the writer's release
			 * fence after its odd store */
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&rw->seq, memory_order_relaxed) == s1) /* after the fence */
				return 0;
		}
		rc = stall(v, &s);
		if (rc)
			return rc;
	}
}

/* ---- generations ------------------------------------------------------------- */

int cqrs_view_refresh(cqrs_view *v)
{
	struct vmap nm;
	cqrs_ctl *c;
	cqrs_ctl_view e;
	uint32_t slot;
	int rc;

	if (!v)
		return -EINVAL;
	if (v->image)
		return 0;
	rc = cqrs__ctl_open(v->engine, &c);
	if (rc)
		return rc;
	rc = cqrs__ctl_find_view(c, v->name, &e, &slot);
	/* A retired mapping is left even for the same number: the engine's
	 * segments were removed and a new engine started again from 1. */
	if (!rc && e.generation != 0 &&
	    (e.generation != v->m.generation ||
	     /* relaxed: a hint; remapping the same segment is harmless */
	     (atomic_load_explicit(&v->m.live->flags, memory_order_relaxed) & CQRS_SEG_RETIRED))) {
		rc = map_open(&nm, v->engine, v->name, e.generation, c->seg.uid);
		if (!rc && (rc = bufs_fit(v, nm.row_size)) != 0)
			cqrs__seg_close(&nm.seg);
		if (!rc) {
			cqrs__seg_close(&v->m.seg);
			v->m = nm;
		}
	}
	if (rc) {
		cqrs__ctl_close(c);
		return rc;
	}
	/* The control segment may be a new engine's (restart): follow it. */
	cqrs__ctl_close(v->ctl);
	v->ctl = c;
	v->slot = slot;
	return 0;
}

/* Seen RETIRED: move to the directory's generation, trying at most every
 * MOVE_EVERY_NS (MOVE_TRIES times in a row for an orphaned one). A copy
 * retired by its live writer (a rebuild swap) stays readable when the move
 * fails: it is the last state that writer published. An orphaned one (its
 * writer died, a restarted engine replaced it) is not: it may show events
 * the journal no longer holds, so the handle reads it never again and
 * answers CQRS_ESTALE until it can move. 0: read what is mapped now. */
static __attribute__((noinline, cold)) int maybe_move(cqrs_view *v)
{
	uint64_t now;
	uint32_t flags;

	if (v->image)
		return 0;
	now = cqrs__mono_ns();
	if (now >= v->next_move_ns) {
		/* acquire: pairs with the retirer's release of the flag; the
		 * directory it updated before is visible to the move */
		int orphaned = !!(atomic_load_explicit(&v->m.live->flags, memory_order_acquire) &
				  CQRS_SEG_ORPHANED);

		v->next_move_ns = now + MOVE_EVERY_NS;
		for (int t = 0; t < (orphaned ? MOVE_TRIES : 1); t++) {
			(void)cqrs_view_refresh(v);
			/* relaxed: the refresh above re-read the directory */
			if (!(atomic_load_explicit(&v->m.live->flags, memory_order_relaxed) & CQRS_SEG_RETIRED))
				return 0;
		}
	}
	/* relaxed: only this bit decides, and it never clears */
	flags = atomic_load_explicit(&v->m.live->flags, memory_order_relaxed);
	if (flags & CQRS_SEG_ORPHANED)
		return cqrs__fail(CQRS_ESTALE, "view %s: generation %llu was left by a dead engine and "
					       "no current one can be opened", v->name,
				  (unsigned long long)v->m.generation);
	return 0;
}

/* Whether the directory moved on without retiring our segment (an engine
 * that died between publishing a new generation and retiring the old one,
 * or a control segment replaced by a restarted engine). No syscalls. */
static int dir_moved(cqrs_view *v)
{
	cqrs_ctl_view e;

	if (v->image || !v->ctl)
		return 0;
	/* relaxed: a hint, cqrs_view_refresh reads the directory properly */
	if (atomic_load_explicit(&cqrs__seg_live_line(&v->ctl->seg)->flags, memory_order_relaxed) &
	    CQRS_SEG_RETIRED)
		return 1;
	return cqrs__ctl_view_at(v->ctl, v->slot, &e) == 0 && e.generation != 0 &&
	       e.generation != v->m.generation;
}

/* The one load every call makes: 0, or CQRS_ESTALE (see maybe_move). */
static inline int check_retired(cqrs_view *v)
{
	/* relaxed: a hint; the move itself reads the flags with acquire */
	if (__builtin_expect(atomic_load_explicit(&v->m.live->flags, memory_order_relaxed) &
				     CQRS_SEG_RETIRED, 0))
		return maybe_move(v);
	return 0;
}

/* ---- open/close ----------------------------------------------------------------- */

static int view_alloc(cqrs_view **out)
{
	cqrs_view *v = calloc(1, sizeof *v);

	*out = v;
	if (!v)
		return -ENOMEM;
	v->spin = SPIN_ROW;
	return 0;
}

int cqrs_view_open(const char *engine, const char *view, cqrs_view **out)
{
	cqrs_ctl_view e;
	cqrs_view *v;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!engine || !cqrs__name_valid(engine, CQRS_NAME_MAX) || !view ||
	    !cqrs__name_valid(view, CQRS_NAME_MAX))
		return cqrs__fail(-EINVAL, "bad engine or view name");
	rc = view_alloc(&v);
	if (rc)
		return rc;
	strcpy(v->engine, engine);
	strcpy(v->name, view);
	/* A generation replaced meanwhile (gone: -ENOENT, or still there but
	 * retired), or a directory a restarted engine replaced: read the
	 * directory again, so that an open never lands on a retired one. */
	for (int tries = 0;; tries++) {
		rc = cqrs__ctl_open(engine, &v->ctl);
		if (rc)
			break;
		rc = cqrs__ctl_find_view(v->ctl, view, &e, &v->slot);
		if (rc == CQRS_ENOTFOUND || (!rc && e.generation == 0)) {
			rc = cqrs__fail(CQRS_ENOTFOUND, "engine %s has no published view %s", engine, view);
			break;
		}
		if (!rc)
			rc = map_open(&v->m, engine, view, e.generation, v->ctl->seg.uid);
		/* acquire: pairs with the retirer's release of the flag */
		if (!rc && (atomic_load_explicit(&v->m.live->flags, memory_order_acquire) & CQRS_SEG_RETIRED)) {
			cqrs__seg_close(&v->m.seg);
			rc = cqrs__fail(CQRS_ESTALE, "view %s/%s: generation %llu is retired", engine, view,
				       (unsigned long long)e.generation);
		}
		if ((rc != -ENOENT && rc != CQRS_ESTALE) || tries + 1 == OPEN_TRIES)
			break;
		cqrs__ctl_close(v->ctl);
		v->ctl = NULL;
		sched_yield();
	}
	if (!rc)
		rc = bufs_fit(v, v->m.row_size);
	if (rc) {
		cqrs_view_close(v);
		return rc;
	}
	*out = v;
	return 0;
}

int cqrs__view_attach_image(const void *img, size_t len, cqrs_view **out)
{
	cqrs_view *v;
	int rc = view_alloc(&v);

	if (rc)
		return rc;
	v->image = 1;
	v->spin = SPIN_IMAGE;
	rc = cqrs__view_check(img, len, &v->m.p, &v->m.schema, v->m.seg.imm);
	if (!rc) {
		v->m.seg.base = (uint8_t *)img;
		v->m.seg.size = len;
		map_wire(&v->m);
		rc = bufs_fit(v, v->m.row_size);
	}
	if (rc) {
		cqrs_view_close(v);
		return rc;
	}
	*out = v;
	return 0;
}

uint64_t cqrs__view_chain_restarts(const cqrs_view *v)
{
	return v->chain_restarts;
}

void cqrs__view_set_head_hook(cqrs_view *v, void (*fn)(void *arg), void *arg)
{
	v->head_hook = fn;
	v->head_hook_arg = arg;
}

void cqrs_view_close(cqrs_view *v)
{
	if (!v)
		return;
	if (!v->image)
		cqrs__seg_close(&v->m.seg);
	cqrs__ctl_close(v->ctl);
	free(v->rowbuf);
	free(v->snap);
	free(v);
}

/* ---- point reads -------------------------------------------------------------- */

int cqrs_view_get(cqrs_view *v, const void *key, size_t keylen, void *row_out, size_t row_size)
{
	uint8_t kb[CQRS_VIEW_KEY_MAX];
	const uint8_t *k;
	uint64_t h;
	uint32_t tag;

	int rc;

	if (__builtin_expect(!v || !row_out, 0))
		return -EINVAL;
	rc = check_retired(v);
	if (__builtin_expect(rc != 0, 0))
		return rc;
	if (__builtin_expect(row_size < v->m.row_size, 0))
		return -ENOSPC;
	k = cqrs__vkey_arg(&v->m.key, key, keylen, kb);
	if (__builtin_expect(!k, 0))
		return -EINVAL;
	h = XXH3_64bits(k, v->m.key.size);
	tag = (uint32_t)(h >> 32);
	for (int attempt = 0; attempt < EPOCH_TRIES; attempt++) {
		/* acquire: pairs with the writer's release store of a rebuilt
		 * epoch, so the copy it selects is complete */
		uint32_t ep = atomic_load_explicit(&v->m.live->epoch, memory_order_acquire);
		const _Atomic uint64_t *idx = v->m.index[ep & 1];
		uint64_t i = h & v->m.pmask;

		for (uint64_t n = 0; n <= v->m.pmask; n++, i = (i + 1) & v->m.pmask) {
			/* acquire: pairs with the writer's release store of the
			 * bucket (the row is complete before it is named) and with
			 * its release fence before clearing a copy */
			uint64_t e = atomic_load_explicit(&idx[i], memory_order_acquire);
			uint32_t flags, dummy32;
			uint64_t r, dummy64;

			if (e == VB_EMPTY)
				break;
			if ((uint32_t)(e >> 32) != tag || e == VB_TOMB)
				continue;
			r = (uint32_t)e - 2;
			if (r >= v->m.capacity)
				return CQRS_ECORRUPT;
			rc = row_read(v, r, row_out, -1, &flags, &dummy64, &dummy32);
			if (rc)
				return rc;
			if ((flags & VROW_LIVE) &&
			    memcmp((const uint8_t *)row_out + v->m.key.offset, k, v->m.key.size) == 0)
				return 0;
		}
		/* A miss counts only if no rebuild switched copies meanwhile. The
		 * acquire bucket loads above keep this load after them. */
		if (atomic_load_explicit(&v->m.live->epoch, memory_order_acquire) == ep)
			return CQRS_ENOTFOUND;
	}
	return -EAGAIN;
}

/* applied_seq of the generation the handle reads, after following a
 * retirement; *rc CQRS_ESTALE (and 0 returned) when it cannot. */
static inline uint64_t applied_now(cqrs_view *v, int *rc)
{
	*rc = check_retired(v);
	if (__builtin_expect(*rc != 0, 0))
		return 0;
	/* acquire: pairs with cqrs__vw_end's store; the batch's rows are visible after */
	return atomic_load_explicit(&v->m.ap->applied_seq, memory_order_acquire);
}

uint64_t cqrs_view_applied_seq(cqrs_view *v)
{
	int rc;

	return applied_now(v, &rc);
}

/* ---- multi-row reads ------------------------------------------------------------ */

/* Appends the row in rowbuf to the snapshot buffer. */
static int snap_add(cqrs_view *v, size_t n)
{
	size_t rs = v->m.row_size, need = (n + 1) * rs;

	if (need > v->snap_cap) {
		size_t cap = v->snap_cap ? v->snap_cap * 2 : 64 * rs;
		uint8_t *p;
		while (cap < need)
			cap *= 2;
		p = realloc(v->snap, cap);
		if (!p)
			return -ENOMEM;
		v->snap = p;
		v->snap_cap = cap;
	}
	memcpy(v->snap + n * rs, v->rowbuf, rs);
	return 0;
}

/* Delivers (fn) or collects (fn == NULL) a matching row; 1 when fn stops. */
static int emit(cqrs_view *v, cqrs_view_row_fn fn, void *arg, size_t *n)
{
	if (!fn) {
		int rc = snap_add(v, *n);
		if (rc)
			return rc;
		++*n;
		return 0;
	}
	++*n;
	return fn(arg, v->rowbuf, v->m.row_size) ? 1 : 0;
}

/* Whether the copy in rowbuf belongs to index si's chain of bucket b: its
 * field is the key, or another value that hashes to the same head. */
static int in_bucket(const cqrs_view *v, uint32_t si, uint64_t b, const uint8_t *k)
{
	const cqrs_vfield *f = &v->m.sec[si];
	const uint8_t *d = v->rowbuf + f->offset;

	return memcmp(d, k, f->size) == 0 || (XXH3_64bits(d, f->size) & v->m.smask) == b;
}

/* Walks index si's chain from bucket b (view_format.h: stamped chains).
 * 0 done, 1 stopped by fn, RETRY (snapshot mode only), or an error. */
static int walk(cqrs_view *v, uint32_t si, uint64_t b, const uint8_t *k, int snapshot,
		cqrs_view_row_fn fn, void *arg, size_t *n)
{
	const cqrs_vfield *f = &v->m.sec[si];
	uint64_t bound = UINT64_MAX; /* deliver only stamps below: the rest was seen */
	int restarts = 0;

restart:;
	uint64_t prev = UINT64_MAX, steps = 0;
	/* acquire: pairs with the writer's release store of the head */
	uint32_t cur = atomic_load_explicit(&v->m.heads[si][b], memory_order_acquire);

	if (__builtin_expect(v->head_hook != NULL, 0))
		v->head_hook(v->head_hook_arg);
	while (cur) {
		uint64_t r = (uint64_t)cur - 1, stamp = 0;
		uint32_t flags = 0, next = 0;
		int rc;

		if (r >= v->m.capacity || ++steps > v->m.capacity)
			return CQRS_ECORRUPT;
		rc = row_read(v, r, v->rowbuf, (int)si, &flags, &stamp, &next);
		if (rc)
			return rc;
		/* The slot was reused under us: a stamp that does not decrease, or
		 * for the row the head named (no stamp to compare with) a field of
		 * another chain (view_format.h: the head check). */
		if (stamp >= prev || (prev == UINT64_MAX && !in_bucket(v, si, b, k))) {
			if (snapshot)
				return RETRY;
			if (++restarts > CHAIN_RESTARTS)
				return -EAGAIN;
			v->chain_restarts++;
			if (prev < bound)
				bound = prev;
			goto restart;
		}
		prev = stamp;
		if (stamp < bound && (flags & VROW_LIVE) &&
		    memcmp(v->rowbuf + f->offset, k, f->size) == 0) {
			rc = emit(v, fn, arg, n);
			if (rc)
				return rc;
		}
		cur = next;
	}
	return 0;
}

/* Walks every slot below the high-water mark. */
static int sweep(cqrs_view *v, cqrs_view_row_fn fn, void *arg, size_t *n)
{
	/* acquire: pairs with the writer's release store of hwm */
	uint64_t hwm = atomic_load_explicit(&v->m.st->hwm, memory_order_acquire);

	if (hwm > v->m.capacity)
		hwm = v->m.capacity;
	for (uint64_t r = 0; r < hwm; r++) {
		uint32_t flags, dummy32;
		uint64_t dummy64;
		int rc = row_read(v, r, v->rowbuf, -1, &flags, &dummy64, &dummy32);

		if (rc)
			return rc;
		if (flags & VROW_LIVE) {
			rc = emit(v, fn, arg, n);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Runs a query (walk when k, else sweep) inside a view-sequence read
 * section until the sequence stayed even and unchanged, then delivers. */
static int snapshot(cqrs_view *v, uint32_t si, uint64_t b, const uint8_t *k,
		    cqrs_view_row_fn fn, void *arg)
{
	struct stall s = { 0, 0, 0 };
	size_t n;
	int rc;

	for (;;) {
		/* acquire: pairs with cqrs__vw_end's release store of the even
		 * view sequence: the batch's rows are visible */
		uint64_t s1 = atomic_load_explicit(&v->m.vs->view_seq, memory_order_acquire);

		if (!(s1 & 1)) {
			n = 0;
			rc = k ? walk(v, si, b, k, 1, NULL, NULL, &n) : sweep(v, NULL, NULL, &n);
			if (rc < 0)
				return rc;
			/* acquire: orders the query's loads before the re-check; pairs
			 * with the writer's release fence after its odd store */
			atomic_thread_fence(memory_order_acquire);
			if (rc == 0 &&
			    /* relaxed: after the fence above */
			    atomic_load_explicit(&v->m.vs->view_seq, memory_order_relaxed) == s1)
				break;
		}
		rc = stall(v, &s);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < n; i++)
		if (fn(arg, v->snap + i * v->m.row_size, v->m.row_size))
			return (int)(i + 1);
	return (int)n;
}

static int sec_index(const cqrs_view *v, const char *field)
{
	for (uint32_t i = 0; i < v->m.nsec; i++)
		if (strncmp(v->m.schema.fields[v->m.sec[i].field].name, field, CQRS_NAME_MAX) == 0)
			return (int)i;
	return -1;
}

int cqrs_view_find(cqrs_view *v, const char *field, const void *key, size_t keylen,
		   cqrs_view_row_fn fn, void *arg, unsigned flags)
{
	uint8_t kb[CQRS_VIEW_KEY_MAX];
	const uint8_t *k;
	uint64_t b;
	size_t n = 0;
	int si, rc;

	if (!v || !field || !fn)
		return -EINVAL;
	rc = check_retired(v);
	if (rc)
		return rc;
	si = sec_index(v, field);
	if (si < 0)
		return CQRS_ENOTFOUND;
	k = cqrs__vkey_arg(&v->m.sec[si], key, keylen, kb);
	if (!k)
		return -EINVAL;
	b = XXH3_64bits(k, v->m.sec[si].size) & v->m.smask;
	if (flags & CQRS_FIND_SNAPSHOT)
		return snapshot(v, (uint32_t)si, b, k, fn, arg);
	rc = walk(v, (uint32_t)si, b, k, 0, fn, arg, &n);
	return rc < 0 ? rc : (int)n;
}

int cqrs_view_scan(cqrs_view *v, cqrs_view_row_fn fn, void *arg, unsigned flags)
{
	size_t n = 0;
	int rc;

	if (!v || !fn)
		return -EINVAL;
	rc = check_retired(v);
	if (rc)
		return rc;
	if (flags & CQRS_FIND_SNAPSHOT)
		return snapshot(v, 0, 0, NULL, fn, arg);
	rc = sweep(v, fn, arg, &n);
	return rc < 0 ? rc : (int)n;
}

/* walk() in pieces for cqrs_view_find_from: the same chain walk and reuse
 * checks (a slot reused between two calls shows a stamp that does not
 * decrease, as one reused during a call does), the position kept in *c.
 * 0 done, 1 stopped by fn, or an error. */
static int walk_from(cqrs_view *v, uint32_t si, uint64_t b, const uint8_t *k,
		     cqrs_view_cursor *c, cqrs_view_row_fn fn, void *arg, size_t *n)
{
	const cqrs_vfield *f = &v->m.sec[si];

	if (c->state == 0) {
restart:
		c->prev = UINT64_MAX;
		c->steps = 0;
		/* acquire: pairs with the writer's release store of the head */
		c->cur = atomic_load_explicit(&v->m.heads[si][b], memory_order_acquire);
		c->state = 1;
	}
	while (c->cur) {
		uint64_t r = (uint64_t)c->cur - 1, stamp = 0;
		uint32_t flags = 0, next = 0;
		int rc;

		if (r >= v->m.capacity || ++c->steps > v->m.capacity)
			return CQRS_ECORRUPT;
		rc = row_read(v, r, v->rowbuf, (int)si, &flags, &stamp, &next);
		if (rc)
			return rc;
		if (stamp >= c->prev || (c->prev == UINT64_MAX && !in_bucket(v, si, b, k))) {
			if (++c->restarts > CHAIN_RESTARTS)
				return -EAGAIN;
			v->chain_restarts++;
			if (c->prev < c->bound)
				c->bound = c->prev;
			goto restart;
		}
		c->prev = stamp;
		c->cur = next;
		if (stamp < c->bound && (flags & VROW_LIVE) &&
		    memcmp(v->rowbuf + f->offset, k, f->size) == 0) {
			rc = emit(v, fn, arg, n);
			if (rc)
				return rc;
		}
	}
	c->state = 2;
	return 0;
}

void cqrs_view_cursor_init(cqrs_view_cursor *c)
{
	memset(c, 0, sizeof *c);
	c->bound = UINT64_MAX;
}

int cqrs_view_find_from(cqrs_view *v, const char *field, const void *key, size_t keylen,
			cqrs_view_cursor *c, cqrs_view_row_fn fn, void *arg)
{
	uint8_t kb[CQRS_VIEW_KEY_MAX];
	const uint8_t *k;
	uint64_t b;
	size_t n = 0;
	int si, rc;

	if (!v || !field || !c || !fn)
		return -EINVAL;
	rc = check_retired(v);
	if (rc)
		return rc;
	if (c->state == 0)
		c->generation = v->m.generation;
	else if (c->generation != v->m.generation)
		return -EAGAIN; /* moved: the chain positions were the old segment's */
	if (c->state == 2)
		return 0;
	si = sec_index(v, field);
	if (si < 0)
		return CQRS_ENOTFOUND;
	k = cqrs__vkey_arg(&v->m.sec[si], key, keylen, kb);
	if (!k)
		return -EINVAL;
	b = XXH3_64bits(k, v->m.sec[si].size) & v->m.smask;
	rc = walk_from(v, (uint32_t)si, b, k, c, fn, arg, &n);
	return rc < 0 ? rc : (int)n;
}

int cqrs_view_scan_from(cqrs_view *v, uint64_t *cursor, cqrs_view_row_fn fn, void *arg)
{
	uint64_t hwm, r;
	int n = 0, rc;

	if (!v || !cursor || !fn)
		return -EINVAL;
	rc = check_retired(v);
	if (rc)
		return rc;
	/* acquire: pairs with the writer's release store of hwm */
	hwm = atomic_load_explicit(&v->m.st->hwm, memory_order_acquire);
	if (hwm > v->m.capacity)
		hwm = v->m.capacity;
	for (r = *cursor; r < hwm; r++) {
		uint32_t flags, dummy32;
		uint64_t dummy64;

		rc = row_read(v, r, v->rowbuf, -1, &flags, &dummy64, &dummy32);
		if (rc) {
			*cursor = r;
			return rc;
		}
		if ((flags & VROW_LIVE) && (n++, fn(arg, v->rowbuf, v->m.row_size))) {
			r++;
			break;
		}
	}
	*cursor = r;
	return n;
}

/* ---- hooks for the ordered index (shm/ordered_reader.c) ------------------------- */

int cqrs__view_ord_enter(cqrs_view *v, const uint8_t **base, const struct cqrs_vparams **p,
			 int *image)
{
	int rc = check_retired(v);

	if (rc)
		return rc;
	*image = v->image;
	*base = v->m.seg.base;
	*p = &v->m.p;
	return 0;
}

int cqrs__view_row_copy(cqrs_view *v, uint64_t r, void *dst, uint32_t *flags)
{
	return row_read(v, r, dst, -1, flags, NULL, NULL);
}

uint8_t *cqrs__view_snap_buf(cqrs_view *v, size_t bytes)
{
	if (bytes > v->snap_cap) {
		size_t cap = v->snap_cap ? v->snap_cap : 4096;
		uint8_t *p;

		while (cap < bytes)
			cap *= 2;
		p = realloc(v->snap, cap);
		if (!p)
			return NULL;
		v->snap = p;
		v->snap_cap = cap;
	}
	return v->snap;
}

uint8_t *cqrs__view_row_buf(cqrs_view *v)
{
	return v->rowbuf;
}

/* ---- waiting -------------------------------------------------------------------- */

int cqrs_view_wait(cqrs_view *v, uint64_t seq, uint64_t timeout_ns)
{
	uint64_t t0, deadline, next_owner_check;
	cqrs_backoff b;
	int rc;

	if (!v)
		return -EINVAL;
	/* Only the generation the handle has moved to counts: an orphaned one's
	 * applied_seq may name events a restarted engine has reused. */
	if (applied_now(v, &rc) >= seq && !rc)
		return 0;
	if (rc)
		return rc;
	t0 = cqrs__mono_ns();
	deadline = timeout_ns == UINT64_MAX || timeout_ns > UINT64_MAX - t0 ? UINT64_MAX
									    : t0 + timeout_ns;
	/* Spin and yield first (core/backoff.h), then sleep on the view's
	 * wake word. */
	b = cqrs__backoff_make(CQRS_BACKOFF_SPINS, CQRS_BACKOFF_YIELDS, deadline);
	while (cqrs__backoff_step(&b))
		if (applied_now(v, &rc) >= seq && !rc)
			return 0;
		else if (rc)
			return rc;
	/* The owner and directory checks read /proc (syscalls, tens of
	 * microseconds): only after a first futex slice has passed, so a wait
	 * that the next batch ends costs no syscall but the futex itself. */
	next_owner_check = t0 + WAIT_SLICE_NS;
	for (;;) {
		_Atomic uint32_t *word = (_Atomic uint32_t *)&v->m.ap->wake;
		/* acquire: pairs with cqrs__vw_end's seq_cst increment; read before
		 * the condition so a later increment makes futex_wait return */
		uint32_t w = atomic_load_explicit(word, memory_order_acquire);
		uint64_t now, slice;

		if (applied_now(v, &rc) >= seq && !rc)
			return 0;
		if (rc)
			return rc;
		now = cqrs__mono_ns();
		/* A timeout looks at the owner once more: callers that wait in
		 * slices shorter than WAIT_SLICE_NS (the bindings, to see
		 * signals) would otherwise never learn that it died. */
		if (now >= deadline)
			return owner_alive(v) ? -ETIMEDOUT : CQRS_EWRITERDEAD;
		if (now >= next_owner_check) {
			next_owner_check = now + WAIT_SLICE_NS;
			/* A move that cannot be followed (the engine stopped and
			 * its control segment is gone) leaves this segment's
			 * owner to decide, as when nothing moved. */
			if (dir_moved(v) && cqrs_view_refresh(v) == 0)
				continue; /* re-read the word of the segment we read now */
			if (!owner_alive(v))
				return CQRS_EWRITERDEAD;
		}
		slice = deadline - now;
		if (slice > WAIT_SLICE_NS)
			slice = WAIT_SLICE_NS;
		/* seq_cst: the waiter half of core/futex.h's protocol; pairs with
		 * cqrs__vw_end's seq_cst stores of applied_seq and wake (the writer
		 * wakes the word after every batch: nothing to announce) */
		if (atomic_load_explicit(&v->m.ap->applied_seq, memory_order_seq_cst) < seq)
			(void)cqrs__futex_wait(word, w, slice);
	}
}

/* ---- introspection ---------------------------------------------------------------- */

const cqrs_schema *cqrs_view_schema(cqrs_view *v)
{
	if (!v)
		return NULL;
	(void)check_retired(v); /* a handle that cannot move keeps its schema */
	return &v->m.schema;
}

uint64_t cqrs_view_rows(cqrs_view *v)
{
	if (check_retired(v))
		return 0;
	/* relaxed: a statistic */
	return atomic_load_explicit(&v->m.st->rows, memory_order_relaxed);
}

uint64_t cqrs_view_capacity(cqrs_view *v)
{
	(void)check_retired(v);
	return v->m.capacity;
}

uint64_t cqrs_view_generation(cqrs_view *v)
{
	(void)check_retired(v);
	return v->m.generation;
}

int cqrs_view_stat(cqrs_view *v, cqrs_view_info *out)
{
	const cqrs_seg_hdr *h;
	uint32_t flags;

	if (!v || !out)
		return -EINVAL;
	(void)check_retired(v); /* describes what the handle maps, moved or not */
	h = cqrs__seg_header(&v->m.seg);
	memset(out, 0, sizeof *out);
	memcpy(out->engine, h->engine, sizeof out->engine);
	memcpy(out->name, h->object, sizeof out->name);
	strcpy(out->segment, v->m.seg.name);
	out->generation = v->m.generation;
	out->capacity = v->m.capacity;
	out->rows = atomic_load_explicit(&v->m.st->rows, memory_order_relaxed); /* statistic */
	out->bytes = v->m.seg.size;
	/* acquire: pairs with cqrs__vw_end's store (informational here) */
	out->applied_seq = atomic_load_explicit(&v->m.ap->applied_seq, memory_order_acquire);
	out->schema_hash = v->m.p.schema_hash;
	out->row_size = v->m.row_size;
	flags = atomic_load_explicit(&v->m.live->flags, memory_order_relaxed); /* informational */
	out->clean = !!(flags & CQRS_SEG_CLEAN);
	out->retired = !!(flags & CQRS_SEG_RETIRED);
	out->writer_alive = owner_alive(v);
	strcpy(out->key_field, v->m.schema.fields[v->m.key.field].name);
	out->nsecondary = v->m.nsec;
	for (uint32_t i = 0; i < v->m.nsec; i++)
		strcpy(out->secondary[i], v->m.schema.fields[v->m.sec[i].field].name);
	return 0;
}

int cqrs_view_list(const char *engine, cqrs_view_entry *out, size_t cap)
{
	cqrs_ctl *c;
	uint32_t n;
	int rc = cqrs__ctl_open(engine, &c);

	if (rc)
		return rc;
	n = cqrs__ctl_view_count(c);
	for (uint32_t i = 0; i < n && i < cap; i++) {
		cqrs_ctl_view e;
		memset(&out[i], 0, sizeof out[i]);
		if (cqrs__ctl_view_at(c, i, &e) == 0) {
			memcpy(out[i].name, e.name, sizeof out[i].name);
			out[i].generation = e.generation;
			out[i].schema_hash = e.schema_hash;
			out[i].capacity = e.capacity;
			out[i].row_size = e.row_size;
		}
	}
	cqrs__ctl_close(c);
	return (int)n;
}
