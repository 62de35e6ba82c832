# Blazz backbone - top-level build.
#
# Out-of-tree: everything goes to $(OUT) (build/ normally, build/asan/ for the
# sanitizer build the tests use). Layout rules, so new files need no edits here:
#   libs/*/*.c + generated protobuf  -> $(OUT)/lib/libblazz.a
#   services/<name>/*.c              -> $(OUT)/bin/blazz-<name>
#   tools/<name>/*.c                 -> $(OUT)/bin/<name>
#   tests/unit/test_*.c              -> $(OUT)/tests/unit/test_*        (one binary each)
#   tests/integration/support/*.c    -> linked into every integration program
#   tests/integration/*.c            -> $(OUT)/tests/integration/*      (test_* are run)
#   tests/bench/support/*.c          -> linked into every bench program (with the
#                                       integration support, which they reuse)
#   tests/bench/*.c                  -> $(OUT)/bench/*
# The public targets first make sure the dependencies are installed
# (scripts/deps.sh, a no-op when they are) and then re-enter make.

SAN ?= 0
ifeq ($(SAN),1)
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
CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) $(SANFLAGS) \
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

ALL_BINS := $(SERVICE_BINS) $(TOOL_BINS) $(UNIT_BINS) $(ITEST_BINS) $(BENCH_BINS)

.PHONY: all build test run bench stack-up stack-down lint clean deps binaries check-unit
.DEFAULT_GOAL := build
# Keep generated sources and objects between runs; drop half-written targets.
.SECONDARY:
.DELETE_ON_ERROR:

# ---- public targets -------------------------------------------------------

build: deps
	@$(MAKE) --no-print-directory binaries

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

# make chaos [DURATION=600]: the system chaos test on a stack of its own
# (scripts/chaos.sh); `make test` runs a short one (test_chaos).
.PHONY: chaos
DURATION ?= 600
chaos: deps
	@$(MAKE) --no-print-directory binaries
	@scripts/chaos.sh $(DURATION)

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

check-unit: $(UNIT_BINS)

$(OUT)/gen/%.pb-c.c $(OUT)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(OUT)/gen
	protoc-c --c_out=$(OUT)/gen -Iproto $<

$(OUT)/obj/gen/%.o: $(OUT)/gen/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

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

# ---- fuzzing (ingest) -------------------------------------------------------
# make fuzz: build the ingest fuzz targets (tests/fuzz/fuzz_ingest_*.c) with
# libFuzzer and run each for FUZZ_SECONDS, seeded from the checked-in corpus
# tests/fuzz/corpus/<target>/ (read-only; new inputs go to build/fuzz/work-*).
# The corpus is also replayed by tests/unit/test_ingest_corpus, which links
# the same parser modules.
FUZZ_SECONDS ?= 60
FUZZ_OUT := build/fuzz
INGEST_PARSER_SRCS := services/ingest/event_tree.c services/ingest/event_id.c \
                      services/ingest/normalize.c services/ingest/gateway_json.c \
                      services/ingest/meta_webhook.c services/ingest/dedupe.c
FUZZ_LIB_SRCS := libs/core/status.c libs/core/utf8.c libs/core/uuid.c libs/wa/phone.c libs/wa/jid.c \
                 libs/proto/unknown_fields.c
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_ingest_*.c))

.PHONY: fuzz fuzz-run
fuzz: deps
	@$(MAKE) --no-print-directory OUT=$(FUZZ_OUT) fuzz-run

fuzz-run: $(patsubst %,$(OUT)/fuzz/%,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(OUT)/fuzz/work-$$t && \
	    echo "fuzz $$t for $(FUZZ_SECONDS)s" && \
	    $(OUT)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=131072 \
	        -artifact_prefix=$(OUT)/fuzz/$$t- $(OUT)/fuzz/work-$$t tests/fuzz/corpus/$$t \
	        || exit 1; \
	done

$(OUT)/fuzz/fuzz_ingest_%: tests/fuzz/fuzz_ingest_%.c tests/fuzz/fuzz_ingest.h $(INGEST_PARSER_SRCS) \
                           $(FUZZ_LIB_SRCS) $(PROTO_C)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	    -Ilibs -I$(OUT)/gen -Iservices/ingest $(filter %.c,$^) \
	    $(shell pkg-config --libs libprotobuf-c jansson openssl) -o $@

$(OUT)/obj/tests/unit/test_ingest_corpus.o: CFLAGS += -Iservices/ingest
$(OUT)/tests/unit/test_ingest_corpus: $(OUT)/obj/tests/unit/test_ingest_corpus.o \
                                      $(patsubst %.c,$(OUT)/obj/%.o,$(INGEST_PARSER_SRCS)) $(LIBBLAZZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)
