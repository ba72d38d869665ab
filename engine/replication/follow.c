/*
 * engine/replication/follow.c - the journal's durable records as they are
 * appended (see follow.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "engine/replication/follow.h"

int cqrs__follow_open(repl_follow *f, const char *dir, const char *engine)
{
	memset(f, 0, sizeof *f);
	f->m.fd = -1;
	snprintf(f->engine, sizeof f->engine, "%s", engine);
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0)
		return cqrs__fail(-errno, "replication: journal %s: %s", dir, strerror(errno));
	return 0;
}

static void unmap(repl_follow *f)
{
	if (f->mapped)
		cqrs__jseg_unmap(&f->m);
	f->mapped = false;
}

static int enter(repl_follow *f, uint64_t first_seq)
{
	int rc;

	unmap(f);
	rc = cqrs__jseg_map(f->dirfd, first_seq, false, f->engine, &f->m);
	if (rc)
		return rc;
	f->mapped = true;
	f->entered = true;
	f->roll = false;
	f->off = f->m.h.header_size;
	f->next = f->m.h.first_seq;
	return 0;
}

int cqrs__follow_seek(repl_follow *f, uint64_t seq)
{
	uint64_t *segs = NULL, start = 0;
	int n, rc;

	unmap(f);
	n = cqrs__jseg_list(f->dirfd, &segs);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		if (segs[i] <= seq)
			start = segs[i];
	free(segs);
	if (!start)
		return cqrs__fail(CQRS_ENOTFOUND, "replication: no journal segment holds seq %" PRIu64, seq);
	rc = enter(f, start);
	if (rc)
		return rc;
	/* Walk to seq: every record before it must be valid and chained. */
	while (f->next < seq) {
		const cqrs_jrec *r = (const cqrs_jrec *)(f->m.img + f->off);

		if (!cqrs__jrec_valid(f->m.img, f->m.len, f->off) || r->seq != f->next)
			return cqrs__fail(CQRS_ENOTFOUND, "replication: segment %s ends at seq %" PRIu64
					  " before seq %" PRIu64, f->m.name, f->next, seq);
		f->off += cqrs__jrec_span(r);
		f->next++;
	}
	return 0;
}

int cqrs__follow_next(repl_follow *f, uint64_t limit, const cqrs_jrec **rec)
{
	const cqrs_jrec *r;

	if (!f->mapped || f->next > limit)
		return 0;
	if (f->roll) {
		int rc = enter(f, f->next);
		if (rc)
			return rc;
		f->roll = false;
	}
	if (!cqrs__jrec_valid(f->m.img, f->m.len, f->off)) {
		/* The writer rolled: the durable seq is the next segment's first.
		 * The caller ends its message here (its records stay mapped);
		 * the next call enters that segment. */
		char name[40];

		cqrs__jseg_name(name, sizeof name, f->next);
		if (faccessat(f->dirfd, name, F_OK, 0) != 0)
			return cqrs__fail(CQRS_ECORRUPT, "replication: seq %" PRIu64 " is durable but "
					  "neither at offset %zu of segment %s nor in a segment of "
					  "its own", f->next, f->off, f->m.name);
		f->roll = true;
		return 2;
	}
	r = (const cqrs_jrec *)(f->m.img + f->off);
	if (r->seq != f->next)
		return cqrs__fail(CQRS_ECORRUPT, "replication: segment %s, offset %zu holds seq %" PRIu64
				  ", expected %" PRIu64, f->m.name, f->off, r->seq, f->next);
	f->off += cqrs__jrec_span(r);
	f->next++;
	*rec = r;
	return 1;
}

bool cqrs__follow_entered(repl_follow *f)
{
	bool e = f->entered;

	f->entered = false;
	return e;
}

void cqrs__follow_close(repl_follow *f)
{
	unmap(f);
	if (f->dirfd > 0)
		close(f->dirfd);
	f->dirfd = -1;
}
