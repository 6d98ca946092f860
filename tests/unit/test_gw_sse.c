/* Unit tests for the gateway's SSE pass-through: event boundaries split at
 * every byte, usage extraction and removal of the usage-only chunk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/gw_sse.h"

/* Three content events (one with a multi-byte UTF-8 sequence), the
 * usage-only chunk a server sends for include_usage, and the end marker. */
#define EV_ROLE "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}],\"usage\":null}\n\n"
#define EV_TEXT1 "data: {\"choices\":[{\"delta\":{\"content\":\"h\xc3\xa9llo \xe2\x9c\x93\"}}]}\n\n"
#define EV_TEXT2 "data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\n"
#define EV_USAGE "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34," \
                 "\"total_tokens\":46}}\n\n"
#define EV_DONE "data: [DONE]\n\n"

static const char stream_full[] = EV_ROLE EV_TEXT1 EV_TEXT2 EV_USAGE EV_DONE;
static const char stream_stripped[] = EV_ROLE EV_TEXT1 EV_TEXT2 EV_DONE;

/* Feed input in the given pieces and return what the client receives. */
static void run_pieces(gw_sse_t *sse, const char *input, size_t len, const size_t *cuts,
                       size_t num_cuts, buf_t *out)
{
    size_t start = 0;

    for (size_t i = 0; i <= num_cuts; i++) {
        size_t end = i < num_cuts ? cuts[i] : len;
        assert_int_equal(gw_sse_feed(sse, input + start, end - start, out), 0);
        start = end;
    }
    assert_int_equal(gw_sse_finish(sse, out), 0);
}

static void check_split_everywhere(const char *input, const char *expected, int strip)
{
    size_t len = strlen(input);

    for (size_t cut = 0; cut <= len; cut++) {
        gw_sse_t sse;
        buf_t out = BUF_INIT;

        gw_sse_init(&sse, strip, 0);
        run_pieces(&sse, input, len, &cut, 1, &out);

        assert_int_equal(out.len, strlen(expected));
        assert_memory_equal(out.data, expected, out.len);
        assert_true(sse.have_usage);
        assert_int_equal(sse.prompt_tokens, 12);
        assert_int_equal(sse.completion_tokens, 34);
        assert_int_equal(sse.content_events, 2);
        gw_sse_free(&sse);
        buf_free(&out);
    }
}

static void sse_split_strip(void **state)
{
    (void)state;
    check_split_everywhere(stream_full, stream_stripped, 1);
}

static void sse_split_keep(void **state)
{
    (void)state;
    check_split_everywhere(stream_full, stream_full, 0);
}

/* Every byte in its own read: the worst case for the leftover logic. */
static void sse_byte_by_byte(void **state)
{
    size_t len = strlen(stream_full);
    gw_sse_t sse;
    buf_t out = BUF_INIT;

    (void)state;
    gw_sse_init(&sse, 1, 0);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(gw_sse_feed(&sse, stream_full + i, 1, &out), 0);
    assert_int_equal(gw_sse_finish(&sse, &out), 0);

    assert_string_equal(out.data, stream_stripped);
    assert_int_equal(sse.completion_tokens, 34);
    assert_int_equal(sse.dropped_events, 1);
    gw_sse_free(&sse);
    buf_free(&out);
}

/* Two cuts at every pair of positions, with CRLF line ends. */
static void sse_crlf_two_cuts(void **state)
{
    static const char input[] =
        "data: {\"choices\":[{\"delta\":{\"content\":\"\xe2\x82\xac\"}}]}\r\n\r\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\r\n\r\n"
        "data: [DONE]\r\n\r\n";
    static const char expected[] =
        "data: {\"choices\":[{\"delta\":{\"content\":\"\xe2\x82\xac\"}}]}\r\n\r\n"
        "data: [DONE]\r\n\r\n";
    size_t len = strlen(input);

    (void)state;
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b++) {
            size_t cuts[2] = {a, b};
            gw_sse_t sse;
            buf_t out = BUF_INIT;

            gw_sse_init(&sse, 1, 0);
            run_pieces(&sse, input, len, cuts, 2, &out);
            assert_string_equal(out.data, expected);
            assert_int_equal(sse.prompt_tokens, 5);
            assert_int_equal(sse.completion_tokens, 7);
            gw_sse_free(&sse);
            buf_free(&out);
        }
    }
}

/* Bare CR line ends: the LF-less terminator of a dropped event must not
 * leave a stray byte behind. */
static void sse_cr_only(void **state)
{
    static const char input[] = "data: {\"choices\":[{}]}\r\r"
                                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,"
                                "\"completion_tokens\":2}}\r\r"
                                "data: [DONE]\r\r";
    static const char expected[] = "data: {\"choices\":[{}]}\r\rdata: [DONE]\r\r";
    size_t len = strlen(input);

    (void)state;
    for (size_t cut = 0; cut <= len; cut++) {
        gw_sse_t sse;
        buf_t out = BUF_INIT;

        gw_sse_init(&sse, 1, 0);
        run_pieces(&sse, input, len, &cut, 1, &out);
        assert_string_equal(out.data, expected);
        assert_int_equal(sse.completion_tokens, 2);
        gw_sse_free(&sse);
        buf_free(&out);
    }
}

/* Without stripping, bytes leave at once, even mid-event. */
static void sse_keep_is_immediate(void **state)
{
    gw_sse_t sse;
    buf_t out = BUF_INIT;

    (void)state;
    gw_sse_init(&sse, 0, 0);
    assert_int_equal(gw_sse_feed(&sse, "data: {\"cho", 11, &out), 0);
    assert_int_equal(out.len, 11);
    gw_sse_free(&sse);
    buf_free(&out);
}

/* With stripping, a finished event leaves in the same read that ends it. */
static void sse_strip_releases_event(void **state)
{
    gw_sse_t sse;
    buf_t out = BUF_INIT;

    (void)state;
    gw_sse_init(&sse, 1, 0);
    assert_int_equal(gw_sse_feed(&sse, EV_TEXT2 "data: {", strlen(EV_TEXT2) + 7, &out), 0);
    assert_int_equal(out.len, strlen(EV_TEXT2));
    assert_memory_equal(out.data, EV_TEXT2, out.len);
    assert_int_equal(sse.event.len, 7);
    gw_sse_free(&sse);
    buf_free(&out);
}

/* Usage inside a chunk that also has choices is taken, not removed. */
static void sse_usage_with_choices_kept(void **state)
{
    static const char input[] = "data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":3,"
                                "\"completion_tokens\":4}}\n\n";
    gw_sse_t sse;
    buf_t out = BUF_INIT;

    (void)state;
    gw_sse_init(&sse, 1, 0);
    assert_int_equal(gw_sse_feed(&sse, input, strlen(input), &out), 0);
    assert_int_equal(gw_sse_finish(&sse, &out), 0);
    assert_string_equal(out.data, input);
    assert_true(sse.have_usage);
    assert_int_equal(sse.prompt_tokens, 3);
    assert_int_equal(sse.dropped_events, 0);
    gw_sse_free(&sse);
    buf_free(&out);
}

/* An event longer than the bound passes through unparsed and the held
 * bytes never exceed the bound; later events are parsed again. */
static void sse_bounded_leftover(void **state)
{
    enum { BIG = 5000, LIMIT = 1024 };
    static char big[BIG + 64];
    gw_sse_t sse;
    buf_t out = BUF_INIT;
    buf_t expected = BUF_INIT;

    (void)state;
    memcpy(big, "data: \"", 7);
    memset(big + 7, 'x', BIG);
    memcpy(big + 7 + BIG, "\"\n\n", 4);
    size_t big_len = strlen(big);

    gw_sse_init(&sse, 1, LIMIT);
    for (size_t i = 0; i < big_len; i += 100) {
        size_t n = big_len - i < 100 ? big_len - i : 100;
        assert_int_equal(gw_sse_feed(&sse, big + i, n, &out), 0);
        assert_true(sse.event.len <= LIMIT);
    }
    assert_int_equal(gw_sse_feed(&sse, EV_USAGE EV_DONE, strlen(EV_USAGE EV_DONE), &out), 0);
    assert_int_equal(gw_sse_finish(&sse, &out), 0);

    buf_append_str(&expected, big);
    buf_append_str(&expected, EV_DONE);
    assert_int_equal(out.len, expected.len);
    assert_memory_equal(out.data, expected.data, out.len);
    assert_int_equal(sse.completion_tokens, 34);
    gw_sse_free(&sse);
    buf_free(&out);
    buf_free(&expected);
}

/* An unterminated last event is forwarded as it is at the end. */
static void sse_finish_flushes_tail(void **state)
{
    gw_sse_t sse;
    buf_t out = BUF_INIT;

    (void)state;
    gw_sse_init(&sse, 1, 0);
    assert_int_equal(gw_sse_feed(&sse, "data: [DONE]", 12, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(gw_sse_finish(&sse, &out), 0);
    assert_string_equal(out.data, "data: [DONE]");
    gw_sse_free(&sse);
    buf_free(&out);
}

/* Multi-line data fields are joined with LF before the JSON parse. */
static void sse_multiline_data(void **state)
{
    static const char input[] = "event: x\ndata: {\"choices\":[],\ndata: \"usage\":"
                                "{\"prompt_tokens\":8,\"completion_tokens\":9}}\n\n";
    gw_sse_t sse;
    buf_t out = BUF_INIT;

    (void)state;
    gw_sse_init(&sse, 1, 0);
    assert_int_equal(gw_sse_feed(&sse, input, strlen(input), &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(sse.completion_tokens, 9);
    gw_sse_free(&sse);
    buf_free(&out);
}

static void usage_from_body(void **state)
{
    static const char body[] = "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
                               "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20}}";
    int64_t prompt = 0, completion = 0;

    (void)state;
    assert_int_equal(gw_usage_from_json(body, strlen(body), &prompt, &completion), 1);
    assert_int_equal(prompt, 10);
    assert_int_equal(completion, 20);
}

static void usage_from_bad_body(void **state)
{
    int64_t prompt = -1, completion = -1;

    (void)state;
    assert_int_equal(gw_usage_from_json("{\"usage\":", 9, &prompt, &completion), 0);
    assert_int_equal(gw_usage_from_json("{\"choices\":[]}", 14, &prompt, &completion), 0);
    assert_int_equal(prompt, -1);
}

/* Feed input in pieces of piece bytes with the Nth append failing, and do
 * what the proxy does: on a failure send out and the unsent spans, then the
 * rest unparsed. Returns 1 when the hook fired, with the client's bytes in
 * client. */
static int run_with_failure(const char *input, size_t len, size_t piece, int strip,
                            unsigned fail_at, buf_t *client)
{
    gw_sse_t sse;
    buf_t out = BUF_INIT;
    gw_sse_span_t spans[2];
    int failed = 0;

    gw_sse_init(&sse, strip, 0);
    sse.fail_append_at = fail_at;
    for (size_t start = 0; start < len; start += piece) {
        size_t n = len - start < piece ? len - start : piece;
        if (failed) {
            buf_append(client, input + start, n);
            continue;
        }
        buf_reset(&out);
        if (gw_sse_feed(&sse, input + start, n, &out) == 0) {
            buf_append(client, out.data, out.len);
            continue;
        }
        failed = 1;
        buf_append(client, out.data, out.len);
        size_t count = gw_sse_unsent(&sse, input + start, n, spans);
        for (size_t i = 0; i < count; i++)
            buf_append(client, spans[i].data, spans[i].len);
    }

    if (!failed) {
        buf_reset(&out);
        failed = gw_sse_finish(&sse, &out) != 0;
        buf_append(client, out.data, out.len);
        if (failed) {
            size_t count = gw_sse_unsent(&sse, NULL, 0, spans);
            for (size_t i = 0; i < count; i++)
                buf_append(client, spans[i].data, spans[i].len);
        }
    }
    gw_sse_free(&sse);
    buf_free(&out);
    return failed;
}

/* Whatever append runs out of memory, the client gets the stream once: whole,
 * or without the usage-only chunk when stripping dropped it before. */
static void sse_out_of_memory_fallback(void **state)
{
    static const size_t pieces[] = {1, 7, 40, sizeof(stream_full)};
    const char *inputs[] = {stream_full, "data: {}\r\n\r\n" EV_USAGE "data: [DONE]\r\r"};
    const char *stripped_inputs[] = {stream_stripped, "data: {}\r\n\r\ndata: [DONE]\r\r"};

    (void)state;
    for (size_t k = 0; k < 2; k++) {
        size_t len = strlen(inputs[k]);
        for (int strip = 0; strip <= 1; strip++) {
            for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
                int fired_once = 0;
                for (unsigned fail_at = 1; fail_at < 10000; fail_at++) {
                    buf_t client = BUF_INIT;
                    int fired = run_with_failure(inputs[k], len, pieces[p], strip, fail_at,
                                                 &client);
                    int whole = client.len == len && memcmp(client.data, inputs[k], len) == 0;
                    int stripped = client.len == strlen(stripped_inputs[k]) &&
                                   memcmp(client.data, stripped_inputs[k], client.len) == 0;
                    if (!whole && !(strip && stripped))
                        fail_msg("input %zu, strip %d, pieces of %zu, append %u failing: "
                                 "client got %zu bytes:\n%s", k, strip, pieces[p], fail_at,
                                 client.len, client.data ? client.data : "");
                    buf_free(&client);
                    fired_once |= fired;
                    if (!fired)
                        break;
                }
                assert_true(fired_once);
            }
        }
    }
}

/* Content events are the estimate when no usage arrives: chat deltas and
 * legacy text with something in them, counted once per event, and only
 * once the event is complete. */
static void sse_counts_content_events(void **state)
{
    static const char input[] =
        EV_ROLE
        "data: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n\n"
        "data: {\"choices\":[{\"text\":\"legacy\"}]}\r\n\r\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}},"
        "{\"delta\":{\"content\":\"b\"}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":null}}]}\n\n"
        ": keep-alive comment with \"content\" in it\n\n"
        EV_TEXT2
        "data: {\"choices\":[{\"delta\":{\"content\":\"unfinished\"";
    size_t len = strlen(input);

    (void)state;
    for (int strip = 0; strip <= 1; strip++) {
        for (size_t cut = 0; cut <= len; cut++) {
            gw_sse_t sse;
            buf_t out = BUF_INIT;

            gw_sse_init(&sse, strip, 0);
            assert_int_equal(gw_sse_feed(&sse, input, cut, &out), 0);
            assert_int_equal(gw_sse_feed(&sse, input + cut, len - cut, &out), 0);
            assert_int_equal(sse.content_events, 3);
            assert_false(sse.have_usage);
            gw_sse_free(&sse);
            buf_free(&out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sse_split_strip),
        cmocka_unit_test(sse_split_keep),
        cmocka_unit_test(sse_byte_by_byte),
        cmocka_unit_test(sse_crlf_two_cuts),
        cmocka_unit_test(sse_cr_only),
        cmocka_unit_test(sse_keep_is_immediate),
        cmocka_unit_test(sse_strip_releases_event),
        cmocka_unit_test(sse_usage_with_choices_kept),
        cmocka_unit_test(sse_bounded_leftover),
        cmocka_unit_test(sse_finish_flushes_tail),
        cmocka_unit_test(sse_multiline_data),
        cmocka_unit_test(sse_counts_content_events),
        cmocka_unit_test(sse_out_of_memory_fallback),
        cmocka_unit_test(usage_from_body),
        cmocka_unit_test(usage_from_bad_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
