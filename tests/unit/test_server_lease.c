/* Unit tests for GET /apps/ID/lease, which an agent calls after a restart
 * to adopt the containers it had started: the lease is given again to the
 * agent the instance is leased to, also while it is still queued (the
 * agent died before its first loading report), and to no one else. Each
 * runs in-process against a server on a free port. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_harness.h"

#define CONFIG                                                                                  \
    "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","                \
    "\"command\":[\"x\"],\"env\":{\"API_KEY\":\"lease-secret-value\"}}"

static int fixture_setup(void **state)
{
    return harness_start(state, "lease", harness_options());
}

static void launch(fixture_t *f, char *id, size_t id_size)
{
    api_result_t res;

    admin_call(f, "POST", "/api/v1/apps", CONFIG, &res);
    if (res.status != 201)
        fail_msg("launch: expected 201, got %ld: %s", res.status, res.error);
    snprintf(id, id_size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
}

/* Register (or register again) agent name on queue default with running
 * (a JSON array text); its id goes into id. */
static void register_agent(fixture_t *f, const char *name, const char *running, char *id,
                           size_t id_size)
{
    api_result_t res;
    char body[256];

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"queues\":[\"default\"],\"running\":%s}",
             name, running);
    assert_int_equal(admin_call(f, "POST", "/api/v1/agents", body, &res), 200);
    snprintf(id, id_size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
}

/* Poll for work once without waiting and check that it leases id. */
static void lease_once(fixture_t *f, const char *agent, const char *id)
{
    api_result_t res;
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0", agent);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    const char *leased = json_string_value(json_object_get(json_object_get(res.body, "lease"), "id"));
    assert_non_null(leased);
    assert_string_equal(leased, id);
    api_result_free(&res);
}

static void app_status(fixture_t *f, const char *id, char *out, size_t size)
{
    api_result_t res;
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    snprintf(out, size, "%s", json_string_value(json_object_get(res.body, "status")));
    api_result_free(&res);
}

static void lease_path(char *path, size_t size, const char *id, const char *agent)
{
    snprintf(path, size, "/api/v1/apps/%s/lease?agent=%s", id, agent);
}

/* The agent died after the lease, before its first loading report, and
 * registered again with the instance in running: it gets the lease, and
 * its loading report moves the instance on. */
static void queued_lease_given_to_its_agent(void **state)
{
    fixture_t *f = *state;
    api_result_t res;
    char id[40], agent[40], again[40], path[160], status[32], running[64];

    launch(f, id, sizeof(id));
    register_agent(f, "a1", "[]", agent, sizeof(agent));
    lease_once(f, agent, id);
    snprintf(running, sizeof(running), "[\"%s\"]", id);
    register_agent(f, "a1", running, again, sizeof(again));
    app_status(f, id, status, sizeof(status));
    assert_string_equal(status, "queued");

    lease_path(path, sizeof(path), id, again);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    assert_string_equal(json_string_value(json_object_get(res.body, "id")), id);
    assert_string_equal(json_string_value(json_object_get(res.body, "status")), "queued");
    json_t *env = json_object_get(res.body, "env");
    assert_string_equal(json_string_value(json_object_get(env, "API_KEY")), "lease-secret-value");
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    admin_expect(f, "POST", path,
           "{\"status\":\"loading\",\"reason\":\"adopted after an agent restart\","
           "\"upstream\":\"127.0.0.1:9000\"}",
           200, NULL);
    app_status(f, id, status, sizeof(status));
    assert_string_equal(status, "loading");
}

/* A queued instance that no agent has leased has nothing to adopt. */
static void queued_unleased_rejected(void **state)
{
    fixture_t *f = *state;
    char id[40], agent[40], path[160];

    register_agent(f, "a1", "[]", agent, sizeof(agent));
    /* Launched after the only poll, so it stays unleased. */
    launch(f, id, sizeof(id));
    lease_path(path, sizeof(path), id, agent);
    admin_expect(f, "GET", path, NULL, 409, "does not run on agent a1");
}

/* Another agent never gets the lease, whatever the status. */
static void other_agent_rejected(void **state)
{
    fixture_t *f = *state;
    char id[40], agent[40], other[40], path[160];

    launch(f, id, sizeof(id));
    register_agent(f, "a1", "[]", agent, sizeof(agent));
    register_agent(f, "a2", "[]", other, sizeof(other));
    lease_once(f, agent, id);
    lease_path(path, sizeof(path), id, other);
    admin_expect(f, "GET", path, NULL, 409, "does not run on agent a2");
}

/* An instance that has ended gives no lease to its former agent. */
static void ended_instance_rejected(void **state)
{
    fixture_t *f = *state;
    char id[40], agent[40], path[160];

    launch(f, id, sizeof(id));
    register_agent(f, "a1", "[]", agent, sizeof(agent));
    lease_once(f, agent, id);
    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    admin_expect(f, "POST", path, "{\"status\":\"failed\",\"reason\":\"agent restarted\"}", 200, NULL);
    lease_path(path, sizeof(path), id, agent);
    admin_expect(f, "GET", path, NULL, 409, "is failed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(queued_lease_given_to_its_agent, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(queued_unleased_rejected, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(other_agent_rejected, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(ended_instance_rejected, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
