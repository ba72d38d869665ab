/*
 * examples/exchange/book.c - the order books, accounts and risk checks of
 * book.h: plans (read-only) and applies (one event each).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/exchange/book.h"

#define OPP(side) ((side) ^ 1)

/* ---- the order table: (account, coid) -> slot ---- */

static uint64_t key_hash(uint64_t account, uint64_t coid)
{
	uint64_t h = account * 0x9e3779b97f4a7c15ull ^ coid * 0xc2b2ae3d27d4eb4full;
	return h ^ (h >> 29);
}

static uint32_t table_find(const exch_market *m, uint64_t account, uint64_t coid)
{
	for (uint64_t i = key_hash(account, coid) & m->tmask;; i = (i + 1) & m->tmask) {
		uint32_t s = m->table[i];
		if (s == 0)
			return EXCH_NONE;
		const exch_order *o = &m->orders[s - 1];
		if (o->account == account && o->coid == coid)
			return s - 1;
	}
}

static void table_insert(exch_market *m, uint32_t slot)
{
	const exch_order *o = &m->orders[slot];
	uint64_t i = key_hash(o->account, o->coid) & m->tmask;

	while (m->table[i])
		i = (i + 1) & m->tmask;
	m->table[i] = slot + 1;
}

/* Linear probing's backward-shift delete: no tombstones. */
static void table_remove(exch_market *m, uint32_t slot)
{
	const exch_order *o = &m->orders[slot];
	uint64_t i = key_hash(o->account, o->coid) & m->tmask;

	while (m->table[i] != slot + 1)
		i = (i + 1) & m->tmask;
	for (uint64_t j = i;;) {
		j = (j + 1) & m->tmask;
		uint32_t s = m->table[j];
		if (s == 0)
			break;
		const exch_order *q = &m->orders[s - 1];
		uint64_t home = key_hash(q->account, q->coid) & m->tmask;
		/* q may move to i when its home is not in (i, j] cyclically */
		if (((j - home) & m->tmask) >= ((j - i) & m->tmask)) {
			m->table[i] = s;
			i = j;
		}
	}
	m->table[i] = 0;
}

/* ---- levels and their bitmaps ---- */

static void bit_set(exch_half *h, uint32_t price)
{
	h->bits[price >> 6] |= 1ull << (price & 63);
	h->sum[price >> 12] |= 1ull << ((price >> 6) & 63);
}

static void bit_clear(exch_half *h, uint32_t price)
{
	h->bits[price >> 6] &= ~(1ull << (price & 63));
	if (!h->bits[price >> 6])
		h->sum[price >> 12] &= ~(1ull << ((price >> 6) & 63));
}

/* The highest set price below `price` (0: none). */
static uint32_t bit_below(const exch_half *h, uint32_t price)
{
	uint32_t w = price >> 6;
	uint64_t bits = h->bits[w] & ((1ull << (price & 63)) - 1);

	if (bits)
		return (w << 6) | (63 - (uint32_t)__builtin_clzll(bits));
	for (int64_t s = w >> 6; s >= 0; s--) {
		uint64_t sum = h->sum[s];
		if ((uint32_t)s == w >> 6)
			sum &= (1ull << (w & 63)) - 1;
		if (sum) {
			uint32_t ww = ((uint32_t)s << 6) | (63 - (uint32_t)__builtin_clzll(sum));
			return (ww << 6) | (63 - (uint32_t)__builtin_clzll(h->bits[ww]));
		}
	}
	return 0;
}

/* The lowest set price above `price` (0: none). */
static uint32_t bit_above(const exch_half *h, uint32_t price)
{
	uint32_t w, p = price + 1;
	uint64_t bits;

	if (p >= EXCH_TICKS)
		return 0;
	w = p >> 6;
	bits = h->bits[w] & (~0ull << (p & 63));
	if (bits)
		return (w << 6) | (uint32_t)__builtin_ctzll(bits);
	for (uint32_t s = w >> 6; s < EXCH_SUMWORDS; s++) {
		uint64_t sum = h->sum[s];
		if (s == w >> 6)
			sum &= (w & 63) == 63 ? 0 : ~0ull << ((w & 63) + 1);
		if (sum) {
			uint32_t ww = (s << 6) | (uint32_t)__builtin_ctzll(sum);
			return (ww << 6) | (uint32_t)__builtin_ctzll(h->bits[ww]);
		}
	}
	return 0;
}

uint32_t exch_market_next_level(const exch_market *m, uint32_t instrument, int side, uint32_t price)
{
	const exch_half *h = &m->books[instrument].half[side];
	return side == EXCH_BUY ? bit_below(h, price) : bit_above(h, price);
}

/* price is better than the side's best (or the side is empty). */
static int better(int side, uint32_t price, uint32_t best)
{
	return best == 0 || (side == EXCH_BUY ? price > best : price < best);
}

static int crosses(int side, uint32_t limit, uint32_t maker_price)
{
	return side == EXCH_BUY ? maker_price <= limit : maker_price >= limit;
}

static void level_push(exch_market *m, uint32_t slot)
{
	exch_order *o = &m->orders[slot];
	exch_half *h = &m->books[o->instrument].half[o->side];
	exch_level *l = &h->levels[o->price];

	o->next = EXCH_NONE;
	o->prev = l->tail;
	if (l->tail == EXCH_NONE) {
		l->head = slot;
		bit_set(h, o->price);
		if (better(o->side, o->price, h->best))
			h->best = o->price;
	} else {
		m->orders[l->tail].next = slot;
	}
	l->tail = slot;
	l->count++;
	l->qty += o->leaves;
}

static void level_unlink(exch_market *m, uint32_t slot)
{
	exch_order *o = &m->orders[slot];
	exch_half *h = &m->books[o->instrument].half[o->side];
	exch_level *l = &h->levels[o->price];

	if (o->prev != EXCH_NONE)
		m->orders[o->prev].next = o->next;
	else
		l->head = o->next;
	if (o->next != EXCH_NONE)
		m->orders[o->next].prev = o->prev;
	else
		l->tail = o->prev;
	l->count--;
	l->qty -= o->leaves;
	if (l->count == 0) {
		bit_clear(h, o->price);
		if (h->best == o->price)
			h->best = o->side == EXCH_BUY ? bit_below(h, o->price) : bit_above(h, o->price);
	}
}

/* ---- init ---- */

int exch_market_init(exch_market *m, const exch_limits *lim)
{
	uint64_t tsize = 16;

	memset(m, 0, sizeof *m);
	if (!lim->ninstruments || lim->ninstruments > EXCH_MAX_INSTRUMENTS || !lim->max_accounts ||
	    !lim->max_orders || lim->max_orders >= EXCH_NONE / 2 || lim->max_position <= 0 ||
	    lim->max_position > EXCH_MAX_POSITION)
		return -EINVAL;
	m->lim = *lim;
	while (tsize < 2ull * lim->max_orders)
		tsize <<= 1;
	m->tmask = tsize - 1;
	m->orders = calloc(lim->max_orders, sizeof *m->orders);
	m->table = calloc(tsize, sizeof *m->table);
	m->accounts = calloc((size_t)lim->max_accounts + 1, sizeof *m->accounts);
	if (!m->orders || !m->table || !m->accounts)
		goto nomem;
	for (uint32_t i = 1; i <= lim->ninstruments; i++) {
		for (int s = 0; s < 2; s++) {
			exch_half *h = &m->books[i].half[s];
			h->levels = malloc(EXCH_TICKS * sizeof *h->levels);
			h->bits = calloc(EXCH_BITWORDS, sizeof *h->bits);
			if (!h->levels || !h->bits)
				goto nomem;
			for (uint32_t p = 0; p < EXCH_TICKS; p++)
				h->levels[p] = (exch_level){ .head = EXCH_NONE, .tail = EXCH_NONE };
		}
	}
	for (uint32_t i = 0; i < lim->max_orders; i++)
		m->orders[i].next = i + 1 < lim->max_orders ? i + 1 : EXCH_NONE;
	m->free_head = 0;
	m->next_order_id = 1;
	return 0;
nomem:
	exch_market_free(m);
	return -ENOMEM;
}

void exch_market_free(exch_market *m)
{
	for (uint32_t i = 0; i <= EXCH_MAX_INSTRUMENTS; i++) {
		for (int s = 0; s < 2; s++) {
			free(m->books[i].half[s].levels);
			free(m->books[i].half[s].bits);
		}
	}
	free(m->orders);
	free(m->table);
	free(m->accounts);
	memset(m, 0, sizeof *m);
}

/* ---- reading ---- */

exch_top exch_market_top(const exch_market *m, uint32_t instrument)
{
	const exch_book *b = &m->books[instrument];
	exch_top t = { b->half[EXCH_BUY].best, b->half[EXCH_SELL].best, 0, 0 };

	if (t.bid)
		t.bid_qty = b->half[EXCH_BUY].levels[t.bid].qty;
	if (t.ask)
		t.ask_qty = b->half[EXCH_SELL].levels[t.ask].qty;
	return t;
}

const exch_order *exch_market_find(const exch_market *m, uint64_t account, uint64_t coid)
{
	uint32_t s = table_find(m, account, coid);
	return s == EXCH_NONE ? NULL : &m->orders[s];
}

/* ---- plans ---- */

static int refuse(exch_plan *out, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(exch_plan *out, int code, const char *fmt, ...)
{
	va_list ap;

	out->reject = code;
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof out->why, fmt, ap);
	va_end(ap);
	return code;
}

static void plan_reset(exch_plan *out)
{
	out->reject = 0;
	out->why[0] = 0;
	out->order_id = 0;
	out->nfills = out->rests = 0;
	out->filled = out->leaves = out->expired = 0;
	out->cost = 0;
	out->keep_priority = 0;
}

/* Sets *t's `side` half after removing q lots at price (a level the side
 * has), or adding them when add. */
static void top_remove(const exch_market *m, uint32_t instrument, int side, uint32_t price,
		       uint64_t q, exch_top *t)
{
	uint32_t *best = side == EXCH_BUY ? &t->bid : &t->ask;
	uint64_t *size = side == EXCH_BUY ? &t->bid_qty : &t->ask_qty;

	if (price != *best)
		return;
	if (*size > q) {
		*size -= q;
		return;
	}
	*best = exch_market_next_level(m, instrument, side, price);
	*size = *best ? exch_market_level(m, instrument, side, *best)->qty : 0;
}

static void top_add(int side, uint32_t price, uint64_t q, exch_top *t)
{
	uint32_t *best = side == EXCH_BUY ? &t->bid : &t->ask;
	uint64_t *size = side == EXCH_BUY ? &t->bid_qty : &t->ask_qty;

	if (better(side, price, *best)) {
		*best = price;
		*size = q;
	} else if (price == *best) {
		*size += q;
	}
}

static int check_account(const exch_market *m, uint64_t account, exch_plan *out)
{
	if (account == 0 || account > m->lim.max_accounts)
		return refuse(out, EXCH_R_BAD_ARGS, "account %llu out of range 1..%u",
			      (unsigned long long)account, m->lim.max_accounts);
	return 0;
}

void exch_plan_place(const exch_market *m, const exch_place *p, exch_plan *out)
{
	const exch_book *b;
	const exch_account *a;
	uint64_t rem;
	uint32_t opp_best;
	int opp;

	plan_reset(out);
	if (check_account(m, p->account, out))
		return;
	if (p->instrument == 0 || p->instrument > m->lim.ninstruments || p->side > EXCH_SELL ||
	    p->type > EXCH_MARKET || p->tif > EXCH_FOK || p->qty == 0 || p->qty > (1ull << 40)) {
		refuse(out, EXCH_R_BAD_ARGS, "bad order: instrument %u, side %u, type %u, tif %u, qty %llu",
		       p->instrument, p->side, p->type, p->tif, (unsigned long long)p->qty);
		return;
	}
	if (p->type == EXCH_LIMIT && (p->price == 0 || p->price >= EXCH_TICKS)) {
		refuse(out, EXCH_R_BAD_ARGS, "price %u outside 1..%u", p->price, EXCH_TICKS - 1);
		return;
	}
	if (table_find(m, p->account, p->coid) != EXCH_NONE) {
		refuse(out, EXCH_R_DUPLICATE, "account %llu already has open order %llu",
		       (unsigned long long)p->account, (unsigned long long)p->coid);
		return;
	}
	b = &m->books[p->instrument];
	a = &m->accounts[p->account];
	opp = OPP(p->side);
	out->top = exch_market_top(m, p->instrument);
	out->order_id = m->next_order_id;

	/* Walk the other side from its best, FIFO within each level. */
	rem = p->qty;
	for (uint32_t price = b->half[opp].best; price && rem && out->nfills < EXCH_MAX_FILLS;
	     price = exch_market_next_level(m, p->instrument, opp, price)) {
		if (p->type == EXCH_LIMIT && !crosses(p->side, p->price, price))
			break;
		const exch_level *l = &b->half[opp].levels[price];
		uint64_t took = 0;
		for (uint32_t s = l->head; s != EXCH_NONE && rem && out->nfills < EXCH_MAX_FILLS;
		     s = m->orders[s].next) {
			const exch_order *o = &m->orders[s];
			uint64_t q = o->leaves < rem ? o->leaves : rem;
			out->fills[out->nfills++] = (exch_fill){ s, price, q, o->leaves - q };
			rem -= q;
			took += q;
			out->cost += (int64_t)price * (int64_t)q;
		}
		top_remove(m, p->instrument, opp, price, took, &out->top);
	}
	out->filled = p->qty - rem;
	if (p->tif == EXCH_FOK && rem) { /* all or nothing: nothing */
		out->top = exch_market_top(m, p->instrument);
		out->nfills = 0;
		out->filled = 0;
		out->cost = 0;
		out->expired = p->qty;
		return;
	}
	if (p->type == EXCH_MARKET && out->filled == 0) {
		refuse(out, EXCH_R_NO_LIQUIDITY, "market order: no %s in instrument %u",
		       p->side == EXCH_BUY ? "asks" : "bids", p->instrument);
		return;
	}
	/* What rests: a GTC limit's remainder, unless the fill cap stopped it
	 * while the book still crosses (then it expires: it must not rest
	 * crossed). */
	opp_best = p->side == EXCH_BUY ? out->top.ask : out->top.bid;
	if (rem && p->type == EXCH_LIMIT && p->tif == EXCH_GTC &&
	    (out->nfills < EXCH_MAX_FILLS || !opp_best || !crosses(p->side, p->price, opp_best))) {
		out->rests = 1;
		out->leaves = rem;
		top_add(p->side, p->price, rem, &out->top);
	} else {
		out->expired = rem;
	}
	if (out->rests && m->live >= m->lim.max_orders) {
		refuse(out, EXCH_R_BOOK_FULL, "book full: %u resting orders", m->live);
		return;
	}
	/* Risk. */
	if (p->side == EXCH_BUY) {
		const exch_holding *cash = &a->asset[0], *pos = &a->asset[p->instrument];
		int64_t need = out->cost + (int64_t)out->leaves * p->price;
		int64_t lots = pos->total + pos->buy_open + (int64_t)out->filled + (int64_t)out->leaves;
		if (need > cash->total - cash->held) {
			refuse(out, EXCH_R_CASH, "insufficient cash: needs %lld, free %lld",
			       (long long)need, (long long)(cash->total - cash->held));
			return;
		}
		if (lots > m->lim.max_position) {
			refuse(out, EXCH_R_POSITION, "position limit: %lld lots of instrument %u > %lld",
			       (long long)lots, p->instrument, (long long)m->lim.max_position);
			return;
		}
	} else {
		const exch_holding *pos = &a->asset[p->instrument];
		int64_t need = (int64_t)(out->filled + out->leaves);
		if (need > pos->total - pos->held) {
			refuse(out, EXCH_R_LOTS, "insufficient lots of instrument %u: sells %lld, free %lld",
			       p->instrument, (long long)need, (long long)(pos->total - pos->held));
			return;
		}
	}
}

void exch_plan_cancel(const exch_market *m, uint64_t account, uint64_t coid, exch_plan *out)
{
	uint32_t s;
	const exch_order *o;

	plan_reset(out);
	if (check_account(m, account, out))
		return;
	s = table_find(m, account, coid);
	if (s == EXCH_NONE) {
		refuse(out, EXCH_R_UNKNOWN, "account %llu has no open order %llu",
		       (unsigned long long)account, (unsigned long long)coid);
		return;
	}
	o = &m->orders[s];
	out->order_id = o->order_id;
	out->expired = o->leaves;
	out->top = exch_market_top(m, o->instrument);
	top_remove(m, o->instrument, o->side, o->price, o->leaves, &out->top);
}

void exch_plan_amend(const exch_market *m, uint64_t account, uint64_t coid, uint64_t new_qty,
		     uint32_t new_price, exch_plan *out)
{
	const exch_order *o;
	const exch_holding *h;
	uint32_t s, price;

	plan_reset(out);
	if (check_account(m, account, out))
		return;
	s = table_find(m, account, coid);
	if (s == EXCH_NONE) {
		refuse(out, EXCH_R_UNKNOWN, "account %llu has no open order %llu",
		       (unsigned long long)account, (unsigned long long)coid);
		return;
	}
	o = &m->orders[s];
	price = new_price ? new_price : o->price;
	out->order_id = o->order_id;
	if (new_qty == 0 || new_qty > (1ull << 40) || price >= EXCH_TICKS) {
		refuse(out, EXCH_R_BAD_ARGS, "amend: qty %llu (cancel to remove), price %u",
		       (unsigned long long)new_qty, price);
		return;
	}
	out->top = exch_market_top(m, o->instrument);
	{
		uint32_t opp_best = o->side == EXCH_BUY ? out->top.ask : out->top.bid;
		if (opp_best && crosses(o->side, price, opp_best)) {
			refuse(out, EXCH_R_CROSSES, "amend: price %u would cross the book at %u", price,
			       opp_best);
			return;
		}
	}
	h = &m->accounts[account].asset[o->side == EXCH_BUY ? 0 : o->instrument];
	if (o->side == EXCH_BUY) {
		int64_t more = (int64_t)new_qty * price - (int64_t)o->leaves * o->price;
		const exch_holding *pos = &m->accounts[account].asset[o->instrument];
		if (more > h->total - h->held) {
			refuse(out, EXCH_R_CASH, "insufficient cash: amend needs %lld more, free %lld",
			       (long long)more, (long long)(h->total - h->held));
			return;
		}
		if (pos->total + pos->buy_open - (int64_t)o->leaves + (int64_t)new_qty >
		    m->lim.max_position) {
			refuse(out, EXCH_R_POSITION, "position limit: amend past %lld lots",
			       (long long)m->lim.max_position);
			return;
		}
	} else if ((int64_t)new_qty - (int64_t)o->leaves > h->total - h->held) {
		refuse(out, EXCH_R_LOTS, "insufficient lots: amend needs %lld more, free %lld",
		       (long long)((int64_t)new_qty - (int64_t)o->leaves), (long long)(h->total - h->held));
		return;
	}
	out->keep_priority = price == o->price && new_qty <= o->leaves;
	out->leaves = new_qty;
	top_remove(m, o->instrument, o->side, o->price, o->leaves, &out->top);
	top_add(o->side, price, new_qty, &out->top);
}

void exch_plan_balance(const exch_market *m, uint64_t account, uint32_t asset, int64_t delta,
		       exch_plan *out)
{
	const exch_holding *h;

	plan_reset(out);
	if (check_account(m, account, out))
		return;
	if (asset > m->lim.ninstruments || delta == 0 || delta > (INT64_C(1) << 60) ||
	    delta < -(INT64_C(1) << 60)) {
		refuse(out, EXCH_R_BAD_ARGS, "asset %u (0..%u), amount %lld", asset, m->lim.ninstruments,
		       (long long)delta);
		return;
	}
	h = &m->accounts[account].asset[asset];
	if (delta < 0 && -delta > h->total - h->held) {
		refuse(out, asset ? EXCH_R_LOTS : EXCH_R_CASH, "withdraw %lld: free %lld",
		       (long long)-delta, (long long)(h->total - h->held));
		return;
	}
	if (delta > 0 && !asset && delta > EXCH_CASH_MAX - m->cash_in) {
		refuse(out, EXCH_R_CASH_LIMIT, "deposit %lld: the market holds %lld cash, at most %lld",
		       (long long)delta, (long long)m->cash_in, (long long)EXCH_CASH_MAX);
		return;
	}
	if (delta > 0 && asset && h->total + h->buy_open + delta > m->lim.max_position) {
		refuse(out, EXCH_R_POSITION, "position limit: deposit past %lld lots",
		       (long long)m->lim.max_position);
		return;
	}
}

/* ---- applies ---- */

void exch_holding_buy(int64_t *qty, int64_t *cost, uint32_t price, uint64_t q)
{
	*qty += (int64_t)q;
	*cost += (int64_t)price * (int64_t)q;
}

void exch_holding_sell(int64_t *qty, int64_t *cost, int64_t *realized, uint32_t price, uint64_t q)
{
	int64_t basis = *qty > 0 ? (int64_t)((__int128)*cost * (int64_t)q / *qty) : 0;

	*qty -= (int64_t)q;
	*cost -= basis;
	*realized += (int64_t)price * (int64_t)q - basis;
}

void exch_holding_transfer(int64_t *qty, int64_t *cost, int64_t delta)
{
	if (delta < 0 && *qty > 0)
		*cost -= (int64_t)((__int128)*cost * -delta / *qty);
	*qty += delta;
}

static void free_slot(exch_market *m, uint32_t slot)
{
	table_remove(m, slot);
	m->orders[slot].used = 0;
	m->orders[slot].next = m->free_head;
	m->free_head = slot;
	m->live--;
}

/* Applies take events from the journal: one written by a market with
 * more instruments or accounts than this one (a restart with other
 * limits) is ignored rather than followed out of bounds. */
static int out_of_range(const exch_market *m, uint32_t instrument, uint64_t account)
{
	return instrument > m->lim.ninstruments || account == 0 || account > m->lim.max_accounts;
}

void exch_apply_trade(exch_market *m, uint32_t instrument, uint64_t maker_account,
		      uint64_t maker_coid, uint64_t taker_account, uint32_t price, uint64_t qty)
{
	uint32_t s = table_find(m, maker_account, maker_coid);
	exch_order *o;
	exch_account *maker, *taker, *buyer, *seller;
	exch_holding *bp, *sp;
	int64_t cash = (int64_t)price * (int64_t)qty;

	if (s == EXCH_NONE || out_of_range(m, instrument, taker_account) || instrument == 0)
		return; /* decide only emits trades against resting makers */
	o = &m->orders[s];
	instrument = o->instrument; /* the maker's book, whatever the event says */
	maker = &m->accounts[maker_account];
	taker = &m->accounts[taker_account];
	/* the maker's resting quantity and what it held */
	o->leaves -= qty;
	m->books[instrument].half[o->side].levels[o->price].qty -= qty;
	if (o->side == EXCH_BUY) {
		maker->asset[0].held -= cash;
		maker->asset[instrument].buy_open -= (int64_t)qty;
		buyer = maker;
		seller = taker;
	} else {
		maker->asset[instrument].held -= (int64_t)qty;
		buyer = taker;
		seller = maker;
	}
	if (o->leaves == 0) {
		o->leaves = 0;
		level_unlink(m, s);
		free_slot(m, s);
	}
	bp = &buyer->asset[instrument];
	sp = &seller->asset[instrument];
	buyer->asset[0].total -= cash;
	exch_holding_buy(&bp->total, &bp->cost, price, qty);
	seller->asset[0].total += cash;
	exch_holding_sell(&sp->total, &sp->cost, &sp->realized, price, qty);
	m->books[instrument].trades++;
	m->books[instrument].last_price = price;
	m->books[instrument].last_qty = qty;
}

void exch_apply_accepted(exch_market *m, const exch_place *p, uint64_t order_id, uint64_t leaves)
{
	exch_account *a = &m->accounts[p->account];
	uint32_t s;
	exch_order *o;

	m->next_order_id = order_id + 1;
	if (!leaves || m->free_head == EXCH_NONE || out_of_range(m, p->instrument, p->account) ||
	    p->instrument == 0 || p->side > EXCH_SELL || p->price == 0 || p->price >= EXCH_TICKS)
		return;
	s = m->free_head;
	o = &m->orders[s];
	m->free_head = o->next;
	m->live++;
	*o = (exch_order){ .order_id = order_id, .account = p->account, .coid = p->coid,
			   .leaves = leaves, .qty = p->qty, .price = p->price,
			   .instrument = (uint16_t)p->instrument, .side = p->side, .used = 1 };
	table_insert(m, s);
	level_push(m, s);
	if (p->side == EXCH_BUY) {
		a->asset[0].held += (int64_t)leaves * p->price;
		a->asset[p->instrument].buy_open += (int64_t)leaves;
	} else {
		a->asset[p->instrument].held += (int64_t)leaves;
	}
}

static void release(exch_market *m, const exch_order *o)
{
	exch_account *a = &m->accounts[o->account];

	if (o->side == EXCH_BUY) {
		a->asset[0].held -= (int64_t)o->leaves * o->price;
		a->asset[o->instrument].buy_open -= (int64_t)o->leaves;
	} else {
		a->asset[o->instrument].held -= (int64_t)o->leaves;
	}
}

void exch_apply_cancel(exch_market *m, uint64_t account, uint64_t coid)
{
	uint32_t s = table_find(m, account, coid);

	if (s == EXCH_NONE)
		return;
	release(m, &m->orders[s]);
	level_unlink(m, s);
	free_slot(m, s);
}

void exch_apply_amend(exch_market *m, uint64_t account, uint64_t coid, uint64_t new_qty,
		      uint32_t new_price, int keep_priority)
{
	uint32_t s = table_find(m, account, coid);
	exch_order *o;
	exch_account *a = &m->accounts[account];

	if (s == EXCH_NONE || new_qty == 0 || new_price >= EXCH_TICKS)
		return;
	o = &m->orders[s];
	release(m, o);
	if (keep_priority) {
		m->books[o->instrument].half[o->side].levels[o->price].qty -= o->leaves - new_qty;
		o->leaves = new_qty;
	} else {
		level_unlink(m, s);
		o->leaves = new_qty;
		if (new_price)
			o->price = new_price;
		level_push(m, s);
	}
	o->qty = new_qty;
	if (o->side == EXCH_BUY) {
		a->asset[0].held += (int64_t)o->leaves * o->price;
		a->asset[o->instrument].buy_open += (int64_t)o->leaves;
	} else {
		a->asset[o->instrument].held += (int64_t)o->leaves;
	}
}

void exch_apply_balance(exch_market *m, uint64_t account, uint32_t asset, int64_t delta)
{
	exch_holding *h;

	if (out_of_range(m, asset, account))
		return;
	h = &m->accounts[account].asset[asset];
	exch_holding_transfer(&h->total, &h->cost, delta);
	if (asset == 0) {
		h->cost = 0;
		m->cash_in += delta;
	}
}

void exch_place_order(exch_market *m, const exch_place *p, exch_plan *out)
{
	exch_plan_place(m, p, out);
	if (out->reject)
		return;
	for (uint32_t i = 0; i < out->nfills; i++) {
		const exch_order *o = &m->orders[out->fills[i].slot];
		exch_apply_trade(m, p->instrument, o->account, o->coid, p->account, out->fills[i].price,
				 out->fills[i].qty);
	}
	exch_apply_accepted(m, p, out->order_id, out->rests ? out->leaves : 0);
}
