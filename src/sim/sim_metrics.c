/* Prometheus text exposition of the simulator's metrics. */
#include "sim/sim_metrics.h"

#include <stdio.h>
#include <string.h>

/* Bucket bounds in seconds: fine steps below 0.1 s for the first token, and
 * up to a minute for whole requests. */
static const double sim_ttft_bounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                         0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0};
static const double sim_e2e_bounds[] = {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,  2.5,  5.0,
                                        10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0};

#define SIM_COUNT(array) (sizeof(array) / sizeof((array)[0]))

_Static_assert(SIM_COUNT(sim_ttft_bounds) <= SIM_HISTOGRAM_MAX_BUCKETS, "too many buckets");
_Static_assert(SIM_COUNT(sim_e2e_bounds) <= SIM_HISTOGRAM_MAX_BUCKETS, "too many buckets");

void sim_metrics_init(sim_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
    m->ttft.bounds = sim_ttft_bounds;
    m->ttft.n = SIM_COUNT(sim_ttft_bounds);
    m->e2e.bounds = sim_e2e_bounds;
    m->e2e.n = SIM_COUNT(sim_e2e_bounds);
}

void sim_histogram_observe(sim_histogram_t *h, double value)
{
    size_t i = 0;

    while (i < h->n && value > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += value;
    h->count++;
}

int sim_prometheus_escape(const char *value, buf_t *out)
{
    for (const char *p = value; *p != '\0'; p++) {
        int rc;

        if (*p == '\\')
            rc = buf_append_str(out, "\\\\");
        else if (*p == '"')
            rc = buf_append_str(out, "\\\"");
        else if (*p == '\n')
            rc = buf_append_str(out, "\\n");
        else
            rc = buf_append(out, p, 1);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int sim_family(buf_t *out, const char *name, const char *type, const char *help)
{
    return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample line: name{model_name="...",extra} value. extra is "" or
 * ",key=\"value\"" text that needs no escaping. */
static int sim_sample(buf_t *out, const char *name, const char *label, const char *extra,
                      const char *value)
{
    if (buf_printf(out, "%s{model_name=\"", name) != 0)
        return -1;
    if (buf_append_str(out, label) != 0)
        return -1;
    return buf_printf(out, "\"%s} %s\n", extra, value);
}

static int sim_sample_u64(buf_t *out, const char *name, const char *label, const char *extra,
                          uint64_t value)
{
    char text[32];

    snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
    return sim_sample(out, name, label, extra, text);
}

static int sim_sample_double(buf_t *out, const char *name, const char *label, double value)
{
    char text[48];

    snprintf(text, sizeof(text), "%.9g", value);
    return sim_sample(out, name, label, "", text);
}

static int sim_histogram_format(buf_t *out, const char *name, const char *help,
                                const sim_histogram_t *h, const char *label)
{
    char bucket_name[96];
    char extra[48];
    uint64_t cumulative = 0;

    snprintf(bucket_name, sizeof(bucket_name), "%s_bucket", name);
    if (sim_family(out, name, "histogram", help) != 0)
        return -1;

    for (size_t i = 0; i <= h->n; i++) {
        cumulative += h->counts[i];
        if (i < h->n)
            snprintf(extra, sizeof(extra), ",le=\"%g\"", h->bounds[i]);
        else
            snprintf(extra, sizeof(extra), ",le=\"+Inf\"");
        if (sim_sample_u64(out, bucket_name, label, extra, cumulative) != 0)
            return -1;
    }

    snprintf(bucket_name, sizeof(bucket_name), "%s_sum", name);
    if (sim_sample_double(out, bucket_name, label, h->sum) != 0)
        return -1;
    snprintf(bucket_name, sizeof(bucket_name), "%s_count", name);
    return sim_sample_u64(out, bucket_name, label, "", h->count);
}

static int sim_metrics_format_scalars(const sim_metrics_t *m, const char *label, buf_t *out)
{
    if (sim_family(out, "num_requests_running", "gauge",
                   "Number of requests currently being generated.") != 0 ||
        sim_sample_u64(out, "num_requests_running", label, "", (uint64_t)m->running) != 0)
        return -1;
    if (sim_family(out, "num_requests_waiting", "gauge",
                   "Number of requests waiting to be processed.") != 0 ||
        sim_sample_u64(out, "num_requests_waiting", label, "", (uint64_t)m->waiting) != 0)
        return -1;
    if (sim_family(out, "gpu_cache_usage_perc", "gauge",
                   "Simulated KV cache usage as a fraction, where 1 means 100 percent.") != 0 ||
        sim_sample_double(out, "gpu_cache_usage_perc", label, m->cache_usage) != 0)
        return -1;
    if (sim_family(out, "prompt_tokens_total", "counter", "Number of prefill tokens processed.") != 0 ||
        sim_sample_u64(out, "prompt_tokens_total", label, "", m->prompt_tokens) != 0)
        return -1;
    if (sim_family(out, "generation_tokens_total", "counter",
                   "Number of generation tokens processed.") != 0 ||
        sim_sample_u64(out, "generation_tokens_total", label, "", m->generation_tokens) != 0)
        return -1;
    if (sim_family(out, "request_success_total", "counter",
                   "Number of requests that finished, by finish reason.") != 0 ||
        sim_sample_u64(out, "request_success_total", label, ",finished_reason=\"stop\"",
                       m->success_stop) != 0 ||
        sim_sample_u64(out, "request_success_total", label, ",finished_reason=\"length\"",
                       m->success_length) != 0)
        return -1;
    if (sim_family(out, "request_cancelled_total", "counter",
                   "Number of requests whose client disconnected before the end.") != 0 ||
        sim_sample_u64(out, "request_cancelled_total", label, "", m->cancelled) != 0)
        return -1;
    return 0;
}

int sim_metrics_format(const sim_metrics_t *m, const char *model, buf_t *out)
{
    buf_t label = BUF_INIT;
    int rc = -1;

    /* The empty append makes label.data a string even when model is "". */
    if (sim_prometheus_escape(model, &label) != 0 || buf_append_str(&label, "") != 0)
        goto out;

    if (sim_metrics_format_scalars(m, label.data, out) != 0)
        goto out;
    if (sim_histogram_format(out, "time_to_first_token_seconds",
                             "Histogram of time to first token in seconds.", &m->ttft,
                             label.data) != 0)
        goto out;
    if (sim_histogram_format(out, "e2e_request_latency_seconds",
                             "Histogram of end to end request latency in seconds.", &m->e2e,
                             label.data) != 0)
        goto out;
    rc = 0;

out:
    buf_free(&label);
    return rc;
}
