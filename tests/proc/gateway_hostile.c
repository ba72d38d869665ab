/*
 * tests/proc/gateway_hostile.c - clients that misbehave with exactly a
 * client's own access, against a running `cqrs-orders serve`:
 *
 *   hostile   two child processes write garbage into their own connection
 *             memory (random records, random bytes over the request ring's
 *             data and header, huge lengths, wrong sizes, unknown types,
 *             flags, client_seq 0, impossible reply cursors, stray state
 *             words), reconnecting whenever the engine drops them, while
 *             this process, a well-behaved client, submits commands and
 *             checks every answer (all must be right; no rejected order
 *             may appear in the views). The engine must have counted and
 *             logged drops. Then the children are SIGKILLed and the engine
 *             must still serve.
 *   memory    a client tries to shrink, grow, reseal or write everything it
 *             was handed (its connection memfd, the engine page): every
 *             size change and every write to the engine page is refused by
 *             the kernel; punching a hole in its own memory (zeroes) gets it
 *             dropped; the engine and another client go on.
 *   sockets   raw connections to the gateway socket (each sends a valid ask;
 *             bad asks: gateway_identity): one that never reads
 *             or sends and one that floods doorbell rings (both harmless),
 *             one that sends garbage and one that passes descriptors (both
 *             dropped: counter gw_kicked, log lines; the engine keeps none
 *             of the descriptors), one that half-closes (freed like a
 *             close): another client is served throughout.
 *   killed    with 4 connections at most, 12 clients are SIGKILLed
 *             mid-submit (half after claiming a request record they never
 *             commit, half at a random moment of a submit loop); new
 *             clients must still connect (the sockets' close frees the
 *             dead ones) and get answers.
 *
 * Isolation between users (other uids) is tests/proc/gateway_isolation.c.
 * The seed is printed; CQRS_TEST_SEED replays one.
 */
#include "tests/proc/gateway_proc.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "client/client_internal.h"
#include "cqrs_view.h"
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
static void garbage_record(cqrs_client *c, cqrs__client_parts *pp)
{
	uint8_t buf[1024];
	cqrs__gw_req *h = (cqrs__gw_req *)(void *)buf;
	uint32_t max = (uint32_t)(pp->hello->req_capacity / 2 - CQRS_MPSC_REC_HDR);
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
		cqrs__client_ring(c);
}

static void scribble(cqrs_client *c, cqrs__client_parts *pp)
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
	case 3: /* a stray state word in our connection header */
		atomic_store_explicit(&pp->hdr->state, (uint32_t)rnd() % 8 + 5, memory_order_relaxed);
		break;
	case 4: /* our intents */
		for (uint32_t i = 0; i < CQRS_GW_REQ_PRODUCERS; i++)
			atomic_store_explicit(&mp_slots(rh)[i].intent, rnd(), memory_order_relaxed);
		break;
	default: { /* bytes over the data region, headers of records in flight included */
		uint64_t cap = pp->hello->req_capacity, off = rnd() % cap, n = 8 + rnd() % 256;
		if (hdr != pp->hello->req_size - cap)
			hdr = pp->hello->req_size - cap;
		if (off + n > cap)
			n = cap - off;
		fill_random(ring + hdr + off, (size_t)n);
	}
	}
	cqrs__client_ring(c);
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
			garbage_record(c, &pp);
		} else if (a < 64) {
			scribble(c, &pp);
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
	cqrs_counters ctr;
	cqrs_result r;
	cqrs_view *v;
	uint64_t correct = 0, malformed, drops, last_seq = 0;
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
			last_seq = r.seq;
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
	gp_counters(&ctr);
	malformed = ctr.gw_malformed;
	drops = ctr.gw_drops;
	for (int k = 0; k < 2; k++) {
		int st;
		CHECK(waitpid(kids[k], &st, WNOHANG) == 0, "hostile child %d exited by itself (0x%x)", k,
		      st);
		kill(kids[k], SIGKILL);
		waitpid(kids[k], &st, 0);
		gp_untrack(kids[k]);
	}
	CHECK(malformed > 0, "the engine saw no malformed request");
	CHECK(drops > 0 && gp_log_has("gateway: dropped client"), "no drop counted and logged "
	      "(%llu drops)", (unsigned long long)drops);
	/* nothing wrong in the journal: no rejected order became an order */
	CHECK(cqrs_view_open(gp_name, "order_summaries", &v) == 0, "view: %s", cqrs_last_error());
	CHECK(cqrs_view_wait(v, last_seq, 30 * SEC) == 0, "view wait");
	for (uint64_t i = 2; i < n; i += 3) {
		order_summary row;
		CHECK(cqrs_view_get(v, &(uint64_t){ 70000 + i }, 8, &row, sizeof row) == CQRS_ENOTFOUND,
		      "order %llu exists", (unsigned long long)(70000 + i));
	}
	cqrs_view_close(v);
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

/* ---- the memory a client was handed ---------------------------------------- */

/* Opens the memfd mapped at addr again (the library closed its
 * descriptors after mapping; a hostile client would keep them):
 * /proc/self/maps names the mapping's range, /proc/self/map_files/<range>
 * opens it (that needs CAP_SYS_ADMIN: -1 without). */
static int memfd_of(const void *addr, int flags)
{
	char line[512], path[256];
	unsigned long a = (unsigned long)(uintptr_t)addr, lo, hi;
	FILE *f = fopen("/proc/self/maps", "r");
	int fd = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= a && a < hi) {
			snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", lo, hi);
			fd = open(path, flags);
			break;
		}
	fclose(f);
	return fd;
}

static void memory_child(void)
{
	cqrs__client_parts pp;
	cqrs_client *c;
	cqrs_result r;
	int fd, ro, rc = 0;
	void *m;

	if (cqrs_client_connect(gp_name, &c) || cqrs__client_parts_get(c, &pp))
		_exit(3);
	fd = memfd_of(pp.conn, O_RDWR);
	ro = memfd_of(pp.info, O_RDONLY);
	if (fd < 0 || ro < 0)
		_exit(77); /* no way to reopen them here */
	/* our own connection memory: no size change, no new seal */
	rc |= ftruncate(fd, 4096) == 0;
	rc |= ftruncate(fd, 0) == 0;
	rc |= ftruncate(fd, (off_t)pp.conn_size * 2) == 0;
	rc |= fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0;
	rc |= fallocate(fd, 0, 0, (off_t)pp.conn_size * 2) == 0; /* growing by allocation */
	if (rc)
		_exit(5);
	/* the engine page: no size change and no writable mapping, whatever
	 * way the descriptor was opened */
	close(ro);
	ro = memfd_of(pp.info, O_RDWR);
	if (ro >= 0) {
		rc |= ftruncate(ro, 0) == 0;
		rc |= ftruncate(ro, 1 << 20) == 0;
		rc |= pwrite(ro, "x", 1, 64) == 1;
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
		rc |= m != MAP_FAILED;
		rc |= mprotect((void *)(uintptr_t)pp.info, 4096, PROT_READ | PROT_WRITE) == 0;
		rc |= fallocate(ro, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
		close(ro);
	}
	if (rc)
		_exit(6);
	/* still served after all those attempts */
	if (gp_register(c, 600001, "m", &r) != 0)
		_exit(7);
	/* a hole in our own memory reads as zeroes: the engine finds its
	 * request ring impossible and drops us (alone) */
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)pp.conn_size) != 0)
		_exit(8);
	cqrs__client_ring(c);
	{
		/* the engine closes our socket once it dropped us */
		struct pollfd p = { .fd = pp.sock, .events = POLLIN | POLLRDHUP };
		char b;
		ssize_t n;
		if (poll(&p, 1, 10000) != 1)
			_exit(9);
		n = recv(pp.sock, &b, 1, MSG_DONTWAIT); /* end of file, or reset: our bytes unread */
		if (n != 0 && !(n < 0 && errno == ECONNRESET))
			_exit(11);
	}
	rc = cqrs_client_poll(c, &r);
	_exit(rc == CQRS_ESTOPPED ? 0 : 10);
}

static void memory(void)
{
	cqrs_client *good = gp_connect();
	cqrs_counters before, after;
	cqrs_result r;
	pid_t kid;
	int st;

	gp_counters(&before);
	kid = fork();
	CHECK(kid >= 0, "fork");
	if (kid == 0) {
		gp_child_guard();
		memory_child();
	}
	gp_track(kid);
	for (uint64_t i = 0; i < 200; i++)
		CHECK(gp_register(good, 610000 + i, "g", &r) == 0, "good client: %s", r.reason);
	CHECK(waitpid(kid, &st, 0) == kid, "waitpid");
	gp_untrack(kid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("memory: skipped (cannot reopen mappings without CAP_SYS_ADMIN)\n");
		cqrs_client_close(good);
		return;
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "memory child: status 0x%x", st);
	gp_counters(&after);
	CHECK(after.gw_drops > before.gw_drops, "the client with a hole was not dropped");
	CHECK(gp_register(good, 620000, "g", &r) == 0, "good client after: %s", r.reason);
	cqrs_client_close(good);
	printf("memory: every size change and engine-page write refused, the hole-puncher dropped "
	       "alone: ok\n");
}

/* ---- raw sockets ------------------------------------------------------------ */

/* A connection past its ask: what follows tests the protocol after the
 * hello. */
static int raw_connect(void)
{
	int fd = gp_raw_connect();
	cqrs_gw_ask ask = { .magic = CQRS_GW_ASK_MAGIC, .version = CQRS_GW_VERSION };

	CHECK(send(fd, &ask, sizeof ask, MSG_NOSIGNAL) == (ssize_t)sizeof ask, "raw ask");
	return fd;
}

/* 1 once the engine closed fd (end of file or reset), within 10 s. */
static int closed_by_engine(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	char b[4096];

	for (int i = 0; i < 1000; i++) {
		ssize_t n;
		if (poll(&p, 1, 10) < 0)
			return 0;
		n = recv(fd, b, sizeof b, MSG_DONTWAIT); /* the hello first */
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 1;
	}
	return 0;
}

static void sockets(void)
{
	cqrs_client *good = gp_connect();
	cqrs_counters before, after;
	cqrs_result r;
	char junk[65536], bells[4096];
	int silent, ringer, flood, passer, half, fds0, fds1;

	gp_counters(&before);
	fds0 = gp_fd_count(gp_engine);
	silent = raw_connect(); /* never reads its hello, never sends */
	ringer = raw_connect(); /* floods doorbell rings: allowed, costs only wake-ups */
	flood = raw_connect();  /* sends garbage */
	passer = raw_connect(); /* passes descriptors */
	half = raw_connect();   /* half-closes */
	fill_random(junk, sizeof junk);
	junk[0] = 'x';
	memset(bells, CQRS_GW_BELL_BYTE, sizeof bells);
	for (int i = 0; i < 64; i++) {
		ssize_t n = send(ringer, bells, sizeof bells, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)n;
		n = send(flood, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL);
		CHECK(gp_register(good, 630000 + (uint64_t)i, "s", &r) == 0, "good (flood): %s",
		      r.reason);
	}
	for (int i = 0; i < 32; i++) { /* 8 descriptors a message */
		int fds[8];
		union {
			char buf[CMSG_SPACE(sizeof fds)];
			struct cmsghdr align;
		} u;
		char bell = CQRS_GW_BELL_BYTE;
		struct iovec io = { &bell, 1 };
		struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf,
				    .msg_controllen = sizeof u.buf };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		for (int k = 0; k < 8; k++)
			fds[k] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof fds);
		memcpy(CMSG_DATA(cm), fds, sizeof fds);
		(void)sendmsg(passer, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		for (int k = 0; k < 8; k++)
			close(fds[k]);
	}
	shutdown(half, SHUT_WR);
	for (uint64_t i = 0; i < 100; i++)
		CHECK(gp_register(good, 631000 + i, "s", &r) == 0, "good (tricks): %s", r.reason);
	/* garbage and descriptors get their senders dropped, half-closing frees */
	CHECK(closed_by_engine(flood), "the garbage sender was not dropped");
	CHECK(closed_by_engine(passer), "the descriptor passer was not dropped");
	CHECK(closed_by_engine(half), "the half-closed connection was not freed");
	gp_counters(&after);
	CHECK(after.gw_kicked >= before.gw_kicked + 2, "gw_kicked %llu -> %llu",
	      (unsigned long long)before.gw_kicked, (unsigned long long)after.gw_kicked);
	CHECK(gp_log_has("sent bytes other than doorbell rings") &&
	      gp_log_has("passed descriptors on its socket"), "no log lines for the drops");
	fds1 = gp_fd_count(gp_engine);
	/* descriptors passed to the engine are not kept: its count is at most
	 * the connections still open above (silent, ringer) */
	CHECK(fds1 <= fds0 + 2, "engine descriptors %d -> %d", fds0, fds1);
	close(silent);
	close(ringer);
	close(flood);
	close(passer);
	close(half);
	CHECK(gp_register(good, 632000, "s", &r) == 0, "good (after): %s", r.reason);
	cqrs_client_close(good);
	printf("sockets: silent and ringing peers harmless, garbage and descriptor passers dropped "
	       "(%llu), half-close freed; engine descriptors %d -> %d: ok\n",
	       (unsigned long long)(after.gw_kicked - before.gw_kicked), fds0, fds1);
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
	cqrs_counters ctr;
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
		/* after each death a fresh client connects and gets an answer */
		probe = gp_connect();
		CHECK(gp_register(probe, 800000 + (uint64_t)round, "p", &r) == 0, "probe %d: %s", round,
		      r.reason);
		cqrs_client_close(probe);
	}
	for (int i = 0; i < 4; i++)
		c[i] = gp_connect(); /* all four: the dead ones were all freed */
	for (int i = 0; i < 4; i++) {
		CHECK(gp_register(c[i], 810000 + (uint64_t)i, "q", &r) == 0, "client %d: %s", i, r.reason);
	}
	gp_counters(&ctr);
	reclaims = ctr.gw_disconnects;
	CHECK(reclaims >= 12, "only %llu connections freed", (unsigned long long)reclaims);
	for (int i = 0; i < 4; i++)
		cqrs_client_close(c[i]);
	printf("killed: 12 clients killed mid-submit, %llu connections freed: ok\n",
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
	memory();
	sockets();
	killed();
	gp_engine_stop(SIGTERM);
	printf("gateway_hostile: ok\n");
	return 0;
}
