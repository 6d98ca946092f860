/* API: the Model Endpoints list. Every live endpoint the caller can read,
 * with request counts and latency from the gateway's request records, as
 * JSON or CSV. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/endpoints.h"
#include "server/server_internal.h"
#include "util/buf.h"
#include "util/clock.h"

/* Windows of the figures: the rate is over the last 5 minutes and the
 * mean latency over the last hour. "requests" counts every record since
 * the instance was created, within the record retention. */
#define ENDPOINTS_RATE_WINDOW_MS (5LL * 60 * 1000)
#define ENDPOINTS_LATENCY_WINDOW_MS (60LL * 60 * 1000)

typedef struct {
    int64_t rate_from, latency_from;
    int64_t requests, recent, latency_count;
    double latency_sum;
} endpoints_stats_t;

static int endpoints_on_record(const store_record_t *record, void *user)
{
    endpoints_stats_t *stats = user;

    stats->requests++;
    if (record->time >= stats->rate_from)
        stats->recent++;
    if (record->time >= stats->latency_from) {
        stats->latency_sum += record->latency_ms;
        stats->latency_count++;
    }
    return 0;
}

/* The minutes the rate is taken over: the window, or the time since the
 * instance became ready when that is shorter, but at least one. */
static double endpoints_rate_minutes(const store_instance_t *inst, int64_t now)
{
    double minutes = ENDPOINTS_RATE_WINDOW_MS / 60000.0;

    if (inst->ready_at > 0 && now - inst->ready_at < ENDPOINTS_RATE_WINDOW_MS)
        minutes = (double)(now - inst->ready_at) / 60000.0;
    return minutes < 1.0 ? 1.0 : minutes;
}

/* A new entry for inst, with its figures. NULL on a store failure. */
static json_t *endpoints_entry(api_ctx_t *ctx, const store_instance_t *inst, int serving,
                               int64_t now)
{
    endpoints_stats_t stats = {.rate_from = now - ENDPOINTS_RATE_WINDOW_MS,
                               .latency_from = now - ENDPOINTS_LATENCY_WINDOW_MS};
    char endpoint[1024];
    store_t *st = ctx->srv->store;

    /* NOTE: a scan over every record since creation, linear in the
     * instance's requests within the retention. */
    if (st->ops->records_scan(st, inst->id, inst->created_at, now + 1, endpoints_on_record,
                              &stats) != STORE_OK)
        return NULL;

    double rate = stats.recent / endpoints_rate_minutes(inst, now);
    json_t *latency = stats.latency_count > 0
                          ? json_real(round(stats.latency_sum / stats.latency_count * 10) / 10)
                          : json_null();
    json_t *uptime = serving && inst->ready_at > 0
                         ? json_integer((now - inst->ready_at) / 1000)
                         : json_null();

    snprintf(endpoint, sizeof(endpoint), "%s/serve/%s/v1", ctx->srv->gateway_url, inst->path);
    return json_pack("{s:s, s:s, s:s, s:s?, s:[s], s:s, s:o, s:I, s:f, s:o}", "path",
                     inst->path, "endpoint", endpoint, "model", endpoints_model(inst->config),
                     "route", inst->route[0] ? inst->route : NULL, "instances", inst->id,
                     "status", inst->status, "uptime_seconds", uptime, "requests",
                     (json_int_t)stats.requests, "requests_per_minute",
                     round(rate * 100) / 100, "latency_ms_mean", latency);
}

/* Build {"endpoints": [...], "loading": [...]} from the live instances the
 * caller can read. Serving means active, idle or stopping; queued and
 * loading instances go to "loading". */
static json_t *endpoints_build(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t *list = NULL;
    size_t count = 0;
    int64_t now = clock_wall_ms();
    json_t *serving = json_array(), *loading = json_array();

    if (ctx->srv->store->ops->instance_list(ctx->srv->store, STORE_INSTANCES_LIVE, NULL, &list,
                                            &count) != STORE_OK) {
        json_decref(serving);
        json_decref(loading);
        api_fail_store(ctx, err, "listing instances");
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        const store_instance_t *inst = &list[i];
        int is_loading = strcmp(inst->status, "queued") == 0 || strcmp(inst->status, "loading") == 0;

        if (api_project_perm(ctx, inst->project) < STORE_PERM_READ)
            continue;
        json_t *entry = endpoints_entry(ctx, inst, !is_loading, now);
        if (entry == NULL) {
            store_instances_free(list, count);
            json_decref(serving);
            json_decref(loading);
            api_fail_store(ctx, err, "reading request records");
            return NULL;
        }
        json_array_append_new(is_loading ? loading : serving, entry);
    }
    store_instances_free(list, count);
    return json_pack("{s:o, s:o}", "endpoints", serving, "loading", loading);
}

static int endpoints_reply_csv(api_ctx_t *ctx, api_error_t *err, json_t *body)
{
    buf_t csv = BUF_INIT;

    if (endpoints_csv(&csv, body) != 0) {
        json_decref(body);
        buf_free(&csv);
        return api_fail(err, 500, "internal", NULL, "out of memory writing the CSV");
    }
    json_decref(body);
    http_respond(ctx->ex, 200, "text/csv; charset=utf-8",
                 "Content-Disposition: attachment; filename=endpoints.csv\r\n"
                 "Cache-Control: no-store\r\n",
                 csv.data, csv.len);
    buf_free(&csv);
    return 0;
}

int api_endpoints_list(api_ctx_t *ctx, api_error_t *err)
{
    char format[64] = "json";

    if (api_query(ctx, "format", format, sizeof(format)) &&
        strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
        return api_fail(err, 400, "bad_request", NULL,
                        "invalid format: expected json or csv (e.g. ?format=csv)");

    json_t *body = endpoints_build(ctx, err);
    if (body == NULL)
        return -1;
    if (strcmp(format, "csv") == 0)
        return endpoints_reply_csv(ctx, err, body);
    api_reply(ctx, 200, body);
    return 0;
}
