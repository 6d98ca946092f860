/* libFuzzer target for the request side: the HTTP request head parser,
 * pipelined requests, chunked request bodies decoded in reads of varying
 * size, and the gateway's rewriting of a parsed request for the instance. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "gateway/gw_request.h"
#include "http/parser.h"

#define FUZZ_MAX_PIPELINED 8
#define FUZZ_UPSTREAM "127.0.0.1:8000"

static const size_t fuzz_max_heads[] = {16384, 512, 64};
static const size_t fuzz_max_header_counts[] = {HTTP_MAX_HEADERS, 4, 1};

static int fuzz_parse_code_known(int rc)
{
    return rc == HTTP_PARSE_INCOMPLETE || rc == HTTP_PARSE_BAD || rc == HTTP_PARSE_TOO_LARGE ||
           rc == HTTP_PARSE_URI_TOO_LONG || rc == HTTP_PARSE_NOT_IMPLEMENTED;
}

static int fuzz_within(const char *p, size_t len, const char *base, size_t base_len)
{
    return p >= base && p + len <= base + base_len;
}

/* Every pointer of a parsed head lies inside the head itself. */
static void fuzz_check_bounds(const http_request_t *req, const char *head, size_t head_len)
{
    FUZZ_CHECK(fuzz_within(req->method, req->method_len, head, head_len), "method out of bounds");
    FUZZ_CHECK(fuzz_within(req->target, req->target_len, head, head_len), "target out of bounds");
    FUZZ_CHECK(req->path == req->target && req->path_len <= req->target_len, "path %zu > %zu",
               req->path_len, req->target_len);
    FUZZ_CHECK(req->query == NULL || fuzz_within(req->query, req->query_len, head, head_len),
               "query out of bounds");
    FUZZ_CHECK(req->num_headers <= HTTP_MAX_HEADERS, "%zu headers", req->num_headers);
    for (size_t i = 0; i < req->num_headers; i++) {
        const http_header_t *h = &req->headers[i];
        FUZZ_CHECK(fuzz_within(h->name, h->name_len, head, head_len), "header %zu name", i);
        FUZZ_CHECK(fuzz_within(h->value, h->value_len, head, head_len), "header %zu value", i);
    }
    FUZZ_CHECK(!(req->chunked && req->content_length >= 0),
               "both chunked and Content-Length %lld accepted", (long long)req->content_length);
}

/* A head that parses whole must read as incomplete when only a prefix of it
 * has arrived: a read boundary never turns a valid request into an error. */
static void fuzz_check_prefix(const char *head, size_t prefix, size_t max_head, size_t max_headers)
{
    char *copy = fuzz_piece((const uint8_t *)head, prefix);
    http_request_t req;
    int rc = http_parse_request(copy, prefix, max_head, max_headers, &req);

    FUZZ_CHECK(rc == HTTP_PARSE_INCOMPLETE, "prefix of %zu bytes of a valid head gave %d", prefix,
               rc);
    free(copy);
}

static void fuzz_check_prefixes(const char *head, size_t head_len, size_t max_head,
                                size_t max_headers, uint64_t seed)
{
    if (head_len <= 256) {
        for (size_t k = 0; k < head_len; k++)
            fuzz_check_prefix(head, k, max_head, max_headers);
        return;
    }

    fuzz_splitter_t s;
    fuzz_splitter_init(&s, 2, seed);
    fuzz_check_prefix(head, head_len - 1, max_head, max_headers);
    fuzz_check_prefix(head, head_len - 2, max_head, max_headers);
    fuzz_check_prefix(head, head_len / 2, max_head, max_headers);
    for (int i = 0; i < 8; i++)
        fuzz_check_prefix(head, (size_t)(fuzz_next_random(&s) % head_len), max_head, max_headers);
}

/* The request the gateway sends to the instance must itself be a valid
 * request with one Host, no token and plain Content-Length framing. The
 * gateway adds up to three headers, so a request near the header limit is
 * not checked: the parser could not hold its copy. */
static void fuzz_check_upstream(const http_request_t *req, const buf_t *out, size_t body_len)
{
    http_request_t up;

    if (req->num_headers + 3 > HTTP_MAX_HEADERS)
        return;

    int n = http_parse_request(out->data, out->len, out->len + 1, HTTP_MAX_HEADERS, &up);

    FUZZ_CHECK(n > 0, "upstream request does not parse (%d): %.*s", n, (int)out->len, out->data);
    FUZZ_CHECK(http_request_host_error(&up) == NULL, "upstream request Host: %s",
               http_request_host_error(&up));
    FUZZ_CHECK(http_header_find(up.headers, up.num_headers, "Authorization", NULL) == NULL,
               "upstream request kept Authorization");
    FUZZ_CHECK(!up.chunked, "upstream request is chunked");
    FUZZ_CHECK(up.content_length < 0 || (size_t)up.content_length == body_len,
               "upstream Content-Length %lld for a body of %zu", (long long)up.content_length,
               body_len);
    FUZZ_CHECK((size_t)n + body_len == out->len, "upstream head %d + body %zu != %zu", n, body_len,
               out->len);
}

static void fuzz_check_completion(const http_request_t *req, const char *path, size_t path_len,
                                  const char *body, size_t body_len)
{
    gw_completion_t completion;

    if (!gw_is_completion(req->method, req->method_len, path, path_len))
        return;
    if (gw_completion_prepare(body, body_len, &completion) != 0 || completion.body == NULL)
        return;

    json_t *root = json_loadb(completion.body, completion.body_len, 0, NULL);
    json_t *options = json_object_get(root, "stream_options");
    FUZZ_CHECK(json_is_true(json_object_get(options, "include_usage")),
               "rewritten completion body lacks include_usage: %s", completion.body);
    FUZZ_CHECK(completion.strip_usage && completion.stream, "rewrite without strip_usage");
    json_decref(root);
    free(completion.body);
}

/* Run a parsed request through what the gateway does with one. */
static void fuzz_use_request(const http_request_t *req, const char *body, size_t body_len,
                             int identity_only)
{
    gw_target_t target;
    const char *token;
    size_t token_len;
    buf_t out = BUF_INIT;

    (void)http_request_host_error(req);
    if (http_bearer_token(req->headers, req->num_headers, &token, &token_len))
        FUZZ_CHECK(token_len > 0 && memchr(token, ' ', token_len) == NULL, "bad bearer token");
    for (size_t i = 0; i < req->num_headers; i++)
        (void)gw_is_hop_header(req->headers[i].name, req->headers[i].name_len, req->headers,
                               req->num_headers);

    if (gw_split_target(req->target, req->target_len, &target) != GW_TARGET_SERVE)
        return;
    FUZZ_CHECK(target.name[0] != '\0' && strlen(target.name) <= GW_MAX_PATH_NAME, "bad path name");

    FUZZ_CHECK(gw_build_upstream_request(req, target.forward, target.forward_len, FUZZ_UPSTREAM,
                                         body, body_len, identity_only, &out) == 0,
               "out of memory");
    fuzz_check_upstream(req, &out, body_len);
    buf_free(&out);

    fuzz_check_completion(req, target.forward_path, target.forward_path_len, body, body_len);
}

/* Parse one request at data[0..len). Returns the bytes it took (head and
 * body), or 0 when the rest of the input holds no complete request. */
static size_t fuzz_one_request(const char *data, size_t len, uint64_t seed)
{
    size_t max_head = fuzz_max_heads[seed % 3];
    size_t max_headers = fuzz_max_header_counts[(seed >> 8) % 3];
    http_request_t req;
    int n = http_parse_request(data, len, max_head, max_headers, &req);
    size_t taken = 0;

    if (n <= 0) {
        FUZZ_CHECK(fuzz_parse_code_known(n), "unknown parse result %d", n);
        return 0;
    }
    FUZZ_CHECK((size_t)n <= len && (size_t)n <= max_head, "head of %d bytes (input %zu, max %zu)",
               n, len, max_head);
    FUZZ_CHECK(req.num_headers <= max_headers, "%zu headers over the limit %zu", req.num_headers,
               max_headers);
    fuzz_check_bounds(&req, data, (size_t)n);
    fuzz_check_prefixes(data, (size_t)n, max_head, max_headers, seed);

    const char *rest = data + n;
    size_t rest_len = len - (size_t)n;
    int identity_only = (int)((seed >> 16) & 1);

    if (req.chunked) {
        fuzz_chunked_result_t body;
        fuzz_chunked_body(rest, rest_len, seed, &body);
        if (body.used >= 0 && body.done) {
            fuzz_use_request(&req, body.payload.data ? body.payload.data : "", body.payload.len,
                             identity_only);
            taken = (size_t)n + (size_t)body.used;
        }
        buf_free(&body.payload);
        return taken;
    }

    if (req.content_length > 0 && (uint64_t)req.content_length > rest_len)
        return 0;
    size_t body_len = req.content_length > 0 ? (size_t)req.content_length : 0;
    fuzz_use_request(&req, rest, body_len, identity_only);
    return (size_t)n + body_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = fuzz_hash(data, size);
    size_t pos = 0;

    /* Each request is parsed from a fresh exact-size copy, so a read past
     * the received bytes is an ASan report rather than a silent overread. */
    for (int i = 0; i < FUZZ_MAX_PIPELINED && pos < size; i++) {
        char *copy = fuzz_piece(data + pos, size - pos);
        size_t taken = fuzz_one_request(copy, size - pos, seed + (uint64_t)i);

        free(copy);
        if (taken == 0)
            break;
        pos += taken;
    }
    return 0;
}
