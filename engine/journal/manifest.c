/*
 * engine/journal/manifest.c - the journal's manifest (DIR/MANIFEST: where
 * the journal starts, its newest segment, a seq proven to be in it) and
 * the extent checks that use it with the segments' predecessor links, so
 * that a segment missing at either end or in the middle, or a tail shorter
 * than what was durable, is refused instead of read as a clean end. The
 * layout and what the manifest proves in each mode are in the essay at the
 * top of format.c.
 *
 * Also the writer's manifest update (cqrs__jw_manifest) and the engine's
 * check against other witnesses (cqrs__journal_check_seen).
 *
 * Also the collected prefix retention records (cqrs__journal_set_start,
 * from the housekeeping thread, under the writer's manifest lock).
 *
 * Cost: the manifest is written only on cold paths (open, segment roll,
 * clean close, repair, a collection): one 128-byte write, an fdatasync, a
 * rename and a directory fsync each time. The checks read one header per
 * segment.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/schema_internal.h"
#include "engine/journal/fault.h"
#include "engine/journal/internal.h"

int cqrs__jman_check(const void *img, size_t len, jmanifest *out)
{
	jmanifest m;

	if (len != JMAN_SIZE)
		return cqrs__fail(CQRS_ECORRUPT, JMAN_NAME ": %zu bytes, a manifest has %u", len,
				 JMAN_SIZE);
	memcpy(&m, img, sizeof m);
	if (m.magic != JMAN_MAGIC)
		return cqrs__fail(CQRS_EFORMAT, JMAN_NAME ": not a journal manifest (bad magic)");
	if (m.version != JMAN_VERSION || m.size != JMAN_SIZE)
		return cqrs__fail(CQRS_EFORMAT, JMAN_NAME ": format version %u (size %u), this build "
				 "reads %u", m.version, m.size, JMAN_VERSION);
	if (XXH3_64bits(img, offsetof(jmanifest, checksum)) != m.checksum)
		return cqrs__fail(CQRS_ECORRUPT, JMAN_NAME ": checksum mismatch");
	if (!cqrs__name_valid(m.engine, sizeof m.engine) || m.first_seq == 0 ||
	    m.last_segment < m.first_seq || m.durable_seq + 1 < m.last_segment ||
	    (m.collected_seq != 0 && m.collected_seq != m.first_seq))
		return cqrs__fail(CQRS_ECORRUPT, JMAN_NAME ": impossible contents (seqs out of order)");
	if (out)
		*out = m;
	return 0;
}

int cqrs__jman_read(int dirfd, jmanifest *out)
{
	uint8_t buf[JMAN_SIZE + 1];
	ssize_t n;
	int fd = openat(dirfd, JMAN_NAME, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return CQRS_ENOTFOUND;
		return cqrs__fail(rc, "cannot open " JMAN_NAME ": %s", cqrs_strerror(rc));
	}
	n = pread(fd, buf, sizeof buf, 0);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return cqrs__fail(rc, "cannot read " JMAN_NAME ": %s", cqrs_strerror(rc));
	return cqrs__jman_check(buf, (size_t)n, out);
}

int cqrs__jman_write(int dirfd, jmanifest *m)
{
	int fd, rc;

	m->magic = JMAN_MAGIC;
	m->version = JMAN_VERSION;
	m->size = JMAN_SIZE;
	m->written_ns = cqrs__wall_ns();
	memset(m->reserved, 0, sizeof m->reserved);
	m->checksum = XXH3_64bits(m, offsetof(jmanifest, checksum));
	fd = cqrs__jf_openat(dirfd, JMAN_TMP, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fd;
	rc = cqrs__jf_pwrite_all(fd, m, sizeof *m, 0, NULL);
	if (rc == 0)
		rc = cqrs__jf_fdatasync(fd);
	close(fd);
	if (rc == 0)
		rc = cqrs__jf_renameat(dirfd, JMAN_TMP, JMAN_NAME);
	if (rc == 0)
		rc = cqrs__jf_dirsync(dirfd);
	if (rc)
		unlinkat(dirfd, JMAN_TMP, 0);
	return rc;
}

int cqrs__jman_live_from(const jmanifest *m, const uint64_t *segs, int n)
{
	int i = 0;

	if (!m || m->collected_seq == 0)
		return 0;
	while (i < n && segs[i] < m->collected_seq)
		i++;
	return i;
}

/* ---- the writer's side ---------------------------------------------------------- */

int cqrs__jw_manifest_locked(cqrs_journal *j, uint64_t last_segment, uint64_t durable,
			     enum jman_why why)
{
	jmanifest m;
	int rc;

	if (j->man.magic == JMAN_MAGIC && j->man.first_seq == j->journal_first_seq &&
	    (j->man.collected_seq != 0) == j->journal_collected &&
	    j->man.last_segment == last_segment && j->man.durable_seq == durable)
		return 0;
	memset(&m, 0, sizeof m);
	memcpy(m.engine, j->engine, sizeof m.engine);
	m.first_seq = j->journal_first_seq;
	m.collected_seq = j->journal_collected ? j->journal_first_seq : 0;
	m.last_segment = last_segment;
	m.durable_seq = durable;
	m.durability = (uint32_t)j->cfg.durability;
	m.why = (uint32_t)why;
	rc = cqrs__jman_write(j->dirfd, &m);
	if (rc == 0)
		j->man = m;
	return rc;
}

int cqrs__jw_manifest(cqrs_journal *j, uint64_t durable, enum jman_why why)
{
	int rc;

	/* mu also orders this against a collection (cqrs__journal_set_start) */
	pthread_mutex_lock(&j->mu);
	rc = cqrs__jw_manifest_locked(j, j->seg_first_seq, durable, why);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int cqrs__journal_set_start(cqrs_journal *j, uint64_t first_seq)
{
	uint64_t old_first;
	bool old_collected;
	int rc;

	pthread_mutex_lock(&j->mu);
	if (first_seq < j->journal_first_seq || j->man.magic != JMAN_MAGIC ||
	    first_seq > j->man.last_segment) {
		pthread_mutex_unlock(&j->mu);
		return cqrs__fail(-EINVAL, "journal %s: cannot start at seq %" PRIu64 " (it starts at "
				 "%" PRIu64 ", newest segment %" PRIu64 ")", j->dir, first_seq,
				 j->journal_first_seq, j->man.last_segment);
	}
	if (first_seq == j->journal_first_seq) {
		pthread_mutex_unlock(&j->mu);
		return 0;
	}
	old_first = j->journal_first_seq;
	old_collected = j->journal_collected;
	j->journal_first_seq = first_seq;
	j->journal_collected = true;
	rc = cqrs__jw_manifest_locked(j, j->man.last_segment, j->man.durable_seq, JMAN_COLLECT);
	if (rc) {
		j->journal_first_seq = old_first;
		j->journal_collected = old_collected;
	}
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int cqrs__journal_check_seen(const cqrs_journal *j, uint64_t seq, const char *what)
{
	char name[32];

	if (seq < j->next_seq)
		return 0;
	cqrs__jseg_name(name, sizeof name, j->seg_first_seq);
	cqrs__jlog(j, CQRS_LOG_ERROR, "journal %s: %s has seq %llu, but the journal ends at seq %llu "
		   "(segment %s): seqs %llu..%llu are missing from it", j->dir, what,
		   (unsigned long long)seq, (unsigned long long)(j->next_seq - 1), name,
		   (unsigned long long)j->next_seq, (unsigned long long)seq);
	return cqrs__fail(CQRS_ECORRUPT, "journal %s: %s has seq %llu, but the journal ends at seq "
			 "%llu (segment %s): seqs %llu..%llu are missing from it", j->dir, what,
			 (unsigned long long)seq, (unsigned long long)(j->next_seq - 1), name,
			 (unsigned long long)j->next_seq, (unsigned long long)seq);
}

/* ---- extent --------------------------------------------------------------------- */

/* The last error's text without its "function:line: " prefix. */
static const char *last_why(char *buf, size_t cap)
{
	const char *e = cqrs_last_error(), *c = strstr(e, ": ");

	snprintf(buf, cap, "%s", c && !memchr(e, ' ', (size_t)(c - e)) ? c + 2 : e);
	return buf;
}

void cqrs__jextent_free(jextent *x)
{
	free(x->segs);
	free(x->hdr);
	memset(x, 0, sizeof *x);
}

int cqrs__jextent_load(int dirfd, const char *dir, const char *engine, jextent *x)
{
	char first_engine[CQRS_NAME_MAX], why[256];
	int n, rc;

	memset(x, 0, sizeof *x);
	rc = cqrs__jman_read(dirfd, &x->man);
	if (rc == 0)
		x->have_man = true;
	else if (rc != CQRS_ENOTFOUND)
		return cqrs__fail(rc, "journal %s: %s", dir, last_why(why, sizeof why));
	/* The segments are listed after the manifest was read: the manifest
	 * never names more than the directory held when it was written. */
	n = cqrs__jseg_list(dirfd, &x->segs);
	if (n < 0)
		return cqrs__fail(n, "journal %s: cannot list: %s", dir, cqrs_strerror(n));
	x->collected_left = cqrs__jman_live_from(x->have_man ? &x->man : NULL, x->segs, n);
	if (x->collected_left) {
		n -= x->collected_left;
		memmove(x->segs, x->segs + x->collected_left, (size_t)n * sizeof *x->segs);
	}
	x->n = n;
	x->hdr = calloc(n ? (size_t)n : 1, sizeof *x->hdr);
	if (!x->hdr) {
		cqrs__jextent_free(x);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		jseg_map m;

		rc = cqrs__jseg_map(dirfd, x->segs[i], false, i ? (engine ? engine : first_engine) : engine,
				    &m);
		if (rc) {
			rc = cqrs__fail(rc, "journal %s: %s", dir, last_why(why, sizeof why));
			cqrs__jextent_free(x);
			return rc;
		}
		x->hdr[i] = m.h;
		if (i == 0)
			memcpy(first_engine, m.h.engine, sizeof first_engine);
		x->any_v2 |= jseg_has_prev(&m.h);
		cqrs__jseg_unmap(&m);
	}
	if (x->have_man && strncmp(x->man.engine, engine ? engine : (n ? first_engine : x->man.engine),
				   CQRS_NAME_MAX) != 0) {
		rc = cqrs__fail(CQRS_EFORMAT, "journal %s: " JMAN_NAME " belongs to engine '%.31s'", dir,
			       x->man.engine);
		cqrs__jextent_free(x);
		return rc;
	}
	return 0;
}

static int missing(const char *dir, uint64_t first_seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int missing(const char *dir, uint64_t first_seq, const char *fmt, ...)
{
	char name[32], why[256];
	va_list ap;

	cqrs__jseg_name(name, sizeof name, first_seq);
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return cqrs__fail(CQRS_ECORRUPT, "journal %s: segment %s (from seq %" PRIu64 ") is missing: %s",
			 dir, name, first_seq, why);
}

int cqrs__jextent_check(const jextent *x, const char *dir, enum jman_state *state)
{
	char a[32], b[32];

	*state = JMAN_OK;
	/* The predecessor links: each v2 header names the segment before it. */
	for (int i = 0; i < x->n; i++) {
		const jseg_header *h = &x->hdr[i];
		uint64_t want = i ? x->segs[i - 1] : 0;

		if (!jseg_has_prev(h) || h->prev_first_seq == want ||
		    (i == 0 && x->have_man && jman_prefix_collected(&x->man, x->segs[0])))
			continue;
		cqrs__jseg_name(a, sizeof a, x->segs[i]);
		if (i == 0 || h->prev_first_seq > want)
			return missing(dir, h->prev_first_seq, "segment %s names it as its predecessor%s",
				       a, i ? "" : ", and no segment comes before it");
		cqrs__jseg_name(b, sizeof b, want);
		return cqrs__fail(CQRS_ECORRUPT, "journal %s: segment %s, offset 88: its predecessor is "
				 "seq %" PRIu64 ", but segment %s comes before it", dir, a,
				 h->prev_first_seq, b);
	}
	if (!x->have_man) {
		*state = x->n == 0 ? JMAN_NEW : x->any_v2 ? JMAN_MISSING : JMAN_LEGACY;
		return 0;
	}
	if (x->n == 0)
		return missing(dir, x->man.first_seq, JMAN_NAME " says the journal starts there and "
			       "holds seqs up to %" PRIu64 ", and no segment is left", x->man.durable_seq);
	if (x->segs[0] > x->man.first_seq) {
		cqrs__jseg_name(a, sizeof a, x->segs[0]);
		return missing(dir, x->man.first_seq, JMAN_NAME " says the journal starts there; the "
			       "first segment left is %s", a);
	}
	if (x->segs[0] < x->man.first_seq) {
		cqrs__jseg_name(a, sizeof a, x->segs[0]);
		return cqrs__fail(CQRS_ECORRUPT, "journal %s: segment %s lies before the journal's start "
				 "(seq %" PRIu64 " in " JMAN_NAME ")", dir, a, x->man.first_seq);
	}
	for (int i = 0; i < x->n; i++)
		if (x->segs[i] == x->man.last_segment)
			return 0;
	cqrs__jseg_name(a, sizeof a, x->segs[x->n - 1]);
	if (x->segs[x->n - 1] < x->man.last_segment)
		return missing(dir, x->man.last_segment, JMAN_NAME " names it as the newest segment "
			       "(seqs up to %" PRIu64 " durable); the journal ends with segment %s",
			       x->man.durable_seq, a);
	return missing(dir, x->man.last_segment, JMAN_NAME " names it; it is not in the directory");
}

static int short_tail(const char *dir, uint64_t durable, uint32_t why, uint64_t next_seq,
		      const char *seg, uint64_t off)
{
	static const char *const whys[] = { "?", "creation", "a segment roll", "a clean close",
					    "open", "repair", "an interval fsync", "a collection" };

	return cqrs__fail(CQRS_ECORRUPT, "journal %s: segment %s, offset %" PRIu64 ", seq %" PRIu64
			 ": the journal ends here, but seqs up to %" PRIu64 " were in it (" JMAN_NAME
			 ", written at %s): seqs %" PRIu64 "..%" PRIu64 " are missing", dir, seg, off,
			 next_seq, durable, why < 8 ? whys[why] : "?", next_seq, durable);
}

int cqrs__jextent_check_end(const jextent *x, const char *dir, uint64_t next_seq, const char *seg,
			    uint64_t off)
{
	if (!x->have_man || next_seq > x->man.durable_seq)
		return 0;
	return short_tail(dir, x->man.durable_seq, x->man.why, next_seq, seg, off);
}

/* ---- the same for the tools (journal.h) ---------------------------------------- */

int cqrs__journal_extent(const char *dir, cqrs_journal_extent *out)
{
	enum jman_state state;
	jextent x;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	memset(out, 0, sizeof *out);
	if (dirfd < 0)
		return cqrs__fail(-errno, "journal %s: %s", dir, cqrs_strerror(-errno));
	rc = cqrs__jextent_load(dirfd, dir, NULL, &x);
	close(dirfd);
	if (rc)
		return rc;
	rc = cqrs__jextent_check(&x, dir, &state);
	if (rc == 0) {
		out->manifest = x.have_man;
		out->legacy = state == JMAN_LEGACY;
		out->manifest_missing = state == JMAN_MISSING;
		out->segments = (uint32_t)x.n;
		if (x.have_man) {
			out->first_seq = x.man.first_seq;
			out->last_segment = x.man.last_segment;
			out->durable_seq = x.man.durable_seq;
			out->written_at = x.man.why;
		}
	}
	cqrs__jextent_free(&x);
	return rc;
}

int cqrs__journal_extent_end(const char *dir, const cqrs_journal_extent *x, uint64_t next_seq,
			     const char *segment, uint64_t offset)
{
	if (!x->manifest || next_seq > x->durable_seq)
		return 0;
	return short_tail(dir, x->durable_seq, x->written_at, next_seq, segment, offset);
}
