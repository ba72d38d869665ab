/*
 * engine/engine.c - the engine object: config defaults, open, registration
 * of command and event types (and how replay reads an event type's older
 * layouts: options, upcaster), durable_seq and error, the log callback.
 * Start and stop live in lifecycle.c, the command thread in
 * command_thread.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/engine_internal.h"
#include "core/errors.h"
#include "core/schema_internal.h"
#include "engine/model/wm_alloc.h"

_Static_assert(offsetof(cqrs_config, size) == 0 && offsetof(cqrs_config, magic) == 4,
	       "size and magic open every cqrs_config layout");
_Static_assert(sizeof(cqrs_config) <= CQRS_CONFIG_MAX_SIZE, "CQRS_CONFIG_MAX_SIZE holds the config");

/* This library's defaults, for cqrs_config_init_size and for the fields
 * past a caller's cfg->size in cqrs_engine_open. */
static const cqrs_config config_defaults = {
	.size = sizeof(cqrs_config),
	.magic = CQRS_CONFIG_MAGIC,
	.durability = CQRS_DURABILITY_BATCH,
	.interval_ms = 10,
	.ring_bytes = 16u << 20,
	.projector_threads = 1,
	.max_batch_commands = 1024,
	.max_batch_bytes = 1u << 20,
	.submit_queue_bytes = 8u << 20,
	.dedup_window = 1024,
	.segment_bytes = 64ull << 20,
	.shm_mode = 0640,
	.idle_yield_us = 100,
	.aggregates_hint = 1u << 16,
	.inline_write_bytes = 256u << 10,
	.threading = CQRS_THREADING_DEDICATED,
	.snapshot_every_events = 1000000,
	.snapshot_keep = 2,
	.snapshot_on_stop = 1,
	.checkpoint_every_events = 1000000,
	.checkpoint_keep = 2,
	.checkpoint_on_stop = 1,
	.ack_level = CQRS_ACK_LOCAL,
	.replication_timeout_ms = 5000,
	.replication_replicas = 3,
	.retention_min_segments = 2,
};

int cqrs_config_init_size(cqrs_config *cfg, size_t size)
{
	size_t known = size < sizeof *cfg ? size : sizeof *cfg;

	if (!cfg || size < CQRS_CONFIG_MIN_SIZE || size > CQRS_CONFIG_MAX_SIZE)
		return cqrs__fail(-EINVAL, "cqrs_config_init_size: size %zu outside %zu..%u",
				  size, (size_t)CQRS_CONFIG_MIN_SIZE, CQRS_CONFIG_MAX_SIZE);
	memcpy(cfg, &config_defaults, known);
	if (size > known) /* fields of a newer cqrs.h: zero, which this library requires */
		memset((char *)cfg + known, 0, size - known);
	cfg->size = (uint32_t)size;
	return 0;
}

/* Copies the caller's config into *out, this library's layout: the first
 * cfg->size bytes from the caller, the rest defaults. Refuses a config that
 * cqrs_config_init did not set up and one that sets fields this library
 * does not know (a program built against a newer cqrs.h). Reads nothing
 * past cfg->size. */
static int config_take(const cqrs_config *cfg, cqrs_config *out)
{
	size_t size;

	if (!cfg)
		return cqrs__fail(-EINVAL, "cqrs_engine_open: cfg is NULL");
	if (cfg->magic != CQRS_CONFIG_MAGIC)
		return cqrs__fail(-EINVAL, "cqrs_config not set up by cqrs_config_init "
				  "(magic 0x%08x, expected 0x%08x)", cfg->magic, CQRS_CONFIG_MAGIC);
	size = cfg->size;
	if (size < CQRS_CONFIG_MIN_SIZE || size > CQRS_CONFIG_MAX_SIZE)
		return cqrs__fail(-EINVAL, "cqrs_config size %zu outside %zu..%u (not set up by "
				  "cqrs_config_init?)", size, (size_t)CQRS_CONFIG_MIN_SIZE,
				  CQRS_CONFIG_MAX_SIZE);
	for (size_t i = sizeof *out; i < size; i++)
		if (((const unsigned char *)cfg)[i])
			return cqrs__fail(-EINVAL, "cqrs_config byte %zu is set, past the %zu bytes "
					  "this library knows (built against a newer cqrs.h?)",
					  i, sizeof *out);
	*out = config_defaults;
	memcpy(out, cfg, size < sizeof *out ? size : sizeof *out);
	out->size = sizeof *out;
	return 0;
}

void cqrs__log(cqrs_engine *e, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cqrs__vlog(e->cfg.log, e->cfg.log_arg, level, fmt, ap);
	va_end(ap);
}

static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

static int mkdir_p(const char *path)
{
	char tmp[3072];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof tmp)
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0750) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0750) && errno != EEXIST)
		return -errno;
	return 0;
}

int cqrs_engine_open(const cqrs_config *user_cfg, void *model, cqrs_engine **out)
{
	cqrs_config full;
	const cqrs_config *cfg = &full;
	cqrs_engine *e;
	int rc;

	*out = NULL;
	rc = config_take(user_cfg, &full);
	if (rc)
		return rc;
	if (!cfg->name || !cqrs__name_valid(cfg->name, CQRS_NAME_MAX))
		return cqrs__fail(-EINVAL, "engine name must be 1..31 of [A-Za-z0-9_]");
	if (!cfg->data_dir || !cfg->data_dir[0] || strlen(cfg->data_dir) >= 3000)
		return cqrs__fail(-EINVAL, "data_dir missing or too long");
	if (cfg->durability < CQRS_DURABILITY_NONE || cfg->durability > CQRS_DURABILITY_INTERVAL)
		return cqrs__fail(-EINVAL, "unknown durability mode %d", cfg->durability);
	if (!is_pow2(cfg->ring_bytes) || cfg->ring_bytes < 4096)
		return cqrs__fail(-EINVAL, "ring_bytes must be a power of two >= 4096");
	if (!is_pow2(cfg->submit_queue_bytes) || cfg->submit_queue_bytes < 4096)
		return cqrs__fail(-EINVAL, "submit_queue_bytes must be a power of two >= 4096");
	if (cfg->threading != CQRS_THREADING_DEDICATED && cfg->threading != CQRS_THREADING_SHARED)
		return cqrs__fail(-EINVAL, "unknown threading mode %d", cfg->threading);
	if (cfg->projector_threads == 0 || cfg->projector_threads > CQRS_MAX_PROJECTORS)
		return cqrs__fail(-EINVAL, "projector_threads must be 1..%d", CQRS_MAX_PROJECTORS);
	if (cfg->max_batch_commands == 0 || cfg->max_batch_bytes < 4096)
		return cqrs__fail(-EINVAL, "batch limits too small");
	if (cfg->ack_level != CQRS_ACK_LOCAL && cfg->ack_level != CQRS_ACK_REPLICATED)
		return cqrs__fail(-EINVAL, "unknown ack level %d", cfg->ack_level);
	if (cfg->ack_level == CQRS_ACK_REPLICATED &&
	    (!cfg->replication_urls || !cfg->replication_urls[0]))
		return cqrs__fail(-EINVAL, "ack level replicated needs replication_urls");
	if (cfg->replication_urls && strlen(cfg->replication_urls) >= sizeof(((cqrs_engine *)0)->repl_urls))
		return cqrs__fail(-EINVAL, "replication_urls too long");
	if (cfg->node_of && cfg->node_of[0] &&
	    (!cqrs__name_valid(cfg->node_of, CQRS_NAME_MAX) || !cfg->replication_urls ||
	     !cfg->replication_urls[0] || cfg->ack_level != CQRS_ACK_LOCAL))
		return cqrs__fail(-EINVAL, "node_of needs an engine name, replication_urls and ack "
				  "level local");
	if (cfg->aggregates_hint > CQRS_WM_MAX_ENTRIES)
		return cqrs__fail(-EINVAL, "aggregates_hint above 2^30");
	e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->model = model;
	snprintf(e->name, sizeof e->name, "%s", cfg->name);
	snprintf(e->data_dir, sizeof e->data_dir, "%s", cfg->data_dir);
	snprintf(e->journal_dir, sizeof e->journal_dir, "%s/journal", cfg->data_dir);
	e->cfg.name = e->name;
	e->cfg.data_dir = e->data_dir;
	if (cfg->replication_urls) { /* the caller's string need not outlive open */
		snprintf(e->repl_urls, sizeof e->repl_urls, "%s", cfg->replication_urls);
		e->cfg.replication_urls = e->repl_urls;
	}
	if (cfg->node_of && cfg->node_of[0]) {
		snprintf(e->node_of, sizeof e->node_of, "%s", cfg->node_of);
		e->cfg.node_of = e->node_of;
	} else {
		e->cfg.node_of = NULL;
	}
	pthread_mutex_init(&e->dl_lock, NULL);
	rc = mkdir_p(e->data_dir);
	if (rc) {
		free(e);
		return cqrs__fail(rc, "cannot create data dir %s: %s", cfg->data_dir, strerror(-rc));
	}
	*out = e;
	return 0;
}

static int check_registration(cqrs_engine *e, uint32_t type, const cqrs_schema *s)
{
	if (atomic_load_explicit(&e->state, memory_order_relaxed) != ENGINE_OPEN) /* owner thread */
		return cqrs__fail(-EINVAL, "register before cqrs_engine_start");
	if (type == 0 || type >= CQRS_MAX_TYPES)
		return cqrs__fail(-EINVAL, "type id %u outside 1..%d", type, CQRS_MAX_TYPES - 1);
	if (!s)
		return cqrs__fail(-EINVAL, "type %u: schema is NULL", type);
	return cqrs_schema_validate(s);
}

int cqrs_register_command(cqrs_engine *e, uint32_t type, const cqrs_schema *s, cqrs_decide_fn decide)
{
	int rc = check_registration(e, type, s);

	if (rc)
		return rc;
	if (!decide)
		return cqrs__fail(-EINVAL, "command %s: decide is NULL", s->name);
	if (e->cmds[type].schema)
		return cqrs__fail(-EEXIST, "command type %u registered twice", type);
	e->cmds[type].schema = s;
	e->cmds[type].decide = decide;
	return 0;
}

int cqrs_register_event(cqrs_engine *e, uint32_t type, const cqrs_schema *s, cqrs_evolve_fn evolve)
{
	int rc = check_registration(e, type, s);

	if (rc)
		return rc;
	if (s->size > sizeof(((cqrs_ctx *)0)->scratch) / 4)
		return cqrs__fail(-EINVAL, "event %s: %u bytes is too large", s->name, s->size);
	if (e->events[type].schema)
		return cqrs__fail(-EEXIST, "event type %u registered twice", type);
	e->events[type].schema = s;
	e->events[type].evolve = evolve;
	e->event_schemas[type] = s;
	return 0;
}

/* The registered event type `type`, before start; else NULL (failed). */
static event_type *registered_event(cqrs_engine *e, uint32_t type, const char *what)
{
	if (atomic_load_explicit(&e->state, memory_order_relaxed) != ENGINE_OPEN) { /* owner thread */
		cqrs__fail(-EINVAL, "%s: before cqrs_engine_start", what);
		return NULL;
	}
	if (type == 0 || type >= CQRS_MAX_TYPES || !e->events[type].schema) {
		cqrs__fail(-EINVAL, "%s: event type %u is not registered", what, type);
		return NULL;
	}
	return &e->events[type];
}

int cqrs_register_event_options(cqrs_engine *e, uint32_t type, uint32_t flags, const void *defaults)
{
	event_type *et = registered_event(e, type, "cqrs_register_event_options");

	if (!et)
		return -EINVAL;
	if (flags & ~CQRS_EVENT_MAP_BY_NAME)
		return cqrs__fail(-EINVAL, "event %s: unknown flags 0x%x", et->schema->name, flags);
	et->flags = flags;
	et->defaults = defaults;
	return 0;
}

int cqrs_register_upcaster(cqrs_engine *e, uint32_t type, cqrs_upcast_fn fn, void *arg)
{
	event_type *et = registered_event(e, type, "cqrs_register_upcaster");

	if (!et)
		return -EINVAL;
	if (!fn)
		return cqrs__fail(-EINVAL, "event %s: upcaster is NULL", et->schema->name);
	if (et->upcast)
		return cqrs__fail(-EEXIST, "event %s: upcaster registered twice", et->schema->name);
	et->upcast = fn;
	et->upcast_arg = arg;
	return 0;
}

uint64_t cqrs_engine_durable_seq(const cqrs_engine *e)
{
	/* acquire: pairs with the command thread's release store after a batch
	 * became durable. */
	return atomic_load_explicit(&e->durable_seq, memory_order_acquire);
}

int cqrs_engine_error(const cqrs_engine *e)
{
	/* relaxed: a status word; callers act on it, nothing else is ordered. */
	return atomic_load_explicit(&e->poison, memory_order_relaxed);
}
