/*
 * cqrs_view.h - reading an engine's views from shared memory (libcqrs_client).
 *
 * Overview
 *   An engine keeps each view (a table of fixed-size rows with a unique key
 *   and optional secondary indexes) in a POSIX shared-memory segment that it
 *   alone writes. Any process of a user allowed to read the segments opens a
 *   view by engine and view name and reads it directly: no syscalls, no
 *   locks, no allocation and no copies beyond the row it asked for.
 *
 *       cqrs_view *v;
 *       order_summary row;
 *       uint64_t id = 42;
 *       if (cqrs_view_open("orders", "order_summaries", &v) == 0) {
 *           if (cqrs_view_get(v, &id, sizeof id, &row, sizeof row) == 0)
 *               ...
 *           cqrs_view_wait(v, my_command_seq, 1000000000);  // read-your-writes
 *           cqrs_view_close(v);
 *       }
 *
 *   Every row handed out is one consistent version (the row's seqlock):
 *   never torn. Multi-row results (find, scan) hold rows that were each
 *   consistent, possibly at different moments, unless CQRS_FIND_SNAPSHOT
 *   asks for one batch-consistent state.
 *
 *   Keys: the key field's bytes. For integer fields pass a pointer to the
 *   integer and its size; str and bytes keys may be shorter than the field
 *   (zero padded, as the engine stores them).
 *
 *   Generations: when the engine rebuilds a view into a new segment, a
 *   reader notices at its next call (one load it does anyway) and moves to
 *   the new one by itself; cqrs_view_generation() tells which it reads.
 *   So it does after a crash: the restarted engine retires the dead one's
 *   generations before it accepts a command. A handle that cannot leave
 *   such an orphaned generation (no current one can be opened) answers
 *   CQRS_ESTALE and applied_seq 0: it never shows what the dead engine
 *   wrote beyond what its journal kept.
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
 *   - A handle is used by one thread at a time (it holds scratch buffers and
 *     moves between generations). Open one per thread; opening is cheap.
 *   - cqrs_view_get copies into row_out before it knows the row is the one
 *     asked for: on any error row_out holds unspecified bytes.
 *   - A view whose writer died mid-update keeps that row's seqlock odd:
 *     reads of that row return CQRS_EWRITERDEAD; the rest stay readable.
 *   - Snapshot queries can be starved by a writer whose batches never pause
 *     (they then return -EAGAIN); plain queries cannot.
 *   - Liveness checks read /proc and compare pids: readers must share the
 *     engine's pid namespace for CQRS_EWRITERDEAD to be reported.
 *   - The segment's size is checked when it is opened; a process with write
 *     access to /dev/shm that truncates a segment afterwards can still make
 *     readers fault (the engine never does).
 */
#ifndef CQRS_VIEW_H
#define CQRS_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "cqrs_common.h"
#include "cqrs_schema.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cqrs_view cqrs_view;

/* Flags for cqrs_view_find and cqrs_view_scan. */
#define CQRS_FIND_SNAPSHOT 1u /* all rows from one batch boundary (retried, buffered) */

/* Receives one row (a private copy, valid during the call). Return 0 to go
 * on, anything else to stop. */
typedef int (*cqrs_view_row_fn)(void *arg, const void *row, size_t row_size);

typedef struct cqrs_view_info {
	char engine[CQRS_NAME_MAX];
	char name[CQRS_NAME_MAX];
	char segment[128];     /* shm name of the segment being read */
	uint64_t generation;
	uint64_t capacity;
	uint64_t rows;
	uint64_t bytes;        /* segment size */
	uint64_t applied_seq;
	uint64_t schema_hash;
	uint32_t row_size;
	int clean;             /* the engine shut down cleanly */
	int retired;           /* replaced; the handle will move */
	int writer_alive;      /* the owning engine process lives */
	char key_field[CQRS_NAME_MAX];
	uint32_t nsecondary;
	char secondary[CQRS_VIEW_MAX_SECONDARY][CQRS_NAME_MAX];
} cqrs_view_info;

typedef struct cqrs_view_entry {
	char name[CQRS_NAME_MAX];
	uint64_t generation; /* 0: declared, not published yet */
	uint64_t schema_hash;
	uint64_t capacity;
	uint32_t row_size;
} cqrs_view_entry;

/* Opens view of engine through the engine's control segment and maps its
 * current generation read-only. *out must be closed with cqrs_view_close.
 * 0, -EINVAL (bad names), -ENOENT (no such engine), CQRS_ENOTFOUND (no such
 * view, or not published yet), -EACCES, CQRS_EFORMAT, CQRS_ECORRUPT (the
 * segment failed validation), -ENOMEM. Cold path: several syscalls. */
CQRS_API int cqrs_view_open(const char *engine, const char *view, cqrs_view **out);

/* Unmaps and frees. NULL is fine. */
CQRS_API void cqrs_view_close(cqrs_view *v);

/* Copies the row with this key into row_out (row_size >= the view's row
 * size; exactly that many bytes are written). Wait-free unless the row is
 * being written at that instant (then it retries). 0, CQRS_ENOTFOUND,
 * -EINVAL (key length), -ENOSPC (row_size too small), CQRS_EWRITERDEAD (the
 * row is stuck mid-update and its writer is dead), -EAGAIN (a live writer
 * kept it busy for seconds), CQRS_ECORRUPT, CQRS_ESTALE (an orphaned
 * generation, see Generations). O(1) expected. */
CQRS_API int cqrs_view_get(cqrs_view *v, const void *key, size_t keylen, void *row_out,
			   size_t row_size);

/* Calls fn for every row whose secondary-indexed field equals key. Without
 * flags each row is consistent and every row that had the key for the whole
 * call is delivered exactly once; with CQRS_FIND_SNAPSHOT the rows are one
 * batch-consistent set (buffered inside the handle, then delivered).
 * Returns the number of rows delivered, or CQRS_ENOTFOUND (field not
 * indexed), -EINVAL, -EAGAIN (snapshot starved), CQRS_EWRITERDEAD,
 * CQRS_ECORRUPT, -ENOMEM (snapshot buffer). O(rows in the key's chain). */
CQRS_API int cqrs_view_find(cqrs_view *v, const char *field, const void *key, size_t keylen,
			    cqrs_view_row_fn fn, void *arg, unsigned flags);

/* Calls fn for every live row (in slot order). Flags as cqrs_view_find;
 * a snapshot scan buffers the whole view. Returns the count or an error. */
CQRS_API int cqrs_view_scan(cqrs_view *v, cqrs_view_row_fn fn, void *arg, unsigned flags);

/* The position of a find in pieces (cqrs_view_find_from). Initialise with
 * cqrs_view_cursor_init; the fields are the reader's own. */
typedef struct cqrs_view_cursor {
	uint64_t generation; /* the generation it walks (set by the first call) */
	uint64_t prev;       /* stamp of the last row passed */
	uint64_t bound;      /* rows with stamps from here up were passed */
	uint64_t steps;
	uint32_t cur;        /* the next row + 1, 0 at the chain's end */
	uint32_t restarts;
	uint32_t state;      /* 0 fresh, 1 walking, 2 done */
	uint32_t reserved;
} cqrs_view_cursor;

CQRS_API void cqrs_view_cursor_init(cqrs_view_cursor *c);

/* A plain find in pieces, for iterators: as cqrs_view_find without flags
 * (each row consistent on its own; every row that had the key for the
 * whole walk delivered exactly once, the walk's restarts included), but it
 * returns when fn stops and the next call with the same cursor, field and
 * key goes on after that row. Returns the rows delivered by this call (0:
 * the walk is over), -EAGAIN when the handle moved to another generation
 * since the cursor started (start again with a fresh cursor), or an error
 * as cqrs_view_find. */
CQRS_API int cqrs_view_find_from(cqrs_view *v, const char *field, const void *key, size_t keylen,
				 cqrs_view_cursor *c, cqrs_view_row_fn fn, void *arg);

/* A plain scan in pieces, for iterators: calls fn for the live rows from
 * slot *cursor on (start with 0), in slot order, until fn stops or the
 * rows end, and sets *cursor to the slot after the last one read. Returns
 * the number of rows delivered (0: the scan is over) or an error as
 * cqrs_view_scan. Each row is consistent on its own, as in a plain scan,
 * but the view changes between calls: a row that stays (same slot) for
 * the whole scan is delivered once; one deleted and added again may be
 * seen twice or not at all. Slots belong to one generation: when
 * cqrs_view_generation() changes between calls, start again at 0. */
CQRS_API int cqrs_view_scan_from(cqrs_view *v, uint64_t *cursor, cqrs_view_row_fn fn, void *arg);

/* ---- the ordered index ----------------------------------------------------
 * A view may declare one ordered index over up to 4 of its fields
 * (cqrs_view_def.ordered_fields), e.g. (instrument, side, price): every
 * row is in it, ordered by those fields' values (integers numerically,
 * f64 by IEEE order with -0.0 before +0.0, str and bytes as bytes), rows
 * with equal values by their slot (duplicates are allowed).
 *
 * Keys (lo, hi, seek): the fields' values as the row holds them, one after
 * the other in the index's order (native integers of each field's size,
 * str/bytes of the field's size). A shorter key is a prefix: it ends at a
 * field boundary, or inside a str/bytes field (zero padded); missing
 * fields compare as their smallest encoding. So (instrument, side) as lo
 * and (instrument, side + 1) as hi is every price of that side.
 *
 * index: NULL, the index's first field name, or its fields joined by ','.
 * Readers register nowhere and take no locks: the writer versions every
 * node and readers validate each node they pass (shm/ordered_format.h).
 * Without CQRS_RANGE_SNAPSHOT every row is untorn and in the range, every
 * row that stayed in the range for the whole call is delivered exactly
 * once, in order; a row that moved or changed during the call may be
 * missed or seen at both places. With it, the rows are one batch's state.
 * Costs: O(log n) to find the start, O(1) per row after it (plus the row's
 * copy). Errors: CQRS_ENOTFOUND (no ordered index, or another index
 * named), -EINVAL (bad key length, NULL fn), -EAGAIN (a walk restarted too
 * often under churn, or a snapshot was starved), CQRS_EWRITERDEAD,
 * CQRS_ECORRUPT (a link or node out of place), CQRS_ESTALE, -ENOMEM. */

#define CQRS_RANGE_SNAPSHOT CQRS_FIND_SNAPSHOT /* one batch-consistent set (buffered) */
#define CQRS_RANGE_DESC 2u                     /* from hi down to lo */

/* Calls fn for each row with lo <= key < hi (lo NULL: from the first row;
 * hi NULL: to the last), ascending or, with CQRS_RANGE_DESC, descending,
 * at most limit rows (0: no limit). Returns the number delivered (fn's
 * non-zero return stops the walk after that row) or an error. */
CQRS_API int cqrs_view_range(cqrs_view *v, const char *index, const void *lo, size_t lo_len,
			     const void *hi, size_t hi_len, unsigned flags, uint64_t limit,
			     cqrs_view_row_fn fn, void *arg);

/* *count = the rows with lo <= key < hi. Exact with CQRS_RANGE_SNAPSHOT;
 * without it, rows that changed during the call may count 0, 1 or 2 times.
 * O(log n + rows in range); copies no rows. 0 or an error. */
CQRS_API int cqrs_view_range_count(cqrs_view *v, const char *index, const void *lo, size_t lo_len,
				   const void *hi, size_t hi_len, unsigned flags, uint64_t *count);

/* The row with the smallest (first) or largest (last) key into row_out
 * (row_size >= the view's row size). 0, CQRS_ENOTFOUND (empty view or no
 * such index), -ENOSPC, or an error as cqrs_view_range. */
CQRS_API int cqrs_view_first(cqrs_view *v, const char *index, void *row_out, size_t row_size);
CQRS_API int cqrs_view_last(cqrs_view *v, const char *index, void *row_out, size_t row_size);

/* The first row whose key is >= key or, with CQRS_RANGE_DESC, the last row
 * whose key is <= key (a prefix key is zero padded). 0, CQRS_ENOTFOUND, or
 * an error as cqrs_view_first. */
CQRS_API int cqrs_view_seek(cqrs_view *v, const char *index, const void *key, size_t keylen,
			    unsigned flags, void *row_out, size_t row_size);

/* Names the ordered index's fields: up to cap pointers (into the handle's
 * schema) into fields; returns how many fields the index has (0: none). */
CQRS_API int cqrs_view_ordered(cqrs_view *v, const char **fields, size_t cap);

/* The last journal sequence number whose effects the view shows (acquire
 * load: rows of that batch are visible to the calls that follow). */
CQRS_API uint64_t cqrs_view_applied_seq(cqrs_view *v);

/* Waits until applied_seq >= seq: spins briefly, then sleeps on a futex in
 * the segment (woken by the engine across processes). timeout_ns UINT64_MAX
 * waits forever. 0, -ETIMEDOUT, CQRS_EWRITERDEAD (the engine died),
 * CQRS_ESTALE (an orphaned generation). 0 means the generation the handle
 * reads now has applied seq, so the calls that follow show it. */
CQRS_API int cqrs_view_wait(cqrs_view *v, uint64_t seq, uint64_t timeout_ns);

/* The row schema (owned by the handle; its content follows the handle to a
 * new generation). */
CQRS_API const cqrs_schema *cqrs_view_schema(cqrs_view *v);

CQRS_API uint64_t cqrs_view_rows(cqrs_view *v);
CQRS_API uint64_t cqrs_view_capacity(cqrs_view *v);
CQRS_API uint64_t cqrs_view_generation(cqrs_view *v);

/* Fills *out (checks the writer's liveness: reads /proc). */
CQRS_API int cqrs_view_stat(cqrs_view *v, cqrs_view_info *out);

/* Checks the control directory now and moves to a newer generation if there
 * is one. 0 (moved or already current) or an error from opening. */
CQRS_API int cqrs_view_refresh(cqrs_view *v);

/* Lists engine's views: fills up to cap entries, returns how many exist,
 * or an error as cqrs_view_open. */
CQRS_API int cqrs_view_list(const char *engine, cqrs_view_entry *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* CQRS_VIEW_H */
