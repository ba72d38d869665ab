/*
 * tests/proc/view_wait.c - cqrs_view_wait wakes readers in other processes.
 *
 * Two reader processes wait for applied_seq >= 5 with a long timeout. The
 * parent (the engine) waits until both sleep in futex_wait (their
 * /proc/PID/syscall names it: no timing guess), then publishes a batch with
 * applied_seq 5; both must return 0 and see the batch's row. Then one
 * reader waits for a sequence that never comes with a short timeout and
 * must get -ETIMEDOUT. Last, an engine in a child process stops cleanly
 * (control segment retired and removed, the view left clean) and exits
 * while the parent waits: the wait must say CQRS_EWRITERDEAD, not spin on
 * the vanished directory until its timeout. No timing assertions but that
 * the last wait returns before its (generous) timeout.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "cqrs.h"
#include "tests/lib/testutil.h"
#include "tests/unit/test_view_rows.h"

static char engine[64];

/* 1 once pid sleeps in the futex syscall (x86-64 202, aarch64 98). */
static int in_futex(pid_t pid)
{
	char path[64], buf[64];
	FILE *f;
	long nr = -1;

	snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof buf, f))
		nr = strtol(buf, NULL, 10);
	fclose(f);
#if defined(__x86_64__)
	return nr == 202;
#elif defined(__aarch64__)
	return nr == 98;
#else
	return nr >= 0;
#endif
}

static int waiter(uint64_t seq, uint64_t timeout_ns, int expect)
{
	cqrs_view *v;
	uint64_t id = 77;
	trow r;
	int rc;

	if (cqrs_view_open(engine, "orders", &v))
		return 10;
	rc = cqrs_view_wait(v, seq, timeout_ns);
	if (rc != expect) {
		fprintf(stderr, "wait(%llu): %s, expected %s\n", (unsigned long long)seq,
			cqrs_strerror(rc), cqrs_strerror(expect));
		return 11;
	}
	if (expect == 0 && (cqrs_view_applied_seq(v) < seq ||
			    cqrs_view_get(v, &id, sizeof id, &r, sizeof r) != 0 || !trow_ok(&r)))
		return 12; /* read-your-writes: the batch is visible after the wait */
	cqrs_view_close(v);
	return 0;
}

/* The engine stops while the parent waits for a seq that never comes. */
static int engine_goes_away(void)
{
	char name[64];
	int up[2], go[2], status;
	cqrs_view *v;
	pid_t pid;
	uint64_t t0;
	char c = 0;
	int rc, fail = 0;

	tu_unique_name(name, sizeof name, "pwgone");
	if (pipe(up) || pipe(go))
		return 1;
	pid = fork();
	if (pid == 0) {
		cqrs_ctl *ctl;
		cqrs_vw *w;
		trow r;

		if (tview_setup(name, 64, &ctl, &w))
			_exit(20);
		cqrs__vw_begin(w);
		trow_fill(&r, 77, 1, 1);
		cqrs__vw_upsert(w, &r);
		cqrs__vw_end(w, 1);
		if (write(up[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(21);
		cqrs__vw_close(w); /* a clean stop keeps the view */
		cqrs__ctl_destroy(ctl);
		_exit(0);
	}
	if (read(up[0], &c, 1) != 1 || cqrs_view_open(name, "orders", &v)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		cqrs_engine_remove_segments(name);
		return 1;
	}
	fail |= cqrs_view_wait(v, 1, 10ull * 1000000000) != 0;
	fail |= write(go[1], &c, 1) != 1;
	waitpid(pid, &status, 0);
	fail |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	t0 = cqrs__mono_ns();
	rc = cqrs_view_wait(v, 2, 30ull * 1000000000);
	printf("wait after the engine stopped: %s in %.0f ms\n", cqrs_strerror(rc),
	       (double)(cqrs__mono_ns() - t0) / 1e6);
	fail |= rc != CQRS_EWRITERDEAD;
	/* as the bindings wait: in short slices (to see signals), up to 30 s */
	t0 = cqrs__mono_ns();
	do
		rc = cqrs_view_wait(v, 2, 20 * 1000000);
	while (rc == -ETIMEDOUT && cqrs__mono_ns() - t0 < 30ull * 1000000000);
	printf("sliced wait after the engine stopped: %s in %.0f ms\n", cqrs_strerror(rc),
	       (double)(cqrs__mono_ns() - t0) / 1e6);
	fail |= rc != CQRS_EWRITERDEAD;
	cqrs_view_close(v);
	cqrs_engine_remove_segments(name);
	fail |= tview_shm_count(name) != 0;
	return fail;
}

int main(void)
{
	cqrs_ctl *ctl;
	cqrs_vw *w;
	pid_t pid[3];
	int asleep = 0;
	uint64_t t0;
	int status, fail = 0;
	trow r;

	tu_unique_name(engine, sizeof engine, "pwait");
	if (tview_setup(engine, 64, &ctl, &w)) {
		fprintf(stderr, "setup: %s\n", cqrs_last_error());
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0)
			_exit(waiter(5, 60ull * 1000000000, 0));
	}
	/* Both children blocked in the futex; give up after 60 s of nothing. */
	t0 = cqrs__mono_ns();
	while (asleep < 2 && cqrs__mono_ns() - t0 < 60ull * 1000000000) {
		usleep(1000);
		asleep = in_futex(pid[0]) + in_futex(pid[1]);
	}
	printf("waiters asleep in futex_wait: %d\n", asleep);
	cqrs__vw_begin(w);
	trow_fill(&r, 77, 1, 1);
	cqrs__vw_upsert(w, &r);
	cqrs__vw_end(w, 5);
	for (int i = 0; i < 2; i++) {
		waitpid(pid[i], &status, 0);
		printf("waiter %d: exit %d\n", i, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		fail |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	}
	/* a sequence that never comes */
	pid[2] = fork();
	if (pid[2] == 0)
		_exit(waiter(6, 20 * 1000000, -ETIMEDOUT));
	waitpid(pid[2], &status, 0);
	printf("timeout waiter: exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	fail |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	tview_teardown(ctl, w);
	fail |= tview_shm_count(engine) != 0;
	fail |= engine_goes_away();
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
