/* NVIDIA GPU readings through NVML, loaded at run time with dlopen so that
 * the agent runs (without GPU metrics) on machines that have no driver. */
#ifndef NIMDECK_AGENT_AGENT_NVML_H
#define NIMDECK_AGENT_AGENT_NVML_H

#include <stddef.h>

#define AGENT_NVML_UUID_MAX 96
#define AGENT_NVML_NAME_MAX 96

/* What does not change while the agent runs. */
typedef struct {
    char uuid[AGENT_NVML_UUID_MAX];  /* "GPU-..." ("" when NVML cannot tell) */
    char name[AGENT_NVML_NAME_MAX];  /* "NVIDIA H100 80GB HBM3" ("" when unknown) */
    int minor;                       /* /dev/nvidiaN number, or -1 when unknown */
    double mem_total_bytes;          /* NAN when unknown */
} agent_nvml_info_t;

/* One reading of a device. A value NVML could not give is NAN. */
typedef struct {
    double util_percent;     /* GPU busy time over NVML's last sample period, 0-100 */
    double mem_used_bytes;
    double mem_total_bytes;
    double temp_c;           /* GPU core temperature */
    double power_w;          /* board power draw */
} agent_nvml_sample_t;

/* Load libnvidia-ml.so.1 and initialise NVML. Returns the number of devices
 * NVML sees (0 or more), or -1 with why naming the cause (no library, a
 * missing function, nvmlInit failing). Calls nest: each successful open
 * needs one agent_nvml_close, and the library stays loaded until the last.
 * Thread-safe. */
int agent_nvml_open(char *why, size_t why_size);

/* Release one open. NVML is shut down when the last one is released. */
void agent_nvml_close(void);

/* The number of devices, or -1 while NVML is not open. */
int agent_nvml_count(void);

/* Device index (NVML's numbering, 0 .. count-1) facts. Returns 0, or -1
 * when NVML is not open or index is out of range. Fields NVML cannot read
 * are left empty, -1 or NAN. */
int agent_nvml_info(int index, agent_nvml_info_t *out);

/* Read device index now. Returns 0 (with NAN for each value whose call
 * failed), or -1 when NVML is not open or index is out of range. */
int agent_nvml_sample(int index, agent_nvml_sample_t *out);

/* The NVML index of the device named by id: a decimal index, a full UUID
 * ("GPU-...") or a unique UUID prefix, as NVIDIA_VISIBLE_DEVICES and
 * CUDA_VISIBLE_DEVICES accept them. Returns -1 when none matches. */
int agent_nvml_find(const char *id);

#endif
