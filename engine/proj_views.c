/*
 * engine/proj_views.c - a projection's view segments: at start adopt the
 * clean ones (all views of a projection must agree on one applied_seq the
 * journal reaches), else restore them from their checkpoints
 * (engine/checkpoint.h), else create fresh generations; at stop mark
 * them clean and close them. Segment names: "cqrs.<engine>.v.<view>.<gen>"
 * in /dev/shm (shm/segment.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/errors.h"
#include "engine/checkpoint.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/projector.h"
#include "shm/segment.h"
#include "shm/view_writer.h"

/* Highest generation of engine.view found in /dev/shm (0: none). Only
 * names this user owns count: /dev/shm is writable by everyone, and a file
 * another user put there under a generation's name must neither be taken
 * for the newest generation (the clean one would be rebuilt) nor push the
 * next number to wrap. */
static uint64_t last_generation(const char *engine, const char *view)
{
	char prefix[128];
	DIR *d = opendir("/dev/shm");
	struct dirent *ent;
	uint64_t best = 0;
	uid_t me = geteuid();
	size_t n;

	if (!d)
		return 0;
	n = (size_t)snprintf(prefix, sizeof prefix, "cqrs.%s.v.%s.", engine, view);
	while ((ent = readdir(d))) {
		struct stat st;
		char *end;
		unsigned long long g;
		if (strncmp(ent->d_name, prefix, n))
			continue;
		g = strtoull(ent->d_name + n, &end, 10);
		if (*end || g <= best || g == UINT64_MAX)
			continue;
		if (fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) || st.st_uid != me)
			continue;
		best = g;
	}
	closedir(d);
	return best;
}

/* A view generation left by an earlier run, clean or dirty, applied
 * events only once they were in the journal: an applied_seq past the
 * journal's end proves the journal lost acknowledged events (a segment
 * deleted or cut), and the engine refuses to start rather than carry on
 * without them. Only views written from this journal (their origin) are
 * witnesses; another data directory's views under the same engine name are
 * *foreign: rebuilt, never adopted. */
static int check_witness(cqrs_engine *e, const proj_view *pv, uint64_t gen, int *foreign)
{
	char what[160];
	uint64_t applied, origin;

	*foreign = 0;
	if (cqrs__vw_peek(e->name, pv->def.name, gen, &applied, &origin))
		return 0; /* unreadable: it is replaced, and says nothing */
	if (origin != e->journal_origin) {
		*foreign = 1; /* another data directory's views under this engine name */
		return 0;
	}
	if (applied == 0)
		return 0;
	snprintf(what, sizeof what, "view %s generation %llu (applied seq)", pv->def.name,
		 (unsigned long long)gen);
	if (!cqrs__journal_check_seen(e->journal, applied, what))
		return 0;
	return cqrs__fail(CQRS_ECORRUPT,
			  "view %s generation %llu has applied seq %llu, past the end of the journal "
			  "(next seq %llu): the journal lost acknowledged events; restore it, or accept "
			  "the loss with `cqrs journal repair` and remove the old views with `cqrs rm %s`",
			  pv->def.name, (unsigned long long)gen, (unsigned long long)applied,
			  (unsigned long long)cqrs__journal_next_seq(e->journal), e->name);
}

void cqrs__proj_view_config(const cqrs_engine *e, proj_view *pv, uint64_t capacity,
			    uint64_t generation)
{
	uint32_t n = 0;

	memset(&pv->cfg, 0, sizeof pv->cfg);
	pv->cfg.schema = pv->def.row;
	pv->cfg.key_field = pv->def.key_field;
	for (; n < CQRS_VIEW_MAX_SECONDARY && pv->def.index_fields[n]; n++)
		pv->cfg.secondary[n] = pv->def.index_fields[n];
	pv->cfg.nsecondary = n;
	for (n = 0; pv->def.ordered_fields && n <= CQRS_ORD_MAX_FIELDS && pv->def.ordered_fields[n]; n++)
		pv->cfg.ordered[n] = pv->def.ordered_fields[n]; /* a fifth field: cqrs__vw_create refuses */
	pv->cfg.capacity = capacity;
	pv->cfg.mode = e->cfg.shm_mode;
	pv->cfg.generation = generation;
	pv->cfg.pretouch = e->cfg.pretouch;
	pv->cfg.origin = e->journal_origin;
}

/* Names of a new generation tried past ones another user took. */
#define FOREIGN_NAME_TRIES 64

int cqrs__proj_view_create(cqrs_engine *e, const char *view, cqrs_vw_config *cfg, cqrs_vw **out)
{
	int rc;

	for (int tries = 0;; tries++) {
		rc = cqrs__vw_create(e->ctl, view, cfg, out);
		/* -EACCES: the name belongs to another user; -EEXIST: it cannot be
		 * opened, or a live process holds it */
		if ((rc != -EACCES && rc != -EEXIST) || tries == FOREIGN_NAME_TRIES ||
		    cfg->generation >= UINT64_MAX - 1)
			return rc;
		cqrs__log(e, CQRS_LOG_WARN, "view %s: generation %llu is taken (%s): trying the next",
			  view, (unsigned long long)cfg->generation, cqrs_last_error());
		cfg->generation++;
	}
}

int cqrs__proj_create_missing(cqrs_engine *e, cqrs_proj *p)
{
	for (uint32_t i = 0; i < p->def.nviews; i++) {
		proj_view *pv = p->views[i];
		int rc;
		if (pv->w)
			continue;
		cqrs__proj_view_config(e, pv, pv->def.capacity,
				       last_generation(e->name, pv->def.name) + 1);
		rc = cqrs__proj_view_create(e, pv->def.name, &pv->cfg, &pv->w);
		if (!rc)
			rc = cqrs__vw_publish(pv->w);
		if (!rc)
			rc = cqrs__vw_mark_dirty(pv->w);
		if (rc)
			return rc;
	}
	return 0;
}

/* Opens every view of p: adopts clean segments when all of them agree on
 * one applied_seq <= last_seq, else creates fresh ones (when there is no
 * room for one, p starts stalled without it). *resume gets the seq the
 * projection has applied (0 when rebuilt). */
int cqrs__proj_open_views(cqrs_engine *e, cqrs_proj *p, uint64_t last_seq, uint64_t *resume)
{
	uint64_t applied = UINT64_MAX;
	int adopted = 1, restored = 0, foreign, rc;

	for (uint32_t i = 0; i < p->def.nviews; i++) {
		proj_view *pv = p->views[i];
		uint64_t gen = last_generation(e->name, pv->def.name);

		pv->w = NULL;
		if (!gen) {
			adopted = 0;
			continue;
		}
		if ((rc = check_witness(e, pv, gen, &foreign)))
			return rc;
		if (foreign) {
			cqrs__log(e, CQRS_LOG_INFO, "view %s: generation %llu was written from another journal: rebuilding",
				  pv->def.name, (unsigned long long)gen);
			adopted = 0;
			continue;
		}
		cqrs__proj_view_config(e, pv, pv->def.capacity, gen);
		rc = cqrs__vw_adopt(e->ctl, pv->def.name, gen, &pv->cfg, &pv->w);
		if (rc) {
			cqrs__log(e, CQRS_LOG_INFO, "view %s: generation %llu not resumable (%s): rebuilding",
				  pv->def.name, (unsigned long long)gen, cqrs_strerror(rc));
			adopted = 0;
			continue;
		}
		/* a generation that grew keeps its capacity (the next grow doubles it) */
		pv->def.capacity = pv->cfg.capacity = cqrs__vw_capacity(pv->w);
		if (applied == UINT64_MAX)
			applied = cqrs__vw_applied_seq(pv->w);
		else if (applied != cqrs__vw_applied_seq(pv->w))
			adopted = 0;
	}
	CQRS_ASSERT(!adopted || applied == UINT64_MAX || applied <= last_seq); /* check_witness */
	if (!adopted)
		applied = 0;
	for (uint32_t i = 0; !adopted && i < p->def.nviews; i++) {
		proj_view *pv = p->views[i];
		uint64_t gen = last_generation(e->name, pv->def.name);
		char old[CQRS_SEG_NAME_MAX];
		if (pv->w) {
			cqrs__vw_retire(pv->w);
			cqrs__vw_close(pv->w);
			pv->w = NULL;
		} else if (gen && cqrs__seg_name_view(old, sizeof old, e->name, pv->def.name, gen) == 0) {
			/* A generation that could not be adopted (a dead run's)
			 * goes before its successor is created, not after the
			 * start (engine/generations.c): where /dev/shm has room
			 * for one set of views, not two, the new one would not
			 * fit beside it. Readers still mapping it find it
			 * orphaned, as they would after the start. */
			(void)cqrs__seg_remove_unused(old);
		}
		cqrs__proj_view_config(e, pv, pv->def.capacity, gen + 1);
	}
	/* Not adoptable (missing after a reboot, dirty after a kill -9, stale):
	 * the newest valid checkpoint and the journal's tail, else a rebuild
	 * from seq 1, which needs the journal from seq 1. */
	if (!adopted && last_seq > 0) {
		uint64_t first;
		restored = cqrs__checkpoint_restore(e, p, last_seq, &applied);
		if (restored < 0)
			return restored;
		if (!restored && (first = cqrs__checkpoint_journal_first(e)) > 1)
			return cqrs__fail(CQRS_ECORRUPT,
					  "view %s: no usable checkpoint, and the journal starts at seq "
					  "%llu: seqs 1..%llu, which a rebuild needs, are gone (restore "
					  "a checkpoint into %s/checkpoints/%s, or the journal's head)",
					  p->views[0]->def.name, (unsigned long long)first,
					  (unsigned long long)first - 1, e->data_dir,
					  p->views[0]->def.name);
	}
	for (uint32_t i = 0; i < p->def.nviews; i++) {
		proj_view *pv = p->views[i];
		if (!adopted && !restored) {
			rc = cqrs__proj_view_create(e, pv->def.name, &pv->cfg, &pv->w);
			if (rc && cqrs__proj_shortage(rc)) {
				/* No room for it now: the projection starts stalled,
				 * without this view, and makes it once there is room
				 * (proj_stall.c). The engine starts all the same. */
				pv->w = NULL;
				if (!atomic_load_explicit(&p->stalled, memory_order_relaxed))
					cqrs__proj_stall(e, p, 1, rc);
				continue;
			}
			if (rc) {
				char why[256];
				snprintf(why, sizeof why, "%s", cqrs_last_error());
				return cqrs__fail(rc, "view %s: cannot create its segment: %s", pv->def.name,
						 why);
			}
		}
		rc = cqrs__vw_publish(pv->w);
		if (!rc)
			rc = cqrs__vw_mark_dirty(pv->w);
		if (rc)
			return rc;
	}
	if (adopted)
		cqrs__log(e, CQRS_LOG_INFO, "projection %s: resumed at seq %llu", p->def.name,
			  (unsigned long long)applied);
	else if (last_seq > 0 && !restored)
		CTR_ADD(e->ctr, proj[p->index].rebuilds, 1); /* rebuilt from the journal at start */
	*resume = applied;
	return 0;
}

void cqrs__proj_close_views(cqrs_engine *e, int clean)
{
	for (uint32_t k = 0; k < e->nprojs; k++) {
		cqrs_proj *p = e->projs[k];
		for (uint32_t i = 0; i < p->def.nviews; i++) {
			if (!p->views[i]->w)
				continue;
			if (clean)
				cqrs__vw_mark_clean(p->views[i]->w);
			cqrs__vw_close(p->views[i]->w);
			p->views[i]->w = NULL;
		}
	}
}
