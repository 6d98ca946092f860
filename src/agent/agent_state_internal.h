/* Parts of the agent's state file shared by its bookkeeping and its
 * clean-up after a crash. */
#ifndef NIMDECK_AGENT_AGENT_STATE_INTERNAL_H
#define NIMDECK_AGENT_AGENT_STATE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

/* This boot's id (/proc/sys/kernel/random/boot_id), or "" when unknown.
 * Start times count clock ticks from boot, so they compare only within one
 * boot. */
void agent_state_boot_id(char *out, size_t size);

/* The state file at path as JSON, or NULL when it is missing, not this
 * user's (logged) or not valid (logged). */
json_t *agent_state_load(const char *path);

/* Kill with SIGKILL every process group listed in doc, a state file written
 * during boot boot_id, that still has a process, logging each kill with its
 * instance id, and remove the listed working directories. */
void agent_state_recover(const char *agent_name, const json_t *doc, const char *boot_id);

#endif
