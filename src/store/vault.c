/* Vault crypto: key file, sealing and opening of values. */
#include "store/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Values beyond this are rejected before encryption: the vault stores keys
 * and passwords, not files. */

static int vault_key_create(const char *path, vault_key_t *key, char *err, size_t err_size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0) {
        snprintf(err, err_size, "cannot create the vault key %s: %s", path, strerror(errno));
        return -1;
    }
    randombytes_buf(key->bytes, sizeof(key->bytes));
    ssize_t written = write(fd, key->bytes, sizeof(key->bytes));
    int synced = fsync(fd);
    close(fd);
    if (written != (ssize_t)sizeof(key->bytes) || synced != 0) {
        snprintf(err, err_size, "cannot write the vault key %s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int vault_key_load(const char *path, vault_key_t *key, char *err, size_t err_size)
{
    if (sodium_init() < 0) {
        snprintf(err, err_size, "cannot initialise libsodium");
        return -1;
    }

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return vault_key_create(path, key, err, err_size);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open the vault key %s: %s", path, strerror(errno));
        return -1;
    }

    unsigned char extra;
    ssize_t got = read(fd, key->bytes, sizeof(key->bytes));
    ssize_t more = read(fd, &extra, 1);
    close(fd);
    if (got != (ssize_t)sizeof(key->bytes) || more != 0) {
        snprintf(err, err_size,
                 "the vault key %s must hold exactly %d bytes; restore it from a backup "
                 "(a new key cannot decrypt the stored values)",
                 path, VAULT_KEY_BYTES);
        sodium_memzero(key->bytes, sizeof(key->bytes));
        return -1;
    }
    return 0;
}

void vault_key_wipe(vault_key_t *key)
{
    sodium_memzero(key->bytes, sizeof(key->bytes));
}

int vault_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len < 1 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok)
            return 0;
    }
    /* "." and ".." name folders wherever names become paths, so they are never names. */
    return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int vault_set(store_t *st, const vault_key_t *key, const char *user, const char *name,
              const char *value, int64_t now)
{
    unsigned char nonce[crypto_secretbox_NONCEBYTES];
    size_t len = strlen(value);

    if (len > VAULT_VALUE_MAX) {
        snprintf(st->error, sizeof(st->error), "vault value %s is over %d bytes", name,
                 VAULT_VALUE_MAX);
        return STORE_ERROR;
    }

    unsigned char *sealed = malloc(len + crypto_secretbox_MACBYTES);
    if (sealed == NULL) {
        snprintf(st->error, sizeof(st->error), "out of memory sealing vault value %s", name);
        return STORE_ERROR;
    }
    randombytes_buf(nonce, sizeof(nonce));
    crypto_secretbox_easy(sealed, (const unsigned char *)value, len, nonce, key->bytes);

    int rc = st->ops->vault_put(st, user, name, nonce, sizeof(nonce), sealed,
                                len + crypto_secretbox_MACBYTES, now);
    free(sealed);
    return rc;
}

typedef struct {
    const vault_key_t *key;
    json_t *values;
    char *err;
    size_t err_size;
    int failed;
} vault_reader_t;

static int vault_on_entry(const char *name, const unsigned char *nonce, size_t nonce_len,
                          const unsigned char *ciphertext, size_t ciphertext_len,
                          int64_t updated_at, void *user)
{
    vault_reader_t *reader = user;
    (void)updated_at;

    if (nonce_len != crypto_secretbox_NONCEBYTES || ciphertext_len < crypto_secretbox_MACBYTES)
        goto bad;

    size_t len = ciphertext_len - crypto_secretbox_MACBYTES;
    unsigned char *plain = malloc(len + 1);
    if (plain == NULL)
        goto bad;
    if (crypto_secretbox_open_easy(plain, ciphertext, ciphertext_len, nonce,
                                   reader->key->bytes) != 0) {
        free(plain);
        goto bad;
    }
    plain[len] = '\0';
    json_object_set_new(reader->values, name, json_stringn((const char *)plain, len));
    sodium_memzero(plain, len);
    free(plain);
    return 0;

bad:
    snprintf(reader->err, reader->err_size,
             "vault entry %s does not decrypt with the current vault key", name);
    reader->failed = 1;
    return 1;
}

json_t *vault_read_all(store_t *st, const vault_key_t *key, const char *user, char *err,
                       size_t err_size)
{
    vault_reader_t reader = {.key = key, .values = json_object(), .err = err,
                             .err_size = err_size};

    if (reader.values == NULL) {
        snprintf(err, err_size, "out of memory reading the vault");
        return NULL;
    }
    if (st->ops->vault_scan(st, user, vault_on_entry, &reader) != STORE_OK) {
        snprintf(err, err_size, "%s", store_error(st));
        reader.failed = 1;
    }
    if (reader.failed) {
        json_decref(reader.values);
        return NULL;
    }
    return reader.values;
}

static int vault_on_listing(const char *name, const unsigned char *nonce, size_t nonce_len,
                            const unsigned char *ciphertext, size_t ciphertext_len,
                            int64_t updated_at, void *user)
{
    (void)nonce, (void)nonce_len, (void)ciphertext, (void)ciphertext_len;
    json_array_append_new(user, json_pack("{s:s, s:I}", "name", name, "updated_at",
                                          (json_int_t)updated_at));
    return 0;
}

json_t *vault_list(store_t *st, const char *user)
{
    json_t *entries = json_array();

    if (entries == NULL)
        return NULL;
    if (st->ops->vault_scan(st, user, vault_on_listing, entries) != STORE_OK) {
        json_decref(entries);
        return NULL;
    }
    return entries;
}
