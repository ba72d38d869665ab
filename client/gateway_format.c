/*
 * client/gateway_format.c - the gateway connection memory's canonical
 * layout (see gateway_format.h), computed the same way by the engine that
 * lays it out and by every client that validates the hello describing it.
 */
#include <stdio.h>
#include <string.h>

#include "client/gateway_format.h"
#include "core/errors.h"
#include "core/schema_internal.h"
#include "shm/segment.h"

static int pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

int cqrs__gw_layout(cqrs_gw_hello *h)
{
	uint64_t req, reply;

	if (!pow2(h->reply_entries) || h->reply_entries > (1u << 16))
		return -EINVAL;
	req = cqrs_mpsc_footprint(h->req_capacity, CQRS_GW_REQ_PRODUCERS);
	if (req == 0)
		return -EINVAL;
	reply = sizeof(cqrs_gw_reply) + (uint64_t)h->reply_entries * sizeof(cqrs_gw_entry);
	h->req_off = CQRS_GW_CONN_HDR;
	h->req_size = req;
	h->reply_off = cqrs__align_up(h->req_off + req, 128);
	h->reply_size = reply;
	h->conn_size = cqrs__align_up(h->reply_off + reply, 4096);
	h->quota = CQRS_GW_QUOTA;
	h->info_size = CQRS_GW_INFO_SIZE;
	return 0;
}

int cqrs__gw_layout_check(const cqrs_gw_hello *h)
{
	cqrs_gw_hello want;

	memset(&want, 0, sizeof want);
	want.req_capacity = h->req_capacity;
	want.reply_entries = h->reply_entries;
	if (cqrs__gw_layout(&want) || want.req_off != h->req_off || want.req_size != h->req_size ||
	    want.reply_off != h->reply_off || want.reply_size != h->reply_size ||
	    want.conn_size != h->conn_size || want.quota != h->quota || want.info_size != h->info_size)
		return cqrs__fail(CQRS_EFORMAT, "gateway hello: layout does not match its parameters");
	return 0;
}

int cqrs__gw_sock_name(char *out, size_t cap, const char *engine, uint64_t generation)
{
	int n;

	if (!engine || !cqrs__name_valid(engine, CQRS_NAME_MAX))
		return cqrs__fail(-EINVAL, "bad engine name");
	n = snprintf(out, cap, "cqrs.%s.%016llx", engine, (unsigned long long)generation);
	return n < 0 || (size_t)n >= cap ? -EINVAL : 0;
}
