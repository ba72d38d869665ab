/*
 * ringbuf/mpsc.c - the multi-producer, single-consumer ring, built to live
 * in shared memory between processes that do not trust each other much (the
 * command gateway: one ring per client, or one shared by several).
 *
 * Byte layout
 *   Caller memory, 64-byte aligned, at any address in any process: offsets
 *   and positions only. Host-endian. Block = 128 bytes.
 *
 *     block 0    immutable after init: u64 magic "CQRSMPSC" (stored last,
 *                release), u32 version (2), u32 hdr_size, u64 capacity (power
 *                of two, <= 2^27), u64 total_size, u32 max_producers,
 *                u32 max_payload (capacity/2 - 16), u64 claim_timeout_ns,
 *                u32 block (128), u32 rec_hdr (16)
 *     block 1    u64 tail: end of the last claim (producers CAS it)
 *     block 2    u64 head: the consumer's position (everything before it is
 *                released), then the counters records, timeouts, corrupt
 *     block 3    u32 space_seq, u32 space_waiters: producers' futex
 *     block 4    u32 data_seq, u32 data_waiters: the consumer's futex
 *     block 5..  max_producers slots of 64 bytes: u64 intent, u32 owner pid
 *     hdr_size   the data region, capacity bytes
 *
 *   Records are 8-byte aligned and never straddle the end of the data
 *   region:
 *     +0  u64 ctl   control word: tag (37 bits) | state (2) | extent/8 (25)
 *     +8  u32 type
 *     +12 u32 len   payload bytes, <= extent - 16
 *     +16 payload, then padding to the extent
 *   tag = (position/8) mod 2^37 of the record's own position. The data
 *   region is zeroed once at init and never again: the tag is how a reader
 *   tells a header written for this position from a word left over from an
 *   earlier lap (or from payload). States: 2 committed, 3 discard (padding,
 *   an aborted claim, or a claim the consumer skipped); 0 and 1 are never
 *   written, so a word in those states is "no header here yet".
 *
 *   A producer slot's intent word, (position/8 mod 2^40, extent/8), says
 *   where that producer's claim in flight starts and how far it reaches.
 *
 * Claim and commit (producer)
 *   1. n = 16 + len rounded up to 8. From a tail value t: if n does not fit
 *      in the bytes left before the end of the data region, pad = those
 *      bytes and the record goes to index 0. The claim is [t, t + pad + n);
 *      it must end within head + capacity (head loaded with acquire: pairs
 *      with the consumer's release of head; its reads of those bytes are
 *      over).
 *   2. intent = (t, pad + n) in the producer's own slot (relaxed), then CAS
 *      tail t -> t + pad + n (release: publishes the intent to whoever
 *      acquires the new tail). Retry with the tail the CAS returned. The
 *      claim and its extent become visible in one atomic step: no window in
 *      which the tail has moved but nobody could tell how far.
 *   3. Write the payload in place, then type and len (plain stores).
 *   4. Commit: CAS the padding header (discard, if any) then the record
 *      header (committed, extent n), each from the value found there
 *      (seq_cst: release publishes type, len and payload, pairing with the
 *      consumer's acquire load of ctl; seq_cst for the futex protocol). If a
 *      value found is already a header for that position, the consumer has
 *      skipped the claim: CQRS_ESTALE, the record is lost. Abort: one
 *      discard header over padding and record, the same way.
 *   5. Clear the intent (release), wake the consumer if data_waiters != 0.
 *   One claim per producer handle at a time, so one intent per slot says
 *   all there is to know about that producer's claim in flight. Per record:
 *   two locked instructions (tail CAS, header CAS).
 *
 * Reader loop (consumer; one at a time)
 *     tail = acquire load; tail - head must be <= capacity (else the ring is
 *     broken: CQRS_ECORRUPT)
 *     while head < tail:
 *       ctl = header at head (acquire: pairs with the commit CAS)
 *       no header for head (tag or state)  -> a claim not committed yet:
 *           wait; after the timeout, skip it (below)
 *       extent impossible (< 8, past tail, or a committed record that would
 *           cross the end of the data region) -> recover (below)
 *       discard   -> head += extent
 *       committed -> validate len <= extent - 16 (else count corrupt, skip
 *                    the extent), hand (type, payload, len) to the handler,
 *                    head += extent
 *     head store: one atomic exchange per poll (release: our reads of the
 *     released bytes are over; seq_cst for the futex protocol), then wake
 *     producers if space_waiters != 0.
 *   The consumer keeps its own copy of head and of every size it validated
 *   at attach; it never follows a value from the ring without bounding it by
 *   the claimed extent, the tail and the end of the data region, so garbage
 *   in the ring cannot make it read outside the data region.
 *
 * Timeouts and dead producers
 *   A record position without a header for claim_timeout_ns (measured by
 *   the consumer from when it first saw that word there; the clock restarts
 *   when the word changes) is skipped. Its producer died, or stalls, between
 *   its tail CAS and its commit. Its intent, published by that CAS, covers
 *   head and gives the claim's end. When several intents cover head (a
 *   producer that died right after a failed CAS leaves a stale one), the one
 *   whose end is the tail or a valid header for its own position wins.
 *   Without any, the claim was not made by the protocol (a hostile or
 *   broken producer): scan 8-byte words from head to the tail for the next
 *   header valid for its position (else skip to the tail), and count it as
 *   corrupt. The skip writes a discard header at head with a CAS from the
 *   value the consumer saw, then moves on.
 *   The rule for late producers: a header is only ever written by a CAS
 *   from a value that is not yet a header for that position, and the
 *   consumer's skip writes exactly such a header first; so a producer that
 *   comes back after a skip gets CQRS_ESTALE from commit and can never turn
 *   a skipped claim into a committed record. Only its payload, type and len
 *   writes are plain stores: if it stalled longer than the timeout and the
 *   ring has since reused the space, those bytes can garble later records;
 *   the consumer's validation bounds the damage to skipped or garbled
 *   records, never an out-of-bounds read. So the timeout must exceed any
 *   real claim-to-commit time (default 1 s).
 *
 * Hostile producers
 *   Anything a producer can write (headers, lengths, intents, tail, payload)
 *   is validated before use; a bad record is skipped and counted (corrupt),
 *   a broken tail makes poll return CQRS_ECORRUPT. Such a producer can make
 *   other producers' records be lost or garbled, not make the consumer
 *   crash or spin: give untrusted clients a ring each.
 *
 * Producer slots
 *   A producer takes a free slot (owner 0 -> pid, CAS). Slots of processes
 *   that died (kill(pid, 0) says ESRCH) are reclaimed once their intent is
 *   behind the consumer. Threads of one process share the pid; each opens
 *   its own producer.
 *
 * Asserted (CQRS_ASSERT, on each handle's own state only: the shared words
 * any producer can scribble on get errors instead): a producer's claim ends
 * within its cached head + capacity, never straddles the end of the data
 * region, and is ended once; the consumer's head only grows, stays aligned
 * and never passes the tail it validated.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/errors.h"
#include "ringbuf/mpsc.h"
#include "ringbuf/wait.h"

struct cqrs_mpsc {
	struct mp_hdr *h;
	struct mp_slot *slots;
	unsigned char *data;
	uint64_t cap, mask;
	uint32_t max_producers, max_payload;
	/* consumer-local state, on its own cache line */
	_Alignas(64) uint64_t head;
	uint64_t timeout_ns;
	uint64_t stall_pos, stall_ctl, stall_since;
	uint64_t n_records, n_timeouts, n_corrupt;
	bool consumer_ready, stalled;
};

struct cqrs_mpsc_producer {
	struct mp_hdr *h;
	struct mp_slot *slot;
	unsigned char *data;
	uint64_t cap, mask;
	uint32_t max_payload;
	uint64_t cached_head;
	/* the claim in flight: [t, t + pad + n), the record at pos = t + pad */
	uint64_t t, pad, pos, n;
	uint32_t len, type;
	bool claimed;
};

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static inline _Atomic uint64_t *ctl_at(unsigned char *data, uint64_t mask, uint64_t pos)
{
	return (_Atomic uint64_t *)(data + (pos & mask));
}

size_t cqrs_mpsc_footprint(uint64_t capacity, uint32_t max_producers)
{
	if (!pow2(capacity) || capacity < CQRS_MPSC_MIN_CAPACITY || capacity > CQRS_MPSC_MAX_CAPACITY ||
	    max_producers == 0 || max_producers > CQRS_MPSC_MAX_PRODUCERS)
		return 0;
	return (size_t)(mp_hdr_size(max_producers) + capacity);
}

/* Builds a handle from values the caller validated (never re-read from the
 * shared header, which other processes can write). */
static int handle_new(struct mp_hdr *h, uint32_t hdr_size, uint64_t cap, uint32_t max_producers,
		      uint64_t timeout_ns, cqrs_mpsc **out)
{
	cqrs_mpsc *r = aligned_alloc(64, (sizeof(*r) + 63) & ~(size_t)63);

	if (!r)
		return cqrs__fail(-ENOMEM, "out of memory");
	memset(r, 0, sizeof(*r));
	r->h = h;
	r->slots = mp_slots(h);
	r->data = (unsigned char *)h + hdr_size;
	r->cap = cap;
	r->mask = cap - 1;
	r->max_producers = max_producers;
	r->max_payload = (uint32_t)(cap / 2 - CQRS_MPSC_REC_HDR);
	r->timeout_ns = timeout_ns;
	*out = r;
	return 0;
}

int cqrs_mpsc_init(void *mem, size_t size, uint64_t capacity, uint32_t max_producers,
		   uint64_t claim_timeout_ns, cqrs_mpsc **out)
{
	size_t need = cqrs_mpsc_footprint(capacity, max_producers);
	struct mp_hdr *h = mem;

	if (!mem || !out)
		return cqrs__fail(-EINVAL, "null argument");
	if (need == 0)
		return cqrs__fail(-EINVAL, "capacity %llu / max_producers %u out of range",
				 (unsigned long long)capacity, max_producers);
	if ((uintptr_t)mem % 64)
		return cqrs__fail(-EINVAL, "ring memory must be 64-byte aligned");
	if (size < need)
		return cqrs__fail(-EINVAL, "ring needs %zu bytes, got %zu", need, size);

	/* The whole ring, data included: no word left by an earlier ring in
	 * this memory may pass for a header of the new one (positions restart
	 * at 0). O(capacity), once. */
	memset(mem, 0, need);
	h->version = MP_VERSION;
	h->hdr_size = (uint32_t)mp_hdr_size(max_producers);
	h->capacity = capacity;
	h->total_size = need;
	h->max_producers = max_producers;
	h->max_payload = (uint32_t)(capacity / 2 - CQRS_MPSC_REC_HDR);
	h->claim_timeout_ns = claim_timeout_ns;
	h->block = MP_BLOCK;
	h->rec_hdr = CQRS_MPSC_REC_HDR;
	/* release: whoever reads the magic with acquire sees the fields above. */
	atomic_store_explicit(&h->magic, MP_MAGIC, memory_order_release);
	return handle_new(h, (uint32_t)mp_hdr_size(max_producers), capacity, max_producers, claim_timeout_ns,
			  out);
}

int cqrs_mpsc_attach(void *mem, size_t size, cqrs_mpsc **out)
{
	struct mp_hdr *h = mem;
	uint64_t head, tail, cap, total, timeout;
	uint32_t version, hdr_size, maxp, max_payload, block, rec_hdr;

	if (!mem || !out)
		return cqrs__fail(-EINVAL, "null argument");
	if ((uintptr_t)mem % 64)
		return cqrs__fail(-EINVAL, "ring memory must be 64-byte aligned");
	if (size < sizeof(struct mp_hdr))
		return cqrs__fail(CQRS_EFORMAT, "%zu bytes is too small for an MPSC ring", size);
	/* acquire: pairs with init's release store of the magic. */
	if (atomic_load_explicit(&h->magic, memory_order_acquire) != MP_MAGIC)
		return cqrs__fail(CQRS_EFORMAT, "not an MPSC ring (bad magic)");
	/* Each field is read once, validated, and only the local copy is used. */
	version = h->version;
	hdr_size = h->hdr_size;
	cap = h->capacity;
	total = h->total_size;
	maxp = h->max_producers;
	max_payload = h->max_payload;
	timeout = h->claim_timeout_ns;
	block = h->block;
	rec_hdr = h->rec_hdr;
	if (version != MP_VERSION)
		return cqrs__fail(CQRS_EFORMAT, "MPSC ring format %u, expected %u", version, MP_VERSION);
	if (block != MP_BLOCK || rec_hdr != CQRS_MPSC_REC_HDR)
		return cqrs__fail(CQRS_EFORMAT, "MPSC ring block %u / record header %u", block, rec_hdr);
	if (cqrs_mpsc_footprint(cap, maxp) == 0 || hdr_size != mp_hdr_size(maxp) || total != hdr_size + cap ||
	    max_payload != cap / 2 - CQRS_MPSC_REC_HDR)
		return cqrs__fail(CQRS_EFORMAT, "inconsistent MPSC ring sizes");
	if (total > size)
		return cqrs__fail(CQRS_EFORMAT, "ring of %llu bytes in %zu bytes of memory", (unsigned long long)total,
				 size);
	/* acquire: pairs with the consumer's release of head. */
	head = atomic_load_explicit(&h->head, memory_order_acquire);
	/* acquire: pairs with the producers' release CAS of tail. */
	tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	if (head % 8 || tail % 8 || tail - head > cap)
		return cqrs__fail(CQRS_EFORMAT, "MPSC ring cursors out of range (head %llu, tail %llu)",
				 (unsigned long long)head, (unsigned long long)tail);
	return handle_new(h, hdr_size, cap, maxp, timeout, out);
}

void cqrs_mpsc_close(cqrs_mpsc *r)
{
	free(r);
}

void cqrs_mpsc_set_claim_timeout(cqrs_mpsc *r, uint64_t claim_timeout_ns)
{
	r->timeout_ns = claim_timeout_ns;
}

void cqrs_mpsc_stats_get(const cqrs_mpsc *r, cqrs_mpsc_stats *out)
{
	/* relaxed: monitoring counters, no ordering implied. */
	out->records = atomic_load_explicit(&r->h->n_records, memory_order_relaxed);
	out->timeouts = atomic_load_explicit(&r->h->n_timeouts, memory_order_relaxed);
	out->corrupt = atomic_load_explicit(&r->h->n_corrupt, memory_order_relaxed);
}

/* ---- producers --------------------------------------------------------- */

static bool pid_dead(uint32_t pid)
{
	return pid != 0 && kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

int cqrs_mpsc_producer_open(cqrs_mpsc *r, cqrs_mpsc_producer **out)
{
	uint32_t me = (uint32_t)getpid();
	/* acquire: pairs with the consumer's release of head. */
	uint64_t head = atomic_load_explicit(&r->h->head, memory_order_acquire);
	struct mp_slot *s = NULL;
	cqrs_mpsc_producer *p;
	uint32_t i;

	for (i = 0; i < r->max_producers && !s; i++) {
		struct mp_slot *c = &r->slots[i];
		/* acquire: pairs with the release that freed the slot. */
		uint32_t owner = atomic_load_explicit(&c->owner, memory_order_acquire);

		if (owner != 0) {
			/* A dead owner's slot is reusable once its claim in flight, if
			 * any, is behind the consumer (acquire: pairs with the owner's
			 * intent stores). */
			uint64_t in, d;
			if (owner == me || !pid_dead(owner))
				continue;
			in = atomic_load_explicit(&c->intent, memory_order_acquire);
			d = ((head >> 3) - (in >> 24)) & MP_IPOS_MASK;
			if (in && (d < (in & ((UINT64_C(1) << 24) - 1)) || d >= (UINT64_C(1) << 39)))
				continue;
		}
		/* acquire: the slot's previous use is over before we write its intent. */
		if (atomic_compare_exchange_strong_explicit(&c->owner, &owner, me, memory_order_acquire,
							    memory_order_relaxed))
			s = c;
	}
	if (!s)
		return CQRS_EFULL;
	/* relaxed: our own slot; the next intent store is published by a CAS. */
	atomic_store_explicit(&s->intent, 0, memory_order_relaxed);
	p = aligned_alloc(64, (sizeof(*p) + 63) & ~(size_t)63);
	if (!p) {
		/* release: hands the slot back. */
		atomic_store_explicit(&s->owner, 0, memory_order_release);
		return -ENOMEM;
	}
	memset(p, 0, sizeof(*p));
	p->h = r->h;
	p->slot = s;
	p->data = r->data;
	p->cap = r->cap;
	p->mask = r->mask;
	p->max_payload = r->max_payload;
	p->cached_head = head;
	*out = p;
	return 0;
}

void cqrs_mpsc_producer_close(cqrs_mpsc_producer *p)
{
	if (!p)
		return;
	if (p->claimed)
		(void)cqrs_mpsc_abort(p);
	/* relaxed: published by the release below. */
	atomic_store_explicit(&p->slot->intent, 0, memory_order_relaxed);
	/* release: our use of the slot is over before someone else takes it. */
	atomic_store_explicit(&p->slot->owner, 0, memory_order_release);
	free(p);
}

/* Writes the header val for position pos, from whatever value is there,
 * unless it is already a header for pos: the consumer wrote it when it
 * skipped the claim (CQRS_ESTALE). */
static int put_header(cqrs_mpsc_producer *p, uint64_t pos, uint64_t val)
{
	_Atomic uint64_t *w = ctl_at(p->data, p->mask, pos);
	/* acquire: pairs with the consumer's discard CAS. */
	uint64_t cur = atomic_load_explicit(w, memory_order_acquire);

	for (;;) {
		if (mp_mine(cur, pos))
			return CQRS_ESTALE;
		/* seq_cst CAS: release publishes type, len and payload (pairs with
		 * the consumer's acquire load of ctl); it decides, against the
		 * consumer's discard CAS on the same word, who writes this
		 * position's header; seq_cst pairs with a sleeping consumer's
		 * increment of data_waiters (futex protocol). */
		if (atomic_compare_exchange_weak_explicit(w, &cur, val, memory_order_seq_cst,
							  memory_order_acquire))
			return 0;
	}
}

/* Where a claim of n bytes from tail t ends (pad bytes of padding first). */
static inline uint64_t claim_end(const cqrs_mpsc_producer *p, uint64_t t, uint64_t n, uint64_t *pad)
{
	uint64_t left = p->cap - (t & p->mask);

	*pad = n <= left ? 0 : left;
	return t + *pad + n;
}

int cqrs_mpsc_try_claim(cqrs_mpsc_producer *p, uint32_t type, uint32_t len, void **data)
{
	struct mp_hdr *h = p->h;
	uint64_t n, t, pad, end;

	if (p->claimed)
		return -EBUSY;
	if (len > p->max_payload)
		return -EMSGSIZE;
	n = CQRS_RING_ALIGN_UP(CQRS_MPSC_REC_HDR + (uint64_t)len);
	/* relaxed: only a guess; the CAS below validates it. */
	t = atomic_load_explicit(&h->tail, memory_order_relaxed);
	for (;;) {
		end = claim_end(p, t, n, &pad);
		if (t < p->cached_head || end - p->cached_head > p->cap) {
			/* acquire: pairs with the consumer's release of head; its reads
			 * of the bytes we may now overwrite are over. */
			p->cached_head = atomic_load_explicit(&h->head, memory_order_acquire);
			if (t < p->cached_head || end - p->cached_head > p->cap) {
				/* relaxed: a fresher guess, validated by the CAS. */
				uint64_t t2 = atomic_load_explicit(&h->tail, memory_order_relaxed);
				if (t2 != t) {
					t = t2;
					continue;
				}
				return t < p->cached_head ? CQRS_ECORRUPT : -EAGAIN;
			}
		}
		/* relaxed: published by the release CAS of tail below. */
		atomic_store_explicit(&p->slot->intent, mp_intent(t, pad + n), memory_order_relaxed);
		/* release: a consumer that acquires the new tail sees our intent. */
		if (atomic_compare_exchange_weak_explicit(&h->tail, &t, end, memory_order_release,
							  memory_order_relaxed))
			break;
	}
	/* Claimed. No header yet: until the commit, the intent (published by
	 * the CAS) is what tells the consumer how far this claim reaches. */
	CQRS_ASSERT(end - p->cached_head <= p->cap);
	CQRS_ASSERT(((t + pad) & p->mask) + n <= p->cap); /* no record straddles the end */
	p->claimed = true;
	p->t = t;
	p->pad = pad;
	p->pos = t + pad;
	p->n = n;
	p->len = len;
	p->type = type;
	*data = p->data + (p->pos & p->mask) + CQRS_MPSC_REC_HDR;
	return 0;
}

struct space_wait {
	cqrs_mpsc_producer *p;
	uint64_t n;
};

static bool space_ready(void *arg)
{
	struct space_wait *w = arg;
	/* seq_cst: pairs with the consumer's seq_cst exchange of head (futex
	 * protocol); acquire for the bytes it released. */
	uint64_t head = atomic_load_explicit(&w->p->h->head, memory_order_seq_cst);
	/* relaxed: a guess, as in try_claim. */
	uint64_t t = atomic_load_explicit(&w->p->h->tail, memory_order_relaxed);
	uint64_t pad, end = claim_end(w->p, t, w->n, &pad);

	w->p->cached_head = head;
	return t < head || end - head <= w->p->cap;
}

int cqrs_mpsc_claim(cqrs_mpsc_producer *p, uint32_t type, uint32_t len, cqrs_ring_wait wait,
		    uint64_t timeout_ns, void **data)
{
	struct space_wait w = { p, CQRS_RING_ALIGN_UP(CQRS_MPSC_REC_HDR + (uint64_t)len) };
	uint64_t deadline = 0;
	int rc;

	for (;;) {
		rc = cqrs_mpsc_try_claim(p, type, len, data);
		if (rc != -EAGAIN)
			return rc;
		if (deadline == 0)
			deadline = cqrs__deadline_after(timeout_ns);
		rc = cqrs__ring_wait(wait, cqrs__remaining(deadline), CQRS_RING_FOREVER, &p->h->space_seq,
				     &p->h->space_waiters, space_ready, &w);
		if (rc)
			return rc;
	}
}

/* Ends the claim in flight: the padding header (if any), then the record's
 * header, each a CAS that loses to a discard header the consumer already
 * wrote; then the intent is cleared (release: a consumer that reads it
 * cleared sees the headers) and a sleeping consumer is woken. */
static int finish(cqrs_mpsc_producer *p, bool commit, uint32_t len)
{
	struct mp_rec *rec = (struct mp_rec *)(p->data + (p->pos & p->mask));
	int rc = 0;

	CQRS_ASSERT(p->claimed && p->pos == p->t + p->pad);
	p->claimed = false;
	if (commit) {
		/* acquire: pairs with the consumer's discard CAS. If it skipped the
		 * claim, leave type and len alone (the bytes may be reused). */
		if (mp_mine(atomic_load_explicit(&rec->ctl, memory_order_acquire), p->pos))
			rc = CQRS_ESTALE;
		else {
			rec->type = p->type;
			rec->len = len;
			if (p->pad)
				rc = put_header(p, p->t, mp_ctl(p->t, MP_DISCARD, p->pad));
			if (rc == 0)
				rc = put_header(p, p->pos, mp_ctl(p->pos, MP_COMMITTED, p->n));
		}
	} else {
		/* One discard header over padding and record. */
		rc = put_header(p, p->t, mp_ctl(p->t, MP_DISCARD, p->pad + p->n));
	}
	/* release: the headers above are visible to whoever reads the intent cleared. */
	atomic_store_explicit(&p->slot->intent, 0, memory_order_release);
	if (rc == 0)
		cqrs__ring_wake(&p->h->data_seq, &p->h->data_waiters);
	return rc;
}

int cqrs_mpsc_commit(cqrs_mpsc_producer *p, uint32_t len)
{
	if (!p->claimed || len > p->len)
		return -EINVAL;
	return finish(p, true, len);
}

int cqrs_mpsc_abort(cqrs_mpsc_producer *p)
{
	if (!p->claimed)
		return -EINVAL;
	(void)finish(p, false, 0);
	return 0;
}

int cqrs_mpsc_offer(cqrs_mpsc_producer *p, uint32_t type, const void *data, uint32_t len)
{
	void *d;
	int rc = cqrs_mpsc_try_claim(p, type, len, &d);

	if (rc)
		return rc;
	if (len)
		memcpy(d, data, len);
	return cqrs_mpsc_commit(p, len);
}

/* ---- consumer ---------------------------------------------------------- */

static void consumer_start(cqrs_mpsc *r)
{
	/* acquire: pairs with a previous consumer's release of head. */
	r->head = atomic_load_explicit(&r->h->head, memory_order_acquire);
	/* relaxed: counters only. */
	r->n_records = atomic_load_explicit(&r->h->n_records, memory_order_relaxed);
	r->n_timeouts = atomic_load_explicit(&r->h->n_timeouts, memory_order_relaxed);
	r->n_corrupt = atomic_load_explicit(&r->h->n_corrupt, memory_order_relaxed);
	r->stalled = false;
	r->consumer_ready = true;
}

/* True once the word ctl has sat at position head for the claim timeout.
 * The first sighting starts the clock; a change restarts it. */
static bool stall_expired(cqrs_mpsc *r, uint64_t head, uint64_t ctl)
{
	if (!r->stalled || r->stall_pos != head || r->stall_ctl != ctl) {
		r->stalled = true;
		r->stall_pos = head;
		r->stall_ctl = ctl;
		r->stall_since = cqrs__mono_ns();
		return r->timeout_ns == 0;
	}
	if (r->timeout_ns == CQRS_RING_FOREVER)
		return false;
	return cqrs__mono_ns() - r->stall_since >= r->timeout_ns;
}

/* A header at pos that is valid for pos and fits below tail. */
static bool header_sane(const cqrs_mpsc *r, uint64_t ctl, uint64_t pos, uint64_t tail)
{
	uint64_t bytes = mp_bytes(ctl);

	if (!mp_mine(ctl, pos) || bytes < 8 || bytes > tail - pos)
		return false;
	if (mp_state(ctl) == MP_DISCARD)
		return true;
	return bytes >= CQRS_MPSC_REC_HDR && bytes <= r->cap - (pos & r->mask);
}

/* Where a claim ending at end is plausible: the tail, or a sane header. */
static bool plausible_end(cqrs_mpsc *r, uint64_t end, uint64_t tail)
{
	if (end == tail)
		return true;
	if (end > tail)
		return false;
	/* acquire: pairs with the header's writer. */
	return header_sane(r, atomic_load_explicit(ctl_at(r->data, r->mask, end), memory_order_acquire), end,
			   tail);
}

/* The record at head has unknown extent (header never written, or
 * nonsense) and is to be skipped. Returns the new head, or head itself when
 * the header changed under us (the caller looks again). O(slots), plus
 * O(tail - head) for the scan on the corrupt path. */
static uint64_t recover(cqrs_mpsc *r, uint64_t head, uint64_t tail, uint64_t cur)
{
	_Atomic uint64_t *w = ctl_at(r->data, r->mask, head);
	uint64_t end = 0, e, q, now;
	unsigned covering = 0;
	bool corrupt;
	uint32_t i;

	for (i = 0; i < r->max_producers; i++) {
		/* acquire: pairs with the producer's release clearing its intent
		 * after writing its headers (and with the tail CAS for the intent). */
		uint64_t in = atomic_load_explicit(&r->slots[i].intent, memory_order_acquire);
		if (!mp_intent_covers(in, head, &e) || e > tail)
			continue;
		if (!covering++ || plausible_end(r, e, tail))
			end = e;
	}
	if (covering > 1 && !plausible_end(r, end, tail))
		end = 0;
	/* acquire: a producer that cleared its intent wrote its header first. */
	now = atomic_load_explicit(w, memory_order_acquire);
	if (now != cur)
		return head;
	if (end) {
		corrupt = mp_mine(cur, head); /* a header for head, but nonsense */
	} else {
		/* No intent: scan for the next header valid for its position. */
		for (q = head + 8; q < tail; q += 8) {
			/* relaxed: a probe; whatever we find is validated. */
			uint64_t v = atomic_load_explicit(ctl_at(r->data, r->mask, q), memory_order_relaxed);
			if (header_sane(r, v, q, tail))
				break;
		}
		end = q < tail ? q : tail;
		corrupt = true;
	}
	/* acq_rel: decides against a late producer's header CAS; if we lose, the
	 * producer's header is there now and the caller looks again; if we win,
	 * the producer finds our discard header and gives up. */
	if (!atomic_compare_exchange_strong_explicit(w, &cur, mp_ctl(head, MP_DISCARD, end - head),
						     memory_order_acq_rel, memory_order_acquire))
		return head;
	if (corrupt)
		r->n_corrupt++;
	else
		r->n_timeouts++;
	return end;
}

static void publish_head(cqrs_mpsc *r, uint64_t head)
{
	struct mp_hdr *h = r->h;

	/* forward by at most the ring, aligned */
	CQRS_ASSERT(head != r->head && head - r->head <= r->cap && head % CQRS_RING_ALIGN == 0);
	r->head = head;
	r->stalled = false;
	/* relaxed: monitoring counters. */
	atomic_store_explicit(&h->n_records, r->n_records, memory_order_relaxed);
	atomic_store_explicit(&h->n_timeouts, r->n_timeouts, memory_order_relaxed);
	atomic_store_explicit(&h->n_corrupt, r->n_corrupt, memory_order_relaxed);
	/* seq_cst exchange: release ends our reads of the released bytes (pairs
	 * with the producers' acquire of head); seq_cst pairs with a sleeping
	 * producer's increment of space_waiters. */
	atomic_exchange_explicit(&h->head, head, memory_order_seq_cst);
	cqrs__ring_wake(&h->space_seq, &h->space_waiters);
}

int cqrs_mpsc_poll(cqrs_mpsc *r, cqrs_ring_handler fn, void *arg, size_t max)
{
	uint64_t head, tail;
	size_t n = 0;

	if (!r->consumer_ready)
		consumer_start(r);
	head = r->head;
	/* acquire: pairs with the producers' release CAS of tail (intents). */
	tail = atomic_load_explicit(&r->h->tail, memory_order_acquire);
	if (tail - head > r->cap || tail % 8) {
		r->n_corrupt++;
		/* relaxed: monitoring counter. */
		atomic_store_explicit(&r->h->n_corrupt, r->n_corrupt, memory_order_relaxed);
		return CQRS_ECORRUPT;
	}
	while (head != tail) {
		struct mp_rec *rec = (struct mp_rec *)(r->data + (head & r->mask));
		/* acquire: pairs with the producer's commit CAS (type, len and
		 * payload are visible when we see "committed"). */
		uint64_t ctl = atomic_load_explicit(&rec->ctl, memory_order_acquire);
		uint64_t bytes = mp_bytes(ctl);
		uint32_t type, len;

		if (!mp_mine(ctl, head)) {
			/* Claimed, not committed yet (or garbage). */
			if (!stall_expired(r, head, ctl))
				break;
			head = recover(r, head, tail, ctl);
			continue;
		}
		if (!header_sane(r, ctl, head, tail)) {
			head = recover(r, head, tail, ctl);
			continue;
		}
		if (mp_state(ctl) == MP_DISCARD) {
			head += bytes;
			continue;
		}
		type = rec->type;
		len = rec->len;
		head += bytes;
		if (len > bytes - CQRS_MPSC_REC_HDR) {
			r->n_corrupt++;
			continue;
		}
		r->n_records++;
		n++;
		if (fn(arg, type, rec + 1, len) || n == max)
			break;
	}
	CQRS_ASSERT(head - r->head <= tail - r->head); /* never past the validated tail */
	if (head != r->head)
		publish_head(r, head);
	return (int)n;
}

static bool data_ready(void *arg)
{
	cqrs_mpsc *r = arg;
	uint64_t head = r->head, ctl;
	/* seq_cst: pairs with the producers' seq_cst commit CAS (futex protocol). */
	uint64_t tail = atomic_load_explicit(&r->h->tail, memory_order_seq_cst);

	if (tail == head)
		return false;
	/* seq_cst: as above; the commit CAS is on this word. */
	ctl = atomic_load_explicit(ctl_at(r->data, r->mask, head), memory_order_seq_cst);
	if (mp_mine(ctl, head))
		return true;
	return stall_expired(r, head, ctl);
}

int cqrs_mpsc_wait(cqrs_mpsc *r, cqrs_ring_wait wait, uint64_t timeout_ns)
{
	uint64_t nap;

	if (!r->consumer_ready)
		consumer_start(r);
	/* Sleep at most half a claim timeout at a time, so that a claim left by
	 * a dead producer is noticed (data_ready watches the clock). */
	nap = r->timeout_ns == CQRS_RING_FOREVER ? CQRS_RING_FOREVER : r->timeout_ns / 2 + 100000;
	return cqrs__ring_wait(wait, timeout_ns, nap, &r->h->data_seq, &r->h->data_waiters, data_ready, r);
}

int cqrs_mpsc_ready(cqrs_mpsc *r)
{
	if (!r->consumer_ready)
		consumer_start(r);
	return data_ready(r) ? 1 : 0;
}
