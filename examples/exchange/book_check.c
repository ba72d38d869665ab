/*
 * examples/exchange/book_check.c - exch_market_check (book.h): the
 * market's invariants, walked in full (tests and debugging, never the hot
 * path): best bid below best ask, every level's totals and bitmap bit
 * equal to its orders', the best prices equal the levels', holds equal the
 * resting orders', no holding negative.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/exchange/book.h"

int exch_market_check(const exch_market *m, char *why, size_t len)
{
	uint32_t live = 0;

#define FAIL(...) do { snprintf(why, len, __VA_ARGS__); return -1; } while (0)
	for (uint32_t i = 1; i <= m->lim.ninstruments; i++) {
		exch_top t = exch_market_top(m, i);
		if (t.bid && t.ask && t.bid >= t.ask)
			FAIL("instrument %u: bid %u >= ask %u", i, t.bid, t.ask);
		for (int s = 0; s < 2; s++) {
			const exch_half *h = &m->books[i].half[s];
			uint32_t best = 0;
			for (uint32_t p = 1; p < EXCH_TICKS; p++) {
				const exch_level *l = &h->levels[p];
				uint64_t q = 0, n = 0;
				int bit = (h->bits[p >> 6] >> (p & 63)) & 1;
				for (uint32_t o = l->head; o != EXCH_NONE; o = m->orders[o].next) {
					const exch_order *ord = &m->orders[o];
					if (!ord->used || ord->price != p || ord->side != s || ord->instrument != i || !ord->leaves)
						FAIL("instrument %u level %u: order slot %u misplaced", i, p, o);
					q += ord->leaves;
					n++;
				}
				if (q != l->qty || n != l->count || bit != (n > 0))
					FAIL("instrument %u side %d level %u: qty %llu/%llu count %llu/%u bit %d",
					     i, s, p, (unsigned long long)q, (unsigned long long)l->qty,
					     (unsigned long long)n, l->count, bit);
				if (n && (!best || (s == EXCH_BUY ? p > best : p < best)))
					best = p;
				live += (uint32_t)n;
			}
			if (best != h->best)
				FAIL("instrument %u side %d: best %u, levels say %u", i, s, h->best, best);
		}
	}
	if (live != m->live)
		FAIL("%u orders in levels, %u live", live, m->live);
	for (uint64_t a = 1; a <= m->lim.max_accounts; a++) {
		for (uint32_t k = 0; k <= m->lim.ninstruments; k++) {
			const exch_holding *h = &m->accounts[a].asset[k];
			if (h->total < 0 || h->held < 0 || h->held > h->total || h->buy_open < 0)
				FAIL("account %llu asset %u: total %lld held %lld buy_open %lld",
				     (unsigned long long)a, k, (long long)h->total, (long long)h->held,
				     (long long)h->buy_open);
		}
	}
	/* holds equal the resting orders' */
	{
		int64_t *hold = calloc(((size_t)m->lim.max_accounts + 1) * (EXCH_MAX_INSTRUMENTS + 1) * 2,
				       sizeof *hold);
		if (!hold)
			FAIL("no memory for the check");
		for (uint32_t s = 0; s < m->lim.max_orders; s++) {
			const exch_order *o = &m->orders[s];
			if (!o->used)
				continue;
			int64_t *row = hold + o->account * (EXCH_MAX_INSTRUMENTS + 1) * 2;
			if (o->side == EXCH_BUY) {
				row[0] += (int64_t)o->leaves * o->price;
				row[2 * o->instrument + 1] += (int64_t)o->leaves;
			} else {
				row[2 * o->instrument] += (int64_t)o->leaves;
			}
		}
		for (uint64_t a = 1; a <= m->lim.max_accounts; a++) {
			int64_t *row = hold + a * (EXCH_MAX_INSTRUMENTS + 1) * 2;
			for (uint32_t k = 0; k <= m->lim.ninstruments; k++) {
				const exch_holding *h = &m->accounts[a].asset[k];
				if (h->held != row[2 * k] || (k && h->buy_open != row[2 * k + 1])) {
					snprintf(why, len, "account %llu asset %u: held %lld, orders %lld; buy_open %lld, orders %lld",
						 (unsigned long long)a, k, (long long)h->held, (long long)row[2 * k],
						 (long long)h->buy_open, (long long)row[2 * k + 1]);
					free(hold);
					return -1;
				}
			}
		}
		free(hold);
	}
#undef FAIL
	return 0;
}
