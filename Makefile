# cqrs - build, test, bench, sanitizers, install.
#
#   make            libraries, the cqrs tool, the demo, bindings -> build/
#   make test       every test; ends with "N passed, N failed"
#   make run        the reference demo (cqrs-orders demo)
#   make bench      benchmark suite; tables on stdout, raw JSON in build/bench/
#   make asan/tsan  unit + stress tests under sanitizers ($(BUILD)/asan, $(BUILD)/tsan)
#   make fuzz       libFuzzer targets (clang) for a short run each
#   make install PREFIX=/usr/local
#
# Sources are picked up by folder, so adding a file needs no Makefile edit:
#   core/ ringbuf/ shm/ client/   -> libcqrs_client (no liburing, no jemalloc)
#   engine/ engine/journal/ engine/model/ -> libcqrs (adds the engine; links both)
#   tools/*.c                     -> build/cqrs
#   examples/orders/*.c           -> build/cqrs-orders
#   tests/unit/test_*.c           -> cmocka programs
#   tests/stress/*.c, tests/proc/*.c -> stand-alone test programs
#   tests/fuzz/fuzz_*.c           -> replayed over tests/fuzz/corpus/<name>/
#   bench/bench_*.cc              -> Google Benchmark programs

BUILD ?= build
PREFIX ?= /usr/local
CC ?= cc
CXX ?= c++
SAN ?=

PKGS := liburing jemalloc ck libxxhash cmocka benchmark lua5.4 python3 lmdb sqlite3

WARN := -Wall -Wextra -Werror -Wno-missing-field-initializers
CPPFLAGS_ALL := -D_GNU_SOURCE -Iinclude -I.
OPT ?= -O2 -g
CFLAGS_ALL := -std=c11 $(OPT) $(WARN) -fPIC -fvisibility=hidden -pthread $(SAN) $(CFLAGS)
CXXFLAGS_ALL := -std=c++20 $(OPT) -Wall -Wextra -Werror -Wno-missing-field-initializers -pthread $(SAN) $(CXXFLAGS)
LDFLAGS_ALL := -pthread $(SAN) $(LDFLAGS)

CLIENT_LIBS := -lxxhash -lck
ENGINE_LIBS := -luring -ljemalloc $(CLIENT_LIBS)

CLIENT_SRC := $(sort $(wildcard core/*.c ringbuf/*.c shm/*.c client/*.c))
ENGINE_SRC := $(sort $(wildcard engine/*.c engine/journal/*.c engine/model/*.c))
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/obj/%.o)
ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)

TOOL_SRC := $(sort $(wildcard tools/*.c))
ORDERS_SRC := $(sort $(wildcard examples/orders/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
STRESS_SRC := $(sort $(wildcard tests/stress/*.c))
PROC_SRC := $(sort $(wildcard tests/proc/*.c))
TESTLIB_SRC := $(sort $(wildcard tests/lib/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.cc))
BENCHLIB_SRC := $(sort $(wildcard bench/lib/*.c))

UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
STRESS_BIN := $(STRESS_SRC:tests/stress/%.c=$(BUILD)/tests/stress/%)
PROC_BIN := $(PROC_SRC:tests/proc/%.c=$(BUILD)/tests/proc/%)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/fuzz/%)
BENCH_BIN := $(BENCH_SRC:bench/%.cc=$(BUILD)/bench/%)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/obj/%.o)
BENCHLIB_OBJ := $(BENCHLIB_SRC:%.c=$(BUILD)/obj/%.o)

LIBS := $(BUILD)/libcqrs_client.a $(BUILD)/libcqrs_client.so $(BUILD)/libcqrs.a $(BUILD)/libcqrs.so
PROGS := $(BUILD)/cqrs $(if $(ORDERS_SRC),$(BUILD)/cqrs-orders)
DEPS_OK := $(BUILD)/.deps-ok

.PHONY: all deps test run bench asan tsan fuzz install clean tests-build bindings
.DEFAULT_GOAL := all
# Keep object files of test and bench programs between runs.
.SECONDARY:

all: $(DEPS_OK) $(LIBS) $(PROGS) bindings

# Installs missing Debian packages once per build folder (mk/deps.sh).
deps $(DEPS_OK):
	@sh mk/deps.sh $(PKGS)
	@mkdir -p $(BUILD) && touch $(DEPS_OK)

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libcqrs_client.a: $(CLIENT_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcqrs.a: $(CLIENT_OBJ) $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcqrs_client.so: $(CLIENT_OBJ) cqrs_client.map
	$(CC) -shared -Wl,--version-script=cqrs_client.map -Wl,-soname,libcqrs_client.so.0 $(LDFLAGS_ALL) -o $@ $(CLIENT_OBJ) $(CLIENT_LIBS)

$(BUILD)/libcqrs.so: $(CLIENT_OBJ) $(ENGINE_OBJ) cqrs.map
	$(CC) -shared -Wl,--version-script=cqrs.map -Wl,-soname,libcqrs.so.0 $(LDFLAGS_ALL) -o $@ $(CLIENT_OBJ) $(ENGINE_OBJ) $(ENGINE_LIBS)

$(BUILD)/cqrs: $(TOOL_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libcqrs.a
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(BUILD)/libcqrs.a $(ENGINE_LIBS) -lm

$(BUILD)/cqrs-orders: $(ORDERS_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libcqrs.a
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(BUILD)/libcqrs.a $(ENGINE_LIBS) -lm

# ---- tests ------------------------------------------------------------------

TEST_LINK = $(LDFLAGS_ALL) $(TESTLIB_OBJ) $(BUILD)/libcqrs.a $(ENGINE_LIBS) -lm -lrt

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(TESTLIB_OBJ) $(BUILD)/libcqrs.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(TEST_LINK) -lcmocka

$(BUILD)/tests/stress/%: $(BUILD)/obj/tests/stress/%.o $(TESTLIB_OBJ) $(BUILD)/libcqrs.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(TEST_LINK)

$(BUILD)/tests/proc/%: $(BUILD)/obj/tests/proc/%.o $(TESTLIB_OBJ) $(BUILD)/libcqrs.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(TEST_LINK)

# Fuzz targets built as corpus replayers with the ordinary compiler
# (tests/fuzz/replay.c supplies main); `make fuzz` builds real libFuzzer ones,
# runs each FUZZ_SECONDS and merges inputs with new coverage into the corpus.
$(BUILD)/tests/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay.o $(BUILD)/libcqrs.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(BUILD)/obj/tests/fuzz/replay.o $(TEST_LINK)

tests-build: all $(UNIT_BIN) $(STRESS_BIN) $(PROC_BIN) $(FUZZ_BIN)

test: tests-build
	@BUILD=$(BUILD) sh tests/run.sh $(TESTS)

ASAN_BUILD ?= $(BUILD)/asan
TSAN_BUILD ?= $(BUILD)/tsan
asan:
	$(MAKE) BUILD=$(ASAN_BUILD) OPT="-O1 -g" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" tests-build
	BUILD=$(ASAN_BUILD) CQRS_SAN=asan ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 sh tests/run.sh unit stress fuzz

tsan:
	$(MAKE) BUILD=$(TSAN_BUILD) OPT="-O1 -g" SAN="-fsanitize=thread" tests-build
	BUILD=$(TSAN_BUILD) CQRS_SAN=tsan TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" sh tests/run.sh unit stress

FUZZ_FLAGS := -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -I.
fuzz: $(DEPS_OK)
	@mkdir -p $(BUILD)/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang $(FUZZ_FLAGS) -o $(BUILD)/fuzz/$$n $$f $(CLIENT_SRC) $(ENGINE_SRC) $(ENGINE_LIBS) -lm -lrt || exit 1; \
	  mkdir -p $(BUILD)/fuzz/$$n.corpus; \
	  $(BUILD)/fuzz/$$n -max_total_time=$${FUZZ_SECONDS:-30} $(BUILD)/fuzz/$$n.corpus tests/fuzz/corpus/$$n || exit 1; \
	  $(BUILD)/fuzz/$$n -merge=1 tests/fuzz/corpus/$$n $(BUILD)/fuzz/$$n.corpus 2>/dev/null || exit 1; \
	done

# ---- bench ------------------------------------------------------------------

# Bench programs may use the orders domain (examples/orders/orders_domain.c).
ORDERS_DOMAIN_OBJ := $(BUILD)/obj/examples/orders/orders_domain.o
$(BUILD)/bench/%: bench/%.cc $(BENCHLIB_OBJ) $(ORDERS_DOMAIN_OBJ) $(BUILD)/libcqrs.a bench/harness.h
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS_ALL) $(CXXFLAGS_ALL) -o $@ $(filter %.cc,$^) $(BENCHLIB_OBJ) $(ORDERS_DOMAIN_OBJ) $(BUILD)/libcqrs.a $(ENGINE_LIBS) -lbenchmark -llmdb -lsqlite3 -lm -lrt

# bench_engine's benchmarks live in bench/engine/ (compiled with it).
$(BUILD)/bench/bench_engine: $(wildcard bench/engine/*.cc bench/engine/*.h)

bench: all $(BENCH_BIN)
	@BUILD=$(BUILD) sh bench/run.sh

# ---- run, bindings, install -------------------------------------------------

run: all
	$(BUILD)/cqrs-orders demo $(ARGS)

-include mk/bindings.mk

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 0644 include/*.h $(DESTDIR)$(PREFIX)/include/
	install -m 0644 $(BUILD)/libcqrs.a $(BUILD)/libcqrs_client.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(BUILD)/libcqrs.so $(DESTDIR)$(PREFIX)/lib/libcqrs.so.0
	install -m 0755 $(BUILD)/libcqrs_client.so $(DESTDIR)$(PREFIX)/lib/libcqrs_client.so.0
	ln -sf libcqrs.so.0 $(DESTDIR)$(PREFIX)/lib/libcqrs.so
	ln -sf libcqrs_client.so.0 $(DESTDIR)$(PREFIX)/lib/libcqrs_client.so
	install -m 0755 $(BUILD)/cqrs $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 man/cqrs.1 man/cqrs-orders.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	sed 's|@PREFIX@|$(PREFIX)|g' mk/cqrs.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/cqrs.pc
	sed 's|@PREFIX@|$(PREFIX)|g' mk/cqrs_client.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/cqrs_client.pc

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
