/* Unit tests for the gateway's request rewriting: bearer tokens, the
 * /serve/<path> prefix, hop-by-hop headers and completion bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gateway/gw_request.h"

static http_header_t header(const char *name, const char *value)
{
    http_header_t h = {name, strlen(name), value, strlen(value)};
    return h;
}

/* Returns the token found, or "" when none. */
static const char *bearer(const char *value, char *out, size_t size)
{
    http_header_t h = header("authorization", value);
    const char *token;
    size_t len;

    if (!http_bearer_token(&h, 1, &token, &len))
        return "";
    snprintf(out, size, "%.*s", (int)len, token);
    return out;
}

static void bearer_forms(void **state)
{
    char out[64];

    (void)state;
    assert_string_equal(bearer("Bearer nd_abc", out, sizeof(out)), "nd_abc");
    assert_string_equal(bearer("bearer nd_abc", out, sizeof(out)), "nd_abc");
    assert_string_equal(bearer("BEARER   nd_abc  ", out, sizeof(out)), "nd_abc");
    assert_string_equal(bearer("Bearer\tnd_abc", out, sizeof(out)), "nd_abc");
}

static void bearer_rejects(void **state)
{
    char out[64];

    (void)state;
    assert_string_equal(bearer("Basic bmQ6eA==", out, sizeof(out)), "");
    assert_string_equal(bearer("Bearer", out, sizeof(out)), "");
    assert_string_equal(bearer("Bearer    ", out, sizeof(out)), "");
    assert_string_equal(bearer("Bearernd_abc", out, sizeof(out)), "");
    assert_string_equal(bearer("Bearer a b", out, sizeof(out)), "");
}

static void bearer_missing(void **state)
{
    http_header_t h = header("Host", "x");
    const char *token;
    size_t len;

    (void)state;
    assert_int_equal(http_bearer_token(&h, 1, &token, &len), 0);
}

static gw_target_kind_t split(const char *target, gw_target_t *out)
{
    return gw_split_target(target, strlen(target), out);
}

static void target_strips_prefix(void **state)
{
    gw_target_t t;

    (void)state;
    assert_int_equal(split("/serve/llama/v1/chat/completions?x=1", &t), GW_TARGET_SERVE);
    assert_string_equal(t.name, "llama");
    assert_int_equal(t.forward_len, strlen("/v1/chat/completions?x=1"));
    assert_memory_equal(t.forward, "/v1/chat/completions?x=1", t.forward_len);
    assert_int_equal(t.forward_path_len, strlen("/v1/chat/completions"));
    assert_memory_equal(t.forward_path, "/v1/chat/completions", t.forward_path_len);
}

static void target_bare_name(void **state)
{
    gw_target_t t;

    (void)state;
    assert_int_equal(split("/serve/a1b2c3", &t), GW_TARGET_SERVE);
    assert_string_equal(t.name, "a1b2c3");
    assert_int_equal(t.forward_len, 0);
    assert_int_equal(split("/serve/a1b2c3?q=1", &t), GW_TARGET_SERVE);
    assert_int_equal(t.forward_path_len, 0);
    assert_int_equal(t.forward_len, 4);
}

static void target_other_and_bad(void **state)
{
    gw_target_t t;

    (void)state;
    assert_int_equal(split("/healthz", &t), GW_TARGET_OTHER);
    assert_int_equal(split("/serve", &t), GW_TARGET_OTHER);
    assert_int_equal(split("/servex/a/v1", &t), GW_TARGET_OTHER);
    assert_int_equal(split("/serve/", &t), GW_TARGET_BAD);
    assert_int_equal(split("/serve//v1", &t), GW_TARGET_BAD);
    assert_int_equal(split("/serve/a%2Fb/v1", &t), GW_TARGET_BAD);
}

static void hop_headers(void **state)
{
    http_header_t conn = header("Connection", "close, X-Secret-Hop");

    (void)state;
    assert_true(gw_is_hop_header("keep-alive", 10, NULL, 0));
    assert_true(gw_is_hop_header("Transfer-Encoding", 17, NULL, 0));
    assert_true(gw_is_hop_header("proxy-authorization", 19, NULL, 0));
    assert_true(gw_is_hop_header("TE", 2, NULL, 0));
    assert_true(gw_is_hop_header("Upgrade", 7, NULL, 0));
    assert_true(gw_is_hop_header("Trailer", 7, NULL, 0));
    assert_false(gw_is_hop_header("Content-Type", 12, NULL, 0));
    assert_false(gw_is_hop_header("X-Secret-Hop", 12, NULL, 0));
    assert_true(gw_is_hop_header("x-secret-hop", 12, &conn, 1));
}

static void upstream_request(void **state)
{
    http_request_t req;
    buf_t out = BUF_INIT;

    (void)state;
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.method_len = 4;
    req.headers[0] = header("Host", "gateway:8471");
    req.headers[1] = header("Authorization", "Bearer nd_secret");
    req.headers[2] = header("Content-Type", "application/json");
    req.headers[3] = header("Content-Length", "2");
    req.headers[4] = header("Connection", "keep-alive, X-Hop");
    req.headers[5] = header("X-Hop", "1");
    req.headers[6] = header("Proxy-Authorization", "Basic x");
    req.headers[7] = header("X-Request-Id", "r1");
    req.headers[8] = header("Accept-Encoding", "gzip");
    req.num_headers = 9;

    assert_int_equal(gw_build_upstream_request(&req, "/v1/x?a=b", 9, "127.0.0.1:9000",
                                               "{\"a\":1}", 7, 1, &out), 0);
    assert_string_equal(out.data, "POST /v1/x?a=b HTTP/1.1\r\n"
                                  "Content-Type: application/json\r\n"
                                  "X-Request-Id: r1\r\n"
                                  "Host: 127.0.0.1:9000\r\n"
                                  "Content-Length: 7\r\n\r\n"
                                  "{\"a\":1}");
    assert_null(strstr(out.data, "nd_secret"));
    buf_free(&out);
}

static void upstream_request_root(void **state)
{
    http_request_t req;
    buf_t out = BUF_INIT;

    (void)state;
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.method_len = 3;
    req.headers[0] = header("Accept-Encoding", "gzip");
    req.num_headers = 1;
    assert_int_equal(gw_build_upstream_request(&req, "?q=1", 4, "h:1", NULL, 0, 0, &out), 0);
    assert_string_equal(out.data, "GET /?q=1 HTTP/1.1\r\nAccept-Encoding: gzip\r\n"
                                  "Host: h:1\r\n\r\n");
    buf_free(&out);
}

/* The request line the instance would receive for a GET of forward. */
static void forwarded_target(const char *forward, char *line, size_t size)
{
    http_request_t req;
    buf_t out = BUF_INIT;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.method_len = 3;
    assert_int_equal(gw_build_upstream_request(&req, forward, strlen(forward), "h:1", NULL, 0,
                                               0, &out), 0);
    snprintf(line, size, "%.*s", (int)(strstr(out.data, "\r\n") - out.data), out.data);
    buf_free(&out);
}

static void upstream_drops_token_params(void **state)
{
    char line[256];

    (void)state;
    forwarded_target("/v1/models?a=1&api_key=nd_x&b=2&token=nd_y&Key=nd_z&access_token=nd_w"
                     "&keyword=3&tokens=4",
                     line, sizeof(line));
    assert_string_equal(line, "GET /v1/models?a=1&b=2&keyword=3&tokens=4 HTTP/1.1");

    forwarded_target("/v1/models?api_key=nd_x", line, sizeof(line));
    assert_string_equal(line, "GET /v1/models HTTP/1.1");

    forwarded_target("/v1/models?token&API%5Fkey=nd_x&q=a%26b", line, sizeof(line));
    assert_string_equal(line, "GET /v1/models?q=a%26b HTTP/1.1");

    forwarded_target("/v1/models?&&a=1&&", line, sizeof(line));
    assert_string_equal(line, "GET /v1/models?a=1 HTTP/1.1");
}

static void token_param_names(void **state)
{
    (void)state;
    assert_true(gw_is_token_param("api_key=x", 9));
    assert_true(gw_is_token_param("ACCESS_TOKEN=x", 14));
    assert_true(gw_is_token_param("token", 5));
    assert_true(gw_is_token_param("key=", 4));
    assert_true(gw_is_token_param("%6Bey=x", 7));
    assert_false(gw_is_token_param("keys=x", 6));
    assert_false(gw_is_token_param("model=key", 9));
    assert_false(gw_is_token_param("a_very_long_parameter_name=1", 28));
    assert_false(gw_is_token_param("", 0));
}

static void response_head_sse(void **state)
{
    http_response_t resp;
    gw_response_head_t head = {.extra = BUF_INIT};

    (void)state;
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    resp.content_length = -1;
    resp.headers[0] = header("Content-Type", "text/event-stream; charset=utf-8");
    resp.headers[1] = header("Transfer-Encoding", "chunked");
    resp.headers[2] = header("Cache-Control", "max-age=60");
    resp.headers[3] = header("X-Model", "sim");
    resp.headers[4] = header("Keep-Alive", "timeout=5");
    resp.num_headers = 5;

    assert_int_equal(gw_response_head(&resp, 0, &head), 0);
    assert_true(head.event_stream);
    assert_string_equal(head.content_type, "text/event-stream; charset=utf-8");
    assert_string_equal(head.extra.data, "X-Model: sim\r\n"
                                         "X-Accel-Buffering: no\r\n"
                                         "Cache-Control: no-cache\r\n");
    buf_free(&head.extra);
}

static void response_head_length(void **state)
{
    http_response_t resp;
    gw_response_head_t head = {.extra = BUF_INIT};

    (void)state;
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    resp.headers[0] = header("Content-Length", "12");
    resp.headers[1] = header("Content-Type", "application/json");
    resp.num_headers = 2;

    assert_int_equal(gw_response_head(&resp, 1, &head), 0);
    assert_false(head.event_stream);
    assert_string_equal(head.extra.data, "Content-Length: 12\r\n");
    buf_free(&head.extra);
    assert_int_equal(gw_response_head(&resp, 0, &head), 0);
    assert_null(head.extra.data);
}

static void completion_paths(void **state)
{
    (void)state;
    assert_true(gw_is_completion("POST", 4, "/v1/chat/completions", 20));
    assert_true(gw_is_completion("POST", 4, "/v1/completions", 15));
    assert_false(gw_is_completion("GET", 3, "/v1/completions", 15));
    assert_false(gw_is_completion("POST", 4, "/v1/embeddings", 14));
    assert_false(gw_is_completion("POST", 4, "/v1/completions/x", 17));
}

static void completion_adds_usage(void **state)
{
    static const char body[] = "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"x\":1}}";
    gw_completion_t c;

    (void)state;
    assert_int_equal(gw_completion_prepare(body, strlen(body), &c), 0);
    assert_true(c.stream);
    assert_true(c.strip_usage);
    assert_non_null(c.body);

    json_t *doc = json_loads(c.body, 0, NULL);
    json_t *options = json_object_get(doc, "stream_options");
    assert_true(json_is_true(json_object_get(options, "include_usage")));
    assert_int_equal(json_integer_value(json_object_get(options, "x")), 1);
    assert_string_equal(json_string_value(json_object_get(doc, "model")), "m");
    json_decref(doc);
    free(c.body);
}

static void completion_client_usage(void **state)
{
    static const char body[] = "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    gw_completion_t c;

    (void)state;
    assert_int_equal(gw_completion_prepare(body, strlen(body), &c), 0);
    assert_true(c.stream);
    assert_false(c.strip_usage);
    assert_null(c.body);
}

static void completion_left_alone(void **state)
{
    static const char plain[] = "{\"stream\":false}";
    static const char broken[] = "{\"stream\":true";
    static const char odd[] = "{\"stream\":true,\"stream_options\":7}";
    gw_completion_t c;

    (void)state;
    assert_int_equal(gw_completion_prepare(plain, strlen(plain), &c), 0);
    assert_false(c.stream);
    assert_null(c.body);
    assert_int_equal(gw_completion_prepare(broken, strlen(broken), &c), 0);
    assert_null(c.body);
    assert_int_equal(gw_completion_prepare(odd, strlen(odd), &c), 0);
    assert_false(c.strip_usage);
    assert_null(c.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bearer_forms),
        cmocka_unit_test(bearer_rejects),
        cmocka_unit_test(bearer_missing),
        cmocka_unit_test(target_strips_prefix),
        cmocka_unit_test(target_bare_name),
        cmocka_unit_test(target_other_and_bad),
        cmocka_unit_test(hop_headers),
        cmocka_unit_test(upstream_request),
        cmocka_unit_test(upstream_request_root),
        cmocka_unit_test(upstream_drops_token_params),
        cmocka_unit_test(token_param_names),
        cmocka_unit_test(response_head_sse),
        cmocka_unit_test(response_head_length),
        cmocka_unit_test(completion_paths),
        cmocka_unit_test(completion_adds_usage),
        cmocka_unit_test(completion_client_usage),
        cmocka_unit_test(completion_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
