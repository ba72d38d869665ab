/*
 * client/gateway_format.h - the command gateway's shared-memory layout:
 * the directory in the control segment's gateway region, the gateway
 * segment "/cqrs.<engine>.gw" with its client slots, the request record and
 * the reply ring. Shared by the engine (engine/gateway.c) and the client
 * library (client/client.c); nothing here is public API.
 *
 * Finding the gateway
 *   The control segment (shm/control.h) reserves a 64 KiB region for the
 *   gateway. The engine writes a cqrs_gw_dir there once, before the control
 *   state turns RUNNING, and publishes it by storing its magic last
 *   (release). It names the gateway segment and its generation, and maps
 *   command schema i of the control's command region (ascending type id,
 *   blobs without ids) to its type id and size.
 *
 * The gateway segment (common 1024-byte block and live line: segment.h)
 *
 *   off    size  what
 *   0      128   cqrs_seg_hdr, kind CQRS_GW_SEG_KIND (4), object ""
 *   128    ...   cqrs__gw_params (immutable, checksummed): version, slot
 *                count and the offsets/sizes of everything below
 *   1024   64    live line: owner = the engine (pid | start time), RETIRED
 *                when the engine stopped or a successor replaced it
 *   1088   64    line 0, engine-written: state (RUNNING, STOPPING, STOPPED),
 *                counters (connects, reclaims, drops, malformed, ...)
 *   1152   64    line 1, client-written: connect_seq (bumped after a slot
 *                changes hands), reap_seq (bumped when a client found no
 *                free slot: "look for dead owners now")
 *   1216   64    line 2: the command thread's doorbell (engine/doorbell.h)
 *   2048   ...   nslots client slots of slot_size bytes each (128-aligned):
 *     +0        128  cqrs_gw_slot: owner, state (client line); client id,
 *                    epoch, counters (engine line)
 *     +req_off  ...  request ring: an MPSC ring (ringbuf/mpsc.c) of
 *                    req_capacity bytes, 4 producer slots, laid out once by
 *                    the engine at open; the client attaches and produces,
 *                    the command thread consumes
 *     +reply_off ... reply ring: cqrs_gw_reply header (engine line, client
 *                    line) then reply_entries fixed entries of 128 bytes
 *   Total rounded up to 4096. Mode: the engine's shm_mode with the group
 *   and other read bits copied to the write bits (0640 -> 0660).
 *
 * Slot ownership (the state word is CASed by both sides)
 *   FREE       owner 0. A client claims it: CAS owner 0 -> its owner word
 *              (pid | start time << 22, shm/segment.h), then CAS state
 *              FREE -> CONNECTING, bump connect_seq (seq_cst), ring the bell.
 *   CONNECTING the command thread assigns a client id (unique across engine
 *              restarts: the journal's dedup window survives them), bumps the
 *              epoch, CAS CONNECTING -> ACTIVE (release: the client id first).
 *   ACTIVE     requests flow. The client leaves with CAS -> CLOSED (and a
 *              connect_seq bump); the engine may CAS -> DROPPED (the client
 *              broke its rings or its owner word), after which the client's
 *              calls return CQRS_ESTOPPED until it closes.
 *   CLOSED, or an owner found dead (/proc start time, one occupied slot per
 *              10 ms, all of them on a reap_seq bump): the engine resets the
 *              slot: new epoch (answers still in flight for the old one are
 *              dropped), request ring laid out afresh, reply cursors equal,
 *              state FREE, then owner 0 (release).
 *
 * Request (one MPSC record of type CQRS_GW_REC_REQUEST)
 *     cqrs__gw_req (48 bytes) then exactly `size` command bytes. The command
 *   thread copies the header and payload into its own memory before it
 *   looks at them, then checks (engine/gateway_check.c): record type, record
 *   length >= 48 and == 48 + size, a registered command type, size == its
 *   schema's size, known flags, reserved 0, client_seq != 0, aggregate id
 *   != UINT64_MAX. A request that fails is answered CQRS_EFORMAT with the
 *   reason; the client id always comes from the slot, never from the client.
 *
 * Reply ring (single producer: the command thread; single consumer)
 *   tail: entries published (engine line; seq_cst store after the entry's
 *   plain stores: release publishes them, seq_cst for the futex protocol).
 *   head: entries consumed (client line; release store after copying out).
 *   The engine keeps its own tail and only reads head: head must satisfy
 *   tail - head <= entries (else the client broke its ring: dropped), and
 *   tail - head == entries means full. Entry i lives at (i % entries).
 *   futex: seq (engine line) / waiters (client line), ringbuf/wait.h.
 *   backlog (engine line): 1 while answers wait in the slot's overflow
 *   because the ring was full; a client that frees room and sees it rings
 *   the bell. Per slot at most CQRS_GW_QUOTA requests are in flight
 *   (taken and not yet written to the reply ring), so the overflow is
 *   bounded and a client that stops reading stalls only itself: the engine
 *   stops taking its requests, never blocks, never drops it for that.
 *
 * Liveness seen from the client: state != RUNNING, the live line RETIRED,
 *   its slot no longer ACTIVE or with another epoch, or (checked every
 *   100 ms while waiting) the engine's owner word dead: CQRS_ESTOPPED.
 */
#ifndef CQRS_CLIENT_GATEWAY_FORMAT_H
#define CQRS_CLIENT_GATEWAY_FORMAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cqrs_common.h"
#include "cqrs_ring.h"
#include "shm/segment.h"

/* The segment kind: the next one after shm/segment.h's three. */
#define CQRS_GW_SEG_KIND 4u
_Static_assert(CQRS_GW_SEG_KIND == CQRS_SEG_VIEW + 1, "gateway kind follows segment.h's kinds");

#define CQRS_GW_DIR_MAGIC UINT64_C(0x3144574753525143) /* "CQRSGWD1" little-endian */
#define CQRS_GW_VERSION 1u /* changes whenever anything in this file changes layout */

#define CQRS_GW_MAX_TYPES 256u
#define CQRS_GW_DEFAULT_SLOTS 64u
#define CQRS_GW_MAX_SLOTS 1024u
#define CQRS_GW_REQ_MIN_CAPACITY (64u << 10)
#define CQRS_GW_REQ_PRODUCERS 4u
#define CQRS_GW_REPLY_ENTRIES 256u
#define CQRS_GW_QUOTA 256u          /* requests in flight per slot */
#define CQRS_GW_CLAIM_TIMEOUT_NS UINT64_C(1000000000)
#define CQRS_GW_LINES_OFF CQRS_SEG_LINES_OFF
#define CQRS_GW_PARAMS_OFF 128u
#define CQRS_GW_REC_REQUEST 1u      /* MPSC record type of a request */
#define CQRS_GW_REASON 96u

enum cqrs_gw_state { CQRS_GW_RUNNING = 1, CQRS_GW_STOPPING = 2, CQRS_GW_STOPPED = 3 };

enum cqrs_gw_slot_state {
	CQRS_GW_FREE = 0,
	CQRS_GW_CONNECTING = 1,
	CQRS_GW_ACTIVE = 2,
	CQRS_GW_CLOSED = 3,
	CQRS_GW_DROPPED = 4,
};

/* In the control segment's gateway region. */
typedef struct cqrs_gw_dir {
	_Atomic uint64_t magic; /* CQRS_GW_DIR_MAGIC, stored last (release) */
	uint32_t version;       /* CQRS_GW_VERSION */
	uint32_t dir_size;      /* sizeof(cqrs_gw_dir) */
	uint64_t generation;    /* equals the gateway segment's header generation */
	uint64_t seg_size;
	char seg_name[CQRS_SEG_NAME_MAX];
	uint32_t nslots;
	uint32_t ncmds;         /* == the control's command schema count */
	uint32_t cmd_type[CQRS_GW_MAX_TYPES]; /* type id of command schema i */
	uint32_t cmd_size[CQRS_GW_MAX_TYPES]; /* its record size */
} cqrs_gw_dir;

_Static_assert(offsetof(cqrs_gw_dir, seg_name) == 32, "layout");
_Static_assert(offsetof(cqrs_gw_dir, nslots) == 160, "layout");
_Static_assert(offsetof(cqrs_gw_dir, cmd_type) == 168, "layout");
_Static_assert(sizeof(cqrs_gw_dir) == 168 + 2 * 4 * CQRS_GW_MAX_TYPES, "layout");

/* Immutable parameters at offset 128 of the gateway segment. */
typedef struct cqrs__gw_params {
	uint32_t version;          /* CQRS_GW_VERSION */
	uint32_t nslots;
	uint64_t slots_off;        /* CQRS_SEG_REGION_OFF */
	uint64_t slot_size;
	uint64_t req_off;          /* offset of the request ring in a slot */
	uint64_t req_size;         /* cqrs_mpsc_footprint(req_capacity, producers) */
	uint64_t req_capacity;
	uint32_t req_producers;
	uint32_t reply_entries;
	uint64_t reply_off;        /* offset of the reply ring in a slot */
	uint64_t reply_size;
	uint32_t quota;
	uint32_t entry_size;       /* sizeof(cqrs_gw_entry) */
	uint64_t claim_timeout_ns;
	uint64_t total_size;
} cqrs__gw_params;

_Static_assert(sizeof(cqrs__gw_params) == 96, "layout");
_Static_assert(CQRS_GW_PARAMS_OFF + sizeof(cqrs__gw_params) <= CQRS_SEG_IMM_SIZE - 8,
	       "params fit the immutable block");

typedef struct cqrs_gw_lines {
	/* line 0: engine */
	_Atomic uint32_t state;       /* enum cqrs_gw_state */
	uint32_t reserved0;
	_Atomic uint64_t connects;    /* counters: relaxed, one writer */
	_Atomic uint64_t reclaims;    /* slots of dead clients reset */
	_Atomic uint64_t drops;       /* clients dropped for breaking their rings */
	_Atomic uint64_t malformed;   /* requests answered CQRS_EFORMAT */
	_Atomic uint64_t requests;    /* requests taken */
	_Atomic uint64_t overflows;   /* answers parked because a reply ring was full */
	_Atomic uint64_t disconnects; /* slots reset after CLOSED */
	/* line 1: clients */
	_Atomic uint64_t connect_seq;
	_Atomic uint64_t reap_seq;
	uint8_t pad1[48];
	/* line 2: the doorbell (engine/doorbell.h's cqrs_bell layout) */
	_Atomic uint32_t bell_seq;
	_Atomic uint32_t bell_waiters;
	uint8_t pad2[56];
} cqrs_gw_lines;

_Static_assert(offsetof(cqrs_gw_lines, connect_seq) == 64, "client line");
_Static_assert(offsetof(cqrs_gw_lines, bell_seq) == 128, "bell line");
_Static_assert(sizeof(cqrs_gw_lines) == 192, "three lines");
_Static_assert(CQRS_GW_LINES_OFF + sizeof(cqrs_gw_lines) <= CQRS_SEG_REGION_OFF, "lines fit");

typedef struct cqrs_gw_slot {
	/* line 0: written by the client (and CASed by the engine) */
	_Atomic uint64_t owner;  /* pid | start ticks << 22; 0 = free */
	_Atomic uint32_t state;  /* enum cqrs_gw_slot_state */
	uint32_t reserved0;
	uint8_t pad0[48];
	/* line 1: written by the engine */
	_Atomic uint64_t client_id;
	_Atomic uint64_t epoch;  /* bumped at every connect and reset */
	_Atomic uint64_t requests;
	_Atomic uint64_t malformed;
	uint8_t pad1[32];
} cqrs_gw_slot;

_Static_assert(offsetof(cqrs_gw_slot, client_id) == 64, "engine line");
_Static_assert(sizeof(cqrs_gw_slot) == 128, "two lines");

typedef struct cqrs_gw_reply {
	/* line 0: engine */
	_Atomic uint64_t tail;
	_Atomic uint32_t seq;     /* futex word */
	_Atomic uint32_t backlog; /* 1: answers parked in the overflow */
	uint8_t pad0[48];
	/* line 1: client */
	_Atomic uint64_t head;
	_Atomic uint32_t waiters;
	uint32_t reserved1;
	uint8_t pad1[48];
} cqrs_gw_reply;

_Static_assert(offsetof(cqrs_gw_reply, head) == 64, "client line");
_Static_assert(sizeof(cqrs_gw_reply) == 128, "two lines");

typedef struct cqrs_gw_entry {
	uint64_t request_id;
	uint64_t seq;
	int32_t status;
	uint32_t reserved;
	char reason[CQRS_GW_REASON]; /* NUL-terminated */
	uint64_t pad;
} cqrs_gw_entry;

_Static_assert(sizeof(cqrs_gw_entry) == 128, "one entry, two cache lines");

typedef struct cqrs__gw_req {
	uint64_t request_id;
	uint64_t aggregate_id;
	uint64_t expected_version;
	uint64_t client_seq;
	uint32_t type;
	uint32_t size;
	uint32_t flags;
	uint32_t reserved;
} cqrs__gw_req;

_Static_assert(sizeof(cqrs__gw_req) == 48, "request header");
_Static_assert(offsetof(cqrs__gw_req, type) == 32, "layout");

#define CQRS_GW_KNOWN_FLAGS 1u /* CQRS_CMD_EXPECT_VERSION */

/* Canonical layout for p->nslots, p->req_capacity, p->reply_entries (the
 * rest filled). 0 or -EINVAL. */
int cqrs__gw_layout(cqrs__gw_params *p);

/* Checks a params block read from a segment of seg_size bytes against the
 * canonical layout for its own sizes. 0 or CQRS_EFORMAT. */
int cqrs__gw_params_check(const cqrs__gw_params *p, uint64_t seg_size);

/* "/cqrs.<engine>.gw". 0, -EINVAL. */
int cqrs__gw_seg_name(char *out, size_t cap, const char *engine);

/* Pointers into a mapped gateway segment (offsets validated beforehand). */
static inline cqrs_gw_lines *cqrs__gw_lines(uint8_t *base)
{
	return (cqrs_gw_lines *)(void *)(base + CQRS_GW_LINES_OFF);
}

static inline cqrs_gw_slot *cqrs__gw_slot(uint8_t *base, const cqrs__gw_params *p, uint32_t i)
{
	return (cqrs_gw_slot *)(void *)(base + p->slots_off + (uint64_t)i * p->slot_size);
}

static inline void *cqrs__gw_req_mem(cqrs_gw_slot *s, const cqrs__gw_params *p)
{
	return (uint8_t *)(void *)s + p->req_off;
}

static inline cqrs_gw_reply *cqrs__gw_reply(cqrs_gw_slot *s, const cqrs__gw_params *p)
{
	return (cqrs_gw_reply *)(void *)((uint8_t *)(void *)s + p->reply_off);
}

static inline cqrs_gw_entry *cqrs__gw_entry(cqrs_gw_reply *r, const cqrs__gw_params *p, uint64_t i)
{
	return (cqrs_gw_entry *)(void *)(r + 1) + (i & (p->reply_entries - 1));
}

#endif
