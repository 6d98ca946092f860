/* Unit tests for what the server's REST API checks and reports: the reason
 * of a queued instance, null env values taken from the vault, strict
 * request bodies, the Allow header of a 405, the status transitions of
 * agent reports and the gateway's request records in both forms. Each runs
 * in-process against a server on a free port. */
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
