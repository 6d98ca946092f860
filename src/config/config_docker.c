/* Checks and readers of the Docker options: image references, sizes,
 * addresses, cache paths and volume names, users. */
#include "config/config_docker.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"

#define CONFIG_DOCKER_NAME_MAX 255  /* the registry and path of a reference, as Docker limits it */
#define CONFIG_DOCKER_TAG_MAX 128
#define CONFIG_DOCKER_UID_MAX 4294967294LL

#define CONFIG_DOCKER_IMAGE_EXPECTED                                                              \
    "an image reference such as \"nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3.0\" "              \
    "(REGISTRY/PATH:TAG, or PATH@DIGEST)"
#define CONFIG_DOCKER_SIZE_EXPECTED                                                               \
    "a size such as \"16g\" or \"512m\" (k, m, g, t are powers of 1024) or a whole number of "   \
    "bytes"
#define CONFIG_DOCKER_CACHE_EXPECTED                                                              \
    "an absolute host path such as \"/var/cache/nim\" (not \"/\" itself, without \".\" or "      \
    "\"..\" parts) or a volume name of A-Z a-z 0-9 _ . - starting with a letter or digit"
#define CONFIG_DOCKER_USER_EXPECTED                                                               \
    "a user name or uid with an optional :GROUP (A-Z a-z 0-9 _ . -), such as \"1000\", "         \
    "\"1000:1000\" or \"nim\", or a uid number"
#define CONFIG_DOCKER_ADDRESS_EXPECTED                                                            \
    "an IP address of this machine such as \"127.0.0.1\" or \"10.0.0.5\" (\"0.0.0.0\" publishes " \
    "on every interface)"

static const char *const config_docker_keys[] = {
    "shm_size", "cache", "user", "network", "publish_address", "pull", NULL,
};

/* ---- Image references ---- */

static int config_docker_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One part of a repository path: runs of [a-z0-9] joined by ".", "_",
 * "__" or one or more "-". */
static int config_docker_path_part_valid(const char *text, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t run = 0;

        while (i < len && config_docker_lower_alnum(text[i])) {
            i++;
            run++;
        }
        if (run == 0)
            return 0;
        if (i == len)
            return 1;

        if (text[i] == '.') {
            i++;
        } else if (text[i] == '_') {
            i += i + 1 < len && text[i + 1] == '_' ? 2 : 1;
        } else if (text[i] == '-') {
            while (i < len && text[i] == '-')
                i++;
        } else {
            return 0;
        }
        if (i == len)
            return 0;
    }
    return 0;
}

/* A registry host: labels of [A-Za-z0-9-] (not starting or ending with
 * "-") joined by ".", with an optional ":PORT". */
static int config_docker_registry_valid(const char *text, size_t len)
{
    const char *colon = memchr(text, ':', len);
    size_t host_len = colon != NULL ? (size_t)(colon - text) : len;
    size_t label = 0;

    for (size_t i = 0; i <= host_len; i++) {
        if (i == host_len || text[i] == '.') {
            if (label == 0 || text[i - 1] == '-')
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)text[i]) || (text[i] == '-' && label > 0)) {
            label++;
        } else {
            return 0;
        }
    }
    if (colon == NULL)
        return 1;

    size_t port_len = len - host_len - 1;
    return port_len >= 1 && port_len <= 5 && strspn(colon + 1, "0123456789") >= port_len;
}

/* As Docker reads a reference: the first part is a registry when more
 * parts follow and it has a "." or ":", is "localhost", or has upper case. */
static int config_docker_is_registry(const char *text, size_t len)
{
    int upper = 0;

    for (size_t i = 0; i < len; i++)
        upper |= isupper((unsigned char)text[i]) != 0;
    return memchr(text, '.', len) != NULL || memchr(text, ':', len) != NULL || upper ||
           (len == 9 && strncmp(text, "localhost", 9) == 0);
}

/* Check REGISTRY/PATH (without tag or digest). Returns NULL or why not. */
static const char *config_docker_name_problem(const char *name, size_t len)
{
    const char *slash = memchr(name, '/', len);
    const char *path = name;
    size_t path_len = len;

    if (len > CONFIG_DOCKER_NAME_MAX)
        return "the registry and repository path are longer than 255 characters";
    if (slash != NULL && config_docker_is_registry(name, (size_t)(slash - name))) {
        if (!config_docker_registry_valid(name, (size_t)(slash - name)))
            return "the registry is not a host name with an optional :PORT";
        path = slash + 1;
        path_len = len - (size_t)(path - name);
    }

    for (const char *part = path; part <= path + path_len;) {
        const char *end = memchr(part, '/', (size_t)(path + path_len - part));
        size_t part_len = end != NULL ? (size_t)(end - part) : (size_t)(path + path_len - part);

        if (!config_docker_path_part_valid(part, part_len)) {
            for (size_t i = 0; i < part_len; i++) {
                if (isupper((unsigned char)part[i]))
                    return "the repository path must be lower case";
            }
            return "each part of the repository path must be letters a-z and digits, joined by "
                   "\".\", \"_\", \"__\" or \"-\"";
        }
        if (end == NULL)
            break;
        part = end + 1;
    }
    return NULL;
}

static const char *config_docker_tag_problem(const char *tag)
{
    static const char word[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
    size_t len = strlen(tag);

    if (len == 0 || len > CONFIG_DOCKER_TAG_MAX || strchr(word, tag[0]) == NULL ||
        strspn(tag, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != len)
        return "the tag must be 1-128 characters of A-Z a-z 0-9 _ . -, not starting with \".\" "
               "or \"-\"";
    return NULL;
}

/* ALGORITHM:HEX, with 64 hex digits for sha256 and at least 32 otherwise. */
static const char *config_docker_digest_problem(const char *digest)
{
    static const char *const problem =
        "the digest must be ALGORITHM:HEX, such as sha256: followed by 64 hex digits";
    const char *colon = strchr(digest, ':');
    size_t algorithm_len = colon != NULL ? (size_t)(colon - digest) : 0;

    if (colon == NULL || !config_docker_path_part_valid(digest, algorithm_len))
        return problem;

    size_t hex_len = strlen(colon + 1);
    if (strspn(colon + 1, "0123456789abcdefABCDEF") != hex_len || hex_len < 32)
        return problem;
    if (algorithm_len == 6 && strncmp(digest, "sha256", 6) == 0 && hex_len != 64)
        return problem;
    return NULL;
}

/* Returns NULL when image is a valid reference, else why it is not. */
static const char *config_docker_image_problem(const char *image)
{
    static const char allowed[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/:@";
    const char *at = strchr(image, '@');
    size_t len = strlen(image);
    size_t name_len = at != NULL ? (size_t)(at - image) : len;
    const char *problem;

    if (len == 0)
        return "it is empty";
    if (len > CONFIG_DOCKER_IMAGE_MAX)
        return "it is longer than 511 bytes";
    if (strspn(image, allowed) != len)
        return "it contains a character outside A-Z a-z 0-9 . _ - / : @";
    if (at != NULL && (problem = config_docker_digest_problem(at + 1)) != NULL)
        return problem;

    /* A ":" after the last "/" starts the tag; one before it is a port. */
    const char *slash = NULL, *colon = NULL;
    for (const char *p = image; p < image + name_len; p++) {
        if (*p == '/')
            slash = p;
        else if (*p == ':')
            colon = p;
    }
    if (colon != NULL && (slash == NULL || colon > slash)) {
        char tag[CONFIG_DOCKER_IMAGE_MAX + 1];
        snprintf(tag, sizeof(tag), "%.*s", (int)(image + name_len - colon - 1), colon + 1);
        if ((problem = config_docker_tag_problem(tag)) != NULL)
            return problem;
        name_len = (size_t)(colon - image);
    }
    return config_docker_name_problem(image, name_len);
}

static int config_docker_image_text_ok(const char *text)
{
    return config_docker_image_problem(text) == NULL;
}

int config_docker_check_image(const json_t *value, config_error_t *err)
{
    const char *problem;
    char got[96];

    if (value == NULL || json_is_null(value))
        return config_fail(err, "image", "missing required key \"image\": runtime \"docker\" "
                           "needs %s", CONFIG_DOCKER_IMAGE_EXPECTED);
    if (!json_is_string(value))
        return config_fail_string(err, "image", CONFIG_DOCKER_IMAGE_EXPECTED, value,
                                  config_docker_image_text_ok);
    if ((problem = config_docker_image_problem(json_string_value(value))) == NULL)
        return 0;

    config_describe(value, got, sizeof(got));
    return config_fail(err, "image", "\"image\" must be %s, got %s: %s",
                       CONFIG_DOCKER_IMAGE_EXPECTED, got, problem);
}

/* ---- Option values ---- */

int config_docker_parse_size(const char *text, int64_t *bytes)
{
    static const char units[] = "kmgtp", digits[] = "0123456789";
    const char *end = text + strspn(text, digits);
    double value, scale = 1;

    /* The number is digits with an optional fraction, as Docker reads it. */
    if (end == text)
        return -1;
    if (*end == '.') {
        size_t fraction = strspn(end + 1, digits);
        if (fraction == 0)
            return -1;
        end += 1 + fraction;
    }
    value = strtod(text, NULL);
    if (*end == ' ')
        end++;
    const char *unit = *end != '\0' ? strchr(units, tolower((unsigned char)*end)) : NULL;
    if (unit != NULL) {
        for (const char *u = units; u <= unit; u++)
            scale *= 1024;
        end++;
    }
    if (unit != NULL && tolower((unsigned char)*end) == 'i')
        end++;
    if (tolower((unsigned char)*end) == 'b')
        end++;
    if (*end != '\0' || !isfinite(value) || value * scale < 1 || value * scale > 9e18)
        return -1;
    *bytes = (int64_t)(value * scale);
    return 0;
}

int config_docker_size(const json_t *value, int64_t *bytes)
{
    json_int_t number;

    if (json_is_string(value))
        return config_docker_parse_size(json_string_value(value), bytes);
    if (!config_integral(value, &number) || number < 1)
        return -1;
    *bytes = (int64_t)number;
    return 0;
}

static int config_docker_size_text_ok(const char *text)
{
    int64_t bytes;

    return config_docker_parse_size(text, &bytes) == 0;
}

int config_docker_address_valid(const char *text)
{
    unsigned char address[16];

    return strlen(text) <= CONFIG_DOCKER_ADDRESS_MAX &&
           (inet_pton(AF_INET, text, address) == 1 || inet_pton(AF_INET6, text, address) == 1);
}

static int config_docker_host_path_valid(const char *text)
{
    if (text[0] != '/' || text[1] == '\0')
        return 0;
    for (const char *p = text; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    }

    /* "." and ".." parts would let the mount land elsewhere than it reads. */
    for (const char *part = text + 1; *part != '\0';) {
        size_t len = strcspn(part, "/");
        if ((len == 1 && part[0] == '.') || (len == 2 && strncmp(part, "..", 2) == 0))
            return 0;
        part += len;
        part += *part == '/';
    }
    return 1;
}

int config_docker_cache_kind(const char *text)
{
    static const char volume_chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    size_t len = strlen(text);

    if (len > CONFIG_DOCKER_CACHE_MAX)
        return -1;
    if (text[0] == '/')
        return config_docker_host_path_valid(text) ? 1 : -1;
    if (len >= 2 && isalnum((unsigned char)text[0]) && strspn(text, volume_chars) == len)
        return 0;
    return -1;
}

static int config_docker_cache_text_ok(const char *text)
{
    return config_docker_cache_kind(text) >= 0;
}

/* USER or USER:GROUP, each 1 or more of [A-Za-z0-9_.-]. */
static int config_docker_user_text_ok(const char *text)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    size_t user_len = strspn(text, chars);

    if (user_len == 0 || strlen(text) > CONFIG_DOCKER_USER_MAX)
        return 0;
    if (text[user_len] == '\0')
        return 1;
    return text[user_len] == ':' && text[user_len + 1] != '\0' &&
           strspn(text + user_len + 1, chars) == strlen(text + user_len + 1);
}

int config_docker_user(const json_t *value, char *out, size_t size)
{
    json_int_t uid;
    int len;

    if (json_is_string(value)) {
        if (!config_docker_user_text_ok(json_string_value(value)))
            return -1;
        len = snprintf(out, size, "%s", json_string_value(value));
    } else if (config_integral(value, &uid) && uid >= 0 && uid <= CONFIG_DOCKER_UID_MAX) {
        len = snprintf(out, size, "%lld", (long long)uid);
    } else {
        return -1;
    }
    return len >= 0 && (size_t)len < size ? 0 : -1;
}

/* ---- The "docker" object ---- */

static int config_docker_check_value(const json_t *docker, const char *key,
                                     const char *expected, int (*text_ok)(const char *),
                                     int valid, config_error_t *err)
{
    const json_t *value = json_object_get(docker, key);
    char field[64];

    if (value == NULL || valid)
        return 0;
    snprintf(field, sizeof(field), "docker.%s", key);
    return config_fail_string(err, field, expected, value, text_ok);
}

static int config_docker_choice(const json_t *docker, const char *key, const char *first,
                                const char *second, config_error_t *err)
{
    const char *text = json_string_value(json_object_get(docker, key));
    char expected[64];

    snprintf(expected, sizeof(expected), "\"%s\" or \"%s\"", first, second);
    return config_docker_check_value(
        docker, key, expected, config_no_text,
        text != NULL && (strcmp(text, first) == 0 || strcmp(text, second) == 0), err);
}

int config_docker_check(const json_t *value, config_error_t *err)
{
    const char *cache, *address;
    char user[CONFIG_DOCKER_USER_MAX + 1], got[96];
    int64_t bytes;

    if (value == NULL)
        return 0;
    if (!json_is_object(value)) {
        config_describe(value, got, sizeof(got));
        return config_fail(err, "docker", "\"docker\" must be an object of Docker options, got %s",
                           got);
    }
    if (config_check_keys(value, config_docker_keys, "docker.", err) != 0)
        return -1;

    cache = json_string_value(json_object_get(value, "cache"));
    address = json_string_value(json_object_get(value, "publish_address"));
    if (config_docker_check_value(value, "shm_size", CONFIG_DOCKER_SIZE_EXPECTED,
                                  config_docker_size_text_ok,
                                  config_docker_size(json_object_get(value, "shm_size"),
                                                     &bytes) == 0,
                                  err) != 0 ||
        config_docker_check_value(value, "cache", CONFIG_DOCKER_CACHE_EXPECTED,
                                  config_docker_cache_text_ok,
                                  cache != NULL && config_docker_cache_kind(cache) >= 0, err) != 0 ||
        config_docker_check_value(value, "user", CONFIG_DOCKER_USER_EXPECTED,
                                  config_docker_user_text_ok,
                                  config_docker_user(json_object_get(value, "user"), user,
                                                     sizeof(user)) == 0,
                                  err) != 0 ||
        config_docker_choice(value, "network", "host", "bridge", err) != 0 ||
        config_docker_check_value(value, "publish_address", CONFIG_DOCKER_ADDRESS_EXPECTED,
                                  config_docker_address_valid,
                                  address != NULL && config_docker_address_valid(address),
                                  err) != 0)
        return -1;
    return config_docker_choice(value, "pull", "missing", "always", err);
}
