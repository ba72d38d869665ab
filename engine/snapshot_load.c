/*
 * engine/snapshot_load.c - reading a snapshot file (layout and rules:
 * engine/snapshot_format.h): mapping and verifying it completely, checking
 * that it fits the engine (name, schemas, store layouts, callbacks), and
 * loading it into the write model; the load callbacks' byte stream.
 *
 * Verification follows no offset before checking it against the file's
 * size, checks every chunk hash and the total, and copies each header out
 * of the mapping before reading its fields. Loading then trusts the
 * verified structure (the hashes cannot be forged by accident; a hostile
 * file that passes them can only give the model wrong values, which any
 * writer of DATA/ could do through the journal too).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "core/errors.h"
#include "engine/engine_internal.h"
#include "engine/model/dedup.h"
#include "engine/model/store.h"
#include "engine/model/versions.h"
#include "engine/snapshot.h"
#include "engine/snapshot_io.h"

static int bad(int code, char *why, size_t whycap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int bad(int code, char *why, size_t whycap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whycap, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- verification ------------------------------------------------------------------ */

static int verify(cqrs__snap_image *img, char *why, size_t whycap)
{
	const uint8_t *b = img->base;
	uint64_t size = img->size, end, pos;
	cqrs__snap_header *h = &img->hdr;
	cqrs__snap_trailer t;
	XXH3_state_t total;

	if (size < sizeof *h + sizeof t)
		return bad(CQRS_ECORRUPT, why, whycap, "truncated: %llu bytes", (unsigned long long)size);
	memcpy(h, b, sizeof *h);
	if (h->magic != CQRS_SNAP_MAGIC)
		return bad(CQRS_EFORMAT, why, whycap, "not a snapshot (magic)");
	if (h->version != CQRS_SNAP_VERSION || h->header_size != sizeof *h)
		return bad(CQRS_EFORMAT, why, whycap, "format version %u, header %u bytes (this build "
			   "reads version %u)", h->version, h->header_size, CQRS_SNAP_VERSION);
	if (h->header_hash != XXH3_64bits(h, offsetof(cqrs__snap_header, header_hash)))
		return bad(CQRS_ECORRUPT, why, whycap, "header checksum mismatch");
	h->engine[sizeof h->engine - 1] = 0;
	if (h->nsections < 3 || h->nsections > CQRS_SNAP_MAX_SECTIONS)
		return bad(CQRS_ECORRUPT, why, whycap, "%u sections", h->nsections);
	XXH3_64bits_reset(&total);
	XXH3_64bits_update(&total, h, sizeof *h);
	end = size - sizeof t; /* the trailer's place if the file is whole */
	pos = sizeof *h;
	for (uint32_t i = 0; i < h->nsections; i++) {
		cqrs__snap_section s;
		cqrs__snap_sec *out = &img->sec[i];
		uint64_t rec, records = 0;

		if (pos + sizeof s > end)
			return bad(CQRS_ECORRUPT, why, whycap, "truncated in section %u", i);
		memcpy(&s, b + pos, sizeof s);
		if (s.magic != CQRS_SNAP_SECTION_MAGIC || s.kind < CQRS_SNAP_SCHEMAS ||
		    s.kind > CQRS_SNAP_USER || (i < 3 && s.kind != i + 1) || (i >= 3 && s.kind < 4))
			return bad(CQRS_ECORRUPT, why, whycap, "section %u at byte %llu is damaged", i,
				   (unsigned long long)pos);
		rec = s.kind == CQRS_SNAP_USER ? 1 : (uint64_t)s.keylen + s.value_size;
		if (rec == 0 || rec > CQRS_SNAP_CHUNK_MAX || s.keylen > 64)
			return bad(CQRS_ECORRUPT, why, whycap, "section %u: record size %llu", i,
				   (unsigned long long)rec);
		XXH3_64bits_update(&total, &s, sizeof s);
		out->kind = s.kind;
		memcpy(out->name, s.name, sizeof s.name);
		out->name[CQRS_SNAP_NAME] = 0;
		out->keylen = s.keylen;
		out->value_size = s.value_size;
		out->count = s.count;
		pos += sizeof s;
		out->off = pos;
		for (;;) {
			cqrs__snap_chunk c;

			if (pos + sizeof c > end)
				return bad(CQRS_ECORRUPT, why, whycap, "truncated in section %u (%s)", i,
					   out->name);
			memcpy(&c, b + pos, sizeof c);
			if (c.magic != CQRS_SNAP_CHUNK_MAGIC || c.len > CQRS_SNAP_CHUNK_MAX ||
			    c.len > end - pos - sizeof c)
				return bad(CQRS_ECORRUPT, why, whycap, "chunk at byte %llu is damaged or cut",
					   (unsigned long long)pos);
			if (c.len % rec)
				return bad(CQRS_ECORRUPT, why, whycap, "chunk at byte %llu splits a record",
					   (unsigned long long)pos);
			if (XXH3_64bits(b + pos + sizeof c, c.len) != c.hash)
				return bad(CQRS_ECORRUPT, why, whycap, "checksum mismatch in the chunk at "
					   "byte %llu (section %u)", (unsigned long long)pos, i);
			XXH3_64bits_update(&total, &c, sizeof c);
			pos += sizeof c + c.len;
			records += c.len / rec;
			if (c.len == 0)
				break;
		}
		if (s.kind != CQRS_SNAP_USER && records != s.count)
			return bad(CQRS_ECORRUPT, why, whycap, "section %u holds %llu records, says %llu",
				   i, (unsigned long long)records, (unsigned long long)s.count);
	}
	img->nsec = h->nsections;
	if (pos != end)
		return bad(CQRS_ECORRUPT, why, whycap, "%llu bytes where the trailer should be",
			   (unsigned long long)(size - pos));
	memcpy(&t, b + pos, sizeof t);
	if (t.magic != CQRS_SNAP_END_MAGIC || t.file_bytes != size || t.nsections != h->nsections)
		return bad(CQRS_ECORRUPT, why, whycap, "trailer damaged");
	if (t.total_hash != XXH3_64bits_digest(&total))
		return bad(CQRS_ECORRUPT, why, whycap, "total checksum mismatch");
	return 0;
}

int cqrs__snapshot_open(const char *path, cqrs__snap_image *img, char *why, size_t whycap)
{
	struct stat st;
	void *m;
	int fd, rc;

	memset(img, 0, sizeof *img);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bad(-errno, why, whycap, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st)) {
		rc = -errno;
		close(fd);
		return bad(rc, why, whycap, "cannot stat: %s", strerror(-rc));
	}
	img->size = (uint64_t)st.st_size;
	if (img->size < sizeof(cqrs__snap_header) + sizeof(cqrs__snap_trailer)) {
		close(fd);
		return bad(CQRS_ECORRUPT, why, whycap, "truncated: %llu bytes",
			   (unsigned long long)img->size);
	}
	/* MAP_POPULATE: read in one go, the verification walks it all */
	m = mmap(NULL, img->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	rc = m == MAP_FAILED ? -errno : 0;
	close(fd);
	if (rc)
		return bad(rc, why, whycap, "cannot map: %s", strerror(-rc));
	img->base = m;
	rc = verify(img, why, whycap);
	if (rc)
		cqrs__snapshot_close(img);
	return rc;
}

void cqrs__snapshot_close(cqrs__snap_image *img)
{
	if (img->base)
		munmap((void *)img->base, img->size);
	img->base = NULL;
}

/* ---- does it fit this engine ----------------------------------------------------- */

static const cqrs__snap_sec *find_sec(const cqrs__snap_image *img, uint32_t kind, const char *name)
{
	for (uint32_t i = 3; i < img->nsec; i++)
		if (img->sec[i].kind == kind && strcmp(img->sec[i].name, name) == 0)
			return &img->sec[i];
	return NULL;
}

int cqrs__snapshot_each_record(const cqrs__snap_image *img, const cqrs__snap_sec *s,
			       int (*fn)(void *arg, const uint8_t *rec), void *arg)
{
	uint64_t pos = s->off, rec = (uint64_t)s->keylen + s->value_size;

	for (;;) {
		cqrs__snap_chunk c;

		memcpy(&c, img->base + pos, sizeof c);
		if (c.len == 0)
			return 0;
		for (uint64_t o = 0; o < c.len; o += rec) {
			int rc = fn(arg, img->base + pos + sizeof c + o);
			if (rc)
				return rc;
		}
		pos += sizeof c + c.len;
	}
}

typedef struct schema_job {
	cqrs_engine *e;
	char *why;
	size_t whycap;
} schema_job;

static int schema_one(void *arg, const uint8_t *p)
{
	schema_job *j = arg;
	cqrs__snap_schema_rec r;
	const cqrs_schema *s;

	memcpy(&r, p, sizeof r);
	if ((r.kind != 1 && r.kind != 2) || r.type >= CQRS_MAX_TYPES)
		return bad(CQRS_EFORMAT, j->why, j->whycap, "schema table entry kind %u type %u",
			   r.kind, r.type);
	/* A type the snapshot has and the engine lacks now would leave its
	 * events' effects unexplained; one registered now and not then is new
	 * (nothing of it is in the history up to the snapshot): fine. */
	s = r.kind == 1 ? j->e->cmds[r.type].schema : j->e->events[r.type].schema;
	if (!s)
		return bad(CQRS_EFORMAT, j->why, j->whycap, "%s type %u is in the snapshot, not "
			   "registered now", r.kind == 1 ? "command" : "event", r.type);
	if (cqrs_schema_hash(s) != r.hash)
		return bad(CQRS_EFORMAT, j->why, j->whycap, "%s type %u (%s): schema hash differs "
			   "from the snapshot's", r.kind == 1 ? "command" : "event", r.type, s->name);
	return 0;
}

int cqrs__snapshot_fits(cqrs_engine *e, const cqrs__snap_image *img, char *why, size_t whycap)
{
	cqrs__snap *sn = e->snap;
	schema_job job = { .e = e, .why = why, .whycap = whycap };
	int rc;

	if (strcmp(img->hdr.engine, e->name) != 0)
		return bad(CQRS_EFORMAT, why, whycap, "written by engine %s, not %s", img->hdr.engine,
			   e->name);
	if (img->sec[0].value_size != sizeof(cqrs__snap_schema_rec) || img->sec[1].value_size != 16 ||
	    img->sec[2].value_size < 16 || img->sec[2].value_size % 16)
		return bad(CQRS_EFORMAT, why, whycap, "engine sections of another layout");
	if ((rc = cqrs__snapshot_each_record(img, &img->sec[0], schema_one, &job)) != 0)
		return rc;
	for (uint32_t i = 0; i < sn->nstores; i++) {
		const cqrs__snap_sec *s = find_sec(img, CQRS_SNAP_STORE, sn->stores[i].name);
		uint32_t keylen, value_size;

		cqrs__store_layout(sn->stores[i].store, &keylen, &value_size);
		if (!s)
			return bad(CQRS_EFORMAT, why, whycap, "store %s is not in the snapshot",
				   sn->stores[i].name);
		if (s->keylen != keylen || s->value_size != value_size)
			return bad(CQRS_EFORMAT, why, whycap, "store %s: layout changed (key %u, value "
				   "%u bytes in the snapshot; %u, %u registered)", sn->stores[i].name,
				   s->keylen, s->value_size, keylen, value_size);
	}
	for (uint32_t i = 0; i < sn->nusers; i++) {
		const cqrs__snap_sec *s = find_sec(img, CQRS_SNAP_USER, sn->users[i].name);

		if (!s)
			return bad(CQRS_EFORMAT, why, whycap, "callbacks %s are not in the snapshot",
				   sn->users[i].name);
		if (s->value_size != sn->users[i].version)
			return bad(CQRS_EFORMAT, why, whycap, "callbacks %s: version %u in the snapshot, "
				   "%u registered", sn->users[i].name, s->value_size, sn->users[i].version);
	}
	if (img->nsec != 3 + sn->nstores + sn->nusers)
		return bad(CQRS_EFORMAT, why, whycap, "the snapshot holds a store or callbacks not "
			   "registered now");
	return 0;
}

/* ---- loading ------------------------------------------------------------------------- */

static int load_version(void *arg, const uint8_t *p)
{
	cqrs_engine *e = arg;
	uint64_t r[2];

	memcpy(r, p, sizeof r);
	return cqrs__versions_set(e->versions, r[0], r[1]) ? -ENOMEM : 0;
}

typedef struct dedup_job {
	cqrs_engine *e;
	uint32_t window;
	uint64_t slots[];
} dedup_job;

static int load_client(void *arg, const uint8_t *p)
{
	dedup_job *j = arg;
	uint64_t head[2];

	memcpy(head, p, sizeof head);
	memcpy(j->slots, p + sizeof head, (size_t)j->window * 16); /* aligned copy */
	return cqrs__dedup_restore(j->e->dedup, head[0], head[1], j->slots, j->window);
}

typedef struct store_job {
	cqrs_store *s;
	uint32_t keylen, value_size;
} store_job;

static int load_store_rec(void *arg, const uint8_t *p)
{
	store_job *j = arg;
	uint8_t key[64];
	int created;
	void *v;

	memcpy(key, p, j->keylen);
	v = cqrs_store_upsert(j->s, key, &created);
	if (!v)
		return -ENOMEM;
	if (!created)
		return CQRS_ECORRUPT; /* a key twice */
	memcpy(v, p + j->keylen, j->value_size);
	return 0;
}

/* The read stream over a USER section. */
static void reader_init(cqrs_snapshot_io *io, const cqrs__snap_image *img, const cqrs__snap_sec *s)
{
	uint64_t pos = s->off;

	memset(io, 0, sizeof *io);
	io->mode = CQRS_SNAP_IO_READ;
	io->base = img->base;
	io->pos = s->off;
	for (;;) {
		cqrs__snap_chunk c;

		memcpy(&c, img->base + pos, sizeof c);
		io->remaining += c.len;
		pos += sizeof c + c.len;
		if (c.len == 0)
			break;
	}
}

int cqrs_snapshot_read(cqrs_snapshot_io *io, void *p, size_t n)
{
	uint8_t *out = p;

	if (!io || io->mode != CQRS_SNAP_IO_READ)
		return -EINVAL;
	if (n > io->remaining)
		return CQRS_ECORRUPT;
	while (n) {
		size_t take;

		if (io->left == 0) {
			cqrs__snap_chunk c;

			memcpy(&c, io->base + io->pos, sizeof c);
			io->p = io->base + io->pos + sizeof c;
			io->left = c.len;
			io->pos += sizeof c + c.len;
			continue; /* remaining > 0: a chunk with bytes follows */
		}
		take = n < io->left ? n : (size_t)io->left;
		memcpy(out, io->p, take);
		out += take;
		io->p += take;
		io->left -= take;
		io->remaining -= take;
		n -= take;
	}
	return 0;
}

uint64_t cqrs_snapshot_remaining(const cqrs_snapshot_io *io)
{
	return io && io->mode == CQRS_SNAP_IO_READ ? io->remaining : 0;
}

int cqrs__snapshot_load(cqrs_engine *e, const cqrs__snap_image *img)
{
	cqrs__snap *sn = e->snap;
	uint32_t window = (img->sec[2].value_size - 16) / 16;
	dedup_job *dj;
	int rc;

	for (uint32_t i = 0; i < sn->nstores; i++)
		if (cqrs_store_count(sn->stores[i].store))
			return cqrs__fail(-EINVAL, "snapshot: store %s is not empty at start",
					  sn->stores[i].name);
	rc = cqrs__snapshot_each_record(img, &img->sec[1], load_version, e);
	if (rc)
		return cqrs__fail(rc, "snapshot: no memory for the version map");
	dj = malloc(sizeof *dj + (size_t)window * 16);
	if (!dj)
		return cqrs__fail(-ENOMEM, "snapshot: out of memory");
	dj->e = e;
	dj->window = window;
	rc = cqrs__snapshot_each_record(img, &img->sec[2], load_client, dj);
	free(dj);
	if (rc)
		return cqrs__fail(rc, "snapshot: no memory for the idempotency windows");
	for (uint32_t i = 0; i < sn->nstores; i++) {
		const cqrs__snap_sec *s = find_sec(img, CQRS_SNAP_STORE, sn->stores[i].name);
		store_job j = { sn->stores[i].store, s->keylen, s->value_size };

		rc = cqrs__snapshot_each_record(img, s, load_store_rec, &j);
		if (rc)
			return cqrs__fail(rc, "snapshot: store %s: %s", sn->stores[i].name,
					  rc == CQRS_ECORRUPT ? "a key twice" : "out of memory");
	}
	for (uint32_t i = 0; i < sn->nusers; i++) {
		cqrs__snap_user *u = &sn->users[i];
		cqrs_snapshot_io io;

		reader_init(&io, img, find_sec(img, CQRS_SNAP_USER, u->name));
		rc = u->load(e->model, &io, u->arg);
		if (rc)
			return cqrs__fail(rc < 0 ? rc : CQRS_EFORMAT, "snapshot: the load callback of %s "
					  "failed (%d)", u->name, rc);
	}
	return 0;
}
