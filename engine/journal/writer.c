/*
 * engine/journal/writer.c - the journal's writer: open, claim/commit into
 * batch buffers, group commit, in-order durable reporting, segment roll
 * with preallocation, the interval fsync thread, poisoning, close.
 *
 * The layout and the commit rule are in format.c; the state shared
 * with recovery and the I/O backends in internal.h.
 *
 * Hot path: claim and commit touch only the current batch buffer (a header
 * store, a checksum); flush writes a sealed buffer itself (pwritev, at most
 * inline_write_max bytes, plus one fsync SQE in batch mode) or hands it to
 * the backend (one SQE, two in batch mode); poll reaps CQEs and calls
 * on_durable. The cold paths
 * (roll, preallocation, open, close) do blocking syscalls on this thread:
 * a roll drains the batches in flight, then costs two fdatasyncs, a
 * rename and a directory fsync, once per segment, and the manifest's
 * replacement (format.c): one more 128-byte write, fdatasync, rename and
 * directory fsync.
 *
 * Past 800 lines because claim/commit, sealing, the roll, in-order
 * reporting and close all keep the batch ring's invariants (asserted
 * here); the I/O backends, recovery and the manifest are files of their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/clock.h"
#include "engine/journal/fault.h"
#include "engine/journal/internal.h"
#include "core/errors.h"
#include "core/schema_internal.h"

#define DEFAULT_BATCH (1u << 20)
#define DEFAULT_QD 4u
#define MAX_QD 64u
#define DEFAULT_INTERVAL_MS 10u

void cqrs__jlog(const cqrs_journal *j, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cqrs__vlog(j->cfg.log, j->cfg.log_arg, level, fmt, ap);
	va_end(ap);
}

static bool durable_for_mode(const cqrs_journal *j, const jbatch *b)
{
	return b->write_done && (j->cfg.durability != CQRS_DURABILITY_BATCH || b->sync_done);
}

/* Recomputes the in-order frontiers after a completion: batches become
 * DONE, done_seq (durable for the mode, unreported included) and the
 * written frontier the interval thread syncs up to. O(batches in flight). */
static void update_frontiers(cqrs_journal *j)
{
	bool done_run = true, written_run = true;
	uint64_t written = 0;

	for (uint32_t k = 0; k < j->used; k++) {
		jbatch *b = &j->b[(j->head + k) % j->nb];

		if (b->state != JB_WRITE && b->state != JB_DONE)
			break;
		if (b->state == JB_WRITE && durable_for_mode(j, b) && !j->poison)
			b->state = JB_DONE;
		if (done_run && b->state == JB_DONE && b->end_seq > j->done_seq)
			j->done_seq = b->end_seq;
		else if (b->state != JB_DONE)
			done_run = false;
		if (written_run && b->write_done)
			written = b->end_seq;
		else
			written_run = false;
	}
	if (written)
		/* release: pairs with the interval thread's acquire load; the
		 * write completions we saw happen before its fdatasync. */
		atomic_store_explicit(&j->written_seq, written, memory_order_release);
}

void cqrs__jw_written(cqrs_journal *j, jbatch *b)
{
	b->write_done = true;
	update_frontiers(j);
}

void cqrs__jw_synced(cqrs_journal *j, jbatch *b)
{
	b->sync_done = true;
	j->st.fsyncs++;
	update_frontiers(j);
}

static void poison(cqrs_journal *j, int err, const char *what)
{
	if (j->poison)
		return;
	j->poison = err;
	cqrs__jlog(j, CQRS_LOG_ERROR, "journal %s: %s failed: %s; journal poisoned, no later event "
		   "will be reported durable", j->dir, what, cqrs_strerror(err));
}

void cqrs__jw_failed(cqrs_journal *j, jbatch *b, int err, const char *what)
{
	char w[160];

	if (j->poison)
		return;
	snprintf(w, sizeof w, "%s of seqs %llu..%llu at segment offset %llu", what,
		 (unsigned long long)b->first_seq, (unsigned long long)b->end_seq,
		 (unsigned long long)(b->file_off + b->done));
	poison(j, err, w);
}

static void check_sync_err(cqrs_journal *j)
{
	/* acquire: pairs with the interval thread's release store of its error. */
	int e = atomic_load_explicit(&j->sync_err, memory_order_acquire);

	if (e && !j->poison)
		poison(j, e, "interval fdatasync");
}

/* ---- segments ------------------------------------------------------------- */

static void discard_spare(cqrs_journal *j)
{
	if (j->spare_fd >= 0)
		close(j->spare_fd);
	j->spare_fd = -1;
	unlinkat(j->dirfd, JSEG_SPARE, 0);
}

/* Creates the preallocated spare: open, fallocate, fsync the directory. */
static int make_spare(cqrs_journal *j)
{
	int fd = cqrs__jf_openat(j->dirfd, JSEG_SPARE, O_RDWR | O_CREAT | O_TRUNC, 0644), rc;

	if (fd < 0)
		return fd;
	j->spare_fd = fd;
	rc = cqrs__jf_fallocate(fd, (off_t)j->seg_size_cfg);
	if (rc == 0)
		rc = cqrs__jf_dirsync(j->dirfd);
	if (rc)
		discard_spare(j);
	return rc;
}

/* Preallocates the next segment once the current one is half full, so the
 * roll itself does not wait for fallocate. A failure only warns: the roll
 * tries again and rejects the append if it fails there too. */
static void maybe_prealloc(cqrs_journal *j)
{
	int rc;

	if (j->spare_fd >= 0 || j->spare_failed || j->write_off < j->seg_size / 2)
		return;
	rc = make_spare(j);
	if (rc) {
		j->spare_failed = true;
		cqrs__jlog(j, CQRS_LOG_WARN, "journal %s: preallocating the next segment failed: %s; "
			   "retrying at the roll", j->dir, cqrs_strerror(rc));
	}
}

int cqrs__jw_new_segment(cqrs_journal *j, uint64_t first_seq)
{
	bool ahead = j->spare_fd >= 0;
	/* The segment it follows; first_seq == the current one's only when
	 * that one is empty and is replaced (recover.c: other schemas). */
	uint64_t prev = j->seg_fd < 0 ? 0 : first_seq == j->seg_first_seq ? j->seg_prev_first_seq
									  : j->seg_first_seq;
	char name[32];
	int rc, n;

	if (!ahead) {
		rc = make_spare(j);
		if (rc)
			return cqrs__fail(rc, "journal %s: cannot create the next segment: %s", j->dir,
					 cqrs_strerror(rc));
	}
	memset(j->hdrbuf, 0, j->hsize);
	n = cqrs__jseg_header_encode(j->hdrbuf, j->hsize, j->engine, first_seq, prev,
				     j->cfg.ctime_ns ? j->cfg.ctime_ns : cqrs__wall_ns(), j->seg_size_cfg,
				     j->schemas, j->ntypes);
	if (n < 0) {
		discard_spare(j);
		return n;
	}
	/* The header is on stable storage before the file gets its name, so
	 * every *.seg file has a valid header. Failures up to the rename touch
	 * only the spare: drop it, the next attempt starts afresh. */
	rc = cqrs__jf_pwrite_all(j->spare_fd, j->hdrbuf, j->hsize, 0, NULL);
	if (rc == 0)
		rc = cqrs__jf_fdatasync(j->spare_fd);
	cqrs__jseg_name(name, sizeof name, first_seq);
	if (rc == 0)
		rc = cqrs__jf_renameat(j->dirfd, JSEG_SPARE, name);
	if (rc) {
		discard_spare(j);
		return cqrs__fail(rc, "journal %s: cannot start segment %s: %s", j->dir, name,
				 cqrs_strerror(rc));
	}
	rc = cqrs__jf_dirsync(j->dirfd);
	if (rc) {
		/* The new name may not be durable; never retry a failed fsync. */
		close(j->spare_fd);
		j->spare_fd = -1;
		poison(j, rc, "directory fsync after creating a segment");
		return cqrs__fail(rc, "journal %s: fsync of the directory after creating %s failed",
				 j->dir, name);
	}
	if (j->thr_started) {
		pthread_mutex_lock(&j->mu);
		j->sync_fd = j->spare_fd;
		j->sync_first_seq = first_seq;
		pthread_mutex_unlock(&j->mu);
	}
	if (j->io) {
		rc = j->io->set_file(j, j->spare_fd);
		if (rc)
			poison(j, rc, "registering the new segment");
	}
	if (j->seg_fd >= 0)
		close(j->seg_fd);
	j->seg_fd = j->spare_fd;
	j->spare_fd = -1;
	j->spare_failed = false;
	j->seg_first_seq = first_seq;
	j->seg_prev_first_seq = prev;
	j->seg_size = j->seg_size_cfg;
	j->write_off = j->hsize;
	j->st.rolls++;
	j->st.rolls_prealloc += ahead;
	return j->poison;
}

/* Waits until every submitted batch is durable for the mode (or poison). */
static int drain(cqrs_journal *j)
{
	for (;;) {
		bool busy = false;

		for (uint32_t k = 0; k < j->used; k++) {
			jbatch *b = &j->b[(j->head + k) % j->nb];
			if (b->state == JB_WRITE)
				busy = true;
		}
		if (!busy || j->poison)
			return j->poison;
		int rc = j->io->reap(j, 1000000000u);
		if (rc)
			poison(j, rc, "reaping completions");
	}
}

/* Waits until the kernel holds no operation on any batch buffer. */
static void drain_ops(cqrs_journal *j)
{
	for (int guard = 0; guard < 100000; guard++) {
		bool busy = false;

		for (uint32_t k = 0; k < j->nb; k++)
			if (j->b[k].ops)
				busy = true;
		if (!busy)
			return;
		if (j->io->reap(j, 100000000u))
			return;
	}
}

/* Starts segment first_seq once every batch of the current one completed.
 * batch/interval: the full segment is fdatasynced first (cheap: batch mode
 * synced it already, interval mode has at most interval_ms of dirty data),
 * so a segment that is not the last is always complete on stable storage.
 * none: no fdatasync, as promised; a power cut (not a process crash) may
 * then leave a torn segment that is not the last, which recovery refuses. */
static int roll(cqrs_journal *j, uint64_t first_seq)
{
	int rc = drain(j);

	if (rc)
		return rc;
	if (j->cfg.durability != CQRS_DURABILITY_NONE) {
		rc = cqrs__jf_fdatasync(j->seg_fd);
		if (rc) {
			poison(j, rc, "fdatasync of the full segment");
			return rc;
		}
		j->st.fsyncs++;
		j->sealed_seq = first_seq - 1;
	}
	rc = cqrs__jw_new_segment(j, first_seq);
	if (rc)
		return rc;
	/* Every seq before the new segment is in the complete segments
	 * behind it. A failure leaves the older manifest, which claims less:
	 * still true, so it only warns. */
	rc = cqrs__jw_manifest(j, first_seq - 1, JMAN_ROLL);
	if (rc)
		cqrs__jlog(j, CQRS_LOG_WARN, "journal %s: updating " JMAN_NAME " at the roll to seq %llu "
			   "failed: %s; it keeps naming the previous segment", j->dir,
			   (unsigned long long)first_seq, cqrs_strerror(rc));
	if (j->cfg.on_roll)
		j->cfg.on_roll(j->cfg.roll_arg, first_seq);
	return 0;
}

/* ---- batches --------------------------------------------------------------- */

static int start_batch(cqrs_journal *j)
{
	uint32_t idx;
	jbatch *b;

	CQRS_ASSERT(j->cur < 0); /* one batch fills at a time */
	if (j->used == j->nb)
		return -EAGAIN;
	idx = (j->head + j->used) % j->nb;
	b = &j->b[idx];
	b->state = JB_FILL;
	b->len = b->group_start = b->done = 0;
	b->file_off = j->write_off;
	b->first_seq = j->next_seq;
	b->end_seq = 0;
	b->write_done = b->sync_done = false;
	b->zero_writes = 0;
	j->used++;
	j->cur = (int)idx;
	return 0;
}

/* Whether this thread writes the batch itself, with pwritev (see
 * inline_write_max), and the backend only fdatasyncs it (batch mode):
 * io_uring hands buffered writes to a kernel worker on ext4, and waking
 * it costs more than the copy, which this thread makes from its own cache
 * (docs/ARCHITECTURE.md, Journal, has the figures). Batches in flight
 * meanwhile do not matter: each has its own file range and batches are
 * reported in order whoever finishes first. */
static bool write_inline(const cqrs_journal *j, const jbatch *b)
{
	return b->len <= j->cfg.inline_write_max && j->io->sync;
}

/* Whether b's records [0, len) carry the seqs first_seq..end_seq in order
 * (CQRS_ASSERT only: compiled out of release builds). */
static bool batch_seqs_consecutive(const jbatch *b)
{
	uint64_t seq = b->first_seq;
	uint32_t off = 0;

	while (off < b->len) {
		const cqrs_jrec *r = (const cqrs_jrec *)(b->buf + off);
		if (r->seq != seq)
			return false;
		off += (uint32_t)cqrs__jrec_span(r);
		seq++;
	}
	return off == b->len && seq == b->end_seq + 1;
}

/* Submits the FILL batch, which holds only complete groups. */
static void submit_batch(cqrs_journal *j, jbatch *b)
{
	int rc;

	/* Batches go out in seq order, each one the seqs after the last. */
	CQRS_ASSERT(b->state == JB_FILL && (int)b->index == j->cur);
	CQRS_ASSERT(b->first_seq == j->submitted_seq + 1 && b->end_seq >= b->first_seq);
	CQRS_ASSERT(batch_seqs_consecutive(b));
	j->submitted_seq = b->end_seq;
	b->state = JB_WRITE;
	b->submit_ns = cqrs__mono_ns();
	j->cur = -1;
	j->write_off = b->file_off + b->len;
	j->st.batches++;
	j->st.bytes += b->len;
	if (write_inline(j, b)) {
		j->st.inline_writes++;
		rc = 0;
		if (cqrs__jpw_write(j, b) && j->cfg.durability == CQRS_DURABILITY_BATCH)
			rc = j->io->sync(j, b);
	} else {
		rc = j->io->submit(j, b);
	}
	if (rc)
		cqrs__jw_failed(j, b, rc, "submitting the batch");
	maybe_prealloc(j);
}

/* Submits the complete groups of the FILL batch; an open group moves to a
 * fresh buffer. -EAGAIN if it would need a buffer and none is free. */
static int seal_cur(cqrs_journal *j)
{
	jbatch *b, *nb;
	uint32_t open;
	uint64_t gfirst;
	const uint8_t *src;

	if (j->cur < 0)
		return 0;
	b = &j->b[j->cur];
	if (b->group_start == 0)
		return 0;
	open = b->len - b->group_start;
	if (open == 0) {
		submit_batch(j, b);
		return 0;
	}
	if (j->used == j->nb)
		return -EAGAIN;
	gfirst = b->end_seq + 1;
	src = b->buf + b->group_start;
	CQRS_ASSERT(((const cqrs_jrec *)src)->seq == gfirst);
	b->len = b->group_start;
	submit_batch(j, b); /* the kernel reads [0, len) only; src lies past it */
	start_batch(j);
	nb = &j->b[j->cur];
	memcpy(nb->buf, src, open);
	nb->len = open;
	nb->first_seq = gfirst;
	return 0;
}

/* Makes room for a record of span bytes: seals full buffers, rolls full
 * segments. On return the FILL batch takes span more bytes. */
static int make_room(cqrs_journal *j, uint64_t span)
{
	jbatch *b = &j->b[j->cur];
	uint32_t open = b->len - b->group_start;
	int rc;

	if (open + span > j->batch_cap)
		return -EMSGSIZE; /* the command's events do not fit one batch */
	if (b->group_start > 0) {
		rc = seal_cur(j);
		if (rc || j->poison)
			return j->poison ? j->poison : rc;
		if (j->cur < 0 && (rc = start_batch(j)) != 0)
			return rc;
		b = &j->b[j->cur];
	}
	if (b->file_off + b->len + span <= j->seg_size)
		return 0;
	if (j->hsize + b->len + span > j->seg_size_cfg)
		return -EMSGSIZE; /* the group does not fit an empty segment */
	rc = roll(j, b->len ? b->first_seq : j->next_seq);
	if (rc)
		return rc;
	b->file_off = j->write_off;
	return 0;
}

int cqrs__journal_claim(cqrs_journal *j, const cqrs_journal_event *ev, uint32_t size, void **payload)
{
	const cqrs_schema *s;
	uint64_t span;
	cqrs_jrec *r;
	jbatch *b;
	int rc;

	if (j->poison)
		return j->poison;
	if (j->claim_pending || (j->ntypes && ev->type >= j->ntypes))
		return -EINVAL;
	s = j->ntypes ? j->schemas[ev->type] : NULL;
	if (s && s->size != size)
		return -EINVAL;
	if (size > JREC_MAX_PAYLOAD)
		return -EMSGSIZE;
	span = jrec_span_for(size);
	if (span > j->batch_cap || j->hsize + span > j->seg_size_cfg)
		return -EMSGSIZE;
	if (j->cur < 0 && (rc = start_batch(j)) != 0)
		return rc;
	b = &j->b[j->cur];
	if (b->len + span > j->batch_cap || b->file_off + b->len + span > j->seg_size) {
		rc = make_room(j, span);
		if (rc)
			return rc;
		b = &j->b[j->cur];
	}
	r = (cqrs_jrec *)(b->buf + b->len);
	r->size = size;
	r->type = ev->type;
	r->flags = ev->flags;
	r->seq = j->next_seq;
	r->timestamp_ns = ev->timestamp_ns;
	r->aggregate_id = ev->aggregate_id;
	r->aggregate_version = ev->aggregate_version;
	r->client_id = ev->client_id;
	r->client_seq = ev->client_seq;
	memset((uint8_t *)r + CQRS_JREC_HEADER + size, 0, span - CQRS_JREC_HEADER - size);
	j->claim_pending = true;
	j->claim_off = b->len;
	*payload = (uint8_t *)r + CQRS_JREC_HEADER;
	return 0;
}

/* The recovery hint: the highest seq that survives every crash the mode
 * is meant to survive: on stable storage (batch, interval), or written to
 * the page cache, which survives a process crash (none: done_seq is the
 * in-order frontier of completed writes there). Recovery calls a damaged
 * record corruption when a later record's hint covers it (format.c). */
static uint64_t synced_hint(const cqrs_journal *j)
{
	uint64_t h = j->sealed_seq, t;

	if (j->cfg.durability == CQRS_DURABILITY_NONE && j->done_seq > h)
		h = j->done_seq;
	if (j->cfg.durability == CQRS_DURABILITY_BATCH && j->done_seq > h)
		h = j->done_seq;
	if (j->cfg.durability == CQRS_DURABILITY_INTERVAL) {
		/* acquire: pairs with the thread's release store after its
		 * fdatasync returned. */
		t = atomic_load_explicit(&((cqrs_journal *)j)->synced_seq, memory_order_acquire);
		if (t > h)
			h = t;
	}
	return h;
}

uint64_t cqrs__journal_commit(cqrs_journal *j)
{
	jbatch *b;
	cqrs_jrec *r;
	uint64_t seq;

	if (!j->claim_pending)
		return 0;
	CQRS_ASSERT(j->cur >= 0 && j->b[j->cur].state == JB_FILL);
	b = &j->b[j->cur];
	r = (cqrs_jrec *)(b->buf + j->claim_off);
	/* Seqs are handed out consecutively: the claimed record has the next. */
	CQRS_ASSERT(r->seq == j->next_seq && j->claim_off == b->len);
	r->synced_seq = synced_hint(j);
	r->checksum = cqrs__jrec_checksum(r);
	b->len += (uint32_t)cqrs__jrec_span(r);
	seq = j->next_seq++;
	if (r->flags & CQRS_JREC_CMD_END) {
		b->group_start = b->len;
		b->end_seq = seq;
	}
	j->claim_pending = false;
	return seq;
}

int cqrs__journal_append(cqrs_journal *j, const cqrs_journal_event *ev, const void *payload,
			uint32_t size, uint64_t *seq)
{
	void *p;
	uint64_t s;
	int rc = cqrs__journal_claim(j, ev, size, &p);

	if (rc)
		return rc;
	if (size)
		memcpy(p, payload, size);
	s = cqrs__journal_commit(j);
	if (seq)
		*seq = s;
	return 0;
}

int cqrs__journal_abandon(cqrs_journal *j)
{
	jbatch *b;
	int n = 0;

	j->claim_pending = false;
	if (j->cur < 0)
		return 0;
	b = &j->b[j->cur];
	for (uint32_t off = b->group_start; off < b->len; n++)
		off += (uint32_t)cqrs__jrec_span((const cqrs_jrec *)(b->buf + off));
	b->len = b->group_start;
	j->next_seq -= (uint64_t)n;
	if (b->len == 0)
		b->first_seq = j->next_seq;
	return n;
}

int cqrs__journal_flush(cqrs_journal *j)
{
	if (j->poison)
		return j->poison;
	if (j->claim_pending)
		return 0;
	(void)seal_cur(j); /* -EAGAIN: the open group waits for a free buffer */
	check_sync_err(j);
	return j->poison;
}

/* Calls on_durable for the DONE batches at the head, in order. */
static int report(cqrs_journal *j)
{
	int n = 0;

	while (j->used && j->b[j->head].state == JB_DONE) {
		jbatch *b = &j->b[j->head];

		if (j->cfg.on_durable)
			j->cfg.on_durable(j->cfg.durable_arg, b->first_seq, b->end_seq, b->buf, b->len);
		j->durable_seq = b->end_seq;
		b->state = JB_FREE;
		j->head = (j->head + 1) % j->nb;
		j->used--;
		n++;
	}
	return n;
}

static bool in_flight(const cqrs_journal *j)
{
	return j->used && j->b[j->head].state != JB_FILL;
}

int cqrs__journal_poll(cqrs_journal *j)
{
	int n, rc;

	if (in_flight(j)) {
		rc = j->io->reap(j, 0);
		if (rc)
			poison(j, rc, "reaping completions");
	}
	check_sync_err(j);
	n = report(j);
	return j->poison ? j->poison : n;
}

int cqrs__journal_wait(cqrs_journal *j, uint64_t timeout_ns)
{
	uint64_t start = cqrs__mono_ns();
	int n, rc;

	if (!j->poison)
		cqrs__journal_flush(j);
	n = cqrs__journal_poll(j);
	while (n == 0 && in_flight(j)) {
		uint64_t spent = cqrs__mono_ns() - start;

		if (spent >= timeout_ns)
			break;
		rc = j->io->reap(j, timeout_ns - spent);
		if (rc)
			poison(j, rc, "waiting for completions");
		n = cqrs__journal_poll(j);
	}
	return n;
}

uint64_t cqrs__journal_durable_seq(const cqrs_journal *j)
{
	return j->durable_seq;
}

uint64_t cqrs__journal_next_seq(const cqrs_journal *j)
{
	return j->next_seq;
}

int cqrs__journal_poisoned(const cqrs_journal *j)
{
	return j->poison;
}

void cqrs__journal_stats_get(const cqrs_journal *j, cqrs_journal_stats *out)
{
	*out = j->st;
	/* relaxed: a statistic (pairs with the thread's relaxed increment). */
	out->fsyncs += atomic_load_explicit(&((cqrs_journal *)j)->thr_fsyncs, memory_order_relaxed);
	out->next_seq = j->next_seq;
	out->durable_seq = j->durable_seq;
	out->inflight = 0;
	for (uint32_t k = 0; k < j->used; k++)
		if (j->b[(j->head + k) % j->nb].state != JB_FILL)
			out->inflight++;
	out->io_uring = j->io == &cqrs__jio_uring;
	out->poisoned = j->poison;
}

/* ---- interval thread ------------------------------------------------------- */

static void *interval_main(void *arg)
{
	cqrs_journal *j = arg;
	uint64_t last = atomic_load_explicit(&j->synced_seq, memory_order_relaxed);
	uint64_t man_ns = cqrs__mono_ns();
	struct timespec ts;

	pthread_mutex_lock(&j->mu);
	while (!j->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)(j->cfg.interval_ms % 1000) * 1000000L;
		ts.tv_sec += j->cfg.interval_ms / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&j->cv, &j->mu, &ts);
		if (j->stop)
			break;
		/* acquire: pairs with update_frontiers' release store; what it
		 * counts was written before this fdatasync starts. */
		uint64_t s = atomic_load_explicit(&j->written_seq, memory_order_acquire);
		if (s <= last || j->sync_fd < 0)
			continue;
		int rc = cqrs__jf_fdatasync(j->sync_fd);
		if (rc) {
			/* release: pairs with check_sync_err's acquire load. */
			atomic_store_explicit(&j->sync_err, rc, memory_order_release);
			break;
		}
		/* release: pairs with synced_hint's acquire load. */
		atomic_store_explicit(&j->synced_seq, s, memory_order_release);
		/* relaxed: a statistic, read by stats_get, orders nothing. */
		atomic_fetch_add_explicit(&j->thr_fsyncs, 1, memory_order_relaxed);
		last = s;
		/* Once a second the manifest learns what this proved, so a
		 * zeroed tail older than that is refused after any crash. A
		 * failure leaves the older manifest, which claims less. */
		if (cqrs__mono_ns() - man_ns >= JMAN_SYNC_EVERY_NS) {
			(void)cqrs__jw_manifest_locked(j, j->sync_first_seq, s, JMAN_SYNC);
			man_ns = cqrs__mono_ns();
		}
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

static int start_interval_thread(cqrs_journal *j)
{
	pthread_condattr_t ca;
	int rc;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	j->sync_fd = j->seg_fd;
	j->sync_first_seq = j->seg_first_seq;
	rc = pthread_create(&j->thr, NULL, interval_main, j);
	if (rc) {
		pthread_cond_destroy(&j->cv);
		return cqrs__fail(-rc, "journal: cannot start the interval fsync thread");
	}
	j->thr_started = true;
	pthread_setname_np(j->thr, "cqrs-jsync");
	return 0;
}

static void stop_interval_thread(cqrs_journal *j)
{
	if (!j->thr_started)
		return;
	pthread_mutex_lock(&j->mu);
	j->stop = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	pthread_join(j->thr, NULL);
	pthread_cond_destroy(&j->cv);
	j->thr_started = false;
	check_sync_err(j);
}

/* ---- open / close ----------------------------------------------------------- */

static void destroy(cqrs_journal *j)
{
	stop_interval_thread(j);
	if (j->io && j->io->fini)
		j->io->fini(j);
	if (j->spare_fd >= 0)
		close(j->spare_fd);
	if (j->seg_fd >= 0)
		close(j->seg_fd);
	if (j->lockfd >= 0)
		close(j->lockfd); /* releases the flock */
	if (j->dirfd >= 0)
		close(j->dirfd);
	if (j->bufmem)
		munmap(j->bufmem, j->bufmem_len);
	pthread_mutex_destroy(&j->mu);
	free(j->b);
	free(j->hdrbuf);
	free(j->schemas);
	free(j);
}

static int check_config(const cqrs_journal_config *c)
{
	if (!c || !c->dir || !c->dir[0] || strlen(c->dir) >= PATH_MAX - 64)
		return cqrs__fail(-EINVAL, "journal: no directory");
	if (!c->engine || !cqrs__name_valid(c->engine, CQRS_NAME_MAX))
		return cqrs__fail(-EINVAL, "journal: bad engine name");
	if (c->durability > CQRS_DURABILITY_INTERVAL || c->io > CQRS_JOURNAL_IO_PWRITE)
		return cqrs__fail(-EINVAL, "journal: bad durability or io mode");
	if (c->nschemas > JSEG_MAX_TYPES || (c->nschemas && !c->schemas))
		return cqrs__fail(-EINVAL, "journal: bad schema table");
	if (c->segment_size && (c->segment_size < JSEG_MIN_SIZE || c->segment_size % JSEG_ALIGN))
		return cqrs__fail(-EINVAL, "journal: segment size must be >= %u and a multiple of %u",
				 JSEG_MIN_SIZE, JSEG_ALIGN);
	if (c->queue_depth == 1 || c->queue_depth > MAX_QD)
		return cqrs__fail(-EINVAL, "journal: queue depth must be 2..%u", MAX_QD);
	if (c->batch_bytes && (c->batch_bytes < 4096 || c->batch_bytes > (256u << 20)))
		return cqrs__fail(-EINVAL, "journal: batch buffer must be 4 KiB..256 MiB");
	return 0;
}

static int open_io(cqrs_journal *j)
{
	const char *env = getenv("CQRS_NO_IO_URING");
	bool forced = env && env[0] && strcmp(env, "0") != 0;
	int rc;

	if (j->cfg.io == CQRS_JOURNAL_IO_PWRITE || (j->cfg.io == CQRS_JOURNAL_IO_AUTO && forced)) {
		if (j->cfg.io == CQRS_JOURNAL_IO_AUTO)
			cqrs__jlog(j, CQRS_LOG_INFO, "journal %s: CQRS_NO_IO_URING set: writing with "
				   "pwritev + fdatasync", j->dir);
		j->io = &cqrs__jio_pwrite;
		return 0;
	}
	rc = cqrs__juring_init(j);
	if (rc == 0)
		return 0;
	if (j->cfg.io == CQRS_JOURNAL_IO_URING)
		return cqrs__fail(rc, "journal: io_uring setup failed: %s", cqrs_strerror(rc));
	cqrs__jlog(j, CQRS_LOG_WARN, "journal %s: io_uring unavailable (%s): falling back to "
		   "pwritev + fdatasync", j->dir, cqrs_strerror(rc));
	j->io = &cqrs__jio_pwrite;
	return 0;
}

int cqrs__journal_open(cqrs_journal **out, const cqrs_journal_config *cfg,
		      cqrs_journal_recovery *rec)
{
	cqrs_journal_recovery local;
	cqrs_journal *j;
	int rc;

	*out = NULL;
	rc = check_config(cfg);
	if (rc)
		return rc;
	j = calloc(1, sizeof *j);
	if (!j)
		return -ENOMEM;
	j->cfg = *cfg;
	j->dirfd = j->lockfd = j->seg_fd = j->spare_fd = j->sync_fd = -1;
	j->cur = -1;
	pthread_mutex_init(&j->mu, NULL);
	snprintf(j->dir, sizeof j->dir, "%s", cfg->dir);
	snprintf(j->engine, sizeof j->engine, "%s", cfg->engine);
	j->cfg.dir = j->dir;
	j->cfg.engine = j->engine;
	j->ntypes = cfg->nschemas;
	j->schemas = calloc(j->ntypes ? j->ntypes : 1, sizeof *j->schemas);
	if (!j->schemas) {
		destroy(j);
		return -ENOMEM;
	}
	for (uint32_t t = 0; t < j->ntypes; t++)
		j->schemas[t] = cfg->schemas[t];
	j->cfg.schemas = j->schemas;
	j->hsize = (uint32_t)cqrs__jseg_header_size(j->schemas, j->ntypes);
	j->seg_size_cfg = cfg->segment_size ? cfg->segment_size : JSEG_DEFAULT_SIZE;
	j->batch_cap = cfg->batch_bytes ? (cfg->batch_bytes + 4095u) & ~4095u : DEFAULT_BATCH;
	j->nb = cfg->queue_depth ? cfg->queue_depth : DEFAULT_QD;
	if (!j->cfg.interval_ms)
		j->cfg.interval_ms = DEFAULT_INTERVAL_MS;
	if (j->hsize == 0 || j->seg_size_cfg < 2ull * j->hsize) {
		destroy(j);
		return cqrs__fail(-EINVAL, "journal: schemas invalid, or the header does not fit the "
				 "segment size");
	}
	j->hdrbuf = calloc(1, j->hsize);
	j->b = calloc(j->nb, sizeof *j->b);
	if (!j->hdrbuf || !j->b) {
		destroy(j);
		return -ENOMEM;
	}

	if (mkdir(j->dir, 0755) != 0 && errno != EEXIST) {
		rc = -errno;
		destroy(j);
		return cqrs__fail(rc, "journal: cannot create %s: %s", cfg->dir, cqrs_strerror(rc));
	}
	j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		rc = -errno;
		destroy(j);
		return cqrs__fail(rc, "journal: cannot open %s: %s", cfg->dir, cqrs_strerror(rc));
	}
	j->lockfd = cqrs__jf_openat(j->dirfd, JSEG_LOCK, O_RDWR | O_CREAT, 0644);
	if (j->lockfd < 0) {
		rc = j->lockfd;
		j->lockfd = -1;
		destroy(j);
		return cqrs__fail(rc, "journal: cannot create %s/" JSEG_LOCK ": %s", cfg->dir,
				 cqrs_strerror(rc));
	}
	if (flock(j->lockfd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		destroy(j);
		return cqrs__fail(rc, "journal: %s is in use by another writer", cfg->dir);
	}
	unlinkat(j->dirfd, JSEG_SPARE, 0); /* a spare never holds records */
	unlinkat(j->dirfd, JMAN_TMP, 0);   /* an unfinished manifest write */

	rc = cqrs__jrecover(j, rec ? rec : &local);
	if (rc) {
		destroy(j);
		return rc;
	}
	j->durable_seq = j->done_seq = j->sealed_seq = j->submitted_seq = j->next_seq - 1;
	/* Recovery fdatasynced the last segment: the log up to next_seq - 1
	 * stands (see format.c for what that proves in `none` mode). */
	rc = cqrs__jw_manifest(j, j->next_seq - 1, JMAN_OPEN);
	if (rc) {
		destroy(j);
		return cqrs__fail(rc, "journal %s: cannot write " JMAN_NAME ": %s", cfg->dir,
				 cqrs_strerror(rc));
	}
	atomic_init(&j->written_seq, j->next_seq - 1);
	atomic_init(&j->synced_seq, j->next_seq - 1);
	atomic_init(&j->sync_err, 0);
	atomic_init(&j->thr_fsyncs, 0);

	j->bufmem_len = (size_t)j->nb * j->batch_cap;
	j->bufmem = mmap(NULL, j->bufmem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	if (j->bufmem == MAP_FAILED) {
		j->bufmem = NULL;
		destroy(j);
		return -ENOMEM;
	}
	for (uint32_t k = 0; k < j->nb; k++) {
		j->b[k].buf = j->bufmem + (size_t)k * j->batch_cap;
		j->b[k].index = k;
	}
	rc = open_io(j);
	if (rc == 0)
		rc = j->io->set_file(j, j->seg_fd);
	if (rc == 0 && j->cfg.durability == CQRS_DURABILITY_INTERVAL)
		rc = start_interval_thread(j);
	if (rc) {
		destroy(j);
		return rc;
	}
	*out = j;
	return 0;
}

int cqrs__journal_close(cqrs_journal *j)
{
	int rc = 0;

	if (!j)
		return 0;
	cqrs__journal_abandon(j); /* an unfinished command was never acknowledged */
	if (j->cur >= 0 && j->b[j->cur].len == 0) {
		j->b[j->cur].state = JB_FREE; /* cur is always the last used batch */
		j->used--;
		j->cur = -1;
	}
	while (!j->poison && j->used) {
		if (cqrs__journal_wait(j, 1000000000u) < 0)
			break;
	}
	if (j->io)
		drain_ops(j);
	if (!j->poison && j->seg_fd >= 0) {
		rc = cqrs__jf_fdatasync(j->seg_fd);
		if (rc)
			cqrs__jlog(j, CQRS_LOG_ERROR, "journal %s: fdatasync at close failed: %s", j->dir,
				   cqrs_strerror(rc));
		/* Everything committed is on stable storage now: the manifest
		 * says so, and a later open refuses a log that ends earlier. */
		int mrc = rc ? 0 : cqrs__jw_manifest(j, j->next_seq - 1, JMAN_CLOSE);
		if (mrc)
			cqrs__jlog(j, CQRS_LOG_WARN, "journal %s: updating " JMAN_NAME " at close failed: %s",
				   j->dir, cqrs_strerror(mrc));
	}
	stop_interval_thread(j);
	if (j->poison)
		rc = j->poison;
	destroy(j);
	return rc;
}

void cqrs__journal_close_lock_in_child(cqrs_journal *j)
{
	if (j && j->lockfd >= 0)
		close(j->lockfd); /* the child's descriptor only: the lock stays the writer's */
}
