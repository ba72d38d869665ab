/*
 * engine/journal/retention.c - journal retention: the plan (which sealed
 * segments a restart can no longer need, and what pins the others) and
 * the collection (MANIFEST first, then the files). The rules are in
 * retention.h; the manifest's collected prefix in format.c.
 *
 * The plan, for segments s[0..n) (ascending, s[n-1] active):
 *   need = min(snapshot S + 1 (1 without a valid snapshot),
 *              every view's checkpoint C + 1 (1 without one),
 *              replicated R + 1 (when a watermark hook is set));
 *   s[i] is pinned by a need when its last seq >= need, by the policy
 *   when it is among the newest min_segments sealed ones, among the newest
 *   sealed ones that reach min_bytes, or younger than min_age_s; the
 *   active one always. The collected segments are the longest prefix with
 *   no pin (leftovers below the manifest's collected prefix always are);
 *   everything from the first pinned segment on is kept ("after a kept
 *   segment" when nothing else pins it).
 *
 * Collection: the manifest gets the new first seq (fsynced) before any
 * file is touched, then each file is deleted, renamed into the archive
 * folder (copied, fsynced and unlinked across file systems) or handed to
 * the hook, oldest first, and the directory is fsynced. A crash or an
 * error in the middle leaves leftovers, which every reader skips and the
 * next collection finishes.
 *
 * Cost: cold path; a directory listing and one stat per segment, one
 * manifest write, one unlink/rename per collected segment, one directory
 * fsync.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "engine/journal/fault.h"
#include "engine/journal/internal.h"
#include "engine/journal/retention.h"

const char *cqrs__retention_action_name(enum cqrs__ret_action a)
{
	static const char *const names[] = { "keep", "delete", "archive", "hook" };

	return (unsigned)a < 4 ? names[a] : "?";
}

int cqrs__retention_scan(const char *dir, cqrs__ret_seg **out, uint64_t *first_seq)
{
	uint64_t *list = NULL;
	cqrs__ret_seg *segs;
	jmanifest man;
	bool have_man;
	int dirfd, n, live;

	*out = NULL;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return cqrs__fail(-errno, "journal %s: %s", dir, cqrs_strerror(-errno));
	have_man = cqrs__jman_read(dirfd, &man) == 0;
	n = cqrs__jseg_list(dirfd, &list);
	if (n < 0) {
		close(dirfd);
		return cqrs__fail(n, "journal %s: cannot list: %s", dir, cqrs_strerror(n));
	}
	segs = calloc(n ? (size_t)n : 1, sizeof *segs);
	if (!segs) {
		free(list);
		close(dirfd);
		return -ENOMEM;
	}
	live = cqrs__jman_live_from(have_man ? &man : NULL, list, n);
	for (int i = 0; i < n; i++) {
		char name[32];
		struct stat st;

		cqrs__jseg_name(name, sizeof name, list[i]);
		segs[i].first_seq = list[i];
		segs[i].last_seq = i + 1 < n ? list[i + 1] - 1 : UINT64_MAX;
		segs[i].leftover = i < live;
		segs[i].active = i + 1 == n;
		if (fstatat(dirfd, name, &st, 0) == 0) {
			segs[i].bytes = (uint64_t)st.st_size;
			segs[i].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		}
	}
	if (first_seq)
		*first_seq = have_man ? man.first_seq : n ? list[0] : 1;
	free(list);
	close(dirfd);
	*out = segs;
	return n;
}

/* Appends "; "-separated text to a pin string (cut when full). */
static void pin_add(cqrs__ret_seg *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pin_add(cqrs__ret_seg *s, const char *fmt, ...)
{
	size_t len = strlen(s->pins);
	va_list ap;

	if (len + 3 >= sizeof s->pins)
		return;
	if (len) {
		memcpy(s->pins + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(s->pins + len, sizeof s->pins - len, fmt, ap);
	va_end(ap);
}

/* The seq after seq, saturating (a pin at UINT64_MAX needs nothing). */
static uint64_t next_seq(uint64_t seq)
{
	return seq == UINT64_MAX ? UINT64_MAX : seq + 1;
}

void cqrs__retention_plan(cqrs__ret_seg *segs, size_t n, const cqrs__ret_pins *pins,
			  const cqrs__ret_policy *pol, cqrs__ret_summary *sum)
{
	uint64_t need = pins->snapshot_valid ? next_seq(pins->snapshot_seq) : 1, tail_bytes = 0;
	uint32_t sealed_newer = 0;
	bool kept = false;

	memset(sum, 0, sizeof *sum);
	for (uint32_t v = 0; v < pins->nviews; v++) {
		uint64_t vn = pins->views[v].valid ? next_seq(pins->views[v].seq) : 1;
		if (vn < need)
			need = vn;
	}
	if (pins->views_unknown)
		need = 1;
	if (pins->replication && next_seq(pins->replicated_seq) < need)
		need = next_seq(pins->replicated_seq);
	sum->need_seq = need;
	sum->segments = (uint32_t)n;

	/* The policy's pins, from the newest sealed segment back. */
	for (size_t k = n; k-- > 0;) {
		cqrs__ret_seg *s = &segs[k];

		s->pins[0] = 0;
		s->action = CQRS__RET_KEEP;
		sum->journal_bytes += s->bytes;
		if (s->active || s->leftover)
			continue;
		if (sealed_newer < pol->min_segments)
			pin_add(s, "minimum %u segments", pol->min_segments);
		if (pol->min_bytes && tail_bytes < pol->min_bytes)
			pin_add(s, "minimum %" PRIu64 " bytes", pol->min_bytes);
		if (pol->min_age_s && pol->now_ns - s->mtime_ns < (int64_t)pol->min_age_s * 1000000000)
			pin_add(s, "younger than %" PRIu64 " s", pol->min_age_s);
		sealed_newer++;
		tail_bytes += s->bytes;
	}
	for (size_t k = 0; k < n; k++) {
		cqrs__ret_seg *s = &segs[k];

		if (s->leftover) {
			/* Not the journal's any more, whatever the policy. */
			s->action = pol->action == CQRS__RET_KEEP ? CQRS__RET_DELETE : pol->action;
			snprintf(s->pins, sizeof s->pins, "collected before (its file was left)");
			sum->collect++;
			sum->collect_bytes += s->bytes;
			continue;
		}
		if (s->active)
			pin_add(s, "active segment");
		if (s->last_seq >= need) {
			if (!pins->snapshot_valid)
				pin_add(s, "no valid snapshot (restart replays from seq 1)");
			else if (s->last_seq > pins->snapshot_seq)
				pin_add(s, "snapshot %" PRIu64 " (restart replays from %" PRIu64 ")",
					pins->snapshot_seq, pins->snapshot_seq + 1);
			if (pins->views_unknown)
				pin_add(s, "views without known checkpoints (rebuild from seq 1)");
			for (uint32_t v = 0; v < pins->nviews; v++) {
				const cqrs__ret_view_pin *vp = &pins->views[v];
				if (!vp->valid)
					pin_add(s, "view %.63s: no valid checkpoint", vp->view);
				else if (s->last_seq > vp->seq)
					pin_add(s, "view %.63s: checkpoint %" PRIu64, vp->view, vp->seq);
			}
			if (pins->replication && s->last_seq > pins->replicated_seq)
				pin_add(s, "replication at seq %" PRIu64, pins->replicated_seq);
		}
		if (!s->pins[0] && kept)
			pin_add(s, "after a kept segment");
		if (s->pins[0] || pol->action == CQRS__RET_KEEP) {
			if (!s->pins[0])
				pin_add(s, "retention off");
			if (!kept)
				sum->new_first_seq = s->first_seq;
			kept = true;
			if (!s->active)
				sum->pinned_bytes += s->bytes;
			continue;
		}
		s->action = pol->action;
		sum->collect++;
		sum->collect_bytes += s->bytes;
	}
	if (!kept && n)
		sum->new_first_seq = segs[n - 1].first_seq; /* cannot happen: the active is kept */
}

/* ---- collection ------------------------------------------------------------- */

/* Copies name (in dirfd) to dst_dirfd/name, fsynced: for an archive on
 * another file system. */
static int copy_file(int dirfd, const char *name, int dst_dirfd)
{
	char buf[1 << 16];
	int in = openat(dirfd, name, O_RDONLY | O_CLOEXEC), out, rc = 0;
	ssize_t r;
	off_t off = 0;

	if (in < 0)
		return -errno;
	out = openat(dst_dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	while ((r = read(in, buf, sizeof buf)) > 0 && rc == 0) {
		rc = cqrs__jf_pwrite_all(out, buf, (size_t)r, off, NULL);
		off += r;
	}
	if (r < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && fsync(out) != 0)
		rc = -errno;
	close(out);
	close(in);
	if (rc)
		unlinkat(dst_dirfd, name, 0);
	return rc;
}

static int archive_one(int dirfd, const char *dir, const char *name, const char *archive_dir)
{
	int adir, rc;

	if (mkdir(archive_dir, 0755) != 0 && errno != EEXIST)
		return cqrs__fail(-errno, "retention: cannot create archive folder %s: %s", archive_dir,
				 cqrs_strerror(-errno));
	adir = open(archive_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (adir < 0)
		return cqrs__fail(-errno, "retention: archive folder %s: %s", archive_dir,
				 cqrs_strerror(-errno));
	/* Same file system: a rename, made durable on both sides below. */
	rc = renameat(dirfd, name, adir, name) == 0 ? 0 : -errno;
	if (rc == -EXDEV) {
		rc = copy_file(dirfd, name, adir);
		if (rc == 0 && unlinkat(dirfd, name, 0) != 0)
			rc = -errno;
	}
	if (rc == 0)
		rc = cqrs__jf_dirsync(adir);
	close(adir);
	if (rc)
		return cqrs__fail(rc, "retention: cannot move %s/%s to %s: %s", dir, name, archive_dir,
				 cqrs_strerror(rc));
	return 0;
}

static int collect_one(int dirfd, const char *dir, const cqrs__ret_seg *s,
		       const cqrs__ret_policy *pol)
{
	char name[32], path[PATH_MAX + 40];
	int rc;

	cqrs__jseg_name(name, sizeof name, s->first_seq);
	switch (s->action) {
	case CQRS__RET_DELETE:
		if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
			return cqrs__fail(-errno, "retention: cannot remove %s/%s: %s", dir, name,
					 cqrs_strerror(-errno));
		return 0;
	case CQRS__RET_ARCHIVE:
		if (!pol->archive_dir || !pol->archive_dir[0])
			return cqrs__fail(-EINVAL, "retention: archive mode without an archive folder");
		return archive_one(dirfd, dir, name, pol->archive_dir);
	case CQRS__RET_HOOK:
		if (!pol->hook)
			return cqrs__fail(-EINVAL, "retention: hook mode without a hook");
		snprintf(path, sizeof path, "%s/%s", dir, name);
		rc = pol->hook(pol->hook_arg, path, s->first_seq, s->last_seq);
		if (rc)
			return cqrs__fail(rc < 0 ? rc : -EIO, "retention: the hook refused %s (%d); it is "
					 "offered again at the next collection", path, rc);
		if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
			return cqrs__fail(-errno, "retention: cannot remove %s after the hook: %s", path,
					 cqrs_strerror(-errno));
		return 0;
	default:
		return 0;
	}
}

/* Without a writer: the manifest gets the new first seq directly. */
static int set_start_offline(int dirfd, const char *dir, uint64_t first_seq)
{
	jmanifest m;
	int rc = cqrs__jman_read(dirfd, &m);

	if (rc)
		return cqrs__fail(rc == CQRS_ENOTFOUND ? CQRS_ECORRUPT : rc, "journal %s: no valid "
				 JMAN_NAME ": nothing is collected (`cqrs journal verify` says why)", dir);
	if (m.first_seq >= first_seq && (m.collected_seq != 0 || m.first_seq == first_seq))
		return 0; /* already there: only leftovers to finish */
	if (first_seq < m.first_seq || first_seq > m.last_segment)
		return cqrs__fail(-EINVAL, "journal %s: cannot start at seq %" PRIu64 " (" JMAN_NAME
				 " says %" PRIu64 "..segment %" PRIu64 ")", dir, first_seq,
				 m.first_seq, m.last_segment);
	m.first_seq = first_seq;
	m.collected_seq = first_seq;
	m.why = JMAN_COLLECT;
	rc = cqrs__jman_write(dirfd, &m);
	return rc ? cqrs__fail(rc, "journal %s: cannot write " JMAN_NAME ": %s", dir,
			       cqrs_strerror(rc)) : 0;
}

int cqrs__retention_collect(const char *dir, cqrs_journal *j, const cqrs__ret_seg *segs, size_t n,
			    const cqrs__ret_policy *pol, cqrs__ret_summary *sum)
{
	uint64_t first = 0;
	size_t ncollect = 0;
	int dirfd, rc = 0;

	sum->collected = 0;
	sum->collected_bytes = 0;
	for (size_t k = 0; k < n; k++) {
		if (segs[k].action == CQRS__RET_KEEP) {
			first = segs[k].first_seq;
			break;
		}
		ncollect++;
	}
	if (!ncollect)
		return 0;
	if (!first)
		return cqrs__fail(-EINVAL, "retention: a plan that keeps no segment"); /* the active is kept */
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return cqrs__fail(-errno, "journal %s: %s", dir, cqrs_strerror(-errno));
	/* The manifest first: once it is durable, the older files are not
	 * the journal's, whatever happens to them next. */
	rc = j ? cqrs__journal_set_start(j, first) : set_start_offline(dirfd, dir, first);
	for (size_t k = 0; rc == 0 && k < ncollect; k++) {
		rc = collect_one(dirfd, dir, &segs[k], pol);
		if (rc == 0) {
			sum->collected++;
			sum->collected_bytes += segs[k].bytes;
		}
	}
	if (sum->collected) {
		int src = cqrs__jf_dirsync(dirfd);
		if (rc == 0 && src)
			rc = cqrs__fail(src, "journal %s: directory fsync: %s", dir, cqrs_strerror(src));
	}
	close(dirfd);
	return rc;
}

int cqrs__retention_run_offline(const char *dir, const cqrs__ret_pins *pins,
				const cqrs__ret_policy *pol, bool dry_run, cqrs__ret_seg **segs,
				size_t *n, cqrs__ret_summary *sum)
{
	cqrs_journal_extent x;
	int dirfd, lockfd = -1, rc;

	*segs = NULL;
	*n = 0;
	memset(sum, 0, sizeof *sum);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return cqrs__fail(-errno, "journal %s: %s", dir, cqrs_strerror(-errno));
	if (!dry_run) {
		lockfd = cqrs__jf_openat(dirfd, JSEG_LOCK, O_RDWR | O_CREAT, 0644);
		if (lockfd < 0) {
			rc = cqrs__fail(lockfd, "journal %s: cannot open " JSEG_LOCK ": %s", dir,
				       cqrs_strerror(lockfd));
			close(dirfd);
			return rc;
		}
		if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
			rc = cqrs__fail(errno == EWOULDBLOCK ? -EBUSY : -errno, "journal %s is in use by "
				       "a writer (stop the engine first)", dir);
			close(lockfd);
			close(dirfd);
			return rc;
		}
	}
	/* A damaged journal is left as it is: verify and repair first. */
	rc = cqrs__journal_extent(dir, &x);
	if (rc == 0 && !dry_run && !x.manifest)
		rc = cqrs__fail(CQRS_ECORRUPT, "journal %s: no " JMAN_NAME ": nothing is collected "
			       "(`cqrs journal repair` rebuilds it)", dir);
	if (rc == 0) {
		rc = cqrs__retention_scan(dir, segs, NULL);
		if (rc >= 0) {
			*n = (size_t)rc;
			rc = 0;
			cqrs__retention_plan(*segs, *n, pins, pol, sum);
			if (!dry_run)
				rc = cqrs__retention_collect(dir, NULL, *segs, *n, pol, sum);
		}
	}
	if (lockfd >= 0)
		close(lockfd);
	close(dirfd);
	return rc;
}
