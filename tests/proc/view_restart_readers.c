/*
 * tests/proc/view_restart_readers.c - readers that stay open while the
 * engine is killed (SIGKILL) and restarted, many times.
 *
 * The engine runs in a child process (the bank domain, batch durability),
 * depositing into accounts the parent names over a pipe and answering each
 * with its seq. The parent is the reader: it opens the view once, before
 * the first kill, and keeps that handle (and a second one it only waits
 * on) across every cycle. Each cycle:
 *   - while the engine is dead the handle still reads the last state, and
 *     a wait for a seq beyond it does not succeed;
 *   - after the restart the handle is on the generation a fresh open
 *     finds, without being told (its next call moves it);
 *   - an account created after the restart is seen by the old handle, and
 *     read-your-writes holds: wait(seq) == 0 on either handle implies get()
 *     on the other shows the row;
 *   - every row created in any earlier cycle is still there;
 *   - the engine's segments in /dev/shm (count and bytes) after cycle N
 *     are what they were after the first restart, and no name of an old
 *     generation is left.
 * Usage: view_restart_readers [cycles]   (default 8; 3 under sanitizers)
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "cqrs_view.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define SEC 1000000000ull

static char name[64], dir[256];

static int fail(const char *what)
{
	fprintf(stderr, "FAIL: %s (%s)\n", what, cqrs_last_error());
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 1;
}

/* The engine: deposits 1 into each account read from `in`, answers its
 * seq on `out`. Runs until killed. */
static void engine_child(int in, int out)
{
	bank_model m;
	cqrs_engine *e;
	uint64_t account, seq = 0;

	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 1024, CQRS_ON_ERROR_SKIP, &m, &e))
		_exit(3);
	seq = cqrs_engine_durable_seq(e);
	if (write(out, &seq, 8) != 8) /* "up", and where the journal ends */
		_exit(4);
	while (read(in, &account, 8) == 8) {
		if (bank_do(e, BANK_DEPOSIT, account, 1, 0, 0, &seq))
			_exit(5);
		if (write(out, &seq, 8) != 8)
			_exit(4);
	}
	_exit(0); /* the parent is gone */
}

typedef struct engine_proc {
	pid_t pid;
	int to, from;
	uint64_t start_seq;
} engine_proc;

static int engine_spawn(engine_proc *p)
{
	int a[2], b[2];

	if (pipe(a) || pipe(b))
		return -1;
	p->pid = fork();
	if (p->pid == 0) {
		close(a[1]);
		close(b[0]);
		engine_child(a[0], b[1]);
	}
	close(a[0]);
	close(b[1]);
	p->to = a[1];
	p->from = b[0];
	return read(p->from, &p->start_seq, 8) == 8 ? 0 : -1;
}

/* An engine killed after delay_ns, wherever its start has got to. */
static void engine_spawn_killed(uint64_t delay_ns)
{
	struct timespec d = { (time_t)(delay_ns / 1000000000u), (long)(delay_ns % 1000000000u) };
	int a[2], b[2];
	pid_t pid;

	if (pipe(a) || pipe(b))
		return;
	pid = fork();
	if (pid == 0) {
		close(a[1]);
		close(b[0]);
		engine_child(a[0], b[1]);
	}
	close(a[0]);
	close(b[1]);
	nanosleep(&d, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(a[1]);
	close(b[0]);
}

static int deposit(engine_proc *p, uint64_t account, uint64_t *seq)
{
	return write(p->to, &account, 8) == 8 && read(p->from, seq, 8) == 8 ? 0 : -1;
}

static void engine_kill(engine_proc *p)
{
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	close(p->to);
	close(p->from);
}

/* Count and bytes of this engine's segments; *old set when a view name is
 * not the generation the directory names. */
static void shm_usage(int *count, uint64_t *bytes, int *old)
{
	char prefix[96];
	cqrs_view_entry ent[4];
	struct dirent *de;
	DIR *d = opendir("/dev/shm");
	int nv = cqrs_view_list(name, ent, 4);
	size_t n = (size_t)snprintf(prefix, sizeof prefix, "cqrs.%s.", name);

	*count = 0;
	*bytes = 0;
	*old = 0;
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;
		unsigned long long g;
		if (strncmp(de->d_name, prefix, n) || fstatat(dirfd(d), de->d_name, &st, 0))
			continue;
		(*count)++;
		*bytes += (uint64_t)st.st_size;
		if (sscanf(de->d_name + n, "v.balances.%llu", &g) == 1 && (nv < 1 || g != ent[0].generation))
			(*old)++;
	}
	closedir(d);
}

static int has_account(cqrs_view *v, uint64_t account)
{
	bank_row row;

	return cqrs_view_get(v, &account, 8, &row, sizeof row) == 0 && row.account == account &&
	       row.ops == 1;
}

int main(int argc, char **argv)
{
	int cycles = argc > 1 ? atoi(argv[1]) : (getenv("CQRS_SAN") ? 3 : 8);
	cqrs_view *v = NULL, *w = NULL, *fresh;
	engine_proc p;
	uint64_t seq, next_account = 1, first_bytes = 0, start_ns, t0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int first_count = 0;

	tu_unique_name(name, sizeof name, "vrr");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-vrr"))
		return 1;
	t0 = cqrs__mono_ns();
	if (engine_spawn(&p))
		return fail("first start");
	start_ns = cqrs__mono_ns() - t0;
	printf("start takes %.2f ms, seed %u\n", start_ns / 1e6, seed);
	if (deposit(&p, next_account++, &seq))
		return fail("first deposit");
	if (cqrs_view_open(name, "balances", &v) || cqrs_view_open(name, "balances", &w))
		return fail("open");
	if (cqrs_view_wait(v, seq, 10 * SEC) || !has_account(v, 1))
		return fail("first read-your-writes");
	for (int cycle = 1; cycle <= cycles; cycle++) {
		int count, old, rc;
		uint64_t bytes, gen_before = cqrs_view_generation(v);

		engine_kill(&p);
		/* dead engine: the last state stays readable, nothing more is promised */
		if (!has_account(v, next_account - 1))
			return fail("the last state is not readable while the engine is dead");
		rc = cqrs_view_wait(w, seq + 1, SEC / 5);
		if (rc == 0)
			return fail("wait for a seq past a dead engine succeeded");

		/* every other cycle an engine is killed in the middle of its start
		 * first (it may have retired what the readers map, and published
		 * a generation it never finished) */
		if (cycle % 2 == 0)
			engine_spawn_killed((uint64_t)(rand_r(&seed) % 1000) * start_ns / 1000);
		if (engine_spawn(&p))
			return fail("restart");
		/* the old handles move by themselves to what a fresh open finds */
		if (cqrs_view_open(name, "balances", &fresh))
			return fail("fresh open after restart");
		if (cqrs_view_generation(v) != cqrs_view_generation(fresh) ||
		    cqrs_view_generation(v) == gen_before)
			return fail("an open handle did not move to the current generation");
		cqrs_view_close(fresh);

		/* an account created after the restart; read-your-writes both ways */
		uint64_t account = next_account++;
		if (deposit(&p, account, &seq))
			return fail("deposit after restart");
		if (seq <= p.start_seq)
			return fail("seq did not advance");
		if (cycle % 2 ? cqrs_view_wait(w, seq, 10 * SEC) : cqrs_view_wait(v, seq, 10 * SEC))
			return fail("wait after restart");
		if (!has_account(v, account) || !has_account(w, account))
			return fail("wait(seq) succeeded but get() does not show the row");
		for (uint64_t a = 1; a < next_account; a++)
			if (!has_account(v, a))
				return fail("a row from an earlier cycle is missing");

		shm_usage(&count, &bytes, &old);
		if (old)
			return fail("an old generation is still in /dev/shm");
		if (cycle == 1) {
			first_count = count;
			first_bytes = bytes;
		} else if (count != first_count || bytes != first_bytes) {
			fprintf(stderr, "cycle %d: %d segments, %llu bytes; after the first restart %d, %llu\n",
				cycle, count, (unsigned long long)bytes, first_count,
				(unsigned long long)first_bytes);
			return fail("/dev/shm usage grows with restarts");
		}
		printf("cycle %d: generation %llu -> %llu, seq %llu, %d segments, %llu bytes\n", cycle,
		       (unsigned long long)gen_before, (unsigned long long)cqrs_view_generation(v),
		       (unsigned long long)seq, count, (unsigned long long)bytes);
	}
	engine_kill(&p);
	cqrs_view_close(v);
	cqrs_view_close(w);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	printf("view_restart_readers passed: %d kill/restart cycles\n", cycles);
	return 0;
}
