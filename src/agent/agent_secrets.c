/* The secrets of one lease: the mask set for its console lines, and the
 * variables whose values are too short for the mask to hide. */
#include "agent/agent_secrets.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int agent_secrets_collect(const json_t *lease, const char *extra, mask_set_t **mask,
                          const char ***values)
{
    json_t *secrets = json_object_get(lease, "secrets");
    mask_set_t *set = mask_set_new();
    const char **list = calloc(json_array_size(secrets) + 2, sizeof(*list));
    size_t count = 0;

    if (set == NULL || list == NULL)
        goto fail;
    for (size_t i = 0; i < json_array_size(secrets); i++) {
        const char *value = json_string_value(json_array_get(secrets, i));
        if (value == NULL || value[0] == '\0')
            continue;
        if (mask_set_add(set, value) != 0)
            goto fail;
        list[count++] = value;
    }
    if (extra != NULL && extra[0] != '\0') {
        if (mask_set_add(set, extra) != 0)
            goto fail;
        list[count++] = extra;
    }

    *mask = set;
    *values = list;
    return 0;

fail:
    mask_set_free(set);
    free(list);
    return -1;
}

static int agent_secrets_listed(const json_t *secrets, const char *value)
{
    for (size_t i = 0; i < json_array_size(secrets); i++) {
        const char *secret = json_string_value(json_array_get(secrets, i));
        if (secret != NULL && strcmp(secret, value) == 0)
            return 1;
    }
    return 0;
}

size_t agent_secrets_unmaskable(const json_t *lease, buf_t *names)
{
    json_t *secrets = json_object_get(lease, "secrets");
    const char *name;
    json_t *value;
    size_t count = 0;

    json_object_foreach(json_object_get(lease, "env"), name, value) {
        const char *text = json_string_value(value);
        if (text == NULL || text[0] == '\0' || strlen(text) >= MASK_MIN_LEN)
            continue;
        if (!config_is_secret_name(name) && !agent_secrets_listed(secrets, text))
            continue;
        buf_printf(names, "%s%s", count > 0 ? ", " : "", name);
        count++;
    }
    return count;
}
