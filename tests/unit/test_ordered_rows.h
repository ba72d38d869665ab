/*
 * tests/unit/test_ordered_rows.h - the row shared by the ordered-index
 * tests (unit and multi-process): a book-like row (id, sym, price, qty)
 * whose check word derives from the rest, so a reader can tell a whole
 * version from a torn one.
 */
#ifndef CQRS_TEST_ORDERED_ROWS_H
#define CQRS_TEST_ORDERED_ROWS_H

#include <stdio.h>

#include "tests/unit/test_view_rows.h"

#define OROW_FIELDS(F)        \
	F(u64, id)            \
	F(str, sym, 8)        \
	F(i64, price)         \
	F(f64, qty)           \
	F(u64, ver)           \
	F(u64, check)
CQRS_RECORD(orow, "OrdRow", OROW_FIELDS)

static inline uint64_t orow_sum(const orow *r)
{
	return trow_mix(r->id, (uint64_t)r->price ^ r->ver, (uint64_t)r->sym[0] << 8 | (uint64_t)r->sym[1]);
}

static inline void orow_fill(orow *r, uint64_t id, int sym, int64_t price, double qty, uint64_t ver)
{
	memset(r, 0, sizeof *r);
	r->id = id;
	snprintf(r->sym, sizeof r->sym, "S%d", sym);
	r->price = price;
	r->qty = qty;
	r->ver = ver;
	r->check = orow_sum(r);
}

static inline int orow_ok(const orow *r)
{
	return r->check == orow_sum(r);
}

/* lo/hi arguments of the (sym, price) index: the fields' native values */
typedef struct __attribute__((packed)) karg {
	char sym[8];
	int64_t price;
} karg;

/* Creates engine + control segment and a view "book" keyed by id with an
 * ordered index on (f1[, f2]). */
static inline int oview_setup(const char *engine, uint64_t cap, const char *f1, const char *f2,
			      cqrs_ctl **ctl, cqrs_vw **w)
{
	cqrs_vw_config cfg = { 0 };
	int rc = cqrs__ctl_create(engine, NULL, ctl);

	if (rc)
		return rc;
	cfg.schema = orow_schema();
	cfg.key_field = "id";
	cfg.capacity = cap;
	cfg.ordered[0] = f1;
	cfg.ordered[1] = f2;
	rc = cqrs__vw_create(*ctl, "book", &cfg, w);
	if (!rc)
		rc = cqrs__vw_publish(*w);
	if (!rc)
		rc = cqrs__ctl_publish(*ctl);
	return rc;
}

#endif
