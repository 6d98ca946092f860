/* SQLite backend: app instances, their status history and leases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_internal.h"

#define SQ_INSTANCE_COLUMNS                                                                    \
    "id, name, project, owner, config, status, status_reason, queue, agent, route, path,"      \
    " upstream, exit_code, created_at, started_at, ready_at, last_activity_at, stopped_at,"    \
    " stop_requested, stop_reason, gpus"

#define SQ_LIVE_STATUSES "('queued', 'loading', 'active', 'idle', 'stopping')"

static int sq_instance_read(store_t *st, sqlite3_stmt *stmt, store_instance_t *out)
{
    const char *config_text = (const char *)sqlite3_column_text(stmt, 4);

    memset(out, 0, sizeof(*out));
    sq_copy_text(stmt, 0, out->id, sizeof(out->id));
    sq_copy_text(stmt, 1, out->name, sizeof(out->name));
    sq_copy_text(stmt, 2, out->project, sizeof(out->project));
    sq_copy_text(stmt, 3, out->owner, sizeof(out->owner));
    out->config = json_loads(config_text ? config_text : "{}", 0, NULL);
    sq_copy_text(stmt, 5, out->status, sizeof(out->status));
    out->status_reason = sq_dup_text(stmt, 6);
    sq_copy_text(stmt, 7, out->queue, sizeof(out->queue));
    sq_copy_text(stmt, 8, out->agent, sizeof(out->agent));
    sq_copy_text(stmt, 9, out->route, sizeof(out->route));
    sq_copy_text(stmt, 10, out->path, sizeof(out->path));
    sq_copy_text(stmt, 11, out->upstream, sizeof(out->upstream));
    out->has_exit_code = sqlite3_column_type(stmt, 12) != SQLITE_NULL;
    out->exit_code = sqlite3_column_int(stmt, 12);
    out->created_at = sqlite3_column_int64(stmt, 13);
    out->started_at = sqlite3_column_int64(stmt, 14);
    out->ready_at = sqlite3_column_int64(stmt, 15);
    out->last_activity_at = sqlite3_column_int64(stmt, 16);
    out->stopped_at = sqlite3_column_int64(stmt, 17);
    out->stop_requested = sqlite3_column_int(stmt, 18);
    out->stop_reason = sq_dup_text(stmt, 19);
    if (sqlite3_column_type(stmt, 20) == SQLITE_TEXT) {
        out->gpus = json_loads((const char *)sqlite3_column_text(stmt, 20), 0, NULL);
        if (!json_is_array(out->gpus)) {
            json_decref(out->gpus);
            out->gpus = NULL;
        }
    }

    if (out->config == NULL) {
        snprintf(st->error, sizeof(st->error), "instance %s has an unreadable configuration",
                 out->id);
        store_instance_clear(out);
        return STORE_ERROR;
    }
    return STORE_OK;
}

static int sq_history_append(store_t *st, const char *id, int64_t time, const char *status,
                             const char *reason)
{
    return sq_exec(st, NULL,
                   "INSERT INTO status_history (instance_id, time, status, reason)"
                   " VALUES (?, ?, ?, ?)",
                   "siss", id, time, status, reason);
}

static int sq_system_line(store_t *st, const char *id, int64_t time, const char *text,
                          size_t cap)
{
    store_log_line_t line = {.time = time, .stream = "system", .text = text};

    if (text == NULL)
        return STORE_OK;
    return st->ops->log_append(st, id, &line, 1, cap);
}

static int sq_instance_insert_rows(store_t *st, const store_instance_t *inst,
                                   const char *config_text, const char *log_text,
                                   char *holder_out, size_t holder_size)
{
    int rc = st->ops->project_ensure(st, inst->project, inst->created_at);

    if (rc == STORE_OK && inst->route[0] != '\0') {
        rc = st->ops->route_get(st, inst->route, holder_out, holder_size);
        if (rc == 0)
            rc = STORE_NOT_FOUND;
        else if (rc == 1 && holder_out[0] != '\0')
            rc = STORE_CONFLICT;
        else if (rc == 1)
            rc = STORE_OK;
    }
    if (rc == STORE_OK)
        rc = sq_exec(st, NULL,
                     "INSERT INTO instances (id, name, project, owner, config, status,"
                     " status_reason, queue, agent, route, path, created_at)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     "sssssssseesi", inst->id, inst->name, inst->project, inst->owner,
                     config_text, inst->status, inst->status_reason, inst->queue, inst->agent,
                     inst->route, inst->path, inst->created_at);
    if (rc == STORE_OK && inst->route[0] != '\0')
        rc = sq_exec(st, NULL, "UPDATE routes SET instance_id = ? WHERE name = ?", "ss",
                     inst->id, inst->route);
    if (rc == STORE_OK)
        rc = sq_history_append(st, inst->id, inst->created_at, inst->status,
                               inst->status_reason);
    if (rc == STORE_OK)
        rc = sq_system_line(st, inst->id, inst->created_at, log_text, STORE_LOG_CAP_DEFAULT);
    return rc;
}

static int sq_instance_insert(store_t *st, const store_instance_t *inst, const char *log_text,
                              char *holder_out, size_t holder_size)
{
    char holder[64] = "";
    char *config_text = json_dumps(inst->config, JSON_COMPACT);
    int rc;

    if (config_text == NULL) {
        snprintf(st->error, sizeof(st->error), "cannot encode the configuration of %s",
                 inst->id);
        return STORE_ERROR;
    }
    if (sq_begin(st) != 0) {
        free(config_text);
        return STORE_ERROR;
    }

    rc = sq_instance_insert_rows(st, inst, config_text, log_text, holder, sizeof(holder));
    free(config_text);
    if (holder_out != NULL)
        snprintf(holder_out, holder_size, "%s", holder);
    if (rc != STORE_OK) {
        sq_rollback(st);
        return rc;
    }
    return sq_commit(st);
}

static int sq_instance_get(store_t *st, const char *id, store_instance_t *out)
{
    sqlite3_stmt *stmt =
        sq_prepare(st, "SELECT " SQ_INSTANCE_COLUMNS " FROM instances WHERE id = ?", "s", id);
    if (stmt == NULL)
        return STORE_ERROR;

    int rc = sq_step(st, stmt);
    if (rc == 1)
        rc = sq_instance_read(st, stmt, out) == STORE_OK ? 1 : STORE_ERROR;
    sqlite3_finalize(stmt);
    return sq_lookup_result(rc);
}

static int sq_instance_collect(store_t *st, sqlite3_stmt *stmt, store_instance_t **out,
                               size_t *count)
{
    store_instance_t *list = NULL;
    size_t used = 0, cap = 0;
    int rc;

    while ((rc = sq_step(st, stmt)) == 1) {
        if (used == cap) {
            size_t grown = cap ? cap * 2 : 16;
            store_instance_t *bigger = realloc(list, grown * sizeof(*list));
            if (bigger == NULL) {
                snprintf(st->error, sizeof(st->error), "out of memory listing instances");
                rc = STORE_ERROR;
                break;
            }
            list = bigger;
            cap = grown;
        }
        if (sq_instance_read(st, stmt, &list[used]) != STORE_OK) {
            rc = STORE_ERROR;
            break;
        }
        used++;
    }
    sqlite3_finalize(stmt);
    if (rc < 0) {
        store_instances_free(list, used);
        return STORE_ERROR;
    }
    *out = list;
    *count = used;
    return STORE_OK;
}

static int sq_instance_list(store_t *st, int filter, const char *agent, store_instance_t **out,
                            size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *stmt = sq_prepare(
        st,
        "SELECT " SQ_INSTANCE_COLUMNS " FROM instances"
        " WHERE (?1 = 0 OR status IN " SQ_LIVE_STATUSES ") AND (?2 IS NULL OR agent = ?2)"
        " ORDER BY created_at DESC, rowid DESC",
        "ns", filter, agent);
    if (stmt == NULL)
        return STORE_ERROR;
    return sq_instance_collect(st, stmt, out, count);
}

static int sq_instance_save(store_t *st, const store_instance_t *inst)
{
    int changes = 0;
    char *gpus_text = inst->gpus != NULL ? json_dumps(inst->gpus, JSON_COMPACT) : NULL;

    if (inst->gpus != NULL && gpus_text == NULL) {
        snprintf(st->error, sizeof(st->error), "out of memory encoding the GPUs of %s", inst->id);
        return STORE_ERROR;
    }
    int rc = sq_exec(st, &changes,
                     "UPDATE instances SET status = ?, status_reason = ?, agent = ?,"
                     " upstream = ?, exit_code = ?, started_at = ?, ready_at = ?,"
                     " last_activity_at = ?, stopped_at = ?, stop_requested = ?,"
                     " stop_reason = ?, gpus = ? WHERE id = ?",
                     "sseeNttttnsss", inst->status, inst->status_reason, inst->agent,
                     inst->upstream, inst->has_exit_code, inst->exit_code, inst->started_at,
                     inst->ready_at, inst->last_activity_at, inst->stopped_at,
                     inst->stop_requested ? 1 : 0, inst->stop_reason, gpus_text, inst->id);
    free(gpus_text);
    if (rc != STORE_OK)
        return rc;
    return changes > 0 ? STORE_OK : STORE_NOT_FOUND;
}

static int sq_instance_transition(store_t *st, const store_instance_t *inst, int64_t time,
                                  const char *log_text, size_t log_cap)
{
    if (sq_begin(st) != 0)
        return STORE_ERROR;

    int rc = sq_instance_save(st, inst);
    if (rc == STORE_OK)
        rc = sq_history_append(st, inst->id, time, inst->status, inst->status_reason);
    if (rc == STORE_OK)
        rc = sq_system_line(st, inst->id, time, log_text, log_cap);
    if (rc == STORE_OK && !store_status_is_live(inst->status))
        rc = sq_exec(st, NULL, "UPDATE routes SET instance_id = NULL WHERE instance_id = ?", "s",
                     inst->id);
    if (rc != STORE_OK) {
        sq_rollback(st);
        return rc;
    }
    return sq_commit(st);
}

/* Read into out the oldest queued, unleased instance on queues (JSON text)
 * that fit accepts. Returns 1 when found, 0 when none, or STORE_ERROR. */
static int sq_instance_lease_pick(store_t *st, const char *queues_text, store_lease_fit_fn fit,
                                  void *fit_user, store_instance_t *out)
{
    sqlite3_stmt *stmt = sq_prepare(
        st,
        "SELECT " SQ_INSTANCE_COLUMNS " FROM instances WHERE status = 'queued'"
        " AND agent IS NULL AND stop_requested = 0"
        " AND queue IN (SELECT value FROM json_each(?)) ORDER BY created_at, rowid",
        "s", queues_text);
    int rc;

    if (stmt == NULL)
        return STORE_ERROR;
    while ((rc = sq_step(st, stmt)) == 1) {
        if (sq_instance_read(st, stmt, out) != STORE_OK) {
            rc = STORE_ERROR;
            break;
        }
        if (fit == NULL || fit(out, fit_user))
            break;
        store_instance_clear(out);
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int sq_instance_lease(store_t *st, const json_t *queues, const char *agent,
                             store_lease_fit_fn fit, void *fit_user, store_instance_t *out)
{
    char *queues_text = json_dumps(queues, JSON_COMPACT);

    if (queues_text == NULL) {
        snprintf(st->error, sizeof(st->error), "out of memory encoding queues");
        return STORE_ERROR;
    }
    if (sq_begin(st) != 0) {
        free(queues_text);
        return STORE_ERROR;
    }

    int rc = sq_instance_lease_pick(st, queues_text, fit, fit_user, out);
    free(queues_text);

    if (rc == 1) {
        snprintf(out->agent, sizeof(out->agent), "%s", agent);
        free(out->status_reason);
        out->status_reason = NULL;
        rc = sq_exec(st, NULL, "UPDATE instances SET agent = ?, status_reason = NULL WHERE id = ?",
                     "ss", agent, out->id);
        if (rc != STORE_OK)
            store_instance_clear(out);
        else
            rc = 1;
    }
    if (rc < 0) {
        sq_rollback(st);
        return STORE_ERROR;
    }
    if (sq_commit(st) != STORE_OK) {
        if (rc == 1)
            store_instance_clear(out);
        return STORE_ERROR;
    }
    return rc == 1 ? STORE_OK : STORE_NOT_FOUND;
}

static int sq_instance_touch(store_t *st, const char *id, int64_t time)
{
    /* A report that arrives after the stop must not move the frozen idle
     * clock, and a queued instance has had no request yet. */
    return sq_exec(st, NULL,
                   "UPDATE instances SET last_activity_at = ? WHERE id = ?"
                   " AND status IN ('loading', 'active', 'idle', 'stopping')"
                   " AND (last_activity_at IS NULL OR last_activity_at < ?)",
                   "isi", time, id, time);
}

static int sq_instance_delete(store_t *st, const char *id)
{
    int changes = 0;
    int rc;

    /* The foreign keys cascade to history, console lines and records. */
    rc = sq_exec(st, &changes, "DELETE FROM instances WHERE id = ?", "s", id);
    if (rc != STORE_OK)
        return rc;
    return changes > 0 ? STORE_OK : STORE_NOT_FOUND;
}

static int sq_history_list(store_t *st, const char *id, json_t **rows)
{
    return sq_rows(st, rows,
                   "SELECT time, status, reason FROM status_history WHERE instance_id = ?"
                   " ORDER BY id",
                   "s", id);
}

void store_sqlite_instances_ops(store_ops_t *ops)
{
    ops->instance_insert = sq_instance_insert;
    ops->instance_get = sq_instance_get;
    ops->instance_list = sq_instance_list;
    ops->instance_transition = sq_instance_transition;
    ops->instance_save = sq_instance_save;
    ops->instance_lease = sq_instance_lease;
    ops->instance_touch = sq_instance_touch;
    ops->instance_delete = sq_instance_delete;
    ops->history_list = sq_history_list;
}
