/*
 * shm/remove.c - cqrs_engine_remove_segments (declared in cqrs.h): unlinks
 * the shared-memory segments of an engine that is not running, found by
 * their names in /dev/shm ("cqrs.<engine>.*", shm/segment.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/errors.h"
#include "core/schema_internal.h"
#include "cqrs.h"
#include "shm/control.h"
#include "shm/segment.h"

int cqrs_engine_remove_segments(const char *engine)
{
	char prefix[64];
	cqrs_ctl *ctl;
	DIR *d;
	struct dirent *ent;
	size_t n;
	int removed = 0;

	if (!engine || !cqrs__name_valid(engine, CQRS_NAME_MAX))
		return -EINVAL;
	if (cqrs__ctl_open_any(engine, &ctl) == 0) {
		cqrs_ctl_info info;
		int alive = cqrs__ctl_info_get(ctl, &info) == 0 && info.owner_alive && !info.retired;
		cqrs__ctl_close(ctl);
		if (alive)
			return cqrs__fail(-EBUSY, "engine %s is running", engine);
	}
	if (cqrs__ctl_remove_stale(engine) == 0)
		removed++;
	d = opendir("/dev/shm");
	if (!d)
		return removed;
	n = (size_t)snprintf(prefix, sizeof prefix, "cqrs.%s.", engine);
	while ((ent = readdir(d))) {
		char name[300];
		if (strncmp(ent->d_name, prefix, n))
			continue;
		snprintf(name, sizeof name, "/%s", ent->d_name);
		if (cqrs__seg_retire_unlink(name) == 0) /* readers mapping it move on */
			removed++;
	}
	closedir(d);
	return removed;
}
