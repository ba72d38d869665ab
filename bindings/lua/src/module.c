/*
 * bindings/lua/src/module.c - the Lua 5.4 module `cqrs`: error returns,
 * field conversions through the library's cqrs_record_get/_set, schema
 * tables, luaopen_cqrs.
 *
 *     local cqrs = require "cqrs"
 *     local eng = assert(cqrs.connect("orders"))
 *     local seq = assert(eng:submit("CreateOrder", {order_id = 1, customer_id = 7,
 *                                    item_count = 2, total = 1999}))
 *     local v = assert(eng:view("order_summaries"))
 *     assert(v:wait(seq))
 *     local row = v:get(1)          -- table or nil
 *
 * Field types in Lua: integers (u8..u64, i8..i64, ts in ns), f64 numbers,
 * bool booleans, str and bytes strings (str up to its first NUL; bytes the
 * whole field).
 */
#include <string.h>
#include <time.h>

#include "lcqrs.h"

const char *lcqrs_kind(int code)
{
	switch (code) {
	case CQRS_ENOTFOUND: case -ENOENT: return "notfound";
	case CQRS_EREJECTED: return "rejected";
	case CQRS_ECONFLICT: return "conflict";
	case CQRS_EDUPLICATE: return "duplicate";
	case CQRS_ESTOPPED: return "stopped";
	case -ETIMEDOUT: return "timeout";
	default: return cqrs_errname(code);
	}
}

int lcqrs_fail(lua_State *L, int code, const char *what, const char *reason, int detail)
{
	const char *last = detail ? cqrs_last_error() : "";

	lua_pushnil(L);
	if (reason && *reason)
		lua_pushstring(L, reason);
	else if (last && *last)
		lua_pushfstring(L, "%s: %s (%s)", what, cqrs_strerror(code), last);
	else
		lua_pushfstring(L, "%s: %s", what, code == -ETIMEDOUT ? "timed out" : cqrs_strerror(code));
	lua_pushstring(L, lcqrs_kind(code));
	return 3;
}

uint64_t lcqrs_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t lcqrs_timeout_ns(lua_State *L, int idx)
{
	lua_Number s;

	if (lua_isnoneornil(L, idx))
		return UINT64_MAX;
	s = luaL_checknumber(L, idx);
	luaL_argcheck(L, s >= 0, idx, "timeout must be >= 0 seconds");
	return s >= 1.8e10 ? UINT64_MAX : (uint64_t)(s * 1e9);
}

void lcqrs_push_field(lua_State *L, const cqrs_schema *s, const uint8_t *rec, const cqrs_field *f)
{
	cqrs_value v;

	if (cqrs_record_get(s, rec, f, &v)) {
		lua_pushnil(L);
		return;
	}
	switch (f->type) {
	case CQRS_FT_U8: case CQRS_FT_U16: case CQRS_FT_U32: case CQRS_FT_U64:
		lua_pushinteger(L, (lua_Integer)v.v.u);
		break;
	case CQRS_FT_I8: case CQRS_FT_I16: case CQRS_FT_I32: case CQRS_FT_I64: case CQRS_FT_TS:
		lua_pushinteger(L, (lua_Integer)v.v.i);
		break;
	case CQRS_FT_F64: lua_pushnumber(L, v.v.f); break;
	case CQRS_FT_BOOL: lua_pushboolean(L, v.v.u != 0); break;
	case CQRS_FT_STR: case CQRS_FT_BYTES: lua_pushlstring(L, v.v.b.ptr, v.v.b.len); break;
	default: lua_pushnil(L);
	}
}

void lcqrs_set_field(lua_State *L, const cqrs_schema *s, uint8_t *rec, const cqrs_field *f, int idx)
{
	cqrs_value v;
	int t = lua_type(L, idx);

	if (f->type == CQRS_FT_STR || f->type == CQRS_FT_BYTES) {
		size_t n;
		if (t != LUA_TSTRING)
			luaL_error(L, "field %s (%s) wants a string, not %s", f->name,
				   cqrs_ftype_name(f->type), luaL_typename(L, idx));
		v.type = CQRS_FT_BYTES;
		v.v.b.ptr = lua_tolstring(L, idx, &n);
		v.v.b.len = n;
	} else if (f->type == CQRS_FT_BOOL && t == LUA_TBOOLEAN) {
		v.type = CQRS_FT_U64;
		v.v.u = (uint64_t)lua_toboolean(L, idx);
	} else if (t == LUA_TNUMBER && lua_isinteger(L, idx)) {
		lua_Integer i = lua_tointeger(L, idx);
		if (f->type == CQRS_FT_U64 || i >= 0) {
			/* u64: the integer's bit pattern (Lua has no unsigned type) */
			v.type = CQRS_FT_U64;
			v.v.u = (uint64_t)i;
		} else {
			v.type = CQRS_FT_I64;
			v.v.i = (int64_t)i;
		}
	} else if (t == LUA_TNUMBER) {
		v.type = CQRS_FT_F64; /* integral floats fit integer fields exactly */
		v.v.f = (double)lua_tonumber(L, idx);
	} else {
		luaL_error(L, "field %s (%s) wants a %s, not %s", f->name, cqrs_ftype_name(f->type),
			   f->type == CQRS_FT_BOOL ? "boolean" : "number", luaL_typename(L, idx));
		return;
	}
	if (cqrs_record_set(s, rec, f, &v)) {
		if (v.type == CQRS_FT_BYTES) /* too long, or a NUL in a str: the library says which */
			luaL_error(L, "%s", cqrs_last_error());
		else
			luaL_error(L, "%s is out of range for field %s (%s)", lua_tostring(L, idx),
				   f->name, cqrs_ftype_name(f->type));
	}
}

static void set_str(lua_State *L, const char *k, const char *v, size_t max)
{
	lua_pushlstring(L, v, strnlen(v, max));
	lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

void lcqrs_push_schema(lua_State *L, const cqrs_schema *s, const char *key,
		       const char (*indexes)[CQRS_NAME_MAX], unsigned nindexes)
{
	lua_createtable(L, 0, 6);
	set_str(L, "name", s->name, CQRS_NAME_MAX);
	set_int(L, "size", s->size);
	set_int(L, "hash", (lua_Integer)cqrs_schema_hash(s));
	if (key && *key)
		set_str(L, "key", key, CQRS_NAME_MAX);
	lua_createtable(L, (int)nindexes, 0);
	for (unsigned i = 0; i < nindexes; i++) {
		lua_pushlstring(L, indexes[i], strnlen(indexes[i], CQRS_NAME_MAX));
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "indexes");
	lua_createtable(L, (int)s->nfields, 0);
	for (uint32_t i = 0; i < s->nfields; i++) {
		const cqrs_field *f = &s->fields[i];
		lua_createtable(L, 0, 4);
		set_str(L, "name", f->name, CQRS_NAME_MAX);
		set_str(L, "type", cqrs_ftype_name(f->type), 16);
		set_int(L, "offset", f->offset);
		set_int(L, "size", f->size);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "fields");
}

static int l_strerror(lua_State *L)
{
	lua_pushstring(L, cqrs_strerror((int)luaL_checkinteger(L, 1)));
	return 1;
}

/* The module's only exported symbol (-fvisibility=hidden elsewhere). */
__attribute__((visibility("default"))) int luaopen_cqrs(lua_State *L);

int luaopen_cqrs(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "connect", lcqrs_connect },
		{ "strerror", l_strerror },
		{ NULL, NULL }
	};

	lcqrs_view_register(L);
	lcqrs_engine_register(L);
	luaL_newlib(L, fns);
	lua_pushliteral(L, "0.1.0");
	lua_setfield(L, -2, "_VERSION");
	/* Always true: the gateway client is part of libcqrs_client. Kept
	 * for scripts written when it could be absent. */
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "HAVE_CLIENT");
	return 1;
}
