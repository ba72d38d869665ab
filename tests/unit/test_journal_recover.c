/*
 * tests/unit/test_journal_recover.c - recovery, case by case: truncation
 * (zeroed or cut file) at every byte offset of the last records, with and
 * without multi-event commands; a bit flip mid-log and in the last record;
 * a seq gap; stale records at and past the tail; a hole left by batches
 * completing out of order, told apart from lost durable data by the
 * records' synced_seq hint; damage in segments that are not the last; a
 * damaged header. The journal's extent: a bit flip mid-log in every
 * durability mode; a segment deleted at the start, in the middle, at the
 * end; a zeroed durable tail; the manifest missing (a journal from before
 * manifests, or deleted) or damaged; the operator's repair of each; the
 * engine's check against other witnesses. Each refusal must name segment,
 * offset and seq (or the missing segment), and cut nothing.
 * (Past 800 lines: one program for the whole recovery rule, whose cases
 * share the journal builders and damage helpers at its top.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/wait.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

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

	jt_config(&c, dir, CQRS_DURABILITY_BATCH);
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

static int g_pause_at; /* build_mode: sleep after this seq (interval mode's fsync thread) */
static int g_pause_us = 30000, g_end_us; /* how long; and before exiting */

/* Builds n events as groups of exactly `group` (flush + sync per group)
 * in mode `mode`. clean: closed; else the writer process exits without
 * closing, as a kill -9 would leave it: the page cache holds every write,
 * the manifest says what the last open or roll wrote. */
static uint64_t build_mode(const char *dir, int n, int group, uint64_t segsize,
			   enum cqrs_durability_mode mode, int clean)
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
			if (g_pause_at && i + group == g_pause_at)
				usleep((useconds_t)g_pause_us);
		}
		if (g_end_us)
			usleep((useconds_t)g_end_us);
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
	return build_mode(dir, n, group, segsize, CQRS_DURABILITY_BATCH, 0);
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

	/* Thousands of opens: the logic is under test, not the disk (every
	 * fdatasync site still runs, without the syscall). */
	cqrs__jfault_fake_sync(true);

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
				jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
				assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
				assert_int_equal(cqrs__journal_next_seq(j), want_next);
				assert_int_equal(jt_append(j, 4, 2, 1, &sub), 0);
				assert_int_equal(cqrs__journal_close(j), 0);
				assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)sub);
			}
		}
	}
	cqrs__jfault_fake_sync(false);
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

/* ---- the journal's extent ------------------------------------------------------- */

static int open_mode(const char *dir, enum cqrs_durability_mode mode, uint64_t segsize,
		     cqrs_journal_recovery *rec)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	int rc;

	jt_config(&c, dir, mode);
	if (segsize)
		c.segment_size = segsize;
	rc = cqrs__journal_open(&j, &c, rec);
	if (rc == 0)
		assert_int_equal(cqrs__journal_close(j), 0);
	return rc;
}

static void expect_refused(const char *dir, const char *what1, const char *what2)
{
	assert_int_equal(open_close(dir, NULL), CQRS_ECORRUPT);
	if ((what1 && !strstr(cqrs_last_error(), what1)) || (what2 && !strstr(cqrs_last_error(), what2)))
		fail_msg("message '%s' lacks '%s' / '%s'", cqrs_last_error(), what1 ? what1 : "",
			 what2 ? what2 : "");
	assert_int_equal(jt_count_suffix(dir, ".torn"), 0);
}

static const char *mode_name(enum cqrs_durability_mode m)
{
	return m == CQRS_DURABILITY_NONE ? "none" : m == CQRS_DURABILITY_BATCH ? "batch" : "interval";
}

/* One flipped bit in the middle of the last segment, after a crash: every
 * mode refuses (in `none` mode it used to be cut as a torn tail, with
 * everything after it), naming segment, offset and seq; nothing is cut.
 * Then the same journal closed cleanly. */
static void test_bitflip_every_mode(void **state)
{
	static const enum cqrs_durability_mode modes[] = { CQRS_DURABILITY_NONE, CQRS_DURABILITY_BATCH,
						 CQRS_DURABILITY_INTERVAL };
	recpos pos[512];
	char seg[600];
	(void)state;

	for (int k = 0; k < 3; k++) {
		for (int clean = 0; clean < 2; clean++) {
			tu_rmrf(g_dir);
			g_pause_at = 100;
			build_mode(g_dir, 300, 1, 0, modes[k], clean);
			g_pause_at = 0;
			assert_int_equal(positions(g_dir, pos, 512), 300);
			jt_segment(g_dir, -1, seg, sizeof seg);
			flip(seg, pos[99].off + 72 + 9, 0x02); /* a payload bit of seq 100 */
			print_message("%s, %s: ", mode_name(modes[k]), clean ? "closed" : "crashed");
			expect_corrupt(g_dir, seg, pos[99].off, 100, NULL);
			print_message("%s\n", cqrs_last_error());
			assert_int_equal(open_mode(g_dir, modes[k], 0, NULL), CQRS_ECORRUPT);
			assert_int_equal(jt_count_suffix(g_dir, ".torn"), 0);
			flip(seg, pos[99].off + 72 + 9, 0x02);
			assert_int_equal(open_mode(g_dir, modes[k], 0, NULL), 0);
			assert_int_equal(jt_read_all(g_dir, NULL), 300);
		}
	}
}

/* `none` mode, several batches in flight at a crash, a later one landed
 * before an earlier one: the hole's records were committed before the
 * damaged one was written (their hints lie below it): a torn tail, cut. */
static void test_hole_none_mode(void **state)
{
	recpos pos[128];
	char seg[600];
	cqrs_journal_recovery rec;
	uint64_t hint = 44;
	(void)state;

	build_mode(g_dir, 50, 1, 0, CQRS_DURABILITY_NONE, 0);
	positions(g_dir, pos, 128);
	jt_segment(g_dir, -1, seg, sizeof seg);
	/* seq 45 never landed (zeros), 46..50 did */
	{
		uint8_t *img;
		size_t len;
		assert_int_equal(jt_read_file(seg, &img, &len), 0);
		memset(img + pos[44].off, 0, pos[44].span);
		assert_int_equal(jt_write_file(seg, img, len), 0);
		free(img);
	}
	expect_corrupt(g_dir, seg, pos[44].off, 45, "not torn");
	for (int k = 45; k < 50; k++)
		rewrite_record(seg, pos[k].off, set_hint, &hint);
	assert_int_equal(open_mode(g_dir, CQRS_DURABILITY_NONE, 0, &rec), 0);
	assert_int_equal(rec.next_seq, 45);
	assert_int_equal(jt_count_suffix(g_dir, ".torn"), 1);
	assert_int_equal(jt_read_all(g_dir, NULL), 44);
}

/* A real torn tail in `none` mode (the last write cut short, garbage
 * after it) is still cut. */
static void test_torn_tail_none_mode(void **state)
{
	recpos pos[128];
	char seg[600];
	uint8_t *img;
	size_t len;
	cqrs_journal_recovery rec;
	(void)state;

	build_mode(g_dir, 40, 2, 0, CQRS_DURABILITY_NONE, 0);
	positions(g_dir, pos, 128);
	jt_segment(g_dir, -1, seg, sizeof seg);
	assert_int_equal(jt_read_file(seg, &img, &len), 0);
	/* the last command's second record half written, then junk */
	memset(img + pos[39].off + 40, 0, pos[39].span - 40);
	for (int i = 0; i < 64; i++)
		img[pos[39].off + pos[39].span + 8 + (uint64_t)i] = (uint8_t)(i * 37 + 1);
	assert_int_equal(jt_write_file(seg, img, len), 0);
	free(img);
	assert_int_equal(open_mode(g_dir, CQRS_DURABILITY_NONE, 0, &rec), 0);
	assert_int_equal(rec.next_seq, 39); /* the whole command 39..40 */
	assert_true(rec.torn_bytes > 0);
	assert_int_equal(jt_read_all(g_dir, NULL), 38);
}

static void seg_name(char *buf, size_t cap, const char *path)
{
	snprintf(buf, cap, "%s", strrchr(path, '/') + 1);
}

static int nsegs(const char *dir)
{
	char p[600];
	return jt_segment(dir, 0, p, sizeof p);
}

/* Several segments (32 KiB each), crashed or closed. */
static int build_segments(int clean)
{
	tu_rmrf(g_dir);
	build_mode(g_dir, 900, 1, 32u << 10, CQRS_DURABILITY_BATCH, clean);
	int n = nsegs(g_dir);
	assert_true(n >= 5);
	return n;
}

static void check_repair(const char *dir, uint64_t want_next, const char *problem)
{
	cqrs_journal_repair r;

	assert_int_equal(cqrs__journal_repair(dir, &r), 0);
	if (problem && !strstr(r.problem, problem))
		fail_msg("repair found '%s', expected '%s'", r.problem, problem);
	assert_int_equal(r.next_seq, want_next);
	assert_int_equal(open_close(dir, NULL), 0);
	assert_int_equal(jt_read_all(dir, NULL), (int64_t)want_next - 1);
	/* a second repair finds nothing */
	assert_int_equal(cqrs__journal_repair(dir, &r), 0);
	assert_string_equal(r.problem, "");
	assert_false(r.manifest_written);
}

static void test_last_segment_deleted(void **state)
{
	char seg[600], name[40], prev[600];
	(void)state;

	for (int clean = 0; clean < 2; clean++) {
		int n = build_segments(clean);
		jt_segment(g_dir, -1, seg, sizeof seg);
		jt_segment(g_dir, -2, prev, sizeof prev);
		seg_name(name, sizeof name, seg);
		unlink(seg);
		expect_refused(g_dir, name, "is missing");
		print_message("%s\n", cqrs_last_error());
		assert_int_equal(nsegs(g_dir), n - 1); /* nothing was created or cut */
		/* the operator accepts the loss */
		uint64_t first;
		assert_true(cqrs__jseg_parse_name(name, &first));
		check_repair(g_dir, first, name);
	}
}

static void test_first_segment_deleted(void **state)
{
	char seg[600];
	(void)state;

	build_segments(0);
	jt_segment(g_dir, 0, seg, sizeof seg);
	unlink(seg);
	expect_refused(g_dir, "segment 00000000000000000001.seg (from seq 1) is missing", NULL);
	print_message("%s\n", cqrs_last_error());
	/* without the manifest, the second segment's predecessor link names it */
	{
		char man[600];
		jt_path(man, sizeof man, g_dir, JMAN_NAME);
		unlink(man);
		expect_refused(g_dir, "segment 00000000000000000001.seg (from seq 1) is missing", NULL);
	}
	/* the iterator (replay, verify) names it too */
	{
		cqrs_journal_iter *it;
		assert_int_equal(cqrs__journal_iter_open(&it, g_dir, 1), CQRS_ECORRUPT);
		assert_non_null(strstr(cqrs_last_error(), "00000000000000000001.seg"));
	}
	/* repair: nothing from seq 1 is left, so everything goes aside */
	check_repair(g_dir, 1, "00000000000000000001.seg");
	assert_true(jt_count_suffix(g_dir, ".seg.cut") >= 4);
}

static void test_middle_segment_deleted(void **state)
{
	char seg[600], name[40];
	uint64_t first;
	(void)state;

	build_segments(1);
	jt_segment(g_dir, 2, seg, sizeof seg);
	seg_name(name, sizeof name, seg);
	assert_true(cqrs__jseg_parse_name(name, &first));
	unlink(seg);
	expect_refused(g_dir, name, "is missing");
	print_message("%s\n", cqrs_last_error());
	check_repair(g_dir, first, name);
}

/* A durable tail zeroed (the last 16 records): after a clean close the
 * manifest proves them, in batch and interval mode; open refuses and cuts
 * nothing. */
static void test_zeroed_durable_tail(void **state)
{
	static const enum cqrs_durability_mode modes[] = { CQRS_DURABILITY_BATCH, CQRS_DURABILITY_INTERVAL,
						 CQRS_DURABILITY_NONE };
	recpos pos[512];
	char seg[600];
	(void)state;

	for (int k = 0; k < 3; k++) {
		uint8_t *img;
		size_t len;

		tu_rmrf(g_dir);
		build_mode(g_dir, 200, 1, 0, modes[k], 1);
		positions(g_dir, pos, 512);
		jt_segment(g_dir, -1, seg, sizeof seg);
		assert_int_equal(jt_read_file(seg, &img, &len), 0);
		memset(img + pos[184].off, 0, pos[199].off + pos[199].span - pos[184].off);
		assert_int_equal(jt_write_file(seg, img, len), 0);
		free(img);
		expect_refused(g_dir, "seqs 185..200 are missing", "offset");
		print_message("%s: %s\n", mode_name(modes[k]), cqrs_last_error());
		check_repair(g_dir, 185, "ends at seq 184");
	}
	/* interval mode, after a crash: the fsync thread refreshed the
	 * manifest a second in (seq 201 synced), so the zeroed tail is
	 * refused too */
	tu_rmrf(g_dir);
	g_pause_at = 200;
	g_pause_us = 1100000;
	g_end_us = 100000;
	build_mode(g_dir, 202, 1, 0, CQRS_DURABILITY_INTERVAL, 0);
	g_pause_at = g_end_us = 0;
	g_pause_us = 30000;
	positions(g_dir, pos, 512);
	jt_segment(g_dir, -1, seg, sizeof seg);
	{
		uint8_t *img;
		size_t len;
		assert_int_equal(jt_read_file(seg, &img, &len), 0);
		memset(img + pos[184].off, 0, pos[201].off + pos[201].span - pos[184].off);
		assert_int_equal(jt_write_file(seg, img, len), 0);
		free(img);
	}
	expect_refused(g_dir, "seqs 185..", "are missing");
	print_message("interval, crashed: %s\n", cqrs_last_error());
	/* cut from the file instead of zeroed: the same */
	build_segments(1);
	jt_segment(g_dir, -1, seg, sizeof seg);
	assert_int_equal(truncate(seg, 4096), 0);
	expect_refused(g_dir, "are missing", NULL);
}

/* The very last record damaged after a clean close: the manifest proves
 * it was durable, so it is refused rather than cut as a torn write. */
static void test_bitflip_last_record_after_close(void **state)
{
	recpos pos[64];
	char seg[600];
	(void)state;

	build_mode(g_dir, 30, 1, 0, CQRS_DURABILITY_BATCH, 1);
	positions(g_dir, pos, 64);
	jt_segment(g_dir, -1, seg, sizeof seg);
	flip(seg, pos[29].off + 80, 0x01);
	expect_refused(g_dir, "seqs 30..30 are missing", NULL);
}

static void test_manifest_missing(void **state)
{
	char man[600];
	cqrs_journal_recovery rec;
	(void)state;

	build_segments(1);
	jt_path(man, sizeof man, g_dir, JMAN_NAME);
	assert_int_equal(unlink(man), 0);
	expect_refused(g_dir, JMAN_NAME " is missing", "cqrs journal repair");
	check_repair(g_dir, 901, NULL);
	/* one empty segment and no manifest: creation was interrupted */
	tu_rmrf(g_dir);
	assert_int_equal(open_close(g_dir, NULL), 0);
	assert_int_equal(unlink(man), 0);
	assert_int_equal(open_close(g_dir, &rec), 0);
	assert_true(rec.manifest_built);
	assert_int_equal(access(man, F_OK), 0);
	/* a manifest without any segment: every segment is missing */
	jt_segment(g_dir, 0, man, sizeof man);
	unlink(man);
	expect_refused(g_dir, "00000000000000000001.seg (from seq 1) is missing", NULL);
}

/* Rewrites every segment header as format version 1 (no predecessor
 * link), as a writer from before manifests left it. */
static void make_v1(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	uint64_t *segs;
	int n = cqrs__jseg_list(dfd, &segs);

	for (int i = 0; i < n; i++) {
		char name[32], p[600];
		uint8_t *img;
		size_t len;
		jseg_header h;

		cqrs__jseg_name(name, sizeof name, segs[i]);
		jt_path(p, sizeof p, dir, name);
		assert_int_equal(jt_read_file(p, &img, &len), 0);
		memcpy(&h, img, sizeof h);
		h.version = 1;
		h.prev_first_seq = 0;
		memcpy(img, &h, sizeof h);
		{
			XXH3_state_t st;
			XXH3_64bits_reset(&st);
			XXH3_64bits_update(&st, img, offsetof(jseg_header, checksum));
			XXH3_64bits_update(&st, img + JSEG_FIXED, h.schema_bytes);
			h.checksum = XXH3_64bits_digest(&st);
		}
		memcpy(img + offsetof(jseg_header, checksum), &h.checksum, 8);
		assert_int_equal(jt_write_file(p, img, len), 0);
		free(img);
	}
	free(segs);
	close(dfd);
}

static int g_warned;

static void count_warn(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level == CQRS_LOG_WARN && strstr(msg, "before manifests"))
		g_warned++;
}

/* A journal from before manifests (version 1 segments, no MANIFEST) opens,
 * with a warning, and gets one; new segments are version 2 and link to
 * the old ones. */
static void test_manifest_legacy(void **state)
{
	char man[600], seg[600];
	cqrs_journal_config c;
	cqrs_journal_recovery rec;
	cqrs_journal *j;
	int n;
	(void)state;

	n = build_segments(1);
	jt_path(man, sizeof man, g_dir, JMAN_NAME);
	unlink(man);
	make_v1(g_dir);
	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 32u << 10;
	c.log = count_warn;
	g_warned = 0;
	assert_int_equal(cqrs__journal_open(&j, &c, &rec), 0);
	assert_true(rec.manifest_built);
	assert_int_equal(g_warned, 1);
	assert_int_equal(jt_append(j, 300, 3, 1, NULL), 0);
	assert_int_equal(cqrs__journal_close(j), 0);
	assert_true(nsegs(g_dir) > n);
	assert_int_equal(access(man, F_OK), 0);
	assert_int_equal(open_close(g_dir, NULL), 0);
	assert_int_equal(jt_read_all(g_dir, NULL), 1200);
	/* the old segments are still detected missing: the newest one, via
	 * the manifest; an old one by the v2 successor's link */
	jt_segment(g_dir, n - 1, seg, sizeof seg); /* the last v1 segment */
	unlink(seg);
	expect_refused(g_dir, strrchr(seg, '/') + 1, "is missing");
}

static void test_manifest_damaged(void **state)
{
	char man[600];
	(void)state;

	build_segments(1);
	jt_path(man, sizeof man, g_dir, JMAN_NAME);
	flip(man, 60, 0x01);
	expect_refused(g_dir, JMAN_NAME, "checksum");
	check_repair(g_dir, 901, JMAN_NAME);
	assert_int_equal(truncate(man, 100), 0);
	expect_refused(g_dir, JMAN_NAME, NULL);
	check_repair(g_dir, 901, JMAN_NAME);
}

/* The operator accepts a bit flip's loss: the cut starts at the damaged
 * record, its bytes are kept in the .cut file, later segments move aside. */
static void test_repair_bitflip(void **state)
{
	static recpos pos[2048];
	char seg[600], cutp[700];
	cqrs_journal_repair r;
	uint8_t *img, *cut;
	size_t len, clen;
	int np, nseg, at;
	(void)state;

	nseg = build_segments(1);
	np = positions(g_dir, pos, 2048);
	jt_segment(g_dir, 1, seg, sizeof seg);
	at = -1;
	for (int k = 0; k < np && at < 0; k++)
		if (!strcmp(pos[k].seg, strrchr(seg, '/') + 1))
			at = k + 5;
	assert_int_equal(jt_read_file(seg, &img, &len), 0);
	flip(seg, pos[at].off + 100, 0x40);
	assert_int_equal(cqrs__journal_repair(g_dir, &r), 0);
	print_message("found: %s\n", r.problem);
	assert_int_equal(r.next_seq, pos[at].seq);
	assert_int_equal(r.cut_from_seq, pos[at].seq);
	assert_int_equal(r.cut_offset, pos[at].off);
	assert_int_equal(r.segments_moved, (uint32_t)nseg - 2);
	jt_path(cutp, sizeof cutp, g_dir, r.cut_file);
	assert_int_equal(jt_read_file(cutp, &cut, &clen), 0);
	assert_int_equal(clen, r.cut_bytes);
	assert_true(clen > pos[at].span);
	assert_memory_equal(cut + pos[at].span, img + pos[at].off + pos[at].span, clen - pos[at].span);
	free(cut);
	free(img);
	assert_int_equal(open_close(g_dir, NULL), 0);
	assert_int_equal(jt_read_all(g_dir, NULL), (int64_t)pos[at].seq - 1);
	/* a running writer keeps repair out */
	{
		cqrs_journal_config c;
		cqrs_journal *j;
		jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
		assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
		assert_int_equal(cqrs__journal_repair(g_dir, &r), -EBUSY);
		assert_int_equal(cqrs__journal_close(j), 0);
	}
}

/* The engine's check against other witnesses (a view's applied seq). */
static void test_check_seen(void **state)
{
	cqrs_journal_config c;
	cqrs_journal *j;
	(void)state;

	build_groups(g_dir, 50, 1, 0);
	jt_config(&c, g_dir, CQRS_DURABILITY_BATCH);
	assert_int_equal(cqrs__journal_open(&j, &c, NULL), 0);
	assert_int_equal(cqrs__journal_check_seen(j, 0, "view orders"), 0);
	assert_int_equal(cqrs__journal_check_seen(j, 50, "view orders"), 0);
	assert_int_equal(cqrs__journal_check_seen(j, 4153, "view orders"), CQRS_ECORRUPT);
	assert_non_null(strstr(cqrs_last_error(), "view orders has seq 4153"));
	assert_non_null(strstr(cqrs_last_error(), "seqs 51..4153 are missing"));
	assert_int_equal(cqrs__journal_close(j), 0);
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
		cmocka_unit_test_setup_teardown(test_bitflip_every_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hole_none_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_none_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_segment_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_segment_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_middle_segment_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zeroed_durable_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bitflip_last_record_after_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_legacy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_bitflip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_seen, setup, teardown),
	};
	if (getenv("CQRS_TEST_FILTER")) /* run only the tests matching it */
		cmocka_set_test_filter(getenv("CQRS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
