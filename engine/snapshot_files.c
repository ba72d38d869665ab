/*
 * engine/snapshot_files.c - the snapshot folder (DATA/snapshots): file
 * names, the seqs present, pruning to the newest K, leftovers of a writer
 * that died, and cqrs__snapshot_list for journal retention and the CLI.
 * Names: engine/snapshot_format.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/snapshot.h"

#define SNAP_PREFIX "snap-"
#define SNAP_SUFFIX ".cqsnap"
#define SNAP_DIGITS 20

void cqrs__snapshot_name(char *buf, size_t cap, const char *dir, uint64_t seq)
{
	snprintf(buf, cap, "%s/" SNAP_PREFIX "%0*llu" SNAP_SUFFIX, dir, SNAP_DIGITS,
		 (unsigned long long)seq);
}

/* The seq a file name stands for, or 0 (not a snapshot's name). */
static uint64_t name_seq(const char *name)
{
	uint64_t seq = 0;

	if (strlen(name) != strlen(SNAP_PREFIX) + SNAP_DIGITS + strlen(SNAP_SUFFIX) ||
	    strncmp(name, SNAP_PREFIX, strlen(SNAP_PREFIX)) != 0 ||
	    strcmp(name + strlen(SNAP_PREFIX) + SNAP_DIGITS, SNAP_SUFFIX) != 0)
		return 0;
	for (int i = 0; i < SNAP_DIGITS; i++) {
		char c = name[strlen(SNAP_PREFIX) + i];
		if (c < '0' || c > '9' || seq > (UINT64_MAX - 9) / 10)
			return 0;
		seq = seq * 10 + (uint64_t)(c - '0');
	}
	return seq;
}

static int desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

int cqrs__snapshot_seqs(const char *dir, uint64_t *out, size_t cap, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t *all = NULL;
	size_t k = 0, room = 0;

	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		uint64_t seq = name_seq(de->d_name);

		if (!seq)
			continue;
		if (k == room) {
			uint64_t *p = realloc(all, (room = room ? room * 2 : 16) * sizeof *all);
			if (!p) {
				free(all);
				closedir(d);
				return -ENOMEM;
			}
			all = p;
		}
		all[k++] = seq;
	}
	closedir(d);
	if (k)
		qsort(all, k, sizeof *all, desc);
	for (size_t i = 0; i < k && i < cap; i++)
		out[i] = all[i];
	free(all);
	*n = k;
	return 0;
}

void cqrs__snapshot_prune(const char *dir, uint32_t keep)
{
	uint64_t seqs[256];
	size_t n;
	char path[3400];

	if (cqrs__snapshot_seqs(dir, seqs, 256, &n))
		return;
	for (size_t i = keep; i < n && i < 256; i++) {
		cqrs__snapshot_name(path, sizeof path, dir, seqs[i]);
		unlink(path);
	}
}

void cqrs__snapshot_remove_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[3400];

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".tmp-", 5) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

int cqrs__snapshot_list(const char *data_dir, struct cqrs__snapshot_info *out, size_t cap,
			size_t *n)
{
	char dir[3300];
	uint64_t *seqs;
	cqrs__snap_image *img;
	size_t k;
	int rc;

	*n = 0;
	snprintf(dir, sizeof dir, "%s/snapshots", data_dir);
	seqs = calloc(cap ? cap : 1, sizeof *seqs);
	img = malloc(sizeof *img);
	if (!seqs || !img) {
		free(seqs);
		free(img);
		return -ENOMEM;
	}
	rc = cqrs__snapshot_seqs(dir, seqs, cap, &k);
	for (size_t i = 0; rc == 0 && i < k && i < cap; i++) {
		struct cqrs__snapshot_info *o = &out[i];
		struct stat st;

		memset(o, 0, sizeof *o);
		o->seq = seqs[i];
		cqrs__snapshot_name(o->path, sizeof o->path, dir, seqs[i]);
		if (stat(o->path, &st) == 0) {
			o->bytes = (uint64_t)st.st_size;
			o->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		}
		if (cqrs__snapshot_open(o->path, img, o->why, sizeof o->why) == 0) {
			if (img->hdr.seq != o->seq)
				snprintf(o->why, sizeof o->why, "holds seq %llu, named %llu",
					 (unsigned long long)img->hdr.seq, (unsigned long long)o->seq);
			else
				o->valid = 1;
			cqrs__snapshot_close(img);
		}
	}
	free(seqs);
	free(img);
	if (rc == 0)
		*n = k;
	return rc;
}
