/*
 * engine/model/dedup.h - the idempotency window: per client id, the results of
 * its last `window` accepted commands, keyed by client seq. Command thread
 * only; rebuilt from the journal on recovery (records carry client id/seq).
 */
#ifndef CQRS_ENGINE_DEDUP_H
#define CQRS_ENGINE_DEDUP_H

#include <stdint.h>

typedef struct cqrs_dedup cqrs_dedup;

int cqrs__dedup_create(uint32_t window, cqrs_dedup **out);
void cqrs__dedup_destroy(cqrs_dedup *d);

/* 0: not seen; 1: duplicate, *seq = the original's last event seq (0 if
 * the original is older than the window and its result is gone: still a
 * duplicate, never applied twice); -ENOMEM. */
int cqrs__dedup_check(cqrs_dedup *d, uint64_t client, uint64_t cseq, uint64_t *seq);

/* Remembers the result of an accepted command. 0 or -ENOMEM. */
int cqrs__dedup_record(cqrs_dedup *d, uint64_t client, uint64_t cseq, uint64_t seq);

/* ---- snapshots ---- */
uint32_t cqrs__dedup_window(const cqrs_dedup *d);
uint64_t cqrs__dedup_clients(const cqrs_dedup *d);
/* Calls fn for every client: its id, highest client seq and window slots
 * (window pairs of client seq, seq; client seq 0 = empty), until fn
 * returns non-zero (returned). */
int cqrs__dedup_foreach(cqrs_dedup *d,
			int (*fn)(void *arg, uint64_t client, uint64_t max_cseq,
				  const uint64_t *slots),
			void *arg);
/* Restores one client as cqrs__dedup_foreach gave it, from a window of
 * `window` slots (another window: each remembered command re-recorded).
 * 0 or -ENOMEM. */
int cqrs__dedup_restore(cqrs_dedup *d, uint64_t client, uint64_t max_cseq, const uint64_t *slots,
			uint32_t window);

#endif
