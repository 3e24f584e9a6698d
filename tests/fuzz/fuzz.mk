# The GGUF reader under libFuzzer (included by the Makefile):
#   make fuzz [FUZZ_SECONDS=600]
# Needs clang with libFuzzer (Debian: clang, libclang-rt-14-dev). Seeds are
# generated into $(BUILD)/fuzz/seeds from our writer and, when ../shared is
# there, from its vocab files (cut down, never committed); the committed
# corpus and crash regressions in tests/data/gguf are read too. New inputs
# go to $(BUILD)/fuzz/corpus, crashes to $(BUILD)/fuzz/crashes.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_LIBSRC  := runtime/gguf.c runtime/gguf_write.c runtime/error.c
FUZZ_DEPS    := $(FUZZ_LIBSRC) runtime/gguf.h tests/fuzz/walk.h tests/fuzz/sample.h
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -Iinclude -Iruntime -Itests/fuzz -g -O1 \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

.PHONY: fuzz fuzz-seeds
$(FUZZ_DIR)/fuzz_gguf: tests/fuzz/fuzz_gguf.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) tests/fuzz/fuzz_gguf.c $(FUZZ_LIBSRC) -o $@

$(FUZZ_DIR)/gen_seeds: tests/fuzz/gen_seeds.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Iinclude -Iruntime -Itests/fuzz $(WARN) -g -O1 \
	  tests/fuzz/gen_seeds.c $(FUZZ_LIBSRC) -o $@

# The shared vocab files' first 4 KB: real llama.cpp headers, cut mid-array.
fuzz-seeds: $(FUZZ_DIR)/gen_seeds
	@rm -rf $(FUZZ_DIR)/seeds && mkdir -p $(FUZZ_DIR)/seeds
	$(FUZZ_DIR)/gen_seeds $(FUZZ_DIR)/seeds $(wildcard $(SHARED))
	@for f in $(wildcard $(SHARED)/vocab/*.gguf); do \
	  head -c 4096 $$f > $(FUZZ_DIR)/seeds/head-$$(basename $$f); done

fuzz: $(FUZZ_DIR)/fuzz_gguf fuzz-seeds
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes
	$(FUZZ_DIR)/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	  -rss_limit_mb=2048 -dict=tests/fuzz/gguf.dict -artifact_prefix=$(FUZZ_DIR)/crashes/ \
	  $(FUZZ_DIR)/corpus $(FUZZ_DIR)/seeds tests/data/gguf
