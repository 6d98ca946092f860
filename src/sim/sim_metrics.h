/* The simulator's counters, histograms and gauges, and their Prometheus text
 * exposition under the metric names NIM's engines use. */
#ifndef NIMDECK_SIM_SIM_METRICS_H
#define NIMDECK_SIM_SIM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define SIM_HISTOGRAM_MAX_BUCKETS 24

/* A Prometheus histogram. bounds are the finite upper bounds in seconds, in
 * ascending order. counts[i] counts observations in (bounds[i-1], bounds[i]]
 * and counts[n] the ones above the last bound. */
typedef struct {
    const double *bounds;
    size_t n;
    uint64_t counts[SIM_HISTOGRAM_MAX_BUCKETS + 1];
    double sum;
    uint64_t count;
} sim_histogram_t;

typedef struct {
    int running;                  /* generations in progress */
    int waiting;                  /* always 0: the simulator queues nothing */
    double cache_usage;           /* simulated KV cache use, 0..1 */
    uint64_t prompt_tokens;       /* counted when a request starts */
    uint64_t generation_tokens;   /* counted as each token is produced */
    uint64_t success_stop;        /* finished on their own */
    uint64_t success_length;      /* cut by max_tokens */
    uint64_t cancelled;           /* the client disconnected first */
    sim_histogram_t ttft;         /* time to first token, seconds */
    sim_histogram_t e2e;          /* whole request, seconds */
} sim_metrics_t;

/* Zero every value and set the histograms' bucket bounds. */
void sim_metrics_init(sim_metrics_t *m);

/* Record one observation of value (seconds). */
void sim_histogram_observe(sim_histogram_t *h, double value);

/* Append value to out as a Prometheus label value: backslash, double quote
 * and newline escaped as \\, \" and \n. Returns 0, or -1 when memory runs out. */
int sim_prometheus_escape(const char *value, buf_t *out);

/* Append the Prometheus text exposition of m to out, each sample labelled
 * model_name=model, with HELP and TYPE once per family. Returns 0, or -1 when
 * memory runs out. */
int sim_metrics_format(const sim_metrics_t *m, const char *model, buf_t *out);

#endif
