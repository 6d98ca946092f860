/* Helpers shared by the libFuzzer targets: a failure check that prints its
 * reason before aborting, and read sizes derived from the input itself, so
 * a parser sees the same bytes split at different places across reads.
 * fuzz_util.c is linked into every target. */
#ifndef NIMDECK_TESTS_FUZZ_FUZZ_UTIL_H
#define NIMDECK_TESTS_FUZZ_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* Abort with a message, so libFuzzer keeps the input as a crash artifact. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* FNV-1a over the whole input: a split pattern that changes whenever the
 * fuzzer changes any byte, while the seed files stay plain text. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t len)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 1099511628211ull;
    }
    return h == 0 ? 1 : h;
}

/* Read sizes for one pass over an input: mode 0 takes everything in one
 * read, mode 1 one byte at a time, mode 2 pseudo-random sizes from 1 to 64
 * (xorshift64 seeded with the input's hash). */
typedef struct {
    int mode;
    uint64_t state;
} fuzz_splitter_t;

static inline void fuzz_splitter_init(fuzz_splitter_t *s, int mode, uint64_t seed)
{
    s->mode = mode;
    s->state = seed == 0 ? 1 : seed;
}

/* Next pseudo-random number of the splitter's xorshift64 sequence. */
static inline uint64_t fuzz_next_random(fuzz_splitter_t *s)
{
    s->state ^= s->state << 13;
    s->state ^= s->state >> 7;
    s->state ^= s->state << 17;
    return s->state;
}

/* Size of the next read, at most remaining (and at least 1 when remaining
 * is not 0). */
static inline size_t fuzz_next_size(fuzz_splitter_t *s, size_t remaining)
{
    size_t n;

    if (s->mode == 0)
        return remaining;
    if (s->mode == 1)
        return remaining > 0 ? 1 : 0;

    n = 1 + (size_t)(fuzz_next_random(s) % 64);
    return n < remaining ? n : remaining;
}

/* A fresh heap copy of piece bytes, so AddressSanitizer catches a read one
 * byte past the piece a parser was given. The caller frees it. */
static inline char *fuzz_piece(const uint8_t *data, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);

    if (copy == NULL)
        abort();
    if (len > 0)
        memcpy(copy, data, len);
    return copy;
}

/* Bytes equal: same length and content (either may be NULL when empty). */
static inline int fuzz_bytes_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

/* Outcome of decoding a chunked body. */
typedef struct {
    long used;     /* raw bytes consumed, or -1 for malformed input */
    int done;      /* the last chunk and the trailers arrived */
    buf_t payload; /* decoded bytes; the caller frees them */
} fuzz_chunked_result_t;

/* Decode data[0..len) as a chunked body in one read, byte by byte and in
 * pseudo-random reads, abort unless all three agree, and leave the one-read
 * result in whole. */
void fuzz_chunked_body(const char *data, size_t len, uint64_t seed, fuzz_chunked_result_t *whole);

#endif
