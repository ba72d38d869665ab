/*
 * engine/checkpoint_format.h - the on-disk format of a view checkpoint:
 * one view generation's segment bytes at a batch boundary (its applied
 * seq), so that a start that finds the segment missing (a reboot emptied
 * /dev/shm), dirty (a kill -9) or stale loads it and replays only the
 * journal's tail.
 *
 * WHERE
 *   DATA/checkpoints/<view>/ckpt-<applied seq, 20 digits>.cqckpt, written
 *   as DATA/checkpoints/<view>/.tmp-ckpt-<seq>.cqckpt, fsynced, renamed,
 *   and the folder fsynced: a name without ".tmp-" is always a complete
 *   file (a crash leaves at most a temporary, removed at the next start).
 *
 * LAYOUT (little-endian, every offset a multiple of 4096)
 *   off                 size               what
 *   0                   4096               cqrs_ckpt_hdr (below), zero padded;
 *                                          hdr_sum = XXH3-64 of bytes [0, 4088)
 *   4096                seg_bytes          the segment's bytes [0, seg_bytes),
 *                                          byte for byte (the view layout of
 *                                          shm/view_format.h: checkpoints do
 *                                          not know it)
 *   4096 + seg_bytes    8 * nchunks        chunk table: XXH3-64 of each
 *                                          chunk_bytes piece of the body (the
 *                                          last one may be shorter)
 *   The header's total = XXH3-64 of the chunk table; the file's size is
 *   exactly header_size + seg_bytes + 8 * nchunks.
 *   ZERO CHUNKS: a chunk that is all zero bytes is not written (a hole in
 *   the file) and its table entry is the XXH3-64 of that many zero bytes
 *   (cqrs__ckpt_zero_sum); restore leaves those bytes of the new, zeroed
 *   segment alone and verification does not read them. A view's capacity
 *   is mostly rows never used and index buckets never filled: the file's
 *   data, and the time to write and load it, follow what the view holds,
 *   not its capacity.
 *
 * VALIDATION (engine/checkpoint_load.c), before any offset is followed:
 *   magic, format, header_size, hdr_sum; the file size equals the sizes the
 *   header gives, nchunks = ceil(seg_bytes / chunk_bytes), seg_bytes a
 *   multiple of 4096 within CQRS_SEG_MAX_SIZE; engine name and view name
 *   equal the engine's; the row schema hash and the event layouts hash
 *   (every registered event type's schema and how older layouts of it are
 *   read: flags, declared defaults, an upcaster; a checkpoint applied
 *   otherwise is not what a replay today would build) equal the
 *   registered ones; the chunk table hashes to total; every chunk read
 *   hashes to its entry. A restore then creates a new generation of the
 *   view with the checkpoint's capacity and requires that its parameter
 *   block (bytes [128, 1016) of the segment: capacity, row size, indexes,
 *   region offsets, the row schema hash) equals the checkpoint's byte for
 *   byte; only then is the body's mutable part, [1088, seg_bytes), copied
 *   in (the new segment keeps its own header and live line: generation,
 *   owner, flags; the primary index epoch comes from the header).
 *
 * CONSISTENCY
 *   The body is the segment as it was when the batch ending at seq closed:
 *   every row seqlock even, view_seq even, applied_seq = seq. The copy is
 *   taken by engine/checkpoint_write.c (userfaultfd write-protect, or a
 *   copy at the batch boundary).
 */
#ifndef CQRS_ENGINE_CHECKPOINT_FORMAT_H
#define CQRS_ENGINE_CHECKPOINT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "cqrs_schema.h"

#define CQRS_CKPT_MAGIC UINT64_C(0x31504b4353525143) /* "CQRSCKP1" little-endian */
#define CQRS_CKPT_FORMAT 1u
#define CQRS_CKPT_HDR_SIZE 4096u
#define CQRS_CKPT_CHUNK (64u << 10) /* bytes per checksummed chunk; the unit of a
				       write-protect fault's copy */
#define CQRS_CKPT_PARAMS_OFF 128u   /* the segment's parameter block ... */
#define CQRS_CKPT_PARAMS_END 1016u  /* ... up to the immutable block's checksum */
#define CQRS_CKPT_BODY_COPY_OFF 1088u /* restore copies [this, seg_bytes) */
#define CQRS_CKPT_REQUEST ".request" /* DATA/checkpoints/[<view>/].request: a
					request from another process (the engine
					takes and removes it) */

typedef struct cqrs_ckpt_hdr {
	uint64_t magic;
	uint32_t format;
	uint32_t header_size;   /* CQRS_CKPT_HDR_SIZE */
	char engine[CQRS_NAME_MAX];
	char view[CQRS_NAME_MAX];
	uint64_t schema_hash;   /* the view's row schema (cqrs_schema_hash) */
	uint64_t applied_seq;   /* the view is as after this seq */
	uint64_t generation;    /* the generation it was taken from (informational) */
	uint64_t origin;        /* the journal it was written from (engine's origin) */
	uint64_t capacity;      /* rows, as in the parameter block */
	uint64_t seg_bytes;     /* body bytes: the segment's size */
	uint32_t chunk_bytes;   /* CQRS_CKPT_CHUNK */
	uint32_t epoch;         /* the live line's primary index epoch */
	uint64_t nchunks;
	uint64_t table_off;     /* header_size + seg_bytes */
	int64_t created_ns;     /* wall clock */
	uint32_t copy_mode;     /* enum cqrs_ckpt_mode it was taken with */
	uint32_t reserved0;
	uint64_t total;         /* XXH3-64 of the chunk table */
	uint64_t events_hash;   /* the registered event layouts and their upcasting
				   it was applied with (cqrs__checkpoint_events_hash),
				   over the types in events_types */
	uint64_t events_types[4]; /* bitmap of the event types registered then: a
				   type registered later is new (no event of it is
				   in the rows) and does not invalidate the file */
	uint64_t reserved[3];
} cqrs_ckpt_hdr;

#define CQRS_CKPT_HDR_SUM_OFF (CQRS_CKPT_HDR_SIZE - 8u) /* u64 hdr_sum */

_Static_assert(sizeof(cqrs_ckpt_hdr) <= CQRS_CKPT_HDR_SUM_OFF, "header fits its block");

/* CQRS_CKPT_CHUNK zero bytes (engine/checkpoint_load.c). */
extern const uint8_t cqrs__ckpt_zeros[];

/* The table entry of a zero chunk of len bytes (<= CQRS_CKPT_CHUNK). */
uint64_t cqrs__ckpt_zero_sum(size_t len);
_Static_assert(CQRS_CKPT_CHUNK % 4096u == 0, "chunks are whole pages");

#endif
