/*
 * examples/exchange/flow.h - the order flow of the demo and the bench:
 * market makers quoting around a drifting mid and cancelling their oldest
 * quotes, takers crossing the spread (IOC limits, a few market orders),
 * some amends. The same sequence feeds the engine (as commands) or the
 * plain loop (exch_flow_run: book.c directly), so the two compare the
 * same work.
 *
 * Mix (of commands): about 48% maker quotes (GTC limits 1..8 ticks off
 * the mid, on the passive side: most rest), 37% cancels of a maker's
 * oldest quote (rejected when it filled meanwhile), 10% taker IOC limits
 * 2 ticks through the mid, 3% amends (quantity down: priority kept), 2%
 * market orders. Accounts 1..naccounts/2 make, the rest take.
 */
#ifndef CQRS_EXAMPLES_EXCHANGE_FLOW_H
#define CQRS_EXAMPLES_EXCHANGE_FLOW_H

#include "examples/exchange/exchange.h"

#define FLOW_QUOTES 4096 /* maker quotes the flow remembers (cancels the oldest) */
#define FLOW_MID 10000   /* the mid the flow starts at (ticks) */

typedef struct exch_cmd {
	uint32_t type; /* CMD_* */
	uint32_t size;
	union {
		place_order place;
		cancel_order cancel;
		amend_order amend;
		deposit transfer;
	} u;
} exch_cmd;

typedef struct exch_flow {
	uint64_t seed;
	uint32_t ninstruments, naccounts;
	uint32_t mid[EXCH_MAX_INSTRUMENTS + 1];
	uint64_t next_coid;
	uint64_t n;
	struct { uint64_t account, coid; } quotes[FLOW_QUOTES];
	uint32_t head, count;
} exch_flow;

/* coid_base: where client order ids start (runs over one data directory
 * continue above the last run's). */
void exch_flow_init(exch_flow *f, uint64_t seed, uint32_t ninstruments, uint32_t naccounts,
		    uint64_t coid_base);
void exch_flow_next(exch_flow *f, exch_cmd *c);
/* The deposits that fund every account (cash, and lots of every
 * instrument for the makers' asks and the takers' sells): call with
 * i = 0, 1, ... until it returns 0. */
int exch_flow_funding(const exch_flow *f, uint32_t i, exch_cmd *c);
/* Limits that fit the flow: max_orders resting orders at once. */
void exch_flow_limits(const exch_flow *f, uint32_t max_orders, exch_limits *out);
/* The plain loop's step: plan and apply c on m (no engine). 0 or the
 * plan's reject code. */
int exch_flow_run(exch_market *m, const exch_cmd *c);

#endif
