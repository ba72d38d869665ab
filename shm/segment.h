/*
 * shm/segment.h - the lifecycle of one POSIX shared-memory segment: names,
 * create, open read-only, validate, owner liveness, stale removal.
 *
 * Every cqrs segment (control, waiter board, view) starts with the same
 * 1024-byte immutable block and one mutable "live" cache line:
 *
 *   off   size  field
 *   0     128   cqrs_seg_hdr: magic "CQRSSHM1", format, kind, total size,
 *               immutable size (1024), creator uid/pid/start time, creation
 *               time, engine and object names, generation
 *   128   888   kind parameters (shm/control.h, shm/view_format.h)
 *   1016  8     XXH3-64 of bytes [0, 1016): the immutable block's checksum
 *   1024  64    cqrs_seg_live: owner (pid | start ticks << 22 of the process
 *               that writes the segment now), flags (RETIRED, CLEAN), epoch
 *   1088  960   the kind's mutable lines (cursors, counters), zero at start
 *   2048  ...   the kind's regions, each 64-byte aligned, sized by the
 *               parameters; total size a multiple of 4096
 *
 * Creation happens under a private name, so a name that others open always
 * holds a finished segment, whenever its creator was killed: the segment
 * is made as "<name>~<owner word in 16 hex digits>.<count>" with
 * shm_open(O_CREAT|O_EXCL), fchmod(mode) (so the umask never matters),
 * posix_fallocate (no SIGBUS later on a full /dev/shm), mmap, owner word,
 * parameters; cqrs__seg_seal() then writes the checksum, the magic last
 * with release order, and links the private name to the real one
 * (link(2) in /dev/shm: atomic, and it fails if the name exists), then
 * removes the private name. A creator killed before that leaves only a
 * private name whose owner is dead: cqrs__seg_sweep_unfinished removes it
 * (the engine does at start). A real name that holds nothing at all (size
 * 0, or an all-zero header: what an interrupted creation of older builds
 * left) and belongs to this user counts as stale, not foreign.
 *
 * Opening: shm_open(O_RDONLY) and mmap(PROT_READ): readers can never write.
 * fstat gives the real size; nothing is read past it, and the header's total
 * size must equal it, so a truncated segment is refused (CQRS_ECORRUPT)
 * before a single offset is followed. The immutable block is copied into the
 * handle and validated there: later changes in the mapping cannot move an
 * offset a reader already checked.
 *
 * Owners: the live line's owner word packs the writer's pid (< 2^22, Linux's
 * PID_MAX_LIMIT) with its start time from /proc/<pid>/stat field 22 (clock
 * ticks since boot, < 2^42). The owner is alive when /proc/<pid>/stat exists,
 * is not a zombie, and shows the same start time (pid reuse is caught).
 */
#ifndef CQRS_SHM_SEGMENT_H
#define CQRS_SHM_SEGMENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cqrs_schema.h"

#define CQRS_SHM_MAGIC UINT64_C(0x314d485353525143) /* "CQRSSHM1" little-endian */
#define CQRS_SHM_FORMAT 2u /* changes whenever any segment layout changes */

#define CQRS_SEG_IMM_SIZE 1024u  /* immutable block, checksum in its last 8 bytes */
#define CQRS_SEG_LIVE_OFF 1024u  /* cqrs_seg_live */
#define CQRS_SEG_LINES_OFF 1088u /* the kind's mutable lines */
#define CQRS_SEG_REGION_OFF 2048u
#define CQRS_SEG_NAME_MAX 128u   /* "/cqrs.<engine>.v.<view>.<gen>" and NUL */
#define CQRS_SEG_TMP_MAX (CQRS_SEG_NAME_MAX + 29u) /* ... and "~<16 hex>.<count>" */
#define CQRS_SEG_MAX_SIZE (UINT64_C(1) << 46)
#define CQRS_SEG_DEFAULT_MODE 0640u

enum cqrs_seg_kind { CQRS_SEG_CONTROL = 1, CQRS_SEG_BOARD = 2, CQRS_SEG_VIEW = 3 };

/* cqrs_seg_live.flags */
#define CQRS_SEG_RETIRED 1u  /* replaced (newer generation, or its engine restarted) */
#define CQRS_SEG_CLEAN 2u    /* view: shut down cleanly, resumable without rebuild */
#define CQRS_SEG_ORPHANED 4u /* with RETIRED: its writer died before retiring it, so
				what it shows may be ahead of what the journal kept;
				readers move on and never read it again */

typedef struct cqrs_seg_hdr {
	uint64_t magic;
	uint32_t format;
	uint32_t kind;
	uint64_t total_size;
	uint32_t imm_size;      /* CQRS_SEG_IMM_SIZE */
	uint32_t creator_uid;
	uint32_t creator_pid;
	uint32_t reserved0;
	uint64_t creator_start; /* clock ticks since boot */
	int64_t created_ns;     /* wall clock */
	char engine[CQRS_NAME_MAX];
	char object[CQRS_NAME_MAX]; /* view name; "" for control and board */
	uint64_t generation;        /* view generation; 0 otherwise */
} cqrs_seg_hdr;

typedef struct cqrs_seg_live {
	_Atomic uint64_t owner; /* pid | start_ticks << 22; 0: none */
	_Atomic uint32_t flags; /* CQRS_SEG_RETIRED | CQRS_SEG_CLEAN */
	_Atomic uint32_t epoch; /* view: primary index epoch (shm/view_format.h) */
	_Atomic uint64_t origin; /* view: which journal its writer applies (a hash of
				    the journal directory; 0: none), set before the
				    segment is published; only the engine reads it */
	uint8_t pad[40];
} cqrs_seg_live;

_Static_assert(sizeof(cqrs_seg_hdr) == 128, "segment header is 128 bytes");
_Static_assert(sizeof(cqrs_seg_live) == 64, "live line is one cache line");

/* A mapped segment. imm holds the validated copy of the immutable block. */
typedef struct cqrs_seg {
	uint8_t *base;
	size_t size;
	int writable;
	uid_t uid; /* the file's owner */
	char name[CQRS_SEG_NAME_MAX];
	char tmp[CQRS_SEG_TMP_MAX]; /* private name until sealed; "" after */
	_Alignas(8) uint8_t imm[CQRS_SEG_IMM_SIZE];
} cqrs_seg;

static inline const cqrs_seg_hdr *cqrs__seg_header(const cqrs_seg *s)
{
	return (const cqrs_seg_hdr *)(const void *)s->imm;
}

static inline cqrs_seg_live *cqrs__seg_live_line(const cqrs_seg *s)
{
	return (cqrs_seg_live *)(void *)(s->base + CQRS_SEG_LIVE_OFF);
}

/* ---- names ---------------------------------------------------------------- */

/* "/cqrs.<engine>.ctl", "/cqrs.<engine>.wait", "/cqrs.<engine>.v.<view>.<gen>".
 * Names are validated (1..31 bytes of [A-Za-z0-9_]). 0, -EINVAL. */
int cqrs__seg_name_ctl(char *out, size_t cap, const char *engine);
int cqrs__seg_name_board(char *out, size_t cap, const char *engine);
int cqrs__seg_name_view(char *out, size_t cap, const char *engine, const char *view, uint64_t gen);

/* The inverse for what follows "cqrs.<engine>.v." in a view segment's
 * name: "<view>.<generation>" into view (CQRS_NAME_MAX bytes) and *gen.
 * 1 when it is one (a valid view name, a generation > 0), else 0. */
int cqrs__seg_parse_view_name(const char *rest, char *view, uint64_t *gen);

/* Whether the view segment `name` ("/cqrs...") was shut down cleanly and
 * not retired since (a snapshot of its live flags; 0 when it cannot be
 * opened). */
int cqrs__seg_view_is_clean(const char *name);

/* ---- lifecycle ------------------------------------------------------------ */

/* Creates and maps a segment for name read-write with `size` zero bytes
 * (rounded up to 4096), permission bits `mode` (0: 0640) whatever the
 * umask, and sets the owner word to this process. It stays under its
 * private name until cqrs__seg_seal. When name exists, nothing is changed
 * and the result says why: -EACCES (another user's), -EEXIST (a live
 * process owns it), CQRS_ESTALE (its owner is dead, or it is an empty
 * leftover of this user: see cqrs__seg_remove_stale), CQRS_EFORMAT (not a
 * cqrs segment). Else 0 or -errno. */
int cqrs__seg_create(cqrs_seg *s, const char *name, uint64_t size, unsigned mode);

/* Fills the common header of a created segment (before the kind writes its
 * parameters into base + 128). */
void cqrs__seg_init_header(cqrs_seg *s, uint32_t kind, const char *engine, const char *object,
			  uint64_t generation);

/* Computes the checksum and publishes the magic (release); copies the
 * immutable block into s->imm; gives a created segment its real name.
 * 0, or -EEXIST when another process created the name meanwhile (the
 * segment is then nameless: close it), or -errno. */
int cqrs__seg_seal(cqrs_seg *s);

/* Recomputes the checksum after the owner rewrote a parameter (adoption). */
void cqrs__seg_reseal(cqrs_seg *s);

/* Whether segments owned by uid may be taken for an engine's: this
 * process's own uid, root, or a uid listed in CQRS_TRUST_UIDS (decimal,
 * separated by commas). /dev/shm is writable by every user, so a name alone
 * proves nothing: any user can create "/cqrs.NAME.ctl" while the engine is
 * down, and readers and clients must not take that user's segments and
 * socket for the engine's. */
bool cqrs__seg_owner_trusted(uint32_t uid);

/* Opens name and validates its common header for `kind` (see the overview).
 * writable: O_RDWR + PROT_WRITE (the owner adopting a segment, or a waiter
 * board); else O_RDONLY + PROT_READ. 0, -errno (-ENOENT: no such segment),
 * CQRS_EFORMAT or CQRS_ECORRUPT. */
int cqrs__seg_open(cqrs_seg *s, const char *name, uint32_t kind, int writable);

/* Validates the common header of an image of len bytes for kind and copies
 * its immutable block to imm_out (1024 bytes). Reads nothing outside
 * [base, base+len). Used by cqrs__seg_open and the fuzz target. */
int cqrs__seg_check(const void *base, size_t len, uint32_t kind, void *imm_out);

/* Unmaps (the name stays; an unsealed segment's private name is removed).
 * Safe on a zeroed or closed handle. */
void cqrs__seg_close(cqrs_seg *s);

/* Writers: maps the pages of [off, off + len) writable now (they exist
 * already, from posix_fallocate; a page not yet used is zeroed now), so the
 * first stores to them are not page faults. The range is clipped to the
 * segment. A hint: kernels before 5.14 refuse it, and the pages then fault
 * in on first use. */
void cqrs__seg_prefault(cqrs_seg *s, uint64_t off, uint64_t len);

/* shm_unlink; 0 or -errno. */
int cqrs__seg_unlink(const char *name);

/* Removes a segment whose owner is dead, after marking it RETIRED and
 * ORPHANED so that readers still mapping it move on and never read it
 * again. 0, -ENOENT, -EEXIST (owner alive), -EACCES (another user's),
 * CQRS_EFORMAT. */
int cqrs__seg_remove_stale(const char *name);

/* As cqrs__seg_remove_stale, and also when this process owns it: for a
 * caller that knows it no longer uses the segment (an engine's start
 * removing old generations, which an earlier engine of this process may
 * have left). */
int cqrs__seg_remove_unused(const char *name);

/* Marks name RETIRED | ORPHANED (when it holds a cqrs segment) and unlinks
 * it, whoever owns it: for `cqrs rm`, once it knows the engine is down. */
int cqrs__seg_retire_unlink(const char *name);

/* Removes the private names of engine's segments whose creator died
 * before sealing them (see the overview). Returns how many. Cold. */
int cqrs__seg_sweep_unfinished(const char *engine);

/* Whether name (as in /dev/shm, without the leading '/') is the private
 * name of an unsealed segment; *owner gets its creator's owner word. */
int cqrs__seg_is_unfinished_name(const char *name, uint64_t *owner);

/* ---- owners --------------------------------------------------------------- */

/* This process's owner word. */
uint64_t cqrs__seg_self_owner(void);

/* 1 when the process named by an owner word is alive, 0 when not (or when
 * the word is 0). Reads /proc: cold paths only. */
int cqrs__seg_owner_alive(uint64_t owner);

static inline uint32_t cqrs__seg_owner_pid(uint64_t owner)
{
	return (uint32_t)(owner & ((UINT64_C(1) << 22) - 1));
}

/* Start time of pid from /proc/<pid>/stat (field 22); *zombie set when the
 * state is Z or X. 0 or -errno. */
int cqrs__seg_proc_start(uint32_t pid, uint64_t *ticks, int *zombie);

static inline uint64_t cqrs__align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

#endif
