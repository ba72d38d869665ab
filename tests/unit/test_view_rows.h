/*
 * tests/unit/test_view_rows.h - the row schema and helpers shared by the
 * view tests (unit, threaded, multi-process): an order-summary-like row
 * whose every field derives from (order_id, customer_id, version), so a
 * reader can check that a copy is one whole version (never torn).
 */
#ifndef CQRS_TEST_VIEW_ROWS_H
#define CQRS_TEST_VIEW_ROWS_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shm/control.h"
#include "cqrs_schema.h"
#include "cqrs_view.h"
#include "shm/view_writer.h"

#define TROW_FIELDS(F)            \
	F(u64, order_id)          \
	F(u64, customer_id)       \
	F(u32, item_count)        \
	F(u32, status)            \
	F(i64, total)             \
	F(u64, version)           \
	F(str, note, 24)          \
	F(u64, check)
CQRS_RECORD(trow, "TestOrder", TROW_FIELDS)

static inline uint64_t trow_mix(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t x = a * 0x9e3779b97f4a7c15u ^ b * 0xc2b2ae3d27d4eb4fu ^ c * 0x165667b19e3779f9u;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9u;
	return x ^ (x >> 32);
}

static inline void trow_fill(trow *r, uint64_t id, uint64_t cust, uint64_t ver)
{
	memset(r, 0, sizeof *r);
	r->order_id = id;
	r->customer_id = cust;
	r->item_count = (uint32_t)ver;
	r->status = (uint32_t)(ver * 3 + 1);
	r->total = (int64_t)trow_mix(id, cust, ver);
	r->version = ver;
	snprintf(r->note, sizeof r->note, "%016llx", (unsigned long long)trow_mix(ver, id, 7));
	r->check = trow_mix(id ^ cust, ver, (uint64_t)r->total);
}

/* 1 when r is one whole version written by trow_fill. */
static inline int trow_ok(const trow *r)
{
	trow want;

	trow_fill(&want, r->order_id, r->customer_id, r->version);
	return memcmp(&want, r, sizeof want) == 0;
}

/* Creates engine + control segment and a view "orders" keyed by order_id
 * with a secondary index on customer_id. */
static inline int tview_setup(const char *engine, uint64_t capacity, cqrs_ctl **ctl, cqrs_vw **w)
{
	cqrs_vw_config cfg = { 0 };
	int rc = cqrs__ctl_create(engine, NULL, ctl);

	if (rc)
		return rc;
	cfg.schema = trow_schema();
	cfg.key_field = "order_id";
	cfg.secondary[0] = "customer_id";
	cfg.capacity = capacity;
	rc = cqrs__vw_create(*ctl, "orders", &cfg, w);
	if (!rc)
		rc = cqrs__vw_publish(*w);
	if (!rc)
		rc = cqrs__ctl_publish(*ctl);
	return rc;
}

/* Removes the view's segment and the engine's segments. */
static inline void tview_teardown(cqrs_ctl *ctl, cqrs_vw *w)
{
	if (w) {
		cqrs__vw_retire(w);
		cqrs__vw_close(w);
	}
	cqrs__ctl_destroy(ctl);
}

/* Number of /dev/shm entries whose name starts with "cqrs.<engine>.". */
static inline int tview_shm_count(const char *engine)
{
	char prefix[96];
	struct dirent *e;
	DIR *d = opendir("/dev/shm");
	int n = 0;

	snprintf(prefix, sizeof prefix, "cqrs.%s.", engine);
	while (d && (e = readdir(d)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	if (d)
		closedir(d);
	return n;
}

/* cmocka group teardown: a failed assertion skips a test's own cleanup, so
 * remove whatever segments this process's test engines left behind. */
static inline int tview_group_cleanup(void **state)
{
	char prefix[64];
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	(void)state;

	/* names are "cqrs.<prefix>_<pid>_<n>..." (tests/lib/testutil.h) */
	snprintf(prefix, sizeof prefix, "_%ld_", (long)getpid());
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "cqrs.", 5) && strstr(e->d_name, prefix)) {
			char name[300];
			snprintf(name, sizeof name, "/%s", e->d_name);
			shm_unlink(name);
		}
	if (d)
		closedir(d);
	return 0;
}

#endif
