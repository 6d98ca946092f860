/* The parts of the agent's metrics sampler: GPU readings through NVML and
 * each running instance's own use, both turned into the JSON arrays of the
 * metrics post. */
#ifndef NIMDECK_AGENT_AGENT_METRICS_H
#define NIMDECK_AGENT_AGENT_METRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_runtime.h"

typedef struct agent agent_t;

/* ---- GPUs (agent_metrics_gpu.c) ---- */

typedef struct {
    char id[96];      /* the device id the agent reports, e.g. "0" */
    int nvml_index;
} agent_metrics_gpu_t;

typedef struct {
    agent_metrics_gpu_t *devices;  /* NULL when there is nothing to read */
    size_t count;
    int nvml_open;                 /* 1 after agent_nvml_open succeeded, until the close */
} agent_metrics_gpus_t;

/* Pick the GPUs to read: those of the agent's inventory that have an NVML
 * index. Opens NVML for them. When it cannot be opened, logs why once
 * (agent_id names the agent) and reads none. */
void agent_metrics_gpus_init(agent_metrics_gpus_t *gpus, agent_t *agent, const char *agent_id);
void agent_metrics_gpus_close(agent_metrics_gpus_t *gpus);

/* Read every GPU now: [{"id", "util_percent", "mem_used_bytes",
 * "mem_total_bytes", "temp_c", "power_w"}], null for a value NVML could not
 * give. NULL when there are no GPUs to read or memory runs out. */
json_t *agent_metrics_gpus_read(agent_metrics_gpus_t *gpus);

/* ---- Per-instance use (agent_metrics_usage.c) ---- */

/* Rates from two readings of an instance's counters. NAN where either
 * reading lacks the counter or it went backwards (a process left the
 * group, a container restarted). */
typedef struct {
    double cpu_percent;            /* of all of the machine's CPUs, 0-100 */
    double net_rx_bytes_per_s;
    double net_tx_bytes_per_s;
    double disk_read_bytes_per_s;
    double disk_write_bytes_per_s;
} agent_usage_rates_t;

/* seconds between the readings; cpus the machine's online CPUs. */
void agent_usage_rates(const agent_usage_t *prev, const agent_usage_t *cur, double seconds,
                       int cpus, agent_usage_rates_t *out);

/* The previous reading of each instance, to compute rates with. */
typedef struct {
    char id[64];
    int64_t mono_ms;
    agent_usage_t usage;
} agent_usage_prev_t;

typedef struct {
    agent_usage_prev_t *items;
    size_t count;
} agent_usage_history_t;

/* Read every running instance whose runtime can sample, keep the readings
 * in history (dropping instances that ended) and return [{"id",
 * "cpu_percent", "mem_used_bytes", "mem_limit_bytes", "net_rx_bytes_per_s",
 * "net_tx_bytes_per_s", "disk_read_bytes_per_s", "disk_write_bytes_per_s"}]
 * with null for unknown values (every rate on an instance's first reading).
 * NULL when no instance was read or memory runs out. */
json_t *agent_metrics_instances_read(agent_t *agent, agent_usage_history_t *history);
void agent_usage_history_free(agent_usage_history_t *history);

/* A JSON number, or null for NAN. */
json_t *agent_metrics_number(double value);

#endif
