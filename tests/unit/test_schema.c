/*
 * tests/unit/test_schema.c - schema records: macro-generated descriptors,
 * validation, stable hashes, blob round trips and every malformed-blob case,
 * field access by name, text parsing and JSON decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cqrs_schema.h"

#define SAMPLE_FIELDS(F)              \
	F(u64, id)                    \
	F(u32, count)                 \
	F(i32, delta)                 \
	F(f64, price)                 \
	F(bool, active)               \
	F(u8, flags)                  \
	F(u16, kind)                  \
	F(i8, tiny)                   \
	F(i16, small)                 \
	F(str, name, 24)              \
	F(bytes, digest, 8)           \
	F(ts, at)                     \
	F(i64, total)
CQRS_RECORD(sample, "Sample", SAMPLE_FIELDS)

/* The canonical-form hash of Sample on an LP64 little-endian ABI. If this
 * changes, every journal and segment written before becomes unreadable:
 * change it only together with the blob/format versions. */
#define SAMPLE_HASH UINT64_C(0xe653217a960510cb)

static void test_descriptor_matches_struct(void **state)
{
	const cqrs_schema *s = sample_schema();
	(void)state;
	assert_string_equal(s->name, "Sample");
	assert_int_equal(s->size, sizeof(sample));
	assert_int_equal(s->nfields, 13);
	assert_string_equal(s->fields[0].name, "id");
	assert_int_equal(s->fields[0].type, CQRS_FT_U64);
	assert_int_equal(s->fields[9].offset, offsetof(sample, name));
	assert_int_equal(s->fields[9].size, 24);
	assert_int_equal(s->fields[9].type, CQRS_FT_STR);
	assert_int_equal(s->fields[10].size, 8);
	assert_int_equal(s->fields[11].type, CQRS_FT_TS);
	assert_int_equal(cqrs_schema_validate(s), 0);
	assert_ptr_equal(cqrs_schema_field(s, "price"), &s->fields[3]);
	assert_null(cqrs_schema_field(s, "nope"));
}

static void test_hash_stable(void **state)
{
	const cqrs_schema *s = sample_schema();
	cqrs_schema copy = *s;
	(void)state;
	uint64_t h = cqrs_schema_hash(s);
	assert_true(h != 0);
	assert_true(h == cqrs_schema_hash(&copy));
	assert_true(h == SAMPLE_HASH);
	strcpy(copy.fields[1].name, "cnt");
	assert_true(h != cqrs_schema_hash(&copy));
	copy = *s;
	copy.fields[1].type = CQRS_FT_I32;
	assert_true(h != cqrs_schema_hash(&copy));
	copy = *s;
	copy.size += 8;
	assert_true(h != cqrs_schema_hash(&copy));
}

static void test_blob_round_trip(void **state)
{
	const cqrs_schema *s = sample_schema();
	uint8_t buf[4096];
	cqrs_schema out;
	(void)state;
	int n = cqrs_schema_encode(s, buf, sizeof buf);
	assert_true(n > 0);
	assert_int_equal((size_t)n, cqrs_schema_blob_size(s));
	assert_int_equal(cqrs_schema_encode(s, buf, (size_t)n - 1), -ENOSPC);
	assert_int_equal(cqrs_schema_decode(buf, sizeof buf, &out), n); /* trailing room ok */
	assert_int_equal(cqrs_schema_decode(buf, (size_t)n, &out), n);
	assert_true(cqrs_schema_hash(&out) == cqrs_schema_hash(s));
	assert_string_equal(out.fields[9].name, "name");
	assert_int_equal(out.fields[9].size, 24);
	/* smaller than a u64+str of 64: under 300 bytes for 13 fields */
	assert_true(n < 300);
}

static int encode_sample(uint8_t *buf)
{
	return cqrs_schema_encode(sample_schema(), buf, 4096);
}

/* Rewrites the trailing checksum so a structural defect is what gets caught. */
#include <xxhash.h>
static void reseal(uint8_t *buf, int n)
{
	uint64_t h = XXH3_64bits(buf, (size_t)n - 8);
	memcpy(buf + n - 8, &h, 8);
}

static void test_blob_malformed(void **state)
{
	uint8_t buf[4096], bad[4096];
	cqrs_schema out;
	int n = encode_sample(buf);
	(void)state;

	/* every truncation */
	for (int len = 0; len < n; len++)
		assert_int_equal(cqrs_schema_decode(buf, (size_t)len, &out), CQRS_EFORMAT);
	/* every single bit flip is caught (checksum or structure) */
	for (int i = 0; i < n; i++)
		for (int b = 0; b < 8; b++) {
			memcpy(bad, buf, (size_t)n);
			bad[i] ^= (uint8_t)(1u << b);
			assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
		}
	/* bad magic / version, resealed */
	memcpy(bad, buf, (size_t)n); bad[0] ^= 1; reseal(bad, n);
	assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
	memcpy(bad, buf, (size_t)n); bad[4] = 9; reseal(bad, n);
	assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
	/* record size smaller than the fields (out of bounds), resealed */
	memcpy(bad, buf, (size_t)n); bad[12] = 8; bad[13] = 0; reseal(bad, n);
	assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
	/* first field entry at 20+6: unknown type, wrong size, overlap */
	int e = 20 + 6;
	memcpy(bad, buf, (size_t)n); bad[e] = 99; reseal(bad, n);
	assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
	memcpy(bad, buf, (size_t)n); bad[e + 6] = 4; reseal(bad, n); /* u64 of size 4 */
	assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
	int e2 = e + 10 + 2; /* second field "count" at offset 8 -> move onto id */
	memcpy(bad, buf, (size_t)n); bad[e2 + 2] = 4; reseal(bad, n);
	assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
	/* field count larger than the entries present */
	memcpy(bad, buf, (size_t)n); bad[16] = 14; reseal(bad, n);
	assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
	/* field name with a bad character */
	memcpy(bad, buf, (size_t)n); bad[e + 10] = '-'; reseal(bad, n);
	assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
	/* length field beyond the buffer */
	memcpy(bad, buf, (size_t)n); bad[8] = 0xff; bad[9] = 0xff;
	assert_int_equal(cqrs_schema_decode(bad, (size_t)n, &out), CQRS_EFORMAT);
	assert_string_not_equal(cqrs_last_error(), "");
}

static void test_validate_rejects(void **state)
{
	cqrs_schema s = *sample_schema();
	(void)state;
	s.fields[2].offset = 4; /* overlaps id */
	assert_int_equal(cqrs_schema_validate(&s), CQRS_EFORMAT);
	s = *sample_schema();
	strcpy(s.fields[2].name, "id"); /* duplicate */
	assert_int_equal(cqrs_schema_validate(&s), CQRS_EFORMAT);
	s = *sample_schema();
	s.nfields = 0;
	assert_int_equal(cqrs_schema_validate(&s), CQRS_EFORMAT);
	s = *sample_schema();
	s.fields[0].type = 0;
	assert_int_equal(cqrs_schema_validate(&s), CQRS_EFORMAT);
	s = *sample_schema();
	memset(s.name, 'a', sizeof s.name); /* not terminated */
	assert_int_equal(cqrs_schema_validate(&s), CQRS_EFORMAT);
}

static void test_field_access(void **state)
{
	const cqrs_schema *s = sample_schema();
	sample r;
	cqrs_value v;
	(void)state;
	memset(&r, 0, sizeof r);
	assert_int_equal(cqrs_record_set_text(s, &r, "id", "18446744073709551615"), 0);
	assert_true(r.id == UINT64_MAX);
	assert_int_equal(cqrs_record_set_text(s, &r, "count", "0016"), 0); /* decimal */
	assert_int_equal(r.count, 16);
	assert_int_equal(cqrs_record_set_text(s, &r, "count", "4294967296"), CQRS_ETYPE);
	assert_int_equal(cqrs_record_set_text(s, &r, "count", "-1"), CQRS_ETYPE);
	assert_int_equal(cqrs_record_set_text(s, &r, "delta", "-2147483648"), 0);
	assert_int_equal(r.delta, INT32_MIN);
	assert_int_equal(cqrs_record_set_text(s, &r, "delta", "2147483648"), CQRS_ETYPE);
	assert_int_equal(cqrs_record_set_text(s, &r, "tiny", "-129"), CQRS_ETYPE);
	assert_int_equal(cqrs_record_set_text(s, &r, "price", "12.5"), 0);
	assert_true(r.price == 12.5);
	assert_int_equal(cqrs_record_set_text(s, &r, "price", "x"), CQRS_ETYPE);
	assert_int_equal(cqrs_record_set_text(s, &r, "active", "true"), 0);
	assert_true(r.active);
	assert_int_equal(cqrs_record_set_text(s, &r, "active", "2"), CQRS_ETYPE);
	assert_int_equal(cqrs_record_set_text(s, &r, "name", "Ada \"L\""), 0);
	assert_string_equal(r.name, "Ada \"L\"");
	assert_int_equal(cqrs_record_set_text(s, &r, "name", "0123456789012345678901234"), CQRS_ETYPE);
	assert_int_equal(cqrs_record_set_text(s, &r, "digest", "00ff10"), 0);
	assert_int_equal(r.digest[1], 0xff);
	assert_int_equal(cqrs_record_set_text(s, &r, "digest", "0g"), CQRS_ETYPE);
	assert_int_equal(cqrs_record_set_text(s, &r, "missing", "1"), CQRS_ENOTFOUND);
	assert_int_equal(cqrs_record_get(s, &r, cqrs_schema_field(s, "delta"), &v), 0);
	assert_true(v.v.i == INT32_MIN);
	v.type = CQRS_FT_F64; v.v.f = 3.0;
	assert_int_equal(cqrs_record_set(s, &r, cqrs_schema_field(s, "count"), &v), 0);
	assert_int_equal(r.count, 3);
	v.v.f = 3.5;
	assert_int_equal(cqrs_record_set(s, &r, cqrs_schema_field(s, "count"), &v), CQRS_ETYPE);
}

/* Values that would be stored as something else are refused with a reason:
 * a str holding a NUL, integers that are not plain decimal, numbers out of
 * the field's range (text and binary paths alike). */
static void test_field_values_refused(void **state)
{
	const cqrs_schema *s = sample_schema();
	const cqrs_field *name = cqrs_schema_field(s, "name");
	const cqrs_field *digest = cqrs_schema_field(s, "digest");
	sample r;
	cqrs_value v;
	(void)state;
	memset(&r, 0, sizeof r);

	/* str: an embedded NUL would read back cut short */
	v.type = CQRS_FT_STR; v.v.b.ptr = "a\0b"; v.v.b.len = 3;
	assert_int_equal(cqrs_record_set(s, &r, name, &v), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "NUL byte at offset 1"));
	v.type = CQRS_FT_BYTES; /* same bytes given as bytes: still a str field */
	assert_int_equal(cqrs_record_set(s, &r, name, &v), CQRS_ETYPE);
	assert_string_equal(r.name, "");
	/* a bytes field keeps every byte, NULs included */
	assert_int_equal(cqrs_record_set(s, &r, digest, &v), 0);
	assert_memory_equal(r.digest, "a\0b\0\0\0\0\0", 8);
	v.type = CQRS_FT_STR; v.v.b.ptr = "Ada"; v.v.b.len = 3;
	assert_int_equal(cqrs_record_set(s, &r, name, &v), 0);
	assert_string_equal(r.name, "Ada");
	v.v.b.ptr = "0123456789012345678901234"; v.v.b.len = 25;
	assert_int_equal(cqrs_record_set(s, &r, name, &v), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "25 bytes do not fit"));

	/* integers: decimal only */
	static const char *not_decimal[] = { "0x1", "0X1", "+1", " 1", "1 ", " -1", "1e3", "1.0",
					     "", "-", "--1", "1_000", "0b1" };
	for (size_t i = 0; i < sizeof not_decimal / sizeof *not_decimal; i++) {
		assert_int_equal(cqrs_record_set_text(s, &r, "count", not_decimal[i]), CQRS_ETYPE);
		assert_non_null(strstr(cqrs_last_error(), "is not a decimal integer"));
		assert_int_equal(cqrs_record_set_text(s, &r, "delta", not_decimal[i]), CQRS_ETYPE);
	}
	assert_int_equal(cqrs_record_set_text(s, &r, "count", "010"), 0);
	assert_int_equal(r.count, 10); /* not octal */
	assert_int_equal(cqrs_record_set_text(s, &r, "delta", "-0"), 0);
	assert_int_equal(r.delta, 0);

	/* out of range: named as such, with the field's bounds */
	assert_int_equal(cqrs_record_set_text(s, &r, "flags", "256"), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "out of range (0..255)"));
	assert_int_equal(cqrs_record_set_text(s, &r, "flags", "-1"), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "out of range"));
	assert_int_equal(cqrs_record_set_text(s, &r, "tiny", "128"), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "out of range (-128..127)"));
	assert_int_equal(cqrs_record_set_text(s, &r, "id", "18446744073709551616"), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "out of range"));
	assert_int_equal(cqrs_record_set_text(s, &r, "total", "-9223372036854775809"), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "out of range"));
	assert_int_equal(cqrs_record_set_text(s, &r, "total", "-9223372036854775808"), 0);
	assert_true(r.total == INT64_MIN);
	assert_int_equal(cqrs_record_set_text(s, &r, "total", "9223372036854775808"), CQRS_ETYPE);
	assert_int_equal(cqrs_record_set_text(s, &r, "price", "1e999"), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "out of range"));
	assert_int_equal(cqrs_record_set_text(s, &r, "price", " 1"), CQRS_ETYPE);
	v.type = CQRS_FT_I64; v.v.i = -1;
	assert_int_equal(cqrs_record_set(s, &r, cqrs_schema_field(s, "kind"), &v), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "out of range (0..65535)"));
	v.type = CQRS_FT_U64; v.v.u = 2;
	assert_int_equal(cqrs_record_set(s, &r, cqrs_schema_field(s, "active"), &v), CQRS_ETYPE);
	assert_non_null(strstr(cqrs_last_error(), "out of range (0..1)"));
}

static void test_json(void **state)
{
	const cqrs_schema *s = sample_schema();
	sample r;
	char out[1024], small[16];
	(void)state;
	memset(&r, 0, sizeof r);
	r.id = 42; r.delta = -7; r.price = 1.5; r.active = true; r.at = 1000;
	strcpy(r.name, "a\"b\\c\n");
	r.digest[0] = 0xab;
	int n = cqrs_record_to_json(s, &r, out, sizeof out);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(out));
	assert_non_null(strstr(out, "\"id\":42"));
	assert_non_null(strstr(out, "\"delta\":-7"));
	assert_non_null(strstr(out, "\"price\":1.5"));
	assert_non_null(strstr(out, "\"active\":true"));
	assert_non_null(strstr(out, "\"name\":\"a\\\"b\\\\c\\u000a\""));
	assert_non_null(strstr(out, "\"digest\":\"ab00000000000000\""));
	/* valid UTF-8 passes through; invalid bytes are escaped */
	strcpy(r.name, "Zo\xc3\xab\xff");
	assert_true(cqrs_record_to_json(s, &r, out, sizeof out) > 0);
	assert_non_null(strstr(out, "\"name\":\"Zo\xc3\xab\\u00ff\""));
	assert_int_equal(cqrs_record_to_json(s, &r, small, sizeof small), -ENOSPC);
	assert_int_equal(strlen(small), sizeof small - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptor_matches_struct),
		cmocka_unit_test(test_hash_stable),
		cmocka_unit_test(test_blob_round_trip),
		cmocka_unit_test(test_blob_malformed),
		cmocka_unit_test(test_validate_rejects),
		cmocka_unit_test(test_field_access),
		cmocka_unit_test(test_field_values_refused),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
