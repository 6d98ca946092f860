/* Per-instance usage and GPU series: usage samples averaged per bucket, GPU
 * samples first combined over the instance's GPUs at each reading time,
 * then averaged per bucket. */
#include "store/metrics_usage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_USAGE_SERIES 6
#define METRICS_GPU_SERIES 5

static const char *const metrics_usage_names[METRICS_USAGE_SERIES] = {
    "instance_cpu_percent",          "instance_mem_used_bytes",
    "instance_net_rx_bytes_per_s",   "instance_net_tx_bytes_per_s",
    "instance_disk_read_bytes_per_s", "instance_disk_write_bytes_per_s",
};

static const char *const metrics_gpu_names[METRICS_GPU_SERIES] = {
    "gpu_util_percent", "gpu_mem_used_bytes", "gpu_mem_total_bytes", "gpu_temp_c", "gpu_power_w",
};

/* How the readings of several GPUs taken at one time combine. */
typedef enum { METRICS_MEAN, METRICS_SUM, METRICS_MAX } metrics_combine_t;

static const metrics_combine_t metrics_gpu_combine[METRICS_GPU_SERIES] = {
    METRICS_MEAN, METRICS_SUM, METRICS_SUM, METRICS_MAX, METRICS_SUM,
};

/* Sums and counts of the non-null values per bucket and series. */
typedef struct {
    double sum;
    int64_t count;
} metrics_cell_t;

typedef struct {
    const metrics_grid_t *grid;
    metrics_cell_t *usage;  /* count * METRICS_USAGE_SERIES */
    metrics_cell_t *gpu;    /* count * METRICS_GPU_SERIES */
    int gpu_seen;

    /* The GPU readings of one time, combined as they arrive. */
    int64_t frame_time;
    int frame_open;
    double frame_value[METRICS_GPU_SERIES];
    int frame_count[METRICS_GPU_SERIES];
} metrics_usage_acc_t;

static long metrics_usage_bucket(const metrics_grid_t *grid, int64_t time)
{
    if (time < grid->from_ms)
        return -1;
    int64_t index = (time - grid->from_ms) / grid->step_ms;
    return index < (int64_t)grid->count ? (long)index : -1;
}

static void metrics_cell_add(metrics_cell_t *cell, double value)
{
    if (isnan(value))
        return;
    cell->sum += value;
    cell->count++;
}

static int metrics_on_usage(const store_usage_sample_t *s, void *user)
{
    metrics_usage_acc_t *acc = user;
    long b = metrics_usage_bucket(acc->grid, s->time);
    const double values[METRICS_USAGE_SERIES] = {
        s->cpu_percent,        s->mem_used_bytes,        s->net_rx_bytes_per_s,
        s->net_tx_bytes_per_s, s->disk_read_bytes_per_s, s->disk_write_bytes_per_s,
    };

    if (b < 0)
        return 0;
    for (int i = 0; i < METRICS_USAGE_SERIES; i++)
        metrics_cell_add(&acc->usage[b * METRICS_USAGE_SERIES + i], values[i]);
    return 0;
}

/* Move the combined readings of the current time into its bucket. */
static void metrics_gpu_flush(metrics_usage_acc_t *acc)
{
    long b = metrics_usage_bucket(acc->grid, acc->frame_time);

    if (acc->frame_open && b >= 0) {
        for (int i = 0; i < METRICS_GPU_SERIES; i++) {
            double value = acc->frame_value[i];
            if (acc->frame_count[i] == 0)
                continue;
            if (metrics_gpu_combine[i] == METRICS_MEAN)
                value /= acc->frame_count[i];
            metrics_cell_add(&acc->gpu[b * METRICS_GPU_SERIES + i], value);
            acc->gpu_seen = 1;
        }
    }
    acc->frame_open = 0;
    memset(acc->frame_value, 0, sizeof(acc->frame_value));
    memset(acc->frame_count, 0, sizeof(acc->frame_count));
}

static int metrics_on_gpu(const store_gpu_sample_t *s, void *user)
{
    metrics_usage_acc_t *acc = user;
    const double values[METRICS_GPU_SERIES] = {
        s->util_percent, s->mem_used_bytes, s->mem_total_bytes, s->temp_c, s->power_w,
    };

    /* Samples come ordered by time. The agent reads all GPUs at once, so
     * the samples of one time are one reading per GPU. */
    if (acc->frame_open && s->time != acc->frame_time)
        metrics_gpu_flush(acc);
    acc->frame_open = 1;
    acc->frame_time = s->time;
    for (int i = 0; i < METRICS_GPU_SERIES; i++) {
        if (isnan(values[i]))
            continue;
        if (metrics_gpu_combine[i] != METRICS_MAX)
            acc->frame_value[i] += values[i];
        else if (acc->frame_count[i] == 0 || values[i] > acc->frame_value[i])
            acc->frame_value[i] = values[i];
        acc->frame_count[i]++;
    }
    return 0;
}

/* Append one series per name, each the bucket means of its cells. */
static void metrics_usage_emit(const metrics_grid_t *grid, const metrics_cell_t *cells,
                               const char *const *names, int width, json_t *series)
{
    for (int i = 0; i < width; i++) {
        json_t *values = json_array();
        for (size_t b = 0; b < grid->count; b++) {
            const metrics_cell_t *cell = &cells[b * (size_t)width + (size_t)i];
            json_array_append_new(values, cell->count > 0
                                              ? json_real(cell->sum / (double)cell->count)
                                              : json_null());
        }
        json_object_set_new(series, names[i], values);
    }
}

int metrics_usage_add(store_t *st, const char *instance_id, const metrics_gpu_scope_t *scope,
                      const metrics_grid_t *grid, json_t *series)
{
    metrics_usage_acc_t acc = {.grid = grid};
    int64_t to_ms = grid->from_ms + (int64_t)grid->count * grid->step_ms;
    int rc = STORE_ERROR;

    acc.usage = calloc(grid->count * METRICS_USAGE_SERIES, sizeof(*acc.usage));
    acc.gpu = calloc(grid->count * METRICS_GPU_SERIES, sizeof(*acc.gpu));
    if (acc.usage == NULL || acc.gpu == NULL) {
        snprintf(st->error, sizeof(st->error), "out of memory building metrics");
        goto out;
    }

    if (st->ops->usage_samples_scan(st, instance_id, grid->from_ms, to_ms, metrics_on_usage,
                                    &acc) != STORE_OK)
        goto out;

    int64_t from = scope->held_from > grid->from_ms ? scope->held_from : grid->from_ms;
    int64_t to = scope->held_to < to_ms ? scope->held_to : to_ms;
    if (scope->agent != NULL && scope->agent[0] != '\0' && json_array_size(scope->gpus) > 0 &&
        from < to) {
        if (st->ops->gpu_samples_scan(st, scope->agent, scope->gpus, from, to, metrics_on_gpu,
                                      &acc) != STORE_OK)
            goto out;
        metrics_gpu_flush(&acc);
    }

    metrics_usage_emit(grid, acc.usage, metrics_usage_names, METRICS_USAGE_SERIES, series);
    if (acc.gpu_seen)
        metrics_usage_emit(grid, acc.gpu, metrics_gpu_names, METRICS_GPU_SERIES, series);
    rc = STORE_OK;

out:
    free(acc.usage);
    free(acc.gpu);
    return rc;
}
