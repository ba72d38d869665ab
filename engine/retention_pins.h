/*
 * engine/retention_pins.h - what pins the journal, read from an engine's
 * data directory: the snapshots (DATA/snapshots) and the view checkpoints
 * (DATA/checkpoints/<view>), for the retention plan
 * (engine/journal/retention.h). Used by the engine's housekeeping thread
 * and by `cqrs journal gc|stat`.
 */
#ifndef CQRS_ENGINE_RETENTION_PINS_H
#define CQRS_ENGINE_RETENTION_PINS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/journal/retention.h"

/* Fills *out (replication off) from data_dir: the oldest valid snapshot
 * (none: everything pinned) and each view's newest valid checkpoint
 * (a view folder without one pins everything). views[0..nviews) are the
 * engine's registered views (NULL, 0 from the CLI, which knows only the
 * folders): one missing from the checkpoints pins everything. `note`
 * says what else pins everything (more files than a listing holds).
 * Returns 0 or -errno (cold: reads and verifies every snapshot and
 * checkpoint file). */
int cqrs__retention_pins(const char *data_dir, const char *const *views, uint32_t nviews,
			 cqrs__ret_pins *out, char *note, size_t cap);

#endif /* CQRS_ENGINE_RETENTION_PINS_H */
