/* Private working directories of process instances. */
#include "agent/agent_workdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Maximum directory depth that removal descends. Deeper trees are left in
 * place, because each level keeps one file descriptor open. */
#define AGENT_WORKDIR_MAX_DEPTH 256

/* Processes of an instance may still be dying when the removal begins and
 * add entries meanwhile, so a directory that is not empty yet is swept
 * again this many times. */
#define AGENT_WORKDIR_SWEEPS 3

/* Append name to out with every character outside [A-Za-z0-9._-] as '_'. */
static void agent_workdir_append_safe(char *out, size_t size, const char *name)
{
    static const char allowed[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    size_t len = strlen(out);

    for (; *name != '\0' && len + 1 < size; name++)
        out[len++] = strchr(allowed, *name) != NULL ? *name : '_';
    out[len] = '\0';
}

static const char *agent_workdir_base(void)
{
    const char *tmpdir = getenv("TMPDIR");

    return tmpdir != NULL && tmpdir[0] == '/' ? tmpdir : "/tmp";
}

int agent_workdir_create(const char *agent_name, const char *instance_id, char *out,
                         size_t out_size, char *err, size_t err_size)
{
    char name[160] = AGENT_WORKDIR_PREFIX;
    const char *base = agent_workdir_base();

    /* Both names are cut so that the directory name stays short. */
    agent_workdir_append_safe(name, 64, agent_name);
    agent_workdir_append_safe(name, sizeof(name), "-");
    agent_workdir_append_safe(name, sizeof(name) - 8, instance_id);

    int n = snprintf(out, out_size, "%s/%s-XXXXXX", base, name);
    if (n < 0 || (size_t)n >= out_size) {
        snprintf(err, err_size, "cannot create a working directory: the path under '%s' is too long; "
                 "set TMPDIR to a shorter directory", base);
        return -1;
    }

    /* mkdtemp creates the directory with mode 0700. */
    if (mkdtemp(out) == NULL) {
        snprintf(err, err_size, "cannot create a working directory under '%s': %s; set TMPDIR to "
                 "a writable directory", base, strerror(errno));
        return -1;
    }
    return 0;
}

static int agent_workdir_remove_at(int parent_fd, const char *name, int depth);

/* Remove every entry of the directory open as fd. Returns 0 or -1 (errno). */
static int agent_workdir_empty(int fd, int depth)
{
    int copy = dup(fd);
    int rc = 0, error = 0;
    DIR *dir;
    struct dirent *entry;

    if (copy < 0)
        return -1;
    if ((dir = fdopendir(copy)) == NULL) {
        close(copy);
        return -1;
    }
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (agent_workdir_remove_at(fd, entry->d_name, depth + 1) != 0 && rc == 0) {
            rc = -1;
            error = errno;
        }
    }
    closedir(dir);
    errno = error;
    return rc;
}

/* Remove name, a directory entry of parent_fd, and what is under it. */
static int agent_workdir_remove_at(int parent_fd, const char *name, int depth)
{
    struct stat st;
    int rc = 0, error = 0;

    if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(parent_fd, name, 0) == 0 || errno == ENOENT ? 0 : -1;
    if (depth >= AGENT_WORKDIR_MAX_DEPTH) {
        errno = ELOOP;
        return -1;
    }

    /* O_NOFOLLOW: the entry may have been replaced by a link since fstatat. */
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    for (int sweep = 0; sweep < AGENT_WORKDIR_SWEEPS; sweep++) {
        rc = agent_workdir_empty(fd, depth);
        error = errno;
        if (unlinkat(parent_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
            rc = 0;
            break;
        }
        if (errno != ENOTEMPTY && errno != EEXIST) {
            rc = -1;
            error = errno;
            break;
        }
        if (rc == 0) {
            rc = -1;
            error = ENOTEMPTY;
        }
    }
    close(fd);
    errno = error;
    return rc;
}

int agent_workdir_remove(const char *path)
{
    char *copy = strdup(path);
    char *slash = copy != NULL ? strrchr(copy, '/') : NULL;
    int parent_fd, rc, error;

    if (copy == NULL)
        return -1;
    if (slash == NULL || slash[1] == '\0') {
        free(copy);
        errno = EINVAL;
        return -1;
    }

    /* The parent is opened as given: it is $TMPDIR or /tmp, the user's own
     * choice, while nothing below it is followed. */
    *slash = '\0';
    parent_fd = open(slash == copy ? "/" : copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (parent_fd < 0) {
        error = errno;
        free(copy);
        errno = error;
        return errno == ENOENT ? 0 : -1;
    }
    rc = agent_workdir_remove_at(parent_fd, slash + 1, 0);
    error = errno;
    close(parent_fd);
    free(copy);
    errno = error;
    return rc;
}
