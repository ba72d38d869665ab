/*
 * examples/exchange/exchange.h - a matching engine on cqrs: the commands,
 * events and view rows of the exchange domain (schema records), and its
 * registration on an engine.
 *
 * The write model is an exch_market (book.h): decide plans a command
 * against it (matching with price-time priority, risk checks) and emits
 * the plan's events; evolve applies each event to it (also on replay, so
 * a restart rebuilds the books from the journal).
 *
 * A PlaceOrder emits, in order: per fill a Trade (and an OrderFilled for
 * a maker it empties), then OrderAccepted (the order's id, what filled,
 * what rests, the market data after the command), then OrderFilled
 * for the taker when it filled completely, or OrderExpired for what
 * neither filled nor rests (IOC, FOK, market, the fill cap). A cancel
 * emits OrderCancelled, an amend OrderAmended, Deposit/Withdraw a
 * BalanceChanged. Trades move cash and lots between the accounts without
 * a BalanceChanged of their own (the Trade says it all).
 *
 * Aggregates: an instrument's book is aggregate BOOK_AGG(instrument); an
 * account's balances ACCOUNT_AGG(account).
 *
 * Views (projection "market", thread 0; "accounts", thread 1):
 *   book_levels  (instrument, side, price) -> qty, orders; ordered index
 *                (instrument, side, price): a side's top N levels are one
 *                cqrs_view_range (bids descending, asks ascending)
 *   top_of_book  instrument -> best bid/ask and sizes, last trade, trades,
 *                seq (the event that last changed any of them)
 *   orders       open orders by order_id, index account
 *   trades       the last EXCH_TRADES_KEPT trades per instrument, ordered
 *                index (instrument, seq)
 *   positions    (account, asset) -> qty, cost, avg price, realized P&L;
 *                asset 0 is cash
 */
#ifndef CQRS_EXAMPLES_EXCHANGE_H
#define CQRS_EXAMPLES_EXCHANGE_H

#include "cqrs.h"
#include "examples/exchange/book.h"

#define BOOK_AGG(instrument) ((uint64_t)(instrument) | (UINT64_C(1) << 61))
#define ACCOUNT_AGG(account) ((uint64_t)(account) | (UINT64_C(1) << 62))
#define LEVEL_KEY(instrument, side, price) \
	((uint64_t)(instrument) << 40 | (uint64_t)(side) << 32 | (uint64_t)(price))
#define POSITION_KEY(account, asset) ((uint64_t)(account) << 8 | (uint64_t)(asset))
#define EXCH_TRADES_KEPT 8192u /* per instrument, in the trades view */
#define TRADE_KEY(instrument, trade_no) \
	((uint64_t)(instrument) << 32 | ((trade_no) & (EXCH_TRADES_KEPT - 1)))

/* ---- commands ---- */
enum {
	CMD_PLACE_ORDER = 1,
	CMD_CANCEL_ORDER = 2,
	CMD_AMEND_ORDER = 3,
	CMD_DEPOSIT = 4,
	CMD_WITHDRAW = 5,
};

/* side: 0 buy, 1 sell; type: 0 limit, 1 market; tif: 0 GTC, 1 IOC, 2 FOK */
#define PLACE_ORDER_FIELDS(F)                                                \
	F(u64, account) F(u64, client_order_id) F(u64, qty) F(u32, price)   \
	F(u32, instrument) F(u8, side) F(u8, type) F(u8, tif) F(u8, pad0)   \
	F(u32, pad1)
CQRS_RECORD_DECLARE(place_order, PLACE_ORDER_FIELDS)
#define CANCEL_ORDER_FIELDS(F) F(u64, account) F(u64, client_order_id)
CQRS_RECORD_DECLARE(cancel_order, CANCEL_ORDER_FIELDS)
/* qty: the new open quantity; price 0 keeps the price */
#define AMEND_ORDER_FIELDS(F) \
	F(u64, account) F(u64, client_order_id) F(u64, qty) F(u32, price) F(u32, pad0)
CQRS_RECORD_DECLARE(amend_order, AMEND_ORDER_FIELDS)
/* asset 0: cash; 1..: an instrument's lots */
#define TRANSFER_FIELDS(F) F(u64, account) F(i64, amount) F(u32, asset) F(u32, pad0)
CQRS_RECORD_DECLARE(deposit, TRANSFER_FIELDS)
CQRS_RECORD_DECLARE(withdraw, TRANSFER_FIELDS)

/* ---- events ---- */
enum {
	EV_ORDER_ACCEPTED = 1,
	EV_TRADE = 2,
	EV_ORDER_CANCELLED = 3,
	EV_ORDER_AMENDED = 4,
	EV_ORDER_FILLED = 5,
	EV_ORDER_EXPIRED = 6,
	EV_BALANCE_CHANGED = 7,
};

/* The instrument's market data after the command: the top of the book
 * (0 prices: empty), the last trade, the trade count; top_changed: any of
 * them differs from before the command (top_of_book is written only then). */
#define TOP_FIELDS(F)                                                        \
	F(u32, bid) F(u32, ask) F(u64, bid_qty) F(u64, ask_qty)             \
	F(u32, last_price) F(u32, top_changed) F(u64, last_qty) F(u64, trades)
#define ORDER_ACCEPTED_FIELDS(F)                                             \
	F(u64, order_id) F(u64, account) F(u64, client_order_id) F(u64, qty) \
	F(u64, filled) F(u64, leaves) F(u32, price) F(u32, instrument)       \
	F(u8, side) F(u8, type) F(u8, tif) F(u8, pad0) F(u32, pad1) TOP_FIELDS(F)
CQRS_RECORD_DECLARE(order_accepted, ORDER_ACCEPTED_FIELDS)
#define TRADE_FIELDS(F)                                                      \
	F(u64, trade_no) F(u64, maker_order_id) F(u64, taker_order_id)      \
	F(u64, maker_account) F(u64, maker_client_order_id)                  \
	F(u64, taker_account) F(u64, qty) F(u64, maker_leaves) F(u32, price) \
	F(u32, instrument) F(u8, taker_side) F(u8, pad0) F(u16, pad1) F(u32, pad2)
CQRS_RECORD_DECLARE(trade, TRADE_FIELDS)
/* Cancelled, filled, expired: qty is what left the book (cancelled), or
 * 0 (filled), or what expired. */
#define ORDER_DONE_FIELDS(F)                                                 \
	F(u64, order_id) F(u64, account) F(u64, client_order_id) F(u64, qty) \
	F(u32, price) F(u32, instrument) F(u8, side) F(u8, pad0) F(u16, pad1) \
	F(u32, pad2) TOP_FIELDS(F)
CQRS_RECORD_DECLARE(order_cancelled, ORDER_DONE_FIELDS)
CQRS_RECORD_DECLARE(order_filled, ORDER_DONE_FIELDS)
CQRS_RECORD_DECLARE(order_expired, ORDER_DONE_FIELDS)
#define ORDER_AMENDED_FIELDS(F)                                              \
	F(u64, order_id) F(u64, account) F(u64, client_order_id)            \
	F(u64, old_leaves) F(u64, leaves) F(u32, old_price) F(u32, price)    \
	F(u32, instrument) F(u8, side) F(u8, kept_priority) F(u16, pad0) TOP_FIELDS(F)
CQRS_RECORD_DECLARE(order_amended, ORDER_AMENDED_FIELDS)
/* reason: CMD_DEPOSIT or CMD_WITHDRAW; balance: the total after it */
#define BALANCE_CHANGED_FIELDS(F) \
	F(u64, account) F(i64, delta) F(i64, balance) F(u32, asset) F(u32, reason)
CQRS_RECORD_DECLARE(balance_changed, BALANCE_CHANGED_FIELDS)

/* ---- view rows ---- */
#define BOOK_LEVEL_FIELDS(F)                                                 \
	F(u64, level_key) F(u32, instrument) F(u32, side) F(u64, price)     \
	F(u64, qty) F(u64, orders)
CQRS_RECORD_DECLARE(book_level, BOOK_LEVEL_FIELDS)
#define TOP_OF_BOOK_FIELDS(F)                                                \
	F(u64, instrument) F(u64, bid) F(u64, bid_qty) F(u64, ask)          \
	F(u64, ask_qty) F(u64, last_price) F(u64, last_qty) F(u64, trades)   \
	F(u64, seq) F(ts, updated_at)
CQRS_RECORD_DECLARE(top_of_book, TOP_OF_BOOK_FIELDS)
#define OPEN_ORDER_FIELDS(F)                                                 \
	F(u64, order_id) F(u64, account) F(u64, client_order_id) F(u64, qty) \
	F(u64, leaves) F(u32, price) F(u32, instrument) F(u8, side)          \
	F(u8, tif) F(u16, pad0) F(u32, pad1) F(ts, placed_at)
CQRS_RECORD_DECLARE(open_order, OPEN_ORDER_FIELDS)
#define TRADE_ROW_FIELDS(F)                                                  \
	F(u64, trade_key) F(u64, instrument) F(u64, seq) F(u64, trade_no)   \
	F(u64, price) F(u64, qty) F(u64, maker_order_id)                     \
	F(u64, taker_order_id) F(u64, maker_account) F(u64, taker_account)   \
	F(u64, taker_side) F(ts, at)
CQRS_RECORD_DECLARE(trade_row, TRADE_ROW_FIELDS)
#define POSITION_FIELDS(F)                                                   \
	F(u64, position_key) F(u64, account) F(u64, asset) F(i64, qty)      \
	F(i64, cost) F(i64, avg_price) F(i64, realized)
CQRS_RECORD_DECLARE(position, POSITION_FIELDS)

/* View indexes within the projections. */
enum { VIEW_BOOK_LEVELS = 0, VIEW_TOP_OF_BOOK = 1 };
enum { VIEW_ORDERS = 0, VIEW_TRADES = 1, VIEW_POSITIONS = 2 };

/* What the views are sized for (rows; a full view grows by rebuild). */
typedef struct exchange_sizes {
	uint64_t levels, orders, trades, positions;
} exchange_sizes;

/* Registers the commands, events and the two projections on an opened
 * engine whose model is m (initialised with exch_market_init). */
int exchange_register(cqrs_engine *e, const exch_market *m, const exchange_sizes *sz);

#endif
