/* Unit tests for the Model Endpoints helpers: the served model's name and
 * CSV fields. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "server/endpoints.h"

static const char *model_of(const char *config_text, json_t **config)
{
    *config = json_loads(config_text, 0, NULL);
    assert_non_null(*config);
    return endpoints_model(*config);
}

static void model_from_env_first(void **state)
{
    json_t *config;
    (void)state;

    assert_string_equal(model_of("{\"image\": \"nvcr.io/nim/x:1\","
                                 " \"command\": [\"run\", \"--model\", \"cmd/model\"],"
                                 " \"env\": {\"NIM_SERVED_MODEL_NAME\": \"env/model\"}}",
                                 &config),
                        "env/model");
    json_decref(config);
}

static void model_from_command(void **state)
{
    json_t *config;
    (void)state;

    assert_string_equal(model_of("{\"image\": \"img\", \"command\": [\"run\", \"--model\","
                                 " \"cmd/model\"]}",
                                 &config),
                        "cmd/model");
    json_decref(config);
    assert_string_equal(model_of("{\"image\": \"img\", \"command\": [\"--model=eq/model\"]}",
                                 &config),
                        "eq/model");
    json_decref(config);
}

static void model_falls_back_to_image(void **state)
{
    json_t *config;
    (void)state;

    /* "--model" as the last argument has no value. */
    assert_string_equal(model_of("{\"image\": \"nvcr.io/nim/meta/llama:1\","
                                 " \"command\": [\"run\", \"--model\"],"
                                 " \"env\": {\"NIM_SERVED_MODEL_NAME\": \"\"}}",
                                 &config),
                        "nvcr.io/nim/meta/llama:1");
    json_decref(config);
    assert_string_equal(model_of("{\"name\": \"only-name\"}", &config), "only-name");
    json_decref(config);
    assert_string_equal(model_of("{}", &config), "");
    json_decref(config);
}

static const char *csv_of(buf_t *out, const char *text)
{
    buf_reset(out);
    assert_int_equal(endpoints_csv_field(out, text), 0);
    return out->data ? out->data : "";
}

static void csv_field_quoting(void **state)
{
    buf_t out = BUF_INIT;
    (void)state;

    assert_string_equal(csv_of(&out, "plain"), "plain");
    assert_string_equal(csv_of(&out, ""), "");
    assert_string_equal(csv_of(&out, "a,b"), "\"a,b\"");
    assert_string_equal(csv_of(&out, "say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_string_equal(csv_of(&out, "two\nlines"), "\"two\nlines\"");
    assert_string_equal(csv_of(&out, "cr\rhere"), "\"cr\rhere\"");
    buf_free(&out);
}

static void csv_field_defuses_formulas(void **state)
{
    buf_t out = BUF_INIT;
    (void)state;

    assert_string_equal(csv_of(&out, "=1+1"), "'=1+1");
    assert_string_equal(csv_of(&out, "+cmd"), "'+cmd");
    assert_string_equal(csv_of(&out, "-x"), "'-x");
    assert_string_equal(csv_of(&out, "@sum"), "'@sum");
    assert_string_equal(csv_of(&out, "=a,b"), "\"'=a,b\"");
    assert_string_equal(csv_of(&out, "a=b"), "a=b");
    buf_free(&out);
}

static void csv_rows_of_both_sections(void **state)
{
    buf_t out = BUF_INIT;
    json_t *response = json_loads(
        "{\"endpoints\": [{\"path\": \"llama\", \"endpoint\": \"http://gw/serve/llama/v1\","
        " \"model\": \"meta/llama\", \"route\": \"llama\", \"instances\": [\"a1\", \"b2\"],"
        " \"status\": \"active\", \"uptime_seconds\": 12, \"requests\": 3,"
        " \"requests_per_minute\": 0.6, \"latency_ms_mean\": 41.25}],"
        " \"loading\": [{\"path\": \"p\", \"endpoint\": \"http://gw/serve/p/v1\","
        " \"model\": \"m\", \"route\": null, \"instances\": [\"c3\"], \"status\": \"queued\","
        " \"uptime_seconds\": null, \"requests\": 0, \"requests_per_minute\": 0.0,"
        " \"latency_ms_mean\": null}]}",
        0, NULL);
    (void)state;

    assert_non_null(response);
    assert_int_equal(endpoints_csv(&out, response), 0);
    assert_string_equal(out.data,
                        "section,path,endpoint,model,route,instances,status,uptime_seconds,"
                        "requests,requests_per_minute,latency_ms_mean\r\n"
                        "endpoints,llama,http://gw/serve/llama/v1,meta/llama,llama,a1 b2,"
                        "active,12,3,0.60,41.25\r\n"
                        "loading,p,http://gw/serve/p/v1,m,,c3,queued,,0,0.00,\r\n");
    json_decref(response);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_from_env_first),
        cmocka_unit_test(model_from_command),
        cmocka_unit_test(model_falls_back_to_image),
        cmocka_unit_test(csv_field_quoting),
        cmocka_unit_test(csv_field_defuses_formulas),
        cmocka_unit_test(csv_rows_of_both_sections),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
