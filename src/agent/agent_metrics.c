/* The machine metrics sampler: procfs counters every metrics_interval_s,
 * sent as rates to the server. */
#include <stdio.h>

#include "agent/agent_internal.h"
#include "agent/agent_procfs.h"
#include "util/api_client.h"
#include "util/clock.h"
#include "util/log.h"

#define AGENT_METRICS_WARN_EVERY_MS 60000

static void agent_metrics_send(agent_t *agent, const agent_machine_counters_t *cur,
                               const agent_machine_rates_t *rates, int64_t *last_warn_ms)
{
    char path[200];
    api_result_t res;
    json_t *body = json_pack("{s:I, s:f, s:I, s:I, s:f, s:f, s:f, s:f}",
                             "time", (json_int_t)clock_wall_ms(),
                             "cpu_percent", rates->cpu_percent,
                             "mem_used_bytes", (json_int_t)cur->mem_used_bytes,
                             "mem_total_bytes", (json_int_t)cur->mem_total_bytes,
                             "net_rx_bytes_per_s", rates->net_rx_bytes_per_s,
                             "net_tx_bytes_per_s", rates->net_tx_bytes_per_s,
                             "disk_read_bytes_per_s", rates->disk_read_bytes_per_s,
                             "disk_write_bytes_per_s", rates->disk_write_bytes_per_s);
    int64_t now = clock_mono_ms();
    char id[sizeof(agent->id)];

    if (body == NULL)
        return;
    agent_copy_id(agent, id, sizeof(id));
    snprintf(path, sizeof(path), "/api/v1/agents/%s/metrics", id);
    int rc = api_call(agent->server_url, agent->token, "POST", path, body, 5000, &res);
    if ((rc != 0 || res.status >= 300) &&
        (*last_warn_ms == 0 || now - *last_warn_ms >= AGENT_METRICS_WARN_EVERY_MS)) {
        log_warn("agent", "agent %s: cannot send machine metrics: %s", id, res.error);
        *last_warn_ms = now;
    }
    api_result_free(&res);
    json_decref(body);
}

void *agent_metrics_run(void *arg)
{
    agent_t *agent = arg;
    agent_machine_counters_t prev, cur;
    agent_machine_rates_t rates;
    int64_t last_warn_ms = 0;
    int have_prev = agent_procfs_read(&prev) == 0;
    char id[sizeof(agent->id)];

    agent_copy_id(agent, id, sizeof(id));
    if (!have_prev)
        log_warn("agent", "agent %s: cannot read /proc/stat or /proc/meminfo; machine metrics "
                 "will be missing until they can be read", id);

    while (!atomic_load(&agent->stopping)) {
        agent_wait(agent, agent->metrics_interval_s * 1000);
        if (atomic_load(&agent->stopping))
            break;
        if (agent_procfs_read(&cur) != 0)
            continue;
        if (have_prev) {
            agent_procfs_rates(&prev, &cur, &rates);
            agent_metrics_send(agent, &cur, &rates, &last_warn_ms);
        }
        prev = cur;
        have_prev = 1;
    }
    return NULL;
}
