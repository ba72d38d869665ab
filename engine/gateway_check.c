/*
 * engine/gateway_check.c - see gateway_check.h. The rules are listed in
 * client/gateway_format.h ("Request").
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/gateway_check.h"

static int bad(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Cold: only malformed requests get here. */
static int bad(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, CQRS_GW_REASON, fmt, ap);
	va_end(ap);
	return CQRS_EFORMAT;
}

#define ULL(x) ((unsigned long long)(x))

int cqrs__gw_check_request(const cqrs_gw_cmdtab *tab, uint32_t rtype, const void *data,
			   uint32_t len, cqrs__gw_req *req, void *payload, size_t payload_cap,
			   char *why)
{
	uint32_t want;

	memset(req, 0, sizeof *req);
	why[0] = 0;
	if (len >= sizeof req->request_id)
		memcpy(&req->request_id, data, sizeof req->request_id);
	if (rtype != CQRS_GW_REC_REQUEST)
		return bad(why, "malformed request: record type %llu (expected %llu)", ULL(rtype),
			   ULL(CQRS_GW_REC_REQUEST));
	if (len < sizeof *req)
		return bad(why, "malformed request: %llu bytes, the header alone is %llu", ULL(len),
			   ULL(sizeof *req));
	/* One copy of the header: everything below looks at our copy only. */
	memcpy(req, data, sizeof *req);
	if (req->reserved != 0 || (req->flags & ~CQRS_GW_KNOWN_FLAGS) != 0)
		return bad(why, "malformed request: unknown flags 0x%llx or reserved 0x%llx set",
			   ULL(req->flags), ULL(req->reserved));
	if (req->type == 0 || req->type >= CQRS_GW_MAX_TYPES || (want = tab->size[req->type]) == 0)
		return bad(why, "malformed request: unknown command type %llu", ULL(req->type));
	if (req->size != want)
		return bad(why, "malformed request: command size %llu, its schema says %llu",
			   ULL(req->size), ULL(want));
	if ((uint64_t)len != sizeof *req + (uint64_t)req->size)
		return bad(why, "malformed request: record of %llu bytes for a %llu-byte command",
			   ULL(len), ULL(req->size));
	if (req->client_seq == 0)
		return bad(why, "malformed request: client_seq 0");
	if (req->aggregate_id == UINT64_MAX)
		return bad(why, "malformed request: aggregate id %llu out of range",
			   ULL(req->aggregate_id));
	if (req->size > payload_cap)
		return bad(why, "malformed request: command size %llu over %llu", ULL(req->size),
			   ULL(payload_cap));
	memcpy(payload, (const unsigned char *)data + sizeof *req, req->size);
	return 0;
}
