/*
 * engine/checkpoint_load.c - reading view checkpoints: their names, full
 * verification (engine/checkpoint_format.h, VALIDATION), the list journal
 * retention reads, the per-view folders, and restoring a projection's
 * views from them at start.
 *
 * Restore picks, for one projection, the newest seq S that every one of
 * its views has a checkpoint of; each is loaded into a new generation
 * created with the checkpoint's capacity, after its header, parameter
 * block and chunk table were checked and while every chunk read is
 * hashed. Any refusal (a bad checksum, another engine or view, a changed
 * row schema or index, a capacity below the configured one, a journal
 * that no longer holds S+1) is logged and the next older S is tried; the
 * generations made for a refused S are retired at once. Cold path: one
 * sequential read of each file, straight into the new segment.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/errors.h"
#include "core/schema_internal.h"
#include "engine/checkpoint.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/journal/journal.h"
#include "engine/projector.h"
#include "shm/segment.h"
#include "shm/view_writer.h"

#define CKPT_DIR "checkpoints"
#define CKPT_PREFIX "ckpt-"
#define CKPT_SUFFIX ".cqckpt"
#define CKPT_TMP ".tmp-"
#define LIST_MAX_FILES 4096u /* files considered per view folder */

const uint8_t cqrs__ckpt_zeros[CQRS_CKPT_CHUNK];

uint64_t cqrs__ckpt_zero_sum(size_t len)
{
	static _Atomic uint64_t full; /* the common length, computed once (0: not yet) */
	uint64_t h;

	if (len != CQRS_CKPT_CHUNK)
		return XXH3_64bits(cqrs__ckpt_zeros, len);
	/* relaxed: a cache of a pure function; any thread may fill it */
	h = atomic_load_explicit(&full, memory_order_relaxed);
	if (!h) {
		h = XXH3_64bits(cqrs__ckpt_zeros, len);
		atomic_store_explicit(&full, h, memory_order_relaxed);
	}
	return h;
}

int cqrs__checkpoint_path(char *out, size_t cap, const char *data_dir, const char *view,
			  uint64_t seq, int tmp)
{
	int n;

	if (view)
		n = snprintf(out, cap, "%s/" CKPT_DIR "/%s/%s" CKPT_PREFIX "%020llu" CKPT_SUFFIX, data_dir,
			     view, tmp ? CKPT_TMP : "", (unsigned long long)seq);
	else
		n = snprintf(out, cap, "%s/" CKPT_DIR, data_dir);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The seq of a final checkpoint name "ckpt-<20 digits>.cqckpt"; 0: not one. */
static uint64_t name_seq(const char *name)
{
	size_t pl = sizeof CKPT_PREFIX - 1, sl = sizeof CKPT_SUFFIX - 1;
	uint64_t seq = 0;

	if (strlen(name) != pl + 20 + sl || strncmp(name, CKPT_PREFIX, pl) ||
	    strcmp(name + pl + 20, CKPT_SUFFIX))
		return 0;
	for (size_t i = pl; i < pl + 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		seq = seq * 10 + (uint64_t)(name[i] - '0');
	}
	return seq;
}

static int why_set(char *why, size_t whylen, int code, const char *fmt, const char *detail)
{
	if (why && whylen)
		snprintf(why, whylen, fmt, detail ? detail : "");
	return code;
}

static int read_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t k = pread(fd, p, len, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return CQRS_ECORRUPT;
		p += k;
		len -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* Reads and checks the header block and the chunk table of an open file
 * (everything but the body): *table gets the table (malloc'd). */
static int check_head(int fd, cqrs_ckpt_hdr *hdr, uint64_t **table, char *why, size_t whylen)
{
	_Alignas(8) uint8_t block[CQRS_CKPT_HDR_SIZE];
	uint64_t sum, *t;
	struct stat st;
	int rc;

	*table = NULL;
	if (fstat(fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < CQRS_CKPT_HDR_SIZE)
		return why_set(why, whylen, CQRS_ECORRUPT, "shorter than its header%s", NULL);
	if ((rc = read_all(fd, block, sizeof block, 0)))
		return why_set(why, whylen, rc, "header unreadable%s", NULL);
	memcpy(hdr, block, sizeof *hdr);
	memcpy(&sum, block + CQRS_CKPT_HDR_SUM_OFF, 8);
	if (hdr->magic != CQRS_CKPT_MAGIC)
		return why_set(why, whylen, CQRS_EFORMAT, "not a view checkpoint (magic)%s", NULL);
	if (hdr->format != CQRS_CKPT_FORMAT || hdr->header_size != CQRS_CKPT_HDR_SIZE)
		return why_set(why, whylen, CQRS_EFORMAT, "format or header size unknown%s", NULL);
	if (XXH3_64bits(block, CQRS_CKPT_HDR_SUM_OFF) != sum)
		return why_set(why, whylen, CQRS_ECORRUPT, "header checksum mismatch%s", NULL);
	if (!memchr(hdr->engine, 0, sizeof hdr->engine) || !memchr(hdr->view, 0, sizeof hdr->view) ||
	    hdr->chunk_bytes != CQRS_CKPT_CHUNK || hdr->seg_bytes % 4096 || hdr->seg_bytes == 0 ||
	    hdr->seg_bytes > CQRS_SEG_MAX_SIZE ||
	    hdr->nchunks != (hdr->seg_bytes + hdr->chunk_bytes - 1) / hdr->chunk_bytes ||
	    hdr->table_off != hdr->header_size + hdr->seg_bytes || hdr->applied_seq == 0)
		return why_set(why, whylen, CQRS_ECORRUPT, "header sizes inconsistent%s", NULL);
	if ((uint64_t)st.st_size != hdr->table_off + 8 * hdr->nchunks)
		return why_set(why, whylen, CQRS_ECORRUPT, "truncated or extended (size)%s", NULL);
	t = malloc(8 * hdr->nchunks);
	if (!t)
		return -ENOMEM;
	if ((rc = read_all(fd, t, 8 * hdr->nchunks, hdr->table_off))) {
		free(t);
		return why_set(why, whylen, rc, "chunk table unreadable%s", NULL);
	}
	if (XXH3_64bits(t, 8 * hdr->nchunks) != hdr->total) {
		free(t);
		return why_set(why, whylen, CQRS_ECORRUPT, "chunk table checksum mismatch%s", NULL);
	}
	*table = t;
	return 0;
}

int cqrs__checkpoint_verify(const char *path, cqrs_ckpt_hdr *hdr, char *why, size_t whylen)
{
	uint64_t *table;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return why_set(why, whylen, -errno, "cannot open: %s", strerror(errno));
	rc = check_head(fd, hdr, &table, why, whylen);
	if (rc) {
		close(fd);
		return rc;
	}
	buf = malloc(CQRS_CKPT_CHUNK);
	if (!buf)
		rc = -ENOMEM;
	for (uint64_t c = 0; !rc && c < hdr->nchunks; c++) {
		uint64_t off = c * CQRS_CKPT_CHUNK;
		size_t len = hdr->seg_bytes - off < CQRS_CKPT_CHUNK ? hdr->seg_bytes - off : CQRS_CKPT_CHUNK;
		if (table[c] == cqrs__ckpt_zero_sum(len))
			continue; /* a hole: zeros, not read by restore either */
		if ((rc = read_all(fd, buf, len, hdr->header_size + off)))
			why_set(why, whylen, rc, "body unreadable%s", NULL);
		else if (XXH3_64bits(buf, len) != table[c])
			rc = why_set(why, whylen, CQRS_ECORRUPT, "chunk checksum mismatch%s", NULL);
	}
	free(buf);
	free(table);
	close(fd);
	return rc;
}

static int seq_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

int cqrs__checkpoint_seqs(const char *dir, uint64_t **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	uint64_t *s;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	s = malloc(LIST_MAX_FILES * sizeof *s);
	if (!s) {
		closedir(d);
		return -ENOMEM;
	}
	while ((ent = readdir(d)) && *n < LIST_MAX_FILES) {
		uint64_t q = name_seq(ent->d_name);
		if (q)
			s[(*n)++] = q;
	}
	closedir(d);
	qsort(s, *n, sizeof *s, seq_desc);
	*out = s;
	return 0;
}

static void info_put(struct cqrs__checkpoint_info *out, size_t cap, size_t *n,
		     const struct cqrs__checkpoint_info *one)
{
	if (*n < cap)
		out[*n] = *one;
	(*n)++;
}

int cqrs__checkpoint_list(const char *data_dir, struct cqrs__checkpoint_info *out, size_t cap,
			  size_t *n)
{
	char root[3072];
	struct dirent *ent;
	DIR *d;
	int rc = cqrs__checkpoint_path(root, sizeof root, data_dir, NULL, 0, 0);

	*n = 0;
	if (rc)
		return rc;
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((ent = readdir(d))) {
		struct cqrs__checkpoint_info one;
		char vdir[4096];
		uint64_t *seqs;
		size_t ns;
		int any = 0;

		if (!cqrs__name_valid(ent->d_name, CQRS_NAME_MAX))
			continue;
		if ((size_t)snprintf(vdir, sizeof vdir, "%s/%.31s", root, ent->d_name) >= sizeof vdir)
			continue;
		if ((rc = cqrs__checkpoint_seqs(vdir, &seqs, &ns)))
			break;
		for (size_t i = 0; i < ns; i++) {
			cqrs_ckpt_hdr h;
			struct stat st;
			memset(&one, 0, sizeof one);
			snprintf(one.view, sizeof one.view, "%.31s", ent->d_name);
			one.seq = seqs[i];
			if (cqrs__checkpoint_path(one.path, sizeof one.path, data_dir, ent->d_name,
						  seqs[i], 0))
				continue;
			if (stat(one.path, &st) == 0) {
				one.bytes = (uint64_t)st.st_size;
				one.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
			}
			if (cqrs__checkpoint_verify(one.path, &h, one.why, sizeof one.why) == 0) {
				if (strcmp(h.view, ent->d_name) || h.applied_seq != seqs[i])
					snprintf(one.why, sizeof one.why, "names view %s seq %llu", h.view,
						 (unsigned long long)h.applied_seq);
				else
					one.valid = any = 1;
			}
			info_put(out, cap, n, &one);
		}
		free(seqs);
		if (!any) {
			memset(&one, 0, sizeof one);
			snprintf(one.view, sizeof one.view, "%.31s", ent->d_name);
			snprintf(one.path, sizeof one.path, "%s", vdir);
			snprintf(one.why, sizeof one.why, "no valid checkpoint");
			info_put(out, cap, n, &one);
		}
	}
	closedir(d);
	return rc;
}

static int mkdir_one(const char *path)
{
	return mkdir(path, 0750) && errno != EEXIST ? -errno : 0;
}

int cqrs__checkpoint_dirs(cqrs_engine *e)
{
	char path[4096];
	int rc = cqrs__checkpoint_path(path, sizeof path, e->data_dir, NULL, 0, 0);

	if (!rc)
		rc = mkdir_one(path);
	for (uint32_t k = 0; !rc && k < e->nprojs; k++) {
		cqrs_proj *p = e->projs[k];
		for (uint32_t i = 0; !rc && i < p->def.nviews; i++) {
			struct dirent *ent;
			DIR *d;
			size_t n = (size_t)snprintf(path, sizeof path, "%s/" CKPT_DIR "/%s", e->data_dir,
						    p->def.views[i].name);
			if (n >= sizeof path)
				return -ENAMETOOLONG;
			if ((rc = mkdir_one(path)))
				break;
			d = opendir(path);
			if (!d)
				continue;
			/* a temporary is a checkpoint a crash interrupted */
			while ((ent = readdir(d)))
				if (!strncmp(ent->d_name, CKPT_TMP, sizeof CKPT_TMP - 1))
					(void)unlinkat(dirfd(d), ent->d_name, 0);
			closedir(d);
		}
	}
	if (rc)
		return cqrs__fail(rc, "checkpoint folder %s: %s", path, strerror(-rc));
	return 0;
}

void cqrs__checkpoint_event_types(const cqrs_engine *e, uint64_t types[4])
{
	memset(types, 0, 4 * sizeof types[0]);
	for (uint32_t t = 1; t < CQRS_MAX_TYPES; t++)
		if (e->event_schemas[t])
			types[t / 64] |= UINT64_C(1) << (t % 64);
}

uint64_t cqrs__checkpoint_events_hash(const cqrs_engine *e, const uint64_t types[4])
{
	uint64_t w[4 * CQRS_MAX_TYPES];
	size_t n = 0;

	/* the layouts and how older ones are read (engine/schema_check.h):
	 * the flags, the declared defaults, whether an upcaster is registered;
	 * of the types in the bitmap (one no longer registered hashes as
	 * absent: a mismatch) */
	_Static_assert(CQRS_MAX_TYPES <= 4 * 64, "event type bitmap");
	for (uint32_t t = 1; t < CQRS_MAX_TYPES; t++) {
		const event_type *et = &e->events[t];
		if (!(types[t / 64] >> (t % 64) & 1))
			continue;
		if (!e->event_schemas[t]) {
			w[n++] = t;
			w[n++] = UINT64_MAX; /* gone */
			continue;
		}
		w[n++] = t;
		w[n++] = cqrs_schema_hash(e->event_schemas[t]);
		w[n++] = et->flags | (uint64_t)(et->upcast != NULL) << 32;
		w[n++] = et->defaults ? XXH3_64bits(et->defaults, e->event_schemas[t]->size) : 0;
	}
	return XXH3_64bits(w, n * sizeof w[0]);
}

uint64_t cqrs__checkpoint_journal_first(cqrs_engine *e)
{
	cqrs_journal_extent x;

	if (cqrs__journal_extent(e->journal_dir, &x) == 0 && x.manifest && x.first_seq)
		return x.first_seq;
	return 1;
}

/* Loads the checkpoint at path into a new generation of pv (cfg as the
 * caller set it, capacity from the file). 0 with pv->w set, else the
 * refusal with why. */
static int load_view(cqrs_engine *e, proj_view *pv, const char *path, uint64_t seq, char *why,
		     size_t whylen)
{
	_Alignas(8) uint8_t params[CQRS_CKPT_PARAMS_END - CQRS_CKPT_PARAMS_OFF];
	_Alignas(8) uint8_t first[CQRS_CKPT_CHUNK];
	cqrs_vw_config cfg = pv->cfg;
	cqrs_ckpt_hdr h;
	uint64_t *table = NULL;
	uint8_t *base;
	size_t size;
	uint32_t epoch;
	cqrs_vw *w = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return why_set(why, whylen, -errno, "cannot open: %s", strerror(errno));
	rc = check_head(fd, &h, &table, why, whylen);
	if (rc)
		goto out;
	if (strcmp(h.engine, e->name) || strcmp(h.view, pv->def.name) || h.applied_seq != seq) {
		rc = why_set(why, whylen, CQRS_EFORMAT, "taken of engine %s", h.engine);
		goto out;
	}
	if (h.schema_hash != cqrs_schema_hash(pv->def.row)) {
		rc = why_set(why, whylen, CQRS_EFORMAT, "row schema changed%s", NULL);
		goto out;
	}
	if (h.events_hash != cqrs__checkpoint_events_hash(e, h.events_types)) {
		rc = why_set(why, whylen, CQRS_EFORMAT, "event layouts changed since%s", NULL);
		goto out;
	}
	if (h.capacity < pv->def.capacity || h.capacity > CQRS_VIEW_MAX_ROWS) {
		rc = why_set(why, whylen, CQRS_EFORMAT, "capacity below the configured one%s", NULL);
		goto out;
	}
	if ((rc = read_all(fd, params, sizeof params, h.header_size + CQRS_CKPT_PARAMS_OFF))) {
		why_set(why, whylen, rc, "parameters unreadable%s", NULL);
		goto out;
	}
	cfg.capacity = h.capacity;
	rc = cqrs__proj_view_create(e, pv->def.name, &cfg, &w);
	if (rc) {
		why_set(why, whylen, rc, "cannot create a generation: %s", cqrs_last_error());
		goto out;
	}
	cqrs__vw_mapping(w, &base, &size, &epoch);
	if (size != h.seg_bytes || memcmp(base + CQRS_CKPT_PARAMS_OFF, params, sizeof params)) {
		rc = why_set(why, whylen, CQRS_EFORMAT, "indexes or layout changed%s", NULL);
		goto out;
	}
	for (uint64_t c = 0; c < h.nchunks; c++) {
		uint64_t off = c * CQRS_CKPT_CHUNK;
		size_t len = size - off < CQRS_CKPT_CHUNK ? size - off : CQRS_CKPT_CHUNK;
		/* chunk 0 holds the new segment's own header and live line:
		 * read aside, keep only its mutable lines */
		uint8_t *dst = c == 0 ? first : base + off;
		if (c > 0 && table[c] == cqrs__ckpt_zero_sum(len))
			continue; /* zeros: the new segment has them already */
		if ((rc = read_all(fd, dst, len, h.header_size + off))) {
			why_set(why, whylen, rc, "body unreadable%s", NULL);
			goto out;
		}
		if (XXH3_64bits(dst, len) != table[c]) {
			rc = why_set(why, whylen, CQRS_ECORRUPT, "chunk checksum mismatch%s", NULL);
			goto out;
		}
		if (c == 0) {
			/* the bytes after the header lines are laid out by the
			 * segment format that wrote them: another format (the
			 * ordered index's layout, say) is not copied in */
			const cqrs_seg_hdr *was = (const cqrs_seg_hdr *)first;
			const cqrs_seg_hdr *now = (const cqrs_seg_hdr *)base;
			if (was->magic != now->magic || was->format != now->format ||
			    was->kind != now->kind) {
				rc = why_set(why, whylen, CQRS_EFORMAT, "written by another segment format%s", NULL);
				goto out;
			}
			memcpy(base + CQRS_CKPT_BODY_COPY_OFF, first + CQRS_CKPT_BODY_COPY_OFF,
			       len - CQRS_CKPT_BODY_COPY_OFF);
		}
	}
	rc = cqrs__vw_restored(w, h.epoch);
	if (!rc && cqrs__vw_applied_seq(w) != seq)
		rc = CQRS_ECORRUPT;
	if (rc) {
		why_set(why, whylen, rc, "its rows are inconsistent%s", NULL);
		goto out;
	}
	pv->cfg = cfg;
	pv->def.capacity = cfg.capacity;
	pv->w = w;
	w = NULL;
out:
	if (w) {
		cqrs__vw_retire(w);
		cqrs__vw_close(w);
	}
	free(table);
	close(fd);
	return rc;
}

int cqrs__checkpoint_restore(cqrs_engine *e, cqrs_proj *p, uint64_t last_seq, uint64_t *resume)
{
	char dir[4096], path[4096], why[160];
	uint64_t first = 0, *seqs;
	size_t ns;
	int rc;

	if (!e->ckpt)
		return 0;
	snprintf(dir, sizeof dir, "%s/" CKPT_DIR "/%s", e->data_dir, p->views[0]->def.name);
	if ((rc = cqrs__checkpoint_seqs(dir, &seqs, &ns)))
		return 0;
	for (size_t k = 0; k < ns; k++) {
		uint64_t s = seqs[k];
		uint32_t i;
		if (s > last_seq) {
			/* rows of events the journal does not have (a power cut under
			 * durability none or interval, a repair, a journal from a
			 * backup): put aside, so that no later start takes them for
			 * the history the journal goes on to write */
			for (uint32_t i = 0; i < p->def.nviews; i++) {
				char aside[4200];
				if (cqrs__checkpoint_path(path, sizeof path, e->data_dir,
							  p->views[i]->def.name, s, 0))
					continue;
				snprintf(aside, sizeof aside, "%s.beyond-journal", path);
				if (rename(path, aside) != 0 && errno != ENOENT) {
					free(seqs);
					return cqrs__fail(-errno, "view %s: checkpoint %s is past the "
							  "journal's end (%llu) and cannot be put aside: %s",
							  p->views[i]->def.name, path,
							  (unsigned long long)last_seq, strerror(errno));
				}
			}
			cqrs__log(e, CQRS_LOG_WARN, "view %s: checkpoint at seq %llu is past the journal's "
				  "end (%llu): put aside (.beyond-journal)", p->views[0]->def.name,
				  (unsigned long long)s, (unsigned long long)last_seq);
			continue;
		}
		if (!first)
			first = cqrs__checkpoint_journal_first(e);
		if (s + 1 < first) {
			cqrs__log(e, CQRS_LOG_WARN, "view %s: checkpoint at seq %llu needs seqs from %llu, "
				  "the journal starts at %llu: not used", p->views[0]->def.name,
				  (unsigned long long)s, (unsigned long long)s + 1, (unsigned long long)first);
			continue;
		}
		for (i = 0; i < p->def.nviews; i++) {
			proj_view *pv = p->views[i];
			if (cqrs__checkpoint_path(path, sizeof path, e->data_dir, pv->def.name, s, 0)) {
				rc = -ENAMETOOLONG;
				break;
			}
			if (i > 0 && access(path, F_OK))
				break; /* this projection's other views have none at s */
			why[0] = 0;
			rc = load_view(e, pv, path, s, why, sizeof why);
			if (rc) {
				cqrs__log(e, CQRS_LOG_WARN, "view %s: checkpoint %s not usable (%s): trying an "
					  "older one", pv->def.name, path, why);
				break;
			}
		}
		if (i == p->def.nviews) {
			free(seqs);
			*resume = s;
			CTR_ADD(e->ctr, ckpt_restored, 1);
			CTR_SET(e->ctr, ckpt_seq[p->index], s);
			p->ckpt_seq = s;
			cqrs__log(e, CQRS_LOG_INFO, "projection %s: restored from its checkpoint at seq %llu "
				  "(the journal's tail follows)", p->def.name, (unsigned long long)s);
			return 1;
		}
		while (i-- > 0) { /* the views loaded at s go: an older s is tried */
			cqrs__vw_retire(p->views[i]->w);
			cqrs__vw_close(p->views[i]->w);
			p->views[i]->w = NULL;
		}
	}
	free(seqs);
	return 0;
}
