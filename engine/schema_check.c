/*
 * engine/schema_check.c - old event layouts read as the registered ones:
 * the comparison, the conversion plan, and the replay table rebuilt at
 * each journal segment (the rules are in engine/schema_check.h).
 *
 * Cost: per segment and registered type, one hash of each layout and at
 * worst an O(nfields^2) comparison; per event, nothing for a type whose
 * layout is the registered one (the inline check's load and compare, as
 * the size check it replaces), and for a converted one a fill of the
 * scratch record plus one memcpy per run of copied fields (and the
 * upcaster, when one is registered).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "engine/schema_check.h"

/* ---- the comparison ---------------------------------------------------------- */

static int field_same(const cqrs_field *a, const cqrs_field *b)
{
	return a->type == b->type && a->offset == b->offset && a->size == b->size &&
	       strncmp(a->name, b->name, CQRS_NAME_MAX) == 0;
}

static const cqrs_field *field_named(const cqrs_schema *s, const char *name)
{
	for (uint32_t i = 0; i < s->nfields; i++)
		if (strncmp(s->fields[i].name, name, CQRS_NAME_MAX) == 0)
			return &s->fields[i];
	return NULL;
}

/* "qty (u32, offset 0, 4 bytes)" */
static void field_words(const cqrs_field *f, char *buf, size_t cap)
{
	snprintf(buf, cap, "%.31s (%s, offset %u, %u bytes)", f->name, cqrs_ftype_name(f->type),
		 f->offset, f->size);
}

void cqrs__schema_compare(const cqrs_schema *old, const cqrs_schema *cur, cqrs_schema_diff *out)
{
	uint32_t n = old->nfields < cur->nfields ? old->nfields : cur->nfields, i;
	char a[96], b[96];

	memset(out, 0, sizeof *out);
	out->field = -1;
	if (cqrs_schema_hash(old) == cqrs_schema_hash(cur))
		return; /* SAME */
	for (i = 0; i < n && field_same(&old->fields[i], &cur->fields[i]); i++)
		;
	if (i == old->nfields && i == cur->nfields && old->size == cur->size)
		return; /* SAME layout under another record name */
	if (i == old->nfields) {
		out->match = CQRS_SCHEMA_APPENDED;
		if (i < cur->nfields) {
			out->field = (int)i;
			field_words(&cur->fields[i], a, sizeof a);
			snprintf(out->why, sizeof out->why, "fields appended from field %u, %s", i, a);
		} else {
			snprintf(out->why, sizeof out->why, "record size %u where it was %u, fields "
				 "unchanged", cur->size, old->size);
		}
		return;
	}
	out->field = (int)i;
	field_words(&old->fields[i], a, sizeof a);
	if (i < cur->nfields) {
		field_words(&cur->fields[i], b, sizeof b);
		snprintf(out->why, sizeof out->why, "field %u is %s in the stored layout, %s in the "
			 "registered one", i, a, b);
	} else {
		snprintf(out->why, sizeof out->why, "field %u, %s, of the stored layout is not in the "
			 "registered one", i, a);
	}
	out->match = CQRS_SCHEMA_BY_NAME;
	for (uint32_t k = 0; k < cur->nfields; k++) {
		const cqrs_field *cf = &cur->fields[k], *of = field_named(old, cf->name);
		size_t len = strlen(out->why);

		if (!of || (of->type == cf->type && of->size == cf->size))
			continue;
		out->match = CQRS_SCHEMA_DIFFERENT;
		field_words(of, a, sizeof a);
		field_words(cf, b, sizeof b);
		snprintf(out->why + len, sizeof out->why - len, "; by name, %s there is %s here", a, b);
		return;
	}
}

void cqrs__schema_conv_plan(const cqrs_schema *old, const cqrs_schema *cur, cqrs_schema_conv *out)
{
	out->from_size = old->size;
	out->to_size = cur->size;
	out->nops = 0;
	for (uint32_t k = 0; k < cur->nfields; k++) {
		const cqrs_field *cf = &cur->fields[k], *of = field_named(old, cf->name);

		if (!of || of->type != cf->type || of->size != cf->size)
			continue;
		if (out->nops) {
			/* a field right after the previous run on both sides extends it */
			__typeof__(out->op[0]) *p = &out->op[out->nops - 1];
			if (p->from + p->len == of->offset && p->to + p->len == cf->offset) {
				p->len += cf->size;
				continue;
			}
		}
		out->op[out->nops].from = of->offset;
		out->op[out->nops].to = cf->offset;
		out->op[out->nops].len = cf->size;
		out->nops++;
	}
}

void cqrs__schema_conv_run(const cqrs_schema_conv *c, const void *from, void *to,
			   const void *defaults)
{
	if (defaults)
		memcpy(to, defaults, c->to_size);
	else
		memset(to, 0, c->to_size);
	for (uint32_t k = 0; k < c->nops; k++)
		memcpy((uint8_t *)to + c->op[k].to, (const uint8_t *)from + c->op[k].from, c->op[k].len);
}

/* ---- the replay table ---------------------------------------------------------- */

enum sc_how {
	SC_UNREGISTERED = 0, /* the engine does not register the type */
	SC_SAME,             /* read in place (same_size holds its size) */
	SC_CONVERT,          /* appended fields, or by name: the plan */
	SC_UPCAST,           /* the plan, then the application's upcaster */
	SC_REFUSE,           /* a layout this engine cannot read */
	SC_UNDESCRIBED,      /* the segment has no schema for the type */
};

struct sc_type {
	enum sc_how how;
	const cqrs_schema *from;  /* the segment's layout (the iterator's copy) */
	cqrs_schema_conv *conv;   /* allocated when first needed, kept for the replay */
	uint64_t logged_hash;     /* hash of the last layout whose conversion was logged */
	int log_pending;          /* log the conversion at its first record */
};

/* The iterator entered a segment: every registered type's verdict there. */
static int on_segment(void *arg, const cqrs_journal_iter *it)
{
	cqrs_schema_check *c = arg;
	cqrs_journal_segment_info seg;
	cqrs_engine *e = c->e;

	cqrs__journal_iter_where(it, &seg, NULL);
	snprintf(c->segment, sizeof c->segment, "%s", seg.name);
	for (uint32_t t = 0; t < CQRS_MAX_TYPES; t++) {
		const event_type *et = &e->events[t];
		sc_type *ty = &c->types[t];
		cqrs_schema_diff d;

		c->same_size[t] = UINT32_MAX;
		ty->from = NULL;
		if (!et->schema) {
			ty->how = SC_UNREGISTERED;
			continue;
		}
		ty->from = cqrs__journal_iter_schema(it, t);
		if (!ty->from) {
			ty->how = SC_UNDESCRIBED;
			continue;
		}
		cqrs__schema_compare(ty->from, et->schema, &d);
		if (d.match == CQRS_SCHEMA_SAME) {
			ty->how = SC_SAME;
			c->same_size[t] = et->schema->size;
			continue;
		}
		if (!et->upcast && d.match != CQRS_SCHEMA_APPENDED &&
		    !(d.match == CQRS_SCHEMA_BY_NAME && (et->flags & CQRS_EVENT_MAP_BY_NAME))) {
			ty->how = SC_REFUSE;
			continue;
		}
		if (!ty->conv && !(ty->conv = malloc(sizeof *ty->conv)))
			return cqrs__fail(-ENOMEM, "replay: no memory for a conversion plan");
		cqrs__schema_conv_plan(ty->from, et->schema, ty->conv);
		ty->how = et->upcast ? SC_UPCAST : SC_CONVERT;
		if (cqrs_schema_hash(ty->from) != ty->logged_hash) {
			/* once per replay and stored layout (a journal holds few) */
			ty->logged_hash = cqrs_schema_hash(ty->from);
			ty->log_pending = 1;
		}
	}
	return 0;
}

int cqrs__schema_check_open(cqrs_engine *e, cqrs_journal_iter *it, cqrs_schema_check **out)
{
	cqrs_schema_check *c = calloc(1, sizeof *c);
	uint32_t max = 8;
	int rc;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	for (uint32_t t = 0; t < CQRS_MAX_TYPES; t++)
		if (e->events[t].schema && e->events[t].schema->size > max)
			max = e->events[t].schema->size;
	c->e = e;
	c->types = calloc(CQRS_MAX_TYPES, sizeof *c->types);
	c->scratch = aligned_alloc(64, (max + 63u) & ~63u);
	if (!c->types || !c->scratch) {
		cqrs__schema_check_close(c);
		return -ENOMEM;
	}
	rc = cqrs__journal_iter_on_segment(it, on_segment, c);
	if (rc) {
		cqrs__schema_check_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cqrs__schema_check_close(cqrs_schema_check *c)
{
	if (!c)
		return;
	if (c->types)
		for (uint32_t t = 0; t < CQRS_MAX_TYPES; t++)
			free(c->types[t].conv);
	free(c->types);
	free(c->scratch);
	free(c);
}

static const char *how_words(const cqrs_schema_diff *d, const event_type *et)
{
	if (et->upcast)
		return "the upcaster";
	return d->match == CQRS_SCHEMA_APPENDED ? "appended fields" : "fields mapped by name";
}

/* A record the table cannot read, or the first converted record of a
 * layout (logged): the message, or the log line then the conversion. */
static __attribute__((noinline, cold)) int convert_cold(cqrs_schema_check *c, const cqrs_jrec *r,
							cqrs_event *ev)
{
	const event_type *et = r->type < CQRS_MAX_TYPES ? &c->e->events[r->type] : NULL;
	sc_type *ty = et ? &c->types[r->type] : NULL;
	cqrs_schema_diff d;

	if (!ty || ty->how == SC_UNREGISTERED)
		return cqrs__fail(CQRS_EFORMAT, "replay: seq %llu (segment %s) has event type %u of %u "
				 "bytes, which this engine does not register",
				 (unsigned long long)r->seq, c->segment, r->type, r->size);
	switch (ty->how) {
	case SC_SAME:
		return cqrs__fail(CQRS_EFORMAT, "replay: seq %llu (segment %s): event type %u '%.31s' "
				 "of %u bytes, its layout has %u", (unsigned long long)r->seq,
				 c->segment, r->type, et->schema->name, r->size, et->schema->size);
	case SC_UNDESCRIBED:
		return cqrs__fail(CQRS_EFORMAT, "replay: seq %llu: segment %s does not describe event "
				 "type %u '%.31s' in its header, so its layout cannot be checked",
				 (unsigned long long)r->seq, c->segment, r->type, et->schema->name);
	case SC_REFUSE:
		cqrs__schema_compare(ty->from, et->schema, &d);
		return cqrs__fail(CQRS_EFORMAT, "replay: event type %u '%.31s': segment %s (seq %llu) "
				 "holds it in a layout this engine cannot read: %s; register an "
				 "upcaster for it%s", r->type, et->schema->name, c->segment,
				 (unsigned long long)r->seq, d.why,
				 d.match == CQRS_SCHEMA_BY_NAME ? ", or allow mapping its fields by name "
				 "(CQRS_EVENT_MAP_BY_NAME)" : "");
	default:
		break;
	}
	if (r->size != ty->from->size)
		return cqrs__fail(CQRS_EFORMAT, "replay: seq %llu (segment %s): event type %u '%.31s' "
				 "of %u bytes, its layout there has %u", (unsigned long long)r->seq,
				 c->segment, r->type, ty->from->name, r->size, ty->from->size);
	ty->log_pending = 0;
	cqrs__schema_compare(ty->from, et->schema, &d);
	cqrs__log(c->e, CQRS_LOG_INFO, "replay: event type %u '%.31s' from segment %s on is "
		  "converted from its stored layout (%s) by %s", r->type, et->schema->name,
		  c->segment, d.why, how_words(&d, et));
	return cqrs__schema_check_convert(c, r, ev);
}

int cqrs__schema_check_convert(cqrs_schema_check *c, const cqrs_jrec *r, cqrs_event *ev)
{
	const event_type *et;
	sc_type *ty;
	int rc;

	if (r->type >= CQRS_MAX_TYPES)
		return convert_cold(c, r, ev);
	ty = &c->types[r->type];
	if ((ty->how != SC_CONVERT && ty->how != SC_UPCAST) || r->size != ty->from->size ||
	    ty->log_pending)
		return convert_cold(c, r, ev);
	et = &c->e->events[r->type];
	cqrs__schema_conv_run(ty->conv, cqrs__jrec_payload(r), c->scratch, et->defaults);
	if (ty->how == SC_UPCAST) {
		cqrs_event old = *ev;
		rc = et->upcast(et->upcast_arg, &old, ty->from, c->scratch, et->schema);
		if (rc)
			return cqrs__fail(CQRS_EFORMAT, "replay: seq %llu (segment %s): the upcaster of "
					 "event type %u '%.31s' refused it (%d)", (unsigned long long)r->seq,
					 c->segment, r->type, et->schema->name, rc);
	}
	ev->data = c->scratch;
	ev->size = et->schema->size;
	return 0;
}
