/*
 * engine/projection.c - projections: registration, the cqrs_proj_* calls an
 * apply function makes on its views, and the rebuild and dead-letter retry
 * requests (carried out by the projection's projector, projector_thread.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "engine/engine_internal.h"
#include "engine/projector.h"

/* ---- the apply context --------------------------------------------------------- */

static cqrs_vw *writer_of(cqrs_proj *p, uint32_t view)
{
	return view < p->def.nviews ? p->views[view]->w : NULL;
}

int cqrs_proj_upsert(cqrs_proj *p, uint32_t view, const void *row)
{
	cqrs_vw *w = writer_of(p, view);
	return w ? cqrs__vw_upsert(w, row) : -EINVAL;
}

int cqrs_proj_get(cqrs_proj *p, uint32_t view, const void *key, size_t keylen, void *row_out)
{
	cqrs_vw *w = writer_of(p, view);
	return w ? cqrs__vw_get(w, key, keylen, row_out) : -EINVAL;
}

int cqrs_proj_delete(cqrs_proj *p, uint32_t view, const void *key, size_t keylen)
{
	cqrs_vw *w = writer_of(p, view);
	return w ? cqrs__vw_delete(w, key, keylen) : -EINVAL;
}

int cqrs_proj_fail(cqrs_proj *p, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->fail_reason, sizeof p->fail_reason, fmt, ap);
	va_end(ap);
	p->fail_code = code;
	return code;
}

/* ---- requests ------------------------------------------------------------------- */

cqrs_proj *cqrs__proj_find(cqrs_engine *e, const char *name)
{
	for (uint32_t i = 0; i < e->nprojs; i++)
		if (!strcmp(e->projs[i]->def.name, name))
			return e->projs[i];
	return NULL;
}

int cqrs_engine_rebuild(cqrs_engine *e, const char *projection)
{
	cqrs_proj *p = cqrs__proj_find(e, projection);

	if (!p)
		return CQRS_ENOTFOUND;
	/* seq_cst RMW (cqrs__ring_wake's contract): the projector acts on it
	 * with acquire; in SHARED threading it pairs with the sleeping command
	 * thread's seq_cst count of waiters and re-check of this flag
	 * (cqrs__projectors_requested), so the kick below cannot be lost. */
	(void)atomic_exchange_explicit(&p->rebuild_requested, 1, memory_order_seq_cst);
	cqrs__command_kick(e);
	return 0;
}

int cqrs_engine_retry_dead_letters(cqrs_engine *e, const char *projection)
{
	cqrs_proj *p = cqrs__proj_find(e, projection);

	if (!p)
		return CQRS_ENOTFOUND;
	/* seq_cst RMW: as in cqrs_engine_rebuild. */
	(void)atomic_exchange_explicit(&p->retry_requested, 1, memory_order_seq_cst);
	cqrs__command_kick(e);
	return 0;
}

/* ---- registration ----------------------------------------------------------------- */

int cqrs_register_projection(cqrs_engine *e, const cqrs_projection_def *def)
{
	cqrs_proj *p;

	if (atomic_load_explicit(&e->state, memory_order_relaxed) != ENGINE_OPEN)
		return cqrs__fail(-EINVAL, "register before cqrs_engine_start");
	if (!def || !def->name || !def->apply || def->nviews == 0 ||
	    def->nviews > CQRS_MAX_VIEWS_PER_PROJECTION)
		return cqrs__fail(-EINVAL, "projection needs a name, an apply and 1..%d views",
				 CQRS_MAX_VIEWS_PER_PROJECTION);
	if (def->thread >= e->cfg.projector_threads)
		return cqrs__fail(-EINVAL, "projection %s: thread %u but only %u projector threads",
				 def->name, def->thread, e->cfg.projector_threads);
	if (e->nprojs == CQRS_MAX_PROJECTIONS)
		return cqrs__fail(CQRS_EFULL, "too many projections");
	for (uint32_t i = 0; i < e->nprojs; i++)
		if (!strcmp(e->projs[i]->def.name, def->name))
			return cqrs__fail(-EEXIST, "projection %s registered twice", def->name);
	/* ordered_fields took reserved[0]: the view definition keeps its size */
	_Static_assert(sizeof(cqrs_view_def) == 96, "cqrs_view_def is fixed in CQRS_0");
	for (uint32_t i = 0; i < sizeof def->reserved / sizeof def->reserved[0]; i++)
		if (def->reserved[i])
			return cqrs__fail(-EINVAL, "projection %s: reserved[%u] is set", def->name, i);
	for (uint32_t i = 0; i < def->nviews; i++) {
		const cqrs_view_def *v = &def->views[i];
		for (uint32_t j = 0; j < sizeof v->reserved / sizeof v->reserved[0]; j++)
			if (v->reserved[j])
				return cqrs__fail(-EINVAL, "projection %s: view %u: reserved[%u] is set",
						  def->name, i, j);
		if (!v->name || !v->row || !v->key_field || v->capacity == 0)
			return cqrs__fail(-EINVAL, "projection %s: view %u needs name, row schema, key, capacity",
					 def->name, i);
		if (cqrs_schema_validate(v->row))
			return CQRS_EFORMAT;
	}
	p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->e = e;
	p->def = *def;
	p->index = e->nprojs;
	for (uint32_t i = 0; i < def->nviews; i++) {
		p->views[i] = calloc(1, sizeof(proj_view));
		if (!p->views[i]) {
			while (i-- > 0)
				free(p->views[i]);
			free(p);
			return -ENOMEM;
		}
		p->views[i]->def = def->views[i];
	}
	e->projs[e->nprojs++] = p;
	return 0;
}

void cqrs__projections_free(cqrs_engine *e)
{
	for (uint32_t k = 0; k < e->nprojs; k++) {
		for (uint32_t i = 0; i < e->projs[k]->def.nviews; i++)
			free(e->projs[k]->views[i]);
		free(e->projs[k]);
	}
	e->nprojs = 0;
}
