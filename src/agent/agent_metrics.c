/* The metrics sampler: every metrics_interval_s, the machine's procfs
 * counters, the GPUs' readings and each running instance's own use, sent
 * as one post to the server. */
#include <math.h>
#include <stdio.h>

#include "agent/agent_internal.h"
#include "agent/agent_metrics.h"
#include "agent/agent_procfs.h"
#include "util/api_client.h"
#include "util/clock.h"
#include "util/log.h"

#define AGENT_METRICS_WARN_EVERY_MS 60000

/* The post's machine values, null where procfs could not be read. Rates
 * need two readings, so rates is NULL until there are two. */
static json_t *agent_metrics_body(const agent_machine_counters_t *cur,
                                  const agent_machine_rates_t *rates)
{
    double mem_used = NAN, mem_total = NAN;

    if (cur != NULL) {
        mem_used = (double)cur->mem_used_bytes;
        mem_total = (double)cur->mem_total_bytes;
    }
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "time", (json_int_t)clock_wall_ms(),
                     "cpu_percent", agent_metrics_number(rates ? rates->cpu_percent : NAN),
                     "mem_used_bytes", agent_metrics_number(mem_used),
                     "mem_total_bytes", agent_metrics_number(mem_total),
                     "net_rx_bytes_per_s",
                     agent_metrics_number(rates ? rates->net_rx_bytes_per_s : NAN),
                     "net_tx_bytes_per_s",
                     agent_metrics_number(rates ? rates->net_tx_bytes_per_s : NAN),
                     "disk_read_bytes_per_s",
                     agent_metrics_number(rates ? rates->disk_read_bytes_per_s : NAN),
                     "disk_write_bytes_per_s",
                     agent_metrics_number(rates ? rates->disk_write_bytes_per_s : NAN));
}

static void agent_metrics_send(agent_t *agent, json_t *body, int64_t *last_warn_ms)
{
    char path[200], id[sizeof(agent->id)];
    api_result_t res;
    int64_t now = clock_mono_ms();

    agent_copy_id(agent, id, sizeof(id));
    snprintf(path, sizeof(path), "/api/v1/agents/%s/metrics", id);
    int rc = api_call(agent->server_url, agent->token, "POST", path, body, 5000, &res);
    if ((rc != 0 || res.status >= 300) &&
        (*last_warn_ms == 0 || now - *last_warn_ms >= AGENT_METRICS_WARN_EVERY_MS)) {
        log_warn("agent", "agent %s: cannot send metrics: %s", id, res.error);
        *last_warn_ms = now;
    }
    api_result_free(&res);
}

/* Sampler state kept between rounds. */
typedef struct {
    agent_machine_counters_t prev;
    int have_prev;
    agent_metrics_gpus_t gpus;
    agent_usage_history_t usage;
    int64_t last_warn_ms;
} agent_sampler_t;

static void agent_metrics_round(agent_t *agent, agent_sampler_t *s)
{
    agent_machine_counters_t cur;
    agent_machine_rates_t rates;
    int have_cur = agent_procfs_read(&cur) == 0;
    json_t *body;

    if (have_cur && s->have_prev) {
        agent_procfs_rates(&s->prev, &cur, &rates);
        body = agent_metrics_body(&cur, &rates);
    } else {
        body = agent_metrics_body(have_cur ? &cur : NULL, NULL);
    }
    if (have_cur) {
        s->prev = cur;
        s->have_prev = 1;
    }
    if (body == NULL)
        return;

    json_t *gpus = agent_metrics_gpus_read(&s->gpus);
    json_t *instances = agent_metrics_instances_read(agent, &s->usage);
    if (gpus != NULL)
        json_object_set_new(body, "gpus", gpus);
    if (instances != NULL)
        json_object_set_new(body, "instances", instances);
    agent_metrics_send(agent, body, &s->last_warn_ms);
    json_decref(body);
}

void *agent_metrics_run(void *arg)
{
    agent_t *agent = arg;
    agent_sampler_t s = {.last_warn_ms = 0};
    char id[sizeof(agent->id)];

    agent_copy_id(agent, id, sizeof(id));
    s.have_prev = agent_procfs_read(&s.prev) == 0;
    if (!s.have_prev)
        log_warn("agent", "agent %s: cannot read /proc/stat or /proc/meminfo; machine metrics "
                 "will be missing until they can be read", id);
    agent_metrics_gpus_init(&s.gpus, agent, id);

    while (!atomic_load(&agent->stopping)) {
        agent_wait(agent, agent->metrics_interval_s * 1000);
        if (atomic_load(&agent->stopping))
            break;
        agent_metrics_round(agent, &s);
    }
    agent_metrics_gpus_close(&s.gpus);
    agent_usage_history_free(&s.usage);
    return NULL;
}
