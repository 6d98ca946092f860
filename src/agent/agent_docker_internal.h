/* Shared parts of the docker runtime: the container handle and the steps
 * of a start (image, container) and of watching one (logs, exit). */
#ifndef NIMDECK_AGENT_AGENT_DOCKER_INTERNAL_H
#define NIMDECK_AGENT_AGENT_DOCKER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "agent/agent_runtime.h"
#include "agent/docker_client.h"
#include "agent/docker_create.h"

struct agent_runtime_handle {
    char instance_id[64];
    char container_id[72];
    docker_client_t client;
    agent_runtime_events_t events;
    int tty;                      /* created with a TTY: logs are raw, not framed */
    char logs_query[64];          /* what the log stream starts with: "" for all,
                                     "&since=T" or "&tail=N" for an adopted one */
    pthread_t waiter;             /* follows the logs, waits for the exit, reports it */
    atomic_int logs_cancel;       /* ends the log stream when it outlives the exit */
    atomic_int detaching;         /* the agent lets go of the container: the waiter ends
                                   without waiting for the exit */

    pthread_mutex_t lock;
    pthread_t stopper;            /* sends the stop; joined by release */
    int stopper_started;
    int stop_sent;
    int grace_ms;
};

/* agent_docker_image.c: make sure the image is present, pulling it when it
 * is missing or opts->pull_always is set, with the login docker_auth_find
 * takes from env. Progress goes to the console (events->on_output) and the
 * loading reason (events->on_reason). Returns 0, or -1 with err naming the
 * image and the cause (also when a stop was requested meanwhile). */
int agent_docker_ensure_image(const docker_client_t *client, const docker_options_t *opts,
                              const json_t *env, const agent_runtime_events_t *events, char *err,
                              size_t err_size);

/* agent_docker_container.c: create and start the container of in. Returns
 * 0 with its id in id, or -1 with err set and nothing left behind. */
int agent_docker_run_container(const docker_client_t *client, const docker_create_input_t *in,
                               const docker_options_t *opts, char *id, size_t id_size, char *err,
                               size_t err_size);

/* Whether the inspect document doc of a started container shows a host
 * binding for port (NetworkSettings.Ports["PORT/tcp"]). */
int agent_docker_port_published(const json_t *doc, int port);

/* Remove container id with its anonymous volumes (named volumes such as
 * the model cache stay), stopping it first if it runs. Returns 0, or -1
 * with err set. */
int agent_docker_remove(const docker_client_t *client, const char *id, char *err,
                        size_t err_size);

/* GET /containers/ID/json. Returns the document, or NULL with err set;
 * *status is the HTTP status (404: no such container), 0 without one. */
json_t *agent_docker_inspect(const docker_client_t *client, const char *id, long *status,
                             char *err, size_t err_size);

/* agent_docker_watch.c: start the waiter thread of h. Returns 0, or -1. */
int agent_docker_watch(agent_runtime_handle_t *h);

/* agent_docker_stats.c: the sample call of the runtime. */
int agent_docker_sample(agent_runtime_handle_t *h, agent_usage_t *out);

/* agent_docker_adopt.c: the find_owned and adopt calls of the runtime. */
int agent_docker_find_owned(const char *agent_key, const char *docker_host,
                            const agent_gpus_t *gpus, agent_runtime_found_t **found,
                            size_t *count, char *err, size_t err_size);
/* Write the agent's ids of the GPUs in a container's HostConfig (its
 * DeviceRequests, whose DeviceIDs name GPUs by UUID where the agent knew
 * one) into out, comma-separated: "" for none. A name that is not in gpus
 * is kept as it is, with a warning. */
void agent_docker_gpu_ids_of(const json_t *host_config, const agent_gpus_t *gpus, char *out,
                             size_t size);
int agent_docker_adopt(const agent_runtime_spec_t *spec, const char *ref,
                       const agent_runtime_events_t *events, agent_runtime_handle_t **handle,
                       int *port, char *err, size_t err_size);

/* agent_docker.c: the names a container's DeviceIDs gets for the device
 * ids the agent assigned (NULL-terminated): each GPU's UUID where gpus has
 * one, else the id. Returns a new NULL-terminated list to free with
 * agent_gpus_ids_free, or NULL when memory runs out. */
char **agent_docker_device_names(const agent_gpus_t *gpus, const char *const *ids);

/* A handle for container id, not yet watched. Returns NULL
 * when memory runs out. */
agent_runtime_handle_t *agent_docker_handle_new(const char *instance_id, const char *container_id,
                                                const docker_client_t *client,
                                                const agent_runtime_events_t *events);
void agent_docker_handle_free(agent_runtime_handle_t *h);

/* Connect to the daemon of docker_host and check that it responds
 * (GET /_ping). Returns 0, or -1 with err naming the socket and the fix. */
int agent_docker_connect(const char *docker_host, docker_client_t *client, char *err,
                         size_t err_size);

#endif
