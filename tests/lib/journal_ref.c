/*
 * tests/lib/journal_ref.c - the reference copy of a journal that
 * retention collects from (journal_ref.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/journal/journal.h"
#include "tests/lib/journal_ref.h"

static char g_jdir[512], g_ref[512];

int journal_ref_init(const char *jdir, const char *ref)
{
	snprintf(g_jdir, sizeof g_jdir, "%s", jdir);
	snprintf(g_ref, sizeof g_ref, "%s", ref);
	if (mkdir(g_ref, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void link_into_ref(const char *path)
{
	char to[1200];
	const char *base = strrchr(path, '/');

	snprintf(to, sizeof to, "%s/%s", g_ref, base ? base + 1 : path);
	(void)link(path, to); /* EEXIST: already there */
}

int journal_ref_hook(void *arg, const char *path, uint64_t first_seq, uint64_t last_seq)
{
	(void)arg;
	(void)first_seq;
	(void)last_seq;
	link_into_ref(path);
	return 0;
}

void journal_ref_link_journal(void)
{
	int fd = open(g_jdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint64_t *segs = NULL;
	int n = fd >= 0 ? cqrs__jseg_list(fd, &segs) : 0;

	for (int i = 0; i < n; i++) {
		char name[32], path[600];
		cqrs__jseg_name(name, sizeof name, segs[i]);
		snprintf(path, sizeof path, "%s/%s", g_jdir, name);
		link_into_ref(path);
	}
	free(segs);
	if (fd >= 0)
		close(fd);
}
