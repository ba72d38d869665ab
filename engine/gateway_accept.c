/*
 * engine/gateway_accept.c - the gateway thread: the cold half of the
 * command gateway (layout and protocol: client/gateway_format.h; the
 * shared state and slot life: engine/gateway_internal.h).
 *
 * One thread, one poll() over the listening socket, an eventfd (the
 * command thread's "slots are done" and the stop signal) and every
 * client's socket. It
 *   - accepts a connection, reads the peer's credentials (SO_PEERCRED,
 *     SO_PEERGROUPS) and admits it when its uid is allowed or one of its
 *     groups is, and when neither the total nor its uid's count of
 *     connections is at its limit; a refused peer gets a hello saying why
 *     (counters gw_refused, gw_limited; a log line at the 1st, 2nd, 4th...
 *     refusal) and the socket closes;
 *   - holds an admitted connection in its slot (pending, in the poll set)
 *     until the client's ask arrives; checks it (format, version, the
 *     client id asked for: a stable id must not be one the engine assigns
 *     nor held by another live connection) and gives the connection its
 *     client id (the stable one, or a new assigned one);
 *   - creates the connection's memory (a memfd: connection header, request
 *     ring, reply ring; every page touched), seals it against shrinking and
 *     growing, sends it with the engine page in the hello (SCM_RIGHTS),
 *     and publishes the slot READY for the command thread;
 *   - reads what clients send: doorbell rings (one CQRS_GW_BELL_BYTE
 *     each; it wakes the command thread if it sleeps, on the client's
 *     behalf: clients map the doorbell read-only); a client that sends any
 *     other byte or passes descriptors (closed unread) is dropped (counter
 *     gw_kicked, a log line);
 *   - turns a socket's hang-up, error or end of file into `hup` for the
 *     command thread, and frees slots the command thread finished (DONE):
 *     closes the socket (a dropped client sees end of file), unmaps.
 * Nothing here runs per request. A client that floods its socket with
 * doorbell bytes costs this thread reads and the command thread spurious
 * wake-ups, nothing else; a client that never sends or never reads holds
 * only its own slot; half-closing ends the connection like a close.
 * A connection's ask is read once per connection: stable client ids cost
 * nothing per request.
 *
 * Over 800 lines for one reason: this is the gateway thread's whole life
 * (poll set, limits, ask, memory, sockets, start and stop), all of it on
 * static helpers that no other file should call.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/errors.h"
#include "engine/counters.h"
#include "engine/gateway_internal.h"
#include "ringbuf/wait.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define MAX_GROUPS 256
#define ACCEPTS_PER_TURN 64
#define READS_PER_TURN 16
#define EMFILE_PAUSE_MS 10

/* splitmix64's finalizer: a bijection, so distinct inputs stay distinct. */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Wakes the command thread if it sleeps (ringbuf/wait.h's waker half). */
static void ring_bell(gateway *g)
{
	cqrs__ring_wake(&g->info->bell_seq, &g->info->bell_waiters);
}

static int log_now(uint64_t *count)
{
	uint64_t n = ++*count;
	return (n & (n - 1)) == 0;
}

/* ---- the poll set ------------------------------------------------------- */

static void watch(gateway *g, gw_conn *c)
{
	c->pfd_pos = g->npfd;
	g->pfd[g->npfd] = (struct pollfd){ .fd = c->fd, .events = POLLIN | POLLRDHUP };
	g->pfd_conn[g->npfd] = c->index;
	g->npfd++;
}

static void unwatch(gateway *g, gw_conn *c)
{
	uint32_t pos = c->pfd_pos, last = g->npfd - 1;

	if (pos == GW_NONE)
		return;
	if (pos != last) {
		g->pfd[pos] = g->pfd[last];
		g->pfd_conn[pos] = g->pfd_conn[last];
		g->conns[g->pfd_conn[pos]].pfd_pos = pos;
	}
	g->npfd--;
	c->pfd_pos = GW_NONE;
}

/* ---- per-uid counts ------------------------------------------------------ */

static gw_uid_count *uid_slot(gateway *g, uid_t uid, int add)
{
	for (uint32_t i = 0; i < g->nuid_counts; i++)
		if (g->uid_counts[i].uid == uid)
			return &g->uid_counts[i];
	if (!add || g->nuid_counts == g->max_clients)
		return NULL;
	g->uid_counts[g->nuid_counts] = (gw_uid_count){ uid, 0 };
	return &g->uid_counts[g->nuid_counts++];
}

static void uid_release(gateway *g, uid_t uid)
{
	gw_uid_count *u = uid_slot(g, uid, 0);

	if (u && --u->n == 0)
		*u = g->uid_counts[--g->nuid_counts];
}

/* ---- connections --------------------------------------------------------- */

static void conn_free(gateway *g, gw_conn *c)
{
	unwatch(g, c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->mem)
		munmap(c->mem, c->size);
	c->mem = NULL;
	cqrs_mpsc_close(c->req);
	c->req = NULL;
	free(c->tickets);
	c->tickets = NULL;
	c->pending = 0;
}

/* A slot the command thread is done with: back to FREE. */
static void conn_release(gateway *g, gw_conn *c)
{
	conn_free(g, c);
	uid_release(g, c->uid);
	g->nclients--;
	CTR_ADD(g->e->ctr, gw_disconnects, 1);
	CTR_SET(g->e->ctr, gw_clients, g->nclients);
	/* relaxed: the slot is ours again; nobody else reads it until we
	 * publish READY with release. */
	atomic_store_explicit(&c->st, GS_FREE, memory_order_relaxed);
}

static void reap_done(gateway *g)
{
	for (uint32_t i = 0; i < g->max_clients; i++)
		/* acquire: pairs with the command thread's release of DONE (its
		 * last use of the slot's memory and tickets before). */
		if (atomic_load_explicit(&g->conns[i].st, memory_order_acquire) == GS_DONE)
			conn_release(g, &g->conns[i]);
}

/* The socket closed: tell the command thread. */
static void hangup(gateway *g, gw_conn *c)
{
	unwatch(g, c);
	/* release: pairs with the command thread's acquire load of hup. */
	atomic_store_explicit(&c->hup, 1, memory_order_release);
	/* seq_cst RMW: the command thread's re-check reads it (futex protocol). */
	atomic_fetch_add_explicit(&g->changes, 1, memory_order_seq_cst);
	ring_bell(g);
}

/* A client broke the socket protocol: drop it (the command thread retires
 * the slot as for a hang-up; the client sees DROPPED, then end of file). */
static void kick(gateway *g, gw_conn *c, const char *why)
{
	/* release: pairs with the client's acquire load of its state. */
	atomic_store_explicit(&c->hdr->state, CQRS_GW_DROPPED, memory_order_release);
	CTR_ADD(g->e->ctr, gw_kicked, 1);
	if (log_now(&g->kicked_logged))
		cqrs__log(g->e, CQRS_LOG_WARN, "gateway: dropped client %llu (pid %d, uid %u): %s "
			  "(%llu such drops so far)", (unsigned long long)c->client_id, (int)c->pid,
			  (unsigned)c->uid, why, (unsigned long long)g->kicked_logged);
	hangup(g, c);
}

static void on_ask(gateway *g, gw_conn *c, short revents);

/* Bytes from a client: doorbell rings (CQRS_GW_BELL_BYTE each). End of
 * file or an error: gone. Other bytes or descriptors: dropped. */
static void on_socket(gateway *g, gw_conn *c, short revents)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} u;
	char buf[4096];
	int rang = 0;

	if (c->pending) {
		on_ask(g, c, revents);
		return;
	}
	if (revents & POLLIN) {
		for (int k = 0; k < READS_PER_TURN; k++) {
			struct iovec io = { buf, sizeof buf };
			struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf,
					    .msg_controllen = sizeof u.buf };
			ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
			struct cmsghdr *cm;
			int fds = 0;

			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				break;
			if (n <= 0) {
				hangup(g, c); /* end of file (close or half-close), or an error */
				return;
			}
			/* Descriptors passed to us: close them, unread. */
			for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
				if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
					size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
					for (size_t i = 0; i < nfd; i++) {
						int fd;
						memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
						close(fd);
						fds++;
					}
				}
			if (fds || (m.msg_flags & MSG_CTRUNC)) {
				kick(g, c, "passed descriptors on its socket");
				return;
			}
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] != CQRS_GW_BELL_BYTE) {
					kick(g, c, "sent bytes other than doorbell rings");
					return;
				}
			rang = 1;
		}
	}
	if (revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) {
		hangup(g, c);
		return;
	}
	if (rang)
		ring_bell(g);
}

static int send_hello(int fd, const cqrs_gw_hello *h, int conn_fd, int info_fd)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec io = { (void *)(uintptr_t)h, sizeof *h };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1 };
	ssize_t n;

	if (conn_fd >= 0) {
		struct cmsghdr *cm;
		int fds[2] = { conn_fd, info_fd };

		memset(&u, 0, sizeof u);
		m.msg_control = u.buf;
		m.msg_controllen = sizeof u.buf;
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof fds);
		memcpy(CMSG_DATA(cm), fds, sizeof fds);
	}
	n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == (ssize_t)sizeof *h ? 0 : n < 0 ? -errno : -EIO;
}

static void refuse(gateway *g, int fd, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Answers a refused peer with the reason and closes (cold). */
static void refuse(gateway *g, int fd, int status, const char *fmt, ...)
{
	cqrs_gw_hello h = g->layout;
	va_list ap;

	h.status = status;
	h.client_id = 0;
	va_start(ap, fmt);
	vsnprintf(h.reason, sizeof h.reason, fmt, ap);
	va_end(ap);
	(void)send_hello(fd, &h, -1, -1);
	close(fd);
	if (log_now(&g->refused_logged))
		cqrs__log(g->e, CQRS_LOG_WARN, "gateway: connection refused: %s (%llu refusals so far)",
			  h.reason, (unsigned long long)g->refused_logged);
}

static int allowed(const gateway *g, const struct ucred *cr, const gid_t *groups, uint32_t ng)
{
	for (uint32_t i = 0; i < g->nuids; i++)
		if (g->uids[i] == cr->uid)
			return 1;
	for (uint32_t i = 0; i < g->ngids; i++) {
		if (g->gids[i] == cr->gid)
			return 1;
		for (uint32_t k = 0; k < ng; k++)
			if (groups[k] == g->gids[i])
				return 1;
	}
	return 0;
}

/* Creates c's memory, sealed; returns its memfd (>= 0) or -errno. */
static int conn_create(gateway *g, gw_conn *c)
{
	const cqrs_gw_hello *L = &g->layout;
	int mfd, rc;

	mfd = memfd_create("cqrs-gw-conn", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -errno;
	if (ftruncate(mfd, (off_t)L->conn_size) < 0)
		goto fail_errno;
	c->size = (size_t)L->conn_size;
	c->mem = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, mfd, 0);
	if (c->mem == MAP_FAILED) {
		c->mem = NULL;
		goto fail_errno;
	}
	/* Every page is touched now, before the client has it: the zeroing
	 * below writes the whole connection memory. */
	memset(c->mem, 0, c->size);
	c->hdr = (cqrs_gw_conn *)(void *)c->mem;
	c->reply = cqrs__gw_reply(c->mem, L);
	c->hdr->magic = CQRS_GW_CONN_MAGIC;
	c->hdr->client_id = c->client_id;
	/* relaxed: the client maps this memory only after the hello. */
	atomic_store_explicit(&c->hdr->state, CQRS_GW_ACTIVE, memory_order_relaxed);
	/* init builds our handle from its arguments, never from the memory the
	 * client will share. */
	rc = cqrs_mpsc_init(c->mem + L->req_off, (size_t)L->req_size, L->req_capacity,
			    CQRS_GW_REQ_PRODUCERS, CQRS_GW_CLAIM_TIMEOUT_NS, &c->req);
	if (rc) {
		close(mfd);
		return rc;
	}
	(void)cqrs_mpsc_ready(c->req); /* latch the consumer on head 0 */
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail_errno;
	c->tickets = calloc(CQRS_GW_QUOTA, sizeof *c->tickets);
	if (!c->tickets) {
		close(mfd);
		return -ENOMEM;
	}
	c->free_head = GW_NONE;
	c->nfree = 0;
	for (uint32_t k = CQRS_GW_QUOTA; k-- > 0;) {
		c->tickets[k].next = c->free_head;
		c->free_head = k;
		c->nfree++;
	}
	c->ovf_head = c->ovf_tail = GW_NONE;
	c->active_pos = GW_NONE;
	c->reply_tail = 0;
	c->corrupt_seen = 0;
	return mfd;
fail_errno:
	rc = -errno;
	close(mfd);
	return rc;
}

static void on_connect(gateway *g, int fd)
{
	gid_t groups[MAX_GROUPS];
	socklen_t len = sizeof(struct ucred);
	struct ucred cr;
	uint32_t ng = 0, i;
	gw_uid_count *u;
	gw_conn *c = NULL;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof cr) {
		close(fd);
		return;
	}
	len = sizeof groups;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
		ng = len / sizeof groups[0];
	if (!allowed(g, &cr, groups, ng)) {
		CTR_ADD(g->e->ctr, gw_refused, 1);
		refuse(g, fd, -EACCES, "pid %d uid %u gid %u is not allowed to submit", (int)cr.pid,
		       (unsigned)cr.uid, (unsigned)cr.gid);
		return;
	}
	/* relaxed: our own store (the command thread may have stored STOPPING:
	 * then a refusal now or an ESTOPPED later are both right). */
	if (atomic_load_explicit(&g->info->state, memory_order_relaxed) != CQRS_GW_RUNNING) {
		refuse(g, fd, CQRS_ESTOPPED, "the engine is stopping");
		return;
	}
	if (g->nclients >= g->max_clients) {
		CTR_ADD(g->e->ctr, gw_limited, 1);
		refuse(g, fd, CQRS_EFULL, "all %u gateway connections are taken", g->max_clients);
		return;
	}
	u = uid_slot(g, cr.uid, 0);
	if (u && u->n >= g->per_uid) {
		CTR_ADD(g->e->ctr, gw_limited, 1);
		refuse(g, fd, CQRS_EFULL, "uid %u holds %u gateway connections, the limit per uid",
		       (unsigned)cr.uid, u->n);
		return;
	}
	for (i = 0; i < g->max_clients; i++)
		/* relaxed: FREE slots are ours; the command thread never stores FREE. */
		if (atomic_load_explicit(&g->conns[i].st, memory_order_relaxed) == GS_FREE &&
		    !g->conns[i].pending) {
			c = &g->conns[i];
			break;
		}
	if (!c) { /* every slot still waits to be reaped (DONE): soon free */
		CTR_ADD(g->e->ctr, gw_limited, 1);
		refuse(g, fd, CQRS_EFULL, "all %u gateway connections are taken", g->max_clients);
		return;
	}
	c->fd = fd;
	c->uid = cr.uid;
	c->pid = cr.pid;
	c->pending = 1;
	u = uid_slot(g, cr.uid, 1);
	if (u)
		u->n++;
	g->nclients++;
	CTR_SET(g->e->ctr, gw_clients, g->nclients);
	watch(g, c);
	on_ask(g, c, 0); /* it is usually there already */
}

/* A pending connection leaves its slot (FREE all along) before its hello. */
static int pending_leave(gateway *g, gw_conn *c)
{
	int fd = c->fd;

	unwatch(g, c);
	c->fd = -1;
	c->pending = 0;
	uid_release(g, c->uid);
	g->nclients--;
	CTR_SET(g->e->ctr, gw_clients, g->nclients);
	return fd;
}

/* Another live connection holds client id `id`. A holder whose socket hung
 * up (the client died or closed, and we have not looked yet) is retired
 * now instead: a client that restarts at once is not refused. */
static int id_taken(gateway *g, const gw_conn *self, uint64_t id)
{
	for (uint32_t i = 0; i < g->max_clients; i++) {
		gw_conn *o = &g->conns[i];
		struct pollfd p;
		/* relaxed: a stale LIVE (the command thread just retired it)
		 * refuses once more, nothing worse. */
		uint32_t st = atomic_load_explicit(&o->st, memory_order_relaxed);

		if (o == self || o->pending || o->client_id != id ||
		    (st != GS_READY && st != GS_LIVE) ||
		    /* relaxed: we are the only writer of hup */
		    atomic_load_explicit(&o->hup, memory_order_relaxed) || o->pfd_pos == GW_NONE)
			continue;
		p = (struct pollfd){ .fd = o->fd, .events = POLLRDHUP };
		if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL))) {
			hangup(g, o);
			continue;
		}
		return 1;
	}
	return 0;
}

/* Reads and checks the client's ask; on a good one gives the connection its
 * id and memory and publishes it READY. Not there yet: waits (poll). */
static void on_ask(gateway *g, gw_conn *c, short revents)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} u;
	cqrs_gw_ask ask;
	struct iovec io = { &ask, sizeof ask };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof u.buf };
	struct cmsghdr *cm;
	cqrs_gw_hello h;
	ssize_t n;
	int mfd, rc, fds = 0, fd;

	memset(&ask, 0, sizeof ask);
	n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		if (revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL))
			close(pending_leave(g, c));
		return;
	}
	for (cm = CMSG_FIRSTHDR(&m); n > 0 && cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int x;
				memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof x);
				close(x);
				fds++;
			}
		}
	if (n <= 0) { /* gone before asking */
		close(pending_leave(g, c));
		return;
	}
	fd = pending_leave(g, c);
	if (fds || (m.msg_flags & MSG_CTRUNC) || n != (ssize_t)sizeof ask ||
	    ask.magic != CQRS_GW_ASK_MAGIC) {
		CTR_ADD(g->e->ctr, gw_kicked, 1);
		refuse(g, fd, CQRS_EFORMAT, "pid %d sent no valid gateway ask", (int)c->pid);
		return;
	}
	if (ask.version != CQRS_GW_VERSION) {
		refuse(g, fd, CQRS_EFORMAT, "gateway format %u asked, this engine speaks %u",
		       ask.version, CQRS_GW_VERSION);
		return;
	}
	if (ask.flags || ask.reserved[0] || ask.reserved[1] || ask.reserved[2] || ask.reserved[3] ||
	    ask.reserved[4]) {
		CTR_ADD(g->e->ctr, gw_kicked, 1);
		refuse(g, fd, CQRS_EFORMAT, "pid %d: unknown flags or reserved bytes in its ask",
		       (int)c->pid);
		return;
	}
	if (ask.client_id & CQRS_GW_ASSIGNED_BIT) {
		refuse(g, fd, -EINVAL, "client id %llu has bit 63 set: only the engine assigns those",
		       (unsigned long long)ask.client_id);
		return;
	}
	/* re-check: the slot was FREE for the limits while pending */
	if (ask.client_id && id_taken(g, c, ask.client_id)) {
		refuse(g, fd, -EBUSY, "client id %llu is held by another live connection",
		       (unsigned long long)ask.client_id);
		return;
	}
	if (ask.client_id) {
		c->client_id = ask.client_id;
	} else {
		g->nconnects++;
		c->client_id = mix64(g->generation + g->nconnects * UINT64_C(0x9e3779b97f4a7c15)) |
			       CQRS_GW_ASSIGNED_BIT;
	}
	mfd = conn_create(g, c);
	if (mfd < 0) {
		conn_free(g, c);
		refuse(g, fd, mfd, "the engine could not set up a connection: %s", cqrs_strerror(mfd));
		return;
	}
	h = g->layout;
	h.status = 0;
	h.client_id = c->client_id;
	rc = send_hello(fd, &h, mfd, g->info_fd);
	close(mfd); /* our mapping keeps the memory; the client has its descriptor */
	if (rc) {
		conn_free(g, c);
		close(fd);
		return;
	}
	c->fd = fd;
	atomic_store_explicit(&c->hup, 0, memory_order_relaxed); /* published by READY */
	{
		gw_uid_count *u = uid_slot(g, c->uid, 1);
		if (u)
			u->n++;
	}
	g->nclients++;
	watch(g, c);
	CTR_ADD(g->e->ctr, gw_connects, 1);
	CTR_SET(g->e->ctr, gw_clients, g->nclients);
	/* release: the slot's fields before READY; pairs with the command
	 * thread's acquire load in its scan. */
	atomic_store_explicit(&c->st, GS_READY, memory_order_release);
	/* seq_cst RMW: the command thread's re-check reads it (futex protocol). */
	atomic_fetch_add_explicit(&g->changes, 1, memory_order_seq_cst);
	ring_bell(g);
}

/* Returns the poll timeout to use next (ms). */
static int accept_some(gateway *g)
{
	for (int k = 0; k < ACCEPTS_PER_TURN; k++) {
		int fd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			on_connect(g, fd);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -1;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* The backlog stays readable: pause instead of spinning. */
			if (log_now(&g->refused_logged))
				cqrs__log(g->e, CQRS_LOG_WARN, "gateway: accept: %s", strerror(errno));
			return EMFILE_PAUSE_MS;
		}
		/* ECONNABORTED, EINTR, a peer's error: next one. */
	}
	return 0;
}

static void *gateway_main(void *arg)
{
	gateway *g = arg;
	int timeout = -1, retry_accept = 0;

	for (;;) {
		int n = poll(g->pfd, g->npfd, timeout);
		uint32_t i;

		/* acquire: pairs with cqrs__gw_accept_stop's release store. */
		if (atomic_load_explicit(&g->stop, memory_order_acquire))
			break;
		if (n < 0)
			continue; /* EINTR */
		/* Sockets first, from the end: unwatch moves the last entry into
		 * the hole, and that one was looked at already. */
		for (i = g->npfd; i-- > 2;)
			if (g->pfd[i].revents)
				on_socket(g, &g->conns[g->pfd_conn[i]], g->pfd[i].revents);
		if (g->pfd[1].revents & POLLIN) {
			uint64_t v;
			ssize_t r = read(g->evfd, &v, sizeof v);
			(void)r;
			reap_done(g);
		}
		timeout = -1;
		if ((g->pfd[0].revents & POLLIN) || retry_accept) {
			/* -1: drained; 0: more wait (next turn at once); > 0: paused
			 * for that many ms (out of descriptors) */
			timeout = accept_some(g);
			retry_accept = timeout >= 0;
			g->pfd[0].events = timeout > 0 ? 0 : POLLIN;
		}
	}
	return NULL;
}

/* ---- start / stop ---------------------------------------------------------- */

static int info_create(gateway *g)
{
	int fd = memfd_create("cqrs-gw-info", MFD_CLOEXEC | MFD_ALLOW_SEALING), rc;
	void *m;

	if (fd < 0)
		return cqrs__fail(-errno, "gateway: memfd_create: %s", strerror(errno));
	if (ftruncate(fd, CQRS_GW_INFO_SIZE) < 0)
		goto fail;
	m = mmap(NULL, CQRS_GW_INFO_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (m == MAP_FAILED)
		goto fail;
	memset(m, 0, CQRS_GW_INFO_SIZE);
	g->info = m;
	g->info->magic = CQRS_GW_INFO_MAGIC;
	g->info->version = CQRS_GW_VERSION;
	g->info->size = CQRS_GW_INFO_SIZE;
	g->info->generation = g->generation;
	/* relaxed: clients get the page only in a hello, after this. */
	atomic_store_explicit(&g->info->state, CQRS_GW_RUNNING, memory_order_relaxed);
	/* Our mapping stays writable; nobody can map it writable again. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0)
		goto fail;
	g->info_fd = fd;
	return 0;
fail:
	rc = -errno;
	if (g->info)
		munmap(g->info, CQRS_GW_INFO_SIZE);
	g->info = NULL;
	close(fd);
	return cqrs__fail(rc, "gateway: engine page: %s", strerror(-rc));
}

/* A generation nobody can guess (it names the socket). */
static uint64_t new_generation(const gateway *g)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
		v = mix64((uint64_t)cqrs__wall_ns() ^ (uint64_t)getpid() << 40 ^ (uint64_t)(uintptr_t)g);
	return v | 1;
}

/* Binds the abstract socket "cqrs.<engine>.<generation>"; a name taken
 * (someone squatting it) gets another generation. */
static int listen_create(gateway *g)
{
	int fd, rc = 0;

	for (int tries = 0; tries < 8; tries++) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		size_t n;

		g->generation = new_generation(g);
		rc = cqrs__gw_sock_name(g->sock_name, sizeof g->sock_name, g->e->name, g->generation);
		if (rc)
			return rc;
		n = strlen(g->sock_name);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return cqrs__fail(-errno, "gateway: socket: %s", strerror(errno));
		memcpy(a.sun_path + 1, g->sock_name, n); /* abstract: leading NUL */
		if (bind(fd, (struct sockaddr *)&a,
			 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) == 0 &&
		    listen(fd, 128) == 0) {
			g->lfd = fd;
			g->layout.generation = g->generation;
			return 0;
		}
		rc = -errno;
		close(fd);
		if (rc != -EADDRINUSE)
			break;
	}
	return cqrs__fail(rc, "gateway: listen on @%s: %s", g->sock_name, strerror(-rc));
}

void cqrs__gw_notify(gateway *g)
{
	uint64_t one = 1;
	ssize_t r = write(g->evfd, &one, sizeof one);

	(void)r; /* the counter cannot overflow at one write per batch */
}

int cqrs__gw_accept_start(gateway *g)
{
	int rc;

	g->pfd = calloc(g->max_clients + 2, sizeof *g->pfd);
	g->pfd_conn = calloc(g->max_clients + 2, sizeof *g->pfd_conn);
	g->uid_counts = calloc(g->max_clients, sizeof *g->uid_counts);
	if (!g->pfd || !g->pfd_conn || !g->uid_counts) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = listen_create(g); /* sets the generation */
	if (!rc)
		rc = info_create(g);
	if (rc)
		goto fail;
	g->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->evfd < 0) {
		rc = cqrs__fail(-errno, "gateway: eventfd: %s", strerror(errno));
		goto fail;
	}
	g->pfd[0] = (struct pollfd){ .fd = g->lfd, .events = POLLIN };
	g->pfd[1] = (struct pollfd){ .fd = g->evfd, .events = POLLIN };
	g->npfd = 2;
	rc = -pthread_create(&g->thread, NULL, gateway_main, g);
	if (rc) {
		cqrs__fail(rc, "gateway: thread: %s", strerror(-rc));
		goto fail;
	}
	g->thread_started = 1;
	pthread_setname_np(g->thread, "cqrs-gateway");
	return 0;
fail:
	cqrs__gw_accept_stop(g);
	return rc;
}

void cqrs__gw_accept_stop(gateway *g)
{
	if (g->thread_started) {
		/* release: pairs with the thread's acquire load after poll. */
		atomic_store_explicit(&g->stop, 1, memory_order_release);
		cqrs__gw_notify(g);
		pthread_join(g->thread, NULL);
		g->thread_started = 0;
	}
	/* The command thread has ended too: every slot is ours. */
	if (g->conns)
		for (uint32_t i = 0; i < g->max_clients; i++)
			if (g->conns[i].mem || g->conns[i].fd >= 0)
				conn_free(g, &g->conns[i]);
	if (g->lfd >= 0)
		close(g->lfd);
	if (g->evfd >= 0)
		close(g->evfd);
	if (g->info)
		munmap(g->info, CQRS_GW_INFO_SIZE);
	if (g->info_fd >= 0)
		close(g->info_fd);
	g->lfd = g->evfd = g->info_fd = -1;
	g->info = NULL;
	free(g->pfd);
	free(g->pfd_conn);
	free(g->uid_counts);
	g->pfd = NULL;
	g->pfd_conn = NULL;
	g->uid_counts = NULL;
}
