/* Gateway lifecycle: the records and state threads, then the HTTP server on
 * a loop thread of its own; and the orderly stop of all three. */
#include "gateway/gateway.h"

#include <sodium.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_internal.h"
#include "util/api_client.h"
#include "util/log.h"

/* How long gateway_start waits for the first state, so that the first
 * requests are not refused for lack of it. */
#define GW_FIRST_STATE_WAIT_MS 5000

static void *gw_loop_thread(void *arg)
{
    gateway_t *gw = arg;

    uv_run(&gw->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Close what the loop thread owns, in order: client connections (whose
 * close callbacks abort the upstreams and record the requests as
 * cancelled), then the idle upstream connections, then the recorder, whose
 * last flush carries those records. */
static void gw_close_loop_side(gateway_t *gw)
{
    if (gw->http != NULL)
        http_server_stop(gw->http);
    gw->http = NULL;
    if (gw->pools != NULL)
        gw_pools_close(gw->pools);
    gw_recorder_close(gw->recorder);
    gw->recorder = NULL;
}

static void gw_on_stop(uv_async_t *async)
{
    gateway_t *gw = async->data;

    gw_close_loop_side(gw);
    uv_close((uv_handle_t *)&gw->stop_async, NULL);
}

static void gw_on_walk_close(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

/* Release what gateway_start built, in the reverse order. */
static void gw_free(gateway_t *gw, int loop_ready)
{
    if (loop_ready) {
        gw_close_loop_side(gw);
        uv_walk(&gw->loop, gw_on_walk_close, NULL);
        uv_run(&gw->loop, UV_RUN_DEFAULT);
        uv_loop_close(&gw->loop);
    }
    gw_pools_free(gw->pools);
    gw_proxy_free_spares(gw);
    gw_state_unref(gw->state);
    buf_free(&gw->request_scratch);
    buf_free(&gw->pending_head.extra);
    gw_poller_stop(gw->poller);
    gw_records_stop(gw->records);
    free(gw);
}

size_t gw_connection_limit(uint64_t nofile, size_t fallback)
{
    if (nofile == 0)
        return fallback;
    if (nofile <= GW_RESERVED_FDS + 2)
        return 1;
    return (size_t)((nofile - GW_RESERVED_FDS) / 2);
}

/* Each proxied request uses two descriptors, so the HTTP server's own
 * default could pass the process's limit and make accept fail instead. */
static void gw_set_connection_limit(http_limits_t *limits, size_t requested)
{
    struct rlimit nofile;
    uint64_t limit = 0;

    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY)
        limit = (uint64_t)nofile.rlim_cur;
    limits->max_connections = gw_connection_limit(limit, limits->max_connections);
    if (requested > 0 && requested <= limits->max_connections) {
        limits->max_connections = requested;
        log_info("gateway", "accepting at most %zu client connections (--max-connections)",
                 requested);
        return;
    }
    if (requested > 0)
        log_warn("gateway", "--max-connections %zu exceeds what the descriptor limit %llu "
                 "allows at two per proxied request; using %zu", requested,
                 (unsigned long long)limit, limits->max_connections);
    else if (limit > 0)
        log_info("gateway", "accepting at most %zu client connections: descriptor limit %llu, "
                 "two per proxied request and %d kept free", limits->max_connections,
                 (unsigned long long)limit, GW_RESERVED_FDS);
    else
        log_info("gateway", "accepting at most %zu client connections (no descriptor limit)",
                 limits->max_connections);
}

/* The HTTP server's limits from the gateway's options (zero fields keep the
 * server's defaults). */
static void gw_http_limits(const gateway_options_t *opts, http_limits_t *limits)
{
    const gateway_limits_t *in = &opts->limits;

    http_limits_default(limits);
    if (in->max_header_bytes > 0)
        limits->max_header_bytes = in->max_header_bytes;
    if (in->max_headers > 0)
        limits->max_headers = in->max_headers;
    if (in->max_body_bytes > 0)
        limits->max_body_bytes = in->max_body_bytes;
    if (in->header_timeout_ms > 0)
        limits->header_timeout_ms = in->header_timeout_ms;
    if (in->idle_timeout_ms > 0)
        limits->idle_timeout_ms = in->idle_timeout_ms;
    if (in->write_buffer_bytes > 0)
        limits->write_high_water = in->write_buffer_bytes;
    if (in->write_stall_timeout_ms > 0)
        limits->write_stall_timeout_ms = in->write_stall_timeout_ms;
    if (opts->write_stall_timeout_ms > 0)
        limits->write_stall_timeout_ms = opts->write_stall_timeout_ms;
    gw_set_connection_limit(limits, in->max_connections);
}

static void gw_upstream_limits(const gateway_limits_t *in, gw_upstream_limits_t *limits)
{
    gw_upstream_limits_default(limits);
    if (in->upstream_connect_timeout_ms > 0)
        limits->connect_timeout_ms = in->upstream_connect_timeout_ms;
    if (in->upstream_first_byte_timeout_ms > 0)
        limits->first_byte_timeout_ms = in->upstream_first_byte_timeout_ms;
    if (in->upstream_keepalive < 0)
        limits->max_idle = 0;
    else if (in->upstream_keepalive > 0)
        limits->max_idle = (size_t)in->upstream_keepalive;
}

static int gw_start_server(gateway_t *gw, const gateway_options_t *opts, char *err,
                           size_t err_size)
{
    http_limits_t limits;
    gw_upstream_limits_t upstream;
    const char *host = opts->listen_host ? opts->listen_host : "127.0.0.1";

    gw_upstream_limits(&opts->limits, &upstream);
    gw->pools = gw_pools_new(&gw->loop, &upstream);
    gw->recorder = gw_recorder_new(&gw->loop, gw->records);
    if (gw->pools == NULL || gw->recorder == NULL) {
        snprintf(err, err_size, "out of memory starting the gateway");
        return -1;
    }

    gw_http_limits(opts, &limits);
    gw->http = http_server_start(&gw->loop, host, opts->listen_port, &limits, gw_proxy_handle, gw,
                                 err, err_size);
    if (gw->http == NULL)
        return -1;
    gw->port = http_server_port(gw->http);

    gw->stop_async.data = gw;
    if (uv_async_init(&gw->loop, &gw->stop_async, gw_on_stop) != 0) {
        snprintf(err, err_size, "cannot create the gateway's stop handle");
        return -1;
    }
    return 0;
}

gateway_t *gateway_start(const gateway_options_t *opts, char *err, size_t err_size)
{
    if (opts->server_url == NULL || opts->server_url[0] == '\0') {
        snprintf(err, err_size, "missing server URL: pass --server URL or set NIMDECK_SERVER");
        return NULL;
    }
    if (sodium_init() < 0) {
        snprintf(err, err_size, "cannot initialise libsodium");
        return NULL;
    }

    gateway_t *gw = calloc(1, sizeof(*gw));
    if (gw == NULL) {
        snprintf(err, err_size, "out of memory starting the gateway");
        return NULL;
    }
    gw->state_max_age_ms = opts->state_max_age_ms > 0 ? opts->state_max_age_ms
                                                      : GW_STATE_MAX_AGE_MS;

    /* libcurl's global init leaves OpenSSL per-thread state in the thread
     * that runs it. Here that is the caller, not the detached state thread,
     * which may still be running when the process exits. */
    api_client_global_init();
    gw->records = gw_records_start(opts->server_url, opts->api_token, err, err_size);
    if (gw->records == NULL)
        goto fail;
    log_info("gateway", "gateway id %s", gw_records_gateway_id(gw->records));
    gw->poller = gw_poller_start(opts->server_url, opts->api_token, err, err_size);
    if (gw->poller == NULL)
        goto fail;

    if (uv_loop_init(&gw->loop) != 0) {
        snprintf(err, err_size, "cannot create the gateway's event loop");
        goto fail;
    }
    if (gw_start_server(gw, opts, err, err_size) != 0) {
        gw_free(gw, 1);
        return NULL;
    }

    /* Requests that arrive meanwhile wait in the listen backlog. */
    long rejected = 0;
    char why[512] = "";
    int first = gw_poller_wait_first(gw->poller, GW_FIRST_STATE_WAIT_MS, &rejected, why,
                                     sizeof(why));
    if (first < 0) {
        snprintf(err, err_size, "the server %s rejected the gateway's api token with HTTP %ld "
                 "(%s): the token is unknown, expired, revoked or not an admin's api token; "
                 "pass an admin api token with --token or NIMDECK_TOKEN (the server writes one "
                 "to DATA/admin-token)", opts->server_url, rejected, why);
        gw_free(gw, 1);
        return NULL;
    }
    if (first == 0)
        log_warn("gateway", "no state from %s after %d ms; responding 503 until it arrives",
                 opts->server_url, GW_FIRST_STATE_WAIT_MS);

    int rc = pthread_create(&gw->thread, NULL, gw_loop_thread, gw);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the gateway thread: %s", strerror(rc));
        gw_free(gw, 1);
        return NULL;
    }
    gw->thread_started = 1;
    return gw;

fail:
    gw_free(gw, 0);
    return NULL;
}

int gateway_port(const gateway_t *gateway)
{
    return gateway->port;
}

void gateway_stop(gateway_t *gateway)
{
    if (gateway == NULL)
        return;

    uv_async_send(&gateway->stop_async);
    pthread_join(gateway->thread, NULL);
    gateway->http = NULL;

    /* The loop ran dry, so everything is closed; the records thread then
     * posts the cancellations recorded during the shutdown. */
    gw_free(gateway, 1);
}
