/* Unit tests for the simulator's completion bodies and SSE events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "sim/sim_reply.h"
#include "sim/sim_text.h"

static sim_gen_request_t make_request(sim_api_t api, int completion, const char *finish,
                                      int include_usage)
{
    sim_gen_request_t req;

    memset(&req, 0, sizeof(req));
    req.api = api;
    req.stream = 1;
    req.include_usage = include_usage;
    req.seed = 12345;
    req.prompt_tokens = 11;
    req.completion_tokens = completion;
    req.max_tokens = 64;
    req.finish_reason = finish;
    return req;
}

static sim_reply_t make_reply(const sim_gen_request_t *req)
{
    sim_reply_t reply = {req, "chatcmpl-sim000001", 1700000000, "org/model \"quoted\""};

    return reply;
}

/* Decode one "data: {...}\n\n" event. */
static json_t *decode_event(const buf_t *event)
{
    json_error_t jerr;

    assert_true(event->len > 8);
    assert_memory_equal(event->data, "data: ", 6);
    assert_memory_equal(event->data + event->len - 2, "\n\n", 2);
    json_t *root = json_loadb(event->data + 6, event->len - 8, 0, &jerr);
    assert_non_null(root);
    return root;
}

static void chat_body_has_usage(void **state)
{
    (void)state;
    sim_gen_request_t req = make_request(SIM_API_CHAT, 7, "length", 0);
    sim_reply_t reply = make_reply(&req);
    buf_t out = BUF_INIT;
    json_error_t jerr;

    assert_int_equal(sim_reply_body(&reply, &out), 0);
    json_t *root = json_loads(out.data, 0, &jerr);
    assert_non_null(root);

    assert_string_equal(json_string_value(json_object_get(root, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(root, "model")), "org/model \"quoted\"");
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "length");
    json_t *message = json_object_get(choice, "message");
    assert_string_equal(json_string_value(json_object_get(message, "role")), "assistant");
    const char *content = json_string_value(json_object_get(message, "content"));
    assert_int_equal(sim_text_count_words(content, strlen(content)), 7);

    json_t *usage = json_object_get(root, "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), 11);
    assert_int_equal(json_integer_value(json_object_get(usage, "completion_tokens")), 7);
    assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), 18);
    json_decref(root);
    buf_free(&out);
}

static void completion_body_text(void **state)
{
    (void)state;
    sim_gen_request_t req = make_request(SIM_API_COMPLETION, 4, "stop", 0);
    sim_reply_t reply = make_reply(&req);
    buf_t out = BUF_INIT;
    buf_t text = BUF_INIT;
    json_error_t jerr;

    assert_int_equal(sim_reply_body(&reply, &out), 0);
    assert_int_equal(sim_reply_text(&req, &text), 0);
    json_t *root = json_loads(out.data, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "object")), "text_completion");
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(choice, "text")), text.data);
    /* A reply that stopped on its own ends its sentence. */
    assert_int_equal(text.data[text.len - 1], '.');
    json_decref(root);
    buf_free(&out);
    buf_free(&text);
}

static void chat_events_rebuild_text(void **state)
{
    (void)state;
    sim_gen_request_t req = make_request(SIM_API_CHAT, 6, "stop", 1);
    sim_reply_t reply = make_reply(&req);
    buf_t event = BUF_INIT;
    buf_t joined = BUF_INIT;
    buf_t text = BUF_INIT;

    assert_int_equal(sim_reply_role_event(&reply, &event), 0);
    json_t *root = decode_event(&event);
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(choice, "delta"), "role")),
                        "assistant");
    assert_true(json_is_null(json_object_get(root, "usage")));
    json_decref(root);

    for (int i = 0; i < req.completion_tokens; i++) {
        buf_reset(&event);
        assert_int_equal(sim_reply_token_event(&reply, i, &event), 0);
        root = decode_event(&event);
        assert_string_equal(json_string_value(json_object_get(root, "object")),
                            "chat.completion.chunk");
        choice = json_array_get(json_object_get(root, "choices"), 0);
        json_t *finish = json_object_get(choice, "finish_reason");
        if (i == req.completion_tokens - 1)
            assert_string_equal(json_string_value(finish), "stop");
        else
            assert_true(json_is_null(finish));
        buf_append_str(&joined,
                       json_string_value(json_object_get(json_object_get(choice, "delta"),
                                                         "content")));
        json_decref(root);
    }

    assert_int_equal(sim_reply_text(&req, &text), 0);
    assert_string_equal(joined.data, text.data);
    buf_free(&event);
    buf_free(&joined);
    buf_free(&text);
}

static void completion_event_has_text(void **state)
{
    (void)state;
    sim_gen_request_t req = make_request(SIM_API_COMPLETION, 2, "length", 0);
    sim_reply_t reply = make_reply(&req);
    buf_t event = BUF_INIT;

    assert_int_equal(sim_reply_token_event(&reply, 1, &event), 0);
    json_t *root = decode_event(&event);
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(root, "object")), "text_completion");
    assert_true(json_is_string(json_object_get(choice, "text")));
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "length");
    /* Without include_usage no chunk mentions usage. */
    assert_null(json_object_get(root, "usage"));
    json_decref(root);
    buf_free(&event);
}

static void usage_event_has_empty_choices(void **state)
{
    (void)state;
    sim_gen_request_t req = make_request(SIM_API_CHAT, 5, "length", 1);
    sim_reply_t reply = make_reply(&req);
    buf_t event = BUF_INIT;

    assert_int_equal(sim_reply_usage_event(&reply, &event), 0);
    json_t *root = decode_event(&event);
    assert_int_equal(json_array_size(json_object_get(root, "choices")), 0);
    json_t *usage = json_object_get(root, "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), 11);
    assert_int_equal(json_integer_value(json_object_get(usage, "completion_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), 16);
    json_decref(root);

    buf_reset(&event);
    assert_int_equal(sim_reply_done_event(&event), 0);
    assert_string_equal(event.data, "data: [DONE]\n\n");
    buf_free(&event);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chat_body_has_usage),
        cmocka_unit_test(completion_body_text),
        cmocka_unit_test(chat_events_rebuild_text),
        cmocka_unit_test(completion_event_has_text),
        cmocka_unit_test(usage_event_has_empty_choices),
    };
    return cmocka_run_group_tests_name("sim_reply", tests, NULL, NULL);
}
