/*
 * engine/recovery.c - rebuilding the write model from the journal on start.
 *
 * The journal has already been opened for append (which cut a torn tail or
 * refused corruption). Every record is then replayed in seq order: its
 * aggregate's version is set, evolve runs, and the idempotency window
 * learns the command's (client id, client seq) from its last event (the
 * CMD_END record), so a duplicate sent after a restart still gets the
 * original answer. Progress goes to the log callback.
 */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "engine_internal.h"
#include "error.h"
#include "recovery.h"

int cqrs__replay_write_model(cqrs_engine *e, uint64_t next_seq, cqrs_replay_stats *st)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	uint64_t start = cqrs_mono_ns(), n = 0, expect = 1;
	int rc;

	memset(st, 0, sizeof *st);
	if (next_seq <= 1)
		return 0;
	rc = cqrs_journal_iter_open(&it, e->journal_dir, 1);
	if (rc)
		return rc;
	while ((rc = cqrs_journal_iter_next(it, &r)) == 1) {
		const event_type *et = r->type < CQRS_MAX_TYPES ? &e->events[r->type] : NULL;
		cqrs_event ev;

		if (r->seq != expect) {
			rc = cqrs_fail(CQRS_ECORRUPT, "replay: seq %llu where %llu was expected",
				       (unsigned long long)r->seq, (unsigned long long)expect);
			break;
		}
		expect++;
		if (!et || !et->schema || et->schema->size != r->size) {
			rc = cqrs_fail(CQRS_EFORMAT,
				       "replay: seq %llu has event type %u of %u bytes, which this "
				       "engine does not register with that size",
				       (unsigned long long)r->seq, r->type, r->size);
			break;
		}
		ev = (cqrs_event){ .seq = r->seq, .timestamp_ns = r->timestamp_ns,
				   .aggregate_id = r->aggregate_id,
				   .aggregate_version = r->aggregate_version, .type = r->type,
				   .size = r->size, .data = cqrs_jrec_payload(r) };
		if (r->aggregate_id != UINT64_MAX &&
		    cqrs_versions_set(e->versions, r->aggregate_id, r->aggregate_version)) {
			rc = -ENOMEM;
			break;
		}
		if (et->evolve)
			et->evolve(e->model, &ev);
		if (r->client_id && (r->flags & CQRS_JREC_CMD_END) &&
		    cqrs_dedup_record(e->dedup, r->client_id, r->client_seq, r->seq)) {
			rc = -ENOMEM;
			break;
		}
		if (++n % 1000000 == 0)
			cqrs__log(e, CQRS_LOG_INFO, "recovery: %llu of %llu events replayed",
				  (unsigned long long)n, (unsigned long long)(next_seq - 1));
		if (r->seq + 1 >= next_seq) {
			rc = 0;
			break;
		}
	}
	cqrs_journal_iter_close(it);
	if (rc < 0)
		return rc;
	if (expect != next_seq)
		return cqrs_fail(CQRS_ECORRUPT, "replay ended at seq %llu, journal says %llu",
				 (unsigned long long)(expect - 1), (unsigned long long)(next_seq - 1));
	st->events = n;
	st->ns = cqrs_mono_ns() - start;
	cqrs__log(e, CQRS_LOG_INFO, "recovery: write model rebuilt from %llu events in %.1f ms",
		  (unsigned long long)n, (double)st->ns / 1e6);
	return 0;
}
