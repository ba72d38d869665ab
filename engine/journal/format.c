/*
 * engine/journal/format.c - the journal's on-disk format: segment headers,
 * record framing, the manifest, the scan that tells a torn tail from
 * corruption. (The manifest's code is in manifest.c, recovery's in
 * recover.c, the operator's repair in repair.c.)
 *
 * THE JOURNAL DIRECTORY
 *
 *   DIR/00000000000000000001.seg    segments, named by their first seq
 *   DIR/00000000000000412093.seg    (20 digits: listing order = log order)
 *   DIR/MANIFEST                    the journal's extent (below)
 *   DIR/MANIFEST.tmp                a manifest being written (ignored)
 *   DIR/next.prealloc               the next segment, preallocated ahead
 *   DIR/LOCK                        flock()ed by the one writer (and repair)
 *   DIR/<segment>.<offset>.torn     bytes recovery cut from a torn tail
 *   DIR/<segment>.<offset>.cut      bytes `cqrs journal repair` cut
 *   DIR/<segment>.cut               a whole segment repair moved aside
 *
 * SEGMENT FILE
 *
 *   Every segment is created at its full size with fallocate() (64 MiB by
 *   default), so appends never change the file size (fdatasync then writes
 *   no inode metadata) and a crash leaves zeros, never garbage, after the
 *   last byte written. Little-endian, host layout:
 *
 *     off  size  field
 *       0     8  magic "CQRSJRNL"
 *       8     4  format version (2; 1 is still read; changes with any
 *                layout change)
 *      12     4  header size H: bytes before the first record, x 4096
 *      16     8  first seq (equal to the seq in the file name)
 *      24     8  creation time, ns since the epoch
 *      32     8  segment size at creation
 *      40     4  ntypes: event type ids 0..ntypes-1 described below
 *      44     4  schema area bytes S
 *      48     4  record header size (72)
 *      52     4  flags (0)
 *      56    32  engine name, NUL padded
 *      88     8  version 2: first seq of the previous segment, 0 for the
 *                journal's first (version 1: zero, meaning unknown)
 *      96    24  reserved, zero
 *     120     8  XXH3-64 of bytes [0,120) followed by the schema area
 *     128     S  schema area: per type id, u32 blob length L (0 = none),
 *                u32 zero, the cqrs_schema_encode() blob, zeros to 8
 *     ...        zeros up to H
 *       H        records, back to back, each 8-byte aligned
 *     ...        zeros (preallocated space) up to the file size
 *
 *   The predecessor link makes the chain of segments checkable from the
 *   headers alone: a segment deleted at the start or in the middle is
 *   named by the segment after it.
 *
 * RECORD (all offsets relative to the record, which starts 8-aligned)
 *
 *       0     8  checksum: XXH3-64 of bytes [8, 72 + size)
 *       8     4  size: payload bytes (<= 65536)
 *      12     2  event type id
 *      14     2  flags: 0x1 = CMD_END, last event of its command
 *      16     8  seq: global, gapless, starts at 1
 *      24     8  timestamp, ns since the epoch
 *      32     8  aggregate id
 *      40     8  aggregate version
 *      48     8  client id (0 = none)   } the command's idempotency key, so
 *      56     8  client seq             } the engine rebuilds its dedup window
 *      64     8  synced_seq: every seq <= this was safe from the crashes the
 *                mode is meant to survive when this record was committed:
 *                on stable storage (fdatasync completed; batch and
 *                interval), or written to the page cache (write completed,
 *                so a process crash cannot lose it; none)
 *      72  size  payload: the event's fixed-layout record (schema of type)
 *     ...        zero padding to a multiple of 8 (not checksummed)
 *
 * MANIFEST (128 bytes, little-endian)
 *
 *       0     8  magic "CQRSJMAN"
 *       8     4  format version (1)
 *      12     4  size (128)
 *      16    32  engine name, NUL padded
 *      48     8  first seq of the journal's first segment
 *      56     8  first seq of the newest segment when it was written
 *      64     8  durable seq D: every seq <= D is in the journal
 *      72     8  time written, ns since the epoch
 *      80     4  durability mode of the writer
 *      84     4  why: 1 create, 2 roll, 3 close, 4 open, 5 repair, 6 sync,
 *                7 collect
 *      88     8  collected seq C: retention removed (or is removing) every
 *                segment before seq C on purpose; C equals the first seq
 *                (0: nothing was ever collected)
 *      96    24  reserved, zero
 *     120     8  XXH3-64 of bytes [0,120)
 *
 *   It is replaced whole: written to MANIFEST.tmp, fdatasynced, renamed,
 *   directory fsynced, so it is the old one or the new one, never torn.
 *   Written on cold paths only: at open (after recovery: D = the last
 *   seq recovered, which recovery fdatasynced), after each segment roll
 *   (the newest segment is the new one, D = its first seq - 1), at a clean
 *   close (after the final fdatasync: D = the last seq), by repair, and in
 *   `interval` mode by the fsync thread at most once a second, after an
 *   fdatasync (D = what that fdatasync covered; off the command thread).
 *   What it proves, per mode:
 *     batch, interval: D was on stable storage when the manifest was
 *       written (a roll fdatasyncs the full segment first), and so was the
 *       newest segment's name. After any crash, power cuts included, every
 *       segment from the first to the newest it names exists, and the log
 *       reaches D.
 *     none: the same against a process crash. A roll does not fdatasync
 *       data in `none` mode, so after a power cut the manifest may name
 *       more than the disk kept: recovery then refuses (a missing or short
 *       tail), as it refuses a torn segment that is not the last; the
 *       operator may accept the loss with `cqrs journal repair`.
 *   The manifest is not updated per batch (that would cost an fsync and a
 *   rename per batch, on the command thread in `batch` mode): what was
 *   written after the last roll/open/close (in `interval` mode: the last
 *   second) is proven only by the records themselves and by the engine's
 *   other witnesses (views' applied seqs: cqrs__journal_check_seen).
 *
 *   A COLLECTED PREFIX (journal retention: engine/journal/retention.c).
 *   Retention removes sealed segments from the start of the journal. It
 *   first replaces the manifest with first seq F and collected seq C = F
 *   (F being the first seq of the first segment kept), fsynced, and only
 *   then removes, moves or hands over the older files, oldest first. So
 *   after a crash in the middle the manifest already says where the
 *   journal starts: segments before C still in the directory are
 *   leftovers (ignored by recovery, the iterator, verify and repair; the
 *   next collection finishes them), and the segment at F may name a
 *   predecessor that is gone. A first segment that names a missing
 *   predecessor while the manifest records no collection up to it is
 *   still a lost segment (CQRS_ECORRUPT), as is a journal whose first
 *   segment lies after F.
 *
 *   No manifest: with no segment it is a new journal; with segments of
 *   format version 1 only, a journal from before manifests: recovery
 *   writes one from the segments (a warning). Beside a version 2 segment
 *   it was deleted (the writer writes one before its first append): open
 *   refuses, unless the journal is one empty segment (creation was
 *   interrupted), because a lost newest segment could not be told from a
 *   clean end; `cqrs journal repair` rebuilds it. A manifest that does not
 *   check (checksum, sizes) is refused the same way.
 *
 * COMMIT RULE (writer)
 *
 *   Records are appended to a batch buffer; a batch is one write at the end
 *   of the current segment. In `batch` mode an fdatasync follows it (linked
 *   to the io_uring write, or submitted once an inline pwritev returned) and
 *   the batch is reported durable only when that fdatasync completed, and
 *   only after every earlier batch was reported. A command's events (a
 *   group ending with CMD_END) never span batches or segments. Segment
 *   roll: drain the batches in flight, fdatasync the old segment (batch and
 *   interval modes; `none` never fdatasyncs data), write and fdatasync the
 *   new header into the preallocated spare, rename it to its seq name, fsync
 *   the directory, then replace the manifest; only then does a record go
 *   into the new segment. So a segment that is not the last is complete
 *   (on stable storage in batch/interval mode, in the page cache at least
 *   in `none`), and every *.seg file has a valid header.
 *
 * WHAT A CRASH CAN LEAVE
 *
 *   Bytes the writer writes are never rewritten with other contents
 *   (recovery zeroes what it cuts, and fdatasyncs that, before appending
 *   there again), and unwritten space reads as zeros. So after a crash a
 *   byte of the log is either what was written or zero, and zeros appear
 *   only where a write had not completed (process crash: the batches in
 *   flight, which may complete in any order, or partly) or had not reached
 *   stable storage (power cut: any unsynced page, in any order). A later
 *   record that survived while an earlier one did not is therefore
 *   possible only if, when the later one was committed, the earlier one was
 *   not yet safe for the mode; its synced_seq then lies below the earlier
 *   seq. A bit flip, a zeroed range or a foreign write has no such excuse.
 *
 * RECOVERY (opening for append), and what the iterator checks
 *
 *   Every segment header must be valid and name the engine; first seqs
 *   increase; each version 2 header's predecessor is the segment listed
 *   before it (the first's is 0, or anything after a collected prefix:
 *   above). With a manifest, the first segment is
 *   the journal's first and the newest segment it names exists (newer
 *   ones may follow: a crash between a roll and its manifest). Any
 *   missing segment is CQRS_ECORRUPT naming the file and its first seq.
 *   The last two segments are scanned from H, one command group at a
 *   time: each record must have a valid checksum and the next seq. Where
 *   that chain stops (at offset X, expecting seq E, X being the start of
 *   the group that did not complete):
 *
 *     - a record with a valid checksum but another seq at a chain position
 *       is a seq gap (seq > E) or a stale/foreign record (seq < E):
 *       CQRS_ECORRUPT;
 *     - otherwise the bytes [X, end of file) are classified: all zero means
 *       a clean end. Else every 8-aligned offset is tried for a
 *       checksum-valid record R at offset Y:
 *         R.seq < E             a stale/foreign leftover: CQRS_ECORRUPT;
 *         R.synced_seq >= E     R was committed after seq E was safe for
 *                               the mode (above), so a crash the mode
 *                               survives cannot have damaged E:
 *                               CQRS_ECORRUPT, in every mode (in `none`
 *                               mode a power cut can: repair, as above);
 *         not in sequence       seqs E..R.seq-1 cannot fill [X, Y) (each
 *                               record takes 72..65608 bytes):
 *                               CQRS_ECORRUPT;
 *       if none of these, everything after X was in flight or unsynced when
 *       the last record was committed: a torn tail, possibly with holes.
 *       In the last segment it is copied to <segment>.<X>.torn (fsynced,
 *       directory fsynced), zeroed in place (so no stale record can survive
 *       into reused space), fdatasynced, and appends resume at X with seq
 *       E. In any other segment a torn or non-zero tail is CQRS_ECORRUPT.
 *     - the next segment's first seq must equal E (else a seq gap);
 *     - the log must reach the manifest's durable seq D (E > D), checked
 *       before anything is cut: a zeroed or truncated durable tail is
 *       CQRS_ECORRUPT.
 *
 *   Error messages name the segment file, the byte offset and the seq.
 *   The ambiguity every log has remains, narrowed to the batches in flight
 *   (or unsynced) at the end: damage to one of them, with nothing later
 *   committed after it was safe, looks exactly like a torn write; it is
 *   cut (kept in the .torn file, with a warning through the log callback),
 *   never silently, and never past what the manifest proves.
 *
 * REPAIR (the operator's escape hatch: `cqrs journal repair DIR`)
 *
 *   With the writer's LOCK held, repair checks the whole journal like the
 *   iterator and cuts it at the first problem: bytes from the first bad
 *   record to the end of its segment go to <segment>.<offset>.cut (then
 *   zeroed in place), every later segment is renamed to <segment>.cut, and
 *   the manifest is rewritten for what is left (removed when nothing is
 *   left, so the next open starts a new journal). It never deletes a
 *   byte. The engine then refuses to start if views or other state prove
 *   events past the cut (they must be rebuilt: that loss is explicit).
 *
 * READING
 *
 *   The iterator maps each segment read-only and validates one whole group
 *   ahead before returning its records, so readers never see a command's
 *   events without its CMD_END, and never a record recovery would cut. It
 *   checks the predecessor links as it enters each segment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#define XXH_INLINE_ALL /* hot path: hash and checksum inline, no PLT call */
#include <xxhash.h>

#include "engine/journal/format.h"
#include "core/errors.h"
#include "core/schema_internal.h"

uint64_t cqrs__jrec_checksum(const cqrs_jrec *r)
{
	return XXH3_64bits((const uint8_t *)r + 8, CQRS_JREC_HEADER - 8 + (size_t)r->size);
}

int cqrs__jrec_valid(const uint8_t *base, size_t len, size_t off)
{
	const cqrs_jrec *r;

	if ((off & 7u) || off > len || len - off < CQRS_JREC_HEADER)
		return 0;
	r = (const cqrs_jrec *)(base + off);
	if (r->seq == 0 || r->size > JREC_MAX_PAYLOAD ||
	    (uint64_t)r->size > len - off - CQRS_JREC_HEADER)
		return 0;
	return cqrs__jrec_checksum(r) == r->checksum;
}

/* ---- segment header -------------------------------------------------------- */

static size_t schema_area_size(const cqrs_schema *const *schemas, uint32_t ntypes, int *bad)
{
	size_t n = 0;

	*bad = 0;
	for (uint32_t t = 0; t < ntypes; t++) {
		n += 8;
		if (schemas && schemas[t]) {
			if (cqrs_schema_validate(schemas[t]) != 0) {
				*bad = 1;
				return 0;
			}
			n += jalign8(cqrs_schema_blob_size(schemas[t]));
		}
	}
	return n;
}

size_t cqrs__jseg_header_size(const cqrs_schema *const *schemas, uint32_t ntypes)
{
	int bad;
	size_t s;

	if (ntypes > JSEG_MAX_TYPES)
		return 0;
	s = schema_area_size(schemas, ntypes, &bad);
	if (bad)
		return 0;
	s = (JSEG_FIXED + s + JSEG_ALIGN - 1) / JSEG_ALIGN * JSEG_ALIGN;
	return s > JSEG_MAX_HEADER ? 0 : s;
}

static uint64_t header_checksum(const uint8_t *img, uint32_t schema_bytes)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, img, offsetof(jseg_header, checksum));
	XXH3_64bits_update(&st, img + JSEG_FIXED, schema_bytes);
	return XXH3_64bits_digest(&st);
}

int cqrs__jseg_header_encode(void *buf, size_t cap, const char *engine, uint64_t first_seq,
			     uint64_t prev_first_seq, int64_t ctime_ns, uint64_t segment_size,
			     const cqrs_schema *const *schemas, uint32_t ntypes)
{
	size_t hsize = cqrs__jseg_header_size(schemas, ntypes), pos = JSEG_FIXED;
	uint8_t *b = buf;
	jseg_header h;

	if (hsize == 0)
		return cqrs__fail(CQRS_EFORMAT, "event schemas invalid or too large for a header");
	if (cap < hsize)
		return -ENOSPC;
	for (uint32_t t = 0; t < ntypes; t++) {
		uint32_t len = 0;
		int n;

		if (schemas && schemas[t]) {
			n = cqrs_schema_encode(schemas[t], b + pos + 8, cap - pos - 8);
			if (n < 0)
				return n;
			len = (uint32_t)n;
		}
		memcpy(b + pos, &len, 4);
		memset(b + pos + 4, 0, 4);
		memset(b + pos + 8 + len, 0, jalign8(len) - len);
		pos += 8 + jalign8(len);
	}
	memset(&h, 0, sizeof h);
	h.magic = JSEG_MAGIC;
	h.version = JSEG_VERSION;
	h.header_size = (uint32_t)hsize;
	h.first_seq = first_seq;
	h.prev_first_seq = prev_first_seq;
	h.ctime_ns = ctime_ns;
	h.segment_size = segment_size;
	h.ntypes = ntypes;
	h.schema_bytes = (uint32_t)(pos - JSEG_FIXED);
	h.record_header = CQRS_JREC_HEADER;
	strncpy(h.engine, engine, sizeof h.engine - 1);
	memcpy(b, &h, sizeof h);
	h.checksum = header_checksum(b, h.schema_bytes);
	memcpy(b + offsetof(jseg_header, checksum), &h.checksum, 8);
	memset(b + pos, 0, hsize - pos);
	return (int)hsize;
}

int cqrs__jseg_header_check(const void *img, size_t len, jseg_header *out)
{
	const uint8_t *b = img;
	jseg_header h;
	size_t pos, end;

	if (len < JSEG_FIXED)
		return cqrs__fail(CQRS_EFORMAT, "%zu bytes: too short for a segment header", len);
	memcpy(&h, b, sizeof h);
	if (h.magic != JSEG_MAGIC)
		return cqrs__fail(CQRS_EFORMAT, "not a journal segment (bad magic)");
	if (h.version < JSEG_VERSION_MIN || h.version > JSEG_VERSION)
		return cqrs__fail(CQRS_EFORMAT, "segment format version %u, this build reads %u..%u",
					 h.version, JSEG_VERSION_MIN, JSEG_VERSION);
	if (h.header_size < JSEG_ALIGN || h.header_size % JSEG_ALIGN || h.header_size > JSEG_MAX_HEADER ||
	    h.header_size > len || h.ntypes > JSEG_MAX_TYPES ||
	    h.schema_bytes > h.header_size - JSEG_FIXED || h.record_header != CQRS_JREC_HEADER ||
	    h.first_seq == 0 || h.prev_first_seq >= h.first_seq)
		return cqrs__fail(CQRS_ECORRUPT, "segment header has impossible sizes");
	if (header_checksum(b, h.schema_bytes) != h.checksum)
		return cqrs__fail(CQRS_ECORRUPT, "segment header checksum mismatch");
	if (!cqrs__name_valid(h.engine, sizeof h.engine))
		return cqrs__fail(CQRS_ECORRUPT, "segment header has a bad engine name");
	/* Walk the schema area: every entry must lie inside it, exactly. */
	pos = JSEG_FIXED;
	end = JSEG_FIXED + h.schema_bytes;
	for (uint32_t t = 0; t < h.ntypes; t++) {
		uint32_t l;

		if (end - pos < 8)
			return cqrs__fail(CQRS_ECORRUPT, "schema area too short for type %u", t);
		memcpy(&l, b + pos, 4);
		if (l > end - pos - 8 || jalign8(l) > end - pos - 8)
			return cqrs__fail(CQRS_ECORRUPT, "schema of type %u overruns the header", t);
		pos += 8 + jalign8(l);
	}
	if (pos != end)
		return cqrs__fail(CQRS_ECORRUPT, "schema area has trailing bytes");
	if (out)
		*out = h;
	return 0;
}

int cqrs__jseg_schema(const void *img, size_t len, const jseg_header *h, uint32_t t,
		      cqrs_schema *out)
{
	const uint8_t *b = img;
	size_t pos = JSEG_FIXED;
	uint32_t l = 0;

	if (t >= h->ntypes || len < JSEG_FIXED + (size_t)h->schema_bytes)
		return 0;
	for (uint32_t i = 0;; i++) {
		memcpy(&l, b + pos, 4);
		if (i == t)
			break;
		pos += 8 + jalign8(l);
	}
	if (l == 0)
		return 0;
	return cqrs_schema_decode(b + pos + 8, l, out) == (int)l ? 1 : CQRS_EFORMAT;
}

/* ---- scanning --------------------------------------------------------------- */

int cqrs__jscan_group(const uint8_t *base, size_t len, size_t off, uint64_t seq, jscan_group *g)
{
	size_t pos = off;
	uint64_t n = 0;

	for (;;) {
		const cqrs_jrec *r;

		if (!cqrs__jrec_valid(base, len, pos)) {
			g->bad_off = pos;
			g->bad_seq = seq + n;
			g->stale = false;
			return 0;
		}
		r = (const cqrs_jrec *)(base + pos);
		if (r->seq != seq + n) {
			g->bad_off = pos;
			g->bad_seq = r->seq;
			g->stale = true;
			return 0;
		}
		pos += cqrs__jrec_span(r);
		n++;
		if (r->flags & CQRS_JREC_CMD_END) {
			g->end = pos;
			g->count = n;
			return 1;
		}
	}
}

size_t cqrs__jnonzero_end(const uint8_t *base, size_t len, size_t off)
{
	size_t e = len;

	while (e > off && (e & 7u)) {
		if (base[e - 1])
			return e;
		e--;
	}
	while (e >= off + 8) {
		uint64_t w;

		memcpy(&w, base + e - 8, 8);
		if (w)
			break;
		e -= 8;
	}
	while (e > off && !base[e - 1])
		e--;
	return e;
}

void cqrs__jscan_tail(const uint8_t *base, size_t len, size_t off, uint64_t expect, jtail *t)
{
	/* Bound the checksum work an adversarial tail can cause: a torn tail
	 * written by us hashes each byte a few dozen times at most. */
	const uint64_t max_span = jrec_span_for(JREC_MAX_PAYLOAD);
	uint64_t budget, d;
	size_t y;

	memset(t, 0, sizeof *t);
	t->nz_end = cqrs__jnonzero_end(base, len, off);
	if (t->nz_end <= off) {
		t->kind = JTAIL_CLEAN;
		return;
	}
	budget = 64 * (uint64_t)(t->nz_end - off) + (1u << 20);
	for (y = off; y < t->nz_end && t->nz_end - y >= CQRS_JREC_HEADER;) {
		const cqrs_jrec *r = (const cqrs_jrec *)(base + y);

		if (r->seq == 0 || r->size > JREC_MAX_PAYLOAD ||
		    (uint64_t)r->size > len - y - CQRS_JREC_HEADER) {
			y += 8;
			continue;
		}
		if (budget < CQRS_JREC_HEADER + (uint64_t)r->size) {
			t->kind = JTAIL_CORRUPT;
			t->bad_off = y;
			t->bad_seq = expect;
			snprintf(t->why, sizeof t->why,
				 "damaged tail too large to classify after the last valid record");
			return;
		}
		budget -= CQRS_JREC_HEADER + (uint64_t)r->size;
		if (cqrs__jrec_checksum(r) != r->checksum) {
			y += 8;
			continue;
		}
		if (r->seq < expect) {
			t->kind = JTAIL_CORRUPT;
			t->bad_off = y;
			t->bad_seq = r->seq;
			snprintf(t->why, sizeof t->why,
				 "stale or foreign record (seq %" PRIu64 " after the tail, next seq is %" PRIu64 ")",
				 r->seq, expect);
			return;
		}
		if (r->synced_seq >= expect) {
			t->kind = JTAIL_CORRUPT;
			t->bad_off = off;
			t->bad_seq = expect;
			snprintf(t->why, sizeof t->why,
				 "record damaged, not torn: seq %" PRIu64 " at offset %zu was committed after "
				 "this one was safe from a crash (written, or on stable storage)", r->seq, y);
			return;
		}
		/* In sequence: seqs expect..r->seq-1 fill [off, y) exactly, at
		 * least 72 and at most max_span bytes each. */
		d = r->seq - expect;
		if (d > (y - off) / CQRS_JREC_HEADER || (y - off + max_span - 1) / max_span > d) {
			t->kind = JTAIL_CORRUPT;
			t->bad_off = y;
			t->bad_seq = r->seq;
			snprintf(t->why, sizeof t->why,
				 "record out of place: seq %" PRIu64 " cannot lie %zu bytes past offset %zu, "
				 "where seq %" PRIu64 " belongs", r->seq, y - off, off, expect);
			return;
		}
		y += cqrs__jrec_span(r);
	}
	t->kind = JTAIL_TORN;
}

void cqrs__jseg_scan(const uint8_t *img, size_t len, size_t data_off, uint64_t first_seq,
		     jseg_scan *s)
{
	size_t off = data_off;
	uint64_t seq = first_seq, n = 0;
	jscan_group g;

	while (cqrs__jscan_group(img, len, off, seq, &g)) {
		off = g.end;
		seq += g.count;
		n += g.count;
	}
	s->end = off;
	s->next_seq = seq;
	s->records = n;
	if (g.stale) {
		uint64_t want = seq;
		/* the chain broke inside the group that starts at off */
		for (size_t p = off; p < g.bad_off; p += cqrs__jrec_span((const cqrs_jrec *)(img + p)))
			want++;
		memset(&s->tail, 0, sizeof s->tail);
		s->tail.kind = JTAIL_CORRUPT;
		s->tail.bad_off = g.bad_off;
		s->tail.bad_seq = g.bad_seq;
		snprintf(s->tail.why, sizeof s->tail.why,
			 "%s: found seq %" PRIu64 " where seq %" PRIu64 " belongs",
			 g.bad_seq > want ? "seq gap" : "stale or foreign record", g.bad_seq, want);
		return;
	}
	cqrs__jscan_tail(img, len, off, seq, &s->tail);
}

/* ---- names and listing ------------------------------------------------------ */

void cqrs__jseg_name(char *buf, size_t cap, uint64_t first_seq)
{
	snprintf(buf, cap, "%020" PRIu64 JSEG_SUFFIX, first_seq);
}

int cqrs__jseg_parse_name(const char *name, uint64_t *first_seq)
{
	uint64_t v = 0;

	if (strlen(name) != JSEG_NAME_LEN || strcmp(name + 20, JSEG_SUFFIX) != 0)
		return 0;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (v == 0)
		return 0;
	*first_seq = v;
	return 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int cqrs__jseg_list(int dirfd, uint64_t **out)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint64_t *v = NULL, s;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	while ((e = readdir(d))) {
		if (!cqrs__jseg_parse_name(e->d_name, &s))
			continue;
		if (n == cap) {
			uint64_t *nv = realloc(v, (cap ? cap * 2 : 16) * sizeof *v);
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
			cap = cap ? cap * 2 : 16;
		}
		v[n++] = s;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof *v, cmp_u64);
	*out = v;
	return (int)n;
}
