/* Per-instance metrics: request records and machine samples aggregated into
 * time buckets for the metrics API. Backend-neutral: it reads through the
 * store's scans. */
#ifndef NIMDECK_STORE_METRICS_H
#define NIMDECK_STORE_METRICS_H

#include <jansson.h>
#include <stdint.h>

#include "store/store.h"

/* The maximum number of buckets (range / step) one query may produce. */
#define METRICS_MAX_BUCKETS 20000

/* Build the metrics object for instance_id over the buckets of step_s
 * seconds that cover [now - range_s, now), aligned to step_s. agent (may be
 * NULL or "") selects the machine series. Like the GPU series, they hold
 * only samples taken from the instance's started_at to its stopped_at, so
 * they are all null when it never started. Returns a new object, or NULL
 * with a message in st->error. */
json_t *metrics_build(store_t *st, const char *instance_id, const char *agent, int64_t now_ms,
                      int64_t step_s, int64_t range_s);

#endif
