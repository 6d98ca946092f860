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

tests: $(TESTS) $(BUILD)/nimdeck

test: tests
	tests/run-unit.sh $(BUILD)

clean:
	rm -rf build build-san build-clang

.PHONY: all tests test clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
