/* Unit tests for the gateway's state snapshot and access decisions: token
 * hashes, expiry, paths, grants, admins, readiness; and the records body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "gateway/gw_admit.h"
#include "gateway/gw_records.h"
#include "gateway/gw_records_post.h"
#include "gateway/gw_state.h"
#include "util/rec_rows.h"

#define NOW 1700000000000LL

static gw_state_t *make_state(void)
{
    char alice[65], bob[65], old[65], root[65];
    char err[256];

    gw_token_hash("nd_alice", 8, alice);
    gw_token_hash("nd_bob", 6, bob);
    gw_token_hash("nd_old", 6, old);
    gw_token_hash("nd_root", 7, root);

    json_t *doc = json_pack(
        "{s:i, s:[{s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:n}, {s:s, s:s, s:s, s:s, s:s}],"
        " s:[{s:s, s:s, s:s, s:I}, {s:i, s:s, s:s, s:n}, {s:s, s:s, s:s, s:I},"
        " {s:s, s:s, s:s, s:n}],"
        " s:[{s:s, s:s}], s:[s]}",
        "generation", 7,
        "instances",
        "id", "i1", "path", "llama", "project", "demo", "status", "active", "upstream", "127.0.0.1:9",
        "id", "i2", "path", "e2e2e2", "project", "demo", "status", "loading", "upstream",
        "id", "i3", "path", "other", "project", "secret", "status", "idle", "upstream", "127.0.0.1:8",
        "tokens",
        "id", "t1", "hash", alice, "user", "alice", "expires_at", (json_int_t)(NOW + 60000),
        "id", 2, "hash", bob, "user", "bob", "expires_at",
        "id", "t3", "hash", old, "user", "alice", "expires_at", (json_int_t)(NOW - 1),
        "id", "t4", "hash", root, "user", "admin", "expires_at",
        "grants", "user", "alice", "project", "demo",
        "admins", "admin");
    assert_non_null(doc);

    gw_state_t *state = gw_state_from_json(doc, err, sizeof(err));
    json_decref(doc);
    assert_non_null(state);
    return state;
}

static void admit(const gw_state_t *state, const char *authorization, const char *path,
                  gw_admission_t *out)
{
    http_header_t h = {"Authorization", 13, authorization, authorization ? strlen(authorization) : 0};

    gw_admit(state, &h, authorization ? 1 : 0, path, NOW, out);
}

static void state_lookups(void **state_arg)
{
    gw_state_t *state = make_state();

    (void)state_arg;
    assert_int_equal(gw_state_generation(state), 7);
    assert_non_null(gw_state_instance(state, "llama"));
    assert_null(gw_state_instance(state, "nope"));
    assert_null(gw_state_instance(state, "e2e2e2")->upstream);
    assert_true(gw_state_can_read(state, "alice", "demo"));
    assert_false(gw_state_can_read(state, "alice", "secret"));
    assert_true(gw_state_can_read(state, "admin", "secret"));
    gw_state_unref(state);
}

static void state_rejects_bad(void **state_arg)
{
    char err[256];

    (void)state_arg;
    json_t *doc = json_pack("{s:i, s:[{s:s}]}", "generation", 1, "tokens", "id", "x");
    assert_null(gw_state_from_json(doc, err, sizeof(err)));
    assert_non_null(strstr(err, "tokens[0]"));
    json_decref(doc);

    doc = json_pack("{s:s}", "generation", "1");
    assert_null(gw_state_from_json(doc, err, sizeof(err)));
    json_decref(doc);
}

static void admit_forwards(void **state_arg)
{
    gw_state_t *state = make_state();
    gw_admission_t adm;

    (void)state_arg;
    admit(state, "Bearer nd_alice", "llama", &adm);
    assert_int_equal(adm.status, 0);
    assert_string_equal(adm.instance->id, "i1");
    assert_string_equal(adm.token->id, "t1");

    admit(state, "bearer nd_root", "other", &adm);
    assert_int_equal(adm.status, 0);
    gw_state_unref(state);
}

static void admit_401(void **state_arg)
{
    gw_state_t *state = make_state();
    gw_admission_t adm;

    (void)state_arg;
    admit(state, NULL, "llama", &adm);
    assert_int_equal(adm.status, 401);
    assert_string_equal(adm.code, "missing_token");
    assert_string_equal(adm.type, "authentication_error");

    admit(state, "Bearer nd_unknown", "llama", &adm);
    assert_int_equal(adm.status, 401);
    assert_string_equal(adm.code, "invalid_token");

    admit(state, "Bearer nd_old", "llama", &adm);
    assert_int_equal(adm.status, 401);
    assert_string_equal(adm.code, "token_expired");

    /* Without a valid token, an unknown path is still 401, not 404. */
    admit(state, "Bearer nd_unknown", "nope", &adm);
    assert_int_equal(adm.status, 401);
    gw_state_unref(state);
}

static void admit_403_404_503(void **state_arg)
{
    gw_state_t *state = make_state();
    gw_admission_t adm;

    (void)state_arg;
    admit(state, "Bearer nd_bob", "llama", &adm);
    assert_int_equal(adm.status, 403);
    assert_string_equal(adm.type, "permission_error");

    admit(state, "Bearer nd_alice", "other", &adm);
    assert_int_equal(adm.status, 403);

    admit(state, "Bearer nd_alice", "nope", &adm);
    assert_int_equal(adm.status, 404);
    assert_string_equal(adm.type, "not_found_error");

    admit(state, "Bearer nd_alice", "e2e2e2", &adm);
    assert_int_equal(adm.status, 503);
    assert_string_equal(adm.code, "instance_not_ready");
    gw_state_unref(state);
}

/* For an instance that is not serving, the 503 admission names the reason.
 * Only an instance expected to serve soon gets a nonzero retry_after_s. */
static void admit_503_by_status(void **state_arg)
{
    char alice[65], err[256];
    gw_admission_t adm;

    (void)state_arg;
    gw_token_hash("nd_alice", 8, alice);
    json_t *doc = json_pack(
        "{s:i, s:[{s:s, s:s, s:s, s:s, s:n}, {s:s, s:s, s:s, s:s, s:s},"
        " {s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:n}],"
        " s:[{s:s, s:s, s:s, s:n}], s:[], s:[s]}",
        "generation", 9, "instances",
        "id", "q1", "path", "queued", "project", "demo", "status", "queued", "upstream",
        "id", "l1", "path", "loading", "project", "demo", "status", "loading", "upstream",
        "127.0.0.1:9",
        "id", "s1", "path", "stopping", "project", "demo", "status", "stopping", "upstream",
        "127.0.0.1:9",
        "id", "a1", "path", "noaddr", "project", "demo", "status", "active", "upstream",
        "tokens", "id", "t1", "hash", alice, "user", "alice", "expires_at",
        "grants", "admins", "alice");
    gw_state_t *state = gw_state_from_json(doc, err, sizeof(err));
    json_decref(doc);
    assert_non_null(state);

    admit(state, "Bearer nd_alice", "queued", &adm);
    assert_int_equal(adm.status, 503);
    assert_string_equal(adm.code, "instance_queued");
    assert_non_null(strstr(adm.message, "instance q1 is queued, waiting for an agent"));
    assert_int_equal(adm.retry_after_s, 5);

    admit(state, "Bearer nd_alice", "loading", &adm);
    assert_int_equal(adm.status, 503);
    assert_string_equal(adm.code, "instance_not_ready");
    assert_non_null(strstr(adm.message, "instance l1 is loading"));
    assert_int_equal(adm.retry_after_s, 5);

    admit(state, "Bearer nd_alice", "stopping", &adm);
    assert_int_equal(adm.status, 503);
    assert_string_equal(adm.code, "instance_stopping");
    assert_non_null(strstr(adm.message, "instance s1 is stopping and will not serve again"));
    assert_int_equal(adm.retry_after_s, 0);

    admit(state, "Bearer nd_alice", "noaddr", &adm);
    assert_int_equal(adm.status, 503);
    assert_string_equal(adm.code, "instance_not_ready");
    assert_int_equal(adm.retry_after_s, 5);
    gw_state_unref(state);
}

/* Two credentials are ambiguous, even when both are valid or the same. */
static void admit_two_authorizations(void **state_arg)
{
    gw_state_t *state = make_state();
    gw_admission_t adm;
    http_header_t both[] = {
        {"Authorization", 13, "Bearer nd_alice", 15},
        {"authorization", 13, "Bearer nd_alice", 15},
    };

    (void)state_arg;
    gw_admit(state, both, 2, "llama", NOW, &adm);
    assert_int_equal(adm.status, 400);
    assert_string_equal(adm.type, "invalid_request_error");
    assert_string_equal(adm.code, "ambiguous_credentials");
    assert_int_equal(adm.retry_after_s, 0);

    gw_admit(state, both, 1, "llama", NOW, &adm);
    assert_int_equal(adm.status, 0);
    gw_state_unref(state);
}

/* Fill r as a finished request to instance_id with token_id ("" for none). */
static void make_record(gw_record_t *r, const char *instance_id, const char *token_id,
                        int64_t time)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->instance_id, sizeof(r->instance_id), "%s", instance_id);
    snprintf(r->token_id, sizeof(r->token_id), "%s", token_id);
    r->time = time;
    r->status = 200;
    r->latency_ms = 120;
    r->ttfb_ms = 15;
    r->prompt_tokens = 3;
    r->completion_tokens = 7;
}

/* Read the next row of the post's "rows", checking its indexes against the
 * post's "instances" and "tokens" as the server does. */
static void next_row(json_t *doc, size_t *pos, rec_row_t *row)
{
    json_t *rows = json_object_get(doc, "rows");
    char err[160] = "";
    int rc = rec_rows_next(json_string_value(rows), json_string_length(rows), pos,
                           json_array_size(json_object_get(doc, "instances")),
                           json_array_size(json_object_get(doc, "tokens")), row, err,
                           sizeof(err));

    if (rc != 1)
        fail_msg("expected a row at offset %zu, got %d: %s", *pos, rc, err);
}

/* Assert that the post's "rows" has no line after pos. */
static void assert_rows_end(json_t *doc, size_t pos)
{
    json_t *rows = json_object_get(doc, "rows");
    char err[160] = "";
    rec_row_t row;

    assert_int_equal(rec_rows_next(json_string_value(rows), json_string_length(rows), &pos, 0, 0,
                                   &row, err, sizeof(err)),
                     0);
}

/* Return the string at index in the post's array key. */
static const char *id_at(json_t *doc, const char *key, int64_t index)
{
    json_t *ids = json_object_get(doc, key);

    assert_true(index >= 0 && (size_t)index < json_array_size(ids));
    return json_string_value(json_array_get(ids, (size_t)index));
}

static void records_body(void **state_arg)
{
    gw_record_t r[4];
    gw_activity_t a;
    rec_row_t row;
    size_t pos = 0;

    (void)state_arg;
    /* Unknown ttfb and completion count, cancelled. */
    make_record(&r[0], "i1", "t1", NOW);
    r[0].latency_ms = 120;
    r[0].ttfb_ms = -1;
    r[0].prompt_tokens = 3;
    r[0].completion_tokens = -1;
    r[0].cancelled = 1;
    /* No token, an estimated count and an unknown prompt count. */
    make_record(&r[1], "i2", "", NOW + 1);
    r[1].status = 502;
    r[1].ttfb_ms = 0;
    r[1].prompt_tokens = -1;
    r[1].completion_tokens = 9;
    r[1].usage_estimated = 1;
    /* The instance and token of the first record again, both flags, and
     * the largest values the server accepts (util/rec_rows.h). */
    make_record(&r[2], "i1", "t1", REC_TIME_MAX);
    r[2].status = 599;
    r[2].latency_ms = REC_DURATION_MAX_MS;
    r[2].ttfb_ms = REC_DURATION_MAX_MS;
    r[2].prompt_tokens = REC_TOKENS_MAX;
    r[2].completion_tokens = REC_TOKENS_MAX;
    r[2].cancelled = 1;
    r[2].usage_estimated = 1;
    /* A known instance with a new token. */
    make_record(&r[3], "i2", "t2", NOW + 3);
    r[3].status = 100;
    r[3].latency_ms = 0;

    memset(&a, 0, sizeof(a));
    snprintf(a.instance_id, sizeof(a.instance_id), "%s", "i1");
    a.last_activity_at = NOW;
    a.in_flight = 2;

    json_t *doc = gw_records_json("0123456789abcdef", r, 4, &a, 1);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "gateway_id")),
                        "0123456789abcdef");
    /* gw_records_json writes the body of a gateway's first post. */
    assert_true(json_is_integer(json_object_get(doc, "batch")));
    assert_int_equal(json_integer_value(json_object_get(doc, "batch")), 1);
    /* Only the compact form is sent. */
    assert_null(json_object_get(doc, "records"));
    assert_true(json_is_string(json_object_get(doc, "rows")));

    /* Each instance and token is listed once, in order of first use. */
    assert_int_equal(json_array_size(json_object_get(doc, "instances")), 2);
    assert_string_equal(id_at(doc, "instances", 0), "i1");
    assert_string_equal(id_at(doc, "instances", 1), "i2");
    assert_int_equal(json_array_size(json_object_get(doc, "tokens")), 2);
    assert_string_equal(id_at(doc, "tokens", 0), "t1");
    assert_string_equal(id_at(doc, "tokens", 1), "t2");
    assert_int_equal(rec_rows_count(json_string_value(json_object_get(doc, "rows")),
                                    json_string_length(json_object_get(doc, "rows"))),
                     4);

    next_row(doc, &pos, &row);
    assert_int_equal(row.instance, 0);
    assert_int_equal(row.token, 0);
    assert_int_equal(row.time, NOW);
    assert_int_equal(row.status, 200);
    assert_int_equal(row.latency_ms, 120);
    assert_int_equal(row.ttfb_ms, -1);
    assert_int_equal(row.prompt_tokens, 3);
    assert_int_equal(row.completion_tokens, -1);
    assert_int_equal(row.flags, REC_ROW_CANCELLED);

    next_row(doc, &pos, &row);
    assert_int_equal(row.instance, 1);
    assert_int_equal(row.token, -1);
    assert_int_equal(row.time, NOW + 1);
    assert_int_equal(row.status, 502);
    assert_int_equal(row.latency_ms, 120);
    assert_int_equal(row.ttfb_ms, 0);
    assert_int_equal(row.prompt_tokens, -1);
    assert_int_equal(row.completion_tokens, 9);
    assert_int_equal(row.flags, REC_ROW_USAGE_ESTIMATED);

    next_row(doc, &pos, &row);
    assert_int_equal(row.instance, 0);
    assert_int_equal(row.token, 0);
    assert_int_equal(row.time, REC_TIME_MAX);
    assert_int_equal(row.status, 599);
    assert_int_equal(row.latency_ms, REC_DURATION_MAX_MS);
    assert_int_equal(row.ttfb_ms, REC_DURATION_MAX_MS);
    assert_int_equal(row.prompt_tokens, REC_TOKENS_MAX);
    assert_int_equal(row.completion_tokens, REC_TOKENS_MAX);
    assert_int_equal(row.flags, REC_ROW_CANCELLED | REC_ROW_USAGE_ESTIMATED);

    next_row(doc, &pos, &row);
    assert_int_equal(row.instance, 1);
    assert_int_equal(row.token, 1);
    assert_int_equal(row.time, NOW + 3);
    assert_int_equal(row.status, 100);
    assert_int_equal(row.latency_ms, 0);
    assert_int_equal(row.flags, 0);
    assert_rows_end(doc, pos);

    json_t *act = json_array_get(json_object_get(doc, "activity"), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "activity")), 1);
    assert_string_equal(json_string_value(json_object_get(act, "instance_id")), "i1");
    assert_int_equal(json_integer_value(json_object_get(act, "in_flight")), 2);
    assert_int_equal(json_integer_value(json_object_get(act, "last_activity_at")), NOW);
    json_decref(doc);
}

/* A post with nothing but activity still carries the three members, empty,
 * which the server accepts. */
static void records_body_empty(void **state)
{
    gw_activity_t a;

    (void)state;
    memset(&a, 0, sizeof(a));
    snprintf(a.instance_id, sizeof(a.instance_id), "%s", "i1");
    a.in_flight = 1;

    json_t *doc = gw_records_json("0123456789abcdef", NULL, 0, &a, 1);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "instances")), 0);
    assert_true(json_is_array(json_object_get(doc, "instances")));
    assert_true(json_is_array(json_object_get(doc, "tokens")));
    assert_int_equal(json_array_size(json_object_get(doc, "tokens")), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "rows")), "");
    assert_int_equal(json_array_size(json_object_get(doc, "activity")), 1);
    json_decref(doc);
}

/* The post body is written as text: ids with quotes, backslashes and
 * control bytes must still read back as the same strings. */
static void records_body_escapes(void **state)
{
    static const char odd[] = "i\"1\\x\x01\ty\x1f\x7f/\xc3\xa9";
    static const char odd_token[] = "t\\\"\n\r\b\f2";
    gw_record_t r[2];
    gw_activity_t a;
    rec_row_t row;
    size_t pos = 0;

    (void)state;
    make_record(&r[0], odd, "", NOW);
    r[0].status = 502;
    r[0].latency_ms = 0;
    r[0].ttfb_ms = 0;
    r[0].prompt_tokens = -1;
    r[0].completion_tokens = 0;
    make_record(&r[1], odd, odd_token, NOW + 1);
    memset(&a, 0, sizeof(a));
    snprintf(a.instance_id, sizeof(a.instance_id), "%s", odd);

    json_t *doc = gw_records_json("g\"id", r, 2, &a, 1);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "gateway_id")), "g\"id");
    assert_int_equal(json_array_size(json_object_get(doc, "instances")), 1);
    assert_string_equal(id_at(doc, "instances", 0), odd);
    assert_int_equal(json_array_size(json_object_get(doc, "tokens")), 1);
    assert_string_equal(id_at(doc, "tokens", 0), odd_token);
    json_t *act = json_array_get(json_object_get(doc, "activity"), 0);
    assert_string_equal(json_string_value(json_object_get(act, "instance_id")), odd);

    next_row(doc, &pos, &row);
    assert_int_equal(row.instance, 0);
    assert_int_equal(row.token, -1);
    assert_int_equal(row.status, 502);
    assert_int_equal(row.latency_ms, 0);
    assert_int_equal(row.ttfb_ms, 0);
    assert_int_equal(row.prompt_tokens, -1);
    assert_int_equal(row.completion_tokens, 0);
    assert_int_equal(row.flags, 0);
    next_row(doc, &pos, &row);
    assert_int_equal(row.instance, 0);
    assert_int_equal(row.token, 0);
    assert_rows_end(doc, pos);
    json_decref(doc);
}

/* The post's text names its batch number right after the gateway id, and
 * a number past 2^31 is written in full. */
static void records_text_batch_number(void **state)
{
    static const int64_t batches[] = {1, 2, 1000, 4294967297LL, INT64_MAX};
    gw_record_t r;

    (void)state;
    make_record(&r, "i1", "t1", NOW);
    for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        buf_t text = BUF_INIT;
        char start[64];

        assert_int_equal(gw_records_text("gw-1", batches[i], &r, 1, NULL, 0, &text), 0);
        snprintf(start, sizeof(start), "{\"gateway_id\":\"gw-1\",\"batch\":%lld,",
                 (long long)batches[i]);
        if (text.len < strlen(start) || memcmp(text.data, start, strlen(start)) != 0)
            fail_msg("batch %lld: expected the text to start with %s, got %.*s",
                     (long long)batches[i], start, (int)text.len, text.data);

        json_t *doc = json_loadb(text.data, text.len, 0, NULL);
        assert_non_null(doc);
        assert_int_equal(json_integer_value(json_object_get(doc, "batch")), batches[i]);
        assert_int_equal(json_array_size(json_object_get(doc, "instances")), 1);
        json_decref(doc);
        buf_free(&text);
    }
}

/* Values the server would reject are sent as unknown or capped, so one
 * odd usage count from a model server cannot get a whole post dropped. */
static void records_body_out_of_range(void **state)
{
    gw_record_t r;
    rec_row_t row;
    size_t pos = 0;

    (void)state;
    make_record(&r, "i1", "t1", NOW);
    r.prompt_tokens = REC_TOKENS_MAX + 1;
    r.completion_tokens = INT64_MAX;
    r.latency_ms = REC_DURATION_MAX_MS + 1;
    r.ttfb_ms = INT64_MAX;

    json_t *doc = gw_records_json("gw-1", &r, 1, NULL, 0);
    assert_non_null(doc);
    next_row(doc, &pos, &row);
    assert_int_equal(row.prompt_tokens, -1);
    assert_int_equal(row.completion_tokens, -1);
    assert_int_equal(row.latency_ms, REC_DURATION_MAX_MS);
    assert_int_equal(row.ttfb_ms, REC_DURATION_MAX_MS);
    assert_rows_end(doc, pos);
    json_decref(doc);

    r.prompt_tokens = REC_TOKENS_MAX;
    doc = gw_records_json("gw-1", &r, 1, NULL, 0);
    pos = 0;
    next_row(doc, &pos, &row);
    assert_int_equal(row.prompt_tokens, REC_TOKENS_MAX);
    json_decref(doc);
}

/* Past the first strings the writer may list an id again instead of
 * searching for it; every row must still name its own instance. */
static void records_body_many_instances(void **state)
{
    enum { DISTINCT = 100, REPEATS = 4 };
    static gw_record_t r[DISTINCT + REPEATS];
    /* Repeats of ids that the writer listed early, late, and just before. */
    const int repeated[REPEATS] = {3, 90, 99, 99};
    rec_row_t row;
    size_t pos = 0;

    (void)state;
    for (int i = 0; i < DISTINCT + REPEATS; i++) {
        char id[32];
        int n = i < DISTINCT ? i : repeated[i - DISTINCT];

        snprintf(id, sizeof(id), "inst-%03d", n);
        make_record(&r[i], id, n % 2 ? "tok-odd" : "tok-even", NOW + i);
    }

    json_t *doc = gw_records_json("0123456789abcdef", r, DISTINCT + REPEATS, NULL, 0);
    assert_non_null(doc);
    size_t listed = json_array_size(json_object_get(doc, "instances"));
    assert_true(listed >= DISTINCT && listed <= DISTINCT + REPEATS);
    assert_int_equal(json_array_size(json_object_get(doc, "tokens")), 2);

    for (int i = 0; i < DISTINCT + REPEATS; i++) {
        next_row(doc, &pos, &row);
        assert_string_equal(id_at(doc, "instances", row.instance), r[i].instance_id);
        assert_string_equal(id_at(doc, "tokens", row.token), r[i].token_id);
        assert_int_equal(row.time, NOW + i);
    }
    assert_rows_end(doc, pos);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_lookups),
        cmocka_unit_test(state_rejects_bad),
        cmocka_unit_test(admit_forwards),
        cmocka_unit_test(admit_401),
        cmocka_unit_test(admit_403_404_503),
        cmocka_unit_test(admit_503_by_status),
        cmocka_unit_test(admit_two_authorizations),
        cmocka_unit_test(records_body),
        cmocka_unit_test(records_body_empty),
        cmocka_unit_test(records_body_escapes),
        cmocka_unit_test(records_body_many_instances),
        cmocka_unit_test(records_text_batch_number),
        cmocka_unit_test(records_body_out_of_range),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
