/* The child side of the process runtime: what runs between fork and exec. */
#ifndef NIMDECK_AGENT_AGENT_PROCESS_CHILD_H
#define NIMDECK_AGENT_AGENT_PROCESS_CHILD_H

#include <sys/types.h>

/* Everything the child needs, prepared before fork because only
 * async-signal-safe calls may run between fork and exec. */
typedef struct {
    char **argv;
    char **envp;
    const char *workdir;
    int out_fd;
    int err_fd;
    int exec_error_fd;
    int max_fd;
    pid_t parent;
} agent_child_plan_t;

/* What a child writes to the exec error pipe when it cannot run the
 * command. */
typedef struct {
    int in_chdir;   /* 1: entering the working directory failed; 0: exec */
    int error;      /* errno */
} agent_child_failure_t;

/* In the forked child: join a new process group, arm the parent-death
 * signal, enter plan->workdir (when not NULL), connect stdin to /dev/null
 * and stdout and stderr to the pipes, and exec plan->argv with plan->envp.
 * Never returns: a failure is written to plan->exec_error_fd as an
 * agent_child_failure_t before the child exits with 127. Only
 * async-signal-safe calls run here. */
void agent_child_exec(const agent_child_plan_t *plan) __attribute__((noreturn));

#endif
