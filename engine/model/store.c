/*
 * engine/model/store.c - the write model's aggregate store: a hash table from a
 * key (u64 or fixed bytes up to 64) to an aggregate object allocated from
 * the write-model jemalloc arena.
 *
 * Built on Concurrency Kit's ck_ht: DIRECT mode for u64 keys (hashed by
 * id_hash.h, so ids in sequence stay close in the table; the key is the
 * table entry, no key compare through memory) and BYTESTRING mode for byte
 * keys (the key bytes live in the aggregate object's header). One thread at
 * a time touches a store (recovery, then the command thread), so none of
 * ck_ht's SPMC guarantees are needed; it is chosen for its open-addressing
 * layout and growth.
 *
 * Object layout: [ header: key bytes (byte keys only) | padding to 16 ]
 *                [ user value of value_size bytes, zero-initialized ]
 * The pointer handed to users is the value; its address is stable for the
 * aggregate's life (tables grow by moving entries, never objects).
 *
 * DIRECT mode reserves two key values (ck_ht's empty and tombstone
 * markers): keys are stored as key + 1, so u64 key UINT64_MAX is refused.
 */
#include <string.h>

#include <ck_ht.h>

#include "cqrs.h"
#include "core/errors.h"
#include "engine/model/id_hash.h"
#include "engine/model/store.h"
#include "engine/model/wm_alloc.h"

struct cqrs_store {
	ck_ht_t ht;
	uint32_t keylen;
	uint32_t value_size;
	uint32_t header; /* bytes before the value (key copy), 16-aligned */
	uint64_t count;
};

static void hash_bytes(ck_ht_hash_t *h, const void *key, size_t len, uint64_t seed)
{
	h->value = XXH3_64bits_withSeed(key, len, seed);
}

int cqrs_store_create(uint32_t keylen, uint32_t value_size, uint64_t capacity, cqrs_store **out)
{
	cqrs_store *s;
	unsigned mode = keylen == 8 ? CK_HT_MODE_DIRECT : CK_HT_MODE_BYTESTRING;

	*out = NULL;
	if (keylen == 0 || keylen > 64 || value_size == 0)
		return cqrs__fail(-EINVAL, "store: key length %u (1..64), value size %u", keylen, value_size);
	if (capacity > CQRS_WM_MAX_ENTRIES)
		return cqrs__fail(-EINVAL, "store: capacity %llu above 2^30", (unsigned long long)capacity);
	s = cqrs__wm_calloc(sizeof *s);
	if (!s)
		return cqrs__fail(-ENOMEM, "store: out of memory");
	s->keylen = keylen;
	s->value_size = value_size;
	s->header = mode == CK_HT_MODE_DIRECT ? 0 : (keylen + 15u) & ~15u;
	if (!ck_ht_init(&s->ht, mode, mode == CK_HT_MODE_DIRECT ? cqrs__id_hash_ck : hash_bytes,
			&cqrs_wm_ck_malloc, cqrs__ck_ht_slots(capacity), 0x9e3779b97f4a7c15ull)) {
		cqrs__wm_free(s, sizeof *s);
		return cqrs__fail(-ENOMEM, "store: cannot allocate a table of %llu",
				 (unsigned long long)capacity);
	}
	*out = s;
	return 0;
}

static int find(const cqrs_store *cs, const void *key, ck_ht_entry_t *e, ck_ht_hash_t *h)
{
	cqrs_store *s = (cqrs_store *)cs; /* ck_ht's get takes a non-const table */

	if (s->header == 0) {
		uint64_t k;
		memcpy(&k, key, 8);
		if (k == UINT64_MAX)
			return -EINVAL;
		ck_ht_hash_direct(h, &s->ht, (uintptr_t)(k + 1));
		ck_ht_entry_key_set_direct(e, (uintptr_t)(k + 1));
	} else {
		ck_ht_hash(h, &s->ht, key, (uint16_t)s->keylen);
		ck_ht_entry_key_set(e, key, (uint16_t)s->keylen);
	}
	return ck_ht_get_spmc(&s->ht, *h, e) ? 1 : 0;
}

static void *value_of(const cqrs_store *s, ck_ht_entry_t *e)
{
	if (s->header == 0)
		return (void *)ck_ht_entry_value_direct(e);
	return ck_ht_entry_value(e);
}

void *cqrs_store_get(const cqrs_store *s, const void *key)
{
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	if (find(s, key, &e, &h) != 1)
		return NULL;
	return value_of(s, &e);
}

void *cqrs_store_upsert(cqrs_store *s, const void *key, int *created)
{
	ck_ht_entry_t e;
	ck_ht_hash_t h;
	uint8_t *obj;
	int rc = find(s, key, &e, &h);

	if (created)
		*created = 0;
	if (rc < 0)
		return NULL;
	if (rc == 1)
		return value_of(s, &e);
	obj = cqrs__wm_calloc(s->header + s->value_size);
	if (!obj)
		return NULL;
	if (s->header == 0) {
		uint64_t k;
		memcpy(&k, key, 8);
		ck_ht_entry_set_direct(&e, h, (uintptr_t)(k + 1), (uintptr_t)obj);
	} else {
		memcpy(obj, key, s->keylen);
		ck_ht_entry_set(&e, h, obj, (uint16_t)s->keylen, obj + s->header);
	}
	if (!ck_ht_put_spmc(&s->ht, h, &e)) {
		cqrs__wm_free(obj, s->header + s->value_size);
		return NULL;
	}
	s->count++;
	if (created)
		*created = 1;
	return obj + s->header;
}

int cqrs_store_remove(cqrs_store *s, const void *key)
{
	ck_ht_entry_t e;
	ck_ht_hash_t h;
	void *val;
	int rc = find(s, key, &e, &h);

	if (rc < 0)
		return rc;
	if (rc == 0)
		return CQRS_ENOTFOUND;
	val = value_of(s, &e);
	if (!ck_ht_remove_spmc(&s->ht, h, &e))
		return CQRS_ENOTFOUND;
	cqrs__wm_free((uint8_t *)val - s->header, s->header + s->value_size);
	s->count--;
	return 0;
}

uint64_t cqrs_store_count(const cqrs_store *s)
{
	return s->count;
}

void cqrs__store_layout(const cqrs_store *s, uint32_t *keylen, uint32_t *value_size)
{
	*keylen = s->keylen;
	*value_size = s->value_size;
}

int cqrs_store_foreach(cqrs_store *s, int (*fn)(void *arg, const void *key, void *value), void *arg)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;

	while (ck_ht_next(&s->ht, &it, &e)) {
		void *val = value_of(s, e);
		uint64_t k;
		const void *key;
		int rc;

		if (s->header == 0) {
			k = (uint64_t)ck_ht_entry_key_direct(e) - 1;
			key = &k;
		} else {
			key = (const uint8_t *)val - s->header;
		}
		rc = fn(arg, key, val);
		if (rc)
			return rc;
	}
	return 0;
}

void cqrs_store_destroy(cqrs_store *s)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;

	if (!s)
		return;
	while (ck_ht_next(&s->ht, &it, &e))
		cqrs__wm_free((uint8_t *)value_of(s, e) - s->header, s->header + s->value_size);
	ck_ht_destroy(&s->ht);
	cqrs__wm_free(s, sizeof *s);
}
