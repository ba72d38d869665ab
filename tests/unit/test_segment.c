/*
 * tests/unit/test_segment.c - segment lifecycle and validation: names,
 * permissions whatever the umask, live/stale/foreign names on create, owner
 * liveness, a creator killed before its seal, empty leftovers, retire
 * marks, truncated segments, wrong magic/version/checksum, every byte of
 * the immutable header flipped, resealed headers with inconsistent layouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "shm/segment.h"
#include "shm/view_format.h"
#include "shm/view_internal.h"
#include "tests/lib/testutil.h"
#include "tests/unit/test_view_rows.h"

static void test_names(void **state)
{
	char out[CQRS_SEG_NAME_MAX];
	(void)state;

	assert_int_equal(cqrs__seg_name_ctl(out, sizeof out, "orders"), 0);
	assert_string_equal(out, "/cqrs.orders.ctl");
	assert_int_equal(cqrs__seg_name_board(out, sizeof out, "orders"), 0);
	assert_string_equal(out, "/cqrs.orders.wait");
	assert_int_equal(cqrs__seg_name_view(out, sizeof out, "orders", "order_summaries", 3), 0);
	assert_string_equal(out, "/cqrs.orders.v.order_summaries.3");
	assert_int_equal(cqrs__seg_name_ctl(out, sizeof out, "a/b"), -EINVAL);
	assert_int_equal(cqrs__seg_name_ctl(out, sizeof out, "a.b"), -EINVAL);
	assert_int_equal(cqrs__seg_name_ctl(out, sizeof out, ""), -EINVAL);
	assert_int_equal(cqrs__seg_name_ctl(out, sizeof out, NULL), -EINVAL);
	assert_int_equal(cqrs__seg_name_ctl(out, sizeof out, "0123456789012345678901234567890123"),
			 -EINVAL);
	assert_int_equal(cqrs__seg_name_view(out, sizeof out, "e", "v-1", 1), -EINVAL);
	assert_int_equal(cqrs__seg_name_view(out, 10, "engine", "view", 1), -EINVAL);
}

static void test_owner_liveness(void **state)
{
	uint64_t self = cqrs__seg_self_owner(), ticks;
	int zombie;
	pid_t pid;
	(void)state;

	assert_int_equal(cqrs__seg_owner_pid(self), (uint32_t)getpid());
	assert_true(cqrs__seg_owner_alive(self));
	assert_false(cqrs__seg_owner_alive(0));
	/* same pid, other start time: a reused pid is not our owner */
	assert_false(cqrs__seg_owner_alive(self + (UINT64_C(1) << 22)));
	assert_int_equal(cqrs__seg_proc_start((uint32_t)getpid(), &ticks, &zombie), 0);
	assert_true(ticks == self >> 22 && !zombie);
	/* a child that exited: zombie first, then gone */
	pid = fork();
	if (pid == 0)
		_exit(0);
	assert_true(pid > 0);
	while (cqrs__seg_proc_start((uint32_t)pid, &ticks, &zombie) == 0 && !zombie)
		usleep(1000);
	assert_false(cqrs__seg_owner_alive((uint64_t)pid | ticks << 22));
	waitpid(pid, NULL, 0);
	assert_false(cqrs__seg_owner_alive((uint64_t)pid | ticks << 22));
}

static void make_sealed(cqrs_seg *s, const char *name, unsigned mode)
{
	assert_int_equal(cqrs__seg_create(s, name, 8192, mode), 0);
	cqrs__seg_init_header(s, CQRS_SEG_CONTROL, "tseg", NULL, 0);
	cqrs__seg_seal(s);
}

static void test_create_mode_umask(void **state)
{
	char name[96];
	cqrs_seg s, r;
	struct stat st;
	int fd;
	mode_t old = umask(0);
	(void)state;

	snprintf(name, sizeof name, "/cqrs.tseg_%d.ctl", (int)getpid());
	make_sealed(&s, name, 0);
	fd = shm_open(name, O_RDONLY, 0);
	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	close(fd);
	/* open read-only validates the header; a wrong kind is refused */
	assert_int_equal(cqrs__seg_open(&r, name, CQRS_SEG_CONTROL, 0), 0);
	assert_int_equal(r.size, 8192);
	assert_false(r.writable);
	cqrs__seg_close(&r);
	assert_int_equal(cqrs__seg_open(&r, name, CQRS_SEG_VIEW, 0), CQRS_EFORMAT);
	/* a live owner's name is refused */
	assert_int_equal(cqrs__seg_create(&r, name, 8192, 0), -EEXIST);
	assert_int_equal(cqrs__seg_remove_stale(name), -EEXIST);
	cqrs__seg_close(&s);
	assert_int_equal(cqrs__seg_unlink(name), 0);

	/* an explicit mode, and a restrictive umask does not narrow it */
	umask(077);
	make_sealed(&s, name, 0604);
	fd = shm_open(name, O_RDONLY, 0);
	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	assert_int_equal(st.st_mode & 07777, 0604);
	close(fd);
	cqrs__seg_close(&s);
	assert_int_equal(cqrs__seg_unlink(name), 0);
	umask(old);
	assert_int_equal(cqrs__seg_open(&r, name, CQRS_SEG_CONTROL, 0), -ENOENT);
}

static void test_stale_and_foreign(void **state)
{
	char name[96];
	cqrs_seg s, r;
	pid_t pid;
	int fd;
	(void)state;

	snprintf(name, sizeof name, "/cqrs.tstale_%d.ctl", (int)getpid());
	make_sealed(&s, name, 0);
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	/* as if a dead process owned it */
	atomic_store(&cqrs__seg_live_line(&s)->owner, (uint64_t)pid | UINT64_C(12345) << 22);
	assert_int_equal(cqrs__seg_create(&r, name, 8192, 0), CQRS_ESTALE);
	assert_int_equal(cqrs__seg_remove_stale(name), 0);
	/* readers still mapping it see it retired */
	assert_true(atomic_load(&cqrs__seg_live_line(&s)->flags) & CQRS_SEG_RETIRED);
	cqrs__seg_close(&s);
	assert_int_equal(cqrs__seg_remove_stale(name), -ENOENT);
	make_sealed(&s, name, 0);
	cqrs__seg_close(&s);
	assert_int_equal(cqrs__seg_unlink(name), 0);

	/* a foreign file under our name */
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello, not a segment", 20), 20);
	assert_int_equal(cqrs__seg_open(&r, name, CQRS_SEG_CONTROL, 0), CQRS_EFORMAT);
	assert_int_equal(cqrs__seg_create(&r, name, 8192, 0), CQRS_EFORMAT);
	assert_int_equal(ftruncate(fd, 65536), 0);
	assert_int_equal(cqrs__seg_open(&r, name, CQRS_SEG_CONTROL, 0), CQRS_EFORMAT);
	assert_int_equal(cqrs__seg_create(&r, name, 8192, 0), CQRS_EFORMAT);
	assert_int_equal(cqrs__seg_remove_stale(name), CQRS_EFORMAT);
	close(fd);
	assert_int_equal(cqrs__seg_unlink(name), 0);
}

/* A small real view segment copied into an aligned buffer. */
static void *view_image(const char *engine, size_t *len, char *segname)
{
	cqrs_ctl *ctl;
	cqrs_vw *w;
	cqrs_seg s;
	void *img;
	trow r;

	assert_int_equal(tview_setup(engine, 8, &ctl, &w), 0);
	assert_int_equal(cqrs__vw_begin(w), 0);
	for (uint64_t i = 1; i <= 5; i++) {
		trow_fill(&r, i, i % 2, 1);
		assert_int_equal(cqrs__vw_upsert(w, &r), 0);
	}
	assert_int_equal(cqrs__vw_end(w, 1), 0);
	strcpy(segname, cqrs__vw_segment_name(w));
	assert_int_equal(cqrs__seg_open(&s, segname, CQRS_SEG_VIEW, 0), 0);
	img = aligned_alloc(64, s.size);
	memcpy(img, s.base, s.size);
	*len = s.size;
	cqrs__seg_close(&s);
	cqrs__vw_close(w); /* segment stays for the truncation test */
	cqrs__ctl_close(ctl);
	return img;
}

static void reseal(uint8_t *img)
{
	uint64_t sum = XXH3_64bits(img, CQRS_SEG_IMM_SIZE - 8);
	memcpy(img + CQRS_SEG_IMM_SIZE - 8, &sum, 8);
}

static int check_img(const uint8_t *img, size_t len)
{
	cqrs_vparams p;
	cqrs_schema s;
	uint8_t imm[CQRS_SEG_IMM_SIZE];
	return cqrs__view_check(img, len, &p, &s, imm);
}

static int shm_exists(const char *name)
{
	int fd = shm_open(name, O_RDONLY, 0);

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* How many names in /dev/shm start with prefix (without the '/'). */
static int count_prefix(const char *prefix)
{
	char cmd[256], buf[32];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof cmd, "ls /dev/shm | grep -c '^%s' || true", prefix);
	f = popen(cmd, "r");
	if (f && fgets(buf, sizeof buf, f))
		n = atoi(buf);
	if (f)
		pclose(f);
	return n;
}

/* A creator killed at any point before its seal leaves no segment under
 * the real name, only a private name that the sweep removes. */
static void test_killed_creator(void **state)
{
	char engine[48], name[96], prefix[64];
	cqrs_seg s, r;
	pid_t pid;
	int status;
	(void)state;

	snprintf(engine, sizeof engine, "tkill_%d", (int)getpid());
	snprintf(name, sizeof name, "/cqrs.%s.ctl", engine);
	snprintf(prefix, sizeof prefix, "cqrs.%s.", engine);
	/* while being created it has no name readers could open */
	assert_int_equal(cqrs__seg_create(&s, name, 8192, 0), 0);
	assert_false(shm_exists(name));
	assert_int_equal(count_prefix(prefix), 1);
	assert_int_equal(cqrs__seg_open(&r, name, CQRS_SEG_CONTROL, 0), -ENOENT);
	/* the live creator's private name is not swept */
	assert_int_equal(cqrs__seg_sweep_unfinished(engine), 0);
	cqrs__seg_init_header(&s, CQRS_SEG_CONTROL, engine, NULL, 0);
	assert_int_equal(cqrs__seg_seal(&s), 0);
	assert_true(shm_exists(name));
	assert_int_equal(count_prefix(prefix), 1);
	assert_int_equal(cqrs__seg_open(&r, name, CQRS_SEG_CONTROL, 0), 0);
	cqrs__seg_close(&r);
	cqrs__seg_close(&s);
	assert_int_equal(cqrs__seg_unlink(name), 0);

	/* created, then the creator dies before sealing (as kill -9 would) */
	pid = fork();
	if (pid == 0) {
		cqrs_seg c;
		_exit(cqrs__seg_create(&c, name, 1 << 20, 0) == 0 ? 0 : 1);
	}
	assert_true(pid > 0 && waitpid(pid, &status, 0) == pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_false(shm_exists(name));
	assert_int_equal(count_prefix(prefix), 1);
	/* the next creator is not stopped by it, and the sweep removes it */
	make_sealed(&s, name, 0);
	assert_int_equal(cqrs__seg_sweep_unfinished(engine), 1);
	assert_int_equal(count_prefix(prefix), 1);
	cqrs__seg_close(&s);
	assert_int_equal(cqrs__seg_unlink(name), 0);

	/* an unsealed segment closed by its creator leaves nothing */
	assert_int_equal(cqrs__seg_create(&s, name, 8192, 0), 0);
	cqrs__seg_close(&s);
	assert_int_equal(count_prefix(prefix), 0);

	/* the seal refuses a name another creator took meanwhile */
	assert_int_equal(cqrs__seg_create(&s, name, 8192, 0), 0);
	make_sealed(&r, name, 0);
	cqrs__seg_init_header(&s, CQRS_SEG_CONTROL, engine, NULL, 0);
	assert_int_equal(cqrs__seg_seal(&s), -EEXIST);
	cqrs__seg_close(&s);
	assert_int_equal(cqrs__seg_open(&s, name, CQRS_SEG_CONTROL, 0), 0);
	assert_ptr_not_equal(s.base, NULL); /* the winner's segment is untouched */
	assert_int_equal(memcmp(s.imm, r.imm, CQRS_SEG_IMM_SIZE), 0);
	cqrs__seg_close(&s);
	cqrs__seg_close(&r);
	assert_int_equal(cqrs__seg_unlink(name), 0);
	assert_int_equal(count_prefix(prefix), 0);
}

/* What an interrupted creation of older builds left under the real name
 * (size 0, or a zeroed header) is this user's and empty: stale, replaced.
 * A file with anything in it stays foreign. */
static void test_empty_leftover(void **state)
{
	char name[96];
	cqrs_seg s;
	int fd;
	(void)state;

	snprintf(name, sizeof name, "/cqrs.tempty_%d.wait", (int)getpid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(cqrs__seg_create(&s, name, 8192, 0), CQRS_ESTALE);
	assert_int_equal(cqrs__seg_remove_stale(name), 0);
	assert_false(shm_exists(name));
	close(fd);

	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0 && ftruncate(fd, 65536) == 0);
	assert_int_equal(cqrs__seg_create(&s, name, 8192, 0), CQRS_ESTALE);
	assert_int_equal(cqrs__seg_remove_stale(name), 0);
	close(fd);
	make_sealed(&s, name, 0);
	cqrs__seg_close(&s);
	assert_int_equal(cqrs__seg_unlink(name), 0);

	/* one byte of content: foreign */
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0 && ftruncate(fd, 65536) == 0);
	assert_int_equal(pwrite(fd, "x", 1, 700), 1);
	assert_int_equal(cqrs__seg_create(&s, name, 8192, 0), CQRS_EFORMAT);
	assert_int_equal(cqrs__seg_remove_stale(name), CQRS_EFORMAT);
	close(fd);
	assert_int_equal(cqrs__seg_unlink(name), 0);
}

/* remove_stale marks what readers map RETIRED | ORPHANED, whatever the
 * kind; remove_unused also takes this process's own segments. */
static void test_remove_marks_orphaned(void **state)
{
	char name[96];
	cqrs_seg s, r;
	(void)state;

	snprintf(name, sizeof name, "/cqrs.torph_%d.ctl", (int)getpid());
	make_sealed(&s, name, 0);
	assert_int_equal(cqrs__seg_open(&r, name, CQRS_SEG_CONTROL, 0), 0);
	assert_int_equal(cqrs__seg_remove_stale(name), -EEXIST); /* we own it, alive */
	assert_int_equal(cqrs__seg_remove_unused(name), 0);
	assert_false(shm_exists(name));
	assert_int_equal(atomic_load(&cqrs__seg_live_line(&r)->flags) &
			 (CQRS_SEG_RETIRED | CQRS_SEG_ORPHANED), CQRS_SEG_RETIRED | CQRS_SEG_ORPHANED);
	cqrs__seg_close(&r);
	cqrs__seg_close(&s);
	assert_int_equal(cqrs__seg_remove_unused(name), -ENOENT);
}

static void test_bad_headers(void **state)
{
	char engine[64], segname[CQRS_SEG_NAME_MAX], ctlname[CQRS_SEG_NAME_MAX];
	size_t len;
	uint8_t *img, *bad;
	cqrs_view *v;
	int rc;
	(void)state;

	tu_unique_name(engine, sizeof engine, "tbad");
	img = view_image(engine, &len, segname);
	bad = aligned_alloc(64, len);
	assert_int_equal(check_img(img, len), 0);
	assert_int_equal(cqrs__view_attach_image(img, len, &v), 0);
	cqrs_view_close(v);

	/* wrong magic, other format version, other kind: not ours */
	memcpy(bad, img, len); bad[0] ^= 0xff;
	assert_int_equal(check_img(bad, len), CQRS_EFORMAT);
	memcpy(bad, img, len); bad[8] = 99; reseal(bad);
	assert_int_equal(check_img(bad, len), CQRS_EFORMAT);
	memcpy(bad, img, len); bad[12] = CQRS_SEG_CONTROL; reseal(bad);
	assert_int_equal(check_img(bad, len), CQRS_EFORMAT);
	/* checksum */
	memcpy(bad, img, len); bad[200] ^= 1;
	assert_int_equal(check_img(bad, len), CQRS_ECORRUPT);
	/* every single byte of the immutable block, flipped: refused, no crash */
	for (size_t i = 0; i < CQRS_SEG_IMM_SIZE; i++) {
		memcpy(bad, img, len);
		bad[i] ^= 0x5a;
		assert_true(check_img(bad, len) < 0);
	}
	/* resealed parameter changes that a checksum cannot catch */
	for (size_t off = CQRS_VPARAMS_OFF; off < CQRS_VPARAMS_OFF + sizeof(cqrs_vparams); off++) {
		memcpy(bad, img, len);
		bad[off] ^= 0x01;
		reseal(bad);
		assert_true(check_img(bad, len) < 0);
		memcpy(bad, img, len);
		bad[off] ^= 0x80;
		reseal(bad);
		assert_true(check_img(bad, len) < 0);
	}
	/* the schema blob region */
	{
		cqrs_vparams p;
		memcpy(&p, img + CQRS_VPARAMS_OFF, sizeof p);
		memcpy(bad, img, len);
		bad[p.schema_off + 30] ^= 1;
		assert_int_equal(check_img(bad, len), CQRS_ECORRUPT);
	}
	/* every shorter length */
	for (size_t l = 0; l < len; l += (l < 4096 ? 1 : 977))
		assert_true(check_img(img, l) < 0);

	/* a truncated segment on /dev/shm: refused at open, never SIGBUS */
	{
		int fd = shm_open(segname, O_RDWR, 0);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (off_t)len - 1024), 0);
		close(fd);
		rc = cqrs_view_open(engine, "orders", &v);
		print_message("%s\n", cqrs_last_error());
		assert_int_equal(rc, CQRS_ECORRUPT);
		fd = shm_open(segname, O_RDWR, 0);
		assert_int_equal(ftruncate(fd, 100), 0);
		close(fd);
		assert_int_equal(cqrs_view_open(engine, "orders", &v), CQRS_ECORRUPT);
		print_message("%s\n", cqrs_last_error());
		assert_null(v);
	}
	assert_int_equal(cqrs__seg_unlink(segname), 0);
	cqrs__seg_name_ctl(ctlname, sizeof ctlname, engine);
	assert_int_equal(cqrs__seg_unlink(ctlname), 0);
	assert_int_equal(tview_shm_count(engine), 0);
	free(bad);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_owner_liveness),
		cmocka_unit_test(test_create_mode_umask),
		cmocka_unit_test(test_stale_and_foreign),
		cmocka_unit_test(test_killed_creator),
		cmocka_unit_test(test_empty_leftover),
		cmocka_unit_test(test_remove_marks_orphaned),
		cmocka_unit_test(test_bad_headers),
	};
	return cmocka_run_group_tests(tests, NULL, tview_group_cleanup);
}
