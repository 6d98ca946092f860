/* Parsers for the procfs files behind the agent's machine metrics and its
 * process group checks. Each parser takes the file's text, so tests can feed
 * samples. */
#ifndef NIMDECK_AGENT_AGENT_PROCFS_H
#define NIMDECK_AGENT_AGENT_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Cumulative CPU time of all CPUs, in clock ticks. */
typedef struct {
    uint64_t busy;   /* total minus idle and iowait */
    uint64_t total;  /* user nice system idle iowait irq softirq steal */
} agent_cpu_times_t;

/* One reading of the cumulative counters and the memory gauge. */
typedef struct {
    int64_t mono_ms;          /* when it was read, CLOCK_MONOTONIC */
    agent_cpu_times_t cpu;
    uint64_t mem_used_bytes;  /* MemTotal - MemAvailable */
    uint64_t mem_total_bytes;
    uint64_t net_rx_bytes;    /* all interfaces but lo */
    uint64_t net_tx_bytes;
    uint64_t disk_read_bytes; /* whole disks only, sectors of 512 bytes */
    uint64_t disk_write_bytes;
} agent_machine_counters_t;

/* Rates between two readings; CPU in percent of all CPUs (0-100). */
typedef struct {
    double cpu_percent;
    double net_rx_bytes_per_s;
    double net_tx_bytes_per_s;
    double disk_read_bytes_per_s;
    double disk_write_bytes_per_s;
} agent_machine_rates_t;

/* Where the value of the line "name: value" starts in text (procfs files of
 * "Name: value" lines, such as meminfo and /proc/PID/io), or NULL when no
 * line has that name. */
const char *agent_procfs_line_value(const char *text, const char *name);

/* Decides whether a /proc/diskstats device name is a whole disk. */
typedef int (*agent_disk_filter_fn)(const char *name);

/* Each parser returns 0, or -1 when the text lacks what it needs. */
int agent_procfs_parse_stat(const char *text, agent_cpu_times_t *out);
int agent_procfs_parse_meminfo(const char *text, uint64_t *used_bytes, uint64_t *total_bytes);
int agent_procfs_parse_net_dev(const char *text, uint64_t *rx_bytes, uint64_t *tx_bytes);
int agent_procfs_parse_diskstats(const char *text, agent_disk_filter_fn is_whole_disk,
                                 uint64_t *read_bytes, uint64_t *write_bytes);

/* True when /sys/block/NAME/device exists: a physical disk, not a partition,
 * loop, RAM or device-mapper device (those would count the same I/O twice). */
int agent_procfs_is_whole_disk(const char *name);

/* Read every counter from /proc (and /sys/block). Returns 0, or -1 when
 * /proc/stat or /proc/meminfo cannot be read; missing network or disk files
 * leave those counters at 0. */
int agent_procfs_read(agent_machine_counters_t *out);

/* Rates from prev to cur. A counter that went backwards counts as 0. */
void agent_procfs_rates(const agent_machine_counters_t *prev, const agent_machine_counters_t *cur,
                        agent_machine_rates_t *out);

/* The fields of /proc/PID/stat that tell whether a process belongs to a
 * process group started earlier. */
typedef struct {
    char state;            /* field 3: 'R', 'S', 'Z' (zombie), ... */
    pid_t pgrp;            /* field 5: process group id */
    uint64_t start_time;   /* field 22: clock ticks after boot */
} agent_pid_stat_t;

/* Parse /proc/PID/stat text. The command name (field 2) may hold spaces and
 * parentheses, so fields are counted from its last ')'. Returns 0, or -1
 * when a field is missing. */
int agent_procfs_parse_pid_stat(const char *text, agent_pid_stat_t *out);

/* Read /proc/PID/stat of pid. Returns 0, or -1 when the process does not
 * exist (any more) or the file cannot be parsed. */
int agent_procfs_read_pid_stat(pid_t pid, agent_pid_stat_t *out);

#endif
