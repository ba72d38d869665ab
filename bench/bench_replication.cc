/*
 * bench/bench_replication.cc - the journal replicated to NATS JetStream
 * beside a bare JetStream publish loop, same run, same three-node cluster
 * on loopback (tests/lib/nats_cluster.h), same C client and options.
 *
 *   BM_ReplicatedCatchUp  the replicator alone: kEvents journaled without
 *                       replication, the engine reopened with it, timed
 *                       from its first resync until replicated_seq is the
 *                       last (a catch-up after an outage); its message
 *                       count and sizes are the bare loop's.
 *   BM_Replicated       an engine (ack local, batch durability) takes
 *                       kEvents commands of one 64-byte event each, pipelined;
 *                       timed from the first submission until the
 *                       replicator's replicated_seq reaches the last:
 *                       events/s and journal MB/s into the stream.
 *   BM_BareJetStream    the same number of messages of the same mean size
 *                       as the catch-up sent (its counters), published
 *                       one at a time with a message id and the expected
 *                       last sequence, as the replicator does, to a stream
 *                       of the same kind (file storage, R3).
 *   BM_NodeVisible      one command at a time (ack level replicated) on a
 *                       writer with a view, and a view node of it in the
 *                       same process: submit -> visible on the writer and
 *                       -> visible on the node (cqrs_view_wait), p50/p99.
 * Without nats-server both are skipped (the table says so).
 */
#include "bench/harness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <nats/nats.h>

extern "C" {
#include "cqrs.h"
#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "tests/lib/nats_cluster.h"
#include "tests/lib/testutil.h"
}

namespace {

#define PUT_FIELDS(F) F(u64, id) F(u64, value) F(bytes, pad, 48)
CQRS_RECORD(put_cmd, "Put", PUT_FIELDS)
CQRS_RECORD(put_ev, "PutDone", PUT_FIELDS)

constexpr uint32_t kEvents = 400000;
constexpr uint32_t kBatch = 1024;
constexpr uint32_t kDepth = 6;

tn_cluster g_cl;
bool g_up;
uint64_t g_messages, g_bytes; /* what BM_Replicated sent */

template <class T> T ctr(const T &v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }

double now_s()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int decide(cqrs_ctx *ctx, const void *cmd, void *model)
{
	(void)model;
	return cqrs_emit(ctx, 1, ((const put_cmd *)cmd)->id, cmd);
}

#define ROW_FIELDS(F) F(u64, id) F(u64, value) F(u64, seq)
CQRS_RECORD(put_row, "PutRow", ROW_FIELDS)

int apply(cqrs_proj *p, const cqrs_event *ev, void *arg)
{
	(void)arg;
	const put_ev *e = (const put_ev *)ev->data;
	put_row r = { e->id, e->value, ev->seq };
	return cqrs_proj_upsert(p, 0, &r);
}

/* An engine of the Put domain under a fresh name and folder: a writer
 * replicating to the cluster (views: with the "puts" view), or a view
 * node of writer node_of. */
struct engine_run {
	char name[64], dir[256];
	cqrs_engine *e = nullptr;

	/* again: reopen this run's engine (name and folder) instead of a
	 * fresh one; replicate: set replication_urls. */
	int open(bool views, int ack, const char *node_of, bool replicate = true, bool again = false)
	{
		if (!again) {
			tu_unique_name(name, sizeof name, node_of ? "bnode" : "brepl");
			if (tu_mkdtemp(dir, sizeof dir, "cqrs_brepl"))
				return -1;
		}
		cqrs_config cfg;
		cqrs_config_init(&cfg);
		cfg.name = name;
		cfg.data_dir = dir;
		cfg.durability = CQRS_DURABILITY_BATCH;
		cfg.replication_urls = replicate ? g_cl.urls : nullptr;
		cfg.ack_level = ack;
		cfg.node_of = node_of;
		cfg.aggregates_hint = 1u << 20;
		int rc = cqrs_engine_open(&cfg, nullptr, &e);
		if (!rc)
			rc = cqrs_register_command(e, 1, put_cmd_schema(), decide);
		if (!rc)
			rc = cqrs_register_event(e, 1, put_ev_schema(), nullptr);
		if (!rc && views) {
			cqrs_projection_def pd = {};
			pd.name = "puts";
			pd.views[0].name = "puts";
			pd.views[0].row = put_row_schema();
			pd.views[0].key_field = "id";
			pd.views[0].capacity = 1u << 12;
			pd.nviews = 1;
			pd.apply = apply;
			rc = cqrs_register_projection(e, &pd);
		}
		if (!rc)
			rc = cqrs_engine_start(e);
		if (rc)
			fprintf(stderr, "engine: %s (%s)\n", cqrs_strerror(rc), cqrs_last_error());
		return rc;
	}

	void close()
	{
		if (e)
			cqrs_engine_close(e);
		e = nullptr;
	}

	~engine_run()
	{
		close();
		if (name[0])
			cqrs_engine_remove_segments(name);
		if (dir[0])
			tu_rmrf(dir);
	}
};

/* Submits kEvents Put commands pipelined (kDepth x kBatch in flight) and
 * waits for every ticket. */
void put_all(cqrs_engine *e)
{
	struct slot {
		put_cmd p[kBatch];
		cqrs_command cmds[kBatch];
		cqrs_ticket t[kBatch];
		uint32_t n = 0;
	};
	std::vector<slot> slots(kDepth);
	uint64_t next = 0;
	for (uint32_t k = 0; next < kEvents; k++) {
		slot &s = slots[k % kDepth];
		for (uint32_t i = 0; i < s.n; i++)
			cqrs_ticket_wait(&s.t[i], UINT64_MAX);
		s.n = 0;
		for (uint32_t i = 0; i < kBatch && next < kEvents; i++, s.n++) {
			s.p[i] = put_cmd{ 1 + next % 100000, next, {} };
			s.cmds[i] = cqrs_command{ 1, sizeof(put_cmd), &s.p[i], s.p[i].id };
			next++;
		}
		for (uint32_t q = 0; q < s.n;) {
			int r = cqrs_submit_batch(e, s.cmds + q, s.t + q, s.n - q);
			if (r > 0)
				q += (uint32_t)r;
			else
				usleep(50);
		}
	}
	for (auto &s : slots)
		for (uint32_t i = 0; i < s.n; i++)
			cqrs_ticket_wait(&s.t[i], UINT64_MAX);
}

/* The replicator alone: kEvents journaled without replication, then the
 * engine reopened with it, timed from the replicator's first resync until
 * the stream holds the last seq (a catch-up after an outage). */
void BM_ReplicatedCatchUp(benchmark::State &state)
{
	if (!g_up) {
		state.SkipWithError("nats-server is not installed");
		return;
	}
	engine_run w;
	if (w.open(false, CQRS_ACK_LOCAL, nullptr, false)) {
		state.SkipWithError("engine start failed");
		return;
	}
	put_all(w.e);
	w.close();
	for (auto _ : state) {
		if (w.open(false, CQRS_ACK_LOCAL, nullptr, true, true)) {
			state.SkipWithError("engine restart failed");
			return;
		}
		const cqrs_counters *c = cqrs_engine_counters(w.e);
		while (ctr(c->repl_state) != CQRS_REPL_STREAMING)
			usleep(100);
		double t0 = now_s();
		while (ctr(c->replicated_seq) < kEvents)
			usleep(100);
		state.SetIterationTime(now_s() - t0);
		g_messages = ctr(c->repl_messages);
		g_bytes = ctr(c->repl_bytes);
	}
	state.SetItemsProcessed((int64_t)state.iterations() * kEvents);
	state.SetBytesProcessed((int64_t)g_bytes * (int64_t)state.iterations());
	state.counters["messages"] = (double)g_messages;
	state.counters["bytes_per_msg"] = g_messages ? (double)g_bytes / (double)g_messages : 0;
}

void BM_Replicated(benchmark::State &state)
{
	if (!g_up) {
		state.SkipWithError("nats-server is not installed");
		return;
	}
	engine_run w;
	if (w.open(false, CQRS_ACK_LOCAL, nullptr)) {
		state.SkipWithError("engine start failed");
		return;
	}
	cqrs_engine *e = w.e;
	const cqrs_counters *c = cqrs_engine_counters(e);
	/* The stream exists and the replicator streams before timing. */
	while (ctr(c->repl_state) != CQRS_REPL_STREAMING)
		usleep(1000);
	uint64_t messages = 0, bytes = 0;
	for (auto _ : state) {
		uint64_t m0 = ctr(c->repl_messages), b0 = ctr(c->repl_bytes);
		uint64_t base = cqrs_engine_durable_seq(e);
		double t0 = now_s();
		put_all(e);
		while (ctr(c->replicated_seq) < base + kEvents)
			usleep(100);
		state.SetIterationTime(now_s() - t0);
		messages = ctr(c->repl_messages) - m0;
		bytes = ctr(c->repl_bytes) - b0;
	}
	state.SetItemsProcessed((int64_t)state.iterations() * kEvents);
	state.SetBytesProcessed((int64_t)bytes * (int64_t)state.iterations());
	state.counters["messages"] = (double)messages;
	state.counters["bytes_per_msg"] = messages ? (double)bytes / (double)messages : 0;
	state.counters["publish_errors"] = (double)ctr(c->repl_errors);
}

uint64_t quantile(std::vector<uint64_t> &v, double q)
{
	std::sort(v.begin(), v.end());
	return v.empty() ? 0 : v[(size_t)(q * (double)(v.size() - 1))];
}

/* One command at a time (closed loop, ack level replicated): submit ->
 * visible in the writer's view and -> visible in the node's view
 * (cqrs_view_wait on each). */
void BM_NodeVisible(benchmark::State &state)
{
	if (!g_up) {
		state.SkipWithError("nats-server is not installed");
		return;
	}
	engine_run w, n;
	if (w.open(true, CQRS_ACK_REPLICATED, nullptr) || n.open(true, CQRS_ACK_LOCAL, w.name)) {
		state.SkipWithError("engine start failed");
		return;
	}
	cqrs_view *wv = nullptr, *nv = nullptr;
	if (cqrs_view_open(w.name, "puts", &wv) || cqrs_view_open(n.name, "puts", &nv)) {
		state.SkipWithError("view open failed");
		if (wv)
			cqrs_view_close(wv);
		return;
	}
	std::vector<uint64_t> on_writer, on_node;
	uint64_t k = 0;
	for (auto _ : state) {
		put_cmd p{ 1 + k % 1000, k, {} };
		cqrs_command cmd{ 1, sizeof p, &p, p.id };
		cqrs_ticket t;
		double t0 = now_s();
		if (cqrs_submit(w.e, &cmd, &t) || cqrs_ticket_wait(&t, UINT64_MAX)) {
			state.SkipWithError("submit failed");
			break;
		}
		uint64_t seq = cqrs_ticket_seq(&t);
		if (cqrs_view_wait(wv, seq, 10ull * 1000000000))
			break;
		double t1 = now_s();
		if (cqrs_view_wait(nv, seq, 10ull * 1000000000)) {
			state.SkipWithError("node did not apply");
			break;
		}
		double t2 = now_s();
		on_writer.push_back((uint64_t)((t1 - t0) * 1e9));
		on_node.push_back((uint64_t)((t2 - t0) * 1e9));
		k++;
	}
	cqrs_view_close(wv);
	cqrs_view_close(nv);
	state.counters["writer_p50_ns"] = (double)quantile(on_writer, 0.5);
	state.counters["writer_p99_ns"] = (double)quantile(on_writer, 0.99);
	state.counters["node_p50_ns"] = (double)quantile(on_node, 0.5);
	state.counters["node_p99_ns"] = (double)quantile(on_node, 0.99);
}

void BM_BareJetStream(benchmark::State &state)
{
	if (!g_up || !g_messages) {
		state.SkipWithError(!g_up ? "nats-server is not installed" : "no replicated run to match");
		return;
	}
	const char *urls[TN_MAX_NODES];
	char ubuf[TN_MAX_NODES][64], stream[64], subj[96], id[64];
	for (int i = 0; i < g_cl.n; i++) {
		tn_node_url(&g_cl, i, ubuf[i], sizeof ubuf[i]);
		urls[i] = ubuf[i];
	}
	snprintf(stream, sizeof stream, "BARE_%d", (int)getpid());
	snprintf(subj, sizeof subj, "bare.%d.journal", (int)getpid());
	natsOptions *o = nullptr;
	natsConnection *nc = nullptr;
	jsCtx *js = nullptr;
	jsStreamInfo *si = nullptr;
	jsStreamConfig sc;
	jsErrCode jerr = (jsErrCode)0;
	const char *subjects[1] = { subj };
	natsOptions_Create(&o);
	natsOptions_SetServers(o, urls, g_cl.n);
	natsOptions_SetNoRandomize(o, true);
	if (natsConnection_Connect(&nc, o) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, nullptr) != NATS_OK) {
		natsOptions_Destroy(o);
		state.SkipWithError("connect failed");
		return;
	}
	natsOptions_Destroy(o);
	jsStreamConfig_Init(&sc);
	sc.Name = stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = 3;
	sc.Duplicates = INT64_C(120) * 1000000000;
	if (js_AddStream(&si, js, &sc, nullptr, &jerr) != NATS_OK) {
		state.SkipWithError("stream create failed");
		jsCtx_Destroy(js);
		natsConnection_Destroy(nc);
		return;
	}
	jsStreamInfo_Destroy(si);
	size_t size = (size_t)(g_bytes / g_messages);
	std::vector<char> payload(size, 'x');
	uint64_t last = 0, n = 0;
	for (auto _ : state) {
		double t0 = now_s();
		for (uint64_t k = 0; k < g_messages; k++, n++) {
			natsMsg *m = nullptr;
			jsPubAck *pa = nullptr;
			jsPubOptions po;
			char num[24];
			natsMsg_Create(&m, subj, nullptr, payload.data(), (int)size);
			snprintf(num, sizeof num, "%" PRIu64, n);
			natsMsgHeader_Set(m, "Cqrs-First", num);
			natsMsgHeader_Set(m, "Cqrs-Last", num);
			jsPubOptions_Init(&po);
			po.MaxWait = 2000;
			snprintf(id, sizeof id, "bare:%" PRIu64, n);
			po.MsgId = id;
			po.ExpectStream = stream;
			po.ExpectLastSeq = last;
			if (js_PublishMsg(&pa, js, m, &po, &jerr) == NATS_OK) {
				last = pa->Sequence;
				jsPubAck_Destroy(pa);
			}
			natsMsg_Destroy(m);
		}
		state.SetIterationTime(now_s() - t0);
	}
	double events_per_msg = (double)kEvents / (double)g_messages;
	state.SetItemsProcessed((int64_t)((double)n * events_per_msg));
	state.SetBytesProcessed((int64_t)(n * size));
	state.counters["messages"] = (double)g_messages;
	state.counters["bytes_per_msg"] = (double)size;
	js_DeleteStream(js, stream, nullptr, nullptr);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

BENCHMARK(BM_ReplicatedCatchUp)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Replicated)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BareJetStream)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NodeVisible)->Iterations(2000)->Unit(benchmark::kMicrosecond);

} /* namespace */

int main(int argc, char **argv)
{
	const char *why = nullptr;
	if (tn_available(&why)) {
		int rc = tn_cluster_start(&g_cl, 3, 20000);
		g_up = rc == 0;
		if (rc)
			fprintf(stderr, "bench_replication: cluster start failed: %s\n", strerror(-rc));
	} else {
		fprintf(stderr, "bench_replication: %s\n", why);
	}
	int rc = cqrs_bench::main(argc, argv, "replication",
				  "journal into a 3-node JetStream (R3, loopback) vs a bare publish loop", {
		{ "replicated events/s (catch-up)", "BM_ReplicatedCatchUp/iterations:1/manual_time",
		  "BM_BareJetStream/iterations:1/manual_time", "items_per_second", true,
		  "bare: same message count and mean size, sync publish" },
		{ "replicated bytes/s (catch-up)", "BM_ReplicatedCatchUp/iterations:1/manual_time",
		  "BM_BareJetStream/iterations:1/manual_time", "bytes_per_second", true, "" },
		{ "replicated events/s (live)", "BM_Replicated/iterations:1/manual_time",
		  "BM_BareJetStream/iterations:1/manual_time", "items_per_second", true,
		  "the engine deciding and journaling beside it" },
		{ "visible on a node p50 (ns)", "BM_NodeVisible/iterations:2000",
		  "", "node_p50_ns", false, "one command at a time, ack replicated" },
		{ "visible on the writer p50 (ns)", "BM_NodeVisible/iterations:2000",
		  "", "writer_p50_ns", false, "the same commands, the writer's own view" },
		{ "visible on a node p99 (ns)", "BM_NodeVisible/iterations:2000",
		  "", "node_p99_ns", false, "" },
		{ "visible on the writer p99 (ns)", "BM_NodeVisible/iterations:2000",
		  "", "writer_p99_ns", false, "" },
	});
	if (g_up)
		tn_cluster_stop(&g_cl);
	return rc;
}
