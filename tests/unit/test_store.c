/* Unit tests for the SQLite store: migrations, users and grants, tokens,
 * vault, instance lifecycle, console log cap, metrics aggregation and
 * sample downsampling. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/metrics.h"
#include "store/store.h"
#include "store/token.h"
#include "store/vault.h"
#include "store_fixture.h"

static int fixture_setup(void **state)
{
    return store_fixture_setup(state, "store");
}

static void add_user(store_t *st, const char *name, int admin)
{
    store_user_t user = {.admin = admin, .created_at = 1000};

    snprintf(user.name, sizeof(user.name), "%s", name);
    assert_int_equal(st->ops->user_create(st, &user), STORE_OK);
}

static void make_instance(store_instance_t *inst, const char *id, const char *route)
{
    memset(inst, 0, sizeof(*inst));
    snprintf(inst->id, sizeof(inst->id), "%s", id);
    snprintf(inst->name, sizeof(inst->name), "sim");
    snprintf(inst->project, sizeof(inst->project), "demo");
    snprintf(inst->owner, sizeof(inst->owner), "admin");
    snprintf(inst->status, sizeof(inst->status), "queued");
    snprintf(inst->queue, sizeof(inst->queue), "default");
    snprintf(inst->route, sizeof(inst->route), "%s", route ? route : "");
    snprintf(inst->path, sizeof(inst->path), "%s", route ? route : id);
    inst->created_at = 2000;
    inst->config = json_pack("{s:s}", "name", "sim");
}

static void migrations_idempotent_on_reopen(void **state)
{
    fixture_t *f = *state;
    char err[256];

    add_user(f->st, "admin", 1);
    store_close(f->st);

    f->st = store_open_sqlite(f->db_path, err, sizeof(err));
    assert_non_null(f->st);

    store_user_t user;
    assert_int_equal(f->st->ops->user_get(f->st, "admin", &user), STORE_OK);
    assert_int_equal(user.admin, 1);
}

static void users_duplicate_rejected(void **state)
{
    fixture_t *f = *state;
    store_user_t user = {.created_at = 1};

    add_user(f->st, "alice", 0);
    snprintf(user.name, sizeof(user.name), "alice");
    assert_int_equal(f->st->ops->user_create(f->st, &user), STORE_EXISTS);

    store_user_t missing;
    assert_int_equal(f->st->ops->user_get(f->st, "bob", &missing), STORE_NOT_FOUND);
}

static void grants_replace_earlier(void **state)
{
    fixture_t *f = *state;
    store_perm_t perm;

    add_user(f->st, "alice", 0);
    assert_int_equal(f->st->ops->grant_set(f->st, "alice", "demo", STORE_PERM_READ, 5), STORE_OK);
    assert_int_equal(f->st->ops->grant_set(f->st, "alice", "demo", STORE_PERM_WRITE, 6), STORE_OK);
    assert_int_equal(f->st->ops->grant_get(f->st, "alice", "demo", &perm), STORE_OK);
    assert_int_equal(perm, STORE_PERM_WRITE);
    assert_int_equal(f->st->ops->grant_get(f->st, "alice", "other", &perm), STORE_OK);
    assert_int_equal(perm, STORE_PERM_NONE);

    json_t *projects;
    assert_int_equal(f->st->ops->project_list(f->st, &projects), STORE_OK);
    assert_int_equal(json_array_size(projects), 1);
    json_decref(projects);
}

static void grant_unknown_user_changes_nothing(void **state)
{
    fixture_t *f = *state;
    json_t *projects;

    assert_int_not_equal(f->st->ops->grant_set(f->st, "ghost", "demo", STORE_PERM_READ, 5),
                         STORE_OK);
    assert_int_equal(f->st->ops->project_list(f->st, &projects), STORE_OK);
    assert_int_equal(json_array_size(projects), 0);
    json_decref(projects);
}

/* Insert a gateway token id for user, unrevoked, with a random hash. */
static void add_token(store_t *st, const char *id, const char *user)
{
    store_token_t token = {.created_at = 10, .expires_at = INT64_MAX / 2};
    char text[TOKEN_TEXT_LEN + 1];

    assert_int_equal(token_generate(text, sizeof(text)), 0);
    token_hash_hex(text, token.hash, sizeof(token.hash));
    snprintf(token.id, sizeof(token.id), "%s", id);
    snprintf(token.user, sizeof(token.user), "%s", user);
    snprintf(token.scope, sizeof(token.scope), "gateway");
    assert_int_equal(st->ops->token_insert(st, &token), STORE_OK);
}

static void user_delete_revokes_everything(void **state)
{
    fixture_t *f = *state;
    store_user_t user;
    store_token_t token;
    store_perm_t perm;
    char holder[64] = "x";
    const unsigned char blob[4] = {1, 2, 3, 4};

    add_user(f->st, "alice", 0);
    add_token(f->st, "tok-a", "alice");
    assert_int_equal(f->st->ops->grant_set(f->st, "alice", "demo", STORE_PERM_WRITE, 5), STORE_OK);
    assert_int_equal(f->st->ops->vault_put(f->st, "alice", "HF", blob, 4, blob, 4, 5), STORE_OK);

    assert_int_equal(f->st->ops->user_delete(f->st, "alice", 9, holder, sizeof(holder)),
                     STORE_OK);
    assert_string_equal(holder, "");
    assert_int_equal(f->st->ops->user_get(f->st, "alice", &user), STORE_NOT_FOUND);
    assert_int_equal(f->st->ops->token_get(f->st, "tok-a", &token), STORE_OK);
    assert_int_equal(token.revoked, 1);
    assert_int_equal(f->st->ops->grant_get(f->st, "alice", "demo", &perm), STORE_OK);
    assert_int_equal(perm, STORE_PERM_NONE);

    json_t *rows;
    assert_int_equal(f->st->ops->user_list(f->st, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);

    /* The name stays with the deleted user, and a second delete finds nothing. */
    snprintf(user.name, sizeof(user.name), "alice");
    user.created_at = 10;
    assert_int_equal(f->st->ops->user_create(f->st, &user), STORE_CONFLICT);
    assert_int_equal(f->st->ops->user_delete(f->st, "alice", 9, NULL, 0), STORE_NOT_FOUND);
}

static void user_delete_blocked_by_live(void **state)
{
    fixture_t *f = *state;
    store_instance_t inst;
    store_user_t user;
    char holder[64];

    add_user(f->st, "admin", 1);
    add_user(f->st, "alice", 0);
    add_token(f->st, "tok-a", "alice");
    assert_int_equal(f->st->ops->queue_create(f->st, "default", 1), STORE_OK);
    make_instance(&inst, "aaaaaaaaaaaa", NULL);
    snprintf(inst.owner, sizeof(inst.owner), "alice");
    assert_int_equal(f->st->ops->instance_insert(f->st, &inst, "status: queued", holder,
                                                 sizeof(holder)),
                     STORE_OK);

    assert_int_equal(f->st->ops->user_delete(f->st, "alice", 9, holder, sizeof(holder)),
                     STORE_CONFLICT);
    assert_string_equal(holder, "aaaaaaaaaaaa");
    assert_int_equal(f->st->ops->user_get(f->st, "alice", &user), STORE_OK);
    store_token_t token;
    assert_int_equal(f->st->ops->token_get(f->st, "tok-a", &token), STORE_OK);
    assert_int_equal(token.revoked, 0);

    /* Once the instance has ended the user can go, and the instance keeps its owner. */
    snprintf(inst.status, sizeof(inst.status), "stopped");
    inst.stopped_at = 3000;
    assert_int_equal(f->st->ops->instance_transition(f->st, &inst, 3000, NULL, 100), STORE_OK);
    assert_int_equal(f->st->ops->user_delete(f->st, "alice", 9, holder, sizeof(holder)),
                     STORE_OK);
    store_instance_t got;
    assert_int_equal(f->st->ops->instance_get(f->st, "aaaaaaaaaaaa", &got), STORE_OK);
    assert_string_equal(got.owner, "alice");
    store_instance_clear(&got);
    store_instance_clear(&inst);
}

static void grant_delete_removes_one(void **state)
{
    fixture_t *f = *state;
    store_perm_t perm;

    add_user(f->st, "alice", 0);
    assert_int_equal(f->st->ops->grant_set(f->st, "alice", "demo", STORE_PERM_READ, 5), STORE_OK);
    assert_int_equal(f->st->ops->grant_set(f->st, "alice", "other", STORE_PERM_READ, 5), STORE_OK);

    assert_int_equal(f->st->ops->grant_delete(f->st, "alice", "demo"), STORE_OK);
    assert_int_equal(f->st->ops->grant_get(f->st, "alice", "demo", &perm), STORE_OK);
    assert_int_equal(perm, STORE_PERM_NONE);
    assert_int_equal(f->st->ops->grant_get(f->st, "alice", "other", &perm), STORE_OK);
    assert_int_equal(perm, STORE_PERM_READ);
    assert_int_equal(f->st->ops->grant_delete(f->st, "alice", "demo"), STORE_NOT_FOUND);
}

static void queue_delete_blocked_by_live(void **state)
{
    fixture_t *f = *state;
    store_instance_t inst;
    char holder[64];

    add_user(f->st, "admin", 1);
    assert_int_equal(f->st->ops->queue_create(f->st, "gpu", 1), STORE_OK);
    make_instance(&inst, "aaaaaaaaaaaa", NULL);
    snprintf(inst.queue, sizeof(inst.queue), "gpu");
    assert_int_equal(f->st->ops->instance_insert(f->st, &inst, "status: queued", holder,
                                                 sizeof(holder)),
                     STORE_OK);

    assert_int_equal(f->st->ops->queue_delete(f->st, "gpu", holder, sizeof(holder)),
                     STORE_CONFLICT);
    assert_string_equal(holder, "aaaaaaaaaaaa");
    assert_int_equal(f->st->ops->queue_exists(f->st, "gpu"), 1);

    snprintf(inst.status, sizeof(inst.status), "failed");
    inst.stopped_at = 3000;
    assert_int_equal(f->st->ops->instance_transition(f->st, &inst, 3000, NULL, 100), STORE_OK);
    assert_int_equal(f->st->ops->queue_delete(f->st, "gpu", holder, sizeof(holder)), STORE_OK);
    assert_int_equal(f->st->ops->queue_exists(f->st, "gpu"), 0);
    assert_int_equal(f->st->ops->queue_delete(f->st, "gpu", holder, sizeof(holder)),
                     STORE_NOT_FOUND);
    store_instance_clear(&inst);
}

static void vault_name_rejects_dots(void **state)
{
    (void)state;
    assert_true(vault_name_valid("HF_TOKEN"));
    assert_true(vault_name_valid(".env"));
    assert_true(vault_name_valid("..."));
    assert_false(vault_name_valid("."));
    assert_false(vault_name_valid(".."));
    assert_false(vault_name_valid(""));
    assert_false(vault_name_valid("a/b"));
}

static void tokens_lookup_by_hash(void **state)
{
    fixture_t *f = *state;
    store_token_t token = {.created_at = 10, .expires_at = 20};
    char text[TOKEN_TEXT_LEN + 1];

    add_user(f->st, "admin", 1);
    assert_int_equal(token_generate(text, sizeof(text)), 0);
    token_hash_hex(text, token.hash, sizeof(token.hash));
    snprintf(token.id, sizeof(token.id), "tok1");
    snprintf(token.user, sizeof(token.user), "admin");
    snprintf(token.scope, sizeof(token.scope), "gateway");
    assert_int_equal(f->st->ops->token_insert(f->st, &token), STORE_OK);

    store_token_t found;
    assert_int_equal(f->st->ops->token_find_hash(f->st, token.hash, &found), STORE_OK);
    assert_string_equal(found.id, "tok1");
    assert_int_equal(found.expires_at, 20);
    assert_int_equal(found.revoked, 0);

    assert_int_equal(f->st->ops->token_revoke(f->st, "tok1"), STORE_OK);
    assert_int_equal(f->st->ops->token_find_hash(f->st, token.hash, &found), STORE_OK);
    assert_int_equal(found.revoked, 1);
    assert_int_equal(f->st->ops->token_revoke(f->st, "nope"), STORE_NOT_FOUND);

    json_t *rows;
    assert_int_equal(f->st->ops->token_list(f->st, NULL, "gateway", 0, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    assert_int_equal(f->st->ops->token_list(f->st, "admin", NULL, 1, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
}

static void vault_round_trip_encrypted(void **state)
{
    fixture_t *f = *state;
    vault_key_t key;
    char key_path[160], err[256];
    const char *secret = "super-secret-value-4711";

    add_user(f->st, "admin", 1);
    snprintf(key_path, sizeof(key_path), "%s/vault.key", f->dir);
    assert_int_equal(vault_key_load(key_path, &key, err, sizeof(err)), 0);

    struct stat info;
    assert_int_equal(stat(key_path, &info), 0);
    assert_int_equal(info.st_mode & 0777, 0600);
    assert_int_equal(info.st_size, VAULT_KEY_BYTES);

    assert_int_equal(vault_set(f->st, &key, "admin", "NGC_API_KEY", secret, 7), STORE_OK);
    json_t *values = vault_read_all(f->st, &key, "admin", err, sizeof(err));
    assert_non_null(values);
    assert_string_equal(json_string_value(json_object_get(values, "NGC_API_KEY")), secret);
    json_decref(values);

    /* The key file is reused, not replaced, on the next load. */
    vault_key_t again;
    assert_int_equal(vault_key_load(key_path, &again, err, sizeof(err)), 0);
    assert_memory_equal(key.bytes, again.bytes, VAULT_KEY_BYTES);

    /* Neither the database nor its WAL contains the plain value. */
    store_close(f->st);
    f->st = store_open_sqlite(f->db_path, err, sizeof(err));
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "cat %s/nimdeck.db* | grep -q -a %s", f->dir, secret);
    assert_int_not_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "cat %s/nimdeck.db* | grep -q -a NGC_API_KEY", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void vault_wrong_key_fails(void **state)
{
    fixture_t *f = *state;
    vault_key_t key, other;
    char err[256];

    add_user(f->st, "admin", 1);
    randombytes_buf(key.bytes, sizeof(key.bytes));
    randombytes_buf(other.bytes, sizeof(other.bytes));
    assert_int_equal(vault_set(f->st, &key, "admin", "A", "value-one", 1), STORE_OK);
    assert_null(vault_read_all(f->st, &other, "admin", err, sizeof(err)));
    assert_non_null(strstr(err, "A"));

    assert_int_equal(f->st->ops->vault_delete(f->st, "admin", "A"), STORE_OK);
    assert_int_equal(f->st->ops->vault_delete(f->st, "admin", "A"), STORE_NOT_FOUND);
}

static void instance_lifecycle(void **state)
{
    fixture_t *f = *state;
    store_instance_t inst, got;
    char holder[64];

    add_user(f->st, "admin", 1);
    assert_int_equal(f->st->ops->queue_create(f->st, "default", 1), STORE_OK);
    assert_int_equal(f->st->ops->route_create(f->st, "chat", 1), STORE_OK);

    make_instance(&inst, "aaaaaaaaaaaa", "chat");
    assert_int_equal(f->st->ops->instance_insert(f->st, &inst, "status: queued", holder,
                                                 sizeof(holder)),
                     STORE_OK);

    /* A second instance on the held route conflicts and names the holder. */
    store_instance_t second;
    make_instance(&second, "bbbbbbbbbbbb", "chat");
    assert_int_equal(f->st->ops->instance_insert(f->st, &second, "status: queued", holder,
                                                 sizeof(holder)),
                     STORE_CONFLICT);
    assert_string_equal(holder, "aaaaaaaaaaaa");
    assert_int_equal(f->st->ops->instance_get(f->st, "bbbbbbbbbbbb", &got), STORE_NOT_FOUND);

    /* Leasing moves it to the agent once. */
    json_t *queues = json_pack("[s]", "default");
    assert_int_equal(f->st->ops->instance_lease(f->st, queues, "agent-1", NULL, NULL, &got),
                     STORE_OK);
    assert_string_equal(got.id, "aaaaaaaaaaaa");
    assert_string_equal(got.agent, "agent-1");
    store_instance_clear(&got);
    assert_int_equal(f->st->ops->instance_lease(f->st, queues, "agent-2", NULL, NULL, &got),
                     STORE_NOT_FOUND);
    json_decref(queues);

    /* Ending the instance releases the route. */
    snprintf(inst.status, sizeof(inst.status), "stopped");
    snprintf(inst.agent, sizeof(inst.agent), "agent-1");
    inst.stopped_at = 3000;
    inst.has_exit_code = 1;
    inst.exit_code = 0;
    assert_int_equal(f->st->ops->instance_transition(f->st, &inst, 3000, "status: stopped", 100),
                     STORE_OK);
    assert_int_equal(f->st->ops->route_get(f->st, "chat", holder, sizeof(holder)), 1);
    assert_string_equal(holder, "");
    assert_int_equal(f->st->ops->instance_insert(f->st, &second, "status: queued", holder,
                                                 sizeof(holder)),
                     STORE_OK);

    assert_int_equal(f->st->ops->instance_get(f->st, "aaaaaaaaaaaa", &got), STORE_OK);
    assert_string_equal(got.status, "stopped");
    assert_int_equal(got.has_exit_code, 1);
    assert_int_equal(got.stopped_at, 3000);
    assert_string_equal(json_string_value(json_object_get(got.config, "name")), "sim");
    store_instance_clear(&got);

    json_t *history;
    assert_int_equal(f->st->ops->history_list(f->st, "aaaaaaaaaaaa", &history), STORE_OK);
    assert_int_equal(json_array_size(history), 2);
    json_decref(history);

    store_instance_t *list;
    size_t count;
    assert_int_equal(f->st->ops->instance_list(f->st, STORE_INSTANCES_LIVE, NULL, &list, &count),
                     STORE_OK);
    assert_int_equal(count, 1);
    assert_string_equal(list[0].id, "bbbbbbbbbbbb");
    store_instances_free(list, count);

    assert_int_equal(f->st->ops->instance_delete(f->st, "aaaaaaaaaaaa"), STORE_OK);
    assert_int_equal(f->st->ops->instance_get(f->st, "aaaaaaaaaaaa", &got), STORE_NOT_FOUND);
    store_instance_clear(&inst);
    store_instance_clear(&second);
}

static void instance_unknown_route(void **state)
{
    fixture_t *f = *state;
    store_instance_t inst;
    char holder[64];
    json_t *projects;

    add_user(f->st, "admin", 1);
    make_instance(&inst, "cccccccccccc", "missing");
    assert_int_equal(f->st->ops->instance_insert(f->st, &inst, NULL, holder, sizeof(holder)),
                     STORE_NOT_FOUND);
    assert_int_equal(f->st->ops->project_list(f->st, &projects), STORE_OK);
    assert_int_equal(json_array_size(projects), 0);
    json_decref(projects);
    store_instance_clear(&inst);
}

static void log_keeps_newest_lines(void **state)
{
    fixture_t *f = *state;
    store_instance_t inst;
    store_log_line_t lines[25];
    char texts[25][24];

    add_user(f->st, "admin", 1);
    make_instance(&inst, "dddddddddddd", NULL);
    assert_int_equal(f->st->ops->instance_insert(f->st, &inst, "status: queued", NULL, 0),
                     STORE_OK);
    for (int i = 0; i < 25; i++) {
        snprintf(texts[i], sizeof(texts[i]), "line %d", i);
        lines[i] = (store_log_line_t){.time = i, .stream = "stdout", .text = texts[i]};
    }
    assert_int_equal(f->st->ops->log_append(f->st, inst.id, lines, 25, 10), STORE_OK);

    json_t *rows;
    int64_t next;
    assert_int_equal(f->st->ops->log_list(f->st, inst.id, 0, 100, &rows, &next), STORE_OK);
    assert_int_equal(json_array_size(rows), 10);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "text")),
                        "line 15");
    assert_int_equal(next, 26);
    json_decref(rows);

    assert_int_equal(f->st->ops->log_list(f->st, inst.id, 24, 100, &rows, &next), STORE_OK);
    assert_int_equal(json_array_size(rows), 2);
    json_decref(rows);
    store_instance_clear(&inst);
}

static void metrics_buckets_aggregate(void **state)
{
    fixture_t *f = *state;
    store_instance_t inst;
    int64_t now = 1000000000000;   /* a multiple of 10 s */

    add_user(f->st, "admin", 1);
    make_instance(&inst, "eeeeeeeeeeee", NULL);
    assert_int_equal(f->st->ops->instance_insert(f->st, &inst, NULL, NULL, 0), STORE_OK);
    /* Machine samples count only while the instance runs. */
    inst.started_at = now - 60000;
    assert_int_equal(f->st->ops->instance_save(f->st, &inst), STORE_OK);

    store_record_t records[21];
    for (int i = 0; i < 20; i++)
        records[i] = (store_record_t){.instance_id = inst.id, .time = now + 1000, .status = 200,
                                      .latency_ms = (double)(i + 1) * 10, .ttfb_ms = 5,
                                      .prompt_tokens = 3, .completion_tokens = 10};
    records[20] = (store_record_t){.instance_id = inst.id, .time = now - 5000, .status = 502,
                                   .latency_ms = 7, .ttfb_ms = -1};
    assert_int_equal(f->st->ops->records_insert(f->st, records, 21), STORE_OK);

    store_sample_t sample = {.agent = "agent-1", .time = now + 2000, .cpu_percent = 40};
    assert_int_equal(f->st->ops->sample_insert(f->st, &sample), STORE_OK);
    sample.time = now + 3000;
    sample.cpu_percent = 60;
    assert_int_equal(f->st->ops->sample_insert(f->st, &sample), STORE_OK);

    json_t *m = metrics_build(f->st, inst.id, "agent-1", now + 4000, 10, 30);
    assert_non_null(m);
    json_t *series = json_object_get(m, "series");
    assert_int_equal(json_array_size(json_object_get(m, "time")), 3);

    /* Bucket 2 starts at now: 20 requests of 10..200 ms. */
    assert_int_equal(json_integer_value(json_array_get(json_object_get(series, "requests"), 2)),
                     20);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(series, "errors"), 1)), 1);
    assert_true(json_real_value(json_array_get(json_object_get(series, "latency_ms_mean"), 2)) ==
                105.0);
    assert_true(json_real_value(json_array_get(json_object_get(series, "latency_ms_p95"), 2)) ==
                190.0);
    assert_true(json_real_value(json_array_get(json_object_get(series, "tokens_per_second"), 2)) ==
                20.0);
    assert_true(json_real_value(json_array_get(json_object_get(series, "cpu_percent"), 2)) == 50.0);
    assert_true(json_is_null(json_array_get(json_object_get(series, "cpu_percent"), 0)));
    assert_true(json_is_null(json_array_get(json_object_get(series, "ttft_ms_mean"), 1)));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "totals"),
                                                        "completion_tokens")),
                     200);
    json_decref(m);
    store_instance_clear(&inst);
}

static void touch_only_live_instances(void **state)
{
    fixture_t *f = *state;
    store_instance_t inst, got;
    const char *statuses[] = {"queued", "loading", "active", "idle", "stopping", "stopped",
                              "failed"};
    const int touched[] = {0, 1, 1, 1, 1, 0, 0};

    add_user(f->st, "admin", 1);
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        char id[16];
        snprintf(id, sizeof(id), "touch%07zu", i);
        make_instance(&inst, id, NULL);
        assert_int_equal(f->st->ops->instance_insert(f->st, &inst, NULL, NULL, 0), STORE_OK);
        snprintf(inst.status, sizeof(inst.status), "%s", statuses[i]);
        inst.last_activity_at = 5000;
        inst.stopped_at = store_status_is_live(statuses[i]) ? 0 : 6000;
        assert_int_equal(f->st->ops->instance_save(f->st, &inst), STORE_OK);

        assert_int_equal(f->st->ops->instance_touch(f->st, id, 9000), STORE_OK);
        assert_int_equal(f->st->ops->instance_get(f->st, id, &got), STORE_OK);
        if (got.last_activity_at != (touched[i] ? 9000 : 5000))
            fail_msg("%s instance: last_activity_at %lld", statuses[i],
                     (long long)got.last_activity_at);
        store_instance_clear(&got);
        store_instance_clear(&inst);
    }
}

/* The samples of agent in time order, as a JSON array of [time, cpu, mem]
 * with null for an absent value. */
static int collect_sample(const store_sample_t *s, void *user)
{
    json_array_append_new(user, json_pack("[I, o, o]", (json_int_t)s->time,
                                          isnan(s->cpu_percent) ? json_null()
                                                                : json_real(s->cpu_percent),
                                          isnan(s->mem_used_bytes) ? json_null()
                                                                   : json_real(s->mem_used_bytes)));
    return 0;
}

static json_t *samples_of(store_t *st, const char *agent)
{
    json_t *rows = json_array();

    assert_int_equal(st->ops->samples_scan(st, agent, 0, INT64_MAX, collect_sample, rows),
                     STORE_OK);
    return rows;
}

static void insert_sample(store_t *st, const char *agent, int64_t time, double cpu, double mem)
{
    store_sample_t sample = {.agent = agent, .time = time, .cpu_percent = cpu,
                             .mem_used_bytes = mem, .mem_total_bytes = NAN,
                             .net_rx_bytes_per_s = NAN, .net_tx_bytes_per_s = NAN,
                             .disk_read_bytes_per_s = NAN, .disk_write_bytes_per_s = NAN};

    assert_int_equal(st->ops->sample_insert(st, &sample), STORE_OK);
}

static double row_value(json_t *rows, size_t row, size_t column)
{
    return json_real_value(json_array_get(json_array_get(rows, row), column));
}

static void samples_downsample_per_minute(void **state)
{
    fixture_t *f = *state;
    int64_t minute = 60000, base = 1000000020000 / minute * minute;

    /* agent-1: three samples in the first minute (one without memory), one
     * alone in the second, two in the third, which the cut splits. */
    insert_sample(f->st, "agent-1", base + 1000, 10, 100);
    insert_sample(f->st, "agent-1", base + 20000, 20, NAN);
    insert_sample(f->st, "agent-1", base + 59999, 60, 300);
    insert_sample(f->st, "agent-1", base + minute + 5000, 7, 70);
    insert_sample(f->st, "agent-1", base + 2 * minute + 1000, 1, 1);
    insert_sample(f->st, "agent-1", base + 2 * minute + 40000, 3, 3);
    insert_sample(f->st, "agent-2", base + 30000, 50, NAN);
    insert_sample(f->st, "agent-2", base + 31000, NAN, NAN);

    int64_t before = base + 2 * minute + 30000;
    assert_int_equal(f->st->ops->samples_downsample(f->st, before, minute), STORE_OK);

    json_t *rows = samples_of(f->st, "agent-1");
    assert_int_equal(json_array_size(rows), 4);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(rows, 0), 0)), base);
    assert_true(row_value(rows, 0, 1) == 30.0);
    assert_true(row_value(rows, 0, 2) == 200.0);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(rows, 1), 0)),
                     base + minute + 5000);
    assert_true(row_value(rows, 1, 1) == 7.0);
    /* The third minute is not complete before the cut, so it is kept. */
    assert_int_equal(json_integer_value(json_array_get(json_array_get(rows, 2), 0)),
                     base + 2 * minute + 1000);
    json_decref(rows);

    rows = samples_of(f->st, "agent-2");
    assert_int_equal(json_array_size(rows), 1);
    assert_true(row_value(rows, 0, 1) == 50.0);
    assert_true(json_is_null(json_array_get(json_array_get(rows, 0), 2)));
    json_decref(rows);

    /* A second run finds nothing left to merge. */
    assert_int_equal(f->st->ops->samples_downsample(f->st, before, minute), STORE_OK);
    rows = samples_of(f->st, "agent-1");
    assert_int_equal(json_array_size(rows), 4);
    assert_true(row_value(rows, 0, 1) == 30.0);
    json_decref(rows);
}

static void metrics_skip_absent_samples(void **state)
{
    fixture_t *f = *state;
    store_instance_t inst;
    int64_t now = 1000000000000;   /* a multiple of 10 s */

    add_user(f->st, "admin", 1);
    make_instance(&inst, "ffffffffffff", NULL);
    assert_int_equal(f->st->ops->instance_insert(f->st, &inst, NULL, NULL, 0), STORE_OK);
    inst.started_at = now;
    assert_int_equal(f->st->ops->instance_save(f->st, &inst), STORE_OK);
    insert_sample(f->st, "agent-1", now + 1000, NAN, 500);
    insert_sample(f->st, "agent-1", now + 2000, 60, NAN);

    json_t *m = metrics_build(f->st, inst.id, "agent-1", now + 4000, 10, 10);
    assert_non_null(m);
    json_t *series = json_object_get(m, "series");
    assert_true(json_real_value(json_array_get(json_object_get(series, "cpu_percent"), 0)) == 60.0);
    assert_true(json_real_value(json_array_get(json_object_get(series, "mem_used_bytes"), 0)) ==
                500.0);
    assert_true(json_is_null(json_array_get(json_object_get(series, "mem_total_bytes"), 0)));
    json_decref(m);
    store_instance_clear(&inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrations_idempotent_on_reopen, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(users_duplicate_rejected, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(grants_replace_earlier, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(grant_unknown_user_changes_nothing, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(user_delete_revokes_everything, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(user_delete_blocked_by_live, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(grant_delete_removes_one, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(queue_delete_blocked_by_live, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test(vault_name_rejects_dots),
        cmocka_unit_test_setup_teardown(tokens_lookup_by_hash, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(vault_round_trip_encrypted, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(vault_wrong_key_fails, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(instance_lifecycle, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(instance_unknown_route, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(log_keeps_newest_lines, fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(metrics_buckets_aggregate, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(touch_only_live_instances, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(samples_downsample_per_minute, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(metrics_skip_absent_samples, fixture_setup,
                                        store_fixture_teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
