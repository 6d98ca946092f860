/* Unit tests for the agent's state file: an agent killed with SIGKILL
 * leaves its instances' background processes running, and the next agent
 * of that name kills them. Also: a reused PID, a lock held by a live agent,
 * and a file another user could have written are left alone. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/agent_procfs.h"
#include "agent/agent_runtime.h"
#include "agent/agent_state.h"
#include "agent/agent_workdir.h"
#include "util/clock.h"

static char base[] = "/tmp/nimdeck-test-state-XXXXXX";

static void pause_ms(int ms)
{
    struct timespec pause = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&pause, NULL);
}

/* Whether a process that is not a zombie is in group pgid. */
static int group_has_members(pid_t pgid)
{
    char pattern[] = "/proc/[0-9]*";
    glob_t found;
    int alive = 0;

    if (glob(pattern, GLOB_NOSORT, NULL, &found) != 0)
        return 0;
    for (size_t i = 0; i < found.gl_pathc && !alive; i++) {
        agent_pid_stat_t st;
        pid_t pid = (pid_t)strtol(found.gl_pathv[i] + strlen("/proc/"), NULL, 10);
        if (agent_procfs_read_pid_stat(pid, &st) == 0 && st.pgrp == pgid && st.state != 'Z')
            alive = 1;
    }
    globfree(&found);
    return alive;
}

/* Reap pid within ms; returns its wait status, or -1 when it did not end. */
static int reap_within(pid_t pid, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    int status;

    while (clock_mono_ms() < deadline) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return status;
        if (done < 0 && errno != EINTR)
            return -1;
        pause_ms(10);
    }
    return -1;
}

/* Read one line of at most size - 1 bytes from fd within ms. */
static int read_line_within(int fd, char *out, size_t size, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    size_t len = 0;

    while (len + 1 < size && clock_mono_ms() < deadline) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, out + len, 1);
        if (n <= 0)
            break;
        if (out[len] == '\n') {
            out[len] = '\0';
            return 0;
        }
        len++;
    }
    out[len] = '\0';
    return -1;
}

static void forward_output(void *ctx, agent_stream_t stream, const char *data, size_t len)
{
    int fd = *(int *)ctx;

    if (stream == AGENT_STREAM_STDOUT) {
        ssize_t ignored = write(fd, data, len);
        (void)ignored;
    }
}

static void ignore_exit(void *ctx, const agent_exit_t *exit)
{
    (void)ctx;
    (void)exit;
}

/* The body of a forked agent: start an instance whose shell leaves a
 * background child, pass its output on to report_fd, and wait to be
 * killed. Never returns. */
static void crashing_agent(const char *name, int report_fd)
{
    agent_state_t *state = agent_state_open(name);
    json_t *config = json_pack("{s:[s, s, s], s:i}", "command", "/bin/sh", "-c",
                               "sleep 60 & echo \"$$ $!\"; wait", "port", 24996);
    agent_runtime_spec_t spec = {.instance_id = "inst-9", .config = config, .agent_name = name,
                                 .state = state};
    agent_runtime_events_t events = {.ctx = &report_fd, .on_output = forward_output, .on_exit = ignore_exit};
    agent_runtime_handle_t *handle = NULL;
    char err[256];
    int port;

    if (state == NULL || agent_state_count(state) != 0)
        _exit(2);
    if (agent_runtime_process.start(&spec, &events, &handle, &port, err, sizeof(err)) != 0)
        _exit(3);
    for (;;)
        pause();
}

static void state_kills_orphaned_group(void **state)
{
    const char *name = "crash-agent";
    int report[2];
    char line[64], pattern[600];
    pid_t pgid = 0, background = 0;
    glob_t left;

    (void)state;
    /* Orphans of the killed agent come to this process, which can then
     * reap them instead of init. */
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    assert_int_equal(pipe(report), 0);
    pid_t agent = fork();
    assert_true(agent >= 0);
    if (agent == 0) {
        close(report[0]);
        crashing_agent(name, report[1]);
    }
    close(report[1]);

    assert_int_equal(read_line_within(report[0], line, sizeof(line), 5000), 0);
    assert_int_equal(sscanf(line, "%d %d", &pgid, &background), 2);
    close(report[0]);

    /* The crash: the shell dies of its parent-death signal, its background
     * child does not. */
    assert_int_equal(kill(agent, SIGKILL), 0);
    assert_int_not_equal(reap_within(agent, 5000), -1);
    assert_int_not_equal(reap_within(pgid, 5000), -1);
    assert_int_equal(kill(background, 0), 0);
    assert_true(group_has_members(pgid));

    agent_state_t *restarted = agent_state_open(name);
    assert_non_null(restarted);
    int status = reap_within(background, 5000);
    assert_true(status != -1);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_false(group_has_members(pgid));
    assert_int_equal(agent_state_count(restarted), 0);

    /* The crashed instance's working directory went with it. */
    snprintf(pattern, sizeof(pattern), "%s/nimdeck-crash-agent-inst-9-*", base);
    assert_int_equal(glob(pattern, 0, NULL, &left), GLOB_NOMATCH);
    agent_state_close(restarted);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

/* Start `sleep 60` as the leader of its own process group. */
static pid_t start_group(void)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static void stop_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    assert_int_not_equal(reap_within(pid, 5000), -1);
}

/* Write the state file of name by hand, with mode. */
static void write_state(const char *name, const char *text, mode_t mode)
{
    char path[512];

    assert_int_equal(agent_state_path(name, path, sizeof(path)), 0);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void boot_id(char *out, size_t size)
{
    FILE *file = fopen("/proc/sys/kernel/random/boot_id", "r");

    assert_non_null(file);
    assert_non_null(fgets(out, (int)size, file));
    out[strcspn(out, "\n")] = '\0';
    fclose(file);
}

static void state_skips_reused_pid(void **state)
{
    char boot[64], text[512];
    agent_pid_stat_t st;
    pid_t pid = start_group();

    (void)state;
    pause_ms(50);
    assert_int_equal(agent_procfs_read_pid_stat(pid, &st), 0);
    boot_id(boot, sizeof(boot));
    /* The recorded leader started at another time: the PID now names
     * another process, which must live. */
    snprintf(text, sizeof(text), "{\"version\":1,\"boot_id\":\"%s\",\"groups\":[{\"pgid\":%d,"
             "\"start_time\":%llu,\"instance\":\"old\"}]}", boot, (int)pid,
             (unsigned long long)st.start_time + 1);
    write_state("reuse-agent", text, 0600);

    agent_state_t *opened = agent_state_open("reuse-agent");
    assert_non_null(opened);
    assert_int_equal(kill(pid, 0), 0);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    agent_state_close(opened);
    stop_group(pid);
}

static void state_skips_other_boot(void **state)
{
    char text[512];
    agent_pid_stat_t st;
    pid_t pid = start_group();

    (void)state;
    pause_ms(50);
    assert_int_equal(agent_procfs_read_pid_stat(pid, &st), 0);
    snprintf(text, sizeof(text), "{\"version\":1,\"boot_id\":\"another-boot\",\"groups\":[{\"pgid\":"
             "%d,\"start_time\":%llu,\"instance\":\"old\"}]}", (int)pid,
             (unsigned long long)st.start_time);
    write_state("boot-agent", text, 0600);

    agent_state_t *opened = agent_state_open("boot-agent");
    assert_non_null(opened);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    agent_state_close(opened);
    stop_group(pid);
}

static void state_ignores_writable_file(void **state)
{
    char boot[64], text[512];
    agent_pid_stat_t st;
    pid_t pid = start_group();

    (void)state;
    pause_ms(50);
    assert_int_equal(agent_procfs_read_pid_stat(pid, &st), 0);
    boot_id(boot, sizeof(boot));
    snprintf(text, sizeof(text), "{\"version\":1,\"boot_id\":\"%s\",\"groups\":[{\"pgid\":%d,"
             "\"start_time\":%llu,\"instance\":\"old\"}]}", boot, (int)pid,
             (unsigned long long)st.start_time);
    /* Others may write it, so what it lists is not to be trusted. */
    write_state("open-agent", text, 0622);

    agent_state_t *opened = agent_state_open("open-agent");
    assert_non_null(opened);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    agent_state_close(opened);
    stop_group(pid);
}

static void state_lock_held_by_live_agent(void **state)
{
    pid_t pid = start_group();

    (void)state;
    pause_ms(50);
    agent_state_t *first = agent_state_open("busy-agent");
    assert_non_null(first);
    assert_int_equal(agent_state_add(first, pid, "inst-1", NULL), 0);

    /* A second agent of the same name must not kill the first one's groups. */
    assert_null(agent_state_open("busy-agent"));
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);

    agent_state_remove(first, pid);
    assert_int_equal(agent_state_count(first), 0);
    agent_state_close(first);
    stop_group(pid);
}

static void state_file_lists_groups(void **state)
{
    char path[512], text[4096];
    struct stat st;
    pid_t pid = start_group();

    (void)state;
    pause_ms(50);
    agent_state_t *opened = agent_state_open("list-agent");
    assert_non_null(opened);
    assert_int_equal(agent_state_add(opened, pid, "inst-2", "/tmp/nimdeck-x"), 0);
    assert_int_equal(agent_state_count(opened), 1);

    assert_int_equal(agent_state_path("list-agent", path, sizeof(path)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    size_t n = fread(text, 1, sizeof(text) - 1, file);
    text[n] = '\0';
    fclose(file);
    json_t *doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    json_t *entry = json_array_get(json_object_get(doc, "groups"), 0);
    assert_int_equal(json_integer_value(json_object_get(entry, "pgid")), pid);
    assert_string_equal(json_string_value(json_object_get(entry, "instance")), "inst-2");
    assert_true(json_integer_value(json_object_get(entry, "start_time")) > 0);
    json_decref(doc);

    agent_state_remove(opened, pid);
    assert_int_equal(agent_state_count(opened), 0);
    agent_state_close(opened);
    stop_group(pid);
}

static void state_path_under_runtime_dir(void **state)
{
    char path[512], expected[600];

    (void)state;
    assert_int_equal(agent_state_path("host a/b", path, sizeof(path)), 0);
    snprintf(expected, sizeof(expected), "%s/nimdeck-agent-host_a_b.state", base);
    assert_string_equal(path, expected);
    assert_int_equal(agent_state_path("x", path, 8), -1);
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(base) == NULL)
        return -1;
    setenv("XDG_RUNTIME_DIR", base, 1);
    setenv("TMPDIR", base, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("TMPDIR");
    return agent_workdir_remove(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_kills_orphaned_group),
        cmocka_unit_test(state_skips_reused_pid),
        cmocka_unit_test(state_skips_other_boot),
        cmocka_unit_test(state_ignores_writable_file),
        cmocka_unit_test(state_lock_held_by_live_agent),
        cmocka_unit_test(state_file_lists_groups),
        cmocka_unit_test(state_path_under_runtime_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
