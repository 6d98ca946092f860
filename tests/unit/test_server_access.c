/* Unit tests for who may do what through the server's REST API: the
 * process runtime, the built-in admin token, the data folder lock, deleting
 * users, grants and queues, token lifetimes and name rules. Each runs
 * in-process against a server on a free port with a temporary data folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_harness.h"

static server_t *start_server(const char *dir, char *err, size_t err_size)
{
    server_options_t opts = harness_options();

    opts.data_dir = dir;
    return server_start(&opts, err, err_size);
}

static int fixture_setup(void **state)
{
    return harness_start(state, "access", harness_options());
}

/* Call the API with a JSON body text (NULL for none); returns the status. */
static long call(fixture_t *f, const char *token, const char *method, const char *path,
                 const char *body, api_result_t *res)
{
    return harness_call(f, token, method, path, body, res);
}

/* Call and expect status; the body is dropped. */
static void expect(fixture_t *f, const char *token, const char *method, const char *path,
                   const char *body, long status)
{
    harness_expect(f, token, method, path, body, status, NULL);
}

/* Create the user dave with write on project p and an api token valid for
 * one day in f->user_token. */
static void make_dave(fixture_t *f)
{
    api_result_t res;

    expect(f, f->token, "POST", "/api/v1/users", "{\"name\":\"dave\"}", 201);
    expect(f, f->token, "POST", "/api/v1/users/dave/grants",
           "{\"project\":\"p\",\"permission\":\"write\"}", 200);
    call(f, f->token, "POST", "/api/v1/tokens", "{\"scope\":\"api\",\"user\":\"dave\",\"days\":1}",
         &res);
    assert_int_equal(res.status, 201);
    snprintf(f->user_token, sizeof(f->user_token), "%s",
             json_string_value(json_object_get(res.body, "token")));
    api_result_free(&res);
}

#define PROCESS_CONFIG                                                                          \
    "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","                \
    "\"command\":[\"x\"]}"
#define DOCKER_CONFIG                                                                           \
    "{\"name\":\"a\",\"project\":\"p\",\"image\":\"example/model:1\",\"runtime\":\"docker\"}"

/* Launch body with token and copy the new instance's id into id. */
static void launch(fixture_t *f, const char *token, const char *body, char *id, size_t id_size)
{
    api_result_t res;

    call(f, token, "POST", "/api/v1/apps", body, &res);
    if (res.status != 201)
        fail_msg("launch: expected 201, got %ld: %s", res.status, res.error);
    snprintf(id, id_size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
}

static void process_runtime_needs_admin(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char id[32], path[128];

    make_dave(f);
    call(f, f->user_token, "POST", "/api/v1/apps", PROCESS_CONFIG, &res);
    assert_int_equal(res.status, 403);
    assert_string_equal(res.error_code, "forbidden");
    assert_non_null(strstr(res.error, "process runtime runs commands as the agent's"));
    assert_non_null(strstr(res.error, "only admins"));
    api_result_free(&res);

    /* Cloning an admin's process instance is launching one too. */
    launch(f, f->token, PROCESS_CONFIG, id, sizeof(id));
    snprintf(path, sizeof(path), "/api/v1/apps/%s/clone", id);
    harness_expect(f, f->user_token, "POST", path, NULL, 403, "only admins");

    /* A writer may use the docker runtime. */
    launch(f, f->user_token, DOCKER_CONFIG, id, sizeof(id));
    call(f, f->token, "GET", "/api/v1/apps", NULL, &res);
    assert_int_equal(json_array_size(json_object_get(res.body, "apps")), 2);
    api_result_free(&res);
}

/* The id of the token whose "builtin" flag is builtin in GET /tokens. */
static void find_token(fixture_t *f, int builtin, char *id, size_t id_size)
{
    api_result_t res;
    json_t *token;
    size_t i;

    id[0] = '\0';
    call(f, f->token, "GET", "/api/v1/tokens", NULL, &res);
    json_array_foreach(json_object_get(res.body, "tokens"), i, token) {
        json_t *flag = json_object_get(token, "builtin");
        assert_true(json_is_boolean(flag));
        if (json_is_true(flag) == builtin && id[0] == '\0')
            snprintf(id, id_size, "%s", json_string_value(json_object_get(token, "id")));
    }
    api_result_free(&res);
}

static void builtin_token_not_revoked(void **state)
{
    fixture_t *f = *state;
    char builtin[64], other[64], path[128];

    expect(f, f->token, "POST", "/api/v1/tokens", "{\"scope\":\"gateway\"}", 201);
    find_token(f, 1, builtin, sizeof(builtin));
    find_token(f, 0, other, sizeof(other));
    assert_true(builtin[0] != '\0');
    assert_true(other[0] != '\0');

    snprintf(path, sizeof(path), "/api/v1/tokens/%s", builtin);
    harness_expect(f, f->token, "DELETE", path, NULL, 409, "admin-token");
    harness_expect(f, f->token, "DELETE", path, NULL, 409, "built-in gateway and agent");
    expect(f, f->token, "GET", "/api/v1/whoami", NULL, 200);

    snprintf(path, sizeof(path), "/api/v1/tokens/%s", other);
    expect(f, f->token, "DELETE", path, NULL, 200);
}

static void data_folder_locked(void **state)
{
    fixture_t *f = *state;
    char err[512] = "";

    server_t *second = start_server(f->dir, err, sizeof(err));
    assert_null(second);
    assert_non_null(strstr(err, f->dir));
    assert_non_null(strstr(err, "another nimdeck server"));

    /* The lock goes with the server, so a restart on the folder works. */
    server_stop(f->srv);
    f->srv = start_server(f->dir, err, sizeof(err));
    if (f->srv == NULL)
        fail_msg("restart failed: %s", err);
    f->url = server_url(f->srv);
    f->token = server_admin_token(f->srv);
    expect(f, f->token, "GET", "/api/v1/whoami", NULL, 200);
}

static void user_delete_ends_access(void **state)
{
    fixture_t *f = *state;
    char id[32], path[128];

    make_dave(f);
    launch(f, f->user_token, DOCKER_CONFIG, id, sizeof(id));
    harness_expect(f, f->token, "DELETE", "/api/v1/users/dave", NULL, 409, id);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/stop", id);
    expect(f, f->token, "POST", path, NULL, 202);
    expect(f, f->token, "DELETE", "/api/v1/users/dave", NULL, 200);

    expect(f, f->user_token, "GET", "/api/v1/whoami", NULL, 401);
    expect(f, f->token, "DELETE", "/api/v1/users/dave", NULL, 404);
    harness_expect(f, f->token, "POST", "/api/v1/users", "{\"name\":\"dave\"}", 409, "deleted");
    harness_expect(f, f->token, "DELETE", "/api/v1/users/admin", NULL, 409, "built-in admin");

    /* The stopped instance keeps its owner. */
    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    api_result_t res;
    call(f, f->token, "GET", path, NULL, &res);
    assert_string_equal(json_string_value(json_object_get(res.body, "owner")), "dave");
    api_result_free(&res);
}

static void grant_delete_withdraws(void **state)
{
    fixture_t *f = *state;
    api_result_t res;

    make_dave(f);
    expect(f, f->user_token, "POST", "/api/v1/apps", DOCKER_CONFIG, 201);
    call(f, f->token, "DELETE", "/api/v1/users/dave/grants/p", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_true(json_is_true(json_object_get(res.body, "deleted")));
    api_result_free(&res);

    expect(f, f->user_token, "POST", "/api/v1/apps", DOCKER_CONFIG, 403);
    expect(f, f->token, "DELETE", "/api/v1/users/dave/grants/p", NULL, 404);
    expect(f, f->user_token, "DELETE", "/api/v1/users/dave/grants/p", NULL, 403);

    call(f, f->token, "GET", "/api/v1/users", NULL, &res);
    json_t *user;
    size_t i;
    json_array_foreach(json_object_get(res.body, "users"), i, user) {
        if (strcmp(json_string_value(json_object_get(user, "name")), "dave") == 0)
            assert_int_equal(json_array_size(json_object_get(user, "grants")), 0);
    }
    api_result_free(&res);
}

static void queue_delete_rules(void **state)
{
    fixture_t *f = *state;
    char id[32], path[128];

    expect(f, f->token, "POST", "/api/v1/queues", "{\"name\":\"gpu\"}", 201);
    launch(f, f->token,
           "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
           "\"command\":[\"x\"],\"queue\":\"gpu\"}",
           id, sizeof(id));
    harness_expect(f, f->token, "DELETE", "/api/v1/queues/gpu", NULL, 409, id);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/stop", id);
    expect(f, f->token, "POST", path, NULL, 202);
    expect(f, f->token, "DELETE", "/api/v1/queues/gpu", NULL, 200);
    expect(f, f->token, "DELETE", "/api/v1/queues/gpu", NULL, 404);
    harness_expect(f, f->token, "DELETE", "/api/v1/queues/default", NULL, 409, "default");

    make_dave(f);
    expect(f, f->token, "POST", "/api/v1/queues", "{\"name\":\"cpu\"}", 201);
    expect(f, f->user_token, "DELETE", "/api/v1/queues/cpu", NULL, 403);
}

static void token_expiry_capped(void **state)
{
    fixture_t *f = *state;
    api_result_t res;

    make_dave(f);
    harness_expect(f, f->user_token, "POST", "/api/v1/tokens",
                   "{\"scope\":\"api\",\"days\":3650}", 400, "\"days\"");
    harness_expect(f, f->user_token, "POST", "/api/v1/tokens", "{\"days\":2}", 400, "days");

    call(f, f->user_token, "GET", "/api/v1/tokens", NULL, &res);
    json_int_t limit =
        json_integer_value(json_object_get(json_array_get(json_object_get(res.body, "tokens"), 0),
                                           "expires_at"));
    api_result_free(&res);

    /* Within the limit it works; the 30-day default is cut to the limit. */
    call(f, f->user_token, "POST", "/api/v1/tokens", "{\"days\":0.5}", &res);
    assert_int_equal(res.status, 201);
    assert_true(json_integer_value(json_object_get(res.body, "expires_at")) < limit);
    api_result_free(&res);
    call(f, f->user_token, "POST", "/api/v1/tokens", "{\"scope\":\"api\"}", &res);
    assert_int_equal(res.status, 201);
    assert_true(json_integer_value(json_object_get(res.body, "expires_at")) <= limit);
    api_result_free(&res);

    /* Admins are not bound by their own token. */
    expect(f, f->token, "POST", "/api/v1/tokens", "{\"scope\":\"api\",\"days\":3650}", 201);
}

static void dot_names_rejected(void **state)
{
    fixture_t *f = *state;

    harness_expect(f, f->token, "POST", "/api/v1/users", "{\"name\":\".\"}", 400, "\".\"");
    harness_expect(f, f->token, "POST", "/api/v1/users", "{\"name\":\"..\"}", 400, "\"..\"");
    expect(f, f->token, "POST", "/api/v1/users", "{\"name\":\"dave\"}", 201);
    harness_expect(f, f->token, "POST", "/api/v1/users/dave/grants",
                   "{\"project\":\"..\",\"permission\":\"read\"}", 400, "\"..\"");
    harness_expect(f, f->token, "POST", "/api/v1/users/dave/grants",
                   "{\"project\":\"a/b\",\"permission\":\"read\"}", 400, "\"a/b\"");
    harness_expect(f, f->token, "POST", "/api/v1/users/dave/grants",
                   "{\"project\":\"x\",\"permission\":\"owner\"}", 400, "\"owner\"");
    harness_expect(f, f->token, "PUT", "/api/v1/vault/%2E%2E", "{\"value\":\"v\"}", 400,
                   "\"..\"");
    harness_expect(f, f->token, "PUT", "/api/v1/vault/%2E", "{\"value\":\"v\"}", 400, "\".\"");
    harness_expect(f, f->token, "POST", "/api/v1/routes", "{\"name\":\".\"}", 400, "\".\"");
    harness_expect(f, f->token, "POST", "/api/v1/queues", "{\"name\":\"..\"}", 400, "\"..\"");
    harness_expect(f, f->token, "POST", "/api/v1/apps",
                   "{\"name\":\"a\",\"project\":\"..\",\"image\":\"i\",\"runtime\":\"process\","
                   "\"command\":[\"x\"]}",
                   400, "project");
}

static void name_errors_name_value(void **state)
{
    fixture_t *f = *state;

    harness_expect(f, f->token, "POST", "/api/v1/routes", "{\"name\":\"Upper\"}", 400,
                   "\"Upper\"");
    harness_expect(f, f->token, "POST", "/api/v1/routes", "{\"name\":\"Upper\"}", 400, "a-z");
    harness_expect(f, f->token, "POST", "/api/v1/queues", "{\"name\":\"Gpu\"}", 400, "\"Gpu\"");
    harness_expect(f, f->token, "POST", "/api/v1/queues", "{\"name\":\"Gpu\"}", 400,
                   "starting with a letter or digit");
    harness_expect(f, f->token, "POST", "/api/v1/users", "{\"name\":\"a b\"}", 400, "\"a b\"");
    harness_expect(f, f->token, "POST", "/api/v1/agents", "{\"name\":\"a/b\"}", 400, "\"a/b\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(process_runtime_needs_admin, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(builtin_token_not_revoked, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(data_folder_locked, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(user_delete_ends_access, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(grant_delete_withdraws, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(queue_delete_rules, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(token_expiry_capped, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(dot_names_rejected, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(name_errors_name_value, fixture_setup, fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
