/*
 * tests/unit/test_journal_util.h - helpers shared by the journal tests:
 * two event schemas, deterministic payloads (derived from the seq, so any
 * recovered record can be checked against what was submitted), a
 * durable-callback collector that checks order and framing, appenders that
 * handle -EAGAIN, and a reader that checks a directory is a gapless,
 * correct prefix. Header-only (static functions) so each test program
 * stays one file.
 */
#ifndef CQRS_TEST_JOURNAL_UTIL_H
#define CQRS_TEST_JOURNAL_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cqrs_schema.h"
#include "engine/journal/journal.h"
#include "engine/journal/fault.h"
#include "engine/journal/format.h"
#include "tests/lib/testutil.h"

#define EV64_FIELDS(F)              \
	F(u64, seq_copy)            \
	F(u64, aggregate)           \
	F(bytes, fill, 48)
CQRS_RECORD(jt_ev64, "Ev64", EV64_FIELDS)

#define EV256_FIELDS(F)             \
	F(u64, seq_copy)            \
	F(i64, amount)              \
	F(str, note, 48)            \
	F(bytes, fill, 192)
CQRS_RECORD(jt_ev256, "Ev256", EV256_FIELDS)

enum { JT_EV64 = 0, JT_EV256 = 1, JT_RAW = 2, JT_NTYPES = 3 };

static inline int jt_scaled(int n)
{
	const char *s = getenv("CQRS_SAN");
	return s && *s ? (n / 8 > 0 ? n / 8 : 1) : n;
}

/* The type and payload of seq are functions of seq alone. */
static inline uint16_t jt_type_of(uint64_t seq)
{
	return seq % 5 == 0 ? JT_EV256 : JT_EV64;
}

static inline uint32_t jt_size_of(uint16_t type)
{
	return type == JT_EV256 ? (uint32_t)sizeof(jt_ev256) : (uint32_t)sizeof(jt_ev64);
}

static inline void jt_fill(uint64_t seq, void *p, uint32_t size)
{
	uint8_t *b = p;
	uint64_t x = seq * 0x9e3779b97f4a7c15ull;

	for (uint32_t i = 0; i < size; i++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		b[i] = (uint8_t)(x >> 56);
	}
	memcpy(b, &seq, 8);
	if (jt_type_of(seq) == JT_EV256)
		memset(b + 16, 'a' + (int)(seq % 26), 47), b[63] = 0;
}

static inline int jt_payload_ok(const cqrs_jrec *r)
{
	uint8_t want[512];

	if (r->type != jt_type_of(r->seq) || r->size != jt_size_of(r->type))
		return 0;
	jt_fill(r->seq, want, r->size);
	return memcmp(want, cqrs__jrec_payload(r), r->size) == 0 && r->aggregate_id == r->seq % 7 &&
	       r->client_seq == r->seq;
}

static const cqrs_schema *jt_schemas[JT_NTYPES];

static inline void jt_config(cqrs_journal_config *c, const char *dir, enum cqrs_durability_mode mode)
{
	jt_schemas[JT_EV64] = jt_ev64_schema();
	jt_schemas[JT_EV256] = jt_ev256_schema();
	jt_schemas[JT_RAW] = NULL;
	memset(c, 0, sizeof *c);
	c->dir = dir;
	c->engine = "jtest";
	c->segment_size = 1u << 20;
	c->durability = mode;
	c->interval_ms = 2;
	c->schemas = jt_schemas;
	c->nschemas = JT_NTYPES;
	c->batch_bytes = 64u << 10;
	c->queue_depth = 4;
}

/* ---- durable collector ----------------------------------------------------------- */

typedef struct jt_acks {
	uint64_t last;        /* highest seq reported durable */
	uint64_t batches;
	int bad;              /* order, framing or content problems seen */
} jt_acks;

static inline void jt_on_durable(void *arg, uint64_t first, uint64_t last, const void *records,
				 size_t bytes)
{
	jt_acks *a = arg;
	const cqrs_jrec *r = records, *end = (const cqrs_jrec *)((const uint8_t *)records + bytes);
	uint64_t s = first;

	if (first != a->last + 1 || last < first)
		a->bad++;
	for (; r < end; r = cqrs__jrec_next(r), s++)
		if (r->seq != s || cqrs__jrec_checksum(r) != r->checksum || !jt_payload_ok(r))
			a->bad++;
	if (s != last + 1 || r != end)
		a->bad++;
	a->last = last;
	a->batches++;
}

/* ---- appending ---------------------------------------------------------------------- */

/* Appends event seq (the journal's next seq) with CMD_END per `end`.
 * Waits while every buffer is in flight. Returns 0 or the error. */
static inline int jt_append_one(cqrs_journal *j, int end)
{
	uint64_t seq = cqrs__journal_next_seq(j);
	cqrs_journal_event ev = {
		.type = jt_type_of(seq),
		.flags = end ? CQRS_JREC_CMD_END : 0,
		.timestamp_ns = 1700000000000000000ll + (int64_t)seq,
		.aggregate_id = seq % 7,
		.aggregate_version = seq / 7 + 1,
		.client_id = 42,
		.client_seq = seq,
	};
	void *p;
	int rc;

	for (;;) {
		rc = cqrs__journal_claim(j, &ev, jt_size_of(ev.type), &p);
		if (rc != -EAGAIN)
			break;
		rc = cqrs__journal_wait(j, 1000000000u);
		if (rc < 0)
			return rc;
	}
	if (rc)
		return rc;
	jt_fill(seq, p, jt_size_of(ev.type));
	return cqrs__journal_commit(j) == seq ? 0 : -EPROTO;
}

/* Appends n events in command groups of 1..maxgroup events, flushing every
 * flush_every groups (0: never explicitly). *submitted gets the last seq
 * of the last complete group. */
static inline int jt_append(cqrs_journal *j, int n, int maxgroup, int flush_every,
			    uint64_t *submitted)
{
	int groups = 0;

	for (int i = 0; i < n;) {
		int g = 1 + (int)((cqrs__journal_next_seq(j) * 7) % (uint64_t)maxgroup);
		if (g > n - i)
			g = n - i;
		for (int k = 0; k < g; k++) {
			int rc = jt_append_one(j, k == g - 1);
			if (rc) {
				cqrs__journal_abandon(j);
				return rc;
			}
		}
		i += g;
		if (submitted)
			*submitted = cqrs__journal_next_seq(j) - 1;
		if (flush_every && ++groups % flush_every == 0) {
			int rc = cqrs__journal_flush(j);
			if (rc)
				return rc;
			rc = cqrs__journal_poll(j);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Waits until everything appended is reported (or an error). */
static inline int jt_sync(cqrs_journal *j)
{
	while (cqrs__journal_durable_seq(j) + 1 < cqrs__journal_next_seq(j)) {
		int rc = cqrs__journal_wait(j, 2000000000u);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- reading back --------------------------------------------------------------------- */

/* Iterates dir from seq 1: every record must have the next seq (from 1)
 * and its expected content. Returns the last seq (0 if none) or a
 * negative error; *torn (optional) says whether the end was torn. */
static inline int64_t jt_read_all(const char *dir, int *torn)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	cqrs_journal_tail t;
	uint64_t expect = 1;
	int rc = cqrs__journal_iter_open(&it, dir, 1);

	if (rc)
		return rc;
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1) {
		if (r->seq != expect || !jt_payload_ok(r)) {
			cqrs__journal_iter_close(it);
			return -EPROTO;
		}
		expect++;
	}
	cqrs__journal_iter_tail(it, &t);
	cqrs__journal_iter_close(it);
	if (rc < 0)
		return rc;
	if (torn)
		*torn = t.end == CQRS_JOURNAL_END_TORN;
	if (t.next_seq != expect)
		return -EPROTO;
	return (int64_t)(expect - 1);
}

static inline int jt_count_suffix(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t sl = strlen(suffix);
	int n = 0;

	while (d && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l >= sl && !strcmp(e->d_name + l - sl, suffix))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static inline int jt_read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	fstat(fd, &st);
	*len = (size_t)st.st_size;
	*buf = malloc(*len ? *len : 1);
	if (pread(fd, *buf, *len, 0) != (ssize_t)*len) {
		close(fd);
		free(*buf);
		return -EIO;
	}
	close(fd);
	return 0;
}

static inline int jt_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int ok;

	if (fd < 0)
		return -errno;
	ok = pwrite(fd, buf, len, 0) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -EIO;
}

static inline void jt_path(char *buf, size_t cap, const char *dir, const char *name)
{
	snprintf(buf, cap, "%s/%s", dir, name);
}

/* Path of the n-th segment (0-based; -1 = last) of dir. */
static inline int jt_segment(const char *dir, int n, char *buf, size_t cap)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	uint64_t *segs;
	int cnt;

	if (dfd < 0)
		return -errno;
	cnt = cqrs__jseg_list(dfd, &segs);
	close(dfd);
	if (cnt <= 0)
		return -ENOENT;
	if (n < 0)
		n = cnt + n;
	if (n < 0 || n >= cnt) {
		free(segs);
		return -ENOENT;
	}
	char name[32];
	cqrs__jseg_name(name, sizeof name, segs[n]);
	jt_path(buf, cap, dir, name);
	free(segs);
	return cnt;
}

#endif
