/*
 * shm/control.c - the engine's control segment; see control.h for the
 * layout.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "shm/control.h"
#include "core/errors.h"
#include "core/schema_internal.h"
#include "shm/wordcopy.h"

#define PARAMS_OFF 128u
#define READ_SPIN 1000                 /* entry seqlock: spins before yielding */
#define READ_GIVEUP_NS 2000000000ull  /* ... and how long before -EAGAIN */

static cqrs_ctl_state *state_line(const cqrs_ctl *c)
{
	return (cqrs_ctl_state *)(void *)(c->seg.base + CQRS_SEG_LINES_OFF);
}

static _Atomic uint64_t *dirent(const cqrs_ctl *c, uint32_t slot)
{
	return (_Atomic uint64_t *)(void *)(c->seg.base + c->p.dir_off +
					   (uint64_t)slot * CQRS_CTL_DIRENT_SIZE);
}

int cqrs__ctl_layout(cqrs_ctl_params *p, uint64_t *total)
{
	uint64_t off = CQRS_SEG_REGION_OFF;

	if (p->max_views == 0 || p->max_views > CQRS_CTL_MAX_VIEWS)
		return -EINVAL;
	if (p->cmd_size > CQRS_CTL_MAX_REGION || p->counters_size > CQRS_CTL_MAX_REGION ||
	    p->gateway_size > CQRS_CTL_MAX_REGION || p->cmd_size % 64 || p->counters_size % 64 ||
	    p->gateway_size % 64)
		return -EINVAL;
	p->reserved0 = 0;
	p->dir_off = off;
	p->dir_size = (uint64_t)p->max_views * CQRS_CTL_DIRENT_SIZE;
	off += p->dir_size;
	p->cmd_off = off;
	off += p->cmd_size;
	p->counters_off = off;
	off += p->counters_size;
	p->gateway_off = off;
	off += p->gateway_size;
	p->board_slots = p->max_views;
	*total = cqrs__align_up(off, 4096);
	return 0;
}

int cqrs__ctl_check(const void *base, size_t len, cqrs_ctl_params *out)
{
	_Alignas(8) uint8_t imm[CQRS_SEG_IMM_SIZE];
	cqrs_ctl_params want;
	uint64_t total;
	int rc = cqrs__seg_check(base, len, CQRS_SEG_CONTROL, imm);

	if (rc)
		return rc;
	memcpy(out, imm + PARAMS_OFF, sizeof *out);
	memset(&want, 0, sizeof want);
	want.max_views = out->max_views;
	want.cmd_size = out->cmd_size;
	want.counters_size = out->counters_size;
	want.gateway_size = out->gateway_size;
	if (cqrs__ctl_layout(&want, &total) || memcmp(&want, out, sizeof want) != 0 || total != len)
		return cqrs__fail(CQRS_ECORRUPT, "control segment: regions do not match its parameters");
	return 0;
}

/* ---- engine side ------------------------------------------------------ */

int cqrs__ctl_create(const char *engine, const cqrs_ctl_config *cfg, cqrs_ctl **out)
{
	static const cqrs_ctl_config defaults = { 0 };
	char name[CQRS_SEG_NAME_MAX];
	cqrs_ctl *c;
	uint64_t total;
	int rc;

	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	rc = cqrs__seg_name_ctl(name, sizeof name, engine);
	if (rc)
		return rc;
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	strcpy(c->engine, engine);
	c->writer = 1;
	c->p.max_views = cfg->max_views ? cfg->max_views : CQRS_CTL_DEFAULT_VIEWS;
	c->p.cmd_size = cqrs__align_up(cfg->cmd_size ? cfg->cmd_size : CQRS_CTL_DEFAULT_CMD, 64);
	c->p.counters_size = cqrs__align_up(cfg->counters_size ? cfg->counters_size
							      : CQRS_CTL_DEFAULT_COUNTERS, 64);
	c->p.gateway_size = cqrs__align_up(cfg->gateway_size ? cfg->gateway_size
							    : CQRS_CTL_DEFAULT_GATEWAY, 64);
	if (cqrs__ctl_layout(&c->p, &total)) {
		free(c);
		return cqrs__fail(-EINVAL, "control segment: parameters out of range");
	}
	rc = cqrs__seg_create(&c->seg, name, total, cfg->mode);
	if (rc) {
		free(c);
		return rc;
	}
	cqrs__seg_init_header(&c->seg, CQRS_SEG_CONTROL, engine, NULL, 0);
	memcpy(c->seg.base + PARAMS_OFF, &c->p, sizeof c->p);
	/* relaxed: published by the seal's release store of the magic */
	atomic_store_explicit(&state_line(c)->state, CQRS_ENGINE_STARTING, memory_order_relaxed);
	rc = cqrs__seg_seal(&c->seg);
	if (rc) { /* another process took the engine's name meanwhile */
		cqrs__ctl_close(c);
		return rc;
	}
	/* The name is ours now: what earlier runs of it were creating when
	 * they died goes. */
	(void)cqrs__seg_sweep_unfinished(engine);
	*out = c;
	return 0;
}

int cqrs__ctl_remove_stale(const char *engine)
{
	char ctl[CQRS_SEG_NAME_MAX], board[CQRS_SEG_NAME_MAX];
	int rc = cqrs__seg_name_ctl(ctl, sizeof ctl, engine), rb;

	if (rc)
		return rc;
	cqrs__seg_name_board(board, sizeof board, engine);
	rc = cqrs__seg_remove_stale(ctl);
	rb = cqrs__seg_remove_stale(board);
	if (rc == -ENOENT)
		rc = rb == -ENOENT ? -ENOENT : rb;
	return rc;
}

int cqrs__ctl_set_state(cqrs_ctl *c, uint32_t state)
{
	if (!c || !c->writer || state < CQRS_ENGINE_STARTING || state > CQRS_ENGINE_STOPPED)
		return -EINVAL;
	/* release: everything the engine published before is visible to a
	 * reader that sees the new state; pairs with cqrs__ctl_info_get's acquire */
	atomic_store_explicit(&state_line(c)->state, state, memory_order_release);
	return 0;
}

int cqrs__ctl_publish(cqrs_ctl *c)
{
	return cqrs__ctl_set_state(c, CQRS_ENGINE_RUNNING);
}

/* The entry seqlock, writer side (shm/view_format.h has the protocol). */
static void dirent_write(cqrs_ctl *c, uint32_t slot, const cqrs_ctl_view *e)
{
	_Atomic uint64_t *w = dirent(c, slot);
	uint64_t s = atomic_load_explicit(&w[0], memory_order_relaxed); /* single writer */

	atomic_store_explicit(&w[0], s + 1, memory_order_relaxed); /* odd: readers retry */
	/* release: orders the odd version before the payload stores; pairs with
	 * the reader's acquire fence before its re-check */
	atomic_thread_fence(memory_order_release);
	cqrs__words_store(&w[1], e, sizeof *e);
	/* release: orders the payload before the even version; pairs with the
	 * reader's acquire load of the version */
	atomic_store_explicit(&w[0], s + 2, memory_order_release);
	/* release: a reader that sees the new version number finds the entry */
	atomic_fetch_add_explicit(&state_line(c)->dir_version, 1, memory_order_release);
}

int cqrs__ctl_add_view(cqrs_ctl *c, const cqrs_ctl_view *e, uint32_t *slot)
{
	cqrs_ctl_view copy;
	uint32_t n;

	if (!c || !c->writer || !e || !cqrs__name_valid(e->name, sizeof e->name))
		return cqrs__fail(-EINVAL, "bad view entry");
	if (cqrs__ctl_find_view(c, e->name, NULL, NULL) == 0)
		return cqrs__fail(-EEXIST, "view %s is already in the directory", e->name);
	n = atomic_load_explicit(&state_line(c)->nviews, memory_order_relaxed); /* single writer */
	if (n >= c->p.max_views)
		return cqrs__fail(CQRS_EFULL, "view directory full (%u views)", c->p.max_views);
	copy = *e;
	memset(copy.name + strlen(copy.name), 0, sizeof copy.name - strlen(copy.name));
	dirent_write(c, n, &copy);
	/* release: the entry is complete before readers count it; pairs with
	 * cqrs__ctl_view_count's acquire */
	atomic_store_explicit(&state_line(c)->nviews, n + 1, memory_order_release);
	if (slot)
		*slot = n;
	return 0;
}

int cqrs__ctl_set_generation(cqrs_ctl *c, uint32_t slot, uint64_t generation,
			    uint64_t schema_hash, uint64_t capacity, uint32_t row_size)
{
	cqrs_ctl_view e;
	int rc;

	if (!c || !c->writer)
		return -EINVAL;
	rc = cqrs__ctl_view_at(c, slot, &e);
	if (rc)
		return rc;
	e.generation = generation;
	e.schema_hash = schema_hash;
	e.capacity = capacity;
	e.row_size = row_size;
	dirent_write(c, slot, &e);
	return 0;
}

int cqrs__ctl_add_command_schema(cqrs_ctl *c, const cqrs_schema *s)
{
	cqrs_ctl_state *st;
	uint32_t used, n;
	size_t need;
	int rc;

	if (!c || !c->writer || !s)
		return -EINVAL;
	rc = cqrs_schema_validate(s);
	if (rc)
		return rc;
	st = state_line(c);
	n = atomic_load_explicit(&st->ncmds, memory_order_relaxed);	   /* single writer */
	used = atomic_load_explicit(&st->cmd_used, memory_order_relaxed); /* single writer */
	for (uint32_t i = 0; i < n; i++) {
		cqrs_schema have;
		if (cqrs__ctl_command_schema(c, i, &have) == 0 &&
		    strncmp(have.name, s->name, CQRS_NAME_MAX) == 0)
			return cqrs__fail(-EEXIST, "command schema %s already published", s->name);
	}
	need = cqrs_schema_blob_size(s);
	if (used + cqrs__align_up(need, 8) > c->p.cmd_size)
		return cqrs__fail(CQRS_EFULL, "command schema region full (%llu bytes)",
				 (unsigned long long)c->p.cmd_size);
	/* Plain stores into bytes no reader looks at until ncmds covers them. */
	rc = cqrs_schema_encode(s, c->seg.base + c->p.cmd_off + used, need);
	if (rc < 0)
		return rc;
	atomic_store_explicit(&st->cmd_used, used + (uint32_t)cqrs__align_up(need, 8),
			      memory_order_relaxed); /* published by the release below */
	/* release: the blob bytes before the count; pairs with the reader's
	 * acquire load of ncmds */
	atomic_store_explicit(&st->ncmds, n + 1, memory_order_release);
	return 0;
}

void cqrs__ctl_destroy(cqrs_ctl *c)
{
	if (!c)
		return;
	if (c->writer) {
		cqrs__ctl_set_state(c, CQRS_ENGINE_STOPPED);
		cqrs__seg_unlink(c->seg.name);
	}
	cqrs__ctl_close(c);
}

/* ---- both sides --------------------------------------------------------- */

static int ctl_open(const char *engine, int trusted_only, cqrs_ctl **out);

int cqrs__ctl_open(const char *engine, cqrs_ctl **out)
{
	return ctl_open(engine, 1, out);
}

int cqrs__ctl_open_any(const char *engine, cqrs_ctl **out)
{
	return ctl_open(engine, 0, out);
}

static int ctl_open(const char *engine, int trusted_only, cqrs_ctl **out)
{
	char name[CQRS_SEG_NAME_MAX];
	cqrs_ctl *c;
	int rc;

	*out = NULL;
	rc = cqrs__seg_name_ctl(name, sizeof name, engine);
	if (rc)
		return rc;
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	strcpy(c->engine, engine);
	rc = cqrs__seg_open(&c->seg, name, CQRS_SEG_CONTROL, 0);
	if (rc == -ENOENT)
		rc = cqrs__fail(-ENOENT, "no engine named %s (%s)", engine, name);
	if (!rc)
		rc = cqrs__ctl_check(c->seg.base, c->seg.size, &c->p);
	if (!rc && strncmp(cqrs__seg_header(&c->seg)->engine, engine, CQRS_NAME_MAX) != 0)
		rc = cqrs__fail(CQRS_ECORRUPT, "%s names another engine", name);
	if (!rc && trusted_only && !cqrs__seg_owner_trusted(c->seg.uid))
		rc = cqrs__fail(-EACCES, "engine %s: %s belongs to uid %u, which this process does not "
				"trust (its own uid, root, or one listed in CQRS_TRUST_UIDS)",
				engine, name, (unsigned)c->seg.uid);
	if (rc) {
		cqrs__ctl_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cqrs__ctl_close(cqrs_ctl *c)
{
	if (!c)
		return;
	cqrs__seg_close(&c->seg);
	free(c);
}

int cqrs__ctl_info_get(const cqrs_ctl *c, cqrs_ctl_info *out)
{
	cqrs_ctl_state *st = state_line(c);
	uint64_t owner = atomic_load_explicit(&cqrs__seg_live_line(&c->seg)->owner,
					      memory_order_relaxed); /* informational */

	memset(out, 0, sizeof *out);
	strcpy(out->engine, c->engine);
	/* acquire: pairs with cqrs__ctl_set_state's release */
	out->state = atomic_load_explicit(&st->state, memory_order_acquire);
	out->owner_pid = cqrs__seg_owner_pid(owner);
	out->owner_alive = cqrs__seg_owner_alive(owner);
	out->retired = !!(atomic_load_explicit(&cqrs__seg_live_line(&c->seg)->flags,
					       memory_order_relaxed) & CQRS_SEG_RETIRED); /* informational */
	out->nviews = cqrs__ctl_view_count(c);
	out->ncmds = cqrs__ctl_command_count(c);
	out->max_views = c->p.max_views;
	out->size = c->seg.size;
	out->dir_version = atomic_load_explicit(&st->dir_version, memory_order_acquire); /* pairs with dirent_write */
	return 0;
}

uint32_t cqrs__ctl_view_count(const cqrs_ctl *c)
{
	/* acquire: pairs with cqrs__ctl_add_view's release of nviews */
	uint32_t n = atomic_load_explicit(&state_line(c)->nviews, memory_order_acquire);
	return n > c->p.max_views ? c->p.max_views : n;
}

uint32_t cqrs__ctl_command_count(const cqrs_ctl *c)
{
	/* acquire: pairs with cqrs__ctl_add_command_schema's release */
	return atomic_load_explicit(&state_line(c)->ncmds, memory_order_acquire);
}

int cqrs__ctl_view_at(const cqrs_ctl *c, uint32_t slot, cqrs_ctl_view *out)
{
	const _Atomic uint64_t *w;
	uint64_t t0 = 0, checked = 0;

	if (slot >= cqrs__ctl_view_count(c))
		return CQRS_ENOTFOUND;
	w = dirent(c, slot);
	for (unsigned tries = 0;; tries++) {
		/* acquire: pairs with dirent_write's release store of the even version */
		uint64_t s1 = atomic_load_explicit(&w[0], memory_order_acquire), s2;

		if (s1 == 0)
			return CQRS_ENOTFOUND;
		if (s1 & 1) {
			/* Being written. A writer preempted mid-entry on a busy machine
			 * holds it for a time slice: spin, then yield while its owner
			 * lives (checked every millisecond), then give up. */
			if (tries < READ_SPIN) {
				cqrs__cpu_relax();
				continue;
			}
			uint64_t now = cqrs__mono_ns();
			if (!t0 || now - checked > 1000000) {
				/* relaxed: a hint for the liveness check */
				uint64_t owner = atomic_load_explicit(&cqrs__seg_live_line(&c->seg)->owner,
								      memory_order_relaxed);
				if (!cqrs__seg_owner_alive(owner))
					return cqrs__fail(CQRS_EWRITERDEAD, "directory slot %u: writer died mid-update",
							 slot);
				checked = now;
				if (!t0)
					t0 = now;
			}
			if (now - t0 > READ_GIVEUP_NS)
				return -EAGAIN;
			sched_yield();
			continue;
		}
		cqrs__words_load(out, &w[1], sizeof *out);
		/* acquire: orders the payload loads before the re-check; pairs with
		 * dirent_write's release fence after the odd version */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&w[0], memory_order_relaxed); /* after the fence above */
		if (s1 != s2)
			continue;
		if (!cqrs__name_valid(out->name, sizeof out->name))
			return cqrs__fail(CQRS_ECORRUPT, "directory slot %u: bad view name", slot);
		return 0;
	}
}

int cqrs__ctl_find_view(const cqrs_ctl *c, const char *name, cqrs_ctl_view *out, uint32_t *slot)
{
	uint32_t n = cqrs__ctl_view_count(c);
	cqrs_ctl_view e;

	for (uint32_t i = 0; i < n; i++)
		if (cqrs__ctl_view_at(c, i, &e) == 0 && strncmp(e.name, name, CQRS_NAME_MAX) == 0) {
			if (out)
				*out = e;
			if (slot)
				*slot = i;
			return 0;
		}
	return CQRS_ENOTFOUND;
}

int cqrs__ctl_command_schema(const cqrs_ctl *c, uint32_t i, cqrs_schema *out)
{
	uint32_t n = cqrs__ctl_command_count(c);
	const uint8_t *r = c->seg.base + c->p.cmd_off;
	uint64_t pos = 0;

	if (i >= n)
		return CQRS_ENOTFOUND;
	for (uint32_t k = 0;; k++) {
		int len = pos < c->p.cmd_size
				  ? cqrs_schema_decode(r + pos, (size_t)(c->p.cmd_size - pos), out)
				  : CQRS_EFORMAT;
		if (len < 0)
			return cqrs__fail(CQRS_EFORMAT, "command schema %u: bad blob", k);
		if (k == i)
			return 0;
		pos += cqrs__align_up((uint64_t)len, 8);
	}
}

void *cqrs__ctl_region(const cqrs_ctl *c, int region, uint64_t *size)
{
	switch (region) {
	case CQRS_CTL_COUNTERS:
		*size = c->p.counters_size;
		return c->seg.base + c->p.counters_off;
	case CQRS_CTL_GATEWAY:
		*size = c->p.gateway_size;
		return c->seg.base + c->p.gateway_off;
	default:
		*size = 0;
		return NULL;
	}
}
