/*
 * tests/unit/test_journal_recover.c - recovery, case by case: truncation
 * (zeroed or cut file) at every byte offset of the last records, with and
 * without multi-event commands; a bit flip mid-log and in the last record;
 * a seq gap; stale records at and past the tail; a hole left by batches
 * completing out of order, told apart from lost durable data by the
 * records' synced_seq hint; damage in segments that are not the last; a
 * damaged header. Each refusal must name segment, offset and seq.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/wait.h>

#include "tests/unit/test_journal_util.h"

static char g_dir[256];

static int setup(void **state)
{
	(void)state;
	cqrs__jfault_disarm();
	return tu_mkdtemp(g_dir, sizeof g_dir, "cqrs_jrecover");
}

static int teardown(void **state)
{
	(void)state;
	tu_rmrf(g_dir);
	return 0;
}

typedef struct recpos {
	char seg[40];
	uint64_t off;
	uint64_t seq;
	uint32_t span;
	uint16_t flags;
} recpos;

/* Where every record lies (iterating a clean journal). */
static int positions(const char *dir, recpos *out, int cap)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	cqrs_journal_segment_info si;
	int n = 0;

	assert_int_equal(cqrs__journal_iter_open(&it, dir, 1), 0);
	while (n < cap && cqrs__journal_iter_next(it, &r) == 1) {
		cqrs__journal_iter_where(it, &si, &out[n].off);
		snprintf(out[n].seg, sizeof out[n].seg, "%s", si.name);
		out[n].seq = r->seq;
		out[n].span = (uint32_t)cqrs__jrec_span(r);
		out[n].flags = r->flags;
		n++;
	}
	cqrs__journal_iter_close(it);
	return n;
}

static int open_close(const char *dir, cqrs_journal_recovery *rec)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	int rc;

	jt_config(&c, dir, CQRS_DURABLE_BATCH);
	rc = cqrs__journal_open(&j, &c, rec);
	if (rc == 0)
		assert_int_equal(cqrs__journal_close(j), 0);
	return rc;
}

static void remove_torn(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l > 5 && !strcmp(e->d_name + l - 5, ".torn")) {
			char p[600];
			jt_path(p, sizeof p, dir, e->d_name);
			unlink(p);
		}
	}
	if (d)
		closedir(d);
}

/* Builds n events as groups of exactly `group` (flush + sync per group)
 * in mode `mode`. clean: closed; else the writer process exits without
 * closing, as a kill -9 would leave it: the page cache holds every write,
 * the manifest says what the last open or roll wrote. */
static uint64_t build_mode(const char *dir, int n, int group, uint64_t segsize,
			   cqrs_durability mode, int clean)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	pid_t pid;
	int st;

	jt_config(&c, dir, mode);
	if (segsize)
		c.segment_size = segsize;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (cqrs__journal_open(&j, &c, NULL) != 0)
			_exit(2);
		for (int i = 0; i < n; i += group) {
			for (int k = 0; k < group; k++)
				if (jt_append_one(j, k == group - 1) != 0)
					_exit(3);
			if (jt_sync(j) != 0)
				_exit(4);
		}
		if (clean && cqrs__journal_close(j) != 0)
			_exit(5);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	return (uint64_t)n;
}

static uint64_t build_groups(const char *dir, int n, int group, uint64_t segsize)
{
	return build_mode(dir, n, group, segsize, CQRS_DURABLE_BATCH, 0);
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Truncation at every byte offset of the last `last` records: the tail
 * zeroed (a torn write into preallocated space) and the file cut there
 * (ftruncate). Recovery must resume at the first incomplete command, keep
 * what it cut in a .torn file, and append on. */
static void truncate_every_offset(int group, int last)
{
	recpos pos[512];
	char seg[600], tornp[700], manp[600];
	uint8_t *img, *man;
	size_t len, manlen;
	int n = 60, np;

	tu_rmrf(g_dir);
	build_groups(g_dir, n, group, 64u << 10);
	np = positions(g_dir, pos, 512);
	assert_int_equal(np, n);
	jt_segment(g_dir, -1, seg, sizeof seg);
	assert_int_equal(jt_read_file(seg, &img, &len), 0);
	jt_path(manp, sizeof manp, g_dir, JMAN_NAME);
	assert_int_equal(jt_read_file(manp, &man, &manlen), 0);
	uint64_t from = pos[n - last].off, end = pos[n - 1].off + pos[n - 1].span;
	int stride = getenv("CQRS_SAN") ? 7 : 1;

	for (int how = 0; how < 2; how++) {
		for (uint64_t x = from; x <= end; x += (uint64_t)stride) {
			cqrs_journal_recovery rec;
			int k = 0, torn;
			uint64_t want_next, gstart;

			/* The record holding byte x (or the first at/after x) and
			 * the start of its command group. */
			while (k < n && pos[k].off + pos[k].span <= x)
				k++;
			want_next = k < n ? pos[k].seq : (uint64_t)n + 1;
			while (k < n && k > 0 && !(pos[k - 1].flags & CQRS_JREC_CMD_END)) {
				k--;
				want_next = pos[k].seq;
			}
			gstart = k < n ? pos[k].off : end;

			remove_torn(g_dir);
			/* the manifest as the crash left it */
			assert_int_equal(jt_write_file(manp, man, manlen), 0);
			if (how == 0) {
				uint8_t *copy = malloc(len);
				memcpy(copy, img, len);
				memset(copy + x, 0, end - x);
				assert_int_equal(jt_write_file(seg, copy, len), 0);
				free(copy);
			} else {
				assert_int_equal(jt_write_file(seg, img, x), 0);
			}
			memset(&rec, 0, sizeof rec);
			assert_int_equal(open_close(g_dir, &rec), 0);
			assert_int_equal(rec.next_seq, want_next);
			torn = !all_zero(img + gstart, x > gstart ? x - gstart : 0);
			assert_int_equal(rec.torn_bytes > 0, torn);
			assert_int_equal(jt_count_suffix(g_dir, ".torn"), torn);
			if (torn) {
				uint8_t *tb;
				size_t tl;
				jt_path(tornp, sizeof tornp, g_dir, rec.torn_file);
				assert_int_equal(jt_read_file(tornp, &tb, &tl), 0);
				assert_int_equal(tl, rec.torn_bytes);
				assert_true(tl <= x - gstart);
				assert_memory_equal(tb, img + gstart, tl);
				free(tb);
			}
			assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)want_next - 1);
			/* Appends resume at the right seq (now and then). */
			if ((x - from) % 37 == 0) {
				cqrs_journal_config c;
				cqrs_journal *j;
				uint64_t sub;
				jt_config(&c, g_dir, CQRS_DURABLE_BATCH);
				assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
				assert_int_equal(cqrs__journal_next_seq(j), want_next);
				assert_int_equal(jt_append(j, 4, 2, 1, &sub), 0);
				assert_int_equal(cqrs__journal_close(j), 0);
				assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);
			}
		}
	}
	free(img);
	free(man);
}

static void test_truncate_every_offset(void **state)
{
	(void)state;
	truncate_every_offset(1, 3);
}

static void test_truncate_every_offset_groups(void **state)
{
	(void)state;
	truncate_every_offset(3, 4);
}

/* Garbage (not zeros) after the last record: a torn write of junk. */
static void test_garbage_tail(void **state)
{
	recpos pos[128];
	char seg[600];
	uint8_t *img;
	size_t len;
	cqrs_journal_recovery rec;
	(void)state;

	build_groups(g_dir, 20, 1, 0);
	positions(g_dir, pos, 128);
	jt_segment(g_dir, -1, seg, sizeof seg);
	assert_int_equal(jt_read_file(seg, &img, &len), 0);
	uint64_t end = pos[19].off + pos[19].span;
	for (int i = 0; i < 300; i++)
		img[end + (uint64_t)i] = (uint8_t)(i * 131 + 7);
	assert_int_equal(jt_write_file(seg, img, len), 0);
	assert_int_equal(open_close(g_dir, &rec), 0);
	assert_int_equal(rec.next_seq, 21);
	assert_int_equal(rec.torn_bytes, 300);
	assert_int_equal(jt_read_all(g_dir, NULL), 20);
	free(img);
}

static void flip(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= mask;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void expect_corrupt(const char *dir, const char *seg, uint64_t off, uint64_t seq,
			   const char *what)
{
	char want[128];
	const char *base = strrchr(seg, '/') ? strrchr(seg, '/') + 1 : seg;
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	int rc;

	assert_int_equal(open_close(dir, NULL), CQRS_ECORRUPT);
	snprintf(want, sizeof want, "segment %s, offset %llu, seq %llu", base,
		 (unsigned long long)off, (unsigned long long)seq);
	if (!strstr(cqrs_last_error(), want) || (what && !strstr(cqrs_last_error(), what)))
		fail_msg("message '%s' lacks '%s' / '%s'", cqrs_last_error(), want, what ? what : "");
	/* The reader refuses the same way. */
	assert_int_equal(cqrs__journal_iter_open(&it, dir, 1), 0);
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1)
		;
	assert_int_equal(rc, CQRS_ECORRUPT);
	assert_non_null(strstr(cqrs_last_error(), want));
	cqrs__journal_iter_close(it);
	assert_int_equal(jt_count_suffix(dir, ".torn"), 0); /* nothing was cut */
}

static void test_bitflip_midlog(void **state)
{
	recpos pos[256];
	char seg[600];
	(void)state;

	build_groups(g_dir, 100, 1, 0);
	positions(g_dir, pos, 256);
	jt_segment(g_dir, -1, seg, sizeof seg);
	flip(seg, pos[49].off + 72 + 10, 0x04); /* a payload bit of seq 50 */
	expect_corrupt(g_dir, seg, pos[49].off, 50, "stable storage");
	flip(seg, pos[49].off + 72 + 10, 0x04);
	flip(seg, pos[49].off + 20, 0x80); /* a bit of its seq field */
	expect_corrupt(g_dir, seg, pos[49].off, 50, NULL);
}

/* The very last record damaged, nothing after it: indistinguishable from a
 * torn write, so it is cut (and kept in the .torn file). */
static void test_bitflip_last_record(void **state)
{
	recpos pos[64];
	char seg[600];
	cqrs_journal_recovery rec;
	(void)state;

	build_groups(g_dir, 30, 1, 0);
	positions(g_dir, pos, 64);
	jt_segment(g_dir, -1, seg, sizeof seg);
	flip(seg, pos[29].off + 80, 0x01);
	assert_int_equal(open_close(g_dir, &rec), 0);
	assert_int_equal(rec.next_seq, 30);
	assert_int_equal(rec.torn_from_seq, 30);
	assert_true(rec.torn_bytes > 0 && rec.torn_bytes <= pos[29].span);
	assert_int_equal(jt_read_all(g_dir, NULL), 29);
}

static void rewrite_record(const char *seg, uint64_t off, void (*edit)(cqrs_jrec *, void *),
			   void *arg)
{
	uint8_t *img;
	size_t len;

	assert_int_equal(jt_read_file(seg, &img, &len), 0);
	cqrs_jrec *r = (cqrs_jrec *)(img + off);
	edit(r, arg);
	r->checksum = cqrs__jrec_checksum(r);
	assert_int_equal(jt_write_file(seg, img, len), 0);
	free(img);
}

static void bump_seq(cqrs_jrec *r, void *arg)
{
	r->seq += *(uint64_t *)arg;
}

static void test_seq_gap(void **state)
{
	recpos pos[128];
	char seg[600];
	uint64_t d = 1;
	(void)state;

	build_groups(g_dir, 40, 1, 0);
	positions(g_dir, pos, 128);
	jt_segment(g_dir, -1, seg, sizeof seg);
	rewrite_record(seg, pos[20].off, bump_seq, &d); /* seq 21 -> 22: a gap */
	expect_corrupt(g_dir, seg, pos[20].off, 22, "seq gap");
	d = (uint64_t)-1;
	rewrite_record(seg, pos[20].off, bump_seq, &d); /* back */
	d = (uint64_t)-5;
	rewrite_record(seg, pos[39].off, bump_seq, &d); /* seq 40 -> 35: stale */
	expect_corrupt(g_dir, seg, pos[39].off, 35, "stale");
}

/* A checksum-valid record left beyond the tail (reused space): stale. */
static void test_stale_past_tail(void **state)
{
	recpos pos[128];
	char seg[600];
	uint8_t *img;
	size_t len;
	(void)state;

	build_groups(g_dir, 40, 1, 0);
	positions(g_dir, pos, 128);
	jt_segment(g_dir, -1, seg, sizeof seg);
	assert_int_equal(jt_read_file(seg, &img, &len), 0);
	uint64_t end = pos[39].off + pos[39].span;

	/* Right at the tail position: a chain record with an old seq. */
	memcpy(img + end, img + pos[2].off, pos[2].span);
	assert_int_equal(jt_write_file(seg, img, len), 0);
	expect_corrupt(g_dir, seg, end, 3, "stale");
	/* Far past the tail, after zeros. */
	memset(img + end, 0, pos[2].span);
	memcpy(img + end + 4096, img + pos[2].off, pos[2].span);
	assert_int_equal(jt_write_file(seg, img, len), 0);
	expect_corrupt(g_dir, seg, end + 4096, 3, "stale");
	free(img);
}

static void set_hint(cqrs_jrec *r, void *arg)
{
	r->synced_seq = *(uint64_t *)arg;
}

/* A damaged record followed by valid ones: corruption if a later record
 * says the damaged one was already on stable storage; a torn tail with a
 * hole if none does (batches in flight completed out of order). */
static void test_hole_vs_lost_durable(void **state)
{
	recpos pos[128];
	char seg[600];
	cqrs_journal_recovery rec;
	uint64_t hint = 44;
	(void)state;

	build_groups(g_dir, 50, 1, 0);
	positions(g_dir, pos, 128);
	jt_segment(g_dir, -1, seg, sizeof seg);
	/* zero the body of seq 45; 46..50 were written after 45 was synced */
	flip(seg, pos[44].off + 3, 0xff);
	expect_corrupt(g_dir, seg, pos[44].off, 45, "stable storage");
	/* as if 45..50 had all been in flight together: their hints say 44 */
	for (int k = 45; k < 50; k++)
		rewrite_record(seg, pos[k].off, set_hint, &hint);
	assert_int_equal(open_close(g_dir, &rec), 0);
	assert_int_equal(rec.next_seq, 45);
	assert_true(rec.torn_bytes > pos[49].off - pos[44].off);
	assert_true(rec.torn_bytes <= pos[49].off + pos[49].span - pos[44].off);
	assert_int_equal(jt_read_all(g_dir, NULL), 44);
}

static void test_nonlast_segments(void **state)
{
	static recpos pos[4096];
	char seg[600], p2[600];
	int np, nseg;
	(void)state;

	build_groups(g_dir, 800, 1, 32u << 10);
	np = positions(g_dir, pos, 4096);
	nseg = jt_segment(g_dir, 0, seg, sizeof seg);
	assert_true(nseg >= 4);
	/* The record in the middle of the second-to-last segment. */
	jt_segment(g_dir, nseg - 2, seg, sizeof seg);
	const char *base = strrchr(seg, '/') + 1;
	int a = -1, b = -1;
	for (int k = 0; k < np; k++)
		if (!strcmp(pos[k].seg, base)) {
			if (a < 0)
				a = k;
			b = k;
		}
	int mid = (a + b) / 2;
	flip(seg, pos[mid].off + 72, 0x10);
	expect_corrupt(g_dir, seg, pos[mid].off, pos[mid].seq, NULL);
	flip(seg, pos[mid].off + 72, 0x10);
	/* Its last record zeroed: a torn record in a sealed segment. */
	{
		uint8_t *img;
		size_t len;
		assert_int_equal(jt_read_file(seg, &img, &len), 0);
		uint8_t *save = malloc(pos[b].span);
		memcpy(save, img + pos[b].off, pos[b].span);
		memset(img + pos[b].off + 8, 0, pos[b].span - 8);
		assert_int_equal(jt_write_file(seg, img, len), 0);
		expect_corrupt(g_dir, seg, pos[b].off, pos[b].seq, "not the last");
		/* Entirely zeroed: the chain ends early, a gap to the next. */
		memset(img + pos[b].off, 0, pos[b].span);
		assert_int_equal(jt_write_file(seg, img, len), 0);
		expect_corrupt(g_dir, seg, pos[b].off, pos[b].seq, "seq gap");
		memcpy(img + pos[b].off, save, pos[b].span);
		assert_int_equal(jt_write_file(seg, img, len), 0);
		free(save);
		free(img);
	}
	assert_int_equal(open_close(g_dir, NULL), 0);
	/* Damage in an old segment: open scans only the last two, replay
	 * (the iterator) refuses. */
	jt_segment(g_dir, 0, p2, sizeof p2);
	flip(p2, pos[3].off + 72, 0x01);
	assert_int_equal(open_close(g_dir, NULL), 0);
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	int rc;
	assert_int_equal(cqrs__journal_iter_open(&it, g_dir, 1), 0);
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1)
		;
	assert_int_equal(rc, CQRS_ECORRUPT);
	cqrs__journal_iter_close(it);
	flip(p2, pos[3].off + 72, 0x01);
	/* A missing middle segment: a gap between segments. */
	jt_segment(g_dir, 1, p2, sizeof p2);
	unlink(p2);
	assert_int_equal(cqrs__journal_iter_open(&it, g_dir, 1), 0);
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1)
		;
	assert_int_equal(rc, CQRS_ECORRUPT);
	assert_non_null(strstr(cqrs_last_error(), "seq gap"));
	cqrs__journal_iter_close(it);
}

static void test_header_damage(void **state)
{
	char seg[600];
	(void)state;

	build_groups(g_dir, 10, 1, 0);
	jt_segment(g_dir, -1, seg, sizeof seg);
	flip(seg, 60, 0x01); /* engine name */
	assert_int_equal(open_close(g_dir, NULL), CQRS_ECORRUPT);
	assert_non_null(strstr(cqrs_last_error(), "offset 0"));
	flip(seg, 60, 0x01);
	assert_int_equal(open_close(g_dir, NULL), 0);
	truncate(seg, 100);
	assert_int_equal(open_close(g_dir, NULL), CQRS_ECORRUPT);
	assert_non_null(strstr(cqrs_last_error(), strrchr(seg, '/') + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_truncate_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_every_offset_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bitflip_midlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bitflip_last_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_past_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hole_vs_lost_durable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonlast_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_damage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
