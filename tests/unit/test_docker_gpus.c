/* Unit tests for the GPUs of a container: device requests name GPUs by
 * UUID where the inventory has one, and adoption maps them back to the
 * agent's ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/agent_docker_internal.h"
#include "agent/agent_gpus.h"

#define UUID_A "GPU-8f2c1d7e-0b1a-4c55-9e3d-1234567890ab"
#define UUID_C "GPU-11111111-2222-3333-4444-555555555555"

/* Three GPUs as an agent in a container may see them: its ids "0" and "1"
 * are host GPUs 2 and 3, known by UUID; "gpu-x" comes from --gpus without
 * NVML, so it has no UUID. */
static agent_gpus_t *inventory(void)
{
    agent_gpu_t devices[3];

    memset(devices, 0, sizeof(devices));
    snprintf(devices[0].id, sizeof(devices[0].id), "0");
    snprintf(devices[0].uuid, sizeof(devices[0].uuid), UUID_A);
    devices[0].nvml_index = 0;
    snprintf(devices[1].id, sizeof(devices[1].id), "1");
    snprintf(devices[1].uuid, sizeof(devices[1].uuid), UUID_C);
    devices[1].nvml_index = 1;
    snprintf(devices[2].id, sizeof(devices[2].id), "gpu-x");
    devices[2].nvml_index = -1;

    agent_gpus_t *gpus = agent_gpus_new(devices, 3);
    assert_non_null(gpus);
    return gpus;
}

static void gpus_device_name_prefers_uuid(void **state)
{
    agent_gpus_t *gpus = inventory();
    char out[AGENT_GPU_TEXT_MAX];

    (void)state;
    assert_int_equal(agent_gpus_device_name(gpus, "0", out, sizeof(out)), 0);
    assert_string_equal(out, UUID_A);
    assert_int_equal(agent_gpus_device_name(gpus, "gpu-x", out, sizeof(out)), 0);
    assert_string_equal(out, "gpu-x");
    assert_int_equal(agent_gpus_device_name(gpus, "7", out, sizeof(out)), -1);
    assert_string_equal(out, "7");
    assert_int_equal(agent_gpus_device_name(NULL, "0", out, sizeof(out)), -1);
    assert_string_equal(out, "0");
    agent_gpus_free(gpus);
}

static void gpus_id_of_device_reverses(void **state)
{
    agent_gpus_t *gpus = inventory();
    char out[AGENT_GPU_TEXT_MAX];

    (void)state;
    assert_int_equal(agent_gpus_id_of_device(gpus, UUID_C, out, sizeof(out)), 0);
    assert_string_equal(out, "1");
    assert_int_equal(agent_gpus_id_of_device(gpus, "gpu-x", out, sizeof(out)), 0);
    assert_string_equal(out, "gpu-x");
    /* A UUID prefix is not enough: only the full name the agent wrote. */
    assert_int_equal(agent_gpus_id_of_device(gpus, "GPU-8f2c", out, sizeof(out)), -1);
    assert_string_equal(out, "GPU-8f2c");
    agent_gpus_free(gpus);
}

/* The create body carries UUIDs, never the agent's ids, where UUIDs are known. */
static void gpus_create_body_uses_uuids(void **state)
{
    static const char *const assigned[] = {"1", "gpu-x", NULL};
    agent_gpus_t *gpus = inventory();
    char **names = agent_docker_device_names(gpus, assigned);
    json_t *config = json_pack("{s:s, s:i}", "image", "nvcr.io/nim/x:1", "gpus", 2);
    json_t *env = json_object();
    docker_options_t opts;
    char err[512] = "";

    (void)state;
    assert_non_null(names);
    assert_string_equal(names[0], UUID_C);
    assert_string_equal(names[1], "gpu-x");
    assert_null(names[2]);

    assert_int_equal(docker_options_parse(config, NULL, &opts, err, sizeof(err)), 0);
    docker_create_input_t in = {
        .instance_id = "abc123",
        .agent_key = "gpu-01@127.0.0.1:8470",
        .config = config,
        .env = env,
        .gpu_ids = (const char *const *)names,
        .gpu_count = 2,
        .port = 8123,
    };
    json_t *body = docker_create_body(&in, &opts, err, sizeof(err));
    if (body == NULL)
        fail_msg("docker_create_body: %s", err);
    json_t *request = json_array_get(
        json_object_get(json_object_get(body, "HostConfig"), "DeviceRequests"), 0);
    json_t *ids = json_object_get(request, "DeviceIDs");
    assert_int_equal(json_array_size(ids), 2);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), UUID_C);
    assert_string_equal(json_string_value(json_array_get(ids, 1)), "gpu-x");
    assert_null(json_object_get(request, "Count"));

    json_decref(body);
    json_decref(config);
    json_decref(env);
    agent_gpus_ids_free(names);
    agent_gpus_free(gpus);
}

/* Adoption reads DeviceIDs back as the agent's ids. */
static void gpus_adopt_maps_back(void **state)
{
    agent_gpus_t *gpus = inventory();
    json_t *host = json_pack("{s:[{s:s, s:[s, s, s], s:[[s]]}]}", "DeviceRequests", "Driver",
                             "nvidia", "DeviceIDs", UUID_A, "gpu-x", "GPU-not-here",
                             "Capabilities", "gpu");
    char out[256];

    (void)state;
    agent_docker_gpu_ids_of(host, gpus, out, sizeof(out));
    assert_string_equal(out, "0,gpu-x,GPU-not-here");

    /* A container that was given no GPU. */
    json_t *none = json_pack("{s:n}", "DeviceRequests");
    agent_docker_gpu_ids_of(none, gpus, out, sizeof(out));
    assert_string_equal(out, "");

    json_decref(none);
    json_decref(host);
    agent_gpus_free(gpus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpus_device_name_prefers_uuid),
        cmocka_unit_test(gpus_id_of_device_reverses),
        cmocka_unit_test(gpus_create_body_uses_uuids),
        cmocka_unit_test(gpus_adopt_maps_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
