/*
 * engine/snapshot_format.h - the write-model snapshot file: layout, rules,
 * how it is written and how a start chooses one.
 *
 * WHAT IT HOLDS. A snapshot at seq S is the write model as after event S:
 * every store the application registered (cqrs_engine_register_store),
 * the aggregate version map, every client's idempotency window, and the
 * bytes each registered save callback wrote. A start that loads it
 * replays the journal from S+1 only.
 *
 * FILES. DATA/snapshots/snap-<S as 20 decimal digits>.cqsnap. Written as
 * DATA/snapshots/.tmp-snap-<S>-<pid>, fsynced, renamed into place only once
 * the journal's durable seq is >= S (a snapshot holding events the journal
 * may still lose would diverge from the journal after a crash), then the
 * directory is fsynced. A start removes .tmp-* files (a writer that died).
 * After each new snapshot only the newest cqrs_config.snapshot_keep stay.
 *
 * LAYOUT (little-endian, every structure 8-aligned; sizes asserted below):
 *
 *   header   112 B  magic "CQSNAP01", format version, header size, engine
 *                   name, seq S, wall clock, sections, chunk limit,
 *                   header_hash = XXH3-64 of the bytes before it
 *   section  64 B   magic, kind, name, keylen, value_size, count
 *     chunk  16 B   magic, len, XXH3-64 of the len payload bytes
 *            len B  payload
 *     ...           more chunks; a chunk of len 0 ends the section
 *   ...             nsections sections
 *   trailer  32 B   magic "CQSNEND1", file bytes, total_hash, nsections
 *
 * total_hash is XXH3-64 over every header, section and chunk header byte
 * in file order (not the payloads: each chunk's hash covers its own), so
 * the chunk hashes are checked one chunk at a time while the file is read
 * and the total proves that no chunk or section was dropped, duplicated or
 * reordered.
 *
 * SECTIONS, in this order:
 *   SCHEMAS   records of 16 B {u32 kind (1 command, 2 event), u32 type id,
 *             u64 cqrs_schema_hash}: every registered type. A start whose
 *             registered types differ in any way does not load it (decide
 *             and evolve may mean something else now).
 *   VERSIONS  records of 16 B {u64 aggregate id, u64 version}; count = them.
 *   DEDUP     value_size = 16 + 16 * window: {u64 client id, u64 highest
 *             client seq, window x {u64 client seq, u64 seq}}; a start with
 *             another dedup_window re-records each remembered command.
 *   STORE     one per registered store, name its registered name; keylen
 *             and value_size its layout, which must equal the registered
 *             store's; records of keylen + value_size bytes (key, value).
 *   USER      one per registered save/load pair; value_size holds its
 *             version; the payload is the byte stream save wrote.
 * Fixed-size sections never split a record across chunks (len is a
 * multiple of the record size); count is the number of records.
 *
 * READING. The file is mapped read-only and verified completely (every
 * bound before it is followed, every chunk hash, the total, the trailer's
 * size equal to the file's) before anything in the model is touched, so a
 * snapshot that fails verification leaves the model as it was and the
 * next older one can be tried. A start tries the newest first; one that
 * fails (checksum, truncated, another engine's, other schemas or store
 * layouts, a seq past the journal's end) is reported through the log
 * callback and the next older is tried, then a full replay if the journal
 * still starts at seq 1; otherwise the start is refused, naming the seqs
 * nothing covers.
 */
#ifndef CQRS_ENGINE_SNAPSHOT_FORMAT_H
#define CQRS_ENGINE_SNAPSHOT_FORMAT_H

#include <stdint.h>

#define CQRS_SNAP_MAGIC UINT64_C(0x3130504153514351)   /* "CQSNAP01" */
#define CQRS_SNAP_END_MAGIC UINT64_C(0x31444e454e535143) /* "CQSNEND1" */
#define CQRS_SNAP_SECTION_MAGIC 0x54434553u /* "SECT" */
#define CQRS_SNAP_CHUNK_MAGIC 0x4b4e4843u   /* "CHNK" */
#define CQRS_SNAP_VERSION 1u
#define CQRS_SNAP_CHUNK_MAX (1u << 20)      /* payload bytes per chunk */
#define CQRS_SNAP_NAME 32u
#define CQRS_SNAP_MAX_STORES 64u
#define CQRS_SNAP_MAX_USERS 16u
#define CQRS_SNAP_MAX_SECTIONS (3u + CQRS_SNAP_MAX_STORES + CQRS_SNAP_MAX_USERS)

enum cqrs__snap_kind {
	CQRS_SNAP_SCHEMAS = 1,
	CQRS_SNAP_VERSIONS = 2,
	CQRS_SNAP_DEDUP = 3,
	CQRS_SNAP_STORE = 4,
	CQRS_SNAP_USER = 5,
};

typedef struct cqrs__snap_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;      /* sizeof(cqrs__snap_header) */
	char engine[CQRS_SNAP_NAME]; /* NUL-padded */
	uint64_t seq;
	int64_t created_ns;        /* wall clock */
	uint32_t nsections;
	uint32_t chunk_max;        /* CQRS_SNAP_CHUNK_MAX when written */
	uint64_t reserved[4];
	uint64_t header_hash;      /* XXH3-64 of the bytes before this field */
} cqrs__snap_header;

typedef struct cqrs__snap_section {
	uint32_t magic;
	uint32_t kind;             /* enum cqrs__snap_kind */
	char name[CQRS_SNAP_NAME]; /* stores and user sections; NUL-padded */
	uint32_t keylen;           /* STORE: its key length; else 0 */
	uint32_t value_size;       /* record size less keylen; USER: its version */
	uint64_t count;            /* records (USER: 0, the chunks end it) */
	uint64_t reserved;
} cqrs__snap_section;

typedef struct cqrs__snap_chunk {
	uint32_t magic;
	uint32_t len;              /* payload bytes, 0 ends the section */
	uint64_t hash;             /* XXH3-64 of the payload */
} cqrs__snap_chunk;

typedef struct cqrs__snap_trailer {
	uint64_t magic;
	uint64_t file_bytes;       /* the whole file, trailer included */
	uint64_t total_hash;
	uint64_t nsections;
} cqrs__snap_trailer;

typedef struct cqrs__snap_schema_rec {
	uint32_t kind;             /* 1 command, 2 event */
	uint32_t type;
	uint64_t hash;
} cqrs__snap_schema_rec;

_Static_assert(sizeof(cqrs__snap_header) == 112, "snapshot header size");
_Static_assert(sizeof(cqrs__snap_section) == 64, "snapshot section header size");
_Static_assert(sizeof(cqrs__snap_chunk) == 16, "snapshot chunk header size");
_Static_assert(sizeof(cqrs__snap_trailer) == 32, "snapshot trailer size");
_Static_assert(sizeof(cqrs__snap_schema_rec) == 16, "snapshot schema record size");

#endif
