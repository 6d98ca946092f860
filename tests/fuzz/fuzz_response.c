/* libFuzzer target for the response side of the gateway: response heads,
 * body framing (Content-Length, chunked, until close), the SSE pass-through
 * with usage extraction and removal of the usage-only chunk, and the usage
 * of whole JSON bodies. Every input is read in one piece, byte by byte and
 * in pseudo-random pieces, and the results must agree.
 *
 * An input starting with "HTTP/" is a whole response as an instance sends
 * it. Any other input is used twice: as a chunked body and as the event
 * stream of a response read until the connection closes. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "gateway/gw_request.h"
#include "gateway/gw_sse.h"
#include "http/parser.h"

/* The gateway's bound on an instance's response head. */
#define FUZZ_MAX_RESPONSE_HEAD (64u * 1024)
/* Byte-by-byte reads re-parse the growing head each time: only for heads
 * short enough to keep an execution fast. */
#define FUZZ_BYTEWISE_MAX 2048

typedef enum { FUZZ_READING, FUZZ_DONE, FUZZ_FAILED } fuzz_outcome_t;
typedef enum {
    FUZZ_BODY_NONE,
    FUZZ_BODY_LENGTH,
    FUZZ_BODY_CHUNKED,
    FUZZ_BODY_UNTIL_CLOSE
} fuzz_body_mode_t;

/* One pass over a response, the way the gateway's upstream reader takes it. */
typedef struct {
    fuzz_outcome_t outcome;
    int status;
    fuzz_body_mode_t body_mode;
    uint64_t remaining;
    http_chunked_t chunked;
    buf_t head;
    buf_t body; /* the decoded body */
} fuzz_reader_t;

static void fuzz_reader_body(fuzz_reader_t *r, const char *data, size_t len)
{
    switch (r->body_mode) {
    case FUZZ_BODY_NONE:
        r->outcome = FUZZ_DONE;
        return;
    case FUZZ_BODY_LENGTH: {
        size_t n = len < r->remaining ? len : (size_t)r->remaining;
        FUZZ_CHECK(buf_append(&r->body, data, n) == 0, "out of memory");
        r->remaining -= n;
        if (r->remaining == 0)
            r->outcome = FUZZ_DONE;
        return;
    }
    case FUZZ_BODY_CHUNKED: {
        long used = http_chunked_decode(&r->chunked, data, len, &r->body);
        if (used < 0)
            r->outcome = FUZZ_FAILED;
        else if (r->chunked.done)
            r->outcome = FUZZ_DONE;
        return;
    }
    case FUZZ_BODY_UNTIL_CLOSE:
        FUZZ_CHECK(buf_append(&r->body, data, len) == 0, "out of memory");
        return;
    }
}

static fuzz_body_mode_t fuzz_body_mode(const http_response_t *resp)
{
    if (resp->status == 204 || resp->status == 304)
        return FUZZ_BODY_NONE;
    if (resp->chunked)
        return FUZZ_BODY_CHUNKED;
    if (resp->content_length >= 0)
        return resp->content_length == 0 ? FUZZ_BODY_NONE : FUZZ_BODY_LENGTH;
    return FUZZ_BODY_UNTIL_CLOSE;
}

/* The head the gateway sends on to the client never carries framing or
 * connection headers of the instance's. */
static void fuzz_check_client_head(const http_response_t *resp)
{
    for (int keep_length = 0; keep_length <= 1; keep_length++) {
        gw_response_head_t head;

        FUZZ_CHECK(gw_response_head(resp, keep_length, &head) == 0, "out of memory");
        const char *extra = head.extra.data ? head.extra.data : "";
        FUZZ_CHECK(strcasestr(extra, "\nTransfer-Encoding:") == NULL &&
                       strncasecmp(extra, "Transfer-Encoding:", 18) != 0,
                   "Transfer-Encoding forwarded: %s", extra);
        FUZZ_CHECK(strncasecmp(extra, "Connection:", 11) != 0 &&
                       strcasestr(extra, "\nConnection:") == NULL,
                   "Connection forwarded: %s", extra);
        buf_free(&head.extra);
    }
}

/* Collect the head; once it is complete, take the bytes after it as body. */
static void fuzz_reader_head(fuzz_reader_t *r, const char *data, size_t len, int check_head)
{
    http_response_t resp;

    FUZZ_CHECK(buf_append(&r->head, data, len) == 0, "out of memory");
    for (;;) {
        int n = http_parse_response(r->head.data, r->head.len, FUZZ_MAX_RESPONSE_HEAD, &resp);
        if (n == HTTP_PARSE_INCOMPLETE)
            return;
        if (n < 0 || resp.status == 101) {
            r->outcome = FUZZ_FAILED;
            return;
        }
        FUZZ_CHECK((size_t)n <= r->head.len, "head of %d bytes in %zu", n, r->head.len);
        if (resp.status < 200) {
            buf_consume(&r->head, (size_t)n);
            continue;
        }

        r->status = resp.status;
        r->body_mode = fuzz_body_mode(&resp);
        r->remaining = resp.content_length > 0 ? (uint64_t)resp.content_length : 0;
        if (check_head)
            fuzz_check_client_head(&resp);
        fuzz_reader_body(r, r->head.data + n, r->head.len - (size_t)n);
        return;
    }
}

static void fuzz_read_response(const uint8_t *data, size_t len, int mode, uint64_t seed,
                               fuzz_reader_t *r)
{
    fuzz_splitter_t s;
    size_t pos = 0;

    memset(r, 0, sizeof(*r));
    fuzz_splitter_init(&s, mode, seed);
    while (pos < len && r->outcome == FUZZ_READING) {
        size_t n = fuzz_next_size(&s, len - pos);
        char *piece = fuzz_piece(data + pos, n);

        if (r->status == 0)
            fuzz_reader_head(r, piece, n, mode == 0);
        else
            fuzz_reader_body(r, piece, n);
        free(piece);
        pos += n;
    }
    /* The instance closing the connection ends an until-close body. */
    if (r->outcome == FUZZ_READING && r->status != 0 && r->body_mode == FUZZ_BODY_UNTIL_CLOSE)
        r->outcome = FUZZ_DONE;
}

static void fuzz_reader_free(fuzz_reader_t *r)
{
    buf_free(&r->head);
    buf_free(&r->body);
}

/* Everything the client and the accounting get from one SSE pass. */
typedef struct {
    buf_t out;
    int have_usage;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    size_t content_events;
    size_t dropped_events;
} fuzz_sse_result_t;

static void fuzz_sse_run(const char *body, size_t len, int strip, size_t max_event, int mode,
                         uint64_t seed, fuzz_sse_result_t *res)
{
    gw_sse_t sse;
    fuzz_splitter_t s;
    size_t pos = 0;

    memset(res, 0, sizeof(*res));
    gw_sse_init(&sse, strip, max_event);
    fuzz_splitter_init(&s, mode, seed);
    while (pos < len) {
        size_t n = fuzz_next_size(&s, len - pos);
        char *piece = fuzz_piece((const uint8_t *)body + pos, n);

        FUZZ_CHECK(gw_sse_feed(&sse, piece, n, &res->out) == 0, "feed failed");
        FUZZ_CHECK(sse.event.len <= sse.max_event, "held %zu bytes over the bound %zu",
                   sse.event.len, sse.max_event);
        free(piece);
        pos += n;
    }
    FUZZ_CHECK(gw_sse_finish(&sse, &res->out) == 0, "finish failed");

    res->have_usage = sse.have_usage;
    res->prompt_tokens = sse.prompt_tokens;
    res->completion_tokens = sse.completion_tokens;
    res->content_events = sse.content_events;
    res->dropped_events = sse.dropped_events;
    gw_sse_free(&sse);
}

static void fuzz_sse_same(const fuzz_sse_result_t *a, const fuzz_sse_result_t *b, const char *what)
{
    FUZZ_CHECK(fuzz_bytes_equal(a->out.data, a->out.len, b->out.data, b->out.len),
               "%s: client got %zu bytes vs %zu", what, a->out.len, b->out.len);
    FUZZ_CHECK(a->have_usage == b->have_usage, "%s: usage %d vs %d", what, a->have_usage,
               b->have_usage);
    FUZZ_CHECK(a->prompt_tokens == b->prompt_tokens && a->completion_tokens == b->completion_tokens,
               "%s: tokens %lld/%lld vs %lld/%lld", what, (long long)a->prompt_tokens,
               (long long)a->completion_tokens, (long long)b->prompt_tokens,
               (long long)b->completion_tokens);
    FUZZ_CHECK(a->content_events == b->content_events, "%s: content events %zu vs %zu", what,
               a->content_events, b->content_events);
    FUZZ_CHECK(a->dropped_events == b->dropped_events, "%s: dropped events %zu vs %zu", what,
               a->dropped_events, b->dropped_events);
}

/* Whether a is b with some bytes removed: stripping only ever drops events. */
static int fuzz_is_subsequence(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t j = 0;

    for (size_t i = 0; i < b_len && j < a_len; i++) {
        if (a[j] == b[i])
            j++;
    }
    return j == a_len;
}

/* An append that fails inside the parser (as when memory runs out) must
 * leave the client with every byte exactly once: what the parser produced,
 * then gw_sse_unsent's spans, then the rest of the body unparsed. */
static void fuzz_sse_failure(const char *body, size_t len, int strip, uint64_t seed)
{
    gw_sse_t sse;
    gw_sse_span_t spans[2];
    fuzz_splitter_t s;
    buf_t client = BUF_INIT, out = BUF_INIT;
    size_t pos = 0;
    int failed = 0;

    gw_sse_init(&sse, strip, 0);
    sse.fail_append_at = 1 + (unsigned)(seed % 24);
    fuzz_splitter_init(&s, 2, seed);
    while (pos < len) {
        size_t n = fuzz_next_size(&s, len - pos);
        const char *piece = body + pos;

        pos += n;
        if (failed) {
            FUZZ_CHECK(buf_append(&client, piece, n) == 0, "out of memory");
            continue;
        }
        buf_reset(&out);
        failed = gw_sse_feed(&sse, piece, n, &out) != 0;
        FUZZ_CHECK(buf_append(&client, out.data, out.len) == 0, "out of memory");
        if (!failed)
            continue;
        size_t count = gw_sse_unsent(&sse, piece, n, spans);
        for (size_t i = 0; i < count; i++)
            FUZZ_CHECK(buf_append(&client, spans[i].data, spans[i].len) == 0, "out of memory");
    }
    if (!failed) {
        buf_reset(&out);
        failed = gw_sse_finish(&sse, &out) != 0;
        FUZZ_CHECK(buf_append(&client, out.data, out.len) == 0, "out of memory");
        size_t count = failed ? gw_sse_unsent(&sse, NULL, 0, spans) : 0;
        for (size_t i = 0; i < count; i++)
            FUZZ_CHECK(buf_append(&client, spans[i].data, spans[i].len) == 0, "out of memory");
    }

    if (!strip || sse.dropped_events == 0)
        FUZZ_CHECK(fuzz_bytes_equal(client.data, client.len, body, len),
                   "after a failed append at step %llu the client got %zu bytes of %zu",
                   (unsigned long long)(1 + seed % 24), client.len, len);
    gw_sse_free(&sse);
    buf_free(&client);
    buf_free(&out);
}

/* Run the event stream through both modes of the gateway (keeping and
 * stripping the usage-only chunk) with the default and a small event bound. */
static void fuzz_event_stream(const char *body, size_t len, uint64_t seed)
{
    size_t bounds[2] = {0, 16 + (size_t)(seed % 256)};
    int64_t prompt = 0, completion = 0;

    for (int b = 0; b < 2; b++) {
        fuzz_sse_result_t keep, strip;

        fuzz_sse_run(body, len, 0, bounds[b], 0, seed, &keep);
        fuzz_sse_run(body, len, 1, bounds[b], 0, seed, &strip);
        FUZZ_CHECK(fuzz_bytes_equal(keep.out.data, keep.out.len, body, len),
                   "without stripping the client got %zu bytes of %zu", keep.out.len, len);
        FUZZ_CHECK(keep.dropped_events == 0, "events dropped without stripping");
        FUZZ_CHECK(strip.dropped_events > 0 ||
                       fuzz_bytes_equal(strip.out.data, strip.out.len, body, len),
                   "nothing dropped, yet the client got %zu bytes of %zu", strip.out.len, len);
        FUZZ_CHECK(fuzz_is_subsequence(strip.out.data, strip.out.len, body, len),
                   "stripping added or reordered bytes");
        FUZZ_CHECK(keep.have_usage == strip.have_usage &&
                       keep.content_events == strip.content_events,
                   "stripping changed the accounting");

        for (int mode = 1; mode <= 2; mode++) {
            fuzz_sse_result_t split;
            fuzz_sse_run(body, len, 1, bounds[b], mode, seed, &split);
            fuzz_sse_same(&split, &strip, mode == 1 ? "byte reads" : "random reads");
            buf_free(&split.out);
        }
        buf_free(&keep.out);
        buf_free(&strip.out);
    }

    fuzz_sse_failure(body, len, 0, seed);
    fuzz_sse_failure(body, len, 1, seed);
    (void)gw_usage_from_json(body, len, &prompt, &completion);
}

static void fuzz_whole_response(const uint8_t *data, size_t size, uint64_t seed)
{
    fuzz_reader_t whole;

    fuzz_read_response(data, size, 0, seed, &whole);
    for (int mode = 1; mode <= 2; mode++) {
        fuzz_reader_t split;

        if (mode == 1 && size > FUZZ_BYTEWISE_MAX)
            continue;
        fuzz_read_response(data, size, mode, seed, &split);
        FUZZ_CHECK(split.outcome == whole.outcome && split.status == whole.status,
                   "mode %d: outcome %d status %d, one read %d status %d", mode, split.outcome,
                   split.status, whole.outcome, whole.status);
        if (whole.outcome != FUZZ_FAILED)
            FUZZ_CHECK(
                fuzz_bytes_equal(split.body.data, split.body.len, whole.body.data, whole.body.len),
                "mode %d: body of %zu bytes, one read %zu", mode, split.body.len, whole.body.len);
        fuzz_reader_free(&split);
    }

    if (whole.outcome == FUZZ_DONE)
        fuzz_event_stream(whole.body.data ? whole.body.data : "", whole.body.len, seed);
    fuzz_reader_free(&whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = fuzz_hash(data, size);

    if (size >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        fuzz_whole_response(data, size, seed);
        return 0;
    }

    fuzz_chunked_result_t chunked;
    fuzz_chunked_body((const char *)data, size, seed, &chunked);
    buf_free(&chunked.payload);

    char *body = fuzz_piece(data, size);
    fuzz_event_stream(body, size, seed);
    free(body);
    return 0;
}
