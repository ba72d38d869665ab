/*
 * engine/journal/recover.c - recovery when the writer opens a journal
 * directory (the rules are in the essay at the top of format.c).
 *
 *   1. read the manifest, list the segments, check every header (magic,
 *      version, checksum, name, engine) and the extent: predecessor links,
 *      first and newest segment against the manifest (manifest.c); no
 *      segment and no manifest: create the first one (seq 1);
 *   2. scan the segment before the last: it must end cleanly, with a
 *      complete command group, right before the last one's first seq;
 *   3. scan the last segment: corruption refuses with CQRS_ECORRUPT; so
 *      does a log that ends before the manifest's durable seq, or a
 *      missing manifest beside version 2 segments (unless the journal is
 *      one empty segment);
 *   4. a torn tail is copied to <segment>.<offset>.torn (fdatasync,
 *      directory fsync), zeroed in place and fdatasynced;
 *   5. re-preallocate the last segment if it is shorter than its header
 *      says (a file cut by hand), fdatasync it, and resume appending there
 *      (the writer then replaces the manifest) - unless its header
 *      describes other event schemas than the writer's: then the first
 *      record rolls to a new segment (an empty last segment is replaced),
 *      so every segment's records are in the layouts its header names.
 *
 * Cost: one pass over the last two segments (checksums) plus a header read
 * per older segment; replay validates the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/journal/fault.h"
#include "engine/journal/internal.h"
#include "core/errors.h"

static int corrupt(const cqrs_journal *j, const char *seg, size_t off, uint64_t seq, const char *why)
{
	cqrs__jlog(j, CQRS_LOG_ERROR, "journal %s: segment %s, offset %zu, seq %" PRIu64 ": %s",
		   j->dir, seg, off, seq, why);
	return cqrs__fail(CQRS_ECORRUPT, "journal %s: segment %s, offset %zu, seq %" PRIu64 ": %s",
			 j->dir, seg, off, seq, why);
}

int cqrs__jcut_aside(int dirfd, const char *dir, jseg_map *m, size_t off, size_t end,
		     const char *suffix, char *name, size_t cap)
{
	static const uint8_t zeros[65536];
	int fd = -1, rc;

	for (int k = 0; k < 100 && fd < 0; k++) {
		if (k == 0)
			snprintf(name, cap, "%s.%zu.%s", m->name, off, suffix);
		else
			snprintf(name, cap, "%s.%zu.%d.%s", m->name, off, k, suffix);
		fd = cqrs__jf_openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0 && fd != -EEXIST)
			return cqrs__fail(fd, "journal %s: cannot create %s: %s", dir, name,
					 cqrs_strerror(fd));
	}
	if (fd < 0)
		return cqrs__fail(-EEXIST, "journal %s: too many .%s files for %s", dir, suffix, m->name);
	rc = cqrs__jf_pwrite_all(fd, m->img + off, end - off, 0, NULL);
	if (rc == 0)
		rc = cqrs__jf_fdatasync(fd);
	close(fd);
	if (rc == 0)
		rc = cqrs__jf_dirsync(dirfd);
	if (rc)
		return cqrs__fail(rc, "journal %s: saving the cut bytes to %s: %s", dir, name,
				 cqrs_strerror(rc));
	for (size_t p = off; p < end && rc == 0;) {
		size_t n = end - p < sizeof zeros ? end - p : sizeof zeros;
		rc = cqrs__jf_pwrite_all(m->fd, zeros, n, (off_t)p, NULL);
		p += n;
	}
	if (rc == 0)
		rc = cqrs__jf_fdatasync(m->fd);
	if (rc)
		return cqrs__fail(rc, "journal %s: zeroing the cut bytes of %s: %s", dir, m->name,
				 cqrs_strerror(rc));
	return 0;
}

/* Copies the torn tail [off, end) aside, then zeroes it in place. */
static int cut_torn_tail(cqrs_journal *j, jseg_map *m, size_t off, size_t end,
			 cqrs_journal_recovery *rec)
{
	char name[64];
	int rc = cqrs__jcut_aside(j->dirfd, j->dir, m, off, end, "torn", name, sizeof name);

	if (rc)
		return rc;
	rec->torn_bytes = end - off;
	snprintf(rec->torn_file, sizeof rec->torn_file, "%s", name);
	cqrs__jlog(j, CQRS_LOG_WARN, "journal %s: torn tail of %zu bytes at segment %s offset %zu "
		   "(from seq %" PRIu64 ") cut; its bytes are kept in %s", j->dir, end - off, m->name,
		   off, rec->torn_from_seq, name);
	return 0;
}

/* Whether segment m's header describes the event schemas this writer
 * puts in new headers (the same schema area, byte for byte: the blobs
 * are canonical). */
static bool same_schemas(cqrs_journal *j, const jseg_map *m)
{
	jseg_header h;

	memset(j->hdrbuf, 0, j->hsize);
	if (cqrs__jseg_header_encode(j->hdrbuf, j->hsize, j->engine, m->h.first_seq, 0, 0, 0,
				     j->schemas, j->ntypes) < 0)
		return true; /* open checked the schemas: cannot happen */
	memcpy(&h, j->hdrbuf, sizeof h);
	return h.ntypes == m->h.ntypes && h.schema_bytes == m->h.schema_bytes &&
	       memcmp(j->hdrbuf + JSEG_FIXED, m->img + JSEG_FIXED, h.schema_bytes) == 0;
}

/* Logs the error cqrs__fail recorded (cold path: open refuses). */
static int logged(const cqrs_journal *j, int rc)
{
	const char *e = cqrs_last_error(), *c = strstr(e, ": ");

	cqrs__jlog(j, CQRS_LOG_ERROR, "%s", c && !memchr(e, ' ', (size_t)(c - e)) ? c + 2 : e);
	return rc;
}

int cqrs__jrecover(cqrs_journal *j, cqrs_journal_recovery *rec)
{
	uint64_t *segs;
	jseg_map m = { .fd = -1 };
	enum jman_state state;
	jextent x;
	jseg_scan s;
	int n, rc = 0;

	memset(rec, 0, sizeof *rec);
	rc = cqrs__jextent_load(j->dirfd, j->dir, j->engine, &x);
	if (rc)
		return logged(j, rc);
	rc = cqrs__jextent_check(&x, j->dir, &state);
	if (rc) {
		cqrs__jextent_free(&x);
		return logged(j, rc);
	}
	segs = x.segs;
	n = x.n;
	if (n == 0) {
		cqrs__jextent_free(&x);
		j->next_seq = j->journal_first_seq = 1;
		rc = cqrs__jw_new_segment(j, 1);
		if (rc)
			return rc;
		rec->next_seq = 1;
		rec->segments = 1;
		rec->manifest_built = true;
		return 0;
	}
	j->journal_first_seq = x.have_man ? x.man.first_seq : segs[0];
	j->journal_collected = x.have_man && x.man.collected_seq != 0;
	if (x.have_man)
		j->man = x.man;
	if (x.collected_left)
		cqrs__jlog(j, CQRS_LOG_INFO, "journal %s: %d segment(s) before seq %" PRIu64 " were "
			   "collected and are not yet removed (the next collection removes them)",
			   j->dir, x.collected_left, x.man.first_seq);

	if (n >= 2) {
		rc = cqrs__jseg_map(j->dirfd, segs[n - 2], false, j->engine, &m);
		if (rc)
			goto out;
		cqrs__jseg_scan(m.img, m.scan_len, m.h.header_size, m.h.first_seq, &s);
		if (s.tail.kind == JTAIL_CORRUPT)
			rc = corrupt(j, m.name, s.tail.bad_off, s.tail.bad_seq, s.tail.why);
		else if (s.tail.kind == JTAIL_TORN)
			rc = corrupt(j, m.name, s.end, s.next_seq,
				     "invalid record in a segment that is not the last");
		else if (s.next_seq != segs[n - 1])
		{
			char why[96];
			snprintf(why, sizeof why, "seq gap: the next segment starts at seq %" PRIu64,
				 segs[n - 1]);
			rc = corrupt(j, m.name, s.end, s.next_seq, why);
		}
		cqrs__jseg_unmap(&m);
		if (rc)
			goto out;
	}

	rc = cqrs__jseg_map(j->dirfd, segs[n - 1], true, j->engine, &m);
	if (rc)
		goto out;
	cqrs__jseg_scan(m.img, m.scan_len, m.h.header_size, m.h.first_seq, &s);
	if (s.tail.kind == JTAIL_CORRUPT) {
		rc = corrupt(j, m.name, s.tail.bad_off, s.tail.bad_seq, s.tail.why);
		goto out;
	}
	/* Before anything is cut: the log must reach every seq the manifest
	 * proves was in it (a zeroed or truncated durable tail). */
	rc = cqrs__jextent_check_end(&x, j->dir, s.next_seq, m.name, s.end);
	if (rc) {
		logged(j, rc);
		goto out;
	}
	if (state == JMAN_MISSING && !(n == 1 && s.records == 0 && s.tail.kind == JTAIL_CLEAN)) {
		rc = logged(j, cqrs__fail(CQRS_ECORRUPT, "journal %s: " JMAN_NAME " is missing: without "
				      "it a lost segment at the end cannot be told from a clean end "
				      "(`cqrs journal repair %s` rebuilds it from the segments after "
				      "checking them)", j->dir, j->dir));
		goto out;
	}
	if (state != JMAN_OK) {
		rec->manifest_built = true;
		if (state == JMAN_LEGACY)
			cqrs__jlog(j, CQRS_LOG_WARN, "journal %s: no " JMAN_NAME " (segments of format "
				   "version 1, written before manifests): writing one from the segments",
				   j->dir);
	}
	if (s.tail.kind == JTAIL_TORN) {
		rec->torn_from_seq = s.next_seq;
		rc = cut_torn_tail(j, &m, s.end, s.tail.nz_end, rec);
		if (rc)
			goto out;
	}
	j->seg_size = m.len;
	if (m.len < m.h.segment_size) {
		int frc = cqrs__jf_fallocate(m.fd, (off_t)m.h.segment_size);
		if (frc == 0)
			j->seg_size = m.h.segment_size;
		else
			cqrs__jlog(j, CQRS_LOG_WARN, "journal %s: cannot re-preallocate %s: %s", j->dir,
				   m.name, cqrs_strerror(frc));
	}
	rc = cqrs__jf_fdatasync(m.fd);
	if (rc) {
		rc = cqrs__fail(rc, "journal %s: fdatasync of %s: %s", j->dir, m.name, cqrs_strerror(rc));
		goto out;
	}
	j->seg_fd = m.fd;
	m.fd = -1; /* kept open for appending */
	j->seg_first_seq = m.h.first_seq;
	j->seg_prev_first_seq = jseg_has_prev(&m.h) ? m.h.prev_first_seq : n >= 2 ? segs[n - 2] : 0;
	j->write_off = s.end;
	if (!same_schemas(j, &m)) {
		/* Its header describes other event schemas than this writer's:
		 * it takes no more records (a segment's records are in its
		 * header's layouts), the first claim rolls to a new segment
		 * (an empty one is replaced under its name). */
		j->write_off = j->seg_size;
		cqrs__jlog(j, CQRS_LOG_INFO, "journal %s: event schemas differ from segment %s's: "
			   "the next record starts a new segment", j->dir, m.name);
	}
	j->next_seq = s.next_seq;
	rec->next_seq = s.next_seq;
	rec->segments = (uint32_t)n;
	cqrs__jlog(j, CQRS_LOG_INFO, "journal %s: %d segment(s), next seq %" PRIu64, j->dir, n,
		   s.next_seq);
out:
	cqrs__jseg_unmap(&m);
	cqrs__jextent_free(&x);
	return rc;
}
