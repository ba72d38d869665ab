/*
 * ringbuf/mpsc.h - the MPSC ring's shared-memory layout and control-word
 * encoding (internal: the format is described in mpsc.c; the API is in
 * cqrs_ring.h). White-box tests include this to play dead or hostile
 * producers.
 */
#ifndef CQRS_RINGBUF_MPSC_H
#define CQRS_RINGBUF_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cqrs_ring.h"

#define MP_MAGIC UINT64_C(0x4353504d53525143) /* "CQRSMPSC" as little-endian bytes */
#define MP_VERSION 2u
#define MP_BLOCK 128u
#define MP_SLOT_SIZE 64u

struct mp_hdr {
	/* block 0: immutable after init (magic stored last, with release) */
	_Atomic uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;         /* offset of the data region */
	uint64_t capacity;         /* data bytes, a power of two */
	uint64_t total_size;       /* hdr_size + capacity */
	uint32_t max_producers;    /* producer slots */
	uint32_t max_payload;      /* capacity/2 - 16 */
	uint64_t claim_timeout_ns; /* default for consumers */
	uint32_t block;            /* MP_BLOCK */
	uint32_t rec_hdr;          /* CQRS_MPSC_REC_HDR */
	uint8_t pad0[MP_BLOCK - 56];
	/* block 1: producers claim by CAS here */
	_Atomic uint64_t tail;
	uint8_t pad1[MP_BLOCK - 8];
	/* block 2: written by the consumer */
	_Atomic uint64_t head;
	_Atomic uint64_t n_records;
	_Atomic uint64_t n_timeouts;
	_Atomic uint64_t n_corrupt;
	uint8_t pad2[MP_BLOCK - 32];
	/* block 3: producers' futex (ring full) */
	_Atomic uint32_t space_seq;
	_Atomic uint32_t space_waiters;
	uint8_t pad3[MP_BLOCK - 8];
	/* block 4: the consumer's futex (nothing committed) */
	_Atomic uint32_t data_seq;
	_Atomic uint32_t data_waiters;
	uint8_t pad4[MP_BLOCK - 8];
	/* then max_producers struct mp_slot, padding to a block, the data */
};

struct mp_slot {
	_Atomic uint64_t intent; /* claim in progress: see mp_intent(); 0 = none */
	_Atomic uint32_t owner;  /* pid of the owning process, 0 = free */
	uint32_t reserved;
	uint8_t pad[MP_SLOT_SIZE - 16];
};

struct mp_rec {
	_Atomic uint64_t ctl; /* control word: see mp_ctl() */
	uint32_t type;        /* written before the commit */
	uint32_t len;         /* payload bytes, written before the commit */
};

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
	       "the rings need address-free (lock-free) 32- and 64-bit atomics");
_Static_assert(offsetof(struct mp_hdr, version) == 8, "layout");
_Static_assert(offsetof(struct mp_hdr, hdr_size) == 12, "layout");
_Static_assert(offsetof(struct mp_hdr, capacity) == 16, "layout");
_Static_assert(offsetof(struct mp_hdr, total_size) == 24, "layout");
_Static_assert(offsetof(struct mp_hdr, max_producers) == 32, "layout");
_Static_assert(offsetof(struct mp_hdr, max_payload) == 36, "layout");
_Static_assert(offsetof(struct mp_hdr, claim_timeout_ns) == 40, "layout");
_Static_assert(offsetof(struct mp_hdr, block) == 48, "layout");
_Static_assert(offsetof(struct mp_hdr, rec_hdr) == 52, "layout");
_Static_assert(offsetof(struct mp_hdr, tail) == 1 * MP_BLOCK, "tail on its own block");
_Static_assert(offsetof(struct mp_hdr, head) == 2 * MP_BLOCK, "head on its own block");
_Static_assert(offsetof(struct mp_hdr, space_seq) == 3 * MP_BLOCK, "producers' futex block");
_Static_assert(offsetof(struct mp_hdr, data_seq) == 4 * MP_BLOCK, "consumer's futex block");
_Static_assert(sizeof(struct mp_hdr) == 5 * MP_BLOCK, "header is five blocks");
_Static_assert(sizeof(struct mp_slot) == MP_SLOT_SIZE, "one cache line per producer slot");
_Static_assert(sizeof(struct mp_rec) == CQRS_MPSC_REC_HDR, "record header size");
_Static_assert(offsetof(struct mp_rec, type) == 8 && offsetof(struct mp_rec, len) == 12, "layout");

/* Offset of the data region for max_producers slots (a multiple of a block). */
static inline uint64_t mp_hdr_size(uint32_t max_producers)
{
	uint64_t n = sizeof(struct mp_hdr) + (uint64_t)max_producers * MP_SLOT_SIZE;
	return (n + MP_BLOCK - 1) & ~(uint64_t)(MP_BLOCK - 1);
}

static inline struct mp_slot *mp_slots(struct mp_hdr *h)
{
	return (struct mp_slot *)(h + 1);
}

/* Control word: | tag: 37 bits | state: 2 bits | extent / 8: 25 bits |
 * tag = (position / 8) mod 2^37, the position the header was written for:
 * a word left over from an earlier lap (or payload bytes) does not pass
 * for a header unless it was written for this very position. States 0 and
 * 1 are never written (a word in them is "no header here"). */
enum { MP_FREE = 0, MP_RESERVED = 1, MP_COMMITTED = 2, MP_DISCARD = 3 };
#define MP_UNIT_BITS 25
#define MP_STATE_SHIFT 25
#define MP_TAG_SHIFT 27
#define MP_TAG_MASK ((UINT64_C(1) << 37) - 1)

static inline uint64_t mp_tag(uint64_t pos)
{
	return (pos >> 3) & MP_TAG_MASK;
}

static inline uint64_t mp_ctl(uint64_t pos, unsigned state, uint64_t bytes)
{
	return mp_tag(pos) << MP_TAG_SHIFT | (uint64_t)state << MP_STATE_SHIFT | bytes >> 3;
}

static inline unsigned mp_state(uint64_t ctl)
{
	return (unsigned)(ctl >> MP_STATE_SHIFT) & 3u;
}

static inline uint64_t mp_bytes(uint64_t ctl)
{
	return (ctl & ((UINT64_C(1) << MP_UNIT_BITS) - 1)) << 3;
}

/* True when ctl is a header written for position pos. */
static inline bool mp_mine(uint64_t ctl, uint64_t pos)
{
	return (ctl >> MP_TAG_SHIFT) == mp_tag(pos) && mp_state(ctl) >= MP_COMMITTED;
}

/* Intent word: | position / 8 mod 2^40 | extent / 8: 24 bits |, 0 = none. */
#define MP_IPOS_MASK ((UINT64_C(1) << 40) - 1)

static inline uint64_t mp_intent(uint64_t pos, uint64_t bytes)
{
	return ((pos >> 3) & MP_IPOS_MASK) << 24 | bytes >> 3;
}

/* When intent covers position pos, stores the end of its claim in *end. */
static inline bool mp_intent_covers(uint64_t intent, uint64_t pos, uint64_t *end)
{
	uint64_t units = intent & ((UINT64_C(1) << 24) - 1);
	uint64_t d = ((pos >> 3) - (intent >> 24)) & MP_IPOS_MASK;

	if (intent == 0 || d >= units)
		return false;
	*end = pos + ((units - d) << 3);
	return true;
}

#endif
