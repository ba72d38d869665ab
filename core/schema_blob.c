/*
 * core/schema_blob.c - the serialized form of a schema descriptor.
 *
 * A blob is self-delimiting, little-endian, and may sit at any alignment
 * (journal segment headers and shm segments embed several back to back):
 *
 *   off  size  field
 *   0    4     magic 0x44535143 ("CQSD")
 *   4    2     format version (CQRS_SCHEMA_BLOB_VERSION)
 *   6    1     record name length N (1..31)
 *   7    1     reserved, 0
 *   8    4     total blob length L, checksum included
 *   12   4     record size
 *   16   4     field count F (1..64)
 *   20   N     record name (no NUL)
 *   then F entries:
 *        1     type (cqrs_ftype)
 *        1     name length n (1..31)
 *        4     offset
 *        4     size
 *        n     name (no NUL)
 *   L-8  8     XXH3-64 of bytes [0, L-8)
 *
 * Decoding checks, in order, before trusting any byte: the fixed header is
 * inside len; magic; version; L within len and >= the minimum; the checksum;
 * then every entry's bounds against L-8 as it is read; finally the decoded
 * descriptor goes through cqrs_schema_validate (types, sizes, bounds,
 * overlaps, duplicate names) and must account for exactly L bytes.
 */
#include <string.h>

#include <xxhash.h>

#include "cqrs_schema.h"
#include "core/errors.h"

#define BLOB_MAGIC 0x44535143u
#define CQRS_SCHEMA_BLOB_VERSION 1
#define HDR_SIZE 20
#define ENTRY_FIXED 10
#define SUM_SIZE 8

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

size_t cqrs_schema_blob_size(const cqrs_schema *s)
{
	size_t n = HDR_SIZE + strnlen(s->name, CQRS_NAME_MAX) + SUM_SIZE;
	uint32_t nf = s->nfields > CQRS_SCHEMA_MAX_FIELDS ? CQRS_SCHEMA_MAX_FIELDS : s->nfields;

	for (uint32_t i = 0; i < nf; i++)
		n += ENTRY_FIXED + strnlen(s->fields[i].name, CQRS_NAME_MAX);
	return n;
}

int cqrs_schema_encode(const cqrs_schema *s, void *buf, size_t cap)
{
	int rc = cqrs_schema_validate(s);
	size_t need, pos, nl;
	uint8_t *b = buf;

	if (rc)
		return rc;
	need = cqrs_schema_blob_size(s);
	if (need > cap)
		return cqrs__fail(-ENOSPC, "schema blob needs %zu bytes, have %zu", need, cap);
	nl = strlen(s->name);
	wr32(b, BLOB_MAGIC);
	wr16(b + 4, CQRS_SCHEMA_BLOB_VERSION);
	b[6] = (uint8_t)nl;
	b[7] = 0;
	wr32(b + 8, (uint32_t)need);
	wr32(b + 12, s->size);
	wr32(b + 16, s->nfields);
	memcpy(b + HDR_SIZE, s->name, nl);
	pos = HDR_SIZE + nl;
	for (uint32_t i = 0; i < s->nfields; i++) {
		const cqrs_field *f = &s->fields[i];
		size_t fl = strlen(f->name);

		b[pos] = f->type;
		b[pos + 1] = (uint8_t)fl;
		wr32(b + pos + 2, f->offset);
		wr32(b + pos + 6, f->size);
		memcpy(b + pos + ENTRY_FIXED, f->name, fl);
		pos += ENTRY_FIXED + fl;
	}
	wr64(b + pos, XXH3_64bits(b, pos));
	return (int)(pos + SUM_SIZE);
}

int cqrs_schema_decode(const void *blob, size_t len, cqrs_schema *out)
{
	const uint8_t *b = blob;
	uint32_t total, nf;
	size_t pos, nl, end;

	if (!blob || !out)
		return cqrs__fail(-EINVAL, "NULL argument");
	if (len < HDR_SIZE + 1 + SUM_SIZE)
		return cqrs__fail(CQRS_EFORMAT, "schema blob truncated (%zu bytes)", len);
	if (rd32(b) != BLOB_MAGIC)
		return cqrs__fail(CQRS_EFORMAT, "schema blob: bad magic 0x%08x", rd32(b));
	if (rd16(b + 4) != CQRS_SCHEMA_BLOB_VERSION)
		return cqrs__fail(CQRS_EFORMAT, "schema blob: unsupported version %u", rd16(b + 4));
	total = rd32(b + 8);
	if (total > len || total < HDR_SIZE + 1 + SUM_SIZE)
		return cqrs__fail(CQRS_EFORMAT, "schema blob: length %u outside 1..%zu", total, len);
	end = total - SUM_SIZE;
	if (XXH3_64bits(b, end) != rd64(b + end))
		return cqrs__fail(CQRS_EFORMAT, "schema blob: checksum mismatch");

	memset(out, 0, sizeof *out);
	nl = b[6];
	nf = rd32(b + 16);
	if (nl == 0 || nl >= CQRS_NAME_MAX || HDR_SIZE + nl > end)
		return cqrs__fail(CQRS_EFORMAT, "schema blob: bad name length %zu", nl);
	if (nf == 0 || nf > CQRS_SCHEMA_MAX_FIELDS)
		return cqrs__fail(CQRS_EFORMAT, "schema blob: bad field count %u", nf);
	memcpy(out->name, b + HDR_SIZE, nl);
	out->size = rd32(b + 12);
	out->nfields = nf;
	pos = HDR_SIZE + nl;
	for (uint32_t i = 0; i < nf; i++) {
		cqrs_field *f = &out->fields[i];
		size_t fl;

		if (pos + ENTRY_FIXED > end)
			return cqrs__fail(CQRS_EFORMAT, "schema blob: field %u truncated", i);
		fl = b[pos + 1];
		if (fl == 0 || fl >= CQRS_NAME_MAX || pos + ENTRY_FIXED + fl > end)
			return cqrs__fail(CQRS_EFORMAT, "schema blob: field %u: bad name length", i);
		f->type = b[pos];
		f->offset = rd32(b + pos + 2);
		f->size = rd32(b + pos + 6);
		memcpy(f->name, b + pos + ENTRY_FIXED, fl);
		pos += ENTRY_FIXED + fl;
	}
	if (pos != end)
		return cqrs__fail(CQRS_EFORMAT, "schema blob: %zu trailing bytes", end - pos);
	if (cqrs_schema_validate(out))
		return CQRS_EFORMAT; /* validate already recorded the reason */
	return (int)total;
}
