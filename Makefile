# monitor - one non-recursive Makefile.
#   make            build/monitor
#   make test       unit tests, then integration tests (tests/run)
#   make unit       unit tests only
#   make check      ASan + UBSan build (build/asan), unit and integration tests,
#                   failing on any sanitizer report (tests/check)
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
LDLIBS  += -lbpf -lelf
LDLIBS  += -lcrypt        # crypt(3) for auth.basic_auth_file (agent/access.c)
# monitor top's view (agent/top_view.c, the only file that includes curses.h);
# only the libraries: ncursesw's -D_XOPEN_SOURCE=600 would narrow _GNU_SOURCE.
LDLIBS  += $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
# Loaders include their generated skeletons as "bpf/<probe>.skel.h".
override CFLAGS += -I$(BUILD)
# remote_write and the protobuf exposition: C generated from the .proto files
# in agent/ and collectors/ by protoc-c into $(BUILD)/gen, snappy compression.
PROTOC_C ?= protoc-c
override CFLAGS += -I$(BUILD)/gen
# Flags that must come after the warnings above (make fuzz: clang's -Wno-error).
override CFLAGS += $(CFLAGS_LAST)
LDLIBS  += $(shell pkg-config --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c) -lsnappy

# eBPF: bpf/<probe>.bpf.c -> $(BUILD)/bpf/<probe>.bpf.o (clang, CO-RE against
# a vmlinux.h dumped from this machine's kernel BTF) -> <probe>.skel.h
# (bpftool), which the loader collectors/ebpf_<probe>.c includes. Nothing
# here needs root: the BTF file is world-readable and bpftool only reads
# and writes files.
CLANG       ?= clang
LLVM_STRIP  ?= llvm-strip
BPFTOOL     ?= $(or $(shell command -v bpftool 2>/dev/null),/usr/sbin/bpftool)
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
BPF_ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' -e 's/s390x/s390/')
BPF_CFLAGS  := -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror -I$(BUILD)/bpf -I.
BPF_SRC  := $(wildcard bpf/*.bpf.c)
BPF_OBJ  := $(BPF_SRC:%.bpf.c=$(BUILD)/%.bpf.o)
BPF_SKEL := $(BPF_SRC:%.bpf.c=$(BUILD)/%.skel.h)

# Every .c in a module folder belongs to the binary; main.c only to it.
LIB_SRC := $(wildcard agent/util/*.c collectors/*.c storage/*.c alerting/*.c) \
           $(filter-out agent/main.c agent/top_main.c,$(wildcard agent/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
PROTO_SRC := $(wildcard agent/*.proto collectors/*.proto)
PROTO_C   := $(PROTO_SRC:%.proto=$(BUILD)/gen/%.pb-c.c)
PROTO_OBJ := $(PROTO_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o)
LIB_OBJ   += $(PROTO_OBJ)
MAIN_OBJ := $(BUILD)/obj/agent/main.o

# Unit tests: tests/unit/<folder>/test_*.c, each its own program.
TEST_SRC := $(wildcard tests/unit/*/test_*.c tests/unit/*/*/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all unit test check bench bench-storage bench-fs bench-netproc clean FORCE
all: $(BUILD)/monitor $(BUILD)/monitor-top

$(BUILD)/monitor: $(MAIN_OBJ) $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The version string lives in its own generated file, rewritten only when
# `git describe` changes, so a new commit relinks without rebuilding all.
$(BUILD)/version.c: FORCE
	@mkdir -p $(dir $@)
	@echo 'const char monitor_version[] = "$(VERSION)";' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(BUILD)/obj/version.o: $(BUILD)/version.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# monitor-top: `monitor top` linked with ncurses and libc only (no libcurl,
# no agent libraries), which `monitor top` execs for http:// URLs so the view
# stays a few MB resident; cli.c is built again with -DCLI_LITE, whose
# transport is agent/top_http.c. storage/promql_util.o (libc and buf only)
# brings the regex limits (promql_regex_check) that the filter goes through.
TOP_OBJ := $(addprefix $(BUILD)/obj/,agent/top_main.o agent/top_view.o agent/top_model.o \
           agent/top_text.o agent/top_data.o agent/top_http.o agent/cli_stats.o \
           agent/util/json.o agent/util/buf.o agent/util/misc.o agent/util/log.o \
           storage/promql_util.o)
$(BUILD)/monitor-top: $(TOP_OBJ) $(BUILD)/obj-lite/agent/cli.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo) -lm -pthread

$(BUILD)/obj-lite/agent/cli.o: agent/cli.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DCLI_LITE -MMD -MP -c -o $@ $<

$(BUILD)/libmonitor.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# protoc-c writes <dir>/<name>.pb-c.{c,h} under $(BUILD)/gen; every object
# waits for all of them (order-only), later builds follow the .d files.
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: %.proto
	@mkdir -p $(BUILD)/gen
	$(PROTOC_C) --proto_path=. --c_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-shadow -MMD -MP -c -o $@ $<

$(LIB_OBJ) $(MAIN_OBJ) $(TEST_OBJ): | $(PROTO_C)
.SECONDARY: $(PROTO_C) $(PROTO_C:.c=.h)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# The default rule pack is copied into pack.o by the assembler (.incbin),
# which the compiler's dependency files do not see.
$(BUILD)/obj/alerting/pack.o: alerting/rules/containers.yml
# The web page (agent/api_web.c) likewise.
$(BUILD)/obj/agent/api_web.o: $(wildcard dashboards/web/*.* dashboards/web/vendor/*)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bpf/vmlinux.h:
	@mkdir -p $(dir $@)
	@test -r $(VMLINUX_BTF) || { echo "$(VMLINUX_BTF) missing: this kernel has no BTF (set VMLINUX_BTF=<file>)" >&2; exit 1; }
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp
	@mv $@.tmp $@

# -g is what gives CO-RE its BTF; the DWARF beside it is stripped.
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/bpf/vmlinux.h
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -MMD -MP -MT $@ -MF $(@:.o=.d) -c -o $@ $<
	$(LLVM_STRIP) -g $@

# Kept (not intermediate): the bench reads program names from them.
.SECONDARY: $(BPF_OBJ)
# Unit-test objects are intermediates of the test programs: keep them too.
.SECONDARY: $(TEST_OBJ)

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp
	@mv $@.tmp $@

# The first build of a loader needs the skeletons; later ones follow the
# header dependencies the compiler wrote.
$(filter $(BUILD)/obj/collectors/ebpf% $(BUILD)/obj/collectors/cgroup_iter%,$(LIB_OBJ)): | $(BPF_SKEL)

unit: $(TEST_BIN)
	@tests/unit/run $(TEST_BIN)

test: all unit
	$(MAKE) -s fuzz-smoke
	tests/run

# make check: everything built again with ASan + UBSan in its own BUILD dir,
# then tests/check runs the unit tests and the integration suite against that
# agent (MONITOR_BIN), with sanitizer reports sent to files that must be
# absent at the end. CHECK_TESTS=word... runs only those integration files.
CHECK_BUILD  ?= build/asan
CHECK_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
check:
	$(MAKE) BUILD=$(CHECK_BUILD) CFLAGS="$(CHECK_CFLAGS)" all $(TEST_BIN:$(BUILD)/%=$(CHECK_BUILD)/%)
	tests/check $(CHECK_BUILD) $(CHECK_TESTS)

# Every benchmark the issues name, one after the other so none loads the
# machine under another: collection/metrics/RSS (with the floor and netdata),
# then the store, fs, network/process, PromQL (beside Prometheus) and eBPF.
# Every line's output also goes to $(BUILD)/bench/bench.log (tests/bench/tee-shell);
# the last line collects the BENCH lines every benchmark prints into one table,
# $(BUILD)/bench/summary.md (format: the top of tests/bench/run).
bench: SHELL := $(CURDIR)/tests/bench/tee-shell
bench: export BENCH_BUILD := $(BUILD)
bench: all
	tests/bench/run --begin
	tests/bench/run
	$(MAKE) -s bench-storage bench-fs bench-netproc bench-promql bench-rw bench-logs bench-notify bench-forecast bench-rules
	tests/bench/ebpf_bench
	tests/bench/top_bench
	tests/bench/docker_bench
	tests/bench/run --table $(BUILD)/bench/bench.log

# The store's benchmark (tests/bench/storage_bench.c) on a recording of real
# container series from this host; STORAGE_RECORDING=file.prom(.gz) for another.
STORAGE_RECORDING ?= tests/fixtures/storage/recording.prom.gz
bench-storage: $(BUILD)/bench/storage_bench
	@mkdir -p $(BUILD)/bench/storage
	@case $(STORAGE_RECORDING) in *.gz) gzip -dc $(STORAGE_RECORDING);; *) cat $(STORAGE_RECORDING);; esac \
		> $(BUILD)/bench/storage/recording.prom
	$(BUILD)/bench/storage_bench $(BUILD)/bench/storage/recording.prom $(BUILD)/bench/storage/work
	@rm -rf $(BUILD)/bench/storage/work $(BUILD)/bench/storage/recording.prom

$(BUILD)/bench/storage_bench: $(BUILD)/obj/tests/bench/storage_bench.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# What lifecycle and filesystem collection add per container and tick
# (tests/bench/fs_bench.c); table in build/bench/fs.md.
bench-fs: $(BUILD)/bench/fs_bench
	$(BUILD)/bench/fs_bench

$(BUILD)/bench/fs_bench: $(BUILD)/obj/tests/bench/fs_bench.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# What network and process collection add per container and tick
# (tests/bench/netproc_bench, timing tests/bench/netproc_cost.c); table in
# build/bench/netproc.md. Needs root.
bench-netproc: all $(BUILD)/bench/netproc_cost
	tests/bench/netproc_bench

$(BUILD)/bench/netproc_cost: $(BUILD)/obj/tests/bench/netproc_cost.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The container log path (tests/bench/logs_bench.c): ingest lines/s through
# the real tailer into logs.db, and full-text search over 1 M stored lines.
.PHONY: bench-logs
LOGS_BENCH_LINES ?= 1000000
bench-logs: $(BUILD)/bench/logs_bench
	$(BUILD)/bench/logs_bench $(LOGS_BENCH_LINES) $(BUILD)/bench/logs

$(BUILD)/bench/logs_bench: $(BUILD)/obj/tests/bench/logs_bench.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# PromQL against the real Prometheus on the same data, over HTTP, and
# in-process (tests/bench/promql_bench.py, tests/bench/promql_micro.c);
# table in build/bench/promql.md.
.PHONY: bench-promql
bench-promql: export BENCH_BUILD := $(BUILD)
bench-promql: all $(BUILD)/bench/promql_micro
	tests/bench/promql_bench.py

# remote_write: the sender's CPU, throughput and bytes per sample against a
# local receiver (tests/bench/rw_bench.c); table in build/bench/rw.md.
.PHONY: bench-rw
bench-rw: $(BUILD)/bench/rw_bench
	$(BUILD)/bench/rw_bench $(BUILD)/bench/rw/work

$(BUILD)/bench/rw_bench: $(BUILD)/obj/tests/bench/rw_bench.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Capacity forecasts (tests/bench/forecast_bench.c): error of the time to
# exhaustion per synthetic family, interval coverage, and the cost of one
# refresh over 1,000 containers; table in build/bench/forecast.md.
.PHONY: bench-forecast
bench-forecast: $(BUILD)/bench/forecast_bench
	$(BUILD)/bench/forecast_bench $(BUILD)/bench/forecast

$(BUILD)/bench/forecast_bench: $(BUILD)/obj/tests/bench/forecast_bench.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/promql_micro: $(BUILD)/obj/tests/bench/promql_micro.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The notifier (tests/bench/notify_bench.c): firing -> webhook POST latency
# with group_wait 0 (in-process, and in the agent from the firing rule
# evaluation: tests/bench/notify_e2e.py), and 1,000 alerts in 100 groups handed over without
# holding the evaluating thread; table in build/bench/notify.md.
.PHONY: bench-notify
bench-notify: export BENCH_BUILD := $(BUILD)
bench-notify: all $(BUILD)/bench/notify_bench
	$(BUILD)/bench/notify_bench
	tests/bench/notify_e2e.py

$(BUILD)/bench/notify_bench: $(BUILD)/obj/tests/bench/notify_bench.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Alert rules (tests/bench/rules_bench.c): 200 rules over 1,000 containers per
# evaluation round, and a threshold crossing to the alert at the notifier;
# table in build/bench/rules.md.
.PHONY: bench-rules
bench-rules: $(BUILD)/bench/rules_bench
	$(BUILD)/bench/rules_bench 1000 200 200 $(BUILD)/bench/rules.md

$(BUILD)/bench/rules_bench: $(BUILD)/obj/tests/bench/rules_bench.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzzing (tests/fuzz/, docs/RELIABILITY.md): libFuzzer targets for the
# parsers of outside input, built with clang, ASan and UBSan in their own
# build dir (the library again, instrumented). `make fuzz` runs each for
# FUZZ_SECONDS; `make fuzz-smoke` (part of `make test`) briefly, so a
# regression on the committed seeds or close to them fails the build.
# Skipped with a message when clang's fuzzer runtime (libclang-rt-14-dev)
# is missing.
.PHONY: fuzz fuzz-smoke fuzz-bins
FUZZ_BUILD   ?= $(BUILD)/fuzz
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 4
FUZZ_CFLAGS  := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CHECK   := printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
		clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null
fuzz: fuzz-bins
	@if [ -x $(FUZZ_BUILD)/fuzz/fuzz_json ]; then tests/fuzz/run $(FUZZ_BUILD)/fuzz $(FUZZ_SECONDS); fi
fuzz-smoke: fuzz-bins
	@if [ -x $(FUZZ_BUILD)/fuzz/fuzz_json ]; then FUZZ_JOBS=$$(nproc) tests/fuzz/run $(FUZZ_BUILD)/fuzz $(FUZZ_SMOKE_SECONDS); fi
fuzz-bins:
	@if $(FUZZ_CHECK); then \
		$(MAKE) -s BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="$(FUZZ_CFLAGS)" CFLAGS_LAST=-Wno-error \
			$(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz/fuzz_%); \
	else \
		echo "fuzz: SKIPPED: clang cannot link -fsanitize=fuzzer (apt-get install clang libclang-rt-14-dev)"; \
		rm -f $(FUZZ_BUILD)/fuzz/fuzz_json; \
	fi

FUZZ_OBJ := $(FUZZ_NAMES:%=$(BUILD)/obj/tests/fuzz/fuzz_%.o)
$(FUZZ_OBJ): | $(PROTO_C)
.SECONDARY: $(FUZZ_OBJ)
$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/version.o $(BUILD)/libmonitor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(LDLIBS)

clean:
	rm -rf $(BUILD)

-include $(BUILD)/obj/agent/top_main.d $(BUILD)/obj-lite/agent/cli.d
-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BPF_OBJ:.o=.d)
-include $(FUZZ_OBJ:.o=.d)

# Load (issue 13): tests/integration/test_load.py longer and bigger than in
# make test: LOAD_CONTAINERS raw container cgroups, LOAD_CLIENTS concurrent
# clients on /metrics and the query API for LOAD_SECONDS; prints p50/p99.
soak-load: all
	LOAD_CONTAINERS=$${LOAD_CONTAINERS:-500} LOAD_CLIENTS=$${LOAD_CLIENTS:-16} \
	LOAD_SECONDS=$${LOAD_SECONDS:-300} MONITOR_BIN=$(CURDIR)/$(BUILD)/monitor \
	tests/run test_load
.PHONY: soak-load

# Churn (issue 13): tests/integration/test_faults.py with SOAK_CYCLES (1,000)
# container create/destroy cycles instead of make test's 200 (fixture and
# real cgroups); prints RSS, fds, eBPF map entries and series before and
# after; then the agent under valgrind
# --leak-check=full through 50 cycles (no errors, nothing definitely lost).
soak-churn: all
	MONITOR_CHURN_CYCLES=$${SOAK_CYCLES:-1000} MONITOR_BIN=$(CURDIR)/$(BUILD)/monitor \
	tests/run test_faults
	MONITOR_BIN=$(CURDIR)/$(BUILD)/monitor tests/integration/valgrind_churn.py 50
soak: soak-load soak-churn
.PHONY: soak-churn soak
