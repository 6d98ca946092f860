/* Aggregation of request records and machine samples into time buckets. */
#include "store/metrics.h"

#include <stdint.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/metrics_usage.h"

#define METRICS_MACHINE_SERIES 7

static const char *const metrics_machine_names[METRICS_MACHINE_SERIES] = {
    "cpu_percent",        "mem_used_bytes",        "mem_total_bytes",       "net_rx_bytes_per_s",
    "net_tx_bytes_per_s", "disk_read_bytes_per_s", "disk_write_bytes_per_s",
};

typedef struct {
    int64_t requests, errors, prompt_tokens, completion_tokens, ttft_count;
    double latency_sum, ttft_sum;
    size_t latency_first, latency_count;   /* the bucket's slice of latencies */
    /* Sums and counts of the non-null values of each machine series. */
    double machine[METRICS_MACHINE_SERIES];
    int64_t machine_count[METRICS_MACHINE_SERIES];
} metrics_bucket_t;

typedef struct {
    int64_t from_ms, step_ms;
    size_t count;
    metrics_bucket_t *buckets;
    double *latencies;    /* in time order, so each bucket's values are contiguous */
    size_t latency_used, latency_cap;
    int failed;
} metrics_acc_t;

static metrics_bucket_t *metrics_bucket_at(metrics_acc_t *acc, int64_t time)
{
    if (time < acc->from_ms)
        return NULL;
    size_t index = (size_t)((time - acc->from_ms) / acc->step_ms);
    return index < acc->count ? &acc->buckets[index] : NULL;
}

static int metrics_on_record(const store_record_t *r, void *user)
{
    metrics_acc_t *acc = user;
    metrics_bucket_t *b = metrics_bucket_at(acc, r->time);

    if (b == NULL)
        return 0;
    if (acc->latency_used == acc->latency_cap) {
        size_t cap = acc->latency_cap ? acc->latency_cap * 2 : 1024;
        double *grown = realloc(acc->latencies, cap * sizeof(double));
        if (grown == NULL) {
            acc->failed = 1;
            return 1;
        }
        acc->latencies = grown;
        acc->latency_cap = cap;
    }
    if (b->latency_count == 0)
        b->latency_first = acc->latency_used;
    acc->latencies[acc->latency_used++] = r->latency_ms;
    b->latency_count++;

    b->requests++;
    if (r->status >= 500 || r->cancelled)
        b->errors++;
    /* Posts are range-checked, but a database written before those checks
     * may hold any value: the sums stop at INT64_MAX instead of wrapping. */
    if (__builtin_add_overflow(b->prompt_tokens, r->prompt_tokens, &b->prompt_tokens))
        b->prompt_tokens = INT64_MAX;
    if (__builtin_add_overflow(b->completion_tokens, r->completion_tokens,
                               &b->completion_tokens))
        b->completion_tokens = INT64_MAX;
    b->latency_sum += r->latency_ms;
    if (r->ttfb_ms >= 0) {
        b->ttft_sum += r->ttfb_ms;
        b->ttft_count++;
    }
    return 0;
}

static int metrics_on_sample(const store_sample_t *s, void *user)
{
    metrics_bucket_t *b = metrics_bucket_at(user, s->time);
    const double values[METRICS_MACHINE_SERIES] = {
        s->cpu_percent,        s->mem_used_bytes,        s->mem_total_bytes,
        s->net_rx_bytes_per_s, s->net_tx_bytes_per_s,    s->disk_read_bytes_per_s,
        s->disk_write_bytes_per_s,
    };

    if (b == NULL)
        return 0;
    for (int i = 0; i < METRICS_MACHINE_SERIES; i++) {
        if (isnan(values[i]))
            continue;
        b->machine[i] += values[i];
        b->machine_count[i]++;
    }
    return 0;
}

static int metrics_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank 95th percentile of the bucket's latencies. */
static double metrics_p95(metrics_acc_t *acc, const metrics_bucket_t *b)
{
    double *values = acc->latencies + b->latency_first;

    qsort(values, b->latency_count, sizeof(double), metrics_compare_double);
    size_t rank = (size_t)ceil(0.95 * (double)b->latency_count);
    return values[rank > 0 ? rank - 1 : 0];
}

/* The mean of count values summing to sum, or null when there are none. */
static json_t *metrics_mean(double sum, int64_t count)
{
    return count > 0 ? json_real(sum / (double)count) : json_null();
}

static json_t *metrics_series(metrics_acc_t *acc, json_t *time, json_t *totals)
{
    const char *names[] = {"requests", "errors", "prompt_tokens", "completion_tokens",
                           "tokens_per_second", "latency_ms_mean", "latency_ms_p95",
                           "ttft_ms_mean"};
    const size_t fixed = sizeof(names) / sizeof(names[0]);
    json_t *arrays[sizeof(names) / sizeof(names[0]) + METRICS_MACHINE_SERIES];
    json_t *series = json_object();
    int64_t sums[4] = {0, 0, 0, 0};

    for (size_t i = 0; i < fixed + METRICS_MACHINE_SERIES; i++) {
        arrays[i] = json_array();
        json_object_set_new(series, i < fixed ? names[i] : metrics_machine_names[i - fixed],
                            arrays[i]);
    }

    for (size_t k = 0; k < acc->count; k++) {
        metrics_bucket_t *b = &acc->buckets[k];
        double step_s = (double)acc->step_ms / 1000.0;

        int64_t start_ms = acc->from_ms + (int64_t)k * acc->step_ms;

        json_array_append_new(time, json_integer(start_ms / 1000));
        json_array_append_new(arrays[0], json_integer(b->requests));
        json_array_append_new(arrays[1], json_integer(b->errors));
        json_array_append_new(arrays[2], json_integer(b->prompt_tokens));
        json_array_append_new(arrays[3], json_integer(b->completion_tokens));
        json_array_append_new(arrays[4], json_real((double)b->completion_tokens / step_s));
        json_array_append_new(arrays[5], metrics_mean(b->latency_sum, b->requests));
        json_array_append_new(arrays[6], b->latency_count > 0 ? json_real(metrics_p95(acc, b))
                                                              : json_null());
        json_array_append_new(arrays[7], metrics_mean(b->ttft_sum, b->ttft_count));
        for (int m = 0; m < METRICS_MACHINE_SERIES; m++)
            json_array_append_new(arrays[fixed + (size_t)m],
                                  metrics_mean(b->machine[m], b->machine_count[m]));

        const int64_t parts[4] = {b->requests, b->errors, b->prompt_tokens,
                                  b->completion_tokens};
        for (int k = 0; k < 4; k++) {
            if (__builtin_add_overflow(sums[k], parts[k], &sums[k]))
                sums[k] = INT64_MAX;
        }
    }

    json_object_set_new(totals, "requests", json_integer(sums[0]));
    json_object_set_new(totals, "errors", json_integer(sums[1]));
    json_object_set_new(totals, "prompt_tokens", json_integer(sums[2]));
    json_object_set_new(totals, "completion_tokens", json_integer(sums[3]));
    return series;
}

/* The time instance_id ran on agent, from started_at to stopped_at (open
 * while it runs), into scope. It stays empty (held_from == held_to) for an
 * instance that never started or does not exist. Returns 0 or STORE_ERROR. */
static int metrics_held_scope(store_t *st, const char *instance_id, const char *agent,
                              metrics_gpu_scope_t *scope, store_instance_t *inst)
{
    memset(inst, 0, sizeof(*inst));
    *scope = (metrics_gpu_scope_t){agent, NULL, 0, 0};

    int rc = st->ops->instance_get(st, instance_id, inst);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND)
        return STORE_ERROR;
    if (rc == STORE_OK && inst->started_at != 0) {
        scope->gpus = inst->gpus;  /* NULL until the agent reports them */
        scope->held_from = inst->started_at;
        scope->held_to = inst->stopped_at != 0 ? inst->stopped_at + 1 : INT64_MAX;
    }
    return STORE_OK;
}

/* Scan the agent's machine samples into acc, only those taken while the
 * instance ran, because the host's load before the start or after the
 * stop is not the instance's.
 * NOTE: a downsampled sample carries the start of its minute, so in data
 * old enough to be downsampled the minute of the start shows no sample. */
static int metrics_scan_host(store_t *st, const metrics_gpu_scope_t *scope, metrics_acc_t *acc,
                             int64_t to_ms)
{
    int64_t from = scope->held_from > acc->from_ms ? scope->held_from : acc->from_ms;
    int64_t to = scope->held_to < to_ms ? scope->held_to : to_ms;

    if (scope->agent == NULL || scope->agent[0] == '\0' || from >= to)
        return STORE_OK;
    return st->ops->samples_scan(st, scope->agent, from, to, metrics_on_sample, acc);
}

json_t *metrics_build(store_t *st, const char *instance_id, const char *agent, int64_t now_ms,
                      int64_t step_s, int64_t range_s)
{
    metrics_acc_t acc = {0};
    metrics_gpu_scope_t scope;
    store_instance_t inst;
    json_t *result = NULL;

    if (step_s < 1 || range_s < 1 || (range_s + step_s - 1) / step_s > METRICS_MAX_BUCKETS) {
        snprintf(st->error, sizeof(st->error), "range/step gives more than %d buckets",
                 METRICS_MAX_BUCKETS);
        return NULL;
    }
    if (metrics_held_scope(st, instance_id, agent, &scope, &inst) != STORE_OK) {
        store_instance_clear(&inst);
        return NULL;
    }

    /* The last bucket is the one that contains now. */
    acc.step_ms = step_s * 1000;
    acc.count = (size_t)((range_s + step_s - 1) / step_s);
    int64_t to_ms = (now_ms / acc.step_ms + 1) * acc.step_ms;
    acc.from_ms = to_ms - (int64_t)acc.count * acc.step_ms;
    acc.buckets = calloc(acc.count, sizeof(*acc.buckets));
    if (acc.buckets == NULL) {
        snprintf(st->error, sizeof(st->error), "out of memory building metrics");
        goto out;
    }

    if (st->ops->records_scan(st, instance_id, acc.from_ms, to_ms, metrics_on_record, &acc) != 0)
        goto out;
    if (metrics_scan_host(st, &scope, &acc, to_ms) != 0)
        goto out;
    if (acc.failed) {
        snprintf(st->error, sizeof(st->error), "out of memory building metrics");
        goto out;
    }

    json_t *time = json_array(), *totals = json_object();
    json_t *series = metrics_series(&acc, time, totals);
    metrics_grid_t grid = {acc.from_ms, acc.step_ms, acc.count};
    if (metrics_usage_add(st, instance_id, &scope, &grid, series) != STORE_OK) {
        json_decref(time);
        json_decref(totals);
        json_decref(series);
        goto out;
    }
    result = json_pack("{s:I, s:I, s:I, s:o, s:o, s:o}", "step", (json_int_t)step_s, "from",
                       (json_int_t)(acc.from_ms / 1000), "to", (json_int_t)(to_ms / 1000),
                       "time", time, "series", series, "totals", totals);

out:
    store_instance_clear(&inst);
    free(acc.buckets);
    free(acc.latencies);
    return result;
}
