/*
 * engine/engine_internal.h - the engine object shared by the engine's
 * sources: lifecycle (engine.c), the command thread (command.c), submission
 * (submit.c), recovery (replay.c), projectors (projector.c) and the
 * projection view API (proj_views.c).
 *
 * Threads and what they own:
 *   command thread    write model, version map, dedup window, journal writer,
 *                     pending-ack queue, broadcast ring producer side
 *   projector i       its projections' views (single writer each), its ring
 *                     consumer cursor
 *   any thread        cqrs_submit* (MPSC submission ring), cqrs_engine_stop
 */
#ifndef CQRS_ENGINE_INTERNAL_H
#define CQRS_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cqrs.h"
#include "cqrs_counters.h"
#include "engine/deadletter.h"
#include "engine/model/dedup.h"
#include "engine/gateway.h"
#include "engine/journal/journal.h"
#include "engine/ticket.h"
#include "engine/model/versions.h"

#define CQRS_MAX_TYPES 256
#define CQRS_MAX_PROJECTIONS 32
#define CQRS_MAX_PROJECTORS 16
#define CQRS_MAX_EVENTS_PER_COMMAND 64

typedef struct cmd_type {
	const cqrs_schema *schema;
	cqrs_decide_fn decide;
} cmd_type;

typedef struct event_type {
	const cqrs_schema *schema;
	cqrs_evolve_fn evolve;
} event_type;

/* One event emitted by decide, kept in the command thread's scratch until
 * decide returns (then journaled and evolved, or dropped on rejection). */
typedef struct emitted {
	uint32_t type;
	uint32_t size;
	uint64_t aggregate_id;
	uint32_t offset; /* payload offset in the scratch buffer */
} emitted;

struct cqrs_ctx {
	cqrs_engine *e;
	int64_t now_ns;
	uint32_t nemitted;
	uint32_t scratch_used;
	emitted ev[CQRS_MAX_EVENTS_PER_COMMAND];
	char reason[96];
	_Alignas(8) uint8_t scratch[CQRS_MAX_EVENTS_PER_COMMAND * 1024];
};

/* A ticket whose completion waits for the journal to reach `target`. */
typedef struct pending_ack {
	ticket_impl *ticket;
	uint64_t target;
	uint64_t submit_ns;
} pending_ack;

typedef struct proj_view proj_view; /* projector.c */

struct cqrs_proj {
	cqrs_engine *e;
	cqrs_projection_def def;
	uint32_t index;
	proj_view *views[CQRS_MAX_VIEWS_PER_PROJECTION];
	_Atomic uint64_t applied_seq; /* last seq applied (published per batch) */
	_Atomic int halted;           /* set by a HALT dead letter */
	_Atomic int rebuild_requested;
	_Atomic int retry_requested;
	uint64_t halted_at;           /* seq of the event that halted it */
	uint64_t dead_letters;
	int fail_code;
	char fail_reason[184];
};

struct cqrs_engine {
	cqrs_config cfg;
	char name[CQRS_NAME_MAX];
	char data_dir[3072];
	char journal_dir[3200];
	void *model;

	cmd_type cmds[CQRS_MAX_TYPES];
	event_type events[CQRS_MAX_TYPES];
	const cqrs_schema *event_schemas[CQRS_MAX_TYPES];
	cqrs_proj *projs[CQRS_MAX_PROJECTIONS];
	uint32_t nprojs;

	/* command thread state */
	cqrs_journal *journal;
	cqrs_versions *versions; /* aggregate id -> version */
	cqrs_dedup *dedup;
	cqrs_ctx *ctx;
	pending_ack *acks; /* ring of ack_cap entries */
	uint64_t ack_head, ack_tail, ack_cap;
	uint64_t last_assigned; /* highest seq handed out */

	pthread_t command_thread;
	pthread_t projector_threads[CQRS_MAX_PROJECTORS];
	uint32_t nprojectors;

	_Atomic int state;      /* engine_state */
	_Atomic int poison;     /* 0 or the journal's error */
	_Atomic uint64_t durable_seq;
	_Atomic uint64_t published_seq;
	_Atomic int command_done;  /* the command thread published its last batch */
	void *projectors;          /* projector.c's per-thread state */

	cqrs_dl_log *dead_letters;
	pthread_mutex_t dl_lock; /* projectors append dead letters (cold path) */

	uint64_t uid; /* unique per engine in this process (submit.c) */
	cqrs_bell own_bell;
	cqrs_bell *bell; /* the command thread's doorbell (gateway.h) */
	void *gateway;   /* gateway state (gateway.c), NULL when none */
	void *sub;    /* submission ring (submit.c) */
	void *bcast;  /* broadcast ring (projector.c) */
	void *ctl;    /* control segment (views.c) */
	cqrs_counters *ctr; /* in the control segment's counters region */
	cqrs_counters private_ctr; /* used while there is no control segment */
	void *bcast_mem;
	int command_started;
};

enum engine_state {
	ENGINE_OPEN = 0,
	ENGINE_RUNNING = 1,
	ENGINE_STOPPING = 2,
	ENGINE_STOPPED = 3,
};

void cqrs__log(cqrs_engine *e, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
