/* The per-instance part of the metrics sampler: each running instance's
 * counters through its runtime, turned into rates between two readings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "agent/agent_metrics.h"
#include "util/clock.h"

/* An instance marked as sampling, so that its handle stays valid while the
 * sampler reads it. */
typedef struct {
    agent_instance_t *inst;
    agent_runtime_handle_t *handle;
    const agent_runtime_t *runtime;
} agent_claim_t;

static double agent_usage_rate(double prev, double cur, double seconds)
{
    if (isnan(prev) || isnan(cur) || cur < prev || seconds <= 0)
        return NAN;
    return (cur - prev) / seconds;
}

void agent_usage_rates(const agent_usage_t *prev, const agent_usage_t *cur, double seconds,
                       int cpus, agent_usage_rates_t *out)
{
    double cpu_per_s = agent_usage_rate(prev->cpu_seconds, cur->cpu_seconds, seconds);

    out->cpu_percent = cpus > 0 ? 100.0 * cpu_per_s / cpus : NAN;
    out->net_rx_bytes_per_s = agent_usage_rate(prev->net_rx_bytes, cur->net_rx_bytes, seconds);
    out->net_tx_bytes_per_s = agent_usage_rate(prev->net_tx_bytes, cur->net_tx_bytes, seconds);
    out->disk_read_bytes_per_s =
        agent_usage_rate(prev->disk_read_bytes, cur->disk_read_bytes, seconds);
    out->disk_write_bytes_per_s =
        agent_usage_rate(prev->disk_write_bytes, cur->disk_write_bytes, seconds);
}

/* Mark every running instance that can be sampled, so that its thread
 * keeps the handle until agent_usage_unclaim. Returns how many, with the
 * claims in *out (NULL when none). */
static size_t agent_usage_claim(agent_t *agent, agent_claim_t **out)
{
    size_t count = 0, cap = 0;

    *out = NULL;
    pthread_mutex_lock(&agent->lock);
    for (agent_instance_t *inst = agent->running; inst != NULL; inst = inst->next)
        cap++;
    if (cap > 0)
        *out = calloc(cap, sizeof(**out));
    for (agent_instance_t *inst = agent->running; *out != NULL && inst != NULL;
         inst = inst->next) {
        pthread_mutex_lock(&inst->lock);
        /* runtime is set before handle, and handle under this lock. */
        if (inst->handle != NULL && !inst->exited && !inst->sampling &&
            inst->runtime->sample != NULL) {
            inst->sampling = 1;
            (*out)[count++] = (agent_claim_t){inst, inst->handle, inst->runtime};
        }
        pthread_mutex_unlock(&inst->lock);
    }
    pthread_mutex_unlock(&agent->lock);
    return count;
}

static void agent_usage_unclaim(agent_claim_t *claim)
{
    pthread_mutex_lock(&claim->inst->lock);
    claim->inst->sampling = 0;
    pthread_cond_broadcast(&claim->inst->changed);
    pthread_mutex_unlock(&claim->inst->lock);
}

static const agent_usage_prev_t *agent_usage_find(const agent_usage_history_t *history,
                                                  const char *id)
{
    for (size_t i = 0; i < history->count; i++) {
        if (strcmp(history->items[i].id, id) == 0)
            return &history->items[i];
    }
    return NULL;
}

static json_t *agent_usage_item(const char *id, const agent_usage_t *usage,
                                const agent_usage_rates_t *rates)
{
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", id,
                     "cpu_percent", agent_metrics_number(rates->cpu_percent),
                     "mem_used_bytes", agent_metrics_number(usage->mem_used_bytes),
                     "mem_limit_bytes", agent_metrics_number(usage->mem_limit_bytes),
                     "net_rx_bytes_per_s", agent_metrics_number(rates->net_rx_bytes_per_s),
                     "net_tx_bytes_per_s", agent_metrics_number(rates->net_tx_bytes_per_s),
                     "disk_read_bytes_per_s", agent_metrics_number(rates->disk_read_bytes_per_s),
                     "disk_write_bytes_per_s",
                     agent_metrics_number(rates->disk_write_bytes_per_s));
}

/* Read one claimed instance into list and next. */
static void agent_usage_read_one(const agent_claim_t *claim, const agent_usage_history_t *prev,
                                 agent_usage_history_t *next, int cpus, json_t *list)
{
    agent_usage_t usage = {NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    agent_usage_rates_t rates = {NAN, NAN, NAN, NAN, NAN};
    const char *id = claim->inst->id;

    if (claim->runtime->sample(claim->handle, &usage) != 0)
        return;
    int64_t now = clock_mono_ms();
    const agent_usage_prev_t *last = agent_usage_find(prev, id);
    if (last != NULL)
        agent_usage_rates(&last->usage, &usage, (double)(now - last->mono_ms) / 1000.0, cpus,
                          &rates);

    agent_usage_prev_t *kept = &next->items[next->count++];
    snprintf(kept->id, sizeof(kept->id), "%s", id);
    kept->mono_ms = now;
    kept->usage = usage;

    json_t *item = agent_usage_item(id, &usage, &rates);
    if (item != NULL)
        json_array_append_new(list, item);
}

json_t *agent_metrics_instances_read(agent_t *agent, agent_usage_history_t *history)
{
    agent_claim_t *claims;
    size_t count = agent_usage_claim(agent, &claims);
    agent_usage_history_t next = {NULL, 0};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    json_t *list = NULL;

    if (count > 0) {
        next.items = calloc(count, sizeof(*next.items));
        list = json_array();
    }
    for (size_t i = 0; i < count; i++) {
        if (next.items != NULL && list != NULL)
            agent_usage_read_one(&claims[i], history, &next, cpus > 0 ? (int)cpus : 0, list);
        agent_usage_unclaim(&claims[i]);
    }
    free(claims);

    /* Instances that ended, or could not be read, start over next time. */
    agent_usage_history_free(history);
    *history = next;
    if (list != NULL && json_array_size(list) == 0) {
        json_decref(list);
        list = NULL;
    }
    return list;
}

void agent_usage_history_free(agent_usage_history_t *history)
{
    free(history->items);
    history->items = NULL;
    history->count = 0;
}
