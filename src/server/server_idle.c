/* The idle checker: a timer on the server's loop that flips instances
 * between active and idle, stops those past their idle time limit, fails
 * the instances of lost agents, and downsamples and prunes old metrics. */
#include <stdio.h>
#include <string.h>

#include "server/server_internal.h"
#include "util/clock.h"
#include "util/log.h"

/* How often the tick downsamples and prunes, and how often it looks for
 * lost agents, in ms. */
#define SERVER_PRUNE_EVERY_MS (3600LL * 1000)
#define SERVER_AGENT_CHECK_EVERY_MS 1000

/* Flip active/idle and stop instances past their idle time limit. */
static void server_check_idle(server_t *srv, store_instance_t *inst, int64_t now,
                              int64_t now_mono)
{
    int is_active = strcmp(inst->status, "active") == 0;
    int is_idle = strcmp(inst->status, "idle") == 0;

    if (!is_active && !is_idle)
        return;

    /* A request in flight makes the instance active and is never cut short
     * by an idle stop. The idle clock restarts when the gateway reports the
     * request's end as the last activity. */
    int busy = server_in_flight(srv, inst->id, now_mono) > 0;
    int64_t since = inst->last_activity_at ? inst->last_activity_at : inst->ready_at;
    int64_t idle_ms = now - since;
    json_t *limit = json_object_get(inst->config, "idle_time_limit_hours");
    double limit_ms = json_is_number(limit) ? json_number_value(limit) * 3600.0 * 1000.0 : 0;

    if (!busy && limit_ms > 0 && (double)idle_ms >= limit_ms) {
        server_request_stop(srv, inst, "idle time limit reached");
        return;
    }
    if (is_active && !busy && idle_ms >= srv->active_window_ms)
        server_transition(srv, inst, "idle", NULL);
    else if (is_idle && (busy || idle_ms < srv->active_window_ms))
        server_transition(srv, inst, "active", NULL);
}

/* True when the agent called name has not polled for work within the
 * timeout. agents contains the agent rows (name, last_seen_at). */
static int server_agent_lost(server_t *srv, json_t *agents, const char *name, int64_t now)
{
    int64_t seen = 0;
    json_t *row;
    size_t i;

    if (server_agent_is_polling(srv, name))
        return 0;
    json_array_foreach(agents, i, row) {
        if (strcmp(json_string_value(json_object_get(row, "name")), name) == 0)
            seen = json_integer_value(json_object_get(row, "last_seen_at"));
    }
    /* After a server restart every agent gets the whole timeout to poll
     * again, however long the server was down. */
    if (seen < srv->started_at)
        seen = srv->started_at;
    return now - seen >= srv->agent_timeout_ms;
}

void server_agent_mark_lost(server_t *srv, const char *name)
{
    if (srv->lost_agents == NULL && (srv->lost_agents = json_object()) == NULL)
        return;
    if (json_object_get(srv->lost_agents, name) != NULL)
        return;
    json_object_set_new(srv->lost_agents, name, json_true());
    log_warn(SERVER_LOG, "agent %s declared lost; its next work poll is asked to register again",
             name);
}

int server_agent_was_lost(const server_t *srv, const char *name)
{
    return srv->lost_agents != NULL && json_object_get(srv->lost_agents, name) != NULL;
}

void server_agent_clear_lost(server_t *srv, const char *name)
{
    if (srv->lost_agents != NULL)
        json_object_del(srv->lost_agents, name);
}

/* A queued instance leased to a lost agent never started: lease it again. */
static void server_requeue(server_t *srv, store_instance_t *inst)
{
    log_warn(SERVER_LOG, "instance %s: agent %s was lost before starting it; queueing it again",
             inst->id, inst->agent);
    inst->agent[0] = '\0';
    if (srv->store->ops->instance_save(srv->store, inst) != STORE_OK) {
        log_error(SERVER_LOG, "cannot queue instance %s again: %s", inst->id,
                  store_error(srv->store));
        return;
    }
    server_waiters_wake(srv, SERVER_WAIT_WORK);
}

void server_check_agents(server_t *srv, int64_t now)
{
    store_instance_t *list = NULL;
    size_t count = 0;
    json_t *agents = NULL;
    char reason[96];

    if (srv->store->ops->instance_list(srv->store, STORE_INSTANCES_LIVE, NULL, &list, &count) !=
        STORE_OK) {
        log_error(SERVER_LOG, "agent checker cannot list instances: %s", store_error(srv->store));
        return;
    }
    if (count == 0)
        goto out;
    if (srv->store->ops->agent_list(srv->store, &agents) != STORE_OK) {
        log_error(SERVER_LOG, "agent checker cannot list agents: %s", store_error(srv->store));
        goto out;
    }

    snprintf(reason, sizeof(reason), "agent lost (no heartbeat for %lld s)",
             (long long)(srv->agent_timeout_ms / 1000));
    for (size_t i = 0; i < count; i++) {
        store_instance_t *inst = &list[i];
        if (inst->agent[0] == '\0' || !server_agent_lost(srv, agents, inst->agent, now))
            continue;
        if (strcmp(inst->status, "queued") == 0) {
            server_requeue(srv, inst);
            continue;
        }
        server_transition(srv, inst, "failed", reason);
        server_agent_mark_lost(srv, inst->agent);
    }

out:
    json_decref(agents);
    store_instances_free(list, count);
}

/* Downsample old machine samples, then delete what is past retention. */
static void server_prune(server_t *srv, int64_t now)
{
    store_t *st = srv->store;

    /* NOTE: request records are kept at full resolution until the retention
     * deletes them; only machine, instance and GPU samples are downsampled. */
    if (st->ops->samples_downsample(st, now - srv->downsample_after_ms,
                                    SERVER_DOWNSAMPLE_BUCKET_MS) != STORE_OK)
        log_error(SERVER_LOG, "cannot downsample old machine samples: %s", store_error(st));
    if (st->ops->prune(st, now - srv->retention_ms) != STORE_OK)
        log_error(SERVER_LOG, "cannot prune old records: %s", store_error(st));
}

void server_idle_tick(uv_timer_t *timer)
{
    server_t *srv = timer->data;
    store_instance_t *list = NULL;
    size_t count = 0;
    int64_t now = clock_wall_ms(), now_mono = clock_mono_ms();

    server_expire_in_flight(srv, now_mono);
    if (srv->store->ops->instance_list(srv->store, STORE_INSTANCES_LIVE, NULL, &list, &count) !=
        STORE_OK) {
        log_error(SERVER_LOG, "idle checker cannot list instances: %s", store_error(srv->store));
        return;
    }
    for (size_t i = 0; i < count; i++)
        server_check_idle(srv, &list[i], now, now_mono);
    store_instances_free(list, count);

    if (now - srv->last_agent_check_ms >= SERVER_AGENT_CHECK_EVERY_MS) {
        srv->last_agent_check_ms = now;
        server_check_agents(srv, now);
    }
    if (now - srv->last_prune_ms >= SERVER_PRUNE_EVERY_MS) {
        srv->last_prune_ms = now;
        server_prune(srv, now);
    }
}
