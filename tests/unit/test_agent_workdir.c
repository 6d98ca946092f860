/* Unit tests for the private working directories of process instances:
 * creation and a removal that never follows symbolic links. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent_workdir.h"

static char base[] = "/tmp/nimdeck-test-wd-XXXXXX";

static void write_file(const char *path)
{
    FILE *file = fopen(path, "w");

    assert_non_null(file);
    fputs("data\n", file);
    fclose(file);
}

static int exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static void workdir_create_private(void **state)
{
    char path[512], err[256] = "", prefix[512];
    struct stat st;

    (void)state;
    assert_int_equal(setenv("TMPDIR", base, 1), 0);
    assert_int_equal(agent_workdir_create("host/1", "a b", path, sizeof(path), err, sizeof(err)), 0);
    snprintf(prefix, sizeof(prefix), "%s/nimdeck-host_1-a_b-", base);
    assert_int_equal(strncmp(path, prefix, strlen(prefix)), 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    /* A second instance of the same ids gets a directory of its own. */
    char second[512];
    assert_int_equal(agent_workdir_create("host/1", "a b", second, sizeof(second), err,
                                          sizeof(err)), 0);
    assert_string_not_equal(path, second);
    assert_int_equal(agent_workdir_remove(path), 0);
    assert_int_equal(agent_workdir_remove(second), 0);
    assert_false(exists(path));
}

static void workdir_create_reports_failure(void **state)
{
    char path[512], err[256] = "";

    (void)state;
    assert_int_equal(setenv("TMPDIR", "/nonexistent/nimdeck-test", 1), 0);
    assert_int_equal(agent_workdir_create("a", "b", path, sizeof(path), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/nimdeck-test"));
    assert_non_null(strstr(err, "TMPDIR"));
    assert_int_equal(setenv("TMPDIR", base, 1), 0);
}

static void workdir_remove_keeps_link_targets(void **state)
{
    char target[512], target_file[600], dir[512], path[700];

    (void)state;
    snprintf(target, sizeof(target), "%s/target", base);
    assert_int_equal(mkdir(target, 0700), 0);
    snprintf(target_file, sizeof(target_file), "%s/keep", target);
    write_file(target_file);

    snprintf(dir, sizeof(dir), "%s/nimdeck-tree", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/a", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/a/b", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/a/b/file", dir);
    write_file(path);
    snprintf(path, sizeof(path), "%s/a/dir-link", dir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/file-link", dir);
    assert_int_equal(symlink(target_file, path), 0);

    assert_int_equal(agent_workdir_remove(dir), 0);
    assert_false(exists(dir));
    assert_true(exists(target_file));
}

static void workdir_remove_link_itself(void **state)
{
    char target[512], target_file[600], link[512];

    (void)state;
    snprintf(target, sizeof(target), "%s/target2", base);
    assert_int_equal(mkdir(target, 0700), 0);
    snprintf(target_file, sizeof(target_file), "%s/keep", target);
    write_file(target_file);
    snprintf(link, sizeof(link), "%s/nimdeck-link", base);
    assert_int_equal(symlink(target, link), 0);

    assert_int_equal(agent_workdir_remove(link), 0);
    assert_false(exists(link));
    assert_true(exists(target_file));
}

static void workdir_remove_missing(void **state)
{
    char path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/nimdeck-never-made", base);
    assert_int_equal(agent_workdir_remove(path), 0);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(base) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("TMPDIR");
    return agent_workdir_remove(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(workdir_create_private),
        cmocka_unit_test(workdir_create_reports_failure),
        cmocka_unit_test(workdir_remove_keeps_link_targets),
        cmocka_unit_test(workdir_remove_link_itself),
        cmocka_unit_test(workdir_remove_missing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
