/* The agent's state file: the process groups of its running process
 * instances, so that an agent started after a crash (kill -9, power cut of
 * the agent alone) can kill what the crashed one left running. The
 * parent-death signal reaches only an instance's first process, while a
 * shell's background children would keep serving and holding ports and
 * GPUs. */
#ifndef NIMDECK_AGENT_AGENT_STATE_H
#define NIMDECK_AGENT_AGENT_STATE_H

#include <stddef.h>
#include <sys/types.h>

typedef struct agent_state agent_state_t;

/* Write the state file path of agent_name into out:
 * "$XDG_RUNTIME_DIR/nimdeck-agent-NAME.state" when XDG_RUNTIME_DIR is an
 * absolute path, else under /tmp, with characters of NAME outside
 * [A-Za-z0-9._-] as '_'. Returns 0, or -1 when out is too small. */
int agent_state_path(const char *agent_name, char *out, size_t size);

/* Open and lock the state file of agent_name, then clean up after an earlier
 * run. The lock is on "PATH.lock" beside the state file. This agent holds it
 * while it runs, and the kernel releases it when the process dies. Every
 * process group that an earlier run left in the file is killed with SIGKILL
 * and its working directory is removed, and then the file is cleared. Each
 * kill is logged with the instance id.
 * Returns NULL, after logging why, when the state cannot be kept: another
 * live agent of the same name on this machine holds the lock, or the file
 * is not this user's. The agent then runs without a state file. */
agent_state_t *agent_state_open(const char *agent_name);

/* Record the process group pgid (whose leader is the process pgid, still
 * running or not yet reaped) of instance_id and its working directory
 * (NULL for none). Thread-safe. Returns 0, or -1 after logging why. */
int agent_state_add(agent_state_t *state, pid_t pgid, const char *instance_id,
                    const char *workdir);

/* Forget the process group pgid once it has ended. Thread-safe. */
void agent_state_remove(agent_state_t *state, pid_t pgid);

/* The number of process groups recorded. */
size_t agent_state_count(agent_state_t *state);

/* Release the lock and free state. The file keeps what it lists, which is
 * nothing once every instance has ended. NULL is ignored. */
void agent_state_close(agent_state_t *state);

#endif
