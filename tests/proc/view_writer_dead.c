/*
 * tests/proc/view_writer_dead.c - a writer killed mid-update is detected.
 *
 * A child process is the engine: it creates the control segment and a view,
 * fills rows, then (test hook) leaves row 42's seqlock odd, as if it were
 * killed in the middle of writing it, and tells the parent. While it lives,
 * a read of row 42 keeps retrying and gives up with -EAGAIN (a live writer
 * may just be slow). Then the parent SIGKILLs it: row 42 now reads as
 * CQRS_EWRITERDEAD (promptly, never a spin forever), every other row still
 * reads, finds through row 42 report it, waits report a dead writer, and the
 * engine's names are stale: refused by create, removed by remove_stale.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/testutil.h"
#include "tests/unit/test_view_rows.h"

static char engine[64];

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, \
				#cond, cqrs_last_error());                               \
			fail = 1;                                                        \
		}                                                                        \
	} while (0)

static int engine_child(int fd)
{
	cqrs_ctl *ctl;
	cqrs_vw *w;
	uint64_t k = 42;
	trow r;

	if (tview_setup(engine, 256, &ctl, &w))
		return 1;
	cqrs__vw_begin(w);
	for (uint64_t i = 1; i <= 100; i++) {
		trow_fill(&r, i, i % 5, 1);
		cqrs__vw_upsert(w, &r);
	}
	cqrs__vw_end(w, 100);
	cqrs__vw_begin(w);
	if (cqrs__vw_test_leave_odd(w, &k, sizeof k))
		return 1;
	if (write(fd, "x", 1) != 1)
		return 1;
	for (;;)
		pause();
}

static int count_cb(void *arg, const void *row, size_t size)
{
	(void)row; (void)size;
	++*(int *)arg;
	return 0;
}

int main(void)
{
	char name[CQRS_SEG_NAME_MAX], c;
	int p[2], status, fail = 0, n = 0;
	uint64_t k, cust;
	cqrs_view *v;
	cqrs_view_info info;
	cqrs_ctl *ctl;
	pid_t pid;
	trow r;

	setvbuf(stdout, NULL, _IONBF, 0);
	tu_unique_name(engine, sizeof engine, "pdead");
	if (pipe(p))
		return 1;
	pid = fork();
	if (pid == 0)
		_exit(engine_child(p[1]));
	if (read(p[0], &c, 1) != 1) {
		fprintf(stderr, "engine child failed\n");
		return 1;
	}
	CHECK(cqrs_view_open(engine, "orders", &v) == 0);
	if (fail)
		return 1;
	k = 41;
	CHECK(cqrs_view_get(v, &k, 8, &r, sizeof r) == 0 && trow_ok(&r));
	k = 42;
	printf("row 42 with its writer alive: %s\n", cqrs_strerror(cqrs_view_get(v, &k, 8, &r, sizeof r)));
	CHECK(cqrs_view_get(v, &k, 8, &r, sizeof r) == -EAGAIN);
	CHECK(cqrs_view_stat(v, &info) == 0 && info.writer_alive);

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	CHECK(cqrs_view_get(v, &k, 8, &r, sizeof r) == CQRS_EWRITERDEAD);
	printf("row 42 after SIGKILL: %s\n", cqrs_strerror(cqrs_view_get(v, &k, 8, &r, sizeof r)));
	for (k = 1; k <= 100; k++)
		if (k != 42)
			CHECK(cqrs_view_get(v, &k, 8, &r, sizeof r) == 0 && trow_ok(&r));
	cust = 42 % 5;
	CHECK(cqrs_view_find(v, "customer_id", &cust, 8, count_cb, &n, 0) == CQRS_EWRITERDEAD);
	cust = 1;
	n = 0;
	CHECK(cqrs_view_find(v, "customer_id", &cust, 8, count_cb, &n, 0) == 20);
	/* the killed batch left the view sequence odd: no snapshot is possible */
	CHECK(cqrs_view_find(v, "customer_id", &cust, 8, count_cb, &n, CQRS_FIND_SNAPSHOT) ==
	      CQRS_EWRITERDEAD);
	CHECK(cqrs_view_wait(v, 1000, UINT64_MAX) == CQRS_EWRITERDEAD);
	CHECK(cqrs_view_stat(v, &info) == 0 && !info.writer_alive);
	CHECK(cqrs_view_applied_seq(v) == 100);
	cqrs_view_close(v);

	/* the names are stale now */
	CHECK(cqrs__ctl_create(engine, NULL, &ctl) == CQRS_ESTALE);
	CHECK(cqrs__ctl_remove_stale(engine) == 0);
	cqrs__seg_name_view(name, sizeof name, engine, "orders", 1);
	CHECK(cqrs__seg_remove_stale(name) == 0);
	CHECK(tview_shm_count(engine) == 0);
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
