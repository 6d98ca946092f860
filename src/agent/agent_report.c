/* The agent's calls to the server: registration and instance status. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "util/api_client.h"
#include "util/log.h"

void agent_copy_id(agent_t *agent, char *out, size_t size)
{
    pthread_mutex_lock(&agent->lock);
    snprintf(out, size, "%s", agent->id);
    pthread_mutex_unlock(&agent->lock);
}

/* The registration's "running": the instances whose thread runs here and
 * those whose final status the server has not taken yet. Without them, the
 * server would mark them failed ("agent restarted") while they still run. */
static json_t *agent_register_running(agent_t *agent)
{
    json_t *ids = json_array();
    int rc = ids != NULL ? 0 : -1;

    pthread_mutex_lock(&agent->lock);
    for (agent_instance_t *inst = agent->running; inst != NULL && rc == 0; inst = inst->next)
        rc = json_array_append_new(ids, json_string(inst->id));
    if (rc == 0)
        rc = agent_final_append_pending(agent, ids);
    pthread_mutex_unlock(&agent->lock);

    if (rc != 0) {
        json_decref(ids);
        return NULL;
    }
    return ids;
}

/* Stop the instances listed in the registration response's "stop", which
 * the server ended while this agent was declared lost. */
static void agent_register_stop_ended(agent_t *agent, const json_t *response)
{
    json_t *id;
    size_t i;

    json_array_foreach(json_object_get(response, "stop"), i, id) {
        if (!json_is_string(id))
            continue;
        log_warn("agent", "instance %s: the server ended it while this agent was out of "
                 "contact; stopping it", json_string_value(id));
        agent_poll_stop(agent, json_string_value(id));
    }
}

/* Take the agent id from a registration response. Returns 0 or -1. */
static int agent_register_take_id(agent_t *agent, const json_t *response)
{
    json_t *id = json_object_get(response, "id");
    char text[sizeof(agent->id)];

    if (json_is_string(id))
        snprintf(text, sizeof(text), "%s", json_string_value(id));
    else if (json_is_integer(id))
        snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    else
        return -1;

    pthread_mutex_lock(&agent->lock);
    memcpy(agent->id, text, sizeof(agent->id));
    pthread_mutex_unlock(&agent->lock);
    return 0;
}

/* The registration's "machine": the host name, CPU count and memory size. */
static json_t *agent_register_machine(agent_t *agent)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);

    return json_pack("{s:s, s:o, s:o}", "hostname", agent->hostname, "cpu_count",
                     cpus > 0 ? json_integer(cpus) : json_null(), "mem_total_bytes",
                     pages > 0 && page_size > 0 ? json_integer((json_int_t)pages * page_size)
                                                : json_null());
}

int agent_register(agent_t *agent, long *status, char *err, size_t err_size)
{
    json_t *queues = json_array();
    json_t *running = agent_register_running(agent);
    json_t *body = json_pack("{s:s, s:o, s:s, s:s, s:o, s:o, s:o}", "name", agent->name, "queues",
                             queues, "hostname", agent->hostname, "address",
                             agent->advertise_host, "running", running, "gpus",
                             agent_gpus_inventory_json(agent->gpus), "machine",
                             agent_register_machine(agent));
    api_result_t res;
    int rc = -1;

    *status = 0;
    if (body == NULL) {
        snprintf(err, err_size, "out of memory building the registration");
        return -1;
    }
    for (size_t i = 0; agent->queues[i] != NULL; i++)
        json_array_append_new(queues, json_string(agent->queues[i]));

    if (api_call(agent->server_url, agent->token, "POST", "/api/v1/agents", body, 10000, &res) != 0) {
        snprintf(err, err_size, "%s", res.error);
        goto out;
    }
    *status = res.status;
    if (res.status != 200 && res.status != 201) {
        snprintf(err, err_size, "registration rejected with HTTP %ld: %s", res.status, res.error);
        goto out;
    }
    if (agent_register_take_id(agent, res.body) != 0) {
        snprintf(err, err_size, "registration response from %s has no agent id", agent->server_url);
        goto out;
    }
    agent_register_stop_ended(agent, res.body);
    rc = 0;

out:
    api_result_free(&res);
    json_decref(body);
    return rc;
}

int agent_report_send(agent_t *agent, const char *instance_id, const char *status,
                      const char *reason, const char *upstream, int exit_code)
{
    return agent_report_send_gpus(agent, instance_id, status, reason, upstream, exit_code, NULL);
}

int agent_report_send_gpus(agent_t *agent, const char *instance_id, const char *status,
                           const char *reason, const char *upstream, int exit_code,
                           const json_t *gpus)
{
    json_t *body = json_pack("{s:s}", "status", status);
    char path[160];
    api_result_t res;
    int rc;

    if (body == NULL)
        return 1;
    if (reason != NULL)
        json_object_set_new(body, "reason", json_string(reason));
    if (upstream != NULL)
        json_object_set_new(body, "upstream", json_string(upstream));
    if (exit_code >= 0)
        json_object_set_new(body, "exit_code", json_integer(exit_code));
    if (gpus != NULL)
        json_object_set(body, "gpus", (json_t *)gpus);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", instance_id);

    if (api_call(agent->server_url, agent->token, "POST", path, body, 5000, &res) != 0) {
        log_warn("agent", "instance %s: cannot report status %s: %s", instance_id, status, res.error);
        rc = 1;
    } else if (res.status >= 500) {
        log_warn("agent", "instance %s: server failed on status %s: HTTP %ld: %s", instance_id,
                 status, res.status, res.error);
        rc = 1;
    } else if (res.status >= 300) {
        log_error("agent", "instance %s: server rejected status %s: HTTP %ld: %s", instance_id,
                  status, res.status, res.error);
        rc = -1;
    } else {
        rc = 0;
    }
    api_result_free(&res);
    json_decref(body);
    return rc;
}

void agent_report_status(agent_t *agent, const char *instance_id, const char *status,
                         const char *reason, const char *upstream, int exit_code)
{
    agent_report_status_gpus(agent, instance_id, status, reason, upstream, exit_code, NULL);
}

void agent_report_status_gpus(agent_t *agent, const char *instance_id, const char *status,
                              const char *reason, const char *upstream, int exit_code,
                              const json_t *gpus)
{
    for (int attempt = 1; attempt <= 3; attempt++) {
        if (agent_report_send_gpus(agent, instance_id, status, reason, upstream, exit_code,
                                   gpus) <= 0)
            break;
        if (attempt == 3 || atomic_load(&agent->stopping))
            break;
        log_info("agent", "instance %s: retrying status %s in 1 s (attempt %d of 3)", instance_id,
                 status, attempt + 1);
        agent_wait(agent, 1000);
    }
}
