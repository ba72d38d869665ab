/*
 * engine/replication/follow.h - reading the journal's durable records as
 * the writer appends them, for the replicator thread.
 *
 * The journal's iterator (engine/journal/journal.h) reads a journal as it
 * stood when it was opened; the follower keeps the current segment mapped
 * (MAP_SHARED, so the writer's later records appear in it) and reads only
 * records the caller says are durable (seq <= limit), which are complete:
 * it never looks at bytes the writer may be writing. Every record's
 * checksum and seq are checked; the record after a segment's last is in
 * the segment named by its seq (the writer's roll). Read-only, never
 * blocks the writer, costs no syscall per record (one mmap per segment).
 */
#ifndef CQRS_ENGINE_REPLICATION_FOLLOW_H
#define CQRS_ENGINE_REPLICATION_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/journal/format.h"
#include "engine/journal/journal.h"

typedef struct repl_follow {
	int dirfd;
	jseg_map m;
	bool mapped;
	bool roll;              /* the next record starts the next segment */
	bool entered;           /* a segment was entered since the last call to
				   cqrs__follow_entered */
	size_t off;             /* the next record's offset in m */
	uint64_t next;          /* its seq */
	char engine[CQRS_NAME_MAX];
} repl_follow;

/* Opens the journal folder dir of engine. 0 or -errno. */
int cqrs__follow_open(repl_follow *f, const char *dir, const char *engine);

/* Positions at seq (walks the segment that holds it from its start).
 * 0; CQRS_ENOTFOUND when no segment holds seq (removed, or not written);
 * CQRS_ECORRUPT. */
int cqrs__follow_seek(repl_follow *f, uint64_t seq);

/* The next record, when its seq <= limit: 1 with *rec (valid until the
 * follower moves to another segment: cqrs__follow_entered says when); 0
 * when the next seq is above limit; 2 when the next record starts another
 * segment (the caller ends its message there, records still mapped, and
 * calls again, which enters it); CQRS_ECORRUPT (the record is not where
 * the journal says it is: cqrs_last_error). A caller may step back to a
 * position it saved (off, next) within the same segment. */
int cqrs__follow_next(repl_follow *f, uint64_t limit, const cqrs_jrec **rec);

/* Whether a segment was entered since the last call (its header is the
 * mapping's first m.h.header_size bytes); clears the flag. */
bool cqrs__follow_entered(repl_follow *f);

void cqrs__follow_close(repl_follow *f);

#endif
