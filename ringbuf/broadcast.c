/*
 * ringbuf/broadcast.c - the broadcast ring: one producer, many consumers,
 * every consumer sees every record, in order (the LMAX Disruptor's gating
 * sequences over an Aeron-style byte ring).
 *
 * Byte layout
 *   The ring is one block of caller memory, 64-byte aligned, at any address
 *   in any process: only offsets and positions are stored in it. Integers
 *   are host-endian. "Block" = 128 bytes (two cache lines, so that the
 *   adjacent-line prefetcher does not couple two hot words).
 *
 *     block 0     immutable after init: u64 magic "CQRSBCST" (stored last,
 *                 release), u32 version (1), u32 hdr_size (offset of the
 *                 data), u64 capacity (power of two), u64 total_size,
 *                 u32 max_consumers, u32 max_record (capacity/2), u32 block
 *                 (128), u32 rec_hdr (8)
 *     block 1     u64 tail: position just past the last published record
 *     block 2     u64 adv: the producer's advertised write limit (below)
 *     block 3     u32 space_seq, u32 space_waiters: the producer's futex
 *     block 4     u32 data_seq, u32 data_waiters: the consumers' futex
 *     block 5+i   consumer slot i: u64 head (its next position; everything
 *                 before is released), u32 state (0 free, 1 setup, 2 active)
 *     hdr_size    the data region, capacity bytes
 *
 *   Positions count bytes since init and never wrap in practice (u64).
 *   Position p lives at data[p & (capacity - 1)].
 *
 * Records
 *   u32 len, u32 type (cqrs_ring_rec), len payload bytes, 0-7 bytes of
 *   padding to a multiple of 8. A record never straddles the end of the
 *   data region: when it does not fit in the bytes left before the end, the
 *   producer fills them with a padding record (type 0, len = left - 8;
 *   always possible: left is a multiple of 8) and writes the record at index
 *   0, both as one claim. The largest record is capacity/2 bytes, so a
 *   record and its padding always fit. Type 0 is reserved for padding.
 *
 * Commit protocol (producer; one at a time)
 *   The producer's handle keeps claim (end of what it claimed), pub (what it
 *   published) and limit (it may write positions below limit).
 *   1. claim n bytes: [claim, claim + pad + n) must end at or below limit;
 *      else refresh limit. Writing position x overwrites position
 *      x - capacity, so limit = oldest + capacity where oldest is the
 *      smallest head among active consumers, or pub when there are none
 *      (the producer's own unpublished claims are released by nobody).
 *   2. write the header(s) and the payload in place: plain stores.
 *   3. publish: tail = claim with one atomic exchange (release orders the
 *      record bytes before it; seq_cst is for the futex protocol), then wake
 *      sleeping consumers if data_waiters != 0. Claims made since the last
 *      publish become visible together: that is the batch.
 *   Refreshing the limit loads each active slot's head (acquire; pairs with
 *   the consumer's release of its head: its reads of those bytes are over
 *   before we overwrite them). It runs about once per capacity bytes of
 *   progress when consumers keep up, and costs O(max_consumers).
 *
 * Reader loop (consumer)
 *     avail = tail (acquire; pairs with publish: the bytes before avail are
 *             visible)
 *     while head < avail:
 *         h = header at head; size = 8 + len rounded up to 8
 *         size must fit before avail and before the end of the data region
 *         (else CQRS_ECORRUPT, head stays); padding must end exactly at the
 *         end of the data region
 *         hand (type, payload, len) to the handler, or skip padding
 *         head += size
 *     slot.head = head (one atomic exchange per batch: release for the
 *     producer, seq_cst for the futex protocol); wake the producer if
 *     space_waiters != 0
 *   A consumer never sees a half-written record: it reads nothing at or past
 *   the published tail, and the producer writes nothing at or past the
 *   slowest head + capacity.
 *
 * Consumers joining and leaving while the producer runs
 *   Leaving: state = free, then wake the producer (it may wait on us).
 *   Joining at position p is the delicate part: the producer computes its
 *   limit from a scan of the slots, and a consumer that turns active just
 *   after the scan would not gate it. A Dekker handshake on seq_cst words
 *   closes the race:
 *     producer: before using a limit L, adv = max(adv, L) (seq_cst store),
 *               then scan the slots (seq_cst loads); use min(L, scan + cap).
 *     consumer: slot.head = p; slot.state = active (seq_cst); then load adv
 *               (seq_cst); keep the slot only if adv - capacity <= p <= tail.
 *   Either the scan sees the new consumer and gates on p, or the consumer's
 *   load sees every limit the producer may use without it, and
 *   p >= adv - capacity means none of those limits lets it overwrite p. adv
 *   never decreases; a scan made after the last store of adv is good for
 *   any limit up to adv, so the store is only paid when the limit grows
 *   past adv. A consumer joining at the tail passes (it retries if the tail
 *   moved under it). A join position must be a record boundary (the tail, or
 *   a position a consumer reported): a wrong one reads as CQRS_ECORRUPT,
 *   never out of bounds.
 *
 * Wait strategies: see wait.h. The producer sleeps on space_seq, woken by
 * consumers that release or leave; consumers sleep on data_seq, woken by
 * publish.
 *
 * Asserted (CQRS_ASSERT, on each handle's own copies, never on a word read
 * from the ring before it is validated): pub <= claim <= limit and
 * claim - pub <= capacity for the producer (it never writes past the
 * slowest consumer's head + capacity it computed); head <= avail and
 * avail - head <= capacity for a consumer (it never passes the tail it
 * validated); every position only grows and stays 8-byte aligned.
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/errors.h"
#include "ringbuf/broadcast.h"
#include "ringbuf/wait.h"

struct cqrs_bcast {
	struct bc_hdr *h;
	struct bc_slot *slots;
	unsigned char *data;
	uint64_t cap, mask;
	uint32_t max_consumers, max_record;
	/* producer-local state, on its own cache line */
	_Alignas(64) uint64_t claim; /* end of the last claim */
	uint64_t pub;                /* last published tail */
	uint64_t limit;              /* may write positions below this */
	uint64_t adv;                /* last value stored to h->adv */
};

struct cqrs_bcast_consumer {
	struct bc_hdr *h;
	struct bc_slot *slot;
	const unsigned char *data;
	uint64_t cap, mask;
	uint64_t head;  /* next position to read (local copy of slot->head) */
	uint64_t avail; /* cached published tail */
};

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* The largest record, header included: capacity / 2 (within u32). */
static uint32_t max_record_of(uint64_t cap)
{
	return (uint32_t)(cap / 2 > UINT32_MAX - 7 ? (UINT32_MAX & ~7u) : cap / 2);
}

size_t cqrs_bcast_footprint(uint64_t capacity, uint32_t max_consumers)
{
	if (!pow2(capacity) || capacity < CQRS_BCAST_MIN_CAPACITY || capacity > CQRS_BCAST_MAX_CAPACITY ||
	    max_consumers == 0 || max_consumers > CQRS_BCAST_MAX_CONSUMERS)
		return 0;
	if (capacity > SIZE_MAX - bc_hdr_size(max_consumers))
		return 0;
	return (size_t)(bc_hdr_size(max_consumers) + capacity);
}

/* Builds a handle from values the caller validated (never re-read from the
 * shared header). */
static int handle_new(struct bc_hdr *h, uint32_t hdr_size, uint64_t cap, uint32_t max_consumers,
		      cqrs_bcast **out)
{
	cqrs_bcast *r = aligned_alloc(64, (sizeof(*r) + 63) & ~(size_t)63);

	if (!r)
		return cqrs__fail(-ENOMEM, "out of memory");
	memset(r, 0, sizeof(*r));
	r->h = h;
	r->slots = bc_slots(h);
	r->data = (unsigned char *)h + hdr_size;
	r->cap = cap;
	r->mask = cap - 1;
	r->max_consumers = max_consumers;
	r->max_record = max_record_of(cap);
	/* acquire: pairs with a previous producer's publish (we continue after it). */
	r->pub = r->claim = atomic_load_explicit(&h->tail, memory_order_acquire);
	r->limit = 0; /* the first claim refreshes it */
	/* seq_cst: part of the join handshake; we only ever raise it. */
	r->adv = atomic_load_explicit(&h->adv, memory_order_seq_cst);
	*out = r;
	return 0;
}

int cqrs_bcast_init(void *mem, size_t size, uint64_t capacity, uint32_t max_consumers, cqrs_bcast **out)
{
	size_t need = cqrs_bcast_footprint(capacity, max_consumers);
	struct bc_hdr *h = mem;

	if (!mem || !out)
		return cqrs__fail(-EINVAL, "null argument");
	if (need == 0)
		return cqrs__fail(-EINVAL, "capacity %llu / max_consumers %u out of range",
				 (unsigned long long)capacity, max_consumers);
	if ((uintptr_t)mem % 64)
		return cqrs__fail(-EINVAL, "ring memory must be 64-byte aligned");
	if (size < need)
		return cqrs__fail(-EINVAL, "ring needs %zu bytes, got %zu", need, size);

	memset(mem, 0, (size_t)bc_hdr_size(max_consumers));
	h->version = BC_VERSION;
	h->hdr_size = (uint32_t)bc_hdr_size(max_consumers);
	h->capacity = capacity;
	h->total_size = need;
	h->max_consumers = max_consumers;
	h->max_record = max_record_of(capacity);
	h->block = BC_BLOCK;
	h->rec_hdr = sizeof(cqrs_ring_rec);
	/* relaxed: published by the magic store below. */
	atomic_store_explicit(&h->tail, 0, memory_order_relaxed);
	atomic_store_explicit(&h->adv, capacity, memory_order_relaxed);
	/* release: whoever reads the magic with acquire sees the fields above. */
	atomic_store_explicit(&h->magic, BC_MAGIC, memory_order_release);
	return handle_new(h, (uint32_t)bc_hdr_size(max_consumers), capacity, max_consumers, out);
}

int cqrs_bcast_attach(void *mem, size_t size, cqrs_bcast **out)
{
	struct bc_hdr *h = mem;
	uint64_t tail, adv, cap, total;
	uint32_t i, version, hdr_size, maxc, max_record, block, rec_hdr;

	if (!mem || !out)
		return cqrs__fail(-EINVAL, "null argument");
	if ((uintptr_t)mem % 64)
		return cqrs__fail(-EINVAL, "ring memory must be 64-byte aligned");
	if (size < sizeof(struct bc_hdr))
		return cqrs__fail(CQRS_EFORMAT, "%zu bytes is too small for a broadcast ring", size);
	/* acquire: pairs with init's release store of the magic. */
	if (atomic_load_explicit(&h->magic, memory_order_acquire) != BC_MAGIC)
		return cqrs__fail(CQRS_EFORMAT, "not a broadcast ring (bad magic)");
	/* Each field is read once, validated, and only the local copy is used. */
	version = h->version;
	hdr_size = h->hdr_size;
	cap = h->capacity;
	total = h->total_size;
	maxc = h->max_consumers;
	max_record = h->max_record;
	block = h->block;
	rec_hdr = h->rec_hdr;
	if (version != BC_VERSION)
		return cqrs__fail(CQRS_EFORMAT, "broadcast ring format %u, expected %u", version, BC_VERSION);
	if (block != BC_BLOCK || rec_hdr != sizeof(cqrs_ring_rec))
		return cqrs__fail(CQRS_EFORMAT, "broadcast ring block %u / record header %u", block, rec_hdr);
	if (cqrs_bcast_footprint(cap, maxc) == 0 || hdr_size != bc_hdr_size(maxc) || total != hdr_size + cap ||
	    max_record != max_record_of(cap))
		return cqrs__fail(CQRS_EFORMAT, "inconsistent broadcast ring sizes");
	if (total > size)
		return cqrs__fail(CQRS_EFORMAT, "ring of %llu bytes in %zu bytes of memory", (unsigned long long)total,
				 size);
	/* acquire: pairs with the producer's publish. */
	tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	/* seq_cst: as any read of adv (join handshake). */
	adv = atomic_load_explicit(&h->adv, memory_order_seq_cst);
	if (tail % CQRS_RING_ALIGN || adv < cap || tail > adv)
		return cqrs__fail(CQRS_EFORMAT, "broadcast ring cursors out of range (tail %llu, adv %llu)",
				 (unsigned long long)tail, (unsigned long long)adv);
	for (i = 0; i < maxc; i++) {
		/* relaxed: a sanity check only. */
		uint32_t st = atomic_load_explicit(&bc_slots(h)[i].state, memory_order_relaxed);
		if (st > BC_SLOT_ACTIVE)
			return cqrs__fail(CQRS_EFORMAT, "consumer slot %u in state %u", i, st);
	}
	return handle_new(h, hdr_size, cap, maxc, out);
}

void cqrs_bcast_close(cqrs_bcast *r)
{
	free(r);
}

uint64_t cqrs_bcast_capacity(const cqrs_bcast *r)
{
	return r->cap;
}

uint64_t cqrs_bcast_tail(const cqrs_bcast *r)
{
	/* acquire: pairs with publish. */
	return atomic_load_explicit(&r->h->tail, memory_order_acquire);
}

/* ---- producer ---------------------------------------------------------- */

/* Oldest position still needed: the smallest active head, or pub. O(slots). */
static uint64_t oldest_needed(const cqrs_bcast *r)
{
	uint64_t m = r->pub;
	uint32_t i;

	for (i = 0; i < r->max_consumers; i++) {
		struct bc_slot *s = &r->slots[i];
		uint64_t head;

		/* seq_cst: the producer's half of the join handshake (pairs with the
		 * consumer's seq_cst store of state after our seq_cst store of adv). */
		if (atomic_load_explicit(&s->state, memory_order_seq_cst) != BC_SLOT_ACTIVE)
			continue;
		/* seq_cst: acquire pairs with the consumer's release of head (its
		 * reads are over); seq_cst for the futex protocol of a sleeping producer. */
		head = atomic_load_explicit(&s->head, memory_order_seq_cst);
		if (head < m)
			m = head;
	}
	return m;
}

/* Recomputes the write limit; true when it reaches want. */
static bool refresh_limit(cqrs_bcast *r, uint64_t want)
{
	uint64_t lim = oldest_needed(r) + r->cap;

	if (lim > r->adv) {
		r->adv = lim;
		/* seq_cst: advertise before using it; pairs with a joining consumer's
		 * seq_cst load of adv after its seq_cst store of state. */
		atomic_store_explicit(&r->h->adv, lim, memory_order_seq_cst);
		uint64_t again = oldest_needed(r) + r->cap;
		if (again < lim)
			lim = again;
	}
	r->limit = lim;
	return want <= lim;
}

/* Where a claim of n bytes would start and end: pad bytes of padding first. */
static inline uint64_t claim_end(const cqrs_bcast *r, uint64_t n, uint64_t *pad)
{
	uint64_t left = r->cap - (r->claim & r->mask);

	*pad = n <= left ? 0 : left;
	return r->claim + *pad + n;
}

/* Reserves n contiguous bytes (a multiple of 8, <= max_record) and returns
 * their index in the data region. */
static inline int reserve(cqrs_bcast *r, uint64_t n, uint64_t *idx)
{
	uint64_t pad, end = claim_end(r, n, &pad);

	if (__builtin_expect(end > r->limit, 0)) {
		if (end - r->pub > r->cap)
			return -ENOSPC;
		if (!refresh_limit(r, end))
			return -EAGAIN;
	}
	*idx = r->claim & r->mask;
	if (pad) {
		cqrs_ring_rec *p = (cqrs_ring_rec *)(r->data + *idx);
		p->len = (uint32_t)(pad - sizeof(cqrs_ring_rec));
		p->type = CQRS_BCAST_TYPE_PAD;
		*idx = 0;
	}
	CQRS_ASSERT(end > r->claim && end % CQRS_RING_ALIGN == 0);
	CQRS_ASSERT(end <= r->limit && end - r->pub <= r->cap);
	r->claim = end;
	return 0;
}

struct space_wait {
	cqrs_bcast *r;
	uint64_t n;
};

static bool space_ready(void *arg)
{
	struct space_wait *w = arg;
	uint64_t pad, end = claim_end(w->r, w->n, &pad);

	return end - w->r->pub > w->r->cap || refresh_limit(w->r, end);
}

static int reserve_wait(cqrs_bcast *r, uint64_t n, cqrs_ring_wait wait, uint64_t timeout_ns, uint64_t *idx)
{
	struct space_wait w = { r, n };
	uint64_t deadline = 0;
	int rc;

	for (;;) {
		rc = reserve(r, n, idx);
		if (rc != -EAGAIN)
			return rc;
		if (deadline == 0)
			deadline = cqrs__deadline_after(timeout_ns);
		rc = cqrs__ring_wait(wait, cqrs__remaining(deadline), CQRS_RING_FOREVER, &r->h->space_seq,
				     &r->h->space_waiters, space_ready, &w);
		if (rc)
			return rc;
	}
}

static inline int check_claim(const cqrs_bcast *r, uint32_t type, uint32_t len)
{
	if (type == CQRS_BCAST_TYPE_PAD)
		return -EINVAL;
	if (CQRS_BCAST_REC_SIZE(len) > r->max_record)
		return -EMSGSIZE;
	return 0;
}

int cqrs_bcast_try_claim(cqrs_bcast *r, uint32_t type, uint32_t len, void **payload)
{
	uint64_t idx;
	cqrs_ring_rec *rec;
	int rc = check_claim(r, type, len);

	if (rc)
		return rc;
	rc = reserve(r, CQRS_BCAST_REC_SIZE(len), &idx);
	if (rc)
		return rc;
	rec = (cqrs_ring_rec *)(r->data + idx);
	rec->len = len;
	rec->type = type;
	*payload = rec + 1;
	return 0;
}

int cqrs_bcast_claim(cqrs_bcast *r, uint32_t type, uint32_t len, cqrs_ring_wait wait, uint64_t timeout_ns,
		     void **payload)
{
	uint64_t idx;
	cqrs_ring_rec *rec;
	int rc = check_claim(r, type, len);

	if (rc)
		return rc;
	rc = reserve_wait(r, CQRS_BCAST_REC_SIZE(len), wait, timeout_ns, &idx);
	if (rc)
		return rc;
	rec = (cqrs_ring_rec *)(r->data + idx);
	rec->len = len;
	rec->type = type;
	*payload = rec + 1;
	return 0;
}

void cqrs_bcast_publish(cqrs_bcast *r)
{
	if (r->claim == r->pub) {
		/* Nothing new: only wake sleepers, so that they re-check whatever
		 * the caller changed (a stop flag). seq_cst fence: orders the
		 * caller's stores before our load of data_waiters, pairing with a
		 * sleeper's seq_cst increment of it. */
		atomic_thread_fence(memory_order_seq_cst);
		cqrs__ring_wake(&r->h->data_seq, &r->h->data_waiters);
		return;
	}
	CQRS_ASSERT(r->claim > r->pub && r->claim - r->pub <= r->cap);
	r->pub = r->claim;
	/* seq_cst exchange: release orders the records before the new tail
	 * (pairs with the consumers' acquire load of tail); seq_cst pairs with a
	 * sleeping consumer's increment of data_waiters (futex protocol). */
	atomic_exchange_explicit(&r->h->tail, r->pub, memory_order_seq_cst);
	cqrs__ring_wake(&r->h->data_seq, &r->h->data_waiters);
}

int cqrs_bcast_offer(cqrs_bcast *r, uint32_t type, const void *data, uint32_t len)
{
	void *p;
	int rc = cqrs_bcast_try_claim(r, type, len, &p);

	if (rc)
		return rc;
	if (len)
		memcpy(p, data, len);
	cqrs_bcast_publish(r);
	return 0;
}

int cqrs_bcast_publish_framed(cqrs_bcast *r, const void *recs, size_t nbytes, cqrs_ring_wait wait,
			      uint64_t timeout_ns)
{
	const unsigned char *b = recs;
	uint64_t idx;
	size_t q = 0;
	int rc;

	if (nbytes % CQRS_RING_ALIGN)
		return CQRS_EFORMAT;
	if (nbytes > r->max_record)
		return -EMSGSIZE;
	while (q < nbytes) {
		cqrs_ring_rec h;
		memcpy(&h, b + q, sizeof h); /* recs need not be aligned */
		if (h.type == CQRS_BCAST_TYPE_PAD || CQRS_BCAST_REC_SIZE(h.len) > nbytes - q)
			return CQRS_EFORMAT;
		q += (size_t)CQRS_BCAST_REC_SIZE(h.len);
	}
	if (nbytes) {
		rc = reserve_wait(r, nbytes, wait, timeout_ns, &idx);
		if (rc)
			return rc;
		memcpy(r->data + idx, recs, nbytes);
	}
	cqrs_bcast_publish(r);
	return 0;
}

/* ---- consumers --------------------------------------------------------- */

static int consumer_join(cqrs_bcast *r, uint64_t pos, cqrs_bcast_consumer *c)
{
	struct bc_slot *s = NULL;
	uint64_t tail, adv;
	uint32_t i;

	for (i = 0; i < r->max_consumers; i++) {
		uint32_t exp = BC_SLOT_FREE;
		/* acquire: pairs with the release that freed the slot (its previous
		 * owner is done with it). */
		if (atomic_compare_exchange_strong_explicit(&r->slots[i].state, &exp, BC_SLOT_SETUP,
							    memory_order_acquire, memory_order_relaxed)) {
			s = &r->slots[i];
			break;
		}
	}
	if (!s)
		return CQRS_EFULL;
	/* relaxed: published by the seq_cst store of state below. */
	atomic_store_explicit(&s->head, pos, memory_order_relaxed);
	/* seq_cst: the consumer's half of the join handshake (pairs with the
	 * producer's seq_cst store of adv before its seq_cst scan of states). */
	atomic_store_explicit(&s->state, BC_SLOT_ACTIVE, memory_order_seq_cst);
	/* acquire: pairs with publish (records before tail are complete). */
	tail = atomic_load_explicit(&r->h->tail, memory_order_acquire);
	/* seq_cst: see the handshake above. */
	adv = atomic_load_explicit(&r->h->adv, memory_order_seq_cst);
	if (pos > tail || pos + r->cap < adv) {
		/* release: hands the slot back. */
		atomic_store_explicit(&s->state, BC_SLOT_FREE, memory_order_release);
		return -ERANGE;
	}
	c->h = r->h;
	c->slot = s;
	c->data = r->data;
	c->cap = r->cap;
	c->mask = r->mask;
	c->head = c->avail = pos;
	return 0;
}

static cqrs_bcast_consumer *consumer_alloc(void)
{
	cqrs_bcast_consumer *c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);

	if (c)
		memset(c, 0, sizeof(*c));
	return c;
}

int cqrs_bcast_consumer_add(cqrs_bcast *r, uint64_t pos, cqrs_bcast_consumer **out)
{
	cqrs_bcast_consumer *c;
	int rc;

	if (pos % CQRS_RING_ALIGN)
		return -ERANGE;
	c = consumer_alloc();
	if (!c)
		return -ENOMEM;
	rc = consumer_join(r, pos, c);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int cqrs_bcast_consumer_add_at_tail(cqrs_bcast *r, cqrs_bcast_consumer **out)
{
	cqrs_bcast_consumer *c = consumer_alloc();
	int rc = -EAGAIN, i;

	if (!c)
		return -ENOMEM;
	for (i = 0; i < 10000; i++) {
		/* acquire: pairs with publish. */
		rc = consumer_join(r, atomic_load_explicit(&r->h->tail, memory_order_acquire), c);
		if (rc != -ERANGE)
			break;
		rc = -EAGAIN;
		sched_yield();
	}
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int cqrs_bcast_consumer_remove(cqrs_bcast_consumer *c)
{
	if (!c)
		return 0;
	/* seq_cst: release ends our reads before the producer may overwrite;
	 * seq_cst pairs with a sleeping producer's waiters increment. */
	atomic_store_explicit(&c->slot->state, BC_SLOT_FREE, memory_order_seq_cst);
	cqrs__ring_wake(&c->h->space_seq, &c->h->space_waiters);
	free(c);
	return 0;
}

uint64_t cqrs_bcast_consumer_position(const cqrs_bcast_consumer *c)
{
	return c->head;
}

/* Refreshes the cached tail; false when nothing new is published (or the
 * tail is impossible: reported by the callers as corruption). */
static inline bool load_avail(cqrs_bcast_consumer *c, int *err)
{
	uint64_t t;

	if (c->head != c->avail)
		return true;
	__builtin_prefetch(c->data + (c->head & c->mask)); /* see data_ready */
	/* acquire: pairs with the producer's publish; the records before the
	 * tail are visible. */
	t = atomic_load_explicit(&c->h->tail, memory_order_acquire);
	if (t == c->head)
		return false;
	if (t - c->head > c->cap || t % CQRS_RING_ALIGN) {
		*err = CQRS_ECORRUPT;
		return false;
	}
	c->avail = t;
	CQRS_ASSERT(c->avail - c->head <= c->cap);
	return true;
}

static inline void release_to(cqrs_bcast_consumer *c, uint64_t head)
{
	/* forward, aligned, never past the validated tail */
	CQRS_ASSERT(head % CQRS_RING_ALIGN == 0 && head - c->head <= c->avail - c->head);
	c->head = head;
	/* seq_cst exchange: release ends our reads of the released bytes (pairs
	 * with the producer's acquire scan of heads); seq_cst pairs with a
	 * sleeping producer's increment of space_waiters. */
	atomic_exchange_explicit(&c->slot->head, head, memory_order_seq_cst);
	cqrs__ring_wake(&c->h->space_seq, &c->h->space_waiters);
}

/* Validates the record at head (head < avail); its size in *size. */
static inline int check_rec(const cqrs_bcast_consumer *c, uint64_t head, const cqrs_ring_rec *rec,
			    uint64_t *size)
{
	uint64_t idx = head & c->mask;
	uint64_t n = CQRS_BCAST_REC_SIZE(rec->len);

	if (n > c->avail - head || n > c->cap - idx)
		return CQRS_ECORRUPT;
	if (rec->type == CQRS_BCAST_TYPE_PAD && idx + n != c->cap)
		return CQRS_ECORRUPT;
	*size = n;
	return 0;
}

int cqrs_bcast_consume_batch(cqrs_bcast_consumer *c, cqrs_ring_handler fn, void *arg, size_t max)
{
	uint64_t head = c->head;
	size_t n = 0;
	int err = 0;

	if (!load_avail(c, &err))
		return err;
	while (head != c->avail) {
		const cqrs_ring_rec *rec = (const cqrs_ring_rec *)(c->data + (head & c->mask));
		uint64_t size;

		err = check_rec(c, head, rec, &size);
		if (err)
			break;
		head += size;
		if (rec->type == CQRS_BCAST_TYPE_PAD)
			continue;
		n++;
		if (fn(arg, rec->type, rec + 1, rec->len) || n == max)
			break;
	}
	CQRS_ASSERT(head - c->head <= c->avail - c->head);
	if (head != c->head)
		release_to(c, head);
	return n == 0 && err ? err : (int)n;
}

int cqrs_bcast_poll(cqrs_bcast_consumer *c, const void **recs, size_t *nbytes)
{
	uint64_t start, q, size;
	int err = 0;

	if (!load_avail(c, &err))
		return err ? err : -EAGAIN;
	/* Skip padding at the position (released with the run). */
	for (;;) {
		const cqrs_ring_rec *rec = (const cqrs_ring_rec *)(c->data + (c->head & c->mask));

		if (c->head == c->avail)
			return -EAGAIN;
		err = check_rec(c, c->head, rec, &size);
		if (err)
			return err;
		if (rec->type != CQRS_BCAST_TYPE_PAD)
			break;
		c->head += size;
	}
	start = q = c->head;
	do {
		const cqrs_ring_rec *rec = (const cqrs_ring_rec *)(c->data + (q & c->mask));

		if (check_rec(c, q, rec, &size) || rec->type == CQRS_BCAST_TYPE_PAD)
			break;
		q += size;
	} while (q != c->avail && (q & c->mask) != 0); /* a run ends at the end of the data region */
	CQRS_ASSERT(q - start <= c->avail - start);
	*recs = c->data + (start & c->mask);
	*nbytes = (size_t)(q - start);
	return 0;
}

int cqrs_bcast_release(cqrs_bcast_consumer *c, size_t nbytes)
{
	if (nbytes % CQRS_RING_ALIGN || nbytes > c->avail - c->head)
		return -EINVAL;
	release_to(c, c->head + nbytes);
	return 0;
}

static bool data_ready(void *arg)
{
	cqrs_bcast_consumer *c = arg;

	/* Ask for the next record's line while we watch the tail: when the tail
	 * moves, both lines are on their way at once instead of one after the
	 * other (about 20% off the one-way latency here). */
	__builtin_prefetch(c->data + (c->head & c->mask));
	/* seq_cst: pairs with publish's seq_cst exchange (futex protocol). */
	return atomic_load_explicit(&c->h->tail, memory_order_seq_cst) != c->head;
}

int cqrs_bcast_wait(cqrs_bcast_consumer *c, cqrs_ring_wait wait, uint64_t timeout_ns)
{
	if (c->head != c->avail)
		return 0;
	return cqrs__ring_wait(wait, timeout_ns, CQRS_RING_FOREVER, &c->h->data_seq, &c->h->data_waiters,
			       data_ready, c);
}
