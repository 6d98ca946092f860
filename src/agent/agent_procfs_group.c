/* The resource use of one process group, summed over /proc/PID/stat and
 * /proc/PID/io of its members. */
#include "agent/agent_procfs_group.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_procfs.h"

/* Read one decimal field (a leading '-' allowed, read as 0, since the
 * fields used here are never negative in practice), skipping blanks. */
static int agent_group_next(const char **text, uint64_t *out)
{
    const char *p = *text;
    char *end;
    int negative;

    while (*p == ' ')
        p++;
    negative = *p == '-';
    if (negative)
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    unsigned long long value = strtoull(p, &end, 10);
    if (errno != 0)
        return -1;
    *out = negative ? 0 : value;
    *text = end;
    return 0;
}

int agent_procfs_parse_pid_usage(const char *text, agent_pid_usage_t *out)
{
    /* The command name (field 2) may hold spaces and parentheses, so the
     * fields are counted from its last ')'. */
    const char *p = strrchr(text, ')');
    uint64_t field;

    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return -1;
    p += 3;  /* past ") " and the state letter */
    memset(out, 0, sizeof(*out));
    for (int number = 4; number <= 24; number++) {
        if (agent_group_next(&p, &field) != 0)
            return -1;
        switch (number) {
        case 5: out->pgrp = (pid_t)field; break;
        case 14: out->utime = field; break;
        case 15: out->stime = field; break;
        case 16: out->cutime = field; break;
        case 17: out->cstime = field; break;
        case 24: out->rss_pages = field; break;
        default: break;
        }
    }
    return 0;
}

/* The value of "name: N" in /proc/PID/io text. */
static int agent_group_io_field(const char *text, const char *name, uint64_t *out)
{
    const char *p = agent_procfs_line_value(text, name);

    return p != NULL ? agent_group_next(&p, out) : -1;
}

int agent_procfs_parse_pid_io(const char *text, uint64_t *read_bytes, uint64_t *write_bytes)
{
    if (agent_group_io_field(text, "read_bytes", read_bytes) != 0 ||
        agent_group_io_field(text, "write_bytes", write_bytes) != 0)
        return -1;
    return 0;
}

/* Read a small procfs file into buf (both files here are well under 1 KiB). */
static int agent_group_read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    while ((n = read(fd, buf, size - 1)) < 0 && errno == EINTR)
        ;
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* Add process pid to out when it belongs to group pgrp. */
static void agent_group_add(const char *pid, pid_t pgrp, double tick_s, double page_bytes,
                            agent_group_usage_t *out)
{
    char path[64], text[2048];
    agent_pid_usage_t usage;
    uint64_t read_bytes, write_bytes;

    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    if (agent_group_read_file(path, text, sizeof(text)) != 0 ||
        agent_procfs_parse_pid_usage(text, &usage) != 0 || usage.pgrp != pgrp)
        return;

    out->processes++;
    out->cpu_seconds += (double)(usage.utime + usage.stime + usage.cutime + usage.cstime) * tick_s;
    /* NOTE: a sum of resident sets, so memory the processes share counts
     * once per process. */
    out->rss_bytes += (double)usage.rss_pages * page_bytes;

    /* Another user's process (a setuid helper) may hide its io file. */
    snprintf(path, sizeof(path), "/proc/%s/io", pid);
    if (agent_group_read_file(path, text, sizeof(text)) != 0 ||
        agent_procfs_parse_pid_io(text, &read_bytes, &write_bytes) != 0)
        return;
    if (isnan(out->read_bytes))
        out->read_bytes = out->write_bytes = 0;
    out->read_bytes += (double)read_bytes;
    out->write_bytes += (double)write_bytes;
}

int agent_procfs_read_group(pid_t pgrp, agent_group_usage_t *out)
{
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    DIR *proc = opendir("/proc");
    struct dirent *entry;

    memset(out, 0, sizeof(*out));
    out->read_bytes = out->write_bytes = NAN;
    if (proc == NULL || ticks <= 0 || page <= 0) {
        if (proc != NULL)
            closedir(proc);
        return -1;
    }

    /* NOTE: a process that leaves the group (setsid, setpgid) is no longer
     * counted, and its time so far drops out of the cumulative counters. */
    while ((entry = readdir(proc)) != NULL) {
        if (isdigit((unsigned char)entry->d_name[0]))
            agent_group_add(entry->d_name, pgrp, 1.0 / (double)ticks, (double)page, out);
    }
    closedir(proc);
    return out->processes > 0 ? 0 : -1;
}
