/*
 * tests/proc/gateway_hostile.c - clients that misbehave, against a running
 * `cqrs-orders serve`:
 *
 *   hostile   two child processes write garbage into their own slots (random
 *             records, random bytes over the request ring's data and header,
 *             huge lengths, wrong sizes, unknown types, flags, client_seq 0,
 *             impossible reply cursors, stray state words), reconnecting
 *             whenever the engine drops them, while this process, a
 *             well-behaved client, submits commands and checks every answer
 *             (counted: all must be right). Then the hostile children are
 *             SIGKILLed and the engine must still serve.
 *   killed    with 4 slots, 12 clients are SIGKILLed mid-submit (half after
 *             claiming a request record they never commit, half at a random
 *             moment of a submit loop); new clients must still get slots
 *             (dead owners are reclaimed) and answers.
 *
 * The seed is printed; CQRS_TEST_SEED replays one.
 */
#include "tests/proc/gateway_proc.h"

#include "client/client_internal.h"
#include "ringbuf/mpsc.h"
#include "ringbuf/wait.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static void fill_random(void *p, size_t n)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

/* ---- the hostile child ------------------------------------------------------ */

static cqrs_client *hostile_connect(cqrs__client_parts *pp)
{
	cqrs_client *c = NULL;

	for (int i = 0; i < 200; i++) {
		if (cqrs_client_connect(gp_name, &c) == 0 && cqrs__client_parts_get(c, pp) == 0)
			return c;
		cqrs_client_close(c);
		c = NULL;
		usleep(10000);
	}
	_exit(3);
}

/* One garbage request record through our own producer. */
static void garbage_record(cqrs__client_parts *pp)
{
	uint8_t buf[1024];
	cqrs__gw_req *h = (cqrs__gw_req *)(void *)buf;
	uint32_t max = (uint32_t)(pp->p->req_capacity / 2 - CQRS_MPSC_REC_HDR);
	uint32_t rtype = rnd() % 4 == 0 ? (uint32_t)rnd() : CQRS_GW_REC_REQUEST, len;
	void *d;
	int rc;

	fill_random(buf, sizeof buf);
	switch (rnd() % 8) {
	case 0: len = (uint32_t)(rnd() % 48); break;                /* short */
	case 1: len = max - (uint32_t)(rnd() % 64); break;          /* huge */
	case 2: len = (uint32_t)(rnd() % sizeof buf); break;        /* random bytes */
	default:                                                    /* plausible header */
		*h = (cqrs__gw_req){ .request_id = rnd(), .client_seq = rnd() % 3,
				    .type = (uint32_t)(rnd() % 10), .size = (uint32_t)(rnd() % 120),
				    .flags = (uint32_t)(rnd() % 3), .reserved = (uint32_t)(rnd() % 5 == 0) };
		if (rnd() % 4 == 0)
			h->size = (uint32_t)rnd(); /* absurd size */
		if (rnd() % 8 == 0)
			h->aggregate_id = UINT64_MAX;
		len = (uint32_t)sizeof *h + (rnd() % 2 ? h->size % 200 : (uint32_t)(rnd() % 200));
		if (len > sizeof buf)
			len = sizeof buf;
	}
	rc = cqrs_mpsc_try_claim(pp->producer, rtype, len, &d);
	if (rc == -EBUSY) { /* a claim left open earlier */
		cqrs_mpsc_abort(pp->producer);
		return;
	}
	if (rc)
		return;
	if (len > sizeof buf) {
		fill_random(d, len);
		if (len >= sizeof *h)
			memcpy(d, buf, sizeof *h);
	} else {
		memcpy(d, buf, len);
	}
	if (rnd() % 16 == 0)
		return; /* never committed: the engine times the claim out */
	if (cqrs_mpsc_commit(pp->producer, len - (uint32_t)(rnd() % 2 ? 0 : rnd() % (len + 1))) == 0)
		cqrs__ring_wake(&pp->lines->bell_seq, &pp->lines->bell_waiters);
}

static void scribble(cqrs__client_parts *pp)
{
	uint8_t *ring = pp->req_mem;
	struct mp_hdr *rh = pp->req_mem;
	uint64_t hdr = rh->hdr_size; /* read before we overwrite it */

	switch (rnd() % 10) {
	/* relaxed, all of them: garbage on purpose; the engine validates
	 * whatever it loads, whenever it loads it. */
	case 0: /* impossible tail */
		atomic_store_explicit(&rh->tail, rnd(), memory_order_relaxed);
		break;
	case 1: /* random bytes over the ring header (magic and sizes included) */
		fill_random(ring + 8 * (rnd() % 16), 8 * (rnd() % 96));
		break;
	case 2: /* impossible reply cursor */
		atomic_store_explicit(&pp->reply->head, rnd(), memory_order_relaxed);
		break;
	case 3: /* a stray state word */
		atomic_store_explicit(&pp->slot->state, (uint32_t)rnd() % 8 + 5, memory_order_relaxed);
		break;
	case 4: /* our intents */
		for (uint32_t i = 0; i < CQRS_GW_REQ_PRODUCERS; i++)
			atomic_store_explicit(&mp_slots(rh)[i].intent, rnd(), memory_order_relaxed);
		break;
	default: { /* bytes over the data region, headers of records in flight included */
		uint64_t cap = pp->p->req_capacity, off = rnd() % cap, n = 8 + rnd() % 256;
		if (hdr != pp->p->req_size - cap)
			hdr = pp->p->req_size - cap;
		if (off + n > cap)
			n = cap - off;
		fill_random(ring + hdr + off, (size_t)n);
	}
	}
	cqrs__ring_wake(&pp->lines->bell_seq, &pp->lines->bell_waiters);
}

static void hostile_main(uint64_t seed)
{
	cqrs__client_parts pp;
	cqrs_client *c;
	cqrs_result r;
	uint64_t reconnects = 0, ops = 0;

	rng_state = seed;
	c = hostile_connect(&pp);
	for (;;) { /* until SIGKILL */
		uint64_t a = rnd() % 100;
		int rc;

		ops++;
		if (a < 60) {
			garbage_record(&pp);
		} else if (a < 64) {
			scribble(&pp);
		} else {
			register_customer cmd = { .customer_id = 1u << 30 | (rnd() & 0xffffff) };
			snprintf(cmd.name, sizeof cmd.name, "h");
			(void)cqrs_client_send(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, NULL);
		}
		do
			rc = cqrs_client_poll(c, &r);
		while (rc == 1);
		if (rc < 0) { /* dropped, or our own garbage confused us: start over */
			cqrs_client_close(c);
			c = hostile_connect(&pp);
			reconnects++;
		}
		if (ops % 64 == 0)
			usleep(200); /* leave the cores some air */
	}
}

/* ---- the well-behaved client ------------------------------------------------ */

static void hostile(uint64_t seed)
{
	pid_t kids[2];
	cqrs_client *c, *probe;
	cqrs__client_parts pp;
	cqrs_result r;
	uint64_t correct = 0, malformed, drops;
	const uint64_t n = 1500;

	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		CHECK(kids[k] >= 0, "fork");
		if (kids[k] == 0) {
			gp_child_guard();
			hostile_main(seed + 1 + (uint64_t)k);
		}
		gp_track(kids[k]);
	}
	c = gp_connect();
	for (uint64_t i = 0; i < n; i++) {
		int rc;
		if (i % 3 != 2) {
			rc = gp_register(c, 10000 + i, "good", &r);
			CHECK(rc == 0 && r.seq > 0, "good client request %llu: %s '%s'",
			      (unsigned long long)i, cqrs_strerror(rc), r.reason);
		} else {
			rc = gp_create_order(c, 70000 + i, 5000000 + i, 1, &r);
			CHECK(rc == CQRS_EREJECTED && strstr(r.reason, "unknown"),
			      "good client request %llu: %s '%s'", (unsigned long long)i, cqrs_strerror(rc),
			      r.reason);
		}
		correct++;
		if (i % 100 == 99)
			usleep(2000); /* let the hostile ones do their worst meanwhile */
	}
	CHECK(cqrs__client_parts_get(c, &pp) == 0, "parts");
	/* relaxed: statistics. */
	malformed = atomic_load_explicit(&pp.lines->malformed, memory_order_relaxed);
	drops = atomic_load_explicit(&pp.lines->drops, memory_order_relaxed);
	for (int k = 0; k < 2; k++) {
		int st;
		CHECK(waitpid(kids[k], &st, WNOHANG) == 0, "hostile child %d exited by itself (0x%x)", k,
		      st);
		kill(kids[k], SIGKILL);
		waitpid(kids[k], &st, 0);
		gp_untrack(kids[k]);
	}
	CHECK(malformed > 0, "the engine saw no malformed request");
	/* the engine is fine: the good client and a new one go on */
	CHECK(gp_register(c, 9999999, "after", &r) == 0, "after: %s", r.reason);
	probe = gp_connect();
	CHECK(gp_create_order(probe, 1, 9999999, 10, &r) == 0, "probe: %s", r.reason);
	cqrs_client_close(probe);
	cqrs_client_close(c);
	printf("hostile: %llu/%llu correct answers to the good client; engine counted %llu malformed "
	       "requests, %llu drops: ok\n",
	       (unsigned long long)correct, (unsigned long long)n, (unsigned long long)malformed,
	       (unsigned long long)drops);
}

/* ---- clients killed mid-submit ------------------------------------------------ */

static void killed_child(int self_kill)
{
	cqrs__client_parts pp;
	cqrs_client *c;
	cqrs_result r;
	void *d;

	if (cqrs_client_connect(gp_name, &c) || cqrs__client_parts_get(c, &pp))
		_exit(3);
	if (self_kill) {
		/* claimed, half written, never committed */
		if (cqrs_mpsc_try_claim(pp.producer, CQRS_GW_REC_REQUEST, 48 + sizeof(register_customer),
					&d) == 0)
			memset(d, 0x5a, 24);
		raise(SIGKILL);
	}
	for (uint64_t i = 0;; i++) {
		register_customer cmd = { .customer_id = (uint64_t)getpid() << 20 | i };
		snprintf(cmd.name, sizeof cmd.name, "k");
		(void)cqrs_client_send(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, NULL);
		if (i % 4 == 0)
			(void)cqrs_client_submit(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, &r, SEC);
	}
}

static void killed(void)
{
	cqrs_client *c[4], *probe;
	cqrs__client_parts pp;
	cqrs_result r;
	uint64_t reclaims;

	gp_engine_stop(SIGTERM);
	gp_engine_start(4);
	for (int round = 0; round < 12; round++) {
		pid_t kid = fork();
		int st;

		CHECK(kid >= 0, "fork");
		if (kid == 0) {
			gp_child_guard();
			killed_child(round % 2 == 0);
		}
		gp_track(kid);
		if (round % 2) {
			usleep((useconds_t)(2000 + rnd() % 20000));
			kill(kid, SIGKILL);
		}
		CHECK(waitpid(kid, &st, 0) == kid, "waitpid");
		gp_untrack(kid);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child %d: status 0x%x (could not "
		      "connect?)", round, st);
		/* after each death a fresh client gets a slot and an answer */
		probe = gp_connect();
		CHECK(gp_register(probe, 800000 + (uint64_t)round, "p", &r) == 0, "probe %d: %s", round,
		      r.reason);
		cqrs_client_close(probe);
	}
	for (int i = 0; i < 4; i++)
		c[i] = gp_connect(); /* every slot: the dead ones were all reclaimed */
	for (int i = 0; i < 4; i++) {
		CHECK(gp_register(c[i], 810000 + (uint64_t)i, "q", &r) == 0, "client %d: %s", i, r.reason);
	}
	CHECK(cqrs__client_parts_get(c[0], &pp) == 0, "parts");
	/* relaxed: a statistic. */
	reclaims = atomic_load_explicit(&pp.lines->reclaims, memory_order_relaxed);
	CHECK(reclaims >= 1, "no dead client reclaimed");
	for (int i = 0; i < 4; i++)
		cqrs_client_close(c[i]);
	printf("killed: 12 clients killed mid-submit, %llu slots reclaimed: ok\n",
	       (unsigned long long)reclaims);
}

int main(void)
{
	const char *s = getenv("CQRS_TEST_SEED");
	uint64_t seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;

	printf("seed %llu\n", (unsigned long long)seed);
	rng_state = seed | 1;
	gp_init("gwh");
	gp_engine_start(0);
	hostile(seed);
	killed();
	gp_engine_stop(SIGTERM);
	printf("gateway_hostile: ok\n");
	return 0;
}
