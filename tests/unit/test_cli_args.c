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
        {"apps", "metrics", "--help"}, {"users", "delete", "--help"}, {"queues", "delete", "--help"},
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

/* Run cli_main with stdin read from stdin_path (when not NULL), stdout
 * dropped and stderr captured into err. */
static int run_captured(int argc, char **argv, const char *stdin_path, char *err, size_t size)
{
    char err_path[] = "/tmp/nimdeck-cli-stderr-XXXXXX";
    int err_fd = mkstemp(err_path);
    assert_true(err_fd >= 0);

    fflush(stdout);
    fflush(stderr);
    int saved_in = dup(STDIN_FILENO), saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    FILE *null = fopen("/dev/null", "w");
    assert_non_null(null);
    dup2(fileno(null), STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    FILE *in = NULL;
    if (stdin_path != NULL) {
        in = fopen(stdin_path, "r");
        assert_non_null(in);
        dup2(fileno(in), STDIN_FILENO);
        clearerr(stdin);
    }

    int rc = cli_main(argc, argv);

    fflush(stdout);
    fflush(stderr);
    dup2(saved_in, STDIN_FILENO);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_in);
    close(saved_out);
    close(saved_err);
    clearerr(stdin);
    fclose(null);
    if (in != NULL)
        fclose(in);

    ssize_t n = pread(err_fd, err, size - 1, 0);
    err[n > 0 ? n : 0] = '\0';
    close(err_fd);
    unlink(err_path);
    return rc;
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

/* cli_append_visible's rendering of text, with newline as given. */
static char *visible(const char *text, const char *newline)
{
    static char out[256];
    buf_t b = BUF_INIT;

    assert_int_equal(cli_append_visible(&b, text, newline), 0);
    snprintf(out, sizeof(out), "%s", b.data != NULL ? b.data : "");
    buf_free(&b);
    return out;
}

static void visible_escapes_c0_controls(void **state)
{
    (void)state;
    assert_string_equal(visible("\033[31mred\033[0m", NULL), "\\x1b[31mred\\x1b[0m");
    assert_string_equal(visible("a\rb", NULL), "a\\x0db");
    assert_string_equal(visible("bell\a", NULL), "bell\\x07");
    assert_string_equal(visible("\x01\x1f", NULL), "\\x01\\x1f");
    assert_string_equal(visible("del\x7f", NULL), "del\\x7f");
}

static void visible_keeps_tab_and_text(void **state)
{
    (void)state;
    assert_string_equal(visible("a\tb", NULL), "a\tb");
    assert_string_equal(visible("plain text ~!@#$%^&*()\\", NULL), "plain text ~!@#$%^&*()\\");
    assert_string_equal(visible("", NULL), "");
}

static void visible_newline_modes(void **state)
{
    (void)state;
    assert_string_equal(visible("one\ntwo", NULL), "one\\x0atwo");
    assert_string_equal(visible("one\ntwo", "\n  "), "one\n  two");
    assert_string_equal(visible("one\r\ntwo", "\n  "), "one\\x0d\n  two");
}

static void visible_escapes_c1_controls(void **state)
{
    (void)state;
    /* U+009B is CSI and U+0085 is NEL when a terminal reads C1 controls. */
    assert_string_equal(visible("\xc2\x9b" "31m", NULL), "\\u009b31m");
    assert_string_equal(visible("\xc2\x80\xc2\x85\xc2\x9f", NULL), "\\u0080\\u0085\\u009f");
    /* U+00A0 and later are text. */
    assert_string_equal(visible("\xc2\xa0\xc2\xa9", NULL), "\xc2\xa0\xc2\xa9");
}

static void visible_keeps_valid_utf8(void **state)
{
    (void)state;
    const char *text = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
    assert_string_equal(visible(text, NULL), text);
}

static void visible_escapes_invalid_utf8(void **state)
{
    (void)state;
    /* A lone 0x9b byte is CSI to a terminal in 8-bit mode. */
    assert_string_equal(visible("a\x9b" "b", NULL), "a\\x9bb");
    assert_string_equal(visible("\xff\xfe", NULL), "\\xff\\xfe");
    /* Overlong NUL, a UTF-16 surrogate, a code point above U+10FFFF. */
    assert_string_equal(visible("\xc0\x80", NULL), "\\xc0\\x80");
    assert_string_equal(visible("\xed\xa0\x80", NULL), "\\xed\\xa0\\x80");
    assert_string_equal(visible("\xf4\x90\x80\x80", NULL), "\\xf4\\x90\\x80\\x80");
    /* A sequence cut short by the end of the text or by a control. */
    assert_string_equal(visible("\xe6\x97", NULL), "\\xe6\\x97");
    assert_string_equal(visible("\xe6\x1b[m", NULL), "\\xe6\\x1b[m");
}

static void json_text_escapes_controls(void **state)
{
    (void)state;
    json_t *value = json_pack("{s:s}", "reason", "a\x7f" "b\xc2\x9b" "c\033d\xc3\xa9");
    json_error_t jerr;

    assert_non_null(value);
    char *text = cli_json_text(value, 0);
    assert_non_null(text);
    assert_string_equal(text, "{\"reason\": \"a\\u007Fb\\u009Bc\\u001Bd\xc3\xa9\"}");

    /* The escaped text is the same JSON. */
    json_t *parsed = json_loads(text, 0, &jerr);
    assert_non_null(parsed);
    assert_true(json_equal(parsed, value));
    json_decref(parsed);
    free(text);
    json_decref(value);
}

static void decimal_parsing(void **state)
{
    (void)state;
    double d = -1;

    assert_int_equal(cli_parse_decimal("30", &d), 0);
    assert_true(d == 30);
    assert_int_equal(cli_parse_decimal("0.5", &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(cli_parse_decimal("0.0000116", &d), 0);
    assert_int_equal(cli_parse_decimal("007", &d), 0);
    assert_true(d == 7);

    const char *rejected[] = {"0x10", "1e-300", "1E3", "-1", "+1", " 1", "1 ", "1.", ".5",
                              "1.2.3", "inf", "nan", "", "1,5", "0x1p4"};
    for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++)
        assert_int_equal(cli_parse_decimal(rejected[i], &d), -1);
    assert_int_equal(cli_parse_decimal(NULL, &d), -1);
}

static void tokens_days_range(void **state)
{
    (void)state;
    char err[2048];
    const char *rejected[] = {"0x10", "1e-300", "0", "0.0", "0.0000115", "3650.0001", "3651",
                              "-1", "1e3", "inf"};
    const char *accepted[] = {"0.0000116", "0.5", "30", "3650"};

    for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++) {
        char *argv[] = {"tokens", "create", "--days", (char *)rejected[i],
                        "--server", "http://127.0.0.1:1", "--token", "t"};
        assert_int_equal(run_captured(8, argv, NULL, err, sizeof(err)), CLI_USAGE);
        assert_non_null(strstr(err, rejected[i]));
        assert_non_null(strstr(err, "from 0.0000116 (1 second) to 3650"));
    }

    /* Accepted values go on to the server, which is unreachable here. */
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        char *argv[] = {"tokens", "create", "--days", (char *)accepted[i],
                        "--server", "http://127.0.0.1:1", "--token", "t"};
        assert_int_equal(run_captured(8, argv, NULL, err, sizeof(err)), CLI_FAILED);
    }
}

static void tokens_embed_needs_instance(void **state)
{
    (void)state;
    char err[2048];
    char *no_instance[] = {"tokens", "create", "--scope", "embed",
                           "--server", "http://127.0.0.1:1", "--token", "t"};
    char *with_instance[] = {"tokens", "create", "--scope", "embed", "--instance", "abc",
                             "--server", "http://127.0.0.1:1", "--token", "t"};
    char *not_embed[] = {"tokens", "create", "--instance", "abc",
                         "--server", "http://127.0.0.1:1", "--token", "t"};

    assert_int_equal(run_captured(8, no_instance, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "--instance ID"));
    assert_non_null(strstr(err, "[--instance ID]"));
    assert_null(strstr(err, "instance_id"));

    assert_int_equal(run_captured(10, with_instance, NULL, err, sizeof(err)), CLI_FAILED);

    assert_int_equal(run_captured(8, not_embed, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "--scope embed"));
}

static void new_commands_usage(void **state)
{
    (void)state;
    char err[2048];
    char *help[][3] = {
        {"users", "delete", "--help"}, {"users", "revoke", "--help"},
        {"queues", "delete", "--help"}, {"tokens", "list", "--help"},
    };
    char *delete_no_name[] = {"users", "delete"};
    char *delete_bad_name[] = {"users", "delete", "a/b"};
    char *revoke_one[] = {"users", "revoke", "bob"};
    char *revoke_extra[] = {"users", "revoke", "bob", "p", "read"};
    char *queue_no_name[] = {"queues", "delete"};

    for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++)
        assert_int_equal(run_quiet(3, help[i]), CLI_OK);

    assert_int_equal(run_captured(2, delete_no_name, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "needs NAME"));
    assert_int_equal(run_captured(3, delete_bad_name, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "'a/b'"));
    assert_int_equal(run_captured(3, revoke_one, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "NAME PROJECT"));
    assert_int_equal(run_captured(5, revoke_extra, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "'read'"));
    assert_int_equal(run_captured(2, queue_no_name, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "needs NAME"));
}

static void logs_json_option(void **state)
{
    (void)state;
    char err[2048];
    char *json[] = {"apps", "logs", "x", "--json", "--server", "http://127.0.0.1:1", "--token", "t"};
    char *follow[] = {"apps", "logs", "x", "--json", "--follow",
                      "--server", "http://127.0.0.1:1", "--token", "t"};
    char *with_value[] = {"apps", "logs", "x", "--json=yes"};
    char *misspelt[] = {"apps", "logs", "x", "--jsn"};

    /* Accepted: the command gets as far as the (unreachable) server. */
    assert_int_equal(run_quiet(8, json), CLI_FAILED);
    assert_int_equal(run_quiet(9, follow), CLI_FAILED);
    assert_int_equal(run_captured(4, with_value, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "--json"));
    assert_int_equal(run_captured(4, misspelt, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "--jsn"));
}

static void empty_argument_rejected(void **state)
{
    (void)state;
    char err[2048];
    char *show[] = {"apps", "show", "", "--server", "http://127.0.0.1:1", "--token", "t"};
    char *grant[] = {"users", "grant", "erin", "", "read"};

    /* Rejected before any request, so the unreachable server is never asked. */
    assert_int_equal(run_captured(7, show, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "ID must not be empty"));
    assert_null(strstr(err, "/api/v1/apps/"));
    assert_int_equal(run_captured(5, grant, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "PROJECT must not be empty"));
}

/* Capture what a function writes to a stream into out. */
static void capture_commands(char *out, size_t size)
{
    FILE *file = tmpfile();
    assert_non_null(file);
    cli_print_commands(file);
    size_t n = (size_t)ftell(file);
    rewind(file);
    n = fread(out, 1, n < size - 1 ? n : size - 1, file);
    out[n] = '\0';
    fclose(file);
}

static void summaries_list_new_commands(void **state)
{
    (void)state;
    char text[4096];

    capture_commands(text, sizeof(text));
    assert_non_null(strstr(text, "create, list and delete queues"));
    assert_non_null(strstr(text, "add, delete and list users; grant and revoke"));
}

static void launch_names_source(void **state)
{
    (void)state;
    char err[2048];
    char bad[] = "/tmp/nimdeck-cli-named-XXXXXX";
    char empty[] = "/tmp/nimdeck-cli-empty-file-XXXXXX";
    char dir[] = "/tmp/nimdeck-cli-dir-XXXXXX";
    write_temp(bad, "{\"name\":\"x\",\"project\":\"p\",\"runtime\":\"process\",\"command\":[\"a\"],"
                    "\"idle_hours\":1}");
    write_temp(empty, "");
    assert_non_null(mkdtemp(dir));

    char *from_file[] = {"launch", "--config", bad, "--server", "http://127.0.0.1:1", "--token", "t"};
    char *from_stdin[] = {"launch", "--config", "-", "--server", "http://127.0.0.1:1", "--token", "t"};
    char *from_dir[] = {"launch", "--config", dir, "--server", "http://127.0.0.1:1", "--token", "t"};
    char *from_empty[] = {"launch", "--config", empty, "--server", "http://127.0.0.1:1", "--token", "t"};

    assert_int_equal(run_captured(7, from_file, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, bad));
    assert_non_null(strstr(err, "idle_hours"));

    assert_int_equal(run_captured(7, from_stdin, bad, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "error: standard input: "));
    assert_null(strstr(err, "'-'"));

    assert_int_equal(run_captured(7, from_stdin, empty, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "standard input is empty"));

    assert_int_equal(run_captured(7, from_dir, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "is a directory"));
    assert_null(strstr(err, "JSON:"));

    assert_int_equal(run_captured(7, from_empty, NULL, err, sizeof(err)), CLI_USAGE);
    assert_non_null(strstr(err, "is empty"));

    unlink(bad);
    unlink(empty);
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
        cmocka_unit_test(visible_escapes_c0_controls),
        cmocka_unit_test(visible_keeps_tab_and_text),
        cmocka_unit_test(visible_newline_modes),
        cmocka_unit_test(visible_escapes_c1_controls),
        cmocka_unit_test(visible_keeps_valid_utf8),
        cmocka_unit_test(visible_escapes_invalid_utf8),
        cmocka_unit_test(json_text_escapes_controls),
        cmocka_unit_test(decimal_parsing),
        cmocka_unit_test(tokens_days_range),
        cmocka_unit_test(tokens_embed_needs_instance),
        cmocka_unit_test(new_commands_usage),
        cmocka_unit_test(summaries_list_new_commands),
        cmocka_unit_test(logs_json_option),
        cmocka_unit_test(empty_argument_rejected),
        cmocka_unit_test(launch_names_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
