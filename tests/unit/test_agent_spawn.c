/* Unit tests for building a process instance's argv and environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent_spawn.h"

static void argv_replaces_every_port(void **state)
{
    json_t *command = json_pack("[s, s, s, s]", "server", "--port={port}", "{port}:{port}", "x");
    char err[256] = "";
    char **argv = agent_spawn_argv(command, 24567, NULL, err, sizeof(err));

    (void)state;
    assert_non_null(argv);
    assert_string_equal(argv[0], "server");
    assert_string_equal(argv[1], "--port=24567");
    assert_string_equal(argv[2], "24567:24567");
    assert_string_equal(argv[3], "x");
    assert_null(argv[4]);
    agent_spawn_free(argv);
    json_decref(command);
}

static void argv_nimdeck_becomes_self(void **state)
{
    json_t *command = json_pack("[s, s, s]", "nimdeck", "sim", "nimdeck");
    char err[256] = "";
    char **argv = agent_spawn_argv(command, 1, "/opt/bin/nimdeck-self", err, sizeof(err));

    (void)state;
    assert_non_null(argv);
    assert_string_equal(argv[0], "/opt/bin/nimdeck-self");
    assert_string_equal(argv[1], "sim");
    assert_string_equal(argv[2], "nimdeck");
    agent_spawn_free(argv);
    json_decref(command);
}

static void argv_nimdeck_prefix_kept(void **state)
{
    json_t *command = json_pack("[s]", "nimdeck2");
    char err[256] = "";
    char **argv = agent_spawn_argv(command, 1, "/self", err, sizeof(err));

    (void)state;
    assert_non_null(argv);
    assert_string_equal(argv[0], "nimdeck2");
    agent_spawn_free(argv);
    json_decref(command);
}

static void argv_rejects_non_string(void **state)
{
    json_t *command = json_pack("[s, i]", "server", 5);
    json_t *empty = json_array();
    char err[256] = "";

    (void)state;
    assert_null(agent_spawn_argv(command, 1, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "command[1]"));
    assert_null(agent_spawn_argv(empty, 1, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "non-empty"));
    json_decref(command);
    json_decref(empty);
}

static void env_merge_order(void **state)
{
    char *base[] = {"PATH=/bin", "HOME=/root", "PORT=1", "MODEL=base", NULL};
    json_t *overrides = json_pack("{s:s, s:s, s:n, s:i, s:b}", "MODEL", "override", "NEW", "v=1",
                                  "FROM_VAULT", "COUNT", 3, "FLAG", 1);
    char **env = agent_spawn_env(base, overrides, 24001);
    size_t count = 0;

    (void)state;
    assert_non_null(env);
    assert_string_equal(agent_spawn_env_get(env, "PATH"), "/bin");
    assert_string_equal(agent_spawn_env_get(env, "MODEL"), "override");
    assert_string_equal(agent_spawn_env_get(env, "NEW"), "v=1");
    assert_string_equal(agent_spawn_env_get(env, "COUNT"), "3");
    assert_string_equal(agent_spawn_env_get(env, "FLAG"), "true");
    assert_null(agent_spawn_env_get(env, "FROM_VAULT"));
    assert_string_equal(agent_spawn_env_get(env, "PORT"), "24001");
    assert_string_equal(agent_spawn_env_get(env, "NIM_SERVER_PORT"), "24001");
    while (env[count] != NULL)
        count++;
    /* PATH HOME PORT MODEL, then NEW COUNT FLAG, then NIM_SERVER_PORT. */
    assert_int_equal(count, 8);
    agent_spawn_free(env);
    json_decref(overrides);
}

static void env_skips_bad_names(void **state)
{
    char *base[] = {"NOEQUALS", "A=1", NULL};
    json_t *overrides = json_pack("{s:s, s:s}", "B=C", "x", "", "y");
    char **env = agent_spawn_env(base, overrides, 2);

    (void)state;
    assert_non_null(env);
    assert_string_equal(env[0], "A=1");
    assert_string_equal(env[1], "PORT=2");
    assert_string_equal(env[2], "NIM_SERVER_PORT=2");
    assert_null(env[3]);
    agent_spawn_free(env);
    json_decref(overrides);
}

static void env_drops_agent_settings(void **state)
{
    char *base[] = {"NIMDECK_TOKEN=nd_admin_secret", "NIMDECK_SERVER=http://127.0.0.1:1",
                    "NIMDECK_DATA=/var/lib/nimdeck", "NIMDECK_LOG_LEVEL=debug", "HOME=/root",
                    "NIMDECKX=kept", NULL};
    json_t *overrides = json_pack("{s:s}", "NIMDECK_MODE", "from-config");
    char **env = agent_spawn_env(base, overrides, 3);

    (void)state;
    assert_non_null(env);
    assert_null(agent_spawn_env_get(env, "NIMDECK_TOKEN"));
    assert_null(agent_spawn_env_get(env, "NIMDECK_SERVER"));
    assert_null(agent_spawn_env_get(env, "NIMDECK_DATA"));
    assert_null(agent_spawn_env_get(env, "NIMDECK_LOG_LEVEL"));
    assert_string_equal(agent_spawn_env_get(env, "HOME"), "/root");
    assert_string_equal(agent_spawn_env_get(env, "NIMDECKX"), "kept");
    assert_string_equal(agent_spawn_env_get(env, "NIMDECK_MODE"), "from-config");
    for (size_t i = 0; env[i] != NULL; i++)
        assert_null(strstr(env[i], "nd_admin_secret"));
    agent_spawn_free(env);
    json_decref(overrides);
}

static void free_port_is_usable(void **state)
{
    char err[256] = "";
    int port = agent_spawn_free_port(err, sizeof(err));

    (void)state;
    assert_true(port > 0);
    assert_true(port < 65536);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(argv_replaces_every_port),
        cmocka_unit_test(argv_nimdeck_becomes_self),
        cmocka_unit_test(argv_nimdeck_prefix_kept),
        cmocka_unit_test(argv_rejects_non_string),
        cmocka_unit_test(env_merge_order),
        cmocka_unit_test(env_skips_bad_names),
        cmocka_unit_test(env_drops_agent_settings),
        cmocka_unit_test(free_port_is_usable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
