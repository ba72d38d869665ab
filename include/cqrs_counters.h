/*
 * cqrs_counters.h - the layout of an engine's counters, as they lie in the
 * counters region of its control segment (like Aeron's counters file), so
 * `cqrs stat` and any reader process can watch a running engine.
 *
 * Writers: the command thread owns the first block, the two latency
 * histograms and the gateway's request counters; projector threads (SHARED
 * threading: the command thread) own their projection entries; the gateway
 * thread owns the gateway's connection counters. Every counter
 * has a single writer, which updates it with a relaxed atomic store (no
 * locked instruction on the hot path); readers load them relaxed and may
 * see values a few microseconds apart from each other, never a torn one.
 * Each writer's counters sit on their own cache lines.
 *
 * Readers check magic, version and size before reading anything else.
 * Histograms use the log-linear buckets of core/hist.h: bucket b's smallest
 * value is cqrs_counters_bucket_low(b).
 */
#ifndef CQRS_COUNTERS_H
#define CQRS_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "cqrs_common.h"
#include "cqrs_schema.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CQRS_COUNTERS_MAGIC UINT64_C(0x53524e5443525143) /* "CQRCTNRS" */
#define CQRS_COUNTERS_VERSION 1u
#define CQRS_COUNTERS_MAX_PROJ 32u
#define CQRS_COUNTERS_HIST 1024u

typedef struct cqrs_counters_proj {
	char name[CQRS_NAME_MAX];
	uint64_t applied_seq;
	uint64_t events;
	uint64_t batches;
	uint64_t dead_letters;
	uint32_t halted;      /* 1: stopped by a dead letter (HALT policy) */
	uint32_t thread;
	uint64_t rebuilds;
	int32_t stall_code;   /* 0, or why it is stalled: -ENOSPC, -ENOMEM (growing a
				 full view found no room; retried with backoff) */
	uint32_t stall_retries; /* failed attempts since it stalled */
	uint64_t stalled_at;  /* seq it waits to apply while stalled */
} cqrs_counters_proj;

typedef struct cqrs_counters {
	/* line 0: identity (immutable after start) */
	uint64_t magic;
	uint32_t version;
	uint32_t size;          /* sizeof(cqrs_counters) */
	uint32_t nproj;
	uint32_t durability;
	int64_t start_ns;       /* wall clock at start */
	uint32_t threading;     /* enum cqrs_threading_mode */
	uint32_t pad1;
	uint64_t pad0[3];
	char data_dir[256];     /* the engine's data directory (NUL-terminated) */
	/* line 1-2: command thread */
	uint64_t commands;      /* decided (all outcomes) */
	uint64_t accepted;
	uint64_t rejected;
	uint64_t conflicts;
	uint64_t duplicates;
	uint64_t events;
	uint64_t batches;       /* journal batches made durable */
	uint64_t journal_bytes;
	uint64_t fdatasyncs;
	uint64_t durable_seq;
	uint64_t published_seq;
	uint64_t ring_used;     /* broadcast ring bytes not yet consumed by all */
	uint64_t ring_size;     /* 0: no ring (SHARED threading) */
	uint64_t replayed;      /* events replayed at the last start */
	uint64_t replay_ns;
	int64_t poison;         /* 0 or the journal error that stopped the engine */
	/* histograms (command thread): ns */
	uint64_t ack_latency[CQRS_COUNTERS_HIST];   /* submit -> ticket complete */
	uint64_t batch_latency[CQRS_COUNTERS_HIST]; /* batch flush -> durable */
	/* per projection (its projector thread, or the command thread) */
	cqrs_counters_proj proj[CQRS_COUNTERS_MAX_PROJ];
	/* command gateway, the gateway thread's line */
	uint64_t gw_connects;    /* connections accepted */
	uint64_t gw_disconnects; /* connections ended (closed, died, dropped) and freed */
	uint64_t gw_refused;     /* refused: the peer's uid and groups are not allowed */
	uint64_t gw_limited;     /* refused: the total or the per-uid limit was reached */
	uint64_t gw_clients;     /* connected now */
	uint64_t gw_kicked;      /* clients dropped for breaking the socket protocol */
	uint64_t gw_pad0[2];
	/* command gateway, the command thread's line */
	uint64_t gw_requests;    /* requests taken from clients' rings */
	uint64_t gw_malformed;   /* ... answered CQRS_EFORMAT */
	uint64_t gw_drops;       /* clients dropped for breaking their own rings */
	uint64_t gw_overflows;   /* answers parked because a reply ring was full */
	uint64_t gw_pad1[4];
	/* command thread */
	uint64_t journal_refused; /* commands answered with the journal's refusal (-ENOSPC
				     creating a segment, ...): nothing journaled */
	uint64_t pad2[7];
	/* write-model snapshots: the command thread's line */
	uint64_t snap_seq;        /* seq of the newest snapshot (taken or loaded), 0: none */
	int64_t snap_wall_ns;     /* wall clock when it was written (or loaded) */
	uint64_t snap_bytes;      /* its size */
	uint64_t snap_taken;      /* snapshots written since start */
	uint64_t snap_failed;     /* snapshots that failed (the log says why) */
	uint64_t snap_fork_us;    /* the last fork()'s stall of the command thread */
	uint64_t snap_fork_max_us;
	uint64_t snap_loaded_seq; /* seq of the snapshot loaded at start, 0: full replay */
	/* written by other processes (cqrs snapshot ENGINE): bumped to ask for a
	 * snapshot; the command thread serves it between batches and sets
	 * snap_served to the value it saw */
	uint64_t snap_requests;
	uint64_t snap_served;
	uint64_t snap_load_ns;    /* loading it at start (then replay_ns: the tail) */
	uint64_t snap_pad[5];
	/* view checkpoints (the checkpoint thread; engine/checkpoint.h) */
	uint32_t ckpt_mode;        /* 0 off, 1 userfaultfd write-protect, 2 copy at the
				      batch boundary */
	uint32_t ckpt_pad0;
	uint64_t ckpt_taken;       /* checkpoints written since start */
	uint64_t ckpt_failed;      /* ... that failed (logged) */
	uint64_t ckpt_stall_max_ns; /* longest projector wait a checkpoint caused (the
				      boundary's setup, or the copy, plus faults) */
	uint64_t ckpt_restored;    /* projections restored from checkpoints at start */
	uint64_t ckpt_faults;      /* projector stores that waited for their chunk's copy */
	uint64_t ckpt_setup_max_ns; /* ... the longest boundary part of those waits */
	uint64_t ckpt_fault_max_ns; /* ... the longest serving of one fault */
	uint64_t ckpt_seq[CQRS_COUNTERS_MAX_PROJ];    /* per projection: last checkpoint's seq */
	int64_t ckpt_time_ns[CQRS_COUNTERS_MAX_PROJ]; /* ... its wall clock time */
	/* replication (engine/replication/), the replicator thread's lines;
	 * lag: durable_seq - replicated_seq events, repl_lag_bytes bytes (of
	 * the records journaled since start) */
	uint64_t repl_state;       /* enum cqrs_repl_state */
	uint64_t replicated_seq;   /* every seq <= this is in the stream */
	uint64_t repl_messages;    /* messages the stream acknowledged */
	uint64_t repl_bytes;       /* journal bytes in them */
	uint64_t repl_errors;      /* failed connects and publishes */
	uint64_t repl_resyncs;     /* times the position was read back from the stream */
	uint64_t repl_stream_seq;  /* the stream's last message sequence */
	uint64_t repl_lag_bytes;
	uint64_t repl_latency[CQRS_COUNTERS_HIST]; /* publish -> the stream's ack, ns */
	/* replication, the command thread's line */
	uint64_t repl_timeouts;    /* tickets failed with -ETIMEDOUT (ACK_REPLICATED) */
	uint64_t repl_pad[7];
	/* journal retention, the housekeeping thread's line */
	uint64_t ret_journal_bytes;      /* segment files in the journal (last plan) */
	uint64_t ret_pinned_bytes;       /* ... of sealed segments something pins */
	uint64_t ret_first_seq;          /* the journal's first seq after the last run */
	uint64_t ret_need_seq;           /* the oldest seq a restart needs (1 = all) */
	uint64_t ret_collected_segments; /* collected since start */
	uint64_t ret_collected_bytes;
	uint64_t ret_runs;               /* plans made */
	int64_t ret_error;               /* 0, or the last collection's error */
} cqrs_counters;

/* cqrs_counters.repl_state */
enum cqrs_repl_state {
	CQRS_REPL_OFF = 0,         /* no replication configured */
	CQRS_REPL_CONNECTING = 1,  /* no connection to the servers (retrying) */
	CQRS_REPL_SYNCING = 2,     /* reading the stream's position back */
	CQRS_REPL_STREAMING = 3,   /* publishing the journal as it becomes durable */
	CQRS_REPL_FAILED = 4,      /* stopped: the stream and the journal disagree
				      (the log says how) */
};

#ifdef __cplusplus
static_assert(sizeof(cqrs_counters_proj) == 96, "projection entry size");
static_assert(sizeof(cqrs_counters) <= 64 * 1024, "counters fit the control's region");
static_assert(offsetof(cqrs_counters, data_dir) == 64, "identity line is one cache line");
static_assert(offsetof(cqrs_counters, ret_journal_bytes) % 64 == 0,
	       "the housekeeping thread's counters on a cache line of their own");
static_assert(offsetof(cqrs_counters, gw_connects) % 64 == 0 &&
		   offsetof(cqrs_counters, gw_requests) == offsetof(cqrs_counters, gw_connects) + 64,
	       "each gateway writer's counters on a cache line of their own");
#else
_Static_assert(sizeof(cqrs_counters_proj) == 96, "projection entry size");
_Static_assert(sizeof(cqrs_counters) <= 64 * 1024, "counters fit the control's region");
_Static_assert(offsetof(cqrs_counters, data_dir) == 64, "identity line is one cache line");
_Static_assert(offsetof(cqrs_counters, ret_journal_bytes) % 64 == 0,
	       "the housekeeping thread's counters on a cache line of their own");
_Static_assert(offsetof(cqrs_counters, gw_connects) % 64 == 0 &&
		   offsetof(cqrs_counters, gw_requests) == offsetof(cqrs_counters, gw_connects) + 64,
	       "each gateway writer's counters on a cache line of their own");
#endif

/* Smallest value counted in histogram bucket b. */
static inline uint64_t cqrs_counters_bucket_low(unsigned b)
{
	unsigned m, sub;

	if (b < 16)
		return b;
	m = b / 16 + 3;
	sub = b % 16;
	return (uint64_t)(16 + sub) << (m - 4);
}

#ifdef __cplusplus
}
#endif

#endif
