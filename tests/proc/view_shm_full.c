/*
 * tests/proc/view_shm_full.c - a full /dev/shm is a state of the
 * projection that needs room, not an avalanche. In a private mount
 * namespace with a small tmpfs on /dev/shm (root only; exits 77
 * otherwise), a bank engine whose balances view must grow finds no room:
 *   - the projection stalls: `stall_code` -ENOSPC in its counters, no
 *     dead letters, its view stays at the seq before the event that needs
 *     the room, and commands are still accepted (the journal is on disk);
 *   - once space is back the projection grows, catches up from the
 *     journal and serves every row with the right balance, by itself;
 *   - stalled again, the engine stops promptly and the next start (with
 *     room) serves the right rows;
 *   - with no room for the view at all at start, the engine starts
 *     anyway (commands accepted, the projection stalled, no such view
 *     yet), then makes the view and fills it once there is room.
 * Runs in both threading modes.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define FILLER "/dev/shm/filler"

static char name[64], dir[256];

static int fail(const char *what)
{
	fprintf(stderr, "FAIL: %s (%s)\n", what, cqrs_last_error());
	return 1;
}

/* Takes all but `leave` bytes of /dev/shm's free space. */
static int fill(uint64_t leave)
{
	struct statvfs st;
	int fd = open(FILLER, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint64_t avail;

	if (fd < 0 || statvfs("/dev/shm", &st))
		return -1;
	avail = (uint64_t)st.f_bavail * st.f_frsize;
	if (avail > leave && posix_fallocate(fd, 0, (off_t)(avail - leave)))
		return close(fd), -1;
	close(fd);
	return 0;
}

/* A counter of the first projection (single writer: relaxed loads). */
#define PROJ0(e, f) __atomic_load_n(&cqrs_engine_counters(e)->proj[0].f, __ATOMIC_RELAXED)

/* Deposits 10 into accounts [from, to]; every command must be accepted. */
static int deposit(cqrs_engine *e, uint64_t from, uint64_t to, uint64_t *seq)
{
	for (uint64_t a = from; a <= to; a++)
		if (bank_do(e, BANK_DEPOSIT, a, 10, 0, 0, seq))
			return -1;
	return 0;
}

/* Every account in [1, n] holds 10 * deposits. */
static int check_rows(uint64_t n, int64_t each, uint64_t seq)
{
	cqrs_view *v;
	int rc = cqrs_view_open(name, "balances", &v);

	if (!rc)
		rc = cqrs_view_wait(v, seq, 20000000000ull);
	for (uint64_t a = 1; !rc && a <= n; a++) {
		bank_row row;
		rc = cqrs_view_get(v, &a, 8, &row, sizeof row);
		if (!rc && row.balance != each)
			rc = -EILSEQ;
	}
	cqrs_view_close(v);
	return rc;
}

static int wait_stall(cqrs_engine *e, int want)
{
	for (int i = 0; i < 2000; i++) {
		/* relaxed reads of single-writer counters */
		if ((PROJ0(e, stall_code) != 0) == want)
			return 0;
		usleep(5000);
	}
	return -1;
}

/* No room for the view at start: the engine starts, the projection waits. */
static int start_without_room(void)
{
	bank_model m;
	cqrs_engine *e;
	cqrs_view *v;
	char prefix[96];
	unsigned long long ctl_bytes;
	uint64_t seq = 0;

	tu_unique_name(name, sizeof name, "shmfull");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-shmfull"))
		return fail("temp dir");
	/* How much the control segment takes (it is not a view: it needs room). */
	if (bank_start(name, dir, CQRS_DURABILITY_NONE, 1 << 14, CQRS_ON_ERROR_SKIP, &m, &e))
		return fail("start to measure");
	snprintf(prefix, sizeof prefix, "cqrs.%s.ctl", name);
	tu_shm_usage(prefix, &ctl_bytes);
	bank_stop(e, &m);
	cqrs_engine_remove_segments(name);
	if (fill(ctl_bytes + (8 << 10)))
		return fail("filling /dev/shm");
	if (bank_start(name, dir, CQRS_DURABILITY_NONE, 1 << 14, CQRS_ON_ERROR_SKIP, &m, &e))
		return fail("the engine must start when only a view has no room");
	if (PROJ0(e, stall_code) != -ENOSPC || cqrs_view_open(name, "balances", &v) == 0)
		return fail("started without room: the projection must be stalled, its view absent");
	if (deposit(e, 1, 100, &seq))
		return fail("commands must be accepted while the view cannot be made");
	unlink(FILLER);
	if (wait_stall(e, 0) || check_rows(100, 10, seq))
		return fail("the view was not made and filled once there was room");
	printf("  started without room for the view: stalled, then made and filled it (100 rows)\n");
	bank_stop(e, &m);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 0;
}

static int run(int threading)
{
	bank_model m;
	cqrs_engine *e;
	uint64_t seq = 0, stalled_seq;
	int64_t t0;

	bank_threading = threading;
	tu_unique_name(name, sizeof name, "shmfull");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-shmfull"))
		return fail("temp dir");
	if (bank_start(name, dir, CQRS_DURABILITY_NONE, 64, CQRS_ON_ERROR_SKIP, &m, &e))
		return fail("start");
	if (deposit(e, 1, 60, &seq) || check_rows(60, 10, seq))
		return fail("before the disk fills");
	if (fill(16 << 10))
		return fail("filling /dev/shm");
	/* The view needs to grow past 64 rows: no room. */
	if (deposit(e, 61, 400, &seq))
		return fail("commands must still be accepted while a view cannot grow");
	if (wait_stall(e, 1))
		return fail("the projection did not report the stall");
	if (PROJ0(e, stall_code) != -ENOSPC || PROJ0(e, dead_letters) != 0)
		return fail("stalled with the wrong code, or dead letters written");
	stalled_seq = PROJ0(e, stalled_at);
	if (PROJ0(e, applied_seq) != stalled_seq - 1)
		return fail("a stalled view must stay at the seq before the event that needs room");
	printf("%s: stalled at seq %llu (%s), %llu commands accepted meanwhile, no dead letters\n",
	       threading ? "shared" : "dedicated", (unsigned long long)stalled_seq,
	       cqrs_strerror(PROJ0(e, stall_code)), (unsigned long long)(seq - stalled_seq + 1));
	/* Space comes back: the projection resumes by itself. */
	unlink(FILLER);
	if (wait_stall(e, 0) || check_rows(400, 10, seq))
		return fail("the projection did not resume and catch up once space was back");
	printf("  resumed after %u failed attempts; all 400 rows right at seq %llu\n",
	       PROJ0(e, stall_retries), (unsigned long long)seq);
	/* Stalled again (one more growth), then stop: prompt. */
	if (fill(16 << 10) || deposit(e, 401, 2000, &seq) || wait_stall(e, 1))
		return fail("second stall");
	t0 = cqrs__mono_ns();
	bank_stop(e, &m);
	printf("  stopped while stalled in %.1f ms\n", (double)(cqrs__mono_ns() - t0) / 1e6);
	if (cqrs__mono_ns() - t0 > 3000000000)
		return fail("stop waited for a stalled projection");
	unlink(FILLER);
	if (bank_start(name, dir, CQRS_DURABILITY_NONE, 64, CQRS_ON_ERROR_SKIP, &m, &e) ||
	    check_rows(2000, 10, cqrs_engine_durable_seq(e)))
		return fail("restart with room: rows not right");
	bank_stop(e, &m);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return start_without_room();
}

int main(void)
{
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		printf("needs root for a private /dev/shm mount\n");
		return 77;
	}
	pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=8m,mode=1777")) {
			printf("cannot mount a private /dev/shm: %s\n", strerror(errno));
			_exit(77);
		}
		status = run(CQRS_THREADING_DEDICATED) || run(CQRS_THREADING_SHARED);
		fflush(NULL);
		_exit(status);
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status))
		return fail("child crashed");
	if (WEXITSTATUS(status) == 0)
		printf("view_shm_full passed\n");
	return WEXITSTATUS(status);
}
