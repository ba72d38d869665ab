/*
 * examples/exchange/setup.c - opening cqrs-exchange's engine: durability
 * names, --fresh, the model's and views' sizes, the log callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/exchange/demo.h"

/* Resting orders at once (the pool, and the order table at twice that:
 * 2 MiB) and the orders view's first capacity (it grows by rebuild when
 * full). Sized for what the flow keeps open (a few thousand), not more:
 * every lookup in a table far larger than the live set misses the cache
 * (measured: half the command thread's time with a 2^20 pool and view). */
#define XDEMO_MAX_ORDERS (1u << 18)
#define XDEMO_ORDERS_VIEW (1u << 16)

static void log_cb(void *arg, int level, const char *msg)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	const xoptions *o = arg;

	if (level > CQRS_LOG_WARN && o->quiet)
		return;
	fprintf(stderr, "[%s] %s\n", names[level & 3], msg);
}

int xdemo_parse_durability(const char *s)
{
	if (!strcmp(s, "none")) return CQRS_DURABILITY_NONE;
	if (!strcmp(s, "batch")) return CQRS_DURABILITY_BATCH;
	if (!strcmp(s, "interval")) return CQRS_DURABILITY_INTERVAL;
	return -1;
}

const char *xdemo_durability_name(int d)
{
	return d == CQRS_DURABILITY_NONE ? "none" : d == CQRS_DURABILITY_BATCH ? "batch" : "interval";
}

int xdemo_open_engine(const xoptions *o, exch_market *m, cqrs_engine **out)
{
	exch_limits lim = { .ninstruments = o->instruments, .max_accounts = o->accounts + 1,
			    .max_orders = XDEMO_MAX_ORDERS, .max_position = INT64_C(1) << 42 };
	exchange_sizes sz = { .levels = 1u << 16, .orders = XDEMO_ORDERS_VIEW,
			      .trades = (uint64_t)EXCH_TRADES_KEPT * o->instruments,
			      .positions = 2 * (uint64_t)(o->accounts + 1) * (o->instruments + 1) };
	cqrs_config cfg;
	int rc;

	*out = NULL;
	if (o->fresh) {
		char cmd[4200];
		rc = cqrs_engine_remove_segments(o->name);
		if (rc < 0) {
			fprintf(stderr, "cqrs-exchange: %s\n", cqrs_last_error());
			return rc;
		}
		snprintf(cmd, sizeof cmd, "rm -rf -- '%s/journal' '%s/deadletters.log'", o->dir, o->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cqrs-exchange: could not remove %s/journal\n", o->dir);
	}
	rc = exch_market_init(m, &lim);
	if (rc) {
		fprintf(stderr, "cqrs-exchange: cannot size the market: %s\n", cqrs_strerror(rc));
		return rc;
	}
	cqrs_config_init(&cfg);
	cfg.name = o->name;
	cfg.data_dir = o->dir;
	cfg.durability = o->durability;
	cfg.projector_threads = 2;
	cfg.threading = o->threading;
	cfg.aggregates_hint = 4096; /* books and accounts */
	cfg.log = log_cb;
	cfg.log_arg = (void *)o;
	rc = cqrs_engine_open(&cfg, m, out);
	if (rc == 0)
		rc = exchange_register(*out, m, &sz);
	if (rc == 0)
		rc = cqrs_engine_start(*out);
	if (rc) {
		fprintf(stderr, "cqrs-exchange: cannot start engine %s in %s: %s (%s)\n", o->name, o->dir,
			cqrs_strerror(rc), cqrs_last_error());
		if (*out)
			cqrs_engine_close(*out);
		*out = NULL;
		exch_market_free(m);
	}
	return rc;
}
