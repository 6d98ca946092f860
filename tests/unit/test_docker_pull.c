/* Unit tests for the image pull progress parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/docker_pull.h"

typedef struct {
    int events;
    char statuses[1024];
} pull_sink_t;

static void collect_event(void *ctx, const docker_pull_event_t *event)
{
    pull_sink_t *sink = ctx;
    size_t used = strlen(sink->statuses);

    sink->events++;
    snprintf(sink->statuses + used, sizeof(sink->statuses) - used, "%s%s|",
             event->id != NULL ? event->id : "-", event->status != NULL ? event->status : "?");
}

static const char progress[] =
    "{\"status\":\"Pulling from nim/meta/llama\",\"id\":\"1.0\"}\r\n"
    "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"aaa\"}\r\n"
    "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"bbb\"}\r\n"
    "{\"status\":\"Already exists\",\"progressDetail\":{},\"id\":\"ccc\"}\r\n"
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":500000,\"total\":2000000},"
    "\"progress\":\"[=>   ]\",\"id\":\"aaa\"}\r\n"
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1000000,\"total\":3000000000},"
    "\"id\":\"bbb\"}\r\n"
    "{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"aaa\"}\r\n"
    "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"aaa\"}\r\n";

static const char expected_statuses[] =
    "1.0Pulling from nim/meta/llama|aaaPulling fs layer|bbbPulling fs layer|cccAlready exists|"
    "aaaDownloading|bbbDownloading|aaaDownload complete|aaaPull complete|";

static void pull_every_split(void **state)
{
    size_t len = strlen(progress);

    (void)state;
    for (size_t step = 1; step <= len; step++) {
        docker_pull_t *pull = malloc(sizeof(*pull));
        pull_sink_t sink = {0, ""};
        char summary[160];

        assert_non_null(pull);
        docker_pull_init(pull);
        for (size_t at = 0; at < len; at += step) {
            size_t n = len - at < step ? len - at : step;
            assert_int_equal(docker_pull_feed(pull, progress + at, n, collect_event, &sink), 0);
        }
        assert_int_equal(docker_pull_finish(pull, collect_event, &sink), 0);
        assert_int_equal(sink.events, 8);
        assert_string_equal(sink.statuses, expected_statuses);
        docker_pull_summary(pull, summary, sizeof(summary));
        assert_string_equal(summary, "2 of 3 layers done, 3.0 MB of 3.0 GB downloaded");
        docker_pull_free(pull);
        free(pull);
    }
}

static void pull_error_line_fails(void **state)
{
    static const char text[] =
        "{\"status\":\"Pulling from team/model\",\"id\":\"1\"}\n"
        "{\"errorDetail\":{\"message\":\"unauthorized: authentication required\"},"
        "\"error\":\"unauthorized: authentication required\"}\n"
        "{\"status\":\"ignored after the error\"}\n";
    docker_pull_t *pull = malloc(sizeof(*pull));
    pull_sink_t sink = {0, ""};
    size_t split = 70;

    (void)state;
    assert_non_null(pull);
    docker_pull_init(pull);
    assert_int_equal(docker_pull_feed(pull, text, split, collect_event, &sink), 0);
    assert_int_equal(docker_pull_feed(pull, text + split, strlen(text) - split, collect_event, &sink),
                     -1);
    assert_string_equal(pull->error, "unauthorized: authentication required");
    assert_int_equal(sink.events, 1);
    assert_int_equal(docker_pull_feed(pull, "{}\n", 3, collect_event, &sink), -1);
    assert_int_equal(docker_pull_finish(pull, collect_event, &sink), -1);
    docker_pull_free(pull);
    free(pull);
}

static void pull_error_without_detail(void **state)
{
    static const char text[] = "{\"error\":\"manifest unknown\"}";
    docker_pull_t *pull = malloc(sizeof(*pull));

    (void)state;
    assert_non_null(pull);
    docker_pull_init(pull);
    /* No newline: only the end of the stream parses it. */
    assert_int_equal(docker_pull_feed(pull, text, strlen(text), NULL, NULL), 0);
    assert_int_equal(docker_pull_finish(pull, NULL, NULL), -1);
    assert_string_equal(pull->error, "manifest unknown");
    docker_pull_free(pull);
    free(pull);
}

static void pull_skips_junk_and_long_lines(void **state)
{
    docker_pull_t *pull = malloc(sizeof(*pull));
    pull_sink_t sink = {0, ""};
    char *junk = malloc(DOCKER_PULL_MAX_LINE + 100);

    (void)state;
    assert_non_null(pull);
    assert_non_null(junk);
    docker_pull_init(pull);
    memset(junk, 'x', DOCKER_PULL_MAX_LINE + 99);
    junk[DOCKER_PULL_MAX_LINE + 99] = '\n';
    assert_int_equal(docker_pull_feed(pull, "not json\n", 9, collect_event, &sink), 0);
    assert_int_equal(docker_pull_feed(pull, junk, DOCKER_PULL_MAX_LINE + 100, collect_event, &sink),
                     0);
    assert_int_equal(docker_pull_feed(pull, "{\"status\":\"Digest: sha256:ab\"}\n", 31,
                                      collect_event, &sink),
                     0);
    assert_int_equal(sink.events, 1);
    assert_string_equal(sink.statuses, "-Digest: sha256:ab|");
    docker_pull_free(pull);
    free(pull);
    free(junk);
}

static void pull_summary_empty_and_bytes(void **state)
{
    docker_pull_t *pull = malloc(sizeof(*pull));
    char text[64];

    (void)state;
    assert_non_null(pull);
    docker_pull_init(pull);
    docker_pull_summary(pull, text, sizeof(text));
    assert_string_equal(text, "");
    docker_format_bytes(512, text, sizeof(text));
    assert_string_equal(text, "512 B");
    docker_format_bytes(1500, text, sizeof(text));
    assert_string_equal(text, "1.5 kB");
    docker_format_bytes(8.4e9, text, sizeof(text));
    assert_string_equal(text, "8.4 GB");
    docker_pull_free(pull);
    free(pull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pull_every_split),
        cmocka_unit_test(pull_error_line_fails),
        cmocka_unit_test(pull_error_without_detail),
        cmocka_unit_test(pull_skips_junk_and_long_lines),
        cmocka_unit_test(pull_summary_empty_and_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
