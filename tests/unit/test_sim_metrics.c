/* Unit tests for the simulator's Prometheus exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_metrics.h"

static size_t count_occurrences(const char *text, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void escape_special_characters(void **state)
{
    (void)state;
    buf_t out = BUF_INIT;

    assert_int_equal(sim_prometheus_escape("a\\b\"c\nd", &out), 0);
    assert_string_equal(out.data, "a\\\\b\\\"c\\nd");
    buf_reset(&out);
    assert_int_equal(sim_prometheus_escape("org/model-8b", &out), 0);
    assert_string_equal(out.data, "org/model-8b");
    buf_free(&out);
}

static void histogram_buckets_inclusive(void **state)
{
    (void)state;
    sim_metrics_t m;

    sim_metrics_init(&m);
    sim_histogram_observe(&m.e2e, 0.3);   /* on the first bound: le="0.3" */
    sim_histogram_observe(&m.e2e, 0.31);  /* next bucket */
    sim_histogram_observe(&m.e2e, 999.0); /* above every bound */

    assert_int_equal(m.e2e.counts[0], 1);
    assert_int_equal(m.e2e.counts[1], 1);
    assert_int_equal(m.e2e.counts[m.e2e.n], 1);
    assert_int_equal(m.e2e.count, 3);
    assert_true(m.e2e.sum > 999.6);
    assert_true(m.e2e.sum < 999.62);
}

static void families_written_once(void **state)
{
    (void)state;
    static const char *families[] = {
        "num_requests_running",        "num_requests_waiting",   "gpu_cache_usage_perc",
        "prompt_tokens_total",         "generation_tokens_total", "request_success_total",
        "time_to_first_token_seconds", "e2e_request_latency_seconds",
    };
    sim_metrics_t m;
    buf_t out = BUF_INIT;
    char line[128];

    sim_metrics_init(&m);
    assert_int_equal(sim_metrics_format(&m, "nimdeck/sim-llm", &out), 0);

    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        snprintf(line, sizeof(line), "# HELP %s ", families[i]);
        assert_int_equal(count_occurrences(out.data, line), 1);
        snprintf(line, sizeof(line), "# TYPE %s ", families[i]);
        assert_int_equal(count_occurrences(out.data, line), 1);
    }
    assert_non_null(strstr(out.data, "# TYPE e2e_request_latency_seconds histogram\n"));
    assert_non_null(strstr(out.data, "# TYPE prompt_tokens_total counter\n"));
    assert_non_null(strstr(out.data, "# TYPE num_requests_running gauge\n"));
    assert_int_equal(out.data[out.len - 1], '\n');
    buf_free(&out);
}

static void samples_carry_values(void **state)
{
    (void)state;
    sim_metrics_t m;
    buf_t out = BUF_INIT;

    sim_metrics_init(&m);
    m.running = 2;
    m.prompt_tokens = 123;
    m.generation_tokens = 456;
    m.success_length = 3;
    sim_histogram_observe(&m.ttft, 0.05);
    sim_histogram_observe(&m.ttft, 0.07);
    assert_int_equal(sim_metrics_format(&m, "m", &out), 0);

    assert_non_null(strstr(out.data, "num_requests_running{model_name=\"m\"} 2\n"));
    assert_non_null(strstr(out.data, "prompt_tokens_total{model_name=\"m\"} 123\n"));
    assert_non_null(strstr(out.data, "generation_tokens_total{model_name=\"m\"} 456\n"));
    assert_non_null(
        strstr(out.data, "request_success_total{model_name=\"m\",finished_reason=\"length\"} 3\n"));
    /* Buckets are cumulative. */
    assert_non_null(
        strstr(out.data, "time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.04\"} 0\n"));
    assert_non_null(
        strstr(out.data, "time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.06\"} 1\n"));
    assert_non_null(
        strstr(out.data, "time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.08\"} 2\n"));
    assert_non_null(
        strstr(out.data, "time_to_first_token_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(out.data, "time_to_first_token_seconds_count{model_name=\"m\"} 2\n"));
    assert_non_null(strstr(out.data, "time_to_first_token_seconds_sum{model_name=\"m\"} 0.12"));
    buf_free(&out);
}

static void model_label_escaped(void **state)
{
    (void)state;
    sim_metrics_t m;
    buf_t out = BUF_INIT;

    sim_metrics_init(&m);
    assert_int_equal(sim_metrics_format(&m, "a\"b\\c\nd", &out), 0);
    assert_non_null(strstr(out.data, "num_requests_waiting{model_name=\"a\\\"b\\\\c\\nd\"} 0\n"));
    /* An escaped newline never splits a sample line. */
    assert_null(strstr(out.data, "model_name=\"a\"b"));
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escape_special_characters),
        cmocka_unit_test(histogram_buckets_inclusive),
        cmocka_unit_test(families_written_once),
        cmocka_unit_test(samples_carry_values),
        cmocka_unit_test(model_label_escaped),
    };
    return cmocka_run_group_tests_name("sim_metrics", tests, NULL, NULL);
}
