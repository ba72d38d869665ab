/*
 * engine/snapshot.h - write-model snapshots inside the engine: what the
 * application registered, the triggers the command thread checks between
 * batches, the forked writer, loading at start, and the list of files
 * (the file format: engine/snapshot_format.h).
 *   snapshot.c        registration, triggers, the fork and its reaping,
 *                     cqrs_engine_snapshot, the start's choice of file
 *   snapshot_write.c  serializing the model into a file (tmp, fsync, rename)
 *   snapshot_load.c   mapping and verifying a file, loading it
 *   snapshot_files.c  names, the list, pruning, leftovers
 */
#ifndef CQRS_ENGINE_SNAPSHOT_H
#define CQRS_ENGINE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "cqrs.h"
#include "engine/snapshot_format.h"

struct cqrs_engine;

/* ---- the list (journal retention consumes it) --------------------------------- */

struct cqrs__snapshot_info {
	uint64_t seq;
	uint64_t bytes;
	int64_t mtime_ns;
	int valid;          /* fully verified (format, every checksum) */
	char path[4096];
	char why[160];      /* why invalid */
};

/* The snapshots in DATA/snapshots, newest first, at most cap of them in
 * out (*n: how many there are, which may exceed cap). Each is verified
 * (reads the whole file). A missing folder is no snapshot. 0 or -errno. */
int cqrs__snapshot_list(const char *data_dir, struct cqrs__snapshot_info *out, size_t cap,
			size_t *n);

/* ---- registration ------------------------------------------------------------- */

typedef struct cqrs__snap_store {
	char name[CQRS_SNAP_NAME];
	cqrs_store *store;
} cqrs__snap_store;

typedef struct cqrs__snap_user {
	char name[CQRS_SNAP_NAME];
	uint32_t version;
	cqrs_snapshot_save_fn save;
	cqrs_snapshot_load_fn load;
	void *arg;
} cqrs__snap_user;

/* What the forked writer reports to the command thread: a shared
 * anonymous page, written by the child, read by the parent once done. */
typedef struct cqrs__snap_result {
	_Atomic uint32_t done;  /* 1: the fields below are final */
	int32_t rc;
	uint64_t bytes;
	uint64_t write_ns;
	char why[240];
} cqrs__snap_result;

typedef struct cqrs__snap {
	cqrs__snap_store stores[CQRS_SNAP_MAX_STORES];
	uint32_t nstores;
	cqrs__snap_user users[CQRS_SNAP_MAX_USERS];
	uint32_t nusers;
	char dir[3300];             /* DATA/snapshots */
	int on;                     /* something registered: snapshots are taken */
	int verified;               /* cqrs_engine_verify_snapshot filled the stores */
	uint64_t loaded_seq;        /* the snapshot loaded at start, 0: none */
	uint64_t load_ns;           /* ... and how long its choice and load took */
	/* command thread */
	int child;                  /* pid of the writer in flight, 0: none */
	int parent;                 /* the engine's pid, for the child */
	uint64_t next_check_ns;     /* next waitpid of a silent child */
	uint64_t retry_ns;          /* triggers wait until then after a failure */
	uint64_t child_seq;
	uint64_t child_covers;      /* API requests it answers */
	uint64_t child_ctl_covers;  /* control-segment requests it answers */
	uint64_t last_seq;          /* newest snapshot (taken or loaded) */
	uint64_t last_bytes_at;     /* journal bytes when it was taken */
	uint64_t ctl_seen;          /* the control segment's requests served */
	cqrs__snap_result *result;  /* MAP_SHARED page */
	uint8_t *buf;               /* the writer's chunk buffer */
	uint64_t fork_us[64];       /* the last forks' stalls (p50 for the bench) */
	uint64_t nforks;
	/* cqrs_engine_snapshot: any thread asks, the command thread answers */
	_Atomic uint64_t api_requests;
	_Atomic uint64_t api_served;
	_Atomic uint64_t api_seq;   /* seq of the snapshot that served them */
	_Atomic int api_rc;
	char api_why[240];
} cqrs__snap;

/* Whether the application registered anything: snapshots are on. */
int cqrs__snapshot_enabled(const struct cqrs_engine *e);

/* The engine's snapshot state, allocated on first use (NULL: -ENOMEM). */
cqrs__snap *cqrs__snapshot_state(struct cqrs_engine *e);
void cqrs__snapshot_free(struct cqrs_engine *e);

/* ---- start ---------------------------------------------------------------------- */

/* Before the journal's replay: removes leftovers, loads the newest valid
 * snapshot into the model (*from = its seq; 0: none) or finds that a
 * full replay can restore the state. next_seq: the journal's next seq,
 * first_seq: its first. 0, or an error naming what is missing. */
int cqrs__snapshot_restore(struct cqrs_engine *e, uint64_t next_seq, uint64_t *from);
/* After the counters exist: the loaded snapshot in them. */
void cqrs__snapshot_counters_init(struct cqrs_engine *e);
/* Median fork() stall of the last 64 snapshots, us (the bench). */
uint64_t cqrs__snapshot_fork_p50_us(const struct cqrs_engine *e);

/* ---- the command thread --------------------------------------------------------- */

/* Between batches: reaps a finished writer, starts one when a trigger
 * fired. A few loads when nothing is due. */
void cqrs__snapshot_tick(struct cqrs_engine *e);

/* After the last batch is durable (stop): waits for a writer in flight,
 * then writes the stop's snapshot on this thread if configured. */
void cqrs__snapshot_at_stop(struct cqrs_engine *e);

/* ---- writing and loading (snapshot_write.c, snapshot_load.c) ------------------- */

/* Whether the journal is durable up to seq yet; the writer waits on it
 * before renaming: 1 yes, 0 not yet, < 0 never (stopped, poisoned). */
typedef int (*cqrs__snap_durable_fn)(void *arg, uint64_t seq);

/* Writes the model as it is (at seq) into dir's tmp file, fsyncs, waits
 * for durable(arg, seq), renames it into place, fsyncs dir, prunes to
 * keep. buf: CQRS_SNAP_CHUNK_MAX + 16 bytes. *bytes: the file's size.
 * 0 or an error with why filled. */
int cqrs__snapshot_write(struct cqrs_engine *e, uint64_t seq, uint8_t *buf,
			 cqrs__snap_durable_fn durable, void *arg, uint64_t *bytes,
			 char *why, size_t whycap);

typedef struct cqrs__snap_sec {
	uint32_t kind;
	char name[CQRS_SNAP_NAME + 1];
	uint32_t keylen, value_size;
	uint64_t count;
	uint64_t off;               /* its first chunk header */
} cqrs__snap_sec;

typedef struct cqrs__snap_image {
	const uint8_t *base;
	uint64_t size;
	cqrs__snap_header hdr;
	uint32_t nsec;
	cqrs__snap_sec sec[CQRS_SNAP_MAX_SECTIONS];
} cqrs__snap_image;

/* Maps path and verifies it completely (the format essay's READING).
 * 0, or CQRS_ECORRUPT / CQRS_EFORMAT / -errno with why filled. */
int cqrs__snapshot_open(const char *path, cqrs__snap_image *img, char *why, size_t whycap);
void cqrs__snapshot_close(cqrs__snap_image *img);

/* Whether the verified image fits engine e: its name, the schemas, each
 * registered store's and callback's section. 0 or CQRS_EFORMAT + why. */
int cqrs__snapshot_fits(struct cqrs_engine *e, const cqrs__snap_image *img, char *why,
			size_t whycap);

/* Calls fn on each record of a verified fixed-size section (a store,
 * the versions, the dedup windows), in file order; stops at fn's first
 * non-zero return and returns it. */
int cqrs__snapshot_each_record(const cqrs__snap_image *img, const cqrs__snap_sec *s,
			       int (*fn)(void *arg, const uint8_t *rec), void *arg);

/* Loads a fitting image into the model (stores empty). 0 or an error. */
int cqrs__snapshot_load(struct cqrs_engine *e, const cqrs__snap_image *img);

/* ---- files (snapshot_files.c) --------------------------------------------------- */

void cqrs__snapshot_name(char *buf, size_t cap, const char *dir, uint64_t seq);
/* Seqs of dir's snapshot files, newest first (at most cap; *n all). */
int cqrs__snapshot_seqs(const char *dir, uint64_t *out, size_t cap, size_t *n);
/* Removes all but the newest keep files. */
void cqrs__snapshot_prune(const char *dir, uint32_t keep);
/* Removes .tmp-* leftovers. */
void cqrs__snapshot_remove_tmp(const char *dir);

#endif
