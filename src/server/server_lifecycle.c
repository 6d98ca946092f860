/* The instance status machine: queued -> loading -> active <-> idle ->
 * stopping -> stopped | failed, with time stamps, history and console lines,
 * and the idle checker that drives active/idle and idle stops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"
#include "util/clock.h"
#include "util/log.h"

/* How often the idle tick prunes old records and samples, in ms. */
#define SERVER_PRUNE_EVERY_MS (3600LL * 1000)

static int server_set_text(char **field, const char *text)
{
    char *copy = NULL;

    if (text != NULL && (copy = strdup(text)) == NULL)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

int server_transition(server_t *srv, store_instance_t *inst, const char *status,
                      const char *reason)
{
    int64_t now = clock_wall_ms();
    char line[1200];

    if (server_set_text(&inst->status_reason, reason) != 0)
        return STORE_ERROR;
    snprintf(inst->status, sizeof(inst->status), "%s", status);
    if (strcmp(status, "loading") == 0 && inst->started_at == 0)
        inst->started_at = now;
    if (!store_status_is_live(status)) {
        inst->stopped_at = now;
        server_stop_forget(srv, inst->id);
        server_set_in_flight(srv, inst->id, 0);
    }

    if (reason != NULL)
        snprintf(line, sizeof(line), "status: %s (%s)", status, reason);
    else
        snprintf(line, sizeof(line), "status: %s", status);

    int rc = srv->store->ops->instance_transition(srv->store, inst, now, line, srv->log_cap);
    if (rc != STORE_OK) {
        log_error(SERVER_LOG, "instance %s: cannot record status %s: %s", inst->id, status,
                  store_error(srv->store));
        return rc;
    }
    log_info(SERVER_LOG, "instance %s: %s", inst->id, line);
    server_state_changed(srv);
    return STORE_OK;
}

int server_request_stop(server_t *srv, store_instance_t *inst, const char *reason)
{
    if (!store_status_is_live(inst->status) || strcmp(inst->status, "stopping") == 0)
        return STORE_OK;

    /* Nothing runs yet: no agent will report the stop, so record it now. */
    if (strcmp(inst->status, "queued") == 0 && inst->agent[0] == '\0') {
        inst->stop_requested = 1;
        if (server_set_text(&inst->stop_reason, reason) != 0)
            return STORE_ERROR;
        return server_transition(srv, inst, "stopped", reason);
    }

    inst->stop_requested = 1;
    if (server_set_text(&inst->stop_reason, reason) != 0)
        return STORE_ERROR;
    int rc = server_transition(srv, inst, "stopping", reason);
    if (rc == STORE_OK)
        server_waiters_wake(srv, SERVER_WAIT_WORK);
    return rc;
}

static int server_report_ready(server_t *srv, store_instance_t *inst)
{
    int64_t now = clock_wall_ms();

    inst->ready_at = now;
    if (inst->last_activity_at < now)
        inst->last_activity_at = now;
    /* A stop requested while loading stays in force. */
    if (inst->stop_requested)
        return server_transition(srv, inst, "stopping", inst->stop_reason);
    return server_transition(srv, inst, "active", "ready");
}

int server_apply_report(server_t *srv, store_instance_t *inst, const char *status,
                        const char *reason, const char *upstream, int has_exit_code,
                        int exit_code, api_error_t *err)
{
    if (!store_status_is_live(inst->status))
        return STORE_OK;
    if (upstream != NULL)
        snprintf(inst->upstream, sizeof(inst->upstream), "%s", upstream);
    if (has_exit_code) {
        inst->has_exit_code = 1;
        inst->exit_code = exit_code;
    }

    if (strcmp(status, "loading") == 0) {
        if (inst->stop_requested)
            return server_transition(srv, inst, "stopping", inst->stop_reason);
        return server_transition(srv, inst, "loading", reason);
    }
    if (strcmp(status, "ready") == 0)
        return server_report_ready(srv, inst);
    if (strcmp(status, "stopped") == 0) {
        const char *stop_reason =
            inst->stop_requested && inst->stop_reason ? inst->stop_reason : reason;
        return server_transition(srv, inst, "stopped", stop_reason ? stop_reason : "exited");
    }
    if (strcmp(status, "failed") == 0)
        return server_transition(srv, inst, "failed", reason ? reason : "failed");

    api_fail(err, 400, "bad_request", NULL,
             "invalid status '%s': expected loading, ready, stopped or failed", status);
    return STORE_CONFLICT;
}

/* Flip active/idle and stop instances past their idle time limit. */
static void server_check_idle(server_t *srv, store_instance_t *inst, int64_t now)
{
    int is_active = strcmp(inst->status, "active") == 0;
    int is_idle = strcmp(inst->status, "idle") == 0;

    if ((!is_active && !is_idle) || server_in_flight(srv, inst->id) > 0)
        return;

    int64_t since = inst->last_activity_at ? inst->last_activity_at : inst->ready_at;
    int64_t idle_ms = now - since;
    json_t *limit = json_object_get(inst->config, "idle_time_limit_hours");
    double limit_ms = json_is_number(limit) ? json_number_value(limit) * 3600.0 * 1000.0 : 0;

    if (limit_ms > 0 && (double)idle_ms >= limit_ms) {
        server_request_stop(srv, inst, "idle time limit reached");
        return;
    }
    if (is_active && idle_ms >= srv->active_window_ms)
        server_transition(srv, inst, "idle", NULL);
    else if (is_idle && idle_ms < srv->active_window_ms)
        server_transition(srv, inst, "active", NULL);
}

void server_idle_tick(uv_timer_t *timer)
{
    server_t *srv = timer->data;
    store_instance_t *list = NULL;
    size_t count = 0;
    int64_t now = clock_wall_ms();

    if (srv->store->ops->instance_list(srv->store, STORE_INSTANCES_LIVE, NULL, &list, &count) !=
        STORE_OK) {
        log_error(SERVER_LOG, "idle checker cannot list instances: %s", store_error(srv->store));
        return;
    }
    for (size_t i = 0; i < count; i++)
        server_check_idle(srv, &list[i], now);
    store_instances_free(list, count);

    if (now - srv->last_prune_ms >= SERVER_PRUNE_EVERY_MS) {
        srv->last_prune_ms = now;
        if (srv->store->ops->prune(srv->store, now - SERVER_RETENTION_MS) != STORE_OK)
            log_error(SERVER_LOG, "cannot prune old records: %s", store_error(srv->store));
    }
}

void server_set_in_flight(server_t *srv, const char *instance_id, int64_t in_flight)
{
    for (size_t i = 0; i < srv->activity_count; i++) {
        if (strcmp(srv->activity[i].instance_id, instance_id) != 0)
            continue;
        if (in_flight > 0) {
            srv->activity[i].in_flight = in_flight;
        } else {
            srv->activity[i] = srv->activity[srv->activity_count - 1];
            srv->activity_count--;
        }
        return;
    }
    if (in_flight <= 0)
        return;
    if (srv->activity_count == srv->activity_cap) {
        size_t cap = srv->activity_cap ? srv->activity_cap * 2 : 16;
        server_activity_t *grown = realloc(srv->activity, cap * sizeof(*grown));
        if (grown == NULL) {
            log_error(SERVER_LOG, "out of memory tracking in-flight requests of %s",
                      instance_id);
            return;
        }
        srv->activity = grown;
        srv->activity_cap = cap;
    }
    server_activity_t *slot = &srv->activity[srv->activity_count++];
    snprintf(slot->instance_id, sizeof(slot->instance_id), "%s", instance_id);
    slot->in_flight = in_flight;
}

int64_t server_in_flight(const server_t *srv, const char *instance_id)
{
    for (size_t i = 0; i < srv->activity_count; i++) {
        if (strcmp(srv->activity[i].instance_id, instance_id) == 0)
            return srv->activity[i].in_flight;
    }
    return 0;
}

int server_stop_was_sent(const server_t *srv, const char *instance_id)
{
    for (size_t i = 0; i < srv->stops_sent_count; i++) {
        if (strcmp(srv->stops_sent[i], instance_id) == 0)
            return 1;
    }
    return 0;
}

void server_stop_mark_sent(server_t *srv, const char *instance_id)
{
    if (server_stop_was_sent(srv, instance_id))
        return;
    if (srv->stops_sent_count == srv->stops_sent_cap) {
        size_t cap = srv->stops_sent_cap ? srv->stops_sent_cap * 2 : 16;
        char(*grown)[33] = realloc(srv->stops_sent, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        srv->stops_sent = grown;
        srv->stops_sent_cap = cap;
    }
    snprintf(srv->stops_sent[srv->stops_sent_count++], 33, "%s", instance_id);
}

void server_stop_forget(server_t *srv, const char *instance_id)
{
    for (size_t i = 0; i < srv->stops_sent_count; i++) {
        if (strcmp(srv->stops_sent[i], instance_id) == 0) {
            memcpy(srv->stops_sent[i], srv->stops_sent[srv->stops_sent_count - 1], 33);
            srv->stops_sent_count--;
            return;
        }
    }
}
