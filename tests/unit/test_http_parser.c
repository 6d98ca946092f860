/* Unit tests for the HTTP request, response and chunked-body parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/parser.h"

#define MAX_HEAD 16384

static int parse(const char *text, http_request_t *req)
{
    return http_parse_request(text, strlen(text), MAX_HEAD, HTTP_MAX_HEADERS, req);
}

static int parse_status(const char *text)
{
    http_request_t req;

    return parse(text, &req);
}

static void request_fields(void **state)
{
    const char *text = "GET /v1/models?limit=5&x=y HTTP/1.1\r\n"
                       "Host: example\r\n"
                       "X-Spaced:   padded value \t\r\n"
                       "Empty:\r\n"
                       "\r\n";
    http_request_t req;

    (void)state;
    assert_int_equal(parse(text, &req), (int)strlen(text));
    assert_int_equal(req.method_len, 3);
    assert_memory_equal(req.method, "GET", 3);
    assert_int_equal(req.target_len, strlen("/v1/models?limit=5&x=y"));
    assert_int_equal(req.path_len, strlen("/v1/models"));
    assert_memory_equal(req.path, "/v1/models", req.path_len);
    assert_non_null(req.query);
    assert_int_equal(req.query_len, strlen("limit=5&x=y"));
    assert_memory_equal(req.query, "limit=5&x=y", req.query_len);
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.num_headers, 3);
    assert_int_equal(req.content_length, -1);
    assert_int_equal(req.chunked, 0);
    assert_int_equal(req.keep_alive, 1);
    assert_int_equal(req.expect_continue, 0);

    size_t len = 0;
    const char *v = http_header_find(req.headers, req.num_headers, "x-SPACED", &len);
    assert_non_null(v);
    assert_int_equal(len, strlen("padded value"));
    assert_memory_equal(v, "padded value", len);
    v = http_header_find(req.headers, req.num_headers, "empty", &len);
    assert_non_null(v);
    assert_int_equal(len, 0);
    assert_null(http_header_find(req.headers, req.num_headers, "missing", &len));
}

static void request_without_query(void **state)
{
    http_request_t req;

    (void)state;
    assert_true(parse("DELETE /api/v1/apps/7 HTTP/1.0\r\n\r\n", &req) > 0);
    assert_null(req.query);
    assert_int_equal(req.path_len, strlen("/api/v1/apps/7"));
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(req.keep_alive, 0);
}

static void request_leading_crlf_skipped(void **state)
{
    http_request_t req;

    (void)state;
    assert_int_equal(parse("\r\nGET / HTTP/1.1\r\n\r\n", &req), 20);
    assert_int_equal(req.method_len, 3);
}

static void request_incomplete_every_split(void **state)
{
    const char *text = "POST /v1/chat/completions HTTP/1.1\r\n"
                       "Host: localhost:8000\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: 42\r\n"
                       "Connection: keep-alive\r\n"
                       "\r\n";
    size_t n = strlen(text);
    http_request_t req;

    (void)state;
    for (size_t k = 0; k < n; k++)
        assert_int_equal(http_parse_request(text, k, MAX_HEAD, HTTP_MAX_HEADERS, &req),
                         HTTP_PARSE_INCOMPLETE);
    assert_int_equal(http_parse_request(text, n, MAX_HEAD, HTTP_MAX_HEADERS, &req), (int)n);
    assert_int_equal(req.content_length, 42);
}

static void request_body_bytes_not_counted(void **state)
{
    const char *text = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
    http_request_t req;

    (void)state;
    assert_int_equal(parse(text, &req), (int)strlen(text) - 4);
}

static void request_content_length(void **state)
{
    http_request_t req;

    (void)state;
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &req) > 0);
    assert_int_equal(req.content_length, 0);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n",
                      &req) > 0);
    assert_int_equal(req.content_length, INT64_MAX);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n",
                      &req) > 0);
    assert_int_equal(req.content_length, 7);
}

static void request_content_length_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n"),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
                     HTTP_PARSE_BAD);
}

static void request_chunked(void **state)
{
    http_request_t req;

    (void)state;
    assert_true(parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &req) > 0);
    assert_int_equal(req.chunked, 1);
    assert_int_equal(req.content_length, -1);
}

static void request_transfer_encoding_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                                  "Content-Length: 5\r\n\r\n"),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
                     HTTP_PARSE_NOT_IMPLEMENTED);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
                     HTTP_PARSE_NOT_IMPLEMENTED);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"),
                     HTTP_PARSE_NOT_IMPLEMENTED);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n"),
                     HTTP_PARSE_NOT_IMPLEMENTED);
}

static void request_header_syntax_rejected(void **state)
{
    (void)state;
    /* obs-fold: a continuation line starting with SP or HTAB. */
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n"), HTTP_PARSE_BAD);
    /* Whitespace between the name and the colon. */
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\n: x\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), HTTP_PARSE_BAD);
}

static void request_bare_lf_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_status("GET / HTTP/1.1\n\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nHost: x\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nHost: x\r\n\n"), HTTP_PARSE_BAD);
}

static void request_control_chars_rejected(void **state)
{
    static const char name_ctl[] = "GET / HTTP/1.1\r\nX\001Y: v\r\n\r\n";
    static const char value_nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    http_request_t req;

    (void)state;
    assert_int_equal(http_parse_request(name_ctl, sizeof name_ctl - 1, MAX_HEAD,
                                        HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_BAD);
    assert_int_equal(http_parse_request(value_nul, sizeof value_nul - 1, MAX_HEAD,
                                        HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nX: a\177b\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nX: a\033b\r\n\r\n"), HTTP_PARSE_BAD);
    /* HTAB and obs-text are allowed in values. */
    assert_true(parse_status("GET / HTTP/1.1\r\nX: a\tb\xc3\xa9\r\n\r\n") > 0);
}

static void request_line_rejected(void **state)
{
    (void)state;
    assert_int_equal(parse_status("GET  / HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.1 \r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET http://host/ HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET * HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/2.0\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / HTTP/1.2\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET / http/1.1\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET /\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("G(T / HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status(" GET / HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD);
    assert_int_equal(parse_status("GET /a\001b HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD);
}

static void request_head_limit(void **state)
{
    const char *text = "GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    size_t n = strlen(text);
    http_request_t req;

    (void)state;
    assert_int_equal(http_parse_request(text, n, n, HTTP_MAX_HEADERS, &req), (int)n);
    assert_int_equal(http_parse_request(text, n, n - 1, HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_TOO_LARGE);
    /* An unfinished head that already fills the limit cannot fit. */
    assert_int_equal(http_parse_request(text, 30, 30, HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_TOO_LARGE);
    assert_int_equal(http_parse_request(text, 29, 30, HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_INCOMPLETE);
}

/* The request line alone over the limit is 414, complete or not; a line
 * that fits with headers that do not is still 431. */
static void request_line_limit(void **state)
{
    const char *text = "GET /aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
    size_t line = strlen("GET /aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n");
    size_t n = strlen(text);
    http_request_t req;

    (void)state;
    assert_int_equal(http_parse_request(text, n, line - 1, HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_URI_TOO_LONG);
    assert_int_equal(http_parse_request(text, n, line, HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_TOO_LARGE);
    assert_int_equal(http_parse_request(text, 20, 20, HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_URI_TOO_LONG);
    assert_int_equal(http_parse_request(text, 19, 20, HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_INCOMPLETE);

    /* Empty lines before the request line do not count against it. */
    const char *led = "\r\n\r\nGET /aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(http_parse_request(led, strlen(led), line + 2, HTTP_MAX_HEADERS, &req),
                     HTTP_PARSE_TOO_LARGE);
}

static void request_host_rules(void **state)
{
    http_request_t req;

    (void)state;
    assert_true(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
    assert_null(http_request_host_error(&req));

    /* RFC 9110 allows an empty value when the target has no authority. */
    assert_true(parse("GET / HTTP/1.1\r\nhost:\r\n\r\n", &req) > 0);
    assert_null(http_request_host_error(&req));

    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &req) > 0);
    assert_null(http_request_host_error(&req));

    assert_true(parse("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", &req) > 0);
    assert_non_null(strstr(http_request_host_error(&req), "missing Host"));

    assert_true(parse("GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n", &req) > 0);
    assert_non_null(strstr(http_request_host_error(&req), "more than one Host"));

    assert_true(parse("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", &req) > 0);
    assert_non_null(http_request_host_error(&req));
}

static void request_header_count_limit(void **state)
{
    char text[4096] = "GET / HTTP/1.1\r\n";
    http_request_t req;

    (void)state;
    for (int i = 0; i < 3; i++)
        strcat(text, "X-H: v\r\n");
    strcat(text, "\r\n");
    assert_true(http_parse_request(text, strlen(text), MAX_HEAD, 3, &req) > 0);
    assert_int_equal(req.num_headers, 3);
    assert_int_equal(http_parse_request(text, strlen(text), MAX_HEAD, 2, &req),
                     HTTP_PARSE_TOO_LARGE);

    char many[8192] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++)
        strcat(many, "X-H: v\r\n");
    strcat(many, "\r\n");
    /* A limit above the array size is capped at HTTP_MAX_HEADERS. */
    assert_int_equal(http_parse_request(many, strlen(many), MAX_HEAD, 1000, &req),
                     HTTP_PARSE_TOO_LARGE);
}

static void request_keep_alive_rules(void **state)
{
    http_request_t req;

    (void)state;
    assert_true(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &req) > 0);
    assert_int_equal(req.keep_alive, 0);
    assert_true(parse("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", &req) > 0);
    assert_int_equal(req.keep_alive, 0);
    assert_true(parse("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", &req) > 0);
    assert_int_equal(req.keep_alive, 1);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req) > 0);
    assert_int_equal(req.keep_alive, 1);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: te,keep-alive\r\n\r\n", &req) > 0);
    assert_int_equal(req.keep_alive, 1);
    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &req) > 0);
    assert_int_equal(req.keep_alive, 0);
}

static void request_expect_continue(void **state)
{
    http_request_t req;

    (void)state;
    assert_true(parse("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
                      &req) > 0);
    assert_int_equal(req.expect_continue, 1);
    assert_true(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
                      &req) > 0);
    assert_int_equal(req.expect_continue, 0);
    assert_true(parse("POST / HTTP/1.1\r\nExpect: something\r\n\r\n", &req) > 0);
    assert_int_equal(req.expect_continue, 0);
}

static void response_fields(void **state)
{
    const char *text = "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nX-Id: 7\r\n\r\n";
    http_response_t resp;

    (void)state;
    assert_int_equal(http_parse_response(text, strlen(text), MAX_HEAD, &resp),
                     (int)strlen(text));
    assert_int_equal(resp.status, 404);
    assert_int_equal(resp.minor_version, 1);
    assert_int_equal(resp.reason_len, strlen("Not Found"));
    assert_memory_equal(resp.reason, "Not Found", resp.reason_len);
    assert_int_equal(resp.content_length, 12);
    assert_int_equal(resp.chunked, 0);
    assert_int_equal(resp.keep_alive, 1);
    assert_int_equal(resp.num_headers, 2);
}

static void response_empty_reason(void **state)
{
    http_response_t resp;
    const char *bare = "HTTP/1.1 204\r\n\r\n";
    const char *spaced = "HTTP/1.0 200 \r\nConnection: keep-alive\r\n\r\n";

    (void)state;
    assert_int_equal(http_parse_response(bare, strlen(bare), MAX_HEAD, &resp),
                     (int)strlen(bare));
    assert_int_equal(resp.status, 204);
    assert_int_equal(resp.reason_len, 0);
    assert_int_equal(http_parse_response(spaced, strlen(spaced), MAX_HEAD, &resp),
                     (int)strlen(spaced));
    assert_int_equal(resp.reason_len, 0);
    assert_int_equal(resp.keep_alive, 1);
}

static void response_framing(void **state)
{
    http_response_t resp;
    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: close\r\n\r\n";
    const char *both = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                       "Content-Length: 3\r\n\r\n";
    const char *gzip = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";

    (void)state;
    assert_true(http_parse_response(chunked, strlen(chunked), MAX_HEAD, &resp) > 0);
    assert_int_equal(resp.chunked, 1);
    assert_int_equal(resp.keep_alive, 0);
    assert_int_equal(resp.content_length, -1);
    assert_int_equal(http_parse_response(both, strlen(both), MAX_HEAD, &resp), HTTP_PARSE_BAD);
    assert_int_equal(http_parse_response(gzip, strlen(gzip), MAX_HEAD, &resp),
                     HTTP_PARSE_NOT_IMPLEMENTED);
}

static void response_status_line_rejected(void **state)
{
    static const char *bad[] = {
        "HTTP/1.1 099 Low\r\n\r\n", "HTTP/1.1 600 High\r\n\r\n", "HTTP/1.1 20x OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n",  "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 200 O\001K\r\n\r\n", "HTTP/1.1 200 OK\nX: y\n\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
    };
    http_response_t resp;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(http_parse_response(bad[i], strlen(bad[i]), MAX_HEAD, &resp),
                         HTTP_PARSE_BAD);
}

static void response_incomplete_every_split(void **state)
{
    const char *text = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n";
    size_t n = strlen(text);
    http_response_t resp;

    (void)state;
    for (size_t k = 0; k < n; k++)
        assert_int_equal(http_parse_response(text, k, MAX_HEAD, &resp), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(http_parse_response(text, n, MAX_HEAD, &resp), (int)n);
    assert_int_equal(http_parse_response(text, n, 20, &resp), HTTP_PARSE_TOO_LARGE);
}

/* ---- chunked decoding ---- */

static const char chunked_body[] = "5;name=value\r\nhello\r\n"
                                   "6\r\n world\r\n"
                                   "A \r\n, 10 bytes\r\n"
                                   "0\r\n"
                                   "Trailer-One: x\r\n"
                                   "Trailer-Two: y\r\n"
                                   "\r\n";
static const char chunked_payload[] = "hello world, 10 bytes";

/* Feed text in the pieces given by cuts (ascending offsets) and return the
 * raw bytes consumed in total, or -1. */
static long decode_pieces(const char *text, size_t len, const size_t *cuts, size_t ncuts,
                          buf_t *out, http_chunked_t *dec)
{
    size_t start = 0;
    long total = 0;

    memset(dec, 0, sizeof *dec);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        long used = http_chunked_decode(dec, text + start, end - start, out);
        if (used < 0)
            return -1;
        total += used;
        if (dec->done)
            break;
        assert_int_equal((size_t)used, end - start);
        start = end;
    }
    return total;
}

static void chunked_whole(void **state)
{
    const char *text = "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    buf_t out = BUF_INIT;
    http_chunked_t dec = {0};

    (void)state;
    long used = http_chunked_decode(&dec, text, strlen(text), &out);
    assert_int_equal(used, strlen("5\r\nhello\r\n0\r\n\r\n"));
    assert_int_equal(dec.done, 1);
    assert_int_equal(out.len, 5);
    assert_string_equal(out.data, "hello");
    buf_free(&out);
}

static void chunked_split_every_byte(void **state)
{
    size_t len = sizeof chunked_body - 1;

    (void)state;
    for (size_t cut = 0; cut <= len; cut++) {
        buf_t out = BUF_INIT;
        http_chunked_t dec;

        long used = decode_pieces(chunked_body, len, &cut, 1, &out, &dec);
        assert_int_equal(used, (long)len);
        assert_int_equal(dec.done, 1);
        assert_int_equal(out.len, strlen(chunked_payload));
        assert_memory_equal(out.data, chunked_payload, out.len);
        buf_free(&out);
    }
}

static void chunked_byte_at_a_time(void **state)
{
    size_t len = sizeof chunked_body - 1;
    size_t cuts[sizeof chunked_body];
    buf_t out = BUF_INIT;
    http_chunked_t dec;

    (void)state;
    for (size_t i = 0; i < len - 1; i++)
        cuts[i] = i + 1;
    assert_int_equal(decode_pieces(chunked_body, len, cuts, len - 1, &out, &dec), (long)len);
    assert_int_equal(dec.done, 1);
    assert_string_equal(out.data, chunked_payload);
    buf_free(&out);
}

static void chunked_rejects(void **state)
{
    static const char *bad[] = {
        "\r\n",                          /* no size */
        "g\r\n",                         /* not hex */
        "5\nhello\r\n0\r\n\r\n",         /* bare LF after the size */
        "5\r\nhelloX\r\n",               /* data longer than the size */
        "5\r\nhello\n0\r\n\r\n",         /* bare LF after the data */
        "10000000000000000\r\n",         /* 17 hex digits: over 64 bits */
        "5;a\001b\r\nhello\r\n",         /* control byte in an extension */
        "0\r\n bad-trailer\r\n\r\n",     /* folded trailer */
        "0\r\n\r\r",                     /* CR without LF at the end */
        "-5\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_t out = BUF_INIT;
        http_chunked_t dec = {0};
        assert_int_equal(http_chunked_decode(&dec, bad[i], strlen(bad[i]), &out), -1);
        buf_free(&out);
    }
}

static void chunked_largest_size_accepted(void **state)
{
    const char *text = "ffffffffffffffff\r\nab";
    http_chunked_t dec = {0};
    buf_t out = BUF_INIT;

    (void)state;
    assert_int_equal(http_chunked_decode(&dec, text, strlen(text), &out), (long)strlen(text));
    assert_true(dec.remaining == UINT64_MAX - 2);
    assert_int_equal(out.len, 2);
    buf_free(&out);
}

static void chunked_discards_without_output(void **state)
{
    http_chunked_t dec = {0};

    (void)state;
    assert_int_equal(http_chunked_decode(&dec, chunked_body, sizeof chunked_body - 1, NULL),
                     (long)(sizeof chunked_body - 1));
    assert_int_equal(dec.done, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_fields),
        cmocka_unit_test(request_without_query),
        cmocka_unit_test(request_leading_crlf_skipped),
        cmocka_unit_test(request_incomplete_every_split),
        cmocka_unit_test(request_body_bytes_not_counted),
        cmocka_unit_test(request_content_length),
        cmocka_unit_test(request_content_length_rejected),
        cmocka_unit_test(request_chunked),
        cmocka_unit_test(request_transfer_encoding_rejected),
        cmocka_unit_test(request_header_syntax_rejected),
        cmocka_unit_test(request_bare_lf_rejected),
        cmocka_unit_test(request_control_chars_rejected),
        cmocka_unit_test(request_line_rejected),
        cmocka_unit_test(request_head_limit),
        cmocka_unit_test(request_line_limit),
        cmocka_unit_test(request_host_rules),
        cmocka_unit_test(request_header_count_limit),
        cmocka_unit_test(request_keep_alive_rules),
        cmocka_unit_test(request_expect_continue),
        cmocka_unit_test(response_fields),
        cmocka_unit_test(response_empty_reason),
        cmocka_unit_test(response_framing),
        cmocka_unit_test(response_status_line_rejected),
        cmocka_unit_test(response_incomplete_every_split),
        cmocka_unit_test(chunked_whole),
        cmocka_unit_test(chunked_split_every_byte),
        cmocka_unit_test(chunked_byte_at_a_time),
        cmocka_unit_test(chunked_rejects),
        cmocka_unit_test(chunked_largest_size_accepted),
        cmocka_unit_test(chunked_discards_without_output),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
