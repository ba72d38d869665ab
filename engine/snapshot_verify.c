/*
 * engine/snapshot_verify.c - cqrs_engine_verify_snapshot: the
 * deterministic check. The model is rebuilt on the side from the journal
 * (seqs 1..S, through the application's evolve, as a start without a
 * snapshot would; where retention collected the journal's prefix, from
 * the newest older valid snapshot B the journal continues, seqs B+1..S)
 * into the engine's registered, empty stores, and
 * compared with a snapshot at S: every store record (key and value
 * bytes), every aggregate version, every remembered command of every
 * client's dedup window, and the counts. A difference means decide or
 * evolve is not deterministic (or the code changed what it derives): the
 * snapshot holds what the run computed, the replay what the code computes
 * now. The bytes of save/load callbacks are not compared (their format is
 * the application's).
 *
 * Runs on an opened engine that was not started, and leaves its stores
 * filled: close it afterwards (start refuses).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "engine/engine_internal.h"
#include "engine/journal/journal.h"
#include "engine/model/dedup.h"
#include "engine/model/versions.h"
#include "engine/replay.h"
#include "engine/snapshot.h"

typedef struct cmp_job {
	cqrs_engine *e;
	cqrs_store *store;
	const char *name;
	uint32_t keylen, value_size, window;
	char why[240];
} cmp_job;

static int cmp_store(void *arg, const uint8_t *rec)
{
	cmp_job *j = arg;
	const void *v = cqrs_store_get(j->store, rec);

	if (!v || memcmp(v, rec + j->keylen, j->value_size) != 0) {
		uint64_t k = 0;
		memcpy(&k, rec, j->keylen < 8 ? j->keylen : 8);
		snprintf(j->why, sizeof j->why, "store %s: the aggregate with key %llu%s is %s in the "
			 "replay", j->name, (unsigned long long)k, j->keylen == 8 ? "" : " (first bytes)",
			 v ? "different" : "missing");
		return CQRS_ECORRUPT;
	}
	return 0;
}

static int cmp_version(void *arg, const uint8_t *rec)
{
	cmp_job *j = arg;
	uint64_t r[2], v;

	memcpy(r, rec, sizeof r);
	v = cqrs__versions_get(j->e->versions, r[0]);
	if (v != r[1]) {
		snprintf(j->why, sizeof j->why, "aggregate %llu: version %llu in the snapshot, %llu in "
			 "the replay", (unsigned long long)r[0], (unsigned long long)r[1],
			 (unsigned long long)v);
		return CQRS_ECORRUPT;
	}
	return 0;
}

static int cmp_client(void *arg, const uint8_t *rec)
{
	cmp_job *j = arg;
	uint64_t head[2];

	memcpy(head, rec, sizeof head);
	for (uint32_t i = 0; i < j->window; i++) {
		uint64_t s[2], seq;

		memcpy(s, rec + 16 + 16 * (size_t)i, sizeof s);
		if (s[0] && (cqrs__dedup_check(j->e->dedup, head[0], s[0], &seq) != 1 || seq != s[1])) {
			snprintf(j->why, sizeof j->why, "client %llu: command %llu answered at seq %llu in "
				 "the snapshot, not in the replay", (unsigned long long)head[0],
				 (unsigned long long)s[0], (unsigned long long)s[1]);
			return CQRS_ECORRUPT;
		}
	}
	return 0;
}

static int compare(cqrs_engine *e, const cqrs__snap_image *img)
{
	cqrs__snap *sn = e->snap;
	cmp_job j = { .e = e };
	int rc;

	if (cqrs__versions_count(e->versions) != img->sec[1].count)
		return cqrs__fail(CQRS_ECORRUPT, "%llu aggregates versioned in the snapshot, %llu in the "
				  "replay", (unsigned long long)img->sec[1].count,
				  (unsigned long long)cqrs__versions_count(e->versions));
	if ((rc = cqrs__snapshot_each_record(img, &img->sec[1], cmp_version, &j)) != 0)
		return cqrs__fail(rc, "%s", j.why);
	j.window = (img->sec[2].value_size - 16) / 16;
	if ((rc = cqrs__snapshot_each_record(img, &img->sec[2], cmp_client, &j)) != 0)
		return cqrs__fail(rc, "%s", j.why);
	for (uint32_t i = 0; i < sn->nstores; i++) {
		const cqrs__snap_sec *s = NULL;

		for (uint32_t k = 3; k < img->nsec; k++)
			if (img->sec[k].kind == CQRS_SNAP_STORE && !strcmp(img->sec[k].name, sn->stores[i].name))
				s = &img->sec[k];
		j.store = sn->stores[i].store;
		j.name = sn->stores[i].name;
		j.keylen = s->keylen;
		j.value_size = s->value_size;
		if (cqrs_store_count(j.store) != s->count)
			return cqrs__fail(CQRS_ECORRUPT, "store %s: %llu aggregates in the snapshot, %llu in "
					  "the replay", j.name, (unsigned long long)s->count,
					  (unsigned long long)cqrs_store_count(j.store));
		if ((rc = cqrs__snapshot_each_record(img, s, cmp_store, &j)) != 0)
			return cqrs__fail(rc, "%s", j.why);
	}
	return 0;
}

/* Where the side rebuild starts: seq 0 (an empty model, the journal from
 * seq 1) while the journal still has seq 1; else the newest older
 * snapshot (seqs: older ones, newest first) that verifies and that the
 * journal continues, loaded into the model. Retention keeps the journal
 * from the oldest kept snapshot on, so the check then covers what the
 * journal still has: the replay of (base, target] over that snapshot. */
static int side_base(cqrs_engine *e, uint64_t target, const uint64_t *seqs, size_t n,
		     uint64_t *base)
{
	cqrs_journal_extent x;
	uint64_t first = 1;
	cqrs__snap_image *old;
	char path[3400], why[240];
	int rc = -ENOENT;

	*base = 0;
	if (cqrs__journal_extent(e->journal_dir, &x) == 0 && x.manifest && x.first_seq)
		first = x.first_seq;
	if (first <= 1)
		return 0;
	old = malloc(sizeof *old);
	if (!old)
		return cqrs__fail(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (seqs[i] >= target || seqs[i] + 1 < first)
			continue;
		cqrs__snapshot_name(path, sizeof path, e->snap->dir, seqs[i]);
		if (cqrs__snapshot_open(path, old, why, sizeof why) != 0)
			continue;
		if (cqrs__snapshot_fits(e, old, why, sizeof why) == 0 &&
		    (rc = cqrs__snapshot_load(e, old)) == 0)
			*base = seqs[i];
		cqrs__snapshot_close(old);
		if (*base || rc != -ENOENT)
			break;
	}
	free(old);
	if (*base)
		return 0;
	return cqrs__fail(rc == -ENOENT ? CQRS_ENOTFOUND : rc,
			  "the journal starts at seq %llu (retention collected 1..%llu) and no older "
			  "valid snapshot before seq %llu covers them: nothing to replay the "
			  "snapshot's model from", (unsigned long long)first,
			  (unsigned long long)first - 1, (unsigned long long)target);
}

int cqrs_engine_verify_snapshot(cqrs_engine *e, uint64_t seq, uint64_t *verified)
{
	cqrs__snap *sn = e->snap;
	cqrs__snap_image *img;
	cqrs_replay_stats rs;
	char path[3400], why[240];
	uint64_t seqs[64], base = 0;
	size_t n = 0;
	int rc;

	if (verified)
		*verified = 0;
	if (atomic_load_explicit(&e->state, memory_order_relaxed) != ENGINE_OPEN || (sn && sn->verified))
		return cqrs__fail(-EINVAL, "cqrs_engine_verify_snapshot: on an engine opened and not "
				  "started (once)");
	if (!cqrs__snapshot_enabled(e))
		return cqrs__fail(-EINVAL, "cqrs_engine_verify_snapshot: no store or snapshot "
				  "callbacks registered");
	for (uint32_t i = 0; i < sn->nstores; i++)
		if (cqrs_store_count(sn->stores[i].store))
			return cqrs__fail(-EINVAL, "cqrs_engine_verify_snapshot: store %s is not empty",
					  sn->stores[i].name);
	sn->verified = 1; /* the stores get filled: the engine cannot start after */
	snprintf(sn->dir, sizeof sn->dir, "%s/snapshots", e->data_dir);
	if (!seq) {
		rc = cqrs__snapshot_seqs(sn->dir, seqs, 64, &n);
		if (rc || n == 0)
			return cqrs__fail(rc ? rc : -ENOENT, "no snapshot in %s", sn->dir);
		if (n > 64)
			n = 64; /* *n counts every file; seqs holds the newest 64 */
	} else {
		seqs[0] = seq;
		n = 1;
		if (cqrs__snapshot_seqs(sn->dir, seqs + 1, 63, &n) == 0)
			n = n + 1 < 64 ? n + 1 : 64; /* the older ones: side_base's */
		else
			n = 1;
	}
	img = malloc(sizeof *img);
	if (!img)
		return cqrs__fail(-ENOMEM, "out of memory");
	rc = -ENOENT;
	for (size_t i = 0; i < n && i < 64; i++) {
		cqrs__snapshot_name(path, sizeof path, sn->dir, seqs[i]);
		rc = cqrs__snapshot_open(path, img, why, sizeof why);
		if (rc == 0 && (rc = cqrs__snapshot_fits(e, img, why, sizeof why)) == 0) {
			/* the rest are older ones the side replay may start from */
			memmove(seqs, seqs + i + 1, (n - i - 1) * sizeof *seqs);
			n -= i + 1;
			break;
		}
		cqrs__log(e, CQRS_LOG_WARN, "snapshot %s not verified: %s", path, why);
		if (seq) {
			free(img);
			return cqrs__fail(rc, "snapshot %s: %s", path, why);
		}
	}
	if (rc) {
		free(img);
		return cqrs__fail(rc, "no valid snapshot in %s", sn->dir);
	}
	rc = cqrs__versions_create(e->cfg.aggregates_hint, &e->versions);
	if (!rc)
		rc = cqrs__dedup_create(e->cfg.dedup_window, &e->dedup);
	if (!rc)
		rc = side_base(e, img->hdr.seq, seqs, n, &base);
	if (!rc)
		rc = cqrs__replay_write_model(e, base + 1, img->hdr.seq + 1, &rs);
	if (!rc)
		rc = compare(e, img);
	if (!rc) {
		cqrs__log(e, CQRS_LOG_INFO, "snapshot %s equals the replay of seqs %llu..%llu%s", path,
			  (unsigned long long)base + 1, (unsigned long long)img->hdr.seq,
			  base ? " from the older snapshot before them" : "");
		if (verified)
			*verified = img->hdr.seq;
	} else {
		char detail[4200];
		snprintf(detail, sizeof detail, "snapshot %s differs from the replay of seqs %llu..%llu: %s",
			 path, (unsigned long long)base + 1, (unsigned long long)img->hdr.seq,
			 cqrs_last_error());
		cqrs__set_error_text(rc, detail);
	}
	cqrs__snapshot_close(img);
	free(img);
	cqrs__versions_destroy(e->versions);
	cqrs__dedup_destroy(e->dedup);
	e->versions = NULL;
	e->dedup = NULL;
	return rc;
}
