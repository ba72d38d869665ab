/*
 * tests/proc/nats_node.c - a view node (cqrs_config.node_of) follows a
 * writer's stream on a real three-node JetStream cluster (started here;
 * skipped, 77, without nats-server).
 *
 *   equal views:   the writer takes deposits (ack level replicated); the
 *                  node's cqrs_view_wait(seq) returns for the writer's last
 *                  seq and its view equals the writer's row by row at that
 *                  seq (snapshot scans, sorted by account), read through
 *                  the ordinary reader API.
 *   refuses:       cqrs_submit on a node is -EPERM.
 *   restart:       the node stops, the writer goes on, the node starts
 *                  again from its own journal and views: it takes only
 *                  the new messages from the stream (its message counter),
 *                  and its views equal the writer's again.
 *   bad record:    a message whose record fails its checksum (published
 *                  into the stream by hand) is refused and counted, the
 *                  node resyncs and applies nothing of it; the writer,
 *                  restarted, finds the stream ahead of its journal and
 *                  stops replicating (FAILED) while it keeps serving.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "cqrs.h"
#include "cqrs_counters.h"
#include "engine/journal/journal.h"
#include "cqrs_view.h"
#include "tests/lib/bank.h"
#include "tests/lib/nats_cluster.h"
#include "tests/lib/testutil.h"

#define CHECK(c)                                                                     \
	do {                                                                         \
		if (!(c)) {                                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			exit(1);                                                     \
		}                                                                    \
	} while (0)

#define ACCOUNTS 200

/* Counters are written by engine threads: read them relaxed. */
#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static tn_cluster cl;
static int cluster_up;
static const char *cfg_node_of;
static int cfg_ack;

static void log_line(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	fprintf(stderr, "  [engine] %s\n", msg);
}

static void hook(cqrs_config *cfg)
{
	cfg->log = log_line;
	cfg->replication_urls = cl.urls;
	cfg->ack_level = cfg_ack;
	cfg->replication_timeout_ms = 0;
	cfg->node_of = cfg_node_of;
}

static void cleanup(void)
{
	if (cluster_up)
		tn_cluster_stop(&cl);
	cluster_up = 0;
}

typedef struct run {
	char name[64], dir[256];
	bank_model m;
	cqrs_engine *e;
} run;

static void start(run *r, const char *node_of)
{
	int rc;

	cfg_node_of = node_of;
	cfg_ack = node_of ? CQRS_ACK_LOCAL : CQRS_ACK_REPLICATED;
	bank_config_hook = hook;
	rc = bank_start(r->name, r->dir, CQRS_DURABILITY_BATCH, 1024, CQRS_ON_ERROR_SKIP, &r->m, &r->e);
	if (rc)
		fprintf(stderr, "bank_start: %s: %s\n", cqrs_strerror(rc), cqrs_last_error());
	CHECK(rc == 0);
}

static void make_run(run *r, const char *prefix)
{
	tu_unique_name(r->name, sizeof r->name, prefix);
	CHECK(tu_mkdtemp(r->dir, sizeof r->dir, prefix) == 0);
}

/* n deposits over ACCOUNTS accounts, pipelined; returns the last seq. */
static uint64_t load(cqrs_engine *e, uint32_t n, uint32_t salt)
{
	enum { W = 1024 };
	static cqrs_ticket t[W];
	static bank_deposit d[W];
	static cqrs_command c[W];
	uint64_t hi = 0;

	for (uint32_t done = 0; done < n;) {
		uint32_t k = n - done < W ? n - done : W, q = 0;
		for (uint32_t i = 0; i < k; i++) {
			d[i] = (bank_deposit){ 1 + (done + i) * 7 % ACCOUNTS, 1 + (done + i + salt) % 13 };
			c[i] = (cqrs_command){ .type = BANK_DEPOSIT, .size = sizeof d[i], .data = &d[i],
					       .aggregate_id = d[i].account };
		}
		while (q < k) {
			int rc = cqrs_submit_batch(e, c + q, t + q, k - q);
			if (rc <= 0) {
				CHECK(rc == -EAGAIN || rc == 0);
				usleep(100);
				continue;
			}
			q += (uint32_t)rc;
		}
		for (uint32_t i = 0; i < k; i++) {
			CHECK(cqrs_ticket_wait(&t[i], UINT64_MAX) == 0);
			if (cqrs_ticket_seq(&t[i]) > hi)
				hi = cqrs_ticket_seq(&t[i]);
		}
		done += k;
	}
	return hi;
}

typedef struct rows {
	bank_row r[ACCOUNTS + 1];
	int n;
} rows;

static int take(void *arg, const void *row, size_t size)
{
	rows *rs = arg;
	bank_row b;

	if (size != sizeof b || rs->n > ACCOUNTS)
		return 1;
	memcpy(&b, row, sizeof b);
	rs->r[rs->n++] = b;
	return 0;
}

static int by_account(const void *a, const void *b)
{
	uint64_t x = ((const bank_row *)a)->account, y = ((const bank_row *)b)->account;
	return x < y ? -1 : x > y;
}

/* Waits until engine's balances view applied seq, then reads it whole. */
static void read_view(const char *engine, uint64_t seq, rows *out)
{
	cqrs_view *v;
	int rc;

	memset(out, 0, sizeof *out);
	CHECK(cqrs_view_open(engine, "balances", &v) == 0);
	rc = cqrs_view_wait(v, seq, 30ull * 1000000000);
	if (rc)
		fprintf(stderr, "view_wait(%s, %" PRIu64 "): %s, at %" PRIu64 "\n", engine, seq,
			cqrs_strerror(rc), cqrs_view_applied_seq(v));
	CHECK(rc == 0);
	CHECK(cqrs_view_applied_seq(v) == seq); /* nothing after seq exists */
	CHECK(cqrs_view_scan(v, take, out, CQRS_FIND_SNAPSHOT) >= 0);
	cqrs_view_close(v);
	qsort(out->r, (size_t)out->n, sizeof out->r[0], by_account);
}

static void views_equal(run *w, run *n, uint64_t seq)
{
	static rows a, b;

	read_view(w->name, seq, &a);
	read_view(n->name, seq, &b);
	fprintf(stderr, "  seq %" PRIu64 ": writer %d rows, node %d rows\n", seq, a.n, b.n);
	CHECK(a.n == ACCOUNTS && b.n == a.n);
	for (int i = 0; i < a.n; i++)
		CHECK(memcmp(&a.r[i], &b.r[i], sizeof a.r[i]) == 0);
}

/* Publishes to engine's journal subject a message naming seq whose one
 * record has a wrong checksum (what a hostile or broken publisher could
 * put in the stream). */
static int publish_bad(const char *engine, uint64_t seq)
{
	const char *urls[TN_MAX_NODES];
	char ubuf[TN_MAX_NODES][64], subj[96], num[24];
	_Alignas(8) uint8_t buf[CQRS_JREC_HEADER + 24] = { 0 };
	cqrs_jrec *r = (cqrs_jrec *)(void *)buf;
	natsOptions *o = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	int rc = -1;

	r->size = 24;
	r->type = 1;
	r->flags = CQRS_JREC_CMD_END;
	r->seq = seq;
	r->aggregate_id = 1;
	r->checksum = 12345; /* wrong */
	for (int i = 0; i < cl.n; i++) {
		tn_node_url(&cl, i, ubuf[i], sizeof ubuf[i]);
		urls[i] = ubuf[i];
	}
	snprintf(subj, sizeof subj, "cqrs.%s.journal", engine);
	snprintf(num, sizeof num, "%" PRIu64, seq);
	natsOptions_Create(&o);
	natsOptions_SetServers(o, urls, cl.n);
	if (natsConnection_Connect(&nc, o) == NATS_OK &&
	    natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
	    natsMsg_Create(&m, subj, NULL, (const char *)buf, (int)sizeof buf) == NATS_OK) {
		natsMsgHeader_Set(m, "Cqrs-First", num);
		natsMsgHeader_Set(m, "Cqrs-Last", num);
		if (js_PublishMsg(&pa, js, m, NULL, NULL) == NATS_OK) {
			jsPubAck_Destroy(pa);
			rc = 0;
		}
	}
	natsMsg_Destroy(m);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(o);
	return rc;
}

int main(void)
{
	const char *why = NULL;
	const cqrs_counters *c;
	uint64_t seq, msgs_before;
	bank_deposit d = { 1, 1 };
	cqrs_command cmd = { .type = BANK_DEPOSIT, .size = sizeof d, .data = &d, .aggregate_id = 1 };
	cqrs_ticket t;
	run w, n;

	if (!tn_available(&why)) {
		printf("skip: %s\n", why);
		return 77;
	}
	atexit(cleanup);
	CHECK(tn_cluster_start(&cl, 3, 20000) == 0);
	cluster_up = 1;

	make_run(&w, "nnw");
	make_run(&n, "nnn");
	start(&w, NULL);
	seq = load(w.e, 20000, 0);
	start(&n, w.name);
	fprintf(stderr, "equal views\n");
	views_equal(&w, &n, seq);
	CHECK(cqrs_submit(n.e, &cmd, &t) == -EPERM);

	fprintf(stderr, "restart\n");
	bank_stop(n.e, &n.m);
	seq = load(w.e, 5000, 3);
	start(&n, w.name);
	views_equal(&w, &n, seq);
	c = cqrs_engine_counters(n.e);
	msgs_before = LD(c->repl_messages);
	fprintf(stderr, "  after the restart the node took %" PRIu64 " messages (%" PRIu64
		" subscriptions), replayed %" PRIu64 " events\n", msgs_before, LD(c->repl_resyncs),
		LD(c->replayed));
	CHECK(msgs_before >= 1);
	CHECK(msgs_before <= 5000 / 256 + 3); /* only the new ones: one per batch at most */
	seq = load(w.e, 3000, 5);
	views_equal(&w, &n, seq);

	fprintf(stderr, "a record that does not verify\n");
	bank_stop(w.e, &w.m);
	c = cqrs_engine_counters(n.e);
	{
		uint64_t errs = LD(c->repl_errors);
		cqrs_view *v;
		CHECK(publish_bad(w.name, seq + 1) == 0);
		for (int i = 0; i < 300 && LD(c->repl_errors) == errs; i++)
			usleep(10000);
		CHECK(LD(c->repl_errors) > errs); /* seen, refused, resynced */
		usleep(300000);
		CHECK(cqrs_view_open(n.name, "balances", &v) == 0);
		CHECK(cqrs_view_applied_seq(v) == seq); /* nothing of it applied */
		cqrs_view_close(v);
		CHECK(cqrs_engine_durable_seq(n.e) == seq);
	}
	fprintf(stderr, "a writer whose stream is ahead of its journal\n");
	start(&w, NULL); /* ack level replicated, no timeout */
	c = cqrs_engine_counters(w.e);
	for (int i = 0; i < 500 && LD(c->repl_state) != CQRS_REPL_FAILED; i++)
		usleep(10000);
	CHECK(LD(c->repl_state) == CQRS_REPL_FAILED); /* never appends after a foreign message */
	/* Still serving: journaled, and the ticket says replication stopped. */
	CHECK(bank_do(w.e, BANK_DEPOSIT, 1, 1, 0, 0, NULL) == -EIO);
	CHECK(cqrs_engine_durable_seq(w.e) == seq + 1);

	bank_stop(n.e, &n.m);
	bank_stop(w.e, &w.m);
	cqrs_engine_remove_segments(n.name);
	cqrs_engine_remove_segments(w.name);
	tu_rmrf(n.dir);
	tu_rmrf(w.dir);
	cleanup();
	fprintf(stderr, "nats_node: ok\n");
	return 0;
}
