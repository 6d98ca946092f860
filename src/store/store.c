/* Backend-neutral helpers of the store interface. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

const char *store_error(const store_t *st)
{
    return st->error;
}

void store_close(store_t *st)
{
    if (st != NULL)
        st->ops->close(st);
}

void store_instance_clear(store_instance_t *inst)
{
    free(inst->status_reason);
    free(inst->stop_reason);
    json_decref(inst->config);
    json_decref(inst->gpus);
    memset(inst, 0, sizeof(*inst));
}

void store_instances_free(store_instance_t *list, size_t count)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        store_instance_clear(&list[i]);
    free(list);
}

const char *store_perm_name(store_perm_t perm)
{
    switch (perm) {
    case STORE_PERM_READ:
        return "read";
    case STORE_PERM_WRITE:
        return "write";
    case STORE_PERM_ADMIN:
        return "admin";
    default:
        return "none";
    }
}

store_perm_t store_perm_parse(const char *name)
{
    if (name == NULL)
        return STORE_PERM_NONE;
    if (strcmp(name, "read") == 0)
        return STORE_PERM_READ;
    if (strcmp(name, "write") == 0)
        return STORE_PERM_WRITE;
    if (strcmp(name, "admin") == 0)
        return STORE_PERM_ADMIN;
    return STORE_PERM_NONE;
}

int store_status_is_live(const char *status)
{
    static const char *const live[] = {"queued", "loading", "active", "idle", "stopping"};

    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (strcmp(status, live[i]) == 0)
            return 1;
    }
    return 0;
}
