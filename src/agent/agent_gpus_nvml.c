/* Listing the machine's GPUs through NVML for the agent's inventory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/agent_gpus.h"
#include "agent/agent_nvml.h"

int agent_gpus_detect_nvml(agent_gpu_t **out, size_t *count, char *why, size_t why_size)
{
    int devices = agent_nvml_open(why, why_size);
    agent_gpu_t *list;

    *out = NULL;
    *count = 0;
    if (devices < 0)
        return -1;
    if (devices == 0) {
        agent_nvml_close();
        return 0;
    }

    if ((list = calloc((size_t)devices, sizeof(*list))) == NULL) {
        agent_nvml_close();
        snprintf(why, why_size, "out of memory listing GPUs");
        return -1;
    }
    for (int i = 0; i < devices; i++) {
        agent_nvml_info_t info;
        agent_gpu_t *gpu = &list[i];

        snprintf(gpu->id, sizeof(gpu->id), "%d", i);
        gpu->nvml_index = i;
        gpu->mem_total_bytes = NAN;
        if (agent_nvml_info(i, &info) != 0)
            continue;
        snprintf(gpu->uuid, sizeof(gpu->uuid), "%s", info.uuid);
        snprintf(gpu->name, sizeof(gpu->name), "%s", info.name);
        gpu->mem_total_bytes = info.mem_total_bytes;
    }
    agent_nvml_close();
    *out = list;
    *count = (size_t)devices;
    return 0;
}
