/*
 * tools/cmd_ls.c - `cqrs ls [ENGINE]`: the engines found through their
 * control segments in /dev/shm ("cqrs.<engine>.ctl"), each with its state
 * and whether its process lives, and its views: generation, rows, capacity,
 * segment bytes, applied_seq and flags.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "cqrs_view.h"
#include "shm/control.h"

static const char *state_name(uint32_t s)
{
	switch (s) {
	case CQRS_ENGINE_STARTING: return "starting";
	case CQRS_ENGINE_RUNNING: return "running";
	case CQRS_ENGINE_STOPPED: return "stopped";
	default: return "?";
	}
}

static int list_engine(const char *engine)
{
	cqrs_ctl *c;
	cqrs_ctl_info ci;
	int rc = cqrs__ctl_open(engine, &c);

	if (rc) {
		printf("%-24s (unreadable: %s)\n", engine, cqrs_strerror(rc));
		return 1;
	}
	cqrs__ctl_info_get(c, &ci);
	printf("%-24s %-9s pid %-8u %s\n", engine, state_name(ci.state), ci.owner_pid,
	       ci.owner_alive ? "alive" : ci.state == CQRS_ENGINE_STOPPED ? "exited" : "stale (dead)");
	if (ci.nviews)
		printf("  %-24s %5s %10s %10s %12s %14s  %s\n", "VIEW", "GEN", "ROWS", "CAPACITY",
		       "BYTES", "APPLIED_SEQ", "FLAGS");
	for (uint32_t i = 0; i < ci.nviews; i++) {
		cqrs_ctl_view e;
		cqrs_view *v;
		cqrs_view_info vi;

		if (cqrs__ctl_view_at(c, i, &e))
			continue;
		if (e.generation == 0) {
			printf("  %-24s %5s (not published)\n", e.name, "-");
			continue;
		}
		rc = cqrs_view_open(engine, e.name, &v);
		if (rc) {
			printf("  %-24s %5llu (unreadable: %s)\n", e.name,
			       (unsigned long long)e.generation, cqrs_strerror(rc));
			continue;
		}
		cqrs_view_stat(v, &vi);
		printf("  %-24s %5llu %10llu %10llu %12llu %14llu  %s%s%s\n", e.name,
		       (unsigned long long)vi.generation, (unsigned long long)vi.rows,
		       (unsigned long long)vi.capacity, (unsigned long long)vi.bytes,
		       (unsigned long long)vi.applied_seq, vi.clean ? "clean" : "dirty",
		       vi.retired ? ",retired" : "", vi.writer_alive ? ",writer alive" : ",writer stale");
		cqrs_view_close(v);
	}
	cqrs__ctl_close(c);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cqrs_cmd_ls(int argc, char **argv)
{
	DIR *d;
	struct dirent *de;
	char *names[1024];
	int n = 0, status = 0;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fputs("usage: cqrs ls [ENGINE]\n", stderr);
		return 2;
	}
	if (argc == 2)
		return list_engine(argv[1]);
	d = opendir("/dev/shm");
	if (!d)
		return tool_fail("ls /dev/shm", -errno);
	while ((de = readdir(d)) && n < 1024) {
		size_t len = strlen(de->d_name);
		/* "cqrs.<engine>.ctl": engine names hold no dots */
		if (len > 9 && !strncmp(de->d_name, "cqrs.", 5) && !strcmp(de->d_name + len - 4, ".ctl") &&
		    !memchr(de->d_name + 5, '.', len - 9))
			names[n++] = strndup(de->d_name + 5, len - 9);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof names[0], cmp_str);
	if (n == 0)
		printf("no engines in /dev/shm\n");
	for (int i = 0; i < n; i++) {
		if (names[i])
			status |= list_engine(names[i]);
		free(names[i]);
	}
	return status;
}
