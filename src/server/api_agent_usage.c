/* API: the "gpus" and "instances" arrays of POST /api/v1/agents/ID/metrics,
 * checked and stored as GPU and instance usage samples. */
#include "server/api_agent_usage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config_gpus.h"

/* Bounds that no real machine reaches, so a bad agent cannot make one
 * post write without limit. */
#define API_USAGE_MAX_GPUS 256
#define API_USAGE_MAX_INSTANCES 1024

#define API_NUM (API_JSON_NUMBER | API_JSON_NULL)

static const api_field_t api_gpu_fields[] = {
    {"id", API_JSON_STRING, 1},      {"util_percent", API_NUM, 0},
    {"mem_used_bytes", API_NUM, 0},  {"mem_total_bytes", API_NUM, 0},
    {"temp_c", API_NUM, 0},          {"power_w", API_NUM, 0},
    {NULL, 0, 0},
};

static const api_field_t api_instance_fields[] = {
    {"id", API_JSON_STRING, 1},
    {"cpu_percent", API_NUM, 0},
    {"mem_used_bytes", API_NUM, 0},
    {"mem_limit_bytes", API_NUM, 0},
    {"net_rx_bytes_per_s", API_NUM, 0},
    {"net_tx_bytes_per_s", API_NUM, 0},
    {"disk_read_bytes_per_s", API_NUM, 0},
    {"disk_write_bytes_per_s", API_NUM, 0},
    {NULL, 0, 0},
};

/* Check every item of the array under key against fields. */
static int api_usage_check_array(api_ctx_t *ctx, api_error_t *err, const char *key,
                                 const api_field_t *fields, size_t max)
{
    json_t *array = json_object_get(ctx->body, key), *item;
    char where[64];
    size_t i;

    if (array == NULL || json_is_null(array))
        return 0;
    if (json_array_size(array) > max)
        return api_fail(err, 400, "bad_request", NULL, "\"%s\" has %zu items; at most %zu are "
                        "accepted in one post", key, json_array_size(array), max);
    json_array_foreach(array, i, item) {
        snprintf(where, sizeof(where), "%s[%zu]", key, i);
        if (api_check_fields(err, item, fields, where) != 0)
            return -1;
    }
    return 0;
}

int api_agent_usage_check(api_ctx_t *ctx, api_error_t *err)
{
    json_t *gpus = json_object_get(ctx->body, "gpus"), *item;
    size_t i;

    if (api_usage_check_array(ctx, err, "gpus", api_gpu_fields, API_USAGE_MAX_GPUS) != 0 ||
        api_usage_check_array(ctx, err, "instances", api_instance_fields,
                              API_USAGE_MAX_INSTANCES) != 0)
        return -1;
    json_array_foreach(gpus, i, item) {
        const char *id = json_string_value(json_object_get(item, "id"));
        if (!config_gpus_id_valid(id))
            return api_fail(err, 400, "bad_request", NULL,
                            "\"gpus[%zu].id\" is not a device id: use 1 to %d letters, digits "
                            "or ._:/- as the agent's GPU inventory names it", i,
                            CONFIG_GPU_ID_MAX);
    }
    return 0;
}

/* A number of item, or NAN when absent or null (stored as null, so that
 * averages skip it). */
static double api_usage_number(const json_t *item, const char *key)
{
    json_t *value = json_object_get(item, key);
    return json_is_number(value) ? json_number_value(value) : NAN;
}

static int api_usage_store_gpus(api_ctx_t *ctx, api_error_t *err, const char *agent,
                                int64_t time)
{
    json_t *gpus = json_object_get(ctx->body, "gpus"), *item;
    size_t i, count = json_array_size(gpus);

    if (count == 0)
        return 0;
    store_gpu_sample_t *samples = calloc(count, sizeof(*samples));
    if (samples == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory saving GPU samples");
    json_array_foreach(gpus, i, item) {
        samples[i] = (store_gpu_sample_t){
            .agent = agent,
            .gpu = json_string_value(json_object_get(item, "id")),
            .time = time,
            .util_percent = api_usage_number(item, "util_percent"),
            .mem_used_bytes = api_usage_number(item, "mem_used_bytes"),
            .mem_total_bytes = api_usage_number(item, "mem_total_bytes"),
            .temp_c = api_usage_number(item, "temp_c"),
            .power_w = api_usage_number(item, "power_w"),
        };
    }
    int rc = ctx->srv->store->ops->gpu_samples_insert(ctx->srv->store, samples, count);
    free(samples);
    return rc == STORE_OK ? 0 : api_fail_store(ctx, err, "saving GPU samples");
}

static int api_usage_store_instances(api_ctx_t *ctx, api_error_t *err, const char *agent,
                                     int64_t time)
{
    json_t *list = json_object_get(ctx->body, "instances"), *item;
    size_t i, count = json_array_size(list);

    if (count == 0)
        return 0;
    store_usage_sample_t *samples = calloc(count, sizeof(*samples));
    if (samples == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory saving usage samples");
    json_array_foreach(list, i, item) {
        samples[i] = (store_usage_sample_t){
            .instance_id = json_string_value(json_object_get(item, "id")),
            .time = time,
            .cpu_percent = api_usage_number(item, "cpu_percent"),
            .mem_used_bytes = api_usage_number(item, "mem_used_bytes"),
            .mem_limit_bytes = api_usage_number(item, "mem_limit_bytes"),
            .net_rx_bytes_per_s = api_usage_number(item, "net_rx_bytes_per_s"),
            .net_tx_bytes_per_s = api_usage_number(item, "net_tx_bytes_per_s"),
            .disk_read_bytes_per_s = api_usage_number(item, "disk_read_bytes_per_s"),
            .disk_write_bytes_per_s = api_usage_number(item, "disk_write_bytes_per_s"),
        };
    }
    int rc = ctx->srv->store->ops->usage_samples_insert(ctx->srv->store, agent, samples, count);
    free(samples);
    return rc == STORE_OK ? 0 : api_fail_store(ctx, err, "saving instance usage samples");
}

int api_agent_usage_store(api_ctx_t *ctx, api_error_t *err, const char *agent, int64_t time)
{
    if (api_usage_store_gpus(ctx, err, agent, time) != 0)
        return -1;
    return api_usage_store_instances(ctx, err, agent, time);
}
