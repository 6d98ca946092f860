/* The work long poll: takes leases and stop requests from the server. */
#include <stdio.h>
#include <string.h>

#include "util/api_client.h"
#include "agent/agent_internal.h"
#include "util/clock.h"
#include "util/log.h"

#define AGENT_POLL_WAIT_S 25
#define AGENT_POLL_TIMEOUT_MS ((AGENT_POLL_WAIT_S + 10) * 1000L)
#define AGENT_POLL_BACKOFF_MIN_MS 1000
#define AGENT_POLL_BACKOFF_MAX_MS 5000
#define AGENT_POLL_WARN_EVERY_MS 30000

static void agent_poll_start_lease(agent_t *agent, json_t *lease)
{
    const char *id = json_string_value(json_object_get(lease, "id"));
    agent_instance_t *inst;

    if (id == NULL || id[0] == '\0' || strlen(id) >= sizeof(inst->id) ||
        !json_is_object(json_object_get(lease, "config"))) {
        log_error("agent", "ignoring a lease without an instance id or configuration");
        return;
    }

    pthread_mutex_lock(&agent->lock);
    int known = agent_find_running(agent, id) != NULL;
    pthread_mutex_unlock(&agent->lock);
    if (known) {
        log_warn("agent", "instance %s: leased again while it runs here; ignoring the lease", id);
        return;
    }

    /* Taken here, on the poll thread, so that the next poll's free_gpus
     * already leaves these GPUs out. */
    char reason[512];
    char **gpu_ids = NULL;
    const json_t *request = json_object_get(json_object_get(lease, "config"), "gpus");
    if (agent_gpus_allocate(agent->gpus, id, agent->name, request, &gpu_ids, reason,
                            sizeof(reason)) != 0) {
        log_error("agent", "instance %s: cannot start: %s", id, reason);
        agent_final_record(agent, id, "failed", reason, -1);
        return;
    }

    log_info("agent", "instance %s: leased; starting it", id);
    if ((inst = agent_instance_new(agent, lease)) == NULL) {
        log_error("agent", "instance %s: out of memory taking the lease", id);
        agent_gpus_release(agent->gpus, id);
        agent_gpus_ids_free(gpu_ids);
        agent_final_record(agent, id, "failed", "the agent ran out of memory", -1);
        return;
    }
    inst->gpu_ids = gpu_ids;

    pthread_mutex_lock(&agent->lock);
    inst->next = agent->running;
    agent->running = inst;
    if (agent_instance_launch(inst) != 0) {
        agent->running = inst->next;
        pthread_mutex_unlock(&agent->lock);
        log_error("agent", "instance %s: cannot create its thread", id);
        agent_gpus_release(agent->gpus, id);
        agent_instance_free(inst);
        agent_final_record(agent, id, "failed", "the agent could not create a thread", -1);
        return;
    }
    pthread_mutex_unlock(&agent->lock);
}

/* Stop requests repeat on every poll until the server has the instance's
 * final status. A running instance is asked to stop (once: later requests
 * do nothing), an ended one has its final status sent again, because the
 * server evidently lost it. */
void agent_poll_stop(agent_t *agent, const char *id)
{
    agent_instance_t *inst;
    int unknown = 0;

    pthread_mutex_lock(&agent->lock);
    if ((inst = agent_find_running(agent, id)) != NULL)
        agent_instance_request_stop(inst, 0);
    else if (!agent_final_resend(agent, id))
        unknown = 1;
    pthread_mutex_unlock(&agent->lock);

    /* Not running here because the agent restarted or it never started.
     * Nothing is left to stop, so report it stopped and the server closes it. */
    if (unknown) {
        log_warn("agent", "instance %s: stop requested but it does not run here; reporting it "
                 "stopped", id);
        agent_final_record(agent, id, "stopped", NULL, -1);
    }
}

static void agent_poll_handle(agent_t *agent, json_t *work)
{
    json_t *lease = json_object_get(work, "lease");
    json_t *stops = json_object_get(work, "stop");
    size_t i;
    json_t *id;

    if (json_is_object(lease))
        agent_poll_start_lease(agent, lease);
    json_array_foreach(stops, i, id) {
        if (json_is_string(id))
            agent_poll_stop(agent, json_string_value(id));
    }
}

typedef struct {
    int backoff_ms;
    int failures;
    int64_t last_warn_ms;
} agent_poll_state_t;

/* Log a failed poll (rate-limited) and wait before the next. */
static void agent_poll_back_off(agent_t *agent, agent_poll_state_t *state, const char *error)
{
    int64_t now = clock_mono_ms();

    state->failures++;
    if (state->last_warn_ms == 0 || now - state->last_warn_ms >= AGENT_POLL_WARN_EVERY_MS) {
        log_warn("agent", "agent %s: work poll failed (%d in a row): %s; retrying in %d ms",
                 agent->id, state->failures, error, state->backoff_ms);
        state->last_warn_ms = now;
    }
    agent_wait(agent, state->backoff_ms);
    state->backoff_ms *= 2;
    if (state->backoff_ms > AGENT_POLL_BACKOFF_MAX_MS)
        state->backoff_ms = AGENT_POLL_BACKOFF_MAX_MS;
}

static void agent_poll_reregister(agent_t *agent)
{
    char err[512];
    long status;

    log_warn("agent", "agent %s: the server does not know this agent; registering again", agent->id);
    if (agent_register(agent, &status, err, sizeof(err)) != 0)
        log_error("agent", "registering again failed: %s", err);
    else
        log_info("agent", "registered again as agent %s", agent->id);
}

void *agent_poll_run(void *arg)
{
    agent_t *agent = arg;
    agent_poll_state_t state = {AGENT_POLL_BACKOFF_MIN_MS, 0, 0};
    buf_t path = BUF_INIT;
    api_result_t res;

    while (!atomic_load(&agent->stopping)) {
        agent_reap_finished(agent);
        buf_reset(&path);
        buf_printf(&path, "/api/v1/agents/%s/work?wait=%d", agent->id, AGENT_POLL_WAIT_S);
        /* Without an inventory the parameter is left out, which the server
         * reads as no GPUs. */
        if (agent_gpus_count(agent->gpus) > 0) {
            buf_append_str(&path, "&free_gpus=");
            agent_gpus_free_ids(agent->gpus, &path);
        }
        if (path.data == NULL) {
            agent_poll_back_off(agent, &state, "out of memory building the work poll");
            continue;
        }
        int rc = api_call_cancellable(agent->server_url, agent->token, "GET", path.data, NULL,
                                      AGENT_POLL_TIMEOUT_MS, &agent->stopping, &res);
        if (atomic_load(&agent->stopping)) {
            api_result_free(&res);
            break;
        }

        if (rc != 0 || res.status >= 500) {
            agent_poll_back_off(agent, &state, res.error);
        } else if (res.status == 404) {
            agent_poll_reregister(agent);
            agent_wait(agent, AGENT_POLL_BACKOFF_MIN_MS);
        } else if (res.status != 200) {
            state.backoff_ms = AGENT_POLL_BACKOFF_MAX_MS;
            agent_poll_back_off(agent, &state, res.error);
        } else {
            if (state.failures > 0)
                log_info("agent", "agent %s: work poll works again after %d failures", agent->id,
                         state.failures);
            state.backoff_ms = AGENT_POLL_BACKOFF_MIN_MS;
            state.failures = 0;
            state.last_warn_ms = 0;
            agent_poll_handle(agent, res.body);
        }
        api_result_free(&res);
    }
    buf_free(&path);
    return NULL;
}
