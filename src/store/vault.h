/* Vault crypto: values are sealed with libsodium's crypto_secretbox under a
 * 32-byte key kept in a file of mode 0600, and opened only to build an
 * agent's lease. */
#ifndef NIMDECK_STORE_VAULT_H
#define NIMDECK_STORE_VAULT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define VAULT_KEY_BYTES 32

/* The largest value an entry may hold, in bytes. */
#define VAULT_VALUE_MAX (64 * 1024)

typedef struct {
    unsigned char bytes[VAULT_KEY_BYTES];
} vault_key_t;

/* Read the key at path, or create it (mode 0600, fresh random bytes) when
 * the file does not exist. An existing file is never overwritten: a file of
 * the wrong size is an error. Returns 0, or -1 with a message in err. */
int vault_key_load(const char *path, vault_key_t *key, char *err, size_t err_size);

/* Wipe the key from memory. */
void vault_key_wipe(vault_key_t *key);

/* 1 when name is 1-128 of [A-Za-z0-9._-] and not "." or "..". */
int vault_name_valid(const char *name);

/* Encrypt value and store it under (user, name), replacing an earlier one.
 * Returns a STORE_* code. */
int vault_set(store_t *st, const vault_key_t *key, const char *user, const char *name,
              const char *value, int64_t now);

/* Decrypt every entry of user into a new JSON object name -> value.
 * Returns NULL on a store failure or when an entry does not decrypt
 * (wrong key file); err names the entry. */
json_t *vault_read_all(store_t *st, const vault_key_t *key, const char *user, char *err,
                       size_t err_size);

/* The entries of user without values: a JSON array of {name, updated_at}. */
json_t *vault_list(store_t *st, const char *user);

#endif
