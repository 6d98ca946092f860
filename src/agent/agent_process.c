/* The process runtime: an instance is a child process in its own process
 * group and its own working directory, with its stdout and stderr read
 * through pipes.
 *
 * Each instance has one watcher thread that reads both pipes and notices the
 * exit through a pidfd (or, where the kernel has none, a 100 ms check). The
 * exit is seen with WNOWAIT first, so the process group can be killed while
 * the leader's PID is still reserved, and only then reaped: leftover children
 * never outlive the instance and a signal never reaches a reused PID. */
#include "agent/agent_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_process_child.h"
#include "agent/agent_procfs_group.h"
#include "agent/agent_spawn.h"
#include "agent/agent_workdir.h"
#include "util/clock.h"
#include "util/log.h"

extern char **environ;

struct agent_runtime_handle {
    char id[64];
    pid_t pid;
    int pidfd;          /* -1 where pidfd_open is unavailable */
    int out_fd;         /* -1 once at end of file */
    int err_fd;
    int wake_fd[2];     /* stop() writes here to make the watcher recompute its timeout */
    agent_runtime_events_t events;
    pthread_t watcher;
    agent_state_t *state;      /* borrowed; NULL when nothing is recorded */
    int recorded;              /* pid is listed in state */
    char workdir[PATH_MAX];    /* "" once removed */

    pthread_mutex_t lock;
    int exited;         /* the leader has exited: no more signals may be sent */
    int stop_sent;
    int64_t kill_at_ms; /* monotonic time of the forced kill; 0 while no stop is pending */
    int killed;
};

static void agent_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Read what is available on *fd and pass it on; close it at end of file. */
static void agent_process_read(agent_runtime_handle_t *h, int *fd, agent_stream_t stream)
{
    char chunk[16384];

    /* Bounded so that a chatty stream cannot starve the other one. */
    for (int round = 0; round < 8 && *fd >= 0; round++) {
        ssize_t n = read(*fd, chunk, sizeof(chunk));
        if (n > 0) {
            h->events.on_output(h->events.ctx, stream, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        agent_close_fd(fd);
    }
}

static int agent_process_poll_timeout(agent_runtime_handle_t *h)
{
    int timeout = h->pidfd >= 0 ? -1 : 100;

    pthread_mutex_lock(&h->lock);
    if (h->kill_at_ms != 0 && !h->killed) {
        int64_t left = h->kill_at_ms - clock_mono_ms();
        int until_kill = 0;

        if (left > 60000)
            until_kill = 60000;
        else if (left > 0)
            until_kill = (int)left;
        if (timeout < 0 || until_kill < timeout)
            timeout = until_kill;
    }
    pthread_mutex_unlock(&h->lock);
    return timeout;
}

static void agent_process_kill_if_due(agent_runtime_handle_t *h)
{
    pthread_mutex_lock(&h->lock);
    if (h->kill_at_ms != 0 && !h->killed && !h->exited && clock_mono_ms() >= h->kill_at_ms) {
        h->killed = 1;
        kill(-h->pid, SIGKILL);
        log_warn("agent", "instance %s: process %d still running after the grace period; sent SIGKILL",
                 h->id, (int)h->pid);
    }
    pthread_mutex_unlock(&h->lock);
}

/* Forget the process group and remove the working directory. Later calls
 * do nothing. */
static void agent_process_clean_up(agent_runtime_handle_t *h)
{
    if (h->recorded) {
        agent_state_remove(h->state, h->pid);
        h->recorded = 0;
    }
    if (h->workdir[0] != '\0') {
        if (agent_workdir_remove(h->workdir) != 0)
            log_warn("agent", "instance %s: cannot remove its working directory %s: %s", h->id,
                     h->workdir, strerror(errno));
        h->workdir[0] = '\0';
    }
}

/* End the instance once its leader has exited: kill what is left of the
 * group, reap, drain the pipes, remove the working directory and report.
 * Returns 0 when it has not exited. */
static int agent_process_finish_if_exited(agent_runtime_handle_t *h)
{
    siginfo_t info;
    agent_exit_t result = {0};
    int status = 0;

    memset(&info, 0, sizeof(info));
    if (waitid(P_PID, (id_t)h->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0)
        return 0;

    pthread_mutex_lock(&h->lock);
    h->exited = 1;
    pthread_mutex_unlock(&h->lock);

    kill(-h->pid, SIGKILL);
    while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
        ;

    /* Pipes may still hold the last lines; nothing else can write now
     * unless a child left the group, which the non-blocking read bounds. */
    for (int i = 0; i < 64 && (h->out_fd >= 0 || h->err_fd >= 0); i++) {
        agent_process_read(h, &h->out_fd, AGENT_STREAM_STDOUT);
        agent_process_read(h, &h->err_fd, AGENT_STREAM_STDERR);
        if (h->out_fd >= 0 || h->err_fd >= 0) {
            struct pollfd fds[2] = {{h->out_fd, POLLIN, 0}, {h->err_fd, POLLIN, 0}};
            if (poll(fds, 2, 0) <= 0)
                break;
        }
    }

    agent_process_clean_up(h);
    result.signaled = WIFSIGNALED(status);
    result.signal = result.signaled ? WTERMSIG(status) : 0;
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    result.exit_code = result.signaled ? 128 + result.signal : result.status;
    h->events.on_exit(h->events.ctx, &result);
    return 1;
}

static void *agent_process_watch(void *arg)
{
    agent_runtime_handle_t *h = arg;

    for (;;) {
        struct pollfd fds[4] = {
            {h->out_fd, POLLIN, 0},
            {h->err_fd, POLLIN, 0},
            {h->wake_fd[0], POLLIN, 0},
            {h->pidfd, POLLIN, 0},
        };
        char drain[64];

        if (poll(fds, 4, agent_process_poll_timeout(h)) < 0 && errno != EINTR) {
            log_error("agent", "instance %s: poll failed: %s", h->id, strerror(errno));
            sleep(1);
        }

        if (fds[0].revents != 0)
            agent_process_read(h, &h->out_fd, AGENT_STREAM_STDOUT);
        if (fds[1].revents != 0)
            agent_process_read(h, &h->err_fd, AGENT_STREAM_STDERR);
        if (fds[2].revents != 0) {
            while (read(h->wake_fd[0], drain, sizeof(drain)) > 0)
                ;
        }

        agent_process_kill_if_due(h);
        if (agent_process_finish_if_exited(h))
            break;
    }
    return NULL;
}

static void agent_process_free(agent_runtime_handle_t *h)
{
    agent_close_fd(&h->out_fd);
    agent_close_fd(&h->err_fd);
    agent_close_fd(&h->wake_fd[0]);
    agent_close_fd(&h->wake_fd[1]);
    agent_close_fd(&h->pidfd);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Wait for the exec of pid: returns 0 when it ran, or -1 with err naming the
 * cause after reaping the child. */
static int agent_process_await_exec(pid_t pid, int exec_error_fd, const agent_child_plan_t *plan,
                                    char *err, size_t err_size)
{
    agent_child_failure_t failure = {0, 0};
    const char *program = plan->argv[0];
    ssize_t n;

    while ((n = read(exec_error_fd, &failure, sizeof(failure))) < 0 && errno == EINTR)
        ;
    if (n == 0)
        return 0;

    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)sizeof(failure) && failure.in_chdir)
        snprintf(err, err_size, "cannot enter the working directory '%s': %s", plan->workdir,
                 strerror(failure.error));
    else if (n == (ssize_t)sizeof(failure))
        snprintf(err, err_size, "cannot run '%s': %s; check the command's first element", program,
                 strerror(failure.error));
    else
        snprintf(err, err_size, "cannot run '%s': the child failed before exec", program);
    return -1;
}

static agent_runtime_handle_t *agent_process_handle_new(const char *instance_id,
                                                        const agent_runtime_events_t *events)
{
    agent_runtime_handle_t *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    snprintf(h->id, sizeof(h->id), "%s", instance_id);
    h->pid = -1;
    h->pidfd = h->out_fd = h->err_fd = -1;
    h->events = *events;
    pthread_mutex_init(&h->lock, NULL);
    if (pipe2(h->wake_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        h->wake_fd[0] = h->wake_fd[1] = -1;
        agent_process_free(h);
        return NULL;
    }
    return h;
}

/* Fork and exec plan's command, filling h's pid and pipe ends. */
static int agent_process_spawn(agent_runtime_handle_t *h, agent_child_plan_t *plan, char *err,
                               size_t err_size)
{
    int out[2] = {-1, -1}, errp[2] = {-1, -1}, exec_error[2] = {-1, -1};
    int rc = -1;
    pid_t pid;

    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
        pipe2(exec_error, O_CLOEXEC) != 0) {
        snprintf(err, err_size, "cannot create pipes for the process: %s", strerror(errno));
        goto out;
    }
    plan->out_fd = out[1];
    plan->err_fd = errp[1];
    plan->exec_error_fd = exec_error[1];
    plan->parent = getpid();
    long max_fd = sysconf(_SC_OPEN_MAX);
    plan->max_fd = max_fd > 0 && max_fd < 1048576 ? (int)max_fd : 65536;

    pid = fork();
    if (pid < 0) {
        snprintf(err, err_size, "cannot fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        agent_child_exec(plan);

    /* Set the group here too: a stop may come before the child runs. The
     * group is recorded at once, because the parent-death signal will not
     * reach the children it starts. */
    setpgid(pid, pid);
    h->pid = pid;
    h->recorded = h->state != NULL && agent_state_add(h->state, pid, h->id, h->workdir) == 0;
    agent_close_fd(&out[1]);
    agent_close_fd(&errp[1]);
    agent_close_fd(&exec_error[1]);
    if (agent_process_await_exec(pid, exec_error[0], plan, err, err_size) != 0)
        goto out;

    h->out_fd = out[0];
    h->err_fd = errp[0];
    out[0] = errp[0] = -1;
    fcntl(h->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(h->err_fd, F_SETFL, O_NONBLOCK);
#ifdef SYS_pidfd_open
    h->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    rc = 0;

out:
    for (int i = 0; i < 2; i++) {
        agent_close_fd(&out[i]);
        agent_close_fd(&errp[i]);
        agent_close_fd(&exec_error[i]);
    }
    return rc;
}

static int agent_process_start(const agent_runtime_spec_t *spec,
                               const agent_runtime_events_t *events,
                               agent_runtime_handle_t **handle, int *port, char *err,
                               size_t err_size)
{
    agent_child_plan_t plan = {0};
    agent_runtime_handle_t *h = NULL;
    int rc = -1;
    int chosen_port = agent_spawn_port(spec->config, err, err_size);

    if (chosen_port < 0)
        return -1;
    plan.argv = agent_spawn_argv(json_object_get(spec->config, "command"), chosen_port,
                                 spec->self_exe, err, err_size);
    if (plan.argv == NULL)
        goto out;
    plan.envp = agent_spawn_env(environ, spec->env, chosen_port);
    h = agent_process_handle_new(spec->instance_id, events);
    if (plan.envp == NULL || h == NULL || agent_spawn_env_gpus(&plan.envp, spec->gpu_ids) != 0) {
        snprintf(err, err_size, "out of memory preparing the process");
        goto out;
    }
    h->state = spec->state;
    if (agent_workdir_create(spec->agent_name != NULL ? spec->agent_name : "agent",
                             spec->instance_id, h->workdir, sizeof(h->workdir), err, err_size) != 0)
        goto out;
    plan.workdir = h->workdir;

    if (agent_process_spawn(h, &plan, err, err_size) != 0)
        goto out;
    if (pthread_create(&h->watcher, NULL, agent_process_watch, h) != 0) {
        snprintf(err, err_size, "cannot start the process watcher thread");
        kill(-h->pid, SIGKILL);
        while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto out;
    }

    /* The command line may hold secrets: log only the program and the PID. */
    log_info("agent", "instance %s: started '%s' as process %d on port %d in %s",
             spec->instance_id, plan.argv[0], (int)h->pid, chosen_port, h->workdir);
    *handle = h;
    *port = chosen_port;
    h = NULL;
    rc = 0;

out:
    if (h != NULL) {
        agent_process_clean_up(h);
        agent_process_free(h);
    }
    agent_spawn_free(plan.argv);
    agent_spawn_free(plan.envp);
    return rc;
}

static void agent_process_stop(agent_runtime_handle_t *h, int grace_ms)
{
    char wake = 1;

    pthread_mutex_lock(&h->lock);
    if (!h->exited && !h->stop_sent) {
        h->stop_sent = 1;
        h->kill_at_ms = clock_mono_ms() + grace_ms;
        if (kill(-h->pid, SIGTERM) != 0)
            kill(h->pid, SIGTERM);
        log_info("agent", "instance %s: sent SIGTERM to process group %d; SIGKILL in %d ms",
                 h->id, (int)h->pid, grace_ms);
        ssize_t ignored = write(h->wake_fd[1], &wake, 1);
        (void)ignored;
    }
    pthread_mutex_unlock(&h->lock);
}

static void agent_process_release(agent_runtime_handle_t *h)
{
    if (h == NULL)
        return;
    pthread_join(h->watcher, NULL);
    agent_process_free(h);
}

/* The process group's use from procfs. There is no per-process network
 * counter, so network stays NAN. */
static int agent_process_sample(agent_runtime_handle_t *h, agent_usage_t *out)
{
    agent_group_usage_t usage;
    int exited;

    /* Once the leader is reaped its PID, and so the group id, may be
     * reused: read only while it is reserved, and drop a reading that
     * overlapped the reaping. */
    pthread_mutex_lock(&h->lock);
    exited = h->exited;
    pthread_mutex_unlock(&h->lock);
    if (exited || agent_procfs_read_group(h->pid, &usage) != 0)
        return -1;
    pthread_mutex_lock(&h->lock);
    exited = h->exited;
    pthread_mutex_unlock(&h->lock);
    if (exited)
        return -1;

    out->cpu_seconds = usage.cpu_seconds;
    out->mem_used_bytes = usage.rss_bytes;
    out->mem_limit_bytes = NAN;
    out->net_rx_bytes = out->net_tx_bytes = NAN;
    out->disk_read_bytes = usage.read_bytes;
    out->disk_write_bytes = usage.write_bytes;
    return 0;
}

const agent_runtime_t agent_runtime_process = {
    .name = "process",
    .starting_reason = "starting process",
    .start = agent_process_start,
    .stop = agent_process_stop,
    .release = agent_process_release,
    .sample = agent_process_sample,
};
