# copse — build, test, demo.
#
#   make            installs the missing packages it needs, then builds
#                   libcopse.a, the copse command and the tools (make build)
#   make test       the unit tests, then the same tests under ASan+UBSan
#   make demo       build and run the main job on the bundled model
#   make eval       the accuracy-versus-compute study on the bundled models (eval/)
#   make report     plot eval/results.csv (needs gnuplot; make test does not)
#   make sanitize   only the ASan+UBSan test run
#   make deps       install missing Debian packages (or print the command)
#   make fuzz, fuzz-model, fuzz-text, fuzz-answer, fuzz-files
#                   libFuzzer on what copse reads (tests/fuzz/README)
#
# Everything goes to build/ (or $(BUILD)). CC=clang works too.

CC      ?= cc
BUILD   ?= build
SHARED  ?= $(abspath ../shared)
PYTHON  ?= /usr/bin/python3

BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
CHECK_LIBS  := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm -pthread)

OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter
# The scalar kernels are the specification the SIMD ones are held to, so
# their roundings must not depend on the compiler: no a * b + c fused into
# one rounding unless the code says so (gcc's ISO C mode already keeps
# them apart; clang fuses by default, and did in the scalar rope on aarch64).
FP_FLAGS := -ffp-contract=off
CPPFLAGS_ALL := -std=c11 $(FP_FLAGS) -D_GNU_SOURCE -Iinclude -Iruntime -Iquant -Isearch $(BLAS_CFLAGS)
ALL_CFLAGS = $(CPPFLAGS_ALL) $(WARN) $(CFLAGS) -fopenmp -pthread $(SANFLAGS)
LDLIBS_ALL = $(BLAS_LIBS) -lm -fopenmp -pthread $(SANFLAGS)

ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

# Per-ISA kernel files are named after their tier and get only its flags;
# the rest of the code is portable and the tier is chosen at run time.
ARCH := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq (,$(findstring x86_64,$(ARCH)))
ISA_SRC_EXCLUDE := %_neon.c %_neondot.c
else ifneq (,$(findstring aarch64,$(ARCH)))
ISA_SRC_EXCLUDE := %_avx2.c %_avxvnni.c %_avx512.c %_amx.c
else
ISA_SRC_EXCLUDE := %_neon.c %_neondot.c %_avx2.c %_avxvnni.c %_avx512.c %_amx.c
endif
$(BUILD)/obj/%_avx2.o:    ISAFLAGS := -mavx2 -mfma -mf16c
$(BUILD)/obj/%_avxvnni.o: ISAFLAGS := -mavx2 -mfma -mf16c -mavxvnni
$(BUILD)/obj/%_avx512.o:  ISAFLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni
$(BUILD)/obj/%_amx.o:     ISAFLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mamx-tile -mamx-int8
$(BUILD)/obj/%_neondot.o: ISAFLAGS := -march=armv8.2-a+dotprod

LIB_SRC  := $(filter-out $(ISA_SRC_EXCLUDE),$(wildcard runtime/*.c quant/*.c search/*.c))
CLI_SRC  := $(wildcard cli/*.c)
TOOL_SRC := $(wildcard tools/*.c)
TEST_SRC := $(wildcard tests/*.c)
# TESTS="gguf tokenizer" links only those suites (helps while other files are in flux).
ifneq ($(TESTS),)
TEST_SRC := $(filter-out tests/test_%.c,$(TEST_SRC)) $(patsubst %,tests/test_%.c,$(TESTS))
endif
BENCH_SRC:= $(wildcard bench/*.c)

LIB      := $(BUILD)/libcopse.a
COPSE    := $(BUILD)/bin/copse
TOOLS    := $(patsubst tools/%.c,$(BUILD)/bin/%,$(TOOL_SRC))
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bin/bench-%,$(BENCH_SRC))
TESTBIN  := $(BUILD)/bin/test_copse
SUITES   := $(patsubst tests/test_%.c,%,$(filter tests/test_%.c,$(TEST_SRC)))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

.PHONY: all build lib test test-run sanitize demo eval report deps clean bench FORCE
# The packages building needs first (not the tests' ones), then a fresh
# make: pkg-config's flags above are read once a fresh machine has them.
all:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BUILD_PKGS)"
	@$(MAKE) --no-print-directory build
build: $(LIB) $(COPSE) $(TOOLS) $(BENCHES)
FORCE:
lib: $(LIB)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ISAFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(call obj,$(LIB_SRC))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(COPSE): $(call obj,$(CLI_SRC)) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS_ALL) -o $@

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS_ALL) -o $@

$(BUILD)/bin/bench-%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS_ALL) -o $@

# The test runner links every tests/test_NAME.c; each defines
# Suite *copse_suite_NAME(void), listed here so no file needs editing.
# Rewritten only when the list changes (TESTS= may change it), so it is
# checked every time but rarely rebuilds anything.
$(BUILD)/suites.inc: FORCE
	@mkdir -p $(@D)
	@printf '$(foreach s,$(SUITES),SUITE($(s))\n)' > $@.tmp && \
	  (cmp -s $@.tmp $@ || mv $@.tmp $@); rm -f $@.tmp
$(BUILD)/obj/tests/main.o: $(BUILD)/suites.inc
$(BUILD)/obj/tests/%.o: ALL_CFLAGS += -I$(BUILD) -DCOPSE_SHARED_DEFAULT='"$(SHARED)"' -DCOPSE_BUILD_DIR='"$(BUILD)"'

# The question-set reader and the speculative loop are the command's,
# tested in the suite itself.
$(TESTBIN): $(call obj,$(TEST_SRC) cli/jsonl.c cli/common.c cli/json.c cli/speculate.c) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ $(CHECK_LIBS) $(LDLIBS_ALL) -o $@

# Test data generated by the project's own tools (tests/data.mk), the
# kernels' cross-architecture checks (quant/quant.mk) and the aarch64
# compile of the whole tree (tests/xarch/xarch.mk) add to these.
TESTDATA :=
EXTRA_TESTS :=
-include tests/data.mk
-include quant/quant.mk
-include tests/xarch/xarch.mk
-include tests/fuzz/fuzz.mk

test-run: $(TESTBIN) $(TESTDATA) $(COPSE) $(TOOLS) $(EXTRA_TESTS)
	@echo "== unit tests ($(BUILD))"
	COPSE_BUILD=$(BUILD) $(TESTBIN)

test: deps
	$(MAKE) test-run
	$(MAKE) sanitize

sanitize:
	$(MAKE) BUILD=$(BUILD)/asan SAN=1 OPT=-O1 test-run

bench: $(BENCHES)

demo: all
	@sh tools/demo.sh $(BUILD)

# the bundled models: data, training (hours on two cores, niced; rerunning
# resumes), GGUF export. Needs python3-torch.
.PHONY: models
models: $(COPSE) $(TOOLS)
	BUILD=$(abspath $(BUILD)) sh train/make_models.sh

# The study: strategies x budgets x levels on EVAL_PER_LEVEL test questions
# per level, compute-optimal tuned on EVAL_TUNE_PER_LEVEL validation
# questions per level; the revision and larger models join when present.
EVAL_DIR            ?= eval
EVAL_PER_LEVEL      ?= 100
EVAL_TUNE_PER_LEVEL ?= 20
EVAL_THREADS        ?= 2
EVAL_FLAGS          ?=
EVAL_MODELS := -m models/math-policy-f16.gguf --prm models/math-prm-f16.gguf \
	$(if $(wildcard models/math-revise-f16.gguf),--revise-model models/math-revise-f16.gguf) \
	$(addprefix --large ,$(firstword $(wildcard models/math-policy-large*.gguf)))

eval: deps $(COPSE)
	@mkdir -p $(EVAL_DIR)
	OMP_WAIT_POLICY=passive $(COPSE) eval $(EVAL_MODELS) -t $(EVAL_THREADS) \
	  --per-level $(EVAL_PER_LEVEL) --tune-data train/data/validation.jsonl --tune-per-level $(EVAL_TUNE_PER_LEVEL) \
	  --csv $(EVAL_DIR)/results.csv --jsonl $(EVAL_DIR)/results.jsonl --table-out $(EVAL_DIR)/tuned.txt \
	  $(EVAL_FLAGS) > $(EVAL_DIR)/summary.txt
	@cat $(EVAL_DIR)/summary.txt
	$(MAKE) report

report:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(REPORT_PKGS)"
	sh tools/plot-eval.sh $(EVAL_DIR)/results.csv $(EVAL_DIR)

# ------------------------------------------------------------------ packages
# what make (building) needs; make test needs all of DEB_PKGS (+=:
# quant/quant.mk, included above, adds the cross-compiler and qemu)
BUILD_PKGS := gcc make pkg-config libopenblas-dev
DEB_PKGS += $(BUILD_PKGS) check python3-numpy
# only for make report
REPORT_PKGS := gnuplot-nox

deps:
	@command -v dpkg >/dev/null 2>&1 || { echo "deps: not a Debian system; need: $(DEB_PKGS)"; exit 0; }; \
	missing=""; for p in $(DEB_PKGS); do \
	  dpkg -s $$p 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "deps: missing packages; run:  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
