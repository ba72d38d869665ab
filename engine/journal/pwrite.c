/*
 * engine/journal/pwrite.c - the fallback I/O backend: pwritev + fdatasync
 * on the command thread, for when io_uring is unavailable (seccomp,
 * kernel.io_uring_disabled) or CQRS_NO_IO_URING=1. It writes the same
 * batches at the same offsets, so the files are byte-identical to the
 * io_uring backend's; only the overlap is lost (flush blocks for the write,
 * and in batch mode for the fdatasync). Its write (cqrs__jpw_write) also
 * writes the batches the io_uring backend leaves to the flushing thread
 * (writer.c, write_inline).
 */
#include "engine/journal/fault.h"
#include "engine/journal/internal.h"

static int pw_set_file(cqrs_journal *j, int fd)
{
	(void)j;
	(void)fd; /* writes go to j->seg_fd */
	return 0;
}

bool cqrs__jpw_write(cqrs_journal *j, jbatch *b)
{
	int rc = cqrs__jf_pwrite_all(j->seg_fd, b->buf, b->len, (off_t)b->file_off, &j->st.short_writes);

	if (rc) {
		cqrs__jw_failed(j, b, rc, "pwritev");
		return false;
	}
	b->done = b->len;
	cqrs__jw_written(j, b);
	return true;
}

static int pw_submit(cqrs_journal *j, jbatch *b)
{
	int rc;

	if (!cqrs__jpw_write(j, b))
		return 0;
	if (j->cfg.durability == CQRS_DURABILITY_BATCH) {
		rc = cqrs__jf_fdatasync(j->seg_fd);
		if (rc) {
			cqrs__jw_failed(j, b, rc, "fdatasync");
			return 0;
		}
		cqrs__jw_synced(j, b);
	}
	return 0;
}

static int pw_reap(cqrs_journal *j, uint64_t wait_ns)
{
	(void)j;
	(void)wait_ns; /* everything completed inside submit */
	return 0;
}

const jio_ops cqrs__jio_pwrite = {
	.name = "pwritev",
	.set_file = pw_set_file,
	.submit = pw_submit,
	.sync = NULL, /* submit did it */
	.reap = pw_reap,
	.fini = NULL,
};
