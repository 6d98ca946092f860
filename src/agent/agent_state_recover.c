/* Clean-up after a crashed agent: kill the process groups its state file
 * lists and remove their working directories. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent_procfs.h"
#include "agent/agent_state_internal.h"
#include "agent/agent_workdir.h"
#include "util/clock.h"
#include "util/log.h"

/* How long to wait for killed processes to be gone before their working
 * directory is removed. */
#define AGENT_RECOVER_WAIT_MS 2000

/* Whether a process that is not a zombie is in group pgid. /proc is scanned
 * because the leader may have exited while other members still run. */
static int agent_recover_group_has_members(pid_t pgid)
{
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    int found = 0;

    if (proc == NULL)
        return 0;
    while (!found && (entry = readdir(proc)) != NULL) {
        agent_pid_stat_t st;
        char *end;

        if (!isdigit((unsigned char)entry->d_name[0]))
            continue;
        long pid = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        if (agent_procfs_read_pid_stat((pid_t)pid, &st) == 0 && st.pgrp == pgid && st.state != 'Z')
            found = 1;
    }
    closedir(proc);
    return found;
}

/* Whether group pgid, whose leader started at start_time, still has a
 * process. A PID is not reused while a process group of that id has
 * members, so a running leader with another start time means that the
 * group is gone and its number belongs to a new process. */
static int agent_recover_group_alive(pid_t pgid, uint64_t start_time)
{
    agent_pid_stat_t leader;

    if (agent_procfs_read_pid_stat(pgid, &leader) == 0 && leader.state != 'Z' &&
        leader.start_time != start_time)
        return 0;
    return agent_recover_group_has_members(pgid);
}

static void agent_recover_wait_gone(pid_t pgid, uint64_t start_time)
{
    int64_t deadline = clock_mono_ms() + AGENT_RECOVER_WAIT_MS;
    struct timespec pause = {0, 10 * 1000 * 1000};

    while (agent_recover_group_alive(pgid, start_time) && clock_mono_ms() < deadline)
        nanosleep(&pause, NULL);
}

/* Remove a working directory that an earlier run created. */
static void agent_recover_workdir(const char *instance, const char *workdir)
{
    const char *base = workdir != NULL ? strrchr(workdir, '/') : NULL;

    /* Only a directory this agent names, in case the file was edited. */
    if (base == NULL || strncmp(base + 1, AGENT_WORKDIR_PREFIX, strlen(AGENT_WORKDIR_PREFIX)) != 0)
        return;
    if (agent_workdir_remove(workdir) != 0)
        log_warn("agent", "instance %s: cannot remove its working directory %s: %s", instance,
                 workdir, strerror(errno));
}

static void agent_recover_entry(const char *agent_name, const json_t *entry, int same_boot)
{
    json_int_t pgid = json_integer_value(json_object_get(entry, "pgid"));
    json_int_t start_time = json_integer_value(json_object_get(entry, "start_time"));
    const char *instance = json_string_value(json_object_get(entry, "instance"));
    const char *workdir = json_string_value(json_object_get(entry, "workdir"));

    if (instance == NULL)
        instance = "(unknown)";
    /* Groups 0 and 1 would signal this process's own group or every process. */
    if (same_boot && pgid > 1 && start_time > 0 &&
        agent_recover_group_alive((pid_t)pgid, (uint64_t)start_time)) {
        if (kill(-(pid_t)pgid, SIGKILL) == 0) {
            log_warn("agent", "instance %s: killed process group %d, left running by an earlier "
                     "run of agent '%s' that ended without stopping it", instance, (int)pgid,
                     agent_name);
            agent_recover_wait_gone((pid_t)pgid, (uint64_t)start_time);
        } else {
            log_error("agent", "instance %s: cannot kill process group %d, left running by an "
                      "earlier run of agent '%s': %s", instance, (int)pgid, agent_name,
                      strerror(errno));
        }
    }
    agent_recover_workdir(instance, workdir);
}

void agent_state_recover(const char *agent_name, const json_t *doc, const char *boot_id)
{
    const char *written_boot = json_string_value(json_object_get(doc, "boot_id"));
    int same_boot = written_boot != NULL && boot_id[0] != '\0' && strcmp(written_boot, boot_id) == 0;
    const json_t *groups = json_object_get(doc, "groups");
    size_t i;
    json_t *entry;

    json_array_foreach(groups, i, entry)
        agent_recover_entry(agent_name, entry, same_boot);
}
