/*
 * tests/proc/test_journal_crash.c - process-level crash test of the journal.
 *
 * Each cycle forks a child that opens the journal (small segments, so it
 * rolls often) and appends command groups forever, reporting every
 * durable seq through a pipe; the parent SIGKILLs it at a random moment
 * (sometimes during its own recovery or a roll), then checks the
 * directory: the recovered events are the gapless prefix 1..R with the
 * submitted contents, and R >= every acknowledged seq. The next child
 * recovers and goes on. The durability mode turns with each cycle
 * (batch, none, interval: the same directory): after a process crash
 * recovery must never take batches in flight, landed out of order, for
 * corruption in any mode, nor lose what was acknowledged. Bounded to
 * ~20 s; CQRS_SAN shortens it.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "tests/unit/test_journal_util.h"

static int g_ackfd = -1;

static void child_on_durable(void *arg, uint64_t first, uint64_t last, const void *records,
			     size_t bytes)
{
	(void)arg;
	(void)first;
	(void)records;
	(void)bytes;
	if (write(g_ackfd, &last, sizeof last) != (ssize_t)sizeof last)
		_exit(4);
}

static const enum cqrs_durability_mode g_modes[3] = { CQRS_DURABILITY_BATCH, CQRS_DURABILITY_NONE,
					     CQRS_DURABILITY_INTERVAL };

static void child(const char *dir, int fd, enum cqrs_durability_mode mode)
{
	cqrs_journal_config c;
	cqrs_journal *j;

	g_ackfd = fd;
	jt_config(&c, dir, mode);
	c.segment_size = 64u << 10;
	c.batch_bytes = 8192;
	c.on_durable = child_on_durable;
	if (cqrs__journal_open(&j, &c, NULL) != 0) {
		fprintf(stderr, "child: open: %s\n", cqrs_last_error());
		_exit(3);
	}
	for (;;) {
		int rc = jt_append(j, 1 + (int)(cqrs__journal_next_seq(j) % 5), 3, 1, NULL);
		if (rc) {
			fprintf(stderr, "child: append: %s\n", cqrs_strerror(rc));
			_exit(5);
		}
	}
}

int main(void)
{
	char dir[256];
	uint64_t acked = 0;
	int cycles = getenv("CQRS_SAN") ? 10 : 150, torn = 0, done;
	time_t deadline = time(NULL) + 20;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	if (tu_mkdtemp(dir, sizeof dir, "cqrs_jcrash") != 0) {
		perror("mkdtemp");
		return 1;
	}
	printf("seed %u\n", seed);
	srand(seed);
	for (done = 0; done < cycles && time(NULL) < deadline; done++) {
		int p[2], status;
		uint64_t seq;
		int64_t got;
		pid_t pid;

		if (pipe(p) != 0)
			return 1;
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			child(dir, p[1], g_modes[done % 3]);
		}
		close(p[1]);
		usleep((useconds_t)(rand() % 50000));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status)) {
			fprintf(stderr, "cycle %d: child exited with %d\n", done, WEXITSTATUS(status));
			return 1;
		}
		while (read(p[0], &seq, sizeof seq) == (ssize_t)sizeof seq)
			if (seq > acked)
				acked = seq;
		close(p[0]);
		/* Reopen (recovery), then read everything back. */
		{
			cqrs_journal_config c;
			cqrs_journal_recovery rec;
			cqrs_journal *j;
			jt_config(&c, dir, g_modes[done % 3]);
			c.segment_size = 64u << 10;
			if (cqrs__journal_open(&j, &c, &rec) != 0) {
				fprintf(stderr, "cycle %d: reopen: %s\n", done, cqrs_last_error());
				return 1;
			}
			torn += rec.torn_bytes > 0;
			cqrs__journal_close(j);
		}
		got = jt_read_all(dir, NULL);
		if (got < 0 || (uint64_t)got < acked) {
			fprintf(stderr, "cycle %d: recovered %lld, acknowledged %llu (%s)\n", done,
				(long long)got, (unsigned long long)acked, cqrs_last_error());
			return 1;
		}
	}
	/* A final recovery by the parent: it must keep every acknowledged event. */
	{
		cqrs_journal_config c;
		cqrs_journal_recovery rec;
		cqrs_journal *j;
		jt_config(&c, dir, CQRS_DURABILITY_BATCH);
		c.segment_size = 64u << 10;
		if (cqrs__journal_open(&j, &c, &rec) != 0 || rec.next_seq - 1 < acked) {
			fprintf(stderr, "final open: %s\n", cqrs_last_error());
			return 1;
		}
		cqrs__journal_close(j);
		if (jt_read_all(dir, NULL) != (int64_t)rec.next_seq - 1)
			return 1;
		printf("%d cycles, %llu events acknowledged, %llu recovered, %d torn tails cut\n",
		       done, (unsigned long long)acked, (unsigned long long)rec.next_seq - 1, torn);
	}
	tu_rmrf(dir);
	return 0;
}
