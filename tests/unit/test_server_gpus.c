/* Unit tests for GPU-aware leasing in the server's REST API. Agents register
 * their GPUs, work polls report the free ones, and only instances that fit
 * are leased, while the others wait with a reason. Each test runs
 * in-process against a server on a free port. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_harness.h"

static int fixture_setup(void **state)
{
    return harness_start(state, "gpus", harness_options());
}

/* Launch a process instance whose "gpus" is the JSON text gpus. */
static void launch(fixture_t *f, const char *gpus, char *id, size_t id_size)
{
    api_result_t res;
    char body[256];

    snprintf(body, sizeof(body),
             "{\"name\":\"g\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
             "\"command\":[\"x\"],\"gpus\":%s}",
             gpus);
    admin_call(f, "POST", "/api/v1/apps", body, &res);
    if (res.status != 201)
        fail_msg("launch with gpus %s: expected 201, got %ld: %s", gpus, res.status, res.error);
    snprintf(id, id_size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
}

/* Register agent name on queue default with the GPU ids in gpus (a JSON
 * array text of inventory objects); its id goes into id. */
static void register_agent(fixture_t *f, const char *name, const char *gpus, char *id,
                           size_t id_size)
{
    api_result_t res;
    char body[512];

    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"queues\":[\"default\"],\"running\":[],\"gpus\":%s,"
             "\"machine\":{\"hostname\":\"h\",\"cpu_count\":8,\"mem_total_bytes\":1e9}}",
             name, gpus);
    assert_int_equal(admin_call(f, "POST", "/api/v1/agents", body, &res), 200);
    snprintf(id, id_size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
}

/* Poll once without waiting, with free_gpus=free (NULL: left out); the
 * leased id, or "", goes into out. */
static void poll_work(fixture_t *f, const char *agent, const char *free, char *out, size_t size)
{
    api_result_t res;
    char path[256];

    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0%s%s", agent,
             free != NULL ? "&free_gpus=" : "", free != NULL ? free : "");
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    const char *id = json_string_value(json_object_get(json_object_get(res.body, "lease"), "id"));
    snprintf(out, size, "%s", id ? id : "");
    api_result_free(&res);
}

static void expect_reason(fixture_t *f, const char *id, const char *expected)
{
    api_result_t res;
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    const char *reason = json_string_value(json_object_get(res.body, "status_reason"));
    if (reason == NULL || strcmp(reason, expected) != 0)
        fail_msg("instance %s: expected reason \"%s\", got \"%s\"", id, expected,
                 reason ? reason : "(null)");
    api_result_free(&res);
}

#define ONE_GPU "[{\"id\":\"0\",\"uuid\":\"GPU-aaaa0000\",\"name\":null,\"mem_total_bytes\":null}]"
#define TWO_GPUS "[{\"id\":\"0\"},{\"id\":\"1\",\"uuid\":\"GPU-bbbb1111\"}]"

static void lease_fits_free_gpus(void **state)
{
    fixture_t *f = *state;
    char agent[32], id[32], leased[32];

    register_agent(f, "box", TWO_GPUS, agent, sizeof(agent));
    launch(f, "2", id, sizeof(id));

    poll_work(f, agent, "1", leased, sizeof(leased));
    assert_string_equal(leased, "");
    expect_reason(f, id, "waiting for 2 free GPUs on agent box (1 of 2 free)");

    poll_work(f, agent, "", leased, sizeof(leased));
    assert_string_equal(leased, "");
    expect_reason(f, id, "waiting for 2 free GPUs on agent box (0 of 2 free)");

    poll_work(f, agent, "1,0", leased, sizeof(leased));
    assert_string_equal(leased, id);
    expect_reason(f, id, "leased to agent box, waiting for it to start");
}

static void lease_skips_to_fitting_instance(void **state)
{
    fixture_t *f = *state;
    char agent[32], all[32], by_uuid[32], none[32], leased[32];

    register_agent(f, "box", TWO_GPUS, agent, sizeof(agent));
    launch(f, "\"all\"", all, sizeof(all));
    launch(f, "[\"GPU-bbbb1111\"]", by_uuid, sizeof(by_uuid));
    launch(f, "0", none, sizeof(none));

    /* GPU 1 is busy: the older two wait, the one without GPUs goes first. */
    poll_work(f, agent, "0", leased, sizeof(leased));
    assert_string_equal(leased, none);
    expect_reason(f, all, "waiting for all 2 GPUs of agent box to be free (1 free)");
    expect_reason(f, by_uuid, "waiting for GPU GPU-bbbb1111 of agent box to be free");

    poll_work(f, agent, "1", leased, sizeof(leased));
    assert_string_equal(leased, by_uuid);
    poll_work(f, agent, "0,1", leased, sizeof(leased));
    assert_string_equal(leased, all);
}

static void oversized_request_goes_to_larger_agent(void **state)
{
    fixture_t *f = *state;
    char small[32], big[32], id[32], huge[32], leased[32];

    register_agent(f, "small", ONE_GPU, small, sizeof(small));
    register_agent(f, "big", TWO_GPUS, big, sizeof(big));
    launch(f, "2", id, sizeof(id));

    /* The small agent never has room, but the big one has: it waits for that. */
    poll_work(f, small, "0", leased, sizeof(leased));
    assert_string_equal(leased, "");
    expect_reason(f, id, "waiting for an agent with 2 GPUs; agent small has 1 GPU");
    poll_work(f, big, "0,1", leased, sizeof(leased));
    assert_string_equal(leased, id);

    /* Beyond every agent: leased, so that the agent fails it with a reason. */
    launch(f, "3", huge, sizeof(huge));
    poll_work(f, small, "0", leased, sizeof(leased));
    assert_string_equal(leased, huge);
}

static void agent_without_free_gpus_has_none(void **state)
{
    fixture_t *f = *state;
    char agent[32], id[32], leased[32];

    /* An agent that sends no free_gpus counts as having no GPU, so a GPU
     * request is leased for it to fail with a reason. */
    register_agent(f, "old", TWO_GPUS, agent, sizeof(agent));
    launch(f, "1", id, sizeof(id));
    poll_work(f, agent, NULL, leased, sizeof(leased));
    assert_string_equal(leased, id);
}

static void bad_gpu_inputs_rejected(void **state)
{
    fixture_t *f = *state;
    char agent[32], id[32], leased[32], path[160];

    register_agent(f, "box", ONE_GPU, agent, sizeof(agent));
    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0&free_gpus=0,,1", agent);
    admin_expect(f, "GET", path, NULL, 400, "free_gpus");
    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0&free_gpus=a%%20b", agent);
    admin_expect(f, "GET", path, NULL, 400, "'a b'");

    admin_expect(f, "POST", "/api/v1/agents",
           "{\"name\":\"dup\",\"gpus\":[{\"id\":\"0\"},{\"id\":\"0\"}]}", 400, "gpus[1].id");
    admin_expect(f, "POST", "/api/v1/agents", "{\"name\":\"bad\",\"gpus\":[{\"uuid\":\"x\"}]}", 400,
           "gpus[0]");
    admin_expect(f, "POST", "/api/v1/agents", "{\"name\":\"bad\",\"machine\":{\"cpu_count\":\"8\"}}",
           400, "machine");

    launch(f, "1", id, sizeof(id));
    poll_work(f, agent, "0", leased, sizeof(leased));
    assert_string_equal(leased, id);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    admin_expect(f, "POST", path, "{\"status\":\"loading\",\"gpus\":[\"0\",\"x,y\"]}", 400, "gpus[1]");
}

static void agents_list_and_instance_show_gpus(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char agent[32], id[32], leased[32], path[128];

    register_agent(f, "box", TWO_GPUS, agent, sizeof(agent));
    assert_int_equal(admin_call(f, "GET", "/api/v1/agents", NULL, &res), 200);
    json_t *row = json_array_get(json_object_get(res.body, "agents"), 0);
    json_t *gpus = json_object_get(row, "gpus");
    assert_int_equal(json_array_size(gpus), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(gpus, 1), "uuid")),
                        "GPU-bbbb1111");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(row, "machine"),
                                                        "cpu_count")),
                     8);
    api_result_free(&res);

    launch(f, "1", id, sizeof(id));
    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    assert_int_equal(json_array_size(json_object_get(res.body, "gpus")), 0);
    api_result_free(&res);

    poll_work(f, agent, "0,1", leased, sizeof(leased));
    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    admin_expect(f, "POST", path, "{\"status\":\"loading\",\"upstream\":\"127.0.0.1:9\",\"gpus\":[\"1\"]}",
           200, NULL);
    /* A later loading report without gpus keeps them. */
    admin_expect(f, "POST", path, "{\"status\":\"loading\",\"reason\":\"pulling\"}", 200, NULL);
    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    gpus = json_object_get(res.body, "gpus");
    assert_int_equal(json_array_size(gpus), 1);
    assert_string_equal(json_string_value(json_array_get(gpus, 0)), "1");
    api_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lease_fits_free_gpus, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(lease_skips_to_fitting_instance, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(oversized_request_goes_to_larger_agent, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(agent_without_free_gpus_has_none, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(bad_gpu_inputs_rejected, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(agents_list_and_instance_show_gpus, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
