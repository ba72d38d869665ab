/*
 * examples/exchange/book.h - the matching engine as a plain library: order
 * books with price-time priority, the accounts they trade for, and the
 * risk checks. No engine in here: cqrs-exchange calls it from decide (plan,
 * read-only) and evolve (apply), the reference test and the plain-loop
 * bench call it directly, in the same two steps.
 *
 * Units: prices are integer ticks 1..EXCH_TICKS-1, quantities integer lots,
 * cash in tick*lot units (a buy of q lots at p ticks costs p*q). Assets:
 * 0 is cash, 1..ninstruments an instrument's lots. Accounts are
 * 1..max_accounts (an array, no hash); instruments 1..ninstruments.
 *
 * Two steps per command, as the engine splits them:
 *   exch_plan_*  reads the market and says what the command does: the
 *                fills of a new order (maker, price, quantity, in
 *                price-time order), what rests or expires, the top of the
 *                instrument's book afterwards, or why it is refused
 *                (exch_plan.why). It changes nothing.
 *   exch_apply_* changes the market by one event's worth (a trade, an
 *                order resting, a cancel, an amend, a balance change). Fed
 *                the same events in the same order, two markets end equal:
 *                replay rebuilds the book from the journal this way.
 *
 * Layout: per instrument and side, an array of EXCH_TICKS price levels
 * (head and tail of a FIFO of orders, total quantity, order count) with a
 * two-level bitmap of the non-empty ones, so the next level after an
 * emptied best is two count-trailing-zeros away. Orders live in one pool
 * sized at init (a free list, doubly linked within their level: O(1)
 * cancel) and are found by (account, client order id) through an
 * open-addressing table. Hot-path cost: no allocation, no syscall; a plan
 * is O(fills + levels passed), an apply O(1) (an emptied best level:
 * O(bitmap words), at most 2 x 16).
 *
 * Risk: a buy holds cash for what rests (limit x leaves) and must afford
 * its fills; a sell holds lots for what rests and must own what it sells
 * (no short selling); an account's lots plus its resting buys never pass
 * the market's max_position per instrument. Holdings never go negative.
 */
#ifndef CQRS_EXAMPLES_EXCHANGE_BOOK_H
#define CQRS_EXAMPLES_EXCHANGE_BOOK_H

#include <stddef.h>
#include <stdint.h>

#define EXCH_MAX_INSTRUMENTS 8
#define EXCH_TICKS 65536u   /* prices 1..EXCH_TICKS-1 */
#define EXCH_MAX_FILLS 20   /* makers one order takes from; the rest expires */
#define EXCH_NONE UINT32_MAX
#define EXCH_MAX_POSITION (INT64_C(1) << 44)

enum exch_side { EXCH_BUY = 0, EXCH_SELL = 1 };
enum exch_type { EXCH_LIMIT = 0, EXCH_MARKET = 1 };
enum exch_tif { EXCH_GTC = 0, EXCH_IOC = 1, EXCH_FOK = 2 };

/* Why a plan refuses a command (exch_plan.reject; 0: accepted). */
enum exch_reject {
	EXCH_OK = 0,
	EXCH_R_BAD_ARGS,     /* unknown instrument/account/side/type, zero qty, price out of band */
	EXCH_R_DUPLICATE,    /* the account has an open order with this client order id */
	EXCH_R_UNKNOWN,      /* no open order with this (account, client order id) */
	EXCH_R_CASH,         /* not enough free cash */
	EXCH_R_LOTS,         /* not enough free lots to sell or withdraw */
	EXCH_R_POSITION,     /* the position limit */
	EXCH_R_BOOK_FULL,    /* the order pool is full */
	EXCH_R_CROSSES,      /* an amended price would cross the book */
	EXCH_R_NO_LIQUIDITY, /* a market order with nothing to take */
	EXCH_R_CASH_LIMIT,   /* a deposit past EXCH_CASH_MAX in the market */
};

/* One resting order (pool slot). */
typedef struct exch_order {
	uint64_t order_id;
	uint64_t account;
	uint64_t coid;   /* client order id: unique among the account's open orders */
	uint64_t leaves; /* what still rests */
	uint64_t qty;    /* placed (or last amended) quantity */
	uint32_t prev, next; /* slots within the level's FIFO, EXCH_NONE at the ends */
	uint32_t price;
	uint16_t instrument;
	uint8_t side;
	uint8_t used;
} exch_order;

typedef struct exch_level {
	uint32_t head, tail; /* oldest, newest: EXCH_NONE when empty */
	uint32_t count;
	uint32_t pad;
	uint64_t qty;
} exch_level;

#define EXCH_BITWORDS (EXCH_TICKS / 64)
#define EXCH_SUMWORDS (EXCH_BITWORDS / 64)
typedef struct exch_half {
	exch_level *levels;   /* [EXCH_TICKS] */
	uint64_t *bits;       /* [EXCH_BITWORDS]: level non-empty */
	uint64_t sum[EXCH_SUMWORDS]; /* bit w: bits[w] != 0 */
	uint32_t best;        /* best price, 0: empty */
} exch_half;

typedef struct exch_book {
	exch_half half[2];    /* [EXCH_BUY] bids, [EXCH_SELL] asks */
	uint64_t trades;      /* trades so far (the next trade's number - 1) */
	uint32_t last_price;
	uint32_t pad;
	uint64_t last_qty;
} exch_book;

/* What an account has of one asset. */
typedef struct exch_holding {
	int64_t total;    /* owned (cash: balance; lots: position) */
	int64_t held;     /* held by resting orders (<= total) */
	int64_t buy_open; /* lots of resting buys (position limit) */
	int64_t cost;     /* cost basis of total (lots only) */
	int64_t realized; /* realized P&L (lots only) */
} exch_holding;

typedef struct exch_account {
	exch_holding asset[EXCH_MAX_INSTRUMENTS + 1]; /* [0] cash */
} exch_account;

typedef struct exch_limits {
	uint32_t ninstruments;  /* 1..EXCH_MAX_INSTRUMENTS */
	uint32_t max_accounts;  /* accounts 1..max_accounts */
	uint32_t max_orders;    /* resting orders at once (the pool) */
	uint32_t pad;
	int64_t max_position;   /* lots per account and instrument, at most
				   EXCH_MAX_POSITION (so that a position's cost,
				   lots x ticks, fits an int64 many times over) */
} exch_limits;

typedef struct exch_market {
	exch_limits lim;
	exch_book books[EXCH_MAX_INSTRUMENTS + 1]; /* [1..ninstruments] */
	exch_order *orders;     /* [max_orders] */
	uint32_t free_head;     /* free list through exch_order.next */
	uint32_t live;          /* resting orders */
	uint32_t *table;        /* slot + 1, 0 empty; tmask + 1 entries */
	uint64_t tmask;
	exch_account *accounts; /* [max_accounts + 1] */
	uint64_t next_order_id; /* the id the next accepted order gets (from 1) */
	int64_t cash_in;        /* cash deposited less withdrawn, all accounts (at
				   most EXCH_CASH_MAX: no balance can overflow) */
} exch_market;

#define EXCH_CASH_MAX (INT64_C(1) << 62)

/* The top of one book. Prices 0: that side is empty. */
typedef struct exch_top {
	uint32_t bid, ask;
	uint64_t bid_qty, ask_qty;
} exch_top;

typedef struct exch_fill {
	uint32_t slot;         /* the maker's pool slot (valid until the next apply) */
	uint32_t price;
	uint64_t qty;
	uint64_t maker_leaves; /* the maker's leaves after this fill (0: filled) */
} exch_fill;

/* What one command does (exch_plan_*). */
typedef struct exch_plan {
	int reject;            /* enum exch_reject */
	char why[120];         /* the reason, for cqrs_reject */
	uint64_t order_id;     /* the new order's id (place) */
	uint32_t nfills;
	uint32_t rests;        /* 1: leaves rest in the book */
	exch_fill fills[EXCH_MAX_FILLS];
	uint64_t filled;       /* sum of fills */
	uint64_t leaves;       /* resting (rests) */
	uint64_t expired;      /* neither filled nor resting (IOC, FOK, market, cap) */
	int64_t cost;          /* cash of the fills */
	int keep_priority;     /* amend */
	exch_top top;          /* the instrument's top after the command */
} exch_plan;

/* A new order, as the PlaceOrder command carries it. */
typedef struct exch_place {
	uint64_t account, coid, qty;
	uint32_t price;        /* limit; ignored for market orders */
	uint32_t instrument;
	uint8_t side, type, tif;
} exch_place;

/* Allocates the books, pool and accounts (calloc: init only). 0, -EINVAL,
 * -ENOMEM. */
int exch_market_init(exch_market *m, const exch_limits *lim);
void exch_market_free(exch_market *m);

/* ---- plans: read-only ---- */
void exch_plan_place(const exch_market *m, const exch_place *p, exch_plan *out);
void exch_plan_cancel(const exch_market *m, uint64_t account, uint64_t coid, exch_plan *out);
/* new_qty: the new leaves; price 0 keeps the price. Quantity down at the
 * same price keeps priority, anything else goes to the back of the level. */
void exch_plan_amend(const exch_market *m, uint64_t account, uint64_t coid, uint64_t new_qty,
		     uint32_t new_price, exch_plan *out);
/* delta > 0 deposit, < 0 withdraw (refused past the free amount). */
void exch_plan_balance(const exch_market *m, uint64_t account, uint32_t asset, int64_t delta,
		       exch_plan *out);

/* ---- applies: one event each ---- */
/* A fill of the resting order (maker_account, maker_coid) by a taker. */
void exch_apply_trade(exch_market *m, uint32_t instrument, uint64_t maker_account,
		      uint64_t maker_coid, uint64_t taker_account, uint32_t price, uint64_t qty);
/* The taker after its fills: takes order_id; rests leaves at its limit. */
void exch_apply_accepted(exch_market *m, const exch_place *p, uint64_t order_id, uint64_t leaves);
void exch_apply_cancel(exch_market *m, uint64_t account, uint64_t coid);
void exch_apply_amend(exch_market *m, uint64_t account, uint64_t coid, uint64_t new_qty,
		      uint32_t new_price, int keep_priority);
void exch_apply_balance(exch_market *m, uint64_t account, uint32_t asset, int64_t delta);

/* Runs plan and apply of a place for callers without an engine (the
 * reference test, the plain-loop bench); the plan is left in *out. */
void exch_place_order(exch_market *m, const exch_place *p, exch_plan *out);

/* ---- reading ---- */
exch_top exch_market_top(const exch_market *m, uint32_t instrument);
/* The resting order, or NULL. */
const exch_order *exch_market_find(const exch_market *m, uint64_t account, uint64_t coid);
static inline const exch_level *exch_market_level(const exch_market *m, uint32_t instrument,
						  int side, uint32_t price)
{
	return &m->books[instrument].half[side].levels[price];
}
/* The next non-empty level after price, away from the best (bids: lower,
 * asks: higher); 0 when none. */
uint32_t exch_market_next_level(const exch_market *m, uint32_t instrument, int side,
				uint32_t price);

/* Position arithmetic, shared with the positions projection: a buy adds
 * lots at cost; a sell removes them at the average cost (integer
 * division), the difference to the proceeds realized. */
void exch_holding_buy(int64_t *qty, int64_t *cost, uint32_t price, uint64_t q);
void exch_holding_sell(int64_t *qty, int64_t *cost, int64_t *realized, uint32_t price, uint64_t q);
/* A deposit (delta > 0, at cost 0) or withdrawal (delta < 0, removing its
 * share of the cost) of lots; cash (asset 0) has no cost. */
void exch_holding_transfer(int64_t *qty, int64_t *cost, int64_t delta);

/* Checks the invariants: best bid < best ask, every level's quantity and
 * count equal its orders', the bitmaps equal the non-empty levels, holds
 * equal the resting orders', holdings never negative. 0, or -1 with a
 * description in why. O(orders + levels). */
int exch_market_check(const exch_market *m, char *why, size_t len);

#endif
