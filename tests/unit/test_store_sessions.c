/* Unit tests for web login sessions in the SQLite store: insert, lookup,
 * delete, and pruning of expired and orphaned sessions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store_fixture.h"

static int fixture_setup(void **state)
{
    return store_fixture_setup(state, "sessions");
}

static void add_user(store_t *st, const char *name)
{
    store_user_t user = {.created_at = 1};

    snprintf(user.name, sizeof(user.name), "%s", name);
    assert_int_equal(st->ops->user_create(st, &user), STORE_OK);
}

static void add_token(store_t *st, const char *id, const char *user, int64_t expires_at)
{
    store_token_t token = {.created_at = 1, .expires_at = expires_at};

    snprintf(token.id, sizeof(token.id), "%s", id);
    snprintf(token.hash, sizeof(token.hash), "hash-of-%s", id);
    snprintf(token.user, sizeof(token.user), "%s", user);
    snprintf(token.scope, sizeof(token.scope), "api");
    assert_int_equal(st->ops->token_insert(st, &token), STORE_OK);
}

static void add_session(store_t *st, const char *hash, const char *user, const char *token_id,
                        int64_t expires_at)
{
    store_session_t session = {.created_at = 1, .expires_at = expires_at};

    snprintf(session.hash, sizeof(session.hash), "%s", hash);
    snprintf(session.user, sizeof(session.user), "%s", user);
    snprintf(session.token_id, sizeof(session.token_id), "%s", token_id);
    assert_int_equal(st->ops->session_insert(st, &session), STORE_OK);
}

static int session_exists(store_t *st, const char *hash)
{
    store_session_t out;
    int rc = st->ops->session_find(st, hash, &out);

    assert_true(rc == STORE_OK || rc == STORE_NOT_FOUND);
    return rc == STORE_OK;
}

static void session_round_trip(void **state)
{
    store_t *st = ((fixture_t *)*state)->st;
    store_session_t out;

    add_user(st, "alice");
    add_token(st, "tok1", "alice", 5000);
    add_session(st, "h1", "alice", "tok1", 3000);
    add_session(st, "h2", "alice", "", 4000);

    assert_int_equal(st->ops->session_find(st, "h1", &out), STORE_OK);
    assert_string_equal(out.user, "alice");
    assert_string_equal(out.token_id, "tok1");
    assert_int_equal(out.created_at, 1);
    assert_int_equal(out.expires_at, 3000);
    assert_int_equal(st->ops->session_find(st, "h2", &out), STORE_OK);
    assert_string_equal(out.token_id, "");
    assert_int_equal(st->ops->session_find(st, "nope", &out), STORE_NOT_FOUND);
}

static void session_duplicate_hash_rejected(void **state)
{
    store_t *st = ((fixture_t *)*state)->st;
    store_session_t again = {.created_at = 1, .expires_at = 2};

    add_user(st, "alice");
    add_session(st, "h1", "alice", "", 3000);
    snprintf(again.hash, sizeof(again.hash), "h1");
    snprintf(again.user, sizeof(again.user), "alice");
    assert_int_equal(st->ops->session_insert(st, &again), STORE_EXISTS);
}

static void session_delete_once(void **state)
{
    store_t *st = ((fixture_t *)*state)->st;

    add_user(st, "alice");
    add_session(st, "h1", "alice", "", 3000);
    assert_int_equal(st->ops->session_delete(st, "h1"), STORE_OK);
    assert_false(session_exists(st, "h1"));
    assert_int_equal(st->ops->session_delete(st, "h1"), STORE_NOT_FOUND);
}

static void prune_drops_ended_sessions(void **state)
{
    store_t *st = ((fixture_t *)*state)->st;
    char holder[64];

    add_user(st, "alice");
    add_user(st, "bob");
    add_token(st, "live", "alice", 10000);
    add_token(st, "revoked", "alice", 10000);
    add_token(st, "expired", "alice", 1500);
    add_session(st, "keep", "alice", "live", 9000);
    add_session(st, "keep-password", "alice", "", 9000);
    add_session(st, "old", "alice", "", 2000);
    add_session(st, "by-revoked", "alice", "revoked", 9000);
    add_session(st, "by-expired", "alice", "expired", 9000);
    add_session(st, "of-bob", "bob", "", 9000);
    assert_int_equal(st->ops->token_revoke(st, "revoked"), STORE_OK);
    assert_int_equal(st->ops->user_delete(st, "bob", 2000, holder, sizeof(holder)), STORE_OK);

    assert_int_equal(st->ops->session_prune(st, 2000), STORE_OK);
    assert_true(session_exists(st, "keep"));
    assert_true(session_exists(st, "keep-password"));
    assert_false(session_exists(st, "old"));
    assert_false(session_exists(st, "by-revoked"));
    assert_false(session_exists(st, "by-expired"));
    assert_false(session_exists(st, "of-bob"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(session_round_trip, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(session_duplicate_hash_rejected, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(session_delete_once, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(prune_drops_ended_sessions, fixture_setup,
                                        store_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
