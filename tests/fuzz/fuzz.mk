# libFuzzer targets, included by the top-level Makefile. `make fuzz` builds
# every tests/fuzz/fuzz_*.c target with clang, libFuzzer, ASan and UBSan
# into build-fuzz/. See docs/fuzzing.md.

FUZZ_BUILD   := build-fuzz
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_MAINS   := $(filter-out tests/fuzz/fuzz_util.c,$(FUZZ_SRCS))
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_MAINS))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# Only the modules the targets reach are compiled, which keeps the CI step
# short; the linker takes from the archive just the objects it needs.
FUZZ_LIB_SRCS := $(wildcard src/http/*.c src/config/*.c src/util/*.c src/gateway/*.c)
FUZZ_LIB     := $(FUZZ_BUILD)/libfuzzed.a

# The library is instrumented for coverage without libFuzzer's main();
# only the targets link it.
ifeq ($(FUZZ),1)
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)
endif

fuzz:
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) FUZZ=1 fuzz-targets

fuzz-targets: $(FUZZ_TARGETS)

$(FUZZ_LIB): $(FUZZ_LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.c tests/fuzz/fuzz_util.h $(FUZZ_LIB)
	$(CC) $(CFLAGS) -Itests/fuzz -fsanitize=fuzzer $(FUZZ_SAN) -o $@ \
	    $< tests/fuzz/fuzz_util.c $(FUZZ_LIB) $(LDLIBS)

.PHONY: fuzz fuzz-targets
