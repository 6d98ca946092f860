/* Unit tests for the server's in-process bookkeeping: in-flight counts per
 * gateway and the long-poll wake walk, run on a bare server struct. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "server/server_internal.h"

static void in_flight_sums_gateways(void **state)
{
    server_t *srv = calloc(1, sizeof(*srv));
    (void)state;

    server_set_in_flight(srv, "gw-a", "inst1", 2, 1000);
    server_set_in_flight(srv, "gw-b", "inst1", 3, 1000);
    server_set_in_flight(srv, "gw-a", "inst2", 7, 1000);
    assert_int_equal(server_in_flight(srv, "inst1", 1000), 5);

    /* One gateway's 0 clears only its own count. */
    server_set_in_flight(srv, "gw-b", "inst1", 0, 1500);
    assert_int_equal(server_in_flight(srv, "inst1", 1500), 2);

    /* A report without gateway id counts as the gateway "". */
    server_set_in_flight(srv, "", "inst1", 1, 1500);
    assert_int_equal(server_in_flight(srv, "inst1", 1500), 3);
    server_set_in_flight(srv, "gw-a", "inst1", 4, 1600);
    assert_int_equal(server_in_flight(srv, "inst1", 1600), 5);
    assert_int_equal(srv->activity_count, 3);

    server_forget_in_flight(srv, "inst1");
    assert_int_equal(server_in_flight(srv, "inst1", 1600), 0);
    assert_int_equal(server_in_flight(srv, "inst2", 1600), 7);
    assert_int_equal(srv->activity_count, 1);

    free(srv->activity);
    free(srv);
}

static void in_flight_expires_unrefreshed(void **state)
{
    server_t *srv = calloc(1, sizeof(*srv));
    (void)state;

    server_set_in_flight(srv, "gw-a", "inst1", 2, 1000);
    server_set_in_flight(srv, "gw-b", "inst1", 1, 3000);
    assert_int_equal(server_in_flight(srv, "inst1", 1000 + SERVER_IN_FLIGHT_TTL_MS - 1), 3);

    /* gw-a stopped reporting: its count no longer keeps the instance busy. */
    assert_int_equal(server_in_flight(srv, "inst1", 1000 + SERVER_IN_FLIGHT_TTL_MS), 1);
    server_expire_in_flight(srv, 1000 + SERVER_IN_FLIGHT_TTL_MS);
    assert_int_equal(srv->activity_count, 1);

    /* A refresh keeps a count alive. */
    server_set_in_flight(srv, "gw-b", "inst1", 1, 7000);
    server_expire_in_flight(srv, 3000 + SERVER_IN_FLIGHT_TTL_MS);
    assert_int_equal(server_in_flight(srv, "inst1", 3000 + SERVER_IN_FLIGHT_TTL_MS), 1);
    server_expire_in_flight(srv, 7000 + SERVER_IN_FLIGHT_TTL_MS);
    assert_int_equal(srv->activity_count, 0);

    free(srv->activity);
    free(srv);
}

/* Evaluation counts of the fake waiters, by role. */
static int first_evaluations, state_evaluations, last_evaluations;
static int nested_kind = -1;

static void on_first(server_waiter_t *w, int timed_out)
{
    (void)timed_out;
    /* Only the first evaluation wakes again, as a state change would. */
    if (first_evaluations++ == 0 && nested_kind >= 0)
        server_waiters_wake(w->srv, (server_wait_kind_t)nested_kind);
}

static void on_state(server_waiter_t *w, int timed_out)
{
    (void)timed_out;
    state_evaluations++;
    server_waiter_reply(w, 304, NULL);
}

static void on_last(server_waiter_t *w, int timed_out)
{
    (void)w, (void)timed_out;
    last_evaluations++;
}

/* A waiter without an exchange, put at the head of the list. */
static server_waiter_t *fake_waiter(server_t *srv, server_wait_kind_t kind,
                                    server_waiter_fn evaluate)
{
    server_waiter_t *w = calloc(1, sizeof(*w));

    w->srv = srv;
    w->kind = kind;
    w->evaluate = evaluate;
    w->exchange_closed = 1;
    uv_timer_init(&srv->loop, &w->timer);
    w->timer.data = w;
    w->next = srv->waiters;
    if (srv->waiters != NULL)
        srv->waiters->prev = w;
    srv->waiters = w;
    return w;
}

/* Run the wake of `wake_kind` over the list first -> state -> last, where
 * the first waiter's evaluation wakes nested_kind. */
static server_t *run_wake(server_wait_kind_t wake_kind)
{
    server_t *srv = calloc(1, sizeof(*srv));

    first_evaluations = state_evaluations = last_evaluations = 0;
    assert_int_equal(uv_loop_init(&srv->loop), 0);
    fake_waiter(srv, SERVER_WAIT_WORK, on_last);
    fake_waiter(srv, SERVER_WAIT_STATE, on_state);
    fake_waiter(srv, SERVER_WAIT_WORK, on_first);
    server_waiters_wake(srv, wake_kind);
    return srv;
}

static void finish_waiters(server_t *srv)
{
    while (srv->waiters != NULL)
        server_waiter_reply(srv->waiters, 304, NULL);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&srv->loop), 0);
    free(srv);
}

static void wake_survives_nested_reply(void **state)
{
    (void)state;

    /* The nested state wake replies to the waiter after the first one. */
    nested_kind = SERVER_WAIT_STATE;
    server_t *srv = run_wake(SERVER_WAIT_WORK);
    assert_int_equal(first_evaluations, 1);
    assert_int_equal(state_evaluations, 1);
    assert_int_equal(last_evaluations, 1);
    finish_waiters(srv);
}

static void wake_nested_same_kind_once(void **state)
{
    (void)state;

    /* The nested work wake evaluates the last waiter; the outer walk must
     * not evaluate it a second time. */
    nested_kind = SERVER_WAIT_WORK;
    server_t *srv = run_wake(SERVER_WAIT_WORK);
    assert_int_equal(first_evaluations, 2);
    assert_int_equal(state_evaluations, 0);
    assert_int_equal(last_evaluations, 1);
    finish_waiters(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(in_flight_sums_gateways),
        cmocka_unit_test(in_flight_expires_unrefreshed),
        cmocka_unit_test(wake_survives_nested_reply),
        cmocka_unit_test(wake_nested_same_kind_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
