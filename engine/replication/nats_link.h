/*
 * engine/replication/nats_link.h - the replicator's side of NATS
 * JetStream (libnats): one connection, the stream, its position, one
 * publish at a time. Only the replicator thread calls these.
 *
 * The stream: CQRS_<engine>, file storage, subjects cqrs.<engine>.journal
 * (the journal's batches) and cqrs.<engine>.schema (segment headers).
 * Message layout: engine/replication/replicator.c.
 */
#ifndef CQRS_ENGINE_REPLICATION_NATS_LINK_H
#define CQRS_ENGINE_REPLICATION_NATS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CQRS_REPL_MAX_URLS 16

struct __natsConnection;
struct __jsCtx;

typedef struct nats_link {
	struct __natsConnection *nc;
	struct __jsCtx *js;
	char stream[64];
	char subj[96];          /* cqrs.<engine>.journal */
	char schema_subj[96];   /* cqrs.<engine>.schema */
	char engine[32];
	const char *urls[CQRS_REPL_MAX_URLS];
	int nurls;
	char *url_buf;          /* the config's copy the urls point into */
	uint32_t replicas;
	bool no_create;         /* a reader's: a missing stream is an error */
	int64_t wait_ms;        /* publish and API requests */
	uint64_t stream_last;   /* the stream's last sequence, as last seen */
	char err[160];          /* why the last call failed */
} nats_link;

/* What the stream holds of this engine's journal (cqrs__link_position). */
typedef struct link_position {
	uint64_t stream_last;   /* the stream's last message sequence */
	uint64_t journal_last;  /* last journal seq in it (0: none) */
} link_position;

/* Sets up names and the server list (urls: comma-separated, copied). No
 * network. 0, -EINVAL (no URL, too many), -ENOMEM. */
int cqrs__link_init(nats_link *l, const char *engine, const char *urls, uint32_t replicas,
		    int64_t wait_ms);

/* Connects (once; libnats reconnects by itself afterwards) and makes sure
 * the stream exists, creating it when missing. 0 or -ENOTCONN / -EIO
 * with l->err saying why. */
int cqrs__link_connect(nats_link *l);

/* Reads the stream's position back (its last sequence, the last journal
 * message's last seq). 0 or -EIO (l->err). */
int cqrs__link_position(nats_link *l, link_position *out);

/* Publishes one message to subj with headers Nats-Msg-Id = msg_id,
 * Cqrs-First = first, Cqrs-Last = last, expecting the stream's last
 * sequence to be l->stream_last; on success l->stream_last is the new
 * message's. 0; 1 when the stream answered that it is a duplicate (the
 * position must be read back); -EIO (l->err). */
int cqrs__link_publish(nats_link *l, const char *subj, const char *msg_id, uint64_t first,
		       uint64_t last, const void *data, size_t len);

/* The server's max payload (bytes), 0 when not connected. */
int64_t cqrs__link_max_payload(const nats_link *l);

void cqrs__link_close(nats_link *l);

#endif
