/*
 * cqrs_ring.h - the lock-free rings: a broadcast ring (one producer, many
 * consumers) for events, and a multi-producer single-consumer ring that
 * lives in shared memory for commands.
 *
 * Overview
 *   Both rings are byte rings of variable-length, 8-byte aligned records
 *   laid out in memory the caller supplies (malloc'd, static, or a
 *   MAP_SHARED mapping): a header with a magic, a format version and the
 *   sizes, hot cursors on their own 128-byte blocks, then the data region.
 *   Everything inside is an offset or a 64-bit position, never a pointer,
 *   so the same bytes work at any address in any process. Positions grow
 *   forever; a record's byte index is position & (capacity - 1).
 *
 *   cqrs_bcast (ringbuf/broadcast.c, format essay there): Disruptor-style
 *   broadcast. One producer claims records in place (or copies a run of
 *   records already framed as cqrs_ring_rec + payload), then publishes the
 *   whole batch with one store. Each consumer has its own cursor and sees
 *   every record in order; the producer is gated by the slowest consumer and
 *   never overwrites a record some consumer has not released. Consumers join
 *   at the tail or at a known record position, and leave, while running.
 *
 *       cqrs_bcast *r; cqrs_bcast_consumer *c; void *p;
 *       cqrs_bcast_init(mem, cqrs_bcast_footprint(cap, 8), cap, 8, &r);
 *       cqrs_bcast_consumer_add_at_tail(r, &c);              (consumer thread)
 *       cqrs_bcast_try_claim(r, type, len, &p); memcpy(p, ...);  (producer)
 *       cqrs_bcast_publish(r);
 *       cqrs_bcast_consume_batch(c, handler, arg, 0);        (consumer)
 *
 *   cqrs_mpsc (ringbuf/mpsc.c, format essay there): any number of producer
 *   threads or processes claim space with a CAS on the tail, write their
 *   record in place and commit it; one consumer polls records in claim
 *   order. A producer that dies between claim and commit does not wedge the
 *   ring: after claim_timeout_ns the consumer skips its claim. A producer
 *   that writes garbage cannot make the consumer read outside the ring: every
 *   header is validated against the ring bounds and the claimed extent, and
 *   bad records are skipped and counted. The SPSC case (a gateway's response
 *   ring) is the same ring with one producer: its CAS is uncontended.
 *
 *       cqrs_mpsc_producer *p; void *d;
 *       cqrs_mpsc_producer_open(r, &p);
 *       if (cqrs_mpsc_try_claim(p, type, len, &d) == 0) {
 *               memcpy(d, msg, len); cqrs_mpsc_commit(p, len);
 *       }
 *       cqrs_mpsc_poll(r, handler, arg, 0);                  (consumer)
 *
 *   Wait strategies (cqrs_ring_wait), for every blocking call on either
 *   side: busy-spin, spin-then-yield, and spin-then-block on a futex in the
 *   ring header; the futex is woken only when a waiters count says someone
 *   sleeps, so the common path makes no syscall.
 *
 * Caveats
 *   - One producer per broadcast ring and one consumer per MPSC ring at a
 *     time; each consumer handle and each MPSC producer handle is used by
 *     one thread at a time. Handles are process-local; the memory must stay
 *     mapped until every handle on it is closed.
 *   - Pointers handed out (claimed payloads, records passed to handlers,
 *     cqrs_bcast_poll runs) point into the ring: valid until the next
 *     publish/commit (producer) or release / the handler's return (consumer).
 *   - A broadcast consumer that stops consuming stops the producer (that is
 *     the gating contract). A consumer in a process that died keeps its slot
 *     and gates the producer for ever: share a broadcast ring between
 *     threads of one process, or processes that live and die together.
 *   - MPSC claim timeouts are the contract with producers: a producer must
 *     commit or abort within claim_timeout_ns of its claim. Past that, its
 *     claim may be skipped; its commit then fails with CQRS_ESTALE and the
 *     message is lost (the producer may send it again). Payload bytes a
 *     producer stalled that long writes after the skip may land in space the
 *     ring has reused; the consumer still never reads out of bounds (it
 *     validates every header) but such records may arrive garbled or be
 *     counted as corrupt.
 *   - A dead process that was blocked in a futex wait leaves the waiters
 *     count raised: wakers then make a (harmless) futex syscall per publish.
 *   - Records never straddle the end of the data region: the bytes left
 *     before the end become a padding record (type 0 in the broadcast ring,
 *     reserved; a discard record in the MPSC ring), so the largest record
 *     is half the capacity, and a cqrs_bcast_poll run stops at the end.
 *   - MPSC producer slots of dead processes are reclaimed by pid liveness
 *     (kill(pid, 0)): all processes on a ring must share a pid namespace.
 */
#ifndef CQRS_RING_H
#define CQRS_RING_H

#include <stddef.h>
#include <stdint.h>

#include "cqrs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- shared by both rings --------------------------------------------- */

/* How a blocking call waits when it cannot proceed. */
typedef enum cqrs_ring_wait {
	CQRS_WAIT_SPIN = 0,  /* busy-spin with a CPU pause: lowest latency, one core each */
	CQRS_WAIT_YIELD = 1, /* spin briefly, then sched_yield() between checks */
	CQRS_WAIT_BLOCK = 2  /* spin, yield a little, then sleep on a futex until woken */
} cqrs_ring_wait;

/* Called once per record by the consume/poll functions. data points into
 * the ring and is valid until the handler returns. Return 0 to go on, any
 * other value to stop after this record (it counts as consumed). */
typedef int (*cqrs_ring_handler)(void *arg, uint32_t type, const void *data, uint32_t len);

/* Record alignment in both rings. */
#define CQRS_RING_ALIGN 8u
#define CQRS_RING_ALIGN_UP(n) (((n) + (CQRS_RING_ALIGN - 1)) & ~(uint64_t)(CQRS_RING_ALIGN - 1))

/* Timeouts: wait forever. */
#define CQRS_RING_FOREVER UINT64_MAX

/* ---- broadcast ring (one producer, many consumers) --------------------- */

typedef struct cqrs_bcast cqrs_bcast;
typedef struct cqrs_bcast_consumer cqrs_bcast_consumer;

/* The header of every broadcast record, followed by len payload bytes and
 * padding up to the next multiple of 8. A framed run (cqrs_bcast_poll,
 * cqrs_bcast_publish_framed) is a sequence of these back to back. */
typedef struct cqrs_ring_rec {
	uint32_t len;  /* payload bytes (not counting this header) */
	uint32_t type; /* application type; 0 (CQRS_BCAST_TYPE_PAD) is reserved */
} cqrs_ring_rec;

#define CQRS_BCAST_TYPE_PAD 0u
/* Bytes a record of len payload bytes takes in the ring. */
#define CQRS_BCAST_REC_SIZE(len) CQRS_RING_ALIGN_UP(sizeof(cqrs_ring_rec) + (uint64_t)(len))
#define CQRS_BCAST_MIN_CAPACITY 1024u
#define CQRS_BCAST_MAX_CAPACITY (UINT64_C(1) << 40)
#define CQRS_BCAST_MAX_CONSUMERS 1024u

/* Bytes of memory a ring of this capacity and consumer count needs, or 0
 * when the arguments are out of range (capacity a power of two within
 * [CQRS_BCAST_MIN_CAPACITY, CQRS_BCAST_MAX_CAPACITY], 1..1024 consumers). */
CQRS_API size_t cqrs_bcast_footprint(uint64_t capacity, uint32_t max_consumers);

/* Lays out a new, empty ring in mem (64-byte aligned, at least
 * cqrs_bcast_footprint() bytes) and returns a process-local handle in *out
 * (free it with cqrs_bcast_close; mem stays the caller's). The largest
 * record is capacity/2 bytes including its header.
 * Returns 0, -EINVAL (bad arguments or alignment), -ENOMEM. */
CQRS_API int cqrs_bcast_init(void *mem, size_t size, uint64_t capacity, uint32_t max_consumers,
			     cqrs_bcast **out);

/* Validates a ring someone else laid out in mem (magic, format version,
 * sizes, cursors) and returns a handle. Returns 0, -EINVAL, -ENOMEM, or
 * CQRS_EFORMAT (not a ring, another version, or inconsistent sizes; see
 * cqrs_last_error()). */
CQRS_API int cqrs_bcast_attach(void *mem, size_t size, cqrs_bcast **out);

/* Frees the handle (not the memory, not the consumers: remove them first). */
CQRS_API void cqrs_bcast_close(cqrs_bcast *r);

CQRS_API uint64_t cqrs_bcast_capacity(const cqrs_bcast *r);

/* Position just past the last published record (where a consumer added at
 * the tail starts). */
CQRS_API uint64_t cqrs_bcast_tail(const cqrs_bcast *r);

/* Producer. Claims room for one record of len payload bytes and the given
 * type (not 0) and returns a pointer to its payload in *payload; write it,
 * then publish. Several claims before one publish form a batch. O(1);
 * O(consumers) when the cached gate is exhausted. Returns 0, -EAGAIN (no
 * room: some consumer has not released enough), -ENOSPC (the unpublished
 * batch itself fills the ring: publish first), -EMSGSIZE (len too big),
 * -EINVAL (type 0). */
CQRS_API int cqrs_bcast_try_claim(cqrs_bcast *r, uint32_t type, uint32_t len, void **payload);

/* As cqrs_bcast_try_claim, waiting for room with the given strategy up to
 * timeout_ns (CQRS_RING_FOREVER: no limit). Returns the same codes as
 * try_claim, with -ETIMEDOUT instead of -EAGAIN. */
CQRS_API int cqrs_bcast_claim(cqrs_bcast *r, uint32_t type, uint32_t len, cqrs_ring_wait wait,
			      uint64_t timeout_ns, void **payload);

/* Makes every record claimed since the last publish visible to consumers
 * (one release store) and wakes sleeping consumers if there are any. With
 * nothing claimed it only wakes sleepers (so that they re-check a flag the
 * caller set; a consumer about to sleep may miss such a nudge and sleep
 * until its timeout). */
CQRS_API void cqrs_bcast_publish(cqrs_bcast *r);

/* try_claim + copy + publish, for one record. Same return codes. */
CQRS_API int cqrs_bcast_offer(cqrs_bcast *r, uint32_t type, const void *data, uint32_t len);

/* Copies a run of nbytes of records already framed as cqrs_ring_rec +
 * payload + padding (each type non-zero) into the ring as one contiguous
 * block and publishes it (and anything claimed before it). The run is
 * validated first. Returns 0, CQRS_EFORMAT (bad framing), -EMSGSIZE (run
 * larger than capacity/2), -ETIMEDOUT, -ENOSPC. */
CQRS_API int cqrs_bcast_publish_framed(cqrs_bcast *r, const void *recs, size_t nbytes,
				       cqrs_ring_wait wait, uint64_t timeout_ns);

/* Adds a consumer that starts at position pos: a record boundary no older
 * than the oldest record still in the ring (a position some consumer
 * reported, or the tail). Returns 0, -ERANGE (pos is in the future, not
 * aligned, or its records may already be overwritten), CQRS_EFULL (every
 * slot is taken), -ENOMEM. The handle is freed by
 * cqrs_bcast_consumer_remove. */
CQRS_API int cqrs_bcast_consumer_add(cqrs_bcast *r, uint64_t pos, cqrs_bcast_consumer **out);

/* Adds a consumer at the current tail (it sees records published from now
 * on). Returns 0, CQRS_EFULL, -ENOMEM, -EAGAIN (the producer kept moving;
 * only under a producer that never publishes its claims). */
CQRS_API int cqrs_bcast_consumer_add_at_tail(cqrs_bcast *r, cqrs_bcast_consumer **out);

/* Releases the consumer's slot (the producer stops waiting for it) and
 * frees the handle. Returns 0. */
CQRS_API int cqrs_bcast_consumer_remove(cqrs_bcast_consumer *c);

/* Position of the consumer's next record. */
CQRS_API uint64_t cqrs_bcast_consumer_position(const cqrs_bcast_consumer *c);

/* Hands each published record after the consumer's position to fn (at most
 * max records, 0: no limit), then releases them all to the producer with
 * one store. Returns the number of records handled (0: none available), or
 * CQRS_ECORRUPT when a record header does not fit the ring (the position
 * stays on it). */
CQRS_API int cqrs_bcast_consume_batch(cqrs_bcast_consumer *c, cqrs_ring_handler fn, void *arg,
				      size_t max);

/* Hands out the longest contiguous run of published records after the
 * consumer's position (validated; padding skipped): *recs and *nbytes.
 * Walk it with cqrs_ring_rec and CQRS_BCAST_REC_SIZE. Nothing is released
 * until cqrs_bcast_release. Returns 0, -EAGAIN (nothing published),
 * CQRS_ECORRUPT. */
CQRS_API int cqrs_bcast_poll(cqrs_bcast_consumer *c, const void **recs, size_t *nbytes);

/* Releases nbytes (a whole number of records from the last poll) to the
 * producer. Returns 0 or -EINVAL. */
CQRS_API int cqrs_bcast_release(cqrs_bcast_consumer *c, size_t nbytes);

/* Waits until a record is published after the consumer's position.
 * Returns 0, -ETIMEDOUT. */
CQRS_API int cqrs_bcast_wait(cqrs_bcast_consumer *c, cqrs_ring_wait wait, uint64_t timeout_ns);

/* ---- multi-producer single-consumer ring (shared memory) --------------- */

typedef struct cqrs_mpsc cqrs_mpsc;
typedef struct cqrs_mpsc_producer cqrs_mpsc_producer;

#define CQRS_MPSC_REC_HDR 16u /* bytes of header before each payload */
#define CQRS_MPSC_MIN_CAPACITY 1024u
#define CQRS_MPSC_MAX_CAPACITY (UINT64_C(1) << 27)
#define CQRS_MPSC_MAX_PRODUCERS 4096u
#define CQRS_MPSC_DEFAULT_TIMEOUT_NS UINT64_C(1000000000)

/* Consumer-side counters (also readable by any attached process). */
typedef struct cqrs_mpsc_stats {
	uint64_t records;  /* committed records handed to the consumer */
	uint64_t timeouts; /* claims skipped after the claim timeout (dead or stalled producers) */
	uint64_t corrupt;  /* malformed headers or lengths skipped */
} cqrs_mpsc_stats;

/* Bytes of memory for a ring of this capacity (power of two within
 * [CQRS_MPSC_MIN_CAPACITY, CQRS_MPSC_MAX_CAPACITY]) and producer slots
 * (1..CQRS_MPSC_MAX_PRODUCERS), or 0 when out of range. */
CQRS_API size_t cqrs_mpsc_footprint(uint64_t capacity, uint32_t max_producers);

/* Lays out a new, empty ring in mem (64-byte aligned) and returns a handle.
 * The whole footprint is zeroed (O(capacity)): nothing an earlier ring left
 * in this memory can pass for a record. claim_timeout_ns: how long the
 * consumer waits on a claimed but uncommitted record before skipping it
 * (CQRS_RING_FOREVER: never; 0: at once). The largest payload is
 * capacity/2 - 16 bytes. The handle is built from the arguments, never
 * re-read from the shared header. Returns 0, -EINVAL, -ENOMEM. */
CQRS_API int cqrs_mpsc_init(void *mem, size_t size, uint64_t capacity, uint32_t max_producers,
			    uint64_t claim_timeout_ns, cqrs_mpsc **out);

/* Validates a ring laid out by someone else (possibly another process) and
 * returns a handle. Returns 0, -EINVAL, -ENOMEM, CQRS_EFORMAT. */
CQRS_API int cqrs_mpsc_attach(void *mem, size_t size, cqrs_mpsc **out);

/* Frees the handle (close the producers opened on it first). */
CQRS_API void cqrs_mpsc_close(cqrs_mpsc *r);

/* Overrides the claim timeout for this (consumer) handle. */
CQRS_API void cqrs_mpsc_set_claim_timeout(cqrs_mpsc *r, uint64_t claim_timeout_ns);

/* Takes a producer slot (reclaiming slots of processes that died) and
 * returns a producer handle, used by one thread at a time. Returns 0,
 * CQRS_EFULL (every slot is taken), -ENOMEM. */
CQRS_API int cqrs_mpsc_producer_open(cqrs_mpsc *r, cqrs_mpsc_producer **out);

/* Aborts an outstanding claim, frees the slot and the handle. */
CQRS_API void cqrs_mpsc_producer_close(cqrs_mpsc_producer *p);

/* Claims room for one record of up to len payload bytes; *data points at
 * the payload. One claim per producer at a time: commit or abort it within
 * the claim timeout. Lock-free (one CAS; retried under contention).
 * Returns 0, -EAGAIN (ring full), -EMSGSIZE, -EBUSY (a claim is already
 * outstanding), CQRS_ECORRUPT (the shared cursors are impossible). */
CQRS_API int cqrs_mpsc_try_claim(cqrs_mpsc_producer *p, uint32_t type, uint32_t len, void **data);

/* As try_claim, waiting for room up to timeout_ns. -ETIMEDOUT instead of
 * -EAGAIN. */
CQRS_API int cqrs_mpsc_claim(cqrs_mpsc_producer *p, uint32_t type, uint32_t len,
			     cqrs_ring_wait wait, uint64_t timeout_ns, void **data);

/* Commits the outstanding claim with len (<= the claimed length) payload
 * bytes: publishes its header (control word with the extent and the
 * committed state) last, with a release CAS, and wakes a sleeping consumer.
 * Returns 0, -EINVAL (no claim, len too big), CQRS_ESTALE (the consumer
 * timed the claim out and skipped it: the record is lost; send it again). */
CQRS_API int cqrs_mpsc_commit(cqrs_mpsc_producer *p, uint32_t len);

/* Drops the outstanding claim (the consumer skips it). Returns 0, -EINVAL
 * (no claim). */
CQRS_API int cqrs_mpsc_abort(cqrs_mpsc_producer *p);

/* claim + copy + commit. Same codes as try_claim and commit. */
CQRS_API int cqrs_mpsc_offer(cqrs_mpsc_producer *p, uint32_t type, const void *data, uint32_t len);

/* Consumer (one at a time): hands committed records to fn in claim order,
 * at most max (0: no limit), skipping aborted and padding records, claims
 * timed out (after claim_timeout_ns) and malformed records, then releases
 * the space with one store. Stops at a record claimed but not yet
 * committed. Returns the number of records handled, or CQRS_ECORRUPT when
 * the shared tail itself is impossible. */
CQRS_API int cqrs_mpsc_poll(cqrs_mpsc *r, cqrs_ring_handler fn, void *arg, size_t max);

/* Consumer: waits until poll can make progress (a record is committed, or
 * a stalled claim reached its timeout). Returns 0, -ETIMEDOUT. */
CQRS_API int cqrs_mpsc_wait(cqrs_mpsc *r, cqrs_ring_wait wait, uint64_t timeout_ns);

/* Consumer: 1 if cqrs_mpsc_poll can make progress now (a record is
 * committed, or a stalled claim reached its timeout), else 0. Never
 * blocks; its loads are seq_cst, so a consumer can use it as the re-check
 * of its own futex protocol over several rings (ringbuf/wait.h). */
CQRS_API int cqrs_mpsc_ready(cqrs_mpsc *r);

/* Reads the consumer counters from the ring header. */
CQRS_API void cqrs_mpsc_stats_get(const cqrs_mpsc *r, cqrs_mpsc_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* CQRS_RING_H */
