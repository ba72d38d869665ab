# cqrs - build, test, bench, sanitizers, coverage, install.
#
#   make            release build: libraries, the cqrs tool, the demo and the
#                   Python and Lua modules -> build/
#   make test       builds the test programs and runs every test
#                   (tests/run.sh); ends with "N passed, N failed, N skipped"
#   make tests-build  the test programs only (run them with tests/run.sh)
#   make soak       the kill -9 loops for SOAK_CYCLES (200) cycles each
#   make run        the reference demo (cqrs-orders demo $(ARGS))
#   make exchange   the matching-engine demo (cqrs-exchange demo $(ARGS))
#   make bench      benchmark suite; tables on stdout, raw JSON and latency
#                   percentile plots (PNG, bench/plot.py) in build/bench/
#   make asan/tsan  unit + stress (+ fuzz replay) tests under AddressSanitizer
#                   with UBSan / ThreadSanitizer, in $(BUILD)/asan, $(BUILD)/tsan
#   make fuzz       libFuzzer targets (clang), each run FUZZ_SECONDS (30);
#                   inputs with new coverage are merged into tests/fuzz/corpus/
#   make coverage   every test with gcc --coverage in $(BUILD)/coverage, then
#                   line coverage per folder and the least-covered files
#   make install PREFIX=/usr/local [DESTDIR=]   headers, libraries, cqrs,
#                   pkg-config files (cqrs.pc, cqrs_client.pc)
#   make deps       installs the Debian packages that are missing (mk/deps.sh)
#   make clean      removes $(BUILD)
#
# Dependencies: the first make in a build folder runs mk/deps.sh while it
# reads this file (before anything probes for headers or asks pkg-config for
# flags), then leaves $(BUILD)/.deps-ok (the package list and the script's checksum) so later runs skip the check until either changes. Compile
# and link flags of every library come from pkg-config.
#
# Release and debug: everything under $(BUILD)/obj is the release build
# (-O2, CQRS_ASSERT compiled out): the libraries, cqrs, cqrs-orders, the
# bindings and the benchmarks (`make`, `make run`, `make bench`,
# `make install`). The test programs (tests/unit, stress, proc and the fuzz
# replayers) are compiled with -DCQRS_DEBUG and link $(BUILD)/debug/libcqrs.a,
# the same library sources compiled with -DCQRS_DEBUG into
# $(BUILD)/debug/obj, so internal invariants are checked while they run.
# The test scripts (tests/scripts/*.sh) run the release cqrs, cqrs-orders and
# bindings: they test what is shipped. DEBUG=1 compiles everything with
# -DCQRS_DEBUG into one set of objects (asan, tsan and coverage do so).
#
# Sources are picked up by folder, so adding a file needs no Makefile edit:
#   core/ ringbuf/ shm/ client/   -> libcqrs_client (no liburing, no jemalloc)
#   engine/ engine/journal/ engine/model/ engine/replication/
#                                 -> libcqrs (adds the engine; links both)
#   tools/*.c                     -> build/cqrs
#   examples/orders/*.c           -> build/cqrs-orders
#   examples/exchange/*.c         -> build/cqrs-exchange (book.c and
#                                    exchange_domain.c also into test_exchange
#                                    and bench_exchange)
#   tests/unit/test_*.c           -> cmocka programs       build/tests/unit/
#   tests/stress/*.c, tests/proc/*.c -> stand-alone programs build/tests/{stress,proc}/
#   tests/lib/*.c                 -> linked into every test program
#   tests/fuzz/fuzz_*.c           -> replayed over tests/fuzz/corpus/<name>/ by
#                                    make test; libFuzzer programs by make fuzz
#   bench/bench_*.cc              -> Google Benchmark programs
#   bindings/python/src, bindings/lua/src -> mk/bindings.mk

BUILD ?= build
PREFIX ?= /usr/local
CC ?= cc
CXX ?= c++
SAN ?=
DEBUG ?=

# ---- dependencies -------------------------------------------------------------

# pkg-config names; mk/deps.sh maps each to its Debian package.
PKGS := liburing jemalloc ck libxxhash cmocka benchmark lua5.4 python3 lmdb sqlite3 libmicrohttpd libnats
DEPS_OK ?= $(BUILD)/.deps-ok
# What the stamp records: the list and the script, so a build folder made
# before either changed checks the packages again.
DEPS_ID := $(PKGS) $(firstword $(shell cksum mk/deps.sh))

# Runs while make reads this file, so that the pkg-config flags below and the
# bindings' header probe (mk/bindings.mk) see the installed packages.
ifneq ($(shell cat $(DEPS_OK) 2>/dev/null),$(DEPS_ID))
ifneq ($(filter-out clean deps,$(or $(MAKECMDGOALS),all)),)
DEPS_RESULT := $(shell sh mk/deps.sh $(PKGS) >&2 && mkdir -p $(dir $(DEPS_OK)) && echo '$(DEPS_ID)' > $(DEPS_OK) && echo ok)
ifneq ($(DEPS_RESULT),ok)
$(error mk/deps.sh could not install the packages above)
endif
endif
endif

CLIENT_PKGS := libxxhash ck
# libnats (the replicator, engine/replication/) only in the engine library.
ENGINE_PKGS := liburing jemalloc libnats $(CLIENT_PKGS)
DEP_CFLAGS := $(shell pkg-config --cflags $(ENGINE_PKGS) cmocka 2>/dev/null)
CLIENT_LIBS := $(shell pkg-config --libs $(CLIENT_PKGS) 2>/dev/null)
ENGINE_LIBS := $(shell pkg-config --libs $(ENGINE_PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
BENCH_CFLAGS := $(shell pkg-config --cflags benchmark lmdb sqlite3 2>/dev/null)
BENCH_LIBS := $(shell pkg-config --libs benchmark lmdb sqlite3 2>/dev/null)
# libm and librt are part of the C library and have no .pc file. The
# libraries need libm (core/record.c's floor(), a call at -O0) and not librt.
SYS_LIBS := -lm -lrt

# ---- flags --------------------------------------------------------------------

WARN := -Wall -Wextra -Werror -Wno-missing-field-initializers
CPPFLAGS_ALL := -D_GNU_SOURCE -Iinclude -I. $(DEP_CFLAGS)
OPT ?= -O2 -g
CFLAGS_ALL := -std=c11 $(OPT) $(WARN) -fPIC -fvisibility=hidden -pthread $(SAN) $(CFLAGS)
CXXFLAGS_ALL := -std=c++20 $(OPT) $(WARN) -pthread $(SAN) $(CXXFLAGS)
LDFLAGS_ALL := -pthread $(SAN) $(LDFLAGS)

# DBG: where the test programs' objects and CQRS_DEBUG library live.
ifeq ($(DEBUG),1)
CPPFLAGS_ALL += -DCQRS_DEBUG
DBG := $(BUILD)
else
DBG := $(BUILD)/debug
endif

# ---- sources ------------------------------------------------------------------

CLIENT_SRC := $(sort $(wildcard core/*.c ringbuf/*.c shm/*.c client/*.c))
ENGINE_SRC := $(sort $(wildcard engine/*.c engine/journal/*.c engine/model/*.c engine/replication/*.c))
LIB_SRC := $(CLIENT_SRC) $(ENGINE_SRC)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/obj/%.o)
ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)

TOOL_SRC := $(sort $(wildcard tools/*.c))
ORDERS_SRC := $(sort $(wildcard examples/orders/*.c))
EXCH_SRC := $(sort $(wildcard examples/exchange/*.c))
EXCH_DOMAIN_SRC := examples/exchange/book.c examples/exchange/book_check.c examples/exchange/exchange_domain.c
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
STRESS_SRC := $(sort $(wildcard tests/stress/*.c))
PROC_SRC := $(sort $(wildcard tests/proc/*.c))
TESTLIB_SRC := $(sort $(wildcard tests/lib/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.cc))
BENCHLIB_SRC := $(sort $(wildcard bench/lib/*.c))

UNIT_BIN := $(UNIT_SRC:tests/%.c=$(BUILD)/tests/%)
STRESS_BIN := $(STRESS_SRC:tests/%.c=$(BUILD)/tests/%)
PROC_BIN := $(PROC_SRC:tests/%.c=$(BUILD)/tests/%)
FUZZ_BIN := $(FUZZ_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_BIN := $(UNIT_BIN) $(STRESS_BIN) $(PROC_BIN) $(FUZZ_BIN)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(DBG)/obj/%.o)
BENCH_BIN := $(BENCH_SRC:bench/%.cc=$(BUILD)/bench/%)
BENCHLIB_OBJ := $(BENCHLIB_SRC:%.c=$(BUILD)/obj/%.o)

LIB_FILES := $(BUILD)/libcqrs_client.a $(BUILD)/libcqrs_client.so.0 $(BUILD)/libcqrs_client.so \
	$(BUILD)/libcqrs.a $(BUILD)/libcqrs.so.0 $(BUILD)/libcqrs.so
PROGS := $(BUILD)/cqrs $(if $(ORDERS_SRC),$(BUILD)/cqrs-orders) $(if $(EXCH_SRC),$(BUILD)/cqrs-exchange)

.PHONY: all deps test soak run exchange bench asan tsan fuzz coverage install clean tests-build bindings
.DEFAULT_GOAL := all
# Keep object files of test and bench programs between runs.
.SECONDARY:

all: $(LIB_FILES) $(PROGS) bindings

deps:
	@sh mk/deps.sh $(PKGS)
	@mkdir -p $(dir $(DEPS_OK)) && echo '$(DEPS_ID)' > $(DEPS_OK)

# ---- libraries and programs (release) -----------------------------------------

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libcqrs_client.a: $(CLIENT_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcqrs.a: $(CLIENT_OBJ) $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^

# -z defs: a symbol no object or listed library defines fails the link, so
# the libraries' dependencies are exactly ENGINE_LIBS / CLIENT_LIBS (and
# mk/cqrs.pc.in, mk/cqrs_client.pc.in say the same).
SO_LDFLAGS = -shared -Wl,-z,defs $(LDFLAGS_ALL)

# The real files carry the soname (libX.so.0, what programs load); libX.so
# is the link-time name, a symlink to it, as an installed library has.
$(BUILD)/libcqrs_client.so.0: $(CLIENT_OBJ) cqrs_client.map
	$(CC) $(SO_LDFLAGS) -Wl,--version-script=cqrs_client.map -Wl,-soname,libcqrs_client.so.0 \
		-o $@ $(CLIENT_OBJ) $(CLIENT_LIBS) -lm

$(BUILD)/libcqrs.so.0: $(CLIENT_OBJ) $(ENGINE_OBJ) cqrs.map
	$(CC) $(SO_LDFLAGS) -Wl,--version-script=cqrs.map -Wl,-soname,libcqrs.so.0 \
		-o $@ $(CLIENT_OBJ) $(ENGINE_OBJ) $(ENGINE_LIBS) -lm

$(BUILD)/libcqrs_client.so $(BUILD)/libcqrs.so: $(BUILD)/%.so: $(BUILD)/%.so.0
	ln -sfn $(notdir $<) $@

$(BUILD)/cqrs: $(TOOL_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libcqrs.a
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(BUILD)/libcqrs.a $(ENGINE_LIBS) $(shell pkg-config --libs libmicrohttpd) $(SYS_LIBS)

$(BUILD)/cqrs-orders: $(ORDERS_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libcqrs.a
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(BUILD)/libcqrs.a $(ENGINE_LIBS) $(SYS_LIBS)

$(BUILD)/cqrs-exchange: $(EXCH_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libcqrs.a
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(BUILD)/libcqrs.a $(ENGINE_LIBS) $(SYS_LIBS)

# ---- the debug library the tests link ------------------------------------------

ifneq ($(DBG),$(BUILD))
$(DBG)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -DCQRS_DEBUG $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(DBG)/libcqrs.a: $(LIB_SRC:%.c=$(DBG)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^
endif

# ---- tests --------------------------------------------------------------------

# One rule for every test program: its object, tests/lib, the debug library.
# Unit tests add cmocka; fuzz targets built as corpus replayers with the
# ordinary compiler get main() from tests/fuzz/replay.c.
$(UNIT_BIN): TEST_LIBS := $(CMOCKA_LIBS)
$(FUZZ_BIN): $(DBG)/obj/tests/fuzz/replay.o
$(BUILD)/tests/unit/test_exchange: $(EXCH_DOMAIN_SRC:%.c=$(DBG)/obj/%.o)
$(TEST_BIN): $(BUILD)/tests/%: $(DBG)/obj/tests/%.o $(TESTLIB_OBJ) $(DBG)/libcqrs.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(DBG)/libcqrs.a $(TEST_LIBS) $(ENGINE_LIBS) $(SYS_LIBS)

tests-build: all $(TEST_BIN)

test: tests-build
	@BUILD=$(BUILD) sh tests/run.sh $(TESTS)

# The crash loops run long (outside make test): SOAK_CYCLES kill -9 cycles
# each, with a gateway client killed at random, a reader open across every
# restart, kills during start, /dev/shm usage checked every cycle, and
# reboots (every segment removed) restored from view checkpoints.
SOAK_CYCLES ?= 200
soak: tests-build
	$(BUILD)/tests/proc/test_engine_killloop $(SOAK_CYCLES)
	$(BUILD)/tests/proc/view_restart_readers $(SOAK_CYCLES)
	$(BUILD)/tests/proc/engine_start_kill $(SOAK_CYCLES)
	$(BUILD)/tests/proc/view_reboot_loop $(SOAK_CYCLES)
	CQRS_RET_ITERS=1000000 CQRS_TEST_FILTER=test_plan_model $(BUILD)/tests/unit/test_retention
	$(BUILD)/tests/proc/retention_kill $(SOAK_CYCLES)
	$(BUILD)/tests/proc/retention_engine_kill $(SOAK_CYCLES)

# Sub-builds in their own folders, every object with CQRS_DEBUG (DEBUG=1).
SUBMAKE_ARGS = --no-print-directory DEPS_OK=$(DEPS_OK) DEBUG=1

ASAN_BUILD ?= $(BUILD)/asan
TSAN_BUILD ?= $(BUILD)/tsan
asan:
	$(MAKE) $(SUBMAKE_ARGS) BUILD=$(ASAN_BUILD) OPT="-O1 -g" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" tests-build
	BUILD=$(ASAN_BUILD) CQRS_SAN=asan ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 sh tests/run.sh unit stress fuzz

tsan:
	$(MAKE) $(SUBMAKE_ARGS) BUILD=$(TSAN_BUILD) OPT="-O1 -g" SAN="-fsanitize=thread" tests-build
	BUILD=$(TSAN_BUILD) CQRS_SAN=tsan TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" sh tests/run.sh unit stress

# Coverage: counters from an earlier run are removed first; the tests'
# result is the target's exit status, the report is printed either way.
COV_BUILD ?= $(BUILD)/coverage
coverage:
	$(MAKE) $(SUBMAKE_ARGS) BUILD=$(COV_BUILD) OPT="-O0 -g" SAN="--coverage" tests-build
	@find $(COV_BUILD) -name '*.gcda' -delete
	@BUILD=$(COV_BUILD) sh tests/run.sh $(TESTS); rc=$$?; \
	  sh mk/coverage.sh $(COV_BUILD); exit $$rc

# libFuzzer: the library and the targets compiled once with clang into
# $(FUZZ_DIR)/obj (fuzzer-no-link instruments without a main), each target
# linked with -fsanitize=fuzzer.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SAN := address,undefined
FUZZ_CFLAGS := -std=c11 -O1 -g $(WARN) -fno-omit-frame-pointer -pthread -DCQRS_DEBUG \
	-fsanitize=fuzzer-no-link,$(FUZZ_SAN)
FUZZ_LF := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS_ALL) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libcqrs.a: $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_LF): $(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o $(FUZZ_DIR)/libcqrs.a
	$(FUZZ_CC) -fsanitize=fuzzer,$(FUZZ_SAN) -pthread -o $@ $< $(FUZZ_DIR)/libcqrs.a $(ENGINE_LIBS) $(SYS_LIBS)

fuzz: $(FUZZ_LF)
	@for n in $(notdir $(FUZZ_LF)); do \
	  mkdir -p $(FUZZ_DIR)/$$n.corpus; \
	  $(FUZZ_DIR)/$$n -max_total_time=$(FUZZ_SECONDS) $(FUZZ_DIR)/$$n.corpus tests/fuzz/corpus/$$n || exit 1; \
	  $(FUZZ_DIR)/$$n -merge=1 tests/fuzz/corpus/$$n $(FUZZ_DIR)/$$n.corpus 2>/dev/null || exit 1; \
	done

# ---- bench --------------------------------------------------------------------

# Bench programs may use the orders domain (examples/orders/orders_domain.c).
ORDERS_DOMAIN_OBJ := $(BUILD)/obj/examples/orders/orders_domain.o
$(BUILD)/bench/%: bench/%.cc $(BENCHLIB_OBJ) $(ORDERS_DOMAIN_OBJ) $(BUILD)/libcqrs.a bench/harness.h
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS_ALL) $(BENCH_CFLAGS) $(CXXFLAGS_ALL) -o $@ $(filter %.cc,$^) $(BENCHLIB_OBJ) $(ORDERS_DOMAIN_OBJ) $(BENCH_EXTRA_OBJ) \
		$(BUILD)/libcqrs.a $(BENCH_LIBS) $(ENGINE_LIBS) $(SYS_LIBS)

# bench_exchange links the exchange example's book, domain and flow instead
# of the orders domain (the two domains share record names: CancelOrder).
$(BUILD)/bench/bench_exchange: ORDERS_DOMAIN_OBJ :=
$(BUILD)/bench/bench_exchange: BENCH_EXTRA_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(EXCH_DOMAIN_SRC) examples/exchange/flow.c)
$(BUILD)/bench/bench_exchange: $(patsubst %.c,$(BUILD)/obj/%.o,$(EXCH_DOMAIN_SRC) examples/exchange/flow.c)
# bench_replication starts its JetStream cluster with the tests' harness.
NATS_HARNESS_OBJ := $(BUILD)/obj/tests/lib/nats_cluster.o $(BUILD)/obj/tests/lib/testutil.o
$(BUILD)/bench/bench_replication: BENCH_EXTRA_OBJ := $(NATS_HARNESS_OBJ)
$(BUILD)/bench/bench_replication: $(NATS_HARNESS_OBJ)

# bench_engine's benchmarks live in bench/engine/ (compiled with it).
$(BUILD)/bench/bench_engine: $(wildcard bench/engine/*.cc bench/engine/*.h)

bench: all $(BENCH_BIN)
	@sh mk/deps.sh --bench || echo "bench: no python3-matplotlib: the latency plots will be skipped"
	@BUILD=$(BUILD) sh bench/run.sh

# ---- run, bindings, install ---------------------------------------------------

run: all
	$(BUILD)/cqrs-orders demo $(ARGS)

exchange: all
	$(BUILD)/cqrs-exchange demo $(ARGS)

include mk/bindings.mk

# Runtime library path: under PREFIX /usr or /usr/local the dynamic linker
# finds the libraries (ldconfig is run for a root install without DESTDIR);
# under any other prefix the .pc files' Libs carry -Wl,-rpath,LIBDIR, so a
# program built with `pkg-config --libs cqrs_client` runs without
# LD_LIBRARY_PATH. PC_RPATH= (empty) leaves the rpath out.
PC_RPATH ?= $(if $(filter /usr /usr/local /usr/ /usr/local/,$(PREFIX)),,-Wl$(comma)-rpath$(comma)$${libdir})
comma := ,

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 0644 include/*.h $(DESTDIR)$(PREFIX)/include/
	install -m 0644 $(BUILD)/libcqrs.a $(BUILD)/libcqrs_client.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(BUILD)/libcqrs.so.0 $(DESTDIR)$(PREFIX)/lib/libcqrs.so.0
	install -m 0755 $(BUILD)/libcqrs_client.so.0 $(DESTDIR)$(PREFIX)/lib/libcqrs_client.so.0
	ln -sf libcqrs.so.0 $(DESTDIR)$(PREFIX)/lib/libcqrs.so
	ln -sf libcqrs_client.so.0 $(DESTDIR)$(PREFIX)/lib/libcqrs_client.so
	install -m 0755 $(BUILD)/cqrs $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 man/cqrs.1 man/cqrs-orders.1 man/cqrs-exchange.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	sed 's|@PREFIX@|$(PREFIX)|g; s|@RPATH@|$(PC_RPATH)|g' mk/cqrs.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/cqrs.pc
	sed 's|@PREFIX@|$(PREFIX)|g; s|@RPATH@|$(PC_RPATH)|g' mk/cqrs_client.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/cqrs_client.pc
	@if [ -z "$(DESTDIR)" ] && [ -z "$(PC_RPATH)" ] && [ "$$(id -u)" = 0 ]; then ldconfig || true; fi

clean:
	rm -rf $(BUILD)

-include $(shell find $(sort $(BUILD)/obj $(DBG)/obj $(FUZZ_DIR)/obj) -name '*.d' 2>/dev/null)
