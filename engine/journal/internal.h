/*
 * engine/journal/internal.h - the writer's private state, shared by the writer
 * (writer.c), recovery (recover.c) and the two I/O backends
 * (uring.c, pwrite.c).
 *
 * Batches live in a ring of queue_depth buffers. Indices from `head` (the
 * oldest batch not yet reported) run in seq and file order; at most one
 * batch, `cur`, is FILL (taking records); those before it were submitted
 * (WRITE) and become DONE when durable for the mode.
 */
#ifndef CQRS_ENGINE_JOURNAL_IMPL_H
#define CQRS_ENGINE_JOURNAL_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/journal/journal.h"
#include "engine/journal/format.h"

enum jb_state { JB_FREE = 0, JB_FILL = 1, JB_WRITE = 2, JB_DONE = 3 };

typedef struct jbatch {
	uint8_t *buf;          /* registered buffer (batch_bytes) */
	uint32_t index;        /* buffer index (registered buffer id) */
	uint32_t len;          /* FILL: committed bytes; WRITE: bytes to write */
	uint32_t group_start;  /* FILL: end of the last complete command group */
	uint32_t done;         /* bytes written so far */
	uint64_t file_off;     /* where buf[0] goes in the current segment */
	uint64_t first_seq;    /* seq of buf's first record */
	uint64_t end_seq;      /* seq of the last record in [0, group_start) */
	uint64_t submit_ns;
	enum jb_state state;
	uint16_t attempt;      /* submission attempt, tells stale CQEs apart */
	uint8_t ops;           /* SQEs of this batch still in the kernel */
	bool write_done;
	bool sync_done;
	uint8_t zero_writes;   /* consecutive writes that made no progress */
} jbatch;

struct cqrs_journal;

/* An I/O backend. submit starts writing b[done, len) (plus the fdatasync in
 * batch mode); sync (optional) starts only the fdatasync of a batch
 * already written by the flushing thread (writer.c, inline
 * writes); reap processes completions, waiting up to wait_ns for one (0:
 * never block), and reports outcomes through cqrs__jw_written /
 * cqrs__jw_synced / cqrs__jw_failed. All return 0 or a fatal -errno. */
typedef struct jio_ops {
	const char *name;
	int (*set_file)(struct cqrs_journal *j, int fd);
	int (*submit)(struct cqrs_journal *j, jbatch *b);
	int (*sync)(struct cqrs_journal *j, jbatch *b);
	int (*reap)(struct cqrs_journal *j, uint64_t wait_ns);
	void (*fini)(struct cqrs_journal *j);
} jio_ops;

struct juring; /* uring.c */

struct cqrs_journal {
	cqrs_journal_config cfg;
	char dir[PATH_MAX];
	char engine[CQRS_NAME_MAX];
	const cqrs_schema **schemas;   /* copy of the pointer array (ntypes) */
	uint32_t ntypes;
	uint32_t hsize;                /* header size of new segments */
	uint64_t seg_size_cfg;         /* size of new segments */
	int dirfd;
	int lockfd;

	/* The journal's extent (the manifest: format.c). */
	uint64_t journal_first_seq;    /* first seq of the first segment */
	bool journal_collected;        /* a prefix before it was collected
				          (retention); with journal_first_seq,
				          guarded by mu once the engine runs */
	jmanifest man;                 /* as last written (or read at open) */

	/* The current segment. */
	int seg_fd;
	uint64_t seg_first_seq;
	uint64_t seg_prev_first_seq;   /* its predecessor link (0: the first) */
	uint64_t seg_size;             /* its file size */
	uint64_t write_off;            /* where the next batch goes */
	int spare_fd;                  /* preallocated next segment, or -1 */
	bool spare_failed;             /* last preallocation failed: wait for the roll */
	uint8_t *hdrbuf;               /* hsize bytes for the next header */

	/* Batches. */
	jbatch *b;
	uint32_t nb;
	uint32_t batch_cap;
	uint32_t head;                 /* oldest batch not reported */
	uint32_t used;                 /* batches not FREE */
	int cur;                       /* FILL batch index or -1 */
	uint8_t *bufmem;
	size_t bufmem_len;

	/* Seqs. */
	uint64_t next_seq;             /* seq of the next commit */
	uint64_t durable_seq;          /* reported through on_durable */
	uint64_t done_seq;             /* in-order frontier of DONE batches */
	uint64_t sealed_seq;           /* fdatasynced by open/roll/close */
	uint64_t submitted_seq;        /* end_seq of the last batch submitted */

	/* The pending claim. */
	bool claim_pending;
	uint32_t claim_off;

	int poison;
	int io_err;                    /* non-poisoning error kept for close */
	const jio_ops *io;
	struct juring *uring;
	cqrs_journal_stats st;

	/* INTERVAL mode: a background thread fdatasyncs sync_fd every
	 * interval_ms, and at most once a second replaces the manifest with
	 * what that proved. mu guards sync_fd, sync_first_seq, stop and,
	 * while the thread runs, man and the manifest file. */
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	int sync_fd;
	uint64_t sync_first_seq;          /* the segment sync_fd is */
	atomic_uint_fast64_t written_seq; /* in-order written frontier, for the thread */
	atomic_uint_fast64_t synced_seq;  /* what the thread's last fdatasync covered */
	atomic_int sync_err;              /* the thread's fdatasync error, 0 if none */
	atomic_uint_fast64_t thr_fsyncs;  /* the thread's fdatasyncs (a statistic) */
};

extern const jio_ops cqrs__jio_uring;
extern const jio_ops cqrs__jio_pwrite;

/* pwrite.c: writes all of b with pwritev on this thread and
 * reports it written, or failed (then false). */
bool cqrs__jpw_write(struct cqrs_journal *j, jbatch *b);

/* uring.c: sets j->uring and j->io, or returns -errno (then the
 * caller may fall back to pwrite). */
int cqrs__juring_init(struct cqrs_journal *j);

/* Completion outcomes, called by the backends. */
void cqrs__jw_written(struct cqrs_journal *j, jbatch *b);
void cqrs__jw_synced(struct cqrs_journal *j, jbatch *b);
void cqrs__jw_failed(struct cqrs_journal *j, jbatch *b, int err, const char *what);

/* Log through the configured callback (printf-style). */
void cqrs__jlog(const struct cqrs_journal *j, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* writer.c: starts segment first_seq (creating/using the spare).
 * Used by open (first segment) and roll. */
int cqrs__jw_new_segment(struct cqrs_journal *j, uint64_t first_seq);

/* manifest.c: replaces DIR/MANIFEST with the journal's extent as it
 * stands: first segment, newest segment last_segment, every seq <= durable
 * in it. Skips the write when the manifest already says exactly that.
 * cqrs__jw_manifest: the command thread's (newest = the current segment;
 * takes mu while the interval thread runs); _locked: mu held, or no
 * interval thread. Both keep the collected prefix (journal_collected). */
int cqrs__jw_manifest(struct cqrs_journal *j, uint64_t durable, enum jman_why why);
int cqrs__jw_manifest_locked(struct cqrs_journal *j, uint64_t last_segment, uint64_t durable,
			     enum jman_why why);

/* recover.c: copies [off, end) of the mapped segment m (opened writable)
 * to DIR/<segment>.<off>.<suffix> (fdatasynced, directory fsynced), then
 * zeroes it in place and fdatasyncs. *name gets the copy's name. */
int cqrs__jcut_aside(int dirfd, const char *dir, jseg_map *m, size_t off, size_t end,
		     const char *suffix, char *name, size_t cap);

/* recover.c: recovers j->dir and sets the current segment, next_seq and
 * journal_first_seq (or creates the first segment), and checks the
 * journal's extent against the manifest and the predecessor links. */
int cqrs__jrecover(struct cqrs_journal *j, cqrs_journal_recovery *rec);

#endif /* CQRS_ENGINE_JOURNAL_IMPL_H */
