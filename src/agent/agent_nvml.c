/* NVML through dlopen: the agent declares the few NVML types and functions
 * it uses instead of needing NVIDIA's headers at build time, and runs
 * without GPU readings where the driver's library is missing. */
#include "agent/agent_nvml.h"

#include <ctype.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* NVML's ABI, as its public header declares it. Only the calls below are
 * resolved, and every one of them exists in drivers since R418 (2019). */
typedef int nvml_return_t;  /* nvmlReturn_t: 0 is NVML_SUCCESS */
typedef struct nvml_device *nvml_device_t;
typedef struct {
    unsigned int gpu;     /* percent of time a kernel ran */
    unsigned int memory;  /* percent of time memory was read or written */
} nvml_utilization_t;
typedef struct {
    unsigned long long total, free, used;  /* bytes */
} nvml_memory_t;

#define NVML_SUCCESS 0
#define NVML_TEMPERATURE_GPU 0
#define AGENT_NVML_MAX_DEVICES 64

typedef struct {
    nvml_return_t (*init)(void);
    nvml_return_t (*shutdown)(void);
    nvml_return_t (*count)(unsigned int *count);
    nvml_return_t (*handle)(unsigned int index, nvml_device_t *device);
    nvml_return_t (*uuid)(nvml_device_t device, char *out, unsigned int len);
    nvml_return_t (*name)(nvml_device_t device, char *out, unsigned int len);
    nvml_return_t (*utilization)(nvml_device_t device, nvml_utilization_t *out);
    nvml_return_t (*memory)(nvml_device_t device, nvml_memory_t *out);
    nvml_return_t (*temperature)(nvml_device_t device, int sensor, unsigned int *out);
    nvml_return_t (*power)(nvml_device_t device, unsigned int *milliwatts);
    nvml_return_t (*minor)(nvml_device_t device, unsigned int *out);  /* may be NULL */
    const char *(*error_string)(nvml_return_t rc);
} agent_nvml_fns_t;

/* The library is loaded once per agent_nvml_open nesting. users counts the
 * opens not yet closed. */
static pthread_mutex_t agent_nvml_lock = PTHREAD_MUTEX_INITIALIZER;
static int agent_nvml_users;
static void *agent_nvml_lib;
static agent_nvml_fns_t agent_nvml_fn;
static int agent_nvml_devices;
static nvml_device_t agent_nvml_handles[AGENT_NVML_MAX_DEVICES];  /* NULL where the lookup failed */

static const char *agent_nvml_error(nvml_return_t rc)
{
    const char *text = agent_nvml_fn.error_string != NULL ? agent_nvml_fn.error_string(rc) : NULL;
    return text != NULL ? text : "unknown NVML error";
}

/* Resolve every function. Returns NULL, or the missing name when one is absent. */
static const char *agent_nvml_resolve(void *lib, agent_nvml_fns_t *fn)
{
    static const struct {
        const char *symbol;
        size_t offset;
        int optional;
    } table[] = {
        {"nvmlInit_v2", offsetof(agent_nvml_fns_t, init), 0},
        {"nvmlShutdown", offsetof(agent_nvml_fns_t, shutdown), 0},
        {"nvmlDeviceGetCount_v2", offsetof(agent_nvml_fns_t, count), 0},
        {"nvmlDeviceGetHandleByIndex_v2", offsetof(agent_nvml_fns_t, handle), 0},
        {"nvmlDeviceGetUUID", offsetof(agent_nvml_fns_t, uuid), 0},
        {"nvmlDeviceGetName", offsetof(agent_nvml_fns_t, name), 0},
        {"nvmlDeviceGetUtilizationRates", offsetof(agent_nvml_fns_t, utilization), 0},
        {"nvmlDeviceGetMemoryInfo", offsetof(agent_nvml_fns_t, memory), 0},
        {"nvmlDeviceGetTemperature", offsetof(agent_nvml_fns_t, temperature), 0},
        {"nvmlDeviceGetPowerUsage", offsetof(agent_nvml_fns_t, power), 0},
        {"nvmlDeviceGetMinorNumber", offsetof(agent_nvml_fns_t, minor), 1},
        {"nvmlErrorString", offsetof(agent_nvml_fns_t, error_string), 0},
    };

    memset(fn, 0, sizeof(*fn));
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        void *symbol = dlsym(lib, table[i].symbol);
        if (symbol == NULL && !table[i].optional)
            return table[i].symbol;
        /* POSIX guarantees that a data pointer from dlsym converts to a
         * function pointer, and memcpy expresses it without a cast warning. */
        memcpy((char *)fn + table[i].offset, &symbol, sizeof(symbol));
    }
    return NULL;
}

/* Load and initialise NVML. Called with agent_nvml_lock held and no users. */
static int agent_nvml_load(char *why, size_t why_size)
{
    unsigned int count = 0;
    nvml_return_t rc;

    /* RTLD_LOCAL keeps NVML's symbols out of the global namespace. */
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *text = dlerror();
        snprintf(why, why_size, "cannot load libnvidia-ml.so.1 (the NVIDIA driver's NVML "
                 "library): %s", text != NULL ? text : "unknown error");
        return -1;
    }
    const char *missing = agent_nvml_resolve(lib, &agent_nvml_fn);
    if (missing != NULL) {
        snprintf(why, why_size, "libnvidia-ml.so.1 has no %s; the NVIDIA driver is older "
                 "than nimdeck supports (R418 or later)", missing);
        goto fail;
    }
    rc = agent_nvml_fn.init();
    if (rc != NVML_SUCCESS) {
        snprintf(why, why_size, "nvmlInit failed: %s", agent_nvml_error(rc));
        goto fail;
    }
    rc = agent_nvml_fn.count(&count);
    if (rc != NVML_SUCCESS) {
        snprintf(why, why_size, "nvmlDeviceGetCount failed: %s", agent_nvml_error(rc));
        agent_nvml_fn.shutdown();
        goto fail;
    }

    agent_nvml_lib = lib;
    agent_nvml_devices = count > AGENT_NVML_MAX_DEVICES ? AGENT_NVML_MAX_DEVICES : (int)count;
    for (int i = 0; i < agent_nvml_devices; i++) {
        if (agent_nvml_fn.handle((unsigned int)i, &agent_nvml_handles[i]) != NVML_SUCCESS)
            agent_nvml_handles[i] = NULL;
    }
    return agent_nvml_devices;

fail:
    memset(&agent_nvml_fn, 0, sizeof(agent_nvml_fn));
    dlclose(lib);
    return -1;
}

int agent_nvml_open(char *why, size_t why_size)
{
    int count;

    pthread_mutex_lock(&agent_nvml_lock);
    if (agent_nvml_users > 0)
        count = agent_nvml_devices;
    else
        count = agent_nvml_load(why, why_size);
    if (count >= 0)
        agent_nvml_users++;
    pthread_mutex_unlock(&agent_nvml_lock);
    return count;
}

void agent_nvml_close(void)
{
    pthread_mutex_lock(&agent_nvml_lock);
    if (agent_nvml_users > 0 && --agent_nvml_users == 0) {
        agent_nvml_fn.shutdown();
        dlclose(agent_nvml_lib);
        agent_nvml_lib = NULL;
        agent_nvml_devices = 0;
        memset(&agent_nvml_fn, 0, sizeof(agent_nvml_fn));
        memset(agent_nvml_handles, 0, sizeof(agent_nvml_handles));
    }
    pthread_mutex_unlock(&agent_nvml_lock);
}

int agent_nvml_count(void)
{
    pthread_mutex_lock(&agent_nvml_lock);
    int count = agent_nvml_users > 0 ? agent_nvml_devices : -1;
    pthread_mutex_unlock(&agent_nvml_lock);
    return count;
}

/* The handle of index, or NULL (with *valid 0 when NVML is not open or
 * index is out of range). Called with agent_nvml_lock held. */
static nvml_device_t agent_nvml_device(int index, int *valid)
{
    *valid = agent_nvml_users > 0 && index >= 0 && index < agent_nvml_devices;
    return *valid ? agent_nvml_handles[index] : NULL;
}

/* Copy an NVML string, ending it even when NVML filled the buffer. */
static void agent_nvml_text(nvml_return_t rc, char *buf, size_t size)
{
    buf[size - 1] = '\0';
    if (rc != NVML_SUCCESS)
        buf[0] = '\0';
}

int agent_nvml_info(int index, agent_nvml_info_t *out)
{
    nvml_memory_t memory;
    unsigned int minor;
    int valid;

    memset(out, 0, sizeof(*out));
    out->minor = -1;
    out->mem_total_bytes = NAN;

    /* The lock is held across the calls so that a close cannot unload the
     * library under them. NVML calls that read static facts are quick. */
    pthread_mutex_lock(&agent_nvml_lock);
    nvml_device_t device = agent_nvml_device(index, &valid);
    if (device != NULL) {
        agent_nvml_text(agent_nvml_fn.uuid(device, out->uuid, sizeof(out->uuid)), out->uuid,
                        sizeof(out->uuid));
        agent_nvml_text(agent_nvml_fn.name(device, out->name, sizeof(out->name)), out->name,
                        sizeof(out->name));
        if (agent_nvml_fn.minor != NULL && agent_nvml_fn.minor(device, &minor) == NVML_SUCCESS)
            out->minor = (int)minor;
        if (agent_nvml_fn.memory(device, &memory) == NVML_SUCCESS)
            out->mem_total_bytes = (double)memory.total;
    }
    pthread_mutex_unlock(&agent_nvml_lock);
    return valid ? 0 : -1;
}

int agent_nvml_sample(int index, agent_nvml_sample_t *out)
{
    nvml_utilization_t util;
    nvml_memory_t memory;
    unsigned int temp, milliwatts;
    int valid;

    out->util_percent = out->mem_used_bytes = out->mem_total_bytes = NAN;
    out->temp_c = out->power_w = NAN;

    pthread_mutex_lock(&agent_nvml_lock);
    nvml_device_t device = agent_nvml_device(index, &valid);
    if (device != NULL) {
        if (agent_nvml_fn.utilization(device, &util) == NVML_SUCCESS)
            out->util_percent = util.gpu;
        if (agent_nvml_fn.memory(device, &memory) == NVML_SUCCESS) {
            out->mem_used_bytes = (double)memory.used;
            out->mem_total_bytes = (double)memory.total;
        }
        if (agent_nvml_fn.temperature(device, NVML_TEMPERATURE_GPU, &temp) == NVML_SUCCESS)
            out->temp_c = temp;
        if (agent_nvml_fn.power(device, &milliwatts) == NVML_SUCCESS)
            out->power_w = milliwatts / 1000.0;
    }
    pthread_mutex_unlock(&agent_nvml_lock);
    return valid ? 0 : -1;
}

/* 1 when text is a non-empty run of decimal digits. */
static int agent_nvml_is_index(const char *text)
{
    if (*text == '\0')
        return 0;
    for (; *text != '\0'; text++) {
        if (!isdigit((unsigned char)*text))
            return 0;
    }
    return 1;
}

int agent_nvml_find(const char *id)
{
    int count = agent_nvml_count(), found = -1, matches = 0;
    size_t len = strlen(id);
    agent_nvml_info_t info;

    if (count <= 0 || len == 0)
        return -1;
    if (agent_nvml_is_index(id)) {
        long index = strtol(id, NULL, 10);
        return len < 4 && index < count ? (int)index : -1;
    }

    /* A UUID, whole or a prefix long enough to be distinguished, as CUDA
     * takes it. An exact match wins over prefixes. */
    for (int i = 0; i < count; i++) {
        if (agent_nvml_info(i, &info) != 0 || info.uuid[0] == '\0')
            continue;
        if (strcasecmp(info.uuid, id) == 0)
            return i;
        if (strncasecmp(info.uuid, id, len) == 0) {
            found = i;
            matches++;
        }
    }
    return matches == 1 ? found : -1;
}
