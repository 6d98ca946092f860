/* Unit tests for per-instance usage: the process group parsers and reader,
 * the process runtime's sample, and rates between two readings. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent_metrics.h"
#include "agent/agent_procfs_group.h"

/* Fields 1-24 of /proc/PID/stat, with a command name holding ") (". */
static const char stat_text[] =
    "4242 (a) (b) S 1 4240 4240 0 -1 4194304 100 0 0 0 "
    "150 50 7 3 20 0 4 0 123456 1000000 2500 18446744073709551615 1 1 0 0 0\n";

static void pid_usage_reads_fields_after_the_name(void **state)
{
    agent_pid_usage_t usage;

    (void)state;
    assert_int_equal(agent_procfs_parse_pid_usage(stat_text, &usage), 0);
    assert_int_equal(usage.pgrp, 4240);
    assert_int_equal(usage.utime, 150);
    assert_int_equal(usage.stime, 50);
    assert_int_equal(usage.cutime, 7);
    assert_int_equal(usage.cstime, 3);
    assert_int_equal(usage.rss_pages, 2500);
}

static void pid_usage_rejects_short_text(void **state)
{
    agent_pid_usage_t usage;

    (void)state;
    assert_int_equal(agent_procfs_parse_pid_usage("4242 (a) S 1 4240 4240\n", &usage), -1);
    assert_int_equal(agent_procfs_parse_pid_usage("no name here", &usage), -1);
}

static void pid_io_reads_storage_bytes(void **state)
{
    const char text[] = "rchar: 9000\nwchar: 8000\nsyscr: 10\nsyscw: 20\n"
                        "read_bytes: 4096\nwrite_bytes: 12288\ncancelled_write_bytes: 0\n";
    uint64_t read_bytes = 0, write_bytes = 0;

    (void)state;
    assert_int_equal(agent_procfs_parse_pid_io(text, &read_bytes, &write_bytes), 0);
    assert_int_equal(read_bytes, 4096);
    assert_int_equal(write_bytes, 12288);
    assert_int_equal(agent_procfs_parse_pid_io("rchar: 1\n", &read_bytes, &write_bytes), -1);
}

/* Start a child in its own process group that burns CPU for a while, with
 * a grandchild in the same group. */
static pid_t start_busy_group(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        setpgid(0, 0);
        if (fork() == 0) {
            pause();
            _exit(0);
        }
        volatile uint64_t spin = 0;
        time_t end = time(NULL) + 30;
        while (time(NULL) < end)
            spin++;
        _exit(0);
    }
    setpgid(pid, pid);
    return pid;
}

static void read_group_sums_members(void **state)
{
    agent_group_usage_t usage;
    struct timespec pause = {0, 300 * 1000000L};

    (void)state;
    pid_t pid = start_busy_group();
    assert_true(pid > 0);
    nanosleep(&pause, NULL);

    assert_int_equal(agent_procfs_read_group(pid, &usage), 0);
    assert_int_equal(usage.processes, 2);
    assert_true(usage.cpu_seconds > 0.05);
    assert_true(usage.rss_bytes > 0);
    assert_false(isnan(usage.read_bytes));  /* our own children: io is readable */

    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* The group has no member left once the leader is reaped and the
     * grandchild (reparented) is gone. */
    for (int i = 0; i < 50 && agent_procfs_read_group(pid, &usage) == 0; i++)
        nanosleep(&pause, NULL);
    assert_int_equal(agent_procfs_read_group(pid, &usage), -1);
}

static pthread_mutex_t exit_lock = PTHREAD_MUTEX_INITIALIZER;
static int exit_seen;

static void ignore_output(void *ctx, agent_stream_t stream, const char *data, size_t len)
{
    (void)ctx, (void)stream, (void)data, (void)len;
}

static void note_exit(void *ctx, const agent_exit_t *exit)
{
    (void)ctx, (void)exit;
    pthread_mutex_lock(&exit_lock);
    exit_seen = 1;
    pthread_mutex_unlock(&exit_lock);
}

static int exited(void)
{
    pthread_mutex_lock(&exit_lock);
    int seen = exit_seen;
    pthread_mutex_unlock(&exit_lock);
    return seen;
}

static void process_runtime_samples_its_group(void **state)
{
    json_t *config = json_pack("{s:[s, s, s], s:i}", "command", "/bin/sh", "-c",
                               "end=$(($(date +%s) + 30)); while [ $(date +%s) -lt $end ]; do :; "
                               "done", "port", 24998);
    agent_runtime_spec_t spec = {.instance_id = "usage1", .config = config};
    agent_runtime_events_t events = {.on_output = ignore_output, .on_exit = note_exit};
    agent_runtime_handle_t *h = NULL;
    agent_usage_t first, second;
    struct timespec pause = {0, 400 * 1000000L};
    char err[256] = "";
    int port = 0;

    (void)state;
    assert_int_equal(agent_runtime_process.start(&spec, &events, &h, &port, err, sizeof(err)), 0);
    json_decref(config);
    nanosleep(&pause, NULL);
    assert_int_equal(agent_runtime_process.sample(h, &first), 0);
    nanosleep(&pause, NULL);
    assert_int_equal(agent_runtime_process.sample(h, &second), 0);

    assert_true(second.cpu_seconds > first.cpu_seconds);
    assert_true(first.mem_used_bytes > 0);
    assert_true(isnan(first.mem_limit_bytes));
    assert_true(isnan(first.net_rx_bytes) && isnan(first.net_tx_bytes));
    assert_false(isnan(first.disk_read_bytes));

    agent_runtime_process.stop(h, 2000);
    for (int i = 0; i < 50 && !exited(); i++)
        nanosleep(&pause, NULL);
    assert_true(exited());
    /* Once the leader has exited its group id may be reused: no reading. */
    assert_int_equal(agent_runtime_process.sample(h, &first), -1);
    agent_runtime_process.release(h);
}

static void rates_over_two_readings(void **state)
{
    agent_usage_t prev = {10, 100, NAN, NAN, NAN, 1000, 5000};
    agent_usage_t cur = {12, 200, NAN, NAN, NAN, 3000, 4000};
    agent_usage_rates_t rates;

    (void)state;
    /* 2 CPU seconds in 2 s on 4 CPUs is a quarter of the machine. */
    agent_usage_rates(&prev, &cur, 2.0, 4, &rates);
    assert_true(fabs(rates.cpu_percent - 25.0) < 1e-9);
    assert_true(isnan(rates.net_rx_bytes_per_s));
    assert_true(isnan(rates.net_tx_bytes_per_s));
    assert_true(fabs(rates.disk_read_bytes_per_s - 1000.0) < 1e-9);
    /* A counter that went backwards gives no rate. */
    assert_true(isnan(rates.disk_write_bytes_per_s));

    agent_usage_rates(&prev, &cur, 0, 4, &rates);
    assert_true(isnan(rates.cpu_percent));
}

static void number_is_null_for_nan(void **state)
{
    (void)state;
    json_t *value = agent_metrics_number(NAN);
    assert_true(json_is_null(value));
    json_decref(value);
    value = agent_metrics_number(2.5);
    assert_true(json_is_real(value));
    json_decref(value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pid_usage_reads_fields_after_the_name),
        cmocka_unit_test(pid_usage_rejects_short_text),
        cmocka_unit_test(pid_io_reads_storage_bytes),
        cmocka_unit_test(read_group_sums_members),
        cmocka_unit_test(process_runtime_samples_its_group),
        cmocka_unit_test(rates_over_two_readings),
        cmocka_unit_test(number_is_null_for_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
