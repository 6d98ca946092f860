/* The agent's calls to the server: registration and instance status. */
#include <stdio.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "util/api_client.h"
#include "util/log.h"

int agent_register(agent_t *agent, long *status, char *err, size_t err_size)
{
    json_t *queues = json_array();
    json_t *body = json_pack("{s:s, s:o, s:s, s:s, s:[]}", "name", agent->name, "queues", queues,
                             "hostname", agent->hostname, "address", agent->advertise_host,
                             "running");
    api_result_t res;
    json_t *id;
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

    id = json_object_get(res.body, "id");
    if (json_is_string(id))
        snprintf(agent->id, sizeof(agent->id), "%s", json_string_value(id));
    else if (json_is_integer(id))
        snprintf(agent->id, sizeof(agent->id), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    else {
        snprintf(err, err_size, "registration response from %s has no agent id", agent->server_url);
        goto out;
    }
    rc = 0;

out:
    api_result_free(&res);
    json_decref(body);
    return rc;
}

/* Send one status report; returns 0 when the server took it, 1 to retry
 * (no response or a server error), -1 when it was rejected. */
static int agent_report_once(agent_t *agent, const char *path, json_t *body, const char *instance_id,
                             const char *status)
{
    api_result_t res;
    int rc;

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
    return rc;
}

void agent_report_status(agent_t *agent, const char *instance_id, const char *status,
                         const char *reason, const char *upstream, int exit_code)
{
    json_t *body = json_pack("{s:s}", "status", status);
    char path[160];

    if (body == NULL)
        return;
    if (reason != NULL)
        json_object_set_new(body, "reason", json_string(reason));
    if (upstream != NULL)
        json_object_set_new(body, "upstream", json_string(upstream));
    if (exit_code >= 0)
        json_object_set_new(body, "exit_code", json_integer(exit_code));
    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", instance_id);

    /* A lost final status would leave the instance running in the store:
     * retry a few times, unless the agent is on its way out. */
    for (int attempt = 1; attempt <= 3; attempt++) {
        if (agent_report_once(agent, path, body, instance_id, status) <= 0)
            break;
        if (attempt == 3 || atomic_load(&agent->stopping))
            break;
        log_info("agent", "instance %s: retrying status %s in 1 s (attempt %d of 3)", instance_id,
                 status, attempt + 1);
        agent_wait(agent, 1000);
    }
    json_decref(body);
}
