/*
 * tools/json.h - a strict parser for the one JSON shape the HTTP gateway
 * takes: a flat object whose values are strings, numbers, true or false
 * (a command's fields, POST /commands/<Type>). RFC 8259 grammar; nested
 * objects and arrays, null, duplicate keys, trailing bytes, invalid UTF-8
 * and lone surrogates are refused with a message naming the byte offset.
 */
#ifndef CQRS_TOOLS_JSON_H
#define CQRS_TOOLS_JSON_H

#include <stddef.h>

#define TOOL_JSON_MAX_MEMBERS 64 /* = CQRS_SCHEMA_MAX_FIELDS: one per field */

enum tool_json_kind { TOOL_JSON_STRING = 1, TOOL_JSON_NUMBER, TOOL_JSON_BOOL };

typedef struct tool_json_member {
	char *key;   /* decoded, NUL-terminated (a key holding \u0000 is refused) */
	enum tool_json_kind kind;
	char *text;  /* STRING: decoded bytes (NUL-terminated, may hold NULs: see len);
		      * NUMBER: the number's text as written; BOOL: "true"/"false" */
	size_t len;  /* bytes in text */
} tool_json_member;

typedef struct tool_json_object {
	unsigned n;
	tool_json_member m[TOOL_JSON_MAX_MEMBERS];
	char *arena; /* one allocation holding every key and text */
} tool_json_object;

/* Parses len bytes of buf as one JSON object into *out. Returns 0, or -1
 * with a message in why (why_cap bytes) and nothing to free. On 0, free
 * with tool_json_free. O(len). */
int tool_json_parse_object(const char *buf, size_t len, tool_json_object *out, char *why,
			   size_t why_cap);

void tool_json_free(tool_json_object *o);

#endif
