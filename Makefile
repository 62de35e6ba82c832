# Blazz backbone - top-level build.
#
# Out-of-tree: everything goes to $(OUT) (build/ normally, build/asan/ for the
# sanitizer build the tests use). Layout rules, so new files need no edits here:
#   libs/*/*.c + generated protobuf  -> $(OUT)/lib/libblazz.a
#   services/<name>/*.c              -> $(OUT)/bin/blazz-<name>
#   tools/<name>/*.c                 -> $(OUT)/bin/<name>
#   tests/unit/test_*.c              -> $(OUT)/tests/unit/test_*        (one binary each)
#   tests/fuzz/<component>/fuzz_*.c  -> $(OUT)/tests/unit/test_corpus_* (corpus replay), and
#                                       build/fuzz/fuzz/fuzz_* (libFuzzer, make fuzz); see
#                                       "fuzzing" below
#   tests/integration/support/*.c    -> linked into every integration program
#   tests/integration/*.c            -> $(OUT)/tests/integration/*      (test_* are run)
#   tests/bench/support/*.c          -> linked into every bench program (with the
#                                       integration support, which they reuse)
#   tests/bench/*.c                  -> $(OUT)/bench/*
# The public targets first make sure the dependencies are installed
# (scripts/deps.sh, a no-op when they are) and then re-enter make.

SAN ?= 0
FUZZ ?= 0
ifeq ($(FUZZ),1)
# make fuzz: everything instrumented for libFuzzer (clang); fuzz targets
# compile to LLVMFuzzerTestOneInput (tests/fuzz/fuzz_target.h).
OUT ?= build/fuzz
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
OPT := -O1
MODE_DEFS := -DBZ_FUZZ_LIBFUZZER
else ifeq ($(SAN),1)
OUT ?= build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
OUT ?= build
SANFLAGS :=
OPT := -O2
endif

PKGS := rdkafka libpq libprotobuf-c libcurl openssl libconfig jansson libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

CC ?= cc
MODE_DEFS ?=
CFLAGS := -std=c11 -D_GNU_SOURCE $(MODE_DEFS) -Wall -Wextra -Werror -g $(OPT) $(SANFLAGS) \
          -Ilibs -I$(OUT)/gen $(PKG_CFLAGS) -MMD -MP
LDFLAGS := $(SANFLAGS)
LDLIBS := $(PKG_LIBS) -lpthread -lm

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
CFLAGS += -DBZ_VERSION='"$(VERSION)"'

PROTOS := $(wildcard proto/blazz/v1/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(OUT)/gen/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)

LIB_SRCS := $(wildcard libs/*/*.c)
LIB_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(LIB_SRCS)) $(patsubst $(OUT)/gen/%.c,$(OUT)/obj/gen/%.o,$(PROTO_C))
LIBBLAZZ := $(OUT)/lib/libblazz.a

SERVICES := $(notdir $(wildcard services/*))
SERVICE_BINS := $(patsubst %,$(OUT)/bin/blazz-%,$(SERVICES))
TOOLS := $(notdir $(wildcard tools/*))
TOOL_BINS := $(patsubst %,$(OUT)/bin/%,$(TOOLS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/unit/%,$(UNIT_SRCS))
ITEST_SUPPORT_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard tests/integration/support/*.c))
ITEST_SRCS := $(wildcard tests/integration/*.c)
ITEST_BINS := $(patsubst tests/integration/%.c,$(OUT)/tests/integration/%,$(ITEST_SRCS))
BENCH_SUPPORT_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard tests/bench/support/*.c))
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(OUT)/bench/%,$(BENCH_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/*/fuzz_*.c)
FUZZ_NAMES := $(basename $(notdir $(FUZZ_SRCS)))
FUZZ_TARGETS ?= $(FUZZ_NAMES)
CORPUS_BINS := $(patsubst fuzz_%,$(OUT)/tests/unit/test_corpus_%,$(FUZZ_NAMES))

ALL_BINS := $(SERVICE_BINS) $(TOOL_BINS) $(UNIT_BINS) $(CORPUS_BINS) $(ITEST_BINS) $(BENCH_BINS)

.PHONY: all build programs test run bench stack-up stack-down lint clean deps binaries check-unit
.DEFAULT_GOAL := build
# Keep generated sources and objects between runs; drop half-written targets.
.SECONDARY:
.DELETE_ON_ERROR:

# ---- public targets -------------------------------------------------------

build: deps
	@$(MAKE) --no-print-directory binaries

# The services and tools only, without the tests and benchmarks: what the
# container image (docker/Dockerfile) ships.
programs: deps
	@$(MAKE) --no-print-directory $(SERVICE_BINS) $(TOOL_BINS)

test: deps
	@$(MAKE) --no-print-directory SAN=1 binaries
	@$(MAKE) --no-print-directory binaries
	@scripts/test.sh build/asan

run: deps
	@$(MAKE) --no-print-directory binaries
	@scripts/run.sh

bench: deps
	@$(MAKE) --no-print-directory binaries
	@scripts/bench.sh

# make chaos [DURATION=600] [CLUSTER=1]: the system chaos test on a stack of
# its own (scripts/chaos.sh); CLUSTER=1 runs it on three brokers and a
# PostgreSQL primary with a standby, every service twice. `make test` runs a
# short single-node one (test_chaos).
.PHONY: chaos
DURATION ?= 600
CLUSTER ?= 0
chaos: deps
	@$(MAKE) --no-print-directory binaries
	@BLAZZ_CHAOS_CLUSTER=$(CLUSTER) scripts/chaos.sh $(DURATION)

# make chaos-cluster: the cluster checks, kept out of `make test` for its
# budget (they take 7-9 minutes on 2 cores): test_cluster under ASan
# (scripts/test.sh with BLAZZ_TEST_CLUSTER=1), then a 60 s cluster chaos
# run. CI runs it after make test.
.PHONY: chaos-cluster
chaos-cluster: deps
	@$(MAKE) --no-print-directory SAN=1 binaries
	@$(MAKE) --no-print-directory binaries
	@BLAZZ_TEST_CLUSTER=1 scripts/test.sh build/asan
	@BLAZZ_CHAOS_CLUSTER=1 scripts/chaos.sh 60

# make compose-test: every image built and compose.yaml brought up for real
# (private podman, test stand-ins for the third-party images), checked end
# to end, then torn down (scripts/compose_test.sh; needs root).
.PHONY: compose-test
compose-test:
	@scripts/compose_test.sh

stack-up: deps
	@$(MAKE) --no-print-directory binaries
	@scripts/stack.sh up

stack-down:
	@scripts/stack.sh down

lint: deps
	@$(MAKE) --no-print-directory binaries
	@scripts/lint.sh $(OUT)

clean:
	rm -rf build

deps:
	@scripts/deps.sh

# ---- internal -------------------------------------------------------------

binaries: $(ALL_BINS)

check-unit: $(UNIT_BINS) $(CORPUS_BINS)

$(OUT)/gen/%.pb-c.c $(OUT)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(OUT)/gen
	protoc-c --c_out=$(OUT)/gen -Iproto $<

$(OUT)/obj/gen/%.o: $(OUT)/gen/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

# The Kafka ACL matrix of docs/ARCHITECTURE.md §9.1, compiled into libs/kafka/acl.c.
ACL_MATRIX := $(OUT)/gen/acl_matrix.inc
$(ACL_MATRIX): docs/ARCHITECTURE.md scripts/gen_acl_matrix.sh
	@mkdir -p $(OUT)/gen
	scripts/gen_acl_matrix.sh $< $@
$(OUT)/obj/libs/kafka/acl.o: $(ACL_MATRIX)

$(OUT)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBBLAZZ): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# One link rule per service and tool: its own objects plus the library.
define program_rule
$(OUT)/bin/$(1): $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard $(2)/*.c)) $(LIBBLAZZ)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call program_rule,blazz-$(s),services/$(s))))
$(foreach t,$(TOOLS),$(eval $(call program_rule,$(t),tools/$(t))))

$(OUT)/obj/tests/integration/%.o: CFLAGS += -Itests/integration/support
$(OUT)/obj/tests/bench/%.o: CFLAGS += -Itests/bench/support -Itests/integration/support

$(OUT)/tests/unit/%: $(OUT)/obj/tests/unit/%.o $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

$(OUT)/tests/integration/%: $(OUT)/obj/tests/integration/%.o $(ITEST_SUPPORT_OBJS) $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

$(OUT)/bench/%: $(OUT)/obj/tests/bench/%.o $(BENCH_SUPPORT_OBJS) $(ITEST_SUPPORT_OBJS) $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)

# ---- fuzzing -----------------------------------------------------------------
# Every tests/fuzz/<component>/fuzz_<what>.c is a target (tests/fuzz/fuzz_target.h).
# <component> is a folder of services/ or tools/, whose objects except main.o
# (as an archive, so only what the target uses is linked) and headers the
# target gets, or `libs` (libblazz only). Each target becomes
#   $(OUT)/tests/unit/test_corpus_<what>  its corpus replayed under cmocka
#                                         (every build; `make test` runs it)
#   build/fuzz/fuzz/fuzz_<what>           the libFuzzer program (make fuzz)
# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="fuzz_a fuzz_b"] builds an
# instrumented tree with clang in build/fuzz (FUZZ=1) and runs each target
# for FUZZ_SECONDS (scripts/fuzz.sh), seeded from tests/fuzz/corpus/<target>/.
FUZZ_SECONDS ?= 60

# services/<c> or tools/<c> for component c; nothing for libs.
fuzz_component_dir = $(firstword $(wildcard services/$(1) tools/$(1)))
component_archive = $(if $(strip $(1)),$(OUT)/lib/component-$(notdir $(strip $(1))).a)

define component_archive_rule
$(OUT)/lib/component-$(notdir $(1)).a: $(patsubst %.c,$(OUT)/obj/%.o,$(filter-out %/main.c,$(wildcard $(1)/*.c)))
	@mkdir -p $$(dir $$@)
	rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach d,$(addprefix services/,$(SERVICES)) $(addprefix tools/,$(TOOLS)),\
    $(eval $(call component_archive_rule,$(d))))

# $(1): the target's source, $(2): its name, $(3): its component folder or empty.
define fuzz_target_rule
$(OUT)/obj/$(1:.c=.o): CFLAGS += -Itests/fuzz $(if $(3),-I$(3))
$(OUT)/fuzz/$(2): $(OUT)/obj/$(1:.c=.o) $(call component_archive,$(3)) $(LIBBLAZZ)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -fsanitize=fuzzer -o $$@ $$^ $$(LDLIBS)
$(OUT)/tests/unit/test_corpus_$(2:fuzz_%=%): $(OUT)/obj/$(1:.c=.o) $(OUT)/obj/tests/fuzz/replay.o \
        $(call component_archive,$(3)) $(LIBBLAZZ)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(CMOCKA_LIBS) $$(LDLIBS)
endef
fuzz_component_of = $(call fuzz_component_dir,$(notdir $(patsubst %/,%,$(dir $(1)))))
$(foreach f,$(FUZZ_SRCS),$(eval $(call fuzz_target_rule,$(f),$(basename $(notdir $(f))),$(call fuzz_component_of,$(f)))))

.PHONY: fuzz fuzz-run
fuzz: deps
	@$(MAKE) --no-print-directory FUZZ=1 CC=clang fuzz-run

fuzz-run: $(patsubst %,$(OUT)/fuzz/%,$(FUZZ_TARGETS))
	@scripts/fuzz.sh $(OUT) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The send budget's windows are campaign-sender's own module, tested alone.
$(OUT)/obj/tests/unit/test_send_budget_windows.o: CFLAGS += -Iservices/campaign-sender
$(OUT)/tests/unit/test_send_budget_windows: $(OUT)/obj/tests/unit/test_send_budget_windows.o \
                                            $(OUT)/obj/services/campaign-sender/budget.o $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

# ingest's parser modules, beyond what their fuzz targets check.
$(OUT)/obj/tests/unit/test_ingest_parsers.o: CFLAGS += -Iservices/ingest
$(OUT)/tests/unit/test_ingest_parsers: $(OUT)/obj/tests/unit/test_ingest_parsers.o \
                                       $(call component_archive,services/ingest) $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

# Unit test of ingest's listener guard, linked with the module it tests.
$(OUT)/obj/tests/unit/test_http_guard.o: CFLAGS += -Iservices/ingest
$(OUT)/tests/unit/test_http_guard: $(OUT)/obj/tests/unit/test_http_guard.o \
                                   $(OUT)/obj/services/ingest/http_guard.o $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

# meta-sender's Cloud API request and answer modules and its pace.
$(OUT)/obj/tests/unit/test_meta_graph.o: CFLAGS += -Iservices/meta-sender
$(OUT)/tests/unit/test_meta_graph: $(OUT)/obj/tests/unit/test_meta_graph.o \
                                   $(call component_archive,services/meta-sender) $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

# blazzctl's protobuf-as-JSON view (tools/blazzctl/pbjson.c), tested alone.
$(OUT)/obj/tests/unit/test_pbjson.o: CFLAGS += -Itools/blazzctl
$(OUT)/tests/unit/test_pbjson: $(OUT)/obj/tests/unit/test_pbjson.o \
                               $(OUT)/obj/tools/blazzctl/pbjson.o $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)
