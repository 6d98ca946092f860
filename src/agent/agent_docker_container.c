/* The container step of a docker start: create, start, and the inspect and
 * remove calls the rest of the runtime shares. */
#include <stdio.h>
#include <string.h>

#include "agent/agent_docker_internal.h"
#include "util/log.h"

json_t *agent_docker_inspect(const docker_client_t *client, const char *id, long *status,
                             char *err, size_t err_size)
{
    docker_response_t res;
    json_t *doc = NULL;
    char path[200];

    snprintf(path, sizeof(path), "/containers/%s/json", id);
    if (docker_call(client, "GET", path, NULL, NULL, 30000, &res) == 0 && res.status == 200) {
        doc = json_loadb(res.body.data != NULL ? res.body.data : "", res.body.len, 0, NULL);
        if (doc == NULL)
            snprintf(err, err_size, "the Docker daemon returned an unreadable description of "
                     "container %.12s", id);
    } else {
        snprintf(err, err_size, "cannot inspect container %.12s: %s", id, res.error);
    }
    *status = res.status;
    docker_response_free(&res);
    return doc;
}

int agent_docker_remove(const docker_client_t *client, const char *id, char *err,
                        size_t err_size)
{
    docker_response_t res;
    char path[200];
    int rc = -1;

    /* v=1 removes anonymous volumes only; named ones, as the cache, stay. */
    snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
    if (docker_call(client, "DELETE", path, NULL, NULL, 60000, &res) != 0)
        snprintf(err, err_size, "cannot remove container %.12s: %s", id, res.error);
    else if (res.status != 204 && res.status != 404)
        snprintf(err, err_size, "cannot remove container %.12s: %s", id, res.error);
    else
        rc = 0;
    docker_response_free(&res);
    return rc;
}

/* A container named name exists. Remove it when nimdeck made it for this
 * instance (a leftover whose removal failed earlier), so the new one can
 * take the name. Returns 0 when removed, or -1 with err set. */
static int agent_docker_take_name(const docker_client_t *client, const char *name,
                                  const char *instance_id, char *err, size_t err_size)
{
    long status;
    json_t *doc = agent_docker_inspect(client, name, &status, err, err_size);
    json_t *labels = json_object_get(json_object_get(doc, "Config"), "Labels");
    const char *owner = json_string_value(json_object_get(labels, DOCKER_LABEL_INSTANCE));
    int rc = -1;

    if (doc == NULL)
        return -1;
    if (owner == NULL || strcmp(owner, instance_id) != 0)
        snprintf(err, err_size, "a container named %s exists that nimdeck did not create for "
                 "this instance; remove it (docker rm -f %s) and launch again", name, name);
    else if (agent_docker_remove(client, name, err, err_size) == 0)
        rc = 0;
    if (rc == 0)
        log_warn("agent", "instance %s: removed a leftover container named %s", instance_id, name);
    json_decref(doc);
    return rc;
}

/* POST /containers/create. Returns 0 with the id, 1 when the name is
 * taken, or -1 with err set. */
static int agent_docker_create(const docker_client_t *client, const char *name,
                               const json_t *body, char *id, size_t id_size, char *err,
                               size_t err_size)
{
    docker_response_t res;
    char path[160];
    int rc = -1;

    snprintf(path, sizeof(path), "/containers/create?name=%s", name);
    if (docker_call(client, "POST", path, body, NULL, 60000, &res) != 0) {
        snprintf(err, err_size, "cannot create the container: %s", res.error);
    } else if (res.status == 409) {
        rc = 1;
    } else if (res.status != 201) {
        snprintf(err, err_size, "cannot create the container: %s", res.error);
    } else {
        json_t *doc = json_loadb(res.body.data != NULL ? res.body.data : "", res.body.len, 0, NULL);
        const char *value = json_string_value(json_object_get(doc, "Id"));
        if (value != NULL && value[0] != '\0' && strlen(value) < id_size) {
            snprintf(id, id_size, "%s", value);
            rc = 0;
        } else {
            snprintf(err, err_size, "the Docker daemon created a container but returned no id");
        }
        json_decref(doc);
    }
    docker_response_free(&res);
    return rc;
}

/* A start that fails on the GPU request usually means the NVIDIA Container
 * Toolkit is missing. */
static const char *agent_docker_start_hint(const char *message)
{
    if (strstr(message, "could not select device driver") != NULL)
        return "; install the NVIDIA Container Toolkit on this machine and restart dockerd";
    return "";
}

static int agent_docker_start_container(const docker_client_t *client, const char *id,
                                        char *err, size_t err_size)
{
    docker_response_t res;
    char path[160];
    int rc = -1;

    snprintf(path, sizeof(path), "/containers/%s/start", id);
    if (docker_call(client, "POST", path, NULL, NULL, 120000, &res) != 0)
        snprintf(err, err_size, "cannot start the container: %s", res.error);
    else if (res.status != 204 && res.status != 304)
        snprintf(err, err_size, "cannot start the container: %s%s", res.error,
                 agent_docker_start_hint(res.error));
    else
        rc = 0;
    docker_response_free(&res);
    return rc;
}

int agent_docker_port_published(const json_t *doc, int port)
{
    char key[16];
    json_t *bindings;

    snprintf(key, sizeof(key), "%d/tcp", port);
    bindings = json_object_get(json_object_get(json_object_get(doc, "NetworkSettings"), "Ports"),
                               key);
    return json_is_array(bindings) && json_array_size(bindings) > 0;
}

/* A daemon without a bridge network (dockerd --bridge=none) starts a
 * bridge container anyway, with no IP address and no published port, so
 * nothing could ever reach it. Returns 0 when the port is published, or
 * -1 with err naming the fix. */
static int agent_docker_check_published(const docker_client_t *client, const char *id, int port,
                                        char *err, size_t err_size)
{
    long status;
    json_t *doc = agent_docker_inspect(client, id, &status, err, err_size);
    int published = agent_docker_port_published(doc, port);

    json_decref(doc);
    if (doc == NULL)
        return -1;
    if (published)
        return 0;
    snprintf(err, err_size, "the Docker daemon started the container on its bridge network but "
             "did not publish port %d, so nothing can reach the server in it (a daemon started "
             "with --bridge=none has no bridge network); set \"docker.network\": \"host\" in the "
             "configuration, or run the instance on an agent whose Docker daemon has a bridge "
             "network", port);
    return -1;
}

int agent_docker_run_container(const docker_client_t *client, const docker_create_input_t *in,
                               const docker_options_t *opts, char *id, size_t id_size, char *err,
                               size_t err_size)
{
    char name[96], ignored[256];
    json_t *body = docker_create_body(in, opts, err, err_size);
    int rc;

    if (body == NULL)
        return -1;
    docker_container_name(in->instance_id, name, sizeof(name));
    rc = agent_docker_create(client, name, body, id, id_size, err, err_size);
    if (rc == 1) {
        rc = agent_docker_take_name(client, name, in->instance_id, err, err_size) == 0
                 ? agent_docker_create(client, name, body, id, id_size, err, err_size)
                 : -1;
        if (rc == 1)
            snprintf(err, err_size, "cannot create the container: the name %s is still taken",
                     name);
    }
    json_decref(body);
    if (rc != 0)
        return -1;

    if (agent_docker_start_container(client, id, err, err_size) != 0 ||
        (opts->bridge && agent_docker_check_published(client, id, in->port, err, err_size) != 0)) {
        if (agent_docker_remove(client, id, ignored, sizeof(ignored)) != 0)
            log_warn("agent", "instance %s: %s", in->instance_id, ignored);
        return -1;
    }
    return 0;
}
