/*
 * tests/fuzz/fuzz_journal_segment.c - fuzz target for the journal's segment
 * and record reader. Input: one control byte, then a segment image.
 * Control bit 0 recomputes the header checksum, bit 1 the checksums of the
 * records along the chain, so mutations reach the seq-chain, stale-record,
 * synced-hint, in-sequence and command-group logic instead of dying at a
 * checksum; bit 2 also reads the image as a journal manifest (checksum
 * recomputed when bit 0 is set) and, in the temp folder beside the
 * segment, runs the extent checks (predecessor links, manifest) on it.
 *
 * The image goes through the header check, schema decoding, the whole
 * segment scan (from the header, and from offset 0 as bare records) on an
 * exact-size heap copy (ASan sees any overread), then through the file
 * iterator (mmap) in a private temp folder. Invariants: nothing crashes or
 * reads out of bounds; every scan result lies inside the image; every
 * record the iterator returns lies inside the file and has a valid checksum.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/journal/journal.h"
#include "engine/journal/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

static char tmpdir[256];

static void cleanup(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char p[600];
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

static void fix_header(uint8_t *img, size_t len)
{
	jseg_header h;
	XXH3_state_t st;

	if (len < JSEG_FIXED)
		return;
	memcpy(&h, img, sizeof h);
	if (h.schema_bytes > len - JSEG_FIXED)
		return;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, img, offsetof(jseg_header, checksum));
	XXH3_64bits_update(&st, img + JSEG_FIXED, h.schema_bytes);
	h.checksum = XXH3_64bits_digest(&st);
	memcpy(img + offsetof(jseg_header, checksum), &h.checksum, 8);
}

static void fix_records(uint8_t *img, size_t len, size_t off)
{
	while (off + CQRS_JREC_HEADER <= len) {
		cqrs_jrec *r = (cqrs_jrec *)(img + off);
		if (r->size > JREC_MAX_PAYLOAD || r->size > len - off - CQRS_JREC_HEADER)
			return;
		r->checksum = cqrs__jrec_checksum(r);
		off += cqrs__jrec_span(r);
	}
}

static void check_manifest(const uint8_t *img, size_t len, int fix)
{
	uint8_t m[JMAN_SIZE];
	jmanifest out;

	(void)cqrs__jman_check(img, len, &out); /* any length: never reads past it */
	if (len < JMAN_SIZE)
		return;
	memcpy(m, img, JMAN_SIZE);
	if (fix) {
		uint64_t h = XXH3_64bits(m, offsetof(jmanifest, checksum));
		memcpy(m + offsetof(jmanifest, checksum), &h, 8);
	}
	if (cqrs__jman_check(m, JMAN_SIZE, &out) == 0 &&
	    (out.first_seq == 0 || out.last_segment < out.first_seq || out.durable_seq + 1 < out.last_segment))
		abort();
}

static void check_scan(const uint8_t *img, size_t len, size_t from, uint64_t seq)
{
	jseg_scan s;

	cqrs__jseg_scan(img, len, from, seq, &s);
	if (s.end < from || s.end > len || s.tail.nz_end > len ||
	    (s.tail.kind == JTAIL_TORN && s.tail.nz_end <= s.end))
		abort();
}

static void iterate_file(const uint8_t *img, size_t len, uint64_t first_seq, const uint8_t *man)
{
	char path[600], name[32];
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	int fd, n = 0;

	if (!tmpdir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(tmpdir, sizeof tmpdir, "%s/cqrs_fuzzj.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(tmpdir)) {
			tmpdir[0] = 0;
			return;
		}
		atexit(cleanup);
	}
	cqrs__jseg_name(name, sizeof name, first_seq);
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	if (write(fd, img, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return;
	}
	close(fd);
	if (man) {
		char mp[600];
		snprintf(mp, sizeof mp, "%s/" JMAN_NAME, tmpdir);
		fd = open(mp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			if (write(fd, man, JMAN_SIZE) == (ssize_t)JMAN_SIZE) {
				int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY);
				jextent x;
				enum jman_state st;
				if (dfd >= 0 && cqrs__jextent_load(dfd, tmpdir, NULL, &x) == 0) {
					(void)cqrs__jextent_check(&x, tmpdir, &st);
					(void)cqrs__jextent_check_end(&x, tmpdir, first_seq, name, 0);
					cqrs__jextent_free(&x);
				}
				if (dfd >= 0)
					close(dfd);
			}
			close(fd);
			unlink(mp);
		}
	}
	if (cqrs__journal_iter_open(&it, tmpdir, 0) == 0) {
		while (n++ < 100000 && cqrs__journal_iter_next(it, &r) == 1) {
			cqrs_journal_segment_info si;
			uint64_t off;
			cqrs__journal_iter_where(it, &si, &off);
			if (off + cqrs__jrec_span(r) > si.file_size || cqrs__jrec_checksum(r) != r->checksum)
				abort();
			(void)cqrs__journal_iter_schema(it, r->type);
		}
		cqrs__journal_iter_close(it);
	}
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jseg_header h;
	uint8_t *img;
	size_t len;
	int ok;

	if (size < 1)
		return 0;
	len = size - 1;
	img = malloc(len ? len : 1); /* exact size: ASan sees overreads */
	if (!img)
		return 0;
	memcpy(img, data + 1, len);
	if (data[0] & 1)
		fix_header(img, len);
	ok = cqrs__jseg_header_check(img, len, &h) == 0;
	if (data[0] & 2)
		fix_records(img, len, ok ? h.header_size : 0);
	if (ok) {
		cqrs_schema s;
		for (uint32_t t = 0; t < h.ntypes && t < 64; t++)
			(void)cqrs__jseg_schema(img, len, &h, t, &s);
		check_scan(img, len, h.header_size, h.first_seq);
		/* bit 2: the image's tail (its last 128 bytes) is the manifest */
		iterate_file(img, len, h.first_seq,
			     (data[0] & 4) && len >= JMAN_SIZE ? img + len - JMAN_SIZE : NULL);
	}
	if (data[0] & 4)
		check_manifest(img, len, data[0] & 1);
	check_scan(img, len & ~(size_t)7, 0, 1);
	free(img);
	return 0;
}
