/*
 * engine/housekeeping.c - the engine's housekeeping thread: journal
 * retention (engine/journal/retention.h) off the command thread.
 *
 * The thread sleeps on a condition variable until kicked: by the
 * journal's roll hook (a segment was sealed), by whoever lands a snapshot
 * or a checkpoint (cqrs__housekeeping_kick), once at start, and, with a
 * minimum age configured, every min(age, 60 s) so that aged segments go.
 * Each run reads the pins from the data directory (the snapshot and
 * checkpoint listings verify their files), takes the replication
 * watermark (the engine's replicator's, and the application's hook: a
 * segment the stream does not hold yet is kept), plans, and collects: the running writer moves the
 * journal's start in its manifest (cqrs__journal_set_start, under the
 * writer's manifest lock) before any file goes. The active segment is
 * never part of a plan, and segments sealed while a run plans are newer
 * than any it collects.
 *
 * Hot-path cost: none. The command thread pays one mutex and one signal
 * per segment roll (already a cold path of fdatasyncs and a rename).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/errors.h"
#include "engine/counters.h"
#include "engine/housekeeping.h"
#include "engine/projector.h"
#include "engine/replication/replication.h"
#include "engine/retention_pins.h"

struct housekeeping {
	cqrs_engine *e;
	pthread_t thr;
	pthread_mutex_t mu;          /* guards kicked, stop */
	pthread_cond_t cv;
	bool kicked;
	bool stop;
	bool joined;                 /* the stopping thread's: the thread is gone */
	char archive_dir[PATH_MAX];
	uint32_t nviews;
	char views[CQRS__RET_MAX_VIEWS][CQRS_NAME_MAX];
	const char *view_ptrs[CQRS__RET_MAX_VIEWS];
	bool views_unknown;          /* more registered views than fit */
};

static enum cqrs__ret_action mode_action(int mode)
{
	switch (mode) {
	case CQRS_RETENTION_DELETE: return CQRS__RET_DELETE;
	case CQRS_RETENTION_ARCHIVE: return CQRS__RET_ARCHIVE;
	case CQRS_RETENTION_HOOK: return CQRS__RET_HOOK;
	default: return CQRS__RET_KEEP;
	}
}

int cqrs__housekeeping_run(cqrs_engine *e, cqrs__ret_summary *sum)
{
	struct housekeeping *hk = e->hk;
	cqrs__ret_policy pol = {
		.min_segments = e->cfg.retention_min_segments,
		.min_bytes = e->cfg.retention_min_bytes,
		.min_age_s = e->cfg.retention_min_age_s,
		.now_ns = cqrs__wall_ns(),
		.action = mode_action(e->cfg.retention_mode),
		.archive_dir = hk && hk->archive_dir[0] ? hk->archive_dir : NULL,
		.hook = e->cfg.retention_hook,
		.hook_arg = e->cfg.retention_hook_arg,
	};
	cqrs__ret_summary local;
	cqrs__ret_pins *pins = malloc(sizeof *pins);
	cqrs__ret_seg *segs = NULL;
	uint64_t first = 0;
	char note[256];
	int n, rc;

	if (!sum)
		sum = &local;
	memset(sum, 0, sizeof *sum);
	if (!pins)
		return -ENOMEM;
	rc = cqrs__retention_pins(e->data_dir, hk ? hk->view_ptrs : NULL, hk ? hk->nviews : 0, pins,
				  note, sizeof note);
	if (rc == 0 && hk && hk->views_unknown)
		pins->views_unknown = true;
	if (rc == 0) {
		/* The engine's replicator (UINT64_MAX without one), and the
		 * application's watermark: the lower one pins. */
		uint64_t w = cqrs__replication_watermark(e);
		if (e->cfg.replication_watermark) {
			uint64_t u = e->cfg.replication_watermark(e->cfg.replication_watermark_arg);
			if (u < w)
				w = u;
		}
		pins->replication = w != UINT64_MAX || e->cfg.replication_watermark;
		pins->replicated_seq = w;
	}
	if (rc == 0) {
		n = cqrs__retention_scan(e->journal_dir, &segs, &first);
		rc = n < 0 ? n : 0;
		if (rc == 0) {
			cqrs__retention_plan(segs, (size_t)n, pins, &pol, sum);
			rc = cqrs__retention_collect(e->journal_dir, e->journal, segs, (size_t)n, &pol, sum);
			if (sum->collected)
				cqrs__log(e, CQRS_LOG_INFO, "retention: collected %u segment(s), %llu bytes "
					  "(%s); the journal starts at seq %llu", sum->collected,
					  (unsigned long long)sum->collected_bytes,
					  cqrs__retention_action_name(pol.action),
					  (unsigned long long)sum->new_first_seq);
		}
	}
	if (rc)
		cqrs__log(e, CQRS_LOG_WARN, "retention: %s", cqrs_last_error());
	CTR_SET(e->ctr, ret_journal_bytes, sum->journal_bytes - sum->collected_bytes);
	CTR_SET(e->ctr, ret_pinned_bytes, sum->pinned_bytes);
	CTR_SET(e->ctr, ret_need_seq, sum->need_seq);
	CTR_SET(e->ctr, ret_first_seq, sum->collected ? sum->new_first_seq : first);
	CTR_ADD(e->ctr, ret_collected_segments, sum->collected);
	CTR_ADD(e->ctr, ret_collected_bytes, sum->collected_bytes);
	CTR_ADD(e->ctr, ret_runs, 1);
	CTR_SET(e->ctr, ret_error, rc);
	free(segs);
	free(pins);
	return rc;
}

static void *housekeeping_main(void *arg)
{
	struct housekeeping *hk = arg;
	cqrs_engine *e = hk->e;
	uint64_t period_s = e->cfg.retention_min_age_s;

	if (period_s > 60)
		period_s = 60;
	pthread_mutex_lock(&hk->mu);
	while (!hk->stop) {
		if (!hk->kicked) {
			if (period_s) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += (time_t)period_s;
				pthread_cond_timedwait(&hk->cv, &hk->mu, &ts);
			} else {
				pthread_cond_wait(&hk->cv, &hk->mu);
			}
			if (hk->stop)
				break;
			if (!hk->kicked && !period_s)
				continue;
		}
		hk->kicked = false;
		pthread_mutex_unlock(&hk->mu);
		(void)cqrs__housekeeping_run(e, NULL); /* errors are logged and counted */
		pthread_mutex_lock(&hk->mu);
	}
	pthread_mutex_unlock(&hk->mu);
	return NULL;
}

int cqrs__housekeeping_start(cqrs_engine *e)
{
	struct housekeeping *hk;
	int rc;

	if (e->cfg.retention_mode == CQRS_RETENTION_OFF)
		return 0;
	if (e->cfg.retention_mode < 0 || e->cfg.retention_mode > CQRS_RETENTION_HOOK)
		return cqrs__fail(-EINVAL, "retention_mode %d is not a cqrs_retention_mode",
				 e->cfg.retention_mode);
	if (e->cfg.retention_mode == CQRS_RETENTION_ARCHIVE &&
	    (!e->cfg.archive_dir || !e->cfg.archive_dir[0]))
		return cqrs__fail(-EINVAL, "retention_mode ARCHIVE needs archive_dir");
	if (e->cfg.retention_mode == CQRS_RETENTION_HOOK && !e->cfg.retention_hook)
		return cqrs__fail(-EINVAL, "retention_mode HOOK needs retention_hook");
	hk = calloc(1, sizeof *hk);
	if (!hk)
		return -ENOMEM;
	hk->e = e;
	if (e->cfg.archive_dir &&
	    snprintf(hk->archive_dir, sizeof hk->archive_dir, "%s", e->cfg.archive_dir) >=
		    (int)sizeof hk->archive_dir) {
		free(hk);
		return cqrs__fail(-ENAMETOOLONG, "archive_dir is too long");
	}
	for (uint32_t k = 0; k < e->nprojs; k++)
		for (uint32_t i = 0; i < e->projs[k]->def.nviews; i++) {
			if (hk->nviews == CQRS__RET_MAX_VIEWS) {
				hk->views_unknown = true;
				continue;
			}
			/* the registered definition: the projector threads are
			 * running and a rebuild replaces views[i] whole */
			snprintf(hk->views[hk->nviews], sizeof hk->views[0], "%s",
				 e->projs[k]->def.views[i].name);
			hk->view_ptrs[hk->nviews] = hk->views[hk->nviews];
			hk->nviews++;
		}
	pthread_mutex_init(&hk->mu, NULL);
	pthread_cond_init(&hk->cv, NULL);
	hk->kicked = true; /* one run at start: leftovers, pins that moved while stopped */
	e->hk = hk;
	rc = -pthread_create(&hk->thr, NULL, housekeeping_main, hk);
	if (rc) {
		e->hk = NULL;
		pthread_cond_destroy(&hk->cv);
		pthread_mutex_destroy(&hk->mu);
		free(hk);
		return cqrs__fail(rc, "cannot start the housekeeping thread: %s", cqrs_strerror(rc));
	}
	pthread_setname_np(hk->thr, "cqrs-housekeep"); /* for top -H, perf */
	return 0;
}

void cqrs__housekeeping_kick(cqrs_engine *e)
{
	struct housekeeping *hk = e->hk;

	if (!hk)
		return;
	pthread_mutex_lock(&hk->mu);
	hk->kicked = true;
	pthread_cond_signal(&hk->cv);
	pthread_mutex_unlock(&hk->mu);
}

void cqrs__housekeeping_on_roll(void *arg, uint64_t first_seq)
{
	(void)first_seq;
	cqrs__housekeeping_kick(arg);
}

void cqrs__housekeeping_stop(cqrs_engine *e)
{
	struct housekeeping *hk = e->hk;

	if (!hk || hk->joined)
		return;
	pthread_mutex_lock(&hk->mu);
	hk->stop = true;
	pthread_cond_signal(&hk->cv);
	pthread_mutex_unlock(&hk->mu);
	pthread_join(hk->thr, NULL);
	hk->joined = true;
	/* the struct stays until cqrs__housekeeping_free: a checkpoint landing
	 * during the stop still kicks (a flag nobody reads any more) */
}

void cqrs__housekeeping_free(cqrs_engine *e)
{
	struct housekeeping *hk = e->hk;

	if (!hk)
		return;
	e->hk = NULL;
	pthread_cond_destroy(&hk->cv);
	pthread_mutex_destroy(&hk->mu);
	free(hk);
}
