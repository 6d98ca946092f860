/* Unit tests for the simulator's chat and completion request validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_request.h"
#include "sim/sim_text.h"

#define MODEL "nimdeck/sim-llm"

static int parse(sim_api_t api, const char *body, sim_gen_request_t *out, sim_error_t *err)
{
    return sim_gen_request_parse(api, body, strlen(body), MODEL, out, err);
}

/* Parse body expecting a rejection with this status and param. */
static void expect_error(sim_api_t api, const char *body, int status, const char *param)
{
    sim_gen_request_t req;
    sim_error_t err;

    assert_int_equal(parse(api, body, &req, &err), -1);
    assert_int_equal(err.status, status);
    assert_string_equal(err.param, param);
    assert_true(strlen(err.message) > 0);
}

static void chat_counts_prompt_tokens(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;

    /* 3 + 2 words, 4 tokens per message, 2 for the reply priming. */
    assert_int_equal(parse(SIM_API_CHAT,
                           "{\"messages\":[{\"role\":\"system\",\"content\":\"be very brief\"},"
                           "{\"role\":\"user\",\"content\":\"hello there\"}]}",
                           &req, &err),
                     0);
    assert_int_equal(req.prompt_tokens, 3 + 2 + 2 * 4 + 2);
    assert_int_equal(req.api, SIM_API_CHAT);
    assert_int_equal(req.stream, 0);
    assert_int_equal(req.include_usage, 0);
}

static void chat_content_parts_count(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;

    assert_int_equal(parse(SIM_API_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"content\":["
                           "{\"type\":\"text\",\"text\":\"one two\"},"
                           "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},"
                           "{\"type\":\"text\",\"text\":\"three\"}]},"
                           "{\"role\":\"assistant\",\"content\":null}]}",
                           &req, &err),
                     0);
    assert_int_equal(req.prompt_tokens, 3 + 2 * 4 + 2);
}

static void default_length_stops_naturally(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;

    assert_int_equal(parse(SIM_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                           &req, &err),
                     0);
    assert_int_equal(req.max_tokens, SIM_DEFAULT_MAX_TOKENS);
    assert_int_equal(req.completion_tokens, sim_text_natural_length(req.seed));
    assert_string_equal(req.finish_reason, "stop");
}

static void max_tokens_cuts_reply(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;

    assert_int_equal(parse(SIM_API_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                           "\"max_tokens\":5}",
                           &req, &err),
                     0);
    assert_int_equal(req.completion_tokens, 5);
    assert_string_equal(req.finish_reason, "length");
}

static void max_tokens_equal_to_length_stops(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;
    char body[160];

    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":\"abc\"}", &req, &err), 0);
    int natural = req.completion_tokens;

    snprintf(body, sizeof(body), "{\"prompt\":\"abc\",\"max_tokens\":%d}", natural);
    assert_int_equal(parse(SIM_API_COMPLETION, body, &req, &err), 0);
    assert_int_equal(req.completion_tokens, natural);
    assert_string_equal(req.finish_reason, "stop");
}

static void max_completion_tokens_wins(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;

    assert_int_equal(parse(SIM_API_CHAT,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                           "\"max_tokens\":9,\"max_completion_tokens\":3}",
                           &req, &err),
                     0);
    assert_int_equal(req.completion_tokens, 3);
}

static void max_tokens_rejected(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"prompt\":\"a\",\"max_tokens\":0}",      "{\"prompt\":\"a\",\"max_tokens\":-3}",
        "{\"prompt\":\"a\",\"max_tokens\":4097}",   "{\"prompt\":\"a\",\"max_tokens\":\"10\"}",
        "{\"prompt\":\"a\",\"max_tokens\":1.5}",    "{\"prompt\":\"a\",\"max_tokens\":true}",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_error(SIM_API_COMPLETION, bodies[i], 400, "max_tokens");
    expect_error(SIM_API_COMPLETION, "{\"prompt\":\"a\",\"max_completion_tokens\":0}", 400,
                 "max_completion_tokens");
}

static void max_tokens_limit_accepted(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;

    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":4096}", &req,
                           &err),
                     0);
    assert_int_equal(req.max_tokens, 4096);
    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":1}", &req,
                           &err),
                     0);
    assert_int_equal(req.completion_tokens, 1);
}

static void messages_rejected(void **state)
{
    (void)state;
    expect_error(SIM_API_CHAT, "{}", 400, "messages");
    expect_error(SIM_API_CHAT, "{\"messages\":[]}", 400, "messages");
    expect_error(SIM_API_CHAT, "{\"messages\":\"hi\"}", 400, "messages");
    expect_error(SIM_API_CHAT, "{\"messages\":[\"hi\"]}", 400, "messages[0]");
    expect_error(SIM_API_CHAT, "{\"messages\":[{\"content\":\"hi\"}]}", 400, "messages[0].role");
    expect_error(SIM_API_CHAT,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                 "{\"role\":\"user\",\"content\":5}]}",
                 400, "messages[1].content");
    expect_error(SIM_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[\"x\"]}]}", 400,
                 "messages[0].content");
}

static void prompt_forms(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;

    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":\"one two three\"}", &req, &err), 0);
    assert_int_equal(req.prompt_tokens, 4);
    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":[\"one two\",\"three\"]}", &req, &err),
                     0);
    assert_int_equal(req.prompt_tokens, 5);
    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":[101,102,103]}", &req, &err), 0);
    assert_int_equal(req.prompt_tokens, 3);
}

static void prompt_rejected(void **state)
{
    (void)state;
    expect_error(SIM_API_COMPLETION, "{}", 400, "prompt");
    expect_error(SIM_API_COMPLETION, "{\"prompt\":[]}", 400, "prompt");
    expect_error(SIM_API_COMPLETION, "{\"prompt\":{}}", 400, "prompt");
    expect_error(SIM_API_COMPLETION, "{\"prompt\":[\"a\",{}]}", 400, "prompt");
    expect_error(SIM_API_COMPLETION, "{\"prompt\":null}", 400, "prompt");
}

static void model_checked(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;

    assert_int_equal(parse(SIM_API_COMPLETION, "{\"model\":\"" MODEL "\",\"prompt\":\"a\"}", &req,
                           &err),
                     0);
    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":\"a\"}", &req, &err), 0);

    assert_int_equal(parse(SIM_API_COMPLETION, "{\"model\":\"gpt-4\",\"prompt\":\"a\"}", &req,
                           &err),
                     -1);
    assert_int_equal(err.status, 404);
    assert_string_equal(err.code, "model_not_found");
    assert_non_null(strstr(err.message, "gpt-4"));

    expect_error(SIM_API_COMPLETION, "{\"model\":7,\"prompt\":\"a\"}", 400, "model");
}

static void body_rejected(void **state)
{
    (void)state;
    expect_error(SIM_API_CHAT, "", 400, "");
    expect_error(SIM_API_CHAT, "not json", 400, "");
    expect_error(SIM_API_CHAT, "[1,2]", 400, "");
    expect_error(SIM_API_CHAT, "{\"messages\":[", 400, "");
}

static void stream_options_parsed(void **state)
{
    (void)state;
    sim_gen_request_t req;
    sim_error_t err;

    assert_int_equal(parse(SIM_API_COMPLETION,
                           "{\"prompt\":\"a\",\"stream\":true,"
                           "\"stream_options\":{\"include_usage\":true}}",
                           &req, &err),
                     0);
    assert_int_equal(req.stream, 1);
    assert_int_equal(req.include_usage, 1);

    /* Usage chunks only exist in streams. */
    assert_int_equal(parse(SIM_API_COMPLETION,
                           "{\"prompt\":\"a\",\"stream_options\":{\"include_usage\":true}}", &req,
                           &err),
                     0);
    assert_int_equal(req.stream, 0);
    assert_int_equal(req.include_usage, 0);

    expect_error(SIM_API_COMPLETION, "{\"prompt\":\"a\",\"stream\":\"yes\"}", 400, "stream");
    expect_error(SIM_API_COMPLETION, "{\"prompt\":\"a\",\"stream_options\":true}", 400,
                 "stream_options");
    expect_error(SIM_API_COMPLETION,
                 "{\"prompt\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
                 400, "stream_options.include_usage");
    expect_error(SIM_API_COMPLETION, "{\"prompt\":\"a\",\"n\":2}", 400, "n");
}

static void seed_follows_prompt(void **state)
{
    (void)state;
    sim_gen_request_t a;
    sim_gen_request_t b;
    sim_gen_request_t c;
    sim_error_t err;

    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":\"hello\",\"max_tokens\":3}", &a, &err),
                     0);
    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":\"hello\",\"stream\":true}", &b, &err),
                     0);
    assert_int_equal(parse(SIM_API_COMPLETION, "{\"prompt\":\"hellp\"}", &c, &err), 0);
    assert_int_equal(a.seed, b.seed);
    assert_int_not_equal(a.seed, c.seed);
}

static void error_json_shape(void **state)
{
    (void)state;
    sim_error_t err;
    buf_t out = BUF_INIT;
    json_error_t jerr;

    sim_error_set(&err, 400, "invalid_value", "max_tokens", "max_tokens must be %d or less", 9);
    assert_int_equal(sim_error_to_json(&err, &out), 0);

    json_t *root = json_loads(out.data, 0, &jerr);
    assert_non_null(root);
    json_t *error = json_object_get(root, "error");
    assert_string_equal(json_string_value(json_object_get(error, "message")),
                        "max_tokens must be 9 or less");
    assert_string_equal(json_string_value(json_object_get(error, "type")),
                        "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(error, "param")), "max_tokens");
    assert_string_equal(json_string_value(json_object_get(error, "code")), "invalid_value");
    json_decref(root);

    buf_reset(&out);
    sim_error_set(&err, 404, "not_found", NULL, "no such path");
    assert_int_equal(sim_error_to_json(&err, &out), 0);
    root = json_loads(out.data, 0, &jerr);
    assert_non_null(root);
    assert_true(json_is_null(json_object_get(json_object_get(root, "error"), "param")));
    json_decref(root);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chat_counts_prompt_tokens),
        cmocka_unit_test(chat_content_parts_count),
        cmocka_unit_test(default_length_stops_naturally),
        cmocka_unit_test(max_tokens_cuts_reply),
        cmocka_unit_test(max_tokens_equal_to_length_stops),
        cmocka_unit_test(max_completion_tokens_wins),
        cmocka_unit_test(max_tokens_rejected),
        cmocka_unit_test(max_tokens_limit_accepted),
        cmocka_unit_test(messages_rejected),
        cmocka_unit_test(prompt_forms),
        cmocka_unit_test(prompt_rejected),
        cmocka_unit_test(model_checked),
        cmocka_unit_test(body_rejected),
        cmocka_unit_test(stream_options_parsed),
        cmocka_unit_test(seed_follows_prompt),
        cmocka_unit_test(error_json_shape),
    };
    return cmocka_run_group_tests_name("sim_request", tests, NULL, NULL);
}
