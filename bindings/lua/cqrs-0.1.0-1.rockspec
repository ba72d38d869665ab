-- luarocks make (in bindings/lua): builds the Lua 5.4 module `cqrs` with
-- bindings/lua/Makefile, which finds the C library as README.md says
-- (CQRS_PREFIX, else the source tree around bindings/lua, else pkg-config).
--   luarocks --lua-version 5.4 make            -- system tree (root)
--   luarocks --lua-version 5.4 --local make    -- ~/.luarocks
rockspec_format = "3.0"
package = "cqrs"
version = "0.1.0-1"
source = {
   url = "git+file://../..",
}
description = {
   summary = "Read the views of a running cqrs engine from shared memory and submit commands",
   detailed = [[
      A Lua 5.4 C module over libcqrs_client: cqrs.connect(engine),
      eng:view(name), v:get(key), v:find(field, value), v:scan(), v:wait(seq),
      eng:submit(command, fields) through the engine's shared-memory gateway.
   ]],
   homepage = "https://example.invalid/cqrs",
   license = "see the cqrs source tree",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   XXHASH = { header = "xxhash.h", library = "xxhash" },
   CK = { header = "ck_pr.h", library = "ck" },
}
build = {
   type = "make",
   makefile = "Makefile",
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LIBFLAG = "$(LIBFLAG)",
      LUA_INCDIR = "$(LUA_INCDIR)",
      XXHASH_INCDIR = "$(XXHASH_INCDIR)",
      CK_INCDIR = "$(CK_INCDIR)",
   },
   install_variables = {
      INST_LIBDIR = "$(LIBDIR)",
   },
}
