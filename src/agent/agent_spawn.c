/* Building a process instance's argv and environment from its lease. */
#include "agent/agent_spawn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/buf.h"

void agent_spawn_free(char **list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; list[i] != NULL; i++)
        free(list[i]);
    free(list);
}

/* Copy text with every "{port}" replaced by port_text. */
static char *agent_spawn_substitute(const char *text, const char *port_text)
{
    static const char placeholder[] = "{port}";
    buf_t out = BUF_INIT;
    const char *at;

    if (buf_append(&out, "", 0) != 0)
        return NULL;
    while ((at = strstr(text, placeholder)) != NULL) {
        if (buf_append(&out, text, (size_t)(at - text)) != 0 ||
            buf_append_str(&out, port_text) != 0)
            goto fail;
        text = at + sizeof(placeholder) - 1;
    }
    if (buf_append_str(&out, text) != 0)
        goto fail;
    return buf_steal(&out);

fail:
    buf_free(&out);
    return NULL;
}

char **agent_spawn_argv(const json_t *command, int port, const char *self_exe, char *err,
                        size_t err_size)
{
    char port_text[16];
    char **argv;
    size_t count = json_array_size(command);

    if (!json_is_array(command) || count == 0) {
        snprintf(err, err_size, "invalid command: expected a non-empty array of strings");
        return NULL;
    }
    argv = calloc(count + 1, sizeof(*argv));
    if (argv == NULL) {
        snprintf(err, err_size, "out of memory building the command");
        return NULL;
    }

    snprintf(port_text, sizeof(port_text), "%d", port);
    for (size_t i = 0; i < count; i++) {
        const char *element = json_string_value(json_array_get(command, i));
        if (element == NULL) {
            snprintf(err, err_size, "invalid command[%zu]: expected a string", i);
            goto fail;
        }
        if (i == 0 && self_exe != NULL && strcmp(element, "nimdeck") == 0)
            argv[i] = strdup(self_exe);
        else
            argv[i] = agent_spawn_substitute(element, port_text);
        if (argv[i] == NULL) {
            snprintf(err, err_size, "out of memory building the command");
            goto fail;
        }
    }
    return argv;

fail:
    agent_spawn_free(argv);
    return NULL;
}

const char *agent_spawn_env_get(char *const *env, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
            return env[i] + len + 1;
    }
    return NULL;
}

typedef struct {
    char **items;
    size_t count;
    size_t cap;
} agent_env_list_t;

/* Set "NAME=VALUE" (taking entry), replacing an entry of the same name. */
static int agent_env_put(agent_env_list_t *list, char *entry)
{
    size_t name_len = strcspn(entry, "=");

    for (size_t i = 0; i < list->count; i++) {
        if (strncmp(list->items[i], entry, name_len + 1) == 0) {
            free(list->items[i]);
            list->items[i] = entry;
            return 0;
        }
    }
    if (list->count + 2 > list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        char **items = realloc(list->items, cap * sizeof(*items));
        if (items == NULL) {
            free(entry);
            return -1;
        }
        list->items = items;
        list->cap = cap;
    }
    list->items[list->count++] = entry;
    list->items[list->count] = NULL;
    return 0;
}

static int agent_env_put_pair(agent_env_list_t *list, const char *name, const char *value)
{
    buf_t entry = BUF_INIT;

    if (buf_printf(&entry, "%s=%s", name, value) != 0) {
        buf_free(&entry);
        return -1;
    }
    return agent_env_put(list, buf_steal(&entry));
}

/* The text of one override value, or NULL to skip it. The caller frees it. */
static char *agent_env_value_text(const json_t *value)
{
    if (json_is_string(value))
        return strdup(json_string_value(value));
    if (json_is_number(value) || json_is_boolean(value))
        return json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
    return NULL;
}

char **agent_spawn_env(char *const *base, const json_t *overrides, int port)
{
    agent_env_list_t list = {NULL, 0, 0};
    const char *name;
    json_t *value;
    char port_text[16];

    for (size_t i = 0; base != NULL && base[i] != NULL; i++) {
        char *copy;
        if (strchr(base[i], '=') == NULL)
            continue;
        /* The agent's own settings, its admin API token among them, are
         * not the instance's business. */
        if (strncmp(base[i], AGENT_SPAWN_PRIVATE_PREFIX, sizeof(AGENT_SPAWN_PRIVATE_PREFIX) - 1) == 0)
            continue;
        if ((copy = strdup(base[i])) == NULL || agent_env_put(&list, copy) != 0)
            goto fail;
    }

    json_object_foreach((json_t *)overrides, name, value) {
        /* A name with '=' or an empty one cannot be set in an environment. */
        if (name[0] == '\0' || strchr(name, '=') != NULL)
            continue;
        char *text = agent_env_value_text(value);
        if (text == NULL)
            continue;
        int rc = agent_env_put_pair(&list, name, text);
        free(text);
        if (rc != 0)
            goto fail;
    }

    snprintf(port_text, sizeof(port_text), "%d", port);
    if (agent_env_put_pair(&list, "PORT", port_text) != 0 ||
        agent_env_put_pair(&list, "NIM_SERVER_PORT", port_text) != 0)
        goto fail;
    return list.items;

fail:
    agent_spawn_free(list.items);
    return NULL;
}

int agent_spawn_env_gpus(char ***env, const char *const *gpu_ids)
{
    agent_env_list_t list = {*env, 0, 0};
    buf_t ids = BUF_INIT;
    int rc;

    while (list.items[list.count] != NULL)
        list.count++;
    list.cap = list.count + 1;

    if (buf_append_str(&ids, "") != 0)
        return -1;
    for (size_t i = 0; gpu_ids != NULL && gpu_ids[i] != NULL; i++) {
        if (buf_printf(&ids, "%s%s", i > 0 ? "," : "", gpu_ids[i]) != 0) {
            buf_free(&ids);
            return -1;
        }
    }
    rc = agent_env_put_pair(&list, "NVIDIA_VISIBLE_DEVICES", ids.len > 0 ? ids.data : "void");
    if (rc == 0)
        rc = agent_env_put_pair(&list, "CUDA_VISIBLE_DEVICES", ids.data);
    if (rc == 0 && ids.len > 0)
        rc = agent_env_put_pair(&list, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
    buf_free(&ids);
    /* A grown list has moved. */
    *env = list.items;
    return rc;
}

int agent_spawn_free_port(char *err, size_t err_size)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t addr_len = sizeof(addr);
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        snprintf(err, err_size, "cannot create a socket to find a free port: %s", strerror(errno));
        return -1;
    }
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0) {
        snprintf(err, err_size, "cannot find a free port on 127.0.0.1: %s", strerror(errno));
        goto out;
    }
    port = ntohs(addr.sin_port);

out:
    close(fd);
    return port;
}

int agent_spawn_port(const json_t *config, char *err, size_t err_size)
{
    json_t *port = json_object_get(config, "port");

    if (port == NULL || json_is_null(port))
        return agent_spawn_free_port(err, err_size);
    if (!json_is_integer(port) || json_integer_value(port) < 1 || json_integer_value(port) > 65535) {
        snprintf(err, err_size, "invalid port: expected an integer from 1 to 65535 or null");
        return -1;
    }
    return (int)json_integer_value(port);
}
