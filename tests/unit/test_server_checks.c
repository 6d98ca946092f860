/* Unit tests for what the server's REST API checks and reports: the reason
 * of a queued instance, null env values taken from the vault, strict
 * request bodies, the Allow header of a 405 and the status transitions of
 * agent reports. Each runs in-process against a server on a free port. */
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

#include "server_harness.h"

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
        cmocka_unit_test_setup_teardown(report_while_stopping_kept, fixture_setup,
                                        fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
