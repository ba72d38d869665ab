/*
 * tests/proc/proc_ring_mpsc.c - N producer processes (fork) into one MPSC
 * ring in POSIX shared memory, the parent consuming; plus one producer
 * process that claims and dies without committing. Each child opens the
 * segment by name and maps it at its own address (position independence).
 * Checks no loss, no duplicate, per-producer order, payload bytes, and that
 * the dead producer's claim was skipped after the claim timeout; prints
 * the counts.
 *
 *   proc_ring_mpsc [producers=3] [messages per producer=200000] [capacity=16384]
 *
 * Under CQRS_SAN the default message count drops tenfold. The segment is
 * unlinked as soon as every child has mapped it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cqrs_ring.h"
#include "tests/lib/testutil.h"

#define CLAIM_TIMEOUT_NS UINT64_C(500000000) /* 0.5 s */

static char shm_name[128];
static uint64_t nmsg;
static unsigned nprod;

static uint32_t msg_len(uint64_t seq)
{
	return (uint32_t)(16 + (seq % 11) * 8 + seq % 3);
}

static unsigned char pattern(unsigned id, uint64_t seq, uint32_t i)
{
	return (unsigned char)(seq * 17 + id * 5 + i);
}

/* Maps the segment by name, at an address of the kernel's choosing. */
static void *map_by_name(size_t size)
{
	int fd = shm_open(shm_name, O_RDWR, 0);
	void *p;

	if (fd < 0)
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/* Child: exit 0 when every message was committed. mode 1: claim, then die. */
static int child(unsigned id, size_t size, int ready_fd, int mode)
{
	void *mem = map_by_name(size);
	cqrs_mpsc *r;
	cqrs_mpsc_producer *p;
	uint64_t seq, resent = 0;
	char one = 1;
	int rc;

	if (write(ready_fd, &one, 1) != 1 || !mem)
		return 10;
	close(ready_fd);
	rc = cqrs_mpsc_attach(mem, size, &r);
	if (rc == 0)
		rc = cqrs_mpsc_producer_open(r, &p);
	if (rc) {
		fprintf(stderr, "child %u: %s\n", id, cqrs_strerror(rc));
		return 11;
	}
	if (mode == 1) {
		void *d;
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL); /* let the others get going */
		rc = cqrs_mpsc_claim(p, 99, 64, CQRS_WAIT_YIELD, CQRS_RING_FOREVER, &d);
		_exit(rc ? 12 : 0); /* dies with the claim in flight */
	}
	for (seq = 0; seq < nmsg; seq++) {
		uint32_t len = msg_len(seq), i;
		unsigned char *d;

		rc = cqrs_mpsc_claim(p, id + 1, len, CQRS_WAIT_YIELD, CQRS_RING_FOREVER, (void **)&d);
		if (rc) {
			fprintf(stderr, "child %u: claim: %s\n", id, cqrs_strerror(rc));
			return 13;
		}
		memcpy(d, &seq, 8);
		memcpy(d + 8, &id, 4);
		memcpy(d + 12, &len, 4);
		for (i = 16; i < len; i++)
			d[i] = pattern(id, seq, i);
		rc = cqrs_mpsc_commit(p, len);
		if (rc == CQRS_ESTALE) { /* stalled past the timeout: send it again */
			seq--;
			resent++;
			continue;
		}
		if (rc) {
			fprintf(stderr, "child %u: commit: %s\n", id, cqrs_strerror(rc));
			return 14;
		}
	}
	if (resent)
		fprintf(stderr, "child %u: %llu messages sent again after a timeout\n", id,
			(unsigned long long)resent);
	cqrs_mpsc_producer_close(p);
	cqrs_mpsc_close(r);
	munmap(mem, size);
	return 0;
}

struct check {
	uint64_t *next;
	uint64_t received, dup, lost, bad;
};

static int on_record(void *arg, uint32_t type, const void *data, uint32_t len)
{
	struct check *c = arg;
	const unsigned char *d = data;
	uint64_t seq;
	uint32_t id, l, i;

	c->received++;
	if (len < 16 || type == 0 || type > nprod) {
		c->bad++;
		return 0;
	}
	memcpy(&seq, d, 8);
	memcpy(&id, d + 8, 4);
	memcpy(&l, d + 12, 4);
	if (id != type - 1 || l != len || len != msg_len(seq)) {
		c->bad++;
		return 0;
	}
	for (i = 16; i < len; i++)
		if (d[i] != pattern(id, seq, i)) {
			c->bad++;
			return 0;
		}
	if (seq < c->next[id])
		c->dup++;
	else if (seq > c->next[id])
		c->lost += seq - c->next[id];
	if (seq >= c->next[id])
		c->next[id] = seq + 1;
	return 0;
}

static uint64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

int main(int argc, char **argv)
{
	uint64_t cap, total, last = 0, since;
	struct check c = { 0 };
	cqrs_mpsc_stats st;
	cqrs_mpsc *r;
	pid_t *pids;
	size_t size;
	void *mem;
	unsigned i, nchild;
	int fd, pfd[2], rc, bad = 0;

	nprod = argc > 1 ? (unsigned)atoi(argv[1]) : 3;
	nmsg = argc > 2 ? strtoull(argv[2], NULL, 10) : (getenv("CQRS_SAN") ? 20000 : 200000);
	cap = argc > 3 ? strtoull(argv[3], NULL, 10) : 16384;
	if (nprod == 0 || nprod > 64 || nmsg == 0) {
		fprintf(stderr, "usage: %s [producers 1..64] [messages per producer] [capacity]\n", argv[0]);
		return 2;
	}
	nchild = nprod + 1;
	size = cqrs_mpsc_footprint(cap, nchild);
	if (size == 0) {
		fprintf(stderr, "bad capacity %llu\n", (unsigned long long)cap);
		return 2;
	}
	snprintf(shm_name, sizeof shm_name, "/");
	tu_unique_name(shm_name + 1, sizeof shm_name - 1, "cqrs_ringtest");
	fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0) {
		printf("shm_open %s: %s\n", shm_name, strerror(errno));
		return 77;
	}
	if (ftruncate(fd, (off_t)size) != 0) {
		perror("ftruncate");
		shm_unlink(shm_name);
		return 1;
	}
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (mem == MAP_FAILED || cqrs_mpsc_init(mem, size, cap, nchild, CLAIM_TIMEOUT_NS, &r) != 0) {
		fprintf(stderr, "map/init failed\n");
		shm_unlink(shm_name);
		return 1;
	}
	if (pipe(pfd) != 0) {
		shm_unlink(shm_name);
		return 1;
	}
	pids = calloc(nchild, sizeof *pids);
	for (i = 0; i < nchild; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(pfd[0]);
			munmap(mem, size); /* use only our own mapping */
			_exit(child(i, size, pfd[1], i == nprod));
		}
		if (pids[i] < 0) {
			perror("fork");
			bad = 1;
			nchild = i;
			break;
		}
	}
	close(pfd[1]);
	/* Every child has mapped the segment (or failed): unlink it now, so
	 * nothing is left behind whatever happens next. */
	for (i = 0; i < nchild; i++) {
		char b;
		if (read(pfd[0], &b, 1) != 1)
			break;
	}
	close(pfd[0]);
	shm_unlink(shm_name);

	c.next = calloc(nprod, sizeof *c.next);
	total = nprod * nmsg;
	since = mono_s();
	while (!bad) {
		rc = cqrs_mpsc_poll(r, on_record, &c, 512);
		if (rc < 0) {
			fprintf(stderr, "poll: %s\n", cqrs_strerror(rc));
			bad = 1;
			break;
		}
		cqrs_mpsc_stats_get(r, &st);
		if (c.received >= total && st.timeouts >= 1)
			break;
		if (rc == 0)
			cqrs_mpsc_wait(r, CQRS_WAIT_BLOCK, 100000000);
		if (c.received != last) {
			last = c.received;
			since = mono_s();
		} else if (mono_s() - since > 60) {
			fprintf(stderr, "no progress for 60 s at %llu/%llu (timeouts %llu)\n",
				(unsigned long long)c.received, (unsigned long long)total,
				(unsigned long long)st.timeouts);
			bad = 1;
		}
	}
	for (i = 0; i < nchild; i++) {
		int status;
		if (bad)
			kill(pids[i], SIGKILL);
		if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "child %u (pid %d) failed (status 0x%x)\n", i, (int)pids[i], status);
			bad = 1;
		}
	}
	for (i = 0; i < nprod; i++)
		if (c.next[i] != nmsg)
			c.lost += nmsg - c.next[i];
	cqrs_mpsc_stats_get(r, &st);
	printf("mpsc across processes: %u producer processes x %llu msgs (+1 that died mid-claim), capacity %llu: "
	       "received %llu of %llu, lost %llu, dup %llu, bad %llu, timeouts %llu, corrupt %llu\n",
	       nprod, (unsigned long long)nmsg, (unsigned long long)cap, (unsigned long long)c.received,
	       (unsigned long long)total, (unsigned long long)c.lost, (unsigned long long)c.dup,
	       (unsigned long long)c.bad, (unsigned long long)st.timeouts, (unsigned long long)st.corrupt);
	/* A live producer stalled past the timeout may add timeouts (and resend). */
	bad |= c.received != total || c.lost || c.dup || c.bad || st.timeouts < 1 || st.corrupt;
	cqrs_mpsc_close(r);
	munmap(mem, size);
	free(pids);
	free(c.next);
	printf("%s\n", bad ? "FAIL" : "ok");
	return bad;
}
