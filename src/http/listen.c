/* HTTP server lifecycle: limits, listening, accepting connections and the
 * stop that tears everything down. */
#include "http/http.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_internal.h"
#include "util/log.h"

#define HTTP_LOG "http"
#define LISTEN_BACKLOG 511
/* Spare exchanges kept for reuse; more are freed. */
#define EXCHANGE_POOL_MAX 1024

void http_limits_default(http_limits_t *limits)
{
    limits->max_header_bytes = 16 * 1024;
    limits->max_headers = 64;
    limits->max_body_bytes = 16 * 1024 * 1024;
    limits->header_timeout_ms = 10000;
    limits->idle_timeout_ms = 60000;
    limits->max_connections = 10000;
    limits->write_high_water = 256 * 1024;
    limits->write_stall_timeout_ms = 60000;
}

/* Zero fields take their defaults, so callers may set only what they need. */
static void limits_fill(http_limits_t *out, const http_limits_t *in)
{
    http_limits_t def;

    http_limits_default(&def);
    if (in == NULL) {
        *out = def;
        return;
    }
    *out = *in;
    if (out->max_header_bytes == 0)
        out->max_header_bytes = def.max_header_bytes;
    if (out->max_headers == 0 || out->max_headers > HTTP_MAX_HEADERS)
        out->max_headers = HTTP_MAX_HEADERS;
    if (out->max_body_bytes == 0)
        out->max_body_bytes = def.max_body_bytes;
    if (out->header_timeout_ms == 0)
        out->header_timeout_ms = def.header_timeout_ms;
    if (out->idle_timeout_ms == 0)
        out->idle_timeout_ms = def.idle_timeout_ms;
    if (out->max_connections == 0)
        out->max_connections = def.max_connections;
    if (out->write_high_water == 0)
        out->write_high_water = def.write_high_water;
    if (out->write_stall_timeout_ms == 0)
        out->write_stall_timeout_ms = def.write_stall_timeout_ms;
}

http_exchange_t *http_exchange_get(http_server_t *server)
{
    http_exchange_t *ex = server->free_ex;

    if (ex == NULL)
        return calloc(1, sizeof(*ex));
    server->free_ex = ex->next_free;
    server->num_free_ex--;
    memset(&ex->conn, 0, sizeof(*ex) - offsetof(http_exchange_t, conn));
    return ex;
}

void http_exchange_put(http_server_t *server, http_exchange_t *ex)
{
    if (server->num_free_ex >= EXCHANGE_POOL_MAX || server->stopping) {
        free(ex);
        return;
    }
    ex->next_free = server->free_ex;
    server->free_ex = ex;
    server->num_free_ex++;
}

void http_server_maybe_free(http_server_t *server)
{
    if (!server->stopping || server->listener_open || server->num_conns > 0)
        return;
    while (server->free_ex != NULL) {
        http_exchange_t *ex = server->free_ex;
        server->free_ex = ex->next_free;
        free(ex);
    }
    while (server->free_rbufs != NULL) {
        char *rbuf = server->free_rbufs;
        memcpy(&server->free_rbufs, rbuf, sizeof(char *));
        free(rbuf);
    }
    free(server);
}

static void conn_set_peer(http_conn_t *conn)
{
    struct sockaddr_storage addr;
    int len = sizeof addr;

    snprintf(conn->peer, sizeof conn->peer, "unknown");
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&addr, &len) != 0)
        return;
    if (addr.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&addr, conn->peer, sizeof conn->peer);
    else if (addr.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&addr, conn->peer, sizeof conn->peer);
}

/* Log rejected connections at most once a second, with the count, so that
 * a connection flood does not flood the log too. */
static void log_rejected_connection(http_server_t *server)
{
    uint64_t now = uv_now(server->loop);

    server->rejected_since_log++;
    if (server->last_reject_log_ms != 0 && now - server->last_reject_log_ms < 1000)
        return;
    log_warn(HTTP_LOG,
             "closed %zu new connection(s) on port %d: max_connections (%zu) reached",
             server->rejected_since_log, server->port, server->limits.max_connections);
    server->rejected_since_log = 0;
    server->last_reject_log_ms = now;
}

/* Refuse a connection over max_connections: send a 503 if the socket takes
 * it at once, and close. The request is never read, so no memory or timer
 * is spent on it, and the client may see a reset instead of the 503. */
static void reject_connection(http_conn_t *conn)
{
    static const char body[] = "{\"error\":{\"code\":\"too_many_connections\",\"message\":"
                               "\"the server has reached its maximum number of connections; "
                               "retry later\"}}";
    static const char head[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: application/json\r\nRetry-After: 1\r\n"
                               "Connection: close\r\nContent-Length: ";
    char length[32];
    int length_len = snprintf(length, sizeof(length), "%zu\r\n\r\n", sizeof(body) - 1);
    uv_buf_t segs[3] = {
        uv_buf_init((char *)head, sizeof(head) - 1),
        uv_buf_init(length, (unsigned)length_len),
        uv_buf_init((char *)body, sizeof(body) - 1),
    };

    uv_try_write((uv_stream_t *)&conn->tcp, segs, 3);
    http_conn_close(conn);
}

static void on_connection(uv_stream_t *listener, int status)
{
    http_server_t *server = listener->data;

    if (status < 0) {
        log_warn(HTTP_LOG, "accept failed on port %d: %s", server->port, uv_strerror(status));
        return;
    }

    http_conn_t *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        log_error(HTTP_LOG, "out of memory accepting a connection on port %d", server->port);
        return;
    }
    conn->server = server;
    conn->state = CONN_HEAD;
    uv_tcp_init(server->loop, &conn->tcp);
    uv_timer_init(server->loop, &conn->timer);
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->handles_open = 2;
    conn->next = server->conns;
    if (server->conns != NULL)
        server->conns->prev = conn;
    server->conns = conn;
    server->num_conns++;

    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        http_conn_close(conn);
        return;
    }
    if (server->num_conns > server->limits.max_connections) {
        log_rejected_connection(server);
        reject_connection(conn);
        return;
    }

    conn_set_peer(conn);
    uv_tcp_nodelay(&conn->tcp, 1);
    http_conn_start(conn);
}

static void on_listener_closed(uv_handle_t *handle)
{
    http_server_t *server = handle->data;

    server->listener_open = 0;
    http_server_maybe_free(server);
}

static int listen_on(http_server_t *server, const char *host, int port, char *err,
                     size_t err_size)
{
    struct sockaddr_storage addr;
    int rc;

    if (strchr(host, ':') != NULL)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) {
        snprintf(err, err_size, "invalid listen address \"%s\": use an IPv4 or IPv6 address",
                 host);
        return -1;
    }

    rc = uv_tcp_bind(&server->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server->listener, LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        snprintf(err, err_size, "cannot listen on %s:%d: %s; pick another address or port",
                 host, port, uv_strerror(rc));
        return -1;
    }

    int len = sizeof addr;
    uv_tcp_getsockname(&server->listener, (struct sockaddr *)&addr, &len);
    if (addr.ss_family == AF_INET6)
        server->port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    else
        server->port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
    return 0;
}

http_server_t *http_server_start(uv_loop_t *loop, const char *host, int port,
                                 const http_limits_t *limits, http_handler_fn handler,
                                 void *user, char *err, size_t err_size)
{
    if (handler == NULL || host == NULL || port < 0 || port > 65535) {
        snprintf(err, err_size, "invalid server arguments (host, port %d or handler)", port);
        return NULL;
    }

    http_server_t *server = calloc(1, sizeof *server);
    if (server == NULL) {
        snprintf(err, err_size, "out of memory starting the HTTP server");
        return NULL;
    }
    server->loop = loop;
    limits_fill(&server->limits, limits);
    server->handler = handler;
    server->user = user;
    uv_tcp_init(loop, &server->listener);
    server->listener.data = server;
    server->listener_open = 1;

    if (listen_on(server, host, port, err, err_size) != 0) {
        /* The handle is freed by its close callback on the next loop run. */
        server->stopping = 1;
        uv_close((uv_handle_t *)&server->listener, on_listener_closed);
        return NULL;
    }
    return server;
}

int http_server_port(const http_server_t *server)
{
    return server->port;
}

void http_server_stop(http_server_t *server)
{
    if (server == NULL || server->stopping)
        return;
    server->stopping = 1;
    uv_close((uv_handle_t *)&server->listener, on_listener_closed);

    /* Closing never unlinks synchronously (that happens in the handles'
     * close callbacks), so walking the list while closing is safe. */
    for (http_conn_t *conn = server->conns; conn != NULL; conn = conn->next)
        http_conn_close(conn);
}
