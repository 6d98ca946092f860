/* HTTP/1.1 connections: reading and framing requests, timeouts and
 * teardown. Accepting is in listen.c, responses are written by respond.c. */
#include "http/http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_internal.h"
#include "util/log.h"

#define HTTP_LOG "http"

/* Initial size of a connection's read buffer, and the minimum free space
 * each read is offered while a request arrives. Most requests to the
 * gateway fit, and larger ones grow the buffer by doubling. */
#define RBUF_INITIAL 2048
#define READ_MIN_FREE 1024

/* A read buffer grown past this for a large body is shrunk once the
 * exchange ends, so idle keep-alive connections stay small. */
#define RBUF_KEEP_MAX (64 * 1024)

/* Room kept for bytes that arrive while an exchange is open, so that a
 * disconnect is still noticed. Reading stops once it is full. Small enough
 * that a typical request and this room fit the initial read buffer. */
#define PENDING_ROOM 512

/* Spare read buffers of RBUF_INITIAL bytes kept by a server: an idle
 * keep-alive connection gives its buffer back, so it keeps none, and the
 * next request takes one without allocating. */
#define RBUF_POOL_MAX 1024

/* How long a closing connection keeps discarding input after its response,
 * so that the client reads the response instead of a reset. */
#define LINGER_MS 2000

/* While the write-stall watch is on, how often the timer looks for partial
 * progress that completes no write request. */
#define STALL_CHECK_MS 1000


static void conn_process(http_conn_t *conn);
static void conn_timer(http_conn_t *conn, uint64_t ms);
static void conn_check_stall(http_conn_t *conn);

/* ---- read buffers ---- */

/* Give an empty read buffer back to the server's pool (or free it). */
static void rbuf_release(http_conn_t *conn)
{
    http_server_t *server = conn->server;

    if (conn->rbuf == NULL)
        return;
    if (conn->rcap == RBUF_INITIAL && server->num_free_rbufs < RBUF_POOL_MAX &&
        !server->stopping) {
        /* The spare buffer's first bytes link it into the pool. */
        memcpy(conn->rbuf, &server->free_rbufs, sizeof(char *));
        server->free_rbufs = conn->rbuf;
        server->num_free_rbufs++;
    } else {
        free(conn->rbuf);
    }
    conn->rbuf = NULL;
    conn->rcap = 0;
    conn->rlen = 0;
}

/* Take a pooled buffer for a connection that has none. Returns 0 when one
 * was taken. */
static int rbuf_from_pool(http_conn_t *conn)
{
    http_server_t *server = conn->server;

    if (conn->rbuf != NULL || server->free_rbufs == NULL)
        return -1;
    conn->rbuf = server->free_rbufs;
    memcpy(&server->free_rbufs, conn->rbuf, sizeof(char *));
    server->num_free_rbufs--;
    conn->rcap = RBUF_INITIAL;
    conn->rbuf_moved = 1;
    return 0;
}

/* ---- connection teardown ---- */

static void on_conn_handle_closed(uv_handle_t *handle)
{
    http_conn_t *conn = handle->data;

    if (--conn->handles_open > 0)
        return;

    http_server_t *server = conn->server;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        server->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    server->num_conns--;

    rbuf_release(conn);
    buf_free(&conn->body);
    free(conn);
    http_server_maybe_free(server);
}

void http_conn_close(http_conn_t *conn)
{
    if (conn->state == CONN_CLOSED)
        return;
    conn->state = CONN_CLOSED;

    /* Detach the exchange before its callback runs, so that a callback
     * which responds, stops the server or closes again finds it gone. */
    http_exchange_t *ex = conn->ex;
    conn->ex = NULL;
    if (ex != NULL) {
        ex->closing = 1;
        if (ex->on_close != NULL)
            ex->on_close(ex, 1, ex->close_user);
        http_exchange_put(conn->server, ex);
    }

    uv_close((uv_handle_t *)&conn->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    http_conn_t *conn = req->data;

    if (status < 0 && conn->state != CONN_CLOSED)
        http_conn_close(conn);
}

static void conn_read_start(http_conn_t *conn);

/* Send FIN after the queued writes and discard input until the client
 * closes too (or LINGER_MS passes): closing with unread input would make
 * the kernel send a reset that can destroy the response in flight. */
void http_conn_linger(http_conn_t *conn)
{
    conn->state = CONN_LINGER;
    conn->rlen = 0;
    conn_timer(conn, LINGER_MS);

    conn->shutdown.data = conn;
    if (uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->tcp, on_shutdown) != 0) {
        http_conn_close(conn);
        return;
    }
    conn_read_start(conn);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *timer)
{
    http_conn_t *conn = timer->data;

    if (conn->doomed) {
        http_conn_close(conn);
        return;
    }
    switch (conn->state) {
    case CONN_EXCHANGE:
        /* A zero-delay wake-up: the response finished with nothing left to
         * write, so the exchange ends here rather than in a write callback. */
        if (conn->ex != NULL && conn->ex->finished && conn->writes_pending == 0) {
            http_conn_exchange_done(conn);
            return;
        }
        conn_check_stall(conn);
        return;
    case CONN_HEAD:
    case CONN_BODY:
        if (conn->rlen > 0 || conn->state == CONN_BODY)
            log_debug(HTTP_LOG, "closing connection from %s: request timed out", conn->peer);
        http_conn_close(conn);
        return;
    case CONN_LINGER:
    case CONN_CLOSED:
        http_conn_close(conn);
        return;
    }
}

static void conn_timer(http_conn_t *conn, uint64_t ms)
{
    if (conn->doomed)
        ms = 0;
    conn->head_timer = 0;
    uv_timer_start(&conn->timer, on_timer, ms, 0);
}

/* The whole head must arrive within header_timeout_ms of its first byte (of
 * the accept, for a new connection), however slowly it trickles in. */
static void conn_head_timer(http_conn_t *conn)
{
    conn_timer(conn, conn->server->limits.header_timeout_ms);
    conn->head_timer = 1;
}

void http_conn_defer(http_conn_t *conn)
{
    if (conn->state != CONN_CLOSED)
        conn_timer(conn, 0);
}

/* ---- write stalls ---- */

static void conn_note_progress(http_conn_t *conn)
{
    conn->stall_since = uv_now(conn->server->loop);
    conn->stall_queue = uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp);
}

/* Whether the response waits on the client: its queue is above the
 * high-water mark, or a writer paused by http_stream_write waits for the
 * drain callback, which comes only once the queue falls to half the mark. */
static int conn_writes_blocked(const http_conn_t *conn)
{
    if (conn->state != CONN_EXCHANGE || conn->write_queued == 0)
        return 0;
    if (conn->write_queued > conn->server->limits.write_high_water)
        return 1;
    return conn->ex != NULL && conn->ex->want_drain;
}

void http_conn_watch_writes(http_conn_t *conn, int completed)
{
    const http_limits_t *lim = &conn->server->limits;

    if (!conn_writes_blocked(conn)) {
        conn->stall_watch = 0;
        return;
    }
    if (conn->stall_watch) {
        if (completed)
            conn_note_progress(conn);
        return;
    }

    conn->stall_watch = 1;
    conn_note_progress(conn);
    /* An armed timer (a deferred wake-up) checks the stall when it fires. */
    if (!uv_is_active((uv_handle_t *)&conn->timer))
        conn_timer(conn, STALL_CHECK_MS < lim->write_stall_timeout_ms
                             ? STALL_CHECK_MS : lim->write_stall_timeout_ms);
}

/* Timer wake-up during an exchange: close the connection when its blocked
 * writes made no progress for write_stall_timeout_ms, else look again. */
static void conn_check_stall(http_conn_t *conn)
{
    uint64_t timeout = conn->server->limits.write_stall_timeout_ms;

    if (!conn->stall_watch)
        return;
    if (!conn_writes_blocked(conn)) {
        conn->stall_watch = 0;
        return;
    }

    /* libuv's count drops when the kernel takes part of a write request. */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp) < conn->stall_queue)
        conn_note_progress(conn);

    uint64_t stalled = uv_now(conn->server->loop) - conn->stall_since;
    if (stalled >= timeout) {
        log_debug(HTTP_LOG, "closing connection from %s: %zu response bytes queued and none "
                  "written for %llu ms (write_stall_timeout_ms)", conn->peer, conn->write_queued,
                  (unsigned long long)stalled);
        http_conn_close(conn);
        return;
    }
    uint64_t left = timeout - stalled;
    conn_timer(conn, left < STALL_CHECK_MS ? left : STALL_CHECK_MS);
}

/* ---- reading ---- */

/* Resize rbuf to cap bytes (at least rlen + 2). Pointers into it become
 * stale. */
static int rbuf_resize(http_conn_t *conn, size_t cap)
{
    char *p = realloc(conn->rbuf, cap);
    if (p == NULL)
        return -1;
    conn->rbuf = p;
    conn->rcap = cap;
    conn->rbuf_moved = 1;
    return 0;
}

/* Grow rbuf to at least need bytes, doubling for amortized growth but never
 * past max_cap (when max_cap >= need): a declared body size is trusted only
 * as far as its bytes actually arrive. */
static int rbuf_reserve(http_conn_t *conn, size_t need, size_t max_cap)
{
    if (need <= conn->rcap)
        return 0;

    size_t cap = conn->rcap ? conn->rcap * 2 : RBUF_INITIAL;
    if (cap > max_cap)
        cap = max_cap;
    if (cap < need)
        cap = need;
    if (cap == RBUF_INITIAL && rbuf_from_pool(conn) == 0)
        return 0;
    return rbuf_resize(conn, cap);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    http_conn_t *conn = handle->data;
    size_t want = conn->rlen + READ_MIN_FREE + 2;
    size_t max_cap = SIZE_MAX;

    (void)suggested;
    switch (conn->state) {
    case CONN_HEAD:
        break;
    case CONN_BODY:
        if (!conn->chunked)
            max_cap = conn->head_len + (size_t)conn->content_length + READ_MIN_FREE + 2;
        break;
    case CONN_EXCHANGE:
        /* Never grow here: the request points into rbuf. */
        want = conn->rcap;
        break;
    case CONN_LINGER:
    case CONN_CLOSED:
        conn->rlen = 0;
        want = RBUF_INITIAL;
        break;
    }

    /* One byte stays free for the NUL that ends a body. */
    if (rbuf_reserve(conn, want, max_cap) != 0 || conn->rcap < conn->rlen + 2) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(conn->rbuf + conn->rlen, (unsigned)(conn->rcap - conn->rlen - 1));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    http_conn_t *conn = stream->data;

    (void)buf;
    if (nread == 0 || conn->state == CONN_CLOSED)
        return;
    if (nread == UV_ENOBUFS && conn->state == CONN_EXCHANGE) {
        uv_read_stop(stream);
        conn->reading = 0;
        return;
    }
    if (nread < 0) {
        if (conn->ex != NULL)
            log_debug(HTTP_LOG, "client %s disconnected during a request: %s", conn->peer,
                      uv_strerror((int)nread));
        http_conn_close(conn);
        return;
    }
    if (conn->state == CONN_LINGER)
        return;

    conn->rlen += (size_t)nread;
    if (conn->state == CONN_HEAD && !conn->head_timer)
        conn_head_timer(conn);
    else if (conn->state == CONN_BODY)
        /* NOTE: only pauses are bounded here, so a body that trickles in
         * just under idle_timeout_ms per read keeps its connection open. */
        conn_timer(conn, conn->server->limits.idle_timeout_ms);
    if (conn->state != CONN_EXCHANGE)
        conn_process(conn);
}

static void conn_read_start(http_conn_t *conn)
{
    if (conn->reading || conn->state == CONN_CLOSED)
        return;
    if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) == 0)
        conn->reading = 1;
}

/* ---- request framing ---- */

static void send_parse_error(http_conn_t *conn, int rc)
{
    const http_limits_t *lim = &conn->server->limits;
    char msg[160];

    log_debug(HTTP_LOG, "rejected a request from %s: parse error %d", conn->peer, rc);
    switch (rc) {
    case HTTP_PARSE_URI_TOO_LONG:
        snprintf(msg, sizeof msg,
                 "request line exceeds %zu bytes; send a shorter target (path and query)",
                 lim->max_header_bytes);
        http_conn_send_error(conn, 414, "uri_too_long", msg);
        return;
    case HTTP_PARSE_TOO_LARGE:
        snprintf(msg, sizeof msg,
                 "request head exceeds %zu bytes or %zu header fields; send a smaller head",
                 lim->max_header_bytes, lim->max_headers);
        http_conn_send_error(conn, 431, "header_too_large", msg);
        return;
    case HTTP_PARSE_NOT_IMPLEMENTED:
        /* 400 rather than 501: a request with an unknown transfer coding is
         * rejected as malformed, the same as other framing ambiguities. */
        http_conn_send_error(conn, 400, "unsupported_transfer_encoding",
                             "Transfer-Encoding other than a single \"chunked\" is not "
                             "supported; send Content-Length or chunked");
        return;
    default:
        http_conn_send_error(conn, 400, "bad_request",
                             "malformed HTTP request head (request line, header syntax or "
                             "message framing)");
        return;
    }
}

static void send_body_too_large(http_conn_t *conn)
{
    char msg[128];

    snprintf(msg, sizeof msg, "request body exceeds %zu bytes; send a smaller body",
             conn->server->limits.max_body_bytes);
    http_conn_send_error(conn, 413, "payload_too_large", msg);
}

/* Hand the complete request at rbuf[0..msg_end) to the handler. parsed is
 * the head as parsed from this rbuf, or NULL to parse it again. */
static void conn_dispatch(http_conn_t *conn, const http_request_t *parsed)
{
    http_server_t *server = conn->server;

    uv_timer_stop(&conn->timer);
    if (rbuf_reserve(conn, conn->rlen + 1 + PENDING_ROOM, SIZE_MAX) != 0) {
        http_conn_close(conn);
        return;
    }

    /* Pipelined bytes move one byte right to make room for the body's NUL. */
    memmove(conn->rbuf + conn->msg_end + 1, conn->rbuf + conn->msg_end,
            conn->rlen - conn->msg_end);
    conn->rlen++;
    conn->rbuf[conn->msg_end] = '\0';

    http_exchange_t *ex = http_exchange_get(server);
    if (ex == NULL) {
        http_conn_send_error(conn, 500, "internal", "out of memory");
        return;
    }
    if (parsed != NULL && !conn->rbuf_moved)
        ex->req = *parsed;
    else
        http_parse_request(conn->rbuf, conn->head_len, server->limits.max_header_bytes,
                           server->limits.max_headers, &ex->req);

    if (conn->chunked) {
        ex->req.body = conn->body.data != NULL ? conn->body.data : conn->rbuf + conn->msg_end;
        ex->req.body_len = conn->body.len;
    } else {
        ex->req.body = conn->rbuf + conn->head_len;
        ex->req.body_len = conn->msg_end - conn->head_len;
    }
    ex->conn = conn;
    ex->is_head = ex->req.method_len == 4 && memcmp(ex->req.method, "HEAD", 4) == 0;
    ex->keep_alive = ex->req.keep_alive && !server->stopping;
    conn->ex = ex;
    conn->state = CONN_EXCHANGE;

    server->handler(ex, server->user);
}

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* The head at rbuf[0..head_len) is complete: check the body's size and
 * either dispatch at once or start reading the body. */
static void conn_head_done(http_conn_t *conn, const http_request_t *req, size_t head_len)
{
    const http_limits_t *lim = &conn->server->limits;

    conn->head_len = head_len;
    conn->content_length = req->content_length;
    conn->chunked = req->chunked;
    uv_timer_stop(&conn->timer);

    if (req->content_length > 0 && (uint64_t)req->content_length > lim->max_body_bytes) {
        send_body_too_large(conn);
        return;
    }
    if (req->content_length <= 0 && !req->chunked) {
        conn->msg_end = head_len;
        conn_dispatch(conn, req);
        return;
    }

    memset(&conn->chunk_dec, 0, sizeof conn->chunk_dec);
    buf_reset(&conn->body);
    if (req->expect_continue && conn->rlen == head_len) {
        uv_buf_t seg = uv_buf_init((char *)continue_line, sizeof continue_line - 1);
        http_conn_write(conn, &seg, 1);
    }
    conn->state = CONN_BODY;
    conn_timer(conn, lim->idle_timeout_ms);
}

static void conn_read_head(http_conn_t *conn)
{
    const http_limits_t *lim = &conn->server->limits;
    http_request_t req;

    /* Only a new line end can complete the head or reveal an error. */
    if (memchr(conn->rbuf + conn->scan, '\n', conn->rlen - conn->scan) == NULL) {
        conn->scan = conn->rlen;
        if (conn->rlen >= lim->max_header_bytes) {
            /* Over the limit without an end: the parser returns whether the
             * request line itself (414) or the headers (431) are too long. */
            int rc = http_parse_request(conn->rbuf, conn->rlen, lim->max_header_bytes,
                                        lim->max_headers, &req);
            send_parse_error(conn, rc < 0 ? rc : HTTP_PARSE_TOO_LARGE);
        }
        return;
    }
    conn->scan = conn->rlen;
    conn->rbuf_moved = 0;

    int rc = http_parse_request(conn->rbuf, conn->rlen, lim->max_header_bytes,
                                lim->max_headers, &req);
    if (rc == HTTP_PARSE_INCOMPLETE)
        return;
    if (rc < 0) {
        send_parse_error(conn, rc);
        return;
    }

    const char *host_error = http_request_host_error(&req);
    if (host_error != NULL) {
        log_debug(HTTP_LOG, "rejected a request from %s: %s", conn->peer, host_error);
        http_conn_send_error(conn, 400, "bad_request", host_error);
        return;
    }
    conn_head_done(conn, &req, (size_t)rc);
}

static void conn_read_chunked(http_conn_t *conn)
{
    size_t raw = conn->rlen - conn->head_len;
    long used = http_chunked_decode(&conn->chunk_dec, conn->rbuf + conn->head_len, raw,
                                    &conn->body);

    if (used < 0) {
        http_conn_send_error(conn, 400, "bad_request", "malformed chunked request body");
        return;
    }
    if (conn->body.len > conn->server->limits.max_body_bytes) {
        send_body_too_large(conn);
        return;
    }

    /* Drop the decoded framing so rbuf holds only the head and what follows. */
    memmove(conn->rbuf + conn->head_len, conn->rbuf + conn->head_len + used,
            raw - (size_t)used);
    conn->rlen -= (size_t)used;
    if (conn->chunk_dec.done) {
        conn->msg_end = conn->head_len;
        conn_dispatch(conn, NULL);
    }
}

static void conn_process(http_conn_t *conn)
{
    switch (conn->state) {
    case CONN_HEAD:
        if (conn->rlen == 0)
            return;
        conn_read_head(conn);
        /* Body bytes may have arrived with the head. */
        if (conn->state == CONN_BODY)
            conn_process(conn);
        return;
    case CONN_BODY:
        if (conn->chunked) {
            conn_read_chunked(conn);
        } else if (conn->rlen >= conn->head_len + (size_t)conn->content_length) {
            conn->msg_end = conn->head_len + (size_t)conn->content_length;
            conn_dispatch(conn, NULL);
        }
        return;
    default:
        return;
    }
}

void http_conn_exchange_done(http_conn_t *conn)
{
    http_exchange_t *ex = conn->ex;

    conn->ex = NULL;
    ex->closing = 1;
    if (ex->on_close != NULL)
        ex->on_close(ex, 0, ex->close_user);
    int keep_alive = ex->keep_alive && !conn->server->stopping;
    http_exchange_put(conn->server, ex);

    /* The close callback may have stopped the server. */
    if (conn->state == CONN_CLOSED)
        return;
    if (!keep_alive) {
        http_conn_linger(conn);
        return;
    }

    size_t pending = conn->rlen - conn->msg_end - 1;
    memmove(conn->rbuf, conn->rbuf + conn->msg_end + 1, pending);
    conn->rlen = pending;
    if (conn->rcap > RBUF_KEEP_MAX && pending + READ_MIN_FREE + 2 <= RBUF_KEEP_MAX)
        rbuf_resize(conn, RBUF_KEEP_MAX);
    if (conn->body.cap > RBUF_KEEP_MAX)
        buf_free(&conn->body);
    conn->scan = 0;
    conn->state = CONN_HEAD;
    conn_read_start(conn);

    if (pending == 0) {
        rbuf_release(conn);
        conn_timer(conn, conn->server->limits.idle_timeout_ms);
        return;
    }
    conn_head_timer(conn);
    conn_process(conn);
}

void http_conn_start(http_conn_t *conn)
{
    conn_head_timer(conn);
    conn_read_start(conn);
}
