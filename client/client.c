/*
 * client/client.c - the gateway client (include/cqrs_client.h): find an
 * engine through its control segment, connect to its gateway socket, map
 * the connection memory the engine hands over, send requests into its
 * request ring and read answers from its reply ring (protocol:
 * client/gateway_format.h).
 *
 * One thread at a time per client: the request ring is used as SPSC (our
 * producer handle) and the reply ring is ours to consume. Results that
 * arrive while cqrs_client_submit waits for its own answer are kept in a
 * local FIFO (the stash) and handed out by poll/wait first.
 *
 * Waiting: spin on the reply ring's tail a little, then yield the CPU for
 * a while (answers usually come within microseconds; see core/backoff.h),
 * then sleep on its futex (ringbuf/wait.h) in slices of at most 50 ms;
 * between slices, and every 100 ms of polling that finds nothing, the
 * socket is polled (without blocking): the engine never sends after the
 * hello, so a readable or hung-up socket means it dropped us or died.
 * Cheaper signs are checked every time: the engine page's state
 * (STOPPING, STOPPED) and our connection's (DROPPED).
 *
 * Waking the engine: after committing a request, if the engine page says
 * the command thread sleeps, one byte on the socket (the engine's gateway
 * thread wakes it); else nothing.
 *
 * Numbering: requests without an explicit client_seq get the highest
 * client_seq used on this connection (explicit or automatic) plus one, so
 * an explicit key far ahead never makes later automatic ones look like
 * duplicates; once UINT64_MAX was used, automatic numbering refuses with
 * -EOVERFLOW. A connection with a stable client id numbers nothing: what
 * earlier connections with that id used is not known here, so every request
 * carries its own client_seq (-EINVAL without one).
 *
 * Asking: right after connecting, one cqrs_gw_ask names the client id
 * wanted (0: the engine assigns one); the engine answers with the hello.
 *
 * Over 800 lines for one reason: struct cqrs_client is private to this
 * file, and connecting, sending and waiting all reach into it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "client/gateway_format.h"
#include "core/clock.h"
#include "core/errors.h"
#include "core/schema_internal.h"
#include "cqrs_client.h"
#include "ringbuf/wait.h"
#include "shm/control.h"
#include "shm/segment.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define CONNECT_TIMEOUT_NS UINT64_C(5000000000)
#define ALIVE_EVERY_NS UINT64_C(100000000)
#define FULL_WAIT_NS UINT64_C(1000000000) /* for closed connections to be freed */
#define SLEEP_SLICE_NS UINT64_C(50000000)
/* reply_wait passes the time before it sleeps on the futex as
 * core/backoff.h says; CQRS_CLIENT_SPIN / CQRS_CLIENT_YIELD override its
 * counts (dedicated cores: spin). */

static int env_count(const char *name, int def)
{
	const char *e = getenv(name);
	long v = e && *e ? strtol(e, NULL, 10) : def;

	return v < 0 ? 0 : v > 10000000 ? 10000000 : (int)v;
}

struct cqrs_client {
	char engine[CQRS_NAME_MAX];
	int sock;                 /* the connection; -1 when none */
	cqrs_gw_hello hello;      /* validated */
	uint8_t *conn;            /* our connection memory (read-write) */
	const cqrs_gw_info *info; /* the engine page (read-only) */
	cqrs_gw_conn *hdr;
	cqrs_gw_reply *reply;
	cqrs_mpsc *req;
	cqrs_mpsc_producer *prod;
	int dead;                 /* sticky CQRS_ESTOPPED */
	uint64_t client_id;
	int stable;               /* the client id was ours to give (no automatic client_seq) */
	uint64_t head;            /* reply entries consumed */
	uint64_t next_id;         /* last request id handed out */
	uint64_t max_cseq;        /* highest client_seq used on this connection */
	uint32_t pending;         /* sent, result not yet handed to the caller */
	uint64_t next_alive_ns;
	int spins, yields;        /* reply_wait's budget before sleeping */
	cqrs_result *stash;       /* FIFO of results taken early */
	uint32_t stash_head, stash_n, stash_cap;
	uint32_t ncmds;
	uint32_t types[CQRS_GW_MAX_TYPES];
	cqrs_schema *schemas;     /* ncmds of them */
	const cqrs_schema *by_type[CQRS_GW_MAX_TYPES];
};

/* Wakes the command thread if it sleeps: one byte on our socket (the
 * engine page, where it sleeps, is read-only for us). */
static void ring_bell(cqrs_client *c)
{
	/* seq_cst: pairs with the command thread's seq_cst increment of
	 * waiters before its re-check (ringbuf/wait.h), after our seq_cst
	 * commit of the record. */
	if (atomic_load_explicit(&c->info->bell_waiters, memory_order_seq_cst) != 0) {
		static const char bell = CQRS_GW_BELL_BYTE;
		ssize_t n = send(c->sock, &bell, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)n; /* EAGAIN: bytes are queued already, the engine will look */
	}
}

/* ---- liveness ------------------------------------------------------------ */

/* 0 while the engine serves us, else CQRS_ESTOPPED (sticky). thorough adds
 * a look at the socket (a poll syscall), at most every 100 ms. */
static int gone(cqrs_client *c, int thorough)
{
	uint64_t now;

	if (c->dead)
		return c->dead;
	/* acquire: pairs with the engine's release store of STOPPED (answers
	 * written before it are visible). */
	if (atomic_load_explicit(&c->info->state, memory_order_acquire) == CQRS_GW_STOPPED ||
	    /* acquire: pairs with the engine's release store of DROPPED. */
	    atomic_load_explicit(&c->hdr->state, memory_order_acquire) != CQRS_GW_ACTIVE)
		return c->dead = CQRS_ESTOPPED;
	if (thorough) {
		now = cqrs__mono_ns();
		if (now >= c->next_alive_ns) {
			struct pollfd p = { .fd = c->sock, .events = POLLIN | POLLRDHUP };
			c->next_alive_ns = now + ALIVE_EVERY_NS;
			if (poll(&p, 1, 0) != 0) /* the engine closed, died, or broke the protocol */
				return c->dead = CQRS_ESTOPPED;
		}
	}
	return 0;
}

/* ---- results ------------------------------------------------------------- */

/* Takes the next answer from the reply ring: 1, 0 (none), CQRS_ESTOPPED
 * (impossible cursors: the engine is not the one we know). */
static int reply_take(cqrs_client *c, cqrs_result *res)
{
	/* acquire: pairs with the engine's seq_cst exchange of tail (the entry
	 * is written before). */
	uint64_t tail = atomic_load_explicit(&c->reply->tail, memory_order_acquire);
	const cqrs_gw_entry *en;

	if (tail == c->head)
		return 0;
	if (tail - c->head > c->hello.reply_entries)
		return c->dead = CQRS_ESTOPPED;
	en = cqrs__gw_entry(c->reply, c->hello.reply_entries, c->head);
	res->request_id = en->request_id;
	res->seq = en->seq;
	res->status = en->status;
	res->reserved = 0;
	memcpy(res->reason, en->reason, sizeof res->reason);
	res->reason[sizeof res->reason - 1] = 0;
	c->head++;
	/* seq_cst RMW: release ends our reads of the entry (pairs with the
	 * engine's load of head); seq_cst orders it before the backlog load
	 * (pairs with the engine's seq_cst backlog store). */
	atomic_exchange_explicit(&c->reply->head, c->head, memory_order_seq_cst);
	/* seq_cst: see above. */
	if (atomic_load_explicit(&c->reply->backlog, memory_order_seq_cst))
		ring_bell(c); /* answers are parked: we made room */
	return 1;
}

static int stash_push(cqrs_client *c, const cqrs_result *r)
{
	if (c->stash_n == c->stash_cap) {
		uint32_t cap = c->stash_cap ? c->stash_cap * 2 : 64;
		cqrs_result *n = malloc((size_t)cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		for (uint32_t k = 0; k < c->stash_n; k++)
			n[k] = c->stash[(c->stash_head + k) % c->stash_cap];
		free(c->stash);
		c->stash = n;
		c->stash_cap = cap;
		c->stash_head = 0;
	}
	c->stash[(c->stash_head + c->stash_n) % c->stash_cap] = *r;
	c->stash_n++;
	return 0;
}

static int stash_pop(cqrs_client *c, cqrs_result *r)
{
	if (c->stash_n == 0)
		return 0;
	*r = c->stash[c->stash_head];
	c->stash_head = (c->stash_head + 1) % c->stash_cap;
	c->stash_n--;
	return 1;
}

static int deliver(cqrs_client *c, cqrs_result *res, const cqrs_result *r)
{
	if (res)
		*res = *r;
	if (c->pending)
		c->pending--;
	return 1;
}

static int tail_moved(cqrs_client *c)
{
	/* acquire: pairs with the engine's exchange of tail. */
	return atomic_load_explicit(&c->reply->tail, memory_order_acquire) != c->head;
}

static bool reply_ready(void *arg)
{
	cqrs_client *c = arg;

	/* seq_cst: the re-check of the futex protocol; pairs with the engine's
	 * seq_cst exchange of tail. */
	return atomic_load_explicit(&c->reply->tail, memory_order_seq_cst) != c->head ||
	       gone(c, 0) != 0;
}

/* Waits until an answer is in the reply ring, the engine is gone, or the
 * deadline: 0, -ETIMEDOUT, CQRS_ESTOPPED. */
static int reply_wait(cqrs_client *c, uint64_t deadline)
{
	cqrs_backoff b = cqrs__backoff_make(c->spins, c->yields, deadline);

	while (cqrs__backoff_step(&b)) {
		if (tail_moved(c))
			return 0;
		if (b.n % 64 == 0 && gone(c, 0))
			return c->dead;
	}
	for (;;) {
		uint64_t left;

		if (tail_moved(c))
			return 0;
		if (gone(c, 1))
			return c->dead;
		left = cqrs__remaining(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		if (left > SLEEP_SLICE_NS)
			left = SLEEP_SLICE_NS;
		(void)cqrs__ring_wait(CQRS_WAIT_BLOCK, left, left, &c->reply->seq, &c->reply->waiters,
				      reply_ready, c);
	}
}

/* ---- connect ------------------------------------------------------------- */

static int load_commands(cqrs_client *c, cqrs_ctl *ctl, const cqrs_gw_dir *d)
{
	c->ncmds = d->ncmds;
	c->schemas = calloc(d->ncmds ? d->ncmds : 1, sizeof *c->schemas);
	if (!c->schemas)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->ncmds; i++) {
		uint32_t t = d->cmd_type[i];
		int rc = cqrs__ctl_command_schema(ctl, i, &c->schemas[i]);
		if (rc)
			return rc;
		if (t == 0 || t >= CQRS_GW_MAX_TYPES || c->by_type[t] ||
		    (i > 0 && t <= d->cmd_type[i - 1]) || c->schemas[i].size != d->cmd_size[i])
			return cqrs__fail(CQRS_EFORMAT, "gateway directory: command %u (type %u) does not "
					 "match its schema", i, t);
		c->types[i] = t;
		c->by_type[t] = &c->schemas[i];
	}
	return 0;
}

/* Reads and checks the gateway directory of a running engine; *pid is the
 * engine's (the control segment's owner). */
static int read_dir(cqrs_client *c, cqrs_ctl *ctl, cqrs_gw_dir *d, uint32_t *pid)
{
	uint64_t size, deadline = cqrs__mono_ns() + CONNECT_TIMEOUT_NS;
	const cqrs_gw_dir *sd;
	cqrs_ctl_info info;

	for (;;) {
		cqrs__ctl_info_get(ctl, &info);
		if (info.retired || !info.owner_alive || info.state == CQRS_ENGINE_STOPPED)
			return cqrs__fail(CQRS_ESTOPPED, "engine %s is not running", c->engine);
		if (info.state == CQRS_ENGINE_RUNNING)
			break;
		if (cqrs__mono_ns() >= deadline)
			return cqrs__fail(CQRS_ESTOPPED, "engine %s did not finish starting", c->engine);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	*pid = info.owner_pid;
	sd = cqrs__ctl_region(ctl, CQRS_CTL_GATEWAY, &size);
	if (!sd || size < sizeof *sd)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: gateway region too small", c->engine);
	/* acquire: pairs with the engine's release store of the magic. */
	if (atomic_load_explicit(&sd->magic, memory_order_acquire) != CQRS_GW_DIR_MAGIC)
		return cqrs__fail(CQRS_ENOTFOUND, "engine %s has no command gateway (or speaks "
				 "another gateway version)", c->engine);
	memcpy((uint8_t *)d + sizeof d->magic, (const uint8_t *)sd + sizeof sd->magic,
	       sizeof *d - sizeof d->magic);
	if (d->version != CQRS_GW_VERSION || d->dir_size != sizeof *d)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: gateway format %u (size %u), this library "
				 "speaks %u", c->engine, d->version, d->dir_size, CQRS_GW_VERSION);
	d->sock_name[sizeof d->sock_name - 1] = 0;
	if (d->ncmds > CQRS_GW_MAX_TYPES - 1 || d->ncmds != cqrs__ctl_command_count(ctl) ||
	    d->engine_pid != *pid || d->sock_name[0] == 0)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: inconsistent gateway directory", c->engine);
	return load_commands(c, ctl, d);
}

/* Connects to the engine's socket and checks that the engine listens on it. */
static int dial(cqrs_client *c, const cqrs_gw_dir *d, uint32_t pid, uint32_t owner)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(d->sock_name);
	struct ucred cr;
	socklen_t len = sizeof cr;

	c->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->sock < 0)
		return cqrs__fail(-errno, "socket: %s", strerror(errno));
	memcpy(a.sun_path + 1, d->sock_name, n);
	if (connect(c->sock, (struct sockaddr *)&a,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0) {
		int e = errno;
		if (e == ECONNREFUSED || e == ENOENT)
			return cqrs__fail(CQRS_ESTOPPED, "engine %s: gateway socket gone (restarting?)",
					 c->engine);
		return cqrs__fail(-e, "engine %s: connect: %s", c->engine, strerror(e));
	}
	/* Who answers must be the engine itself, not a process posing as it. */
	if (getsockopt(c->sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || (uint32_t)cr.pid != pid)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: the gateway socket is not the engine's "
				 "(pid %d, engine %u)", c->engine, (int)cr.pid, pid);
	/* ... and runs as the (trusted) owner of the control segment. */
	if ((uint32_t)cr.uid != owner)
		return cqrs__fail(-EACCES, "engine %s: the gateway socket's process runs as uid %u, "
				 "its control segment belongs to uid %u", c->engine, (unsigned)cr.uid,
				 (unsigned)owner);
	return 0;
}

/* Sends the ask: the client id we want (0: the engine's choice). */
static int send_ask(cqrs_client *c, uint64_t client_id)
{
	cqrs_gw_ask a = { .magic = CQRS_GW_ASK_MAGIC, .version = CQRS_GW_VERSION,
			  .client_id = client_id };
	ssize_t n = send(c->sock, &a, sizeof a, MSG_NOSIGNAL);

	/* Closed already: the engine refused at accept (limits, credentials)
	 * and its hello, queued before the close, says why. */
	if (n == (ssize_t)sizeof a || (n < 0 && (errno == EPIPE || errno == ECONNRESET)))
		return 0;
	return cqrs__fail(n < 0 ? -errno : -EIO, "engine %s: send: %s", c->engine,
			 n < 0 ? strerror(errno) : "short write");
}

/* Receives the hello (and its two descriptors) within the connect timeout. */
static int recv_hello(cqrs_client *c, int fds[2])
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec io = { &c->hello, sizeof c->hello };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof u.buf };
	struct pollfd p = { .fd = c->sock, .events = POLLIN };
	struct cmsghdr *cm;
	ssize_t n;
	int nfds = 0;

	fds[0] = fds[1] = -1;
	for (uint64_t deadline = cqrs__mono_ns() + CONNECT_TIMEOUT_NS;;) {
		uint64_t now = cqrs__mono_ns();
		int r;

		if (now >= deadline)
			return cqrs__fail(-ETIMEDOUT, "engine %s did not answer the connection",
					 c->engine);
		r = poll(&p, 1, (int)((deadline - now) / 1000000) + 1);
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR)
			return cqrs__fail(-errno, "engine %s: poll: %s", c->engine, strerror(errno));
	}
	n = recvmsg(c->sock, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
				if (nfds < 2)
					fds[nfds++] = fd;
				else
					close(fd);
			}
		}
	/* Closed before the hello (end of file or reset): the engine stopped or
	 * died with our connection still in its backlog; not a format error. */
	if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
		return cqrs__fail(CQRS_ESTOPPED, "engine %s closed the connection before its hello "
				 "(stopping or restarting?)", c->engine);
	if (n != (ssize_t)sizeof c->hello || c->hello.magic != CQRS_GW_HELLO_MAGIC)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: no valid gateway hello", c->engine);
	if (c->hello.version != CQRS_GW_VERSION)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: gateway format %u, this library speaks %u",
				 c->engine, c->hello.version, CQRS_GW_VERSION);
	c->hello.reason[sizeof c->hello.reason - 1] = 0;
	if (c->hello.status)
		return cqrs__fail(c->hello.status > 0 ? -EPROTO : c->hello.status,
				 "engine %s refused the connection: %s", c->engine, c->hello.reason);
	if ((m.msg_flags & MSG_CTRUNC) || nfds != 2)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: hello without its memory", c->engine);
	return cqrs__gw_layout_check(&c->hello);
}

/* A memfd of exactly size bytes that nobody can shrink. */
static int check_memfd(cqrs_client *c, int fd, uint64_t size, int seals)
{
	struct stat st;
	int have = fcntl(fd, F_GET_SEALS);

	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != size || have < 0 || (have & seals) != seals)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: connection memory not as announced",
				 c->engine);
	return 0;
}

static int map_memory(cqrs_client *c, const int fds[2])
{
	const cqrs_gw_hello *h = &c->hello;
	void *m;
	int rc;

	rc = check_memfd(c, fds[0], h->conn_size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	if (!rc)
		rc = check_memfd(c, fds[1], h->info_size,
				 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL);
	if (rc)
		return rc;
	m = mmap(NULL, (size_t)h->conn_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (m == MAP_FAILED)
		return cqrs__fail(-errno, "mmap connection: %s", strerror(errno));
	c->conn = m;
	m = mmap(NULL, h->info_size, PROT_READ, MAP_SHARED, fds[1], 0);
	if (m == MAP_FAILED)
		return cqrs__fail(-errno, "mmap engine page: %s", strerror(errno));
	c->info = m;
	c->hdr = (cqrs_gw_conn *)(void *)c->conn;
	c->reply = cqrs__gw_reply(c->conn, h);
	if (c->info->magic != CQRS_GW_INFO_MAGIC || c->info->generation != h->generation ||
	    c->hdr->magic != CQRS_GW_CONN_MAGIC || c->hdr->client_id != h->client_id)
		return cqrs__fail(CQRS_EFORMAT, "engine %s: connection memory not as announced",
				 c->engine);
	c->client_id = h->client_id;
	rc = cqrs_mpsc_attach(c->conn + h->req_off, (size_t)h->req_size, &c->req);
	if (!rc)
		rc = cqrs_mpsc_producer_open(c->req, &c->prod);
	if (rc)
		return rc;
	/* acquire: the engine wrote the memory before the hello. */
	c->head = atomic_load_explicit(&c->reply->head, memory_order_acquire);
	return 0;
}

uint64_t cqrs_client_id_from_name(const char *name)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a, 64 bits */

	if (!name || !*name)
		return 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * UINT64_C(0x100000001b3);
	h &= ~CQRS_GW_ASSIGNED_BIT;
	return h ? h : 1;
}

int cqrs_client_connect(const char *engine, cqrs_client **out)
{
	return cqrs_client_connect_opts(engine, NULL, out);
}

int cqrs_client_connect_opts(const char *engine, const cqrs_client_opts *opts, cqrs_client **out)
{
	cqrs_client_opts o = { 0 };
	cqrs_client *c;
	cqrs_ctl *ctl = NULL;
	cqrs_gw_dir d;
	uint64_t full_deadline, want = 0;
	uint32_t pid = 0, owner = 0;
	int rc, fds[2] = { -1, -1 };

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!engine || !cqrs__name_valid(engine, CQRS_NAME_MAX))
		return cqrs__fail(-EINVAL, "bad engine name");
	if (opts) {
		/* an older caller's smaller struct: the fields it has */
		if (opts->size < offsetof(cqrs_client_opts, client_name) ||
		    opts->size > sizeof o)
			return cqrs__fail(-EINVAL, "cqrs_client_opts: size %u (this library knows %zu)",
					 opts->size, sizeof o);
		memcpy(&o, opts, opts->size);
	}
	if (o.flags)
		return cqrs__fail(-EINVAL, "cqrs_client_opts: unknown flags 0x%x", o.flags);
	if (o.client_id && o.client_name)
		return cqrs__fail(-EINVAL, "cqrs_client_opts: give client_id or client_name, not both");
	want = o.client_name ? cqrs_client_id_from_name(o.client_name) : o.client_id;
	if (o.client_name && !want)
		return cqrs__fail(-EINVAL, "cqrs_client_opts: empty client_name");
	if (want & CQRS_GW_ASSIGNED_BIT)
		return cqrs__fail(-EINVAL, "client id %llu has bit 63 set: only the engine assigns "
				 "those (stable ids are 1 .. 2^63-1)", (unsigned long long)want);
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->sock = -1;
	strcpy(c->engine, engine);
	c->spins = env_count("CQRS_CLIENT_SPIN", CQRS_BACKOFF_SPINS);
	c->yields = env_count("CQRS_CLIENT_YIELD", CQRS_BACKOFF_YIELDS);
	rc = cqrs__ctl_open(engine, &ctl);
	if (rc == -ENOENT)
		rc = cqrs__fail(CQRS_ENOTFOUND, "no engine named %s", engine);
	if (!rc)
		rc = read_dir(c, ctl, &d, &pid);
	if (!rc)
		owner = ctl->seg.uid;
	cqrs__ctl_close(ctl);
	/* A full gateway may have connections that just closed and are not
	 * freed yet: ask again for a while. */
	full_deadline = cqrs__mono_ns() + FULL_WAIT_NS;
	while (!rc) {
		rc = dial(c, &d, pid, owner);
		if (!rc)
			rc = send_ask(c, want);
		if (!rc)
			rc = recv_hello(c, fds);
		if (rc != CQRS_EFULL || cqrs__mono_ns() >= full_deadline)
			break;
		close(c->sock);
		c->sock = -1;
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
		rc = 0;
	}
	if (!rc)
		rc = map_memory(c, fds);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]); /* the mappings keep the memory */
	/* acquire: pairs with the engine's release of STOPPING/STOPPED. */
	if (!rc && atomic_load_explicit(&c->info->state, memory_order_acquire) != CQRS_GW_RUNNING)
		rc = cqrs__fail(CQRS_ESTOPPED, "engine %s is stopping", engine);
	if (rc) {
		cqrs_client_close(c);
		return rc;
	}
	if (!rc && want && c->client_id != want)
		rc = cqrs__fail(CQRS_EFORMAT, "engine %s gave client id %llu, %llu was asked", engine,
				(unsigned long long)c->client_id, (unsigned long long)want);
	if (rc) {
		cqrs_client_close(c);
		return rc;
	}
	c->stable = want != 0;
	c->next_alive_ns = cqrs__mono_ns() + ALIVE_EVERY_NS;
	*out = c;
	return 0;
}

void cqrs_client_close(cqrs_client *c)
{
	if (!c)
		return;
	cqrs_mpsc_producer_close(c->prod);
	cqrs_mpsc_close(c->req);
	if (c->sock >= 0)
		close(c->sock); /* the engine frees our connection when it sees this */
	if (c->conn)
		munmap(c->conn, (size_t)c->hello.conn_size);
	if (c->info)
		munmap((void *)(uintptr_t)c->info, c->hello.info_size);
	free(c->schemas);
	free(c->stash);
	free(c);
}

/* ---- commands ------------------------------------------------------------ */

int cqrs_client_command_count(cqrs_client *c)
{
	return c ? (int)c->ncmds : -EINVAL;
}

int cqrs_client_command_at(cqrs_client *c, int i, uint32_t *type, const cqrs_schema **schema)
{
	if (!c || i < 0 || (uint32_t)i >= c->ncmds)
		return CQRS_ENOTFOUND;
	if (type)
		*type = c->types[i];
	if (schema)
		*schema = &c->schemas[i];
	return 0;
}

int cqrs_client_command_type(cqrs_client *c, const char *name, uint32_t *type,
			     const cqrs_schema **schema)
{
	if (!c || !name)
		return -EINVAL;
	for (uint32_t i = 0; i < c->ncmds; i++)
		if (strncmp(c->schemas[i].name, name, CQRS_NAME_MAX) == 0)
			return cqrs_client_command_at(c, (int)i, type, schema);
	return CQRS_ENOTFOUND;
}

const char *cqrs_client_engine(cqrs_client *c)
{
	return c ? c->engine : "";
}

uint64_t cqrs_client_id(cqrs_client *c)
{
	return c && !c->dead ? c->client_id : 0;
}

uint32_t cqrs_client_pending(cqrs_client *c)
{
	return c ? c->pending : 0;
}

/* ---- requests ------------------------------------------------------------ */

int cqrs_client_send(cqrs_client *c, uint32_t type, const void *cmd, size_t len,
		     const cqrs_submit_opts *opts, uint64_t *request_id)
{
	static const cqrs_submit_opts none = { 0 };
	const cqrs_schema *s;
	cqrs__gw_req *h;
	uint64_t cseq;
	uint32_t rlen;
	void *d;
	int rc, tries = 0;

	if (!c || (len && !cmd))
		return -EINVAL;
	if (c->dead)
		return c->dead;
	if (!opts)
		opts = &none;
	if (type >= CQRS_GW_MAX_TYPES || !(s = c->by_type[type]) || len != s->size ||
	    (opts->flags & ~CQRS_GW_KNOWN_FLAGS) || opts->reserved || opts->aggregate_id == UINT64_MAX)
		return -EINVAL;
	/* acquire: pairs with the engine's release of STOPPING. */
	if (atomic_load_explicit(&c->info->state, memory_order_acquire) != CQRS_GW_RUNNING ||
	    gone(c, 0))
		return CQRS_ESTOPPED;
	if (opts->client_seq)
		cseq = opts->client_seq;
	else if (c->stable)
		return cqrs__fail(-EINVAL, "client %llu is a stable client id: every request needs "
				 "its own client_seq", (unsigned long long)c->client_id);
	else if (c->max_cseq == UINT64_MAX)
		return cqrs__fail(-EOVERFLOW, "client_seq %llu was used on this connection: no "
				 "automatic number is left after it (reconnect, or pass client_seq)",
				 (unsigned long long)UINT64_MAX);
	else
		cseq = c->max_cseq + 1;
	rlen = (uint32_t)(sizeof *h + len);
	do {
		rc = cqrs_mpsc_try_claim(c->prod, CQRS_GW_REC_REQUEST, rlen, &d);
		if (rc == 0) {
			h = d;
			*h = (cqrs__gw_req){ .request_id = c->next_id + 1,
					    .aggregate_id = opts->aggregate_id,
					    .expected_version = opts->expected_version,
					    .client_seq = cseq,
					    .type = type, .size = (uint32_t)len, .flags = opts->flags };
			if (len)
				memcpy(h + 1, cmd, len);
			rc = cqrs_mpsc_commit(c->prod, rlen);
		}
	} while (rc == CQRS_ESTALE && ++tries < 3); /* we stalled past the claim timeout */
	if (rc)
		return rc;
	c->next_id++;
	c->pending++;
	if (cseq > c->max_cseq)
		c->max_cseq = cseq;
	ring_bell(c);
	if (request_id)
		*request_id = c->next_id;
	return 0;
}

int cqrs_client_poll(cqrs_client *c, cqrs_result *res)
{
	cqrs_result r;
	int rc;

	if (!c)
		return -EINVAL;
	if (stash_pop(c, &r))
		return deliver(c, res, &r);
	rc = reply_take(c, &r);
	if (rc)
		return rc > 0 ? deliver(c, res, &r) : rc;
	rc = gone(c, 1);
	if (rc) {
		/* answers published before the engine went are still ours */
		if (reply_take(c, &r) > 0)
			return deliver(c, res, &r);
		return rc;
	}
	return 0;
}

int cqrs_client_wait(cqrs_client *c, cqrs_result *res, uint64_t timeout_ns)
{
	uint64_t deadline = cqrs__deadline_after(timeout_ns);
	int rc;

	if (!c)
		return -EINVAL;
	for (;;) {
		rc = cqrs_client_poll(c, res);
		if (rc)
			return rc;
		if (c->pending == 0)
			return -EAGAIN;
		rc = reply_wait(c, deadline);
		if (rc && !tail_moved(c))
			return rc;
	}
}

static int fail_result(cqrs_result *res, int rc, uint64_t id)
{
	if (res) {
		memset(res, 0, sizeof *res);
		res->status = rc;
		res->request_id = id;
	}
	return rc;
}

int cqrs_client_submit(cqrs_client *c, uint32_t type, const void *cmd, size_t len,
		       const cqrs_submit_opts *opts, cqrs_result *res, uint64_t timeout_ns)
{
	uint64_t deadline = cqrs__deadline_after(timeout_ns), id = 0;
	cqrs_result r;
	int rc;

	if (!c)
		return fail_result(res, -EINVAL, 0);
	for (;;) {
		rc = cqrs_client_send(c, type, cmd, len, opts, &id);
		if (rc != -EAGAIN)
			break;
		/* Ring full: make room by taking answers (kept for poll). */
		rc = reply_take(c, &r);
		if (rc > 0) {
			rc = stash_push(c, &r);
			if (rc)
				return fail_result(res, rc, 0);
			continue;
		}
		if (rc < 0)
			return fail_result(res, rc, 0);
		rc = reply_wait(c, deadline);
		if (rc && !tail_moved(c))
			return fail_result(res, rc, 0);
	}
	if (rc)
		return fail_result(res, rc, 0);
	for (;;) {
		rc = reply_take(c, &r);
		if (rc > 0) {
			if (r.request_id == id) {
				deliver(c, res, &r);
				return r.status;
			}
			rc = stash_push(c, &r);
			if (rc)
				return fail_result(res, rc, id);
			continue;
		}
		if (rc < 0)
			return fail_result(res, rc, id);
		rc = reply_wait(c, deadline);
		if (rc && !tail_moved(c))
			return fail_result(res, rc, id); /* -ETIMEDOUT: still pending */
	}
}

/* ---- white box ------------------------------------------------------------ */

int cqrs__client_parts_get(cqrs_client *c, cqrs__client_parts *out)
{
	if (!c || !c->conn)
		return -EINVAL;
	out->conn = c->conn;
	out->conn_size = (size_t)c->hello.conn_size;
	out->hello = &c->hello;
	out->info = c->info;
	out->hdr = c->hdr;
	out->req_mem = c->conn + c->hello.req_off;
	out->reply = c->reply;
	out->req = c->req;
	out->producer = c->prod;
	out->sock = c->sock;
	return 0;
}

void cqrs__client_ring(cqrs_client *c)
{
	if (c && c->sock >= 0) {
		static const char bell = CQRS_GW_BELL_BYTE;
		ssize_t n = send(c->sock, &bell, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)n;
	}
}
