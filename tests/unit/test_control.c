/*
 * tests/unit/test_control.c - the engine's control segment: state, view
 * directory, command schemas, reserved regions, names
 * already taken, read-only mappings for readers, cleanup.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_directory_and_state),
		cmocka_unit_test(test_command_schemas),
		cmocka_unit_test(test_regions_read_only),
		cmocka_unit_test(test_stale_engine),
	};
	return cmocka_run_group_tests(tests, NULL, tview_group_cleanup);
}
