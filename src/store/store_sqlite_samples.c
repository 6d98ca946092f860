/* SQLite backend: what the sample tables (machine, GPU and usage samples)
 * share: reading a value that may be null, and merging old rows into
 * buckets. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/store_sqlite_internal.h"

double sq_sample_value(sqlite3_stmt *stmt, int col)
{
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return NAN;
    return sqlite3_column_double(stmt, col);
}

/* Format a statement into sql; -1 with st->error set when it does not fit. */
static int sq_samples_sql(store_t *st, char *sql, size_t size, const char *format, ...)
{
    va_list ap;

    va_start(ap, format);
    int n = vsnprintf(sql, size, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        snprintf(st->error, sizeof(st->error), "downsampling: a statement is too long");
        return -1;
    }
    return 0;
}

/* Write "avg(a), avg(b), ..." for the value list "a, b, ..." into out. */
static int sq_samples_averages(store_t *st, const char *values, char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (const char *name = values; *name != '\0';) {
        size_t len = strcspn(name, ",");
        int n = snprintf(out + used, size - used, "%savg(%.*s)", used > 0 ? ", " : "",
                         (int)len, name);
        if (n < 0 || (size_t)n >= size - used) {
            snprintf(st->error, sizeof(st->error), "downsampling: a statement is too long");
            return -1;
        }
        used += (size_t)n;
        name += len;
        name += strspn(name, ", ");
    }
    return 0;
}

int sq_samples_merge(store_t *st, const sq_sample_table_t *t, int64_t before, int64_t bucket_ms)
{
    char sql[1024], averages[512];
    int64_t last_id = 0;

    if (sq_samples_averages(st, t->values, averages, sizeof(averages)) != 0 ||
        sq_samples_sql(st, sql, sizeof(sql), "SELECT coalesce(max(id), 0) FROM %s",
                       t->table) != 0 ||
        sq_int_query(st, &last_id, sql, "") != STORE_OK)
        return STORE_ERROR;

    /* Only buckets holding more than one sample change, so a bucket merged
     * by an earlier run is left alone. avg() skips nulls, so a value no
     * merged sample reported stays null. */
    if (sq_samples_sql(st, sql, sizeof(sql),
                       "INSERT INTO %s (%s, time, %s)"
                       " SELECT %s, (time / ?2) * ?2, %s"
                       " FROM %s WHERE time < ?1"
                       " GROUP BY %s, time / ?2 HAVING count(*) > 1",
                       t->table, t->keys, t->values, t->keys, averages, t->table,
                       t->keys) != 0)
        return STORE_ERROR;
    int rc = sq_exec(st, NULL, sql, "ii", before, bucket_ms);
    if (rc != STORE_OK)
        return rc;

    /* The merged rows have ids above last_id; delete the rows they replace. */
    if (sq_samples_sql(st, sql, sizeof(sql),
                       "DELETE FROM %s WHERE id <= ?1 AND time < ?2"
                       " AND (%s, time / ?3) IN"
                       " (SELECT %s, time / ?3 FROM %s WHERE id > ?1)",
                       t->table, t->keys, t->keys, t->table) != 0)
        return STORE_ERROR;
    return sq_exec(st, NULL, sql, "iii", last_id, before, bucket_ms);
}
