/* SQLite backend: web login sessions. */
#include <string.h>

#include "store/store_sqlite_internal.h"

static int sq_session_insert(store_t *st, const store_session_t *session)
{
    return sq_exec(st, NULL,
                   "INSERT INTO sessions (hash, user, token_id, created_at, expires_at)"
                   " VALUES (?, ?, ?, ?, ?)",
                   "sseii", session->hash, session->user, session->token_id,
                   session->created_at, session->expires_at);
}

static int sq_session_find(store_t *st, const char *hash, store_session_t *out)
{
    sqlite3_stmt *stmt = sq_prepare(st,
                                    "SELECT hash, user, token_id, created_at, expires_at"
                                    " FROM sessions WHERE hash = ?",
                                    "s", hash);
    if (stmt == NULL)
        return STORE_ERROR;

    int rc = sq_step(st, stmt);
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        sq_copy_text(stmt, 0, out->hash, sizeof(out->hash));
        sq_copy_text(stmt, 1, out->user, sizeof(out->user));
        sq_copy_text(stmt, 2, out->token_id, sizeof(out->token_id));
        out->created_at = sqlite3_column_int64(stmt, 3);
        out->expires_at = sqlite3_column_int64(stmt, 4);
    }
    sqlite3_finalize(stmt);
    return sq_lookup_result(rc);
}

static int sq_session_delete(store_t *st, const char *hash)
{
    int changes = 0;
    int rc = sq_exec(st, &changes, "DELETE FROM sessions WHERE hash = ?", "s", hash);

    if (rc != STORE_OK)
        return rc;
    return changes > 0 ? STORE_OK : STORE_NOT_FOUND;
}

static int sq_session_prune(store_t *st, int64_t now)
{
    return sq_exec(st, NULL,
                   "DELETE FROM sessions WHERE expires_at <= ?"
                   " OR user IN (SELECT name FROM users WHERE deleted_at IS NOT NULL)"
                   " OR token_id IN (SELECT id FROM tokens WHERE revoked != 0 OR expires_at <= ?)",
                   "ii", now, now);
}

void store_sqlite_sessions_ops(store_ops_t *ops)
{
    ops->session_insert = sq_session_insert;
    ops->session_find = sq_session_find;
    ops->session_delete = sq_session_delete;
    ops->session_prune = sq_session_prune;
}
