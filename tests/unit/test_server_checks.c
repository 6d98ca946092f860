/* Unit tests for what the server's REST API checks and reports: the reason
 * of a queued instance, null env values taken from the vault, strict
 * request bodies, the Allow header of a 405, the status transitions of
 * agent reports, and the gateway's request records in both forms with
 * their value ranges and batch numbers. Each runs in-process against a
 * server on a free port. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/server_internal.h"
#include "server_harness.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/rec_rows.h"

static int fixture_setup(void **state)
{
    return harness_start(state, "checks", harness_options());
}

#define CONFIG_WITH_ENV(env)                                                                    \
    "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","                \
    "\"command\":[\"x\"],\"env\":" env "}"

static void launch(fixture_t *f, const char *body, char *id, size_t id_size)
{
    api_result_t res;

    admin_call(f, "POST", "/api/v1/apps", body, &res);
    if (res.status != 201)
        fail_msg("launch: expected 201, got %ld: %s", res.status, res.error);
    snprintf(id, id_size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
}

/* GET /apps/ID and copy the value of key (a string, or "null") into out. */
static void app_field(fixture_t *f, const char *id, const char *key, char *out, size_t size)
{
    api_result_t res;
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    const char *text = json_string_value(json_object_get(res.body, key));
    snprintf(out, size, "%s", text ? text : "null");
    api_result_free(&res);
}

/* Register an agent called name on queue default; its id goes into id. */
static void register_agent(fixture_t *f, const char *name, char *id, size_t id_size)
{
    api_result_t res;
    char body[128];

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"queues\":[\"default\"],\"running\":[]}",
             name);
    assert_int_equal(admin_call(f, "POST", "/api/v1/agents", body, &res), 200);
    snprintf(id, id_size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
}

/* Poll for work once without waiting; returns the leased id or "" in out. */
static void poll_work(fixture_t *f, const char *agent, char *out, size_t size)
{
    api_result_t res;
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0", agent);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    const char *id = json_string_value(json_object_get(json_object_get(res.body, "lease"), "id"));
    snprintf(out, size, "%s", id ? id : "");
    api_result_free(&res);
}

static void queued_reason_names_queue(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char id[32], agent[32], reason[256];

    admin_call(f, "GET", "/api/v1/gateway/state", NULL, &res);
    json_int_t generation = json_integer_value(json_object_get(res.body, "generation"));
    api_result_free(&res);

    launch(f, CONFIG_WITH_ENV("{}"), id, sizeof(id));
    app_field(f, id, "status_reason", reason, sizeof(reason));
    assert_string_equal(reason, "no agent serves queue default");

    /* The gateway state lists the queued instance, so the gateway can return 503, not 404. */
    admin_call(f, "GET", "/api/v1/gateway/state", NULL, &res);
    assert_true(json_integer_value(json_object_get(res.body, "generation")) != generation);
    json_t *listed = json_array_get(json_object_get(res.body, "instances"), 0);
    assert_string_equal(json_string_value(json_object_get(listed, "id")), id);
    assert_string_equal(json_string_value(json_object_get(listed, "status")), "queued");
    api_result_free(&res);

    register_agent(f, "a1", agent, sizeof(agent));
    app_field(f, id, "status_reason", reason, sizeof(reason));
    assert_string_equal(reason, "waiting for an agent serving queue default");
}

static void null_env_needs_vault(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char id[32], agent[32], leased[32], path[128], text[512];

    admin_call(f, "POST", "/api/v1/apps", CONFIG_WITH_ENV("{\"HF_TOKEN\":null}"), &res);
    assert_int_equal(res.status, 400);
    assert_string_equal(res.error_code, "invalid_config");
    assert_string_equal(res.error_field, "env.HF_TOKEN");
    assert_non_null(strstr(res.error, "nimdeck vault set HF_TOKEN"));
    api_result_free(&res);

    admin_expect(f, "PUT", "/api/v1/vault/HF_TOKEN", "{\"value\":\"hf-1\"}", 200, NULL);
    launch(f, CONFIG_WITH_ENV("{\"HF_TOKEN\":null}"), id, sizeof(id));

    /* A clone that sets another env value to null without a vault entry is rejected too. */
    snprintf(path, sizeof(path), "/api/v1/apps/%s/clone", id);
    admin_expect(f, "POST", path, "{\"edits\":[{\"set\":\"env.OTHER\",\"value\":null}]}", 400,
           "env OTHER");

    /* Deleted after the launch: the instance fails at lease time, naming it. */
    admin_expect(f, "DELETE", "/api/v1/vault/HF_TOKEN", NULL, 200, NULL);
    register_agent(f, "a1", agent, sizeof(agent));
    poll_work(f, agent, leased, sizeof(leased));
    assert_string_equal(leased, "");
    app_field(f, id, "status", text, sizeof(text));
    assert_string_equal(text, "failed");
    app_field(f, id, "status_reason", text, sizeof(text));
    assert_non_null(strstr(text, "HF_TOKEN"));
}

static void bodies_strict(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char id[32], path[128];

    admin_expect(f, "POST", "/api/v1/tokens", "{\"scope\":5}", 400, "\"scope\" must be a string");
    admin_expect(f, "POST", "/api/v1/tokens", "{\"bogus\":1}", 400, "\"bogus\"");
    admin_expect(f, "POST", "/api/v1/tokens", "{\"days\":\"7\"}", 400, "\"days\"");
    admin_expect(f, "POST", "/api/v1/tokens", "[1]", 400, "JSON object");
    admin_expect(f, "POST", "/api/v1/users", "{\"name\":\"dave\",\"bogus\":1}", 400, "\"bogus\"");
    admin_expect(f, "POST", "/api/v1/users", "{\"name\":\"dave\",\"admin\":1}", 400, "\"admin\"");
    admin_expect(f, "POST", "/api/v1/users", "{}", 400, "\"name\"");
    admin_expect(f, "PUT", "/api/v1/vault/A", "{\"value\":1}", 400, "\"value\"");
    admin_expect(f, "POST", "/api/v1/routes", "{\"name\":\"r\",\"x\":1}", 400, "\"x\"");
    admin_expect(f, "POST", "/api/v1/agents", "{\"name\":\"a1\",\"queue\":[\"default\"]}", 400,
           "\"queue\"");

    /* Nothing was created by the rejected requests. */
    admin_call(f, "GET", "/api/v1/users", NULL, &res);
    assert_int_equal(json_array_size(json_object_get(res.body, "users")), 1);
    api_result_free(&res);
    admin_call(f, "GET", "/api/v1/tokens", NULL, &res);
    assert_int_equal(json_array_size(json_object_get(res.body, "tokens")), 1);
    api_result_free(&res);

    launch(f, CONFIG_WITH_ENV("{}"), id, sizeof(id));
    snprintf(path, sizeof(path), "/api/v1/apps/%s/stop", id);
    admin_expect(f, "POST", path, "{\"wait\":true}", 400, "\"wait\"");
    snprintf(path, sizeof(path), "/api/v1/apps/%s/clone", id);
    admin_expect(f, "POST", path, "{\"edit\":[]}", 400, "\"edit\"");
    admin_expect(f, "POST", path, "{\"edits\":[{\"set\":\"env.A\",\"value\":1,\"x\":2}]}", 400,
           "edits[0].x");
    snprintf(path, sizeof(path), "/api/v1/apps/%s/logs", id);
    admin_expect(f, "POST", path, "{\"lines\":[{\"stream\":\"stdout\",\"text\":\"t\",\"level\":1}]}",
           400, "lines[0].level");
    admin_expect(f, "POST", "/api/v1/gateway/records",
           "{\"records\":[{\"instance_id\":\"x\",\"time\":1,\"status\":200,\"bogus\":1}]}", 400,
           "records[0].bogus");
    admin_expect(f, "POST", "/api/v1/gateway/records", "{\"activity\":[{\"in_flight\":\"1\"}]}", 400,
           "activity[0].in_flight");
}

/* Send method path raw and copy the response head into head. */
static void raw_request(fixture_t *f, const char *method, const char *path, char *head,
                        size_t size)
{
    int port = (int)strtol(strrchr(f->url, ':') + 1, NULL, 10);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char request[512];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int len = snprintf(request, sizeof(request),
                       "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n",
                       method, path, f->token);
    assert_int_equal(write(fd, request, (size_t)len), len);
    ssize_t got = read(fd, head, size - 1);
    close(fd);
    head[got > 0 ? got : 0] = '\0';
}

static void method_not_allowed_allow(void **state)
{
    fixture_t *f = *state;
    char head[2048];

    raw_request(f, "PUT", "/api/v1/apps", head, sizeof(head));
    assert_non_null(strstr(head, "HTTP/1.1 405"));
    assert_non_null(strstr(head, "\r\nAllow: POST, GET\r\n"));

    raw_request(f, "PATCH", "/api/v1/users/dave", head, sizeof(head));
    assert_non_null(strstr(head, "HTTP/1.1 405"));
    assert_non_null(strstr(head, "\r\nAllow: DELETE\r\n"));
}

/* Report body for instance id; expect status and a message part. */
static void report(fixture_t *f, const char *id, const char *body, long status, const char *part)
{
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    admin_expect(f, "POST", path, body, status, part);
}

static void report_transitions_checked(void **state)
{
    fixture_t *f = *state;
    char id[32], agent[32], leased[32], text[128];

    register_agent(f, "a1", agent, sizeof(agent));
    launch(f, CONFIG_WITH_ENV("{}"), id, sizeof(id));
    poll_work(f, agent, leased, sizeof(leased));
    assert_string_equal(leased, id);

    report(f, id, "{\"status\":\"ready\"}", 409, "queued");
    report(f, id, "{\"status\":\"starting\"}", 400, "\"starting\"");
    report(f, id, "{\"status\":\"loading\",\"upstream\":\"nohost\"}", 400, "\"nohost\"");
    report(f, id, "{\"status\":\"loading\",\"upstream\":\"127.0.0.1:70000\"}", 400, "70000");
    report(f, id, "{\"status\":\"loading\",\"upstream\":\"127.0.0.1:\"}", 400, "HOST:PORT");
    app_field(f, id, "status", text, sizeof(text));
    assert_string_equal(text, "queued");
    app_field(f, id, "upstream", text, sizeof(text));
    assert_string_equal(text, "null");

    report(f, id, "{\"status\":\"loading\",\"upstream\":\"127.0.0.1:8000\"}", 200, NULL);
    report(f, id, "{\"status\":\"ready\",\"upstream\":\"[::1]:8000\"}", 200, NULL);
    app_field(f, id, "status", text, sizeof(text));
    assert_string_equal(text, "active");

    report(f, id, "{\"status\":\"loading\"}", 409, "active");
    report(f, id, "{\"status\":\"ready\"}", 409, "active");
    app_field(f, id, "status", text, sizeof(text));
    assert_string_equal(text, "active");

    report(f, id, "{\"status\":\"failed\",\"reason\":\"boom\"}", 200, NULL);
    report(f, id, "{\"status\":\"stopped\"}", 200, NULL);
    report(f, id, "{\"status\":\"loading\"}", 409, "ended");
    app_field(f, id, "status", text, sizeof(text));
    assert_string_equal(text, "failed");
    app_field(f, id, "status_reason", text, sizeof(text));
    assert_string_equal(text, "boom");
}

static void report_while_stopping_kept(void **state)
{
    fixture_t *f = *state;
    char id[32], agent[32], leased[32], path[128], text[128];

    register_agent(f, "a1", agent, sizeof(agent));
    launch(f, CONFIG_WITH_ENV("{}"), id, sizeof(id));
    poll_work(f, agent, leased, sizeof(leased));
    snprintf(path, sizeof(path), "/api/v1/apps/%s/stop", id);
    admin_expect(f, "POST", path, NULL, 202, NULL);

    /* The agent started it before it saw the stop: late reports do not undo it. */
    report(f, id, "{\"status\":\"loading\",\"upstream\":\"127.0.0.1:8000\"}", 200, NULL);
    report(f, id, "{\"status\":\"ready\"}", 200, NULL);
    app_field(f, id, "status", text, sizeof(text));
    assert_string_equal(text, "stopping");
    app_field(f, id, "upstream", text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:8000");

    report(f, id, "{\"status\":\"stopped\"}", 200, NULL);
    app_field(f, id, "status_reason", text, sizeof(text));
    assert_string_equal(text, "stopped by user");
}

/* ---- request records from gateways: the "records" and "rows" forms ---- */

/* Launch a queued instance and copy its id into id. */
static void launch_plain(fixture_t *f, char *id, size_t id_size)
{
    launch(f, CONFIG_WITH_ENV("{}"), id, id_size);
}

/* Launch an instance, stop it and delete it, leaving its id in id. */
static void launch_deleted(fixture_t *f, char *id, size_t id_size)
{
    char path[128], status[32];

    launch_plain(f, id, id_size);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/stop", id);
    admin_expect(f, "POST", path, NULL, 202, NULL);
    app_field(f, id, "status", status, sizeof(status));
    assert_string_equal(status, "stopped");
    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    admin_expect(f, "DELETE", path, NULL, 200, NULL);
}

static int collect_record(const store_record_t *r, void *user)
{
    json_t *rec = json_pack("{s:s?, s:I, s:i, s:f, s:f, s:I, s:I, s:b}", "token_id", r->token_id,
                            "time", (json_int_t)r->time, "status", r->status, "latency_ms",
                            r->latency_ms, "ttfb_ms", r->ttfb_ms, "prompt_tokens",
                            (json_int_t)r->prompt_tokens, "completion_tokens",
                            (json_int_t)r->completion_tokens, "cancelled", r->cancelled);

    json_array_append_new(user, rec);
    return 0;
}

/* Read the records of instance_id from the server's own store, in time
 * order, into a new JSON array of objects with the store's fields. */
static json_t *stored_records(fixture_t *f, const char *instance_id)
{
    store_t *st = f->srv->store;
    json_t *out = json_array();

    assert_int_equal(st->ops->records_scan(st, instance_id, 0, INT64_MAX, collect_record, out),
                     STORE_OK);
    return out;
}

static size_t stored_count(fixture_t *f, const char *instance_id)
{
    json_t *records = stored_records(f, instance_id);
    size_t count = json_array_size(records);

    json_decref(records);
    return count;
}

/* Assert the fields of a stored record. token_id is NULL for no token. */
static void assert_stored(json_t *rec, const char *token_id, int64_t time, int status,
                          double latency_ms, double ttfb_ms, int64_t prompt, int64_t completion,
                          int cancelled)
{
    assert_non_null(rec);
    if (token_id == NULL)
        assert_true(json_is_null(json_object_get(rec, "token_id")));
    else
        assert_string_equal(json_string_value(json_object_get(rec, "token_id")), token_id);
    assert_int_equal(json_integer_value(json_object_get(rec, "time")), time);
    assert_int_equal(json_integer_value(json_object_get(rec, "status")), status);
    assert_true(json_real_value(json_object_get(rec, "latency_ms")) == latency_ms);
    assert_true(json_real_value(json_object_get(rec, "ttfb_ms")) == ttfb_ms);
    assert_int_equal(json_integer_value(json_object_get(rec, "prompt_tokens")), prompt);
    assert_int_equal(json_integer_value(json_object_get(rec, "completion_tokens")), completion);
    assert_int_equal(json_is_true(json_object_get(rec, "cancelled")), cancelled);
}

/* POST body to the records endpoint and return the status. The caller
 * frees res. */
static long post_records(fixture_t *f, const buf_t *body, api_result_t *res)
{
    return admin_call(f, "POST", "/api/v1/gateway/records", body->data, res);
}

static void gateway_rows_stored(void **state)
{
    fixture_t *f = *state;
    char a[32], b[32];
    buf_t body = BUF_INIT;
    api_result_t res;
    int64_t t = clock_wall_ms();

    launch_plain(f, a, sizeof(a));
    launch_plain(f, b, sizeof(b));
    buf_printf(&body,
               "{\"gateway_id\":\"gw-rows\",\"instances\":[\"%s\",\"%s\"],\"tokens\":[\"tok-1\"],"
               "\"rows\":\"0 0 %lld 200 120 15 3 7 0\\n"
               "1 -1 %lld 503 40 -1 -1 -1 1\\n"
               "0 -1 %lld 200 9 4 -1 5 2\\n\",\"activity\":[]}",
               a, b, (long long)t, (long long)t + 1, (long long)t + 2);
    assert_int_equal(post_records(f, &body, &res), 204);
    api_result_free(&res);

    json_t *stored = stored_records(f, a);
    assert_int_equal(json_array_size(stored), 2);
    assert_stored(json_array_get(stored, 0), "tok-1", t, 200, 120, 15, 3, 7, 0);
    /* An unknown prompt count is stored as 0, and the usage-estimated flag
     * is not stored. */
    assert_stored(json_array_get(stored, 1), NULL, t + 2, 200, 9, 4, 0, 5, 0);
    json_decref(stored);

    stored = stored_records(f, b);
    assert_int_equal(json_array_size(stored), 1);
    /* ttfb -1 reads back as -1 (stored as NULL), the counts as 0. */
    assert_stored(json_array_get(stored, 0), NULL, t + 1, 503, 40, -1, 0, 0, 1);
    json_decref(stored);
    buf_free(&body);
}

static void gateway_records_and_rows_stored(void **state)
{
    fixture_t *f = *state;
    char a[32];
    buf_t body = BUF_INIT;
    api_result_t res;
    int64_t t = clock_wall_ms();

    launch_plain(f, a, sizeof(a));
    buf_printf(&body,
               "{\"records\":[{\"instance_id\":\"%s\",\"token_id\":\"tok-old\",\"time\":%lld,"
               "\"status\":201,\"latency_ms\":5,\"ttfb_ms\":null,\"prompt_tokens\":null,"
               "\"completion_tokens\":4,\"cancelled\":true}],"
               "\"instances\":[\"%s\"],\"tokens\":[\"tok-new\"],"
               "\"rows\":\"0 0 %lld 202 6 2 1 -1 0\\n\"}",
               a, (long long)t, a, (long long)t + 1);
    assert_int_equal(post_records(f, &body, &res), 204);
    api_result_free(&res);

    json_t *stored = stored_records(f, a);
    assert_int_equal(json_array_size(stored), 2);
    assert_stored(json_array_get(stored, 0), "tok-old", t, 201, 5, -1, 0, 4, 1);
    assert_stored(json_array_get(stored, 1), "tok-new", t + 1, 202, 6, 2, 1, 0, 0);
    json_decref(stored);
    buf_free(&body);
}

static void gateway_rows_unknown_instance_dropped(void **state)
{
    fixture_t *f = *state;
    char a[32], deleted[32];
    buf_t body = BUF_INIT;
    api_result_t res;
    int64_t t = clock_wall_ms();

    launch_plain(f, a, sizeof(a));
    launch_deleted(f, deleted, sizeof(deleted));
    /* Rows of instance 1 (never existed) and 2 (deleted) between rows of
     * instance 0, and a record object of the deleted instance. */
    buf_printf(&body,
               "{\"records\":[{\"instance_id\":\"%s\",\"time\":%lld,\"status\":200}],"
               "\"instances\":[\"%s\",\"no-such-instance\",\"%s\"],"
               "\"rows\":\"0 -1 %lld 200 1 -1 -1 -1 0\\n"
               "1 -1 %lld 200 2 -1 -1 -1 0\\n"
               "2 -1 %lld 200 3 -1 -1 -1 0\\n"
               "0 -1 %lld 200 4 -1 -1 -1 0\\n\"}",
               deleted, (long long)t, a, deleted, (long long)t + 1, (long long)t + 2,
               (long long)t + 3, (long long)t + 4);
    assert_int_equal(post_records(f, &body, &res), 204);
    api_result_free(&res);

    json_t *stored = stored_records(f, a);
    assert_int_equal(json_array_size(stored), 2);
    assert_stored(json_array_get(stored, 0), NULL, t + 1, 200, 1, -1, 0, 0, 0);
    assert_stored(json_array_get(stored, 1), NULL, t + 4, 200, 4, -1, 0, 0, 0);
    json_decref(stored);
    assert_int_equal(stored_count(f, "no-such-instance"), 0);
    assert_int_equal(stored_count(f, deleted), 0);
    buf_free(&body);
}

/* One invalid "rows" text and what its error must name. */
typedef struct {
    const char *rows;        /* JSON string content, escapes included */
    const char *line;
    const char *field;
} bad_rows_t;

static void gateway_bad_row_rejected(void **state)
{
    static const bad_rows_t cases[] = {
        {"0 -1 1700000000000 200 1 -1 -1 -1 0\\n0 -1 1700000000000 99 1 -1 -1 -1 0\\n",
         "record line 2:", "status"},
        {"0 -1 1700000000000 200 1 -1 -1 -1 0\\n0 -1 1700000000000 200 1 -1 -1 -1 0\\n"
         "1 -1 1700000000000 200 1 -1 -1 -1 0\\n",
         "record line 3:", "instance"},
        {"0 0 1700000000000 200 1 -1 -1 -1 0\\n", "record line 1:", "token"},
        {"0 -1 1700000000000 200 1 -1 -1 -1 0\\r\\n", "record line 1:", "flags"},
        {"0 -1 1700000000000 200 1 -1 -1 -1 0", "record line 1:", "flags"},
        {"0 -1 1700000000000 200 1 -1 -1 -1 4\\n", "record line 1:", "flags"},
        {"0 -1 1700000000000 200 1 -1 -1 -1\\n", "record line 1:", "completion_tokens"},
        {"0 -1 1700000000000 200  1 -1 -1 -1 0\\n", "record line 1:", "latency_ms"},
        {"\\n", "record line 1:", "instance"},
    };
    fixture_t *f = *state;
    char a[32];
    int64_t t = clock_wall_ms();

    launch_plain(f, a, sizeof(a));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t body = BUF_INIT;
        api_result_t res;

        /* A valid record object in the same post, so a rejected post is
         * seen to store nothing. */
        buf_printf(&body,
                   "{\"records\":[{\"instance_id\":\"%s\",\"time\":%lld,\"status\":200}],"
                   "\"instances\":[\"%s\"],\"tokens\":[],\"rows\":\"%s\"}",
                   a, (long long)t, a, cases[i].rows);
        post_records(f, &body, &res);
        if (res.status != 400)
            fail_msg("case %zu: expected 400, got %ld: %s", i, res.status, res.error);
        /* The message comes from the JSON error body. */
        json_t *error = json_object_get(res.body, "error");
        assert_non_null(error);
        assert_string_equal(json_string_value(json_object_get(error, "message")), res.error);
        assert_string_equal(res.error_code, "bad_request");
        assert_string_equal(res.error_field, "rows");
        if (strstr(res.error, cases[i].line) == NULL || strstr(res.error, cases[i].field) == NULL)
            fail_msg("case %zu: expected \"%s\" and \"%s\" in: %s", i, cases[i].line,
                     cases[i].field, res.error);
        api_result_free(&res);
        buf_free(&body);
    }
    assert_int_equal(stored_count(f, a), 0);

    /* "rows" without "instances": no index is valid. */
    admin_expect(f, "POST", "/api/v1/gateway/records",
                 "{\"rows\":\"0 -1 1700000000000 200 1 -1 -1 -1 0\\n\"}", 400, "record line 1:");
    admin_expect(f, "POST", "/api/v1/gateway/records", "{\"rows\":[]}", 400, "\"rows\"");
    admin_expect(f, "POST", "/api/v1/gateway/records", "{\"instances\":\"x\",\"rows\":\"\"}", 400,
                 "\"instances\"");
}

static void gateway_ids_must_be_strings(void **state)
{
    fixture_t *f = *state;
    char a[32], long_id[129];
    buf_t body = BUF_INIT;
    api_result_t res;
    int64_t t = clock_wall_ms();

    launch_plain(f, a, sizeof(a));
    buf_printf(&body,
               "{\"instances\":[\"%s\",7],\"rows\":\"0 -1 %lld 200 1 -1 -1 -1 0\\n\"}", a,
               (long long)t);
    assert_int_equal(post_records(f, &body, &res), 400);
    assert_string_equal(res.error_field, "instances");
    assert_non_null(strstr(res.error, "\"instances[1]\" must be a string"));
    api_result_free(&res);

    buf_reset(&body);
    buf_printf(&body,
               "{\"instances\":[\"%s\"],\"tokens\":[null],"
               "\"rows\":\"0 -1 %lld 200 1 -1 -1 -1 0\\n\"}",
               a, (long long)t);
    assert_int_equal(post_records(f, &body, &res), 400);
    assert_string_equal(res.error_field, "tokens");
    assert_non_null(strstr(res.error, "\"tokens[0]\" must be a string"));
    api_result_free(&res);

    /* Ids are at most 127 characters, as the gateway's are. */
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    buf_reset(&body);
    buf_printf(&body,
               "{\"instances\":[\"%s\",\"%s\"],\"rows\":\"0 -1 %lld 200 1 -1 -1 -1 0\\n\"}", a,
               long_id, (long long)t);
    assert_int_equal(post_records(f, &body, &res), 400);
    assert_non_null(strstr(res.error, "\"instances[1]\""));
    assert_non_null(strstr(res.error, "127"));
    api_result_free(&res);

    assert_int_equal(stored_count(f, a), 0);
    buf_free(&body);
}

/* Write a post for instance id with objects records in the "records" form
 * and rows records in the "rows" form. */
static void records_post(buf_t *body, const char *id, int64_t t, size_t objects, size_t rows)
{
    buf_printf(body, "{\"records\":[");
    for (size_t i = 0; i < objects; i++)
        buf_printf(body, "%s{\"instance_id\":\"%s\",\"time\":%lld,\"status\":200}",
                   i > 0 ? "," : "", id, (long long)t + (long long)i);
    buf_printf(body, "],\"instances\":[\"%s\"],\"rows\":\"", id);
    for (size_t i = 0; i < rows; i++)
        buf_printf(body, "0 -1 %lld 200 1 -1 -1 -1 0\\n", (long long)t + (long long)(objects + i));
    buf_printf(body, "\"}");
}

static void gateway_records_limit(void **state)
{
    fixture_t *f = *state;
    char a[32];
    buf_t body = BUF_INIT;
    api_result_t res;
    int64_t t = clock_wall_ms();

    f->timeout_ms = 30000;
    launch_plain(f, a, sizeof(a));
    records_post(&body, a, t, 5000, 5001);
    assert_int_equal(post_records(f, &body, &res), 400);
    assert_non_null(strstr(res.error, "10001 records"));
    assert_non_null(strstr(res.error, "10000"));
    api_result_free(&res);
    assert_int_equal(stored_count(f, a), 0);

    /* Exactly the maximum is accepted and stored. */
    buf_reset(&body);
    records_post(&body, a, t, 5000, 5000);
    assert_int_equal(post_records(f, &body, &res), 204);
    api_result_free(&res);
    assert_int_equal(stored_count(f, a), 10000);

    /* The limit also applies to rows alone. */
    buf_reset(&body);
    records_post(&body, a, t, 0, 10001);
    assert_int_equal(post_records(f, &body, &res), 400);
    api_result_free(&res);
    assert_int_equal(stored_count(f, a), 10000);
    buf_free(&body);
}

/* ---- value ranges of record objects ---- */

/* One value of one key of a record object, as JSON text. */
typedef struct {
    const char *key;
    const char *value;
} record_value_t;

/* Write a record object for instance id at time t with key set to value
 * (JSON text), replacing the default of that key. */
static void record_object(buf_t *body, const char *id, int64_t t, const char *key,
                          const char *value)
{
    static const char *const keys[] = {"time", "status", "latency_ms", "ttfb_ms",
                                       "prompt_tokens", "completion_tokens", "token_id",
                                       "instance_id"};
    char defaults[8][48];

    snprintf(defaults[0], sizeof(defaults[0]), "%lld", (long long)t);
    snprintf(defaults[1], sizeof(defaults[1]), "200");
    snprintf(defaults[2], sizeof(defaults[2]), "5");
    snprintf(defaults[3], sizeof(defaults[3]), "2");
    snprintf(defaults[4], sizeof(defaults[4]), "3");
    snprintf(defaults[5], sizeof(defaults[5]), "4");
    snprintf(defaults[6], sizeof(defaults[6]), "\"tok-1\"");
    snprintf(defaults[7], sizeof(defaults[7]), "\"%s\"", id);

    buf_append_str(body, "{");
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        int replaced = key != NULL && strcmp(key, keys[k]) == 0;
        buf_printf(body, "%s\"%s\":%s", k > 0 ? "," : "", keys[k],
                   replaced ? value : defaults[k]);
    }
    buf_append_str(body, "}");
}

/* A string of n 'x' as JSON text, quotes included, in out. */
static const char *long_string(char *out, size_t size, size_t n)
{
    assert_true(n + 3 <= size);
    out[0] = '"';
    memset(out + 1, 'x', n);
    out[n + 1] = '"';
    out[n + 2] = '\0';
    return out;
}

/* Each value below or above the range of its key gets a 400 naming
 * "records[1].KEY", and the post stores nothing, not even the valid record
 * before it. */
static void gateway_record_ranges_checked(void **state)
{
    fixture_t *f = *state;
    char a[32], long_id[160], long_token[160];
    int64_t t = clock_wall_ms();

    long_string(long_id, sizeof(long_id), REC_ID_MAX + 1);
    long_string(long_token, sizeof(long_token), REC_ID_MAX + 1);
    const record_value_t cases[] = {
        {"status", "99"},
        {"status", "600"},
        {"status", "1099511627776"},          /* 2^40 */
        {"time", "-1"},
        {"time", "253402300800000"},          /* REC_TIME_MAX + 1 */
        {"time", "9223372036854775807"},
        {"latency_ms", "-1"},
        {"latency_ms", "-0.5"},
        {"latency_ms", "2592000001"},         /* REC_DURATION_MAX_MS + 1 */
        {"latency_ms", "2592000000.5"},
        {"latency_ms", "1e308"},
        {"ttfb_ms", "-1"},                    /* unknown is null in this form */
        {"ttfb_ms", "2592000001"},
        {"ttfb_ms", "1e308"},
        {"prompt_tokens", "-1"},
        {"prompt_tokens", "1000000001"},      /* REC_TOKENS_MAX + 1 */
        {"prompt_tokens", "9223372036854775807"},
        {"completion_tokens", "-1"},
        {"completion_tokens", "1000000001"},
        {"token_id", long_token},
        {"instance_id", long_id},
    };

    launch_plain(f, a, sizeof(a));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t body = BUF_INIT;
        api_result_t res;
        char field[64];

        buf_append_str(&body, "{\"records\":[");
        record_object(&body, a, t, NULL, NULL);
        buf_append_str(&body, ",");
        record_object(&body, a, t + 1, cases[i].key, cases[i].value);
        buf_append_str(&body, "]}");

        post_records(f, &body, &res);
        snprintf(field, sizeof(field), "records[1].%s", cases[i].key);
        if (res.status != 400)
            fail_msg("%s %.40s: expected 400, got %ld: %s", cases[i].key, cases[i].value,
                     res.status, res.error);
        assert_string_equal(res.error_code, "bad_request");
        if (strcmp(res.error_field, field) != 0)
            fail_msg("%s %.40s: expected the field %s, got \"%s\": %s", cases[i].key,
                     cases[i].value, field, res.error_field, res.error);
        api_result_free(&res);
        buf_free(&body);
    }
    assert_int_equal(stored_count(f, a), 0);

    /* The message states the range. */
    buf_t body = BUF_INIT;
    api_result_t res;
    buf_append_str(&body, "{\"records\":[");
    record_object(&body, a, t, "status", "600");
    buf_append_str(&body, "]}");
    assert_int_equal(post_records(f, &body, &res), 400);
    assert_string_equal(res.error_field, "records[0].status");
    if (strstr(res.error, "records[0].status") == NULL ||
        strstr(res.error, "from 100 to 599") == NULL)
        fail_msg("expected the field and \"from 100 to 599\" in: %s", res.error);
    api_result_free(&res);
    buf_free(&body);
    assert_int_equal(stored_count(f, a), 0);
}

/* The smallest and largest value of every key are accepted and stored as
 * sent; null counts and ttfb are stored as 0 and -1. */
static void gateway_record_range_ends_stored(void **state)
{
    fixture_t *f = *state;
    char a[32], token[160], token_json[160];
    buf_t body = BUF_INIT;
    api_result_t res;

    launch_plain(f, a, sizeof(a));
    long_string(token_json, sizeof(token_json), REC_ID_MAX);
    memset(token, 'x', REC_ID_MAX);
    token[REC_ID_MAX] = '\0';
    buf_printf(&body,
               "{\"records\":[{\"instance_id\":\"%s\",\"token_id\":null,\"time\":0,"
               "\"status\":100,\"latency_ms\":0,\"ttfb_ms\":0,\"prompt_tokens\":0,"
               "\"completion_tokens\":0},"
               "{\"instance_id\":\"%s\",\"token_id\":null,\"time\":1,\"status\":200,"
               "\"ttfb_ms\":null,\"prompt_tokens\":null,\"completion_tokens\":null},"
               "{\"instance_id\":\"%s\",\"token_id\":%s,\"time\":%lld,\"status\":599,"
               "\"latency_ms\":%lld,\"ttfb_ms\":%lld,\"prompt_tokens\":%lld,"
               "\"completion_tokens\":%lld}]}",
               a, a, a, token_json, REC_TIME_MAX, REC_DURATION_MAX_MS, REC_DURATION_MAX_MS,
               REC_TOKENS_MAX, REC_TOKENS_MAX);
    if (post_records(f, &body, &res) != 204)
        fail_msg("expected 204, got %ld: %s", res.status, res.error);
    api_result_free(&res);

    json_t *stored = stored_records(f, a);
    assert_int_equal(json_array_size(stored), 3);
    assert_stored(json_array_get(stored, 0), NULL, 0, 100, 0, 0, 0, 0, 0);
    assert_stored(json_array_get(stored, 1), NULL, 1, 200, 0, -1, 0, 0, 0);
    assert_stored(json_array_get(stored, 2), token, REC_TIME_MAX, 599,
                  (double)REC_DURATION_MAX_MS, (double)REC_DURATION_MAX_MS, REC_TOKENS_MAX,
                  REC_TOKENS_MAX, 0);
    json_decref(stored);
    buf_free(&body);
}

/* "instances" and "tokens" are checked whenever a post has them, also
 * without "rows", and a rejected post stores none of its record objects. */
static void gateway_ids_checked_without_rows(void **state)
{
    fixture_t *f = *state;
    char a[32], long_id[160];
    api_result_t res;
    int64_t t = clock_wall_ms();

    launch_plain(f, a, sizeof(a));
    long_string(long_id, sizeof(long_id), REC_ID_MAX + 1);

    const char *const bad_lists[] = {"\"instances\":[7]", "\"instances\":[\"i1\",null]",
                                     "\"tokens\":[null]", "\"tokens\":[{}]"};
    const char *const fields[] = {"instances", "instances", "tokens", "tokens"};
    for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]); i++) {
        buf_t body = BUF_INIT;

        buf_append_str(&body, "{\"records\":[");
        record_object(&body, a, t, NULL, NULL);
        buf_printf(&body, "],%s}", bad_lists[i]);
        post_records(f, &body, &res);
        if (res.status != 400)
            fail_msg("%s: expected 400, got %ld: %s", bad_lists[i], res.status, res.error);
        assert_string_equal(res.error_field, fields[i]);
        api_result_free(&res);
        buf_free(&body);
    }

    buf_t body = BUF_INIT;
    buf_printf(&body, "{\"instances\":[%s]}", long_id);
    assert_int_equal(post_records(f, &body, &res), 400);
    assert_string_equal(res.error_field, "instances");
    assert_non_null(strstr(res.error, "127"));
    api_result_free(&res);
    assert_int_equal(stored_count(f, a), 0);

    /* Valid lists that no row uses are accepted. */
    buf_reset(&body);
    buf_append_str(&body, "{\"records\":[");
    record_object(&body, a, t, NULL, NULL);
    buf_printf(&body, "],\"instances\":[\"%s\"],\"tokens\":[\"tok-1\"]}", a);
    assert_int_equal(post_records(f, &body, &res), 204);
    api_result_free(&res);
    assert_int_equal(stored_count(f, a), 1);
    buf_free(&body);
}

/* ---- batch numbers: a gateway's repeated post is stored once ---- */

/* POST one row for instance id at time t from gateway (NULL: no
 * "gateway_id") with batch (JSON text, NULL: no "batch"). Returns the
 * status; a status other than 204 or 400 fails the test. */
static long post_batch(fixture_t *f, const char *gateway, const char *batch, const char *id,
                       int64_t t)
{
    buf_t body = BUF_INIT;
    api_result_t res;

    buf_append_str(&body, "{");
    if (gateway != NULL)
        buf_printf(&body, "\"gateway_id\":\"%s\",", gateway);
    if (batch != NULL)
        buf_printf(&body, "\"batch\":%s,", batch);
    buf_printf(&body, "\"instances\":[\"%s\"],\"rows\":\"0 -1 %lld 200 1 -1 -1 -1 0\\n\"}", id,
               (long long)t);
    long status = post_records(f, &body, &res);
    if (status != 204 && status != 400)
        fail_msg("gateway %s batch %s: expected 204 or 400, got %ld: %s",
                 gateway ? gateway : "(none)", batch ? batch : "(none)", status, res.error);
    if (status == 400 && batch != NULL)
        assert_string_equal(res.error_field, "batch");
    api_result_free(&res);
    buf_free(&body);
    return status;
}

static void gateway_batch_stored_once(void **state)
{
    fixture_t *f = *state;
    char a[32];
    int64_t t = clock_wall_ms();

    launch_plain(f, a, sizeof(a));

    assert_int_equal(post_batch(f, "g1", "1", a, t), 204);
    assert_int_equal(stored_count(f, a), 1);
    /* The same post again, as after a timeout: accepted, not stored. */
    assert_int_equal(post_batch(f, "g1", "1", a, t), 204);
    assert_int_equal(stored_count(f, a), 1);

    assert_int_equal(post_batch(f, "g1", "2", a, t + 1), 204);
    assert_int_equal(stored_count(f, a), 2);
    /* An older batch arriving late is a repeat too. */
    assert_int_equal(post_batch(f, "g1", "1", a, t + 2), 204);
    assert_int_equal(stored_count(f, a), 2);

    /* Each gateway has its own numbers. */
    assert_int_equal(post_batch(f, "g2", "1", a, t + 3), 204);
    assert_int_equal(stored_count(f, a), 3);
    assert_int_equal(post_batch(f, "g1", "3", a, t + 4), 204);
    assert_int_equal(stored_count(f, a), 4);

    /* Without a batch number, or without a gateway id, every post is
     * stored. */
    assert_int_equal(post_batch(f, "g1", NULL, a, t + 5), 204);
    assert_int_equal(post_batch(f, "g1", NULL, a, t + 5), 204);
    assert_int_equal(stored_count(f, a), 6);
    assert_int_equal(post_batch(f, NULL, "1", a, t + 6), 204);
    assert_int_equal(post_batch(f, NULL, "1", a, t + 6), 204);
    assert_int_equal(stored_count(f, a), 8);
    assert_int_equal(post_batch(f, "", "1", a, t + 7), 204);
    assert_int_equal(post_batch(f, "", "1", a, t + 7), 204);
    assert_int_equal(stored_count(f, a), 10);

    /* Batch numbers start at 1 and are integers. */
    const char *const bad[] = {"0", "-5", "1.5", "\"3\"", "null", "true"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (post_batch(f, "g3", bad[i], a, t + 8) != 400)
            fail_msg("batch %s: expected 400", bad[i]);
    }
    assert_int_equal(stored_count(f, a), 10);

    /* A rejected post does not count as stored: the same number with a
     * valid body is stored after it. */
    buf_t body = BUF_INIT;
    api_result_t res;
    buf_printf(&body,
               "{\"gateway_id\":\"g3\",\"batch\":1,\"instances\":[\"%s\"],"
               "\"rows\":\"0 -1 %lld 99 1 -1 -1 -1 0\\n\"}",
               a, (long long)t + 9);
    assert_int_equal(post_records(f, &body, &res), 400);
    api_result_free(&res);
    buf_free(&body);
    assert_int_equal(post_batch(f, "g3", "1", a, t + 9), 204);
    assert_int_equal(stored_count(f, a), 11);
}

/* The server remembers SERVER_BATCH_GATEWAYS gateways. One more drops the
 * least recently seen, whose repeated post is then stored again, and no
 * other. */
static void gateway_batch_oldest_forgotten(void **state)
{
    fixture_t *f = *state;
    char a[32], gateway[32];
    int64_t t = clock_wall_ms();
    size_t expected = 0;

    launch_plain(f, a, sizeof(a));
    for (int i = 0; i <= SERVER_BATCH_GATEWAYS; i++) {
        snprintf(gateway, sizeof(gateway), "gw-%03d", i);
        if (post_batch(f, gateway, "1", a, t + i) != 204)
            fail_msg("%s batch 1: expected 204", gateway);
        expected++;
    }
    assert_int_equal(stored_count(f, a), expected);

    /* The second gateway is still remembered. */
    assert_int_equal(post_batch(f, "gw-001", "1", a, t + 1), 204);
    assert_int_equal(stored_count(f, a), expected);

    /* The first was forgotten when the last arrived. */
    assert_int_equal(post_batch(f, "gw-000", "1", a, t), 204);
    expected++;
    assert_int_equal(stored_count(f, a), expected);

    snprintf(gateway, sizeof(gateway), "gw-%03d", SERVER_BATCH_GATEWAYS);
    assert_int_equal(post_batch(f, gateway, "1", a, t + SERVER_BATCH_GATEWAYS), 204);
    assert_int_equal(stored_count(f, a), expected);
}

/* ---- metrics of records with large token counts ---- */

/* GET the metrics of instance id over the last two hours in one-minute
 * buckets and return the value of totals[key]. */
static json_int_t metrics_total(fixture_t *f, const char *id, const char *key)
{
    api_result_t res;
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/apps/%s/metrics?step=60&range=7200", id);
    if (admin_call(f, "GET", path, NULL, &res) != 200)
        fail_msg("GET %s: expected 200, got %ld: %s", path, res.status, res.error);
    json_t *total = json_object_get(json_object_get(res.body, "totals"), key);
    assert_true(json_is_integer(total));
    json_int_t value = json_integer_value(total);
    api_result_free(&res);
    return value;
}

/* Two records at the token maximum, in one bucket, sum exactly. */
static void gateway_metrics_large_tokens(void **state)
{
    fixture_t *f = *state;
    char a[32];
    buf_t body = BUF_INIT;
    api_result_t res;
    int64_t t = clock_wall_ms();

    launch_plain(f, a, sizeof(a));
    buf_printf(&body,
               "{\"records\":[{\"instance_id\":\"%s\",\"time\":%lld,\"status\":200,"
               "\"prompt_tokens\":%lld,\"completion_tokens\":%lld}],"
               "\"instances\":[\"%s\"],\"rows\":\"0 -1 %lld 200 1 -1 %lld %lld 0\\n\"}",
               a, (long long)t, REC_TOKENS_MAX, REC_TOKENS_MAX - 1, a, (long long)t,
               REC_TOKENS_MAX, REC_TOKENS_MAX);
    assert_int_equal(post_records(f, &body, &res), 204);
    api_result_free(&res);
    buf_free(&body);

    assert_int_equal(metrics_total(f, a, "requests"), 2);
    assert_int_equal(metrics_total(f, a, "prompt_tokens"), 2 * REC_TOKENS_MAX);
    assert_int_equal(metrics_total(f, a, "completion_tokens"), 2 * REC_TOKENS_MAX - 1);

    /* Both are in the bucket of t, whose sums are the same. */
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/apps/%s/metrics?step=60&range=7200", a);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    json_t *series = json_object_get(res.body, "series");
    json_t *prompt = json_object_get(series, "prompt_tokens");
    json_t *requests = json_object_get(series, "requests");
    size_t i, found = 0;
    json_t *count;
    json_array_foreach(requests, i, count) {
        if (json_integer_value(count) == 0)
            continue;
        found++;
        assert_int_equal(json_integer_value(count), 2);
        assert_int_equal(json_integer_value(json_array_get(prompt, i)), 2 * REC_TOKENS_MAX);
    }
    assert_int_equal(found, 1);
    api_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(queued_reason_names_queue, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(null_env_needs_vault, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(bodies_strict, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(method_not_allowed_allow, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(report_transitions_checked, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_rows_stored, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_records_and_rows_stored, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_rows_unknown_instance_dropped, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_bad_row_rejected, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_ids_must_be_strings, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_records_limit, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(report_while_stopping_kept, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_record_ranges_checked, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_record_range_ends_stored, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_ids_checked_without_rows, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_batch_stored_once, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_batch_oldest_forgotten, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(gateway_metrics_large_tokens, fixture_setup,
                                        fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
