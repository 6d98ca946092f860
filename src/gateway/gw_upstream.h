/* HTTP/1.1 client on libuv for talking to instances: one request at a time
 * per connection, with a pool of idle keep-alive connections per instance.
 * Everything here runs on the gateway's loop thread. */
#ifndef NIMDECK_GATEWAY_GW_UPSTREAM_H
#define NIMDECK_GATEWAY_GW_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gateway/gw_state.h"
#include "http/parser.h"
#include "util/buf.h"

typedef struct gw_upstream gw_upstream_t;
typedef struct gw_pools gw_pools_t;

typedef enum {
    GW_UPSTREAM_DONE,            /* the whole response arrived */
    GW_UPSTREAM_CONNECT_FAILED,  /* no connection: the instance never saw the request */
    GW_UPSTREAM_TIMEOUT,         /* connect or first-byte timeout, before any response byte */
    GW_UPSTREAM_FAILED,          /* broken connection, idle timeout or malformed response */
} gw_upstream_result_t;

typedef struct {
    uint64_t connect_timeout_ms;    /* TCP connect; default 10 s */
    uint64_t first_byte_timeout_ms; /* request sent to the first response byte; default 10 min */
    uint64_t read_timeout_ms;       /* between reads once the response started; default 10 min */
    size_t max_idle;                /* idle connections kept per instance; default 64, 0 disables */
    uint64_t idle_timeout_ms;       /* an idle pooled connection closes after; default 4 s */
} gw_upstream_limits_t;

/* Fill limits with the defaults above. */
void gw_upstream_limits_default(gw_upstream_limits_t *limits);

/* Counters for tests and logs, since the pools were created. */
typedef struct {
    uint64_t connects;   /* TCP connections opened */
    uint64_t reuses;     /* requests sent on a pooled connection */
    uint64_t retries;    /* requests resent on a new connection after a pooled one failed */
    size_t idle;         /* idle connections now, over all instances */
} gw_pools_stats_t;

/* Create the pools of one loop. A zero field of limits takes its default,
 * except max_idle, which is taken as given. Returns NULL when memory runs
 * out. */
gw_pools_t *gw_pools_new(uv_loop_t *loop, const gw_upstream_limits_t *limits);

/* Close the idle connections of every instance that left the state, changed
 * its upstream address or stopped serving; their busy connections close
 * when their requests end instead of returning to a pool. */
void gw_pools_prune(gw_pools_t *pools, const gw_state_t *state);

/* Close every idle connection and forget every pool (at shutdown; busy
 * connections end with their requests). The pools are freed by
 * gw_pools_free once the loop has run dry. */
void gw_pools_close(gw_pools_t *pools);
void gw_pools_free(gw_pools_t *pools);

void gw_pools_stats(const gw_pools_t *pools, gw_pools_stats_t *stats);

/* Callbacks run on the loop thread. Each may call gw_upstream_pause, _resume
 * or _abort on the upstream it is given. */
typedef struct {
    /* The connection is up and the request is about to be sent; may be NULL.
     * Runs inside gw_upstream_start when a pooled connection serves, never
     * when no connection could be made. */
    void (*on_connect)(void *user);
    /* The final response head (1xx heads are skipped). resp and the strings
     * it points to are valid only during the call. */
    void (*on_head)(void *user, const http_response_t *resp);
    /* Body bytes, already de-chunked, in arrival order; valid only during
     * the call. */
    void (*on_body)(void *user, const char *data, size_t len);
    /* The bytes of one read have been passed on and the response goes on;
     * may be NULL. Lets a caller combine what one read produced into one
     * write. */
    void (*on_read_end)(void *user);
    /* Called once, unless gw_upstream_abort came first, and never inside
     * gw_upstream_start. detail explains a failure ("" on success). The
     * upstream is released after it returns. */
    void (*on_end)(void *user, gw_upstream_result_t result, const char *detail);
} gw_upstream_callbacks_t;

/* Send request to instance instance_id at host_port ("127.0.0.1:8000",
 * "[::1]:8000" or "localhost:8000") on an idle pooled connection, or on a
 * new one. The request's bytes are taken: *request receives an empty buffer
 * (with the capacity of an earlier one) for the caller to reuse. The request
 * must not ask to close the connection. head_only: the request was HEAD, so
 * the response has no body whatever its headers.
 *
 * A connection returns to the pool only after a complete response that
 * allows keep-alive, with the request fully written and no extra bytes. A
 * pooled connection that fails before the first response byte (the instance
 * closed it as it was reused) gets one retry on a new connection. Returns NULL
 * and writes a message into err when host_port is not a literal address or
 * memory runs out; later failures arrive through on_end. */
gw_upstream_t *gw_upstream_start(gw_pools_t *pools, const char *instance_id,
                                 const char *host_port, buf_t *request, int head_only,
                                 const gw_upstream_callbacks_t *callbacks, void *user, char *err,
                                 size_t err_size);

/* Stop and restart reading from the instance (backpressure from the client). */
void gw_upstream_pause(gw_upstream_t *upstream);
void gw_upstream_resume(gw_upstream_t *upstream);

/* End the request now: its connection closes (it is never reused after an
 * incomplete response) and no callback runs afterwards. */
void gw_upstream_abort(gw_upstream_t *upstream);

#endif
