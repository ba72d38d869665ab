/*
 * tests/unit/test_abi.c - what the public structs promise across library
 * versions (include/cqrs.h, "ABI"): a cqrs_config carries the size it was
 * compiled with, so a program built against an older, smaller config gets
 * the defaults of the fields it did not know; one built against a newer,
 * larger config runs while it leaves the unknown fields at zero; a config
 * that cqrs_config_init never set up (zeroes, garbage) is refused with
 * -EINVAL and a message, reading nothing past its size. Projection and view
 * definitions keep their size and refuse non-zero reserved words. (The
 * exported symbols themselves are checked by tests/scripts/abi.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cqrs.h"
#include "engine/engine_internal.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

typedef struct fixture {
	char name[64];
	char dir[256];
	cqrs_engine *e;
} fixture;

static int setup(void **state)
{
	static fixture f;
	memset(&f, 0, sizeof f);
	tu_unique_name(f.name, sizeof f.name, "tabi");
	if (tu_mkdtemp(f.dir, sizeof f.dir, "cqrs-abi"))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (f->e)
		cqrs_engine_close(f->e);
	f->e = NULL;
	cqrs_engine_remove_segments(f->name);
	tu_rmrf(f->dir);
	return 0;
}

/* A buffer that can hold a config larger than this library's, filled with
 * a pattern that would show if anything read or kept bytes it should not. */
#define GARBAGE 0xa5
typedef union config_buf {
	cqrs_config c;
	unsigned char b[sizeof(cqrs_config) + 64];
} config_buf;

static void assert_defaults_from(const cqrs_config *got, size_t known)
{
	cqrs_config d;

	cqrs_config_init(&d);
	assert_int_equal(got->size, sizeof(cqrs_config));
	assert_int_equal(got->magic, CQRS_CONFIG_MAGIC);
	/* every field past what the caller knew holds this library's default */
	if (known < offsetof(cqrs_config, threading) + sizeof(int))
		assert_int_equal(got->threading, d.threading);
	if (known < offsetof(cqrs_config, inline_write_bytes) + sizeof(uint32_t))
		assert_int_equal(got->inline_write_bytes, d.inline_write_bytes);
	if (known < offsetof(cqrs_config, aggregates_hint) + sizeof(uint64_t))
		assert_true(got->aggregates_hint == d.aggregates_hint);
	if (known < offsetof(cqrs_config, idle_yield_us) + sizeof(uint32_t))
		assert_int_equal(got->idle_yield_us, d.idle_yield_us);
	if (known < offsetof(cqrs_config, durability) + sizeof(int))
		assert_int_equal(got->durability, d.durability);
	assert_null(got->log);
	assert_int_equal(got->pretouch, 0);
}

/* cqrs_config_init is the size-carrying init with this header's size. */
static void test_init_sets_size_and_magic(void **state)
{
	(void)state;
	cqrs_config cfg;

	memset(&cfg, GARBAGE, sizeof cfg);
	cqrs_config_init(&cfg);
	assert_int_equal(cfg.size, sizeof cfg);
	assert_int_equal(cfg.magic, CQRS_CONFIG_MAGIC);
	assert_int_equal(cfg.durability, CQRS_DURABILITY_BATCH);
	assert_int_equal(cfg.threading, CQRS_THREADING_DEDICATED);
	assert_int_equal(cfg.inline_write_bytes, 256u << 10);
	assert_null(cfg.name);
	assert_null(cfg.log);
	/* sizes it cannot serve leave the struct alone */
	memset(&cfg, GARBAGE, sizeof cfg);
	assert_int_equal(cqrs_config_init_size(&cfg, CQRS_CONFIG_MIN_SIZE - 1), -EINVAL);
	assert_int_equal(cqrs_config_init_size(&cfg, CQRS_CONFIG_MAX_SIZE + 1), -EINVAL);
	assert_int_equal(cqrs_config_init_size(NULL, sizeof cfg), -EINVAL);
	for (size_t i = 0; i < sizeof cfg; i++)
		assert_int_equal(((unsigned char *)&cfg)[i], GARBAGE);
}

/* A program compiled when cqrs_config ended earlier: init writes only its
 * bytes, open reads only its bytes and takes defaults for the rest. */
static void older_config_opens(fixture *f, size_t old)
{
	config_buf buf;

	memset(&buf, GARBAGE, sizeof buf);
	assert_int_equal(cqrs_config_init_size(&buf.c, old), 0);
	assert_int_equal(buf.c.size, old);
	for (size_t i = old; i < sizeof buf.b; i++)
		assert_int_equal(buf.b[i], GARBAGE); /* nothing written past its size */
	buf.c.name = f->name;
	buf.c.data_dir = f->dir;
	if (old >= offsetof(cqrs_config, durability) + sizeof(int))
		buf.c.durability = CQRS_DURABILITY_NONE; /* a field it knew */
	assert_int_equal(cqrs_engine_open(&buf.c, NULL, &f->e), 0);
	assert_non_null(f->e);
	assert_string_equal(f->e->cfg.name, f->name);
	if (old >= offsetof(cqrs_config, durability) + sizeof(int))
		assert_int_equal(f->e->cfg.durability, CQRS_DURABILITY_NONE);
	assert_defaults_from(&f->e->cfg, old);
	cqrs_engine_close(f->e);
	f->e = NULL;
}

static void test_older_config_gets_defaults(void **state)
{
	fixture *f = *state;

	/* knew everything up to pretouch: not inline_write_bytes, threading */
	older_config_opens(f, offsetof(cqrs_config, inline_write_bytes));
	/* knew only name and data_dir: the smallest config there is */
	older_config_opens(f, CQRS_CONFIG_MIN_SIZE);
	/* a size that ends inside a field (the field's bytes were init's) */
	older_config_opens(f, offsetof(cqrs_config, aggregates_hint) + 4);
	/* this header's own size */
	older_config_opens(f, sizeof(cqrs_config));
}

/* A program compiled against a newer cqrs.h: fields this library does not
 * know must be zero, as init left them. */
static void test_newer_config(void **state)
{
	fixture *f = *state;
	config_buf buf;

	memset(&buf, GARBAGE, sizeof buf);
	assert_int_equal(cqrs_config_init_size(&buf.c, sizeof buf.b), 0);
	for (size_t i = sizeof(cqrs_config); i < sizeof buf.b; i++)
		assert_int_equal(buf.b[i], 0); /* the unknown fields zeroed */
	buf.c.name = f->name;
	buf.c.data_dir = f->dir;
	assert_int_equal(cqrs_engine_open(&buf.c, NULL, &f->e), 0);
	assert_defaults_from(&f->e->cfg, sizeof(cqrs_config));
	cqrs_engine_close(f->e);
	f->e = NULL;
	/* it set a field this library lacks: refused, naming the byte */
	buf.b[sizeof(cqrs_config) + 8] = 1;
	assert_int_equal(cqrs_engine_open(&buf.c, NULL, &f->e), -EINVAL);
	assert_null(f->e);
	assert_non_null(strstr(cqrs_last_error(), "newer cqrs.h"));
}

/* No cqrs_config_init at all: a zeroed struct, stack garbage, or the right
 * magic with an impossible size. -EINVAL with a message, nothing opened. */
static void test_uninitialised_config_refused(void **state)
{
	fixture *f = *state;
	config_buf buf;

	memset(&buf, 0, sizeof buf);
	buf.c.name = f->name;
	buf.c.data_dir = f->dir;
	assert_int_equal(cqrs_engine_open(&buf.c, NULL, &f->e), -EINVAL);
	assert_null(f->e);
	assert_non_null(strstr(cqrs_last_error(), "cqrs_config_init"));

	memset(&buf, GARBAGE, sizeof buf);
	buf.c.name = f->name;
	buf.c.data_dir = f->dir;
	assert_int_equal(cqrs_engine_open(&buf.c, NULL, &f->e), -EINVAL);
	assert_null(f->e);
	assert_non_null(strstr(cqrs_last_error(), "cqrs_config_init"));

	cqrs_config_init(&buf.c);
	buf.c.name = f->name;
	buf.c.data_dir = f->dir;
	buf.c.size = 0;
	assert_int_equal(cqrs_engine_open(&buf.c, NULL, &f->e), -EINVAL);
	assert_non_null(strstr(cqrs_last_error(), "size 0"));
	buf.c.size = 0xa5a5a5a5u;
	assert_int_equal(cqrs_engine_open(&buf.c, NULL, &f->e), -EINVAL);
	assert_non_null(strstr(cqrs_last_error(), "size"));
	assert_null(f->e);
	assert_int_equal(cqrs_engine_open(NULL, NULL, &f->e), -EINVAL);
	assert_null(f->e);
}

/* A config at the very end of a mapping: open reads its size bytes and not
 * one more (a read past it would fault on the guard page). */
static void test_older_config_at_page_end(void **state)
{
	fixture *f = *state;
	long page = sysconf(_SC_PAGESIZE);
	size_t old = offsetof(cqrs_config, aggregates_hint); /* 8-aligned: cfg stays aligned */
	char *m = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + page, (size_t)page, PROT_NONE), 0);
	cqrs_config *cfg = (cqrs_config *)(m + page - old);
	assert_int_equal(cqrs_config_init_size(cfg, old), 0);
	cfg->name = f->name;
	cfg->data_dir = f->dir;
	assert_int_equal(cqrs_engine_open(cfg, NULL, &f->e), 0);
	assert_defaults_from(&f->e->cfg, old);
	cqrs_engine_close(f->e);
	f->e = NULL;
	munmap(m, (size_t)page * 2);
}

static int apply_nothing(cqrs_proj *p, const cqrs_event *ev, void *arg)
{
	(void)p, (void)ev, (void)arg;
	return 0;
}

/* Definitions keep their size; reserved words must be zero. */
static void test_definition_reserved_words(void **state)
{
	fixture *f = *state;
	cqrs_config cfg;
	cqrs_projection_def pd = {
		.name = "p",
		.views = { { .name = "v", .row = bank_row_schema(), .key_field = "account",
			     .capacity = 64 } },
		.nviews = 1,
		.apply = apply_nothing,
	};

	cqrs_config_init(&cfg);
	cfg.name = f->name;
	cfg.data_dir = f->dir;
	assert_int_equal(cqrs_engine_open(&cfg, NULL, &f->e), 0);
	pd.reserved[3] = 1;
	assert_int_equal(cqrs_register_projection(f->e, &pd), -EINVAL);
	assert_non_null(strstr(cqrs_last_error(), "reserved"));
	pd.reserved[3] = 0;
	pd.views[0].reserved[0] = 1;
	assert_int_equal(cqrs_register_projection(f->e, &pd), -EINVAL);
	assert_non_null(strstr(cqrs_last_error(), "reserved"));
	pd.views[0].reserved[0] = 0;
	assert_int_equal(cqrs_register_projection(f->e, &pd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_sets_size_and_magic),
		cmocka_unit_test_setup_teardown(test_older_config_gets_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uninitialised_config_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_config_at_page_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_definition_reserved_words, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
