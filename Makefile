# Build the nimdeck binary, the unit tests and (with SAN=1) a sanitizer build.
#
#   make            build/nimdeck
#   make test       unit tests, each in its own process with a timeout
#   make SAN=1 test the same under AddressSanitizer and UBSan (build-san/)

CC      ?= cc
PKGS    := libuv libcurl jansson sqlite3 libsodium
PKG_CF  := $(shell pkg-config --cflags $(PKGS))
PKG_LD  := $(shell pkg-config --libs $(PKGS))

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc $(PKG_CF)
LDLIBS  += $(PKG_LD) -lpthread -lm

BUILD   := build
ifeq ($(SAN),1)
BUILD   := build-san
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

SRCS    := $(shell find src -name '*.c' ! -path src/main.c | sort)
OBJS    := $(SRCS:%.c=$(BUILD)/%.o)
TESTS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

# The web UI's files go into the binary through a generated C file. The
# folders are inputs too, so that adding or removing a file regenerates it.
WEB_INPUTS := $(shell find web -path web/node_modules -prune -o -print 2>/dev/null) \
              $(wildcard web/node_modules/uplot/dist/uPlot.esm.js web/node_modules/uplot/dist/uPlot.min.css)
OBJS    += $(BUILD)/gen/web_assets.o

all: $(BUILD)/nimdeck

$(BUILD)/libnimdeck.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/nimdeck: $(BUILD)/src/main.o $(BUILD)/libnimdeck.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libnimdeck.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libnimdeck.a $(LDLIBS) -lcmocka

$(BUILD)/gen/web_assets.c: scripts/web-assets.sh $(WEB_INPUTS)
	@mkdir -p $(dir $@)
	scripts/web-assets.sh web $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# A stand-in for the NVIDIA driver's NVML library, for the GPU metrics
# tests; built without sanitizers so any nimdeck build can load it.
FAKE_NVML := $(BUILD)/fake-nvml/libnvidia-ml.so.1

$(FAKE_NVML): tests/nvml/fake_nvml.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O2 -g -Wall -Wextra -Werror -fPIC -shared -o $@ $<

tests: $(TESTS) $(BUILD)/nimdeck $(FAKE_NVML)

test: tests
	tests/run-unit.sh $(BUILD)

# The gateway benchmark's backend and client (bench/gateway.sh runs them).
BENCH := $(BUILD)/bench/bench-backend $(BUILD)/bench/bench-client

$(BUILD)/bench/bench-%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror -o $@ $<

bench: $(BENCH) $(BUILD)/nimdeck

# libFuzzer targets: `make fuzz` builds them into build-fuzz/.
include tests/fuzz/fuzz.mk

clean:
	rm -rf build build-san build-clang build-fuzz

.PHONY: all tests test clean bench
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
