/*
 * tests/proc/gateway_restart.c - the engine going away under connected
 * clients (`cqrs-orders serve` as a child):
 *
 *   stop      SIGTERM: clients get CQRS_ESTOPPED from submit, send, poll and
 *             wait; the engine starts again (same name and data folder),
 *             they reconnect and go on, and the journal's seq continues.
 *   kill      the engine is SIGSTOPped, a request sent, a thread blocks in
 *             cqrs_client_wait, then the engine is SIGKILLed: the waiter
 *             returns CQRS_ESTOPPED (noticed through the owner's /proc
 *             entry, not a timeout). A client connected before the kill and
 *             idle since also gets CQRS_ESTOPPED once a new engine replaced
 *             the dead one's segments; new clients connect and go on.
 */
#include <pthread.h>

#include "tests/proc/gateway_proc.h"

static int expect_stopped(cqrs_client *c, const char *who)
{
	cqrs_result r;
	register_customer cmd = { .customer_id = 1 };
	int rc;

	snprintf(cmd.name, sizeof cmd.name, "x");
	rc = cqrs_client_send(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, NULL);
	CHECK(rc == CQRS_ESTOPPED, "%s: send gave %s", who, cqrs_strerror(rc));
	rc = cqrs_client_submit(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, &r, 30 * SEC);
	CHECK(rc == CQRS_ESTOPPED && r.status == CQRS_ESTOPPED, "%s: submit gave %s", who,
	      cqrs_strerror(rc));
	rc = cqrs_client_poll(c, &r);
	CHECK(rc == CQRS_ESTOPPED, "%s: poll gave %d", who, rc);
	return 0;
}

static void stop_and_restart(void)
{
	cqrs_client *a = gp_connect(), *b = gp_connect();
	cqrs_result r;
	uint64_t seq_before, i;

	for (i = 0; i < 20; i++)
		CHECK(gp_register(a, 100 + i, "a", &r) == 0, "a: %s", r.reason);
	seq_before = r.seq;
	gp_engine_stop(SIGTERM);
	expect_stopped(a, "a");
	expect_stopped(b, "b");
	CHECK(cqrs_client_wait(b, &r, 30 * SEC) == CQRS_ESTOPPED, "b: wait");
	cqrs_client_close(a);
	cqrs_client_close(b);

	gp_engine_start(0);
	a = gp_connect();
	b = gp_connect();
	CHECK(gp_register(a, 100, "a", &r) == CQRS_EREJECTED, "recovered state: %s", r.reason);
	CHECK(gp_register(b, 200, "b", &r) == 0 && r.seq > seq_before,
	      "seq continues: %llu after %llu", (unsigned long long)r.seq,
	      (unsigned long long)seq_before);
	cqrs_client_close(a);
	cqrs_client_close(b);
	printf("stop: clients saw CQRS_ESTOPPED, reconnected, seq %llu -> %llu: ok\n",
	       (unsigned long long)seq_before, (unsigned long long)r.seq);
}

typedef struct waiter {
	cqrs_client *c;
	int rc;
	cqrs_result r;
} waiter;

static void *wait_main(void *arg)
{
	waiter *w = arg;

	w->rc = cqrs_client_wait(w->c, &w->r, 60 * SEC);
	return NULL;
}

static void kill_and_restart(void)
{
	cqrs_client *idle = gp_connect(), *c = gp_connect(), *n;
	register_customer cmd = { .customer_id = 300 };
	waiter w = { .c = c, .rc = 1 };
	pthread_t t;
	cqrs_result r;
	int rc, st;

	snprintf(cmd.name, sizeof cmd.name, "k");
	CHECK(gp_register(idle, 301, "idle", &r) == 0, "idle: %s", r.reason);
	kill(gp_engine, SIGSTOP);
	CHECK(waitpid(gp_engine, &st, WUNTRACED) == gp_engine && WIFSTOPPED(st), "engine not stopped");
	rc = cqrs_client_send(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, NULL);
	CHECK(rc == 0, "send to a stopped engine: %s", cqrs_strerror(rc));
	CHECK(pthread_create(&t, NULL, wait_main, &w) == 0, "pthread_create");
	usleep(100000); /* let it fall asleep on the futex */
	gp_engine_stop(SIGKILL);
	pthread_join(t, NULL);
	CHECK(w.rc == CQRS_ESTOPPED, "blocked waiter got %d (%s)", w.rc, cqrs_strerror(w.rc));
	cqrs_client_close(c);

	gp_engine_start(0); /* replaces the dead engine's segments */
	rc = cqrs_client_submit(idle, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, &r, 30 * SEC);
	CHECK(rc == CQRS_ESTOPPED, "idle client after the restart: %s", cqrs_strerror(rc));
	cqrs_client_close(idle);
	n = gp_connect();
	CHECK(gp_register(n, 302, "n", &r) == 0, "after kill: %s", r.reason);
	CHECK(gp_register(n, 301, "n", &r) == CQRS_EREJECTED, "301 recovered: %s", r.reason);
	cqrs_client_close(n);
	printf("kill: blocked waiter and idle client saw CQRS_ESTOPPED, new clients served: ok\n");
}

int main(void)
{
	gp_init("gwr");
	gp_engine_start(0);
	stop_and_restart();
	kill_and_restart();
	gp_engine_stop(SIGTERM);
	printf("gateway_restart: ok\n");
	return 0;
}
