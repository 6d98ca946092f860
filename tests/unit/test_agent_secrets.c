/* Unit tests for a lease's secrets: the mask set with the agent's own token,
 * and the warning about secrets too short to mask. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/agent_internal.h"
#include "agent/agent_secrets.h"
#include "util/buf.h"

#define AGENT_TOKEN "nd_agent_admin_token_value"

static json_t *lease_with(const char *env_json, const char *secrets_json)
{
    json_t *lease = json_pack("{s:s, s:{s:s}, s:o, s:o}", "id", "inst-s", "config", "runtime",
                              "process", "env", json_loads(env_json, 0, NULL), "secrets",
                              json_loads(secrets_json, 0, NULL));

    assert_non_null(lease);
    return lease;
}

static char *mask_text(mask_set_t *mask, const char *text)
{
    buf_t out = BUF_INIT;

    assert_int_equal(mask_apply(mask, text, strlen(text), &out), 0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    return buf_steal(&out);
}

static void collect_adds_agent_token(void **state)
{
    json_t *lease = lease_with("{\"API_KEY\": \"lease-secret\"}", "[\"lease-secret\", \"\"]");
    mask_set_t *mask = NULL;
    const char **values = NULL;

    (void)state;
    assert_int_equal(agent_secrets_collect(lease, AGENT_TOKEN, &mask, &values), 0);
    assert_string_equal(values[0], "lease-secret");
    assert_string_equal(values[1], AGENT_TOKEN);
    assert_null(values[2]);

    char *masked = mask_text(mask, "a lease-secret and " AGENT_TOKEN " end");
    assert_string_equal(masked, "a **** and **** end");
    free(masked);
    mask_set_free(mask);
    free(values);
    json_decref(lease);
}

static void collect_without_extra(void **state)
{
    json_t *lease = lease_with("{}", "[]");
    mask_set_t *mask = NULL;
    const char **values = NULL;

    (void)state;
    assert_int_equal(agent_secrets_collect(lease, NULL, &mask, &values), 0);
    assert_null(values[0]);
    mask_set_free(mask);
    free(values);
    json_decref(lease);
}

static void unmaskable_names_short_secrets(void **state)
{
    json_t *lease = lease_with("{\"SHORT_KEY\": \"ab\", \"PLAIN\": \"xy\", \"FROM_VAULT\": \"Zq9\", "
                               "\"LONG_TOKEN\": \"long-enough\", \"EMPTY_SECRET\": \"\", "
                               "\"FOUR_KEY\": \"abcd\"}",
                               "[\"Zq9\", \"long-enough\", \"abcd\"]");
    buf_t names = BUF_INIT;

    (void)state;
    assert_int_equal(agent_secrets_unmaskable(lease, &names), 2);
    assert_non_null(names.data);
    assert_non_null(strstr(names.data, "SHORT_KEY"));
    assert_non_null(strstr(names.data, "FROM_VAULT"));
    assert_null(strstr(names.data, "PLAIN"));
    assert_null(strstr(names.data, "LONG_TOKEN"));
    assert_null(strstr(names.data, "EMPTY_SECRET"));
    assert_null(strstr(names.data, "FOUR_KEY"));
    assert_null(strstr(names.data, "Zq9"));
    buf_free(&names);
    json_decref(lease);
}

/* Run agent_instance_new with stderr sent to a file; returns what the log
 * wrote. */
static char *instance_new_log(agent_t *agent, json_t *lease)
{
    char path[] = "/tmp/nimdeck-test-secrets-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    char text[8192];

    assert_true(fd >= 0);
    assert_true(saved >= 0);
    unlink(path);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    agent_instance_t *inst = agent_instance_new(agent, lease);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    assert_non_null(inst);
    agent_instance_free(inst);

    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    close(fd);
    assert_true(n >= 0);
    text[n] = '\0';
    return strdup(text);
}

static size_t count_lines_with(const char *text, const char *needle)
{
    size_t count = 0;

    for (const char *at = strstr(text, needle); at != NULL; at = strstr(at + 1, needle))
        count++;
    return count;
}

static void instance_warns_once(void **state)
{
    agent_t agent;
    char token[] = AGENT_TOKEN;
    json_t *lease = lease_with("{\"SHORT_KEY\": \"Zq9\", \"OTHER_TOKEN\": \"k7\"}", "[\"Zq9\"]");

    (void)state;
    memset(&agent, 0, sizeof(agent));
    agent.token = token;
    char *log = instance_new_log(&agent, lease);

    assert_int_equal(count_lines_with(log, "WARN"), 1);
    assert_int_equal(count_lines_with(log, "cannot be masked"), 1);
    assert_non_null(strstr(log, "inst-s"));
    assert_non_null(strstr(log, "SHORT_KEY"));
    assert_non_null(strstr(log, "OTHER_TOKEN"));
    assert_null(strstr(log, "Zq9"));
    assert_null(strstr(log, "k7"));
    free(log);
    json_decref(lease);
}

static void instance_quiet_long_secrets(void **state)
{
    agent_t agent;
    char token[] = AGENT_TOKEN;
    json_t *lease = lease_with("{\"API_KEY\": \"long-enough\"}", "[\"long-enough\"]");

    (void)state;
    memset(&agent, 0, sizeof(agent));
    agent.token = token;
    char *log = instance_new_log(&agent, lease);

    assert_string_equal(log, "");
    free(log);
    json_decref(lease);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(collect_adds_agent_token),
        cmocka_unit_test(collect_without_extra),
        cmocka_unit_test(unmaskable_names_short_secrets),
        cmocka_unit_test(instance_warns_once),
        cmocka_unit_test(instance_quiet_long_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
