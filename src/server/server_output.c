/* API output built from store rows: the instance object and the gateway
 * state document, and the generation counter that gateways compare to detect a change. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "server/server_internal.h"
#include "util/clock.h"
#include "util/log.h"

void server_state_changed(server_t *srv)
{
    srv->generation++;
    server_waiters_wake(srv, SERVER_WAIT_STATE);
}

static json_t *server_time_or_null(int64_t ms)
{
    return ms ? json_integer(ms) : json_null();
}

static json_t *server_text_or_null(const char *text)
{
    return text && text[0] ? json_string(text) : json_null();
}

/* Seconds since the last activity: null before the instance was ready,
 * frozen at the stop once it has ended. */
static json_t *server_idle_seconds(const store_instance_t *inst)
{
    int64_t since = inst->last_activity_at ? inst->last_activity_at : inst->ready_at;
    int64_t until;

    if (strcmp(inst->status, "queued") == 0 || strcmp(inst->status, "loading") == 0 || since == 0)
        return json_null();
    until = store_status_is_live(inst->status) ? clock_wall_ms() : inst->stopped_at;
    if (until < since)
        until = since;
    return json_real((double)(until - since) / 1000.0);
}

json_t *server_instance_json(server_t *srv, const store_instance_t *inst)
{
    char endpoint[1024];
    json_t *limit = json_object_get(inst->config, "idle_time_limit_hours");
    json_t *tags = json_object_get(inst->config, "tags");

    snprintf(endpoint, sizeof(endpoint), "%s/serve/%s/v1", srv->gateway_url, inst->path);
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;

    json_object_set_new(obj, "id", json_string(inst->id));
    json_object_set_new(obj, "name", json_string(inst->name));
    json_object_set_new(obj, "project", json_string(inst->project));
    json_object_set_new(obj, "owner", json_string(inst->owner));
    json_object_set_new(obj, "status", json_string(inst->status));
    json_object_set_new(obj, "status_reason", server_text_or_null(inst->status_reason));
    json_object_set_new(obj, "queue", json_string(inst->queue));
    json_object_set_new(obj, "agent", server_text_or_null(inst->agent));
    json_object_set_new(obj, "route", server_text_or_null(inst->route));
    json_object_set_new(obj, "path", json_string(inst->path));
    json_object_set_new(obj, "endpoint", json_string(endpoint));
    json_object_set_new(obj, "upstream", server_text_or_null(inst->upstream));
    json_object_set_new(obj, "idle_seconds", server_idle_seconds(inst));
    json_object_set_new(obj, "idle_time_limit_hours",
                        json_is_number(limit) ? json_real(json_number_value(limit)) : json_null());
    json_object_set_new(obj, "created_at", server_time_or_null(inst->created_at));
    json_object_set_new(obj, "started_at", server_time_or_null(inst->started_at));
    json_object_set_new(obj, "ready_at", server_time_or_null(inst->ready_at));
    json_object_set_new(obj, "last_activity_at", server_time_or_null(inst->last_activity_at));
    json_object_set_new(obj, "stopped_at", server_time_or_null(inst->stopped_at));
    json_object_set_new(obj, "exit_code",
                        inst->has_exit_code ? json_integer(inst->exit_code) : json_null());
    json_object_set_new(obj, "tags", json_is_array(tags) ? json_deep_copy(tags) : json_array());
    json_object_set_new(obj, "config", config_export(inst->config, 0));
    return obj;
}

static json_t *server_state_instances(server_t *srv)
{
    store_instance_t *list = NULL;
    size_t count = 0;
    json_t *out = json_array();

    if (srv->store->ops->instance_list(srv->store, STORE_INSTANCES_LIVE, NULL, &list, &count) !=
        STORE_OK) {
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        const store_instance_t *inst = &list[i];
        if (strcmp(inst->status, "queued") == 0)
            continue;
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", inst->id, "path",
                                             inst->path, "project", inst->project, "status",
                                             inst->status, "upstream",
                                             server_text_or_null(inst->upstream)));
    }
    store_instances_free(list, count);
    return out;
}

static json_t *server_state_tokens(server_t *srv)
{
    json_t *rows = NULL, *row;
    json_t *out = json_array();
    size_t i;

    if (srv->store->ops->token_list(srv->store, NULL, "gateway", 0, &rows) != STORE_OK) {
        json_decref(out);
        return NULL;
    }
    json_array_foreach(rows, i, row) {
        json_array_append_new(out, json_pack("{s:O, s:O, s:O, s:O}", "id",
                                             json_object_get(row, "id"), "hash",
                                             json_object_get(row, "hash"), "user",
                                             json_object_get(row, "user"), "expires_at",
                                             json_object_get(row, "expires_at")));
    }
    json_decref(rows);
    return out;
}

static json_t *server_state_grants(server_t *srv)
{
    json_t *rows = NULL, *row;
    json_t *out = json_array();
    size_t i;

    if (srv->store->ops->grant_list(srv->store, &rows) != STORE_OK) {
        json_decref(out);
        return NULL;
    }
    /* Every stored grant is read or more. */
    json_array_foreach(rows, i, row) {
        json_array_append_new(out, json_pack("{s:O, s:O}", "user", json_object_get(row, "user"),
                                             "project", json_object_get(row, "project")));
    }
    json_decref(rows);
    return out;
}

static json_t *server_state_admins(server_t *srv)
{
    json_t *rows = NULL, *row;
    json_t *out = json_array();
    size_t i;

    if (srv->store->ops->user_list(srv->store, &rows) != STORE_OK) {
        json_decref(out);
        return NULL;
    }
    json_array_foreach(rows, i, row) {
        if (json_integer_value(json_object_get(row, "admin")) != 0)
            json_array_append(out, json_object_get(row, "name"));
    }
    json_decref(rows);
    return out;
}

json_t *server_gateway_state(server_t *srv)
{
    json_t *instances = server_state_instances(srv);
    json_t *tokens = server_state_tokens(srv);
    json_t *grants = server_state_grants(srv);
    json_t *admins = server_state_admins(srv);

    if (instances == NULL || tokens == NULL || grants == NULL || admins == NULL) {
        log_error(SERVER_LOG, "cannot build the gateway state: %s", store_error(srv->store));
        json_decref(instances);
        json_decref(tokens);
        json_decref(grants);
        json_decref(admins);
        return NULL;
    }
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "generation", (json_int_t)srv->generation,
                     "instances", instances, "tokens", tokens, "grants", grants, "admins",
                     admins);
}
