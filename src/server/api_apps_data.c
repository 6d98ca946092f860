/* API: an instance's console log, history, metrics and the agent's status
 * reports. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_gpus.h"
#include "server/server_internal.h"
#include "store/metrics.h"
#include "util/clock.h"
#include "util/log.h"

/* Lines one log request may return, and one report may carry. */
#define API_LOG_LIMIT_DEFAULT 1000
#define API_LOG_LIMIT_MAX 10000
#define API_LOG_TEXT_MAX (64 * 1024)

/* Read an integer query parameter into *out (kept when absent); -1 with err
 * when present but not an integer in [min, max]. */
static int api_query_int(api_ctx_t *ctx, api_error_t *err, const char *name, int64_t min,
                         int64_t max, int64_t *out)
{
    char text[32];
    char *end;

    if (!api_query(ctx, name, text, sizeof(text)))
        return 0;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || value < min || value > max)
        return api_fail(err, 400, "bad_request", NULL,
                        "invalid %s '%s': expected an integer from %lld to %lld", name, text,
                        (long long)min, (long long)max);
    *out = value;
    return 0;
}

int api_apps_logs(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t inst;
    int64_t after = 0, limit = API_LOG_LIMIT_DEFAULT, next = 0;
    json_t *rows = NULL;

    if (api_query_int(ctx, err, "after", 0, INT64_MAX, &after) != 0 ||
        api_query_int(ctx, err, "limit", 1, API_LOG_LIMIT_MAX, &limit) != 0)
        return -1;
    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_READ, &inst) != 0)
        return -1;
    store_instance_clear(&inst);

    if (ctx->srv->store->ops->log_list(ctx->srv->store, ctx->params[0], after, limit, &rows,
                                       &next) != STORE_OK)
        return api_fail_store(ctx, err, "reading the console log");
    api_reply(ctx, 200, json_pack("{s:o, s:I}", "lines", rows, "next", (json_int_t)next));
    return 0;
}

static int api_valid_stream(const char *stream)
{
    return stream != NULL && (strcmp(stream, "stdout") == 0 || strcmp(stream, "stderr") == 0 ||
                              strcmp(stream, "system") == 0);
}

int api_apps_logs_append(api_ctx_t *ctx, api_error_t *err)
{
    static const api_field_t fields[] = {
        {"lines", API_JSON_ARRAY, 1},
        {NULL, 0, 0},
    };
    static const api_field_t line_fields[] = {
        {"time", API_JSON_INTEGER, 0},
        {"stream", API_JSON_STRING, 1},
        {"text", API_JSON_STRING, 1},
        {NULL, 0, 0},
    };
    store_instance_t inst;
    json_t *lines, *item;
    size_t i, count;
    char where[32];

    if (api_check_body(ctx, err, fields) != 0)
        return -1;
    lines = json_object_get(ctx->body, "lines");
    count = json_array_size(lines);
    if (count > API_LOG_LIMIT_MAX)
        return api_fail(err, 400, "bad_request", NULL,
                        "\"lines\" must be an array of at most %d lines", API_LOG_LIMIT_MAX);
    json_array_foreach(lines, i, item) {
        snprintf(where, sizeof(where), "lines[%zu]", i);
        if (api_check_fields(err, item, line_fields, where) != 0)
            return -1;
    }

    store_log_line_t *batch = calloc(count ? count : 1, sizeof(*batch));
    if (batch == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory reading log lines");
    json_array_foreach(lines, i, item) {
        const char *stream = json_string_value(json_object_get(item, "stream"));
        const char *text = json_string_value(json_object_get(item, "text"));
        json_t *time = json_object_get(item, "time");

        if (!api_valid_stream(stream) || strlen(text) > API_LOG_TEXT_MAX) {
            free(batch);
            return api_fail(err, 400, "bad_request", NULL,
                            "lines[%zu] needs \"stream\" stdout, stderr or system and a \"text\" "
                            "of at most %d bytes",
                            i, API_LOG_TEXT_MAX);
        }
        batch[i] = (store_log_line_t){.time = time ? json_integer_value(time) : clock_wall_ms(),
                                      .stream = stream, .text = text};
    }

    int rc = ctx->srv->store->ops->instance_get(ctx->srv->store, ctx->params[0], &inst);
    if (rc == STORE_OK) {
        store_instance_clear(&inst);
        rc = ctx->srv->store->ops->log_append(ctx->srv->store, ctx->params[0], batch, count,
                                              ctx->srv->log_cap);
    }
    free(batch);
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL, "instance %s not found", ctx->params[0]);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "appending log lines");
    api_reply_empty(ctx, 204);
    return 0;
}

int api_apps_history(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t inst;
    json_t *rows = NULL;

    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_READ, &inst) != 0)
        return -1;
    store_instance_clear(&inst);
    if (ctx->srv->store->ops->history_list(ctx->srv->store, ctx->params[0], &rows) != STORE_OK)
        return api_fail_store(ctx, err, "reading the status history");
    api_reply(ctx, 200, json_pack("{s:o}", "history", rows));
    return 0;
}

int api_apps_metrics(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t inst;
    int64_t step = 10, range = 3600;

    if (api_query_int(ctx, err, "step", 1, 3600, &step) != 0 ||
        api_query_int(ctx, err, "range", 1, 30LL * 24 * 3600, &range) != 0)
        return -1;
    if ((range + step - 1) / step > METRICS_MAX_BUCKETS)
        return api_fail(err, 400, "bad_request", NULL,
                        "range %lld / step %lld gives more than %d buckets; use a larger step",
                        (long long)range, (long long)step, METRICS_MAX_BUCKETS);
    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_READ, &inst) != 0)
        return -1;

    json_t *metrics = metrics_build(ctx->srv->store, inst.id, inst.agent, clock_wall_ms(), step,
                                    range);
    store_instance_clear(&inst);
    if (metrics == NULL)
        return api_fail_store(ctx, err, "building metrics");
    api_reply(ctx, 200, metrics);
    return 0;
}

/* NOTE: a report is not tied to the agent that sends it; any admin token may
 * move any instance along the status machine. */
int api_apps_status(api_ctx_t *ctx, api_error_t *err)
{
    static const api_field_t fields[] = {
        {"status", API_JSON_STRING, 1},
        {"reason", API_JSON_STRING | API_JSON_NULL, 0},
        {"upstream", API_JSON_STRING | API_JSON_NULL, 0},
        {"exit_code", API_JSON_INTEGER | API_JSON_NULL, 0},
        {"gpus", API_JSON_ARRAY | API_JSON_NULL, 0},
        {NULL, 0, 0},
    };
    store_instance_t inst;

    if (api_check_body(ctx, err, fields) != 0 ||
        server_gpus_check_ids(json_object_get(ctx->body, "gpus"), err) != 0)
        return -1;
    const char *status = api_body_string(ctx, "status");
    const char *reason = api_body_string(ctx, "reason");
    const char *upstream = api_body_string(ctx, "upstream");
    json_t *exit_code = json_object_get(ctx->body, "exit_code");
    char shown[80];

    if (strcmp(status, "loading") != 0 && strcmp(status, "ready") != 0 &&
        strcmp(status, "stopped") != 0 && strcmp(status, "failed") != 0) {
        api_printable(status, shown, sizeof(shown));
        return api_fail(err, 400, "bad_request", NULL,
                        "invalid status \"%s\": expected loading, ready, stopped or failed",
                        shown);
    }
    if (upstream != NULL && api_check_upstream(err, upstream) != 0)
        return -1;
    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_READ, &inst) != 0)
        return -1;
    if (inst.agent[0] == '\0' && store_status_is_live(inst.status)) {
        store_instance_clear(&inst);
        return api_fail(err, 409, "conflict", NULL,
                        "instance %s is not leased to an agent yet; only its agent reports "
                        "status",
                        ctx->params[0]);
    }

    /* The device ids the agent gave it, kept until it is reported again. */
    json_t *gpus = json_object_get(ctx->body, "gpus");
    int was_live = store_status_is_live(inst.status);
    if (json_is_array(gpus) && store_status_is_live(inst.status)) {
        json_decref(inst.gpus);
        inst.gpus = json_deep_copy(gpus);
    }

    int rc = server_apply_report(ctx->srv, &inst, status, reason, upstream,
                                 json_is_integer(exit_code), (int)json_integer_value(exit_code),
                                 err);
    if (rc == STORE_CONFLICT) {
        store_instance_clear(&inst);
        return -1;
    }
    if (rc != STORE_OK) {
        store_instance_clear(&inst);
        return api_fail_store(ctx, err, "recording a status report");
    }
    if (was_live)
        server_gpus_released(ctx->srv, &inst);
    api_reply(ctx, 200, server_instance_json(ctx->srv, &inst));
    store_instance_clear(&inst);
    return 0;
}
