/*
 * bench/engine/fixture.cc - the bench_engine fixture (fixture.h): the temp
 * folder, opening and removing an orders engine, submitting with retries,
 * and the generated customers and orders.
 */
#include "bench/engine/fixture.h"

#include <thread>
#include <vector>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

namespace bench_engine {

namespace {

std::string g_root;
int g_seq; /* engines opened so far: the next name */

int rm_one(const char *path, const struct stat *, int, struct FTW *) { return remove(path); }

} /* namespace */

const std::string &root()
{
	if (g_root.empty()) {
		const char *t = getenv("TMPDIR");
		char buf[512];
		snprintf(buf, sizeof buf, "%s/cqrs-bench-engine.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(buf))
			abort();
		g_root = buf;
	}
	return g_root;
}

void remove_root()
{
	if (!g_root.empty())
		nftw(g_root.c_str(), rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int engine_env::open(int durability, bool fresh)
{
	if (fresh) {
		char n[64];
		snprintf(n, sizeof n, "bench_%d_%d", (int)getpid(), g_seq++);
		name = n;
		dir = root() + "/" + name;
	}
	if (orders_model_init(&m, orders))
		return -1;
	cqrs_config cfg;
	cqrs_config_init(&cfg);
	cfg.name = name.c_str();
	cfg.data_dir = dir.c_str();
	cfg.durability = durability;
	cfg.projector_threads = 2;
	cfg.ring_bytes = 64u << 20;
	cfg.aggregates_hint = orders; /* a power of two (slots round up); the customers fit its slack */
	cfg.pretouch = pretouch;
	/* CQRS_BENCH_INLINE_WRITE=bytes: cqrs_config.inline_write_bytes;
	 * CQRS_BENCH_IDLE_YIELD_US=us: cqrs_config.idle_yield_us. */
	if (const char *iw = getenv("CQRS_BENCH_INLINE_WRITE"))
		cfg.inline_write_bytes = (uint32_t)strtoul(iw, nullptr, 10);
	cfg.threading = threading;
	cfg.checkpoint_copy = checkpoint_copy;
	cfg.checkpoint_every_events = checkpoint_every;
	cfg.checkpoint_on_stop = 0;
	if (const char *iy = getenv("CQRS_BENCH_IDLE_YIELD_US"))
		cfg.idle_yield_us = (uint32_t)strtoul(iy, nullptr, 10);
	if (snapshots) {
		cfg.snapshot_every_events = snapshot_every; /* default 0: when the benchmark asks */
		cfg.snapshot_on_stop = snapshot_on_stop;
	}
	int rc = cqrs_engine_open(&cfg, &m, &e);
	if (!rc)
		rc = orders_register(e, orders, orders, 1u << 15); /* every order may be open */
	if (!rc && snapshots)
		rc = cqrs_engine_register_store(e, "customers", m.customers);
	if (!rc && snapshots)
		rc = cqrs_engine_register_store(e, "orders", m.orders);
	if (!rc)
		rc = cqrs_engine_start(e);
	if (rc) {
		fprintf(stderr, "engine: %s (%s)\n", cqrs_strerror(rc), cqrs_last_error());
		return rc;
	}
	return 0;
}

void engine_env::close(bool remove)
{
	if (e)
		cqrs_engine_close(e);
	e = nullptr;
	orders_model_free(&m);
	if (remove) {
		cqrs_engine_remove_segments(name.c_str());
		nftw(dir.c_str(), rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
}

/* CPU time used by all threads of this process so far. */
uint64_t process_cpu_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Submits cmds[0, n), retrying while the queue is full. Returns 0 or the
 * submit error; *accepted: how many the engine took (their tickets are
 * armed, the rest untouched). */
int submit_retrying(cqrs_engine *e, cqrs_command *cmds, cqrs_ticket *t, int n, int *accepted)
{
	int done = 0, rc = 0;

	while (done < n) {
		rc = cqrs_submit_batch(e, cmds + done, t + done, (uint32_t)(n - done));
		if (rc == -EAGAIN) {
			std::this_thread::yield();
			continue;
		}
		if (rc < 0)
			break;
		done += rc;
		rc = 0;
	}
	*accepted = done;
	return rc;
}

/* Submits all of cmds and waits for their answers. */
void submit_all(cqrs_engine *e, cqrs_command *cmds, cqrs_ticket *t, int n)
{
	int accepted;

	if (submit_retrying(e, cmds, t, n, &accepted))
		abort();
	for (int i = 0; i < n; i++)
		cqrs_ticket_wait(&t[i], UINT64_MAX);
}

void register_customers(cqrs_engine *e)
{
	std::vector<register_customer> rc(kBatch);
	std::vector<cqrs_command> cmds(kBatch);
	std::vector<cqrs_ticket> t(kBatch);
	for (uint64_t id = 1; id <= kCustomers;) {
		int n = 0;
		for (; n < kBatch && id <= kCustomers; n++, id++) {
			memset(&rc[n], 0, sizeof rc[n]);
			rc[n].customer_id = id;
			snprintf(rc[n].name, sizeof rc[n].name, "customer-%llu", (unsigned long long)id);
			cmds[n] = cqrs_command{ CMD_REGISTER_CUSTOMER, sizeof(register_customer), &rc[n] };
		}
		submit_all(e, cmds.data(), t.data(), n);
	}
}

uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

void fill_create(create_order *co, uint64_t order_id)
{
	memset(co, 0, sizeof *co);
	co->order_id = order_id;
	co->customer_id = 1 + mix(order_id) % kCustomers;
	co->item_count = 1 + (uint32_t)(order_id % 7);
	co->total = (int64_t)(100 + mix(order_id ^ 7) % 100000);
	snprintf(co->shipping_address, sizeof co->shipping_address, "%u Main St",
		 (unsigned)(order_id % 9999));
}

} /* namespace bench_engine */
