/*
 * engine/deadletter.h - durable dead letters: events a projection's apply
 * refused, recorded with fdatasync before the projection skips them or
 * halts, listed by `cqrs deadletters`, and marked resolved when a retry
 * succeeds.
 *
 * File DATA_DIR/deadletters.log, an append-only sequence of fixed 256-byte
 * records (no file header: each record carries magic and version):
 *   off size
 *   0   4   magic 0x4c445143 ("CQDL")
 *   4   2   version 1
 *   6   1   kind: 1 dead letter, 2 resolved (a retry succeeded)
 *   7   1   reserved
 *   8   8   event seq
 *   16  8   time (wall ns)
 *   24  4   error code (int32)
 *   28  4   reserved
 *   32  32  projection name (NUL padded)
 *   64  184 reason (NUL padded)
 *   248 8   XXH3-64 of bytes [0, 248)
 * A crash can leave a partial last record; readers stop at the first
 * record that fails its checks and report how many bytes they skipped.
 */
#ifndef CQRS_ENGINE_DEADLETTER_H
#define CQRS_ENGINE_DEADLETTER_H

#include <stdint.h>

#define CQRS_DL_RECORD 256
#define CQRS_DL_DEAD 1
#define CQRS_DL_RESOLVED 2

typedef struct cqrs_deadletter {
	uint64_t seq;
	int64_t time_ns;
	int32_t code;
	uint8_t kind;
	char projection[32];
	char reason[184];
} cqrs_deadletter;

typedef struct cqrs_dl_log cqrs_dl_log;

/* Opens (creating) DIR/deadletters.log for appending. */
int cqrs__dl_open(const char *dir, cqrs_dl_log **out);
/* Appends one record and fdatasyncs it. 0 or -errno. */
int cqrs__dl_append(cqrs_dl_log *l, const cqrs_deadletter *d);
void cqrs__dl_close(cqrs_dl_log *l);

/* Calls fn for every valid record of DIR/deadletters.log in order.
 * Returns the number of records, -errno, or CQRS_ECORRUPT when a record
 * before the last fails its checks. *torn_bytes (may be NULL) receives the
 * size of an incomplete tail. */
int cqrs__dl_read(const char *dir, void (*fn)(void *arg, const cqrs_deadletter *d), void *arg,
		 uint64_t *torn_bytes);

#endif
