/* The GPU request of a configuration's "gpus" key. */
#include "config/config_gpus.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int config_gpus_id_valid(const char *id)
{
    size_t len = id != NULL ? strlen(id) : 0;

    return len > 0 && len <= CONFIG_GPU_ID_MAX && strspn(id, CONFIG_GPU_ID_CHARS) == len;
}

void config_gpus_free(config_gpus_t *request)
{
    for (size_t i = 0; request->ids != NULL && request->ids[i] != NULL; i++)
        free(request->ids[i]);
    free(request->ids);
    memset(request, 0, sizeof(*request));
}

/* An integral JSON number (3 or 3.0), as the configuration check accepts it. */
static int config_gpus_integral(const json_t *value, json_int_t *out)
{
    if (json_is_integer(value)) {
        *out = json_integer_value(value);
        return 1;
    }
    if (json_is_real(value) && json_real_value(value) == floor(json_real_value(value)) &&
        fabs(json_real_value(value)) < 9.0e15) {
        *out = (json_int_t)json_real_value(value);
        return 1;
    }
    return 0;
}

int config_gpus_id_text(const json_t *item, char *out, size_t size)
{
    json_int_t number;

    if (json_is_string(item) && config_gpus_id_valid(json_string_value(item))) {
        snprintf(out, size, "%s", json_string_value(item));
        return 0;
    }
    if (!json_is_string(item) && config_gpus_integral(item, &number) && number >= 0) {
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, number);
        return 0;
    }
    return -1;
}

/* The text of array element i as a device id, written into out. Returns 0,
 * or -1 with err naming the element. */
static int config_gpus_element(const json_t *item, size_t i, char *out, size_t size, char *err,
                               size_t err_size)
{
    if (config_gpus_id_text(item, out, size) == 0)
        return 0;
    snprintf(err, err_size,
             "\"gpus\" element %zu must be a device id: an integer >= 0, or 1-%d characters of "
             "A-Z a-z 0-9 . _ : / - (such as \"0\" or \"GPU-8f2c...\")",
             i, CONFIG_GPU_ID_MAX);
    return -1;
}

static int config_gpus_has(char *const *ids, size_t count, const char *id)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(ids[i], id) == 0)
            return 1;
    }
    return 0;
}

static int config_gpus_parse_ids(const json_t *value, config_gpus_t *out, char *err,
                                 size_t err_size)
{
    size_t size = json_array_size(value);
    char id[CONFIG_GPU_ID_MAX + 32];

    out->ids = calloc(size + 1, sizeof(*out->ids));
    if (out->ids == NULL) {
        snprintf(err, err_size, "out of memory reading \"gpus\"");
        return -1;
    }
    for (size_t i = 0; i < size; i++) {
        if (config_gpus_element(json_array_get(value, i), i, id, sizeof(id), err, err_size) != 0)
            return -1;
        if (config_gpus_has(out->ids, out->count, id))
            continue;
        if ((out->ids[out->count] = strdup(id)) == NULL) {
            snprintf(err, err_size, "out of memory reading \"gpus\"");
            return -1;
        }
        out->count++;
    }
    out->kind = out->count > 0 ? CONFIG_GPUS_IDS : CONFIG_GPUS_NONE;
    if (out->count == 0) {
        free(out->ids);
        out->ids = NULL;
    }
    return 0;
}

int config_gpus_parse(const json_t *value, config_gpus_t *out, char *err, size_t err_size)
{
    json_int_t count;

    memset(out, 0, sizeof(*out));
    if (value == NULL || json_is_null(value))
        return 0;
    if (json_is_string(value) && strcmp(json_string_value(value), "all") == 0) {
        out->kind = CONFIG_GPUS_ALL;
        return 0;
    }
    if (config_gpus_integral(value, &count) && count >= 0) {
        out->kind = count > 0 ? CONFIG_GPUS_COUNT : CONFIG_GPUS_NONE;
        out->count = (size_t)count;
        return 0;
    }
    if (json_is_array(value)) {
        if (config_gpus_parse_ids(value, out, err, err_size) == 0)
            return 0;
        config_gpus_free(out);
        return -1;
    }
    snprintf(err, err_size,
             "\"gpus\" must be \"all\", a count >= 0, an array of device ids, or null");
    return -1;
}

int config_gpus_describe(const config_gpus_t *request, buf_t *out)
{
    switch (request->kind) {
    case CONFIG_GPUS_NONE:
        return buf_append_str(out, "no GPU");
    case CONFIG_GPUS_ALL:
        return buf_append_str(out, "all GPUs");
    case CONFIG_GPUS_COUNT:
        return buf_printf(out, "%zu GPU%s", request->count, request->count == 1 ? "" : "s");
    case CONFIG_GPUS_IDS:
        break;
    }

    if (buf_append_str(out, request->count == 1 ? "GPU " : "GPUs ") != 0)
        return -1;
    for (size_t i = 0; i < request->count; i++) {
        if (buf_printf(out, "%s%s", i > 0 ? ", " : "", request->ids[i]) != 0)
            return -1;
    }
    return 0;
}
