/* Unit tests for how the REST API rejects awkward input: an empty vault
 * value, a NUL character in a JSON body, non-ASCII names quoted in errors,
 * duplicate GPU ids and oversized tags and env. Each runs in-process against
 * a server on a free port with a temporary data folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "server/server_internal.h"
#include "server_harness.h"
#include "util/buf.h"

static int fixture_setup(void **state)
{
    return harness_start(state, "inputs", harness_options());
}

/* Call as admin and fail unless the reply is an error with status, field
 * and a message containing part. */
static void expect_error(fixture_t *f, const char *method, const char *path, const char *body,
                         long status, const char *field, const char *part)
{
    api_result_t res;

    harness_call(f, f->token, method, path, body, &res);
    if (res.status != status || strcmp(res.error_field, field) != 0 ||
        strstr(res.error, part) == NULL)
        fail_msg("%s %s: expected %ld, field \"%s\" and \"%s\"; got %ld, field \"%s\": %s", method,
                 path, status, field, part, res.status, res.error_field, res.error);
    api_result_free(&res);
}

/* POST body raw (bytes jansson would not build) to path and copy the whole
 * response into out. */
static void raw_post(fixture_t *f, const char *path, const char *body, size_t body_len, char *out,
                     size_t size)
{
    int port = (int)strtol(strrchr(f->url, ':') + 1, NULL, 10);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char head[512];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t used = 0;
    ssize_t got;

    assert_true(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int len = snprintf(head, sizeof(head),
                       "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n",
                       path, f->token, body_len);
    assert_int_equal(write(fd, head, (size_t)len), len);
    assert_int_equal(write(fd, body, body_len), (ssize_t)body_len);
    while (used + 1 < size && (got = read(fd, out + used, size - 1 - used)) > 0)
        used += (size_t)got;
    close(fd);
    out[used] = '\0';
}

static void vault_empty_value_rejected(void **state)
{
    fixture_t *f = *state;

    expect_error(f, "PUT", "/api/v1/vault/HF_TOKEN", "{\"value\":\"\"}", 400, "value", "empty");
    harness_expect(f, f->token, "PUT", "/api/v1/vault/HF_TOKEN", "{\"value\":\"v\"}", 200, NULL);
}

static void nul_in_body_message(void **state)
{
    fixture_t *f = *state;
    static const char body[] = "{\"name\":\"a\\u0000b\"}";
    char response[4096];

    raw_post(f, "/api/v1/routes", body, sizeof(body) - 1, response, sizeof(response));
    assert_non_null(strstr(response, "HTTP/1.1 400"));
    if (strstr(response, "NUL characters (\\\\u0000) are not allowed in JSON strings") == NULL)
        fail_msg("no NUL message in: %s", response);
    assert_null(strstr(response, "JSON_ALLOW_NUL"));
}

static void non_ascii_name_escaped(void **state)
{
    fixture_t *f = *state;

    /* "ünï" as UTF-8; the message shows each character as a JSON escape. */
    expect_error(f, "POST", "/api/v1/routes", "{\"name\":\"\xc3\xbcn\xc3\xaf\"}", 400, "name",
                 "invalid route name \"\\u00fcn\\u00ef\"");
    expect_error(f, "POST", "/api/v1/users", "{\"name\":\"a\\\"b\"}", 400, "name",
                 "invalid user name \"a\\\"b\"");
}

static void printable_escapes(void **state)
{
    (void)state;
    char out[80];

    api_printable("plain-name", out, sizeof(out));
    assert_string_equal(out, "plain-name");
    api_printable("\xc3\xbc", out, sizeof(out));
    assert_string_equal(out, "\\u00fc");
    api_printable("a\nb", out, sizeof(out));
    assert_string_equal(out, "a\\u000ab");
    api_printable("\xf0\x9f\x98\x80", out, sizeof(out));   /* U+1F600 as a surrogate pair */
    assert_string_equal(out, "\\ud83d\\ude00");
    api_printable("\xff\xc3", out, sizeof(out));           /* not UTF-8, then a cut sequence */
    assert_string_equal(out, "\\xff\\xc3");
    api_printable("back\\slash", out, sizeof(out));
    assert_string_equal(out, "back\\\\slash");

    /* A long value is cut after a whole escape, never inside one. */
    char small[12];
    api_printable("\xc3\xbc\xc3\xbc\xc3\xbc", small, sizeof(small));
    assert_string_equal(small, "\\u00fc...");
}

#define PROCESS_CONFIG(extra)                                                                   \
    "{\"name\":\"a\",\"project\":\"demo\",\"runtime\":\"process\",\"command\":[\"x\"]" extra "}"

static void duplicate_gpus_rejected(void **state)
{
    fixture_t *f = *state;

    expect_error(f, "POST", "/api/v1/apps", PROCESS_CONFIG(",\"gpus\":[\"0\",\"0\"]"), 400,
                 "gpus", "device \"0\" twice");
    expect_error(f, "POST", "/api/v1/apps", PROCESS_CONFIG(",\"gpus\":[1,\"2\",\"1\"]"), 400,
                 "gpus", "elements 0 and 2");
}

/* A configuration whose key has count copies of item, joined by commas
 * inside open and close. */
static char *config_with_many(const char *key, const char *open, const char *item, size_t count,
                              const char *close)
{
    buf_t body = BUF_INIT;

    assert_int_equal(buf_printf(&body, "{\"name\":\"a\",\"project\":\"demo\",\"runtime\":"
                                       "\"process\",\"command\":[\"x\"],\"%s\":%s",
                                key, open), 0);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(buf_append_str(&body, i ? "," : ""), 0);
        assert_int_equal(buf_printf(&body, item, i), 0);
    }
    assert_int_equal(buf_printf(&body, "%s}", close), 0);
    return body.data;
}

static void tag_limits(void **state)
{
    fixture_t *f = *state;
    char *many = config_with_many("tags", "[", "\"t%zu\"", CONFIG_TAGS_MAX + 1, "]");
    char long_tag[CONFIG_TAG_CHARS_MAX + 2];

    expect_error(f, "POST", "/api/v1/apps", many, 400, "tags", "the limit is 64 tags");
    free(many);

    memset(long_tag, 'x', sizeof(long_tag) - 1);
    long_tag[sizeof(long_tag) - 1] = '\0';
    buf_t body = BUF_INIT;
    buf_printf(&body, PROCESS_CONFIG(",\"tags\":[\"ok\",\"%s\"]"), long_tag);
    expect_error(f, "POST", "/api/v1/apps", body.data, 400, "tags",
                 "element 1 is 65 characters long; the limit is 64 characters");
    buf_free(&body);
}

static void env_limits(void **state)
{
    fixture_t *f = *state;
    char *many = config_with_many("env", "{", "\"V%zu\":\"v\"", CONFIG_ENV_MAX + 1, "}");
    char *big = malloc(CONFIG_ENV_VALUE_MAX + 2);
    buf_t body = BUF_INIT;

    expect_error(f, "POST", "/api/v1/apps", many, 400, "env", "the limit is 256");
    free(many);

    assert_non_null(big);
    memset(big, 'x', CONFIG_ENV_VALUE_MAX + 1);
    big[CONFIG_ENV_VALUE_MAX + 1] = '\0';
    buf_printf(&body, PROCESS_CONFIG(",\"env\":{\"BIG\":\"%s\"}"), big);
    expect_error(f, "POST", "/api/v1/apps", body.data, 400, "env.BIG",
                 "the value of \"env.BIG\" is 32769 bytes; the limit is 32768 bytes");
    buf_free(&body);

    /* Nine values, each under its own limit, pass the total together. */
    big[CONFIG_ENV_VALUE_MAX - 10] = '\0';
    buf_t config = BUF_INIT;
    buf_append_str(&config, "{\"name\":\"a\",\"project\":\"demo\",\"runtime\":\"process\","
                            "\"command\":[\"x\"],\"env\":{");
    for (int i = 0; i < 9; i++)
        buf_printf(&config, "%s\"V%d\":\"%s\"", i ? "," : "", i, big);
    buf_append_str(&config, "}}");
    expect_error(f, "POST", "/api/v1/apps", config.data, 400, "env", "256 KiB");
    buf_free(&config);
    free(big);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(vault_empty_value_rejected),
        T(nul_in_body_message),
        T(non_ascii_name_escaped),
        cmocka_unit_test(printable_escapes),
        T(duplicate_gpus_rejected),
        T(tag_limits),
        T(env_limits),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
