/*
 * tests/proc/gateway_orders.c - round trips through the command gateway
 * against a running `cqrs-orders serve`: RegisterCustomer and CreateOrder
 * accepted, rejections with the domain's reasons, read-your-writes (submit,
 * cqrs_view_wait(seq), cqrs_view_get the row), pipelined sends, and the
 * `cqrs submit` CLI (exit status and output).
 */
#include "tests/proc/gateway_proc.h"

#include "cqrs_view.h"

static void round_trips(void)
{
	cqrs_client *c = gp_connect();
	cqrs_result r;
	cqrs_view *v;
	order_summary row;
	ship_order ship = { .order_id = 1001 };
	int rc;

	rc = gp_register(c, 7, "Ann", &r);
	CHECK(rc == 0 && r.seq > 0, "RegisterCustomer: %s %s", cqrs_strerror(rc), r.reason);
	rc = gp_create_order(c, 1001, 7, 4250, &r);
	CHECK(rc == 0 && r.seq > 0, "CreateOrder: %s %s", cqrs_strerror(rc), r.reason);

	/* read your writes */
	rc = cqrs_view_open(gp_name, "order_summaries", &v);
	CHECK(rc == 0, "view open: %s", cqrs_strerror(rc));
	CHECK(cqrs_view_wait(v, r.seq, 10 * SEC) == 0, "view_wait(%llu)", (unsigned long long)r.seq);
	CHECK(cqrs_view_get(v, &(uint64_t){ 1001 }, 8, &row, sizeof row) == 0, "row 1001");
	CHECK(row.customer_id == 7 && row.total == 4250 && row.status == ORDER_CREATED &&
		      !strcmp(row.customer_name, "Ann"),
	      "row content");

	/* rejections carry the domain's reason */
	rc = gp_create_order(c, 1002, 99, 1, &r);
	CHECK(rc == CQRS_EREJECTED && r.status == rc && strstr(r.reason, "customer 99"),
	      "unknown customer: %s '%s'", cqrs_strerror(rc), r.reason);
	rc = gp_create_order(c, 1001, 7, 1, &r);
	CHECK(rc == CQRS_EREJECTED && strstr(r.reason, "exists"), "duplicate order: '%s'", r.reason);
	rc = gp_register(c, 7, "Ann again", &r);
	CHECK(rc == CQRS_EREJECTED, "registered twice: %s", cqrs_strerror(rc));

	rc = cqrs_client_submit(c, CMD_SHIP_ORDER, &ship, sizeof ship, NULL, &r, 10 * SEC);
	CHECK(rc == 0, "ShipOrder: %s", r.reason);
	CHECK(cqrs_view_wait(v, r.seq, 10 * SEC) == 0, "view_wait ship");
	CHECK(cqrs_view_get(v, &(uint64_t){ 1001 }, 8, &row, sizeof row) == 0 &&
		      row.status == ORDER_SHIPPED,
	      "shipped row");
	rc = cqrs_client_submit(c, CMD_SHIP_ORDER, &ship, sizeof ship, NULL, &r, 10 * SEC);
	CHECK(rc == CQRS_EREJECTED && r.reason[0], "ship twice: %s", cqrs_strerror(rc));
	cqrs_view_close(v);
	cqrs_client_close(c);
	printf("round trips: ok\n");
}

static void pipelined(void)
{
	cqrs_client *c = gp_connect();
	uint64_t sent = 0, got = 0, accepted = 0, rejected = 0;
	const uint64_t n = 3000;
	cqrs_result r;

	while (got < n) {
		while (sent < n && cqrs_client_pending(c) < 128) {
			/* even: a new customer (accepted); odd: an order for a customer
			 * that does not exist (rejected) */
			uint64_t k = sent;
			int rc;
			if (k % 2 == 0) {
				register_customer cmd = { .customer_id = 100000 + k };
				snprintf(cmd.name, sizeof cmd.name, "c%llu", (unsigned long long)k);
				rc = cqrs_client_send(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, NULL);
			} else {
				create_order cmd = { .order_id = 500000 + k, .customer_id = 900000 + k };
				rc = cqrs_client_send(c, CMD_CREATE_ORDER, &cmd, sizeof cmd, NULL, NULL);
			}
			if (rc == -EAGAIN)
				break;
			CHECK(rc == 0, "send: %s", cqrs_strerror(rc));
			sent++;
		}
		CHECK(cqrs_client_wait(c, &r, 30 * SEC) == 1, "wait");
		CHECK(r.request_id == got + 1, "order of answers");
		if (got % 2 == 0) {
			CHECK(r.status == 0, "request %llu: %s", (unsigned long long)r.request_id, r.reason);
			accepted++;
		} else {
			CHECK(r.status == CQRS_EREJECTED && strstr(r.reason, "unknown"),
			      "request %llu: %d '%s'", (unsigned long long)r.request_id, r.status, r.reason);
			rejected++;
		}
		got++;
	}
	cqrs_client_close(c);
	printf("pipelined: %llu answers (%llu accepted, %llu rejected): ok\n",
	       (unsigned long long)got, (unsigned long long)accepted, (unsigned long long)rejected);
}

static void cli(void)
{
	char out[4096];
	int st;

	st = gp_cli(out, sizeof out, "submit %s RegisterCustomer customer_id=42 name=Zed", gp_name);
	CHECK(st == 0 && strstr(out, "accepted seq="), "cli register: %d '%s'", st, out);
	st = gp_cli(out, sizeof out,
		    "submit %s CreateOrder order_id=4200 customer_id=42 item_count=3 total=999 "
		    "shipping_address='1 Main St'",
		    gp_name);
	CHECK(st == 0 && strstr(out, "accepted seq="), "cli order: %d '%s'", st, out);
	st = gp_cli(out, sizeof out, "submit %s CreateOrder order_id=4201 customer_id=4343", gp_name);
	CHECK(st == 1 && strstr(out, "rejected: customer 4343"), "cli rejected: %d '%s'", st, out);
	st = gp_cli(out, sizeof out, "submit %s CreateOrder order_idd=1", gp_name);
	CHECK(st == 1 && strstr(out, "no such field"), "cli bad field: %d '%s'", st, out);
	/* values that would be read as something else are refused, nothing sent */
	st = gp_cli(out, sizeof out, "submit %s RegisterCustomer customer_id=0x1 name=Hex", gp_name);
	CHECK(st == 1 && strstr(out, "'0x1' is not a decimal integer") && !strstr(out, "accepted"),
	      "cli hex: %d '%s'", st, out);
	st = gp_cli(out, sizeof out, "submit %s RegisterCustomer customer_id=' 43' name=Sp", gp_name);
	CHECK(st == 1 && strstr(out, "not a decimal integer"), "cli space: %d '%s'", st, out);
	st = gp_cli(out, sizeof out,
		    "submit %s CreateOrder order_id=4202 customer_id=42 item_count=4294967296", gp_name);
	CHECK(st == 1 && strstr(out, "out of range (0..4294967295)") && !strstr(out, "accepted"),
	      "cli out of range: %d '%s'", st, out);
	st = gp_cli(out, sizeof out,
		    "submit %s RegisterCustomer customer_id=18446744073709551616 name=Big", gp_name);
	CHECK(st == 1 && strstr(out, "out of range"), "cli u64 out of range: %d '%s'", st, out);
	st = gp_cli(out, sizeof out, "submit %s RegisterCustomer customer_id=44 name=O --client-seq 0x5",
		    gp_name);
	CHECK(st == 2 && !strstr(out, "accepted"), "cli hex option: %d '%s'", st, out);
	st = gp_cli(out, sizeof out, "submit %s NoSuchCommand x=1", gp_name);
	CHECK(st == 1 && strstr(out, "no command"), "cli bad command: %d '%s'", st, out);
	st = gp_cli(out, sizeof out, "submit %s --list", gp_name);
	CHECK(st == 0 && strstr(out, "CreateOrder") && strstr(out, "shipping_address"),
	      "cli list: %d '%s'", st, out);
	st = gp_cli(out, sizeof out, "submit %s_nope RegisterCustomer customer_id=1", gp_name);
	CHECK(st == 1, "cli no engine: %d '%s'", st, out);
	st = gp_cli(out, sizeof out, "submit %s ShipOrder order_id=4200 --aggregate %llu "
		    "--expect-version 9", gp_name, (unsigned long long)ORDER_AGG(UINT64_C(4200)));
	CHECK(st == 1 && strstr(out, "conflict"), "cli conflict: %d '%s'", st, out);
	printf("cli: ok\n");
}

int main(void)
{
	gp_init("gwo");
	gp_engine_start(0);
	round_trips();
	pipelined();
	cli();
	gp_engine_stop(SIGTERM);
	printf("gateway_orders: %d failures\n", gp_failures);
	return gp_failures ? 1 : 0;
}
