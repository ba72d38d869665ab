/*
 * engine/journal/retention.h - journal retention: which sealed segments a
 * restart can no longer need (the plan), and their collection (delete,
 * move to an archive folder, or hand to a user hook).
 *
 * Overview
 *   A restart needs the journal from the oldest seq any of its consumers
 *   would read:
 *     - the write model: the oldest valid snapshot kept, at seq S, needs
 *       S+1.. (no valid snapshot: everything, a replay from seq 1);
 *     - every view: its newest valid checkpoint at seq C needs C+1.. (a
 *       view with no valid checkpoint: everything, a rebuild from seq 1);
 *     - replication (optional hook): the highest seq replicated, R, needs
 *       R+1.. until the replicas have it;
 *   and the policy keeps a minimum besides (the newest N sealed segments,
 *   the newest segments holding B bytes, segments younger than an age).
 *   A segment is collectable when every seq in it lies below all of
 *   these, and only a prefix of the journal is ever collected (the
 *   journal stays contiguous). The active segment, the last one, is never
 *   touched.
 *
 *       cqrs__retention_scan()      list DIR's segments (names, sizes, times)
 *       cqrs__retention_plan()      per segment: what pins it, keep or collect
 *       cqrs__retention_collect()   MANIFEST first (fsynced), then the files
 *
 *   The plan is a pure function of the segment list, the pins and the
 *   policy (the model-based test checks it against a brute force).
 *   Collection replaces the manifest with the new first seq before any
 *   file goes (format.c, A COLLECTED PREFIX), so a crash in the middle
 *   leaves a journal that opens, with leftovers the next collection
 *   finishes.
 *
 * Caveats
 *   - Cold path only (a housekeeping thread, or the CLI on a stopped
 *     engine): it lists directories, stats files and fsyncs.
 *   - Pins are what the caller passes: retention_pins.c reads them from
 *     the data directory (snapshots/, checkpoints/).
 */
#ifndef CQRS_ENGINE_JOURNAL_RETENTION_H
#define CQRS_ENGINE_JOURNAL_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cqrs.h"
#include "engine/journal/journal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What happens to a segment. */
enum cqrs__ret_action {
	CQRS__RET_KEEP = 0,
	CQRS__RET_DELETE = 1,   /* unlinked */
	CQRS__RET_ARCHIVE = 2,  /* moved to the archive folder */
	CQRS__RET_HOOK = 3      /* handed to the user's hook */
};

/* Views whose checkpoints a plan considers (one pin each). */
#define CQRS__RET_MAX_VIEWS 256u

/* One segment: filled by cqrs__retention_scan, the rest by the plan. */
typedef struct cqrs__ret_seg {
	uint64_t first_seq;      /* its name */
	uint64_t last_seq;       /* the next segment's first seq - 1; the active
				    segment: UINT64_MAX (to the end) */
	uint64_t bytes;          /* file size */
	int64_t mtime_ns;        /* last written */
	bool leftover;           /* below the manifest's collected prefix: already
				    collected, its file not yet removed */
	bool active;             /* the last segment */
	enum cqrs__ret_action action;
	char pins[240];          /* what keeps it ("" when collected), readable */
} cqrs__ret_seg;

/* The restart's needs, as seqs. */
typedef struct cqrs__ret_view_pin {
	char view[64];
	uint64_t seq;            /* newest valid checkpoint's applied seq */
	bool valid;              /* false: no valid checkpoint (pins everything) */
} cqrs__ret_view_pin;

typedef struct cqrs__ret_pins {
	bool snapshot_valid;     /* false: no valid snapshot (pins everything) */
	uint64_t snapshot_seq;   /* the oldest valid snapshot kept */
	uint32_t nviews;
	cqrs__ret_view_pin views[CQRS__RET_MAX_VIEWS];
	bool views_unknown;      /* the views cannot be listed (more than fit, no
				    checkpoint reader): pins everything */
	bool replication;        /* a watermark hook is set */
	uint64_t replicated_seq; /* its answer: every seq <= this is replicated */
} cqrs__ret_pins;

typedef struct cqrs__ret_policy {
	uint32_t min_segments;   /* the newest N sealed segments are kept */
	uint64_t min_bytes;      /* the newest sealed segments holding at least
				    this many bytes are kept */
	uint64_t min_age_s;      /* segments last written less than this long
				    ago are kept */
	int64_t now_ns;          /* wall clock the age is measured against */
	enum cqrs__ret_action action; /* for collectable segments (not KEEP) */
	const char *archive_dir; /* CQRS__RET_ARCHIVE: created if missing */
	cqrs_retention_hook_fn hook; /* CQRS__RET_HOOK */
	void *hook_arg;
} cqrs__ret_policy;

/* What a plan or a collection comes to. */
typedef struct cqrs__ret_summary {
	uint64_t need_seq;       /* the oldest seq a restart needs (1 = all) */
	uint64_t new_first_seq;  /* first seq of the first segment kept */
	uint32_t segments;       /* in the plan */
	uint32_t collect;        /* segments the plan collects (leftovers too) */
	uint64_t journal_bytes;  /* all segment files */
	uint64_t pinned_bytes;   /* sealed segments kept */
	uint64_t collect_bytes;  /* the collected ones */
	uint32_t collected;      /* collect: files actually gone */
	uint64_t collected_bytes;
} cqrs__ret_summary;

/* Lists dir's segments into *out (malloc'ed, free it), oldest first, with
 * the manifest's collected prefix marked (leftover) and the last segment
 * active. *first_seq gets the journal's first seq (the manifest's, or the
 * first segment's). Returns the count (>= 0) or an error (message in
 * cqrs_last_error()). Reads names, sizes and times only. */
int cqrs__retention_scan(const char *dir, cqrs__ret_seg **out, uint64_t *first_seq);

/* Decides every segment's action and pin string in place. segs: as from
 * cqrs__retention_scan (ascending, the last one active). O(n * views). */
void cqrs__retention_plan(cqrs__ret_seg *segs, size_t n, const cqrs__ret_pins *pins,
			  const cqrs__ret_policy *pol, cqrs__ret_summary *sum);

/* The pin string's short name for an action ("keep", "delete", ...). */
const char *cqrs__retention_action_name(enum cqrs__ret_action a);

/* Carries out a plan: moves the journal's start past the collected
 * segments (j: the running writer's cqrs__journal_set_start; NULL: dir's
 * MANIFEST is rewritten directly, the caller holding the directory's
 * LOCK), then removes, archives or hands over each collected file, oldest
 * first, and fsyncs the directory. A failure stops there: the files not
 * yet done stay as leftovers for the next collection. Returns 0 or the
 * first error (sum->collected says how far it got). */
int cqrs__retention_collect(const char *dir, cqrs_journal *j, const cqrs__ret_seg *segs, size_t n,
			    const cqrs__ret_policy *pol, cqrs__ret_summary *sum);

/* For the CLI on a stopped engine: takes dir's LOCK (-EBUSY while a
 * writer holds it), checks the journal's extent (headers, links,
 * manifest; a damaged journal is not collected), then scans, plans and
 * collects. dry_run: plans only (no lock needed). *segs / *n get the plan
 * (free *segs). */
int cqrs__retention_run_offline(const char *dir, const cqrs__ret_pins *pins,
				const cqrs__ret_policy *pol, bool dry_run, cqrs__ret_seg **segs,
				size_t *n, cqrs__ret_summary *sum);

#ifdef __cplusplus
}
#endif

#endif /* CQRS_ENGINE_JOURNAL_RETENTION_H */
