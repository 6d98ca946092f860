/* GPU-aware leasing: fitting queued instances to the free GPUs an agent
 * reports with its work poll, and the reasons of those that wait. */
#include "server/server_gpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_gpus.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

/* As the agent matches ids: a UUID prefix must be this long and unique. */
#define SERVER_GPU_UUID_PREFIX_MIN 8

typedef enum {
    SERVER_GPUS_FITS,  /* the free GPUs meet the request now */
    SERVER_GPUS_WAIT,  /* they will once other instances end */
    SERVER_GPUS_NEVER, /* the agent does not have that many, or those ids */
} server_gpus_verdict_t;

int server_gpus_parse_free(const char *text, json_t **out, api_error_t *err)
{
    json_t *ids = json_array();
    const char *at = text;
    char id[CONFIG_GPU_ID_MAX + 1];

    while (ids != NULL && *at != '\0') {
        size_t len = strcspn(at, ",");

        if (len == 0 || len > CONFIG_GPU_ID_MAX) {
            json_decref(ids);
            return api_fail(err, 400, "bad_request", NULL,
                            "invalid free_gpus: expected device ids separated by commas, each "
                            "1-%d characters of A-Z a-z 0-9 . _ : / -",
                            CONFIG_GPU_ID_MAX);
        }
        memcpy(id, at, len);
        id[len] = '\0';
        if (!config_gpus_id_valid(id)) {
            char shown[64];
            api_printable(id, shown, sizeof(shown));
            json_decref(ids);
            return api_fail(err, 400, "bad_request", NULL,
                            "invalid free_gpus entry '%s': a device id is 1-%d characters of "
                            "A-Z a-z 0-9 . _ : / -",
                            shown, CONFIG_GPU_ID_MAX);
        }
        json_array_append_new(ids, json_string(id));
        at += len + (at[len] == ',' ? 1 : 0);
    }
    if (ids == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory reading free_gpus");
    *out = ids;
    return 0;
}

static int server_gpus_has(const json_t *ids, const char *id)
{
    size_t i;
    json_t *item;

    json_array_foreach(ids, i, item) {
        if (json_is_string(item) && strcmp(json_string_value(item), id) == 0)
            return 1;
    }
    return 0;
}

/* The inventory id of the GPU that name names (its id, its UUID or a unique
 * UUID prefix), or NULL. */
static const char *server_gpus_find(const json_t *inventory, const char *name)
{
    const char *prefix_match = NULL;
    int prefix_matches = 0;
    size_t i, len = strlen(name);
    json_t *gpu;

    json_array_foreach(inventory, i, gpu) {
        const char *id = json_string_value(json_object_get(gpu, "id"));
        const char *uuid = json_string_value(json_object_get(gpu, "uuid"));

        if (id == NULL)
            continue;
        if (strcmp(id, name) == 0 || (uuid != NULL && strcmp(uuid, name) == 0))
            return id;
        if (uuid != NULL && len >= SERVER_GPU_UUID_PREFIX_MIN && strncmp(uuid, name, len) == 0) {
            prefix_match = id;
            prefix_matches++;
        }
    }
    return prefix_matches == 1 ? prefix_match : NULL;
}

/* How many GPUs of the inventory are free. */
static size_t server_gpus_free_count(const json_t *inventory, const json_t *free)
{
    size_t i, count = 0;
    json_t *gpu;

    json_array_foreach(inventory, i, gpu) {
        const char *id = json_string_value(json_object_get(gpu, "id"));
        count += id != NULL && server_gpus_has(free, id);
    }
    return count;
}

static server_gpus_verdict_t server_gpus_judge(const config_gpus_t *request,
                                               const json_t *inventory, const json_t *free)
{
    size_t total = json_array_size(inventory);
    size_t available = server_gpus_free_count(inventory, free);
    int all_free = 1;

    switch (request->kind) {
    case CONFIG_GPUS_NONE:
        return SERVER_GPUS_FITS;
    case CONFIG_GPUS_ALL:
        if (total == 0)
            return SERVER_GPUS_NEVER;
        return available == total ? SERVER_GPUS_FITS : SERVER_GPUS_WAIT;
    case CONFIG_GPUS_COUNT:
        if (request->count > total)
            return SERVER_GPUS_NEVER;
        return available >= request->count ? SERVER_GPUS_FITS : SERVER_GPUS_WAIT;
    case CONFIG_GPUS_IDS:
        break;
    }
    for (size_t i = 0; i < request->count; i++) {
        const char *id = server_gpus_find(inventory, request->ids[i]);
        if (id == NULL)
            return SERVER_GPUS_NEVER;
        if (!server_gpus_has(free, id))
            all_free = 0;
    }
    return all_free ? SERVER_GPUS_FITS : SERVER_GPUS_WAIT;
}

/* True when an agent other than the polling one, seen within the agent
 * timeout and serving queue, has GPUs enough for request. */
static int server_gpus_other_agent_fits(server_gpus_fit_t *fit, const char *queue,
                                        const config_gpus_t *request)
{
    int64_t now = clock_wall_ms();
    size_t i;
    json_t *row;

    if (fit->agents == NULL &&
        fit->srv->store->ops->agent_list(fit->srv->store, &fit->agents) != STORE_OK) {
        log_error(SERVER_LOG, "cannot list agents: %s", store_error(fit->srv->store));
        return 0;
    }
    json_array_foreach(fit->agents, i, row) {
        const char *name = json_string_value(json_object_get(row, "name"));
        json_t *seen = json_object_get(row, "last_seen_at");

        if (name == NULL || strcmp(name, fit->agent) == 0 || !json_is_integer(seen) ||
            now - json_integer_value(seen) > fit->srv->agent_timeout_ms ||
            server_agent_was_lost(fit->srv, name) ||
            !server_gpus_has(json_object_get(row, "queues"), queue))
            continue;
        /* Judged as if every GPU were free: only the inventory counts. */
        json_t *everything = json_array();
        size_t j;
        json_t *gpu;
        json_array_foreach(json_object_get(row, "gpus"), j, gpu) {
            json_array_append(everything, json_object_get(gpu, "id"));
        }
        server_gpus_verdict_t verdict =
            server_gpus_judge(request, json_object_get(row, "gpus"), everything);
        json_decref(everything);
        if (verdict == SERVER_GPUS_FITS)
            return 1;
    }
    return 0;
}

/* The reason an instance waits for GPUs of the polling agent. */
static void server_gpus_wait_reason(const server_gpus_fit_t *fit, const config_gpus_t *request,
                                    server_gpus_verdict_t verdict, buf_t *out)
{
    size_t total = json_array_size(fit->inventory);
    size_t available = server_gpus_free_count(fit->inventory, fit->free);

    if (verdict == SERVER_GPUS_NEVER) {
        buf_append_str(out, "waiting for an agent with ");
        config_gpus_describe(request, out);
        buf_printf(out, "; agent %s has %zu GPU%s", fit->agent, total, total == 1 ? "" : "s");
        return;
    }
    switch (request->kind) {
    case CONFIG_GPUS_ALL:
        buf_printf(out, "waiting for all %zu GPUs of agent %s to be free (%zu free)", total,
                   fit->agent, available);
        return;
    case CONFIG_GPUS_COUNT:
        buf_printf(out, "waiting for %zu free GPU%s on agent %s (%zu of %zu free)",
                   request->count, request->count == 1 ? "" : "s", fit->agent, available, total);
        return;
    default:
        buf_append_str(out, "waiting for ");
        config_gpus_describe(request, out);
        buf_printf(out, " of agent %s to be free", fit->agent);
    }
}

int server_gpus_fit(const store_instance_t *inst, void *user)
{
    server_gpus_fit_t *fit = user;
    config_gpus_t request;
    char err[256];
    buf_t reason = BUF_INIT;

    /* A configuration the agent cannot read either: it fails it with the
     * reason, which beats a silent wait. */
    if (config_gpus_parse(json_object_get(inst->config, "gpus"), &request, err, sizeof(err)) != 0)
        return 1;

    /* NOTE: no reservation: a smaller instance further back in the queue
     * takes GPUs as they come free while a larger one before it waits. */
    server_gpus_verdict_t verdict = server_gpus_judge(&request, fit->inventory, fit->free);
    if (verdict == SERVER_GPUS_FITS ||
        (verdict == SERVER_GPUS_NEVER &&
         !server_gpus_other_agent_fits(fit, inst->queue, &request))) {
        config_gpus_free(&request);
        return 1;
    }

    server_gpus_wait_reason(fit, &request, verdict, &reason);
    if (fit->waiting == NULL)
        fit->waiting = json_object();
    if (fit->waiting != NULL && reason.data != NULL)
        json_object_set_new(fit->waiting, inst->id, json_string(reason.data));
    buf_free(&reason);
    config_gpus_free(&request);
    return 0;
}

void server_gpus_fit_finish(server_gpus_fit_t *fit)
{
    store_t *st = fit->srv->store;
    const char *id;
    json_t *reason;

    json_object_foreach(fit->waiting, id, reason) {
        store_instance_t inst;
        const char *text = json_string_value(reason);

        if (st->ops->instance_get(st, id, &inst) != STORE_OK)
            continue;
        /* Saved only on a change, and without a history entry, because
         * every work poll evaluates it again. */
        if (strcmp(inst.status, "queued") == 0 && inst.agent[0] == '\0' &&
            (inst.status_reason == NULL || strcmp(inst.status_reason, text) != 0)) {
            char *copy = strdup(text);
            if (copy != NULL) {
                free(inst.status_reason);
                inst.status_reason = copy;
                if (st->ops->instance_save(st, &inst) != STORE_OK)
                    log_error(SERVER_LOG, "instance %s: cannot record why it waits: %s", id,
                              store_error(st));
                else
                    log_info(SERVER_LOG, "instance %s: %s", id, text);
            }
        }
        store_instance_clear(&inst);
    }
    json_decref(fit->waiting);
    json_decref(fit->agents);
    fit->waiting = NULL;
    fit->agents = NULL;
}

void server_gpus_released(server_t *srv, const store_instance_t *inst)
{
    size_t i;
    json_t *id;

    if (store_status_is_live(inst->status) || json_array_size(inst->gpus) == 0 ||
        inst->agent[0] == '\0')
        return;
    /* NOTE: a poll the agent sent before it freed the GPUs but that parks
     * only after this report keeps its old free list, so the GPUs wait for
     * the agent's next poll (up to its wait, 25 s). */
    for (server_waiter_t *w = srv->waiters; w != NULL; w = w->next) {
        if (w->kind != SERVER_WAIT_WORK || w->gpus_free == NULL ||
            strcmp(w->agent_name, inst->agent) != 0)
            continue;
        json_array_foreach(inst->gpus, i, id) {
            if (json_is_string(id) && !server_gpus_has(w->gpus_free, json_string_value(id)))
                json_array_append(w->gpus_free, id);
        }
    }
    server_waiters_wake(srv, SERVER_WAIT_WORK);
}

/* ---- Request checks ---- */

int server_gpus_check_ids(const json_t *gpus, api_error_t *err)
{
    size_t i;
    json_t *id;

    json_array_foreach(gpus, i, id) {
        if (!json_is_string(id) || !config_gpus_id_valid(json_string_value(id)))
            return api_fail(err, 400, "bad_request", NULL,
                            "invalid gpus[%zu]: expected a device id, 1-%d characters of "
                            "A-Z a-z 0-9 . _ : / -",
                            i, CONFIG_GPU_ID_MAX);
    }
    return 0;
}

int server_gpus_check_registration(const json_t *body, api_error_t *err)
{
    static const api_field_t gpu_fields[] = {
        {"id", API_JSON_STRING, 1},
        {"uuid", API_JSON_STRING | API_JSON_NULL, 0},
        {"name", API_JSON_STRING | API_JSON_NULL, 0},
        {"mem_total_bytes", API_JSON_NUMBER | API_JSON_NULL, 0},
        {NULL, 0, 0},
    };
    static const api_field_t machine_fields[] = {
        {"hostname", API_JSON_STRING | API_JSON_NULL, 0},
        {"cpu_count", API_JSON_INTEGER | API_JSON_NULL, 0},
        {"mem_total_bytes", API_JSON_NUMBER | API_JSON_NULL, 0},
        {NULL, 0, 0},
    };
    json_t *gpus = json_object_get(body, "gpus"), *machine = json_object_get(body, "machine");
    json_t *gpu, *seen = json_array();
    char where[32];
    size_t i;
    int rc = 0;

    json_array_foreach(gpus, i, gpu) {
        const char *id = json_string_value(json_object_get(gpu, "id"));

        snprintf(where, sizeof(where), "gpus[%zu]", i);
        if ((rc = api_check_fields(err, gpu, gpu_fields, where)) != 0)
            break;
        if (!config_gpus_id_valid(id) || server_gpus_has(seen, id)) {
            rc = api_fail(err, 400, "bad_request", NULL,
                          "invalid gpus[%zu].id: expected a device id not listed before, 1-%d "
                          "characters of A-Z a-z 0-9 . _ : / -",
                          i, CONFIG_GPU_ID_MAX);
            break;
        }
        json_array_append_new(seen, json_string(id));
    }
    json_decref(seen);
    if (rc == 0 && json_is_object(machine))
        rc = api_check_fields(err, machine, machine_fields, "machine");
    return rc;
}
