/*
 * bindings/lua/src/lcqrs.h - internals shared by the Lua 5.4 module `cqrs`
 * (module.c, view.c, engine.c).
 *
 * Object model
 *   cqrs.Engine  full userdata: engine name, its gateway client (when built
 *                in and not readonly); user value 1 caches its Views by name.
 *   cqrs.View    full userdata: one cqrs_view handle, a private copy of the
 *                row schema of the generation last seen, a row buffer and a
 *                scratch record for encoding keys; user value 1 is the array
 *                of field names as Lua strings (interned once, so building a
 *                row table hashes no C strings).
 *
 * Conventions (Lua style)
 *   - Misuse (wrong argument types, unknown field names, closed objects)
 *     raises an error.
 *   - Runtime outcomes return nil, message, kind: kind is "notfound",
 *     "rejected", "conflict", "duplicate", "stopped", "timeout", or the
 *     library's code name ("CQRS_EFORMAT", "EACCES", ...).
 *   - u64 values above 2^63-1 appear as negative integers (Lua's integers
 *     are signed 64-bit; math.ult compares them as unsigned) and u64 keys and
 *     fields take any integer as its 64-bit pattern.
 */
#ifndef LCQRS_H
#define LCQRS_H

#include <lauxlib.h>
#include <lua.h>

#include <stdint.h>

#include "cqrs_common.h"
#include "cqrs_schema.h"
#include "cqrs_view.h"

#include "cqrs_client.h"

#define LCQRS_ENGINE "cqrs.Engine"
#define LCQRS_VIEW "cqrs.View"

/* Pushes nil, message, kind and returns 3. what names the operation;
 * detail appends cqrs_last_error(); reason (or NULL) is the engine's. */
int lcqrs_fail(lua_State *L, int code, const char *what, const char *reason, int detail);

/* The kind string for a code (see above). */
const char *lcqrs_kind(int code);

/* Seconds at idx (nil/absent: forever) to ns; raises on bad input. */
uint64_t lcqrs_timeout_ns(lua_State *L, int idx);

uint64_t lcqrs_mono_ns(void);

/* Pushes field f of rec (schema s) as a Lua value. */
void lcqrs_push_field(lua_State *L, const cqrs_schema *s, const uint8_t *rec, const cqrs_field *f);

/* Sets field f of rec from the Lua value at idx; raises a Lua error naming
 * the field when the value has the wrong type or does not fit. */
void lcqrs_set_field(lua_State *L, const cqrs_schema *s, uint8_t *rec, const cqrs_field *f, int idx);

/* Pushes a table describing schema s: {name=, size=, hash=, key=,
 * indexes={...}, fields={{name=, type=, offset=, size=}, ...}}. */
void lcqrs_push_schema(lua_State *L, const cqrs_schema *s, const char *key,
		       const char (*indexes)[CQRS_NAME_MAX], unsigned nindexes);

/* view.c */
void lcqrs_view_register(lua_State *L);
/* Opens a view and pushes it, or pushes nil, msg, kind; returns the count. */
int lcqrs_view_open(lua_State *L, const char *engine, const char *name);
/* The View at idx if it is open (else NULL, nothing raised). */
int lcqrs_view_is_open(lua_State *L, int idx);

/* engine.c */
void lcqrs_engine_register(lua_State *L);
int lcqrs_connect(lua_State *L);

#endif /* LCQRS_H */
