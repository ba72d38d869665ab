/*
 * tests/stress/stress_ring_mpsc.c - N producer threads into one MPSC ring,
 * one consumer; checks no loss, no duplicate, per-producer order and every
 * payload byte, and prints the counts.
 *
 *   stress_ring_mpsc [producers=4] [messages per producer=500000] [capacity=16384]
 *
 * Under CQRS_SAN (asan, tsan) the default message count drops tenfold.
 * Producers alternate the yield and block wait strategies (more threads
 * than cores), and every 997th claim is aborted and sent again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cqrs_ring.h"

static cqrs_mpsc *ring;
static unsigned nprod;
static uint64_t nmsg;
static _Atomic int failed;

static uint32_t msg_len(uint64_t seq)
{
	return (uint32_t)(16 + (seq % 13) * 8 + seq % 5);
}

static unsigned char pattern(unsigned id, uint64_t seq, uint32_t i)
{
	return (unsigned char)(seq * 31 + id * 7 + i);
}

static void *producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	cqrs_ring_wait kind = id % 2 ? CQRS_WAIT_BLOCK : CQRS_WAIT_YIELD;
	cqrs_mpsc_producer *p;
	uint64_t seq;
	int rc;

	rc = cqrs_mpsc_producer_open(ring, &p);
	if (rc) {
		fprintf(stderr, "producer %u: open: %s\n", id, cqrs_strerror(rc));
		failed = 1;
		return NULL;
	}
	for (seq = 0; seq < nmsg && !failed; seq++) {
		uint32_t len = msg_len(seq), i;
		unsigned char *d;

		rc = cqrs_mpsc_claim(p, id + 1, len, kind, CQRS_RING_FOREVER, (void **)&d);
		if (rc == 0 && seq % 997 == 3) {
			memset(d, 0xee, len);
			cqrs_mpsc_abort(p);
			rc = cqrs_mpsc_claim(p, id + 1, len, kind, CQRS_RING_FOREVER, (void **)&d);
		}
		if (rc) {
			fprintf(stderr, "producer %u: claim: %s\n", id, cqrs_strerror(rc));
			failed = 1;
			break;
		}
		memcpy(d, &seq, 8);
		memcpy(d + 8, &id, 4);
		memcpy(d + 12, &len, 4);
		for (i = 16; i < len; i++)
			d[i] = pattern(id, seq, i);
		rc = cqrs_mpsc_commit(p, len);
		if (rc) {
			fprintf(stderr, "producer %u: commit: %s\n", id, cqrs_strerror(rc));
			failed = 1;
			break;
		}
	}
	cqrs_mpsc_producer_close(p);
	return NULL;
}

struct check {
	uint64_t *next; /* per producer: next expected seq */
	uint64_t received, dup, lost, bad;
};

static int on_record(void *arg, uint32_t type, const void *data, uint32_t len)
{
	struct check *c = arg;
	const unsigned char *d = data;
	uint64_t seq;
	uint32_t id, l, i;

	c->received++;
	if (len < 16 || type == 0 || type > nprod) {
		c->bad++;
		return 0;
	}
	memcpy(&seq, d, 8);
	memcpy(&id, d + 8, 4);
	memcpy(&l, d + 12, 4);
	if (id != type - 1 || l != len || len != msg_len(seq)) {
		c->bad++;
		return 0;
	}
	for (i = 16; i < len; i++)
		if (d[i] != pattern(id, seq, i)) {
			c->bad++;
			return 0;
		}
	if (seq < c->next[id])
		c->dup++;
	else if (seq > c->next[id])
		c->lost += seq - c->next[id];
	if (seq >= c->next[id])
		c->next[id] = seq + 1;
	return 0;
}

static uint64_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

int main(int argc, char **argv)
{
	uint64_t cap = 16384, total, last_progress, last_count = 0;
	struct check c = { 0 };
	pthread_t *th;
	cqrs_mpsc_stats st;
	void *mem;
	size_t size;
	unsigned i;
	int rc, polls_waiting = 0;

	nprod = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
	nmsg = argc > 2 ? strtoull(argv[2], NULL, 10) : (getenv("CQRS_SAN") ? 50000 : 500000);
	cap = argc > 3 ? strtoull(argv[3], NULL, 10) : cap;
	if (nprod == 0 || nprod > 64 || nmsg == 0) {
		fprintf(stderr, "usage: %s [producers 1..64] [messages per producer] [capacity]\n", argv[0]);
		return 2;
	}
	size = cqrs_mpsc_footprint(cap, nprod);
	if (size == 0) {
		fprintf(stderr, "bad capacity %llu\n", (unsigned long long)cap);
		return 2;
	}
	mem = aligned_alloc(64, (size + 63) & ~(size_t)63);
	rc = mem ? cqrs_mpsc_init(mem, size, cap, nprod, CQRS_RING_FOREVER, &ring) : -ENOMEM;
	if (rc) {
		fprintf(stderr, "init: %s\n", cqrs_strerror(rc));
		return 1;
	}
	c.next = calloc(nprod, sizeof *c.next);
	th = calloc(nprod, sizeof *th);
	for (i = 0; i < nprod; i++)
		pthread_create(&th[i], NULL, producer, (void *)(uintptr_t)i);

	total = nprod * nmsg;
	last_progress = now_s();
	while (c.received < total && !failed) {
		rc = cqrs_mpsc_poll(ring, on_record, &c, 256);
		if (rc < 0) {
			fprintf(stderr, "poll: %s\n", cqrs_strerror(rc));
			failed = 1;
			break;
		}
		if (rc == 0) {
			/* alternate the consumer's strategies */
			cqrs_mpsc_wait(ring, polls_waiting++ % 2 ? CQRS_WAIT_BLOCK : CQRS_WAIT_YIELD, 100000000);
		}
		if (c.received != last_count) {
			last_count = c.received;
			last_progress = now_s();
		} else if (now_s() - last_progress > 60) {
			fprintf(stderr, "no progress for 60 s at %llu/%llu\n", (unsigned long long)c.received,
				(unsigned long long)total);
			failed = 1;
		}
	}
	for (i = 0; i < nprod; i++)
		pthread_join(th[i], NULL);
	/* anything left (there should be nothing) */
	while (cqrs_mpsc_poll(ring, on_record, &c, 0) > 0)
		;
	for (i = 0; i < nprod; i++)
		if (c.next[i] != nmsg)
			c.lost += nmsg - c.next[i];
	cqrs_mpsc_stats_get(ring, &st);
	printf("mpsc: %u producers x %llu msgs, capacity %llu: received %llu of %llu, lost %llu, dup %llu, "
	       "bad %llu, timeouts %llu, corrupt %llu\n",
	       nprod, (unsigned long long)nmsg, (unsigned long long)cap, (unsigned long long)c.received,
	       (unsigned long long)total, (unsigned long long)c.lost, (unsigned long long)c.dup,
	       (unsigned long long)c.bad, (unsigned long long)st.timeouts, (unsigned long long)st.corrupt);
	rc = failed || c.received != total || c.lost || c.dup || c.bad || st.timeouts || st.corrupt ||
	     st.records != total;
	cqrs_mpsc_close(ring);
	free(mem);
	free(c.next);
	free(th);
	printf("%s\n", rc ? "FAIL" : "ok");
	return rc;
}
