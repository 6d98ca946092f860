/* The Docker options of a configuration and the container create body
 * built from them: image, command, environment, GPUs, shared memory, the
 * model cache, networking, user and labels. Pure functions, no I/O. */
#ifndef NIMDECK_AGENT_DOCKER_CREATE_H
#define NIMDECK_AGENT_DOCKER_CREATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define DOCKER_CACHE_TARGET_DEFAULT "/opt/nim/.cache"
#define DOCKER_LABEL_INSTANCE "nimdeck.instance"
#define DOCKER_LABEL_AGENT "nimdeck.agent"
#define DOCKER_LABEL_MANAGED "nimdeck.managed"
#define DOCKER_LABEL_PORT "nimdeck.port"

#define DOCKER_PUBLISH_LOOPBACK "127.0.0.1"

/* The configuration's "image" and "docker" object, checked. */
typedef struct {
    char image[512];
    int64_t shm_bytes;          /* 0 for the daemon's default */
    char cache[1024];           /* a host path (starts with '/') or a volume name */
    int cache_is_path;
    int bridge;                 /* network "bridge" (the default); else host networking */
    char publish_address[64];   /* where a bridge container's port is published */
    char user[128];             /* "" for the image's user */
    int pull_always;            /* pull "always"; else only when missing */
} docker_options_t;

/* Check the image and the docker object of config with the checks of
 * config_validate, and read them. Defaults: no ShmSize, the cache volume of
 * docker_cache_volume_name, bridge networking with the port published on
 * default_publish (NULL for 127.0.0.1), the image's user, pull "missing".
 * Returns 0, or -1 with err naming the key, the value and the fix. */
int docker_options_parse(const json_t *config, const char *default_publish,
                         docker_options_t *out, char *err, size_t err_size);

/* Write the default publish address of an agent into out, given its
 * --advertise-host, where the gateway reaches instances. NULL,
 * "localhost", a loopback and an unspecified address (0.0.0.0, ::) give
 * 127.0.0.1. Any other IP address is used as it is, so that a gateway on
 * another machine reaches the port there and nowhere else. Returns 0, or
 * 1 when advertise_host is a host name, which the caller resolves and
 * passes again. */
int docker_publish_default(const char *advertise_host, char *out, size_t size);

/* Write the default cache volume of image into out:
 * "nimdeck-cache-" + the repository without tag or digest, with every
 * character outside [A-Za-z0-9_.-] as '_'. */
void docker_cache_volume_name(const char *image, char *out, size_t size);

/* Pick the device ids a container gets from the ids the agent assigned:
 * all of them, or the first N for a count of N in config's "gpus". Returns
 * how many to use (0 for none), or -1 with err when the configuration
 * requests GPUs and fewer were assigned, such as on an agent without GPUs.
 * agent_name names the agent in that message. */
int docker_gpu_count(const json_t *config, const char *const *gpu_ids, const char *agent_name,
                     char *err, size_t err_size);

typedef struct {
    const char *instance_id;
    const char *agent_key;            /* the value of the nimdeck.agent label */
    const json_t *config;
    const json_t *env;                /* the lease's merged environment */
    const char *const *gpu_ids;       /* the names DeviceIDs gets, in the order of the ids
                                         docker_gpu_count counted: GPU UUIDs where the agent
                                         knows them, else its device ids */
    size_t gpu_count;
    int port;                         /* the port the server listens on */
} docker_create_input_t;

/* Build the POST /containers/create body. Env is env, then NIM_CACHE_PATH
 * (unless env sets it), NVIDIA_VISIBLE_DEVICES=void when no GPUs, then
 * PORT and NIM_SERVER_PORT. A command replaces the image's Cmd, with
 * "{port}" replaced. Returns a new object, or NULL with err set. */
json_t *docker_create_body(const docker_create_input_t *in, const docker_options_t *opts,
                           char *err, size_t err_size);

/* Write the container name of an instance, "nimdeck-ID", into out. */
void docker_container_name(const char *instance_id, char *out, size_t size);

#endif
