/* The GPU part of the metrics sampler: which devices to read, and one
 * reading of each through NVML. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/agent_internal.h"
#include "agent/agent_metrics.h"
#include "agent/agent_nvml.h"
#include "util/log.h"

json_t *agent_metrics_number(double value)
{
    return isnan(value) ? json_null() : json_real(value);
}

/* Copy the inventory's GPUs that have an NVML index into gpus->devices. */
static void agent_metrics_gpus_pick(agent_metrics_gpus_t *gpus, const agent_gpus_t *inventory)
{
    size_t total = inventory != NULL ? agent_gpus_count(inventory) : 0;
    agent_gpu_t gpu;

    if (total == 0 || (gpus->devices = calloc(total, sizeof(*gpus->devices))) == NULL)
        return;
    for (size_t i = 0; i < total; i++) {
        if (agent_gpus_get(inventory, i, &gpu) != 0 || gpu.nvml_index < 0)
            continue;
        agent_metrics_gpu_t *device = &gpus->devices[gpus->count++];
        snprintf(device->id, sizeof(device->id), "%s", gpu.id);
        device->nvml_index = gpu.nvml_index;
    }
}

void agent_metrics_gpus_init(agent_metrics_gpus_t *gpus, agent_t *agent, const char *agent_id)
{
    char why[512] = "";

    gpus->devices = NULL;
    gpus->count = 0;
    gpus->nvml_open = 0;

    /* Without NVML the inventory has no NVML GPUs, and building it has
     * logged why already; the agent then runs without GPU readings. */
    agent_metrics_gpus_pick(gpus, agent->gpus);
    if (gpus->count == 0)
        return;
    if (agent_nvml_open(why, sizeof(why)) < 0) {
        log_warn("agent", "agent %s: no GPU metrics: %s", agent_id, why);
        gpus->count = 0;
        return;
    }
    gpus->nvml_open = 1;
}

void agent_metrics_gpus_close(agent_metrics_gpus_t *gpus)
{
    free(gpus->devices);
    gpus->devices = NULL;
    gpus->count = 0;
    if (gpus->nvml_open)
        agent_nvml_close();
    gpus->nvml_open = 0;
}

json_t *agent_metrics_gpus_read(agent_metrics_gpus_t *gpus)
{
    json_t *list;

    if (gpus->count == 0 || (list = json_array()) == NULL)
        return NULL;
    for (size_t i = 0; i < gpus->count; i++) {
        agent_nvml_sample_t s;

        /* A device that cannot be read at all is left out rather than sent
         * as all nulls. */
        if (agent_nvml_sample(gpus->devices[i].nvml_index, &s) != 0)
            continue;
        json_t *item = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "id", gpus->devices[i].id,
                                 "util_percent", agent_metrics_number(s.util_percent),
                                 "mem_used_bytes", agent_metrics_number(s.mem_used_bytes),
                                 "mem_total_bytes", agent_metrics_number(s.mem_total_bytes),
                                 "temp_c", agent_metrics_number(s.temp_c),
                                 "power_w", agent_metrics_number(s.power_w));
        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}
