/*
 * tests/unit/test_journal.c - the journal writer and reader: header and
 * record encoding, append/durable callbacks in order with correct framing,
 * reopen continues the seq, segment roll with preallocation, the iterator
 * from every seq, the three durability modes, command groups (relocation,
 * abandon, too big), the directory lock, poisoning, ENOSPC at
 * preallocation, short writes, and io_uring / pwritev fallback parity
 * (byte-identical segments).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/unit/test_journal_util.h"

static char g_dir[256];

static int setup(void **state)
{
	(void)state;
	cqrs__jfault_disarm();
	return tu_mkdtemp(g_dir, sizeof g_dir, "cqrs_journal");
}

static int teardown(void **state)
{
	(void)state;
	cqrs__jfault_disarm();
	tu_rmrf(g_dir);
	return 0;
}

/* ---- format ----------------------------------------------------------------------- */

static void test_header_roundtrip(void **state)
{
	const cqrs_schema *sch[3] = { jt_ev64_schema(), NULL, jt_ev256_schema() };
	size_t hs = cqrs__jseg_header_size(sch, 3);
	uint8_t *img;
	jseg_header h;
	cqrs_schema s;
	(void)state;

	assert_true(hs >= JSEG_ALIGN && hs % JSEG_ALIGN == 0);
	img = calloc(1, hs);
	assert_int_equal(cqrs__jseg_header_encode(img, hs, "orders", 77, 40, 123456789, 1u << 20, sch, 3),
			 (int)hs);
	assert_int_equal(cqrs__jseg_header_check(img, hs, &h), 0);
	assert_int_equal(h.first_seq, 77);
	assert_int_equal(h.version, JSEG_VERSION);
	assert_int_equal(h.prev_first_seq, 40);
	assert_int_equal(h.ctime_ns, 123456789);
	assert_int_equal(h.ntypes, 3);
	assert_string_equal(h.engine, "orders");
	assert_int_equal(cqrs__jseg_schema(img, hs, &h, 0, &s), 1);
	assert_int_equal(cqrs_schema_hash(&s), cqrs_schema_hash(jt_ev64_schema()));
	assert_int_equal(cqrs__jseg_schema(img, hs, &h, 1, &s), 0);
	assert_int_equal(cqrs__jseg_schema(img, hs, &h, 2, &s), 1);
	assert_string_equal(s.name, "Ev256");
	assert_int_equal(cqrs__jseg_schema(img, hs, &h, 3, &s), 0);
	/* Any changed byte of the checksummed part is caught. */
	for (size_t i = 0; i < JSEG_FIXED + h.schema_bytes; i += 3) {
		img[i] ^= 0x10;
		int rc = cqrs__jseg_header_check(img, hs, NULL);
		assert_true(rc == CQRS_ECORRUPT || rc == CQRS_EFORMAT);
		img[i] ^= 0x10;
	}
	img[0] ^= 1;
	assert_int_equal(cqrs__jseg_header_check(img, hs, NULL), CQRS_EFORMAT);
	img[0] ^= 1;
	assert_int_equal(cqrs__jseg_header_check(img, 100, NULL), CQRS_EFORMAT);
	assert_int_equal(cqrs__jseg_header_check(img, hs - 1, NULL), CQRS_ECORRUPT);
	free(img);
}

static void test_record_checksum(void **state)
{
	uint64_t buf[32] = { 0 };
	cqrs_jrec *r = (cqrs_jrec *)buf;
	(void)state;

	r->size = 20;
	r->seq = 5;
	r->flags = CQRS_JREC_CMD_END;
	memset(r + 1, 0xab, 20);
	r->checksum = cqrs__jrec_checksum(r);
	assert_int_equal(cqrs__jrec_span(r), 96);
	assert_true(cqrs__jrec_valid((uint8_t *)buf, sizeof buf, 0));
	assert_false(cqrs__jrec_valid((uint8_t *)buf, 91, 0)); /* payload cut */
	for (size_t bit = 8 * 8; bit < (72 + 20) * 8; bit += 5) {
		((uint8_t *)buf)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_false(cqrs__jrec_valid((uint8_t *)buf, sizeof buf, 0));
		((uint8_t *)buf)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(cqrs__jseg_parse_name("00000000000000000012.seg", &(uint64_t){ 0 }), 1);
	assert_int_equal(cqrs__jseg_parse_name("0000000000000000001.seg", &(uint64_t){ 0 }), 0);
	assert_int_equal(cqrs__jseg_parse_name("00000000000000000000.seg", &(uint64_t){ 0 }), 0);
	assert_int_equal(cqrs__jseg_parse_name("00000000000000000012.seg.8.torn", &(uint64_t){ 0 }), 0);
}

/* ---- append / read ------------------------------------------------------------------ */

static void test_append_reopen(void **state)
{
	cqrs_journal_config c;
	cqrs_journal_recovery rec;
	cqrs_journal *j;
	jt_acks acks = { 0 };
	uint64_t sub = 0;
	int n = jt_scaled(3000);
	(void)state;

	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.on_durable = jt_on_durable;
	c.durable_arg = &acks;
	assert_int_equal(cqrs__journal_open(&j, &c, &rec), 0);
	assert_int_equal(rec.next_seq, 1);
	assert_int_equal(cqrs__journal_next_seq(j), 1);
	assert_int_equal(jt_append(j, n, 3, 4, &sub), 0);
	assert_int_equal(jt_sync(j), 0);
	assert_int_equal(acks.last, sub);
	assert_int_equal(acks.bad, 0);
	assert_true(acks.batches > 1);
	assert_int_equal(cqrs__journal_durable_seq(j), sub);
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);

	/* Reopen: the seq continues, nothing is cut. */
	assert_int_equal(cqrs__journal_open(&j, &c, &rec), 0);
	assert_int_equal(rec.next_seq, sub + 1);
	assert_int_equal(rec.torn_bytes, 0);
	assert_int_equal(jt_append(j, 100, 2, 1, &sub), 0);
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_int_equal(acks.last, sub);
	assert_int_equal(acks.bad, 0);
	assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);
}

static void test_roll_and_iterate_from(void **state)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	jt_acks acks = { 0 };
	uint64_t sub = 0;
	char p[512];
	int nseg;
	(void)state;

	jt_config(&c, g_dir, CQRS_DURABILITY_NONE);
	c.segment_size = 64u << 10;
	c.batch_bytes = 8192;
	c.on_durable = jt_on_durable;
	c.durable_arg = &acks;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(jt_append(j, 4000, 4, 0, &sub), 0);
	assert_int_equal(jt_sync(j), 0);
	assert_int_equal(acks.bad, 0);
	{
		cqrs_journal_stats st;
		cqrs__journal_stats_get(j, &st);
		assert_true(st.rolls >= 3);
		/* The next segment was preallocated ahead of every roll (the
		 * first segment, made at open, was not a roll ahead). */
		assert_int_equal(st.rolls_prealloc, st.rolls - 1);
	}
	assert_int_equal(cqrs__journal_close(j), 0);
	nseg = jt_segment(g_dir, 0, p, sizeof p);
	assert_true(nseg >= 3);
	assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);

	/* From every seq (a stride under sanitizers), into every segment. */
	for (uint64_t from = 1; from <= sub + 2; from += (uint64_t)(getenv("CQRS_SAN") ? 37 : 1)) {
		cqrs_journal_iter *it;
		const cqrs_jrec *r;
		uint64_t want = from;
		int rc;

		assert_int_equal(cqrs__journal_iter_open(&it, g_dir, from), 0);
		rc = cqrs__journal_iter_next(it, &r);
		if (from <= sub) {
			assert_int_equal(rc, 1);
			assert_int_equal(r->seq, from);
			/* a few more, across a segment boundary now and then */
			for (int k = 0; k < 3 && (rc = cqrs__journal_iter_next(it, &r)) == 1; k++)
				assert_int_equal(r->seq, ++want);
		} else {
			assert_int_equal(rc, 0);
		}
		cqrs__journal_iter_close(it);
	}
	/* Segment names are their first seqs; every header is the same engine. */
	for (int i = 0; i < nseg; i++) {
		cqrs_journal_iter *it;
		cqrs_journal_segment_info si;
		const cqrs_jrec *r;
		uint64_t fs;
		char *base;

		jt_segment(g_dir, i, p, sizeof p);
		base = strrchr(p, '/') + 1;
		assert_int_equal(cqrs__jseg_parse_name(base, &fs), 1);
		assert_int_equal(cqrs__journal_iter_open(&it, g_dir, fs), 0);
		if (cqrs__journal_iter_next(it, &r) == 1) {
			cqrs__journal_iter_where(it, &si, NULL);
			assert_string_equal(si.name, base);
			assert_string_equal(si.engine, "jtest");
			assert_int_equal(r->seq, fs);
			assert_non_null(cqrs__journal_iter_schema(it, JT_EV64));
			assert_null(cqrs__journal_iter_schema(it, JT_RAW));
		}
		cqrs__journal_iter_close(it);
	}
}

static void run_mode(enum cqrs_durability_mode mode)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	cqrs_journal_stats st;
	jt_acks acks = { 0 };
	uint64_t sub = 0;

	tu_rmrf(g_dir);
	jt_config(&c, g_dir, mode);
	c.on_durable = jt_on_durable;
	c.durable_arg = &acks;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(jt_append(j, jt_scaled(2000), 2, 8, &sub), 0);
	assert_int_equal(jt_sync(j), 0);
	if (mode == CQRS_DURABILITY_INTERVAL) {
		/* The background thread fdatasyncs within a few intervals;
		 * later records carry its synced frontier as their hint. */
		uint64_t sub0 = sub, hint = 0;
		for (int i = 0; i < 1000 && hint < sub0; i++) {
			cqrs_journal_iter *it;
			const cqrs_jrec *r;

			usleep(1000);
			assert_int_equal(jt_append(j, 1, 1, 1, &sub), 0);
			assert_int_equal(jt_sync(j), 0);
			assert_int_equal(cqrs__journal_iter_open(&it, g_dir, sub), 0);
			assert_int_equal(cqrs__journal_iter_next(it, &r), 1);
			hint = r->synced_seq;
			cqrs__journal_iter_close(it);
		}
		assert_true(hint >= sub0);
	}
	cqrs__journal_stats_get(j, &st);
	if (mode == CQRS_DURABILITY_BATCH)
		assert_true(st.fsyncs >= st.batches);
	if (mode == CQRS_DURABILITY_NONE)
		assert_int_equal(st.fsyncs, 0);
	assert_int_equal(st.poisoned, 0);
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_int_equal(acks.bad, 0);
	assert_int_equal(acks.last, sub);
	assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);
}

static void test_modes(void **state)
{
	(void)state;
	run_mode(CQRS_DURABILITY_NONE);
	run_mode(CQRS_DURABILITY_BATCH);
	run_mode(CQRS_DURABILITY_INTERVAL);
}

/* ---- command groups ------------------------------------------------------------------ */

static void test_groups(void **state)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	jt_acks acks = { 0 };
	uint64_t sub = 0;
	(void)state;

	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.batch_bytes = 4096; /* ~25 small records: groups keep moving buffers */
	c.segment_size = 32u << 10;
	c.on_durable = jt_on_durable;
	c.durable_arg = &acks;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(jt_append(j, jt_scaled(1500), 9, 0, &sub), 0);
	assert_int_equal(jt_sync(j), 0);
	assert_int_equal(acks.bad, 0);
	assert_int_equal(acks.last, sub);

	/* Abandon drops the open group and its seqs are reused. */
	assert_int_equal(jt_append_one(j, 0), 0);
	assert_int_equal(jt_append_one(j, 0), 0);
	assert_int_equal(cqrs__journal_next_seq(j), sub + 3);
	assert_int_equal(cqrs__journal_abandon(j), 2);
	assert_int_equal(cqrs__journal_next_seq(j), sub + 1);
	/* A group that can never fit one batch is refused, then abandoned. */
	int rc = 0, k;
	for (k = 0; k < 100 && rc == 0; k++)
		rc = jt_append_one(j, 0);
	assert_int_equal(rc, -EMSGSIZE);
	assert_true(cqrs__journal_abandon(j) > 10);
	assert_int_equal(cqrs__journal_next_seq(j), sub + 1);
	/* Oversized single record, wrong size for the schema, bad type. */
	void *p;
	cqrs_journal_event ev = { .type = JT_RAW };
	assert_int_equal(cqrs__journal_claim(j, &ev, 5000, &p), -EMSGSIZE);
	ev.type = JT_EV64;
	assert_int_equal(cqrs__journal_claim(j, &ev, 65, &p), -EINVAL);
	ev.type = JT_NTYPES;
	assert_int_equal(cqrs__journal_claim(j, &ev, 8, &p), -EINVAL);
	/* A raw (schema-less) event is fine. */
	ev.type = JT_RAW;
	ev.flags = CQRS_JREC_CMD_END;
	assert_int_equal(cqrs__journal_append(j, &ev, "hello", 5, NULL), 0);
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_int_equal(acks.last, sub + 1);
	/* The raw event does not fit jt_payload_ok: read up to it. */
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	assert_int_equal(cqrs__journal_iter_open(&it, g_dir, sub + 1), 0);
	assert_int_equal(cqrs__journal_iter_next(it, &r), 1);
	assert_int_equal(r->size, 5);
	assert_memory_equal(cqrs__jrec_payload(r), "hello", 5);
	assert_int_equal(cqrs__journal_iter_next(it, &r), 0);
	cqrs__journal_iter_close(it);
}

/* A command group left open at close is dropped, never written. */
static void test_open_group_at_close(void **state)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	uint64_t sub = 0;
	(void)state;

	jt_config(&c, g_dir, CQRS_DURABILITY_NONE);
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(jt_append(j, 10, 1, 0, &sub), 0);
	assert_int_equal(jt_append_one(j, 0), 0);
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);
}

static void test_lock_and_config(void **state)
{
	cqrs_journal_config c;
	cqrs_journal *j, *j2;
	(void)state;

	jt_config(&c, g_dir, CQRS_DURABILITY_NONE);
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(cqrs__journal_open(&j2, &c, NULL), -EBUSY);
	assert_null(j2);
	assert_int_equal(cqrs__journal_close(j), 0);
	c.engine = "bad name";
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), -EINVAL);
	c.engine = "other";
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), CQRS_EFORMAT);
	assert_non_null(strstr(cqrs_last_error(), "jtest"));
	c.engine = "jtest";
	c.segment_size = 1000;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), -EINVAL);
	c.segment_size = 0;
	c.queue_depth = 1;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), -EINVAL);
}

/* ---- failures --------------------------------------------------------------------------- */

static void test_poison_on_fsync_error(void **state)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	jt_acks acks = { 0 };
	uint64_t sub = 0, before;
	int rc;
	(void)state;

	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.on_durable = jt_on_durable;
	c.durable_arg = &acks;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(jt_append(j, 50, 1, 10, &sub), 0);
	assert_int_equal(jt_sync(j), 0);
	before = acks.last;
	cqrs__jfault_arm(JF_FSYNC, 1, -EIO, false);
	assert_int_equal(jt_append(j, 10, 1, 0, NULL), 0);
	rc = jt_sync(j);
	assert_int_equal(rc, -EIO);
	assert_true(cqrs__jfault_fired());
	cqrs__jfault_disarm();
	/* That batch and everything after are never reported; every call
	 * returns the error. */
	assert_int_equal(acks.last, before);
	assert_int_equal(cqrs__journal_poisoned(j), -EIO);
	assert_int_equal(jt_append_one(j, 1), -EIO);
	assert_int_equal(cqrs__journal_flush(j), -EIO);
	assert_int_equal(cqrs__journal_poll(j), -EIO);
	assert_int_equal(cqrs__journal_wait(j, 1000), -EIO);
	assert_int_equal(cqrs__journal_close(j), -EIO);
	assert_int_equal(acks.last, before);
	assert_int_equal(acks.bad, 0);
	/* Recovery: acknowledged <= recovered <= submitted. */
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	int64_t got = jt_read_all(g_dir, NULL);
	assert_true(got >= (int64_t)before && got <= (int64_t)before + 10);
	assert_int_equal(cqrs__journal_close(j), 0);
}

static void test_enospc_at_prealloc(void **state)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	jt_acks acks = { 0 };
	int rc = 0, i;
	(void)state;

	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 32u << 10;
	c.batch_bytes = 4096;
	c.on_durable = jt_on_durable;
	c.durable_arg = &acks;
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	cqrs__jfault_arm(JF_FALLOCATE, 1, -ENOSPC, true);
	for (i = 0; i < 2000 && rc == 0; i++)
		rc = jt_append_one(j, 1);
	assert_int_equal(rc, -ENOSPC);
	/* Rejected cleanly: not poisoned, everything before is durable. */
	assert_int_equal(cqrs__journal_poisoned(j), 0);
	assert_int_equal(jt_sync(j), 0);
	assert_int_equal(acks.last, cqrs__journal_next_seq(j) - 1);
	assert_int_equal(jt_append_one(j, 1), -ENOSPC);
	cqrs__jfault_disarm();
	/* Space is back: appends go on in a new segment. */
	uint64_t sub = 0;
	assert_int_equal(jt_append(j, 300, 2, 5, &sub), 0);
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_int_equal(acks.last, sub);
	assert_int_equal(acks.bad, 0);
	assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);
}

static void test_short_writes(void **state)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	cqrs_journal_stats st;
	jt_acks acks = { 0 };
	uint64_t sub = 0;
	(void)state;

	for (int io = CQRS_JOURNAL_IO_URING; io <= CQRS_JOURNAL_IO_PWRITE; io++) {
		for (int mode = CQRS_DURABILITY_NONE; mode <= CQRS_DURABILITY_BATCH; mode++) {
			tu_rmrf(g_dir);
			memset(&acks, 0, sizeof acks);
			jt_config(&c, g_dir, (enum cqrs_durability_mode)mode);
			c.io = (cqrs_journal_io)io;
			c.segment_size = 64u << 10;
			c.on_durable = jt_on_durable;
			c.durable_arg = &acks;
			assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
			cqrs__jfault_arm(JF_WRITE, 1, JF_SHORT, true);
			assert_int_equal(jt_append(j, jt_scaled(1500), 3, 6, &sub), 0);
			assert_int_equal(jt_sync(j), 0);
			cqrs__journal_stats_get(j, &st);
			cqrs__jfault_disarm();
			assert_true(st.short_writes > 0);
			assert_int_equal(cqrs__journal_close(j), 0);
			assert_int_equal(acks.bad, 0);
			assert_int_equal(acks.last, sub);
			assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);
		}
	}
}

/* ---- fallback parity ------------------------------------------------------------------- */

typedef struct logcap {
	int fallback;
	int lines;
} logcap;

static void cap_log(void *arg, int level, const char *msg)
{
	logcap *l = arg;
	(void)level;
	l->lines++;
	if (strstr(msg, "pwritev"))
		l->fallback++;
}

/* Writes the same batches every time: three opens, each with batches of
 * 1..23 events, each batch synced before the next (so the recovery hints
 * in the records match too). *inline_writes, *batches, *fsyncs (optional)
 * add up the writer's counts. */
static void parity_run_mode(const char *dir, cqrs_journal_io io, const char *env, logcap *lc,
			    enum cqrs_durability_mode mode, uint32_t inline_max, uint64_t *inline_writes,
			    uint64_t *batches, uint64_t *fsyncs)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	cqrs_journal_stats st;
	uint64_t sub;

	if (env)
		setenv("CQRS_NO_IO_URING", env, 1);
	jt_config(&c, dir, mode);
	c.io = io;
	c.segment_size = 16u << 10;
	c.ctime_ns = 1700000000123456789ll;
	c.log = cap_log;
	c.log_arg = lc;
	c.inline_write_max = inline_max;
	for (int round = 0; round < 3; round++) {
		assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
		/* Every batch size from 1 to 23 events, also when scaled down. */
		for (int b = 0; b < (jt_scaled(60) > 23 ? jt_scaled(60) : 23); b++) {
			assert_int_equal(jt_append(j, 1 + b % 23, 3, 0, &sub), 0);
			assert_int_equal(jt_sync(j), 0);
		}
		cqrs__journal_stats_get(j, &st);
		if (inline_writes)
			*inline_writes += st.inline_writes;
		if (batches)
			*batches += st.batches;
		if (fsyncs)
			*fsyncs += st.fsyncs;
		assert_int_equal(cqrs__journal_close(j), 0);
	}
	unsetenv("CQRS_NO_IO_URING");
}

static void parity_run(const char *dir, cqrs_journal_io io, const char *env, logcap *lc)
{
	parity_run_mode(dir, io, env, lc, CQRS_DURABILITY_BATCH, 0, NULL, NULL, NULL);
}

/* Every segment file in a is byte-identical to b's, and there are >= 2. */
static void assert_same_segments(const char *a, const char *b)
{
	char pa[512], pb[512];
	int na = jt_segment(a, 0, pa, sizeof pa), nb = jt_segment(b, 0, pb, sizeof pb);

	assert_true(na >= 2);
	assert_int_equal(na, nb);
	for (int i = 0; i < na; i++) {
		uint8_t *ba = NULL, *bb = NULL;
		size_t la = 0, lb = 0;

		jt_segment(a, i, pa, sizeof pa);
		jt_segment(b, i, pb, sizeof pb);
		assert_string_equal(strrchr(pa, '/'), strrchr(pb, '/'));
		assert_int_equal(jt_read_file(pa, &ba, &la), 0);
		assert_int_equal(jt_read_file(pb, &bb, &lb), 0);
		assert_int_equal(la, lb);
		assert_true(memcmp(ba, bb, la) == 0);
		free(ba);
		free(bb);
	}
}

static void test_fallback_parity(void **state)
{
	char a[300], b[300];
	logcap la = { 0 }, lb = { 0 };
	(void)state;

	snprintf(a, sizeof a, "%s/uring", g_dir);
	snprintf(b, sizeof b, "%s/pwrite", g_dir);
	parity_run(a, CQRS_JOURNAL_IO_AUTO, NULL, &la);
	parity_run(b, CQRS_JOURNAL_IO_AUTO, "1", &lb);
	assert_int_equal(la.fallback, 0);
	assert_int_equal(lb.fallback, 3); /* said once per open */
	assert_same_segments(a, b);
	/* And explicitly chosen backends give the same bytes. */
	tu_rmrf(b);
	parity_run(b, CQRS_JOURNAL_IO_PWRITE, NULL, &lb);
	assert_same_segments(a, b);
}

/* inline_write_max: batches up to the limit are written by the flushing
 * thread (in batch mode then fdatasynced through io_uring), the larger
 * ones through io_uring, mixed in one journal; the files are the same
 * bytes as all-io_uring, and every batch is reported durable in order
 * (jt_sync, jt_on_durable); in batch mode every batch was fdatasynced. */
static void test_inline_writes(void **state)
{
	const enum cqrs_durability_mode modes[] = { CQRS_DURABILITY_NONE, CQRS_DURABILITY_INTERVAL, CQRS_DURABILITY_BATCH };
	(void)state;

	for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		char a[300], b[300];
		logcap lc = { 0 };
		uint64_t inl = 0, batches = 0, inl0 = 0, fsyncs = 0;

		snprintf(a, sizeof a, "%s/uring%zu", g_dir, m);
		snprintf(b, sizeof b, "%s/inline%zu", g_dir, m);
		parity_run_mode(a, CQRS_JOURNAL_IO_URING, NULL, &lc, modes[m], 0, &inl0, NULL, NULL);
		/* Batches of 1..23 events of 64 or 256 bytes: about half fit 2 KiB. */
		parity_run_mode(b, CQRS_JOURNAL_IO_URING, NULL, &lc, modes[m], 2048, &inl, &batches, &fsyncs);
		assert_int_equal(inl0, 0);
		assert_true(inl > 0);
		assert_true(inl < batches);
		if (modes[m] == CQRS_DURABILITY_BATCH)
			assert_true(fsyncs >= batches);
		/* Interval mode's records carry the background fdatasync's
		 * progress (synced_seq), a matter of timing: compare contents. */
		if (modes[m] != CQRS_DURABILITY_INTERVAL)
			assert_same_segments(a, b);
		assert_int_equal(jt_read_all(b, NULL), jt_read_all(a, NULL));
	}
}

/* Inline writes beside io_uring batches still in flight: small and large
 * batches alternate, each flushed without waiting, so a small one is
 * written by this thread while the large one before it (and in batch mode
 * every fdatasync) is still in the kernel. Every batch is reported durable
 * exactly once and in order, nothing is lost, and in batch mode such an
 * overlap really happened. */
static void test_inline_overlap(void **state)
{
	const enum cqrs_durability_mode modes[] = { CQRS_DURABILITY_NONE, CQRS_DURABILITY_INTERVAL, CQRS_DURABILITY_BATCH };
	(void)state;

	for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		cqrs_journal_config c;
		cqrs_journal *j;
		cqrs_journal_stats st;
		jt_acks acks = { 0 };
		uint64_t sub = 0, overlaps = 0;

		tu_rmrf(g_dir);
		jt_config(&c, g_dir, modes[m]);
		c.io = CQRS_JOURNAL_IO_URING;
		c.segment_size = 256u << 10;
		c.queue_depth = 4;
		c.inline_write_max = 1024;
		c.on_durable = jt_on_durable;
		c.durable_arg = &acks;
		assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
		for (int round = 0; round < jt_scaled(200); round++) {
			/* 2 events (< 1 KiB: inline), then 14 (> 1 KiB: io_uring). */
			assert_int_equal(jt_append(j, 2, 1, 0, &sub), 0);
			cqrs__journal_stats_get(j, &st);
			if (st.inflight > 0)
				overlaps++; /* the flush below writes inline beside it */
			assert_int_equal(cqrs__journal_flush(j), 0);
			assert_true(cqrs__journal_poll(j) >= 0);
			assert_int_equal(jt_append(j, 14, 1, 0, &sub), 0);
			assert_int_equal(cqrs__journal_flush(j), 0);
			assert_true(cqrs__journal_poll(j) >= 0);
		}
		assert_int_equal(jt_sync(j), 0);
		cqrs__journal_stats_get(j, &st);
		assert_true(st.inline_writes > 0 && st.inline_writes < st.batches);
		if (modes[m] == CQRS_DURABILITY_BATCH)
			assert_true(overlaps > 0);
		assert_int_equal(cqrs__journal_close(j), 0);
		assert_int_equal(acks.bad, 0);
		assert_int_equal(acks.last, sub);
		assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_header_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roll_and_iterate_from, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_group_at_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poison_on_fsync_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enospc_at_prealloc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_parity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inline_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inline_overlap, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
