/* API: agent registration, the work long poll with its leases, agent
 * listing and machine samples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "server/api_agent_usage.h"
#include "server/server_gpus.h"
#include "server/server_internal.h"
#include "store/token.h"
#include "util/clock.h"
#include "util/log.h"

#define API_WORK_WAIT_DEFAULT_S 25
#define API_WORK_WAIT_MAX_S 30

static int api_env_name_valid(const char *name)
{
    if (!((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') ||
          name[0] == '_'))
        return 0;
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789") ==
           strlen(name);
}

/* Build the lease of inst: its configuration with secrets, the merged
 * environment and every secret value for masking. The environment is the
 * vault first, then the config env. A null config value takes the vault
 * value of that name. Returns NULL, with the reason the instance cannot
 * start in reason, when the vault cannot be read or when a null value has
 * no vault entry (deleted after the launch). The instance must then fail,
 * because starting it with the variable unset would hide the mistake. */
json_t *api_build_lease(server_t *srv, const store_instance_t *inst, char *reason,
                        size_t reason_size)
{
    char err[256];
    json_t *vault = vault_read_all(srv->store, &srv->vault_key, inst->owner, err, sizeof(err));
    const char *name;
    json_t *value;

    if (vault == NULL) {
        log_error(SERVER_LOG, "instance %s: cannot read the vault of %s: %s", inst->id,
                  inst->owner, err);
        snprintf(reason, reason_size, "the owner's vault cannot be decrypted");
        return NULL;
    }

    json_t *env = json_object(), *secrets = json_array();
    json_object_foreach(vault, name, value) {
        if (api_env_name_valid(name))
            json_object_set(env, name, value);
        json_array_append(secrets, value);
    }
    json_object_foreach(json_object_get(inst->config, "env"), name, value) {
        if (json_is_null(value) && json_object_get(vault, name) == NULL) {
            snprintf(reason, reason_size,
                     "env %s is null (taken from the vault) but the vault of user %s has no "
                     "entry %s any more; add it with `nimdeck vault set %s` and launch again",
                     name, inst->owner, name, name);
            json_decref(env);
            json_decref(secrets);
            json_decref(vault);
            return NULL;
        }
        if (json_is_null(value)) {
            json_object_set(env, name, json_object_get(vault, name));
            continue;
        }
        json_object_set(env, name, value);
        if (config_is_secret_name(name))
            json_array_append(secrets, value);
    }
    json_decref(vault);

    return json_pack("{s:s, s:O, s:o, s:o}", "id", inst->id, "config", inst->config, "env", env,
                     "secrets", secrets);
}

/* The stop list of an agent: its instances with a requested stop that
 * have not ended. *fresh is set when one of them was not handed out yet. */
static json_t *api_stop_list(server_t *srv, const char *agent, int *fresh)
{
    store_instance_t *list = NULL;
    size_t count = 0;
    json_t *stop = json_array();

    *fresh = 0;
    if (srv->store->ops->instance_list(srv->store, STORE_INSTANCES_LIVE, agent, &list, &count) !=
        STORE_OK) {
        log_error(SERVER_LOG, "cannot list instances of agent %s: %s", agent,
                  store_error(srv->store));
        return stop;
    }
    for (size_t i = 0; i < count; i++) {
        if (!list[i].stop_requested)
            continue;
        json_array_append_new(stop, json_string(list[i].id));
        if (!server_stop_was_sent(srv, list[i].id))
            *fresh = 1;
    }
    store_instances_free(list, count);
    return stop;
}

static void api_mark_stops_sent(server_t *srv, json_t *stop)
{
    json_t *id;
    size_t i;

    json_array_foreach(stop, i, id) {
        server_stop_mark_sent(srv, json_string_value(id));
    }
}

/* Queued instances one poll may fail at lease time before it gives up
 * until the next poll, so a queue full of them cannot stall the loop. */
#define API_LEASE_ATTEMPTS 16

/* Lease the next queued instance for the waiter's agent; NULL when none.
 * An instance whose lease cannot be built fails, and the next one is
 * tried. */
static json_t *api_next_lease(server_t *srv, server_waiter_t *w)
{
    store_instance_t inst;
    char reason[512];

    for (int attempt = 0; attempt < API_LEASE_ATTEMPTS; attempt++) {
        /* Only an instance whose GPUs the agent has free, so that one GPU
         * never goes to two instances: the rest wait in the queue. */
        server_gpus_fit_t fit = {.srv = srv, .agent = w->agent_name,
                                 .inventory = w->gpus_inventory, .free = w->gpus_free};
        int rc = srv->store->ops->instance_lease(srv->store, w->queues, w->agent_name,
                                                 server_gpus_fit, &fit, &inst);
        server_gpus_fit_finish(&fit);
        if (rc == STORE_NOT_FOUND)
            return NULL;
        if (rc != STORE_OK) {
            log_error(SERVER_LOG, "cannot lease work for agent %s: %s", w->agent_name,
                      store_error(srv->store));
            return NULL;
        }

        json_t *lease = api_build_lease(srv, &inst, reason, sizeof(reason));
        if (lease != NULL) {
            log_info(SERVER_LOG, "instance %s leased to agent %s", inst.id, w->agent_name);
            store_instance_clear(&inst);
            return lease;
        }
        server_transition(srv, &inst, "failed", reason);
        store_instance_clear(&inst);
    }
    return NULL;
}

static void api_work_evaluate(server_waiter_t *w, int timed_out)
{
    server_t *srv = w->srv;
    int fresh = 0;
    json_t *stop = api_stop_list(srv, w->agent_name, &fresh);
    json_t *lease = api_next_lease(srv, w);

    if (lease == NULL && !fresh && !timed_out) {
        json_decref(stop);
        return;
    }
    api_mark_stops_sent(srv, stop);
    server_waiter_reply(w, 200, json_pack("{s:o, s:o}", "lease", lease ? lease : json_null(),
                                          "stop", stop));
}

/* The GPU view of a work poll: the agent's inventory and the ids of its free
 * GPUs. An agent that sends no free_gpus has no inventory, so it counts as
 * having no GPU. */
static int api_work_gpus(api_ctx_t *ctx, api_error_t *err, const char *name, json_t **inventory,
                         json_t **free_ids)
{
    char text[4096];

    *inventory = NULL;
    *free_ids = NULL;
    if (!api_query(ctx, "free_gpus", text, sizeof(text))) {
        *inventory = json_array();
        *free_ids = json_array();
        return 0;
    }
    if (server_gpus_parse_free(text, free_ids, err) != 0)
        return -1;
    if (ctx->srv->store->ops->agent_gpus(ctx->srv->store, name, inventory) != STORE_OK) {
        json_decref(*free_ids);
        *free_ids = NULL;
        return api_fail_store(ctx, err, "reading the GPUs of an agent");
    }
    return 0;
}

int api_agents_work(api_ctx_t *ctx, api_error_t *err)
{
    char name[65], wait_text[32] = "";
    json_t *queues = NULL, *gpus_inventory = NULL, *gpus_free = NULL;
    int64_t wait_s = API_WORK_WAIT_DEFAULT_S;

    if (api_query(ctx, "wait", wait_text, sizeof(wait_text))) {
        char *end;
        double value = strtod(wait_text, &end);
        if (wait_text[0] == '\0' || *end != '\0' || !(value >= 0))
            return api_fail(err, 400, "bad_request", NULL,
                            "invalid wait '%s': expected seconds from 0 to %d", wait_text,
                            API_WORK_WAIT_MAX_S);
        wait_s = value > API_WORK_WAIT_MAX_S ? API_WORK_WAIT_MAX_S : (int64_t)value;
    }

    int rc = ctx->srv->store->ops->agent_get(ctx->srv->store, ctx->params[0], name, sizeof(name),
                                             &queues);
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL,
                        "agent %s not found; register it first (POST /api/v1/agents)",
                        ctx->params[0]);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "reading an agent");
    /* Its live instances failed while it was away. The 404 makes it register
     * again, and the registration response lists those it must stop. */
    if (server_agent_was_lost(ctx->srv, name)) {
        json_decref(queues);
        return api_fail(err, 404, "not_found", NULL,
                        "agent %s (%s) was declared lost after no work poll for %lld s; "
                        "register it again (POST /api/v1/agents)",
                        ctx->params[0], name, (long long)(ctx->srv->agent_timeout_ms / 1000));
    }
    if (api_work_gpus(ctx, err, name, &gpus_inventory, &gpus_free) != 0) {
        json_decref(queues);
        return -1;
    }
    ctx->srv->store->ops->agent_touch(ctx->srv->store, ctx->params[0], clock_wall_ms());

    server_waiter_t *w = server_waiter_park(ctx->srv, ctx->ex, SERVER_WAIT_WORK,
                                            (uint64_t)wait_s * 1000, api_work_evaluate);
    if (w == NULL) {
        json_decref(queues);
        json_decref(gpus_inventory);
        json_decref(gpus_free);
        return api_fail(err, 500, "internal", NULL, "out of memory parking a work poll");
    }
    snprintf(w->agent_id, sizeof(w->agent_id), "%.32s", ctx->params[0]);
    snprintf(w->agent_name, sizeof(w->agent_name), "%s", name);
    w->queues = queues;
    w->gpus_inventory = gpus_inventory;
    w->gpus_free = gpus_free;

    /* Pending work is sent at once, and wait 0 replies at once even without work. */
    api_work_evaluate(w, wait_s == 0);
    return 0;
}

static int api_in_running(json_t *running, const char *id)
{
    json_t *item;
    size_t i;

    json_array_foreach(running, i, item) {
        if (json_is_string(item) && strcmp(json_string_value(item), id) == 0)
            return 1;
    }
    return 0;
}

/* After a restart: instances the agent no longer runs failed, and leases
 * it never started go back to the queue. */
static void api_agent_restarted(server_t *srv, const char *agent, json_t *running)
{
    store_instance_t *list = NULL;
    size_t count = 0;

    if (srv->store->ops->instance_list(srv->store, STORE_INSTANCES_LIVE, agent, &list, &count) !=
        STORE_OK) {
        log_error(SERVER_LOG, "cannot list instances of agent %s: %s", agent,
                  store_error(srv->store));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        store_instance_t *inst = &list[i];
        server_stop_forget(srv, inst->id);
        if (api_in_running(running, inst->id))
            continue;
        if (strcmp(inst->status, "queued") == 0) {
            inst->agent[0] = '\0';
            if (srv->store->ops->instance_save(srv->store, inst) != STORE_OK)
                log_error(SERVER_LOG, "cannot requeue instance %s: %s", inst->id,
                          store_error(srv->store));
            continue;
        }
        server_transition(srv, inst, "failed", "agent restarted");
    }
    store_instances_free(list, count);
}

/* Return the ids in running whose instance ran on this agent and has ended,
 * as a new array. The agent still has a process or a pending final status
 * for each, so it stops the process or sends the status again. */
static json_t *api_agent_ended(server_t *srv, const char *agent, json_t *running)
{
    json_t *stop = json_array();
    json_t *item;
    size_t i;

    json_array_foreach(running, i, item) {
        store_instance_t inst;
        const char *id = json_string_value(item);
        if (id == NULL || srv->store->ops->instance_get(srv->store, id, &inst) != STORE_OK)
            continue;
        if (strcmp(inst.agent, agent) == 0 &&
            (strcmp(inst.status, "stopped") == 0 || strcmp(inst.status, "failed") == 0)) {
            log_warn(SERVER_LOG, "instance %s: agent %s still runs it but it has ended (%s); "
                     "asking the agent to stop it", id, agent, inst.status);
            json_array_append_new(stop, json_string(id));
        }
        store_instance_clear(&inst);
    }
    return stop;
}

/* Check the registration body; queues becomes a new array of names. */
static int api_agent_fields(api_ctx_t *ctx, api_error_t *err, json_t **queues)
{
    static const api_field_t fields[] = {
        {"name", API_JSON_STRING, 1},
        {"queues", API_JSON_ARRAY, 0},
        {"hostname", API_JSON_STRING | API_JSON_NULL, 0},
        {"address", API_JSON_STRING | API_JSON_NULL, 0},
        {"running", API_JSON_ARRAY, 0},
        {"gpus", API_JSON_ARRAY | API_JSON_NULL, 0},
        {"machine", API_JSON_OBJECT | API_JSON_NULL, 0},
        {NULL, 0, 0},
    };

    if (api_check_body(ctx, err, fields) != 0 ||
        server_gpus_check_registration(ctx->body, err) != 0)
        return -1;
    const char *name = api_body_string(ctx, "name");
    json_t *requested = json_object_get(ctx->body, "queues");
    json_t *item;
    size_t i;

    if (api_check_name(err, "agent", name) != 0)
        return -1;
    if (requested != NULL && json_array_size(requested) == 0)
        return api_fail(err, 400, "bad_request", NULL,
                        "\"queues\" must be a non-empty array of queue names");

    *queues = requested ? json_deep_copy(requested) : json_pack("[s]", "default");
    json_array_foreach(*queues, i, item) {
        const char *queue = json_string_value(item);
        int rc = queue ? ctx->srv->store->ops->queue_exists(ctx->srv->store, queue) : 0;
        if (rc == 1)
            continue;

        /* The message is built before the release, because queue points into *queues. */
        if (rc < 0)
            api_fail_store(ctx, err, "checking a queue");
        else
            api_fail(err, 400, "bad_request", NULL,
                     "queue %s does not exist; create it first with `nimdeck queues create %s` "
                     "(POST /api/v1/queues)",
                     queue ? queue : "(not a string)", queue ? queue : "NAME");
        json_decref(*queues);
        *queues = NULL;
        return -1;
    }
    return 0;
}

int api_agents_register(api_ctx_t *ctx, api_error_t *err)
{
    json_t *queues = NULL;
    char new_id[SERVER_INSTANCE_ID_LEN + 1], id[33];

    if (api_agent_fields(ctx, err, &queues) != 0)
        return -1;
    const char *name = api_body_string(ctx, "name");
    const char *hostname = api_body_string(ctx, "hostname");
    const char *address = api_body_string(ctx, "address");

    server_random_id(new_id, SERVER_INSTANCE_ID_LEN, TOKEN_ALPHABET_HEX);
    json_t *gpus = json_object_get(ctx->body, "gpus");
    json_t *machine = json_object_get(ctx->body, "machine");
    int rc = ctx->srv->store->ops->agent_upsert(
        ctx->srv->store, new_id, name, hostname, address, queues, json_is_array(gpus) ? gpus : NULL,
        json_is_object(machine) ? machine : NULL, clock_wall_ms(), id, sizeof(id));
    json_decref(queues);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "registering an agent");

    log_info(SERVER_LOG, "agent %s registered (id %s)", name, id);
    json_t *running = json_object_get(ctx->body, "running");
    api_agent_restarted(ctx->srv, name, running);
    server_agent_clear_lost(ctx->srv, name);
    json_t *stop = api_agent_ended(ctx->srv, name, running);
    server_waiters_wake(ctx->srv, SERVER_WAIT_WORK);
    api_reply(ctx, 200, json_pack("{s:s, s:s, s:o}", "id", id, "name", name, "stop", stop));
    return 0;
}

int api_agents_list(api_ctx_t *ctx, api_error_t *err)
{
    json_t *rows = NULL;

    if (ctx->srv->store->ops->agent_list(ctx->srv->store, &rows) != STORE_OK)
        return api_fail_store(ctx, err, "listing agents");
    api_reply(ctx, 200, json_pack("{s:o}", "agents", rows));
    return 0;
}

int api_agents_metrics(api_ctx_t *ctx, api_error_t *err)
{
    static const char *const fields[] = {
        "cpu_percent",        "mem_used_bytes",        "mem_total_bytes",
        "net_rx_bytes_per_s", "net_tx_bytes_per_s",    "disk_read_bytes_per_s",
        "disk_write_bytes_per_s",
    };
    static const api_field_t schema[] = {
        {"time", API_JSON_INTEGER, 0},
        {"cpu_percent", API_JSON_NUMBER | API_JSON_NULL, 0},
        {"mem_used_bytes", API_JSON_NUMBER | API_JSON_NULL, 0},
        {"mem_total_bytes", API_JSON_NUMBER | API_JSON_NULL, 0},
        {"net_rx_bytes_per_s", API_JSON_NUMBER | API_JSON_NULL, 0},
        {"net_tx_bytes_per_s", API_JSON_NUMBER | API_JSON_NULL, 0},
        {"disk_read_bytes_per_s", API_JSON_NUMBER | API_JSON_NULL, 0},
        {"disk_write_bytes_per_s", API_JSON_NUMBER | API_JSON_NULL, 0},
        {"gpus", API_JSON_ARRAY | API_JSON_NULL, 0},
        {"instances", API_JSON_ARRAY | API_JSON_NULL, 0},
        {NULL, 0, 0},
    };
    double values[7];
    char name[65];

    if (api_check_body(ctx, err, schema) != 0 || api_agent_usage_check(ctx, err) != 0)
        return -1;
    for (size_t i = 0; i < 7; i++) {
        json_t *value = json_object_get(ctx->body, fields[i]);
        /* An absent value is stored as null, so averages skip it. */
        values[i] = json_is_number(value) ? json_number_value(value) : NAN;
    }
    json_t *time = json_object_get(ctx->body, "time");

    int rc = ctx->srv->store->ops->agent_get(ctx->srv->store, ctx->params[0], name, sizeof(name),
                                             NULL);
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL, "agent %s not found", ctx->params[0]);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "reading an agent");

    store_sample_t sample = {
        .agent = name, .time = time ? json_integer_value(time) : clock_wall_ms(),
        .cpu_percent = values[0], .mem_used_bytes = values[1], .mem_total_bytes = values[2],
        .net_rx_bytes_per_s = values[3], .net_tx_bytes_per_s = values[4],
        .disk_read_bytes_per_s = values[5], .disk_write_bytes_per_s = values[6],
    };
    if (ctx->srv->store->ops->sample_insert(ctx->srv->store, &sample) != STORE_OK)
        return api_fail_store(ctx, err, "saving a machine sample");
    if (api_agent_usage_store(ctx, err, name, sample.time) != 0)
        return -1;
    api_reply_empty(ctx, 204);
    return 0;
}
