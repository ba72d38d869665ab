/*
 * bindings/lua/src/engine.c - cqrs.Engine for Lua: a connection to a running
 * engine.
 *
 *     local eng, err = cqrs.connect("orders" [, {readonly = true}])
 *     local eng = cqrs.connect("orders", {client_id = "billing-1"}) -- or an integer
 *         -- a stable client id (1 .. 2^63-1, or a name): a client_seq
 *         -- resent after a lost answer, on a new connection or after an
 *         -- engine restart, answers "duplicate" with the original seq;
 *         -- every submit then needs opts.client_seq
 *     eng:views()                   -- array of view names
 *     eng:view(name)                -- View (one per name), or nil, err, kind
 *     eng:commands()                -- array of command names
 *     eng:command_schema(name)      -- schema table, or nil, err, "notfound"
 *     eng:submit(cmd, fields [, opts])
 *         -- seq, or nil, err, kind [, original seq for "duplicate"]
 *         -- opts: aggregate_id, expected_version, client_seq, timeout (s)
 *     eng:name(), eng:client_id(), eng:close() (also __gc and <close>)
 *
 * submit encodes fields through the command's schema (fields left out are
 * zero; an unknown field raises an error), sends it and waits for the
 * engine's answer: the accepted command's seq (for v:wait), or nil and the
 * engine's reason with kind "rejected", "conflict" or "duplicate"; "stopped"
 * when the engine went away, "timeout" when opts.timeout passed (the command
 * may still be processed). Results that arrive for earlier, abandoned
 * requests are discarded.
 */
#include <stdlib.h>
#include <string.h>

#include "lcqrs.h"

typedef struct lengine {
	char name[CQRS_NAME_MAX];
	int closed;
	int readonly;
	cqrs_client *c;
	uint8_t *rec;     /* command record buffer */
	size_t rec_cap;
} lengine;

static lengine *check_open(lua_State *L)
{
	lengine *e = luaL_checkudata(L, 1, LCQRS_ENGINE);

	if (e->closed)
		luaL_error(L, "operation on a closed cqrs.Engine");
	return e;
}

static int name_ok(const char *s, size_t n)
{
	if (n < 1 || n >= CQRS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

int lcqrs_connect(lua_State *L)
{
	size_t n;
	const char *name = luaL_checklstring(L, 1, &n);
	int readonly = 0, rc;
	lengine *e;
	char what[96];

	cqrs_client_opts opts = { .size = sizeof opts };

	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		lua_getfield(L, 2, "readonly");
		readonly = lua_toboolean(L, -1);
		lua_pop(L, 1);
		lua_getfield(L, 2, "client_id");
		if (lua_type(L, -1) == LUA_TSTRING) {
			opts.client_name = lua_tostring(L, -1); /* the table keeps it alive */
			luaL_argcheck(L, *opts.client_name, 2, "client_id: empty name");
		} else if (lua_isinteger(L, -1)) {
			lua_Integer v = lua_tointeger(L, -1);
			luaL_argcheck(L, v > 0, 2, "client_id: an integer in 1 .. 2^63-1, or a name");
			opts.client_id = (uint64_t)v;
		} else if (!lua_isnil(L, -1)) {
			luaL_argerror(L, 2, "client_id: an integer or a string");
		}
		lua_pop(L, 1);
		luaL_argcheck(L, !(readonly && (opts.client_name || opts.client_id)), 2,
			      "client_id needs a gateway connection (not readonly)");
	}
	luaL_argcheck(L, name_ok(name, n), 1, "engine name: 1..31 of [A-Za-z0-9_]");
	snprintf(what, sizeof what, "connect to engine %s", name);
	rc = cqrs_view_list(name, NULL, 0);
	if (rc < 0)
		return lcqrs_fail(L, rc == -ENOENT ? CQRS_ENOTFOUND : rc, what, NULL, 1);
	e = lua_newuserdatauv(L, sizeof *e, 1);
	memset(e, 0, sizeof *e);
	memcpy(e->name, name, n + 1);
	e->readonly = readonly;
	e->closed = 1; /* until connected: __gc has nothing to do */
	luaL_setmetatable(L, LCQRS_ENGINE);
	lua_newtable(L); /* user value 1: views by name */
	lua_setiuservalue(L, -2, 1);
	if (!readonly) {
		rc = cqrs_client_connect_opts(name, &opts, &e->c);
		if (rc) {
			e->c = NULL;
			snprintf(what, sizeof what, "connect to the gateway of engine %s", name);
			return lcqrs_fail(L, rc, what, NULL, 1);
		}
	}
	e->closed = 0;
	return 1;
}

static int e_views(lua_State *L)
{
	lengine *e = check_open(L);
	cqrs_view_entry *list = NULL;
	int n, m;

	for (;;) {
		n = cqrs_view_list(e->name, NULL, 0);
		if (n < 0)
			return lcqrs_fail(L, n, "list views", NULL, 1);
		list = calloc((size_t)n + 1, sizeof *list);
		if (!list)
			return luaL_error(L, "out of memory");
		m = cqrs_view_list(e->name, list, (size_t)n + 1);
		if (m <= n)
			break;
		free(list); /* more views appeared meanwhile */
	}
	if (m < 0) {
		free(list);
		return lcqrs_fail(L, m, "list views", NULL, 1);
	}
	lua_createtable(L, m, 0);
	for (int i = 0; i < m; i++) {
		lua_pushlstring(L, list[i].name, strnlen(list[i].name, CQRS_NAME_MAX));
		lua_rawseti(L, -2, i + 1);
	}
	free(list);
	return 1;
}

static int e_view(lua_State *L)
{
	lengine *e = check_open(L);
	const char *name = luaL_checkstring(L, 2);
	int n;

	lua_getiuservalue(L, 1, 1);
	lua_getfield(L, -1, name);
	if (lcqrs_view_is_open(L, -1))
		return 1;
	lua_pop(L, 1);
	n = lcqrs_view_open(L, e->name, name);
	if (n == 1) {
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, name);
	}
	return n;
}

static int e_name(lua_State *L)
{
	lengine *e = luaL_checkudata(L, 1, LCQRS_ENGINE);

	lua_pushstring(L, e->name);
	return 1;
}

static int e_close(lua_State *L)
{
	lengine *e = luaL_checkudata(L, 1, LCQRS_ENGINE);

	if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) {
		/* Close the cached views now rather than at their __gc. */
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			if (lcqrs_view_is_open(L, -1) && luaL_getmetafield(L, -1, "__close") != LUA_TNIL) {
				lua_pushvalue(L, -2);
				lua_call(L, 1, 0);
			}
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	cqrs_client_close(e->c);
	e->c = NULL;
	free(e->rec);
	e->rec = NULL;
	e->rec_cap = 0;
	e->closed = 1;
	return 0;
}

/* __gc: the client only. Views outlive their Engine
 * (cqrs.connect(n):view(v) is fine); eng:close() closes them too. */
static int e_gc(lua_State *L)
{
	lengine *e = luaL_checkudata(L, 1, LCQRS_ENGINE);

	cqrs_client_close(e->c);
	e->c = NULL;
	free(e->rec);
	e->rec = NULL;
	e->rec_cap = 0;
	e->closed = 1;
	return 0;
}

static int e_tostring(lua_State *L)
{
	lengine *e = luaL_checkudata(L, 1, LCQRS_ENGINE);

	lua_pushfstring(L, "cqrs.Engine %s%s%s", e->name, e->readonly ? " (readonly)" : "",
			e->closed ? " (closed)" : "");
	return 1;
}

/* ---- commands ---------------------------------------------------------------------- */

static lengine *check_client(lua_State *L)
{
	lengine *e = check_open(L);

	if (!e->c)
		luaL_error(L, "engine %s was connected readonly: no commands", e->name);
	return e;
}

static int e_commands(lua_State *L)
{
	lengine *e = check_client(L);
	int n = cqrs_client_command_count(e->c), k = 0;

	if (n < 0)
		return lcqrs_fail(L, n, "list commands", NULL, 0);
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		const cqrs_schema *s;
		if (cqrs_client_command_at(e->c, i, NULL, &s))
			continue;
		lua_pushlstring(L, s->name, strnlen(s->name, CQRS_NAME_MAX));
		lua_rawseti(L, -2, ++k);
	}
	return 1;
}

static int e_command_schema(lua_State *L)
{
	lengine *e = check_client(L);
	const char *name = luaL_checkstring(L, 2);
	const cqrs_schema *s;
	uint32_t type;
	int rc = cqrs_client_command_type(e->c, name, &type, &s);

	if (rc)
		return lcqrs_fail(L, rc, name, NULL, 0);
	lcqrs_push_schema(L, s, NULL, NULL, 0);
	return 1;
}

static int opt_u64(lua_State *L, int t, const char *k, uint64_t *out)
{
	int present;

	lua_getfield(L, t, k);
	present = !lua_isnil(L, -1);
	if (present) {
		if (!lua_isinteger(L, -1))
			luaL_error(L, "submit option %s must be an integer", k);
		*out = (uint64_t)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	return present;
}

static int e_submit(lua_State *L)
{
	lengine *e = check_client(L);
	const char *name = luaL_checkstring(L, 2);
	const cqrs_schema *s;
	cqrs_submit_opts opts;
	cqrs_result res;
	uint64_t tmo = UINT64_MAX, deadline, now, rid;
	uint32_t type;
	int rc;

	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TTABLE);
	memset(&opts, 0, sizeof opts);
	if (!lua_isnoneornil(L, 4)) {
		luaL_checktype(L, 4, LUA_TTABLE);
		opt_u64(L, 4, "aggregate_id", &opts.aggregate_id);
		if (opt_u64(L, 4, "expected_version", &opts.expected_version))
			opts.flags |= CQRS_CMD_EXPECT_VERSION;
		opt_u64(L, 4, "client_seq", &opts.client_seq);
		lua_getfield(L, 4, "timeout");
		tmo = lcqrs_timeout_ns(L, -1);
		lua_pop(L, 1);
	}
	rc = cqrs_client_command_type(e->c, name, &type, &s);
	if (rc) {
		char what[96];
		snprintf(what, sizeof what, "engine %s has no command %s", e->name, name);
		return rc == CQRS_ENOTFOUND ? luaL_error(L, "%s", what) : lcqrs_fail(L, rc, what, NULL, 0);
	}
	if (e->rec_cap < s->size) {
		uint8_t *p = realloc(e->rec, s->size);
		if (!p)
			return luaL_error(L, "out of memory");
		e->rec = p;
		e->rec_cap = s->size;
	}
	memset(e->rec, 0, s->size);
	if (!lua_isnoneornil(L, 3)) {
		lua_pushnil(L);
		while (lua_next(L, 3)) {
			const cqrs_field *f;
			if (lua_type(L, -2) != LUA_TSTRING)
				return luaL_error(L, "%s: field names must be strings", name);
			f = cqrs_schema_field(s, lua_tostring(L, -2));
			if (!f)
				return luaL_error(L, "%s has no field '%s'", name, lua_tostring(L, -2));
			lcqrs_set_field(L, s, e->rec, f, lua_gettop(L));
			lua_pop(L, 1);
		}
	}
	now = lcqrs_mono_ns();
	deadline = tmo == UINT64_MAX || tmo > UINT64_MAX - now ? UINT64_MAX : now + tmo;
	while (cqrs_client_pending(e->c) > 0 && cqrs_client_poll(e->c, &res) == 1)
		; /* results of abandoned requests */
	for (;;) {
		rc = cqrs_client_send(e->c, type, e->rec, s->size, &opts, &rid);
		if (rc != -EAGAIN)
			break;
		rc = cqrs_client_wait(e->c, &res, 1000000); /* ring full: collect, retry */
		if (rc < 0 && rc != -ETIMEDOUT && rc != -EAGAIN)
			break;
		if (lcqrs_mono_ns() >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	if (rc)
		return lcqrs_fail(L, rc, name, NULL, 0);
	for (;;) {
		now = lcqrs_mono_ns();
		if (now >= deadline)
			return lcqrs_fail(L, -ETIMEDOUT, name, NULL, 0);
		rc = cqrs_client_wait(e->c, &res, deadline - now);
		if (rc == 1 && res.request_id == rid)
			break;
		if (rc < 0 && rc != -ETIMEDOUT)
			return lcqrs_fail(L, rc, name, NULL, 0);
	}
	if (res.status == 0) {
		lua_pushinteger(L, (lua_Integer)res.seq);
		return 1;
	}
	res.reason[sizeof res.reason - 1] = 0;
	lcqrs_fail(L, res.status, name, res.reason, 0);
	if (res.status == CQRS_EDUPLICATE) {
		lua_pushinteger(L, (lua_Integer)res.seq);
		return 4;
	}
	return 3;
}

static int e_client_id(lua_State *L)
{
	lengine *e = check_open(L);

	if (!e->c)
		return 0;
	lua_pushinteger(L, (lua_Integer)cqrs_client_id(e->c));
	return 1;
}

void lcqrs_engine_register(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "views", e_views },
		{ "view", e_view },
		{ "name", e_name },
		{ "close", e_close },
		{ "commands", e_commands },
		{ "command_schema", e_command_schema },
		{ "submit", e_submit },
		{ "client_id", e_client_id },
		{ NULL, NULL }
	};

	luaL_newmetatable(L, LCQRS_ENGINE);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, e_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, e_close);
	lua_setfield(L, -2, "__close");
	lua_pushcfunction(L, e_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
}
