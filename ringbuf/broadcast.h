/*
 * ringbuf/broadcast.h - the broadcast ring's shared-memory layout (internal:
 * the format is described in broadcast.c; the API is in cqrs_ring.h).
 * White-box tests include this to inspect and corrupt a ring.
 */
#ifndef CQRS_RINGBUF_BROADCAST_H
#define CQRS_RINGBUF_BROADCAST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cqrs_ring.h"

#define BC_MAGIC UINT64_C(0x5453434253525143) /* "CQRSBCST" as little-endian bytes */
#define BC_VERSION 1u
#define BC_BLOCK 128u /* two cache lines: keeps the adjacent-line prefetcher off hot words */

enum bc_slot_state { BC_SLOT_FREE = 0, BC_SLOT_SETUP = 1, BC_SLOT_ACTIVE = 2 };

struct bc_hdr {
	/* block 0: immutable after init (magic is stored last, with release) */
	_Atomic uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;      /* offset of the data region */
	uint64_t capacity;      /* data bytes, a power of two */
	uint64_t total_size;    /* hdr_size + capacity */
	uint32_t max_consumers; /* consumer slots */
	uint32_t max_record;    /* largest record, header included: capacity / 2 */
	uint32_t block;         /* BC_BLOCK */
	uint32_t rec_hdr;       /* sizeof(cqrs_ring_rec) */
	uint8_t pad0[BC_BLOCK - 48];
	/* block 1: written by the producer at each publish */
	_Atomic uint64_t tail;
	uint8_t pad1[BC_BLOCK - 8];
	/* block 2: written by the producer when it raises its write limit */
	_Atomic uint64_t adv;
	uint8_t pad2[BC_BLOCK - 8];
	/* block 3: the producer's futex (it sleeps when the ring is full) */
	_Atomic uint32_t space_seq;
	_Atomic uint32_t space_waiters;
	uint8_t pad3[BC_BLOCK - 8];
	/* block 4: the consumers' futex (they sleep when the ring is empty) */
	_Atomic uint32_t data_seq;
	_Atomic uint32_t data_waiters;
	uint8_t pad4[BC_BLOCK - 8];
	/* then max_consumers struct bc_slot, then the data region */
};

struct bc_slot {
	_Atomic uint64_t head;  /* next position this consumer reads */
	_Atomic uint32_t state; /* enum bc_slot_state */
	uint32_t reserved;
	uint8_t pad[BC_BLOCK - 16];
};

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
	       "the rings need address-free (lock-free) 32- and 64-bit atomics");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic uint32_t) == 4, "atomic sizes");
_Static_assert(sizeof(cqrs_ring_rec) == 8, "record header is 8 bytes");
_Static_assert(offsetof(struct bc_hdr, version) == 8, "layout");
_Static_assert(offsetof(struct bc_hdr, hdr_size) == 12, "layout");
_Static_assert(offsetof(struct bc_hdr, capacity) == 16, "layout");
_Static_assert(offsetof(struct bc_hdr, total_size) == 24, "layout");
_Static_assert(offsetof(struct bc_hdr, max_consumers) == 32, "layout");
_Static_assert(offsetof(struct bc_hdr, max_record) == 36, "layout");
_Static_assert(offsetof(struct bc_hdr, block) == 40, "layout");
_Static_assert(offsetof(struct bc_hdr, rec_hdr) == 44, "layout");
_Static_assert(offsetof(struct bc_hdr, tail) == 1 * BC_BLOCK, "tail on its own block");
_Static_assert(offsetof(struct bc_hdr, adv) == 2 * BC_BLOCK, "adv on its own block");
_Static_assert(offsetof(struct bc_hdr, space_seq) == 3 * BC_BLOCK, "producer futex block");
_Static_assert(offsetof(struct bc_hdr, data_seq) == 4 * BC_BLOCK, "consumer futex block");
_Static_assert(sizeof(struct bc_hdr) == 5 * BC_BLOCK, "header is five blocks");
_Static_assert(sizeof(struct bc_slot) == BC_BLOCK, "one block per consumer slot");

/* Offset of the data region for max_consumers slots. */
static inline uint64_t bc_hdr_size(uint32_t max_consumers)
{
	return sizeof(struct bc_hdr) + (uint64_t)max_consumers * sizeof(struct bc_slot);
}

static inline struct bc_slot *bc_slots(struct bc_hdr *h)
{
	return (struct bc_slot *)(h + 1);
}

#endif
