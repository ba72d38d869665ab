/*
 * tools/prom.h - an engine's counters in the Prometheus text exposition
 * format (version 0.0.4, which OpenMetrics scrapers read too), for
 * `cqrs metrics`.
 */
#ifndef CQRS_TOOLS_PROM_H
#define CQRS_TOOLS_PROM_H

#include <stdio.h>

#include "cqrs_counters.h"
#include "shm/control.h"

#define TOOL_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes the metrics of one scrape to f. c and ci are private copies (the
 * engine keeps writing its own); c NULL: no engine is there to read, and
 * only cqrs_engine_up 0 is written. engine names the engine (a label of
 * cqrs_engine_info). */
void tool_prom_write(FILE *f, const char *engine, const cqrs_counters *c, const cqrs_ctl_info *ci);

#endif
