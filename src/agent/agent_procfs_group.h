/* The resource use of one process group from procfs, for the process
 * runtime's per-instance usage. Parsers take the file's text so tests can
 * feed samples. */
#ifndef NIMDECK_AGENT_AGENT_PROCFS_GROUP_H
#define NIMDECK_AGENT_AGENT_PROCFS_GROUP_H

#include <stdint.h>
#include <sys/types.h>

/* The usage fields of /proc/PID/stat. Times are clock ticks. */
typedef struct {
    pid_t pgrp;          /* field 5 */
    uint64_t utime;      /* fields 14 to 17: own user and system time, then */
    uint64_t stime;      /* that of waited-for children */
    uint64_t cutime;
    uint64_t cstime;
    uint64_t rss_pages;  /* field 24 */
} agent_pid_usage_t;

/* Cumulative use of every process in a group. */
typedef struct {
    int processes;
    double cpu_seconds;       /* own time plus that of reaped children */
    double rss_bytes;         /* sum of resident sets: shared pages count once per process */
    double read_bytes;        /* storage reads and writes from /proc/PID/io, NAN when */
    double write_bytes;       /* no process's io file could be read */
} agent_group_usage_t;

/* Parse /proc/PID/stat text. Returns 0, or -1 when a field is missing. */
int agent_procfs_parse_pid_usage(const char *text, agent_pid_usage_t *out);

/* Parse /proc/PID/io text for read_bytes and write_bytes. Returns 0, or -1
 * when either is missing. */
int agent_procfs_parse_pid_io(const char *text, uint64_t *read_bytes, uint64_t *write_bytes);

/* Sum the use of the processes in group pgrp by scanning /proc. Returns 0,
 * or -1 when no process of the group was found. */
int agent_procfs_read_group(pid_t pgrp, agent_group_usage_t *out);

#endif
