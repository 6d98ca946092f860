/* API: the gateway's state long poll and its request records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/rec_rows.h"

#define API_STATE_WAIT_MAX_S 30
/* Records one report may carry. */
#define API_RECORDS_MAX 10000
/* Longest instance or token id in a post, with its NUL; ids are far shorter. */
#define API_ID_MAX 128

static void api_state_evaluate(server_waiter_t *w, int timed_out)
{
    if (timed_out || w->since == w->srv->generation)
        return;   /* the timeout path sends 304 */
    server_waiter_reply(w, 200, server_gateway_state(w->srv));
}

int api_gateway_state(api_ctx_t *ctx, api_error_t *err)
{
    char text[32] = "";
    int64_t since = -1, wait_s = 0;
    char *end;

    if (api_query(ctx, "since", text, sizeof(text))) {
        since = strtoll(text, &end, 10);
        if (text[0] == '\0' || *end != '\0')
            return api_fail(err, 400, "bad_request", NULL,
                            "invalid since '%s': expected a generation number", text);
    }
    if (api_query(ctx, "wait", text, sizeof(text))) {
        wait_s = strtoll(text, &end, 10);
        if (text[0] == '\0' || *end != '\0' || wait_s < 0)
            return api_fail(err, 400, "bad_request", NULL,
                            "invalid wait '%s': expected seconds from 0 to %d", text,
                            API_STATE_WAIT_MAX_S);
        if (wait_s > API_STATE_WAIT_MAX_S)
            wait_s = API_STATE_WAIT_MAX_S;
    }

    if (since != ctx->srv->generation) {
        json_t *state = server_gateway_state(ctx->srv);
        if (state == NULL)
            return api_fail_store(ctx, err, "building the gateway state");
        api_reply(ctx, 200, state);
        return 0;
    }
    if (wait_s == 0) {
        api_reply_empty(ctx, 304);
        return 0;
    }

    server_waiter_t *w = server_waiter_park(ctx->srv, ctx->ex, SERVER_WAIT_STATE,
                                            (uint64_t)wait_s * 1000, api_state_evaluate);
    if (w == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory parking a state poll");
    w->since = since;
    return 0;
}

static const api_field_t api_record_fields[] = {
    {"instance_id", API_JSON_STRING, 1},
    {"token_id", API_JSON_STRING | API_JSON_NULL, 0},
    {"time", API_JSON_INTEGER, 1},
    {"status", API_JSON_INTEGER, 1},
    {"latency_ms", API_JSON_NUMBER, 0},
    {"ttfb_ms", API_JSON_NUMBER | API_JSON_NULL, 0},
    {"prompt_tokens", API_JSON_INTEGER | API_JSON_NULL, 0},
    {"completion_tokens", API_JSON_INTEGER | API_JSON_NULL, 0},
    {"cancelled", API_JSON_BOOLEAN | API_JSON_INTEGER, 0},
    /* NOTE: accepted but not stored yet; the token counts are kept as sent. */
    {"usage_estimated", API_JSON_BOOLEAN, 0},
    {NULL, 0, 0},
};

static const api_field_t api_activity_fields[] = {
    {"instance_id", API_JSON_STRING, 1},
    {"last_activity_at", API_JSON_INTEGER | API_JSON_NULL, 0},
    {"in_flight", API_JSON_INTEGER, 0},
    {NULL, 0, 0},
};

/* Check every item of the array at key against fields. */
static int api_check_items(api_error_t *err, json_t *items, const char *key,
                           const api_field_t *fields)
{
    json_t *item;
    size_t i;
    char where[48];

    /* A post carries thousands of items: the item's path is written only
     * when it fails, and the check then runs again to name it. */
    json_array_foreach(items, i, item) {
        if (api_check_fields(err, item, fields, "") == 0)
            continue;
        snprintf(where, sizeof(where), "%s[%zu]", key, i);
        return api_check_fields(err, item, fields, where);
    }
    return 0;
}

/* Read one record object, already checked against api_record_fields. */
static void api_read_record(json_t *item, store_record_t *r)
{
    json_t *ttfb = json_object_get(item, "ttfb_ms");

    r->instance_id = json_string_value(json_object_get(item, "instance_id"));
    r->token_id = json_string_value(json_object_get(item, "token_id"));
    r->time = json_integer_value(json_object_get(item, "time"));
    r->status = (int)json_integer_value(json_object_get(item, "status"));
    r->latency_ms = json_number_value(json_object_get(item, "latency_ms"));
    r->ttfb_ms = json_is_number(ttfb) ? json_number_value(ttfb) : -1;
    r->prompt_tokens = json_integer_value(json_object_get(item, "prompt_tokens"));
    r->completion_tokens = json_integer_value(json_object_get(item, "completion_tokens"));
    r->cancelled = json_is_true(json_object_get(item, "cancelled")) ||
                   json_integer_value(json_object_get(item, "cancelled")) != 0;
}

/* Apply the activity entries of one gateway's report. */
static void api_apply_activity(server_t *srv, const char *gateway_id, json_t *activity)
{
    int64_t now_mono = clock_mono_ms();
    json_t *item;
    size_t i;

    json_array_foreach(activity, i, item) {
        const char *id = json_string_value(json_object_get(item, "instance_id"));
        json_t *last = json_object_get(item, "last_activity_at");
        json_t *in_flight = json_object_get(item, "in_flight");

        if (id == NULL)
            continue;
        if (json_is_integer(last) && json_integer_value(last) > 0 &&
            srv->store->ops->instance_touch(srv->store, id, json_integer_value(last)) != STORE_OK)
            log_error(SERVER_LOG, "cannot record activity of %s: %s", id,
                      store_error(srv->store));
        if (json_is_integer(in_flight))
            server_set_in_flight(srv, gateway_id, id, json_integer_value(in_flight), now_mono);
    }
}

/* The instance or token ids at key: an array of strings the rows refer to
 * by index. Returns the count, or -1 with err set. */
static json_int_t api_read_ids(api_error_t *err, json_t *ids, const char *key,
                               const char ***out)
{
    json_t *item;
    size_t i, count = json_array_size(ids);

    *out = calloc(count ? count : 1, sizeof(**out));
    if (*out == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory reading %s", key);
    json_array_foreach(ids, i, item) {
        if (!json_is_string(item) || json_string_length(item) >= API_ID_MAX) {
            free(*out);
            *out = NULL;
            return api_fail(err, 400, "bad_request", key,
                            "\"%s[%zu]\" must be a string of at most %d characters", key, i,
                            API_ID_MAX - 1);
        }
        (*out)[i] = json_string_value(item);
    }
    return (json_int_t)count;
}

/* Append the compact rows of the body to batch (which has room for them).
 * Returns 0, or -1 with err set. */
static int api_read_rows(api_error_t *err, json_t *body, store_record_t *batch, size_t *count)
{
    json_t *rows = json_object_get(body, "rows");
    const char **instances = NULL, **tokens = NULL;
    const char *text = json_string_value(rows);
    size_t len = json_string_length(rows), pos = 0;
    char why[160];
    rec_row_t row;
    int rc;

    json_int_t num_instances = api_read_ids(err, json_object_get(body, "instances"),
                                            "instances", &instances);
    json_int_t num_tokens = num_instances < 0 ? -1 : api_read_ids(
        err, json_object_get(body, "tokens"), "tokens", &tokens);
    if (num_instances < 0 || num_tokens < 0) {
        free(instances);
        return -1;
    }

    while ((rc = rec_rows_next(text, len, &pos, (size_t)num_instances, (size_t)num_tokens, &row,
                               why, sizeof(why))) == 1) {
        batch[(*count)++] = (store_record_t){
            .instance_id = instances[row.instance],
            .token_id = row.token >= 0 ? tokens[row.token] : NULL,
            .time = row.time,
            .status = (int)row.status,
            .latency_ms = (double)row.latency_ms,
            .ttfb_ms = (double)row.ttfb_ms,
            /* Unknown counts are stored as 0, as a JSON null is. */
            .prompt_tokens = row.prompt_tokens < 0 ? 0 : row.prompt_tokens,
            .completion_tokens = row.completion_tokens < 0 ? 0 : row.completion_tokens,
            .cancelled = (row.flags & REC_ROW_CANCELLED) != 0,
        };
    }
    /* The strings stay alive in body; the id arrays only pointed at them. */
    free(instances);
    free(tokens);
    if (rc < 0)
        return api_fail(err, 400, "bad_request", "rows", "invalid \"rows\": %s", why);
    return 0;
}

int api_gateway_records(api_ctx_t *ctx, api_error_t *err)
{
    static const api_field_t fields[] = {
        {"gateway_id", API_JSON_STRING, 0},
        {"records", API_JSON_ARRAY, 0},
        {"instances", API_JSON_ARRAY, 0},
        {"tokens", API_JSON_ARRAY, 0},
        {"rows", API_JSON_STRING, 0},
        {"activity", API_JSON_ARRAY, 0},
        {NULL, 0, 0},
    };
    json_t *records, *activity, *item;
    size_t i, count;

    if (api_check_body(ctx, err, fields) != 0)
        return -1;
    records = json_object_get(ctx->body, "records");
    activity = json_object_get(ctx->body, "activity");
    json_t *rows = json_object_get(ctx->body, "rows");
    json_t *gateway = json_object_get(ctx->body, "gateway_id");
    size_t num_rows = rec_rows_count(json_string_value(rows), json_string_length(rows));
    count = json_array_size(records) + num_rows;
    /* A gateway that sends no id is counted as the gateway "". */
    if (gateway != NULL && json_string_length(gateway) > 64)
        return api_fail(err, 400, "bad_request", NULL,
                        "\"gateway_id\" must be a string of at most 64 characters");
    if (count > API_RECORDS_MAX)
        return api_fail(err, 400, "bad_request", NULL,
                        "\"records\" and \"rows\" hold %zu records; at most %d are accepted "
                        "in one post", count, API_RECORDS_MAX);
    if (api_check_items(err, records, "records", api_record_fields) != 0 ||
        api_check_items(err, activity, "activity", api_activity_fields) != 0)
        return -1;

    store_record_t *batch = calloc(count ? count : 1, sizeof(*batch));
    if (batch == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory reading records");
    json_array_foreach(records, i, item) {
        api_read_record(item, &batch[i]);
    }
    count = json_array_size(records);
    if (rows != NULL && api_read_rows(err, ctx->body, batch, &count) != 0) {
        free(batch);
        return -1;
    }

    int rc = ctx->srv->store->ops->records_insert(ctx->srv->store, batch, count);
    free(batch);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "saving request records");

    api_apply_activity(ctx->srv, gateway ? json_string_value(gateway) : "", activity);
    api_reply_empty(ctx, 204);
    return 0;
}
