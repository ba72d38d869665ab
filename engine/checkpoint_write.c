/*
 * engine/checkpoint_write.c - taking view checkpoints (file format in
 * engine/checkpoint_format.h) without stopping the projector for longer
 * than a batch.
 *
 * One file past 800 lines: the trigger on the projection's thread, the
 * checkpoint thread and the fault thread share one job's private state
 * (ckpt_job, ckpt_view, the chunk states) and must follow one protocol
 * (a chunk released only once its bytes as at the boundary are in the file
 * or copied aside); split, each part would have to know the others'.
 *
 * TRIGGER
 *   At the end of each batch the projection's own thread (its projector,
 *   or the command thread in SHARED threading) calls
 *   cqrs__checkpoint_tick: a checkpoint is due when the projection has
 *   applied checkpoint_every_events seqs since its last one, or one was
 *   requested (cqrs_engine_checkpoint; idle projectors look at requests in
 *   their request step). One checkpoint is in flight per engine (the busy
 *   word, claimed with a CAS by the projection's thread, released by the
 *   checkpoint thread when the files are renamed into place); a projection
 *   that finds it taken tries again at a later batch. A clean stop
 *   checkpoints, on the stopping thread, every projection whose views moved.
 *
 * COPY (which one: cqrs_counters.ckpt_mode, `cqrs stat`)
 *   userfaultfd write-protect (CQRS_CKPT_MODE_UFFD). At the batch boundary
 *   the projection's thread maps each of its view segments a second time,
 *   read-only, for the checkpoint thread, opens a userfaultfd
 *   (UFFD_USER_MODE_ONLY: no privilege needed), registers its own writable
 *   mapping of each segment for write-protect faults and write-protects it
 *   whole (page table bits, no copy), and hands the job over. The
 *   checkpoint thread writes the segments chunk by chunk (64 KiB) into the
 *   temporary file from its read-only mapping, hashing each chunk, and
 *   lifts the protection of each chunk right after writing it. A projector
 *   store to a chunk not yet written faults and waits; the job's fault
 *   thread (blocked on the userfaultfd) copies that chunk aside (a 64 KiB
 *   memcpy) and lifts its protection at once, which wakes the projector;
 *   the checkpoint thread writes the copy at the chunk's turn. A chunk's
 *   state (protected, being written, copied aside, done) is kept under the
 *   job's mutex, taken once per chunk by each thread (cold: never on the
 *   projector). So every chunk reaches the file as it was at the boundary,
 *   the projector waits for one memcpy per first store to a chunk (the
 *   copies take at most the view's data again in memory, as a fork's
 *   copy-on-write would), and readers in other processes (their own
 *   read-only mappings, never registered) see nothing. The boundary's part
 *   is the protection itself: page-table bits, ~0.5 us per mapped 4 KiB
 *   page measured here (~1 ms for 10 MiB of mapped view), nothing for
 *   pages not mapped. Kernel-mode writes to a protected chunk
 *   (MADV_POPULATE_WRITE, the view writer's prefault hint) fail instead of
 *   waiting, and the hint is ignored: the user-mode store that follows
 *   faults as above.
 *   Growth: a projection that grows or rebuilds a view during a checkpoint
 *   unmaps the old generation's writable mapping (its registration goes
 *   with it) and never writes it again, so the checkpoint thread's
 *   read-only mapping still holds the boundary's bytes; lifting protection
 *   on the vanished range fails harmlessly (-ENOENT). The checkpoint is of
 *   the old generation at the boundary's seq, which is what it claims.
 *   Copy at the boundary (CQRS_CKPT_MODE_STOPCOPY: the kernel has no
 *   userfaultfd, seccomp forbids it, or checkpoint_copy 1): the projection's
 *   thread copies each segment's non-zero chunks into private memory
 *   (memory bandwidth: ~1 ms for 10 MiB of data, plus a scan of the rest)
 *   and the checkpoint thread writes that. The wait is counted in
 *   ckpt_stall_max_ns either way.
 *
 * FILES
 *   DATA/checkpoints/<view>/.tmp-ckpt-<seq>.cqckpt is written (body, chunk
 *   table, then the header), fsynced, renamed to ckpt-<seq>.cqckpt, and
 *   the folder fsynced; then the view keeps its newest checkpoint_keep
 *   files and the rest are removed. Views apply only durable seqs, so a
 *   checkpoint never holds an event the journal may still lose.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/clock.h"
#include "core/errors.h"
#include "engine/checkpoint.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/housekeeping.h"
#include "engine/projector.h"
#include "shm/view_writer.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

typedef struct ckpt_view {
	char tmp[4096], path[4096];
	int fd;
	const uint8_t *src;  /* what the thread writes: the read-only mapping, the
				private copy, or (at stop) the writer's mapping */
	int src_kind;        /* 0: not ours, 1: munmap, 2: free */
	uint64_t wbase;      /* the writer's mapping (UFFD) */
	size_t bytes;
	uint64_t *sums;
	uint8_t *state;      /* per chunk, CH_* (under the job's mu) */
	uint8_t **saved;     /* per chunk: the fault thread's copy (CH_SAVED) */
	cqrs_ckpt_hdr hdr;
} ckpt_view;

/* A chunk's way to the file. Protected chunks are written in order by the
 * checkpoint thread; a store that faults on one first has it copied aside
 * by the fault thread. */
enum { CH_PROTECTED = 0, CH_WRITING = 1, CH_SAVED = 2, CH_DONE = 3 };

typedef struct ckpt_job {
	pthread_mutex_t mu;  /* chunk states, between the two threads (cold: per chunk) */
	pthread_t fault_thread;
	int fault_started;
	int stop_fd;         /* eventfd: the fault thread's stop */
	int fault_rc;
	cqrs_proj *p;
	uint64_t seq;
	int mode;
	int uffd;            /* -1: none */
	uint32_t nviews;
	uint64_t stall_ns;   /* the boundary's setup (or copy) */
	uint64_t fault_max_ns;
	uint64_t faults;     /* write-protect faults served */
	ckpt_view v[CQRS_MAX_VIEWS_PER_PROJECTION];
} ckpt_job;

struct cqrs_ckpt {
	cqrs_engine *e;
	int mode;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;   /* the hand-over (cold: once per checkpoint) */
	pthread_cond_t cond;
	ckpt_job *job;          /* under lock */
	int quit;               /* under lock */
	_Atomic int busy;       /* a job is claimed or in flight */
	int uffd_warned;
};

/* ---- the userfaultfd side ------------------------------------------------------ */

static int uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api) || !(api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM)) {
		int rc = errno ? -errno : -ENOTSUP;
		close(fd);
		return rc;
	}
	return fd;
}

/* Registers [base, base + len) for write-protect faults and protects it. */
static int uffd_protect(int fd, uint64_t base, uint64_t len)
{
	struct uffdio_register reg = { .range = { .start = base, .len = len },
				       .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = { .start = base, .len = len },
					  .mode = UFFDIO_WRITEPROTECT_MODE_WP };

	if (ioctl(fd, UFFDIO_REGISTER, &reg) || ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
		return -errno;
	return 0;
}

/* Lifts the protection of a range, waking a store waiting in it. A range
 * its writer unmapped meanwhile fails (-ENOENT): nothing waits there. */
static void uffd_release(int fd, uint64_t base, uint64_t len)
{
	struct uffdio_writeprotect wp = { .range = { .start = base, .len = len }, .mode = 0 };

	(void)ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
}

/* ---- the checkpoint thread's work -------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t k = pwrite(fd, p, len, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		len -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* Writes chunk c of v from bytes (its copy as at the boundary) and records
 * its checksum; an all-zero chunk stays a hole. */
static int write_chunk(ckpt_view *v, uint64_t c, const uint8_t *bytes)
{
	uint64_t off = c * CQRS_CKPT_CHUNK;
	size_t len = v->bytes - off < CQRS_CKPT_CHUNK ? v->bytes - off : CQRS_CKPT_CHUNK;

	if (c > 0 && !memcmp(bytes, cqrs__ckpt_zeros, len)) {
		v->sums[c] = cqrs__ckpt_zero_sum(len);
		return 0;
	}
	v->sums[c] = XXH3_64bits(bytes, len);
	return write_all(v->fd, bytes, len, CQRS_CKPT_HDR_SIZE + off);
}

static size_t chunk_len(const ckpt_view *v, uint64_t c)
{
	uint64_t off = c * CQRS_CKPT_CHUNK;
	return v->bytes - off < CQRS_CKPT_CHUNK ? v->bytes - off : CQRS_CKPT_CHUNK;
}

_Atomic uint32_t cqrs__ckpt_test_chunk_delay_us;

/* The chunk's turn in the file, in order (the checkpoint thread). */
static int seq_chunk(ckpt_job *j, ckpt_view *v, uint64_t c)
{
	/* relaxed: a test knob, read once per chunk */
	uint32_t delay = atomic_load_explicit(&cqrs__ckpt_test_chunk_delay_us, memory_order_relaxed);
	uint8_t st;
	int rc = 0;

	if (delay)
		usleep(delay);

	pthread_mutex_lock(&j->mu);
	st = v->state[c];
	if (st == CH_PROTECTED)
		v->state[c] = CH_WRITING;
	pthread_mutex_unlock(&j->mu);
	if (st == CH_PROTECTED) {
		rc = write_chunk(v, c, v->src + c * CQRS_CKPT_CHUNK);
		if (j->uffd >= 0) /* even after a failed write: the projector goes on */
			uffd_release(j->uffd, v->wbase + c * CQRS_CKPT_CHUNK, chunk_len(v, c));
	} else if (st == CH_SAVED) {
		/* the fault thread's copy; only this thread touches it now */
		rc = write_chunk(v, c, v->saved[c]);
		free(v->saved[c]);
		v->saved[c] = NULL;
	} else {
		return 0; /* written already */
	}
	pthread_mutex_lock(&j->mu);
	v->state[c] = CH_DONE;
	pthread_mutex_unlock(&j->mu);
	return rc;
}

static void uffd_wake_page(int fd, uint64_t a)
{
	struct uffdio_range w = { .start = a & ~UINT64_C(4095), .len = 4096 };

	(void)ioctl(fd, UFFDIO_WAKE, &w);
}

/* One store waits at address a: its chunk is copied aside (memory speed)
 * and released at once; the checkpoint thread writes the copy at its turn.
 * A chunk the checkpoint thread is writing right now is released by it,
 * which wakes the store. */
static void serve_fault(ckpt_job *j, uint64_t a)
{
	for (uint32_t i = 0; i < j->nviews; i++) {
		ckpt_view *v = &j->v[i];
		uint64_t c;
		size_t len;
		uint8_t st;

		if (a < v->wbase || a >= v->wbase + v->bytes)
			continue;
		c = (a - v->wbase) / CQRS_CKPT_CHUNK;
		len = chunk_len(v, c);
		pthread_mutex_lock(&j->mu);
		st = v->state[c];
		if (st == CH_PROTECTED) {
			uint8_t *copy = malloc(len);
			if (copy) {
				memcpy(copy, v->src + c * CQRS_CKPT_CHUNK, len);
				v->saved[c] = copy;
				v->state[c] = CH_SAVED;
			} else {
				v->state[c] = CH_WRITING; /* no memory: written here, now */
			}
			pthread_mutex_unlock(&j->mu);
			if (!copy) {
				int rc = write_chunk(v, c, v->src + c * CQRS_CKPT_CHUNK);
				if (rc && !j->fault_rc)
					j->fault_rc = rc;
			}
			uffd_release(j->uffd, v->wbase + c * CQRS_CKPT_CHUNK, len);
			if (!copy) {
				pthread_mutex_lock(&j->mu);
				v->state[c] = CH_DONE;
				pthread_mutex_unlock(&j->mu);
			}
		} else {
			pthread_mutex_unlock(&j->mu);
			if (st != CH_WRITING)
				uffd_wake_page(j->uffd, a); /* its release raced this fault */
		}
		return;
	}
	uffd_wake_page(j->uffd, a); /* not ours (a vanished mapping): let it retry */
}

/* The fault thread of a write-protected job: blocks on the userfaultfd and
 * serves each fault as it comes, until the checkpoint thread says stop. */
static void *fault_main(void *arg)
{
	ckpt_job *j = arg;
	struct uffd_msg msg[16];

	for (;;) {
		struct pollfd pf[2] = { { .fd = j->uffd, .events = POLLIN },
					{ .fd = j->stop_fd, .events = POLLIN } };
		ssize_t n;

		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		n = read(j->uffd, msg, sizeof msg);
		for (ssize_t m = 0; n > 0 && m < n / (ssize_t)sizeof msg[0]; m++) {
			uint64_t t0 = cqrs__mono_ns(), dt;
			if (msg[m].event != UFFD_EVENT_PAGEFAULT)
				continue;
			serve_fault(j, msg[m].arg.pagefault.address);
			j->faults++;
			dt = cqrs__mono_ns() - t0;
			if (dt > j->fault_max_ns)
				j->fault_max_ns = dt;
		}
	}
	return NULL;
}

static void fsync_dir(const char *file)
{
	char dir[4096];
	char *slash;
	int fd;

	snprintf(dir, sizeof dir, "%s", file);
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Table, header, fsync, rename, fsync the folder. */
static int finish_view(ckpt_view *v)
{
	_Alignas(8) uint8_t block[CQRS_CKPT_HDR_SIZE];
	uint64_t sum;
	int rc;

	v->hdr.total = XXH3_64bits(v->sums, 8 * v->hdr.nchunks);
	memset(block, 0, sizeof block);
	memcpy(block, &v->hdr, sizeof v->hdr);
	sum = XXH3_64bits(block, CQRS_CKPT_HDR_SUM_OFF);
	memcpy(block + CQRS_CKPT_HDR_SUM_OFF, &sum, 8);
	rc = write_all(v->fd, v->sums, 8 * v->hdr.nchunks, v->hdr.table_off); /* sizes the file */
	if (!rc)
		rc = write_all(v->fd, block, sizeof block, 0);
	if (!rc && fsync(v->fd))
		rc = -errno;
	if (!rc && rename(v->tmp, v->path))
		rc = -errno;
	if (!rc)
		fsync_dir(v->path);
	return rc;
}

/* Keeps the newest `keep` checkpoints of the view whose newest is path. */
static void prune(cqrs_engine *e, const char *view)
{
	char dir[4096], path[4096];
	uint64_t *seqs;
	size_t n;
	uint32_t keep = e->cfg.checkpoint_keep ? e->cfg.checkpoint_keep : 1;

	snprintf(dir, sizeof dir, "%s/checkpoints/%s", e->data_dir, view);
	if (cqrs__checkpoint_seqs(dir, &seqs, &n))
		return;
	for (size_t i = keep; i < n; i++)
		if (cqrs__checkpoint_path(path, sizeof path, e->data_dir, view, seqs[i], 0) == 0)
			(void)unlink(path);
	free(seqs);
}

static ckpt_job *job_alloc(void)
{
	ckpt_job *j = calloc(1, sizeof *j);

	if (!j)
		return NULL;
	pthread_mutex_init(&j->mu, NULL);
	j->uffd = j->stop_fd = -1;
	return j;
}

static void job_free(ckpt_job *j)
{
	if (j->uffd >= 0)
		close(j->uffd); /* drops the registrations, wakes anything left waiting */
	if (j->stop_fd >= 0)
		close(j->stop_fd);
	pthread_mutex_destroy(&j->mu);
	for (uint32_t i = 0; i < j->nviews; i++) {
		ckpt_view *v = &j->v[i];
		if (v->src_kind == 1)
			munmap((void *)v->src, v->bytes);
		else if (v->src_kind == 2)
			free((void *)v->src);
		if (v->fd >= 0)
			close(v->fd);
		free(v->sums);
		free(v->state);
		for (uint64_t c = 0; v->saved && c < v->hdr.nchunks; c++)
			free(v->saved[c]);
		free(v->saved);
	}
	free(j);
}

/* Writes every view of j (the checkpoint thread, or the stopping thread). */
static int run_job(cqrs_engine *e, ckpt_job *j)
{
	int rc = 0;

	for (uint32_t i = 0; i < j->nviews; i++) {
		ckpt_view *v = &j->v[i];
		v->fd = open(v->tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0640);
		v->sums = calloc(v->hdr.nchunks, 8);
		v->state = calloc(v->hdr.nchunks, 1);
		v->saved = calloc(v->hdr.nchunks, sizeof *v->saved);
		if (v->fd < 0 || !v->sums || !v->state || !v->saved) {
			rc = v->fd < 0 ? -errno : -ENOMEM;
			break;
		}
	}
	if (rc && j->uffd >= 0) /* no file to write to: the projector goes on */
		for (uint32_t i = 0; i < j->nviews; i++)
			uffd_release(j->uffd, j->v[i].wbase, j->v[i].bytes);
	if (!rc && j->uffd >= 0) {
		j->stop_fd = eventfd(0, EFD_CLOEXEC);
		if (j->stop_fd < 0 || pthread_create(&j->fault_thread, NULL, fault_main, j)) {
			rc = -EAGAIN;
			for (uint32_t i = 0; i < j->nviews; i++)
				uffd_release(j->uffd, j->v[i].wbase, j->v[i].bytes);
		} else {
			j->fault_started = 1;
		}
	}
	/* Every chunk is written, failed or not, so that every protected
	 * chunk is released. */
	for (uint32_t i = 0; !rc && i < j->nviews; i++) {
		ckpt_view *v = &j->v[i];
		for (uint64_t c = 0; c < v->hdr.nchunks; c++) {
			int r = seq_chunk(j, v, c);
			if (r && !rc)
				rc = r;
		}
	}
	if (j->fault_started) {
		uint64_t one = 1;
		if (write(j->stop_fd, &one, sizeof one) != sizeof one)
			pthread_cancel(j->fault_thread); /* cannot happen on an eventfd */
		pthread_join(j->fault_thread, NULL);
		j->fault_started = 0;
		if (j->fault_rc && !rc)
			rc = j->fault_rc;
	}
	if (j->uffd >= 0) {
		close(j->uffd);
		j->uffd = -1;
	}
	for (uint32_t i = 0; !rc && i < j->nviews; i++)
		rc = finish_view(&j->v[i]);
	if (rc) {
		for (uint32_t i = 0; i < j->nviews; i++)
			(void)unlink(j->v[i].tmp);
		CTR_ADD(e->ctr, ckpt_failed, 1);
		cqrs__log(e, CQRS_LOG_WARN, "projection %s: checkpoint at seq %llu failed: %s",
			  j->p->def.name, (unsigned long long)j->seq, cqrs_strerror(rc));
		return rc;
	}
	for (uint32_t i = 0; i < j->nviews; i++)
		prune(e, j->v[i].hdr.view);
	/* the seq before the count: a reader that sees the count move finds it */
	CTR_SET(e->ctr, ckpt_seq[j->p->index], j->seq);
	CTR_SET(e->ctr, ckpt_time_ns[j->p->index], cqrs__wall_ns());
	CTR_ADD(e->ctr, ckpt_faults, j->faults);
	/* release: the seq and time above before the count; pairs with a
	 * reader's acquire (or x86's ordered) load of ckpt_taken */
	atomic_thread_fence(memory_order_release);
	CTR_ADD(e->ctr, ckpt_taken, 1);
	cqrs__housekeeping_kick(e); /* a newer pin: retention may collect */
	{
		uint64_t stall = j->stall_ns > j->fault_max_ns ? j->stall_ns : j->fault_max_ns;
		if (stall > CTR_GET(e->ctr, ckpt_stall_max_ns))
			CTR_SET(e->ctr, ckpt_stall_max_ns, stall);
		if (j->stall_ns > CTR_GET(e->ctr, ckpt_setup_max_ns))
			CTR_SET(e->ctr, ckpt_setup_max_ns, j->stall_ns);
		if (j->fault_max_ns > CTR_GET(e->ctr, ckpt_fault_max_ns))
			CTR_SET(e->ctr, ckpt_fault_max_ns, j->fault_max_ns);
	}
	return 0;
}

/* Requests from other processes (`cqrs checkpoint ENGINE [VIEW]`): a file
 * DATA/checkpoints/.request (every projection) or
 * DATA/checkpoints/<view>/.request, made by whoever may write the data
 * directory (the control segment is read-only to every other process),
 * taken and removed here. Cold: a few stat calls per poll. */
static void poll_requests(cqrs_engine *e)
{
	char path[4096];

	if (snprintf(path, sizeof path, "%s/checkpoints/" CQRS_CKPT_REQUEST, e->data_dir) <
		    (int)sizeof path &&
	    unlink(path) == 0)
		(void)cqrs_engine_checkpoint(e, NULL);
	for (uint32_t k = 0; k < e->nprojs; k++)
		for (uint32_t i = 0; i < e->projs[k]->def.nviews; i++) {
			const char *view = e->projs[k]->def.views[i].name;
			if (snprintf(path, sizeof path, "%s/checkpoints/%s/" CQRS_CKPT_REQUEST, e->data_dir,
				     view) < (int)sizeof path &&
			    unlink(path) == 0)
				(void)cqrs_engine_checkpoint(e, view);
		}
}

#define REQUEST_POLL_NS 200000000L /* how often the thread looks for request files */

static void *ckpt_main(void *arg)
{
	struct cqrs_ckpt *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		ckpt_job *j;
		while (!c->job && !c->quit) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += REQUEST_POLL_NS;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT) {
				pthread_mutex_unlock(&c->lock);
				poll_requests(c->e);
				pthread_mutex_lock(&c->lock);
			}
		}
		if (!c->job)
			break;
		j = c->job;
		c->job = NULL;
		pthread_mutex_unlock(&c->lock);
		(void)run_job(c->e, j);
		job_free(j);
		/* seq_cst RMW: the files and counters of this job before the
		 * next claim (the projector's acquire CAS); and, as a request's
		 * publication (cqrs__command_kick's contract), before the look at
		 * pending requests below, which the SHARED command thread did
		 * not serve while this one was in flight */
		(void)atomic_exchange_explicit(&c->busy, 0, memory_order_seq_cst);
		if (cqrs__checkpoint_requested(c->e))
			cqrs__command_kick(c->e);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- the projection's side ------------------------------------------------------ */

/* Fills j's views from p's writers at seq. src_mode: how the thread gets
 * the bytes (CQRS_CKPT_MODE_*, or 0: the writer's mapping itself). */
static int job_fill(cqrs_engine *e, cqrs_proj *p, ckpt_job *j, uint64_t seq, int src_mode)
{
	j->p = p;
	j->seq = seq;
	j->mode = src_mode ? src_mode : CQRS_CKPT_MODE_STOPCOPY;
	j->uffd = -1;
	for (uint32_t i = 0; i < p->def.nviews; i++) {
		proj_view *pv = p->views[i];
		ckpt_view *v = &j->v[i];
		uint8_t *base;
		size_t size;
		uint32_t epoch;

		v->fd = -1;
		if (!pv->w || cqrs__vw_mapping(pv->w, &base, &size, &epoch))
			return -EAGAIN; /* a view missing (stalled projection): later */
		j->nviews = i + 1;
		if (cqrs__checkpoint_path(v->tmp, sizeof v->tmp, e->data_dir, pv->def.name, seq, 1) ||
		    cqrs__checkpoint_path(v->path, sizeof v->path, e->data_dir, pv->def.name, seq, 0))
			return -ENAMETOOLONG;
		v->bytes = size;
		v->wbase = (uint64_t)(uintptr_t)base;
		v->hdr = (cqrs_ckpt_hdr){ .magic = CQRS_CKPT_MAGIC, .format = CQRS_CKPT_FORMAT,
					  .header_size = CQRS_CKPT_HDR_SIZE,
					  .schema_hash = cqrs_schema_hash(pv->def.row),
					  .applied_seq = seq, .generation = cqrs__vw_generation(pv->w),
					  .origin = e->journal_origin, .capacity = cqrs__vw_capacity(pv->w),
					  .seg_bytes = size, .chunk_bytes = CQRS_CKPT_CHUNK,
					  .epoch = epoch,
					  .nchunks = (size + CQRS_CKPT_CHUNK - 1) / CQRS_CKPT_CHUNK,
					  .table_off = CQRS_CKPT_HDR_SIZE + size,
					  .created_ns = cqrs__wall_ns(), .copy_mode = (uint32_t)j->mode,
					  };
		cqrs__checkpoint_event_types(e, v->hdr.events_types);
		v->hdr.events_hash = cqrs__checkpoint_events_hash(e, v->hdr.events_types);
		snprintf(v->hdr.engine, sizeof v->hdr.engine, "%s", e->name);
		snprintf(v->hdr.view, sizeof v->hdr.view, "%s", pv->def.name);
		if (src_mode == 0) {
			v->src = base;
		} else if (src_mode == CQRS_CKPT_MODE_UFFD) {
			int fd = shm_open(cqrs__vw_segment_name(pv->w), O_RDONLY | O_CLOEXEC, 0);
			void *m;
			if (fd < 0)
				return -errno;
			m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
			close(fd);
			if (m == MAP_FAILED)
				return -errno;
			v->src = m;
			v->src_kind = 1;
		} else {
			/* zeroed on demand: only the chunks that hold data are
			 * copied, and only they take memory */
			uint8_t *copy = calloc(1, size);
			if (!copy)
				return -ENOMEM;
			for (size_t off = 0; off < size; off += CQRS_CKPT_CHUNK) {
				size_t len = size - off < CQRS_CKPT_CHUNK ? size - off : CQRS_CKPT_CHUNK;
				if (memcmp(base + off, cqrs__ckpt_zeros, len))
					memcpy(copy + off, base + off, len);
			}
			v->src = copy;
			v->src_kind = 2;
		}
	}
	return 0;
}

static void start_job(struct cqrs_ckpt *c, cqrs_proj *p, uint64_t seq)
{
	cqrs_engine *e = c->e;
	uint64_t t0 = cqrs__mono_ns();
	int expected = 0, rc;
	ckpt_job *j;

	/* acquire: pairs with the thread's release of busy after the last job */
	if (!atomic_compare_exchange_strong_explicit(&c->busy, &expected, 1, memory_order_acquire,
						     memory_order_relaxed))
		return;
	j = job_alloc();
	rc = j ? job_fill(e, p, j, seq, c->mode) : -ENOMEM;
	if (!rc && c->mode == CQRS_CKPT_MODE_UFFD) {
		j->uffd = uffd_open();
		rc = j->uffd < 0 ? j->uffd : 0;
		for (uint32_t i = 0; !rc && i < j->nviews; i++)
			rc = uffd_protect(j->uffd, j->v[i].wbase, j->v[i].bytes);
		if (rc) {
			/* this one by copy; the log says why, once */
			if (!c->uffd_warned++)
				cqrs__log(e, CQRS_LOG_WARN, "checkpoints: userfaultfd write-protect "
					  "failed (%s): copying at the batch boundary instead",
					  strerror(-rc));
			for (uint32_t i = 0; i < j->nviews; i++) /* release what was protected */
				if (j->uffd >= 0)
					uffd_release(j->uffd, j->v[i].wbase, j->v[i].bytes);
			job_free(j);
			j = job_alloc();
			rc = j ? job_fill(e, p, j, seq, CQRS_CKPT_MODE_STOPCOPY) : -ENOMEM;
		}
	}
	if (rc) {
		if (j)
			job_free(j);
		atomic_store_explicit(&c->busy, 0, memory_order_relaxed); /* nothing was handed over */
		if (rc != -EAGAIN) {
			cqrs__log(e, CQRS_LOG_WARN, "projection %s: checkpoint at seq %llu not started: %s",
				  p->def.name, (unsigned long long)seq, cqrs_strerror(rc));
			p->ckpt_seq = seq; /* not again before the next interval */
		}
		return;
	}
	p->ckpt_seq = seq;
	/* relaxed: this thread is the request's consumer; a request made after
	 * this load is served by the next checkpoint */
	atomic_store_explicit(&p->ckpt_requested, 0, memory_order_relaxed);
	j->stall_ns = cqrs__mono_ns() - t0;
	pthread_mutex_lock(&c->lock);
	c->job = j;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void cqrs__checkpoint_tick(cqrs_engine *e, cqrs_proj *p)
{
	struct cqrs_ckpt *c = e->ckpt;
	uint64_t every, a;
	int req;

	if (!c)
		return;
	every = e->cfg.checkpoint_every_events;
	a = atomic_load_explicit(&p->applied_seq, memory_order_relaxed); /* this thread's own */
	/* relaxed: a flag; what it asks for is read on this thread */
	req = atomic_load_explicit(&p->ckpt_requested, memory_order_relaxed);
	if (!(every && a - p->ckpt_seq >= every) && !req)
		return;
	/* A request is answered by a checkpoint even at the seq of the last
	 * one (the file is rewritten: its asker sees one taken). */
	if (a == 0 || (!req && a <= p->ckpt_seq)) {
		atomic_store_explicit(&p->ckpt_requested, 0, memory_order_relaxed); /* consumer */
		return;
	}
	start_job(c, p, a);
}

bool cqrs__checkpoint_requested(cqrs_engine *e)
{
	if (!e->ckpt)
		return false;
	/* seq_cst: pairs with the thread's exchange of busy at a job's end.
	 * While one is in flight a request waits (no spinning on it); the
	 * thread kicks the command thread when it ends. */
	if (atomic_load_explicit(&e->ckpt->busy, memory_order_seq_cst))
		return false;
	for (uint32_t k = 0; k < e->nprojs; k++)
		/* seq_cst: pairs with cqrs_engine_checkpoint's seq_cst exchange */
		if (atomic_load_explicit(&e->projs[k]->ckpt_requested, memory_order_seq_cst))
			return true;
	return false;
}

/* ---- open / close ----------------------------------------------------------------- */

int cqrs__checkpoint_open(cqrs_engine *e)
{
	struct cqrs_ckpt *c;
	int rc;

	if (e->cfg.checkpoint_copy < 0)
		return 0;
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->e = e;
	c->mode = CQRS_CKPT_MODE_STOPCOPY;
	if (e->cfg.checkpoint_copy == 0) {
		int fd = uffd_open();
		if (fd >= 0) {
			c->mode = CQRS_CKPT_MODE_UFFD;
			close(fd);
		} else {
			cqrs__log(e, CQRS_LOG_INFO, "checkpoints: no userfaultfd write-protect (%s): "
				  "views are copied at the batch boundary", strerror(-fd));
		}
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	rc = pthread_create(&c->thread, NULL, ckpt_main, c);
	if (rc) {
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cond);
		free(c);
		return cqrs__fail(-rc, "checkpoint thread: %s", strerror(rc));
	}
	pthread_setname_np(c->thread, "cqrs-ckpt");
	c->started = 1;
	e->ckpt = c;
	CTR_SET(e->ctr, ckpt_mode, c->mode);
	/* each projection's newest checkpoint, for the interval and cqrs stat */
	for (uint32_t k = 0; k < e->nprojs; k++) {
		cqrs_proj *p = e->projs[k];
		char dir[4096], path[4096];
		uint64_t *seqs;
		size_t n;
		struct stat st;

		snprintf(dir, sizeof dir, "%s/checkpoints/%s", e->data_dir, p->def.views[0].name);
		if (cqrs__checkpoint_seqs(dir, &seqs, &n))
			continue;
		if (n && seqs[0] > p->ckpt_seq) {
			p->ckpt_seq = seqs[0];
			CTR_SET(e->ctr, ckpt_seq[k], seqs[0]);
			if (cqrs__checkpoint_path(path, sizeof path, e->data_dir, p->def.views[0].name,
						  seqs[0], 0) == 0 && stat(path, &st) == 0)
				CTR_SET(e->ctr, ckpt_time_ns[k],
					(int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
		}
		free(seqs);
	}
	return 0;
}

void cqrs__checkpoint_close(cqrs_engine *e, int clean)
{
	struct cqrs_ckpt *c = e->ckpt;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->quit = 1;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL); /* after the job in flight */
	if (c->job) { /* handed over after the thread's last look */
		job_free(c->job);
		c->job = NULL;
	}
	for (uint32_t k = 0; clean && e->cfg.checkpoint_on_stop && k < e->nprojs; k++) {
		cqrs_proj *p = e->projs[k];
		uint64_t a = atomic_load_explicit(&p->applied_seq, memory_order_relaxed); /* joined */
		ckpt_job *j;
		int rc;

		if (a == 0 || a <= p->ckpt_seq)
			continue;
		j = job_alloc();
		/* the projectors are joined: the writers' own mappings hold still */
		rc = j ? job_fill(e, p, j, a, 0) : -ENOMEM;
		if (!rc && !run_job(e, j))
			p->ckpt_seq = a;
		if (j)
			job_free(j);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
	e->ckpt = NULL;
}

int cqrs_engine_checkpoint(cqrs_engine *e, const char *view)
{
	int found = 0;

	if (!e)
		return -EINVAL;
	if (e->cfg.checkpoint_copy < 0)
		return -ENOTSUP;
	for (uint32_t k = 0; k < e->nprojs; k++) {
		cqrs_proj *p = e->projs[k];
		int mine = !view;
		for (uint32_t i = 0; !mine && i < p->def.nviews; i++)
			mine = !strcmp(p->def.views[i].name, view);
		if (!mine)
			continue;
		found = 1;
		/* seq_cst RMW: as cqrs_engine_rebuild's request (the SHARED
		 * command thread re-checks it with seq_cst before sleeping) */
		(void)atomic_exchange_explicit(&p->ckpt_requested, 1, memory_order_seq_cst);
	}
	if (!found)
		return CQRS_ENOTFOUND;
	cqrs__command_kick(e);
	return 0;
}
