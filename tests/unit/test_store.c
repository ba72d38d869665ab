/*
 * tests/unit/test_store.c - the write model's aggregate store (u64 and byte
 * keys, against a reference model with randomized operations), the id
 * hash of its tables and of the version map, the write-model allocator's
 * per-thread caches and its prefaulting, the idempotency window, and the
 * latency histogram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cqrs.h"
#include "engine/model/dedup.h"
#include "engine/model/id_hash.h"
#include "engine/model/versions.h"
#include "engine/model/wm_alloc.h"
#include "core/hist.h"

typedef struct agg {
	uint64_t key;
	uint64_t value;
	uint8_t pad[40];
} agg;

static void test_u64_store_vs_reference(void **state)
{
	enum { N = 5000 };
	static uint64_t ref[N]; /* 0 = absent, else value */
	cqrs_store *s;
	uint64_t live = 0;
	(void)state;
	memset(ref, 0, sizeof ref);
	assert_int_equal(cqrs_store_create(8, sizeof(agg), 16, &s), 0);
	srand(7);
	for (int i = 0; i < 200000; i++) {
		uint64_t k = (uint64_t)(rand() % N);
		int op = rand() % 3, created;
		agg *a;
		if (op == 0) {
			a = cqrs_store_upsert(s, &k, &created);
			assert_non_null(a);
			assert_int_equal(created, ref[k] == 0);
			if (created) {
				assert_true(a->value == 0 && a->key == 0); /* zeroed */
				live++;
			} else {
				assert_true(a->value == ref[k] && a->key == k);
			}
			a->key = k;
			a->value = (uint64_t)i + 1;
			ref[k] = a->value;
		} else if (op == 1) {
			a = cqrs_store_get(s, &k);
			if (ref[k]) {
				assert_non_null(a);
				assert_true(a->value == ref[k]);
			} else {
				assert_null(a);
			}
		} else {
			int rc = cqrs_store_remove(s, &k);
			assert_int_equal(rc, ref[k] ? 0 : CQRS_ENOTFOUND);
			if (ref[k])
				live--;
			ref[k] = 0;
		}
		assert_true(cqrs_store_count(s) == live);
	}
	uint64_t max = UINT64_MAX;
	assert_null(cqrs_store_upsert(s, &max, NULL));
	uint64_t zero = 0;
	if (!ref[0]) {
		assert_non_null(cqrs_store_upsert(s, &zero, NULL)); /* key 0 is a valid key */
		assert_non_null(cqrs_store_get(s, &zero));
	}
	cqrs_store_destroy(s);
}

static int count_cb(void *arg, const void *key, void *value)
{
	(void)key; (void)value;
	(*(int *)arg)++;
	return 0;
}

static void test_bytes_store(void **state)
{
	cqrs_store *s;
	char key[20];
	int n = 0;
	(void)state;
	assert_int_equal(cqrs_store_create(20, 16, 4, &s), 0);
	for (int i = 0; i < 1000; i++) {
		memset(key, 0, sizeof key);
		snprintf(key, sizeof key, "order-%d", i);
		uint64_t *v = cqrs_store_upsert(s, key, NULL);
		assert_non_null(v);
		*v = (uint64_t)i;
	}
	for (int i = 0; i < 1000; i++) {
		memset(key, 0, sizeof key);
		snprintf(key, sizeof key, "order-%d", i);
		uint64_t *v = cqrs_store_get(s, key);
		assert_non_null(v);
		assert_true(*v == (uint64_t)i);
	}
	assert_int_equal(cqrs_store_foreach(s, count_cb, &n), 0);
	assert_int_equal(n, 1000);
	memset(key, 0, sizeof key);
	strcpy(key, "order-5");
	assert_int_equal(cqrs_store_remove(s, key), 0);
	assert_null(cqrs_store_get(s, key));
	assert_int_equal(cqrs_store_create(65, 16, 4, &(cqrs_store *){0}), -EINVAL);
	assert_int_equal(cqrs_store_create(8, 16, (UINT64_C(1) << 30) + 1, &(cqrs_store *){0}), -EINVAL);
	cqrs_store_destroy(s);
}

static void test_dedup(void **state)
{
	cqrs_dedup *d;
	uint64_t seq;
	(void)state;
	assert_int_equal(cqrs__dedup_create(8, &d), 0);
	assert_int_equal(cqrs__dedup_check(d, 1, 1, &seq), 0);
	assert_int_equal(cqrs__dedup_record(d, 1, 1, 100), 0);
	assert_int_equal(cqrs__dedup_check(d, 1, 1, &seq), 1);
	assert_true(seq == 100);
	assert_int_equal(cqrs__dedup_check(d, 2, 1, &seq), 0); /* other client */
	for (uint64_t c = 2; c <= 20; c++)
		assert_int_equal(cqrs__dedup_record(d, 1, c, 100 + c), 0);
	assert_int_equal(cqrs__dedup_check(d, 1, 20, &seq), 1);
	assert_true(seq == 120);
	assert_int_equal(cqrs__dedup_check(d, 1, 13, &seq), 1);
	assert_true(seq == 113);
	/* older than the window: still a duplicate, result unknown */
	assert_int_equal(cqrs__dedup_check(d, 1, 3, &seq), 1);
	assert_true(seq == 0);
	assert_int_equal(cqrs__dedup_check(d, 1, 21, &seq), 0);
	cqrs__dedup_destroy(d);
}

static void test_hist(void **state)
{
	static cqrs_hist h;
	(void)state;
	cqrs__hist_reset(&h);
	for (uint64_t v = 0; v < 100000; v++)
		assert_true(cqrs__hist_bucket_low(cqrs__hist_bucket(v)) <= v);
	for (unsigned b = 16; b + 1 < 970; b++)
		assert_true(cqrs__hist_bucket(cqrs__hist_bucket_low(b)) == b);
	for (uint64_t v = 1; v <= 1000; v++)
		cqrs__hist_record(&h, v * 1000);
	assert_true(cqrs__hist_total(&h) == 1000);
	uint64_t p50 = cqrs__hist_quantile(&h, 0.5), p99 = cqrs__hist_quantile(&h, 0.99);
	assert_true(p50 > 470000 && p50 < 530000);
	assert_true(p99 > 930000 && p99 < 1060000);
	assert_true(cqrs__hist_bucket(UINT64_MAX) < CQRS_HIST_BUCKETS);
}

/* Id patterns real systems hand out: in sequence, strided, with a shard
 * number in the low bits, in the high bits, scattered. */
enum { PATTERNS = 6 };
static uint64_t pattern_id(int p, uint64_t i)
{
	switch (p) {
	case 0: return i;
	case 1: return i * 64;
	case 2: return i * 4096;
	case 3: return i * 16 + 3;
	case 4: return i << 32;
	default: return (i * 0x9e3779b97f4a7c15ull) >> 2;
	}
}

/* Slots a ck_ht table of 2^17 entries would start probing at, for 2^16
 * ids (its load limit): about as many distinct ones as a random hash
 * gives (2^17 * (1 - e^-0.5) = 51,573) for every pattern; the 64 ids of
 * one block never share a slot in it, and ids in sequence take slots in
 * sequence (cache lines in order for the hardware prefetcher). */
static void test_id_hash_spread(void **state)
{
	enum { N = 1 << 16, SLOTS = 1 << 17 };
	static uint8_t used[SLOTS];
	(void)state;
	for (int p = 0; p < PATTERNS; p++) {
		uint32_t distinct = 0;
		memset(used, 0, sizeof used);
		for (uint64_t i = 1; i <= N; i++) {
			uint64_t slot = cqrs__id_hash(pattern_id(p, i) + 1, 42) & (SLOTS - 1);
			distinct += !used[slot];
			used[slot] = 1;
		}
		if (distinct < 48000)
			fail_msg("pattern %d: %u distinct slots of %u ids", p, distinct, N);
	}
	for (uint64_t base = 0; base < 64 * 1000; base += 64) {
		uint64_t seen = 0;
		for (uint64_t i = 0; i < 64; i++)
			seen |= UINT64_C(1) << (cqrs__id_hash(base + i, 7) & 63);
		assert_true(seen == UINT64_MAX);
		assert_true(cqrs__id_hash(base, 7) >> 6 == cqrs__id_hash(base + 63, 7) >> 6);
		for (uint64_t i = 0; i < 63; i++) /* in sequence: the next slot, mod 64 */
			assert_true(((cqrs__id_hash(base + i + 1, 7) - cqrs__id_hash(base + i, 7)) & 63) == 1);
	}
}

/* Every pattern through the store and the version map: all found with
 * their values, removals exact, counts right. */
static void test_id_patterns_store_and_versions(void **state)
{
	enum { N = 100000 };
	(void)state;
	for (int p = 0; p < PATTERNS; p++) {
		cqrs_store *s;
		cqrs_versions *v;
		assert_int_equal(cqrs_store_create(8, sizeof(agg), 64, &s), 0);
		assert_int_equal(cqrs__versions_create(64, &v), 0);
		for (uint64_t i = 1; i <= N; i++) {
			uint64_t k = pattern_id(p, i);
			agg *a = cqrs_store_upsert(s, &k, NULL);
			assert_non_null(a);
			a->key = k;
			assert_int_equal(cqrs__versions_set(v, k, i), 0);
		}
		assert_true(cqrs_store_count(s) == N);
		for (uint64_t i = 1; i <= N; i += 2) {
			uint64_t k = pattern_id(p, i);
			assert_int_equal(cqrs_store_remove(s, &k), 0);
		}
		for (uint64_t i = 1; i <= N; i++) {
			uint64_t k = pattern_id(p, i);
			agg *a = cqrs_store_get(s, &k);
			if (i % 2) {
				assert_null(a);
			} else {
				assert_non_null(a);
				assert_true(a->key == k);
			}
			assert_true(cqrs__versions_get(v, k) == i);
		}
		assert_true(cqrs_store_count(s) == N / 2);
		cqrs__versions_destroy(v);
		cqrs_store_destroy(s);
	}
}

static void *alloc_on_thread(void *arg)
{
	void *p = cqrs__wm_calloc(64);
	(void)arg;
	if (p)
		cqrs__wm_free(p, 64);
	return p;
}

/* Each thread that allocates from the write model gets a jemalloc tcache,
 * of which a process has a few thousand: more threads than that come and
 * go (engines restarted in one process), and tcaches are still to be had. */
static void test_wm_tcache_released_at_thread_exit(void **state)
{
	unsigned index;
	size_t sz = sizeof index;
	(void)state;
	for (int i = 0; i < 4500; i++) {
		pthread_t t;
		void *p;
		assert_int_equal(pthread_create(&t, NULL, alloc_on_thread, NULL), 0);
		pthread_join(t, &p);
		assert_non_null(p);
	}
	assert_int_equal(mallctl("tcache.create", &index, &sz, NULL, 0), 0);
	assert_int_equal(mallctl("tcache.destroy", NULL, NULL, &index, sizeof index), 0);
}

/* Share of the pages of [p, p + len) that are resident (mincore). */
static double resident(const void *p, size_t len)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(page - 1);
	size_t n = ((uintptr_t)p + len - lo + page - 1) / page, in = 0;
	unsigned char *vec = malloc(n);

	assert_non_null(vec);
	assert_int_equal(mincore((void *)lo, n * page, vec), 0);
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	free(vec);
	return (double)in / (double)n;
}

/* cqrs__wm_prefault faults in what the arena has mapped (a large calloc is
 * left untouched by jemalloc: fresh pages are zero), and its thread what
 * the arena maps afterwards, without anyone touching it. Sized above what
 * the tests before it free, so jemalloc cannot hand back touched memory. */
static void test_wm_prefault(void **state)
{
	(void)state;
#if JEMALLOC_VERSION_MAJOR > 5 || (JEMALLOC_VERSION_MAJOR == 5 && JEMALLOC_VERSION_MINOR >= 3)
	const size_t len = 96u << 20;
	void *probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *a, *b;
	double before;
	int rc;

	assert_true(probe != MAP_FAILED);
	rc = madvise(probe, 4096, 23 /* MADV_POPULATE_WRITE */);
	munmap(probe, 4096);
	if (rc) /* a kernel before 5.14 */
		skip();
	a = cqrs__wm_calloc(len);
	assert_non_null(a);
	before = resident(a, len);
	assert_int_equal(cqrs__wm_prefault(), 0);
	printf("prefault: %.0f%% resident before, %.0f%% after\n", before * 100, resident(a, len) * 100);
	assert_true(before < 0.5);
	assert_true(resident(a, len) > 0.99);
	b = cqrs__wm_calloc(2 * len); /* a new extent: the thread's */
	assert_non_null(b);
	for (int i = 0; i < 10000 && resident(b, 2 * len) < 0.99; i++)
		usleep(1000);
	assert_true(resident(b, 2 * len) > 0.99);
	assert_true(a[len - 1] == 0 && b[2 * len - 1] == 0); /* still zero */
	cqrs__wm_free(a, len);
	cqrs__wm_free(b, 2 * len);
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64_store_vs_reference),
		cmocka_unit_test(test_bytes_store),
		cmocka_unit_test(test_id_hash_spread),
		cmocka_unit_test(test_id_patterns_store_and_versions),
		cmocka_unit_test(test_wm_tcache_released_at_thread_exit),
		cmocka_unit_test(test_dedup),
		cmocka_unit_test(test_hist),
		cmocka_unit_test(test_wm_prefault), /* last: it starts the prefault thread */
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
