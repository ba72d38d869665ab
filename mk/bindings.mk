# mk/bindings.mk - the Python and Lua bindings, built in-tree for the tests
# and benchmarks (included by the Makefile; `make` builds them):
#
#   $(BUILD)/python/cqrs/              Python package `cqrs` (bindings/python/cqrs/:
#                                      __init__.py, stubs, py.typed) with its
#                                      extension cqrs/_cqrs<EXT_SUFFIX>
#   $(BUILD)/lua/cqrs.so               Lua 5.4 module `cqrs`   (bindings/lua)
#
# Both link $(BUILD)/libcqrs_client.a statically (its objects are -fPIC), so
# they load without LD_LIBRARY_PATH, and export only their init function.
# libcqrs_client never brings liburing or jemalloc (tests/scripts/python.sh
# and lua.sh check the modules' dependencies).
#
# PYTHON picks the interpreter the extension is built for: Debian's
# /usr/bin/python3 by default (python3-dev's headers match it; a pyenv
# python3 earlier on PATH may have none). Use the same one to import it:
#   PYTHONPATH=$(BUILD)/python /usr/bin/python3 -c 'import cqrs'
#   LUA_CPATH='$(BUILD)/lua/?.so;;' lua5.4 -e 'require "cqrs"'
# The header probe below runs when make reads this file, after the Makefile
# has run mk/deps.sh (which installs python3-dev and liblua5.4-dev), so a
# fresh machine builds both modules on its first make. A binding whose
# headers are still missing is skipped with a note (its tests then skip
# too). PY_INC comes from the chosen interpreter's sysconfig rather than
# pkg-config's python3.pc, which describes Debian's default python3 only.
# Installing: see bindings/python/README.md, bindings/lua/README.md.

PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
PY_INC := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
PY_EXT := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX") or ".so")' 2>/dev/null)
LUA_INC := $(shell pkg-config --cflags-only-I lua5.4 2>/dev/null | sed 's/-I//g')

PY_SRC := $(sort $(wildcard bindings/python/src/*.c))
PY_OBJ := $(PY_SRC:%.c=$(BUILD)/obj/%.o)
PY_MOD := $(BUILD)/python/cqrs/_cqrs$(PY_EXT)
PY_PKG_SRC := $(sort $(wildcard bindings/python/cqrs/*.py bindings/python/cqrs/*.pyi)) bindings/python/cqrs/py.typed
PY_PKG := $(PY_PKG_SRC:bindings/python/cqrs/%=$(BUILD)/python/cqrs/%)
LUA_SRC := $(sort $(wildcard bindings/lua/src/*.c))
LUA_OBJ := $(LUA_SRC:%.c=$(BUILD)/obj/%.o)
LUA_MOD := $(BUILD)/lua/cqrs.so

HAVE_PY := $(if $(PY_INC),$(wildcard $(PY_INC)/Python.h))
HAVE_LUA := $(if $(LUA_INC),$(wildcard $(LUA_INC)/lua.h))

# Headers of Python and Lua come in as system headers: warnings stay on
# (-Werror) for our code only. bindings.flags rebuilds the objects when
# PYTHON (or its include folder) changes.
$(PY_OBJ): CPPFLAGS_ALL += -isystem $(PY_INC)
$(LUA_OBJ): CPPFLAGS_ALL += -isystem $(LUA_INC)
$(PY_OBJ) $(LUA_OBJ): $(BUILD)/bindings.flags

$(BUILD)/bindings.flags: FORCE_BINDFLAGS
	@mkdir -p $(BUILD)
	@echo '$(PYTHON) $(PY_INC)' | cmp -s - $@ || echo '$(PYTHON) $(PY_INC)' > $@

.PHONY: FORCE_BINDFLAGS bindings-python bindings-lua

ifneq ($(HAVE_PY),)
bindings: $(PY_MOD) $(PY_PKG)
else
bindings: bindings-python
bindings-python:
	@echo "bindings: no Python.h for $(PYTHON) (install python3-dev): skipping the Python module"
endif

ifneq ($(HAVE_LUA),)
bindings: $(LUA_MOD)
else
bindings: bindings-lua
bindings-lua:
	@echo "bindings: no lua.h for Lua 5.4 (install liblua5.4-dev): skipping the Lua module"
endif

# Python's and Lua's own symbols come from the interpreter that loads the
# module, so there is no -z defs here.
$(PY_MOD): $(PY_OBJ) $(BUILD)/libcqrs_client.a bindings/python/cqrs.map
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -Wl,--exclude-libs,ALL -Wl,--version-script=bindings/python/cqrs.map \
		-o $@ $(PY_OBJ) $(BUILD)/libcqrs_client.a $(CLIENT_LIBS) -lm

$(BUILD)/python/cqrs/%: bindings/python/cqrs/%
	@mkdir -p $(dir $@)
	cp $< $@

$(LUA_MOD): $(LUA_OBJ) $(BUILD)/libcqrs_client.a bindings/lua/cqrs.map
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -Wl,--exclude-libs,ALL -Wl,--version-script=bindings/lua/cqrs.map \
		-o $@ $(LUA_OBJ) $(BUILD)/libcqrs_client.a $(CLIENT_LIBS) -lm
