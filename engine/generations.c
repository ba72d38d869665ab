/*
 * engine/generations.c - retiring the view generations that a start does
 * not use.
 *
 * Each view lives in "/cqrs.<engine>.v.<view>.<generation>". A start
 * adopts the newest generation of a view when it was shut down cleanly,
 * else rebuilds into the next one; a run that dies leaves its generations
 * behind, not retired, and readers mapping them would go on reading them.
 * So once the start has published what it uses (the control directory
 * names one generation per view), every other generation of the engine's
 * views is, in this order:
 *   1. marked RETIRED | ORPHANED in its live line (cqrs__seg_remove_unused):
 *      a reader checks RETIRED on every call and moves to the directory's
 *      generation; ORPHANED tells it that what the old one shows may be
 *      ahead of the journal (a dead engine's last batches), so it must not
 *      read it, nor count its applied_seq in cqrs_view_wait;
 *   2. unlinked: POSIX shared memory lives until the last mapping goes, so
 *      readers that have not moved yet still read valid memory, and a
 *      reader that opens by name finds only the directory's generation.
 * This runs before the command thread starts, so no seq is handed out
 * (and no client can wait for one) while an old generation still looks
 * current. Removing them at once also bounds /dev/shm: after any number of
 * crashes an engine leaves one generation per view.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "core/schema_internal.h"
#include "engine/engine_internal.h"
#include "engine/generations.h"
#include "shm/control.h"


int cqrs__generations_retire_old(cqrs_engine *e)
{
	char prefix[CQRS_NAME_MAX + 16];
	cqrs_ctl *ctl = e->ctl;
	struct dirent *ent;
	uint64_t bytes = 0;
	size_t n;
	int removed = 0;
	DIR *d;

	if (!ctl)
		return 0;
	d = opendir("/dev/shm");
	if (!d)
		return 0;
	n = (size_t)snprintf(prefix, sizeof prefix, "cqrs.%s.v.", e->name);
	while ((ent = readdir(d))) {
		char view[CQRS_NAME_MAX], name[sizeof ent->d_name + 1];
		cqrs_ctl_view cur;
		struct stat st;
		uint64_t gen;
		int rc;

		if (strncmp(ent->d_name, prefix, n) || !cqrs__seg_parse_view_name(ent->d_name + n, view, &gen))
			continue;
		snprintf(name, sizeof name, "/%s", ent->d_name);
		if (cqrs__ctl_find_view(ctl, view, &cur, NULL) == 0) {
			if (cur.generation == gen)
				continue;
		} else if (cqrs__seg_view_is_clean(name)) {
			continue;
		}
		if (fstatat(dirfd(d), ent->d_name, &st, 0))
			st.st_size = 0;
		rc = cqrs__seg_remove_unused(name);
		if (rc == 0) {
			removed++;
			bytes += (uint64_t)st.st_size;
		} else if (rc != -ENOENT) {
			cqrs__log(e, CQRS_LOG_WARN, "engine %s: old view segment %s stays: %s", e->name, name,
				  cqrs_strerror(rc));
		}
	}
	closedir(d);
	if (removed)
		cqrs__log(e, CQRS_LOG_INFO, "engine %s: retired %d old view generation%s (%llu bytes)",
			  e->name, removed, removed == 1 ? "" : "s", (unsigned long long)bytes);
	return removed;
}
