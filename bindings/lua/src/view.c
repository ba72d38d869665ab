/*
 * bindings/lua/src/view.c - cqrs.View for Lua: one view of a running engine,
 * read straight from shared memory.
 *
 *     v:get(key [, t])        table of the row's fields, or nil (t: a table
 *                             to fill instead of a new one: no allocation
 *                             beyond str/bytes values)
 *     v:get_raw(key)          the row's bytes as a string, or nil
 *     v:find(field, value [, snapshot])   array of row tables
 *     v:scan([snapshot])      array of every row table (slot order)
 *     v:range(lo, hi [, opts])   array of the row tables of the ordered
 *                             index with lo <= key < hi, in key order; lo,
 *                             hi: nil (open), a value, or an array of the
 *                             index fields' first values; opts: {desc=,
 *                             limit=, snapshot=, index=}
 *     v:wait(seq [, timeout]) true, or nil, msg, "timeout"
 *     v:applied_seq(), v:schema(), v:count() (also #v), v:name(), v:engine(),
 *     v:generation(), v:close() (also __gc and <close>)
 *
 * Keys are the key field's type: an integer for integer fields, a string
 * for str and bytes fields (shorter ones are zero padded, as stored).
 *
 * Hot path (get): the userdata is checked against the metatable held as an
 * upvalue (no registry lookup), an integer key for a u64 field is used in
 * place, cqrs_view_get copies one consistent version of the row into the
 * handle's row buffer, one load tells whether the handle moved to a rebuilt
 * generation (then the schema is refreshed and the read redone), and the
 * table is filled with field names taken from the array kept as the
 * userdata's user value.
 */
#include <stdlib.h>
#include <string.h>

#include "lcqrs.h"

#define MOVE_TRIES 4

typedef struct lview {
	cqrs_view *v;             /* NULL once closed */
	cqrs_schema s;            /* row schema of the generation last seen */
	uint64_t hash, generation;
	const cqrs_field *key;    /* into s */
	uint8_t *row;             /* s.size bytes */
	uint8_t *scratch;         /* s.size bytes: key encoding */
	char engine[CQRS_NAME_MAX];
	char name[CQRS_NAME_MAX];
	char key_name[CQRS_NAME_MAX];
	char indexes[CQRS_VIEW_MAX_SECONDARY][CQRS_NAME_MAX];
	unsigned nindexes;
} lview;

/* The View at arg 1, open. Upvalue 1 of every method is the metatable. */
static inline lview *self_open(lua_State *L)
{
	lview *lv = lua_touserdata(L, 1);

	if (__builtin_expect(!lv || !lua_getmetatable(L, 1), 0))
		luaL_typeerror(L, 1, LCQRS_VIEW);
	if (__builtin_expect(!lua_rawequal(L, -1, lua_upvalueindex(1)), 0))
		luaL_typeerror(L, 1, LCQRS_VIEW);
	lua_pop(L, 1);
	if (__builtin_expect(!lv->v, 0))
		luaL_error(L, "operation on a closed cqrs.View");
	return lv;
}

int lcqrs_view_is_open(lua_State *L, int idx)
{
	lview *lv = luaL_testudata(L, idx, LCQRS_VIEW);

	return lv && lv->v;
}

static int fail(lua_State *L, lview *lv, int rc, const char *op)
{
	char what[128];

	snprintf(what, sizeof what, "%s %s/%s", op, lv->engine, lv->name);
	return lcqrs_fail(L, rc, what, NULL, !strncmp(op, "open", 4));
}

/* Brings the schema copy, buffers and the names array (user value 1) up to
 * date with the handle. Returns 0 or a library code. Cold. */
static int sync_view(lua_State *L, lview *lv, int idx)
{
	cqrs_view_info info;
	const cqrs_schema *s;
	const cqrs_field *k;
	int rc = cqrs_view_stat(lv->v, &info);

	if (rc)
		return rc;
	s = cqrs_view_schema(lv->v);
	k = cqrs_schema_field(s, info.key_field);
	if (!k)
		return CQRS_EFORMAT;
	if (!lv->row || cqrs_schema_hash(s) != lv->hash) {
		uint8_t *row = realloc(lv->row, s->size ? s->size : 1);
		if (!row)
			return -ENOMEM;
		lv->row = row;
		row = realloc(lv->scratch, s->size ? s->size : 1);
		if (!row)
			return -ENOMEM;
		lv->scratch = row;
		memset(lv->scratch, 0, s->size);
		lv->s = *s;
		lv->hash = cqrs_schema_hash(s);
		lua_createtable(L, (int)s->nfields, 0);
		for (uint32_t i = 0; i < s->nfields; i++) {
			lua_pushlstring(L, s->fields[i].name, strnlen(s->fields[i].name, CQRS_NAME_MAX));
			lua_rawseti(L, -2, i + 1);
		}
		lua_setiuservalue(L, idx, 1);
	}
	lv->key = &lv->s.fields[k - s->fields];
	memcpy(lv->key_name, info.key_field, sizeof lv->key_name);
	lv->nindexes = info.nsecondary < CQRS_VIEW_MAX_SECONDARY ? info.nsecondary
								  : CQRS_VIEW_MAX_SECONDARY;
	memcpy(lv->indexes, info.secondary, sizeof lv->indexes);
	lv->generation = info.generation;
	return 0;
}

int lcqrs_view_open(lua_State *L, const char *engine, const char *name)
{
	lview *lv;
	int rc;

	if (strlen(engine) >= CQRS_NAME_MAX || strlen(name) >= CQRS_NAME_MAX)
		return lcqrs_fail(L, -EINVAL, "open view", NULL, 0);
	lv = lua_newuserdatauv(L, sizeof *lv, 1);
	memset(lv, 0, sizeof *lv);
	luaL_setmetatable(L, LCQRS_VIEW);
	strcpy(lv->engine, engine);
	strcpy(lv->name, name);
	rc = cqrs_view_open(engine, name, &lv->v);
	if (rc) {
		lv->v = NULL;
		return fail(L, lv, rc, "open view");
	}
	rc = sync_view(L, lv, lua_gettop(L));
	if (rc) {
		cqrs_view_close(lv->v);
		lv->v = NULL;
		return fail(L, lv, rc, "open view");
	}
	return 1;
}

/* Moved to another generation? Then sync (cold). *rc gets its result. */
static inline int moved(lua_State *L, lview *lv, int *rc)
{
	if (__builtin_expect(cqrs_view_generation(lv->v) == lv->generation, 1))
		return 0;
	*rc = sync_view(L, lv, 1);
	return 1;
}

/* Encodes the key at idx; *kp points at its bytes. Raises on a bad key. */
static inline void encode_key(lua_State *L, lview *lv, int idx, uint64_t *u, const void **kp,
			      size_t *klen)
{
	if (lv->key->type == CQRS_FT_U64 && lua_isinteger(L, idx)) {
		*u = (uint64_t)lua_tointeger(L, idx);
		*kp = u;
		*klen = 8;
		return;
	}
	lcqrs_set_field(L, &lv->s, lv->scratch, lv->key, idx);
	*kp = lv->scratch + lv->key->offset;
	*klen = lv->key->size;
}

/* Fills the table at tidx from rec, names at nidx. */
static inline void fill_row(lua_State *L, lview *lv, const uint8_t *rec, int tidx, int nidx)
{
	for (uint32_t i = 0; i < lv->s.nfields; i++) {
		lua_rawgeti(L, nidx, i + 1);
		lcqrs_push_field(L, &lv->s, rec, &lv->s.fields[i]);
		lua_rawset(L, tidx);
	}
}

/* Pushes a new row table for rec. */
static void push_row(lua_State *L, lview *lv, const uint8_t *rec)
{
	lua_getiuservalue(L, 1, 1);
	lua_createtable(L, 0, (int)lv->s.nfields);
	fill_row(L, lv, rec, lua_gettop(L), lua_gettop(L) - 1);
	lua_remove(L, -2);
}

static int v_get(lua_State *L)
{
	lview *lv = self_open(L);

	for (int t = 0; t < MOVE_TRIES; t++) {
		uint64_t u;
		const void *kp;
		size_t klen;
		int rc, mrc = 0;

		encode_key(L, lv, 2, &u, &kp, &klen);
		rc = cqrs_view_get(lv->v, kp, klen, lv->row, lv->s.size);
		if (__builtin_expect(moved(L, lv, &mrc), 0)) {
			if (mrc)
				return fail(L, lv, mrc, "get from");
			continue;
		}
		if (__builtin_expect(rc == 0, 1)) {
			if (lua_type(L, 3) == LUA_TTABLE) {
				lua_settop(L, 3);
				lua_getiuservalue(L, 1, 1);
				fill_row(L, lv, lv->row, 3, 4);
				lua_settop(L, 3);
			} else {
				push_row(L, lv, lv->row);
			}
			return 1;
		}
		if (rc == CQRS_ENOTFOUND) {
			lua_pushnil(L);
			return 1;
		}
		return fail(L, lv, rc, "get from");
	}
	return fail(L, lv, -EAGAIN, "get from");
}

static int v_get_raw(lua_State *L)
{
	lview *lv = self_open(L);

	for (int t = 0; t < MOVE_TRIES; t++) {
		uint64_t u;
		const void *kp;
		size_t klen;
		int rc, mrc = 0;

		encode_key(L, lv, 2, &u, &kp, &klen);
		rc = cqrs_view_get(lv->v, kp, klen, lv->row, lv->s.size);
		if (moved(L, lv, &mrc)) {
			if (mrc)
				return fail(L, lv, mrc, "get from");
			continue;
		}
		if (rc == 0) {
			lua_pushlstring(L, (const char *)lv->row, lv->s.size);
			return 1;
		}
		if (rc == CQRS_ENOTFOUND) {
			lua_pushnil(L);
			return 1;
		}
		return fail(L, lv, rc, "get from");
	}
	return fail(L, lv, -EAGAIN, "get from");
}

/* ---- find and scan ---------------------------------------------------------------- */

typedef struct collect {
	lua_State *L;
	lview *lv;
	int list, names;  /* stack indexes */
	lua_Integer n;
	int resized;
} collect;

/* Row callback. A memory error raised by Lua here unwinds through the
 * library's find/scan, which holds no locks (buffers belong to the handle). */
static int collect_row(void *arg, const void *row, size_t size)
{
	collect *c = arg;

	if (size != c->lv->s.size) {
		c->resized = 1;
		return 1;
	}
	lua_createtable(c->L, 0, (int)c->lv->s.nfields);
	fill_row(c->L, c->lv, row, lua_gettop(c->L), c->names);
	lua_rawseti(c->L, c->list, ++c->n);
	return 0;
}

static int query(lua_State *L, lview *lv, const char *field, int vidx, int snapshot)
{
	int base = lua_gettop(L);

	for (int t = 0; t < MOVE_TRIES; t++) {
		collect c = { L, lv, 0, 0, 0, 0 };
		int rc, mrc = 0;

		lua_settop(L, base);
		lua_newtable(L);
		c.list = lua_gettop(L);
		lua_getiuservalue(L, 1, 1);
		c.names = lua_gettop(L);
		if (field) {
			const cqrs_field *f = cqrs_schema_field(&lv->s, field);
			if (!f)
				return luaL_error(L, "view %s has no field '%s'", lv->name, field);
			lcqrs_set_field(L, &lv->s, lv->scratch, f, vidx);
			rc = cqrs_view_find(lv->v, field, lv->scratch + f->offset, f->size, collect_row, &c,
					    snapshot ? CQRS_FIND_SNAPSHOT : 0);
			if (rc == CQRS_ENOTFOUND && !moved(L, lv, &mrc))
				return luaL_error(L, "field '%s' of view %s is not indexed", field, lv->name);
		} else {
			rc = cqrs_view_scan(lv->v, collect_row, &c, snapshot ? CQRS_FIND_SNAPSHOT : 0);
		}
		if (!c.resized && !moved(L, lv, &mrc)) {
			if (rc < 0)
				return fail(L, lv, rc, field ? "find in" : "scan");
			lua_settop(L, c.list);
			return 1;
		}
		if (mrc)
			return fail(L, lv, mrc, field ? "find in" : "scan");
		if (c.resized && cqrs_view_generation(lv->v) == lv->generation) {
			/* The handle moved inside the call: resync by force. */
			lv->hash = 0;
			if ((mrc = sync_view(L, lv, 1)))
				return fail(L, lv, mrc, field ? "find in" : "scan");
		}
	}
	return fail(L, lv, -EAGAIN, field ? "find in" : "scan");
}

static int v_find(lua_State *L)
{
	lview *lv = self_open(L);
	const char *field = luaL_checkstring(L, 2);

	luaL_checkany(L, 3);
	return query(L, lv, field, 3, lua_toboolean(L, 4));
}

static int v_scan(lua_State *L)
{
	lview *lv = self_open(L);

	return query(L, lv, NULL, 0, lua_toboolean(L, 2));
}

/* ---- the ordered index -------------------------------------------------------------- */

/* Encodes the bound at stack index idx (nil, a value, or an array of the
 * first index fields' values) into key. Returns 0 for nil, 1 otherwise;
 * raises on a bad bound. */
static int encode_bound(lua_State *L, lview *lv, int idx, uint8_t *key, size_t *len)
{
	const char *names[8];
	int n = cqrs_view_ordered(lv->v, names, 8), k, table = lua_istable(L, idx);

	*len = 0;
	if (lua_isnoneornil(L, idx))
		return 0;
	k = table ? (int)lua_rawlen(L, idx) : 1;
	if (k < 1 || k > n)
		return luaL_error(L, "a bound of view %s has 1 to %d values, not %d", lv->name, n, k);
	for (int i = 0; i < k; i++) {
		const cqrs_field *f = cqrs_schema_field(&lv->s, names[i]);

		if (!f || *len + f->size > 64)
			return luaL_error(L, "bad bound for view %s", lv->name);
		if (table)
			lua_rawgeti(L, idx, i + 1);
		else
			lua_pushvalue(L, idx);
		lcqrs_set_field(L, &lv->s, lv->scratch, f, lua_gettop(L));
		lua_pop(L, 1);
		memcpy(key + *len, lv->scratch + f->offset, f->size);
		*len += f->size;
	}
	return 1;
}

static int v_range(lua_State *L)
{
	lview *lv = self_open(L);
	unsigned flags = 0;
	lua_Integer limit = 0;
	const char *index = NULL;
	int base;

	if (lua_istable(L, 4)) {
		lua_getfield(L, 4, "desc");
		flags |= lua_toboolean(L, -1) ? CQRS_RANGE_DESC : 0;
		lua_getfield(L, 4, "snapshot");
		flags |= lua_toboolean(L, -1) ? CQRS_RANGE_SNAPSHOT : 0;
		lua_getfield(L, 4, "limit");
		limit = luaL_optinteger(L, -1, 0);
		lua_getfield(L, 4, "index");
		index = luaL_optstring(L, -1, NULL);
		if (limit < 0)
			return luaL_error(L, "range: limit must be >= 0");
	} else if (!lua_isnoneornil(L, 4)) {
		return luaL_error(L, "range: options must be a table");
	}
	base = lua_gettop(L);
	for (int t = 0; t < MOVE_TRIES; t++) {
		collect c = { L, lv, 0, 0, 0, 0 };
		uint8_t klo[64], khi[64];
		size_t llo, lhi;
		int hlo, hhi, rc, mrc = 0;

		lua_settop(L, base);
		if (cqrs_view_ordered(lv->v, NULL, 0) <= 0)
			return luaL_error(L, "view %s has no ordered index", lv->name);
		hlo = encode_bound(L, lv, 2, klo, &llo);
		hhi = encode_bound(L, lv, 3, khi, &lhi);
		lua_newtable(L);
		c.list = lua_gettop(L);
		lua_getiuservalue(L, 1, 1);
		c.names = lua_gettop(L);
		rc = cqrs_view_range(lv->v, index, hlo ? klo : NULL, llo, hhi ? khi : NULL, lhi, flags,
				     (uint64_t)limit, collect_row, &c);
		if (!c.resized && !moved(L, lv, &mrc)) {
			if (rc == CQRS_ENOTFOUND)
				return luaL_error(L, "view %s has no ordered index %s", lv->name,
						  index ? index : "");
			if (rc < 0)
				return fail(L, lv, rc, "range in");
			lua_settop(L, c.list);
			return 1;
		}
		if (mrc)
			return fail(L, lv, mrc, "range in");
		if (c.resized && cqrs_view_generation(lv->v) == lv->generation) {
			lv->hash = 0;
			if ((mrc = sync_view(L, lv, 1)))
				return fail(L, lv, mrc, "range in");
		}
	}
	return fail(L, lv, -EAGAIN, "range in");
}

/* ---- waiting and introspection ------------------------------------------------------ */

static int v_wait(lua_State *L)
{
	lview *lv = self_open(L);
	uint64_t seq = (uint64_t)luaL_checkinteger(L, 2);
	uint64_t tmo = lcqrs_timeout_ns(L, 3);
	int rc = cqrs_view_wait(lv->v, seq, tmo);

	if (rc == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	return fail(L, lv, rc, "wait on");
}

static int v_applied_seq(lua_State *L)
{
	lview *lv = self_open(L);

	lua_pushinteger(L, (lua_Integer)cqrs_view_applied_seq(lv->v));
	return 1;
}

static int v_schema(lua_State *L)
{
	lview *lv = self_open(L);
	int rc = 0;

	if (moved(L, lv, &rc) && rc)
		return fail(L, lv, rc, "schema of");
	lcqrs_push_schema(L, &lv->s, lv->key_name, (const char (*)[CQRS_NAME_MAX])lv->indexes,
			  lv->nindexes);
	return 1;
}

static int v_count(lua_State *L)
{
	lview *lv = self_open(L);

	lua_pushinteger(L, (lua_Integer)cqrs_view_rows(lv->v));
	return 1;
}

static int v_generation(lua_State *L)
{
	lview *lv = self_open(L);

	lua_pushinteger(L, (lua_Integer)cqrs_view_generation(lv->v));
	return 1;
}

static int v_name(lua_State *L)
{
	lview *lv = luaL_checkudata(L, 1, LCQRS_VIEW);

	lua_pushstring(L, lv->name);
	return 1;
}

static int v_engine(lua_State *L)
{
	lview *lv = luaL_checkudata(L, 1, LCQRS_VIEW);

	lua_pushstring(L, lv->engine);
	return 1;
}

static int v_close(lua_State *L)
{
	lview *lv = luaL_checkudata(L, 1, LCQRS_VIEW);

	cqrs_view_close(lv->v);
	lv->v = NULL;
	free(lv->row);
	free(lv->scratch);
	lv->row = lv->scratch = NULL;
	return 0;
}

static int v_tostring(lua_State *L)
{
	lview *lv = luaL_checkudata(L, 1, LCQRS_VIEW);

	lua_pushfstring(L, "cqrs.View %s/%s%s", lv->engine, lv->name, lv->v ? "" : " (closed)");
	return 1;
}

void lcqrs_view_register(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "get", v_get },
		{ "get_raw", v_get_raw },
		{ "find", v_find },
		{ "scan", v_scan },
		{ "range", v_range },
		{ "wait", v_wait },
		{ "applied_seq", v_applied_seq },
		{ "schema", v_schema },
		{ "count", v_count },
		{ "generation", v_generation },
		{ NULL, NULL }
	};
	static const luaL_Reg plain[] = {
		{ "name", v_name },
		{ "engine", v_engine },
		{ "close", v_close },
		{ NULL, NULL }
	};

	luaL_newmetatable(L, LCQRS_VIEW);
	lua_createtable(L, 0, 16); /* __index */
	lua_pushvalue(L, -2);
	luaL_setfuncs(L, methods, 1); /* upvalue: the metatable (fast self check) */
	luaL_setfuncs(L, plain, 0);
	lua_setfield(L, -2, "__index");
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, v_count, 1);
	lua_setfield(L, -2, "__len");
	lua_pushcfunction(L, v_close);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, v_close);
	lua_setfield(L, -2, "__close");
	lua_pushcfunction(L, v_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
}
