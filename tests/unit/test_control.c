/*
 * tests/unit/test_control.c - the engine's control segment: state, view
 * directory, command schemas, reserved regions, names already taken,
 * read-only mappings for readers, cleanup; readers of an orphaned
 * generation, the sweep of unfinished creations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/control.h"
#include "tests/lib/testutil.h"
#include "tests/unit/test_view_rows.h"

#define CMD_A_FIELDS(F) F(u64, order_id) F(u64, customer_id) F(u32, item_count) F(u32, pad) F(i64, total)
CQRS_RECORD(cmd_a, "CreateOrder", CMD_A_FIELDS)
#define CMD_B_FIELDS(F) F(u64, order_id)
CQRS_RECORD(cmd_b, "ShipOrder", CMD_B_FIELDS)

static cqrs_ctl_view entry(const char *name, uint64_t gen)
{
	cqrs_ctl_view e;
	memset(&e, 0, sizeof e);
	strcpy(e.name, name);
	e.generation = gen;
	e.schema_hash = 0x1234;
	return e;
}

static void test_directory_and_state(void **state)
{
	char engine[64];
	cqrs_ctl *c, *r;
	cqrs_ctl_info info;
	cqrs_ctl_view e;
	cqrs_ctl_config cfg = { 0 };
	uint32_t slot;
	(void)state;

	tu_unique_name(engine, sizeof engine, "tctl");
	cfg.max_views = 3;
	assert_int_equal(cqrs__ctl_create(engine, &cfg, &c), 0);
	assert_int_equal(cqrs__ctl_create(engine, &cfg, &r), -EEXIST); /* live engine */
	assert_int_equal(cqrs__ctl_remove_stale(engine), -EEXIST);
	assert_int_equal(cqrs__ctl_open(engine, &r), 0);

	assert_int_equal(cqrs__ctl_info_get(r, &info), 0);
	assert_int_equal(info.state, CQRS_ENGINE_STARTING);
	assert_int_equal(info.owner_pid, (uint32_t)getpid());
	assert_true(info.owner_alive);
	assert_int_equal(info.nviews, 0);
	assert_int_equal(info.max_views, 3);

	e = entry("a", 1);
	assert_int_equal(cqrs__ctl_add_view(c, &e, &slot), 0);
	assert_int_equal(slot, 0);
	assert_int_equal(cqrs__ctl_add_view(c, &e, &slot), -EEXIST);
	e = entry("b", 0);
	assert_int_equal(cqrs__ctl_add_view(c, &e, &slot), 0);
	e = entry("c", 4);
	assert_int_equal(cqrs__ctl_add_view(c, &e, &slot), 0);
	e = entry("d", 1);
	assert_int_equal(cqrs__ctl_add_view(c, &e, &slot), CQRS_EFULL);
	e = entry("bad-name", 1);
	assert_int_equal(cqrs__ctl_add_view(c, &e, &slot), -EINVAL);
	assert_int_equal(cqrs__ctl_add_view(r, &e, &slot), -EINVAL); /* readers cannot */

	assert_int_equal(cqrs__ctl_view_count(r), 3);
	assert_int_equal(cqrs__ctl_find_view(r, "b", &e, &slot), 0);
	assert_int_equal(slot, 1);
	assert_int_equal(e.generation, 0);
	assert_int_equal(cqrs__ctl_set_generation(c, 1, 2, 0xabc, 100, 64), 0);
	assert_int_equal(cqrs__ctl_view_at(r, 1, &e), 0);
	assert_string_equal(e.name, "b");
	assert_int_equal(e.generation, 2);
	assert_int_equal(e.schema_hash, 0xabc);
	assert_int_equal(e.capacity, 100);
	assert_int_equal(cqrs__ctl_find_view(r, "zz", &e, &slot), CQRS_ENOTFOUND);
	assert_int_equal(cqrs__ctl_view_at(r, 3, &e), CQRS_ENOTFOUND);

	assert_int_equal(cqrs__ctl_publish(c), 0);
	cqrs__ctl_info_get(r, &info);
	assert_int_equal(info.state, CQRS_ENGINE_RUNNING);
	assert_true(info.dir_version >= 4);
	assert_int_equal(cqrs__ctl_set_state(c, 9), -EINVAL);
	assert_int_equal(cqrs__ctl_set_state(r, CQRS_ENGINE_STOPPED), -EINVAL);

	cqrs__ctl_close(r);
	assert_int_equal(tview_shm_count(engine), 1); /* the control segment alone */
	cqrs__ctl_destroy(c);
	assert_int_equal(tview_shm_count(engine), 0);
	assert_int_equal(cqrs__ctl_open(engine, &r), -ENOENT);
	assert_null(r);
}

static void test_command_schemas(void **state)
{
	char engine[64];
	cqrs_ctl *c, *r;
	cqrs_ctl_config cfg = { 0 };
	cqrs_schema s;
	(void)state;

	tu_unique_name(engine, sizeof engine, "tcmd");
	cfg.cmd_size = 256;
	assert_int_equal(cqrs__ctl_create(engine, &cfg, &c), 0);
	assert_int_equal(cqrs__ctl_open(engine, &r), 0);
	assert_int_equal(cqrs__ctl_command_count(r), 0);
	assert_int_equal(cqrs__ctl_add_command_schema(c, cmd_a_schema()), 0);
	assert_int_equal(cqrs__ctl_add_command_schema(c, cmd_a_schema()), -EEXIST);
	assert_int_equal(cqrs__ctl_add_command_schema(c, cmd_b_schema()), 0);
	assert_int_equal(cqrs__ctl_add_command_schema(c, trow_schema()), CQRS_EFULL); /* 256 bytes */
	assert_int_equal(cqrs__ctl_command_count(r), 2);
	assert_int_equal(cqrs__ctl_command_schema(r, 0, &s), 0);
	assert_true(cqrs_schema_hash(&s) == cqrs_schema_hash(cmd_a_schema()));
	assert_int_equal(cqrs__ctl_command_schema(r, 1, &s), 0);
	assert_string_equal(s.name, "ShipOrder");
	assert_int_equal(cqrs__ctl_command_schema(r, 2, &s), CQRS_ENOTFOUND);
	cqrs__ctl_close(r);
	cqrs__ctl_destroy(c);
	assert_int_equal(tview_shm_count(engine), 0);
}

/* The permissions of the mapping that holds addr, from /proc/self/maps. */
static const char *map_perms(const void *addr)
{
	static char perms[8];
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	strcpy(perms, "?");
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char pr[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, pr) == 3 && (uintptr_t)addr >= lo &&
		    (uintptr_t)addr < hi) {
			strcpy(perms, pr);
			break;
		}
	}
	if (f)
		fclose(f);
	return perms;
}

static void test_regions_read_only(void **state)
{
	char engine[64];
	cqrs_ctl *c, *r;
	uint64_t size;
	uint8_t *p, *q;
	(void)state;

	tu_unique_name(engine, sizeof engine, "treg");
	assert_int_equal(cqrs__ctl_create(engine, NULL, &c), 0);
	assert_int_equal(cqrs__ctl_open(engine, &r), 0);
	p = cqrs__ctl_region(c, CQRS_CTL_COUNTERS, &size);
	assert_int_equal(size, CQRS_CTL_DEFAULT_COUNTERS);
	q = cqrs__ctl_region(r, CQRS_CTL_COUNTERS, &size);
	p[10] = 7; /* the engine's mapping is writable ... */
	assert_int_equal(q[10], 7);
	p = cqrs__ctl_region(c, CQRS_CTL_GATEWAY, &size);
	assert_int_equal(size, CQRS_CTL_DEFAULT_GATEWAY);
	assert_int_equal(p[size - 1], 0);
	assert_null(cqrs__ctl_region(c, 99, &size));
	/* ... a reader's is not: its mapping has no write permission (checked
	 * in /proc/self/maps rather than by faulting, which sanitizers trap) */
	assert_string_equal(map_perms(q), "r--s");
	assert_string_equal(map_perms(p), "rw-s");
	cqrs__ctl_close(r);
	cqrs__ctl_destroy(c);
	assert_int_equal(tview_shm_count(engine), 0);
}

static void test_stale_engine(void **state)
{
	char engine[64];
	cqrs_ctl *c, *r;
	cqrs_ctl_info info;
	int status;
	pid_t pid;
	(void)state;

	tu_unique_name(engine, sizeof engine, "tdead");
	pid = fork();
	if (pid == 0) { /* an engine that dies without cleaning up */
		cqrs_ctl *x;
		_exit(cqrs__ctl_create(engine, NULL, &x) == 0 && cqrs__ctl_publish(x) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(cqrs__ctl_open(engine, &r), 0);
	cqrs__ctl_info_get(r, &info);
	assert_false(info.owner_alive);
	assert_int_equal(info.state, CQRS_ENGINE_RUNNING);
	assert_int_equal(cqrs__ctl_create(engine, NULL, &c), CQRS_ESTALE);
	assert_int_equal(cqrs__ctl_remove_stale(engine), 0);
	cqrs__ctl_info_get(r, &info);
	assert_true(info.retired); /* the old mapping says it was replaced */
	cqrs__ctl_close(r);
	assert_int_equal(cqrs__ctl_create(engine, NULL, &c), 0);
	cqrs__ctl_destroy(c);
	assert_int_equal(tview_shm_count(engine), 0);
}

/* A reader on a generation that a restarted engine orphaned: it moves to
 * the directory's generation at its next call; while there is none it
 * answers CQRS_ESTALE (get, find, scan, wait) and applied_seq 0, never the
 * orphaned copy. */
static void test_orphaned_generation(void **state)
{
	char engine[64], g1[CQRS_SEG_NAME_MAX];
	cqrs_vw_config cfg = { 0 };
	cqrs_ctl *c;
	cqrs_vw *w, *w2;
	cqrs_view *v, *v2;
	uint64_t id = 1;
	trow row;
	(void)state;

	tu_unique_name(engine, sizeof engine, "torph");
	assert_int_equal(tview_setup(engine, 16, &c, &w), 0);
	trow_fill(&row, 1, 1, 1);
	assert_int_equal(cqrs__vw_begin(w), 0);
	assert_int_equal(cqrs__vw_upsert(w, &row), 0);
	assert_int_equal(cqrs__vw_end(w, 5), 0);
	assert_int_equal(cqrs_view_open(engine, "orders", &v), 0);
	assert_int_equal(cqrs_view_get(v, &id, 8, &row, sizeof row), 0);
	assert_int_equal(cqrs_view_applied_seq(v), 5);

	/* orphaned, and no generation to move to (the directory still names it) */
	strcpy(g1, cqrs__vw_segment_name(w));
	assert_int_equal(cqrs__seg_remove_unused(g1), 0);
	assert_int_equal(cqrs_view_get(v, &id, 8, &row, sizeof row), CQRS_ESTALE);
	usleep(2000);
	assert_int_equal(cqrs_view_applied_seq(v), 0);
	usleep(2000);
	assert_int_equal(cqrs_view_wait(v, 5, 1000000), CQRS_ESTALE);
	/* the directory names it, but it is gone: an open gives up */
	assert_int_equal(cqrs_view_open(engine, "orders", &v2), -ENOENT);
	assert_null(v2);

	/* the current generation appears: the handle moves by itself */
	cfg.schema = trow_schema();
	cfg.key_field = "order_id";
	cfg.secondary[0] = "customer_id";
	cfg.capacity = 16;
	assert_int_equal(cqrs__vw_create(c, "orders", &cfg, &w2), 0);
	trow_fill(&row, 2, 1, 1);
	assert_int_equal(cqrs__vw_begin(w2), 0);
	assert_int_equal(cqrs__vw_upsert(w2, &row), 0);
	assert_int_equal(cqrs__vw_end(w2, 3), 0);
	assert_int_equal(cqrs__vw_publish(w2), 0);
	usleep(2000);
	assert_int_equal(cqrs_view_wait(v, 3, 1000000000), 0);
	assert_int_equal(cqrs_view_generation(v), 2);
	id = 2;
	assert_int_equal(cqrs_view_get(v, &id, 8, &row, sizeof row), 0);
	id = 1; /* the orphaned copy's row is not what the current one shows */
	assert_int_equal(cqrs_view_get(v, &id, 8, &row, sizeof row), CQRS_ENOTFOUND);
	assert_int_equal(cqrs_view_open(engine, "orders", &v2), 0);
	assert_int_equal(cqrs_view_generation(v2), 2);
	cqrs_view_close(v2);
	cqrs_view_close(v);
	cqrs__vw_close(w);
	tview_teardown(c, w2);
	assert_int_equal(tview_shm_count(engine), 0);
}

/* Creating the control segment removes what earlier runs of the engine
 * were creating when they died (private names of dead creators). */
static void test_create_sweeps_unfinished(void **state)
{
	char engine[64], view[CQRS_SEG_NAME_MAX];
	cqrs_ctl *c;
	int status;
	pid_t pid;
	(void)state;

	tu_unique_name(engine, sizeof engine, "tsweep");
	cqrs__seg_name_view(view, sizeof view, engine, "orders", 7);
	pid = fork();
	if (pid == 0) { /* dies in the middle of creating a view */
		cqrs_seg s;
		_exit(cqrs__seg_create(&s, view, 1 << 20, 0) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(tview_shm_count(engine), 1);
	assert_int_equal(cqrs__ctl_create(engine, NULL, &c), 0);
	assert_int_equal(tview_shm_count(engine), 1); /* the control segment only */
	cqrs__ctl_destroy(c);
	assert_int_equal(tview_shm_count(engine), 0);
}

/* `cqrs rm` then a new engine of the same name, which numbers its
 * generations from 1 again: a reader on the removed generation 1 moves to
 * the new generation 1 (a retired mapping is left even for the same
 * number). */
static void test_removed_then_same_number(void **state)
{
	char engine[64], g1[CQRS_SEG_NAME_MAX];
	cqrs_ctl *c;
	cqrs_vw *w, *w2;
	cqrs_view *v;
	uint64_t id = 9;
	trow row;
	(void)state;

	tu_unique_name(engine, sizeof engine, "tsame");
	assert_int_equal(tview_setup(engine, 16, &c, &w), 0);
	assert_int_equal(cqrs_view_open(engine, "orders", &v), 0);
	strcpy(g1, cqrs__vw_segment_name(w));
	cqrs__vw_close(w);
	cqrs__ctl_destroy(c);
	assert_int_equal(cqrs__seg_retire_unlink(g1), 0); /* what `cqrs rm` does */
	assert_int_equal(tview_setup(engine, 16, &c, &w2), 0);
	assert_int_equal(cqrs__vw_generation(w2), 1);
	trow_fill(&row, 9, 1, 1);
	assert_int_equal(cqrs__vw_begin(w2), 0);
	assert_int_equal(cqrs__vw_upsert(w2, &row), 0);
	assert_int_equal(cqrs__vw_end(w2, 1), 0);
	assert_int_equal(cqrs_view_wait(v, 1, 1000000000), 0);
	assert_int_equal(cqrs_view_get(v, &id, 8, &row, sizeof row), 0);
	assert_true(trow_ok(&row));
	cqrs_view_close(v);
	tview_teardown(c, w2);
	assert_int_equal(tview_shm_count(engine), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_directory_and_state),
		cmocka_unit_test(test_command_schemas),
		cmocka_unit_test(test_regions_read_only),
		cmocka_unit_test(test_stale_engine),
		cmocka_unit_test(test_orphaned_generation),
		cmocka_unit_test(test_create_sweeps_unfinished),
		cmocka_unit_test(test_removed_then_same_number),
	};
	return cmocka_run_group_tests(tests, NULL, tview_group_cleanup);
}
