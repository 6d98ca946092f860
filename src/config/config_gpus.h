/* The GPU request of a configuration's "gpus" key, read the same way by the
 * server (to lease an instance only to an agent with room for it) and by the
 * agent (to pick the device ids it gives the instance). */
#ifndef NIMDECK_CONFIG_CONFIG_GPUS_H
#define NIMDECK_CONFIG_CONFIG_GPUS_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"

typedef enum {
    CONFIG_GPUS_NONE,   /* absent, null, 0 or [] */
    CONFIG_GPUS_ALL,    /* "all": every GPU of the agent, all of them free */
    CONFIG_GPUS_COUNT,  /* N > 0: any N free GPUs */
    CONFIG_GPUS_IDS,    /* an array: exactly these device ids */
} config_gpus_kind_t;

typedef struct {
    config_gpus_kind_t kind;
    size_t count;  /* COUNT: N; IDS: the number of distinct ids; else 0 */
    char **ids;    /* IDS: the distinct ids as text, in request order, NULL-terminated; else NULL */
} config_gpus_t;

/* Characters a device id may contain: NVML indices ("0"), UUIDs
 * ("GPU-8f2c..."), MIG ids ("MIG-GPU-.../1/0") and admin-chosen names. A
 * comma separates ids in lists, so it never occurs in one. */
#define CONFIG_GPU_ID_CHARS                                                                       \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-"
#define CONFIG_GPU_ID_MAX 95

/* True when id is 1 to CONFIG_GPU_ID_MAX bytes of CONFIG_GPU_ID_CHARS. */
int config_gpus_id_valid(const char *id);

/* Write the device id that an element of a "gpus" array names into out: a
 * valid id string as it is, an integer >= 0 (3 or 3.0) as decimal text.
 * Returns 0, or -1 when item is not a valid device id. */
int config_gpus_id_text(const json_t *item, char *out, size_t size);

/* Read value (the "gpus" key of a configuration, NULL when absent) into out.
 * Integer ids become decimal text ("0"), and an id listed twice counts once.
 * Returns 0, or -1 with err naming the value when it is none of "all", a
 * count >= 0, an array of valid device ids (strings) or integers >= 0, or
 * null, or when memory runs out. Release out with config_gpus_free. */
int config_gpus_parse(const json_t *value, config_gpus_t *out, char *err, size_t err_size);

void config_gpus_free(config_gpus_t *request);

/* Append a description of the request to out: "1 GPU", "2 GPUs", "all GPUs",
 * "GPU 0", "GPUs 0, 3" or "no GPU". Returns 0, or -1 when memory runs out. */
int config_gpus_describe(const config_gpus_t *request, buf_t *out);

#endif
