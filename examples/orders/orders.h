/*
 * examples/orders/orders.h - the reference domain: customers and orders.
 *
 * Commands, events and view rows are schema records (cqrs_schema.h): one
 * definition gives the C struct and the descriptor that journals, views,
 * the CLI and the bindings use to decode them.
 *
 * Aggregates: a customer's aggregate id is its customer_id; an order's is
 * ORDER_AGG(order_id) (top bits set), so both share one version space.
 * Money is in cents (i64). Order status: 1 created, 2 shipped, 3 completed,
 * 4 cancelled. Ids are 1..2^62-1.
 */
#ifndef CQRS_EXAMPLES_ORDERS_H
#define CQRS_EXAMPLES_ORDERS_H

#include "cqrs.h"

#define ORDER_AGG(order_id) ((order_id) | (UINT64_C(1) << 62))

enum order_status {
	ORDER_CREATED = 1,
	ORDER_SHIPPED = 2,
	ORDER_COMPLETED = 3,
	ORDER_CANCELLED = 4,
};

/* ---- commands ---- */
enum {
	CMD_REGISTER_CUSTOMER = 1,
	CMD_DEACTIVATE_CUSTOMER = 2,
	CMD_CREATE_ORDER = 3,
	CMD_SHIP_ORDER = 4,
	CMD_COMPLETE_ORDER = 5,
	CMD_CANCEL_ORDER = 6,
};

#define REGISTER_CUSTOMER_FIELDS(F) F(u64, customer_id) F(str, name, 32)
CQRS_RECORD_DECLARE(register_customer, REGISTER_CUSTOMER_FIELDS)
#define CUSTOMER_REF_FIELDS(F) F(u64, customer_id)
CQRS_RECORD_DECLARE(deactivate_customer, CUSTOMER_REF_FIELDS)
#define CREATE_ORDER_FIELDS(F)                                               \
	F(u64, order_id) F(u64, customer_id) F(u32, item_count) F(u32, pad0) \
	F(i64, total) F(str, shipping_address, 64)
CQRS_RECORD_DECLARE(create_order, CREATE_ORDER_FIELDS)
#define ORDER_REF_FIELDS(F) F(u64, order_id)
CQRS_RECORD_DECLARE(ship_order, ORDER_REF_FIELDS)
CQRS_RECORD_DECLARE(complete_order, ORDER_REF_FIELDS)
CQRS_RECORD_DECLARE(cancel_order, ORDER_REF_FIELDS)

/* ---- events ---- */
enum {
	EV_CUSTOMER_REGISTERED = 1,
	EV_CUSTOMER_DEACTIVATED = 2,
	EV_ORDER_CREATED = 3,
	EV_ORDER_SHIPPED = 4,
	EV_ORDER_COMPLETED = 5,
	EV_ORDER_CANCELLED = 6,
};

CQRS_RECORD_DECLARE(customer_registered, REGISTER_CUSTOMER_FIELDS)
CQRS_RECORD_DECLARE(customer_deactivated, CUSTOMER_REF_FIELDS)
#define ORDER_CREATED_FIELDS(F)                                              \
	F(u64, order_id) F(u64, customer_id) F(u32, item_count) F(u32, pad0) \
	F(i64, total) F(str, shipping_address, 64) F(str, customer_name, 32)
CQRS_RECORD_DECLARE(order_created, ORDER_CREATED_FIELDS)
/* Shipped/completed/cancelled carry the customer and total, so projections
 * never need to look anything up. */
#define ORDER_CHANGED_FIELDS(F) F(u64, order_id) F(u64, customer_id) F(i64, total) F(u32, prior_status) F(u32, pad0)
CQRS_RECORD_DECLARE(order_shipped, ORDER_CHANGED_FIELDS)
CQRS_RECORD_DECLARE(order_completed, ORDER_CHANGED_FIELDS)
CQRS_RECORD_DECLARE(order_cancelled, ORDER_CHANGED_FIELDS)

/* ---- view rows ---- */
#define ORDER_SUMMARY_FIELDS(F)                                              \
	F(u64, order_id) F(u64, customer_id) F(str, customer_name, 32)       \
	F(u32, item_count) F(u32, status) F(i64, total) F(ts, created_at)    \
	F(ts, shipped_at)
CQRS_RECORD_DECLARE(order_summary, ORDER_SUMMARY_FIELDS)
#define CUSTOMER_STATS_FIELDS(F)                                             \
	F(u64, customer_id) F(str, name, 32) F(bool, active) F(u8, pad0)     \
	F(u16, pad1) F(u32, pad2) F(u64, orders) F(u64, active_orders)       \
	F(i64, total_spent)
CQRS_RECORD_DECLARE(customer_stats, CUSTOMER_STATS_FIELDS)

/* View indexes within the projections below. active_orders holds the
 * order_summaries rows of orders still created or shipped (same schema,
 * same customer_id index): "active orders of customer C" walks only them. */
enum { VIEW_ORDER_SUMMARIES = 0, VIEW_ACTIVE_ORDERS = 1 };
enum { VIEW_CUSTOMER_STATS = 0 };

/* ---- the write model ---- */
typedef struct orders_customer {
	uint8_t active;
	uint8_t pad[7];
	char name[32];
} orders_customer;

typedef struct orders_order {
	uint64_t customer_id;
	int64_t total;
	uint32_t status;
	uint32_t pad;
} orders_order;

typedef struct orders_model {
	cqrs_store *customers; /* customer_id -> orders_customer */
	cqrs_store *orders;    /* order_id -> orders_order */
} orders_model;

/* order_capacity: orders the write model is sized for up front (past it,
 * the store grows by a rehash on the command thread: a stall). */
int orders_model_init(orders_model *m, uint64_t order_capacity);
void orders_model_free(orders_model *m);

/* Registers the domain's commands, events and projections (views
 * order_summaries and active_orders, customer_stats) on an opened engine.
 * The capacities size the three views (rows); a view that fills up grows
 * (its projection is rebuilt at twice the size), so size them for the
 * expected data. */
int orders_register(cqrs_engine *e, uint64_t order_capacity, uint64_t active_capacity,
		    uint64_t customer_capacity);

#endif
