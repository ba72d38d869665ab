/*
 * core/record.c - field access through a schema descriptor (get, set with
 * range and NUL checks), text parsing for the CLI, and a record's JSON form
 * for tools.
 *
 * All access goes through memcpy: records in journals and shm rows need not
 * be aligned for the field's type.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cqrs_schema.h"
#include "core/errors.h"

static int field_ok(const cqrs_schema *s, const cqrs_field *f)
{
	return s && f && f->offset <= s->size && f->size <= s->size - f->offset;
}

int cqrs_record_get(const cqrs_schema *s, const void *rec, const cqrs_field *f, cqrs_value *out)
{
	const uint8_t *p;

	if (!field_ok(s, f) || !rec || !out)
		return -EINVAL;
	p = (const uint8_t *)rec + f->offset;
	out->type = f->type;
	switch (f->type) {
	case CQRS_FT_U8: case CQRS_FT_BOOL: out->v.u = p[0]; break;
	case CQRS_FT_U16: { uint16_t x; memcpy(&x, p, 2); out->v.u = x; break; }
	case CQRS_FT_U32: { uint32_t x; memcpy(&x, p, 4); out->v.u = x; break; }
	case CQRS_FT_U64: memcpy(&out->v.u, p, 8); break;
	case CQRS_FT_I8: out->v.i = (int8_t)p[0]; break;
	case CQRS_FT_I16: { int16_t x; memcpy(&x, p, 2); out->v.i = x; break; }
	case CQRS_FT_I32: { int32_t x; memcpy(&x, p, 4); out->v.i = x; break; }
	case CQRS_FT_I64: case CQRS_FT_TS: memcpy(&out->v.i, p, 8); break;
	case CQRS_FT_F64: memcpy(&out->v.f, p, 8); break;
	case CQRS_FT_STR: out->v.b.ptr = p; out->v.b.len = strnlen((const char *)p, f->size); break;
	case CQRS_FT_BYTES: out->v.b.ptr = p; out->v.b.len = f->size; break;
	default: return CQRS_EFORMAT;
	}
	return 0;
}

static int is_unsigned(int t) { return t == CQRS_FT_U8 || t == CQRS_FT_U16 || t == CQRS_FT_U32 || t == CQRS_FT_U64 || t == CQRS_FT_BOOL; }
static int is_signed(int t) { return t == CQRS_FT_I8 || t == CQRS_FT_I16 || t == CQRS_FT_I32 || t == CQRS_FT_I64 || t == CQRS_FT_TS; }

/* Converts a numeric value to the field's integer domain, exactly or not at
 * all: u holds the unsigned form, neg tells a negative signed value. */
static int to_int(const cqrs_value *v, uint64_t *u, int *neg)
{
	*neg = 0;
	switch (v->type) {
	case CQRS_FT_U8: case CQRS_FT_U16: case CQRS_FT_U32: case CQRS_FT_U64: case CQRS_FT_BOOL:
		*u = v->v.u; return 0;
	case CQRS_FT_I8: case CQRS_FT_I16: case CQRS_FT_I32: case CQRS_FT_I64: case CQRS_FT_TS:
		*neg = v->v.i < 0;
		*u = (uint64_t)v->v.i;
		return 0;
	case CQRS_FT_F64:
		if (!(v->v.f == v->v.f) || v->v.f != floor(v->v.f) || v->v.f >= 18446744073709551616.0 ||
		    v->v.f < -9223372036854775808.0)
			return CQRS_ETYPE;
		*neg = v->v.f < 0;
		*u = *neg ? (uint64_t)(int64_t)v->v.f : (uint64_t)v->v.f;
		return 0;
	default:
		return CQRS_ETYPE;
	}
}

/* The integer range of field f: [*lo, *hi] as signed (is_signed(f)) or
 * [0, *hi] as unsigned. */
static void int_range(const cqrs_field *f, int64_t *lo, uint64_t *hi)
{
	if (is_unsigned(f->type)) {
		*lo = 0;
		*hi = f->type == CQRS_FT_BOOL ? 1 : f->size == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * f->size)) - 1;
	} else {
		*hi = f->size == 8 ? (uint64_t)INT64_MAX : (UINT64_C(1) << (8 * f->size - 1)) - 1;
		*lo = -(int64_t)*hi - 1;
	}
}

static int out_of_range(const cqrs_field *f)
{
	int64_t lo;
	uint64_t hi;

	int_range(f, &lo, &hi);
	return cqrs__fail(CQRS_ETYPE, "field %.31s (%s): out of range (%" PRId64 "..%" PRIu64 ")",
			  f->name, cqrs_ftype_name(f->type), lo, hi);
}

int cqrs_record_set(const cqrs_schema *s, void *rec, const cqrs_field *f, const cqrs_value *val)
{
	uint8_t *p;
	uint64_t u;
	int neg;

	if (!field_ok(s, f) || !rec || !val)
		return -EINVAL;
	p = (uint8_t *)rec + f->offset;
	if (f->type == CQRS_FT_STR || f->type == CQRS_FT_BYTES) {
		const void *nul;
		if (val->type != CQRS_FT_STR && val->type != CQRS_FT_BYTES)
			return cqrs__fail(CQRS_ETYPE, "field %.31s (%s) wants a string or bytes", f->name,
					  cqrs_ftype_name(f->type));
		if (val->v.b.len > f->size)
			return cqrs__fail(CQRS_ETYPE, "field %.31s (%s, %u bytes): %zu bytes do not fit",
					  f->name, cqrs_ftype_name(f->type), f->size, val->v.b.len);
		/* A str field ends at its first NUL: a value holding one would be
		 * stored cut short, so it is refused (bytes fields keep every byte). */
		if (f->type == CQRS_FT_STR && (nul = memchr(val->v.b.ptr, 0, val->v.b.len)))
			return cqrs__fail(CQRS_ETYPE,
					  "field %.31s (str): the value holds a NUL byte at offset %zu",
					  f->name, (size_t)((const char *)nul - (const char *)val->v.b.ptr));
		memcpy(p, val->v.b.ptr, val->v.b.len);
		memset(p + val->v.b.len, 0, f->size - val->v.b.len);
		return 0;
	}
	if (f->type == CQRS_FT_F64) {
		double d;
		if (val->type == CQRS_FT_F64) d = val->v.f;
		else if (is_unsigned(val->type)) d = (double)val->v.u;
		else if (is_signed(val->type)) d = (double)val->v.i;
		else return cqrs__fail(CQRS_ETYPE, "field %.31s (f64) wants a number", f->name);
		memcpy(p, &d, 8);
		return 0;
	}
	if (to_int(val, &u, &neg))
		return cqrs__fail(CQRS_ETYPE, "field %.31s (%s) wants an integer", f->name,
				  cqrs_ftype_name(f->type));
	{
		int64_t lo;
		uint64_t hi;
		int_range(f, &lo, &hi);
		if (is_unsigned(f->type) ? neg || u > hi
					 : neg ? (int64_t)u < lo : u > hi)
			return out_of_range(f);
	}
	/* Little-endian host: the low f->size bytes are the value. */
	memcpy(p, &u, f->size);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int cqrs_record_set_text(const cqrs_schema *s, void *rec, const char *name, const char *text)
{
	const cqrs_field *f = cqrs_schema_field(s, name);
	cqrs_value v;
	char *end;

	if (!f)
		return cqrs__fail(CQRS_ENOTFOUND, "record %.31s has no field '%s'", s->name, name);
	if (!text)
		return -EINVAL;
	errno = 0;
	switch (f->type) {
	case CQRS_FT_STR:
		v.type = CQRS_FT_STR;
		v.v.b.ptr = text;
		v.v.b.len = strlen(text);
		break;
	case CQRS_FT_BYTES: {
		size_t n = strlen(text);
		uint8_t tmp[CQRS_RECORD_MAX];
		if (n % 2 || n / 2 > f->size)
			return cqrs__fail(CQRS_ETYPE, "field %.31s: want up to %u bytes as hex", f->name, f->size);
		for (size_t i = 0; i < n / 2; i++) {
			int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return cqrs__fail(CQRS_ETYPE, "field %.31s: bad hex", f->name);
			tmp[i] = (uint8_t)(hi << 4 | lo);
		}
		v.type = CQRS_FT_BYTES;
		v.v.b.ptr = tmp;
		v.v.b.len = n / 2;
		return cqrs_record_set(s, rec, f, &v);
	}
	case CQRS_FT_F64:
		v.type = CQRS_FT_F64;
		v.v.f = strtod(text, &end);
		if (end == text || *end || isspace((unsigned char)text[0]))
			return cqrs__fail(CQRS_ETYPE, "field %.31s: '%s' is not a number", f->name, text);
		if (errno == ERANGE && (v.v.f == HUGE_VAL || v.v.f == -HUGE_VAL))
			return cqrs__fail(CQRS_ETYPE, "field %.31s (f64): '%s' is out of range", f->name, text);
		break;
	case CQRS_FT_BOOL:
		v.type = CQRS_FT_U64;
		if (!strcmp(text, "true") || !strcmp(text, "1")) v.v.u = 1;
		else if (!strcmp(text, "false") || !strcmp(text, "0")) v.v.u = 0;
		else return cqrs__fail(CQRS_ETYPE, "field %.31s: '%s' is not a bool", f->name, text);
		break;
	default: {
		/* Decimal only: an optional '-', then digits (leading zeros are
		 * decimal too). strtoull alone would also take spaces, '+', 0x hex
		 * and 0 octal, and wrap " -1" to 2^64 - 1. */
		const char *d = text + (text[0] == '-');
		if (!*d || d[strspn(d, "0123456789")])
			return cqrs__fail(CQRS_ETYPE, "field %.31s (%s): '%s' is not a decimal integer",
					  f->name, cqrs_ftype_name(f->type), text);
		if (text[0] == '-') {
			v.type = CQRS_FT_I64;
			v.v.i = strtoll(text, &end, 10);
		} else {
			v.type = CQRS_FT_U64;
			v.v.u = strtoull(text, &end, 10);
		}
		if (errno == ERANGE)
			return out_of_range(f);
		break;
	}
	}
	return cqrs_record_set(s, rec, f, &v);
}

/* ---- JSON ---------------------------------------------------------------- */

typedef struct jbuf {
	char *p;
	size_t cap, len;
} jbuf;

static void jput(jbuf *j, const char *s, size_t n)
{
	if (j->len < j->cap) {
		size_t room = j->cap - j->len;
		memcpy(j->p + j->len, s, n < room ? n : room);
	}
	j->len += n;
}

static void jfmt(jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jfmt(jbuf *j, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		jput(j, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence starting at s[0] (2..4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) { len = 2; cp = s[0] & 0x1f; }
	else if (s[0] >= 0xe0 && s[0] <= 0xef) { len = 3; cp = s[0] & 0x0f; }
	else if (s[0] >= 0xf0 && s[0] <= 0xf4) { len = 4; cp = s[0] & 0x07; }
	else return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past U+10FFFF are invalid */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void jstr(jbuf *j, const unsigned char *s, size_t n)
{
	jput(j, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		size_t u;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			jput(j, e, 2);
		} else if (c >= 0x80 && (u = utf8_len(s + i, n - i)) != 0) {
			jput(j, (const char *)s + i, u); /* valid UTF-8 passes through */
			i += u - 1;
		} else if (c < 0x20 || c >= 0x7f) {
			/* Control characters and bytes that are not valid UTF-8 are
			 * escaped one by one: the output is always valid JSON. */
			jfmt(j, "\\u%04x", c);
		} else {
			jput(j, (const char *)&c, 1);
		}
	}
	jput(j, "\"", 1);
}

int cqrs_record_to_json(const cqrs_schema *s, const void *rec, char *buf, size_t cap)
{
	jbuf j = { buf, cap ? cap - 1 : 0, 0 };

	if (!s || !rec || !buf || cap == 0)
		return -EINVAL;
	jput(&j, "{", 1);
	for (uint32_t i = 0; i < s->nfields && i < CQRS_SCHEMA_MAX_FIELDS; i++) {
		const cqrs_field *f = &s->fields[i];
		cqrs_value v;

		if (i)
			jput(&j, ",", 1);
		jstr(&j, (const unsigned char *)f->name, strnlen(f->name, CQRS_NAME_MAX));
		jput(&j, ":", 1);
		if (cqrs_record_get(s, rec, f, &v)) {
			jput(&j, "null", 4);
			continue;
		}
		switch (f->type) {
		case CQRS_FT_BOOL: jput(&j, v.v.u ? "true" : "false", v.v.u ? 4 : 5); break;
		case CQRS_FT_F64:
			if (isfinite(v.v.f)) jfmt(&j, "%.17g", v.v.f);
			else jput(&j, "null", 4);
			break;
		case CQRS_FT_STR: jstr(&j, v.v.b.ptr, v.v.b.len); break;
		case CQRS_FT_BYTES:
			jput(&j, "\"", 1);
			for (size_t k = 0; k < v.v.b.len; k++)
				jfmt(&j, "%02x", ((const uint8_t *)v.v.b.ptr)[k]);
			jput(&j, "\"", 1);
			break;
		default:
			if (is_signed(f->type)) jfmt(&j, "%" PRId64, v.v.i);
			else jfmt(&j, "%" PRIu64, v.v.u);
		}
	}
	jput(&j, "}", 1);
	if (j.len > j.cap) {
		buf[j.cap] = 0;
		return -ENOSPC;
	}
	buf[j.len] = 0;
	return (int)j.len;
}
