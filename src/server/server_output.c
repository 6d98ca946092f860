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

/* The status reason of inst. For a queued instance without one, the reason
 * names what it waits for: an agent serving its queue, or, when no
 * registered agent lists the queue, an agent to register for it. */
static json_t *server_status_reason(server_t *srv, const store_instance_t *inst)
{
    json_t *rows = NULL, *row;
    char text[160];
    size_t i;
    int64_t agents = -1;

    if ((inst->status_reason != NULL && inst->status_reason[0] != '\0') ||
        strcmp(inst->status, "queued") != 0)
        return server_text_or_null(inst->status_reason);
    if (inst->agent[0] != '\0') {
        snprintf(text, sizeof(text), "leased to agent %s, waiting for it to start", inst->agent);
        return json_string(text);
    }

    if (srv->store->ops->queue_list(srv->store, &rows) != STORE_OK) {
        log_warn(SERVER_LOG, "instance %s: cannot list queues: %s", inst->id,
                 store_error(srv->store));
        return json_null();
    }
    json_array_foreach(rows, i, row) {
        if (strcmp(json_string_value(json_object_get(row, "name")), inst->queue) == 0)
            agents = json_integer_value(json_object_get(row, "agents"));
    }
    json_decref(rows);
    if (agents <= 0)
        snprintf(text, sizeof(text), "no agent serves queue %s", inst->queue);
    else
        snprintf(text, sizeof(text), "waiting for an agent serving queue %s", inst->queue);
    return json_string(text);
}

/* True when env contains a string value, the only kind a vault value can equal. */
static int server_env_has_strings(json_t *env)
{
    const char *name;
    json_t *value;

    json_object_foreach(env, name, value) {
        if (json_is_string(value))
            return 1;
    }
    return 0;
}

/* True when text equals one of the vault's values. */
static int server_is_vault_value(json_t *vault, const char *text)
{
    const char *name;
    json_t *value;

    /* An empty value hides nothing, so it matches nothing. */
    json_object_foreach(vault, name, value) {
        const char *secret = json_string_value(value);
        if (secret != NULL && secret[0] != '\0' && strcmp(secret, text) == 0)
            return 1;
    }
    return 0;
}

json_t *server_config_public(server_t *srv, const store_instance_t *inst)
{
    json_t *cfg = config_export(inst->config, 0);
    json_t *env = json_object_get(cfg, "env");
    const char *name;
    json_t *value;
    char err[256];

    if (cfg == NULL || !server_env_has_strings(env))
        return cfg;

    /* A vault value copied into env under a name that does not look secret
     * is still a secret. A vault that cannot be read hides every value. */
    json_t *vault = vault_read_all(srv->store, &srv->vault_key, inst->owner, err, sizeof(err));
    if (vault == NULL)
        log_warn(SERVER_LOG, "instance %s: cannot read the vault of %s (%s); hiding every env value",
                 inst->id, inst->owner, err);
    json_object_foreach(env, name, value) {
        if (json_is_string(value) &&
            (vault == NULL || server_is_vault_value(vault, json_string_value(value))))
            json_object_set_new(env, name, json_null());
    }
    json_decref(vault);
    return cfg;
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
    json_object_set_new(obj, "status_reason", server_status_reason(srv, inst));
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
    json_object_set_new(obj, "gpus",
                        json_is_array(inst->gpus) ? json_deep_copy(inst->gpus) : json_array());
    json_object_set_new(obj, "config", server_config_public(srv, inst));
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
