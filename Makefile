# Blazz backbone - top-level build.
#
# Out-of-tree: everything goes to $(OUT) (build/ normally, build/asan/ for the
# sanitizer build the tests use). Layout rules, so new files need no edits here:
#   libs/*/*.c + generated protobuf  -> $(OUT)/lib/libblazz.a
#   services/<name>/*.c, */*.c       -> $(OUT)/bin/blazz-<name> (a service may keep its
#                                       parts in subfolders, one level deep; its files
#                                       include each other by the path under its folder)
#   tools/<name>/*.c, */*.c          -> $(OUT)/bin/<name>
#   tests/unit/<component>/test_*.c  -> $(OUT)/tests/unit/test_*        (one binary each; see
#                                       "components" below)
#   tests/unit/support/*.c           -> linked into every unit test
#   tests/fuzz/<component>/fuzz_*.c  -> $(OUT)/tests/unit/test_corpus_* (corpus replay), and
#                                       build/fuzz/fuzz/fuzz_* (libFuzzer, make fuzz); see
#                                       "fuzzing" below
#   tests/integration/support/*.c    -> linked into every integration and bench program
#   tests/integration/*.c            -> $(OUT)/tests/integration/*      (test_* are run)
#   tests/bench/<component>/bench_*.c -> $(OUT)/bench/bench_*           (see "components")
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

SERVICES := $(notdir $(patsubst %/,%,$(wildcard services/*/)))
SERVICE_BINS := $(patsubst %,$(OUT)/bin/blazz-%,$(SERVICES))
TOOLS := $(notdir $(patsubst %/,%,$(wildcard tools/*/)))
TOOL_BINS := $(patsubst %,$(OUT)/bin/%,$(TOOLS))

UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNIT_NAMES := $(basename $(notdir $(UNIT_SRCS)))
UNIT_BINS := $(patsubst %,$(OUT)/tests/unit/%,$(UNIT_NAMES))
UNIT_SUPPORT_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard tests/unit/support/*.c))
ITEST_SUPPORT_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard tests/integration/support/*.c))
ITEST_SRCS := $(wildcard tests/integration/*.c)
ITEST_BINS := $(patsubst tests/integration/%.c,$(OUT)/tests/integration/%,$(ITEST_SRCS))
BENCH_SRCS := $(wildcard tests/bench/*/bench_*.c)
BENCH_NAMES := $(basename $(notdir $(BENCH_SRCS)))
BENCH_BINS := $(patsubst %,$(OUT)/bench/%,$(BENCH_NAMES))
FUZZ_SRCS := $(wildcard tests/fuzz/*/fuzz_*.c)
FUZZ_NAMES := $(basename $(notdir $(FUZZ_SRCS)))
FUZZ_TARGETS ?= $(FUZZ_NAMES)
CORPUS_BINS := $(patsubst fuzz_%,$(OUT)/tests/unit/test_corpus_%,$(FUZZ_NAMES))

ALL_BINS := $(SERVICE_BINS) $(TOOL_BINS) $(UNIT_BINS) $(CORPUS_BINS) $(ITEST_BINS) $(BENCH_BINS)
# What make test runs: every test (sanitizer tree), and the release
# programs its own stacks and demos start (stack.sh, run.sh, chaos.sh: the
# services, the tools, and the integration helpers such as the Graph API
# test server). The rest of the release tree is built by make build.
TEST_BINS := $(SERVICE_BINS) $(TOOL_BINS) $(UNIT_BINS) $(CORPUS_BINS) $(ITEST_BINS)
STACK_BINS := $(SERVICE_BINS) $(TOOL_BINS) $(filter-out $(OUT)/tests/integration/test_%,$(ITEST_BINS))

# The public targets build on every core (the machines have two).
BUILD_JOBS := $(shell nproc 2>/dev/null || echo 2)
SUBMAKE := $(MAKE) --no-print-directory -j$(BUILD_JOBS)

.PHONY: all build programs test run bench stack-up stack-down lint clean deps binaries check-unit \
        test-binaries stack-binaries
.DEFAULT_GOAL := build
# Keep generated sources and objects between runs; drop half-written targets.
.SECONDARY:
.DELETE_ON_ERROR:

# ---- public targets -------------------------------------------------------

build: deps
	@$(SUBMAKE) binaries

# The services and tools only, without the tests and benchmarks: what the
# container image (docker/Dockerfile) ships.
programs: deps
	@$(SUBMAKE) $(SERVICE_BINS) $(TOOL_BINS)

test: deps
	@$(SUBMAKE) SAN=1 test-binaries
	@$(SUBMAKE) stack-binaries
	@scripts/test.sh build/asan

run: deps
	@$(SUBMAKE) binaries
	@scripts/run.sh

bench: deps
	@$(SUBMAKE) binaries
	@scripts/bench.sh

# The regression gate: the last release of docs/releases.txt (built once,
# into build/releases/<commit>-bench) and this tree alternated on one
# stack, figures side by side, failing when HEAD is worse beyond the
# tolerance (scripts/bench_gate.sh: tolerances, BLAZZ_GATE_ROUNDS,
# BLAZZ_GATE_ONLY).
.PHONY: bench-gate
bench-gate: deps
	@$(SUBMAKE) binaries
	@scripts/bench_gate.sh

# The CRM's reads at 10 M messages, in SQL and over the API's list routes,
# with the pipeline writing beside them (scripts/bench_reads.sh: about 9 GB
# of disk and 20 minutes on 2 cores; BLAZZ_READS_SCALE=0.1 for a tenth).
.PHONY: bench-reads
bench-reads: deps
	@$(SUBMAKE) binaries
	@scripts/bench_reads.sh

# make chaos [DURATION=600] [CLUSTER=1]: the system chaos test on a stack of
# its own (scripts/chaos.sh); CLUSTER=1 runs it on three brokers and a
# PostgreSQL primary with a standby, every service twice. `make test` runs a
# short single-node one (test_chaos).
.PHONY: chaos
DURATION ?= 600
CLUSTER ?= 0
chaos: deps
	@$(SUBMAKE) binaries
	@BLAZZ_CHAOS_CLUSTER=$(CLUSTER) scripts/chaos.sh $(DURATION)

# make upgrade-test [DURATION=60]: the last release of docs/releases.txt
# under load, the schema migrated forward and its services replaced one by
# one by this tree's, then rolled back to it on the new schema, then the
# chaos checks (scripts/upgrade_test.sh:
# chaos.sh's upgrade mode; the release is built once, in
# build/releases/<commit>).
.PHONY: upgrade-test
upgrade-test: deps
	@$(SUBMAKE) stack-binaries
	@scripts/upgrade_test.sh $(if $(filter-out file,$(origin DURATION)),$(DURATION))

# make chaos-cluster: the cluster checks, kept out of `make test` for its
# budget (they take 7-9 minutes on 2 cores): test_cluster under ASan
# (scripts/test.sh with BLAZZ_TEST_CLUSTER=1), then a 60 s cluster chaos
# run. CI runs it after make test. Its tests are make test's (nothing to
# build after it); the release tree is built whole, benchmarks included.
.PHONY: chaos-cluster
chaos-cluster: deps
	@$(SUBMAKE) SAN=1 test-binaries
	@$(SUBMAKE) binaries
	@BLAZZ_TEST_CLUSTER=1 scripts/test.sh build/asan
	@BLAZZ_CHAOS_CLUSTER=1 scripts/chaos.sh 60

# make compose-test: every image built and compose.yaml brought up for real
# (private podman, test stand-ins for the third-party images), checked end
# to end, then torn down (scripts/compose_test.sh; needs root).
.PHONY: compose-test
compose-test:
	@scripts/compose_test.sh

# make secrets: a .env for compose.yaml with fresh random passwords and keys
# (scripts/secrets.sh); .env.example's own values start nothing.
.PHONY: secrets
secrets:
	@scripts/secrets.sh

stack-up: deps
	@$(SUBMAKE) binaries
	@scripts/stack.sh up

stack-down:
	@scripts/stack.sh down

# Backups of the local stack's PostgreSQL (pgBackRest, scripts/lib/pg_backup.sh):
# the first `make backup` enables WAL archiving and takes a full backup.
.PHONY: backup restore backup-verify
backup:
	@scripts/stack.sh backup $(or $(TYPE),incr)
restore:
	@test -n "$(TIME)" || { echo 'usage: make restore TIME="2026-11-25 08:30:00+00" (or TIME=latest)' >&2; exit 2; }
	@scripts/stack.sh restore "$(TIME)"
backup-verify:
	@scripts/stack.sh backup-verify

lint: deps
	@$(SUBMAKE) binaries
	@scripts/lint.sh $(OUT)

clean:
	rm -rf build

deps:
	@scripts/deps.sh

# ---- internal -------------------------------------------------------------

binaries: $(ALL_BINS)

test-binaries: $(TEST_BINS)

stack-binaries: $(STACK_BINS)

check-unit: $(UNIT_BINS) $(CORPUS_BINS)

$(OUT)/gen/%.pb-c.c $(OUT)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(OUT)/gen
	protoc-c --c_out=$(OUT)/gen -Iproto $<

$(OUT)/obj/gen/%.o: $(OUT)/gen/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

# The Kafka ACL matrix of ARCHITECTURE.md §9.1 (docs/SECURITY.md), compiled into
# libs/kafka/acl.c.
ACL_MATRIX := $(OUT)/gen/acl_matrix.inc
$(ACL_MATRIX): docs/SECURITY.md scripts/gen_acl_matrix.sh
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

# The sources of a service or tool folder: its own and those of its
# subfolders, one level deep.
program_sources = $(wildcard $(1)/*.c $(1)/*/*.c)

# One link rule per service and tool: its own objects plus the library. Its
# files include each other by their path under its folder
# ("crm/crm_api.h"), so the folder is on their include path.
define program_rule
$(OUT)/obj/$(2)/%.o: CFLAGS += -I$(2)
$(OUT)/bin/$(1): $(patsubst %.c,$(OUT)/obj/%.o,$(call program_sources,$(2))) $(LIBBLAZZ)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call program_rule,blazz-$(s),services/$(s))))
$(foreach t,$(TOOLS),$(eval $(call program_rule,$(t),tools/$(t))))

$(OUT)/obj/tests/integration/%.o: CFLAGS += -Itests/integration/support

$(OUT)/tests/integration/%: $(OUT)/obj/tests/integration/%.o $(ITEST_SUPPORT_OBJS) $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)

# ---- components ----------------------------------------------------------------
# Unit tests, fuzz targets and benchmarks reach a service's or tool's code
# one way: a test in tests/unit/<component>/, tests/fuzz/<component>/ or
# tests/bench/<component>/ gets that component's headers (its folder on the
# include path: a header of a subfolder is "room/name.h") and its objects
# except its main.o, as an archive so that only what the test uses is
# linked. <component> is a folder of services/ or tools/, or `libs`
# (libblazz only, which everything links). A test reaches only what the
# component's headers declare. Each kind of test also gets its support
# folder: tests/unit/support/, tests/fuzz/ (replay.c, fuzz_target.h) and,
# for benchmarks, tests/integration/support/.

# services/<c> or tools/<c> for component c; nothing for libs.
component_dir = $(firstword $(wildcard services/$(1) tools/$(1)))
# The component folder of a test source tests/<kind>/<component>/<file>.c.
component_of = $(call component_dir,$(notdir $(patsubst %/,%,$(dir $(1)))))
component_archive = $(if $(strip $(1)),$(OUT)/lib/component-$(notdir $(strip $(1))).a)

define component_archive_rule
$(OUT)/lib/component-$(notdir $(1)).a: $(patsubst %.c,$(OUT)/obj/%.o,$(filter-out $(1)/main.c,$(call program_sources,$(1))))
	@mkdir -p $$(dir $$@)
	rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach d,$(addprefix services/,$(SERVICES)) $(addprefix tools/,$(TOOLS)),\
    $(eval $(call component_archive_rule,$(d))))

# The one rule of every such test program.
# $(1): the test's source, $(2): the program, $(3): the support folder of its
# kind, $(4): the support objects it links.
define component_test_rule
$(OUT)/obj/$(1:.c=.o): CFLAGS += -I$(3) $(if $(call component_of,$(1)),-I$(call component_of,$(1)))
$(2): $(OUT)/obj/$(1:.c=.o) $(4) $(call component_archive,$(call component_of,$(1))) $(LIBBLAZZ)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(CMOCKA_LIBS) $$(LDLIBS)
endef
# tests/unit/<component>/test_<what>.c -> $(OUT)/tests/unit/test_<what> (scripts/test.sh runs them all)
$(foreach t,$(UNIT_SRCS),$(eval $(call component_test_rule,$(t),\
    $(OUT)/tests/unit/$(basename $(notdir $(t))),tests/unit/support,$(UNIT_SUPPORT_OBJS))))
# tests/fuzz/<component>/fuzz_<what>.c -> $(OUT)/tests/unit/test_corpus_<what> ("fuzzing" below)
$(foreach f,$(FUZZ_SRCS),$(eval $(call component_test_rule,$(f),\
    $(OUT)/tests/unit/test_corpus_$(patsubst fuzz_%,%,$(basename $(notdir $(f)))),tests/fuzz,\
    $(OUT)/obj/tests/fuzz/replay.o)))
# tests/bench/<component>/bench_<what>.c -> $(OUT)/bench/bench_<what> (scripts/bench.sh)
$(foreach b,$(BENCH_SRCS),$(eval $(call component_test_rule,$(b),\
    $(OUT)/bench/$(basename $(notdir $(b))),tests/integration/support,$(ITEST_SUPPORT_OBJS))))

# A test folder names a component that exists, and no two tests make one program.
component_folders_unknown = $(sort $(foreach f,$(UNIT_SRCS) $(FUZZ_SRCS) $(BENCH_SRCS),\
    $(if $(or $(filter libs,$(notdir $(patsubst %/,%,$(dir $(f))))),$(call component_of,$(f))),,$(dir $(f)))))
ifneq ($(component_folders_unknown),)
$(error $(component_folders_unknown): not libs nor a folder of services/ or tools/)
endif
# A test outside a component folder would never be built: refuse it.
tests_outside_components := $(wildcard tests/unit/test_*.c tests/fuzz/fuzz_*.c tests/bench/bench_*.c)
ifneq ($(tests_outside_components),)
$(error $(tests_outside_components): move into tests/<kind>/<component>/ (a folder of services/ or tools/, or libs))
endif
TEST_PROGRAMS := $(UNIT_NAMES) $(patsubst fuzz_%,test_corpus_%,$(FUZZ_NAMES)) $(BENCH_NAMES)
ifneq ($(words $(TEST_PROGRAMS)),$(words $(sort $(TEST_PROGRAMS))))
$(error two tests would build the same program: $(sort $(foreach n,$(TEST_PROGRAMS),\
    $(if $(filter-out 1,$(words $(filter $(n),$(TEST_PROGRAMS)))),$(n)))))
endif

# ---- fuzzing -----------------------------------------------------------------
# Every tests/fuzz/<component>/fuzz_<what>.c is a target (tests/fuzz/fuzz_target.h),
# linked with its component ("components" above). Each target becomes
#   $(OUT)/tests/unit/test_corpus_<what>  its corpus replayed under cmocka
#                                         (every build; `make test` runs it)
#   build/fuzz/fuzz/fuzz_<what>           the libFuzzer program (make fuzz)
# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="fuzz_a fuzz_b"] builds an
# instrumented tree with clang in build/fuzz (FUZZ=1) and runs each target
# for FUZZ_SECONDS (scripts/fuzz.sh), seeded from tests/fuzz/corpus/<target>/.
FUZZ_SECONDS ?= 60

# $(1): the target's source, $(2): its name.
define fuzz_target_rule
$(OUT)/fuzz/$(2): $(OUT)/obj/$(1:.c=.o) $(call component_archive,$(call component_of,$(1))) $(LIBBLAZZ)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -fsanitize=fuzzer -o $$@ $$^ $$(LDLIBS)
endef
$(foreach f,$(FUZZ_SRCS),$(eval $(call fuzz_target_rule,$(f),$(basename $(notdir $(f))))))

.PHONY: fuzz fuzz-run
fuzz: deps
	@$(SUBMAKE) FUZZ=1 CC=clang fuzz-run

fuzz-run: $(patsubst %,$(OUT)/fuzz/%,$(FUZZ_TARGETS))
	@scripts/fuzz.sh $(OUT) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
