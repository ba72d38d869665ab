/*
 * client/gateway_format.c - the gateway segment's canonical layout (see
 * gateway_format.h), computed the same way by the engine that lays it out
 * and by every client that validates it.
 */
#include <stdio.h>
#include <string.h>

#include "client/gateway_format.h"
#include "core/errors.h"
#include "core/schema_internal.h"

static int pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

int cqrs__gw_layout(cqrs__gw_params *p)
{
	uint64_t req, reply, slot, total;

	if (p->nslots == 0 || p->nslots > CQRS_GW_MAX_SLOTS || !pow2(p->reply_entries) ||
	    p->reply_entries > (1u << 16))
		return -EINVAL;
	req = cqrs_mpsc_footprint(p->req_capacity, CQRS_GW_REQ_PRODUCERS);
	if (req == 0)
		return -EINVAL;
	reply = sizeof(cqrs_gw_reply) + (uint64_t)p->reply_entries * sizeof(cqrs_gw_entry);
	slot = cqrs__align_up(sizeof(cqrs_gw_slot) + req + reply, 128);
	total = cqrs__align_up(CQRS_SEG_REGION_OFF + (uint64_t)p->nslots * slot, 4096);
	p->version = CQRS_GW_VERSION;
	p->slots_off = CQRS_SEG_REGION_OFF;
	p->slot_size = slot;
	p->req_off = sizeof(cqrs_gw_slot);
	p->req_size = req;
	p->req_producers = CQRS_GW_REQ_PRODUCERS;
	p->reply_off = sizeof(cqrs_gw_slot) + req;
	p->reply_size = reply;
	p->quota = CQRS_GW_QUOTA;
	p->entry_size = sizeof(cqrs_gw_entry);
	if (p->claim_timeout_ns == 0)
		p->claim_timeout_ns = CQRS_GW_CLAIM_TIMEOUT_NS;
	p->total_size = total;
	return 0;
}

int cqrs__gw_params_check(const cqrs__gw_params *p, uint64_t seg_size)
{
	cqrs__gw_params want;

	if (p->version != CQRS_GW_VERSION)
		return cqrs__fail(CQRS_EFORMAT, "gateway format %u, this library speaks %u", p->version,
				 CQRS_GW_VERSION);
	memset(&want, 0, sizeof want);
	want.nslots = p->nslots;
	want.req_capacity = p->req_capacity;
	want.reply_entries = p->reply_entries;
	want.claim_timeout_ns = p->claim_timeout_ns ? p->claim_timeout_ns : 1;
	if (cqrs__gw_layout(&want) || memcmp(&want, p, sizeof want) != 0 || want.total_size != seg_size)
		return cqrs__fail(CQRS_EFORMAT, "gateway segment: layout does not match its parameters");
	return 0;
}

int cqrs__gw_seg_name(char *out, size_t cap, const char *engine)
{
	int n;

	if (!engine || !cqrs__name_valid(engine, CQRS_NAME_MAX))
		return cqrs__fail(-EINVAL, "bad engine name");
	n = snprintf(out, cap, "/cqrs.%s.gw", engine);
	return n < 0 || (size_t)n >= cap ? -EINVAL : 0;
}
