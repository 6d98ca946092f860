/* SQLite backend: encrypted vault entries. */
#include <stdio.h>

#include "store/store_sqlite_internal.h"

static int sq_vault_put(store_t *st, const char *user, const char *name,
                        const unsigned char *nonce, size_t nonce_len,
                        const unsigned char *ciphertext, size_t ciphertext_len, int64_t now)
{
    return sq_exec(st, NULL,
                   "INSERT INTO vault (user, name, nonce, ciphertext, updated_at)"
                   " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user, name) DO UPDATE SET"
                   " nonce = excluded.nonce, ciphertext = excluded.ciphertext,"
                   " updated_at = excluded.updated_at",
                   "ssbbi", user, name, (const void *)nonce, nonce_len, (const void *)ciphertext,
                   ciphertext_len, now);
}

static int sq_vault_scan(store_t *st, const char *user, store_vault_fn fn, void *fn_user)
{
    sqlite3_stmt *stmt = sq_prepare(
        st, "SELECT name, nonce, ciphertext, updated_at FROM vault WHERE user = ? ORDER BY name",
        "s", user);
    int rc;

    if (stmt == NULL)
        return STORE_ERROR;
    while ((rc = sq_step(st, stmt)) == 1) {
        const unsigned char *nonce = sqlite3_column_blob(stmt, 1);
        size_t nonce_len = (size_t)sqlite3_column_bytes(stmt, 1);
        const unsigned char *ciphertext = sqlite3_column_blob(stmt, 2);
        size_t ciphertext_len = (size_t)sqlite3_column_bytes(stmt, 2);

        if (fn((const char *)sqlite3_column_text(stmt, 0), nonce, nonce_len, ciphertext,
               ciphertext_len, sqlite3_column_int64(stmt, 3), fn_user) != 0)
            break;
    }
    sqlite3_finalize(stmt);
    return rc < 0 ? STORE_ERROR : STORE_OK;
}

static int sq_vault_delete(store_t *st, const char *user, const char *name)
{
    int changes = 0;
    int rc = sq_exec(st, &changes, "DELETE FROM vault WHERE user = ? AND name = ?", "ss", user,
                     name);

    if (rc != STORE_OK)
        return rc;
    return changes > 0 ? STORE_OK : STORE_NOT_FOUND;
}

void store_sqlite_vault_ops(store_ops_t *ops)
{
    ops->vault_put = sq_vault_put;
    ops->vault_scan = sq_vault_scan;
    ops->vault_delete = sq_vault_delete;
}
