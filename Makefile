# monitor - one non-recursive Makefile.
#   make            build/monitor
#   make test       unit tests, then integration tests (tests/run)
#   make unit       unit tests only
#   make check      ASan + UBSan build, unit tests
#   make bench      benchmarks (tests/bench/run), table under build/bench/
#   make clean

CC      ?= cc
BUILD   ?= build
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
PKGS    := libmicrohttpd libcurl sqlite3 yaml-0.1 zlib

CFLAGS  ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wno-unused-parameter -Wformat=2 -fno-strict-aliasing -pthread \
           -D_GNU_SOURCE -I.
override CFLAGS += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lmicrohttpd -lcurl -lsqlite3 -lyaml -lz) -lm -pthread

# Every .c in a module folder belongs to the binary; main.c only to it.
LIB_SRC := $(wildcard agent/util/*.c collectors/*.c storage/*.c alerting/*.c) \
           $(filter-out agent/main.c,$(wildcard agent/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/agent/main.o

# Unit tests: tests/unit/<folder>/test_*.c, each its own program.
TEST_SRC := $(wildcard tests/unit/*/test_*.c tests/unit/*/*/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all unit test check bench clean FORCE
all: $(BUILD)/monitor

$(BUILD)/monitor: $(MAIN_OBJ) $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The version string lives in its own generated file, rewritten only when
# `git describe` changes, so a new commit relinks without rebuilding all.
$(BUILD)/version.c: FORCE
	@mkdir -p $(dir $@)
	@echo 'const char monitor_version[] = "$(VERSION)";' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(BUILD)/obj/version.o: $(BUILD)/version.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libmonitor.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(TEST_BIN)
	@tests/unit/run $(TEST_BIN)

test: all unit
	tests/run

check:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" unit

bench: all
	tests/bench/run

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
