/* The agent's GPU inventory at run time: which instance holds which GPU,
 * allocation from a configuration's "gpus" and release at the end. */
#include "agent/agent_gpus.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

#define AGENT_GPU_HOLDER_MAX 64

struct agent_gpus {
    pthread_mutex_t lock; /* guards holders */
    agent_gpu_t *devices; /* fixed after creation */
    size_t count;
    char (*holders)[AGENT_GPU_HOLDER_MAX]; /* the instance id holding each GPU, "" when free */
};

agent_gpus_t *agent_gpus_new(const agent_gpu_t *devices, size_t count)
{
    agent_gpus_t *gpus = calloc(1, sizeof(*gpus));

    if (gpus == NULL)
        return NULL;
    gpus->devices = calloc(count + 1, sizeof(*gpus->devices));
    gpus->holders = calloc(count + 1, sizeof(*gpus->holders));
    if (gpus->devices == NULL || gpus->holders == NULL) {
        free(gpus->devices);
        free(gpus->holders);
        free(gpus);
        return NULL;
    }
    if (count > 0)
        memcpy(gpus->devices, devices, count * sizeof(*devices));
    gpus->count = count;
    pthread_mutex_init(&gpus->lock, NULL);
    return gpus;
}

void agent_gpus_free(agent_gpus_t *gpus)
{
    if (gpus == NULL)
        return;
    pthread_mutex_destroy(&gpus->lock);
    free(gpus->devices);
    free(gpus->holders);
    free(gpus);
}

size_t agent_gpus_count(const agent_gpus_t *gpus)
{
    return gpus != NULL ? gpus->count : 0;
}

int agent_gpus_get(const agent_gpus_t *gpus, size_t i, agent_gpu_t *out)
{
    if (gpus == NULL || i >= gpus->count)
        return -1;
    *out = gpus->devices[i];
    return 0;
}

static json_t *agent_gpus_text_or_null(const char *text)
{
    return text[0] != '\0' ? json_string(text) : json_null();
}

json_t *agent_gpus_inventory_json(const agent_gpus_t *gpus)
{
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && i < agent_gpus_count(gpus); i++) {
        const agent_gpu_t *gpu = &gpus->devices[i];
        json_t *item = json_pack("{s:s, s:o, s:o, s:o}", "id", gpu->id, "uuid",
                                 agent_gpus_text_or_null(gpu->uuid), "name",
                                 agent_gpus_text_or_null(gpu->name), "mem_total_bytes",
                                 isnan(gpu->mem_total_bytes) ? json_null()
                                                             : json_real(gpu->mem_total_bytes));
        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

int agent_gpus_free_ids(agent_gpus_t *gpus, buf_t *out)
{
    int first = 1, rc = 0;

    if (gpus == NULL)
        return 0;
    pthread_mutex_lock(&gpus->lock);
    for (size_t i = 0; i < gpus->count && rc == 0; i++) {
        if (gpus->holders[i][0] != '\0')
            continue;
        rc = buf_printf(out, "%s%s", first ? "" : ",", gpus->devices[i].id);
        first = 0;
    }
    pthread_mutex_unlock(&gpus->lock);
    return rc;
}

/* Free what instance_id holds. The caller holds gpus->lock. */
static size_t agent_gpus_release_locked(agent_gpus_t *gpus, const char *instance_id)
{
    size_t released = 0;

    for (size_t i = 0; i < gpus->count; i++) {
        if (strcmp(gpus->holders[i], instance_id) == 0) {
            gpus->holders[i][0] = '\0';
            released++;
        }
    }
    return released;
}

size_t agent_gpus_release(agent_gpus_t *gpus, const char *instance_id)
{
    size_t released;

    if (gpus == NULL)
        return 0;
    pthread_mutex_lock(&gpus->lock);
    released = agent_gpus_release_locked(gpus, instance_id);
    pthread_mutex_unlock(&gpus->lock);
    return released;
}

static size_t agent_gpus_free_count(const agent_gpus_t *gpus)
{
    size_t free_count = 0;

    for (size_t i = 0; i < gpus->count; i++)
        free_count += gpus->holders[i][0] == '\0';
    return free_count;
}

/* The first GPU of picked (or of all when picked is NULL) that another
 * instance holds, or -1. */
static ssize_t agent_gpus_first_busy(const agent_gpus_t *gpus, const int *picked)
{
    for (size_t i = 0; i < gpus->count; i++) {
        if ((picked == NULL || picked[i]) && gpus->holders[i][0] != '\0')
            return (ssize_t)i;
    }
    return -1;
}

/* Mark in picked the GPUs that request names. Returns 0, or -1 with reason
 * set. The caller holds gpus->lock. */
static int agent_gpus_pick(agent_gpus_t *gpus, const config_gpus_t *request,
                           const char *agent_name, int *picked, char *reason, size_t reason_size)
{
    size_t have = gpus->count;
    buf_t known = BUF_INIT;
    ssize_t busy;

    switch (request->kind) {
    case CONFIG_GPUS_NONE:
        return 0;
    case CONFIG_GPUS_ALL:
        if (have == 0) {
            snprintf(reason, reason_size, "asks for all GPUs; agent %s has none. Set \"gpus\" "
                     "to 0, or launch on a queue that an agent with GPUs serves", agent_name);
            return -1;
        }
        if ((busy = agent_gpus_first_busy(gpus, NULL)) >= 0) {
            snprintf(reason, reason_size, "asks for all GPUs of agent %s, but GPU %s is in use "
                     "by instance %s", agent_name, gpus->devices[busy].id, gpus->holders[busy]);
            return -1;
        }
        for (size_t i = 0; i < have; i++)
            picked[i] = 1;
        return 0;
    case CONFIG_GPUS_COUNT:
        if (request->count > have) {
            snprintf(reason, reason_size, "asks for %zu GPU%s; agent %s has %zu. Lower "
                     "\"gpus\", or launch on a queue that a larger agent serves",
                     request->count, request->count == 1 ? "" : "s", agent_name, have);
            return -1;
        }
        if (agent_gpus_free_count(gpus) < request->count) {
            snprintf(reason, reason_size, "asks for %zu GPU%s; agent %s has only %zu of %zu free",
                     request->count, request->count == 1 ? "" : "s", agent_name,
                     agent_gpus_free_count(gpus), have);
            return -1;
        }
        for (size_t i = 0, taken = 0; i < have && taken < request->count; i++) {
            if (gpus->holders[i][0] == '\0') {
                picked[i] = 1;
                taken++;
            }
        }
        return 0;
    case CONFIG_GPUS_IDS:
        break;
    }

    for (size_t i = 0; i < request->count; i++) {
        ssize_t at = agent_gpus_match(gpus->devices, have, request->ids[i]);
        if (at < 0) {
            for (size_t j = 0; j < have; j++)
                buf_printf(&known, "%s%s", j > 0 ? ", " : "", gpus->devices[j].id);
            snprintf(reason, reason_size, "asks for GPU %s; agent %s has %s%s", request->ids[i],
                     agent_name, have > 0 ? "GPUs " : "no GPUs",
                     known.data != NULL ? known.data : "");
            buf_free(&known);
            return -1;
        }
        picked[at] = 1;
    }
    if ((busy = agent_gpus_first_busy(gpus, picked)) >= 0) {
        snprintf(reason, reason_size, "asks for GPU %s of agent %s, which instance %s holds",
                 gpus->devices[busy].id, agent_name, gpus->holders[busy]);
        return -1;
    }
    return 0;
}

/* Hold the picked GPUs for instance_id and list their ids. The caller
 * holds gpus->lock. Returns NULL when memory runs out, holding nothing. */
static char **agent_gpus_take(agent_gpus_t *gpus, const int *picked, const char *instance_id)
{
    size_t count = 0, used = 0;

    for (size_t i = 0; i < gpus->count; i++)
        count += picked[i] != 0;
    char **ids = calloc(count + 1, sizeof(*ids));
    if (ids == NULL)
        return NULL;
    for (size_t i = 0; i < gpus->count; i++) {
        if (!picked[i])
            continue;
        if ((ids[used++] = strdup(gpus->devices[i].id)) == NULL) {
            agent_gpus_ids_free(ids);
            return NULL;
        }
    }
    for (size_t i = 0; i < gpus->count; i++) {
        if (picked[i])
            snprintf(gpus->holders[i], sizeof(gpus->holders[i]), "%s", instance_id);
    }
    return ids;
}

int agent_gpus_allocate(agent_gpus_t *gpus, const char *instance_id, const char *agent_name,
                        const json_t *request_value, char ***ids, char *reason,
                        size_t reason_size)
{
    config_gpus_t request;
    char err[256];
    int rc = -1;

    *ids = NULL;
    if (config_gpus_parse(request_value, &request, err, sizeof(err)) != 0) {
        snprintf(reason, reason_size, "invalid configuration: %s", err);
        return -1;
    }
    agent_gpus_t empty = {.count = 0};
    agent_gpus_t *from = gpus != NULL ? gpus : &empty;
    int *picked = calloc(from->count + 1, sizeof(*picked));
    if (picked == NULL) {
        config_gpus_free(&request);
        snprintf(reason, reason_size, "the agent ran out of memory allocating GPUs");
        return -1;
    }

    if (gpus != NULL)
        pthread_mutex_lock(&gpus->lock);
    if (gpus != NULL)
        agent_gpus_release_locked(gpus, instance_id);
    if (agent_gpus_pick(from, &request, agent_name, picked, reason, reason_size) == 0) {
        *ids = agent_gpus_take(from, picked, instance_id);
        rc = *ids != NULL ? 0 : -1;
        if (rc != 0)
            snprintf(reason, reason_size, "the agent ran out of memory allocating GPUs");
    }
    if (gpus != NULL)
        pthread_mutex_unlock(&gpus->lock);

    free(picked);
    config_gpus_free(&request);
    return rc;
}

/* Copy text into out. Returns 0 when it fits. */
static int agent_gpus_copy(const char *text, char *out, size_t size)
{
    int len = snprintf(out, size, "%s", text);

    return len >= 0 && (size_t)len < size ? 0 : -1;
}

int agent_gpus_device_name(const agent_gpus_t *gpus, const char *id, char *out, size_t size)
{
    /* The devices never change after creation, so no lock is needed. */
    for (size_t i = 0; gpus != NULL && i < gpus->count; i++) {
        const agent_gpu_t *gpu = &gpus->devices[i];
        if (strcmp(gpu->id, id) == 0)
            return agent_gpus_copy(gpu->uuid[0] != '\0' ? gpu->uuid : gpu->id, out, size);
    }
    agent_gpus_copy(id, out, size);
    return -1;
}

int agent_gpus_id_of_device(const agent_gpus_t *gpus, const char *name, char *out, size_t size)
{
    for (size_t i = 0; gpus != NULL && i < gpus->count; i++) {
        const agent_gpu_t *gpu = &gpus->devices[i];
        if ((gpu->uuid[0] != '\0' && strcmp(gpu->uuid, name) == 0) || strcmp(gpu->id, name) == 0)
            return agent_gpus_copy(gpu->id, out, size);
    }
    agent_gpus_copy(name, out, size);
    return -1;
}

json_t *agent_gpus_ids_json(char *const *ids)
{
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && ids != NULL && ids[i] != NULL; i++) {
        if (json_array_append_new(list, json_string(ids[i])) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

void agent_gpus_ids_free(char **ids)
{
    for (size_t i = 0; ids != NULL && ids[i] != NULL; i++)
        free(ids[i]);
    free(ids);
}

/* Log the inventory once at start. */
static void agent_gpus_log(const agent_gpus_t *gpus, const char *source)
{
    buf_t text = BUF_INIT;

    for (size_t i = 0; i < gpus->count; i++) {
        const agent_gpu_t *gpu = &gpus->devices[i];
        buf_printf(&text, "%s%s", i > 0 ? "; " : "", gpu->id);
        if (gpu->name[0] != '\0' || gpu->uuid[0] != '\0')
            buf_printf(&text, " (%s%s%s)", gpu->name, gpu->name[0] && gpu->uuid[0] ? ", " : "",
                       gpu->uuid);
    }
    if (gpus->count > 0)
        log_info("agent", "%zu GPU%s from %s: %s", gpus->count, gpus->count == 1 ? "" : "s",
                 source, text.data != NULL ? text.data : "");
    else
        log_info("agent", "no GPUs: instances that ask for GPUs fail on this agent");
    buf_free(&text);
}

/* True when this process runs in a Docker or Podman container. */
static int agent_gpus_in_container(void)
{
    return access("/.dockerenv", F_OK) == 0 || access("/run/.containerenv", F_OK) == 0;
}

agent_gpus_t *agent_gpus_open(const char *option, char *err, size_t err_size)
{
    agent_gpu_t *detected = NULL, *selected = NULL;
    size_t detected_count = 0, selected_count = 0;
    char why[256] = "";
    int nvml = agent_gpus_detect_nvml(&detected, &detected_count, why, sizeof(why)) == 0;

    if (!nvml)
        log_info("agent", "GPU inventory: NVML is not available (%s)%s", why,
                 option != NULL ? "; using the ids given by --gpus"
                                : "; pass --gpus LIST to name the GPUs of this machine");

    agent_gpus_source_t src = {
        .detected = detected,
        .detected_count = detected_count,
        .nvml_available = nvml,
        .option = option,
        .nvidia_visible = getenv("NVIDIA_VISIBLE_DEVICES"),
        .cuda_visible = getenv("CUDA_VISIBLE_DEVICES"),
        .in_container = agent_gpus_in_container(),
    };
    int rc = agent_gpus_select(&src, &selected, &selected_count, err, err_size);
    free(detected);
    if (rc != 0)
        return NULL;

    agent_gpus_t *gpus = agent_gpus_new(selected, selected_count);
    free(selected);
    if (gpus == NULL) {
        snprintf(err, err_size, "out of memory building the GPU inventory");
        return NULL;
    }
    agent_gpus_log(gpus, nvml ? "NVML" : "--gpus");
    return gpus;
}
