/* Image references and registry credentials for pulls: which registry an
 * image comes from, which variables of the instance's environment hold the
 * login, and the X-Registry-Auth header that carries it. */
#ifndef NIMDECK_AGENT_DOCKER_AUTH_H
#define NIMDECK_AGENT_DOCKER_AUTH_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"

#define DOCKER_HUB "docker.io"
#define DOCKER_NGC_REGISTRY "nvcr.io"

/* Write the registry host of image into out: the first path component when
 * it contains '.' or ':' or is "localhost" (as Docker reads references),
 * else DOCKER_HUB. */
void docker_image_registry(const char *image, char *out, size_t size);

/* Write image without its ":tag" and "@digest" into out. */
void docker_image_repository(const char *image, char *out, size_t size);

/* Find the login for pulling image in env (the instance's merged
 * environment: vault values, then the configuration's env):
 * - nvcr.io: user "$oauthtoken", password NGC_API_KEY (required);
 * - any other registry: DOCKER_USERNAME_<HOST> and DOCKER_PASSWORD_<HOST>,
 *   where HOST is the registry host in upper case with every character
 *   outside [A-Z0-9] as '_' (ghcr.io: GHCR_IO; Docker Hub: DOCKER_IO), else
 *   DOCKER_USERNAME and DOCKER_PASSWORD.
 * Returns 1 with *user and *password pointing into env (or a literal),
 * 0 when there is no login (an anonymous pull), or -1 with err naming what
 * is missing and the fix. */
int docker_auth_find(const char *image, const json_t *env, const char **user,
                     const char **password, char *err, size_t err_size);

/* Write the "X-Registry-Auth: ..." header for a login to out: the JSON
 * {"username", "password", "serveraddress"} in padded base64url, as the
 * Engine API expects. The header holds the password: never log it.
 * Returns 0, or -1 when memory runs out. */
int docker_auth_header(const char *user, const char *password, const char *registry, buf_t *out);

#endif
