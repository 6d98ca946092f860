/* HTTP responses: whole and streamed bodies, write queueing, backpressure and
 * the end of an exchange. */
#include "http/http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser_internal.h"
#include "http/server_internal.h"
#include "util/log.h"

#define HTTP_LOG "http"

/* Enough for the status line, Content-Length and Connection lines. */
#define HEAD_FIXED_MAX 256

/* Write value in base 10 or 16 (lower case) to out, which has room for
 * 20 digits; returns the number of digits. */
static size_t format_number(char *out, size_t value, unsigned base)
{
    char digits[24];
    size_t n = 0;

    do {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

/* A segment of a write; uv_buf_init would truncate lengths to 32 bits. */
static uv_buf_t seg(const void *base, size_t len)
{
    uv_buf_t b = {.base = (char *)base, .len = len};

    return b;
}

/* Give up on the connection after a failed write. It closes on the next
 * loop iteration, so no close callback runs inside the caller's stack. */
static void conn_fail(http_conn_t *conn)
{
    conn->doomed = 1;
    uv_read_stop((uv_stream_t *)&conn->tcp);
    conn->reading = 0;
    http_conn_defer(conn);
}

static void on_write(uv_write_t *req, int status)
{
    http_write_t *w = (http_write_t *)req;
    http_conn_t *conn = req->data;

    conn->write_queued -= w->len;
    conn->writes_pending--;
    free(w);

    if (conn->state == CONN_CLOSED)
        return;
    if (status < 0) {
        log_debug(HTTP_LOG, "write to %s failed: %s", conn->peer, uv_strerror(status));
        http_conn_close(conn);
        return;
    }
    http_conn_watch_writes(conn, 1);

    http_exchange_t *ex = conn->ex;
    if (conn->state != CONN_EXCHANGE || ex == NULL)
        return;
    if (ex->finished && conn->writes_pending == 0) {
        http_conn_exchange_done(conn);
        return;
    }
    if (ex->want_drain && !ex->finished && conn->write_queued <= conn->server->limits.write_high_water / 2) {
        ex->want_drain = 0;
        if (ex->on_drain != NULL)
            ex->on_drain(ex, ex->drain_user);
    }
}

int http_conn_write(http_conn_t *conn, const uv_buf_t *segs, size_t nsegs)
{
    size_t total = 0;
    size_t skip = 0;

    if (conn->state == CONN_CLOSED || conn->doomed)
        return -1;
    for (size_t i = 0; i < nsegs; i++)
        total += segs[i].len;
    if (total == 0)
        return 0;

    /* With nothing queued, the kernel usually takes the whole response at
     * once: no copy and no write request. Only the rest is queued. */
    if (conn->writes_pending == 0 && total <= INT32_MAX) {
        int n = uv_try_write((uv_stream_t *)&conn->tcp, segs, (unsigned)nsegs);
        if (n >= 0 && (size_t)n == total)
            return 0;
        if (n < 0 && n != UV_EAGAIN) {
            log_debug(HTTP_LOG, "write to %s failed: %s", conn->peer, uv_strerror(n));
            goto fail;
        }
        if (n > 0)
            skip = (size_t)n;
    }

    http_write_t *w = malloc(sizeof *w + total - skip);
    if (w == NULL)
        goto fail;
    w->len = total - skip;
    size_t off = 0;
    for (size_t i = 0; i < nsegs; i++) {
        size_t len = segs[i].len;
        const char *base = segs[i].base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        base += skip;
        len -= skip;
        skip = 0;
        memcpy(w->data + off, base, len);
        off += len;
    }

    w->req.data = conn;
    uv_buf_t buf = seg(w->data, w->len);
    if (uv_write(&w->req, (uv_stream_t *)&conn->tcp, &buf, 1, on_write) != 0) {
        free(w);
        goto fail;
    }
    conn->write_queued += w->len;
    conn->writes_pending++;
    http_conn_watch_writes(conn, 0);
    return 0;

fail:
    conn_fail(conn);
    return -1;
}

/* Find header name in extra_headers ("Name: value\r\n"...). Returns its
 * value with surrounding blanks trimmed, or NULL. */
static const char *extra_find(const char *extra, const char *name, size_t *value_len)
{
    const char *line = extra;

    while (line != NULL && *line != '\0') {
        const char *colon = strchr(line, ':');
        const char *eol = strchr(line, '\n');

        if (colon != NULL && (eol == NULL || colon < eol) &&
            http_token_eq(line, (size_t)(colon - line), name)) {
            const char *v = colon + 1;
            const char *end = eol != NULL ? eol : v + strlen(v);
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                end--;
            *value_len = (size_t)(end - v);
            return v;
        }
        line = eol != NULL ? eol + 1 : NULL;
    }
    return NULL;
}

/* Queue the response head plus up to three body segments, in one write. */
static int write_head(http_exchange_t *ex, int status, const char *content_type,
                      const char *extra, const char *framing, const uv_buf_t *body,
                      size_t nbody)
{
    char fixed[HEAD_FIXED_MAX];
    const char *conn_line = "";
    uv_buf_t segs[10];
    size_t n = 0;

    /* A Connection line from the handler replaces ours. */
    size_t value_len;
    const char *value = extra_find(extra, "connection", &value_len);
    if (value != NULL && http_token_eq(value, value_len, "close"))
        ex->keep_alive = 0;
    if (value != NULL)
        conn_line = "";
    else if (!ex->keep_alive)
        conn_line = "Connection: close\r\n";
    else if (ex->req.minor_version == 0)
        conn_line = "Connection: keep-alive\r\n";

    /* The status line is built by hand: formatting runs once per response. */
    const char *reason = http_status_text(status);
    size_t reason_len = strlen(reason), framing_len = strlen(framing);
    size_t conn_len = strlen(conn_line);
    if (status < 100 || status > 999 ||
        13 + reason_len + 2 + framing_len + conn_len > sizeof fixed) {
        conn_fail(ex->conn);
        return -1;
    }
    memcpy(fixed, "HTTP/1.1 ", 9);
    fixed[9] = (char)('0' + status / 100);
    fixed[10] = (char)('0' + status / 10 % 10);
    fixed[11] = (char)('0' + status % 10);
    fixed[12] = ' ';
    size_t fixed_len = 13;
    memcpy(fixed + fixed_len, reason, reason_len);
    fixed_len += reason_len;
    memcpy(fixed + fixed_len, "\r\n", 2);
    fixed_len += 2;
    memcpy(fixed + fixed_len, framing, framing_len);
    fixed_len += framing_len;
    memcpy(fixed + fixed_len, conn_line, conn_len);
    fixed_len += conn_len;
    segs[n++] = seg(fixed, fixed_len);

    if (content_type != NULL) {
        segs[n++] = seg("Content-Type: ", 14);
        segs[n++] = seg(content_type, strlen(content_type));
        segs[n++] = seg("\r\n", 2);
    }
    if (extra != NULL && *extra != '\0') {
        size_t extra_len = strlen(extra);
        segs[n++] = seg(extra, extra_len);
        if (extra_len < 2 || memcmp(extra + extra_len - 2, "\r\n", 2) != 0)
            segs[n++] = seg("\r\n", 2);
    }
    segs[n++] = seg("\r\n", 2);
    for (size_t i = 0; i < nbody && i < 3; i++)
        segs[n++] = body[i];

    return http_conn_write(ex->conn, segs, n);
}

static int status_allows_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* An exchange that can still take response calls. */
static int exchange_open(const http_exchange_t *ex)
{
    return ex != NULL && !ex->closing && ex->conn->state == CONN_EXCHANGE;
}

void http_respond(http_exchange_t *ex, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len)
{
    char framing[64] = "";

    if (!exchange_open(ex) || ex->started)
        return;
    ex->started = 1;
    ex->finished = 1;
    ex->body_allowed = status_allows_body(status);

    if (ex->body_allowed) {
        memcpy(framing, "Content-Length: ", 16);
        size_t n = 16 + format_number(framing + 16, len, 10);
        memcpy(framing + n, "\r\n", 3);
    }
    if (!ex->body_allowed || ex->is_head)
        len = 0;
    uv_buf_t body_seg = seg(body, len);
    write_head(ex, status, content_type, extra_headers, framing, &body_seg, len > 0);

    /* Written at once: no write callback will end the exchange. */
    if (ex->conn->writes_pending == 0)
        http_conn_defer(ex->conn);
}

void http_respond_error(http_exchange_t *ex, int status, const char *code,
                        const char *message, const char *field)
{
    static const char fallback[] = "{\"error\":{\"code\":\"internal\",\"message\":"
                                   "\"out of memory building the error response\"}}";

    if (!exchange_open(ex))
        return;
    char *body = http_error_body(code, message, field);
    if (body == NULL) {
        http_respond(ex, status, "application/json", NULL, fallback, sizeof fallback - 1);
        return;
    }
    http_respond(ex, status, "application/json", NULL, body, strlen(body));
    free(body);
}

/* The body segments of data for a streamed response: chunk-framed when
 * chunked, into size_line (24 bytes). Returns the number of segments. */
static size_t body_segments(const http_exchange_t *ex, const void *data, size_t len,
                            char *size_line, uv_buf_t segs[3])
{
    size_t n = 0;

    if (len == 0 || ex->is_head || !ex->body_allowed)
        return 0;
    if (ex->chunked) {
        size_t size_len = format_number(size_line, len, 16);
        memcpy(size_line + size_len, "\r\n", 2);
        segs[n++] = seg(size_line, size_len + 2);
    }
    segs[n++] = seg(data, len);
    if (ex->chunked)
        segs[n++] = seg("\r\n", 2);
    return n;
}

/* After queueing body bytes: 1 when the connection's queue passed the
 * high-water mark (the writer should wait for the drain callback), else 0. */
static int check_high_water(http_exchange_t *ex)
{
    if (ex->conn->write_queued > ex->conn->server->limits.write_high_water) {
        ex->want_drain = 1;
        return 1;
    }
    return 0;
}

int http_stream_start_with(http_exchange_t *ex, int status, const char *content_type,
                           const char *extra_headers, const void *data, size_t len)
{
    const char *framing = "";
    char size_line[24];
    uv_buf_t body[3];

    if (!exchange_open(ex) || ex->started)
        return -1;
    ex->started = 1;
    ex->body_allowed = status_allows_body(status);
    size_t cl_len;
    ex->chunked = ex->body_allowed &&
                  extra_find(extra_headers, "content-length", &cl_len) == NULL;
    if (ex->chunked)
        framing = "Transfer-Encoding: chunked\r\n";

    size_t nbody = body_segments(ex, data, len, size_line, body);
    if (write_head(ex, status, content_type, extra_headers, framing, body, nbody) != 0)
        return -1;
    return check_high_water(ex);
}

int http_stream_start(http_exchange_t *ex, int status, const char *content_type,
                      const char *extra_headers)
{
    return http_stream_start_with(ex, status, content_type, extra_headers, NULL, 0) < 0 ? -1 : 0;
}

int http_stream_write(http_exchange_t *ex, const void *data, size_t len)
{
    char size_line[24];
    uv_buf_t segs[3];

    if (!exchange_open(ex) || ex->conn->doomed || !ex->started || ex->finished)
        return -1;
    size_t n = body_segments(ex, data, len, size_line, segs);
    if (n == 0)
        return ex->want_drain;
    if (http_conn_write(ex->conn, segs, n) != 0)
        return -1;
    return check_high_water(ex);
}

void http_stream_end(http_exchange_t *ex)
{
    if (!exchange_open(ex) || ex->finished)
        return;
    if (!ex->started && http_stream_start(ex, 200, NULL, NULL) != 0)
        return;
    ex->finished = 1;

    if (ex->chunked && !ex->is_head) {
        uv_buf_t last = seg("0\r\n\r\n", 5);
        http_conn_write(ex->conn, &last, 1);
    }
    if (ex->conn->writes_pending == 0)
        http_conn_defer(ex->conn);
}

void http_exchange_abort(http_exchange_t *ex)
{
    if (!exchange_open(ex))
        return;
    http_conn_close(ex->conn);
}

const http_request_t *http_exchange_request(const http_exchange_t *ex)
{
    return &ex->req;
}

const char *http_exchange_peer(const http_exchange_t *ex)
{
    return ex->conn->peer;
}

void http_exchange_on_close(http_exchange_t *ex, http_close_fn fn, void *user)
{
    ex->on_close = fn;
    ex->close_user = user;
}

void http_exchange_on_drain(http_exchange_t *ex, http_drain_fn fn, void *user)
{
    ex->on_drain = fn;
    ex->drain_user = user;
}
