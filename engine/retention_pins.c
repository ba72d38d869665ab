/*
 * engine/retention_pins.c - the retention plan's pins from the data
 * directory (retention_pins.h): the snapshot and checkpoint listings,
 * reduced to the seqs a restart needs.
 *
 * The listings are the snapshot and checkpoint code's own
 * (cqrs__snapshot_list, cqrs__checkpoint_list), which verify every file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "engine/checkpoint.h"
#include "engine/retention_pins.h"
#include "engine/snapshot.h"

#define SNAP_CAP 64u
#define CKPT_CAP 1024u

static void note_add(char *note, size_t cap, const char *text)
{
	size_t len;

	if (!note || !cap)
		return;
	len = strlen(note);
	snprintf(note + len, cap - len, "%s%s", len ? "; " : "", text);
}

static int snapshot_pin(const char *data_dir, cqrs__ret_pins *out, char *note, size_t cap)
{
	struct cqrs__snapshot_info *s;
	size_t n = 0;
	int rc;

	s = calloc(SNAP_CAP, sizeof *s);
	if (!s)
		return -ENOMEM;
	rc = cqrs__snapshot_list(data_dir, s, SNAP_CAP, &n);
	if (rc == 0 && n > SNAP_CAP) {
		/* More than kept by default: list them all, the oldest counts. */
		size_t want = n + 16;
		struct cqrs__snapshot_info *more = realloc(s, want * sizeof *s);
		if (!more) {
			free(s);
			return -ENOMEM;
		}
		s = more;
		rc = cqrs__snapshot_list(data_dir, s, want, &n);
		if (rc == 0 && n > want) {
			/* Still growing: the oldest is not known, nothing is unpinned. */
			note_add(note, cap, "snapshots appeared while listing (everything pinned)");
			n = 0;
		}
	}
	if (rc == 0) {
		/* Newest first: the oldest valid one kept is the start's last
		 * resort before a full replay. */
		for (size_t i = 0; i < n; i++)
			if (s[i].valid) {
				out->snapshot_valid = true;
				out->snapshot_seq = s[i].seq;
			}
	}
	free(s);
	return rc;
}

static int view_index(cqrs__ret_pins *out, const char *view)
{
	for (uint32_t v = 0; v < out->nviews; v++)
		if (strncmp(out->views[v].view, view, sizeof out->views[v].view) == 0)
			return (int)v;
	if (out->nviews == CQRS__RET_MAX_VIEWS) {
		out->views_unknown = true;
		return -1;
	}
	snprintf(out->views[out->nviews].view, sizeof out->views[0].view, "%s", view);
	return (int)out->nviews++;
}

static int checkpoint_pins(const char *data_dir, const char *const *views, uint32_t nviews,
			   cqrs__ret_pins *out, char *note, size_t cap)
{
	struct cqrs__checkpoint_info *c;
	size_t n = 0;
	int rc;

	for (uint32_t i = 0; i < nviews; i++)
		view_index(out, views[i]); /* invalid until a checkpoint says otherwise */
	c = calloc(CKPT_CAP, sizeof *c);
	if (!c)
		return -ENOMEM;
	rc = cqrs__checkpoint_list(data_dir, c, CKPT_CAP, &n);
	if (rc == 0 && n > CKPT_CAP) {
		note_add(note, cap, "more checkpoint files than listed (views pin everything)");
		out->views_unknown = true;
	}
	for (size_t i = 0; rc == 0 && i < n && i < CKPT_CAP; i++) {
		int v;

		c[i].view[sizeof c[i].view - 1] = 0;
		v = view_index(out, c[i].view);
		/* Newest first within a view: its first valid one is what a
		 * start loads. */
		if (v >= 0 && c[i].valid && !out->views[v].valid) {
			out->views[v].valid = true;
			out->views[v].seq = c[i].seq;
		}
	}
	free(c);
	return rc;
}

int cqrs__retention_pins(const char *data_dir, const char *const *views, uint32_t nviews,
			 cqrs__ret_pins *out, char *note, size_t cap)
{
	int rc;

	memset(out, 0, sizeof *out);
	if (note && cap)
		note[0] = 0;
	rc = snapshot_pin(data_dir, out, note, cap);
	if (rc == 0)
		rc = checkpoint_pins(data_dir, views, nviews, out, note, cap);
	if (rc)
		return cqrs__fail(rc, "retention: reading the pins in %s: %s", data_dir,
				 cqrs_strerror(rc));
	return 0;
}
