/* End-to-end tests of the gateway over real sockets: a fake control server
 * (state and records endpoints) and a fake model server on a test loop,
 * the real gateway in front, and a raw socket client. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "gateway/gateway.h"
#include "gateway/gw_internal.h"
#include "gateway/gw_state.h"
#include "http/http.h"
#include "http/server_internal.h"
#include "util/clock.h"
#include "util/rec_rows.h"

/* ---- shared state of the fakes (guarded by fake_lock) ---- */

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *seen_records;        /* every record the gateway posted */
static json_t *seen_activity;       /* every activity entry, in order */
static json_t *seen_gateway_ids;    /* the gateway_id of every records post */
static int state_fails;             /* state polls get 500 while set */
static int state_rejects;           /* state polls get 401 while set */
static int state_rejections;        /* state polls rejected with 401 for state_rejects */
static int records_rejects;         /* records posts get 400 while set */
static int records_rejections;      /* records posts rejected with 400 */
/* How the fake server fails the next records posts, in order, before it
 * accepts them again: an HTTP status, or FAIL_CLOSE. */
#define FAIL_CLOSE 0
static int records_failures[4];
static int num_records_failures;
static int records_failed;          /* records posts failed from records_failures */
/* Every records post as {"body": text, "status": response}, where status
 * 0 is a connection closed without a response. */
static json_t *seen_posts;
static char seen_upstream_head[4096];
static char seen_upstream_body[4096];
static int upstream_aborted;

static uv_loop_t fake_loop;
static uv_async_t fake_stop;
static pthread_t fake_thread;
static http_server_t *control_server;
static http_server_t *model_server;
static int control_port;
static int model_port;
static int dead_port;
static int blackhole_port;          /* a full listen backlog: connects hang */
static int blackhole_fds[8];
static int flaky_port;              /* fake_flaky: drops a connection's second request */
static int flaky_listen_fd;
static pthread_t flaky_thread;
static gateway_t *gateway;
static int gateway_port_number;

/* ---- the fake model server ---- */

/* Far above the gateway's 256 KiB write high-water mark. */
#define BIG_BODY (6u * 1024 * 1024)

typedef struct {
    http_exchange_t *ex;
    uv_timer_t timer;
    int step;
    int include_usage;
    int forever;
    int cut_after;
    int preamble;      /* first send events without content: a role and an empty delta */
    int half_event;    /* before the cut, send half of an event */
} fake_stream_t;

static void fake_stream_timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void fake_stream_on_close(http_exchange_t *ex, int aborted, void *user)
{
    fake_stream_t *s = user;

    (void)ex;
    if (aborted) {
        pthread_mutex_lock(&fake_lock);
        upstream_aborted = 1;
        pthread_mutex_unlock(&fake_lock);
    }
    s->ex = NULL;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, fake_stream_timer_closed);
}

static void fake_stream_tick(uv_timer_t *timer)
{
    fake_stream_t *s = timer->data;
    char event[256];

    if (s->ex == NULL)
        return;
    if (s->cut_after > 0 && s->step == s->cut_after) {
        if (s->half_event)
            http_stream_write(s->ex, "data: {\"choi", 13);
        http_conn_close(s->ex->conn);
        return;
    }
    if (s->preamble) {
        static const char role[] = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
                                   "data: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n\n";
        http_stream_write(s->ex, role, strlen(role));
        s->preamble = 0;
    }
    if (s->forever || s->step < 3) {
        snprintf(event, sizeof(event),
                 "data: {\"choices\":[{\"delta\":{\"content\":\"w%d \xc3\xa9\"}}],\"usage\":null}\n\n",
                 s->step);
        http_stream_write(s->ex, event, strlen(event));
        s->step++;
        uv_timer_start(&s->timer, fake_stream_tick, 100, 0);
        return;
    }
    if (s->include_usage) {
        static const char usage[] = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
                                    "\"completion_tokens\":3,\"total_tokens\":14}}\n\n";
        http_stream_write(s->ex, usage, strlen(usage));
    }
    http_stream_write(s->ex, "data: [DONE]\n\n", 14);
    http_stream_end(s->ex);
}

static fake_stream_t *fake_stream_begin(http_exchange_t *ex, int include_usage, int forever,
                                        int cut_after)
{
    fake_stream_t *s = calloc(1, sizeof(*s));

    s->ex = ex;
    s->include_usage = include_usage;
    s->forever = forever;
    s->cut_after = cut_after;
    uv_timer_init(&fake_loop, &s->timer);
    s->timer.data = s;
    http_exchange_on_close(ex, fake_stream_on_close, s);
    http_stream_start(ex, 200, "text/event-stream", NULL);
    uv_timer_start(&s->timer, fake_stream_tick, 10, 0);
    return s;
}

static void fake_hang_on_close(http_exchange_t *ex, int aborted, void *user)
{
    (void)ex;
    (void)user;
    if (aborted) {
        pthread_mutex_lock(&fake_lock);
        upstream_aborted = 1;
        pthread_mutex_unlock(&fake_lock);
    }
}

static void fake_model(http_exchange_t *ex)
{
    const http_request_t *req = http_exchange_request(ex);

    pthread_mutex_lock(&fake_lock);
    snprintf(seen_upstream_head, sizeof(seen_upstream_head), "%.*s", (int)req->target_len,
             req->target);
    for (size_t i = 0; i < req->num_headers; i++) {
        size_t used = strlen(seen_upstream_head);
        snprintf(seen_upstream_head + used, sizeof(seen_upstream_head) - used, "\n%.*s: %.*s",
                 (int)req->headers[i].name_len, req->headers[i].name,
                 (int)req->headers[i].value_len, req->headers[i].value);
    }
    snprintf(seen_upstream_body, sizeof(seen_upstream_body), "%.*s", (int)req->body_len,
             req->body);
    pthread_mutex_unlock(&fake_lock);

    if (strncmp(req->target, "/v1/slow", 8) == 0) {
        fake_stream_begin(ex, 0, 1, 0);
        return;
    }
    if (strncmp(req->target, "/v1/big", 7) == 0) {
        char *big = malloc(BIG_BODY);
        for (size_t i = 0; i < BIG_BODY; i++)
            big[i] = (char)('a' + i % 26);
        http_respond(ex, 200, "application/octet-stream", NULL, big, BIG_BODY);
        free(big);
        return;
    }
    if (strncmp(req->target, "/v1/hang", 8) == 0) {
        /* Never responds, so the gateway's first-byte timeout ends it. */
        http_exchange_on_close(ex, fake_hang_on_close, NULL);
        return;
    }
    if (strncmp(req->target, "/v1/cutmid", 10) == 0) {
        fake_stream_begin(ex, 0, 0, 2)->half_event = 1;
        return;
    }
    if (strncmp(req->target, "/v1/cut", 7) == 0) {
        fake_stream_begin(ex, 0, 0, 2);
        return;
    }

    /* "forever" streams until the client leaves; "no_usage" plays a server
     * that never sends a usage object. */
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    if (json_is_true(json_object_get(body, "stream"))) {
        int usage = json_is_true(
            json_object_get(json_object_get(body, "stream_options"), "include_usage"));
        int no_usage = json_is_true(json_object_get(body, "no_usage"));
        fake_stream_t *s = fake_stream_begin(ex, usage && !no_usage,
                                             json_is_true(json_object_get(body, "forever")), 0);
        s->preamble = no_usage;
    } else {
        static const char reply[] = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
                                    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}";
        http_respond(ex, 200, "application/json", NULL, reply, strlen(reply));
    }
    json_decref(body);
}

/* ---- raw upstreams for the connection pool ---- */

/* A model server that responds to the first request of each connection
 * with keep-alive and closes the connection, without responding, when a
 * second request arrives on it. This is what a server that times out idle
 * connections looks like when the gateway reuses one just as it closes. It
 * serves one connection at a time and stops when the listening socket is
 * shut down. */
static void *fake_flaky_run(void *arg)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 11\r\n\r\n{\"ok\":true}";
    (void)arg;
    for (;;) {
        int fd = accept(flaky_listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[4096];
        size_t len = 0;
        int requests = 0;
        for (;;) {
            ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL)
                continue;
            if (++requests == 2)
                break;
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, len - used);
            len -= used;
            if (write(fd, ok, sizeof(ok) - 1) != (ssize_t)(sizeof(ok) - 1))
                break;
        }
        close(fd);
    }
}

static int listen_loopback(int backlog, int *port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(fd, backlog) != 0 || getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    *port = ntohs(addr.sin_port);
    return fd;
}

/* A listener that never accepts, with its backlog filled by connections
 * of our own, so a new connect gets no response and times out. */
static int blackhole_start(void)
{
    int fd = listen_loopback(0, &blackhole_port);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                               .sin_port = htons((uint16_t)blackhole_port)};

    if (fd < 0)
        return -1;
    blackhole_fds[0] = fd;
    for (size_t i = 1; i < sizeof(blackhole_fds) / sizeof(blackhole_fds[0]); i++) {
        blackhole_fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(blackhole_fds[i], (struct sockaddr *)&addr, sizeof(addr));
    }
    return 0;
}

/* ---- the fake control server ---- */

#define STATE_GENERATION 3
/* Short limits keep the tests of stale state and stalled clients quick.
 * The held poll returns 304 every 300 ms, well within the first. */
#define STATE_MAX_AGE_MS 1500
#define WRITE_STALL_MS 1000
/* Short upstream timeouts for the 504 tests. Every fake responds at once. */
#define CONNECT_TIMEOUT_MS 1000
#define FIRST_BYTE_MS 1500

static json_t *make_state(void)
{
    char alice[65], bob[65], upstream[64], dead[64], blackhole[64], flaky[64];

    gw_token_hash("nd_alice", 8, alice);
    gw_token_hash("nd_bob", 6, bob);
    snprintf(upstream, sizeof(upstream), "127.0.0.1:%d", model_port);
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", dead_port);
    snprintf(blackhole, sizeof(blackhole), "127.0.0.1:%d", blackhole_port);
    snprintf(flaky, sizeof(flaky), "127.0.0.1:%d", flaky_port);
    return json_pack(
        "{s:i, s:[{s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:n},"
        " {s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s},"
        " {s:s, s:s, s:s, s:s, s:n}, {s:s, s:s, s:s, s:s, s:s},"
        " {s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}],"
        " s:[{s:s, s:s, s:s, s:n}, {s:s, s:s, s:s, s:n}], s:[{s:s, s:s}], s:[s]}",
        "generation", STATE_GENERATION, "instances",
        "id", "i1", "path", "llama", "project", "demo", "status", "active", "upstream", upstream,
        "id", "i2", "path", "warming", "project", "demo", "status", "loading", "upstream",
        "id", "i3", "path", "dead", "project", "demo", "status", "active", "upstream", dead,
        "id", "i4", "path", "private", "project", "secret", "status", "idle", "upstream", upstream,
        "id", "i5", "path", "quiet", "project", "demo", "status", "active", "upstream", upstream,
        "id", "i6", "path", "waiting", "project", "demo", "status", "queued", "upstream",
        "id", "i7", "path", "leaving", "project", "demo", "status", "stopping", "upstream",
        upstream,
        "id", "i8", "path", "blackhole", "project", "demo", "status", "active", "upstream",
        blackhole,
        "id", "i9", "path", "flaky", "project", "demo", "status", "active", "upstream", flaky,
        "tokens", "id", "t1", "hash", alice, "user", "alice", "expires_at",
        "id", "t2", "hash", bob, "user", "bob", "expires_at",
        "grants", "user", "alice", "project", "demo", "admins", "admin");
}

typedef struct {
    http_exchange_t *ex;
    uv_timer_t timer;
} held_poll_t;

static void held_poll_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void held_poll_on_close(http_exchange_t *ex, int aborted, void *user)
{
    held_poll_t *h = user;

    (void)ex;
    (void)aborted;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, held_poll_closed);
}

static void held_poll_expire(uv_timer_t *timer)
{
    held_poll_t *h = timer->data;

    http_respond(h->ex, 304, NULL, NULL, NULL, 0);
}

/* A row value as JSON: null for -1 (unknown), as the "records" form sent it. */
static json_t *known_or_null(int64_t value)
{
    return value < 0 ? json_null() : json_integer(value);
}

/* Append the records of the post's "rows" to records as objects with the
 * fields of the "records" form: null for an unknown value or no token, and
 * usage_estimated only when set. Returns 0, or -1 with error set when a
 * row is invalid. */
static int rows_to_records(json_t *body, json_t *records, char *error, size_t error_size)
{
    json_t *instances = json_object_get(body, "instances");
    json_t *tokens = json_object_get(body, "tokens");
    json_t *rows = json_object_get(body, "rows");
    const char *text = json_string_value(rows);
    size_t len = json_string_length(rows), pos = 0;
    rec_row_t row;
    int rc;

    while ((rc = rec_rows_next(text, len, &pos, json_array_size(instances),
                               json_array_size(tokens), &row, error, error_size)) == 1) {
        json_t *rec = json_object();

        json_object_set(rec, "instance_id", json_array_get(instances, (size_t)row.instance));
        json_object_set(rec, "token_id", row.token >= 0
                                             ? json_array_get(tokens, (size_t)row.token)
                                             : json_null());
        json_object_set_new(rec, "time", json_integer(row.time));
        json_object_set_new(rec, "status", json_integer(row.status));
        json_object_set_new(rec, "latency_ms", json_integer(row.latency_ms));
        json_object_set_new(rec, "ttfb_ms", known_or_null(row.ttfb_ms));
        json_object_set_new(rec, "prompt_tokens", known_or_null(row.prompt_tokens));
        json_object_set_new(rec, "completion_tokens", known_or_null(row.completion_tokens));
        json_object_set_new(rec, "cancelled", json_boolean(row.flags & REC_ROW_CANCELLED));
        if (row.flags & REC_ROW_USAGE_ESTIMATED)
            json_object_set_new(rec, "usage_estimated", json_true());
        json_array_append_new(records, rec);
    }
    return rc < 0 ? -1 : 0;
}

/* Append a records post and the status of its response to seen_posts. */
static void note_post(const http_request_t *req, int status)
{
    pthread_mutex_lock(&fake_lock);
    json_array_append_new(seen_posts, json_pack("{s:s%, s:i}", "body", req->body, req->body_len,
                                                "status", status));
    pthread_mutex_unlock(&fake_lock);
}

static void fake_control(http_exchange_t *ex)
{
    const http_request_t *req = http_exchange_request(ex);

    if (strncmp(req->target, "/api/v1/gateway/state", 21) == 0) {
        size_t auth_len = 0;
        const char *auth = http_header_find(req->headers, req->num_headers, "Authorization",
                                            &auth_len);
        pthread_mutex_lock(&fake_lock);
        int fail = state_fails;
        int reject = state_rejects;
        pthread_mutex_unlock(&fake_lock);
        int revoked = auth != NULL && auth_len == 17 && memcmp(auth, "Bearer nd_revoked", 17) == 0;
        if (reject || revoked) {
            pthread_mutex_lock(&fake_lock);
            state_rejections += reject;
            pthread_mutex_unlock(&fake_lock);
            http_respond_error(ex, 401, "unauthorized", "invalid or revoked token", NULL);
            return;
        }
        if (auth != NULL && auth_len == 14 && memcmp(auth, "Bearer nd_user", 14) == 0) {
            http_respond_error(ex, 403, "forbidden", "admin permission required", NULL);
            return;
        }
        if (fail) {
            http_respond_error(ex, 500, "internal", "the fake server is failing on purpose", NULL);
            return;
        }
        if (strstr(req->target, "since=3&") != NULL) {
            held_poll_t *h = calloc(1, sizeof(*h));
            h->ex = ex;
            uv_timer_init(&fake_loop, &h->timer);
            h->timer.data = h;
            http_exchange_on_close(ex, held_poll_on_close, h);
            uv_timer_start(&h->timer, held_poll_expire, 300, 0);
            return;
        }
        json_t *state = make_state();
        char *text = json_dumps(state, JSON_COMPACT);
        http_respond(ex, 200, "application/json", NULL, text, strlen(text));
        free(text);
        json_decref(state);
        return;
    }

    if (req->target_len == 23 && memcmp(req->target, "/api/v1/gateway/records", 23) == 0) {
        pthread_mutex_lock(&fake_lock);
        int reject = records_rejects;
        records_rejections += reject;
        int failure = -1;
        if (records_failed < num_records_failures)
            failure = records_failures[records_failed++];
        pthread_mutex_unlock(&fake_lock);
        if (failure == FAIL_CLOSE) {
            note_post(req, 0);
            http_conn_close(ex->conn);
            return;
        }
        if (failure > 0) {
            note_post(req, failure);
            http_respond_error(ex, failure, "unavailable", "the fake server fails on purpose",
                               NULL);
            return;
        }
        if (reject) {
            note_post(req, 400);
            http_respond_error(ex, 400, "bad_request", "unknown key in records[0]", NULL);
            return;
        }
        json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
        char error[256] = "";
        json_t *records = json_array();
        json_array_extend(records, json_object_get(body, "records"));
        if (body == NULL || rows_to_records(body, records, error, sizeof(error)) != 0) {
            fprintf(stderr, "fake server: invalid records post: %s\n",
                    body == NULL ? "not JSON" : error);
            json_decref(records);
            json_decref(body);
            note_post(req, 400);
            http_respond_error(ex, 400, "bad_request", error, NULL);
            return;
        }
        note_post(req, 204);
        pthread_mutex_lock(&fake_lock);
        json_array_extend(seen_records, records);
        json_array_extend(seen_activity, json_object_get(body, "activity"));
        json_array_append(seen_gateway_ids, json_object_get(body, "gateway_id"));
        pthread_mutex_unlock(&fake_lock);
        json_decref(records);
        json_decref(body);
        http_respond(ex, 204, NULL, NULL, NULL, 0);
        return;
    }
    http_respond_error(ex, 404, "not_found", "no such fake endpoint", NULL);
}

static void fake_handle(http_exchange_t *ex, void *user)
{
    if (user == &control_port)
        fake_control(ex);
    else
        fake_model(ex);
}

static void fake_on_stop(uv_async_t *async)
{
    http_server_stop(control_server);
    http_server_stop(model_server);
    uv_close((uv_handle_t *)async, NULL);
}

static void *fake_run(void *arg)
{
    (void)arg;
    uv_run(&fake_loop, UV_RUN_DEFAULT);
    return NULL;
}

/* A port with nothing listening: bound once, then released. */
static int free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    getsockname(fd, (struct sockaddr *)&addr, &len);
    close(fd);
    return ntohs(addr.sin_port);
}

static int setup_all(void **state)
{
    char err[256], url[64];

    (void)state;
    if (sodium_init() < 0)
        return -1;
    seen_records = json_array();
    seen_activity = json_array();
    seen_gateway_ids = json_array();
    seen_posts = json_array();
    dead_port = free_port();
    if (blackhole_start() != 0)
        return -1;
    flaky_listen_fd = listen_loopback(16, &flaky_port);
    if (flaky_listen_fd < 0)
        return -1;
    pthread_create(&flaky_thread, NULL, fake_flaky_run, NULL);

    uv_loop_init(&fake_loop);
    uv_async_init(&fake_loop, &fake_stop, fake_on_stop);
    control_server = http_server_start(&fake_loop, "127.0.0.1", 0, NULL, fake_handle,
                                       &control_port, err, sizeof(err));
    model_server = http_server_start(&fake_loop, "127.0.0.1", 0, NULL, fake_handle, &model_port,
                                     err, sizeof(err));
    if (control_server == NULL || model_server == NULL)
        return -1;
    control_port = http_server_port(control_server);
    model_port = http_server_port(model_server);
    pthread_create(&fake_thread, NULL, fake_run, NULL);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", control_port);
    gateway_options_t opts = {.server_url = url, .api_token = "nd_admin", .listen_host = "127.0.0.1",
                              .listen_port = 0, .state_max_age_ms = STATE_MAX_AGE_MS,
                              .write_stall_timeout_ms = WRITE_STALL_MS,
                              .limits = {.upstream_connect_timeout_ms = CONNECT_TIMEOUT_MS,
                                         .upstream_first_byte_timeout_ms = FIRST_BYTE_MS}};
    gateway = gateway_start(&opts, err, sizeof(err));
    if (gateway == NULL)
        return -1;
    gateway_port_number = gateway_port(gateway);
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    gateway_stop(gateway);
    uv_async_send(&fake_stop);
    pthread_join(fake_thread, NULL);
    shutdown(flaky_listen_fd, SHUT_RDWR);
    pthread_join(flaky_thread, NULL);
    close(flaky_listen_fd);
    for (size_t i = 0; i < sizeof(blackhole_fds) / sizeof(blackhole_fds[0]); i++)
        close(blackhole_fds[i]);
    uv_loop_close(&fake_loop);
    json_decref(seen_records);
    json_decref(seen_activity);
    json_decref(seen_gateway_ids);
    json_decref(seen_posts);
    return 0;
}

/* ---- a raw client ---- */

typedef struct {
    int status;
    buf_t raw;             /* everything read */
    buf_t body;            /* body, de-chunked when chunked */
    int body_complete;     /* chunked: the last chunk arrived */
    int64_t first_data_ms; /* when the first "data:" arrived (monotonic), or -1 */
    int64_t last_data_ms;
} reply_t;

static int connect_gateway(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                               .sin_port = htons((uint16_t)gateway_port_number)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static void send_request(int fd, const char *method, const char *target, const char *auth,
                         const char *body)
{
    buf_t req = BUF_INIT;

    buf_printf(&req, "%s %s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n", method, target);
    if (auth != NULL)
        buf_printf(&req, "Authorization: %s\r\n", auth);
    if (body != NULL)
        buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
    else
        buf_append_str(&req, "\r\n");
    assert_int_equal(write(fd, req.data, req.len), (ssize_t)req.len);
    buf_free(&req);
}

/* Read until EOF (bounded to 10 s) and split the reply. */
static void read_reply(int fd, reply_t *r)
{
    char chunk[4096];
    int64_t deadline = clock_mono_ms() + 10000;

    memset(r, 0, sizeof(*r));
    r->first_data_ms = -1;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - clock_mono_ms();
        assert_true(left > 0);
        assert_true(poll(&pfd, 1, (int)left) >= 0);
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0)
            break;
        if (memmem(chunk, (size_t)n, "data:", 5) != NULL) {
            if (r->first_data_ms < 0)
                r->first_data_ms = clock_mono_ms();
            r->last_data_ms = clock_mono_ms();
        }
        buf_append(&r->raw, chunk, (size_t)n);
    }

    http_response_t resp;
    int head = http_parse_response(r->raw.data, r->raw.len, 65536, &resp);
    assert_true(head > 0);
    r->status = resp.status;
    if (resp.chunked) {
        http_chunked_t dec = {0};
        http_chunked_decode(&dec, r->raw.data + head, r->raw.len - (size_t)head, &r->body);
        r->body_complete = dec.done;
    } else {
        buf_append(&r->body, r->raw.data + head, r->raw.len - (size_t)head);
        r->body_complete = 1;
    }
}

static void request(const char *method, const char *target, const char *auth, const char *body,
                    reply_t *r)
{
    int fd = connect_gateway();

    send_request(fd, method, target, auth, body);
    read_reply(fd, r);
    close(fd);
}

static void reply_free(reply_t *r)
{
    buf_free(&r->raw);
    buf_free(&r->body);
}

static const char *error_field(const reply_t *r, const char *key, char *out, size_t size)
{
    json_t *doc = json_loadb(r->body.data, r->body.len, 0, NULL);
    const char *value = json_string_value(json_object_get(json_object_get(doc, "error"), key));

    snprintf(out, size, "%s", value ? value : "");
    json_decref(doc);
    return out;
}

/* Wait up to ms for the record of instance_id with the given status and
 * return a new reference to it. */
static json_t *wait_record_ms(const char *instance_id, int status, int64_t ms)
{
    int64_t deadline = clock_mono_ms() + ms;

    while (clock_mono_ms() < deadline) {
        size_t i;
        json_t *rec;

        pthread_mutex_lock(&fake_lock);
        json_array_foreach(seen_records, i, rec) {
            const char *id = json_string_value(json_object_get(rec, "instance_id"));
            if (id && strcmp(id, instance_id) == 0 &&
                json_integer_value(json_object_get(rec, "status")) == status) {
                json_incref(rec);
                json_array_remove(seen_records, i);
                pthread_mutex_unlock(&fake_lock);
                return rec;
            }
        }
        pthread_mutex_unlock(&fake_lock);
        usleep(20000);
    }
    return NULL;
}

static json_t *wait_record(const char *instance_id, int status)
{
    return wait_record_ms(instance_id, status, 3000);
}

/* How many activity entries for instance_id had in_flight > 0. */
static size_t count_busy(const char *instance_id)
{
    size_t count = 0;
    size_t i;
    json_t *act;

    pthread_mutex_lock(&fake_lock);
    json_array_foreach(seen_activity, i, act) {
        const char *id = json_string_value(json_object_get(act, "instance_id"));
        if (id && strcmp(id, instance_id) == 0 &&
            json_integer_value(json_object_get(act, "in_flight")) > 0)
            count++;
    }
    pthread_mutex_unlock(&fake_lock);
    return count;
}

/* The last in_flight value the gateway reported for instance_id, or -1. */
static json_int_t last_in_flight(const char *instance_id)
{
    json_int_t value = -1;
    size_t i;
    json_t *act;

    pthread_mutex_lock(&fake_lock);
    json_array_foreach(seen_activity, i, act) {
        const char *id = json_string_value(json_object_get(act, "instance_id"));
        if (id && strcmp(id, instance_id) == 0)
            value = json_integer_value(json_object_get(act, "in_flight"));
    }
    pthread_mutex_unlock(&fake_lock);
    return value;
}

static int wait_flag(int *flag, int64_t ms)
{
    int64_t deadline = clock_mono_ms() + ms;

    while (clock_mono_ms() < deadline) {
        pthread_mutex_lock(&fake_lock);
        int value = *flag;
        pthread_mutex_unlock(&fake_lock);
        if (value)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* ---- tests ---- */

#define CHAT "/serve/llama/v1/chat/completions"
#define ALICE "Bearer nd_alice"

static void proxy_healthz_and_other(void **state)
{
    reply_t r;
    char type[64];

    (void)state;
    request("GET", "/healthz", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"ok\":true}");
    reply_free(&r);

    request("GET", "/v1/models", ALICE, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(error_field(&r, "type", type, sizeof(type)), "not_found_error");
    reply_free(&r);
}

static void proxy_refusals(void **state)
{
    reply_t r;
    char text[128];

    (void)state;
    request("GET", "/serve/llama/v1/models", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(error_field(&r, "type", text, sizeof(text)), "authentication_error");
    reply_free(&r);

    /* A token in the query string is not a credential. */
    request("GET", "/serve/llama/v1/models?token=nd_alice", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    reply_free(&r);

    request("GET", "/serve/llama/v1/models", "Bearer nd_wrong", NULL, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(error_field(&r, "code", text, sizeof(text)), "invalid_token");
    reply_free(&r);

    request("GET", "/serve/llama/v1/models", "Bearer nd_bob", NULL, &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(error_field(&r, "type", text, sizeof(text)), "permission_error");
    reply_free(&r);

    request("GET", "/serve/private/v1/models", ALICE, NULL, &r);
    assert_int_equal(r.status, 403);
    reply_free(&r);

    request("GET", "/serve/nothing/v1/models", ALICE, NULL, &r);
    assert_int_equal(r.status, 404);
    reply_free(&r);

    request("GET", "/serve/warming/v1/models", ALICE, NULL, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.raw.data, "\r\nRetry-After: 5\r\n"));
    reply_free(&r);
}

static void proxy_completion_usage(void **state)
{
    reply_t r;

    (void)state;
    request("POST", CHAT "?trace=1", ALICE, "{\"model\":\"m\",\"messages\":[]}", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "\"completion_tokens\":2"));
    assert_non_null(strstr(r.raw.data, "\r\nContent-Length: "));
    reply_free(&r);

    pthread_mutex_lock(&fake_lock);
    char expected_host[64];
    snprintf(expected_host, sizeof(expected_host), "\nHost: 127.0.0.1:%d", model_port);
    assert_non_null(strstr(seen_upstream_head, "/v1/chat/completions?trace=1"));
    assert_non_null(strstr(seen_upstream_head, expected_host));
    assert_null(strstr(seen_upstream_head, "nd_alice"));
    assert_null(strstr(seen_upstream_head, "Authorization"));
    pthread_mutex_unlock(&fake_lock);

    json_t *rec = wait_record("i1", 200);
    assert_non_null(rec);
    assert_int_equal(json_integer_value(json_object_get(rec, "prompt_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(rec, "completion_tokens")), 2);
    assert_string_equal(json_string_value(json_object_get(rec, "token_id")), "t1");
    assert_true(json_is_false(json_object_get(rec, "cancelled")));
    assert_true(json_integer_value(json_object_get(rec, "ttfb_ms")) >= 0);
    json_decref(rec);
}

static void proxy_stream_strips_usage(void **state)
{
    reply_t r;

    (void)state;
    request("POST", CHAT, ALICE, "{\"model\":\"m\",\"stream\":true}", &r);
    assert_int_equal(r.status, 200);
    assert_true(r.body_complete);
    assert_non_null(strstr(r.raw.data, "\r\nX-Accel-Buffering: no\r\n"));
    assert_non_null(strstr(r.raw.data, "\r\nCache-Control: no-cache\r\n"));
    assert_non_null(strstr(r.body.data, "w2 \xc3\xa9"));
    assert_non_null(strstr(r.body.data, "data: [DONE]\n\n"));
    assert_null(strstr(r.body.data, "\"choices\":[]"));
    /* Events were sent 100 ms apart and must arrive that way, not at once. */
    assert_true(r.last_data_ms - r.first_data_ms >= 150);
    reply_free(&r);

    pthread_mutex_lock(&fake_lock);
    assert_non_null(strstr(seen_upstream_body, "\"include_usage\":true"));
    pthread_mutex_unlock(&fake_lock);

    json_t *rec = wait_record("i1", 200);
    assert_non_null(rec);
    assert_int_equal(json_integer_value(json_object_get(rec, "prompt_tokens")), 11);
    assert_int_equal(json_integer_value(json_object_get(rec, "completion_tokens")), 3);
    assert_null(json_object_get(rec, "usage_estimated"));
    assert_true(json_integer_value(json_object_get(rec, "ttfb_ms")) <
                json_integer_value(json_object_get(rec, "latency_ms")));
    json_decref(rec);
}

static void proxy_stream_keeps_usage(void **state)
{
    reply_t r;

    (void)state;
    request("POST", CHAT, ALICE,
            "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "\"choices\":[],\"usage\""));
    reply_free(&r);

    json_t *rec = wait_record("i1", 200);
    assert_non_null(rec);
    assert_int_equal(json_integer_value(json_object_get(rec, "completion_tokens")), 3);
    json_decref(rec);
}

static void proxy_client_abort(void **state)
{
    char chunk[4096];

    (void)state;
    pthread_mutex_lock(&fake_lock);
    upstream_aborted = 0;
    pthread_mutex_unlock(&fake_lock);

    int fd = connect_gateway();
    send_request(fd, "POST", "/serve/llama/v1/slow", ALICE, "{}");
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_true(read(fd, chunk, sizeof(chunk)) > 0);
    close(fd);

    assert_true(wait_flag(&upstream_aborted, 2000));
    json_t *rec = wait_record("i1", 200);
    assert_non_null(rec);
    assert_true(json_is_true(json_object_get(rec, "cancelled")));
    json_decref(rec);
    assert_int_equal(last_in_flight("i1"), 0);
}

static void proxy_upstream_down(void **state)
{
    reply_t r;
    char code[64];

    (void)state;
    request("POST", "/serve/dead/v1/chat/completions", ALICE, "{\"model\":\"m\"}", &r);
    assert_int_equal(r.status, 502);
    assert_string_equal(error_field(&r, "code", code, sizeof(code)), "upstream_unreachable");
    reply_free(&r);

    /* Recorded, but the instance never saw it: no activity. */
    json_t *rec = wait_record("i3", 502);
    assert_non_null(rec);
    json_decref(rec);
    assert_int_equal(last_in_flight("i3"), -1);
}

static void proxy_upstream_cut(void **state)
{
    reply_t r;

    (void)state;
    /* The instance died between events: the stream ends cleanly, with an
     * error event that OpenAI clients raise, and the last chunk. */
    request("GET", "/serve/llama/v1/cut", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "w1"));
    assert_true(r.body_complete);
    const char *error = strstr(r.body.data, "data: {\"error\":");
    assert_non_null(error);
    assert_non_null(strstr(error, "\"code\":\"upstream_error\""));
    assert_non_null(strstr(error, "stopped mid-stream"));
    assert_non_null(strstr(error, "}\n\n"));
    reply_free(&r);

    json_t *rec = wait_record("i1", 502);
    assert_non_null(rec);
    json_decref(rec);
}

static void proxy_upstream_cut_mid_event(void **state)
{
    reply_t r;

    /* Half an event reached the client: no well-formed end is possible, so
     * the connection closes without the last chunk. */
    (void)state;
    request("GET", "/serve/llama/v1/cutmid", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "w1"));
    assert_non_null(strstr(r.body.data, "data: {\"choi"));
    assert_false(r.body_complete);
    assert_null(strstr(r.body.data, "upstream_error"));
    reply_free(&r);

    json_t *rec = wait_record("i1", 502);
    assert_non_null(rec);
    json_decref(rec);
}

/* Consume the records of n successful requests to instance_id, so later
 * tests do not mistake them for their own. */
static void take_records(const char *instance_id, int status, int n)
{
    for (int i = 0; i < n; i++) {
        json_t *rec = wait_record(instance_id, status);
        assert_non_null(rec);
        json_decref(rec);
    }
}

static gw_pools_stats_t pool_stats(void)
{
    gw_pools_stats_t stats;

    /* Read between requests, when the loop thread is not changing them. */
    usleep(50000);
    gw_pools_stats(gateway->pools, &stats);
    return stats;
}

static void proxy_pool_reuses_connection(void **state)
{
    reply_t r;

    (void)state;
    request("GET", "/serve/llama/v1/models", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    gw_pools_stats_t before = pool_stats();

    for (int i = 0; i < 3; i++) {
        request("POST", "/serve/llama/v1/chat/completions", ALICE, "{\"model\":\"m\"}", &r);
        assert_int_equal(r.status, 200);
        reply_free(&r);
    }
    gw_pools_stats_t after = pool_stats();
    assert_int_equal(after.connects - before.connects, 0);
    assert_int_equal(after.reuses - before.reuses, 3);
    assert_true(after.idle >= 1);

    /* The instance is asked to keep the connection open. */
    pthread_mutex_lock(&fake_lock);
    assert_null(strcasestr(seen_upstream_head, "\nConnection:"));
    pthread_mutex_unlock(&fake_lock);
    take_records("i1", 200, 4);
}

static void proxy_first_byte_timeout_504(void **state)
{
    reply_t r;
    char code[64];

    (void)state;
    pthread_mutex_lock(&fake_lock);
    upstream_aborted = 0;
    pthread_mutex_unlock(&fake_lock);

    request("GET", "/serve/llama/v1/models", ALICE, NULL, &r);
    reply_free(&r);
    gw_pools_stats_t before = pool_stats();
    int64_t start = clock_mono_ms();
    request("GET", "/serve/llama/v1/hang", ALICE, NULL, &r);
    int64_t took = clock_mono_ms() - start;
    assert_int_equal(r.status, 504);
    assert_string_equal(error_field(&r, "code", code, sizeof(code)), "upstream_timeout");
    assert_true(took >= FIRST_BYTE_MS - 100);
    assert_true(took < FIRST_BYTE_MS + 2000);
    reply_free(&r);
    assert_true(wait_flag(&upstream_aborted, 2000));

    /* That connection failed: the next request gets a new one. */
    request("GET", "/serve/llama/v1/models", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    gw_pools_stats_t after = pool_stats();
    assert_int_equal(after.reuses - before.reuses, 1);
    assert_int_equal(after.connects - before.connects, 1);

    json_t *rec = wait_record("i1", 504);
    assert_non_null(rec);
    json_decref(rec);
    take_records("i1", 200, 2);
}

static void proxy_connect_timeout_504(void **state)
{
    reply_t r;
    char code[64];

    (void)state;
    int64_t start = clock_mono_ms();
    request("GET", "/serve/blackhole/v1/models", ALICE, NULL, &r);
    int64_t took = clock_mono_ms() - start;
    assert_int_equal(r.status, 504);
    assert_string_equal(error_field(&r, "code", code, sizeof(code)), "upstream_timeout");
    assert_true(took >= CONNECT_TIMEOUT_MS - 100);
    reply_free(&r);

    json_t *rec = wait_record("i8", 504);
    assert_non_null(rec);
    json_decref(rec);
}

/* A pooled connection that the instance closes as it is reused gets the
 * request again on a new connection; the client never sees the failure. */
static void proxy_pool_retries_closed_connection(void **state)
{
    reply_t r;

    (void)state;
    gw_pools_stats_t before = pool_stats();
    request("GET", "/serve/flaky/v1/models", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    request("POST", "/serve/flaky/v1/chat/completions", ALICE, "{\"model\":\"m\"}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"ok\":true}");
    reply_free(&r);

    gw_pools_stats_t after = pool_stats();
    assert_int_equal(after.retries - before.retries, 1);
    assert_int_equal(after.connects - before.connects, 2);
    json_t *rec = wait_record("i9", 200);
    assert_non_null(rec);
    json_decref(rec);
}

/* A client that does not read for a while makes the gateway pause the
 * instance; the body still arrives whole and in order. */
static void proxy_backpressure(void **state)
{
    reply_t r;

    (void)state;
    int fd = connect_gateway();
    send_request(fd, "GET", "/serve/llama/v1/big", ALICE, NULL);
    usleep(300000);
    read_reply(fd, &r);
    close(fd);

    assert_int_equal(r.status, 200);
    assert_true(r.body_complete);
    assert_int_equal(r.body.len, BIG_BODY);
    int intact = 1;
    for (size_t i = 0; i < r.body.len && intact; i++)
        intact = r.body.data[i] == (char)('a' + i % 26);
    assert_true(intact);
    reply_free(&r);

    json_t *rec = wait_record("i1", 200);
    assert_non_null(rec);
    json_decref(rec);
}

/* Listings and health checks are recorded but are not activity; an
 * inference POST is. */
static void proxy_activity_only_inference(void **state)
{
    reply_t r;

    (void)state;
    request("GET", "/serve/quiet/v1/models", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    json_t *rec = wait_record("i5", 200);
    assert_non_null(rec);
    json_decref(rec);

    request("GET", "/serve/quiet/v1/health/ready", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    rec = wait_record("i5", 200);
    assert_non_null(rec);
    json_decref(rec);
    assert_int_equal(last_in_flight("i5"), -1);

    request("POST", "/serve/quiet/v1/chat/completions", ALICE, "{\"model\":\"m\"}", &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    rec = wait_record("i5", 200);
    assert_non_null(rec);
    json_decref(rec);
    assert_int_equal(last_in_flight("i5"), 0);
}

/* A request in flight is posted again at least once a second though
 * nothing changes, and every post names the same gateway. */
static void proxy_heartbeat_in_flight(void **state)
{
    char chunk[4096];

    (void)state;
    int fd = connect_gateway();
    send_request(fd, "POST", "/serve/llama/v1/slow", ALICE, "{}");
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_true(read(fd, chunk, sizeof(chunk)) > 0);
    usleep(300000);
    size_t before = count_busy("i1");

    int64_t until = clock_mono_ms() + 1600;
    while (clock_mono_ms() < until) {
        if (poll(&pfd, 1, 100) == 1)
            assert_true(read(fd, chunk, sizeof(chunk)) > 0);
    }
    size_t after = count_busy("i1");
    close(fd);

    assert_true(before >= 1);
    assert_true(after - before >= 2);
    json_t *rec = wait_record("i1", 200);
    assert_non_null(rec);
    json_decref(rec);

    size_t i;
    json_t *id;
    const char *first = json_string_value(json_array_get(seen_gateway_ids, 0));
    assert_non_null(first);
    assert_int_equal(strlen(first), 16);
    assert_int_equal(strspn(first, "0123456789abcdef"), 16);
    pthread_mutex_lock(&fake_lock);
    json_array_foreach(seen_gateway_ids, i, id)
        assert_string_equal(json_string_value(id), first);
    pthread_mutex_unlock(&fake_lock);
}

/* A client that stops reading is cut after the write-stall timeout; the
 * request ends as cancelled and nothing stays in flight. */
static void proxy_stalled_client_cancelled(void **state)
{
    int small = 4096;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                               .sin_port = htons((uint16_t)gateway_port_number)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    pthread_mutex_lock(&fake_lock);
    upstream_aborted = 0;
    pthread_mutex_unlock(&fake_lock);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    send_request(fd, "POST", "/serve/llama/v1/big", ALICE, "{}");

    json_t *rec = wait_record_ms("i1", 200, WRITE_STALL_MS + 8000);
    assert_non_null(rec);
    assert_true(json_is_true(json_object_get(rec, "cancelled")));
    json_decref(rec);
    assert_int_equal(last_in_flight("i1"), 0);
    close(fd);
}

/* The status of a request to an unknown path: 404 while the state is
 * fresh, 503 once it is stale (no record either way). */
static int probe_status(char *code, size_t size)
{
    reply_t r;

    request("GET", "/serve/nothing/v1/models", ALICE, NULL, &r);
    int status = r.status;
    error_field(&r, "code", code, size);
    if (status == 503)
        assert_non_null(strstr(r.raw.data, "\r\nRetry-After: 5\r\n"));
    reply_free(&r);
    return status;
}

/* While the state poll fails, the old snapshot is served only until it is
 * STATE_MAX_AGE_MS old; then 503 until polling works again. */
static void proxy_stale_state_503(void **state)
{
    char code[64] = "";
    int status = 0;

    (void)state;
    assert_int_equal(probe_status(code, sizeof(code)), 404);
    pthread_mutex_lock(&fake_lock);
    state_fails = 1;
    pthread_mutex_unlock(&fake_lock);

    int64_t start = clock_mono_ms();
    while (clock_mono_ms() - start < 6000 && (status = probe_status(code, sizeof(code))) != 503)
        usleep(50000);
    assert_int_equal(status, 503);
    assert_string_equal(code, "state_stale");
    assert_true(clock_mono_ms() - start >= STATE_MAX_AGE_MS - 400);

    pthread_mutex_lock(&fake_lock);
    state_fails = 0;
    pthread_mutex_unlock(&fake_lock);
    start = clock_mono_ms();
    while (clock_mono_ms() - start < 6000 && (status = probe_status(code, sizeof(code))) != 404)
        usleep(50000);
    assert_int_equal(status, 404);
}

/* Token query parameters never reach the instance; the others do. */
static void proxy_query_token_dropped(void **state)
{
    reply_t r;

    (void)state;
    request("GET", "/serve/quiet/v1/models?api_key=nd_alice&x=1&access_token=nd_alice", ALICE,
            NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    json_t *rec = wait_record("i5", 200);
    assert_non_null(rec);
    json_decref(rec);

    pthread_mutex_lock(&fake_lock);
    assert_non_null(strstr(seen_upstream_head, "/v1/models?x=1\n"));
    assert_null(strstr(seen_upstream_head, "nd_alice"));
    pthread_mutex_unlock(&fake_lock);
}

/* A 503 for a queued or stopping instance gives the reason in its message.
 * Only the response for the queued instance has Retry-After. */
static void proxy_not_serving_503(void **state)
{
    reply_t r;
    char text[256];

    (void)state;
    request("POST", "/serve/waiting/v1/chat/completions", ALICE, "{}", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(error_field(&r, "code", text, sizeof(text)), "instance_queued");
    assert_non_null(strstr(error_field(&r, "message", text, sizeof(text)),
                           "instance i6 is queued, waiting for an agent"));
    assert_non_null(strstr(r.raw.data, "\r\nRetry-After: 5\r\n"));
    reply_free(&r);

    request("POST", "/serve/leaving/v1/chat/completions", ALICE, "{}", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(error_field(&r, "code", text, sizeof(text)), "instance_stopping");
    assert_non_null(strstr(error_field(&r, "message", text, sizeof(text)),
                           "instance i7 is stopping and will not serve again"));
    assert_null(strstr(r.raw.data, "Retry-After"));
    reply_free(&r);
}

static void proxy_two_authorizations_400(void **state)
{
    static const char raw[] = "GET /serve/llama/v1/models HTTP/1.1\r\nHost: gw\r\n"
                              "Connection: close\r\nAuthorization: Bearer nd_alice\r\n"
                              "Authorization: Bearer nd_bob\r\n\r\n";
    reply_t r;
    char text[128];

    (void)state;
    int fd = connect_gateway();
    assert_int_equal(write(fd, raw, sizeof(raw) - 1), (ssize_t)(sizeof(raw) - 1));
    read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_field(&r, "type", text, sizeof(text)), "invalid_request_error");
    assert_string_equal(error_field(&r, "code", text, sizeof(text)), "ambiguous_credentials");
    reply_free(&r);
}

/* A client that leaves mid-stream is charged for the content events it
 * got, marked as an estimate, since no usage object came. */
static void proxy_cancelled_stream_estimated(void **state)
{
    buf_t seen = BUF_INIT;
    char chunk[4096];

    (void)state;
    int fd = connect_gateway();
    send_request(fd, "POST", CHAT, ALICE, "{\"stream\":true,\"forever\":true}");
    int64_t deadline = clock_mono_ms() + 5000;
    while ((seen.len == 0 || memmem(seen.data, seen.len, "w2 ", 3) == NULL) &&
           clock_mono_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 5000), 1);
        ssize_t n = read(fd, chunk, sizeof(chunk));
        assert_true(n > 0);
        buf_append(&seen, chunk, (size_t)n);
    }
    close(fd);
    assert_true(seen.len > 0);
    assert_non_null(memmem(seen.data, seen.len, "w2 ", 3));
    buf_free(&seen);

    json_t *rec = wait_record("i1", 200);
    assert_non_null(rec);
    assert_true(json_is_true(json_object_get(rec, "cancelled")));
    assert_true(json_is_true(json_object_get(rec, "usage_estimated")));
    assert_true(json_is_null(json_object_get(rec, "prompt_tokens")));
    /* w0 to w2 reached the client; w3 may have been sent as it left. */
    json_int_t completion = json_integer_value(json_object_get(rec, "completion_tokens"));
    assert_true(completion >= 3);
    assert_true(completion <= 4);
    assert_true(json_integer_value(json_object_get(rec, "ttfb_ms")) >= 0);
    json_decref(rec);
}

/* A server that sends no usage object: the count of events with content
 * (not the role or empty deltas, not [DONE]) is the estimate. */
static void proxy_stream_without_usage_estimated(void **state)
{
    reply_t r;

    (void)state;
    request("POST", CHAT, ALICE, "{\"stream\":true,\"no_usage\":true}", &r);
    assert_int_equal(r.status, 200);
    assert_true(r.body_complete);
    assert_non_null(strstr(r.body.data, "\"role\":\"assistant\""));
    reply_free(&r);

    json_t *rec = wait_record("i1", 200);
    assert_non_null(rec);
    assert_true(json_is_false(json_object_get(rec, "cancelled")));
    assert_true(json_is_true(json_object_get(rec, "usage_estimated")));
    assert_true(json_is_null(json_object_get(rec, "prompt_tokens")));
    assert_int_equal(json_integer_value(json_object_get(rec, "completion_tokens")), 3);
    json_decref(rec);
}

/* A token that the server rejects makes gateway_start fail at once with an
 * error naming the cause, instead of starting a gateway that responds with
 * 503 indefinitely. */
static void proxy_start_rejected_token(void **state)
{
    static const struct {
        const char *token;
        const char *status;
    } cases[] = {{"nd_revoked", "HTTP 401"}, {"nd_user", "HTTP 403"}};
    char err[1024], url[64];

    (void)state;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", control_port);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gateway_options_t opts = {.server_url = url, .api_token = cases[i].token,
                                  .listen_host = "127.0.0.1", .listen_port = 0};
        int64_t start = clock_mono_ms();
        err[0] = '\0';
        gateway_t *gw = gateway_start(&opts, err, sizeof(err));
        int64_t took = clock_mono_ms() - start;
        gateway_stop(gw);

        assert_null(gw);
        assert_non_null(strstr(err, "rejected the gateway's api token"));
        assert_non_null(strstr(err, cases[i].status));
        assert_non_null(strstr(err, "unknown, expired, revoked or not an admin's api token"));
        assert_null(strstr(err, cases[i].token));
        assert_true(took < 3000);
    }
}

/* Count the lines of path that contain needle. */
static size_t count_lines_with(const char *path, const char *needle)
{
    char line[2048];
    size_t count = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        count += strstr(line, needle) != NULL;
    fclose(f);
    return count;
}

/* An instance that is down under load logs one line a second, with the
 * count of the failures left out, not a line per request. */
static void proxy_upstream_down_logged_once(void **state)
{
    char path[] = "/tmp/test_gw_proxy_log_XXXXXX";
    reply_t r;

    (void)state;
    /* A failure logged by an earlier test must be a second old. */
    usleep(1100000);
    int log_fd = mkstemp(path);
    assert_true(log_fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(log_fd, STDERR_FILENO);

    for (int i = 0; i < 20; i++) {
        request("POST", "/serve/dead/v1/chat/completions", ALICE, "{\"model\":\"m\"}", &r);
        assert_int_equal(r.status, 502);
        reply_free(&r);
    }
    usleep(1100000);
    request("POST", "/serve/dead/v1/chat/completions", ALICE, "{\"model\":\"m\"}", &r);
    reply_free(&r);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(log_fd);
    size_t lines = count_lines_with(path, "request to upstream");
    size_t summaries = count_lines_with(path, "(19 more failed upstream requests");
    unlink(path);

    assert_int_equal(lines, 2);
    assert_int_equal(summaries, 1);
}

/* A token revoked while the gateway runs: requests get 503 once the state
 * is stale, and the error is logged once per 30 s, not once per poll. */
static void proxy_revoked_token_logged_once(void **state)
{
    char path[] = "/tmp/test_gw_proxy_log_XXXXXX";
    char code[64] = "";
    int status = 0;

    (void)state;
    int log_fd = mkstemp(path);
    assert_true(log_fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(log_fd, STDERR_FILENO);

    pthread_mutex_lock(&fake_lock);
    state_rejects = 1;
    pthread_mutex_unlock(&fake_lock);
    int64_t start = clock_mono_ms();
    while (clock_mono_ms() - start < 6000 && (status = probe_status(code, sizeof(code))) != 503)
        usleep(50000);
    /* Long enough for another rejected poll (one a second) after the one
     * that was logged. */
    usleep(1200000);
    pthread_mutex_lock(&fake_lock);
    state_rejects = 0;
    int rejections = state_rejections;
    pthread_mutex_unlock(&fake_lock);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(log_fd);
    size_t lines = count_lines_with(path, "rejects the gateway's api token with HTTP 401");
    unlink(path);

    assert_int_equal(status, 503);
    assert_string_equal(code, "state_stale");
    assert_true(rejections >= 2);
    assert_int_equal(lines, 1);

    start = clock_mono_ms();
    while (clock_mono_ms() - start < 6000 && (status = probe_status(code, sizeof(code))) != 404)
        usleep(50000);
    assert_int_equal(status, 404);
}

/* Records the server rejects as malformed would be rejected again, so they
 * are dropped instead of holding up every later record. */
static void proxy_rejected_records_dropped(void **state)
{
    reply_t r;

    (void)state;
    pthread_mutex_lock(&fake_lock);
    records_rejects = 1;
    records_rejections = 0;
    pthread_mutex_unlock(&fake_lock);
    request("GET", "/serve/quiet/v1/models?first=1", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_true(wait_flag(&records_rejections, 3000));

    pthread_mutex_lock(&fake_lock);
    records_rejects = 0;
    pthread_mutex_unlock(&fake_lock);
    request("GET", "/serve/quiet/v1/health/ready", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);

    json_t *rec = wait_record("i5", 200);
    assert_non_null(rec);
    json_decref(rec);
    usleep(600000);
    rec = wait_record_ms("i5", 200, 100);
    assert_null(rec);
}

/* Wait up to ms until the fake server has failed every post it was set
 * to fail. Returns 1 when it has. */
static int wait_failures_done(int64_t ms)
{
    int64_t deadline = clock_mono_ms() + ms;

    while (clock_mono_ms() < deadline) {
        pthread_mutex_lock(&fake_lock);
        int done = records_failed == num_records_failures;
        pthread_mutex_unlock(&fake_lock);
        if (done)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* Whether the records post body has a row of instance_id with from <= time
 * < to. */
static int post_has_row(json_t *body, const char *instance_id, int64_t from, int64_t to)
{
    json_t *records = json_array();
    char error[256] = "";
    json_t *rec;
    size_t i;
    int found = 0;

    assert_int_equal(rows_to_records(body, records, error, sizeof(error)), 0);
    json_array_foreach(records, i, rec) {
        json_int_t time = json_integer_value(json_object_get(rec, "time"));
        if (strcmp(json_string_value(json_object_get(rec, "instance_id")), instance_id) == 0 &&
            time >= from && time < to)
            found = 1;
    }
    json_decref(records);
    return found;
}

/* A post that fails (a 503, then a closed connection, then a 503 again) is
 * sent again with the same text, batch number included, before any newer
 * batch. Once it is accepted, the numbers go on from it. After a reused
 * connection closes, libcurl may itself resend the same text. */
static void proxy_failed_post_sent_again(void **state)
{
    reply_t r;

    (void)state;
    pthread_mutex_lock(&fake_lock);
    json_t *earlier = json_deep_copy(seen_posts);
    json_array_clear(seen_posts);
    records_failures[0] = 503;
    records_failures[1] = FAIL_CLOSE;
    records_failures[2] = 503;
    num_records_failures = 3;
    records_failed = 0;
    pthread_mutex_unlock(&fake_lock);

    /* Until now no post failed, so the gateway numbered them from 1, one
     * more each, rejected posts included. */
    size_t k;
    json_t *post;
    assert_true(json_array_size(earlier) > 0);
    json_array_foreach(earlier, k, post) {
        json_t *body = json_loads(json_string_value(json_object_get(post, "body")), 0, NULL);
        json_int_t number = json_integer_value(json_object_get(body, "batch"));
        json_decref(body);
        if (number != (json_int_t)k + 1)
            fail_msg("post %zu of the gateway has batch %lld", k + 1, (long long)number);
    }
    json_decref(earlier);

    /* The first record goes out in the post that fails. */
    int64_t first_at = clock_wall_ms();
    request("GET", "/serve/quiet/v1/models?retry=1", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_true(wait_flag(&records_failed, 3000));

    /* The gateway posts at most every 250 ms, so the second record is made
     * while the first post still waits for its retry. The pause puts the
     * two records in different milliseconds. */
    usleep(2000);
    int64_t second_at = clock_wall_ms();
    request("GET", "/serve/quiet/v1/health/ready?retry=2", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_true(wait_failures_done(5000));

    json_t *rec = wait_record("i5", 200);
    assert_non_null(rec);
    json_decref(rec);
    rec = wait_record("i5", 200);
    assert_non_null(rec);
    json_decref(rec);

    /* After the success the numbers go on. */
    int64_t third_at = clock_wall_ms();
    request("GET", "/serve/quiet/v1/models?retry=3", ALICE, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    rec = wait_record("i5", 200);
    assert_non_null(rec);
    json_decref(rec);
    /* Each record was stored once: a repeat would be a fourth. */
    usleep(300000);
    assert_null(wait_record_ms("i5", 200, 100));

    pthread_mutex_lock(&fake_lock);
    json_t *posts = json_deep_copy(seen_posts);
    num_records_failures = 0;
    records_failed = 0;
    pthread_mutex_unlock(&fake_lock);

    /* Find the first failed post. */
    size_t n = json_array_size(posts), failed = n;
    for (size_t i = 0; i < n && failed == n; i++) {
        if (json_integer_value(json_object_get(json_array_get(posts, i), "status")) != 204)
            failed = i;
    }
    assert_true(failed < n);
    const char *text = json_string_value(json_object_get(json_array_get(posts, failed), "body"));
    json_t *first = json_loads(text, 0, NULL);
    assert_non_null(first);
    json_int_t batch = json_integer_value(json_object_get(first, "batch"));
    assert_true(batch >= 1);
    assert_true(post_has_row(first, "i5", first_at, second_at));

    /* Posts before it, such as a heartbeat, carried older batches. */
    for (size_t i = 0; i < failed; i++) {
        json_t *body = json_loads(
            json_string_value(json_object_get(json_array_get(posts, i), "body")), 0, NULL);
        json_int_t number = json_integer_value(json_object_get(body, "batch"));
        json_decref(body);
        assert_true(number < batch);
    }

    /* Every post up to the one accepted is that text again, without the
     * record that was waiting. */
    size_t accepted = failed + 1;
    for (; accepted < n; accepted++) {
        post = json_array_get(posts, accepted);
        const char *again = json_string_value(json_object_get(post, "body"));
        if (strcmp(again, text) != 0)
            fail_msg("post %zu after the failure differs from the failed one:\n%s\n%s",
                     accepted - failed, text, again);
        if (json_integer_value(json_object_get(post, "status")) == 204)
            break;
    }
    assert_true(accepted < n);
    assert_true(accepted - failed >= 3);
    assert_false(post_has_row(first, "i5", second_at, INT64_MAX));

    /* Later posts number on from it, each one more, and carry the other
     * records. */
    int second_seen = 0, third_seen = 0;
    for (size_t i = accepted + 1; i < n; i++) {
        post = json_array_get(posts, i);
        json_t *body = json_loads(json_string_value(json_object_get(post, "body")), 0, NULL);
        assert_non_null(body);
        batch++;
        if (json_integer_value(json_object_get(body, "batch")) != batch)
            fail_msg("post %zu: expected batch %lld, got %lld", i, (long long)batch,
                     (long long)json_integer_value(json_object_get(body, "batch")));
        assert_int_equal(json_integer_value(json_object_get(post, "status")), 204);
        second_seen |= post_has_row(body, "i5", second_at, third_at);
        third_seen |= post_has_row(body, "i5", third_at, INT64_MAX);
        json_decref(body);
    }
    assert_true(second_seen);
    assert_true(third_seen);
    json_decref(first);
    json_decref(posts);
}

static void connection_limit_from_descriptors(void **state)
{
    (void)state;
    assert_int_equal(gw_connection_limit(20000, 10000), 9968);
    assert_int_equal(gw_connection_limit(1024, 10000), 480);
    assert_int_equal(gw_connection_limit(1048576, 10000), 524256);
    assert_int_equal(gw_connection_limit(65, 10000), 1);
    assert_int_equal(gw_connection_limit(0, 10000), 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(proxy_healthz_and_other),
        cmocka_unit_test(proxy_refusals),
        cmocka_unit_test(proxy_completion_usage),
        cmocka_unit_test(proxy_stream_strips_usage),
        cmocka_unit_test(proxy_stream_keeps_usage),
        cmocka_unit_test(proxy_client_abort),
        cmocka_unit_test(proxy_upstream_down),
        cmocka_unit_test(proxy_upstream_down_logged_once),
        cmocka_unit_test(proxy_upstream_cut),
        cmocka_unit_test(proxy_upstream_cut_mid_event),
        cmocka_unit_test(proxy_backpressure),
        cmocka_unit_test(proxy_pool_reuses_connection),
        cmocka_unit_test(proxy_first_byte_timeout_504),
        cmocka_unit_test(proxy_connect_timeout_504),
        cmocka_unit_test(proxy_pool_retries_closed_connection),
        cmocka_unit_test(proxy_activity_only_inference),
        cmocka_unit_test(proxy_heartbeat_in_flight),
        cmocka_unit_test(proxy_stalled_client_cancelled),
        cmocka_unit_test(proxy_query_token_dropped),
        cmocka_unit_test(proxy_stale_state_503),
        cmocka_unit_test(proxy_not_serving_503),
        cmocka_unit_test(proxy_two_authorizations_400),
        cmocka_unit_test(proxy_cancelled_stream_estimated),
        cmocka_unit_test(proxy_stream_without_usage_estimated),
        cmocka_unit_test(proxy_start_rejected_token),
        cmocka_unit_test(proxy_revoked_token_logged_once),
        cmocka_unit_test(proxy_rejected_records_dropped),
        cmocka_unit_test(proxy_failed_post_sent_again),
        cmocka_unit_test(connection_limit_from_descriptors),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
