/* Selecting the agent's GPU inventory: visible-device lists, matching ids
 * and UUIDs, and the --gpus option. */
#include "agent/agent_gpus.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* A UUID prefix shorter than this ("GPU-" plus 4 hex digits) is too likely
 * to be a typo that happens to match. */
#define AGENT_GPU_UUID_PREFIX_MIN 8

void agent_visible_free(agent_visible_t *visible)
{
    for (size_t i = 0; i < visible->count; i++)
        free(visible->entries[i]);
    free(visible->entries);
    memset(visible, 0, sizeof(*visible));
}

/* Append the entry text[0..len) without its surrounding spaces, if any is left. */
static int agent_visible_add(agent_visible_t *out, const char *text, size_t len)
{
    while (len > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0)
        return 0;

    char **grown = realloc(out->entries, (out->count + 2) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    out->entries = grown;
    if ((out->entries[out->count] = strndup(text, len)) == NULL)
        return -1;
    out->entries[++out->count] = NULL;
    return 0;
}

int agent_visible_parse(const char *value, agent_visible_t *out)
{
    memset(out, 0, sizeof(*out));
    if (value == NULL) {
        out->kind = AGENT_VISIBLE_UNSET;
        return 0;
    }
    if (strcmp(value, "all") == 0) {
        out->kind = AGENT_VISIBLE_ALL;
        return 0;
    }
    /* "void" and "none" are the NVIDIA container runtime's words for no GPU. */
    if (strcmp(value, "none") == 0 || strcmp(value, "void") == 0) {
        out->kind = AGENT_VISIBLE_NONE;
        return 0;
    }

    const char *at = value;
    for (;;) {
        size_t len = strcspn(at, ",");
        if (agent_visible_add(out, at, len) != 0) {
            agent_visible_free(out);
            return -1;
        }
        if (at[len] == '\0')
            break;
        at += len + 1;
    }
    out->kind = out->count > 0 ? AGENT_VISIBLE_LIST : AGENT_VISIBLE_NONE;
    return 0;
}

ssize_t agent_gpus_match(const agent_gpu_t *list, size_t count, const char *entry)
{
    size_t len = strlen(entry);
    ssize_t prefix_match = -1;
    int prefix_matches = 0;

    for (size_t i = 0; i < count; i++) {
        char index[16];

        if (strcmp(list[i].id, entry) == 0)
            return (ssize_t)i;
        snprintf(index, sizeof(index), "%d", list[i].nvml_index);
        if (list[i].nvml_index >= 0 && strcmp(index, entry) == 0)
            return (ssize_t)i;
        if (list[i].uuid[0] != '\0' && strcmp(list[i].uuid, entry) == 0)
            return (ssize_t)i;
        if (list[i].uuid[0] != '\0' && len >= AGENT_GPU_UUID_PREFIX_MIN &&
            strncmp(list[i].uuid, entry, len) == 0) {
            prefix_match = (ssize_t)i;
            prefix_matches++;
        }
    }
    return prefix_matches == 1 ? prefix_match : -1;
}

/* Append "0 (GPU-...), 1 (GPU-...)" or "none" for error messages. */
static void agent_gpus_describe(const agent_gpu_t *list, size_t count, buf_t *out)
{
    if (count == 0)
        buf_append_str(out, "none");
    for (size_t i = 0; i < count; i++) {
        buf_printf(out, "%s%s", i > 0 ? ", " : "", list[i].id);
        if (list[i].uuid[0] != '\0')
            buf_printf(out, " (%s)", list[i].uuid);
    }
}

/* Append gpu to list unless an entry with its id is there already. */
static int agent_gpus_append(agent_gpu_t **list, size_t *count, const agent_gpu_t *gpu)
{
    for (size_t i = 0; i < *count; i++) {
        if (strcmp((*list)[i].id, gpu->id) == 0)
            return 0;
    }
    agent_gpu_t *grown = realloc(*list, (*count + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    *list = grown;
    (*list)[(*count)++] = *gpu;
    return 0;
}

/* The --gpus entries when NVML lists the GPUs: each must name one of them. */
static int agent_gpus_from_detected(const agent_gpus_source_t *src, const agent_visible_t *option,
                                    agent_gpu_t **list, size_t *count, char *err,
                                    size_t err_size)
{
    for (size_t i = 0; i < option->count; i++) {
        ssize_t at = agent_gpus_match(src->detected, src->detected_count, option->entries[i]);
        if (at >= 0) {
            if (agent_gpus_append(list, count, &src->detected[at]) != 0)
                goto oom;
            continue;
        }

        buf_t known = BUF_INIT;
        agent_gpus_describe(src->detected, src->detected_count, &known);
        snprintf(err, err_size,
                 "--gpus names GPU '%s', which NVML does not list; this machine has GPUs: %s. "
                 "Name GPUs by NVML index or UUID, or leave out --gpus to use them all",
                 option->entries[i], known.data != NULL ? known.data : "none");
        buf_free(&known);
        return -1;
    }
    return 0;

oom:
    snprintf(err, err_size, "out of memory reading --gpus");
    return -1;
}

/* The --gpus entries when NVML is absent: the admin's ids, taken as given. */
static int agent_gpus_from_option(const agent_visible_t *option, agent_gpu_t **list,
                                  size_t *count, char *err, size_t err_size)
{
    for (size_t i = 0; i < option->count; i++) {
        agent_gpu_t gpu = {.mem_total_bytes = NAN, .nvml_index = -1};

        if (!config_gpus_id_valid(option->entries[i])) {
            snprintf(err, err_size,
                     "invalid --gpus entry '%s': a device id is 1-%d characters of A-Z a-z 0-9 "
                     ". _ : / -, such as 0 or GPU-8f2c...",
                     option->entries[i], CONFIG_GPU_ID_MAX);
            return -1;
        }
        snprintf(gpu.id, sizeof(gpu.id), "%s", option->entries[i]);
        if (agent_gpus_append(list, count, &gpu) != 0) {
            snprintf(err, err_size, "out of memory reading --gpus");
            return -1;
        }
    }
    return 0;
}

/* The inventory before the environment narrows it. */
static int agent_gpus_base(const agent_gpus_source_t *src, agent_gpu_t **list, size_t *count,
                           char *err, size_t err_size)
{
    agent_visible_t option;
    int rc = 0;

    if (agent_visible_parse(src->option != NULL ? src->option : "all", &option) != 0) {
        snprintf(err, err_size, "out of memory reading --gpus");
        return -1;
    }
    /* NOTE: the inventory lists whole GPUs, as NVML numbers them; MIG
     * slices are neither listed nor handed to instances one by one. */
    if (option.kind == AGENT_VISIBLE_ALL && src->nvml_available) {
        for (size_t i = 0; i < src->detected_count && rc == 0; i++)
            rc = agent_gpus_append(list, count, &src->detected[i]);
        if (rc != 0)
            snprintf(err, err_size, "out of memory listing GPUs");
    } else if (option.kind == AGENT_VISIBLE_ALL && src->option != NULL) {
        snprintf(err, err_size,
                 "--gpus all needs NVML to list the GPUs, but NVML is not available on this "
                 "machine; name the device ids instead, such as --gpus 0,1");
        rc = -1;
    } else if (option.kind == AGENT_VISIBLE_LIST) {
        rc = src->nvml_available
                 ? agent_gpus_from_detected(src, &option, list, count, err, err_size)
                 : agent_gpus_from_option(&option, list, count, err, err_size);
    }
    agent_visible_free(&option);
    return rc;
}

/* Keep only the GPUs that the variable name (value) names. */
static int agent_gpus_narrow(agent_gpu_t *list, size_t *count, const char *name,
                             const char *value)
{
    agent_visible_t visible;
    size_t kept = 0;

    if (*count == 0)
        return 0;
    if (agent_visible_parse(value, &visible) != 0)
        return -1;
    if (visible.kind == AGENT_VISIBLE_NONE) {
        log_info("agent", "%s=%s hides every GPU from this agent", name, value);
        *count = 0;
    }
    if (visible.kind != AGENT_VISIBLE_LIST) {
        agent_visible_free(&visible);
        return 0;
    }

    int *keep = calloc(*count + 1, sizeof(*keep));
    if (keep == NULL) {
        agent_visible_free(&visible);
        return -1;
    }
    for (size_t i = 0; i < visible.count; i++) {
        ssize_t at = agent_gpus_match(list, *count, visible.entries[i]);
        if (at >= 0)
            keep[at] = 1;
        else
            log_warn("agent", "%s names GPU '%s', which is not among this agent's GPUs; "
                     "skipping it", name, visible.entries[i]);
    }
    for (size_t i = 0; i < *count; i++) {
        if (keep[i])
            list[kept++] = list[i];
    }
    *count = kept;
    free(keep);
    agent_visible_free(&visible);
    return 0;
}

int agent_gpus_select(const agent_gpus_source_t *src, agent_gpu_t **out, size_t *count,
                      char *err, size_t err_size)
{
    agent_gpu_t *list = NULL;
    size_t used = 0;

    *out = NULL;
    *count = 0;
    if (agent_gpus_base(src, &list, &used, err, err_size) != 0)
        goto fail;
    if (!src->in_container &&
        agent_gpus_narrow(list, &used, "NVIDIA_VISIBLE_DEVICES", src->nvidia_visible) != 0)
        goto oom;
    if (agent_gpus_narrow(list, &used, "CUDA_VISIBLE_DEVICES", src->cuda_visible) != 0)
        goto oom;

    if (used == 0) {
        free(list);
        list = NULL;
    }
    *out = list;
    *count = used;
    return 0;

oom:
    snprintf(err, err_size, "out of memory selecting GPUs");
fail:
    free(list);
    return -1;
}
