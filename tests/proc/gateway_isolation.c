/*
 * tests/proc/gateway_isolation.c - isolation between the users of one
 * engine, against a running `cqrs-orders serve` (run as root: the hostile
 * children switch to other uids with setuid; exits 77 otherwise). Each
 * hostile child has exactly a client's or a reader's legitimate access: a
 * uid of its own in the engine's group.
 *
 *   forge     a client of another uid tries to reach the engine's and a
 *             victim client's memory and descriptors (/proc/PID/fd,
 *             map_files, mem, pidfd_getfd, every shm segment opened for
 *             writing) and finds nothing; it writes "accepted, seq 4242"
 *             answers into its own reply ring all along, while the victim's
 *             rejected CreateOrders all come back rejected.
 *   refused   a peer whose uid and groups the engine does not allow is
 *             refused at the socket (hello status -EACCES, counter
 *             gw_refused, a log line).
 *   exhaust   with 3 connections per uid, a hostile uid holds 3 and its
 *             4th is refused (CQRS_EFULL, gw_limited); a second uid and the
 *             engine's own still connect and are served.
 *   reader    a reader of another uid tries to write, truncate, grow or
 *             punch every segment it can open; all refused, and the view
 *             waits of another reader still return.
 */
#include "tests/proc/gateway_proc.h"

#include <dirent.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "client/client_internal.h"
#include "cqrs_view.h"

#define HOSTILE_UID 12345
#define OTHER_UID 12346
#define STRANGER_UID 12347

static char sock_name[CQRS_GW_SOCK_NAME];

/* In a forked child: become uid (group gid, no supplementary groups). */
static void become(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
		_exit(120);
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* cleared by the credential change */
	if (getppid() != gp_main_pid)
		_exit(126);
}

static pid_t spawn(void (*fn)(void *), void *arg)
{
	pid_t kid = fork();

	CHECK(kid >= 0, "fork");
	if (kid == 0) {
		gp_child_guard();
		fn(arg);
		_exit(0);
	}
	gp_track(kid);
	return kid;
}

static int reap(pid_t kid)
{
	int st;

	CHECK(waitpid(kid, &st, 0) == kid, "waitpid");
	gp_untrack(kid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Every shm segment of the engine, opened for writing, must be refused;
 * read-only ones must refuse truncation and writable mappings. Returns the
 * number of segments seen, or -1 on a breach. */
static int shm_all_refused(void)
{
	char prefix[128], path[512];
	struct dirent *de;
	DIR *d = opendir("/dev/shm");
	int seen = 0, bad = 0;

	if (!d)
		return -1;
	snprintf(prefix, sizeof prefix, "cqrs.%s.", gp_name);
	while ((de = readdir(d))) {
		int fd;
		void *m;

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		seen++;
		/* no client-writable gateway segment, no reader-writable board */
		if (!strcmp(de->d_name + strlen(prefix), "gw") ||
		    !strcmp(de->d_name + strlen(prefix), "wait")) {
			fprintf(stderr, "%s exists\n", de->d_name);
			bad++;
		}
		snprintf(path, sizeof path, "/dev/shm/%s", de->d_name);
		fd = open(path, O_RDWR);
		if (fd >= 0) {
			fprintf(stderr, "%s opened for writing\n", path);
			bad++;
			close(fd);
		}
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		if (ftruncate(fd, 0) == 0 || ftruncate(fd, 1 << 30) == 0 ||
		    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0) {
			fprintf(stderr, "%s resized through a read-only descriptor\n", path);
			bad++;
		}
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			fprintf(stderr, "%s mapped writable\n", path);
			bad++;
			munmap(m, 4096);
		}
		close(fd);
	}
	closedir(d);
	return bad ? -1 : seen;
}

/* Every descriptor of pid out of reach. Returns 0, or -1 on a breach. */
static int fds_unreachable(pid_t pid)
{
	char path[128];
	int bad = 0, pfd;

	for (int fd = 0; fd < 64; fd++) {
		int x;
		snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
		x = open(path, O_RDWR);
		if (x < 0)
			x = open(path, O_RDONLY);
		if (x >= 0) {
			fprintf(stderr, "opened %s\n", path);
			bad++;
			close(x);
		}
	}
	snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
	if ((pfd = open(path, O_RDWR)) >= 0) {
		fprintf(stderr, "opened %s\n", path);
		bad++;
		close(pfd);
	}
	snprintf(path, sizeof path, "/proc/%d/map_files", (int)pid);
	{
		DIR *d = opendir(path);
		if (d) {
			struct dirent *de;
			while ((de = readdir(d))) {
				char p2[512];
				int x;
				if (de->d_name[0] == '.')
					continue;
				snprintf(p2, sizeof p2, "%s/%s", path, de->d_name);
				if ((x = open(p2, O_RDONLY)) >= 0) {
					fprintf(stderr, "opened %s\n", p2);
					bad++;
					close(x);
				}
			}
			closedir(d);
		}
	}
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		for (int fd = 0; fd < 64; fd++) {
			int x = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
			if (x >= 0) {
				fprintf(stderr, "pidfd_getfd(%d, %d) worked\n", (int)pid, fd);
				bad++;
				close(x);
			}
		}
		close(pfd);
	}
#endif
	return bad ? -1 : 0;
}

/* ---- forge --------------------------------------------------------------------- */

static void forger(void *arg)
{
	pid_t victim = *(pid_t *)arg;
	cqrs__client_parts pp;
	cqrs_client *c;
	int segs;

	become(HOSTILE_UID, 0);
	if (cqrs_client_connect(gp_name, &c) || cqrs__client_parts_get(c, &pp))
		_exit(3);
	if (fds_unreachable(victim) || fds_unreachable(gp_engine))
		_exit(4);
	segs = shm_all_refused();
	if (segs < 0)
		_exit(5);
	/* No forged answer can go anywhere but into our own reply ring: write
	 * "accepted, seq 4242" there, for every request id, for 2 s. */
	for (uint64_t t0 = (uint64_t)time(NULL), k = 0; (uint64_t)time(NULL) < t0 + 2; k++) {
		cqrs_gw_entry *en = cqrs__gw_entry(pp.reply, pp.hello->reply_entries, k);
		en->request_id = k % 64 + 1;
		en->seq = 4242;
		en->status = 0;
		/* relaxed: garbage on purpose (our own ring) */
		atomic_store_explicit(&pp.reply->tail, k + 1, memory_order_relaxed);
		atomic_store_explicit(&pp.reply->head, k, memory_order_relaxed);
		cqrs__client_ring(c);
		if (k % 256 == 0)
			usleep(1000);
	}
	_exit(0);
}

static void forge(void)
{
	pid_t me = getpid(), kid;
	cqrs_client *c = gp_connect();
	cqrs_result r;
	int rejected = 0;

	kid = spawn(forger, &me);
	for (uint64_t i = 0; i < 400; i++) {
		int rc = gp_create_order(c, 900000 + i, 999, 10, &r);
		CHECK(rc == CQRS_EREJECTED && r.seq != 4242 && strstr(r.reason, "unknown"),
		      "victim's rejected order %llu came back %s seq %llu '%s'", (unsigned long long)i,
		      cqrs_strerror(rc), (unsigned long long)r.seq, r.reason);
		rejected++;
		if (i % 50 == 0)
			usleep(5000);
	}
	CHECK(reap(kid) == 0, "forger failed (see above)");
	CHECK(gp_register(c, 999, "v", &r) == 0, "victim after: %s", r.reason);
	cqrs_client_close(c);
	printf("forge: nothing of the engine's or the victim's reachable from another uid; %d "
	       "rejections came back rejected: ok\n", rejected);
}

/* ---- refused -------------------------------------------------------------------- */

static void stranger(void *arg)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	cqrs_client *c = NULL;
	cqrs_gw_hello h;
	int fd;

	(void)arg;
	become(STRANGER_UID, STRANGER_UID);
	/* the library cannot even read the control segment */
	if (cqrs_client_connect(gp_name, &c) != -EACCES)
		_exit(3);
	/* and the socket, found by other means, refuses by credentials */
	memcpy(a.sun_path + 1, sock_name, strlen(sock_name));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sock_name))))
		_exit(4);
	if (recv(fd, &h, sizeof h, MSG_WAITALL) != (ssize_t)sizeof h || h.magic != CQRS_GW_HELLO_MAGIC)
		_exit(5);
	if (h.status != -EACCES || !strstr(h.reason, "not allowed"))
		_exit(6);
	_exit(0);
}

static void refused(void)
{
	cqrs_counters before, after;

	gp_counters(&before);
	CHECK(reap(spawn(stranger, NULL)) == 0, "stranger was not refused as expected");
	gp_counters(&after);
	CHECK(after.gw_refused == before.gw_refused + 1, "gw_refused %llu -> %llu",
	      (unsigned long long)before.gw_refused, (unsigned long long)after.gw_refused);
	CHECK(gp_log_has("gateway: connection refused"), "no log line for the refusal");
	printf("refused: a peer of another uid and group refused at the socket, counted and "
	       "logged: ok\n");
}

/* ---- exhaust -------------------------------------------------------------------- */

static void hoarder(void *arg)
{
	int *pipefd = arg;
	cqrs_client *c[8];
	int n = 0, rc = 0;
	char b;

	become(HOSTILE_UID, 0);
	while (n < 8 && (rc = cqrs_client_connect(gp_name, &c[n])) == 0)
		n++;
	if (n != 3 || rc != CQRS_EFULL || !strstr(cqrs_last_error(), "limit per uid"))
		_exit(3);
	if (write(pipefd[1], "k", 1) != 1) /* holding them */
		_exit(4);
	if (read(pipefd[0], &b, 1) != 1) /* until told */
		_exit(5);
	_exit(0);
}

static void other_user(void *arg)
{
	cqrs_client *c;
	cqrs_result r;

	(void)arg;
	become(OTHER_UID, 0);
	if (cqrs_client_connect(gp_name, &c))
		_exit(3);
	if (gp_register(c, 950001, "o", &r) != 0)
		_exit(4);
	cqrs_client_close(c);
	_exit(0);
}

static void exhaust(void)
{
	int to_parent[2], to_kid[2], fds[4];
	cqrs_counters ctr;
	cqrs_client *c;
	cqrs_result r;
	pid_t kid;
	char b;

	gp_engine_stop(SIGTERM);
	gp_per_uid = 3;
	gp_engine_start(8);
	CHECK(pipe(to_parent) == 0 && pipe(to_kid) == 0, "pipe");
	fds[0] = to_kid[0];
	fds[1] = to_parent[1];
	kid = fork();
	CHECK(kid >= 0, "fork");
	if (kid == 0) {
		gp_child_guard();
		hoarder(fds);
	}
	gp_track(kid);
	CHECK(read(to_parent[0], &b, 1) == 1, "hoarder died (status %d)", reap(kid));
	CHECK(reap(spawn(other_user, NULL)) == 0, "a second uid could not connect and submit");
	c = gp_connect();
	CHECK(gp_register(c, 950002, "e", &r) == 0, "engine's uid: %s", r.reason);
	cqrs_client_close(c);
	gp_counters(&ctr);
	CHECK(ctr.gw_limited >= 1, "gw_limited %llu", (unsigned long long)ctr.gw_limited);
	CHECK(write(to_kid[1], "k", 1) == 1, "pipe");
	CHECK(reap(kid) == 0, "hoarder");
	for (int i = 0; i < 2; i++) {
		close(to_parent[i]);
		close(to_kid[i]);
	}
	printf("exhaust: one uid held its 3 connections and was refused a 4th; another uid and the "
	       "engine's own still served (%llu refusals for limits): ok\n",
	       (unsigned long long)ctr.gw_limited);
}

/* ---- reader --------------------------------------------------------------------- */

static void vandal(void *arg)
{
	cqrs_view *v;

	(void)arg;
	become(HOSTILE_UID, 0);
	if (cqrs_view_open(gp_name, "order_summaries", &v)) /* a legitimate reader */
		_exit(3);
	for (int i = 0; i < 20; i++)
		if (shm_all_refused() <= 0)
			_exit(4);
	cqrs_view_close(v);
	_exit(0);
}

static void reader(void)
{
	cqrs_client *c = gp_connect();
	cqrs_view *v;
	cqrs_result r;
	pid_t kid;

	CHECK(cqrs_view_open(gp_name, "order_summaries", &v) == 0, "view: %s", cqrs_last_error());
	CHECK(gp_register(c, 960000, "r", &r) == 0, "register: %s", r.reason);
	kid = spawn(vandal, NULL);
	for (uint64_t i = 0; i < 100; i++) {
		order_summary row;
		CHECK(gp_create_order(c, 960000 + i, 960000, 1, &r) == 0, "order: %s", r.reason);
		CHECK(cqrs_view_wait(v, r.seq, 30 * SEC) == 0, "view wait %llu",
		      (unsigned long long)r.seq);
		CHECK(cqrs_view_get(v, &(uint64_t){ 960000 + i }, 8, &row, sizeof row) == 0, "row");
	}
	CHECK(reap(kid) == 0, "a reader of another uid could write or resize a segment");
	cqrs_view_close(v);
	cqrs_client_close(c);
	printf("reader: every segment refused writing and resizing to another uid; view waits of "
	       "another reader returned: ok\n");
}

int main(void)
{
	cqrs_ctl *ctl;
	uint64_t size;
	const cqrs_gw_dir *d;

	if (geteuid() != 0) {
		printf("gateway_isolation: skipped (needs root to switch uids)\n");
		return 77;
	}
	gp_init("gwi");
	gp_engine_start(0);
	CHECK(cqrs__ctl_open(gp_name, &ctl) == 0, "control");
	d = cqrs__ctl_region(ctl, CQRS_CTL_GATEWAY, &size);
	snprintf(sock_name, sizeof sock_name, "%s", d->sock_name);
	cqrs__ctl_close(ctl);
	forge();
	refused();
	reader();
	exhaust();
	gp_engine_stop(SIGTERM);
	printf("gateway_isolation: ok\n");
	return 0;
}
