/*
 * tests/proc/nats_replication.c - the journal replicated to a real NATS
 * JetStream cluster (three nats-server processes started here,
 * tests/lib/nats_cluster.h); skipped (77) without nats-server.
 *
 *   stream:      under ack level replicated every ticket completes, and the
 *                stream equals the journal seq by seq (bytes, checksums,
 *                gapless, across segment rolls), with decodable schemas;
 *                `cqrs stat` shows replicated_seq, state and latency.
 *   node kill:   kill -9 of a node (the stream's leader) during a load:
 *                acknowledgements go on after a new leader is elected,
 *                and every acknowledged seq is in the stream afterwards.
 *   writer kill: kill -9 of a writer process under load; restarted, it
 *                catches up from its journal and the stream equals it
 *                (every acknowledged seq, nothing doubled).
 *   unavailable: no server at start: local ack keeps serving; replicated
 *                ack fails a ticket with -ETIMEDOUT (seq kept, reason
 *                given) after replication_timeout_ms; once the servers
 *                come, the replicator catches up from the journal and a
 *                replicated ticket completes.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "cqrs.h"
#include "cqrs_counters.h"
#include "tests/lib/bank.h"
#include "tests/lib/nats_cluster.h"
#include "tests/lib/nats_stream.h"
#include "tests/lib/testutil.h"

#define CHECK(c)                                                                     \
	do {                                                                         \
		if (!(c)) {                                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			exit(1);                                                     \
		}                                                                    \
	} while (0)

static tn_cluster cl;
static int cluster_up;
static const char *cfg_urls;
static int cfg_ack = CQRS_ACK_REPLICATED;
static uint32_t cfg_timeout_ms = 0;

static void log_line(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	fprintf(stderr, "  [engine] %s\n", msg);
}

static void hook(cqrs_config *cfg)
{
	cfg->log = log_line;
	cfg->replication_urls = cfg_urls;
	cfg->ack_level = cfg_ack;
	cfg->replication_timeout_ms = cfg_timeout_ms;
	cfg->max_batch_commands = 256;
}

static void cleanup(void)
{
	if (cluster_up)
		tn_cluster_stop(&cl);
	cluster_up = 0;
}

typedef struct run {
	char name[64], dir[256], jdir[300];
	bank_model m;
	cqrs_engine *e;
} run;

static void run_open(run *r)
{
	int rc;

	bank_config_hook = hook;
	rc = bank_start(r->name, r->dir, CQRS_DURABILITY_BATCH, 1024, CQRS_ON_ERROR_SKIP, &r->m, &r->e);
	if (rc)
		fprintf(stderr, "bank_start: %s: %s\n", cqrs_strerror(rc), cqrs_last_error());
	CHECK(rc == 0);
}

static void run_start(run *r, const char *prefix)
{
	tu_unique_name(r->name, sizeof r->name, prefix);
	CHECK(tu_mkdtemp(r->dir, sizeof r->dir, prefix) == 0);
	snprintf(r->jdir, sizeof r->jdir, "%s/journal", r->dir);
	run_open(r);
}

static void run_end(run *r)
{
	bank_stop(r->e, &r->m);
	cqrs_engine_remove_segments(r->name);
	tu_rmrf(r->dir);
}

/* Submits n deposits pipelined (window w), waits for each; returns the
 * highest acknowledged seq; *failed counts non-zero statuses. */
static uint64_t load(cqrs_engine *e, uint32_t n, uint32_t w, uint32_t *failed)
{
	cqrs_ticket *t = calloc(w, sizeof *t);
	bank_deposit *d = calloc(w, sizeof *d);
	cqrs_command *c = calloc(w, sizeof *c);
	uint64_t hi = 0;

	CHECK(t && d && c);
	for (uint32_t done = 0; done < n;) {
		uint32_t k = n - done < w ? n - done : w, q = 0;
		for (uint32_t i = 0; i < k; i++) {
			d[i] = (bank_deposit){ 1 + (done + i) % 97, 1 };
			c[i] = (cqrs_command){ .type = BANK_DEPOSIT, .size = sizeof d[i], .data = &d[i],
					       .aggregate_id = d[i].account };
		}
		while (q < k) {
			int rc = cqrs_submit_batch(e, c + q, t + q, k - q);
			if (rc == -EAGAIN || rc == 0) {
				usleep(100);
				continue;
			}
			CHECK(rc > 0);
			q += (uint32_t)rc;
		}
		for (uint32_t i = 0; i < k; i++) {
			int st = cqrs_ticket_wait(&t[i], UINT64_MAX);
			if (st)
				(*failed)++;
			else if (cqrs_ticket_seq(&t[i]) > hi)
				hi = cqrs_ticket_seq(&t[i]);
		}
		done += k;
	}
	free(t);
	free(d);
	free(c);
	return hi;
}

static const cqrs_counters *ctr(run *r) { return cqrs_engine_counters(r->e); }

/* Counters are written by engine threads: read them relaxed. */
#define CTR(r, f) __atomic_load_n(&ctr(r)->f, __ATOMIC_RELAXED)

/* Waits until the replicator caught up with durable_seq. */
static int wait_caught_up(run *r, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (CTR(r, replicated_seq) == cqrs_engine_durable_seq(r->e))
			return 0;
		usleep(10000);
	}
	return -1;
}

static void check_stream(run *r, uint64_t want_last)
{
	tn_stream_stats st;

	CHECK(tn_stream_matches_journal(cl.urls, r->name, r->jdir, &st) == 0);
	fprintf(stderr, "  stream: %" PRIu64 " journal messages, %" PRIu64 " schema messages, "
		"last seq %" PRIu64 "\n", st.messages, st.schemas, st.last_seq);
	CHECK(st.last_seq == want_last);
	CHECK(st.schemas >= 1);
}

/* `cqrs stat` (the release tool, $BUILD/cqrs) shows the replication
 * counters; skipped when the tool is not built. */
static void stat_shows(const char *engine, uint64_t seq)
{
	const char *build = getenv("BUILD");
	char cmd[512], out[16384], want[64];
	size_t n;
	FILE *f;

	snprintf(cmd, sizeof cmd, "%s/cqrs", build && *build ? build : "build");
	if (access(cmd, X_OK)) {
		fprintf(stderr, "  (no %s: cqrs stat not checked)\n", cmd);
		return;
	}
	snprintf(cmd, sizeof cmd, "%s/cqrs stat %s --json", build && *build ? build : "build", engine);
	f = popen(cmd, "r");
	CHECK(f);
	n = fread(out, 1, sizeof out - 1, f);
	out[n] = 0;
	CHECK(pclose(f) == 0);
	snprintf(want, sizeof want, "\"replicated_seq\":%" PRIu64, seq);
	CHECK(strstr(out, want));
	CHECK(strstr(out, "\"repl_state\":3"));
	CHECK(strstr(out, "\"repl_latency_ns\":{\"p50\":"));
	snprintf(cmd, sizeof cmd, "%s/cqrs stat %s", build && *build ? build : "build", engine);
	f = popen(cmd, "r");
	CHECK(f);
	n = fread(out, 1, sizeof out - 1, f);
	out[n] = 0;
	CHECK(pclose(f) == 0);
	CHECK(strstr(out, "replicated seq") && strstr(out, "streaming, lag 0 events"));
}

static void test_stream(void)
{
	run r;
	uint32_t failed = 0;
	uint64_t hi;

	fprintf(stderr, "stream equals journal\n");
	cfg_urls = cl.urls;
	cfg_ack = CQRS_ACK_REPLICATED;
	cfg_timeout_ms = 0;
	run_start(&r, "nrs");
	hi = load(r.e, 30000, 4096, &failed);
	CHECK(failed == 0);
	CHECK(hi == 30000);
	CHECK(CTR(&r, replicated_seq) >= hi); /* acknowledged = replicated */
	CHECK(CTR(&r, repl_state) == CQRS_REPL_STREAMING);
	CHECK(CTR(&r, repl_messages) > 1);
	check_stream(&r, hi);
	stat_shows(r.name, hi);
	run_end(&r);
}

typedef struct loader {
	cqrs_engine *e;
	_Atomic int stop;
	_Atomic uint64_t acked;
	_Atomic uint64_t rounds;
	uint32_t failed;
} loader;

static void *load_main(void *arg)
{
	loader *l = arg;

	while (!atomic_load(&l->stop)) {
		uint64_t hi = load(l->e, 512, 512, &l->failed);
		if (hi > atomic_load(&l->acked))
			atomic_store(&l->acked, hi);
		atomic_fetch_add(&l->rounds, 1);
	}
	return NULL;
}

static void test_node_kill(void)
{
	loader l = { 0 };
	pthread_t th;
	uint64_t acked_at_kill, rounds_at_kill;
	int leader;
	run r;

	fprintf(stderr, "kill -9 of the stream's leader during load\n");
	cfg_urls = cl.urls;
	cfg_ack = CQRS_ACK_REPLICATED;
	cfg_timeout_ms = 0;
	run_start(&r, "nrk");
	l.e = r.e;
	CHECK(pthread_create(&th, NULL, load_main, &l) == 0);
	while (atomic_load(&l.acked) < 5000)
		usleep(10000);
	leader = tn_stream_leader(cl.urls, r.name);
	CHECK(leader >= 0 && leader < 3);
	acked_at_kill = atomic_load(&l.acked);
	rounds_at_kill = atomic_load(&l.rounds);
	fprintf(stderr, "  killing node n%d (the leader) at acked seq %" PRIu64 "\n", leader,
		acked_at_kill);
	tn_node_kill(&cl, leader);
	/* The stream keeps accepting: acknowledgements resume with a new leader. */
	for (int i = 0; i < 3000 && atomic_load(&l.rounds) < rounds_at_kill + 20; i++)
		usleep(10000);
	fprintf(stderr, "  %" PRIu64 " rounds acknowledged after the kill, acked seq %" PRIu64 "\n",
		atomic_load(&l.rounds) - rounds_at_kill, atomic_load(&l.acked));
	CHECK(atomic_load(&l.rounds) >= rounds_at_kill + 20);
	CHECK(atomic_load(&l.acked) > acked_at_kill);
	atomic_store(&l.stop, 1);
	pthread_join(th, NULL);
	CHECK(l.failed == 0);
	CHECK(tn_node_restart(&cl, leader) == 0);
	CHECK(tn_cluster_wait_ready(&cl, 20000) == 0);
	/* Every acknowledged seq is in the stream, in order, as journaled. */
	CHECK(wait_caught_up(&r, 20000) == 0);
	check_stream(&r, cqrs_engine_durable_seq(r.e));
	CHECK(cqrs_engine_durable_seq(r.e) >= atomic_load(&l.acked));
	fprintf(stderr, "  errors %" PRIu64 ", resyncs %" PRIu64 "\n", CTR(&r, repl_errors),
		CTR(&r, repl_resyncs));
	run_end(&r);
}

/* A writer process killed with -9 under load (ack level replicated):
 * restarted on its journal, its replicator resyncs from the stream's tail
 * and the stream ends up equal to the journal, every acknowledged seq in
 * it, nothing doubled. */
static void test_writer_kill(void)
{
	run r;
	int fds[2];
	uint64_t acked = 0, got;
	uint32_t failed = 0;
	pid_t pid;

	fprintf(stderr, "kill -9 of the writer under load, restart\n");
	if (getenv("CQRS_SAN") && !strcmp(getenv("CQRS_SAN"), "tsan")) {
		/* fork() of this multi-threaded process runs jemalloc's atfork
		 * handlers, more locks than ThreadSanitizer tracks */
		fprintf(stderr, "  skipped under ThreadSanitizer\n");
		return;
	}
	cfg_urls = cl.urls;
	cfg_ack = CQRS_ACK_REPLICATED;
	cfg_timeout_ms = 0;
	tu_unique_name(r.name, sizeof r.name, "nrw");
	CHECK(tu_mkdtemp(r.dir, sizeof r.dir, "nrw") == 0);
	snprintf(r.jdir, sizeof r.jdir, "%s/journal", r.dir);
	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		cluster_up = 0; /* the parent's cluster: never stopped from here */
		close(fds[0]);
		run_open(&r);
		for (;;) {
			uint64_t hi = load(r.e, 512, 512, &failed);
			if (failed || write(fds[1], &hi, sizeof hi) != sizeof hi)
				_exit(3);
		}
	}
	close(fds[1]);
	while (acked < 8000 && read(fds[0], &got, sizeof got) == sizeof got)
		acked = got;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	fprintf(stderr, "  killed the writer at acked seq %" PRIu64 "\n", acked);
	CHECK(acked >= 8000);
	run_open(&r);
	CHECK(cqrs_engine_durable_seq(r.e) >= acked);
	CHECK(wait_caught_up(&r, 30000) == 0);
	check_stream(&r, cqrs_engine_durable_seq(r.e));
	CHECK(load(r.e, 1000, 256, &failed) > acked && failed == 0);
	check_stream(&r, cqrs_engine_durable_seq(r.e));
	run_end(&r);
}

static void test_unavailable(void)
{
	char urls[256];
	cqrs_ticket t;
	bank_deposit d = { 5, 1 };
	cqrs_command c = { .type = BANK_DEPOSIT, .size = sizeof d, .data = &d, .aggregate_id = 5 };
	uint32_t failed = 0;
	uint64_t hi, t0;
	run r, r2;
	int st;

	fprintf(stderr, "servers unavailable at start\n");
	snprintf(urls, sizeof urls, "%s", cl.urls);
	cleanup(); /* the ports stay this test's: nothing listens on them now */
	cfg_urls = urls;
	cfg_ack = CQRS_ACK_LOCAL;
	run_start(&r, "nru");
	hi = load(r.e, 2000, 256, &failed);
	CHECK(failed == 0 && hi == 2000); /* local keeps serving */
	CHECK(CTR(&r, replicated_seq) == 0);
	CHECK(CTR(&r, repl_state) == CQRS_REPL_CONNECTING);

	cfg_ack = CQRS_ACK_REPLICATED;
	cfg_timeout_ms = 300;
	run_start(&r2, "nrv");
	t0 = cqrs__mono_ns();
	CHECK(cqrs_submit(r2.e, &c, &t) == 0);
	st = cqrs_ticket_wait(&t, UINT64_MAX);
	fprintf(stderr, "  replicated without servers: %s after %.0f ms, seq %" PRIu64 ", \"%s\"\n",
		cqrs_strerror(st), (double)(cqrs__mono_ns() - t0) / 1e6, cqrs_ticket_seq(&t),
		cqrs_ticket_reason(&t));
	CHECK(st == -ETIMEDOUT);
	CHECK(cqrs_ticket_seq(&t) == 1);
	CHECK(strstr(cqrs_ticket_reason(&t), "not acknowledged by the stream"));
	for (int i = 0; i < 100 && CTR(&r2, repl_timeouts) != 1; i++)
		usleep(10000); /* counted just after the ticket completes */
	CHECK(CTR(&r2, repl_timeouts) == 1);

	/* The servers come (same ports): both catch up from their journals. */
	{
		int base = cl.base;
		char b[16];
		snprintf(b, sizeof b, "%d", base);
		setenv("CQRS_NATS_PORT_BASE", b, 1);
		CHECK(tn_cluster_start(&cl, 3, 20000) == 0);
		cluster_up = 1;
		unsetenv("CQRS_NATS_PORT_BASE");
		CHECK(strcmp(cl.urls, urls) == 0);
	}
	CHECK(wait_caught_up(&r, 30000) == 0);
	check_stream(&r, 2000);
	cfg_timeout_ms = 0;
	CHECK(wait_caught_up(&r2, 30000) == 0);
	CHECK(cqrs_submit(r2.e, &c, &t) == 0);
	CHECK(cqrs_ticket_wait(&t, UINT64_MAX) == 0);
	CHECK(cqrs_ticket_seq(&t) == 2);
	CHECK(CTR(&r2, replicated_seq) >= 2);
	check_stream(&r2, 2);
	run_end(&r);
	run_end(&r2);
}

int main(void)
{
	const char *why = NULL;

	if (!tn_available(&why)) {
		printf("skip: %s\n", why);
		return 77;
	}
	atexit(cleanup);
	CHECK(tn_cluster_start(&cl, 3, 20000) == 0);
	cluster_up = 1;
	test_stream();
	test_node_kill();
	test_writer_kill();
	test_unavailable();
	cleanup();
	fprintf(stderr, "nats_replication: ok\n");
	return 0;
}
