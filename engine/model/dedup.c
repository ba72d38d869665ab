/*
 * engine/model/dedup.c - see dedup.h.
 *
 * Each client has a direct-mapped table of `window` slots indexed by
 * cseq % window, plus the highest cseq seen. A cseq that maps to a slot
 * holding the same cseq is a duplicate with a known result; a cseq more
 * than `window` below the highest seen can no longer be told apart from a
 * new one, so it is treated as a duplicate without a result: we would
 * rather refuse a very late retry than apply a command twice.
 */
#include <string.h>

#include "cqrs.h"
#include "engine/model/dedup.h"
#include "engine/model/wm_alloc.h"

typedef struct slot {
	uint64_t cseq; /* 0: empty (client seqs start at 1) */
	uint64_t seq;
} slot;

typedef struct client {
	uint64_t max_cseq;
	slot slots[]; /* window entries */
} client;

struct cqrs_dedup {
	cqrs_store *clients;
	uint32_t window;
};

int cqrs__dedup_create(uint32_t window, cqrs_dedup **out)
{
	cqrs_dedup *d = cqrs__wm_calloc(sizeof *d);
	int rc;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->window = window ? window : 1;
	rc = cqrs_store_create(8, (uint32_t)(sizeof(client) + d->window * sizeof(slot)), 1024,
			       &d->clients);
	if (rc) {
		cqrs__wm_free(d, sizeof *d);
		return rc;
	}
	*out = d;
	return 0;
}

void cqrs__dedup_destroy(cqrs_dedup *d)
{
	if (!d)
		return;
	cqrs_store_destroy(d->clients);
	cqrs__wm_free(d, sizeof *d);
}

int cqrs__dedup_check(cqrs_dedup *d, uint64_t id, uint64_t cseq, uint64_t *seq)
{
	client *c = cqrs_store_get(d->clients, &id);
	const slot *s;

	*seq = 0;
	if (!c || cseq == 0)
		return 0;
	s = &c->slots[cseq % d->window];
	if (s->cseq == cseq) {
		*seq = s->seq;
		return 1;
	}
	/* cseq + window <= max_cseq, written so that it cannot wrap (cseq may
	 * be UINT64_MAX) */
	if (c->max_cseq >= d->window && cseq <= c->max_cseq - d->window)
		return 1; /* too old to tell: refuse rather than apply twice */
	return 0;
}

int cqrs__dedup_record(cqrs_dedup *d, uint64_t id, uint64_t cseq, uint64_t seq)
{
	client *c = cqrs_store_upsert(d->clients, &id, NULL);
	slot *s;

	if (!c)
		return -ENOMEM;
	if (cseq == 0)
		return 0;
	s = &c->slots[cseq % d->window];
	s->cseq = cseq;
	s->seq = seq;
	if (cseq > c->max_cseq)
		c->max_cseq = cseq;
	return 0;
}

uint32_t cqrs__dedup_window(const cqrs_dedup *d)
{
	return d->window;
}

uint64_t cqrs__dedup_clients(const cqrs_dedup *d)
{
	return cqrs_store_count(d->clients);
}

typedef struct foreach_job {
	int (*fn)(void *arg, uint64_t client, uint64_t max_cseq, const uint64_t *slots);
	void *arg;
} foreach_job;

static int foreach_one(void *arg, const void *key, void *value)
{
	foreach_job *job = arg;
	const client *c = value;
	uint64_t id;

	memcpy(&id, key, 8);
	_Static_assert(sizeof(slot) == 16, "a slot is two words");
	return job->fn(job->arg, id, c->max_cseq, (const uint64_t *)(const void *)c->slots);
}

int cqrs__dedup_foreach(cqrs_dedup *d,
			int (*fn)(void *arg, uint64_t client, uint64_t max_cseq,
				  const uint64_t *slots),
			void *arg)
{
	foreach_job job = { fn, arg };

	return cqrs_store_foreach(d->clients, foreach_one, &job);
}

int cqrs__dedup_restore(cqrs_dedup *d, uint64_t id, uint64_t max_cseq, const uint64_t *slots,
			uint32_t window)
{
	client *c = cqrs_store_upsert(d->clients, &id, NULL);

	if (!c)
		return -ENOMEM;
	if (window == d->window) {
		memcpy(c->slots, slots, (size_t)window * sizeof(slot));
	} else {
		for (uint32_t i = 0; i < window; i++) {
			uint64_t cs = slots[2 * i];
			slot *s = &c->slots[cs % d->window];

			/* of two remembered commands on one slot, the newer stays */
			if (cs && cs > s->cseq) {
				s->cseq = cs;
				s->seq = slots[2 * i + 1];
			}
		}
	}
	if (max_cseq > c->max_cseq)
		c->max_cseq = max_cseq;
	return 0;
}
