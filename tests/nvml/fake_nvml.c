/* A stand-in for libnvidia-ml.so.1 with the NVML calls nimdeck makes, for
 * tests on machines without an NVIDIA GPU. The build puts it in
 * BUILD/fake-nvml/ and tests point LD_LIBRARY_PATH there, so the agent loads
 * it through its ordinary dlopen.
 *
 * Environment:
 *   NIMDECK_FAKE_NVML_GPUS   number of devices (default 2, at most 16)
 *   NIMDECK_FAKE_NVML_INIT   an NVML error code for nvmlInit_v2 to return
 *                            (e.g. 9, "Driver Not Loaded"); unset for success
 *   NIMDECK_FAKE_NVML_FAIL   comma-separated calls that fail with "Not
 *                            Supported": utilization, memory, temperature,
 *                            power, uuid, name
 *
 * Readings are deterministic: device i's utilization starts at 10 * i + 5
 * and grows by 10 (mod 100) on each call, memory used is (i + 1) GiB plus
 * 100 MiB per call (mod 10), temperature is 40 + i degrees, power 100 + i W. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct fake_device *nvmlDevice_t;
typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

#define FAKE_SUCCESS 0
#define FAKE_UNINITIALIZED 1
#define FAKE_INVALID_ARGUMENT 2
#define FAKE_NOT_SUPPORTED 3
#define FAKE_INSUFFICIENT_SIZE 7
#define FAKE_MAX_DEVICES 16
#define FAKE_GIB (1024ULL * 1024 * 1024)

struct fake_device {
    unsigned index;
    unsigned util_calls;
    unsigned memory_calls;
};

static struct fake_device fake_devices[FAKE_MAX_DEVICES];
static int fake_inits;

static unsigned fake_count(void)
{
    const char *text = getenv("NIMDECK_FAKE_NVML_GPUS");
    long count = text != NULL ? strtol(text, NULL, 10) : 2;

    if (count < 0)
        return 0;
    return count > FAKE_MAX_DEVICES ? FAKE_MAX_DEVICES : (unsigned)count;
}

/* 1 when call is listed in NIMDECK_FAKE_NVML_FAIL. */
static int fake_fails(const char *call)
{
    const char *list = getenv("NIMDECK_FAKE_NVML_FAIL");
    size_t len = strlen(call);

    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t item = strcspn(p, ",");
        if (item == len && strncmp(p, call, len) == 0)
            return 1;
        p += item;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int fake_valid(nvmlDevice_t device)
{
    return fake_inits > 0 && device != NULL && device >= fake_devices &&
           device < fake_devices + fake_count();
}

nvmlReturn_t nvmlInit_v2(void)
{
    const char *forced = getenv("NIMDECK_FAKE_NVML_INIT");

    if (forced != NULL && *forced != '\0')
        return (nvmlReturn_t)strtol(forced, NULL, 10);
    /* The first init starts the readings over, as a fresh process would. */
    for (unsigned i = 0; i < FAKE_MAX_DEVICES && fake_inits == 0; i++)
        fake_devices[i] = (struct fake_device){.index = i};
    fake_inits++;
    return FAKE_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
    if (fake_inits == 0)
        return FAKE_UNINITIALIZED;
    fake_inits--;
    return FAKE_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t rc)
{
    switch (rc) {
    case FAKE_SUCCESS:
        return "Success";
    case FAKE_UNINITIALIZED:
        return "Uninitialized";
    case FAKE_INVALID_ARGUMENT:
        return "Invalid Argument";
    case FAKE_NOT_SUPPORTED:
        return "Not Supported";
    case 9:
        return "Driver Not Loaded";
    default:
        return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    if (fake_inits == 0)
        return FAKE_UNINITIALIZED;
    *count = fake_count();
    return FAKE_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    if (fake_inits == 0)
        return FAKE_UNINITIALIZED;
    if (index >= fake_count())
        return FAKE_INVALID_ARGUMENT;
    *device = &fake_devices[index];
    return FAKE_SUCCESS;
}

static nvmlReturn_t fake_string(nvmlDevice_t device, const char *call, char *out,
                                unsigned int len, const char *text)
{
    if (!fake_valid(device))
        return FAKE_INVALID_ARGUMENT;
    if (fake_fails(call))
        return FAKE_NOT_SUPPORTED;
    if (strlen(text) + 1 > len)
        return FAKE_INSUFFICIENT_SIZE;
    memcpy(out, text, strlen(text) + 1);
    return FAKE_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int len)
{
    char text[64];

    snprintf(text, sizeof(text), "GPU-fa4e0000-0000-4000-8000-%012u",
             fake_valid(device) ? device->index : 0);
    return fake_string(device, "uuid", uuid, len, text);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int len)
{
    return fake_string(device, "name", name, len, "NVIDIA Fake GPU 80GB");
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor)
{
    if (!fake_valid(device))
        return FAKE_INVALID_ARGUMENT;
    *minor = device->index;
    return FAKE_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *util)
{
    if (!fake_valid(device))
        return FAKE_INVALID_ARGUMENT;
    if (fake_fails("utilization"))
        return FAKE_NOT_SUPPORTED;
    util->gpu = (10 * device->index + 5 + 10 * device->util_calls++) % 100;
    util->memory = util->gpu / 2;
    return FAKE_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    if (!fake_valid(device))
        return FAKE_INVALID_ARGUMENT;
    if (fake_fails("memory"))
        return FAKE_NOT_SUPPORTED;
    memory->total = 80 * FAKE_GIB;
    memory->used = (device->index + 1) * FAKE_GIB + (device->memory_calls++ % 10) * 100 * 1048576ULL;
    memory->free = memory->total - memory->used;
    return FAKE_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *temp)
{
    if (!fake_valid(device) || sensor != 0)
        return FAKE_INVALID_ARGUMENT;
    if (fake_fails("temperature"))
        return FAKE_NOT_SUPPORTED;
    *temp = 40 + device->index;
    return FAKE_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *milliwatts)
{
    if (!fake_valid(device))
        return FAKE_INVALID_ARGUMENT;
    if (fake_fails("power"))
        return FAKE_NOT_SUPPORTED;
    *milliwatts = 100000 + 1000 * device->index;
    return FAKE_SUCCESS;
}
