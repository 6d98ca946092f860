/* Gateway internals shared by its files: the running gateway and the
 * request handler. Not part of the public interface. */
#ifndef NIMDECK_GATEWAY_GW_INTERNAL_H
#define NIMDECK_GATEWAY_GW_INTERNAL_H

#include <pthread.h>
#include <uv.h>

#include "gateway/gateway.h"
#include "gateway/gw_poll.h"
#include "gateway/gw_recorder.h"
#include "gateway/gw_records.h"
#include "gateway/gw_request.h"
#include "gateway/gw_upstream.h"
#include "http/http.h"

/* Maximum size of a non-streamed completion body kept to read its usage
 * object. A larger body is still forwarded whole, but without token counts. */
#define GW_MAX_USAGE_BODY (4u * 1024 * 1024)

typedef struct gw_proxy gw_proxy_t;

struct gateway {
    uv_loop_t loop;
    uv_async_t stop_async;     /* wakes the loop thread to shut the server down */
    pthread_t thread;
    int thread_started;
    http_server_t *http;
    int port;
    gw_poller_t *poller;
    gw_records_t *records;
    int64_t state_max_age_ms;
    int64_t stale_logged_ms;   /* loop thread: last warning about a stale state */
    int64_t upstream_logged_ms;   /* loop thread: last warning about a failed upstream */
    size_t upstream_unlogged;     /* loop thread: failures not logged since then */

    /* Loop thread only. */
    gw_pools_t *pools;         /* keep-alive connections to instances */
    gw_recorder_t *recorder;   /* batches records without locks */
    gw_state_t *state;         /* the snapshot in use, with a reference */
    int64_t state_version;     /* gw_poller_version when state was taken */
    buf_t request_scratch;     /* upstream request being built (swapped with the upstream's) */
    /* The response head of the request being read, held back until the
     * body bytes of the same read can go out with it in one write. */
    gw_response_head_t pending_head;
    gw_proxy_t *free_proxies;  /* spare request structs */
    size_t num_free_proxies;
};

/* Number of descriptors kept free for everything except client connections,
 * such as logs, the store, the state and records threads' connections, and
 * libuv's own. */
#define GW_RESERVED_FDS 64

/* Return the maximum number of client connections that fit under a
 * descriptor limit of nofile, at two descriptors each (client and
 * instance) after GW_RESERVED_FDS, and at least 1. For nofile 0
 * (unlimited) it returns fallback. */
size_t gw_connection_limit(uint64_t nofile, size_t fallback);

/* Handle every HTTP request, on the loop thread. user is the gateway. */
void gw_proxy_handle(http_exchange_t *ex, void *user);

/* Free the spare request structs (at stop, once the loop ran dry). */
void gw_proxy_free_spares(gateway_t *gw);

/* Send an OpenAI-shaped error {"error": {"message", "type", "code"}}.
 * extra_headers is NULL or "Name: value\r\n" lines. */
void gw_reply_error(http_exchange_t *ex, int status, const char *type, const char *code,
                    const char *message, const char *extra_headers);

/* Build the JSON text of such an error, which the caller frees. Returns NULL
 * when memory runs out. */
char *gw_error_body(const char *type, const char *code, const char *message);

#endif
