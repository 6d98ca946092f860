/* Shared helpers of the SQLite backend: statement binding, row reading and
 * transactions. Only the store_sqlite*.c files include this. */
#ifndef NIMDECK_STORE_STORE_SQLITE_INTERNAL_H
#define NIMDECK_STORE_STORE_SQLITE_INTERNAL_H

#include <sqlite3.h>
#include <stdarg.h>

#include "store/store.h"

typedef struct {
    store_t base;
    sqlite3 *db;
    /* Kept prepared between batches of request records, because preparing
     * them cost more than inserting a few hundred rows. NULL until first
     * used; finalized by sq_records_close. */
    sqlite3_stmt *records_chunk;     /* INSERT of SQ_RECORDS_CHUNK rows */
    sqlite3_stmt *records_one;       /* INSERT of one row */
    sqlite3_stmt *instance_lookup;   /* SELECT 1 FROM instances WHERE id = ? */
} store_sqlite_t;

static inline sqlite3 *sq_db(store_t *st)
{
    return ((store_sqlite_t *)st)->db;
}

/* Parameter types for sq_prepare and friends, one letter per parameter:
 *   s  const char *      text; NULL binds null
 *   e  const char *      text; NULL or "" binds null
 *   i  int64_t           integer
 *   t  int64_t           integer; 0 binds null (unset times)
 *   n  int               integer
 *   N  int, int          integer when the first (present) is non-zero, else null
 *   d  double            real
 *   D  double            real; a negative value binds null
 *   F  double            real; NAN binds null (an absent sample value)
 *   b  const void *, size_t   blob
 */
sqlite3_stmt *sq_prepare(store_t *st, const char *sql, const char *types, ...);
sqlite3_stmt *sq_vprepare(store_t *st, const char *sql, const char *types, va_list ap);

/* Step once: 1 for a row, 0 when done, STORE_ERROR with the message set. */
int sq_step(store_t *st, sqlite3_stmt *stmt);

/* Map the result of sq_step on a one-row lookup to a store result. */
static inline int sq_lookup_result(int step_rc)
{
    if (step_rc < 0)
        return STORE_ERROR;
    return step_rc == 1 ? STORE_OK : STORE_NOT_FOUND;
}

/* Run a statement without result rows. Returns STORE_OK, STORE_EXISTS on a
 * primary-key or unique violation, or STORE_ERROR. *changes (when non-NULL)
 * receives the number of rows changed. */
int sq_exec(store_t *st, int *changes, const char *sql, const char *types, ...);

/* Run a query and collect every row as a JSON object keyed by column name. */
int sq_rows(store_t *st, json_t **rows, const char *sql, const char *types, ...);

/* Run a query returning one integer; *out is 0 when there is no row. */
int sq_int_query(store_t *st, int64_t *out, const char *sql, const char *types, ...);

int sq_begin(store_t *st);
int sq_commit(store_t *st);
void sq_rollback(store_t *st);

/* Record the database's message for a failed operation. */
int sq_fail(store_t *st, const char *what);

void sq_copy_text(sqlite3_stmt *stmt, int col, char *out, size_t size);
char *sq_dup_text(sqlite3_stmt *stmt, int col);   /* NULL for null */

/* Insert request records (store_ops_t.records_insert). */
int sq_records_insert(store_t *st, const store_record_t *records, size_t count);
/* Finalize the statements that sq_records_insert keeps; before closing. */
void sq_records_close(store_t *st);

/* The ops of each concept, filled into the vtable by store_sqlite.c. */
void store_sqlite_users_ops(store_ops_t *ops);
void store_sqlite_agents_ops(store_ops_t *ops);
void store_sqlite_instances_ops(store_ops_t *ops);
void store_sqlite_logs_ops(store_ops_t *ops);
void store_sqlite_vault_ops(store_ops_t *ops);
void store_sqlite_sessions_ops(store_ops_t *ops);
void store_sqlite_usage_ops(store_ops_t *ops);

/* store_sqlite_usage.c: retention and downsampling of GPU and usage
 * samples, run by prune and inside samples_downsample's transaction. */
int sq_usage_prune(store_t *st, int64_t before);
int sq_usage_downsample_rows(store_t *st, int64_t before, int64_t bucket_ms);

/* store_sqlite_samples.c: what the sample tables share. */

/* A sample column as a double, NAN when it is null (a value the agent did
 * not report). */
double sq_sample_value(sqlite3_stmt *stmt, int col);

/* A sample table: its name, the columns a bucket is grouped by besides
 * time, and the value columns that are averaged. All are constants of the
 * backend, never user input, since they are pasted into SQL. */
typedef struct {
    const char *table;
    const char *keys;    /* "agent" or "agent, gpu" */
    const char *values;  /* "a, b, c" */
} sq_sample_table_t;

/* Merge the rows of t before `before` into one averaged row per key and
 * bucket of bucket_ms (buckets holding one row stay as they are). Runs
 * inside the caller's transaction. Returns STORE_OK or the error. */
int sq_samples_merge(store_t *st, const sq_sample_table_t *t, int64_t before, int64_t bucket_ms);

/* Migrations, applied in order at open. */
int store_sqlite_migrate(store_t *st);

#endif
