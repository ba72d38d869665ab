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

#endif
