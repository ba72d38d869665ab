/*
 * tools/engine_watch.h - `cqrs metrics`' view of one engine's control
 * segment across the engine's restarts: each snapshot reopens the segment
 * by name when the one held is retired, stopped or its engine dead, so a
 * restarted engine is followed (and an engine that is gone reads as down).
 * Thread-safe (a mutex around the handle; snapshots come from HTTP threads).
 */
#ifndef CQRS_TOOLS_ENGINE_WATCH_H
#define CQRS_TOOLS_ENGINE_WATCH_H

#include "cqrs_counters.h"
#include "shm/control.h"

typedef struct tool_engine_watch tool_engine_watch;

/* A watch on engine (no segment needs to exist yet). NULL on -ENOMEM. */
tool_engine_watch *tool_engine_watch_new(const char *engine);
void tool_engine_watch_free(tool_engine_watch *w);

/* Copies the engine's counters and state into *c and *ci. Returns 1 (both
 * filled), or 0 when there is no engine to read (no control segment, or
 * counters not published yet / of another version). Logs each change
 * between up and down. */
int tool_engine_watch_snapshot(tool_engine_watch *w, cqrs_counters *c, cqrs_ctl_info *ci);

#endif
