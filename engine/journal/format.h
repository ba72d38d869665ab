/*
 * engine/journal/format.h - on-disk layout of journal segments (the essay
 * with the byte layout, commit rule and recovery algorithm is at the top of
 * format.c), and the validation/scan helpers shared by the writer's
 * recovery, the iterator, the CLI and the fuzz target.
 */
#ifndef CQRS_ENGINE_JOURNAL_FORMAT_H
#define CQRS_ENGINE_JOURNAL_FORMAT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/journal/journal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the journal format is little-endian; big-endian hosts are not supported"
#endif

#define JSEG_MAGIC UINT64_C(0x4c4e524a53525143) /* "CQRSJRNL" */
#define JSEG_VERSION 2u                 /* written; 1 (no predecessor link) still read */
#define JSEG_VERSION_MIN 1u
#define JSEG_FIXED 128u                 /* fixed part of the header */
#define JSEG_ALIGN 4096u                /* header size is a multiple of this */
#define JSEG_MAX_HEADER (4u << 20)      /* sanity bound on header size */
#define JSEG_MAX_TYPES CQRS_JOURNAL_MAX_TYPES /* event type ids per segment */
#define JSEG_MIN_SIZE (16u << 10)       /* smallest segment the writer makes */
#define JSEG_DEFAULT_SIZE (64u << 20)
#define JSEG_NAME_LEN 24                /* "%020llu.seg" */
#define JSEG_SUFFIX ".seg"
#define JSEG_SPARE "next.prealloc"      /* the preallocated next segment */
#define JSEG_LOCK "LOCK"
#define JMAN_NAME "MANIFEST"           /* the journal's extent (manifest.c) */
#define JMAN_TMP "MANIFEST.tmp"        /* written, fsynced, renamed to JMAN_NAME */
#define JREC_ALIGN 8u
#define JREC_MAX_PAYLOAD CQRS_RECORD_MAX

/* The fixed part of a segment header. The schema area follows it at byte
 * 128: for each type id t < ntypes, a u32 blob length (0 = no schema), a
 * u32 zero, the cqrs_schema_encode blob, zero padding to 8. Bytes from the
 * end of the schema area to header_size are zero. */
typedef struct jseg_header {
	uint64_t magic;          /*   0 JSEG_MAGIC */
	uint32_t version;        /*   8 JSEG_VERSION */
	uint32_t header_size;    /*  12 bytes before the first record (x 4096) */
	uint64_t first_seq;      /*  16 seq of the segment's first record */
	int64_t ctime_ns;        /*  24 creation time */
	uint64_t segment_size;   /*  32 bytes allocated at creation */
	uint32_t ntypes;         /*  40 type ids described by the schema area */
	uint32_t schema_bytes;   /*  44 bytes of the schema area */
	uint32_t record_header;  /*  48 CQRS_JREC_HEADER */
	uint32_t flags;          /*  52 0 */
	char engine[CQRS_NAME_MAX]; /* 56 NUL padded */
	uint64_t prev_first_seq; /*  88 v2: first seq of the previous segment
				    (0: the journal's first); v1: zero, unknown */
	uint8_t reserved[24];    /*  96 zero */
	uint64_t checksum;       /* 120 XXH3-64 of [0,120) ++ schema area */
} jseg_header;

static_assert(sizeof(jseg_header) == JSEG_FIXED, "segment header fixed part is 128 bytes");
static_assert(offsetof(jseg_header, engine) == 56, "engine name at 56");
static_assert(offsetof(jseg_header, checksum) == 120, "header checksum at 120");
static_assert(offsetof(jseg_header, prev_first_seq) == 88, "predecessor link at 88");

/* Whether h names its predecessor (format version 2 on). */
static inline bool jseg_has_prev(const jseg_header *h) { return h->version >= 2; }
static_assert(sizeof(cqrs_jrec) == CQRS_JREC_HEADER, "record header is 72 bytes");
static_assert(offsetof(cqrs_jrec, seq) == 16 && offsetof(cqrs_jrec, synced_seq) == 64,
	       "record header layout");

static inline uint64_t jalign8(uint64_t n) { return (n + 7u) & ~(uint64_t)7u; }

static inline uint64_t jrec_span_for(uint32_t size)
{
	return cqrs__jrec_span_for(size);
}

/* XXH3-64 of a record's bytes [8, 72 + size). */
uint64_t cqrs__jrec_checksum(const cqrs_jrec *r);

/* 1 if a record with a valid checksum lies at off in [base, base+len):
 * header and payload inside the bounds, size <= JREC_MAX_PAYLOAD, seq != 0.
 * Never reads outside the bounds. */
int cqrs__jrec_valid(const uint8_t *base, size_t len, size_t off);

/* Bytes the encoded header for these schemas takes (a multiple of
 * JSEG_ALIGN), or 0 if a schema is invalid or it is too large. */
size_t cqrs__jseg_header_size(const cqrs_schema *const *schemas, uint32_t ntypes);

/* Encodes a version JSEG_VERSION segment header into buf (cap >=
 * cqrs__jseg_header_size, zero-filled by the caller); prev_first_seq is the
 * previous segment's first seq (0 for the journal's first). Returns the
 * header size or a negative code. */
int cqrs__jseg_header_encode(void *buf, size_t cap, const char *engine, uint64_t first_seq,
			     uint64_t prev_first_seq, int64_t ctime_ns, uint64_t segment_size,
			     const cqrs_schema *const *schemas, uint32_t ntypes);

/* Validates the header at the start of a segment image of len bytes:
 * magic, version (1 or 2), sizes and bounds, checksum, and that a
 * predecessor link lies below first_seq. Fills *h (may be NULL).
 * Returns 0, CQRS_EFORMAT (not a segment, other version) or CQRS_ECORRUPT
 * (checksum/bounds). Never reads outside [img, img+len). */
int cqrs__jseg_header_check(const void *img, size_t len, jseg_header *h);

/* Decodes the schema of type t from a checked header image into *out.
 * Returns 1 (decoded), 0 (no schema for t), CQRS_EFORMAT. */
int cqrs__jseg_schema(const void *img, size_t len, const jseg_header *h, uint32_t t,
		      cqrs_schema *out);

/* ---- scanning ----------------------------------------------------------- */

/* One complete command group validated at off: records [off, end), seqs
 * [seq, seq + count). Returns 1, or 0 when no complete, valid, seq-chained
 * group starts at off (then *bad_off / *bad_seq say where the chain broke
 * and *stale says whether it broke on a checksum-valid record with the
 * wrong seq). */
typedef struct jscan_group {
	size_t end;
	uint64_t count;
	size_t bad_off;
	uint64_t bad_seq;      /* seq found at bad_off when stale */
	bool stale;
} jscan_group;

int cqrs__jscan_group(const uint8_t *base, size_t len, size_t off, uint64_t seq,
		      jscan_group *g);

/* End of the last non-zero byte in [off, len), or off if all zero. Reads
 * 8 bytes at a time from the end (the writer's zero tail is long). */
size_t cqrs__jnonzero_end(const uint8_t *base, size_t len, size_t off);

/* Classifies the bytes [off, len) after the last complete group, where the
 * record with seq `expect` should be. */
enum jtail_kind { JTAIL_CLEAN = 0, JTAIL_TORN = 1, JTAIL_CORRUPT = 2 };

typedef struct jtail {
	enum jtail_kind kind;
	size_t nz_end;          /* end of the last non-zero byte (TORN: cut [off, nz_end)) */
	size_t bad_off;         /* CORRUPT: offset named in the message */
	uint64_t bad_seq;       /* CORRUPT: seq named in the message */
	char why[256];          /* CORRUPT: what is wrong */
} jtail;

void cqrs__jscan_tail(const uint8_t *base, size_t len, size_t off, uint64_t expect, jtail *t);

/* Scans a whole segment image: complete groups from data_off, then the
 * tail. A checksum-valid record with the wrong seq on the chain is
 * reported as tail.kind == JTAIL_CORRUPT (seq gap or stale record). */
typedef struct jseg_scan {
	size_t end;             /* end of the last complete group */
	uint64_t next_seq;      /* seq after it */
	uint64_t records;
	jtail tail;
} jseg_scan;

void cqrs__jseg_scan(const uint8_t *img, size_t len, size_t data_off, uint64_t first_seq,
		     jseg_scan *s);

/* ---- the manifest (manifest.c; the essay in format.c) ------------------ */

#define JMAN_MAGIC UINT64_C(0x4e414d4a53525143) /* "CQRSJMAN" */
#define JMAN_VERSION 1u
#define JMAN_SIZE 128u

/* Why the manifest was written (informational). */
enum jman_why {
	JMAN_CREATE = 1, JMAN_ROLL = 2, JMAN_CLOSE = 3, JMAN_OPEN = 4, JMAN_REPAIR = 5,
	JMAN_SYNC = 6,           /* the interval thread, after an fdatasync */
	JMAN_COLLECT = 7         /* retention collected a prefix (retention.c) */
};
#define JMAN_SYNC_EVERY_NS 1000000000ull /* interval mode: manifest refresh period */

typedef struct jmanifest {
	uint64_t magic;          /*   0 JMAN_MAGIC */
	uint32_t version;        /*   8 JMAN_VERSION */
	uint32_t size;           /*  12 JMAN_SIZE */
	char engine[CQRS_NAME_MAX]; /* 16 NUL padded */
	uint64_t first_seq;      /*  48 first seq of the journal's first segment */
	uint64_t last_segment;   /*  56 first seq of the newest segment when written */
	uint64_t durable_seq;    /*  64 every seq <= this is in the journal */
	int64_t written_ns;      /*  72 wall clock when written */
	uint32_t durability;     /*  80 the writer's mode (enum cqrs_durability_mode) */
	uint32_t why;            /*  84 enum jman_why */
	uint64_t collected_seq;  /*  88 retention collected every segment
				    before this seq, on purpose (then equal
				    to first_seq; 0: nothing was collected) */
	uint8_t reserved[24];    /*  96 zero */
	uint64_t checksum;       /* 120 XXH3-64 of [0, 120) */
} jmanifest;

static_assert(sizeof(jmanifest) == JMAN_SIZE, "manifest is 128 bytes");
static_assert(offsetof(jmanifest, checksum) == 120, "manifest checksum at 120");
static_assert(offsetof(jmanifest, collected_seq) == 88, "collected prefix at 88");

/* Index of m's journal's first segment in the ascending list segs[0..n):
 * segments below a collected prefix (m->collected_seq) are leftovers of
 * a collection that was interrupted before it removed them; they are not
 * part of the journal. m may be NULL (no manifest: 0). */
int cqrs__jman_live_from(const jmanifest *m, const uint64_t *segs, int n);

/* Whether segment first_seq may name a predecessor that is not in the
 * directory: it is the first segment after a prefix m says was collected. */
static inline bool jman_prefix_collected(const jmanifest *m, uint64_t first_seq)
{
	return m && m->collected_seq != 0 && first_seq == m->first_seq;
}

/* Validates a manifest image of len bytes: size, magic, version, checksum,
 * engine name, seqs in order. Returns 0, CQRS_EFORMAT or CQRS_ECORRUPT. */
int cqrs__jman_check(const void *img, size_t len, jmanifest *out);

/* Reads and checks DIR/MANIFEST: 0, CQRS_ENOTFOUND (no manifest), or the
 * error (the message names the file). */
int cqrs__jman_read(int dirfd, jmanifest *out);

/* Fills in magic, version, size, time and checksum of *m and replaces
 * DIR/MANIFEST atomically: write MANIFEST.tmp, fdatasync, rename, fsync
 * the directory. Returns 0 or -errno (the old manifest then still
 * stands, or the new one, never a torn one). */
int cqrs__jman_write(int dirfd, jmanifest *m);

/* What a journal directory holds, for the checks that need no record
 * scan: the segments, each one's header, the manifest. */
typedef struct jextent {
	uint64_t *segs;          /* first seqs, ascending (malloc'ed): the
				    journal's, from its first segment on */
	jseg_header *hdr;        /* their checked headers (malloc'ed) */
	int n;
	bool have_man;
	bool any_v2;             /* a segment names its predecessor */
	int collected_left;      /* segments below the manifest's collected
				    prefix still in the directory (left out
				    of segs: retention removes them) */
	jmanifest man;
} jextent;

/* Lists dir's segments, maps each to check its header (and the engine,
 * when engine is not NULL; else the first segment's engine is required of
 * all) and reads the manifest. Errors name the file. */
int cqrs__jextent_load(int dirfd, const char *dir, const char *engine, jextent *x);
void cqrs__jextent_free(jextent *x);

/* How the manifest stands after cqrs__jextent_check. */
enum jman_state {
	JMAN_OK = 0,             /* present and consistent with the segments */
	JMAN_NEW = 1,            /* no manifest, no segment: a new journal */
	JMAN_LEGACY = 2,         /* no manifest, version 1 segments only: built
				    by a writer from before manifests */
	JMAN_MISSING = 3         /* no manifest beside version 2 segments */
};

/* The checks that need no record scan: every segment's predecessor link
 * names the segment before it (the first's names none), and against the
 * manifest: the first segment is the journal's first, the newest segment
 * it names exists. Returns 0 with *state, or CQRS_ECORRUPT / CQRS_EFORMAT
 * with a message naming the missing or mismatched file. */
int cqrs__jextent_check(const jextent *x, const char *dir, enum jman_state *state);

/* After the log was scanned to its end (next_seq, at segment file `seg`,
 * byte offset off): CQRS_ECORRUPT if the manifest proves a seq at or past
 * next_seq was in the journal. */
int cqrs__jextent_check_end(const jextent *x, const char *dir, uint64_t next_seq, const char *seg,
			    uint64_t off);

/* A segment file mapped read-only with its header checked (reader.c). */
typedef struct jseg_map {
	int fd;
	const uint8_t *img;
	size_t len;             /* file size (and mapping length) */
	size_t scan_len;        /* end of the last data extent: beyond it the
				   filesystem holds only holes or unwritten
				   (preallocated, never written) blocks */
	jseg_header h;
	char name[32];
} jseg_map;

/* Opens (O_RDWR if writable) and maps segment first_seq of dirfd, checks
 * its header, that it matches the name and, if engine is not NULL, the
 * engine. Errors name the segment in cqrs_last_error(). */
int cqrs__jseg_map(int dirfd, uint64_t first_seq, bool writable, const char *engine, jseg_map *m);
void cqrs__jseg_unmap(jseg_map *m);

/* Parses a segment file name; 1 and *first_seq if it is one, else 0. */
int cqrs__jseg_parse_name(const char *name, uint64_t *first_seq);

/* cqrs__jseg_name and cqrs__jseg_list: journal.h (the CLI uses them). */

#endif /* CQRS_ENGINE_JOURNAL_FORMAT_H */
