/*
 * examples/exchange/flow.c - the demo's and the bench's order flow
 * (flow.h) and the plain loop's step.
 */
#include <string.h>

#include "examples/exchange/flow.h"

static uint64_t flow_rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

void exch_flow_init(exch_flow *f, uint64_t seed, uint32_t ninstruments, uint32_t naccounts,
		    uint64_t coid_base)
{
	memset(f, 0, sizeof *f);
	f->seed = seed ? seed : 1;
	f->ninstruments = ninstruments;
	f->naccounts = naccounts < 2 ? 2 : naccounts;
	f->next_coid = coid_base + 1;
	for (uint32_t i = 1; i <= ninstruments; i++)
		f->mid[i] = FLOW_MID;
}

void exch_flow_limits(const exch_flow *f, uint32_t max_orders, exch_limits *out)
{
	*out = (exch_limits){ .ninstruments = f->ninstruments, .max_accounts = f->naccounts,
			      .max_orders = max_orders, .max_position = INT64_C(1) << 42 };
}

int exch_flow_funding(const exch_flow *f, uint32_t i, exch_cmd *c)
{
	uint32_t per = f->ninstruments + 1;

	if (i >= f->naccounts * per)
		return 0;
	memset(c, 0, sizeof *c);
	c->type = CMD_DEPOSIT;
	c->size = sizeof c->u.transfer;
	c->u.transfer.account = 1 + i / per;
	c->u.transfer.asset = i % per;
	c->u.transfer.amount = c->u.transfer.asset ? INT64_C(1) << 40 : INT64_C(1) << 52;
	return 1;
}

static void place(exch_cmd *c, uint64_t account, uint64_t coid, uint32_t instrument, int side,
		  int type, int tif, uint32_t price, uint64_t qty)
{
	memset(c, 0, sizeof *c);
	c->type = CMD_PLACE_ORDER;
	c->size = sizeof c->u.place;
	c->u.place.account = account;
	c->u.place.client_order_id = coid;
	c->u.place.instrument = instrument;
	c->u.place.side = (uint8_t)side;
	c->u.place.type = (uint8_t)type;
	c->u.place.tif = (uint8_t)tif;
	c->u.place.price = type == EXCH_LIMIT ? price : 0;
	c->u.place.qty = qty;
}

void exch_flow_next(exch_flow *f, exch_cmd *c)
{
	uint64_t r = flow_rnd(&f->seed);
	uint32_t pick = (uint32_t)(r % 100);
	uint32_t instrument = 1 + (uint32_t)((r >> 8) % f->ninstruments);
	uint32_t makers = f->naccounts / 2;
	int side = (int)((r >> 12) & 1);

	if (++f->n % 1024 == 0) { /* the mid drifts */
		uint32_t *mid = &f->mid[instrument];
		*mid = (r >> 16) & 1 ? *mid + 1 : *mid - 1;
		if (*mid < FLOW_MID / 2 || *mid > FLOW_MID * 2)
			*mid = FLOW_MID;
	}
	if (f->count == FLOW_QUOTES || (pick >= 48 && pick < 85 && f->count > 0) ||
	    (pick >= 85 && pick < 88 && f->count > 0)) {
		/* the oldest quote: cancel it, or amend it down */
		uint32_t i = f->head;
		uint64_t account = f->quotes[i].account, coid = f->quotes[i].coid;
		f->head = (f->head + 1) % FLOW_QUOTES;
		f->count--;
		memset(c, 0, sizeof *c);
		if (pick >= 85 && pick < 88) {
			c->type = CMD_AMEND_ORDER;
			c->size = sizeof c->u.amend;
			c->u.amend.account = account;
			c->u.amend.client_order_id = coid;
			c->u.amend.qty = 1;
			/* amended quotes stay: the flow cancels them later */
			f->quotes[(f->head + f->count) % FLOW_QUOTES].account = account;
			f->quotes[(f->head + f->count) % FLOW_QUOTES].coid = coid;
			f->count++;
		} else {
			c->type = CMD_CANCEL_ORDER;
			c->size = sizeof c->u.cancel;
			c->u.cancel.account = account;
			c->u.cancel.client_order_id = coid;
		}
		return;
	}
	if (pick < 88) { /* a maker's quote */
		uint64_t account = 1 + (r >> 20) % makers;
		uint32_t off = 1 + (uint32_t)((r >> 28) % 8);
		uint32_t mid = f->mid[instrument];
		uint64_t coid = f->next_coid++;
		place(c, account, coid, instrument, side, EXCH_LIMIT, EXCH_GTC,
		      side == EXCH_BUY ? mid - off : mid + off, 1 + (r >> 32) % 100);
		f->quotes[(f->head + f->count) % FLOW_QUOTES].account = account;
		f->quotes[(f->head + f->count) % FLOW_QUOTES].coid = coid;
		f->count++;
		return;
	}
	/* a taker */
	{
		uint64_t account = makers + 1 + (r >> 20) % (f->naccounts - makers);
		uint32_t mid = f->mid[instrument];
		if (pick < 98)
			place(c, account, f->next_coid++, instrument, side, EXCH_LIMIT, EXCH_IOC,
			      side == EXCH_BUY ? mid + 2 : mid - 2, 1 + (r >> 32) % 60);
		else
			place(c, account, f->next_coid++, instrument, side, EXCH_MARKET, EXCH_IOC, 0,
			      1 + (r >> 32) % 30);
	}
}

int exch_flow_run(exch_market *m, const exch_cmd *c)
{
	exch_plan plan;

	switch (c->type) {
	case CMD_PLACE_ORDER: {
		const place_order *p = &c->u.place;
		exch_place x = { p->account, p->client_order_id, p->qty, p->price, p->instrument,
				 p->side, p->type, p->tif };
		exch_place_order(m, &x, &plan);
		return plan.reject;
	}
	case CMD_CANCEL_ORDER:
		exch_plan_cancel(m, c->u.cancel.account, c->u.cancel.client_order_id, &plan);
		if (!plan.reject)
			exch_apply_cancel(m, c->u.cancel.account, c->u.cancel.client_order_id);
		return plan.reject;
	case CMD_AMEND_ORDER:
		exch_plan_amend(m, c->u.amend.account, c->u.amend.client_order_id, c->u.amend.qty,
				c->u.amend.price, &plan);
		if (!plan.reject)
			exch_apply_amend(m, c->u.amend.account, c->u.amend.client_order_id,
					 c->u.amend.qty, c->u.amend.price ? c->u.amend.price : 0,
					 plan.keep_priority);
		return plan.reject;
	case CMD_DEPOSIT:
	case CMD_WITHDRAW: {
		int64_t d = c->type == CMD_DEPOSIT ? c->u.transfer.amount : -c->u.transfer.amount;
		exch_plan_balance(m, c->u.transfer.account, c->u.transfer.asset, d, &plan);
		if (!plan.reject)
			exch_apply_balance(m, c->u.transfer.account, c->u.transfer.asset, d);
		return plan.reject;
	}
	default:
		return EXCH_R_BAD_ARGS;
	}
}
