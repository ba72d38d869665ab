/*
 * engine/journal/repair.c - the operator's escape hatch (`cqrs journal
 * repair DIR`): accept the loss recovery refuses to accept on its own.
 *
 * With the writer's LOCK held, the journal is checked from its first
 * segment like the iterator checks it (headers, predecessor links, every
 * record's checksum and seq, each segment's end) and cut at the first
 * problem: the bytes from there to the end of that segment are copied to
 * <segment>.<offset>.cut and zeroed in place, every later segment is
 * renamed to <segment>.cut, and the manifest is rewritten for what is left
 * (removed when nothing is left, so the next open starts a new journal).
 * A manifest that is missing, damaged or claims more than is left is
 * rebuilt. No record byte is deleted. The rules are in format.c.
 *
 * Cost: one checksum pass over the whole journal (as `journal verify`).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/errors.h"
#include "engine/journal/fault.h"
#include "engine/journal/internal.h"

static void problem(cqrs_journal_repair *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(cqrs_journal_repair *out, const char *fmt, ...)
{
	va_list ap;
	char *c;

	if (out->problem[0])
		return; /* the first one is the cut */
	va_start(ap, fmt);
	vsnprintf(out->problem, sizeof out->problem, fmt, ap);
	va_end(ap);
	/* drop an inner "function:line: " prefix taken from cqrs_last_error() */
	c = strstr(out->problem, ": ");
	if (c && !memchr(out->problem, ' ', (size_t)(c - out->problem)))
		memmove(out->problem, c + 2, strlen(c + 2) + 1);
}

/* Renames segments [from, n) to <segment>.cut (or <segment>.K.cut). */
static int move_aside(int dirfd, const char *dir, const uint64_t *segs, int from, int n,
		      cqrs_journal_repair *out)
{
	for (int i = from; i < n; i++) {
		char name[32], to[64];
		int rc = -EEXIST;

		cqrs__jseg_name(name, sizeof name, segs[i]);
		for (int k = 0; k < 100 && rc == -EEXIST; k++) {
			if (k == 0)
				snprintf(to, sizeof to, "%s.cut", name);
			else
				snprintf(to, sizeof to, "%s.%d.cut", name, k);
			if (faccessat(dirfd, to, F_OK, 0) == 0)
				continue;
			rc = cqrs__jf_renameat(dirfd, name, to);
		}
		if (rc)
			return cqrs__fail(rc, "journal %s: cannot move %s aside: %s", dir, name,
					 cqrs_strerror(rc));
		out->segments_moved++;
	}
	return from < n ? cqrs__jf_dirsync(dirfd) : 0;
}

/* Checks segment i (already known to start at the expected seq). Returns 1
 * if it is whole (*next = the seq after it), 0 if it must be cut at *cut
 * (then *cut_seq), or a negative error. */
static int check_segment(int dirfd, const char *dir, const char *engine, const uint64_t *segs,
			 int i, int n, const jmanifest *man, uint64_t *next, jseg_map *m, size_t *cut,
			 uint64_t *cut_seq, cqrs_journal_repair *out)
{
	jseg_scan s;
	int rc;

	rc = cqrs__jseg_map(dirfd, segs[i], true, engine, m);
	if (rc && rc != CQRS_ECORRUPT && rc != CQRS_EFORMAT)
		return rc; /* an I/O error, not damage: repair nothing */
	if (rc) {
		problem(out, "%s", cqrs_last_error());
		return 2; /* the whole segment goes */
	}
	if (jseg_has_prev(&m->h) && m->h.prev_first_seq != (i ? segs[i - 1] : 0) &&
	    !(i == 0 && jman_prefix_collected(man, segs[0]))) {
		problem(out, "segment %s, offset 88: its predecessor link says seq %" PRIu64, m->name,
			m->h.prev_first_seq);
		return 2;
	}
	cqrs__jseg_scan(m->img, m->scan_len, m->h.header_size, m->h.first_seq, &s);
	*next = s.next_seq;
	*cut = s.end;
	*cut_seq = s.next_seq;
	if (s.tail.kind == JTAIL_CORRUPT) {
		problem(out, "segment %s, offset %zu, seq %" PRIu64 ": %s", m->name, s.tail.bad_off,
			s.tail.bad_seq, s.tail.why);
		return 0;
	}
	if (s.tail.kind == JTAIL_TORN) {
		problem(out, "segment %s, offset %zu, seq %" PRIu64 ": %s", m->name, s.end, s.next_seq,
			i + 1 < n ? "invalid record in a segment that is not the last" : "torn tail");
		return 0;
	}
	if (i + 1 < n && s.next_seq != segs[i + 1]) {
		char lost[32];
		cqrs__jseg_name(lost, sizeof lost, s.next_seq);
		problem(out, "segment %s, offset %zu, seq %" PRIu64 ": seq gap: segment %s is missing "
			"(the next segment starts at seq %" PRIu64 ")", m->name, s.end, s.next_seq, lost,
			segs[i + 1]);
		return 0;
	}
	/* What the rewritten manifest will claim is on stable storage. */
	rc = cqrs__jf_fdatasync(m->fd);
	return rc ? cqrs__fail(rc, "journal %s: fdatasync of %s: %s", dir, m->name,
			       cqrs_strerror(rc)) : 1;
}

int cqrs__journal_repair(const char *dir, cqrs_journal_repair *out)
{
	char engine[CQRS_NAME_MAX] = "";
	uint64_t *segs = NULL, expect, start;
	int dirfd, lockfd = -1, n, rc, keep = 0, live;
	jseg_map m = { .fd = -1 };
	jmanifest man, nm;
	bool have_man;

	memset(out, 0, sizeof *out);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return cqrs__fail(-errno, "journal %s: %s", dir, cqrs_strerror(-errno));
	lockfd = cqrs__jf_openat(dirfd, JSEG_LOCK, O_RDWR | O_CREAT, 0644);
	if (lockfd < 0) {
		rc = cqrs__fail(lockfd, "journal %s: cannot open " JSEG_LOCK ": %s", dir,
			       cqrs_strerror(lockfd));
		lockfd = -1;
		goto out;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		rc = cqrs__fail(errno == EWOULDBLOCK ? -EBUSY : -errno, "journal %s is in use by a "
			       "writer (stop the engine first)", dir);
		goto out;
	}
	unlinkat(dirfd, JMAN_TMP, 0);
	rc = cqrs__jman_read(dirfd, &man);
	have_man = rc == 0;
	if (rc && rc != CQRS_ENOTFOUND)
		problem(out, "%s", cqrs_last_error());
	n = cqrs__jseg_list(dirfd, &segs);
	if (n < 0) {
		rc = cqrs__fail(n, "journal %s: cannot list: %s", dir, cqrs_strerror(n));
		goto out;
	}
	/* Segments left below a collected prefix are not the journal's:
	 * neither checked nor moved (retention removes them). */
	live = cqrs__jman_live_from(have_man ? &man : NULL, segs, n);
	memmove(segs, segs + live, (size_t)(n - live) * sizeof *segs);
	n -= live;
	start = have_man ? man.first_seq : 1;
	expect = start;
	if (have_man)
		memcpy(engine, man.engine, sizeof engine);
	for (int i = 0; i < n; i++) {
		uint64_t next = 0, cut_seq = 0;
		size_t cut = 0;
		char name[32];

		cqrs__jseg_name(name, sizeof name, expect);
		if (segs[i] != expect) {
			problem(out, "segment %s (from seq %" PRIu64 ") is missing", name, expect);
			break;
		}
		rc = check_segment(dirfd, dir, engine[0] ? engine : NULL, segs, i, n,
				   have_man ? &man : NULL, &next, &m, &cut, &cut_seq, out);
		if (rc < 0)
			goto out;
		if (rc == 2) {
			cqrs__jseg_unmap(&m);
			break;
		}
		if (!engine[0])
			memcpy(engine, m.h.engine, sizeof engine);
		keep = i + 1;
		expect = next;
		if (rc == 0) {
			size_t end = cqrs__jnonzero_end(m.img, m.scan_len, cut);
			if (end > cut) {
				rc = cqrs__jcut_aside(dirfd, dir, &m, cut, end, "cut", out->cut_file,
						      sizeof out->cut_file);
				if (rc)
					goto out;
				out->cut_bytes = end - cut;
			}
			out->cut_from_seq = cut_seq;
			snprintf(out->cut_segment, sizeof out->cut_segment, "%s", m.name);
			out->cut_offset = cut;
			cqrs__jseg_unmap(&m);
			break;
		}
		cqrs__jseg_unmap(&m);
	}
	if (keep < n && !out->cut_from_seq)
		out->cut_from_seq = expect;
	rc = move_aside(dirfd, dir, segs, keep, n, out);
	if (rc)
		goto out;
	if (have_man && (n == 0 || man.last_segment > segs[n - 1])) {
		char lost[32];
		cqrs__jseg_name(lost, sizeof lost, man.last_segment);
		problem(out, "segment %s (from seq %" PRIu64 ") is missing: " JMAN_NAME " names it as "
			"the newest segment", lost, man.last_segment);
	}
	if (have_man && man.durable_seq >= expect)
		problem(out, JMAN_NAME " says seqs up to %" PRIu64 " were in the journal; it ends "
			"at seq %" PRIu64, man.durable_seq, expect - 1);
	out->next_seq = expect;
	if (keep == 0) {
		/* Nothing is left: the next open starts a new journal. */
		if (unlinkat(dirfd, JMAN_NAME, 0) != 0 && errno != ENOENT) {
			rc = cqrs__fail(-errno, "journal %s: cannot remove " JMAN_NAME ": %s", dir,
				       cqrs_strerror(-errno));
			goto out;
		}
		out->next_seq = 1;
		rc = cqrs__jf_dirsync(dirfd);
		goto out;
	}
	memset(&nm, 0, sizeof nm);
	memcpy(nm.engine, engine, sizeof nm.engine);
	nm.first_seq = start;
	nm.collected_seq = have_man ? man.collected_seq : 0;
	nm.last_segment = segs[keep - 1];
	nm.durable_seq = expect - 1;
	nm.durability = have_man ? man.durability : 0;
	nm.why = JMAN_REPAIR;
	if (!have_man || man.last_segment != nm.last_segment || man.durable_seq != nm.durable_seq) {
		rc = cqrs__jman_write(dirfd, &nm);
		if (rc)
			rc = cqrs__fail(rc, "journal %s: cannot write " JMAN_NAME ": %s", dir,
				       cqrs_strerror(rc));
		out->manifest_written = rc == 0;
	}
out:
	cqrs__jseg_unmap(&m);
	free(segs);
	if (lockfd >= 0)
		close(lockfd);
	close(dirfd);
	return rc;
}
