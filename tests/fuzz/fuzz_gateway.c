/*
 * tests/fuzz/fuzz_gateway.c - fuzz target for the command gateway's request
 * path: the pure validator, and a live engine fed the same bytes through a
 * client's own request ring while a second, well-behaved client must keep
 * getting right answers.
 *
 * Input: one mode byte, a u32 (little-endian), then bytes.
 *   mode % 4 == 0, 1: the u32 is the MPSC record type, the bytes one record
 *                     (capped at the ring's largest payload); the engine's
 *                     answer to it is collected when it comes
 *   mode % 4 == 2:    the bytes are written over the request ring's data
 *                     region at offset u32 (wrapping)
 *   mode % 4 == 3:    the bytes are written over the request ring's header
 *                     at offset u32 % 640 (tail, head, counters, futexes)
 *   mode % 8 == 5:    instead of the above, the bytes are sent on the
 *                     client's socket: anything but doorbell bytes must get
 *                     it dropped (it reconnects)
 * Before that, cqrs__gw_check_request runs over (u32, bytes) and its
 * promises are checked. After it, the good client submits one command and
 * must get the right answer; a hostile client the engine dropped
 * reconnects. The engine (a tiny inline domain, durability none, no
 * projections) lives for the whole process in a temporary folder, removed
 * at exit with its segments.
 */
#include <ftw.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "cqrs.h"
#include "cqrs_client.h"
#include "engine/gateway_check.h"
#include "ringbuf/mpsc.h"
#include "ringbuf/wait.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ADD_FIELDS(F) F(u64, account) F(i64, amount)
CQRS_RECORD(fz_add, "Add", ADD_FIELDS)
CQRS_RECORD(fz_added, "Added", ADD_FIELDS)
#define SEC UINT64_C(1000000000)

static char name[64], dir[256];
static cqrs_engine *engine;
static cqrs_client *good, *bad;
static cqrs__client_parts parts;
static uint64_t next_account = 1;

static int decide_add(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const fz_add *c = cmd;
	(void)model;
	if (c->amount < 0)
		return cqrs_reject(ctx, "negative amount");
	return cqrs_emit(ctx, 1, c->account, c);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void cleanup(void)
{
	cqrs_client_close(good);
	cqrs_client_close(bad);
	if (engine) {
		cqrs_engine_stop(engine);
		cqrs_engine_close(engine);
	}
	cqrs_engine_remove_segments(name);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void connect_bad(void)
{
	cqrs_client_close(bad);
	bad = NULL;
	if (cqrs_client_connect(name, &bad) || cqrs__client_parts_get(bad, &parts))
		abort();
}

static void init(void)
{
	const char *tmp = getenv("TMPDIR");
	cqrs_config cfg;

	snprintf(name, sizeof name, "fzgw_%ld", (long)getpid());
	snprintf(dir, sizeof dir, "%s/cqrs-fzgw.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	atexit(cleanup);
	cqrs_config_init(&cfg);
	cfg.name = name;
	cfg.data_dir = dir;
	cfg.durability = CQRS_DURABILITY_NONE;
	cfg.ring_bytes = 1u << 22;
	cfg.segment_bytes = 1u << 22;
	setenv("CQRS_GATEWAY_CLIENTS", "4", 1);
	if (cqrs_engine_open(&cfg, NULL, &engine) ||
	    cqrs_register_command(engine, 1, fz_add_schema(), decide_add) ||
	    cqrs_register_event(engine, 1, fz_added_schema(), NULL) || cqrs_engine_start(engine))
		abort();
	if (cqrs_client_connect(name, &good))
		abort();
	connect_bad();
}

static void check_pure(uint32_t rtype, const uint8_t *p, size_t n)
{
	static const cqrs_gw_cmdtab tab = { .size = { [1] = 16, [7] = 3, [255] = 200 } };
	uint8_t payload[256];
	char why[CQRS_GW_REASON];
	cqrs__gw_req req;
	uint32_t len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	int rc = cqrs__gw_check_request(&tab, rtype, p, len, &req, payload, sizeof payload, why);

	if (rc == 0) {
		if (rtype != CQRS_GW_REC_REQUEST || req.type >= CQRS_GW_MAX_TYPES ||
		    tab.size[req.type] == 0 || req.size != tab.size[req.type] ||
		    (uint64_t)len != sizeof req + req.size || req.client_seq == 0 ||
		    memcmp(payload, p + sizeof req, req.size) != 0 || why[0])
			abort();
	} else if (rc != CQRS_EFORMAT || !why[0] || strnlen(why, sizeof why) == sizeof why) {
		abort();
	}
}

/* Collects the hostile client's answers for a little while. */
static void drain_bad(int want)
{
	cqrs_result r;

	for (int spins = 0; spins < 20000; spins++) {
		int rc = cqrs_client_poll(bad, &r);
		if (rc < 0) {
			connect_bad(); /* dropped: its ring broke */
			return;
		}
		if (rc == 1) {
			if (r.reason[sizeof r.reason - 1] != 0)
				abort();
			if (--want <= 0)
				return;
			continue;
		}
		if (!want)
			return;
		usleep(50);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t word = 0, max;
	const uint8_t *p;
	size_t n;
	fz_add cmd;
	cqrs_result r;
	void *d;
	int rc;

	if (!engine)
		init();
	if (size < 5)
		return 0;
	memcpy(&word, data + 1, 4);
	p = data + 5;
	n = size - 5;
	check_pure(word, p, n);

	max = (uint32_t)(parts.hello->req_capacity / 2 - CQRS_MPSC_REC_HDR);
	if (data[0] % 8 == 5) {
		int bells = 1;
		for (size_t i = 0; i < n && i < 4096; i++)
			bells &= p[i] == CQRS_GW_BELL_BYTE;
		if (send(parts.sock, p, n < 4096 ? n : 4096, MSG_NOSIGNAL) < 0)
			bells = 0; /* already dropped */
		/* a sender of anything else is dropped: wait for it, then come back */
		for (int i = 0; !bells && i < 20000 && cqrs_client_poll(bad, &r) >= 0; i++)
			usleep(50);
		if (!bells) {
			if (cqrs_client_poll(bad, &r) >= 0)
				abort(); /* garbage on the socket and still served */
			connect_bad();
		}
		goto good;
	}
	switch (data[0] % 4) {
	case 0:
	case 1:
		if (n > max)
			n = max;
		rc = cqrs_mpsc_try_claim(parts.producer, word, (uint32_t)n, &d);
		if (rc == 0) {
			memcpy(d, p, n);
			rc = cqrs_mpsc_commit(parts.producer, (uint32_t)n);
			cqrs__client_ring(bad);
		}
		if (rc == -EBUSY || rc == CQRS_ECORRUPT)
			connect_bad();
		drain_bad(rc == 0);
		break;
	case 2: {
		uint8_t *ring = (uint8_t *)parts.req_mem + (parts.hello->req_size - parts.hello->req_capacity);
		for (size_t i = 0; i < n; i++)
			ring[(word + i) % parts.hello->req_capacity] = p[i];
		cqrs__client_ring(bad);
		drain_bad(0);
		break;
	}
	default: {
		uint8_t *hdr = parts.req_mem;
		size_t off = word % 640;
		if (n > 640 - off)
			n = 640 - off;
		memcpy(hdr + off, p, n);
		cqrs__client_ring(bad);
		drain_bad(0);
		/* our own producer state is garbage now: start over */
		connect_bad();
	}
	}

good:
	/* The well-behaved client is not disturbed. */
	cmd = (fz_add){ next_account++, (int64_t)(size % 3) - 1 };
	rc = cqrs_client_submit(good, 1, &cmd, sizeof cmd, NULL, &r, 30 * SEC);
	if (cmd.amount < 0 ? rc != CQRS_EREJECTED || strcmp(r.reason, "negative amount")
			   : rc != 0 || r.seq == 0)
		abort();
	return 0;
}
