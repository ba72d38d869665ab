/*
 * tools/http_gateway.c - commands and view reads over HTTP with JSON
 * (tools/http_gateway.h).
 *
 * Commands: POST /commands/<Type>, body a JSON object of the command's
 * fields (tools/json.c; fields left out are zero, as in `cqrs submit`),
 * query arguments aggregate_id, expected_version, client_seq. Each value
 * must be of its field's kind: a JSON string for str and bytes (hex)
 * fields, true/false for bool, a number for the numeric ones (integers in
 * decimal, exact to 64 bits, checked against the field's range by
 * cqrs_record_set). The answer is {"status","seq","reason"}: accepted 200,
 * duplicate 200 (the original's seq), rejected 422, conflict 409,
 * malformed 400; an engine that is not running 503, no answer within the
 * timeout 504.
 *
 * The command gateway client is one connection, shared by every HTTP
 * thread under a mutex (a cqrs_client is single-threaded): one connection
 * means one client id, so a client_seq a web client sends is deduplicated
 * whichever HTTP connection carries its retry (connections per thread would
 * give each thread its own dedup space, and a retry could run twice). The
 * mutex is held for one submit: a submit takes microseconds, and the
 * engine never blocks on this client (its replies are parked when it lags).
 * Reconnects after the engine restarted (a new client id: earlier
 * client_seqs are not remembered across it).
 *
 * Views: each HTTP thread keeps its own view handles (a cqrs_view is used
 * by one thread at a time), opened on first use and closed when the
 * thread ends; rows are read straight from shared memory, never through
 * the engine. min_seq (a query argument, or the Cqrs-Min-Seq header) makes
 * a read wait until the view has applied that seq (cqrs_view_wait), at
 * most max_wait_ms, then 504: a web client passes back the seq its command
 * returned and reads its own write.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cqrs_client.h"
#include "cqrs_view.h"
#include "tools/args.h"
#include "tools/http_gateway.h"
#include "tools/json.h"
#include "tools/log.h"
#include "tools/out.h"

#define SUBMIT_TIMEOUT_NS (10ull * 1000000000ull)
#define VIEW_CACHE 16
#define FIND_LIMIT_DEFAULT 1000
#define FIND_LIMIT_MAX 100000
#define JSON_TYPE "application/json"

struct tool_gateway {
	char engine[CQRS_NAME_MAX];
	uint64_t max_wait_ns;
	pthread_mutex_t mu; /* guards client */
	cqrs_client *client;
	pthread_key_t views; /* per-thread view_cache */
};

typedef struct view_ent {
	char name[CQRS_NAME_MAX];
	cqrs_view *v;
	uint64_t generation; /* info is of this generation */
	cqrs_view_info info;
} view_ent;

/* One HTTP thread's view handles and buffers (freed when the thread ends). */
typedef struct view_cache {
	unsigned n;
	view_ent e[VIEW_CACHE];
	char *json;    /* a row's JSON */
	size_t json_cap;
	uint8_t *row;  /* a row read by get */
	size_t row_cap;
} view_cache;

static void cache_free(void *p)
{
	view_cache *vc = p;

	for (unsigned i = 0; i < vc->n; i++)
		cqrs_view_close(vc->e[i].v);
	free(vc->json);
	free(vc->row);
	free(vc);
}

tool_gateway *tool_gateway_new(const char *engine, uint64_t max_wait_ms)
{
	tool_gateway *g = calloc(1, sizeof *g);

	if (!g)
		return NULL;
	snprintf(g->engine, sizeof g->engine, "%s", engine);
	g->max_wait_ns = max_wait_ms * 1000000;
	pthread_mutex_init(&g->mu, NULL);
	if (pthread_key_create(&g->views, cache_free)) {
		free(g);
		return NULL;
	}
	return g;
}

void tool_gateway_free(tool_gateway *g)
{
	view_cache *vc;

	if (!g)
		return;
	/* the HTTP threads have ended (their caches went with them); this one's */
	if ((vc = pthread_getspecific(g->views)))
		cache_free(vc);
	pthread_key_delete(g->views);
	cqrs_client_close(g->client);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* s with every byte that is not printable ASCII as '?' (for messages that
 * quote what a client sent: they stay valid JSON and one line). */
static const char *printable(const char *s, char *buf, size_t cap)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < cap; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = 0;
	return buf;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= CQRS_NAME_MAX)
		return 0;
	return s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")] == 0;
}

/* Parses query argument name as u64 into *out (absent: leaves it, 0).
 * 1 when given, -1 after answering 400. */
static int u64_arg(const tool_http_req *r, const char *name, const char *value, uint64_t *out)
{
	char why[96], shown[64];

	if (!value)
		return 0;
	if (tool_parse_u64(value, 0, UINT64_MAX, out, why, sizeof why)) {
		tool_http_error(r, 400, "%s '%s' %s", name, printable(value, shown, sizeof shown), why);
		return -1;
	}
	return 1;
}

/* ---- commands -------------------------------------------------------------- */

static void field_list(const cqrs_schema *s, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = 0;
	for (uint32_t i = 0; i < s->nfields && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s:%s", i ? ", " : "", s->fields[i].name,
				      cqrs_ftype_name(s->fields[i].type));
}

static void command_list(cqrs_client *c, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < cqrs_client_command_count(c) && n < cap; i++) {
		const cqrs_schema *s;
		if (!cqrs_client_command_at(c, i, NULL, &s))
			n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", s->name);
	}
}

/* Stores member m into field f of rec; answers 400 and returns -1 when the
 * value is not of the field's kind or does not fit. */
static int set_member(const tool_http_req *r, const cqrs_schema *s, unsigned char *rec,
		      const cqrs_field *f, const tool_json_member *m)
{
	int rc, ok;

	switch (f->type) {
	case CQRS_FT_STR: case CQRS_FT_BYTES: ok = m->kind == TOOL_JSON_STRING; break;
	case CQRS_FT_BOOL: ok = m->kind == TOOL_JSON_BOOL; break;
	default: ok = m->kind == TOOL_JSON_NUMBER; break;
	}
	if (!ok) {
		tool_http_error(r, 400, "field %s (%s) wants %s", f->name, cqrs_ftype_name(f->type),
				f->type == CQRS_FT_STR ? "a string"
				: f->type == CQRS_FT_BYTES ? "a string of hex digits"
				: f->type == CQRS_FT_BOOL ? "true or false" : "a number");
		return -1;
	}
	if (f->type == CQRS_FT_STR) {
		/* length-counted: a \u0000 in the value is refused, not cut at */
		cqrs_value v = { .type = CQRS_FT_STR };
		v.v.b.ptr = m->text;
		v.v.b.len = m->len;
		rc = cqrs_record_set(s, rec, f, &v);
	} else if (strlen(m->text) != m->len) {
		rc = CQRS_ETYPE;
		tool_http_error(r, 400, "field %s (%s): the value holds a NUL", f->name,
				cqrs_ftype_name(f->type));
		return -1;
	} else {
		rc = cqrs_record_set_text(s, rec, f->name, m->text);
	}
	if (rc) {
		tool_http_error(r, 400, "%s", tool_detail());
		return -1;
	}
	return 0;
}

static const char *outcome(int status)
{
	switch (status) {
	case 0: return "accepted";
	case CQRS_EREJECTED: return "rejected";
	case CQRS_ECONFLICT: return "conflict";
	case CQRS_EDUPLICATE: return "duplicate";
	case CQRS_EFORMAT: return "malformed";
	default: return "failed";
	}
}

/* The client, connected; -1 after answering 503. Called with g->mu held. */
static int connected(tool_gateway *g, const tool_http_req *r)
{
	cqrs_result stale;
	int rc;

	/* Results of requests that timed out earlier arrive later: drop them
	 * (nobody waits for them). A dead connection says so here, before
	 * anything is sent on it, so reconnecting cannot repeat a command. */
	while (g->client && (rc = cqrs_client_poll(g->client, &stale)) != 0) {
		if (rc < 0) {
			tool_log(CQRS_LOG_INFO, "gateway connection to %s ended (%s); reconnecting",
				 g->engine, cqrs_strerror(rc));
			cqrs_client_close(g->client);
			g->client = NULL;
		}
	}
	if (g->client)
		return 0;
	rc = cqrs_client_connect(g->engine, &g->client);
	if (rc) {
		g->client = NULL;
		tool_http_error(r, 503, "engine %s: %s (%s)", g->engine, cqrs_strerror(rc), tool_detail());
		return -1;
	}
	return 0;
}

void tool_gateway_command(tool_gateway *g, const tool_http_req *r, const char *type_name)
{
	cqrs_submit_opts opts = { 0 };
	tool_json_object obj;
	const cqrs_schema *s;
	unsigned char *rec = NULL;
	uint32_t type;
	cqrs_result res;
	char why[256], list[1024], *buf = NULL;
	size_t len = 0;
	unsigned code;
	int rc, given;
	FILE *f;

	if (!valid_name(type_name)) {
		tool_http_error(r, 404, "no command type '%s'", printable(type_name, why, 64));
		return;
	}
	if (u64_arg(r, "aggregate_id", tool_http_arg(r, "aggregate_id"), &opts.aggregate_id) < 0 ||
	    (given = u64_arg(r, "expected_version", tool_http_arg(r, "expected_version"),
			     &opts.expected_version)) < 0 ||
	    u64_arg(r, "client_seq", tool_http_arg(r, "client_seq"), &opts.client_seq) < 0)
		return;
	if (given)
		opts.flags |= CQRS_CMD_EXPECT_VERSION;
	if (tool_json_parse_object(r->body, r->body_len, &obj, why, sizeof why)) {
		tool_http_error(r, 400, "%s", why);
		return;
	}
	pthread_mutex_lock(&g->mu);
	if (connected(g, r))
		goto out;
	if (cqrs_client_command_type(g->client, type_name, &type, &s)) {
		command_list(g->client, list, sizeof list);
		tool_http_error(r, 404, "engine %s has no command type %s (commands: %s)", g->engine,
				type_name, list);
		goto out;
	}
	if (!(rec = calloc(1, s->size ? s->size : 1))) {
		tool_http_error(r, 500, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < obj.n; i++) {
		const cqrs_field *fl = cqrs_schema_field(s, obj.m[i].key);
		if (!fl) {
			field_list(s, list, sizeof list);
			tool_http_error(r, 400, "%s has no field '%s' (fields: %s)", s->name,
					printable(obj.m[i].key, why, 64), list);
			goto out;
		}
		if (set_member(r, s, rec, fl, &obj.m[i]))
			goto out;
	}
	rc = cqrs_client_submit(g->client, type, rec, s->size, &opts, &res, SUBMIT_TIMEOUT_NS);
	switch (rc) {
	case 0: case CQRS_EDUPLICATE: code = 200; break;
	case CQRS_EREJECTED: code = 422; break;
	case CQRS_ECONFLICT: code = 409; break;
	case CQRS_EFORMAT: code = 400; break;
	case -ETIMEDOUT:
		tool_http_error(r, 504, "no answer from engine %s within %llu s (the command may still be "
				"decided)", g->engine, SUBMIT_TIMEOUT_NS / 1000000000ull);
		goto out;
	case CQRS_ESTOPPED:
		cqrs_client_close(g->client);
		g->client = NULL;
		tool_http_error(r, 503, "engine %s stopped before it answered (the command may or may "
				"not have been decided)", g->engine);
		goto out;
	default:
		tool_http_error(r, rc == -EAGAIN ? 503 : 500, "submit: %s", cqrs_strerror(rc));
		goto out;
	}
	if (!(f = open_memstream(&buf, &len))) {
		tool_http_error(r, 500, "out of memory");
		goto out;
	}
	fprintf(f, "{\"status\":\"%s\",\"seq\":%" PRIu64 ",\"reason\":", outcome(rc), res.seq);
	res.reason[sizeof res.reason - 1] = 0;
	tool_json_str(f, printable(res.reason, why, sizeof why));
	fputs("}\n", f);
	fclose(f);
	tool_http_reply(r, code, JSON_TYPE, buf, len);
out:
	pthread_mutex_unlock(&g->mu);
	free(rec);
	tool_json_free(&obj);
}

/* ---- views ----------------------------------------------------------------- */

/* This thread's handle on view name; NULL after answering. */
static view_ent *view_for(tool_gateway *g, const tool_http_req *r, const char *name)
{
	view_cache *vc = pthread_getspecific(g->views);
	view_ent *e;
	cqrs_view *v;
	int rc;

	if (!vc) {
		if (!(vc = calloc(1, sizeof *vc)) || pthread_setspecific(g->views, vc)) {
			free(vc);
			tool_http_error(r, 500, "out of memory");
			return NULL;
		}
	}
	for (unsigned i = 0; i < vc->n; i++) {
		e = &vc->e[i];
		if (strcmp(e->name, name))
			continue;
		if (cqrs_view_generation(e->v) != e->generation) {
			cqrs_view_stat(e->v, &e->info);
			e->generation = e->info.generation;
		}
		return e;
	}
	rc = cqrs_view_open(g->engine, name, &v);
	if (rc) {
		cqrs_view_entry ents[64];
		char list[64 * (CQRS_NAME_MAX + 2)];
		size_t n = 0;
		int nv;

		if (rc == CQRS_ENOTFOUND && (nv = cqrs_view_list(g->engine, ents, 64)) >= 0) {
			list[0] = 0;
			for (int i = 0; i < nv && i < 64; i++)
				n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", ents[i].name);
			tool_http_error(r, 404, "engine %s has no view %s (views: %s)", g->engine, name, list);
		} else {
			tool_http_error(r, rc == -ENOENT ? 503 : 500, "engine %s, view %s: %s", g->engine, name,
					rc == -ENOENT ? "no such engine running" : cqrs_strerror(rc));
		}
		return NULL;
	}
	if (vc->n == VIEW_CACHE) { /* full: the oldest goes */
		cqrs_view_close(vc->e[0].v);
		memmove(&vc->e[0], &vc->e[1], sizeof vc->e[0] * (VIEW_CACHE - 1));
		vc->n--;
	}
	e = &vc->e[vc->n++];
	snprintf(e->name, sizeof e->name, "%s", name);
	e->v = v;
	cqrs_view_stat(v, &e->info);
	e->generation = e->info.generation;
	return e;
}

/* Drops this thread's handle on e (it read an orphaned generation). */
static void view_drop(tool_gateway *g, view_ent *e)
{
	view_cache *vc = pthread_getspecific(g->views);
	unsigned i = (unsigned)(e - vc->e);

	cqrs_view_close(e->v);
	memmove(&vc->e[i], &vc->e[i + 1], sizeof vc->e[0] * (vc->n - i - 1));
	vc->n--;
}

/* Waits for min_seq if the request names one: 0, or -1 after answering. */
static int wait_min_seq(tool_gateway *g, const tool_http_req *r, view_ent *e)
{
	const char *arg = tool_http_arg(r, "min_seq");
	uint64_t seq = 0;
	int rc;

	if (!arg)
		arg = tool_http_header(r, "Cqrs-Min-Seq");
	if ((rc = u64_arg(r, "min_seq", arg, &seq)) <= 0)
		return rc;
	rc = cqrs_view_wait(e->v, seq, g->max_wait_ns);
	if (rc == -ETIMEDOUT) {
		tool_http_error(r, 504, "view %s has applied seq %" PRIu64 ", not yet min_seq %" PRIu64
				", after %.1f s", e->name, cqrs_view_applied_seq(e->v), seq,
				(double)g->max_wait_ns / 1e9);
		return -1;
	}
	if (rc) {
		tool_http_error(r, 503, "view %s: %s", e->name, cqrs_strerror(rc));
		if (rc == CQRS_ESTALE || rc == CQRS_EWRITERDEAD)
			view_drop(g, e);
		return -1;
	}
	return 0;
}

/* Parses text as field name of the view's row into key. 0, or -1 after
 * answering 400. */
static int parse_key(const tool_http_req *r, const cqrs_schema *s, const char *name, const char *text,
		     uint8_t *key, size_t *keylen)
{
	const cqrs_field *f = cqrs_schema_field(s, name);
	uint8_t *rec;
	int rc;

	if (!f || f->size > CQRS_RECORD_MAX)
		return tool_http_error(r, 400, "the row has no field %s", name), -1;
	if (!(rec = calloc(1, s->size)))
		return tool_http_error(r, 500, "out of memory"), -1;
	rc = cqrs_record_set_text(s, rec, name, text);
	if (!rc) {
		memcpy(key, rec + f->offset, f->size);
		*keylen = f->size;
	} else {
		tool_http_error(r, 400, "%s", tool_detail());
	}
	free(rec);
	return rc ? -1 : 0;
}

/* The row's JSON, appended to f (through this thread's buffer). */
static int put_row_json(view_cache *vc, FILE *f, const cqrs_schema *s, const void *row)
{
	int n;

	for (;;) {
		if (!vc->json || (n = cqrs_record_to_json(s, row, vc->json, vc->json_cap)) == -ENOSPC) {
			size_t ncap = vc->json_cap ? vc->json_cap * 2 : 4096;
			char *b = realloc(vc->json, ncap);
			if (!b)
				return -ENOMEM;
			vc->json = b;
			vc->json_cap = ncap;
			continue;
		}
		if (n < 0)
			return n;
		fwrite(vc->json, 1, (size_t)n, f);
		return 0;
	}
}

typedef struct find_ctx {
	view_cache *vc;
	FILE *f;
	const cqrs_schema *s;
	uint64_t n, limit;
	int truncated;
} find_ctx;

static int find_row(void *arg, const void *row, size_t size)
{
	find_ctx *fc = arg;

	(void)size;
	if (fc->n == fc->limit) {
		fc->truncated = 1;
		return 1;
	}
	if (fc->n++)
		fputc(',', fc->f);
	return put_row_json(fc->vc, fc->f, fc->s, row) ? 1 : 0;
}

static void view_find(tool_gateway *g, const tool_http_req *r, view_ent *e)
{
	const char *field = tool_http_arg(r, "field"), *value = tool_http_arg(r, "value");
	const char *snap = tool_http_arg(r, "snapshot");
	const cqrs_schema *s = cqrs_view_schema(e->v);
	find_ctx fc = { pthread_getspecific(g->views), NULL, s, 0, FIND_LIMIT_DEFAULT, 0 };
	uint8_t key[CQRS_RECORD_MAX];
	char *buf = NULL, list[CQRS_VIEW_MAX_SECONDARY * (CQRS_NAME_MAX + 2) + 8], shown[64];
	size_t keylen = 0, len = 0, n = 0;
	uint64_t applied;
	int rc, indexed = 0;

	if (!field || !value) {
		tool_http_error(r, 400, "find wants ?field=FIELD&value=VALUE");
		return;
	}
	if (u64_arg(r, "limit", tool_http_arg(r, "limit"), &fc.limit) < 0)
		return;
	if (fc.limit == 0 || fc.limit > FIND_LIMIT_MAX) {
		tool_http_error(r, 400, "limit is out of range (1..%u)", FIND_LIMIT_MAX);
		return;
	}
	list[0] = 0;
	for (uint32_t i = 0; i < e->info.nsecondary; i++) {
		indexed |= !strcmp(e->info.secondary[i], field);
		n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", e->info.secondary[i]);
	}
	if (!indexed) {
		tool_http_error(r, 400, "field '%s' of view %s is not indexed (indexed fields: %s)",
				printable(field, shown, sizeof shown), e->name, e->info.nsecondary ? list : "none");
		return;
	}
	if (parse_key(r, s, field, value, key, &keylen))
		return;
	if (!(fc.f = open_memstream(&buf, &len))) {
		tool_http_error(r, 500, "out of memory");
		return;
	}
	applied = cqrs_view_applied_seq(e->v);
	fprintf(fc.f, "{\"applied_seq\":%" PRIu64 ",\"rows\":[", applied);
	rc = cqrs_view_find(e->v, field, key, keylen, find_row, &fc,
			    snap && strcmp(snap, "0") ? CQRS_FIND_SNAPSHOT : 0);
	fprintf(fc.f, "],\"truncated\":%s}\n", fc.truncated ? "true" : "false");
	fclose(fc.f);
	if (rc < 0 && !fc.truncated) {
		free(buf);
		tool_http_error(r, rc == -EAGAIN ? 503 : 500, "find in %s: %s", e->name, cqrs_strerror(rc));
		return;
	}
	tool_http_reply(r, 200, JSON_TYPE, buf, len);
}

/* Parses "v1,v2,..." (the ordered index's first fields' values, as
 * `cqrs view range` takes them) into key. 0, or -1 after answering 400. */
static int parse_bound(const tool_http_req *r, view_ent *e, const char *fields[], int nfields,
		       const char *which, const char *text, uint8_t *key, size_t *keylen)
{
	const cqrs_schema *s = cqrs_view_schema(e->v);
	char *copy = strdup(text), *save = NULL, *tok;
	size_t len = 0, fl;
	int rc = 0, i = 0;

	if (!copy)
		return tool_http_error(r, 500, "out of memory"), -1;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save), i++) {
		if (i >= nfields) {
			tool_http_error(r, 400, "%s has more values than %s's ordered index has fields (%d)",
					which, e->name, nfields);
			rc = -1;
		} else if (len + cqrs_schema_field(s, fields[i])->size > CQRS_RECORD_MAX) {
			tool_http_error(r, 400, "%s is too long", which);
			rc = -1;
		} else if (!(rc = parse_key(r, s, fields[i], tok, key + len, &fl))) {
			len += fl;
		}
	}
	free(copy);
	*keylen = len;
	return rc ? -1 : 0;
}

/* GET /views/<view>/range?lo=&hi=&desc=1&limit=N&snapshot=1: the rows of
 * the view's ordered index in [lo, hi] (either may be left out). */
static void view_range(tool_gateway *g, const tool_http_req *r, view_ent *e)
{
	const char *lo = tool_http_arg(r, "lo"), *hi = tool_http_arg(r, "hi");
	const char *snap = tool_http_arg(r, "snapshot"), *desc = tool_http_arg(r, "desc");
	const cqrs_schema *s = cqrs_view_schema(e->v);
	find_ctx fc = { pthread_getspecific(g->views), NULL, s, 0, FIND_LIMIT_DEFAULT, 0 };
	uint8_t lokey[CQRS_RECORD_MAX], hikey[CQRS_RECORD_MAX];
	size_t lolen = 0, hilen = 0, len = 0;
	const char *fields[8];
	int nfields = cqrs_view_ordered(e->v, fields, 8), rc, flags = 0;
	char *buf = NULL;
	uint64_t applied;

	if (nfields <= 0) {
		tool_http_error(r, 404, "view %s has no ordered index", e->name);
		return;
	}
	if (u64_arg(r, "limit", tool_http_arg(r, "limit"), &fc.limit) < 0)
		return;
	if (fc.limit == 0 || fc.limit > FIND_LIMIT_MAX) {
		tool_http_error(r, 400, "limit is out of range (1..%u)", FIND_LIMIT_MAX);
		return;
	}
	if ((lo && *lo && parse_bound(r, e, fields, nfields, "lo", lo, lokey, &lolen)) ||
	    (hi && *hi && parse_bound(r, e, fields, nfields, "hi", hi, hikey, &hilen)))
		return;
	if (desc && strcmp(desc, "0"))
		flags |= CQRS_RANGE_DESC;
	if (snap && strcmp(snap, "0"))
		flags |= CQRS_RANGE_SNAPSHOT;
	if (!(fc.f = open_memstream(&buf, &len))) {
		tool_http_error(r, 500, "out of memory");
		return;
	}
	applied = cqrs_view_applied_seq(e->v);
	fprintf(fc.f, "{\"applied_seq\":%" PRIu64 ",\"rows\":[", applied);
	/* one row past the limit tells truncated from exactly limit rows */
	rc = cqrs_view_range(e->v, fields[0], lolen ? lokey : NULL, lolen, hilen ? hikey : NULL, hilen,
			     flags, fc.limit + 1, find_row, &fc);
	fprintf(fc.f, "],\"truncated\":%s}\n", fc.truncated ? "true" : "false");
	fclose(fc.f);
	if (rc < 0 && !fc.truncated) {
		free(buf);
		tool_http_error(r, rc == -EAGAIN ? 503 : 500, "range in %s: %s", e->name, cqrs_strerror(rc));
		return;
	}
	tool_http_reply(r, 200, JSON_TYPE, buf, len);
}

static void view_get(tool_gateway *g, const tool_http_req *r, view_ent *e, const char *text)
{
	const cqrs_schema *s = cqrs_view_schema(e->v);
	view_cache *vc = pthread_getspecific(g->views);
	uint8_t key[CQRS_RECORD_MAX];
	size_t keylen = 0, len = 0;
	char *buf = NULL, applied[24], shown[64];
	FILE *f;
	int rc;

	if (parse_key(r, s, e->info.key_field, text, key, &keylen))
		return;
	if (vc->row_cap < s->size) {
		uint8_t *b = realloc(vc->row, s->size);
		if (!b) {
			tool_http_error(r, 500, "out of memory");
			return;
		}
		vc->row = b;
		vc->row_cap = s->size;
	}
	/* the row shows at least every seq applied before it is read */
	snprintf(applied, sizeof applied, "%" PRIu64, cqrs_view_applied_seq(e->v));
	rc = cqrs_view_get(e->v, key, keylen, vc->row, vc->row_cap);
	if (rc == CQRS_ENOTFOUND) {
		tool_http_set_header(r, "Cqrs-Applied-Seq", applied);
		tool_http_error(r, 404, "view %s has no row with %s %s", e->name, e->info.key_field,
				printable(text, shown, sizeof shown));
		return;
	}
	if (rc) {
		tool_http_error(r, rc == -EAGAIN || rc == CQRS_EWRITERDEAD || rc == CQRS_ESTALE ? 503 : 500,
				"get in %s: %s", e->name, cqrs_strerror(rc));
		if (rc == CQRS_ESTALE)
			view_drop(g, e);
		return;
	}
	if (!(f = open_memstream(&buf, &len)) || put_row_json(vc, f, s, vc->row)) {
		if (f)
			fclose(f);
		free(buf);
		tool_http_error(r, 500, "out of memory");
		return;
	}
	fputc('\n', f);
	fclose(f);
	tool_http_set_header(r, "Cqrs-Applied-Seq", applied);
	tool_http_reply(r, 200, JSON_TYPE, buf, len);
}

void tool_gateway_view(tool_gateway *g, const tool_http_req *r, const char *view, const char *rest)
{
	char shown[64];
	view_ent *e;

	if (!valid_name(view)) {
		tool_http_error(r, 404, "no view '%s'", printable(view, shown, sizeof shown));
		return;
	}
	if (!*rest) {
		tool_http_error(r, 404, "want /views/%s/KEY, /views/%s/find?field=&value= or /views/%s/range?lo=&hi=", view, view, view);
		return;
	}
	if (!(e = view_for(g, r, view)))
		return;
	if (wait_min_seq(g, r, e))
		return;
	if (!strcmp(rest, "find"))
		view_find(g, r, e);
	else if (!strcmp(rest, "range"))
		view_range(g, r, e);
	else
		view_get(g, r, e, rest);
}
