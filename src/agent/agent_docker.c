/* The docker runtime: an instance is a container that the agent creates
 * through the Docker Engine API, after a pre-flight check and a pull.
 *
 * Each container has one waiter thread, which follows its logs on a second
 * thread, waits for the exit, reads the exit code and the OOM flag, removes
 * the container and reports the end. A stop runs on a thread of its own,
 * because the daemon's stop call blocks for the grace period. When the
 * agent stops, it detaches instead: the waiter ends and the container runs
 * on for the next run of the agent to adopt. */
#include "agent/agent_docker_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_spawn.h"
#include "agent/docker_auth.h"
#include "util/log.h"

agent_runtime_handle_t *agent_docker_handle_new(const char *instance_id, const char *container_id,
                                                const docker_client_t *client,
                                                const agent_runtime_events_t *events)
{
    agent_runtime_handle_t *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    snprintf(h->instance_id, sizeof(h->instance_id), "%s", instance_id);
    snprintf(h->container_id, sizeof(h->container_id), "%s", container_id);
    h->client = *client;
    h->events = *events;
    atomic_init(&h->logs_cancel, 0);
    atomic_init(&h->detaching, 0);
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

void agent_docker_handle_free(agent_runtime_handle_t *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->lock);
    free(h);
}

int agent_docker_connect(const char *docker_host, docker_client_t *client, char *err,
                         size_t err_size)
{
    docker_response_t res;
    int rc = -1;

    if (docker_client_init(client, docker_host, err, err_size) != 0)
        return -1;
    if (docker_call(client, "GET", "/_ping", NULL, NULL, 10000, &res) != 0)
        snprintf(err, err_size, "%s; start dockerd, or give the agent its socket with "
                 "--docker-host unix:///PATH or DOCKER_HOST, and let the agent's user use it "
                 "(the docker group)", res.error);
    else if (res.status != 200)
        snprintf(err, err_size, "the Docker daemon at unix://%s is not ready: %s",
                 client->socket_path, res.error);
    else
        rc = 0;
    docker_response_free(&res);
    return rc;
}

/* Write the publish address of a bridge container that sets none into
 * out: the agent's advertised address, resolved when it is a host name. */
static int agent_docker_publish_default(const char *advertise_host, char *out, size_t size,
                                        char *err, size_t err_size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found = NULL;
    char address[INET6_ADDRSTRLEN];
    int rc;

    if (docker_publish_default(advertise_host, out, size) == 0)
        return 0;
    if ((rc = getaddrinfo(advertise_host, NULL, &hints, &found)) != 0 ||
        getnameinfo(found->ai_addr, found->ai_addrlen, address, sizeof(address), NULL, 0,
                    NI_NUMERICHOST) != 0 ||
        docker_publish_default(address, out, size) != 0) {
        snprintf(err, err_size, "cannot choose the address to publish the container's port on: "
                 "--advertise-host %s does not resolve to an IP address (%s); set "
                 "docker.publish_address to an IP address of this machine",
                 advertise_host, rc != 0 ? gai_strerror(rc) : "no numeric address");
        if (found != NULL)
            freeaddrinfo(found);
        return -1;
    }
    freeaddrinfo(found);
    return 0;
}

/* Read the docker options of spec. A bridge container without
 * docker.publish_address is published where the gateway reaches it. */
static int agent_docker_options(const agent_runtime_spec_t *spec, docker_options_t *opts,
                                char *err, size_t err_size)
{
    const json_t *docker = json_object_get(spec->config, "docker");
    char publish[sizeof(opts->publish_address)];

    if (docker_options_parse(spec->config, NULL, opts, err, err_size) != 0)
        return -1;
    if (!opts->bridge || json_object_get(docker, "publish_address") != NULL)
        return 0;
    if (agent_docker_publish_default(spec->advertise_host, publish, sizeof(publish), err,
                                     err_size) != 0)
        return -1;
    return docker_options_parse(spec->config, publish, opts, err, err_size);
}

char **agent_docker_device_names(const agent_gpus_t *gpus, const char *const *ids)
{
    size_t count = 0;
    char **names;

    while (ids != NULL && ids[count] != NULL)
        count++;
    if ((names = calloc(count + 1, sizeof(*names))) == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        char name[AGENT_GPU_TEXT_MAX];
        agent_gpus_device_name(gpus, ids[i], name, sizeof(name));
        if ((names[i] = strdup(name)) == NULL) {
            agent_gpus_ids_free(names);
            return NULL;
        }
    }
    return names;
}

/* Everything that can fail before anything is pulled or created: the
 * options, the GPUs, the registry login, the daemon. Returns the number of
 * GPUs to give, or -1 with err set. */
static int agent_docker_preflight(const agent_runtime_spec_t *spec, docker_options_t *opts,
                                  docker_client_t *client, char *err, size_t err_size)
{
    const char *user, *password;
    int gpu_count;

    if (agent_docker_options(spec, opts, err, err_size) != 0)
        return -1;
    gpu_count = docker_gpu_count(spec->config, spec->gpu_ids,
                                 spec->agent_name != NULL ? spec->agent_name : "agent", err,
                                 err_size);
    if (gpu_count < 0)
        return -1;
    if (docker_auth_find(opts->image, spec->env, &user, &password, err, err_size) < 0)
        return -1;
    if (agent_docker_connect(spec->docker_host, client, err, err_size) != 0)
        return -1;
    return gpu_count;
}

static int agent_docker_stop_requested(const agent_runtime_events_t *events)
{
    return events->stop_requested != NULL && events->stop_requested(events->ctx);
}

static int agent_docker_start(const agent_runtime_spec_t *spec,
                              const agent_runtime_events_t *events,
                              agent_runtime_handle_t **handle, int *port, char *err,
                              size_t err_size)
{
    docker_options_t opts;
    docker_client_t client;
    char container_id[72];
    int gpu_count = agent_docker_preflight(spec, &opts, &client, err, err_size);
    int chosen_port;

    if (gpu_count < 0 || (chosen_port = agent_spawn_port(spec->config, err, err_size)) < 0)
        return -1;
    if (agent_docker_ensure_image(&client, &opts, spec->env, events, err, err_size) != 0)
        return -1;
    if (agent_docker_stop_requested(events)) {
        snprintf(err, err_size, "stop requested before the container was created");
        return -1;
    }

    char **devices = agent_docker_device_names(spec->gpus, spec->gpu_ids);
    if (devices == NULL) {
        snprintf(err, err_size, "out of memory naming the container's GPUs");
        return -1;
    }
    docker_create_input_t in = {
        .instance_id = spec->instance_id,
        .agent_key = spec->agent_key != NULL ? spec->agent_key : "",
        .config = spec->config,
        .env = spec->env,
        .gpu_ids = (const char *const *)devices,
        .gpu_count = (size_t)gpu_count,
        .port = chosen_port,
    };
    int created = agent_docker_run_container(&client, &in, &opts, container_id,
                                             sizeof(container_id), err, err_size);
    agent_gpus_ids_free(devices);
    if (created != 0)
        return -1;

    agent_runtime_handle_t *h = agent_docker_handle_new(spec->instance_id, container_id, &client,
                                                        events);
    if (h == NULL || agent_docker_watch(h) != 0) {
        char ignored[256];
        snprintf(err, err_size, "cannot start the container watcher thread");
        agent_docker_remove(&client, container_id, ignored, sizeof(ignored));
        agent_docker_handle_free(h);
        return -1;
    }
    if (opts.bridge)
        log_info("agent", "instance %s: started container %.12s from %s on port %d (bridge "
                 "network, published on %s; %d GPU(s))", spec->instance_id, container_id,
                 opts.image, chosen_port, opts.publish_address, gpu_count);
    else
        log_info("agent", "instance %s: started container %.12s from %s on port %d (host "
                 "network; %d GPU(s))", spec->instance_id, container_id, opts.image,
                 chosen_port, gpu_count);
    *handle = h;
    *port = chosen_port;
    return 0;
}

/* The daemon's stop sends the image's stop signal (SIGTERM unless the image
 * sets another), waits up to t seconds and kills. It blocks meanwhile. */
static void *agent_docker_stop_run(void *arg)
{
    agent_runtime_handle_t *h = arg;
    docker_response_t res;
    char path[160];
    int grace_s;

    pthread_mutex_lock(&h->lock);
    grace_s = (h->grace_ms + 999) / 1000;
    pthread_mutex_unlock(&h->lock);

    snprintf(path, sizeof(path), "/containers/%s/stop?t=%d", h->container_id, grace_s);
    if (docker_call(&h->client, "POST", path, NULL, NULL, (grace_s + 60) * 1000L, &res) != 0 ||
        res.status >= 500) {
        log_warn("agent", "instance %s: stopping container %.12s failed: %s; killing it",
                 h->instance_id, h->container_id, res.error);
        docker_response_free(&res);
        snprintf(path, sizeof(path), "/containers/%s/kill", h->container_id);
        docker_call(&h->client, "POST", path, NULL, NULL, 30000, &res);
    }
    docker_response_free(&res);
    return NULL;
}

static void agent_docker_stop(agent_runtime_handle_t *h, int grace_ms)
{
    pthread_mutex_lock(&h->lock);
    /* Once detached, the container belongs to the next run of the agent. */
    if (!h->stop_sent && !atomic_load(&h->detaching)) {
        h->stop_sent = 1;
        h->grace_ms = grace_ms;
        log_info("agent", "instance %s: stopping container %.12s (SIGTERM, kill after %d ms)",
                 h->instance_id, h->container_id, grace_ms);
        if (pthread_create(&h->stopper, NULL, agent_docker_stop_run, h) == 0)
            h->stopper_started = 1;
        else
            log_error("agent", "instance %s: cannot create the thread that stops container %.12s",
                      h->instance_id, h->container_id);
    }
    pthread_mutex_unlock(&h->lock);
}

static void agent_docker_detach(agent_runtime_handle_t *h)
{
    pthread_mutex_lock(&h->lock);
    if (!h->stop_sent && !atomic_load(&h->detaching)) {
        atomic_store(&h->detaching, 1);
        log_info("agent", "instance %s: detaching from container %.12s, which keeps running",
                 h->instance_id, h->container_id);
    }
    pthread_mutex_unlock(&h->lock);
}

static void agent_docker_release(agent_runtime_handle_t *h)
{
    int stopper_started;

    if (h == NULL)
        return;
    pthread_join(h->waiter, NULL);
    pthread_mutex_lock(&h->lock);
    stopper_started = h->stopper_started;
    pthread_mutex_unlock(&h->lock);
    if (stopper_started)
        pthread_join(h->stopper, NULL);
    agent_docker_handle_free(h);
}

const agent_runtime_t agent_runtime_docker = {
    .name = "docker",
    .starting_reason = "starting container",
    .noun = "container",
    .start = agent_docker_start,
    .stop = agent_docker_stop,
    .release = agent_docker_release,
    .sample = agent_docker_sample,
    .find_owned = agent_docker_find_owned,
    .adopt = agent_docker_adopt,
    .detach = agent_docker_detach,
};
