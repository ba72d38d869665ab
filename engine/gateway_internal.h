/*
 * engine/gateway_internal.h - the gateway's state, shared by its two
 * threads: the gateway thread (engine/gateway_accept.c: accepts
 * connections, checks credentials and limits, creates each connection's
 * memory, watches the sockets) and the command thread (engine/gateway.c:
 * takes requests from live connections' rings and writes their answers).
 * Layouts and protocol: client/gateway_format.h.
 *
 * A connection slot's life (st, one atomic word per slot):
 *   FREE     the gateway thread owns the slot. An admitted connection
 *            waits in it (pending) for its ask; then the gateway thread
 *            fills it (client id, memory, handle, tickets) and stores
 *            READY (release).
 *   READY    the command thread adopts it on its next scan (it scans when
 *            `changes` moved; acquire pairs with the release above) and
 *            stores LIVE: from then on it alone touches the rings and
 *            tickets. The gateway thread only sets `hup` (release) when
 *            the socket closes, and bumps `changes`.
 *   LIVE     requests flow. hup, or a broken ring (the command thread
 *            drops the client), ends it: RETIRING.
 *   RETIRING no request is taken; answers of requests in flight are
 *            discarded as they come back. Once every ticket is back, at the
 *            end of the command thread's next gateway poll (never inside a
 *            poll of that slot's ring):
 *   DONE     (release; pairs with the gateway thread's acquire) the command
 *            thread is done with the slot and writes the eventfd; the
 *            gateway thread closes the socket, unmaps and frees, and stores
 *            FREE.
 * The command thread never waits for the gateway thread nor makes a
 * syscall for a request; it writes the eventfd once per batch of slots it
 * finished (cold).
 */
#ifndef CQRS_ENGINE_GATEWAY_INTERNAL_H
#define CQRS_ENGINE_GATEWAY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/gateway_format.h"
#include "engine/engine_internal.h"
#include "engine/gateway_check.h"
#include "engine/ticket.h"

#define GW_NONE UINT32_MAX

enum gw_slot_state { GS_FREE = 0, GS_READY = 1, GS_LIVE = 2, GS_RETIRING = 3, GS_DONE = 4 };

struct gw_conn;

typedef struct gw_ticket {
	ticket_impl t; /* first: on_done gets &t */
	uint64_t request_id;
	struct gw_conn *conn;
	uint32_t next; /* free list or the overflow list (index in conn->tickets) */
} gw_ticket;

typedef struct gw_conn {
	_Atomic uint32_t st;  /* enum gw_slot_state */
	_Atomic uint32_t hup; /* gateway thread: the socket closed */
	uint32_t index;
	/* Filled by the gateway thread while FREE; read-only for the command
	 * thread after READY. */
	int fd;
	uid_t uid;
	pid_t pid;
	uint8_t *mem;         /* the connection memory, mapped read-write */
	size_t size;
	cqrs_gw_conn *hdr;
	cqrs_gw_reply *reply;
	cqrs_mpsc *req;       /* our consumer handle (sizes in our memory) */
	gw_ticket *tickets;   /* CQRS_GW_QUOTA of them */
	uint64_t client_id;
	/* Command thread only (initialised by the gateway thread before READY). */
	uint32_t free_head, nfree;
	uint32_t ovf_head, ovf_tail;
	uint32_t active_pos;
	uint64_t reply_tail;  /* ours; the shared tail is a copy */
	uint64_t corrupt_seen;
	int finishing;        /* queued to go DONE at the end of the poll */
	/* Gateway thread only. */
	uint32_t pfd_pos;     /* index in the poll set, GW_NONE when not watched */
	int pending;          /* admitted, its ask not read yet (st stays FREE) */
} gw_conn;

typedef struct gw_uid_count {
	uid_t uid;
	uint32_t n;
} gw_uid_count;

typedef struct gateway {
	cqrs_engine *e;
	uint64_t generation;
	cqrs_gw_hello layout;   /* template: sizes of every connection's memory */
	uint32_t max_clients, per_uid;
	uid_t *uids;
	uint32_t nuids;
	gid_t *gids;
	uint32_t ngids;
	gw_conn *conns;         /* max_clients slots */
	char sock_name[CQRS_GW_SOCK_NAME];

	/* the engine page */
	cqrs_gw_info *info;
	int info_fd;

	/* gateway thread <-> command thread */
	_Atomic uint64_t changes; /* bumped (seq_cst) after a READY or a hup */
	_Atomic int stop;
	int evfd;                 /* command thread -> gateway thread: slots DONE; stop */

	/* gateway thread only */
	pthread_t thread;
	int thread_started;
	int lfd;
	struct pollfd *pfd;       /* [0] listen, [1] evfd, then sockets */
	uint32_t *pfd_conn;
	uint32_t npfd;
	gw_uid_count *uid_counts;
	uint32_t nuid_counts;
	uint32_t nclients;
	uint64_t nconnects;
	uint64_t refused_logged, kicked_logged;

	/* command thread only */
	uint32_t *active;
	uint32_t nactive;
	uint32_t rr;
	cqrs_gw_cmdtab tab;
	uint8_t *cmdbuf;
	size_t cmdbuf_cap;
	uint64_t changes_seen;
	int stopping;
	uint32_t *finishing;      /* slots to hand back (DONE) at the end of the poll */
	uint32_t nfinishing;
} gateway;

/* Gateway thread side (engine/gateway_accept.c). */

/* Creates the engine page, the listening socket and the eventfd, and
 * starts the gateway thread. Cold. 0 or -errno (nothing left behind). */
int cqrs__gw_accept_start(gateway *g);

/* Stops and joins the gateway thread, then closes every connection (their
 * clients see the socket close) and the listening socket. */
void cqrs__gw_accept_stop(gateway *g);

/* Command thread: tell the gateway thread that slots went DONE (one eventfd
 * write). */
void cqrs__gw_notify(gateway *g);

#endif
