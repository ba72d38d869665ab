/*
 * engine/model/id_hash.h - the hash of u64 aggregate ids for the write model's
 * ck_ht tables (store in DIRECT mode, versions).
 *
 * ck_ht starts every probe at slot (hash & mask). A plain hash scatters
 * ids at random, so replaying a journal costs a cache miss per table per
 * event even when the ids arrive in sequence - and they usually do: ids
 * are handed out in order, and an aggregate's events follow its creation
 * closely. This hash keeps ids that differ only in their low ID_HASH_BITS
 * bits in one block of 2^ID_HASH_BITS slots (2 KiB of ck_ht entries):
 *
 *   x    = XXH3(id >> B)                     one random value per block
 *   hash = (x << B) | ((id + (x >> (64 - B))) & (2^B - 1))
 *
 * The block sits at a random place (x's low bits), and inside it the low
 * bits are rotated by x's top bits (a bijection; bits independent of the
 * block's place, so a lone id's slot is uniform): a block's ids never
 * collide with each other, ids whose low bits are fixed (multiples of 64,
 * a shard number in the low bits) land at a different offset in every
 * block instead of piling onto one, and ids in sequence take slots in
 * sequence - two to a cache line (ck_ht entries are 32 bytes here), lines
 * in order, which the hardware prefetcher follows. (An XOR permutation, the
 * first version, scattered them over the block's 32 lines: a miss per new
 * id on the command thread.) ck_ht's further probes use the hash's
 * high bits, which stay random - but they are the same for all 64 ids of a
 * block, so when two dense blocks collide the second one's ids re-probe
 * together: a longer worst probe (31 vs 18 probes for 1M sequential ids,
 * simulated), the same average (lookups measured no slower for strided,
 * shard-tagged or scattered ids: tests/unit/test_store.c covers them).
 * Replaying 1M events of sequential ids on one thread: 2.3M -> 4.3-4.7M
 * events/s (docs/ARCHITECTURE.md, "Recovery").
 *
 * cqrs__id_hash_ck is the ck_ht hash callback for a DIRECT-mode table whose
 * stored key is a u64 (both tables store id + 1).
 */
#ifndef CQRS_ENGINE_ID_HASH_H
#define CQRS_ENGINE_ID_HASH_H

#include <stdint.h>
#include <string.h>

#include <ck_ht.h>
#define XXH_INLINE_ALL /* hot path: hash inline, no PLT call */
#include <xxhash.h>

#define ID_HASH_BITS 6

static inline uint64_t cqrs__id_hash(uint64_t id, uint64_t seed)
{
	const uint64_t low = (UINT64_C(1) << ID_HASH_BITS) - 1;
	uint64_t block = id >> ID_HASH_BITS;
	uint64_t x = XXH3_64bits_withSeed(&block, sizeof block, seed);

	return (x << ID_HASH_BITS) | ((id + (x >> (64 - ID_HASH_BITS))) & low);
}

static inline void cqrs__id_hash_ck(ck_ht_hash_t *h, const void *key, size_t len, uint64_t seed)
{
	uint64_t k;

	(void)len; /* DIRECT mode: always the u64 key */
	memcpy(&k, key, sizeof k);
	h->value = cqrs__id_hash(k, seed);
}

#endif
