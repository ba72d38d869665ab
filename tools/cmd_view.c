/*
 * tools/cmd_view.c - `cqrs view get|find|dump`: reads a view through the
 * public reader API and decodes rows through the schema stored in the
 * view's segment (no application headers needed). Keys and values are
 * parsed as the field's type (cqrs_record_set_text): integers in decimal
 * only, f64, bool, str, bytes as hex.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "cqrs_view.h"

#define JSON_MAX (1 << 20)

static const char view_usage[] =
	"usage: cqrs view get ENGINE VIEW KEY\n"
	"       cqrs view find ENGINE VIEW FIELD VALUE [--snapshot] [--json]\n"
	"       cqrs view dump ENGINE VIEW [--json]\n";

typedef struct out_ctx {
	const cqrs_schema *s;
	int json;
	char *buf;
} out_ctx;

/* Parses text as field `name` of schema s into key (the field's bytes). */
static int parse_key(const cqrs_schema *s, const char *name, const char *text, uint8_t *key,
		     size_t *keylen)
{
	const cqrs_field *f = cqrs_schema_field(s, name);
	uint8_t *rec;
	int rc;

	if (!f)
		return CQRS_ENOTFOUND;
	rec = calloc(1, s->size);
	if (!rec)
		return -ENOMEM;
	rc = cqrs_record_set_text(s, rec, name, text);
	if (!rc) {
		memcpy(key, rec + f->offset, f->size);
		*keylen = f->size;
	}
	free(rec);
	return rc;
}

static void put_text(const cqrs_schema *s, const void *row, const cqrs_field *f)
{
	cqrs_value v;

	if (cqrs_record_get(s, row, f, &v)) {
		fputs("?", stdout);
		return;
	}
	switch (f->type) {
	case CQRS_FT_BOOL: fputs(v.v.u ? "true" : "false", stdout); break;
	case CQRS_FT_F64: printf("%.17g", v.v.f); break;
	case CQRS_FT_I8: case CQRS_FT_I16: case CQRS_FT_I32: case CQRS_FT_I64: case CQRS_FT_TS:
		printf("%" PRId64, v.v.i);
		break;
	case CQRS_FT_STR:
		for (size_t i = 0; i < v.v.b.len; i++) {
			unsigned char c = ((const unsigned char *)v.v.b.ptr)[i];
			if (c < 0x20 || c == 0x7f || c == '\\')
				printf("\\x%02x", c);
			else
				putchar(c);
		}
		break;
	case CQRS_FT_BYTES:
		for (size_t i = 0; i < v.v.b.len; i++)
			printf("%02x", ((const uint8_t *)v.v.b.ptr)[i]);
		break;
	default: printf("%" PRIu64, v.v.u); break;
	}
}

static void put_header(const cqrs_schema *s)
{
	for (uint32_t i = 0; i < s->nfields; i++)
		printf("%s%s", i ? "\t" : "", s->fields[i].name);
	putchar('\n');
}

static int put_row(void *arg, const void *row, size_t size)
{
	out_ctx *o = arg;
	(void)size;

	if (o->json) {
		if (cqrs_record_to_json(o->s, row, o->buf, JSON_MAX) < 0)
			return 1;
		puts(o->buf);
		return 0;
	}
	for (uint32_t i = 0; i < o->s->nfields; i++) {
		if (i)
			putchar('\t');
		put_text(o->s, row, &o->s->fields[i]);
	}
	putchar('\n');
	return 0;
}

static int has_flag(int argc, char **argv, const char *flag)
{
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], flag))
			return 1;
	return 0;
}

int cqrs_cmd_view(int argc, char **argv)
{
	cqrs_view *v;
	cqrs_view_info info;
	out_ctx o = { 0 };
	uint8_t key[64];
	size_t keylen = 0;
	const char *sub;
	int rc, status = 0;

	if (argc < 4) {
		fputs(view_usage, stderr);
		return 2;
	}
	sub = argv[1];
	if (strcmp(sub, "get") && strcmp(sub, "find") && strcmp(sub, "dump")) {
		fputs(view_usage, stderr);
		return 2;
	}
	if ((!strcmp(sub, "get") && argc != 5) || (!strcmp(sub, "find") && argc < 6)) {
		fputs(view_usage, stderr);
		return 2;
	}
	rc = cqrs_view_open(argv[2], argv[3], &v);
	if (rc)
		return tool_fail("view open", rc);
	cqrs_view_stat(v, &info);
	o.s = cqrs_view_schema(v);
	o.buf = malloc(JSON_MAX);
	if (!o.buf) {
		cqrs_view_close(v);
		return tool_fail("view", -ENOMEM);
	}
	if (!strcmp(sub, "get")) {
		void *row = malloc(info.row_size);
		o.json = 1;
		rc = row ? parse_key(o.s, info.key_field, argv[4], key, &keylen) : -ENOMEM;
		if (!rc)
			rc = cqrs_view_get(v, key, keylen, row, info.row_size);
		if (!rc)
			put_row(&o, row, info.row_size);
		else
			status = tool_fail(rc == CQRS_ENOTFOUND ? "view get: no such key" : "view get", rc);
		free(row);
	} else if (!strcmp(sub, "find")) {
		o.json = has_flag(argc - 6, argv + 6, "--json");
		rc = CQRS_ENOTFOUND;
		for (uint32_t i = 0; i < info.nsecondary; i++)
			if (!strcmp(info.secondary[i], argv[4]))
				rc = 0;
		if (!rc)
			rc = parse_key(o.s, argv[4], argv[5], key, &keylen);
		if (!o.json && rc == 0)
			put_header(o.s);
		if (!rc)
			rc = cqrs_view_find(v, argv[4], key, keylen, put_row, &o,
					    has_flag(argc - 6, argv + 6, "--snapshot") ? CQRS_FIND_SNAPSHOT : 0);
		if (rc < 0)
			status = tool_fail(rc == CQRS_ENOTFOUND ? "view find: field not indexed"
								: "view find", rc);
	} else {
		o.json = has_flag(argc - 4, argv + 4, "--json");
		if (!o.json)
			put_header(o.s);
		rc = cqrs_view_scan(v, put_row, &o, 0);
		if (rc < 0)
			status = tool_fail("view dump", rc);
	}
	fflush(stdout);
	free(o.buf);
	cqrs_view_close(v);
	return status;
}
