# kronformer: `make` builds ./train, `make test` runs every test, `make bench` the
# benchmarks. NO_OMP=1 builds without OpenMP; NATIVE=0 without -march=native (matmul.c's
# AVX2 and AVX-512 kernels are still built, chosen at run time by cpuid); REF=1
# sends every matrix product to matmul.c's reference loops, attention to model.c's plain
# loops and exp to libm (objects in build/ref/), so that `make REF=1 test` checks the
# fast paths change only the rounding.
# USE_MPI=1 builds ./train with mpicc for data-parallel training (dist.h), its objects in
# build-mpi/ (PROG=NAME names the program otherwise, as tests/test_mpi.sh does).
CC ?= cc
BUILD_ROOT = build
PROG ?= train
ifeq ($(USE_MPI),1)
CC = mpicc
CFLAGS_MPI = -DUSE_MPI
BUILD_ROOT = build-mpi
endif
OPT ?= -O3
CFLAGS ?= $(OPT) -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L
# Not -ffast-math (it broke llm.c's GELU): these two change no result, they only tell
# the compiler that no one reads errno or floating-point exception flags, so that
# sqrt, exp's range reduction and clamps vectorize.
CFLAGS += -fno-math-errno -fno-trapping-math $(CFLAGS_MPI)
LDLIBS = -lm

# Probe the compiler rather than assume: -march=native and OpenMP only when accepted.
ifneq ($(NATIVE),0)
CFLAGS += $(shell echo 'int main(void){return 0;}' | $(CC) -march=native -x c -o /dev/null - 2>/dev/null && echo -march=native)
endif
ifneq ($(NO_OMP),1)
OMPFLAGS := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c -o /dev/null - 2>/dev/null && echo -fopenmp)
endif
CFLAGS += $(OMPFLAGS)
# Without OpenMP the `#pragma omp` lines are plain comments: do not warn about them.
ifeq ($(OMPFLAGS),)
CFLAGS += -Wno-unknown-pragmas
endif

# SAN=1 (make sanitize): AddressSanitizer and UndefinedBehaviorSanitizer, objects in
# build-san/ (build-mpi-san/ with USE_MPI=1, as tests/test_mpi.sh builds under it);
# any report stops the program (halt_on_error), which the tests count.
ifeq ($(SAN),1)
BUILD_ROOT := $(BUILD_ROOT)-san
CFLAGS += -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDLIBS += -fsanitize=address,undefined
endif

ifeq ($(REF),1)
CFLAGS += -DKF_REF
BUILD = $(BUILD_ROOT)/ref
else
BUILD = $(BUILD_ROOT)
endif

HDR = common.h model.h embed_factor.h tokenizer.h matmul.h data.h checkpoint.h plot.h data/toydata.h \
      fileio.h prepare.h run.h generate.h compare.h evaluate.h metrics.h vecmath.h dist.h
LIB = model.c embed_factor.c tokenizer.c matmul.c data.c checkpoint.c plot.c data/toydata.c \
      fileio.c prepare.c run.c generate.c compare.c evaluate.c metrics.c dist.c
OBJ = $(patsubst %.c,$(BUILD)/%.o,$(LIB))
# The model's numerics again in double precision, for the finite-difference tests.
DOBJ = $(BUILD)/double/model.o $(BUILD)/double/embed_factor.o $(BUILD)/double/matmul.o
# The programs are linked against the objects of one mode: switching between REF=1 and
# not replaces this stamp, which relinks them.
MODE = $(BUILD)/.linked

TESTS = tests/test_matmul tests/test_tokenizer tests/test_data tests/test_checkpoint \
        tests/test_embed tests/test_model tests/test_kernels tests/test_matmul_serial \
        tests/test_decode tests/test_decode_double tests/test_metrics \
        tests/test_reference tests/test_reference_f32 tests/test_threads tests/test_schedule \
        tests/test_dist

.PHONY: all test bench clean sanitize fuzz
all: $(PROG)

$(BUILD)/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<
$(BUILD)/double/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DKF_DOUBLE -c -o $@ $<
$(MODE):
	@mkdir -p $(dir $@)
	@rm -f build/.linked build/ref/.linked build-mpi/.linked build-mpi/ref/.linked build-san/.linked \
	       build-mpi-san/.linked
	@touch $@

$(PROG): train.c $(OBJ) $(HDR) $(MODE)
	$(CC) $(CFLAGS) -o $@ train.c $(OBJ) $(LDLIBS)

tests/test_embed: tests/test_embed.c tests/check.h $(BUILD)/double/embed_factor.o $(BUILD)/double/matmul.o $(MODE)
	$(CC) $(CFLAGS) -DKF_DOUBLE -o $@ $< $(BUILD)/double/embed_factor.o $(BUILD)/double/matmul.o $(LDLIBS)
tests/test_model: tests/test_model.c tests/check.h $(DOBJ) $(MODE)
	$(CC) $(CFLAGS) -DKF_DOUBLE -o $@ $< $(DOBJ) $(LDLIBS)
tests/test_decode_double: tests/test_decode.c tests/check.h $(DOBJ) $(MODE)
	$(CC) $(CFLAGS) -DKF_DOUBLE -o $@ $< $(DOBJ) $(LDLIBS)
# Against the PyTorch fixtures of tests/ref/: in double, and in the float build that trains.
tests/test_reference: tests/test_reference.c tests/check.h $(DOBJ) $(BUILD)/double/checkpoint.o $(BUILD)/double/fileio.o $(MODE)
	$(CC) $(CFLAGS) -DKF_DOUBLE -o $@ $< $(DOBJ) $(BUILD)/double/checkpoint.o $(BUILD)/double/fileio.o $(LDLIBS)
tests/test_reference_f32: tests/test_reference.c tests/check.h $(OBJ) $(MODE)
	$(CC) $(CFLAGS) -o $@ $< $(OBJ) $(LDLIBS)
# The matrix multiply once more without OpenMP: the serial build must agree too.
tests/test_matmul_serial: tests/test_matmul.c tests/check.h matmul.c matmul.h common.h $(MODE)
	$(CC) $(filter-out $(OMPFLAGS),$(CFLAGS)) -Wno-unknown-pragmas -o $@ tests/test_matmul.c matmul.c $(LDLIBS)
tests/weights_diff: tests/weights_diff.c $(OBJ) $(MODE)
	$(CC) $(CFLAGS) -o $@ $< $(OBJ) $(LDLIBS)
tests/st_check: tests/st_check.c $(OBJ) $(MODE)
	$(CC) $(CFLAGS) -o $@ $< $(OBJ) $(LDLIBS)
tests/test_%: tests/test_%.c tests/check.h $(OBJ) $(MODE)
	$(CC) $(CFLAGS) -o $@ $< $(OBJ) $(LDLIBS)

# tests/test_mpi.sh builds its own ./train-mpi (make USE_MPI=1), or says SKIP without MPI.
test: train $(TESTS) tests/weights_diff tests/st_check
	@sh tests/run.sh $(TESTS) tests/test_cli.sh tests/test_resume.sh tests/test_kill.sh tests/test_badinput.sh \
		tests/test_mpi.sh

# The whole test suite under the sanitizers; programs and tests are relinked in place
# (the next plain `make` relinks them again, see MODE).
sanitize:
	@$(MAKE) --no-print-directory SAN=1 test

# libFuzzer targets (clang) for the readers of untrusted input, tests/fuzz/fuzz.c; each
# runs FUZZ_SECONDS (default 30) from its seed corpus tests/fuzz/corpus/NAME/, new
# inputs going to build-fuzz/corpus/NAME/ and crashes to build-fuzz/.
FUZZ_SECONDS ?= 30
FUZZ_NAMES = tokenizer tokens safetensors dataset embed lines
FUZZ_CFLAGS = -O1 -g -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=fuzzer,address,undefined -Wall -Wextra
FUZZ_LIB = $(filter-out dist.c,$(LIB)) dist.c
fuzz:
	@mkdir -p build-fuzz
	@n=0; for t in $(FUZZ_NAMES); do n=$$((n + 1)); \
	    clang $(FUZZ_CFLAGS) -DFUZZ_TARGET=$$n -o build-fuzz/fuzz_$$t tests/fuzz/fuzz.c $(FUZZ_LIB) -lm || exit 1; \
	done
	@for t in $(FUZZ_NAMES); do mkdir -p build-fuzz/corpus/$$t; \
	    echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	    nice -n 10 build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -artifact_prefix=build-fuzz/$$t- \
	        build-fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>build-fuzz/$$t.log || \
	        { tail -n 30 build-fuzz/$$t.log; exit 1; }; \
	    grep -E 'DONE|^Done' build-fuzz/$$t.log || true; \
	done

bench: train bench/bench_matmul bench/bench_step
	@sh bench/run.sh

bench/bench_%: bench/bench_%.c $(OBJ) $(MODE)
	$(CC) $(CFLAGS) -o $@ $< $(OBJ) $(LDLIBS)

clean:
	rm -rf build build-mpi build-san build-fuzz train train-mpi $(TESTS) tests/weights_diff tests/st_check bench/bench_matmul bench/bench_tokenizer bench/bench_step bench/bench_embed
