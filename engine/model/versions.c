/*
 * engine/model/versions.c - see versions.h. DIRECT mode reserves two key values
 * (ck_ht's empty and tombstone markers): ids are stored as id + 1.
 */
#include <errno.h>

#include <ck_ht.h>

#include "core/errors.h"
#include "engine/model/id_hash.h"
#include "engine/model/versions.h"
#include "engine/model/wm_alloc.h"

struct cqrs_versions {
	ck_ht_t ht;
};

int cqrs__versions_create(uint64_t capacity, cqrs_versions **out)
{
	cqrs_versions *v = cqrs__wm_calloc(sizeof *v);

	*out = NULL;
	if (!v)
		return cqrs__fail(-ENOMEM, "version map: out of memory");
	if (!ck_ht_init(&v->ht, CK_HT_MODE_DIRECT, cqrs__id_hash_ck, &cqrs_wm_ck_malloc,
			cqrs__ck_ht_slots(capacity), 0x5bd1e9955bd1e995ull)) {
		cqrs__wm_free(v, sizeof *v);
		return cqrs__fail(-ENOMEM, "version map: cannot allocate a table for %llu aggregates",
				 (unsigned long long)capacity);
	}
	*out = v;
	return 0;
}

void cqrs__versions_destroy(cqrs_versions *v)
{
	if (!v)
		return;
	ck_ht_destroy(&v->ht);
	cqrs__wm_free(v, sizeof *v);
}

uint64_t cqrs__versions_get(cqrs_versions *v, uint64_t id)
{
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	if (id == UINT64_MAX)
		return 0;
	ck_ht_hash_direct(&h, &v->ht, (uintptr_t)(id + 1));
	ck_ht_entry_key_set_direct(&e, (uintptr_t)(id + 1));
	return ck_ht_get_spmc(&v->ht, h, &e) ? (uint64_t)ck_ht_entry_value_direct(&e) : 0;
}

int cqrs__versions_set(cqrs_versions *v, uint64_t id, uint64_t version)
{
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	if (id == UINT64_MAX)
		return -EINVAL;
	ck_ht_hash_direct(&h, &v->ht, (uintptr_t)(id + 1));
	ck_ht_entry_set_direct(&e, h, (uintptr_t)(id + 1), (uintptr_t)version);
	return ck_ht_set_spmc(&v->ht, h, &e) ? 0 : -ENOMEM;
}

uint64_t cqrs__versions_count(cqrs_versions *v)
{
	return ck_ht_count(&v->ht);
}

int cqrs__versions_foreach(cqrs_versions *v, int (*fn)(void *arg, uint64_t id, uint64_t version),
			   void *arg)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;

	while (ck_ht_next(&v->ht, &it, &e)) {
		int rc = fn(arg, (uint64_t)ck_ht_entry_key_direct(e) - 1,
			    (uint64_t)ck_ht_entry_value_direct(e));
		if (rc)
			return rc;
	}
	return 0;
}
