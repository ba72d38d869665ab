/*
 * tests/unit/test_ring_bcast.c - the broadcast ring: layout validation,
 * empty/full, batches, wrap-around with padding, gating by the slowest
 * consumer, consumers joining and leaving, framed publish, contiguous runs,
 * corruption (read through guard pages, never out of bounds) and the wait
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cqrs_ring.h"
#include "ringbuf/broadcast.h"

/* ---- helpers ----------------------------------------------------------- */

/* Ring memory whose last byte sits right before a PROT_NONE page (and a
 * PROT_NONE page before it): a read past either end faults. */
struct guarded {
	unsigned char *base;
	size_t maplen;
	void *mem;
	size_t size;
};

static void guarded_alloc(struct guarded *g, size_t size)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (size + pg - 1) / pg * pg;

	g->maplen = body + 2 * pg;
	g->base = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->base != MAP_FAILED);
	assert_int_equal(mprotect(g->base, pg, PROT_NONE), 0);
	assert_int_equal(mprotect(g->base + pg + body, pg, PROT_NONE), 0);
	g->mem = g->base + pg + (body - size);
	g->size = size;
	assert_int_equal((uintptr_t)g->mem % 64, 0);
}

static void guarded_free(struct guarded *g)
{
	munmap(g->base, g->maplen);
}

struct ring {
	struct guarded g;
	cqrs_bcast *r;
	struct bc_hdr *h;
	unsigned char *data;
};

static void ring_new(struct ring *x, uint64_t cap, uint32_t maxc)
{
	size_t sz = cqrs_bcast_footprint(cap, maxc);

	assert_true(sz > 0);
	guarded_alloc(&x->g, sz);
	assert_int_equal(cqrs_bcast_init(x->g.mem, sz, cap, maxc, &x->r), 0);
	x->h = x->g.mem;
	x->data = (unsigned char *)x->g.mem + x->h->hdr_size;
}

static void ring_free(struct ring *x)
{
	cqrs_bcast_close(x->r);
	guarded_free(&x->g);
}

/* A record: payload = seq (u64) then bytes (seq + i) & 0xff. */
static void fill(unsigned char *p, uint32_t len, uint64_t seq)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(seq + i);
	if (len >= 8)
		memcpy(p, &seq, 8);
}

static int put(cqrs_bcast *r, uint32_t type, uint32_t len, uint64_t seq)
{
	void *p;
	int rc = cqrs_bcast_try_claim(r, type, len, &p);

	if (rc == 0)
		fill(p, len, seq);
	return rc;
}

struct got {
	int n;
	uint32_t type[256];
	uint32_t len[256];
	uint64_t seq[256];
	int bad;
	int stop_after; /* 0: never */
};

static int collect(void *arg, uint32_t type, const void *data, uint32_t len)
{
	struct got *g = arg;
	unsigned char want[4096];
	uint64_t seq = 0;

	if (len >= 8)
		memcpy(&seq, data, 8);
	if (len >= 8 && len <= sizeof want) { /* shorter ones carry no seq to check against */
		fill(want, len, seq);
		if (memcmp(want, data, len))
			g->bad++;
	}
	if (g->n < 256) {
		g->type[g->n] = type;
		g->len[g->n] = len;
		g->seq[g->n] = seq;
	}
	g->n++;
	return g->stop_after && g->n >= g->stop_after;
}

/* ---- tests ------------------------------------------------------------- */

static void test_footprint_and_init_errors(void **state)
{
	static _Alignas(64) unsigned char buf[8192];
	cqrs_bcast *r;
	(void)state;

	assert_int_equal(cqrs_bcast_footprint(1000, 1), 0);   /* not a power of two */
	assert_int_equal(cqrs_bcast_footprint(512, 1), 0);    /* too small */
	assert_int_equal(cqrs_bcast_footprint(1024, 0), 0);   /* no consumer slot */
	assert_int_equal(cqrs_bcast_footprint(1024, 5000), 0);
	assert_int_equal(cqrs_bcast_footprint(1024, 2), sizeof(struct bc_hdr) + 2 * sizeof(struct bc_slot) + 1024);
	assert_int_equal(cqrs_bcast_init(buf + 8, sizeof buf - 8, 1024, 2, &r), -EINVAL);
	assert_int_equal(cqrs_bcast_init(buf, 1024, 1024, 2, &r), -EINVAL);
	assert_int_equal(cqrs_bcast_init(buf, sizeof buf, 1000, 2, &r), -EINVAL);
	assert_int_equal(cqrs_bcast_init(NULL, sizeof buf, 1024, 2, &r), -EINVAL);
}

static void test_attach_validates(void **state)
{
	struct ring x;
	cqrs_bcast *a;
	uint64_t cap;
	(void)state;

	ring_new(&x, 4096, 4);
	assert_int_equal(put(x.r, 1, 16, 1), 0);
	cqrs_bcast_publish(x.r);
	assert_int_equal(cqrs_bcast_attach(x.g.mem, x.g.size, &a), 0);
	assert_int_equal(cqrs_bcast_tail(a), CQRS_BCAST_REC_SIZE(16));
	assert_int_equal(cqrs_bcast_capacity(a), 4096);
	cqrs_bcast_close(a);

	assert_int_equal(cqrs_bcast_attach(x.g.mem, x.g.size - 1, &a), CQRS_EFORMAT);
	assert_int_equal(cqrs_bcast_attach(x.g.mem, 100, &a), CQRS_EFORMAT);
	x.h->version++;
	assert_int_equal(cqrs_bcast_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	x.h->version--;
	cap = x.h->capacity;
	x.h->capacity = 8192;
	assert_int_equal(cqrs_bcast_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	x.h->capacity = 3000;
	assert_int_equal(cqrs_bcast_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	x.h->capacity = cap;
	x.h->hdr_size += 128;
	assert_int_equal(cqrs_bcast_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	x.h->hdr_size -= 128;
	atomic_store(&x.h->tail, 12);
	assert_int_equal(cqrs_bcast_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	atomic_store(&x.h->tail, CQRS_BCAST_REC_SIZE(16));
	atomic_store(&x.h->magic, 0);
	assert_int_equal(cqrs_bcast_attach(x.g.mem, x.g.size, &a), CQRS_EFORMAT);
	assert_true(strstr(cqrs_last_error(), "magic") != NULL);
	ring_free(&x);
}

static void test_empty(void **state)
{
	struct ring x;
	cqrs_bcast_consumer *c;
	struct got g = { 0 };
	const void *run;
	size_t nb;
	(void)state;

	ring_new(&x, 1024, 2);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &c), 0);
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), 0);
	assert_int_equal(cqrs_bcast_poll(c, &run, &nb), -EAGAIN);
	assert_int_equal(cqrs_bcast_wait(c, CQRS_WAIT_SPIN, 0), -ETIMEDOUT);
	assert_int_equal(cqrs_bcast_wait(c, CQRS_WAIT_YIELD, 1000000), -ETIMEDOUT);
	assert_int_equal(cqrs_bcast_wait(c, CQRS_WAIT_BLOCK, 2000000), -ETIMEDOUT);
	assert_int_equal(atomic_load(&x.h->data_waiters), 0);
	/* publish with nothing claimed is a no-op */
	cqrs_bcast_publish(x.r);
	assert_int_equal(cqrs_bcast_tail(x.r), 0);
	assert_int_equal(cqrs_bcast_consumer_remove(c), 0);
	ring_free(&x);
}

static void test_roundtrip_sizes_and_types(void **state)
{
	static const uint32_t lens[] = { 0, 1, 7, 8, 9, 63, 64, 100, 500 };
	struct ring x;
	cqrs_bcast_consumer *c;
	struct got g = { 0 };
	uint64_t pos = 0;
	size_t i;
	(void)state;

	ring_new(&x, 4096, 2);
	assert_int_equal(cqrs_bcast_consumer_add(x.r, 0, &c), 0);
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		unsigned char buf[512];
		fill(buf, lens[i], 100 + i);
		assert_int_equal(cqrs_bcast_offer(x.r, (uint32_t)(10 + i), buf, lens[i]), 0);
		pos += CQRS_BCAST_REC_SIZE(lens[i]);
		assert_int_equal(cqrs_bcast_tail(x.r), pos);
	}
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), (int)(sizeof lens / sizeof lens[0]));
	assert_int_equal(g.bad, 0);
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		assert_int_equal(g.type[i], 10 + i);
		assert_int_equal(g.len[i], lens[i]);
		if (lens[i] >= 8)
			assert_int_equal(g.seq[i], 100 + i);
	}
	assert_int_equal(cqrs_bcast_consumer_position(c), pos);
	assert_int_equal(atomic_load(&bc_slots(x.h)[0].head), pos);
	cqrs_bcast_consumer_remove(c);
	ring_free(&x);
}

static void test_invalid_claims(void **state)
{
	struct ring x;
	void *p;
	(void)state;

	ring_new(&x, 1024, 1);
	assert_int_equal(cqrs_bcast_try_claim(x.r, CQRS_BCAST_TYPE_PAD, 8, &p), -EINVAL);
	assert_int_equal(cqrs_bcast_try_claim(x.r, 1, 512 - 8 + 1, &p), -EMSGSIZE);
	assert_int_equal(cqrs_bcast_try_claim(x.r, 1, UINT32_MAX, &p), -EMSGSIZE);
	assert_int_equal(cqrs_bcast_try_claim(x.r, 1, 512 - 8, &p), 0); /* exactly capacity/2 */
	cqrs_bcast_publish(x.r);
	ring_free(&x);
}

static void test_batch_visible_only_after_publish(void **state)
{
	struct ring x;
	cqrs_bcast_consumer *c;
	struct got g = { 0 };
	int i;
	(void)state;

	ring_new(&x, 4096, 2);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &c), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(put(x.r, 1, 24, (uint64_t)i), 0);
	assert_int_equal(cqrs_bcast_tail(x.r), 0);
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), 0);
	cqrs_bcast_publish(x.r);
	assert_int_equal(cqrs_bcast_tail(x.r), 10 * CQRS_BCAST_REC_SIZE(24));
	/* at most 3 */
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 3), 3);
	/* the handler stops the batch after its 5th record overall */
	g.stop_after = 5;
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), 2);
	g.stop_after = 0;
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), 5);
	assert_int_equal(g.n, 10);
	for (i = 0; i < 10; i++)
		assert_int_equal(g.seq[i], (uint64_t)i);
	assert_int_equal(g.bad, 0);
	cqrs_bcast_consumer_remove(c);
	ring_free(&x);
}

static void test_wrap_around_with_padding(void **state)
{
	struct ring x;
	cqrs_bcast_consumer *c;
	struct got g = { 0 };
	uint64_t expect_pos = 0, seq;
	int pads = 0;
	(void)state;

	ring_new(&x, 1024, 1);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &c), 0);
	/* 208-byte records: 4 fit before the end (832), the 5th needs padding. */
	for (seq = 0; seq < 200; seq++) {
		uint64_t left = 1024 - (expect_pos & 1023);
		if (left < CQRS_BCAST_REC_SIZE(200)) {
			expect_pos += left;
			pads++;
		}
		assert_int_equal(put(x.r, 3, 200, seq), 0);
		cqrs_bcast_publish(x.r);
		expect_pos += CQRS_BCAST_REC_SIZE(200);
		assert_int_equal(cqrs_bcast_tail(x.r), expect_pos);
		g.n = 0;
		assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), 1);
		assert_int_equal(g.seq[0], seq);
		assert_int_equal(g.len[0], 200);
	}
	assert_true(pads > 10);
	assert_int_equal(g.bad, 0);
	/* A record that ends exactly at the end of the data region needs no pad:
	 * fill the rest of this lap with one record. */
	{
		uint64_t left = 1024 - (expect_pos & 1023);
		if (left >= 16 && left <= 512) {
			assert_int_equal(put(x.r, 4, (uint32_t)(left - 8), 999), 0);
			cqrs_bcast_publish(x.r);
			assert_int_equal(cqrs_bcast_tail(x.r), expect_pos + left);
			assert_int_equal(x.data[(expect_pos & 1023) + 4], 4); /* type byte */
		}
	}
	cqrs_bcast_consumer_remove(c);
	ring_free(&x);
}

static void test_full_and_gating_by_slowest(void **state)
{
	struct ring x;
	cqrs_bcast_consumer *a, *b;
	struct got g = { 0 };
	int n = 0;
	(void)state;

	ring_new(&x, 1024, 4);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &a), 0);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &b), 0);
	/* 64-byte records: 16 fill the ring exactly. */
	while (put(x.r, 1, 56, (uint64_t)n) == 0) {
		n++;
		cqrs_bcast_publish(x.r);
	}
	assert_int_equal(n, 16);
	assert_int_equal(put(x.r, 1, 56, 99), -EAGAIN);
	/* A drains everything: B still gates. */
	assert_int_equal(cqrs_bcast_consume_batch(a, collect, &g, 0), 16);
	assert_int_equal(put(x.r, 1, 56, 99), -EAGAIN);
	/* B releases 4: room for exactly 4. */
	assert_int_equal(cqrs_bcast_consume_batch(b, collect, &g, 4), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(put(x.r, 1, 56, (uint64_t)(16 + i)), 0);
		cqrs_bcast_publish(x.r);
	}
	assert_int_equal(put(x.r, 1, 56, 99), -EAGAIN);
	/* Removing the slowest consumer ungates the producer. */
	assert_int_equal(cqrs_bcast_consumer_remove(b), 0);
	assert_int_equal(cqrs_bcast_consume_batch(a, collect, &g, 0), 4);
	assert_int_equal(put(x.r, 1, 56, 20), 0);
	cqrs_bcast_publish(x.r);
	assert_int_equal(g.bad, 0);
	cqrs_bcast_consumer_remove(a);
	ring_free(&x);
}

static void test_unpublished_batch_cannot_lap_itself(void **state)
{
	struct ring x;
	int n = 0;
	(void)state;

	ring_new(&x, 1024, 1);
	/* No consumers: the producer is gated only by its own unpublished claims. */
	while (put(x.r, 1, 56, 0) == 0)
		n++;
	assert_int_equal(n, 16);
	assert_int_equal(put(x.r, 1, 56, 0), -ENOSPC);
	cqrs_bcast_publish(x.r);
	assert_int_equal(put(x.r, 1, 56, 0), 0); /* nobody reads: it may lap */
	cqrs_bcast_publish(x.r);
	ring_free(&x);
}

static void test_add_remove_consumers(void **state)
{
	struct ring x;
	cqrs_bcast_consumer *a, *b, *c, *d, *e, *f;
	struct got g = { 0 };
	uint64_t pos2 = 0;
	int i;
	(void)state;

	ring_new(&x, 1024, 3);
	assert_int_equal(cqrs_bcast_consumer_add(x.r, 0, &a), 0);
	for (i = 0; i < 5; i++) {
		if (i == 2)
			pos2 = cqrs_bcast_tail(x.r);
		assert_int_equal(put(x.r, 1, 40, (uint64_t)i), 0);
		cqrs_bcast_publish(x.r);
	}
	/* At the tail: sees only what comes next. */
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &b), 0);
	assert_int_equal(cqrs_bcast_consume_batch(b, collect, &g, 0), 0);
	/* At a known record position: sees from record 2 on. */
	assert_int_equal(cqrs_bcast_consumer_add(x.r, pos2, &c), 0);
	/* Slots are full. */
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &d), CQRS_EFULL);
	assert_int_equal(put(x.r, 1, 40, 5), 0);
	cqrs_bcast_publish(x.r);
	assert_int_equal(cqrs_bcast_consume_batch(b, collect, &g, 0), 1);
	assert_int_equal(g.seq[0], 5);
	g.n = 0;
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), 4);
	assert_int_equal(g.seq[0], 2);
	assert_int_equal(g.seq[3], 5);
	g.n = 0;
	assert_int_equal(cqrs_bcast_consume_batch(a, collect, &g, 0), 6);
	/* Removing frees the slot; bad positions are refused. */
	assert_int_equal(cqrs_bcast_consumer_remove(b), 0);
	assert_int_equal(cqrs_bcast_consumer_add(x.r, cqrs_bcast_tail(x.r) + 8, &d), -ERANGE);
	assert_int_equal(cqrs_bcast_consumer_add(x.r, 4, &d), -ERANGE);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &d), 0);
	cqrs_bcast_consumer_remove(a);
	cqrs_bcast_consumer_remove(c);
	cqrs_bcast_consumer_remove(d);
	/* Nobody reads now: the producer laps the ring twice; the start is gone. */
	for (i = 0; i < 48; i++) {
		assert_int_equal(put(x.r, 1, 40, (uint64_t)i), 0);
		cqrs_bcast_publish(x.r);
	}
	assert_int_equal(cqrs_bcast_consumer_add(x.r, 0, &e), -ERANGE);
	assert_int_equal(cqrs_bcast_consumer_add(x.r, pos2, &e), -ERANGE);
	/* The tail is always fine, and a consumer there gates again. */
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &e), 0);
	assert_int_equal(cqrs_bcast_consumer_add(x.r, cqrs_bcast_consumer_position(e), &f), 0);
	for (i = 0; i < 40; i++)
		if (put(x.r, 1, 40, (uint64_t)i) == 0)
			cqrs_bcast_publish(x.r);
		else
			break;
	assert_true(i >= 1024 / 48 - 1 && i <= 1024 / 48); /* one lap, less padding */
	cqrs_bcast_consumer_remove(e);
	cqrs_bcast_consumer_remove(f);
	ring_free(&x);
}

static void test_poll_release_runs(void **state)
{
	struct ring x;
	cqrs_bcast_consumer *c;
	const void *run;
	size_t nb;
	uint64_t seq = 0, got = 0;
	int round;
	(void)state;

	ring_new(&x, 1024, 1);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &c), 0);
	for (round = 0; round < 50; round++) {
		int k;
		for (k = 0; k < 3; k++) {
			assert_int_equal(put(x.r, 7, 80, seq++), 0);
		}
		cqrs_bcast_publish(x.r);
		while (cqrs_bcast_poll(c, &run, &nb) == 0) {
			const unsigned char *p = run;
			size_t off = 0;
			assert_true(nb > 0);
			/* The run is contiguous inside the data region. */
			assert_true(p >= x.data && p + nb <= x.data + 1024);
			while (off < nb) {
				cqrs_ring_rec h;
				uint64_t s;
				memcpy(&h, p + off, sizeof h);
				assert_int_equal(h.type, 7);
				assert_int_equal(h.len, 80);
				memcpy(&s, p + off + 8, 8);
				assert_int_equal(s, got);
				got++;
				off += CQRS_BCAST_REC_SIZE(h.len);
			}
			assert_int_equal(off, nb);
			assert_int_equal(cqrs_bcast_release(c, nb), 0);
		}
	}
	assert_int_equal(got, seq);
	assert_int_equal(cqrs_bcast_release(c, 8), -EINVAL);
	cqrs_bcast_consumer_remove(c);
	ring_free(&x);
}

static void test_poll_run_stops_at_end_of_data(void **state)
{
	struct ring x;
	cqrs_bcast_consumer *c;
	const void *run;
	size_t nb;
	int i;
	(void)state;

	ring_new(&x, 1024, 1);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &c), 0);
	for (i = 0; i < 12; i++)
		assert_int_equal(put(x.r, 1, 56, (uint64_t)i), 0);
	cqrs_bcast_publish(x.r);
	assert_int_equal(cqrs_bcast_poll(c, &run, &nb), 0);
	assert_int_equal(nb, 12 * 64);
	assert_int_equal(cqrs_bcast_release(c, nb), 0);
	/* 64-byte records tile the data region exactly: no padding record marks
	 * its end, yet a run must stop there. */
	for (i = 0; i < 8; i++)
		assert_int_equal(put(x.r, 1, 56, (uint64_t)(12 + i)), 0);
	cqrs_bcast_publish(x.r);
	assert_int_equal(cqrs_bcast_tail(x.r), 20 * 64);
	assert_int_equal(cqrs_bcast_poll(c, &run, &nb), 0);
	assert_ptr_equal(run, x.data + 768);
	assert_int_equal(nb, 256);
	assert_int_equal(cqrs_bcast_release(c, nb), 0);
	assert_int_equal(cqrs_bcast_poll(c, &run, &nb), 0);
	assert_ptr_equal(run, x.data);
	assert_int_equal(nb, 256);
	assert_int_equal(cqrs_bcast_release(c, nb), 0);
	assert_int_equal(cqrs_bcast_poll(c, &run, &nb), -EAGAIN);
	cqrs_bcast_consumer_remove(c);
	ring_free(&x);
}

static void test_publish_framed(void **state)
{
	struct ring x;
	cqrs_bcast_consumer *c;
	struct got g = { 0 };
	unsigned char buf[512];
	size_t off = 0;
	int i;
	(void)state;

	ring_new(&x, 1024, 1);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &c), 0);
	for (i = 0; i < 3; i++) {
		cqrs_ring_rec h = { (uint32_t)(20 + i * 10), (uint32_t)(40 + i) };
		memset(buf + off, 0, CQRS_BCAST_REC_SIZE(h.len));
		memcpy(buf + off, &h, sizeof h);
		fill(buf + off + 8, h.len, (uint64_t)(70 + i));
		off += CQRS_BCAST_REC_SIZE(h.len);
	}
	/* A claimed record before the run goes out with it. */
	assert_int_equal(put(x.r, 9, 16, 69), 0);
	assert_int_equal(cqrs_bcast_publish_framed(x.r, buf, off, CQRS_WAIT_SPIN, 0), 0);
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), 4);
	assert_int_equal(g.type[0], 9);
	for (i = 0; i < 3; i++) {
		assert_int_equal(g.type[i + 1], 40 + i);
		assert_int_equal(g.seq[i + 1], 70 + i);
	}
	assert_int_equal(g.bad, 0);
	/* Unaligned source is fine. */
	{
		unsigned char ub[600];
		memcpy(ub + 3, buf, off);
		assert_int_equal(cqrs_bcast_publish_framed(x.r, ub + 3, off, CQRS_WAIT_SPIN, 0), 0);
		assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), 3);
	}
	/* Malformed runs. */
	assert_int_equal(cqrs_bcast_publish_framed(x.r, buf, off - 8, CQRS_WAIT_SPIN, 0), CQRS_EFORMAT);
	assert_int_equal(cqrs_bcast_publish_framed(x.r, buf, off + 4, CQRS_WAIT_SPIN, 0), CQRS_EFORMAT);
	{
		cqrs_ring_rec bad = { 8, CQRS_BCAST_TYPE_PAD };
		unsigned char b2[16] = { 0 };
		memcpy(b2, &bad, sizeof bad);
		assert_int_equal(cqrs_bcast_publish_framed(x.r, b2, 16, CQRS_WAIT_SPIN, 0), CQRS_EFORMAT);
		bad.type = 1;
		bad.len = UINT32_MAX;
		memcpy(b2, &bad, sizeof bad);
		assert_int_equal(cqrs_bcast_publish_framed(x.r, b2, 16, CQRS_WAIT_SPIN, 0), CQRS_EFORMAT);
	}
	{
		static unsigned char big[520];
		cqrs_ring_rec h = { 512, 1 };
		memcpy(big, &h, sizeof h);
		assert_int_equal(cqrs_bcast_publish_framed(x.r, big, 520, CQRS_WAIT_SPIN, 0), -EMSGSIZE);
	}
	/* The ring is full until the consumer releases: the framed publish times out. */
	for (i = 0; i < 20; i++)
		if (cqrs_bcast_publish_framed(x.r, buf, off, CQRS_WAIT_YIELD, 1000000) != 0)
			break;
	assert_int_equal(cqrs_bcast_publish_framed(x.r, buf, off, CQRS_WAIT_YIELD, 1000000), -ETIMEDOUT);
	assert_int_equal(cqrs_bcast_publish_framed(x.r, NULL, 0, CQRS_WAIT_SPIN, 0), 0);
	cqrs_bcast_consumer_remove(c);
	ring_free(&x);
}

static void test_corruption_never_reads_out_of_bounds(void **state)
{
	struct ring x;
	cqrs_bcast_consumer *c;
	struct got g = { 0 };
	const void *run;
	size_t nb;
	uint64_t idx;
	int i;
	(void)state;

	ring_new(&x, 1024, 1);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &c), 0);
	for (i = 0; i < 15; i++)
		assert_int_equal(put(x.r, 1, 56, (uint64_t)i), 0);
	cqrs_bcast_publish(x.r);
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 2), 2);
	/* Record 2's length now claims the rest of memory. */
	idx = cqrs_bcast_consumer_position(c) & 1023;
	((cqrs_ring_rec *)(x.data + idx))->len = 0xfffffff0u;
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), CQRS_ECORRUPT);
	assert_int_equal(cqrs_bcast_poll(c, &run, &nb), CQRS_ECORRUPT);
	/* A length that stays inside the data region but passes the tail. */
	((cqrs_ring_rec *)(x.data + idx))->len = 1000 - (uint32_t)idx;
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), CQRS_ECORRUPT);
	/* A padding record that does not end at the end of the data region. */
	((cqrs_ring_rec *)(x.data + idx))->len = 56;
	((cqrs_ring_rec *)(x.data + idx))->type = CQRS_BCAST_TYPE_PAD;
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), CQRS_ECORRUPT);
	((cqrs_ring_rec *)(x.data + idx))->type = 1;
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), 13);
	/* A tail that runs more than a lap ahead. */
	atomic_store(&x.h->tail, cqrs_bcast_consumer_position(c) + 2048);
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), CQRS_ECORRUPT);
	/* A consumer joined at a position that is not a record boundary reads
	 * garbage headers as corruption. */
	atomic_store(&x.h->tail, 15 * 64);
	cqrs_bcast_consumer_remove(c);
	assert_int_equal(cqrs_bcast_consumer_add(x.r, 15 * 64 - 24, &c), 0);
	memset(x.data + 15 * 64 - 24, 0xff, 8);
	assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 0), CQRS_ECORRUPT);
	cqrs_bcast_consumer_remove(c);
	ring_free(&x);
}

/* ---- wait strategies with threads -------------------------------------- */

struct waiter_arg {
	cqrs_bcast_consumer *c;
	cqrs_ring_wait kind;
	int rc;
	struct got g;
};

static void *consumer_waits(void *p)
{
	struct waiter_arg *w = p;

	w->rc = cqrs_bcast_wait(w->c, w->kind, 10ull * 1000000000ull);
	if (w->rc == 0)
		w->rc = cqrs_bcast_consume_batch(w->c, collect, &w->g, 0);
	return NULL;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void test_consumer_wait_strategies(void **state)
{
	cqrs_ring_wait kinds[] = { CQRS_WAIT_SPIN, CQRS_WAIT_YIELD, CQRS_WAIT_BLOCK };
	struct ring x;
	size_t k;
	(void)state;

	ring_new(&x, 1024, 1);
	for (k = 0; k < 3; k++) {
		struct waiter_arg w = { 0 };
		pthread_t t;
		w.kind = kinds[k];
		assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &w.c), 0);
		assert_int_equal(pthread_create(&t, NULL, consumer_waits, &w), 0);
		nap_ms(20);
		assert_int_equal(put(x.r, 2, 32, 42 + k), 0);
		cqrs_bcast_publish(x.r);
		pthread_join(t, NULL);
		assert_int_equal(w.rc, 1);
		assert_int_equal(w.g.seq[0], 42 + k);
		cqrs_bcast_consumer_remove(w.c);
	}
	assert_int_equal(atomic_load(&x.h->data_waiters), 0);
	ring_free(&x);
}

struct producer_arg {
	cqrs_bcast *r;
	cqrs_ring_wait kind;
	int rc;
};

static void *producer_claims(void *p)
{
	struct producer_arg *a = p;
	void *d;

	a->rc = cqrs_bcast_claim(a->r, 1, 56, a->kind, 10ull * 1000000000ull, &d);
	if (a->rc == 0) {
		fill(d, 56, 1000);
		cqrs_bcast_publish(a->r);
	}
	return NULL;
}

static void test_producer_wait_strategies(void **state)
{
	cqrs_ring_wait kinds[] = { CQRS_WAIT_SPIN, CQRS_WAIT_YIELD, CQRS_WAIT_BLOCK };
	struct ring x;
	cqrs_bcast_consumer *c;
	struct got g = { 0 };
	void *d;
	size_t k;
	(void)state;

	ring_new(&x, 1024, 1);
	assert_int_equal(cqrs_bcast_consumer_add_at_tail(x.r, &c), 0);
	while (put(x.r, 1, 56, 0) == 0)
		cqrs_bcast_publish(x.r);
	assert_int_equal(cqrs_bcast_claim(x.r, 1, 56, CQRS_WAIT_BLOCK, 1000000, &d), -ETIMEDOUT);
	for (k = 0; k < 3; k++) {
		struct producer_arg a = { x.r, kinds[k], -1 };
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, producer_claims, &a), 0);
		nap_ms(20);
		assert_int_equal(cqrs_bcast_consume_batch(c, collect, &g, 1), 1);
		pthread_join(t, NULL);
		assert_int_equal(a.rc, 0);
	}
	/* Removing the gating consumer also wakes a sleeping producer. */
	{
		struct producer_arg a = { x.r, CQRS_WAIT_BLOCK, -1 };
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, producer_claims, &a), 0);
		nap_ms(20);
		cqrs_bcast_consumer_remove(c);
		pthread_join(t, NULL);
		assert_int_equal(a.rc, 0);
	}
	assert_int_equal(atomic_load(&x.h->space_waiters), 0);
	ring_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_footprint_and_init_errors),
		cmocka_unit_test(test_attach_validates),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_roundtrip_sizes_and_types),
		cmocka_unit_test(test_invalid_claims),
		cmocka_unit_test(test_batch_visible_only_after_publish),
		cmocka_unit_test(test_wrap_around_with_padding),
		cmocka_unit_test(test_full_and_gating_by_slowest),
		cmocka_unit_test(test_unpublished_batch_cannot_lap_itself),
		cmocka_unit_test(test_add_remove_consumers),
		cmocka_unit_test(test_poll_release_runs),
		cmocka_unit_test(test_poll_run_stops_at_end_of_data),
		cmocka_unit_test(test_publish_framed),
		cmocka_unit_test(test_corruption_never_reads_out_of_bounds),
		cmocka_unit_test(test_consumer_wait_strategies),
		cmocka_unit_test(test_producer_wait_strategies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
