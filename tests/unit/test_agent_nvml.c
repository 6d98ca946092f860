/* Unit tests for the NVML loader, with the test library from
 * BUILD/fake-nvml and without any library. The loader finds the library
 * only through the dynamic linker's search path, which is fixed when a
 * process starts, so the tests with the library run in a copy of this
 * program started with LD_LIBRARY_PATH pointing there. */
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent_nvml.h"

#define GIB (1024.0 * 1024 * 1024)

static int reset_env(void **state)
{
    (void)state;
    setenv("NIMDECK_FAKE_NVML_GPUS", "2", 1);
    unsetenv("NIMDECK_FAKE_NVML_INIT");
    unsetenv("NIMDECK_FAKE_NVML_FAIL");
    return 0;
}

/* Without the library. */

static void absent_library_is_an_error_with_a_reason(void **state)
{
    char why[512] = "";
    agent_nvml_sample_t sample;
    agent_nvml_info_t info;

    (void)state;
    void *real = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (real != NULL) {
        dlclose(real);
        skip();  /* a real driver is installed: the absence cannot be tested here */
    }
    assert_int_equal(agent_nvml_open(why, sizeof(why)), -1);
    assert_non_null(strstr(why, "libnvidia-ml.so.1"));
    assert_int_equal(agent_nvml_count(), -1);
    assert_int_equal(agent_nvml_sample(0, &sample), -1);
    assert_true(isnan(sample.util_percent));
    assert_int_equal(agent_nvml_info(0, &info), -1);
    assert_int_equal(agent_nvml_find("0"), -1);
    agent_nvml_close();  /* without an open: nothing happens */
    assert_int_equal(agent_nvml_count(), -1);
}

/* With the test library. */

static void open_counts_devices_and_nests(void **state)
{
    char why[512] = "";

    (void)state;
    assert_int_equal(agent_nvml_open(why, sizeof(why)), 2);
    assert_int_equal(agent_nvml_open(why, sizeof(why)), 2);
    agent_nvml_close();
    assert_int_equal(agent_nvml_count(), 2);
    agent_nvml_close();
    assert_int_equal(agent_nvml_count(), -1);

    setenv("NIMDECK_FAKE_NVML_GPUS", "0", 1);
    assert_int_equal(agent_nvml_open(why, sizeof(why)), 0);
    agent_nvml_close();
}

static void info_reads_static_facts(void **state)
{
    char why[512] = "";
    agent_nvml_info_t info;

    (void)state;
    assert_int_equal(agent_nvml_open(why, sizeof(why)), 2);
    assert_int_equal(agent_nvml_info(1, &info), 0);
    assert_string_equal(info.uuid, "GPU-fa4e0000-0000-4000-8000-000000000001");
    assert_string_equal(info.name, "NVIDIA Fake GPU 80GB");
    assert_int_equal(info.minor, 1);
    assert_true(info.mem_total_bytes == 80 * GIB);
    assert_int_equal(agent_nvml_info(2, &info), -1);
    assert_int_equal(agent_nvml_info(-1, &info), -1);
    agent_nvml_close();
}

static void sample_reads_changing_values(void **state)
{
    char why[512] = "";
    agent_nvml_sample_t first, second;

    (void)state;
    assert_int_equal(agent_nvml_open(why, sizeof(why)), 2);
    assert_int_equal(agent_nvml_sample(1, &first), 0);
    assert_int_equal(agent_nvml_sample(1, &second), 0);
    assert_true(first.util_percent == 15);
    assert_true(second.util_percent == 25);
    assert_true(first.mem_used_bytes == 2 * GIB);
    assert_true(second.mem_used_bytes > first.mem_used_bytes);
    assert_true(first.mem_total_bytes == 80 * GIB);
    assert_true(first.temp_c == 41);
    assert_true(first.power_w == 101);
    assert_int_equal(agent_nvml_sample(5, &first), -1);
    agent_nvml_close();
}

static void failing_calls_give_nan(void **state)
{
    char why[512] = "";
    agent_nvml_sample_t sample;
    agent_nvml_info_t info;

    (void)state;
    setenv("NIMDECK_FAKE_NVML_FAIL", "power,temperature,uuid", 1);
    assert_int_equal(agent_nvml_open(why, sizeof(why)), 2);
    assert_int_equal(agent_nvml_sample(0, &sample), 0);
    assert_true(isnan(sample.power_w));
    assert_true(isnan(sample.temp_c));
    assert_false(isnan(sample.util_percent));
    assert_false(isnan(sample.mem_used_bytes));
    assert_int_equal(agent_nvml_info(0, &info), 0);
    assert_string_equal(info.uuid, "");
    assert_string_equal(info.name, "NVIDIA Fake GPU 80GB");
    agent_nvml_close();
}

static void init_failure_names_nvml_error(void **state)
{
    char why[512] = "";

    (void)state;
    setenv("NIMDECK_FAKE_NVML_INIT", "9", 1);
    assert_int_equal(agent_nvml_open(why, sizeof(why)), -1);
    assert_string_equal(why, "nvmlInit failed: Driver Not Loaded");
    assert_int_equal(agent_nvml_count(), -1);

    /* A later open, once the driver works, succeeds. */
    unsetenv("NIMDECK_FAKE_NVML_INIT");
    assert_int_equal(agent_nvml_open(why, sizeof(why)), 2);
    agent_nvml_close();
}

static void find_takes_indexes_and_uuids(void **state)
{
    char why[512] = "";

    (void)state;
    assert_int_equal(agent_nvml_open(why, sizeof(why)), 2);
    assert_int_equal(agent_nvml_find("0"), 0);
    assert_int_equal(agent_nvml_find("1"), 1);
    assert_int_equal(agent_nvml_find("2"), -1);
    assert_int_equal(agent_nvml_find("00000000001"), -1);
    assert_int_equal(agent_nvml_find("GPU-fa4e0000-0000-4000-8000-000000000001"), 1);
    assert_int_equal(agent_nvml_find("gpu-FA4E0000-0000-4000-8000-000000000000"), 0);
    assert_int_equal(agent_nvml_find("GPU-fa4e0000-0000-4000-8000-00000000000"), -1);  /* both */
    assert_int_equal(agent_nvml_find("GPU-deadbeef"), -1);
    assert_int_equal(agent_nvml_find(""), -1);
    agent_nvml_close();
}

/* Run this program again with the test library on the search path. */
static int run_with_library(const char *self)
{
    char exe[PATH_MAX], dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n <= 0) {
        fprintf(stderr, "cannot read /proc/self/exe\n");
        return 1;
    }
    exe[n] = '\0';
    /* BUILD/tests/test_agent_nvml → BUILD/fake-nvml */
    snprintf(dir, sizeof(dir), "%s/../fake-nvml", dirname(exe));
    if (access(dir, R_OK) != 0) {
        fprintf(stderr, "%s is missing; build it with `make tests`\n", dir);
        return 1;
    }
    setenv("LD_LIBRARY_PATH", dir, 1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", self, "with-library", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest without[] = {
        cmocka_unit_test(absent_library_is_an_error_with_a_reason),
    };
    const struct CMUnitTest with[] = {
        cmocka_unit_test_setup(open_counts_devices_and_nests, reset_env),
        cmocka_unit_test_setup(info_reads_static_facts, reset_env),
        cmocka_unit_test_setup(sample_reads_changing_values, reset_env),
        cmocka_unit_test_setup(failing_calls_give_nan, reset_env),
        cmocka_unit_test_setup(init_failure_names_nvml_error, reset_env),
        cmocka_unit_test_setup(find_takes_indexes_and_uuids, reset_env),
    };

    if (argc > 1 && strcmp(argv[1], "with-library") == 0)
        return cmocka_run_group_tests_name("nvml with the test library", with, NULL, NULL);

    int failed = cmocka_run_group_tests_name("nvml without a library", without, NULL, NULL);
    return failed | run_with_library(argv[0]);
}
