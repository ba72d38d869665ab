/*
 * tests/unit/test_exchange.c - the exchange example (examples/exchange):
 * book.c's matching against a naive reference (sorted scans of a flat
 * array of orders) on random order flows - the same trades and the same
 * book after every command -, the invariants after every batch (best bid
 * below best ask, quantities and cash conserved, holds equal resting
 * orders, nothing negative), the risk checks and amend priorities one by
 * one, and the engine: its views against the model, and a restart on the
 * same journal replaying to the same book and accounts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cqrs.h"
#include "cqrs_view.h"
#include "examples/exchange/exchange.h"
#include "tests/lib/testutil.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* ---- the reference: a flat array of resting orders, scanned ---- */

enum { NI = 3, NA = 12, REF_MAX = 4096 };

typedef struct ref_order {
	uint64_t account, coid, leaves, time;
	uint32_t price, instrument;
	int side;
} ref_order;

typedef struct ref_fill {
	uint64_t maker_account, maker_coid, qty;
	uint32_t price;
} ref_fill;

typedef struct ref_market {
	ref_order o[REF_MAX];
	int n;
	uint64_t clock;
	int64_t cash[NA + 1], lots[NA + 1][NI + 1];
} ref_market;

static int ref_find(const ref_market *r, uint64_t account, uint64_t coid)
{
	for (int i = 0; i < r->n; i++)
		if (r->o[i].account == account && r->o[i].coid == coid)
			return i;
	return -1;
}

/* The best resting order of side on instrument that `limit` crosses
 * (limit 0: any), not in taken[] beyond its leaves. */
static int ref_best(const ref_market *r, uint32_t instrument, int side, uint32_t limit,
		    const uint64_t *used)
{
	int best = -1;
	for (int i = 0; i < r->n; i++) {
		const ref_order *o = &r->o[i];
		if (o->instrument != instrument || o->side != side || used[i] >= o->leaves)
			continue;
		if (limit && (side == EXCH_SELL ? o->price > limit : o->price < limit))
			continue;
		if (best < 0)
			best = i;
		else {
			const ref_order *b = &r->o[best];
			int better = side == EXCH_SELL ? o->price < b->price : o->price > b->price;
			if (better || (o->price == b->price && o->time < b->time))
				best = i;
		}
	}
	return best;
}

static void ref_remove(ref_market *r, int i)
{
	r->o[i] = r->o[--r->n];
}

/* Returns the number of fills (into f), -1 when the order is refused
 * (a market order with nothing to take); *rested says what rests. */
static int ref_place(ref_market *r, const exch_place *p, ref_fill *f, uint64_t *rested)
{
	static uint64_t used[REF_MAX];
	uint64_t rem = p->qty;
	int nf = 0, opp = p->side ^ 1;
	uint32_t limit = p->type == EXCH_LIMIT ? p->price : 0;

	memset(used, 0, sizeof used);
	*rested = 0;
	while (rem && nf < EXCH_MAX_FILLS) {
		int i = ref_best(r, p->instrument, opp, limit, used);
		if (i < 0)
			break;
		uint64_t q = r->o[i].leaves - used[i] < rem ? r->o[i].leaves - used[i] : rem;
		f[nf++] = (ref_fill){ r->o[i].account, r->o[i].coid, q, r->o[i].price };
		used[i] += q;
		rem -= q;
	}
	if (p->tif == EXCH_FOK && rem)
		return 0;
	if (p->type == EXCH_MARKET && rem == p->qty)
		return -1;
	/* apply the fills */
	for (int k = 0; k < nf; k++) {
		int i = ref_find(r, f[k].maker_account, f[k].maker_coid);
		int64_t cash = (int64_t)f[k].price * (int64_t)f[k].qty;
		uint64_t buyer = p->side == EXCH_BUY ? p->account : f[k].maker_account;
		uint64_t seller = p->side == EXCH_BUY ? f[k].maker_account : p->account;
		r->cash[buyer] -= cash;
		r->cash[seller] += cash;
		r->lots[buyer][p->instrument] += (int64_t)f[k].qty;
		r->lots[seller][p->instrument] -= (int64_t)f[k].qty;
		r->o[i].leaves -= f[k].qty;
		if (r->o[i].leaves == 0)
			ref_remove(r, i);
	}
	if (rem && p->type == EXCH_LIMIT && p->tif == EXCH_GTC) {
		int cross;
		memset(used, 0, sizeof used); /* the fills are applied: leaves are what is left */
		cross = nf == EXCH_MAX_FILLS && ref_best(r, p->instrument, opp, limit, used) >= 0;
		if (!cross) {
			r->o[r->n++] = (ref_order){ p->account, p->coid, rem, ++r->clock, p->price,
						    p->instrument, p->side };
			*rested = rem;
		}
	}
	return nf;
}

/* The reference's level at (instrument, side, price): qty and count. */
static void ref_level(const ref_market *r, uint32_t instrument, int side, uint32_t price,
		      uint64_t *qty, uint32_t *count)
{
	*qty = 0;
	*count = 0;
	for (int i = 0; i < r->n; i++) {
		const ref_order *o = &r->o[i];
		if (o->instrument == instrument && o->side == side && o->price == price) {
			*qty += o->leaves;
			(*count)++;
		}
	}
}

/* Same book: every reference order rests in the market with the same
 * leaves, level FIFO order follows the reference's times, level totals
 * agree, and the market has no other orders. */
static void assert_same_book(const exch_market *m, const ref_market *r)
{
	assert_int_equal(m->live, r->n);
	for (int i = 0; i < r->n; i++) {
		const ref_order *o = &r->o[i];
		const exch_order *mo = exch_market_find(m, o->account, o->coid);
		assert_non_null(mo);
		assert_int_equal(mo->leaves, o->leaves);
		assert_int_equal(mo->price, o->price);
		assert_int_equal(mo->side, o->side);
		uint64_t q;
		uint32_t c;
		ref_level(r, o->instrument, o->side, o->price, &q, &c);
		const exch_level *l = exch_market_level(m, o->instrument, o->side, o->price);
		assert_int_equal(l->qty, q);
		assert_int_equal(l->count, c);
		/* FIFO: the next order in the level is the next reference time */
		if (mo->next != EXCH_NONE) {
			const exch_order *nx = &m->orders[mo->next];
			int j = ref_find(r, nx->account, nx->coid);
			assert_true(j >= 0);
			assert_true(r->o[j].time > o->time);
		}
	}
	for (uint64_t a = 1; a <= NA; a++) {
		assert_int_equal(m->accounts[a].asset[0].total, r->cash[a]);
		for (uint32_t k = 1; k <= NI; k++)
			assert_int_equal(m->accounts[a].asset[k].total, r->lots[a][k]);
	}
}

static void market_setup(exch_market *m, int64_t cash, int64_t lots, int64_t max_position)
{
	exch_limits lim = { .ninstruments = NI, .max_accounts = NA, .max_orders = REF_MAX,
			    .max_position = max_position };
	exch_plan plan;

	assert_int_equal(exch_market_init(m, &lim), 0);
	for (uint64_t a = 1; a <= NA; a++) {
		for (uint32_t k = 0; k <= NI; k++) {
			int64_t amt = k ? lots : cash;
			if (!amt)
				continue;
			exch_plan_balance(m, a, k, amt, &plan);
			assert_int_equal(plan.reject, 0);
			exch_apply_balance(m, a, k, amt);
		}
	}
}

static void random_place(uint64_t *seed, exch_place *p, uint64_t coid)
{
	uint64_t x = rnd(seed);
	p->account = 1 + x % NA;
	p->coid = coid;
	p->instrument = 1 + (uint32_t)((x >> 8) % NI);
	p->side = (uint8_t)((x >> 12) & 1);
	p->type = (x >> 13) % 16 == 0 ? EXCH_MARKET : EXCH_LIMIT;
	p->tif = (x >> 17) % 8 == 0 ? EXCH_IOC : (x >> 17) % 8 == 1 ? EXCH_FOK : EXCH_GTC;
	/* prices around 1000, a few ticks wide each side so that orders cross */
	p->price = p->side == EXCH_BUY ? 990 + (uint32_t)((x >> 20) % 14) : 997 + (uint32_t)((x >> 20) % 14);
	p->qty = 1 + (x >> 32) % 40;
}

static void test_matching_vs_reference(void **state)
{
	static ref_market r;
	exch_market m;
	exch_plan plan;
	ref_fill f[EXCH_MAX_FILLS];
	uint64_t seed = 0x1234567ull, coid = 0, trades = 0, rests = 0, cancels = 0, amends = 0;
	int64_t cash0 = 0, lots0[NI + 1] = { 0 };
	char why[256];
	(void)state;

	memset(&r, 0, sizeof r);
	market_setup(&m, INT64_C(1) << 50, INT64_C(1) << 40, INT64_C(1) << 44);
	for (uint64_t a = 1; a <= NA; a++) {
		r.cash[a] = INT64_C(1) << 50;
		for (uint32_t k = 1; k <= NI; k++)
			r.lots[a][k] = INT64_C(1) << 40;
		cash0 += r.cash[a];
		for (uint32_t k = 1; k <= NI; k++)
			lots0[k] += r.lots[a][k];
	}
	for (int step = 0; step < 60000; step++) {
		uint64_t x = rnd(&seed);
		if (x % 10 < 6 || r.n == 0) {
			exch_place p;
			uint64_t rested;
			random_place(&seed, &p, ++coid);
			int nf = ref_place(&r, &p, f, &rested);
			/* the makers, in order, before the apply frees their slots */
			exch_plan_place(&m, &p, &plan);
			for (int k = 0; k < nf && k < (int)plan.nfills; k++) {
				const exch_order *mk = &m.orders[plan.fills[k].slot];
				assert_int_equal(mk->account, f[k].maker_account);
				assert_int_equal(mk->coid, f[k].maker_coid);
			}
			exch_place_order(&m, &p, &plan);
			if (nf < 0) {
				assert_int_equal(plan.reject, EXCH_R_NO_LIQUIDITY);
				continue;
			}
			assert_int_equal(plan.reject, 0);
			assert_int_equal(plan.nfills, nf);
			for (int k = 0; k < nf; k++) {
				assert_int_equal(plan.fills[k].qty, f[k].qty);
				assert_int_equal(plan.fills[k].price, f[k].price);
			}
			assert_int_equal(plan.rests ? plan.leaves : 0, rested);
			trades += (uint64_t)nf;
			rests += rested > 0;
		} else if (x % 10 < 8) {
			const ref_order *o = &r.o[(x >> 8) % (uint64_t)r.n];
			uint64_t a = o->account, c = o->coid;
			exch_plan_cancel(&m, a, c, &plan);
			assert_int_equal(plan.reject, 0);
			exch_apply_cancel(&m, a, c);
			ref_remove(&r, ref_find(&r, a, c));
			cancels++;
		} else {
			int i = (int)((x >> 8) % (uint64_t)r.n);
			ref_order *o = &r.o[i];
			uint64_t nq = 1 + (x >> 20) % (o->leaves + 5);
			uint32_t np = (x >> 40) % 2 ? 0 : (o->side == EXCH_BUY ? 985 + (uint32_t)((x >> 44) % 10)
								: 1005 + (uint32_t)((x >> 44) % 10));
			exch_plan_amend(&m, o->account, o->coid, nq, np, &plan);
			if (plan.reject) {
				assert_int_equal(plan.reject, EXCH_R_CROSSES);
				continue;
			}
			int keep = (np == 0 || np == o->price) && nq <= o->leaves;
			assert_int_equal(plan.keep_priority, keep);
			exch_apply_amend(&m, o->account, o->coid, nq, np, plan.keep_priority);
			o->leaves = nq;
			if (np)
				o->price = np;
			if (!keep)
				o->time = ++r.clock;
			amends++;
		}
		/* the top the plan announced is the top after the command */
		if (step % 97 == 0 || step < 2000) {
			for (uint32_t k = 1; k <= NI; k++) {
				exch_top t = exch_market_top(&m, k);
				if (t.bid && t.ask)
					assert_true(t.bid < t.ask);
			}
		}
		if (step % 500 == 499) {
			int64_t cash = 0, lots[NI + 1] = { 0 };
			assert_same_book(&m, &r);
			if (exch_market_check(&m, why, sizeof why))
				fail_msg("step %d: %s", step, why);
			for (uint64_t a = 1; a <= NA; a++) {
				cash += m.accounts[a].asset[0].total;
				for (uint32_t k = 1; k <= NI; k++)
					lots[k] += m.accounts[a].asset[k].total;
			}
			assert_int_equal(cash, cash0);
			for (uint32_t k = 1; k <= NI; k++)
				assert_int_equal(lots[k], lots0[k]);
		}
	}
	assert_true(trades > 10000 && rests > 5000 && cancels > 5000 && amends > 5000);
	print_message("%llu trades, %llu rested, %llu cancels, %llu amends\n", (unsigned long long)trades,
		      (unsigned long long)rests, (unsigned long long)cancels, (unsigned long long)amends);
	exch_market_free(&m);
}

/* The top each plan announces equals the book after the apply. */
static void test_plan_top_matches_book(void **state)
{
	exch_market m;
	exch_plan plan;
	uint64_t seed = 99, coid = 0;
	(void)state;

	market_setup(&m, INT64_C(1) << 50, INT64_C(1) << 40, INT64_C(1) << 44);
	for (int step = 0; step < 30000; step++) {
		uint64_t x = rnd(&seed);
		exch_place p;
		exch_top t;
		random_place(&seed, &p, ++coid);
		exch_place_order(&m, &p, &plan);
		if (plan.reject)
			continue;
		t = exch_market_top(&m, p.instrument);
		assert_memory_equal(&t, &plan.top, sizeof t);
		if (x % 3 == 0 && m.live) {
			/* cancel or amend the order at a random slot */
			uint32_t s = (uint32_t)((x >> 8) % REF_MAX);
			while (!m.orders[s].used)
				s = (s + 1) % REF_MAX;
			const exch_order o = m.orders[s];
			if ((x >> 5) & 1) {
				exch_plan_cancel(&m, o.account, o.coid, &plan);
				exch_apply_cancel(&m, o.account, o.coid);
			} else {
				uint32_t np = (x >> 6) & 1 ? 0 : (o.side == EXCH_BUY ? 980 : 1010) + (uint32_t)((x >> 9) % 8);
				exch_plan_amend(&m, o.account, o.coid, 1 + (x >> 20) % 50, np, &plan);
				if (plan.reject)
					continue;
				exch_apply_amend(&m, o.account, o.coid, 1 + (x >> 20) % 50, np, plan.keep_priority);
			}
			t = exch_market_top(&m, o.instrument);
			assert_memory_equal(&t, &plan.top, sizeof t);
		}
	}
	exch_market_free(&m);
}

static uint64_t place(exch_market *m, uint64_t account, uint64_t coid, int side, uint32_t price,
		      uint64_t qty, int tif, exch_plan *plan)
{
	exch_place p = { account, coid, qty, price, 1, (uint8_t)side, EXCH_LIMIT, (uint8_t)tif };
	exch_place_order(m, &p, plan);
	return plan->filled;
}

static void test_risk_and_priority(void **state)
{
	exch_market m;
	exch_plan plan;
	exch_limits lim = { .ninstruments = 2, .max_accounts = 4, .max_orders = 64, .max_position = 1000 };
	(void)state;

	assert_int_equal(exch_market_init(&m, &lim), 0);
	exch_apply_balance(&m, 1, 0, 100000); /* account 1: cash */
	exch_apply_balance(&m, 2, 1, 500);    /* account 2: 500 lots of instrument 1 */
	exch_apply_balance(&m, 3, 1, 500);

	/* a buy it cannot afford */
	place(&m, 1, 1, EXCH_BUY, 200, 600, EXCH_GTC, &plan);
	assert_int_equal(plan.reject, EXCH_R_CASH);
	assert_non_null(strstr(plan.why, "insufficient cash: needs 120000, free 100000"));
	/* a sell of lots it does not have */
	place(&m, 1, 2, EXCH_SELL, 200, 1, EXCH_GTC, &plan);
	assert_int_equal(plan.reject, EXCH_R_LOTS);
	/* the position limit counts resting buys */
	exch_apply_balance(&m, 4, 0, 1000000);
	place(&m, 4, 1, EXCH_BUY, 10, 900, EXCH_GTC, &plan);
	assert_int_equal(plan.reject, 0);
	place(&m, 4, 2, EXCH_BUY, 10, 101, EXCH_GTC, &plan);
	assert_int_equal(plan.reject, EXCH_R_POSITION);
	exch_plan_cancel(&m, 4, 1, &plan);
	exch_apply_cancel(&m, 4, 1);
	/* withdrawing held cash is refused */
	place(&m, 1, 3, EXCH_BUY, 100, 900, EXCH_GTC, &plan); /* holds 90000 */
	assert_int_equal(plan.reject, 0);
	exch_plan_balance(&m, 1, 0, -20000, &plan);
	assert_int_equal(plan.reject, EXCH_R_CASH);
	exch_plan_balance(&m, 1, 0, -10000, &plan);
	assert_int_equal(plan.reject, 0);
	/* duplicate client order id */
	place(&m, 1, 3, EXCH_BUY, 90, 1, EXCH_GTC, &plan);
	assert_int_equal(plan.reject, EXCH_R_DUPLICATE);
	/* a market order with nothing to take */
	{
		exch_place p = { 1, 9, 5, 0, 2, EXCH_BUY, EXCH_MARKET, EXCH_IOC };
		exch_place_order(&m, &p, &plan);
		assert_int_equal(plan.reject, EXCH_R_NO_LIQUIDITY);
	}
	/* an amend that would cross */
	place(&m, 2, 1, EXCH_SELL, 105, 10, EXCH_GTC, &plan);
	assert_int_equal(plan.reject, 0);
	exch_plan_amend(&m, 2, 1, 10, 100, &plan);
	assert_int_equal(plan.reject, EXCH_R_CROSSES);
	exch_plan_cancel(&m, 2, 1, &plan);
	exch_apply_cancel(&m, 2, 1);
	exch_plan_cancel(&m, 1, 3, &plan);
	exch_apply_cancel(&m, 1, 3);

	/* priority: 2 then 3 at 110; 2 amends down (keeps first place), then
	 * 3's price change to 110 again from 111 puts it last */
	place(&m, 2, 10, EXCH_SELL, 110, 10, EXCH_GTC, &plan);
	place(&m, 3, 10, EXCH_SELL, 110, 10, EXCH_GTC, &plan);
	exch_plan_amend(&m, 2, 10, 5, 0, &plan);
	assert_int_equal(plan.keep_priority, 1);
	exch_apply_amend(&m, 2, 10, 5, 0, 1);
	place(&m, 1, 20, EXCH_BUY, 110, 3, EXCH_IOC, &plan);
	assert_int_equal(plan.nfills, 1);
	assert_int_equal(m.orders[plan.fills[0].slot].account, 2); /* still first */
	/* quantity up loses priority */
	exch_plan_amend(&m, 2, 10, 8, 0, &plan);
	assert_int_equal(plan.keep_priority, 0);
	exch_apply_amend(&m, 2, 10, 8, 0, 0);
	place(&m, 1, 21, EXCH_BUY, 110, 1, EXCH_IOC, &plan);
	assert_int_equal(m.orders[plan.fills[0].slot].account, 3);
	/* FOK: all or nothing */
	place(&m, 1, 22, EXCH_BUY, 110, 100, EXCH_FOK, &plan);
	assert_int_equal(plan.reject, 0);
	assert_int_equal(plan.nfills, 0);
	assert_int_equal(plan.expired, 100);
	place(&m, 1, 23, EXCH_BUY, 110, 17, EXCH_FOK, &plan);
	assert_int_equal(plan.filled, 17);
	assert_null(exch_market_find(&m, 2, 10));
	assert_null(exch_market_find(&m, 3, 10));
	/* P&L: account 1 bought 21 lots at 110 */
	assert_int_equal(m.accounts[1].asset[1].total, 21);
	assert_int_equal(m.accounts[1].asset[1].cost, 21 * 110);
	{
		char why[200];
		if (exch_market_check(&m, why, sizeof why))
			fail_msg("%s", why);
	}
	exch_market_free(&m);
}

/* ---- through the engine ---- */

typedef struct engine_fx {
	char name[64], dir[256];
	exch_market m;
	cqrs_engine *e;
} engine_fx;

static void fx_start(engine_fx *f)
{
	exch_limits lim = { .ninstruments = NI, .max_accounts = NA, .max_orders = REF_MAX,
			    .max_position = INT64_C(1) << 44 };
	exchange_sizes sz = { 1024, 4096, 4096, 256 };
	cqrs_config cfg;

	assert_int_equal(exch_market_init(&f->m, &lim), 0);
	cqrs_config_init(&cfg);
	cfg.name = f->name;
	cfg.data_dir = f->dir;
	cfg.durability = CQRS_DURABILITY_NONE;
	cfg.projector_threads = 2;
	assert_int_equal(cqrs_engine_open(&cfg, &f->m, &f->e), 0);
	assert_int_equal(exchange_register(f->e, &f->m, &sz), 0);
	assert_int_equal(cqrs_engine_start(f->e), 0);
}

static int submit(engine_fx *f, uint32_t type, const void *data, uint32_t size, uint64_t *seq)
{
	cqrs_command c = { .type = type, .size = size, .data = data };
	cqrs_ticket t;
	int rc;

	while ((rc = cqrs_submit(f->e, &c, &t)) == -EAGAIN)
		;
	assert_int_equal(rc, 0);
	rc = cqrs_ticket_wait(&t, UINT64_MAX);
	if (seq)
		*seq = cqrs_ticket_seq(&t);
	return rc;
}

typedef struct levels_got {
	book_level rows[64];
	int n;
} levels_got;

static int got_level(void *arg, const void *row, size_t size)
{
	levels_got *g = arg;
	(void)size;
	if (g->n < 64)
		memcpy(&g->rows[g->n++], row, sizeof(book_level));
	return 0;
}

typedef struct last_trade {
	trade_row rows[2];
	int n;
} last_trade;

static int got_trade(void *arg, const void *row, size_t size)
{
	last_trade *t = arg;
	(void)size;
	if (t->n < 2)
		memcpy(&t->rows[t->n++], row, sizeof(trade_row));
	return 0;
}

/* The views against the engine's model once they applied seq (the last
 * command's: its ticket completed after evolve, so the model is read after
 * the command thread's last change): every level of every book in order
 * through the ordered index, the top of every book, every account's
 * positions, the open orders, each instrument's last trades. */
static void assert_views_match(const char *engine, const exch_market *m, uint64_t seq)
{
	cqrs_view *levels, *tob;
	assert_int_equal(cqrs_view_open(engine, "book_levels", &levels), 0);
	assert_int_equal(cqrs_view_open(engine, "top_of_book", &tob), 0);
	assert_int_equal(cqrs_view_wait(levels, seq, 5000000000ull), 0);
	assert_int_equal(cqrs_view_wait(tob, seq, 5000000000ull), 0);
	for (uint32_t i = 1; i <= NI; i++) {
		top_of_book row;
		uint64_t key = i;
		exch_top t = exch_market_top(m, i);
		if (cqrs_view_get(tob, &key, 8, &row, sizeof row)) { /* never had a top */
			assert_true(!t.bid && !t.ask && !m->books[i].trades);
			continue;
		}
		assert_int_equal(row.bid, t.bid);
		assert_int_equal(row.ask, t.ask);
		assert_int_equal(row.bid_qty, t.bid_qty);
		assert_int_equal(row.ask_qty, t.ask_qty);
		assert_int_equal(row.trades, m->books[i].trades);
		for (int s = 0; s < 2; s++) {
			uint32_t lo[2] = { i, (uint32_t)s }, hi[2] = { i, (uint32_t)s + 1 };
			levels_got g = { .n = 0 };
			int n = cqrs_view_range(levels, NULL, lo, sizeof lo, hi, sizeof hi,
						s == EXCH_BUY ? CQRS_RANGE_DESC | CQRS_RANGE_SNAPSHOT : CQRS_RANGE_SNAPSHOT,
						10, got_level, &g);
			assert_true(n >= 0);
			uint32_t p = m->books[i].half[s].best;
			for (int k = 0; k < g.n; k++) {
				const exch_level *l = exch_market_level(m, i, s, p);
				assert_int_equal(g.rows[k].price, p);
				assert_int_equal(g.rows[k].qty, l->qty);
				assert_int_equal(g.rows[k].orders, l->count);
				p = exch_market_next_level(m, i, s, p);
			}
			if (g.n < 10)
				assert_int_equal(p, 0); /* every level was read */
		}
	}
	cqrs_view_close(levels);
	cqrs_view_close(tob);

	/* positions: every account's holdings as the model has them */
	cqrs_view *pos, *orders;
	assert_int_equal(cqrs_view_open(engine, "positions", &pos), 0);
	assert_int_equal(cqrs_view_open(engine, "orders", &orders), 0);
	assert_int_equal(cqrs_view_wait(pos, seq, 5000000000ull), 0);
	for (uint64_t a = 1; a <= NA; a++) {
		for (uint32_t k = 0; k <= NI; k++) {
			const exch_holding *h = &m->accounts[a].asset[k];
			uint64_t key = POSITION_KEY(a, k);
			position row;
			if (cqrs_view_get(pos, &key, 8, &row, sizeof row)) {
				assert_int_equal(h->total, 0);
				continue;
			}
			assert_int_equal(row.qty, h->total);
			if (k) {
				assert_int_equal(row.cost, h->cost);
				assert_int_equal(row.realized, h->realized);
			}
		}
	}
	/* orders: exactly the resting ones, with their leaves */
	assert_int_equal(cqrs_view_rows(orders), m->live);
	for (uint32_t s = 0; s < m->lim.max_orders; s++) {
		const exch_order *o = &m->orders[s];
		open_order row;
		if (!o->used)
			continue;
		assert_int_equal(cqrs_view_get(orders, &o->order_id, 8, &row, sizeof row), 0);
		assert_int_equal(row.leaves, o->leaves);
		assert_int_equal(row.price, o->price);
		assert_int_equal(row.account, o->account);
	}
	cqrs_view_close(pos);
	cqrs_view_close(orders);

	/* trades: the latest of each instrument is its last, in seq order */
	cqrs_view *trades;
	assert_int_equal(cqrs_view_open(engine, "trades", &trades), 0);
	for (uint64_t i = 1; i <= NI; i++) {
		uint64_t lo = i, hi = i + 1;
		last_trade lt = { .n = 0 };
		assert_true(cqrs_view_range(trades, NULL, &lo, 8, &hi, 8, CQRS_RANGE_DESC | CQRS_RANGE_SNAPSHOT,
					    2, got_trade, &lt) >= 0);
		if (m->books[i].trades == 0) {
			assert_int_equal(lt.n, 0);
			continue;
		}
		assert_true(lt.n >= 1);
		assert_int_equal(lt.rows[0].trade_no, m->books[i].trades);
		assert_int_equal(lt.rows[0].price, m->books[i].last_price);
		assert_int_equal(lt.rows[0].qty, m->books[i].last_qty);
		if (lt.n == 2)
			assert_true(lt.rows[1].seq < lt.rows[0].seq && lt.rows[1].trade_no + 1 == lt.rows[0].trade_no);
	}
	cqrs_view_close(trades);
}

static void assert_same_market(const exch_market *a, const exch_market *b)
{
	assert_int_equal(a->live, b->live);
	assert_int_equal(a->next_order_id, b->next_order_id);
	for (uint32_t i = 1; i <= NI; i++) {
		assert_int_equal(a->books[i].trades, b->books[i].trades);
		for (int s = 0; s < 2; s++) {
			uint32_t pa = a->books[i].half[s].best, pb = b->books[i].half[s].best;
			assert_int_equal(pa, pb);
			for (; pa; pa = exch_market_next_level(a, i, s, pa)) {
				const exch_level *la = exch_market_level(a, i, s, pa);
				const exch_level *lb = exch_market_level(b, i, s, pa);
				assert_int_equal(la->qty, lb->qty);
				assert_int_equal(la->count, lb->count);
				/* the same FIFO */
				for (uint32_t x = la->head, y = lb->head; x != EXCH_NONE;
				     x = a->orders[x].next, y = b->orders[y].next) {
					assert_true(y != EXCH_NONE);
					assert_int_equal(a->orders[x].order_id, b->orders[y].order_id);
					assert_int_equal(a->orders[x].leaves, b->orders[y].leaves);
				}
			}
		}
	}
	assert_memory_equal(a->accounts, b->accounts, sizeof(exch_account) * (NA + 1));
}

static void test_engine_views_and_replay(void **state)
{
	engine_fx f, g;
	uint64_t seed = 777, coid = 0, seq = 0;
	int accepted = 0, rejected = 0;
	char why[256];
	(void)state;

	memset(&f, 0, sizeof f);
	tu_unique_name(f.name, sizeof f.name, "exch");
	assert_int_equal(tu_mkdtemp(f.dir, sizeof f.dir, "exch"), 0);
	fx_start(&f);
	for (uint64_t a = 1; a <= NA; a++) {
		for (uint32_t k = 0; k <= NI; k++) {
			deposit d = { .account = a, .amount = k ? 100000 : 100000000, .asset = k };
			assert_int_equal(submit(&f, CMD_DEPOSIT, &d, sizeof d, NULL), 0);
		}
	}
	{
		withdraw w = { .account = 1, .amount = INT64_C(1) << 40, .asset = 0 };
		assert_int_equal(submit(&f, CMD_WITHDRAW, &w, sizeof w, NULL), CQRS_EREJECTED);
	}
	for (int step = 0; step < 4000; step++) {
		uint64_t x = rnd(&seed);
		int rc;
		if (x % 10 < 7) {
			exch_place p;
			random_place(&seed, &p, ++coid);
			place_order c = { .account = p.account, .client_order_id = p.coid, .qty = p.qty,
					  .price = p.price, .instrument = p.instrument, .side = p.side,
					  .type = p.type, .tif = p.tif };
			rc = submit(&f, CMD_PLACE_ORDER, &c, sizeof c, &seq);
		} else if (x % 10 < 9) {
			cancel_order c = { .account = 1 + (x >> 8) % NA, .client_order_id = 1 + (x >> 16) % (coid + 1) };
			rc = submit(&f, CMD_CANCEL_ORDER, &c, sizeof c, &seq);
		} else {
			amend_order c = { .account = 1 + (x >> 8) % NA, .client_order_id = 1 + (x >> 16) % (coid + 1),
					  .qty = 1 + (x >> 40) % 20 };
			rc = submit(&f, CMD_AMEND_ORDER, &c, sizeof c, &seq);
		}
		assert_true(rc == 0 || rc == CQRS_EREJECTED);
		accepted += rc == 0;
		rejected += rc != 0;
	}
	assert_true(accepted > 2000 && rejected > 100);
	/* read-your-writes: the views show the last command once they applied
	 * its seq, and match the model */
	assert_views_match(f.name, &f.m, cqrs_engine_durable_seq(f.e));
	assert_int_equal(cqrs_engine_stop(f.e), 0);
	if (exch_market_check(&f.m, why, sizeof why))
		fail_msg("%s", why);
	cqrs_engine_close(f.e);

	/* a restart on the same journal: the same book and accounts */
	memset(&g, 0, sizeof g);
	memcpy(g.name, f.name, sizeof g.name);
	memcpy(g.dir, f.dir, sizeof g.dir);
	assert_int_equal(cqrs_engine_remove_segments(g.name) >= 0, 1); /* views rebuilt from the journal */
	fx_start(&g);
	assert_views_match(g.name, &g.m, cqrs_engine_durable_seq(g.e));
	assert_int_equal(cqrs_engine_stop(g.e), 0);
	assert_same_market(&f.m, &g.m);
	cqrs_engine_close(g.e);
	exch_market_free(&f.m);
	exch_market_free(&g.m);
	cqrs_engine_remove_segments(g.name);
	tu_rmrf(f.dir);
}

/* A client with legitimate access sending garbage: every command type
 * with random bytes, or random fields within reach of the valid ranges
 * (so that some are accepted). Each is accepted or rejected with a
 * reason; the engine stays healthy, the model keeps its invariants and
 * the views match it. */
static void test_engine_hostile_commands(void **state)
{
	engine_fx f;
	uint64_t seed = 4242;
	int accepted = 0, rejected = 0;
	char why[256];
	(void)state;

	memset(&f, 0, sizeof f);
	tu_unique_name(f.name, sizeof f.name, "exchh");
	assert_int_equal(tu_mkdtemp(f.dir, sizeof f.dir, "exchh"), 0);
	fx_start(&f);
	for (uint64_t a = 1; a <= NA; a += 2) {
		deposit d = { .account = a, .amount = 1000000, .asset = 0 };
		deposit l = { .account = a + 1, .amount = 1000, .asset = 1 };
		assert_int_equal(submit(&f, CMD_DEPOSIT, &d, sizeof d, NULL), 0);
		assert_int_equal(submit(&f, CMD_DEPOSIT, &l, sizeof l, NULL), 0);
	}
	for (int i = 0; i < 6000; i++) {
		uint64_t buf[8];
		uint32_t type = 1 + (uint32_t)(rnd(&seed) % 5), size;
		for (int k = 0; k < 8; k++)
			buf[k] = rnd(&seed);
		if (i % 2) { /* near the valid ranges */
			buf[0] %= NA + 2;                      /* account */
			buf[1] %= 64;                          /* client order id / amount */
			buf[2] %= 200;                         /* qty; a transfer's asset */
			if (type == CMD_DEPOSIT || type == CMD_WITHDRAW)
				buf[2] %= NI + 2;
			buf[3] = (buf[3] % 3) << 32 | (buf[3] >> 8) % 2000; /* instrument, price */
			buf[4] &= 0x0303030303ull;             /* side, type, tif, pads */
		}
		size = type == CMD_PLACE_ORDER ? sizeof(place_order)
		     : type == CMD_CANCEL_ORDER ? sizeof(cancel_order)
		     : type == CMD_AMEND_ORDER ? sizeof(amend_order) : sizeof(deposit);
		int rc = submit(&f, type, buf, size, NULL);
		assert_true(rc == 0 || rc == CQRS_EREJECTED);
		accepted += rc == 0;
		rejected += rc != 0;
	}
	print_message("%d accepted, %d rejected\n", accepted, rejected);
	assert_true(accepted > 100 && rejected > 1000);
	assert_int_equal(cqrs_engine_error(f.e), 0);
	assert_views_match(f.name, &f.m, cqrs_engine_durable_seq(f.e));
	assert_int_equal(cqrs_engine_stop(f.e), 0);
	if (exch_market_check(&f.m, why, sizeof why))
		fail_msg("%s", why);
	cqrs_engine_close(f.e);
	exch_market_free(&f.m);
	cqrs_engine_remove_segments(f.name);
	tu_rmrf(f.dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matching_vs_reference),
		cmocka_unit_test(test_plan_top_matches_book),
		cmocka_unit_test(test_risk_and_priority),
		cmocka_unit_test(test_engine_views_and_replay),
		cmocka_unit_test(test_engine_hostile_commands),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
