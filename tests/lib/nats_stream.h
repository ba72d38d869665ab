/*
 * tests/lib/nats_stream.h - reading an engine's replication stream back
 * and comparing it with its journal, for tests.
 */
#ifndef CQRS_TESTS_NATS_STREAM_H
#define CQRS_TESTS_NATS_STREAM_H

#include <stdint.h>

typedef struct tn_stream_stats {
	uint64_t last_seq;       /* last journal seq in the stream */
	uint64_t messages;       /* journal messages */
	uint64_t schemas;        /* schema messages */
	uint64_t stream_last;    /* the stream's last sequence */
} tn_stream_stats;

/* Reads stream CQRS_<engine> from its first message and checks, message
 * by message, that journal messages hold records with valid checksums
 * whose seqs run gapless from 1, byte-identical to the journal in
 * journal_dir, each message's Cqrs-First/Cqrs-Last naming its first and
 * last, and that schema messages decode (a segment header with the schema
 * of event type 1). Returns 0 (and *out), or -1 with why on stderr. */
int tn_stream_matches_journal(const char *urls, const char *engine, const char *journal_dir,
			      tn_stream_stats *out);

/* The stream's leader node name ("n0".."n2"), or -1. */
int tn_stream_leader(const char *urls, const char *engine);

#endif
