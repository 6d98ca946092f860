/* SQLite backend: queues, agents and routes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_internal.h"

static int sq_queue_create(store_t *st, const char *name, int64_t now)
{
    return sq_exec(st, NULL, "INSERT INTO queues (name, created_at) VALUES (?, ?)", "si", name,
                   now);
}

static int sq_queue_exists(store_t *st, const char *name)
{
    int64_t found = 0;

    if (sq_int_query(st, &found, "SELECT count(*) FROM queues WHERE name = ?", "s", name) != 0)
        return STORE_ERROR;
    return found > 0;
}

static int sq_queue_list(store_t *st, json_t **rows)
{
    return sq_rows(st, rows,
                   "SELECT q.name, q.created_at,"
                   " (SELECT count(*) FROM instances i WHERE i.queue = q.name"
                   "   AND i.status = 'queued') AS queued,"
                   " (SELECT count(*) FROM agents a, json_each(a.queues) j"
                   "   WHERE j.value = q.name) AS agents"
                   " FROM queues q ORDER BY q.name",
                   "");
}

/* The steps of sq_queue_delete inside its transaction. */
static int sq_queue_delete_rows(store_t *st, const char *name, char *instance_out,
                                size_t instance_size)
{
    int64_t exists = 0;

    if (sq_int_query(st, &exists, "SELECT count(*) FROM queues WHERE name = ?", "s", name) != 0)
        return STORE_ERROR;
    if (exists == 0)
        return STORE_NOT_FOUND;

    sqlite3_stmt *stmt = sq_prepare(st,
                                    "SELECT id FROM instances WHERE queue = ? AND status IN"
                                    " ('queued', 'loading', 'active', 'idle', 'stopping')"
                                    " ORDER BY created_at LIMIT 1",
                                    "s", name);
    if (stmt == NULL)
        return STORE_ERROR;
    int rc = sq_step(st, stmt);
    if (rc == 1 && instance_out != NULL)
        sq_copy_text(stmt, 0, instance_out, instance_size);
    sqlite3_finalize(stmt);
    if (rc != 0)
        return rc == 1 ? STORE_CONFLICT : STORE_ERROR;
    return sq_exec(st, NULL, "DELETE FROM queues WHERE name = ?", "s", name);
}

static int sq_queue_delete(store_t *st, const char *name, char *instance_out,
                           size_t instance_size)
{
    if (instance_out != NULL && instance_size > 0)
        instance_out[0] = '\0';
    if (sq_begin(st) != 0)
        return STORE_ERROR;

    int rc = sq_queue_delete_rows(st, name, instance_out, instance_size);
    if (rc != STORE_OK) {
        sq_rollback(st);
        return rc;
    }
    return sq_commit(st);
}

static int sq_agent_upsert(store_t *st, const char *new_id, const char *name,
                           const char *hostname, const char *address, const json_t *queues,
                           const json_t *gpus, const json_t *machine, int64_t now,
                           char *id_out, size_t id_size)
{
    char *queues_text = json_dumps(queues, JSON_COMPACT);
    char *gpus_text = gpus != NULL ? json_dumps(gpus, JSON_COMPACT) : strdup("[]");
    char *machine_text = machine != NULL ? json_dumps(machine, JSON_COMPACT) : NULL;
    int rc;

    if (queues_text == NULL || gpus_text == NULL || (machine != NULL && machine_text == NULL)) {
        snprintf(st->error, sizeof(st->error), "out of memory encoding an agent");
        free(queues_text);
        free(gpus_text);
        free(machine_text);
        return STORE_ERROR;
    }

    rc = sq_exec(st, NULL,
                 "INSERT INTO agents (id, name, hostname, address, queues, gpus, machine,"
                 " created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                 " ON CONFLICT (name) DO UPDATE SET hostname = excluded.hostname,"
                 " address = excluded.address, queues = excluded.queues,"
                 " gpus = excluded.gpus, machine = excluded.machine,"
                 " last_seen_at = excluded.last_seen_at",
                 "sssssssii", new_id, name, hostname, address, queues_text, gpus_text,
                 machine_text, now, now);
    free(queues_text);
    free(gpus_text);
    free(machine_text);
    if (rc != STORE_OK)
        return rc;

    sqlite3_stmt *stmt = sq_prepare(st, "SELECT id FROM agents WHERE name = ?", "s", name);
    if (stmt == NULL)
        return STORE_ERROR;
    rc = sq_step(st, stmt);
    if (rc == 1)
        sq_copy_text(stmt, 0, id_out, id_size);
    sqlite3_finalize(stmt);
    return rc == 1 ? STORE_OK : STORE_ERROR;
}

static int sq_agent_get(store_t *st, const char *id, char *name_out, size_t name_size,
                        json_t **queues_out)
{
    sqlite3_stmt *stmt = sq_prepare(st, "SELECT name, queues FROM agents WHERE id = ?", "s", id);

    if (stmt == NULL)
        return STORE_ERROR;
    int rc = sq_step(st, stmt);
    if (rc == 1) {
        sq_copy_text(stmt, 0, name_out, name_size);
        if (queues_out != NULL) {
            const char *text = (const char *)sqlite3_column_text(stmt, 1);
            *queues_out = json_loads(text ? text : "[]", 0, NULL);
            if (!json_is_array(*queues_out)) {
                json_decref(*queues_out);
                *queues_out = json_array();
            }
        }
    }
    sqlite3_finalize(stmt);
    return sq_lookup_result(rc);
}

static int sq_agent_gpus(store_t *st, const char *name, json_t **gpus_out)
{
    sqlite3_stmt *stmt = sq_prepare(st, "SELECT gpus FROM agents WHERE name = ?", "s", name);

    *gpus_out = NULL;
    if (stmt == NULL)
        return STORE_ERROR;
    int rc = sq_step(st, stmt);
    if (rc == 1) {
        const char *text = (const char *)sqlite3_column_text(stmt, 0);
        *gpus_out = json_loads(text ? text : "[]", 0, NULL);
        if (!json_is_array(*gpus_out)) {
            json_decref(*gpus_out);
            *gpus_out = json_array();
        }
    }
    sqlite3_finalize(stmt);
    return sq_lookup_result(rc);
}

static int sq_agent_touch(store_t *st, const char *id, int64_t now)
{
    return sq_exec(st, NULL, "UPDATE agents SET last_seen_at = ? WHERE id = ?", "is", now, id);
}

static int sq_agent_list(store_t *st, json_t **rows)
{
    int rc = sq_rows(st, rows,
                     "SELECT a.id, a.name, a.hostname, a.address, a.queues, a.gpus, a.machine,"
                     " a.last_seen_at,"
                     " (SELECT count(*) FROM instances i WHERE i.agent = a.name AND i.status IN"
                     "   ('queued', 'loading', 'active', 'idle', 'stopping')) AS instances"
                     " FROM agents a ORDER BY a.name",
                     "");
    size_t i;
    json_t *row;

    if (rc != STORE_OK)
        return rc;
    /* The queues, gpus and machine columns contain JSON text, returned here
     * as arrays and an object (machine null when the agent sent none). */
    json_array_foreach(*rows, i, row) {
        json_t *queues = json_loads(json_string_value(json_object_get(row, "queues")), 0, NULL);
        json_t *gpus = json_loads(json_string_value(json_object_get(row, "gpus")), 0, NULL);
        const char *machine_text = json_string_value(json_object_get(row, "machine"));
        json_t *machine = machine_text != NULL ? json_loads(machine_text, 0, NULL) : NULL;

        json_object_set_new(row, "queues", json_is_array(queues) ? queues : json_array());
        if (!json_is_array(queues))
            json_decref(queues);
        json_object_set_new(row, "gpus", json_is_array(gpus) ? gpus : json_array());
        if (!json_is_array(gpus))
            json_decref(gpus);
        json_object_set_new(row, "machine", json_is_object(machine) ? machine : json_null());
        if (!json_is_object(machine))
            json_decref(machine);
    }
    return STORE_OK;
}

static int sq_route_create(store_t *st, const char *name, int64_t now)
{
    return sq_exec(st, NULL, "INSERT INTO routes (name, created_at) VALUES (?, ?)", "si", name,
                   now);
}

/* The live holder of a route, "" when none. The holder column is cleared
 * when an instance ends, but the status check keeps a stale holder from
 * blocking the route. */
static int sq_route_holder(store_t *st, const char *name, char *holder_out, size_t holder_size)
{
    sqlite3_stmt *stmt = sq_prepare(
        st,
        "SELECT r.name, i.id FROM routes r LEFT JOIN instances i ON i.id = r.instance_id AND"
        " i.status IN ('queued', 'loading', 'active', 'idle', 'stopping') WHERE r.name = ?",
        "s", name);
    if (stmt == NULL)
        return STORE_ERROR;

    int rc = sq_step(st, stmt);
    if (holder_out != NULL)
        sq_copy_text(stmt, 1, holder_out, holder_size);
    if (rc != 1 && holder_out != NULL)
        holder_out[0] = '\0';
    sqlite3_finalize(stmt);
    return rc;
}

static int sq_route_get(store_t *st, const char *name, char *holder_out, size_t holder_size)
{
    return sq_route_holder(st, name, holder_out, holder_size);
}

static int sq_route_list(store_t *st, json_t **rows)
{
    return sq_rows(st, rows,
                   "SELECT r.name, i.id AS instance_id, r.created_at FROM routes r"
                   " LEFT JOIN instances i ON i.id = r.instance_id AND i.status IN"
                   " ('queued', 'loading', 'active', 'idle', 'stopping') ORDER BY r.name",
                   "");
}

static int sq_route_delete(store_t *st, const char *name, char *holder_out, size_t holder_size)
{
    char holder[64] = "";

    if (sq_begin(st) != 0)
        return STORE_ERROR;

    int rc = sq_route_holder(st, name, holder, sizeof(holder));
    if (holder_out != NULL)
        snprintf(holder_out, holder_size, "%s", holder);
    if (rc == 1 && holder[0] != '\0')
        rc = STORE_CONFLICT;
    else if (rc == 1)
        rc = sq_exec(st, NULL, "DELETE FROM routes WHERE name = ?", "s", name);
    else if (rc == 0)
        rc = STORE_NOT_FOUND;

    if (rc != STORE_OK) {
        sq_rollback(st);
        return rc;
    }
    return sq_commit(st);
}

void store_sqlite_agents_ops(store_ops_t *ops)
{
    ops->queue_create = sq_queue_create;
    ops->queue_exists = sq_queue_exists;
    ops->queue_list = sq_queue_list;
    ops->queue_delete = sq_queue_delete;
    ops->agent_upsert = sq_agent_upsert;
    ops->agent_get = sq_agent_get;
    ops->agent_gpus = sq_agent_gpus;
    ops->agent_touch = sq_agent_touch;
    ops->agent_list = sq_agent_list;
    ops->route_create = sq_route_create;
    ops->route_get = sq_route_get;
    ops->route_list = sq_route_list;
    ops->route_delete = sq_route_delete;
}
