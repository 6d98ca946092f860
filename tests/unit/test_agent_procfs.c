/* Unit tests for the agent's procfs parsers and rate computation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent_procfs.h"

static const char stat_text[] =
    "cpu  100 20 30 400 50 6 7 8 9 10\n"
    "cpu0 50 10 15 200 25 3 3 4 4 5\n"
    "intr 12345 0 0\n";

static void stat_sums_busy_and_total(void **state)
{
    agent_cpu_times_t cpu;

    (void)state;
    assert_int_equal(agent_procfs_parse_stat(stat_text, &cpu), 0);
    /* Guest fields (9, 10) are already inside user and nice. */
    assert_int_equal(cpu.total, 100 + 20 + 30 + 400 + 50 + 6 + 7 + 8);
    assert_int_equal(cpu.busy, 100 + 20 + 30 + 6 + 7 + 8);
}

static void stat_rejects_missing_cpu_line(void **state)
{
    agent_cpu_times_t cpu;

    (void)state;
    assert_int_equal(agent_procfs_parse_stat("cpu0 1 2 3 4\n", &cpu), -1);
    assert_int_equal(agent_procfs_parse_stat("cpu  1 2\n", &cpu), -1);
}

static void meminfo_uses_available(void **state)
{
    const char text[] = "MemTotal:       16000000 kB\n"
                        "MemFree:         1000000 kB\n"
                        "MemAvailable:    6000000 kB\n"
                        "Buffers:          200000 kB\n";
    uint64_t used = 0, total = 0;

    (void)state;
    assert_int_equal(agent_procfs_parse_meminfo(text, &used, &total), 0);
    assert_int_equal(total, 16000000ull * 1024);
    assert_int_equal(used, 10000000ull * 1024);
}

static void meminfo_falls_back_without_available(void **state)
{
    const char text[] = "MemTotal:  1000 kB\nMemFree:  100 kB\nBuffers:  50 kB\nCached:  250 kB\n";
    uint64_t used = 0, total = 0;

    (void)state;
    assert_int_equal(agent_procfs_parse_meminfo(text, &used, &total), 0);
    assert_int_equal(total, 1000ull * 1024);
    assert_int_equal(used, 600ull * 1024);
}

static void meminfo_rejects_missing_total(void **state)
{
    uint64_t used, total;

    (void)state;
    assert_int_equal(agent_procfs_parse_meminfo("MemFree: 1 kB\n", &used, &total), -1);
}

static const char net_dev_text[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
    "    lo: 9999999    100    0    0    0     0          0         0  9999999     100    0    0    0     0       0          0\n"
    "  eth0: 1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0\n"
    "wlan0:500 5 0 0 0 0 0 0 700 7 0 0 0 0 0 0\n";

static void net_dev_excludes_loopback(void **state)
{
    uint64_t rx = 0, tx = 0;

    (void)state;
    assert_int_equal(agent_procfs_parse_net_dev(net_dev_text, &rx, &tx), 0);
    assert_int_equal(rx, 1500);
    assert_int_equal(tx, 2700);
}

static void net_dev_rejects_headers_only(void **state)
{
    uint64_t rx, tx;

    (void)state;
    assert_int_equal(agent_procfs_parse_net_dev("Inter-| Receive\n face |bytes\n", &rx, &tx), -1);
}

static int fake_whole_disk(const char *name)
{
    return strcmp(name, "sda") == 0 || strcmp(name, "nvme0n1") == 0;
}

static const char diskstats_text[] =
    "   8       0 sda 100 0 2000 50 200 0 4000 60 0 100 110 0 0 0 0\n"
    "   8       1 sda1 90 0 1800 40 190 0 3900 50 0 90 90 0 0 0 0\n"
    " 259       0 nvme0n1 10 0 10 1 20 0 30 2 0 3 3\n"
    "   7       0 loop0 5 0 500 1 0 0 0 0 0 1 1 0 0 0 0\n";

static void diskstats_counts_whole_disks(void **state)
{
    uint64_t read_bytes = 0, write_bytes = 0;

    (void)state;
    assert_int_equal(agent_procfs_parse_diskstats(diskstats_text, fake_whole_disk, &read_bytes,
                                                  &write_bytes), 0);
    assert_int_equal(read_bytes, (2000ull + 10) * 512);
    assert_int_equal(write_bytes, (4000ull + 30) * 512);
}

static void rates_over_interval(void **state)
{
    agent_machine_counters_t prev = {0}, cur = {0};
    agent_machine_rates_t rates;

    (void)state;
    prev.mono_ms = 1000;
    cur.mono_ms = 3000;
    prev.cpu = (agent_cpu_times_t){.busy = 100, .total = 1000};
    cur.cpu = (agent_cpu_times_t){.busy = 150, .total = 1200};
    prev.net_rx_bytes = 1000;
    cur.net_rx_bytes = 5000;
    prev.net_tx_bytes = 9000;
    cur.net_tx_bytes = 100;   /* counter reset */
    prev.disk_read_bytes = 0;
    cur.disk_read_bytes = 1024;
    cur.disk_write_bytes = 4096;

    agent_procfs_rates(&prev, &cur, &rates);
    assert_true(rates.cpu_percent > 24.99);
    assert_true(rates.cpu_percent < 25.01);
    assert_true(rates.net_rx_bytes_per_s > 1999.9);
    assert_true(rates.net_rx_bytes_per_s < 2000.1);
    assert_true(rates.net_tx_bytes_per_s == 0);
    assert_true(rates.disk_read_bytes_per_s > 511.9);
    assert_true(rates.disk_read_bytes_per_s < 512.1);
    assert_true(rates.disk_write_bytes_per_s > 2047.9);
    assert_true(rates.disk_write_bytes_per_s < 2048.1);
}

static void read_live_proc(void **state)
{
    agent_machine_counters_t counters;

    (void)state;
    assert_int_equal(agent_procfs_read(&counters), 0);
    assert_true(counters.mem_total_bytes > 0);
    assert_true(counters.mem_used_bytes <= counters.mem_total_bytes);
    assert_true(counters.cpu.total > 0);
}

static void pid_stat_odd_command_name(void **state)
{
    /* A command name may hold spaces and ") " itself. */
    const char text[] = "4242 (my ) S (x) Z 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
                        "987654 1000 200 18446744073709551615\n";
    agent_pid_stat_t st;

    (void)state;
    assert_int_equal(agent_procfs_parse_pid_stat(text, &st), 0);
    assert_int_equal(st.state, 'Z');
    assert_int_equal(st.pgrp, 4240);
    assert_int_equal(st.start_time, 987654);
}

static void pid_stat_rejects_short(void **state)
{
    agent_pid_stat_t st;

    (void)state;
    assert_int_equal(agent_procfs_parse_pid_stat("4242 (sh) S 1 4240 4240 0", &st), -1);
    assert_int_equal(agent_procfs_parse_pid_stat("4242 sh S 1", &st), -1);
}

static void pid_stat_reads_self(void **state)
{
    agent_pid_stat_t st;

    (void)state;
    assert_int_equal(agent_procfs_read_pid_stat(getpid(), &st), 0);
    assert_int_equal(st.pgrp, getpgrp());
    assert_true(st.start_time > 0);
    assert_int_equal(agent_procfs_read_pid_stat(-5, &st), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stat_sums_busy_and_total),
        cmocka_unit_test(stat_rejects_missing_cpu_line),
        cmocka_unit_test(meminfo_uses_available),
        cmocka_unit_test(meminfo_falls_back_without_available),
        cmocka_unit_test(meminfo_rejects_missing_total),
        cmocka_unit_test(net_dev_excludes_loopback),
        cmocka_unit_test(net_dev_rejects_headers_only),
        cmocka_unit_test(diskstats_counts_whole_disks),
        cmocka_unit_test(rates_over_interval),
        cmocka_unit_test(read_live_proc),
        cmocka_unit_test(pid_stat_odd_command_name),
        cmocka_unit_test(pid_stat_rejects_short),
        cmocka_unit_test(pid_stat_reads_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
