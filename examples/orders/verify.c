/*
 * examples/orders/verify.c - `cqrs-orders snapshot verify DIR`: the
 * engine's deterministic check (cqrs_engine_verify_snapshot) with the
 * demo's decide and evolve: the newest valid snapshot in DIR/snapshots
 * must equal the model a replay of the journal up to its seq builds. The
 * engine is opened and registered as the demo does, never started.
 * Exit 0 (equal), 1 (a difference, or no snapshot to check).
 */
#include <inttypes.h>
#include <stdio.h>

#include "examples/orders/demo.h"

int demo_snapshot_verify(const options *o)
{
	options vo = *o;
	orders_model m;
	cqrs_engine *e = NULL;
	uint64_t seq = 0;
	int rc;

	vo.open_only = 1;
	vo.fresh = 0;
	if (demo_open_engine(&vo, &m, &e))
		return 1;
	rc = cqrs_engine_verify_snapshot(e, 0, &seq);
	if (rc == 0)
		printf("snapshot at seq %" PRIu64 " equals the replay of the journal up to it "
		       "(%" PRIu64 " orders, %" PRIu64 " customers)\n", seq, cqrs_store_count(m.orders),
		       cqrs_store_count(m.customers));
	else
		fprintf(stderr, "cqrs-orders: snapshot verify %s: %s (%s)\n", o->dir, cqrs_strerror(rc),
			cqrs_last_error());
	cqrs_engine_close(e);
	orders_model_free(&m);
	return rc ? 1 : 0;
}
