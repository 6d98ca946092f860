/* Unit tests for configuration validation, dotted-key edits and export. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/config_docker.h"

static const char *const sim_config =
    "{\"version\":1,\"name\":\"nim-sim\",\"project\":\"demo\",\"runtime\":\"process\","
    "\"image\":\"nimdeck/sim\",\"command\":[\"nimdeck\",\"sim\",\"--port\",\"{port}\"],"
    "\"queue\":\"default\",\"route\":null,\"idle_time_limit_hours\":1,"
    "\"env\":{\"NIM_LOG_LEVEL\":\"INFO\"},\"tags\":[\"demo\",\"simulator\"]}";

static json_t *load(const char *text)
{
    json_t *cfg = json_loads(text, 0, NULL);
    assert_non_null(cfg);
    return cfg;
}

/* The simulator configuration with one key replaced by a JSON value. */
static json_t *sim_with(const char *key, const char *value_json)
{
    json_t *cfg = load(sim_config);
    json_t *value = json_loads(value_json, JSON_DECODE_ANY, NULL);

    assert_non_null(value);
    assert_int_equal(json_object_set_new(cfg, key, value), 0);
    return cfg;
}

static void expect_invalid(json_t *cfg, const char *field, const char *fragment)
{
    config_error_t err;

    assert_int_equal(config_validate(cfg, &err), -1);
    assert_string_equal(err.field, field);
    if (strstr(err.message, fragment) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, fragment);
    json_decref(cfg);
}

static void expect_valid(json_t *cfg)
{
    config_error_t err;

    if (config_validate(cfg, &err) != 0)
        fail_msg("rejected at %s: %s", err.field, err.message);
    json_decref(cfg);
}

static void validate_sim_example(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_validate(cfg, &err), 0);
    assert_string_equal(json_string_value(json_object_get(cfg, "health_path")), "/v1/health/ready");
    assert_int_equal(json_integer_value(json_object_get(cfg, "gpus")), 0);
    assert_true(json_is_null(json_object_get(cfg, "port")));
    assert_null(json_object_get(cfg, "docker"));
    json_decref(cfg);
}

static void validate_fills_defaults(void **state)
{
    (void)state;
    json_t *cfg = load("{\"name\":\"a\",\"project\":\"p\",\"runtime\":\"process\",\"command\":[\"x\"]}");
    config_error_t err;

    assert_int_equal(config_validate(cfg, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(cfg, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(cfg, "queue")), "default");
    assert_true(json_is_null(json_object_get(cfg, "route")));
    assert_true(json_is_null(json_object_get(cfg, "idle_time_limit_hours")));
    assert_true(json_is_object(json_object_get(cfg, "env")));
    assert_true(json_is_array(json_object_get(cfg, "tags")));
    assert_string_equal(json_string_value(json_object_get(cfg, "health_path")), "/v1/health/ready");
    json_decref(cfg);
}

static void validate_docker_defaults(void **state)
{
    (void)state;
    json_t *cfg = load("{\"name\":\"a\",\"project\":\"p\",\"runtime\":\"docker\",\"image\":\"nvcr.io/nim/x:1\"}");
    config_error_t err;

    assert_int_equal(config_validate(cfg, &err), 0);
    assert_true(json_is_object(json_object_get(cfg, "docker")));
    json_decref(cfg);
}

static void validate_unknown_key(void **state)
{
    (void)state;
    json_t *cfg = sim_with("idle_hours", "2");
    config_error_t err;

    assert_int_equal(config_validate(cfg, &err), -1);
    assert_string_equal(err.field, "idle_hours");
    assert_non_null(strstr(err.message, "unknown key \"idle_hours\""));
    assert_non_null(strstr(err.message, "valid keys are"));
    assert_non_null(strstr(err.message, "idle_time_limit_hours"));
    json_decref(cfg);
}

static void validate_not_object(void **state)
{
    (void)state;
    expect_invalid(json_array(), "", "JSON object");
}

static void validate_missing_required(void **state)
{
    (void)state;
    const char *keys[] = {"name", "project", "runtime", "command"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *cfg = load(sim_config);
        json_object_del(cfg, keys[i]);
        expect_invalid(cfg, keys[i], "missing required key");
    }
}

static void validate_docker_needs_image(void **state)
{
    (void)state;
    json_t *cfg = sim_with("runtime", "\"docker\"");
    json_object_del(cfg, "image");
    expect_invalid(cfg, "image", "missing required key \"image\"");
}

static void validate_process_image_optional(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    json_object_del(cfg, "image");
    expect_valid(cfg);
}

static void validate_idle_wrong_type(void **state)
{
    (void)state;
    expect_invalid(sim_with("idle_time_limit_hours", "\"abc\""), "idle_time_limit_hours",
                   "\"idle_time_limit_hours\" must be a number of hours >= 0 or null");
    expect_invalid(sim_with("idle_time_limit_hours", "\"abc\""), "idle_time_limit_hours",
                   "got \"abc\"");
    expect_invalid(sim_with("idle_time_limit_hours", "-1"), "idle_time_limit_hours", "got -1");
}

static void validate_idle_accepted(void **state)
{
    (void)state;
    expect_valid(sim_with("idle_time_limit_hours", "0"));
    expect_valid(sim_with("idle_time_limit_hours", "0.002"));
    expect_valid(sim_with("idle_time_limit_hours", "null"));
}

static void validate_port_range(void **state)
{
    (void)state;
    expect_invalid(sim_with("port", "0"), "port", "from 1 to 65535");
    expect_invalid(sim_with("port", "65536"), "port", "got 65536");
    expect_invalid(sim_with("port", "\"8000\""), "port", "got \"8000\"");
    expect_invalid(sim_with("port", "80.5"), "port", "port");
    expect_valid(sim_with("port", "8000"));
    expect_valid(sim_with("port", "null"));
}

static void validate_gpus_forms(void **state)
{
    (void)state;
    expect_valid(sim_with("gpus", "\"all\""));
    expect_valid(sim_with("gpus", "2"));
    expect_valid(sim_with("gpus", "0"));
    expect_valid(sim_with("gpus", "null"));
    expect_valid(sim_with("gpus", "[0, \"GPU-1234\"]"));
    expect_invalid(sim_with("gpus", "\"two\""), "gpus", "\"all\", a count");
    expect_invalid(sim_with("gpus", "-1"), "gpus", "got -1");
    expect_invalid(sim_with("gpus", "[true]"), "gpus", "element 0");
    expect_invalid(sim_with("gpus", "[0, \"0,1\"]"), "gpus", "element 1");
}

static void validate_gpus_duplicates(void **state)
{
    (void)state;
    expect_invalid(sim_with("gpus", "[\"0\", \"0\"]"), "gpus", "device \"0\" twice");
    expect_invalid(sim_with("gpus", "[0, \"1\", \"0\"]"), "gpus", "elements 0 and 2");
    expect_invalid(sim_with("gpus", "[\"GPU-a\", \"GPU-a\"]"), "gpus", "\"GPU-a\" twice");
    expect_valid(sim_with("gpus", "[0, 1, \"GPU-a\"]"));
}

static void validate_tag_and_env_limits(void **state)
{
    (void)state;
    /* 64 two-byte characters are 64 characters, not 128. */
    char tags[512] = "[\"";
    for (int i = 0; i < CONFIG_TAG_CHARS_MAX; i++)
        strcat(tags, "\xc3\xa9");
    strcat(tags, "\"]");
    expect_valid(sim_with("tags", tags));
    tags[strlen(tags) - 2] = '\0';
    strcat(tags, "x\"]");
    expect_invalid(sim_with("tags", tags), "tags", "65 characters long");

    expect_invalid(sim_with("env", "null"), "env", "got null; use {} or --unset env");
    expect_invalid(sim_with("env", "{\"1X\":\"v\"}"), "env.1X", "not a valid environment");
}

static void validate_name_charset(void **state)
{
    (void)state;
    expect_invalid(sim_with("name", "\"has space\""), "name", "got \"has space\"");
    expect_invalid(sim_with("name", "\"\""), "name", "1-64");
    expect_invalid(sim_with("project", "5"), "project", "got the number 5");
    expect_invalid(sim_with("name", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""),
                   "name", "1-64");
    expect_valid(sim_with("name", "\"Llama_3.1-8b\""));
}

static void validate_runtime_choice(void **state)
{
    (void)state;
    expect_invalid(sim_with("runtime", "\"podman\""), "runtime", "\"process\" or \"docker\"");
}

static void validate_version_one(void **state)
{
    (void)state;
    expect_invalid(sim_with("version", "2"), "version", "must be 1");
    expect_invalid(sim_with("version", "\"1\""), "version", "got \"1\"");
}

static void validate_command_forms(void **state)
{
    (void)state;
    expect_invalid(sim_with("command", "[]"), "command", "must not be empty");
    expect_invalid(sim_with("command", "\"nimdeck sim\""), "command", "array of strings");
    expect_invalid(sim_with("command", "[\"a\", 3]"), "command", "element 1");
    expect_invalid(sim_with("command", "[\"\"]"), "command", "element 0");
}

static void validate_env_rules(void **state)
{
    (void)state;
    expect_invalid(sim_with("env", "{\"1BAD\":\"x\"}"), "env.1BAD", "environment variable name");
    expect_invalid(sim_with("env", "{\"A-B\":\"x\"}"), "env.A-B", "environment variable name");
    expect_invalid(sim_with("env", "{\"N\":3}"), "env.N", "must be a string");
    expect_invalid(sim_with("env", "[]"), "env", "object");
    expect_valid(sim_with("env", "{\"NGC_API_KEY\":null,\"_X1\":\"\"}"));
}

static void validate_env_hides_value(void **state)
{
    (void)state;
    /* An array or object under env may hold secret strings: type only. */
    json_t *cfg = sim_with("env", "{\"API_KEY\":[\"nvapi-0123456789abcdefSECRET\"]}");
    config_error_t err;

    assert_int_equal(config_validate(cfg, &err), -1);
    assert_string_equal(err.field, "env.API_KEY");
    assert_non_null(strstr(err.message, "got an array"));
    assert_null(strstr(err.message, "0123456789"));
    assert_null(strstr(err.message, "--set"));
    json_decref(cfg);

    cfg = sim_with("env", "{\"API_KEY\":{\"v\":\"nvapi-0123456789abcdefSECRET\"}}");
    assert_int_equal(config_validate(cfg, &err), -1);
    assert_non_null(strstr(err.message, "got an object"));
    assert_null(strstr(err.message, "0123456789"));
    json_decref(cfg);
}

/* --set env.NIM_SERVER_PORT=8000 reads 8000 as a JSON number. The error
 * shows how to pass it as a string, and that form passes. */
static void set_env_number_quoting(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "env.NIM_SERVER_PORT=8000", &err), 0);
    assert_int_equal(config_validate(cfg, &err), -1);
    assert_string_equal(err.field, "env.NIM_SERVER_PORT");
    assert_string_equal(err.message,
                        "\"env.NIM_SERVER_PORT\" must be a string or null, got the number 8000; to "
                        "set it from the command line, quote it as JSON: "
                        "--set 'env.NIM_SERVER_PORT=\"8000\"'");

    assert_int_equal(config_apply_set(cfg, "env.NIM_SERVER_PORT=\"8000\"", &err), 0);
    if (config_validate(cfg, &err) != 0)
        fail_msg("rejected at %s: %s", err.field, err.message);
    json_t *port = json_object_get(json_object_get(cfg, "env"), "NIM_SERVER_PORT");
    assert_string_equal(json_string_value(port), "8000");
    json_decref(cfg);
}

/* Set key=value with --set, validate, and expect fragment in the message,
 * and the quoting hint when hint is not NULL (else no hint at all). */
static void expect_set_message(const char *assignment, const char *field, const char *fragment,
                               const char *hint)
{
    json_t *cfg = load(sim_config);
    config_error_t err;

    if (config_apply_set(cfg, assignment, &err) != 0)
        fail_msg("--set %s rejected: %s", assignment, err.message);
    assert_int_equal(config_validate(cfg, &err), -1);
    assert_string_equal(err.field, field);
    if (strstr(err.message, fragment) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, fragment);
    if (hint != NULL && strstr(err.message, hint) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, hint);
    if (hint == NULL && strstr(err.message, "--set") != NULL)
        fail_msg("message \"%s\" suggests a --set that would not pass", err.message);
    json_decref(cfg);
}

static void set_string_keys_quoting(void **state)
{
    (void)state;
    expect_set_message("name=123", "name", "got the number 123", "--set 'name=\"123\"'");
    expect_set_message("project=true", "project", "got the boolean true",
                       "--set 'project=\"true\"'");
    expect_set_message("image=7", "image", "got the number 7", "--set 'image=\"7\"'");
    expect_set_message("queue=null", "queue", "got null", "--set 'queue=\"null\"'");
    expect_set_message("route=2.5", "route", "got the number 2.5", "--set 'route=\"2.5\"'");
    expect_set_message("docker.cache=123", "docker.cache", "got the number 123",
                       "--set 'docker.cache=\"123\"'");
    expect_set_message("env.VERBOSE=false", "env.VERBOSE", "got the boolean false",
                       "--set 'env.VERBOSE=\"false\"'");

    /* No quoting would make these valid. */
    expect_set_message("runtime=1", "runtime", "got the number 1", NULL);
    expect_set_message("health_path=5", "health_path", "got the number 5", NULL);
    expect_set_message("docker.network=1", "docker.network", "got the number 1", NULL);
    expect_set_message("route=-1", "route", "got the number -1", NULL);
    expect_set_message("name=\"has space\"", "name", "got \"has space\"", NULL);
}

static void set_through_array_rejected(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "tags.0=x", &err), -1);
    assert_string_equal(err.field, "tags.0");
    assert_non_null(strstr(err.message, "\"tags\" is an array"));
    assert_non_null(strstr(err.message, "arrays are set whole"));
    assert_non_null(strstr(err.message, "--set 'tags=[\"a\",\"b\"]'"));
    assert_true(json_is_array(json_object_get(cfg, "tags")));
    assert_int_equal(json_array_size(json_object_get(cfg, "tags")), 2);

    assert_int_equal(config_unset_path(cfg, "tags.0", &err), -1);
    assert_non_null(strstr(err.message, "arrays are set whole"));
    assert_int_equal(json_array_size(json_object_get(cfg, "tags")), 2);

    assert_int_equal(config_apply_set(cfg, "command.1.x=y", &err), -1);
    assert_non_null(strstr(err.message, "\"command\" is an array"));
    assert_non_null(strstr(err.message, "--set 'command=[\"my-server\",\"--port\",\"{port}\"]'"));

    /* An array key that the file leaves out is still an array. */
    json_object_del(cfg, "tags");
    assert_int_equal(config_apply_set(cfg, "tags.0=x", &err), -1);
    assert_non_null(strstr(err.message, "arrays are set whole"));
    assert_null(json_object_get(cfg, "tags"));
    json_decref(cfg);
}

static void validate_tags_strings(void **state)
{
    (void)state;
    expect_invalid(sim_with("tags", "[\"a\", 1]"), "tags", "element 1");
    expect_invalid(sim_with("tags", "\"a\""), "tags", "array of strings");
}

static void validate_route_and_queue(void **state)
{
    (void)state;
    expect_valid(sim_with("route", "\"llama\""));
    expect_invalid(sim_with("route", "\"Bad Route\""), "route", "route name");
    expect_invalid(sim_with("queue", "null"), "queue", "queue name");
    expect_invalid(sim_with("queue", "\"-x\""), "queue", "starting with a letter or digit");
}

static void validate_health_path(void **state)
{
    (void)state;
    expect_invalid(sim_with("health_path", "\"v1/health\""), "health_path", "starting with \"/\"");
    expect_valid(sim_with("health_path", "\"/healthz\""));
}

static void validate_docker_object(void **state)
{
    (void)state;
    expect_valid(sim_with("docker", "{\"shm_size\":\"16g\",\"network\":\"host\",\"pull\":\"always\","
                                    "\"cache\":\"/var/cache/nim\",\"user\":\"1000\","
                                    "\"publish_address\":\"127.0.0.1\"}"));
    expect_invalid(sim_with("docker", "{\"shm\":\"1g\"}"), "docker.shm", "unknown key \"docker.shm\"");
    expect_invalid(sim_with("docker", "{\"network\":\"none\"}"), "docker.network",
                   "\"host\" or \"bridge\"");
    expect_invalid(sim_with("docker", "{\"pull\":\"never\"}"), "docker.pull", "\"missing\" or \"always\"");
    expect_invalid(sim_with("docker", "{\"shm_size\":\"\"}"), "docker.shm_size", "got \"\"");
    expect_invalid(sim_with("docker", "true"), "docker", "object");
}

/* A docker configuration with one "docker" option set to a JSON value. */
static json_t *docker_with(const char *key, const char *value_json)
{
    json_t *cfg = load("{\"name\":\"llama\",\"project\":\"p\",\"runtime\":\"docker\","
                       "\"image\":\"nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3.0\"}");
    json_t *docker = json_object();
    json_t *value = json_loads(value_json, JSON_DECODE_ANY, NULL);

    assert_non_null(value);
    assert_int_equal(json_object_set_new(docker, key, value), 0);
    assert_int_equal(json_object_set_new(cfg, "docker", docker), 0);
    return cfg;
}

/* Values the agent could not use fail at launch, on their field, naming
 * the value and the form expected. */
static void validate_docker_values(void **state)
{
    (void)state;
    expect_invalid(docker_with("shm_size", "\"lots\""), "docker.shm_size",
                   "\"docker.shm_size\" must be a size such as \"16g\" or \"512m\" (k, m, g, t are "
                   "powers of 1024) or a whole number of bytes, got \"lots\"");
    expect_invalid(docker_with("shm_size", "0"), "docker.shm_size", "got the number 0");
    expect_invalid(docker_with("shm_size", "1.5"), "docker.shm_size", "got the number 1.5");
    expect_invalid(docker_with("shm_size", "\"-1g\""), "docker.shm_size", "got \"-1g\"");
    expect_invalid(docker_with("publish_address", "\"notanip\""), "docker.publish_address",
                   "must be an IP address of this machine such as \"127.0.0.1\" or \"10.0.0.5\" "
                   "(\"0.0.0.0\" publishes on every interface), got \"notanip\"");
    expect_invalid(docker_with("publish_address", "\"10.0.0.256\""), "docker.publish_address",
                   "got \"10.0.0.256\"");
    expect_invalid(docker_with("cache", "\"my cache\""), "docker.cache",
                   "must be an absolute host path such as \"/var/cache/nim\"");
    expect_invalid(docker_with("cache", "\"cache/llama\""), "docker.cache", "got \"cache/llama\"");
    expect_invalid(docker_with("cache", "\"-cache\""), "docker.cache", "got \"-cache\"");
    expect_invalid(docker_with("cache", "\"x\""), "docker.cache", "got \"x\"");
    expect_invalid(docker_with("cache", "\"/\""), "docker.cache", "not \"/\" itself");
    expect_invalid(docker_with("cache", "\"/srv/../etc\""), "docker.cache", "got \"/srv/../etc\"");
    expect_invalid(docker_with("cache", "\"/srv/./nim\""), "docker.cache", "got \"/srv/./nim\"");
    expect_invalid(docker_with("cache", "\"/srv/nim\\ncache\""), "docker.cache", "absolute host path");
    expect_invalid(docker_with("user", "\"1000:\""), "docker.user", "got \"1000:\"");
    expect_invalid(docker_with("user", "\"me and you\""), "docker.user",
                   "must be a user name or uid with an optional :GROUP");
    expect_invalid(docker_with("user", "-1"), "docker.user", "got the number -1");
    expect_invalid(docker_with("user", "true"), "docker.user", "got the boolean true");

    expect_valid(docker_with("shm_size", "\"1.5GiB\""));
    expect_valid(docker_with("publish_address", "\"::1\""));
    expect_valid(docker_with("publish_address", "\"0.0.0.0\""));
    expect_valid(docker_with("cache", "\"/var/cache/nim\""));
    expect_valid(docker_with("cache", "\"nimdeck-cache-llama-3.1-8b-instruct\""));
    expect_valid(docker_with("user", "\"nim:video\""));
    expect_valid(docker_with("user", "0"));
}

/* --set reads docker.shm_size=17179869184 and docker.user=1000 as JSON
 * numbers: bytes and a uid. */
static void set_docker_numbers_accepted(void **state)
{
    json_t *cfg = docker_with("pull", "\"missing\"");
    config_error_t err;

    (void)state;
    assert_int_equal(config_apply_set(cfg, "docker.shm_size=17179869184", &err), 0);
    assert_int_equal(config_apply_set(cfg, "docker.user=1000", &err), 0);
    expect_valid(cfg);
}

static void expect_image(const char *image, const char *fragment)
{
    json_t *cfg = load("{\"name\":\"a\",\"project\":\"p\",\"runtime\":\"docker\"}");

    assert_int_equal(json_object_set_new(cfg, "image", json_string(image)), 0);
    if (fragment == NULL)
        expect_valid(cfg);
    else
        expect_invalid(cfg, "image", fragment);
}

static void validate_image_references(void **state)
{
    static const char *const good[] = {
        "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3.0",
        "nvcr.io/nim/meta/llama-3.1-8b-instruct",
        "ubuntu",
        "library/ubuntu:24.04",
        "localhost/team/model:v1",
        "localhost:5000/team/model",
        "127.0.0.1:5000/nimdeck/none:1",
        "Registry.Example.com/team/model_x__y:Tag-1.0",
        "team/my-model--v2",
        "nvcr.io/nim/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "nvcr.io/nim/x:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        expect_image(good[i], NULL);

    expect_image("bad image", "got \"bad image\": it contains a character outside");
    expect_image("nvcr.io/NIM/Llama:1", "the repository path must be lower case");
    expect_image("team/Model", "the repository path must be lower case");
    expect_image("team//model", "each part of the repository path");
    expect_image("team/model-", "each part of the repository path");
    expect_image("team/.model", "each part of the repository path");
    expect_image("nvcr.io/", "each part of the repository path");
    expect_image("model:", "the tag must be 1-128 characters");
    expect_image("model:.x", "the tag must be 1-128 characters");
    expect_image("model:a:b", "got \"model:a:b\"");
    expect_image("bad_host-.io/x", "the registry is not a host name");
    expect_image("host:port/x", "the registry is not a host name");
    expect_image("model@sha256:abc", "the digest must be ALGORITHM:HEX");
    expect_image("model@sha256", "the digest must be ALGORITHM:HEX");
    expect_image("", "it is empty");

    /* Only docker instances need a reference Docker accepts. */
    expect_valid(sim_with("image", "\"Any Name\""));
}

static void docker_parse_sizes(void **state)
{
    static const struct {
        const char *text;
        int64_t bytes;
    } good[] = {
        {"16g", 16LL << 30}, {"16G", 16LL << 30}, {"16gb", 16LL << 30}, {"512m", 512LL << 20},
        {"1.5GiB", 3LL << 29}, {"64k", 64LL << 10}, {"1073741824", 1073741824LL}, {"2 g", 2LL << 30},
        {"1t", 1LL << 40},
    };
    static const char *const bad[] = {"", "g", "16x", "-1g", "0", "16gg", "1e3", "16 gb x", "lots",
                                      "1.g", "99999999999t"};
    int64_t bytes;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (config_docker_parse_size(good[i].text, &bytes) != 0)
            fail_msg("\"%s\" rejected", good[i].text);
        assert_int_equal(bytes, good[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (config_docker_parse_size(bad[i], &bytes) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
    }
}

static void error_text_valid_utf8(void **state)
{
    (void)state;
    /* 39 ASCII bytes, then a two-byte character across the 40-byte cut. */
    json_t *cfg = sim_with("name", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e9\u00e9\u00e9\"");
    config_error_t err;

    assert_int_equal(config_validate(cfg, &err), -1);
    json_t *message = json_string(err.message);
    assert_non_null(message);
    json_decref(message);
    json_decref(cfg);

    /* An unknown key longer than the field buffer, made of two-byte characters. */
    cfg = load(sim_config);
    char key[301];
    for (size_t i = 0; i < 150; i++) {
        key[2 * i] = (char)0xC3;
        key[2 * i + 1] = (char)0xA9;
    }
    key[300] = '\0';
    json_object_set_new(cfg, key, json_true());
    assert_int_equal(config_validate(cfg, &err), -1);
    json_t *field = json_string(err.field);
    message = json_string(err.message);
    assert_non_null(field);
    assert_non_null(message);
    json_decref(field);
    json_decref(message);
    json_decref(cfg);
}

static void set_parses_json(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "idle_time_limit_hours=0.5", &err), 0);
    assert_true(json_is_real(json_object_get(cfg, "idle_time_limit_hours")));
    assert_int_equal(config_apply_set(cfg, "port=8000", &err), 0);
    assert_int_equal(json_integer_value(json_object_get(cfg, "port")), 8000);
    assert_int_equal(config_apply_set(cfg, "route=null", &err), 0);
    assert_true(json_is_null(json_object_get(cfg, "route")));
    assert_int_equal(config_apply_set(cfg, "tags=[\"a\",\"b\"]", &err), 0);
    assert_int_equal(json_array_size(json_object_get(cfg, "tags")), 2);
    assert_int_equal(config_apply_set(cfg, "name=\"quoted\"", &err), 0);
    assert_string_equal(json_string_value(json_object_get(cfg, "name")), "quoted");
    json_decref(cfg);
}

static void set_raw_string(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "name=my-app", &err), 0);
    assert_string_equal(json_string_value(json_object_get(cfg, "name")), "my-app");
    assert_int_equal(config_apply_set(cfg, "image=", &err), 0);
    assert_string_equal(json_string_value(json_object_get(cfg, "image")), "");
    assert_int_equal(config_apply_set(cfg, "queue=1 2", &err), 0);
    assert_string_equal(json_string_value(json_object_get(cfg, "queue")), "1 2");
    assert_int_equal(config_apply_set(cfg, "env.URL=a=b", &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "env"), "URL")), "a=b");
    json_decref(cfg);
}

static void set_nested_creates(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "docker.shm_size=16g", &err), 0);
    json_t *docker = json_object_get(cfg, "docker");
    assert_true(json_is_object(docker));
    assert_string_equal(json_string_value(json_object_get(docker, "shm_size")), "16g");
    json_decref(cfg);
}

static void set_missing_equals(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "idle_time_limit_hours", &err), -1);
    assert_non_null(strstr(err.message, "\"idle_time_limit_hours\""));
    assert_non_null(strstr(err.message, "KEY=VALUE"));
    assert_int_equal(config_apply_set(cfg, "=3", &err), -1);
    json_decref(cfg);
}

static void set_through_scalar(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "name.x=1", &err), -1);
    assert_string_equal(err.field, "name.x");
    assert_int_equal(config_apply_set(cfg, "env..X=1", &err), -1);
    json_decref(cfg);
}

#define ENV_SECRET "nvapi-0123456789abcdefSECRET"

/* The simulator configuration with env.NGC_API_KEY set to ENV_SECRET. */
static json_t *sim_with_secret(void)
{
    json_t *cfg = load(sim_config);

    assert_int_equal(json_object_set_new(json_object_get(cfg, "env"), "NGC_API_KEY",
                                         json_string(ENV_SECRET)),
                     0);
    return cfg;
}

/* No piece of ENV_SECRET of 5 bytes or more is in text. */
static void assert_no_secret_piece(const char *text)
{
    char piece[6];

    for (size_t i = 0; i + 5 <= strlen(ENV_SECRET); i++) {
        memcpy(piece, &ENV_SECRET[i], 5);
        piece[5] = '\0';
        if (strstr(text, piece) != NULL)
            fail_msg("message \"%s\" contains \"%s\" from the secret", text, piece);
    }
}

static void set_through_env_hides_value(void **state)
{
    (void)state;
    json_t *cfg = sim_with_secret();
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "env.NGC_API_KEY.x=1", &err), -1);
    assert_string_equal(err.field, "env.NGC_API_KEY.x");
    assert_non_null(strstr(err.message, "is a string"));
    assert_no_secret_piece(err.message);

    assert_int_equal(config_unset_path(cfg, "env.NGC_API_KEY.x", &err), -1);
    assert_non_null(strstr(err.message, "is a string"));
    assert_no_secret_piece(err.message);
    json_decref(cfg);
}

static void set_through_env_string(void **state)
{
    (void)state;
    json_t *cfg = sim_with("env", "\"" ENV_SECRET "\"");
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "env.NGC_API_KEY=x", &err), -1);
    assert_non_null(strstr(err.message, "is a string"));
    assert_no_secret_piece(err.message);
    json_decref(cfg);
}

static void set_through_scalar_shows_value(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "name.x=1", &err), -1);
    assert_non_null(strstr(err.message, "\"nim-sim\""));
    json_decref(cfg);
}

static void set_missing_equals_hides_env(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_apply_set(cfg, "env.NGC_API_KEY:" ENV_SECRET, &err), -1);
    assert_non_null(strstr(err.message, "\"env.NGC_API_KEY...\""));
    assert_no_secret_piece(err.message);
    assert_int_equal(config_apply_set(cfg, "ENV.NGC_API_KEY " ENV_SECRET, &err), -1);
    assert_no_secret_piece(err.message);
    assert_int_equal(config_apply_set(cfg, "=" ENV_SECRET, &err), -1);
    assert_no_secret_piece(err.message);
    json_decref(cfg);
}

static void validate_env_string_hidden(void **state)
{
    (void)state;
    json_t *cfg = sim_with("env", "\"" ENV_SECRET "\"");
    config_error_t err;

    assert_int_equal(config_validate(cfg, &err), -1);
    assert_string_equal(err.field, "env");
    assert_non_null(strstr(err.message, "got a string"));
    assert_no_secret_piece(err.message);
    json_decref(cfg);
}

static void set_path_takes_ownership(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_set_path(cfg, "env.NGC_API_KEY", json_string("nvapi-x"), &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "env"), "NGC_API_KEY")),
                        "nvapi-x");
    /* The value is released on failure too; the sanitizer build checks it. */
    assert_int_equal(config_set_path(cfg, "name.bad", json_string("v"), &err), -1);
    json_decref(cfg);
}

static void unset_removes_keys(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    config_error_t err;

    assert_int_equal(config_unset_path(cfg, "env.NIM_LOG_LEVEL", &err), 0);
    assert_int_equal(json_object_size(json_object_get(cfg, "env")), 0);
    assert_int_equal(config_unset_path(cfg, "route", &err), 0);
    assert_null(json_object_get(cfg, "route"));
    assert_int_equal(config_unset_path(cfg, "docker.shm_size", &err), 0);
    assert_int_equal(config_unset_path(cfg, "absent", &err), 0);
    assert_int_equal(config_unset_path(cfg, "name.x", &err), -1);
    assert_int_equal(config_unset_path(cfg, "", &err), -1);
    json_decref(cfg);
}

static void secret_names(void **state)
{
    (void)state;
    assert_true(config_is_secret_name("NGC_API_KEY"));
    assert_true(config_is_secret_name("hf_token"));
    assert_true(config_is_secret_name("MY_Secret"));
    assert_true(config_is_secret_name("DB_PASSWORD"));
    assert_true(config_is_secret_name("AWS_CREDENTIALS"));
    assert_false(config_is_secret_name("NIM_LOG_LEVEL"));
    assert_false(config_is_secret_name("PORT"));
    assert_false(config_is_secret_name(NULL));
}

static void export_nulls_secrets(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    json_t *env = json_object_get(cfg, "env");
    json_object_set_new(env, "NGC_API_KEY", json_string("nvapi-secret"));
    json_object_set_new(env, "hf_token", json_string("hf-secret"));

    json_t *out = config_export(cfg, 0);
    json_t *out_env = json_object_get(out, "env");
    assert_true(json_is_null(json_object_get(out_env, "NGC_API_KEY")));
    assert_true(json_is_null(json_object_get(out_env, "hf_token")));
    assert_string_equal(json_string_value(json_object_get(out_env, "NIM_LOG_LEVEL")), "INFO");
    char *text = json_dumps(out, 0);
    assert_null(strstr(text, "secret"));
    free(text);

    /* The source keeps its values. */
    assert_string_equal(json_string_value(json_object_get(env, "NGC_API_KEY")), "nvapi-secret");
    json_decref(out);
    json_decref(cfg);
}

static void export_include_secrets(void **state)
{
    (void)state;
    json_t *cfg = load(sim_config);
    json_object_set_new(json_object_get(cfg, "env"), "NGC_API_KEY", json_string("nvapi-secret"));

    json_t *out = config_export(cfg, 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "env"), "NGC_API_KEY")),
                        "nvapi-secret");
    json_decref(out);
    json_decref(cfg);
}

static void ngc_images(void **state)
{
    (void)state;
    assert_true(config_image_needs_ngc_key("nvcr.io/nim/meta/llama-3.1-8b-instruct:latest"));
    assert_false(config_image_needs_ngc_key("nvcr.io/nvidia/pytorch:24.01"));
    assert_false(config_image_needs_ngc_key("nimdeck/sim"));
    assert_false(config_image_needs_ngc_key(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validate_sim_example),
        cmocka_unit_test(validate_fills_defaults),
        cmocka_unit_test(validate_docker_defaults),
        cmocka_unit_test(validate_unknown_key),
        cmocka_unit_test(validate_not_object),
        cmocka_unit_test(validate_missing_required),
        cmocka_unit_test(validate_docker_needs_image),
        cmocka_unit_test(validate_process_image_optional),
        cmocka_unit_test(validate_idle_wrong_type),
        cmocka_unit_test(validate_idle_accepted),
        cmocka_unit_test(validate_port_range),
        cmocka_unit_test(validate_gpus_forms),
        cmocka_unit_test(validate_name_charset),
        cmocka_unit_test(validate_runtime_choice),
        cmocka_unit_test(validate_version_one),
        cmocka_unit_test(validate_command_forms),
        cmocka_unit_test(validate_env_rules),
        cmocka_unit_test(validate_env_hides_value),
        cmocka_unit_test(set_env_number_quoting),
        cmocka_unit_test(set_string_keys_quoting),
        cmocka_unit_test(set_through_array_rejected),
        cmocka_unit_test(validate_tags_strings),
        cmocka_unit_test(validate_route_and_queue),
        cmocka_unit_test(validate_health_path),
        cmocka_unit_test(validate_docker_object),
        cmocka_unit_test(validate_docker_values),
        cmocka_unit_test(set_docker_numbers_accepted),
        cmocka_unit_test(validate_image_references),
        cmocka_unit_test(docker_parse_sizes),
        cmocka_unit_test(error_text_valid_utf8),
        cmocka_unit_test(set_parses_json),
        cmocka_unit_test(set_raw_string),
        cmocka_unit_test(set_nested_creates),
        cmocka_unit_test(set_missing_equals),
        cmocka_unit_test(set_through_scalar),
        cmocka_unit_test(set_through_env_hides_value),
        cmocka_unit_test(set_through_env_string),
        cmocka_unit_test(set_through_scalar_shows_value),
        cmocka_unit_test(set_missing_equals_hides_env),
        cmocka_unit_test(validate_env_string_hidden),
        cmocka_unit_test(set_path_takes_ownership),
        cmocka_unit_test(unset_removes_keys),
        cmocka_unit_test(secret_names),
        cmocka_unit_test(validate_gpus_duplicates),
        cmocka_unit_test(validate_tag_and_env_limits),
        cmocka_unit_test(export_nulls_secrets),
        cmocka_unit_test(export_include_secrets),
        cmocka_unit_test(ngc_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
