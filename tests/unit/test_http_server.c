/* Unit tests for the libuv HTTP server, driven over real sockets: the server
 * runs on its own loop in a second thread, the test talks raw HTTP to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"

#define PIECE_COUNT 3
#define PIECE_DELAY_MS 80
#define FLOOD_TOTAL (4 * 1024 * 1024)
#define FLOOD_PIECE (64 * 1024)
/* Bound on /endless, far beyond what socket buffers can hold. */
#define ENDLESS_TOTAL (512 * 1024 * 1024)
/* Write-stall timeout of the test limits. */
#define STALL_MS 400

typedef struct {
    uv_loop_t loop;
    uv_async_t stop_async;
    http_server_t *server;
    http_limits_t limits;
    pthread_t thread;
    atomic_int port;
    atomic_int closed_ok;      /* close callbacks with aborted = 0 */
    atomic_int closed_aborted; /* close callbacks with aborted = 1 */
    atomic_int handled;        /* handler calls */
    atomic_int drained;        /* drain callbacks */
    atomic_int paused;         /* http_stream_write returned 1 */
    atomic_int loop_closed;    /* uv_loop_close returned 0 after the stop */
} fixture_t;

/* A streamed response driven by a timer (pieces) or by drain callbacks
 * (flood). */
typedef struct {
    uv_timer_t timer;
    http_exchange_t *ex;
    fixture_t *fx;
    int pieces_sent;
    size_t flood_sent;
} stream_t;

static char flood_piece[FLOOD_PIECE];

/* ---- server side (loop thread) ---- */

static void on_exchange_close(http_exchange_t *ex, int aborted, void *user)
{
    fixture_t *fx = user;

    (void)ex;
    atomic_fetch_add(aborted ? &fx->closed_aborted : &fx->closed_ok, 1);
}

static void on_stream_timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void on_stream_close(http_exchange_t *ex, int aborted, void *user)
{
    stream_t *st = user;

    /* Finishing inside the close callback must be a harmless no-op. */
    http_stream_end(ex);
    st->ex = NULL;
    on_exchange_close(ex, aborted, st->fx);
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, on_stream_timer_closed);
}

static void on_piece_timer(uv_timer_t *timer)
{
    stream_t *st = timer->data;
    char piece[64];

    if (st->pieces_sent == PIECE_COUNT) {
        uv_timer_stop(timer);
        http_stream_end(st->ex);
        return;
    }
    int n = snprintf(piece, sizeof piece, "data: piece %d\n\n", st->pieces_sent++);
    http_stream_write(st->ex, piece, (size_t)n);
}

static void flood_more(http_exchange_t *ex, void *user)
{
    stream_t *st = user;

    atomic_fetch_add(&st->fx->drained, 1);
    while (st->flood_sent < FLOOD_TOTAL) {
        int rc = http_stream_write(ex, flood_piece, sizeof flood_piece);
        st->flood_sent += sizeof flood_piece;
        if (rc < 0)
            return;
        if (rc == 1) {
            atomic_fetch_add(&st->fx->paused, 1);
            return;
        }
    }
    http_stream_end(ex);
}

/* Write until paused, again on every drain, up to ENDLESS_TOTAL. */
static void endless_more(http_exchange_t *ex, void *user)
{
    stream_t *st = user;

    while (st->flood_sent < ENDLESS_TOTAL) {
        int rc = http_stream_write(ex, flood_piece, sizeof flood_piece);
        st->flood_sent += sizeof flood_piece;
        if (rc != 0)
            return;
    }
    http_stream_end(ex);
}

static stream_t *stream_new(fixture_t *fx, http_exchange_t *ex)
{
    stream_t *st = calloc(1, sizeof *st);

    assert_non_null(st);
    st->ex = ex;
    st->fx = fx;
    uv_timer_init(&fx->loop, &st->timer);
    st->timer.data = st;
    http_exchange_on_close(ex, on_stream_close, st);
    return st;
}

static int path_is(const http_request_t *req, const char *path)
{
    return req->path_len == strlen(path) && memcmp(req->path, path, req->path_len) == 0;
}

static void on_request(http_exchange_t *ex, void *user)
{
    fixture_t *fx = user;
    const http_request_t *req = http_exchange_request(ex);

    atomic_fetch_add(&fx->handled, 1);
    if (path_is(req, "/stream")) {
        stream_t *st = stream_new(fx, ex);
        http_stream_start(ex, 200, "text/event-stream", "Cache-Control: no-cache\r\n");
        uv_timer_start(&st->timer, on_piece_timer, PIECE_DELAY_MS, PIECE_DELAY_MS);
        return;
    }
    if (path_is(req, "/flood")) {
        stream_t *st = stream_new(fx, ex);
        http_exchange_on_drain(ex, flood_more, st);
        http_stream_start(ex, 200, "application/octet-stream", NULL);
        flood_more(ex, st);
        atomic_fetch_sub(&fx->drained, 1);
        return;
    }
    if (path_is(req, "/endless")) {
        stream_t *st = stream_new(fx, ex);
        http_exchange_on_drain(ex, endless_more, st);
        http_stream_start(ex, 200, "application/octet-stream", NULL);
        endless_more(ex, st);
        return;
    }

    http_exchange_on_close(ex, on_exchange_close, fx);
    if (path_is(req, "/hang"))
        return;
    if (path_is(req, "/echo")) {
        http_respond(ex, 200, "application/octet-stream", NULL, req->body, req->body_len);
        return;
    }
    if (path_is(req, "/bye")) {
        http_respond(ex, 200, NULL, "Connection: close\r\n", "bye", 3);
        return;
    }
    if (path_is(req, "/missing")) {
        http_respond_error(ex, 404, "not_found", "no \"route\"\n here", "path");
        return;
    }
    http_respond(ex, 200, "text/plain", "X-Test: yes\r\n", "hello", 5);
}

static void on_stop_async(uv_async_t *async)
{
    fixture_t *fx = async->data;

    http_server_stop(fx->server);
    uv_close((uv_handle_t *)async, NULL);
}

static void *server_thread(void *arg)
{
    fixture_t *fx = arg;
    char err[256] = "";

    fx->server = http_server_start(&fx->loop, "127.0.0.1", 0, &fx->limits, on_request, fx,
                                   err, sizeof err);
    if (fx->server == NULL) {
        fprintf(stderr, "server start failed: %s\n", err);
        atomic_store(&fx->port, -1);
        uv_close((uv_handle_t *)&fx->stop_async, NULL);
        uv_run(&fx->loop, UV_RUN_DEFAULT);
        return NULL;
    }
    atomic_store(&fx->port, http_server_port(fx->server));
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    atomic_store(&fx->loop_closed, uv_loop_close(&fx->loop) == 0);
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static fixture_t *fixture_start(const http_limits_t *limits)
{
    fixture_t *fx = calloc(1, sizeof *fx);

    assert_non_null(fx);
    fx->limits = *limits;
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_async_init(&fx->loop, &fx->stop_async, on_stop_async);
    fx->stop_async.data = fx;
    assert_int_equal(pthread_create(&fx->thread, NULL, server_thread, fx), 0);

    for (int i = 0; i < 500 && atomic_load(&fx->port) == 0; i++)
        sleep_ms(5);
    assert_true(atomic_load(&fx->port) > 0);
    return fx;
}

static void fixture_stop(fixture_t *fx)
{
    uv_async_send(&fx->stop_async);
    pthread_join(fx->thread, NULL);
    assert_int_equal(atomic_load(&fx->loop_closed), 1);
    free(fx);
}

static void test_limits(http_limits_t *limits)
{
    http_limits_default(limits);
    limits->max_header_bytes = 1024;
    limits->max_body_bytes = 1000;
    limits->header_timeout_ms = 300;
    limits->idle_timeout_ms = 2000;
    limits->write_high_water = 64 * 1024;
    limits->write_stall_timeout_ms = STALL_MS;
}

static int setup(void **state)
{
    http_limits_t limits;

    test_limits(&limits);
    *state = fixture_start(&limits);
    return 0;
}

static int teardown(void **state)
{
    fixture_stop(*state);
    return 0;
}

/* ---- client side (test thread) ---- */

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {3, 0};

    assert_true(fd >= 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

static void client_send(int fd, const char *data, size_t len)
{
    assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void client_send_str(int fd, const char *text)
{
    client_send(fd, text, strlen(text));
}

/* A response read by the test client. */
typedef struct {
    int status;
    char head[2048];
    buf_t body;
    int eof_after; /* the server closed the connection after the response */
} reply_t;

/* Bytes received past the end of the last response read on pending_fd:
 * pipelined responses can arrive in one recv. */
static char pending[65536];
static size_t pending_len;
static int pending_fd = -1;

/* Receive into raw after the bytes left over from the previous response. */
static ssize_t client_recv(int fd, char *raw, size_t cap, size_t *len)
{
    if (pending_fd == fd && pending_len > 0 && *len == 0) {
        memcpy(raw, pending, pending_len);
        *len = pending_len;
        pending_len = 0;
        return (ssize_t)*len;
    }
    ssize_t n = recv(fd, raw + *len, cap - *len, 0);
    if (n > 0)
        *len += (size_t)n;
    return n;
}

static void client_keep_rest(int fd, const char *rest, size_t len)
{
    pending_fd = fd;
    pending_len = len;
    memcpy(pending, rest, len);
}

/* Read one response (Content-Length, chunked or until EOF). Returns 0, or -1
 * on a timeout, an early EOF or a malformed response. */
static int client_read_response(int fd, reply_t *reply, int expect_eof)
{
    char raw[65536];
    size_t len = 0;
    http_response_t resp;
    int head_len = 0;

    memset(reply, 0, sizeof *reply);
    if (pending_fd != fd)
        pending_len = 0;
    while (head_len == 0) {
        if (client_recv(fd, raw, sizeof raw, &len) <= 0)
            return -1;
        head_len = http_parse_response(raw, len, sizeof reply->head - 1, &resp);
        if (head_len < 0)
            return -1;
    }
    reply->status = resp.status;
    memcpy(reply->head, raw, (size_t)head_len);

    http_chunked_t dec = {0};
    size_t have = len - (size_t)head_len;
    memmove(raw, raw + head_len, have);
    for (;;) {
        if (resp.chunked) {
            long used = http_chunked_decode(&dec, raw, have, &reply->body);
            if (used < 0)
                return -1;
            if (dec.done) {
                client_keep_rest(fd, raw + used, have - (size_t)used);
                break;
            }
        } else if (resp.content_length >= 0) {
            size_t want = (size_t)resp.content_length - reply->body.len;
            size_t take = have < want ? have : want;
            buf_append(&reply->body, raw, take);
            if (reply->body.len == (size_t)resp.content_length) {
                client_keep_rest(fd, raw + take, have - take);
                break;
            }
        } else {
            buf_append(&reply->body, raw, have);
        }

        ssize_t n = recv(fd, raw, sizeof raw, 0);
        if (n < 0)
            return -1;
        if (n == 0) {
            reply->eof_after = 1;
            return resp.content_length < 0 && !resp.chunked ? 0 : -1;
        }
        have = (size_t)n;
    }
    if (reply->body.data == NULL)
        buf_append(&reply->body, "", 0);

    if (expect_eof) {
        char extra;
        reply->eof_after = pending_len == 0 && recv(fd, &extra, 1, 0) == 0;
    }
    return 0;
}

/* Whether the server closed the connection (EOF) within timeout_ms. */
static int client_sees_eof(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char byte;

    if (poll(&p, 1, timeout_ms) != 1)
        return 0;
    return recv(fd, &byte, 1, 0) == 0;
}

static int wait_for(atomic_int *counter, int value, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (atomic_load(counter) >= value)
            return 1;
        sleep_ms(5);
    }
    return atomic_load(counter) >= value;
}

static void reply_free(reply_t *reply)
{
    buf_free(&reply->body);
}

static int head_has(const reply_t *reply, const char *line)
{
    return strstr(reply->head, line) != NULL;
}

/* ---- tests ---- */

static void server_whole_response(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    reply_t reply;

    client_send_str(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_int_equal(reply.status, 200);
    assert_true(head_has(&reply, "Content-Length: 5\r\n"));
    assert_true(head_has(&reply, "Content-Type: text/plain\r\n"));
    assert_true(head_has(&reply, "X-Test: yes\r\n"));
    assert_false(head_has(&reply, "Connection: close"));
    assert_string_equal(reply.body.data, "hello");
    assert_true(wait_for(&fx->closed_ok, 1, 2000));
    assert_int_equal(atomic_load(&fx->closed_aborted), 0);
    reply_free(&reply);
    close(fd);
}

static void server_keep_alive_second_request(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    reply_t reply;

    client_send_str(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_int_equal(reply.status, 200);
    reply_free(&reply);

    client_send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                        "Connection: close\r\n\r\nping");
    assert_int_equal(client_read_response(fd, &reply, 1), 0);
    assert_int_equal(reply.status, 200);
    assert_string_equal(reply.body.data, "ping");
    assert_true(head_has(&reply, "Connection: close\r\n"));
    assert_int_equal(reply.eof_after, 1);
    assert_int_equal(atomic_load(&fx->handled), 2);
    reply_free(&reply);
    close(fd);
}

static void server_pipelined_in_order(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    reply_t reply;

    client_send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\none"
                        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "3\r\ntwo\r\n0\r\n\r\n"
                        "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_string_equal(reply.body.data, "one");
    reply_free(&reply);
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_string_equal(reply.body.data, "two");
    reply_free(&reply);
    assert_int_equal(client_read_response(fd, &reply, 1), 0);
    assert_string_equal(reply.body.data, "hello");
    assert_int_equal(reply.eof_after, 1);
    reply_free(&reply);
    close(fd);
}

static void server_http10_closes(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    reply_t reply;

    client_send_str(fd, "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(client_read_response(fd, &reply, 1), 0);
    assert_true(head_has(&reply, "Connection: close\r\n"));
    assert_int_equal(reply.eof_after, 1);
    reply_free(&reply);
    close(fd);
}

static void server_handler_connection_close(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    reply_t reply;

    client_send_str(fd, "GET /bye HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read_response(fd, &reply, 1), 0);
    assert_string_equal(reply.body.data, "bye");
    assert_non_null(strstr(reply.head, "Connection: close\r\n"));
    assert_null(strstr(strstr(reply.head, "Connection: close\r\n") + 1, "Connection:"));
    assert_int_equal(reply.eof_after, 1);
    reply_free(&reply);
    close(fd);
}

static void server_http10_keep_alive(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    reply_t reply;

    client_send_str(fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_true(head_has(&reply, "Connection: keep-alive\r\n"));
    reply_free(&reply);
    client_send_str(fd, "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(client_read_response(fd, &reply, 1), 0);
    assert_string_equal(reply.body.data, "hello");
    assert_int_equal(reply.eof_after, 1);
    reply_free(&reply);
    close(fd);
}

static void server_head_has_no_body(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    char raw[1024];
    size_t len = 0;

    client_send_str(fd, "HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    for (;;) {
        ssize_t n = recv(fd, raw + len, sizeof raw - 1 - len, 0);
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    raw[len] = '\0';
    assert_non_null(strstr(raw, "Content-Length: 5\r\n"));
    assert_int_equal(len - (size_t)(strstr(raw, "\r\n\r\n") + 4 - raw), 0);
    close(fd);
}

static void server_error_json_escaped(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    reply_t reply;

    client_send_str(fd, "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_int_equal(reply.status, 404);
    assert_true(head_has(&reply, "Content-Type: application/json\r\n"));
    assert_string_equal(reply.body.data, "{\"error\":{\"code\":\"not_found\",\"message\":"
                                         "\"no \\\"route\\\"\\n here\",\"field\":\"path\"}}");
    reply_free(&reply);
    close(fd);
}

static void server_stream_in_pieces(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    char raw[4096] = "";
    size_t len = 0;
    int reads_with_data = 0;

    client_send_str(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    while (len < sizeof raw - 1 && strstr(raw, "0\r\n\r\n") == NULL) {
        ssize_t n = recv(fd, raw + len, sizeof raw - 1 - len, 0);
        assert_true(n > 0);
        len += (size_t)n;
        raw[len] = '\0';
        reads_with_data++;
    }

    /* The pieces are PIECE_DELAY_MS apart, so they cannot arrive in one read. */
    assert_true(reads_with_data >= PIECE_COUNT);
    assert_non_null(strstr(raw, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(raw, "Cache-Control: no-cache\r\n"));
    assert_non_null(strstr(raw, "f\r\ndata: piece 0\n\n\r\n"));
    assert_non_null(strstr(raw, "f\r\ndata: piece 2\n\n\r\n"));
    assert_true(wait_for(&fx->closed_ok, 1, 2000));
    assert_int_equal(atomic_load(&fx->closed_aborted), 0);
    close(fd);
}

static void server_backpressure_drain(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    reply_t reply;

    client_send_str(fd, "GET /flood HTTP/1.1\r\nHost: t\r\n\r\n");
    /* Reading late lets the queue pass the high-water mark first. */
    sleep_ms(100);
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_int_equal(reply.body.len, FLOOD_TOTAL);
    assert_true(atomic_load(&fx->paused) >= 1);
    assert_true(atomic_load(&fx->drained) >= 1);
    assert_true(wait_for(&fx->closed_ok, 1, 2000));
    reply_free(&reply);
    close(fd);
}

static void server_expect_continue(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    char interim[64] = "";
    reply_t reply;

    client_send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    ssize_t n = recv(fd, interim, strlen("HTTP/1.1 100 Continue\r\n\r\n"), MSG_WAITALL);
    assert_int_equal(n, (ssize_t)strlen("HTTP/1.1 100 Continue\r\n\r\n"));
    assert_string_equal(interim, "HTTP/1.1 100 Continue\r\n\r\n");

    client_send_str(fd, "data");
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_int_equal(reply.status, 200);
    assert_string_equal(reply.body.data, "data");
    reply_free(&reply);
    close(fd);
}

static void server_large_bodies(void **state)
{
    http_limits_t limits;
    const size_t size = 300 * 1000;
    char *payload = malloc(size);
    char head[128];
    reply_t reply;

    (void)state;
    assert_non_null(payload);
    for (size_t i = 0; i < size; i++)
        payload[i] = (char)('a' + i % 26);
    test_limits(&limits);
    limits.max_body_bytes = 1024 * 1024;
    fixture_t *fx = fixture_start(&limits);
    int fd = client_connect(fx->port);

    int n = snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                     size);
    client_send(fd, head, (size_t)n);
    for (size_t off = 0; off < size; off += 7000)
        client_send(fd, payload + off, size - off < 7000 ? size - off : 7000);
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_int_equal(reply.body.len, size);
    assert_memory_equal(reply.body.data, payload, size);
    reply_free(&reply);

    client_send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t off = 0; off < size; off += 5000) {
        n = snprintf(head, sizeof head, "%zx;ext=1\r\n", (size_t)5000);
        client_send(fd, head, (size_t)n);
        client_send(fd, payload + off, 5000);
        client_send_str(fd, "\r\n");
    }
    client_send_str(fd, "0\r\nTrailer: t\r\n\r\n");
    assert_int_equal(client_read_response(fd, &reply, 0), 0);
    assert_int_equal(reply.body.len, size);
    assert_memory_equal(reply.body.data, payload, size);
    reply_free(&reply);

    close(fd);
    fixture_stop(fx);
    free(payload);
}

static void expect_error(fixture_t *fx, const char *request, size_t len, int status,
                         const char *code)
{
    int fd = client_connect(fx->port);
    reply_t reply;

    client_send(fd, request, len);
    assert_int_equal(client_read_response(fd, &reply, 1), 0);
    assert_int_equal(reply.status, status);
    assert_true(head_has(&reply, "Connection: close\r\n"));
    assert_non_null(strstr(reply.body.data, code));
    assert_int_equal(reply.eof_after, 1);
    assert_int_equal(atomic_load(&fx->handled), 0);
    reply_free(&reply);
    close(fd);
}

static void server_431_on_large_head(void **state)
{
    char request[2048];

    memset(request, 'a', sizeof request);
    memcpy(request, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ", 32);
    expect_error(*state, request, sizeof request, 431, "\"header_too_large\"");
}

/* A target that alone passes the head limit is a URI problem, not a header
 * one, whether or not its line end has arrived. */
static void server_414_on_long_target(void **state)
{
    char request[2048];

    memset(request, 'a', sizeof request);
    memcpy(request, "GET /", 5);
    expect_error(*state, request, sizeof request, 414, "\"uri_too_long\"");

    char whole[2200];
    memset(whole, 'a', sizeof whole);
    memcpy(whole, "GET /", 5);
    const char *tail = " HTTP/1.1\r\nHost: t\r\n\r\n";
    memcpy(whole + sizeof whole - strlen(tail), tail, strlen(tail));
    expect_error(*state, whole, sizeof whole, 414, "\"uri_too_long\"");
}

static void server_400_without_host(void **state)
{
    const char *request = "GET /hello HTTP/1.1\r\nAccept: */*\r\n\r\n";

    expect_error(*state, request, strlen(request), 400, "missing Host header");
}

static void server_400_on_two_hosts(void **state)
{
    const char *request = "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";

    expect_error(*state, request, strlen(request), 400, "more than one Host header");
}

static void server_431_on_many_headers(void **state)
{
    char request[1024] = "GET / HTTP/1.1\r\nHost: t\r\n";

    for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++)
        strcat(request, "A: b\r\n");
    strcat(request, "\r\n");
    expect_error(*state, request, strlen(request), 431, "\"header_too_large\"");
}

static void server_413_on_large_body(void **state)
{
    const char *request = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n";

    expect_error(*state, request, strlen(request), 413, "\"payload_too_large\"");
}

static void server_413_on_large_chunked_body(void **state)
{
    char request[4096];
    int n = snprintf(request, sizeof request,
                     "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n");

    memset(request + n, 'x', 1024);
    memcpy(request + n + 1024, "\r\n0\r\n\r\n", 7);
    expect_error(*state, request, (size_t)n + 1024 + 7, 413, "\"payload_too_large\"");
}

static void server_400_on_cl_and_te(void **state)
{
    const char *request = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";

    expect_error(*state, request, strlen(request), 400, "\"bad_request\"");
}

static void server_400_on_unknown_coding(void **state)
{
    const char *request = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n";

    expect_error(*state, request, strlen(request), 400, "\"unsupported_transfer_encoding\"");
}

static void server_400_on_bad_chunk(void **state)
{
    const char *request = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";

    expect_error(*state, request, strlen(request), 400, "\"bad_request\"");
}

static void server_disconnect_aborts(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);

    client_send_str(fd, "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(wait_for(&fx->handled, 1, 2000));
    assert_int_equal(atomic_load(&fx->closed_aborted), 0);
    close(fd);
    assert_true(wait_for(&fx->closed_aborted, 1, 2000));
    assert_int_equal(atomic_load(&fx->closed_ok), 0);
}

static void server_disconnect_mid_stream(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    char raw[512];

    client_send_str(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(recv(fd, raw, sizeof raw, 0) > 0);
    close(fd);
    assert_true(wait_for(&fx->closed_aborted, 1, 2000));
    assert_int_equal(atomic_load(&fx->closed_ok), 0);
}

/* A client that stops reading: the queue stays above the high-water mark
 * and the exchange is aborted after the write-stall timeout. */
static void server_write_stall_aborts(void **state)
{
    fixture_t *fx = *state;
    int small = 4096;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    struct timespec start;
    struct timespec end;

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);

    clock_gettime(CLOCK_MONOTONIC, &start);
    client_send_str(fd, "GET /endless HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(wait_for(&fx->closed_aborted, 1, 10000));
    clock_gettime(CLOCK_MONOTONIC, &end);

    long elapsed_ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    assert_true(elapsed_ms >= STALL_MS);
    assert_int_equal(atomic_load(&fx->closed_ok), 0);
    close(fd);
}

/* A new connection's first byte does not restart the head's clock: a
 * client that waits and then trickles its head gets no second timeout. */
static void server_header_timeout_from_accept(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    struct timespec start;
    struct timespec end;

    clock_gettime(CLOCK_MONOTONIC, &start);
    sleep_ms(200);
    client_send_str(fd, "G");
    assert_true(client_sees_eof(fd, 2000));
    clock_gettime(CLOCK_MONOTONIC, &end);

    long elapsed_ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    assert_true(elapsed_ms >= 250);
    assert_true(elapsed_ms < 450);
    assert_int_equal(atomic_load(&fx->handled), 0);
    close(fd);
}

static void server_header_timeout(void **state)
{
    fixture_t *fx = *state;
    int fd = client_connect(fx->port);
    struct timespec start;
    struct timespec end;

    clock_gettime(CLOCK_MONOTONIC, &start);
    client_send_str(fd, "GET / HTTP/1.1\r\nHost: t\r\n");
    sleep_ms(100);
    client_send_str(fd, "X-Slow: 1\r\n");
    assert_true(client_sees_eof(fd, 2000));
    clock_gettime(CLOCK_MONOTONIC, &end);

    long elapsed_ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    /* The timeout counts from the first byte, not from the last. */
    assert_true(elapsed_ms >= 250);
    assert_true(elapsed_ms < 1000);
    assert_int_equal(atomic_load(&fx->handled), 0);
    close(fd);
}

static void server_stop_aborts_open_exchange(void **state)
{
    http_limits_t limits;
    fixture_t *fx;

    (void)state;
    test_limits(&limits);
    fx = fixture_start(&limits);
    int fd = client_connect(fx->port);
    client_send_str(fd, "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(wait_for(&fx->handled, 1, 2000));

    uv_async_send(&fx->stop_async);
    pthread_join(fx->thread, NULL);
    assert_int_equal(atomic_load(&fx->closed_aborted), 1);
    assert_int_equal(atomic_load(&fx->loop_closed), 1);
    assert_true(client_sees_eof(fd, 2000));
    close(fd);
    free(fx);
}

static void server_connection_limit(void **state)
{
    http_limits_t limits;

    (void)state;
    test_limits(&limits);
    limits.max_connections = 1;
    fixture_t *fx = fixture_start(&limits);

    int first = client_connect(fx->port);
    reply_t reply;
    client_send_str(first, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read_response(first, &reply, 0), 0);
    reply_free(&reply);

    /* The refused connection gets a 503 and the close, and the first one
     * still works. */
    int second = client_connect(fx->port);
    assert_int_equal(client_read_response(second, &reply, 1), 0);
    assert_int_equal(reply.status, 503);
    assert_non_null(strstr(reply.body.data, "too_many_connections"));
    reply_free(&reply);
    close(second);

    client_send_str(first, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read_response(first, &reply, 0), 0);
    assert_int_equal(reply.status, 200);
    reply_free(&reply);
    close(first);
    fixture_stop(fx);
}

static void server_port_in_use(void **state)
{
    fixture_t *fx = *state;
    uv_loop_t loop;
    char err[256] = "";
    http_limits_t limits;

    test_limits(&limits);
    uv_loop_init(&loop);
    http_server_t *server = http_server_start(&loop, "127.0.0.1", fx->port, &limits,
                                              on_request, NULL, err, sizeof err);
    assert_null(server);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(server_whole_response, setup, teardown),
        cmocka_unit_test_setup_teardown(server_keep_alive_second_request, setup, teardown),
        cmocka_unit_test_setup_teardown(server_pipelined_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(server_http10_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(server_handler_connection_close, setup, teardown),
        cmocka_unit_test_setup_teardown(server_http10_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(server_head_has_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(server_error_json_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(server_stream_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(server_backpressure_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(server_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(server_431_on_large_head, setup, teardown),
        cmocka_unit_test_setup_teardown(server_431_on_many_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(server_414_on_long_target, setup, teardown),
        cmocka_unit_test_setup_teardown(server_400_without_host, setup, teardown),
        cmocka_unit_test_setup_teardown(server_400_on_two_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(server_413_on_large_body, setup, teardown),
        cmocka_unit_test_setup_teardown(server_413_on_large_chunked_body, setup, teardown),
        cmocka_unit_test_setup_teardown(server_400_on_cl_and_te, setup, teardown),
        cmocka_unit_test_setup_teardown(server_400_on_unknown_coding, setup, teardown),
        cmocka_unit_test_setup_teardown(server_400_on_bad_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(server_disconnect_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(server_disconnect_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(server_header_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(server_header_timeout_from_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(server_write_stall_aborts, setup, teardown),
        cmocka_unit_test(server_stop_aborts_open_exchange),
        cmocka_unit_test(server_connection_limit),
        cmocka_unit_test(server_large_bodies),
        cmocka_unit_test_setup_teardown(server_port_in_use, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    memset(flood_piece, 'f', sizeof flood_piece);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
