/*
 * engine/engine_internal.h - the engine object, shared by the engine's
 * files:
 *   engine.c            config defaults, open, registration of types, log
 *   lifecycle.c         start, stop, close
 *   command_thread.c    the command thread's step and loop
 *   command.c           deciding one command, its journal group, its ack
 *   submit.c            cqrs_submit*: the in-process submission queue
 *   gateway.c           requests from other processes (gateway_check.c
 *                       validates them)
 *   publish.c           durable batches to the projections
 *   projection.c, proj_views.c, proj_apply.c, proj_rebuild.c,
 *   proj_deadletter.c, projector_thread.c   the projector side
 *                       (engine/projector.h)
 *   replay.c            the write model from the journal at start
 *   snapshot*.c         write-model snapshots (engine/snapshot.h)
 *   schema_check.c      old event layouts read as the registered ones
 *   deadletter.c        the dead-letter log's format
 *   ticket.c            ticket completion and waiting
 *   journal/            the journal (engine/journal/journal.h)
 *   replication/        the journal to NATS JetStream (replication.h)
 *   model/              write-model helpers: versions, dedup, store
 *
 * Threads and what they own:
 *   command thread    write model, version map, dedup window, journal writer,
 *                     pending-ack queue, broadcast ring producer side (or, in
 *                     SHARED threading, every projector)
 *   projector i       its projections' views (single writer each), its ring
 *                     consumer cursor
 *   replicator        its connection, its journal follower, replicated_seq
 *   any thread        cqrs_submit* (MPSC submission ring), cqrs_engine_stop,
 *                     rebuild and retry requests
 * Before the command thread starts, and after it ended, its state belongs
 * to the thread that starts or stops the engine (command_owner).
 */
#ifndef CQRS_ENGINE_INTERNAL_H
#define CQRS_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cqrs.h"
#include "cqrs_counters.h"
#include "engine/doorbell.h"

#define CQRS_MAX_TYPES 256
#define CQRS_MAX_PROJECTIONS CQRS_COUNTERS_MAX_PROJ /* each has its counters block */
#define CQRS_MAX_PROJECTORS 16
#define CQRS_MAX_EVENTS_PER_COMMAND 64

/* The engine's parts, each defined by the file that owns it. */
struct cqrs_bcast;          /* cqrs_ring.h: the broadcast ring (DEDICATED threading) */
struct cqrs_ctl;            /* shm/control.h: the control segment */
struct cqrs_dedup;          /* engine/model/dedup.h */
struct cqrs_dl_log;         /* engine/deadletter.h */
struct cqrs_journal;        /* engine/journal/journal.h */
struct cqrs__snap;          /* engine/snapshot.h */
struct cqrs_repl;           /* engine/replication/replicator.c */
struct cqrs_node;           /* engine/replication/node.c */
struct cqrs_versions;       /* engine/model/versions.h */
struct gateway;             /* engine/gateway.c */
struct submit_queue;        /* engine/submit.c */
struct ticket_impl;         /* engine/ticket.h */
typedef struct cqrs_command_loop cqrs_command_loop; /* engine/command_thread.c */
typedef struct cqrs_publish_ops cqrs_publish_ops;   /* engine/publish.h */
typedef struct proj_view proj_view;                 /* engine/projector.h */
typedef struct projector projector;                 /* engine/projector.h */

typedef struct cmd_type {
	const cqrs_schema *schema;
	cqrs_decide_fn decide;
} cmd_type;

typedef struct event_type {
	const cqrs_schema *schema;
	cqrs_evolve_fn evolve;
	/* Reading its records written with another layout (engine/schema_check.h) */
	uint32_t flags;               /* CQRS_EVENT_MAP_BY_NAME */
	const void *defaults;         /* NULL (zeros) or a record of schema */
	cqrs_upcast_fn upcast;        /* NULL or the application's upcaster */
	void *upcast_arg;
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
	struct ticket_impl *ticket;
	uint64_t target;
	uint64_t submit_ns;
} pending_ack;

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
	/* Stalled: growing a full view found no memory or shared-memory
	 * space (engine/proj_stall.c). Its views stay at stalled_at - 1, no
	 * dead letters, growth retried with backoff until it works. */
	_Atomic int stalled;
	int stall_code;               /* -ENOSPC, -ENOMEM, ... */
	uint64_t stalled_at;          /* seq of the event that needs the room */
	uint64_t stall_retry_ns;      /* monotonic time of the next attempt */
	uint64_t stall_backoff_ns;
	uint32_t stall_retries;
	uint64_t dead_letters;
	/* view checkpoints (engine/checkpoint_write.c) */
	_Atomic int ckpt_requested;   /* cqrs_engine_checkpoint */
	uint64_t ckpt_seq;            /* seq of its last checkpoint started (its thread) */
	int fail_code;
	char fail_reason[184];
};

struct cqrs_engine {
	cqrs_config cfg;
	char name[CQRS_NAME_MAX];
	char data_dir[3072];
	char journal_dir[3200];
	char repl_urls[1024];    /* the config's replication_urls, copied */
	char node_of[CQRS_NAME_MAX]; /* the config's node_of, copied */
	uint64_t journal_origin; /* hash of the journal's real path: stamped on the
				    views written from it (engine/proj_views.c) */
	void *model; /* the application's write model, opaque to the engine */

	cmd_type cmds[CQRS_MAX_TYPES];
	event_type events[CQRS_MAX_TYPES];
	const cqrs_schema *event_schemas[CQRS_MAX_TYPES];
	cqrs_proj *projs[CQRS_MAX_PROJECTIONS];
	uint32_t nprojs;

	/* command thread state */
	struct cqrs_journal *journal;
	struct cqrs_versions *versions; /* aggregate id -> version */
	struct cqrs_dedup *dedup;
	cqrs_ctx *ctx;
	pending_ack *acks; /* ring of ack_cap entries */
	uint64_t ack_head, ack_tail, ack_cap;
	uint64_t last_assigned; /* highest seq handed out */
	const cqrs_command_loop *loop;    /* its step for the threading, set at start */
	const cqrs_publish_ops *publish;  /* how durable batches reach projections */
	bool gateway_first;               /* which source the next batch drains first */
	pthread_t command_owner;          /* the thread that owns the state above */

	pthread_t command_thread;
	pthread_t projector_threads[CQRS_MAX_PROJECTORS];
	uint32_t nprojectors;

	_Atomic int state;      /* engine_state */
	_Atomic int poison;     /* 0 or the journal's error */
	_Atomic uint64_t durable_seq;
	_Atomic uint64_t published_seq;
	_Atomic int command_done;  /* the command thread published its last batch */
	projector *projectors;     /* cfg.projector_threads of them */

	struct cqrs_dl_log *dead_letters;
	pthread_mutex_t dl_lock; /* projectors append dead letters (cold path) */

	uint64_t uid; /* unique per engine in this process (submit.c) */
	cqrs_bell own_bell;
	cqrs_bell *bell;              /* the command thread's doorbell: own_bell or the gateway's */
	struct gateway *gateway;      /* NULL when none */
	struct submit_queue *sub;
	struct cqrs_bcast *bcast;     /* NULL in SHARED threading */
	void *bcast_mem;              /* the broadcast ring's memory block (untyped bytes) */
	struct cqrs_ctl *ctl;
	cqrs_counters *ctr;           /* in the control segment's counters region */
	cqrs_counters private_ctr;    /* used while there is no control segment */
	struct cqrs_repl *repl;       /* NULL without replication */
	struct cqrs_node *node;       /* a view node's receiver (cfg.node_of), or NULL */
	struct housekeeping *hk;      /* journal retention's thread, or NULL */
	int command_started;
	struct cqrs__snap *snap;      /* NULL until a store, callbacks or start need it */
	struct cqrs_ckpt *ckpt;       /* the checkpoint thread (engine/checkpoint_write.c); NULL: off */
};

enum engine_state {
	ENGINE_OPEN = 0,
	ENGINE_RUNNING = 1,
	ENGINE_STOPPING = 2,
	ENGINE_STOPPED = 3,
};

void cqrs__log(cqrs_engine *e, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Whether the caller owns the command thread's state (for CQRS_ASSERT). */
static inline bool cqrs__on_command_thread(const cqrs_engine *e)
{
	return pthread_equal(pthread_self(), e->command_owner) != 0;
}

/* After publishing a request for the command thread (a seq_cst RMW):
 * rings its doorbell. acquire: pairs with start's release store of
 * RUNNING, which publishes e->bell; a request made before the start needs
 * no kick (the command thread looks at requests as it starts). */
static inline void cqrs__command_kick(cqrs_engine *e)
{
	if (atomic_load_explicit(&e->state, memory_order_acquire) == ENGINE_RUNNING)
		cqrs__bell_ring(e->bell);
}

#endif
