/*
 * shm/control.h - the engine's control segment "/cqrs.<engine>.ctl".
 *
 * The control segment is how every other process finds an engine's views:
 * the engine's state, a directory of its views (name, current generation,
 * schema hash), the command schemas clients encode commands with, and two
 * regions the engine fills: its counters (include/cqrs_counters.h) and the
 * gateway directory (cqrs_gw_dir, client/gateway_format.h).
 * Readers map it read-only.
 *
 * Layout (after the common 1024-byte block and live line, shm/segment.h):
 *
 *   imm+128  cqrs_ctl_params: max_views and each region's offset and size
 *   1088     cqrs_ctl_state line: state, nviews, ncmds, cmd_used, dir_version
 *   2048     directory: max_views entries of 128 bytes (default 64: 8 KiB)
 *            each: word 0 = the entry's seqlock, words 1..15 = cqrs_ctl_view
 *   ...      command schemas: blobs (core/schema_blob.c) back to back, each
 *            padded to 8 bytes; ncmds and cmd_used say how many are
 *            published (default region 64 KiB)
 *   ...      counters region (default 64 KiB, zeroed at creation): the
 *            engine's cqrs_counters (include/cqrs_counters.h), which carry
 *            their own magic and version
 *   ...      gateway region (default 64 KiB, zeroed at creation): the
 *            gateway directory, cqrs_gw_dir (client/gateway_format.h); same
 *            rule
 * Every region is 64-byte aligned; their offsets are a pure function of the
 * sizes (cqrs__ctl_layout), and readers recompute and compare them.
 *
 * Directory entries are written under the entry's seqlock (odd while being
 * written; shm/view_format.h describes the protocol); a slot once used keeps
 * its view's name for the segment's life, so a view's slot index is stable.
 *
 * No segment of the engine's is writable by readers: cqrs_view_wait sleeps
 * on a word of the view segment it maps read-only, and the projector wakes
 * that word after every batch (shm/view_format.h). A reader can therefore
 * neither truncate nor scribble on anything the engine maps.
 */
#ifndef CQRS_SHM_CONTROL_H
#define CQRS_SHM_CONTROL_H

#include <stdatomic.h>
#include <stdint.h>

#include "cqrs_schema.h"
#include "shm/segment.h"

#define CQRS_CTL_DEFAULT_VIEWS 64u
#define CQRS_CTL_MAX_VIEWS 1024u
#define CQRS_CTL_DIRENT_SIZE 128u
#define CQRS_CTL_DEFAULT_CMD (64u << 10)
#define CQRS_CTL_DEFAULT_COUNTERS (64u << 10)
#define CQRS_CTL_DEFAULT_GATEWAY (64u << 10)
#define CQRS_CTL_MAX_REGION (64u << 20)

enum cqrs_engine_state {
	CQRS_ENGINE_STARTING = 1,
	CQRS_ENGINE_RUNNING = 2,
	CQRS_ENGINE_STOPPED = 3,
};

enum cqrs__ctl_region { CQRS_CTL_COUNTERS = 1, CQRS_CTL_GATEWAY = 2 };

/* Immutable parameters at offset 128 of the control segment. */
typedef struct cqrs_ctl_params {
	uint32_t max_views;
	uint32_t reserved0;
	uint64_t dir_off, dir_size;
	uint64_t cmd_off, cmd_size;
	uint64_t counters_off, counters_size;
	uint64_t gateway_off, gateway_size;
	uint64_t board_slots; /* == max_views (unused: kept for the layout) */
} cqrs_ctl_params;

/* Mutable state line at 1088. */
typedef struct cqrs_ctl_state {
	_Atomic uint32_t state;       /* enum cqrs_engine_state */
	_Atomic uint32_t nviews;      /* directory slots [0, nviews) are in use */
	_Atomic uint32_t ncmds;       /* command schema blobs published */
	_Atomic uint32_t cmd_used;    /* bytes of the command region they use */
	_Atomic uint64_t dir_version; /* bumped after every directory change */
	uint8_t pad[40];
} cqrs_ctl_state;

/* One directory entry's payload (words 1..15 of its 128-byte slot). */
typedef struct cqrs_ctl_view {
	char name[CQRS_NAME_MAX];
	uint64_t generation;  /* 0: slot reserved, nothing published yet */
	uint64_t schema_hash;
	uint64_t capacity;
	uint32_t row_size;
	uint32_t flags;       /* reserved, 0 */
	uint8_t reserved[56];
} cqrs_ctl_view;

_Static_assert(sizeof(cqrs_ctl_params) <= CQRS_SEG_IMM_SIZE - 128 - 8, "params fit the block");
_Static_assert(sizeof(cqrs_ctl_state) == 64, "state is one cache line");
_Static_assert(sizeof(cqrs_ctl_view) == CQRS_CTL_DIRENT_SIZE - 8, "entry payload is 15 words");

typedef struct cqrs_ctl_config {
	unsigned mode;          /* 0: 0640 */
	uint32_t max_views;     /* 0: CQRS_CTL_DEFAULT_VIEWS */
	uint32_t cmd_size;      /* 0: default; sizes are rounded up to 64 */
	uint32_t counters_size; /* 0: default */
	uint32_t gateway_size;  /* 0: default */
} cqrs_ctl_config;

typedef struct cqrs_ctl {
	cqrs_seg seg;
	cqrs_ctl_params p;    /* validated copy */
	char engine[CQRS_NAME_MAX];
	int writer;
} cqrs_ctl;

typedef struct cqrs_ctl_info {
	char engine[CQRS_NAME_MAX];
	uint32_t state;
	uint32_t owner_pid;
	int owner_alive;
	int retired;
	uint32_t nviews, ncmds, max_views;
	uint64_t size;
	uint64_t dir_version;
} cqrs_ctl_info;

/* Canonical region layout for the given parameters (max_views and the
 * three sizes set; the rest filled). 0 or -EINVAL. */
int cqrs__ctl_layout(cqrs_ctl_params *p, uint64_t *total);

/* ---- engine side ------------------------------------------------------ */

/* Creates the control segment for engine, state STARTING.
 * An existing live engine's name gives -EEXIST, another user's -EACCES, a
 * dead engine's CQRS_ESTALE (cqrs__ctl_remove_stale clears it). Once the
 * name is ours, the private names of segments that earlier runs were
 * creating when they died are removed (cqrs__seg_sweep_unfinished). */
int cqrs__ctl_create(const char *engine, const cqrs_ctl_config *cfg, cqrs_ctl **out);

/* Removes a dead engine's control segment (marking it retired and
 * orphaned first, so that readers re-open the directory), and a
 * "/cqrs.<engine>.wait" segment if one is there (older builds made one).
 * View segments are not touched: adopt or remove them by name. */
int cqrs__ctl_remove_stale(const char *engine);

int cqrs__ctl_set_state(cqrs_ctl *c, uint32_t state);

/* Marks the engine running: everything added so far is visible already
 * (each addition is published on its own); this is the "open" sign. */
int cqrs__ctl_publish(cqrs_ctl *c);

/* Adds a directory entry for e->name (generation may be 0: reserved). The
 * slot index goes to *slot. -EEXIST if the name is there, CQRS_EFULL. */
int cqrs__ctl_add_view(cqrs_ctl *c, const cqrs_ctl_view *e, uint32_t *slot);

/* Points a view's entry at a new generation (and schema, size): readers of
 * the old one move when they see its segment retired. */
int cqrs__ctl_set_generation(cqrs_ctl *c, uint32_t slot, uint64_t generation,
			    uint64_t schema_hash, uint64_t capacity, uint32_t row_size);

/* Appends a command schema blob: CQRS_EFULL when the region is full,
 * CQRS_EFORMAT for an invalid schema, -EEXIST for a second one by that name. */
int cqrs__ctl_add_command_schema(cqrs_ctl *c, const cqrs_schema *s);

/* Engine shutdown: state STOPPED, unlinks the control segment, frees c. */
void cqrs__ctl_destroy(cqrs_ctl *c);

/* ---- both sides --------------------------------------------------------- */

/* Opens an engine's control segment read-only, if its owner is trusted
 * (cqrs__seg_owner_trusted: readers, clients, the tools that act on what
 * they read). 0, -ENOENT (no such engine), -EACCES (another user's, not
 * trusted), CQRS_EFORMAT, CQRS_ECORRUPT. */
int cqrs__ctl_open(const char *engine, cqrs_ctl **out);
/* The same whoever owns it: for listing and removing (`cqrs ls`, `cqrs rm`),
 * which show the owner instead of trusting it. */
int cqrs__ctl_open_any(const char *engine, cqrs_ctl **out);

/* Unmaps and frees (segments stay). */
void cqrs__ctl_close(cqrs_ctl *c);

int cqrs__ctl_info_get(const cqrs_ctl *c, cqrs_ctl_info *out);

/* Directory entry at slot (consistent copy; its name validated). Spins,
 * then yields, while the engine rewrites the entry. 0, CQRS_ENOTFOUND
 * (unused slot), CQRS_EWRITERDEAD (the engine died mid-update), -EAGAIN (a
 * live engine kept it busy for 2 s), CQRS_ECORRUPT. */
int cqrs__ctl_view_at(const cqrs_ctl *c, uint32_t slot, cqrs_ctl_view *out);

/* Entry named name: 0 and *slot, or CQRS_ENOTFOUND. */
int cqrs__ctl_find_view(const cqrs_ctl *c, const char *name, cqrs_ctl_view *out, uint32_t *slot);

uint32_t cqrs__ctl_view_count(const cqrs_ctl *c);
uint32_t cqrs__ctl_command_count(const cqrs_ctl *c);

/* Decodes command schema i. 0, CQRS_ENOTFOUND, CQRS_EFORMAT. */
int cqrs__ctl_command_schema(const cqrs_ctl *c, uint32_t i, cqrs_schema *out);

/* A reserved region (read-only for readers): pointer and size. */
void *cqrs__ctl_region(const cqrs_ctl *c, int region, uint64_t *size);

/* Validates a control image (fuzz target, cqrs__ctl_open). */
int cqrs__ctl_check(const void *base, size_t len, cqrs_ctl_params *out);

#endif
