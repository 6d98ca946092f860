/* Unit tests for the server's REST API, run in-process against a server on
 * a free port with a temporary data folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/server.h"
#include "util/api_client.h"

typedef struct {
    char dir[64];
    server_t *srv;
    const char *url;
    const char *token;
} fixture_t;

static int fixture_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[512];

    snprintf(f->dir, sizeof(f->dir), "/tmp/nimdeck-server-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    strncat(f->dir, "/data", sizeof(f->dir) - strlen(f->dir) - 1);
    server_options_t opts = {.data_dir = f->dir, .listen_host = "127.0.0.1", .listen_port = 0,
                             .gateway_url = "http://gw.test:1/", .active_window_s = 60};
    f->srv = server_start(&opts, err, sizeof(err));
    if (f->srv == NULL) {
        fprintf(stderr, "server_start failed: %s\n", err);
        return -1;
    }
    f->url = server_url(f->srv);
    f->token = server_admin_token(f->srv);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];

    server_stop(f->srv);
    snprintf(cmd, sizeof(cmd), "rm -rf %.*s", (int)(strlen(f->dir) - 5), f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

static long call(fixture_t *f, const char *token, const char *method, const char *path,
                 const char *body, api_result_t *res)
{
    json_t *json = body ? json_loads(body, 0, NULL) : NULL;

    assert_int_equal(api_call(f->url, token, method, path, json, 5000, res), 0);
    json_decref(json);
    return res->status;
}

static void admin_token_file_private(void **state)
{
    fixture_t *f = *state;
    char path[128];
    struct stat info;

    snprintf(path, sizeof(path), "%s/admin-token", f->dir);
    assert_int_equal(stat(path, &info), 0);
    assert_int_equal(info.st_mode & 0777, 0600);
    assert_int_equal(stat(f->dir, &info), 0);
    assert_int_equal(info.st_mode & 0777, 0700);
    assert_int_equal(strncmp(f->token, "nd_", 3), 0);
}

static void auth_and_routing_errors(void **state)
{
    fixture_t *f = *state;
    api_result_t res;

    assert_int_equal(call(f, NULL, "GET", "/api/v1/health", NULL, &res), 200);
    api_result_free(&res);
    assert_int_equal(call(f, NULL, "GET", "/api/v1/whoami", NULL, &res), 401);
    assert_string_equal(res.error_code, "unauthorized");
    api_result_free(&res);
    assert_int_equal(call(f, "nd_wrong", "GET", "/api/v1/whoami", NULL, &res), 401);
    api_result_free(&res);
    assert_int_equal(call(f, f->token, "GET", "/api/v1/nowhere", NULL, &res), 404);
    assert_string_equal(res.error_code, "not_found");
    api_result_free(&res);
    assert_int_equal(call(f, f->token, "PUT", "/api/v1/apps", NULL, &res), 405);
    api_result_free(&res);
    assert_int_equal(call(f, f->token, "GET", "/api/v1/whoami", NULL, &res), 200);
    assert_true(json_is_true(json_object_get(res.body, "admin")));
    api_result_free(&res);
}

static void launch_invalid_names_field(void **state)
{
    fixture_t *f = *state;
    api_result_t res;

    call(f, f->token, "POST", "/api/v1/apps",
         "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
         "\"command\":[\"x\"],\"queue\":\"nope\"}",
         &res);
    assert_int_equal(res.status, 400);
    assert_string_equal(res.error_code, "invalid_config");
    assert_string_equal(res.error_field, "queue");
    api_result_free(&res);

    call(f, f->token, "GET", "/api/v1/apps", NULL, &res);
    assert_int_equal(json_array_size(json_object_get(res.body, "apps")), 0);
    api_result_free(&res);
}

static void launch_lease_and_stop(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char path[128], id[32], agent[32];

    call(f, f->token, "POST", "/api/v1/agents", "{\"name\":\"a1\",\"running\":[]}", &res);
    assert_int_equal(res.status, 200);
    snprintf(agent, sizeof(agent), "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);

    call(f, f->token, "POST", "/api/v1/apps",
         "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
         "\"command\":[\"x\"],\"env\":{\"API_TOKEN\":\"tok-secret-1\"}}",
         &res);
    assert_int_equal(res.status, 201);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(res.body, "id")));
    assert_int_equal(strlen(id), 12);
    assert_string_equal(json_string_value(json_object_get(res.body, "status")), "queued");
    assert_true(json_is_null(json_object_get(
        json_object_get(json_object_get(res.body, "config"), "env"), "API_TOKEN")));
    const char *endpoint = json_string_value(json_object_get(res.body, "endpoint"));
    assert_int_equal(strncmp(endpoint, "http://gw.test:1/serve/", 23), 0);
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0", agent);
    call(f, f->token, "GET", path, NULL, &res);
    json_t *lease = json_object_get(res.body, "lease");
    assert_string_equal(json_string_value(json_object_get(lease, "id")), id);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(lease, "env"), "API_TOKEN")),
        "tok-secret-1");
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/stop", id);
    call(f, f->token, "POST", path, NULL, &res);
    assert_int_equal(res.status, 202);
    assert_string_equal(json_string_value(json_object_get(res.body, "status")), "stopping");
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    call(f, f->token, "POST", path, "{\"status\":\"stopped\",\"exit_code\":0}", &res);
    assert_string_equal(json_string_value(json_object_get(res.body, "status")), "stopped");
    assert_string_equal(json_string_value(json_object_get(res.body, "status_reason")),
                        "stopped by user");
    api_result_free(&res);
}

static void state_changes_on_revoke(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char path[128];

    call(f, f->token, "POST", "/api/v1/tokens", "{\"scope\":\"gateway\",\"days\":0.5}", &res);
    assert_int_equal(res.status, 201);
    char token_id[32];
    snprintf(token_id, sizeof(token_id), "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);

    call(f, f->token, "GET", "/api/v1/gateway/state", NULL, &res);
    json_int_t generation = json_integer_value(json_object_get(res.body, "generation"));
    assert_int_equal(json_array_size(json_object_get(res.body, "tokens")), 1);
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/gateway/state?since=%lld&wait=0", (long long)generation);
    assert_int_equal(call(f, f->token, "GET", path, NULL, &res), 304);
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/tokens/%s", token_id);
    assert_int_equal(call(f, f->token, "DELETE", path, NULL, &res), 200);
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/gateway/state?since=%lld&wait=0", (long long)generation);
    assert_int_equal(call(f, f->token, "GET", path, NULL, &res), 200);
    assert_int_equal(json_array_size(json_object_get(res.body, "tokens")), 0);
    api_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(admin_token_file_private, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(auth_and_routing_errors, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(launch_invalid_names_field, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(launch_lease_and_stop, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(state_changes_on_revoke, fixture_setup, fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
