# int8 kernels (quant/): the NEON tiers are built for aarch64 with the cross
# compiler and their exactness checks (tests/q8_exact.c), with those of the
# NEON attention and elementwise kernels that go with them
# (tests/attn_exact.c, tests/vec_exact.c), run under
# qemu as part of test-run: the default CPU takes the dot-product path, a
# Cortex-A53 (no dot product) the Armv8.0 one. Without the tools the check
# says SKIP.

DEB_PKGS += gcc-aarch64-linux-gnu qemu-user

XCC        ?= aarch64-linux-gnu-gcc
QEMU_A64   ?= qemu-aarch64
XARCH      := $(BUILD)/xarch
XARCH_BIN  := $(XARCH)/kernels
XARCH_SRC  := quant/q8.c quant/dequant.c quant/q8_scalar.c quant/q8_neon.c quant/q8_neondot.c \
              runtime/error.c runtime/gguf.c runtime/pool.c runtime/attention.c runtime/attention_neon.c \
              runtime/kv.c runtime/vec.c runtime/vec_neon.c tests/exact.c tests/q8_exact.c tests/attn_exact.c \
              tests/vec_exact.c tests/xarch/kernels_main.c
XARCH_FLAGS = -std=c11 $(FP_FLAGS) -D_GNU_SOURCE -Iinclude -Iruntime -Iquant -Itests $(WARN) -O2 -g -fopenmp

$(XARCH)/%.o: %.c
	@mkdir -p $(@D)
	$(XCC) $(XARCH_FLAGS) $(XISA) -MMD -MP -c $< -o $@
$(XARCH)/quant/%_neondot.o: XISA := -march=armv8.2-a+dotprod

$(XARCH_BIN): $(patsubst %.c,$(XARCH)/%.o,$(XARCH_SRC))
	$(XCC) $(XARCH_FLAGS) $^ -lm -o $@

.PHONY: q8-xarch-dotprod q8-xarch-v80 q8-xarch-skip
q8-xarch-dotprod: $(XARCH_BIN)
	@echo "== int8, attention and elementwise kernels, aarch64 under qemu (dotprod)"
	$(QEMU_A64) -L /usr/aarch64-linux-gnu $(XARCH_BIN) neon-dotprod neon scalar
q8-xarch-v80: $(XARCH_BIN) | q8-xarch-dotprod   # one at a time: readable output
	@echo "== int8, attention and elementwise kernels, aarch64 under qemu (Cortex-A53, Armv8.0)"
	$(QEMU_A64) -L /usr/aarch64-linux-gnu -cpu cortex-a53 $(XARCH_BIN) neon scalar '!neon-dotprod'
q8-xarch-skip:
	@echo "SKIP aarch64 kernels: $(XCC) or $(QEMU_A64) missing (make deps installs them)"

ifeq ($(shell command -v $(XCC) >/dev/null 2>&1 && command -v $(QEMU_A64) >/dev/null 2>&1 && echo y),y)
EXTRA_TESTS += q8-xarch-dotprod q8-xarch-v80
else
EXTRA_TESTS += q8-xarch-skip
endif

-include $(shell find $(XARCH) -name '*.d' 2>/dev/null)
