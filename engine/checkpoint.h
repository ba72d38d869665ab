/*
 * engine/checkpoint.h - view checkpoints: each projection's view
 * generations copied to disk at a batch boundary, so that a start whose
 * views are missing, dirty or stale loads the newest valid checkpoint into
 * a new generation and replays only the journal's tail. File format:
 * engine/checkpoint_format.h. Files:
 *   checkpoint_write.c  taking them: the trigger at a batch boundary, the
 *                       checkpoint thread, userfaultfd write-protect or a
 *                       copy at the boundary, keeping the newest K
 *   checkpoint_load.c   listing and verifying them, restoring a projection
 *                       from them at start
 * A projection's views are checkpointed together at one applied seq (they
 * always agree on it); restore takes the newest seq every view has.
 */
#ifndef CQRS_ENGINE_CHECKPOINT_H
#define CQRS_ENGINE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/checkpoint_format.h"

struct cqrs_engine;
struct cqrs_proj;

/* How a checkpoint's bytes are taken (cqrs_counters.ckpt_mode). */
enum cqrs_ckpt_mode {
	CQRS_CKPT_MODE_OFF = 0,      /* no checkpoint thread */
	CQRS_CKPT_MODE_UFFD = 1,     /* userfaultfd write-protect: the projector
					waits only for pages it writes before
					they are copied */
	CQRS_CKPT_MODE_STOPCOPY = 2, /* copied at the batch boundary: the
					projector waits for the whole copy
					(counted as its stall) */
};

/* One checkpoint file (the contract with journal retention). */
struct cqrs__checkpoint_info {
	char view[64];
	uint64_t seq;
	uint64_t bytes;
	int64_t mtime_ns;
	int valid;
	char path[4096];
	char why[160]; /* why invalid */
};

/* Every view folder under data_dir/checkpoints: each file, newest first
 * within a view, fully verified (valid); a view folder with no valid file
 * gives one entry with seq 0, valid 0. At most cap entries are stored, *n
 * gets how many there are. 0 (also when there is no checkpoints folder)
 * or -errno. Cold: reads every file. */
int cqrs__checkpoint_list(const char *data_dir, struct cqrs__checkpoint_info *out, size_t cap,
			  size_t *n);

/* ---- checkpoint_load.c ---- */

/* The file name of view's checkpoint at seq ("" tmp: the final name, else
 * the temporary one). 0 or -ENAMETOOLONG. */
int cqrs__checkpoint_path(char *out, size_t cap, const char *data_dir, const char *view,
			  uint64_t seq, int tmp);

/* The seqs of the final checkpoint files in a view's folder, newest first
 * (malloc'd into *out; none when the folder is missing). 0 or -errno. */
int cqrs__checkpoint_seqs(const char *dir, uint64_t **out, size_t *n);

/* Verifies the checkpoint file at path completely (header, sizes, every
 * chunk). 0 with *hdr, or CQRS_ECORRUPT / CQRS_EFORMAT / -errno with why. */
int cqrs__checkpoint_verify(const char *path, cqrs_ckpt_hdr *hdr, char *why, size_t whylen);

/* Creates DATA/checkpoints/<view>/ for every registered view and removes
 * temporary files a crash left. Before the views open. */
int cqrs__checkpoint_dirs(struct cqrs_engine *e);

/* At start, for a projection whose views could not be adopted (their old
 * generations already gone): the newest seq S <= last_seq at which every
 * view has a checkpoint that verifies, carries this engine's and view's
 * names and the registered row schema and indexes, and whose tail S+1..
 * the journal still holds, is loaded into new generations of the views
 * (p's writers, dirty, not yet published). Returns 1 with *resume = S, 0
 * when nothing could be restored (each refusal logged: a full rebuild
 * follows), or an error. */
int cqrs__checkpoint_restore(struct cqrs_engine *e, struct cqrs_proj *p, uint64_t last_seq,
			     uint64_t *resume);

/* A hash of the number, schema and upcasting of each event type in the
 * bitmap types: a view checkpoint applied with other layouts of its types
 * is rebuilt instead (a type registered since is new and does not count). */
uint64_t cqrs__checkpoint_events_hash(const struct cqrs_engine *e, const uint64_t types[4]);
/* The bitmap of registered event types (for events_types). */
void cqrs__checkpoint_event_types(const struct cqrs_engine *e, uint64_t types[4]);

/* The journal's first seq (1 unless retention removed its head). */
uint64_t cqrs__checkpoint_journal_first(struct cqrs_engine *e);

/* ---- checkpoint_write.c ---- */

/* Probes the copy mode and starts the checkpoint thread. Before the
 * projectors start. 0 or an error (logged; checkpoints are then off). */
int cqrs__checkpoint_open(struct cqrs_engine *e);

/* After the projectors stopped, before their views close: finishes the
 * checkpoint in flight, then (clean and checkpoint_on_stop) checkpoints
 * every projection whose views moved since its last one, and stops the
 * thread. */
void cqrs__checkpoint_close(struct cqrs_engine *e, int clean);

/* At the end of a batch of p on its projector's thread (SHARED threading:
 * the command thread): starts a checkpoint of p when checkpoint_every_events
 * seqs passed since its last one or one was requested, and no other is in
 * flight (else it tries at a later batch). Cost when none is due: two
 * loads and a compare. */
void cqrs__checkpoint_tick(struct cqrs_engine *e, struct cqrs_proj *p);

/* Test hook: the checkpoint thread sleeps this long before each chunk it
 * writes in order, so that a test can make the projector store into, grow
 * or rebuild views while a checkpoint is in flight. 0 (the default): no
 * sleep; one relaxed load per chunk. */
extern _Atomic uint32_t cqrs__ckpt_test_chunk_delay_us;

/* Whether a checkpoint was requested for any projection and none is in
 * flight (seq_cst loads; the checkpoint thread kicks the command thread
 * when a job ends with a request pending). */
bool cqrs__checkpoint_requested(struct cqrs_engine *e);

#endif
