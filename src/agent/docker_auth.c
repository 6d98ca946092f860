/* Registry credentials for image pulls. */
#include "agent/docker_auth.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void docker_image_registry(const char *image, char *out, size_t size)
{
    const char *slash = strchr(image, '/');
    size_t len = slash != NULL ? (size_t)(slash - image) : 0;

    if (slash == NULL || (memchr(image, '.', len) == NULL && memchr(image, ':', len) == NULL &&
                          !(len == 9 && strncmp(image, "localhost", 9) == 0))) {
        snprintf(out, size, "%s", DOCKER_HUB);
        return;
    }
    snprintf(out, size, "%.*s", (int)len, image);
}

void docker_image_repository(const char *image, char *out, size_t size)
{
    const char *at = strchr(image, '@');
    size_t len = at != NULL ? (size_t)(at - image) : strlen(image);
    const char *slash = memrchr(image, '/', len);
    const char *colon = memrchr(image, ':', len);

    /* A colon before the last slash belongs to a registry port. */
    if (colon != NULL && (slash == NULL || colon > slash))
        len = (size_t)(colon - image);
    snprintf(out, size, "%.*s", (int)len, image);
}

static const char *docker_env_string(const json_t *env, const char *name)
{
    const char *value = json_string_value(json_object_get(env, name));

    return value != NULL && value[0] != '\0' ? value : NULL;
}

/* Look up PREFIX_<HOST>, then PREFIX. */
static const char *docker_env_for_registry(const json_t *env, const char *prefix,
                                           const char *registry)
{
    char name[300];
    size_t len = (size_t)snprintf(name, sizeof(name), "%s_", prefix);
    const char *value;

    for (const char *p = registry; *p != '\0' && len + 1 < sizeof(name); p++)
        name[len++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    name[len] = '\0';
    if ((value = docker_env_string(env, name)) != NULL)
        return value;
    return docker_env_string(env, prefix);
}

int docker_auth_find(const char *image, const json_t *env, const char **user,
                     const char **password, char *err, size_t err_size)
{
    char registry[256];

    docker_image_registry(image, registry, sizeof(registry));
    if (strcmp(registry, DOCKER_NGC_REGISTRY) == 0) {
        *user = "$oauthtoken";
        *password = docker_env_string(env, "NGC_API_KEY");
        if (*password != NULL)
            return 1;
        snprintf(err, err_size, "image %s is on nvcr.io, which needs an NGC API key, but "
                 "NGC_API_KEY is not set: add it with `nimdeck vault set NGC_API_KEY` or set "
                 "env.NGC_API_KEY in the configuration", image);
        return -1;
    }

    *user = docker_env_for_registry(env, "DOCKER_USERNAME", registry);
    *password = docker_env_for_registry(env, "DOCKER_PASSWORD", registry);
    if (*user == NULL && *password == NULL)
        return 0;
    if (*user != NULL && *password != NULL)
        return 1;
    snprintf(err, err_size, "the login for registry %s is incomplete: %s is set but %s is not; "
             "set both in the vault (or neither, for an anonymous pull)", registry,
             *user != NULL ? "DOCKER_USERNAME" : "DOCKER_PASSWORD",
             *user != NULL ? "DOCKER_PASSWORD" : "DOCKER_USERNAME");
    return -1;
}

int docker_auth_header(const char *user, const char *password, const char *registry, buf_t *out)
{
    json_t *doc = json_pack("{s:s, s:s, s:s}", "username", user, "password", password,
                            "serveraddress", registry);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    int rc = -1;

    json_decref(doc);
    if (text == NULL)
        return -1;
    size_t len = strlen(text);
    size_t encoded_len = sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE);
    if (buf_append_str(out, "X-Registry-Auth: ") == 0 && buf_reserve(out, encoded_len) == 0) {
        sodium_bin2base64(out->data + out->len, encoded_len, (const unsigned char *)text, len,
                          sodium_base64_VARIANT_URLSAFE);
        out->len += strlen(out->data + out->len);
        rc = 0;
    }
    sodium_memzero(text, len);
    free(text);
    return rc;
}
