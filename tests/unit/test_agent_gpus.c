/* Unit tests for the agent's GPU inventory: visible-device lists, selection
 * from NVML or --gpus, the configuration's request, allocation and release. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent_gpus.h"
#include "agent/agent_spawn.h"
#include "config/config_gpus.h"

/* ---- visible-device lists ---- */

static void visible_unset_all_none(void **state)
{
    agent_visible_t v;

    (void)state;
    assert_int_equal(agent_visible_parse(NULL, &v), 0);
    assert_int_equal(v.kind, AGENT_VISIBLE_UNSET);
    assert_int_equal(agent_visible_parse("all", &v), 0);
    assert_int_equal(v.kind, AGENT_VISIBLE_ALL);
    assert_int_equal(agent_visible_parse("none", &v), 0);
    assert_int_equal(v.kind, AGENT_VISIBLE_NONE);
    assert_int_equal(agent_visible_parse("void", &v), 0);
    assert_int_equal(v.kind, AGENT_VISIBLE_NONE);
    assert_int_equal(agent_visible_parse("", &v), 0);
    assert_int_equal(v.kind, AGENT_VISIBLE_NONE);
    assert_int_equal(agent_visible_parse(" , ,", &v), 0);
    assert_int_equal(v.kind, AGENT_VISIBLE_NONE);
    agent_visible_free(&v);
}

static void visible_list_trims_and_skips(void **state)
{
    agent_visible_t v;

    (void)state;
    assert_int_equal(agent_visible_parse(" 2, GPU-abc ,,0 ", &v), 0);
    assert_int_equal(v.kind, AGENT_VISIBLE_LIST);
    assert_int_equal(v.count, 3);
    assert_string_equal(v.entries[0], "2");
    assert_string_equal(v.entries[1], "GPU-abc");
    assert_string_equal(v.entries[2], "0");
    assert_null(v.entries[3]);
    agent_visible_free(&v);
}

/* ---- selection ---- */

static agent_gpu_t gpu(int index, const char *uuid)
{
    agent_gpu_t g = {.mem_total_bytes = 80e9, .nvml_index = index};

    snprintf(g.id, sizeof(g.id), "%d", index);
    snprintf(g.uuid, sizeof(g.uuid), "%s", uuid);
    snprintf(g.name, sizeof(g.name), "Test GPU");
    return g;
}

static const agent_gpu_t *four_gpus(void)
{
    static agent_gpu_t list[4];

    list[0] = gpu(0, "GPU-aaaa0000-0000");
    list[1] = gpu(1, "GPU-bbbb1111-1111");
    list[2] = gpu(2, "GPU-cccc2222-2222");
    list[3] = gpu(3, "GPU-cccc3333-3333");
    return list;
}

static void match_by_id_uuid_and_prefix(void **state)
{
    const agent_gpu_t *list = four_gpus();

    (void)state;
    assert_int_equal(agent_gpus_match(list, 4, "2"), 2);
    assert_int_equal(agent_gpus_match(list, 4, "GPU-bbbb1111-1111"), 1);
    assert_int_equal(agent_gpus_match(list, 4, "GPU-aaaa"), 0);
    /* Ambiguous and too short prefixes match nothing. */
    assert_int_equal(agent_gpus_match(list, 4, "GPU-cccc"), -1);
    assert_int_equal(agent_gpus_match(list, 4, "GPU-a"), -1);
    assert_int_equal(agent_gpus_match(list, 4, "7"), -1);
}

/* Select with src and check the outcome: expected is the ids joined by
 * commas, or "FAIL: " and a part of the error message. */
static void assert_selected(const agent_gpus_source_t *src, const char *expected)
{
    agent_gpu_t *list = NULL;
    size_t count = 0;
    char err[512] = "";
    buf_t got = BUF_INIT;
    int rc = agent_gpus_select(src, &list, &count, err, sizeof(err));

    buf_append_str(&got, "");
    for (size_t i = 0; i < count; i++)
        buf_printf(&got, "%s%s", i > 0 ? "," : "", list[i].id);
    free(list);
    if (strncmp(expected, "FAIL: ", 6) == 0) {
        if (rc != -1 || strstr(err, expected + 6) == NULL)
            fail_msg("expected \"%s\", got rc %d, ids \"%s\", error \"%s\"", expected, rc,
                     got.data, err);
    } else if (rc != 0 || strcmp(got.data, expected) != 0) {
        fail_msg("expected \"%s\", got rc %d, ids \"%s\", error \"%s\"", expected, rc,
                 got.data, err);
    }
    buf_free(&got);
}

static void select_nvml_default_all(void **state)
{
    agent_gpus_source_t src = {.detected = four_gpus(), .detected_count = 4, .nvml_available = 1};

    (void)state;
    assert_selected(&src, "0,1,2,3");
}

static void select_option_names_nvml_gpus(void **state)
{
    agent_gpus_source_t src = {.detected = four_gpus(), .detected_count = 4, .nvml_available = 1,
                               .option = "GPU-bbbb1111-1111,3"};

    (void)state;
    assert_selected(&src, "1,3");
}

static void select_option_unknown_gpu_fails(void **state)
{
    agent_gpus_source_t src = {.detected = four_gpus(), .detected_count = 4, .nvml_available = 1,
                               .option = "0,9"};

    (void)state;
    /* The message names the unknown id and lists the known ones. */
    assert_selected(&src, "FAIL: '9'");
    assert_selected(&src, "FAIL: GPU-aaaa0000-0000");
}

static void select_without_nvml_takes_option(void **state)
{
    agent_gpus_source_t src = {.option = "0,1,0"};

    (void)state;
    assert_selected(&src, "0,1");
}

static void select_without_nvml_none_by_default(void **state)
{
    agent_gpus_source_t src = {.cuda_visible = "0"};

    (void)state;
    assert_selected(&src, "");
}

static void select_without_nvml_all_fails(void **state)
{
    agent_gpus_source_t src = {.option = "all"};

    (void)state;
    assert_selected(&src, "FAIL: --gpus 0,1");
}

static void select_option_rejects_bad_id(void **state)
{
    agent_gpus_source_t src = {.option = "0,a b"};

    (void)state;
    assert_selected(&src, "FAIL: 'a b'");
}

static void select_env_narrows(void **state)
{
    agent_gpus_source_t src = {.detected = four_gpus(), .detected_count = 4, .nvml_available = 1,
                               .nvidia_visible = "3,GPU-aaaa0000-0000,1",
                               .cuda_visible = "1,0,7"};

    (void)state;
    assert_selected(&src, "0,1");
}

static void select_env_none_hides_all(void **state)
{
    agent_gpus_source_t src = {.detected = four_gpus(), .detected_count = 4, .nvml_available = 1,
                               .nvidia_visible = "void"};

    (void)state;
    assert_selected(&src, "");
    src.nvidia_visible = NULL;
    src.cuda_visible = "";
    assert_selected(&src, "");
}

static void select_container_skips_nvidia_env(void **state)
{
    /* Inside a container the runtime has applied NVIDIA_VISIBLE_DEVICES=2,3
     * already, and NVML numbers the two visible GPUs 0 and 1. */
    agent_gpus_source_t src = {.detected = four_gpus(), .detected_count = 2, .nvml_available = 1,
                               .nvidia_visible = "2,3", .in_container = 1};

    (void)state;
    assert_selected(&src, "0,1");
}

/* ---- the configuration's request ---- */

static void request_kinds(void **state)
{
    config_gpus_t req;
    char err[256];
    json_t *value;

    (void)state;
    assert_int_equal(config_gpus_parse(NULL, &req, err, sizeof(err)), 0);
    assert_int_equal(req.kind, CONFIG_GPUS_NONE);

    value = json_integer(0);
    assert_int_equal(config_gpus_parse(value, &req, err, sizeof(err)), 0);
    assert_int_equal(req.kind, CONFIG_GPUS_NONE);
    json_decref(value);

    value = json_real(2.0);
    assert_int_equal(config_gpus_parse(value, &req, err, sizeof(err)), 0);
    assert_int_equal(req.kind, CONFIG_GPUS_COUNT);
    assert_int_equal(req.count, 2);
    json_decref(value);

    value = json_string("all");
    assert_int_equal(config_gpus_parse(value, &req, err, sizeof(err)), 0);
    assert_int_equal(req.kind, CONFIG_GPUS_ALL);
    json_decref(value);

    value = json_array();
    assert_int_equal(config_gpus_parse(value, &req, err, sizeof(err)), 0);
    assert_int_equal(req.kind, CONFIG_GPUS_NONE);
    json_decref(value);
}

static void request_ids_dedup_and_integers(void **state)
{
    json_t *value = json_pack("[i, s, i, s]", 1, "GPU-x1", 1, "1");
    config_gpus_t req;
    char err[256];
    buf_t text = BUF_INIT;

    (void)state;
    assert_int_equal(config_gpus_parse(value, &req, err, sizeof(err)), 0);
    assert_int_equal(req.kind, CONFIG_GPUS_IDS);
    assert_int_equal(req.count, 2);
    assert_string_equal(req.ids[0], "1");
    assert_string_equal(req.ids[1], "GPU-x1");
    assert_null(req.ids[2]);
    assert_int_equal(config_gpus_describe(&req, &text), 0);
    assert_string_equal(text.data, "GPUs 1, GPU-x1");
    buf_free(&text);
    config_gpus_free(&req);
    json_decref(value);
}

static void request_rejects_bad_values(void **state)
{
    const char *bad[] = {"\"some\"", "-1", "1.5", "[\"a,b\"]", "[-1]", "[\"\"]", "{}", "true"};
    config_gpus_t req;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *value = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(value);
        err[0] = '\0';
        if (config_gpus_parse(value, &req, err, sizeof(err)) != -1)
            fail_msg("\"gpus\": %s was accepted", bad[i]);
        assert_non_null(strstr(err, "\"gpus\""));
        json_decref(value);
    }
}

/* ---- allocation ---- */

static agent_gpus_t *inventory(size_t count)
{
    agent_gpus_t *gpus = agent_gpus_new(four_gpus(), count);

    assert_non_null(gpus);
    return gpus;
}

/* Allocate the request given as JSON text; returns the ids joined by commas,
 * or "FAIL: reason". */
static char *allocate(agent_gpus_t *gpus, const char *instance, const char *request_text)
{
    json_t *request = json_loads(request_text, JSON_DECODE_ANY, NULL);
    char reason[512] = "";
    char **ids = NULL;
    buf_t out = BUF_INIT;

    assert_non_null(request);
    if (agent_gpus_allocate(gpus, instance, "box", request, &ids, reason, sizeof(reason)) != 0) {
        buf_printf(&out, "FAIL: %s", reason);
    } else {
        buf_append_str(&out, "");
        for (size_t i = 0; ids[i] != NULL; i++)
            buf_printf(&out, "%s%s", i > 0 ? "," : "", ids[i]);
    }
    agent_gpus_ids_free(ids);
    json_decref(request);
    return buf_steal(&out);
}

static void assert_allocation(agent_gpus_t *gpus, const char *instance, const char *request,
                              const char *expected)
{
    char *got = allocate(gpus, instance, request);

    if (strncmp(expected, "FAIL: ", 6) == 0 ? strstr(got, expected + 6) == NULL
                                            : strcmp(got, expected) != 0)
        fail_msg("gpus %s for %s: expected \"%s\", got \"%s\"", request, instance, expected, got);
    free(got);
}

static void assert_free_ids(agent_gpus_t *gpus, const char *expected)
{
    buf_t out = BUF_INIT;

    buf_append_str(&out, "");
    assert_int_equal(agent_gpus_free_ids(gpus, &out), 0);
    assert_string_equal(out.data, expected);
    buf_free(&out);
}

static void allocate_count_takes_free_ones(void **state)
{
    agent_gpus_t *gpus = inventory(4);

    (void)state;
    assert_allocation(gpus, "a", "1", "0");
    assert_allocation(gpus, "b", "2", "1,2");
    assert_free_ids(gpus, "3");
    assert_allocation(gpus, "c", "2", "FAIL: asks for 2 GPUs; agent box has only 1 of 4 free");
    assert_int_equal(agent_gpus_release(gpus, "b"), 2);
    assert_allocation(gpus, "c", "2", "1,2");
    agent_gpus_free(gpus);
}

static void allocate_count_beyond_inventory(void **state)
{
    agent_gpus_t *gpus = inventory(1);

    (void)state;
    assert_allocation(gpus, "a", "2", "FAIL: asks for 2 GPUs; agent box has 1");
    assert_free_ids(gpus, "0");
    agent_gpus_free(gpus);
}

static void allocate_all_needs_every_gpu_free(void **state)
{
    agent_gpus_t *gpus = inventory(3);
    agent_gpus_t *none = inventory(0);

    (void)state;
    assert_allocation(gpus, "a", "[1]", "1");
    assert_allocation(gpus, "b", "\"all\"", "FAIL: GPU 1 is in use by instance a");
    agent_gpus_release(gpus, "a");
    assert_allocation(gpus, "b", "\"all\"", "0,1,2");
    assert_free_ids(gpus, "");
    assert_allocation(none, "c", "\"all\"", "FAIL: asks for all GPUs; agent box has none");
    agent_gpus_free(gpus);
    agent_gpus_free(none);
}

static void allocate_ids_exact(void **state)
{
    agent_gpus_t *gpus = inventory(4);

    (void)state;
    assert_allocation(gpus, "a", "[\"GPU-cccc3333-3333\", 1]", "1,3");
    assert_allocation(gpus, "b", "[\"3\"]",
                      "FAIL: asks for GPU 3 of agent box, which instance a holds");
    assert_allocation(gpus, "b", "[\"5\"]", "FAIL: asks for GPU 5; agent box has GPUs 0, 1, 2, 3");
    /* The same GPU named twice, by index and by UUID, is one GPU. */
    assert_allocation(gpus, "b", "[0, \"GPU-aaaa0000-0000\"]", "0");
    assert_free_ids(gpus, "2");
    agent_gpus_free(gpus);
}

static void allocate_none_and_release(void **state)
{
    agent_gpus_t *gpus = inventory(2);

    (void)state;
    assert_allocation(gpus, "a", "0", "");
    assert_allocation(gpus, "a", "null", "");
    assert_allocation(gpus, "a", "[]", "");
    assert_int_equal(agent_gpus_release(gpus, "a"), 0);
    /* A failed allocation holds nothing, even what the instance had before. */
    assert_allocation(gpus, "b", "1", "0");
    assert_allocation(gpus, "b", "[9]", "FAIL: asks for GPU 9");
    assert_free_ids(gpus, "0,1");
    agent_gpus_free(gpus);
}

static void allocate_without_inventory(void **state)
{
    (void)state;
    assert_allocation(NULL, "a", "0", "");
    assert_allocation(NULL, "a", "1", "FAIL: asks for 1 GPU; agent box has 0");
}

static void inventory_json_fields(void **state)
{
    agent_gpu_t list[2] = {gpu(0, "GPU-aaaa0000-0000"), {.id = "x", .mem_total_bytes = NAN,
                                                          .nvml_index = -1}};
    agent_gpus_t *gpus = agent_gpus_new(list, 2);
    json_t *json = agent_gpus_inventory_json(gpus);
    char *text = json_dumps(json, JSON_COMPACT);

    (void)state;
    assert_string_equal(text, "[{\"id\":\"0\",\"uuid\":\"GPU-aaaa0000-0000\",\"name\":\"Test GPU\","
                              "\"mem_total_bytes\":80000000000.0},{\"id\":\"x\",\"uuid\":null,"
                              "\"name\":null,\"mem_total_bytes\":null}]");
    free(text);
    json_decref(json);
    agent_gpus_free(gpus);
}

/* ---- the process runtime's environment ---- */

static void spawn_env_sets_given_gpus(void **state)
{
    char *base[] = {"PATH=/bin", "CUDA_VISIBLE_DEVICES=0,1,2,3", NULL};
    json_t *overrides = json_pack("{s:s}", "NVIDIA_VISIBLE_DEVICES", "all");
    char **env = agent_spawn_env(base, overrides, 8000);
    const char *ids[] = {"1", "3", NULL};

    (void)state;
    assert_non_null(env);
    assert_int_equal(agent_spawn_env_gpus(&env, ids), 0);
    /* The allocation wins over the agent's environment and the configuration. */
    assert_string_equal(agent_spawn_env_get(env, "NVIDIA_VISIBLE_DEVICES"), "1,3");
    assert_string_equal(agent_spawn_env_get(env, "CUDA_VISIBLE_DEVICES"), "1,3");
    assert_string_equal(agent_spawn_env_get(env, "CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
    assert_string_equal(agent_spawn_env_get(env, "PATH"), "/bin");
    assert_string_equal(agent_spawn_env_get(env, "PORT"), "8000");
    agent_spawn_free(env);
    json_decref(overrides);
}

static void spawn_env_hides_gpus_without_ids(void **state)
{
    char *base[] = {"NVIDIA_VISIBLE_DEVICES=all", NULL};
    char **env = agent_spawn_env(base, NULL, 8000);
    const char *none[] = {NULL};

    (void)state;
    assert_int_equal(agent_spawn_env_gpus(&env, NULL), 0);
    assert_string_equal(agent_spawn_env_get(env, "NVIDIA_VISIBLE_DEVICES"), "void");
    assert_string_equal(agent_spawn_env_get(env, "CUDA_VISIBLE_DEVICES"), "");
    assert_null(agent_spawn_env_get(env, "CUDA_DEVICE_ORDER"));
    assert_int_equal(agent_spawn_env_gpus(&env, none), 0);
    assert_string_equal(agent_spawn_env_get(env, "NVIDIA_VISIBLE_DEVICES"), "void");
    agent_spawn_free(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(visible_unset_all_none),
        cmocka_unit_test(visible_list_trims_and_skips),
        cmocka_unit_test(match_by_id_uuid_and_prefix),
        cmocka_unit_test(select_nvml_default_all),
        cmocka_unit_test(select_option_names_nvml_gpus),
        cmocka_unit_test(select_option_unknown_gpu_fails),
        cmocka_unit_test(select_without_nvml_takes_option),
        cmocka_unit_test(select_without_nvml_none_by_default),
        cmocka_unit_test(select_without_nvml_all_fails),
        cmocka_unit_test(select_option_rejects_bad_id),
        cmocka_unit_test(select_env_narrows),
        cmocka_unit_test(select_env_none_hides_all),
        cmocka_unit_test(select_container_skips_nvidia_env),
        cmocka_unit_test(request_kinds),
        cmocka_unit_test(request_ids_dedup_and_integers),
        cmocka_unit_test(request_rejects_bad_values),
        cmocka_unit_test(allocate_count_takes_free_ones),
        cmocka_unit_test(allocate_count_beyond_inventory),
        cmocka_unit_test(allocate_all_needs_every_gpu_free),
        cmocka_unit_test(allocate_ids_exact),
        cmocka_unit_test(allocate_none_and_release),
        cmocka_unit_test(allocate_without_inventory),
        cmocka_unit_test(inventory_json_fields),
        cmocka_unit_test(spawn_env_sets_given_gpus),
        cmocka_unit_test(spawn_env_hides_gpus_without_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
