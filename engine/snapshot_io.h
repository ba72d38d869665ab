/*
 * engine/snapshot_io.h - the byte stream of a snapshot section, as the
 * writer (snapshot_write.c) and the loader (snapshot_load.c) keep it; the
 * application's save and load callbacks get it as cqrs_snapshot_io.
 */
#ifndef CQRS_ENGINE_SNAPSHOT_IO_H
#define CQRS_ENGINE_SNAPSHOT_IO_H

#include <stdint.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "engine/snapshot.h"

enum { CQRS_SNAP_IO_WRITE = 1, CQRS_SNAP_IO_READ = 2 };

struct cqrs_snapshot_io {
	int mode;
	int err;                   /* the first error: every later call returns it */
	/* writing */
	int fd;
	uint8_t *buf;              /* chunk header, then up to CQRS_SNAP_CHUNK_MAX payload */
	uint32_t used;             /* payload bytes pending */
	uint32_t rec;              /* record size (1: a byte stream) */
	uint32_t limit;            /* payload bytes per chunk: a multiple of rec */
	uint32_t keylen;           /* the store being written */
	uint64_t off;              /* bytes written to the file */
	uint64_t count;            /* records in the section */
	XXH3_state_t *total;
	/* reading (a verified image) */
	const uint8_t *base;
	uint64_t pos;              /* next chunk header */
	const uint8_t *p;          /* in the current chunk */
	uint64_t left;             /* bytes left in the current chunk */
	uint64_t remaining;        /* bytes left in the section */
};

#endif
