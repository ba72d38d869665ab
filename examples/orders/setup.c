/*
 * examples/orders/setup.c - opening the demo's engine: the durability
 * names, --fresh (segments and data removed), the sizes the write model and
 * views start with, the log callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "examples/orders/demo.h"

/* The engine's log callback: "[level] message" lines on stderr, or with
 * --log-format json one JSON object per line: {"time":"2026-12-04T20:01:02.
 * 123456Z","level":"info","message":"..."} (one fprintf per line, so lines
 * from engine threads do not interleave). */
static void log_cb(void *arg, int level, const char *msg)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	const options *o = arg;
	char esc[2048], when[80];
	size_t n = 0;
	struct timespec ts;
	struct tm tm;

	if (level > CQRS_LOG_WARN && o->quiet)
		return;
	if (!o->log_json) {
		fprintf(stderr, "[%s] %s\n", names[level & 3], msg);
		return;
	}
	for (const unsigned char *p = (const unsigned char *)msg; *p && n + 8 < sizeof esc; p++) {
		if (*p == '"' || *p == '\\') {
			esc[n++] = '\\';
			esc[n++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			n += (size_t)snprintf(esc + n, sizeof esc - n, "\\u%04x", *p);
		} else {
			esc[n++] = (char)*p;
		}
	}
	esc[n] = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
	fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"message\":\"%s\"}\n", when,
		names[level & 3], esc);
}

int demo_parse_durability(const char *s)
{
	if (!strcmp(s, "none")) return CQRS_DURABILITY_NONE;
	if (!strcmp(s, "batch")) return CQRS_DURABILITY_BATCH;
	if (!strcmp(s, "interval")) return CQRS_DURABILITY_INTERVAL;
	return -1;
}

const char *demo_durability_name(int d)
{
	return d == CQRS_DURABILITY_NONE ? "none" : d == CQRS_DURABILITY_BATCH ? "batch" : "interval";
}

/* rm -rf of the engine's files in dir (journal, dead letters): --fresh. */
static int remove_data(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof cmd, "rm -rf -- '%s/journal' '%s/deadletters.log' '%s/snapshots'", dir, dir,
		 dir);
	return system(cmd) == 0 ? 0 : -1;
}

int demo_open_engine(const options *o, orders_model *m, cqrs_engine **out)
{
	cqrs_config cfg;
	int rc;

	if (o->fresh) {
		rc = cqrs_engine_remove_segments(o->name);
		if (rc < 0) {
			fprintf(stderr, "cqrs-orders: %s\n", cqrs_last_error());
			return rc;
		}
		remove_data(o->dir);
	}
	/* about 10 s of load on this 2-core box (2.1M orders at 580k commands/s
	 * came within a few thousand of 2^21) fits the write model and the views
	 * without growing them (faster runs, or many runs over one data
	 * directory, grow them); the load keeps at most 64k orders open, plus
	 * the probe's */
	rc = orders_model_init(m, DEMO_ORDERS);
	if (rc)
		return rc;
	cqrs_config_init(&cfg);
	cfg.name = o->name;
	cfg.data_dir = o->dir;
	cfg.durability = o->durability;
	cfg.projector_threads = 2;
	cfg.threading = o->threading;
	cfg.aggregates_hint = DEMO_ORDERS; /* a power of two: slots are rounded up to one */
	cfg.log = log_cb;
	cfg.log_arg = (void *)o;
	rc = cqrs_engine_open(&cfg, m, out);
	if (rc == 0)
		rc = orders_register(*out, DEMO_ORDERS, 1u << 18, DEMO_CUSTOMERS);
	/* the write model is its two stores: snapshots with the defaults (every
	 * 1M events, the newest 2 kept, one at stop); a restart loads the
	 * newest and replays only the journal after it */
	if (rc == 0)
		rc = cqrs_engine_register_store(*out, "customers", m->customers);
	if (rc == 0)
		rc = cqrs_engine_register_store(*out, "orders", m->orders);
	if (rc == 0 && !o->open_only)
		rc = cqrs_engine_start(*out);
	if (rc) {
		fprintf(stderr, "cqrs-orders: cannot start engine %s in %s: %s (%s)\n", o->name, o->dir,
			cqrs_strerror(rc), cqrs_last_error());
		if (*out)
			cqrs_engine_close(*out);
		*out = NULL;
		orders_model_free(m);
	}
	return rc;
}
