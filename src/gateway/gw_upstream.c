/* One-shot HTTP/1.1 client for instances: connect, write the request, parse
 * the response head incrementally and the body by Content-Length, chunked
 * coding or connection close.
 *
 * Lifetime: the struct lives until both libuv handles (tcp, timer) have
 * closed. libuv runs the callbacks of pending connect and write requests
 * (with UV_ECANCELED) before the handles' close callbacks, so those
 * callbacks may still read the struct. They check `closing` and return. */
#include "gateway/gw_upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bound on a response head; instances send a few hundred bytes. */
#define GW_UPSTREAM_MAX_HEAD (64u * 1024)
/* With no byte from the instance for this long (while not paused), the
 * request fails: a hung model server must not hold a client forever. */
#define GW_UPSTREAM_IDLE_TIMEOUT_MS (10u * 60 * 1000)

typedef enum {
    GW_BODY_NONE,
    GW_BODY_LENGTH,
    GW_BODY_CHUNKED,
    GW_BODY_UNTIL_CLOSE,
} gw_body_mode_t;

struct gw_upstream {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    int handles_open;
    int closing;            /* abort or end: no more callbacks to the user */
    int connected;
    int have_head;
    int paused;
    int head_only;

    gw_upstream_callbacks_t cb;
    void *user;

    buf_t request;
    buf_t head;             /* response bytes until the head is complete */
    gw_body_mode_t body_mode;
    uint64_t remaining;     /* GW_BODY_LENGTH */
    http_chunked_t chunked;
    buf_t decoded;          /* GW_BODY_CHUNKED payload of one read */
    char read_buf[64 * 1024];
};

static void gw_upstream_on_handle_closed(uv_handle_t *handle)
{
    gw_upstream_t *up = handle->data;

    if (--up->handles_open > 0)
        return;
    buf_free(&up->request);
    buf_free(&up->head);
    buf_free(&up->decoded);
    free(up);
}

static void gw_upstream_close(gw_upstream_t *up)
{
    if (up->closing)
        return;
    up->closing = 1;
    uv_close((uv_handle_t *)&up->tcp, gw_upstream_on_handle_closed);
    uv_close((uv_handle_t *)&up->timer, gw_upstream_on_handle_closed);
}

void gw_upstream_abort(gw_upstream_t *up)
{
    gw_upstream_close(up);
}

/* Report the end once and close. */
static void gw_upstream_finish(gw_upstream_t *up, gw_upstream_result_t result,
                               const char *detail)
{
    if (up->closing)
        return;
    gw_upstream_close(up);
    up->cb.on_end(up->user, result, detail);
}

static void gw_upstream_on_timeout(uv_timer_t *timer)
{
    gw_upstream_t *up = timer->data;

    if (!up->connected)
        gw_upstream_finish(up, GW_UPSTREAM_CONNECT_FAILED, "connect timed out");
    else
        gw_upstream_finish(up, GW_UPSTREAM_FAILED, "no data from the instance for 10 minutes");
}

static void gw_upstream_arm_idle(gw_upstream_t *up)
{
    if (!up->closing && !up->paused)
        uv_timer_start(&up->timer, gw_upstream_on_timeout, GW_UPSTREAM_IDLE_TIMEOUT_MS, 0);
}

static void gw_upstream_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    gw_upstream_t *up = handle->data;

    (void)suggested;
    buf->base = up->read_buf;
    buf->len = sizeof(up->read_buf);
}

static void gw_upstream_deliver(gw_upstream_t *up, const char *data, size_t len)
{
    if (len > 0 && !up->closing)
        up->cb.on_body(up->user, data, len);
}

static void gw_upstream_body(gw_upstream_t *up, const char *data, size_t len)
{
    switch (up->body_mode) {
    case GW_BODY_NONE:
        gw_upstream_finish(up, GW_UPSTREAM_DONE, "");
        return;

    case GW_BODY_LENGTH: {
        size_t n = len < up->remaining ? len : (size_t)up->remaining;
        up->remaining -= n;
        gw_upstream_deliver(up, data, n);
        if (up->remaining == 0)
            gw_upstream_finish(up, GW_UPSTREAM_DONE, "");
        return;
    }

    case GW_BODY_CHUNKED: {
        buf_reset(&up->decoded);
        long used = http_chunked_decode(&up->chunked, data, len, &up->decoded);
        if (used < 0) {
            gw_upstream_finish(up, GW_UPSTREAM_FAILED, "malformed chunked body");
            return;
        }
        gw_upstream_deliver(up, up->decoded.data, up->decoded.len);
        if (up->chunked.done)
            gw_upstream_finish(up, GW_UPSTREAM_DONE, "");
        return;
    }

    case GW_BODY_UNTIL_CLOSE:
        gw_upstream_deliver(up, data, len);
        return;
    }
}

static gw_body_mode_t gw_upstream_body_mode(const gw_upstream_t *up, const http_response_t *resp)
{
    if (up->head_only || resp->status == 204 || resp->status == 304)
        return GW_BODY_NONE;
    if (resp->chunked)
        return GW_BODY_CHUNKED;
    if (resp->content_length >= 0)
        return resp->content_length == 0 ? GW_BODY_NONE : GW_BODY_LENGTH;
    return GW_BODY_UNTIL_CLOSE;
}

/* Collect the response head; once complete, report it and pass the bytes
 * after it on as body. */
static void gw_upstream_head(gw_upstream_t *up, const char *data, size_t len)
{
    http_response_t resp;

    if (buf_append(&up->head, data, len) != 0) {
        gw_upstream_finish(up, GW_UPSTREAM_FAILED, "out of memory reading the response head");
        return;
    }

    for (;;) {
        int n = http_parse_response(up->head.data, up->head.len, GW_UPSTREAM_MAX_HEAD, &resp);
        if (n == HTTP_PARSE_INCOMPLETE)
            return;
        if (n < 0) {
            gw_upstream_finish(up, GW_UPSTREAM_FAILED,
                               n == HTTP_PARSE_TOO_LARGE ? "response head too large"
                                                         : "malformed response head");
            return;
        }
        if (resp.status == 101) {
            gw_upstream_finish(up, GW_UPSTREAM_FAILED, "protocol upgrades are not proxied");
            return;
        }
        /* Interim responses (100 Continue, 103 Early Hints) are dropped: the
         * client already sent its whole body to the gateway. */
        if (resp.status >= 100 && resp.status < 200) {
            buf_consume(&up->head, (size_t)n);
            continue;
        }

        up->have_head = 1;
        up->body_mode = gw_upstream_body_mode(up, &resp);
        up->remaining = resp.content_length > 0 ? (uint64_t)resp.content_length : 0;
        up->cb.on_head(up->user, &resp);
        if (up->closing)
            return;

        /* Body bytes that came with the head; the head buffer is not touched
         * again, so they can be read in place. */
        gw_upstream_body(up, up->head.data + n, up->head.len - (size_t)n);
        return;
    }
}

static void gw_upstream_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gw_upstream_t *up = stream->data;
    char detail[128];

    if (up->closing || nread == 0)
        return;

    if (nread == UV_EOF) {
        if (up->have_head && up->body_mode == GW_BODY_UNTIL_CLOSE)
            gw_upstream_finish(up, GW_UPSTREAM_DONE, "");
        else
            gw_upstream_finish(up, GW_UPSTREAM_FAILED,
                               up->have_head ? "the instance closed the connection mid-body"
                                             : "the instance closed the connection without "
                                               "answering");
        return;
    }
    if (nread < 0) {
        snprintf(detail, sizeof(detail), "reading from the instance failed: %s",
                 uv_strerror((int)nread));
        gw_upstream_finish(up, GW_UPSTREAM_FAILED, detail);
        return;
    }

    gw_upstream_arm_idle(up);
    if (up->have_head)
        gw_upstream_body(up, buf->base, (size_t)nread);
    else
        gw_upstream_head(up, buf->base, (size_t)nread);
}

static void gw_upstream_on_write(uv_write_t *req, int status)
{
    gw_upstream_t *up = req->data;
    char detail[128];

    /* After a head arrived, a failed write only means the instance responded
     * early (e.g. 413) and stopped reading, so the read side decides. */
    if (up->closing || status == 0 || up->have_head)
        return;
    snprintf(detail, sizeof(detail), "writing the request to the instance failed: %s",
             uv_strerror(status));
    gw_upstream_finish(up, GW_UPSTREAM_FAILED, detail);
}

static void gw_upstream_on_connect(uv_connect_t *req, int status)
{
    gw_upstream_t *up = req->data;
    char detail[128];

    if (up->closing)
        return;
    if (status < 0) {
        snprintf(detail, sizeof(detail), "connect failed: %s", uv_strerror(status));
        gw_upstream_finish(up, GW_UPSTREAM_CONNECT_FAILED, detail);
        return;
    }

    up->connected = 1;
    if (up->cb.on_connect != NULL) {
        up->cb.on_connect(up->user);
        if (up->closing)
            return;
    }
    gw_upstream_arm_idle(up);

    uv_buf_t out = uv_buf_init(up->request.data, (unsigned int)up->request.len);
    int rc = uv_write(&up->write_req, (uv_stream_t *)&up->tcp, &out, 1, gw_upstream_on_write);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&up->tcp, gw_upstream_on_alloc, gw_upstream_on_read);
    if (rc != 0) {
        snprintf(detail, sizeof(detail), "sending the request failed: %s", uv_strerror(rc));
        gw_upstream_finish(up, GW_UPSTREAM_FAILED, detail);
    }
}

void gw_upstream_pause(gw_upstream_t *up)
{
    if (up->closing || up->paused)
        return;
    up->paused = 1;
    /* Before the connect the timer bounds the connect and keeps running. */
    if (!up->connected)
        return;
    uv_timer_stop(&up->timer);
    uv_read_stop((uv_stream_t *)&up->tcp);
}

void gw_upstream_resume(gw_upstream_t *up)
{
    if (up->closing || !up->paused)
        return;
    up->paused = 0;
    if (!up->connected)
        return;
    gw_upstream_arm_idle(up);
    int rc = uv_read_start((uv_stream_t *)&up->tcp, gw_upstream_on_alloc, gw_upstream_on_read);
    if (rc != 0)
        gw_upstream_finish(up, GW_UPSTREAM_FAILED, "resuming the read from the instance failed");
}

/* Parse "IPv4:PORT", "[IPv6]:PORT" or "localhost:PORT". */
static int gw_upstream_address(const char *host_port, struct sockaddr_storage *addr)
{
    char host[64];
    const char *colon = strrchr(host_port, ':');
    char *end;

    if (colon == NULL)
        return -1;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return -1;

    size_t host_len = (size_t)(colon - host_port);
    const char *start = host_port;
    if (host_len >= 2 && start[0] == '[' && start[host_len - 1] == ']') {
        start++;
        host_len -= 2;
    }
    if (host_len == 0 || host_len >= sizeof(host))
        return -1;
    memcpy(host, start, host_len);
    host[host_len] = '\0';

    if (strcmp(host, "localhost") == 0)
        return uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)addr);
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0)
        return 0;
    return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr);
}

gw_upstream_t *gw_upstream_start(uv_loop_t *loop, const char *host_port, buf_t *request,
                                 int head_only, uint64_t connect_timeout_ms,
                                 const gw_upstream_callbacks_t *callbacks, void *user,
                                 char *err, size_t err_size)
{
    struct sockaddr_storage addr;

    memset(&addr, 0, sizeof(addr));
    if (gw_upstream_address(host_port, &addr) != 0) {
        /* NOTE: host names other than localhost would need an asynchronous
         * resolver; agents report literal addresses. */
        snprintf(err, err_size, "upstream address '%s' is not IP:PORT", host_port);
        return NULL;
    }

    gw_upstream_t *up = calloc(1, sizeof(*up));
    if (up == NULL) {
        snprintf(err, err_size, "out of memory connecting to %s", host_port);
        return NULL;
    }
    up->cb = *callbacks;
    up->user = user;
    up->head_only = head_only;
    up->request = *request;
    memset(request, 0, sizeof(*request));

    uv_tcp_init(loop, &up->tcp);
    uv_timer_init(loop, &up->timer);
    up->handles_open = 2;
    up->tcp.data = up;
    up->timer.data = up;
    up->connect_req.data = up;
    up->write_req.data = up;
    uv_tcp_nodelay(&up->tcp, 1);

    int rc = uv_tcp_connect(&up->connect_req, &up->tcp, (const struct sockaddr *)&addr,
                            gw_upstream_on_connect);
    if (rc != 0) {
        snprintf(err, err_size, "connect to %s failed: %s", host_port, uv_strerror(rc));
        gw_upstream_close(up);
        return NULL;
    }
    uv_timer_start(&up->timer, gw_upstream_on_timeout, connect_timeout_ms, 0);
    return up;
}
