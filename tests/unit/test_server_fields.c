/* Unit tests for the "field" of API errors: every error about one body key
 * (or a name in the path) names it, so that the web UI shows the message
 * beside that input. Each runs in-process against a server on a free port
 * with a temporary data folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_harness.h"

static int fixture_setup(void **state)
{
    return harness_start(state, "fields", harness_options());
}

/* Call the API and fail unless the reply is an error with status, code and
 * field (NULL: no field at all). */
static void expect_field(fixture_t *f, const char *token, const char *method, const char *path,
                         const char *body, long status, const char *code, const char *field)
{
    api_result_t res;

    harness_call(f, token, method, path, body, &res);
    if (res.status != status || strcmp(res.error_code, code) != 0)
        fail_msg("%s %s %s: expected %ld %s, got %ld %s: %s", method, path, body ? body : "",
                 status, code, res.status, res.error_code, res.error);
    if (field == NULL && res.error_field[0] != '\0')
        fail_msg("%s %s %s: expected no field, got \"%s\"", method, path, body ? body : "",
                 res.error_field);
    if (field != NULL && strcmp(res.error_field, field) != 0)
        fail_msg("%s %s %s: expected field \"%s\", got \"%s\" (%s)", method, path,
                 body ? body : "", field, res.error_field, res.error);
    api_result_free(&res);
}

/* Call and expect status; the body is dropped. */
static void expect(fixture_t *f, const char *token, const char *method, const char *path,
                   const char *body, long status)
{
    harness_expect(f, token, method, path, body, status, NULL);
}

/* Create the user erin with write on project demo and an api token valid
 * for one day in f->user_token. */
static void make_erin(fixture_t *f)
{
    api_result_t res;

    expect(f, f->token, "POST", "/api/v1/users", "{\"name\":\"erin\"}", 201);
    expect(f, f->token, "POST", "/api/v1/users/erin/grants",
           "{\"project\":\"demo\",\"permission\":\"write\"}", 200);
    harness_call(f, f->token, "POST", "/api/v1/tokens",
                 "{\"scope\":\"api\",\"user\":\"erin\",\"days\":1}", &res);
    assert_int_equal(res.status, 201);
    snprintf(f->user_token, sizeof(f->user_token), "%s",
             json_string_value(json_object_get(res.body, "token")));
    api_result_free(&res);
}

#define DOCKER_IN(project)                                                                      \
    "{\"name\":\"a\",\"project\":\"" project "\",\"image\":\"example/model:1\","               \
    "\"runtime\":\"docker\"}"

static void launch_other_project_names_project(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char path[128];

    make_erin(f);
    expect_field(f, f->user_token, "POST", "/api/v1/apps", DOCKER_IN("other"), 403, "forbidden",
                 "project");
    expect_field(f, f->user_token, "POST", "/api/v1/apps",
                 "{\"name\":\"a\",\"project\":\"demo\",\"image\":\"i\",\"runtime\":\"process\","
                 "\"command\":[\"x\"]}",
                 403, "forbidden", "runtime");

    /* A clone into a project without write: the same 403 and field. */
    harness_call(f, f->user_token, "POST", "/api/v1/apps", DOCKER_IN("demo"), &res);
    assert_int_equal(res.status, 201);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/clone",
             json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
    expect_field(f, f->user_token, "POST", path,
                 "{\"edits\":[{\"set\":\"project\",\"value\":\"other\"}]}", 403, "forbidden",
                 "project");
    expect_field(f, f->user_token, "POST", path, "{\"edits\":[{\"set\":\"env.A\"}]}", 400,
                 "bad_request", "edits[0]");
    expect_field(f, f->user_token, "POST", path, "{\"edits\":[{\"put\":\"env.A\"}]}", 400,
                 "bad_request", "edits[0].put");
}

static void token_errors_name_key(void **state)
{
    fixture_t *f = *state;

    make_erin(f);
    expect_field(f, f->token, "POST", "/api/v1/tokens", "{\"days\":0}", 400, "bad_request",
                 "days");
    expect_field(f, f->token, "POST", "/api/v1/tokens", "{\"days\":4000}", 400, "bad_request",
                 "days");
    expect_field(f, f->token, "POST", "/api/v1/tokens", "{\"days\":\"7\"}", 400, "bad_request",
                 "days");
    expect_field(f, f->user_token, "POST", "/api/v1/tokens", "{\"days\":30}", 400,
                 "bad_request", "days");
    expect_field(f, f->token, "POST", "/api/v1/tokens", "{\"scope\":\"all\"}", 400,
                 "bad_request", "scope");
    expect_field(f, f->token, "POST", "/api/v1/tokens", "{\"user\":\"nobody\"}", 400,
                 "bad_request", "user");
    expect_field(f, f->user_token, "POST", "/api/v1/tokens", "{\"user\":\"admin\"}", 403,
                 "forbidden", "user");
    expect_field(f, f->token, "POST", "/api/v1/tokens", "{\"scope\":\"embed\"}", 400,
                 "bad_request", "instance_id");
    expect_field(f, f->token, "POST", "/api/v1/tokens",
                 "{\"scope\":\"embed\",\"instance_id\":\"0123456789ab\"}", 404, "not_found",
                 "instance_id");
    expect_field(f, f->token, "POST", "/api/v1/tokens",
                 "{\"scope\":\"api\",\"instance_id\":\"0123456789ab\"}", 400, "bad_request",
                 "instance_id");
    expect_field(f, f->token, "POST", "/api/v1/tokens", "{\"dayz\":1}", 400, "bad_request",
                 "dayz");
}

static void vault_errors_name_key(void **state)
{
    fixture_t *f = *state;

    expect_field(f, f->token, "PUT", "/api/v1/vault/%2E%2E", "{\"value\":\"v\"}", 400,
                 "bad_request", "name");
    expect_field(f, f->token, "PUT", "/api/v1/vault/A%20B", "{\"value\":\"v\"}", 400,
                 "bad_request", "name");
    expect_field(f, f->token, "PUT", "/api/v1/vault/A", "{}", 400, "bad_request", "value");
    expect_field(f, f->token, "PUT", "/api/v1/vault/A", "{\"value\":5}", 400, "bad_request",
                 "value");
}

static void user_and_grant_errors_name_key(void **state)
{
    fixture_t *f = *state;

    expect_field(f, f->token, "POST", "/api/v1/users", "{\"name\":\"a b\"}", 400,
                 "bad_request", "name");
    expect_field(f, f->token, "POST", "/api/v1/users", "{}", 400, "bad_request", "name");
    expect_field(f, f->token, "POST", "/api/v1/users", "{\"name\":\"eve\",\"password\":\"\"}",
                 400, "bad_request", "password");
    expect_field(f, f->token, "POST", "/api/v1/users", "{\"name\":\"eve\",\"admin\":\"yes\"}",
                 400, "bad_request", "admin");
    expect_field(f, f->token, "POST", "/api/v1/users", "{\"name\":\"admin\"}", 409, "conflict",
                 "name");

    expect(f, f->token, "POST", "/api/v1/users", "{\"name\":\"eve\"}", 201);
    expect_field(f, f->token, "POST", "/api/v1/users/eve/grants",
                 "{\"project\":\"..\",\"permission\":\"read\"}", 400, "bad_request", "project");
    expect_field(f, f->token, "POST", "/api/v1/users/eve/grants",
                 "{\"project\":\"demo\",\"permission\":\"owner\"}", 400, "bad_request",
                 "permission");
    expect_field(f, f->token, "POST", "/api/v1/users/eve/grants", "{\"project\":\"demo\"}", 400,
                 "bad_request", "permission");
}

static void route_and_queue_errors_name_key(void **state)
{
    fixture_t *f = *state;

    expect_field(f, f->token, "POST", "/api/v1/routes", "{\"name\":\"Big\"}", 400,
                 "bad_request", "name");
    expect_field(f, f->token, "POST", "/api/v1/queues", "{\"name\":\"-gpu\"}", 400,
                 "bad_request", "name");
    expect_field(f, f->token, "POST", "/api/v1/queues", "{\"name\":\"default\"}", 409,
                 "conflict", "name");
    expect(f, f->token, "POST", "/api/v1/routes", "{\"name\":\"llama\"}", 201);
    expect_field(f, f->token, "POST", "/api/v1/routes", "{\"name\":\"llama\"}", 409, "conflict",
                 "name");
}

static void errors_without_key_have_no_field(void **state)
{
    fixture_t *f = *state;

    expect_field(f, NULL, "GET", "/api/v1/whoami", NULL, 401, "unauthorized", NULL);
    expect_field(f, f->token, "GET", "/api/v1/apps/0123456789ab", NULL, 404, "not_found", NULL);
    expect_field(f, f->token, "POST", "/api/v1/tokens", NULL, 400, "bad_request", NULL);
    expect_field(f, f->token, "DELETE", "/api/v1/queues/default", NULL, 409, "conflict", NULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(launch_other_project_names_project),
        T(token_errors_name_key),
        T(vault_errors_name_key),
        T(user_and_grant_errors_name_key),
        T(route_and_queue_errors_name_key),
        T(errors_without_key_have_no_field),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
