/* A one-shot HTTP/1.1 client on libuv for talking to an instance: connect,
 * send one request, read the response head and body as they arrive. */
#ifndef NIMDECK_GATEWAY_GW_UPSTREAM_H
#define NIMDECK_GATEWAY_GW_UPSTREAM_H

#include <stddef.h>
#include <uv.h>

#include "http/parser.h"
#include "util/buf.h"

typedef struct gw_upstream gw_upstream_t;

typedef enum {
    GW_UPSTREAM_DONE,            /* the whole response arrived */
    GW_UPSTREAM_CONNECT_FAILED,  /* no connection: the instance never saw the request */
    GW_UPSTREAM_FAILED,          /* broken connection, timeout or malformed response */
} gw_upstream_result_t;

/* Callbacks run on the loop thread. Each may call gw_upstream_pause, _resume
 * or _abort on the upstream it is given. */
typedef struct {
    /* The TCP connection is up and the request is about to be sent; may be
     * NULL. Not called when the connect fails. */
    void (*on_connect)(void *user);
    /* The final response head (1xx heads are skipped). resp and the strings
     * it points to are valid only during the call. */
    void (*on_head)(void *user, const http_response_t *resp);
    /* Body bytes, already de-chunked, in arrival order. */
    void (*on_body)(void *user, const char *data, size_t len);
    /* Called once, unless gw_upstream_abort came first. detail explains a
     * failure ("" on success). The upstream is freed after it returns. */
    void (*on_end)(void *user, gw_upstream_result_t result, const char *detail);
} gw_upstream_callbacks_t;

/* Connect to host_port ("127.0.0.1:8000", "[::1]:8000" or
 * "localhost:8000") and send request (taken over and emptied). head_only:
 * the request was HEAD, so the response has no body whatever its headers.
 * connect_timeout_ms bounds the TCP connect. Returns NULL and writes a
 * message into err when host_port is not a literal address or memory runs
 * out; later failures arrive through on_end. */
gw_upstream_t *gw_upstream_start(uv_loop_t *loop, const char *host_port, buf_t *request,
                                 int head_only, uint64_t connect_timeout_ms,
                                 const gw_upstream_callbacks_t *callbacks, void *user,
                                 char *err, size_t err_size);

/* Stop and restart reading from the instance (backpressure from the client). */
void gw_upstream_pause(gw_upstream_t *upstream);
void gw_upstream_resume(gw_upstream_t *upstream);

/* Close the connection now; no callback runs afterwards. The memory is
 * released once libuv has closed the handles. */
void gw_upstream_abort(gw_upstream_t *upstream);

#endif
