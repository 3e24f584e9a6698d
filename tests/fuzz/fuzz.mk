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

# The model loader under libFuzzer (make fuzz-model [FUZZ_SECONDS=600]):
# the whole library built again with clang, its portable code instrumented, in its own
# BUILD. Seeds are small models from our mkmodel (every architecture,
# tensor type and head it writes) and the test models; new inputs go to
# $(BUILD)/fuzz/model-corpus, crashes to $(BUILD)/fuzz/crashes.
FUZZ_LIB     := $(FUZZ_DIR)/lib
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_MKMODEL := $(BUILD)/bin/mkmodel --n-vocab 260 --n-embd 32 --n-layer 2 --n-head 2 --n-ff 64 --n-ctx 64

.PHONY: fuzz-model fuzz-model-lib fuzz-model-seeds
fuzz-model-lib:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_LIB) CC=$(FUZZ_CC) OPT=-O1 \
	  FUZZ_LIB_FLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FUZZ_LIB)/libcopse.a

# That build instruments the portable code only: clang took over ten
# minutes on one instrumented AVX-512 file, whose tiles inline and unroll.
# The kernels' reads are checked by the exactness tests under ASan instead.
ifdef FUZZ_LIB_FLAGS
SANFLAGS := $(FUZZ_LIB_FLAGS)
$(BUILD)/obj/%_avx2.o $(BUILD)/obj/%_avxvnni.o $(BUILD)/obj/%_avx512.o: SANFLAGS :=
endif

$(FUZZ_DIR)/fuzz_model: tests/fuzz/fuzz_model.c include/copse.h fuzz-model-lib
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Iinclude -g -O1 -fsanitize=fuzzer $(FUZZ_SAN) \
	  tests/fuzz/fuzz_model.c $(FUZZ_LIB)/libcopse.a $(BLAS_LIBS) -lm -fopenmp -o $@

fuzz-model-seeds: $(BUILD)/bin/mkmodel
	@rm -rf $(FUZZ_DIR)/model-seeds && mkdir -p $(FUZZ_DIR)/model-seeds
	@i=0; for opts in "--type f32" "--type f16 --tied 0" "--type bf16 --n-head-kv 1" \
	    "--type q8_0 --n-head-kv 1 --tied 0" "--arch qwen2 --bias 1 --type q8_0" \
	    "--type f32 --n-rot 8 --rope-scale 2 --rope-freqs 1" "--type q8_0 --head value" \
	    "--type f16 --head two-class --tied 0" "--type q4_0,q4_1,q5_0,q5_1,iq4_nl --head value" \
	    "--n-embd 256 --n-ff 256 --n-layer 1 --type q2_k,q3_k,q4_k,q5_k,q6_k,iq4_xs" \
	    "--arch qwen3 --head-dim 24 --n-head-kv 1" "--arch phi3 --type q4_0 --tied 0" \
	    "--arch phi3 --n-rot 8 --rope-factors 1 --pre gpt-4o" "--arch gemma3 --n-layer 3 --window 5 --type q8_0"; do \
	  i=$$((i + 1)); $(FUZZ_MKMODEL) $$opts --seed $$i -o $(FUZZ_DIR)/model-seeds/mk-$$i.gguf >/dev/null || exit 1; \
	done
	@cp tests/data/models/*.gguf $(FUZZ_DIR)/model-seeds/

fuzz-model: $(FUZZ_DIR)/fuzz_model fuzz-model-seeds
	@mkdir -p $(FUZZ_DIR)/model-corpus $(FUZZ_DIR)/crashes
	$(FUZZ_DIR)/fuzz_model -max_total_time=$(FUZZ_SECONDS) -max_len=524288 -timeout=20 \
	  -rss_limit_mb=4096 -dict=tests/fuzz/gguf.dict -artifact_prefix=$(FUZZ_DIR)/crashes/ \
	  $(FUZZ_DIR)/model-corpus $(FUZZ_DIR)/model-seeds

# The tokenizers under libFuzzer (make fuzz-text [FUZZ_SECONDS=600]): any
# text through every ../shared/vocab vocabulary and the test models', held
# to copse.h's promises (fuzz_text.c); the library is fuzz-model's build.
$(FUZZ_DIR)/fuzz_text: tests/fuzz/fuzz_text.c include/copse.h fuzz-model-lib
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Iinclude -g -O1 -fsanitize=fuzzer $(FUZZ_SAN) \
	  -DFUZZ_SHARED='"$(SHARED)"' tests/fuzz/fuzz_text.c $(FUZZ_LIB)/libcopse.a $(BLAS_LIBS) \
	  -lm -fopenmp -o $@

.PHONY: fuzz-text
fuzz-text: $(FUZZ_DIR)/fuzz_text
	@mkdir -p $(FUZZ_DIR)/text-corpus $(FUZZ_DIR)/crashes
	$(FUZZ_DIR)/fuzz_text -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
	  -rss_limit_mb=2048 -artifact_prefix=$(FUZZ_DIR)/crashes/ $(FUZZ_DIR)/text-corpus

# The answer checker under libFuzzer (make fuzz-answer [FUZZ_SECONDS=600]):
# any bytes as a solution and as answers, held to answer.h's promises
# (fuzz_answer.c); answer.c stands alone, so it is compiled in, instrumented.
$(FUZZ_DIR)/fuzz_answer: tests/fuzz/fuzz_answer.c search/answer.c search/answer.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isearch tests/fuzz/fuzz_answer.c search/answer.c -o $@

# Seeds: each line of ../shared's math sets (JSON: question, solution and
# answer, the LaTeX a model writes), never committed.
.PHONY: fuzz-answer
fuzz-answer: $(FUZZ_DIR)/fuzz_answer
	@mkdir -p $(FUZZ_DIR)/answer-corpus $(FUZZ_DIR)/answer-seeds $(FUZZ_DIR)/crashes
	@for f in $(wildcard $(SHARED)/data/math/*.jsonl); do \
	  head -n 400 $$f | split -l 1 - $(FUZZ_DIR)/answer-seeds/$$(basename $$f .jsonl)-; done
	$(FUZZ_DIR)/fuzz_answer -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
	  -rss_limit_mb=2048 -dict=tests/fuzz/answer.dict -artifact_prefix=$(FUZZ_DIR)/crashes/ \
	  $(FUZZ_DIR)/answer-corpus $(FUZZ_DIR)/answer-seeds

# The question-set and tuning-table readers under libFuzzer (make fuzz-files
# [FUZZ_SECONDS=600]): any bytes as either file, held to what the readers
# promise (fuzz_files.c); jsonl.c is compiled in, table.c comes instrumented
# in fuzz-model's library build.
$(FUZZ_DIR)/fuzz_files: tests/fuzz/fuzz_files.c cli/jsonl.c cli/jsonl.h include/copse.h fuzz-model-lib
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Iinclude -Icli -Isearch -Iruntime -g -O1 -fsanitize=fuzzer \
	  $(FUZZ_SAN) tests/fuzz/fuzz_files.c cli/jsonl.c $(FUZZ_LIB)/libcopse.a $(BLAS_LIBS) \
	  -lm -fopenmp -o $@

# Seeds (the first byte picks the reader: odd a table, even a question set):
# a table with every kind of line, and the first lines of ../shared's math sets.
.PHONY: fuzz-files
fuzz-files: $(FUZZ_DIR)/fuzz_files
	@rm -rf $(FUZZ_DIR)/files-seeds && mkdir -p $(FUZZ_DIR)/files-corpus $(FUZZ_DIR)/files-seeds $(FUZZ_DIR)/crashes
	@printf '\001copse-tune 1\n# bin budget strategy m k pick accuracy\nprobes 2\nedges 0.2 0.4\nrow 0 4 weighted 1 1 weighted 0.5\nrow 2 16 beam 4 1 best\n' \
	  > $(FUZZ_DIR)/files-seeds/table
	@printf '\000{"question": "What is 2 + \\"2\\"?", "answer": 4, "level": 1}\n\n{"question": "x\\u00e9", "answer": "\\\\frac{1}{2}"}\n' \
	  > $(FUZZ_DIR)/files-seeds/set
	@for f in $(wildcard $(SHARED)/data/math/*.jsonl); do \
	  (printf '\000'; head -n 3 $$f) > $(FUZZ_DIR)/files-seeds/$$(basename $$f .jsonl); done
	$(FUZZ_DIR)/fuzz_files -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
	  -rss_limit_mb=2048 -dict=tests/fuzz/files.dict -artifact_prefix=$(FUZZ_DIR)/crashes/ \
	  $(FUZZ_DIR)/files-corpus $(FUZZ_DIR)/files-seeds
