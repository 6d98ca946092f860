/* Parsers for the procfs files behind the agent's machine metrics and its
 * process group checks. */
#include "agent/agent_procfs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"

/* Read one unsigned decimal field, skipping leading blanks. Returns 0 and
 * advances *text past it, or -1 when there is none. */
static int agent_procfs_next_u64(const char **text, uint64_t *out)
{
    const char *p = *text;
    char *end;

    while (*p == ' ' || *p == '\t')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    unsigned long long value = strtoull(p, &end, 10);
    if (errno != 0)
        return -1;
    *out = value;
    *text = end;
    return 0;
}

int agent_procfs_parse_stat(const char *text, agent_cpu_times_t *out)
{
    uint64_t fields[8] = {0};
    const char *p;
    int count = 0;

    /* The aggregate line is the first one and starts with "cpu " (the
     * per-CPU lines are "cpu0", "cpu1", ...). */
    if (strncmp(text, "cpu ", 4) != 0)
        return -1;
    p = text + 4;

    /* Kernels before 2.6.11 have fewer fields; guest time is already
     * included in user and nice, so fields past steal are left out. */
    while (count < 8 && agent_procfs_next_u64(&p, &fields[count]) == 0)
        count++;
    if (count < 4)
        return -1;

    out->total = 0;
    for (int i = 0; i < count; i++)
        out->total += fields[i];
    out->busy = out->total - fields[3] - fields[4];
    return 0;
}

const char *agent_procfs_line_value(const char *text, const char *name)
{
    size_t name_len = strlen(name);

    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, name, name_len) == 0 && line[name_len] == ':')
            return line + name_len + 1;
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return NULL;
}

/* The value in kB of "Name:   N kB" in meminfo text. */
static int agent_procfs_meminfo_field(const char *text, const char *name, uint64_t *out_kb)
{
    const char *p = agent_procfs_line_value(text, name);

    return p != NULL ? agent_procfs_next_u64(&p, out_kb) : -1;
}

int agent_procfs_parse_meminfo(const char *text, uint64_t *used_bytes, uint64_t *total_bytes)
{
    uint64_t total_kb, available_kb;

    if (agent_procfs_meminfo_field(text, "MemTotal", &total_kb) != 0)
        return -1;

    /* Kernels before 3.14 have no MemAvailable; free plus page cache is the
     * usual estimate there. */
    if (agent_procfs_meminfo_field(text, "MemAvailable", &available_kb) != 0) {
        uint64_t free_kb = 0, buffers_kb = 0, cached_kb = 0;
        if (agent_procfs_meminfo_field(text, "MemFree", &free_kb) != 0)
            return -1;
        agent_procfs_meminfo_field(text, "Buffers", &buffers_kb);
        agent_procfs_meminfo_field(text, "Cached", &cached_kb);
        available_kb = free_kb + buffers_kb + cached_kb;
    }
    if (available_kb > total_kb)
        available_kb = total_kb;

    *total_bytes = total_kb * 1024;
    *used_bytes = (total_kb - available_kb) * 1024;
    return 0;
}

int agent_procfs_parse_net_dev(const char *text, uint64_t *rx_bytes, uint64_t *tx_bytes)
{
    uint64_t rx = 0, tx = 0;
    int interfaces = 0;

    /* Lines are "  name: rx_bytes packets errs drop fifo frame compressed
     * multicast tx_bytes ..."; the two header lines have no colon before a
     * number and fail to parse. */
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *colon = strchr(line, ':');
        const char *end = strchr(line, '\n');
        const char *name = line;

        while (*name == ' ')
            name++;
        if (colon != NULL && (end == NULL || colon < end)) {
            const char *p = colon + 1;
            uint64_t fields[9];
            int ok = 1;

            for (int i = 0; i < 9 && ok; i++)
                ok = agent_procfs_next_u64(&p, &fields[i]) == 0;
            int loopback = colon - name == 2 && strncmp(name, "lo", 2) == 0;

            if (ok)
                interfaces++;
            if (ok && !loopback) {
                rx += fields[0];
                tx += fields[8];
            }
        }
        line = end != NULL ? end + 1 : NULL;
    }
    if (interfaces == 0)
        return -1;
    *rx_bytes = rx;
    *tx_bytes = tx;
    return 0;
}

int agent_procfs_parse_diskstats(const char *text, agent_disk_filter_fn is_whole_disk,
                                 uint64_t *read_bytes, uint64_t *write_bytes)
{
    uint64_t read_sectors = 0, write_sectors = 0;
    int devices = 0;

    /* Fields: major minor name reads merged sectors_read ms writes merged
     * sectors_written ...; a sector here is always 512 bytes. */
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        const char *p = line;
        uint64_t major, minor, fields[7];
        char name[64];
        size_t name_len;
        int ok = agent_procfs_next_u64(&p, &major) == 0 && agent_procfs_next_u64(&p, &minor) == 0;

        while (ok && *p == ' ')
            p++;
        name_len = strcspn(p, " \t\n");
        ok = ok && name_len > 0 && name_len < sizeof(name);
        if (ok) {
            memcpy(name, p, name_len);
            name[name_len] = '\0';
            p += name_len;
        }
        for (int i = 0; i < 7 && ok; i++)
            ok = agent_procfs_next_u64(&p, &fields[i]) == 0;
        if (ok) {
            devices++;
            if (is_whole_disk(name)) {
                read_sectors += fields[2];
                write_sectors += fields[6];
            }
        }
        line = end != NULL ? end + 1 : NULL;
    }
    if (devices == 0)
        return -1;
    *read_bytes = read_sectors * 512;
    *write_bytes = write_sectors * 512;
    return 0;
}

int agent_procfs_is_whole_disk(const char *name)
{
    char sysfs_name[128], path[256];
    struct stat st;
    int n = snprintf(sysfs_name, sizeof(sysfs_name), "%s", name);

    if (n < 0 || (size_t)n >= sizeof(sysfs_name))
        return 0;

    /* Names with a slash in diskstats ("cciss/c0d0") use '!' in sysfs. */
    for (char *p = sysfs_name; *p != '\0'; p++) {
        if (*p == '/')
            *p = '!';
    }
    snprintf(path, sizeof(path), "/sys/block/%s/device", sysfs_name);
    return stat(path, &st) == 0;
}

/* Read a whole procfs file (their size is not known in advance). */
static int agent_procfs_slurp(const char *path, buf_t *out)
{
    char chunk[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    buf_reset(out);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
        if (out->len + (size_t)n > 4u * 1024 * 1024 || buf_append(out, chunk, (size_t)n) != 0) {
            close(fd);
            return -1;
        }
    }
    close(fd);
    if (n < 0 || out->len == 0)
        return -1;
    return 0;
}

int agent_procfs_parse_pid_stat(const char *text, agent_pid_stat_t *out)
{
    const char *p = strrchr(text, ')');
    uint64_t field = 0;

    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return -1;
    out->state = p[2];
    p += 3;

    /* Fields 4 (ppid) to 22 (starttime); the 5th is the process group.
     * Some fields between them, such as tpgid, may be -1. */
    for (int number = 4; number <= 22; number++) {
        while (*p == ' ')
            p++;
        int negative = *p == '-';
        if (negative)
            p++;
        if (agent_procfs_next_u64(&p, &field) != 0)
            return -1;
        if ((number == 5 || number == 22) && negative)
            return -1;
        if (number == 5)
            out->pgrp = (pid_t)field;
    }
    out->start_time = field;
    return 0;
}

int agent_procfs_read_pid_stat(pid_t pid, agent_pid_stat_t *out)
{
    char path[64];
    buf_t text = BUF_INIT;
    int rc = -1;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (agent_procfs_slurp(path, &text) == 0)
        rc = agent_procfs_parse_pid_stat(text.data, out);
    buf_free(&text);
    return rc;
}

int agent_procfs_read(agent_machine_counters_t *out)
{
    buf_t text = BUF_INIT;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->mono_ms = clock_mono_ms();

    if (agent_procfs_slurp("/proc/stat", &text) != 0 ||
        agent_procfs_parse_stat(text.data, &out->cpu) != 0)
        goto out;
    if (agent_procfs_slurp("/proc/meminfo", &text) != 0 ||
        agent_procfs_parse_meminfo(text.data, &out->mem_used_bytes, &out->mem_total_bytes) != 0)
        goto out;
    if (agent_procfs_slurp("/proc/net/dev", &text) == 0)
        agent_procfs_parse_net_dev(text.data, &out->net_rx_bytes, &out->net_tx_bytes);
    if (agent_procfs_slurp("/proc/diskstats", &text) == 0)
        agent_procfs_parse_diskstats(text.data, agent_procfs_is_whole_disk, &out->disk_read_bytes,
                                     &out->disk_write_bytes);
    rc = 0;

out:
    buf_free(&text);
    return rc;
}

static double agent_procfs_rate(uint64_t prev, uint64_t cur, double seconds)
{
    if (cur < prev || seconds <= 0)
        return 0;
    return (double)(cur - prev) / seconds;
}

void agent_procfs_rates(const agent_machine_counters_t *prev, const agent_machine_counters_t *cur,
                        agent_machine_rates_t *out)
{
    double seconds = (double)(cur->mono_ms - prev->mono_ms) / 1000.0;
    uint64_t total = cur->cpu.total - prev->cpu.total;
    uint64_t busy = cur->cpu.busy - prev->cpu.busy;

    out->cpu_percent = 0;
    if (cur->cpu.total > prev->cpu.total && cur->cpu.busy >= prev->cpu.busy && busy <= total)
        out->cpu_percent = 100.0 * (double)busy / (double)total;

    out->net_rx_bytes_per_s = agent_procfs_rate(prev->net_rx_bytes, cur->net_rx_bytes, seconds);
    out->net_tx_bytes_per_s = agent_procfs_rate(prev->net_tx_bytes, cur->net_tx_bytes, seconds);
    out->disk_read_bytes_per_s = agent_procfs_rate(prev->disk_read_bytes, cur->disk_read_bytes, seconds);
    out->disk_write_bytes_per_s =
        agent_procfs_rate(prev->disk_write_bytes, cur->disk_write_bytes, seconds);
}
