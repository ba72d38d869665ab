/*
 * client/client_internal.h - white-box access to a client's shared memory
 * for the gateway tests and the fuzz target (they play hostile or dying
 * clients). Not part of the public API; not exported from the shared
 * library.
 */
#ifndef CQRS_CLIENT_INTERNAL_H
#define CQRS_CLIENT_INTERNAL_H

#include "client/gateway_format.h"
#include "cqrs_client.h"

typedef struct cqrs__client_parts {
	uint8_t *base;            /* the gateway segment, mapped read-write */
	size_t size;
	const cqrs__gw_params *p;  /* validated copy */
	cqrs_gw_lines *lines;
	uint32_t slot_index;
	cqrs_gw_slot *slot;
	void *req_mem;            /* the request ring (p->req_size bytes) */
	cqrs_gw_reply *reply;
	cqrs_mpsc *req;           /* the client's attached handle */
	cqrs_mpsc_producer *producer;
} cqrs__client_parts;

/* Fills *out with c's pieces. 0, or -EINVAL when c is not connected. */
int cqrs__client_parts_get(cqrs_client *c, cqrs__client_parts *out);

#endif
