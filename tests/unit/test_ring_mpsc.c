/*
 * tests/unit/test_ring_mpsc.c - the MPSC ring: layout validation, round
 * trips, wrap-around, full/empty, commit/abort rules, claim timeouts and
 * dead producers (in the claim/header window too), late commits, hostile
 * garbage (fuzzed, read through guard pages), producer slots and the wait
 * strategies.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cqrs_ring.h"
#include "ringbuf/mpsc.h"

/* ---- helpers ----------------------------------------------------------- */

struct guarded {
	unsigned char *base;
	size_t maplen;
	void *mem;
	size_t size;
};

/* Ring memory between two PROT_NONE pages, its end against the second. */
static void guarded_alloc(struct guarded *g, size_t size, int shared)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (size + pg - 1) / pg * pg;

	g->maplen = body + 2 * pg;
	g->base = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE,
		       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
	assert_true(g->base != MAP_FAILED);
	assert_int_equal(mprotect(g->base, pg, PROT_NONE), 0);
	assert_int_equal(mprotect(g->base + pg + body, pg, PROT_NONE), 0);
	g->mem = g->base + pg + (body - size);
	g->size = size;
}

struct ring {
	struct guarded g;
	cqrs_mpsc *r;
	struct mp_hdr *h;
	unsigned char *data;
	uint64_t cap;
};

static void ring_new_ex(struct ring *x, uint64_t cap, uint32_t maxp, uint64_t timeout, int shared)
{
	size_t sz = cqrs_mpsc_footprint(cap, maxp);

	assert_true(sz > 0);
	guarded_alloc(&x->g, sz, shared);
	assert_int_equal(cqrs_mpsc_init(x->g.mem, sz, cap, maxp, timeout, &x->r), 0);
	x->h = x->g.mem;
	x->data = (unsigned char *)x->g.mem + x->h->hdr_size;
	x->cap = cap;
}

static void ring_new(struct ring *x, uint64_t cap, uint32_t maxp, uint64_t timeout)
{
	ring_new_ex(x, cap, maxp, timeout, 0);
}

static void ring_free(struct ring *x)
{
	cqrs_mpsc_close(x->r);
	munmap(x->g.base, x->g.maplen);
}

static void fill(unsigned char *p, uint32_t len, uint64_t seq)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(seq * 7 + i);
	if (len >= 8)
		memcpy(p, &seq, 8);
}

static int send(cqrs_mpsc_producer *p, uint32_t type, uint32_t len, uint64_t seq)
{
	unsigned char buf[4096];

	fill(buf, len, seq);
	return cqrs_mpsc_offer(p, type, buf, len);
}

struct got {
	int n;
	uint32_t type[512];
	uint32_t len[512];
	uint64_t seq[512];
	int bad; /* payload differs from what was sent */
	int oob; /* record not inside the data region */
	const unsigned char *lo, *hi; /* the data region: every record must be inside */
};

static int collect(void *arg, uint32_t type, const void *data, uint32_t len)
{
	struct got *g = arg;
	const unsigned char *d = data;
	unsigned char want[4096];
	uint64_t seq = 0;

	if (g->lo && (d < g->lo || d + len > g->hi)) {
		g->oob++;
		return 0;
	}
	if (len >= 8)
		memcpy(&seq, data, 8);
	if (len >= 8 && len <= sizeof want && type < 1000) {
		fill(want, len, seq);
		if (memcmp(want, data, len))
			g->bad++;
	}
	if (g->n < 512) {
		g->type[g->n] = type;
		g->len[g->n] = len;
		g->seq[g->n] = seq;
	}
	g->n++;
	return 0;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static uint64_t tail_of(struct ring *x)
{
	return atomic_load(&x->h->tail);
}

static _Atomic uint64_t *ctl_of(struct ring *x, uint64_t pos)
{
	return (_Atomic uint64_t *)(x->data + (pos & (x->cap - 1)));
}

/* ---- tests ------------------------------------------------------------- */

static void test_footprint_init_attach(void **state)
{
	static _Alignas(64) unsigned char buf[8192];
	struct ring x;
	cqrs_mpsc *a;
	cqrs_mpsc_stats st;
	(void)state;

	assert_int_equal(cqrs_mpsc_footprint(1000, 1), 0);
	assert_int_equal(cqrs_mpsc_footprint(512, 1), 0);
	assert_int_equal(cqrs_mpsc_footprint(UINT64_C(1) << 28, 1), 0);
	assert_int_equal(cqrs_mpsc_footprint(1024, 0), 0);
	assert_int_equal(cqrs_mpsc_footprint(1024, 1) % 128, 0);
	assert_int_equal(cqrs_mpsc_init(buf + 8, sizeof buf - 8, 1024, 1, 0, &a), -EINVAL);
	assert_int_equal(cqrs_mpsc_init(buf, 1024, 1024, 1, 0, &a), -EINVAL);

	ring_new(&x, 4096, 4, CQRS_MPSC_DEFAULT_TIMEOUT_NS);
	assert_int_equal(cqrs_mpsc_attach(x.g.mem, x.g.size, &a), 0);
	cqrs_mpsc_stats_get(a, &st);
	assert_int_equal(st.records + st.timeouts + st.corrupt, 0);
	cqrs_mpsc_close(a);
	assert_int_equal(cqrs_mpsc_attach(x.g.mem, x.g.size - 128, &a), CQRS_EFORMAT);
	x.h->version = 99;
	assert_int_equal(cqrs_mpsc_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	x.h->version = MP_VERSION;
	x.h->max_payload++;
	assert_int_equal(cqrs_mpsc_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	x.h->max_payload--;
	x.h->max_producers = 100;
	assert_int_equal(cqrs_mpsc_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	x.h->max_producers = 4;
	atomic_store(&x.h->tail, 8192);
	assert_int_equal(cqrs_mpsc_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	atomic_store(&x.h->tail, 0);
	atomic_store(&x.h->magic, 1);
	assert_int_equal(cqrs_mpsc_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	atomic_store(&x.h->magic, MP_MAGIC);
	ring_free(&x);
}

static void test_roundtrip(void **state)
{
	static const uint32_t lens[] = { 0, 1, 7, 8, 9, 100, 1000, 2032 };
	struct ring x;
	cqrs_mpsc_producer *p;
	struct got g = { 0 };
	cqrs_mpsc_stats st;
	size_t i;
	(void)state;

	ring_new(&x, 4096, 2, CQRS_MPSC_DEFAULT_TIMEOUT_NS);
	g.lo = x.data;
	g.hi = x.data + x.cap;
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &p), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0);
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		assert_int_equal(send(p, (uint32_t)(5 + i), lens[i], 1000 + i), 0);
		assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
		assert_int_equal(g.type[i], 5 + i);
		assert_int_equal(g.len[i], lens[i]);
	}
	assert_int_equal(send(p, 1, 2033, 0), -EMSGSIZE);
	assert_int_equal(g.bad, 0);
	cqrs_mpsc_stats_get(x.r, &st);
	assert_int_equal(st.records, sizeof lens / sizeof lens[0]);
	cqrs_mpsc_producer_close(p);
	ring_free(&x);
}

static void test_claim_commit_abort_rules(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *p, *q;
	struct got g = { 0 };
	void *d;
	(void)state;

	ring_new(&x, 4096, 2, CQRS_MPSC_DEFAULT_TIMEOUT_NS);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &p), 0);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &q), 0);
	assert_int_equal(cqrs_mpsc_commit(p, 0), -EINVAL);
	assert_int_equal(cqrs_mpsc_abort(p), -EINVAL);
	assert_int_equal(cqrs_mpsc_ready(x.r), 0);
	assert_int_equal(cqrs_mpsc_try_claim(p, 1, 100, &d), 0);
	assert_int_equal(cqrs_mpsc_ready(x.r), 0); /* claimed is not ready */
	assert_int_equal(cqrs_mpsc_try_claim(p, 1, 100, &d), -EBUSY);
	assert_int_equal(cqrs_mpsc_commit(p, 101), -EINVAL);
	/* q's record is behind p's claim: not delivered until p commits. */
	assert_int_equal(send(q, 2, 16, 2), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0);
	fill(d, 40, 1);
	assert_int_equal(cqrs_mpsc_commit(p, 40), 0); /* shorter than claimed */
	assert_int_equal(cqrs_mpsc_ready(x.r), 1);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 2);
	assert_int_equal(g.len[0], 40);
	assert_int_equal(g.seq[0], 1);
	assert_int_equal(g.seq[1], 2);
	/* Aborted claims are skipped. */
	assert_int_equal(cqrs_mpsc_try_claim(p, 1, 64, &d), 0);
	assert_int_equal(send(q, 2, 16, 3), 0);
	assert_int_equal(cqrs_mpsc_abort(p), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
	assert_int_equal(g.seq[2], 3);
	/* max limits a poll. */
	assert_int_equal(send(q, 2, 16, 4), 0);
	assert_int_equal(send(q, 2, 16, 5), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 1), 1);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 1), 1);
	assert_int_equal(g.seq[4], 5);
	/* close aborts a claim in flight. */
	assert_int_equal(cqrs_mpsc_try_claim(p, 1, 64, &d), 0);
	cqrs_mpsc_producer_close(p);
	assert_int_equal(send(q, 2, 16, 6), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
	assert_int_equal(g.bad, 0);
	cqrs_mpsc_producer_close(q);
	ring_free(&x);
}

static void test_wrap_full_empty(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *p;
	struct got g = { 0 };
	uint64_t seq, expect = 0;
	int n;
	(void)state;

	ring_new(&x, 1024, 1, CQRS_MPSC_DEFAULT_TIMEOUT_NS);
	g.lo = x.data;
	g.hi = x.data + x.cap;
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &p), 0);
	/* 216-byte records (200 + 16): 4 per lap, then padding. */
	for (seq = 0; seq < 300; seq++) {
		assert_int_equal(send(p, 1, 200, seq), 0);
		g.n = 0;
		assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
		assert_int_equal(g.seq[0], seq);
	}
	assert_true(tail_of(&x) > 300 * 216); /* padding was inserted */
	/* Full: 64-byte records until -EAGAIN, then room again after a poll. */
	n = 0;
	while (send(p, 1, 48, 1000 + (uint64_t)n) == 0)
		n++;
	assert_true(n >= 14 && n <= 16);
	assert_int_equal(send(p, 1, 48, 0), -EAGAIN);
	g.n = 0;
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), n);
	for (int i = 0; i < n; i++)
		assert_int_equal(g.seq[i], 1000 + (uint64_t)i + expect);
	assert_int_equal(send(p, 1, 48, 0), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0);
	assert_int_equal(g.bad, 0);
	cqrs_mpsc_producer_close(p);
	ring_free(&x);
}

static void test_claim_timeout_and_late_commit(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *a, *b;
	struct got g = { 0 };
	cqrs_mpsc_stats st;
	void *d;
	(void)state;

	ring_new(&x, 4096, 2, CQRS_RING_FOREVER);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &a), 0);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &b), 0);
	assert_int_equal(cqrs_mpsc_try_claim(a, 1, 100, &d), 0); /* a "dies" here */
	assert_int_equal(send(b, 2, 16, 7), 0);
	/* No timeout: the consumer waits for ever. */
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0);
	nap_ms(5);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0);
	assert_int_equal(cqrs_mpsc_wait(x.r, CQRS_WAIT_BLOCK, 1000000), -ETIMEDOUT);
	/* With a 2 ms timeout the claim is skipped, b's record delivered. */
	cqrs_mpsc_set_claim_timeout(x.r, 2000000);
	while (cqrs_mpsc_poll(x.r, collect, &g, 0) == 0)
		nap_ms(1);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.seq[0], 7);
	cqrs_mpsc_stats_get(x.r, &st);
	assert_int_equal(st.timeouts, 1);
	/* a comes back: its commit fails, and nothing it does reaches the consumer. */
	fill(d, 100, 99);
	assert_int_equal(cqrs_mpsc_commit(a, 100), CQRS_ESTALE);
	assert_int_equal(send(a, 3, 16, 8), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
	assert_int_equal(g.seq[1], 8);
	/* A late abort is harmless too. */
	assert_int_equal(cqrs_mpsc_try_claim(a, 1, 100, &d), 0);
	nap_ms(3);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0); /* starts the clock */
	nap_ms(3);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0); /* skips */
	assert_int_equal(cqrs_mpsc_abort(a), 0);
	assert_int_equal(atomic_load(&x.h->head), tail_of(&x));
	assert_int_equal(g.bad, 0);
	cqrs_mpsc_producer_close(a);
	cqrs_mpsc_producer_close(b);
	ring_free(&x);
}

/* A producer claims and dies before committing: the tail has moved, its
 * intent says how far, and the header word holds whatever an earlier lap
 * left there (here: garbage). */
static void play_dead_after_claim(struct ring *x, cqrs_mpsc_producer *p, uint32_t len, uint64_t *start)
{
	uint64_t t = tail_of(x), pad, n = CQRS_RING_ALIGN_UP(16 + len), left = x->cap - (t & (x->cap - 1));
	void *d;

	pad = n <= left ? 0 : left;
	assert_int_equal(cqrs_mpsc_try_claim(p, 1, len, &d), 0);
	assert_int_equal(tail_of(x), t + pad + n);
	assert_int_equal(atomic_load(&((struct mp_slot *)(x->h + 1))[0].intent), mp_intent(t, pad + n));
	atomic_store(ctl_of(x, t), UINT64_C(0x00ab00cd00ef0011));
	if (pad)
		atomic_store(ctl_of(x, t + pad), 0);
	*start = t;
}

static void test_dead_producer_between_claim_and_commit(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *a, *b;
	struct got g = { 0 };
	cqrs_mpsc_stats st;
	uint64_t t;
	int round;
	(void)state;

	ring_new(&x, 1024, 2, 1000000);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &a), 0); /* slot 0 */
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &b), 0);
	/* Several rounds so that some claims need padding at the end. */
	for (round = 0; round < 12; round++) {
		g.n = 0;
		play_dead_after_claim(&x, a, 150, &t);
		assert_int_equal(send(b, 2, 24, 100 + (uint64_t)round), 0);
		assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0);
		nap_ms(2);
		while (g.n == 0) {
			assert_true(cqrs_mpsc_poll(x.r, collect, &g, 0) >= 0);
			nap_ms(1);
		}
		assert_int_equal(g.n, 1);
		assert_int_equal(g.seq[0], 100 + (uint64_t)round);
		/* The late producer learns its claim was skipped. */
		assert_int_equal(cqrs_mpsc_commit(a, 150), CQRS_ESTALE);
	}
	cqrs_mpsc_stats_get(x.r, &st);
	assert_int_equal(st.timeouts, 12);
	assert_int_equal(st.corrupt, 0);
	assert_int_equal(g.bad, 0);
	cqrs_mpsc_producer_close(a);
	cqrs_mpsc_producer_close(b);
	ring_free(&x);
}

static void test_header_store_after_skip_is_refused(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *a, *b;
	struct got g = { 0 };
	uint64_t t, n = CQRS_RING_ALIGN_UP(16 + 40);
	void *d;
	(void)state;

	ring_new(&x, 4096, 2, 0); /* timeout 0: skip at first sight */
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &a), 0);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &b), 0);
	play_dead_after_claim(&x, a, 40, &t);
	assert_int_equal(send(b, 2, 24, 5), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
	assert_int_equal(cqrs_mpsc_commit(a, 0), CQRS_ESTALE);
	/* The consumer left a discard header for position t: the mark a late
	 * producer's header CAS finds. */
	assert_true(mp_mine(atomic_load(ctl_of(&x, t)), t));
	assert_int_equal(mp_state(atomic_load(ctl_of(&x, t))), MP_DISCARD);
	assert_int_equal(mp_bytes(atomic_load(ctl_of(&x, t))), n);
	/* The producer's side of the rule: a commit whose header position
	 * already holds a header for that position (the consumer got there
	 * first) gives up with CQRS_ESTALE instead of overwriting it. */
	t = tail_of(&x);
	assert_int_equal(cqrs_mpsc_try_claim(a, 1, 40, &d), 0);
	atomic_store(ctl_of(&x, t), mp_ctl(t, MP_DISCARD, n));
	((struct mp_rec *)(x.data + (t & 4095)))->len = 12345;
	assert_int_equal(cqrs_mpsc_commit(a, 40), CQRS_ESTALE);
	assert_int_equal(mp_state(atomic_load(ctl_of(&x, t))), MP_DISCARD);
	assert_int_equal(((struct mp_rec *)(x.data + (t & 4095)))->len, 12345); /* untouched */
	assert_int_equal(send(b, 2, 24, 6), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
	assert_int_equal(g.seq[1], 6);
	assert_int_equal(atomic_load(&x.h->head), tail_of(&x));
	cqrs_mpsc_producer_close(a);
	cqrs_mpsc_producer_close(b);
	ring_free(&x);
}

static void test_garbage_header_without_intent(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *b;
	struct got g = { 0 };
	cqrs_mpsc_stats st;
	uint64_t t;
	(void)state;

	ring_new(&x, 4096, 2, 0);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &b), 0);
	/* A hostile process moves the tail by 64 bytes and writes nothing. */
	t = tail_of(&x);
	memset(x.data + t, 0x5a, 64);
	atomic_store(&x.h->tail, t + 64);
	assert_int_equal(send(b, 2, 24, 9), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
	assert_int_equal(g.seq[0], 9);
	cqrs_mpsc_stats_get(x.r, &st);
	assert_int_equal(st.corrupt, 1);
	/* Garbage to the tail with nothing after it: skipped to the tail. */
	t = tail_of(&x);
	memset(x.data + (t & 4095), 0x33, 128);
	atomic_store(&x.h->tail, t + 128);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0);
	assert_int_equal(atomic_load(&x.h->head), t + 128);
	cqrs_mpsc_producer_close(b);
	ring_free(&x);
}

static void test_hostile_lengths(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *p;
	struct got g = { 0 };
	cqrs_mpsc_stats st;
	uint64_t t;
	void *d;
	(void)state;

	ring_new(&x, 1024, 1, 0);
	g.lo = x.data;
	g.hi = x.data + x.cap;
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &p), 0);
	/* A committed length longer than the claim. */
	t = tail_of(&x);
	assert_int_equal(send(p, 1, 32, 1), 0);
	((struct mp_rec *)(x.data + (t & 1023)))->len = 100000;
	assert_int_equal(send(p, 1, 32, 2), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
	assert_int_equal(g.seq[0], 2);
	cqrs_mpsc_stats_get(x.r, &st);
	assert_int_equal(st.corrupt, 1);
	/* A header with the right tag whose extent runs past the tail. */
	t = tail_of(&x);
	assert_int_equal(cqrs_mpsc_try_claim(p, 1, 32, &d), 0);
	atomic_store(ctl_of(&x, t), mp_ctl(t, MP_COMMITTED, 4096));
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0);
	assert_int_equal(cqrs_mpsc_commit(p, 32), CQRS_ESTALE);
	/* An extent that would cross the end of the data region. */
	while ((tail_of(&x) & 1023) < 900)
		assert_int_equal(send(p, 1, 8, 0), 0);
	assert_true(cqrs_mpsc_poll(x.r, collect, &g, 0) > 0);
	t = tail_of(&x);
	assert_int_equal(cqrs_mpsc_try_claim(p, 1, 8, &d), 0);
	atomic_store(&x.h->tail, t + 1024 - (t & 1023) + 64);
	atomic_store(ctl_of(&x, t), mp_ctl(t, MP_COMMITTED, 1024 - (t & 1023) + 64));
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 0);
	assert_int_equal(atomic_load(&x.h->head), tail_of(&x));
	cqrs_mpsc_abort(p);
	/* A tail more than a lap ahead is refused outright. */
	atomic_store(&x.h->tail, tail_of(&x) + 4096);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), CQRS_ECORRUPT);
	assert_int_equal(g.bad + g.oob, 0);
	cqrs_mpsc_producer_close(p);
	ring_free(&x);
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_fuzz_garbage_never_out_of_bounds(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *p;
	struct got g = { 0 };
	int iter, iters = getenv("CQRS_SAN") ? 3000 : 20000;
	(void)state;

	ring_new(&x, 1024, 2, 0);
	g.lo = x.data;
	g.hi = x.data + x.cap;
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &p), 0);
	for (iter = 0; iter < iters; iter++) {
		uint64_t head = atomic_load(&x.h->head), tail, k, n, polls;
		uint64_t r = rnd();

		/* some honest records */
		for (k = r % 4; k; k--)
			if (send(p, 1, (uint32_t)(rnd() % 120), iter) != 0)
				break;
		tail = tail_of(&x);
		/* then garbage: random words, forged headers, random extents */
		n = rnd() % 12;
		for (k = 0; k < n; k++) {
			uint64_t pos = (head + (rnd() % 1024)) & ~UINT64_C(7);
			uint64_t w;
			switch (rnd() % 4) {
			case 0: w = rnd(); break;
			case 1: w = mp_ctl(pos, (unsigned)(rnd() % 4), (rnd() % 2048) & ~UINT64_C(7)); break;
			case 2: w = mp_ctl(pos, MP_COMMITTED, 16 + (rnd() % 64) * 8); break;
			default: w = 0; break;
			}
			atomic_store(ctl_of(&x, pos), w);
			if (rnd() % 3 == 0 && (pos & 1023) <= 1024 - 16)
				((struct mp_rec *)(x.data + (pos & 1023)))->len = (uint32_t)rnd();
		}
		if (rnd() % 4 == 0) /* a producer moved the tail without writing */
			tail = head + ((rnd() % 1025) & ~UINT64_C(7));
		if (tail < tail_of(&x) && rnd() % 2)
			tail = tail_of(&x);
		atomic_store(&x.h->tail, tail);
		for (polls = 0; atomic_load(&x.h->head) != tail_of(&x); polls++) {
			assert_true(cqrs_mpsc_poll(x.r, collect, &g, 0) >= 0);
			assert_true(polls < 1000);
		}
	}
	assert_int_equal(g.oob, 0); /* payloads may be garbled: that is the point */
	assert_true(g.n > 0);
	{
		cqrs_mpsc_stats st;
		cqrs_mpsc_stats_get(x.r, &st);
		printf("fuzz: %d iterations, %d records delivered, %llu corrupt skipped\n", iters, g.n,
		       (unsigned long long)st.corrupt);
		assert_true(st.corrupt > (uint64_t)iters / 10);
	}
	cqrs_mpsc_producer_close(p);
	ring_free(&x);
}

static void test_producer_slots(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *a, *b, *c;
	pid_t pid;
	int status;
	(void)state;

	ring_new_ex(&x, 4096, 2, CQRS_MPSC_DEFAULT_TIMEOUT_NS, 1);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &a), 0);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &b), 0);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &c), CQRS_EFULL);
	cqrs_mpsc_producer_close(b);
	/* A child process takes the free slot and dies without closing it. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cqrs_mpsc *cr;
		cqrs_mpsc_producer *cp;
		if (cqrs_mpsc_attach(x.g.mem, x.g.size, &cr) || cqrs_mpsc_producer_open(cr, &cp))
			_exit(1);
		if (send(cp, 4, 16, 77))
			_exit(2);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The slot still names the dead child... */
	{
		struct mp_slot *s = (struct mp_slot *)(x.h + 1);
		assert_int_equal(atomic_load(&s[1].owner), (uint32_t)pid);
	}
	/* ...and is reclaimed: the child is dead and has no claim in flight. */
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &b), 0);
	{
		struct got g = { 0 };
		assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
		assert_int_equal(g.seq[0], 77);
	}
	cqrs_mpsc_producer_close(a);
	cqrs_mpsc_producer_close(b);
	ring_free(&x);
}

struct cons_arg {
	cqrs_mpsc *r;
	cqrs_ring_wait kind;
	int rc;
	struct got g;
};

static void *consumer_waits(void *p)
{
	struct cons_arg *c = p;

	c->rc = cqrs_mpsc_wait(c->r, c->kind, 10ull * 1000000000ull);
	if (c->rc == 0)
		c->rc = cqrs_mpsc_poll(c->r, collect, &c->g, 0);
	return NULL;
}

static void test_consumer_wait_strategies(void **state)
{
	cqrs_ring_wait kinds[] = { CQRS_WAIT_SPIN, CQRS_WAIT_YIELD, CQRS_WAIT_BLOCK };
	struct ring x;
	cqrs_mpsc_producer *p;
	size_t k;
	(void)state;

	ring_new(&x, 4096, 1, CQRS_RING_FOREVER);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &p), 0);
	for (k = 0; k < 3; k++) {
		struct cons_arg c = { x.r, kinds[k], -1, { 0 } };
		pthread_t t;
		void *d;
		assert_int_equal(pthread_create(&t, NULL, consumer_waits, &c), 0);
		nap_ms(10);
		/* A claim alone does not satisfy the wait; its commit does. */
		assert_int_equal(cqrs_mpsc_try_claim(p, 1, 16, &d), 0);
		nap_ms(10);
		fill(d, 16, 50 + k);
		assert_int_equal(cqrs_mpsc_commit(p, 16), 0);
		pthread_join(t, NULL);
		assert_int_equal(c.rc, 1);
		assert_int_equal(c.g.seq[0], 50 + k);
	}
	assert_int_equal(atomic_load(&x.h->data_waiters), 0);
	cqrs_mpsc_producer_close(p);
	ring_free(&x);
}

static void test_wait_notices_dead_claim(void **state)
{
	struct ring x;
	cqrs_mpsc_producer *a, *b;
	struct got g = { 0 };
	void *d;
	(void)state;

	ring_new(&x, 4096, 2, 20000000); /* 20 ms */
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &a), 0);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &b), 0);
	assert_int_equal(cqrs_mpsc_try_claim(a, 1, 16, &d), 0);
	assert_int_equal(send(b, 1, 16, 3), 0);
	/* The sleeping consumer wakes by itself when the claim times out. */
	assert_int_equal(cqrs_mpsc_wait(x.r, CQRS_WAIT_BLOCK, 10ull * 1000000000ull), 0);
	assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 0), 1);
	assert_int_equal(g.seq[0], 3);
	cqrs_mpsc_producer_close(a);
	cqrs_mpsc_producer_close(b);
	ring_free(&x);
}

struct prod_arg {
	cqrs_mpsc_producer *p;
	cqrs_ring_wait kind;
	int rc;
};

static void *producer_claims(void *v)
{
	struct prod_arg *a = v;
	void *d;

	a->rc = cqrs_mpsc_claim(a->p, 1, 48, a->kind, 10ull * 1000000000ull, &d);
	if (a->rc == 0) {
		fill(d, 48, 9);
		a->rc = cqrs_mpsc_commit(a->p, 48);
	}
	return NULL;
}

static void test_producer_wait_strategies(void **state)
{
	cqrs_ring_wait kinds[] = { CQRS_WAIT_SPIN, CQRS_WAIT_YIELD, CQRS_WAIT_BLOCK };
	struct ring x;
	cqrs_mpsc_producer *p;
	struct got g = { 0 };
	void *d;
	size_t k;
	(void)state;

	ring_new(&x, 1024, 1, CQRS_RING_FOREVER);
	assert_int_equal(cqrs_mpsc_producer_open(x.r, &p), 0);
	while (send(p, 1, 48, 0) == 0)
		;
	assert_int_equal(cqrs_mpsc_claim(p, 1, 48, CQRS_WAIT_BLOCK, 1000000, &d), -ETIMEDOUT);
	for (k = 0; k < 3; k++) {
		struct prod_arg a = { p, kinds[k], -1 };
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, producer_claims, &a), 0);
		nap_ms(10);
		assert_int_equal(cqrs_mpsc_poll(x.r, collect, &g, 2), 2);
		pthread_join(t, NULL);
		assert_int_equal(a.rc, 0);
	}
	assert_int_equal(atomic_load(&x.h->space_waiters), 0);
	cqrs_mpsc_producer_close(p);
	ring_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_footprint_init_attach),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_claim_commit_abort_rules),
		cmocka_unit_test(test_wrap_full_empty),
		cmocka_unit_test(test_claim_timeout_and_late_commit),
		cmocka_unit_test(test_dead_producer_between_claim_and_commit),
		cmocka_unit_test(test_header_store_after_skip_is_refused),
		cmocka_unit_test(test_garbage_header_without_intent),
		cmocka_unit_test(test_hostile_lengths),
		cmocka_unit_test(test_fuzz_garbage_never_out_of_bounds),
		cmocka_unit_test(test_producer_slots),
		cmocka_unit_test(test_consumer_wait_strategies),
		cmocka_unit_test(test_wait_notices_dead_claim),
		cmocka_unit_test(test_producer_wait_strategies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
