/*
 * engine/gateway.c - the command gateway's engine side (see gateway.h).
 * Until the gateway segment exists, an engine has no gateway: e->gateway
 * stays NULL and the command thread never calls poll/ready.
 */
#include "engine_internal.h"
#include "gateway.h"

int cqrs__gateway_open(struct cqrs_engine *e)
{
	e->gateway = NULL;
	return 0;
}

uint32_t cqrs__gateway_poll(struct cqrs_engine *e, uint32_t max)
{
	(void)e;
	(void)max;
	return 0;
}

int cqrs__gateway_ready(struct cqrs_engine *e)
{
	(void)e;
	return 0;
}

void cqrs__gateway_close(struct cqrs_engine *e)
{
	e->gateway = NULL;
}
