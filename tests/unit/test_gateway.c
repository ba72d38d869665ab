/*
 * tests/unit/test_gateway.c - the command gateway in one process: an engine
 * (tests/lib/bank) and clients of it over its socket and their own rings.
 * Round trips, rejections, conflicts, duplicates, client_seq numbering, the
 * client's own argument checks, every validation path of the engine (pure
 * function and through the ring), pipelining, a client that stops reading
 * (reply overflow), connection reuse and the total limit, credentials and
 * the per-uid limit from the config, a client that breaks its ring
 * (dropped, reconnects), and an engine stop seen by a connected client. Each test has its own engine name
 * and data folder and removes both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/client_internal.h"
#include "cqrs_client.h"
#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "engine/gateway_check.h"
#include "ringbuf/mpsc.h"
#include "ringbuf/wait.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define SEC UINT64_C(1000000000)

typedef struct fixture {
	char name[64];
	char dir[256];
	bank_model m;
	cqrs_engine *e;
} fixture;

static fixture fx;

static int setup(void **state)
{
	memset(&fx, 0, sizeof fx);
	tu_unique_name(fx.name, sizeof fx.name, "tgw");
	if (tu_mkdtemp(fx.dir, sizeof fx.dir, "cqrs-gw"))
		return -1;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	if (f->e)
		bank_stop(f->e, &f->m);
	f->e = NULL;
	cqrs_engine_remove_segments(f->name);
	tu_rmrf(f->dir);
	unsetenv("CQRS_GATEWAY_CLIENTS");
	return 0;
}

static void start(fixture *f)
{
	assert_int_equal(bank_start(f->name, f->dir, CQRS_DURABILITY_NONE, 1024, CQRS_ON_ERROR_SKIP,
				    &f->m, &f->e), 0);
}

static cqrs_client *connect_ok(fixture *f)
{
	cqrs_client *c = NULL;
	int rc = cqrs_client_connect(f->name, &c);

	if (rc)
		fprintf(stderr, "connect: %s (%s)\n", cqrs_strerror(rc), cqrs_last_error());
	assert_int_equal(rc, 0);
	return c;
}

static int deposit(cqrs_client *c, uint64_t account, int64_t amount, const cqrs_submit_opts *o,
		   cqrs_result *r)
{
	bank_deposit d = { account, amount };
	return cqrs_client_submit(c, BANK_DEPOSIT, &d, sizeof d, o, r, 10 * SEC);
}

/* ---- connect, commands, round trips -------------------------------------- */

static void test_connect_and_commands(void **state)
{
	fixture *f = *state;
	const cqrs_schema *s;
	uint32_t type;
	cqrs_client *c, *bad = (cqrs_client *)1;

	assert_int_equal(cqrs_client_connect(f->name, &bad), CQRS_ENOTFOUND);
	assert_null(bad);
	assert_int_equal(cqrs_client_connect("no such", &bad), -EINVAL);
	start(f);
	c = connect_ok(f);
	assert_string_equal(cqrs_client_engine(c), f->name);
	assert_true(cqrs_client_id(c) != 0);
	assert_int_equal(cqrs_client_command_count(c), 2);
	assert_int_equal(cqrs_client_command_at(c, 0, &type, &s), 0);
	assert_int_equal(type, BANK_DEPOSIT);
	assert_string_equal(s->name, "Deposit");
	assert_int_equal(s->size, sizeof(bank_deposit));
	assert_int_equal(cqrs_client_command_at(c, 1, &type, NULL), 0);
	assert_int_equal(type, BANK_WITHDRAW);
	assert_int_equal(cqrs_client_command_at(c, 2, &type, NULL), CQRS_ENOTFOUND);
	assert_int_equal(cqrs_client_command_type(c, "Withdraw", &type, &s), 0);
	assert_int_equal(type, BANK_WITHDRAW);
	assert_int_equal(cqrs_client_command_type(c, "Nope", &type, &s), CQRS_ENOTFOUND);
	cqrs_client_close(c);
}

static void test_round_trip(void **state)
{
	fixture *f = *state;
	cqrs_client *c, *c2;
	cqrs_result r;
	cqrs_view *v;
	bank_row row;
	bank_withdraw w = { 1, 1000 };
	cqrs_submit_opts o = { 0 };

	start(f);
	c = connect_ok(f);
	assert_int_equal(deposit(c, 1, 100, NULL, &r), 0);
	assert_int_equal(r.status, 0);
	assert_true(r.seq >= 1);
	assert_int_equal(r.request_id, 1);
	assert_string_equal(r.reason, "");

	/* read your writes */
	assert_int_equal(cqrs_view_open(f->name, "balances", &v), 0);
	assert_int_equal(cqrs_view_wait(v, r.seq, 10 * SEC), 0);
	assert_int_equal(cqrs_view_get(v, &(uint64_t){ 1 }, 8, &row, sizeof row), 0);
	assert_int_equal(row.balance, 100);
	cqrs_view_close(v);

	/* rejection with the decide handler's reason */
	assert_int_equal(cqrs_client_submit(c, BANK_WITHDRAW, &w, sizeof w, NULL, &r, 10 * SEC),
			 CQRS_EREJECTED);
	assert_int_equal(r.status, CQRS_EREJECTED);
	assert_string_equal(r.reason, "insufficient funds: balance 100");
	assert_int_equal(r.seq, 0);

	/* optimistic concurrency: aggregate 1 is at version 1 */
	o.aggregate_id = 1;
	o.flags = CQRS_CMD_EXPECT_VERSION;
	o.expected_version = 5;
	assert_int_equal(deposit(c, 1, 1, &o, &r), CQRS_ECONFLICT);
	assert_non_null(strstr(r.reason, "version 1"));
	o.expected_version = 1;
	assert_int_equal(deposit(c, 1, 1, &o, &r), 0);

	/* idempotency: the same client_seq on this connection */
	memset(&o, 0, sizeof o);
	o.client_seq = 1000;
	assert_int_equal(deposit(c, 2, 7, &o, &r), 0);
	uint64_t first = r.seq;
	assert_int_equal(deposit(c, 2, 7, &o, &r), CQRS_EDUPLICATE);
	assert_int_equal(r.seq, first);
	/* ... but another connection is another client */
	c2 = connect_ok(f);
	assert_true(cqrs_client_id(c2) != cqrs_client_id(c));
	assert_int_equal(deposit(c2, 2, 7, &o, &r), 0);
	cqrs_client_close(c2);
	assert_int_equal(cqrs_client_pending(c), 0);
	cqrs_client_close(c);
}

/* Automatic numbering continues after the highest client_seq used on the
 * connection, so explicit keys far ahead never swallow later commands. */
static void test_client_seq_numbering(void **state)
{
	fixture *f = *state;
	cqrs_client *c;
	cqrs_result r;
	cqrs_submit_opts o = { 0 };
	uint64_t before;

	start(f);
	c = connect_ok(f);
	assert_int_equal(deposit(c, 1, 1, NULL, &r), 0); /* automatic 1 */
	o.client_seq = 1000000;
	assert_int_equal(deposit(c, 1, 1, &o, &r), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(deposit(c, 1, 1, NULL, &r), 0); /* 1000001, ... */
		assert_int_equal(r.status, 0);
	}
	assert_int_equal(deposit(c, 1, 1, &o, &r), CQRS_EDUPLICATE); /* a repeat on purpose */
	o.client_seq = UINT64_MAX;
	assert_int_equal(deposit(c, 1, 1, &o, &r), 0);
	before = cqrs_client_pending(c);
	assert_int_equal(deposit(c, 1, 1, NULL, &r), -EOVERFLOW); /* refused, never swallowed */
	assert_non_null(strstr(cqrs_last_error(), "client_seq"));
	assert_int_equal(cqrs_client_pending(c), before);
	o.client_seq = UINT64_MAX - 1;
	assert_int_equal(deposit(c, 1, 1, &o, &r), 0); /* explicit keys still work */
	/* ... except those more than the dedup window below the highest: the
	 * engine cannot tell them from retries any more (documented) */
	o.client_seq = 5000000;
	assert_int_equal(deposit(c, 1, 1, &o, &r), CQRS_EDUPLICATE);
	cqrs_client_close(c);
}

static void test_client_argument_checks(void **state)
{
	fixture *f = *state;
	cqrs_client *c;
	cqrs_result r;
	bank_deposit d = { 1, 1 };
	cqrs_submit_opts o = { 0 };

	start(f);
	c = connect_ok(f);
	assert_int_equal(cqrs_client_submit(c, 9, &d, sizeof d, NULL, &r, SEC), -EINVAL);
	assert_int_equal(cqrs_client_submit(c, BANK_DEPOSIT, &d, sizeof d - 1, NULL, &r, SEC), -EINVAL);
	assert_int_equal(cqrs_client_send(c, BANK_DEPOSIT, NULL, sizeof d, NULL, NULL), -EINVAL);
	o.flags = 2;
	assert_int_equal(cqrs_client_send(c, BANK_DEPOSIT, &d, sizeof d, &o, NULL), -EINVAL);
	o.flags = 0;
	o.reserved = 1;
	assert_int_equal(cqrs_client_send(c, BANK_DEPOSIT, &d, sizeof d, &o, NULL), -EINVAL);
	assert_int_equal(cqrs_client_wait(c, &r, SEC), -EAGAIN); /* nothing pending */
	assert_int_equal(cqrs_client_poll(c, &r), 0);
	cqrs_client_close(c);
}

/* ---- validation ------------------------------------------------------------ */

static void test_check_request_pure(void **state)
{
	cqrs_gw_cmdtab tab = { { 0 } };
	uint8_t buf[256], payload[64];
	cqrs__gw_req *h = (cqrs__gw_req *)(void *)buf, req;
	char why[CQRS_GW_REASON];
	(void)state;

	tab.size[3] = 16;
	memset(buf, 0, sizeof buf);
	*h = (cqrs__gw_req){ .request_id = 42, .client_seq = 1, .type = 3, .size = 16 };
	memset(buf + sizeof *h, 0xab, 16);
	assert_int_equal(cqrs__gw_check_request(&tab, 1, buf, 64, &req, payload, sizeof payload, why), 0);
	assert_int_equal(req.request_id, 42);
	assert_memory_equal(payload, buf + sizeof *h, 16);

#define BAD(rtype, len, text)                                                                \
	do {                                                                                 \
		assert_int_equal(cqrs__gw_check_request(&tab, rtype, buf, len, &req, payload, \
							sizeof payload, why),                \
				 CQRS_EFORMAT);                                              \
		assert_non_null(strstr(why, text));                                          \
	} while (0)

	BAD(2, 64, "record type 2");
	BAD(1, 40, "40 bytes");
	BAD(1, 4, "4 bytes");
	assert_int_equal(req.request_id, 0); /* too short to carry one */
	BAD(1, 63, "record of 63 bytes");
	BAD(1, 65, "record of 65 bytes");
	h->size = 17;
	BAD(1, 65, "command size 17");
	h->size = 0xffffffffu;
	BAD(1, 64, "command size 4294967295");
	h->size = 16;
	h->type = 0;
	BAD(1, 64, "unknown command type 0");
	h->type = 4;
	BAD(1, 64, "unknown command type 4");
	h->type = 0xffffffffu;
	BAD(1, 64, "unknown command type");
	h->type = 3;
	h->flags = 2;
	BAD(1, 64, "unknown flags");
	h->flags = 1;
	h->reserved = 9;
	BAD(1, 64, "reserved");
	h->reserved = 0;
	h->client_seq = 0;
	BAD(1, 64, "client_seq 0");
	h->client_seq = 5;
	h->aggregate_id = UINT64_MAX;
	BAD(1, 64, "aggregate id");
	h->aggregate_id = 9;
	assert_int_equal(req.request_id, 42);
	assert_int_equal(cqrs__gw_check_request(&tab, 1, buf, 64, &req, payload, 8, why), CQRS_EFORMAT);
	assert_int_equal(cqrs__gw_check_request(&tab, 1, buf, 64, &req, payload, 16, why), 0);
#undef BAD
}

/* Waits for one answer that was sent around the client's accounting. */
static int raw_answer(cqrs_client *c, cqrs_result *r)
{
	for (int i = 0; i < 100000; i++) {
		int rc = cqrs_client_poll(c, r);
		if (rc)
			return rc;
		usleep(100);
	}
	return -ETIMEDOUT;
}

static void raw_send(cqrs_client *c, cqrs__client_parts *pp, uint32_t rtype, const void *data,
		     uint32_t len)
{
	void *d;

	assert_int_equal(cqrs_mpsc_try_claim(pp->producer, rtype, len, &d), 0);
	memcpy(d, data, len);
	assert_int_equal(cqrs_mpsc_commit(pp->producer, len), 0);
	cqrs__client_ring(c);
}

static void test_malformed_through_ring(void **state)
{
	fixture *f = *state;
	cqrs_client *c;
	cqrs__client_parts pp;
	cqrs_result r;
	uint8_t buf[256];
	cqrs__gw_req *h = (cqrs__gw_req *)(void *)buf;
	struct { uint32_t rtype, len; uint64_t id; const char *why; } cases[] = {
		{ 7, 64, 900, "record type 7" },
		{ 1, 4, 0, "4 bytes" },
		{ 1, 64, 901, "unknown command type 77" },
		{ 1, 48 + 15, 902, "command size 15" },
		{ 1, 48 + 20, 903, "record of 68 bytes" },
	};

	start(f);
	c = connect_ok(f);
	assert_int_equal(cqrs__client_parts_get(c, &pp), 0);
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		memset(buf, 0, sizeof buf);
		*h = (cqrs__gw_req){ .request_id = cases[k].id, .client_seq = 1, .type = BANK_DEPOSIT,
				    .size = 16 };
		if (k == 2)
			h->type = 77;
		if (k == 3)
			h->size = 15;
		raw_send(c, &pp, cases[k].rtype, buf, cases[k].len);
		assert_int_equal(raw_answer(c, &r), 1);
		assert_int_equal(r.status, CQRS_EFORMAT);
		assert_int_equal(r.request_id, cases[k].id);
		assert_non_null(strstr(r.reason, cases[k].why));
	}
	/* the client goes on as if nothing happened */
	assert_int_equal(deposit(c, 3, 30, NULL, &r), 0);
	cqrs_client_close(c);
}

/* ---- pipelining, overflow ---------------------------------------------------- */

static void test_pipelined(void **state)
{
	fixture *f = *state;
	cqrs_client *c;
	cqrs_result r;
	uint64_t sent = 0, got = 0, id, last_seq = 0;
	const uint64_t total = 5000;

	start(f);
	c = connect_ok(f);
	while (got < total) {
		while (sent < total && cqrs_client_pending(c) < 200) {
			bank_deposit d = { 10 + sent % 7, 1 };
			int rc = cqrs_client_send(c, BANK_DEPOSIT, &d, sizeof d, NULL, &id);
			if (rc == -EAGAIN)
				break;
			assert_int_equal(rc, 0);
			assert_int_equal(id, sent + 1);
			sent++;
		}
		assert_int_equal(cqrs_client_wait(c, &r, 10 * SEC), 1);
		got++;
		assert_int_equal(r.status, 0);
		assert_int_equal(r.request_id, got); /* answers come in order */
		assert_true(r.seq > last_seq);
		last_seq = r.seq;
	}
	assert_int_equal(cqrs_client_poll(c, &r), 0);
	cqrs_client_close(c);
}

static void test_reply_overflow(void **state)
{
	fixture *f = *state;
	cqrs_client *c;
	cqrs__client_parts pp;
	cqrs_result r;
	uint64_t sent = 0, got = 0;
	bank_deposit d = { 1, 1 };

	start(f);
	c = connect_ok(f);
	assert_int_equal(cqrs__client_parts_get(c, &pp), 0);
	/* More than the reply ring holds, without reading a single answer. */
	while (sent < pp.hello->reply_entries + pp.hello->quota / 2) {
		int rc = cqrs_client_send(c, BANK_DEPOSIT, &d, sizeof d, NULL, NULL);
		if (rc == -EAGAIN) {
			usleep(1000);
			continue;
		}
		assert_int_equal(rc, 0);
		sent++;
	}
	/* Wait until the engine parked answers (its overflow). acquire: pairs
	 * with the engine's seq_cst store of the flag; the counters are
	 * statistics (relaxed). */
	for (int i = 0; i < 10000 && !atomic_load_explicit(&pp.reply->backlog, memory_order_acquire); i++)
		usleep(1000);
	assert_int_equal(atomic_load_explicit(&pp.reply->backlog, memory_order_acquire), 1);
	/* relaxed: a statistic the command thread writes */
	assert_true(__atomic_load_n(&cqrs_engine_counters(f->e)->gw_overflows, __ATOMIC_RELAXED) >= 1);
	while (got < sent) {
		assert_int_equal(cqrs_client_wait(c, &r, 10 * SEC), 1);
		assert_int_equal(r.status, 0);
		assert_int_equal(r.request_id, ++got);
	}
	assert_int_equal(deposit(c, 1, 1, NULL, &r), 0);
	cqrs_client_close(c);
}

/* ---- connections --------------------------------------------------------------------- */

static void test_slots_reuse_and_exhaustion(void **state)
{
	fixture *f = *state;
	cqrs_client *c[4], *extra = NULL;
	cqrs_result r;

	setenv("CQRS_GATEWAY_CLIENTS", "4", 1);
	start(f);
	for (int round = 0; round < 12; round++) {
		cqrs_client *x = connect_ok(f);
		assert_int_equal(deposit(x, 5, 1, NULL, &r), 0);
		cqrs_client_close(x);
	}
	for (int i = 0; i < 4; i++)
		c[i] = connect_ok(f);
	assert_int_equal(cqrs_client_connect(f->name, &extra), CQRS_EFULL);
	assert_null(extra);
	cqrs_client_close(c[2]);
	c[2] = connect_ok(f);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(deposit(c[i], 6, 1, NULL, &r), 0);
		cqrs_client_close(c[i]);
	}
}

/* Credentials from the config: a uid list without ours refuses us at the
 * socket; adding our group lets us in. */
static const uint32_t other_uid[] = { 4242424 };
static uint32_t our_gid[1];

static void hook_refuse(cqrs_config *cfg)
{
	cfg->gateway_uids = other_uid;
	cfg->gateway_nuids = 1;
}

static void hook_group(cqrs_config *cfg)
{
	our_gid[0] = (uint32_t)getegid();
	cfg->gateway_uids = other_uid;
	cfg->gateway_nuids = 1;
	cfg->gateway_gids = our_gid;
	cfg->gateway_ngids = 1;
	cfg->gateway_max_clients = 3;
	cfg->gateway_max_per_uid = 2;
}

static void test_config_credentials_and_limits(void **state)
{
	fixture *f = *state;
	cqrs_client *c = NULL, *d[2];
	cqrs_result r;

	bank_config_hook = hook_refuse;
	start(f);
	bank_config_hook = NULL;
	assert_int_equal(cqrs_client_connect(f->name, &c), -EACCES);
	assert_null(c);
	assert_non_null(strstr(cqrs_last_error(), "not allowed"));
	/* relaxed: a statistic the gateway thread writes */
	assert_int_equal(__atomic_load_n(&cqrs_engine_counters(f->e)->gw_refused, __ATOMIC_RELAXED), 1);
	bank_stop(f->e, &f->m);
	f->e = NULL;

	bank_config_hook = hook_group;
	start(f);
	bank_config_hook = NULL;
	d[0] = connect_ok(f);
	d[1] = connect_ok(f);
	assert_int_equal(cqrs_client_connect(f->name, &c), CQRS_EFULL); /* 2 per uid */
	assert_non_null(strstr(cqrs_last_error(), "limit per uid"));
	assert_int_equal(deposit(d[1], 1, 1, NULL, &r), 0);
	cqrs_client_close(d[0]);
	c = connect_ok(f); /* the closed one's room, once the engine freed it */
	assert_int_equal(deposit(c, 1, 1, NULL, &r), 0);
	cqrs_client_close(c);
	cqrs_client_close(d[1]);
}

static void test_broken_ring_drops_client(void **state)
{
	fixture *f = *state;
	cqrs_client *c, *good;
	cqrs__client_parts pp;
	cqrs_result r;
	struct mp_hdr *rh;

	start(f);
	good = connect_ok(f);
	c = connect_ok(f);
	assert_int_equal(cqrs__client_parts_get(c, &pp), 0);
	rh = pp.req_mem;
	/* An impossible tail: the consumer refuses the ring. relaxed: garbage
	 * on purpose; the engine's acquire load finds it whenever it looks. */
	atomic_store_explicit(&rh->tail, UINT64_C(0x123456789abcdef1), memory_order_relaxed);
	cqrs__client_ring(c);
	/* acquire: pairs with the engine's release store of DROPPED. */
	for (int i = 0; i < 10000 &&
			atomic_load_explicit(&pp.hdr->state, memory_order_acquire) != CQRS_GW_DROPPED;
	     i++)
		usleep(1000);
	assert_int_equal(atomic_load_explicit(&pp.hdr->state, memory_order_acquire), CQRS_GW_DROPPED);
	assert_int_equal(deposit(c, 1, 1, NULL, &r), CQRS_ESTOPPED);
	assert_int_equal(cqrs_client_poll(c, &r), CQRS_ESTOPPED);
	/* relaxed: a statistic the command thread writes */
	assert_true(__atomic_load_n(&cqrs_engine_counters(f->e)->gw_drops, __ATOMIC_RELAXED) >= 1);
	cqrs_client_close(c);
	/* the others never noticed; the dropped one can come back */
	assert_int_equal(deposit(good, 1, 1, NULL, &r), 0);
	c = connect_ok(f);
	assert_int_equal(deposit(c, 1, 1, NULL, &r), 0);
	cqrs_client_close(c);
	cqrs_client_close(good);
}

static void test_engine_stop_seen_by_client(void **state)
{
	fixture *f = *state;
	cqrs_client *c, *again = NULL;
	cqrs_result r;
	uint64_t id;
	bank_deposit d = { 1, 1 };

	start(f);
	c = connect_ok(f);
	assert_int_equal(deposit(c, 1, 1, NULL, &r), 0);
	bank_stop(f->e, &f->m);
	f->e = NULL;
	assert_int_equal(cqrs_client_send(c, BANK_DEPOSIT, &d, sizeof d, NULL, &id), CQRS_ESTOPPED);
	assert_int_equal(deposit(c, 1, 1, NULL, &r), CQRS_ESTOPPED);
	assert_int_equal(r.status, CQRS_ESTOPPED);
	assert_int_equal(cqrs_client_poll(c, &r), CQRS_ESTOPPED);
	cqrs_client_close(c);
	assert_int_not_equal(cqrs_client_connect(f->name, &again), 0);
	/* a new engine generation: connect again and go on */
	start(f);
	c = connect_ok(f);
	assert_int_equal(deposit(c, 1, 1, NULL, &r), 0);
	cqrs_client_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connect_and_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_seq_numbering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_argument_checks, setup, teardown),
		cmocka_unit_test(test_check_request_pure),
		cmocka_unit_test_setup_teardown(test_malformed_through_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_reuse_and_exhaustion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_credentials_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_ring_drops_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_stop_seen_by_client, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
