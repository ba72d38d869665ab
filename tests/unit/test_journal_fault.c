/*
 * tests/unit/test_journal_fault.c - fault injection, the SQLite way: a
 * workload (open, append in command groups with group commit, segment
 * rolls, close, reopen and go on) runs with the Nth hit of a fault site
 * failing, for N = 1, 2, ... until a run injects nothing. After every run,
 * with faults off, the journal must open (never CQRS_ECORRUPT) and:
 *   acknowledged <= recovered <= submitted, recovered is the gapless,
 *   ordered prefix 1..R with exactly the submitted contents,
 * and that holds at every reopen inside the workload too.
 * Sites: open, write, fdatasync, fallocate, directory fsync, rename (and
 * all of them counted together); errors: EIO, ENOSPC (sticky), EMFILE,
 * EAGAIN/EINTR and short writes (retried: nothing may be lost); both I/O
 * backends, and io_uring with small batches written inline; batch, none
 * and interval modes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "tests/unit/test_journal_util.h"

static char g_dir[256];

typedef struct scenario {
	int site;
	int err;
	bool sticky;
	cqrs_journal_io io;
	enum cqrs_durability_mode mode;
	uint32_t inline_max;  /* inline_write_max: small batches by pwritev */
} scenario;

typedef struct outcome {
	uint64_t acked;       /* highest seq reported durable, over all rounds */
	uint64_t submitted;   /* highest seq committed in a complete command */
	int reopen_bad;       /* a reopen lost an acknowledged event */
	int ack_bad;          /* durable callbacks out of order or malformed */
	uint64_t batches;     /* batches submitted, over all rounds */
	uint64_t inline_writes; /* of which written by the flushing thread */
} outcome;

static void quiet_log(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

static void workload(const scenario *sc, outcome *o)
{
	int rounds = 3, per_round = jt_scaled(100);

	memset(o, 0, sizeof *o);
	for (int round = 0; round < rounds; round++) {
		cqrs_journal_config c;
		cqrs_journal *j;
		cqrs_journal_stats st;
		jt_acks acks = { 0 };
		uint64_t sub = 0;

		jt_config(&c, g_dir, sc->mode);
		c.io = sc->io;
		c.segment_size = 16u << 10;
		c.batch_bytes = 4096;
		c.interval_ms = 1;
		c.inline_write_max = sc->inline_max;
		c.on_durable = jt_on_durable;
		c.durable_arg = &acks;
		c.log = quiet_log;
		if (cqrs__journal_open(&j, &c, NULL) != 0)
			continue; /* an injected failure while opening */
		/* acknowledged <= recovered, at every reopen */
		if (cqrs__journal_next_seq(j) - 1 < o->acked)
			o->reopen_bad++;
		acks.last = cqrs__journal_next_seq(j) - 1;
		(void)jt_append(j, per_round, 3, 2, &sub);
		(void)jt_sync(j);
		cqrs__journal_stats_get(j, &st);
		o->batches += st.batches;
		o->inline_writes += st.inline_writes;
		(void)cqrs__journal_close(j);
		if (sub > o->submitted)
			o->submitted = sub;
		if (acks.batches && acks.last > o->acked)
			o->acked = acks.last;
		o->ack_bad += acks.bad;
	}
}

/* After a run: faults off, the journal opens and holds the right prefix. */
static void check(const scenario *sc, uint64_t n, const outcome *o)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	int64_t got;
	int rc;

	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 16u << 10;
	c.log = quiet_log;
	rc = cqrs__journal_open(&j, &c, NULL);
	if (rc)
		fail_msg("site %d err %d N=%llu: reopen failed: %s (%s)", sc->site, sc->err,
			 (unsigned long long)n, cqrs_strerror(rc), cqrs_last_error());
	assert_int_equal(cqrs__journal_close(j), 0);
	got = jt_read_all(g_dir, NULL);
	if (got < 0 || (uint64_t)got < o->acked || (uint64_t)got > o->submitted || o->reopen_bad ||
	    o->ack_bad)
		fail_msg("site %d err %d io %d mode %d inline %u N=%llu: acked %llu recovered %lld "
			 "submitted %llu reopen_bad %d ack_bad %d", sc->site, sc->err, sc->io, sc->mode,
			 sc->inline_max,
			 (unsigned long long)n, (unsigned long long)o->acked, (long long)got,
			 (unsigned long long)o->submitted, o->reopen_bad, o->ack_bad);
}

static void run_scenario(const scenario *sc)
{
	uint64_t n;
	outcome o;

	for (n = 1; n < 100000; n++) {
		bool fired;

		tu_rmrf(g_dir);
		cqrs__jfault_arm(sc->site, n, sc->err, sc->sticky);
		workload(sc, &o);
		fired = cqrs__jfault_fired();
		cqrs__jfault_disarm();
		check(sc, n, &o);
		/* Retried conditions lose nothing: every event is acknowledged. */
		if ((sc->err == JF_SHORT || sc->err == -EAGAIN || sc->err == -EINTR) &&
		    o.acked != o.submitted)
			fail_msg("site %d err %d N=%llu: acked %llu of %llu", sc->site, sc->err,
				 (unsigned long long)n, (unsigned long long)o.acked,
				 (unsigned long long)o.submitted);
		if (!fired) {
			/* The clean run: inline scenarios really mixed both paths. */
			if (sc->inline_max && !(o.inline_writes > 0 && o.inline_writes < o.batches))
				fail_msg("inline %u: %llu of %llu batches inline", sc->inline_max,
					 (unsigned long long)o.inline_writes, (unsigned long long)o.batches);
			break;
		}
	}
	assert_true(n > 1); /* the workload hit the site at least once */
	printf("site %d err %d%s io %d mode %d inline %u: %llu runs\n", sc->site, sc->err,
	       sc->sticky ? " (sticky)" : "", sc->io, sc->mode, sc->inline_max, (unsigned long long)n);
}

#define SC(site, err, sticky, io, mode) \
	{ site, err, sticky, CQRS_JOURNAL_IO_##io, CQRS_DURABILITY_##mode, 0 }
/* io_uring with batches up to 512 B written inline: both paths in one run
 * (the workload flushes every 2 groups of 1..3 events of 64 or 256 bytes:
 * batches of about 140 B to 2 KiB; checked on the clean run). */
#define SC_INLINE(site, err, sticky, mode) \
	{ site, err, sticky, CQRS_JOURNAL_IO_URING, CQRS_DURABILITY_##mode, 512 }

static void test_any_site_eio(void **state)
{
	static const scenario s[] = {
		SC(JF_ANY, -EIO, false, URING, BATCH),
		SC(JF_ANY, -EIO, false, PWRITE, BATCH),
		SC(JF_ANY, -EIO, false, URING, NONE),
		SC_INLINE(JF_ANY, -EIO, false, NONE),
		SC_INLINE(JF_ANY, -EIO, false, BATCH),
	};
	(void)state;
	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
		run_scenario(&s[i]);
}

static void test_each_site(void **state)
{
	static const scenario s[] = {
		SC(JF_OPEN, -EMFILE, false, URING, BATCH),
		SC(JF_WRITE, -EIO, false, URING, BATCH),
		SC(JF_FSYNC, -EIO, false, URING, BATCH),
		SC(JF_FSYNC, -EIO, false, PWRITE, INTERVAL),
		SC(JF_FALLOCATE, -ENOSPC, false, URING, BATCH),
		SC(JF_DIRSYNC, -EIO, false, URING, BATCH),
		SC(JF_RENAME, -EIO, false, PWRITE, BATCH),
		SC_INLINE(JF_WRITE, -EIO, false, BATCH),
		SC_INLINE(JF_FSYNC, -EIO, false, BATCH),
	};
	(void)state;
	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
		run_scenario(&s[i]);
}

static void test_enospc_and_short(void **state)
{
	static const scenario s[] = {
		SC(JF_WRITE, -ENOSPC, true, URING, BATCH),
		SC(JF_WRITE, -ENOSPC, true, PWRITE, NONE),
		SC(JF_FALLOCATE, -ENOSPC, true, URING, BATCH),
		SC(JF_WRITE, JF_SHORT, false, URING, BATCH),
		SC(JF_WRITE, -EAGAIN, false, URING, BATCH),
		SC(JF_WRITE, -EINTR, false, PWRITE, BATCH),
		SC(JF_WRITE, JF_SHORT, true, PWRITE, BATCH),
		SC_INLINE(JF_WRITE, -ENOSPC, true, NONE),
		SC_INLINE(JF_WRITE, JF_SHORT, false, INTERVAL),
		SC_INLINE(JF_WRITE, -EAGAIN, false, NONE),
	};
	(void)state;
	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
		run_scenario(&s[i]);
}

static int setup(void **state)
{
	(void)state;
	/* The loops test what the journal does with each failure, not the
	 * disk: fsyncs are counted and failed as armed, but not issued
	 * (tests/proc/test_journal_crash uses real ones). */
	cqrs__jfault_fake_sync(true);
	return tu_mkdtemp(g_dir, sizeof g_dir, "cqrs_jfault");
}

static int teardown(void **state)
{
	(void)state;
	cqrs__jfault_fake_sync(false);
	cqrs__jfault_disarm();
	tu_rmrf(g_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_any_site_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_site, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enospc_and_short, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
