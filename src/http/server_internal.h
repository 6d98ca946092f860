/* Connection and exchange state shared by the HTTP server files; not part of
 * the public interface.
 *
 * Lifetimes: a connection owns one read buffer and at most one exchange. An
 * exchange is allocated when its request is complete and freed right after
 * its close callback returns. A connection is freed in the close callback of
 * its last libuv handle, so every libuv callback (write, shutdown, timer)
 * still finds it valid; write callbacks never look at an exchange that may
 * have been freed, they go through conn->ex. */
#ifndef NIMDECK_HTTP_SERVER_INTERNAL_H
#define NIMDECK_HTTP_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "http/http.h"
#include "util/buf.h"

typedef struct http_conn http_conn_t;

typedef enum {
    CONN_HEAD,     /* waiting for (the rest of) a request head */
    CONN_BODY,     /* head parsed, reading the body */
    CONN_EXCHANGE, /* request handed to the handler, response not yet written */
    CONN_LINGER,   /* response written, FIN sent, discarding input until EOF */
    CONN_CLOSED,   /* uv_close called on the handles */
} http_conn_state_t;

struct http_exchange {
    http_request_t req;
    /* Everything from conn on is zeroed when a pooled exchange is reused. */
    http_conn_t *conn;
    http_close_fn on_close;
    void *close_user;
    http_drain_fn on_drain;
    void *drain_user;
    int is_head;        /* HEAD request: the response has no body */
    int keep_alive;     /* connection stays open after this response */
    int started;        /* response head queued */
    int finished;       /* whole response queued */
    int chunked;        /* streamed with chunked encoding */
    int body_allowed;   /* status permits a body (not 1xx, 204, 304) */
    int want_drain;     /* http_stream_write returned 1 */
    int closing;        /* close callback running or done */
    http_exchange_t *next_free; /* link in the server's pool of spare exchanges */
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    http_server_t *server;
    http_conn_t *prev;
    http_conn_t *next;
    http_conn_state_t state;
    int handles_open;    /* tcp and timer until their close callbacks */
    int reading;         /* uv_read_start active */
    int head_timer;      /* the timer runs header_timeout_ms for the current head */
    int doomed;          /* a write failed: close on the next timer wake-up */
    char peer[INET6_ADDRSTRLEN];

    char *rbuf;          /* request head, body and pipelined bytes */
    size_t rlen;
    size_t rcap;
    int rbuf_moved;      /* rbuf reallocated since the head was parsed */
    size_t scan;         /* bytes of rbuf already searched for a line end */

    size_t head_len;     /* while CONN_BODY and CONN_EXCHANGE */
    size_t msg_end;      /* CONN_EXCHANGE: offset of the NUL after the body */
    int64_t content_length;
    int chunked;
    http_chunked_t chunk_dec;
    buf_t body;          /* decoded chunked body, reused across requests */

    http_exchange_t *ex;
    size_t write_queued; /* bytes handed to uv_write and not yet completed */
    size_t writes_pending;

    /* Write-stall watch, on during an exchange while write_queued is above
     * write_high_water or the writer waits for the drain callback. */
    int stall_watch;
    uint64_t stall_since;    /* uv_now() of the last write progress seen */
    size_t stall_queue;      /* libuv's unwritten byte count at stall_since */
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    http_limits_t limits;
    http_handler_fn handler;
    void *user;
    int port;
    int stopping;
    int listener_open;
    http_conn_t *conns;
    size_t num_conns;
    size_t rejected_since_log;   /* connections closed over max_connections */
    uint64_t last_reject_log_ms; /* uv_now() of the last such log line */
    http_exchange_t *free_ex;    /* spare exchanges, so a request allocates none */
    size_t num_free_ex;
    char *free_rbufs;            /* spare read buffers (server.c) */
    size_t num_free_rbufs;
};

/* Take an exchange from the server's pool (zeroed from conn on), or allocate
 * one. Returns NULL when memory runs out. */
http_exchange_t *http_exchange_get(http_server_t *server);

/* Return an exchange to the pool, or free it when the pool is full. */
void http_exchange_put(http_server_t *server, http_exchange_t *ex);

/* A write request with its bytes stored right after it. */
typedef struct {
    uv_write_t req;
    size_t len;
    char data[];
} http_write_t;

/* Copy the segments into one write request and queue it. Returns 0, or -1
 * when the connection is closing or the write failed. A failed connection
 * is closed on the next loop iteration, never inside the caller's stack. */
int http_conn_write(http_conn_t *conn, const uv_buf_t *segs, size_t nsegs);

/* Run the connection's timer callback on the next loop iteration: used to
 * finish or close outside the caller's stack. */
void http_conn_defer(http_conn_t *conn);

/* Close the connection now; an open exchange ends with aborted = 1. */
void http_conn_close(http_conn_t *conn);

/* Send FIN once the queued writes are out, then discard input until the
 * client closes (or a short linger time passes) and close. */
void http_conn_linger(http_conn_t *conn);

/* Send a JSON error response outside any exchange and close afterwards. */
void http_conn_send_error(http_conn_t *conn, int status, const char *code,
                          const char *message);

/* Called by the response code when the exchange's last write completed. */
void http_conn_exchange_done(http_conn_t *conn);

/* Called after a write was queued (completed = 0) or completed (1): starts,
 * renews or ends the write-stall watch. */
void http_conn_watch_writes(http_conn_t *conn, int completed);

/* Start timing and reading a freshly accepted connection. */
void http_conn_start(http_conn_t *conn);

/* Free the server once it is stopping and every handle has closed. */
void http_server_maybe_free(http_server_t *server);

/* Build the JSON error body; returns a malloc'd string or NULL. */
char *http_error_body(const char *code, const char *message, const char *field);

#endif
