/*
 * cqrs.h - the engine API (libcqrs): embed a CQRS engine in a C program.
 *
 * Overview
 *   An engine owns the write side of one application. You open it with a
 *   config, register command types (schema + decide), event types (schema +
 *   evolve) and projections (views in shared memory + apply), start it, and
 *   submit commands from any thread of the process. One command thread (the
 *   single writer) runs decide against the in-memory write model, journals
 *   the events it emits (io_uring, group commit), and once a batch is durable
 *   for the configured mode it acknowledges the batch's commands and
 *   publishes its events on a broadcast ring to projector threads, which
 *   apply them to views that other processes read (cqrs_view.h). In SHARED
 *   threading (cqrs_config.threading) the command thread applies them
 *   itself, before acknowledging.
 *
 *     decide(ctx, cmd, model)  -> cqrs_emit(ctx, ...) zero or more events,
 *                                 or return cqrs_reject(ctx, "reason")
 *     evolve(model, event)     -> update the write model (also on replay)
 *     apply(proj, event, arg)  -> cqrs_proj_upsert/delete rows of its views
 *
 *   On open the journal in DATA_DIR/journal is recovered and replayed
 *   through evolve; views whose segments were left clean by this engine with
 *   the same schema resume from their applied_seq, others are rebuilt.
 *
 * Threads
 *   decide and evolve run on the command thread only; each projection's
 *   apply runs on its projector thread only (SHARED threading: on the
 *   command thread, and its catch-up at start on the thread that calls
 *   cqrs_engine_start). cqrs_submit*, cqrs_ticket_* and cqrs_engine_stop
 *   are callable from any thread - but not from apply in SHARED threading,
 *   where waiting for the engine (a ticket, a view, a stop) would wait for
 *   the very thread that runs it.
 *
 * Caveats
 *   - decide must be deterministic in (command, model) and must not block;
 *     evolve must not fail (validation belongs in decide).
 *   - Events are fixed-layout records of their registered schema's size.
 *     Changing an event's layout between releases: see "events written
 *     with an older layout" below.
 *   - After a journal failure the engine is poisoned: every pending and
 *     later submission completes with the journal's error.
 *   - Aggregate ids are u64 in 0..UINT64_MAX-1; 0 means "no aggregate".
 *   - A cqrs_config must come from cqrs_config_init (it records the
 *     struct's size for the library); the definitions' reserved words
 *     must be zero (designated initializers leave them so).
 */
#ifndef CQRS_H
#define CQRS_H

#include <stddef.h>
#include <stdint.h>

#include "cqrs_common.h"
#include "cqrs_schema.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cqrs_engine cqrs_engine;
typedef struct cqrs_ctx cqrs_ctx;   /* decide's context */
typedef struct cqrs_proj cqrs_proj; /* apply's context */

enum cqrs_durability_mode {
	CQRS_DURABILITY_NONE = 0,     /* acknowledged when written to the page cache */
	CQRS_DURABILITY_BATCH = 1,    /* acknowledged after the batch's fdatasync */
	CQRS_DURABILITY_INTERVAL = 2, /* acknowledged on write; fdatasync every interval_ms */
};

/* Where projections run (after Aeron's threading modes). */
enum cqrs_threading_mode {
	CQRS_THREADING_DEDICATED = 0, /* projector_threads threads of their own, fed
					 by the broadcast ring: projections apply
					 beside deciding (best with cores to spare) */
	CQRS_THREADING_SHARED = 1,    /* the command thread applies each durable
					 batch itself, right after it is journaled:
					 one thread, no hand-off (best when threads
					 outnumber cores: a 2-core host); commands
					 wait while a projection applies, rebuilds
					 or grows, and dead letters are retried
					 between batches */
};

/* The engine's settings. Set one up with cqrs_config_init, then change the
 * fields you need; cqrs_engine_open copies it.
 *
 * ABI: the struct grows by appending fields, and carries the size it had
 * where the program was compiled (the Linux kernel's extensible structs,
 * clone3/openat2, with the library's init behind a header inline). A
 * program built against an older, smaller cqrs_config gets the defaults
 * of every field it did not know; one built against a newer cqrs.h runs
 * on this library as long as it leaves the fields this library does not
 * know at zero (otherwise -EINVAL). This over io_uring's reserved words,
 * because several defaults are not zero (a reserved word must read as its
 * field's default when zero), and over LMDB's per-field setters, because a
 * struct keeps every setting visible in one place and in one call. */
/* What journal retention does with a segment no restart needs. */
enum cqrs_retention_mode {
	CQRS_RETENTION_OFF = 0,       /* keep every segment */
	CQRS_RETENTION_DELETE = 1,    /* unlink it */
	CQRS_RETENTION_ARCHIVE = 2,   /* move it to archive_dir */
	CQRS_RETENTION_HOOK = 3       /* hand it to retention_hook */
};

/* Called on the engine's housekeeping thread with a collected segment's
 * path and seqs [first_seq, last_seq]: copy it, upload it, move it away.
 * Return 0 when done with it (the engine then removes the file if it is
 * still there), or an error to have it offered again at the next
 * collection (the journal no longer includes it either way). */
typedef int (*cqrs_retention_hook_fn)(void *arg, const char *path, uint64_t first_seq,
				      uint64_t last_seq);

/* The highest seq another system holds (a replication watermark): retention
 * keeps every segment with a seq above it. Called on the housekeeping
 * thread; must not block for long. */
typedef uint64_t (*cqrs_watermark_fn)(void *arg);

#define CQRS_CONFIG_MAGIC 0x31474643u /* "CFG1": set by cqrs_config_init */
typedef struct cqrs_config {
	uint32_t size;                /* sizeof(cqrs_config) where the program was
					 compiled; set by cqrs_config_init */
	uint32_t magic;               /* CQRS_CONFIG_MAGIC; set by cqrs_config_init */
	const char *name;             /* engine name: 1..31 of [A-Za-z0-9_] */
	const char *data_dir;         /* created if missing; journal in DIR/journal */
	int durability;               /* enum cqrs_durability_mode */
	uint32_t interval_ms;         /* INTERVAL mode period; default 10 */
	uint32_t ring_bytes;          /* broadcast ring size, power of two; default 16 MiB */
	uint32_t projector_threads;   /* default 1; in SHARED threading, how many
					 groups projections' `thread` numbers name */
	uint32_t max_batch_commands;  /* group commit limit; default 1024: a smaller
					 batch reaches the journal and the
					 projectors sooner, so they work beside the
					 command thread instead of after it (larger
					 batches measured slower:
					 docs/PERFORMANCE.md) */
	uint32_t max_batch_bytes;     /* journal bytes per batch; default 1 MiB */
	uint32_t submit_queue_bytes;  /* in-process submission ring; default 8 MiB */
	uint32_t dedup_window;        /* results remembered per client; default 1024 */
	uint64_t segment_bytes;       /* journal segment size; default 64 MiB */
	uint32_t shm_mode;            /* view segment permissions; default 0640 */
	uint32_t idle_yield_us;       /* idle command and projector threads yield this
					 long before sleeping on a futex (the command
					 thread also before blocking on journal writes
					 in flight): lower latency for more CPU;
					 default 100, 0 = sleep at once */
	cqrs_log_fn log;              /* optional; never called on the hot path */
	void *log_arg;
	uint64_t aggregates_hint;     /* aggregates the engine will track: its version
					 map is sized for them up front (it still
					 grows past them, by a rehash on the command
					 thread); default 65536, at most 2^30; the
					 map takes 32-byte slots, twice the hint
					 rounded up to a power of two */
	int pretouch;                 /* 1: at start, map every page of each view's
					 rows (its capacity) instead of a window
					 ahead of use, and fault in the write-model
					 memory mapped so far (a thread faults in
					 what the write model maps later, ahead of
					 use): a slower start, no page zeroing on the
					 command or projector threads (hosts that
					 back memory lazily, VMs, make first touch
					 of a huge page a stall of milliseconds:
					 docs/PERFORMANCE.md); default 0 */
	uint32_t inline_write_bytes;  /* a batch of at most this many journal bytes
					 is written into the page cache by the
					 command thread itself (pwritev) instead of
					 by the kernel worker that io_uring hands
					 buffered writes to on most file systems
					 (ext4): no wake-up, and the copy reads the
					 batch from the command thread's own cache;
					 the fdatasync of batch durability still
					 runs through io_uring, beside deciding.
					 Larger batches overlap their write too.
					 Default 256 KiB, 0 = always io_uring */
	int threading;                /* enum cqrs_threading_mode; default DEDICATED */
	/* The command gateway (other processes submitting, cqrs_client.h).
	 * A peer may connect when its uid is in gateway_uids or its primary or
	 * a supplementary group is in gateway_gids (SO_PEERCRED,
	 * SO_PEERGROUPS); with both lists empty, the engine's effective uid and
	 * group. The arrays are copied at start. */
	uint32_t gateway_max_clients; /* connections at once; default 256 (or the
					 environment's CQRS_GATEWAY_CLIENTS), at most
					 4096; each costs ~140 KiB and a descriptor
					 (RLIMIT_NOFILE must allow them) */
	uint32_t gateway_max_per_uid; /* ... of them per peer uid, so that one user
					 cannot take them all; default 64 (or
					 CQRS_GATEWAY_PER_UID) */
	uint32_t gateway_nuids;       /* entries in gateway_uids */
	uint32_t gateway_ngids;       /* entries in gateway_gids */
	const uint32_t *gateway_uids;
	const uint32_t *gateway_gids;
	/* Write-model snapshots (DATA/snapshots; cqrs_engine_register_store).
	 * Taken only by an engine whose application registered a store or
	 * snapshot callbacks: registering says that they hold all of the
	 * write model, which a start then restores instead of replaying the
	 * journal before the snapshot. */
	uint64_t snapshot_every_events; /* a snapshot after this many events since the
					   last one; default 1000000 (~140 MB of
					   journal, ~0.2 s of replay at start), 0 = off */
	uint64_t snapshot_every_bytes;  /* ... or this many journal bytes; default 0 = off */
	uint32_t snapshot_keep;         /* newest snapshots kept; default 2 (0 reads as 1) */
	int snapshot_on_stop;           /* 1: a clean stop takes one; default 1 */
	/* View checkpoints: each projection's views copied to
	 * DATA/checkpoints/<view>/ at a batch boundary, so that a start after a
	 * reboot (no segments) or a kill -9 (dirty ones) loads them and replays
	 * only the journal's tail instead of rebuilding from seq 1. */
	uint64_t checkpoint_every_events; /* a checkpoint each time a projection has
					     applied this many more seqs; default
					     1000000 (a copy of the views per million
					     events: seconds of replay saved for
					     milliseconds of copying), 0 = only on
					     request and at stop */
	uint32_t checkpoint_keep;         /* newest checkpoints kept per view; default 2 */
	int checkpoint_on_stop;           /* 1: a clean stop checkpoints the views that
					     moved; default 1 */
	int checkpoint_copy;              /* 0: userfaultfd write-protect where the kernel
					     offers it, else a copy at the batch
					     boundary; 1: always that copy; -1: no
					     checkpoints at all; default 0 */
	/* Replication to a NATS JetStream stream (docs/ARCHITECTURE.md,
	 * Replication): a thread of the engine reads the durable journal and
	 * publishes it, batch by batch, to stream CQRS_<name> (subjects
	 * cqrs.<name>.journal and cqrs.<name>.schema), creating the stream
	 * (file storage, replication_replicas copies) if it is missing. */
	const char *replication_urls; /* NULL or "": no replication; else NATS
					 server URLs, comma-separated (copied at
					 open) */
	int ack_level;                /* enum cqrs_ack_level; default LOCAL */
	uint32_t replication_timeout_ms; /* ACK_REPLICATED: a ticket the stream
					 has not acknowledged this long after
					 its submission completes with
					 -ETIMEDOUT (its events are durable
					 locally and replicated later); 0 = wait
					 as long as it takes; default 5000.
					 When replication stops (the stream and
					 the journal disagree) waiting tickets
					 complete with -EIO */
	uint32_t replication_replicas; /* copies of a stream the replicator
					 creates; default 3 (1 for a single
					 server) */
	uint32_t replication_batch_bytes; /* journal bytes per message at most
					 (whole command groups); default 0: the
					 server's max payload less 4 KiB */
	/* A view node: NULL, or the name of the engine whose stream (on
	 * replication_urls) this engine follows instead of taking commands:
	 * it journals the stream's verified records and runs the projections
	 * registered here over them, so its views are the writer's, read with
	 * the same API (cqrs_view_wait(seq) included). cqrs_submit on a node
	 * returns -EPERM; it has no command gateway; ack_level must be LOCAL. */
	const char *node_of;
	/* Journal retention (docs/ARCHITECTURE.md, Lifecycle): a housekeeping
	 * thread collects the sealed segments no restart needs any more (below
	 * the oldest snapshot kept, every view's newest checkpoint and the
	 * replication watermark), keeping the minimum below besides. */
	int retention_mode;           /* enum cqrs_retention_mode; default OFF:
					 every segment is kept, so tools that read
					 the whole history (a full replay beside a
					 snapshot: cqrs-orders snapshot verify, an
					 audit from seq 1) keep working; DELETE,
					 ARCHIVE or HOOK make the engine collect
					 (nothing is collectable before a snapshot
					 and every view's checkpoint exist) */
	uint32_t retention_min_segments; /* newest sealed segments always kept;
					 default 2 (a short history for `cqrs
					 journal dump` and a slow reader) */
	uint64_t retention_min_bytes; /* newest sealed segments holding at least
					 this many bytes are kept; default 0 */
	uint64_t retention_min_age_s; /* segments written less than this long ago
					 are kept; default 0 */
	const char *archive_dir;      /* ARCHIVE: collected segments move here
					 (created if missing; copied when on
					 another file system); copied at start */
	cqrs_retention_hook_fn retention_hook; /* HOOK */
	void *retention_hook_arg;
	cqrs_watermark_fn replication_watermark; /* optional: the highest seq
					 replicated; segments above it are kept */
	void *replication_watermark_arg;
} cqrs_config;

/* When a ticket completes (cqrs_config.ack_level). What each survives:
 * LOCAL: the engine's durability mode (BATCH: fdatasynced here, so a
 * crash or power loss of this host keeps it, losing the host's disk does
 * not). REPLICATED: in addition, a quorum of the stream's servers stored
 * it (JetStream acknowledges once a quorum has the message, before its
 * own fsync): the loss of this host, disk included, keeps it, as does the
 * loss of a minority of the servers; a power loss of the whole quorum at
 * once may not. */
enum cqrs_ack_level {
	CQRS_ACK_LOCAL = 0,           /* durable locally (as the durability mode says) */
	CQRS_ACK_REPLICATED = 1,      /* durable locally AND acknowledged by the stream */
};

/* An event as decide sees what it emitted, evolve and apply see it. */
typedef struct cqrs_event {
	uint64_t seq;                 /* global, gapless, from 1 */
	int64_t timestamp_ns;         /* wall clock when journaled */
	uint64_t aggregate_id;
	uint64_t aggregate_version;   /* version of aggregate_id after this event */
	uint32_t type;                /* registered event type id */
	uint32_t size;                /* == the event schema's size */
	const void *data;
} cqrs_event;

/* A command to submit. The data is copied during cqrs_submit. */
typedef struct cqrs_command {
	uint32_t type;                /* registered command type id */
	uint32_t size;                /* must equal the command schema's size */
	const void *data;
	uint64_t aggregate_id;        /* the aggregate the command targets (0: none) */
	uint64_t expected_version;    /* checked when flags has CQRS_CMD_EXPECT_VERSION */
	uint64_t client_id;           /* idempotency key (client_id 0: none) */
	uint64_t client_seq;
	uint32_t flags;
	uint32_t reserved;
} cqrs_command;

#define CQRS_CMD_EXPECT_VERSION 1u /* reject with CQRS_ECONFLICT unless the
				      aggregate is at expected_version (0 = new) */

/* A ticket tracks one submission. Caller-owned storage (stack, array);
 * it must stay valid until the ticket completes. Read it with the
 * accessors below. */
typedef struct cqrs_ticket {
	uint64_t opaque[16];
} cqrs_ticket;

typedef int (*cqrs_decide_fn)(cqrs_ctx *ctx, const void *cmd, void *model);
typedef void (*cqrs_evolve_fn)(void *model, const cqrs_event *ev);
typedef int (*cqrs_apply_fn)(cqrs_proj *proj, const cqrs_event *ev, void *arg);

/* ---- lifecycle ----------------------------------------------------------- */

/* Fills the first size bytes of cfg with defaults (name and data_dir left
 * NULL) and sets cfg->size and cfg->magic. size is sizeof(cqrs_config) as
 * the caller was compiled: call it through cqrs_config_init. Bytes past
 * this library's cqrs_config (a caller built against a newer cqrs.h) are
 * zeroed. Returns 0, or -EINVAL (cfg NULL, size smaller than
 * CQRS_CONFIG_MIN_SIZE or larger than CQRS_CONFIG_MAX_SIZE; cfg is then
 * untouched). */
#define CQRS_CONFIG_MIN_SIZE (offsetof(cqrs_config, data_dir) + sizeof(const char *))
#define CQRS_CONFIG_MAX_SIZE 4096u
CQRS_API int cqrs_config_init_size(cqrs_config *cfg, size_t size);

/* Fills cfg with defaults: cqrs_config_init_size with this header's size. */
static inline void cqrs_config_init(cqrs_config *cfg)
{
	(void)cqrs_config_init_size(cfg, sizeof *cfg);
}

/* Opens an engine: validates the config and creates the data directory.
 * model is the write model passed to decide and evolve (owned by the
 * caller). Recovery happens in cqrs_engine_start, after registration.
 * Fields past cfg->size take their defaults. Returns 0, -EINVAL
 * (cqrs_last_error says which setting; also a cfg that cqrs_config_init did
 * not set up: wrong magic or size), -errno. */
CQRS_API int cqrs_engine_open(const cqrs_config *cfg, void *model, cqrs_engine **out);

/* Registers a command type (id 1..255) with its schema and decide handler.
 * Before start only. -EINVAL, -EEXIST, CQRS_EFORMAT (bad schema). */
CQRS_API int cqrs_register_command(cqrs_engine *e, uint32_t type, const cqrs_schema *schema,
				   cqrs_decide_fn decide);

/* Registers an event type (id 1..255) with its schema and evolve handler
 * (evolve may be NULL for events the write model ignores). Before start. */
CQRS_API int cqrs_register_event(cqrs_engine *e, uint32_t type, const cqrs_schema *schema,
				 cqrs_evolve_fn evolve);

/* ---- events written with an older layout --------------------------------- */

/* Replay (of the write model and of the views) compares each journal
 * segment's stored layout of an event type (its header embeds the schema
 * every type had when the segment was written) with the registered one,
 * field by field:
 *   - the same fields (name, type, offset, size): read as they are;
 *   - the registered layout only appends fields after the old ones, every
 *     old field unchanged (SBE's rule): read with the new fields at their
 *     default (see cqrs_register_event_options) or zero;
 *   - fields moved, renamed, added or dropped, but each registered field
 *     that the old layout names has the same type and size there: read by
 *     name, if the type was registered with CQRS_EVENT_MAP_BY_NAME (new
 *     fields defaulted, dropped ones lost);
 *   - anything else (a field that changed type or size, or fields moved
 *     without CQRS_EVENT_MAP_BY_NAME) only through an upcaster registered
 *     for the type; without one, start refuses with CQRS_EFORMAT, and
 *     cqrs_last_error() names the event type, the segment and the first
 *     field that differs.
 * evolve and apply always see records of the registered layout (size and
 * fields); what the engine journals is in the registered layout (a start
 * whose layouts differ from the last segment's writes into a new one). */

/* Converts one record written with old_schema (old->data, old->size bytes;
 * old's other fields are the event's seq, aggregate...) into rec, a record
 * of the registered schema that holds on entry what the automatic rules
 * give: the type's defaults, then every field with the same name, type and
 * size copied from the old record. Returns 0, or non-zero to refuse the
 * record (replay then fails with CQRS_EFORMAT naming its seq). Called on
 * the thread that replays (start's, a projector's), possibly on several at
 * once: it must be reentrant and must not call the engine. */
typedef int (*cqrs_upcast_fn)(void *arg, const cqrs_event *old, const cqrs_schema *old_schema,
			      void *rec, const cqrs_schema *schema);

#define CQRS_EVENT_MAP_BY_NAME 0x1u /* read old layouts by field name */

/* Sets how replay reads event type `type`'s records written with another
 * layout: flags (0 or CQRS_EVENT_MAP_BY_NAME) and defaults, NULL or a
 * record of the registered schema whose bytes fields missing from an old
 * layout start with (not copied: it must stay valid until
 * cqrs_engine_close). After cqrs_register_event of the type, before start.
 * Returns 0, -EINVAL (type not registered, unknown flags, after start). */
CQRS_API int cqrs_register_event_options(cqrs_engine *e, uint32_t type, uint32_t flags,
					 const void *defaults);

/* Registers the upcaster of event type `type` (registered before), with
 * its argument: it converts every old layout of the type that is not the
 * registered one (above). Before start. Returns 0, -EINVAL (type not
 * registered, fn NULL, after start), -EEXIST (one already). */
CQRS_API int cqrs_register_upcaster(cqrs_engine *e, uint32_t type, cqrs_upcast_fn fn, void *arg);

/* ABI of the two definitions below: callers fill them with designated
 * initializers, and views are an array inside a projection, so they keep
 * their size and carry reserved words instead (io_uring's resv): a field
 * added later takes reserved space and reads as its default when zero.
 * cqrs_register_projection refuses non-zero reserved words (a program
 * built against a newer cqrs.h asking for something this library lacks). */
typedef struct cqrs_view_def {
	const char *name;             /* view name: 1..31 of [A-Za-z0-9_] */
	const cqrs_schema *row;       /* row schema */
	const char *key_field;        /* primary key: a u64 or bytes field */
	const char *index_fields[CQRS_VIEW_MAX_SECONDARY]; /* secondary indexes (NULL-terminated) */
	uint64_t capacity;            /* initial rows; the view grows by rebuild when full */
	/* The ordered index (cqrs_view.h: cqrs_view_range): its fields in order,
	 * NULL-terminated, at most 4 (integers, bool, ts, f64, str, bytes; their
	 * sizes summed <= 64 bytes); NULL: none. The array and its strings must
	 * stay valid until the engine is closed (rebuilds read them again).
	 * Took the first reserved word: zero means no ordered index. */
	const char *const *ordered_fields;
	uint64_t reserved[3];         /* must be zero */
} cqrs_view_def;

enum cqrs_on_error {
	CQRS_ON_ERROR_SKIP = 0,       /* record a dead letter and go on */
	CQRS_ON_ERROR_HALT = 1,       /* record a dead letter and stop this projection */
};

#define CQRS_MAX_VIEWS_PER_PROJECTION 8
typedef struct cqrs_projection_def {
	const char *name;             /* 1..31 of [A-Za-z0-9_] */
	cqrs_view_def views[CQRS_MAX_VIEWS_PER_PROJECTION];
	uint32_t nviews;
	cqrs_apply_fn apply;
	void *arg;
	uint32_t thread;              /* projector thread index (SHARED threading:
					 its group; all run on the command thread) */
	int on_error;                 /* enum cqrs_on_error */
	uint64_t reserved[4];         /* must be zero */
} cqrs_projection_def;

/* Registers a projection and its views. Before start. Returns 0, -EINVAL
 * (a missing or bad setting, non-zero reserved words), -EEXIST, CQRS_EFULL
 * (too many projections), CQRS_EFORMAT (bad row schema), -ENOMEM. */
CQRS_API int cqrs_register_projection(cqrs_engine *e, const cqrs_projection_def *def);

/* Recovers (journal, write model, views) and starts the command and
 * projector threads (SHARED threading: catches stale views up from the
 * journal on the calling thread, then starts the command thread alone).
 * Returns 0, CQRS_ECORRUPT (journal refused; see
 * cqrs_last_error), -errno. */
CQRS_API int cqrs_engine_start(cqrs_engine *e);

/* Stops accepting commands, drains what was accepted, waits until every
 * projection applied everything, marks views clean. Any thread. */
CQRS_API int cqrs_engine_stop(cqrs_engine *e);

/* Stops if needed and frees everything. Views' segments are left in
 * shared memory (clean) for the next start to resume. */
CQRS_API void cqrs_engine_close(cqrs_engine *e);

/* Rebuilds a projection's views from the journal into a new generation
 * while readers keep reading the current one, then swaps (readers follow
 * by themselves). Asynchronous: returns 0 once requested, CQRS_ENOTFOUND. */
CQRS_API int cqrs_engine_rebuild(cqrs_engine *e, const char *projection);

/* Requests a checkpoint of the projection that owns view (NULL: every
 * projection) to DATA/checkpoints/<view>/, taken at its next batch
 * boundary. Asynchronous: returns 0 once requested, CQRS_ENOTFOUND, or
 * -ENOTSUP when checkpoints are off (checkpoint_copy -1). Progress shows in
 * the counters (ckpt_seq). */
CQRS_API int cqrs_engine_checkpoint(cqrs_engine *e, const char *view);

/* Applies a projection's open dead letters again (after a fix), each from
 * the journal; successes are recorded as resolved in the dead-letter log. A
 * projection halted by a dead letter resumes from that event. Asynchronous:
 * returns 0 once requested, CQRS_ENOTFOUND. A resumed projection's views
 * may show events past the halting one a moment before its resolved
 * record reaches the log (the replay decides whether it resolved). */
CQRS_API int cqrs_engine_retry_dead_letters(cqrs_engine *e, const char *projection);

/* The engine's live counters (layout: cqrs_counters.h); valid until close.
 * Other processes read the same numbers from the control segment. */
struct cqrs_counters;
CQRS_API const struct cqrs_counters *cqrs_engine_counters(const cqrs_engine *e);

/* Removes the shared-memory segments (views, control) that a stopped or
 * dead engine named `engine` left behind. -EBUSY if that engine is alive.
 * Returns the number of segments removed. For tests and fresh starts. */
CQRS_API int cqrs_engine_remove_segments(const char *engine);

/* Last durable seq (0 if none) and the engine's poison code (0 if healthy). */
CQRS_API uint64_t cqrs_engine_durable_seq(const cqrs_engine *e);
CQRS_API int cqrs_engine_error(const cqrs_engine *e);

/* ---- submitting ---------------------------------------------------------- */

/* Queues a command for the command thread. Returns 0 (the ticket will
 * complete), -EAGAIN (submission queue full: retry), -EINVAL (unknown
 * type, wrong size), CQRS_ESTOPPED, or the poison code. Wait-free for the
 * caller apart from the copy. */
CQRS_API int cqrs_submit(cqrs_engine *e, const cqrs_command *cmd, cqrs_ticket *t);

/* Submits up to n commands in one claim; returns how many were queued
 * (0..n), or a negative code if none could be. */
CQRS_API int cqrs_submit_batch(cqrs_engine *e, const cqrs_command *cmds, cqrs_ticket *tickets,
			       uint32_t n);

/* 1 when complete, 0 while pending. Never blocks. */
CQRS_API int cqrs_ticket_done(const cqrs_ticket *t);

/* Blocks until complete or timeout_ns (UINT64_MAX: forever); returns the
 * ticket's status, or -ETIMEDOUT. */
CQRS_API int cqrs_ticket_wait(cqrs_ticket *t, uint64_t timeout_ns);

/* Status: 0 accepted, CQRS_EREJECTED, CQRS_ECONFLICT, CQRS_EDUPLICATE
 * (the original's seq is reported), -errno (journal failure). */
CQRS_API int cqrs_ticket_status(const cqrs_ticket *t);

/* The global seq of the command's last event (accepted or duplicate); 0
 * if it emitted none or was rejected. */
CQRS_API uint64_t cqrs_ticket_seq(const cqrs_ticket *t);

/* The rejection reason ("" if none); valid while the ticket is. */
CQRS_API const char *cqrs_ticket_reason(const cqrs_ticket *t);

/* ---- inside decide -------------------------------------------------------- */

/* Emits an event of a registered type for aggregate_id; data is copied.
 * Returns 0, -EINVAL (unknown type), CQRS_EFULL (too many events for one
 * command). The event is evolved into the model once decide returns 0. */
CQRS_API int cqrs_emit(cqrs_ctx *ctx, uint32_t type, uint64_t aggregate_id, const void *data);

/* Sets the rejection reason and returns CQRS_EREJECTED:
 *   return cqrs_reject(ctx, "customer %llu unknown", id); */
CQRS_API int cqrs_reject(cqrs_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Current version of an aggregate (0: never seen), as the journal knows it. */
CQRS_API uint64_t cqrs_ctx_version(const cqrs_ctx *ctx, uint64_t aggregate_id);

/* Wall-clock time the command thread stamped on this batch (ns). */
CQRS_API int64_t cqrs_ctx_now(const cqrs_ctx *ctx);

/* ---- inside apply: the projection's views --------------------------------- */

/* Inserts or replaces the row with row's key in view `view` (index into
 * the projection's views). Returns 0 or CQRS_EFULL (the engine grows the
 * view and re-applies). */
CQRS_API int cqrs_proj_upsert(cqrs_proj *p, uint32_t view, const void *row);

/* Copies the row with this key into row_out (the view's row size).
 * Returns 0 or CQRS_ENOTFOUND. */
CQRS_API int cqrs_proj_get(cqrs_proj *p, uint32_t view, const void *key, size_t keylen,
			   void *row_out);

/* Deletes the row with this key. Returns 0 or CQRS_ENOTFOUND. */
CQRS_API int cqrs_proj_delete(cqrs_proj *p, uint32_t view, const void *key, size_t keylen);

/* Sets the dead-letter reason for a failing apply; returns code:
 *   return cqrs_proj_fail(p, CQRS_EREJECTED, "order %llu unknown", id); */
CQRS_API int cqrs_proj_fail(cqrs_proj *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- write-model helper: aggregate store ----------------------------------- */

/* A hash table from a key (u64 when keylen is 8, else 1..64 bytes) to an
 * aggregate of value_size bytes, zero-initialized on creation, allocated
 * from the write model's jemalloc arena. Not thread-safe: one thread at a
 * time (recovery, then the command thread; the engine orders the handover).
 * capacity: aggregates it holds before it first grows (up to 2^30); growing
 * rehashes the whole table on the calling thread, a stall on the command
 * thread that grows with the table (O(aggregates)), so size it for the
 * data. */
typedef struct cqrs_store cqrs_store;
CQRS_API int cqrs_store_create(uint32_t keylen, uint32_t value_size, uint64_t capacity,
			       cqrs_store **out);
/* The aggregate, or NULL. O(1). */
CQRS_API void *cqrs_store_get(const cqrs_store *s, const void *key);
/* The aggregate, created (zeroed) when absent (*created = 1); NULL on ENOMEM
 * or a u64 key of UINT64_MAX. The pointer stays valid until removal. */
CQRS_API void *cqrs_store_upsert(cqrs_store *s, const void *key, int *created);
CQRS_API int cqrs_store_remove(cqrs_store *s, const void *key);
CQRS_API uint64_t cqrs_store_count(const cqrs_store *s);
/* Calls fn for every aggregate until fn returns non-zero (returned). */
CQRS_API int cqrs_store_foreach(cqrs_store *s, int (*fn)(void *arg, const void *key, void *value),
				void *arg);
CQRS_API void cqrs_store_destroy(cqrs_store *s);

/* ---- write-model snapshots ----------------------------------------------- */

/* A snapshot at seq S holds the write model as after event S: every store
 * registered below (keys and values), the aggregate version map, every
 * client's idempotency window, and what the registered save callbacks
 * write. A start loads the newest valid snapshot and replays the journal
 * from S+1 (engine/snapshot_format.h has the file format, the rules and
 * the fallbacks). The model must therefore be a function of those parts
 * alone: state kept elsewhere and rebuilt only by evolve would be lost.
 *
 * Caveats: snapshots are taken by a fork()ed child of the engine process
 * at a batch boundary (copy-on-write, as Redis's BGSAVE), which walks the
 * stores and calls the save callbacks. A save callback therefore runs in
 * a child with only one thread: it may read the model and allocate, but
 * must not take locks other threads of the application may hold, start
 * threads, or touch descriptors other than through the writer. At a clean
 * stop the snapshot is written on the command thread instead. */

/* Registers store s (created by the caller, still owned by it) under name
 * (1..31 bytes) as part of the write model. Before start. The store must
 * be empty at start: a snapshot's content is loaded into it. Returns 0,
 * -EINVAL (after start, bad name, too many stores: 64), -EEXIST (name or
 * store registered twice). */
CQRS_API int cqrs_engine_register_store(cqrs_engine *e, const char *name, cqrs_store *s);

/* The byte stream a save callback writes and its load callback reads. */
typedef struct cqrs_snapshot_io cqrs_snapshot_io;
/* Appends n bytes. 0 or -errno (the snapshot then fails). */
CQRS_API int cqrs_snapshot_write(cqrs_snapshot_io *io, const void *p, size_t n);
/* Reads exactly n bytes. 0, or CQRS_ECORRUPT when fewer are left. */
CQRS_API int cqrs_snapshot_read(cqrs_snapshot_io *io, void *p, size_t n);
/* Bytes the load callback has not read yet. */
CQRS_API uint64_t cqrs_snapshot_remaining(const cqrs_snapshot_io *io);

/* save: writes what the model keeps outside registered stores; 0 or an
 * error (the snapshot is dropped). load: reads it back at start, into
 * the model, before the journal's tail is replayed; it gets exactly the
 * bytes save wrote; 0, or an error that fails the start. */
typedef int (*cqrs_snapshot_save_fn)(const void *model, cqrs_snapshot_io *w, void *arg);
typedef int (*cqrs_snapshot_load_fn)(void *model, cqrs_snapshot_io *r, void *arg);

/* Registers a save/load pair under name (1..31 bytes) and a format
 * version: a snapshot saved with another version (or without this name)
 * is not loaded. Before start; at most 16. Returns 0, -EINVAL, -EEXIST. */
CQRS_API int cqrs_engine_register_snapshot(cqrs_engine *e, const char *name, uint32_t version,
					   cqrs_snapshot_save_fn save, cqrs_snapshot_load_fn load,
					   void *arg);

/* Takes a snapshot now and waits until its file is in place (durable, and
 * the journal durable up to its seq), or, when nothing was decided since
 * the newest one, answers that one. *seq: its seq. Any thread but the
 * command thread (not from decide). Returns 0, -EINVAL (not running, no
 * store or callbacks registered), -ECANCELED (the engine stopped first),
 * or the snapshot's failure (cqrs_last_error() says why). */
CQRS_API int cqrs_engine_snapshot(cqrs_engine *e, uint64_t *seq);

/* The deterministic check: on an engine opened and registered as for a
 * start, not started, rebuilds the model from the journal (seqs 1..S,
 * through evolve) into the registered stores and compares it with the
 * snapshot at seq S (0: the newest that verifies): every store record,
 * aggregate version and remembered command. A difference means decide or
 * evolve is not deterministic. (The save/load callbacks' bytes are not
 * compared.) The engine can only be closed afterwards. *verified: S.
 * Returns 0 (equal), CQRS_ECORRUPT (a difference: cqrs_last_error()
 * names the first), -ENOENT (no snapshot), -EINVAL, or replay errors. */
CQRS_API int cqrs_engine_verify_snapshot(cqrs_engine *e, uint64_t seq, uint64_t *verified);

#ifdef __cplusplus
}
#endif

#endif /* CQRS_H */
