/*
 * cqrs_schema.h - one schema system for commands, events and view rows.
 *
 * Overview
 *   A record is a fixed-layout C struct (SBE-like). It is defined once, as a
 *   field-list macro, and from that one definition come both the C struct
 *   and a runtime descriptor (cqrs_schema: record name, total size and each
 *   field's name, type, offset and size). Descriptors travel with the data:
 *   they are serialized into journal segment headers and shared-memory
 *   segments, so tools and bindings decode any record without the
 *   application's headers.
 *
 *       #define ORDER_CREATED_FIELDS(F)           \
 *           F(u64, order_id)                      \
 *           F(u64, customer_id)                   \
 *           F(u32, item_count)                    \
 *           F(u32, pad0)                          \
 *           F(i64, total)                         \
 *           F(str, shipping_address, 64)
 *       CQRS_RECORD(order_created, "OrderCreated", ORDER_CREATED_FIELDS)
 *
 *   gives `typedef struct order_created {...} order_created;` and
 *   `const cqrs_schema *order_created_schema(void)`. (Or the split form:
 *   CQRS_RECORD_DECLARE in a header, CQRS_RECORD_DEFINE in one .c file.)
 *
 *   Field types: u8 u16 u32 u64 i8 i16 i32 i64 f64 bool ts (timestamp, ns
 *   since the epoch, int64) and the fixed-size arrays str (char[N], NUL
 *   padded, not necessarily NUL terminated when full) and bytes (uint8_t[N]).
 *   The layout is the C struct's own: no hidden conversion, no reordering.
 *   Gaps between fields (compiler padding) are allowed and carry no data.
 *
 *   The schema hash is XXH3-64 over a canonical form (record name, size,
 *   then for each field in order: name, type, offset, size). It is stable
 *   across runs, machines and compilers that give the same layout, and it
 *   changes whenever anything that affects decoding changes.
 *
 * Caveats
 *   - Names are at most CQRS_NAME_MAX-1 bytes of [A-Za-z0-9_], at most
 *     CQRS_SCHEMA_MAX_FIELDS fields per record, records at most
 *     CQRS_RECORD_MAX bytes.
 *   - The descriptor does not record byte order: records are host-endian
 *     (all supported hosts are little-endian).
 */
#ifndef CQRS_SCHEMA_H
#define CQRS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cqrs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CQRS_NAME_MAX 32
#define CQRS_SCHEMA_MAX_FIELDS 64
#define CQRS_RECORD_MAX 65536

typedef enum cqrs_ftype {
	CQRS_FT_U8 = 1,
	CQRS_FT_U16 = 2,
	CQRS_FT_U32 = 3,
	CQRS_FT_U64 = 4,
	CQRS_FT_I8 = 5,
	CQRS_FT_I16 = 6,
	CQRS_FT_I32 = 7,
	CQRS_FT_I64 = 8,
	CQRS_FT_F64 = 9,
	CQRS_FT_BOOL = 10,
	CQRS_FT_STR = 11,
	CQRS_FT_BYTES = 12,
	CQRS_FT_TS = 13,
	CQRS_FT_MAX = 13
} cqrs_ftype;

typedef struct cqrs_field {
	char name[CQRS_NAME_MAX];
	uint32_t offset;
	uint32_t size;
	uint8_t type; /* cqrs_ftype */
	uint8_t reserved[7];
} cqrs_field;

typedef struct cqrs_schema {
	char name[CQRS_NAME_MAX];
	uint32_t size;    /* sizeof the record */
	uint32_t nfields;
	cqrs_field fields[CQRS_SCHEMA_MAX_FIELDS];
} cqrs_schema;

/* ---- definition macros ------------------------------------------------ */

#define CQRS__CT_u8 uint8_t
#define CQRS__CT_u16 uint16_t
#define CQRS__CT_u32 uint32_t
#define CQRS__CT_u64 uint64_t
#define CQRS__CT_i8 int8_t
#define CQRS__CT_i16 int16_t
#define CQRS__CT_i32 int32_t
#define CQRS__CT_i64 int64_t
#define CQRS__CT_f64 double
#define CQRS__CT_bool bool
#define CQRS__CT_ts int64_t
#define CQRS__CT_str char
#define CQRS__CT_bytes uint8_t

#define CQRS__FT_u8 CQRS_FT_U8
#define CQRS__FT_u16 CQRS_FT_U16
#define CQRS__FT_u32 CQRS_FT_U32
#define CQRS__FT_u64 CQRS_FT_U64
#define CQRS__FT_i8 CQRS_FT_I8
#define CQRS__FT_i16 CQRS_FT_I16
#define CQRS__FT_i32 CQRS_FT_I32
#define CQRS__FT_i64 CQRS_FT_I64
#define CQRS__FT_f64 CQRS_FT_F64
#define CQRS__FT_bool CQRS_FT_BOOL
#define CQRS__FT_ts CQRS_FT_TS
#define CQRS__FT_str CQRS_FT_STR
#define CQRS__FT_bytes CQRS_FT_BYTES

/* Array dimension: empty for scalars, [N] for str and bytes. */
#define CQRS__DIM_u8(...)
#define CQRS__DIM_u16(...)
#define CQRS__DIM_u32(...)
#define CQRS__DIM_u64(...)
#define CQRS__DIM_i8(...)
#define CQRS__DIM_i16(...)
#define CQRS__DIM_i32(...)
#define CQRS__DIM_i64(...)
#define CQRS__DIM_f64(...)
#define CQRS__DIM_bool(...)
#define CQRS__DIM_ts(...)
#define CQRS__DIM_str(n) [n]
#define CQRS__DIM_bytes(n) [n]

#define CQRS__STRUCT_FIELD(t, fname, ...) CQRS__CT_##t fname CQRS__DIM_##t(__VA_ARGS__);
#define CQRS__COUNT_FIELD(...) 1 +
/* Reads the struct through the block-scope typedef cqrs__cur (see below). */
#define CQRS__SCHEMA_FIELD(t, fname, ...)                                    \
	{ #fname, (uint32_t)offsetof(cqrs__cur, fname),                      \
	  (uint32_t)sizeof(((cqrs__cur *)0)->fname), CQRS__FT_##t, { 0 } },

/* typedef struct S { ...fields... } S; */
#define CQRS_RECORD_STRUCT(S, FIELDS) \
	typedef struct S { FIELDS(CQRS__STRUCT_FIELD) } S;

/* const cqrs_schema *S_schema(void): the descriptor, a static constant.
 * The per-field macro cannot be told the struct's name, so the function
 * body gives it one through a block-scope typedef. */
#define CQRS__SCHEMA_FN(S, label, FIELDS)                                    \
	const cqrs_schema *S##_schema(void)                                  \
	{                                                                    \
		typedef S cqrs__cur;                                         \
		static const cqrs_schema desc = {                            \
			label, (uint32_t)sizeof(S),                          \
			FIELDS(CQRS__COUNT_FIELD) 0,                         \
			{ FIELDS(CQRS__SCHEMA_FIELD) }                       \
		};                                                           \
		return &desc;                                                \
	}

/* Header-only form: the struct plus a static inline S_schema(). */
#define CQRS_RECORD(S, label, FIELDS)                                        \
	CQRS_RECORD_STRUCT(S, FIELDS)                                        \
	static inline CQRS__SCHEMA_FN(S, label, FIELDS)

/* Split form: CQRS_RECORD_DECLARE in a header, CQRS_RECORD_DEFINE in one .c. */
#define CQRS_RECORD_DECLARE(S, FIELDS)                                       \
	CQRS_RECORD_STRUCT(S, FIELDS)                                        \
	const cqrs_schema *S##_schema(void);
#define CQRS_RECORD_DEFINE(S, label, FIELDS) CQRS__SCHEMA_FN(S, label, FIELDS)

/* ---- descriptor API ---------------------------------------------------- */

/* Validates a descriptor: names, field types and sizes, bounds, no overlap.
 * Returns 0 or CQRS_EFORMAT (with cqrs_last_error() naming the problem). */
CQRS_API int cqrs_schema_validate(const cqrs_schema *s);

/* Stable 64-bit hash of the canonical form (see the overview). */
CQRS_API uint64_t cqrs_schema_hash(const cqrs_schema *s);

/* The field named name, or NULL. O(nfields). */
CQRS_API const cqrs_field *cqrs_schema_field(const cqrs_schema *s, const char *name);

/* Name of a field type ("u64", "str", ...), or "?" for an unknown one. */
CQRS_API const char *cqrs_ftype_name(int type);

/* Serialized size of s as a blob (cqrs_schema_encode writes exactly this). */
CQRS_API size_t cqrs_schema_blob_size(const cqrs_schema *s);

/* Writes s as a compact, versioned, checksummed blob into buf.
 * Returns the number of bytes written, -ENOSPC if cap is too small,
 * CQRS_EFORMAT if s is not valid. */
CQRS_API int cqrs_schema_encode(const cqrs_schema *s, void *buf, size_t cap);

/* Parses a blob of len bytes into *out, validating everything: magic,
 * version, lengths, checksum, names, types, sizes, bounds and overlaps.
 * Never reads outside [blob, blob+len). Returns the number of bytes the blob
 * occupies (<= len) or CQRS_EFORMAT. */
CQRS_API int cqrs_schema_decode(const void *blob, size_t len, cqrs_schema *out);

/* ---- record access by field name --------------------------------------- */

typedef struct cqrs_value {
	int type; /* cqrs_ftype of the field it came from */
	union {
		uint64_t u;  /* u8..u64, bool */
		int64_t i;   /* i8..i64, ts */
		double f;    /* f64 */
		struct {
			const void *ptr; /* into the record (get) or caller's (set) */
			size_t len;      /* str: length up to the first NUL */
		} b;
	} v;
} cqrs_value;

/* Reads field f of record rec (of s->size bytes) into *out. */
CQRS_API int cqrs_record_get(const cqrs_schema *s, const void *rec, const cqrs_field *f,
			     cqrs_value *out);

/* Writes *val into field f of rec. Integers are range-checked (CQRS_ETYPE);
 * strings and bytes longer than the field give CQRS_ETYPE; shorter ones are
 * NUL/zero padded. A value for a str field must not hold a NUL byte
 * (CQRS_ETYPE: the field ends at its first NUL, so "a\0b" would read back
 * as "a"); a bytes field takes any bytes. val->type may be U64, I64 or F64
 * for any numeric field (converted when exact), STR or BYTES for array
 * fields. On CQRS_ETYPE, cqrs_last_error() names the field and the reason
 * (out of range with the field's bounds, too long, NUL, wrong kind). */
CQRS_API int cqrs_record_set(const cqrs_schema *s, void *rec, const cqrs_field *f,
			     const cqrs_value *val);

/* Parses text for field `name` and stores it (CLI and bindings): integers
 * in decimal only (an optional '-', then digits: no spaces, '+', 0x hex or
 * octal), f64 as strtod reads it (no leading space), bool as
 * true/false/1/0, str as is, bytes as hex. Returns 0, CQRS_ENOTFOUND (no
 * such field) or CQRS_ETYPE (not of the field's kind, or out of its range;
 * cqrs_last_error() says which). */
CQRS_API int cqrs_record_set_text(const cqrs_schema *s, void *rec, const char *name,
				  const char *text);

/* Decodes a record to one line of JSON: {"field":value,...}. Writes at most
 * cap bytes including the NUL. Returns the length (excluding NUL) or
 * -ENOSPC if cap is too small (buf then holds a truncated, NUL-terminated
 * prefix). Strings are JSON-escaped; bytes are hex strings; u64 values above
 * 2^53 are still written as exact integers. */
CQRS_API int cqrs_record_to_json(const cqrs_schema *s, const void *rec, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* CQRS_SCHEMA_H */
