/* Unit tests for the GPU readings and instance usage of an agent's metrics
 * post: the checks on the body, and the series of the metrics API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server_harness.h"
#include "util/buf.h"

static int fixture_setup(void **state)
{
    return harness_start(state, "usage", harness_options());
}

/* Register agent a1 with two GPUs, launch an instance asking for one, lease
 * it and report it loading on GPU "1". Writes the agent and instance ids. */
static void start_gpu_instance(fixture_t *f, char *agent, char *id)
{
    api_result_t res;
    char path[160];

    harness_call(f, f->token, "POST", "/api/v1/agents",
                 "{\"name\":\"a1\",\"running\":[],\"gpus\":["
                 "{\"id\":\"0\",\"uuid\":\"GPU-a\",\"name\":\"G\",\"mem_total_bytes\":100},"
                 "{\"id\":\"1\",\"uuid\":\"GPU-b\",\"name\":\"G\",\"mem_total_bytes\":100}]}",
                 &res);
    assert_int_equal(res.status, 200);
    snprintf(agent, 32, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);

    harness_call(f, f->token, "POST", "/api/v1/apps",
                 "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
                 "\"command\":[\"x\"],\"gpus\":1}",
                 &res);
    assert_int_equal(res.status, 201);
    snprintf(id, 32, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0&free_gpus=1", agent);
    harness_call(f, f->token, "GET", path, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_true(json_is_object(json_object_get(res.body, "lease")));
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    harness_expect(f, f->token, "POST", path,
                   "{\"status\":\"loading\",\"upstream\":\"127.0.0.1:9\",\"gpus\":[\"1\"]}", 200,
                   NULL);
}

static double last_value(json_t *series, const char *name)
{
    json_t *values = json_object_get(series, name), *value;
    double found = -1;
    size_t i;

    json_array_foreach(values, i, value) {
        if (json_is_number(value))
            found = json_number_value(value);
    }
    return found;
}

static void post_feeds_instance_series(void **state)
{
    fixture_t *f = *state;
    char agent[32], id[32], path[160], body[1024];
    api_result_t res;

    start_gpu_instance(f, agent, id);
    snprintf(path, sizeof(path), "/api/v1/agents/%s/metrics", agent);
    snprintf(body, sizeof(body),
             "{\"cpu_percent\":5,\"gpus\":["
             "{\"id\":\"0\",\"util_percent\":90,\"mem_used_bytes\":9,\"mem_total_bytes\":100,"
             "\"temp_c\":80,\"power_w\":300},"
             "{\"id\":\"1\",\"util_percent\":30,\"mem_used_bytes\":7,\"mem_total_bytes\":100,"
             "\"temp_c\":45,\"power_w\":null}],"
             "\"instances\":[{\"id\":\"%s\",\"cpu_percent\":12.5,\"mem_used_bytes\":4096,"
             "\"mem_limit_bytes\":null,\"net_rx_bytes_per_s\":null,"
             "\"disk_read_bytes_per_s\":1,\"disk_write_bytes_per_s\":2},"
             "{\"id\":\"someone-else\",\"cpu_percent\":99}]}",
             id);
    harness_expect(f, f->token, "POST", path, body, 204, NULL);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/metrics?step=3600&range=3600", id);
    harness_call(f, f->token, "GET", path, NULL, &res);
    assert_int_equal(res.status, 200);
    json_t *series = json_object_get(res.body, "series");
    /* Only GPU 1 is this instance's. */
    assert_true(last_value(series, "gpu_util_percent") == 30);
    assert_true(last_value(series, "gpu_temp_c") == 45);
    assert_true(last_value(series, "gpu_mem_used_bytes") == 7);
    assert_true(json_is_null(json_array_get(json_object_get(series, "gpu_power_w"), 0)));
    assert_true(last_value(series, "instance_cpu_percent") == 12.5);
    assert_true(last_value(series, "instance_mem_used_bytes") == 4096);
    assert_true(last_value(series, "instance_disk_write_bytes_per_s") == 2);
    assert_true(json_is_null(json_array_get(json_object_get(series, "instance_net_rx_bytes_per_s"),
                                            0)));
    assert_true(last_value(series, "cpu_percent") == 5);
    api_result_free(&res);
}

static void post_rejects_bad_items(void **state)
{
    fixture_t *f = *state;
    char agent[32], id[32], path[160];
    static const struct {
        const char *body;
        const char *part;
    } cases[] = {
        {"{\"gpus\":{}}", "\"gpus\" must be an array or null"},
        {"{\"gpus\":[{\"util_percent\":1}]}", "missing key \"gpus[0].id\""},
        {"{\"gpus\":[{\"id\":\"0\",\"util\":1}]}", "unknown key \"gpus[0].util\""},
        {"{\"gpus\":[{\"id\":\"0\",\"temp_c\":\"hot\"}]}", "\"gpus[0].temp_c\" must be"},
        {"{\"gpus\":[{\"id\":\"a,b\"}]}", "\"gpus[0].id\" is not a device id"},
        {"{\"instances\":[1]}", "instances[0] must be a JSON object"},
        {"{\"instances\":[{\"id\":\"x\",\"cpu\":1}]}", "unknown key \"instances[0].cpu\""},
    };

    start_gpu_instance(f, agent, id);
    snprintf(path, sizeof(path), "/api/v1/agents/%s/metrics", agent);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        harness_expect(f, f->token, "POST", path, cases[i].body, 400, cases[i].part);

    /* A rejected post stores nothing, the machine values included. */
    harness_expect(f, f->token, "POST", path, "{\"cpu_percent\":77,\"gpus\":[{}]}", 400, NULL);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/metrics?step=3600&range=3600", id);
    api_result_t res;
    harness_call(f, f->token, "GET", path, NULL, &res);
    assert_true(last_value(json_object_get(res.body, "series"), "cpu_percent") == -1);
    api_result_free(&res);
}

static void post_bounds_item_count(void **state)
{
    fixture_t *f = *state;
    char agent[32], id[32], path[160];
    buf_t body = BUF_INIT;

    start_gpu_instance(f, agent, id);
    snprintf(path, sizeof(path), "/api/v1/agents/%s/metrics", agent);
    buf_printf(&body, "{\"gpus\":[");
    for (int i = 0; i < 257; i++)
        buf_printf(&body, "%s{\"id\":\"%d\"}", i > 0 ? "," : "", i);
    buf_printf(&body, "]}");
    harness_expect(f, f->token, "POST", path, body.data, 400, "at most 256");
    buf_free(&body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(post_feeds_instance_series, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(post_rejects_bad_items, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(post_bounds_item_count, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
