/* Unit tests for the Docker options of a configuration and the container
 * create body: devices, environment, cache, network, labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/docker_create.h"

#define AGENT_KEY "gpu-01@127.0.0.1:8470"

static json_t *load(const char *text)
{
    json_error_t error;
    json_t *doc = json_loads(text, 0, &error);

    if (doc == NULL)
        fail_msg("bad test JSON: %s", error.text);
    return doc;
}

/* Build the body of config with env and gpu ids for an agent whose
 * default publish address is default_publish, checking every step. */
static json_t *build_published(const char *config_text, const char *env_text,
                               const char *const *gpu_ids, const char *default_publish)
{
    json_t *config = load(config_text), *env = load(env_text);
    docker_options_t opts;
    char err[512] = "";
    int gpus;

    if (docker_options_parse(config, default_publish, &opts, err, sizeof(err)) != 0)
        fail_msg("docker_options_parse: %s", err);
    gpus = docker_gpu_count(config, gpu_ids, "gpu-01", err, sizeof(err));
    assert_true(gpus >= 0);
    docker_create_input_t in = {
        .instance_id = "abc123",
        .agent_key = AGENT_KEY,
        .config = config,
        .env = env,
        .gpu_ids = gpu_ids,
        .gpu_count = (size_t)gpus,
        .port = 8123,
    };
    json_t *body = docker_create_body(&in, &opts, err, sizeof(err));
    if (body == NULL)
        fail_msg("docker_create_body: %s", err);
    json_decref(config);
    json_decref(env);
    return body;
}

static json_t *build(const char *config_text, const char *env_text, const char *const *gpu_ids)
{
    return build_published(config_text, env_text, gpu_ids, NULL);
}

/* The HostIp of each binding of the container port 8123, joined by ",". */
static void bindings_text(const json_t *body, char *out, size_t size)
{
    json_t *host = json_object_get(body, "HostConfig");
    json_t *bindings = json_object_get(json_object_get(host, "PortBindings"), "8123/tcp");
    json_t *binding;
    size_t i, len = 0;

    out[0] = '\0';
    json_array_foreach(bindings, i, binding) {
        assert_string_equal(json_string_value(json_object_get(binding, "HostPort")), "8123");
        len += (size_t)snprintf(out + len, size - len, "%s%s", i > 0 ? "," : "",
                                json_string_value(json_object_get(binding, "HostIp")));
    }
}

static int env_has(const json_t *body, const char *pair)
{
    json_t *item;
    size_t i;

    json_array_foreach(json_object_get(body, "Env"), i, item) {
        if (strcmp(json_string_value(item), pair) == 0)
            return 1;
    }
    return 0;
}

static const char *env_value(const json_t *body, const char *name)
{
    json_t *item;
    size_t i, len = strlen(name);

    json_array_foreach(json_object_get(body, "Env"), i, item) {
        const char *text = json_string_value(item);
        if (strncmp(text, name, len) == 0 && text[len] == '=')
            return text + len + 1;
    }
    return NULL;
}

static void create_gpu_device_ids(void **state)
{
    static const char *const ids[] = {"2", "5", NULL};
    json_t *body = build("{\"image\":\"nvcr.io/nim/x:1\",\"gpus\":2}", "{}", ids);
    json_t *host = json_object_get(body, "HostConfig");
    json_t *request = json_array_get(json_object_get(host, "DeviceRequests"), 0);

    (void)state;
    assert_int_equal(json_array_size(json_object_get(host, "DeviceRequests")), 1);
    assert_string_equal(json_string_value(json_object_get(request, "Driver")), "nvidia");
    assert_null(json_object_get(request, "Count"));
    json_t *device_ids = json_object_get(request, "DeviceIDs");
    assert_int_equal(json_array_size(device_ids), 2);
    assert_string_equal(json_string_value(json_array_get(device_ids, 0)), "2");
    assert_string_equal(json_string_value(json_array_get(device_ids, 1)), "5");
    json_t *caps = json_object_get(request, "Capabilities");
    assert_string_equal(json_string_value(json_array_get(json_array_get(caps, 0), 0)), "gpu");
    assert_null(env_value(body, "NVIDIA_VISIBLE_DEVICES"));
    json_decref(body);
}

static void create_gpu_count_takes_first(void **state)
{
    static const char *const ids[] = {"0", "1", "2", NULL};
    json_t *body = build("{\"image\":\"m:1\",\"gpus\":1}", "{}", ids);
    json_t *request = json_array_get(
        json_object_get(json_object_get(body, "HostConfig"), "DeviceRequests"), 0);

    (void)state;
    assert_int_equal(json_array_size(json_object_get(request, "DeviceIDs")), 1);
    assert_null(json_object_get(request, "Count"));
    json_decref(body);

    body = build("{\"image\":\"m:1\",\"gpus\":\"all\"}", "{}", ids);
    request = json_array_get(json_object_get(json_object_get(body, "HostConfig"), "DeviceRequests"),
                             0);
    assert_int_equal(json_array_size(json_object_get(request, "DeviceIDs")), 3);
    json_decref(body);
}

static void create_no_gpus_is_void(void **state)
{
    json_t *body = build("{\"image\":\"m:1\",\"gpus\":0}",
                         "{\"NVIDIA_VISIBLE_DEVICES\":\"all\"}", NULL);

    (void)state;
    assert_null(json_object_get(json_object_get(body, "HostConfig"), "DeviceRequests"));
    assert_string_equal(env_value(body, "NVIDIA_VISIBLE_DEVICES"), "void");
    json_decref(body);
}

static void create_gpus_requested_none_given(void **state)
{
    static const char *const empty[] = {NULL};
    static const char *const one[] = {"0", NULL};
    static const char *const configs[] = {"{\"gpus\":\"all\"}", "{\"gpus\":1}", "{\"gpus\":[\"0\"]}"};
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        json_t *config = load(configs[i]);
        assert_int_equal(docker_gpu_count(config, NULL, "gpu-01", err, sizeof(err)), -1);
        assert_non_null(strstr(err, "agent gpu-01 has no GPU"));
        assert_int_equal(docker_gpu_count(config, empty, "gpu-01", err, sizeof(err)), -1);
        json_decref(config);
    }
    json_t *config = load("{\"gpus\":2}");
    assert_int_equal(docker_gpu_count(config, one, "gpu-01", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "assigned only 1"));
    json_decref(config);
    config = load("{\"gpus\":null}");
    assert_int_equal(docker_gpu_count(config, one, "gpu-01", err, sizeof(err)), 0);
    json_decref(config);
    config = load("{\"gpus\":[]}");
    assert_int_equal(docker_gpu_count(config, NULL, "gpu-01", err, sizeof(err)), 0);
    json_decref(config);
}

static void create_env_and_command(void **state)
{
    json_t *body = build("{\"image\":\"m:1\",\"command\":[\"serve\",\"--port={port}\"]}",
                         "{\"A\":\"1\",\"PORT\":\"99\",\"NUM\":7,\"SKIP\":null}", NULL);
    json_t *cmd = json_object_get(body, "Cmd");

    (void)state;
    assert_true(env_has(body, "A=1"));
    assert_true(env_has(body, "NUM=7"));
    assert_null(env_value(body, "SKIP"));
    assert_string_equal(env_value(body, "PORT"), "8123");
    assert_string_equal(env_value(body, "NIM_SERVER_PORT"), "8123");
    assert_string_equal(env_value(body, "NIM_CACHE_PATH"), "/opt/nim/.cache");
    assert_int_equal(json_array_size(cmd), 2);
    assert_string_equal(json_string_value(json_array_get(cmd, 1)), "--port=8123");
    assert_false(json_is_true(json_object_get(body, "Tty")));
    json_decref(body);

    body = build("{\"image\":\"m:1\"}", "{}", NULL);
    assert_null(json_object_get(body, "Cmd"));
    assert_null(json_object_get(body, "User"));
    json_decref(body);
}

static void create_labels(void **state)
{
    json_t *body = build("{\"image\":\"m:1\"}", "{}", NULL);
    json_t *labels = json_object_get(body, "Labels");

    (void)state;
    assert_string_equal(json_string_value(json_object_get(labels, "nimdeck.instance")), "abc123");
    assert_string_equal(json_string_value(json_object_get(labels, "nimdeck.agent")), AGENT_KEY);
    assert_string_equal(json_string_value(json_object_get(labels, "nimdeck.managed")), "1");
    assert_string_equal(json_string_value(json_object_get(labels, "nimdeck.port")), "8123");
    json_decref(body);
}

static void create_cache_mounts(void **state)
{
    json_t *body = build("{\"image\":\"nvcr.io/nim/meta/llama-3.1-8b-instruct:latest\"}", "{}", NULL);
    json_t *mount = json_array_get(json_object_get(json_object_get(body, "HostConfig"), "Mounts"), 0);

    (void)state;
    assert_string_equal(json_string_value(json_object_get(mount, "Type")), "volume");
    assert_string_equal(json_string_value(json_object_get(mount, "Source")),
                        "nimdeck-cache-nvcr.io_nim_meta_llama-3.1-8b-instruct");
    assert_string_equal(json_string_value(json_object_get(mount, "Target")), "/opt/nim/.cache");
    json_decref(body);

    body = build("{\"image\":\"m:1\",\"docker\":{\"cache\":\"/srv/nim-cache\"}}",
                 "{\"NIM_CACHE_PATH\":\"/cache\"}", NULL);
    mount = json_array_get(json_object_get(json_object_get(body, "HostConfig"), "Mounts"), 0);
    assert_string_equal(json_string_value(json_object_get(mount, "Type")), "bind");
    assert_string_equal(json_string_value(json_object_get(mount, "Source")), "/srv/nim-cache");
    assert_string_equal(json_string_value(json_object_get(mount, "Target")), "/cache");
    assert_string_equal(env_value(body, "NIM_CACHE_PATH"), "/cache");
    json_decref(body);
}

static void create_network_and_options(void **state)
{
    json_t *body = build("{\"image\":\"m:1\",\"docker\":{\"network\":\"bridge\","
                         "\"publish_address\":\"10.0.0.21\",\"shm_size\":\"16g\",\"user\":\"1000\"}}",
                         "{}", NULL);
    json_t *host = json_object_get(body, "HostConfig");
    char bindings[128];

    (void)state;
    assert_string_equal(json_string_value(json_object_get(host, "NetworkMode")), "bridge");
    assert_int_equal(json_integer_value(json_object_get(host, "ShmSize")), 16LL << 30);
    assert_string_equal(json_string_value(json_object_get(body, "User")), "1000");
    assert_non_null(json_object_get(json_object_get(body, "ExposedPorts"), "8123/tcp"));
    bindings_text(body, bindings, sizeof(bindings));
    assert_string_equal(bindings, "10.0.0.21,127.0.0.1");
    json_decref(body);

    /* Numbers, as --set docker.shm_size=1073741824 and docker.user=1000 give. */
    body = build("{\"image\":\"m:1\",\"docker\":{\"shm_size\":1073741824,\"user\":1000}}", "{}",
                 NULL);
    host = json_object_get(body, "HostConfig");
    assert_int_equal(json_integer_value(json_object_get(host, "ShmSize")), 1073741824);
    assert_string_equal(json_string_value(json_object_get(body, "User")), "1000");
    json_decref(body);

    body = build("{\"image\":\"m:1\",\"docker\":{\"network\":\"host\"}}", "{}", NULL);
    host = json_object_get(body, "HostConfig");
    assert_string_equal(json_string_value(json_object_get(host, "NetworkMode")), "host");
    assert_null(json_object_get(host, "PortBindings"));
    assert_null(json_object_get(body, "ExposedPorts"));
    assert_null(json_object_get(host, "ShmSize"));
    json_decref(body);
}

/* Without docker.network, a container gets its own network namespace, with
 * its port published only on the loopback address: a NIM listens on
 * 0.0.0.0, and host networking would put it on every interface without a
 * token. */
static void create_default_bridge_on_loopback(void **state)
{
    json_t *body = build("{\"image\":\"m:1\"}", "{}", NULL);
    json_t *host = json_object_get(body, "HostConfig");
    char bindings[128];

    (void)state;
    assert_string_equal(json_string_value(json_object_get(host, "NetworkMode")), "bridge");
    assert_non_null(json_object_get(json_object_get(body, "ExposedPorts"), "8123/tcp"));
    bindings_text(body, bindings, sizeof(bindings));
    assert_string_equal(bindings, "127.0.0.1");
    json_decref(body);

    /* An agent that advertises another address publishes there, for a
     * gateway on another machine, and on 127.0.0.1 for its health probe. */
    body = build_published("{\"image\":\"m:1\"}", "{}", NULL, "10.0.0.5");
    bindings_text(body, bindings, sizeof(bindings));
    assert_string_equal(bindings, "10.0.0.5,127.0.0.1");
    json_decref(body);

    /* An explicit publish_address wins over the agent's. */
    body = build_published("{\"image\":\"m:1\",\"docker\":{\"publish_address\":\"0.0.0.0\"}}",
                           "{}", NULL, "10.0.0.5");
    bindings_text(body, bindings, sizeof(bindings));
    assert_string_equal(bindings, "0.0.0.0");
    json_decref(body);

    body = build("{\"image\":\"m:1\",\"docker\":{\"publish_address\":\"::1\"}}", "{}", NULL);
    bindings_text(body, bindings, sizeof(bindings));
    assert_string_equal(bindings, "::1,127.0.0.1");
    json_decref(body);
}

static void create_publish_default(void **state)
{
    static const struct {
        const char *advertise_host;
        const char *address;
    } cases[] = {
        {NULL, "127.0.0.1"},        {"", "127.0.0.1"},          {"localhost", "127.0.0.1"},
        {"127.0.0.1", "127.0.0.1"}, {"127.1.2.3", "127.0.0.1"}, {"::1", "127.0.0.1"},
        {"0.0.0.0", "127.0.0.1"},   {"::", "127.0.0.1"},        {"10.0.0.5", "10.0.0.5"},
        {"fd00::5", "fd00::5"},     {"::ffff:127.0.0.1", "127.0.0.1"},
    };
    char out[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(docker_publish_default(cases[i].advertise_host, out, sizeof(out)), 0);
        assert_string_equal(out, cases[i].address);
    }
    /* A host name is resolved by the caller. */
    assert_int_equal(docker_publish_default("gpu-01.example", out, sizeof(out)), 1);
}

/* The agent rejects what config_validate rejects, with the same message. */
static void create_bad_options(void **state)
{
    static const struct {
        const char *config;
        const char *message;
    } cases[] = {
        {"{}", "missing required key \"image\""},
        {"{\"image\":\"bad image\"}", "\"image\" must be an image reference"},
        {"{\"image\":\"m\",\"docker\":{\"shm_size\":\"lots\"}}",
         "\"docker.shm_size\" must be a size such as \"16g\""},
        {"{\"image\":\"m\",\"docker\":{\"cache\":\"my cache\"}}",
         "\"docker.cache\" must be an absolute host path"},
        {"{\"image\":\"m\",\"docker\":{\"network\":\"none\"}}",
         "\"docker.network\" must be \"host\" or \"bridge\", got \"none\""},
        {"{\"image\":\"m\",\"docker\":{\"publish_address\":\"example.com\"}}",
         "\"docker.publish_address\" must be an IP address"},
        {"{\"image\":\"m\",\"docker\":{\"pull\":\"never\"}}", "\"docker.pull\" must be"},
    };
    docker_options_t opts;
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *config = load(cases[i].config);
        err[0] = '\0';
        assert_int_equal(docker_options_parse(config, NULL, &opts, err, sizeof(err)), -1);
        if (strstr(err, cases[i].message) == NULL)
            fail_msg("expected \"%s\" in \"%s\"", cases[i].message, err);
        json_decref(config);
    }
}

static void create_names(void **state)
{
    char out[128];

    (void)state;
    docker_cache_volume_name("registry.local:5000/team/model@sha256:ab", out, sizeof(out));
    assert_string_equal(out, "nimdeck-cache-registry.local_5000_team_model");
    docker_container_name("abc123", out, sizeof(out));
    assert_string_equal(out, "nimdeck-abc123");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_gpu_device_ids),
        cmocka_unit_test(create_gpu_count_takes_first),
        cmocka_unit_test(create_no_gpus_is_void),
        cmocka_unit_test(create_gpus_requested_none_given),
        cmocka_unit_test(create_env_and_command),
        cmocka_unit_test(create_labels),
        cmocka_unit_test(create_cache_mounts),
        cmocka_unit_test(create_network_and_options),
        cmocka_unit_test(create_default_bridge_on_loopback),
        cmocka_unit_test(create_publish_default),
        cmocka_unit_test(create_bad_options),
        cmocka_unit_test(create_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
