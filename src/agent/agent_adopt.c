/* Adoption after an agent restart: the containers an earlier run of this
 * agent started (labelled with its key) keep running through the restart.
 * They are listed before the registration, so the server keeps their
 * instances, and attached after it, with their leases fetched again so
 * that their console lines are masked. Process instances are not adopted:
 * agent_state kills what a crashed run left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "util/api_client.h"
#include "util/log.h"

#define AGENT_ADOPT_LEASE_ATTEMPTS 3

/* Hold the GPUs the container was given, so that no new instance gets them. */
static void agent_adopt_hold_gpus(agent_t *agent, agent_instance_t *inst, const char *gpu_ids)
{
    json_t *ids = json_array();
    char reason[512], *copy = strdup(gpu_ids), *save = NULL;

    if (ids == NULL || copy == NULL)
        goto out;
    for (char *id = strtok_r(copy, ",", &save); id != NULL; id = strtok_r(NULL, ",", &save))
        json_array_append_new(ids, json_string(id));
    if (json_array_size(ids) > 0 &&
        agent_gpus_allocate(agent->gpus, inst->id, agent->name, ids, &inst->gpu_ids, reason,
                            sizeof(reason)) != 0)
        log_warn("agent", "instance %s: its container uses GPUs %s, which this agent cannot "
                 "mark as taken: %s", inst->id, gpu_ids, reason);

out:
    json_decref(ids);
    free(copy);
}

/* Add an instance for a found container to agent->running, with a lease
 * that holds only its id and runtime until the real one is fetched. */
static void agent_adopt_add(agent_t *agent, const agent_runtime_t *runtime,
                            const agent_runtime_found_t *found)
{
    json_t *lease = json_pack("{s:s, s:{s:s}}", "id", found->instance_id, "config", "runtime",
                              runtime->name);
    agent_instance_t *inst = lease != NULL ? agent_instance_new(agent, lease) : NULL;

    json_decref(lease);
    if (inst == NULL) {
        log_error("agent", "instance %s: out of memory adopting container %.12s; it keeps "
                  "running unwatched", found->instance_id, found->ref);
        return;
    }
    snprintf(inst->adopt_ref, sizeof(inst->adopt_ref), "%s", found->ref);
    inst->lease_missing = 1;
    agent_adopt_hold_gpus(agent, inst, found->gpu_ids);

    pthread_mutex_lock(&agent->lock);
    inst->next = agent->running;
    agent->running = inst;
    pthread_mutex_unlock(&agent->lock);
    log_info("agent", "instance %s: its %s %.12s from an earlier run of this agent is still "
             "there; adopting it", inst->id, runtime->noun, found->ref);
}

void agent_adopt_find(agent_t *agent)
{
    const agent_runtime_t *runtime = &agent_runtime_docker;
    agent_runtime_found_t *found = NULL;
    size_t count = 0;
    char err[512];

    if (runtime->find_owned(agent->key, agent->docker_host, agent->gpus, &found, &count, err,
                            sizeof(err)) != 0) {
        log_info("agent", "no containers to adopt: %s", err);
        return;
    }
    for (size_t i = 0; i < count; i++)
        agent_adopt_add(agent, runtime, &found[i]);
    free(found);
}

/* Fetch the lease of inst again. Returns 0, 1 when the server no longer
 * runs the instance here (it ended, or another agent has it), or -1 when
 * the server could not be asked. */
static int agent_adopt_fetch_lease(agent_t *agent, agent_instance_t *inst)
{
    char path[256], id[sizeof(agent->id)];
    api_result_t res;
    int rc = -1;

    agent_copy_id(agent, id, sizeof(id));
    snprintf(path, sizeof(path), "/api/v1/apps/%s/lease?agent=%s", inst->id, id);
    for (int attempt = 1; attempt <= AGENT_ADOPT_LEASE_ATTEMPTS && rc < 0; attempt++) {
        if (attempt > 1)
            agent_wait(agent, 1000);
        if (api_call(agent->server_url, agent->token, "GET", path, NULL, 10000, &res) == 0 &&
            res.status == 200 && agent_instance_set_lease(inst, res.body) == 0) {
            const char *status = json_string_value(json_object_get(res.body, "status"));
            inst->lease_missing = 0;
            inst->ready = status != NULL && (strcmp(status, "active") == 0 ||
                                             strcmp(status, "idle") == 0);
            rc = 0;
        } else if (res.status == 404 || res.status == 409) {
            log_warn("agent", "instance %s: the server no longer runs it on this agent (%s); "
                     "stopping its container", inst->id, res.error);
            rc = 1;
        } else if (attempt == AGENT_ADOPT_LEASE_ATTEMPTS) {
            log_error("agent", "instance %s: cannot fetch its lease again (%s); stopping its "
                      "container, because its console could not be masked", inst->id,
                      res.error[0] != '\0' ? res.error : "no lease in the response");
        }
        api_result_free(&res);
    }
    return rc;
}

/* Take the instances that agent_adopt_find added: the only ones in
 * agent->running before the work poll starts. */
static agent_instance_t *agent_adopt_take(agent_t *agent)
{
    agent_instance_t *list;

    pthread_mutex_lock(&agent->lock);
    list = agent->running;
    agent->running = NULL;
    pthread_mutex_unlock(&agent->lock);
    return list;
}

void agent_adopt_launch(agent_t *agent)
{
    agent_instance_t *list = agent_adopt_take(agent);

    while (list != NULL) {
        agent_instance_t *inst = list;
        list = inst->next;

        if (agent_adopt_fetch_lease(agent, inst) != 0)
            agent_instance_request_stop(inst, 0);

        pthread_mutex_lock(&agent->lock);
        inst->next = agent->running;
        agent->running = inst;
        int launched = agent_instance_launch(inst) == 0;
        if (!launched)
            agent->running = inst->next;
        pthread_mutex_unlock(&agent->lock);
        if (!launched) {
            log_error("agent", "instance %s: cannot create its thread; its container keeps "
                      "running unwatched until the agent restarts", inst->id);
            agent_gpus_release(agent->gpus, inst->id);
            agent_instance_free(inst);
        }
    }
}

void agent_adopt_forget(agent_t *agent)
{
    agent_instance_t *list = agent_adopt_take(agent);

    while (list != NULL) {
        agent_instance_t *next = list->next;
        agent_gpus_release(agent->gpus, list->id);
        agent_instance_free(list);
        list = next;
    }
}
