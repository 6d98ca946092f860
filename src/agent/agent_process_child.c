/* The child side of the process runtime: what runs between fork and exec. */
#include "agent/agent_process_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/service.h"

extern char **environ;

static void agent_child_mark_cloexec(const agent_child_plan_t *plan)
{
#ifdef SYS_close_range
    /* CLOSE_RANGE_CLOEXEC (Linux 5.11) keeps the exec error pipe usable
     * until exec, which closes everything above stderr. */
    if (syscall(SYS_close_range, 3u, ~0u, 4u) == 0)
        return;
#endif
    for (int fd = 3; fd < plan->max_fd; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Report errno of the failed step to the parent and exit. */
__attribute__((noreturn))
static void agent_child_fail(const agent_child_plan_t *plan, int in_chdir)
{
    agent_child_failure_t failure = {in_chdir, errno};
    ssize_t ignored = write(plan->exec_error_fd, &failure, sizeof(failure));

    (void)ignored;
    _exit(127);
}

void agent_child_exec(const agent_child_plan_t *plan)
{
    int null_fd;

    setpgid(0, 0);

    /* The kernel sends this when the thread that forked ends, so the
     * instance thread outlives its process. A parent that died before the
     * call would never send it: check. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != plan->parent)
        _exit(127);

    /* The agent's own directory may hold its data and admin token. */
    if (plan->workdir != NULL && chdir(plan->workdir) != 0)
        agent_child_fail(plan, 1);

    null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0)
        dup2(null_fd, STDIN_FILENO);
    dup2(plan->out_fd, STDOUT_FILENO);
    dup2(plan->err_fd, STDERR_FILENO);
    agent_child_mark_cloexec(plan);
    service_unblock_signals();

    /* execvp searches the PATH of environ, so the instance's own PATH wins. */
    environ = plan->envp;
    execvp(plan->argv[0], plan->argv);
    agent_child_fail(plan, 0);
}
