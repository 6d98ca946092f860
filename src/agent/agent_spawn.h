/* Building a process instance's argv and environment from its lease. */
#ifndef NIMDECK_AGENT_AGENT_SPAWN_H
#define NIMDECK_AGENT_AGENT_SPAWN_H

#include <jansson.h>
#include <stddef.h>

/* Build a NULL-terminated argv from the configuration's command (an array of
 * strings) with every "{port}" inside an element replaced by port. When the
 * first element is exactly "nimdeck" and self_exe is not NULL, self_exe
 * replaces it. Returns a list to free with agent_spawn_free, or NULL with err
 * naming the fault. */
char **agent_spawn_argv(const json_t *command, int port, const char *self_exe, char *err,
                        size_t err_size);

/* Prefix of the agent's own variables (NIMDECK_TOKEN, NIMDECK_SERVER,
 * NIMDECK_DATA, ...). An instance does not inherit them from the agent's
 * environment, but its configuration's env may still set such a name. */
#define AGENT_SPAWN_PRIVATE_PREFIX "NIMDECK_"

/* Build a NULL-terminated "NAME=VALUE" environment in this order: base
 * without its AGENT_SPAWN_PRIVATE_PREFIX variables, then every entry of
 * overrides, then PORT and NIM_SERVER_PORT. overrides is a JSON object of
 * strings, in which numbers and booleans are written as JSON text and null
 * values are skipped. A later name replaces an earlier one in place, and an
 * override may set a NIMDECK_ name itself. Returns a list to free with
 * agent_spawn_free, or NULL when memory runs out. */
char **agent_spawn_env(char *const *base, const json_t *overrides, int port);

/* Set the GPUs the instance may see in *env (from agent_spawn_env), over
 * any value its configuration gave: NVIDIA_VISIBLE_DEVICES and
 * CUDA_VISIBLE_DEVICES to gpu_ids joined by commas, with CUDA_DEVICE_ORDER
 * PCI_BUS_ID so that CUDA numbers GPUs as NVML and nvidia-smi do. With no
 * ids (NULL or empty), NVIDIA_VISIBLE_DEVICES is "void" and
 * CUDA_VISIBLE_DEVICES empty, which hide every GPU. Returns 0, or -1 when
 * memory runs out; *env is then still a whole list for agent_spawn_free. */
int agent_spawn_env_gpus(char ***env, const char *const *gpu_ids);

/* The value of name in a NULL-terminated environment, or NULL. */
const char *agent_spawn_env_get(char *const *env, const char *name);

void agent_spawn_free(char **list);

/* Find a free TCP port on 127.0.0.1 (bind port 0, read it, close). Returns
 * the port, or -1 with err naming the failure. Another process may take the
 * port before the instance binds it; the window is short. */
int agent_spawn_free_port(char *err, size_t err_size);

/* The port of an instance: the configuration's "port" (1 to 65535), or a
 * free one from agent_spawn_free_port when it is absent or null. Returns
 * the port, or -1 with err naming the fault. */
int agent_spawn_port(const json_t *config, char *err, size_t err_size);

#endif
