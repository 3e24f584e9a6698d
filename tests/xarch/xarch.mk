# The whole tree compiles for aarch64 without a warning: a user on an Arm
# machine builds all of it, while the NEON kernels' check under qemu
# (quant/quant.mk) builds only the kernels. Compiled, not linked: the cross
# toolchain has no OpenBLAS or Check for Arm; their headers are the same on
# every architecture, so the host's serve. Uses quant.mk's XCC and XARCH.

XARCH_ALL     := $(XARCH)/all
XARCH_ALL_SRC := $(filter-out %_avx2.c %_avxvnni.c %_avx512.c %_amx.c, \
                   $(wildcard runtime/*.c quant/*.c search/*.c) $(CLI_SRC) $(TOOL_SRC) $(BENCH_SRC) $(TEST_SRC))
XARCH_ALL_OBJ := $(patsubst %.c,$(XARCH_ALL)/%.o,$(XARCH_ALL_SRC))

$(XARCH_ALL)/%.o: %.c
	@mkdir -p $(@D)
	$(XCC) $(CPPFLAGS_ALL) $(WARN) -Werror -O2 -fopenmp $(XISA) -MMD -MP -c $< -o $@
$(XARCH_ALL)/quant/%_neondot.o: XISA := -march=armv8.2-a+dotprod
$(XARCH_ALL)/tests/%.o: CPPFLAGS_ALL += -I$(BUILD) -DCOPSE_SHARED_DEFAULT='"$(SHARED)"' -DCOPSE_BUILD_DIR='"$(BUILD)"'
$(XARCH_ALL)/tests/main.o: $(BUILD)/suites.inc

.PHONY: xarch-compile xarch-compile-skip
xarch-compile: $(XARCH_ALL_OBJ)
	@echo "== the whole tree compiles for aarch64 ($(words $^) files, warnings as errors)"
xarch-compile-skip:
	@echo "SKIP aarch64 compile check: $(XCC) missing (make deps installs it)"

ifeq ($(shell command -v $(XCC) >/dev/null 2>&1 && echo y),y)
EXTRA_TESTS += xarch-compile
else
EXTRA_TESTS += xarch-compile-skip
endif

-include $(shell find $(XARCH_ALL) -name '*.d' 2>/dev/null)
