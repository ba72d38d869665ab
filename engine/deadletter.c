/*
 * engine/deadletter.c - the dead-letter log DATA_DIR/deadletters.log: open
 * (cutting a torn tail), append with fdatasync, read back. The format is
 * in deadletter.h; what a projection records and retries is
 * proj_deadletter.c.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "cqrs_common.h"
#include "engine/deadletter.h"
#include "core/errors.h"

#define DL_MAGIC 0x4c445143u
#define DL_VERSION 1

struct cqrs_dl_log {
	int fd;
};

static void path_of(char *buf, size_t cap, const char *dir)
{
	snprintf(buf, cap, "%s/deadletters.log", dir);
}

int cqrs__dl_open(const char *dir, cqrs_dl_log **out)
{
	char path[4096];
	cqrs_dl_log *l;
	int fd;

	*out = NULL;
	path_of(path, sizeof path, dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return cqrs__fail(-errno, "open %s: %s", path, strerror(errno));
	/* A crash mid-append leaves a partial record that was never reported
	 * durable; cut it so appends stay aligned to whole records. */
	{
		struct stat st;
		if (fstat(fd, &st) == 0 && st.st_size % CQRS_DL_RECORD &&
		    ftruncate(fd, st.st_size - st.st_size % CQRS_DL_RECORD)) {
			int err = errno;
			close(fd);
			return cqrs__fail(-err, "truncate torn tail of %s: %s", path, strerror(err));
		}
	}
	l = calloc(1, sizeof *l);
	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	l->fd = fd;
	*out = l;
	return 0;
}

static void encode(uint8_t *b, const cqrs_deadletter *d)
{
	uint32_t magic = DL_MAGIC;
	uint16_t ver = DL_VERSION;
	uint64_t sum;

	memset(b, 0, CQRS_DL_RECORD);
	memcpy(b, &magic, 4);
	memcpy(b + 4, &ver, 2);
	b[6] = d->kind;
	memcpy(b + 8, &d->seq, 8);
	memcpy(b + 16, &d->time_ns, 8);
	memcpy(b + 24, &d->code, 4);
	memcpy(b + 32, d->projection, strnlen(d->projection, 31));
	memcpy(b + 64, d->reason, strnlen(d->reason, 183));
	sum = XXH3_64bits(b, 248);
	memcpy(b + 248, &sum, 8);
}

static int decode(const uint8_t *b, cqrs_deadletter *d)
{
	uint32_t magic;
	uint16_t ver;
	uint64_t sum;

	memcpy(&magic, b, 4);
	memcpy(&ver, b + 4, 2);
	memcpy(&sum, b + 248, 8);
	if (magic != DL_MAGIC || ver != DL_VERSION || sum != XXH3_64bits(b, 248))
		return CQRS_ECORRUPT;
	memset(d, 0, sizeof *d);
	d->kind = b[6];
	memcpy(&d->seq, b + 8, 8);
	memcpy(&d->time_ns, b + 16, 8);
	memcpy(&d->code, b + 24, 4);
	memcpy(d->projection, b + 32, 31);
	memcpy(d->reason, b + 64, 183);
	return 0;
}

int cqrs__dl_append(cqrs_dl_log *l, const cqrs_deadletter *d)
{
	uint8_t b[CQRS_DL_RECORD];
	size_t off = 0;

	encode(b, d);
	while (off < sizeof b) {
		ssize_t n = write(l->fd, b + off, sizeof b - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	return fdatasync(l->fd) ? -errno : 0;
}

void cqrs__dl_close(cqrs_dl_log *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l);
}

int cqrs__dl_read(const char *dir, void (*fn)(void *arg, const cqrs_deadletter *d), void *arg,
		 uint64_t *torn_bytes)
{
	char path[4096];
	uint8_t b[CQRS_DL_RECORD];
	struct stat st;
	int fd, n = 0;
	off_t off = 0;

	if (torn_bytes)
		*torn_bytes = 0;
	path_of(path, sizeof path, dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : cqrs__fail(-errno, "open %s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		close(fd);
		return -errno;
	}
	while (off + CQRS_DL_RECORD <= st.st_size) {
		cqrs_deadletter d;
		if (pread(fd, b, sizeof b, off) != (ssize_t)sizeof b) {
			close(fd);
			return -EIO;
		}
		if (decode(b, &d)) {
			close(fd);
			if (off + CQRS_DL_RECORD < st.st_size)
				return cqrs__fail(CQRS_ECORRUPT, "%s: bad record at offset %lld", path,
						 (long long)off);
			if (torn_bytes)
				*torn_bytes = (uint64_t)(st.st_size - off);
			return n;
		}
		fn(arg, &d);
		n++;
		off += CQRS_DL_RECORD;
	}
	if (torn_bytes)
		*torn_bytes = (uint64_t)(st.st_size - off);
	close(fd);
	return n;
}
