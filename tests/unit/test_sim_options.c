/* Unit tests for `nimdeck sim` option parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_options.h"

static int clear_env(void **state)
{
    (void)state;
    unsetenv("NIM_SERVER_PORT");
    unsetenv("PORT");
    unsetenv("NIM_SERVED_MODEL_NAME");
    return 0;
}

/* Parse the NULL-terminated option list that follows err. */
static int parse_args(sim_options_t *opt, char *err, size_t err_size, ...)
{
    char *argv[16] = {"sim"};
    int argc = 1;
    va_list ap;

    va_start(ap, err_size);
    for (char *arg = va_arg(ap, char *); arg != NULL && argc < 16; arg = va_arg(ap, char *))
        argv[argc++] = arg;
    va_end(ap);
    return sim_options_parse(argc, argv, opt, err, err_size);
}

#define PARSE(opt, err, ...) parse_args((opt), (err), sizeof(err), __VA_ARGS__, (char *)NULL)

static void defaults(void **state)
{
    (void)state;
    sim_options_t opt;
    char err[256];
    char *argv[] = {"sim"};

    assert_int_equal(sim_options_parse(1, argv, &opt, err, sizeof(err)), 0);
    assert_string_equal(opt.host, "127.0.0.1");
    assert_int_equal(opt.port, 8000);
    assert_true(opt.load_seconds == 5.0);
    assert_true(opt.tokens_per_second == 50.0);
    assert_string_equal(opt.model, SIM_DEFAULT_MODEL);
    assert_int_equal(opt.embedding_dim, 16);
}

static void all_options(void **state)
{
    (void)state;
    sim_options_t opt;
    char err[256];

    assert_int_equal(PARSE(&opt, err, "--port", "0", "--host=0.0.0.0", "--load-seconds", "0.25",
                           "--tokens-per-second=1000", "--model", "org/m", "--embedding-dim",
                           "384"),
                     0);
    assert_int_equal(opt.port, 0);
    assert_string_equal(opt.host, "0.0.0.0");
    assert_true(opt.load_seconds == 0.25);
    assert_true(opt.tokens_per_second == 1000.0);
    assert_string_equal(opt.model, "org/m");
    assert_int_equal(opt.embedding_dim, 384);
}

static void environment_defaults(void **state)
{
    (void)state;
    sim_options_t opt;
    char err[256];
    char *argv[] = {"sim"};

    setenv("PORT", "23456", 1);
    assert_int_equal(sim_options_parse(1, argv, &opt, err, sizeof(err)), 0);
    assert_int_equal(opt.port, 23456);

    setenv("NIM_SERVER_PORT", "23457", 1);
    setenv("NIM_SERVED_MODEL_NAME", "meta/llama", 1);
    assert_int_equal(sim_options_parse(1, argv, &opt, err, sizeof(err)), 0);
    assert_int_equal(opt.port, 23457);
    assert_string_equal(opt.model, "meta/llama");

    /* Options win over the environment. */
    assert_int_equal(PARSE(&opt, err, "--port", "23458", "--model", "x"), 0);
    assert_int_equal(opt.port, 23458);
    assert_string_equal(opt.model, "x");
    clear_env(NULL);
}

static void bad_environment_port(void **state)
{
    (void)state;
    sim_options_t opt;
    char err[256];
    char *argv[] = {"sim"};

    setenv("NIM_SERVER_PORT", "eighty", 1);
    assert_int_equal(sim_options_parse(1, argv, &opt, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NIM_SERVER_PORT"));
    assert_non_null(strstr(err, "eighty"));

    /* An explicit --port makes the variable irrelevant. */
    assert_int_equal(PARSE(&opt, err, "--port", "23459"), 0);
    clear_env(NULL);
}

static void bad_values_named(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"--port", "70000"},          {"--port", "80a"},           {"--port", "-1"},
        {"--load-seconds", "-1"},     {"--load-seconds", "soon"},  {"--load-seconds", "nan"},
        {"--tokens-per-second", "0"}, {"--tokens-per-second", "inf"},
        {"--embedding-dim", "0"},     {"--embedding-dim", "9000"}, {"--model", ""},
        {"--host", ""},
    };
    sim_options_t opt;
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = {"sim", (char *)cases[i][0], (char *)cases[i][1]};

        assert_int_equal(sim_options_parse(3, argv, &opt, err, sizeof(err)), -1);
        assert_non_null(strstr(err, cases[i][0]));
        assert_non_null(strstr(err, cases[i][1]));
    }
}

static void usage_errors(void **state)
{
    (void)state;
    sim_options_t opt;
    char err[256];

    assert_int_equal(PARSE(&opt, err, "--bogus", "1"), -1);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(PARSE(&opt, err, "--bogus=1"), -1);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(PARSE(&opt, err, "--port"), -1);
    assert_non_null(strstr(err, "--port"));
    assert_int_equal(PARSE(&opt, err, "extra"), -1);
    assert_non_null(strstr(err, "extra"));
}

static void help_requested(void **state)
{
    (void)state;
    sim_options_t opt;
    char err[256];

    assert_int_equal(PARSE(&opt, err, "--help"), 1);
    assert_int_equal(PARSE(&opt, err, "--port", "1", "-h"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults, clear_env),
        cmocka_unit_test_setup(all_options, clear_env),
        cmocka_unit_test_setup(environment_defaults, clear_env),
        cmocka_unit_test_setup(bad_environment_port, clear_env),
        cmocka_unit_test_setup(bad_values_named, clear_env),
        cmocka_unit_test_setup(usage_errors, clear_env),
        cmocka_unit_test_setup(help_requested, clear_env),
    };
    return cmocka_run_group_tests_name("sim_options", tests, NULL, NULL);
}
