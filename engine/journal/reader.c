/*
 * engine/journal/reader.c - read side: mapping a segment with its header
 * checked, and the iterator used by replay and the CLI.
 *
 * The iterator maps one segment at a time read-only (MAP_SHARED, so it
 * also sees what a live writer has completed) and walks it one command
 * group ahead: it validates a whole group (checksums, seq chain, CMD_END)
 * before returning the group's records one by one, zero-copy. Where the
 * chain stops it classifies the rest of the segment exactly as recovery
 * does (format.c): clean end, torn tail (only in the last segment),
 * or corruption. Moving to the next segment checks that its first seq
 * continues the chain and that its predecessor link (format version 2)
 * names the segment before it. Cost: one XXH3 pass over the bytes plus, at the end
 * of each segment, one scan of its zero tail.
 *
 * Each segment's header schemas are decoded as the iterator enters it
 * (cqrs__journal_iter_schema); a caller that must know when they change
 * (replay reads records by them: engine/schema_check.c) sets a hook that
 * runs there (cqrs__journal_iter_on_segment), so it decides per segment,
 * not per record.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/journal/fault.h"
#include "engine/journal/internal.h"
#include "core/errors.h"

/* End of the file's last data extent, found with SEEK_DATA/SEEK_HOLE:
 * preallocated space that was never written is a hole to them (ext4, xfs,
 * btrfs, tmpfs), so scans of a segment's tail skip the untouched part of
 * its 64 MiB instead of faulting in every zero page. len if unsupported. */
static size_t data_end(int fd, size_t len)
{
	off_t pos = 0, end = 0;

	for (;;) {
		off_t d = lseek(fd, pos, SEEK_DATA), h;

		if (d < 0)
			return errno == ENXIO ? (size_t)end : len;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return len;
		end = h;
		pos = h;
		if ((size_t)h >= len)
			return len;
	}
}

int cqrs__jseg_map(int dirfd, uint64_t first_seq, bool writable, const char *engine, jseg_map *m)
{
	char why[256];
	struct stat st;
	void *p;
	int rc;

	memset(m, 0, sizeof *m);
	m->fd = -1;
	cqrs__jseg_name(m->name, sizeof m->name, first_seq);
	m->fd = writable ? cqrs__jf_openat(dirfd, m->name, O_RDWR, 0)
			 : openat(dirfd, m->name, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0) {
		rc = writable ? m->fd : -errno;
		m->fd = -1;
		return cqrs__fail(rc, "segment %s: cannot open: %s", m->name, cqrs_strerror(rc));
	}
	if (fstat(m->fd, &st) != 0) {
		rc = -errno;
		cqrs__jseg_unmap(m);
		return cqrs__fail(rc, "segment %s: fstat: %s", m->name, cqrs_strerror(rc));
	}
	if (st.st_size < (off_t)JSEG_FIXED) {
		cqrs__jseg_unmap(m);
		return cqrs__fail(CQRS_ECORRUPT, "segment %s, offset 0: file of %lld bytes has no header",
				 m->name, (long long)st.st_size);
	}
	m->len = (size_t)st.st_size;
	p = mmap(NULL, m->len, PROT_READ, MAP_SHARED, m->fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		m->len = 0;
		cqrs__jseg_unmap(m);
		return cqrs__fail(rc, "segment %s: mmap: %s", m->name, cqrs_strerror(rc));
	}
	m->img = p;
	madvise(p, m->len, MADV_SEQUENTIAL);
	rc = cqrs__jseg_header_check(m->img, m->len, &m->h);
	if (rc) {
		const char *e = cqrs_last_error(), *c = strstr(e, ": ");
		/* drop the inner "func:line: " prefix */
		snprintf(why, sizeof why, "%s", c && !memchr(e, ' ', (size_t)(c - e)) ? c + 2 : e);
		cqrs__jseg_unmap(m);
		return cqrs__fail(rc, "segment %s, offset 0: %s", m->name, why);
	}
	if (m->h.first_seq != first_seq) {
		cqrs__jseg_unmap(m);
		return cqrs__fail(CQRS_ECORRUPT, "segment %s, offset 16: header says first seq %" PRIu64,
				 m->name, m->h.first_seq);
	}
	m->scan_len = data_end(m->fd, m->len);
	if (m->scan_len < m->h.header_size)
		m->scan_len = m->h.header_size;
	if (engine && strncmp(m->h.engine, engine, CQRS_NAME_MAX) != 0) {
		snprintf(why, sizeof why, "%.31s", m->h.engine);
		cqrs__jseg_unmap(m);
		return cqrs__fail(CQRS_EFORMAT, "segment %s belongs to engine '%s', not '%s'", m->name,
				 why, engine);
	}
	return 0;
}

void cqrs__jseg_unmap(jseg_map *m)
{
	if (m->img)
		munmap((void *)m->img, m->len);
	if (m->fd >= 0)
		close(m->fd);
	m->img = NULL;
	m->fd = -1;
}

/* ---- iterator ---------------------------------------------------------------- */

struct cqrs_journal_iter {
	int dirfd;
	uint64_t *segs;
	int nseg;
	int si;                 /* current segment index, -1 before the first */
	jseg_map m;
	cqrs_schema **schemas;  /* decoded from the current header, by type */
	uint32_t nschemas;
	size_t off;             /* next record */
	size_t group_end;       /* records before this are validated */
	size_t last_off;        /* the record returned last */
	uint64_t expect;        /* seq expected at group_end */
	uint64_t from;
	jmanifest man;          /* the directory's manifest, if have_man */
	bool have_man;
	bool done;
	int err;
	char engine[CQRS_NAME_MAX];
	cqrs_journal_tail tail;
	cqrs_journal_segment_fn on_segment; /* called as each segment is entered */
	void *on_segment_arg;
};

static void free_schemas(cqrs_journal_iter *it)
{
	for (uint32_t t = 0; t < it->nschemas; t++)
		free(it->schemas[t]);
	free(it->schemas);
	it->schemas = NULL;
	it->nschemas = 0;
}

static int iter_fail(cqrs_journal_iter *it, int rc)
{
	it->err = rc;
	return rc;
}

static int enter_segment(cqrs_journal_iter *it, int si)
{
	bool first = it->si < 0;
	char prev[32];
	size_t prev_end = it->off;
	int rc;

	snprintf(prev, sizeof prev, "%s", it->m.name);
	cqrs__jseg_unmap(&it->m);
	free_schemas(it);
	it->si = si;
	rc = cqrs__jseg_map(it->dirfd, it->segs[si], false, first ? NULL : it->engine, &it->m);
	if (rc)
		return iter_fail(it, rc);
	if (first)
		memcpy(it->engine, it->m.h.engine, CQRS_NAME_MAX);
	/* The predecessor link names a missing segment (only where the
	 * iterator needs what it held: not before the from seq). */
	if (jseg_has_prev(&it->m.h) && it->m.h.prev_first_seq != (si ? it->segs[si - 1] : 0) &&
	    (si > 0 || (it->from < it->m.h.first_seq &&
			!jman_prefix_collected(it->have_man ? &it->man : NULL, it->m.h.first_seq)))) {
		char lost[32];
		cqrs__jseg_name(lost, sizeof lost, it->m.h.prev_first_seq);
		if (first)
			return iter_fail(it, cqrs__fail(CQRS_ECORRUPT,
				"segment %s, offset 88, seq %" PRIu64 ": segment %s (from seq %" PRIu64
				") is missing: the journal's first segment names it as its predecessor",
				it->m.name, it->m.h.first_seq, lost, it->m.h.prev_first_seq));
		return iter_fail(it, cqrs__fail(CQRS_ECORRUPT,
			"segment %s, offset %zu, seq %" PRIu64 ": seq gap: the next segment %s names "
			"%s (from seq %" PRIu64 ") as its predecessor, and it is missing", prev, prev_end,
			it->expect, it->m.name, lost, it->m.h.prev_first_seq));
	}
	if (!first && it->m.h.first_seq != it->expect)
		return iter_fail(it, cqrs__fail(CQRS_ECORRUPT,
			"segment %s, offset %zu, seq %" PRIu64 ": seq gap: the next segment %s "
			"starts at seq %" PRIu64, prev, prev_end, it->expect, it->m.name,
			it->m.h.first_seq));
	it->schemas = calloc(it->m.h.ntypes ? it->m.h.ntypes : 1, sizeof *it->schemas);
	if (!it->schemas)
		return iter_fail(it, -ENOMEM);
	it->nschemas = it->m.h.ntypes;
	for (uint32_t t = 0; t < it->nschemas; t++) {
		cqrs_schema s;
		rc = cqrs__jseg_schema(it->m.img, it->m.len, &it->m.h, t, &s);
		if (rc < 0)
			return iter_fail(it, cqrs__fail(CQRS_ECORRUPT, "segment %s: schema of event type %u "
						       "does not decode", it->m.name, t));
		if (rc == 1) {
			it->schemas[t] = malloc(sizeof s);
			if (!it->schemas[t])
				return iter_fail(it, -ENOMEM);
			*it->schemas[t] = s;
		}
	}
	it->off = it->group_end = it->m.h.header_size;
	it->expect = it->m.h.first_seq;
	if (it->on_segment && (rc = it->on_segment(it->on_segment_arg, it)) != 0)
		return iter_fail(it, rc);
	return 0;
}

int cqrs__journal_iter_open(cqrs_journal_iter **out, const char *dir, uint64_t from_seq)
{
	cqrs_journal_iter *it = calloc(1, sizeof *it);
	int rc, start = 0;

	*out = NULL;
	if (!it)
		return -ENOMEM;
	it->m.fd = -1;
	it->si = -1;
	it->from = from_seq;
	it->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (it->dirfd < 0) {
		rc = -errno;
		free(it);
		return cqrs__fail(rc, "journal %s: %s", dir, cqrs_strerror(rc));
	}
	rc = cqrs__jseg_list(it->dirfd, &it->segs);
	if (rc <= 0) {
		cqrs__journal_iter_close(it);
		return rc < 0 ? rc : cqrs__fail(CQRS_ENOTFOUND, "journal %s: no segments", dir);
	}
	it->nseg = rc;
	/* Segments below a collected prefix are not the journal's (format.c,
	 * A COLLECTED PREFIX). A manifest that does not read is the writer's
	 * and verify's business: the iterator checks only the chain. */
	if (cqrs__jman_read(it->dirfd, &it->man) == 0) {
		int live = cqrs__jman_live_from(&it->man, it->segs, it->nseg);

		it->have_man = true;
		if (live == it->nseg) {
			cqrs__journal_iter_close(it);
			return cqrs__fail(CQRS_ENOTFOUND, "journal %s: no segments from seq %" PRIu64
					 " (where " JMAN_NAME " says it starts)", dir, it->man.first_seq);
		}
		memmove(it->segs, it->segs + live, (size_t)(it->nseg - live) * sizeof *it->segs);
		it->nseg -= live;
		/* A reader that asks for a seq retention took gets an error, never
		 * the events after it as though they followed. */
		if (it->man.collected_seq && from_seq >= 1 && from_seq < it->man.first_seq) {
			uint64_t start = it->man.first_seq;
			cqrs__journal_iter_close(it);
			return cqrs__fail(CQRS_ENOTFOUND, "journal %s: seqs %" PRIu64 "..%" PRIu64 " were "
					 "collected by retention (the journal starts at seq %" PRIu64 "); "
					 "reading from seq %" PRIu64 " needs them (an archived copy, or a "
					 "snapshot or checkpoint after them)", dir, from_seq, start - 1, start,
					 from_seq);
		}
	}
	/* The last segment whose first seq is <= from_seq (by the segments'
	 * names: no scan of the earlier ones). */
	for (int i = 0; i < it->nseg; i++)
		if (it->segs[i] <= from_seq)
			start = i;
	rc = enter_segment(it, start);
	if (rc) {
		cqrs__journal_iter_close(it);
		return rc;
	}
	*out = it;
	return 0;
}

int cqrs__journal_iter_next(cqrs_journal_iter *it, const cqrs_jrec **rec)
{
	if (it->err)
		return it->err;
	if (it->done)
		return 0;
	for (;;) {
		jscan_group g;
		jtail t;

		while (it->off < it->group_end) {
			const cqrs_jrec *r = (const cqrs_jrec *)(it->m.img + it->off);

			it->last_off = it->off;
			it->off += cqrs__jrec_span(r);
			if (r->seq >= it->from) {
				*rec = r;
				return 1;
			}
		}
		if (cqrs__jscan_group(it->m.img, it->m.scan_len, it->off, it->expect, &g)) {
			it->group_end = g.end;
			it->expect += g.count;
			continue;
		}
		if (g.stale) {
			jseg_scan s;
			/* Same message as recovery. */
			cqrs__jseg_scan(it->m.img, it->m.scan_len, it->off, it->expect, &s);
			return iter_fail(it, cqrs__fail(CQRS_ECORRUPT, "segment %s, offset %zu, seq %" PRIu64
						       ": %s", it->m.name, s.tail.bad_off,
						       s.tail.bad_seq, s.tail.why));
		}
		cqrs__jscan_tail(it->m.img, it->m.scan_len, it->off, it->expect, &t);
		if (t.kind == JTAIL_CORRUPT)
			return iter_fail(it, cqrs__fail(CQRS_ECORRUPT, "segment %s, offset %zu, seq %" PRIu64
						       ": %s", it->m.name, t.bad_off, t.bad_seq, t.why));
		if (it->si + 1 < it->nseg) {
			int rc;
			if (t.kind == JTAIL_TORN)
				return iter_fail(it, cqrs__fail(CQRS_ECORRUPT,
					"segment %s, offset %zu, seq %" PRIu64 ": invalid record in a "
					"segment that is not the last", it->m.name, it->off, it->expect));
			rc = enter_segment(it, it->si + 1);
			if (rc)
				return rc;
			continue;
		}
		it->done = true;
		memset(&it->tail, 0, sizeof it->tail);
		it->tail.end = t.kind == JTAIL_TORN ? CQRS_JOURNAL_END_TORN : CQRS_JOURNAL_END_CLEAN;
		it->tail.next_seq = it->expect;
		snprintf(it->tail.segment, sizeof it->tail.segment, "%s", it->m.name);
		it->tail.offset = it->off;
		it->tail.bytes = t.kind == JTAIL_TORN ? t.nz_end - it->off : 0;
		return 0;
	}
}

int cqrs__journal_iter_on_segment(cqrs_journal_iter *it, cqrs_journal_segment_fn fn, void *arg)
{
	int rc;

	if (it->err)
		return it->err;
	it->on_segment = fn;
	it->on_segment_arg = arg;
	rc = fn ? fn(arg, it) : 0;
	return rc ? iter_fail(it, rc) : 0;
}

uint64_t cqrs__journal_iter_start(const cqrs_journal_iter *it)
{
	return it->segs[0];
}

const cqrs_schema *cqrs__journal_iter_schema(const cqrs_journal_iter *it, uint32_t type)
{
	return type < it->nschemas ? it->schemas[type] : NULL;
}

void cqrs__journal_iter_where(const cqrs_journal_iter *it, cqrs_journal_segment_info *seg,
			     uint64_t *offset)
{
	if (seg) {
		memset(seg, 0, sizeof *seg);
		snprintf(seg->name, sizeof seg->name, "%s", it->m.name);
		seg->first_seq = it->m.h.first_seq;
		seg->ctime_ns = it->m.h.ctime_ns;
		seg->file_size = it->m.len;
		seg->header_size = it->m.h.header_size;
		seg->ntypes = it->m.h.ntypes;
		memcpy(seg->engine, it->m.h.engine, CQRS_NAME_MAX);
		seg->engine[CQRS_NAME_MAX - 1] = 0;
	}
	if (offset)
		*offset = it->last_off;
}

void cqrs__journal_iter_tail(const cqrs_journal_iter *it, cqrs_journal_tail *out)
{
	*out = it->tail;
}

void cqrs__journal_iter_close(cqrs_journal_iter *it)
{
	if (!it)
		return;
	cqrs__jseg_unmap(&it->m);
	free_schemas(it);
	free(it->segs);
	if (it->dirfd >= 0)
		close(it->dirfd);
	free(it);
}
