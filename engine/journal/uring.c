/*
 * engine/journal/uring.c - the io_uring I/O backend.
 *
 * One ring per journal. The batch buffers are registered (write_fixed) and
 * the current segment is registered as fixed file 0 (updated at each roll,
 * after the batches in flight drained). A batch is one IORING_OP_WRITE_FIXED
 * at its file offset; in batch mode it is IOSQE_IO_LINK'ed to an
 * IORING_OP_FSYNC (DATASYNC), so the fdatasync starts only after the write
 * completed, and several write+fsync pairs are in flight at once. A batch
 * the flushing thread wrote itself (writer.c, write_inline) gets
 * only the fsync, unlinked (ur_sync).
 *
 * What io_uring really returns, and what we do:
 *   write res == asked      done; in batch mode its linked fsync follows
 *   write 0 <= res < asked  short: resubmit the rest (new attempt, with its
 *                           own linked fsync); the old linked fsync comes
 *                           back -ECANCELED (or, for a short write we
 *                           injected by asking less, succeeds) and, being
 *                           of an old attempt, is ignored
 *   write -EAGAIN/-EINTR    resubmit the same range
 *   write other error       poison
 *   fsync -ECANCELED        its write failed or was short: handled there
 *                           (an unlinked fsync after an inline write:
 *                           poison, its write was complete)
 *   fsync other error       poison; never retried (PostgreSQL's lesson:
 *                           after a failed fsync a later one may succeed
 *                           without the lost data)
 * Every SQE carries (batch, op, attempt) in user_data, so a CQE of an
 * earlier attempt is recognised. The CQ is sized for twice the maximum SQEs
 * in flight; an overflow is still handled: with IORING_FEAT_NODROP the
 * kernel keeps the CQEs and io_uring_get_events() flushes them; without it
 * a lost completion poisons the journal. io_uring_submit's -EBUSY/-EAGAIN
 * (CQ backlog, no memory) reaps and retries; -EINTR retries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <liburing.h>

#include "engine/journal/fault.h"
#include "engine/journal/internal.h"

enum { OP_WRITE = 1, OP_FSYNC = 2 };

#define MAX_FAKE (2 * 64 + 8)

struct juring {
	struct io_uring ring;
	bool bufs_registered;
	bool file_registered;
	bool nodrop;
	int fd;                  /* the segment, when not registered */
	unsigned koverflow;
	unsigned nfake;          /* completions synthesized by fault injection */
	struct { uint64_t ud; int res; } fake[MAX_FAKE];
	uint32_t *sub_len;       /* per batch: bytes asked by the current attempt */
	bool *resubmit;          /* per batch: write to resubmit after reaping */
};

static uint64_t mkud(uint32_t idx, int op, uint16_t attempt)
{
	return (uint64_t)idx | (uint64_t)op << 16 | (uint64_t)attempt << 32;
}

static void fake_cqe(struct juring *u, uint64_t ud, int res)
{
	if (u->nfake < MAX_FAKE) {
		u->fake[u->nfake].ud = ud;
		u->fake[u->nfake].res = res;
		u->nfake++;
	}
}

static int submit_pending(cqrs_journal *j);

/* Makes f the fdatasync of the segment (a NOP when tests fake syncs). */
static void prep_fsync(struct juring *u, struct io_uring_sqe *f)
{
	if (cqrs__jfault_sync_is_fake()) {
		io_uring_prep_nop(f);
		return;
	}
	io_uring_prep_fsync(f, u->file_registered ? 0 : u->fd, IORING_FSYNC_DATASYNC);
	if (u->file_registered)
		f->flags |= IOSQE_FIXED_FILE;
}

static int ur_submit(cqrs_journal *j, jbatch *b)
{
	struct juring *u = j->uring;
	bool batch_mode = j->cfg.durability == CQRS_DURABILITY_BATCH;
	uint32_t len = b->len - b->done;
	struct io_uring_sqe *w, *f = NULL;
	int inj;

	b->attempt++;
	b->write_done = false;
	inj = cqrs__jfault_hit(JF_WRITE);
	if (inj < 0) {
		/* An injected failure: this write and its fsync never reach the
		 * kernel; their completions are synthesized. */
		fake_cqe(u, mkud(b->index, OP_WRITE, b->attempt), inj);
		b->ops++;
		if (batch_mode) {
			fake_cqe(u, mkud(b->index, OP_FSYNC, b->attempt), -ECANCELED);
			b->ops++;
		}
		return 0;
	}
	if (inj == JF_SHORT && len >= 2)
		len /= 2;
	u->sub_len[b->index] = len;
	/* Both SQEs of a pair go in the same submission, or the link breaks. */
	if (io_uring_sq_space_left(&u->ring) < (batch_mode ? 2u : 1u)) {
		int rc = submit_pending(j);
		if (rc)
			return rc;
	}
	w = io_uring_get_sqe(&u->ring);
	if (batch_mode)
		f = io_uring_get_sqe(&u->ring);
	if (!w || (batch_mode && !f))
		return -EBUSY;
	if (u->bufs_registered)
		io_uring_prep_write_fixed(w, u->file_registered ? 0 : u->fd, b->buf + b->done, len,
					  b->file_off + b->done, (int)b->index);
	else
		io_uring_prep_write(w, u->file_registered ? 0 : u->fd, b->buf + b->done, len,
				    b->file_off + b->done);
	if (u->file_registered)
		w->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(w, mkud(b->index, OP_WRITE, b->attempt));
	b->ops++;
	if (f) {
		w->flags |= IOSQE_IO_LINK;
		prep_fsync(u, f);
		io_uring_sqe_set_data64(f, mkud(b->index, OP_FSYNC, b->attempt));
		b->ops++;
	}
	return submit_pending(j);
}

/* The fdatasync alone, for a batch the flushing thread wrote (complete:
 * the write returned before this is submitted, so nothing to link). A new
 * attempt, so a late CQE of the buffer's previous batch is ignored. */
static int ur_sync(cqrs_journal *j, jbatch *b)
{
	struct juring *u = j->uring;
	struct io_uring_sqe *f;

	b->attempt++;
	if (io_uring_sq_space_left(&u->ring) < 1u) {
		int rc = submit_pending(j);
		if (rc)
			return rc;
	}
	f = io_uring_get_sqe(&u->ring);
	if (!f)
		return -EBUSY;
	prep_fsync(u, f);
	io_uring_sqe_set_data64(f, mkud(b->index, OP_FSYNC, b->attempt));
	b->ops++;
	return submit_pending(j);
}

static void on_write(cqrs_journal *j, jbatch *b, uint16_t attempt, int res)
{
	struct juring *u = j->uring;

	if (attempt != b->attempt || j->poison)
		return;
	if (res == -EAGAIN || res == -EINTR) {
		j->st.retries++;
		u->resubmit[b->index] = true;
		return;
	}
	if (res < 0) {
		cqrs__jw_failed(j, b, res, "write");
		return;
	}
	if (res == 0) {
		if (++b->zero_writes > 8) {
			cqrs__jw_failed(j, b, -EIO, "write (no progress)");
			return;
		}
	} else {
		b->zero_writes = 0;
	}
	b->done += (uint32_t)res;
	if (b->done < b->len) {
		j->st.short_writes++; /* short from the kernel, or we asked less */
		u->resubmit[b->index] = true;
	}
	else
		cqrs__jw_written(j, b);
}

static void on_fsync(cqrs_journal *j, jbatch *b, uint16_t attempt, int res)
{
	if (attempt != b->attempt || j->poison)
		return; /* an earlier attempt's fsync: cancelled or superseded */
	if (res == -ECANCELED) {
		if (b->write_done)
			cqrs__jw_failed(j, b, -EIO, "fdatasync (cancelled after a complete write)");
		return; /* the short or failed write is being handled */
	}
	if (res == 0) {
		int inj = cqrs__jfault_hit(JF_FSYNC);
		if (inj < 0)
			res = inj;
	}
	if (res < 0) {
		cqrs__jw_failed(j, b, res, "fdatasync");
		return;
	}
	if (b->write_done)
		cqrs__jw_synced(j, b);
}

static void on_cqe(cqrs_journal *j, uint64_t ud, int res)
{
	uint32_t idx = (uint32_t)(ud & 0xffff);
	int op = (int)((ud >> 16) & 0xffff);
	uint16_t attempt = (uint16_t)(ud >> 32);
	jbatch *b;

	if (idx >= j->nb)
		return;
	b = &j->b[idx];
	if (b->ops)
		b->ops--;
	if (op == OP_WRITE)
		on_write(j, b, attempt, res);
	else if (op == OP_FSYNC)
		on_fsync(j, b, attempt, res);
}

/* Processes the CQEs ready now. Returns how many. */
static unsigned drain_cq(cqrs_journal *j)
{
	struct juring *u = j->uring;
	unsigned n = 0;

	for (unsigned k = 0; k < u->nfake; k++, n++)
		on_cqe(j, u->fake[k].ud, u->fake[k].res);
	u->nfake = 0;
	for (;;) {
		struct io_uring_cqe *cqes[32];
		unsigned got = io_uring_peek_batch_cqe(&u->ring, cqes, 32);

		if (got == 0) {
			if (!io_uring_cq_has_overflow(&u->ring))
				break;
			io_uring_get_events(&u->ring); /* flush the overflow list into the CQ */
			continue;
		}
		for (unsigned k = 0; k < got; k++)
			on_cqe(j, io_uring_cqe_get_data64(cqes[k]), cqes[k]->res);
		io_uring_cq_advance(&u->ring, got);
		n += got;
	}
	if (!u->nodrop && u->ring.cq.koverflow && *u->ring.cq.koverflow != u->koverflow) {
		u->koverflow = *u->ring.cq.koverflow;
		if (!j->poison)
			cqrs__jw_failed(j, &j->b[j->head], -EIO, "completion queue overflow (lost CQEs)");
	}
	return n;
}

/* Resubmits the writes flagged by short or interrupted completions, in
 * batch order. */
static int resubmit(cqrs_journal *j)
{
	struct juring *u = j->uring;

	for (uint32_t k = 0; k < j->used; k++) {
		uint32_t idx = (j->head + k) % j->nb;
		if (!u->resubmit[idx])
			continue;
		u->resubmit[idx] = false;
		if (j->poison)
			continue;
		int rc = ur_submit(j, &j->b[idx]);
		if (rc)
			return rc;
	}
	return 0;
}

static int submit_pending(cqrs_journal *j)
{
	struct juring *u = j->uring;

	for (int tries = 0;; tries++) {
		int rc = io_uring_submit(&u->ring);

		if (rc >= 0)
			return 0;
		if (tries > 1000)
			return rc;
		if (rc == -EINTR)
			continue;
		if (rc == -EBUSY || rc == -EAGAIN) {
			/* The CQ is backed up or the kernel is short of memory:
			 * make room by reaping, then try again. */
			struct io_uring_cqe *cqe;
			struct __kernel_timespec ts = { 0, 1000000 };
			drain_cq(j);
			io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);
			continue;
		}
		return rc;
	}
}

static int ur_reap(cqrs_journal *j, uint64_t wait_ns)
{
	struct juring *u = j->uring;
	unsigned n = drain_cq(j);
	/* Writes flagged by this drain, or by one inside submit_pending's
	 * retry, go back in before we wait: else the wait is for a CQE that
	 * only their resubmission can bring. */
	int rc = resubmit(j);

	if (rc)
		return rc;
	if (n == 0 && wait_ns) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = {
			.tv_sec = (long long)(wait_ns / 1000000000u),
			.tv_nsec = (long long)(wait_ns % 1000000000u),
		};

		rc = io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN)
			return rc;
		drain_cq(j);
	}
	return resubmit(j);
}

static int ur_set_file(cqrs_journal *j, int fd)
{
	struct juring *u = j->uring;
	int rc;

	u->fd = fd;
	if (u->file_registered) {
		rc = io_uring_register_files_update(&u->ring, 0, &fd, 1);
		if (rc == 1)
			return 0;
		io_uring_unregister_files(&u->ring);
		u->file_registered = false;
		return 0; /* plain fd from now on */
	}
	rc = io_uring_register_files(&u->ring, &fd, 1);
	u->file_registered = rc == 0;
	return 0;
}

static void ur_fini(cqrs_journal *j)
{
	struct juring *u = j->uring;

	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	free(u->sub_len);
	free(u->resubmit);
	free(u);
	j->uring = NULL;
}

const jio_ops cqrs__jio_uring = {
	.name = "io_uring",
	.set_file = ur_set_file,
	.submit = ur_submit,
	.sync = ur_sync,
	.reap = ur_reap,
	.fini = ur_fini,
};

int cqrs__juring_init(cqrs_journal *j)
{
	struct io_uring_params p;
	struct juring *u = calloc(1, sizeof *u);
	struct iovec *iov;
	unsigned entries = 8;
	int rc;

	if (!u)
		return -ENOMEM;
	u->sub_len = calloc(j->nb, sizeof *u->sub_len);
	u->resubmit = calloc(j->nb, sizeof *u->resubmit);
	if (!u->sub_len || !u->resubmit) {
		free(u->sub_len);
		free(u->resubmit);
		free(u);
		return -ENOMEM;
	}
	while (entries < 2 * j->nb + 8)
		entries *= 2;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 4;
	rc = io_uring_queue_init_params(entries, &u->ring, &p);
	if (rc < 0) {
		free(u->sub_len);
		free(u->resubmit);
		free(u);
		return rc;
	}
	u->nodrop = (p.features & IORING_FEAT_NODROP) != 0;
	u->fd = -1;
	iov = calloc(j->nb, sizeof *iov);
	if (iov) {
		for (uint32_t k = 0; k < j->nb; k++) {
			iov[k].iov_base = j->b[k].buf;
			iov[k].iov_len = j->batch_cap;
		}
		/* Fails under a small RLIMIT_MEMLOCK on old kernels: then plain
		 * writes, same bytes. */
		u->bufs_registered = io_uring_register_buffers(&u->ring, iov, j->nb) == 0;
		free(iov);
	}
	j->uring = u;
	j->io = &cqrs__jio_uring;
	return 0;
}
