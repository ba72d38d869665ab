/*
 * core/schema.c - schema descriptors: validation, the stable hash, field
 * lookup. The blob form lives in schema_blob.c, field access in record.c.
 */
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "cqrs_schema.h"
#include "core/errors.h"
#include "core/schema_internal.h"

static const struct {
	const char *name;
	uint32_t size; /* 0: any size >= 1 (arrays) */
} ftypes[CQRS_FT_MAX + 1] = {
	[CQRS_FT_U8] = { "u8", 1 },     [CQRS_FT_U16] = { "u16", 2 },
	[CQRS_FT_U32] = { "u32", 4 },   [CQRS_FT_U64] = { "u64", 8 },
	[CQRS_FT_I8] = { "i8", 1 },     [CQRS_FT_I16] = { "i16", 2 },
	[CQRS_FT_I32] = { "i32", 4 },   [CQRS_FT_I64] = { "i64", 8 },
	[CQRS_FT_F64] = { "f64", 8 },   [CQRS_FT_BOOL] = { "bool", 1 },
	[CQRS_FT_STR] = { "str", 0 },   [CQRS_FT_BYTES] = { "bytes", 0 },
	[CQRS_FT_TS] = { "ts", 8 },
};

const char *cqrs_ftype_name(int type)
{
	if (type < 1 || type > CQRS_FT_MAX)
		return "?";
	return ftypes[type].name;
}

int cqrs__name_valid(const char *name, size_t cap)
{
	size_t n = 0;

	for (; n < cap && name[n]; n++) {
		char c = name[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return n > 0 && n < cap; /* non-empty and NUL-terminated within cap */
}

int cqrs_schema_validate(const cqrs_schema *s)
{
	if (!s)
		return cqrs__fail(-EINVAL, "schema is NULL");
	if (!cqrs__name_valid(s->name, sizeof s->name))
		return cqrs__fail(CQRS_EFORMAT, "bad record name");
	if (s->size == 0 || s->size > CQRS_RECORD_MAX)
		return cqrs__fail(CQRS_EFORMAT, "record %.31s: bad size %u", s->name, s->size);
	if (s->nfields == 0 || s->nfields > CQRS_SCHEMA_MAX_FIELDS)
		return cqrs__fail(CQRS_EFORMAT, "record %.31s: bad field count %u", s->name,
				 s->nfields);
	for (uint32_t i = 0; i < s->nfields; i++) {
		const cqrs_field *f = &s->fields[i];

		if (!cqrs__name_valid(f->name, sizeof f->name))
			return cqrs__fail(CQRS_EFORMAT, "record %.31s: field %u: bad name", s->name, i);
		if (f->type < 1 || f->type > CQRS_FT_MAX)
			return cqrs__fail(CQRS_EFORMAT, "record %.31s: field %.31s: unknown type %u",
					 s->name, f->name, f->type);
		if (ftypes[f->type].size ? f->size != ftypes[f->type].size : f->size == 0)
			return cqrs__fail(CQRS_EFORMAT, "record %.31s: field %.31s: bad size %u for %s",
					 s->name, f->name, f->size, ftypes[f->type].name);
		if (f->offset > s->size || f->size > s->size - f->offset)
			return cqrs__fail(CQRS_EFORMAT, "record %.31s: field %.31s: out of bounds",
					 s->name, f->name);
		/* O(n^2) over at most 64 fields: cold path, and it needs no memory. */
		for (uint32_t j = 0; j < i; j++) {
			const cqrs_field *g = &s->fields[j];
			if (f->offset < g->offset + g->size && g->offset < f->offset + f->size)
				return cqrs__fail(CQRS_EFORMAT, "record %.31s: fields %.31s and %.31s overlap",
						 s->name, g->name, f->name);
			if (strncmp(f->name, g->name, CQRS_NAME_MAX) == 0)
				return cqrs__fail(CQRS_EFORMAT, "record %.31s: duplicate field %.31s",
						 s->name, f->name);
		}
	}
	return 0;
}

/* Canonical form, hashed incrementally: name NUL size u32le nfields u32le,
 * then per field: name NUL type u8 offset u32le size u32le. */
static void put_u32(XXH3_state_t *st, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	XXH3_64bits_update(st, b, sizeof b);
}

uint64_t cqrs_schema_hash(const cqrs_schema *s)
{
	XXH3_state_t st;
	uint32_t n = s->nfields > CQRS_SCHEMA_MAX_FIELDS ? CQRS_SCHEMA_MAX_FIELDS : s->nfields;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, s->name, strnlen(s->name, CQRS_NAME_MAX) );
	XXH3_64bits_update(&st, "", 1);
	put_u32(&st, s->size);
	put_u32(&st, n);
	for (uint32_t i = 0; i < n; i++) {
		const cqrs_field *f = &s->fields[i];
		uint8_t t = f->type;

		XXH3_64bits_update(&st, f->name, strnlen(f->name, CQRS_NAME_MAX));
		XXH3_64bits_update(&st, "", 1);
		XXH3_64bits_update(&st, &t, 1);
		put_u32(&st, f->offset);
		put_u32(&st, f->size);
	}
	return XXH3_64bits_digest(&st);
}

const cqrs_field *cqrs_schema_field(const cqrs_schema *s, const char *name)
{
	uint32_t n = s->nfields > CQRS_SCHEMA_MAX_FIELDS ? CQRS_SCHEMA_MAX_FIELDS : s->nfields;

	for (uint32_t i = 0; i < n; i++)
		if (strncmp(s->fields[i].name, name, CQRS_NAME_MAX) == 0)
			return &s->fields[i];
	return NULL;
}
