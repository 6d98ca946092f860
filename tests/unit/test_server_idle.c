/* Unit tests for the server's idle checker, run in-process against a server
 * on a free port with a one-second active window: in-flight requests per
 * gateway, repeated records batches that must not change them, the idle to
 * active flip, and lost agents. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_harness.h"
#include "util/clock.h"

static int fixture_start(void **state, int agent_timeout_s)
{
    server_options_t opts = harness_options();

    opts.active_window_s = 1;
    opts.agent_timeout_s = agent_timeout_s;
    if (harness_start(state, "idle", opts) != 0)
        return -1;
    ((fixture_t *)*state)->timeout_ms = 10000;
    return 0;
}

static int fixture_setup(void **state)
{
    return fixture_start(state, 60);
}

static int fixture_setup_short_agent_timeout(void **state)
{
    return fixture_start(state, 1);
}

static void post_ok(fixture_t *f, const char *path, const char *body, long expected)
{
    api_result_t res;

    assert_int_equal(admin_call(f, "POST", path, body, &res), expected);
    api_result_free(&res);
}

static void sleep_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* Register an agent serving queue and copy its id into agent. */
static void register_agent(fixture_t *f, const char *name, const char *queue, char *agent,
                           size_t size)
{
    api_result_t res;
    char body[128];

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"queues\":[\"%s\"],\"running\":[]}", name,
             queue);
    assert_int_equal(admin_call(f, "POST", "/api/v1/agents", body, &res), 200);
    snprintf(agent, size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);
}

/* Launch an instance on queue and lease it to agent; the id goes into id. */
static void launch_leased(fixture_t *f, const char *queue, const char *agent, char *id,
                          size_t size)
{
    api_result_t res;
    char path[128], body[256];

    snprintf(body, sizeof(body),
             "{\"name\":\"a\",\"project\":\"p\",\"image\":\"i\",\"runtime\":\"process\","
             "\"command\":[\"x\"],\"queue\":\"%s\"}",
             queue);
    assert_int_equal(admin_call(f, "POST", "/api/v1/apps", body, &res), 201);
    snprintf(id, size, "%s", json_string_value(json_object_get(res.body, "id")));
    api_result_free(&res);

    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0", agent);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(res.body, "lease"), "id")),
                        id);
    api_result_free(&res);
}

static void report(fixture_t *f, const char *id, const char *status)
{
    char path[128], body[64];

    snprintf(path, sizeof(path), "/api/v1/apps/%s/status", id);
    snprintf(body, sizeof(body), "{\"status\":\"%s\"}", status);
    post_ok(f, path, body, 200);
}

/* The instance's status into out. */
static void status_of(fixture_t *f, const char *id, char *out, size_t size)
{
    api_result_t res;
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/apps/%s", id);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    snprintf(out, size, "%s", json_string_value(json_object_get(res.body, "status")));
    api_result_free(&res);
}

/* Poll until the instance has status or timeout_ms passes; returns 1 when reached. */
static int wait_status(fixture_t *f, const char *id, const char *status, long timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    char now[32];

    for (;;) {
        status_of(f, id, now, sizeof(now));
        if (strcmp(now, status) == 0)
            return 1;
        if (clock_mono_ms() >= deadline)
            return 0;
        sleep_ms(100);
    }
}

static void activity(fixture_t *f, const char *gateway, const char *id, int in_flight)
{
    char body[256];

    if (gateway != NULL)
        snprintf(body, sizeof(body),
                 "{\"gateway_id\":\"%s\",\"records\":[],"
                 "\"activity\":[{\"instance_id\":\"%s\",\"in_flight\":%d}]}",
                 gateway, id, in_flight);
    else
        snprintf(body, sizeof(body),
                 "{\"records\":[],\"activity\":[{\"instance_id\":\"%s\",\"in_flight\":%d}]}", id,
                 in_flight);
    post_ok(f, "/api/v1/gateway/records", body, 204);
}

static void idle_turns_active_in_flight(void **state)
{
    fixture_t *f = *state;
    char agent[32], id[32], status[32];

    register_agent(f, "a1", "default", agent, sizeof(agent));
    launch_leased(f, "default", agent, id, sizeof(id));
    report(f, id, "loading");
    report(f, id, "ready");
    assert_true(wait_status(f, id, "idle", 3000));

    /* A long request starts: no new last activity, only the count. */
    activity(f, NULL, id, 1);
    assert_true(wait_status(f, id, "active", 1500));

    /* While it is in flight the instance does not turn idle again. */
    sleep_ms(1300);
    status_of(f, id, status, sizeof(status));
    assert_string_equal(status, "active");
}

static void in_flight_summed_over_gateways(void **state)
{
    fixture_t *f = *state;
    char agent[32], id[32], status[32];
    api_result_t res;

    register_agent(f, "a1", "default", agent, sizeof(agent));
    launch_leased(f, "default", agent, id, sizeof(id));
    report(f, id, "loading");
    report(f, id, "ready");

    activity(f, "gw-a", id, 1);
    activity(f, "gw-b", id, 1);
    activity(f, "gw-b", id, 0);

    /* gw-b's 0 does not end gw-a's request. */
    sleep_ms(1500);
    status_of(f, id, status, sizeof(status));
    assert_string_equal(status, "active");

    activity(f, "gw-a", id, 0);
    assert_true(wait_status(f, id, "idle", 1500));

    assert_int_equal(admin_call(f, "POST", "/api/v1/gateway/records", "{\"gateway_id\":7}", &res), 400);
    api_result_free(&res);
}

/* Post gateway's records batch number batch with in_flight for id. */
static void activity_batch(fixture_t *f, const char *gateway, int batch, const char *id,
                           int in_flight)
{
    char body[256];

    snprintf(body, sizeof(body),
             "{\"gateway_id\":\"%s\",\"batch\":%d,\"records\":[],"
             "\"activity\":[{\"instance_id\":\"%s\",\"in_flight\":%d}]}",
             gateway, batch, id, in_flight);
    post_ok(f, "/api/v1/gateway/records", body, 204);
}

/* A batch the server stored already is not applied again: its in-flight
 * count of 0 does not end the requests that the first post reported. */
static void repeated_batch_keeps_in_flight(void **state)
{
    fixture_t *f = *state;
    char agent[32], id[32], status[32];

    register_agent(f, "a1", "default", agent, sizeof(agent));
    launch_leased(f, "default", agent, id, sizeof(id));
    report(f, id, "loading");
    report(f, id, "ready");
    assert_true(wait_status(f, id, "idle", 3000));

    activity_batch(f, "gw-a", 5, id, 3);
    assert_true(wait_status(f, id, "active", 1500));

    /* Past the one-second window only the in-flight count keeps it active. */
    activity_batch(f, "gw-a", 5, id, 0);
    activity_batch(f, "gw-a", 4, id, 0);
    sleep_ms(1500);
    status_of(f, id, status, sizeof(status));
    assert_string_equal(status, "active");

    /* The next batch is applied. */
    activity_batch(f, "gw-a", 6, id, 0);
    assert_true(wait_status(f, id, "idle", 3000));
}

typedef struct {
    fixture_t *f;
    char path[128];
} poll_args_t;

static void *long_poll(void *arg)
{
    poll_args_t *args = arg;
    api_result_t res;

    api_call(args->f->url, args->f->token, "GET", args->path, NULL, 10000, &res);
    api_result_free(&res);
    return NULL;
}

static void lost_agent_fails_instances(void **state)
{
    fixture_t *f = *state;
    char lost[32], polling[32], running[32], stopping[32], queued[32], kept[32], status[32];
    char path[128];
    api_result_t res;

    register_agent(f, "gone", "default", lost, sizeof(lost));
    launch_leased(f, "default", lost, running, sizeof(running));
    report(f, running, "loading");
    report(f, running, "ready");
    launch_leased(f, "default", lost, stopping, sizeof(stopping));
    report(f, stopping, "loading");
    snprintf(path, sizeof(path), "/api/v1/apps/%s/stop", stopping);
    post_ok(f, path, NULL, 202);
    launch_leased(f, "default", lost, queued, sizeof(queued));

    /* An agent parked in a long poll is alive even past the timeout. It
     * serves another queue, so it does not take the lease given back. */
    post_ok(f, "/api/v1/queues", "{\"name\":\"other\"}", 201);
    register_agent(f, "polling", "other", polling, sizeof(polling));
    launch_leased(f, "other", polling, kept, sizeof(kept));
    report(f, kept, "loading");
    poll_args_t args = {.f = f};
    snprintf(args.path, sizeof(args.path), "/api/v1/agents/%s/work?wait=5", polling);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, long_poll, &args), 0);

    assert_true(wait_status(f, running, "failed", 4000));
    snprintf(path, sizeof(path), "/api/v1/apps/%s", running);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    assert_string_equal(json_string_value(json_object_get(res.body, "status_reason")),
                        "agent lost (no heartbeat for 1 s)");
    api_result_free(&res);
    assert_true(wait_status(f, stopping, "failed", 1500));

    /* The lease that never started goes back to the queue. */
    snprintf(path, sizeof(path), "/api/v1/apps/%s", queued);
    assert_int_equal(admin_call(f, "GET", path, NULL, &res), 200);
    assert_string_equal(json_string_value(json_object_get(res.body, "status")), "queued");
    assert_true(json_is_null(json_object_get(res.body, "agent")));
    api_result_free(&res);

    status_of(f, kept, status, sizeof(status));
    assert_string_equal(status, "loading");
    pthread_join(thread, NULL);
}

/* Register agent name with the running ids in running_json, and return the
 * "stop" list of the registration response. */
static json_t *register_running(fixture_t *f, const char *name, const char *running_json)
{
    api_result_t res;
    char body[256];

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"running\":%s}", name, running_json);
    assert_int_equal(admin_call(f, "POST", "/api/v1/agents", body, &res), 200);
    json_t *stop = json_incref(json_object_get(res.body, "stop"));
    api_result_free(&res);
    assert_true(json_is_array(stop));
    return stop;
}

static long poll_now(fixture_t *f, const char *agent)
{
    api_result_t res;
    char path[128];

    snprintf(path, sizeof(path), "/api/v1/agents/%s/work?wait=0", agent);
    long status = admin_call(f, "GET", path, NULL, &res);
    api_result_free(&res);
    return status;
}

static void lost_agent_gets_stop_list(void **state)
{
    fixture_t *f = *state;
    char back[32], slow[32], old[32], live[32], running[128], status[32];

    register_agent(f, "back", "default", back, sizeof(back));
    launch_leased(f, "default", back, old, sizeof(old));
    report(f, old, "loading");
    report(f, old, "ready");
    post_ok(f, "/api/v1/queues", "{\"name\":\"other\"}", 201);
    register_agent(f, "slow", "other", slow, sizeof(slow));
    launch_leased(f, "other", slow, live, sizeof(live));
    report(f, live, "loading");

    /* The slow agent polls within the timeout; "back" stays away. */
    int64_t deadline = clock_mono_ms() + 4000;
    while (!wait_status(f, old, "failed", 0) && clock_mono_ms() < deadline) {
        assert_int_equal(poll_now(f, slow), 200);
        sleep_ms(200);
    }
    assert_true(wait_status(f, old, "failed", 0));
    assert_int_equal(poll_now(f, slow), 200);
    status_of(f, live, status, sizeof(status));
    assert_string_equal(status, "loading");

    /* When the lost agent polls again, the server responds with 404 so that it
     * registers again. The registration response lists which of its
     * instances ended. */
    assert_int_equal(poll_now(f, back), 404);
    snprintf(running, sizeof(running), "[\"%s\", \"no-such-instance\"]", old);
    json_t *stop = register_running(f, "back", running);
    assert_int_equal(json_array_size(stop), 1);
    assert_string_equal(json_string_value(json_array_get(stop, 0)), old);
    json_decref(stop);
    assert_int_equal(poll_now(f, back), 200);

    /* A live instance in running is left alone. */
    snprintf(running, sizeof(running), "[\"%s\"]", live);
    stop = register_running(f, "slow", running);
    assert_int_equal(json_array_size(stop), 0);
    json_decref(stop);
    status_of(f, live, status, sizeof(status));
    assert_string_equal(status, "loading");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(idle_turns_active_in_flight, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(in_flight_summed_over_gateways, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(repeated_batch_keeps_in_flight, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(lost_agent_fails_instances,
                                        fixture_setup_short_agent_timeout, fixture_teardown),
        cmocka_unit_test_setup_teardown(lost_agent_gets_stop_list,
                                        fixture_setup_short_agent_timeout, fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
