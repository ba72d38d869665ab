/*
 * client/gateway_format.h - the command gateway's wire and memory layout:
 * the directory in the control segment's gateway region, the UNIX socket
 * handshake, the engine page every client maps read-only, and each
 * client's own connection memory (request ring, reply ring). Shared by the
 * engine (engine/gateway.c, engine/gateway_accept.c) and the client library
 * (client/client.c); nothing here is public API.
 *
 * Trust
 *   No process but the engine writes memory the engine reads without
 *   validating it, and no client can reach another client's memory:
 *   - each client's rings live in a memfd of its own, created by the
 *     engine per connection and passed to that client alone (SCM_RIGHTS);
 *     it is sealed F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL once sized, so
 *     the client can scribble on it (the engine copies and validates what
 *     it reads) but never shrink it under the engine's mapping (no SIGBUS);
 *   - the engine page (state, the command thread's doorbell) is a memfd
 *     sealed F_SEAL_FUTURE_WRITE as well: clients can only map it
 *     read-only; nobody but the engine can write it;
 *   - who may connect is decided from the peer's credentials (SO_PEERCRED,
 *     SO_PEERGROUPS) against the engine's configuration, and the number of
 *     connections is bounded in total and per uid;
 *   - the socket's close tells the engine the client is gone (no pid
 *     polling); the engine closing it tells the client it was dropped or
 *     the engine died.
 *   A client that breaks its own rings (counter gw_drops) or the socket
 *   protocol (gw_kicked) is dropped with a log line; nothing it writes
 *   reaches anyone else.
 *
 * Finding the gateway
 *   The control segment (shm/control.h) reserves a 64 KiB region for the
 *   gateway. The engine writes a cqrs_gw_dir there once, before the control
 *   state turns RUNNING, and publishes it by storing its magic last
 *   (release). It names the listening socket (Linux abstract namespace,
 *   "cqrs.<engine>.<generation in hex>": unguessable before the engine
 *   starts, gone with the process, nothing to clean up) and the pid that
 *   listens (a client checks SO_PEERCRED of its connection against it: the
 *   pid, and the uid that owns the control segment, which must be one the
 *   client trusts, so no other process can pose as the engine), and maps
 *   command schema i of
 *   the control's command region (ascending type id) to its type id and
 *   size. Clients must share the engine's network namespace.
 *
 * Handshake
 *   The client connects and sends one cqrs_gw_ask (magic, version, the
 *   client id it asks for: 0 lets the engine assign one). The engine's
 *   gateway thread accepts, checks the peer's credentials and the limits,
 *   waits (in its poll set, never blocking) for the ask, checks it, and
 *   answers with one message: a cqrs_gw_hello, with two descriptors
 *   (SCM_RIGHTS: the connection memfd, then the engine page memfd) when
 *   status is 0, none when it refuses (status -EACCES: credentials;
 *   CQRS_EFULL: the total or the per-uid limit; CQRS_EFORMAT: the ask is
 *   malformed or of another version; -EINVAL: the id asked for is one the
 *   engine assigns; -EBUSY: another live connection holds that id; reason
 *   says which). The client checks the hello (magic, version, sizes
 *   against fstat, seals) before it maps anything. After the hello the
 *   engine never sends again; the client sends only doorbell rings (one
 *   CQRS_GW_BELL_BYTE each): any other byte, or descriptors (closed
 *   unread), get it dropped; the connection ends when either side closes
 *   (or half-closes). A peer that connects and never asks holds its slot
 *   (counted against its uid's limit) until it closes.
 *
 * Client ids
 *   Every request's client id is its connection's, never the request's
 *   own. An id the engine assigns has bit 63 set and is new for every
 *   connection. A client may instead ask for a stable id, any value in
 *   1 .. 2^63-1 (the client library maps a name into it: FNV-1a, bit 63
 *   cleared): the same id on every connection, across reconnects and
 *   engine restarts, so the dedup window (rebuilt from the journal at
 *   start) answers a resent (id, client_seq) CQRS_EDUPLICATE with the
 *   original seq. At most one live connection holds a stable id (-EBUSY
 *   for the next while it is open; the socket's hang-up frees it at once,
 *   before the old connection's requests in flight are answered: those are
 *   already in the command thread's order, ahead of anything the new one
 *   sends). Whoever may connect may ask for any stable id: the ids are
 *   idempotency keys, not credentials.
 *
 * The engine page (CQRS_GW_INFO_SIZE bytes, read-only for clients)
 *   off 0    cqrs_gw_info line 0: magic, version, size, generation, state
 *            (RUNNING, STOPPING, STOPPED)
 *   off 64   line 1: the command thread's doorbell (cqrs_bell layout: seq,
 *            waiters). The command thread sleeps on it (ringbuf/wait.h's
 *            protocol); in-process submitters wake it directly. A client
 *            cannot write it: after committing a request it loads waiters
 *            (seq_cst) and, when non-zero, sends one byte on its socket;
 *            the gateway thread then wakes the command thread (seq += 1,
 *            futex_wake) on the client's behalf. While the command thread
 *            is awake (busy, or yielding for idle_yield_us) nothing is
 *            sent: no syscall per request on either side. (A client's own
 *            FUTEX_WAKE on the read-only word would work but could be lost:
 *            without the seq bump the command thread may not be queued yet,
 *            and FUTEX_WAKE's count cannot tell, since any process that
 *            maps the page may wait on the word too.)
 *
 * The connection memory (hello.conn_size bytes, the client's own)
 *   off 0          cqrs_gw_conn (128 bytes): engine line (magic, state
 *                  ACTIVE or DROPPED, client id), client line (unused)
 *   off req_off    request ring: an MPSC ring (ringbuf/mpsc.c) of
 *                  req_capacity bytes and CQRS_GW_REQ_PRODUCERS producer
 *                  slots, laid out by the engine; the engine's consumer
 *                  handle keeps its sizes and cursor in engine memory
 *   off reply_off  reply ring: cqrs_gw_reply header (engine line, client
 *                  line) then reply_entries fixed entries of 128 bytes
 *   Every page is touched by the engine before the hello is sent.
 *
 * Request (one MPSC record of type CQRS_GW_REC_REQUEST)
 *     cqrs__gw_req (48 bytes) then exactly `size` command bytes. The command
 *   thread copies the header and payload into its own memory before it
 *   looks at them, then checks (engine/gateway_check.c): record type, record
 *   length >= 48 and == 48 + size, a registered command type, size == its
 *   schema's size, known flags, reserved 0, client_seq != 0, aggregate id
 *   != UINT64_MAX. A request that fails is answered CQRS_EFORMAT with the
 *   reason; the client id always comes from the connection, never from the
 *   client. A ring the consumer finds broken (impossible tail, records it
 *   has to skip as corrupt) drops the client.
 *
 * Reply ring (single producer: the command thread; single consumer)
 *   tail: entries published (engine line; seq_cst exchange after the
 *   entry's plain stores: release publishes them, seq_cst for the futex
 *   protocol). head: entries consumed (client line; seq_cst exchange after
 *   copying out). The engine keeps its own tail and only reads head: head
 *   must satisfy tail - head <= entries (else the client broke its ring:
 *   dropped), and tail - head == entries means full. Entry i lives at
 *   (i % entries). futex: seq (engine line) / waiters (client line),
 *   ringbuf/wait.h. backlog (engine line): 1 while answers wait in the
 *   engine because the ring was full; a client that frees room and sees it
 *   rings the bell. At most CQRS_GW_QUOTA requests per connection are in
 *   flight (taken and not yet written to the reply ring), so what waits is
 *   bounded and a client that stops reading stalls only itself.
 *
 * Liveness seen from the client: the engine page's state != RUNNING, its
 *   connection's state DROPPED, or (checked every 100 ms while waiting) its
 *   socket readable or hung up: CQRS_ESTOPPED.
 */
#ifndef CQRS_CLIENT_GATEWAY_FORMAT_H
#define CQRS_CLIENT_GATEWAY_FORMAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cqrs_common.h"
#include "cqrs_ring.h"

#define CQRS_GW_DIR_MAGIC UINT64_C(0x3244574753525143)   /* "CQRSGWD2" little-endian */
#define CQRS_GW_HELLO_MAGIC UINT64_C(0x4f4c4c4548575143) /* "CQWHELLO" */
#define CQRS_GW_ASK_MAGIC UINT64_C(0x4b53415f57475143)   /* "CQGW_ASK" */
#define CQRS_GW_INFO_MAGIC UINT64_C(0x4f464e4957475143)  /* "CQGWINFO" */
#define CQRS_GW_CONN_MAGIC UINT64_C(0x4e4e4f4357475143)  /* "CQGWCONN" */
#define CQRS_GW_VERSION 3u /* changes whenever anything in this file changes layout */

#define CQRS_GW_MAX_TYPES 256u
#define CQRS_GW_DEFAULT_CLIENTS 256u /* connections at once */
#define CQRS_GW_DEFAULT_PER_UID 64u  /* ... of them per peer uid */
#define CQRS_GW_MAX_CLIENTS 4096u
#define CQRS_GW_SOCK_NAME 64u        /* abstract name bytes, NUL-terminated */
#define CQRS_GW_REQ_MIN_CAPACITY (64u << 10)
#define CQRS_GW_REQ_PRODUCERS 4u
#define CQRS_GW_REPLY_ENTRIES 256u
#define CQRS_GW_QUOTA 256u          /* requests in flight per connection */
#define CQRS_GW_CLAIM_TIMEOUT_NS UINT64_C(1000000000)
#define CQRS_GW_INFO_SIZE 4096u
#define CQRS_GW_CONN_HDR 128u
#define CQRS_GW_REC_REQUEST 1u      /* MPSC record type of a request */
#define CQRS_GW_REASON 96u
#define CQRS_GW_BELL_BYTE 0         /* what a client sends to ring the doorbell */
#define CQRS_GW_ASSIGNED_BIT (UINT64_C(1) << 63) /* set in engine-assigned client ids only */

enum cqrs_gw_state { CQRS_GW_RUNNING = 1, CQRS_GW_STOPPING = 2, CQRS_GW_STOPPED = 3 };
enum cqrs_gw_conn_state { CQRS_GW_ACTIVE = 1, CQRS_GW_DROPPED = 2 };

/* In the control segment's gateway region. */
typedef struct cqrs_gw_dir {
	_Atomic uint64_t magic; /* CQRS_GW_DIR_MAGIC, stored last (release) */
	uint32_t version;       /* CQRS_GW_VERSION */
	uint32_t dir_size;      /* sizeof(cqrs_gw_dir) */
	uint64_t generation;    /* the engine's gateway generation (also in the hello) */
	uint32_t engine_pid;    /* the listening process */
	uint32_t ncmds;         /* == the control's command schema count */
	char sock_name[CQRS_GW_SOCK_NAME]; /* abstract socket name without its leading NUL */
	uint32_t cmd_type[CQRS_GW_MAX_TYPES]; /* type id of command schema i */
	uint32_t cmd_size[CQRS_GW_MAX_TYPES]; /* its record size */
} cqrs_gw_dir;

_Static_assert(offsetof(cqrs_gw_dir, sock_name) == 32, "layout");
_Static_assert(offsetof(cqrs_gw_dir, cmd_type) == 96, "layout");
_Static_assert(sizeof(cqrs_gw_dir) == 96 + 2 * 4 * CQRS_GW_MAX_TYPES, "layout");

/* The client's one message before the hello. */
typedef struct cqrs_gw_ask {
	uint64_t magic;         /* CQRS_GW_ASK_MAGIC */
	uint32_t version;       /* CQRS_GW_VERSION */
	uint32_t flags;         /* 0 */
	uint64_t client_id;     /* 0: assign one; else a stable id, 1 .. 2^63-1 */
	uint64_t reserved[5];   /* 0 */
} cqrs_gw_ask;

_Static_assert(sizeof(cqrs_gw_ask) == 64, "ask layout");

/* The engine's one message on a connection. */
typedef struct cqrs_gw_hello {
	uint64_t magic;         /* CQRS_GW_HELLO_MAGIC */
	uint32_t version;       /* CQRS_GW_VERSION */
	int32_t status;         /* 0, -EACCES, CQRS_EFULL, CQRS_ESTOPPED, CQRS_EFORMAT,
				   -EINVAL, -EBUSY, -ENOMEM */
	uint64_t generation;
	uint64_t client_id;     /* the connection's idempotency key (journal's client id) */
	uint64_t conn_size;     /* the connection memfd's size */
	uint64_t req_off, req_size, req_capacity;
	uint64_t reply_off, reply_size;
	uint32_t reply_entries, quota;
	uint32_t info_size;     /* CQRS_GW_INFO_SIZE */
	uint32_t reserved;
	char reason[CQRS_GW_REASON]; /* why it refused (NUL-terminated) */
} cqrs_gw_hello;

_Static_assert(sizeof(cqrs_gw_hello) == 96 + CQRS_GW_REASON, "hello layout");

/* The engine page, line 0 and line 1. */
typedef struct cqrs_gw_info {
	uint64_t magic;              /* CQRS_GW_INFO_MAGIC */
	uint32_t version, size;      /* CQRS_GW_VERSION, CQRS_GW_INFO_SIZE */
	uint64_t generation;
	_Atomic uint32_t state;      /* enum cqrs_gw_state */
	uint32_t reserved0;
	uint8_t pad0[32];
	/* line 1: the command thread's doorbell (engine/doorbell.h's cqrs_bell layout) */
	_Atomic uint32_t bell_seq;
	_Atomic uint32_t bell_waiters;
	uint8_t pad1[56];
} cqrs_gw_info;

_Static_assert(offsetof(cqrs_gw_info, bell_seq) == 64, "bell line");
_Static_assert(sizeof(cqrs_gw_info) == 128 && sizeof(cqrs_gw_info) <= CQRS_GW_INFO_SIZE, "lines");

/* Head of a connection's memory. */
typedef struct cqrs_gw_conn {
	/* line 0: engine */
	uint64_t magic;          /* CQRS_GW_CONN_MAGIC */
	_Atomic uint32_t state;  /* enum cqrs_gw_conn_state */
	uint32_t reserved0;
	uint64_t client_id;
	uint8_t pad0[40];
	/* line 1: client (unused) */
	uint8_t pad1[64];
} cqrs_gw_conn;

_Static_assert(sizeof(cqrs_gw_conn) == CQRS_GW_CONN_HDR, "two lines");

typedef struct cqrs_gw_reply {
	/* line 0: engine */
	_Atomic uint64_t tail;
	_Atomic uint32_t seq;     /* futex word */
	_Atomic uint32_t backlog; /* 1: answers wait in the engine */
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

/* Connection memory layout for the sizes in h (req_capacity, reply_entries
 * set; the offsets, sizes and conn_size filled). 0 or -EINVAL. */
int cqrs__gw_layout(cqrs_gw_hello *h);

/* Checks a hello's layout fields against the canonical layout for its own
 * sizes. 0 or CQRS_EFORMAT. */
int cqrs__gw_layout_check(const cqrs_gw_hello *h);

/* The abstract socket name for an engine and generation into out (cap >=
 * CQRS_GW_SOCK_NAME). 0, -EINVAL. */
int cqrs__gw_sock_name(char *out, size_t cap, const char *engine, uint64_t generation);

static inline cqrs_gw_reply *cqrs__gw_reply(uint8_t *conn, const cqrs_gw_hello *h)
{
	return (cqrs_gw_reply *)(void *)(conn + h->reply_off);
}

static inline cqrs_gw_entry *cqrs__gw_entry(cqrs_gw_reply *r, uint32_t entries, uint64_t i)
{
	return (cqrs_gw_entry *)(void *)(r + 1) + (i & (entries - 1));
}

#endif
