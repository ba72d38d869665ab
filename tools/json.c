/*
 * tools/json.c - the HTTP gateway's JSON object parser (tools/json.h):
 * recursive descent over one flat object, strings decoded into one arena
 * (a decoded string is never longer than its source, so the arena is the
 * input's size plus a NUL per key and value).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/json.h"

typedef struct parser {
	const unsigned char *p, *start, *end;
	char *arena;
	size_t used, cap;
	char *why;
	size_t why_cap;
} parser;

static int fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *ps, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(ps->why, ps->why_cap, "bad JSON at byte %zu: %s", (size_t)(ps->p - ps->start), msg);
	return -1;
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static void put(parser *ps, unsigned char c)
{
	/* cap is sized so that this never overflows (see the file comment) */
	if (ps->used < ps->cap)
		ps->arena[ps->used++] = (char)c;
}

static int hex4(parser *ps, uint32_t *out)
{
	uint32_t v = 0;

	if (ps->end - ps->p < 4)
		return fail(ps, "short \\u escape");
	for (int i = 0; i < 4; i++) {
		unsigned char c = ps->p[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
		else return fail(ps, "bad hex digit in \\u escape");
	}
	ps->p += 4;
	*out = v;
	return 0;
}

static void put_utf8(parser *ps, uint32_t cp)
{
	if (cp < 0x80) {
		put(ps, (unsigned char)cp);
	} else if (cp < 0x800) {
		put(ps, (unsigned char)(0xc0 | cp >> 6));
		put(ps, (unsigned char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		put(ps, (unsigned char)(0xe0 | cp >> 12));
		put(ps, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		put(ps, (unsigned char)(0x80 | (cp & 0x3f)));
	} else {
		put(ps, (unsigned char)(0xf0 | cp >> 18));
		put(ps, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
		put(ps, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		put(ps, (unsigned char)(0x80 | (cp & 0x3f)));
	}
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t len, n = (size_t)(end - p);
	uint32_t cp;

	if (p[0] < 0x80) return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) { len = 2; cp = p[0] & 0x1f; }
	else if (p[0] >= 0xe0 && p[0] <= 0xef) { len = 3; cp = p[0] & 0x0f; }
	else if (p[0] >= 0xf0 && p[0] <= 0xf4) { len = 4; cp = p[0] & 0x07; }
	else return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A string at ps->p (on its opening quote), decoded into the arena:
 * *out its start, *len its length (a NUL is appended). */
static int string(parser *ps, char **out, size_t *len)
{
	size_t begin = ps->used;

	ps->p++;
	for (;;) {
		unsigned char c;
		if (ps->p >= ps->end)
			return fail(ps, "unterminated string");
		c = *ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20)
			return fail(ps, "control character in a string (escape it)");
		if (c == '\\') {
			uint32_t cp, lo;
			if (ps->end - ps->p < 2)
				return fail(ps, "unterminated escape");
			c = ps->p[1];
			ps->p += 2;
			switch (c) {
			case '"': case '\\': case '/': put(ps, c); break;
			case 'b': put(ps, '\b'); break;
			case 'f': put(ps, '\f'); break;
			case 'n': put(ps, '\n'); break;
			case 'r': put(ps, '\r'); break;
			case 't': put(ps, '\t'); break;
			case 'u':
				if (hex4(ps, &cp))
					return -1;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return fail(ps, "lone low surrogate");
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
						return fail(ps, "lone high surrogate");
					ps->p += 2;
					if (hex4(ps, &lo))
						return -1;
					if (lo < 0xdc00 || lo > 0xdfff)
						return fail(ps, "high surrogate without its low half");
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				put_utf8(ps, cp);
				break;
			default:
				ps->p--;
				return fail(ps, "unknown escape \\%c", c >= 0x20 && c < 0x7f ? c : '?');
			}
			continue;
		}
		{
			size_t u = utf8_len(ps->p, ps->end);
			if (!u)
				return fail(ps, "invalid UTF-8");
			for (size_t i = 0; i < u; i++)
				put(ps, ps->p[i]);
			ps->p += u;
		}
	}
	*len = ps->used - begin;
	put(ps, 0);
	*out = ps->arena + begin;
	return 0;
}

/* A number per RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int number(parser *ps, char **out, size_t *len)
{
	const unsigned char *s = ps->p;
	size_t begin = ps->used;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
		return fail(ps, "expected a digit");
	if (*ps->p == '0')
		ps->p++;
	else
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "expected a digit after '.'");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "expected a digit in the exponent");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	for (const unsigned char *q = s; q < ps->p; q++)
		put(ps, *q);
	*len = ps->used - begin;
	put(ps, 0);
	*out = ps->arena + begin;
	return 0;
}

static int literal(parser *ps, const char *word, char **out, size_t *len)
{
	size_t n = strlen(word), begin = ps->used;

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return fail(ps, "unexpected '%c'", *ps->p >= 0x20 && *ps->p < 0x7f ? *ps->p : '?');
	ps->p += n;
	for (size_t i = 0; i <= n; i++)
		put(ps, (unsigned char)word[i]);
	*len = n;
	*out = ps->arena + begin;
	return 0;
}

static int member_value(parser *ps, tool_json_member *m)
{
	unsigned char c;

	if (ps->p >= ps->end)
		return fail(ps, "expected a value");
	c = *ps->p;
	if (c == '"') {
		m->kind = TOOL_JSON_STRING;
		return string(ps, &m->text, &m->len);
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		m->kind = TOOL_JSON_NUMBER;
		return number(ps, &m->text, &m->len);
	}
	if (c == 't' || c == 'f') {
		m->kind = TOOL_JSON_BOOL;
		return literal(ps, c == 't' ? "true" : "false", &m->text, &m->len);
	}
	if (c == '{' || c == '[')
		return fail(ps, "field '%.40s': nested objects and arrays are not fields", m->key);
	if (c == 'n')
		return fail(ps, "field '%.40s': null is not a value (leave the field out)", m->key);
	return fail(ps, "unexpected '%c'", c >= 0x20 && c < 0x7f ? c : '?');
}

int tool_json_parse_object(const char *buf, size_t len, tool_json_object *out, char *why,
			   size_t why_cap)
{
	parser ps = { (const unsigned char *)buf, (const unsigned char *)buf,
		      (const unsigned char *)buf + len, NULL, 0, 0, why, why_cap };

	memset(out, 0, sizeof *out);
	ps.cap = len + 2 * TOOL_JSON_MAX_MEMBERS + 2;
	ps.arena = malloc(ps.cap);
	if (!ps.arena) {
		snprintf(why, why_cap, "out of memory");
		return -1;
	}
	skip_ws(&ps);
	if (ps.p >= ps.end) {
		fail(&ps, "empty body: want a JSON object of the command's fields");
		goto bad;
	}
	if (*ps.p != '{') {
		fail(&ps, "want a JSON object of the command's fields");
		goto bad;
	}
	ps.p++;
	skip_ws(&ps);
	if (ps.p < ps.end && *ps.p == '}') {
		ps.p++;
	} else {
		for (;;) {
			tool_json_member *m;
			size_t klen;

			skip_ws(&ps);
			if (ps.p >= ps.end || *ps.p != '"') {
				fail(&ps, "expected a key string");
				goto bad;
			}
			if (out->n == TOOL_JSON_MAX_MEMBERS) {
				fail(&ps, "more than %u members", TOOL_JSON_MAX_MEMBERS);
				goto bad;
			}
			m = &out->m[out->n];
			if (string(&ps, &m->key, &klen))
				goto bad;
			if (strlen(m->key) != klen) {
				fail(&ps, "a key holds \\u0000");
				goto bad;
			}
			for (unsigned i = 0; i < out->n; i++)
				if (!strcmp(out->m[i].key, m->key)) {
					fail(&ps, "key '%.40s' given twice", m->key);
					goto bad;
				}
			skip_ws(&ps);
			if (ps.p >= ps.end || *ps.p != ':') {
				fail(&ps, "expected ':'");
				goto bad;
			}
			ps.p++;
			skip_ws(&ps);
			if (member_value(&ps, m))
				goto bad;
			out->n++;
			skip_ws(&ps);
			if (ps.p < ps.end && *ps.p == ',') {
				ps.p++;
				continue;
			}
			if (ps.p < ps.end && *ps.p == '}') {
				ps.p++;
				break;
			}
			fail(&ps, "expected ',' or '}'");
			goto bad;
		}
	}
	skip_ws(&ps);
	if (ps.p != ps.end) {
		fail(&ps, "bytes after the object");
		goto bad;
	}
	out->arena = ps.arena;
	return 0;
bad:
	free(ps.arena);
	memset(out, 0, sizeof *out);
	return -1;
}

void tool_json_free(tool_json_object *o)
{
	free(o->arena);
	o->arena = NULL;
	o->n = 0;
}
