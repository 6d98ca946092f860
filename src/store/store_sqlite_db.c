/* Statement binding, row reading and transactions for the SQLite backend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_internal.h"

int sq_fail(store_t *st, const char *what)
{
    snprintf(st->error, sizeof(st->error), "%s: %s", what, sqlite3_errmsg(sq_db(st)));
    return STORE_ERROR;
}

static int sq_bind(sqlite3_stmt *stmt, const char *types, va_list ap)
{
    int rc = SQLITE_OK;

    for (int i = 1; types[i - 1] != '\0' && rc == SQLITE_OK; i++) {
        const char *text;
        int64_t number;

        switch (types[i - 1]) {
        case 's':
            text = va_arg(ap, const char *);
            rc = text ? sqlite3_bind_text(stmt, i, text, -1, SQLITE_TRANSIENT)
                      : sqlite3_bind_null(stmt, i);
            break;
        case 'e':
            text = va_arg(ap, const char *);
            rc = (text && *text) ? sqlite3_bind_text(stmt, i, text, -1, SQLITE_TRANSIENT)
                                 : sqlite3_bind_null(stmt, i);
            break;
        case 'i':
            rc = sqlite3_bind_int64(stmt, i, va_arg(ap, int64_t));
            break;
        case 't':
            number = va_arg(ap, int64_t);
            rc = number ? sqlite3_bind_int64(stmt, i, number) : sqlite3_bind_null(stmt, i);
            break;
        case 'n':
            rc = sqlite3_bind_int(stmt, i, va_arg(ap, int));
            break;
        case 'N': {
            int present = va_arg(ap, int);
            int value = va_arg(ap, int);
            rc = present ? sqlite3_bind_int(stmt, i, value) : sqlite3_bind_null(stmt, i);
            break;
        }
        case 'd':
            rc = sqlite3_bind_double(stmt, i, va_arg(ap, double));
            break;
        case 'D': {
            double value = va_arg(ap, double);
            rc = value >= 0 ? sqlite3_bind_double(stmt, i, value) : sqlite3_bind_null(stmt, i);
            break;
        }
        case 'F': {
            double value = va_arg(ap, double);
            rc = isnan(value) ? sqlite3_bind_null(stmt, i) : sqlite3_bind_double(stmt, i, value);
            break;
        }
        case 'b': {
            const void *data = va_arg(ap, const void *);
            size_t len = va_arg(ap, size_t);
            rc = sqlite3_bind_blob64(stmt, i, data, len, SQLITE_TRANSIENT);
            break;
        }
        default:
            rc = SQLITE_MISUSE;
        }
    }
    return rc;
}

sqlite3_stmt *sq_vprepare(store_t *st, const char *sql, const char *types, va_list ap)
{
    sqlite3_stmt *stmt = NULL;

    if (sqlite3_prepare_v2(sq_db(st), sql, -1, &stmt, NULL) != SQLITE_OK) {
        sq_fail(st, "prepare");
        return NULL;
    }
    if (sq_bind(stmt, types, ap) != SQLITE_OK) {
        sq_fail(st, "bind");
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
}

sqlite3_stmt *sq_prepare(store_t *st, const char *sql, const char *types, ...)
{
    va_list ap;

    va_start(ap, types);
    sqlite3_stmt *stmt = sq_vprepare(st, sql, types, ap);
    va_end(ap);
    return stmt;
}

int sq_step(store_t *st, sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return sq_fail(st, "step");
}

int sq_exec(store_t *st, int *changes, const char *sql, const char *types, ...)
{
    va_list ap;

    va_start(ap, types);
    sqlite3_stmt *stmt = sq_vprepare(st, sql, types, ap);
    va_end(ap);
    if (stmt == NULL)
        return STORE_ERROR;

    int rc = sqlite3_step(stmt);
    int result = STORE_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        int extended = sqlite3_extended_errcode(sq_db(st));
        if (extended == SQLITE_CONSTRAINT_PRIMARYKEY || extended == SQLITE_CONSTRAINT_UNIQUE)
            result = STORE_EXISTS;
        else
            result = sq_fail(st, "exec");
    }
    if (changes != NULL)
        *changes = sqlite3_changes(sq_db(st));
    sqlite3_finalize(stmt);
    return result;
}

static json_t *sq_row_json(sqlite3_stmt *stmt)
{
    json_t *row = json_object();
    int columns = sqlite3_column_count(stmt);

    for (int i = 0; row != NULL && i < columns; i++) {
        json_t *value;

        switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
            value = json_integer(sqlite3_column_int64(stmt, i));
            break;
        case SQLITE_FLOAT:
            value = json_real(sqlite3_column_double(stmt, i));
            break;
        case SQLITE_TEXT:
            value = json_string((const char *)sqlite3_column_text(stmt, i));
            break;
        default:
            value = json_null();
        }
        if (value == NULL || json_object_set_new(row, sqlite3_column_name(stmt, i), value) != 0) {
            json_decref(row);
            row = NULL;
        }
    }
    return row;
}

int sq_rows(store_t *st, json_t **rows, const char *sql, const char *types, ...)
{
    va_list ap;
    int rc = 0;

    *rows = NULL;
    va_start(ap, types);
    sqlite3_stmt *stmt = sq_vprepare(st, sql, types, ap);
    va_end(ap);
    if (stmt == NULL)
        return STORE_ERROR;

    json_t *list = json_array();
    while (list != NULL && (rc = sq_step(st, stmt)) == 1) {
        json_t *row = sq_row_json(stmt);
        if (row == NULL || json_array_append_new(list, row) != 0) {
            snprintf(st->error, sizeof(st->error), "out of memory reading rows");
            rc = STORE_ERROR;
            break;
        }
    }
    sqlite3_finalize(stmt);
    if (list == NULL || rc != 0) {
        json_decref(list);
        return STORE_ERROR;
    }
    *rows = list;
    return STORE_OK;
}

int sq_int_query(store_t *st, int64_t *out, const char *sql, const char *types, ...)
{
    va_list ap;

    *out = 0;
    va_start(ap, types);
    sqlite3_stmt *stmt = sq_vprepare(st, sql, types, ap);
    va_end(ap);
    if (stmt == NULL)
        return STORE_ERROR;

    int rc = sq_step(st, stmt);
    if (rc == 1)
        *out = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return rc < 0 ? STORE_ERROR : STORE_OK;
}

int sq_begin(store_t *st)
{
    /* IMMEDIATE takes the write lock up front, so a busy database waits in
     * the busy handler here instead of failing halfway through. */
    if (sqlite3_exec(sq_db(st), "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(st, "begin");
    return STORE_OK;
}

int sq_commit(store_t *st)
{
    if (sqlite3_exec(sq_db(st), "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = sq_fail(st, "commit");
        sq_rollback(st);
        return rc;
    }
    return STORE_OK;
}

void sq_rollback(store_t *st)
{
    if (!sqlite3_get_autocommit(sq_db(st)))
        sqlite3_exec(sq_db(st), "ROLLBACK", NULL, NULL, NULL);
}

void sq_copy_text(sqlite3_stmt *stmt, int col, char *out, size_t size)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);

    snprintf(out, size, "%s", text ? (const char *)text : "");
}

char *sq_dup_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);

    return text ? strdup((const char *)text) : NULL;
}
