/*
 * engine/gateway_check.h - validation of one gateway request, exactly as the
 * command thread does it before it looks at the content (a pure function,
 * so unit tests and the fuzz target drive it directly).
 */
#ifndef CQRS_ENGINE_GATEWAY_CHECK_H
#define CQRS_ENGINE_GATEWAY_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "client/gateway_format.h"

/* Command sizes by type id: 0 = no such command type. */
typedef struct cqrs_gw_cmdtab {
	uint32_t size[CQRS_GW_MAX_TYPES];
} cqrs_gw_cmdtab;

/* Checks the ring record (rtype, data, len) that a client wrote, copying
 * what it reads into private memory first (the client may change the ring
 * while we look): the header into *req (zeroed, request_id kept when at
 * least 8 bytes arrived), the command into payload (payload_cap bytes,
 * at least the largest size in tab). Returns 0, or CQRS_EFORMAT with a
 * NUL-terminated reason in why (CQRS_GW_REASON bytes). Reads exactly
 * [data, data + len); O(len). */
int cqrs__gw_check_request(const cqrs_gw_cmdtab *tab, uint32_t rtype, const void *data,
			   uint32_t len, cqrs__gw_req *req, void *payload, size_t payload_cap,
			   char *why);

#endif
