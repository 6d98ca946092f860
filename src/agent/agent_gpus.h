/* The agent's GPU inventory and its allocation to instances. The inventory
 * comes from NVML or from the --gpus option, narrowed by the agent's
 * NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES. Each GPU is held by at
 * most one instance at a time. */
#ifndef NIMDECK_AGENT_AGENT_GPUS_H
#define NIMDECK_AGENT_AGENT_GPUS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config_gpus.h"
#include "util/buf.h"

#define AGENT_GPU_TEXT_MAX 96

/* One GPU of the inventory. */
typedef struct {
    char id[CONFIG_GPU_ID_MAX + 1]; /* the device id instances get: the NVML index ("0"), or the
                                       --gpus entry where NVML is absent */
    char uuid[AGENT_GPU_TEXT_MAX];  /* "GPU-..." or "" when unknown */
    char name[AGENT_GPU_TEXT_MAX];  /* model name, or "" when unknown */
    double mem_total_bytes;         /* NAN when unknown */
    int nvml_index;                 /* -1 when the GPU does not come from NVML */
} agent_gpu_t;

/* ---- Visible-device lists (NVIDIA_VISIBLE_DEVICES, CUDA_VISIBLE_DEVICES,
 * --gpus) ---- */

typedef enum {
    AGENT_VISIBLE_UNSET, /* the variable is not set: no restriction */
    AGENT_VISIBLE_ALL,   /* "all" */
    AGENT_VISIBLE_NONE,  /* "none", "void" or empty */
    AGENT_VISIBLE_LIST,  /* comma-separated ids */
} agent_visible_kind_t;

typedef struct {
    agent_visible_kind_t kind;
    char **entries; /* LIST: the entries without surrounding spaces, NULL-terminated */
    size_t count;
} agent_visible_t;

/* Read a visible-devices value (NULL when unset). Empty entries ("0,,1")
 * are skipped, so a value of only commas and spaces means none. Returns 0,
 * or -1 when memory runs out. Release out with agent_visible_free. */
int agent_visible_parse(const char *value, agent_visible_t *out);
void agent_visible_free(agent_visible_t *visible);

/* The position in list of the GPU that entry names: its id, its decimal
 * NVML index, its full UUID, or a prefix of its UUID of at least 8
 * characters ("GPU-" plus 4) that matches no other GPU. Returns -1 when
 * none matches. */
ssize_t agent_gpus_match(const agent_gpu_t *list, size_t count, const char *entry);

/* What the inventory is selected from. */
typedef struct {
    const agent_gpu_t *detected; /* the GPUs NVML lists, in NVML order */
    size_t detected_count;
    int nvml_available;          /* NVML initialised (it may list 0 GPUs) */
    const char *option;          /* --gpus: "all", "none" or a list; NULL means "all" */
    const char *nvidia_visible;  /* the agent's NVIDIA_VISIBLE_DEVICES, NULL when unset */
    const char *cuda_visible;    /* the agent's CUDA_VISIBLE_DEVICES, NULL when unset */
    int in_container;            /* the agent itself runs in a container */
} agent_gpus_source_t;

/* Select the inventory from src, in NVML (or --gpus) order:
 * - with NVML, --gpus entries must name detected GPUs; without it, --gpus
 *   entries become the ids as given, and "all" is an error;
 * - NVIDIA_VISIBLE_DEVICES then CUDA_VISIBLE_DEVICES keep only the GPUs they
 *   name. Inside a container NVIDIA_VISIBLE_DEVICES is skipped, because the
 *   container runtime has applied it already and NVML numbers the visible
 *   GPUs from 0. An entry that names no GPU is logged and skipped.
 * Returns 0 with *out a new array (NULL when empty) of *count GPUs, or -1
 * with err naming the bad value and the fix. */
int agent_gpus_select(const agent_gpus_source_t *src, agent_gpu_t **out, size_t *count,
                      char *err, size_t err_size);

/* ---- The inventory and its allocation ---- */

typedef struct agent_gpus agent_gpus_t;

/* Build the inventory of this machine: detect GPUs through NVML, select with
 * the --gpus option (NULL for the default "all") and the environment, and
 * log the result once. Returns NULL with err naming the fault (a --gpus
 * value that names no GPU, out of memory). */
agent_gpus_t *agent_gpus_open(const char *option, char *err, size_t err_size);

/* An inventory of the given GPUs (copied), for tests and agent_gpus_open.
 * Returns NULL when memory runs out. */
agent_gpus_t *agent_gpus_new(const agent_gpu_t *devices, size_t count);
void agent_gpus_free(agent_gpus_t *gpus);

/* The number of GPUs, and a copy of GPU i. Thread-safe. */
size_t agent_gpus_count(const agent_gpus_t *gpus);
int agent_gpus_get(const agent_gpus_t *gpus, size_t i, agent_gpu_t *out);

/* The inventory as the registration sends it: [{"id", "uuid", "name",
 * "mem_total_bytes"}], unknown values null. Returns NULL when out of memory. */
json_t *agent_gpus_inventory_json(const agent_gpus_t *gpus);

/* Append the ids of the free GPUs to out, separated by commas. Returns 0, or
 * -1 when memory runs out. */
int agent_gpus_free_ids(agent_gpus_t *gpus, buf_t *out);

/* Give instance_id the GPUs that request_value (the configuration's "gpus")
 * requests: "all" every GPU, only when all are free; a count N the first N
 * free ones; an array exactly those ids, each of which must exist and be
 * free; 0 or null none. On success returns 0 with *ids a new NULL-terminated
 * list of device ids (empty for none) to free with agent_gpus_ids_free. On
 * failure returns -1 with reason stating why, naming agent_name, and holds
 * nothing. An instance id that already holds GPUs gets them back first. */
int agent_gpus_allocate(agent_gpus_t *gpus, const char *instance_id, const char *agent_name,
                        const json_t *request_value, char ***ids, char *reason,
                        size_t reason_size);

/* Free every GPU instance_id holds. Returns how many it held. */
size_t agent_gpus_release(agent_gpus_t *gpus, const char *instance_id);

/* Write the name a container's device request gets for the GPU with id
 * into out: its UUID when known, else the id. The NVIDIA container
 * runtime reads an index in the host's NVML order, which differs from
 * this agent's ids when the agent runs in a container given only some
 * GPUs, while a UUID names the same GPU everywhere. Returns 0, or -1 when
 * no GPU has that id, with the id itself in out. */
int agent_gpus_device_name(const agent_gpus_t *gpus, const char *id, char *out, size_t size);

/* Write the id of the GPU that name (a UUID or an id, as
 * agent_gpus_device_name wrote it) names into out. Returns 0, or -1 when no
 * GPU matches, with name itself in out. */
int agent_gpus_id_of_device(const agent_gpus_t *gpus, const char *name, char *out, size_t size);

/* Device ids as a JSON array of strings ([] for NULL). NULL when out of memory. */
json_t *agent_gpus_ids_json(char *const *ids);
void agent_gpus_ids_free(char **ids);

/* ---- NVML detection (agent_gpus_nvml.c) ---- */

/* List the GPUs NVML reports into a new array (NULL when none). Returns 0, or
 * -1 with why naming the cause when NVML cannot be used (no driver library,
 * initialisation failed). */
int agent_gpus_detect_nvml(agent_gpu_t **out, size_t *count, char *why, size_t why_size);

#endif
