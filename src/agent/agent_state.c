/* The agent's state file of running process groups: its lock, its atomic
 * rewrites and its entries. */
#include "agent/agent_state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_procfs.h"
#include "agent/agent_state_internal.h"
#include "util/log.h"

#define AGENT_STATE_MAX_BYTES (1024 * 1024)

struct agent_state {
    char path[PATH_MAX];
    char *agent_name;
    char boot_id[64];
    int lock_fd;

    pthread_mutex_t lock;  /* guards groups and the file */
    json_t *groups;        /* [{"pgid", "start_time", "instance", "workdir"}] */
};

int agent_state_path(const char *agent_name, char *out, size_t size)
{
    static const char allowed[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    const char *dir = getenv("XDG_RUNTIME_DIR");
    char name[128];
    size_t len = 0;

    for (const char *p = agent_name; *p != '\0' && len + 1 < sizeof(name); p++)
        name[len++] = strchr(allowed, *p) != NULL ? *p : '_';
    name[len] = '\0';

    if (dir == NULL || dir[0] != '/')
        dir = "/tmp";
    int n = snprintf(out, size, "%s/nimdeck-agent-%s.state", dir, name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

void agent_state_boot_id(char *out, size_t size)
{
    FILE *file = fopen("/proc/sys/kernel/random/boot_id", "re");

    out[0] = '\0';
    if (file == NULL)
        return;
    if (fgets(out, (int)size, file) == NULL)
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    fclose(file);
}

/* Whether fd is a regular file of this user that no one else may write,
 * so that what it lists was written by an agent of this user. */
static int agent_state_file_trusted(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
           (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

json_t *agent_state_load(const char *path)
{
    char *text;
    ssize_t n;
    json_t *doc = NULL;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        if (errno != ENOENT)
            log_warn("agent", "cannot read the state file %s: %s; processes left by an earlier "
                     "run are not cleaned up", path, strerror(errno));
        return NULL;
    }
    if (!agent_state_file_trusted(fd)) {
        log_warn("agent", "ignoring the state file %s: it is not a regular file that only this "
                 "user may write; remove it", path);
        close(fd);
        return NULL;
    }
    if ((text = malloc(AGENT_STATE_MAX_BYTES)) == NULL) {
        close(fd);
        return NULL;
    }
    n = read(fd, text, AGENT_STATE_MAX_BYTES);
    close(fd);
    if (n > 0)
        doc = json_loadb(text, (size_t)n, 0, NULL);
    free(text);
    if (n > 0 && !json_is_object(doc))
        log_warn("agent", "ignoring the state file %s: it is not the JSON this agent writes", path);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* Replace the file with the current groups: a temporary file in the same
 * directory renamed over it, so that a crash mid-write leaves the old list
 * or the new one, never half of one. There is no fsync, because the file
 * guards against a crash of the agent, not of the machine (after a reboot
 * none of the processes exist). Under state->lock. */
static int agent_state_write(agent_state_t *state)
{
    char tmp[PATH_MAX + 8];
    json_t *doc = json_pack("{s:i, s:s, s:s, s:O}", "version", 1, "agent", state->agent_name,
                            "boot_id", state->boot_id, "groups", state->groups);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    int rc = -1, fd = -1;

    json_decref(doc);
    if (text == NULL) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", state->path);
    /* mkostemp creates the file with mode 0600. */
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        goto out;

    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        done += (size_t)n;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, state->path) != 0)
        goto out;
    tmp[0] = '\0';
    rc = 0;

out:
    if (rc != 0) {
        int error = errno;
        if (fd >= 0)
            close(fd);
        if (tmp[0] != '\0')
            unlink(tmp);
        errno = error;
    }
    free(text);
    return rc;
}

/* Open and lock "PATH.lock". Returns the descriptor, or -1 after logging. */
static int agent_state_lock(const char *path, const char *agent_name)
{
    char lock_path[PATH_MAX + 8];
    int fd;

    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_warn("agent", "cannot open the lock file %s: %s; processes left by a crash of this "
                 "agent will not be cleaned up", lock_path, strerror(errno));
        return -1;
    }
    if (!agent_state_file_trusted(fd)) {
        log_warn("agent", "the lock file %s is not a regular file that only this user may write; "
                 "remove it, or processes left by a crash of this agent will not be cleaned up",
                 lock_path);
        close(fd);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        log_warn("agent", "another agent '%s' (name@server) is already running on this machine "
                 "and has the lock on %s. This agent keeps no state file, so processes left "
                 "by a crash of it will not be cleaned up. Give each agent its own --name", agent_name, lock_path);
        close(fd);
        return -1;
    }
    return fd;
}

static void agent_state_free(agent_state_t *state)
{
    if (state->lock_fd >= 0)
        close(state->lock_fd);
    json_decref(state->groups);
    free(state->agent_name);
    pthread_mutex_destroy(&state->lock);
    free(state);
}

agent_state_t *agent_state_open(const char *agent_name)
{
    agent_state_t *state = calloc(1, sizeof(*state));
    json_t *previous;

    if (state == NULL)
        return NULL;
    pthread_mutex_init(&state->lock, NULL);
    state->lock_fd = -1;
    state->agent_name = strdup(agent_name);
    state->groups = json_array();
    if (state->agent_name == NULL || state->groups == NULL)
        goto fail;
    if (agent_state_path(agent_name, state->path, sizeof(state->path)) != 0) {
        log_warn("agent", "the state file path of agent '%s' is too long; set XDG_RUNTIME_DIR to "
                 "a shorter directory", agent_name);
        goto fail;
    }
    if ((state->lock_fd = agent_state_lock(state->path, agent_name)) < 0)
        goto fail;
    agent_state_boot_id(state->boot_id, sizeof(state->boot_id));

    previous = agent_state_load(state->path);
    if (previous != NULL) {
        agent_state_recover(agent_name, previous, state->boot_id);
        json_decref(previous);
    }
    if (agent_state_write(state) != 0) {
        log_warn("agent", "cannot write the state file %s: %s; processes left by a crash of this "
                 "agent will not be cleaned up", state->path, strerror(errno));
        goto fail;
    }
    return state;

fail:
    agent_state_free(state);
    return NULL;
}

int agent_state_add(agent_state_t *state, pid_t pgid, const char *instance_id,
                    const char *workdir)
{
    agent_pid_stat_t leader;
    json_t *entry;
    int rc = -1;

    if (state == NULL)
        return 0;
    if (agent_procfs_read_pid_stat(pgid, &leader) != 0) {
        log_warn("agent", "instance %s: cannot read /proc/%d/stat; its process group is not "
                 "recorded for clean-up after a crash", instance_id, (int)pgid);
        return -1;
    }
    entry = json_pack("{s:i, s:I, s:s, s:s?}", "pgid", (json_int_t)pgid, "start_time",
                      (json_int_t)leader.start_time, "instance", instance_id, "workdir", workdir);

    pthread_mutex_lock(&state->lock);
    if (entry != NULL && json_array_append_new(state->groups, entry) == 0) {
        entry = NULL;
        rc = agent_state_write(state);
    }
    pthread_mutex_unlock(&state->lock);

    json_decref(entry);
    if (rc != 0)
        log_warn("agent", "instance %s: cannot record process group %d in %s: %s", instance_id,
                 (int)pgid, state->path, strerror(errno));
    return rc;
}

void agent_state_remove(agent_state_t *state, pid_t pgid)
{
    size_t i = 0;

    if (state == NULL)
        return;
    pthread_mutex_lock(&state->lock);
    while (i < json_array_size(state->groups)) {
        json_t *pgid_value = json_object_get(json_array_get(state->groups, i), "pgid");
        if (json_integer_value(pgid_value) == (json_int_t)pgid)
            json_array_remove(state->groups, i);
        else
            i++;
    }
    if (agent_state_write(state) != 0)
        log_warn("agent", "cannot rewrite the state file %s: %s", state->path, strerror(errno));
    pthread_mutex_unlock(&state->lock);
}

size_t agent_state_count(agent_state_t *state)
{
    size_t count;

    pthread_mutex_lock(&state->lock);
    count = json_array_size(state->groups);
    pthread_mutex_unlock(&state->lock);
    return count;
}

void agent_state_close(agent_state_t *state)
{
    if (state != NULL)
        agent_state_free(state);
}
