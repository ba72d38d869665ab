/*
 * engine/journal/journal.h - the journal: an append-only, checksummed, segmented
 * event log written with io_uring group commit, recovered after any crash.
 *
 * Overview
 *   The journal is the engine's source of truth. Every event gets a global
 *   seq (gapless, from 1) and goes into a batch buffer; a batch is written
 *   with one write - pwritev on the flushing thread for a batch of at most
 *   inline_write_max bytes, else io_uring (registered file and buffers) -
 *   and, in `batch` durability mode, followed by an fdatasync through
 *   io_uring (linked to the io_uring write, or submitted after the
 *   pwritev returned). Several batches
 *   are in flight at once; they are reported durable strictly in seq order
 *   through the on_durable callback, from cqrs__journal_poll/wait only.
 *
 *       cqrs__journal_open()          recover the directory, learn next seq
 *       loop (command thread only):
 *         cqrs__journal_claim()       space for one record in the batch buffer
 *         ...fill the payload...
 *         cqrs__journal_commit()      checksum it; seq assigned
 *         cqrs__journal_flush()       hand the batch to the kernel (group commit)
 *         cqrs__journal_poll()/wait() reap completions -> on_durable(first, last,
 *                                    records, bytes), in seq order
 *       cqrs__journal_close()
 *
 *   The byte layout (segment header, record framing) and the recovery rules
 *   are described at the top of engine/journal/format.c.
 *
 *   Records handed to on_durable are the on-disk bytes: a run of records,
 *   each a cqrs_jrec header, then `size` payload bytes, then zero padding to
 *   8 bytes (cqrs__jrec_span()); walk them with cqrs__jrec_next(). They stay
 *   valid only during the callback (the buffer is reused right after).
 *
 *   Command groups: the events one command emits are appended back to back;
 *   the last carries CQRS_JREC_CMD_END. A group never spans batches or
 *   segments, so it becomes durable, and is reported, all at once; recovery
 *   cuts an incomplete group at the tail like a torn record.
 *
 *   Durability modes: NONE reports a batch when its write completed (page
 *   cache); BATCH when its fdatasync completed; INTERVAL when its write
 *   completed, while a background thread runs fdatasync every interval_ms.
 *
 *   The reading side (cqrs_journal_iter) works on a directory, from any seq,
 *   read-only, validating every checksum; it never needs the writer.
 *
 * Caveats
 *   - Single writer: claim/commit/append/abandon/flush/poll/wait/close must
 *     all be called from one thread. A directory lock (flock on DIR/LOCK)
 *     keeps a second writer out (-EBUSY).
 *   - A write or fdatasync error poisons the journal: the failed batch and
 *     everything after it are never reported durable, and every later call
 *     returns that error. The only remedy is close + reopen (which recovers).
 *     fdatasync is never retried after a failure.
 *   - -ENOSPC while creating or preallocating a segment rejects the append
 *     (the journal stays usable, retry later); -ENOSPC from a data write
 *     poisons (those events can no longer be made durable in order).
 *   - on_durable runs inside poll/wait/close, never inside claim or flush;
 *     it must not call back into the journal.
 *   - `none` mode never calls fdatasync on data (a clean close does, once).
 *     A process crash loses nothing written; a power cut may lose any
 *     unsynced suffix, and may leave a torn segment that is not the last,
 *     or a log shorter than its manifest, which recovery refuses
 *     (CQRS_ECORRUPT; `cqrs journal repair` accepts the loss). batch and
 *     interval modes fdatasync every full segment before starting the next.
 *   - DIR/MANIFEST (replaced at open, each roll, clean close; in interval
 *     mode also once a second by the fsync thread) names the
 *     journal's first and newest segments and a seq proven to be in it;
 *     segment headers name their predecessor. A segment missing at either
 *     end or in the middle, or a durable tail zeroed or cut, refuses to
 *     open (CQRS_ECORRUPT naming it). What was written since the last
 *     roll, open or close (interval mode: the last second) is proven only
 *     by the records and by the engine's other witnesses
 *     (cqrs__journal_check_seen). Retention (retention.h) moves the
 *     journal's start forward: the manifest then names the collected
 *     prefix, and the first segment may name a predecessor that is gone.
 *   - Opening scans the last two segments only; the iterator validates the
 *     others when the engine replays them.
 *   - Iterator records point into read-only mappings: valid until the next
 *     cqrs__journal_iter_next() or cqrs__journal_iter_close().
 *   - Records are host-endian (little-endian only, like schema records).
 *   - A segment's records are in the layouts its header describes: a
 *     writer opened with other event schemas than the last segment's
 *     starts a new segment with its first record (an empty last segment
 *     is replaced under its name).
 */
#ifndef CQRS_ENGINE_JOURNAL_H
#define CQRS_ENGINE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cqrs.h"
#include "cqrs_common.h"
#include "cqrs_schema.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- record framing (shared with on_durable and the iterator) ----------- */

/* Record flags. */
#define CQRS_JREC_CMD_END 0x0001u /* last event of its command */

/* The 72-byte record header as it lies on disk and in batch buffers; the
 * payload follows it. See format.c for what each field means. */
typedef struct cqrs_jrec {
	uint64_t checksum;          /* XXH3-64 of bytes [8, 72 + size) */
	uint32_t size;              /* payload bytes */
	uint16_t type;              /* event type id (index into the schemas) */
	uint16_t flags;             /* CQRS_JREC_* */
	uint64_t seq;               /* global seq, gapless from 1 */
	int64_t timestamp_ns;       /* wall clock, given by the appender */
	uint64_t aggregate_id;
	uint64_t aggregate_version;
	uint64_t client_id;         /* idempotency key: client (0 = none) */
	uint64_t client_seq;        /* idempotency key: client's command seq */
	uint64_t synced_seq;        /* seqs <= this were on stable storage when
				       this record was committed (recovery hint) */
} cqrs_jrec;

#define CQRS_JREC_HEADER 72u

static inline const void *cqrs__jrec_payload(const cqrs_jrec *r)
{
	return (const uint8_t *)r + CQRS_JREC_HEADER;
}

/* Bytes a record with a payload of size bytes occupies: header + payload
 * rounded up to 8. */
static inline size_t cqrs__jrec_span_for(uint32_t size)
{
	return ((size_t)CQRS_JREC_HEADER + size + 7u) & ~(size_t)7u;
}

/* Bytes the record occupies (cqrs__jrec_span_for its size). */
static inline size_t cqrs__jrec_span(const cqrs_jrec *r)
{
	return cqrs__jrec_span_for(r->size);
}

/* Event type ids a segment can describe (0 .. CQRS_JOURNAL_MAX_TYPES - 1). */
#define CQRS_JOURNAL_MAX_TYPES 4096u

/* The record after r in a run handed to on_durable. */
static inline const cqrs_jrec *cqrs__jrec_next(const cqrs_jrec *r)
{
	return (const cqrs_jrec *)((const uint8_t *)r + cqrs__jrec_span(r));
}

/* ---- the directory's segment files ----------------------------------------- */

/* Segment file name for a first seq: "%020llu.seg" (buf >= 32 bytes). */
void cqrs__jseg_name(char *buf, size_t cap, uint64_t first_seq);

/* Sorted list of the first seqs of the segments in dirfd. *out is
 * malloc'ed (free it); returns the count or -errno. */
int cqrs__jseg_list(int dirfd, uint64_t **out);

/* ---- writer --------------------------------------------------------------- */

typedef struct cqrs_journal cqrs_journal;

typedef enum cqrs_journal_io {
	CQRS_JOURNAL_IO_AUTO = 0,   /* io_uring unless unavailable or CQRS_NO_IO_URING=1 */
	CQRS_JOURNAL_IO_URING = 1,  /* io_uring or fail */
	CQRS_JOURNAL_IO_PWRITE = 2  /* pwritev + fdatasync */
} cqrs_journal_io;

/* Called once per batch, in seq order, when the batch is durable for the
 * mode. records/bytes: the batch's records (see the framing above), valid
 * only during the call. */
typedef void (*cqrs_journal_durable_fn)(void *arg, uint64_t first_seq, uint64_t last_seq,
					const void *records, size_t bytes);

typedef struct cqrs_journal_config {
	const char *dir;            /* created if missing (one level) */
	const char *engine;         /* engine name, stored in every segment header */
	uint64_t segment_size;      /* bytes per segment file; 0 = 64 MiB */
	enum cqrs_durability_mode durability; /* cqrs.h: NONE, BATCH, INTERVAL */
	uint32_t interval_ms;       /* INTERVAL mode period; 0 = 10 */
	const cqrs_schema *const *schemas; /* by event type id; NULL entries allowed */
	uint32_t nschemas;          /* number of event type ids (0..nschemas-1) */
	cqrs_log_fn log;            /* optional */
	void *log_arg;
	cqrs_journal_durable_fn on_durable; /* optional */
	void *durable_arg;
	uint32_t batch_bytes;       /* one batch buffer; 0 = 1 MiB */
	uint32_t queue_depth;       /* batch buffers (2..64): one fills while the
				       others are in flight; 0 = 4 */
	cqrs_journal_io io;
	uint32_t inline_write_max;  /* io_uring backend: a batch of at most this
				       many bytes is written by the flushing
				       thread itself (pwritev; in batch mode only
				       its fdatasync goes through io_uring) rather
				       than by the kernel worker that io_uring
				       hands buffered writes to on most file
				       systems (ext4): a wake-up and a copy
				       from another core's cache; 0 = never */
	int64_t ctime_ns;           /* creation time put in new headers; 0 = now
				       (tests set it for reproducible files) */
	void (*on_roll)(void *arg, uint64_t first_seq); /* optional: a segment was
				       sealed and segment first_seq started
				       (after its manifest; on the writer's
				       thread, inside claim: must be quick) */
	void *roll_arg;
} cqrs_journal_config;

/* What opening (recovery) found. */
typedef struct cqrs_journal_recovery {
	uint64_t next_seq;          /* seq the next record will get */
	uint32_t segments;          /* segment files present after recovery */
	uint64_t torn_bytes;        /* bytes cut from the tail (0 = clean) */
	uint64_t torn_from_seq;     /* first seq cut (when torn_bytes > 0) */
	char torn_file[64];         /* the .torn copy's name in dir, or "" */
	bool manifest_built;        /* there was no manifest (a new journal, or
				       one from before manifests): one was
				       written from the segments */
} cqrs_journal_recovery;

/* The data of one event to append (the payload is passed separately). */
typedef struct cqrs_journal_event {
	uint16_t type;
	uint16_t flags;             /* CQRS_JREC_CMD_END on a command's last event */
	int64_t timestamp_ns;
	uint64_t aggregate_id;
	uint64_t aggregate_version;
	uint64_t client_id;
	uint64_t client_seq;
} cqrs_journal_event;

typedef struct cqrs_journal_stats {
	uint64_t next_seq;
	uint64_t durable_seq;
	uint64_t batches;           /* batches submitted */
	uint64_t bytes;             /* record bytes submitted */
	uint64_t fsyncs;            /* fdatasyncs completed (all kinds) */
	uint64_t inline_writes;     /* batches written by the flushing thread */
	uint64_t short_writes;      /* short write completions resubmitted */
	uint64_t retries;           /* -EAGAIN/-EINTR resubmissions */
	uint64_t rolls;             /* segments started by this writer */
	uint64_t rolls_prealloc;    /* of which found the next file preallocated */
	uint32_t inflight;          /* batches submitted, not yet reported */
	bool io_uring;              /* false: pwritev fallback */
	int poisoned;               /* 0 or the poisoning error */
} cqrs_journal_stats;

/* Opens (creating if needed) the journal in cfg->dir and recovers it (see
 * format.c): a torn tail of the last segment is copied to a .torn
 * file and cut; corruption, a missing segment or a log shorter than its
 * manifest proves refuses to open, cutting nothing. Then the manifest is
 * replaced. *rec (optional) says what was found. Returns 0; -EINVAL (bad config); -EBUSY (another writer
 * holds the directory); CQRS_ECORRUPT (message names segment, offset,
 * seq); CQRS_EFORMAT (foreign file, other version or engine); -errno. */
int cqrs__journal_open(cqrs_journal **out, const cqrs_journal_config *cfg,
		      cqrs_journal_recovery *rec);

/* Reserves space for one record with a payload of `size` bytes in the
 * current batch buffer and returns where to write the payload in *payload
 * (8-byte aligned, valid until cqrs__journal_commit/abandon). When a schema
 * is configured for ev->type, size must equal its record size.
 * Returns 0; -EINVAL (bad type/size, or a claim already pending);
 * -EMSGSIZE (record or its command group cannot fit a batch or segment);
 * -EAGAIN (every batch buffer is in flight: call cqrs__journal_wait, retry);
 * -ENOSPC / -errno (could not start the next segment; not poisoned);
 * the poisoning error. O(1) except at a segment roll, which drains the
 * batches in flight and creates the next file (a few syscalls). */
int cqrs__journal_claim(cqrs_journal *j, const cqrs_journal_event *ev, uint32_t size,
		       void **payload);

/* Seals the pending claim: fills the recovery hint and the checksum.
 * Returns the record's seq. */
uint64_t cqrs__journal_commit(cqrs_journal *j);

/* claim + memcpy + commit. *seq (optional) gets the record's seq. */
int cqrs__journal_append(cqrs_journal *j, const cqrs_journal_event *ev, const void *payload,
			uint32_t size, uint64_t *seq);

/* Drops the open command group: the records committed since the last
 * CMD_END record and a pending claim. Their seqs are reused. Returns the
 * number of records dropped. */
int cqrs__journal_abandon(cqrs_journal *j);

/* Submits the current batch (its complete command groups) for writing.
 * Returns 0, or the poisoning error. */
int cqrs__journal_flush(cqrs_journal *j);

/* Reaps completions without blocking and reports durable batches through
 * on_durable. Returns the number of batches reported (>= 0), or the
 * poisoning error (after reporting what was durable before the failure). */
int cqrs__journal_poll(cqrs_journal *j);

/* Flushes, then blocks until at least one batch is reported or timeout_ns
 * passes (0: do not block; UINT64_MAX: no limit). Returns as poll(); 0 on
 * timeout or when nothing is in flight. */
int cqrs__journal_wait(cqrs_journal *j, uint64_t timeout_ns);

/* Highest seq reported durable so far (0 = none). */
uint64_t cqrs__journal_durable_seq(const cqrs_journal *j);

/* The seq the next committed record will get. */
uint64_t cqrs__journal_next_seq(const cqrs_journal *j);

/* The engine's check of the journal's extent against other witnesses:
 * state derived from the journal and kept elsewhere (a view's applied
 * seq, a dedup entry's seq) that names `seq` proves the journal once held
 * it. Returns 0 when seq < cqrs__journal_next_seq(j), else CQRS_ECORRUPT
 * (logged, and in cqrs_last_error(): `what` and seq, where the journal
 * ends, the missing seqs). Call it after open, before anything is
 * appended. */
int cqrs__journal_check_seen(const cqrs_journal *j, uint64_t seq, const char *what);

/* For retention (engine/journal/retention.h), from any thread: the
 * journal now starts at segment first_seq, every older segment being
 * collected. Replaces the manifest (first seq and collected seq =
 * first_seq), fsynced, before returning, so the caller may remove the
 * older files afterwards. first_seq must be a segment's first seq, at
 * most the newest segment the manifest names (never past the active
 * segment). Takes the lock the writer's manifest updates take (a segment
 * roll waits for it: one manifest write). Returns 0, -EINVAL (first_seq
 * below the journal's start or past its newest segment), or the write's
 * -errno (the old manifest then stands). */
int cqrs__journal_set_start(cqrs_journal *j, uint64_t first_seq);

/* In a child forked from the writer's process (the snapshot writer):
 * closes the child's copy of the LOCK descriptor, so that the flock
 * ends with the writer's process. Async-signal-safe; NULL is fine. */
void cqrs__journal_close_lock_in_child(cqrs_journal *j);

/* 0, or the error that poisoned the journal. */
int cqrs__journal_poisoned(const cqrs_journal *j);

void cqrs__journal_stats_get(const cqrs_journal *j, cqrs_journal_stats *out);

/* Flushes, waits for every batch (reporting them), fdatasyncs the segment,
 * stops the interval thread, releases the directory. Always frees j.
 * Returns 0 or the poisoning / last I/O error. */
int cqrs__journal_close(cqrs_journal *j);

/* ---- the journal's extent (manifest and segment chain) ------------------------ */

typedef struct cqrs_journal_extent {
	bool manifest;              /* DIR/MANIFEST present and valid */
	bool legacy;                /* no manifest, segments of format 1 only: a
				       missing last segment cannot be seen */
	bool manifest_missing;      /* no manifest beside format 2 segments */
	uint32_t segments;
	uint64_t first_seq;         /* manifest: the journal's first seq */
	uint64_t last_segment;      /* manifest: the newest segment's first seq */
	uint64_t durable_seq;       /* manifest: every seq <= this is in the journal */
	uint32_t written_at;        /* manifest: 1 create, 2 roll, 3 close, 4 open,
				       5 repair, 6 interval fsync, 7 collect */
} cqrs_journal_extent;

/* Read-only: reads dir's manifest and every segment header and checks the
 * journal's extent: each segment's predecessor link, and the first and
 * newest segment the manifest names (format.c). Returns 0 with *out;
 * CQRS_ECORRUPT / CQRS_EFORMAT with cqrs_last_error() naming the missing
 * or mismatched file; -errno. */
int cqrs__journal_extent(const char *dir, cqrs_journal_extent *out);

/* After the log was read to its end (next_seq, at `segment`, byte
 * offset): CQRS_ECORRUPT if the manifest proves seqs at or past next_seq
 * were in the journal (a zeroed or cut durable tail), else 0. */
int cqrs__journal_extent_end(const char *dir, const cqrs_journal_extent *x, uint64_t next_seq,
			     const char *segment, uint64_t offset);

/* ---- repair (the operator's escape hatch) -------------------------------------- */

typedef struct cqrs_journal_repair {
	uint64_t next_seq;          /* seq the next record gets after the repair */
	uint64_t cut_from_seq;      /* first seq cut or moved aside (0: none) */
	char cut_segment[40];       /* where bytes were cut ("" if none) */
	uint64_t cut_offset;
	uint64_t cut_bytes;
	char cut_file[64];          /* their copy in dir */
	uint32_t segments_moved;    /* later segments renamed <segment>.cut */
	bool manifest_written;      /* the manifest was rebuilt or rewritten */
	char problem[512];          /* the first problem found ("" = none) */
} cqrs_journal_repair;

/* Cuts the journal in dir at its first problem so that a writer can open
 * it, keeping every cut byte aside (format.c, REPAIR). Takes the writer's
 * lock: -EBUSY while a writer has it. Returns 0 (out says what was done;
 * nothing when problem is ""), or an error. */
int cqrs__journal_repair(const char *dir, cqrs_journal_repair *out);

/* ---- reader ----------------------------------------------------------------- */

typedef struct cqrs_journal_iter cqrs_journal_iter;

/* How the log ended, once cqrs__journal_iter_next returned 0. */
typedef enum cqrs_journal_end {
	CQRS_JOURNAL_END_CLEAN = 0, /* last record followed by zeros / end of file */
	CQRS_JOURNAL_END_TORN = 1   /* a torn tail (recovery would cut it) */
} cqrs_journal_end;

typedef struct cqrs_journal_segment_info {
	char name[40];              /* file name in the directory */
	uint64_t first_seq;
	int64_t ctime_ns;
	uint64_t file_size;
	uint32_t header_size;
	uint32_t ntypes;
	char engine[CQRS_NAME_MAX];
} cqrs_journal_segment_info;

typedef struct cqrs_journal_tail {
	cqrs_journal_end end;
	uint64_t next_seq;          /* seq after the last valid record */
	char segment[40];           /* where a torn tail starts */
	uint64_t offset;
	uint64_t bytes;             /* torn bytes */
} cqrs_journal_tail;

/* Opens an iterator over dir positioned at the first record with seq >=
 * from_seq (the first record if from_seq is below the journal's start).
 * It starts in the segment whose first seq (its name) is the highest <=
 * from_seq: the segments before it are not read. A journal whose prefix
 * retention collected starts at the manifest's first seq F (segments
 * left below it are skipped): from_seq 0 reads from F, from_seq 1..F-1 is
 * refused (CQRS_ENOTFOUND naming the collected seqs), so no reader takes
 * the events after a gap for the ones it asked for. Read-only: never
 * modifies the directory. Returns 0; CQRS_ENOTFOUND (no segments, or
 * from_seq collected); CQRS_ECORRUPT / CQRS_EFORMAT (bad segment header,
 * or a missing first segment not collected); -errno. */
int cqrs__journal_iter_open(cqrs_journal_iter **out, const char *dir, uint64_t from_seq);

/* First seq of the journal's first segment (above 1 when a prefix was
 * collected). */
uint64_t cqrs__journal_iter_start(const cqrs_journal_iter *it);

/* Next record in *rec (zero-copy, into a read-only mapping; valid until the
 * next call). Validates every checksum, the seq chain within and across
 * segments, and the end of each segment. Returns 1 (record), 0 (end: see
 * cqrs__journal_iter_tail), CQRS_ECORRUPT with cqrs_last_error() naming
 * segment, byte offset and seq, or -errno. */
int cqrs__journal_iter_next(cqrs_journal_iter *it, const cqrs_jrec **rec);

/* Schema of `type` embedded in the current record's segment header (the
 * layout of that segment's records of the type: a segment describes every
 * type its writer registered), or NULL. Valid until the iterator moves to
 * another segment (or closes): cqrs__journal_iter_on_segment says when. */
const cqrs_schema *cqrs__journal_iter_schema(const cqrs_journal_iter *it, uint32_t type);

/* Called with the iterator each time it enters a segment, after its
 * header's schemas are decoded and before its first record is returned;
 * an error it returns fails the iterator (iter_next returns it). */
typedef int (*cqrs_journal_segment_fn)(void *arg, const cqrs_journal_iter *it);

/* Sets fn (NULL: none) and calls it at once for the segment the iterator
 * is in. Returns 0 or fn's error (the iterator is then failed). */
int cqrs__journal_iter_on_segment(cqrs_journal_iter *it, cqrs_journal_segment_fn fn, void *arg);

/* The current segment (after iter_next returned 1) and the last record's
 * byte offset in it. */
void cqrs__journal_iter_where(const cqrs_journal_iter *it, cqrs_journal_segment_info *seg,
			     uint64_t *offset);

/* After iter_next returned 0: how the journal ends. */
void cqrs__journal_iter_tail(const cqrs_journal_iter *it, cqrs_journal_tail *out);

void cqrs__journal_iter_close(cqrs_journal_iter *it);

#ifdef __cplusplus
}
#endif

#endif /* CQRS_ENGINE_JOURNAL_H */
