/*
 * tools/segments.c - every /dev/shm name that an engine name owns
 * ("cqrs.<engine>.*"), with its size and owner, and which of them are
 * orphaned (rules in tools/segments.h). Reads the control segment's
 * directory through cqrs__ctl_open_any and the views' live flags through
 * cqrs__seg_open, both validated before use. Cold: CLI only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/segments.h"
#include "core/schema_internal.h"
#include "shm/control.h"
#include "shm/segment.h"

const char *tool_seg_kind_name(tool_seg_kind k)
{
	switch (k) {
	case TOOL_SEG_CONTROL: return "control";
	case TOOL_SEG_BOARD: return "board";
	case TOOL_SEG_VIEW: return "view";
	case TOOL_SEG_UNFINISHED: return "unfinished";
	default: return "other";
	}
}


/* cqrs__seg_view_is_clean for a name as listed in /dev/shm (no '/'). */
static int view_is_clean(const char *listed)
{
	char path[300];

	snprintf(path, sizeof path, "/%s", listed);
	return cqrs__seg_view_is_clean(path);
}

static int cmp_seg(const void *a, const void *b)
{
	return strcmp(((const tool_seg *)a)->name, ((const tool_seg *)b)->name);
}

/* The newest generation of view among the listed segments. */
static uint64_t newest_gen(const tool_seg *v, int n, const char *view, size_t plen)
{
	uint64_t best = 0;

	for (int i = 0; i < n; i++) {
		char other[CQRS_NAME_MAX];
		uint64_t g;

		if (v[i].kind == TOOL_SEG_VIEW && cqrs__seg_parse_view_name(v[i].name + plen, other, &g) &&
		    !strcmp(other, view) && g > best)
			best = g;
	}
	return best;
}

int tool_segments(const char *engine, tool_seg **out)
{
	char prefix[CQRS_NAME_MAX + 16], vprefix[CQRS_NAME_MAX + 16];
	tool_seg *v = NULL;
	int n = 0, cap = 0, have_ctl, live = 0;
	size_t plen, vlen;
	struct dirent *de;
	cqrs_ctl *c = NULL;
	DIR *d;

	*out = NULL;
	plen = (size_t)snprintf(prefix, sizeof prefix, "cqrs.%s.", engine);
	vlen = (size_t)snprintf(vprefix, sizeof vprefix, "cqrs.%s.v.", engine);
	d = opendir("/dev/shm");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct stat st;
		tool_seg *s;
		uint64_t owner;

		if (strncmp(de->d_name, prefix, plen) || strlen(de->d_name) >= sizeof v->name)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			tool_seg *nv = realloc(v, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *v);
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		s = &v[n++];
		memset(s, 0, sizeof *s);
		strcpy(s->name, de->d_name);
		s->size = (uint64_t)st.st_size;
		s->uid = st.st_uid;
		if (cqrs__seg_is_unfinished_name(s->name, &owner)) {
			s->kind = TOOL_SEG_UNFINISHED;
			s->orphaned = !cqrs__seg_owner_alive(owner);
			s->role = s->orphaned ? "orphaned" : "being created";
		} else if (!strcmp(s->name + plen, "ctl")) {
			s->kind = TOOL_SEG_CONTROL;
			s->role = "control";
		} else if (!strcmp(s->name + plen, "wait")) {
			s->kind = TOOL_SEG_BOARD;
			s->role = "board";
		} else {
			char view[CQRS_NAME_MAX];

			s->kind = !strncmp(s->name, vprefix, vlen) &&
						  cqrs__seg_parse_view_name(s->name + vlen, view, &s->generation)
					  ? TOOL_SEG_VIEW
					  : TOOL_SEG_OTHER;
			s->role = "unknown";
		}
	}
	closedir(d);
	have_ctl = cqrs__ctl_open_any(engine, &c) == 0;
	if (have_ctl) {
		cqrs_ctl_info ci;

		cqrs__ctl_info_get(c, &ci);
		live = ci.owner_alive;
	}
	for (int i = 0; i < n; i++) {
		tool_seg *s = &v[i];
		char view[CQRS_NAME_MAX];
		cqrs_ctl_view cur;
		uint64_t gen;

		if (s->kind != TOOL_SEG_VIEW || !cqrs__seg_parse_view_name(s->name + vlen, view, &gen))
			continue;
		if (have_ctl && cqrs__ctl_find_view(c, view, &cur, NULL) == 0 && cur.generation) {
			if (cur.generation == gen)
				s->role = "current";
			else if (gen > cur.generation && live)
				s->role = "pending";
			else
				s->orphaned = 1;
		} else if (live) {
			/* a running engine that does not list the view kept it for a later run */
			s->role = "kept";
		} else if (gen == newest_gen(v, n, view, vlen) && view_is_clean(s->name)) {
			s->role = "kept";
		} else {
			s->orphaned = 1;
		}
		if (s->orphaned)
			s->role = "orphaned";
	}
	if (c)
		cqrs__ctl_close(c);
	if (n)
		qsort(v, (size_t)n, sizeof *v, cmp_seg);
	*out = v;
	return n;
}
