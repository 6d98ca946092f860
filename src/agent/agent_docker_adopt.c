/* Adopting containers after an agent restart: list those labelled with
 * this agent's key and attach to one as if it had just been started. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent_docker_internal.h"
#include "util/log.h"

/* Lines of an exited container to read again, for its failure reason. */
#define AGENT_DOCKER_ADOPT_TAIL 5

static int agent_docker_instance_id_valid(const char *id)
{
    static const char allowed[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

    return id != NULL && id[0] != '\0' && strlen(id) < 64 && strspn(id, allowed) == strlen(id);
}

/* GET /containers/json?all=1 filtered by the agent's labels. */
static json_t *agent_docker_list_labelled(const docker_client_t *client, const char *agent_key,
                                          char *err, size_t err_size)
{
    json_t *filter = json_pack("{s:[s+, s]}", "label", DOCKER_LABEL_AGENT "=", agent_key,
                               DOCKER_LABEL_MANAGED "=1");
    char *filter_text = filter != NULL ? json_dumps(filter, JSON_COMPACT) : NULL;
    buf_t path = BUF_INIT;
    docker_response_t res = {0};
    json_t *list = NULL;

    if (filter_text == NULL || buf_append_str(&path, "/containers/json?all=1&filters=") != 0 ||
        docker_append_escaped(&path, filter_text) != 0) {
        snprintf(err, err_size, "out of memory listing containers");
        goto out;
    }
    if (docker_call(client, "GET", path.data, NULL, NULL, 30000, &res) != 0 || res.status != 200) {
        snprintf(err, err_size, "cannot list containers: %s", res.error);
        goto out;
    }
    list = json_loadb(res.body.data != NULL ? res.body.data : "", res.body.len, 0, NULL);
    if (!json_is_array(list)) {
        snprintf(err, err_size, "the Docker daemon returned an unreadable container list");
        json_decref(list);
        list = NULL;
    }

out:
    docker_response_free(&res);
    buf_free(&path);
    free(filter_text);
    json_decref(filter);
    return list;
}

void agent_docker_gpu_ids_of(const json_t *host_config, const agent_gpus_t *gpus, char *out,
                             size_t size)
{
    json_t *requests = json_object_get(host_config, "DeviceRequests");
    json_t *request, *device;
    size_t i, j, len = 0;

    if (size > 0)
        out[0] = '\0';
    json_array_foreach(requests, i, request) {
        json_array_foreach(json_object_get(request, "DeviceIDs"), j, device) {
            const char *name = json_string_value(device);
            char id[AGENT_GPU_TEXT_MAX];
            if (name == NULL)
                continue;
            if (agent_gpus_id_of_device(gpus, name, id, sizeof(id)) != 0)
                log_warn("agent", "a container of this agent uses GPU %s, which is not in its "
                         "inventory", name);
            if (len + strlen(id) + 2 > size)
                continue;
            len += (size_t)snprintf(out + len, size - len, "%s%s", len > 0 ? "," : "", id);
        }
    }
}

/* Fill entry->gpu_ids from the container's device requests. */
static void agent_docker_read_gpu_ids(const docker_client_t *client, const agent_gpus_t *gpus,
                                      agent_runtime_found_t *entry)
{
    char err[256];
    long status;
    json_t *doc = agent_docker_inspect(client, entry->ref, &status, err, sizeof(err));

    agent_docker_gpu_ids_of(json_object_get(doc, "HostConfig"), gpus, entry->gpu_ids,
                            sizeof(entry->gpu_ids));
    json_decref(doc);
}

int agent_docker_find_owned(const char *agent_key, const char *docker_host,
                            const agent_gpus_t *gpus, agent_runtime_found_t **found,
                            size_t *count, char *err, size_t err_size)
{
    docker_client_t client;
    json_t *list, *item;
    size_t i;

    *found = NULL;
    *count = 0;
    if (docker_client_init(&client, docker_host, err, err_size) != 0)
        return -1;
    if ((list = agent_docker_list_labelled(&client, agent_key, err, err_size)) == NULL)
        return -1;
    if (json_array_size(list) > 0 && (*found = calloc(json_array_size(list), sizeof(**found))) == NULL) {
        snprintf(err, err_size, "out of memory listing containers");
        json_decref(list);
        return -1;
    }

    json_array_foreach(list, i, item) {
        const char *id = json_string_value(json_object_get(item, "Id"));
        const char *instance = json_string_value(
            json_object_get(json_object_get(item, "Labels"), DOCKER_LABEL_INSTANCE));
        if (id == NULL || strlen(id) >= sizeof((*found)->ref) ||
            !agent_docker_instance_id_valid(instance)) {
            log_warn("agent", "ignoring container %.12s: its %s label is not an instance id",
                     id != NULL ? id : "(no id)", DOCKER_LABEL_INSTANCE);
            continue;
        }
        agent_runtime_found_t *entry = &(*found)[(*count)++];
        snprintf(entry->instance_id, sizeof(entry->instance_id), "%s", instance);
        snprintf(entry->ref, sizeof(entry->ref), "%s", id);
        agent_docker_read_gpu_ids(&client, gpus, entry);
    }
    json_decref(list);
    return 0;
}

/* Check that doc is the container of instance_id and read its port.
 * Returns the port, or -1 with err set. */
static int agent_docker_adopted_port(const json_t *doc, const char *instance_id, char *err,
                                     size_t err_size)
{
    const json_t *labels = json_object_get(json_object_get(doc, "Config"), "Labels");
    const char *owner = json_string_value(json_object_get(labels, DOCKER_LABEL_INSTANCE));
    const char *port = json_string_value(json_object_get(labels, DOCKER_LABEL_PORT));
    char *end;
    long value = port != NULL ? strtol(port, &end, 10) : 0;

    if (owner == NULL || strcmp(owner, instance_id) != 0) {
        snprintf(err, err_size, "the container is not labelled as instance %s", instance_id);
        return -1;
    }
    if (port == NULL || *end != '\0' || value < 1 || value > 65535) {
        snprintf(err, err_size, "the container has no valid %s label", DOCKER_LABEL_PORT);
        return -1;
    }
    return (int)value;
}

int agent_docker_adopt(const agent_runtime_spec_t *spec, const char *ref,
                       const agent_runtime_events_t *events, agent_runtime_handle_t **handle,
                       int *port, char *err, size_t err_size)
{
    docker_client_t client;
    agent_runtime_handle_t *h;
    long status;
    json_t *doc;
    int found_port, running;

    if (docker_client_init(&client, spec->docker_host, err, err_size) != 0)
        return -1;
    if ((doc = agent_docker_inspect(&client, ref, &status, err, err_size)) == NULL)
        return -1;
    found_port = agent_docker_adopted_port(doc, spec->instance_id, err, err_size);
    /* NOTE: a container created but never started (the agent died in
     * between) counts as exited, so its instance fails instead of starting. */
    running = json_is_true(json_object_get(json_object_get(doc, "State"), "Running"));
    if (found_port < 0 || (h = agent_docker_handle_new(spec->instance_id, ref, &client, events)) == NULL) {
        if (found_port >= 0)
            snprintf(err, err_size, "out of memory adopting the container");
        json_decref(doc);
        return -1;
    }
    h->tty = json_is_true(json_object_get(json_object_get(doc, "Config"), "Tty"));
    json_decref(doc);

    /* A running container's earlier output is in the console already; an
     * exited one's last lines are read again for the failure reason.
     * NOTE: what it wrote while no agent ran is lost to the console. */
    if (running)
        snprintf(h->logs_query, sizeof(h->logs_query), "&since=%lld", (long long)time(NULL));
    else
        snprintf(h->logs_query, sizeof(h->logs_query), "&tail=%d", AGENT_DOCKER_ADOPT_TAIL);
    if (agent_docker_watch(h) != 0) {
        snprintf(err, err_size, "cannot start the container watcher thread");
        agent_docker_handle_free(h);
        return -1;
    }
    log_info("agent", "instance %s: adopted %s container %.12s on port %d", spec->instance_id,
             running ? "running" : "exited", ref, found_port);
    *handle = h;
    *port = found_port;
    return 0;
}
