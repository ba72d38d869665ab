/*
 * tests/lib/testutil.c - see testutil.h.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/lib/testutil.h"

void tu_unique_name(char *buf, size_t cap, const char *prefix)
{
	static unsigned counter;
	snprintf(buf, cap, "%s_%ld_%u", prefix, (long)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
}

int tu_mkdtemp(char *buf, size_t cap, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(buf, cap, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	return mkdtemp(buf) ? 0 : -errno;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path) ? -errno : 0;
}

int tu_rmrf(const char *path)
{
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tu_shm_unlink_prefix(const char *prefix)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	size_t n = strlen(prefix);
	int removed = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, n)) {
			char name[300];
			snprintf(name, sizeof name, "/%s", e->d_name);
			if (shm_unlink(name) == 0)
				removed++;
		}
	closedir(d);
	return removed;
}

int tu_shm_usage(const char *prefix, unsigned long long *bytes)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	size_t n = strlen(prefix);
	int count = 0;

	if (bytes)
		*bytes = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat st;
		if (strncmp(de->d_name, prefix, n) || fstatat(dirfd(d), de->d_name, &st, 0))
			continue;
		count++;
		if (bytes)
			*bytes += (unsigned long long)st.st_size;
	}
	closedir(d);
	return count;
}
