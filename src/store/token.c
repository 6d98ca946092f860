/* Token text, hashing and random identifiers. */
#include "store/token.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int token_generate(char *out, size_t size)
{
    unsigned char random[32];

    if (size < TOKEN_TEXT_LEN + 1 || sodium_init() < 0)
        return -1;

    randombytes_buf(random, sizeof(random));
    memcpy(out, TOKEN_PREFIX, 3);
    sodium_bin2base64(out + 3, size - 3, random, sizeof(random),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(random, sizeof(random));
    return 0;
}

void token_hash_hex(const char *text, char *out, size_t size)
{
    unsigned char digest[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(digest, (const unsigned char *)text, strlen(text));
    if (size < TOKEN_HASH_HEX_LEN + 1) {
        if (size > 0)
            out[0] = '\0';
        return;
    }
    sodium_bin2hex(out, size, digest, sizeof(digest));
}

int token_well_formed(const char *text)
{
    if (strncmp(text, TOKEN_PREFIX, 3) != 0 || strlen(text) != TOKEN_TEXT_LEN)
        return 0;
    for (const char *p = text + 3; *p != '\0'; p++) {
        char c = *p;
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        if (!ok)
            return 0;
    }
    return 1;
}

void token_random_chars(char *out, size_t len, const char *alphabet)
{
    uint32_t count = (uint32_t)strlen(alphabet);

    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[randombytes_uniform(count)];
    out[len] = '\0';
}
