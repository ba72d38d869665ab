/*
 * bench/lib/ck_ring_baseline.c - Concurrency Kit ck_ring baselines for
 * bench/bench_ring.cc, in C because ck_ring.h does not compile as C++
 * (_ck_ring_enqueue_reserve_mp returns `false` from a void * function).
 *
 * Each run moves n 64-byte messages from producers to consumers through a
 * ck_ring, passing pointers (ck_ring's native mode) to messages in a pool:
 * a producer writes the message, enqueues its pointer; a consumer dequeues
 * it and reads the message. The pool is twice the ring's size, so a slot is
 * reused only after the consumer that took it has long moved on (for SPMC a
 * preempted consumer could in principle see a reused slot: words are read
 * and written with relaxed atomics, so that is a benign race, not UB).
 * Waiting: pause-spin, or sched_yield() when threads outnumber cores.
 */
#include <ck_ring.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include "bench/lib/ck_ring_baseline.h"

struct run {
	struct ck_ring ring;
	struct ck_ring_buffer *buf;
	uint64_t (*pool)[8]; /* 64-byte messages */
	uint64_t pool_mask;
	uint64_t n;          /* messages in all */
	unsigned np, nc;
	int mode, yield;
	uint64_t sum[64];    /* per consumer: sum of first words (keeps reads honest) */
	uint64_t got[64];    /* per consumer: messages */
};

static inline void relax(int yield)
{
	if (yield)
		sched_yield();
	else
		__builtin_ia32_pause();
}

static void produce(struct run *r, uint64_t from, uint64_t to)
{
	uint64_t i;

	for (i = from; i < to; i++) {
		uint64_t *m = r->pool[i & r->pool_mask];
		for (int w = 0; w < 8; w++)
			__atomic_store_n(&m[w], i + (uint64_t)w, __ATOMIC_RELAXED);
		if (r->mode == CKB_SPSC)
			while (!ck_ring_enqueue_spsc(&r->ring, r->buf, m))
				relax(r->yield);
		else if (r->mode == CKB_SPMC)
			while (!ck_ring_enqueue_spmc(&r->ring, r->buf, m))
				relax(r->yield);
		else
			while (!ck_ring_enqueue_mpsc(&r->ring, r->buf, m))
				relax(r->yield);
	}
}

struct pargs {
	struct run *r;
	unsigned id;
	int cpu;
};

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *consumer(void *arg)
{
	struct pargs *a = arg;
	struct run *r = a->r;
	uint64_t sum = 0, got = 0;
	void *p;

	pin(a->cpu);
	for (;;) {
		bool ok;
		if (r->mode == CKB_SPSC)
			ok = ck_ring_dequeue_spsc(&r->ring, r->buf, &p);
		else if (r->mode == CKB_SPMC)
			ok = ck_ring_dequeue_spmc(&r->ring, r->buf, &p);
		else
			ok = ck_ring_dequeue_mpsc(&r->ring, r->buf, &p);
		if (!ok) {
			relax(r->yield);
			continue;
		}
		if (!p) /* end marker */
			break;
		sum += __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
		if (++got == r->n && r->mode != CKB_SPMC)
			break;
	}
	r->sum[a->id] = sum;
	r->got[a->id] = got;
	return NULL;
}

static void *producer(void *arg)
{
	struct pargs *a = arg;
	struct run *r = a->r;
	uint64_t per = r->n / r->np;

	pin(a->cpu);
	produce(r, a->id * per, a->id + 1 == r->np ? r->n : (a->id + 1) * per);
	return NULL;
}

int ckb_pin_self(int cpu, void *saved, size_t saved_size)
{
	cpu_set_t set;

	if (saved_size < sizeof(cpu_set_t))
		return -1;
	pthread_getaffinity_np(pthread_self(), sizeof(cpu_set_t), (cpu_set_t *)saved);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void ckb_unpin_self(const void *saved)
{
	pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), (const cpu_set_t *)saved);
}

uint64_t ckb_run(int mode, unsigned np, unsigned nc, uint64_t n, unsigned slots, int yield, int pin_threads)
{
	struct run *r;
	pthread_t th[64];
	struct pargs args[64];
	uint64_t total = 0, pool_n = (uint64_t)slots * 2;
	unsigned i, nt = 0;

	if (np == 0 || nc == 0 || np + nc > 64 || (slots & (slots - 1)))
		return 0;
	if (posix_memalign((void **)&r, 128, sizeof *r))
		return 0;
	*r = (struct run){ .n = n, .np = np, .nc = nc, .mode = mode, .yield = yield, .pool_mask = pool_n - 1 };
	ck_ring_init(&r->ring, slots);
	if (posix_memalign((void **)&r->buf, 128, sizeof(struct ck_ring_buffer) * slots) ||
	    posix_memalign((void **)&r->pool, 128, 64 * pool_n)) {
		free(r);
		return 0;
	}
	/* The caller's thread is producer 0 when there is one producer (SPSC,
	 * SPMC), the consumer otherwise (MPSC): as in the runs it is compared to. */
	if (mode == CKB_MPSC) {
		for (i = 0; i < np; i++) {
			args[nt] = (struct pargs){ r, i, pin_threads ? (int)(1 + i) % 2 : -1 };
			pthread_create(&th[nt], NULL, producer, &args[nt]);
			nt++;
		}
		args[nt] = (struct pargs){ r, 0, -1 };
		consumer(&args[nt]);
	} else {
		for (i = 0; i < nc; i++) {
			args[nt] = (struct pargs){ r, i, pin_threads ? (int)(1 + i) % 2 : -1 };
			pthread_create(&th[nt], NULL, consumer, &args[nt]);
			nt++;
		}
		produce(r, 0, n);
		if (mode == CKB_SPMC)
			for (i = 0; i < nc; i++)
				while (!ck_ring_enqueue_spmc(&r->ring, r->buf, NULL))
					relax(yield);
	}
	for (i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < nc; i++)
		total += r->got[i];
	free(r->buf);
	free(r->pool);
	free(r);
	return total;
}
