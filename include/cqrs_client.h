/*
 * cqrs_client.h - the command gateway's client API (libcqrs_client): submit
 * commands to a running engine in another process through shared memory.
 *
 * Overview
 *   A client connects to an engine by name. Through the engine's control
 *   segment it finds the engine's gateway socket and learns the engine's
 *   command types with their schemas; the engine checks the client's
 *   credentials and hands it memory of its own (a request ring and a reply
 *   ring no other process can reach). It then submits commands as records
 *   of their schema's size:
 *
 *     cqrs_client *c;
 *     cqrs_client_connect("orders", &c);
 *     uint32_t type; const cqrs_schema *s;
 *     cqrs_client_command_type(c, "CreateOrder", &type, &s);
 *     char rec[256] = {0};   // s->size bytes, filled with cqrs_record_set*
 *     cqrs_result r;
 *     int rc = cqrs_client_submit(c, type, rec, s->size, NULL, &r, UINT64_MAX);
 *     // rc == r.status: 0 accepted (r.seq), CQRS_EREJECTED (r.reason), ...
 *
 *   cqrs_client_submit is send + wait for that request's answer. For
 *   pipelining, cqrs_client_send queues requests and cqrs_client_poll /
 *   cqrs_client_wait collect their results (by request_id) as the engine
 *   answers, in the order the engine processed them (the order sent).
 *
 *   Read your writes: after an accepted submit, cqrs_view_wait(view, r.seq)
 *   (cqrs_view.h) returns once the view has applied that seq.
 *
 * Idempotency
 *   Every connection has a client id, used with each request's client_seq
 *   as the key of the engine's dedup window: a request repeated with the
 *   same client_seq under the same client id answers CQRS_EDUPLICATE with
 *   the original's seq. By default the engine assigns the id (bit 63 set)
 *   and a new connection (reconnect) gets a new one. A client that must
 *   survive losing an answer connects with a stable id instead
 *   (cqrs_client_connect_opts: client_id 1 .. 2^63-1, or client_name,
 *   hashed into that range by cqrs_client_id_from_name): the same id on
 *   every connection, and the engine's window for it (rebuilt from the
 *   journal when the engine starts) survives reconnects and engine
 *   restarts, so after a lost answer it reconnects and resends with the
 *   same client_seq: CQRS_EDUPLICATE and the original seq if it had been
 *   applied, else it is applied now, never twice. A stable id is held by
 *   one live connection at a time (-EBUSY for another; a dead holder's
 *   hang-up frees it at once), and every request on it carries an explicit
 *   client_seq (-EINVAL without: the library does not know which numbers
 *   earlier connections used). Stable ids are keys, not credentials: any
 *   process allowed to connect may use any one. Commands submitted in the
 *   engine's process share the id space (cqrs_cmd.client_id).
 *   On an engine-assigned id: client_seq 0 lets the library
 *   number the request: the highest client_seq used on this connection so
 *   far (automatic or explicit) plus one, so automatic numbers never collide
 *   with explicit keys sent before them; after an explicit UINT64_MAX,
 *   automatic numbering refuses with -EOVERFLOW. An explicit key is the
 *   caller's: one that repeats an earlier request's (automatic or explicit)
 *   answers CQRS_EDUPLICATE, and so does one more than the engine's
 *   dedup_window below the highest seen on the connection (too old to tell
 *   from a retry).
 *
 * Threads
 *   A cqrs_client is used by one thread at a time (its rings are
 *   single-producer, single-consumer); open one client per thread.
 *
 * Caveats
 *   - Whom a process takes for the engine: /dev/shm is writable by every
 *     user, so while an engine is down anyone can create segments under its
 *     name. A reader or client takes an engine's segments (and, for a
 *     client, its socket) only when they belong to a trusted uid: its own,
 *     root, or one listed in the environment variable CQRS_TRUST_UIDS
 *     (decimal uids separated by commas, read at open/connect); anything
 *     else is -EACCES. A client also checks that the process answering on
 *     the socket is the engine (its pid) running as that uid.
 *   - The engine restarting (or dying) is noticed: pending and later calls
 *     return CQRS_ESTOPPED; close and connect again. Requests whose answer
 *     never came may or may not have been processed.
 *   - A client that stops reading its results slows only itself: the
 *     engine parks at most 256 answers per client when its reply ring is
 *     full and takes no more of its requests until it reads (sends then
 *     return -EAGAIN once its request ring fills); it never blocks on it.
 *   - A client that breaks its own rings (writes into its connection memory
 *     behind the library's back) is dropped: its calls return
 *     CQRS_ESTOPPED. Nothing a client does reaches another client or makes
 *     the engine fault or stall.
 *   - Who may connect: the engine's configuration (cqrs_config
 *     gateway_uids, gateway_gids; by default the engine's own uid and
 *     group), checked from the socket's peer credentials; the client also
 *     needs read access to the engine's control segment (mode 0640 by
 *     default). The engine bounds connections in total and per uid
 *     (gateway_max_clients, gateway_max_per_uid): CQRS_EFULL beyond. Users
 *     who share a uid trust each other (one could ptrace the other).
 *   - The connection is a socket: a process that forks keeps it open in the
 *     child too, and the engine frees it only when every copy is closed.
 *     Clients must share the engine's network namespace (abstract socket).
 *   - Schemas returned by the command functions belong to the client and
 *     stay valid until cqrs_client_close.
 *   - Waiting for an answer spins briefly, then yields the CPU, then sleeps
 *     on a futex. The environment variables CQRS_CLIENT_SPIN (pause checks,
 *     default 64) and CQRS_CLIENT_YIELD (sched_yield checks, default 500;
 *     the yields stop after 500 us or at the call's deadline, whatever the
 *     count), read at connect, tune it: on dedicated cores more spinning
 *     lowers latency; where cores are shared, spinning starves the engine.
 */
#ifndef CQRS_CLIENT_H
#define CQRS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cqrs_common.h"
#include "cqrs_schema.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cqrs_client cqrs_client;

#ifndef CQRS_CMD_EXPECT_VERSION
#define CQRS_CMD_EXPECT_VERSION 1u /* same value as in cqrs.h */
#endif

typedef struct cqrs_submit_opts {
	uint64_t aggregate_id;     /* the aggregate the command targets (0: none) */
	uint64_t expected_version; /* checked when flags has CQRS_CMD_EXPECT_VERSION */
	uint64_t client_seq;       /* idempotency key on this connection; 0: auto-numbered */
	uint32_t flags;            /* CQRS_CMD_EXPECT_VERSION */
	uint32_t reserved;         /* must be 0 */
} cqrs_submit_opts;

typedef struct cqrs_result {
	int status;                /* 0, CQRS_EREJECTED, CQRS_ECONFLICT, CQRS_EDUPLICATE, -errno,
				      CQRS_EFORMAT (the gateway refused a malformed request) */
	uint32_t reserved;
	uint64_t seq;              /* seq of the command's last event (accepted/duplicate), else 0 */
	uint64_t request_id;       /* the id cqrs_client_send returned */
	char reason[96];           /* NUL-terminated; "" when none */
} cqrs_result;

/* Connects to the running engine named `engine` over its gateway socket,
 * maps the connection memory the engine hands over and reads its command
 * schemas. *out is the caller's until cqrs_client_close. Returns 0,
 * CQRS_ENOTFOUND (no such engine, or it has no gateway), CQRS_ESTOPPED
 * (engine not running), CQRS_EFULL (the engine's connection limit, in total
 * or for this uid, still reached after 1 s of retries), -EACCES (not
 * allowed: control segment unreadable, or credentials refused),
 * CQRS_EFORMAT (another gateway version, or a socket that is not the
 * engine's), -ETIMEDOUT, -ENOMEM, -errno. cqrs_last_error() says why. */
CQRS_API int cqrs_client_connect(const char *engine, cqrs_client **out);

/* Options for cqrs_client_connect_opts. Zero it, set size = sizeof it
 * (a later library with more fields reads only the fields `size` covers). */
typedef struct cqrs_client_opts {
	uint32_t size;           /* sizeof(cqrs_client_opts) */
	uint32_t flags;          /* 0 */
	uint64_t client_id;      /* 0: the engine assigns one; else a stable id, 1 .. 2^63-1 */
	const char *client_name; /* or a stable id by name (cqrs_client_id_from_name); NULL: none */
} cqrs_client_opts;

/* cqrs_client_connect with options (NULL: the defaults). Besides
 * cqrs_client_connect's returns: -EINVAL (bad size or flags, both an id
 * and a name, an id with bit 63 set), -EBUSY (another live connection
 * holds that client id). */
CQRS_API int cqrs_client_connect_opts(const char *engine, const cqrs_client_opts *opts,
				      cqrs_client **out);

/* The stable client id for a name: FNV-1a of its bytes with bit 63
 * cleared (never 0); 0 for NULL or "". The same name gives the same id in
 * every process, library version and language binding. */
CQRS_API uint64_t cqrs_client_id_from_name(const char *name);

/* Closes the connection (the engine frees it) and the client (NULL ok).
 * Results not yet collected are lost. */
CQRS_API void cqrs_client_close(cqrs_client *c);

/* Number of command types the engine registered. */
CQRS_API int cqrs_client_command_count(cqrs_client *c);

/* The i-th command type (ascending type id): its id and schema (either out
 * pointer may be NULL). Returns 0 or CQRS_ENOTFOUND (i out of range). */
CQRS_API int cqrs_client_command_at(cqrs_client *c, int i, uint32_t *type,
				    const cqrs_schema **schema);

/* Looks a command type up by its schema name. Returns 0 or CQRS_ENOTFOUND. */
CQRS_API int cqrs_client_command_type(cqrs_client *c, const char *name, uint32_t *type,
				      const cqrs_schema **schema);

/* Sends one command and waits for its answer (timeout_ns: UINT64_MAX
 * forever). Results of earlier cqrs_client_send requests that arrive
 * meanwhile are kept for cqrs_client_poll/wait. Fills *res (res may be
 * NULL) and returns res->status: 0 accepted, CQRS_EREJECTED,
 * CQRS_ECONFLICT, CQRS_EDUPLICATE, CQRS_EFORMAT (malformed), -errno,
 * CQRS_ESTOPPED (the engine went away or restarted), -ETIMEDOUT (the
 * request stays pending: its result comes later through poll/wait),
 * -EINVAL (unknown type or wrong size, checked before sending),
 * -EOVERFLOW (no automatic client_seq left, see Idempotency). */
CQRS_API int cqrs_client_submit(cqrs_client *c, uint32_t type, const void *cmd, size_t len,
				const cqrs_submit_opts *opts, cqrs_result *res,
				uint64_t timeout_ns);

/* Queues one command without waiting; *request_id (may be NULL) names its
 * result. Returns 0, -EAGAIN (request ring full or too many results
 * uncollected: poll first), -EINVAL, -EOVERFLOW (client_seq 0 after
 * UINT64_MAX was used: no automatic number left), CQRS_ESTOPPED.
 * Wait-free (one send() when the engine's command thread sleeps). */
CQRS_API int cqrs_client_send(cqrs_client *c, uint32_t type, const void *cmd, size_t len,
			      const cqrs_submit_opts *opts, uint64_t *request_id);

/* Collects one result if one has arrived. Returns 1 (*res filled), 0 (none
 * yet), CQRS_ESTOPPED or another negative code. Never blocks. */
CQRS_API int cqrs_client_poll(cqrs_client *c, cqrs_result *res);

/* Blocks until the next result arrives or timeout_ns (UINT64_MAX forever).
 * Returns 1 (*res filled), -ETIMEDOUT, CQRS_ESTOPPED, or another negative
 * code; -EAGAIN if nothing is pending at all. */
CQRS_API int cqrs_client_wait(cqrs_client *c, cqrs_result *res, uint64_t timeout_ns);

/* The engine name this client connected to (valid until close). */
CQRS_API const char *cqrs_client_engine(cqrs_client *c);

/* The connection's client id (the engine's idempotency key), 0 if closed. */
CQRS_API uint64_t cqrs_client_id(cqrs_client *c);

/* Requests sent whose result was not collected yet. */
CQRS_API uint32_t cqrs_client_pending(cqrs_client *c);

#ifdef __cplusplus
}
#endif

#endif /* CQRS_CLIENT_H */
