/*
 * tools/engine_watch.c - an engine's control segment, followed across
 * restarts (tools/engine_watch.h).
 *
 * The engine unlinks its control segment when it stops, and a restarted
 * engine marks a dead one's retired before it removes it and creates its
 * own under the same name: a handle on a retired, stopped or ownerless
 * segment is closed and the name opened again at the next snapshot (a
 * dead engine's segment, not yet replaced, opens again as itself and
 * reads as down). Cost per snapshot: one copy of the counters (about 18
 * KiB), one /proc lookup for the owner's liveness, and an open while the
 * engine is not running.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cqrs.h"
#include "tools/engine_watch.h"
#include "tools/log.h"

struct tool_engine_watch {
	pthread_mutex_t mu;
	char engine[CQRS_NAME_MAX];
	cqrs_ctl *ctl;
	int last_up; /* -1: not known yet */
};

tool_engine_watch *tool_engine_watch_new(const char *engine)
{
	tool_engine_watch *w = calloc(1, sizeof *w);

	if (!w)
		return NULL;
	pthread_mutex_init(&w->mu, NULL);
	snprintf(w->engine, sizeof w->engine, "%s", engine);
	w->last_up = -1;
	return w;
}

void tool_engine_watch_free(tool_engine_watch *w)
{
	if (!w)
		return;
	cqrs__ctl_close(w->ctl);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static int gone(const cqrs_ctl_info *ci)
{
	return ci->retired || ci->state == CQRS_ENGINE_STOPPED || !ci->owner_alive;
}

static const cqrs_counters *counters_of(const cqrs_ctl *ctl)
{
	uint64_t size;
	const cqrs_counters *c = cqrs__ctl_region(ctl, CQRS_CTL_COUNTERS, &size);

	/* acquire: pairs with the engine's release store of the magic, after
	 * it filled the identity fields. */
	if (!c || size < sizeof *c ||
	    atomic_load_explicit((const _Atomic uint64_t *)&c->magic, memory_order_acquire) !=
		    CQRS_COUNTERS_MAGIC ||
	    c->version != CQRS_COUNTERS_VERSION || c->size != sizeof *c)
		return NULL;
	return c;
}

int tool_engine_watch_snapshot(tool_engine_watch *w, cqrs_counters *c, cqrs_ctl_info *ci)
{
	const cqrs_counters *src = NULL;
	int have = 0, up;

	pthread_mutex_lock(&w->mu);
	if (w->ctl) {
		cqrs__ctl_info_get(w->ctl, ci);
		if (gone(ci)) {
			cqrs__ctl_close(w->ctl);
			w->ctl = NULL;
		}
	}
	if (!w->ctl && cqrs__ctl_open(w->engine, &w->ctl))
		w->ctl = NULL;
	if (w->ctl) {
		cqrs__ctl_info_get(w->ctl, ci);
		src = counters_of(w->ctl);
	}
	if (src) {
		/* A private copy: the engine keeps writing (relaxed single-writer
		 * counters, never torn; values a few us apart from each other). */
		memcpy(c, src, sizeof *c);
		have = 1;
	}
	up = have && ci->state == CQRS_ENGINE_RUNNING && !gone(ci);
	if (up != w->last_up) {
		if (up)
			tool_log(CQRS_LOG_INFO, "engine %s is running (pid %u)", w->engine, ci->owner_pid);
		else
			tool_log(w->last_up == -1 ? CQRS_LOG_INFO : CQRS_LOG_WARN, "engine %s is not running",
				 w->engine);
		w->last_up = up;
	}
	pthread_mutex_unlock(&w->mu);
	return have;
}
