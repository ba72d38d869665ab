/*
 * tests/stress/stress_ring_bcast.c - one producer, N consumers on a
 * broadcast ring, with consumers leaving and joining (at the tail and at a
 * position another consumer reported) while the producer runs. Every
 * consumer checks that it sees a gap-free, duplicate-free, in-order run of
 * sequence numbers with intact payloads, up to the end record; prints the
 * counts.
 *
 *   stress_ring_bcast [consumers=3] [records=1000000] [capacity=65536]
 *
 * Under CQRS_SAN (asan, tsan) the default record count drops tenfold. More
 * threads than cores: everyone waits with the yield or block strategy.
 * Batches of 1..32 records; every 50th batch goes through publish_framed;
 * consumer 0 reads with poll/release, the others with consume_batch.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cqrs_ring.h"

enum { T_DATA = 1, T_END = 2 };

static cqrs_bcast *ring;
static uint64_t nrec, cap;
static _Atomic int failed;
static _Atomic uint64_t published; /* records published so far */

/* Consumer 1 reports (position, seq there) for the joiner at a position. */
static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t snap_pos, snap_seq;
static int snap_valid;

static uint32_t rec_len(uint64_t seq)
{
	return (uint32_t)(8 + (seq * 2654435761u) % 200);
}

static unsigned char pattern(uint64_t seq, uint32_t i)
{
	return (unsigned char)(seq + i * 13);
}

static void write_rec(unsigned char *d, uint64_t seq, uint32_t len)
{
	uint32_t i;

	memcpy(d, &seq, 8);
	for (i = 8; i < len; i++)
		d[i] = pattern(seq, i);
}

static void *producer(void *arg)
{
	uint64_t seq = 0, batches = 0, rnd = 88172645463325252ull;
	unsigned char framed[32 * 224];
	int rc;
	(void)arg;

	while (seq < nrec && !failed) {
		unsigned n, k;
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		n = 1 + (unsigned)(rnd % 32);
		if (n > nrec - seq)
			n = (unsigned)(nrec - seq);
		if (++batches % 50 == 0) {
			size_t off = 0;
			for (k = 0; k < n && off + 224 <= cap / 2; k++, seq++) {
				cqrs_ring_rec h = { rec_len(seq), T_DATA };
				memcpy(framed + off, &h, sizeof h);
				write_rec(framed + off + sizeof h, seq, h.len);
				off += CQRS_BCAST_REC_SIZE(h.len);
			}
			rc = cqrs_bcast_publish_framed(ring, framed, off, CQRS_WAIT_BLOCK, CQRS_RING_FOREVER);
		} else {
			for (k = 0, rc = 0; k < n && rc == 0; k++, seq++) {
				void *d;
				rc = cqrs_bcast_claim(ring, T_DATA, rec_len(seq),
						      seq % 2 ? CQRS_WAIT_BLOCK : CQRS_WAIT_YIELD, CQRS_RING_FOREVER, &d);
				if (rc == -ENOSPC) { /* the batch fills the ring: publish what we have */
					cqrs_bcast_publish(ring);
					rc = cqrs_bcast_claim(ring, T_DATA, rec_len(seq), CQRS_WAIT_BLOCK,
							      CQRS_RING_FOREVER, &d);
				}
				if (rc == 0)
					write_rec(d, seq, rec_len(seq));
			}
			cqrs_bcast_publish(ring);
		}
		if (rc) {
			fprintf(stderr, "producer: %s\n", cqrs_strerror(rc));
			failed = 1;
			return NULL;
		}
		/* release: read by joiner threads deciding when to join. */
		atomic_store_explicit(&published, seq, memory_order_release);
	}
	{
		void *d;
		rc = cqrs_bcast_claim(ring, T_END, 8, CQRS_WAIT_BLOCK, CQRS_RING_FOREVER, &d);
		if (rc == 0) {
			memcpy(d, &seq, 8);
			cqrs_bcast_publish(ring);
		} else {
			failed = 1;
		}
	}
	return NULL;
}

enum role { R_FULL, R_LEAVER, R_JOIN_TAIL, R_JOIN_POS };

struct consumer {
	int id;
	enum role role;
	cqrs_ring_wait kind;
	int use_poll;
	cqrs_bcast_consumer *c;
	uint64_t first, next, count, bad, gaps;
	int saw_end;
};

static int on_record(void *arg, uint32_t type, const void *data, uint32_t len)
{
	struct consumer *k = arg;
	const unsigned char *d = data;
	uint64_t seq;
	uint32_t i;

	if (len < 8) {
		k->bad++;
		return 1;
	}
	memcpy(&seq, d, 8);
	if (k->count == 0 && !k->saw_end && k->next == UINT64_MAX)
		k->first = k->next = seq;
	if (type == T_END) {
		if (seq != nrec || k->next != nrec)
			k->gaps++;
		k->saw_end = 1;
		return 1;
	}
	if (type != T_DATA || len != rec_len(seq)) {
		k->bad++;
		return 1;
	}
	for (i = 8; i < len; i++)
		if (d[i] != pattern(seq, i)) {
			k->bad++;
			return 1;
		}
	if (seq != k->next)
		k->gaps++;
	k->next = seq + 1;
	k->count++;
	return 0;
}

static int consume_some(struct consumer *k)
{
	if (k->use_poll) {
		const void *run;
		size_t nb, off = 0;
		int rc = cqrs_bcast_poll(k->c, &run, &nb);
		if (rc)
			return rc == -EAGAIN ? 0 : rc;
		while (off < nb) {
			const unsigned char *p = (const unsigned char *)run + off;
			cqrs_ring_rec h;
			memcpy(&h, p, sizeof h);
			off += CQRS_BCAST_REC_SIZE(h.len);
			if (on_record(k, h.type, p + sizeof h, h.len))
				break;
		}
		rc = cqrs_bcast_release(k->c, off);
		return rc ? rc : 1;
	}
	return cqrs_bcast_consume_batch(k->c, on_record, k, 64);
}

static void nap_us(long us)
{
	struct timespec ts = { 0, us * 1000L };
	nanosleep(&ts, NULL);
}

static void *consumer(void *arg)
{
	struct consumer *k = arg;
	int rc;

	k->next = UINT64_MAX;
	if (k->role == R_JOIN_TAIL || k->role == R_JOIN_POS) {
		/* Join once a quarter of the records is out. */
		while (atomic_load_explicit(&published, memory_order_acquire) < nrec / 4 && !failed)
			nap_us(200);
		for (int tries = 0;; tries++) {
			if (tries > 200000) {
				rc = -ETIMEDOUT;
				break;
			}
			if (k->role == R_JOIN_TAIL) {
				rc = cqrs_bcast_consumer_add_at_tail(ring, &k->c);
			} else {
				uint64_t pos = 0, seq = 0;
				int valid;
				pthread_mutex_lock(&snap_lock);
				valid = snap_valid;
				pos = snap_pos;
				seq = snap_seq;
				pthread_mutex_unlock(&snap_lock);
				if (!valid) {
					nap_us(100);
					continue;
				}
				rc = cqrs_bcast_consumer_add(ring, pos, &k->c);
				if (rc == -ERANGE) /* overwritten meanwhile: take a fresher one */
					continue;
				if (rc == 0)
					k->first = k->next = seq;
			}
			break;
		}
		if (rc) {
			fprintf(stderr, "consumer %d: join: %s\n", k->id, cqrs_strerror(rc));
			failed = 1;
			return NULL;
		}
	}
	while (!k->saw_end && !failed) {
		rc = consume_some(k);
		if (rc < 0) {
			fprintf(stderr, "consumer %d: %s\n", k->id, cqrs_strerror(rc));
			failed = 1;
			break;
		}
		if (k->bad)
			break;
		if (rc == 0)
			cqrs_bcast_wait(k->c, k->kind, 100000000);
		if (k->id == 1 && rc > 0 && k->next != UINT64_MAX) {
			pthread_mutex_lock(&snap_lock);
			snap_pos = cqrs_bcast_consumer_position(k->c);
			snap_seq = k->next;
			snap_valid = 1;
			pthread_mutex_unlock(&snap_lock);
		}
		if (k->role == R_LEAVER && k->count >= nrec / 3)
			break;
	}
	cqrs_bcast_consumer_remove(k->c);
	k->c = NULL;
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned ncons = argc > 1 ? (unsigned)atoi(argv[1]) : 3, nall, i;
	cap = argc > 3 ? strtoull(argv[3], NULL, 10) : 65536;
	struct consumer *ks;
	pthread_t prod, *th;
	size_t size;
	void *mem;
	int rc, bad = 0;

	nrec = argc > 2 ? strtoull(argv[2], NULL, 10) : (getenv("CQRS_SAN") ? 100000 : 1000000);
	if (ncons == 0 || ncons > 60 || nrec < 100) {
		fprintf(stderr, "usage: %s [consumers 1..60] [records >= 100] [capacity]\n", argv[0]);
		return 2;
	}
	nall = ncons + 3; /* + a leaver and two joiners */
	size = cqrs_bcast_footprint(cap, nall);
	if (size == 0) {
		fprintf(stderr, "bad capacity %llu\n", (unsigned long long)cap);
		return 2;
	}
	mem = aligned_alloc(64, (size + 63) & ~(size_t)63);
	rc = mem ? cqrs_bcast_init(mem, size, cap, nall, &ring) : -ENOMEM;
	if (rc) {
		fprintf(stderr, "init: %s\n", cqrs_strerror(rc));
		return 1;
	}
	ks = calloc(nall, sizeof *ks);
	th = calloc(nall, sizeof *th);
	for (i = 0; i < nall; i++) {
		ks[i].id = (int)i;
		ks[i].role = i < ncons ? R_FULL : i == ncons ? R_LEAVER : i == ncons + 1 ? R_JOIN_TAIL : R_JOIN_POS;
		ks[i].kind = i % 2 ? CQRS_WAIT_BLOCK : CQRS_WAIT_YIELD;
		ks[i].use_poll = i == 0;
		/* The steady consumers and the leaver are there before the first record. */
		if (ks[i].role == R_FULL || ks[i].role == R_LEAVER) {
			rc = cqrs_bcast_consumer_add(ring, 0, &ks[i].c);
			if (rc) {
				fprintf(stderr, "add: %s\n", cqrs_strerror(rc));
				return 1;
			}
		}
	}
	for (i = 0; i < nall; i++)
		pthread_create(&th[i], NULL, consumer, &ks[i]);
	pthread_create(&prod, NULL, producer, NULL);
	pthread_join(prod, NULL);
	for (i = 0; i < nall; i++)
		pthread_join(th[i], NULL);

	for (i = 0; i < nall; i++) {
		struct consumer *k = &ks[i];
		const char *what = k->role == R_FULL ? "full" : k->role == R_LEAVER ? "leaver" :
				   k->role == R_JOIN_TAIL ? "joined@tail" : "joined@pos";
		int ok = k->bad == 0 && k->gaps == 0;
		if (k->role == R_LEAVER)
			ok = ok && k->count >= nrec / 3 && k->first == 0;
		else
			ok = ok && k->saw_end && k->next == nrec && k->count == nrec - k->first;
		if (k->role == R_FULL)
			ok = ok && k->first == 0;
		printf("consumer %u (%s, %s%s): first %llu, received %llu, gaps %llu, bad %llu, end %s: %s\n", i,
		       what, k->kind == CQRS_WAIT_BLOCK ? "block" : "yield", k->use_poll ? ", poll/release" : "",
		       (unsigned long long)k->first, (unsigned long long)k->count, (unsigned long long)k->gaps,
		       (unsigned long long)k->bad, k->saw_end ? "yes" : "no", ok ? "ok" : "FAIL");
		bad |= !ok;
	}
	bad |= failed;
	printf("bcast: 1 producer, %u consumers (+leaver, +2 joiners), %llu records, capacity %llu: %s\n", ncons,
	       (unsigned long long)nrec, (unsigned long long)cap, bad ? "FAIL" : "ok");
	cqrs_bcast_close(ring);
	free(mem);
	free(ks);
	free(th);
	return bad;
}
