/* API: the gateway's state long poll and its request records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_records.h"
#include "server/server_internal.h"
#include "util/clock.h"
#include "util/log.h"

#define API_STATE_WAIT_MAX_S 30

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

static const api_field_t api_activity_fields[] = {
    {"instance_id", API_JSON_STRING, 1},
    {"last_activity_at", API_JSON_INTEGER | API_JSON_NULL, 0},
    {"in_flight", API_JSON_INTEGER, 0},
    {NULL, 0, 0},
};

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

int api_gateway_records(api_ctx_t *ctx, api_error_t *err)
{
    static const api_field_t fields[] = {
        {"gateway_id", API_JSON_STRING, 0},
        {"batch", API_JSON_INTEGER, 0},
        {"records", API_JSON_ARRAY, 0},
        {"instances", API_JSON_ARRAY, 0},
        {"tokens", API_JSON_ARRAY, 0},
        {"rows", API_JSON_STRING, 0},
        {"activity", API_JSON_ARRAY, 0},
        {NULL, 0, 0},
    };
    store_record_t *records;
    size_t count;

    if (api_check_body(ctx, err, fields) != 0)
        return -1;
    json_t *activity = json_object_get(ctx->body, "activity");
    json_t *gateway = json_object_get(ctx->body, "gateway_id");
    json_t *batch = json_object_get(ctx->body, "batch");
    /* A gateway that sends no id is counted as the gateway "". */
    const char *gateway_id = gateway ? json_string_value(gateway) : "";

    if (json_string_length(gateway) > 64)
        return api_fail(err, 400, "bad_request", "gateway_id",
                        "\"gateway_id\" must be a string of at most 64 characters");
    if (batch != NULL && json_integer_value(batch) < 1)
        return api_fail(err, 400, "bad_request", "batch",
                        "\"batch\" must be a post number of 1 or more, got %lld",
                        (long long)json_integer_value(batch));
    if (api_check_items(err, activity, "activity", api_activity_fields) != 0 ||
        api_read_records(err, ctx->body, &records, &count) != 0)
        return -1;

    /* A gateway sends a post again, unchanged, when the first try timed
     * out, and the first try may still have arrived. */
    int64_t number = json_integer_value(batch);
    int numbered = batch != NULL && gateway_id[0] != '\0';
    if (numbered && server_batch_stored(ctx->srv, gateway_id, number)) {
        log_info(SERVER_LOG, "gateway %s sent records batch %lld again; it is stored already",
                 gateway_id, (long long)number);
        free(records);
        api_reply_empty(ctx, 204);
        return 0;
    }

    int rc = ctx->srv->store->ops->records_insert(ctx->srv->store, records, count);
    free(records);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "saving request records");
    if (numbered)
        server_batch_remember(ctx->srv, gateway_id, number, clock_mono_ms());

    api_apply_activity(ctx->srv, gateway_id, activity);
    api_reply_empty(ctx, 204);
    return 0;
}
