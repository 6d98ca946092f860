/* SQLite backend: GPU samples per agent device and usage samples per
 * instance, with their downsampling and retention. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_internal.h"

static int sq_gpu_samples_insert(store_t *st, const store_gpu_sample_t *samples, size_t count)
{
    if (count == 0)
        return STORE_OK;
    if (sq_begin(st) != STORE_OK)
        return STORE_ERROR;
    for (size_t i = 0; i < count; i++) {
        const store_gpu_sample_t *s = &samples[i];
        int rc = sq_exec(st, NULL,
                         "INSERT INTO gpu_samples (agent, gpu, time, util_percent,"
                         " mem_used_bytes, mem_total_bytes, temp_c, power_w)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         "ssiFFFFF", s->agent, s->gpu, s->time, s->util_percent,
                         s->mem_used_bytes, s->mem_total_bytes, s->temp_c, s->power_w);
        if (rc != STORE_OK) {
            sq_rollback(st);
            return rc;
        }
    }
    return sq_commit(st);
}

static int sq_gpu_samples_scan(store_t *st, const char *agent, const json_t *gpus, int64_t from,
                               int64_t to, store_gpu_sample_fn fn, void *user)
{
    char *ids = json_dumps(gpus, JSON_COMPACT);
    int rc;

    if (ids == NULL) {
        snprintf(st->error, sizeof(st->error), "scanning GPU samples: the device list is not "
                 "a JSON array");
        return STORE_ERROR;
    }
    sqlite3_stmt *stmt = sq_prepare(
        st,
        "SELECT gpu, time, util_percent, mem_used_bytes, mem_total_bytes, temp_c, power_w"
        " FROM gpu_samples WHERE agent = ? AND time >= ? AND time < ?"
        " AND gpu IN (SELECT value FROM json_each(?)) ORDER BY time, gpu",
        "siis", agent, from, to, ids);
    free(ids);
    if (stmt == NULL)
        return STORE_ERROR;

    while ((rc = sq_step(st, stmt)) == 1) {
        store_gpu_sample_t sample = {
            .agent = agent,
            .gpu = (const char *)sqlite3_column_text(stmt, 0),
            .time = sqlite3_column_int64(stmt, 1),
            .util_percent = sq_sample_value(stmt, 2),
            .mem_used_bytes = sq_sample_value(stmt, 3),
            .mem_total_bytes = sq_sample_value(stmt, 4),
            .temp_c = sq_sample_value(stmt, 5),
            .power_w = sq_sample_value(stmt, 6),
        };
        if (fn(&sample, user) != 0)
            break;
    }
    sqlite3_finalize(stmt);
    return rc < 0 ? STORE_ERROR : STORE_OK;
}

static int sq_usage_samples_insert(store_t *st, const char *agent,
                                   const store_usage_sample_t *samples, size_t count)
{
    if (count == 0)
        return STORE_OK;
    if (sq_begin(st) != STORE_OK)
        return STORE_ERROR;
    for (size_t i = 0; i < count; i++) {
        const store_usage_sample_t *s = &samples[i];
        int rc = sq_exec(st, NULL,
                         "INSERT INTO usage_samples (instance_id, time, cpu_percent,"
                         " mem_used_bytes, mem_limit_bytes, net_rx_bytes_per_s,"
                         " net_tx_bytes_per_s, disk_read_bytes_per_s, disk_write_bytes_per_s)"
                         " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9"
                         " WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?1 AND agent = ?10)",
                         "siFFFFFFFs", s->instance_id, s->time, s->cpu_percent,
                         s->mem_used_bytes, s->mem_limit_bytes, s->net_rx_bytes_per_s,
                         s->net_tx_bytes_per_s, s->disk_read_bytes_per_s,
                         s->disk_write_bytes_per_s, agent);
        if (rc != STORE_OK) {
            sq_rollback(st);
            return rc;
        }
    }
    return sq_commit(st);
}

static int sq_usage_samples_scan(store_t *st, const char *instance_id, int64_t from, int64_t to,
                                 store_usage_sample_fn fn, void *user)
{
    sqlite3_stmt *stmt = sq_prepare(
        st,
        "SELECT time, cpu_percent, mem_used_bytes, mem_limit_bytes, net_rx_bytes_per_s,"
        " net_tx_bytes_per_s, disk_read_bytes_per_s, disk_write_bytes_per_s"
        " FROM usage_samples WHERE instance_id = ? AND time >= ? AND time < ? ORDER BY time",
        "sii", instance_id, from, to);
    int rc;

    if (stmt == NULL)
        return STORE_ERROR;
    while ((rc = sq_step(st, stmt)) == 1) {
        store_usage_sample_t sample = {
            .instance_id = instance_id,
            .time = sqlite3_column_int64(stmt, 0),
            .cpu_percent = sq_sample_value(stmt, 1),
            .mem_used_bytes = sq_sample_value(stmt, 2),
            .mem_limit_bytes = sq_sample_value(stmt, 3),
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

int sq_usage_prune(store_t *st, int64_t before)
{
    int rc = sq_exec(st, NULL, "DELETE FROM gpu_samples WHERE time < ?", "i", before);

    if (rc == STORE_OK)
        rc = sq_exec(st, NULL, "DELETE FROM usage_samples WHERE time < ?", "i", before);
    return rc;
}

static const sq_sample_table_t sq_gpu_table = {
    .table = "gpu_samples",
    .keys = "agent, gpu",
    .values = "util_percent, mem_used_bytes, mem_total_bytes, temp_c, power_w",
};

static const sq_sample_table_t sq_usage_table = {
    .table = "usage_samples",
    .keys = "instance_id",
    .values = "cpu_percent, mem_used_bytes, mem_limit_bytes, net_rx_bytes_per_s,"
              " net_tx_bytes_per_s, disk_read_bytes_per_s, disk_write_bytes_per_s",
};

int sq_usage_downsample_rows(store_t *st, int64_t before, int64_t bucket_ms)
{
    int rc = sq_samples_merge(st, &sq_gpu_table, before, bucket_ms);

    if (rc == STORE_OK)
        rc = sq_samples_merge(st, &sq_usage_table, before, bucket_ms);
    return rc;
}

void store_sqlite_usage_ops(store_ops_t *ops)
{
    ops->gpu_samples_insert = sq_gpu_samples_insert;
    ops->gpu_samples_scan = sq_gpu_samples_scan;
    ops->usage_samples_insert = sq_usage_samples_insert;
    ops->usage_samples_scan = sq_usage_samples_scan;
}
