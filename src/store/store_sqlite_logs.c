/* SQLite backend: console log lines, request records and machine samples. */
#include <stdio.h>
#include <string.h>

#include "store/store_sqlite_internal.h"

static int sq_log_insert_lines(store_t *st, const char *instance_id,
                               const store_log_line_t *lines, size_t count, size_t cap)
{
    int64_t last = 0;

    if (sq_int_query(st, &last, "SELECT coalesce(max(seq), 0) FROM console_log"
                                " WHERE instance_id = ?", "s", instance_id) != STORE_OK)
        return STORE_ERROR;

    for (size_t i = 0; i < count; i++) {
        int rc = sq_exec(st, NULL,
                         "INSERT INTO console_log (instance_id, seq, time, stream, text)"
                         " VALUES (?, ?, ?, ?, ?)",
                         "siiss", instance_id, last + 1 + (int64_t)i, lines[i].time,
                         lines[i].stream, lines[i].text ? lines[i].text : "");
        if (rc != STORE_OK)
            return rc == STORE_EXISTS ? STORE_ERROR : rc;
    }

    /* Keep the newest cap lines: seq numbers are dense, so the cut is one
     * range delete on the primary key. */
    int64_t newest = last + (int64_t)count;
    if (cap > 0 && newest > (int64_t)cap)
        return sq_exec(st, NULL, "DELETE FROM console_log WHERE instance_id = ? AND seq <= ?",
                       "si", instance_id, newest - (int64_t)cap);
    return STORE_OK;
}

static int sq_log_append(store_t *st, const char *instance_id, const store_log_line_t *lines,
                         size_t count, size_t cap)
{
    /* Called both alone and inside an instance transition. */
    int own_transaction = sqlite3_get_autocommit(sq_db(st));

    if (count == 0)
        return STORE_OK;
    if (own_transaction && sq_begin(st) != STORE_OK)
        return STORE_ERROR;

    int rc = sq_log_insert_lines(st, instance_id, lines, count, cap);
    if (!own_transaction)
        return rc;
    if (rc != STORE_OK) {
        sq_rollback(st);
        return rc;
    }
    return sq_commit(st);
}

static int sq_log_list(store_t *st, const char *instance_id, int64_t after, int64_t limit,
                       json_t **rows, int64_t *next)
{
    size_t count;

    int rc = sq_rows(st, rows,
                     "SELECT seq, time, stream, text FROM console_log"
                     " WHERE instance_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                     "sii", instance_id, after, limit);
    if (rc != STORE_OK)
        return rc;

    *next = after;
    count = json_array_size(*rows);
    if (count > 0)
        *next = json_integer_value(json_object_get(json_array_get(*rows, count - 1), "seq"));
    return STORE_OK;
}

static int sq_records_scan(store_t *st, const char *instance_id, int64_t from, int64_t to,
                           store_record_fn fn, void *user)
{
    sqlite3_stmt *stmt = sq_prepare(
        st,
        "SELECT token_id, time, status, latency_ms, ttfb_ms, prompt_tokens, completion_tokens,"
        " cancelled FROM request_records WHERE instance_id = ? AND time >= ? AND time < ?"
        " ORDER BY time",
        "sii", instance_id, from, to);
    int rc;

    if (stmt == NULL)
        return STORE_ERROR;
    while ((rc = sq_step(st, stmt)) == 1) {
        store_record_t record = {
            .instance_id = instance_id,
            .token_id = (const char *)sqlite3_column_text(stmt, 0),
            .time = sqlite3_column_int64(stmt, 1),
            .status = sqlite3_column_int(stmt, 2),
            .latency_ms = sqlite3_column_double(stmt, 3),
            .ttfb_ms = sqlite3_column_type(stmt, 4) == SQLITE_NULL ? -1
                                                                   : sqlite3_column_double(stmt, 4),
            .prompt_tokens = sqlite3_column_int64(stmt, 5),
            .completion_tokens = sqlite3_column_int64(stmt, 6),
            .cancelled = sqlite3_column_int(stmt, 7),
        };
        if (fn(&record, user) != 0)
            break;
    }
    sqlite3_finalize(stmt);
    return rc < 0 ? STORE_ERROR : STORE_OK;
}

static int sq_sample_insert(store_t *st, const store_sample_t *s)
{
    return sq_exec(st, NULL,
                   "INSERT INTO machine_samples (agent, time, cpu_percent, mem_used_bytes,"
                   " mem_total_bytes, net_rx_bytes_per_s, net_tx_bytes_per_s,"
                   " disk_read_bytes_per_s, disk_write_bytes_per_s)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   "siFFFFFFF", s->agent, s->time, s->cpu_percent, s->mem_used_bytes,
                   s->mem_total_bytes, s->net_rx_bytes_per_s, s->net_tx_bytes_per_s,
                   s->disk_read_bytes_per_s, s->disk_write_bytes_per_s);
}

static int sq_samples_scan(store_t *st, const char *agent, int64_t from, int64_t to,
                           store_sample_fn fn, void *user)
{
    sqlite3_stmt *stmt = sq_prepare(
        st,
        "SELECT time, cpu_percent, mem_used_bytes, mem_total_bytes, net_rx_bytes_per_s,"
        " net_tx_bytes_per_s, disk_read_bytes_per_s, disk_write_bytes_per_s"
        " FROM machine_samples WHERE agent = ? AND time >= ? AND time < ? ORDER BY time",
        "sii", agent, from, to);
    int rc;

    if (stmt == NULL)
        return STORE_ERROR;
    while ((rc = sq_step(st, stmt)) == 1) {
        store_sample_t sample = {
            .agent = agent,
            .time = sqlite3_column_int64(stmt, 0),
            .cpu_percent = sq_sample_value(stmt, 1),
            .mem_used_bytes = sq_sample_value(stmt, 2),
            .mem_total_bytes = sq_sample_value(stmt, 3),
            .net_rx_bytes_per_s = sq_sample_value(stmt, 4),
            .net_tx_bytes_per_s = sq_sample_value(stmt, 5),
            .disk_read_bytes_per_s = sq_sample_value(stmt, 6),
            .disk_write_bytes_per_s = sq_sample_value(stmt, 7),
        };
        if (fn(&sample, user) != 0)
            break;
    }
    sqlite3_finalize(stmt);
    return rc < 0 ? STORE_ERROR : STORE_OK;
}

static int sq_prune(store_t *st, int64_t before)
{
    int rc = sq_exec(st, NULL, "DELETE FROM request_records WHERE time < ?", "i", before);

    if (rc == STORE_OK)
        rc = sq_exec(st, NULL, "DELETE FROM machine_samples WHERE time < ?", "i", before);
    if (rc == STORE_OK)
        rc = sq_usage_prune(st, before);
    return rc;
}

static const sq_sample_table_t sq_machine_table = {
    .table = "machine_samples",
    .keys = "agent",
    .values = "cpu_percent, mem_used_bytes, mem_total_bytes, net_rx_bytes_per_s,"
              " net_tx_bytes_per_s, disk_read_bytes_per_s, disk_write_bytes_per_s",
};

static int sq_samples_downsample(store_t *st, int64_t before, int64_t bucket_ms)
{
    if (bucket_ms <= 0) {
        snprintf(st->error, sizeof(st->error), "invalid downsampling bucket %lld ms",
                 (long long)bucket_ms);
        return STORE_ERROR;
    }
    before = before / bucket_ms * bucket_ms;
    if (sq_begin(st) != STORE_OK)
        return STORE_ERROR;

    int rc = sq_samples_merge(st, &sq_machine_table, before, bucket_ms);
    if (rc == STORE_OK)
        rc = sq_usage_downsample_rows(st, before, bucket_ms);
    if (rc != STORE_OK) {
        sq_rollback(st);
        return rc;
    }
    return sq_commit(st);
}

void store_sqlite_logs_ops(store_ops_t *ops)
{
    ops->log_append = sq_log_append;
    ops->log_list = sq_log_list;
    ops->records_insert = sq_records_insert;
    ops->records_scan = sq_records_scan;
    ops->sample_insert = sq_sample_insert;
    ops->samples_scan = sq_samples_scan;
    ops->prune = sq_prune;
    ops->samples_downsample = sq_samples_downsample;
}
