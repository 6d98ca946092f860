/* Unit tests for image references, registry logins and X-Registry-Auth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "agent/docker_auth.h"

static void auth_registry_of_image(void **state)
{
    static const char *const cases[][2] = {
        {"nvcr.io/nim/meta/llama-3.1-8b-instruct:latest", "nvcr.io"},
        {"ghcr.io/team/model:1", "ghcr.io"},
        {"localhost/model", "localhost"},
        {"registry.local:5000/model:2", "registry.local:5000"},
        {"127.0.0.1:1/nope/model:1", "127.0.0.1:1"},
        {"team/model:1", "docker.io"},
        {"busybox", "docker.io"},
    };
    char out[128];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        docker_image_registry(cases[i][0], out, sizeof(out));
        assert_string_equal(out, cases[i][1]);
    }
}

static void auth_repository_of_image(void **state)
{
    static const char *const cases[][2] = {
        {"nvcr.io/nim/meta/llama-3.1-8b-instruct:latest", "nvcr.io/nim/meta/llama-3.1-8b-instruct"},
        {"registry.local:5000/model", "registry.local:5000/model"},
        {"registry.local:5000/model:2", "registry.local:5000/model"},
        {"team/model@sha256:abcd", "team/model"},
        {"team/model:1@sha256:abcd", "team/model"},
        {"busybox", "busybox"},
    };
    char out[128];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        docker_image_repository(cases[i][0], out, sizeof(out));
        assert_string_equal(out, cases[i][1]);
    }
}

static void auth_ngc_login(void **state)
{
    json_t *env = json_pack("{s:s}", "NGC_API_KEY", "nvapi-test-key");
    const char *user = NULL, *password = NULL;
    char err[512] = "";

    (void)state;
    assert_int_equal(docker_auth_find("nvcr.io/nim/x:1", env, &user, &password, err, sizeof(err)),
                     1);
    assert_string_equal(user, "$oauthtoken");
    assert_string_equal(password, "nvapi-test-key");
    json_decref(env);

    env = json_pack("{s:s}", "NGC_API_KEY", "");
    assert_int_equal(docker_auth_find("nvcr.io/nim/x:1", env, &user, &password, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "NGC_API_KEY is not set"));
    assert_non_null(strstr(err, "nimdeck vault set NGC_API_KEY"));
    json_decref(env);
}

static void auth_registry_login_names(void **state)
{
    json_t *env = json_pack("{s:s, s:s, s:s, s:s}", "DOCKER_USERNAME", "alice", "DOCKER_PASSWORD",
                            "general-pw", "DOCKER_USERNAME_GHCR_IO", "bob",
                            "DOCKER_PASSWORD_GHCR_IO", "ghcr-pw");
    const char *user, *password;
    char err[512] = "";

    (void)state;
    assert_int_equal(docker_auth_find("ghcr.io/t/m:1", env, &user, &password, err, sizeof(err)), 1);
    assert_string_equal(user, "bob");
    assert_string_equal(password, "ghcr-pw");
    assert_int_equal(docker_auth_find("registry.local:5000/m", env, &user, &password, err,
                                      sizeof(err)),
                     1);
    assert_string_equal(user, "alice");
    assert_string_equal(password, "general-pw");
    json_decref(env);

    env = json_pack("{s:s, s:s}", "DOCKER_USERNAME_REGISTRY_LOCAL_5000", "carol",
                    "DOCKER_PASSWORD_REGISTRY_LOCAL_5000", "local-pw");
    assert_int_equal(docker_auth_find("registry.local:5000/m", env, &user, &password, err,
                                      sizeof(err)),
                     1);
    assert_string_equal(user, "carol");
    assert_int_equal(docker_auth_find("team/model", env, &user, &password, err, sizeof(err)), 0);
    json_decref(env);

    env = json_pack("{s:s}", "DOCKER_USERNAME", "alice");
    assert_int_equal(docker_auth_find("team/model", env, &user, &password, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "DOCKER_PASSWORD is not"));
    json_decref(env);
}

static void auth_header_is_base64url_json(void **state)
{
    buf_t header = BUF_INIT;
    unsigned char decoded[512];
    size_t decoded_len = 0;
    const char *prefix = "X-Registry-Auth: ";

    (void)state;
    /* This password makes base64 characters 62 and 63 appear, which
     * base64url writes as '-' and '_' where base64 has '+' and '/'. */
    assert_int_equal(docker_auth_header("$oauthtoken", "k>>>?~~~", "nvcr.io", &header), 0);
    assert_int_equal(strncmp(header.data, prefix, strlen(prefix)), 0);
    const char *encoded = header.data + strlen(prefix);
    assert_non_null(strpbrk(encoded, "-_"));
    assert_null(strpbrk(encoded, "+/"));
    assert_int_equal(strlen(encoded) % 4, 0);
    assert_int_equal(sodium_base642bin(decoded, sizeof(decoded) - 1, encoded, strlen(encoded), NULL,
                                       &decoded_len, NULL, sodium_base64_VARIANT_URLSAFE),
                     0);
    decoded[decoded_len] = '\0';

    json_t *doc = json_loads((const char *)decoded, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "username")), "$oauthtoken");
    assert_string_equal(json_string_value(json_object_get(doc, "password")), "k>>>?~~~");
    assert_string_equal(json_string_value(json_object_get(doc, "serveraddress")), "nvcr.io");
    json_decref(doc);
    buf_free(&header);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auth_registry_of_image),
        cmocka_unit_test(auth_repository_of_image),
        cmocka_unit_test(auth_ngc_login),
        cmocka_unit_test(auth_registry_login_names),
        cmocka_unit_test(auth_header_is_base64url_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
