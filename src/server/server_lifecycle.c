/* The instance status machine: queued -> loading -> active <-> idle ->
 * stopping -> stopped | failed, with time stamps, history and console lines,
 * and the record of stops already handed to agents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"
#include "util/clock.h"
#include "util/log.h"

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
        server_forget_in_flight(srv, inst->id);
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
    return server_transition(srv, inst, "active", "ready");
}

/* 409 unless a report of status may move inst on from its status: loading
 * only from queued or loading, ready only from loading, stopped and failed
 * from any live status. A stopping instance also takes a late loading or
 * ready report, which does not undo the stop. */
static int server_check_report(const store_instance_t *inst, const char *status,
                               api_error_t *err)
{
    const char *from = inst->status;
    int stopping = strcmp(from, "stopping") == 0;
    const char *allowed = NULL;

    if (strcmp(status, "loading") == 0 && strcmp(from, "queued") != 0 &&
        strcmp(from, "loading") != 0 && !stopping)
        allowed = "queued or loading";
    else if (strcmp(status, "ready") == 0 && strcmp(from, "loading") != 0 && !stopping)
        allowed = "loading";
    if (allowed == NULL)
        return 0;
    api_fail(err, 409, "conflict", NULL,
             "instance %s is %s; a \"%s\" report is accepted only while it is %s", inst->id,
             from, status, allowed);
    return -1;
}

/* Record a late loading or ready report on a stopping instance (start and
 * ready times, upstream) without leaving `stopping`. */
static int server_report_while_stopping(server_t *srv, store_instance_t *inst,
                                        const char *status)
{
    int64_t now = clock_wall_ms();

    if (strcmp(status, "ready") == 0 && inst->ready_at == 0) {
        inst->ready_at = now;
        if (inst->last_activity_at < now)
            inst->last_activity_at = now;
    }
    if (strcmp(status, "loading") == 0 && inst->started_at == 0)
        inst->started_at = now;
    return srv->store->ops->instance_save(srv->store, inst);
}

int server_apply_report(server_t *srv, store_instance_t *inst, const char *status,
                        const char *reason, const char *upstream, int has_exit_code,
                        int exit_code, api_error_t *err)
{
    int final = strcmp(status, "stopped") == 0 || strcmp(status, "failed") == 0;

    /* The server may have ended it first (a lost agent, a restart), and
     * the agent's own stop report then arrives late: it changes nothing. */
    if (!store_status_is_live(inst->status) && final)
        return STORE_OK;
    if (!store_status_is_live(inst->status)) {
        api_fail(err, 409, "conflict", NULL,
                 "instance %s has already ended (%s); a \"%s\" report cannot apply", inst->id,
                 inst->status, status);
        return STORE_CONFLICT;
    }
    if (server_check_report(inst, status, err) != 0)
        return STORE_CONFLICT;

    if (upstream != NULL)
        snprintf(inst->upstream, sizeof(inst->upstream), "%s", upstream);
    if (has_exit_code) {
        inst->has_exit_code = 1;
        inst->exit_code = exit_code;
    }

    if (!final && strcmp(inst->status, "stopping") == 0)
        return server_report_while_stopping(srv, inst, status);
    if (strcmp(status, "loading") == 0)
        return server_transition(srv, inst, "loading", reason);
    if (strcmp(status, "ready") == 0)
        return server_report_ready(srv, inst);
    if (strcmp(status, "stopped") == 0) {
        const char *stop_reason =
            inst->stop_requested && inst->stop_reason ? inst->stop_reason : reason;
        return server_transition(srv, inst, "stopped", stop_reason ? stop_reason : "exited");
    }
    return server_transition(srv, inst, "failed", reason ? reason : "failed");
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
