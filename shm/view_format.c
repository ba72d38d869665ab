/*
 * shm/view_format.c - the canonical view layout and the validation every
 * reader runs before following an offset (the format is described in
 * view_format.h).
 */
#include <string.h>

#include <xxhash.h>

#include "core/errors.h"
#include "shm/ordered_format.h"
#include "shm/view_format.h"

#define SCHEMA_MAX 8192u

static uint32_t log2_at_least(uint64_t n, uint32_t min)
{
	uint32_t l = min;

	while ((UINT64_C(1) << l) < n)
		l++;
	return l;
}

int cqrs__vparams_layout(cqrs_vparams *p, uint64_t *total)
{
	uint64_t off = CQRS_SEG_REGION_OFF;

	if (p->capacity == 0 || p->capacity > CQRS_VIEW_MAX_ROWS || p->row_size == 0 ||
	    p->row_size > CQRS_RECORD_MAX || p->nsec > CQRS_VIEW_MAX_SECONDARY || p->schema_len == 0 ||
	    p->schema_len > SCHEMA_MAX)
		return -EINVAL;
	p->data_off = VROW_HDR + VROW_LINK * p->nsec;
	p->slot_size = (uint32_t)cqrs__align_up(p->data_off + cqrs__align_up(p->row_size, 8), 64);
	/* >= 2 buckets per row: live entries stay under half (view_format.h) */
	p->pri_log2 = log2_at_least(2 * p->capacity, 4);
	p->sec_log2 = p->nsec ? log2_at_least(p->capacity, 4) : 0;
	p->schema_off = off;
	off += cqrs__align_up(p->schema_len, 64);
	for (int i = 0; i < 2; i++) {
		p->index_off[i] = off;
		off += UINT64_C(8) << p->pri_log2;
	}
	for (uint32_t i = 0; i < CQRS_VIEW_MAX_SECONDARY; i++) {
		p->heads_off[i] = i < p->nsec ? off : 0;
		if (i < p->nsec)
			off += cqrs__align_up(UINT64_C(4) << p->sec_log2, 64);
	}
	if (p->nord) {
		cqrs_ord_geom g;
		uint32_t klen = 0;

		if (p->nord > CQRS_ORD_MAX_FIELDS)
			return -EINVAL;
		for (uint32_t i = 0; i < p->nord; i++)
			klen += p->ord[i].size <= CQRS_ORD_KEY_MAX ? p->ord[i].size : CQRS_ORD_KEY_MAX + 1;
		if (klen == 0 || klen > CQRS_ORD_KEY_MAX)
			return -EINVAL;
		cqrs__ord_geom(&g, klen, p->row_size);
		if (g.lmax < 4 || cqrs__ord_pool(&g, p->capacity) >= UINT32_MAX)
			return -EINVAL;
		p->ord_klen = klen;
		p->ord_nodes = (uint32_t)cqrs__ord_pool(&g, p->capacity);
		p->ord_node_size = g.node_size;
		off = cqrs__align_up(off, 4096); /* a node is a page */
		p->ord_off = off;
		off += (uint64_t)p->ord_nodes * g.node_size + cqrs__align_up(4 * p->capacity, 64);
	}
	p->rows_off = off;
	off += p->capacity * p->slot_size;
	off = cqrs__align_up(off, 4096);
	if (off > CQRS_SEG_MAX_SIZE)
		return -EINVAL;
	*total = off;
	return 0;
}

static int type_ok(uint32_t t)
{
	return t != CQRS_FT_F64 && t >= 1 && t <= CQRS_FT_MAX;
}

int cqrs__vfield_ok(const cqrs_schema *s, const char *name, cqrs_vfield *out)
{
	const cqrs_field *f = name ? cqrs_schema_field(s, name) : NULL;

	if (!f)
		return cqrs__fail(CQRS_ENOTFOUND, "record %.31s has no field '%s'", s->name,
				 name ? name : "(null)");
	if (!type_ok(f->type) || f->size > CQRS_VIEW_KEY_MAX)
		return cqrs__fail(-EINVAL, "field %.31s (%s, %u bytes) cannot be an index key "
				 "(integers, str or bytes up to %u bytes)", f->name,
				 cqrs_ftype_name(f->type), f->size, CQRS_VIEW_KEY_MAX);
	out->field = (uint32_t)(f - s->fields);
	out->offset = f->offset;
	out->size = f->size;
	out->type = f->type;
	return 0;
}

int cqrs__vfield_ord_ok(const cqrs_schema *s, const char *name, cqrs_vfield *out)
{
	const cqrs_field *f = name ? cqrs_schema_field(s, name) : NULL;

	if (!f)
		return cqrs__fail(CQRS_ENOTFOUND, "record %.31s has no field '%s'", s->name,
				 name ? name : "(null)");
	if (f->type < 1 || f->type > CQRS_FT_MAX || f->size > CQRS_ORD_KEY_MAX)
		return cqrs__fail(-EINVAL, "field %.31s (%s, %u bytes) cannot be in an ordered key",
				 f->name, cqrs_ftype_name(f->type), f->size);
	out->field = (uint32_t)(f - s->fields);
	out->offset = f->offset;
	out->size = f->size;
	out->type = f->type;
	return 0;
}

static int vfield_ord_check(const cqrs_schema *s, const cqrs_vfield *k)
{
	const cqrs_field *f;

	if (k->field >= s->nfields)
		return -1;
	f = &s->fields[k->field];
	return f->offset == k->offset && f->size == k->size && f->type == k->type ? 0 : -1;
}

static int vfield_check(const cqrs_schema *s, const cqrs_vfield *k)
{
	const cqrs_field *f;

	if (k->field >= s->nfields)
		return -1;
	f = &s->fields[k->field];
	return f->offset == k->offset && f->size == k->size && f->type == k->type &&
			       type_ok(f->type) && f->size <= CQRS_VIEW_KEY_MAX
		       ? 0
		       : -1;
}

int cqrs__view_check(const void *base, size_t len, cqrs_vparams *p, cqrs_schema *schema,
		    void *imm_out)
{
	cqrs_vparams want;
	uint64_t total;
	int rc = cqrs__seg_check(base, len, CQRS_SEG_VIEW, imm_out), n;

	if (rc)
		return rc;
	memcpy(p, (const uint8_t *)imm_out + CQRS_VPARAMS_OFF, sizeof *p);
	memset(&want, 0, sizeof want);
	want.capacity = p->capacity;
	want.row_size = p->row_size;
	want.nsec = p->nsec;
	want.schema_len = p->schema_len;
	want.schema_hash = p->schema_hash;
	want.key = p->key;
	for (uint32_t i = 0; i < CQRS_VIEW_MAX_SECONDARY && i < p->nsec; i++)
		want.sec[i] = p->sec[i];
	want.nord = p->nord;
	for (uint32_t i = 0; i < CQRS_ORD_MAX_FIELDS && i < p->nord; i++)
		want.ord[i] = p->ord[i];
	if (cqrs__vparams_layout(&want, &total) || memcmp(&want, p, sizeof want) != 0)
		return cqrs__fail(CQRS_ECORRUPT, "view segment: layout does not match its parameters");
	if (total != len)
		return cqrs__fail(CQRS_ECORRUPT, "view segment: %zu bytes, layout needs %llu", len,
				 (unsigned long long)total);
	/* The schema blob lies inside the segment: the layout said so. */
	n = cqrs_schema_decode((const uint8_t *)base + p->schema_off, p->schema_len, schema);
	if (n < 0 || (uint32_t)n != p->schema_len)
		return cqrs__fail(CQRS_ECORRUPT, "view segment: bad row schema");
	if (cqrs_schema_hash(schema) != p->schema_hash || schema->size != p->row_size)
		return cqrs__fail(CQRS_ECORRUPT, "view segment: schema does not match the header");
	if (vfield_check(schema, &p->key))
		return cqrs__fail(CQRS_ECORRUPT, "view segment: bad key field");
	for (uint32_t i = 0; i < p->nsec; i++)
		if (vfield_check(schema, &p->sec[i]))
			return cqrs__fail(CQRS_ECORRUPT, "view segment: bad secondary field %u", i);
	for (uint32_t i = 0; i < p->nord; i++)
		if (vfield_ord_check(schema, &p->ord[i]))
			return cqrs__fail(CQRS_ECORRUPT, "view segment: bad ordered field %u", i);
	return 0;
}

uint64_t cqrs__vkey_hash(const void *key, size_t len)
{
	return XXH3_64bits(key, len);
}
