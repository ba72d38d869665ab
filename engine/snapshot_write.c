/*
 * engine/snapshot_write.c - serializing the write model into a snapshot
 * file (layout: engine/snapshot_format.h): header, sections, chunks with
 * their hashes, trailer; then fsync, the wait for the journal, rename,
 * directory fsync and pruning.
 *
 * Runs in the forked writer (engine/snapshot.c), or on the command thread
 * at a clean stop: it reads the model and writes one file, and touches
 * nothing else of the engine. No allocation: the chunk buffer is the
 * caller's. One write() per chunk of up to 1 MiB (header and payload in
 * one buffer), each payload hashed once (XXH3, far above disk speed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "core/clock.h"
#include "core/errors.h"
#include "engine/engine_internal.h"
#include "engine/model/dedup.h"
#include "engine/model/store.h"
#include "engine/model/versions.h"
#include "engine/snapshot.h"
#include "engine/snapshot_io.h"

/* ---- the stream of chunks ------------------------------------------------------ */

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Bytes outside any chunk payload: written, and fed to the total hash. */
static int put_raw(cqrs_snapshot_io *io, const void *p, size_t n)
{
	int rc;

	if (io->err)
		return io->err;
	XXH3_64bits_update(io->total, p, n);
	rc = write_all(io->fd, p, n);
	if (rc)
		return io->err = rc;
	io->off += n;
	return 0;
}

/* Writes the pending payload as one chunk (len 0: the section's end). */
static int flush_chunk(cqrs_snapshot_io *io)
{
	cqrs__snap_chunk ch = {
		.magic = CQRS_SNAP_CHUNK_MAGIC,
		.len = io->used,
		.hash = XXH3_64bits(io->buf + sizeof ch, io->used),
	};
	int rc;

	if (io->err)
		return io->err;
	memcpy(io->buf, &ch, sizeof ch);
	XXH3_64bits_update(io->total, &ch, sizeof ch);
	rc = write_all(io->fd, io->buf, sizeof ch + io->used);
	if (rc)
		return io->err = rc;
	io->off += sizeof ch + io->used;
	io->used = 0;
	return 0;
}

static int section_begin(cqrs_snapshot_io *io, uint32_t kind, const char *name, uint32_t keylen,
			 uint32_t value_size, uint64_t count)
{
	cqrs__snap_section s = {
		.magic = CQRS_SNAP_SECTION_MAGIC,
		.kind = kind,
		.keylen = keylen,
		.value_size = value_size,
		.count = count,
	};
	uint64_t rec = kind == CQRS_SNAP_USER ? 1 : (uint64_t)keylen + value_size;

	if (name)
		memcpy(s.name, name, strnlen(name, sizeof s.name - 1));
	if (rec == 0 || rec > CQRS_SNAP_CHUNK_MAX)
		return io->err = CQRS_EFORMAT;
	io->rec = (uint32_t)rec;
	io->limit = CQRS_SNAP_CHUNK_MAX - CQRS_SNAP_CHUNK_MAX % io->rec;
	io->used = 0;
	io->count = 0;
	return put_raw(io, &s, sizeof s);
}

static int section_end(cqrs_snapshot_io *io)
{
	int rc = io->used ? flush_chunk(io) : 0;

	return rc ? rc : flush_chunk(io); /* the empty chunk that ends it */
}

/* One fixed-size record in two parts (key, value), never split across
 * chunks. */
static int put_record(cqrs_snapshot_io *io, const void *a, size_t na, const void *b, size_t nb)
{
	uint8_t *p;

	if (io->used + io->rec > io->limit && flush_chunk(io))
		return io->err;
	p = io->buf + sizeof(cqrs__snap_chunk) + io->used;
	memcpy(p, a, na);
	if (nb)
		memcpy(p + na, b, nb);
	io->used += io->rec;
	io->count++;
	return io->err;
}

int cqrs_snapshot_write(cqrs_snapshot_io *io, const void *p, size_t n)
{
	const uint8_t *b = p;

	if (!io || io->mode != CQRS_SNAP_IO_WRITE)
		return -EINVAL;
	while (n && !io->err) {
		size_t room = io->limit - io->used, take = n < room ? n : room;

		memcpy(io->buf + sizeof(cqrs__snap_chunk) + io->used, b, take);
		io->used += (uint32_t)take;
		b += take;
		n -= take;
		if (io->used == io->limit)
			flush_chunk(io);
	}
	return io->err;
}

/* ---- the sections ---------------------------------------------------------------- */

static int put_schemas(cqrs_engine *e, cqrs_snapshot_io *io)
{
	uint64_t n = 0;

	for (uint32_t t = 0; t < CQRS_MAX_TYPES; t++)
		n += (e->cmds[t].schema != NULL) + (e->events[t].schema != NULL);
	if (section_begin(io, CQRS_SNAP_SCHEMAS, NULL, 0, sizeof(cqrs__snap_schema_rec), n))
		return io->err;
	for (uint32_t t = 0; t < CQRS_MAX_TYPES; t++) {
		if (e->cmds[t].schema) {
			cqrs__snap_schema_rec r = { 1, t, cqrs_schema_hash(e->cmds[t].schema) };
			put_record(io, &r, sizeof r, NULL, 0);
		}
		if (e->events[t].schema) {
			cqrs__snap_schema_rec r = { 2, t, cqrs_schema_hash(e->events[t].schema) };
			put_record(io, &r, sizeof r, NULL, 0);
		}
	}
	return section_end(io);
}

static int put_version(void *arg, uint64_t id, uint64_t version)
{
	uint64_t r[2] = { id, version };

	return put_record(arg, r, sizeof r, NULL, 0);
}

static int put_client(void *arg, uint64_t client, uint64_t max_cseq, const uint64_t *slots)
{
	cqrs_snapshot_io *io = arg;
	uint64_t head[2] = { client, max_cseq };

	return put_record(io, head, sizeof head, slots, io->rec - sizeof head);
}

static int put_store_rec(void *arg, const void *key, void *value)
{
	cqrs_snapshot_io *io = arg;

	return put_record(io, key, io->keylen, value, io->rec - io->keylen);
}

static int put_model(cqrs_engine *e, cqrs__snap *sn, cqrs_snapshot_io *io)
{
	uint32_t window = cqrs__dedup_window(e->dedup);

	if (put_schemas(e, io))
		return io->err;
	if (section_begin(io, CQRS_SNAP_VERSIONS, NULL, 0, 16, cqrs__versions_count(e->versions)) ||
	    cqrs__versions_foreach(e->versions, put_version, io) || section_end(io))
		return io->err;
	if (section_begin(io, CQRS_SNAP_DEDUP, NULL, 0, 16 + 16 * window,
			  cqrs__dedup_clients(e->dedup)) ||
	    cqrs__dedup_foreach(e->dedup, put_client, io) || section_end(io))
		return io->err;
	for (uint32_t i = 0; i < sn->nstores; i++) {
		cqrs_store *s = sn->stores[i].store;
		uint32_t keylen, value_size;

		cqrs__store_layout(s, &keylen, &value_size);
		io->keylen = keylen;
		if (section_begin(io, CQRS_SNAP_STORE, sn->stores[i].name, keylen, value_size,
				  cqrs_store_count(s)) ||
		    cqrs_store_foreach(s, put_store_rec, io) || section_end(io))
			return io->err;
	}
	for (uint32_t i = 0; i < sn->nusers; i++) {
		cqrs__snap_user *u = &sn->users[i];
		int rc;

		if (section_begin(io, CQRS_SNAP_USER, u->name, 0, u->version, 0))
			return io->err;
		rc = u->save(e->model, io, u->arg);
		if (rc && !io->err)
			io->err = rc < 0 ? rc : -EIO;
		if (io->err || section_end(io))
			return io->err;
	}
	return 0;
}

/* ---- the file ---------------------------------------------------------------------- */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

int cqrs__snapshot_write(cqrs_engine *e, uint64_t seq, uint8_t *buf, cqrs__snap_durable_fn durable,
			 void *arg, uint64_t *bytes, char *why, size_t whycap)
{
	cqrs__snap *sn = e->snap;
	char tmp[3400], final[3400];
	XXH3_state_t total;
	cqrs__snap_header h = {
		.magic = CQRS_SNAP_MAGIC,
		.version = CQRS_SNAP_VERSION,
		.header_size = sizeof h,
		.seq = seq,
		.created_ns = cqrs__wall_ns(),
		.nsections = 3 + sn->nstores + sn->nusers,
		.chunk_max = CQRS_SNAP_CHUNK_MAX,
	};
	cqrs_snapshot_io io = { .mode = CQRS_SNAP_IO_WRITE, .buf = buf, .total = &total };
	cqrs__snap_trailer t = { .magic = CQRS_SNAP_END_MAGIC, .nsections = h.nsections };
	const char *step = "write";
	int rc, d;

	*bytes = 0;
	memcpy(h.engine, e->name, strnlen(e->name, sizeof h.engine - 1));
	h.header_hash = XXH3_64bits(&h, offsetof(cqrs__snap_header, header_hash));
	snprintf(tmp, sizeof tmp, "%s/.tmp-snap-%020llu-%d", sn->dir, (unsigned long long)seq,
		 (int)getpid());
	cqrs__snapshot_name(final, sizeof final, sn->dir, seq);
	io.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (io.fd < 0) {
		rc = -errno;
		snprintf(why, whycap, "snapshot: cannot create %s: %s", tmp, strerror(-rc));
		return rc;
	}
	XXH3_64bits_reset(&total);
	rc = put_raw(&io, &h, sizeof h);
	if (!rc)
		rc = put_model(e, sn, &io);
	if (!rc) {
		t.file_bytes = io.off + sizeof t;
		t.total_hash = XXH3_64bits_digest(&total);
		rc = write_all(io.fd, &t, sizeof t);
	}
	if (!rc && fdatasync(io.fd)) {
		rc = -errno;
		step = "fsync";
	}
	close(io.fd);
	/* Renamed only once the journal holds every event it covers. */
	while (!rc && (d = durable(arg, seq)) == 0)
		usleep(1000);
	if (!rc && d < 0) {
		rc = -ECANCELED;
		step = "wait for the journal";
	}
	if (!rc && rename(tmp, final)) {
		rc = -errno;
		step = "rename";
	}
	if (!rc && (rc = fsync_dir(sn->dir)) != 0)
		step = "fsync of the folder";
	if (rc) {
		unlink(tmp);
		snprintf(why, whycap, "snapshot at seq %llu: %s failed: %s", (unsigned long long)seq,
			 step, rc == CQRS_EFORMAT ? "a record is larger than a chunk" : cqrs_strerror(rc));
		return rc;
	}
	cqrs__snapshot_prune(sn->dir, e->cfg.snapshot_keep ? e->cfg.snapshot_keep : 1);
	*bytes = t.file_bytes;
	return 0;
}
