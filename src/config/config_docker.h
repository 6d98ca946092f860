/* The Docker options of a configuration ("image" and the "docker" object),
 * checked and read the same way by config_validate at launch and by the
 * agent when it creates a container, so that a bad value fails the launch
 * with the field at fault instead of a later container start. */
#ifndef NIMDECK_CONFIG_CONFIG_DOCKER_H
#define NIMDECK_CONFIG_CONFIG_DOCKER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define CONFIG_DOCKER_IMAGE_MAX 511   /* bytes of an image reference */
#define CONFIG_DOCKER_CACHE_MAX 1023  /* bytes of a cache host path or volume name */
#define CONFIG_DOCKER_USER_MAX 127    /* bytes of docker.user */
#define CONFIG_DOCKER_ADDRESS_MAX 63  /* bytes of an IP address literal */

/* Check the image of a docker configuration (value is the "image" key,
 * NULL when absent): a reference REGISTRY/PATH:TAG or PATH@DIGEST as
 * Docker reads it, with a lower-case path. Returns 0, or -1 with err on
 * field "image" naming the value, the rule it breaks and an example. */
int config_docker_check_image(const json_t *value, config_error_t *err);

/* Check the "docker" object (value NULL when absent): known keys only, and
 * shm_size, cache, user, network, publish_address and pull each in a form
 * the readers below accept. Returns 0, or -1 with err on field
 * "docker.KEY" naming the value and the fix. */
int config_docker_check(const json_t *value, config_error_t *err);

/* Parse a size such as "16g", "512m", "1.5GiB" or "1073741824" into bytes
 * (k, m, g, t, p are powers of 1024, as for `docker run --shm-size`, with
 * an optional "i" and "b"). Returns 0, or -1 when text is not a size of
 * at least 1 byte. */
int config_docker_parse_size(const char *text, int64_t *bytes);

/* Read docker.shm_size: a size string, or a whole number of bytes (JSON
 * numbers come from `--set docker.shm_size=17179869184`). Returns 0, or -1
 * when value is neither. */
int config_docker_size(const json_t *value, int64_t *bytes);

/* True when text is an IPv4 or IPv6 address literal ("127.0.0.1", "::1"). */
int config_docker_address_valid(const char *text);

/* What docker.cache names: 1 for an absolute host path (starts with '/',
 * is not "/" itself, has no "." or ".." part and no control character), 0
 * for a volume name ([A-Za-z0-9][A-Za-z0-9_.-]+), -1 for neither or a
 * value longer than CONFIG_DOCKER_CACHE_MAX bytes. */
int config_docker_cache_kind(const char *text);

/* Write docker.user as Docker's "User" text into out: a string USER or
 * USER:GROUP (each [A-Za-z0-9_.-]+, names or numeric ids) as it is, or a
 * whole number as the uid ("1000"). Returns 0, or -1 when value is
 * neither or does not fit. */
int config_docker_user(const json_t *value, char *out, size_t size);

#endif
