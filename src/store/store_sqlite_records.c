/* SQLite backend: inserting request records, the store's busiest write (one
 * row per proxied request, posted by gateways in batches of thousands). */
#include <stdio.h>
#include <string.h>

#include "store/store_sqlite_internal.h"
#include "util/buf.h"

/* Rows per INSERT statement: one statement for many rows saves the
 * per-statement work that cost more than the row itself. */
#define SQ_RECORDS_CHUNK 32
#define SQ_RECORD_PARAMS 9
/* Instance ids whose existence one batch remembers. */
#define SQ_KNOWN_MAX 16

typedef struct {
    const char *id;
    int exists;
} sq_known_t;

/* The instances one batch has looked up, so a batch of thousands of
 * records for a few instances costs a few lookups. */
typedef struct {
    sqlite3_stmt *lookup;
    sq_known_t known[SQ_KNOWN_MAX];
    size_t count;
    size_t next;   /* the slot to overwrite when all are used */
} sq_instances_t;

/* 1 when the instance exists, 0 when not, or STORE_ERROR. */
static int sq_instance_exists(store_t *st, sq_instances_t *cache, const char *id)
{
    for (size_t i = 0; i < cache->count; i++) {
        if (cache->known[i].id == id || strcmp(cache->known[i].id, id) == 0)
            return cache->known[i].exists;
    }

    sqlite3_reset(cache->lookup);
    if (sqlite3_bind_text(cache->lookup, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
        return sq_fail(st, "looking up an instance of a request record");
    int rc = sq_step(st, cache->lookup);
    if (rc < 0)
        return STORE_ERROR;

    sq_known_t *slot = &cache->known[cache->count < SQ_KNOWN_MAX ? cache->count++
                                                                 : cache->next++ % SQ_KNOWN_MAX];
    *slot = (sq_known_t){id, rc == 1};
    return rc == 1;
}

/* Prepare sql once and keep it in *slot for later batches. */
static sqlite3_stmt *sq_kept(store_t *st, sqlite3_stmt **slot, const char *sql)
{
    if (*slot == NULL &&
        sqlite3_prepare_v3(sq_db(st), sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) !=
            SQLITE_OK) {
        sq_fail(st, "preparing the request records insert");
        sqlite3_finalize(*slot);
        *slot = NULL;
    }
    return *slot;
}

/* The kept INSERT for rows records: SQ_RECORDS_CHUNK or 1. */
static sqlite3_stmt *sq_records_statement(store_t *st, size_t rows)
{
    store_sqlite_t *sq = (store_sqlite_t *)st;
    sqlite3_stmt **slot = rows == 1 ? &sq->records_one : &sq->records_chunk;
    buf_t sql = BUF_INIT;

    if (*slot != NULL)
        return *slot;

    buf_append_str(&sql, "INSERT INTO request_records (instance_id, token_id, time, status,"
                         " latency_ms, ttfb_ms, prompt_tokens, completion_tokens, cancelled)"
                         " VALUES ");
    for (size_t i = 0; i < rows; i++)
        buf_append_str(&sql, i > 0 ? ",(?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?)");
    if (sql.data == NULL) {
        snprintf(st->error, sizeof(st->error), "out of memory preparing request records");
        return NULL;
    }

    sqlite3_stmt *stmt = sq_kept(st, slot, sql.data);
    buf_free(&sql);
    return stmt;
}

/* Bind record r to the parameters after base. The strings stay valid until
 * the statement has run, so they are not copied. */
static int sq_bind_record(sqlite3_stmt *stmt, int base, const store_record_t *r)
{
    int rc = sqlite3_bind_text(stmt, base + 1, r->instance_id, -1, SQLITE_STATIC);

    rc |= r->token_id ? sqlite3_bind_text(stmt, base + 2, r->token_id, -1, SQLITE_STATIC)
                      : sqlite3_bind_null(stmt, base + 2);
    rc |= sqlite3_bind_int64(stmt, base + 3, r->time);
    rc |= sqlite3_bind_int(stmt, base + 4, r->status);
    rc |= sqlite3_bind_double(stmt, base + 5, r->latency_ms);
    rc |= r->ttfb_ms >= 0 ? sqlite3_bind_double(stmt, base + 6, r->ttfb_ms)
                          : sqlite3_bind_null(stmt, base + 6);
    rc |= sqlite3_bind_int64(stmt, base + 7, r->prompt_tokens);
    rc |= sqlite3_bind_int64(stmt, base + 8, r->completion_tokens);
    rc |= sqlite3_bind_int(stmt, base + 9, r->cancelled ? 1 : 0);
    return rc;
}

/* Run stmt (prepared for rows records) on the records of chunk. */
static int sq_records_run(store_t *st, sqlite3_stmt *stmt, const store_record_t **chunk,
                          size_t rows)
{
    int rc = STORE_OK;

    for (size_t i = 0; i < rows && rc == STORE_OK; i++) {
        if (sq_bind_record(stmt, (int)i * SQ_RECORD_PARAMS, chunk[i]) != SQLITE_OK)
            rc = sq_fail(st, "binding a request record");
    }
    if (rc == STORE_OK && sq_step(st, stmt) < 0)
        rc = STORE_ERROR;

    /* The kept statement must not point at the caller's strings. */
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc;
}

/* Insert the records whose instance exists, in chunks, inside the caller's
 * transaction. Records of deleted instances are dropped. */
static int sq_records_insert_all(store_t *st, sq_instances_t *cache,
                                 const store_record_t *records, size_t count)
{
    const store_record_t *chunk[SQ_RECORDS_CHUNK];
    size_t rows = 0;
    int rc = STORE_OK;

    for (size_t i = 0; i < count && rc == STORE_OK; i++) {
        int exists = sq_instance_exists(st, cache, records[i].instance_id);
        if (exists < 0)
            return STORE_ERROR;
        if (!exists)
            continue;

        chunk[rows++] = &records[i];
        if (rows < SQ_RECORDS_CHUNK)
            continue;
        sqlite3_stmt *full = sq_records_statement(st, SQ_RECORDS_CHUNK);
        rc = full == NULL ? STORE_ERROR : sq_records_run(st, full, chunk, rows);
        rows = 0;
    }

    /* The rest of the last chunk goes in one row at a time. */
    for (size_t i = 0; i < rows && rc == STORE_OK; i++) {
        sqlite3_stmt *one = sq_records_statement(st, 1);
        rc = one == NULL ? STORE_ERROR : sq_records_run(st, one, &chunk[i], 1);
    }
    return rc;
}

int sq_records_insert(store_t *st, const store_record_t *records, size_t count)
{
    store_sqlite_t *sq = (store_sqlite_t *)st;
    sq_instances_t cache = {0};

    if (count == 0)
        return STORE_OK;
    if (sq_begin(st) != STORE_OK)
        return STORE_ERROR;

    cache.lookup = sq_kept(st, &sq->instance_lookup, "SELECT 1 FROM instances WHERE id = ?");
    int rc = cache.lookup == NULL ? STORE_ERROR
                                  : sq_records_insert_all(st, &cache, records, count);
    if (cache.lookup != NULL) {
        sqlite3_reset(cache.lookup);
        sqlite3_clear_bindings(cache.lookup);
    }

    if (rc != STORE_OK) {
        sq_rollback(st);
        return rc;
    }
    return sq_commit(st);
}

void sq_records_close(store_t *st)
{
    store_sqlite_t *sq = (store_sqlite_t *)st;

    sqlite3_finalize(sq->records_chunk);
    sqlite3_finalize(sq->records_one);
    sqlite3_finalize(sq->instance_lookup);
    sq->records_chunk = sq->records_one = sq->instance_lookup = NULL;
}
