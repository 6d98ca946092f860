/* Unit tests for the client commands' argument handling, connection
 * settings and exit statuses that need no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli_internal.h"

static const cli_option_spec_t specs[] = {
    {"config", 1}, {"set", 1}, {"json", 0}, {NULL, 0},
};

static int parse(cli_args_t *args, char *error, size_t size, int argc, char **argv)
{
    return cli_parse_args(argc, argv, specs, args, error, size);
}

static void args_options_and_positionals(void **state)
{
    (void)state;
    char *argv[] = {"launch", "--config", "a.json", "ID", "--set=x=1", "--json", "--set", "y=2"};
    cli_args_t args;
    char error[256];

    assert_int_equal(parse(&args, error, sizeof(error), 8, argv), 0);
    assert_int_equal(args.positional_count, 1);
    assert_string_equal(args.positional[0], "ID");
    assert_string_equal(cli_option(&args, "config"), "a.json");
    assert_string_equal(cli_option(&args, "set"), "y=2");
    assert_true(cli_flag(&args, "json"));
    assert_int_equal(args.option_count, 4);
    assert_string_equal(args.options[1].value, "x=1");
}

static void args_unknown_option(void **state)
{
    (void)state;
    char *argv[] = {"launch", "--confg", "a.json"};
    cli_args_t args;
    char error[256];

    assert_int_equal(parse(&args, error, sizeof(error), 3, argv), -1);
    assert_non_null(strstr(error, "--confg"));
}

static void args_missing_value(void **state)
{
    (void)state;
    char *argv[] = {"launch", "--config"};
    char *argv2[] = {"launch", "--config", "--json"};
    cli_args_t args;
    char error[256];

    assert_int_equal(parse(&args, error, sizeof(error), 2, argv), -1);
    assert_non_null(strstr(error, "--config needs a value"));
    assert_int_equal(parse(&args, error, sizeof(error), 3, argv2), -1);
}

static void args_flag_with_value(void **state)
{
    (void)state;
    char *argv[] = {"apps", "--json=1"};
    cli_args_t args;
    char error[256];

    assert_int_equal(parse(&args, error, sizeof(error), 2, argv), -1);
    assert_non_null(strstr(error, "takes no value"));
}

static void args_help_wins(void **state)
{
    (void)state;
    char *argv[] = {"launch", "--bogus", "-h"};
    cli_args_t args;
    char error[256];

    assert_int_equal(parse(&args, error, sizeof(error), 3, argv), 0);
    assert_true(args.help);
}

static void args_double_dash(void **state)
{
    (void)state;
    char *argv[] = {"vault", "--", "--json", "-x"};
    cli_args_t args;
    char error[256];

    assert_int_equal(parse(&args, error, sizeof(error), 4, argv), 0);
    assert_int_equal(args.positional_count, 2);
    assert_string_equal(args.positional[0], "--json");
    assert_false(cli_flag(&args, "json"));
}

static void args_connection_options(void **state)
{
    (void)state;
    char *argv[] = {"apps", "--server", "http://h:1/", "--token=abc"};
    cli_args_t args;
    char error[256], server[256];
    char *token = NULL;

    assert_int_equal(parse(&args, error, sizeof(error), 4, argv), 0);
    assert_int_equal(cli_resolve_connection(&args, server, sizeof(server), &token), 0);
    assert_string_equal(server, "http://h:1");
    assert_string_equal(token, "abc");
    free(token);
}

static void connection_from_environment(void **state)
{
    (void)state;
    char *argv[] = {"apps"};
    cli_args_t args;
    char error[256], server[256];
    char *token = NULL;

    setenv("NIMDECK_SERVER", "127.0.0.1:9", 1);
    setenv("NIMDECK_TOKEN", "env-token", 1);
    assert_int_equal(parse(&args, error, sizeof(error), 1, argv), 0);
    assert_int_equal(cli_resolve_connection(&args, server, sizeof(server), &token), 0);
    assert_string_equal(server, "http://127.0.0.1:9");
    assert_string_equal(token, "env-token");
    free(token);
    unsetenv("NIMDECK_SERVER");
    unsetenv("NIMDECK_TOKEN");
}

static void connection_token_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/nimdeck-cli-test-XXXXXX";
    char path[256], server[256], error[256];
    char *argv[] = {"apps"};
    cli_args_t args;
    char *token = NULL;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/admin-token", dir);
    setenv("NIMDECK_DATA", dir, 1);
    unsetenv("NIMDECK_TOKEN");
    unsetenv("NIMDECK_SERVER");
    assert_int_equal(parse(&args, error, sizeof(error), 1, argv), 0);

    /* No file yet: no token. */
    assert_int_equal(cli_resolve_connection(&args, server, sizeof(server), &token), -1);
    assert_null(token);
    assert_string_equal(server, CLI_DEFAULT_SERVER);

    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs("nd_filetoken\n", file);
    fclose(file);
    assert_int_equal(cli_resolve_connection(&args, server, sizeof(server), &token), 0);
    assert_string_equal(token, "nd_filetoken");
    free(token);

    unlink(path);
    rmdir(dir);
    unsetenv("NIMDECK_DATA");
}

static void escape_path_segment(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;

    assert_int_equal(cli_path(&b, "apps/", "a b/../c", "/stop"), 0);
    assert_string_equal(b.data, "/api/v1/apps/a%20b%2F..%2Fc/stop");
    buf_free(&b);
}

static void duration_formats(void **state)
{
    (void)state;
    char text[32];

    cli_format_duration(12.4, text, sizeof(text));
    assert_string_equal(text, "12s");
    cli_format_duration(59.9, text, sizeof(text));
    assert_string_equal(text, "59s");
    cli_format_duration(303, text, sizeof(text));
    assert_string_equal(text, "5m03s");
    cli_format_duration(7500, text, sizeof(text));
    assert_string_equal(text, "2h05m");
    cli_format_duration(90000, text, sizeof(text));
    assert_string_equal(text, "1d01h");
}

static void time_format_rfc3339(void **state)
{
    (void)state;
    char text[40];
    json_t *ms = json_integer(1733300000123);

    cli_format_time(ms, text, sizeof(text));
    assert_string_equal(text, "2024-12-04T08:13:20.123Z");
    cli_format_time(json_null(), text, sizeof(text));
    assert_string_equal(text, "-");
    json_decref(ms);
}

static void number_parsing(void **state)
{
    (void)state;
    double d;
    long l;

    assert_int_equal(cli_parse_double("0.0001", &d), 0);
    assert_int_equal(cli_parse_double("1x", &d), -1);
    assert_int_equal(cli_parse_double("nan", &d), -1);
    assert_int_equal(cli_parse_double("", &d), -1);
    assert_int_equal(cli_parse_long("60", &l), 0);
    assert_int_equal(l, 60);
    assert_int_equal(cli_parse_long("6.5", &l), -1);
}

/* Run cli_main with stdout and stderr sent to /dev/null. */
static int run_quiet(int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    int out = dup(STDOUT_FILENO), err = dup(STDERR_FILENO);
    FILE *null = fopen("/dev/null", "w");
    dup2(fileno(null), STDOUT_FILENO);
    dup2(fileno(null), STDERR_FILENO);

    int rc = cli_main(argc, argv);

    fflush(stdout);
    fflush(stderr);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    close(out);
    close(err);
    fclose(null);
    return rc;
}

static void main_not_client_command(void **state)
{
    (void)state;
    char *argv[] = {"server"};
    assert_int_equal(run_quiet(1, argv), -1);
}

static void main_help_exits_zero(void **state)
{
    (void)state;
    char *groups[][3] = {
        {"launch", "--help", NULL}, {"apps", "--help", NULL}, {"apps", "logs", "--help"},
        {"tokens", "create", "-h"}, {"vault", "set", "--help"}, {"users", "grant", "--help"},
        {"routes", "--help", NULL}, {"queues", "list", "--help"}, {"agents", "list", "--help"},
        {"apps", "metrics", "--help"},
    };

    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        int argc = groups[i][2] != NULL ? 3 : 2;
        assert_int_equal(run_quiet(argc, groups[i]), CLI_OK);
    }
}

static void main_usage_errors(void **state)
{
    (void)state;
    char *missing_sub[] = {"apps"};
    char *unknown_sub[] = {"apps", "frob"};
    char *missing_id[] = {"apps", "show"};
    char *extra_arg[] = {"apps", "show", "a", "b"};
    char *bad_option[] = {"apps", "list", "--jsn"};
    char *bad_days[] = {"tokens", "create", "--days", "-1"};
    char *bad_scope[] = {"tokens", "create", "--scope", "admin"};
    char *bad_permission[] = {"users", "grant", "u", "p", "owner"};
    char *bad_step[] = {"apps", "metrics", "x", "--step", "0"};
    char *timeout_alone[] = {"apps", "stop", "x", "--timeout", "5"};
    char *no_config[] = {"launch"};

    assert_int_equal(run_quiet(1, missing_sub), CLI_USAGE);
    assert_int_equal(run_quiet(2, unknown_sub), CLI_USAGE);
    assert_int_equal(run_quiet(2, missing_id), CLI_USAGE);
    assert_int_equal(run_quiet(4, extra_arg), CLI_USAGE);
    assert_int_equal(run_quiet(3, bad_option), CLI_USAGE);
    assert_int_equal(run_quiet(4, bad_days), CLI_USAGE);
    assert_int_equal(run_quiet(4, bad_scope), CLI_USAGE);
    assert_int_equal(run_quiet(5, bad_permission), CLI_USAGE);
    assert_int_equal(run_quiet(5, bad_step), CLI_USAGE);
    assert_int_equal(run_quiet(5, timeout_alone), CLI_USAGE);
    assert_int_equal(run_quiet(1, no_config), CLI_USAGE);
}

/* Write text to a fresh temporary file; the caller unlinks path. */
static void write_temp(char *path, const char *text)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void launch_rejects_locally(void **state)
{
    (void)state;
    char bad[] = "/tmp/nimdeck-cli-bad-XXXXXX";
    char not_json[] = "/tmp/nimdeck-cli-notjson-XXXXXX";
    write_temp(bad, "{\"name\":\"x\",\"project\":\"p\",\"runtime\":\"process\",\"command\":[\"a\"],"
                    "\"idle_hours\":1}");
    write_temp(not_json, "{\"name\":");

    /* No server listens on port 1: reaching it would exit 1, not 2. */
    char *invalid[] = {"launch", "--config", bad, "--server", "http://127.0.0.1:1", "--token", "t"};
    char *broken[] = {"launch", "--config", not_json, "--server", "http://127.0.0.1:1", "--token", "t"};
    char *missing[] = {"launch", "--config", "/nonexistent/c.json", "--token", "t"};
    char *bad_set[] = {"launch", "--config", bad, "--unset", "idle_hours", "--set", "port=0",
                       "--server", "http://127.0.0.1:1", "--token", "t"};
    char *no_equals[] = {"launch", "--config", bad, "--set", "port", "--token", "t"};

    assert_int_equal(run_quiet(7, invalid), CLI_USAGE);
    assert_int_equal(run_quiet(7, broken), CLI_USAGE);
    assert_int_equal(run_quiet(5, missing), CLI_USAGE);
    assert_int_equal(run_quiet(11, bad_set), CLI_USAGE);
    assert_int_equal(run_quiet(7, no_equals), CLI_USAGE);

    unlink(bad);
    unlink(not_json);
}

static void launch_unreachable_server(void **state)
{
    (void)state;
    char good[] = "/tmp/nimdeck-cli-good-XXXXXX";
    write_temp(good, "{\"name\":\"x\",\"project\":\"p\",\"runtime\":\"process\",\"command\":[\"a\"],"
                     "\"idle_hours\":1}");

    char *argv[] = {"launch", "--config", good, "--unset", "idle_hours",
                    "--server", "http://127.0.0.1:1", "--token", "t"};
    assert_int_equal(run_quiet(9, argv), CLI_FAILED);
    unlink(good);
}

static void missing_token_is_usage(void **state)
{
    (void)state;
    char dir[] = "/tmp/nimdeck-cli-empty-XXXXXX";
    char *argv[] = {"apps", "list", "--server", "http://127.0.0.1:1"};

    assert_non_null(mkdtemp(dir));
    setenv("NIMDECK_DATA", dir, 1);
    unsetenv("NIMDECK_TOKEN");
    assert_int_equal(run_quiet(4, argv), CLI_USAGE);
    unsetenv("NIMDECK_DATA");
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(args_options_and_positionals),
        cmocka_unit_test(args_unknown_option),
        cmocka_unit_test(args_missing_value),
        cmocka_unit_test(args_flag_with_value),
        cmocka_unit_test(args_help_wins),
        cmocka_unit_test(args_double_dash),
        cmocka_unit_test(args_connection_options),
        cmocka_unit_test(connection_from_environment),
        cmocka_unit_test(connection_token_file),
        cmocka_unit_test(escape_path_segment),
        cmocka_unit_test(duration_formats),
        cmocka_unit_test(time_format_rfc3339),
        cmocka_unit_test(number_parsing),
        cmocka_unit_test(main_not_client_command),
        cmocka_unit_test(main_help_exits_zero),
        cmocka_unit_test(main_usage_errors),
        cmocka_unit_test(launch_rejects_locally),
        cmocka_unit_test(launch_unreachable_server),
        cmocka_unit_test(missing_token_is_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
