/* SQLite backend: users, projects, grants and tokens. */
#include <stdio.h>
#include <string.h>

#include "store/store_sqlite_internal.h"

/* The statuses of a live instance, as an SQL list. */
#define SQ_LIVE_STATUSES "('queued', 'loading', 'active', 'idle', 'stopping')"

static int sq_user_create(store_t *st, const store_user_t *user)
{
    int64_t deleted = 0;
    int rc = sq_exec(st, NULL,
                     "INSERT INTO users (name, password_hash, admin, created_at)"
                     " VALUES (?, ?, ?, ?)",
                     "ssni", user->name, user->has_password ? user->password_hash : NULL,
                     user->admin ? 1 : 0, user->created_at);

    if (rc != STORE_EXISTS)
        return rc;
    if (sq_int_query(st, &deleted,
                     "SELECT count(*) FROM users WHERE name = ? AND deleted_at IS NOT NULL", "s",
                     user->name) != 0)
        return STORE_ERROR;
    return deleted > 0 ? STORE_CONFLICT : STORE_EXISTS;
}

static int sq_user_get(store_t *st, const char *name, store_user_t *out)
{
    sqlite3_stmt *stmt =
        sq_prepare(st,
                   "SELECT name, password_hash, admin, created_at FROM users"
                   " WHERE name = ? AND deleted_at IS NULL",
                   "s", name);
    if (stmt == NULL)
        return STORE_ERROR;

    int rc = sq_step(st, stmt);
    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        sq_copy_text(stmt, 0, out->name, sizeof(out->name));
        out->has_password = sqlite3_column_type(stmt, 1) != SQLITE_NULL;
        sq_copy_text(stmt, 1, out->password_hash, sizeof(out->password_hash));
        out->admin = sqlite3_column_int(stmt, 2);
        out->created_at = sqlite3_column_int64(stmt, 3);
    }
    sqlite3_finalize(stmt);
    return sq_lookup_result(rc);
}

static int sq_user_list(store_t *st, json_t **rows)
{
    return sq_rows(st, rows,
                   "SELECT name, admin, created_at FROM users WHERE deleted_at IS NULL"
                   " ORDER BY name",
                   "");
}

/* The steps of sq_user_delete inside its transaction. */
static int sq_user_delete_rows(store_t *st, const char *name, int64_t now, char *instance_out,
                               size_t instance_size)
{
    int64_t exists = 0;

    if (sq_int_query(st, &exists,
                     "SELECT count(*) FROM users WHERE name = ? AND deleted_at IS NULL", "s",
                     name) != 0)
        return STORE_ERROR;
    if (exists == 0)
        return STORE_NOT_FOUND;

    sqlite3_stmt *stmt = sq_prepare(st,
                                    "SELECT id FROM instances WHERE owner = ? AND status IN "
                                    SQ_LIVE_STATUSES " ORDER BY created_at LIMIT 1",
                                    "s", name);
    if (stmt == NULL)
        return STORE_ERROR;
    int rc = sq_step(st, stmt);
    if (rc == 1 && instance_out != NULL)
        sq_copy_text(stmt, 0, instance_out, instance_size);
    sqlite3_finalize(stmt);
    if (rc != 0)
        return rc == 1 ? STORE_CONFLICT : STORE_ERROR;

    if (sq_exec(st, NULL, "UPDATE tokens SET revoked = 1 WHERE user = ?", "s", name) != 0 ||
        sq_exec(st, NULL, "DELETE FROM grants WHERE user = ?", "s", name) != 0 ||
        sq_exec(st, NULL, "DELETE FROM vault WHERE user = ?", "s", name) != 0 ||
        sq_exec(st, NULL,
                "UPDATE users SET deleted_at = ?, password_hash = NULL, admin = 0 WHERE name = ?",
                "is", now, name) != 0)
        return STORE_ERROR;
    return STORE_OK;
}

static int sq_user_delete(store_t *st, const char *name, int64_t now, char *instance_out,
                          size_t instance_size)
{
    if (instance_out != NULL && instance_size > 0)
        instance_out[0] = '\0';
    if (sq_begin(st) != 0)
        return STORE_ERROR;

    int rc = sq_user_delete_rows(st, name, now, instance_out, instance_size);
    if (rc != STORE_OK) {
        sq_rollback(st);
        return rc;
    }
    return sq_commit(st);
}

static int sq_project_ensure(store_t *st, const char *name, int64_t now)
{
    return sq_exec(st, NULL, "INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, ?)",
                   "si", name, now);
}

static int sq_project_list(store_t *st, json_t **rows)
{
    return sq_rows(st, rows, "SELECT name, created_at FROM projects ORDER BY name", "");
}

static int sq_grant_set(store_t *st, const char *user, const char *project, store_perm_t perm,
                        int64_t now)
{
    if (sq_begin(st) != 0)
        return STORE_ERROR;

    int rc = sq_project_ensure(st, project, now);
    if (rc == STORE_OK)
        rc = sq_exec(st, NULL,
                     "INSERT INTO grants (user, project, permission) VALUES (?, ?, ?)"
                     " ON CONFLICT (user, project) DO UPDATE SET permission = excluded.permission",
                     "sss", user, project, store_perm_name(perm));
    if (rc != STORE_OK) {
        sq_rollback(st);
        return rc;
    }
    return sq_commit(st);
}

static int sq_grant_get(store_t *st, const char *user, const char *project, store_perm_t *out)
{
    sqlite3_stmt *stmt = sq_prepare(
        st, "SELECT permission FROM grants WHERE user = ? AND project = ?", "ss", user, project);
    if (stmt == NULL)
        return STORE_ERROR;

    *out = STORE_PERM_NONE;
    int rc = sq_step(st, stmt);
    if (rc == 1)
        *out = store_perm_parse((const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return rc < 0 ? STORE_ERROR : STORE_OK;
}

static int sq_grant_list(store_t *st, json_t **rows)
{
    return sq_rows(st, rows,
                   "SELECT user, project, permission FROM grants ORDER BY user, project", "");
}

static int sq_grant_delete(store_t *st, const char *user, const char *project)
{
    int changes = 0;
    int rc = sq_exec(st, &changes, "DELETE FROM grants WHERE user = ? AND project = ?", "ss", user,
                     project);

    if (rc != STORE_OK)
        return rc;
    return changes > 0 ? STORE_OK : STORE_NOT_FOUND;
}

static int sq_token_insert(store_t *st, const store_token_t *token)
{
    return sq_exec(st, NULL,
                   "INSERT INTO tokens (id, hash, user, scope, instance_id, created_at,"
                   " expires_at, revoked) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   "sssseiin", token->id, token->hash, token->user, token->scope,
                   token->instance_id, token->created_at, token->expires_at,
                   token->revoked ? 1 : 0);
}

#define SQ_TOKEN_COLUMNS \
    "id, hash, user, scope, instance_id, created_at, expires_at, revoked"

static int sq_token_read(store_t *st, sqlite3_stmt *stmt, store_token_t *out)
{
    int rc = sq_step(st, stmt);

    if (rc == 1) {
        memset(out, 0, sizeof(*out));
        sq_copy_text(stmt, 0, out->id, sizeof(out->id));
        sq_copy_text(stmt, 1, out->hash, sizeof(out->hash));
        sq_copy_text(stmt, 2, out->user, sizeof(out->user));
        sq_copy_text(stmt, 3, out->scope, sizeof(out->scope));
        sq_copy_text(stmt, 4, out->instance_id, sizeof(out->instance_id));
        out->created_at = sqlite3_column_int64(stmt, 5);
        out->expires_at = sqlite3_column_int64(stmt, 6);
        out->revoked = sqlite3_column_int(stmt, 7);
    }
    sqlite3_finalize(stmt);
    return sq_lookup_result(rc);
}

static int sq_token_find_hash(store_t *st, const char *hash, store_token_t *out)
{
    sqlite3_stmt *stmt =
        sq_prepare(st, "SELECT " SQ_TOKEN_COLUMNS " FROM tokens WHERE hash = ?", "s", hash);
    return stmt ? sq_token_read(st, stmt, out) : STORE_ERROR;
}

static int sq_token_get(store_t *st, const char *id, store_token_t *out)
{
    sqlite3_stmt *stmt =
        sq_prepare(st, "SELECT " SQ_TOKEN_COLUMNS " FROM tokens WHERE id = ?", "s", id);
    return stmt ? sq_token_read(st, stmt, out) : STORE_ERROR;
}

static int sq_token_list(store_t *st, const char *user, const char *scope, int include_revoked,
                         json_t **rows)
{
    return sq_rows(st, rows,
                   "SELECT " SQ_TOKEN_COLUMNS " FROM tokens"
                   " WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR scope = ?2)"
                   " AND (?3 OR revoked = 0) ORDER BY created_at, id",
                   "ssn", user, scope, include_revoked ? 1 : 0);
}

static int sq_token_revoke(store_t *st, const char *id)
{
    int changes = 0;
    int rc = sq_exec(st, &changes, "UPDATE tokens SET revoked = 1 WHERE id = ?", "s", id);

    if (rc != STORE_OK)
        return rc;
    return changes > 0 ? STORE_OK : STORE_NOT_FOUND;
}

void store_sqlite_users_ops(store_ops_t *ops)
{
    ops->user_create = sq_user_create;
    ops->user_get = sq_user_get;
    ops->user_list = sq_user_list;
    ops->user_delete = sq_user_delete;
    ops->project_ensure = sq_project_ensure;
    ops->project_list = sq_project_list;
    ops->grant_set = sq_grant_set;
    ops->grant_get = sq_grant_get;
    ops->grant_list = sq_grant_list;
    ops->grant_delete = sq_grant_delete;
    ops->token_insert = sq_token_insert;
    ops->token_find_hash = sq_token_find_hash;
    ops->token_get = sq_token_get;
    ops->token_list = sq_token_list;
    ops->token_revoke = sq_token_revoke;
}
