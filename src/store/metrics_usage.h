/* The instance's own resource use and its GPUs' readings as metrics series,
 * added by metrics_build. Internal to the store module. */
#ifndef NIMDECK_STORE_METRICS_USAGE_H
#define NIMDECK_STORE_METRICS_USAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The buckets the series cover: count buckets of step_ms from from_ms. */
typedef struct {
    int64_t from_ms;
    int64_t step_ms;
    size_t count;
} metrics_grid_t;

/* The readings the GPU series use: those of agent's devices listed in gpus
 * (a JSON array of id strings, NULL or empty for none), taken from
 * held_from to held_to (ms). That is the time the instance held them, so
 * a later holder's use does not show. */
typedef struct {
    const char *agent;
    const json_t *gpus;
    int64_t held_from;
    int64_t held_to;
} metrics_gpu_scope_t;

/* Add the instance_* series to series, null where there is no sample. Add
 * the gpu_* series only when a GPU sample falls in the grid. The readings
 * of one time combine into the mean utilization, the sums of memory and
 * power, and the highest temperature, and each bucket averages those.
 * Returns 0, or STORE_ERROR with st->error set. */
int metrics_usage_add(store_t *st, const char *instance_id, const metrics_gpu_scope_t *scope,
                      const metrics_grid_t *grid, json_t *series);

#endif
