/*
 * tools/cmd_view.c - `cqrs view get|find|range|dump`: reads a view through the
 * public reader API and decodes rows through the schema stored in the
 * view's segment (no application headers needed). Keys and values are
 * parsed as the field's type (cqrs_record_set_text): integers in decimal
 * only, f64, bool, str, bytes as hex. A field `find` cannot use, or a view
 * the engine does not have, is named with the ones it does have.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "cqrs_view.h"

#define JSON_MAX (1 << 20)

static const char view_help_text[] =
	"usage: cqrs view get ENGINE VIEW KEY [--json]\n"
	"       cqrs view find ENGINE VIEW FIELD VALUE [--snapshot] [--json]\n"
	"       cqrs view range ENGINE VIEW FIELD LO HI [--desc] [--limit N] [--snapshot] [--json]\n"
	"       cqrs view dump ENGINE VIEW [--snapshot] [--json]\n"
	"\n"
	"get   the row whose key is KEY, as one JSON object\n"
	"find  the rows whose indexed FIELD equals VALUE\n"
	"range the rows of the ordered index FIELD (its first field, or all its\n"
	"      fields joined by ',') with LO <= key < HI, in key order; LO and HI\n"
	"      are the index fields' values joined by ',' (a prefix: the first\n"
	"      fields only), or \"\" for an open end\n"
	"dump  every row\n"
	"\n"
	"Rows print tab-separated under a header line, or one JSON object per line\n"
	"with --json. KEY and VALUE are parsed as the field's type: integers in\n"
	"decimal only, f64, bool (true/false/1/0), str, bytes as hex. A negative\n"
	"number is taken as a value; put -- before any other value that starts\n"
	"with '-'.\n"
	"  --snapshot  find, dump: the rows as of one batch boundary (one consistent\n"
	"              state, buffered; retried while the engine writes) instead of\n"
	"              rows each consistent on its own\n"
	"  --desc      range: from HI down to LO\n"
	"  --limit N   range: at most N rows\n"
	"  --json      one JSON object per row\n"
	"Exit 1 when the engine, view, key or field does not exist.\n";

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

/* "a, b, c" of the view's secondary index fields, or "none". */
static void indexed_list(const cqrs_view_info *info, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = 0;
	for (uint32_t i = 0; i < info->nsecondary && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", info->secondary[i]);
	if (!info->nsecondary)
		snprintf(buf, cap, "none");
}

/* Why `find` cannot use field (1), or 0 when it is indexed. */
static int check_indexed(const cqrs_view_info *info, const cqrs_schema *s, const char *field)
{
	char list[CQRS_VIEW_MAX_SECONDARY * (CQRS_NAME_MAX + 2) + 8];

	for (uint32_t i = 0; i < info->nsecondary; i++)
		if (!strcmp(info->secondary[i], field))
			return 0;
	indexed_list(info, list, sizeof list);
	if (cqrs_schema_field(s, field))
		fprintf(stderr, "cqrs: view find: field '%s' of %s is not indexed (indexed fields: %s)\n",
			field, info->name, list);
	else
		fprintf(stderr, "cqrs: view find: %s has no field '%s' (indexed fields: %s)\n",
			info->name, field, list);
	return 1;
}

static int stop_at_first(void *arg, const void *row, size_t size)
{
	(void)arg;
	(void)row;
	(void)size;
	return 1;
}

/* Parses "v1,v2,..." as the ordered index's first values into key (the
 * fields' bytes one after the other). 0, TOOL_EXIT_USAGE (too many values,
 * said on stderr), or a library code. */
static int parse_ordered_key(cqrs_view *v, const char *text, uint8_t *key, size_t *keylen)
{
	const char *fields[8];
	const cqrs_schema *s = cqrs_view_schema(v);
	int n = cqrs_view_ordered(v, fields, 8), rc = 0;
	char *copy = strdup(text), *save = NULL, *tok;
	size_t len = 0;

	if (!copy)
		return -ENOMEM;
	tok = strtok_r(copy, ",", &save);
	for (int i = 0; tok && !rc; i++, tok = strtok_r(NULL, ",", &save)) {
		size_t fl;
		if (i >= n) {
			fprintf(stderr, "cqrs: view range: '%s' has more values than the index has fields "
					"(%d)\n", text, n);
			rc = TOOL_EXIT_USAGE;
			break;
		}
		rc = parse_key(s, fields[i], tok, key + len, &fl);
		len += fl;
	}
	free(copy);
	*keylen = len;
	return rc;
}

/* Opens engine's view; when there is no such view, says which there are. */
static int open_view(const char *engine, const char *name, cqrs_view **v)
{
	cqrs_view_entry e[64];
	int rc = cqrs_view_open(engine, name, v), n;

	if (!rc)
		return 0;
	if (rc != CQRS_ENOTFOUND || (n = cqrs_view_list(engine, e, 64)) < 0)
		return tool_fail(engine, rc);
	fprintf(stderr, "cqrs: engine %s has no view '%s'%s", engine, name, n ? " (views:" : "");
	for (int i = 0; i < n && i < 64; i++)
		fprintf(stderr, "%s %s%s", i ? "," : "", e[i].name, e[i].generation ? "" : " (not published)");
	fprintf(stderr, "%s\n", n ? ")" : "");
	return TOOL_EXIT_FAIL;
}

int cqrs_cmd_view(int argc, char **argv)
{
	static const char *subs[] = { "get", "find", "dump", "range" };
	static const int npos[] = { 3, 4, 2, 5 };
	tool_cmd_help h = { "view", view_help_text };
	cqrs_view *v;
	cqrs_view_info info;
	out_ctx o = { 0 };
	uint8_t key[64];
	size_t keylen = 0;
	char *pos[5];
	uint64_t limit = 0;
	int rc, status = 0, json = 0, snapshot = 0, desc = 0, sub, n;
	tool_opt opts[] = { { "--json", TOOL_OPT_FLAG, &json, 0, 0, NULL },
			    { "--snapshot", TOOL_OPT_FLAG, &snapshot, 0, 0, NULL },
			    { "--desc", TOOL_OPT_FLAG, &desc, 0, 0, NULL },
			    { "--limit", TOOL_OPT_U64, &limit, 1, 0, NULL },
			    { NULL } };
	char cmdname[16];

	if (argc < 2)
		return tool_usage_error(&h, "missing get, find, range or dump");
	if (tool_is_help(argv[1]))
		return tool_help(&h);
	for (sub = 0; sub < 4 && strcmp(argv[1], subs[sub]); sub++)
		;
	if (sub == 4)
		return tool_usage_error(&h, "unknown view command '%s'", argv[1]);
	snprintf(cmdname, sizeof cmdname, "view %s", subs[sub]);
	h.cmd = cmdname;
	if (sub == 0)
		opts[1].name = NULL; /* get reads one row: always consistent */
	else if (sub != 3)
		opts[2].name = NULL; /* --desc and --limit: range only */
	if ((rc = tool_args(&h, argc - 1, argv + 1, opts, npos[sub], npos[sub], pos, &n)) != TOOL_ARGS_OK)
		return rc;
	if ((rc = open_view(pos[0], pos[1], &v)))
		return rc;
	cqrs_view_stat(v, &info);
	o.s = cqrs_view_schema(v);
	o.json = json;
	o.buf = malloc(JSON_MAX);
	if (!o.buf) {
		cqrs_view_close(v);
		return tool_fail("view", -ENOMEM);
	}
	if (sub == 0) {
		void *row = malloc(info.row_size);
		o.json = 1;
		rc = row ? parse_key(o.s, info.key_field, pos[2], key, &keylen) : -ENOMEM;
		if (rc)
			status = tool_fail("view get: key", rc);
		else if ((rc = cqrs_view_get(v, key, keylen, row, info.row_size)))
			status = tool_fail(rc == CQRS_ENOTFOUND ? "view get: no such key" : "view get", rc);
		else
			put_row(&o, row, info.row_size);
		free(row);
	} else if (sub == 1) {
		status = check_indexed(&info, o.s, pos[2]);
		if (!status && (rc = parse_key(o.s, pos[2], pos[3], key, &keylen)))
			status = tool_fail("view find: value", rc);
		if (!status) {
			if (!o.json)
				put_header(o.s);
			rc = cqrs_view_find(v, pos[2], key, keylen, put_row, &o,
					    snapshot ? CQRS_FIND_SNAPSHOT : 0);
			if (rc < 0)
				status = tool_fail("view find", rc);
		}
	} else if (sub == 3) {
		uint8_t hi[64];
		size_t hilen = 0;
		const char *first[1];

		if (cqrs_view_ordered(v, first, 1) <= 0) {
			fprintf(stderr, "cqrs: view range: %s has no ordered index\n", info.name);
			status = TOOL_EXIT_FAIL;
		} else if (*pos[3] && (rc = parse_ordered_key(v, pos[3], key, &keylen))) {
			status = rc == TOOL_EXIT_USAGE ? TOOL_EXIT_FAIL : tool_fail("view range: LO", rc);
		} else if (*pos[4] && (rc = parse_ordered_key(v, pos[4], hi, &hilen))) {
			status = rc == TOOL_EXIT_USAGE ? TOOL_EXIT_FAIL : tool_fail("view range: HI", rc);
		} else if (cqrs_view_range(v, pos[2], NULL, 0, NULL, 0, 0, 1, stop_at_first, NULL) ==
			   CQRS_ENOTFOUND) { /* the index name, checked before the header prints */
			fprintf(stderr, "cqrs: view range: %s's ordered index is not '%s' (it starts with %s)\n",
				info.name, pos[2], first[0]);
			status = TOOL_EXIT_FAIL;
		} else {
			if (!o.json)
				put_header(o.s);
			rc = cqrs_view_range(v, pos[2], *pos[3] ? key : NULL, keylen, *pos[4] ? hi : NULL,
					     hilen, (desc ? CQRS_RANGE_DESC : 0) |
						     (snapshot ? CQRS_RANGE_SNAPSHOT : 0),
					     limit, put_row, &o);
			if (rc < 0)
				status = tool_fail("view range", rc);
		}
	} else {
		if (!o.json)
			put_header(o.s);
		rc = cqrs_view_scan(v, put_row, &o, snapshot ? CQRS_FIND_SNAPSHOT : 0);
		if (rc < 0)
			status = tool_fail("view dump", rc);
	}
	fflush(stdout);
	free(o.buf);
	cqrs_view_close(v);
	return status;
}
