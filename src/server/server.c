/* The server's lifetime: start-up, its loop thread and shutdown. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "web/web.h"

/* How often the idle checker runs, in ms. */
#define SERVER_IDLE_TICK_MS 250

static void server_on_handle_closed(uv_handle_t *handle)
{
    (void)handle;
}

static void server_on_stop(uv_async_t *async)
{
    server_t *srv = async->data;

    /* Closing the HTTP server closes every connection, which ends every
     * parked long poll; the loop then runs out of handles and returns. */
    if (srv->http != NULL)
        http_server_stop(srv->http);
    srv->http = NULL;
    uv_close((uv_handle_t *)&srv->idle_timer, server_on_handle_closed);
    uv_close((uv_handle_t *)&srv->stop_async, server_on_handle_closed);
}

static void server_thread_main(void *arg)
{
    server_t *srv = arg;

    uv_run(&srv->loop, UV_RUN_DEFAULT);
}

static void server_free(server_t *srv)
{
    store_close(srv->store);
    /* Closing the descriptor releases the lock, after the store is closed. */
    if (srv->lock_fd >= 0)
        close(srv->lock_fd);
    vault_key_wipe(&srv->vault_key);
    sodium_memzero(srv->admin_token, sizeof(srv->admin_token));
    free(srv->activity);
    free(srv->stops_sent);
    json_decref(srv->lost_agents);
    free(srv);
}

static int server_copy_options(server_t *srv, const server_options_t *opts, char *err,
                               size_t err_size)
{
    const char *data = opts->data_dir ? opts->data_dir : "./nimdeck-data";
    const char *host = opts->listen_host ? opts->listen_host : "127.0.0.1";
    const char *gateway = opts->gateway_url ? opts->gateway_url : "http://127.0.0.1:8471";

    if ((size_t)snprintf(srv->data_dir, sizeof(srv->data_dir), "%s", data) >=
            sizeof(srv->data_dir) ||
        (size_t)snprintf(srv->listen_host, sizeof(srv->listen_host), "%s", host) >=
            sizeof(srv->listen_host) ||
        (size_t)snprintf(srv->gateway_url, sizeof(srv->gateway_url), "%s", gateway) >=
            sizeof(srv->gateway_url)) {
        snprintf(err, err_size, "a server option is too long (data folder, host or gateway URL)");
        return -1;
    }

    /* Endpoints are built as gateway_url + "/serve/...": drop a trailing slash. */
    size_t len = strlen(srv->gateway_url);
    while (len > 0 && srv->gateway_url[len - 1] == '/')
        srv->gateway_url[--len] = '\0';

    if (opts->web_root != NULL && opts->web_root[0] != '\0' &&
        web_check_root(opts->web_root, srv->web_root, sizeof(srv->web_root), err, err_size) != 0)
        return -1;

    srv->listen_port = opts->listen_port;
    srv->active_window_ms = (opts->active_window_s > 0 ? opts->active_window_s : 60) * 1000LL;
    srv->log_cap = opts->log_lines_max > 0 ? opts->log_lines_max : STORE_LOG_CAP_DEFAULT;
    srv->agent_timeout_ms =
        (opts->agent_timeout_s > 0 ? opts->agent_timeout_s : SERVER_AGENT_TIMEOUT_S) * 1000LL;
    srv->retention_ms = (opts->retention_days > 0 ? opts->retention_days : SERVER_RETENTION_DAYS) *
                        24LL * 3600 * 1000;
    srv->downsample_after_ms =
        (opts->downsample_after_hours > 0 ? opts->downsample_after_hours
                                          : SERVER_DOWNSAMPLE_AFTER_HOURS) *
        3600LL * 1000;
    return 0;
}

static int server_start_loop(server_t *srv, char *err, size_t err_size)
{
    http_limits_t limits;

    http_limits_default(&limits);
    /* Long polls wait up to 30 s on an otherwise idle connection. */
    limits.idle_timeout_ms = 75000;

    srv->http = http_server_start(&srv->loop, srv->listen_host, srv->listen_port, &limits,
                                  server_on_request, srv, err, err_size);
    if (srv->http == NULL)
        return -1;
    snprintf(srv->url, sizeof(srv->url), "http://%s:%d", srv->listen_host,
             http_server_port(srv->http));

    uv_timer_init(&srv->loop, &srv->idle_timer);
    srv->idle_timer.data = srv;
    uv_timer_start(&srv->idle_timer, server_idle_tick, SERVER_IDLE_TICK_MS, SERVER_IDLE_TICK_MS);
    uv_async_init(&srv->loop, &srv->stop_async, server_on_stop);
    srv->stop_async.data = srv;

    if (uv_thread_create(&srv->thread, server_thread_main, srv) != 0) {
        snprintf(err, err_size, "cannot start the server thread");
        return -1;
    }
    srv->thread_started = 1;
    return 0;
}

server_t *server_start(const server_options_t *opts, char *err, size_t err_size)
{
    server_t *srv = calloc(1, sizeof(*srv));

    if (srv == NULL) {
        snprintf(err, err_size, "out of memory starting the server");
        return NULL;
    }
    srv->lock_fd = -1;
    if (sodium_init() < 0) {
        snprintf(err, err_size, "cannot initialise libsodium");
        free(srv);
        return NULL;
    }
    if (server_copy_options(srv, opts, err, err_size) != 0 ||
        server_bootstrap(srv, err, err_size) != 0) {
        server_free(srv);
        return NULL;
    }

    srv->generation = clock_wall_ms();
    srv->started_at = srv->generation;
    if (uv_loop_init(&srv->loop) != 0) {
        snprintf(err, err_size, "cannot create the server's event loop");
        server_free(srv);
        return NULL;
    }
    if (server_start_loop(srv, err, err_size) != 0) {
        if (srv->http != NULL) {
            http_server_stop(srv->http);
            uv_close((uv_handle_t *)&srv->idle_timer, server_on_handle_closed);
            uv_close((uv_handle_t *)&srv->stop_async, server_on_handle_closed);
        }
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        uv_loop_close(&srv->loop);
        server_free(srv);
        return NULL;
    }

    log_info(SERVER_LOG, "listening on %s (data %s, endpoints under %s)", srv->url,
             srv->data_dir, srv->gateway_url);
    if (srv->web_root[0] != '\0')
        log_info(SERVER_LOG, "serving the web UI from %s, not from the binary", srv->web_root);
    return srv;
}

const char *server_url(const server_t *server)
{
    return server->url;
}

const char *server_admin_token(const server_t *server)
{
    return server->admin_token;
}

void server_stop(server_t *server)
{
    if (server == NULL)
        return;

    uv_async_send(&server->stop_async);
    uv_thread_join(&server->thread);
    if (uv_loop_close(&server->loop) != 0)
        log_warn(SERVER_LOG, "the server loop still had open handles at shutdown");
    server_free(server);
    log_info(SERVER_LOG, "stopped");
}
