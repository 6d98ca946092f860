/* Unit tests for the server's REST API, run in-process against a server on
 * a free port with a temporary data folder. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_internal.h"
#include "server_harness.h"

static int fixture_setup(void **state)
{
    server_options_t opts = harness_options();

    opts.gateway_url = "http://gw.test:1/";
    return harness_start(state, "server", opts);
}

/* Call the API with a JSON body text (NULL for none); returns the status. */
static long call(fixture_t *f, const char *token, const char *method, const char *path,
                 const char *body, api_result_t *res)
{
    return harness_call(f, token, method, path, body, res);
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

/* Launch body (JSON text) and copy the new instance's id into id. */
static void launch(fixture_t *f, const char *body, char *id, size_t id_size)
{
    api_result_t res;

    call(f, f->token, "POST", "/api/v1/apps", body, &res);
    assert_int_equal(res.status, 201);
    snprintf(id, id_size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
}

/* GET path and return a new reference to the JSON at key (NULL key: body). */
static json_t *get_json(fixture_t *f, const char *path, const char *key)
{
    api_result_t res;

    assert_int_equal(call(f, f->token, "GET", path, NULL, &res), 200);
    json_t *value = key ? json_incref(json_object_get(res.body, key)) : json_incref(res.body);
    api_result_free(&res);
    return value;
}

static void export_hides_vault_values(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char id[32], path[128];

    call(f, f->token, "PUT", "/api/v1/vault/HF_VALUE", "{\"value\":\"vault-secret-77\"}", &res);
    assert_int_equal(res.status, 200);
    api_result_free(&res);
    launch(f,
           "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
           "\"command\":[\"x\"],\"env\":{\"PLAIN\":\"vault-secret-77\",\"MODE\":\"fast\"}}",
           id, sizeof(id));

    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    json_t *config = get_json(f, path, "config");
    json_t *env = json_object_get(config, "env");
    assert_true(json_is_null(json_object_get(env, "PLAIN")));
    assert_string_equal(json_string_value(json_object_get(env, "MODE")), "fast");
    json_decref(config);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/export", id);
    config = get_json(f, path, NULL);
    env = json_object_get(config, "env");
    assert_true(json_is_null(json_object_get(env, "PLAIN")));
    assert_string_equal(json_string_value(json_object_get(env, "MODE")), "fast");
    json_decref(config);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/export?include_secrets=1", id);
    config = get_json(f, path, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(config, "env"), "PLAIN")),
                        "vault-secret-77");
    json_decref(config);

    call(f, f->token, "GET", "/api/v1/apps", NULL, &res);
    json_t *listed = json_object_get(json_array_get(json_object_get(res.body, "apps"), 0), "config");
    assert_true(json_is_null(json_object_get(json_object_get(listed, "env"), "PLAIN")));
    api_result_free(&res);
}

/* Clone id with body and return the new instance's env (a new reference). */
static json_t *clone_env(fixture_t *f, const char *id, const char *body)
{
    api_result_t res;
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/apps/%s/clone", id);
    call(f, f->token, "POST", path, body, &res);
    assert_int_equal(res.status, 201);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/export?include_secrets=1",
             json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
    json_t *config = get_json(f, path, NULL);
    json_t *env = json_incref(json_object_get(config, "env"));
    json_decref(config);
    return env;
}

static void clone_edits_in_order(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char id[32], path[128];

    launch(f,
           "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
           "\"command\":[\"x\"],\"env\":{\"KEEP\":\"k\"}}",
           id, sizeof(id));

    /* Set then unset leaves the key out; unset then set keeps it. */
    json_t *env = clone_env(f, id,
                            "{\"edits\":[{\"set\":\"env.A\",\"value\":\"1\"},{\"unset\":\"env.A\"}]}");
    assert_null(json_object_get(env, "A"));
    assert_string_equal(json_string_value(json_object_get(env, "KEEP")), "k");
    json_decref(env);

    env = clone_env(f, id, "{\"edits\":[{\"unset\":\"env.A\"},{\"set\":\"env.A\",\"value\":\"2\"}]}");
    assert_string_equal(json_string_value(json_object_get(env, "A")), "2");
    json_decref(env);

    /* The older form applies every set, then every unset. */
    env = clone_env(f, id, "{\"set\":{\"env.B\":\"x\"},\"unset\":[\"env.KEEP\"]}");
    assert_string_equal(json_string_value(json_object_get(env, "B")), "x");
    assert_null(json_object_get(env, "KEEP"));
    json_decref(env);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/clone", id);
    call(f, f->token, "POST", path, "{\"edits\":[{\"set\":\"env.A\"}]}", &res);
    assert_int_equal(res.status, 400);
    assert_string_equal(res.error_code, "bad_request");
    api_result_free(&res);
    call(f, f->token, "POST", path, "{\"edits\":[{\"set\":\"env.A\",\"value\":1,\"unset\":\"x\"}]}",
         &res);
    assert_int_equal(res.status, 400);
    api_result_free(&res);
}

static void clone_cli_sends_order(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char id[32], path[128];

    launch(f,
           "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
           "\"command\":[\"x\"],\"env\":{\"A\":\"0\"}}",
           id, sizeof(id));

    char *argv[] = {"apps", "clone", id, "--server", (char *)f->url, "--token", (char *)f->token,
                    "--unset", "env.A", "--set", "env.A=five", "--set", "env.B=1", "--unset",
                    "env.B", "--json", NULL};
    assert_int_equal(cli_apps_main(16, argv), 0);

    call(f, f->token, "GET", "/api/v1/apps", NULL, &res);
    const char *clone_id =
        json_string_value(json_object_get(json_array_get(json_object_get(res.body, "apps"), 0), "id"));
    assert_string_not_equal(clone_id, id);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/export", clone_id);
    api_result_free(&res);

    json_t *config = get_json(f, path, NULL);
    json_t *env = json_object_get(config, "env");
    assert_string_equal(json_string_value(json_object_get(env, "A")), "five");
    assert_null(json_object_get(env, "B"));
    json_decref(config);
}

/* Send GET /api/v1/whoami with a raw Authorization header value; returns
 * the HTTP status. */
static int whoami_raw(fixture_t *f, const char *authorization)
{
    int port = atoi(strrchr(f->url, ':') + 1);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char request[512], reply[256] = "";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int status = 0;

    assert_true(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int len = snprintf(request, sizeof(request),
                       "GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                       "Connection: close\r\n\r\n",
                       authorization);
    assert_int_equal(write(fd, request, (size_t)len), len);
    ssize_t got = read(fd, reply, sizeof(reply) - 1);
    close(fd);
    if (got > 12)
        sscanf(reply, "HTTP/1.1 %d", &status);
    return status;
}

static void bearer_forms_accepted(void **state)
{
    fixture_t *f = *state;
    char header[256];

    snprintf(header, sizeof(header), "bearer %s", f->token);
    assert_int_equal(whoami_raw(f, header), 200);
    snprintf(header, sizeof(header), "BEARER\t%s", f->token);
    assert_int_equal(whoami_raw(f, header), 200);
    snprintf(header, sizeof(header), "Bearer \t %s \t ", f->token);
    assert_int_equal(whoami_raw(f, header), 200);
    snprintf(header, sizeof(header), "Bearer %s extra", f->token);
    assert_int_equal(whoami_raw(f, header), 401);
    snprintf(header, sizeof(header), "Basic %s", f->token);
    assert_int_equal(whoami_raw(f, header), 401);
    assert_int_equal(whoami_raw(f, "Bearer"), 401);
}

static void delete_waits_for_stop(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char path[128], id[32], agent[32];

    call(f, f->token, "POST", "/api/v1/agents", "{\"name\":\"a1\",\"running\":[]}", &res);
    snprintf(agent, sizeof(agent), "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
    launch(f,
           "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
           "\"command\":[\"x\"]}",
           id, sizeof(id));
    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0", agent);
    call(f, f->token, "GET", path, NULL, &res);
    api_result_free(&res);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    call(f, f->token, "POST", path, "{\"status\":\"loading\"}", &res);
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/stop", id);
    call(f, f->token, "POST", path, NULL, &res);
    assert_string_equal(json_string_value(json_object_get(res.body, "status")), "stopping");
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    assert_int_equal(call(f, f->token, "DELETE", path, NULL, &res), 409);
    assert_string_equal(res.error_code, "conflict");
    api_result_free(&res);
    assert_int_equal(call(f, f->token, "GET", path, NULL, &res), 200);
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    call(f, f->token, "POST", path, "{\"status\":\"stopped\"}", &res);
    api_result_free(&res);
    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    assert_int_equal(call(f, f->token, "DELETE", path, NULL, &res), 200);
    api_result_free(&res);
    assert_int_equal(call(f, f->token, "GET", path, NULL, &res), 404);
    api_result_free(&res);
}

static void missing_queue_names_command(void **state)
{
    fixture_t *f = *state;
    api_result_t res;

    call(f, f->token, "POST", "/api/v1/apps",
         "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
         "\"command\":[\"x\"],\"queue\":\"gpu\"}",
         &res);
    assert_int_equal(res.status, 400);
    assert_non_null(strstr(res.error, "nimdeck queues create gpu"));
    assert_non_null(strstr(res.error, "POST /api/v1/queues"));
    api_result_free(&res);

    call(f, f->token, "POST", "/api/v1/agents", "{\"name\":\"a1\",\"queues\":[\"gpu\"]}", &res);
    assert_int_equal(res.status, 400);
    if (strstr(res.error, "nimdeck queues create gpu") == NULL)
        fail_msg("message without the command: %s", res.error);
    api_result_free(&res);
}

static void agent_metrics_absent_null(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char path[128], id[32], agent[32];

    call(f, f->token, "POST", "/api/v1/agents", "{\"name\":\"a1\",\"running\":[]}", &res);
    snprintf(agent, sizeof(agent), "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
    launch(f,
           "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
           "\"command\":[\"x\"]}",
           id, sizeof(id));
    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0", agent);
    call(f, f->token, "GET", path, NULL, &res);
    api_result_free(&res);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    assert_int_equal(call(f, f->token, "POST", path, "{\"status\":\"loading\"}", &res), 200);
    api_result_free(&res);

    /* Two samples in one bucket, only one of them with a CPU value. */
    snprintf(path, sizeof(path), "/api/v1/agents/%s/metrics", agent);
    assert_int_equal(call(f, f->token, "POST", path, "{\"cpu_percent\":40}", &res), 204);
    api_result_free(&res);
    assert_int_equal(call(f, f->token, "POST", path, "{\"mem_used_bytes\":100}", &res), 204);
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/metrics?step=3600&range=3600", id);
    json_t *series = get_json(f, path, "series");
    assert_true(json_real_value(json_array_get(json_object_get(series, "cpu_percent"), 0)) == 40.0);
    assert_true(json_real_value(json_array_get(json_object_get(series, "mem_used_bytes"), 0)) ==
                100.0);
    assert_true(json_is_null(json_array_get(json_object_get(series, "net_rx_bytes_per_s"), 0)));
    json_decref(series);
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
        cmocka_unit_test_setup_teardown(export_hides_vault_values, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(clone_edits_in_order, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(clone_cli_sends_order, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(bearer_forms_accepted, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(delete_waits_for_stop, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(missing_queue_names_command, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(agent_metrics_absent_null, fixture_setup,
                                        fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
