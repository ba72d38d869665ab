/*
 * tests/proc/test_journal_witness.c - the views are witnesses of the
 * journal they were written from: an engine never starts on a journal
 * that lost events its views already applied, and never mistakes another
 * data directory's views (same engine name) for its own.
 *   1. lost tail: a bank engine (batch durability) acknowledges commands
 *      and is SIGKILLed; the last records of its journal are zeroed, as a
 *      disk that dropped them would leave them (the journal alone reads
 *      that as a clean end); the restart must refuse with CQRS_ECORRUPT
 *      naming the view and telling what to do, and start once the
 *      operator removed the old views (accepting the loss).
 *   2. another directory: the same engine name started on a second data
 *      directory rebuilds its views from its own (empty) journal instead
 *      of adopting or trusting the first directory's clean views.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cqrs_view.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

static char name[64], dir[256], dir2[256];

static int fail(const char *what)
{
	fprintf(stderr, "FAIL: %s (%s)\n", what, cqrs_last_error());
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	tu_rmrf(dir2);
	return 1;
}

/* Zeroes the last n bytes of data in the newest segment (before its
 * preallocated zero tail). */
static int zero_tail_records(const char *jdir, size_t n)
{
	char path[600], newest[300] = "";
	DIR *d = opendir(jdir);
	struct dirent *de;
	int fd;
	off_t end;
	static unsigned char buf[1 << 20];

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strlen(de->d_name) == 24 && !strcmp(de->d_name + 20, ".seg") &&
		    strcmp(de->d_name, newest) > 0)
			snprintf(newest, sizeof newest, "%s", de->d_name);
	closedir(d);
	snprintf(path, sizeof path, "%s/%s", jdir, newest);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	/* the last non-zero byte */
	end = lseek(fd, 0, SEEK_END);
	for (off_t off = end; off > 0;) {
		size_t len = off > (off_t)sizeof buf ? sizeof buf : (size_t)off;
		off -= (off_t)len;
		if (pread(fd, buf, len, off) != (ssize_t)len)
			break;
		for (size_t i = len; i-- > 0;)
			if (buf[i]) {
				off_t last = off + (off_t)i + 1, from = last > (off_t)n ? last - (off_t)n : 0;
				memset(buf, 0, sizeof buf);
				if (pwrite(fd, buf, (size_t)(last - from), from) != last - from)
					break;
				fsync(fd);
				close(fd);
				return 0;
			}
	}
	close(fd);
	return -1;
}

int main(void)
{
	bank_model m;
	cqrs_engine *e;
	char jdir[300];
	int p[2], status, rc;
	uint64_t acked = 0;
	pid_t pid;

	tu_unique_name(name, sizeof name, "witness");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-witness") || tu_mkdtemp(dir2, sizeof dir2, "cqrs-witness2"))
		return 1;
	snprintf(jdir, sizeof jdir, "%s/journal", dir);

	/* 1. acknowledged, applied, then lost from the journal's tail */
	if (pipe(p))
		return fail("pipe");
	pid = fork();
	if (pid == 0) {
		uint64_t seq = 0;
		close(p[0]);
		if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e))
			_exit(3);
		for (uint64_t i = 1; i <= 200; i++)
			if (bank_do(e, BANK_DEPOSIT, 1 + i % 8, 5, 77, i, &seq) == 0 && i == 200) {
				cqrs_view *v;
				/* the view has applied the last one before we report it */
				if (cqrs_view_open(name, "balances", &v) ||
				    cqrs_view_wait(v, seq, 10000000000ull))
					_exit(4);
				cqrs_view_close(v);
				if (write(p[1], &seq, sizeof seq) != sizeof seq)
					_exit(5);
			}
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &acked, sizeof acked) != sizeof acked)
		return fail("the engine child did not acknowledge its commands");
	close(p[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (zero_tail_records(jdir, 20 * 96))
		return fail("could not zero the journal's tail");
	rc = bank_start(name, dir, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e);
	if (rc == 0) {
		fprintf(stderr, "journal now ends at %llu, %llu were acknowledged and applied\n",
			(unsigned long long)cqrs_engine_durable_seq(e), (unsigned long long)acked);
		bank_stop(e, &m);
		return fail("the engine started on a journal that lost acknowledged, applied events");
	}
	if (rc != CQRS_ECORRUPT || !strstr(cqrs_last_error(), "balances") ||
	    !strstr(cqrs_last_error(), "cqrs rm"))
		return fail("the refusal does not name the view and the way out");
	printf("lost tail refused: %s\n", cqrs_last_error());
	/* The operator accepts the loss: old views removed, the engine starts. */
	cqrs_engine_remove_segments(name);
	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e))
		return fail("start after removing the old views");
	printf("after cqrs rm: started at seq %llu\n", (unsigned long long)cqrs_engine_durable_seq(e));
	bank_stop(e, &m); /* clean: its views are adoptable by this journal */

	/* 2. the same name on another data directory: rebuilt, not adopted */
	if (bank_start(name, dir2, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e))
		return fail("start on a second directory beside the first one's clean views");
	{
		cqrs_view *v;
		uint64_t a = 1;
		bank_row row;
		if (cqrs_view_open(name, "balances", &v))
			return fail("view on the second directory");
		rc = cqrs_view_get(v, &a, 8, &row, sizeof row);
		cqrs_view_close(v);
		if (rc != CQRS_ENOTFOUND)
			return fail("the second directory's engine serves the first one's rows");
	}
	bank_stop(e, &m);
	printf("journal witness passed\n");
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	tu_rmrf(dir2);
	return 0;
}
