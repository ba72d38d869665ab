/*
 * examples/orders/orders_domain.c - decide, evolve and apply for customers
 * and orders; the schema descriptors of every record.
 */
#include <string.h>

#include "examples/orders/orders.h"

CQRS_RECORD_DEFINE(register_customer, "RegisterCustomer", REGISTER_CUSTOMER_FIELDS)
CQRS_RECORD_DEFINE(deactivate_customer, "DeactivateCustomer", CUSTOMER_REF_FIELDS)
CQRS_RECORD_DEFINE(create_order, "CreateOrder", CREATE_ORDER_FIELDS)
CQRS_RECORD_DEFINE(ship_order, "ShipOrder", ORDER_REF_FIELDS)
CQRS_RECORD_DEFINE(complete_order, "CompleteOrder", ORDER_REF_FIELDS)
CQRS_RECORD_DEFINE(cancel_order, "CancelOrder", ORDER_REF_FIELDS)
CQRS_RECORD_DEFINE(customer_registered, "CustomerRegistered", REGISTER_CUSTOMER_FIELDS)
CQRS_RECORD_DEFINE(customer_deactivated, "CustomerDeactivated", CUSTOMER_REF_FIELDS)
CQRS_RECORD_DEFINE(order_created, "OrderCreated", ORDER_CREATED_FIELDS)
CQRS_RECORD_DEFINE(order_shipped, "OrderShipped", ORDER_CHANGED_FIELDS)
CQRS_RECORD_DEFINE(order_completed, "OrderCompleted", ORDER_CHANGED_FIELDS)
CQRS_RECORD_DEFINE(order_cancelled, "OrderCancelled", ORDER_CHANGED_FIELDS)
CQRS_RECORD_DEFINE(order_summary, "OrderSummary", ORDER_SUMMARY_FIELDS)
CQRS_RECORD_DEFINE(customer_stats, "CustomerStats", CUSTOMER_STATS_FIELDS)

#define ID_MAX (UINT64_C(1) << 62)

int orders_model_init(orders_model *m, uint64_t order_capacity)
{
	int rc = cqrs_store_create(8, sizeof(orders_customer), 1 << 16, &m->customers);
	if (rc)
		return rc;
	rc = cqrs_store_create(8, sizeof(orders_order), order_capacity, &m->orders);
	if (rc) {
		cqrs_store_destroy(m->customers);
		m->customers = NULL;
	}
	return rc;
}

void orders_model_free(orders_model *m)
{
	cqrs_store_destroy(m->customers);
	cqrs_store_destroy(m->orders);
	m->customers = m->orders = NULL;
}

static const char *status_name(uint32_t s)
{
	switch (s) {
	case ORDER_CREATED: return "created";
	case ORDER_SHIPPED: return "shipped";
	case ORDER_COMPLETED: return "completed";
	case ORDER_CANCELLED: return "cancelled";
	default: return "unknown";
	}
}

/* ---- decide: validate against the write model, emit events ---- */

static int decide_register_customer(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const register_customer *c = cmd;
	orders_model *m = model;
	customer_registered ev;

	if (c->customer_id == 0 || c->customer_id >= ID_MAX)
		return cqrs_reject(ctx, "customer id out of range");
	if (cqrs_store_get(m->customers, &c->customer_id))
		return cqrs_reject(ctx, "customer %llu exists", (unsigned long long)c->customer_id);
	if (c->name[0] == 0)
		return cqrs_reject(ctx, "customer name is empty");
	memset(&ev, 0, sizeof ev);
	ev.customer_id = c->customer_id;
	memcpy(ev.name, c->name, sizeof ev.name);
	return cqrs_emit(ctx, EV_CUSTOMER_REGISTERED, c->customer_id, &ev);
}

static int decide_deactivate_customer(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const deactivate_customer *c = cmd;
	orders_model *m = model;
	const orders_customer *cu = cqrs_store_get(m->customers, &c->customer_id);
	customer_deactivated ev;

	if (!cu)
		return cqrs_reject(ctx, "customer %llu unknown", (unsigned long long)c->customer_id);
	if (!cu->active)
		return cqrs_reject(ctx, "customer %llu already inactive", (unsigned long long)c->customer_id);
	memset(&ev, 0, sizeof ev);
	ev.customer_id = c->customer_id;
	return cqrs_emit(ctx, EV_CUSTOMER_DEACTIVATED, c->customer_id, &ev);
}

static int decide_create_order(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const create_order *c = cmd;
	orders_model *m = model;
	const orders_customer *cu = cqrs_store_get(m->customers, &c->customer_id);
	order_created ev;

	if (c->order_id == 0 || c->order_id >= ID_MAX)
		return cqrs_reject(ctx, "order id out of range");
	if (!cu)
		return cqrs_reject(ctx, "customer %llu unknown", (unsigned long long)c->customer_id);
	if (!cu->active)
		return cqrs_reject(ctx, "customer %llu inactive", (unsigned long long)c->customer_id);
	if (cqrs_store_get(m->orders, &c->order_id))
		return cqrs_reject(ctx, "order %llu exists", (unsigned long long)c->order_id);
	if (c->item_count == 0 || c->total < 0)
		return cqrs_reject(ctx, "order needs items and a non-negative total");
	memset(&ev, 0, sizeof ev);
	ev.order_id = c->order_id;
	ev.customer_id = c->customer_id;
	ev.item_count = c->item_count;
	ev.total = c->total;
	memcpy(ev.shipping_address, c->shipping_address, sizeof ev.shipping_address);
	memcpy(ev.customer_name, cu->name, sizeof ev.customer_name);
	return cqrs_emit(ctx, EV_ORDER_CREATED, ORDER_AGG(c->order_id), &ev);
}

/* Ship, complete and cancel differ only in the allowed prior statuses and
 * the event they emit. */
static int decide_transition(cqrs_ctx *ctx, uint64_t order_id, orders_model *m, uint32_t event,
			     unsigned allowed_mask, const char *verb)
{
	const orders_order *o = cqrs_store_get(m->orders, &order_id);
	order_shipped ev; /* same layout for all three events */

	if (!o)
		return cqrs_reject(ctx, "order %llu unknown", (unsigned long long)order_id);
	if (!(allowed_mask & (1u << o->status)))
		return cqrs_reject(ctx, "cannot %s order %llu: it is %s", verb,
				   (unsigned long long)order_id, status_name(o->status));
	memset(&ev, 0, sizeof ev);
	ev.order_id = order_id;
	ev.customer_id = o->customer_id;
	ev.total = o->total;
	ev.prior_status = o->status;
	return cqrs_emit(ctx, event, ORDER_AGG(order_id), &ev);
}

static int decide_ship_order(cqrs_ctx *ctx, const void *cmd, void *model)
{
	return decide_transition(ctx, ((const ship_order *)cmd)->order_id, model, EV_ORDER_SHIPPED,
				 1u << ORDER_CREATED, "ship");
}

static int decide_complete_order(cqrs_ctx *ctx, const void *cmd, void *model)
{
	return decide_transition(ctx, ((const complete_order *)cmd)->order_id, model,
				 EV_ORDER_COMPLETED, 1u << ORDER_SHIPPED, "complete");
}

static int decide_cancel_order(cqrs_ctx *ctx, const void *cmd, void *model)
{
	return decide_transition(ctx, ((const cancel_order *)cmd)->order_id, model,
				 EV_ORDER_CANCELLED, 1u << ORDER_CREATED | 1u << ORDER_SHIPPED,
				 "cancel");
}

/* ---- evolve: the write model follows the events (also on replay) ---- */

static void evolve_customer_registered(void *model, const cqrs_event *ev)
{
	const customer_registered *e = ev->data;
	orders_customer *cu = cqrs_store_upsert(((orders_model *)model)->customers, &e->customer_id, NULL);

	if (cu) {
		cu->active = 1;
		memcpy(cu->name, e->name, sizeof cu->name);
	}
}

static void evolve_customer_deactivated(void *model, const cqrs_event *ev)
{
	const customer_deactivated *e = ev->data;
	orders_customer *cu = cqrs_store_get(((orders_model *)model)->customers, &e->customer_id);

	if (cu)
		cu->active = 0;
}

static void evolve_order_created(void *model, const cqrs_event *ev)
{
	const order_created *e = ev->data;
	orders_order *o = cqrs_store_upsert(((orders_model *)model)->orders, &e->order_id, NULL);

	if (o) {
		o->customer_id = e->customer_id;
		o->total = e->total;
		o->status = ORDER_CREATED;
	}
}

static void evolve_order_status(void *model, const cqrs_event *ev, uint32_t status)
{
	const order_shipped *e = ev->data;
	orders_order *o = cqrs_store_get(((orders_model *)model)->orders, &e->order_id);

	if (o)
		o->status = status;
}

static void evolve_order_shipped(void *m, const cqrs_event *ev) { evolve_order_status(m, ev, ORDER_SHIPPED); }
static void evolve_order_completed(void *m, const cqrs_event *ev) { evolve_order_status(m, ev, ORDER_COMPLETED); }
static void evolve_order_cancelled(void *m, const cqrs_event *ev) { evolve_order_status(m, ev, ORDER_CANCELLED); }

/* ---- apply: projections into shared-memory views ---- */

static int apply_order_summaries(cqrs_proj *p, const cqrs_event *ev, void *arg)
{
	order_summary row;
	int rc;
	(void)arg;

	switch (ev->type) {
	case EV_ORDER_CREATED: {
		const order_created *e = ev->data;
		memset(&row, 0, sizeof row);
		row.order_id = e->order_id;
		row.customer_id = e->customer_id;
		memcpy(row.customer_name, e->customer_name, sizeof row.customer_name);
		row.item_count = e->item_count;
		row.status = ORDER_CREATED;
		row.total = e->total;
		row.created_at = ev->timestamp_ns;
		rc = cqrs_proj_upsert(p, VIEW_ORDER_SUMMARIES, &row);
		return rc ? rc : cqrs_proj_upsert(p, VIEW_ACTIVE_ORDERS, &row);
	}
	case EV_ORDER_SHIPPED:
	case EV_ORDER_COMPLETED:
	case EV_ORDER_CANCELLED: {
		const order_shipped *e = ev->data;
		rc = cqrs_proj_get(p, VIEW_ORDER_SUMMARIES, &e->order_id, 8, &row);
		if (rc)
			return cqrs_proj_fail(p, rc, "order %llu not in order_summaries",
					      (unsigned long long)e->order_id);
		row.status = ev->type == EV_ORDER_SHIPPED ? ORDER_SHIPPED
			   : ev->type == EV_ORDER_COMPLETED ? ORDER_COMPLETED : ORDER_CANCELLED;
		if (ev->type == EV_ORDER_SHIPPED)
			row.shipped_at = ev->timestamp_ns;
		rc = cqrs_proj_upsert(p, VIEW_ORDER_SUMMARIES, &row);
		if (rc)
			return rc;
		/* decide only lets created and shipped orders change, so the
		 * order is in active_orders: it follows, or leaves. */
		if (ev->type == EV_ORDER_SHIPPED)
			return cqrs_proj_upsert(p, VIEW_ACTIVE_ORDERS, &row);
		return cqrs_proj_delete(p, VIEW_ACTIVE_ORDERS, &e->order_id, 8);
	}
	default:
		return 0;
	}
}

static int apply_customer_stats(cqrs_proj *p, const cqrs_event *ev, void *arg)
{
	customer_stats row;
	uint64_t id;
	int rc;
	(void)arg;

	if (ev->type == EV_CUSTOMER_REGISTERED) {
		const customer_registered *e = ev->data;
		memset(&row, 0, sizeof row);
		row.customer_id = e->customer_id;
		memcpy(row.name, e->name, sizeof row.name);
		row.active = 1;
		return cqrs_proj_upsert(p, VIEW_CUSTOMER_STATS, &row);
	}
	/* Every other event carries customer_id right after its first field
	 * (CustomerDeactivated: first field). */
	if (ev->type == EV_CUSTOMER_DEACTIVATED)
		id = ((const customer_deactivated *)ev->data)->customer_id;
	else if (ev->type == EV_ORDER_CREATED)
		id = ((const order_created *)ev->data)->customer_id;
	else if (ev->type >= EV_ORDER_SHIPPED && ev->type <= EV_ORDER_CANCELLED)
		id = ((const order_shipped *)ev->data)->customer_id;
	else
		return 0;
	rc = cqrs_proj_get(p, VIEW_CUSTOMER_STATS, &id, 8, &row);
	if (rc)
		return cqrs_proj_fail(p, rc, "customer %llu not in customer_stats", (unsigned long long)id);
	switch (ev->type) {
	case EV_CUSTOMER_DEACTIVATED: row.active = 0; break;
	case EV_ORDER_CREATED: row.orders++; row.active_orders++; break;
	case EV_ORDER_SHIPPED: return 0;
	case EV_ORDER_COMPLETED:
		row.active_orders--;
		row.total_spent += ((const order_completed *)ev->data)->total;
		break;
	case EV_ORDER_CANCELLED: row.active_orders--; break;
	}
	return cqrs_proj_upsert(p, VIEW_CUSTOMER_STATS, &row);
}

int orders_register(cqrs_engine *e, uint64_t order_capacity, uint64_t active_capacity,
		    uint64_t customer_capacity)
{
	int rc = 0;
	cqrs_projection_def summaries = {
		.name = "order_summaries",
		.views = { { .name = "order_summaries", .row = order_summary_schema(),
			     .key_field = "order_id", .index_fields = { "customer_id" },
			     .capacity = order_capacity },
			   { .name = "active_orders", .row = order_summary_schema(),
			     .key_field = "order_id", .index_fields = { "customer_id" },
			     .capacity = active_capacity } },
		.nviews = 2,
		.apply = apply_order_summaries,
		.thread = 0,
		.on_error = CQRS_ON_ERROR_SKIP,
	};
	cqrs_projection_def stats = {
		.name = "customer_stats",
		.views = { { .name = "customer_stats", .row = customer_stats_schema(),
			     .key_field = "customer_id", .capacity = customer_capacity } },
		.nviews = 1,
		.apply = apply_customer_stats,
		.thread = 1,
		.on_error = CQRS_ON_ERROR_SKIP,
	};

	rc = rc ? rc : cqrs_register_command(e, CMD_REGISTER_CUSTOMER, register_customer_schema(), decide_register_customer);
	rc = rc ? rc : cqrs_register_command(e, CMD_DEACTIVATE_CUSTOMER, deactivate_customer_schema(), decide_deactivate_customer);
	rc = rc ? rc : cqrs_register_command(e, CMD_CREATE_ORDER, create_order_schema(), decide_create_order);
	rc = rc ? rc : cqrs_register_command(e, CMD_SHIP_ORDER, ship_order_schema(), decide_ship_order);
	rc = rc ? rc : cqrs_register_command(e, CMD_COMPLETE_ORDER, complete_order_schema(), decide_complete_order);
	rc = rc ? rc : cqrs_register_command(e, CMD_CANCEL_ORDER, cancel_order_schema(), decide_cancel_order);
	rc = rc ? rc : cqrs_register_event(e, EV_CUSTOMER_REGISTERED, customer_registered_schema(), evolve_customer_registered);
	rc = rc ? rc : cqrs_register_event(e, EV_CUSTOMER_DEACTIVATED, customer_deactivated_schema(), evolve_customer_deactivated);
	rc = rc ? rc : cqrs_register_event(e, EV_ORDER_CREATED, order_created_schema(), evolve_order_created);
	rc = rc ? rc : cqrs_register_event(e, EV_ORDER_SHIPPED, order_shipped_schema(), evolve_order_shipped);
	rc = rc ? rc : cqrs_register_event(e, EV_ORDER_COMPLETED, order_completed_schema(), evolve_order_completed);
	rc = rc ? rc : cqrs_register_event(e, EV_ORDER_CANCELLED, order_cancelled_schema(), evolve_order_cancelled);
	rc = rc ? rc : cqrs_register_projection(e, &summaries);
	rc = rc ? rc : cqrs_register_projection(e, &stats);
	return rc;
}
