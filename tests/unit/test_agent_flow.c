/* End-to-end tests of the agent against a fake server in this process.
 * They cover registration, a lease through readiness to a requested stop, an
 * instance that exits on its own, agent_stop, a rejected token, lost final
 * statuses and a second registration. They also cover the clean-up of the
 * processes that a crashed agent left running. The fake also serves the
 * instance's health path, so the instance itself can be a plain shell. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "agent/agent_state.h"
#include "agent/agent_sync.h"
#include "agent/agent_workdir.h"
#include "util/buf.h"
#include "util/clock.h"

#define FAKE_TOKEN "nd_test_admin_token"
#define SECRET "sup3r-s3cret-value"

typedef struct {
    int listen_fd;
    int port;
    pthread_t thread;
    atomic_int stopping;
    int connections;        /* handler threads still running */

    pthread_mutex_t lock;
    pthread_cond_t changed;
    json_t *leases;         /* to hand out, in order */
    json_t *stops;          /* instance ids to stop */
    json_t *statuses;       /* every status report, with "id" added */
    json_t *lines;          /* every console line, with "id" added */
    json_t *registrations;  /* every registration body */
    int metrics;
    int health_status;      /* what /health returns */
    int reject_finals;      /* stopped/failed reports to reject with 503, or -1 for all */
    int rejected_finals;
    int forget_agent;       /* respond to the next work poll with 404 */
    json_t *register_stop;  /* "stop" list in registration responses */
} fake_t;

typedef struct {
    fake_t *fake;
    int fd;
} fake_conn_t;

static void fake_respond(int fd, int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    buf_t out = BUF_INIT;

    buf_printf(&out, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
               "Connection: close\r\n\r\n%s", status, text ? strlen(text) : 0, text ? text : "");
    ssize_t ignored = write(fd, out.data, out.len);
    (void)ignored;
    buf_free(&out);
    free(text);
    json_decref(body);
}

/* Read one request; returns 0 with method, path and body filled. */
static int fake_read_request(int fd, char *method, char *path, size_t path_size, buf_t *raw,
                             json_t **body)
{
    char chunk[4096];
    char *head_end = NULL;
    size_t content_length = 0;

    while (head_end == NULL) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0)
            return -1;
        buf_append(raw, chunk, (size_t)n);
        head_end = strstr(raw->data, "\r\n\r\n");
    }
    char *length = strcasestr(raw->data, "content-length:");
    if (length != NULL && length < head_end)
        content_length = strtoul(length + 15, NULL, 10);
    size_t head_len = (size_t)(head_end - raw->data) + 4;
    while (raw->len < head_len + content_length) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0)
            return -1;
        buf_append(raw, chunk, (size_t)n);
    }
    if (sscanf(raw->data, "%7s", method) != 1)
        return -1;
    const char *start = strchr(raw->data, ' ') + 1;
    size_t len = strcspn(start, " ");
    snprintf(path, path_size, "%.*s", (int)len, start);
    *body = content_length > 0 ? json_loadb(raw->data + head_len, content_length, 0, NULL) : NULL;
    return 0;
}

/* Long poll: wait up to wait_s for a lease or a stop. Returns NULL when
 * the fake is to forget the agent. */
static json_t *fake_work(fake_t *fake, int wait_s)
{
    int64_t deadline = clock_mono_ms() + wait_s * 1000;
    json_t *lease = json_null();

    pthread_mutex_lock(&fake->lock);
    while (json_array_size(fake->leases) == 0 && json_array_size(fake->stops) == 0 &&
           !fake->forget_agent && !atomic_load(&fake->stopping) && clock_mono_ms() < deadline) {
        int64_t step = clock_mono_ms() + 100;
        agent_cond_wait_until(&fake->changed, &fake->lock, step < deadline ? step : deadline);
    }
    if (fake->forget_agent) {
        fake->forget_agent = 0;
        pthread_mutex_unlock(&fake->lock);
        return NULL;
    }
    if (json_array_size(fake->leases) > 0) {
        lease = json_incref(json_array_get(fake->leases, 0));
        json_array_remove(fake->leases, 0);
    }
    /* A copy: the stop list changes while the response is written. */
    json_t *work = json_pack("{s:o, s:o}", "lease", lease, "stop", json_deep_copy(fake->stops));
    pthread_mutex_unlock(&fake->lock);
    return work;
}

/* Record a status or log lines posted for the instance in path. */
static void fake_record(fake_t *fake, const char *path, json_t *body)
{
    char id[64] = "";
    const char *rest = path + strlen("/api/v1/apps/");

    snprintf(id, sizeof(id), "%.*s", (int)strcspn(rest, "/"), rest);
    pthread_mutex_lock(&fake->lock);
    /* Copies, so that no reference count is shared with the connection's
     * thread. */
    body = json_deep_copy(body);
    if (strstr(path, "/status") != NULL) {
        json_object_set_new(body, "id", json_string(id));
        json_array_append(fake->statuses, body);
        const char *status = json_string_value(json_object_get(body, "status"));
        size_t i;
        json_t *stop;
        json_array_foreach(fake->stops, i, stop) {
            if ((strcmp(status, "stopped") == 0 || strcmp(status, "failed") == 0) &&
                strcmp(json_string_value(stop), id) == 0) {
                json_array_remove(fake->stops, i);
                break;
            }
        }
    } else {
        size_t i;
        json_t *line;
        json_array_foreach(json_object_get(body, "lines"), i, line) {
            json_object_set_new(line, "id", json_string(id));
            json_array_append(fake->lines, line);
        }
    }
    json_decref(body);
    pthread_cond_broadcast(&fake->changed);
    pthread_mutex_unlock(&fake->lock);
}

/* Whether to reject a status report with 503, as a server that lost it. */
static int fake_rejects_status(fake_t *fake, const json_t *body)
{
    const char *status = json_string_value(json_object_get(body, "status"));
    int reject = 0;

    if (status == NULL || (strcmp(status, "stopped") != 0 && strcmp(status, "failed") != 0))
        return 0;
    pthread_mutex_lock(&fake->lock);
    if (fake->reject_finals != 0) {
        reject = 1;
        fake->rejected_finals++;
        if (fake->reject_finals > 0)
            fake->reject_finals--;
        pthread_cond_broadcast(&fake->changed);
    }
    pthread_mutex_unlock(&fake->lock);
    return reject;
}

static void fake_route(fake_t *fake, int fd, const char *method, const char *path,
                       const char *raw, json_t *body)
{
    if (strcmp(path, "/health") == 0) {
        pthread_mutex_lock(&fake->lock);
        int status = fake->health_status;
        pthread_mutex_unlock(&fake->lock);
        return fake_respond(fd, status, json_object());
    }
    if (strstr(raw, "Authorization: Bearer " FAKE_TOKEN "\r\n") == NULL)
        return fake_respond(fd, 401, json_pack("{s:{s:s, s:s}}", "error", "code", "unauthorized",
                                               "message", "invalid token"));
    if (strcmp(method, "POST") == 0 && strcmp(path, "/api/v1/agents") == 0) {
        pthread_mutex_lock(&fake->lock);
        json_array_append_new(fake->registrations, json_deep_copy(body));
        json_t *stop = json_deep_copy(fake->register_stop);
        pthread_cond_broadcast(&fake->changed);
        pthread_mutex_unlock(&fake->lock);
        return fake_respond(fd, 200, json_pack("{s:s, s:O, s:o}", "id", "ag-1", "name",
                                               json_object_get(body, "name"), "stop", stop));
    }
    if (strncmp(path, "/api/v1/agents/ag-1/work?wait=", 30) == 0) {
        long wait_s = strtol(path + 30, NULL, 10);
        json_t *work = fake_work(fake, wait_s > 25 ? 25 : (int)wait_s);
        if (work == NULL)
            return fake_respond(fd, 404, json_pack("{s:{s:s, s:s}}", "error", "code", "not_found",
                                                   "message", "agent ag-1 not found"));
        return fake_respond(fd, 200, work);
    }
    if (strstr(path, "/status") != NULL && fake_rejects_status(fake, body))
        return fake_respond(fd, 503, json_pack("{s:{s:s, s:s}}", "error", "code", "unavailable",
                                               "message", "status lost"));
    if (strcmp(path, "/api/v1/agents/ag-1/metrics") == 0) {
        pthread_mutex_lock(&fake->lock);
        fake->metrics++;
        pthread_mutex_unlock(&fake->lock);
        return fake_respond(fd, 204, NULL);
    }
    if (strncmp(path, "/api/v1/apps/", 13) == 0 && body != NULL) {
        fake_record(fake, path, body);
        return fake_respond(fd, strstr(path, "/status") ? 200 : 204,
                            strstr(path, "/status") ? json_object() : NULL);
    }
    fake_respond(fd, 404, json_pack("{s:{s:s, s:s}}", "error", "code", "not_found", "message", path));
}

static void *fake_serve_conn(void *arg)
{
    fake_conn_t *conn = arg;
    fake_t *fake = conn->fake;
    char method[8], path[512];
    buf_t raw = BUF_INIT;
    json_t *body = NULL;

    if (fake_read_request(conn->fd, method, path, sizeof(path), &raw, &body) == 0)
        fake_route(fake, conn->fd, method, path, raw.data, body);
    json_decref(body);
    buf_free(&raw);
    close(conn->fd);
    free(conn);

    pthread_mutex_lock(&fake->lock);
    fake->connections--;
    pthread_cond_broadcast(&fake->changed);
    pthread_mutex_unlock(&fake->lock);
    return NULL;
}

static void *fake_accept_loop(void *arg)
{
    fake_t *fake = arg;

    while (!atomic_load(&fake->stopping)) {
        struct pollfd pfd = {fake->listen_fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept(fake->listen_fd, NULL, NULL);
        fake_conn_t *conn = malloc(sizeof(*conn));
        pthread_t thread;
        if (fd < 0 || conn == NULL) {
            free(conn);
            continue;
        }
        conn->fake = fake;
        conn->fd = fd;
        pthread_mutex_lock(&fake->lock);
        fake->connections++;
        pthread_mutex_unlock(&fake->lock);
        pthread_create(&thread, NULL, fake_serve_conn, conn);
        pthread_detach(thread);
    }
    return NULL;
}

static fake_t *fake_start(void)
{
    fake_t *fake = calloc(1, sizeof(*fake));
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t addr_len = sizeof(addr);

    assert_non_null(fake);
    pthread_mutex_init(&fake->lock, NULL);
    agent_cond_init(&fake->changed);
    fake->leases = json_array();
    fake->stops = json_array();
    fake->statuses = json_array();
    fake->lines = json_array();
    fake->registrations = json_array();
    fake->register_stop = json_array();

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fake->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fake->listen_fd >= 0);
    assert_int_equal(bind(fake->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fake->listen_fd, 64), 0);
    assert_int_equal(getsockname(fake->listen_fd, (struct sockaddr *)&addr, &addr_len), 0);
    fake->port = ntohs(addr.sin_port);
    fake->health_status = 200;
    assert_int_equal(pthread_create(&fake->thread, NULL, fake_accept_loop, fake), 0);
    return fake;
}

static void fake_stop(fake_t *fake)
{
    atomic_store(&fake->stopping, 1);
    pthread_join(fake->thread, NULL);
    pthread_mutex_lock(&fake->lock);
    pthread_cond_broadcast(&fake->changed);
    while (fake->connections > 0)
        pthread_cond_wait(&fake->changed, &fake->lock);
    pthread_mutex_unlock(&fake->lock);

    close(fake->listen_fd);
    json_decref(fake->leases);
    json_decref(fake->stops);
    json_decref(fake->statuses);
    json_decref(fake->lines);
    json_decref(fake->registrations);
    json_decref(fake->register_stop);
    pthread_mutex_destroy(&fake->lock);
    pthread_cond_destroy(&fake->changed);
    free(fake);
}

/* Queue a lease running `sh -c script` whose health path is the fake's. */
static void fake_lease(fake_t *fake, const char *id, const char *script)
{
    json_t *lease = json_pack("{s:s, s:{s:s, s:[s, s, s], s:i, s:s}, s:{s:s}, s:[s]}",
                              "id", id,
                              "config", "runtime", "process", "command", "/bin/sh", "-c", script,
                              "port", fake->port, "health_path", "/health",
                              "env", "API_KEY", SECRET,
                              "secrets", SECRET);

    pthread_mutex_lock(&fake->lock);
    json_array_append_new(fake->leases, lease);
    pthread_cond_broadcast(&fake->changed);
    pthread_mutex_unlock(&fake->lock);
}

static void fake_request_stop(fake_t *fake, const char *id)
{
    pthread_mutex_lock(&fake->lock);
    json_array_append_new(fake->stops, json_string(id));
    pthread_cond_broadcast(&fake->changed);
    pthread_mutex_unlock(&fake->lock);
}

/* Wait up to ms for a status report; returns a new reference or NULL. */
static json_t *fake_wait_status(fake_t *fake, const char *id, const char *status, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    json_t *found = NULL;

    pthread_mutex_lock(&fake->lock);
    while (found == NULL) {
        size_t i;
        json_t *report;
        json_array_foreach(fake->statuses, i, report) {
            if (strcmp(json_string_value(json_object_get(report, "id")), id) == 0 &&
                strcmp(json_string_value(json_object_get(report, "status")), status) == 0) {
                found = json_incref(report);
                break;
            }
        }
        if (found != NULL || clock_mono_ms() >= deadline)
            break;
        agent_cond_wait_until(&fake->changed, &fake->lock, deadline);
    }
    pthread_mutex_unlock(&fake->lock);
    return found;
}

/* All console text of an instance, one line each. */
static char *fake_console(fake_t *fake, const char *id)
{
    buf_t text = BUF_INIT;
    size_t i;
    json_t *line;

    buf_append_str(&text, "");
    pthread_mutex_lock(&fake->lock);
    json_array_foreach(fake->lines, i, line) {
        if (strcmp(json_string_value(json_object_get(line, "id")), id) == 0)
            buf_printf(&text, "%s:%s\n", json_string_value(json_object_get(line, "stream")),
                       json_string_value(json_object_get(line, "text")));
    }
    pthread_mutex_unlock(&fake->lock);
    return buf_steal(&text);
}

static agent_t *start_agent(fake_t *fake, const char *token, char *err, size_t err_size)
{
    char url[64];
    agent_options_t opts = {0};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", fake->port);
    opts.server_url = url;
    opts.api_token = token;
    opts.name = "test-agent";
    opts.metrics_interval_s = 1;
    return agent_start(&opts, err, err_size);
}

static void flow_lease_ready_stop(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "", upstream[64];
    agent_t *agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));
    json_t *report;

    (void)state;
    assert_non_null(agent);
    fake_lease(fake, "inst-1", "echo \"key=$API_KEY\"; echo to-stderr >&2; exec sleep 30");

    report = fake_wait_status(fake, "inst-1", "loading", 5000);
    assert_non_null(report);
    snprintf(upstream, sizeof(upstream), "127.0.0.1:%d", fake->port);
    assert_string_equal(json_string_value(json_object_get(report, "upstream")), upstream);
    assert_string_equal(json_string_value(json_object_get(report, "reason")), "starting process");
    json_decref(report);

    report = fake_wait_status(fake, "inst-1", "ready", 5000);
    assert_non_null(report);
    json_decref(report);

    int64_t stop_requested_at = clock_mono_ms();
    fake_request_stop(fake, "inst-1");
    report = fake_wait_status(fake, "inst-1", "stopped", 5000);
    assert_non_null(report);
    assert_true(clock_mono_ms() - stop_requested_at < 2000);
    assert_null(json_object_get(report, "reason"));
    json_decref(report);

    char *console = fake_console(fake, "inst-1");
    assert_non_null(strstr(console, "stdout:key=****\n"));
    assert_non_null(strstr(console, "stderr:to-stderr\n"));
    assert_null(strstr(console, SECRET));
    free(console);

    agent_stop(agent);
    fake_stop(fake);
}

static void flow_exit_reports_failed(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "";
    agent_t *agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));
    json_t *report;

    (void)state;
    assert_non_null(agent);
    fake_lease(fake, "inst-2", "echo one; echo \"leak $API_KEY\"; exit 7");

    report = fake_wait_status(fake, "inst-2", "failed", 5000);
    assert_non_null(report);
    const char *reason = json_string_value(json_object_get(report, "reason"));
    assert_non_null(reason);
    assert_non_null(strstr(reason, "process exited with status 7"));
    assert_non_null(strstr(reason, "one"));
    assert_non_null(strstr(reason, "leak ****"));
    assert_null(strstr(reason, SECRET));
    assert_int_equal(json_integer_value(json_object_get(report, "exit_code")), 7);
    json_decref(report);

    agent_stop(agent);
    fake_stop(fake);
}

static void flow_agent_stop_stops_instances(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "";
    agent_t *agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));
    json_t *report;

    (void)state;
    assert_non_null(agent);
    fake_lease(fake, "inst-3", "exec sleep 30");
    report = fake_wait_status(fake, "inst-3", "loading", 5000);
    assert_non_null(report);
    json_decref(report);

    int64_t started = clock_mono_ms();
    agent_stop(agent);
    assert_true(clock_mono_ms() - started < 3000);

    report = fake_wait_status(fake, "inst-3", "stopped", 0);
    assert_non_null(report);
    assert_string_equal(json_string_value(json_object_get(report, "reason")), "agent stopped");
    json_decref(report);
    fake_stop(fake);
}

static void flow_health_failures_fail(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "";
    agent_t *agent;
    json_t *report;

    (void)state;
    agent_health_probe_ms = 100;
    agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));
    assert_non_null(agent);
    fake_lease(fake, "inst-4", "exec sleep 30");
    report = fake_wait_status(fake, "inst-4", "ready", 5000);
    assert_non_null(report);
    json_decref(report);

    pthread_mutex_lock(&fake->lock);
    fake->health_status = 503;
    pthread_mutex_unlock(&fake->lock);
    report = fake_wait_status(fake, "inst-4", "failed", 5000);
    assert_non_null(report);
    assert_string_equal(json_string_value(json_object_get(report, "reason")), "health check failed");
    json_decref(report);

    agent_stop(agent);
    agent_health_probe_ms = 10000;
    fake_stop(fake);
}

static void flow_register_rejects_token(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "";

    (void)state;
    assert_null(start_agent(fake, "nd_wrong", err, sizeof(err)));
    assert_non_null(strstr(err, "401"));
    fake_stop(fake);
}

static void flow_env_hides_agent_settings(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "";
    agent_t *agent;
    json_t *report;

    (void)state;
    assert_int_equal(setenv("NIMDECK_TOKEN", FAKE_TOKEN, 1), 0);
    assert_int_equal(setenv("NIMDECK_SERVER", "http://127.0.0.1:1", 1), 0);
    agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));
    assert_non_null(agent);
    fake_lease(fake, "inst-5", "echo \"token=${NIMDECK_TOKEN:-unset}\"; "
               "echo \"server=${NIMDECK_SERVER:-unset}\"; echo \"said " FAKE_TOKEN "\"; exit 5");

    report = fake_wait_status(fake, "inst-5", "failed", 5000);
    assert_non_null(report);
    assert_null(strstr(json_string_value(json_object_get(report, "reason")), FAKE_TOKEN));
    json_decref(report);

    char *console = fake_console(fake, "inst-5");
    assert_non_null(strstr(console, "stdout:token=unset\n"));
    assert_non_null(strstr(console, "stdout:server=unset\n"));
    assert_non_null(strstr(console, "stdout:said ****\n"));
    assert_null(strstr(console, FAKE_TOKEN));
    free(console);

    agent_stop(agent);
    unsetenv("NIMDECK_TOKEN");
    unsetenv("NIMDECK_SERVER");
    fake_stop(fake);
}

static void flow_final_status_retried(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "";
    agent_t *agent;
    json_t *report;

    (void)state;
    agent_final_retry_ms = 50;
    fake->reject_finals = 3;
    agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));
    assert_non_null(agent);
    fake_lease(fake, "inst-6", "exit 3");

    report = fake_wait_status(fake, "inst-6", "failed", 5000);
    assert_non_null(report);
    assert_int_equal(json_integer_value(json_object_get(report, "exit_code")), 3);
    json_decref(report);
    pthread_mutex_lock(&fake->lock);
    assert_int_equal(fake->rejected_finals, 3);
    pthread_mutex_unlock(&fake->lock);

    agent_stop(agent);
    agent_final_retry_ms = 1000;
    fake_stop(fake);
}

/* Wait up to ms until the agent has given up retrying the final status of
 * id. Returns 1 when it has. */
static int wait_final_given_up(agent_t *agent, const char *id, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    int given_up = 0;

    while (!given_up && clock_mono_ms() < deadline) {
        pthread_mutex_lock(&agent->lock);
        for (unsigned i = 0; i < AGENT_ENDED_IDS; i++) {
            const agent_final_t *entry = &agent->ended[i];
            if (strcmp(entry->id, id) == 0 && entry->attempts > 0 && !entry->pending)
                given_up = 1;
        }
        pthread_mutex_unlock(&agent->lock);
        if (!given_up)
            usleep(20000);
    }
    return given_up;
}

static void flow_stop_resends_final(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "";
    agent_t *agent;
    json_t *report;

    (void)state;
    agent_final_retry_ms = 20;
    agent_final_retry_window_ms = 200;
    fake->reject_finals = -1;
    agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));
    assert_non_null(agent);
    fake_lease(fake, "inst-7", "echo last words; exit 4");
    assert_true(wait_final_given_up(agent, "inst-7", 5000));

    pthread_mutex_lock(&fake->lock);
    assert_true(fake->rejected_finals >= 2);
    fake->reject_finals = 0;
    pthread_mutex_unlock(&fake->lock);
    fake_request_stop(fake, "inst-7");

    report = fake_wait_status(fake, "inst-7", "failed", 3000);
    assert_non_null(report);
    const char *reason = json_string_value(json_object_get(report, "reason"));
    assert_non_null(reason);
    assert_non_null(strstr(reason, "process exited with status 4"));
    assert_non_null(strstr(reason, "last words"));
    assert_int_equal(json_integer_value(json_object_get(report, "exit_code")), 4);
    json_decref(report);

    agent_stop(agent);
    agent_final_retry_ms = 1000;
    agent_final_retry_window_ms = 5 * 60 * 1000;
    fake_stop(fake);
}

static void flow_reregister_keeps_running(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "";
    agent_t *agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));
    json_t *report;

    (void)state;
    assert_non_null(agent);
    fake_lease(fake, "inst-8", "exec sleep 30");
    report = fake_wait_status(fake, "inst-8", "loading", 5000);
    assert_non_null(report);
    json_decref(report);

    int64_t deadline = clock_mono_ms() + 5000;
    pthread_mutex_lock(&fake->lock);
    assert_int_equal(json_array_size(fake->registrations), 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(fake->registrations, 0),
                                                     "running")), 0);
    fake->forget_agent = 1;
    pthread_cond_broadcast(&fake->changed);
    while (json_array_size(fake->registrations) < 2 && clock_mono_ms() < deadline)
        agent_cond_wait_until(&fake->changed, &fake->lock, deadline);
    assert_int_equal(json_array_size(fake->registrations), 2);
    json_t *running = json_object_get(json_array_get(fake->registrations, 1), "running");
    assert_int_equal(json_array_size(running), 1);
    assert_string_equal(json_string_value(json_array_get(running, 0)), "inst-8");
    pthread_mutex_unlock(&fake->lock);

    agent_stop(agent);
    fake_stop(fake);
}

/* A server that declared the agent lost responds to its next poll with 404
 * and lists the ended instance in the registration's "stop" list. The agent
 * must then stop that process. */
static void flow_register_stop_ends_process(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "";
    agent_t *agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));
    json_t *report;

    (void)state;
    assert_non_null(agent);
    fake_lease(fake, "inst-12", "exec sleep 30");
    report = fake_wait_status(fake, "inst-12", "loading", 5000);
    assert_non_null(report);
    json_decref(report);

    pthread_mutex_lock(&fake->lock);
    json_array_append_new(fake->register_stop, json_string("inst-12"));
    fake->forget_agent = 1;
    pthread_cond_broadcast(&fake->changed);
    pthread_mutex_unlock(&fake->lock);

    report = fake_wait_status(fake, "inst-12", "stopped", 5000);
    assert_non_null(report);
    json_decref(report);
    pthread_mutex_lock(&fake->lock);
    assert_int_equal(json_array_size(fake->registrations), 2);
    assert_int_equal(json_array_size(fake->stops), 0);
    pthread_mutex_unlock(&fake->lock);

    agent_stop(agent);
    fake_stop(fake);
}

/* A final status of id, stopped or failed; a new reference or NULL. */
static json_t *fake_wait_final(fake_t *fake, const char *id, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    json_t *report = NULL;

    while (report == NULL && clock_mono_ms() < deadline) {
        report = fake_wait_status(fake, id, "stopped", 50);
        if (report == NULL)
            report = fake_wait_status(fake, id, "failed", 0);
    }
    return report;
}

/* Stops that arrive before the start, during it and after the exit: the
 * sanitizer builds check the instance's fields for data races here. */
static void flow_stop_races_exit(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "", id[32];
    agent_t *agent = start_agent(fake, FAKE_TOKEN, err, sizeof(err));

    (void)state;
    assert_non_null(agent);
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "race-%d", i);
        fake_lease(fake, id, i % 2 == 0 ? "exit 0" : "exec sleep 30");
        fake_request_stop(fake, id);
    }
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "race-%d", i);
        json_t *report = fake_wait_final(fake, id, 5000);
        if (report == NULL)
            fail_msg("no final status for %s", id);
        json_decref(report);
    }

    agent_stop(agent);
    fake_stop(fake);
}

/* A crashed agent never clears its state file: record a running process
 * group, drop the state without stopping anything, and start an agent of
 * the same name, which must kill the group before it registers. */
static void flow_start_kills_left_groups(void **state)
{
    fake_t *fake = fake_start();
    char err[512] = "", url[64];
    int status = 0;

    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    usleep(50000);

    /* The agent keys its state by name and server address. */
    char state_key[128];
    snprintf(state_key, sizeof(state_key), "flow-crash-agent@127.0.0.1:%d", fake->port);
    agent_state_t *crashed = agent_state_open(state_key);
    assert_non_null(crashed);
    assert_int_equal(agent_state_add(crashed, pid, "inst-left", NULL), 0);
    agent_state_close(crashed);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);

    agent_options_t opts = {0};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", fake->port);
    opts.server_url = url;
    opts.api_token = FAKE_TOKEN;
    opts.name = "flow-crash-agent";
    agent_t *agent = agent_start(&opts, err, sizeof(err));
    assert_non_null(agent);

    int64_t deadline = clock_mono_ms() + 3000;
    pid_t reaped = 0;
    while (reaped == 0 && clock_mono_ms() < deadline) {
        reaped = waitpid(pid, &status, WNOHANG);
        if (reaped == 0)
            usleep(10000);
    }
    if (reaped == 0)
        kill(pid, SIGKILL);
    assert_int_equal(reaped, pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    agent_stop(agent);
    fake_stop(fake);
}

/* State files and working directories go to a folder of this test run, so
 * that runs at the same time do not share them. */
static char run_dir[] = "/tmp/nimdeck-test-flow-XXXXXX";

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(run_dir) == NULL)
        return -1;
    setenv("XDG_RUNTIME_DIR", run_dir, 1);
    setenv("TMPDIR", run_dir, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("TMPDIR");
    return agent_workdir_remove(run_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flow_lease_ready_stop),
        cmocka_unit_test(flow_exit_reports_failed),
        cmocka_unit_test(flow_agent_stop_stops_instances),
        cmocka_unit_test(flow_health_failures_fail),
        cmocka_unit_test(flow_register_rejects_token),
        cmocka_unit_test(flow_env_hides_agent_settings),
        cmocka_unit_test(flow_final_status_retried),
        cmocka_unit_test(flow_stop_resends_final),
        cmocka_unit_test(flow_reregister_keeps_running),
        cmocka_unit_test(flow_register_stop_ends_process),
        cmocka_unit_test(flow_stop_races_exit),
        cmocka_unit_test(flow_start_kills_left_groups),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
