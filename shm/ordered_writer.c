/*
 * shm/ordered_writer.c - the single writer of a view's ordered index: the
 * skip list of shm/ordered_format.h, whose insert and remove orders every
 * store below follows. Called by the view writer inside a batch, after the
 * row itself is complete (an inserted row) or marked deleted.
 *
 * Hot-path cost: one search (O(log n) expected node visits, each a memcmp
 * of the encoded key) per insert, remove or key move; no allocation.
 */
#include <string.h>

#include "core/errors.h"
#include "shm/ordered_writer.h"
#include "shm/wordcopy.h"

/* Relaxed loads and stores of words only this thread stores. */
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define SET(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

static cqrs_onode *node(const cqrs_ow *o, uint64_t n)
{
	return (cqrs_onode *)(void *)(o->nodes + n * o->g.node_size);
}

static _Atomic uint64_t *next_at(const cqrs_ow *o, uint64_t n, uint32_t l)
{
	return (_Atomic uint64_t *)(void *)(o->nodes + n * o->g.node_size + o->g.next_off + 8 * l);
}

static _Atomic uint64_t *prev_at(const cqrs_ow *o, uint64_t n)
{
	return (_Atomic uint64_t *)(void *)(o->nodes + n * o->g.node_size + o->g.prev_off);
}

static const uint8_t *key_at(const cqrs_ow *o, uint64_t n)
{
	return o->nodes + n * o->g.node_size + 8;
}

static uint64_t link_of(const cqrs_ow *o, uint64_t n)
{
	return cqrs__ord_link(GET(node(o, n)->seq), n);
}

void cqrs__ow_wire(cqrs_ow *o, uint8_t *base, const cqrs_vparams *p)
{
	memset(o, 0, sizeof *o);
	if (!p->nord)
		return;
	o->nodes = base + p->ord_off;
	cqrs__ord_geom(&o->g, p->ord_klen, p->ord_levels);
	o->capacity = p->capacity;
	o->nord = p->nord;
	memcpy(o->ord, p->ord, sizeof o->ord);
	o->rng = UINT64_C(0x9e3779b97f4a7c15) ^ p->capacity;
	/* the head has every level; a fresh (zeroed) segment has it empty */
	SET(node(o, o->capacity)->height, o->g.levels);
}

void cqrs__ow_key(const cqrs_ow *o, const uint8_t *row, uint8_t *key)
{
	cqrs__ord_encode_row(o->ord, o->nord, row, key);
}

int cqrs__ow_moved(const cqrs_ow *o, uint64_t r, const uint8_t *row)
{
	uint8_t k[CQRS_ORD_KEY_MAX];

	cqrs__ow_key(o, row, k);
	return memcmp(k, key_at(o, r), o->g.klen) != 0;
}

/* (ka, ra) < (kb, rb) */
static int before(const cqrs_ow *o, const uint8_t *ka, uint64_t ra, const uint8_t *kb, uint64_t rb)
{
	int c = memcmp(ka, kb, o->g.klen);

	return c < 0 || (c == 0 && ra < rb);
}

/* Fills pred[l] with the last node before (k, r) on every level. -1 on a
 * link out of range or a walk past its budget (an adopted segment). */
static int search(const cqrs_ow *o, const uint8_t *k, uint64_t r, uint64_t *pred)
{
	uint64_t x = o->capacity, budget = (o->capacity + 1) * o->g.levels + o->g.levels;

	for (uint32_t l = o->g.levels; l-- > 0;) {
		for (;;) {
			uint64_t nx = GET(*next_at(o, x, l));
			uint64_t n = (nx & 0xffffffffu) - 1;

			if (!nx)
				break;
			if (n >= o->capacity || budget-- == 0)
				return -1;
			if (!before(o, key_at(o, n), n, k, r))
				break;
			x = n;
		}
		pred[l] = x;
	}
	return 0;
}

static uint32_t draw_height(cqrs_ow *o)
{
	uint64_t x = o->rng;
	uint32_t h = 1;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	o->rng = x;
	while (h < o->g.levels && (x & 3) == 0) {
		h++;
		x >>= 2;
	}
	return h;
}

int cqrs__ow_insert(cqrs_ow *o, uint64_t r, const uint8_t *row)
{
	uint8_t k[CQRS_ORD_KEY_MAX] = { 0 };
	uint64_t pred[CQRS_ORD_MAX_LEVELS], succ;
	cqrs_onode *nd = node(o, r);
	uint32_t h, s;

	cqrs__ow_key(o, row, k);
	if (search(o, k, r, pred))
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: link out of range");
	h = draw_height(o);
	s = GET(nd->seq);
	SET(nd->seq, s + 1); /* odd: links naming the old version fail */
	/* release: orders the odd version before the node's stores; pairs with
	 * the reader's acquire fence before its re-check */
	atomic_thread_fence(memory_order_release);
	SET(nd->height, h);
	cqrs__words_store((uint8_t *)nd + 8, k, o->g.kwords * 8);
	for (uint32_t l = 0; l < h; l++)
		SET(*next_at(o, r, l), GET(*next_at(o, pred[l], l)));
	SET(*prev_at(o, r), link_of(o, pred[0]));
	/* release: the complete node before its even version; pairs with the
	 * reader's acquire load of the version */
	atomic_store_explicit(&nd->seq, s + 2, memory_order_release);
	succ = GET(*next_at(o, r, 0));
	if (succ)
		/* release: the complete node before a reader going backwards
		 * reaches it; pairs with the reader's acquire load of prev */
		atomic_store_explicit(prev_at(o, (succ & 0xffffffffu) - 1), link_of(o, r),
				      memory_order_release);
	for (uint32_t l = 0; l < h; l++)
		/* release: as above, for readers going forwards on level l */
		atomic_store_explicit(next_at(o, pred[l], l), link_of(o, r), memory_order_release);
	return 0;
}

int cqrs__ow_remove(cqrs_ow *o, uint64_t r)
{
	uint64_t pred[CQRS_ORD_MAX_LEVELS], me = link_of(o, r), succ;
	uint32_t h = GET(node(o, r)->height);

	if (h < 1 || h > o->g.levels || search(o, key_at(o, r), r, pred))
		return cqrs__fail(CQRS_ECORRUPT, "ordered index: bad node %llu", (unsigned long long)r);
	for (uint32_t l = 0; l < h; l++)
		if (GET(*next_at(o, pred[l], l)) != me)
			return cqrs__fail(CQRS_ECORRUPT, "ordered index: node %llu not linked on level %u",
					 (unsigned long long)r, l);
	for (uint32_t l = h; l-- > 0;)
		/* release: readers that take the new link see that node as of
		 * now; pairs with the reader's acquire load of next */
		atomic_store_explicit(next_at(o, pred[l], l), GET(*next_at(o, r, l)),
				      memory_order_release);
	succ = GET(*next_at(o, r, 0));
	if (succ)
		/* release: as above, for prev */
		atomic_store_explicit(prev_at(o, (succ & 0xffffffffu) - 1), GET(*prev_at(o, r)),
				      memory_order_release);
	return 0;
}

int cqrs__ow_check(const cqrs_ow *o, uint64_t *count)
{
	uint64_t n = 0;

	*count = 0;
	if (!o->nodes)
		return 0;
	for (uint32_t l = 0; l < o->g.levels; l++) {
		uint64_t x = o->capacity, c = 0, prev_link = link_of(o, o->capacity);

		for (;;) {
			uint64_t nx = GET(*next_at(o, x, l)), m = (nx & 0xffffffffu) - 1;

			if (!nx)
				break;
			if (m >= o->capacity || c++ > o->capacity || (uint32_t)(nx >> 32) != GET(node(o, m)->seq) ||
			    GET(node(o, m)->height) <= l)
				return CQRS_ECORRUPT;
			if (x != o->capacity && !before(o, key_at(o, x), x, key_at(o, m), m))
				return CQRS_ECORRUPT;
			if (l == 0 && GET(*prev_at(o, m)) != prev_link)
				return CQRS_ECORRUPT;
			prev_link = nx;
			x = m;
		}
		if (l == 0)
			n = c;
	}
	*count = n;
	return 0;
}
