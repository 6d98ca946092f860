/* The Docker options of a configuration and the container create body. */
#include "agent/docker_create.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_spawn.h"
#include "agent/docker_auth.h"
#include "config/config_docker.h"

static const char *docker_option(const json_t *config, const char *key)
{
    return json_string_value(json_object_get(json_object_get(config, "docker"), key));
}

static int docker_is_loopback(const char *address)
{
    struct in6_addr ip6;
    struct in_addr ip4;

    if (inet_pton(AF_INET, address, &ip4) == 1)
        return (ntohl(ip4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, address, &ip6) != 1)
        return 0;
    if (IN6_IS_ADDR_LOOPBACK(&ip6))
        return 1;
    return IN6_IS_ADDR_V4MAPPED(&ip6) && ip6.s6_addr[12] == 127;
}

static int docker_is_unspecified(const char *address)
{
    struct in6_addr ip6;
    struct in_addr ip4;

    if (inet_pton(AF_INET, address, &ip4) == 1)
        return ip4.s_addr == htonl(INADDR_ANY);
    return inet_pton(AF_INET6, address, &ip6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&ip6);
}

int docker_publish_default(const char *advertise_host, char *out, size_t size)
{
    if (advertise_host == NULL || advertise_host[0] == '\0' ||
        strcmp(advertise_host, "localhost") == 0) {
        snprintf(out, size, "%s", DOCKER_PUBLISH_LOOPBACK);
        return 0;
    }
    if (!config_docker_address_valid(advertise_host))
        return 1;
    if (docker_is_loopback(advertise_host) || docker_is_unspecified(advertise_host))
        snprintf(out, size, "%s", DOCKER_PUBLISH_LOOPBACK);
    else
        snprintf(out, size, "%s", advertise_host);
    return 0;
}

void docker_cache_volume_name(const char *image, char *out, size_t size)
{
    char repository[512];
    size_t len;

    docker_image_repository(image, repository, sizeof(repository));
    len = (size_t)snprintf(out, size, "nimdeck-cache-");
    for (const char *p = repository; *p != '\0' && len + 1 < size; p++)
        out[len++] = isalnum((unsigned char)*p) || strchr("_.-", *p) != NULL ? *p : '_';
    if (len < size)
        out[len] = '\0';
}

void docker_container_name(const char *instance_id, char *out, size_t size)
{
    snprintf(out, size, "nimdeck-%s", instance_id);
}

static int docker_options_check(const json_t *config, char *err, size_t err_size)
{
    config_error_t problem;

    if (config_docker_check_image(json_object_get(config, "image"), &problem) == 0 &&
        config_docker_check(json_object_get(config, "docker"), &problem) == 0)
        return 0;
    snprintf(err, err_size, "invalid configuration: %s", problem.message);
    return -1;
}

int docker_options_parse(const json_t *config, const char *default_publish,
                         docker_options_t *out, char *err, size_t err_size)
{
    const json_t *docker = json_object_get(config, "docker");
    const json_t *shm = json_object_get(docker, "shm_size");
    const json_t *user = json_object_get(docker, "user");
    const char *cache = docker_option(config, "cache");
    const char *network = docker_option(config, "network");
    const char *address = docker_option(config, "publish_address");
    const char *pull = docker_option(config, "pull");

    memset(out, 0, sizeof(*out));
    if (docker_options_check(config, err, err_size) != 0)
        return -1;

    /* Checked above, so each value reads without failing. */
    snprintf(out->image, sizeof(out->image), "%s",
             json_string_value(json_object_get(config, "image")));
    if (shm != NULL)
        config_docker_size(shm, &out->shm_bytes);
    if (user != NULL)
        config_docker_user(user, out->user, sizeof(out->user));
    out->pull_always = pull != NULL && strcmp(pull, "always") == 0;
    if (cache != NULL) {
        snprintf(out->cache, sizeof(out->cache), "%s", cache);
        out->cache_is_path = config_docker_cache_kind(cache) == 1;
    } else {
        docker_cache_volume_name(out->image, out->cache, sizeof(out->cache));
    }

    out->bridge = network == NULL || strcmp(network, "bridge") == 0;
    if (address == NULL)
        address = default_publish != NULL ? default_publish : DOCKER_PUBLISH_LOOPBACK;
    if (!config_docker_address_valid(address)) {
        snprintf(err, err_size, "invalid publish address '%s' for the container's port: "
                 "expected an IP address; set docker.publish_address", address);
        return -1;
    }
    snprintf(out->publish_address, sizeof(out->publish_address), "%s", address);
    return 0;
}

int docker_gpu_count(const json_t *config, const char *const *gpu_ids, const char *agent_name,
                     char *err, size_t err_size)
{
    const json_t *gpus = json_object_get(config, "gpus");
    size_t assigned = 0, requested;
    char request_text[64];

    while (gpu_ids != NULL && gpu_ids[assigned] != NULL)
        assigned++;
    if (json_is_string(gpus) && strcmp(json_string_value(gpus), "all") == 0) {
        requested = assigned > 0 ? assigned : 1;
        snprintf(request_text, sizeof(request_text), "all GPUs");
    } else if (json_is_array(gpus) && json_array_size(gpus) > 0) {
        requested = json_array_size(gpus);
        snprintf(request_text, sizeof(request_text), "%zu GPU(s) by device id", requested);
    } else if (json_is_integer(gpus) && json_integer_value(gpus) > 0) {
        requested = (size_t)json_integer_value(gpus);
        snprintf(request_text, sizeof(request_text), "%zu GPU(s)", requested);
    } else {
        return 0;
    }

    if (assigned == 0) {
        snprintf(err, err_size, "the configuration requests %s but agent %s has no GPU to give "
                 "it; launch it on a queue served by an agent with GPUs, or set gpus to 0",
                 request_text, agent_name);
        return -1;
    }
    if (assigned < requested) {
        snprintf(err, err_size, "the configuration requests %s but agent %s assigned only %zu",
                 request_text, agent_name, assigned);
        return -1;
    }
    return (int)requested;
}

/* Set name=value in env, numbers and booleans as their JSON text. */
static int docker_env_set(json_t *env, const char *name, const json_t *value)
{
    char *text;
    int rc;

    if (json_is_string(value))
        return json_object_set(env, name, (json_t *)value);
    if (json_is_null(value) || value == NULL)
        return 0;
    if ((text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT)) == NULL)
        return -1;
    rc = json_object_set_new(env, name, json_string(text));
    free(text);
    return rc;
}

static json_t *docker_create_env(const docker_create_input_t *in)
{
    json_t *merged = json_object(), *list = json_array(), *item;
    const char *name;
    char port[16];
    int rc = merged != NULL && list != NULL ? 0 : -1;

    json_object_foreach((json_t *)in->env, name, item) {
        if (rc == 0)
            rc = docker_env_set(merged, name, item);
    }
    if (rc == 0 && json_object_get(merged, "NIM_CACHE_PATH") == NULL)
        rc = json_object_set_new(merged, "NIM_CACHE_PATH", json_string(DOCKER_CACHE_TARGET_DEFAULT));
    if (rc == 0 && in->gpu_count == 0)
        rc = json_object_set_new(merged, "NVIDIA_VISIBLE_DEVICES", json_string("void"));
    snprintf(port, sizeof(port), "%d", in->port);
    if (rc == 0)
        rc = json_object_set_new(merged, "PORT", json_string(port));
    if (rc == 0)
        rc = json_object_set_new(merged, "NIM_SERVER_PORT", json_string(port));

    json_object_foreach(merged, name, item) {
        char *pair = NULL;
        if (rc == 0 && asprintf(&pair, "%s=%s", name, json_string_value(item)) < 0)
            rc = -1;
        if (rc == 0)
            rc = json_array_append_new(list, json_string(pair));
        free(pair);
    }
    json_decref(merged);
    if (rc != 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}

static json_t *docker_create_cmd(const docker_create_input_t *in, char *err, size_t err_size)
{
    const json_t *command = json_object_get(in->config, "command");
    char **argv;
    json_t *list;

    if (command == NULL || json_is_null(command))
        return json_null();
    if ((argv = agent_spawn_argv(command, in->port, NULL, err, err_size)) == NULL)
        return NULL;
    list = json_array();
    for (size_t i = 0; list != NULL && argv[i] != NULL; i++)
        json_array_append_new(list, json_string(argv[i]));
    agent_spawn_free(argv);
    if (list == NULL)
        snprintf(err, err_size, "out of memory building the container command");
    return list;
}

static json_t *docker_create_labels(const docker_create_input_t *in)
{
    char port[16];

    snprintf(port, sizeof(port), "%d", in->port);
    return json_pack("{s:s, s:s, s:s, s:s}", DOCKER_LABEL_INSTANCE, in->instance_id,
                     DOCKER_LABEL_AGENT, in->agent_key, DOCKER_LABEL_MANAGED, "1",
                     DOCKER_LABEL_PORT, port);
}

static const char *docker_cache_target(const docker_create_input_t *in)
{
    const char *path = json_string_value(json_object_get(in->env, "NIM_CACHE_PATH"));

    return path != NULL && path[0] == '/' ? path : DOCKER_CACHE_TARGET_DEFAULT;
}

static json_t *docker_create_devices(const docker_create_input_t *in)
{
    json_t *ids = json_array();

    for (size_t i = 0; ids != NULL && i < in->gpu_count; i++)
        json_array_append_new(ids, json_string(in->gpu_ids[i]));
    return json_pack("[{s:s, s:o, s:[[s]]}]", "Driver", "nvidia", "DeviceIDs", ids,
                     "Capabilities", "gpu");
}

/* The host port bindings of a bridge container. The agent probes health on
 * 127.0.0.1, so a port published on any address that does not cover
 * 127.0.0.1 (another IPv4 address, or any IPv6 one) is published there too. */
static json_t *docker_create_bindings(const docker_options_t *opts, const char *port)
{
    const char *address = opts->publish_address;
    json_t *bindings = json_pack("[{s:s, s:s}]", "HostIp", address, "HostPort", port);
    int reaches_loopback = strchr(address, ':') == NULL &&
                           (docker_is_unspecified(address) || docker_is_loopback(address));

    if (bindings != NULL && !reaches_loopback)
        json_array_append_new(bindings,
                              json_pack("{s:s, s:s}", "HostIp", "127.0.0.1", "HostPort", port));
    return bindings;
}

static json_t *docker_create_host_config(const docker_create_input_t *in,
                                         const docker_options_t *opts)
{
    json_t *host = json_pack("{s:s, s:[{s:s, s:s, s:s}]}", "NetworkMode",
                             opts->bridge ? "bridge" : "host", "Mounts", "Type",
                             opts->cache_is_path ? "bind" : "volume", "Source", opts->cache,
                             "Target", docker_cache_target(in));
    char port[16], key[32];

    if (host == NULL)
        return NULL;
    if (opts->shm_bytes > 0)
        json_object_set_new(host, "ShmSize", json_integer(opts->shm_bytes));
    if (in->gpu_count > 0)
        json_object_set_new(host, "DeviceRequests", docker_create_devices(in));
    if (opts->bridge) {
        snprintf(port, sizeof(port), "%d", in->port);
        snprintf(key, sizeof(key), "%d/tcp", in->port);
        json_object_set_new(host, "PortBindings",
                            json_pack("{s:o}", key, docker_create_bindings(opts, port)));
    }
    return host;
}

json_t *docker_create_body(const docker_create_input_t *in, const docker_options_t *opts,
                           char *err, size_t err_size)
{
    json_t *env = docker_create_env(in);
    json_t *cmd = docker_create_cmd(in, err, err_size);
    json_t *labels = docker_create_labels(in);
    json_t *host = docker_create_host_config(in, opts);
    json_t *body = NULL;
    char key[32];

    if (cmd == NULL)
        goto out;
    if (env == NULL || labels == NULL || host == NULL) {
        snprintf(err, err_size, "out of memory building the container configuration");
        goto out;
    }
    body = json_pack("{s:s, s:O, s:O, s:O, s:O, s:b}", "Image", opts->image, "Env", env,
                     "Labels", labels, "HostConfig", host, "Cmd", cmd, "Tty", 0);
    if (body != NULL && json_is_null(cmd))
        json_object_del(body, "Cmd");
    if (body != NULL && opts->user[0] != '\0')
        json_object_set_new(body, "User", json_string(opts->user));
    if (body != NULL && opts->bridge) {
        snprintf(key, sizeof(key), "%d/tcp", in->port);
        json_object_set_new(body, "ExposedPorts", json_pack("{s:{}}", key));
    }
    if (body == NULL)
        snprintf(err, err_size, "out of memory building the container configuration");

out:
    json_decref(env);
    json_decref(cmd);
    json_decref(labels);
    json_decref(host);
    return body;
}
