/* Deterministic pseudo-text for the simulator: prompt hashing, word tokens
 * and the rough prompt token count. One word is one token. */
#ifndef NIMDECK_SIM_SIM_TEXT_H
#define NIMDECK_SIM_SIM_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* FNV-1a offset basis: the starting value for sim_text_hash. */
#define SIM_HASH_INIT 0xcbf29ce484222325ULL

/* Fold len bytes of data into hash (FNV-1a, 64 bit) and return the result.
 * Chain calls to hash several pieces. */
uint64_t sim_text_hash(uint64_t hash, const void *data, size_t len);

/* Mix x into a well-spread 64-bit value (splitmix64 finaliser). */
uint64_t sim_text_mix(uint64_t x);

/* Number of tokens a reply to a prompt with this seed has before it stops on
 * its own: 24 to 40, fixed per seed. */
int sim_text_natural_length(uint64_t seed);

/* Append token number index (0-based) of the reply for seed to out: the first
 * word bare, later words with a leading space, and a final "." when last is
 * set. Returns 0, or -1 when memory runs out. */
int sim_text_append_token(uint64_t seed, int index, int last, buf_t *out);

/* Number of whitespace-separated words in text[0..len). */
int sim_text_count_words(const char *text, size_t len);

#endif
