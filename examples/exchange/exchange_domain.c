/*
 * examples/exchange/exchange_domain.c - decide, evolve and apply of the
 * exchange (exchange.h): decide turns book.c's plans into events, evolve
 * feeds them back to book.c, the two projections keep the market-data and
 * account views.
 */
#include <string.h>

#include "examples/exchange/exchange.h"

CQRS_RECORD_DEFINE(place_order, "PlaceOrder", PLACE_ORDER_FIELDS)
CQRS_RECORD_DEFINE(cancel_order, "CancelOrder", CANCEL_ORDER_FIELDS)
CQRS_RECORD_DEFINE(amend_order, "AmendOrder", AMEND_ORDER_FIELDS)
CQRS_RECORD_DEFINE(deposit, "Deposit", TRANSFER_FIELDS)
CQRS_RECORD_DEFINE(withdraw, "Withdraw", TRANSFER_FIELDS)
CQRS_RECORD_DEFINE(order_accepted, "OrderAccepted", ORDER_ACCEPTED_FIELDS)
CQRS_RECORD_DEFINE(trade, "Trade", TRADE_FIELDS)
CQRS_RECORD_DEFINE(order_cancelled, "OrderCancelled", ORDER_DONE_FIELDS)
CQRS_RECORD_DEFINE(order_filled, "OrderFilled", ORDER_DONE_FIELDS)
CQRS_RECORD_DEFINE(order_expired, "OrderExpired", ORDER_DONE_FIELDS)
CQRS_RECORD_DEFINE(order_amended, "OrderAmended", ORDER_AMENDED_FIELDS)
CQRS_RECORD_DEFINE(balance_changed, "BalanceChanged", BALANCE_CHANGED_FIELDS)
CQRS_RECORD_DEFINE(book_level, "BookLevel", BOOK_LEVEL_FIELDS)
CQRS_RECORD_DEFINE(top_of_book, "TopOfBook", TOP_OF_BOOK_FIELDS)
CQRS_RECORD_DEFINE(open_order, "OpenOrder", OPEN_ORDER_FIELDS)
CQRS_RECORD_DEFINE(trade_row, "TradeRow", TRADE_ROW_FIELDS)
CQRS_RECORD_DEFINE(position, "Position", POSITION_FIELDS)

/* The market data after a command (TOP_FIELDS). */
typedef struct md_after {
	exch_top top;
	uint32_t last_price, changed;
	uint64_t last_qty, trades;
} md_after;

static void md_compute(const exch_market *m, uint32_t instrument, const exch_plan *plan,
		       md_after *md)
{
	const exch_book *b = &m->books[instrument];
	exch_top before = exch_market_top(m, instrument);

	md->top = plan->top;
	md->trades = b->trades + plan->nfills;
	md->last_price = plan->nfills ? plan->fills[plan->nfills - 1].price : b->last_price;
	md->last_qty = plan->nfills ? plan->fills[plan->nfills - 1].qty : b->last_qty;
	md->changed = plan->nfills || memcmp(&before, &plan->top, sizeof before) != 0;
}

#define SET_TOP(ev, md)                                                                \
	do {                                                                           \
		(ev).bid = (md).top.bid;                                               \
		(ev).ask = (md).top.ask;                                               \
		(ev).bid_qty = (md).top.bid_qty;                                       \
		(ev).ask_qty = (md).top.ask_qty;                                       \
		(ev).last_price = (md).last_price;                                     \
		(ev).top_changed = (md).changed;                                       \
		(ev).last_qty = (md).last_qty;                                         \
		(ev).trades = (md).trades;                                             \
	} while (0)

/* ---- decide ---- */

static void fill_done(order_filled *ev, const exch_order *o, const md_after *md)
{
	memset(ev, 0, sizeof *ev);
	ev->order_id = o->order_id;
	ev->account = o->account;
	ev->client_order_id = o->coid;
	ev->price = o->price;
	ev->instrument = o->instrument;
	ev->side = o->side;
	SET_TOP(*ev, *md);
}

static int decide_place(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const place_order *c = cmd;
	const exch_market *m = model;
	exch_place p = { c->account, c->client_order_id, c->qty, c->price, c->instrument,
			 c->side, c->type, c->tif };
	exch_plan plan;
	md_after md;
	order_accepted acc;
	order_filled done;
	uint64_t agg = BOOK_AGG(c->instrument);
	int rc = 0;

	exch_plan_place(m, &p, &plan);
	if (plan.reject)
		return cqrs_reject(ctx, "%s", plan.why);
	md_compute(m, c->instrument, &plan, &md);
	for (uint32_t i = 0; i < plan.nfills && rc == 0; i++) {
		const exch_fill *f = &plan.fills[i];
		const exch_order *o = &m->orders[f->slot];
		trade t;
		memset(&t, 0, sizeof t);
		t.trade_no = m->books[c->instrument].trades + i + 1;
		t.maker_order_id = o->order_id;
		t.taker_order_id = plan.order_id;
		t.maker_account = o->account;
		t.maker_client_order_id = o->coid;
		t.taker_account = c->account;
		t.qty = f->qty;
		t.maker_leaves = f->maker_leaves;
		t.price = f->price;
		t.instrument = c->instrument;
		t.taker_side = c->side;
		rc = cqrs_emit(ctx, EV_TRADE, agg, &t);
		if (rc == 0 && f->maker_leaves == 0) {
			fill_done(&done, o, &md);
			rc = cqrs_emit(ctx, EV_ORDER_FILLED, agg, &done);
		}
	}
	if (rc)
		return rc;
	memset(&acc, 0, sizeof acc);
	acc.order_id = plan.order_id;
	acc.account = c->account;
	acc.client_order_id = c->client_order_id;
	acc.qty = c->qty;
	acc.filled = plan.filled;
	acc.leaves = plan.rests ? plan.leaves : 0;
	acc.price = c->type == EXCH_LIMIT ? c->price : 0;
	acc.instrument = c->instrument;
	acc.side = c->side;
	acc.type = c->type;
	acc.tif = c->tif;
	SET_TOP(acc, md);
	rc = cqrs_emit(ctx, EV_ORDER_ACCEPTED, agg, &acc);
	if (rc || (plan.filled < c->qty && plan.expired == 0))
		return rc;
	memset(&done, 0, sizeof done);
	done.order_id = plan.order_id;
	done.account = c->account;
	done.client_order_id = c->client_order_id;
	done.price = acc.price;
	done.instrument = c->instrument;
	done.side = c->side;
	SET_TOP(done, md);
	if (plan.filled == c->qty)
		return cqrs_emit(ctx, EV_ORDER_FILLED, agg, &done);
	done.qty = plan.expired;
	return cqrs_emit(ctx, EV_ORDER_EXPIRED, agg, &done);
}

static int decide_cancel(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const cancel_order *c = cmd;
	const exch_market *m = model;
	exch_plan plan;
	order_filled ev; /* OrderCancelled has the same layout (ORDER_DONE_FIELDS) */
	const exch_order *o;
	md_after md;

	exch_plan_cancel(m, c->account, c->client_order_id, &plan);
	if (plan.reject)
		return cqrs_reject(ctx, "%s", plan.why);
	o = exch_market_find(m, c->account, c->client_order_id);
	md_compute(m, o->instrument, &plan, &md);
	fill_done(&ev, o, &md);
	ev.qty = o->leaves;
	return cqrs_emit(ctx, EV_ORDER_CANCELLED, BOOK_AGG(o->instrument), &ev);
}

static int decide_amend(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const amend_order *c = cmd;
	const exch_market *m = model;
	exch_plan plan;
	order_amended ev;
	const exch_order *o;
	md_after md;

	exch_plan_amend(m, c->account, c->client_order_id, c->qty, c->price, &plan);
	if (plan.reject)
		return cqrs_reject(ctx, "%s", plan.why);
	o = exch_market_find(m, c->account, c->client_order_id);
	md_compute(m, o->instrument, &plan, &md);
	memset(&ev, 0, sizeof ev);
	ev.order_id = o->order_id;
	ev.account = o->account;
	ev.client_order_id = o->coid;
	ev.old_leaves = o->leaves;
	ev.leaves = c->qty;
	ev.old_price = o->price;
	ev.price = c->price ? c->price : o->price;
	ev.instrument = o->instrument;
	ev.side = o->side;
	ev.kept_priority = (uint8_t)plan.keep_priority;
	SET_TOP(ev, md);
	return cqrs_emit(ctx, EV_ORDER_AMENDED, BOOK_AGG(o->instrument), &ev);
}

static int decide_transfer(cqrs_ctx *ctx, const deposit *c, const exch_market *m, int64_t delta,
			   uint32_t reason)
{
	exch_plan plan;
	balance_changed ev;

	exch_plan_balance(m, c->account, c->asset, delta, &plan);
	if (plan.reject)
		return cqrs_reject(ctx, "%s", plan.why);
	memset(&ev, 0, sizeof ev);
	ev.account = c->account;
	ev.delta = delta;
	ev.balance = m->accounts[c->account].asset[c->asset].total + delta;
	ev.asset = c->asset;
	ev.reason = reason;
	return cqrs_emit(ctx, EV_BALANCE_CHANGED, ACCOUNT_AGG(c->account), &ev);
}

static int decide_deposit(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const deposit *c = cmd;
	if (c->amount <= 0)
		return cqrs_reject(ctx, "deposit amount %lld: must be positive", (long long)c->amount);
	return decide_transfer(ctx, c, model, c->amount, CMD_DEPOSIT);
}

static int decide_withdraw(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const withdraw *c = cmd;
	if (c->amount <= 0)
		return cqrs_reject(ctx, "withdraw amount %lld: must be positive", (long long)c->amount);
	return decide_transfer(ctx, (const deposit *)c, model, -c->amount, CMD_WITHDRAW);
}

/* ---- evolve ---- */

static void evolve_accepted(void *model, const cqrs_event *ev)
{
	const order_accepted *e = ev->data;
	exch_place p = { e->account, e->client_order_id, e->qty, e->price, e->instrument,
			 e->side, e->type, e->tif };
	exch_apply_accepted(model, &p, e->order_id, e->leaves);
}

static void evolve_trade(void *model, const cqrs_event *ev)
{
	const trade *e = ev->data;
	exch_apply_trade(model, e->instrument, e->maker_account, e->maker_client_order_id,
			 e->taker_account, e->price, e->qty);
}

static void evolve_cancelled(void *model, const cqrs_event *ev)
{
	const order_cancelled *e = ev->data;
	exch_apply_cancel(model, e->account, e->client_order_id);
}

static void evolve_amended(void *model, const cqrs_event *ev)
{
	const order_amended *e = ev->data;
	exch_apply_amend(model, e->account, e->client_order_id, e->leaves, e->price,
			 e->kept_priority);
}

static void evolve_balance(void *model, const cqrs_event *ev)
{
	const balance_changed *e = ev->data;
	exch_apply_balance(model, e->account, e->asset, e->delta);
}

/* ---- apply: market data (book_levels, top_of_book) ---- */

/* Adds dq lots and dn orders to a level; a level without orders leaves. */
static int level_add(cqrs_proj *p, uint32_t instrument, uint32_t side, uint64_t price,
		     int64_t dq, int64_t dn)
{
	uint64_t key = LEVEL_KEY(instrument, side, price);
	book_level row;

	if (cqrs_proj_get(p, VIEW_BOOK_LEVELS, &key, 8, &row)) {
		memset(&row, 0, sizeof row);
		row.level_key = key;
		row.instrument = instrument;
		row.side = side;
		row.price = price;
	}
	row.qty += (uint64_t)dq;
	row.orders += (uint64_t)dn;
	if (row.orders == 0) {
		int rc = cqrs_proj_delete(p, VIEW_BOOK_LEVELS, &key, 8);
		return rc == CQRS_ENOTFOUND ? 0 : rc;
	}
	return cqrs_proj_upsert(p, VIEW_BOOK_LEVELS, &row);
}

/* top_of_book from an event's TOP_FIELDS (a whole row: no lookup),
 * written only when the command changed it. */
#define TOP_SET(p, ev, e)                                                              \
	((e)->top_changed ? top_set(p, ev, (e)->instrument, (e)->bid, (e)->bid_qty, (e)->ask, \
				    (e)->ask_qty, (e)->last_price, (e)->last_qty, (e)->trades) \
			  : 0)

static int top_set(cqrs_proj *p, const cqrs_event *ev, uint32_t instrument, uint32_t bid,
		   uint64_t bid_qty, uint32_t ask, uint64_t ask_qty, uint32_t last_price,
		   uint64_t last_qty, uint64_t trades)
{
	top_of_book row = { .instrument = instrument, .bid = bid, .bid_qty = bid_qty, .ask = ask,
			    .ask_qty = ask_qty, .last_price = last_price, .last_qty = last_qty,
			    .trades = trades, .seq = ev->seq, .updated_at = ev->timestamp_ns };

	return cqrs_proj_upsert(p, VIEW_TOP_OF_BOOK, &row);
}

static int apply_market(cqrs_proj *p, const cqrs_event *ev, void *arg)
{
	int rc;
	(void)arg;

	switch (ev->type) {
	case EV_ORDER_ACCEPTED: {
		const order_accepted *e = ev->data;
		if (e->leaves && (rc = level_add(p, e->instrument, e->side, e->price, (int64_t)e->leaves, 1)))
			return rc;
		return TOP_SET(p, ev, e);
	}
	case EV_TRADE: { /* the OrderAccepted after the trades carries the top */
		const trade *e = ev->data;
		return level_add(p, e->instrument, e->taker_side ^ 1u, e->price, -(int64_t)e->qty,
				 e->maker_leaves ? 0 : -1);
	}
	case EV_ORDER_CANCELLED: {
		const order_cancelled *e = ev->data;
		rc = level_add(p, e->instrument, e->side, e->price, -(int64_t)e->qty, -1);
		return rc ? rc : TOP_SET(p, ev, e);
	}
	case EV_ORDER_AMENDED: {
		const order_amended *e = ev->data;
		if (e->kept_priority) {
			rc = level_add(p, e->instrument, e->side, e->price,
				       (int64_t)e->leaves - (int64_t)e->old_leaves, 0);
		} else {
			rc = level_add(p, e->instrument, e->side, e->old_price, -(int64_t)e->old_leaves, -1);
			rc = rc ? rc : level_add(p, e->instrument, e->side, e->price, (int64_t)e->leaves, 1);
		}
		return rc ? rc : TOP_SET(p, ev, e);
	}
	default:
		return 0;
	}
}

/* ---- apply: accounts (orders, trades, positions) ---- */

static int position_change(cqrs_proj *p, uint64_t account, uint32_t asset, int64_t dq,
			   uint32_t price, int kind)
{
	uint64_t key = POSITION_KEY(account, asset);
	position row;

	if (cqrs_proj_get(p, VIEW_POSITIONS, &key, 8, &row)) {
		memset(&row, 0, sizeof row);
		row.position_key = key;
		row.account = account;
		row.asset = asset;
	}
	if (kind == 1)
		exch_holding_buy(&row.qty, &row.cost, price, (uint64_t)dq);
	else if (kind == 2)
		exch_holding_sell(&row.qty, &row.cost, &row.realized, price, (uint64_t)dq);
	else
		exch_holding_transfer(&row.qty, &row.cost, dq);
	if (asset == 0)
		row.cost = 0;
	row.avg_price = row.qty > 0 ? row.cost / row.qty : 0;
	return cqrs_proj_upsert(p, VIEW_POSITIONS, &row);
}

static int apply_accounts(cqrs_proj *p, const cqrs_event *ev, void *arg)
{
	int rc;
	(void)arg;

	switch (ev->type) {
	case EV_ORDER_ACCEPTED: {
		const order_accepted *e = ev->data;
		open_order row;
		if (!e->leaves)
			return 0;
		memset(&row, 0, sizeof row);
		row.order_id = e->order_id;
		row.account = e->account;
		row.client_order_id = e->client_order_id;
		row.qty = e->qty;
		row.leaves = e->leaves;
		row.price = e->price;
		row.instrument = e->instrument;
		row.side = e->side;
		row.tif = e->tif;
		row.placed_at = ev->timestamp_ns;
		return cqrs_proj_upsert(p, VIEW_ORDERS, &row);
	}
	case EV_TRADE: {
		const trade *e = ev->data;
		trade_row t;
		uint64_t buyer = e->taker_side == EXCH_BUY ? e->taker_account : e->maker_account;
		uint64_t seller = e->taker_side == EXCH_BUY ? e->maker_account : e->taker_account;
		int64_t cash = (int64_t)e->price * (int64_t)e->qty;

		if (e->maker_leaves == 0) {
			rc = cqrs_proj_delete(p, VIEW_ORDERS, &e->maker_order_id, 8);
		} else {
			open_order row;
			rc = cqrs_proj_get(p, VIEW_ORDERS, &e->maker_order_id, 8, &row);
			if (rc == 0) {
				row.leaves = e->maker_leaves;
				rc = cqrs_proj_upsert(p, VIEW_ORDERS, &row);
			}
		}
		if (rc && rc != CQRS_ENOTFOUND)
			return rc;
		memset(&t, 0, sizeof t);
		t.trade_key = TRADE_KEY(e->instrument, e->trade_no);
		t.instrument = e->instrument;
		t.seq = ev->seq;
		t.trade_no = e->trade_no;
		t.price = e->price;
		t.qty = e->qty;
		t.maker_order_id = e->maker_order_id;
		t.taker_order_id = e->taker_order_id;
		t.maker_account = e->maker_account;
		t.taker_account = e->taker_account;
		t.taker_side = e->taker_side;
		t.at = ev->timestamp_ns;
		if ((rc = cqrs_proj_upsert(p, VIEW_TRADES, &t)))
			return rc;
		if ((rc = position_change(p, buyer, e->instrument, (int64_t)e->qty, e->price, 1)) ||
		    (rc = position_change(p, buyer, 0, -cash, 0, 0)) ||
		    (rc = position_change(p, seller, e->instrument, (int64_t)e->qty, e->price, 2)))
			return rc;
		return position_change(p, seller, 0, cash, 0, 0);
	}
	case EV_ORDER_CANCELLED: {
		const order_cancelled *e = ev->data;
		rc = cqrs_proj_delete(p, VIEW_ORDERS, &e->order_id, 8);
		return rc == CQRS_ENOTFOUND ? 0 : rc;
	}
	case EV_ORDER_AMENDED: {
		const order_amended *e = ev->data;
		open_order row;
		if (cqrs_proj_get(p, VIEW_ORDERS, &e->order_id, 8, &row))
			return 0;
		row.leaves = e->leaves;
		row.qty = e->leaves;
		row.price = e->price;
		return cqrs_proj_upsert(p, VIEW_ORDERS, &row);
	}
	case EV_BALANCE_CHANGED: {
		const balance_changed *e = ev->data;
		return position_change(p, e->account, e->asset, e->delta, 0, 0);
	}
	default:
		return 0;
	}
}

int exchange_register(cqrs_engine *e, const exch_market *m, const exchange_sizes *sz)
{
	static const char *const level_order[] = { "instrument", "side", "price", NULL };
	static const char *const trade_order[] = { "instrument", "seq", NULL };
	cqrs_projection_def market = {
		.name = "market",
		.views = { { .name = "book_levels", .row = book_level_schema(), .key_field = "level_key",
			     .capacity = sz->levels, .ordered_fields = level_order },
			   { .name = "top_of_book", .row = top_of_book_schema(), .key_field = "instrument",
			     .capacity = (uint64_t)m->lim.ninstruments * 2 + 16 } },
		.nviews = 2,
		.apply = apply_market,
		.thread = 0,
		.on_error = CQRS_ON_ERROR_SKIP,
	};
	cqrs_projection_def accounts = {
		.name = "accounts",
		.views = { { .name = "orders", .row = open_order_schema(), .key_field = "order_id",
			     .index_fields = { "account" }, .capacity = sz->orders },
			   { .name = "trades", .row = trade_row_schema(), .key_field = "trade_key",
			     .capacity = sz->trades, .ordered_fields = trade_order },
			   { .name = "positions", .row = position_schema(), .key_field = "position_key",
			     .index_fields = { "account" }, .capacity = sz->positions } },
		.nviews = 3,
		.apply = apply_accounts,
		.thread = 1,
		.on_error = CQRS_ON_ERROR_SKIP,
	};
	int rc = 0;

	rc = rc ? rc : cqrs_register_command(e, CMD_PLACE_ORDER, place_order_schema(), decide_place);
	rc = rc ? rc : cqrs_register_command(e, CMD_CANCEL_ORDER, cancel_order_schema(), decide_cancel);
	rc = rc ? rc : cqrs_register_command(e, CMD_AMEND_ORDER, amend_order_schema(), decide_amend);
	rc = rc ? rc : cqrs_register_command(e, CMD_DEPOSIT, deposit_schema(), decide_deposit);
	rc = rc ? rc : cqrs_register_command(e, CMD_WITHDRAW, withdraw_schema(), decide_withdraw);
	rc = rc ? rc : cqrs_register_event(e, EV_ORDER_ACCEPTED, order_accepted_schema(), evolve_accepted);
	rc = rc ? rc : cqrs_register_event(e, EV_TRADE, trade_schema(), evolve_trade);
	rc = rc ? rc : cqrs_register_event(e, EV_ORDER_CANCELLED, order_cancelled_schema(), evolve_cancelled);
	rc = rc ? rc : cqrs_register_event(e, EV_ORDER_AMENDED, order_amended_schema(), evolve_amended);
	rc = rc ? rc : cqrs_register_event(e, EV_ORDER_FILLED, order_filled_schema(), NULL);
	rc = rc ? rc : cqrs_register_event(e, EV_ORDER_EXPIRED, order_expired_schema(), NULL);
	rc = rc ? rc : cqrs_register_event(e, EV_BALANCE_CHANGED, balance_changed_schema(), evolve_balance);
	rc = rc ? rc : cqrs_register_projection(e, &market);
	rc = rc ? rc : cqrs_register_projection(e, &accounts);
	return rc;
}
