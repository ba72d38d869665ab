/*
 * client/client_internal.h - white-box access to a client's connection for
 * the gateway tests and the fuzz target (they play hostile or dying
 * clients, with exactly a client's own access). Not part of the public API;
 * not exported from the shared library.
 */
#ifndef CQRS_CLIENT_INTERNAL_H
#define CQRS_CLIENT_INTERNAL_H

#include <stddef.h>

#include "client/gateway_format.h"
#include "cqrs_client.h"

typedef struct cqrs__client_parts {
	uint8_t *conn;              /* the connection memory, mapped read-write */
	size_t conn_size;
	const cqrs_gw_hello *hello; /* validated copy */
	const cqrs_gw_info *info;   /* the engine page, mapped read-only */
	cqrs_gw_conn *hdr;
	void *req_mem;              /* the request ring (hello->req_size bytes) */
	cqrs_gw_reply *reply;
	cqrs_mpsc *req;             /* the client's attached handle */
	cqrs_mpsc_producer *producer;
	int sock;                   /* the connection's socket */
} cqrs__client_parts;

/* Fills *out with c's pieces. 0, or -EINVAL when c is not connected. */
int cqrs__client_parts_get(cqrs_client *c, cqrs__client_parts *out);

/* Rings the engine's doorbell unconditionally (one byte on the socket). */
void cqrs__client_ring(cqrs_client *c);

#endif
