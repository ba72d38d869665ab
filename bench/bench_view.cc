/*
 * bench/bench_view.cc - shared-memory view reads beside LMDB and SQLite, in
 * the same run on the same data.
 *
 * Data: order summaries (80-byte rows, key order_id, customer_id indexed),
 * a small hot set of 10k rows and a large set of 10M rows (1M with
 * CQRS_BENCH_LARGE=0, for a quicker run), 10 orders per customer. The view lives in /dev/shm;
 * the LMDB environment too (/dev/shm/cqrs_bench_lmdb_*, MDB_INTEGERKEY,
 * NOSYNC), so both are memory; SQLite is an in-memory database with an
 * index on customer_id.
 *
 * Point gets: random keys (precomputed), batches of 1024 per iteration,
 * rates in CPU time of the measuring reader process (lookups per second per
 * core). Every 64th get is timed alone for p50/p99 (includes ~20 ns of
 * clock reads). Variants: idle or with a concurrent writer process
 * rewriting random rows at full speed (ours: upserts in batches of 64;
 * LMDB: write txns of 64 puts), and 1 or 2 reader processes (the second one
 * runs the same loop in a forked process with its own handle or env).
 * LMDB readers keep one read txn per 1024-get batch (renewed), its cheapest
 * honest use; each of our gets sees the latest row.
 *
 * Secondary index: all orders of one random customer (10 rows), ours via
 * cqrs_view_find (plain and snapshot), SQLite via a prepared indexed SELECT
 * stepping every column.
 *
 * Ordered index: a third data set of 1M orders (CQRS_BENCH_ORDERED_ROWS)
 * with an ordered index on (customer_id, order_id), beside an LMDB
 * database of the same rows keyed by the same composite key (16 bytes
 * big-endian, LMDB's default memcmp order). Seek: the first order of a
 * random customer (cqrs_view_seek vs mdb_cursor_get MDB_SET_RANGE); the
 * customer's 10 orders (cqrs_view_range [c, c+1) vs MDB_SET_RANGE then
 * MDB_NEXT while the prefix matches); a scan of 100 rows from a random
 * customer (limit 100 vs SET_RANGE + 99 NEXT). Both sides copy each row
 * out (ours out of the B+tree's leaf, which carries the 80-byte row, under
 * the leaf's version; LMDB's row is memcpy'd out of the map). The view is
 * loaded in order_id order (leaves split as they fill, ~2/3 full), LMDB
 * with MDB_APPEND in key order (pages full); both live in /dev/shm with
 * 4 KiB pages, so every random node is a TLB and cache miss on both
 * sides; LMDB keeps one read txn and cursor per 1024 operations
 * (renewed); rates in CPU time of the reader (per core). Seek also runs
 * with a concurrent writer process (ours: upserts in batches of 64; LMDB:
 * write txns of 64 puts).
 */
#include <benchmark/benchmark.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "bench/lib/view_bench.h"
#include "cqrs_view.h"

namespace {

constexpr int BATCH = 1024;
constexpr int SAMPLE_EVERY = 64;
constexpr size_t NKEYS = 1u << 20;
constexpr size_t NSAMPLES = 1u << 16;

struct dataset {
	int slot = 0;
	uint64_t rows = 0, customers = 0;
	std::string engine, lmdb_dir;
	MDB_env *env = nullptr;
	MDB_dbi dbi = 0;
	cqrs_view *v = nullptr;
	sqlite3 *db = nullptr;
	std::vector<uint64_t> keys, custs;
};

dataset *sets[2];

uint64_t large_rows()
{
	const char *e = getenv("CQRS_BENCH_LARGE");
	return e && strcmp(e, "0") == 0 ? 1000000 : 10000000;
}

std::string size_label(int which)
{
	return which == 0 ? "10k" : large_rows() == 10000000 ? "10M" : "1M";
}

[[noreturn]] void die(const char *what, int rc)
{
	fprintf(stderr, "bench_view: %s: %d %s (%s)\n", what, rc, cqrs_strerror(rc), cqrs_last_error());
	exit(1);
}

MDB_env *lmdb_open(const dataset *d, MDB_dbi *dbi)
{
	MDB_env *env;
	MDB_txn *txn;
	int rc = mdb_env_create(&env);

	if (!rc)
		rc = mdb_env_set_mapsize(env, d->rows * 256 + (64u << 20));
	if (!rc)
		rc = mdb_env_set_maxreaders(env, 64);
	if (!rc)
		rc = mdb_env_open(env, d->lmdb_dir.c_str(), MDB_NOSYNC | MDB_NOMETASYNC, 0644);
	if (!rc)
		rc = mdb_txn_begin(env, nullptr, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, nullptr, MDB_INTEGERKEY, dbi);
	if (!rc)
		rc = mdb_txn_commit(txn);
	if (rc) {
		fprintf(stderr, "bench_view: lmdb: %s\n", mdb_strerror(rc));
		exit(1);
	}
	return env;
}

dataset *get_set(int which)
{
	if (sets[which])
		return sets[which];
	auto *d = new dataset;
	char tmpl[] = "/dev/shm/cqrs_bench_lmdb_XXXXXX";
	vbench_row r;
	MDB_txn *txn;
	int rc;

	d->slot = which;
	d->rows = which == 0 ? 10000 : large_rows();
	d->customers = d->rows / 10;
	d->engine = "bench_view_" + std::to_string(getpid()) + "_" + std::to_string(which);
	rc = vbench_view_create(which, d->engine.c_str(), d->rows, d->customers);
	if (rc)
		die("view create", rc);
	rc = cqrs_view_open(d->engine.c_str(), "orders", &d->v);
	if (rc)
		die("view open", rc);

	if (!mkdtemp(tmpl))
		die("mkdtemp", -errno);
	d->lmdb_dir = tmpl;
	d->env = lmdb_open(d, &d->dbi);
	rc = mdb_txn_begin(d->env, nullptr, 0, &txn);
	for (uint64_t i = 1; !rc && i <= d->rows; i++) {
		MDB_val k{ sizeof i, &i }, v{ sizeof r, &r };
		vbench_row_fill(&r, i, i % d->customers, 0);
		rc = mdb_put(txn, d->dbi, &k, &v, MDB_APPEND);
	}
	if (!rc)
		rc = mdb_txn_commit(txn);
	if (rc) {
		fprintf(stderr, "bench_view: lmdb load: %s\n", mdb_strerror(rc));
		exit(1);
	}

	std::mt19937_64 rng(42 + which);
	d->keys.resize(NKEYS);
	d->custs.resize(NKEYS);
	for (size_t i = 0; i < NKEYS; i++) {
		d->keys[i] = 1 + rng() % d->rows;
		d->custs[i] = rng() % d->customers;
	}
	sets[which] = d;
	return d;
}

sqlite3 *get_sqlite(dataset *d)
{
	sqlite3_stmt *ins;
	vbench_row r;

	if (d->db)
		return d->db;
	if (sqlite3_open(":memory:", &d->db) != SQLITE_OK)
		die("sqlite open", -1);
	sqlite3_exec(d->db,
		     "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
		     "CREATE TABLE orders(order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,"
		     " customer_name TEXT, item_count INTEGER, status INTEGER, total INTEGER,"
		     " created_at INTEGER, shipped_at INTEGER); BEGIN;",
		     nullptr, nullptr, nullptr);
	sqlite3_prepare_v2(d->db, "INSERT INTO orders VALUES(?,?,?,?,?,?,?,?)", -1, &ins, nullptr);
	for (uint64_t i = 1; i <= d->rows; i++) {
		vbench_row_fill(&r, i, i % d->customers, 0);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)r.order_id);
		sqlite3_bind_int64(ins, 2, (sqlite3_int64)r.customer_id);
		sqlite3_bind_text(ins, 3, r.customer_name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 4, r.item_count);
		sqlite3_bind_int64(ins, 5, r.status);
		sqlite3_bind_int64(ins, 6, r.total);
		sqlite3_bind_int64(ins, 7, r.created_at);
		sqlite3_bind_int64(ins, 8, r.shipped_at);
		if (sqlite3_step(ins) != SQLITE_DONE)
			die("sqlite insert", -1);
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	sqlite3_exec(d->db, "COMMIT; CREATE INDEX orders_customer ON orders(customer_id); ANALYZE;",
		     nullptr, nullptr, nullptr);
	return d->db;
}

void destroy_sets()
{
	for (int i = 0; i < 2; i++) {
		dataset *d = sets[i];
		if (!d)
			continue;
		cqrs_view_close(d->v);
		vbench_view_destroy(i);
		mdb_env_close(d->env);
		std::string data = d->lmdb_dir + "/data.mdb", lock = d->lmdb_dir + "/lock.mdb";
		unlink(data.c_str());
		unlink(lock.c_str());
		rmdir(d->lmdb_dir.c_str());
		if (d->db)
			sqlite3_close(d->db);
		delete d;
		sets[i] = nullptr;
	}
}

/* ---- helper processes --------------------------------------------------------- */

struct helpers {
	std::vector<pid_t> pids;

	void spawn(const std::function<uint64_t()> &fn)
	{
		int id = (int)pids.size();
		pid_t pid = fork();
		if (pid == 0) {
			uint64_t t0 = vbench_now_ns();
			vbench_set_ready(id);
			uint64_t ops = fn();
			vbench_report(id, ops, vbench_now_ns() - t0);
			_exit(0);
		}
		pids.push_back(pid);
	}

	void wait_ready() const
	{
		while (vbench_ready_count() < (int)pids.size())
			usleep(100);
	}

	void stop()
	{
		vbench_set_stop(1);
		for (pid_t p : pids)
			waitpid(p, nullptr, 0);
	}

	double rate(int id) const
	{
		uint64_t ns = vbench_report_ns(id);
		return ns ? (double)vbench_report_ops(id) * 1e9 / (double)ns : 0;
	}
};

uint64_t view_reader_loop(const dataset *d, unsigned salt)
{
	cqrs_view *v;
	vbench_row row;
	uint64_t n = 0;
	size_t ki = salt * 7919u;

	if (cqrs_view_open(d->engine.c_str(), "orders", &v))
		_exit(1);
	while (!vbench_stopped()) {
		for (int i = 0; i < BATCH; i++) {
			uint64_t k = d->keys[ki++ & (NKEYS - 1)];
			cqrs_view_get(v, &k, sizeof k, &row, sizeof row);
			benchmark::DoNotOptimize(row);
		}
		n += BATCH;
	}
	return n;
}

uint64_t lmdb_reader_loop(const dataset *d, unsigned salt)
{
	MDB_dbi dbi;
	MDB_env *env = lmdb_open(d, &dbi);
	MDB_txn *txn;
	vbench_row row;
	uint64_t n = 0;
	size_t ki = salt * 7919u;

	if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn))
		_exit(1);
	mdb_txn_reset(txn);
	while (!vbench_stopped()) {
		mdb_txn_renew(txn);
		for (int i = 0; i < BATCH; i++) {
			uint64_t k = d->keys[ki++ & (NKEYS - 1)];
			MDB_val key{ sizeof k, &k }, val;
			if (mdb_get(txn, dbi, &key, &val) == 0)
				memcpy(&row, val.mv_data, sizeof row);
			benchmark::DoNotOptimize(row);
		}
		mdb_txn_reset(txn);
		n += BATCH;
	}
	/* give back the reader slot: the table has 64, and runs fork many readers */
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return n;
}

uint64_t lmdb_writer_loop(const dataset *d, unsigned seed)
{
	MDB_dbi dbi;
	MDB_env *env = lmdb_open(d, &dbi);
	uint64_t n = 0, ver = 1;
	vbench_row r;

	while (!vbench_stopped()) {
		MDB_txn *txn;
		if (mdb_txn_begin(env, nullptr, 0, &txn))
			_exit(1);
		for (int i = 0; i < 64; i++) {
			uint64_t id = 1 + (uint64_t)rand_r(&seed) % d->rows;
			MDB_val k{ sizeof id, &id }, v{ sizeof r, &r };
			vbench_row_fill(&r, id, id % d->customers, ++ver);
			mdb_put(txn, dbi, &k, &v, 0);
		}
		mdb_txn_commit(txn);
		n += 64;
	}
	mdb_env_close(env);
	return n;
}

/* ---- measurements --------------------------------------------------------------- */

struct sampler {
	std::vector<uint32_t> s = std::vector<uint32_t>(NSAMPLES);
	size_t n = 0;

	void add(uint64_t ns) { s[n++ & (NSAMPLES - 1)] = (uint32_t)std::min<uint64_t>(ns, UINT32_MAX); }

	void report(benchmark::State &st)
	{
		size_t m = std::min(n, NSAMPLES);
		if (!m)
			return;
		std::vector<uint32_t> c(s.begin(), s.begin() + (long)m);
		std::sort(c.begin(), c.end());
		st.counters["p50_ns"] = c[m / 2];
		st.counters["p99_ns"] = c[m * 99 / 100];
	}
};

void finish(benchmark::State &st, helpers &h, int writer, int readers, uint64_t items)
{
	double peers = 0;

	h.stop();
	st.SetItemsProcessed((int64_t)items);
	for (int i = 0; i < (int)h.pids.size(); i++) {
		bool is_writer = writer && i == 0;
		st.counters[is_writer ? "writer_rows_per_s" : "peer_reader_per_s"] = h.rate(i);
		if (!is_writer)
			peers += h.rate(i);
	}
	if (readers > 2) /* scaling runs: every reader's rate, added up */
		st.counters["peer_readers_total_per_s"] = peers;
}

/* Our point get: args (dataset, writer, readers). */
void BM_ViewGet(benchmark::State &st, int which, int writer, int readers)
{
	dataset *d = get_set(which);
	helpers h;
	sampler smp;
	vbench_row row;
	size_t ki = 0;
	uint64_t items = 0;

	vbench_reset();
	if (writer)
		h.spawn([which] { return vbench_view_writer_loop(which, 7); });
	for (int i = 1; i < readers; i++)
		h.spawn([d, i] { return view_reader_loop(d, (unsigned)i); });
	h.wait_ready();
	for (auto _ : st) {
		for (int i = 0; i < BATCH; i++) {
			uint64_t k = d->keys[ki++ & (NKEYS - 1)];
			int rc;
			if (i % SAMPLE_EVERY == 0) {
				uint64_t t0 = vbench_now_ns();
				rc = cqrs_view_get(d->v, &k, sizeof k, &row, sizeof row);
				smp.add(vbench_now_ns() - t0);
			} else {
				rc = cqrs_view_get(d->v, &k, sizeof k, &row, sizeof row);
			}
			if (rc)
				st.SkipWithError("cqrs_view_get failed");
			benchmark::DoNotOptimize(row);
		}
		items += BATCH;
	}
	finish(st, h, writer, readers, items);
	smp.report(st);
}

/* LMDB's mdb_get, same keys, same row bytes. */
void BM_LmdbGet(benchmark::State &st, int which, int writer, int readers)
{
	dataset *d = get_set(which);
	helpers h;
	sampler smp;
	vbench_row row;
	MDB_txn *txn;
	size_t ki = 0;
	uint64_t items = 0;

	vbench_reset();
	if (writer)
		h.spawn([d] { return lmdb_writer_loop(d, 7); });
	for (int i = 1; i < readers; i++)
		h.spawn([d, i] { return lmdb_reader_loop(d, (unsigned)i); });
	h.wait_ready();
	mdb_txn_begin(d->env, nullptr, MDB_RDONLY, &txn);
	mdb_txn_reset(txn);
	for (auto _ : st) {
		mdb_txn_renew(txn);
		for (int i = 0; i < BATCH; i++) {
			uint64_t k = d->keys[ki++ & (NKEYS - 1)];
			MDB_val key{ sizeof k, &k }, val;
			int rc;
			if (i % SAMPLE_EVERY == 0) {
				uint64_t t0 = vbench_now_ns();
				rc = mdb_get(txn, d->dbi, &key, &val);
				if (!rc)
					memcpy(&row, val.mv_data, sizeof row);
				smp.add(vbench_now_ns() - t0);
			} else {
				rc = mdb_get(txn, d->dbi, &key, &val);
				if (!rc)
					memcpy(&row, val.mv_data, sizeof row);
			}
			if (rc)
				st.SkipWithError("mdb_get failed");
			benchmark::DoNotOptimize(row);
		}
		mdb_txn_reset(txn);
		items += BATCH;
	}
	mdb_txn_abort(txn);
	finish(st, h, writer, readers, items);
	smp.report(st);
}

struct find_acc {
	int64_t sum = 0;
	int rows = 0;
};

int find_cb(void *arg, const void *row, size_t size)
{
	auto *a = static_cast<find_acc *>(arg);
	const auto *r = static_cast<const vbench_row *>(row);
	(void)size;
	a->sum += r->total + r->status;
	a->rows++;
	return 0;
}

void BM_ViewFind(benchmark::State &st, int which, unsigned flags)
{
	dataset *d = get_set(which);
	size_t ci = 0;
	find_acc a;

	for (auto _ : st) {
		uint64_t c = d->custs[ci++ & (NKEYS - 1)];
		if (cqrs_view_find(d->v, "customer_id", &c, sizeof c, find_cb, &a, flags) < 0)
			st.SkipWithError("cqrs_view_find failed");
	}
	benchmark::DoNotOptimize(a.sum);
	st.SetItemsProcessed(st.iterations());
	st.counters["rows_per_find"] = st.iterations() ? (double)a.rows / (double)st.iterations() : 0;
}

void BM_SqliteFind(benchmark::State &st, int which)
{
	dataset *d = get_set(which);
	sqlite3 *db = get_sqlite(d);
	sqlite3_stmt *q;
	size_t ci = 0;
	find_acc a;
	vbench_row r;

	sqlite3_prepare_v2(db,
			   "SELECT order_id, customer_id, customer_name, item_count, status, total,"
			   " created_at, shipped_at FROM orders WHERE customer_id = ?",
			   -1, &q, nullptr);
	for (auto _ : st) {
		sqlite3_bind_int64(q, 1, (sqlite3_int64)d->custs[ci++ & (NKEYS - 1)]);
		while (sqlite3_step(q) == SQLITE_ROW) {
			const unsigned char *name = sqlite3_column_text(q, 2);
			memset(&r, 0, sizeof r);
			r.order_id = (uint64_t)sqlite3_column_int64(q, 0);
			r.customer_id = (uint64_t)sqlite3_column_int64(q, 1);
			if (name)
				strncpy(r.customer_name, (const char *)name, sizeof r.customer_name - 1);
			r.item_count = (uint32_t)sqlite3_column_int64(q, 3);
			r.status = (uint32_t)sqlite3_column_int64(q, 4);
			r.total = sqlite3_column_int64(q, 5);
			r.created_at = sqlite3_column_int64(q, 6);
			r.shipped_at = sqlite3_column_int64(q, 7);
			find_cb(&a, &r, sizeof r);
		}
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	benchmark::DoNotOptimize(a.sum);
	st.SetItemsProcessed(st.iterations());
	st.counters["rows_per_find"] = st.iterations() ? (double)a.rows / (double)st.iterations() : 0;
}

/* ---- the ordered index ----------------------------------------------------------- */

struct odataset {
	uint64_t rows = 0, customers = 0;
	std::string engine, lmdb_dir;
	MDB_env *env = nullptr;
	MDB_dbi dbi = 0;
	cqrs_view *v = nullptr;
	std::vector<uint64_t> custs;
};

odataset *oset;

uint64_t ordered_rows()
{
	const char *e = getenv("CQRS_BENCH_ORDERED_ROWS");
	return e && atoll(e) > 0 ? (uint64_t)atoll(e) : 1000000;
}

void be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

MDB_env *olmdb_open(const odataset *d, MDB_dbi *dbi)
{
	MDB_env *env;
	MDB_txn *txn;
	int rc = mdb_env_create(&env);

	if (!rc)
		rc = mdb_env_set_mapsize(env, d->rows * 256 + (64u << 20));
	if (!rc)
		rc = mdb_env_open(env, d->lmdb_dir.c_str(), MDB_NOSYNC | MDB_NOMETASYNC, 0644);
	if (!rc)
		rc = mdb_txn_begin(env, nullptr, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, nullptr, 0, dbi);
	if (!rc)
		rc = mdb_txn_commit(txn);
	if (rc) {
		fprintf(stderr, "bench_view: lmdb: %s\n", mdb_strerror(rc));
		exit(1);
	}
	return env;
}

odataset *get_oset()
{
	if (oset)
		return oset;
	auto *d = new odataset;
	char tmpl[] = "/dev/shm/cqrs_bench_lmdb_XXXXXX";
	std::vector<std::pair<std::array<uint8_t, 16>, uint64_t>> keys;
	vbench_row r;
	MDB_txn *txn;
	int rc;

	d->rows = ordered_rows();
	d->customers = d->rows / 10;
	d->engine = "bench_view_" + std::to_string(getpid()) + "_ord";
	rc = vbench_view_create_ordered(2, d->engine.c_str(), d->rows, d->customers);
	if (rc)
		die("ordered view create", rc);
	rc = cqrs_view_open(d->engine.c_str(), "orders", &d->v);
	if (rc)
		die("ordered view open", rc);
	if (!mkdtemp(tmpl))
		die("mkdtemp", -errno);
	d->lmdb_dir = tmpl;
	d->env = olmdb_open(d, &d->dbi);
	keys.reserve(d->rows);
	for (uint64_t i = 1; i <= d->rows; i++) {
		std::array<uint8_t, 16> k;
		be64(k.data(), i % d->customers);
		be64(k.data() + 8, i);
		keys.push_back({ k, i });
	}
	std::sort(keys.begin(), keys.end());
	rc = mdb_txn_begin(d->env, nullptr, 0, &txn);
	for (size_t i = 0; !rc && i < keys.size(); i++) {
		MDB_val k = { 16, keys[i].first.data() }, v = { sizeof r, &r };
		vbench_row_fill(&r, keys[i].second, keys[i].second % d->customers, 0);
		rc = mdb_put(txn, d->dbi, &k, &v, MDB_APPEND);
	}
	if (!rc)
		rc = mdb_txn_commit(txn);
	if (rc) {
		fprintf(stderr, "bench_view: lmdb load: %s\n", mdb_strerror(rc));
		exit(1);
	}
	std::mt19937_64 rng(42);
	d->custs.resize(NKEYS);
	for (size_t i = 0; i < NKEYS; i++)
		d->custs[i] = rng() % d->customers;
	oset = d;
	return d;
}

void destroy_oset()
{
	odataset *d = oset;

	if (!d)
		return;
	cqrs_view_close(d->v);
	vbench_view_destroy(2);
	mdb_env_close(d->env);
	std::string data = d->lmdb_dir + "/data.mdb", lock = d->lmdb_dir + "/lock.mdb";
	unlink(data.c_str());
	unlink(lock.c_str());
	rmdir(d->lmdb_dir.c_str());
	delete d;
	oset = nullptr;
}

uint64_t olmdb_writer_loop(const odataset *d, unsigned seed)
{
	MDB_dbi dbi;
	MDB_env *env = olmdb_open(d, &dbi);
	uint64_t n = 0, ver = 1;
	vbench_row r;

	while (!vbench_stopped()) {
		MDB_txn *txn;
		if (mdb_txn_begin(env, nullptr, 0, &txn))
			break;
		for (int i = 0; i < 64; i++) {
			uint64_t id = 1 + (uint64_t)rand_r(&seed) % d->rows;
			uint8_t kb[16];
			be64(kb, id % d->customers);
			be64(kb + 8, id);
			MDB_val k = { 16, kb }, v = { sizeof r, &r };
			vbench_row_fill(&r, id, id % d->customers, ++ver);
			mdb_put(txn, dbi, &k, &v, 0);
		}
		mdb_txn_commit(txn);
		n += 64;
	}
	mdb_env_close(env);
	return n;
}

struct row_acc {
	int64_t sum = 0;
	uint64_t rows = 0;
};

int orow_cb(void *arg, const void *row, size_t size)
{
	auto *a = static_cast<row_acc *>(arg);
	const auto *r = static_cast<const vbench_row *>(row);
	(void)size;
	a->sum += r->total + (int64_t)r->order_id;
	a->rows++;
	return 0;
}

enum { OP_SEEK, OP_CUSTOMER, OP_SCAN100 };

/* Ours: op over the ordered index (customer_id, order_id). */
void BM_OrdView(benchmark::State &st, int op, int writer)
{
	odataset *d = get_oset();
	helpers h;
	row_acc a;
	vbench_row row;
	size_t ci = 0;

	vbench_reset();
	if (writer)
		h.spawn([] { return vbench_view_writer_loop(2, 7); });
	h.wait_ready();
	for (auto _ : st) {
		uint64_t c = d->custs[ci++ & (NKEYS - 1)], c1 = c + 1;
		int rc;

		if (op == OP_SEEK) {
			rc = cqrs_view_seek(d->v, nullptr, &c, sizeof c, 0, &row, sizeof row);
			if (rc == 0)
				orow_cb(&a, &row, sizeof row);
		} else if (op == OP_CUSTOMER) {
			rc = cqrs_view_range(d->v, nullptr, &c, sizeof c, &c1, sizeof c1, 0, 0, orow_cb, &a);
		} else {
			rc = cqrs_view_range(d->v, nullptr, &c, sizeof c, nullptr, 0, 0, 100, orow_cb, &a);
		}
		if (rc < 0) {
			st.SkipWithError("ordered read failed");
			break;
		}
	}
	benchmark::DoNotOptimize(a.sum);
	finish(st, h, writer, 1, op == OP_SCAN100 ? a.rows : (uint64_t)st.iterations());
	st.counters["rows_per_op"] = st.iterations() ? (double)a.rows / (double)st.iterations() : 0;
}

/* LMDB: the same op through a cursor (txn and cursor renewed every BATCH). */
void BM_OrdLmdb(benchmark::State &st, int op, int writer)
{
	odataset *d = get_oset();
	helpers h;
	row_acc a;
	vbench_row row;
	MDB_txn *txn;
	MDB_cursor *cur;
	size_t ci = 0;
	int in_batch = 0;

	vbench_reset();
	if (writer)
		h.spawn([d] { return olmdb_writer_loop(d, 7); });
	h.wait_ready();
	mdb_txn_begin(d->env, nullptr, MDB_RDONLY, &txn);
	mdb_cursor_open(txn, d->dbi, &cur);
	for (auto _ : st) {
		uint64_t c = d->custs[ci++ & (NKEYS - 1)];
		uint8_t kb[16];
		MDB_val k = { 16, kb }, v;
		int rc, n = 0;

		if (in_batch++ % BATCH == 0) {
			mdb_txn_reset(txn);
			mdb_txn_renew(txn);
			mdb_cursor_renew(txn, cur);
		}
		be64(kb, c);
		be64(kb + 8, 0);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		while (rc == 0) {
			if (op == OP_CUSTOMER) {
				uint8_t want[8];
				be64(want, c);
				if (k.mv_size != 16 || memcmp(k.mv_data, want, 8) != 0)
					break;
			}
			memcpy(&row, v.mv_data, sizeof row);
			orow_cb(&a, &row, sizeof row);
			if (op == OP_SEEK || (op == OP_SCAN100 && ++n == 100))
				break;
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		if (rc && rc != MDB_NOTFOUND) {
			st.SkipWithError("mdb_cursor_get failed");
			break;
		}
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	benchmark::DoNotOptimize(a.sum);
	finish(st, h, writer, 1, op == OP_SCAN100 ? a.rows : (uint64_t)st.iterations());
	st.counters["rows_per_op"] = st.iterations() ? (double)a.rows / (double)st.iterations() : 0;
}

std::string get_name(const char *who, int which, int writer, int readers)
{
	return std::string(who) + "/" + size_label(which) + (writer ? "/writer" : "/idle") + "/" +
	       std::to_string(readers) + "r";
}

} /* namespace */

int main(int argc, char **argv)
{
	std::vector<cqrs_bench::row> rows;
	std::vector<char *> args(argv, argv + argc);
	static char min_time[] = "--benchmark_min_time=0.4";
	bool has_min = false;

	for (int i = 1; i < argc; i++)
		has_min |= !strncmp(argv[i], "--benchmark_min_time", 20);
	if (!has_min)
		args.insert(args.begin() + 1, min_time);
	argc = (int)args.size();
	if (vbench_shared_init())
		die("shared block", -ENOMEM);

	/* Reader process counts: 1 and 2 here; a many-core scaling run sets
	 * CQRS_BENCH_READERS=1,4,8,15 (each count with and without the writer). */
	std::vector<int> reader_counts;
	const char *rl = getenv("CQRS_BENCH_READERS");
	for (const char *p = rl && *rl ? rl : "1,2"; *p;) {
		int n = atoi(p);
		if (n > 0 && n <= 64)
			reader_counts.push_back(n);
		p = strchr(p, ',');
		if (!p)
			break;
		p++;
	}
	for (int which = 0; which < 2; which++)
		for (int writer = 0; writer < 2; writer++)
			for (int readers : reader_counts) {
				std::string ours = get_name("view_get", which, writer, readers);
				std::string base = get_name("lmdb_get", which, writer, readers);
				std::string what = "get " + size_label(which) + ", " + std::to_string(readers) +
						   (readers == 1 ? " reader" : " readers") +
						   (writer ? " + writer" : "");
				benchmark::RegisterBenchmark(ours.c_str(), BM_ViewGet, which, writer, readers);
				benchmark::RegisterBenchmark(base.c_str(), BM_LmdbGet, which, writer, readers);
				std::string note = which == 0 && writer == 0 && readers == 1
							   ? "vs LMDB mdb_get (txn per 1024 gets); per core; goal >= 3x"
						   : which == 1 && writer == 0 && readers == 1
							   ? (large_rows() == 10000000
								      ? "10M rows (CQRS_BENCH_LARGE=0: 1M)"
								      : "1M rows (CQRS_BENCH_LARGE=0)")
						   : readers + writer > 2
							   ? std::to_string(readers + writer) + " processes on " +
								     std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs"
							   : "";
				rows.push_back({ what + " (lookups/s)", ours, base, "items_per_second", true, note });
				rows.push_back({ what + " p50 (ns)", ours, base, "p50_ns", false, "" });
				rows.push_back({ what + " p99 (ns)", ours, base, "p99_ns", false, "" });
				if (readers > 2)
					rows.push_back({ what + ": the other readers together (lookups/s)", ours,
							 base, "peer_readers_total_per_s", true, "" });
			}
	std::string fv = "view_find/" + size_label(1), fs = "view_find_snapshot/" + size_label(1),
		    fq = "sqlite_find/" + size_label(1);
	benchmark::RegisterBenchmark(fv.c_str(), BM_ViewFind, 1, 0u);
	benchmark::RegisterBenchmark(fs.c_str(), BM_ViewFind, 1, (unsigned)CQRS_FIND_SNAPSHOT);
	benchmark::RegisterBenchmark(fq.c_str(), BM_SqliteFind, 1);
	rows.push_back({ "find 10 orders of a customer, " + size_label(1) + " (finds/s)", fv, fq,
			 "items_per_second", true, "SQLite: indexed SELECT, in memory" });
	rows.push_back({ "find, snapshot-consistent (finds/s)", fs, fq, "items_per_second", true, "" });

	{
		static const char *ops[] = { "seek", "customer", "scan100" };
		static const char *labels[] = { "seek to a customer's first order (seeks/s)",
						"a customer's 10 orders in key order (ranges/s)",
						"scan 100 rows from a customer (rows/s)" };
		std::string sz = std::to_string(ordered_rows() / 1000) + "k";
		for (int op = 0; op < 3; op++)
			for (int writer = 0; writer < (op == OP_SEEK ? 2 : 1); writer++) {
				std::string ours = std::string("view_ordered_") + ops[op] + "/" + sz +
						   (writer ? "/writer" : "/idle"),
					    base = std::string("lmdb_cursor_") + ops[op] + "/" + sz +
						   (writer ? "/writer" : "/idle");
				benchmark::RegisterBenchmark(ours.c_str(), BM_OrdView, op, writer);
				benchmark::RegisterBenchmark(base.c_str(), BM_OrdLmdb, op, writer);
				rows.push_back({ std::string("ordered ") + sz + ": " + labels[op] +
							 (writer ? " + writer" : ""),
						 ours, base, "items_per_second", true,
						 op == 0 && !writer ? "vs LMDB cursor MDB_SET_RANGE/MDB_NEXT; per core; goal >= 3x"
								    : "" });
			}
	}

	int rc = cqrs_bench::main(argc, args.data(), "view",
				  "shm view reads vs LMDB mdb_get and SQLite SELECT (same data, same run)",
				  rows);
	destroy_sets();
	destroy_oset();
	return rc;
}
