/* Token text, hashing and random identifiers. Tokens are "nd_" followed by
 * 43 base64url characters (32 random bytes); only their SHA-256 is stored. */
#ifndef NIMDECK_STORE_TOKEN_H
#define NIMDECK_STORE_TOKEN_H

#include <stddef.h>

#define TOKEN_PREFIX "nd_"
#define TOKEN_TEXT_LEN 46          /* "nd_" + 43 characters */
#define TOKEN_HASH_HEX_LEN 64

/* Write a new token into out (at least TOKEN_TEXT_LEN + 1 bytes).
 * Returns 0, or -1 when libsodium cannot initialise. */
int token_generate(char *out, size_t size);

/* Lowercase hex SHA-256 of text into out (at least 65 bytes). */
void token_hash_hex(const char *text, char *out, size_t size);

/* 1 when text has the shape of a token (prefix, length, alphabet). */
int token_well_formed(const char *text);

/* Write len random characters of alphabet into out (len + 1 bytes). */
void token_random_chars(char *out, size_t len, const char *alphabet);

/* Lowercase hex and base32 alphabets for identifiers. */
#define TOKEN_ALPHABET_HEX "0123456789abcdef"
#define TOKEN_ALPHABET_BASE32 "abcdefghijklmnopqrstuvwxyz234567"

#endif
