/*
 * engine/journal/fault.c - fault sites and the syscall wrappers that carry
 * them (see fault.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine/journal/fault.h"

/* All relaxed: the fault state is configured by a test while no journal
 * call runs, and the counters only need to be exact, not ordered against
 * other memory (the interval thread's fsync site may hit concurrently). */
static atomic_bool armed;
static atomic_int arm_site;
static atomic_int arm_err;
static atomic_bool arm_sticky;
static atomic_uint_fast64_t arm_nth;
static atomic_uint_fast64_t hits;
static atomic_bool fired;
static atomic_bool fake_sync;

void cqrs__jfault_arm(int site, uint64_t nth, int err, bool sticky)
{
	atomic_store_explicit(&armed, false, memory_order_relaxed);
	atomic_store_explicit(&arm_site, site, memory_order_relaxed);
	atomic_store_explicit(&arm_err, err, memory_order_relaxed);
	atomic_store_explicit(&arm_sticky, sticky, memory_order_relaxed);
	atomic_store_explicit(&arm_nth, nth, memory_order_relaxed);
	atomic_store_explicit(&hits, 0, memory_order_relaxed);
	atomic_store_explicit(&fired, false, memory_order_relaxed);
	atomic_store_explicit(&armed, true, memory_order_relaxed);
}

void cqrs__jfault_disarm(void)
{
	atomic_store_explicit(&armed, false, memory_order_relaxed);
}

int cqrs__jfault_hit(int site)
{
	int want, err;
	uint64_t n;

	if (!atomic_load_explicit(&armed, memory_order_relaxed))
		return 0;
	want = atomic_load_explicit(&arm_site, memory_order_relaxed);
	if (want != JF_ANY && want != site)
		return 0;
	err = atomic_load_explicit(&arm_err, memory_order_relaxed);
	if (err == JF_SHORT && site != JF_WRITE)
		return 0; /* short only means something for writes */
	n = atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed) + 1;
	if (n == atomic_load_explicit(&arm_nth, memory_order_relaxed) ||
	    (n > atomic_load_explicit(&arm_nth, memory_order_relaxed) &&
	     atomic_load_explicit(&arm_sticky, memory_order_relaxed))) {
		atomic_store_explicit(&fired, true, memory_order_relaxed);
		return err;
	}
	return 0;
}

void cqrs__jfault_fake_sync(bool on)
{
	atomic_store_explicit(&fake_sync, on, memory_order_relaxed);
}

bool cqrs__jfault_sync_is_fake(void)
{
	return atomic_load_explicit(&fake_sync, memory_order_relaxed);
}

bool cqrs__jfault_fired(void)
{
	return atomic_load_explicit(&fired, memory_order_relaxed);
}

uint64_t cqrs__jfault_hits(void)
{
	return atomic_load_explicit(&hits, memory_order_relaxed);
}

int cqrs__jf_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	int rc = cqrs__jfault_hit(JF_OPEN), fd;

	if (rc < 0)
		return rc;
	fd = openat(dirfd, name, flags | O_CLOEXEC, mode);
	return fd < 0 ? -errno : fd;
}

int cqrs__jf_fallocate(int fd, off_t len)
{
	int rc = cqrs__jfault_hit(JF_FALLOCATE);

	if (rc < 0)
		return rc;
	if (fallocate(fd, 0, 0, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	/* Filesystems without fallocate (tmpfs is fine; some FUSE are not). */
	return posix_fallocate(fd, 0, len) == 0 ? 0 : -ENOSPC;
}

int cqrs__jf_fdatasync(int fd)
{
	int rc = cqrs__jfault_hit(JF_FSYNC);

	if (rc < 0)
		return rc;
	if (cqrs__jfault_sync_is_fake())
		return 0;
	return fdatasync(fd) == 0 ? 0 : -errno;
}

int cqrs__jf_dirsync(int dirfd)
{
	int rc = cqrs__jfault_hit(JF_DIRSYNC);

	if (rc < 0)
		return rc;
	if (cqrs__jfault_sync_is_fake())
		return 0;
	return fsync(dirfd) == 0 ? 0 : -errno;
}

int cqrs__jf_renameat(int dirfd, const char *from, const char *to)
{
	int rc = cqrs__jfault_hit(JF_RENAME);

	if (rc < 0)
		return rc;
	return renameat(dirfd, from, dirfd, to) == 0 ? 0 : -errno;
}

int cqrs__jf_pwrite_all(int fd, const void *buf, size_t len, off_t off, uint64_t *short_writes)
{
	const char *p = buf;

	while (len > 0) {
		struct iovec iov = { (void *)p, len };
		int f = cqrs__jfault_hit(JF_WRITE);
		ssize_t n;

		if (f == -EINTR || f == -EAGAIN)
			continue; /* as the real syscall's: try again */
		if (f < 0)
			return f;
		if (f == JF_SHORT && len >= 2)
			iov.iov_len = len / 2;
		n = pwritev(fd, &iov, 1, off);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		if ((size_t)n < len && short_writes)
			(*short_writes)++;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}
