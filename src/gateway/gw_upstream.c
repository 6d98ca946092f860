/* Requests to instances over pooled HTTP/1.1 connections. A request takes
 * an idle connection or connects, writes the request and parses the
 * response head incrementally, then the body by Content-Length, chunked
 * coding or connection close. Its connection then goes back to the pool or
 * closes. */
#include "gateway/gw_upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_upstream_internal.h"

/* A request struct whose buffers grew past this frees them on release, so
 * one large request does not stay resident in the free list. */
#define GW_REQUEST_KEEP_MAX (64u * 1024)

static void gw_request_send(gw_upstream_t *r);
static int gw_conn_connect(gw_upstream_t *r);
static void gw_conn_on_timer(uv_timer_t *timer);
static void gw_conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void gw_conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static int gw_conn_read(gw_upconn_t *conn, int on);

/* ---- requests: allocation and the callback guard ---- */

/* Fill an empty buffer from the spares, if any. */
static void gw_spare_take(gw_pools_t *pools, buf_t *b)
{
    if (b->data != NULL || pools->num_spare == 0)
        return;
    *b = pools->spare[--pools->num_spare];
    buf_reset(b);
}

/* Give a buffer's memory to the spares (or free it). b is left empty. */
static void gw_spare_give(gw_pools_t *pools, buf_t *b)
{
    if (b->data == NULL)
        return;
    if (pools->num_spare < GW_SPARE_BUFS && b->cap <= GW_SPARE_BUF_MAX) {
        pools->spare[pools->num_spare++] = *b;
        *b = (buf_t)BUF_INIT;
        return;
    }
    buf_free(b);
}

static gw_upstream_t *gw_request_alloc(gw_pools_t *pools)
{
    gw_upstream_t *r = pools->free_requests;

    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return NULL;
        r->pools = pools;
        gw_spare_take(pools, &r->request);
        gw_spare_take(pools, &r->head);
        return r;
    }
    pools->free_requests = r->next_free;
    pools->num_free_requests--;

    /* Keep the buffers' memory and clear everything else. */
    buf_t request = r->request, head = r->head;
    memset(r, 0, sizeof(*r));
    r->pools = pools;
    r->request = request;
    r->head = head;
    buf_reset(&r->request);
    buf_reset(&r->head);
    gw_spare_take(pools, &r->request);
    gw_spare_take(pools, &r->head);
    return r;
}

static void gw_request_release(gw_upstream_t *r)
{
    gw_pools_t *pools = r->pools;

    if (r->pool != NULL)
        gw_pool_unref(r->pool);
    r->pool = NULL;
    if (pools->num_free_requests >= GW_REQUESTS_FREE_MAX) {
        buf_free(&r->request);
        buf_free(&r->head);
        free(r);
        return;
    }
    if (r->request.cap > GW_REQUEST_KEEP_MAX)
        buf_free(&r->request);
    if (r->head.cap > GW_REQUEST_KEEP_MAX)
        buf_free(&r->head);
    r->next_free = pools->free_requests;
    pools->free_requests = r;
    pools->num_free_requests++;
}

static void gw_request_enter(gw_upstream_t *r)
{
    r->depth++;
}

/* Leave a callback scope. Returns 1 when the request ended, and then the
 * caller must not touch it again. The outermost scope releases it. */
static int gw_request_leave(gw_upstream_t *r)
{
    int ended = r->ended;

    if (--r->depth == 0 && ended)
        gw_request_release(r);
    return ended;
}

/* Detach the connection from an ending request: back to the pool when the
 * exchange on it completed cleanly, else closed. */
static void gw_request_detach(gw_upstream_t *r, int reusable)
{
    gw_upconn_t *conn = r->conn;

    r->conn = NULL;
    if (conn == NULL)
        return;
    conn->req = NULL;
    if (!reusable || conn->writing || !conn->connected || conn->closing) {
        gw_upconn_close(conn);
        return;
    }

    /* An idle connection keeps reading, so a close by the instance takes
     * it out of the pool at once. */
    gw_pool_put(conn);
    if (!conn->idle)
        return;
    if (gw_conn_read(conn, 1) != 0) {
        gw_upconn_close(conn);
        return;
    }
    uv_timer_start(&conn->timer, gw_conn_on_timer, r->pools->limits.idle_timeout_ms, 0);
}

/* Report the end once. The caller keeps a callback scope open. */
static void gw_request_finish(gw_upstream_t *r, gw_upstream_result_t result, const char *detail)
{
    if (r->ended)
        return;
    int reusable = result == GW_UPSTREAM_DONE && r->keep_alive && !r->extra_bytes &&
                   r->body_mode != GW_BODY_UNTIL_CLOSE;
    r->ended = 1;
    gw_request_detach(r, reusable);
    r->cb.on_end(r->user, result, detail);
}

/* A failure before any response byte on a reused connection means the
 * instance closed it as it was taken from the pool, so the request is resent
 * once on a new connection. Returns 1 when it did.
 * NOTE: an instance that read the request and crashed before responding
 * looks the same, so it may receive the request twice (any method). */
static int gw_request_retry(gw_upstream_t *r)
{
    if (!r->reused || r->retried || r->got_bytes || r->ended)
        return 0;
    r->retried = 1;
    r->reused = 0;
    r->pools->stats.retries++;
    gw_request_detach(r, 0);
    if (gw_conn_connect(r) != 0)
        gw_request_finish(r, GW_UPSTREAM_CONNECT_FAILED, "out of memory reconnecting");
    return 1;
}

static void gw_request_fail(gw_upstream_t *r, gw_upstream_result_t result, const char *detail)
{
    if (gw_request_retry(r))
        return;
    gw_request_finish(r, result, detail);
}

/* ---- connections ---- */

/* Start or stop reading. libuv rejects a second start, so the state is
 * tracked here. Returns 0 or a libuv error. */
static int gw_conn_read(gw_upconn_t *conn, int on)
{
    if (conn->reading == on)
        return 0;
    if (!on) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = 0;
        return 0;
    }
    int rc = uv_read_start((uv_stream_t *)&conn->tcp, gw_conn_on_alloc, gw_conn_on_read);
    if (rc == 0)
        conn->reading = 1;
    return rc;
}

static void gw_conn_on_handle_closed(uv_handle_t *handle)
{
    gw_upconn_t *conn = handle->data;

    if (--conn->handles_open > 0)
        return;
    gw_pool_t *pool = conn->pool;
    free(conn);
    gw_pool_unref(pool);
}

void gw_upconn_close(gw_upconn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = 1;
    gw_pool_unlink(conn);
    if (conn->req != NULL) {
        conn->req->conn = NULL;
        conn->req = NULL;
    }
    uv_close((uv_handle_t *)&conn->tcp, gw_conn_on_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, gw_conn_on_handle_closed);
}

static void gw_conn_on_timer(uv_timer_t *timer)
{
    gw_upconn_t *conn = timer->data;
    gw_upstream_t *r = conn->req;
    const gw_upstream_limits_t *lim = &conn->pool->pools->limits;
    char detail[128];

    if (r == NULL) {
        /* Idle too long in the pool. */
        gw_upconn_close(conn);
        return;
    }

    gw_request_enter(r);
    if (conn->error != 0 && conn->connected) {
        snprintf(detail, sizeof(detail), "sending the request failed: %s",
                 uv_strerror(conn->error));
        gw_request_fail(r, GW_UPSTREAM_FAILED, detail);
    } else if (conn->error != 0) {
        snprintf(detail, sizeof(detail), "connect failed: %s", uv_strerror(conn->error));
        gw_request_finish(r, GW_UPSTREAM_CONNECT_FAILED, detail);
    } else if (!conn->connected) {
        snprintf(detail, sizeof(detail), "connect timed out after %llu ms",
                 (unsigned long long)lim->connect_timeout_ms);
        gw_request_finish(r, GW_UPSTREAM_TIMEOUT, detail);
    } else if (!r->got_bytes) {
        snprintf(detail, sizeof(detail), "no response within %llu ms of the request",
                 (unsigned long long)lim->first_byte_timeout_ms);
        gw_request_finish(r, GW_UPSTREAM_TIMEOUT, detail);
    } else {
        snprintf(detail, sizeof(detail), "no data from the instance for %llu ms",
                 (unsigned long long)lim->read_timeout_ms);
        gw_request_finish(r, GW_UPSTREAM_FAILED, detail);
    }
    gw_request_leave(r);
}

/* Arm the timer for the request's phase. No timer runs while paused. */
static void gw_conn_arm(gw_upconn_t *conn)
{
    gw_upstream_t *r = conn->req;
    const gw_upstream_limits_t *lim = &conn->pool->pools->limits;
    uint64_t ms;

    if (r == NULL || conn->closing)
        return;
    if (!conn->connected)
        ms = lim->connect_timeout_ms;
    else if (!r->got_bytes)
        ms = lim->first_byte_timeout_ms;
    else if (r->paused)
        ms = 0;
    else
        ms = lim->read_timeout_ms;
    if (ms == 0)
        uv_timer_stop(&conn->timer);
    else
        uv_timer_start(&conn->timer, gw_conn_on_timer, ms, 0);
}

static void gw_conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    gw_upconn_t *conn = handle->data;

    (void)suggested;
    buf->base = conn->pool->pools->read_buf;
    buf->len = sizeof(conn->pool->pools->read_buf);
}

/* ---- response parsing ---- */

static void gw_request_deliver(gw_upstream_t *r, const char *data, size_t len)
{
    if (len > 0 && !r->ended)
        r->cb.on_body(r->user, data, len);
}

static void gw_request_body(gw_upstream_t *r, const char *data, size_t len)
{
    switch (r->body_mode) {
    case GW_BODY_NONE:
        r->extra_bytes = len > 0;
        gw_request_finish(r, GW_UPSTREAM_DONE, "");
        return;

    case GW_BODY_LENGTH: {
        size_t n = len < r->remaining ? len : (size_t)r->remaining;
        r->remaining -= n;
        r->extra_bytes = n < len;
        gw_request_deliver(r, data, n);
        if (r->remaining == 0)
            gw_request_finish(r, GW_UPSTREAM_DONE, "");
        return;
    }

    case GW_BODY_CHUNKED: {
        buf_t *decoded = &r->pools->decoded;
        buf_reset(decoded);
        long used = http_chunked_decode(&r->chunked, data, len, decoded);
        if (used < 0) {
            gw_request_finish(r, GW_UPSTREAM_FAILED, "malformed chunked body");
            return;
        }
        r->extra_bytes = (size_t)used < len;
        gw_request_deliver(r, decoded->data, decoded->len);
        if (r->chunked.done)
            gw_request_finish(r, GW_UPSTREAM_DONE, "");
        return;
    }

    case GW_BODY_UNTIL_CLOSE:
        gw_request_deliver(r, data, len);
        return;
    }
}

static gw_body_mode_t gw_request_body_mode(const gw_upstream_t *r, const http_response_t *resp)
{
    if (r->head_only || resp->status == 204 || resp->status == 304)
        return GW_BODY_NONE;
    if (resp->chunked)
        return GW_BODY_CHUNKED;
    if (resp->content_length >= 0)
        return resp->content_length == 0 ? GW_BODY_NONE : GW_BODY_LENGTH;
    return GW_BODY_UNTIL_CLOSE;
}

/* Collect the response head; once complete, report it and pass the bytes
 * after it on as body. */
static void gw_request_head(gw_upstream_t *r, const char *data, size_t len)
{
    http_response_t resp;

    if (buf_append(&r->head, data, len) != 0) {
        gw_request_finish(r, GW_UPSTREAM_FAILED, "out of memory reading the response head");
        return;
    }

    for (;;) {
        int n = http_parse_response(r->head.data, r->head.len, GW_UPSTREAM_MAX_HEAD, &resp);
        if (n == HTTP_PARSE_INCOMPLETE)
            return;
        if (n < 0) {
            gw_request_finish(r, GW_UPSTREAM_FAILED,
                              n == HTTP_PARSE_TOO_LARGE ? "response head too large"
                                                        : "malformed response head");
            return;
        }
        if (resp.status == 101) {
            gw_request_finish(r, GW_UPSTREAM_FAILED, "protocol upgrades are not proxied");
            return;
        }
        /* Interim responses (100 Continue, 103 Early Hints) are dropped: the
         * client already sent its whole body to the gateway. */
        if (resp.status >= 100 && resp.status < 200) {
            buf_consume(&r->head, (size_t)n);
            continue;
        }

        r->have_head = 1;
        r->keep_alive = resp.keep_alive;
        r->body_mode = gw_request_body_mode(r, &resp);
        r->remaining = resp.content_length > 0 ? (uint64_t)resp.content_length : 0;
        r->cb.on_head(r->user, &resp);
        if (r->ended)
            return;

        /* Body bytes that came with the head; the head buffer is not touched
         * again, so they can be read in place, and then it goes back. */
        gw_request_body(r, r->head.data + n, r->head.len - (size_t)n);
        gw_spare_give(r->pools, &r->head);
        return;
    }
}

static void gw_conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_upconn_t *conn = stream->data;
    gw_upstream_t *r = conn->req;
    char detail[128];

    if (conn->closing || nread == 0)
        return;
    if (r == NULL) {
        /* An idle connection that the instance closed, or that sent bytes
         * no request asked for, cannot be reused. */
        gw_upconn_close(conn);
        return;
    }

    gw_request_enter(r);
    if (nread == UV_EOF) {
        if (r->have_head && r->body_mode == GW_BODY_UNTIL_CLOSE)
            gw_request_finish(r, GW_UPSTREAM_DONE, "");
        else
            gw_request_fail(r, GW_UPSTREAM_FAILED,
                            r->have_head ? "the instance closed the connection mid-body"
                                         : "the instance closed the connection without "
                                           "answering");
    } else if (nread < 0) {
        snprintf(detail, sizeof(detail), "reading from the instance failed: %s",
                 uv_strerror((int)nread));
        gw_request_fail(r, GW_UPSTREAM_FAILED, detail);
    } else {
        if (!r->got_bytes) {
            r->got_bytes = 1;
            /* The request can no longer be resent: give its buffer back
             * unless the write still reads it. */
            if (!conn->writing)
                gw_spare_give(r->pools, &r->request);
        }
        gw_conn_arm(conn);
        if (r->have_head)
            gw_request_body(r, buf->base, (size_t)nread);
        else
            gw_request_head(r, buf->base, (size_t)nread);
        if (!r->ended && r->cb.on_read_end != NULL)
            r->cb.on_read_end(r->user);
    }
    gw_request_leave(r);
}

static void gw_conn_on_write(uv_write_t *req, int status)
{
    gw_upconn_t *conn = req->data;
    gw_upstream_t *r = conn->req;
    char detail[128];

    conn->writing = 0;
    if (conn->closing || r == NULL)
        return;
    /* After response bytes arrived, a failed write only means the instance
     * responded early (e.g. 413) and stopped reading: the read side decides. */
    if (status == 0 || r->got_bytes)
        return;

    gw_request_enter(r);
    snprintf(detail, sizeof(detail), "writing the request to the instance failed: %s",
             uv_strerror(status));
    gw_request_fail(r, GW_UPSTREAM_FAILED, detail);
    gw_request_leave(r);
}

/* Write the request on the attached, connected connection. A failure is
 * reported from the timer on the next loop iteration, so on_end never runs
 * inside gw_upstream_start. */
static void gw_request_send(gw_upstream_t *r)
{
    gw_upconn_t *conn = r->conn;
    uv_buf_t out = uv_buf_init(r->request.data, (unsigned int)r->request.len);

    int rc = gw_conn_read(conn, 1);

    /* The socket usually takes the whole request at once, so a write request
     * (and libuv's poll bookkeeping for it) is needed only for the rest. */
    if (rc == 0) {
        int n = uv_try_write((uv_stream_t *)&conn->tcp, &out, 1);
        if (n >= 0 && (size_t)n == out.len) {
            gw_conn_arm(conn);
            return;
        }
        if (n > 0) {
            out.base += n;
            out.len -= (size_t)n;
        }
        rc = n < 0 && n != UV_EAGAIN ? n : 0;
    }
    if (rc == 0)
        rc = uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &out, 1, gw_conn_on_write);
    if (rc == 0) {
        conn->writing = 1;
        gw_conn_arm(conn);
        return;
    }
    gw_conn_read(conn, 0);
    conn->error = rc;
    uv_timer_start(&conn->timer, gw_conn_on_timer, 0, 0);
}

static void gw_conn_on_connect(uv_connect_t *req, int status)
{
    gw_upconn_t *conn = req->data;
    gw_upstream_t *r = conn->req;
    char detail[128];

    if (conn->closing)
        return;
    if (r == NULL) {
        gw_upconn_close(conn);
        return;
    }

    gw_request_enter(r);
    if (status < 0) {
        snprintf(detail, sizeof(detail), "connect failed: %s", uv_strerror(status));
        gw_request_finish(r, GW_UPSTREAM_CONNECT_FAILED, detail);
        gw_request_leave(r);
        return;
    }

    conn->connected = 1;
    if (!r->connect_reported) {
        r->connect_reported = 1;
        if (r->cb.on_connect != NULL)
            r->cb.on_connect(r->user);
    }
    if (!r->ended)
        gw_request_send(r);
    gw_request_leave(r);
}

/* Open a new connection for r. Returns -1 when memory runs out. A failure
 * of the connect itself is reported on the next loop iteration through the
 * connection's timer. */
static int gw_conn_connect(gw_upstream_t *r)
{
    gw_pools_t *pools = r->pools;
    gw_upconn_t *conn = calloc(1, sizeof(*conn));

    if (conn == NULL)
        return -1;
    conn->pool = r->pool;
    conn->pool->refs++;
    uv_tcp_init(pools->loop, &conn->tcp);
    uv_timer_init(pools->loop, &conn->timer);
    conn->handles_open = 2;
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->connect_req.data = conn;
    conn->write_req.data = conn;
    conn->req = r;
    r->conn = conn;
    pools->stats.connects++;

    int rc = uv_tcp_connect(&conn->connect_req, &conn->tcp,
                            (const struct sockaddr *)&conn->pool->addr, gw_conn_on_connect);
    if (rc != 0) {
        conn->error = rc;
        uv_timer_start(&conn->timer, gw_conn_on_timer, 0, 0);
        return 0;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    gw_conn_arm(conn);
    return 0;
}

gw_upstream_t *gw_upstream_start(gw_pools_t *pools, const char *instance_id,
                                 const char *host_port, buf_t *request, int head_only,
                                 const gw_upstream_callbacks_t *callbacks, void *user, char *err,
                                 size_t err_size)
{
    gw_pool_t *pool = gw_pool_get(pools, instance_id, host_port, err, err_size);
    if (pool == NULL)
        return NULL;

    gw_upstream_t *r = gw_request_alloc(pools);
    if (r == NULL) {
        snprintf(err, err_size, "out of memory connecting to %s", host_port);
        return NULL;
    }
    r->pool = pool;
    pool->refs++;
    r->cb = *callbacks;
    r->user = user;
    r->head_only = head_only;

    /* Swap buffers: the caller gets this struct's spare capacity back. */
    buf_t spare = r->request;
    r->request = *request;
    *request = spare;

    gw_upconn_t *conn = gw_pool_take(pool);
    if (conn != NULL) {
        pools->stats.reuses++;
        r->reused = 1;
        r->conn = conn;
        conn->req = r;
        r->connect_reported = 1;
        gw_request_enter(r);
        if (r->cb.on_connect != NULL)
            r->cb.on_connect(r->user);
        if (!r->ended)
            gw_request_send(r);
        gw_request_leave(r);
        return r;
    }

    if (gw_conn_connect(r) != 0) {
        snprintf(err, err_size, "out of memory connecting to %s", host_port);
        r->ended = 1;
        gw_request_release(r);
        return NULL;
    }
    return r;
}

void gw_upstream_pause(gw_upstream_t *r)
{
    if (r->ended || r->paused)
        return;
    r->paused = 1;
    gw_upconn_t *conn = r->conn;
    /* Before the response the timers keep running. */
    if (conn == NULL || !conn->connected || !r->got_bytes)
        return;
    gw_conn_read(conn, 0);
    gw_conn_arm(conn);
}

void gw_upstream_resume(gw_upstream_t *r)
{
    if (r->ended || !r->paused)
        return;
    r->paused = 0;
    gw_upconn_t *conn = r->conn;
    if (conn == NULL || !conn->connected)
        return;
    gw_conn_arm(conn);
    int rc = gw_conn_read(conn, 1);
    if (rc != 0) {
        conn->error = rc;
        uv_timer_start(&conn->timer, gw_conn_on_timer, 0, 0);
    }
}

void gw_upstream_abort(gw_upstream_t *r)
{
    if (r->ended)
        return;
    r->ended = 1;
    gw_request_detach(r, 0);
    if (r->depth == 0)
        gw_request_release(r);
}
